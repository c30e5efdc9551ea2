//! Leases that must never reach the kernel (issue 7): pathman in the lab against real
//! dnsmasq made to send bad options, and against `tests/lab/hostile_dhcp.py` (a stand-in,
//! first shown to hand out a normal lease) for what dnsmasq cannot be made to send. Every
//! check looks at the DUT kernel (addresses, routes in every table), resolv.conf, the
//! servers' own logs, and that pathman is alive and said why.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Generous: the machine is shared with other builds and labs.
const T: Duration = Duration::from_secs(30);
const SERVICE: &str = "ethernet_02504d000001_cable";
const DUT_MAC: &str = "02:50:4d:00:00:01";

fn lab(n: usize, opts: &[&str]) -> Lab {
    let lab = Lab::up(n, opts);
    lab.start_bus();
    lab
}

fn start(lab: &Lab, args: &[&str]) {
    lab.start_daemon(args);
    lab.wait_name("net.connman", T);
}

fn ok(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replaces upstream k's dnsmasq by the stand-in server with `args`.
fn standin(lab: &Lab, k: usize, args: &[&str]) {
    let ks = k.to_string();
    let mut a = vec![ks.as_str(), "start"];
    a.extend_from_slice(args);
    ok(lab.cmd("standin", &a), "lab.sh standin");
}

/// Restarts upstream k's dnsmasq with `lines` added to its configuration.
fn dnsmasq_conf(lab: &Lab, k: usize, lines: &[&str]) {
    let ks = k.to_string();
    let mut a = vec![ks.as_str()];
    a.extend_from_slice(lines);
    ok(lab.cmd("dnsmasq-conf", &a), "lab.sh dnsmasq-conf");
}

fn standin_log(lab: &Lab, k: usize) -> String {
    std::fs::read_to_string(lab.dir.join(format!("up{k}/standin.log"))).unwrap_or_default()
}

fn dnsmasq_log(lab: &Lab, k: usize) -> String {
    std::fs::read_to_string(lab.dir.join(format!("up{k}/dnsmasq.log"))).unwrap_or_default()
}

/// (seconds, message type) of every message the stand-in received.
fn received(lab: &Lab, k: usize) -> Vec<(f64, String)> {
    standin_log(lab, k)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let t = w.next()?.parse().ok()?;
            (w.next()? == "recv").then_some(())?;
            Some((t, w.next()?.to_owned()))
        })
        .collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Every IPv4 address and route (all tables) of the lab's interfaces, and every rule, in
/// the DUT that names `addr` as a whole token (the DUT's own loopback is left out).
fn kernel_mentions(lab: &Lab, addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (cmd, per_interface) in [
        (&["ip", "-4", "-o", "addr", "show"][..], true),
        (&["ip", "-4", "route", "show", "table", "all"], true),
        (&["ip", "-4", "rule", "show"], false),
    ] {
        for l in lab.exec_ok(cmd).lines() {
            let words: Vec<&str> = l
                .split(|c: char| c.is_whitespace() || c == '/' || c == ':')
                .collect();
            let ours = !per_interface || lab.ifnames.iter().any(|i| words.contains(&i.as_str()));
            if ours && words.contains(&addr) {
                out.push(l.to_owned());
            }
        }
    }
    out
}

fn assert_alive(lab: &Lab) {
    let pid = lab.daemon_pid().expect("pathman is running");
    assert!(pid_alive(pid), "pathman died\n{}", lab.daemon_log());
}

/// Waits for the daemon log to hold `line` once more than `before` times.
fn wait_log(lab: &Lab, line: &str, before: usize) {
    lab.wait_for(T, &format!("log line `{line}`"), || {
        count(&lab.daemon_log(), line) > before
    });
}

