//! What a lease may contain before it reaches the kernel (RFC 1122 §3.2.1.3, RFC 2131,
//! RFC 6890): pure checks on addresses, masks, routers, servers and names.
//!
//! The client rejects an offer or ACK whose address or mask fails ([`check_offer`]); a bad
//! router, DNS/NTP server or name only drops that item, with a log line, and the lease is
//! kept.

use crate::caps::DHCP_MIN_PREFIX_LEN;
use crate::core::types::prefix_to_mask;
use core::fmt;
use std::net::Ipv4Addr;

/// The special-purpose block an address falls in, if any (RFC 6890).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// 0.0.0.0/8, "this network" (RFC 1122 §3.2.1.3 (a)).
    ThisNetwork,
    /// 127.0.0.0/8.
    Loopback,
    /// 169.254.0.0/16 (RFC 3927).
    LinkLocal,
    /// 224.0.0.0/4.
    Multicast,
    /// 240.0.0.0/4, class E, including 255.255.255.255.
    Reserved,
}

impl Special {
    /// The block `a` falls in; None for an ordinary unicast address.
    pub fn of(a: Ipv4Addr) -> Option<Special> {
        let o = a.octets();
        match o[0] {
            0 => Some(Special::ThisNetwork),
            127 => Some(Special::Loopback),
            169 if o[1] == 254 => Some(Special::LinkLocal),
            224..=239 => Some(Special::Multicast),
            240..=255 => Some(Special::Reserved),
            _ => None,
        }
    }
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Special::ThisNetwork => "in 0.0.0.0/8 (\"this network\")",
            Special::Loopback => "loopback",
            Special::LinkLocal => "link-local",
            Special::Multicast => "multicast",
            Special::Reserved => "reserved (class E or broadcast)",
        })
    }
}

/// Why an offered or acknowledged address is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseError {
    /// The address is in a special-purpose block.
    Address(Ipv4Addr, Special),
    /// The address is the network address of the offered subnet.
    NetworkAddress(Ipv4Addr, u8),
    /// The address is the broadcast address of the offered subnet.
    BroadcastAddress(Ipv4Addr, u8),
    /// The address is the server's own (option 54).
    ServerAddress(Ipv4Addr),
    /// No subnet mask (option 1): there is no classful default.
    NoMask,
    /// The mask is not a run of ones followed by zeros.
    NonContiguousMask(Ipv4Addr),
    /// The mask is shorter than [`DHCP_MIN_PREFIX_LEN`].
    MaskTooShort(u8),
    /// No lease time (option 51), or zero.
    NoLeaseTime,
}

impl fmt::Display for LeaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseError::Address(a, s) => write!(f, "address {a} is {s}"),
            LeaseError::NetworkAddress(a, p) => {
                write!(f, "address {a} is the network address of its /{p}")
            }
            LeaseError::BroadcastAddress(a, p) => {
                write!(f, "address {a} is the broadcast address of its /{p}")
            }
            LeaseError::ServerAddress(a) => write!(f, "address {a} is the server's own"),
            LeaseError::NoMask => write!(f, "no subnet mask"),
            LeaseError::NonContiguousMask(m) => write!(f, "subnet mask {m} is not contiguous"),
            LeaseError::MaskTooShort(p) => {
                write!(f, "subnet mask /{p} is shorter than /{DHCP_MIN_PREFIX_LEN}")
            }
            LeaseError::NoLeaseTime => write!(f, "zero or missing lease time"),
        }
    }
}

impl std::error::Error for LeaseError {}

/// The prefix length of a subnet mask that is contiguous and at least
/// [`DHCP_MIN_PREFIX_LEN`] long.
pub fn prefix_of(mask: Option<Ipv4Addr>) -> Result<u8, LeaseError> {
    let mask = mask.ok_or(LeaseError::NoMask)?;
    let m = u32::from(mask);
    let ones = m.leading_ones();
    if m.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(LeaseError::NonContiguousMask(mask));
    }
    let len = ones as u8;
    if len < DHCP_MIN_PREFIX_LEN {
        return Err(LeaseError::MaskTooShort(len));
    }
    Ok(len)
}

/// Whether `a` is inside `net/len`.
pub fn in_subnet(a: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let m = prefix_to_mask(len);
    u32::from(a) & m == u32::from(net) & m
}

/// Network and broadcast address of `addr/len`; None for /31 and /32, which have neither
/// (RFC 3021).
fn network_and_broadcast(addr: Ipv4Addr, len: u8) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if len >= 31 {
        return None;
    }
    let m = prefix_to_mask(len);
    let net = u32::from(addr) & m;
    Some((Ipv4Addr::from(net), Ipv4Addr::from(net | !m)))
}

