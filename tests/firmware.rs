//! Firmware life (issue 12): the serial-console state dump, and starting in
//! the conditions an embedded image really has — the bus not up yet, the
//! main.conf the init script names missing, a board config naming an
//! interface this board variant lacks, a read-only state dir. Each runs
//! pathman in a namespace lab against dnsmasq upstreams and checks the kernel,
//! the bus and the daemon's log.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Generous: the machine is shared and busy.
const T: Duration = Duration::from_secs(40);

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The IPv4 address (without prefix) of a DUT interface.
fn addr4(lab: &Lab, dev: &str) -> Option<String> {
    addrs4(lab, dev)
        .first()
        .map(|a| a.split('/').next().unwrap_or("").to_owned())
}

#[test]
fn state_all_shows_everything_pathman_owns_and_sigusr1_logs_it() {
    let lab = Lab::up_prefixed("fw", 2, &[]);
    lab.start_bus();
    lab.start_daemon(&["-M"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "both uplinks ready", || ready_services(&lab) == 2);
    let (a1, a2) = (lab.ifname(1).to_owned(), lab.ifname(2).to_owned());
    lab.wait_for(T, "both leases saved", || {
        std::fs::read_dir(lab.run_dir())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("lease-"))
                    .count()
                    == 2
            })
            .unwrap_or(false)
    });
    let out = lab.ctl(&["state", "--all"]);
    assert!(out.status.success(), "state --all failed: {out:?}");
    let text = stdout(&out);
    // Everything it claims is what the kernel has.
    for dev in [&a1, &a2] {
        let addr = addr4(&lab, dev).expect("an address from DHCP");
        assert!(
            text.contains(&format!("{addr}/24 dev {dev}")),
            "address {addr} of {dev} missing:\n{text}"
        );
        assert!(
            text.contains(&format!("dhcp on {dev}")),
            "no DHCP task line for {dev}:\n{text}"
        );
        // Its own table holds its default route (ip route show table all).
        let all = lab.exec_ok(&["ip", "-4", "route", "show", "table", "all", "dev", dev]);
        let table = all
            .lines()
            .find(|l| {
                l.starts_with("default") && l.contains(" table ") && !l.contains("table main")
            })
            .and_then(|l| l.split(" table ").nth(1))
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("no per-uplink table for {dev}:\n{all}"))
            .to_owned();
        assert!(
            text.contains(&format!("table {table} default via")),
            "no table {table} route for {dev}:\n{text}"
        );
    }
    for (i, id) in ["ethernet_02504d000001_cable", "ethernet_02504d000002_cable"]
        .iter()
        .enumerate()
    {
        assert!(text.contains(id), "service {i} missing:\n{text}");
    }
    assert!(text.contains("services: 2"), "{text}");
    assert!(text.contains("leases: 2"), "{text}");
    assert!(
        text.contains("lookup main") || text.contains("lookup "),
        "{text}"
    );
    let kernel_eps = lab.exec_ok(&["ip", "mptcp", "endpoint", "show"]);
    let eps = kernel_eps.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        text.contains(&format!("mptcp endpoints: {eps}")),
        "kernel has {eps} endpoints:\n{kernel_eps}\ndump:\n{text}"
    );
    assert!(text.contains("nft table pathman"), "{text}");
    assert!(text.contains("timers:"), "{text}");
    assert!(
        !text.to_lowercase().contains("passphrase"),
        "no secrets in the dump"
    );

    // Not root, not in the AdminGroup: refused, nothing printed.
    let bin = pathman_bin();
    let out = lab.exec(&[
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        bin.to_str().unwrap(),
        "ctl",
        "state",
        "--all",
    ]);
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        !out.status.success()
            && (all.contains("PermissionDenied") || all.contains("Permission denied")),
        "an unprivileged caller got the dump: {all}"
    );

    // SIGUSR1: the same text in the log, one line per line.
    let pid = lab.daemon_pid().expect("pathman runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .expect("SIGUSR1");
    lab.wait_for(T, "the dump in the log", || {
        lab.daemon_log().contains("state: leases: 2")
    });
    let log = lab.daemon_log();
    assert!(log.contains("state: services: 2"), "{log}");
}

/// Init started pathman before dbus (or dbus restarts): the uplinks come up
/// without the bus, pathman says what it waits for, and owns net.connman as
/// soon as the bus is there.
#[test]
fn starts_before_the_bus_and_serves_it_when_it_appears() {
    let lab = Lab::up_prefixed("fw", 2, &[]);
    lab.start_daemon(&[]);
    lab.wait_for(T, "both uplinks addressed without a bus", || {
        addr4(&lab, lab.ifname(1)).is_some() && addr4(&lab, lab.ifname(2)).is_some()
    });
    lab.wait_for(T, "the log says it waits for the bus", || {
        lab.daemon_log().contains("system bus not reachable")
    });
    lab.start_bus();
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "both services on the bus", || ready_services(&lab) == 2);
}

/// The init script's main.conf is gone, the board config names an interface
/// this variant lacks, and the state dir is read-only (overlay full): pathman
/// still starts, says each clearly, serves its uplinks, and keeps a setting
/// made meanwhile in memory.
#[test]
fn starts_without_main_conf_with_a_missing_interface_and_a_read_only_state_dir() {
    let lab = Lab::up_prefixed("fw", 2, &[]);
    lab.start_bus();
    let board = lab.dir.join("board.conf");
    std::fs::write(
        &board,
        format!(
            "[Board]\nName=fw-test\n\n[Interfaces]\nManage={},{},wan9\n\n[Interface wan9]\nTechnology=ethernet\n",
            lab.ifname(1),
            lab.ifname(2)
        ),
    )
    .unwrap();
    let missing = lab.dir.join("no-such-main.conf");
    let out = Command::new(lab_script())
        .args([
            "daemon",
            lab.id.as_str(),
            "start",
            "-c",
            missing.to_str().unwrap(),
            "--board",
            board.to_str().unwrap(),
        ])
        .env("PATHMAN", pathman_bin())
        .env("PM_LAB_OWNER", std::process::id().to_string())
        .env("PM_STATE_RO", "1")
        .stdin(Stdio::null())
        .output()
        .expect("lab.sh");
    assert!(out.status.success(), "start failed: {out:?}");
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "both uplinks ready", || ready_services(&lab) == 2);
    let log = lab.daemon_log();
    assert!(
        log.contains("no-such-main.conf") && log.contains("using built-in defaults"),
        "{log}"
    );
    assert!(
        log.contains("wan9: named by -i or the board config but not present"),
        "{log}"
    );

    // A setting on a read-only state dir: applied, not saved, said so.
    let id = "ethernet_02504d000001_cable";
    let out = lab.ctl(&["config", id, "--nameservers", "192.0.2.53"]);
    assert!(out.status.success(), "config failed: {out:?}");
    lab.wait_for(T, "the unsaved setting is reported", || {
        lab.daemon_log().contains("settings not saved")
    });
    lab.wait_for(T, "the setting is applied anyway", || {
        lab.resolv_conf().contains("192.0.2.53")
    });
    assert!(
        !lab.state_dir().join(id).join("settings").exists(),
        "nothing could be written"
    );
    let text = stdout(&lab.ctl(&["state", "--all"]));
    assert!(
        text.contains("unsaved settings ") && !text.contains("unsaved settings 0"),
        "{text}"
    );
}
