//! The lab's simulated cellular modem against the REAL oFono: Debian's ofonod (its built-in
//! phonesim plugin and atmodem drivers) talking AT to tests/lab/at_modem.py, on the lab's
//! private bus (`lab.sh ofono ID start`). These tests check the harness itself, so that
//! pathman's cellular tests can trust it: what ofonod shows over D-Bus for each of the
//! modem's knobs, and that the context's data interface (`dummy0`, a veth to upstream 1)
//! gets a DHCP lease from the lab's dnsmasq. Needs root and ofonod; never skips.
mod common;

use common::*;
use std::process::Output;
use std::time::Duration;

const MODEM: &str = "/phonesim";
const CTX: &str = "/phonesim/context1";
const T: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- busctl's text output

/// A D-Bus value as `busctl call` prints it (basic values keep their text).
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Basic(String),
    Array(Vec<Val>),
    Dict(Vec<(String, Val)>),
    Struct(Vec<Val>),
}

impl Val {
    fn get(&self, key: &str) -> Option<&Val> {
        match self {
            Val::Dict(d) => d.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Val::Basic(s) => Some(s),
            _ => None,
        }
    }
}

/// Words of busctl's output: "quoted strings" unescaped, everything else split on spaces.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == '"' {
            it.next();
            let mut w = String::new();
            while let Some(c) = it.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(e) = it.next() {
                            w.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                e => e,
                            });
                        }
                    }
                    c => w.push(c),
                }
            }
            out.push(w);
        } else {
            let mut w = String::new();
            while let Some(&c) = it.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                it.next();
            }
            out.push(w);
        }
    }
    out
}

/// The length of the first complete type in `sig`.
fn one_type(sig: &[u8]) -> usize {
    match sig[0] {
        b'a' => 1 + one_type(&sig[1..]),
        b'(' | b'{' => {
            let mut i = 1;
            while sig[i] != b')' && sig[i] != b'}' {
                i += one_type(&sig[i..]);
            }
            i + 1
        }
        _ => 1,
    }
}

fn parse_val(sig: &[u8], toks: &mut std::vec::IntoIter<String>) -> Val {
    let next = |t: &mut std::vec::IntoIter<String>| t.next().expect("busctl output ends early");
    match sig[0] {
        b'a' => {
            let n: usize = next(toks).parse().expect("array length");
            let elem = &sig[1..1 + one_type(&sig[1..])];
            if elem[0] == b'{' {
                let k = &elem[1..1 + one_type(&elem[1..])];
                let v = &elem[1 + k.len()..elem.len() - 1];
                Val::Dict(
                    (0..n)
                        .map(|_| {
                            let key = match parse_val(k, toks) {
                                Val::Basic(s) => s,
                                other => panic!("dict key {other:?}"),
                            };
                            (key, parse_val(v, toks))
                        })
                        .collect(),
                )
            } else {
                Val::Array((0..n).map(|_| parse_val(elem, toks)).collect())
            }
        }
        b'(' => {
            let mut fields = Vec::new();
            let mut i = 1;
            while sig[i] != b')' {
                let l = one_type(&sig[i..]);
                fields.push(parse_val(&sig[i..i + l], toks));
                i += l;
            }
            Val::Struct(fields)
        }
        b'v' => {
            let inner = next(toks);
            parse_val(inner.as_bytes(), toks)
        }
        _ => Val::Basic(next(toks)),
    }
}

/// busctl's reply text (`SIG value...`) parsed; only one complete type expected.
fn parse_reply(text: &str) -> Val {
    let mut toks = tokens(text).into_iter();
    let sig = toks.next().expect("empty busctl reply");
    parse_val(sig.as_bytes(), &mut toks)
}

// ---------------------------------------------------------------- the lab

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A lab whose upstream 1 is on the DUT's `dummy0` (the name phonesim reports for the
/// first context), the lab bus, and the modem + ofonod started with `flags`.
struct Cell {
    lab: Lab,
}

impl Cell {
    fn up(flags: &[&str]) -> Cell {
        let lab = Lab::up_prefixed("of", 1, &["--ifnames", "dummy0", "--no-ipv6"]);
        lab.start_bus();
        let mut a = vec!["start"];
        a.extend_from_slice(flags);
        ok(lab.cmd("ofono", &a), "lab.sh ofono start");
        Cell { lab }
    }

    fn at_log(&self) -> String {
        std::fs::read_to_string(self.lab.dir.join("ofono/at.log")).unwrap_or_default()
    }

    fn ofonod_log(&self) -> String {
        std::fs::read_to_string(self.lab.dir.join("ofono/ofonod.log")).unwrap_or_default()
    }

