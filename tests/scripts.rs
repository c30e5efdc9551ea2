//! The project's shell scripts: each one parses, and none that sets `pipefail` pipes into a
//! reader that may stop early (`grep -q`, `head`, `grep -m`). Such a reader closes the pipe
//! while the writer still writes; the writer dies of SIGPIPE (status 141) and `pipefail`
//! makes the whole pipeline fail — by chance, depending on how the writes race the reader.
//! A CI run failed that way once (`busybox | head -1` in tests/vm/vm.sh); this keeps it gone.
//! Use `sed -n 1p` / `grep PATTERN >/dev/null`, which read to the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') || name == ".ci" {
                    walk(&p, out);
                }
            } else if let Ok(text) = fs::read_to_string(&p) {
                let first = text.lines().next().unwrap_or("");
                if name.ends_with(".sh") || first.starts_with("#!") && first.contains("sh") {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in ["tests", ".ci", "cross", "openwrt", "buildroot", "init"] {
        walk(&Path::new(REPO).join(d), &mut out);
    }
    out.sort();
    out
}

/// `| grep -q`, `| grep -qx`, `| grep -m1`, `| head …` outside comments.
fn early_reader(line: &str) -> Option<&'static str> {
    let code = line.split(" #").next().unwrap_or(line);
    if code.trim_start().starts_with('#') {
        return None;
    }
    for part in code.split('|').skip(1) {
        let mut words = part.split_whitespace();
        match words.next() {
            Some("head") => return Some("head"),
            Some("grep") => {
                for w in words.take_while(|w| w.starts_with('-') && !w.starts_with("--")) {
                    if w.contains('q') {
                        return Some("grep -q");
                    }
                    if w.contains('m') {
                        return Some("grep -m");
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[test]
fn every_script_parses() {
    let all = scripts();
    assert!(all.len() > 10, "found only {} scripts", all.len());
    let mut bad = Vec::new();
    for p in &all {
        let text = fs::read_to_string(p).unwrap();
        let shell = if text.starts_with("#!/bin/sh") {
            "sh"
        } else {
            "bash"
        };
        let out = Command::new(shell).arg("-n").arg(p).output().unwrap();
        if !out.status.success() {
            bad.push(format!(
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "scripts that do not parse:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_pipefail_script_pipes_into_a_reader_that_stops_early() {
    let mut bad = Vec::new();
    for p in scripts() {
        let text = fs::read_to_string(&p).unwrap();
        // A sourced library runs under its caller's options: check it as if pipefail were set.
        let pipefail = text.contains("pipefail") || p.to_string_lossy().ends_with("lib.sh");
        if !pipefail {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if let Some(what) = early_reader(line) {
                bad.push(format!(
                    "{}:{}: `{what}`: {}",
                    p.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "pipefail scripts piping into early readers:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    assert_eq!(early_reader("busybox | head -1"), Some("head"));
    assert_eq!(early_reader("x | grep -qx \"$t\""), Some("grep -q"));
    assert_eq!(early_reader("x | grep -m1 foo"), Some("grep -m"));
    assert_eq!(
        early_reader("x | grep -A1 foo | grep -q bar"),
        Some("grep -q")
    );
    assert_eq!(early_reader("x | grep foo >/dev/null"), None);
    assert_eq!(early_reader("x | sed -n 1p"), None);
    assert_eq!(early_reader("grep -m1 foo file"), None);
    assert_eq!(early_reader("  # x | head -1"), None);
}