#[test]
fn standin_server_hands_out_a_normal_lease() {
    let lab = lab(1, &["--no-ipv6"]);
    standin(&lab, 1, &[]);
    start(&lab, &[]);
    lab.wait_for(T, "198.18.1.150/24 on eth0", || {
        addrs4(&lab, "eth0") == ["198.18.1.150/24"]
    });
    lab.wait_for(T, "default route via the stand-in", || {
        routes(&lab, "main")
            .iter()
            .any(|r| r.starts_with("default via 198.18.1.1 dev eth0"))
    });
    lab.wait_for(T, "resolv.conf from the stand-in's lease", || {
        lab.resolv_conf().contains("nameserver 198.18.1.1")
    });
    let got: Vec<String> = received(&lab, 1).into_iter().map(|(_, m)| m).collect();
    assert_eq!(got, ["DISCOVER", "REQUEST"], "{}", standin_log(&lab, 1));
}

#[test]
fn hostile_addresses_and_masks_never_reach_the_kernel() {
    let lab = lab(1, &["--no-ipv6"]);
    // (stand-in arguments, address that must not appear, message refused, reason logged)
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["--yiaddr", "127.0.0.1"],
            "127.0.0.1",
            "OFFER",
            "address 127.0.0.1 is loopback",
        ),
        (
            &["--yiaddr", "240.0.0.1"],
            "240.0.0.1",
            "OFFER",
            "address 240.0.0.1 is reserved",
        ),
        (
            &["--yiaddr", "255.255.255.255"],
            "255.255.255.255",
            "OFFER",
            "address 255.255.255.255 is reserved",
        ),
        (
            &["--yiaddr", "0.1.2.3"],
            "0.1.2.3",
            "OFFER",
            "address 0.1.2.3 is in 0.0.0.0/8",
        ),
        (
            &["--yiaddr", "169.254.1.1"],
            "169.254.1.1",
            "OFFER",
            "address 169.254.1.1 is link-local",
        ),
        (
            &["--yiaddr", "224.0.0.1"],
            "224.0.0.1",
            "OFFER",
            "address 224.0.0.1 is multicast",
        ),
        (
            &["--yiaddr", "198.18.1.0"],
            "198.18.1.0",
            "OFFER",
            "address 198.18.1.0 is the network address of its /24",
        ),
        (
            &["--yiaddr", "198.18.1.255"],
            "198.18.1.255",
            "OFFER",
            "address 198.18.1.255 is the broadcast address of its /24",
        ),
        (
            &["--yiaddr", "198.18.1.1"],
            "198.18.1.1",
            "OFFER",
            "address 198.18.1.1 is the server's own",
        ),
        (
            &["--ack-yiaddr", "127.0.0.1"],
            "127.0.0.1",
            "ACK",
            "address 127.0.0.1 is loopback",
        ),
        (
            &["--mask", "255.0.255.0"],
            "198.18.1.150",
            "OFFER",
            "subnet mask 255.0.255.0 is not contiguous",
        ),
        (
            &["--mask", "0.0.0.0"],
            "198.18.1.150",
            "OFFER",
            "subnet mask /0 is shorter than /8",
        ),
        (&["--mask", "none"], "198.18.1.150", "ACK", "no subnet mask"),
        (
            &["--lease", "0"],
            "198.18.1.150",
            "ACK",
            "zero or missing lease time",
        ),
    ];
    for (args, bad, phase, why) in cases {
        let line = format!("eth0: DHCP {phase} from 198.18.1.1 rejected: {why}");
        let before = count(&lab.daemon_log(), &line);
        standin(&lab, 1, args);
        start(&lab, &[]);
        wait_log(&lab, &line, before);
        // The stand-in was answered and answered back: the lease was seen and refused.
        assert!(
            received(&lab, 1).iter().any(|(_, m)| m == "DISCOVER"),
            "{args:?}: {}",
            standin_log(&lab, 1)
        );
        let seen = kernel_mentions(&lab, bad);
        assert!(
            seen.is_empty(),
            "{args:?}: {bad} reached the kernel: {seen:?}"
        );
        assert_alive(&lab);
    }
}

