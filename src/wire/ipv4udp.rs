//! IPv4 header plus UDP header, as seen on and written to a `SOCK_DGRAM` packet socket.
//!
//! Only what a DHCP client needs: no IP options on emit, fragments rejected on parse.

use super::{checksum_fold, checksum_sum};
use core::fmt;
use std::net::Ipv4Addr;

/// Errors from parsing or emitting IPv4+UDP headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Buffer shorter than the headers or the lengths they claim.
    Truncated,
    /// Not IPv4.
    BadVersion(u8),
    /// IHL below 5 or past the total length.
    BadHeaderLength(u8),
    /// Total length below the header length.
    BadTotalLength(u16),
    /// A fragment (MF set or non-zero offset).
    Fragment,
    /// Not UDP.
    NotUdp(u8),
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// UDP length field inconsistent with the IP payload.
    BadUdpLength(u16),
    /// UDP checksum wrong.
    BadUdpChecksum,
    /// Emit: buffer too short or payload too long for one datagram.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "IPv4/UDP packet truncated"),
            Error::BadVersion(v) => write!(f, "IP version {v} is not 4"),
            Error::BadHeaderLength(l) => write!(f, "bad IPv4 header length {l}"),
            Error::BadTotalLength(l) => write!(f, "bad IPv4 total length {l}"),
            Error::Fragment => write!(f, "IPv4 fragment"),
            Error::NotUdp(p) => write!(f, "IP protocol {p} is not UDP"),
            Error::BadIpChecksum => write!(f, "bad IPv4 header checksum"),
            Error::BadUdpLength(l) => write!(f, "bad UDP length {l}"),
            Error::BadUdpChecksum => write!(f, "bad UDP checksum"),
            Error::BufferTooSmall => write!(f, "buffer too small for IPv4/UDP packet"),
        }
    }
}

impl std::error::Error for Error {}

/// IPv4 header length emitted (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// Both headers as emitted.
pub const HEADER_LEN: usize = IPV4_HEADER_LEN + UDP_HEADER_LEN;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
const DEFAULT_TTL: u8 = 64;

/// Whether the receive path must verify the UDP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpChecksum {
    /// Verify (a zero checksum means "none" and is accepted, RFC 768).
    Verify,
    /// The kernel reported the checksum unfinished (`TP_STATUS_CSUMNOTREADY`): skip it.
    KernelUnfinished,
}

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking version, header length and total length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Ipv4Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks that every accessor stays in bounds.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < IPV4_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(Error::BadVersion(b[0] >> 4));
        }
        let hl = self.header_len();
        if hl < IPV4_HEADER_LEN {
            return Err(Error::BadHeaderLength(b[0] & 0xf));
        }
        let total = self.total_len();
        if usize::from(total) < hl {
            return Err(Error::BadTotalLength(total));
        }
        if b.len() < usize::from(total) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[0] & 0xf) * 4
    }
    /// Total length field.
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }
    /// True if MF is set or the fragment offset is non-zero.
    pub fn is_fragment(&self) -> bool {
        u16::from_be_bytes([self.b()[6], self.b()[7]]) & 0x3fff != 0
    }
    /// TTL.
    pub fn ttl(&self) -> u8 {
        self.b()[8]
    }
    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.b()[9]
    }
    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b()[12], self.b()[13], self.b()[14], self.b()[15])
    }
    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b()[16], self.b()[17], self.b()[18], self.b()[19])
    }
    /// True if the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum_fold(checksum_sum(0, &self.b()[..self.header_len()])) == 0
    }
    /// The payload, bounded by the total length (link padding dropped).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }
}

/// A parsed or to-be-emitted IPv4+UDP header pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// IPv4 source.
    pub src_addr: Ipv4Addr,
    /// IPv4 destination.
    pub dst_addr: Ipv4Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// UDP payload length.
    pub payload_len: usize,
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, udp_len: u16) -> u32 {
    let mut s = checksum_sum(0, &src.octets());
    s = checksum_sum(s, &dst.octets());
    s + u32::from(PROTO_UDP) + u32::from(udp_len)
}

