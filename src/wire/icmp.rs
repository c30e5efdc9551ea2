//! ICMPv4 echo (RFC 792) for the reachability probe: the echo request a raw socket sends
//! (the kernel adds the IPv4 header) and the echo reply it receives (IPv4 header included).

use super::{checksum_fold, checksum_sum};
use core::fmt;
use std::net::Ipv4Addr;

/// ICMP header length of an echo message.
pub const ECHO_HEADER_LEN: usize = 8;
/// Shortest IPv4 header.
pub const IPV4_MIN_HEADER: usize = 20;
const TYPE_ECHO_REPLY: u8 = 0;
const TYPE_ECHO_REQUEST: u8 = 8;
const PROTO_ICMP: u8 = 1;

/// Why a packet is not an echo reply we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its headers say, or than an IPv4 + ICMP echo header.
    Truncated,
    /// Not IPv4, not ICMP, or a fragment.
    NotIcmp,
    /// Another ICMP type (the raw socket sees all of them).
    NotEchoReply,
    /// The ICMP checksum is wrong.
    Checksum,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::NotIcmp => "not an unfragmented IPv4 ICMP packet",
            Error::NotEchoReply => "not an echo reply",
            Error::Checksum => "bad ICMP checksum",
            Error::BufferTooSmall => "buffer too small",
        })
    }
}

impl std::error::Error for Error {}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    checksum_fold(checksum_sum(0, data))
}

/// An echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRequest<'a> {
    pub ident: u16,
    pub seq: u16,
    pub payload: &'a [u8],
}

impl EchoRequest<'_> {
    /// Bytes [`EchoRequest::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        ECHO_HEADER_LEN + self.payload.len()
    }

    /// Writes the ICMP message (no IPv4 header) into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out[0] = TYPE_ECHO_REQUEST;
        out[1] = 0;
        out[2..4].fill(0);
        out[4..6].copy_from_slice(&self.ident.to_be_bytes());
        out[6..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..].copy_from_slice(self.payload);
        let c = checksum(out);
        out[2..4].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }
}

/// An echo reply as received on a raw socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// Who answered (the IPv4 source).
    pub src: Ipv4Addr,
    pub ident: u16,
    pub seq: u16,
    pub payload: &'a [u8],
}

impl<'a> EchoReply<'a> {
    /// Parses an IPv4 packet (header included) holding an ICMP echo reply.
    pub fn parse(packet: &'a [u8]) -> Result<EchoReply<'a>, Error> {
        let first = *packet.first().ok_or(Error::Truncated)?;
        if first >> 4 != 4 {
            return Err(Error::NotIcmp);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < IPV4_MIN_HEADER || packet.len() < ihl {
            return Err(Error::Truncated);
        }
        let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        // Raw sockets hand over the packet as it came; trust the shorter of the two.
        let end = if total >= ihl {
            total.min(packet.len())
        } else {
            return Err(Error::Truncated);
        };
        let frag = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff;
        if packet[9] != PROTO_ICMP || frag != 0 {
            return Err(Error::NotIcmp);
        }
        let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let icmp = &packet[ihl..end];
        if icmp.len() < ECHO_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if icmp[0] != TYPE_ECHO_REPLY || icmp[1] != 0 {
            return Err(Error::NotEchoReply);
        }
        if checksum(icmp) != 0 {
            return Err(Error::Checksum);
        }
        Ok(EchoReply {
            src,
            ident: u16::from_be_bytes([icmp[4], icmp[5]]),
            seq: u16::from_be_bytes([icmp[6], icmp[7]]),
            payload: &icmp[ECHO_HEADER_LEN..],
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The echo reply a peer at `src` sends for `req`, with a 20-byte IPv4 header.
    pub(crate) fn reply_to(req: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> std::vec::Vec<u8> {
        let mut icmp = req.to_vec();
        icmp[0] = TYPE_ECHO_REPLY;
        icmp[2..4].fill(0);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let total = (IPV4_MIN_HEADER + icmp.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, PROTO_ICMP, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&icmp);
        p
    }

    #[test]
    fn request_matches_a_captured_ping() {
        // `ping -c1 -p 00` style request: ident 0x1234, seq 1, no payload.
        let mut b = [0u8; 8];
        let n = EchoRequest {
            ident: 0x1234,
            seq: 1,
            payload: &[],
        }
        .emit(&mut b)
        .unwrap();
        assert_eq!(n, 8);
        assert_eq!(b, [8, 0, 0xe5, 0xca, 0x12, 0x34, 0, 1]);
        assert_eq!(checksum(&b), 0);
    }

    #[test]
    fn parses_a_reply_and_refuses_others() {
        let mut b = [0u8; 12];
        let n = EchoRequest {
            ident: 7,
            seq: 9,
            payload: b"abcd",
        }
        .emit(&mut b)
        .unwrap();
        let src = Ipv4Addr::new(198, 19, 0, 1);
        let p = reply_to(&b[..n], src, Ipv4Addr::new(198, 18, 1, 100));
        let r = EchoReply::parse(&p).unwrap();
        assert_eq!(
            (r.src, r.ident, r.seq, r.payload),
            (src, 7, 9, &b"abcd"[..])
        );
        let mut bad = p.clone();
        bad[25] ^= 1;
        assert_eq!(EchoReply::parse(&bad), Err(Error::Checksum));
        let mut req = p.clone();
        req[20] = TYPE_ECHO_REQUEST;
        assert_eq!(EchoReply::parse(&req), Err(Error::NotEchoReply));
        assert_eq!(EchoReply::parse(&p[..24]), Err(Error::Truncated));
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(EchoReply::parse(&udp), Err(Error::NotIcmp));
        assert_eq!(
            EchoRequest {
                ident: 0,
                seq: 0,
                payload: b"x"
            }
            .emit(&mut [0u8; 8]),
            Err(Error::BufferTooSmall)
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = EchoReply::parse(&b);
        }

        #[test]
        fn request_reply_round_trip(ident: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = [0u8; 72];
            let n = EchoRequest { ident, seq, payload: &payload }.emit(&mut b).unwrap();
            prop_assert_eq!(checksum(&b[..n]), 0);
            let p = reply_to(&b[..n], Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
            let r = EchoReply::parse(&p).unwrap();
            prop_assert_eq!((r.ident, r.seq, r.payload), (ident, seq, &payload[..]));
        }
    }
}
