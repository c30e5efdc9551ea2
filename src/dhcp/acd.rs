//! Sans-I/O address conflict detection for a DHCP address (RFC 2131 §4.4.1, RFC 5227
//! §2.1): a few ARP probes for the address and a short window in which any host that holds
//! it, or probes for it too, makes it a conflict.
//!
//! Same shape as the other machines: [`Probe::dispatch`] returns the probe to send,
//! [`Probe::process`] takes ARP seen on the link, [`Probe::poll_at`] the next deadline, and
//! [`Probe::outcome`] says whether the address is free yet. The timers are caps
//! ([`ACD_PROBE_NUM`], [`ACD_PROBE_INTERVAL_MS`], [`ACD_PROBE_WINDOW_MS`]); why they are so
//! much shorter than RFC 5227's is written there.

use crate::caps::{ACD_PROBE_INTERVAL_MS, ACD_PROBE_NUM, ACD_PROBE_WINDOW_MS};
use crate::dhcp::client::PollAt;
use crate::wire::arp::{Operation, Repr};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Whether the DHCP client probes an address before using it (main.conf
/// `AddressConflictDetection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictDetection {
    /// Probe with ARP and DECLINE a taken address (the default).
    On,
    /// Use every acknowledged address at once.
    Off,
}

/// Where a probe stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Probes still going out or the window still open.
    Probing,
    /// Every probe went out and the window passed in silence.
    Free,
    /// Another host holds or wants the address; its hardware address.
    Conflict([u8; 6]),
}

/// Conflict detection for one address.
#[derive(Debug, Clone)]
pub struct Probe {
    mac: [u8; 6],
    addr: Ipv4Addr,
    sent: u32,
    first: Option<Instant>,
    next: PollAt,
    conflict: Option<[u8; 6]>,
}

impl Probe {
    /// Starts probing `addr` for the host with hardware address `mac`; the first probe is
    /// due at once.
    pub fn new(mac: [u8; 6], addr: Ipv4Addr) -> Self {
        Probe {
            mac,
            addr,
            sent: 0,
            first: None,
            next: PollAt::Now,
            conflict: None,
        }
    }

    /// The address probed.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// When to call [`Probe::dispatch`] next (the next probe, or the end of the window).
    pub fn poll_at(&self) -> PollAt {
        self.next
    }

    fn window_end(&self) -> Option<Instant> {
        self.first
            .map(|t| t + Duration::from_millis(ACD_PROBE_WINDOW_MS))
    }

    /// Where the probe stands at `now`.
    pub fn outcome(&self, now: Instant) -> Outcome {
        if let Some(mac) = self.conflict {
            return Outcome::Conflict(mac);
        }
        match self.window_end() {
            Some(end) if self.sent >= ACD_PROBE_NUM && now >= end => Outcome::Free,
            _ => Outcome::Probing,
        }
    }

    /// The probe to send now, if one is due.
    pub fn dispatch(&mut self, now: Instant) -> Option<Repr> {
        let due = match self.next {
            PollAt::Now => true,
            PollAt::At(t) => now >= t,
            PollAt::Idle => false,
        };
        if !due || self.conflict.is_some() {
            return None;
        }
        if self.sent >= ACD_PROBE_NUM {
            // Only the window's end was due: nothing to send, nothing more to wait for.
            self.next = PollAt::Idle;
            return None;
        }
        let first = *self.first.get_or_insert(now);
        self.sent += 1;
        self.next = if self.sent < ACD_PROBE_NUM {
            PollAt::At(now + Duration::from_millis(ACD_PROBE_INTERVAL_MS))
        } else {
            PollAt::At((first + Duration::from_millis(ACD_PROBE_WINDOW_MS)).max(now))
        };
        Some(Repr::probe(self.mac, self.addr))
    }

