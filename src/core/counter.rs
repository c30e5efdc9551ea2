//! Usage counters (`Manager.RegisterCounter`, `net.connman.Counter`): who
//! asked for them and what a service's traffic amounts to since it
//! connected. Pure: the daemon reads the kernel's interface statistics and
//! the clock and passes them in.

/// A client's counter object, registered with `RegisterCounter(o, u, u)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Unique bus name of the client; the counter dies with its connection.
    pub owner: String,
    /// The client's `net.connman.Counter` object.
    pub path: String,
    /// ConnMan's `accuracy` in kB: a service whose byte counts moved by less
    /// than this since the last report is not reported (0 = every change).
    pub accuracy_kb: u32,
    /// Seconds between reports (at least [`crate::caps::COUNTER_MIN_PERIOD_SECS`]).
    pub period_secs: u32,
}

/// The kernel's statistics of an interface (`/sys/class/net/IF/statistics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// One service's usage since it connected, as `Usage` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Counts since the service connected.
    pub stats: LinkStats,
    /// Seconds since the service connected.
    pub secs: u32,
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl Usage {
    /// The usage from statistics now and at connect time. Counters that went
    /// backwards (the interface was re-created) count from zero.
    pub fn between(base: &LinkStats, now: &LinkStats, secs: u32) -> Usage {
        let d = |a: u64, b: u64| b.saturating_sub(a);
        Usage {
            stats: LinkStats {
                rx_packets: d(base.rx_packets, now.rx_packets),
                tx_packets: d(base.tx_packets, now.tx_packets),
                rx_bytes: d(base.rx_bytes, now.rx_bytes),
                tx_bytes: d(base.tx_bytes, now.tx_bytes),
                rx_errors: d(base.rx_errors, now.rx_errors),
                tx_errors: d(base.tx_errors, now.tx_errors),
                rx_dropped: d(base.rx_dropped, now.rx_dropped),
                tx_dropped: d(base.tx_dropped, now.tx_dropped),
            },
            secs,
        }
    }

    /// ConnMan's keys in ConnMan's order, as `u` values (clamped).
    pub fn fields(&self) -> [(&'static str, u32); 9] {
        let s = &self.stats;
        [
            ("RX.Packets", clamp(s.rx_packets)),
            ("TX.Packets", clamp(s.tx_packets)),
            ("RX.Bytes", clamp(s.rx_bytes)),
            ("TX.Bytes", clamp(s.tx_bytes)),
            ("RX.Errors", clamp(s.rx_errors)),
            ("TX.Errors", clamp(s.tx_errors)),
            ("RX.Dropped", clamp(s.rx_dropped)),
            ("TX.Dropped", clamp(s.tx_dropped)),
            ("Time", self.secs),
        ]
    }

    /// Whether this usage's counts are worth reporting after `last` for a
    /// counter with `accuracy_kb`: always when the accuracy is 0, else once
    /// the byte counts moved by at least that many kB.
    pub fn worth_reporting(&self, last: &Usage, accuracy_kb: u32) -> bool {
        if accuracy_kb == 0 {
            return true;
        }
        let moved = self.stats.rx_bytes.abs_diff(last.stats.rx_bytes)
            + self.stats.tx_bytes.abs_diff(last.stats.tx_bytes);
        moved >= u64::from(accuracy_kb) * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_from_connect_and_survives_a_reset() {
        let base = LinkStats {
            rx_bytes: 1000,
            tx_bytes: 500,
            rx_packets: 10,
            ..Default::default()
        };
        let now = LinkStats {
            rx_bytes: 3000,
            tx_bytes: 400, // went backwards: counts from zero
            rx_packets: 12,
            ..Default::default()
        };
        let u = Usage::between(&base, &now, 7);
        assert_eq!(u.stats.rx_bytes, 2000);
        assert_eq!(u.stats.tx_bytes, 0);
        let f = u.fields();
        assert_eq!(f[0], ("RX.Packets", 2));
        assert_eq!(f[8], ("Time", 7));
        assert!(u.worth_reporting(&Usage::default(), 0));
        assert!(u.worth_reporting(&u, 0));
        assert!(u.worth_reporting(&Usage::default(), 1));
        assert!(!u.worth_reporting(&Usage::default(), 3));
    }
}
