//! Flow selectors: the 5-tuple strings of a session's `FlowSelectors`
//! setting (SPEC §5), parsed into validated values the firewall planner turns
//! into nftables rules. Pure: no I/O.
//!
//! Grammar: `SRC-DST-PROTO-SPORT-DPORT`, fields separated by `-` (which never
//! occurs in an address, so plain splitting is safe even for IPv6). Trailing
//! fields may be left out and then mean `*`.
//!
//! - SRC, DST: `*`, an IPv4 or IPv6 address, optionally `/prefix`. IPv6 may be
//!   bracketed (`[fd00::1]/64`) or bare (`fd00::1/64`). An address without a
//!   prefix is a host (/32, /128). Host bits set beyond the prefix
//!   (`10.1.2.3/8`) are an error rather than silently masked: the user most
//!   likely meant something else, and SPEC prefers a clear error.
//! - PROTO: `*`, `tcp`, `udp`, `sctp`, `udplite`, `icmp`, `icmpv6` (lower
//!   case) or a decimal number 0–255.
//! - SPORT, DPORT: `*`, `N` or `N:M` with 1 ≤ N ≤ M ≤ 65535. Port 0 is refused:
//!   no packet on the wire carries it (bind to port 0 picks an ephemeral port),
//!   so a selector naming it could never match and is surely a mistake.
//!   Ports need PROTO tcp, udp, sctp or udplite.
//!
//! Cross-field rules: SRC and DST of different families, `icmp` (1) with an
//! IPv6 address and `icmpv6` (58) with an IPv4 address are errors.
//!
//! The canonical text ([`fmt::Display`]) always has all five fields, bare IPv6,
//! no prefix for host addresses, protocol names where one exists and `N`
//! for a one-port range. Five fields is also what the original ConnMan fork
//! required, so the canonical form is accepted there too.

use std::fmt;
use std::net::IpAddr;

use crate::caps::{MAX_SELECTORS_PER_SESSION, MAX_SELECTOR_LEN};
use crate::core::firewall::{Family, FlowMatch};

/// IP protocol numbers that carry ports (IANA).
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;
const PROTO_UDPLITE: u8 = 136;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// Protocol names accepted in PROTO, and printed for their numbers.
const PROTO_NAMES: [(&str, u8); 6] = [
    ("tcp", PROTO_TCP),
    ("udp", PROTO_UDP),
    ("sctp", PROTO_SCTP),
    ("udplite", PROTO_UDPLITE),
    ("icmp", PROTO_ICMP),
    ("icmpv6", PROTO_ICMPV6),
];

/// Most fields a selector has.
const MAX_FIELDS: usize = 5;

/// An address with a prefix length; host bits beyond the prefix are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl IpPrefix {
    /// The address family.
    pub fn family(&self) -> Family {
        family_of(&self.addr)
    }

    /// Full length of the family: 32 or 128.
    fn max_len(&self) -> u8 {
        max_prefix_len(&self.addr)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.len != self.max_len() {
            write!(f, "/{}", self.len)?;
        }
        Ok(())
    }
}

/// An inclusive port range; `first == last` for a single port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

/// A parsed, validated flow selector. `None` in a field means `*` (any).
/// Only [`parse`] builds one, so every value obeys the grammar's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowSelector {
    src: Option<IpPrefix>,
    dst: Option<IpPrefix>,
    proto: Option<u8>,
    sport: Option<PortRange>,
    dport: Option<PortRange>,
}

impl FlowSelector {
    /// Source address match.
    pub fn src(&self) -> Option<IpPrefix> {
        self.src
    }

    /// Destination address match.
    pub fn dst(&self) -> Option<IpPrefix> {
        self.dst
    }

    /// IP protocol number.
    pub fn proto(&self) -> Option<u8> {
        self.proto
    }

    /// Source port range.
    pub fn sport(&self) -> Option<PortRange> {
        self.sport
    }

    /// Destination port range.
    pub fn dport(&self) -> Option<PortRange> {
        self.dport
    }

