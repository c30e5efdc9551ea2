//! The fake oFono (tests/lab/fake_ofono.py) against the REAL one (Debian's ofonod 1.31 with
//! the phonesim plugin and tests/lab/at_modem.py): the project allows a stand-in only if it
//! is checked against the real daemon, so the two cannot drift apart. One lab, one daemon on
//! its bus at a time: tests/lab/ofono_trace.py drives each through the same call sequence
//! (GetModems; Powered, then Online, recording every PropertyChanged; GetProperties of each
//! interface; GetContexts; error cases; AccessPointName, Active true / false; Online false
//! with an active context; Online again; Powered false) and prints a NORMALISED trace: order
//! of replies and signals, property key sets, value signatures, chosen values, error names.
//! Timings and object path names are not compared; what the tracer normalises away, and
//! why, is in its docstring and comments. The fake runs with knobs that match the AT modem's
//! defaults. Needs root, ofonod and the fake; never skips.
mod common;

use common::*;

/// The fake's knobs for the AT modem's defaults (tests/lab/at_modem.py): IMSI
/// 001010123456789 (the fake's default too; MCC 001, MNC 01 from it), operator CellSpike,
/// Strength 77 (--csq 24), ConnectionManager only while online (phonesim creates its gprs
/// atom in post_online), Bearer none (the AT modem reports no +CPSB bearer), no APN
/// (no provisioning), Settings {Interface dummy0, Method dhcp} (phonesim's context driver).
const FAKE_KNOBS: &str = r#"{"name":"fake_0","operator":"CellSpike","strength":77,"cm_stage":"online","bearer":"none","apn":"","interface":"dummy0","method":"dhcp"}"#;

/// Run the tracer against whatever owns org.ofono now; its normalised lines.
fn trace(lab: &Lab, who: &str) -> Vec<String> {
    let tracer = format!("{}/tests/lab/ofono_trace.py", env!("CARGO_MANIFEST_DIR"));
    let out = lab.exec(&["/usr/bin/python3", &tracer, "run", "--timeout", "20"]);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success(),
        "{who}: the trace did not complete ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        lines.join("\n")
    );
    lines
}

/// A unified-ish diff (the first differing region with context) for the failure message.
fn diff(real: &[String], fake: &[String]) -> String {
    let first = real
        .iter()
        .zip(fake)
        .position(|(r, f)| r != f)
        .unwrap_or(real.len().min(fake.len()));
    let from = first.saturating_sub(8);
    let show = |v: &[String]| {
        v.iter()
            .enumerate()
            .skip(from)
            .take(30)
            .map(|(i, l)| format!("{i:4} {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {first}\n--- real ofonod ---\n{}\n--- fake ---\n{}",
        show(real),
        show(fake)
    )
}

#[test]
fn fake_ofono_traces_like_real_ofonod() {
    let lab = Lab::up_prefixed("oc", 1, &["--ifnames", "dummy0", "--no-ipv6"]);
    lab.start_bus();

    ok(lab.cmd("ofono", &["start"]), "lab.sh ofono start");
    let real = trace(&lab, "real ofonod");
    ok(lab.cmd("ofono", &["stop"]), "lab.sh ofono stop");

    ok(
        lab.cmd("fakeofono", &["start", "--modem", FAKE_KNOBS]),
        "lab.sh fakeofono start",
    );
    let fake = trace(&lab, "fake");
    ok(lab.cmd("fakeofono", &["stop"]), "lab.sh fakeofono stop");

    // the sequence must have got through its interesting parts on the real one, or the
    // comparison says little
    for want in [
        "value org.ofono.ConnectionContext Settings {Interface:s,Method:s} Interface=dummy0 Method=dhcp",
        "error org.ofono.ConnectionContext.SetProperty org.ofono.Error.NotAttached",
        "signal org.ofono.ConnectionManager.PropertyChanged MODEM0 Attached true",
        "wait cm-gone ok",
        "wait no-interfaces ok",
    ] {
        assert!(
            real.iter().any(|l| l == want),
            "real ofonod's trace lacks {want:?}:\n{}",
            real.join("\n")
        );
    }
    assert!(
        real == fake,
        "the fake oFono differs from the real ofonod: {}",
        diff(&real, &fake)
    );
}

/// The tracer's normalisation of the Interfaces stream (a loaded machine's ofonod merges
/// changes a quiet one makes one by one) on the two traces it must make equal.
#[test]
fn the_tracer_keeps_the_turns_of_the_interfaces_stream() {
    let tracer = format!("{}/tests/lab/ofono_trace.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("/usr/bin/python3")
        .args([&tracer, "selftest"])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
