//! The checker driven as `task::drive` does, over a simulated uplink whose Internet can be
//! black-holed: the failover/recovery timing and the probe byte budget are computed here.

use super::*;
use crate::wire::icmp::tests::reply_to;
use std::time::UNIX_EPOCH;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const SOURCE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
const URL: &str = "http://198.19.0.1/online/status.html";
const ONLINE: &[u8] = b"HTTP/1.1 200 OK\r\nX-ConnMan-Status: online\r\nContent-Length: 0\r\n\r\n";
const RTT: Duration = Duration::from_millis(10);

/// What the simulated HTTP server does.
#[derive(Clone)]
enum Server {
    Answer(std::vec::Vec<u8>),
    Hang,
}

struct Sim {
    c: Checker,
    t0: Instant,
    now: Instant,
    /// The Internet behind the link answers.
    up: bool,
    /// The ping target answers ICMP at all.
    icmp: bool,
    server: Server,
    pending: std::vec::Vec<(Instant, Input)>,
    events: std::vec::Vec<(Duration, Event)>,
    /// IP bytes of the probes on the wire, both ways (from the outputs and the replies).
    ping_bytes: u64,
    http_sent: u32,
    /// Where pings and the HTTP check must go.
    expect: Ipv4Addr,
    dns_sent: u32,
}

impl Sim {
    fn new(config: Config) -> Sim {
        let t0 = Instant::now();
        Sim {
            c: Checker::new(config, 42),
            t0,
            now: t0,
            up: true,
            icmp: true,
            server: Server::Answer(ONLINE.to_vec()),
            pending: vec![],
            events: vec![],
            ping_bytes: 0,
            http_sent: 0,
            expect: SERVER,
            dns_sent: 0,
        }
    }

    fn plain() -> Sim {
        Sim::new(Config::new(URL, &[], false))
    }

    fn at(&self) -> Duration {
        self.now - self.t0
    }

    fn handle(&mut self, out: Output) {
        match out {
            Output::Ping { to, packet } => {
                assert_eq!(to, self.expect);
                self.ping_bytes += 20 + packet.len() as u64;
                if self.up && self.icmp {
                    let r = reply_to(&packet, to, SOURCE);
                    self.ping_bytes += r.len() as u64;
                    let r = Vec::from_slice(&r).unwrap();
                    self.pending.push((self.now + RTT, Input::Icmp(r)));
                }
            }
            Output::Http { id, to, request } => {
                assert_eq!(to, SocketAddr::new(self.expect.into(), 80));
                assert!(request.starts_with(b"GET /online/status.html"));
                self.http_sent += 1;
                match (&self.server, self.up) {
                    (Server::Answer(b), true) => {
                        let n = b.len().min(HTTP_MAX_HEAD);
                        let result = Ok(Vec::from_slice(&b[..n]).unwrap());
                        self.pending
                            .push((self.now + 2 * RTT, Input::Http { id, result }));
                    }
                    // A black hole: the transport's connect bound ends it.
                    (_, false) => self.pending.push((
                        self.now + Duration::from_secs(3),
                        Input::Http {
                            id,
                            result: Err(HttpError::ConnectTimeout),
                        },
                    )),
                    (Server::Hang, true) => {}
                }
            }
            Output::Dns(q) => {
                // dnsmasq's answer for ntp.lab.test: 198.19.0.7, TTL 120.
                self.dns_sent += 1;
                let mut a = crate::wire::dns::tests::hex(crate::wire::dns::tests::DNSMASQ_CNAME_A);
                a[..2].copy_from_slice(&q.bytes()[..2]);
                if self.up {
                    let bytes = Vec::from_slice(&a).unwrap();
                    self.pending
                        .push((self.now + RTT, Input::Dns { from: q.to, bytes }));
                }
            }
        }
    }

