//! ARP for Ethernet/IPv4 (RFC 826), with the RFC 5227 probe and announcement forms.

use core::fmt;
use std::net::Ipv4Addr;

/// Errors from parsing or emitting ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than 28 bytes.
    Truncated,
    /// Not Ethernet/IPv4 (htype, ptype, hlen, plen).
    Unsupported,
    /// Operation neither request nor reply.
    BadOperation(u16),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "ARP packet truncated"),
            Error::Unsupported => write!(f, "ARP packet not Ethernet/IPv4"),
            Error::BadOperation(o) => write!(f, "ARP operation {o} unknown"),
        }
    }
}

impl std::error::Error for Error {}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// A zero-copy view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn mac_at(b: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer after checking its length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Hardware type.
    pub fn htype(&self) -> u16 {
        u16::from_be_bytes([self.b()[0], self.b()[1]])
    }
    /// Protocol type.
    pub fn ptype(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }
    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.b()[4]
    }
    /// Protocol address length.
    pub fn plen(&self) -> u8 {
        self.b()[5]
    }
    /// Operation.
    pub fn operation(&self) -> u16 {
        u16::from_be_bytes([self.b()[6], self.b()[7]])
    }
    /// Sender hardware address.
    pub fn sender_hw(&self) -> [u8; 6] {
        mac_at(self.b(), 8)
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip_at(self.b(), 14)
    }
    /// Target hardware address.
    pub fn target_hw(&self) -> [u8; 6] {
        mac_at(self.b(), 18)
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip_at(self.b(), 24)
    }
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Request (1).
    Request,
    /// Reply (2).
    Reply,
}

/// An Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Request or reply.
    pub operation: Operation,
    /// Sender MAC.
    pub sender_hw: [u8; 6],
    /// Sender IPv4 (0.0.0.0 in a probe).
    pub sender_ip: Ipv4Addr,
    /// Target MAC.
    pub target_hw: [u8; 6],
    /// Target IPv4.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// An RFC 5227 probe for `addr`: sender IP zero, target `addr`.
    pub fn probe(mac: [u8; 6], addr: Ipv4Addr) -> Self {
        Repr {
            operation: Operation::Request,
            sender_hw: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_hw: [0; 6],
            target_ip: addr,
        }
    }

    /// An RFC 5227 announcement of `addr`: sender and target IP both `addr`.
    pub fn announce(mac: [u8; 6], addr: Ipv4Addr) -> Self {
        Repr {
            operation: Operation::Request,
            sender_hw: mac,
            sender_ip: addr,
            target_hw: [0; 6],
            target_ip: addr,
        }
    }

    /// Parses an Ethernet/IPv4 ARP message.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        let p = Packet::new_checked(packet.b())?;
        if p.htype() != 1 || p.ptype() != 0x0800 || p.hlen() != 6 || p.plen() != 4 {
            return Err(Error::Unsupported);
        }
        let operation = match p.operation() {
            1 => Operation::Request,
            2 => Operation::Reply,
            o => return Err(Error::BadOperation(o)),
        };
        Ok(Repr {
            operation,
            sender_hw: p.sender_hw(),
            sender_ip: p.sender_ip(),
            target_hw: p.target_hw(),
            target_ip: p.target_ip(),
        })
    }

    /// Bytes needed to emit.
    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the message into the first [`PACKET_LEN`] bytes of the packet's buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        let b = packet
            .buffer
            .as_mut()
            .get_mut(..PACKET_LEN)
            .ok_or(Error::Truncated)?;
        b[0..2].copy_from_slice(&1u16.to_be_bytes());
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        let op: u16 = match self.operation {
            Operation::Request => 1,
            Operation::Reply => 2,
        };
        b[6..8].copy_from_slice(&op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_hw);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_hw);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_probe_and_announce() {
        let mac = [2, 0, 0, 0, 0, 9];
        for r in [
            Repr::probe(mac, Ipv4Addr::new(169, 254, 3, 4)),
            Repr::announce(mac, Ipv4Addr::new(169, 254, 3, 4)),
        ] {
            let mut buf = [0u8; PACKET_LEN];
            r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
            assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), r);
        }
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&[0u8; 27][..])),
            Err(Error::Truncated)
        );
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&[0u8; 28][..])),
            Err(Error::Unsupported)
        );
    }

    proptest! {
        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(r) = Repr::parse(&Packet::new_unchecked(&data[..])) {
                let mut buf = [0u8; PACKET_LEN];
                r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
                prop_assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), r);
            }
        }
    }
}
