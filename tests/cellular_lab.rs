//! Cellular in the namespace lab: pathman against the REAL oFono — Debian's ofonod with its
//! phonesim plugin talking AT to the harness's simulated modem (tests/lab/at_modem.py,
//! checked in tests/ofono_harness.rs) on the lab bus. The modem's data interface is the
//! DUT's `dummy0`, a veth whose peer is upstream 1 with dnsmasq, classified as cellular by a
//! board config; eth1 is a wired uplink. pathman powers the modem and brings it online when
//! the technology is enabled, makes a service of the internet context, activates it on
//! Connect and runs its DHCP client on dummy0; what is checked is the kernel's (addresses,
//! routes, MPTCP endpoint flags) and oFono's (the context's Active). Needs root and ofonod;
//! never skips.
mod common;

use common::*;
use std::process::Output;
use std::time::Duration;

const ID: &str = "cellular_001010123456789_context1";
const CTX: &str = "/phonesim/context1";
const T: Duration = Duration::from_secs(30);

struct Cell {
    lab: Lab,
}

impl Cell {
    /// dummy0 (the modem's data link, upstream 1) and eth1 (wired, upstream 2), the modem
    /// and ofonod started with `flags`, pathman with multipath, cellular enabled.
    fn up(flags: &[&str]) -> Cell {
        Self::up_with(flags, &[])
    }

    /// The same with more `lab.sh up` options (`--inet`: an Internet behind both).
    fn up_with(flags: &[&str], lab_opts: &[&str]) -> Cell {
        let mut opts = vec!["--ifnames", "dummy0,eth1", "--no-ipv6"];
        opts.extend_from_slice(lab_opts);
        let lab = Lab::up_prefixed("ce", 2, &opts);
        lab.start_bus();
        let mut a = vec!["start"];
        a.extend_from_slice(flags);
        ok(lab.cmd("ofono", &a), "lab.sh ofono start");
        let board = lab.dir.join("board-cell.conf");
        std::fs::write(
            &board,
            "[Board]\nName=lab-cellular\n\n[Interfaces]\nManage=dummy0,eth1\n\n[Interface dummy0]\nTechnology=cellular\n",
        )
        .expect("write board config");
        let c = Cell { lab };
        c.start_daemon(board.to_str().unwrap());
        // Cellular is off until enabled (ConnMan's default); pathman then puts the modem online.
        let out = ok(c.lab.ctl(&["enable", "cellular"]), "ctl enable cellular");
        assert!(out.contains("Enabled cellular"), "{out}");
        c
    }

    fn start_daemon(&self, board: &str) {
        self.lab.start_daemon(&["--board", board, "-M"]);
        self.lab.wait_name("net.connman", Duration::from_secs(10));
    }

    fn busctl(&self, args: &[&str]) -> Output {
        let mut cmd = vec!["busctl", "--system"];
        cmd.extend_from_slice(args);
        self.lab.exec(&cmd)
    }

