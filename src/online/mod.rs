//! The per-service online check (SPEC §6): ConnMan's HTTP check decides ready → online, then
//! a light, frequent ICMP echo probe finds a dead Internet behind a live link within seconds.
//!
//! [`Checker`] is a sans-I/O [`Machine`]: it resolves the check URL's host with
//! [`Resolver`] (IPv4: the probe and its source address are IPv4), runs the HTTP check over
//! the transport, then pings its targets (configured ones, else the address the check host
//! resolved to). Timing ([`Timing`], defaults in [`crate::caps`]):
//! - online: one echo every [`PING_INTERVAL_MS`]; a probe unanswered after
//!   [`PING_TIMEOUT_MS`] starts suspicion: probes at once, then every
//!   [`PING_SUSPECT_SPACING_MS`]; [`PING_MISSES_OFFLINE`] consecutive losses → `Offline`;
//! - not online: an echo every [`PING_INTERVAL_OFFLINE_MS`]; after
//!   [`PING_SUCCESSES_RECOVER`] consecutive answers the HTTP check runs again, and only its
//!   success makes the service `Online` (no flapping on a lucky packet);
//! - a failed or portal HTTP check is retried with a doubling backoff; a target that never
//!   answered a ping (ICMP filtered) never makes a service offline: the HTTP check is then
//!   repeated every [`ONLINE_HTTP_FALLBACK_SECS`] instead;
//! - metered: the same with the `*_METERED` intervals.

use crate::caps::{
    DNS_MAX_MESSAGE, HTTP_MAX_HEAD, HTTP_MAX_REQUEST, ICMP_RX_BUFFER, MAX_SERVERS,
    ONLINE_DNS_RETRY_SECS, ONLINE_HTTP_BACKSTOP_MS, ONLINE_HTTP_CONNECT_TIMEOUT_MS,
    ONLINE_HTTP_FALLBACK_METERED_SECS, ONLINE_HTTP_FALLBACK_SECS, ONLINE_HTTP_RETRY_INITIAL_MS,
    ONLINE_HTTP_RETRY_MAX_MS, ONLINE_HTTP_TIMEOUT_MS, ONLINE_MIN_RESOLVE_TTL_SECS,
    PING_INTERVAL_METERED_MS, PING_INTERVAL_MS, PING_INTERVAL_OFFLINE_METERED_MS,
    PING_INTERVAL_OFFLINE_MS, PING_MAX_OUTSTANDING, PING_MAX_TARGETS, PING_MISSES_OFFLINE,
    PING_PAYLOAD_LEN, PING_SUCCESSES_RECOVER, PING_SUSPECT_SPACING_MS, PING_TIMEOUT_MS,
};
use crate::task::{Machine, Now, PollAt};
use crate::time::resolve::{self, Families, Outgoing, ResolveError, Resolver};
use crate::time::Rng;
use crate::wire::http::{self, Response, Url};
use crate::wire::icmp::{self, EchoReply, EchoRequest};
use core::fmt;
use heapless::Vec;
use log::{debug, warn};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// IPv4 header bytes counted per packet in [`Stats`].
pub const IP_HEADER: u64 = 20;
/// UDP header bytes.
pub const UDP_HEADER: u64 = 8;
/// TCP header bytes (with the usual timestamp option) counted per segment.
pub const TCP_HEADER: u64 = 32;
/// Segments an HTTP check costs besides its data, each way (SYN/SYN-ACK, ACKs, FIN): an
/// estimate for [`Stats`], as the transport does not count segments.
pub const TCP_SEGMENTS_EACH_WAY: u64 = 4;

