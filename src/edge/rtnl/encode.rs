//! Pure request builders: an [`Op`] or a dump request becomes one rtnetlink
//! message appended to a send buffer, written byte by byte after the kernel's
//! uapi structs (`linux/rtnetlink.h`, `if_link.h`, `if_addr.h`,
//! `fib_rules.h`) in native byte order, as netlink wants. pathman sends a
//! dozen kinds of message; a general rtnetlink library cost a fifth of the
//! binary for them.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};

use super::consts::*;
use crate::caps::RT_PROTO_PATHMAN;
use crate::core::netstate::{AddressSpec, Op, RouteSpec, RuleSpec};
use crate::core::types::prefix_to_mask;

/// What a dump request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DumpKind {
    Links,
    Addresses,
    Routes,
    Rules,
}

/// Flags of a change request: every change is acknowledged. Address and
/// rule adds fail with EEXIST instead of silently replacing something. Route
/// adds replace: the kernel keys IPv4 routes by (table, dst, metric), so a
/// new default route at a metric another uplink's route still holds must take
/// its place in one step (that is how the default moves on failover); the
/// reconciler's mirror records the replacement.
fn change_flags(op: &Op) -> u16 {
    match op {
        Op::AddRoute(_) => NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        Op::AddAddress(_) | Op::AddRule(_) => NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        Op::DelAddress(_) | Op::DelRoute(_) | Op::DelRule(_) => NLM_F_REQUEST | NLM_F_ACK,
    }
}

fn family(ipv6: bool) -> u8 {
    if ipv6 {
        AF_INET6
    } else {
        AF_INET
    }
}

/// The `rtm_table` / `frh.table` header byte: tables above 255 only fit in
/// the `*_TABLE` attribute, and the kernel wants UNSPEC in the header then.
fn header_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RT_TABLE_UNSPEC)
}

