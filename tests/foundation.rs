//! The foundation issue, end to end: pathman in a network namespace against
//! dnsmasq upstreams and a real dbus-daemon; every check looks at the kernel
//! (addresses, routes, rules), the written resolv.conf, or what Debian's own
//! connmanctl prints.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(15);

fn up(n: usize, daemon_args: &[&str]) -> Lab {
    let lab = Lab::up(n, &[]);
    lab.start_bus();
    lab.start_daemon(daemon_args);
    lab.wait_name("net.connman", T);
    lab
}

fn default_routes(lab: &Lab) -> Vec<String> {
    routes(lab, "main")
        .into_iter()
        .filter(|r| r.starts_with("default"))
        .collect()
}

/// Everything pathman owns in the kernel, as text, for before/after comparisons.
fn owned_state(lab: &Lab) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for fam in ["-4", "-6"] {
        for l in lab
            .exec_ok(&["ip", fam, "route", "show", "table", "all", "proto", "196"])
            .lines()
        {
            s.insert(format!("route {l}"));
        }
        for l in lab.exec_ok(&["ip", fam, "rule", "show"]).lines() {
            if l.contains("proto 196") {
                s.insert(format!("rule {l}"));
            }
        }
    }
    for k in 1..=lab.n {
        for a in addrs4(lab, lab.ifname(k)) {
            s.insert(format!("addr {} {a}", lab.ifname(k)));
        }
    }
    s
}

