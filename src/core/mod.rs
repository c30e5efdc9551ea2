//! The pure core: model, ordering, planning and reconciliation. Nothing in
//! here touches a socket, a file or a clock.

pub mod clock;
pub mod counter;
pub mod firewall;
pub mod flow;
pub mod model;
pub mod mptcp;
pub mod netstate;
pub mod order;
pub mod plan;
pub mod reconcile;
pub mod session;
pub mod session_policy;
pub mod tasks;
pub mod tech;
pub mod tether;
pub mod types;
pub mod validate;

#[cfg(test)]
mod tests;