    /// Poll `f` until true, or panic with the tails of the modem's and ofonod's logs.
    fn wait(&self, what: &str, mut f: impl FnMut() -> bool) {
        let end = std::time::Instant::now() + T;
        while !f() {
            if std::time::Instant::now() >= end {
                let tail = |s: String, n: usize| {
                    let v: Vec<&str> = s.lines().collect();
                    v[v.len().saturating_sub(n)..].join("\n")
                };
                panic!(
                    "timed out after {T:?} waiting for: {what}\n--- at.log ---\n{}\n--- ofonod.log ---\n{}",
                    tail(self.at_log(), 40),
                    tail(self.ofonod_log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `busctl call org.ofono PATH IFACE METHOD ARGS` in the DUT; the parsed reply.
    fn call(&self, path: &str, iface: &str, method: &str, args: &[&str]) -> Val {
        let mut c = vec![
            "busctl",
            "--system",
            "call",
            "org.ofono",
            path,
            iface,
            method,
        ];
        c.extend_from_slice(args);
        parse_reply(&ok(self.lab.exec(&c), &format!("{iface}.{method}")))
    }

    /// GetProperties of IFACE on PATH (None while the interface is not there yet).
    fn props(&self, path: &str, iface: &str) -> Option<Val> {
        let out = self.lab.exec(&[
            "busctl",
            "--system",
            "call",
            "org.ofono",
            path,
            iface,
            "GetProperties",
        ]);
        out.status
            .success()
            .then(|| parse_reply(&String::from_utf8_lossy(&out.stdout)))
    }

    fn prop(&self, path: &str, iface: &str, key: &str) -> Option<String> {
        self.props(path, iface)?.get(key)?.str().map(str::to_owned)
    }

    /// `SetProperty(key, value)` by dbus-send (VALUE like `boolean:true`, `string:x`),
    /// which prints the error's name; Err(its output) when the call fails.
    fn set(&self, path: &str, iface: &str, key: &str, value: &str) -> Result<(), String> {
        let out = self.lab.exec(&[
            "dbus-send",
            "--system",
            "--print-reply",
            "--reply-timeout=20000",
            "--dest=org.ofono",
            path,
            &format!("{iface}.SetProperty"),
            &format!("string:{key}"),
            &format!("variant:{value}"),
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn set_ok(&self, path: &str, iface: &str, key: &str, value: &str) {
        if let Err(e) = self.set(path, iface, key, value) {
            panic!(
                "{iface}.SetProperty({key}, {value}) failed: {e}\n--- at.log ---\n{}",
                self.at_log()
            );
        }
    }

    /// One runtime knob of the modem (`lab.sh ofono ID ctl ...`).
    fn knob(&self, args: &[&str]) -> String {
        let mut a = vec!["ctl"];
        a.extend_from_slice(args);
        ok(
            self.lab.cmd("ofono", &a),
            &format!("ofono ctl {}", args.join(" ")),
        )
    }

    fn power_on(&self) {
        self.set_ok(MODEM, "org.ofono.Modem", "Powered", "boolean:true");
        self.wait("modem Powered", || {
            self.prop(MODEM, "org.ofono.Modem", "Powered").as_deref() == Some("true")
        });
    }

    fn online(&self) {
        self.power_on();
        self.wait("SimManager", || self.has_iface("org.ofono.SimManager"));
        self.set_ok(MODEM, "org.ofono.Modem", "Online", "boolean:true");
        self.wait("modem Online", || {
            self.prop(MODEM, "org.ofono.Modem", "Online").as_deref() == Some("true")
        });
    }

    fn has_iface(&self, iface: &str) -> bool {
        let want = Val::Basic(iface.into());
        self.props(MODEM, "org.ofono.Modem").is_some_and(
            |p| matches!(p.get("Interfaces"), Some(Val::Array(v)) if v.contains(&want)),
        )
    }

    fn netreg(&self, key: &str) -> Option<String> {
        self.prop(MODEM, "org.ofono.NetworkRegistration", key)
    }

    fn attached(&self) -> Option<String> {
        self.prop(MODEM, "org.ofono.ConnectionManager", "Attached")
    }

    fn wait_attached(&self) {
        self.wait("ConnectionManager Attached", || {
            self.attached().as_deref() == Some("true")
        });
    }

    /// Index of the first at.log line (after line `from`) that is `RX <cmd>`.
    fn rx_line(&self, cmd: &str, from: usize) -> Option<usize> {
        let want = format!(" RX {cmd}");
        self.at_log()
            .lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| l.ends_with(&want))
            .map(|(i, _)| i)
    }

    /// The final result the modem gave to the first `RX <cmd>` (OK, ERROR, +CME ERROR: n).
    fn answer_to(&self, cmd: &str) -> Option<String> {
        let log = self.at_log();
        let lines: Vec<&str> = log.lines().collect();
        let i = self.rx_line(cmd, 0)?;
        lines[i + 1..]
            .iter()
            .filter_map(|l| l.split_once(" TX ").map(|(_, r)| r))
            .find(|r| *r == "OK" || *r == "ERROR" || r.starts_with("+CME ERROR"))
            .map(str::to_owned)
    }
}

fn dict_str<'a>(v: &'a Val, key: &str) -> Option<&'a str> {
    v.get(key)?.str()
}

// ---------------------------------------------------------------- tests

/// The whole path: one hardware modem; powered + online it reads the knob's IMSI,
/// registers on the knob's operator, attaches; its internet context (APN set here, since
/// there is no provisioning) activates with Settings {Interface: dummy0, Method: dhcp},
/// and a DHCP client on dummy0 gets a lease from upstream 1's dnsmasq.
#[test]
fn modem_registers_attaches_and_context_gets_dhcp_on_dummy0() {
    let c = Cell::up(&["--imsi", "001019876543210", "--operator", "Lab Cell"]);
    let modems = c.call("/", "org.ofono.Manager", "GetModems", &[]);
    let Val::Array(ms) = &modems else {
        panic!("GetModems: {modems:?}")
    };
    assert_eq!(ms.len(), 1, "one modem: {modems:?}");
    let Val::Struct(m) = &ms[0] else {
        panic!("{modems:?}")
    };
    assert_eq!(m[0], Val::Basic(MODEM.into()));
    assert_eq!(dict_str(&m[1], "Type"), Some("hardware"), "{modems:?}");

    c.online();
    c.wait("SubscriberIdentity", || {
        c.prop(MODEM, "org.ofono.SimManager", "SubscriberIdentity")
            .is_some()
    });
    assert_eq!(
        c.prop(MODEM, "org.ofono.SimManager", "SubscriberIdentity")
            .as_deref(),
        Some("001019876543210")
    );
    c.wait("NetworkRegistration registered", || {
        c.netreg("Status").as_deref() == Some("registered")
    });
    c.wait("operator name", || {
        c.netreg("Name").as_deref() == Some("Lab Cell")
    });
    assert_eq!(c.netreg("MobileCountryCode").as_deref(), Some("001"));
    assert_eq!(c.netreg("MobileNetworkCode").as_deref(), Some("01"));
    assert_eq!(
        c.netreg("Strength").as_deref(),
        Some("77"),
        "--csq 24 default"
    );
    c.wait_attached();

    let ctxs = c.call(MODEM, "org.ofono.ConnectionManager", "GetContexts", &[]);
    let Val::Array(cs) = &ctxs else {
        panic!("GetContexts: {ctxs:?}")
    };
    let internet: Vec<&Val> = cs
        .iter()
        .filter(|v| matches!(v, Val::Struct(f) if dict_str(&f[1], "Type") == Some("internet")))
        .collect();
    assert_eq!(internet.len(), 1, "one internet context: {ctxs:?}");
    let Val::Struct(f) = internet[0] else {
        unreachable!()
    };
    assert_eq!(f[0], Val::Basic(CTX.into()), "{ctxs:?}");
    assert_eq!(
        dict_str(&f[1], "AccessPointName"),
        Some(""),
        "no provisioning"
    );

    let ctx = "org.ofono.ConnectionContext";
    c.set_ok(CTX, ctx, "AccessPointName", "string:internet");
    c.set_ok(CTX, ctx, "Active", "boolean:true");
    c.wait("context Active", || {
        c.prop(CTX, ctx, "Active").as_deref() == Some("true")
    });
    let p = c.props(CTX, ctx).expect("context properties");
    let s = p.get("Settings").expect("Settings");
    assert_eq!(dict_str(s, "Interface"), Some("dummy0"), "{p:?}");
    assert_eq!(dict_str(s, "Method"), Some("dhcp"), "{p:?}");
    assert!(c.rx_line(r#"AT+CGDCONT=1,"IP","internet""#, 0).is_some());
    assert_eq!(c.answer_to("AT+CGACT=1,1").as_deref(), Some("OK"));

    // ofonod brought dummy0 up; DHCP over it reaches upstream 1's dnsmasq.
    assert!(has_carrier(&c.lab, "dummy0"));
    let out = c.lab.exec(&[
        "timeout",
        "20",
        "busybox",
        "udhcpc",
        "-n",
        "-q",
        "-f",
        "-i",
        "dummy0",
        "-s",
        "/bin/true",
    ]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && said.contains("lease of 198.18.1."),
        "udhcpc on dummy0 got no lease ({}): {said}",
        out.status
    );
    let leases = std::fs::read_to_string(c.lab.dir.join("up1/dnsmasq.leases")).unwrap_or_default();
    assert!(
        leases.contains("198.18.1.") && leases.contains("02:50:4d:00:00:01"),
        "dnsmasq has no lease for dummy0: {leases:?} (udhcpc: {said})"
    );

    // Active=false goes back through the modem (AT+CGACT=0,1).
    c.set_ok(CTX, ctx, "Active", "boolean:false");
    c.wait("context inactive", || {
        c.prop(CTX, ctx, "Active").as_deref() == Some("false")
    });
    assert_eq!(c.answer_to("AT+CGACT=0,1").as_deref(), Some("OK"));
}
