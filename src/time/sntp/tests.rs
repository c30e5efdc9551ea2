//! Tests of the SNTP client: real chronyd replies and the lab's hostile responder's replies
//! (captured, below), then the machine driven with plain values and simulated time.

use super::*;
use crate::wire::sntp::Short;
use proptest::prelude::*;
use std::time::UNIX_EPOCH;

/// One captured request/reply pair. Captured on the lab (`tests/lab/lab.sh up ID 1 --ntp`,
/// the DUT given 198.18.1.50/24 and fd18:1::50/64 by hand, from the DUT namespace with
/// `lab.sh exec ID /usr/bin/python3 tests/lab/hostile_ntp.py query 198.18.1.1 [--version 3]
/// [--poll 4]`), the hostile ones after `lab.sh ntp ID 1 hostile MODE`. `t1_ns`/`t4_ns` are
/// the querying host's clock (Unix ns) at send and receive; the server ran on the same host
/// clock, so the true offset is 0. chronyd 4.3 (Debian), `local stratum 10`, `-x`.
struct Exchange {
    from: &'static str,
    t1_ns: u64,
    t4_ns: u64,
    req: &'static str,
    resp: &'static str,
}

/// chronyd, IPv4, VN 4, poll 6.
const CHRONY_V4_A: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169954954512437,
    t4_ns: 1796169954954869202,
    req: "e30006000000000000000000000000000000000000000000000000000000000000000000000000005bce7c1cfcd374f8",
    resp: "240a06e600000000000000007f7f0101eeb9df612d5693795bce7c1cfcd374f8eeb9df62f46746b3eeb9df62f46e1f50",
};
/// chronyd, IPv4, VN 4, poll 6, 2.5 s later.
const CHRONY_V4_B: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169957460175568,
    t4_ns: 1796169957464133448,
    req: "e3000600000000000000000000000000000000000000000000000000000000000000000000000000e119bd0bd1eba031",
    resp: "240a06e600000000000000007f7f0101eeb9df612d569379e119bd0bd1eba031eeb9df6575d3adadeeb9df6575df7652",
};
/// chronyd, IPv4, VN 3 (echoed), poll 6.
const CHRONY_V4_VN3: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169957564888792,
    t4_ns: 1796169957565120389,
    req: "db000600000000000000000000000000000000000000000000000000000000000000000000000000548146f4d73f0dd5",
    resp: "1c0a06e600000000000000007f7f0101eeb9df612d569379548146f4d73f0dd5eeb9df6590a3999deeb9df6590a9267c",
};
/// chronyd, IPv6 [fd18:1::1].
const CHRONY_V6: Exchange = Exchange {
    from: "fd18:1::1",
    t1_ns: 1796169957656532597,
    t4_ns: 1796169957656808181,
    req: "e300060000000000000000000000000000000000000000000000000000000000000000000000000049ad2205044fe8b1",
    resp: "240a06e600000000000000007f7f0101eeb9df612d56937949ad2205044fe8b1eeb9df65a81dbc3beeb9df65a821ee0a",
};
/// chronyd, IPv4, poll 4 (echoed).
const CHRONY_V4_POLL4: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169957734409351,
    t4_ns: 1796169957736145517,
    req: "e30004000000000000000000000000000000000000000000000000000000000000000000000000002f62827b04bba634",
    resp: "240a04e600000000000000007f7f0101eeb9df612d5693792f62827b04bba634eeb9df65bc08bb8beeb9df65bc6f948e",
};
/// hostile_ntp.py --mode good.
const HOSTILE_GOOD: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169961967878207,
    t4_ns: 1796169961972399372,
    req: "e3000600000000000000000000000000000000000000000000000000000000000000000000000000334c40ff71aa557a",
    resp: "240a06ec00000000000000007f7f0101eeb9df69cc46f392334c40ff71aa557aeeb9df69f8df62abeeb9df69f8e62451",
};
/// hostile_ntp.py --mode kod-deny.
const HOSTILE_KOD_DENY: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169962268124630,
    t4_ns: 1796169962268459102,
    req: "e30006000000000000000000000000000000000000000000000000000000000000000000000000006683c9867f4d5d30",
    resp: "240006ec000000000000000044454e59eeb9df6a26a533b56683c9867f4d5d30eeb9df6a44b041bdeeb9df6a44b58a80",
};
/// hostile_ntp.py --mode kod-rstr.
const HOSTILE_KOD_RSTR: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169962672476615,
    t4_ns: 1796169962672781983,
    req: "e300060000000000000000000000000000000000000000000000000000000000000000000000000099ed8b5315aed623",
    resp: "240006ec000000000000000052535452eeb9df6a8685453a99ed8b5315aed623eeb9df6aac32ca18eeb9df6aac37a780",
};
/// hostile_ntp.py --mode kod-rate.
const HOSTILE_KOD_RATE: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169963070608485,
    t4_ns: 1796169963072429839,
    req: "e3000600000000000000000000000000000000000000000000000000000000000000000000000000ce18222950fc0d6f",
    resp: "240006ec000000000000000052415445eeb9df6ae9f7857cce18222950fc0d6feeb9df6b1275dc0ceeb9df6b127d92ad",
};
/// hostile_ntp.py --mode li3.
const HOSTILE_LI3: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169963487873059,
    t4_ns: 1796169963492129126,
    req: "e3000600000000000000000000000000000000000000000000000000000000000000000000000000712a5638b715946d",
    resp: "e40a06ec00000000000000007f7f0101eeb9df6b5b54d46a712a5638b715946deeb9df6b7cf7b51deeb9df6b7cfe6b52",
};
/// hostile_ntp.py --mode bad-origin.
const HOSTILE_BAD_ORIGIN: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169963880378389,
    t4_ns: 1796169963880741023,
    req: "e3000600000000000000000000000000000000000000000000000000000000000000000000000000a6eaa0f4f2313c9c",
    resp: "240a06ec00000000000000007f7f0101eeb9df6bbc033c83a6eaa0f4f2313c9deeb9df6be16e2759eeb9df6be1735841",
};
/// hostile_ntp.py --mode zero-transmit.
const HOSTILE_ZERO_TRANSMIT: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169964386541468,
    t4_ns: 1796169964386820847,
    req: "e30006000000000000000000000000000000000000000000000000000000000000000000000000001738e1822d8b7a82",
    resp: "240a06ec00000000000000007f7f0101eeb9df6c39517e271738e1822d8b7a82eeb9df6c62fed6a90000000000000000",
};
/// hostile_ntp.py --mode huge-distance.
const HOSTILE_HUGE_DISTANCE: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169964753908392,
    t4_ns: 1796169964756092260,
    req: "e30006000000000000000000000000000000000000000000000000000000000000000000000000008498fb0c72a3ec91",
    resp: "240a06ec00000000001000007f7f0101eeb9df6c9fd587428498fb0c72a3ec91eeb9df6cc1110645eeb9df6cc1187eb9",
};
/// hostile_ntp.py --mode poll0.
const HOSTILE_POLL0: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169965188667325,
    t4_ns: 1796169965192550082,
    req: "e300060000000000000000000000000000000000000000000000000000000000000000000000000046d4d8def9c10f92",
    resp: "240a00ec00000000000000007f7f0101eeb9df6cff480df246d4d8def9c10f92eeb9df6d31341bd1eeb9df6d313bf104",
};
/// hostile_ntp.py --mode stratum16.
const HOSTILE_STRATUM16: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169965648815683,
    t4_ns: 1796169965649089644,
    req: "e30006000000000000000000000000000000000000000000000000000000000000000000000000004f2d3c485d732390",
    resp: "241006ec00000000000000007f7f0101eeb9df6d7da3f8294f2d3c485d732390eeb9df6da6230ff2eeb9df6da6275d00",
};
/// hostile_ntp.py --mode wrong-mode.
const HOSTILE_WRONG_MODE: Exchange = Exchange {
    from: "198.18.1.1",
    t1_ns: 1796169965897540579,
    t4_ns: 1796169965897824545,
    req: "e30006000000000000000000000000000000000000000000000000000000000000000000000000008eedc5d84b09fdde",
    resp: "250a06ec00000000000000007f7f0101eeb9df6dbd3305af8eedc5d84b09fddeeeb9df6de5cf6537eeb9df6de5d41238",
};