/// Checks an offered address: not special-purpose, not the server's own, and (when the
/// mask is known) neither the network nor the broadcast address of its subnet.
pub fn check_address(
    addr: Ipv4Addr,
    prefix: Option<u8>,
    server: Ipv4Addr,
) -> Result<(), LeaseError> {
    if let Some(s) = Special::of(addr) {
        return Err(LeaseError::Address(addr, s));
    }
    if addr == server {
        return Err(LeaseError::ServerAddress(addr));
    }
    let Some(p) = prefix else { return Ok(()) };
    if let Some((net, bcast)) = network_and_broadcast(addr, p) {
        if addr == net {
            return Err(LeaseError::NetworkAddress(addr, p));
        }
        if addr == bcast {
            return Err(LeaseError::BroadcastAddress(addr, p));
        }
    }
    Ok(())
}

/// Checks an acknowledged address and mask; returns the prefix length.
pub fn check_lease(
    addr: Ipv4Addr,
    mask: Option<Ipv4Addr>,
    server: Ipv4Addr,
) -> Result<u8, LeaseError> {
    check_address(addr, None, server)?;
    let prefix = prefix_of(mask)?;
    check_address(addr, Some(prefix), server)?;
    Ok(prefix)
}

/// Why a router (option 3) is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterError {
    /// In a special-purpose block.
    Special(Special),
    /// Our own leased address.
    Ours,
    /// Outside the subnet of a lease with a prefix shorter than /31.
    OffLink,
    /// The network or broadcast address of the subnet.
    SubnetEdge,
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::Special(s) => write!(f, "{s}"),
            RouterError::Ours => write!(f, "our own address"),
            RouterError::OffLink => write!(f, "not on the leased subnet"),
            RouterError::SubnetEdge => write!(f, "the subnet's network or broadcast address"),
        }
    }
}

/// Checks one router for the lease `addr/prefix`.
///
/// A /31 or /32 lease has no room for a router inside it, so any unicast router is taken
/// there and reached by an on-link host route (the planner adds it); for shorter prefixes
/// the router must be inside the subnet (RFC 1122 §3.3.1.1: a gateway is on a connected
/// network).
pub fn check_router(router: Ipv4Addr, addr: Ipv4Addr, prefix: u8) -> Result<(), RouterError> {
    if let Some(s) = Special::of(router) {
        return Err(RouterError::Special(s));
    }
    if router == addr {
        return Err(RouterError::Ours);
    }
    if let Some((net, bcast)) = network_and_broadcast(addr, prefix) {
        if !in_subnet(router, addr, prefix) {
            return Err(RouterError::OffLink);
        }
        if router == net || router == bcast {
            return Err(RouterError::SubnetEdge);
        }
    }
    Ok(())
}

/// Checks a DNS or NTP server: unicast, not loopback, not "this network". Link-local is
/// allowed (some clouds serve DNS on 169.254.169.253).
pub fn check_server(a: Ipv4Addr) -> Result<(), Special> {
    match Special::of(a) {
        Some(Special::LinkLocal) | None => Ok(()),
        Some(s) => Err(s),
    }
}

