//! Packaging: the OpenWrt feed package, the Buildroot BR2_EXTERNAL tree and the init files
//! for plain systems, checked with what runs here (no OpenWrt SDK, no Buildroot, no network):
//! the procd init script under a procd shim, both package makefiles parsed and their
//! install steps run into temp roots with stub infrastructure, the systemd unit through
//! `systemd-analyze verify`, the SysV script against a harmless stand-in daemon, the D-Bus
//! policy parsed. Nothing here touches the host's /etc, /usr, network or clock.
//!
//! Debian packages: make, systemd (systemd-analyze), dpkg (start-stop-daemon), python3
//! (XML parse; libxml2-utils' xmllint is used instead when present).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pathman");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn repo(p: &str) -> PathBuf {
    Path::new(REPO).join(p)
}

fn read(p: &str) -> String {
    fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A fresh temp directory, removed when dropped.
struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("pathman-pkg-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {o:?}");
    o
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `KEY=value` lines of a helper's output.
fn var<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} not printed in:\n{out}"))
}

fn assert_symlink(p: &Path, to: &str) {
    let t = fs::read_link(p).unwrap_or_else(|e| panic!("{}: not a symlink: {e}", p.display()));
    assert_eq!(t, Path::new(to), "{}", p.display());
}

fn assert_same(a: &Path, b: &str) {
    let x = fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
    // "BIN" is the binary under test, wherever cargo's target directory is.
    let want = if b == "BIN" {
        PathBuf::from(BIN)
    } else {
        repo(b)
    };
    assert!(
        x == fs::read(want).unwrap(),
        "{} differs from {b}",
        a.display()
    );
}