#[test]
fn bad_routers_from_dnsmasq_are_not_used_and_the_lease_is_kept() {
    let lab = lab(1, &["--no-ipv6"]);
    let reserve = format!("dhcp-host={DUT_MAC},198.18.1.50");
    for (router, why) in [
        ("198.18.1.50", "our own address"),
        ("255.255.255.255", "reserved"),
        ("224.0.0.1", "multicast"),
        ("127.0.0.1", "loopback"),
        ("240.0.0.1", "reserved"),
        ("10.1.2.3", "not on the leased subnet"),
        ("198.18.1.255", "the subnet's network or broadcast address"),
    ] {
        lab.stop_daemon();
        ok(lab.cmd("reset", &[]), "lab.sh reset");
        let opt = format!("dhcp-option=3,{router}");
        dnsmasq_conf(&lab, 1, &[&reserve, &opt]);
        let line = format!("eth0: DHCP router {router} not used: {why}");
        let before = count(&lab.daemon_log(), &line);
        start(&lab, &[]);
        lab.wait_for(T, "the reserved lease on eth0", || {
            addrs4(&lab, "eth0") == ["198.18.1.50/24"]
        });
        wait_log(&lab, &line, before);
        let via: Vec<String> = kernel_mentions(&lab, router)
            .into_iter()
            .filter(|l| l.contains("via"))
            .collect();
        assert!(via.is_empty(), "route via {router}: {via:?}");
        let svc = lab.exec_ok(&["connmanctl", "services", SERVICE]);
        assert!(
            !svc.contains(&format!("Gateway={router}")),
            "{router} shown as gateway: {svc}"
        );
        // A lone service without a usable router keeps a device route (link-local LANs).
        lab.wait_for(T, "a device default route", || {
            routes(&lab, "main")
                .iter()
                .any(|r| r.starts_with("default dev eth0"))
        });
        assert_alive(&lab);
    }
}

#[test]
fn junk_servers_are_dropped_and_a_split_domain_is_whole() {
    let lab = lab(1, &["--no-ipv6"]);
    standin(
        &lab,
        1,
        &[
            "--dns",
            "0.0.0.0,127.0.0.1,224.0.0.251,255.255.255.255,240.0.0.1,198.18.1.1",
            "--ntp",
            "0.0.0.0,127.0.0.1,239.1.1.1,198.18.1.1",
            // "lab." and "example" as two option-15 instances (RFC 3396).
            "--option",
            "15=6c61622e",
            "--option",
            "15=6578616d706c65",
        ],
    );
    start(&lab, &[]);
    lab.wait_for(T, "the stand-in's lease on eth0", || {
        addrs4(&lab, "eth0") == ["198.18.1.150/24"]
    });
    lab.wait_for(T, "resolv.conf with the lease's servers", || {
        lab.resolv_conf().contains("nameserver")
    });
    let resolv = lab.resolv_conf();
    let ns: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(ns, ["nameserver 198.18.1.1"], "{resolv}");
    assert!(
        resolv.lines().any(|l| l == "search lab.example"),
        "{resolv}"
    );
    let svc = lab.exec_ok(&["connmanctl", "services", SERVICE]);
    let ts = svc
        .lines()
        .find(|l| l.trim_start().starts_with("Timeservers ="))
        .unwrap_or_default();
    assert!(ts.contains("198.18.1.1"), "{svc}");
    for junk in ["0.0.0.0", "127.0.0.1", "239.1.1.1"] {
        assert!(!ts.contains(junk), "{junk} kept as timeserver: {ts}");
    }
    let log = lab.daemon_log();
    assert!(
        log.contains("eth0: DHCP DNS server 127.0.0.1 dropped: loopback"),
        "{log}"
    );
    assert!(
        log.contains("eth0: DHCP NTP server 0.0.0.0 dropped"),
        "{log}"
    );
    assert_alive(&lab);
}

#[test]
fn slash32_lease_reaches_the_internet_through_an_on_link_gateway() {
    let lab = lab(1, &["--no-ipv6", "--inet"]);
    dnsmasq_conf(&lab, 1, &["dhcp-option=1,255.255.255.255"]);
    start(&lab, &[]);
    lab.wait_for(T, "a /32 lease on eth0", || {
        addrs4(&lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1.") && a.ends_with("/32"))
    });
    lab.wait_for(T, "host route and default route via the gateway", || {
        let r = routes(&lab, "main");
        r.iter()
            .any(|l| l.starts_with("198.18.1.1 dev eth0 proto 196 scope link"))
            && r.iter()
                .any(|l| l.starts_with("default via 198.18.1.1 dev eth0"))
    });
    // The default route carries traffic: the lab's web server behind the upstream.
    lab.wait_for(T, "HTTP to 198.19.0.1 through the /32 uplink", || {
        lab.exec(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "3",
            "http://198.19.0.1/",
        ])
        .status
        .success()
    });
}

