//! WiFi in the namespace lab: pathman against the harness's fake wpa_supplicant
//! (tests/lab/fake_wpa_supplicant.py, checked against the real one in tests/fake_wpa.rs)
//! on the lab bus, with the DUT's veth `eth0` classified as a WiFi radio by a board
//! config. What the fake says it sees makes services; once it reports `completed`,
//! pathman runs its DHCP client over the veth against the upstream's dnsmasq, so the
//! addresses, routes and rules checked here are the kernel's. The agent is a dbus-python
//! client (tests/clients/agent_connect.py) that answers RequestInput as connmanctl's does.
//! Needs root; never skips. Real radios: tests/vm_wifi.rs.
mod common;

use common::*;
use std::process::Output;
use std::time::Duration;

const PSK_SSID: &str = "lab-wifi";
const PASS: &str = "labpass1";

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

/// The service id of a network seen on the lab's eth0 (MAC 02:50:4d:00:00:01).
fn wifi_id(ssid: &[u8], sec: &str) -> String {
    format!("wifi_02504d000001_{}_managed_{sec}", hex(ssid))
}

struct WifiLab {
    lab: Lab,
    board: String,
}

impl WifiLab {
    /// A lab whose eth0 is a radio, the fake supplicant running with `bsses` (JSON
    /// AddBss dicts) visible to every interface, and pathman started.
    fn up(bsses: &[&str]) -> WifiLab {
        Self::up_with(bsses, 1)
    }

    /// The same with `n` upstreams: eth0 the radio, eth1… wired uplinks.
    fn up_with(bsses: &[&str], n: usize) -> WifiLab {
        Self::up_full(bsses, n, &[])
    }

    /// [`WifiLab::up_with`], the fake supplicant started with `wpa_args`.
    fn up_full(bsses: &[&str], n: usize, wpa_args: &[&str]) -> WifiLab {
        let lab = Lab::up_prefixed("wl", n, &[]);
        lab.start_bus();
        let board = lab.dir.join("board-wifi.conf");
        let manage: Vec<String> = (0..n).map(|k| format!("eth{k}")).collect();
        std::fs::write(
            &board,
            format!(
                "[Board]\nName=lab-wifi\n\n[Interfaces]\nManage={}\n\n[Interface eth0]\nTechnology=wifi\n",
                manage.join(",")
            ),
        )
        .expect("write board config");
        let w = WifiLab {
            lab,
            board: board.to_str().unwrap().to_string(),
        };
        w.start_supplicant_with(bsses, wpa_args);
        w.start_daemon();
        // Radios are off until enabled (ConnMan's default); the switch is saved.
        let out = ok(w.lab.ctl(&["enable", "wifi"]), "pathman ctl enable wifi");
        assert!(out.contains("Enabled wifi"), "{out}");
        w
    }

    fn start_supplicant(&self, bsses: &[&str]) {
        self.start_supplicant_with(bsses, &[]);
    }

    fn start_supplicant_with(&self, bsses: &[&str], args: &[&str]) {
        let mut cmd = vec!["start"];
        cmd.extend_from_slice(args);
        ok(self.lab.cmd("wpa", &cmd), "lab.sh wpa start");
        for b in bsses {
            ok(self.lab.cmd("wpa", &["ctl", "AddBss", "", b]), "ctl AddBss");
        }
    }

    fn start_daemon(&self) {
        // Multipath routing (per-uplink tables, MPTCP endpoints) when there are two.
        let mut args = vec!["--board", self.board.as_str()];
        if self.lab.n > 1 {
            args.push("-M");
        }
        self.lab.start_daemon(&args);
        self.lab.wait_name("net.connman", Duration::from_secs(10));
    }

    fn service_line(&self, id: &str) -> Option<(String, String, String)> {
        services(&self.lab).into_iter().find(|(_, _, i)| i == id)
    }

    fn wait_service(&self, id: &str) {
        self.lab
            .wait_for(Duration::from_secs(20), &format!("service {id}"), || {
                self.service_line(id).is_some()
            });
    }

    fn props(&self, id: &str) -> String {
        String::from_utf8_lossy(&self.lab.ctl(&["services", id]).stdout).into_owned()
    }

    fn connect(&self, id: &str, mode: &[&str]) -> Output {
        let script = lab_script()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("clients/agent_connect.py");
        let mut cmd = vec!["/usr/bin/python3", script.to_str().unwrap(), id];
        cmd.extend_from_slice(mode);
        self.lab.exec(&cmd)
    }

