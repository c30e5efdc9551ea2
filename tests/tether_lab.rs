//! Tethering in the namespace lab: LAN ports (veths named by a board config `Role=lan`)
//! with client namespaces behind them (`lab.sh lan`) running the three real DHCP clients
//! — busybox udhcpc, ISC dhclient, dhcpcd — against pathman's DHCP server, and reaching
//! the lab's "internet" server through pathman's NAT. What is checked is the kernel's
//! (bridge, ports, addresses, nft table, ip_forward), the wire (the clients' leases, a
//! ping answered from the internet side) and the leases file, not only what pathman says.
//! Needs root; never skips.
mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const INET_SERVER: &str = "198.19.0.1";

struct Tether {
    lab: Lab,
    board: String,
    conf: String,
}

impl Tether {
    /// One uplink with an internet behind it, LAN ports `lans` (each with a client
    /// namespace), pathman with a board config naming them LAN ports and `conf` as
    /// main.conf's [General] lines.
    fn up(lans: &[&str], conf: &str) -> Tether {
        Tether::up_with(1, lans, conf, "[Interface lan*]\nRole=lan\n")
    }

    /// `n` uplinks, and `board` as the board config's interface groups.
    fn up_with(n: usize, lans: &[&str], conf: &str, board_groups: &str) -> Tether {
        let lab = Lab::up_prefixed("te", n, &["--inet", "--no-ipv6"]);
        for l in lans {
            ok(lab.cmd("lan", &["add", l]), "lab.sh lan add");
        }
        lab.start_bus();
        let board = lab.dir.join("board-tether.conf");
        std::fs::write(
            &board,
            format!("[Board]\nName=lab-tether\n\n{board_groups}"),
        )
        .expect("write board config");
        let main = lab.dir.join("main-tether.conf");
        std::fs::write(&main, format!("[General]\n{conf}\n")).expect("write main.conf");
        let t = Tether {
            lab,
            board: board.to_str().unwrap().to_string(),
            conf: main.to_str().unwrap().to_string(),
        };
        t.start();
        t
    }

    fn start(&self) {
        self.lab
            .start_daemon(&["--board", &self.board, "-c", &self.conf]);
        self.lab.wait_name("net.connman", Duration::from_secs(10));
        let n = self.lab.n;
        self.lab
            .wait_for(T, "the uplinks ready", || ready_services(&self.lab) >= n);
    }

    fn tether(&self, on: bool) -> String {
        ok(
            self.lab
                .ctl(&["tether", "ethernet", if on { "on" } else { "off" }]),
            "ctl tether ethernet",
        )
    }

    /// `ctl ARGS` that must fail: what it printed (stderr, then stdout).
    fn ctl_refused(&self, args: &[&str]) -> String {
        let out = self.lab.ctl(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "ctl {args:?} succeeded: {err}");
        err
    }

    fn client(&self, lan: &str, prog: &str, action: &str) -> String {
        ok(
            self.lab.cmd("lan", &["client", lan, prog, action]),
            "lab.sh lan client",
        )
    }

    fn in_client(&self, lan: &str, cmd: &[&str]) -> std::process::Output {
        let mut a = vec!["exec", lan];
        a.extend_from_slice(cmd);
        self.lab.cmd("lan", &a)
    }

