//! Checks for addresses and names that come from outside (D-Bus calls, state
//! files, main.conf) before they can reach the kernel or resolv.conf. One
//! validator per kind of value, used on every path in, so a value refused on
//! D-Bus cannot come in through a settings file instead. Pure: values in, a
//! typed reason out.
//!
//! - A manual IPv4 configuration ([`check_manual_ipv4`]): a unicast host
//!   address that is neither the network nor the broadcast address of its
//!   subnet, a prefix of 1..=32, and a gateway (if any) that is a unicast
//!   host of the same subnet other than the address itself (RFC 1122
//!   §3.2.1.3, RFC 3021 for /31).
//! - A nameserver or timeserver address ([`check_server_addr`]): unicast
//!   only; IPv6 link-local is refused because a settings file has no place
//!   for the zone it would need.
//! - A search domain ([`check_domain_name`]) and a timeserver host name
//!   ([`check_host_name`]): RFC 1123 labels, so nothing with a space, a
//!   newline or a `#` can become a resolv.conf line of its own.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::caps;
use crate::core::types::{prefix_to_mask, Ipv4Net, Name, Timeserver};

/// Why an IPv4 address is not a unicast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotUnicastV4 {
    /// `0.0.0.0`.
    Unspecified,
    /// `0.0.0.0/8`, "this network" (RFC 1122 §3.2.1.3).
    ThisNetwork,
    /// `127.0.0.0/8`.
    Loopback,
    /// `224.0.0.0/4`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, reserved (class E, RFC 1112 §4).
    Reserved,
}

impl fmt::Display for NotUnicastV4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotUnicastV4::Unspecified => "is the unspecified address",
            NotUnicastV4::ThisNetwork => "is in 0.0.0.0/8 (\"this network\")",
            NotUnicastV4::Loopback => "is in 127.0.0.0/8 (loopback)",
            NotUnicastV4::Multicast => "is in 224.0.0.0/4 (multicast)",
            NotUnicastV4::Broadcast => "is the limited broadcast address",
            NotUnicastV4::Reserved => "is in 240.0.0.0/4 (reserved, class E)",
        })
    }
}

/// Checks that an IPv4 address can be a host's unicast address.
pub fn check_unicast_v4(a: Ipv4Addr) -> Result<(), NotUnicastV4> {
    let first = a.octets()[0];
    if a.is_unspecified() {
        Err(NotUnicastV4::Unspecified)
    } else if first == 0 {
        Err(NotUnicastV4::ThisNetwork)
    } else if a.is_loopback() {
        Err(NotUnicastV4::Loopback)
    } else if a.is_multicast() {
        Err(NotUnicastV4::Multicast)
    } else if a.is_broadcast() {
        Err(NotUnicastV4::Broadcast)
    } else if first >= 240 {
        Err(NotUnicastV4::Reserved)
    } else {
        Ok(())
    }
}

/// Why an address cannot be a host in a given subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostProblem {
    /// Not a unicast address at all.
    NotUnicast(NotUnicastV4),
    /// The subnet's network address (host bits all zero).
    NetworkAddress,
    /// The subnet's directed broadcast address (host bits all one).
    BroadcastAddress,
    /// The gateway is the service's own address.
    OwnAddress,
    /// The gateway is outside the subnet, so no route reaches it.
    OffLink,
}

/// A manual IPv4 configuration that must not reach the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4ConfigError {
    /// Prefix length 0 (a /0 "subnet" is every address) or above 32.
    PrefixLen(u8),
    /// The address is not a usable host address of its subnet.
    Address { net: Ipv4Net, problem: HostProblem },
    /// The gateway is not a usable host of the address's subnet.
    Gateway {
        net: Ipv4Net,
        gateway: Ipv4Addr,
        problem: HostProblem,
    },
}

/// Which part of a manual IPv4 configuration an [`Ipv4ConfigError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Field {
    Address,
    Prefix,
    Gateway,
}

