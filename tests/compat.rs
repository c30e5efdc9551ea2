//! Existing ConnMan clients are the judge: pathman's introspection against a
//! running connmand's, a dbus-python client that takes every argument type
//! from introspection, usage counters, and calls too large to accept.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);
const A: &str = "ethernet_02504d000001_cable";
const B: &str = "ethernet_02504d000002_cable";

fn introspect(lab: &Lab, path: &str) -> String {
    lab.exec_ok(&[
        "dbus-send",
        "--system",
        "--print-reply=literal",
        "--dest=net.connman",
        path,
        "org.freedesktop.DBus.Introspectable.Introspect",
    ])
}

/// The introspection XML as `interface -> [member lines]`, e.g.
/// `method SetProperty(in name s, in value v)` or `signal PropertyChanged(name s, value v)`,
/// with ` deprecated` appended where annotated; child nodes under `node`.
fn parse_introspection(xml: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        tag.find(&key)
            .map(|i| {
                let rest = &tag[i + key.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].to_string()
            })
            .unwrap_or_default()
    };
    let mut iface = String::new();
    let mut member: Option<(String, Vec<String>, bool)> = None;
    for piece in xml.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or("");
        if tag.starts_with("interface ") {
            iface = attr(tag, "name");
            out.entry(iface.clone()).or_default();
        } else if tag.starts_with("method ") || tag.starts_with("signal ") {
            let kind = if tag.starts_with("method") {
                "method"
            } else {
                "signal"
            };
            member = Some((format!("{kind} {}", attr(tag, "name")), Vec::new(), false));
            if tag.ends_with('/') {
                let (n, a, d) = member.take().unwrap();
                out.entry(iface.clone()).or_default().push(format!(
                    "{n}({}){}",
                    a.join(", "),
                    if d { " deprecated" } else { "" }
                ));
            }
        } else if tag.starts_with("arg ") {
            if let Some((_, args, _)) = member.as_mut() {
                let dir = attr(tag, "direction");
                let dir = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir} ")
                };
                args.push(format!("{dir}{} {}", attr(tag, "name"), attr(tag, "type")));
            }
        } else if tag.starts_with("annotation ")
            && attr(tag, "name") == "org.freedesktop.DBus.Deprecated"
        {
            if let Some((_, _, d)) = member.as_mut() {
                *d = attr(tag, "value") == "true";
            }
        } else if tag == "/method" || tag == "/signal" {
            if let Some((n, a, d)) = member.take() {
                out.entry(iface.clone()).or_default().push(format!(
                    "{n}({}){}",
                    a.join(", "),
                    if d { " deprecated" } else { "" }
                ));
            }
        } else if tag.starts_with("node name=") {
            out.entry("node".into())
                .or_default()
                .push(attr(tag, "name"));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// What pathman adds to ConnMan's API (the multipath fork's session list)
/// and what it does not serve yet; everything else must be identical.
fn expected_difference(iface: &str, member: &str) -> bool {
    (iface == "net.connman.Manager"
        && [
            "method GetSessions(",
            "signal SessionAdded(",
            "signal SessionRemoved(",
        ]
        .iter()
        .any(|m| member.starts_with(m)))
        || iface == "net.connman.Clock"
        || iface == "net.connman.pathman.Debug"
}

#[test]
fn introspection_is_connmans() {
    let lab = Lab::up(2, &[]);
    lab.start_bus();
    let paths = [
        "/".to_string(),
        "/net".into(),
        "/net/connman".into(),
        "/net/connman/technology".into(),
        "/net/connman/technology/ethernet".into(),
        format!("/net/connman/service/{A}"),
        "/net/connman/service/ethernet_000000000000_cable".into(),
        "/nothing/here".into(),
    ];
    // ConnMan 1.41 first, in the same lab, then pathman.
    lab_sh_ok(&["connman", &lab.id, "start"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "connmand has both services", || {
        lab.exec_ok(&["connmanctl", "services"]).lines().count() == 2
    });
    let connman: Vec<_> = paths
        .iter()
        .map(|p| parse_introspection(&introspect(&lab, p)))
        .collect();
    lab_sh_ok(&["connman", &lab.id, "stop"]);
    lab_sh_ok(&["reset", &lab.id]);
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "pathman has both services", || ready_services(&lab) == 2);
    for (path, cm) in paths.iter().zip(&connman) {
        let pm = parse_introspection(&introspect(&lab, path));
        let ifaces: Vec<&String> = cm.keys().chain(pm.keys()).collect();
        for iface in ifaces {
            let empty = Vec::new();
            let (c, p) = (
                cm.get(iface).unwrap_or(&empty),
                pm.get(iface).unwrap_or(&empty),
            );
            let missing: Vec<&String> = c
                .iter()
                .filter(|m| !p.contains(m) && !expected_difference(iface, m))
                .collect();
            let extra: Vec<&String> = p
                .iter()
                .filter(|m| !c.contains(m) && !expected_difference(iface, m))
                .collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{path} {iface}: missing {missing:#?}, not in ConnMan {extra:#?}"
            );
        }
    }
    // And the calls ConnMan refuses as unknown, pathman refuses the same way.
    for (args, name) in [
        (
            vec!["/", "net.connman.Manager.Bogus"],
            "org.freedesktop.DBus.Error.UnknownMethod",
        ),
        (
            vec!["/", "net.connman.Manager.SetProperty", "string:OfflineMode"],
            "org.freedesktop.DBus.Error.UnknownMethod",
        ),
        (
            vec![
                "/net/connman/service/bogus",
                "net.connman.Service.GetProperties",
            ],
            "org.freedesktop.DBus.Error.UnknownObject",
        ),
    ] {
        let mut cmd = vec![
            "dbus-send",
            "--system",
            "--print-reply",
            "--dest=net.connman",
        ];
        cmd.extend(args.iter().copied());
        let out = lab.exec(&cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("Error {name}: Method ")),
            "{args:?}: {err}"
        );
    }
}