/// Calls pathman with dbus-send (as `prefix`, e.g. another uid) and returns
/// the error line, `Error <name>: <message>`; panics if the call succeeded.
fn dbus_error(lab: &Lab, prefix: &[&str], args: &[&str]) -> String {
    let mut cmd = prefix.to_vec();
    cmd.extend([
        "dbus-send",
        "--system",
        "--print-reply",
        "--dest=net.connman",
    ]);
    cmd.extend_from_slice(args);
    let out = lab.exec(&cmd);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn all_ready(lab: &Lab, n: usize) -> bool {
    (1..=n).all(|k| !addrs4(lab, lab.ifname(k)).is_empty()) && default_routes(lab).len() == n
}

#[test]
fn three_uplinks_come_up_with_ordered_default_routes_and_resolv_conf() {
    let lab = up(3, &[]);
    lab.wait_for(T, "3 uplinks with an address and a default route", || {
        all_ready(&lab, 3)
    });

    for k in 1..=3 {
        let a = addrs4(&lab, lab.ifname(k));
        assert_eq!(a.len(), 1, "one DHCP address on {}: {a:?}", lab.ifname(k));
        assert!(
            a[0].starts_with(&format!("198.18.{k}.1")) && a[0].ends_with("/24"),
            "{a:?}"
        );
    }
    // Metric 0 for the first service, 1024 + ifindex for the others, all ours.
    let d = default_routes(&lab);
    assert!(
        d[0].starts_with("default via 198.18.1.1 dev eth0 proto 196"),
        "{d:?}"
    );
    assert!(
        !d[0].contains("metric"),
        "default service has metric 0: {d:?}"
    );
    assert!(
        d[1].contains("via 198.18.2.1 dev eth1") && d[1].contains("metric 1027"),
        "{d:?}"
    );
    assert!(
        d[2].contains("via 198.18.3.1 dev eth2") && d[2].contains("metric 1028"),
        "{d:?}"
    );

    let resolv = lab.resolv_conf();
    assert!(resolv.contains("nameserver 198.18.1.1"), "{resolv}");
    assert!(resolv.contains("search up1.lab.test"), "{resolv}");
    assert!(
        !resolv.contains("198.18.2.1"),
        "only the default service's servers: {resolv}"
    );

    // pathmanctl and Debian's connmanctl see the same three ready services.
    lab.wait_for(T, "3 ready services in pathman ctl", || {
        ready_services(&lab) == 3
    });
    let cm = lab.exec_ok(&["connmanctl", "services"]);
    let ready: Vec<&str> = cm.lines().filter(|l| l.starts_with("*AR")).collect();
    assert_eq!(ready.len(), 3, "connmanctl services:\n{cm}");
    assert!(cm.contains("ethernet_02504d000001_cable"), "{cm}");
    let state = lab.exec_ok(&["connmanctl", "state"]);
    assert!(state.contains("State = ready"), "{state}");
    let techs = lab.exec_ok(&["connmanctl", "technologies"]);
    assert!(
        techs.contains("/net/connman/technology/ethernet") && techs.contains("Powered = True"),
        "{techs}"
    );
    let one = lab.exec_ok(&["connmanctl", "services", "ethernet_02504d000001_cable"]);
    assert!(one.contains("Interface=eth0"), "{one}");
    assert!(one.contains("Gateway=198.18.1.1"), "{one}");

    // IPv6 by kernel SLAAC, reported in Service.IPv6.
    lab.wait_for(T, "SLAAC address on eth0", || {
        !addrs6(&lab, "eth0").is_empty()
    });
    lab.wait_for(T, "IPv6 reported by the service", || {
        let one = lab.exec_ok(&["connmanctl", "services", "ethernet_02504d000001_cable"]);
        // In ConnMan's order: Method first.
        one.contains("IPv6 = [ Method=auto, Address=fd18:1:")
    });

    // The loop is single-threaded: main, async-io's reactor, and the settings writer
    // (src/daemon/saver.rs: an fsync never holds the loop) at most.
    let pid = lab.daemon_pid().expect("daemon pid");
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert!(tasks <= 3, "pathman runs {tasks} threads");
}

#[test]
fn carrier_loss_removes_everything_and_every_flap_recovers() {
    let lab = up(2, &[]);
    lab.wait_for(T, "2 uplinks ready", || all_ready(&lab, 2));
    for round in 0..3 {
        lab.link(1, false);
        lab.wait_for(T, "eth0's address and routes gone", || {
            addrs4(&lab, "eth0").is_empty() && default_routes(&lab).len() == 1
        });
        let d = default_routes(&lab);
        assert!(
            d[0].contains("dev eth1") && !d[0].contains("metric"),
            "round {round}: eth1 is now the default: {d:?}"
        );
        lab.link(1, true);
        lab.wait_for(T, "eth0 back with the default route", || {
            let d = default_routes(&lab);
            d.len() == 2 && d[0].contains("dev eth0") && !d[0].contains("metric")
        });
    }
}

/// The state pathman builds for `n` multipath uplinks once IPv6 is up too:
/// an address, a main default route, a source rule and a table with subnet
/// and default route per uplink and family.
fn multipath_complete(lab: &Lab, n: usize) -> bool {
    let s = owned_state(lab);
    let count = |f: &dyn Fn(&str) -> bool| s.iter().filter(|l| f(l)).count();
    count(&|l| l.starts_with("addr ")) == n
        && count(&|l| l.starts_with("rule ") && l.contains("from 198.18.")) == n
        && count(&|l| l.starts_with("rule ") && l.contains("from fd18:")) == n
        && count(&|l| l.starts_with("route default via fe80") && l.contains("table 2")) == n
        && count(&|l| l.starts_with("route default via 198.18.") && !l.contains("table")) == n
}

#[test]
fn sigkill_and_restart_converge_without_duplicates() {
    let lab = up(3, &["--mpathrouting"]);
    // Compare only complete states: IPv4 and SLAAC's IPv6 of all uplinks.
    lab.wait_for(T, "3 uplinks with IPv4 and IPv6 tables", || {
        multipath_complete(&lab, 3)
    });
    let before = owned_state(&lab);
    lab.kill_daemon();
    // A crashed pathman leaves its objects; the next one must adopt them, and
    // remove what it no longer wants (a stale rule and route of its own)
    // while leaving what others own alone.
    assert_eq!(owned_state(&lab), before);
    for cmd in [
        "ip rule add from 203.0.113.9 lookup 999 priority 31300 proto 196",
        "ip route add 203.0.113.0/24 dev eth0 table 999 proto 196",
        "ip rule add from 203.0.113.10 lookup 998 priority 31300",
        // On lo: the kernel flushes eth0's routes when its last address goes.
        "ip route add 203.0.113.0/24 dev lo table 998",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        lab.exec_ok(&args);
    }
    assert_ne!(owned_state(&lab), before);
    // Every change the restart makes, as the kernel reports it.
    let changes = Watch::start(&lab, &["ip", "monitor", "address", "route", "rule"]);
    lab.wait_for(T, "ip monitor subscribed", || {
        lab.exec_ok(&[
            "ip",
            "rule",
            "add",
            "from",
            "203.0.113.11",
            "lookup",
            "997",
            "priority",
            "31999",
        ]);
        lab.exec_ok(&[
            "ip",
            "rule",
            "del",
            "from",
            "203.0.113.11",
            "lookup",
            "997",
            "priority",
            "31999",
        ]);
        changes.seen("203.0.113.11")
    });
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "3 services ready again", || ready_services(&lab) == 3);
    lab.wait_for(
        T,
        "same kernel state after restart, stale objects gone",
        || owned_state(&lab) == before,
    );
    // The leases were taken over: the restart removed the stale objects and
    // touched nothing else (no address, route or rule of the uplinks was
    // deleted or added again). Ready is reported only after the first
    // reconcile, which is where churn would happen.
    let seen = changes.output();
    // (The kernel's own SLAAC and RA refreshes show up too; they are not
    // pathman's: IPv4 addresses and proto 196 objects are.)
    let churn: Vec<&str> = seen
        .lines()
        .filter(|l| !l.contains("203.0.113."))
        .filter(|l| l.contains("proto 196") || (l.contains(" inet ") && l.contains("198.18.")))
        .collect();
    assert!(
        churn.is_empty(),
        "the restart changed the uplinks: {churn:#?}"
    );
    assert!(
        lab.daemon_log().contains("keeping the lease"),
        "{}",
        lab.daemon_log()
    );
    let r = rules(&lab);
    let uniq: BTreeSet<&String> = r.iter().collect();
    assert_eq!(uniq.len(), r.len(), "duplicate rules: {r:?}");
    let foreign = |lab: &Lab| {
        rules(lab)
            .iter()
            .any(|r| r.contains("from 203.0.113.10 lookup 998"))
            && routes(lab, "998")
                .iter()
                .any(|r| r.starts_with("203.0.113.0/24 dev lo"))
    };
    assert!(foreign(&lab), "what others own is kept");

    // SIGTERM removes everything pathman installed, and only that.
    lab.stop_daemon();
    assert!(owned_state(&lab).is_empty(), "{:?}", owned_state(&lab));
    assert!(foreign(&lab), "what others own is kept");
}