/// The intervals and thresholds of one checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub suspect_spacing: Duration,
    pub misses_offline: u32,
    pub offline_interval: Duration,
    pub successes_recover: u32,
    /// The transport's bound on the HTTP check's TCP connect.
    pub http_connect_timeout: Duration,
    /// The transport's bound on the whole HTTP exchange; the checker itself gives up
    /// [`ONLINE_HTTP_BACKSTOP_MS`] later.
    pub http_timeout: Duration,
    pub http_retry_initial: Duration,
    pub http_retry_max: Duration,
    pub http_fallback: Duration,
    pub dns_retry: Duration,
}

impl Timing {
    /// The defaults of [`crate::caps`] for a metered or an unmetered service.
    pub fn new(metered: bool) -> Timing {
        let ms = Duration::from_millis;
        Timing {
            interval: ms(if metered {
                PING_INTERVAL_METERED_MS
            } else {
                PING_INTERVAL_MS
            }),
            timeout: ms(PING_TIMEOUT_MS),
            suspect_spacing: ms(PING_SUSPECT_SPACING_MS),
            misses_offline: PING_MISSES_OFFLINE,
            offline_interval: ms(if metered {
                PING_INTERVAL_OFFLINE_METERED_MS
            } else {
                PING_INTERVAL_OFFLINE_MS
            }),
            successes_recover: PING_SUCCESSES_RECOVER,
            http_connect_timeout: ms(ONLINE_HTTP_CONNECT_TIMEOUT_MS),
            http_timeout: ms(ONLINE_HTTP_TIMEOUT_MS),
            http_retry_initial: ms(ONLINE_HTTP_RETRY_INITIAL_MS),
            http_retry_max: ms(ONLINE_HTTP_RETRY_MAX_MS),
            http_fallback: Duration::from_secs(if metered {
                ONLINE_HTTP_FALLBACK_METERED_SECS
            } else {
                ONLINE_HTTP_FALLBACK_SECS
            }),
            dns_retry: Duration::from_secs(ONLINE_DNS_RETRY_SECS),
        }
    }
}

/// What one checker checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The check URL (`OnlineCheckIPv4URL`), `http://` only.
    pub url: String,
    /// Ping targets; empty: the address the URL's host resolves to.
    pub targets: std::vec::Vec<Ipv4Addr>,
    /// A metered service (cellular): rare probes.
    pub metered: bool,
    /// The service's DNS servers (for the URL's host name).
    pub dns: std::vec::Vec<IpAddr>,
    /// Intervals; None: [`Timing::new`]`(metered)`. Tests and benchmarks may set them.
    pub timing: Option<Timing>,
    /// Report [`Event::Stats`] this often (benchmarks); None: never.
    pub stats_every: Option<Duration>,
    /// A new value asks an online checker for a ping at once: another uplink has just
    /// lost the Internet, and a shared fault (one upstream behind both, a dead ISP) then
    /// shows here in the retries' time rather than at the next steady ping.
    pub recheck: u32,
}

impl Config {
    /// A configuration with the default timing.
    pub fn new(url: &str, dns: &[IpAddr], metered: bool) -> Config {
        Config {
            url: url.to_owned(),
            targets: std::vec::Vec::new(),
            metered,
            dns: dns.to_vec(),
            timing: None,
            stats_every: None,
            recheck: 0,
        }
    }

    /// The checker of main.conf's online check settings (SPEC §6: every connected service
    /// is checked, so one-shot and continuous both give the checker), or None for
    /// `OnlineCheckMode=none`. `OnlineCheckConnectTimeout` (when set) bounds the connect.
    pub fn from_conf(
        conf: &crate::config::main_conf::OnlineCheckConf,
        dns: &[IpAddr],
        metered: bool,
    ) -> Option<Config> {
        use crate::config::main_conf::OnlineCheckMode;
        if conf.mode == OnlineCheckMode::None {
            return None;
        }
        let mut c = Config::new(&conf.ipv4_url, dns, metered);
        if conf.connect_timeout_ms > 0 {
            let mut t = Timing::new(metered);
            t.http_connect_timeout = Duration::from_millis(u64::from(conf.connect_timeout_ms));
            t.http_timeout = t.http_timeout.max(t.http_connect_timeout);
            c.timing = Some(t);
        }
        Some(c)
    }

