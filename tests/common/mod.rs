//! Test harness for pathman's integration tests: a thin wrapper around `tests/lab/lab.sh`
//! (network namespaces, dnsmasq upstreams, a private D-Bus system bus, the daemon in a
//! sandbox). std only. Every test that uses it needs root; `require_root_and_tools()`
//! panics (never skips) when something is missing.
//!
//! ```ignore
//! mod common;
//! use common::*;
//! let lab = Lab::up(3, &["--inet"]);
//! lab.start_bus();
//! lab.start_daemon(&[]);
//! wait_for(Duration::from_secs(20), "3 services ready", || ready_services(&lab) == 3);
//! ```
//! Dropping the `Lab` (also while a test panics) tears it down; on a panic its logs and
//! configs are first copied to `target/lab-logs/<id>/`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// State dir of the lab most recently created by this thread (for `wait_for`'s log tail).
    static CURRENT_LAB: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Root of the lab state directories (as lab.sh uses it).
pub const LAB_ROOT: &str = "/tmp/pm-lab";

/// Path of `tests/lab/lab.sh`.
pub fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

/// The pathman binary Cargo built for this test run.
pub fn pathman_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pathman"))
}

fn in_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .any(|d| d.join(tool).is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Panics with a clear message when not root or a tool the lab needs is missing.
/// (A lab test must never silently pass.) `tests/run.sh` installs everything.
pub fn require_root_and_tools() {
    assert!(
        is_root(),
        "the lab tests need root (network namespaces); run them through tests/run.sh or with sudo"
    );
    let tools = [
        "ip",
        "tc",
        "ss",
        "dnsmasq",
        "dbus-daemon",
        "dbus-send",
        "busctl",
        "setpriv",
        "unshare",
        "python3",
        "nft",
    ];
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !in_path(t)).collect();
    assert!(
        missing.is_empty(),
        "tools missing for the lab tests: {} (tests/run.sh installs them: dnsmasq dbus nftables iproute2 util-linux python3 systemd)",
        missing.join(", ")
    );
    assert!(
        lab_script().is_file(),
        "lab script missing: {}",
        lab_script().display()
    );
}