    /// The address family the selector is limited to: that of its addresses,
    /// else the one implied by `icmp`/`icmpv6` (those protocol numbers only
    /// exist in one family), else none (both families).
    pub fn family(&self) -> Option<Family> {
        match (self.src.or(self.dst), self.proto) {
            (Some(p), _) => Some(p.family()),
            (None, Some(PROTO_ICMP)) => Some(Family::V4),
            (None, Some(PROTO_ICMPV6)) => Some(Family::V6),
            (None, _) => None,
        }
    }

    /// The firewall's view of the selector.
    pub fn to_match(&self) -> FlowMatch {
        FlowMatch {
            family: self.family(),
            src: self.src.map(|p| (p.addr, p.len)),
            dst: self.dst.map(|p| (p.addr, p.len)),
            proto: self.proto,
            sport: self.sport.map(|r| (r.first, r.last)),
            dport: self.dport.map(|r| (r.first, r.last)),
            uid: None,
        }
    }
}

impl fmt::Display for FlowSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn any<T: fmt::Display>(f: &mut fmt::Formatter<'_>, v: &Option<T>) -> fmt::Result {
            match v {
                Some(v) => write!(f, "{v}"),
                None => f.write_str("*"),
            }
        }
        any(f, &self.src)?;
        f.write_str("-")?;
        any(f, &self.dst)?;
        f.write_str("-")?;
        match self.proto {
            Some(n) => match PROTO_NAMES.iter().find(|(_, num)| *num == n) {
                Some((name, _)) => f.write_str(name)?,
                None => write!(f, "{n}")?,
            },
            None => f.write_str("*")?,
        }
        f.write_str("-")?;
        any(f, &self.sport)?;
        f.write_str("-")?;
        any(f, &self.dport)
    }
}

/// The part of a selector an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Src,
    Dst,
    Proto,
    Sport,
    Dport,
    /// The selector as a whole (empty, too long, too many fields, too many
    /// selectors).
    Whole,
}

