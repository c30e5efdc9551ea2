//! Sessions with marks, MultipathRoutedServices and flow selectors (SPEC §5),
//! end to end: `pathman ctl session` as the client, the rules, routes and
//! nftables objects in the kernel, and where real packets go (captured on the
//! upstream side).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(15);

/// A running `pathman ctl session create …` in the DUT: its output is
/// collected, commands go to its stdin.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
}

impl Client {
    fn start(lab: &Lab, prefix: &[&str], args: &[&str]) -> Client {
        let bin = pathman_bin();
        let mut cmd = Command::new(lab_script());
        cmd.args(["exec", &lab.id])
            .args(prefix)
            .arg(bin)
            .args(["ctl", "session", "create"])
            .args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pathman ctl session");
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let stdin = child.stdin.take();
        Client { child, stdin, out }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("client stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Output written after `mark` bytes.
    fn since(&self, mark: usize) -> String {
        self.output().get(mark..).unwrap_or("").to_string()
    }

    fn wait_output(&self, lab: &Lab, what: &str, f: impl Fn(&str) -> bool) {
        lab.wait_for(T, what, || f(&self.output()));
    }

    fn quit(mut self) {
        self.send("quit");
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn v4(lab: &Lab, dev: &str) -> String {
    addrs4(lab, dev)
        .first()
        .and_then(|a| a.split('/').next())
        .map(str::to_owned)
        .unwrap_or_default()
}

fn nft_table(lab: &Lab) -> String {
    String::from_utf8_lossy(
        &lab.exec(&["nft", "list", "table", "inet", "pathman"])
            .stdout,
    )
    .to_string()
}

fn lab_up(n: usize, opts: &[&str]) -> Lab {
    let lab = Lab::up(n, opts);
    lab.start_bus();
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "all uplinks have IPv4", || {
        (1..=n).all(|k| !v4(&lab, lab.ifname(k)).is_empty())
    });
    lab
}

fn session_objects(lab: &Lab) -> (Vec<String>, Vec<String>, String) {
    let rules: Vec<String> = rules(lab)
        .into_iter()
        .chain(rules6(lab))
        .filter(|r| r.contains("fwmark"))
        .collect();
    let tables: Vec<String> = lab
        .exec_ok(&["ip", "route", "show", "table", "all"])
        .lines()
        .filter(|l| l.contains("table 6553") || l.contains("table 655"))
        .map(str::to_owned)
        .collect();
    (rules, tables, nft_table(lab))
}

#[test]
fn session_builds_the_seeds_rules_and_cleans_up() {
    let lab = lab_up(3, &[]);
    let (a2, a3) = (v4(&lab, "eth1"), v4(&lab, "eth2"));
    let t2 = 255 + ifindex(&lab, "eth1");
    let t3 = 255 + ifindex(&lab, "eth2");
    let mut c = Client::start(&lab, &[], &["--bearers", "ethernet"]);
    c.wait_output(&lab, "an Update with both other uplinks", |o| {
        o.contains("Update called at") && o.contains(" MultipathRoutedServices = [ ethernet_02504d000002_cable ethernet_02504d000003_cable ]")
    });
    let out = c.output();
    assert!(out.contains("Session created at /sessions/"), "{out}");
    for want in [
        " Bearer = ethernet",
        " State = connected",
        " Interface = eth0",
        " Name = Wired",
        " AllowedBearers = [ ethernet ]",
        " ConnectionType = any",
        " FlowSelectors = [ ]",
    ] {
        assert!(out.contains(want), "missing '{want}' in:\n{out}");
    }
    // The seed's rule set, with explicit priorities.
    let r = rules(&lab);
    assert!(
        r.contains(&"31200:\tfrom all fwmark 0x10000 lookup 65536 proto 196".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&format!(
            "31100:\tfrom {a2} fwmark 0x10000 lookup {t2} proto 196"
        )),
        "{r:?}"
    );
    assert!(
        r.contains(&format!(
            "31100:\tfrom {a3} fwmark 0x10000 lookup {t3} proto 196"
        )),
        "{r:?}"
    );
    assert!(rules6(&lab)
        .iter()
        .any(|l| l.contains("fwmark 0x10000 lookup 65536")));
    let t = routes(&lab, "65536");
    assert!(
        t.iter()
            .any(|l| l.starts_with("default via 198.18.1.1 dev eth0")),
        "{t:?}"
    );

    // Flow selectors: marking replaced atomically; a bad list changes nothing.
    let mark = c.output().len();
    c.send("config FlowSelectors *-*-udp-7777-8888 *-*-tcp-1111-2222");
    c.wait_output(&lab, "FlowSelectors update", |o| {
        o[mark..].contains(" FlowSelectors = [ *-*-udp-7777-8888 *-*-tcp-1111-2222 ]")
    });
    lab.wait_for(T, "nft marks", || {
        let t = nft_table(&lab);
        t.contains("type route hook output priority mangle")
            && t.contains("8888")
            && t.contains("2222")
            && t.contains("0x00010000")
    });
    let before = nft_table(&lab);
    assert!(before.contains("snat ip to"), "{before}");
    let mark = c.output().len();
    c.send("config FlowSelectors *-*-udp-1-2 *-*-udp-99999");
    c.wait_output(&lab, "error for the bad selector", |o| {
        o[mark..].contains("Error FlowSelectors")
    });
    let err = c.since(mark);
    assert!(
        err.contains("99999") && err.contains("SPORT"),
        "the error names selector and field: {err}"
    );
    assert_eq!(nft_table(&lab), before, "nothing of the bad list applied");

    // Destroying the session removes every rule, route and nft object.
    c.quit();
    lab.wait_for(T, "all session objects gone", || {
        let (rules, tables, nft) = session_objects(&lab);
        rules.is_empty() && tables.is_empty() && nft.is_empty()
    });
}

/// tcpdump on upstream k's side of the DUT link; returns once it listens.
fn capture(lab: &Lab, k: usize, filter: &str) -> Child {
    let ns = lab.ns(&k.to_string());
    let mut child = Command::new("timeout")
        .args([
            "8", "ip", "netns", "exec", &ns, "tcpdump", "-l", "-n", "-i", "down0", "-c", "3",
        ])
        .args(filter.split_whitespace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let stderr = child.stderr.take().expect("tcpdump stderr");
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("listening on"));
    assert!(listening, "tcpdump did not start");
    // Keep draining so tcpdump never blocks on a full stderr pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn captured(c: Child) -> String {
    let out = c.wait_with_output().expect("tcpdump output");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Sends 3 UDP packets to the internet server on `port` and returns the
/// number of echoed replies (as `uid` if given).
fn udp_echo(lab: &Lab, port: u16, uid: Option<u32>) -> String {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(2)\nn=0\n\
         for i in range(3):\n    s.sendto(b'x',('198.19.0.1',{port}))\n    try:\n        s.recvfrom(100); n+=1\n    except OSError: pass\nprint(n)\n"
    );
    let uid_arg = uid.map(|u| format!("--reuid={u}"));
    let mut cmd: Vec<&str> = Vec::new();
    if let Some(u) = &uid_arg {
        cmd.extend(["setpriv", u.as_str(), "--regid=65534", "--clear-groups"]);
    }
    cmd.extend(["/usr/bin/python3", "-c", &script]);
    lab.exec_ok(&cmd).trim().to_string()
}

/// A UDP echo server on the lab internet; returns once its port is bound.
fn echo_server(lab: &Lab, port: u16) -> Child {
    let inet = lab.ns("inet");
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('198.19.0.1',{port}))\n\
         while True:\n    d,a=s.recvfrom(100); s.sendto(d,a)\n"
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &inet, "/usr/bin/python3", "-c", &script])
        .spawn()
        .expect("echo server");
    let filter = format!("sport = :{port}");
    lab.wait_for(T, "echo server bound", || {
        let out = Command::new("ip")
            .args(["netns", "exec", &inet, "ss", "-Hlun", &filter])
            .output()
            .expect("ss");
        !out.stdout.is_empty()
    });
    child
}

