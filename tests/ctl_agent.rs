//! `pathman ctl` interactive mode as the daemon's agent, against a real pathman in the lab:
//! `agent on` registers (a second agent is refused), the agent object answers RequestInput
//! with what is typed (an empty line cancels), ReportError asks `Retry (yes/no)?`, Cancel
//! interrupts a prompt, malformed calls are refused without harm, `agent off` unregisters,
//! and the daemon's Release on shutdown is reported. Also `agent on` outside interactive mode
//! and `scan`.
//!
//! pathman itself has no WiFi to ask for a passphrase, so the requests come from a dbus-python
//! client (root, as the daemon) calling the ctl's agent object directly on the lab bus.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);
const AGENT_PATH: &str = "/net/pathman/ctl/agent";
const SERVICE: &str = "wifi_02504d000001_4c61624e6574_managed_psk";

/// Finds `pathman ctl` on the bus by its process's command line, then makes one call to its
/// agent (argv[1]) and prints `REPLY …` or `ERROR <name>`.
const CALLER: &str = r#"
import sys, dbus
bus = dbus.SystemBus()
dbi = dbus.Interface(bus.get_object('org.freedesktop.DBus', '/org/freedesktop/DBus'),
                     'org.freedesktop.DBus')
def find_ctl():
    for n in dbi.ListNames():
        if not n.startswith(':'):
            continue
        try:
            pid = int(dbi.GetConnectionUnixProcessID(n))
            argv = open('/proc/%d/cmdline' % pid, 'rb').read().split(b'\0')
        except Exception:
            continue
        if len(argv) > 1 and argv[0].endswith(b'pathman') and argv[1] == b'ctl':
            return n
    sys.exit('no pathman ctl on the bus')
agent = dbus.Interface(bus.get_object(find_ctl(), sys.argv[2], introspect=False),
                       'net.connman.Agent')
svc = dbus.ObjectPath('/net/connman/service/' + sys.argv[3])
step = sys.argv[1]
def field(kind, req):
    return dbus.Dictionary({'Type': kind, 'Requirement': req}, signature='sv')
try:
    if step == 'input':
        r = agent.RequestInput(svc, dbus.Dictionary({'Passphrase': field('psk', 'mandatory')},
                                                    signature='sv'), timeout=60)
        print('REPLY ' + ' '.join('%s=%s' % (k, v) for k, v in sorted(r.items())))
    elif step == 'error':
        agent.ReportError(svc, 'invalid-key', timeout=60)
        print('REPLY')
    elif step == 'cancel':
        agent.Cancel()
        print('REPLY')
    elif step == 'hostile':
        agent.RequestInput(svc, dbus.Array(['Passphrase'], signature='s'))
        print('REPLY')
    elif step in ('huge', 'oversized'):
        n, timeout = (1000, 60) if step == 'huge' else (5000, 2)
        big = dbus.Dictionary({('F%05d' % i): field('string', 'mandatory')
                               for i in range(n)}, signature='sv')
        r = agent.RequestInput(svc, big, timeout=timeout)
        print('REPLY ' + ' '.join('%s=%s' % (k, v) for k, v in sorted(r.items())))
except dbus.DBusException as e:
    print('ERROR ' + e.get_dbus_name())
sys.stdout.flush()
"#;

/// A process in the DUT with piped stdin and its stdout and stderr collected.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn start(lab: &Lab, cmd: &[&str]) -> Proc {
        let mut child = Command::new(lab_script())
            .args(["exec", &lab.id])
            .args(cmd)
            .env("PATHMAN", pathman_bin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
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
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            out,
            readers,
        }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn count(&self, what: &str) -> usize {
        self.output().matches(what).count()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to pathman ctl");
    }

    /// Waits until `what` has been printed `n` times in all.
    fn wait_count(&self, what: &str, n: usize) {
        wait_for(T, &format!("{what:?} x{n} in\n{}", self.output()), || {
            self.count(what) >= n
        });
    }

    /// Closes stdin and waits for the exit; returns success and the output.
    fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        // Everything printed is read once the pipes close.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (ok, self.output())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn caller(lab: &Lab, step: &str) -> Proc {
    Proc::start(
        lab,
        &["/usr/bin/python3", "-c", CALLER, step, AGENT_PATH, SERVICE],
    )
}

/// The one line the caller prints, once it has exited.
fn caller_result(p: Proc) -> String {
    let (ok, out) = p.finish();
    assert!(ok, "python caller failed:\n{out}");
    out.lines()
        .find(|l| l.starts_with("REPLY") || l.starts_with("ERROR"))
        .unwrap_or_else(|| panic!("no result from the caller:\n{out}"))
        .to_owned()
}

