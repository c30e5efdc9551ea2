//! Pure codec tests with an independent reader and writer: pathman's requests
//! are parsed by netlink-packet-route (a dev-dependency only), and what
//! netlink-packet-route writes, the way the kernel reports objects, is read by
//! pathman's decoders. The namespace-lab tests check the same bytes against
//! the real kernel.

use crate::edge::netlink::messages;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use proptest::prelude::*;

use super::decode::{decode_address, decode_event, decode_link, decode_route, decode_rule};
use super::encode::{
    push_del_link, push_dump, push_new_bridge, push_op, push_set_link_up, push_set_master, DumpKind,
};
use super::{parse_message, KernelEvent};
use crate::caps::RT_PROTO_PATHMAN;
use crate::core::netstate::{AddressSpec, IpPrefix, Op, RouteSpec, RuleSpec};

/// Splits a send buffer into its messages: pathman's bytes of each and
/// netlink-packet-route's reading of them (which must succeed).
fn read_back(tx: &[u8]) -> Vec<(Vec<u8>, NetlinkMessage<RouteNetlinkMessage>)> {
    messages("rtnl", tx)
        .map(|b| {
            let bytes = b.into_inner();
            let m = NetlinkMessage::deserialize(bytes)
                .unwrap_or_else(|e| panic!("netlink-packet-route cannot read {bytes:?}: {e}"));
            (bytes.to_vec(), m)
        })
        .collect()
}

/// Encodes `ops` into one batch and reads every message back.
fn round_trip(ops: &[Op]) -> Vec<(Vec<u8>, NetlinkMessage<RouteNetlinkMessage>)> {
    let mut tx = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        push_op(&mut tx, 100 + i as u32, op);
    }
    let msgs = read_back(&tx);
    assert_eq!(msgs.len(), ops.len());
    for (i, (bytes, m)) in msgs.iter().enumerate() {
        assert_eq!(m.header.sequence_number, 100 + i as u32);
        assert_eq!(m.header.length as usize, bytes.len());
        assert_eq!(bytes.len() % 4, 0);
    }
    msgs
}

fn inner(m: NetlinkMessage<RouteNetlinkMessage>) -> RouteNetlinkMessage {
    match m.payload {
        NetlinkPayload::InnerMessage(i) => i,
        other => panic!("not an inner message: {other:?}"),
    }
}

/// netlink-packet-route's bytes of `msg`, as the kernel would send them.
fn written(msg: RouteNetlinkMessage) -> Vec<u8> {
    let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(msg));
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// The body pathman's decoders read.
fn body(msg: &[u8]) -> &[u8] {
    parse_message(msg).expect("header fits").1
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn address_v4_has_local_broadcast_proto_and_no_flags() {
    let spec = AddressSpec {
        ifindex: 7,
        addr: v4(198, 18, 1, 100),
        prefix_len: 24,
    };
    let (bytes, m) = round_trip(&[Op::AddAddress(spec)]).remove(0);
    assert_eq!(
        m.header.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    );
    let RouteNetlinkMessage::NewAddress(a) = inner(m) else {
        panic!("not NewAddress")
    };
    assert_eq!(a.header.family, AddressFamily::Inet);
    assert_eq!(a.header.scope, AddressScope::Universe);
    assert!(a.attributes.contains(&AddressAttribute::Local(spec.addr)));
    assert!(a
        .attributes
        .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(198, 18, 1, 255))));
    assert!(!a
        .attributes
        .iter()
        .any(|x| matches!(x, AddressAttribute::Flags(_))));
    let e = decode_address(body(&bytes)).unwrap();
    assert_eq!((e.ifindex, e.addr, e.prefix_len), (7, spec.addr, 24));
    assert_eq!(e.proto, RT_PROTO_PATHMAN);
}

