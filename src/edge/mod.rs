//! The kernel edges: rtnetlink and the sysfs/procfs bits.

pub mod rtnl;
pub mod sysfs;
