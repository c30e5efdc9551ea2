//! The D-Bus edge: the system bus connection, ConnMan's names, the
//! property views, request handling and the server loop.

pub mod agent;
pub mod api;
pub mod bus;
pub mod client;
pub mod conn;
pub mod names;
pub mod ofono;
pub mod props;
pub mod request;
pub mod server;
pub mod session;
pub mod signals;
pub mod value;
pub mod wpa;

pub use conn::{Connection, MessageStream};
