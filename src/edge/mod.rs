//! The kernel edges: rtnetlink, the MPTCP path manager (generic netlink),
//! nftables (nfnetlink), the sysfs/procfs bits, the UDP sockets of SNTP and
//! the online check's probe sockets.

pub mod clock;
pub mod dhcp;
pub mod dhcp_server;
pub mod mptcp;
pub mod netlink;
pub mod nft;
pub mod ntp;
pub mod packet;
pub mod probe;
pub mod random;
pub mod rtnl;
pub mod sysfs;
pub mod worker;