const CHRONY: [&Exchange; 5] = [
    &CHRONY_V4_A,
    &CHRONY_V4_B,
    &CHRONY_V4_VN3,
    &CHRONY_V6,
    &CHRONY_V4_POLL4,
];

fn hex(s: &str) -> std::vec::Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn unix_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn parse(bytes: &[u8]) -> Repr {
    Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}

impl Exchange {
    fn request(&self) -> Repr {
        parse(&hex(self.req))
    }
    fn reply(&self) -> Repr {
        parse(&hex(self.resp))
    }
    fn server(&self) -> SocketAddr {
        SocketAddr::new(self.from.parse().unwrap(), 123)
    }
    /// `check` as the client runs it on this reply, the round trip taken from the capture.
    fn check(&self) -> Result<Measurement, Verdict> {
        let at = Instant::now();
        let sent = Sent {
            to: self.server(),
            cookie: self.request().transmit_timestamp,
            at,
            wall: unix_ns(self.t1_ns),
            timeout: Duration::from_secs(1),
            poll: self.request().poll,
            earlier: [Timestamp::ZERO; SNTP_TRIES as usize],
        };
        let rtt = Duration::from_nanos(self.t4_ns - self.t1_ns);
        check(&self.reply(), &sent, at + rtt, unix_ns(self.t4_ns))
    }
}

#[test]
fn chronyd_replies_give_measurements() {
    for x in CHRONY {
        let m = x.check().unwrap();
        let r = x.reply();
        assert_eq!(m.server, x.server());
        assert_eq!(m.stratum, 10);
        assert_eq!(m.leap, Leap::NoWarning);
        let hold = r.transmit_timestamp.nanos_since(r.receive_timestamp);
        // Up to 1 ns of rounding from the 32-bit fractions.
        let want = (x.t4_ns - x.t1_ns) as i64 - hold;
        assert!(
            (m.delay.as_nanos() as i64 - want).abs() <= 1,
            "{:?} {want}",
            m.delay
        );
        // Same host clock on both sides: the offset is only the path's asymmetry, which
        // cannot exceed half the round trip.
        assert!(m.offset.abs() <= m.delay / 2, "{} {:?}", m.offset, m.delay);
        assert!(m.delay < Duration::from_millis(10));
        assert_eq!(
            m.root_distance,
            m.delay / 2,
            "root delay and dispersion are 0"
        );
        let err = TimeOffset::between(m.wall, unix_ns(x.t4_ns)).abs();
        assert!(err <= m.delay / 2);
        // chronyd echoes the request's version and poll.
        assert_eq!(r.version, x.request().version);
        assert_eq!(r.poll, x.request().poll);
    }
}

#[test]
fn our_request_is_byte_for_byte_the_captured_one() {
    for x in CHRONY.iter().filter(|x| x.request().version == 4) {
        let q = x.request();
        assert_eq!(
            Repr::client_request(q.poll, q.transmit_timestamp)
                .to_bytes()
                .to_vec(),
            hex(x.req)
        );
    }
    // And what the machine sends first: poll 4, a cookie in the transmit field.
    let mut c = Client::new(1);
    c.set_servers(&[ServerSpec::Addr(ip("198.18.1.1"))]);
    let o = c.dispatch(Instant::now(), UNIX_EPOCH).unwrap();
    assert_eq!(o.to, sock("198.18.1.1"));
    assert_eq!(o.bytes[..40], hex(CHRONY_V4_POLL4.req)[..40]);
    assert_ne!(o.bytes[40..], [0; 8]);
}

