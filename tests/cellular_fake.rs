//! Cellular against the harness's fake oFono (tests/lab/fake_ofono.py, checked in
//! tests/fake_ofono.rs), for what the real ofonod with a simulated AT modem cannot produce
//! on demand (tests/cellular_lab.rs runs the real one): a modem's static Settings, hostile
//! Settings and properties, many contexts, a SIM that wants its PIN, oFono crashing in the
//! middle of an activation and coming back. The modem's data link is the DUT's `wwan0`,
//! a veth to upstream 1 (198.18.1.1), classified as cellular by a board config. What is
//! checked is the kernel's (addresses) and the services pathman shows. Needs root; never
//! skips.
mod common;

use common::*;
use std::time::Duration;

const ID: &str = "cellular_001010123456789_context1";
const CTX: &str = "/fake_0/context1";
const T: Duration = Duration::from_secs(20);

struct Cell {
    lab: Lab,
    modem: String,
}

impl Cell {
    /// The fake with one modem of `knobs` (JSON; its Settings name wwan0), pathman, and
    /// cellular enabled.
    fn up(knobs: &str) -> Cell {
        Cell::up_lab(knobs, &["--ifnames", "wwan0", "--no-ipv6"])
    }

    fn up_lab(knobs: &str, lab_args: &[&str]) -> Cell {
        let lab = Lab::up_prefixed("cf", 1, lab_args);
        lab.start_bus();
        let c = Cell {
            lab,
            modem: knobs.to_string(),
        };
        c.start_fake();
        let board = c.lab.dir.join("board-cell.conf");
        std::fs::write(
            &board,
            "[Board]\nName=lab-cellular\n\n[Interfaces]\nManage=wwan0\n\n[Interface wwan0]\nTechnology=cellular\n",
        )
        .expect("write board config");
        c.lab.start_daemon(&["--board", board.to_str().unwrap()]);
        c.lab.wait_name("net.connman", Duration::from_secs(10));
        ok(c.lab.ctl(&["enable", "cellular"]), "ctl enable cellular");
        c
    }

    fn start_fake(&self) {
        ok(
            self.lab
                .cmd("fakeofono", &["start", "--modem", self.modem.as_str()]),
            "lab.sh fakeofono start",
        );
    }

    fn fake(&self, args: &[&str]) -> String {
        let mut a = vec!["ctl"];
        a.extend_from_slice(args);
        ok(self.lab.cmd("fakeofono", &a), "fakeofono ctl")
    }

    fn ids(&self) -> Vec<String> {
        services(&self.lab)
            .into_iter()
            .map(|(_, _, i)| i)
            .filter(|i| i.starts_with("cellular_"))
            .collect()
    }

    fn has(&self, id: &str) -> bool {
        self.ids().iter().any(|i| i == id)
    }

    fn props(&self) -> String {
        String::from_utf8_lossy(&self.lab.ctl(&["services", ID]).stdout).into_owned()
    }

    fn wwan0(&self) -> Vec<String> {
        addrs4(&self.lab, "wwan0")
    }
}

const STATIC: &str = r#"{"name":"fake_0","interface":"wwan0","method":"static","address":"198.18.1.50","netmask":"255.255.255.0","gateway":"198.18.1.1","dns":["198.18.1.1"]}"#;

#[test]
fn static_settings_give_the_modems_address_without_dhcp() {
    let c = Cell::up(STATIC);
    c.lab.wait_for(T, "the cellular service", || c.has(ID));
    let out = ok(c.lab.ctl(&["connect", ID]), "ctl connect");
    assert!(out.contains("Connected"), "{out}");
    let props = c.props();
    assert!(props.contains("Method=fixed"), "{props}");
    assert!(props.contains("Address=198.18.1.50"), "{props}");
    assert!(props.contains("Gateway=198.18.1.1"), "{props}");
    assert!(props.contains("Nameservers = [ 198.18.1.1 ]"), "{props}");
    assert!(
        c.wwan0().iter().any(|a| a == "198.18.1.50/24"),
        "{:?}",
        c.wwan0()
    );
    assert!(default_devs(&c.lab).iter().any(|d| d == "wwan0"));
    // No DHCP client ran: the modem's address is the address.
    assert!(!c.lab.daemon_log().contains("wwan0: bound"));
    ok(c.lab.ctl(&["disconnect", ID]), "ctl disconnect");
    c.lab
        .wait_for(T, "wwan0's address removed", || c.wwan0().is_empty());
    let trace = c.fake(&["Trace"]);
    assert!(
        trace.contains("call org.ofono.ConnectionContext.SetProperty /fake_0/context1")
            && trace.contains("false"),
        "{trace}"
    );
}