    /// The client's script log (`<client> <event> <ip>/<len> router <r> dns <d>`).
    fn events(&self, lan: &str) -> Vec<String> {
        std::fs::read_to_string(self.lab.dir.join(format!("c{lan}/script.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The address of the client's last bound/renew/rebind/reboot event.
    fn leased(&self, lan: &str) -> Option<String> {
        self.events(lan)
            .iter()
            .rev()
            .find(|l| {
                let ev = l.split_whitespace().nth(1).unwrap_or("");
                matches!(ev, "bound" | "renew" | "rebind" | "reboot")
            })
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
    }

    /// Leases the client took so far (bound, renew, rebind, reboot events).
    fn binds(&self, lan: &str) -> usize {
        ["bound", "renew", "rebind", "reboot"]
            .iter()
            .map(|e| self.count(lan, e))
            .sum()
    }

    fn count(&self, lan: &str, event: &str) -> usize {
        self.events(lan)
            .iter()
            .filter(|l| l.split_whitespace().nth(1) == Some(event))
            .count()
    }

    /// The client's IPv4 addresses as its kernel has them.
    fn client_addrs(&self, lan: &str) -> Vec<String> {
        let out = self.in_client(lan, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.find(|w| *w == "inet")?;
                it.next().map(str::to_owned)
            })
            .collect()
    }

    fn leases_file(&self) -> String {
        std::fs::read_to_string(self.lab.state_dir().join("tether.leases")).unwrap_or_default()
    }

    fn nft(&self) -> String {
        String::from_utf8_lossy(
            &self
                .lab
                .exec(&["nft", "list", "table", "inet", "pathman"])
                .stdout,
        )
        .into_owned()
    }

    fn ip_forward(&self) -> String {
        ok(
            self.lab.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"]),
            "read ip_forward",
        )
        .trim()
        .to_string()
    }

    fn ports(&self) -> String {
        String::from_utf8_lossy(
            &self
                .lab
                .exec(&["ip", "-o", "link", "show", "master", "tether"])
                .stdout,
        )
        .into_owned()
    }

    /// The DHCP server's counters from `state --all` (`dhcp server tether: received N
    /// offers N …`), by name; None while the dump has no such line.
    fn server_stats(&self) -> Option<std::collections::HashMap<String, u64>> {
        let dump = ok(self.lab.ctl(&["state", "--all"]), "ctl state --all");
        let line = dump
            .lines()
            .find_map(|l| l.trim().strip_prefix("dhcp server tether: "))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        Some(
            words
                .chunks(2)
                .filter_map(|kv| Some((kv[0].to_string(), kv.get(1)?.parse().ok()?)))
                .collect(),
        )
    }

    fn pings_internet(&self, lan: &str) -> bool {
        self.in_client(lan, &["ping", "-c", "1", "-W", "1", INET_SERVER])
            .status
            .success()
    }
}

fn in_block(addr: &str) -> bool {
    let ip = addr.split('/').next().unwrap_or("");
    let last: u32 = ip
        .rsplit('.')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    ip.starts_with("192.168.0.") && (2..=253).contains(&last) && addr.ends_with("/24")
}

#[test]
fn three_real_dhcp_clients_lease_renew_reach_the_internet_through_nat_and_release() {
    // A 30 s lease: every client renews (RENEWING, unicast to the server) within the test.
    let t = Tether::up(&["lan0", "lan1", "lan2"], "TetheringLeaseTime=30");
    assert_eq!(t.ip_forward(), "0", "the lab starts without forwarding");
    let out = t.tether(true);
    assert!(out.contains("Enabled tethering for ethernet"), "{out}");
    t.lab.wait_for(T, "the bridge with its address", || {
        addrs4(&t.lab, "tether")
            .iter()
            .any(|a| a == "192.168.0.1/24")
    });
    t.lab.wait_for(T, "the three LAN ports in the bridge", || {
        let p = t.ports();
        ["lan0", "lan1", "lan2"]
            .iter()
            .all(|l| p.contains(&format!(" {l}@")))
    });
    t.lab
        .wait_for(T, "IPv4 forwarding on", || t.ip_forward() == "1");
    let nft = t.nft();
    assert!(
        nft.contains("ip saddr 192.168.0.0/24 oif \"eth0\" masquerade"),
        "{nft}"
    );
    let techs = ok(t.lab.ctl(&["technologies"]), "ctl technologies");
    assert!(techs.contains("Tethering = True"), "{techs}");

    let clients = [("lan0", "udhcpc"), ("lan1", "dhclient"), ("lan2", "dhcpcd")];
    for (lan, prog) in clients {
        t.client(lan, prog, "start");
    }
    for (lan, prog) in clients {
        t.lab
            .wait_for(T, &format!("{prog} bound"), || t.leased(lan).is_some());
        let a = t.leased(lan).unwrap();
        assert!(in_block(&a), "{prog} got {a}: {:?}", t.events(lan));
        let line = t
            .events(lan)
            .into_iter()
            .find(|l| l.contains(" bound "))
            .unwrap();
        assert!(line.contains("router 192.168.0.1"), "{line}");
        // pathman runs no DNS proxy: the default service's server (upstream 1's dnsmasq).
        assert!(line.contains("dns 198.18.1.1"), "{line}");
        t.lab
            .wait_for(T, &format!("{prog}'s address in its kernel"), || {
                t.client_addrs(lan).contains(&a)
            });
    }
    let mut leased: Vec<String> = clients.iter().map(|(l, _)| t.leased(l).unwrap()).collect();
    leased.sort();
    leased.dedup();
    assert_eq!(leased.len(), 3, "three different addresses: {leased:?}");
    for (lan, prog) in clients {
        t.lab.wait_for(
            T,
            &format!("{prog}'s client pings the internet through NAT"),
            || t.pings_internet(lan),
        );
    }
    // The internet side has no route to the clients' block: its answers reached them
    // only because they were addressed to the uplink (masquerade).
    let route = std::process::Command::new("ip")
        .args(["-n", &t.lab.ns("inet"), "route", "get", "192.168.0.50"])
        .output()
        .expect("ip route get");
    assert!(
        !route.status.success(),
        "the internet routes 192.168.0.0/24 itself"
    );
    // The server's own count in state --all: at least one ACK per client that holds a lease.
    let stats = t.server_stats().expect("a dhcp server line in state --all");
    let acks = stats["acks"];
    assert!(acks >= 3, "{stats:?}");
    assert!(stats["received"] >= stats["offers"] + acks, "{stats:?}");
    let listed = ok(t.lab.ctl(&["tethering_clients"]), "ctl tethering_clients");
    for mac in [
        "02:50:4D:20:00:01",
        "02:50:4D:20:00:02",
        "02:50:4D:20:00:03",
    ] {
        assert!(listed.contains(mac), "{mac} not in {listed}");
    }
    let file = t.leases_file();
    for a in &leased {
        let ip = a.split('/').next().unwrap();
        assert!(file.contains(ip), "{ip} not in the leases file:\n{file}");
    }
    // Renewal at T1 (15 s), unicast to the server: each lease is extended, same address.
    for (lan, prog) in clients {
        t.lab
            .wait_for(Duration::from_secs(60), &format!("{prog} renewed"), || {
                t.count(lan, "renew") >= 1
            });
        assert_eq!(t.leased(lan).as_deref(), Some(leased_of(&t, lan).as_str()));
    }
    // Each renewal was an ACK the counter saw.
    t.lab.wait_for(T, "the renewals' ACKs counted", || {
        t.server_stats().is_some_and(|s| s["acks"] >= acks + 3)
    });
    // Release, each client its own way: the lease leaves the server.
    for (lan, prog) in clients {
        t.client(lan, prog, "release");
    }
    t.lab.wait_for(T, "no tethered clients left", || {
        ok(t.lab.ctl(&["tethering_clients"]), "ctl tethering_clients")
            .trim()
            .is_empty()
    });
    for (lan, prog) in clients {
        t.client(lan, prog, "stop");
    }
    t.tether(false);
    t.lab.wait_for(T, "the bridge gone", || {
        !ok(t.lab.exec(&["ip", "-o", "link"]), "ip link").contains(" tether:")
    });
    t.lab
        .wait_for(T, "IPv4 forwarding restored", || t.ip_forward() == "0");
    t.lab
        .wait_for(T, "no masquerade left", || !t.nft().contains("masquerade"));
}

/// The address a client holds now (its last bound/renew event).
fn leased_of(t: &Tether, lan: &str) -> String {
    t.leased(lan).unwrap_or_default()
}

#[test]
fn two_clients_at_once_a_restart_keeps_their_leases() {
    let t = Tether::up(&["lan0", "lan1"], "PersistentTetheringMode=true");
    t.tether(true);
    t.client("lan0", "udhcpc", "start");
    t.client("lan1", "dhcpcd", "start");
    t.lab.wait_for(T, "both bound", || {
        t.leased("lan0").is_some() && t.leased("lan1").is_some()
    });
    let before = (t.leased("lan0").unwrap(), t.leased("lan1").unwrap());
    assert_ne!(before.0, before.1);
    // A crash: the leases file written before it is what the next pathman starts from.
    t.lab.kill_daemon();
    t.start();
    t.lab.wait_for(T, "tethering back (persistent mode)", || {
        addrs4(&t.lab, "tether")
            .iter()
            .any(|a| a == "192.168.0.1/24")
    });
    // Both clients renew now: the server must ACK their addresses, not NAK them.
    let binds = (t.binds("lan0"), t.binds("lan1"));
    t.client("lan0", "udhcpc", "renew");
    t.client("lan1", "dhcpcd", "renew");
    t.lab.wait_for(T, "both renewed", || {
        t.binds("lan0") > binds.0 && t.binds("lan1") > binds.1
    });
    assert_eq!(
        t.leased("lan0").unwrap(),
        before.0,
        "{:?}",
        t.events("lan0")
    );
    assert_eq!(
        t.leased("lan1").unwrap(),
        before.1,
        "{:?}",
        t.events("lan1")
    );
    assert_eq!(t.count("lan0", "nak") + t.count("lan1", "nak"), 0);
    for l in ["lan0", "lan1"] {
        assert!(
            t.pings_internet(l),
            "{l} reaches the internet after the restart"
        );
    }
    // The forwarding setting from before the crash comes back, not the crashed one's.
    t.tether(false);
    t.lab
        .wait_for(T, "IPv4 forwarding as before the crash", || {
            t.ip_forward() == "0"
        });
}

#[test]
fn an_address_landing_in_the_tether_block_moves_tethering_and_clients_follow() {
    let t = Tether::up(&["lan0"], "TetheringLeaseTime=30");
    t.tether(true);
    // dhclient: it renews at T1 and rebinds at T2 by itself, where it is told.
    t.client("lan0", "dhclient", "start");
    t.lab.wait_for(T, "bound", || t.leased("lan0").is_some());
    assert!(in_block(&t.leased("lan0").unwrap()));
    // Another daemon puts an address into 192.168.0.0/24 on an interface pathman does
    // not manage: tethering moves to the next free block.
    ok(
        t.lab.exec(&[
            "ip", "link", "add", "pmx0", "type", "veth", "peer", "name", "pmx1",
        ]),
        "add a veth",
    );
    ok(
        t.lab
            .exec(&["ip", "addr", "add", "192.168.0.77/24", "dev", "pmx0"]),
        "add a colliding address",
    );
    t.lab.wait_for(T, "the bridge on 192.168.1.1", || {
        addrs4(&t.lab, "tether") == vec!["192.168.1.1/24".to_string()]
    });
    assert!(t
        .lab
        .daemon_log()
        .contains("moving tethering to a free block"));
    assert!(t.nft().contains("ip saddr 192.168.1.0/24"), "{}", t.nft());
    // The client renews at T1, is NAKed (wrong subnet) and takes a lease in the new block.
    t.lab.wait_for(
        Duration::from_secs(60),
        "the client in 192.168.1.0/24",
        || {
            t.leased("lan0")
                .is_some_and(|a| a.starts_with("192.168.1."))
        },
    );
    t.lab
        .wait_for(T, "the moved client pings the internet", || {
            t.pings_internet("lan0")
        });
}

#[test]
fn tethering_fast_path_off_nats_without_a_flowtable() {
    let t = Tether::up(&["lan0"], "TetheringFastPath=false");
    t.tether(true);
    t.lab.wait_for(T, "the masquerade rule", || {
        t.nft()
            .contains("ip saddr 192.168.0.0/24 oif \"eth0\" masquerade")
    });
    t.client("lan0", "udhcpc", "start");
    t.lab.wait_for(T, "leased", || t.leased("lan0").is_some());
    t.lab
        .wait_for(T, "the client pings the internet through NAT", || {
            t.pings_internet("lan0")
        });
    let nft = t.nft();
    assert!(
        !nft.contains("flowtable") && !nft.contains("chain fastpath"),
        "{nft}"
    );
    // Never tried, so never refused: this kernel's answer plays no part.
    assert!(
        !t.lab.daemon_log().contains("no flowtable on"),
        "{}",
        t.lab.daemon_log()
    );
    let dump = ok(t.lab.ctl(&["state", "--all"]), "ctl state --all");
    assert!(
        dump.contains("  flowtable off (main.conf TetheringFastPath=false)\n"),
        "{dump}"
    );
    t.client("lan0", "udhcpc", "stop");
}

#[test]
fn bad_tethering_requests_get_connman_errors_and_change_nothing() {
    // No LAN port: ethernet has nothing to tether.
    let t = Tether::up(&[], "");
    let err = t.ctl_refused(&["tether", "ethernet", "on"]);
    assert!(
        err.contains("No carrier") || err.contains("NoCarrier"),
        "{err}"
    );
    let err = t.ctl_refused(&["tether", "ethernet", "off"]);
    assert!(err.contains("Already disabled"), "{err}");
    assert!(!ok(t.lab.exec(&["ip", "-o", "link"]), "ip link").contains(" tether:"));
    assert_eq!(t.ip_forward(), "0");
    let techs = ok(t.lab.ctl(&["technologies"]), "ctl technologies");
    assert!(!techs.contains("Tethering = True"), "{techs}");
}

#[test]
fn a_technology_main_conf_leaves_out_of_tethering_is_not_supported_and_nothing_changes() {
    // A LAN port that could be tethered, but main.conf lets only the gadget tether.
    let t = Tether::up(&["lan0"], "TetheringTechnologies=gadget");
    let err = t.ctl_refused(&["tether", "ethernet", "on"]);
    assert!(
        err.contains("Not supported") || err.contains("NotSupported"),
        "{err}"
    );
    assert!(err.contains("TetheringTechnologies"), "{err}");
    assert!(!ok(t.lab.exec(&["ip", "-o", "link"]), "ip link").contains(" tether:"));
    assert_eq!(t.ports(), "", "lan0 in no bridge");
    assert_eq!(t.ip_forward(), "0");
    assert!(!t.nft().contains("masquerade"), "{}", t.nft());
    let techs = ok(t.lab.ctl(&["technologies"]), "ctl technologies");
    assert!(!techs.contains("Tethering = True"), "{techs}");
    // No DHCP server was started.
    let log = t.lab.daemon_log();
    assert!(!log.contains("dhcp server on"), "{log}");
}

#[test]
fn ports_join_the_bridge_only_once_it_has_its_address() {
    // A client's first DISCOVER comes in through a port, so the ports join last, once the
    // bridge has its address (and the server and NAT behind it). One rtnetlink monitor sees
    // the kernel's address and link changes in the order the kernel made them.
    let t = Tether::up(&["lan0", "lan1"], "");
    let mon = Watch::start(&t.lab, &["ip", "-o", "monitor", "link", "address"]);
    // The monitor listens once it has seen a change made after it started.
    t.lab.wait_for(T, "the monitor listening", || {
        let _ = t
            .lab
            .exec(&["ip", "addr", "replace", "127.0.0.9/8", "dev", "lo"]);
        mon.seen("127.0.0.9/8")
    });
    ok(
        t.lab
            .exec(&["ip", "addr", "del", "127.0.0.9/8", "dev", "lo"]),
        "ip addr del",
    );
    t.tether(true);
    let joined = |out: &str, lan: &str| {
        out.lines()
            .position(|l| l.contains(&format!(" {lan}@")) && l.contains(" master tether "))
    };
    t.lab.wait_for(T, "both ports' joins in the monitor", || {
        let out = mon.output();
        joined(&out, "lan0").is_some() && joined(&out, "lan1").is_some()
    });
    let out = mon.output();
    let address = out
        .lines()
        .position(|l| l.contains(" tether ") && l.contains("inet 192.168.0.1/24"))
        .unwrap_or_else(|| panic!("no address on the bridge in:\n{out}"));
    for lan in ["lan0", "lan1"] {
        let join = joined(&out, lan).unwrap();
        assert!(
            address < join,
            "{lan} joined (line {join}) before the bridge had its address (line {address}):\n{out}"
        );
    }
}

/// `python3 tests/lab/dhcp_load.py --iface IFACE ARGS…` as a command line.
fn load_cmd(iface: &str, args: &[&str]) -> Vec<String> {
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/dhcp_load.py");
    let mut cmd = vec![
        "python3".to_string(),
        tool.to_str().unwrap().to_string(),
        "--iface".into(),
        iface.into(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

/// The load tool in the DUT namespace on `iface`.
fn load_tool(lab: &Lab, iface: &str, args: &[&str]) -> std::process::Output {
    let cmd = load_cmd(iface, args);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    lab.exec(&cmd)
}

#[test]
fn the_load_tool_does_what_it_says_against_dnsmasq() {
    // No pathman: the tool on the DUT's eth0 against upstream 1's dnsmasq (pool .100-.199).
    let lab = Lab::up_prefixed("te", 1, &["--no-ipv6"]);
    ok(lab.exec(&["ip", "link", "set", "eth0", "up"]), "eth0 up");
    let out = ok(
        load_tool(
            &lab,
            "eth0",
            &["load", "--count", "50", "--renew", "--release"],
        ),
        "load against dnsmasq",
    );
    assert!(out.contains("dora: 50/50 ok, 0 errors"), "{out}");
    assert!(out.contains("renew: 50/50 ok, 0 errors"), "{out}");
    let out = ok(
        load_tool(&lab, "eth0", &["decline"]),
        "decline against dnsmasq",
    );
    assert!(out.contains("declined 198.18.1."), "{out}");
    let out = ok(
        load_tool(&lab, "eth0", &["hostile", "--server-ip", "198.18.1.1"]),
        "hostile against dnsmasq",
    );
    assert!(out.contains("after them:"), "{out}");
}

#[test]
fn two_hundred_clients_hostile_packets_a_flood_and_a_decline_leave_the_server_serving() {
    let t = Tether::up(&["lan0"], "");
    t.tether(true);
    t.lab.wait_for(T, "the bridge with its address", || {
        addrs4(&t.lab, "tether")
            .iter()
            .any(|a| a == "192.168.0.1/24")
    });
    let tool = |args: &[&str]| -> std::process::Output {
        let cmd = load_cmd("eth0", args);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        t.in_client("lan0", &cmd)
    };
    let out = ok(tool(&["load", "--count", "200", "--renew"]), "200 clients");
    assert!(out.contains("dora: 200/200 ok, 0 errors"), "{out}");
    assert!(out.contains("renew: 200/200 ok, 0 errors"), "{out}");
    // The leases file holds all of them, one line each, no address twice (it is written
    // at most every 100 ms: wait for the last write).
    t.lab.wait_for(T, "200 leases in the file", || {
        t.leases_file().lines().count() == 201
    });
    let file = t.leases_file();
    let mut addrs: Vec<&str> = file
        .lines()
        .skip(1)
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(addrs.len(), 200, "{file}");
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 200);
    let pid = t.lab.daemon_pid().expect("pathman runs");
    let out = ok(
        tool(&["hostile", "--server-ip", "192.168.0.1"]),
        "hostile packets",
    );
    assert!(out.contains("after them:"), "{out}");
    // Only 52 addresses are left: a flood from random MACs takes offers, never leases,
    // and a real client still gets one.
    let out = ok(
        tool(&["flood", "--rate", "10000", "--seconds", "2"]),
        "a DISCOVER flood",
    );
    assert!(out.contains("after it:"), "{out}");
    let out = ok(tool(&["--seed", "9", "decline"]), "decline");
    assert!(out.contains("declined 192.168.0."), "{out}");
    assert_eq!(t.lab.daemon_pid(), Some(pid), "pathman did not restart");
    // Rate-limited logging: a flood of 20 000 packets is not 20 000 lines.
    let lines = t
        .lab
        .daemon_log()
        .lines()
        .filter(|l| l.contains("dhcp server"))
        .count();
    assert!(lines < 400, "{lines} dhcp server log lines");
    let file = t.leases_file();
    assert!(file.starts_with("pathman-leases 1\n"), "{file}");
}

#[test]
fn gadget_tethering_takes_the_usb_link_from_the_uplinks_and_gives_it_back() {
    // The LAN client's port is the gadget here (a veth classified by the board config).
    let t = Tether::up_with(1, &["usb0"], "", "[Interface usb0]\nTechnology=gadget\n");
    // A gadget with carrier is an uplink until it is tethered (ConnMan's gadget service).
    t.lab.wait_for(T, "the gadget's service", || {
        services(&t.lab)
            .iter()
            .any(|(_, _, id)| id.starts_with("gadget_"))
    });
    let out = ok(
        t.lab.ctl(&["tether", "gadget", "on"]),
        "ctl tether gadget on",
    );
    assert!(out.contains("Enabled tethering for gadget"), "{out}");
    t.lab
        .wait_for(T, "usb0 in the bridge, its service gone", || {
            t.ports().contains(" usb0@")
                && !services(&t.lab)
                    .iter()
                    .any(|(_, _, id)| id.starts_with("gadget_"))
        });
    t.client("usb0", "udhcpc", "start");
    t.lab
        .wait_for(T, "the USB host leased", || t.leased("usb0").is_some());
    assert!(in_block(&t.leased("usb0").unwrap()));
    t.lab.wait_for(T, "the USB host reaches the internet", || {
        t.pings_internet("usb0")
    });
    t.client("usb0", "udhcpc", "stop");
    ok(
        t.lab.ctl(&["tether", "gadget", "off"]),
        "ctl tether gadget off",
    );
    t.lab.wait_for(T, "the bridge gone", || {
        !ok(t.lab.exec(&["ip", "-o", "link"]), "ip link").contains(" tether:")
    });
    t.lab.wait_for(T, "the gadget an uplink again", || {
        services(&t.lab)
            .iter()
            .any(|(_, _, id)| id.starts_with("gadget_"))
    });
    // As in ConnMan: switching the technology off ends its tethering, and a
    // technology that is off cannot be tethered (EACCES: PermissionDenied).
    ok(
        t.lab.ctl(&["tether", "gadget", "on"]),
        "ctl tether gadget on",
    );
    t.lab
        .wait_for(T, "usb0 in the bridge", || t.ports().contains(" usb0@"));
    ok(t.lab.ctl(&["disable", "gadget"]), "ctl disable gadget");
    t.lab
        .wait_for(T, "tethering ended with the technology", || {
            !ok(t.lab.exec(&["ip", "-o", "link"]), "ip link").contains(" tether:")
                && !ok(t.lab.ctl(&["technologies"]), "ctl technologies")
                    .contains("Tethering = True")
        });
    let err = t.ctl_refused(&["tether", "gadget", "on"]);
    assert!(
        err.contains("Permission denied") || err.contains("PermissionDenied"),
        "{err}"
    );
    assert!(!ok(t.lab.exec(&["ip", "-o", "link"]), "ip link").contains(" tether:"));
}

/// Packets received by upstream k's side of its link to the DUT.
fn upstream_rx(lab: &Lab, k: usize) -> u64 {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns(&k.to_string()),
            "cat",
            "/sys/class/net/down0/statistics/rx_packets",
        ])
        .output()
        .expect("read rx_packets");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn an_admins_session_selector_steers_a_lan_host_to_its_uplink() {
    let t = Tether::up_with(2, &["lan0"], "", "[Interface lan*]\nRole=lan\n");
    t.tether(true);
    t.client("lan0", "udhcpc", "start");
    t.lab.wait_for(T, "leased", || t.leased("lan0").is_some());
    let host = t
        .leased("lan0")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    t.lab.wait_for(T, "the host reaches the internet", || {
        t.pings_internet("lan0")
    });
    // Without a session the host uses the default uplink (eth0, upstream 1).
    let (a1, a2) = (upstream_rx(&t.lab, 1), upstream_rx(&t.lab, 2));
    ok(
        t.in_client(
            "lan0",
            &["ping", "-c", "20", "-i", "0.01", "-W", "1", INET_SERVER],
        ),
        "ping before",
    );
    let (b1, b2) = (upstream_rx(&t.lab, 1), upstream_rx(&t.lab, 2));
    assert!(
        b1 - a1 >= 20 && b2 - a2 < 20,
        "default: up1 +{} up2 +{}",
        b1 - a1,
        b2 - a2
    );
    // An admin's session on eth1 whose selector names the host.
    let selector = format!("{host}/32-*-*-*-*");
    let bin = pathman_bin();
    let mut session = std::process::Command::new(lab_script())
        .args(["exec", &t.lab.id])
        .arg(&bin)
        .args([
            "ctl", "session", "create", "--ifname", "eth1", "--flows", &selector,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pathman ctl session create");
    t.lab.wait_for(T, "the forwarded-mark rule", || {
        t.nft().contains("chain forward-mark") && t.nft().contains(&host)
    });
    ok(
        t.in_client(
            "lan0",
            &["ping", "-c", "20", "-i", "0.01", "-W", "1", INET_SERVER],
        ),
        "ping steered",
    );
    let (c1, c2) = (upstream_rx(&t.lab, 1), upstream_rx(&t.lab, 2));
    assert!(
        c2 - b2 >= 20 && c1 - b1 < 20,
        "steered: up1 +{} up2 +{}",
        c1 - b1,
        c2 - b2
    );
    drop(session.stdin.take());
    let _ = session.kill();
    let _ = session.wait();
}