/// The header fields that do not carry time.
fn static_fields(r: &Repr) -> [(&'static str, u64); 9] {
    [
        ("leap", r.leap.bits().into()),
        ("version", r.version.into()),
        ("mode", r.mode.bits().into()),
        ("stratum", r.stratum.into()),
        ("poll", r.poll as u64),
        ("precision", r.precision as u64),
        ("root_delay", r.root_delay.0.into()),
        ("root_dispersion", r.root_dispersion.0.into()),
        ("reference_id", u32::from_be_bytes(r.reference_id).into()),
    ]
}

/// Fields of a captured reply that differ from a normal one: the static ones against
/// `normal`, the timestamps against the reply's own request (originate must echo its
/// transmit, transmit and receive must be set).
fn changed(x: &Exchange, normal: &Repr) -> std::vec::Vec<&'static str> {
    let r = x.reply();
    let mut out: std::vec::Vec<&str> = static_fields(&r)
        .iter()
        .zip(static_fields(normal).iter())
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0)
        .collect();
    if r.originate_timestamp != x.request().transmit_timestamp {
        out.push("originate");
    }
    if r.receive_timestamp.is_zero() {
        out.push("receive");
    }
    if r.transmit_timestamp.is_zero() {
        out.push("transmit");
    }
    out
}

#[test]
fn hostile_good_mode_is_accepted_exactly_like_chronyd() {
    let (good, chrony) = (HOSTILE_GOOD.reply(), CHRONY_V4_A.reply());
    // Same header but for the precision the responder states for itself.
    assert_eq!(changed(&HOSTILE_GOOD, &chrony), vec!["precision"]);
    assert_eq!(good.reference_id, chrony.reference_id);
    let (a, b) = (HOSTILE_GOOD.check().unwrap(), CHRONY_V4_A.check().unwrap());
    assert_eq!((a.stratum, a.leap), (b.stratum, b.leap));
    assert!(a.offset.abs() <= a.delay / 2, "{}", a.offset);
    assert_eq!(a.root_distance, a.delay / 2);
}