    fn context_prop(&self, name: &str) -> String {
        let out = self.busctl(&[
            "call",
            "org.ofono",
            CTX,
            "org.ofono.ConnectionContext",
            "GetProperties",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // `a{sv} N "Key" type value ...`: the word after the key's type.
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.trim_matches('"') == name)
            .and_then(|i| words.get(i + 2))
            .map(|w| w.trim_matches('"').to_string())
            .unwrap_or_default()
    }

    /// Sets the context's access point name (phonesim's context has none; ConnMan never
    /// sets one either), once oFono lists the context.
    fn set_apn(&self) {
        self.lab.wait_for(T, "oFono's internet context", || {
            self.context_prop("Type") == "internet"
        });
        ok(
            self.busctl(&[
                "call",
                "org.ofono",
                CTX,
                "org.ofono.ConnectionContext",
                "SetProperty",
                "sv",
                "AccessPointName",
                "s",
                "internet",
            ]),
            "SetProperty AccessPointName",
        );
    }

    fn service_line(&self) -> Option<(String, String, String)> {
        services(&self.lab).into_iter().find(|(_, _, i)| i == ID)
    }

    fn props(&self) -> String {
        String::from_utf8_lossy(&self.lab.ctl(&["services", ID]).stdout).into_owned()
    }

    fn ready(&self) -> bool {
        self.service_line()
            .is_some_and(|(f, _, _)| matches!(state_flag(&f), Some('R' | 'O')))
    }

    fn endpoints(&self) -> String {
        String::from_utf8_lossy(&self.lab.exec(&["ip", "mptcp", "endpoint", "show"]).stdout)
            .into_owned()
    }
}

#[test]
fn connect_activates_the_context_and_runs_dhcp_over_the_modem_link_as_a_backup_path() {
    let c = Cell::up(&[]);
    c.set_apn();
    c.lab
        .wait_for(T, "the cellular service", || c.service_line().is_some());
    let props = c.props();
    assert!(props.contains("Type = cellular"), "{props}");
    assert!(props.contains("Name = CellSpike"), "{props}");
    assert!(props.contains("Roaming = False"), "{props}");
    assert!(props.contains("Security = [ none ]"), "{props}");
    // Never connected: not a favourite, so it waits for the user.
    assert!(props.contains("State = idle"), "{props}");
    c.lab
        .wait_for(T, "eth1 ready", || ready_services(&c.lab) >= 1);

    let out = ok(c.lab.ctl(&["connect", ID]), "ctl connect");
    assert!(out.contains("Connected"), "{out}");
    assert!(c.ready(), "Connect replied before ready:\n{}", c.props());
    assert_eq!(c.context_prop("Active"), "true");
    // The kernel: a DHCP address from upstream 1 on dummy0; wired stays the default.
    let addrs = addrs4(&c.lab, "dummy0");
    assert!(
        addrs.iter().any(|a| a.starts_with("198.18.1.")),
        "no DHCP address on the modem link: {addrs:?}"
    );
    assert_eq!(
        default_devs(&c.lab).first().map(String::as_str),
        Some("eth1"),
        "cellular ranks below wired: {:?}",
        default_devs(&c.lab)
    );
    // Metered: its MPTCP endpoint is a backup, the wired one is not.
    let eps = c.endpoints();
    let line = |dev: &str| {
        eps.lines()
            .find(|l| l.contains(&format!("dev {dev}")))
            .unwrap_or_else(|| panic!("no endpoint on {dev}: {eps}"))
            .to_string()
    };
    assert!(line("dummy0").contains("backup"), "{eps}");
    assert!(!line("eth1").contains("backup"), "{eps}");
    let settings =
        std::fs::read_to_string(c.lab.state_dir().join(ID).join("settings")).unwrap_or_default();
    assert!(settings.contains("Favorite=true"), "{settings}");

    // Disconnect: the context goes inactive in oFono, the address goes from the kernel.
    ok(c.lab.ctl(&["disconnect", ID]), "ctl disconnect");
    c.lab.wait_for(T, "the context inactive", || {
        c.context_prop("Active") == "false"
    });
    c.lab.wait_for(T, "dummy0's address removed", || {
        addrs4(&c.lab, "dummy0").is_empty()
    });

    // Debian's connmanctl sees it as ConnMan's: the operator's name, the identifier.
    let listed = ok(
        c.lab.exec(&["connmanctl", "services"]),
        "connmanctl services",
    );
    assert!(
        listed
            .lines()
            .any(|l| l.contains("CellSpike") && l.trim_end().ends_with(ID)),
        "{listed}"
    );
    // Disabling the technology takes the modem offline (oFono's Online) and the service goes.
    let out = ok(
        c.lab.exec(&["connmanctl", "disable", "cellular"]),
        "connmanctl disable cellular",
    );
    assert!(!out.contains("Error"), "{out}");
    c.lab
        .wait_for(T, "the service gone", || c.service_line().is_none());
    let modem = |prop: &str| {
        let out = c.busctl(&[
            "call",
            "org.ofono",
            "/phonesim",
            "org.ofono.Modem",
            "GetProperties",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        words
            .iter()
            .position(|w| w == prop)
            .and_then(|i| words.get(i + 2).cloned())
            .unwrap_or_default()
    };
    c.lab
        .wait_for(T, "the modem offline", || modem("Online") == "false");
    ok(
        c.lab.exec(&["connmanctl", "enable", "cellular"]),
        "connmanctl enable cellular",
    );
    c.lab
        .wait_for(T, "the service back", || c.service_line().is_some());

    // The network detaches the modem: the service goes.
    ok(c.lab.cmd("ofono", &["ctl", "detach"]), "modem detach");
    c.lab
        .wait_for(T, "the service gone", || c.service_line().is_none());
}

#[test]
fn a_refused_activation_fails_the_connect_and_ofono_leaving_removes_the_service() {
    let c = Cell::up(&["--activate", "error"]);
    c.set_apn();
    c.lab
        .wait_for(T, "the cellular service", || c.service_line().is_some());
    let out = c.lab.ctl(&["connect", ID]);
    assert!(!out.status.success(), "connected: {}", ok(out, "connect"));
    let props = c.props();
    assert!(props.contains("State = failure"), "{props}");
    assert!(props.contains("Error = connect-failed"), "{props}");
    assert!(addrs4(&c.lab, "dummy0").is_empty());
    assert!(
        c.lab.daemon_log().contains("activating the context of"),
        "{}",
        c.lab.daemon_log()
    );
    // oFono goes away: the service goes with it; pathman stays up.
    ok(c.lab.cmd("ofono", &["stop"]), "lab.sh ofono stop");
    c.lab
        .wait_for(T, "the service gone", || c.service_line().is_none());
    assert!(c.lab.daemon_pid().is_some_and(pid_alive));
}

fn state(c: &Cell, id: &str) -> Option<char> {
    services(&c.lab)
        .into_iter()
        .find(|(_, _, i)| i == id)
        .and_then(|(f, _, _)| state_flag(&f))
}

fn route_dev(c: &Cell, dst: &str) -> String {
    c.lab
        .exec_ok(&["ip", "route", "get", dst])
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn when_the_wired_internet_dies_traffic_moves_to_cellular_and_back() {
    const WIRED: &str = "ethernet_02504d000002_cable";
    let c = Cell::up_with(&[], &["--inet"]);
    c.set_apn();
    c.lab
        .wait_for(T, "the cellular service", || c.service_line().is_some());
    ok(c.lab.ctl(&["connect", ID]), "ctl connect");
    c.lab.wait_for(T, "both online", || {
        state(&c, ID) == Some('O') && state(&c, WIRED) == Some('O')
    });
    assert_eq!(route_dev(&c, "198.19.0.1"), "eth1", "wired first");

    ok(
        c.lab.cmd("link", &["2", "blackhole"]),
        "blackhole upstream 2",
    );
    c.lab.wait_for(T, "the default route on cellular", || {
        route_dev(&c, "198.19.0.1") == "dummy0"
    });
    assert_eq!(state(&c, WIRED), Some('R'));
    // Traffic really leaves by the modem's link (the Internet server's log).
    c.lab.exec_ok(&[
        "curl",
        "-sf",
        "--max-time",
        "5",
        "http://198.19.0.1/pathman-cell",
    ]);
    let log = std::fs::read_to_string(c.lab.dir.join("http-inet.log")).unwrap_or_default();
    let asked = log
        .lines()
        .rev()
        .find(|l| l.contains("pathman-cell"))
        .unwrap_or_default();
    assert!(asked.contains("198.18.1."), "{asked}");

    ok(c.lab.cmd("link", &["2", "restore"]), "restore upstream 2");
    c.lab.wait_for(T, "the default route back on wired", || {
        route_dev(&c, "198.19.0.1") == "eth1"
    });
    // The cellular endpoint stayed a backup throughout.
    let eps = c.endpoints();
    assert!(
        eps.lines()
            .any(|l| l.contains("dev dummy0") && l.contains("backup")),
        "{eps}"
    );
}