/// Longest label of a DNS name (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// The name in `raw` when it is a syntactically valid host or domain name: labels of
/// letters, digits and inner hyphens (RFC 952/1123), 1–63 bytes each, separated by dots,
/// at most `max` bytes in all. One trailing dot (root) and one trailing NUL (some servers
/// send C strings) are dropped.
pub fn valid_name(raw: &[u8], max: usize) -> Option<&str> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    if raw.is_empty() || raw.len() > max {
        return None;
    }
    for label in raw.split(|&c| c == b'.') {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-');
        if !ok {
            return None;
        }
    }
    core::str::from_utf8(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn special_blocks() {
        for (s, want) in [
            ("0.1.2.3", Some(Special::ThisNetwork)),
            ("0.0.0.0", Some(Special::ThisNetwork)),
            ("127.0.0.1", Some(Special::Loopback)),
            ("169.254.3.4", Some(Special::LinkLocal)),
            ("169.253.3.4", None),
            ("224.0.0.1", Some(Special::Multicast)),
            ("239.255.255.255", Some(Special::Multicast)),
            ("240.0.0.1", Some(Special::Reserved)),
            ("255.255.255.255", Some(Special::Reserved)),
            ("198.18.1.100", None),
            ("223.255.255.254", None),
        ] {
            assert_eq!(Special::of(a(s)), want, "{s}");
        }
    }

    #[test]
    fn offered_addresses() {
        let m24 = Some(a("255.255.255.0"));
        for (addr, want) in [
            (
                "127.0.0.1",
                Some(LeaseError::Address(a("127.0.0.1"), Special::Loopback)),
            ),
            (
                "240.0.0.1",
                Some(LeaseError::Address(a("240.0.0.1"), Special::Reserved)),
            ),
            (
                "0.1.2.3",
                Some(LeaseError::Address(a("0.1.2.3"), Special::ThisNetwork)),
            ),
            (
                "169.254.1.1",
                Some(LeaseError::Address(a("169.254.1.1"), Special::LinkLocal)),
            ),
            (
                "224.0.0.5",
                Some(LeaseError::Address(a("224.0.0.5"), Special::Multicast)),
            ),
            (
                "10.0.0.0",
                Some(LeaseError::NetworkAddress(a("10.0.0.0"), 24)),
            ),
            (
                "10.0.0.255",
                Some(LeaseError::BroadcastAddress(a("10.0.0.255"), 24)),
            ),
            ("10.0.0.1", Some(LeaseError::ServerAddress(SERVER))),
            ("10.0.0.50", None),
        ] {
            assert_eq!(check_lease(a(addr), m24, SERVER).err(), want, "{addr}");
        }
        // /31 and /32 have no network or broadcast address.
        assert_eq!(
            check_lease(a("10.0.0.0"), Some(a("255.255.255.254")), SERVER),
            Ok(31)
        );
        assert_eq!(
            check_lease(a("10.0.0.255"), Some(a("255.255.255.255")), SERVER),
            Ok(32)
        );
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_of(Some(a("255.255.255.255"))), Ok(32));
        assert_eq!(prefix_of(Some(a("255.255.240.0"))), Ok(20));
        assert_eq!(prefix_of(Some(a("255.0.0.0"))), Ok(8));
        assert_eq!(
            prefix_of(Some(a("255.255.0.255"))),
            Err(LeaseError::NonContiguousMask(a("255.255.0.255")))
        );
        assert_eq!(
            prefix_of(Some(a("0.0.0.0"))),
            Err(LeaseError::MaskTooShort(0))
        );
        assert_eq!(
            prefix_of(Some(a("254.0.0.0"))),
            Err(LeaseError::MaskTooShort(7))
        );
        assert_eq!(prefix_of(None), Err(LeaseError::NoMask));
    }

    #[test]
    fn routers() {
        let me = a("10.0.0.50");
        assert_eq!(check_router(a("10.0.0.1"), me, 24), Ok(()));
        for (r, want) in [
            ("10.0.0.50", RouterError::Ours),
            ("0.0.0.0", RouterError::Special(Special::ThisNetwork)),
            ("255.255.255.255", RouterError::Special(Special::Reserved)),
            ("224.0.0.1", RouterError::Special(Special::Multicast)),
            ("127.0.0.1", RouterError::Special(Special::Loopback)),
            ("240.1.1.1", RouterError::Special(Special::Reserved)),
            ("169.254.0.1", RouterError::Special(Special::LinkLocal)),
            ("10.0.1.1", RouterError::OffLink),
            ("10.0.0.0", RouterError::SubnetEdge),
            ("10.0.0.255", RouterError::SubnetEdge),
        ] {
            assert_eq!(check_router(a(r), me, 24), Err(want), "{r}");
        }
        // /32 and /31: any unicast router, reached by an on-link host route.
        assert_eq!(check_router(a("192.0.2.1"), me, 32), Ok(()));
        assert_eq!(check_router(a("10.0.0.51"), me, 31), Ok(()));
        assert_eq!(check_router(me, me, 32), Err(RouterError::Ours));
    }

    #[test]
    fn servers() {
        assert!(check_server(a("10.0.0.1")).is_ok());
        assert!(check_server(a("169.254.169.253")).is_ok());
        for s in [
            "0.0.0.0",
            "127.0.0.53",
            "224.0.0.251",
            "255.255.255.255",
            "240.0.0.1",
        ] {
            assert!(check_server(a(s)).is_err(), "{s}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(valid_name(b"lab.example", 253), Some("lab.example"));
        assert_eq!(valid_name(b"lab.example.", 253), Some("lab.example"));
        assert_eq!(valid_name(b"lan\0", 253), Some("lan"));
        assert_eq!(valid_name(b"a-1.b2", 253), Some("a-1.b2"));
        for bad in [
            &b""[..],
            b".",
            b"a..b",
            b".a",
            b"-a.b",
            b"a-.b",
            b"bad name",
            b"a_b",
            b"a\nb",
            b"caf\xc3\xa9",
            b"x;rm -rf",
        ] {
            assert_eq!(valid_name(bad, 253), None, "{bad:?}");
        }
        let label = [b'a'; 64];
        assert_eq!(valid_name(&label, 253), None);
        assert!(valid_name(&label[..63], 253).is_some());
        let long = b"abcdefgh.".repeat(30);
        assert_eq!(valid_name(&long, 253), None);
        assert_eq!(valid_name(b"abcd", 3), None);
    }

    proptest! {
        #[test]
        fn valid_names_are_safe(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(n) = valid_name(&raw, 253) {
                prop_assert!(n.len() <= 253);
                prop_assert!(n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'));
                prop_assert!(!n.starts_with('.') && !n.ends_with('.') && !n.contains(".."));
            }
        }

        #[test]
        fn accepted_addresses_are_ordinary_unicast(addr in any::<u32>(), len in 0u8..=32) {
            let addr = Ipv4Addr::from(addr);
            let mask = Ipv4Addr::from(prefix_to_mask(len));
            if let Ok(p) = check_lease(addr, Some(mask), SERVER) {
                prop_assert_eq!(p, len);
                prop_assert!(Special::of(addr).is_none());
                prop_assert!(addr != SERVER);
                if p < 31 {
                    let host = u32::from(addr) & !prefix_to_mask(p);
                    prop_assert!(host != 0 && host != !prefix_to_mask(p));
                }
            }
        }
    }
}
