//! Sans-I/O SNTP client (RFC 4330 with the checks of RFC 5905), shaped like every pathman
//! protocol machine: [`Client::poll_at`], [`Client::dispatch`], [`Client::process`],
//! [`Client::poll_event`]; no socket, no clock, no task inside.
//!
//! **Servers.** The owner gives the list in order of preference ([`Client::set_servers`],
//! SPEC §6 order); a new list starts over at once. The client sticks to the first server that
//! works and tries the next one after [`SNTP_TRIES`] unanswered requests (1 s, 2 s, 4 s) or
//! a rejected reply; when every server failed it waits ([`SNTP_LIST_RETRY_INITIAL_SECS`],
//! doubling up to 1024 s) and starts again at the top. While a later server is in use, the
//! first is tried again after [`SNTP_PREFERRED_RECHECK_SECS`].
//!
//! **Names** are resolved by the owner, not here (see [`crate::time`]): the client emits
//! [`Event::Resolve`] when it reaches a name without current addresses and waits up to
//! [`SNTP_RESOLVE_WAIT_SECS`] for [`Client::resolved`]; each address is then a server of its
//! own. Addresses are kept at least [`SNTP_MIN_RESOLVE_TTL_SECS`] (or their TTL, if longer)
//! and a name is resolved again only at the start of a new pass over the list, once that time
//! is up.
//!
//! **Every reply is checked** before it counts: it must come from the address *and* port the
//! request went to, and echo our transmit timestamp (a random 64-bit cookie, never our
//! clock) as its originate timestamp; anything else is ignored without ending the wait, so a
//! forged datagram cannot cut an exchange short. Then mode 4, version 3 or 4, stratum 0 =
//! kiss-o'-death (DENY/RSTR: that address is never asked again while the list stands; RATE:
//! its interval doubles and the next server is used), leap indicator 3 and stratum >= 16 =
//! unsynchronised, transmit and receive timestamps non-zero, the server's hold time within
//! our round trip, and root distance ((root delay + delay) / 2 + root dispersion) at most
//! [`SNTP_MAX_ROOT_DISTANCE_MS`]. A rejected reply never yields a measurement.
//!
//! **Offset and delay** use the four timestamps of RFC 4330 §5, with the local interval
//! taken from the monotonic clock: the server's time at our receive instant is
//! `(T2 + T3 + (t4 - t1)) / 2` counted from our send time, so a step of the system clock
//! between send and receive changes neither the delay nor the reported time.
//!
//! **Polling** starts fast (an exchange at once, then at 16 s and 32 s) and then adapts
//! between 64 s and 1024 s: offsets that stay within [`SNTP_POLL_STABLE_MS`] of the last
//! double the interval, a jump beyond [`SNTP_POLL_UNSTABLE_MS`] drops it to 64 s. A server's
//! poll field above the one we sent can only lengthen the interval (up to 1024 s); nothing
//! makes it shorter than 16 s.

use crate::caps::{
    SNTP_BURST_POLL_EXP, SNTP_LIST_RETRY_INITIAL_SECS, SNTP_MAX_ADDRS_PER_NAME, SNTP_MAX_EVENTS,
    SNTP_MAX_PENALTIES, SNTP_MAX_POLL_EXP, SNTP_MAX_ROOT_DISTANCE_MS, SNTP_MAX_SERVERS,
    SNTP_MIN_POLL_EXP, SNTP_MIN_RESOLVE_TTL_SECS, SNTP_POLL_STABLE_MS, SNTP_POLL_UNSTABLE_MS,
    SNTP_PREFERRED_RECHECK_SECS, SNTP_RESOLVE_WAIT_SECS, SNTP_SYNC_MAX_AGE_SECS,
    SNTP_TIMEOUT_INITIAL_MS, SNTP_TRIES,
};
use crate::core::types::{Name, Timeserver};
use crate::core::validate::check_server_addr;
use crate::dhcp::client::PollAt;
use crate::time::resolve::{Resolution, ResolveError};
use crate::time::{Rng, TimeOffset};
use crate::wire::sntp::{self, KissCode, Leap, Mode, Packet, Repr, Timestamp, HEADER_LEN};
use core::fmt;
use heapless::{Deque, Vec};
use log::{debug, warn};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

