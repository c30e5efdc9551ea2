//! The kernel edges: rtnetlink, the MPTCP path manager (generic netlink)
//! and the sysfs/procfs bits.

pub mod mptcp;
pub mod rtnl;
pub mod sysfs;
