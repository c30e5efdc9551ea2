//! What the client tests that fake pathman on a bus of their own (no lab, no
//! namespaces) share: the private dbus-daemon, property values built from
//! literals, and an output buffer to read back.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use pathman::ctl::monitor::Sink;
use pathman::dbus::bus;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

/// A private dbus-daemon, killed and cleaned up on drop.
pub struct PrivateBus {
    child: Child,
    dir: PathBuf,
}

impl PrivateBus {
    /// Starts it (test `name` keeps the folders of parallel test binaries apart)
    /// and points `DBUS_SYSTEM_BUS_ADDRESS` of this process at it.
    pub fn start(name: &str) -> PrivateBus {
        PrivateBus::start_with_limits(name, &[])
    }

    /// [`PrivateBus::start`] with dbus-daemon `<limit>`s, e.g.
    /// `("max_match_rules_per_connection", 8)`.
    pub fn start_with_limits(name: &str, limits: &[(&str, u32)]) -> PrivateBus {
        let limits: String = limits
            .iter()
            .map(|(n, v)| format!("  <limit name=\"{n}\">{v}</limit>\n"))
            .collect();
        let dir = std::env::temp_dir().join(format!("pathman-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create bus dir");
        let socket = dir.join("bus_socket");
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
{limits}  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("write bus config");
        let child = Process::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--nosyslog"])
            .stdout(Stdio::null())
            .spawn()
            .expect("dbus-daemon must be installed");
        let guard = PrivateBus { child, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "dbus-daemon did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::env::set_var(
            bus::SYSTEM_BUS_ADDRESS_ENV,
            format!("unix:path={}", socket.display()),
        );
        guard
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A property dictionary (`a{sv}`).
pub type Props = HashMap<String, OwnedValue>;

/// `v` as an owned value.
pub fn ov(v: Value<'_>) -> OwnedValue {
    v.try_to_owned().expect("plain test value")
}

/// A property dictionary from `(key, value)` pairs.
pub fn props(entries: Vec<(&str, Value<'_>)>) -> Props {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ov(v)))
        .collect()
}

/// `p` as an object path.
pub fn opath(p: &str) -> OwnedObjectPath {
    ObjectPath::try_from(p).expect("test path").into()
}

/// The words of a command line, as pathmanctl's `main` and `parse` take them.
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// A `Write` the test can read back while pathmanctl holds it.
#[derive(Clone, Default)]
pub struct Buffer(Rc<RefCell<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    /// A sink writing into this buffer.
    pub fn sink(&self) -> Sink {
        Rc::new(RefCell::new(self.clone()))
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }

    /// Forgets what was written so far.
    #[allow(dead_code)] // not every test binary uses it
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    /// Waits (5 s at most) until `needle` was written; returns all the text.
    pub async fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "never printed {needle:?}; got:\n{text}"
            );
            smol::Timer::after(Duration::from_millis(20)).await;
        }
    }
}
