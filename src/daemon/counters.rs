//! Usage counters: the baseline of each connected service's interface
//! statistics (taken when it connects, or at ResetCounters), and the
//! periodic `Usage` reports to registered counters.

use std::time::{Duration, Instant};

use crate::core::counter::{LinkStats, Usage};
use crate::core::model::Model;
use crate::core::types::ServiceId;
use crate::dbus::props;
use crate::dbus::signals;
use crate::edge::sysfs;

/// A connected service's statistics when it connected.
struct Base {
    id: ServiceId,
    ifname: crate::core::types::IfName,
    since: Instant,
    stats: LinkStats,
}

/// What a counter was last told about a service.
struct Sent {
    owner: String,
    path: String,
    id: ServiceId,
    usage: Usage,
}

/// Baselines and reports.
#[derive(Default)]
pub struct Counters {
    bases: Vec<Base>,
    sent: Vec<Sent>,
    /// Next report per counter: (owner, path, when).
    due: Vec<(String, String, Instant)>,
}

impl Counters {
    /// Follows the model: baselines for services that just connected, none
    /// for those that are gone; schedules new counters at once (ConnMan
    /// reports right after RegisterCounter) and forgets removed ones.
    pub fn track(&mut self, model: &Model, now: Instant) {
        let connected: Vec<_> = model
            .services
            .iter()
            .filter(|s| s.state.is_connected())
            .collect();
        self.bases
            .retain(|b| connected.iter().any(|s| s.id == b.id));
        for s in &connected {
            if !self.bases.iter().any(|b| b.id == s.id) {
                self.baseline(&s.id, &s.ifname, now);
            }
        }
        self.sent.retain(|x| {
            self.bases.iter().any(|b| b.id == x.id)
                && model
                    .counters
                    .iter()
                    .any(|c| c.owner == x.owner && c.path == x.path)
        });
        self.due
            .retain(|(o, p, _)| model.counters.iter().any(|c| c.owner == *o && c.path == *p));
        for c in &model.counters {
            if !self
                .due
                .iter()
                .any(|(o, p, _)| *o == c.owner && *p == c.path)
            {
                self.due.push((c.owner.clone(), c.path.clone(), now));
            }
        }
    }

    fn baseline(&mut self, id: &ServiceId, ifname: &crate::core::types::IfName, now: Instant) {
        let stats = sysfs::link_stats(ifname).unwrap_or_else(|e| {
            log::debug!("{ifname}: no statistics ({e}); counting from zero");
            LinkStats::default()
        });
        self.bases.retain(|b| b.id != *id);
        self.bases.push(Base {
            id: id.clone(),
            ifname: ifname.clone(),
            since: now,
            stats,
        });
    }

    /// ResetCounters: the service's usage counts from now.
    pub fn reset(&mut self, model: &Model, id: &ServiceId) {
        if let Some(s) = model.service(id).filter(|s| s.state.is_connected()) {
            self.baseline(&s.id, &s.ifname, Instant::now());
            self.sent.retain(|x| x.id != *id);
        }
    }

    /// When the next report is due, if any counter is registered.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.iter().map(|(_, _, t)| *t).min()
    }

    /// Sends the reports that are due (without a bus, the period just passes).
    pub async fn report(
        &mut self,
        conn: Option<&crate::dbus::Connection>,
        model: &Model,
        now: Instant,
    ) {
        for c in &model.counters {
            let Some(slot) = self
                .due
                .iter_mut()
                .find(|(o, p, _)| *o == c.owner && *p == c.path)
            else {
                continue;
            };
            if slot.2 > now {
                continue;
            }
            slot.2 = now + Duration::from_secs(u64::from(c.period_secs));
            let Some(conn) = conn else { continue };
            for b in &self.bases {
                let stats = match sysfs::link_stats(&b.ifname) {
                    Ok(s) => s,
                    Err(e) => {
                        log::debug!("{}: no statistics: {e}", b.ifname);
                        continue;
                    }
                };
                let secs = u32::try_from(now.duration_since(b.since).as_secs()).unwrap_or(u32::MAX);
                let usage = Usage::between(&b.stats, &stats, secs);
                let last = self
                    .sent
                    .iter_mut()
                    .find(|x| x.owner == c.owner && x.path == c.path && x.id == b.id);
                // Every period reports Time and whatever moved; with an
                // accuracy, counts go out only once bytes moved that much.
                let (usage, first) = match &last {
                    None => (usage, true),
                    Some(x) if usage.worth_reporting(&x.usage, c.accuracy_kb) => (usage, false),
                    Some(x) => (
                        Usage {
                            secs: usage.secs,
                            ..x.usage
                        },
                        false,
                    ),
                };
                let home = props::usage(&usage, last.as_ref().map(|x| &x.usage));
                signals::send_usage(conn, &c.owner, &c.path, &b.id, &home, first).await;
                match last {
                    Some(x) => x.usage = usage,
                    None => self.sent.push(Sent {
                        owner: c.owner.clone(),
                        path: c.path.clone(),
                        id: b.id.clone(),
                        usage,
                    }),
                }
            }
        }
    }
}