/// Each hostile capture, the fields it changes, and how the client takes it.
fn hostile_table() -> [(&'static Exchange, &'static [&'static str], Option<Problem>); 10] {
    use Problem::{Kiss, Rejected};
    [
        (
            &HOSTILE_KOD_DENY,
            &["stratum", "reference_id"],
            Some(Kiss(KissCode::Deny)),
        ),
        (
            &HOSTILE_KOD_RSTR,
            &["stratum", "reference_id"],
            Some(Kiss(KissCode::Restrict)),
        ),
        (
            &HOSTILE_KOD_RATE,
            &["stratum", "reference_id"],
            Some(Kiss(KissCode::Rate)),
        ),
        (
            &HOSTILE_LI3,
            &["leap"],
            Some(Rejected(Reject::Unsynchronized)),
        ),
        (
            &HOSTILE_BAD_ORIGIN,
            &["originate"],
            Some(Rejected(Reject::BadOrigin)),
        ),
        (
            &HOSTILE_ZERO_TRANSMIT,
            &["transmit"],
            Some(Rejected(Reject::ZeroTransmit)),
        ),
        (
            &HOSTILE_HUGE_DISTANCE,
            &["root_dispersion"],
            Some(Rejected(Reject::RootDistance(Duration::ZERO))),
        ),
        (&HOSTILE_POLL0, &["poll"], None),
        (
            &HOSTILE_STRATUM16,
            &["stratum"],
            Some(Rejected(Reject::Stratum(16))),
        ),
        (
            &HOSTILE_WRONG_MODE,
            &["mode"],
            Some(Rejected(Reject::WrongMode(Mode::Broadcast))),
        ),
    ]
}

#[test]
fn each_hostile_mode_changes_only_its_field() {
    let good = HOSTILE_GOOD.reply();
    for (x, fields, _) in hostile_table() {
        assert_eq!(changed(x, &good), fields.to_vec(), "{}", x.resp);
    }
}

/// Drives a client through one exchange with a captured reply, its originate moved onto the
/// client's cookie (keeping whatever difference the capture has from its own request).
fn through_the_machine(x: &Exchange) -> (std::vec::Vec<Event>, PollAt, Client) {
    let mut c = Client::new(7);
    let server = x.server();
    c.set_servers(&[ServerSpec::Addr(server.ip())]);
    let t0 = Instant::now();
    let o = c.dispatch(t0, unix_ns(x.t1_ns)).unwrap();
    let cookie = parse(&o.bytes).transmit_timestamp;
    let mut reply = x.reply();
    reply.originate_timestamp =
        Timestamp(cookie.0 ^ reply.originate_timestamp.0 ^ x.request().transmit_timestamp.0);
    let t4 = t0 + Duration::from_nanos(x.t4_ns - x.t1_ns);
    c.process(t4, unix_ns(x.t4_ns), server, &reply.to_bytes());
    let events = std::iter::from_fn(|| c.poll_event()).collect();
    (events, c.poll_at(), c)
}

#[test]
fn hostile_replies_never_give_a_measurement() {
    for (x, _, problem) in hostile_table() {
        let (events, _, c) = through_the_machine(x);
        let synced = events.iter().any(|e| matches!(e, Event::Synced(_)));
        match problem {
            None => assert!(synced, "poll 0 is no reason to refuse a reply: {events:?}"),
            Some(p) => {
                assert!(!synced, "{events:?}");
                assert!(c.synced().is_none());
                let got = events.iter().find_map(|e| match e {
                    Event::Problem { server, problem } => {
                        assert_eq!(*server, x.server());
                        Some(*problem)
                    }
                    _ => None,
                });
                match (got, p) {
                    (
                        Some(Problem::Rejected(Reject::RootDistance(d))),
                        Problem::Rejected(Reject::RootDistance(_)),
                    ) => assert!(d > Duration::from_secs(16)),
                    (got, p) => assert_eq!(got, Some(p), "{}", x.resp),
                }
            }
        }
    }
}

#[test]
fn poll_zero_from_a_server_does_not_shorten_the_interval() {
    let (_, poll_at, _) = through_the_machine(&HOSTILE_POLL0);
    let PollAt::At(next) = poll_at else {
        panic!("{poll_at:?}")
    };
    let after = next.saturating_duration_since(Instant::now());
    assert!(after >= Duration::from_secs(15), "{after:?}");
}

// ----- the machine with simulated time and a simulated server -----

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(s: &str) -> SocketAddr {
    SocketAddr::new(ip(s), 123)
}

fn spec(s: &str) -> ServerSpec {
    match s.parse::<IpAddr>() {
        Ok(a) => ServerSpec::Addr(a),
        Err(_) => ServerSpec::Name(Name::try_from(s).unwrap()),
    }
}

const A: &str = "198.18.1.1";
const B: &str = "198.18.2.1";
/// 2026-12-01T00:00:00Z: true time at the start of every simulation.
const TRUE_START_NS: u64 = 1_796_083_200_000_000_000;
/// One-way network delay of the simulated path.
const ONE_WAY: Duration = Duration::from_millis(1);
/// The simulated server's hold time.
const HOLD: Duration = Duration::from_micros(50);

/// What the simulated server does with one request: gets chronyd's answer to it, returns
/// the bytes to send back (None: silence).
type Server<'a> = &'a mut dyn FnMut(SocketAddr, Repr) -> Option<std::vec::Vec<u8>>;

/// A server answering every request normally.
fn normal(_: SocketAddr, r: Repr) -> Option<std::vec::Vec<u8>> {
    Some(r.to_bytes().to_vec())
}

fn silent(_: SocketAddr, _: Repr) -> Option<std::vec::Vec<u8>> {
    None
}

struct Sim {
    c: Client,
    t0: Instant,
    now: Instant,
    /// Local clock minus true time, nanoseconds.
    skew: i64,
    sent: std::vec::Vec<(Duration, Outgoing)>,
    events: std::vec::Vec<(Duration, Event)>,
}

impl Sim {
    fn new(servers: &[&str]) -> Sim {
        let mut c = Client::new(42);
        let list: std::vec::Vec<ServerSpec> = servers.iter().map(|s| spec(s)).collect();
        c.set_servers(&list);
        let t0 = Instant::now();
        Sim {
            c,
            t0,
            now: t0,
            skew: 0,
            sent: vec![],
            events: vec![],
        }
    }

    fn true_time(&self, at: Instant) -> SystemTime {
        unix_ns(TRUE_START_NS) + (at - self.t0)
    }

    fn wall(&self) -> SystemTime {
        TimeOffset::from_nanos(self.skew)
            .apply(self.true_time(self.now))
            .unwrap()
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// A reply like a stratum-2 server's to `req` sent at `at`.
    fn good(&self, req: &Repr, at: Instant) -> Repr {
        let rx = Timestamp::from_system_time(self.true_time(at + ONE_WAY));
        let tx = Timestamp::from_system_time(self.true_time(at + ONE_WAY + HOLD));
        Repr {
            leap: Leap::NoWarning,
            version: req.version,
            mode: Mode::Server,
            stratum: 2,
            poll: req.poll,
            precision: -24,
            root_delay: Short::from_duration(Duration::from_millis(20)),
            root_dispersion: Short::from_duration(Duration::from_millis(5)),
            reference_id: [192, 0, 2, 1],
            reference_timestamp: rx,
            originate_timestamp: req.transmit_timestamp,
            receive_timestamp: rx,
            transmit_timestamp: tx,
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.c.poll_event() {
            let at = self.elapsed();
            self.events.push((at, e));
        }
    }

    /// Sends what is due now; each request is answered by `server` (or not) after the
    /// round trip.
    fn step(&mut self, server: Server<'_>) {
        for _ in 0..100 {
            let wall = self.wall();
            let Some(o) = self.c.dispatch(self.now, wall) else {
                break;
            };
            self.sent.push((self.elapsed(), o));
            let good = self.good(&parse(&o.bytes), self.now);
            if let Some(bytes) = server(o.to, good) {
                let back = self.now;
                self.now += ONE_WAY + HOLD + ONE_WAY;
                let wall = self.wall();
                self.c.process(self.now, wall, o.to, &bytes);
                self.drain();
                self.now = back;
            }
            self.drain();
        }
        self.drain();
    }

    /// Runs until `until` after the start, or until the client has nothing left to do.
    fn run(&mut self, until: Duration, server: Server<'_>) {
        for _ in 0..100_000 {
            self.step(server);
            let next = match self.c.poll_at() {
                PollAt::Now => self.now,
                PollAt::At(t) => t.max(self.now),
                PollAt::Idle => break,
            };
            if next > self.t0 + until {
                break;
            }
            self.now = next;
        }
        self.now = self.now.max(self.t0 + until);
    }

    fn times_to(&self, a: &str) -> std::vec::Vec<Duration> {
        self.sent
            .iter()
            .filter(|(_, o)| o.to == sock(a))
            .map(|(t, _)| *t)
            .collect()
    }

    fn syncs(&self) -> std::vec::Vec<&Measurement> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Synced(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn problems(&self) -> std::vec::Vec<(SocketAddr, Problem)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Problem { server, problem } => Some((*server, *problem)),
                _ => None,
            })
            .collect()
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn gaps(times: &[Duration]) -> std::vec::Vec<u64> {
    times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect()
}

/// A server that changes its normal reply with `f`.
fn edited(f: impl Fn(&mut Repr)) -> impl FnMut(SocketAddr, Repr) -> Option<std::vec::Vec<u8>> {
    move |_, mut r| {
        f(&mut r);
        Some(r.to_bytes().to_vec())
    }
}

#[test]
fn first_sync_takes_one_exchange() {
    let mut s = Sim::new(&[A]);
    s.skew = 3_000_000_000; // the local clock is 3 s ahead
    s.step(&mut normal);
    assert_eq!(s.sent.len(), 1);
    let o = s.sent[0].1;
    assert_eq!(o.to, sock(A));
    let req = parse(&o.bytes);
    assert_eq!(
        (req.leap, req.version, req.mode, req.poll),
        (Leap::Unsynchronized, 4, Mode::Client, 4)
    );
    let m = s.syncs()[0].clone();
    assert_eq!(m.server, sock(A));
    assert_eq!(m.delay, 2 * ONE_WAY);
    assert!(
        (m.offset.as_nanos() + 3_000_000_000).abs() <= 1,
        "{}",
        m.offset
    );
    assert_eq!(m.wall, s.true_time(s.t0 + 2 * ONE_WAY + HOLD));
    assert_eq!(m.stratum, 2);
    // Root delay and dispersion go through the 16.16 format (rounded up to 1/65536 s).
    let want = Duration::from_millis(10 + 5 + 1);
    assert!(m.root_distance >= want && m.root_distance < want + Duration::from_micros(40));
    assert_eq!(s.c.synced(), Some(&m));
    assert_eq!(s.c.poll_at(), PollAt::At(m.at + secs(16)));
}

#[test]
fn poll_interval_starts_fast_then_adapts_between_64_and_1024() {
    let mut s = Sim::new(&[A]);
    s.run(secs(4 * 3600), &mut normal);
    let g = gaps(&s.times_to(A));
    assert_eq!(&g[..8], &[16, 32, 64, 128, 256, 512, 1024, 1024]);
    assert!(g.iter().all(|&x| (16..=1024).contains(&x)), "{g:?}");
    // A step of the local clock makes the next offset jump: back to 64 s, then up again.
    let n = s.sent.len();
    s.skew += 1_000_000_000;
    let end = s.elapsed() + secs(3 * 3600);
    s.run(end, &mut normal);
    let g = gaps(&s.times_to(A)[n - 1..]);
    assert_eq!(&g[..4], &[1024, 64, 128, 256], "{g:?}");
    // The requests say what interval we use.
    let polls: std::vec::Vec<i8> = s.sent.iter().map(|(_, o)| parse(&o.bytes).poll).collect();
    assert_eq!(&polls[..4], &[4, 4, 5, 6]);
}

#[test]
fn a_server_poll_field_can_only_lengthen_the_interval() {
    for poll in [0i8, -6, 3, 17, 127] {
        let mut s = Sim::new(&[A]);
        s.run(secs(6 * 3600), &mut edited(move |r| r.poll = poll));
        let g = gaps(&s.times_to(A));
        assert!(
            g.iter().all(|&x| (16..=1024).contains(&x)),
            "poll {poll}: {g:?}"
        );
        if poll > 10 {
            assert!(g.iter().all(|&x| x == 1024), "poll {poll}: {g:?}");
        } else {
            assert_eq!(&g[..3], &[16, 32, 64], "poll {poll}");
        }
    }
}

#[test]
fn silence_backs_off_then_tries_the_next_server_then_the_list_again() {
    let mut s = Sim::new(&[A, B]);
    s.run(secs(3 * 3600), &mut silent);
    let (ta, tb) = (s.times_to(A), s.times_to(B));
    let ms = |v: &[Duration]| {
        v.iter()
            .map(|d| d.as_millis() as u64)
            .collect::<std::vec::Vec<_>>()
    };
    // 1 s, 2 s, 4 s of waiting per server, then the next one.
    assert_eq!(&ms(&ta)[..3], &[0, 1000, 3000]);
    assert_eq!(&ms(&tb)[..3], &[7000, 8000, 10000]);
    // Then the whole list after 16 s, 32 s, ... up to 1024 s.
    let pass_starts: std::vec::Vec<u64> = ta.chunks(3).map(|c| c[0].as_secs()).collect();
    let pauses: std::vec::Vec<u64> = pass_starts.windows(2).map(|w| w[1] - w[0] - 14).collect();
    assert_eq!(&pauses[..8], &[16, 32, 64, 128, 256, 512, 1024, 1024]);
    assert_eq!(
        s.count(|e| matches!(
            e,
            Event::Problem {
                problem: Problem::NoReply,
                ..
            }
        )),
        ta.len() / 3 + tb.len() / 3
    );
    assert!(s.count(|e| matches!(e, Event::ListFailed { retry_in: Some(_) })) >= 8);
    assert!(s.syncs().is_empty());
    // A server that comes back is used at the next pass, quickly polled again.
    let n = s.times_to(A).len();
    let end = s.elapsed() + secs(1100);
    s.run(end, &mut normal);
    assert!(!s.syncs().is_empty());
    assert_eq!(&gaps(&s.times_to(A)[n..])[..2], &[16, 32]);
}

#[test]
fn kod_deny_or_rstr_server_is_never_asked_again() {
    for code in [*b"DENY", *b"RSTR"] {
        // Alone: nothing is sent any more, for hours.
        let mut s = Sim::new(&[A]);
        s.run(
            secs(10 * 3600),
            &mut edited(move |r| {
                r.stratum = 0;
                r.reference_id = code;
            }),
        );
        assert_eq!(s.times_to(A).len(), 1);
        assert_eq!(s.c.poll_at(), PollAt::Idle);
        assert_eq!(s.count(|e| *e == Event::ListFailed { retry_in: None }), 1);
        assert!(s.syncs().is_empty());
        // With a second server that works for an hour, then fails (so the list is gone
        // through again and again, and the preferred-server recheck comes due): the first
        // server still gets nothing.
        let mut s = Sim::new(&[A, B]);
        let t_fail = secs(3600);
        let t = std::cell::Cell::new(Duration::ZERO);
        let mut server = |to: SocketAddr, mut r: Repr| {
            if to == sock(A) {
                r.stratum = 0;
                r.reference_id = code;
            } else if t.get() > t_fail {
                return None;
            }
            Some(r.to_bytes().to_vec())
        };
        for _ in 0..(12 * 60) {
            let until = t.get() + secs(60);
            s.run(until, &mut server);
            t.set(until);
        }
        assert_eq!(s.times_to(A).len(), 1, "{:?}", s.times_to(A));
        assert!(s.times_to(B).len() > 20);
        assert!(!s.syncs().is_empty());
        assert!(s.syncs().iter().all(|m| m.server == sock(B)));
    }
}

#[test]
fn kod_rate_slows_that_server_down() {
    // Alone: the next request waits out the longer interval, then normal service resumes.
    let mut s = Sim::new(&[A]);
    let mut first = true;
    s.run(secs(3600), &mut |_, mut r: Repr| {
        if std::mem::take(&mut first) {
            r.stratum = 0;
            r.reference_id = *b"RATE";
        }
        Some(r.to_bytes().to_vec())
    });
    let ta = s.times_to(A);
    assert!(ta[1] - ta[0] >= secs(64), "{ta:?}");
    assert_eq!(s.problems()[0], (sock(A), Problem::Kiss(KissCode::Rate)));
    assert!(gaps(&ta[1..]).iter().all(|&g| g >= 64), "{ta:?}");
    // With an alternative: used at once.
    let mut s = Sim::new(&[A, B]);
    s.run(secs(100), &mut |to, mut r: Repr| {
        if to == sock(A) {
            r.stratum = 0;
            r.reference_id = *b"RATE";
        }
        Some(r.to_bytes().to_vec())
    });
    assert_eq!(s.times_to(A), vec![Duration::ZERO]);
    assert_eq!(s.times_to(B)[0], Duration::ZERO);
    assert_eq!(s.syncs()[0].server, sock(B));
}

#[test]
fn a_rejected_reply_moves_to_the_next_server_at_once() {
    type Edit = fn(&mut Repr);
    let rejects: [(Edit, Reject); 8] = [
        (|r| r.leap = Leap::Unsynchronized, Reject::Unsynchronized),
        (|r| r.stratum = 16, Reject::Stratum(16)),
        (
            |r| r.transmit_timestamp = Timestamp::ZERO,
            Reject::ZeroTransmit,
        ),
        (
            |r| r.receive_timestamp = Timestamp::ZERO,
            Reject::ZeroReceive,
        ),
        (
            |r| r.mode = Mode::SymmetricPassive,
            Reject::WrongMode(Mode::SymmetricPassive),
        ),
        (|r| r.version = 2, Reject::BadVersion(2)),
        (
            |r| r.root_dispersion = Short(1 << 16),
            Reject::RootDistance(Duration::from_millis(1011)),
        ),
        // The server claims it sent before it received.
        (
            |r| std::mem::swap(&mut r.receive_timestamp, &mut r.transmit_timestamp),
            Reject::BadTimestamps,
        ),
    ];
    for (edit, why) in rejects {
        let mut s = Sim::new(&[A, B]);
        s.run(secs(30), &mut |to, mut r: Repr| {
            if to == sock(A) {
                edit(&mut r);
            }
            Some(r.to_bytes().to_vec())
        });
        let mut got = s.problems();
        if let [(_, Problem::Rejected(Reject::RootDistance(d)))] = &mut got[..] {
            // 1 s of dispersion + 10 ms + 1 ms, give or take the 16.16 rounding.
            assert!(d.abs_diff(Duration::from_millis(1011)) < Duration::from_micros(40));
            *d = Duration::from_millis(1011);
        }
        assert_eq!(got, vec![(sock(A), Problem::Rejected(why))], "{why}");
        assert_eq!(s.times_to(B)[0], Duration::ZERO, "{why}");
        assert!(s.syncs().iter().all(|m| m.server == sock(B)), "{why}");
        assert_eq!(s.syncs().len(), 2, "{why}");
    }
    // Version 3 and the root distance bound itself are fine.
    let mut s = Sim::new(&[A]);
    s.step(&mut edited(|r| {
        r.version = 3;
        // (20 ms root delay + 2 ms delay) / 2 + 988 ms: just under 1 s.
        r.root_dispersion = Short::from_duration(Duration::from_millis(988));
    }));
    assert_eq!(s.syncs().len(), 1, "{:?}", s.events);
}

#[test]
fn forged_and_stray_datagrams_do_not_end_the_wait() {
    let mut s = Sim::new(&[A]);
    let o = s.c.dispatch(s.now, s.wall()).unwrap();
    let good = s.good(&parse(&o.bytes), s.now);
    let later = s.now + secs(0) + Duration::from_millis(3);
    let wall = s.wall();
    let mut wrong_origin = good;
    wrong_origin.originate_timestamp.0 ^= 1 << 40;
    let forged: [(SocketAddr, std::vec::Vec<u8>); 5] = [
        (SocketAddr::new(ip(A), 124), good.to_bytes().to_vec()),
        (sock(B), good.to_bytes().to_vec()),
        (sock("::ffff:198.18.1.2"), good.to_bytes().to_vec()),
        (sock(A), good.to_bytes()[..47].to_vec()),
        (sock(A), wrong_origin.to_bytes().to_vec()),
    ];
    for (from, bytes) in &forged {
        s.c.process(later, wall, *from, bytes);
    }
    assert!(
        matches!(s.c.poll_at(), PollAt::At(t) if t == s.t0 + secs(1)),
        "still waiting"
    );
    s.drain();
    assert!(s.syncs().is_empty());
    assert_eq!(
        s.problems(),
        vec![
            (sock(A), Problem::Rejected(Reject::Malformed)),
            (sock(A), Problem::Rejected(Reject::BadOrigin))
        ]
    );
    // The real reply, from the IPv4-mapped form of the address, still counts; a replay of
    // it does not count twice.
    s.c.process(later, wall, sock("::ffff:198.18.1.1"), &good.to_bytes());
    s.c.process(later, wall, sock(A), &good.to_bytes());
    s.drain();
    assert_eq!(s.syncs().len(), 1);
}

#[test]
fn a_late_answer_to_an_earlier_request_is_ignored_quietly() {
    let mut s = Sim::new(&[A]);
    let first = s.c.dispatch(s.now, s.wall()).unwrap();
    let late = s.good(&parse(&first.bytes), s.now);
    s.now += secs(1);
    let second = s.c.dispatch(s.now, s.wall()).unwrap();
    assert_ne!(
        first.bytes[40..],
        second.bytes[40..],
        "a new cookie per request"
    );
    s.now += Duration::from_millis(100);
    let wall = s.wall();
    s.c.process(s.now, wall, sock(A), &late.to_bytes());
    s.drain();
    assert!(s.events.is_empty(), "{:?}", s.events);
    // The answer to the latest request counts.
    let good = s.good(&parse(&second.bytes), s.now - Duration::from_millis(100));
    s.c.process(s.now, wall, sock(A), &good.to_bytes());
    s.drain();
    assert_eq!(s.syncs().len(), 1);
}

#[test]
fn a_clock_step_between_send_and_receive_changes_neither_delay_nor_time() {
    let mut s = Sim::new(&[A]);
    let o = s.c.dispatch(s.now, s.wall()).unwrap();
    let good = s.good(&parse(&o.bytes), s.now);
    // Someone steps the local clock by an hour while the request is out.
    s.skew += 3_600_000_000_000;
    s.now += 2 * ONE_WAY + HOLD;
    let wall = s.wall();
    s.c.process(s.now, wall, sock(A), &good.to_bytes());
    s.drain();
    let m = s.syncs()[0];
    assert_eq!(m.delay, 2 * ONE_WAY);
    assert_eq!(m.wall, s.true_time(s.now));
    // Relative to the clock as it is now.
    assert!(
        (m.offset.as_nanos() + 3_600_000_000_000).abs() <= 1,
        "{}",
        m.offset
    );
}

#[test]
fn unsynced_once_the_last_measurement_is_too_old() {
    let mut s = Sim::new(&[A]);
    s.step(&mut normal);
    let synced_at = s.syncs()[0].at - s.t0;
    s.run(secs(SNTP_SYNC_MAX_AGE_SECS - 10), &mut silent);
    assert!(s.c.synced().is_some());
    assert_eq!(s.count(|e| *e == Event::Unsynced), 0);
    s.run(secs(SNTP_SYNC_MAX_AGE_SECS + 10), &mut silent);
    let at: std::vec::Vec<Duration> = s
        .events
        .iter()
        .filter(|(_, e)| *e == Event::Unsynced)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(at, vec![synced_at + secs(SNTP_SYNC_MAX_AGE_SECS)]);
    assert!(s.c.synced().is_none());
    // When the server comes back: quick exchanges again.
    let n = s.sent.len();
    let end = s.elapsed() + secs(1100);
    s.run(end, &mut normal);
    let g = gaps(&s.times_to(A)[n..]);
    assert_eq!(&g[..2], &[16, 32], "{g:?}");
}

#[test]
fn list_changes() {
    let mut s = Sim::new(&[A]);
    s.step(&mut normal);
    // The same list: nothing happens.
    s.now += secs(5);
    s.c.set_servers(&[spec(A)]);
    let first = s.syncs()[0].at;
    assert_eq!(s.c.poll_at(), PollAt::At(first + secs(16)));
    // Another list that still holds A: the first server is asked at once, A's measurement
    // stays valid.
    s.c.set_servers(&[spec(B), spec(A)]);
    assert_eq!(s.c.poll_at(), PollAt::Now);
    assert!(s.c.synced().is_some());
    s.step(&mut silent);
    assert_eq!(s.sent.last().unwrap().1.to, sock(B));
    // A list without A: unsynced at once.
    s.c.set_servers(&[spec(B)]);
    s.drain();
    assert!(s.c.synced().is_none());
    assert_eq!(s.count(|e| *e == Event::Unsynced), 1);
    // An empty list: nothing to do.
    s.c.set_servers(&[]);
    assert_eq!(s.c.poll_at(), PollAt::Idle);
    assert_eq!(s.c.dispatch(s.now, s.wall()), None);
    // A DENY lasts as long as the list: a new list asks that server again.
    let mut s = Sim::new(&[A]);
    s.run(
        secs(60),
        &mut edited(|r| {
            r.stratum = 0;
            r.reference_id = *b"DENY";
        }),
    );
    assert_eq!(s.c.poll_at(), PollAt::Idle);
    s.c.set_servers(&[spec(B), spec(A)]);
    s.c.set_servers(&[spec(A)]);
    s.step(&mut normal);
    assert_eq!(s.times_to(A).len(), 2);
    assert_eq!(s.syncs().len(), 1);
}

#[test]
fn names_are_resolved_by_the_owner() {
    let mut s = Sim::new(&["ntp.lab.test", B]);
    assert_eq!(s.c.dispatch(s.now, s.wall()), None);
    assert_eq!(
        s.c.poll_event(),
        Some(Event::Resolve(Name::try_from("ntp.lab.test").unwrap()))
    );
    assert_eq!(
        s.c.poll_at(),
        PollAt::At(s.t0 + secs(SNTP_RESOLVE_WAIT_SECS))
    );
    let mut addrs = heapless::Vec::new();
    for a in ["198.19.0.7", "0.0.0.0", "fd19::7", "224.0.0.1"] {
        addrs.push(ip(a)).unwrap();
    }
    let res = Resolution {
        addrs,
        ttl: Duration::ZERO,
    };
    // Case and a trailing dot do not matter.
    s.c.resolved(s.now, "NTP.lab.test.", Ok(&res));
    assert_eq!(s.c.poll_at(), PollAt::Now);
    // Both usable addresses silent, then B: each address is a server of its own.
    s.run(secs(40), &mut |to, r| {
        (to == sock(B)).then(|| r.to_bytes().to_vec())
    });
    assert_eq!(s.times_to("198.19.0.7").len(), 3);
    assert_eq!(s.times_to("fd19::7").len(), 3);
    assert_eq!(s.sent.len(), 6 + s.times_to(B).len());
    assert_eq!(s.syncs()[0].server, sock(B));
    // B fails too: the next pass asks for the name again only once its addresses are
    // SNTP_MIN_RESOLVE_TTL_SECS old.
    let mut resolves = vec![];
    for _ in 0..40 {
        let until = s.elapsed() + secs(30);
        s.run(until, &mut silent);
        while let Some(i) = s
            .events
            .iter()
            .position(|(_, e)| matches!(e, Event::Resolve(_)))
        {
            resolves.push(s.events.remove(i).0);
            s.c.resolved(s.now, "ntp.lab.test", Ok(&res));
        }
    }
    assert!(!resolves.is_empty());
    assert!(
        resolves
            .iter()
            .all(|t| *t >= secs(SNTP_MIN_RESOLVE_TTL_SECS)),
        "{resolves:?}"
    );
    assert!(
        gaps(&resolves)
            .iter()
            .all(|&g| g >= SNTP_MIN_RESOLVE_TTL_SECS),
        "{resolves:?}"
    );
}

#[test]
fn an_unresolvable_name_is_skipped() {
    // A failure: the next server at once.
    let mut s = Sim::new(&["ntp.lab.test", B]);
    s.step(&mut normal);
    s.c.resolved(s.now, "ntp.lab.test", Err(ResolveError::NxDomain));
    s.step(&mut normal);
    assert_eq!(s.sent.len(), 1);
    assert_eq!(s.sent[0].1.to, sock(B));
    // No answer from the owner in time: the same, after the wait.
    let mut s = Sim::new(&["ntp.lab.test", B]);
    s.run(secs(SNTP_RESOLVE_WAIT_SECS + 1), &mut normal);
    assert_eq!(s.times_to(B), vec![secs(SNTP_RESOLVE_WAIT_SECS)]);
    // An answer for a name that is not asked for changes nothing.
    let mut s = Sim::new(&[B]);
    s.c.resolved(s.now, "other.test", Err(ResolveError::Timeout));
    s.step(&mut normal);
    assert_eq!(s.syncs().len(), 1);
}

#[test]
fn the_first_server_is_tried_again_after_a_while() {
    let mut s = Sim::new(&[A, B]);
    s.run(secs(3 * 3600), &mut |to, r| {
        (to == sock(B)).then(|| r.to_bytes().to_vec())
    });
    let ta = s.times_to(A);
    // Tried at the start, then again after SNTP_PREFERRED_RECHECK_SECS (at B's next poll).
    assert!(ta.len() >= 6, "{ta:?}");
    let back = ta[3];
    assert!(
        back >= secs(SNTP_PREFERRED_RECHECK_SECS)
            && back <= secs(SNTP_PREFERRED_RECHECK_SECS + 1100),
        "{ta:?}"
    );
    // When it answers, it is used again.
    let mut s = Sim::new(&[A, B]);
    let mut asked_a = 0;
    s.run(secs(3 * 3600), &mut |to, r| {
        if to == sock(A) {
            asked_a += 1;
            if asked_a <= 3 {
                return None;
            }
        }
        Some(r.to_bytes().to_vec())
    });
    let last = (*s.syncs().last().unwrap()).clone();
    assert_eq!(last.server, sock(A));
    assert!(last.at - s.t0 >= secs(SNTP_PREFERRED_RECHECK_SECS));
}

/// A random reply, or a random edit of a good one.
fn arb_reply() -> impl Strategy<Value = (std::vec::Vec<u8>, u8, bool)> {
    (
        proptest::collection::vec(any::<u8>(), 0..60),
        any::<u8>(),
        any::<bool>(),
    )
}

proptest! {
    /// Whatever comes back, a measurement only ever comes out of a reply that passes every
    /// check.
    #[test]
    fn no_measurement_without_every_check(
        (mut bytes, edit, keep_origin) in arb_reply(),
        header_from_good in any::<bool>(),
    ) {
        let mut s = Sim::new(&[A]);
        let o = s.c.dispatch(s.now, s.wall()).unwrap();
        let req = parse(&o.bytes);
        if header_from_good && bytes.len() >= HEADER_LEN {
            // Keep most of a good reply; overwrite one byte.
            let good = s.good(&req, s.now).to_bytes();
            let at = usize::from(edit) % HEADER_LEN;
            let b = bytes[0];
            bytes[..HEADER_LEN].copy_from_slice(&good);
            bytes[at] = b;
        }
        if keep_origin && bytes.len() >= HEADER_LEN {
            bytes[24..32].copy_from_slice(&req.transmit_timestamp.to_bytes());
        }
        s.now += 2 * ONE_WAY + HOLD;
        let wall = s.wall();
        s.c.process(s.now, wall, sock(A), &bytes);
        s.drain();
        if let Some(m) = s.syncs().first() {
            let r = parse(&bytes);
            prop_assert_eq!(r.mode, Mode::Server);
            prop_assert!((3..=4).contains(&r.version));
            prop_assert!((1..16).contains(&r.stratum));
            prop_assert!(r.leap != Leap::Unsynchronized);
            prop_assert!(!r.transmit_timestamp.is_zero() && !r.receive_timestamp.is_zero());
            prop_assert_eq!(r.originate_timestamp, req.transmit_timestamp);
            prop_assert!(m.root_distance <= Duration::from_millis(SNTP_MAX_ROOT_DISTANCE_MS));
            prop_assert!(m.delay <= 2 * ONE_WAY + HOLD);
        }
    }

    /// Whatever two servers do, no address gets more than SNTP_TRIES requests in any 16 s,
    /// and nothing goes anywhere but port 123 of a listed server.
    #[test]
    fn never_asks_one_server_too_often(
        behaviours in proptest::collection::vec(0u8..14, 1..64),
    ) {
        let mut s = Sim::new(&[A, B]);
        let mut i = 0;
        s.run(secs(6 * 3600), &mut |_, mut r: Repr| {
            let b = behaviours[i % behaviours.len()];
            i += 1;
            match b {
                0 => return None,
                1 => { r.stratum = 0; r.reference_id = *b"RATE"; }
                2 => { r.stratum = 0; r.reference_id = *b"DENY"; }
                3 => r.leap = Leap::Unsynchronized,
                4 => r.poll = 0,
                5 => r.poll = 17,
                6 => r.originate_timestamp.0 ^= 1,
                7 => r.stratum = 16,
                8 => r.root_dispersion = Short(u32::MAX),
                9 => r.transmit_timestamp = Timestamp::ZERO,
                10 => return Some(vec![0; 12]),
                _ => {}
            }
            Some(r.to_bytes().to_vec())
        });
        for a in [A, B] {
            let t = s.times_to(a);
            for (k, start) in t.iter().enumerate() {
                let in_window = t[k..].iter().take_while(|x| **x < *start + secs(16)).count();
                prop_assert!(in_window <= SNTP_TRIES as usize, "{a}: {t:?}");
            }
        }
        prop_assert!(s.sent.iter().all(|(_, o)| o.to == sock(A) || o.to == sock(B)));
    }
}