impl Field {
    /// The name used in error messages (the grammar's upper-case names).
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Src => "SRC",
            Field::Dst => "DST",
            Field::Proto => "PROTO",
            Field::Sport => "SPORT",
            Field::Dport => "DPORT",
            Field::Whole => "selector",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a selector was refused; reaches the client as `InvalidArguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// The selector as given (cut to [`MAX_SELECTOR_LEN`] bytes so a hostile
    /// string does not end up whole in logs and replies).
    pub selector: String,
    /// The field at fault.
    pub field: Field,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow selector '{}': ", self.selector)?;
        if self.field != Field::Whole {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SelectorError {}

/// A field error before the selector text is attached.
type FieldResult<T> = Result<T, (Field, String)>;

/// Parses one flow selector.
pub fn parse(s: &str) -> Result<FlowSelector, SelectorError> {
    parse_fields(s).map_err(|(field, reason)| SelectorError {
        selector: excerpt(s).to_string(),
        field,
        reason,
    })
}

/// Parses a session's whole `FlowSelectors` list: all or nothing, the first
/// bad selector is reported. Duplicates are kept (they are harmless and the
/// client sees its list reported back as given).
pub fn parse_list(
    items: &[String],
) -> Result<heapless::Vec<FlowSelector, MAX_SELECTORS_PER_SESSION>, SelectorError> {
    if items.len() > MAX_SELECTORS_PER_SESSION {
        // Checked first so an oversized list is not parsed at all.
        return Err(SelectorError {
            selector: excerpt(&items[MAX_SELECTORS_PER_SESSION]).to_string(),
            field: Field::Whole,
            reason: format!(
                "{} selectors given, at most {MAX_SELECTORS_PER_SESSION} per session \
                 (MAX_SELECTORS_PER_SESSION)",
                items.len()
            ),
        });
    }
    let mut out = heapless::Vec::new();
    for item in items {
        let selector = parse(item)?;
        // Cannot fail: the length was checked above.
        let _ = out.push(selector);
    }
    Ok(out)
}

/// `s` cut to at most [`MAX_SELECTOR_LEN`] bytes on a char boundary.
fn excerpt(s: &str) -> &str {
    if s.len() <= MAX_SELECTOR_LEN {
        return s;
    }
    let mut end = MAX_SELECTOR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn parse_fields(s: &str) -> FieldResult<FlowSelector> {
    if s.is_empty() {
        return Err((Field::Whole, "is empty (use * for all traffic)".into()));
    }
    if s.len() > MAX_SELECTOR_LEN {
        return Err((
            Field::Whole,
            format!("is longer than {MAX_SELECTOR_LEN} characters (MAX_SELECTOR_LEN)"),
        ));
    }
    let count = s.split('-').count();
    if count > MAX_FIELDS {
        return Err((
            Field::Whole,
            format!("has {count} fields, at most 5 (SRC-DST-PROTO-SPORT-DPORT)"),
        ));
    }
    let mut fields = ["*"; MAX_FIELDS];
    for (slot, text) in fields.iter_mut().zip(s.split('-')) {
        *slot = text;
    }
    let [src, dst, proto, sport, dport] = fields;

    let src = parse_prefix(src).map_err(|r| (Field::Src, r))?;
    let dst = parse_prefix(dst).map_err(|r| (Field::Dst, r))?;
    let proto = parse_proto(proto).map_err(|r| (Field::Proto, r))?;
    let sport = parse_ports(sport).map_err(|r| (Field::Sport, r))?;
    let dport = parse_ports(dport).map_err(|r| (Field::Dport, r))?;

    if let (Some(s), Some(d)) = (src, dst) {
        if s.family() != d.family() {
            return Err((
                Field::Dst,
                format!(
                    "{} is {} but SRC is {}",
                    d.addr,
                    family_name(d.family()),
                    family_name(s.family())
                ),
            ));
        }
    }
    if let (Some(addr), Some(p)) = (src.or(dst), proto) {
        let wrong = match p {
            PROTO_ICMP => addr.family() == Family::V6,
            PROTO_ICMPV6 => addr.family() == Family::V4,
            _ => false,
        };
        if wrong {
            let which = if src.is_some() { "SRC" } else { "DST" };
            return Err((
                Field::Proto,
                format!(
                    "{} does not go with {which} {} ({})",
                    proto_name(p),
                    addr.addr,
                    family_name(addr.family())
                ),
            ));
        }
    }
    for (field, range) in [(Field::Sport, sport), (Field::Dport, dport)] {
        if range.is_none() {
            continue;
        }
        let carries_ports = matches!(
            proto,
            Some(PROTO_TCP | PROTO_UDP | PROTO_SCTP | PROTO_UDPLITE)
        );
        if !carries_ports {
            let given = proto.map_or_else(|| "*".to_string(), proto_name);
            return Err((
                field,
                format!("ports need PROTO tcp, udp, sctp or udplite, not {given}"),
            ));
        }
    }

    Ok(FlowSelector {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

fn family_of(addr: &IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn max_prefix_len(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn proto_name(p: u8) -> String {
    match PROTO_NAMES.iter().find(|(_, num)| *num == p) {
        Some((name, _)) => (*name).to_string(),
        None => p.to_string(),
    }
}

/// Parses a decimal number of at most `max_digits` ASCII digits (no sign,
/// no spaces: `u32::from_str` would accept a leading `+`).
fn parse_decimal(s: &str, max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_prefix(s: &str) -> Result<Option<IpPrefix>, String> {
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() {
        return Err("empty (use * for any address)".into());
    }
    let (addr_text, len_text, bracketed) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(format!("'{s}' has '[' without ']'"));
        };
        let len = match after {
            "" => None,
            _ => match after.strip_prefix('/') {
                Some(len) => Some(len),
                None => return Err(format!("unexpected '{after}' after ']' in '{s}'")),
            },
        };
        (inner, len, true)
    } else {
        match s.split_once('/') {
            Some((a, l)) => (a, Some(l), false),
            None => (s, None, false),
        }
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("'{addr_text}' is not an IPv4 or IPv6 address"))?;
    if bracketed && addr.is_ipv4() {
        return Err(format!("brackets are for IPv6 addresses, not {addr}"));
    }
    let max = max_prefix_len(&addr);
    let len = match len_text {
        None => max,
        Some(t) => match parse_decimal(t, 3) {
            Some(n) if n <= u32::from(max) => n as u8,
            _ => return Err(format!("'/{t}' is not a prefix length (0-{max})")),
        },
    };
    let network = network_of(addr, len);
    if network != addr {
        return Err(format!(
            "{addr}/{len} has host bits set (the network is {network}/{len})"
        ));
    }
    Ok(Some(IpPrefix { addr, len }))
}

/// `addr` with the bits beyond `len` cleared.
fn network_of(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

fn parse_proto(s: &str) -> Result<Option<u8>, String> {
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() {
        return Err("empty (use * for any protocol)".into());
    }
    if let Some((_, n)) = PROTO_NAMES.iter().find(|(name, _)| *name == s) {
        return Ok(Some(*n));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match parse_decimal(s, 3) {
            Some(n) if n <= 255 => Ok(Some(n as u8)),
            _ => Err(format!("{s} is not a protocol number (0-255)")),
        };
    }
    Err(format!(
        "unknown protocol '{s}' (tcp, udp, sctp, udplite, icmp, icmpv6 or 0-255)"
    ))
}

fn parse_ports(s: &str) -> Result<Option<PortRange>, String> {
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() {
        return Err("empty (use * for any port)".into());
    }
    let port = |t: &str| -> Result<u16, String> {
        match parse_decimal(t, 5) {
            Some(n @ 1..=65535) => Ok(n as u16),
            _ => Err(format!("{t} is not a port (1-65535)")),
        }
    };
    let range = match s.split_once(':') {
        None => {
            let p = port(s)?;
            PortRange { first: p, last: p }
        }
        Some((a, b)) => {
            let (first, last) = (port(a)?, port(b)?);
            if first > last {
                return Err(format!("range {s} runs backwards"));
            }
            PortRange { first, last }
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> FlowSelector {
        match parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn good_selectors_and_their_canonical_text() {
        let cases = [
            // The seed's examples.
            ("*-*-tcp-1111-2222", "*-*-tcp-1111-2222"),
            ("*-*-*-*-*", "*-*-*-*-*"),
            ("*-*-udp-7777-8888", "*-*-udp-7777-8888"),
            ("*-*-*", "*-*-*-*-*"),
            // Any number of fields up to five.
            ("*", "*-*-*-*-*"),
            ("*-*", "*-*-*-*-*"),
            ("*-*-tcp-*", "*-*-tcp-*-*"),
            ("*-*-tcp-80", "*-*-tcp-80-*"),
            // Addresses and prefixes.
            ("10.0.0.1", "10.0.0.1-*-*-*-*"),
            ("10.0.0.1/32", "10.0.0.1-*-*-*-*"),
            (
                "10.0.0.0/8-192.168.1.0/24",
                "10.0.0.0/8-192.168.1.0/24-*-*-*",
            ),
            ("0.0.0.0/0", "0.0.0.0/0-*-*-*-*"),
            ("*-fd00::1", "*-fd00::1-*-*-*"),
            ("*-[fd00::1]", "*-fd00::1-*-*-*"),
            (
                "[fd00::]/64-[2001:db8::]/32",
                "fd00::/64-2001:db8::/32-*-*-*",
            ),
            ("fd00::/64-2001:db8::1/128", "fd00::/64-2001:db8::1-*-*-*"),
            ("::/0", "::/0-*-*-*-*"),
            ("::ffff:10.0.0.1-*", "::ffff:10.0.0.1-*-*-*-*"),
            ("10.0.0.1/032", "10.0.0.1-*-*-*-*"),
            // Protocols by name and number.
            ("*-*-udp", "*-*-udp-*-*"),
            ("*-*-sctp-1-2", "*-*-sctp-1-2"),
            ("*-*-udplite-*-53", "*-*-udplite-*-53"),
            ("*-*-icmp", "*-*-icmp-*-*"),
            ("*-*-icmpv6", "*-*-icmpv6-*-*"),
            ("10.0.0.0/8-*-icmp", "10.0.0.0/8-*-icmp-*-*"),
            ("*-fd00::1-icmpv6", "*-fd00::1-icmpv6-*-*"),
            ("*-*-6-22", "*-*-tcp-22-*"),
            ("*-*-0", "*-*-0-*-*"),
            ("*-*-47", "*-*-47-*-*"),
            ("*-*-255", "*-*-255-*-*"),
            // Ports and ranges.
            ("*-*-tcp-1-65535", "*-*-tcp-1-65535"),
            ("*-*-tcp-1000:2000-80:80", "*-*-tcp-1000:2000-80"),
            ("*-*-udp-*-5000:5000", "*-*-udp-*-5000"),
            ("*-*-tcp-080", "*-*-tcp-80-*"),
            (
                "[fd00::]/8-[fd00::2]-tcp-1:2-3:4",
                "fd00::/8-fd00::2-tcp-1:2-3:4",
            ),
        ];
        for (input, canonical) in cases {
            let sel = ok(input);
            assert_eq!(sel.to_string(), canonical, "{input}");
            assert_eq!(ok(canonical), sel, "{input} round trip");
        }
    }

    #[test]
    fn bad_selectors_name_the_field() {
        use Field::*;
        let cases: &[(&str, Field, &str)] = &[
            ("", Whole, "is empty"),
            ("*-*-*-*-*-*", Whole, "has 6 fields"),
            ("*-*-tcp-1-2-", Whole, "has 6 fields"),
            // SRC / DST
            ("-*", Src, "empty"),
            ("*--tcp", Dst, "empty"),
            ("10.0.0", Src, "not an IPv4 or IPv6 address"),
            ("host.example", Src, "not an IPv4 or IPv6 address"),
            (" 10.0.0.1", Src, "not an IPv4 or IPv6 address"),
            ("fe80::1%eth0", Src, "not an IPv4 or IPv6 address"),
            ("10.0.0.1/33", Src, "not a prefix length (0-32)"),
            ("fd00::/129", Src, "not a prefix length (0-128)"),
            ("10.0.0.0/", Src, "not a prefix length"),
            ("10.0.0.0/+8", Src, "not a prefix length"),
            ("10.0.0.0/8/8", Src, "not a prefix length"),
            (
                "10.1.2.3/8",
                Src,
                "host bits set (the network is 10.0.0.0/8)",
            ),
            (
                "*-fd00::1/64",
                Dst,
                "host bits set (the network is fd00::/64)",
            ),
            ("[10.0.0.1]", Src, "brackets are for IPv6"),
            ("[fd00::1", Src, "without ']'"),
            ("[fd00::1]64", Src, "unexpected '64'"),
            ("[[fd00::1]]", Src, "unexpected ']' after ']'"),
            ("[fd00::1]]", Src, "unexpected"),
            ("10.0.0.1-fd00::1", Dst, "fd00::1 is IPv6 but SRC is IPv4"),
            (
                "[fd00::1]-10.0.0.1",
                Dst,
                "10.0.0.1 is IPv4 but SRC is IPv6",
            ),
            // PROTO
            ("*-*-", Proto, "empty"),
            ("*-*-TCP", Proto, "unknown protocol 'TCP'"),
            ("*-*-ip", Proto, "unknown protocol"),
            ("*-*-+6", Proto, "unknown protocol"),
            ("*-*-256", Proto, "256 is not a protocol number (0-255)"),
            ("*-*-0006", Proto, "not a protocol number"),
            (
                "fd00::1-*-icmp",
                Proto,
                "icmp does not go with SRC fd00::1 (IPv6)",
            ),
            (
                "*-10.0.0.1-icmpv6",
                Proto,
                "icmpv6 does not go with DST 10.0.0.1",
            ),
            ("*-fd00::1-1", Proto, "icmp does not go with DST"),
            // SPORT / DPORT
            ("*-*-tcp-", Sport, "empty"),
            ("*-*-tcp-*-", Dport, "empty"),
            ("*-*-tcp-0", Sport, "0 is not a port (1-65535)"),
            ("*-*-udp-*-99999", Dport, "99999 is not a port (1-65535)"),
            ("*-*-udp-*-65536", Dport, "65536 is not a port"),
            ("*-*-udp-http", Sport, "http is not a port"),
            ("*-*-udp-+80", Sport, "+80 is not a port"),
            ("*-*-tcp-2000:1000", Sport, "range 2000:1000 runs backwards"),
            ("*-*-tcp-1:2:3", Sport, "2:3 is not a port"),
            ("*-*-tcp-:80", Sport, " is not a port"),
            ("*-*-tcp-0:80", Sport, "0 is not a port"),
            (
                "*-*-*-80",
                Sport,
                "ports need PROTO tcp, udp, sctp or udplite, not *",
            ),
            ("*-*-icmp-*-80", Dport, "not icmp"),
            ("*-*-47-80", Sport, "not 47"),
        ];
        for (input, field, reason) in cases {
            match parse(input) {
                Ok(sel) => panic!("{input:?} parsed as {sel}"),
                Err(e) => {
                    assert_eq!(e.field, *field, "{input:?}: {e}");
                    assert!(e.reason.contains(reason), "{input:?}: {e}");
                    assert_eq!(e.selector, *input);
                }
            }
        }
    }

    #[test]
    fn error_message_format() {
        let e = parse("*-*-udp-*-99999").unwrap_err();
        assert_eq!(
            e.to_string(),
            "flow selector '*-*-udp-*-99999': DPORT: 99999 is not a port (1-65535)"
        );
        let e = parse("").unwrap_err();
        assert_eq!(
            e.to_string(),
            "flow selector '': is empty (use * for all traffic)"
        );
    }

    #[test]
    fn overlong_selector_is_refused_and_cut_in_the_error() {
        let long = format!("{}é", "1".repeat(MAX_SELECTOR_LEN - 1));
        let e = parse(&long).unwrap_err();
        assert_eq!(e.field, Field::Whole);
        assert!(e.reason.contains("MAX_SELECTOR_LEN"));
        // The 2-byte char straddles the cap, so the cut stops before it.
        assert_eq!(e.selector.len(), MAX_SELECTOR_LEN - 1);
        // The longest meaningful selector still fits.
        let widest = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0]/124-\
                      [ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0]/124-udplite-65534:65535-65534:65535";
        ok(widest);
    }

    #[test]
    fn to_match_carries_every_field() {
        let m = ok("10.0.0.0/8-10.1.0.1-tcp-1000:2000-443").to_match();
        assert_eq!(
            m,
            FlowMatch {
                family: Some(Family::V4),
                src: Some(("10.0.0.0".parse().unwrap(), 8)),
                dst: Some(("10.1.0.1".parse().unwrap(), 32)),
                proto: Some(6),
                sport: Some((1000, 2000)),
                dport: Some((443, 443)),
                uid: None,
            }
        );
        let all = ok("*-*-*").to_match();
        assert_eq!(
            all,
            FlowMatch {
                family: None,
                src: None,
                dst: None,
                proto: None,
                sport: None,
                dport: None,
                uid: None,
            }
        );
        assert_eq!(ok("*-fd00::/8").to_match().family, Some(Family::V6));
        assert_eq!(ok("*-*-icmp").to_match().family, Some(Family::V4));
        assert_eq!(ok("*-*-58").to_match().family, Some(Family::V6));
        assert_eq!(ok("*-*-udp").to_match().family, None);
    }

    #[test]
    fn list_is_all_or_nothing() {
        let items: Vec<String> = ["*-*-tcp-1111-2222", "*-*-*", "*-*-udp-7777-8888"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let list = parse_list(&items).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1], ok("*-*-*-*-*"));

        let mut bad = items.clone();
        bad.insert(1, "*-*-tcp-0".into());
        let e = parse_list(&bad).unwrap_err();
        assert_eq!((e.selector.as_str(), e.field), ("*-*-tcp-0", Field::Sport));

        assert!(parse_list(&[]).unwrap().is_empty());
        // Duplicates are kept as given.
        let dup = vec!["*".to_string(), "*".to_string()];
        assert_eq!(parse_list(&dup).unwrap().len(), 2);
    }

    #[test]
    fn list_cap() {
        let full = vec!["*".to_string(); MAX_SELECTORS_PER_SESSION];
        assert_eq!(parse_list(&full).unwrap().len(), MAX_SELECTORS_PER_SESSION);
        let over = vec!["*".to_string(); MAX_SELECTORS_PER_SESSION + 1];
        let e = parse_list(&over).unwrap_err();
        assert_eq!(e.field, Field::Whole);
        assert!(e.reason.contains("MAX_SELECTORS_PER_SESSION"), "{e}");
        assert!(e.reason.contains("65 selectors given, at most 64"), "{e}");
    }

    /// Valid field texts; the generated selector may still break a
    /// cross-field rule, which the round-trip property skips.
    fn addr_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
                let net = network_of(IpAddr::V4(a.into()), len);
                format!("{net}/{len}")
            }),
            any::<u32>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
            (any::<u128>(), 0u8..=128, any::<bool>()).prop_map(|(a, len, br)| {
                let net = network_of(IpAddr::V6(a.into()), len);
                if br {
                    format!("[{net}]/{len}")
                } else {
                    format!("{net}/{len}")
                }
            }),
        ]
    }

    fn proto_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            proptest::sample::select(PROTO_NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                .prop_map(str::to_string),
            any::<u8>().prop_map(|n| n.to_string()),
        ]
    }

    fn port_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            (1u16..).prop_map(|p| p.to_string()),
            (1u16.., 1u16..).prop_map(|(a, b)| format!("{}:{}", a.min(b), a.max(b))),
        ]
    }

    fn selector_text() -> impl Strategy<Value = String> {
        (
            addr_text(),
            addr_text(),
            proto_text(),
            port_text(),
            port_text(),
            1usize..=5,
        )
            .prop_map(|(s, d, p, sp, dp, n)| {
                let fields = [s, d, p, sp, dp];
                fields[..n].join("-")
            })
    }

    /// Either a whole-selector problem, or a field that exists in the input.
    fn error_is_located(input: &str, e: &SelectorError) -> bool {
        let count = input.split('-').count();
        let index = match e.field {
            Field::Whole => {
                return input.is_empty() || count > MAX_FIELDS || input.len() > MAX_SELECTOR_LEN
            }
            Field::Src => 0,
            Field::Dst => 1,
            Field::Proto => 2,
            Field::Sport => 3,
            Field::Dport => 4,
        };
        // Cross-field errors name DST, PROTO or a port field, and each of
        // those is only checked when it was written out.
        index < count && e.to_string().contains(e.field.as_str())
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,300}") {
            if let Err(e) = parse(&s) {
                prop_assert!(error_is_located(&s, &e), "{s:?}: {e}");
            }
        }

        #[test]
        fn selector_shaped_strings_never_panic(s in "[0-9a-fA-F:.\\[\\]/*tcpudl-]{0,80}") {
            if let Err(e) = parse(&s) {
                prop_assert!(error_is_located(&s, &e), "{s:?}: {e}");
            }
        }

        #[test]
        fn valid_selectors_round_trip(text in selector_text()) {
            if let Ok(sel) = parse(&text) {
                let canonical = sel.to_string();
                prop_assert_eq!(parse(&canonical), Ok(sel));
                // The canonical text is a fixed point.
                prop_assert_eq!(ok(&canonical).to_string(), canonical);
            }
        }

        #[test]
        fn field_valid_selectors_fail_only_on_cross_field_rules(text in selector_text()) {
            if let Err(e) = parse(&text) {
                let cross = e.reason.contains("but SRC is")
                    || e.reason.contains("does not go with")
                    || e.reason.contains("ports need PROTO");
                prop_assert!(cross, "{text:?}: {e}");
            }
        }

        #[test]
        fn mutations_parse_or_name_a_field(
            text in selector_text(),
            pos in any::<prop::sample::Index>(),
            op in 0u8..3,
            ch in prop::sample::select(vec!['-', ':', '/', '[', ']', '*', '0', '9', 'f', 'x', '.', 'é']),
        ) {
            let mut chars: Vec<char> = text.chars().collect();
            let i = pos.index(chars.len() + 1);
            match op {
                0 => chars.insert(i, ch),
                1 if i < chars.len() => { chars.remove(i); }
                _ if i < chars.len() => chars[i] = ch,
                _ => chars.push(ch),
            }
            let mutated: String = chars.into_iter().collect();
            match parse(&mutated) {
                Ok(sel) => prop_assert_eq!(parse(&sel.to_string()), Ok(sel)),
                Err(e) => prop_assert!(error_is_located(&mutated, &e), "{mutated:?}: {e}"),
            }
        }
    }
}