#[test]
fn address_v4_slash31_has_no_broadcast() {
    let spec = AddressSpec {
        ifindex: 2,
        addr: v4(10, 0, 0, 1),
        prefix_len: 31,
    };
    let (_, m) = round_trip(&[Op::DelAddress(spec)]).remove(0);
    assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK);
    let RouteNetlinkMessage::DelAddress(a) = inner(m) else {
        panic!("not DelAddress")
    };
    assert!(!a
        .attributes
        .iter()
        .any(|x| matches!(x, AddressAttribute::Broadcast(_))));
}

#[test]
fn big_table_rule_uses_attribute_and_unspec_header() {
    let spec = RuleSpec {
        ipv6: false,
        priority: 31200,
        src: None,
        fwmark: Some(0x10001),
        table: 0x10001,
    };
    let (bytes, m) = round_trip(&[Op::AddRule(spec)]).remove(0);
    let RouteNetlinkMessage::NewRule(r) = inner(m) else {
        panic!("not NewRule")
    };
    assert_eq!(r.header.table, 0);
    assert_eq!(r.header.action, RuleAction::ToTable);
    assert!(r.attributes.contains(&RuleAttribute::Table(0x10001)));
    assert!(r.attributes.contains(&RuleAttribute::FwMark(0x10001)));
    assert!(r.attributes.contains(&RuleAttribute::FwMask(u32::MAX)));
    assert!(r.attributes.contains(&RuleAttribute::Priority(31200)));
    assert_eq!(decode_rule(body(&bytes)).unwrap().spec, spec);
}

#[test]
fn route_add_replaces_and_delete_is_wildcard_scope_and_own_protocol() {
    let spec = RouteSpec {
        table: 300,
        dst: IpPrefix {
            addr: v4(0, 0, 0, 0),
            len: 0,
        },
        gateway: Some(v4(198, 18, 1, 1)),
        oif: 3,
        metric: 1024,
        pref_src: None,
    };
    let mut both = round_trip(&[Op::AddRoute(spec), Op::DelRoute(spec)]);
    let (del_bytes, del) = both.remove(1);
    let (_, add) = both.remove(0);
    assert_eq!(
        add.header.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    );
    let RouteNetlinkMessage::NewRoute(a) = inner(add) else {
        panic!("not NewRoute")
    };
    assert_eq!(a.header.scope, RouteScope::Universe);
    assert_eq!(a.header.kind, RouteType::Unicast);
    assert!(a
        .attributes
        .contains(&RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
            198, 18, 1, 1
        )))));
    let RouteNetlinkMessage::DelRoute(r) = inner(del) else {
        panic!("not DelRoute")
    };
    assert_eq!(u8::from(r.header.scope), 255);
    assert_eq!(u8::from(r.header.protocol), RT_PROTO_PATHMAN);
    assert_eq!(r.header.table, 0, "table 300 only fits the attribute");
    assert!(r.attributes.contains(&RouteAttribute::Table(300)));
    assert!(!r
        .attributes
        .iter()
        .any(|x| matches!(x, RouteAttribute::Destination(_))));
    assert_eq!(decode_route(body(&del_bytes)).unwrap().spec, spec);
}

