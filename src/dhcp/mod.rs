//! DHCPv4 client and IPv4 link-local: sans-I/O state machines (their sockets are
//! [`crate::edge::dhcp`]; [`crate::task`] drives them).

pub mod acd;
pub mod acquire;
pub mod client;
pub mod ipv4ll;
pub mod lease;
pub mod leases;
pub mod server;

use crate::core::types::IfName;

/// `name` as an [`IfName`], cut at the kernel's length limit; it only labels log lines.
pub fn ifname(name: &str) -> IfName {
    let mut out = IfName::new();
    for c in name.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// A small xorshift PRNG for jitter, transaction ids and link-local candidates.
///
/// Not cryptographic: RFC 2131 only needs xids that differ between clients, which a seed from
/// the caller (MAC mixed with boot time) gives.
#[derive(Debug, Clone)]
pub struct Prng(u32);

impl Prng {
    /// Seeds the generator; a zero seed is replaced because xorshift would stay at zero.
    pub fn new(seed: u32) -> Self {
        Prng(if seed == 0 { 0x9e37_79b9 } else { seed })
    }

    /// Next pseudo-random value.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// A value in `0..n` (n > 0); modulo bias is irrelevant for jitter.
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n.max(1)
    }
}

/// Folds a MAC into a 32-bit seed (FNV-1a), so a board picks the same values after reboot.
pub fn seed_from_mac(mac: [u8; 6]) -> u32 {
    mac.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The seed of a new client on `mac`: the MAC mixed with wall-clock
/// nanoseconds, so xids differ between boots of identical boards.
pub fn seed_for(mac: [u8; 6]) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Prng::new(seed_from_mac(mac) ^ nanos).next_u32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_truncates_at_limit() {
        assert_eq!(ifname("eth0").as_str(), "eth0");
        assert_eq!(
            ifname("a-very-long-interface-name").as_str(),
            "a-very-long-int"
        );
    }
}
