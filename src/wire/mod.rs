//! Zero-copy wire formats in the smoltcp style: a `Packet` view with checked accessors and a
//! `Repr` with `parse`/`emit`. Pure, allocation-free.

pub mod arp;
pub mod dhcpv4;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod ipv4udp;
pub mod sntp;

/// The Internet checksum (RFC 1071) of `data`, folded, starting from `initial` (a partial sum).
pub fn checksum_sum(initial: u32, data: &[u8]) -> u32 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a partial sum from [`checksum_sum`] into the final one's-complement checksum.
pub fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