#[test]
fn multipath_routing_builds_source_tables() {
    let lab = up(3, &["-M"]);
    lab.wait_for(T, "3 uplinks ready", || all_ready(&lab, 3));
    for k in 1..=3 {
        let dev = lab.ifname(k).to_string();
        let table = 255 + ifindex(&lab, &dev);
        let addr = addrs4(&lab, &dev)[0].split('/').next().unwrap().to_string();
        let want = format!("31300:\tfrom {addr} lookup {table} proto 196");
        lab.wait_for(T, &want, || rules(&lab).contains(&want));
        let t = routes(&lab, &table.to_string());
        assert!(
            t.iter()
                .any(|r| r.starts_with(&format!("default via 198.18.{k}.1 dev {dev}"))),
            "{t:?}"
        );
        assert!(
            t.iter()
                .any(|r| r.starts_with(&format!("198.18.{k}.0/24 dev {dev}"))),
            "{t:?}"
        );
    }
    // Turning it off for one service removes its rule and table.
    let id = "ethernet_02504d000002_cable";
    let table = (255 + ifindex(&lab, "eth1")).to_string();
    let out = lab.ctl(&["config", id, "--mpath_routing", "no"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.wait_for(T, "rule and table of eth1 gone", || {
        routes(&lab, &table).is_empty()
            && !rules(&lab)
                .iter()
                .any(|r| r.contains(&format!("lookup {table}")))
    });
}

#[test]
fn connmanctl_configures_services() {
    let lab = up(2, &[]);
    lab.wait_for(T, "2 uplinks ready", || all_ready(&lab, 2));
    let id = "ethernet_02504d000001_cable";

    lab.exec_ok(&[
        "connmanctl",
        "config",
        id,
        "--ipv4",
        "manual",
        "10.9.8.7",
        "255.255.255.0",
        "10.9.8.1",
    ]);
    lab.wait_for(T, "manual address on eth0", || {
        addrs4(&lab, "eth0") == vec!["10.9.8.7/24".to_string()]
    });
    lab.wait_for(T, "manual gateway is the default", || {
        default_routes(&lab)
            .iter()
            .any(|r| r.starts_with("default via 10.9.8.1 dev eth0"))
    });
    let settings = std::fs::read_to_string(lab.state_dir().join(id).join("settings")).unwrap();
    assert!(
        settings.contains("IPv4.method=manual") && settings.contains("IPv4.local_address=10.9.8.7"),
        "{settings}"
    );

    lab.exec_ok(&[
        "connmanctl",
        "config",
        id,
        "--nameservers",
        "192.0.2.53",
        "192.0.2.54",
    ]);
    lab.wait_for(T, "configured nameservers first", || {
        lab.resolv_conf()
            .contains("nameserver 192.0.2.53\nnameserver 192.0.2.54")
    });

    lab.exec_ok(&["connmanctl", "config", id, "--ipv4", "dhcp"]);
    lab.wait_for(T, "DHCP address back on eth0", || {
        addrs4(&lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1."))
    });

    let out = lab.exec_ok(&["connmanctl", "disconnect", id]);
    assert!(out.contains("Disconnected"), "{out}");
    lab.wait_for(T, "eth0 unconfigured", || addrs4(&lab, "eth0").is_empty());
    lab.exec_ok(&["connmanctl", "connect", id]);
    lab.wait_for(T, "eth0 configured again", || {
        !addrs4(&lab, "eth0").is_empty()
    });

    let out = lab.exec_ok(&["connmanctl", "disable", "ethernet"]);
    assert!(out.contains("Disable") && out.contains("ethernet"), "{out}");
    lab.wait_for(T, "links down, nothing configured", || {
        default_routes(&lab).is_empty()
            && !lab.exec_ok(&["ip", "link", "show", "eth0"]).contains(",UP")
    });
    lab.exec_ok(&["connmanctl", "enable", "ethernet"]);
    lab.wait_for(T, "both uplinks back", || all_ready(&lab, 2));
}

#[test]
fn bad_dbus_calls_get_connman_errors_and_change_nothing() {
    let lab = up(1, &[]);
    lab.wait_for(T, "uplink ready", || all_ready(&lab, 1));
    let before = owned_state(&lab);
    let path = "/net/connman/service/ethernet_02504d000001_cable";
    let call = |args: &[&str]| {
        let mut cmd = vec!["busctl", "--system", "call", "net.connman"];
        cmd.extend_from_slice(args);
        let out = lab.exec(&cmd);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "sv",
                "AutoConnect",
                "s",
                "yes",
            ],
            "boolean",
        ),
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "sv",
                "Bogus",
                "b",
                "true",
            ],
            "Bogus",
        ),
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "s",
                "AutoConnect",
            ],
            "Method \"SetProperty\" with signature \"s\" on interface \"net.connman.Service\" doesn't exist",
        ),
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "sv",
                "IPv4.Configuration",
                "a{sv}",
                "3",
                "Method",
                "s",
                "manual",
                "Address",
                "s",
                "10.1.1.1",
                "Netmask",
                "s",
                "255.0.255.0",
            ],
            "not contiguous",
        ),
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "sv",
                "IPv4.Configuration",
                "a{sv}",
                "2",
                "Method",
                "s",
                "manual",
                "Address",
                "s",
                "300.1.1.1",
            ],
            "not an IPv4 address",
        ),
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "sv",
                "Nameservers.Configuration",
                "as",
                "1",
                "x.y",
            ],
            "not an IP address",
        ),
        (
            vec![
                path,
                "net.connman.Service",
                "SetProperty",
                "sv",
                "MultipathTcpLink",
                "s",
                "maybe",
            ],
            "on, backup or off",
        ),
        (
            vec![
                "/net/connman/service/nope",
                "net.connman.Service",
                "Connect",
            ],
            "doesn't exist",
        ),
        (
            vec![
                "/",
                "net.connman.Manager",
                "SetProperty",
                "sv",
                "State",
                "s",
                "online",
            ],
            "not writable",
        ),
    ];
    for (args, want) in cases {
        let (ok, err) = call(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(
            err.contains(want),
            "{args:?}: error should mention '{want}': {err}"
        );
    }
    // The error *names* are ConnMan's, and libdbus's for calls that name no
    // method or no object (busctl shows only the message).
    let name_cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                path,
                "net.connman.Service.SetProperty",
                "string:AutoConnect",
                "variant:string:yes",
            ],
            "net.connman.Error.InvalidArguments",
        ),
        (
            vec![
                path,
                "net.connman.Service.SetProperty",
                "string:Bogus",
                "variant:boolean:true",
            ],
            "net.connman.Error.InvalidProperty",
        ),
        (
            vec![
                path,
                "net.connman.Service.SetProperty",
                "string:AutoConnect",
            ],
            "org.freedesktop.DBus.Error.UnknownMethod",
        ),
        (
            vec![path, "net.connman.Service.Bogus"],
            "org.freedesktop.DBus.Error.UnknownMethod",
        ),
        (
            vec![
                path,
                "net.connman.Service.SetProperty",
                "string:MultipathTcpLink",
                "variant:string:maybe",
            ],
            "net.connman.Error.InvalidArguments",
        ),
        (
            vec!["/net/connman/service/nope", "net.connman.Service.Connect"],
            "org.freedesktop.DBus.Error.UnknownObject",
        ),
        (
            vec![
                "/",
                "net.connman.Manager.SetProperty",
                "string:State",
                "variant:string:online",
            ],
            "net.connman.Error.InvalidProperty",
        ),
        (
            vec![path, "net.connman.Service.Connect"],
            "net.connman.Error.AlreadyConnected",
        ),
    ];
    for (args, name) in name_cases {
        let err = dbus_error(&lab, &[], &args);
        assert!(
            err.starts_with(&format!("Error {name}: ")),
            "{args:?}: {err}"
        );
    }
    // Non-root callers may read but not change.
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let err = dbus_error(&lab, &nobody, &[path, "net.connman.Service.Disconnect"]);
    assert!(
        err.starts_with("Error net.connman.Error.PermissionDenied: ")
            && err.contains("root or the admin group"),
        "{err}"
    );
    let mut read = nobody.to_vec();
    read.extend([
        "busctl",
        "--system",
        "call",
        "net.connman",
        "/",
        "net.connman.Manager",
        "GetServices",
    ]);
    let out = lab.exec(&read);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(owned_state(&lab), before, "nothing changed");
    assert!(lab.daemon_pid().is_some(), "daemon still running");
}

