//! What the SNTP task's and the online checkers' events do. SNTP: the measurement becomes the Clock's
//! `TimeserverSynced` and `Time`, and, where pathman keeps the clock
//! (SetClock, no --no-set-clock, CAP_SYS_TIME, TimeUpdates=auto), the system
//! clock is stepped or slewed and the floor file remembers the time. Online
//! check: the service's verdict (ready or online).

use crate::core::clock::{self, Correction, Measured, Updates};
use crate::time::task::SntpEvent;

use super::Daemon;

impl Daemon {
    pub(super) fn on_sntp(&mut self, ev: SntpEvent) {
        match ev {
            SntpEvent::Unsynced => {
                if self.model.clock.measured.take().is_some() {
                    log::info!("SNTP: no recent valid measurement; not synchronised");
                }
            }
            SntpEvent::Synced(m) => {
                let offset_ns = m.offset.as_nanos();
                let first = self.model.clock.measured.is_none();
                let say = format!(
                    "SNTP: {} {} (offset {:+.6} s, delay {:.3} ms, stratum {})",
                    if first {
                        "synchronised with"
                    } else {
                        "measured"
                    },
                    m.server,
                    m.offset.as_secs_f64(),
                    m.delay.as_secs_f64() * 1e3,
                    m.stratum
                );
                if first {
                    log::info!("{say}");
                } else {
                    log::debug!("{say}");
                }
                let mut left = offset_ns;
                if self.time.set_clock && self.model.clock.time_updates == Updates::Auto {
                    let done = match clock::correction(offset_ns) {
                        Correction::Step(o) => crate::edge::clock::step(o).map(|()| "stepped"),
                        Correction::Slew(o) => crate::edge::clock::slew(o).map(|()| "slewing"),
                    };
                    match done {
                        Ok(how) => {
                            log::info!("clock: {how} by {:+.6} s", m.offset.as_secs_f64());
                            // The clock is (or is becoming) right.
                            left = 0;
                            let secs = crate::edge::clock::ns_since_epoch(m.wall) / 1_000_000_000;
                            if let Err(e) =
                                crate::edge::clock::write_floor(&self.time.floor_file, secs)
                            {
                                log::warn!("clock: {}: {e}", self.time.floor_file.display());
                            }
                        }
                        Err(e) => log::warn!("clock: cannot correct it: {e}"),
                    }
                }
                self.model.clock.measured = Some(Measured {
                    offset_ns: left,
                    delay_ns: u64::try_from(m.delay.as_nanos()).unwrap_or(u64::MAX),
                    stratum: m.stratum,
                });
            }
        }
    }
}

impl Daemon {
    /// An online checker's verdict: the service goes online or back to ready.
    pub(super) fn on_online(&mut self, ifindex: u32, ev: crate::online::Event) {
        use crate::online::Event as E;
        let name = self
            .model
            .services
            .iter()
            .find(|s| s.ifindex == ifindex)
            .map_or_else(|| format!("ifindex {ifindex}"), |s| s.ifname.to_string());
        match ev {
            E::Online => self.model.online_changed(ifindex, true),
            E::Offline { reason } => {
                log::info!("{name}: online check: {reason}");
                self.model.online_changed(ifindex, false);
            }
            E::Portal { status } => {
                log::info!(
                    "{name}: online check: HTTP {status} without X-ConnMan-Status (a portal?): not online"
                );
                self.model.online_changed(ifindex, false);
            }
            E::Stats(s) => log::debug!("{name}: online check: {s:?}"),
        }
    }
}
