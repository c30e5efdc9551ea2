//! The offline, reproducible release (issue 12): cross/release.sh and cross/build.sh.
//!
//! Debian packages needed besides the Rust toolchain (rustup targets
//! x86_64-unknown-linux-musl and aarch64-unknown-linux-musl): git, tar, gzip, coreutils
//! (sha256sum), file, qemu-user-static (qemu-aarch64-static). A missing tool or target
//! fails the test that needs it, with its name; nothing passes by skipping.
//!
//! Cost (2 loaded cores): `tarball_is_reproducible` ~40 s (two `cargo vendor` runs);
//! `offline_tarball_build_matches_repo_build` 4 LTO release builds of ~70-120 s each
//! (the repository's x86_64 and aarch64, often already built by CI's build step, and
//! the same two from the unpacked tarball, offline with an empty CARGO_HOME);
//! `aarch64_binary_runs_under_qemu` reuses the repository's aarch64 build;
//! `small_aarch64_binary_runs_under_qemu` makes cross/build.sh's PATHMAN_SMALL=1 one
//! (std rebuilt, ~150 s; needs the rust-src component, which tests/run.sh adds).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TARGETS: [&str; 2] = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory removed when dropped (also when the test panics).
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        for i in 0..1000u32 {
            let p = base.join(format!("pathman-{tag}-{}-{i}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return TempDir(p);
            }
        }
        panic!("cannot create a temporary directory in {}", base.display());
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn need(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "{tool} is needed for this test but is not on PATH (see the Debian packages at the top of tests/release.rs)");
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{shown}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// cross/release.sh OUT → (tarball path, sha256 it printed).
fn release(out: &Path) -> (PathBuf, String) {
    let o = run(Command::new(repo().join("cross/release.sh")).arg(out));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "release.sh prints the path and the sha256:\n{text}"
    );
    (PathBuf::from(lines[0]), lines[1].to_string())
}

fn sha256(p: &Path) -> String {
    need("sha256sum");
    let o = run(Command::new("sha256sum").arg(p));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// cross/build.sh in DIR for TARGETS → (target, path, sha256) per target.
fn build(dir: &Path, envs: &[(&str, &Path)], flags: &str) -> Vec<(String, PathBuf, String)> {
    let mut cmd = Command::new(dir.join("cross/build.sh"));
    cmd.args(TARGETS)
        .current_dir(dir)
        .env("PATHMAN_BUILD_STRICT", "1")
        .env("PATHMAN_CARGO_FLAGS", flags)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let o = run(&mut cmd);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let rows: Vec<_> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "build.sh line: {l}");
            let path = PathBuf::from(f[1]);
            assert_eq!(sha256(&path), f[3], "build.sh's sha256 of {}", f[1]);
            (f[0].to_string(), path, f[3].to_string())
        })
        .collect();
    assert_eq!(rows.len(), TARGETS.len(), "one line per target:\n{text}");
    rows
}

/// The repository's reproducible release binary for `target` (cross/build.sh, built or reused).
fn repo_binary(target: &str) -> PathBuf {
    let epoch = last_commit_time();
    build(
        &repo(),
        &[("SOURCE_DATE_EPOCH", Path::new(&epoch))],
        "--locked",
    )
    .into_iter()
    .find(|r| r.0 == target)
    .unwrap_or_else(|| panic!("cross/build.sh printed no {target} row"))
    .1
}