/// A running `introspected.py STEP` in the DUT; its lines are collected.
struct PyClient {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
}

impl PyClient {
    fn start(lab: &Lab, prefix: &[&str], args: &[&str]) -> PyClient {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/introspected.py");
        let mut child = Command::new(lab_script())
            .args(["exec", &lab.id])
            .args(prefix)
            .arg("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python client");
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
        PyClient { child, stdin, out }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, self.output())
    }

    fn close_stdin(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.flush();
        }
    }
}

impl Drop for PyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn default_dev(lab: &Lab) -> String {
    default_devs(lab).first().cloned().unwrap_or_default()
}

#[test]
fn a_client_that_builds_calls_from_introspection_drives_pathman() {
    let lab = Lab::up(2, &[]);
    lab.start_bus();
    lab.start_daemon(&["--mpathrouting"]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "2 uplinks with default routes", || {
        ready_services(&lab) == 2 && default_devs(&lab).len() == 2
    });
    assert_eq!(default_dev(&lab), "eth0");

    let (ok, out) = PyClient::start(&lab, &[], &["manager", A, B]).finish();
    assert!(ok, "{out}");
    for line in [
        "ok Manager.SetProperty OfflineMode",
        "ok Service.SetProperty Nameservers.Configuration",
        "error Technology.SetProperty Powered net.connman.Error.AlreadyEnabled",
        "ok Service.MoveBefore",
        "ok Manager.RegisterAgent",
        "ok Manager.UnregisterAgent",
    ] {
        assert!(out.contains(line), "missing '{line}' in:\n{out}");
    }
    // The effects, in the kernel and the files: B now comes first, A's
    // configured nameserver went into A's settings.
    lab.wait_for(T, "eth1 is the default uplink", || {
        default_dev(&lab) == "eth1"
    });
    let settings =
        std::fs::read_to_string(lab.state_dir().join(A).join("settings")).unwrap_or_default();
    assert!(settings.contains("192.0.2.53"), "{settings}");

    // A session from a settings dict, changed to another selector: the
    // kernel gets the new one, and everything goes with the client.
    let mut s = PyClient::start(&lab, &[], &["session"]);
    lab.wait_for(T, "session created and changed", || {
        let o = s.output();
        o.contains("ok Session.Change FlowSelectors") && o.contains("ok Session.Connect")
    });
    lab.wait_for(T, "the changed selector in nftables", || {
        let t = lab.exec_ok(&["nft", "list", "table", "inet", "pathman"]);
        t.contains("8888") && !t.contains("7777")
    });
    assert!(rules(&lab).iter().any(|r| r.contains("fwmark 0x10000")));
    lab.wait_for(T, "Update reported the selectors", || {
        s.output().contains("update FlowSelectors *-*-udp-*-8888")
    });
    s.close_stdin();
    let (ok, out) = s.finish();
    assert!(ok, "{out}");
    lab.wait_for(
        T,
        "the session's rules and marks gone with the client",
        || {
            !rules(&lab).iter().any(|r| r.contains("fwmark"))
                && !lab
                    .exec(&["nft", "list", "table", "inet", "pathman"])
                    .status
                    .success()
        },
    );
}

