//! The clock as ConnMan's Clock API shows it (SPEC §6): whether pathman
//! keeps the time and the timezone up to date, the global timeserver list,
//! what the last valid SNTP measurement said, and which servers to ask, in
//! ConnMan's order. Pure: the daemon reads and sets the system clock and the
//! zoneinfo link.

use std::fmt;

use crate::core::model::Model;
use crate::core::order;
use crate::core::types::{Timeserver, TimeserverList};

/// `TimeUpdates` / `TimezoneUpdates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Updates {
    /// pathman keeps it up to date (time: by SNTP).
    #[default]
    Auto,
    /// The user sets it.
    Manual,
}

impl Updates {
    /// The D-Bus / settings string.
    pub fn as_str(self) -> &'static str {
        match self {
            Updates::Auto => "auto",
            Updates::Manual => "manual",
        }
    }

    /// Parses `auto` or `manual`.
    pub fn parse(s: &str) -> Option<Updates> {
        match s {
            "auto" => Some(Updates::Auto),
            "manual" => Some(Updates::Manual),
            _ => None,
        }
    }
}

impl fmt::Display for Updates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid SNTP measurement, as the core keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// The true time minus the system clock, nanoseconds.
    pub offset_ns: i64,
    /// Round-trip delay of the exchange, nanoseconds.
    pub delay_ns: u64,
    /// The server's stratum.
    pub stratum: u8,
}

/// The Clock's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClockState {
    pub time_updates: Updates,
    pub timezone_updates: Updates,
    /// tzdata name (`Europe/Berlin`), or empty when unknown.
    pub timezone: String,
    /// `Clock.Timeservers`: the global list (persisted).
    pub timeservers: TimeserverList,
    /// main.conf `FallbackTimeservers`.
    pub fallback: TimeserverList,
    /// The last valid measurement, if one is recent enough.
    pub measured: Option<Measured>,
}

impl ClockState {
    /// `TimeserverSynced`: a valid measurement exists (whether or not the
    /// clock could be set from it).
    pub fn synced(&self) -> bool {
        self.measured.is_some()
    }
}

fn push_unique(out: &mut Vec<Timeserver>, t: Timeserver) {
    if !out.contains(&t) {
        out.push(t);
    }
}

/// The servers to ask, in ConnMan's order: the default service's
/// `Timeservers.Configuration`, its DHCP option 42 servers, the global
/// `Clock.Timeservers`, then main.conf's `FallbackTimeservers`. Empty while
/// no service is connected or the time is set by hand.
pub fn servers(model: &Model) -> Vec<Timeserver> {
    let clock = &model.clock;
    if clock.time_updates != Updates::Auto {
        return Vec::new();
    }
    let Some(svc) = order::connected(model).next() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in &svc.config.timeservers {
        push_unique(&mut out, t.clone());
    }
    if let Some(v4) = &svc.ipv4 {
        for a in &v4.timeservers {
            push_unique(&mut out, Timeserver::Addr(*a));
        }
    }
    for t in clock.timeservers.iter().chain(&clock.fallback) {
        push_unique(&mut out, t.clone());
    }
    out
}

/// What to do with the system clock after a measurement: RFC 5905 style,
/// step when far off, slew otherwise (ConnMan's 0.4 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    /// Set the clock to the measured time.
    Step(i64),
    /// Let the kernel slew by this many nanoseconds.
    Slew(i64),
}

/// Offsets larger than this are stepped, smaller ones slewed.
pub const STEP_THRESHOLD_NS: i64 = 400_000_000;

/// The correction for a measured offset.
pub fn correction(offset_ns: i64) -> Correction {
    if offset_ns.unsigned_abs() > STEP_THRESHOLD_NS as u64 {
        Correction::Step(offset_ns)
    } else {
        Correction::Slew(offset_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_offsets_are_stepped_near_ones_slewed() {
        assert_eq!(correction(500_000_000), Correction::Step(500_000_000));
        assert_eq!(correction(-500_000_000), Correction::Step(-500_000_000));
        assert_eq!(correction(1_000_000), Correction::Slew(1_000_000));
        assert_eq!(correction(-400_000_000), Correction::Slew(-400_000_000));
    }

    #[test]
    fn updates_parse() {
        assert_eq!(Updates::parse("auto"), Some(Updates::Auto));
        assert_eq!(Updates::parse("manual"), Some(Updates::Manual));
        assert_eq!(Updates::parse("Auto"), None);
    }
}
