//! Sans-I/O IPv4 link-local addressing (RFC 3927): probe, announce, defend.
//!
//! Same shape as the DHCP client: [`Ipv4Ll::process`] takes ARP packets seen on the link,
//! [`Ipv4Ll::dispatch`] returns the ARP packet to send, [`Ipv4Ll::poll_at`] the next deadline.

use crate::caps::{
    IPV4LL_ANNOUNCE_INTERVAL_MS, IPV4LL_ANNOUNCE_NUM, IPV4LL_ANNOUNCE_WAIT_MS,
    IPV4LL_DEFEND_INTERVAL_MS, IPV4LL_MAX_CONFLICTS, IPV4LL_PROBE_MAX_MS, IPV4LL_PROBE_MIN_MS,
    IPV4LL_PROBE_NUM, IPV4LL_PROBE_WAIT_MS, IPV4LL_RATE_LIMIT_INTERVAL_MS,
};
use crate::dhcp::client::{IfName, PollAt};
use crate::dhcp::{seed_from_mac, Prng};
use crate::wire::arp::{Operation, Repr};
use log::debug;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// What the IPv4LL machine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Probing found no one: the address may be configured.
    Claimed(Ipv4Addr),
    /// A conflict could not be defended: remove the address.
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting the initial random delay (or the rate limit) before the first probe.
    Waiting,
    Probing {
        sent: u32,
    },
    Announcing {
        sent: u32,
    },
    Claimed,
}

/// The RFC 3927 state machine for one interface.
#[derive(Debug)]
pub struct Ipv4Ll {
    ifname: IfName,
    mac: [u8; 6],
    rng: Prng,
    candidate: Ipv4Addr,
    phase: Phase,
    next: PollAt,
    conflicts: u32,
    last_defend: Option<Instant>,
    defend_pending: bool,
    event: Option<Event>,
}