#[test]
fn counters_report_the_kernels_interface_statistics() {
    let lab = Lab::up(1, &[]);
    lab.start_bus();
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "uplink ready", || ready_services(&lab) == 1);
    let mut c = PyClient::start(&lab, &[], &["counter"]);
    let first = format!(
        "usage /net/connman/service/{A} RX.Packets,TX.Packets,RX.Bytes,TX.Bytes,RX.Errors,TX.Errors,RX.Dropped,TX.Dropped,Time"
    );
    lab.wait_for(T, "the first, complete report", || {
        c.output().contains(&first)
    });
    // Traffic moves the counters: the next reports carry what changed.
    lab.exec_ok(&["ping", "-c", "3", "-i", "0.2", "198.18.1.1"]);
    lab.wait_for(T, "a report with the new packets", || {
        c.output()
            .lines()
            .skip(2)
            .any(|l| l.contains("usage") && l.contains("TX.Packets") && l.ends_with("Time"))
    });
    c.close_stdin();
    let (ok, out) = c.finish();
    assert!(ok, "{out}");
}

#[test]
fn oversized_calls_are_refused_without_costing_memory() {
    let lab = Lab::up(1, &[]);
    lab.start_bus();
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);
    lab.wait_for(T, "uplink ready", || ready_services(&lab) == 1);
    let pid = lab.daemon_pid().expect("daemon pid");
    let hwm = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before = hwm();
    let script = format!(
        "import dbus\nb=dbus.SystemBus()\ns=b.get_object('net.connman','/net/connman/service/{A}')\n\
         big='a'*(30*1024*1024)\n\
         for i in range(10):\n\
         \x20   try:\n\
         \x20       s.SetProperty('Domains.Configuration', dbus.Array([big],signature='s'), dbus_interface='net.connman.Service', timeout=120)\n\
         \x20       print('accepted')\n\
         \x20   except dbus.DBusException as e:\n\
         \x20       print(e.get_dbus_name())\n"
    );
    let out = lab.exec_ok(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        &script,
    ]);
    let refused = out
        .lines()
        .filter(|l| *l == "org.freedesktop.DBus.Error.LimitsExceeded")
        .count();
    assert_eq!(refused, 10, "{out}");
    let after = hwm();
    println!("VmHWM before {before} kB, after 10 x 30 MiB calls {after} kB");
    assert!(after <= 2 * before, "VmHWM {before} -> {after} kB");
    // The daemon still answers, and nothing changed.
    let one = lab.exec_ok(&["connmanctl", "services", A]);
    assert!(one.contains("Domains.Configuration = [  ]"), "{one}");
    // A message within the limit is served as before.
    let ok = lab.exec(&[
        "busctl",
        "--system",
        "call",
        "net.connman",
        &format!("/net/connman/service/{A}"),
        "net.connman.Service",
        "SetProperty",
        "sv",
        "Domains.Configuration",
        "as",
        "1",
        "ok.example",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
