//! The lab's simulated cellular modem against the REAL oFono: Debian's ofonod (its built-in
//! phonesim plugin and atmodem drivers) talking AT to tests/lab/at_modem.py, on the lab's
//! private bus (`lab.sh ofono ID start`). These tests check the harness itself, so that
//! pathman's cellular tests can trust it: what ofonod shows over D-Bus for each of the
//! modem's knobs, and that the context's data interface (`dummy0`, a veth to upstream 1)
//! gets a DHCP lease from the lab's dnsmasq. Needs root and ofonod; never skips.
mod common;

use common::*;
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

/// `--sim pin`: the SIM asks for its PIN, so there is no IMSI; a wrong PIN is refused
/// (org.ofono.Error), the right one (`--pin`, default 1234) unlocks it and the IMSI shows.
#[test]
fn sim_pin_locked_knob() {
    let c = Cell::up(&["--sim", "pin", "--pin", "4321"]);
    c.power_on();
    let sim = "org.ofono.SimManager";
    c.wait("PinRequired pin", || {
        c.prop(MODEM, sim, "PinRequired").as_deref() == Some("pin")
    });
    let p = c.props(MODEM, sim).expect("SimManager");
    assert_eq!(p.get("Present"), Some(&Val::Basic("true".into())), "{p:?}");
    assert!(
        p.get("SubscriberIdentity").is_none(),
        "IMSI while locked: {p:?}"
    );
    assert_eq!(
        p.get("LockedPins"),
        Some(&Val::Array(vec![Val::Basic("pin".into())])),
        "{p:?}"
    );
    assert!(
        c.answer_to("AT+CIMI").is_none(),
        "ofonod asked for the IMSI"
    );

    let enter = |pin: &str| {
        c.lab.exec(&[
            "dbus-send",
            "--system",
            "--print-reply",
            "--dest=org.ofono",
            MODEM,
            "org.ofono.SimManager.EnterPin",
            "string:pin",
            &format!("string:{pin}"),
        ])
    };
    let bad = enter("0000");
    assert!(!bad.status.success(), "a wrong PIN was accepted");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("org.ofono.Error"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    ok(enter("4321"), "EnterPin 4321");
    c.wait("IMSI after the PIN", || {
        c.prop(MODEM, sim, "SubscriberIdentity").as_deref() == Some("001010123456789")
    });
    assert_eq!(c.prop(MODEM, sim, "PinRequired").as_deref(), Some("none"));
}

/// `--reg roaming` at start, and `ctl reg` at run time: NetworkRegistration Status
/// follows (+CREG stat 5 / 1 / 3). While roaming, ofonod does not attach until
/// ConnectionManager RoamingAllowed is true (its default is false).
#[test]
fn registration_knobs_roaming_home_denied() {
    let c = Cell::up(&["--reg", "roaming"]);
    c.online();
    c.wait("Status roaming", || {
        c.netreg("Status").as_deref() == Some("roaming")
    });
    let cm = "org.ofono.ConnectionManager";
    c.wait("ConnectionManager up", || c.attached().is_some());
    assert_eq!(
        c.prop(MODEM, cm, "RoamingAllowed").as_deref(),
        Some("false")
    );
    assert_eq!(
        c.attached().as_deref(),
        Some("false"),
        "attached while roaming"
    );
    c.set_ok(MODEM, cm, "RoamingAllowed", "boolean:true");
    c.wait_attached();
    c.knob(&["reg", "home"]);
    c.wait("Status registered", || {
        c.netreg("Status").as_deref() == Some("registered")
    });
    c.knob(&["reg", "denied"]);
    c.wait("Status denied", || {
        c.netreg("Status").as_deref() == Some("denied")
    });
    c.wait("detached when denied", || {
        c.attached().as_deref() == Some("false")
    });
}

/// `--attach fail`: AT+CGATT=1 is refused, so Attached stays false (checked after
/// ofonod has had the modem's answer); registration itself is fine.
#[test]
fn attach_failure_knob() {
    let c = Cell::up(&["--attach", "fail"]);
    c.online();
    c.wait("Status registered", || {
        c.netreg("Status").as_deref() == Some("registered")
    });
    c.wait("AT+CGATT=1 answered", || {
        c.answer_to("AT+CGATT=1").is_some()
    });
    assert_eq!(c.answer_to("AT+CGATT=1").as_deref(), Some("ERROR"));
    // After the refusal ofonod reads the packet state back (AT+CGACT?, AT+CGREG?);
    // once it has the answer, D-Bus must still say not attached.
    let i = c.rx_line("AT+CGATT=1", 0).expect("AT+CGATT=1");
    c.wait("AT+CGREG? after the failed attach", || {
        c.rx_line("AT+CGREG?", i).is_some()
    });
    c.wait("ConnectionManager up", || c.attached().is_some());
    assert_eq!(c.attached().as_deref(), Some("false"));
    assert!(!c.at_log().contains("URC +CGREG: 1"), "{}", c.at_log());
}

/// `--activate error` / `ctl activate cme`: SetProperty(Active, true) fails with an
/// org.ofono.Error and the context stays inactive; `ctl activate ok` lets it through.
#[test]
fn activation_failure_knob() {
    let c = Cell::up(&["--activate", "error"]);
    c.online();
    c.wait_attached();
    let ctx = "org.ofono.ConnectionContext";
    c.set_ok(CTX, ctx, "AccessPointName", "string:internet");
    for (knob, answer) in [("error", "ERROR"), ("cme", "+CME ERROR: 148")] {
        c.knob(&["activate", knob]);
        let from = c.at_log().lines().count();
        let err = c
            .set(CTX, ctx, "Active", "boolean:true")
            .expect_err("activation succeeded");
        assert!(err.contains("org.ofono.Error."), "{knob}: {err}");
        let i = c.rx_line("AT+CGACT=1,1", from).expect("AT+CGACT=1,1 sent");
        let log = c.at_log();
        assert!(
            log.lines().nth(i + 1).is_some_and(|l| l.ends_with(answer)),
            "{knob}: {log}"
        );
        assert_eq!(c.prop(CTX, ctx, "Active").as_deref(), Some("false"));
    }
    c.knob(&["activate", "ok"]);
    c.set_ok(CTX, ctx, "Active", "boolean:true");
    c.wait("context Active", || {
        c.prop(CTX, ctx, "Active").as_deref() == Some("true")
    });
}

/// `ctl csq N`: the modem's +CSQ URC reaches D-Bus as NetworkRegistration
/// PropertyChanged(Strength, N*100/31).
#[test]
fn signal_strength_knob() {
    let c = Cell::up(&["--csq", "31"]);
    c.online();
    c.wait("Strength 100", || {
        c.netreg("Strength").as_deref() == Some("100")
    });
    let mon = Watch::start(
        &c.lab,
        &[
            "dbus-monitor",
            "--system",
            "type='signal',sender='org.ofono',interface='org.ofono.NetworkRegistration',member='PropertyChanged'",
        ],
    );
    c.wait("dbus-monitor ready", || mon.seen("member=NameLost"));
    c.knob(&["csq", "10"]);
    c.wait("PropertyChanged Strength 32", || {
        let o = mon.output();
        o.contains("string \"Strength\"") && o.contains("byte 32")
    });
    assert_eq!(c.netreg("Strength").as_deref(), Some("32"));
    assert!(c.at_log().contains("URC +CSQ: 10,99"));
}

/// `ctl detach`: a network-initiated detach (+CGEV: NW DETACH, +CGREG: 0) drops
/// Attached. ofonod 1.31 keeps the context Active and its Settings (the phonesim
/// context driver reports no deactivation), so a client must treat Attached=false
/// as the end of the data connection; this pins that behaviour down.
#[test]
fn network_detach_knob() {
    let c = Cell::up(&[]);
    c.online();
    c.wait_attached();
    let ctx = "org.ofono.ConnectionContext";
    c.set_ok(CTX, ctx, "AccessPointName", "string:internet");
    c.set_ok(CTX, ctx, "Active", "boolean:true");
    c.wait("context Active", || {
        c.prop(CTX, ctx, "Active").as_deref() == Some("true")
    });
    let mon = Watch::start(
        &c.lab,
        &[
            "dbus-monitor",
            "--system",
            "type='signal',sender='org.ofono',interface='org.ofono.ConnectionManager',member='PropertyChanged'",
        ],
    );
    c.wait("dbus-monitor ready", || mon.seen("member=NameLost"));
    c.knob(&["detach"]);
    c.wait("PropertyChanged Attached false", || {
        let o = mon.output();
        o.contains("string \"Attached\"") && o.contains("boolean false")
    });
    assert_eq!(c.attached().as_deref(), Some("false"));
    assert_eq!(c.prop(CTX, ctx, "Active").as_deref(), Some("true"));
    assert!(c.at_log().contains("URC +CGEV: NW DETACH"));
    assert!(c.at_log().contains("URC +CGREG: 0"));
}

/// `--sim absent`: SimManager Present false and no IMSI; `ctl sim ready` at run time is
/// a SIM insertion (+USIMSTATE: 1) after which ofonod reads the IMSI.
#[test]
fn sim_absent_knob_and_insertion() {
    let c = Cell::up(&["--sim", "absent"]);
    c.power_on();
    let sim = "org.ofono.SimManager";
    c.wait("SimManager", || c.has_iface(sim));
    c.wait("AT+SIMSTATE? answered", || {
        c.answer_to("AT+SIMSTATE?").is_some()
    });
    assert_eq!(c.prop(MODEM, sim, "Present").as_deref(), Some("false"));
    assert!(c.prop(MODEM, sim, "SubscriberIdentity").is_none());
    c.knob(&["sim", "ready"]);
    c.wait("IMSI after insertion", || {
        c.prop(MODEM, sim, "SubscriberIdentity").as_deref() == Some("001010123456789")
    });
    assert_eq!(c.prop(MODEM, sim, "Present").as_deref(), Some("true"));
}