#[test]
fn one_second_leases_renew_at_the_floor_not_in_a_loop() {
    let lab = lab(1, &["--no-ipv6"]);
    standin(&lab, 1, &["--lease", "1", "--t1", "1", "--t2", "1"]);
    start(&lab, &[]);
    lab.wait_for(T, "the 1 s lease on eth0", || {
        addrs4(&lab, "eth0") == ["198.18.1.150/24"]
    });
    // The first renewal comes at T1 of the floored lease (30 s), not at once.
    lab.wait_for(Duration::from_secs(90), "the first renewal", || {
        received(&lab, 1)
            .iter()
            .filter(|(_, m)| m == "REQUEST")
            .count()
            >= 2
    });
    let got = received(&lab, 1);
    let requests: Vec<f64> = got
        .iter()
        .filter(|(_, m)| m == "REQUEST")
        .map(|(t, _)| *t)
        .collect();
    assert!(requests.len() <= 3, "renewing in a loop: {got:?}");
    assert!(
        requests[1] - requests[0] >= 25.0,
        "renewed after {} s: {got:?}",
        requests[1] - requests[0]
    );
    assert!(!addrs4(&lab, "eth0").is_empty(), "lease dropped");
    assert!(lab
        .daemon_log()
        .contains("eth0: DHCP lease time 1 s raised to 60 s"));
    assert_alive(&lab);
}

#[test]
fn a_server_that_naks_everything_is_retried_with_backoff() {
    let lab = lab(1, &["--no-ipv6"]);
    standin(&lab, 1, &["--nak"]);
    start(&lab, &[]);
    lab.wait_for(Duration::from_secs(90), "four NAKed REQUESTs", || {
        received(&lab, 1)
            .iter()
            .filter(|(_, m)| m == "REQUEST")
            .count()
            >= 4
    });
    let got = received(&lab, 1);
    let requests: Vec<f64> = got
        .iter()
        .filter(|(_, m)| m == "REQUEST")
        .map(|(t, _)| *t)
        .collect();
    assert!(requests.len() <= 6, "NAK loop: {} requests", requests.len());
    // The first NAK restarts at once; then 4 s, then 8 s.
    assert!(requests[2] - requests[1] >= 3.5, "{requests:?}");
    assert!(requests[3] - requests[2] >= 7.5, "{requests:?}");
    assert!(lab
        .daemon_log()
        .contains("eth0: NAK 2 in a row from 198.18.1.1"));
    assert!(kernel_mentions(&lab, "198.18.1.150").is_empty());
    assert_alive(&lab);
}

/// `ip -o monitor address` in the DUT, its output collected by a thread.
struct AddressMonitor {
    child: std::process::Child,
    out: Arc<Mutex<String>>,
}

