//! Pure decoders: rtnetlink messages, read byte by byte after the kernel's
//! uapi structs, become pathman's plain values. A message pathman cannot
//! represent (an unknown family, a short header, an attribute pathman reads
//! with the wrong length) yields `None` and is skipped; attributes pathman
//! does not read are passed over.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::consts::*;
use super::{AddrEntry, KernelEvent, KernelRoute, KernelRule, Link};
use crate::core::netstate::{IpPrefix, RouteSpec, RuleSpec};
use crate::core::types::IfName;

/// One netlink message split into its type and its body (what follows the
/// 16-byte header, up to `nlmsg_len`). `None` when the header does not fit.
pub fn parse_message(msg: &[u8]) -> Option<(u16, &[u8])> {
    let len = u32::from_ne_bytes(msg.get(0..4)?.try_into().ok()?) as usize;
    let kind = u16::from_ne_bytes(msg.get(4..6)?.try_into().ok()?);
    let body = msg.get(NLMSG_HDRLEN..len)?;
    Some((kind, body))
}

/// The attributes after a family header: (type without the flag bits,
/// value). Stops at the first one whose length does not fit.
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(buf.get(0..2)?.try_into().ok()?));
        let kind = u16::from_ne_bytes(buf.get(2..4)?.try_into().ok()?) & NLA_TYPE_MASK;
        let value = buf.get(NLA_HDRLEN..len)?;
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.try_into().ok()?))
}

fn u8_of(v: &[u8]) -> Option<u8> {
    match v {
        [b] => Some(*b),
        _ => None,
    }
}

/// An address attribute of the message's family.
fn ip_of(ipv6: bool, v: &[u8]) -> Option<IpAddr> {
    if ipv6 {
        Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?)))
    } else {
        Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?)))
    }
}