    /// The timing in force: the override, else the defaults for `metered`.
    pub fn timing(&self) -> Timing {
        self.timing.unwrap_or_else(|| Timing::new(self.metered))
    }
}

/// Why an HTTP exchange gave no response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The socket could not be made or bound (address not configured yet…).
    Socket,
    /// The server refused the connection (RST).
    Refused,
    /// No route, host unreachable, network down.
    Unreachable,
    /// No connection within the transport's connect bound.
    ConnectTimeout,
    /// No complete head within the transport's total bound.
    Timeout,
    /// Another socket error.
    Io,
}

/// Why a service is not online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The check URL cannot be used.
    BadUrl(http::Error),
    /// The URL's host could not be resolved.
    Dns(ResolveError),
    /// The HTTP exchange failed.
    Http(HttpError),
    /// The answer was no HTTP response head we accept (garbage, too large, truncated).
    BadResponse(http::Error),
    /// The HTTP check got no answer in [`Timing::http_timeout`].
    HttpTimeout,
    /// This many consecutive echo requests went unanswered.
    PingLost(u32),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BadUrl(e) => write!(f, "check URL: {e}"),
            Reason::Dns(e) => write!(f, "check host: {e}"),
            Reason::Http(e) => write!(f, "HTTP check: {e:?}"),
            Reason::BadResponse(e) => write!(f, "HTTP check: {e}"),
            Reason::HttpTimeout => f.write_str("HTTP check timed out"),
            Reason::PingLost(n) => write!(f, "{n} echo requests unanswered"),
        }
    }
}

/// What the checker tells the core (on changes only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The HTTP check succeeded: ready → online.
    Online,
    /// Not (or no longer) online.
    Offline { reason: Reason },
    /// The check server answered without `X-ConnMan-Status: online` (captive portal,
    /// redirect): not online.
    Portal { status: u16 },
    /// The counters, every [`Config::stats_every`] (no verdict change).
    Stats(Stats),
}

/// What the transport hands the checker (one at a time, so the size of the HTTP variant
/// costs nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A datagram on the DNS socket.
    Dns {
        from: SocketAddr,
        bytes: Vec<u8, DNS_MAX_MESSAGE>,
    },
    /// The end of HTTP exchange `id`: the bytes read (the head, or the first
    /// [`HTTP_MAX_HEAD`] bytes, or all until the server closed), or why there are none.
    Http {
        id: u32,
        result: Result<Vec<u8, HTTP_MAX_HEAD>, HttpError>,
    },
    /// An IPv4 packet (header included) from the raw ICMP socket.
    Icmp(Vec<u8, ICMP_RX_BUFFER>),
    /// Nothing for the checker (an error the transport handled).
    Nothing,
}

/// What the checker asks the transport to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// A DNS query on the DNS socket.
    Dns(Outgoing),
    /// Connect to `to`, send `request`, read the response head, report [`Input::Http`]
    /// with `id`. A new exchange replaces an older one.
    Http {
        id: u32,
        to: SocketAddr,
        request: Vec<u8, HTTP_MAX_REQUEST>,
    },
    /// An ICMP echo request (no IPv4 header) to `to`.
    Ping {
        to: Ipv4Addr,
        packet: Vec<u8, { icmp::ECHO_HEADER_LEN + PING_PAYLOAD_LEN }>,
    },
}

/// Counters a benchmark reads: probes and IP bytes both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub pings_sent: u64,
    pub pings_answered: u64,
    pub http_checks: u64,
    pub dns_queries: u64,
    /// IP bytes sent (headers included; TCP segments estimated, see [`TCP_SEGMENTS_EACH_WAY`]).
    pub bytes_sent: u64,
    /// IP bytes received (the same way).
    pub bytes_received: u64,
}

