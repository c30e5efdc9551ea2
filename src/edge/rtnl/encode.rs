//! Pure request builders: an [`Op`] or a dump request becomes one typed
//! netlink message appended to a send buffer.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressMessage, AddressProtocol, AddressScope,
};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::caps::RT_PROTO_PATHMAN;
use crate::core::netstate::{AddressSpec, Op, RouteSpec, RuleSpec};
use crate::core::types::prefix_to_mask;

/// `RT_SCOPE_NOWHERE`: in a route delete request it means "any scope".
const RT_SCOPE_NOWHERE: u8 = 255;

/// Attribute vectors kept between requests so that building a message does
/// not allocate once they have grown to their working size.
#[derive(Default)]
pub(super) struct Scratch {
    addr: Vec<AddressAttribute>,
    route: Vec<RouteAttribute>,
    rule: Vec<RuleAttribute>,
}

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

fn family(ipv6: bool) -> AddressFamily {
    if ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// The `rtm_table` / `frh.table` header byte: tables above 255 only fit in
/// the `*_TABLE` attribute, and the kernel wants UNSPEC in the header then.
fn header_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

/// Appends one message with sequence number `seq` to `tx`, 4-byte aligned
/// as netlink requires between messages, and hands the payload back so its
/// attribute vector can be reused.
fn push_message(
    tx: &mut Vec<u8>,
    seq: u32,
    flags: u16,
    payload: RouteNetlinkMessage,
) -> RouteNetlinkMessage {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    msg.finalize();
    let start = tx.len().next_multiple_of(4);
    let len = msg.buffer_len();
    tx.resize(start + len.next_multiple_of(4), 0);
    msg.serialize(&mut tx[start..start + len]);
    match msg.payload {
        NetlinkPayload::InnerMessage(inner) => inner,
        // `msg` was built with an inner message just above.
        _ => RouteNetlinkMessage::GetLink(LinkMessage::default()),
    }
}

/// Appends the request for `op`.
pub(super) fn push_op(tx: &mut Vec<u8>, seq: u32, op: &Op, scratch: &mut Scratch) {
    let flags = change_flags(op);
    let msg = match op {
        Op::AddAddress(a) => {
            RouteNetlinkMessage::NewAddress(address_message(a, std::mem::take(&mut scratch.addr)))
        }
        Op::DelAddress(a) => {
            RouteNetlinkMessage::DelAddress(address_message(a, std::mem::take(&mut scratch.addr)))
        }
        Op::AddRoute(r) => RouteNetlinkMessage::NewRoute(route_message(
            r,
            false,
            std::mem::take(&mut scratch.route),
        )),
        Op::DelRoute(r) => RouteNetlinkMessage::DelRoute(route_message(
            r,
            true,
            std::mem::take(&mut scratch.route),
        )),
        Op::AddRule(r) => {
            RouteNetlinkMessage::NewRule(rule_message(r, std::mem::take(&mut scratch.rule)))
        }
        Op::DelRule(r) => {
            RouteNetlinkMessage::DelRule(rule_message(r, std::mem::take(&mut scratch.rule)))
        }
    };
    match push_message(tx, seq, flags, msg) {
        RouteNetlinkMessage::NewAddress(m) | RouteNetlinkMessage::DelAddress(m) => {
            scratch.addr = m.attributes;
            scratch.addr.clear();
        }
        RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m) => {
            scratch.route = m.attributes;
            scratch.route.clear();
        }
        RouteNetlinkMessage::NewRule(m) | RouteNetlinkMessage::DelRule(m) => {
            scratch.rule = m.attributes;
            scratch.rule.clear();
        }
        _ => {}
    }
}

/// Appends a dump request of every object of `kind`, all families, all tables.
pub(super) fn push_dump(tx: &mut Vec<u8>, seq: u32, kind: DumpKind) {
    let msg = match kind {
        DumpKind::Links => RouteNetlinkMessage::GetLink(LinkMessage::default()),
        DumpKind::Addresses => RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        DumpKind::Routes => RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        DumpKind::Rules => RouteNetlinkMessage::GetRule(RuleMessage::default()),
    };
    push_message(tx, seq, NLM_F_REQUEST | NLM_F_DUMP, msg);
}

/// Appends an RTM_NEWLINK that changes only IFF_UP of `ifindex`.
pub(super) fn push_set_link_up(tx: &mut Vec<u8>, seq: u32, ifindex: u32, up: bool) {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.header.change_mask = LinkFlags::Up;
    msg.header.flags = if up {
        LinkFlags::Up
    } else {
        LinkFlags::empty()
    };
    push_message(
        tx,
        seq,
        NLM_F_REQUEST | NLM_F_ACK,
        RouteNetlinkMessage::NewLink(msg),
    );
}

