//! The SNTP task as the generic driver runs it ([`crate::task::Machine`]): the
//! [`sntp::Client`] plus the [`resolve::Resolver`] it needs for server names,
//! so the daemon sees one machine with one configuration (the server list in
//! SPEC §6 order and the default service's DNS servers) and two events that
//! matter to the core: synchronised and no longer synchronised. Problems with
//! single servers are logged here, not sent to the core.

use std::net::{IpAddr, SocketAddr};

use heapless::Deque;

use crate::core::types::{Name, Timeserver};
use crate::task::{Machine, Now, PollAt};
use crate::time::resolve::{self, Families, Resolver};
use crate::time::sntp::{self, Client, Measurement};

/// Names waiting for the resolver (the client asks for one at a time; a
/// few more fit while one resolves).
const QUEUED_NAMES: usize = 4;

/// What the task runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SntpConfig {
    /// Timeservers in order of preference.
    pub servers: Vec<Timeserver>,
    /// DNS servers for the names among them.
    pub dns: Vec<IpAddr>,
}

/// A datagram for the task.
#[derive(Debug, Clone)]
pub enum SntpInput {
    /// On the NTP socket.
    Ntp { from: SocketAddr, bytes: Vec<u8> },
    /// On the DNS socket.
    Dns { from: SocketAddr, bytes: Vec<u8> },
}

/// A datagram to send.
#[derive(Debug, Clone)]
pub enum SntpOutput {
    /// An NTP request.
    Ntp(sntp::Outgoing),
    /// A DNS query (boxed: a query buffer is large).
    Dns(Box<resolve::Outgoing>),
}

/// What the core hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SntpEvent {
    /// A valid measurement.
    Synced(Measurement),
    /// No recent valid measurement any more.
    Unsynced,
}

/// The SNTP client with its resolver.
pub struct SntpTask {
    client: Client,
    dns: Vec<IpAddr>,
    resolver: Option<Resolver>,
    queued: Deque<Name, QUEUED_NAMES>,
    seed: u64,
    events: Deque<SntpEvent, 4>,
}

impl SntpTask {
    /// A task with `config`; `seed` (random) feeds the cookies and query ids.
    pub fn new(config: SntpConfig, seed: u64) -> SntpTask {
        let mut t = SntpTask {
            client: Client::new(seed),
            dns: Vec::new(),
            resolver: None,
            queued: Deque::new(),
            seed,
            events: Deque::new(),
        };
        t.reconfigure(config);
        t
    }

    /// Takes the client's events: measurements for the core, names for the
    /// resolver, problems for the log.
    fn pump(&mut self, now: &Now) {
        while let Some(ev) = self.client.poll_event() {
            match ev {
                sntp::Event::Synced(m) => self.emit(SntpEvent::Synced(m)),
                sntp::Event::Unsynced => self.emit(SntpEvent::Unsynced),
                sntp::Event::Resolve(name) => {
                    let busy = self.resolver.as_ref().is_some_and(|r| !r.is_done());
                    if busy {
                        if self.queued.iter().all(|n| *n != name)
                            && self.queued.push_back(name).is_err()
                        {
                            log::warn!(
                                "SNTP: more than {QUEUED_NAMES} names waiting to be resolved"
                            );
                        }
                    } else {
                        self.start_resolver(name.as_str());
                    }
                }
                sntp::Event::Problem { server, problem } => {
                    log::info!("SNTP: {server}: {problem}")
                }
                sntp::Event::ListFailed { retry_in } => match retry_in {
                    Some(d) => log::info!(
                        "SNTP: no timeserver answered; trying the list again in {} s",
                        d.as_secs()
                    ),
                    None => log::warn!("SNTP: every timeserver refused us; waiting for a new list"),
                },
            }
        }
        if let Some(r) = &mut self.resolver {
            if let Some(ev) = r.poll_event() {
                let name = r.name().to_string();
                match &ev {
                    resolve::Event::Resolved(res) => {
                        log::debug!("SNTP: {name} is {:?}", res.addrs);
                        self.client.resolved(now.mono, &name, Ok(res));
                    }
                    resolve::Event::Failed(e) => {
                        log::info!("SNTP: cannot resolve {name}: {e}");
                        self.client.resolved(now.mono, &name, Err(*e));
                    }
                }
                self.resolver = None;
                if let Some(next) = self.queued.pop_front() {
                    self.start_resolver(next.as_str());
                }
            }
        }
    }

    fn start_resolver(&mut self, name: &str) {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.resolver = Some(Resolver::new(name, &self.dns, Families::Both, self.seed));
    }

    fn emit(&mut self, ev: SntpEvent) {
        if self.events.is_full() {
            // Only the latest state matters to the core.
            self.events.pop_front();
        }
        let _ = self.events.push_back(ev);
    }
}