    /// One wake of the driver: every output due, then the events.
    fn pump(&mut self) -> bool {
        let now = Now {
            mono: self.now,
            wall: UNIX_EPOCH,
        };
        let mut any = false;
        for _ in 0..16 {
            match self.c.dispatch(&now) {
                Some(o) => {
                    any = true;
                    self.handle(o);
                }
                None => break,
            }
        }
        while let Some(e) = self.c.poll_event() {
            self.events.push((self.at(), e));
        }
        any
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let sent = self.pump();
            let machine = match self.c.poll_at() {
                PollAt::Now if sent => self.now,
                PollAt::Now => self.now + Duration::from_millis(1),
                PollAt::At(t) if t <= self.now => self.now + Duration::from_millis(1),
                PollAt::At(t) => t,
                PollAt::Idle => end + Duration::from_secs(1),
            };
            let input = self.pending.iter().map(|p| p.0).min();
            let next = input.map_or(machine, |i| i.min(machine));
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            let now = Now {
                mono: self.now,
                wall: UNIX_EPOCH,
            };
            let (due, rest): (std::vec::Vec<_>, std::vec::Vec<_>) =
                self.pending.drain(..).partition(|p| p.0 <= self.now);
            self.pending = rest;
            for (_, i) in due {
                self.c.process(&now, i);
            }
        }
    }

    fn last_event(&self) -> Option<Event> {
        self.events.last().map(|e| e.1)
    }

    /// When the first event matching `f` came after `since`.
    fn first_after(&self, since: Duration, f: impl Fn(&Event) -> bool) -> Option<Duration> {
        self.events
            .iter()
            .find(|(t, e)| *t >= since && f(e))
            .map(|(t, _)| *t - since)
    }
}

fn is_offline(e: &Event) -> bool {
    matches!(e, Event::Offline { .. })
}

#[test]
fn a_healthy_uplink_goes_online_after_one_http_check() {
    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.events, vec![(2 * RTT, Event::Online)]);
    assert_eq!(s.c.verdict(), Verdict::Online);
    s.run_for(Duration::from_secs(600));
    assert_eq!(s.events.len(), 1, "no further events: {:?}", s.events);
    assert_eq!(s.http_sent, 1, "pings watch an online service, not HTTP");
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn black_hole_is_found_fast_and_recovery_needs_several_answers() {
    let mut detect = vec![];
    let mut recover = vec![];
    // Black holes starting at 40 phases over the ping interval.
    for phase in 0..40u64 {
        let mut s = Sim::plain();
        s.run_for(Duration::from_secs(10) + Duration::from_millis(phase * 50));
        assert_eq!(s.c.verdict(), Verdict::Online);
        let hole = s.at();
        s.up = false;
        s.run_for(Duration::from_secs(20));
        let d = s.first_after(hole, is_offline).expect("offline");
        assert!(matches!(
            s.last_event(),
            Some(Event::Offline {
                reason: Reason::PingLost(3)
            })
        ));
        detect.push(d);
        let back = s.at();
        s.up = true;
        s.run_for(Duration::from_secs(20));
        let r = s
            .first_after(back, |e| *e == Event::Online)
            .expect("online again");
        recover.push(r);
        // Exactly one Offline and one Online after the hole: no flapping.
        let after: std::vec::Vec<_> = s.events.iter().filter(|e| e.0 >= hole).collect();
        assert_eq!(after.len(), 2, "{after:?}");
    }
    let worst = *detect.iter().max().unwrap();
    let med = median(&mut detect);
    eprintln!("black hole → Offline: median {med:?}, worst {worst:?}");
    assert!(med <= Duration::from_millis(2500), "median {med:?}");
    assert!(worst <= Duration::from_millis(4000), "worst {worst:?}");
    let worst_r = *recover.iter().max().unwrap();
    let med_r = median(&mut recover);
    eprintln!("Internet back → Online: median {med_r:?}, worst {worst_r:?}");
    assert!(worst_r <= Duration::from_secs(8), "recovery {worst_r:?}");
    // Three answers at the offline interval come first: not before 2 s.
    assert!(*recover.iter().min().unwrap() >= Duration::from_secs(2));
}

#[test]
fn one_lost_probe_is_no_verdict() {
    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(10));
    s.up = false;
    // Long enough to lose one or two probes, not three.
    s.run_for(Duration::from_millis(600));
    s.up = true;
    s.run_for(Duration::from_secs(30));
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
}

fn bytes_per_minute(metered: bool) -> (u64, Stats) {
    let mut s = Sim::new(Config::new(URL, &[], metered));
    s.run_for(Duration::from_secs(60));
    let (b0, st0) = (s.ping_bytes, s.c.stats());
    s.run_for(Duration::from_secs(600));
    let st = s.c.stats();
    let stats_bytes = st.bytes_sent + st.bytes_received - st0.bytes_sent - st0.bytes_received;
    assert_eq!(
        stats_bytes,
        s.ping_bytes - b0,
        "Stats count what the wire carries"
    );
    ((s.ping_bytes - b0) / 10, st)
}

#[test]
fn steady_state_probe_cost_fits_the_budget() {
    let (b, st) = bytes_per_minute(false);
    eprintln!("unmetered: {b} IP bytes/minute ({} pings)", st.pings_sent);
    assert!(b <= 2000, "{b} bytes/minute");
    let (b, st) = bytes_per_minute(true);
    eprintln!("metered: {b} IP bytes/minute ({} pings)", st.pings_sent);
    assert!(b <= 200, "{b} bytes/minute");
}