#[test]
fn corrupt_state_files_are_replaced_not_fatal() {
    let lab = Lab::up(1, &[]);
    lab.start_bus();
    let id = "ethernet_02504d000001_cable";
    let dir = lab.state_dir().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("settings"),
        b"\xff\xfe[garbage\nIPv4.method=\x00\n",
    )
    .unwrap();
    std::fs::write(
        lab.state_dir().join("settings"),
        b"[global\nOfflineMode=perhaps\n",
    )
    .unwrap();
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "uplink ready despite corrupt state", || {
        all_ready(&lab, 1)
    });
    // Both corrupt files are named in a warning and replaced by defaults.
    let log = lab.daemon_log();
    let id_file = format!("{id}/settings:");
    assert!(
        log.lines()
            .any(|l| l.starts_with("WARN") && l.contains(&id_file) && l.contains("using defaults")),
        "{log}"
    );
    assert!(log.contains("state/settings:"), "{log}");
    // The service works with defaults (DHCP) and its settings are written anew.
    lab.exec_ok(&["connmanctl", "config", id, "--autoconnect", "yes"]);
    lab.wait_for(T, "settings rewritten", || {
        std::fs::read_to_string(dir.join("settings")).is_ok_and(|s| s.contains("AutoConnect=true"))
    });
}

