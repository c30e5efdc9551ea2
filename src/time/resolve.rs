//! A sans-I/O stub resolver: one host name to its addresses, through a given list of DNS
//! servers (the service's), with resends, timeouts and the next server.
//!
//! One [`Resolver`] resolves one name once and then stays done; its owner drives it like
//! every machine (`poll_at` / `dispatch` / `process` / `poll_event`) over one UDP socket (an
//! ephemeral source port: with the random 16-bit ids that is what an off-path spoofer has to
//! guess) and drops it after the one event. It asks A and/or AAAA of the first server, resends
//! after [`DNS_TIMEOUT_INITIAL_MS`] (doubled), moves to the next server after
//! [`DNS_TRIES_PER_SERVER`] silent tries or an error answer, and goes through the list
//! [`DNS_ROUNDS`] times. Answers count only from a listed server's port 53, with the id of a
//! query in flight and exactly our question; anything else is ignored, so a stray or forged
//! datagram cannot end the resolution.

use crate::caps::{
    DNS_MAX_ADDRS, DNS_ROUNDS, DNS_TIMEOUT_INITIAL_MS, DNS_TRIES_PER_SERVER, MAX_SERVERS,
};
use crate::dhcp::client::PollAt;
use crate::time::Rng;
use crate::wire::dns::{self, Answer, Name, Packet, Query, Rcode, Response, Type};
use core::fmt;
use heapless::Vec;
use log::{debug, warn};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

/// Which address families to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    /// A records only.
    V4,
    /// AAAA records only.
    V6,
    /// Both, asked at once; the addresses come interleaved (IPv4 first), so a family that
    /// does not work costs one failed address before the other is tried.
    Both,
}

/// A resolved name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The addresses, at most [`DNS_MAX_ADDRS`], in the order described at [`Families`].
    pub addrs: Vec<IpAddr, DNS_MAX_ADDRS>,
    /// How long they may be used: the smallest TTL of the records that gave them.
    pub ttl: Duration,
}

/// Why a name could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveError {
    /// The list of DNS servers is empty.
    NoServers,
    /// The name is not a valid DNS name.
    BadName(dns::Error),
    /// A server says the name does not exist.
    NxDomain,
    /// The name exists but has no address of the asked families.
    NoAddresses,
    /// Every server answered with an error (the last one's code).
    ServerError(Rcode),
    /// No server answered in time.
    Timeout,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NoServers => f.write_str("no DNS servers"),
            ResolveError::BadName(e) => write!(f, "bad name: {e}"),
            ResolveError::NxDomain => f.write_str("no such name (NXDOMAIN)"),
            ResolveError::NoAddresses => f.write_str("no addresses for the name"),
            ResolveError::ServerError(r) => write!(f, "DNS servers answered {r:?}"),
            ResolveError::Timeout => f.write_str("no DNS server answered"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// What the resolver reports, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The name's addresses.
    Resolved(Resolution),
    /// The name could not be resolved.
    Failed(ResolveError),
}

/// A query to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The DNS server (port 53).
    pub to: SocketAddr,
    len: usize,
    buf: [u8; dns::MAX_QUERY_LEN],
}

impl Outgoing {
    /// The datagram.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Where one query stands on the current server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryState {
    /// To be sent (again).
    Unsent,
    /// Sent, no answer yet.
    Sent,
    /// Answered with addresses.
    Addrs,
    /// Answered: the name has no such record.
    NoData,
    /// Answered: no such name.
    NxDomain,
    /// Answered with an error code, or truncated (we do not fall back to TCP).
    Error(Rcode),
}

impl QueryState {
    fn settled(self) -> bool {
        !matches!(self, QueryState::Unsent | QueryState::Sent)
    }
}

#[derive(Debug, Clone)]
struct Pending {
    qtype: Type,
    id: u16,
    state: QueryState,
    answers: Vec<Answer, DNS_MAX_ADDRS>,
}

/// The stub resolver for one name.
#[derive(Debug, Clone)]
pub struct Resolver {
    name: Name,
    servers: Vec<IpAddr, MAX_SERVERS>,
    queries: Vec<Pending, 2>,
    /// Index of the server being asked.
    server: usize,
    /// Tries on that server so far (the current one included once sent).
    tries: u32,
    /// Passes over the list completed.
    rounds: u32,
    /// End of the current try; None until its first query goes out.
    deadline: Option<Instant>,
    last_error: Option<Rcode>,
    done: bool,
    event: Option<Event>,
}