/// A timeserver as the owner lists it: an address, or a host name the owner resolves when
/// asked ([`Event::Resolve`]).
pub type ServerSpec = Timeserver;

/// A request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The server (port 123).
    pub to: SocketAddr,
    /// The NTP request.
    pub bytes: [u8; HEADER_LEN],
}

/// One valid exchange with a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// The server that answered.
    pub server: SocketAddr,
    /// Server time minus local time at `at` (positive: the local clock is behind).
    pub offset: TimeOffset,
    /// Round-trip delay, the server's hold time taken out.
    pub delay: Duration,
    /// The server's stratum (1..=15).
    pub stratum: u8,
    /// Error bound of the measurement: (root delay + delay) / 2 + root dispersion.
    pub root_distance: Duration,
    /// The server's leap indicator (never `Unsynchronized`).
    pub leap: Leap,
    /// When the reply was processed (monotonic).
    pub at: Instant,
    /// The corrected time at `at`: what the system clock should have read then.
    pub wall: SystemTime,
}

/// Why a reply was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Shorter than an NTP header.
    Malformed,
    /// The originate timestamp is not our transmit cookie (ignored; the wait goes on).
    BadOrigin,
    /// Not mode 4 (server).
    WrongMode(Mode),
    /// Version other than 3 or 4.
    BadVersion(u8),
    /// Leap indicator 3: the server is not synchronised.
    Unsynchronized,
    /// Stratum 16 or more: the server is not synchronised.
    Stratum(u8),
    /// Transmit timestamp zero.
    ZeroTransmit,
    /// Receive timestamp zero.
    ZeroReceive,
    /// The server says it sent before it received, or held the request longer than our
    /// whole round trip.
    BadTimestamps,
    /// Root distance over [`SNTP_MAX_ROOT_DISTANCE_MS`].
    RootDistance(Duration),
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Malformed => f.write_str("shorter than an NTP header"),
            Reject::BadOrigin => f.write_str("originate timestamp is not our request's"),
            Reject::WrongMode(m) => write!(f, "mode {} is not server", m.bits()),
            Reject::BadVersion(v) => write!(f, "version {v} is not 3 or 4"),
            Reject::Unsynchronized => f.write_str("leap indicator 3: server not synchronised"),
            Reject::Stratum(s) => write!(f, "stratum {s}: server not synchronised"),
            Reject::ZeroTransmit => f.write_str("transmit timestamp is zero"),
            Reject::ZeroReceive => f.write_str("receive timestamp is zero"),
            Reject::BadTimestamps => {
                f.write_str("server timestamps inconsistent with our round trip")
            }
            Reject::RootDistance(d) => write!(
                f,
                "root distance {} ms over {SNTP_MAX_ROOT_DISTANCE_MS} ms",
                d.as_millis()
            ),
        }
    }
}

/// A problem with one server, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A reply was refused.
    Rejected(Reject),
    /// A kiss-o'-death. DENY/RSTR: never asked again while this list stands; RATE: asked
    /// less often; another code: discarded like an unsynchronised reply.
    Kiss(KissCode),
    /// [`SNTP_TRIES`] requests went unanswered.
    NoReply,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Rejected(r) => write!(f, "reply rejected: {r}"),
            Problem::Kiss(KissCode::Deny | KissCode::Restrict) => {
                write!(f, "kiss-o'-death: not using this server again")
            }
            Problem::Kiss(KissCode::Rate) => write!(f, "kiss-o'-death RATE: polling it less often"),
            Problem::Kiss(k) => write!(f, "kiss-o'-death {k}: reply discarded"),
            Problem::NoReply => write!(f, "no reply to {SNTP_TRIES} requests"),
        }
    }
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A valid measurement (after every valid exchange, not only the first).
    Synced(Measurement),
    /// The last valid measurement is older than [`SNTP_SYNC_MAX_AGE_SECS`], or the list no
    /// longer holds the server it came from.
    Unsynced,
    /// Resolve this name and hand the outcome to [`Client::resolved`].
    Resolve(Name),
    /// Something wrong with one server.
    Problem {
        /// The server.
        server: SocketAddr,
        /// What.
        problem: Problem,
    },
    /// Every server of the list failed; the list is tried again after `retry_in`, or never
    /// (None: every server refused us with DENY/RSTR) until the list changes.
    ListFailed {
        /// Time to the next pass.
        retry_in: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    /// An address given as such.
    Literal,
    /// A name not (or no longer) resolved.
    Unresolved,
    /// A name with addresses, usable without asking again until then.
    Resolved { until: Instant },
    /// A name whose resolution failed in this pass.
    Failed,
}