/// The verdict last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing reported yet.
    Unknown,
    Online,
    Offline,
    Portal,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u16,
    to: Ipv4Addr,
    deadline: Instant,
}

fn offline(reason: Reason) -> Event {
    Event::Offline { reason }
}

/// The online checker of one service.
#[derive(Debug)]
pub struct Checker {
    config: Config,
    timing: Timing,
    next_stats: Option<Instant>,
    url: Option<Url>,
    rng: Rng,
    resolver: Option<Resolver>,
    dns_retry_at: Option<Instant>,
    /// Where the HTTP check connects.
    server: Option<IpAddr>,
    /// When the resolved `server` is due to be resolved again (None: an address literal).
    server_until: Option<Instant>,
    targets: Vec<Ipv4Addr, PING_MAX_TARGETS>,
    next_target: usize,
    verdict: Verdict,
    events: Vec<Event, 4>,
    // HTTP
    http_id: u32,
    http_deadline: Option<Instant>,
    http_not_before: Option<Instant>,
    http_backoff: Duration,
    last_http_ok: Option<Instant>,
    // Ping
    ident: u16,
    seq: u16,
    next_ping: Option<Instant>,
    last_ping: Option<Instant>,
    outstanding: Vec<InFlight, PING_MAX_OUTSTANDING>,
    misses: u32,
    successes: u32,
    /// A target answered at least once: ping losses then mean something.
    confirmed: bool,
    /// When pings made the service offline.
    down_since: Option<Instant>,
    /// The last HTTP failure came while pings said the path works (a bad server, not a dead
    /// path): its backoff holds even after pings recover.
    failed_with_path_up: bool,
    stats: Stats,
}

impl Checker {
    /// A checker for `config`; `seed` feeds the DNS ids and the ICMP identifier. It starts
    /// at the first [`Machine::dispatch`].
    pub fn new(config: Config, seed: u64) -> Checker {
        let mut rng = Rng::new(seed);
        let ident = rng.next_u64() as u16;
        let mut c = Checker {
            timing: config.timing(),
            next_stats: None,
            config: config.clone(),
            url: None,
            rng,
            resolver: None,
            dns_retry_at: None,
            server: None,
            server_until: None,
            targets: Vec::new(),
            next_target: 0,
            verdict: Verdict::Unknown,
            events: Vec::new(),
            http_id: 0,
            http_deadline: None,
            http_not_before: None,
            http_backoff: config.timing().http_retry_initial,
            last_http_ok: None,
            ident,
            seq: 0,
            next_ping: None,
            last_ping: None,
            outstanding: Vec::new(),
            misses: 0,
            successes: 0,
            confirmed: false,
            down_since: None,
            failed_with_path_up: false,
            stats: Stats::default(),
        };
        c.start();
        c
    }

    fn start(&mut self) {
        self.targets.clear();
        for t in &self.config.targets {
            if self.targets.push(*t).is_err() {
                warn!("online check: ping targets beyond {PING_MAX_TARGETS} ignored");
                break;
            }
        }
        match Url::parse(&self.config.url) {
            Ok(u) => {
                if let Some(ip) = u.ip() {
                    self.server = Some(ip);
                    self.server_known(ip);
                } else {
                    self.resolver = Some(self.new_resolver(&u.host));
                }
                self.url = Some(u);
            }
            Err(e) => {
                warn!("online check: {}: {e}", self.config.url);
                self.report(Event::Offline {
                    reason: Reason::BadUrl(e),
                });
            }
        }
    }

    fn new_resolver(&mut self, host: &str) -> Resolver {
        let servers: std::vec::Vec<IpAddr> =
            self.config.dns.iter().take(MAX_SERVERS).copied().collect();
        Resolver::new(host, &servers, Families::V4, self.rng.next_u64())
    }