impl Repr {
    /// Parses an IPv4 packet carrying UDP and returns the headers and the UDP payload.
    pub fn parse<'a, T: AsRef<[u8]> + ?Sized>(
        packet: &Ipv4Packet<&'a T>,
        udp_checksum: UdpChecksum,
    ) -> Result<(Repr, &'a [u8]), Error> {
        let ip = Ipv4Packet::new_checked(packet.buffer.as_ref())?;
        if !ip.verify_checksum() {
            return Err(Error::BadIpChecksum);
        }
        if ip.is_fragment() {
            return Err(Error::Fragment);
        }
        if ip.protocol() != PROTO_UDP {
            return Err(Error::NotUdp(ip.protocol()));
        }
        let b: &'a [u8] = packet.buffer.as_ref();
        let udp = &b[ip.header_len()..usize::from(ip.total_len())];
        if udp.len() < UDP_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let udp_len = u16::from_be_bytes([udp[4], udp[5]]);
        if usize::from(udp_len) < UDP_HEADER_LEN || usize::from(udp_len) > udp.len() {
            return Err(Error::BadUdpLength(udp_len));
        }
        let udp = &udp[..usize::from(udp_len)];
        let csum = u16::from_be_bytes([udp[6], udp[7]]);
        if udp_checksum == UdpChecksum::Verify && csum != 0 {
            let s = pseudo_sum(ip.src_addr(), ip.dst_addr(), udp_len);
            if checksum_fold(checksum_sum(s, udp)) != 0 {
                return Err(Error::BadUdpChecksum);
            }
        }
        let repr = Repr {
            src_addr: ip.src_addr(),
            dst_addr: ip.dst_addr(),
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
            payload_len: udp.len() - UDP_HEADER_LEN,
        };
        Ok((repr, &udp[UDP_HEADER_LEN..]))
    }

    /// Total bytes of headers plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Fills the headers and both checksums of `buf[..buffer_len()]`; the caller has already
    /// written the payload at `buf[HEADER_LEN..]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let total = self.buffer_len();
        let total16 = u16::try_from(total).map_err(|_| Error::BufferTooSmall)?;
        let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let (ip, rest) = buf.split_at_mut(IPV4_HEADER_LEN);
        ip[0] = 0x45;
        // DSCP CS6 is what dhclient/udhcpc use for network control traffic.
        ip[1] = 0xc0;
        ip[2..4].copy_from_slice(&total16.to_be_bytes());
        ip[4..6].fill(0);
        // DF: the packet is small and must never be fragmented.
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        ip[8] = DEFAULT_TTL;
        ip[9] = PROTO_UDP;
        ip[10..12].fill(0);
        ip[12..16].copy_from_slice(&self.src_addr.octets());
        ip[16..20].copy_from_slice(&self.dst_addr.octets());
        let c = checksum_fold(checksum_sum(0, ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());

        let udp_len = total16 - IPV4_HEADER_LEN as u16;
        rest[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        rest[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        rest[4..6].copy_from_slice(&udp_len.to_be_bytes());
        rest[6..8].fill(0);
        let s = pseudo_sum(self.src_addr, self.dst_addr, udp_len);
        let mut c = checksum_fold(checksum_sum(s, rest));
        // RFC 768: a computed zero is sent as all ones.
        if c == 0 {
            c = 0xffff;
        }
        rest[6..8].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(payload: &[u8]) -> (Repr, Vec<u8>) {
        let r = Repr {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: Ipv4Addr::BROADCAST,
            src_port: 68,
            dst_port: 67,
            payload_len: payload.len(),
        };
        let mut buf = vec![0u8; r.buffer_len()];
        buf[HEADER_LEN..].copy_from_slice(payload);
        r.emit(&mut buf).unwrap();
        (r, buf)
    }

    #[test]
    fn round_trip() {
        let (r, buf) = sample(b"hello dhcp");
        let (p, payload) =
            Repr::parse(&Ipv4Packet::new_unchecked(&buf[..]), UdpChecksum::Verify).unwrap();
        assert_eq!(p, r);
        assert_eq!(payload, b"hello dhcp");
    }

    #[test]
    fn link_padding_is_dropped() {
        let (_, mut buf) = sample(b"abc");
        buf.extend_from_slice(&[0; 20]);
        let (_, payload) =
            Repr::parse(&Ipv4Packet::new_unchecked(&buf[..]), UdpChecksum::Verify).unwrap();
        assert_eq!(payload, b"abc");
    }

    #[test]
    fn checksums_and_fragments() {
        let (_, buf) = sample(b"abcd");
        let mut b = buf.clone();
        b[HEADER_LEN] ^= 1;
        let pkt = Ipv4Packet::new_unchecked(&b[..]);
        assert_eq!(
            Repr::parse(&pkt, UdpChecksum::Verify),
            Err(Error::BadUdpChecksum)
        );
        assert!(Repr::parse(&pkt, UdpChecksum::KernelUnfinished).is_ok());
        let mut b = buf.clone();
        b[15] ^= 1;
        assert_eq!(
            Repr::parse(&Ipv4Packet::new_unchecked(&b[..]), UdpChecksum::Verify),
            Err(Error::BadIpChecksum)
        );
        let mut b = buf.clone();
        b[6] |= 0x20;
        b[10..12].fill(0);
        let c = checksum_fold(checksum_sum(0, &b[..20]));
        b[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            Repr::parse(&Ipv4Packet::new_unchecked(&b[..]), UdpChecksum::Verify),
            Err(Error::Fragment)
        );
        assert_eq!(
            Repr::parse(&Ipv4Packet::new_unchecked(&buf[..27]), UdpChecksum::Verify),
            Err(Error::Truncated)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200),
                                    verify in any::<bool>()) {
            let mode = if verify { UdpChecksum::Verify } else { UdpChecksum::KernelUnfinished };
            let _ = Repr::parse(&Ipv4Packet::new_unchecked(&data[..]), mode);
        }
    }
}