#[test]
fn board_config_classifies_a_gadget_port() {
    let lab = Lab::up(2, &[]);
    let board = lab.dir.join("board.conf");
    std::fs::write(
        &board,
        "[Board]\nName=test\n[Interfaces]\nManage=eth0,eth1\n[Interface eth0]\nTechnology=gadget\n",
    )
    .unwrap();
    lab.start_bus();
    lab.start_daemon(&["--board", board.to_str().unwrap()]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "both uplinks ready", || all_ready(&lab, 2));
    let out = lab.exec_ok(&["connmanctl", "services"]);
    assert!(out.contains("gadget_02504d000001_usb"), "{out}");
    assert!(out.contains("ethernet_02504d000002_cable"), "{out}");
    let techs = lab.exec_ok(&["connmanctl", "technologies"]);
    assert!(techs.contains("/net/connman/technology/gadget"), "{techs}");
    // Ethernet ranks above gadget although the gadget port has the lower
    // ifindex: eth1 holds the default route.
    let d = default_routes(&lab);
    assert!(
        d[0].contains("dev eth1") && !d[0].contains("metric"),
        "{d:?}"
    );
}

#[test]
fn link_local_address_when_no_dhcp_server_answers() {
    // Upstream 1 has no DHCP server (so eth0 falls back to IPv4LL); upstream 2 is normal.
    let lab = Lab::up(2, &["--no-ipv6"]);
    lab.dhcp(1, false);
    lab.start_bus();
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    // IPv4LL starts after three unanswered DISCOVERs (4 s + 8 s of backoff),
    // then probes and announces per RFC 3927.
    lab.wait_for(
        Duration::from_secs(45),
        "a 169.254/16 address on eth0",
        || {
            // The kernel gives 169.254/16 link scope, so look at every scope.
            let a = lab.exec_ok(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
            a.contains("inet 169.254.") && a.contains("/16")
        },
    );
    let one = lab.exec_ok(&["connmanctl", "services", "ethernet_02504d000001_cable"]);
    assert!(
        one.contains("Method=auto") && one.contains("Address=169.254."),
        "{one}"
    );
    assert!(one.contains("State = ready"), "{one}");
    // Beside an uplink with a gateway, the link-local one gets no default route (it
    // would black-hole everything) and is not the default service.
    lab.wait_for(T, "eth1's lease and default route", || {
        default_routes(&lab)
            .iter()
            .any(|r| r.starts_with("default via 198.18.2.1 dev eth1"))
    });
    let d = default_routes(&lab);
    assert_eq!(d.len(), 1, "only eth1's default route: {d:?}");
    assert_eq!(services(&lab)[0].2, "ethernet_02504d000002_cable");
    // Alone, a link-local service keeps a device default route: on a LAN without any
    // router every host is on the link.
    lab.link(2, false);
    lab.wait_for(
        T,
        "a device default route on the link-local service",
        || {
            let d = default_routes(&lab);
            d.len() == 1 && d[0].starts_with("default dev eth0")
        },
    );
}

#[test]
fn connmanctl_monitor_sees_services_come_and_go() {
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    let lab = up(2, &[]);
    lab.wait_for(T, "2 uplinks ready", || all_ready(&lab, 2));
    let mut child = std::process::Command::new(lab_script())
        .args(["exec", &lab.id, "stdbuf", "-oL", "connmanctl", "monitor"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("connmanctl monitor");
    let out = Arc::new(Mutex::new(String::new()));
    {
        let out = out.clone();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut o = out.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    let seen = |what: &str| out.lock().unwrap().contains(what);
    // The monitor is subscribed once it reports a change we make. Every
    // probe sets a new value: setting the same one again changes nothing
    // and emits no signal, so a probe made before the monitor subscribed
    // would never show.
    let id = "ethernet_02504d000001_cable";
    let mut n = 0;
    lab.wait_for(T, "monitor subscribed", || {
        n += 1;
        let domain = format!("probe{n}.test");
        lab.exec_ok(&["connmanctl", "config", id, "--domains", &domain]);
        seen("Domains.Configuration = [ probe")
    });
    lab.link(2, false);
    lab.wait_for(T, "monitor saw eth1's service go", || {
        seen("removed                  /net/connman/service/ethernet_02504d000002_cable")
    });
    lab.link(2, true);
    lab.wait_for(T, "monitor saw eth1's service ready with IPv4", || {
        seen("Service      ethernet_02504d000002_cable State = ready")
            && seen("ethernet_02504d000002_cable IPv4 = [ Method=dhcp, Address=198.18.2.")
    });
    let _ = child.kill();
    let _ = child.wait();
}