#[test]
fn flow_selectors_steer_real_traffic_with_replies() {
    let lab = lab_up(2, &["--inet"]);
    let a2 = v4(&lab, "eth1");
    let mut servers = vec![echo_server(&lab, 8888), echo_server(&lab, 9999)];
    // The session rides eth1 while eth0 stays the default uplink.
    let c = Client::start(
        &lab,
        &[],
        &["--ifname", "eth1", "--flows", "*-*-udp-*-8888"],
    );
    c.wait_output(&lab, "session on eth1", |o| {
        o.contains(" Interface = eth1") && o.contains("*-*-udp-*-8888")
    });
    lab.wait_for(T, "nft marks in place", || nft_table(&lab).contains("8888"));

    let on_up2 = capture(&lab, 2, "udp port 8888");
    let other_on_up1 = capture(&lab, 1, "udp port 9999");
    assert_eq!(
        udp_echo(&lab, 8888, None),
        "3",
        "replies to the steered flow arrive"
    );
    assert_eq!(udp_echo(&lab, 9999, None), "3", "other traffic still works");
    let up2 = captured(on_up2);
    let up1 = captured(other_on_up1);
    assert!(
        up2.contains(&format!("{a2}.")) && up2.contains("198.19.0.1.8888"),
        "port 8888 leaves via eth1 with eth1's address:\n{up2}"
    );
    assert!(
        up1.contains("198.19.0.1.9999"),
        "port 9999 uses the default uplink:\n{up1}"
    );
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
}

