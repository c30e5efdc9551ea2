//! The lab's fake wpa_supplicant (tests/lab/fake_wpa_supplicant.py) is faithful where
//! that can be checked here: each test builds a lab, starts its bus and runs one check of
//! tests/lab/fake_wpa_selftest.py against it (a python dbus client on the lab bus). The
//! last one runs the same call sequences against the real `wpa_supplicant -Dwired -u` and
//! the fake and requires equal normalised traces. Needs root; never skips.
mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn selftest(check: &str) {
    let lab = Lab::up_prefixed("fw", 1, &[]);
    lab.start_bus();
    let script = lab_script().with_file_name("fake_wpa_selftest.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(["--lab", &lab.id, "-k", check])
        .env("PM_LAB_OWNER", std::process::id().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("PASSED: 0 of 1 failed"),
        "fake_wpa_selftest.py -k {check} failed ({}):\n{text}",
        out.status
    );
}

#[test]
fn scan_finds_bsses_hidden_only_by_ssid_and_property_types_match() {
    selftest("t_scan_hidden_and_types");
}

#[test]
fn psk_connect_walks_the_real_state_order_in_both_propertieschanged_forms() {
    selftest("t_psk_connect_order_and_both_forms");
}

#[test]
fn wrong_psk_ends_disconnected_after_the_4way_handshake_with_reason_15() {
    selftest("t_wrong_psk");
}

#[test]
fn sae_assoc_auth_reject_driver_error_and_no_reply() {
    selftest("t_sae_and_failures");
}

#[test]
fn roam_bss_loss_and_reconnect() {
    selftest("t_roam_and_loss");
}

#[test]
fn hostile_ssids_arrive_as_bytes_unchanged_and_bad_input_never_kills_it() {
    selftest("t_hostile_ssids");
}

#[test]
fn five_hundred_bsses_crash_and_restart() {
    selftest("t_many_bsses_and_crash");
}

#[test]
fn fake_traces_equal_real_wpa_supplicant_wired() {
    selftest("t_compare_with_real_wired");
}

/// How a Rust test uses the fake: `lab.sh wpa ID start` (returns once the name is owned),
/// `lab.sh wpa ID ctl METHOD JSON...` for the control API, `kill` for a crash, and a board
/// config that makes the DUT's veth eth0 a wifi device for pathman.
#[test]
fn lab_sh_wpa_start_ctl_kill_and_a_wifi_board_config() {
    let lab = Lab::up_prefixed("fw", 1, &[]);
    lab.start_bus();
    let ok = |out: std::process::Output, what: &str| -> String {
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(lab.cmd("wpa", &["start"]), "lab.sh wpa start");
    lab.wait_name("fi.w1.wpa_supplicant1", Duration::from_secs(5));
    // a BSS for every interface (also later ones), found by the first scan
    let bss = r#"{"ssid":"lab-wifi","bssid":"02:00:00:00:0a:01","security":"psk","passphrase":"labpass1"}"#;
    ok(lab.cmd("wpa", &["ctl", "AddBss", "", bss]), "ctl AddBss");
    let trace = lab.exec(&[
        "/usr/bin/python3",
        lab_script()
            .with_file_name("wpa_trace.py")
            .to_str()
            .unwrap(),
        "run",
        "connect-psk",
        "--ifname",
        "eth0",
        "--ssid",
        "lab-wifi",
        "--psk",
        "labpass1",
    ]);
    let trace = ok(trace, "wpa_trace.py run connect-psk");
    assert!(trace.contains("State=completed"), "no completed:\n{trace}");
    let calls = ok(lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    assert!(
        calls.contains("SelectNetwork"),
        "trace lacks the call: {calls}"
    );
    // a crash: the name goes away; start brings a fresh one (no interfaces)
    ok(lab.cmd("wpa", &["kill"]), "lab.sh wpa kill");
    let owned = || {
        let o = lab.exec(&[
            "dbus-send",
            "--system",
            "--print-reply=literal",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:fi.w1.wpa_supplicant1",
        ]);
        String::from_utf8_lossy(&o.stdout).contains("true")
    };
    wait_for(
        Duration::from_secs(5),
        "the killed fake to leave the bus",
        || !owned(),
    );
    ok(lab.cmd("wpa", &["start"]), "lab.sh wpa start again");
    assert!(owned(), "fi.w1.wpa_supplicant1 not owned after start");

    // pathman with a board config that classifies the veth eth0 as wifi
    let board = lab.dir.join("board-wifi.conf");
    std::fs::write(
        &board,
        "[Board]\nName=lab-wifi\n\n[Interfaces]\nManage=eth0\n\n[Interface eth0]\nTechnology=wifi\n",
    )
    .expect("write board config");
    lab.start_daemon(&["--board", board.to_str().unwrap()]);
    lab.wait_name("net.connman", Duration::from_secs(10));
    let techs = ok(lab.ctl(&["technologies"]), "pathman ctl technologies");
    assert!(techs.contains("/net/connman/technology/wifi"), "{techs}");
    assert!(
        !techs.contains("/net/connman/technology/ethernet"),
        "eth0 still ethernet: {techs}"
    );
    lab.stop_daemon();
    ok(lab.cmd("wpa", &["stop"]), "lab.sh wpa stop");
}
