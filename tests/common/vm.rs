//! Harness of the VM test tier (`tests/vm/vm.sh`): a QEMU guest that boots Debian's stock
//! kernel (cfg80211, `mac80211_hwsim`, the USB gadget and netem as modules) with the host's root
//! shared read-only, so a guest script runs the host's hostapd, wpa_supplicant, dnsmasq and this
//! build's pathman at their host paths. std only; needs root.
//!
//! ```ignore
//! #[path = "common/vm.rs"]
//! mod vm;
//! let run = vm::Vm::get().run("roam", &vm::guest_script("roam.sh"), &[vm::pathman_bin().to_str().unwrap()]);
//! run.assert_exit(0);
//! assert_eq!(run.value("result").as_deref(), Some("pass"));
//! ```
//! The guest cache is built once per test process (`vm.sh build`, quick when it exists). Each
//! run gets a fresh out dir `target/vm-runs/<name>-<pid>x<n>/` (the guest's only writable host
//! folder: `result.txt`, `logs/`, `console.log`), removed when the run is dropped, kept (with
//! the console and log tails printed) when the test panics.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Default limit of one guest run (boot ~6 s, the WiFi smoke test ~20-40 s under TCG).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/vm/vm.sh`.
pub fn vm_script() -> PathBuf {
    repo().join("tests/vm/vm.sh")
}

/// A guest script in `tests/vm/` (e.g. `smoke.sh`).
pub fn guest_script(name: &str) -> PathBuf {
    repo().join("tests/vm").join(name)
}

/// The pathman binary Cargo built for this test run (the guest sees it at the same path).
pub fn pathman_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pathman"))
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

fn in_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .any(|d| d.join(tool).is_file())
}

/// Panics with a clear message when the tier cannot run here (never skips).
pub fn require_vm_tools() {
    assert!(
        is_root(),
        "the VM tier needs root (it boots a QEMU guest); run it through tests/run.sh or with sudo"
    );
    let tools = [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "gzip",
        "modprobe",
        "depmod",
        "apt-get",
        "dpkg-deb",
        "hostapd",
        "hostapd_cli",
        "wpa_supplicant",
        "iw",
        "dnsmasq",
        "dbus-daemon",
        "dbus-send",
        "ip",
        "flock",
        "timeout",
    ];
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !in_path(t)).collect();
    assert!(
        missing.is_empty(),
        "the VM tier cannot boot a guest: tools missing: {} (tests/lab/install-deps.sh installs them: \
         qemu-system-x86 busybox-static kmod cpio hostapd wpasupplicant iw wireless-regdb dnsmasq dbus)",
        missing.join(", ")
    );
    assert!(
        Path::new("/usr/bin/python3").is_file(),
        "the VM tier needs /usr/bin/python3 with python3-dbus"
    );
}

/// The built guest (kernel + initramfs cached in `target/vm/`).
pub struct Vm {
    /// Kernel version of the guest, e.g. `6.1.0-57-amd64`.
    pub kver: String,
    /// How long `vm.sh build` took in this process.
    pub build_time: Duration,
}

static VM: OnceLock<Vm> = OnceLock::new();