impl Ipv4ConfigError {
    /// The field at fault, so each caller can name it as its input does
    /// (D-Bus `Netmask`, state file `IPv4.netmask_prefixlen`, …).
    pub fn field(&self) -> Ipv4Field {
        match self {
            Ipv4ConfigError::PrefixLen(_) => Ipv4Field::Prefix,
            Ipv4ConfigError::Address { .. } => Ipv4Field::Address,
            Ipv4ConfigError::Gateway { .. } => Ipv4Field::Gateway,
        }
    }
}

fn subnet(net: &Ipv4Net) -> String {
    format!("{}/{}", net.network(), net.prefix_len)
}

impl fmt::Display for Ipv4ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ipv4ConfigError::PrefixLen(p) => {
                write!(f, "prefix length {p} is outside 1..=32")
            }
            Ipv4ConfigError::Address { net, problem } => {
                write!(f, "address {} ", net.addr)?;
                match problem {
                    HostProblem::NotUnicast(why) => write!(f, "{why}, not a host address"),
                    HostProblem::NetworkAddress => {
                        write!(f, "is the network address of {}", subnet(&net))
                    }
                    HostProblem::BroadcastAddress => {
                        write!(f, "is the broadcast address of {}", subnet(&net))
                    }
                    // Only gateways have these two.
                    HostProblem::OwnAddress | HostProblem::OffLink => {
                        write!(f, "is not usable")
                    }
                }
            }
            Ipv4ConfigError::Gateway {
                net,
                gateway,
                problem,
            } => {
                write!(f, "gateway {gateway} ")?;
                match problem {
                    HostProblem::NotUnicast(why) => write!(f, "{why}, not a router address"),
                    HostProblem::NetworkAddress => {
                        write!(f, "is the network address of {}", subnet(&net))
                    }
                    HostProblem::BroadcastAddress => {
                        write!(f, "is the broadcast address of {}", subnet(&net))
                    }
                    HostProblem::OwnAddress => write!(f, "is the address itself"),
                    HostProblem::OffLink => write!(
                        f,
                        "is not inside {} (an off-link gateway cannot be reached)",
                        subnet(&net)
                    ),
                }
            }
        }
    }
}

impl std::error::Error for Ipv4ConfigError {}

/// Whether `a` is the network or broadcast address of `prefix_len`'s subnet
/// around it. /31 (RFC 3021) and /32 have neither.
fn subnet_edge(a: Ipv4Addr, prefix_len: u8) -> Option<HostProblem> {
    if prefix_len >= 31 {
        return None;
    }
    let host = u32::from(a) & !prefix_to_mask(prefix_len);
    if host == 0 {
        Some(HostProblem::NetworkAddress)
    } else if host == !prefix_to_mask(prefix_len) {
        Some(HostProblem::BroadcastAddress)
    } else {
        None
    }
}

/// Checks a manual IPv4 configuration: address/prefix and optional gateway.
pub fn check_manual_ipv4(net: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<(), Ipv4ConfigError> {
    if !(1..=32).contains(&net.prefix_len) {
        return Err(Ipv4ConfigError::PrefixLen(net.prefix_len));
    }
    let addr_err = |problem| Ipv4ConfigError::Address { net, problem };
    check_unicast_v4(net.addr).map_err(|why| addr_err(HostProblem::NotUnicast(why)))?;
    if let Some(problem) = subnet_edge(net.addr, net.prefix_len) {
        return Err(addr_err(problem));
    }
    let Some(gateway) = gateway else {
        return Ok(());
    };
    let gw_err = |problem| Ipv4ConfigError::Gateway {
        net,
        gateway,
        problem,
    };
    check_unicast_v4(gateway).map_err(|why| gw_err(HostProblem::NotUnicast(why)))?;
    if gateway == net.addr {
        return Err(gw_err(HostProblem::OwnAddress));
    }
    let mask = prefix_to_mask(net.prefix_len);
    if u32::from(gateway) & mask != u32::from(net.addr) & mask {
        return Err(gw_err(HostProblem::OffLink));
    }
    if let Some(problem) = subnet_edge(gateway, net.prefix_len) {
        return Err(gw_err(problem));
    }
    Ok(())
}

/// Why an address cannot be a nameserver or timeserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotServer {
    /// An IPv4 address that is not unicast.
    V4(NotUnicastV4),
    /// `::`.
    Unspecified6,
    /// `::1`.
    Loopback6,
    /// `ff00::/8`.
    Multicast6,
    /// `fe80::/10`: needs a zone (interface) that a plain address list has
    /// no place for.
    LinkLocal6,
    /// `::ffff:0:0/96`: an IPv4 address in IPv6 clothing; written as IPv4
    /// it gets the IPv4 checks.
    Ipv4Mapped,
    /// `::/96` other than `::` and `::1`: deprecated IPv4-compatible
    /// addresses (RFC 4291 §2.5.5.1).
    Ipv4Compatible,
}

