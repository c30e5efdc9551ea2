//! The kernel edges: rtnetlink, the MPTCP path manager (generic netlink),
//! nftables (nfnetlink)
//! and the sysfs/procfs bits.

pub mod clock;
pub mod dhcp;
pub mod mptcp;
pub mod netlink;
pub mod nft;
pub mod packet;
pub mod probe;
pub mod rtnl;
pub mod sysfs;