/// Appends an RTM_NEWLINK creating a bridge named `name` (up, STP off: the
/// kernel's default, so ports forward at once).
pub(super) fn push_new_bridge(tx: &mut Vec<u8>, seq: u32, name: &str) {
    use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
    let mut msg = LinkMessage::default();
    msg.header.change_mask = LinkFlags::Up;
    msg.header.flags = LinkFlags::Up;
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    push_message(
        tx,
        seq,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        RouteNetlinkMessage::NewLink(msg),
    );
}

/// Appends an RTM_NEWLINK making `ifindex` a port of `master` (0: of none).
pub(super) fn push_set_master(tx: &mut Vec<u8>, seq: u32, ifindex: u32, master: u32) {
    use netlink_packet_route::link::LinkAttribute;
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Controller(master));
    push_message(
        tx,
        seq,
        NLM_F_REQUEST | NLM_F_ACK,
        RouteNetlinkMessage::NewLink(msg),
    );
}

/// Appends an RTM_DELLINK of `ifindex`.
pub(super) fn push_del_link(tx: &mut Vec<u8>, seq: u32, ifindex: u32) {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    push_message(
        tx,
        seq,
        NLM_F_REQUEST | NLM_F_ACK,
        RouteNetlinkMessage::DelLink(msg),
    );
}

/// The scope `ip addr add` would pick for an IPv4 address; the kernel
/// derives IPv6 scopes itself.
fn ipv4_scope(addr: Ipv4Addr) -> AddressScope {
    if addr.is_loopback() {
        AddressScope::Host
    } else if addr.is_link_local() {
        AddressScope::Link
    } else {
        AddressScope::Universe
    }
}

/// An address request. No IFA_F_NOPREFIXROUTE: the kernel's subnet route
/// in `main` is wanted.
pub(super) fn address_message(
    spec: &AddressSpec,
    mut attrs: Vec<AddressAttribute>,
) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = spec.ifindex;
    msg.header.prefix_len = spec.prefix_len;
    msg.header.family = family(spec.addr.is_ipv6());
    msg.header.scope = match spec.addr {
        IpAddr::V4(a) => ipv4_scope(a),
        IpAddr::V6(_) => AddressScope::Universe,
    };
    attrs.push(AddressAttribute::Local(spec.addr));
    attrs.push(AddressAttribute::Address(spec.addr));
    if let IpAddr::V4(a) = spec.addr {
        // /31 and /32 have no broadcast address (RFC 3021).
        if spec.prefix_len < 31 {
            let bcast = u32::from(a) | !prefix_to_mask(spec.prefix_len);
            attrs.push(AddressAttribute::Broadcast(Ipv4Addr::from(bcast)));
        }
    }
    attrs.push(AddressAttribute::Protocol(AddressProtocol::from(
        RT_PROTO_PATHMAN,
    )));
    msg.attributes = attrs;
    msg
}

/// A route request. Deletes carry pathman's protocol so the kernel only
/// ever removes a route pathman installed, and a wildcard scope.
pub(super) fn route_message(
    spec: &RouteSpec,
    delete: bool,
    mut attrs: Vec<RouteAttribute>,
) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = family(spec.dst.is_ipv6());
    h.destination_prefix_length = spec.dst.len;
    h.table = header_table(spec.table);
    h.protocol = RouteProtocol::from(RT_PROTO_PATHMAN);
    h.kind = RouteType::Unicast;
    h.scope = if delete {
        RouteScope::from(RT_SCOPE_NOWHERE)
    } else if spec.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    attrs.push(RouteAttribute::Table(spec.table));
    if spec.dst.len > 0 {
        attrs.push(RouteAttribute::Destination(RouteAddress::from(
            spec.dst.addr,
        )));
    }
    if let Some(gw) = spec.gateway {
        attrs.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    attrs.push(RouteAttribute::Oif(spec.oif));
    attrs.push(RouteAttribute::Priority(spec.metric));
    if let Some(src) = spec.pref_src {
        attrs.push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    msg.attributes = attrs;
    msg
}

/// A rule request: explicit priority, FRA_TABLE, exact fwmark, pathman's
/// protocol (which also restricts deletes to pathman's own rules).
pub(super) fn rule_message(spec: &RuleSpec, mut attrs: Vec<RuleAttribute>) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = family(spec.ipv6);
    msg.header.table = header_table(spec.table);
    msg.header.action = RuleAction::ToTable;
    attrs.push(RuleAttribute::Priority(spec.priority));
    attrs.push(RuleAttribute::Table(spec.table));
    if let Some(src) = spec.src {
        msg.header.src_len = src.len;
        attrs.push(RuleAttribute::Source(src.addr));
    }
    if let Some(mark) = spec.fwmark {
        attrs.push(RuleAttribute::FwMark(mark));
        attrs.push(RuleAttribute::FwMask(u32::MAX));
    }
    attrs.push(RuleAttribute::Protocol(RouteProtocol::from(
        RT_PROTO_PATHMAN,
    )));
    msg.attributes = attrs;
    msg
}
