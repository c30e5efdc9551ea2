//! Time: the SNTP client and the stub resolver that turns its server names into addresses.
//!
//! Both are sans-I/O machines of the shape every pathman protocol machine has: the owner asks
//! `poll_at()` when to call `dispatch(now, wall)`, sends what it returns, feeds every
//! datagram to `process(now, wall, from, bytes)`, and drains `poll_event()`. Neither holds a
//! socket or reads a clock; `now` (monotonic) and `wall` (the system clock as it is) come from
//! the caller, so every path is a plain unit test.
//!
//! How names are resolved: the SNTP client never resolves. When the list reaches a name
//! with no current addresses it emits [`sntp::Event::Resolve`]; the owner runs a
//! [`resolve::Resolver`] for it over the service's DNS servers and hands the outcome back
//! with [`sntp::Client::resolved`]. The client keeps the addresses (at least as long as the
//! TTL says) and asks again only when they have all failed and the TTL has run out. So the
//! SNTP machine knows nothing about DNS servers or services, and the resolver nothing about
//! NTP.

pub mod resolve;
pub mod sntp;
pub mod task;

use core::fmt;
use std::time::{Duration, SystemTime};

/// A signed difference between two times, in nanoseconds (±292 years): how far the local
/// clock is from the server's (positive: the local clock is behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeOffset(i64);

impl TimeOffset {
    /// No difference.
    pub const ZERO: TimeOffset = TimeOffset(0);

    /// From nanoseconds.
    pub fn from_nanos(nanos: i64) -> TimeOffset {
        TimeOffset(nanos)
    }

    /// `a - b`, saturating at ±292 years.
    pub fn between(a: SystemTime, b: SystemTime) -> TimeOffset {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match a.duration_since(b) {
            Ok(d) => TimeOffset(nanos(d)),
            Err(e) => TimeOffset(nanos(e.duration()).saturating_neg()),
        }
    }

    /// Nanoseconds.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Seconds, as a float (for log lines and adjtimex).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The size of the difference.
    pub fn abs(self) -> Duration {
        Duration::from_nanos(self.0.unsigned_abs())
    }

    /// True when the local clock is ahead of the server's.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `t` corrected by this offset; None when that leaves what `SystemTime` holds.
    pub fn apply(self, t: SystemTime) -> Option<SystemTime> {
        if self.0 >= 0 {
            t.checked_add(self.abs())
        } else {
            t.checked_sub(self.abs())
        }
    }

    /// The difference between two offsets, as a size.
    pub fn distance(self, other: TimeOffset) -> Duration {
        Duration::from_nanos(self.0.abs_diff(other.0))
    }
}

impl fmt::Display for TimeOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let a = self.0.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:06} s",
            a / 1_000_000_000,
            (a % 1_000_000_000) / 1000
        )
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit values for NTP cookies and DNS ids.
///
/// Not cryptographic; what it protects against is an off-path sender guessing the value of a
/// request it cannot see, which a 64-bit state seeded by the owner (from getrandom) answers.
/// The DHCP PRNG keeps 32 bits of state, too little for a 64-bit cookie.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (any seed works, zero included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn offsets() {
        let a = UNIX_EPOCH + Duration::from_secs(100);
        let b = UNIX_EPOCH + Duration::from_millis(99_750);
        let o = TimeOffset::between(a, b);
        assert_eq!(o.as_nanos(), 250_000_000);
        assert_eq!(o.to_string(), "+0.250000 s");
        assert_eq!(TimeOffset::between(b, a).to_string(), "-0.250000 s");
        assert!(TimeOffset::between(b, a).is_negative());
        assert_eq!(o.apply(b), Some(a));
        assert_eq!(TimeOffset::between(b, a).apply(a), Some(b));
        assert_eq!(
            o.distance(TimeOffset::between(b, a)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn rng_values_differ() {
        let mut r = Rng::new(0);
        let (x, y) = (r.next_u64(), r.next_u64());
        assert_ne!(x, y);
        assert_ne!(x, 0);
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