impl Resolver {
    /// A resolver for `name` over `servers` (the first [`MAX_SERVERS`]; more are logged and
    /// ignored), asking for `families`. `seed` feeds the query ids. An empty server list or a
    /// bad name gives a resolver that is done at once with [`Event::Failed`].
    pub fn new(name: &str, servers: &[IpAddr], families: Families, seed: u64) -> Resolver {
        let mut rng = Rng::new(seed);
        let mut list = Vec::new();
        for s in servers {
            if list.contains(s) {
                continue;
            }
            if list.push(*s).is_err() {
                warn!("resolving {name}: DNS servers beyond {MAX_SERVERS} ignored");
                break;
            }
        }
        let qtypes: &[Type] = match families {
            Families::V4 => &[Type::A],
            Families::V6 => &[Type::Aaaa],
            Families::Both => &[Type::A, Type::Aaaa],
        };
        let first = rng.next_u64() as u16;
        let mut queries = Vec::new();
        for (i, &qtype) in qtypes.iter().enumerate() {
            // Distinct ids, so each answer finds its query.
            let _ = queries.push(Pending {
                qtype,
                id: first.wrapping_add(i as u16),
                state: QueryState::Unsent,
                answers: Vec::new(),
            });
        }
        let parsed = Name::from_dotted(name);
        let mut r = Resolver {
            // A bad name ends the resolver at once; the root stands in for it.
            name: parsed.clone().unwrap_or_else(|_| Name::root()),
            servers: list,
            queries,
            server: 0,
            tries: 0,
            rounds: 0,
            deadline: None,
            last_error: None,
            done: false,
            event: None,
        };
        if let Err(e) = parsed {
            r.finish(Event::Failed(ResolveError::BadName(e)));
        } else if r.servers.is_empty() {
            r.finish(Event::Failed(ResolveError::NoServers));
        }
        r
    }

    /// The name being resolved.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// True once the event is out (or waiting to be taken).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// When to call [`Resolver::dispatch`] next.
    pub fn poll_at(&self) -> PollAt {
        if self.done {
            return PollAt::Idle;
        }
        let unsent = self.queries.iter().any(|q| q.state == QueryState::Unsent);
        match self.deadline {
            _ if unsent => PollAt::Now,
            None => PollAt::Now,
            Some(t) => PollAt::At(t),
        }
    }