#[test]
fn metered_black_hole_costs_few_probes() {
    let mut s = Sim::new(Config::new(URL, &[], true));
    s.run_for(Duration::from_secs(100));
    let before = s.c.stats().pings_sent;
    s.up = false;
    s.run_for(Duration::from_secs(60));
    assert!(s.events.iter().any(|e| is_offline(&e.1)));
    // Found within one metered interval plus the suspicion; then 10 s probing.
    let sent = s.c.stats().pings_sent - before;
    assert!(sent <= 12, "{sent} pings in a metered minute of black hole");
}

#[test]
fn portal_and_broken_servers_are_not_online_and_back_off() {
    type Case<'a> = (&'a [u8], fn(&Event) -> bool);
    let cases: [Case; 4] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", |e| {
            *e == Event::Portal { status: 200 }
        }),
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://198.19.0.1/\r\n\r\n",
            |e| *e == Event::Portal { status: 302 },
        ),
        (b"\x00\xffgarbage\r\n\r\n", |e| {
            *e == Event::Offline {
                reason: Reason::BadResponse(http::Error::Malformed),
            }
        }),
        (&[b'X'; 2 * HTTP_MAX_HEAD], |e| {
            *e == Event::Offline {
                reason: Reason::BadResponse(http::Error::HeadTooLarge),
            }
        }),
    ];
    for (answer, want) in cases {
        let mut s = Sim::plain();
        s.server = Server::Answer(answer.to_vec());
        s.run_for(Duration::from_secs(60));
        assert_eq!(s.events.len(), 1, "{:?}", s.events);
        assert!(want(&s.events[0].1), "{:?}", s.events);
        // Retries at 2, 4, 8, 16, 32 s of backoff (plus three answers each): few.
        assert!(
            (4..=7).contains(&s.http_sent),
            "{} checks in a minute",
            s.http_sent
        );
    }
}

#[test]
fn a_hanging_server_times_out() {
    let mut s = Sim::plain();
    s.server = Server::Hang;
    s.run_for(Duration::from_secs(7));
    assert_eq!(
        s.events,
        vec![(
            Duration::from_millis(ONLINE_HTTP_TIMEOUT_MS + crate::caps::ONLINE_HTTP_BACKSTOP_MS),
            Event::Offline {
                reason: Reason::HttpTimeout
            }
        )]
    );
    // The transport is told to drop the exchange.
    assert_eq!(s.c.http_waiting(), None);
}

#[test]
fn a_target_that_never_answers_icmp_does_not_make_it_offline() {
    let mut s = Sim::plain();
    s.icmp = false;
    s.run_for(Duration::from_secs(300));
    assert_eq!(s.events, vec![(2 * RTT, Event::Online)]);
    // The HTTP check then is the probe, once a minute.
    assert!((5..=6).contains(&s.http_sent), "{}", s.http_sent);
    s.up = false;
    s.run_for(Duration::from_secs(70));
    assert!(s.events.iter().any(|e| is_offline(&e.1)));
}

#[test]
fn bad_url_and_stray_replies() {
    let mut c = Checker::new(Config::new("https://x/", &[], false), 1);
    assert_eq!(
        c.poll_event(),
        Some(Event::Offline {
            reason: Reason::BadUrl(http::Error::UnsupportedScheme)
        })
    );
    assert_eq!(c.poll_at(), PollAt::Idle);

    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(5));
    let answered = s.c.stats().pings_answered;
    // A reply with another identifier, or for a sequence number never sent, is ignored.
    let mut b = [0u8; 8];
    EchoRequest {
        ident: s.c.ident().wrapping_add(1),
        seq: 1,
        payload: &[],
    }
    .emit(&mut b)
    .unwrap();
    let now = Now {
        mono: s.now,
        wall: UNIX_EPOCH,
    };
    let p = Vec::from_slice(&reply_to(&b, SERVER, SOURCE)).unwrap();
    s.c.process(&now, Input::Icmp(p));
    s.c.process(&now, Input::Icmp(Vec::from_slice(b"junk").unwrap()));
    assert_eq!(s.c.stats().pings_answered, answered);
}

