//! The `mptcp_pm` generic netlink messages: the one place that knows its
//! command numbers and attributes (`include/uapi/linux/mptcp_pm.h`). Pure:
//! typed requests in, bytes out; bytes in, typed replies out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    parse_i32, parse_u16, parse_u32, parse_u8, DecodeError, DefaultNla, Emitable, Nla, NlaBuffer,
    NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::core::mptcp::{Endpoint, EndpointFlags, Limits};

/// Generic netlink family name the kernel registers.
pub(super) const FAMILY_NAME: &str = "mptcp_pm";
const FAMILY_VERSION: u8 = 1;

pub(super) const CMD_ADD_ADDR: u8 = 1;
pub(super) const CMD_DEL_ADDR: u8 = 2;
pub(super) const CMD_GET_ADDR: u8 = 3;
pub(super) const CMD_SET_LIMITS: u8 = 5;
pub(super) const CMD_GET_LIMITS: u8 = 6;
pub(super) const CMD_SET_FLAGS: u8 = 7;

const ATTR_ADDR: u16 = 1;
const ATTR_RCV_ADD_ADDRS: u16 = 2;
const ATTR_SUBFLOWS: u16 = 3;

const ADDR_ATTR_FAMILY: u16 = 1;
const ADDR_ATTR_ID: u16 = 2;
const ADDR_ATTR_ADDR4: u16 = 3;
const ADDR_ATTR_ADDR6: u16 = 4;
const ADDR_ATTR_PORT: u16 = 5;
const ADDR_ATTR_FLAGS: u16 = 6;
const ADDR_ATTR_IF_IDX: u16 = 7;

/// Top-level attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PmAttr {
    Addr(Vec<AddrAttr>),
    RcvAddAddrs(u32),
    Subflows(u32),
    Other(DefaultNla),
}

/// Attributes inside `MPTCP_PM_ATTR_ADDR`. FAMILY, PORT, FLAGS and IF_IDX
/// are host byte order; ADDR4/ADDR6 are the raw address bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AddrAttr {
    Family(u16),
    Id(u8),
    Addr4(Ipv4Addr),
    Addr6(Ipv6Addr),
    Port(u16),
    Flags(u32),
    IfIdx(i32),
    Other(DefaultNla),
}

/// One `mptcp_pm` message: command and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PmMessage {
    pub cmd: u8,
    pub attrs: Vec<PmAttr>,
}

impl PmMessage {
    /// ADD_ADDR. `id` 0 lets the kernel pick one.
    pub fn add_addr(id: u8, addr: IpAddr, ifindex: u32, flags: EndpointFlags) -> PmMessage {
        let mut nested = address_attrs(addr);
        if id != 0 {
            nested.push(AddrAttr::Id(id));
        }
        nested.push(AddrAttr::Flags(flags.0));
        // The kernel wants a signed ifindex; a u32 beyond i32 is no interface.
        nested.push(AddrAttr::IfIdx(i32::try_from(ifindex).unwrap_or(0)));
        PmMessage::with_addr(CMD_ADD_ADDR, nested)
    }

    /// DEL_ADDR by id. No FAMILY: with FAMILY but no address the kernel
    /// answers EINVAL.
    pub fn del_addr(id: u8) -> PmMessage {
        PmMessage::with_addr(CMD_DEL_ADDR, vec![AddrAttr::Id(id)])
    }

    /// SET_FLAGS by id (no FAMILY, as for DEL_ADDR).
    pub fn set_flags(id: u8, flags: EndpointFlags) -> PmMessage {
        PmMessage::with_addr(
            CMD_SET_FLAGS,
            vec![AddrAttr::Id(id), AddrAttr::Flags(flags.0)],
        )
    }

    /// GET_ADDR, sent as a dump.
    pub fn get_addrs() -> PmMessage {
        PmMessage {
            cmd: CMD_GET_ADDR,
            attrs: Vec::new(),
        }
    }

    /// GET_LIMITS.
    pub fn get_limits() -> PmMessage {
        PmMessage {
            cmd: CMD_GET_LIMITS,
            attrs: Vec::new(),
        }
    }

    /// SET_LIMITS.
    pub fn set_limits(l: Limits) -> PmMessage {
        PmMessage {
            cmd: CMD_SET_LIMITS,
            attrs: vec![
                PmAttr::RcvAddAddrs(l.add_addr_accepted),
                PmAttr::Subflows(l.subflows),
            ],
        }
    }

    fn with_addr(cmd: u8, nested: Vec<AddrAttr>) -> PmMessage {
        PmMessage {
            cmd,
            attrs: vec![PmAttr::Addr(nested)],
        }
    }