#[test]
fn procd_init_starts_one_respawning_instance_after_dbus() {
    let t = Tmp::new("procd");
    let init = "openwrt/pathman/files/pathman.init";
    let script = read(init);
    assert_eq!(script.lines().next(), Some("#!/bin/sh /etc/rc.common"));
    let shim = repo("tests/packaging/procd-shim.sh");
    let log = t.0.join("log");
    let call = |action: &str| {
        let _ = fs::remove_file(&log);
        let o = run(Command::new("sh")
            .arg(&shim)
            .arg(repo(init))
            .arg(action)
            .env("PROCD_LOG", &log));
        (text(&o), fs::read_to_string(&log).unwrap_or_default())
    };

    let (vars, _) = call("vars");
    let start: u32 = vars
        .split_whitespace()
        .find_map(|w| w.strip_prefix("START="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no START: {vars}"));
    assert!(start > 60, "START={start} must be after dbus (60)");
    assert!(vars.contains("USE_PROCD=1"), "{vars}");

    let (_, rec) = call("start");
    let lines: Vec<Vec<&str>> = rec.lines().map(|l| l.split('\t').collect()).collect();
    let opens = lines
        .iter()
        .filter(|l| l[0] == "procd_open_instance")
        .count();
    assert_eq!(opens, 1, "one instance:\n{rec}");
    let close = lines
        .iter()
        .position(|l| l[0] == "procd_close_instance")
        .expect("instance closed");
    let param = |name: &str| -> Vec<&str> {
        let hits: Vec<&Vec<&str>> = lines[..close]
            .iter()
            .filter(|l| l[0] == "procd_set_param" && l[1] == name)
            .collect();
        assert_eq!(hits.len(), 1, "procd_set_param {name} once:\n{rec}");
        hits[0][2..].to_vec()
    };
    assert_eq!(
        param("command"),
        [
            "/usr/sbin/pathmand",
            "-c",
            "/etc/pathman/main.conf",
            "--board",
            "/etc/pathman/board.conf"
        ]
    );
    let respawn = param("respawn");
    assert_eq!(
        respawn.len(),
        3,
        "respawn threshold timeout retry: {respawn:?}"
    );
    assert!(
        respawn.iter().all(|v| v.parse::<u32>().is_ok()),
        "{respawn:?}"
    );
    assert_eq!(param("stdout"), ["1"]);
    assert_eq!(param("stderr"), ["1"]);
    let files = param("file");
    for f in ["/etc/pathman/main.conf", "/etc/pathman/board.conf"] {
        assert!(files.contains(&f), "file trigger on {f}: {files:?}");
    }

    // reload sends the same instance again (procd restarts it only on change).
    let (_, again) = call("reload");
    assert_eq!(again, rec, "reload must send the instance start sends");
}

#[test]
fn openwrt_makefile_sets_package_variables_and_installs_the_layout() {
    let t = Tmp::new("openwrt");
    let o = run(Command::new("sh")
        .arg(repo("tests/packaging/openwrt-make.sh"))
        .arg(REPO)
        .arg(BIN)
        .arg(&t.0));
    let out = text(&o);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(var(&out, "PKG_NAME"), "pathman");
    assert_eq!(
        var(&out, "PKG_VERSION"),
        version,
        "Makefile and Cargo.toml agree"
    );
    assert!(!var(&out, "PKG_RELEASE").is_empty());
    assert_eq!(var(&out, "PKG_SOURCE"), format!("pathman-{version}.tar.gz"));
    assert!(var(&out, "PKG_SOURCE_URL").starts_with("https://"));
    assert!(!var(&out, "PKG_HASH").is_empty());
    assert_eq!(var(&out, "PKG_LICENSE"), "MIT OR Apache-2.0");
    for f in var(&out, "PKG_LICENSE_FILES").split_whitespace() {
        assert!(repo(f).is_file(), "license file {f}");
    }
    assert!(var(&out, "PKG_BUILD_DEPENDS")
        .split_whitespace()
        .any(|d| d == "rust/host"));
    assert_eq!(var(&out, "RUST_PKG_LOCKED"), "1");
    let deps: Vec<&str> = var(&out, "DEPENDS").split_whitespace().collect();
    assert!(deps.contains(&"+dbus"), "{deps:?}");
    assert!(
        deps.contains(&"@(aarch64||arm||x86_64)"),
        "RUST_ARCH_DEPENDS: {deps:?}"
    );
    for inc in ["RULES_MK", "PACKAGE_MK", "RUST_PACKAGE_MK"] {
        assert_eq!(
            var(&out, &format!("{inc}_INCLUDED")),
            "yes",
            "{inc} included"
        );
    }
    assert_eq!(var(&out, "RUST_BIN_PACKAGE"), "pathman");
    assert_eq!(
        var(&out, "CONFFILES"),
        "/etc/pathman/main.conf /etc/pathman/board.conf"
    );

    let root = t.0.join("root");
    assert_same(&root.join("usr/sbin/pathman"), "BIN");
    assert_symlink(&root.join("usr/sbin/pathmand"), "pathman");
    assert_symlink(&root.join("usr/sbin/pathmanctl"), "pathman");
    assert_same(
        &root.join("etc/init.d/pathman"),
        "openwrt/pathman/files/pathman.init",
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(root.join("etc/init.d/pathman"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "init script executable: {mode:o}");
    assert_same(
        &root.join("etc/pathman/main.conf"),
        "openwrt/pathman/files/pathman.conf",
    );
    assert_same(
        &root.join("etc/pathman/board.conf"),
        "board-configs/openwrt-2wan.conf",
    );
    assert_same(
        &root.join("etc/dbus-1/system.d/pathman.conf"),
        "board-configs/dbus/pathman.conf",
    );
}

#[test]
fn openwrt_default_conf_coexists_and_test_sh_checks_the_version() {
    let conf = read("openwrt/pathman/files/pathman.conf");
    let active: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(active.first(), Some(&"[General]"), "{active:?}");
    // TetheringTechnologies empty: pathman never runs its DHCP server beside odhcpd.
    for kv in [
        "ResolvConf=/dev/null",
        "SetClock=false",
        "TetheringTechnologies=",
    ] {
        assert!(active.contains(&kv), "{kv} set: {active:?}");
    }
    assert!(
        conf.contains("#EnableTimeSync=false"),
        "EnableTimeSync documented"
    );
    // Every key set is one pathman reads (documented in main.conf.example), so none is
    // a typo that pathman would only warn about.
    let example = read("board-configs/main.conf.example");
    for l in &active[1..] {
        let key = l.split('=').next().unwrap();
        assert!(
            example.lines().any(|e| e.starts_with(&format!("#{key}="))),
            "{key} is not a main.conf key (board-configs/main.conf.example)"
        );
    }
    let board = read("board-configs/openwrt-2wan.conf");
    assert!(
        board.lines().any(|l| l.trim() == "Manage=wan,wan2"),
        "board restricts Manage"
    );

    // test.sh on a fake target PATH: passes with our version, fails with another.
    let t = Tmp::new("testsh");
    std::os::unix::fs::symlink(BIN, t.0.join("pathman")).unwrap();
    std::os::unix::fs::symlink(BIN, t.0.join("pathmanctl")).unwrap();
    let path = format!("{}:/usr/bin:/bin", t.0.display());
    let test_sh = |v: &str| {
        Command::new("sh")
            .arg(repo("openwrt/pathman/test.sh"))
            .args(["pathman", v])
            .env("PATH", &path)
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                "unix:path=/nonexistent/pathman-pkg",
            )
            .output()
            .unwrap()
            .status
            .success()
    };
    let v = format!("{}-r1", env!("CARGO_PKG_VERSION"));
    assert!(test_sh(&v), "test.sh pathman {v}");
    assert!(!test_sh("9.9.9-r1"), "test.sh must fail on a wrong version");
}

#[test]
fn buildroot_mk_sets_variables_and_installs_the_layout() {
    let t = Tmp::new("buildroot");
    let o = run(Command::new("sh")
        .arg(repo("tests/packaging/buildroot-make.sh"))
        .arg(REPO)
        .arg(BIN)
        .arg(&t.0));
    let out = text(&o);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        var(&out, "PATHMAN_VERSION"),
        version,
        "pathman.mk and Cargo.toml agree"
    );
    assert!(var(&out, "PATHMAN_SITE").starts_with("https://"));
    assert_eq!(
        var(&out, "PATHMAN_SOURCE"),
        format!("pathman-{version}.tar.gz")
    );
    assert_eq!(var(&out, "PATHMAN_LICENSE"), "MIT or Apache-2.0");
    let lic = var(&out, "PATHMAN_LICENSE_FILES");
    let hash = read("buildroot/package/pathman/pathman.hash");
    for f in lic.split_whitespace() {
        let sum = run(Command::new("sha256sum").arg(repo(f)));
        let sum = text(&sum);
        let sum = sum.split_whitespace().next().unwrap();
        assert!(
            hash.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["sha256", sum, f]),
            "pathman.hash has the sha256 of {f} ({sum})"
        );
    }
    assert!(var(&out, "PATHMAN_DEPENDENCIES")
        .split_whitespace()
        .any(|d| d == "dbus"));
    assert_eq!(
        var(&out, "CARGO_PACKAGE_CALLED"),
        "yes",
        "$(eval $(cargo-package))"
    );

    let root = t.0.join("root");
    assert_same(&root.join("usr/sbin/pathman"), "BIN");
    assert!(!root.join("usr/bin/pathman").exists(), "moved to /usr/sbin");
    assert_symlink(&root.join("usr/sbin/pathmand"), "pathman");
    assert_symlink(&root.join("usr/sbin/pathmanctl"), "pathman");
    assert_same(&root.join("etc/init.d/S45pathman"), "init/pathman.sysv");
    assert_same(
        &root.join("usr/lib/systemd/system/pathman.service"),
        "init/pathman.service",
    );
    assert_same(
        &root.join("usr/share/dbus-1/system.d/pathman.conf"),
        "board-configs/dbus/pathman.conf",
    );
    assert!(root.join("etc/pathman/main.conf").is_file());
}

#[test]
fn buildroot_config_in_selects_dbus_and_rustc_and_allows_musl_and_static() {
    let c = read("buildroot/package/pathman/Config.in");
    let lines: Vec<&str> = c
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert!(lines.contains(&"config BR2_PACKAGE_PATHMAN"));
    assert!(lines.contains(&"depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS"));
    assert!(lines.contains(&"select BR2_PACKAGE_HOST_RUSTC"));
    assert!(lines.contains(&"select BR2_PACKAGE_DBUS"));
    for bad in [
        "BR2_TOOLCHAIN_USES_MUSL",
        "BR2_STATIC_LIBS",
        "BR2_TOOLCHAIN_USES_GLIBC",
    ] {
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("depends on") && l.contains(bad)),
            "Config.in must not depend on {bad}"
        );
    }
    let top = read("buildroot/Config.in");
    assert!(top.contains("$BR2_EXTERNAL_PATHMAN_PATH/package/pathman/Config.in"));
    let desc = read("buildroot/external.desc");
    assert!(desc.lines().any(|l| l.trim() == "name: PATHMAN"), "{desc}");
}