    /// The result, once.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    fn finish(&mut self, e: Event) {
        self.done = true;
        self.deadline = None;
        self.event = Some(e);
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(DNS_TIMEOUT_INITIAL_MS << self.tries.saturating_sub(1).min(8))
    }

    /// Advances timers and returns the next query to send, if any. Call again while
    /// [`Resolver::poll_at`] says `Now` (A and AAAA go out as two datagrams).
    pub fn dispatch(&mut self, now: Instant, _wall: SystemTime) -> Option<Outgoing> {
        loop {
            if self.done {
                return None;
            }
            if let Some(q) = self
                .queries
                .iter_mut()
                .find(|q| q.state == QueryState::Unsent)
            {
                q.state = QueryState::Sent;
                let query = Query {
                    id: q.id,
                    name: self.name.clone(),
                    qtype: q.qtype,
                };
                if self.deadline.is_none() {
                    self.tries += 1;
                    self.deadline = Some(now + self.timeout());
                }
                let mut buf = [0u8; dns::MAX_QUERY_LEN];
                let len = query.emit(&mut Packet::new_unchecked(&mut buf[..])).ok()?;
                let to = SocketAddr::new(self.servers[self.server], dns::PORT);
                return Some(Outgoing { to, len, buf });
            }
            match self.deadline {
                Some(t) if now < t => return None,
                None => return None,
                Some(_) => self.on_timeout(),
            }
        }
    }

    fn on_timeout(&mut self) {
        debug!(
            "resolving {}: no answer from {} (try {})",
            self.name, self.servers[self.server], self.tries
        );
        if self.found().is_some() {
            // One family answered, the other is silent: do not hold up what works.
            self.finish_found();
            return;
        }
        self.deadline = None;
        if self.tries < DNS_TRIES_PER_SERVER {
            for q in self.queries.iter_mut().filter(|q| !q.state.settled()) {
                q.state = QueryState::Unsent;
            }
        } else {
            self.next_server();
        }
    }

    fn next_server(&mut self) {
        self.deadline = None;
        self.tries = 0;
        for q in self.queries.iter_mut() {
            q.state = QueryState::Unsent;
            q.answers.clear();
        }
        self.server += 1;
        if self.server >= self.servers.len() {
            self.server = 0;
            self.rounds += 1;
            if self.rounds >= DNS_ROUNDS {
                let why = self
                    .last_error
                    .map_or(ResolveError::Timeout, ResolveError::ServerError);
                self.finish(Event::Failed(why));
            }
        }
    }

    fn found(&self) -> Option<Resolution> {
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        let longest = self.queries.iter().map(|q| q.answers.len()).max()?;
        for i in 0..longest {
            for q in &self.queries {
                if let Some(a) = q.answers.get(i) {
                    if addrs.push(a.addr).is_ok() {
                        ttl = ttl.min(a.ttl);
                    }
                }
            }
        }
        (!addrs.is_empty()).then(|| Resolution {
            addrs,
            ttl: Duration::from_secs(u64::from(ttl)),
        })
    }

    fn finish_found(&mut self) {
        if let Some(r) = self.found() {
            self.finish(Event::Resolved(r));
        }
    }

    /// Feeds one datagram received on the resolver's socket.
    pub fn process(&mut self, _now: Instant, _wall: SystemTime, from: SocketAddr, bytes: &[u8]) {
        if self.done {
            return;
        }
        let ip = from.ip().to_canonical();
        if from.port() != dns::PORT || !self.servers.contains(&ip) {
            debug!("resolving {}: ignoring a datagram from {from}", self.name);
            return;
        }
        let Ok(packet) = Packet::new_checked(bytes) else {
            return;
        };
        let id = packet.id();
        let Some(q) = self
            .queries
            .iter_mut()
            .find(|q| q.id == id && q.state == QueryState::Sent)
        else {
            debug!("resolving {}: ignoring DNS answer with id {id}", self.name);
            return;
        };
        let r = match Response::parse(&packet, &self.name, q.qtype) {
            Ok(r) => r,
            Err(e) => {
                debug!("resolving {}: ignoring answer from {from}: {e}", self.name);
                return;
            }
        };
        q.state = match r.rcode {
            _ if r.truncated => QueryState::Error(r.rcode),
            Rcode::NoError if r.answers.is_empty() => QueryState::NoData,
            Rcode::NoError => {
                q.answers = r.answers;
                QueryState::Addrs
            }
            Rcode::NxDomain => QueryState::NxDomain,
            other => QueryState::Error(other),
        };
        if let QueryState::Error(rc) = q.state {
            debug!("resolving {}: {from} answered {rc:?}", self.name);
            self.last_error = Some(rc);
        }
        self.settle();
    }

    /// Decides once every query has its answer from the current server.
    fn settle(&mut self) {
        if !self.queries.iter().all(|q| q.state.settled()) {
            return;
        }
        if self.found().is_some() {
            self.finish_found();
        } else if self.queries.iter().any(|q| q.state == QueryState::NxDomain) {
            self.finish(Event::Failed(ResolveError::NxDomain));
        } else if self.queries.iter().all(|q| q.state == QueryState::NoData) {
            self.finish(Event::Failed(ResolveError::NoAddresses));
        } else {
            self.next_server();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dns::tests::{
        hex, DNSMASQ_CNAME_A, DNSMASQ_CNAME_AAAA, DNSMASQ_NXDOMAIN, DNSMASQ_REFUSED,
    };
    use std::time::UNIX_EPOCH;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const S1: &str = "198.18.1.1";
    const S2: &str = "198.18.2.1";

    /// Drives the resolver as the driver does: dispatch everything due, collect what it sent.
    fn pump(r: &mut Resolver, now: Instant) -> std::vec::Vec<Outgoing> {
        let mut out = vec![];
        while r.poll_at() == PollAt::Now || matches!(r.poll_at(), PollAt::At(t) if t <= now) {
            match r.dispatch(now, UNIX_EPOCH) {
                Some(o) => out.push(o),
                None => break,
            }
        }
        out
    }

    /// A captured dnsmasq answer with its id rewritten to the query's.
    fn answer(capture: &str, q: &Outgoing) -> std::vec::Vec<u8> {
        let mut b = hex(capture);
        b[..2].copy_from_slice(&q.bytes()[..2]);
        b
    }

    fn qtype(o: &Outgoing) -> Type {
        Query::parse(&Packet::new_checked(o.bytes()).unwrap())
            .unwrap()
            .qtype
    }

    fn from(s: &str) -> SocketAddr {
        SocketAddr::new(ip(s), 53)
    }

    #[test]
    fn resolves_both_families_through_a_cname_chain() {
        let t0 = Instant::now();
        let mut r = Resolver::new("ntp.lab.test", &[ip(S1)], Families::Both, 1);
        let out = pump(&mut r, t0);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| o.to == from(S1)));
        let ids: std::vec::Vec<_> = out.iter().map(|o| &o.bytes()[..2]).collect();
        assert_ne!(ids[0], ids[1]);
        for o in &out {
            let cap = if qtype(o) == Type::A {
                DNSMASQ_CNAME_A
            } else {
                DNSMASQ_CNAME_AAAA
            };
            assert_eq!(r.poll_event(), None);
            r.process(t0, UNIX_EPOCH, from(S1), &answer(cap, o));
        }
        let Some(Event::Resolved(res)) = r.poll_event() else {
            panic!()
        };
        assert_eq!(&res.addrs[..], &[ip("198.19.0.7"), ip("fd19::7")]);
        assert_eq!(res.ttl, Duration::from_secs(120));
        assert_eq!(r.poll_at(), PollAt::Idle);
        assert!(r.is_done());
    }

    #[test]
    fn ignores_wrong_source_port_id_and_question() {
        let t0 = Instant::now();
        let mut r = Resolver::new("ntp.lab.test", &[ip(S1)], Families::V4, 2);
        let o = pump(&mut r, t0).pop().unwrap();
        let good = answer(DNSMASQ_CNAME_A, &o);
        r.process(t0, UNIX_EPOCH, from(S2), &good);
        r.process(t0, UNIX_EPOCH, SocketAddr::new(ip(S1), 5353), &good);
        let mut wrong_id = good.clone();
        wrong_id[1] ^= 1;
        r.process(t0, UNIX_EPOCH, from(S1), &wrong_id);
        // Right id, but the AAAA question.
        r.process(t0, UNIX_EPOCH, from(S1), &answer(DNSMASQ_CNAME_AAAA, &o));
        r.process(t0, UNIX_EPOCH, from(S1), &good[..20]);
        assert_eq!(r.poll_event(), None);
        // An IPv4-mapped source is the same server.
        r.process(
            t0,
            UNIX_EPOCH,
            "[::ffff:198.18.1.1]:53".parse().unwrap(),
            &good,
        );
        assert!(matches!(r.poll_event(), Some(Event::Resolved(_))));
    }

    #[test]
    fn resends_then_next_server_then_gives_up() {
        let t0 = Instant::now();
        let mut r = Resolver::new("ntp.lab.test", &[ip(S1), ip(S2)], Families::V4, 3);
        let mut sent = vec![];
        let mut t = t0;
        for _ in 0..20 {
            for o in pump(&mut r, t) {
                sent.push((t - t0, o.to));
            }
            match r.poll_at() {
                PollAt::At(x) => t = x,
                _ => break,
            }
        }
        let s = |ms: u64, a: &str| (Duration::from_millis(ms), from(a));
        assert_eq!(
            sent,
            vec![
                s(0, S1),
                s(1000, S1),
                s(3000, S2),
                s(4000, S2),
                s(6000, S1),
                s(7000, S1),
                s(9000, S2),
                s(10000, S2),
            ]
        );
        assert_eq!(r.poll_event(), Some(Event::Failed(ResolveError::Timeout)));
        assert_eq!(r.poll_at(), PollAt::Idle);
    }

    #[test]
    fn error_answer_moves_on_at_once_nxdomain_ends() {
        let t0 = Instant::now();
        let mut r = Resolver::new("up1.lab.test", &[ip(S1), ip(S2)], Families::V6, 4);
        let o = pump(&mut r, t0).pop().unwrap();
        r.process(t0, UNIX_EPOCH, from(S1), &answer(DNSMASQ_REFUSED, &o));
        let o2 = pump(&mut r, t0).pop().unwrap();
        assert_eq!(o2.to, from(S2));
        assert_eq!(r.poll_event(), None);

        let mut r = Resolver::new("nonexist.lab.test", &[ip(S1), ip(S2)], Families::V4, 5);
        let o = pump(&mut r, t0).pop().unwrap();
        r.process(t0, UNIX_EPOCH, from(S1), &answer(DNSMASQ_NXDOMAIN, &o));
        assert_eq!(r.poll_event(), Some(Event::Failed(ResolveError::NxDomain)));
        assert!(pump(&mut r, t0).is_empty());
    }

    #[test]
    fn a_silent_family_does_not_hold_up_the_other() {
        let t0 = Instant::now();
        let mut r = Resolver::new("ntp.lab.test", &[ip(S1)], Families::Both, 6);
        let out = pump(&mut r, t0);
        let a = out.iter().find(|o| qtype(o) == Type::A).unwrap();
        r.process(t0, UNIX_EPOCH, from(S1), &answer(DNSMASQ_CNAME_A, a));
        assert_eq!(r.poll_event(), None);
        let PollAt::At(t) = r.poll_at() else { panic!() };
        assert!(pump(&mut r, t).is_empty());
        let Some(Event::Resolved(res)) = r.poll_event() else {
            panic!()
        };
        assert_eq!(&res.addrs[..], &[ip("198.19.0.7")]);
    }

    #[test]
    fn no_servers_or_bad_name_fail_at_once() {
        let mut r = Resolver::new("ntp.lab.test", &[], Families::V4, 7);
        assert_eq!(r.poll_event(), Some(Event::Failed(ResolveError::NoServers)));
        assert_eq!(r.poll_at(), PollAt::Idle);
        let mut r = Resolver::new("a..b", &[ip(S1)], Families::V4, 7);
        assert!(matches!(
            r.poll_event(),
            Some(Event::Failed(ResolveError::BadName(_)))
        ));
        assert!(pump(&mut r, Instant::now()).is_empty());
    }
}