#[test]
fn an_unprivileged_users_selectors_steer_only_that_users_packets() {
    let lab = lab_up(2, &["--inet"]);
    let a2 = v4(&lab, "eth1");
    let mut server = echo_server(&lab, 9999);
    // uid 65534 asks for all UDP to port 9999 on eth1; root owns no policy
    // granting it more.
    let c = Client::start(
        &lab,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &["--ifname", "eth1", "--flows", "*-*-udp-*-9999"],
    );
    c.wait_output(&lab, "nobody's session on eth1", |o| {
        o.contains(" Interface = eth1") && o.contains("*-*-udp-*-9999")
    });
    lab.wait_for(T, "the selector, limited to its owner", || {
        let t = nft_table(&lab);
        t.contains("9999") && t.contains("skuid 65534")
    });
    // root's datagrams to 9999 still leave by the default uplink...
    let cap1 = capture(&lab, 1, "udp port 9999");
    assert_eq!(udp_echo(&lab, 9999, None), "3");
    assert!(
        captured(cap1).contains("198.19.0.1.9999"),
        "root's traffic stays on the default uplink"
    );
    // ...while the user's own follow the session.
    let cap2 = capture(&lab, 2, "udp port 9999");
    assert_eq!(udp_echo(&lab, 9999, Some(65534)), "3");
    let up2 = captured(cap2);
    assert!(
        up2.contains(&format!("{a2}.")),
        "nobody's traffic leaves via eth1:\n{up2}"
    );
    let _ = server.kill();
    let _ = server.wait();
    drop(c);
}