#[test]
fn the_check_host_is_resolved_over_the_service_dns() {
    use crate::wire::dns::tests::{hex, DNSMASQ_CNAME_A};
    let dns: IpAddr = "198.18.1.1".parse().unwrap();
    let mut c = Checker::new(Config::new("http://ntp.lab.test/status", &[dns], false), 3);
    let t = Instant::now();
    let now = Now {
        mono: t,
        wall: UNIX_EPOCH,
    };
    let Some(Output::Dns(q)) = c.dispatch(&now) else {
        panic!("a DNS query first")
    };
    assert_eq!(q.to, SocketAddr::new(dns, 53));
    assert!(c.dispatch(&now).is_none(), "nothing else before the answer");
    let mut a = hex(DNSMASQ_CNAME_A);
    a[..2].copy_from_slice(&q.bytes()[..2]);
    c.process(
        &now,
        Input::Dns {
            from: q.to,
            bytes: Vec::from_slice(&a).unwrap(),
        },
    );
    assert_eq!(c.targets(), &["198.19.0.7".parse::<Ipv4Addr>().unwrap()]);
    let Some(Output::Http { to, request, .. }) = c.dispatch(&now) else {
        panic!("then the HTTP check")
    };
    assert_eq!(to, "198.19.0.7:80".parse().unwrap());
    assert!(request.starts_with(b"GET /status HTTP/1.1\r\nHost: ntp.lab.test\r\n"));
}

#[test]
fn configured_targets_are_pinged_in_turn() {
    let a: Ipv4Addr = "1.1.1.1".parse().unwrap();
    let b: Ipv4Addr = "9.9.9.9".parse().unwrap();
    let mut cfg = Config::new(URL, &[], false);
    cfg.targets = vec![a, b];
    let mut c = Checker::new(cfg, 5);
    let now = Now {
        mono: Instant::now(),
        wall: UNIX_EPOCH,
    };
    let mut to = vec![];
    let mut t = now;
    for _ in 0..20 {
        while let Some(o) = c.dispatch(&t) {
            if let Output::Ping { to: x, .. } = o {
                to.push(x);
            }
        }
        if let PollAt::At(x) = c.poll_at() {
            t.mono = x;
        }
    }
    assert!(to.len() >= 4);
    assert!(to.windows(2).all(|w| w[0] != w[1]), "{to:?}");
}

#[test]
fn reconfigure_to_metered_slows_the_probe_and_a_new_url_checks_again() {
    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(30));
    let mut cfg = Config::new(URL, &[], true);
    s.c.reconfigure(cfg.clone());
    s.run_for(Duration::from_secs(1));
    let before = s.c.stats().pings_sent;
    s.run_for(Duration::from_secs(120));
    let sent = s.c.stats().pings_sent - before;
    assert!((2..=4).contains(&sent), "{sent} pings in 2 metered minutes");
    assert_eq!(s.events.len(), 1);
    // Another URL on the same server: one new HTTP check, the verdict stays Online.
    cfg.url = "http://198.19.0.1/online/status.html?again".into();
    let checks = s.http_sent;
    s.c.reconfigure(cfg);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.http_sent, checks + 1);
    assert_eq!(s.events.len(), 1, "{:?}", s.events);
    assert_eq!(s.c.verdict(), Verdict::Online);
}

#[test]
fn a_recheck_pings_at_once_and_finds_a_shared_black_hole_in_the_retries_time() {
    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(30));
    assert_eq!(s.c.verdict(), Verdict::Online);
    // Half-way to the next steady ping, another uplink lost the Internet, and so did this one.
    s.run_for(Duration::from_millis(900));
    s.up = false;
    let before = s.c.stats().pings_sent;
    let since = s.at();
    let mut cfg = Config::new(URL, &[], false);
    cfg.recheck = 1;
    s.c.reconfigure(cfg.clone());
    s.run_for(Duration::from_millis(1));
    assert_eq!(s.c.stats().pings_sent, before + 1, "no ping at once");
    s.run_for(Duration::from_secs(5));
    let found = s.first_after(since, is_offline).expect("offline");
    assert!(found < Duration::from_millis(1500), "found after {found:?}");
    // The same value again is no new recheck.
    let sent = s.c.stats().pings_sent;
    s.c.reconfigure(cfg);
    s.run_for(Duration::from_millis(1));
    assert_eq!(s.c.stats().pings_sent, sent);
}

#[test]
fn stats_are_reported_when_asked() {
    let mut cfg = Config::new(URL, &[], false);
    cfg.stats_every = Some(Duration::from_secs(60));
    let mut s = Sim::new(cfg);
    s.run_for(Duration::from_secs(181));
    let stats: std::vec::Vec<_> = s
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Stats(st) => Some((*t, *st)),
            _ => None,
        })
        .collect();
    assert_eq!(stats.len(), 3, "{stats:?}");
    assert_eq!(s.c.verdict(), Verdict::Online, "Stats change no verdict");
    let per_min = stats[2].1.bytes_sent + stats[2].1.bytes_received
        - stats[1].1.bytes_sent
        - stats[1].1.bytes_received;
    assert!(per_min <= 2000, "{per_min}");
}