    fn server_known(&mut self, ip: IpAddr) {
        if self.config.targets.is_empty() {
            // The default target follows the check host's address.
            self.targets.clear();
            if let IpAddr::V4(v4) = ip.to_canonical() {
                let _ = self.targets.push(v4);
            }
        }
    }

    /// The timing in force.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The verdict last reported.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The HTTP exchange the checker waits for, if any (the transport drops any other).
    pub fn http_waiting(&self) -> Option<u32> {
        self.http_deadline.map(|_| self.http_id)
    }

    /// Whether DNS is in progress (the transport needs its DNS socket).
    pub fn resolving(&self) -> bool {
        self.resolver.is_some()
    }

    /// The ping targets in use.
    pub fn targets(&self) -> &[Ipv4Addr] {
        &self.targets
    }

    /// The ICMP identifier of this checker's echo requests.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// Reports `ev` when it changes the verdict.
    fn report(&mut self, ev: Event) {
        let v = match ev {
            Event::Online => Verdict::Online,
            Event::Offline { .. } => Verdict::Offline,
            Event::Portal { .. } => Verdict::Portal,
            Event::Stats(_) => return self.push_event(ev),
        };
        if v != self.verdict {
            self.verdict = v;
            self.push_event(ev);
        }
    }

    fn push_event(&mut self, ev: Event) {
        if !matches!(ev, Event::Stats(_)) {
            debug!("online check: {ev:?}");
        }
        if self.events.is_full() {
            self.events.remove(0);
        }
        let _ = self.events.push(ev);
    }

    fn online(&self) -> bool {
        self.verdict == Verdict::Online
    }

    fn ping_spacing(&self) -> Duration {
        let t = &self.timing;
        if self.online() {
            if self.misses > 0 && self.confirmed {
                t.suspect_spacing
            } else {
                t.interval
            }
        } else {
            t.offline_interval
        }
    }

    /// When the HTTP check may run next (None: not now).
    fn http_due(&self) -> Option<PollAt> {
        if self.http_deadline.is_some()
            || self.server.is_none()
            || self.url.is_none()
            || self.resolver.is_some()
        {
            return None;
        }
        if self.online() {
            // Pings watch an online service; HTTP only when they cannot.
            if self.confirmed {
                return None;
            }
            // (No success of this check yet: a reconfigured one checks at once.)
            return Some(
                self.last_http_ok
                    .map_or(PollAt::Now, |t| PollAt::At(t + self.timing().http_fallback)),
            );
        }
        // Not online: at once when pings work and say the path is back; when they never
        // worked, at the backoff; when they say it is down, rarely (ICMP may have stopped
        // while HTTP works: the check must not stay offline forever).
        let retry = self.http_not_before.map_or(PollAt::Now, PollAt::At);
        if !self.confirmed {
            return Some(retry);
        }
        if self.successes >= self.timing().successes_recover {
            // Failures while the path was dead say nothing about the server.
            return Some(if self.failed_with_path_up {
                retry
            } else {
                PollAt::Now
            });
        }
        let since = self.down_since.or(self.http_not_before)?;
        let slow = since.checked_add(self.timing().http_fallback)?;
        Some(PollAt::At(match self.http_not_before {
            Some(t) => t.max(slow),
            None => slow,
        }))
    }

    fn http_failed(&mut self, now: Instant, ev: Event) {
        debug!("online check: HTTP check failed: {ev:?}");
        self.http_deadline = None;
        self.failed_with_path_up =
            !self.confirmed || self.successes >= self.timing().successes_recover;
        self.http_not_before = Some(now + self.http_backoff);
        self.http_backoff = (self.http_backoff * 2).min(self.timing().http_retry_max);
        // Fresh evidence from pings needed before the next try.
        self.successes = 0;
        self.report(ev);
    }

