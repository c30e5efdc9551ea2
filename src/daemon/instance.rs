//! One pathman per network namespace: two daemons managing the same kernel
//! objects would undo each other (the second would delete the first's MPTCP
//! endpoints and routes). The guard is an abstract unix socket, which the
//! kernel scopes to the network namespace and releases when the process dies
//! however it dies, so a crashed daemon never blocks the next one. Also
//! creates the run directory and writes the pid file into it.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Name of the abstract socket that marks "a pathman runs in this namespace".
const GUARD_NAME: &[u8] = b"pathman-daemon";

/// Held for the life of the daemon.
pub struct Instance {
    _guard: UnixListener,
    pid_file: Option<PathBuf>,
}

/// Why the daemon cannot start.
#[derive(Debug)]
pub enum InstanceError {
    /// Another pathman runs in this network namespace.
    Running { pid: Option<String> },
    /// The guard or the run directory could not be made.
    Io(String),
}

impl std::fmt::Display for InstanceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstanceError::Running { pid: Some(pid) } => write!(
                f,
                "another pathman (pid {pid}) is running in this network namespace; stop it first"
            ),
            InstanceError::Running { pid: None } => write!(
                f,
                "another pathman is running in this network namespace; stop it first"
            ),
            InstanceError::Io(why) => f.write_str(why),
        }
    }
}

impl Instance {
    /// Claims the namespace and prepares `run_dir` (created with mode 0755
    /// when missing) with `pathman.pid` in it.
    pub fn claim(run_dir: &Path) -> Result<Instance, InstanceError> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(GUARD_NAME)
            .map_err(|e| InstanceError::Io(format!("instance guard: {e}")))?;
        let started = std::time::Instant::now();
        let mut said = false;
        let guard = loop {
            match UnixListener::bind_addr(&addr) {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    let pid = std::fs::read_to_string(run_dir.join("pathman.pid"))
                        .ok()
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty());
                    // A pathman that was killed holds the guard until its last
                    // thread has closed its sockets (packet sockets wait for an
                    // RCU grace period each): an init system restarting it at
                    // once waits for that, not for a live one.
                    let exiting = pid.as_deref().is_some_and(|p| !running(p));
                    if !exiting || started.elapsed() >= EXIT_WAIT {
                        return Err(InstanceError::Running { pid });
                    }
                    if !said {
                        log::info!(
                            "waiting for the previous pathman (pid {}) to finish exiting",
                            pid.as_deref().unwrap_or("?")
                        );
                        said = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(InstanceError::Io(format!("instance guard: {e}"))),
            }
        };
        let pid_file = match prepare_run_dir(run_dir) {
            Ok(()) => {
                let f = run_dir.join("pathman.pid");
                match std::fs::write(&f, format!("{}\n", std::process::id())) {
                    Ok(()) => Some(f),
                    Err(e) => {
                        log::warn!("{}: {e}", f.display());
                        None
                    }
                }
            }
            Err(e) => {
                log::warn!(
                    "run directory {}: {e}; resolv.conf and lease files cannot be written",
                    run_dir.display()
                );
                None
            }
        };
        Ok(Instance {
            _guard: guard,
            pid_file,
        })
    }
}

/// How long a start waits for a killed predecessor to release the guard.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether process `pid` runs (exists and is not a zombie or dead).
fn running(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    match stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
    {
        Some("Z" | "X" | "x") | None => false,
        Some(_) => true,
    }
}

fn prepare_run_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(f) = &self.pid_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_process_is_told_from_a_missing_one() {
        assert!(super::running(&std::process::id().to_string()));
        assert!(!super::running("999999999"));
        assert!(!super::running("not-a-pid"));
    }
}