fn last_commit_time() -> String {
    let o = run(Command::new("git")
        .args(["log", "-1", "--format=%ct", "HEAD"])
        .current_dir(repo()));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn tarball_is_reproducible() {
    for t in ["git", "tar", "gzip", "cargo"] {
        need(t);
    }
    let a = TempDir::new("rel-a");
    let b = TempDir::new("rel-b");
    let (pa, sa) = release(&a.0);
    let (pb, sb) = release(&b.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        pa.file_name().unwrap().to_string_lossy(),
        format!("pathman-{version}.tar.gz")
    );
    assert_eq!(sa, sha256(&pa), "release.sh printed the tarball's sha256");
    assert_eq!(sa, sb, "the tarball built twice differs");
    assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
    // Its contents: the vendored crates and the config that points at them.
    let o = run(Command::new("tar").arg("-tzvf").arg(&pa));
    let list = String::from_utf8_lossy(&o.stdout);
    let top = format!("pathman-{version}/");
    for want in [
        "Cargo.lock",
        "vendor/",
        ".cargo/config.toml",
        "cross/build.sh",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!("{top}{want}"))),
            "{want} in the tarball"
        );
    }
    assert!(
        list.lines().all(|l| l.contains(" 0/0 ")),
        "owners 0/0:\n{list}"
    );
    let o = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&pa)
        .arg(format!("{top}.cargo/config.toml")));
    let cfg = String::from_utf8_lossy(&o.stdout);
    assert!(
        cfg.contains("replace-with = \"vendored-sources\"")
            && cfg.contains("directory = \"vendor\""),
        "{cfg}"
    );
    assert!(
        cfg.contains("[target.aarch64-unknown-linux-musl]"),
        "the repo's target settings kept:\n{cfg}"
    );
}

#[test]
fn offline_tarball_build_matches_repo_build() {
    for t in ["git", "tar", "gzip", "cargo"] {
        need(t);
    }
    let tmp = TempDir::new("rel-build");
    let (tarball, _) = release(&tmp.0.join("out"));
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tmp.0));
    let src = tmp.0.join(format!("pathman-{}", env!("CARGO_PKG_VERSION")));
    let home = tmp.0.join("cargo-home");
    let target = tmp.0.join("target");
    std::fs::create_dir(&home).unwrap();
    // The repository's build (its own target dir: usually already built).
    let epoch = last_commit_time();
    let ours = build(
        &repo(),
        &[("SOURCE_DATE_EPOCH", Path::new(&epoch))],
        "--locked",
    );
    // The tarball's: no network, nothing from the host's registry cache, another path.
    let theirs = build(
        &src,
        &[
            ("CARGO_HOME", &home),
            ("CARGO_TARGET_DIR", &target),
            ("CARGO_NET_OFFLINE", Path::new("true")),
            ("SOURCE_DATE_EPOCH", Path::new(&epoch)),
        ],
        "--offline --locked",
    );
    for ((t, pa, a), (_, pb, b)) in ours.iter().zip(&theirs) {
        assert!(
            pb.starts_with(&target),
            "{} built in the temp dir",
            pb.display()
        );
        assert_eq!(a, b, "{t}: {} and {} differ", pa.display(), pb.display());
    }
}

#[test]
fn aarch64_binary_runs_under_qemu() {
    need("file");
    let qemu = qemu_aarch64();
    let bin = &repo_binary("aarch64-unknown-linux-musl");
    let o = run(Command::new("file").arg("-b").arg(bin));
    let kind = String::from_utf8_lossy(&o.stdout);
    assert!(kind.contains("ARM aarch64"), "file: {kind}");
    assert!(
        kind.contains("statically linked") || kind.contains("static-pie linked"),
        "file: {kind}"
    );
    runs_under(qemu, bin);
}

/// The x86_64 release binary stays a static PIE (code at a random address) and carries its
/// pointer fix-ups packed (`-z pack-relative-relocs`, DT_RELR): unpacked they were ~98 KB of
/// RELA entries. It still starts (musl's start code applies RELR).
#[test]
fn x86_64_binary_is_a_static_pie_with_packed_relocations() {
    let bin = &repo_binary("x86_64-unknown-linux-musl");
    let elf = std::fs::read(bin).unwrap();
    let (kind, sections) = elf64_sections(&elf);
    assert_eq!(kind, 3, "ET_DYN (a static PIE), not ET_EXEC");
    let size_of = |ty: u32| -> u64 { sections.iter().filter(|s| s.0 == ty).map(|s| s.1).sum() };
    const SHT_RELA: u32 = 4;
    const SHT_RELR: u32 = 19;
    assert!(size_of(SHT_RELR) > 0, "a .relr.dyn section: {sections:?}");
    assert!(
        size_of(SHT_RELA) < 4096,
        "RELA entries left unpacked: {} bytes",
        size_of(SHT_RELA)
    );
    let o = run(Command::new(bin).arg("--version"));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("pathman "));
}