impl fmt::Display for NotServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotServer::V4(why) => write!(f, "{why}"),
            NotServer::Unspecified6 => f.write_str("is the unspecified address"),
            NotServer::Loopback6 => f.write_str("is the loopback address"),
            NotServer::Multicast6 => f.write_str("is in ff00::/8 (multicast)"),
            NotServer::LinkLocal6 => {
                f.write_str("is in fe80::/10 (link-local, would need an interface zone)")
            }
            NotServer::Ipv4Mapped => f.write_str("is IPv4-mapped (write the IPv4 address)"),
            NotServer::Ipv4Compatible => {
                f.write_str("is in ::/96 (deprecated IPv4-compatible address)")
            }
        }
    }
}

fn check_server_v6(a: Ipv6Addr) -> Result<(), NotServer> {
    let s = a.segments();
    if a.is_unspecified() {
        Err(NotServer::Unspecified6)
    } else if a.is_loopback() {
        Err(NotServer::Loopback6)
    } else if a.is_multicast() {
        Err(NotServer::Multicast6)
    } else if s[0] & 0xffc0 == 0xfe80 {
        Err(NotServer::LinkLocal6)
    } else if s[..5] == [0; 5] && s[5] == 0xffff {
        Err(NotServer::Ipv4Mapped)
    } else if s[..6] == [0; 6] {
        Err(NotServer::Ipv4Compatible)
    } else {
        Ok(())
    }
}

/// Checks that an address can be a nameserver or timeserver of a service.
pub fn check_server_addr(ip: IpAddr) -> Result<(), NotServer> {
    match ip {
        IpAddr::V4(a) => check_unicast_v4(a).map_err(NotServer::V4),
        IpAddr::V6(a) => check_server_v6(a),
    }
}

/// Why a string is not a domain or host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    /// Longer than 253 characters (RFC 1035 §2.3.4, without the root dot).
    TooLong(usize),
    /// Two dots in a row, or a leading or trailing dot.
    EmptyLabel,
    /// A label longer than 63 characters.
    LabelTooLong,
    /// A character other than a letter, digit, `-` or `.`.
    BadChar(char),
    /// A label that starts or ends with `-`.
    HyphenAtEdge,
    /// All labels are numbers: a resolver would read it as an IPv4 address
    /// (`127.1`, `0x7f000001`), bypassing the address checks.
    Numeric,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("is empty"),
            NameProblem::TooLong(n) => {
                write!(f, "is {n} characters long (at most {})", caps::MAX_NAME_LEN)
            }
            NameProblem::EmptyLabel => {
                f.write_str("has an empty label (a leading, trailing or double dot)")
            }
            NameProblem::LabelTooLong => f.write_str("has a label longer than 63 characters"),
            NameProblem::BadChar(c) => write!(
                f,
                "contains {c:?} (only letters, digits, '-' and '.' are allowed)"
            ),
            NameProblem::HyphenAtEdge => f.write_str("has a label that starts or ends with '-'"),
            NameProblem::Numeric => f.write_str("looks like a numeric address, not a name"),
        }
    }
}

