//! Settings that must never reach the kernel or resolv.conf, and state files
//! that must never stop pathman, end to end: pathman in a lab against
//! dnsmasq upstreams and a real dbus-daemon; checked in the kernel
//! (addresses, rules, MPTCP endpoints), in the written resolv.conf, in the
//! daemon's log and through Debian's connmanctl.

mod common;

use std::time::Duration;

use common::*;

/// Generous: the machine is shared and busy.
const T: Duration = Duration::from_secs(40);

fn service_id(k: usize) -> String {
    format!("ethernet_02504d00000{k}_cable")
}

fn endpoints(lab: &Lab) -> String {
    lab.exec_ok(&["ip", "mptcp", "endpoint", "show"])
}

/// A state dir that once hung start-up (a FIFO named `settings`), exhausted
/// memory (a service's settings linked to /dev/zero) and put a manual
/// 0.0.0.0/0 into the kernel (an MPTCP endpoint for 0.0.0.0, a `from
/// 0.0.0.0` rule), plus nameservers and a domain with an escaped newline
/// that wrote a `nameserver` line of its own into resolv.conf. Now every bad
/// file and value is a warning naming file and line, defaults are used, and
/// nothing of it reaches the kernel or resolv.conf.
#[test]
fn hostile_state_files_are_warnings_and_defaults() {
    let lab = Lab::up(2, &[]);
    lab.start_bus();
    let state = lab.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    nix::unistd::mkfifo(
        &state.join("settings"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let (id1, id2) = (service_id(1), service_id(2));
    std::fs::create_dir_all(state.join(&id1)).unwrap();
    std::fs::write(
        state.join(&id1).join("settings"),
        format!(
            "[{id1}]\nIPv4.method=manual\nIPv4.local_address=0.0.0.0\nIPv4.netmask_prefixlen=0\n\
             MultipathRouting=true\nNameservers=0.0.0.0;127.0.0.1;ff02::1;\n\
             Domains=lab.example\\nnameserver\\s6.6.6.6;ok.example;\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(state.join(&id2)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", state.join(&id2).join("settings")).unwrap();

    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "both uplinks on DHCP addresses", || {
        (1..=2).all(|k| {
            addrs4(&lab, lab.ifname(k))
                .iter()
                .any(|a| a.starts_with(&format!("198.18.{k}.")))
        })
    });
    // eth0 is the default service (same technology, lower ifindex): its
    // valid configured domain comes first, then the lease's.
    lab.wait_for(T, "resolv.conf of eth0's service", || {
        let r = lab.resolv_conf();
        r.contains("search ok.example") && r.contains("nameserver 198.18.1.1")
    });
    let resolv = lab.resolv_conf();
    for line in resolv.lines() {
        assert!(
            line.starts_with('#') || line.starts_with("search ") || line.starts_with("nameserver "),
            "unexpected resolv.conf line {line:?}:\n{resolv}"
        );
    }
    for bad in ["6.6.6.6", "0.0.0.0", "127.0.0.1", "ff02::1", "lab.example"] {
        assert!(
            !resolv.contains(bad),
            "{bad} reached resolv.conf:\n{resolv}"
        );
    }
    // MultipathRouting=true still applies: the DHCP address gets its
    // endpoint; 0.0.0.0 never gets one, nor a rule, nor an address.
    lab.wait_for(T, "MPTCP endpoint of eth0's DHCP address", || {
        endpoints(&lab).contains("198.18.1.")
    });
    let eps = endpoints(&lab);
    assert!(!eps.contains("0.0.0.0"), "{eps}");
    let rules = rules(&lab);
    assert!(
        !rules.iter().any(|r| r.contains("from 0.0.0.0")),
        "{rules:?}"
    );
    let a = addrs4(&lab, "eth0");
    assert!(!a.iter().any(|a| a.starts_with("0.")), "{a:?}");

    // Each problem is a WARN naming the file (and the line where there is one).
    let log = lab.daemon_log();
    let warned = |what: &str| {
        assert!(
            log.lines()
                .any(|l| l.starts_with("WARN") && l.contains(what)),
            "no WARN with {what:?}:\n{log}"
        );
    };
    warned("state/settings: cannot read (is a FIFO, not a regular file)");
    warned(&format!("{id2}/settings: cannot read (is a symbolic link"));
    warned(&format!(
        "{id1}/settings:4: [{id1}] IPv4.netmask_prefixlen=\"0\""
    ));
    warned(&format!(
        "{id1}/settings:6: [{id1}] Nameservers=\"127.0.0.1\""
    ));
    warned(&format!(
        "{id1}/settings:7: [{id1}] Domains=\"lab.example\\nnameserver 6.6.6.6\""
    ));
}

/// The same values over D-Bus (connmanctl): refused with a message naming
/// the field and why, and nothing changes in the kernel or resolv.conf.
/// Loopback, class E, multicast gateways, prefix 0, network and broadcast
/// addresses used to be accepted and installed.
#[test]
fn bad_configuration_over_dbus_changes_nothing() {
    let lab = Lab::up(1, &[]);
    lab.start_bus();
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    let id = service_id(1);
    lab.wait_for(T, "eth0 on DHCP, resolv.conf written", || {
        addrs4(&lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1."))
            && lab.resolv_conf().contains("nameserver 198.18.1.1")
    });
    let before = (addrs4(&lab, "eth0"), rules(&lab), lab.resolv_conf());

    let ipv4 = |args: &[&'static str]| -> Vec<String> {
        let mut cmd: Vec<String> = ["connmanctl", "config", &id, "--ipv4", "manual"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        cmd.extend(args.iter().map(|s| s.to_string()));
        cmd
    };
    let other = |option: &str, value: &str| -> Vec<String> {
        ["connmanctl", "config", &id, option, value]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            ipv4(&["127.0.0.1", "255.0.0.0"]),
            "IPv4.Configuration: Address: address 127.0.0.1 is in 127.0.0.0/8 (loopback)",
        ),
        (
            ipv4(&["240.0.0.1", "255.255.255.0"]),
            "IPv4.Configuration: Address: address 240.0.0.1 is in 240.0.0.0/4 (reserved, class E)",
        ),
        (
            ipv4(&["198.18.1.0", "255.255.255.0"]),
            "IPv4.Configuration: Address: address 198.18.1.0 is the network address of 198.18.1.0/24",
        ),
        (
            ipv4(&["198.18.1.255", "255.255.255.0"]),
            "IPv4.Configuration: Address: address 198.18.1.255 is the broadcast address",
        ),
        (
            ipv4(&["198.18.1.50", "0.0.0.0"]),
            "IPv4.Configuration: Netmask: prefix length 0 is outside 1..=32",
        ),
        (
            ipv4(&["198.18.1.50", "255.255.255.0", "224.0.0.1"]),
            "IPv4.Configuration: Gateway: gateway 224.0.0.1 is in 224.0.0.0/4 (multicast)",
        ),
        (
            ipv4(&["198.18.1.50", "255.255.255.0", "198.51.100.1"]),
            "IPv4.Configuration: Gateway: gateway 198.51.100.1 is not inside 198.18.1.0/24",
        ),
        (
            other("--nameservers", "127.0.0.1"),
            "Nameservers.Configuration: 127.0.0.1 is in 127.0.0.0/8 (loopback), not a server",
        ),
        (
            other("--timeservers", "0.0.0.0"),
            "Timeservers.Configuration: \"0.0.0.0\" is the unspecified address",
        ),
        (
            other("--domains", "-bad.example"),
            "Domains.Configuration: \"-bad.example\" is not a domain name",
        ),
    ];
    for (cmd, want) in cases {
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let out = lab.exec(&cmd);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(want), "{cmd:?}: want {want:?}, got {text:?}");
    }
    // A good call after the bad ones still works, so the daemon had them
    // all: then nothing of the refused ones was applied.
    lab.exec_ok(&[
        "connmanctl",
        "config",
        &id,
        "--timeservers",
        "ntp.up1.lab.test",
    ]);
    lab.wait_for(T, "timeserver name stored", || {
        std::fs::read_to_string(lab.state_dir().join(&id).join("settings"))
            .is_ok_and(|s| s.contains("Timeservers=ntp.up1.lab.test;"))
    });
    let after = (addrs4(&lab, "eth0"), rules(&lab), lab.resolv_conf());
    assert_eq!(before, after);
    let settings = std::fs::read_to_string(lab.state_dir().join(&id).join("settings")).unwrap();
    assert!(
        !settings.contains("IPv4.method=manual") && !settings.contains("Nameservers"),
        "{settings}"
    );
}
