//! SNTP and the Clock API against real peers (issue 8): the lab's chronyd (`-x`, it never
//! touches the clock) as the DHCP-announced timeserver, and `tests/lab/hostile_ntp.py` for
//! what chronyd cannot be made to send. Checked through Debian's connmanctl and pathmanctl,
//! and on the wire through the hostile responder's own log of what it received. pathman
//! always runs with `--no-set-clock` in the lab (and without CAP_SYS_TIME): nothing here
//! may set the machine's clock.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const T: Duration = Duration::from_secs(30);

fn lab(opts: &[&str]) -> Lab {
    let lab = Lab::up(1, opts);
    lab.start_bus();
    lab
}

fn start(lab: &Lab) {
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
}

/// `connmanctl clock` as name → value.
fn clock(lab: &Lab) -> Vec<(String, String)> {
    let out = lab.exec(&["connmanctl", "clock"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn prop(lab: &Lab, name: &str) -> Option<String> {
    clock(lab)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn synced(lab: &Lab) -> bool {
    prop(lab, "TimeserverSynced").as_deref() == Some("True")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hostile(lab: &Lab, mode: &str) {
    let out = lab.cmd("ntp", &["1", "hostile", mode]);
    assert!(
        out.status.success(),
        "lab.sh ntp hostile {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Requests the hostile responder received so far.
fn requests(lab: &Lab) -> usize {
    std::fs::read_to_string(lab.dir.join("up1/ntp-hostile.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" recv "))
        .count()
}

#[test]
fn the_dhcp_announced_chronyd_synchronises_the_clock_api() {
    let lab = lab(&["--ntp"]);
    start(&lab);
    lab.wait_for(T, "TimeserverSynced = True from the lab's chronyd", || {
        synced(&lab)
    });
    // chronyd serves the same machine's clock: the reported time is the system's.
    let time: i64 = prop(&lab, "Time").unwrap().parse().unwrap();
    assert!(
        (time - unix_now()).abs() <= 2,
        "Time {time} vs {}",
        unix_now()
    );
    // The server came from DHCP option 42, not from the global list.
    assert_eq!(prop(&lab, "Timeservers").as_deref(), Some("[  ]"));
    let log = lab.daemon_log();
    assert!(
        log.contains("SNTP: synchronised with 198.18.1.1:123"),
        "{log}"
    );
    // pathmanctl shows the same.
    let out = lab.ctl(&["clock"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TimeserverSynced = True"), "{text}");
    // Without timeservers (the service went away) the SNTP task stops, and nothing keeps
    // the measurement current: no longer synchronised.
    lab.link(1, false);
    lab.wait_for(T, "TimeserverSynced = False without a service", || {
        !synced(&lab)
    });
}

#[test]
fn a_server_100_s_ahead_moves_the_reported_time_not_the_clock() {
    let lab = lab(&[]);
    hostile(&lab, "ahead100");
    let before = unix_now();
    start(&lab);
    lab.wait_for(T, "TimeserverSynced = True", || synced(&lab));
    let time: i64 = prop(&lab, "Time").unwrap().parse().unwrap();
    let off = time - unix_now();
    assert!((98..=102).contains(&off), "Time is {off} s ahead, want 100");
    // The system clock did not jump (measure-only, no CAP_SYS_TIME in the lab).
    let drift = unix_now() - before;
    assert!((0..60).contains(&drift), "system clock moved by {drift} s");
    let log = lab.daemon_log();
    assert!(
        log.contains("offset +99.99") || log.contains("offset +100.00"),
        "{log}"
    );
}

#[test]
fn hostile_replies_never_synchronise() {
    let lab = lab(&[]);
    for mode in [
        "li3",
        "bad-origin",
        "zero-transmit",
        "huge-distance",
        "stratum16",
        "wrong-mode",
    ] {
        hostile(&lab, mode);
        start(&lab);
        // The client asked, got the bad reply and asked again (the next try or server):
        // it went on without taking the reply.
        lab.wait_for(T, &format!("two requests with {mode}"), || {
            requests(&lab) >= 2
        });
        assert!(!synced(&lab), "{mode}: synchronised: {:?}", clock(&lab));
        let t: i64 = prop(&lab, "Time").unwrap().parse().unwrap();
        assert!((t - unix_now()).abs() <= 2, "{mode}: Time moved to {t}");
        lab.stop_daemon();
        let _ = std::fs::remove_file(lab.dir.join("up1/ntp-hostile.log"));
    }
}

#[test]
fn a_kiss_o_death_deny_server_is_not_asked_again_for_60_s() {
    let lab = lab(&[]);
    hostile(&lab, "kod-deny");
    start(&lab);
    lab.wait_for(T, "the first request", || requests(&lab) >= 1);
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < until {
        assert_eq!(
            requests(&lab),
            1,
            "asked again after DENY: {}",
            std::fs::read_to_string(lab.dir.join("up1/ntp-hostile.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!synced(&lab));
    assert!(
        lab.daemon_log().contains("kiss-o'-death"),
        "{}",
        lab.daemon_log()
    );
}

#[test]
fn a_services_timeservers_configuration_comes_first_and_a_new_list_resyncs() {
    // Upstream 1 (the default service's) serves the true time by chronyd; upstream 2 a
    // time 100 s ahead.
    let lab = Lab::up(2, &["--ntp", "--no-ipv6"]);
    lab.start_bus();
    let out = lab.cmd("ntp", &["2", "hostile", "ahead100"]);
    assert!(out.status.success());
    start(&lab);
    lab.wait_for(T, "synchronised with chronyd", || synced(&lab));
    let t: i64 = prop(&lab, "Time").unwrap().parse().unwrap();
    assert!((t - unix_now()).abs() <= 2, "Time {t}");
    let svc = "ethernet_02504d000001_cable";
    let out = lab.exec(&["connmanctl", "config", svc, "--timeservers", "198.18.2.1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.wait_for(T, "Time 100 s ahead from the configured server", || {
        prop(&lab, "Time")
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|t| (98..=102).contains(&(t - unix_now())))
    });
    // The request really went to upstream 2's server.
    let log = std::fs::read_to_string(lab.dir.join("up2/ntp-hostile.log")).unwrap_or_default();
    assert!(
        log.contains("recv 198.18.") || log.contains("recv ::ffff:198.18."),
        "{log}"
    );
    // And the setting is the service's: connmanctl shows it.
    let out = lab.exec_ok(&["connmanctl", "services", svc]);
    assert!(
        out.contains("Timeservers.Configuration = [ 198.18.2.1 ]"),
        "{out}"
    );
}
