//! The online checker on real sockets in the namespace lab: `Checker` + `ProbeSockets` under
//! `task::Handle` in the DUT netns, bound to the uplink's interface and source address (the
//! DUT has no default route in `main`: only a source rule to the uplink's table reaches the
//! internet). Black hole and recovery timing, and hostile HTTP servers. Root.

mod common;

use common::*;
use pathman::edge::probe::ProbeSockets;
use pathman::online::{Checker, Config, Event, Reason};
use pathman::task::Handle;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SOURCE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 150);
const LITERAL_URL: &str = "http://198.19.0.1/online/status.html";

/// Gives the DUT's eth0 198.18.1.150/24 and a source rule to table 300 whose default route
/// goes via upstream 1, as the daemon does for a service.
fn configure_dut(lab: &Lab) {
    let dev = lab.ifname(1).to_owned();
    for cmd in [
        vec!["ip", "link", "set", &dev, "up"],
        vec!["ip", "addr", "add", "198.18.1.150/24", "dev", &dev],
        vec![
            "ip",
            "route",
            "add",
            "default",
            "via",
            "198.18.1.1",
            "dev",
            &dev,
            "table",
            "300",
        ],
        vec![
            "ip",
            "rule",
            "add",
            "from",
            "198.18.1.150",
            "lookup",
            "300",
            "priority",
            "31300",
        ],
    ] {
        lab.exec_ok(&cmd);
    }
    assert!(
        !routes(lab, "main").iter().any(|r| r.starts_with("default")),
        "no default route in main: the source rule must do it"
    );
}

/// A checker running on a thread of its own inside the DUT netns.
struct Running {
    events: mpsc::Receiver<(Instant, Event)>,
    stop: smol::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    seen: Vec<(Instant, Event)>,
}

impl Running {
    fn start(lab: &Lab, config: Config) -> Running {
        let path = format!("/run/netns/{}", lab.ns("dut"));
        let ifname = lab.ifname(1).to_owned();
        let (tx, events) = mpsc::channel();
        let (stop, stop_rx) = smol::channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let f = File::open(&path).unwrap();
            // SAFETY: valid netns fd; only this thread changes namespace.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let c = std::ffi::CString::new(ifname.clone()).unwrap();
            // SAFETY: a valid C string.
            let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
            assert_ne!(ifindex, 0);
            let ex: &'static smol::LocalExecutor<'static> =
                Box::leak(Box::new(smol::LocalExecutor::new()));
            smol::block_on(ex.run(async {
                let sockets = ProbeSockets::new(&ifname, ifindex, SOURCE);
                let h = Handle::spawn(ex, Checker::new(config, 7), sockets, move |e| {
                    let ok = tx.send((Instant::now(), e)).is_ok();
                    async move { ok }
                });
                let _ = stop_rx.recv().await;
                h.stop(false).await;
            }));
        });
        Running {
            events,
            stop,
            thread: Some(thread),
            seen: vec![],
        }
    }

    /// Waits up to `timeout` for an event matching `f`; returns when it came.
    fn wait(&mut self, timeout: Duration, what: &str, f: impl Fn(&Event) -> bool) -> Instant {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((t, e)) => {
                    eprintln!("event: {e:?}");
                    self.seen.push((t, e));
                    if f(&e) {
                        return t;
                    }
                }
                Err(_) => panic!("no {what} within {timeout:?}; events: {:?}", self.seen),
            }
        }
    }

    /// Every event that comes within `d`.
    fn collect(&mut self, d: Duration) -> Vec<Event> {
        let end = Instant::now() + d;
        let mut v = vec![];
        while let Ok((t, e)) = self
            .events
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            self.seen.push((t, e));
            v.push(e);
        }
        v
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn http_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir.join("http-inet.log")).unwrap_or_default()
}