    /// The endpoint in a GET_ADDR reply; `None` without an id or address.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let nested = self.attrs.iter().find_map(|a| match a {
            PmAttr::Addr(n) => Some(n),
            _ => None,
        })?;
        let (mut id, mut addr, mut ifindex, mut port) = (None, None, None, None);
        let mut flags = EndpointFlags::NONE;
        for a in nested {
            match *a {
                AddrAttr::Id(v) => id = Some(v),
                AddrAttr::Addr4(v) => addr = Some(IpAddr::V4(v)),
                AddrAttr::Addr6(v) => addr = Some(IpAddr::V6(v)),
                AddrAttr::Flags(v) => flags = EndpointFlags(v),
                AddrAttr::IfIdx(v) => ifindex = u32::try_from(v).ok().filter(|&i| i != 0),
                AddrAttr::Port(v) => port = Some(v).filter(|&p| p != 0),
                AddrAttr::Family(_) | AddrAttr::Other(_) => {}
            }
        }
        Some(Endpoint {
            id: id?,
            addr: addr?,
            ifindex,
            flags,
            port,
        })
    }

    /// The limits in a GET_LIMITS reply; `None` when either is missing.
    pub fn limits(&self) -> Option<Limits> {
        let (mut subflows, mut accepted) = (None, None);
        for a in &self.attrs {
            match *a {
                PmAttr::Subflows(v) => subflows = Some(v),
                PmAttr::RcvAddAddrs(v) => accepted = Some(v),
                _ => {}
            }
        }
        Some(Limits {
            subflows: subflows?,
            add_addr_accepted: accepted?,
        })
    }
}

fn address_attrs(addr: IpAddr) -> Vec<AddrAttr> {
    match addr {
        IpAddr::V4(a) => vec![AddrAttr::Family(libc::AF_INET as u16), AddrAttr::Addr4(a)],
        IpAddr::V6(a) => vec![AddrAttr::Family(libc::AF_INET6 as u16), AddrAttr::Addr6(a)],
    }
}

impl GenlFamily for PmMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for PmMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for PmMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| PmAttr::parse(&nla)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PmMessage {
            cmd: header.cmd,
            attrs,
        })
    }
}

impl Nla for PmAttr {
    fn value_len(&self) -> usize {
        match self {
            PmAttr::Addr(n) => n.as_slice().buffer_len(),
            PmAttr::RcvAddAddrs(_) | PmAttr::Subflows(_) => 4,
            PmAttr::Other(o) => o.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            PmAttr::Addr(_) => ATTR_ADDR,
            PmAttr::RcvAddAddrs(_) => ATTR_RCV_ADD_ADDRS,
            PmAttr::Subflows(_) => ATTR_SUBFLOWS,
            PmAttr::Other(o) => o.kind(),
        }
    }

    fn is_nested(&self) -> bool {
        matches!(self, PmAttr::Addr(_))
    }

