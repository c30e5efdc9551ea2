//! pathman's WiFi on real radios, in the VM tier (tests/vm/README.md): hwsim radios with
//! hostapd access points (WPA2-PSK, WPA3-SAE, open) and dnsmasq behind each, the real
//! `wpa_supplicant -u`, pathman on the guest's private bus, and Debian's connmanctl as the
//! user's client (enable, scan, services, agent on + connect with the passphrase typed at
//! its prompt). The guest script, tests/vm/wifi.sh, checks the kernel (address from the
//! AP's dnsmasq, default route by the radio) and writes its results; this test asserts on
//! them. Needs root and the VM tier's packages; fails (never skips) when no guest boots.
#[path = "common/vm.rs"]
mod vm;

use std::time::Duration;
use vm::{guest_script, pathman_bin, Vm};

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
    assert_eq!(run.get("restart_reconnect"), "yes");
    assert_eq!(run.get("log_clean"), "yes");
    assert_eq!(run.get("result"), "pass");
    eprintln!(
        "vm wifi: {:.1?}; connmanctl connect steps {}",
        run.wall,
        run.get("connect_psk")
    );
}