/// Checks a domain name as a search domain (resolv.conf `search`): labels
/// of 1..=63 letters, digits and `-`, not starting or ending with `-`,
/// separated by single dots, at most 253 characters in all.
pub fn check_domain_name(s: &str) -> Result<(), NameProblem> {
    if s.is_empty() {
        return Err(NameProblem::Empty);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(NameProblem::BadChar(c));
    }
    if s.len() > caps::MAX_NAME_LEN {
        return Err(NameProblem::TooLong(s.len()));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(NameProblem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameProblem::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameProblem::HyphenAtEdge);
        }
    }
    Ok(())
}

/// True if inet_aton(3) would take `s` as an IPv4 address: one to four
/// dot-separated decimal, octal or `0x` hex numbers.
fn looks_numeric(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 4
        && parts.iter().all(|p| {
            let hex = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"));
            match hex {
                Some(h) => h.chars().all(|c| c.is_ascii_hexdigit()),
                None => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
            }
        })
}

/// Checks a host name (a timeserver given by name): a domain name that is
/// not a number in disguise (RFC 1123 §2.1) and whose last label is not all
/// digits (RFC 3696 §2).
pub fn check_host_name(s: &str) -> Result<(), NameProblem> {
    check_domain_name(s)?;
    let last = s.rsplit('.').next().unwrap_or(s);
    if looks_numeric(s) || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameProblem::Numeric);
    }
    Ok(())
}

/// Why a string is not a timeserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeserverProblem {
    /// An address, but not a server's.
    Address(NotServer),
    /// Not an address, and not a host name.
    Name(NameProblem),
}

impl fmt::Display for TimeserverProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeserverProblem::Address(why) => write!(f, "{why}"),
            TimeserverProblem::Name(why) => {
                write!(f, "is neither an IP address nor a host name: it {why}")
            }
        }
    }
}

/// Parses a timeserver: an IP address that passes [`check_server_addr`] or
/// a host name that passes [`check_host_name`] (ConnMan accepts both).
pub fn parse_timeserver(s: &str) -> Result<Timeserver, TimeserverProblem> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        check_server_addr(ip).map_err(TimeserverProblem::Address)?;
        return Ok(Timeserver::Addr(ip));
    }
    check_host_name(s).map_err(TimeserverProblem::Name)?;
    // check_domain_name bounds the length to the capacity of `Name`.
    Name::try_from(s)
        .map(Timeserver::Name)
        .map_err(|_| TimeserverProblem::Name(NameProblem::TooLong(s.len())))
}

