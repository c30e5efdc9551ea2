//! Pure encode/decode tests: requests are built, serialized, parsed back
//! with netlink-packet-route and decoded again.

use crate::edge::netlink::messages;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::route::RouteAttribute;
use netlink_packet_route::rule::RuleAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use proptest::prelude::*;

use super::decode::{decode_address, decode_route, decode_rule};
use super::encode::{push_op, Scratch};
use crate::caps::RT_PROTO_PATHMAN;
use crate::core::netstate::{AddressSpec, IpPrefix, Op, RouteSpec, RuleSpec};

/// Encodes `ops` into one batch and parses every message back.
fn round_trip(ops: &[Op]) -> Vec<NetlinkMessage<RouteNetlinkMessage>> {
    let mut tx = Vec::new();
    let mut scratch = Scratch::default();
    for (i, op) in ops.iter().enumerate() {
        push_op(&mut tx, 100 + i as u32, op, &mut scratch);
    }
    let msgs: Vec<_> = messages("rtnl", &tx)
        .map(|b| NetlinkMessage::deserialize(b.into_inner()).unwrap())
        .collect();
    assert_eq!(msgs.len(), ops.len());
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.header.sequence_number, 100 + i as u32);
    }
    msgs
}

fn inner(m: NetlinkMessage<RouteNetlinkMessage>) -> RouteNetlinkMessage {
    match m.payload {
        NetlinkPayload::InnerMessage(i) => i,
        other => panic!("not an inner message: {other:?}"),
    }
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
    let m = round_trip(&[Op::AddAddress(spec)]).remove(0);
    assert_eq!(
        m.header.flags & (NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    );
    let RouteNetlinkMessage::NewAddress(a) = inner(m) else {
        panic!("not NewAddress")
    };
    assert!(a.attributes.contains(&AddressAttribute::Local(spec.addr)));
    assert!(a
        .attributes
        .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(198, 18, 1, 255))));
    assert!(!a
        .attributes
        .iter()
        .any(|x| matches!(x, AddressAttribute::Flags(_))));
    let e = decode_address(&a).unwrap();
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
    let RouteNetlinkMessage::DelAddress(a) = inner(round_trip(&[Op::DelAddress(spec)]).remove(0))
    else {
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
    let RouteNetlinkMessage::NewRule(r) = inner(round_trip(&[Op::AddRule(spec)]).remove(0)) else {
        panic!("not NewRule")
    };
    assert_eq!(r.header.table, 0);
    assert!(r.attributes.contains(&RuleAttribute::Table(0x10001)));
    assert!(r.attributes.contains(&RuleAttribute::FwMask(u32::MAX)));
    assert_eq!(decode_rule(&r).unwrap().spec, spec);
}

#[test]
fn route_delete_is_wildcard_scope_and_own_protocol() {
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
    let RouteNetlinkMessage::DelRoute(r) = inner(round_trip(&[Op::DelRoute(spec)]).remove(0))
    else {
        panic!("not DelRoute")
    };
    assert_eq!(u8::from(r.header.scope), 255);
    assert_eq!(u8::from(r.header.protocol), RT_PROTO_PATHMAN);
    assert!(!r
        .attributes
        .iter()
        .any(|x| matches!(x, RouteAttribute::Destination(_))));
    assert_eq!(decode_route(&r).unwrap().spec, spec);
}

#[test]
fn garbled_datagram_tail_is_dropped_without_panic() {
    let spec = AddressSpec {
        ifindex: 1,
        addr: v4(192, 0, 2, 1),
        prefix_len: 24,
    };
    let mut tx = Vec::new();
    push_op(&mut tx, 1, &Op::AddAddress(spec), &mut Scratch::default());
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

proptest! {
    #[test]
    fn routes_round_trip(spec in route_strategy(), add in any::<bool>()) {
        let op = if add { Op::AddRoute(spec) } else { Op::DelRoute(spec) };
        let (RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r)) =
            inner(round_trip(&[op]).remove(0)) else { panic!("not a route") };
        let k = decode_route(&r).unwrap();
        prop_assert_eq!(k.spec, spec);
        prop_assert_eq!(k.proto, RT_PROTO_PATHMAN);
        prop_assert!(k.kind_unicast);
    }

    #[test]
    fn rules_round_trip(spec in rule_strategy()) {
        let RouteNetlinkMessage::NewRule(r) = inner(round_trip(&[Op::AddRule(spec)]).remove(0))
            else { panic!("not a rule") };
        let k = decode_rule(&r).unwrap();
        prop_assert_eq!(k.spec, spec);
        prop_assert_eq!(k.proto, RT_PROTO_PATHMAN);
    }

    #[test]
    fn addresses_round_trip(v6 in any::<bool>(), raw in any::<u128>(), len in 0u8..=32, ifindex in any::<u32>()) {
        let addr = if v6 { IpAddr::V6(Ipv6Addr::from(raw)) } else { IpAddr::V4(Ipv4Addr::from(raw as u32)) };
        let spec = AddressSpec { ifindex, addr, prefix_len: len };
        let RouteNetlinkMessage::NewAddress(a) = inner(round_trip(&[Op::AddAddress(spec)]).remove(0))
            else { panic!("not an address") };
        let e = decode_address(&a).unwrap();
        prop_assert_eq!((e.ifindex, e.addr, e.prefix_len, e.proto), (ifindex, addr, len, RT_PROTO_PATHMAN));
    }

    #[test]
    fn batches_keep_order_and_sequence(routes in proptest::collection::vec(route_strategy(), 1..20)) {
        let ops: Vec<Op> = routes.iter().copied().map(Op::AddRoute).collect();
        let msgs = round_trip(&ops);
        for (m, spec) in msgs.into_iter().zip(routes) {
            let RouteNetlinkMessage::NewRoute(r) = inner(m) else { panic!("not a route") };
            prop_assert_eq!(decode_route(&r).unwrap().spec, spec);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for b in messages("rtnl", &bytes) {
            if let Ok(NetlinkMessage { payload: NetlinkPayload::InnerMessage(m), .. }) =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(b.into_inner())
            {
                let _ = super::decode_event(&m);
            }
        }
    }
}