#[test]
fn uid_policy_steers_a_users_traffic() {
    let lab = Lab::up(2, &["--inet"]);
    lab.start_bus();
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    // Written while the daemon runs: policy files are reloaded on change.
    let dir = lab.state_dir().join("session_policy_local");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("nobody.policy"),
        "[policy_nobody]\nuid = nobody\nAllowedBearers = ethernet\n",
    )
    .unwrap();
    lab.wait_for(T, "policy reloaded", || {
        lab.daemon_log().contains("session policy: 1 rule(s)")
    });
    lab.wait_for(T, "uplinks", || {
        !v4(&lab, "eth0").is_empty() && !v4(&lab, "eth1").is_empty()
    });
    let a2 = v4(&lab, "eth1");
    let mut server = echo_server(&lab, 7000);
    let c = Client::start(
        &lab,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &["--ifname", "eth1"],
    );
    c.wait_output(&lab, "nobody's session on eth1", |o| {
        o.contains(" Interface = eth1")
    });
    lab.wait_for(T, "uid mark", || nft_table(&lab).contains("skuid"));

    let cap = capture(&lab, 2, "udp port 7000");
    assert_eq!(udp_echo(&lab, 7000, Some(65534)), "3");
    let up2 = captured(cap);
    assert!(
        up2.contains(&format!("{a2}.")),
        "nobody's traffic leaves via eth1:\n{up2}"
    );
    let cap = capture(&lab, 1, "udp port 7000");
    assert_eq!(udp_echo(&lab, 7000, None), "3");
    assert!(
        captured(cap).contains("198.19.0.1.7000"),
        "root's traffic stays on the default uplink"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn session_moves_when_its_uplink_goes() {
    let lab = lab_up(2, &[]);
    let c = Client::start(&lab, &[], &["--bearers", "ethernet"]);
    c.wait_output(&lab, "session on eth0", |o| o.contains(" Interface = eth0"));
    let mark = c.output().len();
    lab.link(1, false);
    c.wait_output(&lab, "Update: moved to eth1", |o| {
        o[mark..].contains(" Interface = eth1")
    });
    lab.wait_for(T, "session table follows", || {
        routes(&lab, "65536")
            .iter()
            .any(|l| l.starts_with("default via 198.18.2.1 dev eth1"))
    });
    assert!(
        !rules(&lab).iter().any(|r| r.contains("31100")),
        "no multipath rule for a lost uplink"
    );
    let mark = c.output().len();
    lab.link(1, true);
    c.wait_output(&lab, "back on eth0", |o| {
        o[mark..].contains(" Interface = eth0")
    });
    lab.wait_for(T, "session table and multipath rule follow back", || {
        let a2 = v4(&lab, "eth1");
        routes(&lab, "65536")
            .iter()
            .any(|l| l.starts_with("default via 198.18.1.1 dev eth0"))
            && rules(&lab)
                .iter()
                .any(|r| r.starts_with(&format!("31100:\tfrom {a2} fwmark 0x10000 lookup")))
    });
}

#[test]
fn bad_session_requests_are_refused_whole() {
    let lab = lab_up(1, &[]);
    let call = |args: &[&str]| {
        let mut cmd = vec![
            "busctl",
            "--system",
            "call",
            "net.connman",
            "/",
            "net.connman.Manager",
            "CreateSession",
        ];
        cmd.extend_from_slice(args);
        let out = lab.exec(&cmd);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["a{sv}o", "1", "Bogus", "s", "x", "/n"],
            "unknown session setting Bogus",
        ),
        (
            vec!["a{sv}o", "1", "AllowedBearers", "s", "ethernet", "/n"],
            "string list",
        ),
        (
            vec![
                "a{sv}o",
                "1",
                "AllowedBearers",
                "as",
                "1",
                "bluetooth",
                "/n",
            ],
            "bluetooth",
        ),
        (
            vec!["a{sv}o", "1", "ConnectionType", "s", "fast", "/n"],
            "local, internet or any",
        ),
        (
            vec!["a{sv}o", "1", "FlowSelectors", "as", "1", "*-*-tcp-0", "/n"],
            "SPORT",
        ),
        (
            vec![
                "a{sv}o",
                "1",
                "FlowSelectors",
                "as",
                "1",
                "10.1.2.3/8",
                "/n",
            ],
            "SRC",
        ),
        (
            vec![
                "a{sv}o",
                "1",
                "FlowSelectors",
                "as",
                "1",
                "*-*-icmp-5",
                "/n",
            ],
            "SPORT",
        ),
        (
            vec![
                "a{sv}o",
                "1",
                "MultipathRoutedServices",
                "as",
                "1",
                "ethernet_nope_cable",
                "/n",
            ],
            "no service",
        ),
        (
            vec!["a{sv}o", "1", "State", "s", "online", "/n"],
            "read-only",
        ),
        (
            vec!["a{sv}", "0"],
            "Method \"CreateSession\" with signature \"a{sv}\" on interface \"net.connman.Manager\" doesn't exist",
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
    let out = lab.exec_ok(&[
        "busctl",
        "--system",
        "call",
        "net.connman",
        "/",
        "net.connman.Manager",
        "GetSessions",
    ]);
    assert_eq!(out.trim(), "ao 0", "nothing was created");
    assert!(!rules(&lab).iter().any(|r| r.contains("fwmark")));
}

#[test]
fn a_restarted_daemon_removes_what_a_crashed_one_left_for_sessions() {
    let lab = lab_up(2, &[]);
    let c = Client::start(&lab, &[], &["--flows", "*-*-udp-*-5353"]);
    c.wait_output(&lab, "session up", |o| o.contains(" State = connected"));
    lab.wait_for(T, "marks in place", || nft_table(&lab).contains("5353"));
    lab.kill_daemon();
    assert!(nft_table(&lab).contains("5353"), "a crash leaves the table");
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    // Sessions do not survive the daemon; everything they had goes.
    lab.wait_for(T, "session leftovers removed", || {
        let (rules, tables, nft) = session_objects(&lab);
        rules.is_empty() && tables.is_empty() && nft.is_empty()
    });
    drop(c);
}