#[derive(Debug, Clone)]
struct Entry {
    spec: Timeserver,
    addrs: Vec<IpAddr, SNTP_MAX_ADDRS_PER_NAME>,
    res: Res,
}

impl Entry {
    fn new(spec: &Timeserver) -> Entry {
        let mut addrs = Vec::new();
        let res = match spec {
            Timeserver::Addr(a) => {
                let _ = addrs.push(*a);
                Res::Literal
            }
            Timeserver::Name(_) => Res::Unresolved,
        };
        Entry {
            spec: spec.clone(),
            addrs,
            res,
        }
    }

    fn name(&self) -> Option<&Name> {
        match &self.spec {
            Timeserver::Name(n) => Some(n),
            Timeserver::Addr(_) => None,
        }
    }
}

/// What a kiss-o'-death left on one address.
#[derive(Debug, Clone, Copy)]
struct Penalty {
    addr: IpAddr,
    denied: bool,
    /// Poll exponent the address may not be polled faster than (RATE).
    rate_exp: u8,
    not_before: Option<Instant>,
}

/// An exchange in flight.
#[derive(Debug, Clone, Copy)]
struct Sent {
    to: SocketAddr,
    cookie: Timestamp,
    at: Instant,
    wall: SystemTime,
    timeout: Duration,
    /// The poll exponent the request carried.
    poll: i8,
    /// Cookies of the earlier, unanswered requests of this exchange (zero: none). A late
    /// answer to one of them is ignored quietly: only the latest request counts (RFC 5905
    /// §8), but such an answer is no server fault.
    earlier: [Timestamp; SNTP_TRIES as usize],
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No servers, or none that will answer us.
    Idle,
    /// Query the server at the cursor when due (None: now).
    Ready(Option<Instant>),
    /// Waiting for the owner to resolve the cursor's name (None: not asked yet).
    Resolving(Option<Instant>),
    /// A request is out.
    Waiting(Sent),
}

/// Position in the list: entry, address of the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Cursor {
    entry: usize,
    addr: usize,
}

enum Pick {
    Query(IpAddr),
    Resolve,
    EndOfList,
}

/// The SNTP client state machine.
#[derive(Debug)]
pub struct Client {
    rng: Rng,
    entries: Vec<Entry, SNTP_MAX_SERVERS>,
    penalties: Vec<Penalty, SNTP_MAX_PENALTIES>,
    cursor: Cursor,
    /// When the cursor left the top of the list (preferred-server recheck).
    off_top_since: Option<Instant>,
    phase: Phase,
    poll_exp: u8,
    tries: u32,
    list_retry: Duration,
    last_offset: Option<TimeOffset>,
    /// The latest valid measurement while it is recent, and the list entry it came from.
    current: Option<(Measurement, Timeserver)>,
    events: Deque<Event, SNTP_MAX_EVENTS>,
}

fn secs_exp(exp: u8) -> Duration {
    Duration::from_secs(1u64 << exp.min(SNTP_MAX_POLL_EXP))
}

