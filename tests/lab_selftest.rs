//! Self-test of the test lab (tests/lab/lab.sh + tests/common): needs root, not pathman.
mod common;

use common::*;
use std::time::Duration;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn lab_builds_serves_dhcp_injects_faults_and_cleans_up() {
    let lab = Lab::up(2, &[]);
    let id = lab.id.clone();
    assert_eq!(lab.ifname(1), "eth0");
    assert_eq!(lab.ifname(2), "eth1");

    let nss = lab_namespaces(&id);
    for ns in [lab.ns("dut"), lab.ns("1"), lab.ns("2")] {
        assert!(nss.contains(&ns), "namespace {ns} missing: {nss:?}");
    }
    assert!(!nss.contains(&lab.ns("inet")), "no --inet, yet {nss:?}");

    // dnsmasq answers DHCP on every upstream
    for k in 1..=2 {
        let ss = lab.exec_up(k, &["ss", "-Hlun", "sport = :67"]);
        assert!(
            !stdout(&ss).trim().is_empty(),
            "no DHCP server on upstream {k}"
        );
    }

    // DUT interfaces start DOWN, with the fixed MACs
    let link = lab.exec_ok(&["ip", "-o", "link", "show", "dev", "eth0"]);
    assert!(!link.contains("state UP"), "eth0 should start down: {link}");
    assert!(link.contains("02:50:4d:00:00:01"), "eth0 MAC: {link}");

    // bring eth0 up by hand: carrier, and a DHCP offer with the lab's options
    lab.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    wait_for(Duration::from_secs(5), "carrier on eth0", || {
        has_carrier(&lab, "eth0")
    });
    let probe = lab_script().with_file_name("probe.py");
    let offer = lab.exec_ok(&["python3", probe.to_str().unwrap(), "dhcp", "eth0", "5"]);
    for want in [
        "\"router\": \"198.18.1.1\"",
        "\"dns\": \"198.18.1.1\"",
        "\"ntp\": \"198.18.1.1\"",
        "\"domain\": \"up1.lab.test\"",
        "\"lease_s\": 3600",
        "\"yiaddr\": \"198.18.1.1",
    ] {
        assert!(offer.contains(want), "offer lacks {want}: {offer}");
    }
    // IPv6: the upstream's RA gives eth0 a SLAAC address in fd18:1::/64
    wait_for(Duration::from_secs(10), "SLAAC address on eth0", || {
        addrs6(&lab, "eth0")
            .iter()
            .any(|a| a.starts_with("fd18:1:"))
    });

    // carrier loss and return, as the DUT sees it
    lab.link(1, false);
    wait_for(Duration::from_secs(5), "carrier loss on eth0", || {
        !has_carrier(&lab, "eth0")
    });
    lab.link(1, true);
    wait_for(Duration::from_secs(5), "carrier back on eth0", || {
        has_carrier(&lab, "eth0")
    });

    // DHCP server stop/start
    lab.dhcp(2, false);
    assert!(stdout(&lab.exec_up(2, &["ss", "-Hlun", "sport = :67"]))
        .trim()
        .is_empty());
    lab.dhcp(2, true);
    assert!(!stdout(&lab.exec_up(2, &["ss", "-Hlun", "sport = :67"]))
        .trim()
        .is_empty());

    // the private bus, reachable from the DUT through DBUS_SYSTEM_BUS_ADDRESS
    lab.start_bus();
    let names = lab.exec_ok(&["busctl", "--system", "list", "--no-legend"]);
    assert!(names.contains("org.freedesktop.DBus"), "bus: {names}");
    let env = lab.exec_ok(&["printenv", "DBUS_SYSTEM_BUS_ADDRESS"]);
    assert_eq!(env.trim(), lab.bus_address());

    // every process the lab started, for the after-drop check
    let pids: Vec<u32> = std::fs::read_dir(lab.dir.join("pids"))
        .expect("pids dir")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    assert!(pids.len() >= 3, "expected dnsmasq x2 + dbus, got {pids:?}");
    assert!(pids.iter().all(|p| pid_alive(*p)));
    let dir = lab.dir.clone();

    drop(lab);
    assert!(
        lab_namespaces(&id).is_empty(),
        "namespaces left: {:?}",
        lab_namespaces(&id)
    );
    let left: Vec<u32> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    assert!(left.is_empty(), "lab processes still alive: {left:?}");
    assert!(!dir.exists(), "state dir left: {}", dir.display());
}

#[test]
fn lab_options_inet_rate_ifnames_no_ipv6() {
    let lab = Lab::up(
        2,
        &[
            "--inet",
            "--no-ipv6",
            "--rate",
            "20mbit",
            "--ifnames",
            "wan0,usb0",
        ],
    );
    assert_eq!(lab.ifname(1), "wan0");
    assert_eq!(lab.ifname(2), "usb0");
    assert!(lab_namespaces(&lab.id).contains(&lab.ns("inet")));
    let q = stdout(&lab.exec_up(1, &["tc", "qdisc", "show", "dev", "down0"]));
    assert!(q.contains("tbf") && q.contains("20Mbit"), "qdisc: {q}");
    // the internet server is reachable from upstream 1
    let get = lab.exec_up(
        1,
        &[
            "python3",
            "-c",
            "import urllib.request as u; print(u.urlopen('http://198.19.0.1/generate_204', timeout=3).status)",
        ],
    );
    assert_eq!(
        stdout(&get).trim(),
        "204",
        "HTTP server unreachable from upstream 1: {get:?}"
    );
    let a = stdout(&lab.exec_up(
        1,
        &[
            "ip", "-6", "addr", "show", "dev", "down0", "scope", "global",
        ],
    ));
    assert!(!a.contains("fd18:"), "--no-ipv6 but: {a}");
    // a second lab at the same time does not collide
    let other = Lab::up(1, &[]);
    assert_ne!(other.id, lab.id);
    assert!(lab_namespaces(&other.id).contains(&other.ns("dut")));
}
