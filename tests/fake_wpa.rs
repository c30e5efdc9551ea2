//! The lab's fake wpa_supplicant (tests/lab/fake_wpa_supplicant.py) is faithful where
//! that can be checked here: each test builds a lab, starts its bus and runs one check of
//! tests/lab/fake_wpa_selftest.py against it (a python dbus client on the lab bus). The
//! last one runs the same call sequences against the real `wpa_supplicant -Dwired -u` and
//! the fake and requires equal normalised traces. Needs root; never skips.
mod common;

use common::*;
use std::process::{Command, Stdio};

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