impl AddressMonitor {
    fn start(lab: &Lab) -> AddressMonitor {
        let mut child = Command::new(lab_script())
            .args([
                "exec", &lab.id, "stdbuf", "-oL", "ip", "-o", "monitor", "address",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("ip monitor");
        let out = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("monitor stdout");
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut o = sink.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
        let m = AddressMonitor { child, out };
        // Subscribed once it reports a change made after it started.
        lab.wait_for(T, "address monitor subscribed", || {
            lab.exec_ok(&["ip", "addr", "replace", "192.0.2.7/32", "dev", "lo"]);
            lab.exec_ok(&["ip", "addr", "del", "192.0.2.7/32", "dev", "lo"]);
            m.seen().contains("192.0.2.7")
        });
        m
    }

    fn seen(&self) -> String {
        self.out.lock().unwrap().clone()
    }
}

impl Drop for AddressMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_address_another_host_holds_is_declined_and_never_configured() {
    let lab = lab(1, &["--no-ipv6"]);
    // Another host on the upstream link (its router, here) already has 198.18.1.50, and
    // dnsmasq has a fixed reservation of it for the DUT.
    ok(
        lab.exec_up(1, &["ip", "addr", "add", "198.18.1.50/32", "dev", "down0"]),
        "squat 198.18.1.50",
    );
    let reserve = format!("dhcp-host={DUT_MAC},198.18.1.50");
    // Replies by broadcast: unicast to 198.18.1.50 would stay on the upstream, which holds it.
    dnsmasq_conf(&lab, 1, &[&reserve, "dhcp-broadcast"]);
    let monitor = AddressMonitor::start(&lab);
    start(&lab, &[]);
    lab.wait_for(T, "dnsmasq sees the DHCPDECLINE", || {
        dnsmasq_log(&lab, 1).contains("DHCPDECLINE(down0) 198.18.1.50")
    });
    let declined = Instant::now();
    wait_log(&lab, "eth0: 198.18.1.50 is in use by 02:50:4d:01:00:01", 0);
    // RFC 2131: at least 10 s, then a fresh DISCOVER gets another address.
    lab.wait_for(Duration::from_secs(60), "another address on eth0", || {
        addrs4(&lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1.") && a != "198.18.1.50/24")
    });
    assert!(
        declined.elapsed() >= Duration::from_secs(8),
        "restarted {:?} after the DECLINE",
        declined.elapsed()
    );
    assert!(kernel_mentions(&lab, "198.18.1.50")
        .iter()
        .all(|l| !l.contains("eth0")));
    let seen = monitor.seen();
    drop(monitor);
    assert!(
        !seen.contains("198.18.1.50"),
        "198.18.1.50 was on the DUT at some point:\n{seen}"
    );
    assert_alive(&lab);

    // With AddressConflictDetection=false the same reservation is taken as is (so the
    // conflict above was real, and the key works).
    lab.stop_daemon();
    ok(lab.cmd("reset", &[]), "lab.sh reset");
    // A restart also forgets the DECLINE.
    dnsmasq_conf(&lab, 1, &[&reserve, "dhcp-broadcast"]);
    let conf = lab.dir.join("acd-off.conf");
    std::fs::write(&conf, "[General]\nAddressConflictDetection=false\n").unwrap();
    start(&lab, &["-c", conf.to_str().unwrap()]);
    lab.wait_for(T, "198.18.1.50 on eth0 without the probe", || {
        addrs4(&lab, "eth0") == ["198.18.1.50/24"]
    });
}

#[test]
fn a_weak_uplink_never_takes_the_default_route_from_a_real_one() {
    let lab = lab(2, &["--no-ipv6"]);
    // Upstream 1 leases addresses but names no router.
    dnsmasq_conf(&lab, 1, &["dhcp-option=3"]);
    start(&lab, &[]);
    lab.wait_for(T, "both uplinks have an address", || {
        !addrs4(&lab, "eth0").is_empty() && !addrs4(&lab, "eth1").is_empty()
    });
    lab.wait_for(T, "a default route via eth1's gateway", || {
        routes(&lab, "main")
            .iter()
            .any(|r| r.starts_with("default via 198.18.2.1 dev eth1"))
    });
    let defaults: Vec<String> = routes(&lab, "main")
        .into_iter()
        .filter(|r| r.starts_with("default"))
        .collect();
    assert_eq!(defaults.len(), 1, "{defaults:?}");
    assert!(
        routes(&lab, "main")
            .iter()
            .any(|r| r.starts_with("198.18.1.0/24 dev eth0")),
        "the weak uplink keeps its subnet route"
    );
    let first = &services(&lab)[0];
    assert_eq!(first.2, "ethernet_02504d000002_cable", "default service");
    assert!(lab.resolv_conf().contains("nameserver 198.18.2.1"));
    // Alone, the weak uplink keeps a device default route (a LAN without router).
    lab.link(2, false);
    lab.wait_for(T, "default dev eth0 once eth1 is gone", || {
        let d: Vec<String> = routes(&lab, "main")
            .into_iter()
            .filter(|r| r.starts_with("default"))
            .collect();
        d.len() == 1 && d[0].starts_with("default dev eth0")
    });
}