    // `buffer` is exactly `value_len()` bytes: the slicing cannot fail.
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            PmAttr::Addr(n) => n.as_slice().emit(buffer),
            PmAttr::RcvAddAddrs(v) | PmAttr::Subflows(v) => {
                buffer[..4].copy_from_slice(&v.to_ne_bytes())
            }
            PmAttr::Other(o) => o.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for PmAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            ATTR_ADDR => PmAttr::Addr(
                NlasIterator::new(v)
                    .map(|nla| nla.and_then(|nla| AddrAttr::parse(&nla)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            ATTR_RCV_ADD_ADDRS => PmAttr::RcvAddAddrs(parse_u32(v)?),
            ATTR_SUBFLOWS => PmAttr::Subflows(parse_u32(v)?),
            _ => PmAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

impl Nla for AddrAttr {
    fn value_len(&self) -> usize {
        match self {
            AddrAttr::Family(_) | AddrAttr::Port(_) => 2,
            AddrAttr::Id(_) => 1,
            AddrAttr::Addr4(_) | AddrAttr::Flags(_) | AddrAttr::IfIdx(_) => 4,
            AddrAttr::Addr6(_) => 16,
            AddrAttr::Other(o) => o.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            AddrAttr::Family(_) => ADDR_ATTR_FAMILY,
            AddrAttr::Id(_) => ADDR_ATTR_ID,
            AddrAttr::Addr4(_) => ADDR_ATTR_ADDR4,
            AddrAttr::Addr6(_) => ADDR_ATTR_ADDR6,
            AddrAttr::Port(_) => ADDR_ATTR_PORT,
            AddrAttr::Flags(_) => ADDR_ATTR_FLAGS,
            AddrAttr::IfIdx(_) => ADDR_ATTR_IF_IDX,
            AddrAttr::Other(o) => o.kind(),
        }
    }

    // `buffer` is exactly `value_len()` bytes: the slicing cannot fail.
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            AddrAttr::Family(v) | AddrAttr::Port(v) => {
                buffer[..2].copy_from_slice(&v.to_ne_bytes())
            }
            AddrAttr::Id(v) => buffer[0] = *v,
            AddrAttr::Addr4(a) => buffer[..4].copy_from_slice(&a.octets()),
            AddrAttr::Addr6(a) => buffer[..16].copy_from_slice(&a.octets()),
            AddrAttr::Flags(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            AddrAttr::IfIdx(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            AddrAttr::Other(o) => o.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for AddrAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = buf.value();
        Ok(match buf.kind() {
            ADDR_ATTR_FAMILY => AddrAttr::Family(parse_u16(v)?),
            ADDR_ATTR_ID => AddrAttr::Id(parse_u8(v)?),
            ADDR_ATTR_ADDR4 => {
                let o: [u8; 4] = v
                    .try_into()
                    .map_err(|_| DecodeError::from("MPTCP ADDR4 is not 4 bytes"))?;
                AddrAttr::Addr4(Ipv4Addr::from(o))
            }
            ADDR_ATTR_ADDR6 => {
                let o: [u8; 16] = v
                    .try_into()
                    .map_err(|_| DecodeError::from("MPTCP ADDR6 is not 16 bytes"))?;
                AddrAttr::Addr6(Ipv6Addr::from(o))
            }
            ADDR_ATTR_PORT => AddrAttr::Port(parse_u16(v)?),
            ADDR_ATTR_FLAGS => AddrAttr::Flags(parse_u32(v)?),
            ADDR_ATTR_IF_IDX => AddrAttr::IfIdx(parse_i32(v)?),
            _ => AddrAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &PmMessage) -> PmMessage {
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf);
        let header = GenlHeader {
            cmd: m.cmd,
            version: FAMILY_VERSION,
        };
        match PmMessage::parse_with_param(&buf, header) {
            Ok(p) => p,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    #[test]
    fn add_addr_round_trips() {
        let addr: IpAddr = "2001:db8::5"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let flags = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
        let m = PmMessage::add_addr(7, addr, 3, flags);
        let p = round_trip(&m);
        assert_eq!(p, m);
        assert_eq!(
            p.endpoint(),
            Some(Endpoint {
                id: 7,
                addr,
                ifindex: Some(3),
                flags,
                port: None
            })
        );
    }

    #[test]
    fn id_only_requests_omit_family() {
        for m in [
            PmMessage::del_addr(4),
            PmMessage::set_flags(4, EndpointFlags::BACKUP),
        ] {
            let p = round_trip(&m);
            let Some(PmAttr::Addr(nested)) = p.attrs.first() else {
                panic!("no ADDR attribute in {p:?}");
            };
            assert!(!nested.iter().any(|a| matches!(a, AddrAttr::Family(_))));
            assert!(nested.contains(&AddrAttr::Id(4)));
        }
    }

    #[test]
    fn addr_is_nested_and_bytes_are_as_the_kernel_expects() {
        let m = PmMessage::add_addr(
            0,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            2,
            EndpointFlags::SUBFLOW,
        );
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf);
        // Outer: len, type ADDR | NLA_F_NESTED.
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), ATTR_ADDR | 0x8000);
        // First inner: FAMILY = AF_INET (host order).
        assert_eq!(u16::from_ne_bytes([buf[6], buf[7]]), ADDR_ATTR_FAMILY);
        assert_eq!(u16::from_ne_bytes([buf[8], buf[9]]), libc::AF_INET as u16);
        // Second inner: ADDR4 in network order.
        assert_eq!(&buf[16..20], &[192, 0, 2, 1]);
    }

    #[test]
    fn limits_round_trip() {
        let l = Limits {
            subflows: 3,
            add_addr_accepted: 5,
        };
        assert_eq!(round_trip(&PmMessage::set_limits(l)).limits(), Some(l));
        assert_eq!(PmMessage::get_limits().limits(), None);
    }

    #[test]
    fn garbled_attributes_are_errors_not_panics() {
        let header = GenlHeader {
            cmd: CMD_GET_ADDR,
            version: 1,
        };
        // ADDR nest holding an ADDR4 of 3 bytes.
        let bad = [12, 0, 1, 0x80, 7, 0, 3, 0, 1, 2, 3, 0];
        assert!(PmMessage::parse_with_param(&bad, header).is_err());
        // Truncated attribute header.
        assert!(PmMessage::parse_with_param(&[8, 0, 1], header).is_err());
        // Unknown attributes are kept, not fatal.
        let unknown = [8, 0, 99, 0, 1, 2, 3, 4];
        let p = PmMessage::parse_with_param(&unknown, header);
        assert!(
            matches!(p, Ok(PmMessage { ref attrs, .. }) if matches!(attrs[..], [PmAttr::Other(_)]))
        );
        assert_eq!(p.ok().and_then(|p| p.endpoint()), None);
    }

    #[test]
    fn endpoint_without_ifindex_or_port() {
        let m = PmMessage::with_addr(
            CMD_GET_ADDR,
            vec![
                AddrAttr::Family(libc::AF_INET as u16),
                AddrAttr::Id(9),
                AddrAttr::Addr4(Ipv4Addr::new(10, 0, 0, 1)),
                AddrAttr::IfIdx(0),
                AddrAttr::Port(0),
            ],
        );
        let ep = round_trip(&m).endpoint();
        assert_eq!(ep.map(|e| (e.id, e.ifindex, e.port)), Some((9, None, None)));
    }
}