#[test]
fn link_requests_read_back_as_meant() {
    let mut tx = Vec::new();
    push_set_link_up(&mut tx, 1, 5, true);
    push_set_link_up(&mut tx, 2, 5, false);
    push_new_bridge(&mut tx, 3, "tether");
    push_set_master(&mut tx, 4, 6, 9);
    push_set_master(&mut tx, 5, 6, 0);
    push_del_link(&mut tx, 6, 9);
    let msgs: Vec<_> = read_back(&tx).into_iter().map(|(_, m)| m).collect();
    assert_eq!(msgs.len(), 6);
    let flags: Vec<u16> = msgs.iter().map(|m| m.header.flags).collect();
    let ack = NLM_F_REQUEST | NLM_F_ACK;
    assert_eq!(
        flags,
        [ack, ack, ack | NLM_F_CREATE | NLM_F_EXCL, ack, ack, ack]
    );
    let links: Vec<RouteNetlinkMessage> = msgs.into_iter().map(inner).collect();
    let RouteNetlinkMessage::NewLink(up) = &links[0] else {
        panic!("not NewLink")
    };
    assert_eq!(
        (up.header.index, up.header.flags, up.header.change_mask),
        (5, LinkFlags::Up, LinkFlags::Up)
    );
    assert!(up.attributes.is_empty());
    let RouteNetlinkMessage::NewLink(down) = &links[1] else {
        panic!("not NewLink")
    };
    assert_eq!(
        (down.header.flags, down.header.change_mask),
        (LinkFlags::empty(), LinkFlags::Up)
    );
    let RouteNetlinkMessage::NewLink(br) = &links[2] else {
        panic!("not NewLink")
    };
    assert_eq!(br.header.index, 0);
    assert_eq!(br.header.flags, LinkFlags::Up);
    assert!(br
        .attributes
        .contains(&LinkAttribute::IfName("tether".into())));
    assert!(br
        .attributes
        .contains(&LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge
        )])));
    let RouteNetlinkMessage::NewLink(port) = &links[3] else {
        panic!("not NewLink")
    };
    assert_eq!(port.header.index, 6);
    assert_eq!(port.header.change_mask, LinkFlags::empty());
    assert_eq!(port.attributes, [LinkAttribute::Controller(9)]);
    let RouteNetlinkMessage::NewLink(free) = &links[4] else {
        panic!("not NewLink")
    };
    assert_eq!(free.attributes, [LinkAttribute::Controller(0)]);
    let RouteNetlinkMessage::DelLink(del) = &links[5] else {
        panic!("not DelLink")
    };
    assert_eq!(del.header.index, 9);
}

#[test]
fn dump_requests_ask_for_everything() {
    let mut tx = Vec::new();
    for (i, kind) in [
        DumpKind::Links,
        DumpKind::Addresses,
        DumpKind::Routes,
        DumpKind::Rules,
    ]
    .into_iter()
    .enumerate()
    {
        push_dump(&mut tx, i as u32, kind);
    }
    let msgs: Vec<_> = read_back(&tx).into_iter().map(|(_, m)| m).collect();
    assert!(msgs
        .iter()
        .all(|m| m.header.flags == NLM_F_REQUEST | NLM_F_DUMP));
    let got: Vec<RouteNetlinkMessage> = msgs.into_iter().map(inner).collect();
    assert_eq!(
        got,
        [
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            RouteNetlinkMessage::GetRoute(RouteMessage::default()),
            RouteNetlinkMessage::GetRule(RuleMessage::default()),
        ]
    );
}

#[test]
fn bridge_port_link_messages_are_not_link_events() {
    let mut m = LinkMessage::default();
    m.header.interface_family = AddressFamily::Bridge;
    m.header.index = 4;
    m.attributes.push(LinkAttribute::IfName("usb0".into()));
    assert_eq!(
        decode_event(&written(RouteNetlinkMessage::NewLink(m.clone()))),
        None
    );
    assert_eq!(
        decode_event(&written(RouteNetlinkMessage::DelLink(m.clone()))),
        None
    );
    m.header.interface_family = AddressFamily::Unspec;
    assert_eq!(
        decode_event(&written(RouteNetlinkMessage::DelLink(m))),
        Some(KernelEvent::LinkRemoved(4))
    );
}

#[test]
fn address_flags_attribute_wins_over_the_header_byte() {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet6;
    m.header.prefix_len = 64;
    m.header.index = 3;
    m.header.scope = AddressScope::Link;
    m.header.flags = AddressHeaderFlags::Permanent;
    let addr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4));
    m.attributes.push(AddressAttribute::Address(addr));
    m.attributes
        .push(AddressAttribute::Flags(AddressFlags::Tentative));
    let e = decode_address(body(&written(RouteNetlinkMessage::NewAddress(m)))).unwrap();
    assert_eq!(
        (e.addr, e.prefix_len, e.ifindex, e.scope),
        (addr, 64, 3, 253)
    );
    assert!(e.tentative);
    assert!(!e.permanent, "IFA_FLAGS carries all the flags");
}