    fn ready(&self, id: &str) -> bool {
        self.service_line(id)
            .is_some_and(|(f, _, _)| matches!(state_flag(&f), Some('R' | 'O')))
    }

    /// The supplicant's CurrentBSS of eth0 (busctl on the lab bus).
    fn current_bss(&self) -> String {
        let busctl = |args: &[&str]| -> String {
            let mut cmd = vec!["busctl", "--system"];
            cmd.extend_from_slice(args);
            let out = ok(self.lab.exec(&cmd), "busctl");
            out.split_whitespace()
                .nth(1)
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        };
        let iface = busctl(&[
            "call",
            "fi.w1.wpa_supplicant1",
            "/fi/w1/wpa_supplicant1",
            "fi.w1.wpa_supplicant1",
            "GetInterface",
            "s",
            "eth0",
        ]);
        busctl(&[
            "get-property",
            "fi.w1.wpa_supplicant1",
            &iface,
            "fi.w1.wpa_supplicant1.Interface",
            "CurrentBSS",
        ])
    }

    fn settings(&self, id: &str) -> String {
        std::fs::read_to_string(self.lab.state_dir().join(id).join("settings")).unwrap_or_default()
    }
}

fn bss(ssid: &str, bssid: &str, sec: &str, signal: i32) -> String {
    format!(
        r#"{{"ssid":"{ssid}","bssid":"{bssid}","security":"{sec}","passphrase":"{PASS}","signal":{signal}}}"#
    )
}