/// RegisterAgent from a throwaway dbus-send connection: the error name, or "" on success.
fn register_other_agent(lab: &Lab) -> String {
    let out = lab.exec(&[
        "dbus-send",
        "--system",
        "--print-reply",
        "--dest=net.connman",
        "/",
        "net.connman.Manager.RegisterAgent",
        "objpath:/other/agent",
    ]);
    if out.status.success() {
        String::new()
    } else {
        String::from_utf8_lossy(&out.stderr).trim().to_owned()
    }
}

#[test]
fn interactive_agent_answers_the_daemon() {
    let lab = Lab::up_prefixed("ag", 1, &[]);
    lab.start_bus();
    lab.start_daemon(&[]);
    lab.wait_name("net.connman", T);

    // Outside interactive mode the agent is refused, as by connmanctl.
    let out = lab.ctl(&["agent", "on"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error: Not supported in non-interactive mode"
    );

    // scan: a technology that cannot scan is the daemon's NotSupported, printed with its path.
    let out = lab.ctl(&["scan", "ethernet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Error /net/connman/technology/ethernet: Not supported"),
        "{err}"
    );

    let bin = pathman_bin();
    let mut ctl = Proc::start(&lab, &[bin.to_str().expect("utf-8 path"), "ctl"]);
    ctl.send("agent on");
    ctl.wait_count("Agent registered", 1);
    ctl.send("agent on");
    ctl.wait_count("Agent already registered", 1);
    // The daemon has our agent: a second one is refused.
    let other = register_other_agent(&lab);
    assert!(other.contains("net.connman.Error.AlreadyExists"), "{other}");

    // RequestInput: the header and fields are shown, the typed line (blanks and all) returned.
    let call = caller(&lab, "input");
    ctl.wait_count(&format!("Agent RequestInput {SERVICE}"), 1);
    ctl.wait_count("  Passphrase = [ Requirement=mandatory, Type=psk ]", 1);
    ctl.send("correct horse ");
    assert_eq!(caller_result(call), "REPLY Passphrase=correct horse ");

    // An empty answer cancels.
    let call = caller(&lab, "input");
    ctl.wait_count(&format!("Agent RequestInput {SERVICE}"), 2);
    ctl.send("");
    assert_eq!(
        caller_result(call),
        "ERROR net.connman.Agent.Error.Canceled"
    );

    // ReportError: anything but yes/no asks again; yes is Retry, no a plain return.
    let call = caller(&lab, "error");
    ctl.wait_count(&format!("Agent ReportError {SERVICE}"), 1);
    ctl.wait_count("  invalid-key", 1);
    ctl.send("perhaps");
    ctl.send("yes");
    assert_eq!(caller_result(call), "ERROR net.connman.Agent.Error.Retry");
    let call = caller(&lab, "error");
    ctl.wait_count(&format!("Agent ReportError {SERVICE}"), 2);
    ctl.send("no");
    assert_eq!(caller_result(call), "REPLY");

    // Cancel while the user is at the prompt: the prompt is abandoned, the request Canceled,
    // and the next line is a command again.
    let pending = caller(&lab, "input");
    ctl.wait_count(&format!("Agent RequestInput {SERVICE}"), 3);
    assert_eq!(caller_result(caller(&lab, "cancel")), "REPLY");
    assert_eq!(
        caller_result(pending),
        "ERROR net.connman.Agent.Error.Canceled"
    );
    ctl.wait_count("Agent request cancelled by pathman", 1);

    // Malformed and oversized calls: refused or capped, and the ctl carries on.
    assert_eq!(
        caller_result(caller(&lab, "hostile")),
        "ERROR org.freedesktop.DBus.Error.InvalidArgs"
    );
    // 1000 fields (~70 KiB): only the first are looked at, and nothing known to ask among
    // them, so the answer is empty at once.
    assert_eq!(caller_result(caller(&lab, "huge")), "REPLY ");
    ctl.wait_count("  (968 more fields ignored)", 1);
    // Over the connection's 128 KiB message cap (dbus::bus): dropped unread, never answered.
    assert_eq!(
        caller_result(caller(&lab, "oversized")),
        "ERROR org.freedesktop.DBus.Error.NoReply"
    );
    ctl.send("state");
    ctl.wait_count("  State = ", 1);

    // agent off: the daemon forgets it (registering again would otherwise be AlreadyExists).
    ctl.send("agent off");
    ctl.wait_count("Agent unregistered", 1);
    ctl.send("agent off");
    ctl.wait_count("Agent not registered", 1);
    ctl.send("agent on");
    ctl.wait_count("Agent registered", 2);
    assert_eq!(ctl.count("Error registering Agent"), 0, "{}", ctl.output());

    // Release: the daemon shutting down releases the agent, and the ctl says so.
    lab.stop_daemon();
    ctl.wait_count("Agent unregistered by pathman", 1);

    let (ok, out) = ctl.finish();
    assert!(ok, "pathman ctl failed:\n{out}");
}
