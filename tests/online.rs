//! The online check in the daemon (issue 8): every connected uplink is checked on its own
//! path against the lab's HTTP responder (ConnMan's check URL resolves to it through each
//! upstream's dnsmasq), and a black-holed Internet behind a live link (the upstream drops
//! what it forwards; its DHCP and DNS keep answering) moves the service to ready, the
//! default route to the other uplink and its MPTCP endpoint to `backup`, and back when the
//! Internet returns. Checked in the kernel (routes, endpoints, `ip route get`), on the wire
//! (the HTTP responder's log of who asked) and through Debian's connmanctl.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);
const SVC1: &str = "ethernet_02504d000001_cable";
const SVC2: &str = "ethernet_02504d000002_cable";

fn lab(n: usize) -> Lab {
    let lab = Lab::up(n, &["--inet", "--no-ipv6"]);
    lab.start_bus();
    lab
}

fn start(lab: &Lab, args: &[&str]) {
    lab.start_daemon(args);
    lab.wait_name("net.connman", T);
}

/// connmanctl's state letter for `id`.
fn state(lab: &Lab, id: &str) -> Option<char> {
    services(lab)
        .into_iter()
        .find(|(_, _, i)| i == id)
        .and_then(|(f, _, _)| state_flag(&f))
}

fn endpoint_flags(lab: &Lab, addr_prefix: &str) -> Option<String> {
    let out = lab.exec_ok(&["ip", "mptcp", "endpoint", "show"]);
    out.lines()
        .find(|l| l.starts_with(addr_prefix))
        .map(str::to_owned)
}

fn route_dev(lab: &Lab, dst: &str) -> String {
    lab.exec_ok(&["ip", "route", "get", dst])
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

fn http_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir.join("http-inet.log")).unwrap_or_default()
}

fn lab_cmd(lab: &Lab, sub: &str, args: &[&str]) {
    let out = lab.cmd(sub, args);
    assert!(
        out.status.success(),
        "lab.sh {sub} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_black_holed_internet_moves_the_default_route_and_mptcp_to_the_other_uplink() {
    let lab = lab(2);
    start(&lab, &["--mpathrouting"]);
    lab.wait_for(T, "both uplinks online", || {
        state(&lab, SVC1) == Some('O') && state(&lab, SVC2) == Some('O')
    });
    // Each uplink was checked from its own address.
    let log = http_log(&lab);
    assert!(
        log.contains("198.18.1.") && log.contains("198.18.2."),
        "{log}"
    );
    assert_eq!(route_dev(&lab, "198.19.0.1"), "eth0");
    lab.wait_for(T, "two non-backup endpoints", || {
        endpoint_flags(&lab, "198.18.1.").is_some_and(|l| !l.contains("backup"))
            && endpoint_flags(&lab, "198.18.2.").is_some_and(|l| !l.contains("backup"))
    });

    lab_cmd(&lab, "link", &["1", "blackhole"]);
    lab.wait_for(T, "eth0's service back to ready", || {
        state(&lab, SVC1) == Some('R')
    });
    assert_eq!(state(&lab, SVC2), Some('O'));
    assert_eq!(
        route_dev(&lab, "198.19.0.1"),
        "eth1",
        "the default route moved"
    );
    assert_eq!(default_devs(&lab).first().map(String::as_str), Some("eth1"));
    let ep = endpoint_flags(&lab, "198.18.1.").expect("eth0 keeps its endpoint");
    assert!(ep.contains("backup"), "{ep}");
    let ep2 = endpoint_flags(&lab, "198.18.2.").unwrap();
    assert!(!ep2.contains("backup"), "{ep2}");
    // Traffic really gets out by the other uplink.
    lab.exec_ok(&[
        "curl",
        "-sf",
        "--max-time",
        "5",
        "http://198.19.0.1/pathman-test",
    ]);
    let asked = http_log(&lab)
        .lines()
        .rev()
        .find(|l| l.contains("pathman-test"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(asked.contains("198.18.2."), "{asked}");
    // The link itself stayed up: the address and DHCP are untouched.
    assert!(addrs4(&lab, "eth0")
        .iter()
        .any(|a| a.starts_with("198.18.1.")));

    lab_cmd(&lab, "link", &["1", "restore"]);
    lab.wait_for(T, "eth0's service online again", || {
        state(&lab, SVC1) == Some('O')
    });
    lab.wait_for(T, "the default route back on eth0", || {
        route_dev(&lab, "198.19.0.1") == "eth0"
    });
    lab.wait_for(T, "eth0's endpoint no longer backup", || {
        endpoint_flags(&lab, "198.18.1.").is_some_and(|l| !l.contains("backup"))
    });
}

#[test]
fn online_check_mode_none_leaves_services_ready_and_sends_nothing() {
    let lab = lab(1);
    let conf = lab.dir.join("no-check.conf");
    std::fs::write(&conf, "[General]\nOnlineCheckMode=none\n").unwrap();
    start(&lab, &["-c", conf.to_str().unwrap()]);
    lab.wait_for(T, "the service ready", || state(&lab, SVC1) == Some('R'));
    // A check would have come within a second (it does in the other tests); give it three.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&lab, SVC1), Some('R'));
    assert_eq!(
        http_log(&lab).lines().filter(|l| l.contains("GET")).count(),
        0
    );
    assert!(!lab.daemon_log().contains("online check from"));
}

#[test]
fn a_portal_or_a_hostile_check_server_keeps_the_service_ready() {
    let lab = lab(1);
    for mode in ["portal", "garbage", "huge", "hang"] {
        lab_cmd(&lab, "http", &[mode]);
        let before = http_log(&lab).lines().count();
        start(&lab, &[]);
        lab.wait_for(T, &format!("{mode}: the check server was asked"), || {
            http_log(&lab).lines().count() > before
        });
        lab.wait_for(T, &format!("{mode}: the check failed"), || {
            lab.daemon_log()
                .lines()
                .rev()
                .take_while(|l| !l.starts_with("=== pathman start"))
                .any(|l| l.contains("online check:"))
        });
        assert_eq!(state(&lab, SVC1), Some('R'), "{mode}");
        // The daemon still answers at once: the check never blocks the loop.
        let out = lab.ctl(&["state"]);
        assert!(out.status.success(), "{mode}: pathmanctl state failed");
        lab.stop_daemon();
    }
    lab_cmd(&lab, "http", &["online"]);
    start(&lab, &[]);
    lab.wait_for(T, "online with a good server", || {
        state(&lab, SVC1) == Some('O')
    });
}
