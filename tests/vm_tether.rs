//! WiFi tethering on real radios, in the VM tier (tests/vm/README.md): pathman runs the
//! access point on one hwsim radio through the real `wpa_supplicant -u` (AP mode, as ConnMan
//! does), a client on a second radio in its own namespace associates with WPA2-PSK through its
//! own wpa_supplicant, takes a lease from pathman's DHCP server with busybox udhcpc and reaches
//! the uplink's side through pathman's NAT; Debian's connmanctl turns tethering on and off. The
//! guest script, tests/vm/tether-ap.sh, checks the kernel (bridge, its address, the radio's
//! interface type and master) and writes its results; this test asserts on them. Needs root
//! and the VM tier's packages; fails (never skips) when no guest boots.
#[path = "common/vm.rs"]
mod vm;

use std::time::Duration;
use vm::{guest_script, pathman_bin, Vm};

#[test]
fn connmanctl_tethers_wifi_as_an_access_point_a_real_client_uses() {
    let vm = Vm::get();
    let bin = pathman_bin();
    let run = vm.run_timeout(
        "tether-ap",
        &guest_script("tether-ap.sh"),
        &[bin.to_str().expect("utf-8 path")],
        Duration::from_secs(300),
    );
    run.assert_exit(0);
    assert!(run.get("uplink_address").starts_with("192.168.77."));
    assert!(run.get("tether_on").contains("Enabled tethering for wifi"));
    // The first free block (the uplink is on 192.168.77.0/24), the bridge its .1.
    assert_eq!(run.get("bridge_address"), "192.168.0.1/24");
    assert_eq!(run.get("ap_freq"), "2412", "ConnMan's default channel");
    assert_eq!(run.get("client_state"), "COMPLETED");
    assert_eq!(run.get("client_key_mgmt"), "WPA2-PSK");
    let ip = run.get("lease_ip");
    assert!(
        ip.starts_with("192.168.0."),
        "lease outside the block: {ip}"
    );
    assert_eq!(run.get("lease_router"), "192.168.0.1");
    // No DNS proxy in this run: the default service's server.
    assert_eq!(run.get("lease_dns"), "192.168.77.1");
    assert_eq!(run.get("client_ping"), "ok");
    assert!(run
        .get("tether_off")
        .contains("Disabled tethering for wifi"));
    assert!(run.get("after_off").starts_with("wlan0 managed"));
    assert_eq!(run.get("log_clean"), "yes");
    assert_eq!(run.get("result"), "pass");
    eprintln!(
        "vm tether: {:.1?} in all; tether on -> AP bridged {} s (guest, polled every 0.1 s)",
        run.wall,
        run.get("ap_seconds")
    );
}

/// A real USB gadget (dummy_hcd + configfs NCM): the board's `usb0` (DEVTYPE gadget) is an
/// uplink until `tether gadget on` bridges it; the computer's side (the host stack's cdc_ncm
/// interface, in its own namespace) leases from pathman and pings through the NAT; `tether
/// gadget off` gives `usb0` back as an uplink.
#[test]
fn connmanctl_tethers_a_real_usb_gadget_to_the_computer_it_is_plugged_into() {
    let vm = Vm::get();
    let bin = pathman_bin();
    let run = vm.run_timeout(
        "tether-gadget",
        &guest_script("tether-gadget.sh"),
        &[bin.to_str().expect("utf-8 path")],
        Duration::from_secs(300),
    );
    run.assert_exit(0);
    assert_eq!(run.get("gadget_devtype"), "gadget");
    assert!(run.get("gadget_uplink").contains("gadget_02000000aa01"));
    assert!(run
        .get("tether_on")
        .contains("Enabled tethering for gadget"));
    assert_eq!(run.get("bridge_address"), "192.168.0.1/24");
    let ip = run.get("lease_ip");
    assert!(
        ip.starts_with("192.168.0."),
        "lease outside the block: {ip}"
    );
    assert_eq!(run.get("lease_router"), "192.168.0.1");
    assert_eq!(run.get("laptop_ping"), "ok");
    // The fast path (this guest kernel has flowtables): a flowtable on the
    // bridge and the uplink, the laptop's TCP flow offloaded, through the NAT.
    let devs = run.get("flowtable_devices");
    assert!(
        devs.contains("tether") && devs.contains("up0"),
        "flowtable devices: {devs}"
    );
    assert!(run.get("offloaded").contains("[OFFLOAD]"));
    println!("NAT iperf3 through the flowtable: {}", run.get("nat_iperf"));
    assert_eq!(run.get("client_listed"), "02:00:00:00:AA:02");
    assert_eq!(run.get("uplink_again"), "yes");
    assert_eq!(run.get("result"), "pass");
}