#[test]
fn a_wrong_length_attribute_drops_the_message_and_a_short_one_is_skipped() {
    let spec = RouteSpec {
        table: 254,
        dst: IpPrefix {
            addr: v4(10, 1, 0, 0),
            len: 16,
        },
        gateway: None,
        oif: 2,
        metric: 0,
        pref_src: None,
    };
    let (mut bytes, _) = round_trip(&[Op::AddRoute(spec)]).remove(0);
    assert_eq!(decode_route(body(&bytes)).unwrap().spec, spec);
    // RTA_TABLE is the first attribute after rtmsg: make its value 3 bytes.
    let at = 16 + 12;
    bytes[at..at + 2].copy_from_slice(&7u16.to_ne_bytes());
    assert_eq!(decode_route(body(&bytes)), None);
    // A header claiming more than the datagram holds.
    assert_eq!(decode_route(&bytes[16..20]), None);
    assert_eq!(decode_event(&bytes[..15]), None);
}

#[test]
fn garbled_datagram_tail_is_dropped_without_panic() {
    let spec = AddressSpec {
        ifindex: 1,
        addr: v4(192, 0, 2, 1),
        prefix_len: 24,
    };
    let mut tx = Vec::new();
    push_op(&mut tx, 1, &Op::AddAddress(spec));
    // A header whose length field runs past the end of the datagram.
    tx.extend_from_slice(&[0xff, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(messages("rtnl", &tx).count(), 1);
    assert_eq!(messages("rtnl", &tx[..7]).count(), 0);
}

fn ip_strategy(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|x| IpAddr::V6(Ipv6Addr::from(x)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|x| IpAddr::V4(Ipv4Addr::from(x)))
            .boxed()
    }
}

fn route_strategy() -> impl Strategy<Value = RouteSpec> {
    any::<bool>().prop_flat_map(|v6| {
        let max: u8 = if v6 { 128 } else { 32 };
        (
            any::<u32>(),
            ip_strategy(v6),
            0..=max,
            proptest::option::of(ip_strategy(v6)),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(ip_strategy(v6)),
        )
            .prop_map(|(table, dst, len, gateway, oif, metric, pref_src)| {
                let (dst, len) = if len == 0 {
                    (IpPrefix::default_for(dst).addr, 0)
                } else {
                    (dst, len)
                };
                RouteSpec {
                    table,
                    dst: IpPrefix { addr: dst, len },
                    gateway,
                    oif,
                    metric,
                    pref_src,
                }
            })
    })
}

fn rule_strategy() -> impl Strategy<Value = RuleSpec> {
    any::<bool>().prop_flat_map(|v6| {
        let max = if v6 { 128u8 } else { 32 };
        (
            any::<u32>(),
            proptest::option::of((ip_strategy(v6), 0..=max)),
            proptest::option::of(any::<u32>()),
            any::<u32>(),
        )
            .prop_map(move |(priority, src, fwmark, table)| RuleSpec {
                ipv6: v6,
                priority,
                src: src.map(|(addr, len)| IpPrefix { addr, len }),
                fwmark,
                table,
            })
    })
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn family_of(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

proptest! {
    /// Each field of pathman's route request is where netlink-packet-route
    /// looks for it, and pathman's decoder gives the spec back.
    #[test]
    fn routes_round_trip(spec in route_strategy(), add in any::<bool>()) {
        let op = if add { Op::AddRoute(spec) } else { Op::DelRoute(spec) };
        let (bytes, m) = round_trip(&[op]).remove(0);
        let (RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r)) = inner(m)
            else { panic!("not a route") };
        prop_assert_eq!(r.header.address_family, family_of(spec.dst.is_ipv6()));
        prop_assert_eq!(r.header.destination_prefix_length, spec.dst.len);
        prop_assert_eq!(r.header.protocol, RouteProtocol::from(RT_PROTO_PATHMAN));
        prop_assert!(r.attributes.contains(&RouteAttribute::Table(spec.table)));
        prop_assert!(r.attributes.contains(&RouteAttribute::Oif(spec.oif)));
        prop_assert!(r.attributes.contains(&RouteAttribute::Priority(spec.metric)));
        prop_assert_eq!(
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(g) => Some(g.clone()),
                _ => None,
            }),
            spec.gateway.map(route_address)
        );
        prop_assert_eq!(
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::PrefSource(g) => Some(g.clone()),
                _ => None,
            }),
            spec.pref_src.map(route_address)
        );
        let k = decode_route(body(&bytes)).unwrap();
        prop_assert_eq!(k.spec, spec);
        prop_assert_eq!(k.proto, RT_PROTO_PATHMAN);
        prop_assert!(k.kind_unicast);
    }

    #[test]
    fn rules_round_trip(spec in rule_strategy()) {
        let (bytes, m) = round_trip(&[Op::AddRule(spec)]).remove(0);
        let RouteNetlinkMessage::NewRule(r) = inner(m) else { panic!("not a rule") };
        prop_assert_eq!(r.header.family, family_of(spec.ipv6));
        prop_assert_eq!(r.header.src_len, spec.src.map_or(0, |s| s.len));
        prop_assert_eq!(
            r.attributes.iter().find_map(|a| match a {
                RuleAttribute::Source(s) => Some(*s),
                _ => None,
            }),
            spec.src.map(|s| s.addr)
        );
        prop_assert_eq!(spec.fwmark.is_some(), r.attributes.contains(&RuleAttribute::FwMask(u32::MAX)));
        let k = decode_rule(body(&bytes)).unwrap();
        prop_assert_eq!(k.spec, spec);
        prop_assert_eq!(k.proto, RT_PROTO_PATHMAN);
    }

    #[test]
    fn addresses_round_trip(v6 in any::<bool>(), raw in any::<u128>(), len in 0u8..=32, ifindex in any::<u32>()) {
        let addr = if v6 { IpAddr::V6(Ipv6Addr::from(raw)) } else { IpAddr::V4(Ipv4Addr::from(raw as u32)) };
        let spec = AddressSpec { ifindex, addr, prefix_len: len };
        let (bytes, m) = round_trip(&[Op::AddAddress(spec)]).remove(0);
        let RouteNetlinkMessage::NewAddress(a) = inner(m) else { panic!("not an address") };
        prop_assert_eq!((a.header.index, a.header.prefix_len), (ifindex, len));
        prop_assert!(a.attributes.contains(&AddressAttribute::Local(addr)));
        prop_assert!(a.attributes.contains(&AddressAttribute::Address(addr)));
        let e = decode_address(body(&bytes)).unwrap();
        prop_assert_eq!((e.ifindex, e.addr, e.prefix_len, e.proto), (ifindex, addr, len, RT_PROTO_PATHMAN));
    }

    #[test]
    fn batches_keep_order_and_sequence(routes in proptest::collection::vec(route_strategy(), 1..20)) {
        let ops: Vec<Op> = routes.iter().copied().map(Op::AddRoute).collect();
        for ((bytes, _), spec) in round_trip(&ops).into_iter().zip(routes) {
            prop_assert_eq!(decode_route(body(&bytes)).unwrap().spec, spec);
        }
    }

    /// Links as netlink-packet-route writes them (the kernel's layout), with
    /// attributes pathman skips among the ones it reads.
    #[test]
    fn links_are_read_as_written(
        ifindex in any::<u32>(),
        name in "[a-z][a-z0-9.-]{0,14}",
        mac in proptest::option::of(any::<[u8; 6]>()),
        mtu in any::<u32>(),
        master in any::<u32>(),
        flags in any::<u32>(),
        arphrd in prop_oneof![Just(1u16), Just(772), Just(65534), Just(776)],
    ) {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        m.header.flags = LinkFlags::from_bits_retain(flags);
        m.header.link_layer_type = LinkLayerType::from(arphrd);
        m.attributes.push(LinkAttribute::TxQueueLen(1000));
        m.attributes.push(LinkAttribute::IfName(name.clone()));
        if let Some(mac) = mac {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        m.attributes.push(LinkAttribute::Broadcast(vec![0xff; 6]));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes.push(LinkAttribute::Controller(master));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]));
        let ev = decode_event(&written(RouteNetlinkMessage::NewLink(m)));
        let Some(KernelEvent::Link(l)) = ev else { panic!("no link: {ev:?}") };
        prop_assert_eq!((l.ifindex, l.name.as_str(), l.mac, l.mtu), (ifindex, name.as_str(), mac, mtu));
        prop_assert_eq!(l.master, Some(master).filter(|m| *m != 0));
        prop_assert_eq!(l.arphrd, arphrd);
        prop_assert_eq!(l.up, flags & 1 != 0);
        prop_assert_eq!(l.carrier, flags & 0x1_0000 != 0);
        prop_assert_eq!(l.loopback, flags & 8 != 0);
    }

    /// Routes and rules the kernel reports, including kinds, protocols and
    /// attributes pathman does not set itself.
    #[test]
    fn kernel_routes_and_rules_are_read_as_written(
        spec in route_strategy(),
        proto in any::<u8>(),
        kind in prop_oneof![Just(RouteType::Unicast), Just(RouteType::Local), Just(RouteType::Broadcast)],
        rule in rule_strategy(),
    ) {
        let mut r = RouteMessage::default();
        r.header.address_family = family_of(spec.dst.is_ipv6());
        r.header.destination_prefix_length = spec.dst.len;
        r.header.table = u8::try_from(spec.table).unwrap_or(252);
        r.header.protocol = RouteProtocol::from(proto);
        r.header.kind = kind;
        r.attributes.push(RouteAttribute::Table(spec.table));
        if spec.dst.len > 0 {
            r.attributes.push(RouteAttribute::Destination(route_address(spec.dst.addr)));
        }
        r.attributes.push(RouteAttribute::Mark(9));
        if let Some(gw) = spec.gateway {
            r.attributes.push(RouteAttribute::Gateway(route_address(gw)));
        }
        r.attributes.push(RouteAttribute::Oif(spec.oif));
        r.attributes.push(RouteAttribute::Priority(spec.metric));
        if let Some(src) = spec.pref_src {
            r.attributes.push(RouteAttribute::PrefSource(route_address(src)));
        }
        let ev = decode_event(&written(RouteNetlinkMessage::DelRoute(r)));
        let Some(KernelEvent::RouteRemoved(k)) = ev else { panic!("no route: {ev:?}") };
        prop_assert_eq!(k.spec, spec);
        prop_assert_eq!(k.proto, proto);
        prop_assert_eq!(k.kind_unicast, kind == RouteType::Unicast);

        let mut m = RuleMessage::default();
        m.header.family = family_of(rule.ipv6);
        m.header.table = u8::try_from(rule.table).unwrap_or(0);
        m.header.action = RuleAction::ToTable;
        m.attributes.push(RuleAttribute::Priority(rule.priority));
        m.attributes.push(RuleAttribute::Table(rule.table));
        if let Some(src) = rule.src {
            m.header.src_len = src.len;
            m.attributes.push(RuleAttribute::Source(src.addr));
        }
        if let Some(mark) = rule.fwmark {
            m.attributes.push(RuleAttribute::FwMark(mark));
        }
        m.attributes.push(RuleAttribute::Protocol(RouteProtocol::from(proto)));
        let ev = decode_event(&written(RouteNetlinkMessage::NewRule(m)));
        let Some(KernelEvent::RuleAdded(k)) = ev else { panic!("no rule: {ev:?}") };
        prop_assert_eq!(k.spec, rule);
        prop_assert_eq!(k.proto, proto);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for b in messages("rtnl", &bytes) {
            let msg = b.into_inner();
            let _ = decode_event(msg);
            if let Some((_, body)) = parse_message(msg) {
                let _ = (decode_link(body), decode_address(body), decode_route(body), decode_rule(body));
            }
        }
    }
}