/// IPv4 → false, IPv6 → true, anything else → not pathman's.
fn is_inet(family: u8) -> Option<bool> {
    match family {
        AF_INET => Some(false),
        AF_INET6 => Some(true),
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

/// A link (`struct ifinfomsg` body) as pathman sees it. `None` without a
/// usable name.
pub fn decode_link(body: &[u8]) -> Option<Link> {
    let h = body.get(..IFINFOMSG_LEN)?;
    let arphrd = u16::from_ne_bytes([h[2], h[3]]);
    let ifindex = u32_of(&h[4..8])?;
    let flags = u32_of(&h[8..12])?;
    let mut name = None;
    let mut mac = None;
    let mut mtu = 0;
    let mut master = None;
    for (kind, v) in attrs(&body[IFINFOMSG_LEN..]) {
        match kind {
            IFLA_MASTER => master = Some(u32_of(v)?).filter(|m| *m != 0),
            IFLA_IFNAME => {
                let s = v.split(|b| *b == 0).next().unwrap_or_default();
                name = std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| IfName::try_from(s).ok());
            }
            IFLA_ADDRESS => mac = <[u8; 6]>::try_from(v).ok(),
            IFLA_MTU => mtu = u32_of(v)?,
            _ => {}
        }
    }
    Some(Link {
        ifindex,
        name: name?,
        mac,
        up: flags & IFF_UP != 0,
        carrier: flags & IFF_LOWER_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        arphrd,
        mtu,
        master,
    })
}

/// An interface address (`struct ifaddrmsg` body). The own address is
/// IFA_LOCAL when present (IFA_ADDRESS is then the peer on point-to-point
/// links).
pub fn decode_address(body: &[u8]) -> Option<AddrEntry> {
    let h = body.get(..IFADDRMSG_LEN)?;
    let ipv6 = is_inet(h[0])?;
    let mut local = None;
    let mut address = None;
    let mut proto = 0;
    // IFA_FLAGS carries all 32 bits; the header byte only the low 8.
    let mut flags = u32::from(h[2]);
    for (kind, v) in attrs(&body[IFADDRMSG_LEN..]) {
        match kind {
            IFA_LOCAL => local = Some(ip_of(ipv6, v)?),
            IFA_ADDRESS => address = Some(ip_of(ipv6, v)?),
            IFA_PROTO => proto = u8_of(v)?,
            IFA_FLAGS => flags = u32_of(v)?,
            _ => {}
        }
    }
    Some(AddrEntry {
        ifindex: u32_of(&h[4..8])?,
        addr: local.or(address)?,
        prefix_len: h[1],
        proto,
        tentative: flags & IFA_F_TENTATIVE != 0,
        scope: h[3],
        permanent: flags & IFA_F_PERMANENT != 0,
    })
}

/// A route (`struct rtmsg` body). The table is RTA_TABLE when present: the
/// header byte says 252 (RT_TABLE_COMPAT) for tables above 255.
pub fn decode_route(body: &[u8]) -> Option<KernelRoute> {
    let h = body.get(..RTMSG_LEN)?;
    let ipv6 = is_inet(h[0])?;
    let mut table = u32::from(h[4]);
    let mut dst = unspecified(ipv6);
    let mut gateway = None;
    let mut oif = 0;
    let mut metric = 0;
    let mut pref_src = None;
    for (kind, v) in attrs(&body[RTMSG_LEN..]) {
        match kind {
            RTA_TABLE => table = u32_of(v)?,
            RTA_DST => dst = ip_of(ipv6, v)?,
            RTA_GATEWAY => gateway = Some(ip_of(ipv6, v)?),
            RTA_OIF => oif = u32_of(v)?,
            RTA_PRIORITY => metric = u32_of(v)?,
            RTA_PREFSRC => pref_src = Some(ip_of(ipv6, v)?),
            _ => {}
        }
    }
    Some(KernelRoute {
        spec: RouteSpec {
            table,
            dst: IpPrefix {
                addr: dst,
                len: h[1],
            },
            gateway,
            oif,
            metric,
            pref_src,
        },
        proto: h[5],
        kind_unicast: h[7] == RTN_UNICAST,
    })
}

/// A policy rule (`struct fib_rule_hdr` body). Selectors pathman never sets
/// (dst, iif, uid range…) are not represented; such rules never carry
/// pathman's protocol.
pub fn decode_rule(body: &[u8]) -> Option<KernelRule> {
    let h = body.get(..FIB_RULE_HDR_LEN)?;
    let ipv6 = is_inet(h[0])?;
    let mut table = u32::from(h[4]);
    let mut priority = 0;
    let mut src = None;
    let mut fwmark = None;
    let mut proto = 0;
    for (kind, v) in attrs(&body[FIB_RULE_HDR_LEN..]) {
        match kind {
            FRA_TABLE => table = u32_of(v)?,
            FRA_PRIORITY => priority = u32_of(v)?,
            FRA_SRC => {
                src = Some(IpPrefix {
                    addr: ip_of(ipv6, v)?,
                    len: h[2],
                })
            }
            FRA_FWMARK => fwmark = Some(u32_of(v)?),
            FRA_PROTOCOL => proto = u8_of(v)?,
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

/// A multicast notification (one whole netlink message) as an event; `None`
/// for kinds pathman ignores and for messages it cannot read.
pub fn decode_event(msg: &[u8]) -> Option<KernelEvent> {
    let (kind, body) = parse_message(msg)?;
    match kind {
        // A bridge reports its ports' bridge state as AF_BRIDGE link messages
        // (a DELLINK when a port leaves it): not about the link itself.
        RTM_NEWLINK | RTM_DELLINK if body.first() == Some(&AF_BRIDGE) => None,
        RTM_NEWLINK => decode_link(body).map(KernelEvent::Link),
        RTM_DELLINK => {
            let h = body.get(..IFINFOMSG_LEN)?;
            Some(KernelEvent::LinkRemoved(u32_of(&h[4..8])?))
        }
        RTM_NEWADDR => decode_address(body).map(KernelEvent::AddrAdded),
        RTM_DELADDR => decode_address(body).map(KernelEvent::AddrRemoved),
        RTM_NEWROUTE => decode_route(body).map(KernelEvent::RouteAdded),
        RTM_DELROUTE => decode_route(body).map(KernelEvent::RouteRemoved),
        RTM_NEWRULE => decode_rule(body).map(KernelEvent::RuleAdded),
        RTM_DELRULE => decode_rule(body).map(KernelEvent::RuleRemoved),
        _ => None,
    }
}