#[test]
fn agent_connect_gets_dhcp_over_the_radio_and_saves_the_passphrase() {
    let psk = bss(PSK_SSID, "02:00:00:00:0a:01", "psk", -40);
    let open = bss("lab-open", "02:00:00:00:0a:02", "open", -70);
    let w = WifiLab::up(&[&psk, &open]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    w.wait_service(&wifi_id(b"lab-open", "none"));
    // Strength order within wifi: the -40 dBm network first.
    let order: Vec<String> = services(&w.lab).into_iter().map(|(_, _, i)| i).collect();
    assert_eq!(order[0], id, "{order:?}");
    let props = w.props(&id);
    assert!(props.contains("Security = [ psk ]"), "{props}");
    assert!(props.contains("Strength = 80"), "{props}");
    assert!(props.contains("Name = lab-wifi"), "{props}");

    // Technology.Scan replies once the radio's scan is done.
    let scan = w.lab.exec(&[
        "dbus-send",
        "--system",
        "--print-reply",
        "--reply-timeout=20000",
        "--dest=net.connman",
        "/net/connman/technology/wifi",
        "net.connman.Technology.Scan",
    ]);
    ok(scan, "Technology.Scan");

    let out = w.connect(&id, &["passphrase", PASS]);
    let text = ok(out, "agent_connect.py");
    assert!(text.contains("request Passphrase"), "{text}");
    assert!(text.contains("connected"), "{text}");
    assert!(
        w.ready(&id),
        "Connect replied before ready:\n{}",
        w.props(&id)
    );
    // The kernel: a DHCP address from the upstream on the radio, a default route by it.
    let addrs = addrs4(&w.lab, "eth0");
    assert!(
        addrs.iter().any(|a| a.starts_with("198.18.1.")),
        "no DHCP address on the radio: {addrs:?}"
    );
    assert!(
        default_devs(&w.lab).iter().any(|d| d == "eth0"),
        "no default route by the radio: {:?}",
        default_devs(&w.lab)
    );
    let settings = w.settings(&id);
    assert!(
        settings.contains(&format!("Passphrase={PASS}")),
        "passphrase not saved after success:\n{settings}"
    );
    assert!(settings.contains("Favorite=true"), "{settings}");
    assert!(
        !w.lab.daemon_log().contains(PASS),
        "the passphrase reached the log"
    );
    let dump = ok(w.lab.ctl(&["state", "--all"]), "ctl state --all");
    assert!(
        dump.contains("passphrase-stored") && !dump.contains(PASS),
        "{dump}"
    );

    // A restart: the favourite auto-connects with the stored passphrase, no agent.
    w.lab.stop_daemon();
    w.start_daemon();
    w.lab.wait_for(
        Duration::from_secs(30),
        "the favourite to reconnect",
        || w.ready(&id),
    );

    // Association lost (the AP goes): addresses and routes go as on carrier loss.
    let bsses = ok(w.lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    assert!(bsses.contains("SelectNetwork"), "{bsses}");
    let path = w.current_bss();
    assert!(path.contains("/BSSs/"), "no CurrentBSS: {path:?}");
    ok(
        w.lab.cmd("wpa", &["ctl", "RemoveBss", &path]),
        "ctl RemoveBss",
    );
    w.lab.wait_for(
        Duration::from_secs(15),
        "the address to go with the AP",
        || {
            !addrs4(&w.lab, "eth0")
                .iter()
                .any(|a| a.starts_with("198.18.1."))
        },
    );
    assert!(!w.ready(&id));

    // Service.Remove forgets the passphrase.
    ok(
        w.lab.exec(&[
            "dbus-send",
            "--system",
            "--print-reply",
            "--dest=net.connman",
            &format!("/net/connman/service/{}", wifi_id(b"lab-open", "none")),
            "net.connman.Service.Remove",
        ]),
        "Service.Remove",
    );
}

#[test]
fn a_wrong_passphrase_fails_with_invalid_key_and_the_agent_is_asked_again() {
    let psk = bss(PSK_SSID, "02:00:00:00:0b:01", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    let out = w.connect(&id, &["passphrase", "wrongpass"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "wrong key connected: {text}");
    assert!(text.contains("request Passphrase"), "{text}");
    assert!(text.contains("invalid-key"), "{text}");
    let props = w.props(&id);
    assert!(props.contains("State = failure"), "{props}");
    assert!(props.contains("Error = invalid-key"), "{props}");
    assert!(
        !w.settings(&id).contains("Passphrase="),
        "a failed key was stored"
    );
    assert!(
        text.contains("report invalid-key"),
        "no ReportError: {text}"
    );
    // Asked again on the next connect; the right one works.
    let text = ok(w.connect(&id, &["passphrase", PASS]), "second connect");
    assert!(
        text.contains("request Passphrase") && text.contains("connected"),
        "{text}"
    );
    // An agent that answers ReportError with Retry is asked again within the same
    // Connect, and the second key connects it.
    ok(w.lab.ctl(&["disconnect", &id]), "disconnect");
    let _ = w.lab.exec(&[
        "dbus-send",
        "--system",
        "--print-reply",
        "--dest=net.connman",
        &format!("/net/connman/service/{id}"),
        "net.connman.Service.Remove",
    ]);
    let text = ok(
        w.connect(&id, &["retry", "wrongpass", PASS]),
        "connect with a retry",
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= 4
            && lines[0].starts_with("request Passphrase")
            && lines[1] == "report invalid-key"
            && lines[2] == "request Passphrase,PreviousPassphrase"
            && lines[3].starts_with("connected"),
        "{text}"
    );
    assert!(w.settings(&id).contains(&format!("Passphrase={PASS}")));
}

#[test]
fn a_disconnect_while_the_agent_prompts_cancels_the_prompt_and_the_connect() {
    let psk = bss(PSK_SSID, "02:00:00:00:0b:11", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    let script = lab_script()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("clients/agent_connect.py");
    let agent = Watch::start(
        &w.lab,
        &["/usr/bin/python3", script.to_str().unwrap(), &id, "wait"],
    );
    w.lab
        .wait_for(Duration::from_secs(20), "the agent's prompt", || {
            agent.seen("request Passphrase")
        });
    // The user gives up at the prompt: `connmanctl disconnect` from elsewhere.
    ok(w.lab.ctl(&["disconnect", &id]), "disconnect");
    w.lab.wait_for(
        Duration::from_secs(20),
        "the Connect's reply and Cancel",
        || agent.seen("error ") && agent.seen("cancel"),
    );
    let text = agent.output();
    assert!(
        text.contains("cancel\n") && text.contains("error net.connman.Error.OperationAborted"),
        "{text}"
    );
    let props = w.props(&id);
    assert!(props.contains("State = idle"), "{props}");
    // Nothing reached the radio: the supplicant was never asked to associate.
    let trace = ok(w.lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    assert!(!trace.contains("AddNetwork"), "{trace}");
    assert!(addrs4(&w.lab, "eth0").is_empty());
}

#[test]
fn bad_agent_answers_fail_the_connect_and_store_nothing() {
    let psk = bss(PSK_SSID, "02:00:00:00:0c:01", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    let long = "x".repeat(200);
    for (mode, want) in [
        (vec!["passphrase", "abc"], "InvalidArguments"),
        (vec!["passphrase", long.as_str()], "Failed"),
        (vec!["wrongtype"], "Failed"),
        (vec!["cancel"], "OperationAborted"),
        (vec!["none"], "PassphraseRequired"),
    ] {
        let out = w.connect(&id, &mode);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!out.status.success(), "{mode:?} connected: {text}");
        assert!(text.contains(want), "{mode:?}: want {want}: {text}");
        assert!(!w.settings(&id).contains("Passphrase="), "{mode:?}: stored");
        // Back to idle for the next round (failure → idle).
        let _ = w.lab.exec(&[
            "dbus-send",
            "--system",
            "--print-reply",
            "--dest=net.connman",
            &format!("/net/connman/service/{id}"),
            "net.connman.Service.ClearProperty",
            "string:Error",
        ]);
    }
    assert!(
        !w.lab.daemon_log().contains(&long),
        "a refused passphrase reached the log"
    );
}

#[test]
fn a_supplicant_crash_drops_the_services_and_its_return_reconnects_the_favourite() {
    let psk = bss(PSK_SSID, "02:00:00:00:0d:01", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    ok(w.connect(&id, &["passphrase", PASS]), "connect");
    ok(w.lab.cmd("wpa", &["kill"]), "lab.sh wpa kill");
    w.lab.wait_for(
        Duration::from_secs(15),
        "the services to go with the supplicant",
        || w.service_line(&id).is_none(),
    );
    w.lab
        .wait_for(Duration::from_secs(15), "the radio's address to go", || {
            !addrs4(&w.lab, "eth0")
                .iter()
                .any(|a| a.starts_with("198.18.1."))
        });
    assert!(
        w.lab.daemon_pid().is_some(),
        "pathman died with the supplicant"
    );
    w.start_supplicant(&[&psk]);
    w.lab.wait_for(
        Duration::from_secs(30),
        "the favourite to reconnect",
        || w.ready(&id),
    );
}

#[test]
fn hostile_ssids_and_many_bsses_keep_the_services_consistent() {
    // 32 bytes with NUL, an escape and invalid UTF-8; and an empty (hidden) SSID.
    let hostile = format!(
        r#"{{"ssid_hex":"{}","bssid":"02:00:00:00:0e:01","security":"open","signal":-20}}"#,
        hex(b"a\0b\x1b[31m\xff\xfe-and-more-bytes-to-32!")
    );
    let hidden = r#"{"ssid_hex":"","bssid":"02:00:00:00:0e:02","security":"psk","signal":-30,"hidden":true}"#;
    let loud = r#"{"ssid":"loud","bssid":"02:00:00:00:0e:03","security":"open","signal":32767}"#;
    let w = WifiLab::up(&[&hostile, hidden, loud]);
    // 300 more BSSes of 60 networks, beyond caps::WIFI_MAX_BSS and caps::MAX_SERVICES.
    for i in 0..300 {
        let b = format!(
            r#"{{"ssid":"crowd-{:02}","bssid":"02:00:00:01:{:02x}:{:02x}","security":"open","signal":-{},"now":true}}"#,
            i % 60,
            i / 256,
            i % 256,
            40 + (i % 50)
        );
        ok(w.lab.cmd("wpa", &["ctl", "AddBss", "", &b]), "AddBss crowd");
    }
    let hostile_id = wifi_id(b"a\0b\x1b[31m\xff\xfe-and-more-bytes-to-32!", "none");
    w.lab.wait_for(
        Duration::from_secs(30),
        "the hostile SSID's service",
        || services(&w.lab).iter().any(|(_, _, i)| *i == hostile_id),
    );
    let loud_props = w.props(&wifi_id(b"loud", "none"));
    assert!(loud_props.contains("Strength = 100"), "{loud_props}");
    let all = services(&w.lab);
    assert!(
        all.len() <= 48,
        "more services than caps::MAX_SERVICES: {}",
        all.len()
    );
    let listing = String::from_utf8_lossy(&w.lab.ctl(&["services"]).stdout).into_owned();
    assert!(!listing.contains('\u{1b}'), "an escape reached the listing");
    assert!(w.lab.daemon_pid().is_some(), "pathman died");
    let log = w.lab.daemon_log();
    assert!(!log.contains("panicked"), "{log}");
}

/// pathman's own client as the user's: `pathman ctl` in interactive mode, `agent on`,
/// `connect`, the passphrase typed when the daemon's RequestInput arrives.
#[test]
fn pathman_ctl_agent_answers_the_passphrase_prompt() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    let psk = bss(PSK_SSID, "02:00:00:00:0f:01", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    let mut child = Command::new(lab_script())
        .args(["exec", &w.lab.id, pathman_bin().to_str().unwrap(), "ctl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pathman ctl");
    let out = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let out = out.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.push_str(&line);
                o.push('\n');
            }
        }));
    }
    let mut stdin = child.stdin.take().unwrap();
    let seen = |what: &str| out.lock().unwrap_or_else(|e| e.into_inner()).contains(what);
    let mut send = |line: &str| {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to pathman ctl");
    };
    send("agent on");
    wait_for(Duration::from_secs(10), "Agent registered", || {
        seen("Agent registered")
    });
    send(&format!("connect {id}"));
    wait_for(Duration::from_secs(20), "the daemon's RequestInput", || {
        seen(&format!("Agent RequestInput {id}"))
    });
    send(PASS);
    let text = || out.lock().unwrap_or_else(|e| e.into_inner()).clone();
    w.lab.wait_for(
        Duration::from_secs(30),
        "pathman ctl to print Connected",
        || seen(&format!("Connected {id}")),
    );
    assert!(w.ready(&id), "{}", text());
    send("agent off");
    send("quit");
    drop(stdin);
    let _ = child.wait();
    for r in readers {
        let _ = r.join();
    }
    assert!(
        w.settings(&id).contains(&format!("Passphrase={PASS}")),
        "{}",
        text()
    );
}

#[test]
fn a_favourite_that_fails_to_associate_is_retried_after_a_wait() {
    let psk = bss(PSK_SSID, "02:00:00:00:10:01", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    ok(w.connect(&id, &["passphrase", PASS]), "connect");
    // The AP goes and comes back refusing the next association (status 17: the AP
    // has no room), as a busy AP does.
    let path = w.current_bss();
    assert!(path.contains("/BSSs/"), "no CurrentBSS: {path:?}");
    ok(
        w.lab.cmd("wpa", &["ctl", "RemoveBss", &path]),
        "ctl RemoveBss",
    );
    w.lab
        .wait_for(Duration::from_secs(15), "the service to go", || {
            w.service_line(&id).is_none()
        });
    ok(
        w.lab
            .cmd("wpa", &["ctl", "FailNext", "eth0", "assoc-reject", "17"]),
        "ctl FailNext",
    );
    ok(w.lab.cmd("wpa", &["ctl", "ClearTrace"]), "ctl ClearTrace");
    let back = psk.replacen('{', r#"{"now":true,"#, 1);
    ok(
        w.lab.cmd("wpa", &["ctl", "AddBss", "", &back]),
        "ctl AddBss",
    );
    // The favourite's auto-connect fails with connect-failed (not invalid-key: the
    // passphrase stays) ...
    w.lab.wait_for(
        Duration::from_secs(20),
        "the auto-connect to fail with connect-failed",
        || w.props(&id).contains("Error = connect-failed"),
    );
    assert!(
        w.settings(&id).contains(&format!("Passphrase={PASS}")),
        "a refused association forgot the passphrase"
    );
    let log = w.lab.daemon_log();
    assert!(log.contains("auto-connect again in 10 s"), "{log}");
    let dump = ok(w.lab.ctl(&["state", "--all"]), "ctl state --all");
    assert!(
        dump.contains(&format!("wifi auto-connect retry {id}")),
        "{dump}"
    );
    // ... and after the wait it tries again, on its own, and connects.
    w.lab.wait_for(
        Duration::from_secs(40),
        "the retry to connect the favourite",
        || w.ready(&id),
    );
    let trace = ok(w.lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    let selects = trace
        .matches("call fi.w1.wpa_supplicant1.Interface.SelectNetwork")
        .count();
    assert!(selects >= 2, "one SelectNetwork for two attempts: {trace}");
}

#[test]
fn a_hidden_network_named_by_the_agent_connects_and_gets_dhcp() {
    // A hidden AP whose beacons (empty SSID) the scans catch, as on hwsim.
    let hidden = format!(
        r#"{{"ssid":"pm-hidden","bssid":"02:00:00:00:11:01","security":"psk","passphrase":"{PASS}","signal":-40,"hidden":true,"beacon":true}}"#
    );
    let w = WifiLab::up(&[&hidden]);
    let hidden_id = "wifi_02504d000001_hidden_managed_psk".to_string();
    w.wait_service(&hidden_id);
    let props = w.props(&hidden_id);
    assert!(
        !props.contains("Name ="),
        "a hidden service has no Name: {props}"
    );
    let real = wifi_id(b"pm-hidden", "psk");
    let text = ok(
        w.connect(&hidden_id, &["hidden", "pm-hidden", PASS]),
        "connect hidden",
    );
    assert!(text.contains("request Name,Passphrase,SSID"), "{text}");
    assert!(text.contains("connected"), "{text}");
    w.lab
        .wait_for(Duration::from_secs(30), "the named network ready", || {
            w.ready(&real)
        });
    assert!(
        addrs4(&w.lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1.")),
        "no DHCP address over the radio"
    );
    // The supplicant was asked to probe for the SSID (scan_ssid=1).
    let trace = ok(w.lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    assert!(
        trace
            .lines()
            .any(|l| l.contains("AddNetwork") && l.contains("scan_ssid")),
        "{trace}"
    );
    let settings = w.settings(&real);
    assert!(
        settings.contains(&format!("Passphrase={PASS}")) && settings.contains("Favorite=true"),
        "{settings}"
    );
    let props = w.props(&real);
    assert!(props.contains("Name = pm-hidden"), "{props}");
    // A name the air does not have: the connect fails, nothing is stored for it.
    ok(w.lab.ctl(&["disconnect", &real]), "disconnect");
    let out = w.connect(&hidden_id, &["hidden", "pm-nowhere", PASS]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "a network nobody has connected: {text}"
    );
    assert!(
        !w.settings(&wifi_id(b"pm-nowhere", "psk"))
            .contains("Passphrase="),
        "a failed hidden network's passphrase was stored"
    );
}

#[test]
fn an_interface_removed_under_pathman_is_created_again_and_the_favourite_reconnects() {
    let psk = bss(PSK_SSID, "02:00:00:00:12:01", "psk", -40);
    let w = WifiLab::up(&[&psk]);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    ok(w.connect(&id, &["passphrase", PASS]), "connect");
    // Another client (wpa_cli interface_remove, a second manager) drops pathman's interface.
    let out = ok(
        w.lab.exec(&[
            "busctl",
            "--system",
            "call",
            "fi.w1.wpa_supplicant1",
            "/fi/w1/wpa_supplicant1",
            "fi.w1.wpa_supplicant1",
            "GetInterface",
            "s",
            "eth0",
        ]),
        "GetInterface",
    );
    let old = out
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    ok(
        w.lab.exec(&[
            "busctl",
            "--system",
            "call",
            "fi.w1.wpa_supplicant1",
            "/fi/w1/wpa_supplicant1",
            "fi.w1.wpa_supplicant1",
            "RemoveInterface",
            "o",
            &old,
        ]),
        "RemoveInterface",
    );
    w.lab
        .wait_for(Duration::from_secs(15), "the radio's address to go", || {
            !addrs4(&w.lab, "eth0")
                .iter()
                .any(|a| a.starts_with("198.18.1."))
        });
    // pathman makes it again and the favourite connects with its stored passphrase.
    w.lab.wait_for(
        Duration::from_secs(30),
        "the favourite on a new interface",
        || w.ready(&id),
    );
    let log = w.lab.daemon_log();
    assert!(
        log.contains("wpa_supplicant removed its interface; creating it again in 1 s"),
        "{log}"
    );
    let trace = ok(w.lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    assert!(
        trace.matches("CreateInterface").count() >= 2,
        "no second CreateInterface: {trace}"
    );
}

#[test]
fn a_provisioned_eap_network_connects_by_itself_and_is_immutable() {
    use std::os::unix::fs::PermissionsExt;
    let eap = r#"{"ssid":"corp","bssid":"02:00:00:00:13:01","security":"eap","identity":"alice","passphrase":"eap-s3cret","signal":-40}"#;
    let w = WifiLab::up(&[eap]);
    let id = wifi_id(b"corp", "ieee8021x");
    w.wait_service(&id);
    let props = w.props(&id);
    assert!(props.contains("Immutable = False"), "{props}");
    // Not provisioned: an 802.1X network cannot be connected.
    let out = w.connect(&id, &["none"]);
    assert!(!out.status.success());
    // The administrator drops a provisioning file in: read at once (inotify), the
    // network is a favourite and connects with its credentials.
    let file = w.lab.state_dir().join("corp.config");
    std::fs::write(
        &file,
        "[global]\nName=corp\n\n[service_corp]\nType=wifi\nName=corp\nEAP=peap\nPhase2=MSCHAPV2\nIdentity=alice\nPassphrase=eap-s3cret\nCACertFile=/etc/ssl/certs/ca-certificates.crt\n",
    )
    .expect("write corp.config");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    w.lab.wait_for(
        Duration::from_secs(30),
        "the provisioned network ready",
        || w.ready(&id),
    );
    assert!(
        addrs4(&w.lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1.")),
        "no DHCP address over the radio"
    );
    let props = w.props(&id);
    assert!(props.contains("Immutable = True"), "{props}");
    let trace = ok(w.lab.cmd("wpa", &["ctl", "Trace"]), "ctl Trace");
    let add = trace
        .lines()
        .find(|l| l.contains("AddNetwork") && l.contains("WPA-EAP"))
        .unwrap_or_else(|| panic!("no WPA-EAP AddNetwork: {trace}"));
    for want in [
        "PEAP",
        "alice",
        "auth=MSCHAPV2",
        "/etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(add.contains(want), "{want} not in {add}");
    }
    // Only AutoConnect may change; Remove is refused; the password is nowhere in logs.
    let set = w.lab.exec(&[
        "dbus-send",
        "--system",
        "--print-reply",
        "--dest=net.connman",
        &format!("/net/connman/service/{id}"),
        "net.connman.Service.SetProperty",
        "string:Passphrase",
        "variant:string:another-key",
    ]);
    let text = String::from_utf8_lossy(&set.stderr).into_owned();
    assert!(text.contains("PermissionDenied"), "{text}");
    let auto = w.lab.exec(&[
        "dbus-send",
        "--system",
        "--print-reply",
        "--dest=net.connman",
        &format!("/net/connman/service/{id}"),
        "net.connman.Service.SetProperty",
        "string:AutoConnect",
        "variant:boolean:false",
    ]);
    assert!(auto.status.success(), "{auto:?}");
    let rm = w.lab.exec(&[
        "dbus-send",
        "--system",
        "--print-reply",
        "--dest=net.connman",
        &format!("/net/connman/service/{id}"),
        "net.connman.Service.Remove",
    ]);
    assert!(
        String::from_utf8_lossy(&rm.stderr).contains("NotSupported"),
        "{rm:?}"
    );
    assert!(
        !w.lab.daemon_log().contains("eap-s3cret"),
        "the password reached the log"
    );
    assert!(
        !w.settings(&id).contains("eap-s3cret"),
        "the password was copied to settings"
    );
    let dump = ok(w.lab.ctl(&["state", "--all"]), "ctl state --all");
    assert!(
        dump.contains("provisioned-by corp/corp eap PEAP") && !dump.contains("eap-s3cret"),
        "{dump}"
    );
    // The file goes: the network is no longer provisioned.
    std::fs::remove_file(&file).unwrap();
    w.lab
        .wait_for(Duration::from_secs(10), "Immutable to clear", || {
            w.props(&id).contains("Immutable = False")
        });
}

/// An MPTCP echo server in upstream 1 (killed when dropped).
struct EchoServer(std::process::Child);

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ECHO_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.1.1", 5599)); s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(100)
    if not d:
        break
    c.sendall(d)
"#;

const ECHO_CLIENT: &str = r#"
import os, socket, sys, time
marker = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.settimeout(20)
for _ in range(200):
    try:
        s.connect(("198.18.1.1", 5599)); break
    except OSError:
        time.sleep(0.05)
s.sendall(b"before"); print("echo", s.recv(100).decode(), flush=True)
while not os.path.exists(marker):
    time.sleep(0.02)
s.sendall(b"after"); print("echo", s.recv(100).decode(), flush=True)
"#;

#[test]
fn roaming_keeps_the_address_routes_mptcp_endpoint_and_an_mptcp_connection() {
    let a = bss(PSK_SSID, "02:00:00:00:14:01", "psk", -40);
    // A wired uplink beside the radio: two uplinks, so each has an MPTCP endpoint.
    let w = WifiLab::up_with(&[&a], 2);
    let id = wifi_id(PSK_SSID.as_bytes(), "psk");
    w.wait_service(&id);
    ok(w.connect(&id, &["passphrase", PASS]), "connect");
    w.lab.wait_for(Duration::from_secs(20), "an address", || {
        addrs4(&w.lab, "eth0")
            .iter()
            .any(|a| a.starts_with("198.18.1."))
    });
    // The radio's IPv4 endpoint (IPv6 ones may still arrive by SLAAC meanwhile).
    let endpoints = || {
        w.lab
            .exec_ok(&["ip", "mptcp", "endpoint", "show"])
            .lines()
            .filter(|l| l.starts_with("198.18.1.") && l.contains("dev eth0"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    w.lab.wait_for(
        Duration::from_secs(10),
        "the radio's MPTCP endpoint",
        || !endpoints().is_empty(),
    );
    let routes4 = || {
        routes(&w.lab, "main")
            .into_iter()
            .filter(|r| r.contains("dev eth0"))
            .collect::<Vec<_>>()
    };
    let before = (addrs4(&w.lab, "eth0"), routes4(), endpoints());
    let server = EchoServer(
        std::process::Command::new(lab_script())
            .args([
                "exec-up",
                &w.lab.id,
                "1",
                "/usr/bin/python3",
                "-c",
                ECHO_SERVER,
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the echo server"),
    );
    let marker = w.lab.dir.join("roamed");
    let client = Watch::start(
        &w.lab,
        &[
            "/usr/bin/python3",
            "-c",
            ECHO_CLIENT,
            marker.to_str().unwrap(),
        ],
    );
    wait_for(Duration::from_secs(20), "the first echo", || {
        client.seen("echo before")
    });
    // A second AP of the same network, stronger: the supplicant roams to it.
    let b = bss(PSK_SSID, "02:00:00:00:14:02", "psk", -30).replacen('{', r#"{"now":true,"#, 1);
    let path = ok(w.lab.cmd("wpa", &["ctl", "AddBss", "eth0", &b]), "AddBss");
    let path = path.trim().trim_matches('"').to_string();
    ok(w.lab.cmd("wpa", &["ctl", "Roam", "eth0", &path]), "Roam");
    w.lab.wait_for(
        Duration::from_secs(10),
        "CurrentBSS to be the new AP",
        || w.current_bss() == path,
    );
    std::fs::write(&marker, b"").unwrap();
    wait_for(Duration::from_secs(20), "the echo after roaming", || {
        client.seen("echo after")
    });
    assert!(w.ready(&id), "the service left ready over a roam");
    let after = (addrs4(&w.lab, "eth0"), routes4(), endpoints());
    assert_eq!(
        before, after,
        "a roam changed addresses, routes or the endpoint"
    );
    // It was MPTCP end to end, not a TCP fallback.
    let ns = w.lab.ns("1");
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "nstat",
            "-az",
            "MPTcpExtMPCapableSYNRX",
        ])
        .output()
        .expect("nstat");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let n: u64 = text
        .lines()
        .find(|l| l.starts_with("MPTcpExtMPCapableSYNRX"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(n >= 1, "the server saw no MP_CAPABLE SYN: {text}");
    drop(server);
}

/// A radio whose supplicant says it has no access-point mode cannot be tethered:
/// `tether wifi on` answers NotSupported (ConnMan: EOPNOTSUPP), Tethering stays false
/// and no bridge appears in the kernel.
#[test]
fn wifi_tethering_on_a_radio_without_access_point_mode_is_not_supported() {
    let psk = bss("pm-psk", "02:00:00:00:01:01", "psk", -50);
    let w = WifiLab::up_full(&[&psk], 1, &["--modes", "infrastructure,ad-hoc"]);
    // The interface's GetAll (Capabilities with it) has reached the model once its
    // networks are services.
    w.wait_service(&wifi_id(b"pm-psk", "psk"));
    let out = w
        .lab
        .ctl(&["tether", "wifi", "on", "pm-ap", "correct horse"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Not supported"), "{text}");
    assert!(!text.contains("Enabled tethering"), "{text}");
    let techs = ok(w.lab.ctl(&["technologies"]), "pathman ctl technologies");
    let wifi = techs
        .split("/net/connman/technology/")
        .find(|t| t.starts_with("wifi"))
        .unwrap_or_default()
        .to_string();
    assert!(wifi.contains("Tethering = False"), "{techs}");
    let links = ok(w.lab.exec(&["ip", "-o", "link", "show"]), "ip link");
    assert!(!links.contains(" tether:"), "a bridge was made: {links}");
}
