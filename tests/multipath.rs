//! Multipath routing and MPTCP endpoints (SPEC §4), end to end in the lab:
//! per-uplink tables and source rules, endpoints in the kernel's path
//! manager that follow the services, and a single MPTCP connection that
//! really uses both uplinks.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(15);

fn endpoints(lab: &Lab) -> Vec<String> {
    lab.exec_ok(&["ip", "mptcp", "endpoint", "show"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn endpoint_of<'a>(eps: &'a [String], addr: &str) -> Option<&'a String> {
    eps.iter().find(|e| e.starts_with(&format!("{addr} ")))
}

fn v4(lab: &Lab, dev: &str) -> String {
    addrs4(lab, dev)
        .first()
        .and_then(|a| a.split('/').next())
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Bytes received + sent on a DUT interface.
fn bytes(lab: &Lab, dev: &str) -> u64 {
    let read = |what: &str| -> u64 {
        lab.exec_ok(&["cat", &format!("/sys/class/net/{dev}/statistics/{what}")])
            .trim()
            .parse()
            .unwrap_or(0)
    };
    read("rx_bytes") + read("tx_bytes")
}

/// An MPTCP iperf3 server on the lab internet (port 5201); returns once it listens.
fn iperf_server(lab: &Lab) -> std::process::Child {
    let inet = lab.ns("inet");
    let server = std::process::Command::new("ip")
        .args([
            "netns", "exec", &inet, "mptcpize", "run", "iperf3", "-s", "-p", "5201",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 server");
    lab.wait_for(T, "iperf3 server listening", || {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &inet, "ss", "-HlnM", "sport = :5201"])
            .output()
            .expect("ss");
        !out.stdout.is_empty()
    });
    server
}

fn nstat(lab: &Lab, counter: &str) -> u64 {
    lab.exec_ok(&["nstat", "-az", counter])
        .lines()
        .find(|l| l.starts_with(counter))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn endpoints_follow_services_flags_and_carrier() {
    let lab = Lab::up(3, &[]);
    lab.start_bus();
    // eth2 is not managed: an endpoint there is someone else's.
    lab.exec_ok(&["ip", "link", "set", "eth2", "up"]);
    lab.exec_ok(&["ip", "addr", "add", "192.0.2.9/24", "dev", "eth2"]);
    lab.exec_ok(&[
        "ip",
        "mptcp",
        "endpoint",
        "add",
        "192.0.2.9",
        "dev",
        "eth2",
        "signal",
    ]);
    // A leftover of a crashed pathman on a managed interface.
    lab.exec_ok(&[
        "ip",
        "mptcp",
        "endpoint",
        "add",
        "10.99.0.1",
        "dev",
        "eth1",
        "subflow",
    ]);
    lab.start_daemon(&["-M", "-i", "eth0,eth1"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "IPv4 on eth0 and eth1", || {
        !v4(&lab, "eth0").is_empty() && !v4(&lab, "eth1").is_empty()
    });
    let (a0, a1) = (v4(&lab, "eth0"), v4(&lab, "eth1"));
    lab.wait_for(T, "subflow endpoints for both uplinks", || {
        let eps = endpoints(&lab);
        endpoint_of(&eps, &a0).is_some_and(|e| e.contains("subflow") && e.contains("dev eth0"))
            && endpoint_of(&eps, &a1)
                .is_some_and(|e| e.contains("subflow") && e.contains("dev eth1"))
    });
    let eps = endpoints(&lab);
    assert!(
        endpoint_of(&eps, "10.99.0.1").is_none(),
        "leftover removed: {eps:?}"
    );
    assert!(
        endpoint_of(&eps, "192.0.2.9").is_some(),
        "unmanaged endpoint kept: {eps:?}"
    );
    // Limits follow the number of endpoints (v4 + SLAAC v6 of two uplinks).
    lab.wait_for(T, "v6 endpoints too", || endpoints(&lab).len() == 5);
    let limits = lab.exec_ok(&["ip", "mptcp", "limits", "show"]);
    assert!(
        limits.contains("subflows 4") && limits.contains("add_addr_accepted 4"),
        "{limits}"
    );

    // backup: same endpoint id, backup flag (SET_FLAGS, not a re-add).
    let id_of = |eps: &[String], a: &str| {
        endpoint_of(eps, a)
            .and_then(|e| e.split(" id ").nth(1))
            .and_then(|r| r.split(' ').next())
            .map(str::to_owned)
    };
    let id1 = id_of(&endpoints(&lab), &a1).expect("eth1's endpoint id");
    let sid = "ethernet_02504d000002_cable";
    let out = lab.ctl(&["config", sid, "--mpath_tcp_link", "backup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.wait_for(T, "backup flag on eth1's endpoint", || {
        endpoint_of(&endpoints(&lab), &a1).is_some_and(|e| e.contains("backup"))
    });
    assert_eq!(
        id_of(&endpoints(&lab), &a1).as_deref(),
        Some(id1.as_str()),
        "flags changed in place"
    );
    let shown = String::from_utf8_lossy(&lab.ctl(&["services", sid]).stdout).to_string();
    assert!(
        shown.contains("MultipathTcpLink = backup") && shown.contains("MultipathRouting = True"),
        "{shown}"
    );
    let settings = std::fs::read_to_string(lab.state_dir().join(sid).join("settings")).unwrap();
    assert!(settings.contains("MultipathTcpLink=backup"), "{settings}");

    // off: no endpoint for that service; routing stays.
    lab.ctl(&["config", sid, "--mpath_tcp_link", "off"]);
    lab.wait_for(T, "eth1's endpoints gone", || {
        !endpoints(&lab).iter().any(|e| e.contains("dev eth1"))
    });
    assert!(rules(&lab)
        .iter()
        .any(|r| r.contains(&format!("from {a1} lookup"))));

    // Carrier loss: endpoint, rule and table of eth0 go; they return with it.
    let table0 = (255 + ifindex(&lab, "eth0")).to_string();
    lab.link(1, false);
    lab.wait_for(T, "eth0's endpoint, rule and table gone", || {
        endpoint_of(&endpoints(&lab), &a0).is_none()
            && routes(&lab, &table0).is_empty()
            && !rules(&lab)
                .iter()
                .any(|r| r.contains(&format!("lookup {table0}")))
    });
    lab.link(1, true);
    lab.wait_for(T, "eth0's endpoint, rule and table back", || {
        let a = v4(&lab, "eth0");
        !a.is_empty()
            && endpoint_of(&endpoints(&lab), &a).is_some()
            && routes(&lab, &table0)
                .iter()
                .any(|r| r.starts_with("default via 198.18.1.1"))
            && rules(&lab)
                .iter()
                .any(|r| r.contains(&format!("from {a} lookup {table0}")))
    });

    // SIGUSR1: the debug dump lists what pathman owns.
    let pid = lab.daemon_pid().expect("pid").to_string();
    lab.exec_ok(&["kill", "-USR1", &pid]);
    lab.wait_for(T, "debug dump", || {
        let log = lab.daemon_log();
        log.contains(&format!("state:   31300 from {a1} lookup"))
            && log.contains("state:   id ")
            && log.contains(&format!("state:   table {table0} default via 198.18.1.1"))
    });

    // Bad values change nothing.
    let out = lab.exec(&[
        "busctl",
        "--system",
        "call",
        "net.connman",
        &format!("/net/connman/service/{sid}"),
        "net.connman.Service",
        "SetProperty",
        "sv",
        "MultipathRouting",
        "s",
        "yes",
    ]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("boolean"));
    lab.stop_daemon();
    let eps = endpoints(&lab);
    assert!(endpoint_of(&eps, "192.0.2.9").is_some(), "{eps:?}");
    assert_eq!(
        eps.len(),
        1,
        "only the unmanaged endpoint is left after SIGTERM: {eps:?}"
    );
}

#[test]
fn one_mptcp_connection_uses_both_uplinks_and_survives_losing_one() {
    let lab = Lab::up(2, &["--inet", "--rate", "20mbit"]);
    lab.start_bus();
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "two endpoints", || {
        let eps = endpoints(&lab);
        eps.iter().any(|e| e.contains("dev eth0")) && eps.iter().any(|e| e.contains("dev eth1"))
    });
    let mut server = iperf_server(&lab);
    // A stalled transfer must fail the test, not hang it.
    let run = |secs: &str| {
        lab.exec(&[
            "timeout",
            "30",
            "mptcpize",
            "run",
            "iperf3",
            "-c",
            "198.19.0.1",
            "-p",
            "5201",
            "-t",
            secs,
        ])
    };

    let (b0, b1) = (bytes(&lab, "eth0"), bytes(&lab, "eth1"));
    let joins = nstat(&lab, "MPTcpExtMPJoinSynAckRx");
    let out = run("3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (d0, d1) = (bytes(&lab, "eth0") - b0, bytes(&lab, "eth1") - b1);
    assert!(
        nstat(&lab, "MPTcpExtMPJoinSynAckRx") > joins,
        "a second subflow joined"
    );
    assert!(
        d0 > 2_000_000 && d1 > 2_000_000,
        "traffic on both uplinks: eth0 {d0} B, eth1 {d1} B"
    );

    // Lose eth0 mid-transfer (once it carried a megabyte of this
    // transfer): the connection carries on over eth1.
    let handle = {
        let id = lab.id.clone();
        let b0 = bytes(&lab, "eth0");
        std::thread::spawn(move || {
            let eth0 = |id: &str| -> u64 {
                let out =
                    lab_sh_ok(&["exec", id, "cat", "/sys/class/net/eth0/statistics/tx_bytes"]);
                out.trim().parse().unwrap_or(0)
            };
            let end = std::time::Instant::now() + Duration::from_secs(20);
            while eth0(&id) < b0 + 1_000_000 && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            lab_sh_ok(&["link", &id, "1", "down"]);
        })
    };
    let b1 = bytes(&lab, "eth1");
    let out = run("4");
    handle.join().unwrap();
    assert!(
        out.status.success(),
        "transfer survived: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bytes(&lab, "eth1") - b1 > 4_000_000,
        "eth1 carried the rest"
    );

    // eth0 returns: table, rule and endpoint come back and a new subflow joins there.
    lab.link(1, true);
    lab.wait_for(T, "eth0 endpoint back", || {
        endpoints(&lab).iter().any(|e| e.contains("dev eth0"))
    });
    let b0 = bytes(&lab, "eth0");
    let joins = nstat(&lab, "MPTcpExtMPJoinSynAckRx");
    let out = run("2");
    assert!(out.status.success());
    assert!(nstat(&lab, "MPTcpExtMPJoinSynAckRx") > joins);
    assert!(bytes(&lab, "eth0") - b0 > 1_000_000, "eth0 used again");

    // backup: traffic stays on the first path while it works.
    lab.ctl(&[
        "config",
        "ethernet_02504d000002_cable",
        "--mpath_tcp_link",
        "backup",
    ]);
    lab.wait_for(T, "backup endpoint", || {
        endpoints(&lab)
            .iter()
            .any(|e| e.contains("dev eth1") && e.contains("backup"))
    });
    let (b0, b1) = (bytes(&lab, "eth0"), bytes(&lab, "eth1"));
    let out = run("3");
    assert!(out.status.success());
    let (d0, d1) = (bytes(&lab, "eth0") - b0, bytes(&lab, "eth1") - b1);
    // The scheduler may still probe the backup subflow (and, on a loaded
    // machine, briefly fall back to it when the first path looks stale), so
    // the check is "mostly on the first path", not "nothing on the backup".
    assert!(
        d1 * 4 < d0,
        "backup path mostly idle while the first works: eth0 {d0} B, eth1 {d1} B"
    );

    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn endpoint_cap_refusal_reaches_the_caller_and_the_service_keeps_working() {
    let lab = Lab::up(2, &["--no-ipv6"]);
    lab.start_bus();
    // Someone else's endpoints fill the kernel's 8 slots (eth1 is not managed).
    for i in 1..=8 {
        let a = format!("192.0.2.{i}");
        lab.exec_ok(&[
            "ip", "mptcp", "endpoint", "add", &a, "dev", "eth1", "signal",
        ]);
    }
    lab.start_daemon(&["-M", "-i", "eth0"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "eth0 ready with its table", || {
        let a = v4(&lab, "eth0");
        !a.is_empty()
            && rules(&lab)
                .iter()
                .any(|r| r.contains(&format!("from {a} lookup")))
    });
    let a0 = v4(&lab, "eth0");
    assert!(
        endpoint_of(&endpoints(&lab), &a0).is_none(),
        "no room for eth0's endpoint"
    );
    assert_eq!(endpoints(&lab).len(), 8, "the others' endpoints untouched");
    let out = lab.exec(&[
        "busctl",
        "--system",
        "call",
        "net.connman",
        "/net/connman/service/ethernet_02504d000001_cable",
        "net.connman.Service",
        "SetProperty",
        "sv",
        "MultipathTcpLink",
        "s",
        "backup",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the caller hears of the refusal");
    assert!(
        err.contains(&a0) && err.contains("at most 8 endpoints"),
        "{err}"
    );
    assert!(
        lab.daemon_log().contains(&format!("not adding {a0}")),
        "logged"
    );
    // The service keeps working: default route and source routing stay.
    assert!(routes(&lab, "main")
        .iter()
        .any(|r| r.starts_with("default via 198.18.1.1")));
    // Room again: the endpoint arrives with the next change.
    lab.exec_ok(&["ip", "mptcp", "endpoint", "delete", "id", "1"]);
    let out = lab.ctl(&[
        "config",
        "ethernet_02504d000001_cable",
        "--mpath_tcp_link",
        "on",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    lab.wait_for(T, "eth0's endpoint", || {
        endpoint_of(&endpoints(&lab), &a0).is_some()
    });
}

/// The local `address:port` of every established TCP subflow of an MPTCP
/// connection to the lab server (`ss -tni` lists each subflow as a TCP
/// socket with `tcp-ulp-mptcp`). iperf3 has a control and a data connection.
fn subflows(lab: &Lab) -> std::collections::BTreeSet<String> {
    subflow_lines(lab)
        .iter()
        .filter_map(|s| s.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

/// One line per established MPTCP subflow to the lab server (`ss -tni`'s
/// two lines a socket joined).
fn subflow_lines(lab: &Lab) -> Vec<String> {
    let out = lab.exec_ok(&[
        "ss",
        "-tniH",
        "state",
        "established",
        "dst",
        "198.19.0.1:5201",
    ]);
    let mut sockets: Vec<String> = Vec::new();
    for line in out.lines() {
        match sockets.last_mut() {
            Some(cur) if line.starts_with(char::is_whitespace) => cur.push_str(line),
            _ => sockets.push(line.to_string()),
        }
    }
    sockets
        .into_iter()
        .filter(|s| s.contains("tcp-ulp-mptcp"))
        .collect()
}

/// `bytes_acked` of every established subflow to the lab server, by local
/// `address:port` (as [`subflows`] names them).
fn subflow_acked(lab: &Lab) -> std::collections::BTreeMap<String, u64> {
    subflow_lines(lab)
        .iter()
        .filter_map(|s| {
            let local = s.split_whitespace().nth(2)?.to_owned();
            let acked = s
                .split_whitespace()
                .find_map(|w| w.strip_prefix("bytes_acked:"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Some((local, acked))
        })
        .collect()
}

/// Routes of every table, rules and IPv4 addresses of the DUT.
fn kernel_paths(lab: &Lab) -> Vec<String> {
    let mut out = routes(lab, "all");
    out.extend(rules(lab));
    let addrs = lab.exec_ok(&["ip", "-4", "-o", "address", "show"]);
    out.extend(addrs.lines().map(str::to_owned));
    out
}

/// Polls `f` like `wait_for`; on timeout the panic shows what the kernel says
/// about every subflow (rto, retransmissions, last send and ack) and the path
/// changes seen, so a stall can be told from a broken path.
fn wait_explained(lab: &Lab, what: &str, changes: &Watch, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + T;
    while !f() {
        if std::time::Instant::now() >= end {
            panic!(
                "timed out after {T:?} waiting for: {what}\n--- ss -tniM ---\n{}\n--- path changes ---\n{}\n--- daemon log ---\n{}",
                lab.exec_ok(&["ss", "-tniM"]),
                changes.output(),
                lab.daemon_log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_restart_keeps_live_mptcp_subflows_and_endpoints() {
    let lab = Lab::up(2, &["--inet", "--rate", "20mbit"]);
    lab.start_bus();
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    // Both families' endpoints of both uplinks, so the comparison covers all.
    lab.wait_for(T, "IPv4 and IPv6 endpoints of both uplinks", || {
        let eps = endpoints(&lab);
        eps.len() == 4 && eps.iter().filter(|e| e.starts_with("fd18:")).count() == 2
    });
    let (a0, a1) = (v4(&lab, "eth0"), v4(&lab, "eth1"));
    let mut server = iperf_server(&lab);
    let events = Watch::start(&lab, &["ip", "mptcp", "monitor"]);
    // The monitor is subscribed once it reports a short MPTCP connection.
    lab.wait_for(T, "ip mptcp monitor follows", || {
        let _ = lab.exec(&[
            "timeout",
            "10",
            "mptcpize",
            "run",
            "iperf3",
            "-c",
            "198.19.0.1",
            "-p",
            "5201",
            "-n",
            "1K",
        ]);
        events.seen("ESTABLISHED")
    });
    let seen_before = events.output().len();
    // A long transfer, stopped once the checks are done.
    let mut client = std::process::Command::new(lab_script())
        .args([
            "exec",
            &lab.id,
            "mptcpize",
            "run",
            "iperf3",
            "-c",
            "198.19.0.1",
            "-p",
            "5201",
            "-t",
            "120",
        ])
        .env("PATHMAN", pathman_bin())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 client");
    // The transfer's own subflows carry it over both uplinks. (Subflows of
    // iperf3's control connection run over both too, but carry a few bytes:
    // they cannot stand for the transfer.)
    lab.wait_for(T, "the transfer's subflows busy on both uplinks", || {
        let s = subflow_acked(&lab);
        let busy = |a: &str| s.iter().any(|(l, n)| l.starts_with(a) && *n > 500_000);
        busy(&a0) && busy(&a1)
    });
    // The same set in two reads in a row (the path manager is not opening
    // another one right now).
    let mut before_sf = std::collections::BTreeSet::new();
    lab.wait_for(T, "subflows settled", || {
        let s = subflows(&lab);
        let settled = s == before_sf;
        before_sf = s;
        settled
    });
    let busy: std::collections::BTreeMap<String, u64> = subflow_acked(&lab)
        .into_iter()
        .filter(|(_, n)| *n > 500_000)
        .collect();
    let before = endpoints(&lab);
    let paths_before = kernel_paths(&lab);
    // Every route, rule and IPv4 address change in the DUT from here on; the
    // monitor is subscribed once it reports a rule of the test's own.
    let changes = Watch::start(&lab, &["ip", "-4", "monitor", "route", "rule", "address"]);
    let marker = ["pref", "9", "from", "192.0.2.99", "lookup", "999"];
    lab.wait_for(T, "ip monitor follows", || {
        let _ = lab.exec(&[&["ip", "rule", "add"][..], &marker[..]].concat());
        let _ = lab.exec(&[&["ip", "rule", "del"][..], &marker[..]].concat());
        changes.output().contains("192.0.2.99")
    });

    lab.kill_daemon();
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "both services ready again", || ready_services(&lab) == 2);
    // The same endpoints (same ids), the same subflows, still carrying the
    // transfer, and the kernel closed none of them.
    assert_eq!(
        endpoints(&lab),
        before,
        "endpoints changed across the restart"
    );
    let at_restart = subflow_acked(&lab);
    wait_explained(
        &lab,
        "each of the transfer's subflows carries it on",
        &changes,
        || {
            let now = subflow_acked(&lab);
            busy.keys().all(|k| {
                now.get(k).copied().unwrap_or(0) > at_restart.get(k).copied().unwrap_or(0) + 500_000
            })
        },
    );
    // The restarted daemon changed no path: no route, rule or address event,
    // and the same tables, rules and addresses.
    let moved: Vec<String> = changes
        .output()
        .lines()
        .filter(|l| !l.contains("192.0.2.99"))
        .map(str::to_owned)
        .collect();
    assert!(moved.is_empty(), "the restart changed paths: {moved:?}");
    assert_eq!(kernel_paths(&lab), paths_before);
    // Every subflow of before is still there. The kernel's path manager
    // may add subflows after the snapshot (it opens them one at a time as
    // each one is established), so the set may have grown, never shrunk.
    let after_sf = subflows(&lab);
    let lost: Vec<&String> = before_sf.difference(&after_sf).collect();
    assert!(
        lost.is_empty(),
        "subflows lost across the restart: {lost:?}\nbefore: {before_sf:?}\nafter: {after_sf:?}"
    );
    // The long transfer's connections are those created after the probe;
    // none of them, nor any of their subflows, closed. (The probe's own
    // connection may report CLOSED late: it is not one of them.)
    let out = events.output().split_off(seen_before);
    let token = |l: &str| {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix("token="))
            .map(str::to_owned)
    };
    let ours: std::collections::BTreeSet<String> = out
        .lines()
        .filter(|l| l.contains("] token=") && l.contains(" CREATED]"))
        .filter_map(token)
        .collect();
    assert!(
        !ours.is_empty(),
        "no CREATED event for the transfer:\n{out}"
    );
    let closed: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("CLOSED]") && token(l).is_some_and(|t| ours.contains(&t)))
        .collect();
    assert!(
        closed.is_empty(),
        "a subflow or connection of the transfer closed across the restart: {closed:?}\n{out}"
    );
    assert_eq!(endpoints(&lab), before);
    assert_eq!(
        lab.daemon_log().matches("keeping the lease").count(),
        2,
        "the restarted daemon took over both leases"
    );
    println!("subflows before the restart: {before_sf:?}, after: {after_sf:?}");
    let _ = client.kill();
    let _ = client.wait();
    let _ = server.kill();
    let _ = server.wait();
}
