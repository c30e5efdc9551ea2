//! The kernel objects pathman owns, as plain values: what the planner wants
//! and what the kernel dump found are both a [`NetState`], and the reconciler
//! turns the difference into [`Op`]s.

use std::net::IpAddr;

/// An address or network with its prefix length (either family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl IpPrefix {
    /// The whole address space of `addr`'s family (`0.0.0.0/0` or `::/0`).
    pub fn default_for(addr: IpAddr) -> IpPrefix {
        match addr {
            IpAddr::V4(_) => IpPrefix {
                addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                len: 0,
            },
            IpAddr::V6(_) => IpPrefix {
                addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                len: 0,
            },
        }
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

/// An interface address pathman adds (DHCP lease, manual, IPv4LL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressSpec {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// A route pathman adds. `dst.len == 0` is a default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteSpec {
    pub table: u32,
    pub dst: IpPrefix,
    pub gateway: Option<IpAddr>,
    pub oif: u32,
    pub metric: u32,
    /// Preferred source address (`src` in `ip route`).
    pub pref_src: Option<IpAddr>,
}

/// A policy routing rule pathman adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleSpec {
    /// IPv6 when true, else IPv4.
    pub ipv6: bool,
    pub priority: u32,
    pub src: Option<IpPrefix>,
    pub fwmark: Option<u32>,
    pub table: u32,
}

/// A set of owned kernel objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetState {
    pub addresses: Vec<AddressSpec>,
    pub routes: Vec<RouteSpec>,
    pub rules: Vec<RuleSpec>,
}

/// One netlink change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    AddAddress(AddressSpec),
    DelAddress(AddressSpec),
    AddRoute(RouteSpec),
    DelRoute(RouteSpec),
    AddRule(RuleSpec),
    DelRule(RuleSpec),
}