impl Client {
    /// A client with no servers; `seed` (from getrandom) feeds the transmit cookies.
    pub fn new(seed: u64) -> Client {
        Client {
            rng: Rng::new(seed),
            entries: Vec::new(),
            penalties: Vec::new(),
            cursor: Cursor::default(),
            off_top_since: None,
            phase: Phase::Idle,
            poll_exp: SNTP_BURST_POLL_EXP,
            tries: 0,
            list_retry: Duration::from_secs(SNTP_LIST_RETRY_INITIAL_SECS),
            last_offset: None,
            current: None,
            events: Deque::new(),
        }
    }

    /// Replaces the server list (order = preference). The same list again changes nothing;
    /// a different one forgets every kiss-o'-death penalty and resolution and queries the
    /// first server at once. The current measurement stays valid if its server is still in
    /// the list, else [`Event::Unsynced`]. Beyond [`SNTP_MAX_SERVERS`] entries the rest is
    /// logged and ignored; duplicates are dropped.
    pub fn set_servers(&mut self, servers: &[ServerSpec]) {
        let mut list: Vec<Entry, SNTP_MAX_SERVERS> = Vec::new();
        for s in servers {
            if list.iter().any(|e| e.spec == *s) {
                continue;
            }
            if list.push(Entry::new(s)).is_err() {
                warn!("timeservers beyond the first {SNTP_MAX_SERVERS} ignored");
                break;
            }
        }
        let same = list.len() == self.entries.len()
            && list
                .iter()
                .zip(&self.entries)
                .all(|(a, b)| a.spec == b.spec);
        if same {
            return;
        }
        self.entries = list;
        self.penalties.clear();
        self.cursor = Cursor::default();
        self.off_top_since = None;
        self.tries = 0;
        self.list_retry = Duration::from_secs(SNTP_LIST_RETRY_INITIAL_SECS);
        self.poll_exp = SNTP_BURST_POLL_EXP;
        self.last_offset = None;
        let kept = self
            .current
            .as_ref()
            .is_some_and(|(_, src)| self.entries.iter().any(|e| e.spec == *src));
        if !kept && self.current.take().is_some() {
            self.push_event(Event::Unsynced);
        }
        self.phase = if self.entries.is_empty() {
            Phase::Idle
        } else {
            Phase::Ready(None)
        };
    }

    /// The latest valid measurement, while it is recent enough (what `TimeserverSynced`
    /// reports).
    pub fn synced(&self) -> Option<&Measurement> {
        self.current.as_ref().map(|(m, _)| m)
    }

    /// When to call [`Client::dispatch`] next.
    pub fn poll_at(&self) -> PollAt {
        let phase = match self.phase {
            Phase::Idle => PollAt::Idle,
            Phase::Ready(None) | Phase::Resolving(None) => PollAt::Now,
            Phase::Ready(Some(t)) | Phase::Resolving(Some(t)) => PollAt::At(t),
            Phase::Waiting(s) => PollAt::At(s.at + s.timeout),
        };
        let expiry = self.current.as_ref().map_or(PollAt::Idle, |(m, _)| {
            PollAt::At(m.at + Duration::from_secs(SNTP_SYNC_MAX_AGE_SECS))
        });
        phase.min(expiry)
    }