impl Machine for SntpTask {
    type Input = SntpInput;
    type Output = SntpOutput;
    type Event = SntpEvent;
    type Config = SntpConfig;

    fn poll_at(&self) -> PollAt {
        let r = self.resolver.as_ref().map_or(PollAt::Idle, |r| r.poll_at());
        self.client.poll_at().min(r)
    }

    fn dispatch(&mut self, now: &Now) -> Option<SntpOutput> {
        // A resolver that finished hands its answer over before the client looks.
        self.pump(now);
        if let Some(q) = self
            .resolver
            .as_mut()
            .and_then(|r| r.dispatch(now.mono, now.wall))
        {
            return Some(SntpOutput::Dns(Box::new(q)));
        }
        self.pump(now);
        if let Some(out) = self.client.dispatch(now.mono, now.wall) {
            self.pump(now);
            return Some(SntpOutput::Ntp(out));
        }
        // The client may just have asked for a name.
        self.pump(now);
        self.resolver
            .as_mut()
            .and_then(|r| r.dispatch(now.mono, now.wall))
            .map(|q| SntpOutput::Dns(Box::new(q)))
    }

    fn process(&mut self, now: &Now, input: SntpInput) {
        match input {
            SntpInput::Ntp { from, bytes } => self.client.process(now.mono, now.wall, from, &bytes),
            SntpInput::Dns { from, bytes } => {
                if let Some(r) = &mut self.resolver {
                    r.process(now.mono, now.wall, from, &bytes);
                }
            }
        }
        self.pump(now);
    }

    fn poll_event(&mut self) -> Option<SntpEvent> {
        self.events.pop_front()
    }

    fn reconfigure(&mut self, config: SntpConfig) {
        if config.dns != self.dns {
            self.dns = config.dns;
            // A name being resolved over the old servers starts over on the new ones.
            if let Some(name) = self.resolver.take().map(|r| r.name().to_string()) {
                self.start_resolver(&name);
            }
        }
        self.client.set_servers(&config.servers);
        let now = Now::read();
        self.pump(&now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sntp::{Leap, Mode, Packet, Repr, Timestamp, HEADER_LEN};
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn server(a: [u8; 4]) -> Timeserver {
        Timeserver::Addr(IpAddr::V4(Ipv4Addr::from(a)))
    }

    /// A valid server reply to `req`, the server's clock `skew` ahead.
    fn reply(req: &[u8; HEADER_LEN], now: &Now, skew: Duration) -> Vec<u8> {
        let p = Packet::new_checked(&req[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        let t = Timestamp::from_system_time(now.wall + skew);
        let answer = Repr {
            leap: Leap::NoWarning,
            mode: Mode::Server,
            version: 4,
            stratum: 2,
            precision: -20,
            reference_id: [127, 0, 0, 1],
            reference_timestamp: t,
            originate_timestamp: r.transmit_timestamp,
            receive_timestamp: t,
            transmit_timestamp: t,
            ..r
        };
        let mut buf = vec![0u8; HEADER_LEN];
        answer
            .emit(&mut Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        buf
    }

    #[test]
    fn an_address_is_asked_at_once_and_a_valid_reply_is_synced() {
        let mut t = SntpTask::new(
            SntpConfig {
                servers: vec![server([198, 18, 1, 1])],
                dns: vec![],
            },
            7,
        );
        assert_eq!(t.poll_at(), PollAt::Now);
        let now = Now::read();
        let Some(SntpOutput::Ntp(out)) = t.dispatch(&now) else {
            panic!("an NTP request first")
        };
        assert_eq!(out.to, "198.18.1.1:123".parse().unwrap());
        let later = Now::read();
        let bytes = reply(&out.bytes, &later, Duration::from_secs(3));
        t.process(
            &later,
            SntpInput::Ntp {
                from: out.to,
                bytes,
            },
        );
        match t.poll_event() {
            Some(SntpEvent::Synced(m)) => {
                let off = m.offset.as_secs_f64();
                assert!((off - 3.0).abs() < 0.1, "offset {off}");
            }
            other => panic!("expected Synced, got {other:?}"),
        }
    }

    #[test]
    fn a_name_is_resolved_over_the_dns_servers_first() {
        let mut t = SntpTask::new(
            SntpConfig {
                servers: vec![Timeserver::Name("ntp.lab.test".parse().unwrap())],
                dns: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1))],
            },
            7,
        );
        let now = Now::read();
        match t.dispatch(&now) {
            Some(SntpOutput::Dns(q)) => assert_eq!(q.to, "198.18.1.1:53".parse().unwrap()),
            other => panic!("expected a DNS query, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_list_idles() {
        let mut t = SntpTask::new(SntpConfig::default(), 1);
        assert_eq!(t.poll_at(), PollAt::Idle);
        assert!(t.dispatch(&Now::read()).is_none());
    }
}
