//! A private dbus-daemon for the client tests that fake pathman on a bus of
//! their own (no lab, no namespaces).

use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use pathman::dbus::bus;

/// A private dbus-daemon, killed and cleaned up on drop.
pub struct PrivateBus {
    child: Child,
    dir: PathBuf,
}

impl PrivateBus {
    /// Starts it (test `name` keeps the folders of parallel test binaries apart)
    /// and points `DBUS_SYSTEM_BUS_ADDRESS` of this process at it.
    pub fn start(name: &str) -> PrivateBus {
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
  <policy context="default">
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
