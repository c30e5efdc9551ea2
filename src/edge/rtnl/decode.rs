//! Pure decoders: typed rtnetlink messages become pathman's plain values.
//! A message pathman cannot represent yields `None` and is skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{AddrEntry, KernelEvent, KernelRoute, KernelRule, Link};
use crate::core::netstate::{IpPrefix, RouteSpec, RuleSpec};
use crate::core::types::IfName;

fn is_inet(family: AddressFamily) -> Option<bool> {
    match family {
        AddressFamily::Inet => Some(false),
        AddressFamily::Inet6 => Some(true),
        _ => None,
    }
}

fn route_ip(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn unspecified(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// A link as pathman sees it. `None` without a usable name.
pub fn decode_link(msg: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut mac = None;
    let mut mtu = 0;
    let mut master = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::Controller(m) if *m != 0 => master = Some(*m),
            LinkAttribute::IfName(n) => name = IfName::try_from(n.as_str()).ok(),
            LinkAttribute::Address(a) => mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => mtu = *m,
            _ => {}
        }
    }
    let flags = msg.header.flags;
    Some(Link {
        ifindex: msg.header.index,
        name: name?,
        mac,
        up: flags.contains(LinkFlags::Up),
        carrier: flags.contains(LinkFlags::LowerUp),
        loopback: flags.contains(LinkFlags::Loopback),
        arphrd: u16::from(msg.header.link_layer_type),
        mtu,
        master,
    })
}

/// An interface address. The own address is IFA_LOCAL when present
/// (IFA_ADDRESS is then the peer on point-to-point links).
pub fn decode_address(msg: &AddressMessage) -> Option<AddrEntry> {
    is_inet(msg.header.family)?;
    let mut local = None;
    let mut address = None;
    let mut proto = 0;
    // IFA_FLAGS carries all 32 bits; the header byte only the low 8.
    let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Protocol(p) => proto = u8::from(*p),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    Some(AddrEntry {
        ifindex: msg.header.index,
        addr: local.or(address)?,
        prefix_len: msg.header.prefix_len,
        proto,
        tentative: flags.contains(AddressFlags::Tentative),
        scope: u8::from(msg.header.scope),
        permanent: flags.contains(AddressFlags::Permanent),
    })
}

/// A route. The table is FRA/RTA_TABLE when present: the header byte says
/// 252 (RT_TABLE_COMPAT) for tables above 255.
pub fn decode_route(msg: &RouteMessage) -> Option<KernelRoute> {
    let ipv6 = is_inet(msg.header.address_family)?;
    let mut table = u32::from(msg.header.table);
    let mut dst = unspecified(ipv6);
    let mut gateway = None;
    let mut oif = 0;
    let mut metric = 0;
    let mut pref_src = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = route_ip(a)?,
            RouteAttribute::Gateway(a) => gateway = Some(route_ip(a)?),
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::Priority(m) => metric = *m,
            RouteAttribute::PrefSource(a) => pref_src = Some(route_ip(a)?),
            _ => {}
        }
    }
    Some(KernelRoute {
        spec: RouteSpec {
            table,
            dst: IpPrefix {
                addr: dst,
                len: msg.header.destination_prefix_length,
            },
            gateway,
            oif,
            metric,
            pref_src,
        },
        proto: u8::from(msg.header.protocol),
        kind_unicast: msg.header.kind == RouteType::Unicast,
    })
}

/// A policy rule. Selectors pathman never sets (dst, iif, uid range…) are
/// not represented; such rules never carry pathman's protocol.
pub fn decode_rule(msg: &RuleMessage) -> Option<KernelRule> {
    let ipv6 = is_inet(msg.header.family)?;
    let mut table = u32::from(msg.header.table);
    let mut priority = 0;
    let mut src = None;
    let mut fwmark = None;
    let mut proto = 0;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Source(a) => {
                src = Some(IpPrefix {
                    addr: *a,
                    len: msg.header.src_len,
                })
            }
            RuleAttribute::FwMark(m) => fwmark = Some(*m),
            RuleAttribute::Protocol(p) => proto = u8::from(*p),
            _ => {}
        }
    }
    Some(KernelRule {
        spec: RuleSpec {
            ipv6,
            priority,
            src,
            fwmark,
            table,
        },
        proto,
    })
}

/// A multicast notification as an event; `None` for kinds pathman ignores.
pub fn decode_event(msg: &RouteNetlinkMessage) -> Option<KernelEvent> {
    match msg {
        // A bridge reports its ports' bridge state as AF_BRIDGE link messages (a
        // DELLINK when a port leaves it): not about the link itself.
        RouteNetlinkMessage::NewLink(m) | RouteNetlinkMessage::DelLink(m)
            if m.header.interface_family == netlink_packet_route::AddressFamily::Bridge =>
        {
            None
        }
        RouteNetlinkMessage::NewLink(m) => decode_link(m).map(KernelEvent::Link),
        RouteNetlinkMessage::DelLink(m) => Some(KernelEvent::LinkRemoved(m.header.index)),
        RouteNetlinkMessage::NewAddress(m) => decode_address(m).map(KernelEvent::AddrAdded),
        RouteNetlinkMessage::DelAddress(m) => decode_address(m).map(KernelEvent::AddrRemoved),
        RouteNetlinkMessage::NewRoute(m) => decode_route(m).map(KernelEvent::RouteAdded),
        RouteNetlinkMessage::DelRoute(m) => decode_route(m).map(KernelEvent::RouteRemoved),
        RouteNetlinkMessage::NewRule(m) => decode_rule(m).map(KernelEvent::RuleAdded),
        RouteNetlinkMessage::DelRule(m) => decode_rule(m).map(KernelEvent::RuleRemoved),
        _ => None,
    }
}
