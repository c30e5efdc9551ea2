//! The VM tier's smoke test: real WiFi in a QEMU guest (Debian's stock kernel with
//! `mac80211_hwsim`), see tests/vm/README.md. Needs root, qemu-system-x86 and the packages of
//! tests/lab/install-deps.sh; fails (never skips) with the reason when the guest cannot boot.
#[path = "common/vm.rs"]
mod vm;

use std::time::Duration;
use vm::{guest_script, Vm};

/// hostapd APs (open, WPA2-PSK, SAE, hidden) on hwsim radios in their own namespaces,
/// wpa_supplicant driven over D-Bus: scan, connect to the PSK network, DHCP lease, ping.
#[test]
fn guest_wifi_smoke_scan_connect_dhcp_ping() {
    let vm = Vm::get();
    let run = vm.run_timeout(
        "smoke",
        &guest_script("smoke.sh"),
        &[],
        Duration::from_secs(300),
    );
    run.assert_exit(0);
    eprintln!(
        "vm tier: build {:.1?}, smoke run {:.1?} in all (boot {} s, setup {} s, test {} s, kernel {})",
        vm.build_time,
        run.wall,
        run.get("boot_seconds"),
        run.get("setup_seconds"),
        run.get("test_seconds"),
        vm.kver
    );
    assert_eq!(run.get("radios"), "5");
    assert_eq!(run.get("aps"), "4");
    // The three broadcast SSIDs. The hidden AP answers no wildcard probe, so its BSS (without
    // an SSID) is listed only when one of its beacons fell into the scan's dwell on its channel.
    assert_eq!(run.get("scan_ssids"), "pm-open,pm-psk,pm-sae");
    let hidden: usize = run.get("scan_hidden_bss").parse().expect("scan_hidden_bss");
    let count: usize = run.get("scan_bss_count").parse().expect("scan_bss_count");
    assert!(hidden <= 1, "{hidden} BSSes without an SSID");
    assert_eq!(count, 3 + hidden, "BSS count: 3 visible + {hidden} hidden");
    let bss = run.results().get("scan_bss").cloned().unwrap_or_default();
    for (ssid, km) in [
        ("pm-open", "none"),
        ("pm-psk", "wpa-psk"),
        ("pm-sae", "sae"),
    ] {
        assert!(
            bss.iter().any(|b| b.ends_with(&format!(",{km},{ssid}"))),
            "no BSS {ssid} with key management {km}: {bss:?}"
        );
    }
    assert_eq!(run.get("connect_state"), "completed");
    assert_eq!(run.get("connect_bssid"), "02:00:00:00:02:00");
    assert_eq!(run.get("lease"), "ok");
    let ip = run.get("lease_ip");
    assert!(
        ip.starts_with("192.168.52."),
        "lease outside the AP's subnet: {ip}"
    );
    assert_eq!(run.get("lease_router"), "192.168.52.1");
    assert_eq!(run.get("ping"), "ok");
    assert_eq!(run.get("result"), "pass");
}