#[test]
fn init_files_are_the_same_in_buildroot_and_init() {
    assert_eq!(
        read("buildroot/package/pathman/S45pathman"),
        read("init/pathman.sysv")
    );
    assert_eq!(
        read("buildroot/package/pathman/pathman.service"),
        read("init/pathman.service")
    );
}

#[test]
fn systemd_unit_verifies_and_keeps_only_the_needed_capabilities() {
    let unit = read("init/pathman.service");
    let keys: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| -> Vec<&str> {
        keys.iter()
            .filter(|(a, _)| *a == k)
            .map(|(_, v)| *v)
            .collect()
    };
    assert_eq!(get("Type"), ["dbus"]);
    assert_eq!(get("BusName"), ["net.connman"]);
    assert_eq!(get("Restart"), ["on-failure"]);
    assert!(get("ExecStart")[0].starts_with("/usr/sbin/pathmand"));
    let mut caps: Vec<&str> = get("CapabilityBoundingSet")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    caps.sort();
    assert_eq!(
        caps,
        [
            "CAP_NET_ADMIN",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SYS_TIME"
        ]
    );
    assert!(
        get("AmbientCapabilities").is_empty(),
        "root needs no ambient set"
    );
    assert!(get("After").iter().any(|v| v.contains("dbus.service")));
    assert!(get("Wants").iter().any(|v| v.contains("dbus.service")));
    assert_eq!(get("StateDirectory"), ["pathman"]);
    assert_eq!(get("RuntimeDirectory"), ["pathman"]);
    // Netlink and packet sockets must stay allowed.
    let fams = get("RestrictAddressFamilies").join(" ");
    for f in ["AF_NETLINK", "AF_PACKET", "AF_INET", "AF_UNIX"] {
        assert!(fams.split_whitespace().any(|x| x == f), "{f} in {fams}");
    }

    // systemd-analyze verify needs ExecStart's binary: point it at the build.
    let t = Tmp::new("systemd");
    let copy = t.0.join("pathman.service");
    fs::write(&copy, unit.replace("/usr/sbin/pathmand", BIN)).unwrap();
    let verify = |p: &Path| {
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(p)
            .output()
            .expect("systemd-analyze (Debian package systemd)")
    };
    let o = verify(&copy);
    let err = String::from_utf8_lossy(&o.stderr);
    // Other units of the host (e.g. an installed connman.service) may be reported; none of
    // the lines may be about ours.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("pathman")).collect();
    assert!(o.status.success() && ours.is_empty(), "verify: {o:?}");
    // The check can fail: a missing binary is refused.
    fs::write(
        &copy,
        unit.replace("/usr/sbin/pathmand", "/nonexistent/pathmand"),
    )
    .unwrap();
    assert!(
        !verify(&copy).status.success(),
        "verify accepts a missing binary"
    );
}