#[test]
fn black_hole_is_found_within_seconds_and_recovery_needs_the_http_check() {
    let lab = Lab::up_prefixed("ho", 1, &["--inet", "--no-ipv6"]);
    configure_dut(&lab);
    // The name, over the upstream's DNS through the bound UDP socket.
    let dns: IpAddr = "198.18.1.1".parse().unwrap();
    let config = Config::new("http://ipv4.connman.net/online/status.html", &[dns], false);
    let mut run = Running::start(&lab, config);
    run.wait(Duration::from_secs(15), "Online", |e| *e == Event::Online);
    // The check came from the uplink's source address, for the URL's host.
    let log = http_log(&lab);
    assert!(
        log.lines()
            .any(|l| l.starts_with("::ffff:198.18.1.150 online GET /online/status.html")),
        "responder log: {log}"
    );
    // Steady state for a few probe intervals: nothing happens.
    assert_eq!(run.collect(Duration::from_secs(5)), vec![]);

    let hole = Instant::now();
    lab.cmd("link", &["1", "blackhole"]);
    let off = run.wait(Duration::from_secs(10), "Offline", |e| {
        matches!(
            e,
            Event::Offline {
                reason: Reason::PingLost(_)
            }
        )
    });
    let took = off - hole;
    eprintln!("black hole → Offline in {took:?}");
    // Design worst case 3.25 s; lab.sh's own run time is in the measurement.
    assert!(took <= Duration::from_millis(4500), "{took:?}");

    // Down stays down (no flapping) while the hole lasts.
    assert_eq!(run.collect(Duration::from_secs(4)), vec![]);

    let back = Instant::now();
    assert!(lab.cmd("link", &["1", "restore"]).status.success());
    let on = run.wait(Duration::from_secs(12), "Online again", |e| {
        *e == Event::Online
    });
    let took = on - back;
    eprintln!("Internet back → Online in {took:?}");
    assert!(took <= Duration::from_secs(8), "{took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "three answers first: {took:?}"
    );
    assert_eq!(run.collect(Duration::from_secs(4)), vec![]);
}

#[test]
fn hostile_http_servers_fail_the_check_in_bounded_time() {
    let lab = Lab::up_prefixed("ho", 1, &["--inet", "--no-ipv6"]);
    configure_dut(&lab);
    for mode in ["hang", "huge", "garbage"] {
        lab_sh_ok(&["http", &lab.id, mode]);
        let t0 = Instant::now();
        let mut run = Running::start(&lab, Config::new(LITERAL_URL, &[], false));
        let t = run.wait(Duration::from_secs(10), "a failed check", |e| {
            matches!(e, Event::Offline { .. })
        });
        eprintln!("{mode}: failed check after {:?}: {:?}", t - t0, run.seen);
        // ONLINE_HTTP_TIMEOUT_MS bounds every exchange.
        assert!(t - t0 <= Duration::from_secs(6), "{mode}: {:?}", t - t0);
        let later = run.collect(Duration::from_secs(3));
        assert!(!later.contains(&Event::Online), "{mode}: {later:?}");
        assert!(
            http_log(&lab).contains("198.18.1.150"),
            "{mode}: the request reached the server"
        );
        drop(run);
    }
}

#[test]
fn portal_and_redirect_are_not_online() {
    let lab = Lab::up_prefixed("ho", 1, &["--inet", "--no-ipv6"]);
    configure_dut(&lab);
    for (mode, status) in [("portal", 200), ("redirect", 302)] {
        lab_sh_ok(&["http", &lab.id, mode]);
        let mut run = Running::start(&lab, Config::new(LITERAL_URL, &[], false));
        run.wait(Duration::from_secs(10), "Portal", |e| {
            *e == Event::Portal { status }
        });
        let later = run.collect(Duration::from_secs(3));
        assert!(!later.contains(&Event::Online), "{mode}: {later:?}");
    }
    // And back to a working server: online.
    lab_sh_ok(&["http", &lab.id, "online"]);
    let mut run = Running::start(&lab, Config::new(LITERAL_URL, &[], false));
    run.wait(Duration::from_secs(10), "Online", |e| *e == Event::Online);
}