/// Parses a search domain into a [`Name`] after [`check_domain_name`].
pub fn parse_domain(s: &str) -> Result<Name, NameProblem> {
    check_domain_name(s)?;
    Name::try_from(s).map_err(|_| NameProblem::TooLong(s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net(s: &str, p: u8) -> Ipv4Net {
        Ipv4Net {
            addr: v4(s),
            prefix_len: p,
        }
    }

    #[test]
    fn unicast_v4() {
        assert_eq!(check_unicast_v4(v4("192.0.2.1")), Ok(()));
        assert_eq!(check_unicast_v4(v4("169.254.3.4")), Ok(()));
        assert_eq!(check_unicast_v4(v4("223.255.255.254")), Ok(()));
        for (a, why) in [
            ("0.0.0.0", NotUnicastV4::Unspecified),
            ("0.1.2.3", NotUnicastV4::ThisNetwork),
            ("127.0.0.1", NotUnicastV4::Loopback),
            ("127.255.0.9", NotUnicastV4::Loopback),
            ("224.0.0.1", NotUnicastV4::Multicast),
            ("239.255.255.255", NotUnicastV4::Multicast),
            ("240.0.0.1", NotUnicastV4::Reserved),
            ("255.255.255.254", NotUnicastV4::Reserved),
            ("255.255.255.255", NotUnicastV4::Broadcast),
        ] {
            assert_eq!(check_unicast_v4(v4(a)), Err(why), "{a}");
        }
    }

    #[test]
    fn manual_ipv4_accepts_hosts() {
        assert_eq!(
            check_manual_ipv4(net("192.0.2.10", 24), Some(v4("192.0.2.1"))),
            Ok(())
        );
        assert_eq!(check_manual_ipv4(net("192.0.2.10", 24), None), Ok(()));
        // /31 (RFC 3021): both addresses are hosts.
        assert_eq!(
            check_manual_ipv4(net("192.0.2.0", 31), Some(v4("192.0.2.1"))),
            Ok(())
        );
        // /32 without a gateway: a host address alone.
        assert_eq!(check_manual_ipv4(net("192.0.2.0", 32), None), Ok(()));
        assert_eq!(check_manual_ipv4(net("10.0.0.1", 1), None), Ok(()));
    }

    #[test]
    fn manual_ipv4_refusals() {
        let addr = |a, p, problem| Ipv4ConfigError::Address {
            net: net(a, p),
            problem,
        };
        let nu = HostProblem::NotUnicast;
        for (n, gw, want) in [
            (net("192.0.2.10", 0), None, Ipv4ConfigError::PrefixLen(0)),
            (net("192.0.2.10", 33), None, Ipv4ConfigError::PrefixLen(33)),
            (net("0.0.0.0", 0), None, Ipv4ConfigError::PrefixLen(0)),
            (
                net("0.0.0.0", 24),
                None,
                addr("0.0.0.0", 24, nu(NotUnicastV4::Unspecified)),
            ),
            (
                net("127.0.0.1", 8),
                None,
                addr("127.0.0.1", 8, nu(NotUnicastV4::Loopback)),
            ),
            (
                net("240.0.0.1", 24),
                None,
                addr("240.0.0.1", 24, nu(NotUnicastV4::Reserved)),
            ),
            (
                net("224.0.0.5", 24),
                None,
                addr("224.0.0.5", 24, nu(NotUnicastV4::Multicast)),
            ),
            (
                net("192.0.2.0", 24),
                None,
                addr("192.0.2.0", 24, HostProblem::NetworkAddress),
            ),
            (
                net("192.0.2.255", 24),
                None,
                addr("192.0.2.255", 24, HostProblem::BroadcastAddress),
            ),
            (
                net("10.255.255.255", 8),
                None,
                addr("10.255.255.255", 8, HostProblem::BroadcastAddress),
            ),
        ] {
            assert_eq!(check_manual_ipv4(n, gw), Err(want), "{n:?}");
        }
    }

    #[test]
    fn gateway_refusals() {
        let n = net("192.0.2.10", 24);
        let gw = |g: &str, problem| {
            (
                g.to_string(),
                Ipv4ConfigError::Gateway {
                    net: n,
                    gateway: v4(g),
                    problem,
                },
            )
        };
        let nu = HostProblem::NotUnicast;
        for (g, want) in [
            gw("0.0.0.0", nu(NotUnicastV4::Unspecified)),
            gw("127.0.0.1", nu(NotUnicastV4::Loopback)),
            gw("224.0.0.1", nu(NotUnicastV4::Multicast)),
            gw("255.255.255.255", nu(NotUnicastV4::Broadcast)),
            gw("250.1.1.1", nu(NotUnicastV4::Reserved)),
            gw("192.0.2.10", HostProblem::OwnAddress),
            gw("198.51.100.1", HostProblem::OffLink),
            gw("192.0.2.0", HostProblem::NetworkAddress),
            gw("192.0.2.255", HostProblem::BroadcastAddress),
        ] {
            let got = check_manual_ipv4(n, Some(v4(&g)));
            assert_eq!(got, Err(want), "{g}");
            assert_eq!(got.unwrap_err().field(), Ipv4Field::Gateway);
        }
        // A /32 has no other host: any gateway is off-link.
        let e = check_manual_ipv4(net("192.0.2.10", 32), Some(v4("192.0.2.1"))).unwrap_err();
        assert!(e.to_string().contains("off-link"), "{e}");
    }

    #[test]
    fn messages_name_the_value_and_why() {
        let e = check_manual_ipv4(net("192.0.2.10", 24), Some(v4("198.51.100.1"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gateway 198.51.100.1 is not inside 192.0.2.0/24 (an off-link gateway cannot be reached)"
        );
        let e = check_manual_ipv4(net("127.0.0.1", 8), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 127.0.0.1 is in 127.0.0.0/8 (loopback), not a host address"
        );
        assert_eq!(e.field(), Ipv4Field::Address);
        let e = check_manual_ipv4(net("192.0.2.255", 24), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 192.0.2.255 is the broadcast address of 192.0.2.0/24"
        );
        assert_eq!(
            check_manual_ipv4(net("192.0.2.1", 0), None)
                .unwrap_err()
                .field(),
            Ipv4Field::Prefix
        );
    }

    #[test]
    fn server_addresses() {
        for ok in ["192.0.2.53", "2001:db8::53", "fd00::1", "169.254.1.1"] {
            assert_eq!(check_server_addr(ok.parse().unwrap()), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("0.0.0.0", NotServer::V4(NotUnicastV4::Unspecified)),
            ("127.0.0.53", NotServer::V4(NotUnicastV4::Loopback)),
            ("224.0.0.251", NotServer::V4(NotUnicastV4::Multicast)),
            ("255.255.255.255", NotServer::V4(NotUnicastV4::Broadcast)),
            ("240.0.0.1", NotServer::V4(NotUnicastV4::Reserved)),
            ("::", NotServer::Unspecified6),
            ("::1", NotServer::Loopback6),
            ("ff02::fb", NotServer::Multicast6),
            ("fe80::1", NotServer::LinkLocal6),
            ("febf::1", NotServer::LinkLocal6),
            ("::ffff:127.0.0.1", NotServer::Ipv4Mapped),
            ("::127.0.0.1", NotServer::Ipv4Compatible),
        ] {
            assert_eq!(check_server_addr(bad.parse().unwrap()), Err(why), "{bad}");
        }
    }

    #[test]
    fn domain_names() {
        for ok in [
            "lab.example",
            "a",
            "x-1.example.org",
            "EXAMPLE.com",
            "1.example",
            "10",
        ] {
            assert_eq!(check_domain_name(ok), Ok(()), "{ok}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["ab"; 127].join(".");
        for (bad, why) in [
            ("", NameProblem::Empty),
            (
                "lab.example\nnameserver 6.6.6.6",
                NameProblem::BadChar('\n'),
            ),
            ("a b", NameProblem::BadChar(' ')),
            ("a\tb", NameProblem::BadChar('\t')),
            ("a#b", NameProblem::BadChar('#')),
            ("a_b.example", NameProblem::BadChar('_')),
            ("a..b", NameProblem::EmptyLabel),
            (".a", NameProblem::EmptyLabel),
            ("a.", NameProblem::EmptyLabel),
            ("-a.example", NameProblem::HyphenAtEdge),
            ("a-.example", NameProblem::HyphenAtEdge),
            (long_label.as_str(), NameProblem::LabelTooLong),
            (long_name.as_str(), NameProblem::TooLong(380)),
        ] {
            assert_eq!(check_domain_name(bad), Err(why), "{bad:?}");
        }
        // 127 one-letter labels with 126 dots are exactly 253 characters.
        let max = ["a"; 127].join(".");
        assert_eq!(max.len(), 253);
        let mut over = max.clone();
        over.push('a');
        assert_eq!(check_domain_name(&max), Ok(()));
        assert_eq!(check_domain_name(&over), Err(NameProblem::TooLong(254)));
    }

    #[test]
    fn timeservers() {
        assert_eq!(
            parse_timeserver("pool.ntp.org"),
            Ok(Timeserver::Name(Name::try_from("pool.ntp.org").unwrap()))
        );
        assert_eq!(
            parse_timeserver("192.0.2.123"),
            Ok(Timeserver::Addr("192.0.2.123".parse().unwrap()))
        );
        assert_eq!(
            parse_timeserver("2001:db8::123").map(|t| t.to_string()),
            Ok("2001:db8::123".to_string())
        );
        for numeric in [
            "127.1",
            "0x7f000001",
            "0X7F.1",
            "2130706433",
            "0177.0.0.1",
            "1.2.3.4.5.6",
            "ntp.123",
        ] {
            assert_eq!(
                parse_timeserver(numeric),
                Err(TimeserverProblem::Name(NameProblem::Numeric)),
                "{numeric}"
            );
        }
        assert!(parse_timeserver("0x7f.example").is_ok());
        assert_eq!(
            parse_timeserver("127.0.0.1"),
            Err(TimeserverProblem::Address(NotServer::V4(
                NotUnicastV4::Loopback
            )))
        );
        let e = parse_timeserver("ntp example").unwrap_err();
        assert!(e.to_string().contains("' '"), "{e}");
    }

    proptest! {
        /// Whatever a check lets through is what the kernel and resolv.conf
        /// may see: re-check the accepted values by their definitions.
        #[test]
        fn accepted_manual_configs_are_hosts(a in any::<u32>(), p in 0u8..=40, g in proptest::option::of(any::<u32>())) {
            let n = Ipv4Net { addr: Ipv4Addr::from(a), prefix_len: p };
            let gw = g.map(Ipv4Addr::from);
            if check_manual_ipv4(n, gw).is_ok() {
                prop_assert!((1..=32).contains(&p));
                let mask = prefix_to_mask(p);
                let first = (a >> 24) as u8;
                prop_assert!(first != 0 && first != 127 && first < 224);
                if p < 31 {
                    prop_assert!(a & !mask != 0 && a & !mask != !mask);
                }
                if let Some(g) = g {
                    prop_assert!(g != a && g & mask == a & mask);
                    let gfirst = (g >> 24) as u8;
                    prop_assert!(gfirst != 0 && gfirst != 127 && gfirst < 224);
                }
            }
        }

        #[test]
        fn accepted_names_are_safe_in_resolv_conf(s in any::<String>()) {
            if check_domain_name(&s).is_ok() {
                prop_assert!(!s.is_empty() && s.len() <= 253);
                prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            }
            let _ = parse_timeserver(&s);
        }

        #[test]
        fn names_from_labels(labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", 1..6)) {
            let name = labels.join(".");
            prop_assert_eq!(check_domain_name(&name), Ok(()));
        }
    }
}

/// Why a time zone name is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadZone(pub &'static str);

impl fmt::Display for BadZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A tzdata zone name as `Clock.Timezone` takes it: `Area/Location` style,
/// relative, no `.`/`..` components, only letters, digits and `_+-/`, at
/// most 128 characters. Whether the zone exists is the zoneinfo
/// directory's to say.
pub fn check_zone_name(s: &str) -> Result<(), BadZone> {
    if s.is_empty() || s.len() > 128 {
        return Err(BadZone("must be 1 to 128 characters"));
    }
    if s.starts_with('/') {
        return Err(BadZone("must be relative to the zoneinfo directory"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '/'))
    {
        return Err(BadZone("may hold only letters, digits and _ + - /"));
    }
    if s.split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(BadZone("has an empty, '.' or '..' component"));
    }
    Ok(())
}

#[cfg(test)]
mod zone_tests {
    use super::*;

    #[test]
    fn zone_names() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert_eq!(check_zone_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "Europe/../../x",
            "a//b",
            "a b",
            "Europe/Berlin\n",
            "x/.",
        ] {
            assert!(check_zone_name(bad).is_err(), "{bad:?}");
        }
    }
}