/// An ELF64 little-endian file's type (e_type) and its sections' (sh_type, sh_size).
fn elf64_sections(elf: &[u8]) -> (u16, Vec<(u32, u64)>) {
    assert!(elf.len() > 64 && &elf[..4] == b"\x7fELF" && elf[4] == 2 && elf[5] == 1);
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (shoff, shentsize, shnum) = (u64_at(0x28) as usize, u16_at(0x3a) as usize, u16_at(0x3c));
    let sections = (0..shnum as usize)
        .map(|i| {
            let h = shoff + i * shentsize;
            (u32_at(h + 4), u64_at(h + 0x20))
        })
        .collect();
    (u16_at(0x10), sections)
}

/// The flash-starved boards' build (PATHMAN_SMALL=1: std rebuilt for size, no panic
/// locations, shallow Debug) is a static aarch64 binary that runs and parses its options.
#[test]
fn small_aarch64_binary_runs_under_qemu() {
    need("file");
    let qemu = qemu_aarch64();
    let target = "aarch64-unknown-linux-musl";
    let o = run(Command::new(repo().join("cross/build.sh"))
        .arg(target)
        .current_dir(repo())
        .env("PATHMAN_SMALL", "1")
        .env("PATHMAN_BUILD_STRICT", "1")
        .env("PATHMAN_CARGO_FLAGS", "--locked")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS"));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 4, "build.sh line: {text}");
    let bin = PathBuf::from(f[1]);
    assert!(
        bin.ends_with(format!("small/{target}/release/pathman")),
        "PATHMAN_SMALL=1 builds into TARGET_DIR/small: {}",
        bin.display()
    );
    let o = run(Command::new("file").arg("-b").arg(&bin));
    let kind = String::from_utf8_lossy(&o.stdout);
    assert!(kind.contains("ARM aarch64"), "file: {kind}");
    assert!(kind.contains("statically linked"), "file: {kind}");
    runs_under(qemu, &bin);
    run(Command::new(qemu).arg(&bin).args(["ctl", "--help"]));
}

fn qemu_aarch64() -> &'static str {
    ["qemu-aarch64-static", "qemu-aarch64"]
        .into_iter()
        .find(|q| {
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(q).is_file()))
                .unwrap_or(false)
        })
        .expect("qemu-aarch64-static (Debian qemu-user-static) or qemu-aarch64 is needed")
}

fn runs_under(qemu: &str, bin: &Path) {
    let o = run(Command::new(qemu).arg(bin).arg("--version"));
    let v = String::from_utf8_lossy(&o.stdout);
    assert_eq!(v.trim(), format!("pathman {}", env!("CARGO_PKG_VERSION")));
    run(Command::new(qemu).arg(bin).args(["daemon", "--help"]));
}

/// `.cargo/config.toml`'s target rustflags (plain cargo) and `cross/flags.sh` (build.sh,
/// test.sh: RUSTFLAGS replaces the config's) are two copies of one list; a flag added to
/// one only would make plain `cargo build --target T` and the release artefact differ.
#[test]
fn config_rustflags_match_cross_flags() {
    let config = std::fs::read_to_string(repo().join(".cargo/config.toml")).expect("config");
    for t in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "armv7-unknown-linux-musleabihf",
    ] {
        let header = format!("[target.{t}]");
        let section = config
            .split_once(&header)
            .unwrap_or_else(|| panic!("{header} missing in .cargo/config.toml"))
            .1;
        let line = section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .find(|l| l.starts_with("rustflags"))
            .unwrap_or_else(|| panic!("{header} has no rustflags"));
        // ["-C", "a", "-C", "b"] → -C a -C b
        let in_config: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        let out = run(Command::new("bash").current_dir(repo()).args([
            "-c",
            ". cross/flags.sh && pm_target_rustflags \"$1\"",
            "flags",
            t,
        ]));
        let in_script = String::from_utf8(out.stdout).expect("utf-8");
        assert_eq!(
            in_config,
            in_script.split_whitespace().collect::<Vec<_>>(),
            "{t}: .cargo/config.toml and cross/flags.sh differ"
        );
    }
}