    /// Feeds one ARP packet seen on the link; true when it reveals a conflict (RFC 5227
    /// §2.1.1: any ARP whose sender is the address, or another host's probe for it).
    pub fn process(&mut self, arp: &Repr) -> bool {
        if arp.sender_hw == self.mac || self.conflict.is_some() {
            return false;
        }
        let holds = arp.sender_ip == self.addr;
        let probes = arp.operation == Operation::Request
            && arp.sender_ip.is_unspecified()
            && arp.target_ip == self.addr;
        if holds || probes {
            self.conflict = Some(arp.sender_hw);
            self.next = PollAt::Idle;
        }
        self.conflict.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn reply(sender_hw: [u8; 6], sender_ip: Ipv4Addr) -> Repr {
        Repr {
            operation: Operation::Reply,
            sender_hw,
            sender_ip,
            target_hw: MAC,
            target_ip: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// Drives the probe like the driver does until it has nothing more to do.
    fn run(p: &mut Probe, t0: Instant) -> Vec<(Duration, Repr)> {
        let mut sent = Vec::new();
        let mut now = t0;
        loop {
            match p.poll_at() {
                PollAt::Now => {}
                PollAt::At(t) => now = now.max(t),
                PollAt::Idle => return sent,
            }
            if let Some(r) = p.dispatch(now) {
                sent.push((now - t0, r));
            }
        }
    }

    #[test]
    fn probes_then_free_after_the_window() {
        let t0 = Instant::now();
        let mut p = Probe::new(MAC, ADDR);
        assert_eq!(p.outcome(t0), Outcome::Probing);
        let sent = run(&mut p, t0);
        assert_eq!(sent.len(), ACD_PROBE_NUM as usize);
        for (i, (at, r)) in sent.iter().enumerate() {
            assert_eq!(*at, ms(ACD_PROBE_INTERVAL_MS * i as u64));
            assert_eq!(*r, Repr::probe(MAC, ADDR));
            assert!(r.sender_ip.is_unspecified());
        }
        assert_eq!(
            p.outcome(t0 + ms(ACD_PROBE_WINDOW_MS - 1)),
            Outcome::Probing
        );
        assert_eq!(p.outcome(t0 + ms(ACD_PROBE_WINDOW_MS)), Outcome::Free);
        assert_eq!(p.poll_at(), PollAt::Idle);
    }

    #[test]
    fn a_reply_is_a_conflict() {
        let t0 = Instant::now();
        let mut p = Probe::new(MAC, ADDR);
        p.dispatch(t0).unwrap();
        assert!(p.process(&reply(OTHER, ADDR)));
        assert_eq!(p.outcome(t0 + ms(1000)), Outcome::Conflict(OTHER));
        assert_eq!(p.poll_at(), PollAt::Idle);
        assert!(p.dispatch(t0 + ms(1000)).is_none());
    }

    #[test]
    fn another_probe_or_announcement_is_a_conflict() {
        let t0 = Instant::now();
        let mut p = Probe::new(MAC, ADDR);
        p.dispatch(t0);
        assert!(p.process(&Repr::probe(OTHER, ADDR)));
        let mut p = Probe::new(MAC, ADDR);
        p.dispatch(t0);
        assert!(p.process(&Repr::announce(OTHER, ADDR)));
    }

    #[test]
    fn unrelated_and_own_arp_are_not() {
        let t0 = Instant::now();
        let mut p = Probe::new(MAC, ADDR);
        p.dispatch(t0);
        // Our own probe looped back, someone asking for the address, another address.
        assert!(!p.process(&Repr::probe(MAC, ADDR)));
        assert!(!p.process(&Repr::announce(MAC, ADDR)));
        let mut ask = Repr::probe(OTHER, ADDR);
        ask.sender_ip = Ipv4Addr::new(10, 0, 0, 9);
        assert!(!p.process(&ask));
        assert!(!p.process(&reply(OTHER, Ipv4Addr::new(10, 0, 0, 51))));
        assert!(!p.process(&Repr::probe(OTHER, Ipv4Addr::new(10, 0, 0, 51))));
        run(&mut p, t0);
        assert_eq!(p.outcome(t0 + ms(ACD_PROBE_WINDOW_MS)), Outcome::Free);
    }

    #[test]
    fn a_late_first_dispatch_moves_the_window() {
        // The window counts from the first probe actually sent, not from creation.
        let t0 = Instant::now();
        let mut p = Probe::new(MAC, ADDR);
        let t1 = t0 + ms(500);
        run(&mut p, t1);
        assert_eq!(
            p.outcome(t1 + ms(ACD_PROBE_WINDOW_MS - 1)),
            Outcome::Probing
        );
        assert_eq!(p.outcome(t1 + ms(ACD_PROBE_WINDOW_MS)), Outcome::Free);
    }
}