#[test]
fn ipv6_settings_give_the_networks_address_route_and_servers_for_dual_and_ipv6_contexts() {
    for protocol in ["dual", "ipv6"] {
        // Upstream 1 has fd18:1::1/64 and sends RAs (SLAAC beside the network's address).
        let knobs = STATIC.replace(
            r#""name":"fake_0","#,
            &format!(r#""name":"fake_0","protocol":"{protocol}","ipv6_address":"fd18:1::50","ipv6_prefix":64,"ipv6_gateway":"fd18:1::1","ipv6_dns":["fd18:1::1"],"#),
        );
        let c = Cell::up_lab(&knobs, &["--ifnames", "wwan0"]);
        c.lab.wait_for(T, "the cellular service", || c.has(ID));
        let out = ok(c.lab.ctl(&["connect", ID]), "ctl connect");
        assert!(out.contains("Connected"), "{protocol}: {out}");
        let props = c.props();
        let ipv6 = props
            .lines()
            .find(|l| l.trim_start().starts_with("IPv6 = "))
            .unwrap_or_default();
        for want in [
            "Method=fixed",
            "Address=fd18:1::50",
            "PrefixLength=64",
            "Gateway=fd18:1::1",
        ] {
            assert!(
                ipv6.contains(want),
                "{protocol}: {want} not in {ipv6:?}\n{props}"
            );
        }
        assert!(
            props.contains("fd18:1::1 ]"),
            "{protocol}: the IPv6 DNS server: {props}"
        );
        // In the kernel: the address (pathman's), the default route via the network's router.
        let addrs = || addrs6(&c.lab, "wwan0");
        assert!(
            addrs().iter().any(|a| a == "fd18:1::50/64"),
            "{protocol}: {:?}",
            addrs()
        );
        // (pathman's: SLAAC never makes ::50, and it goes when the context ends)
        let defaults = || routes6(&c.lab, "main");
        assert!(
            defaults()
                .iter()
                .any(|r| r.starts_with("default via fd18:1::1 dev wwan0")),
            "{protocol}: {:?}",
            defaults()
        );
        // On the wire: the upstream answers the network's address once DAD is done.
        c.lab.wait_for(T, "a ping from fd18:1::50 answered", || {
            c.lab
                .exec(&["ping", "-6", "-c1", "-W1", "-I", "fd18:1::50", "fd18:1::1"])
                .status
                .success()
        });
        if protocol == "ipv6" {
            // An IPv6-only context: no IPv4 address, no DHCP, yet ready.
            assert!(c.wwan0().is_empty(), "{:?}", c.wwan0());
            assert!(!c.lab.daemon_log().contains("wwan0: bound"));
            assert!(props.contains("State = ready") || props.contains("State = online"));
        } else {
            assert!(c.wwan0().iter().any(|a| a == "198.18.1.50/24"));
        }
        ok(c.lab.ctl(&["disconnect", ID]), "ctl disconnect");
        c.lab
            .wait_for(T, "the network's IPv6 address and route removed", || {
                !addrs().iter().any(|a| a == "fd18:1::50/64")
                    && !defaults().iter().any(|r| r.contains("via fd18:1::1"))
            });
        // oFono's teardown signals (Settings {}, IPv6.Settings {}, Active false) bind nothing anew.
        assert!(
            c.props().contains("State = idle"),
            "{protocol}: {}",
            c.props()
        );
    }
}

#[test]
fn hostile_settings_fail_the_connect_and_change_nothing() {
    let c = Cell::up(STATIC);
    c.lab.wait_for(T, "the cellular service", || c.has(ID));
    for (settings, why) in [
        (
            r#"{"Method":"static","Address":"198.18.1.50"}"#,
            "without Interface",
        ),
        (
            r#"{"Interface":"wwan0","Method":"ppp"}"#,
            "neither dhcp nor static",
        ),
        (
            r#"{"Interface":"wwan0","Method":"static","Address":"198.18.1.50","Netmask":"0.0.0.0"}"#,
            "not a usable netmask",
        ),
        (
            r#"{"Interface":{"@u":3},"Method":"dhcp"}"#,
            "without Interface",
        ),
        (
            r#"{"Interface":"wwan9","Method":"dhcp"}"#,
            "not an interface pathman manages",
        ),
        (
            r#"{"Interface":"wwan0","Method":"static","Address":{"@as":["x"]}}"#,
            "must be a string",
        ),
    ] {
        c.fake(&["SetSettings", CTX, settings]);
        let out = c.lab.ctl(&["connect", ID]);
        assert!(!out.status.success(), "{settings}: connected");
        let props = c.props();
        assert!(props.contains("State = failure"), "{settings}: {props}");
        assert!(
            props.contains("Error = connect-failed"),
            "{settings}: {props}"
        );
        assert!(c.wwan0().is_empty(), "{settings}: {:?}", c.wwan0());
        assert!(
            c.lab.daemon_log().contains(why),
            "{settings}: no log line with {why:?}"
        );
    }
    // 50 DNS servers: connected with the first ones, the cap named.
    let dns: Vec<String> = (1..=50).map(|i| format!("\"10.9.0.{i}\"")).collect();
    let settings = format!(
        r#"{{"Interface":"wwan0","Method":"static","Address":"198.18.1.50","Netmask":"255.255.255.0","Gateway":"198.18.1.1","DomainNameServers":[{}]}}"#,
        dns.join(",")
    );
    c.fake(&["SetSettings", CTX, &settings]);
    ok(c.lab.ctl(&["connect", ID]), "connect with 50 DNS servers");
    let props = c.props();
    assert!(
        props.contains("Nameservers = [ 10.9.0.1, 10.9.0.2, 10.9.0.3, 10.9.0.4 ]"),
        "{props}"
    );
    assert!(c.lab.daemon_log().contains("caps::MAX_SERVERS"));
    ok(c.lab.ctl(&["disconnect", ID]), "ctl disconnect");
    // Hostile IPv6.Settings beside good IPv4 ones: the connect fails, nothing is installed.
    c.fake(&["SetSettings", CTX, r#"{"Interface":"wwan0","Method":"static","Address":"198.18.1.50","Netmask":"255.255.255.0"}"#]);
    for (settings, why) in [
        (
            r#"{"Interface":"wwan0","Address":"ff02::1"}"#,
            "not a unicast address",
        ),
        (
            r#"{"Interface":"wwan0","Address":"fd18:1::50","PrefixLength":{"@y":0}}"#,
            "not 1 to 128",
        ),
        (
            r#"{"Interface":"wwan0","Address":"198.18.1.9"}"#,
            "not an IPv6 address",
        ),
        (
            r#"{"Interface":"wwan0","Gateway":{"@as":["fd18:1::1"]}}"#,
            "must be a string",
        ),
    ] {
        c.fake(&["SetIPv6Settings", CTX, settings]);
        let out = c.lab.ctl(&["connect", ID]);
        assert!(!out.status.success(), "{settings}: connected");
        assert!(c.props().contains("State = failure"), "{settings}");
        assert!(c.wwan0().is_empty(), "{settings}: {:?}", c.wwan0());
        assert!(addrs6(&c.lab, "wwan0").is_empty(), "{settings}");
        assert!(
            c.lab.daemon_log().contains(why),
            "{settings}: no log line with {why:?}"
        );
    }
    assert!(c.lab.daemon_pid().is_some_and(pid_alive));
}

#[test]
fn ten_contexts_are_capped_and_follow_the_modems_signal_and_registration() {
    let c = Cell::up(r#"{"name":"fake_0","interface":"wwan0","contexts":10}"#);
    c.lab
        .wait_for(T, "the capped services", || c.ids().len() == 4);
    assert!(c.lab.daemon_log().contains("caps::CELLULAR_MAX_CONTEXTS"));
    // The signal changes: every service of the modem follows.
    c.fake(&["SetStrength", "/fake_0", "33"]);
    c.lab
        .wait_for(T, "strength 33", || c.props().contains("Strength = 33"));
    assert_eq!(c.ids().len(), 4);
    // Roaming without RoamingAllowed: the network detaches; the services go.
    c.fake(&["SetRegistration", "/fake_0", "roaming"]);
    c.lab
        .wait_for(T, "no cellular service", || c.ids().is_empty());
}

#[test]
fn a_sim_waiting_for_its_pin_is_reported_and_never_answered() {
    let c = Cell::up(r#"{"name":"fake_0","interface":"wwan0","sim":"pin"}"#);
    c.lab.wait_for(T, "the PIN reported", || {
        c.lab.daemon_log().contains("the SIM waits for its pin")
    });
    assert!(c.ids().is_empty());
    let trace = c.fake(&["Trace"]);
    assert!(!trace.contains("EnterPin"), "{trace}");
}

#[test]
fn ofono_crashing_mid_activation_fails_the_connect_and_its_return_brings_the_service_back() {
    let c = Cell::up(STATIC);
    c.lab.wait_for(T, "the cellular service", || c.has(ID));
    c.fake(&["SetActivationDelay", "5000"]);
    let connect = Watch::start(
        &c.lab,
        &[
            "/bin/sh",
            "-c",
            &format!("\"$PATHMAN\" ctl connect {ID}; echo rc=$?"),
        ],
    );
    c.lab.wait_for(T, "the activation under way", || {
        c.fake(&["Trace"]).contains("SetProperty /fake_0/context1")
    });
    let _ = c.lab.cmd("fakeofono", &["ctl", "Crash"]);
    c.lab
        .wait_for(T, "the Connect's reply", || connect.seen("rc="));
    assert!(!connect.seen("rc=0"), "{}", connect.output());
    c.lab.wait_for(T, "the service gone", || !c.has(ID));
    assert!(c.wwan0().is_empty());
    // oFono is back: the modem is powered and online again, the service returns.
    c.start_fake();
    c.lab.wait_for(T, "the service back", || c.has(ID));
    ok(c.lab.ctl(&["connect", ID]), "connect after the restart");
    assert!(c.wwan0().iter().any(|a| a == "198.18.1.50/24"));
}