fn pick(rng: &mut Prng) -> Ipv4Addr {
    let r = rng.next_u32();
    // RFC 3927 §2.1: 169.254.1.0 – 169.254.254.255.
    Ipv4Addr::new(169, 254, 1 + (r % 254) as u8, (r >> 8) as u8)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Ipv4Ll {
    /// A machine for `ifname`; the first candidate is derived from `mac`, so a board asks for
    /// the same address after every boot.
    pub fn new(ifname: IfName, mac: [u8; 6]) -> Self {
        let mut rng = Prng::new(seed_from_mac(mac));
        let candidate = pick(&mut rng);
        Ipv4Ll {
            ifname,
            mac,
            rng,
            candidate,
            phase: Phase::Waiting,
            next: PollAt::Now,
            conflicts: 0,
            last_defend: None,
            defend_pending: false,
            event: None,
        }
    }

    /// The claimed address, once probing succeeded.
    pub fn claimed(&self) -> Option<Ipv4Addr> {
        match self.phase {
            Phase::Announcing { .. } | Phase::Claimed => Some(self.candidate),
            _ => None,
        }
    }

    /// When to call [`Ipv4Ll::dispatch`] next.
    pub fn poll_at(&self) -> PollAt {
        self.next
    }

    /// Next pending event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    fn random_ms(&mut self, lo: u64, hi: u64) -> Duration {
        ms(lo + u64::from(self.rng.below((hi - lo) as u32 + 1)))
    }

    fn restart(&mut self, now: Instant) {
        self.conflicts = self.conflicts.saturating_add(1);
        self.candidate = pick(&mut self.rng);
        self.phase = Phase::Waiting;
        self.defend_pending = false;
        self.last_defend = None;
        let wait = if self.conflicts >= IPV4LL_MAX_CONFLICTS {
            ms(IPV4LL_RATE_LIMIT_INTERVAL_MS)
        } else {
            self.random_ms(0, IPV4LL_PROBE_WAIT_MS)
        };
        self.next = PollAt::At(now + wait);
    }

    /// Returns the ARP packet to send now, if any.
    pub fn dispatch(&mut self, now: Instant) -> Option<Repr> {
        let due = match self.next {
            PollAt::Now => true,
            PollAt::At(t) => now >= t,
            PollAt::Idle => false,
        };
        if !due {
            return None;
        }
        match self.phase {
            Phase::Waiting if self.next == PollAt::Now => {
                self.next = PollAt::At(now + self.random_ms(0, IPV4LL_PROBE_WAIT_MS));
                None
            }
            Phase::Waiting => {
                self.phase = Phase::Probing { sent: 0 };
                self.dispatch_probe(now)
            }
            Phase::Probing { .. } => self.dispatch_probe(now),
            Phase::Announcing { sent } => {
                let sent = sent + 1;
                if sent < IPV4LL_ANNOUNCE_NUM {
                    self.phase = Phase::Announcing { sent };
                    self.next = PollAt::At(now + ms(IPV4LL_ANNOUNCE_INTERVAL_MS));
                } else {
                    self.phase = Phase::Claimed;
                    self.next = PollAt::Idle;
                }
                Some(Repr::announce(self.mac, self.candidate))
            }
            Phase::Claimed => {
                self.next = PollAt::Idle;
                if !self.defend_pending {
                    return None;
                }
                self.defend_pending = false;
                Some(Repr::announce(self.mac, self.candidate))
            }
        }
    }

    fn dispatch_probe(&mut self, now: Instant) -> Option<Repr> {
        let Phase::Probing { sent } = self.phase else {
            return None;
        };
        if sent >= IPV4LL_PROBE_NUM {
            debug!("{}: link-local {} claimed", self.ifname, self.candidate);
            self.phase = Phase::Announcing { sent: 0 };
            self.conflicts = 0;
            self.event = Some(Event::Claimed(self.candidate));
            self.next = PollAt::Now;
            return self.dispatch(now);
        }
        self.phase = Phase::Probing { sent: sent + 1 };
        let wait = if sent + 1 < IPV4LL_PROBE_NUM {
            self.random_ms(IPV4LL_PROBE_MIN_MS, IPV4LL_PROBE_MAX_MS)
        } else {
            ms(IPV4LL_ANNOUNCE_WAIT_MS)
        };
        self.next = PollAt::At(now + wait);
        Some(Repr::probe(self.mac, self.candidate))
    }

    /// Feeds one ARP packet seen on the link.
    pub fn process(&mut self, now: Instant, arp: &Repr) {
        if arp.sender_hw == self.mac {
            return;
        }
        let c = self.candidate;
        match self.phase {
            Phase::Waiting | Phase::Probing { .. } => {
                let probe_for_ours = arp.operation == Operation::Request
                    && arp.sender_ip.is_unspecified()
                    && arp.target_ip == c;
                if arp.sender_ip == c || probe_for_ours {
                    debug!("{}: link-local {c} in use, picking another", self.ifname);
                    self.restart(now);
                }
            }
            Phase::Announcing { .. } | Phase::Claimed => {
                if arp.sender_ip != c {
                    return;
                }
                let recent = self.last_defend.is_some_and(|t| {
                    now.saturating_duration_since(t) < ms(IPV4LL_DEFEND_INTERVAL_MS)
                });
                if recent {
                    debug!("{}: link-local {c} lost to another host", self.ifname);
                    self.event = Some(Event::Lost);
                    self.restart(now);
                } else {
                    debug!("{}: defending link-local {c}", self.ifname);
                    self.last_defend = Some(now);
                    if self.phase == Phase::Claimed {
                        self.defend_pending = true;
                        self.next = PollAt::Now;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::ifname;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 0x22];

    fn at(ll: &Ipv4Ll) -> Instant {
        match ll.poll_at() {
            PollAt::At(t) => t,
            p => panic!("unexpected {p:?}"),
        }
    }

    fn claim(ll: &mut Ipv4Ll, t0: Instant) -> Instant {
        assert!(ll.dispatch(t0).is_none());
        let mut now = at(ll);
        assert!(now - t0 <= ms(IPV4LL_PROBE_WAIT_MS));
        for i in 0..IPV4LL_PROBE_NUM {
            let p = ll.dispatch(now).unwrap();
            assert_eq!(p, Repr::probe(MAC, ll.candidate));
            let next = at(ll);
            let d = next - now;
            if i + 1 < IPV4LL_PROBE_NUM {
                assert!(d >= ms(IPV4LL_PROBE_MIN_MS) && d <= ms(IPV4LL_PROBE_MAX_MS));
            } else {
                assert_eq!(d, ms(IPV4LL_ANNOUNCE_WAIT_MS));
            }
            now = next;
        }
        now
    }

    #[test]
    fn candidate_in_range_and_stable() {
        let a = Ipv4Ll::new(ifname("eth0"), MAC).candidate;
        assert_eq!(a, Ipv4Ll::new(ifname("eth0"), MAC).candidate);
        let mut rng = Prng::new(1);
        for _ in 0..10_000 {
            let o = pick(&mut rng).octets();
            assert!(o[0] == 169 && o[1] == 254 && (1..=254).contains(&o[2]));
        }
    }

    #[test]
    fn probe_announce_claim() {
        let t0 = Instant::now();
        let mut ll = Ipv4Ll::new(ifname("eth0"), MAC);
        let now = claim(&mut ll, t0);
        let a = ll.dispatch(now).unwrap();
        assert_eq!(a, Repr::announce(MAC, ll.candidate));
        assert_eq!(ll.poll_event(), Some(Event::Claimed(ll.candidate)));
        let now = at(&ll);
        assert_eq!(ll.dispatch(now).unwrap(), a);
        assert_eq!(ll.poll_at(), PollAt::Idle);
        assert_eq!(ll.claimed(), Some(ll.candidate));
    }

    #[test]
    fn conflict_while_probing_picks_new_address() {
        let t0 = Instant::now();
        let mut ll = Ipv4Ll::new(ifname("eth0"), MAC);
        ll.dispatch(t0);
        let first = ll.candidate;
        // Our own packets reflected back are not conflicts.
        ll.process(t0, &Repr::probe(MAC, first));
        assert_eq!(ll.candidate, first);
        ll.process(t0, &Repr::probe(OTHER, first));
        assert_ne!(ll.candidate, first);
        let second = ll.candidate;
        ll.process(t0, &Repr::announce(OTHER, second));
        assert_ne!(ll.candidate, second);
    }

    #[test]
    fn rate_limited_after_max_conflicts() {
        let t0 = Instant::now();
        let mut ll = Ipv4Ll::new(ifname("eth0"), MAC);
        for _ in 0..IPV4LL_MAX_CONFLICTS {
            let c = ll.candidate;
            ll.process(t0, &Repr::announce(OTHER, c));
        }
        assert_eq!(at(&ll), t0 + ms(IPV4LL_RATE_LIMIT_INTERVAL_MS));
    }

    #[test]
    fn defend_once_then_lose() {
        let t0 = Instant::now();
        let mut ll = Ipv4Ll::new(ifname("eth0"), MAC);
        let now = claim(&mut ll, t0);
        ll.dispatch(now);
        let now = at(&ll);
        ll.dispatch(now);
        ll.poll_event();
        let addr = ll.candidate;
        ll.process(now, &Repr::announce(OTHER, addr));
        assert_eq!(ll.poll_at(), PollAt::Now);
        assert_eq!(ll.dispatch(now).unwrap(), Repr::announce(MAC, addr));
        assert!(ll.poll_event().is_none());
        ll.process(now + ms(5000), &Repr::announce(OTHER, addr));
        assert_eq!(ll.poll_event(), Some(Event::Lost));
        assert_ne!(ll.candidate, addr);
        assert_eq!(ll.claimed(), None);
    }
}