/// Run lab.sh with ARGS; returns its Output (stdin closed).
pub fn lab_sh(args: &[&str]) -> Output {
    Command::new(lab_script())
        .args(args)
        .env("PATHMAN", pathman_bin())
        .env("PM_LAB_OWNER", std::process::id().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", lab_script().display()))
}

/// Run lab.sh and panic (with its output) unless it succeeds; returns stdout.
pub fn lab_sh_ok(args: &[&str]) -> String {
    let out = lab_sh(args);
    assert!(
        out.status.success(),
        "lab.sh {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One lab: namespaces `pm-<id>-dut`, `pm-<id>-up1..n` (and `pm-<id>-inet` with `--inet`).
/// Upstreams are numbered 1..=n; upstream k is on the DUT's interface `ifname(k)`
/// (default `eth{k-1}`), subnet 198.18.k.0/24 (gateway .1), fd18:k::/64.
pub struct Lab {
    pub id: String,
    pub n: usize,
    pub ifnames: Vec<String>,
    /// `/tmp/pm-lab/<id>`
    pub dir: PathBuf,
}

impl Lab {
    /// Build a lab with `n` upstreams. `opts`: lab.sh up options, e.g. `["--inet"]`,
    /// `["--no-ipv6"]`, `["--rate", "20mbit"]`, `["--ifnames", "eth0,usb0"]`, `["--ntp"]`.
    pub fn up(n: usize, opts: &[&str]) -> Lab {
        Lab::up_prefixed("t", n, opts)
    }

    /// [`Lab::up`] with the id `<prefix><pid>x<counter>` (a prefix of a few letters, so
    /// labs of different suites are told apart in `lab.sh list`).
    pub fn up_prefixed(prefix: &str, n: usize, opts: &[&str]) -> Lab {
        require_root_and_tools();
        let id = format!(
            "{prefix}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let ns = n.to_string();
        let mut args = vec!["up", id.as_str(), ns.as_str()];
        args.extend_from_slice(opts);
        lab_sh_ok(&args);
        let dir = PathBuf::from(LAB_ROOT).join(&id);
        let ifnames = std::fs::read_to_string(dir.join("ifnames"))
            .expect("lab ifnames")
            .lines()
            .map(str::to_owned)
            .collect();
        CURRENT_LAB.with(|c| *c.borrow_mut() = Some(dir.clone()));
        Lab {
            id,
            n,
            ifnames,
            dir,
        }
    }

    /// Namespace names: `ns("dut")`, `ns("inet")`, `ns("2")`.
    pub fn ns(&self, which: &str) -> String {
        format!(
            "pm-{}-{}",
            self.id,
            if which.parse::<usize>().is_ok() {
                format!("up{which}")
            } else {
                which.to_owned()
            }
        )
    }

    /// DUT-side interface of upstream k (1-based).
    pub fn ifname(&self, k: usize) -> &str {
        assert!((1..=self.n).contains(&k), "no upstream {k}");
        &self.ifnames[k - 1]
    }

    /// Bus address of the lab's private system bus.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}", self.dir.join("bus.sock").display())
    }

    /// Any lab.sh subcommand for this lab: `lab.cmd("link", &["2", "wan-down"])` runs
    /// `lab.sh link <id> 2 wan-down`.
    pub fn cmd(&self, sub: &str, args: &[&str]) -> Output {
        let mut a = vec![sub, self.id.as_str()];
        a.extend_from_slice(args);
        lab_sh(&a)
    }

    /// Run a command in the DUT namespace (DBUS_SYSTEM_BUS_ADDRESS = lab bus).
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(cmd);
        lab_sh(&args)
    }

    /// `exec`, panicking unless the command succeeds; returns stdout.
    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(cmd);
        lab_sh_ok(&args)
    }

    /// Run a command in upstream k's namespace.
    pub fn exec_up(&self, k: usize, cmd: &[&str]) -> Output {
        let ks = k.to_string();
        let mut args = vec!["exec-up", self.id.as_str(), ks.as_str()];
        args.extend_from_slice(cmd);
        lab_sh(&args)
    }

    /// `pathman ctl ARGS` in the DUT namespace, on the lab bus.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let bin = pathman_bin();
        let mut cmd = vec![bin.to_str().expect("utf-8 path"), "ctl"];
        cmd.extend_from_slice(args);
        self.exec(&cmd)
    }

    pub fn start_bus(&self) {
        lab_sh_ok(&["bus", &self.id, "start"]);
    }

    /// Start pathman (`pathman daemon --state-dir D --run-dir R -i <ifnames> ARGS`) in the
    /// DUT sandbox; a running one is restarted. Does not wait for the bus name.
    pub fn start_daemon(&self, args: &[&str]) {
        let mut a = vec!["daemon", self.id.as_str(), "start"];
        a.extend_from_slice(args);
        lab_sh_ok(&a);
    }

    /// SIGTERM, SIGKILL after 3 s.
    pub fn stop_daemon(&self) {
        lab_sh_ok(&["daemon", &self.id, "stop"]);
    }

    /// SIGKILL (crash tests).
    pub fn kill_daemon(&self) {
        lab_sh_ok(&["daemon", &self.id, "kill"]);
    }

    /// PID of the running daemon, if any.
    pub fn daemon_pid(&self) -> Option<u32> {
        let out = lab_sh(&["daemon", &self.id, "pid"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Wait until `net.connman` (or another name) is owned on the lab bus.
    pub fn wait_name(&self, name: &str, timeout: Duration) {
        let t = timeout.as_secs().max(1).to_string();
        let out = lab_sh(&["wait-name", &self.id, name, &t]);
        assert!(
            out.status.success(),
            "{name} did not appear on the lab bus within {t} s\n--- daemon log ---\n{}",
            log_tail(&self.daemon_log(), 40)
        );
    }

    /// Carrier of upstream k's link as the DUT sees it (the upstream side goes down/up).
    pub fn link(&self, k: usize, up: bool) {
        lab_sh_ok(&[
            "link",
            &self.id,
            &k.to_string(),
            if up { "up" } else { "down" },
        ]);
    }

    /// Stop/start upstream k's DHCP server.
    pub fn dhcp(&self, k: usize, running: bool) {
        lab_sh_ok(&[
            "dhcp",
            &self.id,
            &k.to_string(),
            if running { "start" } else { "stop" },
        ]);
    }

    /// Everything pathman wrote to stderr/stdout (all starts in this lab).
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pathman.log")).unwrap_or_default()
    }

    /// The resolv.conf pathman wrote (default path: `<run-dir>/resolv.conf`).
    pub fn resolv_conf(&self) -> String {
        std::fs::read_to_string(self.run_dir().join("resolv.conf")).unwrap_or_default()
    }

    /// `--state-dir` given to the daemon.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `--run-dir` given to the daemon.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Poll `f` until true; on timeout panic with `what` and this lab's daemon log tail.
    pub fn wait_for(&self, timeout: Duration, what: &str, f: impl FnMut() -> bool) {
        wait_for_in(Some(&self.dir), timeout, what, f)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut args = vec!["down".to_owned(), self.id.clone()];
        if std::thread::panicking() {
            let save = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/lab-logs")
                .join(&self.id);
            eprintln!(
                "lab {}: test failed, logs kept in {}",
                self.id,
                save.display()
            );
            args.push("--save".into());
            args.push(save.display().to_string());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lab_sh(&a);
        if !out.status.success() {
            eprintln!(
                "lab {}: teardown failed: {}",
                self.id,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        CURRENT_LAB.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_deref() == Some(self.dir.as_path()) {
                *c = None;
            }
        });
    }
}

fn log_tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn wait_for_in(dir: Option<&Path>, timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= end {
            let log = dir
                .map(|d| std::fs::read_to_string(d.join("pathman.log")).unwrap_or_default())
                .unwrap_or_default();
            panic!(
                "timed out after {:?} waiting for: {what}\n--- daemon log (tail) ---\n{}",
                timeout,
                log_tail(&log, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `f` (every 50 ms) until it returns true; on timeout panic with `what` and the tail
/// of the daemon log of the lab this thread created last.
pub fn wait_for(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    let dir = CURRENT_LAB.with(|c| c.borrow().clone());
    wait_for_in(dir.as_deref(), timeout, what, f)
}

/// A command running in the DUT namespace whose output lines are collected
/// as they come (`ip monitor`, `connmanctl monitor`, `ip mptcp monitor`);
/// killed when dropped.
pub struct Watch {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Watch {
    /// Starts `cmd` in the DUT (line-buffered).
    pub fn start(lab: &Lab, cmd: &[&str]) -> Watch {
        use std::io::{BufRead, BufReader};
        let mut args = vec!["exec", lab.id.as_str(), "stdbuf", "-oL"];
        args.extend_from_slice(cmd);
        let mut child = Command::new(lab_script())
            .args(&args)
            .env("PATHMAN", pathman_bin())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut o = sink.lock().unwrap_or_else(|e| e.into_inner());
                o.push_str(&line);
                o.push('\n');
            }
        });
        Watch { child, out }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the output so far contains `what`.
    pub fn seen(&self, what: &str) -> bool {
        self.output().contains(what)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- state inspection

fn lines_of(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `ip -4 rule` in the DUT, one rule per line (e.g. `31300:\tfrom 198.18.1.100 lookup 258`).
pub fn rules(lab: &Lab) -> Vec<String> {
    lines_of(&lab.exec(&["ip", "-4", "rule", "show"]))
}

/// `ip -6 rule` in the DUT.
pub fn rules6(lab: &Lab) -> Vec<String> {
    lines_of(&lab.exec(&["ip", "-6", "rule", "show"]))
}

/// `ip -4 route show table T` in the DUT (T: a number, `main`, `all`…); empty if none.
pub fn routes(lab: &Lab, table: &str) -> Vec<String> {
    lines_of(&lab.exec(&["ip", "-4", "route", "show", "table", table]))
}

/// `ip -6 route show table T` in the DUT.
pub fn routes6(lab: &Lab, table: &str) -> Vec<String> {
    lines_of(&lab.exec(&["ip", "-6", "route", "show", "table", table]))
}

/// IPv4 addresses (`a.b.c.d/len`) on DEV in the DUT.
pub fn addrs4(lab: &Lab, dev: &str) -> Vec<String> {
    addrs(lab, "-4", dev)
}

/// Global IPv6 addresses (`x::y/len`) on DEV in the DUT.
pub fn addrs6(lab: &Lab, dev: &str) -> Vec<String> {
    addrs(lab, "-6", dev)
}

fn addrs(lab: &Lab, fam: &str, dev: &str) -> Vec<String> {
    lines_of(&lab.exec(&[
        "ip", "-o", fam, "addr", "show", "dev", dev, "scope", "global",
    ]))
    .iter()
    .filter_map(|l| {
        let mut it = l.split_whitespace();
        it.find(|w| *w == "inet" || *w == "inet6")?;
        it.next().map(str::to_owned)
    })
    .collect()
}

/// Does the DUT see carrier on DEV (`LOWER_UP`)?
pub fn has_carrier(lab: &Lab, dev: &str) -> bool {
    let out = lab.exec(&["ip", "-o", "link", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout).contains("LOWER_UP")
}

/// ifindex of DEV in the DUT (service table of a multipath service = 255 + ifindex).
pub fn ifindex(lab: &Lab, dev: &str) -> u32 {
    let out = lab.exec_ok(&["cat", &format!("/sys/class/net/{dev}/ifindex")]);
    out.trim().parse().expect("ifindex")
}

/// `pathman ctl services` lines parsed as (flags, name, identifier); flags are the first
/// 4 columns (`*AMR`: favorite, autoconnect, multipath, state R/O/…).
pub fn services(lab: &Lab) -> Vec<(String, String, String)> {
    lines_of(&lab.ctl(&["services"]))
        .iter()
        .filter(|l| l.len() > 4)
        .map(|l| {
            let (flags, rest) = l.split_at(4);
            let rest = rest.trim();
            let (name, id) = rest.rsplit_once(char::is_whitespace).unwrap_or(("", rest));
            (flags.to_owned(), name.trim().to_owned(), id.to_owned())
        })
        .collect()
}

/// Number of services in state ready (R) or online (O).
pub fn ready_services(lab: &Lab) -> usize {
    services(lab)
        .iter()
        .filter(|(f, _, _)| matches!(state_flag(f), Some('R' | 'O')))
        .count()
}

/// The state letter of a `services` line's flag columns: pathman's `*AMR` (4th column) or
/// connmanctl's `*AR` (3rd); None when the service has no state letter (idle etc.).
pub fn state_flag(flags: &str) -> Option<char> {
    for c in flags.chars().take(4) {
        match c {
            '*' | 'A' | 'M' | ' ' => continue,
            c if c.is_ascii_uppercase() => return Some(c),
            _ => return None,
        }
    }
    None
}

/// The DUT's main-table IPv4 default route devices, lowest metric first.
pub fn default_devs(lab: &Lab) -> Vec<String> {
    let mut v: Vec<(u32, String)> = routes(lab, "main")
        .iter()
        .filter(|l| l.starts_with("default"))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let dev = w
                .iter()
                .position(|x| *x == "dev")
                .and_then(|i| w.get(i + 1))?;
            let metric = w
                .iter()
                .position(|x| *x == "metric")
                .and_then(|i| w.get(i + 1))
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            Some((metric, (*dev).to_owned()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, d)| d).collect()
}

/// Namespaces whose name starts with `pm-<id>-`.
pub fn lab_namespaces(id: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let prefix = format!("pm-{id}-");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Is PID a live (non-zombie) process?
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

/// The stdout of a command that must succeed; else a panic with its status and output.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