    fn on_http(&mut self, now: Instant, result: Result<&[u8], HttpError>) {
        let bytes = match result {
            Err(e) => return self.http_failed(now, offline(Reason::Http(e))),
            Ok(b) => b,
        };
        self.stats.bytes_received += bytes.len() as u64;
        match Response::parse(bytes) {
            Err(e) => self.http_failed(now, offline(Reason::BadResponse(e))),
            Ok(r) if r.is_online() => {
                self.http_deadline = None;
                self.http_not_before = None;
                self.http_backoff = self.timing().http_retry_initial;
                self.last_http_ok = Some(now);
                if self.misses >= self.timing().misses_offline {
                    // HTTP works while the targets stay silent: they stopped answering
                    // ICMP, so pings no longer decide until a target answers again.
                    warn!("online check: ping targets silent while HTTP works");
                    self.confirmed = false;
                }
                self.down_since = None;
                self.misses = 0;
                self.report(Event::Online);
                // Watch from now on at the online interval.
                self.next_ping = Some(now + self.timing().interval);
            }
            Ok(r) => self.http_failed(now, Event::Portal { status: r.status }),
        }
    }

    fn on_reply(&mut self, packet: &[u8]) {
        let Ok(r) = EchoReply::parse(packet) else {
            return;
        };
        if r.ident != self.ident {
            return;
        }
        let Some(i) = self
            .outstanding
            .iter()
            .position(|f| f.seq == r.seq && f.to == r.src)
        else {
            debug!("online check: late or stray echo reply from {}", r.src);
            return;
        };
        self.outstanding.remove(i);
        self.stats.pings_answered += 1;
        self.stats.bytes_received += packet.len() as u64;
        self.confirmed = true;
        let was_suspect = self.misses > 0;
        self.misses = 0;
        self.successes = self.successes.saturating_add(1);
        if self.online() && was_suspect {
            // Suspicion over: back to the steady interval.
            self.next_ping = self.last_ping.map(|t| t + self.timing().interval);
        }
        if !self.online() && self.successes == self.timing().successes_recover {
            debug!(
                "online check: {} answers in a row, checking HTTP",
                self.successes
            );
        }
    }

    fn on_miss(&mut self, now: Instant, f: InFlight) {
        debug!("online check: no echo reply from {} (seq {})", f.to, f.seq);
        self.successes = 0;
        self.misses = self.misses.saturating_add(1);
        if !self.online() || !self.confirmed {
            return;
        }
        if self.misses >= self.timing().misses_offline {
            let n = self.misses;
            // A fresh start for the HTTP check once the path is back.
            self.http_not_before = None;
            self.down_since = Some(now);
            self.http_backoff = self.timing().http_retry_initial;
            self.report(Event::Offline {
                reason: Reason::PingLost(n),
            });
            self.next_ping = Some(now + self.timing().offline_interval);
        } else if self.misses == 1 {
            // Suspicion: probe again at once.
            self.next_ping = Some(now);
        }
    }

    fn expire(&mut self, now: Instant) {
        if self.http_deadline.is_some_and(|t| now >= t) {
            self.http_failed(now, offline(Reason::HttpTimeout));
        }
        while let Some(i) = self.outstanding.iter().position(|f| now >= f.deadline) {
            let f = self.outstanding.remove(i);
            self.on_miss(now, f);
        }
        if self.resolver.is_none() && self.dns_retry_at.is_some_and(|t| now >= t) {
            self.dns_retry_at = None;
            if let Some(u) = self.url.clone() {
                self.resolver = Some(self.new_resolver(&u.host));
            }
        }
    }

    fn drain_resolver(&mut self, now: Instant) {
        let Some(ev) = self.resolver.as_mut().and_then(Resolver::poll_event) else {
            return;
        };
        self.resolver = None;
        match ev {
            resolve::Event::Resolved(r) => {
                let ip = r.addrs.iter().copied().find(IpAddr::is_ipv4);
                match ip {
                    Some(ip) => {
                        debug!("online check: server {ip}");
                        let ttl = r.ttl.max(Duration::from_secs(ONLINE_MIN_RESOLVE_TTL_SECS));
                        self.server_until = Some(now + ttl);
                        self.server = Some(ip);
                        self.server_known(ip);
                    }
                    None => self.dns_failed(now, ResolveError::NoAddresses),
                }
            }
            resolve::Event::Failed(e) => self.dns_failed(now, e),
        }
    }