impl Vm {
    /// Builds the guest once per process (`vm.sh build`); panics with its output on failure.
    pub fn get() -> &'static Vm {
        VM.get_or_init(|| {
            require_vm_tools();
            let t = Instant::now();
            let out = Command::new(vm_script())
                .arg("build")
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", vm_script().display()));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr
                .lines()
                .rfind(|l| l.starts_with("vm.sh:"))
                .unwrap_or("no message");
            assert!(
                out.status.success(),
                "the VM tier cannot boot a guest: vm.sh build failed: {why} ({})\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                stderr
            );
            let info = Command::new(vm_script())
                .arg("info")
                .output()
                .expect("vm.sh info");
            let kver = String::from_utf8_lossy(&info.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("kver=").map(str::to_owned))
                .unwrap_or_default();
            Vm {
                kver,
                build_time: t.elapsed(),
            }
        })
    }

    /// Runs `script ARGS` in a fresh guest (limit [`DEFAULT_TIMEOUT`]) and waits for it.
    pub fn run(&self, name: &str, script: &Path, args: &[&str]) -> VmRun {
        self.run_timeout(name, script, args, DEFAULT_TIMEOUT)
    }

    /// [`Vm::run`] with a limit of its own; vm.sh kills the guest after it (exit 124).
    pub fn run_timeout(
        &self,
        name: &str,
        script: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> VmRun {
        let out = repo().join("target/vm-runs").join(format!(
            "{name}-{}x{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
        let t = Instant::now();
        let secs = timeout.as_secs().max(1).to_string();
        let o = Command::new(vm_script())
            .args(["run", "--timeout", secs.as_str()])
            .arg(&out)
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", vm_script().display()));
        VmRun {
            name: name.to_owned(),
            out,
            code: o.status.code(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            wall: t.elapsed(),
        }
    }
}

/// One finished guest run.
pub struct VmRun {
    pub name: String,
    /// The out dir (the guest's `$VM_OUT`).
    pub out: PathBuf,
    /// vm.sh's exit code: the guest script's, 124 on timeout, 1 when the guest could not boot.
    pub code: Option<i32>,
    /// What vm.sh printed (the serial console and its own messages).
    pub output: String,
    /// Wall time of `vm.sh run` (boot + script + power off).
    pub wall: Duration,
}

impl VmRun {
    /// A file of the out dir ("" when missing).
    pub fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.out.join(rel)).unwrap_or_default()
    }

    /// `result.txt` as key -> every value of that key, in order.
    pub fn results(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in self.file("result.txt").lines() {
            if let Some((k, v)) = line.split_once('=') {
                m.entry(k.to_owned()).or_default().push(v.to_owned());
            }
        }
        m
    }

    /// The last value of `key` in `result.txt`.
    pub fn value(&self, key: &str) -> Option<String> {
        self.results().get(key).and_then(|v| v.last().cloned())
    }

    /// Like [`VmRun::value`], panicking (with the guest's logs) when the key is missing.
    pub fn get(&self, key: &str) -> String {
        self.value(key).unwrap_or_else(|| {
            panic!(
                "guest run {}: no {key}= in result.txt:\n{}",
                self.name,
                self.file("result.txt")
            )
        })
    }

    /// Panics unless vm.sh exited with `code` (why is in the message: a timeout, a guest that
    /// did not boot, the script's failure; the console tail and logs are printed on drop).
    pub fn assert_exit(&self, code: i32) {
        if self.code == Some(code) {
            return;
        }
        let why = match self.code {
            Some(124) => "the guest timed out".to_owned(),
            Some(c) => format!("vm.sh exited {c}"),
            None => "vm.sh was killed by a signal".to_owned(),
        };
        let msgs: Vec<&str> = self
            .output
            .lines()
            .filter(|l| l.starts_with("vm.sh:") || l.contains("FAILED") || l.contains("vm-init:"))
            .collect();
        panic!(
            "guest run {} ({}): {why}, want exit {code}\n{}\nresult.txt:\n{}",
            self.name,
            self.out.display(),
            msgs.join("\n"),
            self.file("result.txt")
        );
    }

    /// Prints the console tail and the tail of every log the guest wrote (to stderr).
    pub fn dump(&self) {
        eprintln!(
            "--- guest run {}: out dir kept in {} ---",
            self.name,
            self.out.display()
        );
        eprintln!(
            "--- console.log (tail) ---\n{}",
            tail(&self.file("console.log"), 60)
        );
        if let Ok(rd) = std::fs::read_dir(self.out.join("logs")) {
            let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                eprintln!(
                    "--- {} (tail) ---\n{}",
                    f.file_name().unwrap_or_default().to_string_lossy(),
                    tail(&text, 25)
                );
            }
        }
    }
}

impl Drop for VmRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        } else {
            let _ = std::fs::remove_dir_all(&self.out);
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