    /// Next pending event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, e: Event) {
        if self.events.is_full() {
            // The owner drains after every call; dropping the oldest loses only history.
            warn!("SNTP: more than {SNTP_MAX_EVENTS} events not taken; dropping the oldest");
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    fn problem(&mut self, server: SocketAddr, problem: Problem) {
        self.push_event(Event::Problem { server, problem });
    }

    fn penalty(&self, addr: IpAddr) -> Option<&Penalty> {
        self.penalties.iter().find(|p| p.addr == addr)
    }

    fn penalty_mut(&mut self, addr: IpAddr) -> Option<&mut Penalty> {
        if !self.penalties.iter().any(|p| p.addr == addr) {
            let fresh = Penalty {
                addr,
                denied: false,
                rate_exp: 0,
                not_before: None,
            };
            if self.penalties.push(fresh).is_err() {
                warn!(
                    "SNTP: penalties of more than {SNTP_MAX_PENALTIES} servers; {addr}'s not kept"
                );
                return None;
            }
        }
        self.penalties.iter_mut().find(|p| p.addr == addr)
    }

    fn denied(&self, addr: IpAddr) -> bool {
        self.penalty(addr).is_some_and(|p| p.denied)
    }

    fn usable(&self, addr: IpAddr, now: Instant) -> bool {
        match self.penalty(addr) {
            Some(p) => !p.denied && p.not_before.is_none_or(|t| t <= now),
            None => true,
        }
    }

    fn expire(&mut self, now: Instant) {
        let old = self
            .current
            .as_ref()
            .is_some_and(|(m, _)| now >= m.at + Duration::from_secs(SNTP_SYNC_MAX_AGE_SECS));
        if old {
            self.current = None;
            self.last_offset = None;
            self.poll_exp = SNTP_BURST_POLL_EXP;
            self.push_event(Event::Unsynced);
        }
    }

    /// Moves past the address at the cursor (it failed).
    fn advance(&mut self, now: Instant) {
        self.cursor.addr += 1;
        self.tries = 0;
        self.off_top_since.get_or_insert(now);
    }

    fn advance_entry(&mut self, now: Instant) {
        self.cursor = Cursor {
            entry: self.cursor.entry + 1,
            addr: 0,
        };
        self.tries = 0;
        self.off_top_since.get_or_insert(now);
    }

    fn select(&mut self, now: Instant) -> Pick {
        while let Some(e) = self.entries.get(self.cursor.entry) {
            match e.res {
                Res::Unresolved => return Pick::Resolve,
                Res::Failed => {
                    self.advance_entry(now);
                    continue;
                }
                Res::Literal | Res::Resolved { .. } => {}
            }
            match e.addrs.get(self.cursor.addr).copied() {
                None => self.advance_entry(now),
                Some(a) if self.usable(a, now) => return Pick::Query(a),
                Some(_) => self.cursor.addr += 1,
            }
        }
        Pick::EndOfList
    }

    /// Every server failed: back to the top after a pause, or stop if no server will ever
    /// answer us.
    fn end_of_list(&mut self, now: Instant) {
        self.cursor = Cursor::default();
        self.off_top_since = None;
        for e in self.entries.iter_mut() {
            match e.res {
                Res::Failed => e.res = Res::Unresolved,
                Res::Resolved { until } if now >= until => e.res = Res::Unresolved,
                _ => {}
            }
        }
        let hopeless = self
            .entries
            .iter()
            .all(|e| e.res == Res::Literal && e.addrs.iter().all(|a| self.denied(*a)));
        if hopeless {
            self.phase = Phase::Idle;
            self.push_event(Event::ListFailed { retry_in: None });
            return;
        }
        // A RATE-limited server may only come back later than the usual pause.
        let rate_wait = self
            .penalties
            .iter()
            .filter(|p| !p.denied)
            .filter_map(|p| p.not_before)
            .filter(|&t| t > now)
            .min()
            .map(|t| t - now);
        let limited = |a: &IpAddr| {
            self.penalty(*a)
                .is_some_and(|p| p.denied || p.not_before.is_some_and(|t| t > now))
        };
        let everything_limited = self.entries.iter().all(|e| {
            matches!(e.res, Res::Literal | Res::Resolved { .. }) && e.addrs.iter().all(limited)
        });
        let mut wait = self.list_retry;
        if everything_limited {
            wait = wait.max(rate_wait.unwrap_or_default());
        }
        self.list_retry = (self.list_retry * 2).min(secs_exp(SNTP_MAX_POLL_EXP));
        self.phase = Phase::Ready(Some(now + wait));
        self.push_event(Event::ListFailed {
            retry_in: Some(wait),
        });
    }

    fn request(
        &mut self,
        now: Instant,
        wall: SystemTime,
        to: SocketAddr,
        timeout: Duration,
        earlier: [Timestamp; SNTP_TRIES as usize],
    ) -> Outgoing {
        // Never zero: a zero originate is what a broken server echoes for "unknown".
        let cookie = loop {
            let c = self.rng.next_u64();
            if c != 0 {
                break Timestamp(c);
            }
        };
        let poll = self.poll_exp as i8;
        self.phase = Phase::Waiting(Sent {
            to,
            cookie,
            at: now,
            wall,
            timeout,
            poll,
            earlier,
        });
        Outgoing {
            to,
            bytes: Repr::client_request(poll, cookie).to_bytes(),
        }
    }

    /// Advances timers and returns the request to send now, if any.
    pub fn dispatch(&mut self, now: Instant, wall: SystemTime) -> Option<Outgoing> {
        self.expire(now);
        loop {
            match self.phase {
                Phase::Idle => return None,
                Phase::Ready(Some(t)) if now < t => return None,
                Phase::Ready(_) => {
                    let recheck = Duration::from_secs(SNTP_PREFERRED_RECHECK_SECS);
                    if self.off_top_since.is_some_and(|t| now >= t + recheck) {
                        debug!("SNTP: trying the first timeserver again");
                        self.cursor = Cursor::default();
                        self.off_top_since = None;
                    }
                    match self.select(now) {
                        Pick::Query(a) => {
                            self.tries = 1;
                            let to = SocketAddr::new(a, sntp::PORT);
                            let t = Duration::from_millis(SNTP_TIMEOUT_INITIAL_MS);
                            let none = [Timestamp::ZERO; SNTP_TRIES as usize];
                            return Some(self.request(now, wall, to, t, none));
                        }
                        Pick::Resolve => self.phase = Phase::Resolving(None),
                        Pick::EndOfList => self.end_of_list(now),
                    }
                }
                Phase::Resolving(None) => {
                    let name = self
                        .entries
                        .get(self.cursor.entry)
                        .and_then(|e| e.name().cloned());
                    let Some(name) = name else {
                        self.phase = Phase::Ready(None);
                        continue;
                    };
                    self.push_event(Event::Resolve(name));
                    let wait = Duration::from_secs(SNTP_RESOLVE_WAIT_SECS);
                    self.phase = Phase::Resolving(Some(now + wait));
                    return None;
                }
                Phase::Resolving(Some(t)) => {
                    if now < t {
                        return None;
                    }
                    if let Some(e) = self.entries.get_mut(self.cursor.entry) {
                        debug!("SNTP: no addresses for {} in time", e.spec);
                        e.res = Res::Failed;
                    }
                    self.advance_entry(now);
                    self.phase = Phase::Ready(None);
                }
                Phase::Waiting(s) => {
                    if now < s.at + s.timeout {
                        return None;
                    }
                    if self.tries < SNTP_TRIES {
                        self.tries += 1;
                        let mut earlier = s.earlier;
                        if let Some(slot) = earlier.iter_mut().find(|c| c.is_zero()) {
                            *slot = s.cookie;
                        }
                        return Some(self.request(now, wall, s.to, s.timeout * 2, earlier));
                    }
                    self.problem(s.to, Problem::NoReply);
                    self.advance(now);
                    self.phase = Phase::Ready(None);
                }
            }
        }
    }

    /// Takes the owner's resolution of `name` (asked for with [`Event::Resolve`]). Addresses
    /// that cannot be a server's are dropped; at most [`SNTP_MAX_ADDRS_PER_NAME`] are kept.
    /// A failure, or no usable address, skips the name for this pass over the list.
    pub fn resolved(
        &mut self,
        now: Instant,
        name: &str,
        outcome: Result<&Resolution, ResolveError>,
    ) {
        let mut hit = false;
        for e in self.entries.iter_mut() {
            if !e
                .name()
                .is_some_and(|n| n.eq_ignore_ascii_case(name.trim_end_matches('.')))
            {
                continue;
            }
            hit = true;
            e.addrs.clear();
            let mut until = now + Duration::from_secs(SNTP_MIN_RESOLVE_TTL_SECS);
            if let Ok(r) = outcome {
                until = until.max(now + r.ttl);
                for &a in &r.addrs {
                    let a = a.to_canonical();
                    if check_server_addr(a).is_err() || e.addrs.contains(&a) {
                        debug!("SNTP: {name} resolved to {a}, not used");
                        continue;
                    }
                    if e.addrs.push(a).is_err() {
                        debug!(
                            "SNTP: addresses of {name} beyond {SNTP_MAX_ADDRS_PER_NAME} ignored"
                        );
                        break;
                    }
                }
            }
            e.res = if e.addrs.is_empty() {
                Res::Failed
            } else {
                Res::Resolved { until }
            };
        }
        if !hit {
            debug!("SNTP: resolution of {name}, which is not in the list, ignored");
            return;
        }
        let waiting_for_it = matches!(self.phase, Phase::Resolving(_))
            && self
                .entries
                .get(self.cursor.entry)
                .is_some_and(|e| e.res != Res::Unresolved);
        if waiting_for_it {
            self.phase = Phase::Ready(None);
        }
    }

    /// Feeds one datagram received on the client's socket.
    pub fn process(&mut self, now: Instant, wall: SystemTime, from: SocketAddr, bytes: &[u8]) {
        let Phase::Waiting(sent) = self.phase else {
            debug!("SNTP: ignoring a datagram from {from}: no request out");
            return;
        };
        let canonical = |s: SocketAddr| (s.ip().to_canonical(), s.port());
        if canonical(from) != canonical(sent.to) {
            debug!(
                "SNTP: ignoring a datagram from {from}: the request went to {}",
                sent.to
            );
            return;
        }
        let Ok(packet) = Packet::new_checked(bytes) else {
            self.problem(sent.to, Problem::Rejected(Reject::Malformed));
            return;
        };
        let Ok(reply) = Repr::parse(&packet) else {
            return;
        };
        if reply.originate_timestamp != sent.cookie {
            if sent.earlier.contains(&reply.originate_timestamp) {
                debug!("SNTP: {from} answered an earlier request late; ignored");
                return;
            }
            self.problem(sent.to, Problem::Rejected(Reject::BadOrigin));
            return;
        }
        // The server answered this request: whatever it says, this exchange is over.
        match check(&reply, &sent, now, wall) {
            Ok(m) => self.on_measurement(now, m, reply.poll, sent.poll),
            Err(Verdict::Kiss(code)) => self.on_kiss(now, sent.to, code),
            Err(Verdict::Reject(why)) => {
                self.problem(sent.to, Problem::Rejected(why));
                self.advance(now);
                self.phase = Phase::Ready(None);
            }
        }
    }

    fn on_kiss(&mut self, now: Instant, server: SocketAddr, code: KissCode) {
        self.problem(server, Problem::Kiss(code));
        let poll_exp = self.poll_exp;
        match code {
            KissCode::Deny | KissCode::Restrict => {
                if let Some(p) = self.penalty_mut(server.ip()) {
                    p.denied = true;
                }
            }
            KissCode::Rate => {
                if let Some(p) = self.penalty_mut(server.ip()) {
                    p.rate_exp =
                        (p.rate_exp.max(poll_exp) + 1).clamp(SNTP_MIN_POLL_EXP, SNTP_MAX_POLL_EXP);
                    p.not_before = Some(now + secs_exp(p.rate_exp));
                }
            }
            KissCode::Other(_) => {}
        }
        self.advance(now);
        self.phase = Phase::Ready(None);
    }

    fn on_measurement(&mut self, now: Instant, m: Measurement, server_poll: i8, our_poll: i8) {
        self.list_retry = Duration::from_secs(SNTP_LIST_RETRY_INITIAL_SECS);
        self.tries = 0;
        if self.poll_exp < SNTP_MIN_POLL_EXP {
            // The first exchanges: 16 s, 32 s, then the steady range whatever the offsets.
            self.poll_exp += 1;
        } else if let Some(prev) = self.last_offset {
            let jump = m.offset.distance(prev);
            if jump > Duration::from_millis(SNTP_POLL_UNSTABLE_MS) {
                self.poll_exp = SNTP_MIN_POLL_EXP;
            } else if jump < Duration::from_millis(SNTP_POLL_STABLE_MS) {
                self.poll_exp = (self.poll_exp + 1).min(SNTP_MAX_POLL_EXP);
            }
        }
        if self.last_offset.is_none() {
            // First sync: the next exchange comes after the shortest wait.
            self.poll_exp = SNTP_BURST_POLL_EXP;
        }
        let mut interval = secs_exp(self.poll_exp);
        // A server may ask for a longer interval than the request said (up to the maximum),
        // never a shorter one. chronyd echoes the request's poll, which asks nothing.
        if server_poll > our_poll {
            if let Ok(p) = u8::try_from(server_poll) {
                interval = interval.max(secs_exp(p.min(SNTP_MAX_POLL_EXP)));
            }
        }
        if let Some(p) = self.penalty(m.server.ip()) {
            interval = interval.max(secs_exp(p.rate_exp));
        }
        let interval = interval.max(secs_exp(SNTP_BURST_POLL_EXP));
        self.last_offset = Some(m.offset);
        let source = self
            .entries
            .get(self.cursor.entry)
            .map(|e| e.spec.clone())
            .unwrap_or(Timeserver::Addr(m.server.ip()));
        self.current = Some((m.clone(), source));
        self.push_event(Event::Synced(m));
        self.phase = Phase::Ready(Some(now + interval));
    }
}

#[derive(Debug)]
enum Verdict {
    Kiss(KissCode),
    Reject(Reject),
}

/// The RFC 4330 §5 / RFC 5905 checks of a reply whose source and originate already match,
/// and the measurement it gives.
fn check(r: &Repr, sent: &Sent, now: Instant, wall: SystemTime) -> Result<Measurement, Verdict> {
    use Verdict::Reject as No;
    if r.mode != Mode::Server {
        return Err(No(Reject::WrongMode(r.mode)));
    }
    if !(3..=4).contains(&r.version) {
        return Err(No(Reject::BadVersion(r.version)));
    }
    if let Some(code) = r.kiss_code() {
        return Err(Verdict::Kiss(code));
    }
    if r.leap == Leap::Unsynchronized {
        return Err(No(Reject::Unsynchronized));
    }
    if r.stratum >= 16 {
        return Err(No(Reject::Stratum(r.stratum)));
    }
    if r.transmit_timestamp.is_zero() {
        return Err(No(Reject::ZeroTransmit));
    }
    if r.receive_timestamp.is_zero() {
        return Err(No(Reject::ZeroReceive));
    }
    let t1 = Timestamp::from_system_time(sent.wall);
    // T2 and T3 counted from T1, and the round trip from the monotonic clock.
    let d2 = i128::from(r.receive_timestamp.nanos_since(t1));
    let d3 = i128::from(r.transmit_timestamp.nanos_since(t1));
    let rtt =
        i128::try_from(now.saturating_duration_since(sent.at).as_nanos()).unwrap_or(i128::MAX);
    let hold = d3 - d2;
    if hold < 0 || hold > rtt {
        return Err(No(Reject::BadTimestamps));
    }
    let delay = Duration::from_nanos(u64::try_from(rtt - hold).unwrap_or(u64::MAX));
    let corrected_since_t1 =
        i64::try_from((d2 + d3 + rtt) / 2).map_err(|_| No(Reject::BadTimestamps))?;
    let corrected = TimeOffset::from_nanos(corrected_since_t1)
        .apply(sent.wall)
        .ok_or(No(Reject::BadTimestamps))?;
    let root_distance = r.root_distance() + delay / 2;
    if root_distance > Duration::from_millis(SNTP_MAX_ROOT_DISTANCE_MS) {
        return Err(No(Reject::RootDistance(root_distance)));
    }
    Ok(Measurement {
        server: sent.to,
        offset: TimeOffset::between(corrected, wall),
        delay,
        stratum: r.stratum,
        root_distance,
        leap: r.leap,
        at: now,
        wall: corrected,
    })
}

#[cfg(test)]
mod tests;
