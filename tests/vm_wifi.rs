//! pathman's WiFi on real radios, in the VM tier (tests/vm/README.md): hwsim radios with
//! hostapd access points (WPA2-PSK, WPA3-SAE, open) and dnsmasq behind each, the real
//! `wpa_supplicant -u`, pathman on the guest's private bus, and Debian's connmanctl as the
//! user's client (enable, scan, services, agent on + connect with the passphrase typed at
//! its prompt). The guest script, tests/vm/wifi.sh, checks the kernel (address from the
//! AP's dnsmasq, default route by the radio) and writes its results; this test asserts on
//! them. Needs root and the VM tier's packages; fails (never skips) when no guest boots.
mod common;
#[path = "common/vm.rs"]
mod vm;

use std::time::Duration;
use vm::{guest_script, pathman_bin, Vm};

/// What must not drift between the real wpa_supplicant and the lab's fake: the order of
/// the interface's States up to the end of the connect attempt (consecutive repeats
/// folded) and which kinds of signal it sends.
fn shape(trace: &str) -> (Vec<String>, std::collections::BTreeSet<String>) {
    let mut states: Vec<String> = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for line in trace.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("signal") {
            continue;
        }
        if let Some(kind) = words.next() {
            kinds.insert(kind.to_string());
        }
        // Only the interface's own state (the deprecated per-interface form).
        if !line.starts_with("signal fi.w1.wpa_supplicant1.Interface.PropertiesChanged") {
            continue;
        }
        if let Some(rest) = line.split("State=").nth(1) {
            let st: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if states.last() != Some(&st) {
                states.push(st.clone());
            }
            // The attempt ends there; what follows (the real one retries a wrong key
            // after a while) depends on timing.
            let attempted = states.iter().any(|s| s == "authenticating");
            if attempted && (st == "completed" || st == "disconnected") {
                break;
            }
        }
    }
    (states, kinds)
}

/// The same scenario against the lab's fake with an AP like the guest's.
fn fake_trace(lab: &common::Lab, psk: &str) -> String {
    let script = common::lab_script().with_file_name("wpa_trace.py");
    let out = lab.exec(&[
        "/usr/bin/python3",
        script.to_str().unwrap(),
        "run",
        "connect-psk",
        "--ifname",
        "eth0",
        "--ssid",
        "pm-psk",
        "--psk",
        psk,
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn connmanctl_drives_pathman_on_real_radios() {
    let vm = Vm::get();
    let bin = pathman_bin();
    let run = vm.run_timeout(
        "wifi",
        &guest_script("wifi.sh"),
        &[bin.to_str().expect("utf-8 path")],
        Duration::from_secs(420),
    );
    run.assert_exit(0);
    assert!(run.get("enable").contains("Enabled wifi"));
    assert!(run.get("scan").contains("Scan completed for wifi"));
    let services = run.get("services");
    for name in ["pm-psk", "pm-sae", "pm-open"] {
        assert!(services.contains(name), "{name} not listed: {services}");
    }
    assert!(run.get("psk_address").starts_with("192.168.52."));
    assert!(run.get("psk_default").contains("dev wlan0"));
    assert_eq!(run.get("psk_saved"), "yes");
    assert!(run.get("sae_wrong").contains("invalid-key"));
    assert!(run.get("sae_address").starts_with("192.168.53."));
    assert!(run.get("open_address").starts_with("192.168.54."));
    assert_eq!(run.get("hidden_seen"), "yes");
    assert!(run.get("hidden_address").starts_with("192.168.55."));
    assert_eq!(run.get("hidden_saved"), "yes");
    assert_eq!(run.get("restart_reconnect"), "yes");
    assert_eq!(run.get("log_clean"), "yes");
    assert_eq!(run.get("result"), "pass");
    let real_ok = run.file("trace-psk.txt");
    let real_wrong = run.file("trace-wrong.txt");

    // The fake, given the same scenarios, must move through the same states and send
    // the same kinds of signal.
    let lab = common::Lab::up_prefixed("vw", 1, &[]);
    lab.start_bus();
    let started = lab.cmd("wpa", &["start"]);
    assert!(started.status.success(), "lab.sh wpa start: {started:?}");
    let bss = r#"{"ssid":"pm-psk","bssid":"02:00:00:00:11:00","security":"psk","passphrase":"correct horse","signal":-30}"#;
    let added = lab.cmd("wpa", &["ctl", "AddBss", "", bss]);
    assert!(added.status.success(), "ctl AddBss: {added:?}");
    let fake_ok = fake_trace(&lab, "correct horse");
    let fake_wrong = {
        let _ = lab.cmd("wpa", &["start"]);
        let _ = lab.cmd("wpa", &["ctl", "AddBss", "", bss]);
        fake_trace(&lab, "wrong horse")
    };
    for (what, real, fake) in [
        ("right passphrase", &real_ok, &fake_ok),
        ("wrong passphrase", &real_wrong, &fake_wrong),
    ] {
        let (rs, rk) = shape(real);
        let (fs, fk) = shape(fake);
        // wpa_supplicant coalesces property changes that come within its flush
        // interval, so a transient state (associated) may not show: every state the
        // real one reported must come in the fake's sequence in that order, and both end
        // the same way.
        let mut it = fs.iter();
        let in_order = rs.iter().all(|r| it.any(|f| f == r));
        assert!(
            in_order && fs.last() == rs.last(),
            "{what}: the fake's states {fs:?} differ from the real wpa_supplicant's {rs:?}\n--- real\n{real}\n--- fake\n{fake}"
        );
        let missing: Vec<_> = rk.difference(&fk).collect();
        assert!(
            missing.is_empty(),
            "{what}: the fake never sends {missing:?}\n--- real\n{real}\n--- fake\n{fake}"
        );
    }
    eprintln!(
        "vm wifi: {:.1?}; connmanctl connect steps {}",
        run.wall,
        run.get("connect_psk")
    );
}
