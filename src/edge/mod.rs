//! The kernel edges: rtnetlink, the MPTCP path manager (generic netlink),
//! nftables (nfnetlink)
//! the sysfs/procfs bits, and the UDP sockets of SNTP.

pub mod clock;
pub mod dhcp;
pub mod mptcp;
pub mod netlink;
pub mod nft;
pub mod ntp;
pub mod packet;
pub mod random;
pub mod rtnl;
pub mod sysfs;
