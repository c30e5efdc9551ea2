//! The pure core: model, ordering, planning and reconciliation. Nothing in
//! here touches a socket, a file or a clock.

pub mod model;
pub mod mptcp;
pub mod netstate;
pub mod order;
pub mod plan;
pub mod reconcile;
pub mod types;

#[cfg(test)]
mod tests;