    fn dns_failed(&mut self, now: Instant, e: ResolveError) {
        if self.server.is_some() {
            // A re-resolution: keep the address known, try again later.
            debug!("online check: resolving the check host again: {e}");
            self.server_until = Some(now + self.timing().dns_retry);
            return;
        }
        self.dns_retry_at = Some(now + self.timing().dns_retry);
        self.report(Event::Offline {
            reason: Reason::Dns(e),
        });
    }

    fn send_http(&mut self, now: Instant) -> Option<Output> {
        let url = self.url.as_ref()?;
        let server = self.server?;
        let request = match url.request() {
            Ok(r) => r,
            Err(e) => {
                self.url = None;
                self.report(Event::Offline {
                    reason: Reason::BadUrl(e),
                });
                return None;
            }
        };
        self.http_id = self.http_id.wrapping_add(1);
        // The transport's own bound ends the exchange first; this is the backstop.
        let backstop = Duration::from_millis(ONLINE_HTTP_BACKSTOP_MS);
        self.http_deadline = Some(now + self.timing().http_timeout + backstop);
        self.stats.http_checks += 1;
        let overhead = TCP_SEGMENTS_EACH_WAY * (IP_HEADER + TCP_HEADER);
        self.stats.bytes_sent += request.len() as u64 + overhead;
        self.stats.bytes_received += overhead;
        Some(Output::Http {
            id: self.http_id,
            to: SocketAddr::new(server, url.port),
            request,
        })
    }

    fn send_ping(&mut self, now: Instant) -> Option<Output> {
        let to = *self
            .targets
            .get(self.next_target % self.targets.len().max(1))?;
        self.next_target = (self.next_target + 1) % self.targets.len();
        self.seq = self.seq.wrapping_add(1);
        let mut buf = [0u8; icmp::ECHO_HEADER_LEN + PING_PAYLOAD_LEN];
        let payload = [0u8; PING_PAYLOAD_LEN];
        let n = EchoRequest {
            ident: self.ident,
            seq: self.seq,
            payload: &payload,
        }
        .emit(&mut buf)
        .ok()?;
        if self.outstanding.is_full() {
            self.outstanding.remove(0);
        }
        let _ = self.outstanding.push(InFlight {
            seq: self.seq,
            to,
            deadline: now + self.timing().timeout,
        });
        self.last_ping = Some(now);
        self.next_ping = Some(now + self.ping_spacing());
        self.stats.pings_sent += 1;
        self.stats.bytes_sent += IP_HEADER + n as u64;
        Some(Output::Ping {
            to,
            packet: Vec::from_slice(&buf[..n]).ok()?,
        })
    }
}

impl Machine for Checker {
    type Input = Input;
    type Output = Output;
    type Event = Event;
    type Config = Config;

    fn poll_at(&self) -> PollAt {
        let mut p = PollAt::Idle;
        if let Some(r) = &self.resolver {
            p = p.min(r.poll_at());
        }
        if !self.events.is_empty() {
            return PollAt::Now;
        }
        for t in [self.dns_retry_at, self.http_deadline]
            .into_iter()
            .flatten()
        {
            p = p.min(PollAt::At(t));
        }
        if let Some(d) = self.http_due() {
            p = p.min(d);
        }
        for f in &self.outstanding {
            p = p.min(PollAt::At(f.deadline));
        }
        if self.config.stats_every.is_some() {
            p = p.min(self.next_stats.map_or(PollAt::Now, PollAt::At));
        }
        if !self.targets.is_empty() {
            p = p.min(self.next_ping.map_or(PollAt::Now, PollAt::At));
        }
        p
    }