/// One message being written at the end of a send buffer: the netlink
/// header, then the family header, then attributes, each 4-byte aligned.
struct Msg<'a> {
    tx: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Msg<'a> {
    /// Starts a message of `kind` (RTM_*) with `flags` and sequence `seq`,
    /// 4-byte aligned after what `tx` already holds.
    fn begin(tx: &'a mut Vec<u8>, kind: u16, flags: u16, seq: u32) -> Msg<'a> {
        let start = tx.len().next_multiple_of(4);
        tx.resize(start, 0);
        tx.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by `end`
        tx.extend_from_slice(&kind.to_ne_bytes());
        tx.extend_from_slice(&flags.to_ne_bytes());
        tx.extend_from_slice(&seq.to_ne_bytes());
        tx.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
        Msg { tx, start }
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.tx.extend_from_slice(b);
        self
    }

    fn pad(&mut self) {
        let aligned = self.tx.len().next_multiple_of(4);
        self.tx.resize(aligned, 0);
    }

    /// One attribute: `nla_len` (header + value, unpadded), `nla_type`,
    /// the value, padding to 4.
    fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = (NLA_HDRLEN + value.len()) as u16;
        self.tx.extend_from_slice(&len.to_ne_bytes());
        self.tx.extend_from_slice(&kind.to_ne_bytes());
        self.tx.extend_from_slice(value);
        self.pad();
        self
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn attr_ip(&mut self, kind: u16, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(a) => self.attr(kind, &a.octets()),
            IpAddr::V6(a) => self.attr(kind, &a.octets()),
        }
    }

    /// A nested attribute whose content `fill` writes.
    fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Self)) -> &mut Self {
        let at = self.tx.len();
        self.attr(kind, &[]);
        fill(self);
        let len = (self.tx.len() - at) as u16;
        self.tx[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Sets `nlmsg_len`: everything from the header on (attributes are
    /// padded, so it is a multiple of 4).
    fn end(self) {
        let len = (self.tx.len() - self.start) as u32;
        self.tx[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// `struct ifinfomsg`: family, pad, type, index, flags, change mask.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// Appends the request for `op`.
pub(super) fn push_op(tx: &mut Vec<u8>, seq: u32, op: &Op) {
    let flags = change_flags(op);
    match op {
        Op::AddAddress(a) => address_message(tx, RTM_NEWADDR, flags, seq, a),
        Op::DelAddress(a) => address_message(tx, RTM_DELADDR, flags, seq, a),
        Op::AddRoute(r) => route_message(tx, RTM_NEWROUTE, flags, seq, r),
        Op::DelRoute(r) => route_message(tx, RTM_DELROUTE, flags, seq, r),
        Op::AddRule(r) => rule_message(tx, RTM_NEWRULE, flags, seq, r),
        Op::DelRule(r) => rule_message(tx, RTM_DELRULE, flags, seq, r),
    }
}

/// Appends a dump request of every object of `kind`, all families, all
/// tables: a zeroed family header.
pub(super) fn push_dump(tx: &mut Vec<u8>, seq: u32, kind: DumpKind) {
    let (msg_kind, header_len) = match kind {
        DumpKind::Links => (RTM_GETLINK, IFINFOMSG_LEN),
        DumpKind::Addresses => (RTM_GETADDR, IFADDRMSG_LEN),
        DumpKind::Routes => (RTM_GETROUTE, RTMSG_LEN),
        DumpKind::Rules => (RTM_GETRULE, FIB_RULE_HDR_LEN),
    };
    let mut m = Msg::begin(tx, msg_kind, NLM_F_REQUEST | NLM_F_DUMP, seq);
    m.bytes(&[0; IFINFOMSG_LEN][..header_len]);
    m.end();
}

/// Appends an RTM_NEWLINK that changes only IFF_UP of `ifindex`.
pub(super) fn push_set_link_up(tx: &mut Vec<u8>, seq: u32, ifindex: u32, up: bool) {
    let flags = if up { IFF_UP } else { 0 };
    let mut m = Msg::begin(tx, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.bytes(&ifinfomsg(ifindex, flags, IFF_UP));
    m.end();
}

/// Appends an RTM_NEWLINK creating a bridge named `name` (up, STP off: the
/// kernel's default, so ports forward at once).
pub(super) fn push_new_bridge(tx: &mut Vec<u8>, seq: u32, name: &str) {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let mut m = Msg::begin(tx, RTM_NEWLINK, flags, seq);
    m.bytes(&ifinfomsg(0, IFF_UP, IFF_UP));
    // IFLA_IFNAME is NUL-terminated; IFLA_INFO_KIND need not be (iproute2
    // sends it without).
    let mut ifname = name.as_bytes().to_vec();
    ifname.push(0);
    m.attr(IFLA_IFNAME, &ifname);
    m.nest(IFLA_LINKINFO, |m| {
        m.attr(IFLA_INFO_KIND, b"bridge");
    });
    m.end();
}

/// Appends an RTM_NEWLINK making `ifindex` a port of `master` (0: of none).
pub(super) fn push_set_master(tx: &mut Vec<u8>, seq: u32, ifindex: u32, master: u32) {
    let mut m = Msg::begin(tx, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.bytes(&ifinfomsg(ifindex, 0, 0));
    m.attr_u32(IFLA_MASTER, master);
    m.end();
}

/// Appends an RTM_DELLINK of `ifindex`.
pub(super) fn push_del_link(tx: &mut Vec<u8>, seq: u32, ifindex: u32) {
    let mut m = Msg::begin(tx, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    m.bytes(&ifinfomsg(ifindex, 0, 0));
    m.end();
}

/// The scope `ip addr add` would pick for an IPv4 address; the kernel
/// derives IPv6 scopes itself.
fn ipv4_scope(addr: Ipv4Addr) -> u8 {
    if addr.is_loopback() {
        RT_SCOPE_HOST
    } else if addr.is_link_local() {
        RT_SCOPE_LINK
    } else {
        RT_SCOPE_UNIVERSE
    }
}

/// An address request (`struct ifaddrmsg`: family, prefix length, flags,
/// scope, index). No IFA_F_NOPREFIXROUTE: the kernel's subnet route in
/// `main` is wanted.
fn address_message(tx: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, spec: &AddressSpec) {
    let scope = match spec.addr {
        IpAddr::V4(a) => ipv4_scope(a),
        IpAddr::V6(_) => RT_SCOPE_UNIVERSE,
    };
    let mut m = Msg::begin(tx, kind, flags, seq);
    m.bytes(&[family(spec.addr.is_ipv6()), spec.prefix_len, 0, scope]);
    m.bytes(&spec.ifindex.to_ne_bytes());
    m.attr_ip(IFA_LOCAL, spec.addr);
    m.attr_ip(IFA_ADDRESS, spec.addr);
    if let IpAddr::V4(a) = spec.addr {
        // /31 and /32 have no broadcast address (RFC 3021).
        if spec.prefix_len < 31 {
            let bcast = u32::from(a) | !prefix_to_mask(spec.prefix_len);
            m.attr(IFA_BROADCAST, &bcast.to_be_bytes());
        }
    }
    m.attr(IFA_PROTO, &[RT_PROTO_PATHMAN]);
    m.end();
}

/// A route request (`struct rtmsg`). Deletes carry pathman's protocol so the
/// kernel only ever removes a route pathman installed, and a wildcard scope.
fn route_message(tx: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, spec: &RouteSpec) {
    let scope = if kind == RTM_DELROUTE {
        RT_SCOPE_NOWHERE
    } else if spec.gateway.is_some() {
        RT_SCOPE_UNIVERSE
    } else {
        RT_SCOPE_LINK
    };
    let mut m = Msg::begin(tx, kind, flags, seq);
    m.bytes(&[
        family(spec.dst.is_ipv6()),
        spec.dst.len,
        0, // src_len
        0, // tos
        header_table(spec.table),
        RT_PROTO_PATHMAN,
        scope,
        RTN_UNICAST,
    ]);
    m.bytes(&0u32.to_ne_bytes()); // rtm_flags
    m.attr_u32(RTA_TABLE, spec.table);
    if spec.dst.len > 0 {
        m.attr_ip(RTA_DST, spec.dst.addr);
    }
    if let Some(gw) = spec.gateway {
        m.attr_ip(RTA_GATEWAY, gw);
    }
    m.attr_u32(RTA_OIF, spec.oif);
    m.attr_u32(RTA_PRIORITY, spec.metric);
    if let Some(src) = spec.pref_src {
        m.attr_ip(RTA_PREFSRC, src);
    }
    m.end();
}

/// A rule request (`struct fib_rule_hdr`): explicit priority, FRA_TABLE,
/// exact fwmark, pathman's protocol (which also restricts deletes to
/// pathman's own rules).
fn rule_message(tx: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, spec: &RuleSpec) {
    let src_len = spec.src.map_or(0, |s| s.len);
    let mut m = Msg::begin(tx, kind, flags, seq);
    m.bytes(&[
        family(spec.ipv6),
        0, // dst_len
        src_len,
        0, // tos
        header_table(spec.table),
        0,
        0,
        FR_ACT_TO_TBL,
    ]);
    m.bytes(&0u32.to_ne_bytes()); // flags
    m.attr_u32(FRA_PRIORITY, spec.priority);
    m.attr_u32(FRA_TABLE, spec.table);
    if let Some(src) = spec.src {
        m.attr_ip(FRA_SRC, src.addr);
    }
    if let Some(mark) = spec.fwmark {
        m.attr_u32(FRA_FWMARK, mark);
        m.attr_u32(FRA_FWMASK, u32::MAX);
    }
    m.attr(FRA_PROTOCOL, &[RT_PROTO_PATHMAN]);
    m.end();
}
