//! The lab's fake oFono (tests/lab/fake_ofono.py) behaves as its docstring says: each test
//! builds a lab, starts its bus and `lab.sh fakeofono ID start`, and drives org.ofono with
//! busctl / dbus-send in the DUT namespace, the control API with `lab.sh fakeofono ID ctl`,
//! and checks the fake's Trace and, where order on the wire matters, dbus-monitor's output.
//! Needs root; never skips. Every wait is for a condition, with a deadline.
mod common;

use common::*;
use std::process::Output;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const CTX1: &str = "/fake_0/context1";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A lab with its bus and the fake started with ARGS.
fn fake_lab(args: &[&str]) -> Lab {
    let lab = Lab::up_prefixed("fo", 1, &["--no-ipv6"]);
    lab.start_bus();
    let mut a = vec!["start"];
    a.extend_from_slice(args);
    let out = lab.cmd("fakeofono", &a);
    assert!(
        out.status.success(),
        "lab.sh fakeofono start: {}",
        text(&out)
    );
    lab
}

/// `lab.sh fakeofono ID ctl METHOD ARGS...`, which must succeed; its stdout.
fn ctl(lab: &Lab, method: &str, args: &[&str]) -> String {
    let mut a = vec!["ctl", method];
    a.extend_from_slice(args);
    let out = lab.cmd("fakeofono", &a);
    assert!(
        out.status.success(),
        "fakeofono ctl {method} {args:?}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `busctl call org.ofono PATH IFACE MEMBER [SIG ARGS...]` in the DUT; stdout, must succeed.
fn busctl(lab: &Lab, path: &str, iface: &str, member: &str, args: &[&str]) -> String {
    let mut a = vec![
        "busctl",
        "--system",
        "call",
        "org.ofono",
        path,
        iface,
        member,
    ];
    a.extend_from_slice(args);
    let out = lab.exec(&a);
    assert!(
        out.status.success(),
        "busctl {path} {iface}.{member} {args:?}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dbus-send to org.ofono (IFACE.MEMBER, typed ARGS); Ok(reply) or Err("Error NAME: text").
fn dsend(lab: &Lab, path: &str, method: &str, args: &[&str]) -> Result<String, String> {
    let mut a = vec![
        "dbus-send",
        "--system",
        "--print-reply",
        "--reply-timeout=5000",
        "--dest=org.ofono",
        path,
        method,
    ];
    a.extend_from_slice(args);
    let out = lab.exec(&a);
    if out.status.success() {
        Ok(text(&out))
    } else {
        Err(text(&out))
    }
}

fn set_prop(lab: &Lab, path: &str, iface: &str, name: &str, v: &str) -> Result<String, String> {
    let n = format!("string:{name}");
    let v = format!("variant:{v}");
    dsend(lab, path, &format!("{iface}.SetProperty"), &[&n, &v])
}

/// The error NAME of a failed dbus-send (its first line: `Error NAME: text`).
fn error_name(r: Result<String, String>) -> String {
    match r {
        Ok(o) => panic!("the call succeeded: {o}"),
        Err(e) => e
            .lines()
            .find_map(|l| l.strip_prefix("Error "))
            .and_then(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("no error name in: {e}"))
            .to_owned(),
    }
}

/// A JSON array of strings (the fake's Trace as ctl prints it).
fn json_strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = s.chars();
    let mut cur: Option<String> = None;
    while let Some(c) = it.next() {
        match (&mut cur, c) {
            (None, '"') => cur = Some(String::new()),
            (None, _) => {}
            (Some(v), '"') => {
                out.push(std::mem::take(v));
                cur = None;
            }
            (Some(v), '\\') => match it.next() {
                Some('n') => v.push('\n'),
                Some('t') => v.push('\t'),
                Some('u') => {
                    let hex: String = it.by_ref().take(4).collect();
                    let n = u32::from_str_radix(&hex, 16).unwrap_or(0xfffd);
                    v.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                }
                Some(x) => v.push(x),
                None => {}
            },
            (Some(v), x) => v.push(x),
        }
    }
    out
}

fn trace(lab: &Lab) -> Vec<String> {
    json_strings(&ctl(lab, "Trace", &[]))
}

/// Each pattern is a substring of a trace line after the line the previous one matched.
fn assert_in_order(lines: &[String], patterns: &[&str]) {
    let mut from = 0;
    for p in patterns {
        match lines[from..].iter().position(|l| l.contains(p)) {
            Some(i) => from += i + 1,
            None => panic!(
                "not found in order: {p:?} (after line {from})\n--- trace ---\n{}",
                lines.join("\n")
            ),
        }
    }
}

fn wait_trace(lab: &Lab, what: &str, pat: &str) {
    lab.wait_for(T, what, || trace(lab).iter().any(|l| l.contains(pat)));
}

fn props(lab: &Lab, path: &str, iface: &str) -> String {
    busctl(lab, path, iface, "GetProperties", &[])
}

/// A modem that is powered, online and attached from the start (no signals for that).
fn attached_lab(knobs: &str) -> Lab {
    let m = format!(r#"{{"name":"fake_0","powered":true,"online":true{knobs}}}"#);
    let lab = fake_lab(&["--modem", &m]);
    let cm = props(&lab, "/fake_0", "org.ofono.ConnectionManager");
    assert!(cm.contains(r#""Attached" b true"#), "{cm}");
    lab
}

/// `dbus-monitor --system` in the DUT, once it is listening.
fn monitor(lab: &Lab) -> Watch {
    let w = Watch::start(lab, &["dbus-monitor", "--system"]);
    lab.wait_for(T, "dbus-monitor to listen", || w.seen("NameLost"));
    w
}

/// dbus-monitor blocks as (first line, argument lines).
fn monitor_blocks(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for l in out.lines() {
        if l.starts_with(' ') {
            if let Some(b) = v.last_mut() {
                b.1.push_str(l.trim());
                b.1.push('\n');
            }
        } else {
            v.push((l.to_owned(), String::new()));
        }
    }
    v
}

fn field<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    head.split([' ', ';'])
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn get_modems_then_powered_and_online_grow_interfaces_in_order_and_offline_keeps_contexts() {
    let lab = fake_lab(&[]);
    let modems = busctl(&lab, "/", "org.ofono.Manager", "GetModems", &[]);
    assert!(modems.starts_with("a(oa{sv}) 1 \"/fake_0\""), "{modems}");
    for want in [
        r#""Powered" b false"#,
        r#""Online" b false"#,
        r#""Type" s "hardware""#,
        r#""Interfaces" as 0"#,
    ] {
        assert!(modems.contains(want), "GetModems lacks {want}: {modems}");
    }
    let online = set_prop(&lab, "/fake_0", "org.ofono.Modem", "Online", "boolean:true");
    assert_eq!(error_name(online), "org.ofono.Error.NotAvailable");
    // no SimManager before power: the interface is not there
    let sim = dsend(&lab, "/fake_0", "org.ofono.SimManager.GetProperties", &[]);
    assert_eq!(error_name(sim), "org.freedesktop.DBus.Error.UnknownMethod");

    ctl(&lab, "ClearTrace", &[]);
    set_prop(
        &lab,
        "/fake_0",
        "org.ofono.Modem",
        "Powered",
        "boolean:true",
    )
    .unwrap();
    lab.wait_for(T, "ConnectionManager after power", || {
        props(&lab, "/fake_0", "org.ofono.Modem").contains("org.ofono.ConnectionManager")
    });
    let sim = props(&lab, "/fake_0", "org.ofono.SimManager");
    assert!(
        sim.contains(r#""SubscriberIdentity" s "001010123456789""#)
            && sim.contains(r#""PinRequired" s "none""#),
        "{sim}"
    );
    set_prop(&lab, "/fake_0", "org.ofono.Modem", "Online", "boolean:true").unwrap();
    lab.wait_for(T, "attached", || {
        props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b true"#)
    });
    let t = trace(&lab);
    assert_in_order(
        &t,
        &[
            "reply org.ofono.Modem.SetProperty /fake_0",
            "signal org.ofono.Modem.PropertyChanged /fake_0 [Powered,true]",
            "signal org.ofono.Modem.PropertyChanged /fake_0 [Interfaces,[org.ofono.SimManager]]",
            "[Features,[sim]]",
            "signal org.ofono.SimManager.PropertyChanged /fake_0 [SubscriberIdentity,001010123456789]",
            "[MobileCountryCode,001]",
            "[MobileNetworkCode,01]",
            "[Interfaces,[org.ofono.SimManager,org.ofono.ConnectionManager]]",
            "[Features,[sim,gprs]]",
            "call org.ofono.Modem.SetProperty /fake_0 [Online,true]",
            "reply org.ofono.Modem.SetProperty /fake_0",
            "[Online,true]",
            "[Interfaces,[org.ofono.SimManager,org.ofono.ConnectionManager,org.ofono.NetworkRegistration]]",
            "[Features,[sim,gprs,net]]",
            "signal org.ofono.NetworkRegistration.PropertyChanged /fake_0 [Status,registered]",
            "[Strength,77]",
            "signal org.ofono.ConnectionManager.PropertyChanged /fake_0 [Attached,true]",
            "[Bearer,lte]",
        ],
    );
    let nr = props(&lab, "/fake_0", "org.ofono.NetworkRegistration");
    for want in [
        r#""Status" s "registered""#,
        r#""Strength" y 77"#,
        r#""Name" s "Fake Telecom""#,
        r#""MobileCountryCode" s "001""#,
    ] {
        assert!(nr.contains(want), "NetworkRegistration lacks {want}: {nr}");
    }

    // an active context, then offline: deactivated, NetworkRegistration gone, context kept
    set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "Active",
        "boolean:true",
    )
    .unwrap();
    wait_trace(&lab, "Active true", "/fake_0/context1 [Active,true]");
    ctl(&lab, "ClearTrace", &[]);
    set_prop(
        &lab,
        "/fake_0",
        "org.ofono.Modem",
        "Online",
        "boolean:false",
    )
    .unwrap();
    let t = trace(&lab);
    assert_in_order(
        &t,
        &[
            "reply org.ofono.Modem.SetProperty /fake_0",
            "[Online,false]",
            "/fake_0/context1 [Settings,{}]",
            "/fake_0/context1 [Active,false]",
            "[Attached,false]",
            "[Bearer,none]",
            "[Interfaces,[org.ofono.SimManager,org.ofono.ConnectionManager]]",
        ],
    );
    let ctxs = busctl(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager",
        "GetContexts",
        &[],
    );
    assert!(
        ctxs.starts_with("a(oa{sv}) 1 \"/fake_0/context1\"")
            && ctxs.contains(r#""Active" b false"#),
        "{ctxs}"
    );
    assert!(!t.iter().any(|l| l.contains("ContextRemoved")), "{t:?}");
}

#[test]
fn activation_answers_then_settings_then_ipv6_settings_then_active_on_the_wire() {
    let lab = attached_lab(r#","protocol":"dual""#);
    let mon = monitor(&lab);
    ctl(&lab, "ClearTrace", &[]);
    set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "Active",
        "boolean:true",
    )
    .unwrap();
    wait_trace(&lab, "Active true", "/fake_0/context1 [Active,true]");
    assert_in_order(
        &trace(&lab),
        &[
            "call org.ofono.ConnectionContext.SetProperty /fake_0/context1 [Active,true]",
            "reply org.ofono.ConnectionContext.SetProperty /fake_0/context1",
            "/fake_0/context1 [Settings,{Address=198.18.1.50,DomainNameServers=[198.18.1.1],Gateway=198.18.1.1,Interface=eth0,Method=static,Netmask=255.255.255.0}]",
            "/fake_0/context1 [IPv6.Settings,{Address=fd18:1::50,DomainNameServers=[fd18:1::1],Gateway=fd18:1::1,Interface=eth0,PrefixLength=64}]",
            "/fake_0/context1 [Active,true]",
        ],
    );
    // the same order as a client on the bus sees it
    let order = |blocks: &[(String, String)], active: &str| -> Vec<&'static str> {
        let mut seen = Vec::new();
        let mut call: Option<(String, String)> = None;
        for (head, args) in blocks {
            if head.starts_with("method call")
                && head.contains("path=/fake_0/context1;")
                && head.contains("member=SetProperty")
                && args.contains(&format!("boolean {active}"))
            {
                call = Some((
                    field(head, "sender").unwrap_or("").to_owned(),
                    field(head, "serial").unwrap_or("").to_owned(),
                ));
                seen.push("call");
            } else if let Some((sender, serial)) = &call {
                if head.starts_with("method return")
                    && field(head, "destination") == Some(sender.as_str())
                    && field(head, "reply_serial") == Some(serial.as_str())
                {
                    seen.push("reply");
                } else if head.starts_with("signal")
                    && head.contains("path=/fake_0/context1;")
                    && head.contains("member=PropertyChanged")
                {
                    let name = args.lines().next().unwrap_or("");
                    seen.push(match name {
                        "string \"Settings\"" => "Settings",
                        "string \"IPv6.Settings\"" => "IPv6.Settings",
                        "string \"Active\"" => "Active",
                        _ => "other",
                    });
                }
            }
        }
        seen
    };
    lab.wait_for(T, "the monitor to see Active true", || {
        order(&monitor_blocks(&mon.output()), "true").contains(&"Active")
    });
    let out = mon.output();
    assert_eq!(
        order(&monitor_blocks(&out), "true"),
        ["call", "reply", "Settings", "IPv6.Settings", "Active"],
        "--- dbus-monitor ---\n{out}"
    );
    assert!(out.contains("string \"198.18.1.50\""), "{out}");
    let p = props(&lab, CTX1, "org.ofono.ConnectionContext");
    assert!(
        p.contains(r#""Active" b true"#) && p.contains(r#""PrefixLength" y 64"#),
        "{p}"
    );

    // deactivation: reply, Settings {}, IPv6.Settings {}, Active false
    set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "Active",
        "boolean:false",
    )
    .unwrap();
    lab.wait_for(T, "the monitor to see Active false", || {
        order(&monitor_blocks(&mon.output()), "false").contains(&"Active")
    });
    let out = mon.output();
    assert_eq!(
        order(&monitor_blocks(&out), "false"),
        ["call", "reply", "Settings", "IPv6.Settings", "Active"],
        "--- dbus-monitor ---\n{out}"
    );
    let p = props(&lab, CTX1, "org.ofono.ConnectionContext");
    assert!(
        p.contains(r#""Settings" a{sv} 0"#) && p.contains(r#""IPv6.Settings" a{sv} 0"#),
        "{p}"
    );
}

#[test]
fn not_attached_when_detached_failnext_in_progress_and_detach_ends_active_contexts() {
    let lab = attached_lab(r#","contexts":2,"max_active":1"#);
    let ctx = "org.ofono.ConnectionContext";
    ctl(&lab, "Detach", &["/fake_0"]);
    assert!(props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b false"#));
    let r = set_prop(&lab, CTX1, ctx, "Active", "boolean:true");
    assert_eq!(error_name(r), "org.ofono.Error.NotAttached");
    ctl(&lab, "Attach", &["/fake_0"]);
    lab.wait_for(T, "attached again", || {
        props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b true"#)
    });

    // FailNext: that error once, the context stays inactive; the next activation works
    ctl(&lab, "FailNext", &[CTX1, "org.ofono.Error.Failed"]);
    let r = set_prop(&lab, CTX1, ctx, "Active", "boolean:true");
    assert_eq!(error_name(r), "org.ofono.Error.Failed");
    assert!(props(&lab, CTX1, ctx).contains(r#""Active" b false"#));
    ctl(
        &lab,
        "FailNext",
        &[CTX1, "org.ofono.Error.InvalidArguments"],
    );
    let r = set_prop(&lab, CTX1, ctx, "Active", "boolean:true");
    assert_eq!(error_name(r), "org.ofono.Error.InvalidArguments");

    // an activation under way: InProgress for the context, NotImplemented for the second one
    ctl(&lab, "SetActivationDelay", &["1500"]);
    let slow = Watch::start(
        &lab,
        &[
            "sh",
            "-c",
            "dbus-send --system --print-reply --reply-timeout=10000 --dest=org.ofono \
             /fake_0/context1 org.ofono.ConnectionContext.SetProperty string:Active \
             variant:boolean:true 2>&1; echo done",
        ],
    );
    wait_trace(
        &lab,
        "the slow activation to arrive",
        "call org.ofono.ConnectionContext.SetProperty /fake_0/context1 [Active,true]",
    );
    let r = set_prop(&lab, CTX1, ctx, "AccessPointName", "string:other");
    assert_eq!(error_name(r), "org.ofono.Error.InProgress");
    let r = set_prop(&lab, "/fake_0/context2", ctx, "Active", "boolean:true");
    assert_eq!(error_name(r), "org.ofono.Error.NotImplemented");
    lab.wait_for(T, "the slow activation's reply", || slow.seen("done"));
    assert!(slow.seen("method return"), "{}", slow.output());
    ctl(&lab, "SetActivationDelay", &["20"]);
    // while active, other properties are refused; bad values are format errors
    let r = set_prop(&lab, CTX1, ctx, "AccessPointName", "string:other");
    assert_eq!(error_name(r), "org.ofono.Error.InUse");
    let r = set_prop(
        &lab,
        "/fake_0/context2",
        ctx,
        "AccessPointName",
        "string:bad..apn",
    );
    assert_eq!(error_name(r), "org.ofono.Error.InvalidFormat");
    let r = set_prop(&lab, "/fake_0/context2", ctx, "Protocol", "string:ipx");
    assert_eq!(error_name(r), "org.ofono.Error.InvalidFormat");
    let r = set_prop(&lab, "/fake_0/context2", ctx, "Settings", "string:x");
    assert_eq!(error_name(r), "org.ofono.Error.InvalidArguments");

    // the network detaches: the active context goes down before Attached false
    ctl(&lab, "ClearTrace", &[]);
    ctl(&lab, "Detach", &["/fake_0"]);
    assert_in_order(
        &trace(&lab),
        &[
            "/fake_0/context1 [Settings,{}]",
            "/fake_0/context1 [Active,false]",
            "signal org.ofono.ConnectionManager.PropertyChanged /fake_0 [Attached,false]",
        ],
    );
    // the network ends a context by itself
    ctl(&lab, "Attach", &["/fake_0"]);
    lab.wait_for(T, "attached again", || {
        props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b true"#)
    });
    set_prop(&lab, CTX1, ctx, "Active", "boolean:true").unwrap();
    wait_trace(&lab, "Active true", "/fake_0/context1 [Active,true]");
    ctl(&lab, "DeactivateByNetwork", &[CTX1]);
    assert!(props(&lab, CTX1, ctx).contains(r#""Active" b false"#));
}

#[test]
fn hostile_settings_reach_the_client_verbatim() {
    let lab = attached_lab("");
    let dns: Vec<String> = (1..=50).map(|i| format!("\"10.9.0.{i}\"")).collect();
    let raw = format!(
        r#"{{"Method":"bogus","Address":{{"@u":3232235777}},"Netmask":"0.0.0.0","Gateway":["x"],"DomainNameServers":[{}],"Extra":{{"@ay":"00ff"}}}}"#,
        dns.join(",")
    );
    ctl(&lab, "SetSettings", &[CTX1, &raw]);
    ctl(
        &lab,
        "SetIPv6Settings",
        &[
            CTX1,
            r#"{"Interface":"nosuch0","PrefixLength":"64","Address":{"@y":7}}"#,
        ],
    );
    set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "Active",
        "boolean:true",
    )
    .unwrap();
    wait_trace(&lab, "Active true", "/fake_0/context1 [Active,true]");
    let p = props(&lab, CTX1, "org.ofono.ConnectionContext");
    for want in [
        r#""Method" s "bogus""#,
        r#""Address" u 3232235777"#,
        r#""Netmask" s "0.0.0.0""#,
        r#""Gateway" as 1 "x""#,
        r#""DomainNameServers" as 50 "10.9.0.1""#,
        r#""10.9.0.50""#,
        r#""Extra" ay 2 0 255"#,
        r#""Interface" s "nosuch0""#,
        r#""PrefixLength" s "64""#,
        r#""Address" y 7"#,
    ] {
        assert!(p.contains(want), "GetProperties lacks {want}: {p}");
    }
    assert!(
        p.contains(r#""Settings" a{sv} 6 "Method" s "bogus""#),
        "Settings has no Interface, just these 6 keys: {p}"
    );
    // the signal carried the same dict
    assert_in_order(
        &trace(&lab),
        &["/fake_0/context1 [Settings,{Address=3232235777,DomainNameServers=[50 items],Extra=0x00ff,Gateway=[x],Method=bogus,Netmask=0.0.0.0}]"],
    );
    // a bad call never kills it
    let r = dsend(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext.SetProperty",
        &["string:Active"],
    );
    assert_eq!(error_name(r), "org.freedesktop.DBus.Error.UnknownMethod");
    busctl(&lab, "/", "org.ofono.Manager", "GetModems", &[]);
}

#[test]
fn crash_mid_activation_drops_the_name_and_a_restart_brings_it_back() {
    let lab = attached_lab("");
    let mon = monitor(&lab);
    // what oFono stores per IMSI survives the crash
    set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "AccessPointName",
        "string:lab.apn",
    )
    .unwrap();
    ctl(&lab, "SetActivationDelay", &["5000"]);
    let pending = Watch::start(
        &lab,
        &[
            "sh",
            "-c",
            "dbus-send --system --print-reply --reply-timeout=20000 --dest=org.ofono \
             /fake_0/context1 org.ofono.ConnectionContext.SetProperty string:Active \
             variant:boolean:true 2>&1; echo done",
        ],
    );
    wait_trace(
        &lab,
        "the activation to arrive",
        "call org.ofono.ConnectionContext.SetProperty /fake_0/context1 [Active,true]",
    );
    let pid: u32 = String::from_utf8_lossy(&lab.cmd("fakeofono", &["pid"]).stdout)
        .trim()
        .parse()
        .expect("fakeofono pid");
    ctl(&lab, "Crash", &[]);
    lab.wait_for(T, "the pending activation to fail", || pending.seen("done"));
    assert!(
        pending.seen("org.freedesktop.DBus.Error.NoReply"),
        "{}",
        pending.output()
    );
    lab.wait_for(T, "the fake to exit", || !pid_alive(pid));
    let lost = |out: &str| -> bool {
        monitor_blocks(out).iter().any(|(h, a)| {
            h.contains("member=NameOwnerChanged")
                && a.starts_with("string \"org.ofono\"\nstring \":")
                && a.ends_with("string \"\"\n")
        })
    };
    lab.wait_for(T, "NameOwnerChanged org.ofono -> nobody", || {
        lost(&mon.output())
    });
    let r = dsend(&lab, "/", "org.ofono.Manager.GetModems", &[]);
    assert_eq!(error_name(r), "org.freedesktop.DBus.Error.ServiceUnknown");

    let out = lab.cmd("fakeofono", &["start"]);
    assert!(out.status.success(), "restart: {}", text(&out));
    let gained = |out: &str| -> usize {
        monitor_blocks(out)
            .iter()
            .filter(|(h, a)| {
                h.contains("member=NameOwnerChanged")
                    && a.starts_with("string \"org.ofono\"\nstring \"\"\nstring \":")
            })
            .count()
    };
    lab.wait_for(T, "NameOwnerChanged nobody -> org.ofono", || {
        gained(&mon.output()) >= 1
    });
    // a fresh daemon: the modem is back, not powered; its context kept its APN, inactive
    let modems = busctl(&lab, "/", "org.ofono.Manager", "GetModems", &[]);
    assert!(
        modems.contains("\"/fake_0\"") && modems.contains(r#""Powered" b false"#),
        "{modems}"
    );
    set_prop(
        &lab,
        "/fake_0",
        "org.ofono.Modem",
        "Powered",
        "boolean:true",
    )
    .unwrap();
    lab.wait_for(T, "ConnectionManager after power", || {
        props(&lab, "/fake_0", "org.ofono.Modem").contains("org.ofono.ConnectionManager")
    });
    let ctxs = busctl(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager",
        "GetContexts",
        &[],
    );
    assert!(
        ctxs.contains(r#""AccessPointName" s "lab.apn""#) && ctxs.contains(r#""Active" b false"#),
        "{ctxs}"
    );
}

#[test]
fn control_api_add_remove_modem_registration_and_no_reply() {
    let lab = fake_lab(&["--no-modem"]);
    let mon = monitor(&lab);
    let path = ctl(
        &lab,
        "AddModem",
        &[
            "m1",
            r#"{"imsi":"262019876543210","operator":"Lab Net","strength":{"@y":31},"sim":"pin","powered":true}"#,
        ],
    );
    assert_eq!(path.trim(), "\"/m1\"");
    lab.wait_for(T, "ModemAdded", || mon.seen("member=ModemAdded"));
    let sim = props(&lab, "/m1", "org.ofono.SimManager");
    assert!(
        sim.contains(r#""PinRequired" s "pin""#) && !sim.contains("SubscriberIdentity"),
        "{sim}"
    );
    let r = set_prop(&lab, "/m1", "org.ofono.Modem", "Online", "boolean:true");
    assert_eq!(error_name(r), "org.ofono.Error.NotAvailable");

    let m2 = ctl(
        &lab,
        "AddModem",
        &["", r#"{"status":"roaming","powered":true,"online":true}"#],
    );
    assert_eq!(m2.trim(), "\"/fake_0\"");
    let cm = props(&lab, "/fake_0", "org.ofono.ConnectionManager");
    assert!(
        cm.contains(r#""Attached" b false"#),
        "roaming, not allowed: {cm}"
    );
    set_prop(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager",
        "RoamingAllowed",
        "boolean:true",
    )
    .unwrap();
    lab.wait_for(T, "attached when roaming is allowed", || {
        props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b true"#)
    });
    ctl(&lab, "SetRegistration", &["/fake_0", "denied"]);
    let cm = props(&lab, "/fake_0", "org.ofono.ConnectionManager");
    assert!(cm.contains(r#""Attached" b false"#), "{cm}");
    let nr = props(&lab, "/fake_0", "org.ofono.NetworkRegistration");
    assert!(nr.contains(r#""Status" s "denied""#), "{nr}");
    ctl(&lab, "SetRegistration", &["/fake_0", "registered"]);
    ctl(&lab, "SetStrength", &["/fake_0", "12"]);
    lab.wait_for(T, "strength 12", || {
        props(&lab, "/fake_0", "org.ofono.NetworkRegistration").contains(r#""Strength" y 12"#)
    });
    lab.wait_for(T, "attached again", || {
        props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b true"#)
    });

    // NoReplyNext: the activation hangs (InProgress) until the network ends it
    ctl(&lab, "NoReplyNext", &[CTX1]);
    let hung = Watch::start(
        &lab,
        &[
            "sh",
            "-c",
            "dbus-send --system --print-reply --reply-timeout=20000 --dest=org.ofono \
             /fake_0/context1 org.ofono.ConnectionContext.SetProperty string:Active \
             variant:boolean:true 2>&1; echo done",
        ],
    );
    wait_trace(
        &lab,
        "the call to be swallowed",
        "swallowed org.ofono.ConnectionContext.SetProperty /fake_0/context1",
    );
    let r = set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "Active",
        "boolean:true",
    );
    assert_eq!(error_name(r), "org.ofono.Error.InProgress");
    assert!(!hung.seen("done"), "answered: {}", hung.output());
    ctl(&lab, "DeactivateByNetwork", &[CTX1]);
    set_prop(
        &lab,
        CTX1,
        "org.ofono.ConnectionContext",
        "Active",
        "boolean:true",
    )
    .unwrap();

    // AddContext / RemoveContext (of an active one: deactivated first)
    let c = busctl(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager",
        "AddContext",
        &["s", "mms"],
    );
    assert_eq!(c.trim(), "o \"/fake_0/context2\"");
    let r = dsend(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager.AddContext",
        &["string:bogus"],
    );
    assert_eq!(error_name(r), "org.ofono.Error.InvalidFormat");
    wait_trace(&lab, "Active true", "/fake_0/context1 [Active,true]");
    ctl(&lab, "ClearTrace", &[]);
    busctl(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager",
        "RemoveContext",
        &["o", CTX1],
    );
    assert_in_order(
        &trace(&lab),
        &[
            "call org.ofono.ConnectionManager.RemoveContext /fake_0 [/fake_0/context1]",
            "/fake_0/context1 [Settings,{}]",
            "/fake_0/context1 [Active,false]",
            "reply org.ofono.ConnectionManager.RemoveContext /fake_0",
            "signal org.ofono.ConnectionManager.ContextRemoved /fake_0 [/fake_0/context1]",
        ],
    );
    let r = dsend(
        &lab,
        "/fake_0",
        "org.ofono.ConnectionManager.RemoveContext",
        &["objpath:/fake_0/context1"],
    );
    assert_eq!(error_name(r), "org.ofono.Error.NotFound");

    ctl(&lab, "RemoveModem", &["/m1"]);
    lab.wait_for(T, "ModemRemoved", || mon.seen("member=ModemRemoved"));
    let modems = busctl(&lab, "/", "org.ofono.Manager", "GetModems", &[]);
    assert!(modems.starts_with("a(oa{sv}) 1 \"/fake_0\""), "{modems}");
    let out = lab.cmd("fakeofono", &["ctl", "RemoveModem", "/m1"]);
    assert!(!out.status.success(), "removing it twice worked");
    let out = lab.cmd("fakeofono", &["stop"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn ipv6_only_context_and_a_connection_manager_that_exists_only_while_online() {
    let lab = attached_lab(r#","protocol":"ipv6","cm_stage":"online""#);
    let ctx = "org.ofono.ConnectionContext";
    set_prop(&lab, CTX1, ctx, "Active", "boolean:true").unwrap();
    wait_trace(&lab, "Active true", "/fake_0/context1 [Active,true]");
    assert_in_order(
        &trace(&lab),
        &[
            "reply org.ofono.ConnectionContext.SetProperty /fake_0/context1",
            "/fake_0/context1 [IPv6.Settings,{Address=fd18:1::50,",
            "/fake_0/context1 [Active,true]",
        ],
    );
    // offline: ConnectionManager leaves with the modem's post-online atoms, in one
    // Interfaces change and without other signals (as ofonod 1.31 with phonesim); its
    // context objects vanish without ContextRemoved and come back, inactive, at the same path
    ctl(&lab, "ClearTrace", &[]);
    set_prop(
        &lab,
        "/fake_0",
        "org.ofono.Modem",
        "Online",
        "boolean:false",
    )
    .unwrap();
    let t = trace(&lab);
    assert_in_order(
        &t,
        &[
            "[Online,false]",
            "[Interfaces,[org.ofono.SimManager]]",
            "[Features,[sim]]",
        ],
    );
    for quiet in [
        "ContextRemoved",
        "[Active,",
        "[Attached,",
        "ConnectionManager]]",
    ] {
        assert!(!t.iter().any(|l| l.contains(quiet)), "{quiet}: {t:?}");
    }
    let gone = dsend(&lab, CTX1, "org.ofono.ConnectionContext.GetProperties", &[]);
    assert!(error_name(gone).starts_with("org.freedesktop.DBus.Error.Unknown"));
    set_prop(&lab, "/fake_0", "org.ofono.Modem", "Online", "boolean:true").unwrap();
    lab.wait_for(T, "attached again", || {
        props(&lab, "/fake_0", "org.ofono.ConnectionManager").contains(r#""Attached" b true"#)
    });
    let p = props(&lab, CTX1, ctx);
    assert!(
        p.contains(r#""Active" b false"#) && p.contains(r#""Protocol" s "ipv6""#),
        "{p}"
    );
}
