//! What a new user types first: `--help` and friends answer on stdout with exit code 0,
//! unknown arguments are refused (2 for `pathman`, 1 for a client command, as connmanctl),
//! under both names of the multi-call binary. No bus, no root and no lab needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pathman");

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        // No bus: a command that tried to reach one would fail, not hang.
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/pathman-cli-test",
        )
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A directory with `name` as a symlink to the binary (the installed multi-call layout).
fn linked(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("pathman-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(name);
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    (dir, link)
}

#[test]
fn pathman_help_prints_usage_and_succeeds() {
    for flag in ["--help", "-h", "help"] {
        let o = run(Path::new(BIN), &[flag]);
        assert_eq!(o.status.code(), Some(0), "pathman {flag}: {o:?}");
        let out = stdout(&o);
        assert!(
            out.contains("Usage: pathman daemon"),
            "pathman {flag}: {out}"
        );
        assert!(out.contains("pathman ctl"), "pathman {flag}: {out}");
    }
}

#[test]
fn pathman_refuses_unknown_arguments_with_2() {
    for args in [&["--frobnicate"][..], &["frob"], &[]] {
        let o = run(Path::new(BIN), args);
        assert_eq!(o.status.code(), Some(2), "pathman {args:?}: {o:?}");
        assert!(o.stdout.is_empty(), "pathman {args:?} wrote to stdout");
        assert!(String::from_utf8_lossy(&o.stderr).contains("Usage:"));
    }
}

#[test]
fn ctl_help_prints_the_command_list() {
    for flag in ["--help", "-h", "help"] {
        let o = run(Path::new(BIN), &["ctl", flag]);
        assert_eq!(o.status.code(), Some(0), "pathman ctl {flag}: {o:?}");
        let out = stdout(&o);
        assert!(
            out.starts_with("Usage: pathmanctl"),
            "pathman ctl {flag}: {out}"
        );
        for cmd in ["services", "config", "session", "monitor"] {
            assert!(
                out.lines().any(|l| l.starts_with(cmd)),
                "no {cmd} in: {out}"
            );
        }
    }
    let o = run(Path::new(BIN), &["ctl", "frobnicate"]);
    assert_eq!(o.status.code(), Some(1), "unknown ctl command: {o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Unknown command"));
}

#[test]
fn installed_names_answer_help_too() {
    let (dir, ctl) = linked("pathmanctl");
    let o = run(&ctl, &["--help"]);
    assert_eq!(o.status.code(), Some(0), "pathmanctl --help: {o:?}");
    assert!(stdout(&o).starts_with("Usage: pathmanctl"));
    let (dir2, daemon) = linked("pathmand");
    let o = run(&daemon, &["--help"]);
    assert_eq!(o.status.code(), Some(0), "pathmand --help: {o:?}");
    assert!(stdout(&o).contains("--state-dir"), "pathmand --help: {o:?}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(dir2);
}