#[test]
fn targets_that_stop_answering_icmp_cost_one_false_alarm_not_a_flap() {
    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(30));
    s.icmp = false;
    s.run_for(Duration::from_secs(300));
    let kinds: std::vec::Vec<_> = s.events.iter().map(|e| e.1).collect();
    assert_eq!(
        kinds,
        vec![
            Event::Online,
            Event::Offline {
                reason: Reason::PingLost(3)
            },
            Event::Online
        ]
    );
    // Back online by the slow HTTP probe within a fallback interval.
    let t = s.events[2].0 - s.events[1].0;
    assert!(
        t <= Duration::from_secs(ONLINE_HTTP_FALLBACK_SECS + 1),
        "{t:?}"
    );
    // The Internet then really dies: the HTTP fallback notices.
    s.up = false;
    s.run_for(Duration::from_secs(70));
    assert!(is_offline(&s.last_event().unwrap()));
}

#[test]
fn recovery_after_a_long_outage_is_not_held_by_the_backoff() {
    let mut s = Sim::plain();
    s.run_for(Duration::from_secs(10));
    s.up = false;
    s.run_for(Duration::from_secs(1800));
    // The slow HTTP probe of a dead path: about one a minute, not more.
    assert!(s.http_sent <= 1 + 31, "{}", s.http_sent);
    let back = s.at();
    s.up = true;
    s.run_for(Duration::from_secs(20));
    let r = s
        .first_after(back, |e| *e == Event::Online)
        .expect("online");
    assert!(r <= Duration::from_secs(8), "{r:?}");
}

#[test]
fn a_hanging_server_behind_a_live_path_backs_off() {
    let mut s = Sim::plain();
    s.server = Server::Hang;
    s.run_for(Duration::from_secs(600));
    // 2, 4, 8 … 120 s of backoff after each 6 s timeout: a handful in ten minutes.
    assert!((6..=10).contains(&s.http_sent), "{}", s.http_sent);
}

#[test]
fn the_check_host_is_resolved_again_when_its_address_expired() {
    let dns: IpAddr = "198.18.1.1".parse().unwrap();
    let mut s = Sim::new(Config::new(
        "http://ntp.lab.test/online/status.html",
        &[dns],
        false,
    ));
    s.expect = "198.19.0.7".parse().unwrap();
    s.run_for(Duration::from_secs(10));
    assert_eq!(s.events[0].1, Event::Online);
    assert_eq!(s.dns_sent, 1);
    // Online for an hour: pings only, no DNS.
    s.run_for(Duration::from_secs(3600));
    assert_eq!((s.dns_sent, s.http_sent), (1, 1));
    // A black hole, then recovery: the address (TTL 120 s, kept 300 s) is resolved again
    // before the HTTP check, which still comes within the recovery bound.
    s.up = false;
    s.run_for(Duration::from_secs(20));
    let back = s.at();
    s.up = true;
    s.run_for(Duration::from_secs(20));
    let r = s
        .first_after(back, |e| *e == Event::Online)
        .expect("online");
    assert!(r <= Duration::from_secs(8), "{r:?}");
    assert_eq!(s.dns_sent, 2);
}

#[test]
fn main_conf_settings_make_the_config() {
    use crate::config::main_conf::{OnlineCheckConf, OnlineCheckMode};
    let mut conf = OnlineCheckConf::default();
    let c = Config::from_conf(&conf, &[], true).unwrap();
    assert_eq!(c.url, "http://ipv4.connman.net/online/status.html");
    assert_eq!(c.timing(), Timing::new(true));
    conf.connect_timeout_ms = 700;
    let t = Config::from_conf(&conf, &[], false).unwrap().timing();
    assert_eq!(t.http_connect_timeout, Duration::from_millis(700));
    conf.mode = OnlineCheckMode::None;
    assert_eq!(Config::from_conf(&conf, &[], false), None);
}

#[test]
fn a_failed_check_then_silent_icmp_still_gets_the_slow_http_probe() {
    let mut s = Sim::plain();
    s.server = Server::Hang;
    s.run_for(Duration::from_secs(10));
    assert!(is_offline(&s.last_event().unwrap()));
    // The server is fixed, but the targets stop answering ICMP at the same time.
    s.server = Server::Answer(ONLINE.to_vec());
    s.icmp = false;
    s.run_for(Duration::from_secs(200));
    assert_eq!(s.last_event(), Some(Event::Online));
}
