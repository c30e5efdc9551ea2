//! pathman: a connection manager for constrained Linux routers.
//!
//! Layout: `core` is pure (model, ordering, planning, reconciliation);
//! `wire` and `dhcp` hold protocol codecs and sans-I/O state machines;
//! `config` reads and writes keyfiles; `edge` talks to the kernel; `dbus`
//! serves ConnMan's API; `daemon` wires it all into one event loop; `ctl` is
//! the command-line client.

pub mod caps;
pub mod config;
pub mod core;
pub mod ctl;
pub mod daemon;
pub mod dbus;
pub mod dhcp;
pub mod edge;
pub mod online;
pub mod sort;
pub mod task;
#[cfg(test)]
pub(crate) mod test_dir;
pub mod time;
pub mod wire;
