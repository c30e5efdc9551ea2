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

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.len, self.addr) {
            (0, _) => f.write_str("default"),
            (32, IpAddr::V4(a)) => write!(f, "{a}"),
            (128, IpAddr::V6(a)) => write!(f, "{a}"),
            (len, a) => write!(f, "{a}/{len}"),
        }
    }
}

/// `main` or the table's number, as `ip` prints it.
pub fn table_name(table: u32) -> String {
    match table {
        254 => "main".to_string(),
        t => t.to_string(),
    }
}

impl Op {
    /// The change in `ip` words (`add route default via 198.18.1.1 dev eth0
    /// metric 0 table main`), interfaces named by `ifname`.
    pub fn describe(&self, ifname: &dyn Fn(u32) -> String) -> String {
        let verb = match self {
            Op::AddAddress(_) | Op::AddRoute(_) | Op::AddRule(_) => "add",
            Op::DelAddress(_) | Op::DelRoute(_) | Op::DelRule(_) => "delete",
        };
        match self {
            Op::AddAddress(a) | Op::DelAddress(a) => format!(
                "{verb} address {}/{} dev {}",
                a.addr,
                a.prefix_len,
                ifname(a.ifindex)
            ),
            Op::AddRoute(r) | Op::DelRoute(r) => {
                let mut s = format!("{verb} route {}", r.dst);
                if let Some(gw) = r.gateway {
                    s.push_str(&format!(" via {gw}"));
                }
                s.push_str(&format!(" dev {}", ifname(r.oif)));
                if let Some(src) = r.pref_src {
                    s.push_str(&format!(" src {src}"));
                }
                s.push_str(&format!(
                    " metric {} table {}",
                    r.metric,
                    table_name(r.table)
                ));
                s
            }
            Op::AddRule(r) | Op::DelRule(r) => {
                let mut s = format!(
                    "{verb} rule{} priority {}",
                    if r.ipv6 { " (IPv6)" } else { "" },
                    r.priority
                );
                match r.src {
                    Some(src) => s.push_str(&format!(" from {src}")),
                    None => s.push_str(" from all"),
                }
                if let Some(m) = r.fwmark {
                    s.push_str(&format!(" fwmark {m:#x}"));
                }
                s.push_str(&format!(" lookup {}", table_name(r.table)));
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_read_like_ip_commands() {
        let name = |i: u32| format!("eth{}", i - 2);
        let route = RouteSpec {
            table: 254,
            dst: IpPrefix::default_for(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            gateway: Some("198.18.1.1".parse().unwrap()),
            oif: 2,
            metric: 0,
            pref_src: Some("198.18.1.146".parse().unwrap()),
        };
        assert_eq!(
            Op::AddRoute(route).describe(&name),
            "add route default via 198.18.1.1 dev eth0 src 198.18.1.146 metric 0 table main"
        );
        let rule = RuleSpec {
            ipv6: false,
            priority: 31300,
            src: Some(IpPrefix {
                addr: "198.18.1.146".parse().unwrap(),
                len: 32,
            }),
            fwmark: None,
            table: 258,
        };
        assert_eq!(
            Op::DelRule(rule).describe(&name),
            "delete rule priority 31300 from 198.18.1.146 lookup 258"
        );
        let addr = AddressSpec {
            ifindex: 3,
            addr: "198.18.2.7".parse().unwrap(),
            prefix_len: 24,
        };
        assert_eq!(
            Op::AddAddress(addr).describe(&name),
            "add address 198.18.2.7/24 dev eth1"
        );
    }
}