    fn dispatch(&mut self, now: &Now) -> Option<Output> {
        let t = now.mono;
        self.expire(t);
        if let Some(every) = self.config.stats_every {
            match self.next_stats {
                Some(n) if n > t => {}
                Some(_) => {
                    self.next_stats = Some(t + every);
                    self.push_event(Event::Stats(self.stats));
                }
                None => self.next_stats = Some(t + every),
            }
        }
        if let Some(r) = self.resolver.as_mut() {
            if let Some(q) = r.dispatch(t, now.wall) {
                self.stats.dns_queries += 1;
                self.stats.bytes_sent += IP_HEADER + UDP_HEADER + q.bytes().len() as u64;
                return Some(Output::Dns(q));
            }
            self.drain_resolver(t);
        }
        let http_due = matches!(self.http_due(), Some(PollAt::Now))
            || matches!(self.http_due(), Some(PollAt::At(d)) if d <= t);
        if http_due && self.server_until.is_some_and(|u| u <= t) {
            // The check host's address expired: resolve it before the check.
            self.server_until = None;
            if let Some(u) = self.url.clone() {
                let mut r = self.new_resolver(&u.host);
                let q = r.dispatch(t, now.wall);
                self.resolver = Some(r);
                if let Some(q) = q {
                    self.stats.dns_queries += 1;
                    self.stats.bytes_sent += IP_HEADER + UDP_HEADER + q.bytes().len() as u64;
                    return Some(Output::Dns(q));
                }
                self.drain_resolver(t);
            }
        } else if http_due {
            if let Some(o) = self.send_http(t) {
                return Some(o);
            }
        }
        if !self.targets.is_empty() && self.next_ping.is_none_or(|n| n <= t) {
            return self.send_ping(t);
        }
        None
    }

    fn process(&mut self, now: &Now, input: Input) {
        let t = now.mono;
        match input {
            Input::Dns { from, bytes } => {
                if let Some(r) = self.resolver.as_mut() {
                    self.stats.bytes_received += IP_HEADER + UDP_HEADER + bytes.len() as u64;
                    r.process(t, now.wall, from, &bytes);
                    self.drain_resolver(t);
                }
            }
            Input::Http { id, result } => {
                if self.http_waiting() == Some(id) {
                    self.on_http(t, result.as_deref().map_err(|e| *e));
                } else {
                    debug!("online check: stale HTTP result {id}");
                }
            }
            Input::Icmp(p) => self.on_reply(&p),
            Input::Nothing => {}
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    fn reconfigure(&mut self, config: Config) {
        if config == self.config {
            return;
        }
        let same_check = config.url == self.config.url
            && config.dns == self.config.dns
            && config.targets == self.config.targets;
        let recheck = config.recheck != self.config.recheck;
        self.config = config;
        self.timing = self.config.timing();
        if same_check {
            // Metered or timing change: new intervals from the next probe on.
            self.http_backoff = self.http_backoff.min(self.timing.http_retry_max);
            if let (Some(last), Some(next)) = (self.last_ping, self.next_ping) {
                self.next_ping = Some(next.min(last + self.ping_spacing()));
            }
            if recheck && self.online() && self.outstanding.is_empty() {
                // Due at once (the last ping's time is past): the driver pings now.
                if let Some(last) = self.last_ping {
                    self.next_ping = Some(last);
                }
            }
            return;
        }
        let verdict = self.verdict;
        let stats = self.stats;
        let seed = self.rng.next_u64();
        *self = Checker::new(self.config.clone(), seed);
        // Keep what the core was told (unless the new URL is refused at once); the new
        // check runs at once and reports changes from there.
        if self.verdict == Verdict::Unknown {
            self.verdict = verdict;
        }
        self.stats = stats;
    }
}

#[cfg(test)]
mod tests;