/// Kills the stand-in daemon if a test fails before `stop`.
struct KillPidfile(PathBuf);
impl Drop for KillPidfile {
    fn drop(&mut self) {
        if let Ok(p) = fs::read_to_string(&self.0) {
            if let Ok(pid) = p.trim().parse::<i32>() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sysv_script_starts_reports_and_stops_a_stand_in_daemon() {
    let script = repo("init/pathman.sysv");
    run(Command::new("sh").arg("-n").arg(&script));
    let s = read("init/pathman.sysv");
    assert!(s.contains("### BEGIN INIT INFO") && s.contains("# Provides:          pathman"));
    assert!(s.contains("start-stop-daemon -S -q -m -b -p \"$PIDFILE\" -x \"$DAEMON\""));

    // The stand-in records its arguments and sleeps: no pathman is started, nothing of the
    // host is touched (pid file, defaults and daemon all live in the temp directory).
    let t = Tmp::new("sysv");
    let d = &t.0;
    let daemon = d.join("pathmand");
    fs::write(
        &daemon,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}/args.tmp && mv {0}/args.tmp {0}/args\nexec sleep 600\n",
            d.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&daemon, fs::Permissions::from_mode(0o755)).unwrap();
    let pidfile = d.join("pathman.pid");
    let defaults = d.join("default");
    fs::write(
        &defaults,
        format!(
            "DAEMON={}\nPIDFILE={}\nPATHMAN_ARGS=\"-c {2}/main.conf --board {2}/board.conf\"\n",
            daemon.display(),
            pidfile.display(),
            d.display()
        ),
    )
    .unwrap();
    let _guard = KillPidfile(pidfile.clone());
    let init = |action: &str| {
        Command::new("sh")
            .arg(&script)
            .arg(action)
            .env("PATHMAN_DEFAULTS", &defaults)
            .output()
            .unwrap()
    };

    assert_eq!(init("status").status.code(), Some(3), "not running yet");
    let o = init("start");
    assert!(o.status.success(), "start: {o:?}");
    wait_for("the stand-in's arguments", || d.join("args").exists());
    let args = fs::read_to_string(d.join("args")).unwrap();
    let want = format!("-c\n{0}/main.conf\n--board\n{0}/board.conf\n", d.display());
    assert_eq!(args, want);
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"sleep\0"),
        "pid file names the stand-in"
    );
    let o = init("status");
    assert_eq!(o.status.code(), Some(0), "status: {o:?}");
    assert!(text(&o).contains(&format!("pid {pid}")));
    // A second start does not start a second daemon.
    assert!(init("start").status.success());
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );

    let o = init("stop");
    assert!(o.status.success(), "stop: {o:?}");
    assert!(
        unsafe { libc::kill(pid, 0) } != 0,
        "stand-in {pid} still runs after stop"
    );
    assert!(!pidfile.exists(), "pid file removed");
    assert_eq!(init("status").status.code(), Some(3));
    assert!(!init("frobnicate").status.success());
}

#[test]
fn dbus_policy_parses_and_lets_only_root_own_net_connman() {
    let policy = repo("board-configs/dbus/pathman.conf");
    let o = if Command::new("xmllint").arg("--version").output().is_ok() {
        Command::new("xmllint")
            .args(["--noout", "--nonet"])
            .arg(&policy)
            .output()
            .unwrap()
    } else {
        Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E\n\
                 r = E.parse(sys.argv[1]).getroot()\n\
                 assert r.tag == 'busconfig', r.tag\n\
                 for p in r.iter('policy'):\n\
                 \x20   for a in p.iter('allow'):\n\
                 \x20       if 'own' in a.attrib: print(p.attrib, a.attrib['own'])",
            ])
            .arg(&policy)
            .output()
            .unwrap()
    };
    assert!(o.status.success(), "policy does not parse: {o:?}");
    let xml = read("board-configs/dbus/pathman.conf");
    assert_eq!(xml.matches("<allow own=").count(), 1, "one owner rule");
    let root = xml.find("<policy user=\"root\">").expect("root policy");
    let own = xml.find("<allow own=\"net.connman\"/>").unwrap();
    let end = xml[root..].find("</policy>").unwrap() + root;
    assert!(root < own && own < end, "the owner rule is root's");
}
