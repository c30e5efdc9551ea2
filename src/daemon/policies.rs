//! Session policy files (`<state-dir>/session_policy_local/*.policy`):
//! loaded into resolved rules (user and group names to ids), and watched
//! with inotify so an edit takes effect without a restart.

use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use smol::Async;

use crate::config::policy::{is_policy_file_name, load_policy_file, PolicyId};
use crate::core::session_policy::{parse_bearers, PolicyRule};

/// The policy directory under a state directory.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("session_policy_local")
}

/// Reads every policy file; a broken file or an unknown user/group is
/// reported and skipped, never fatal.
pub fn load(dir: &Path) -> Vec<PolicyRule> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(is_policy_file_name))
        .map(|e| e.path())
        .collect();
    crate::sort::sort(&mut files);
    let mut rules = Vec::new();
    for file in files {
        if let Err(why) = trusted(&file) {
            log::warn!("session policy {}: ignored: {why}", file.display());
            continue;
        }
        let policies = match load_policy_file(&file) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("session policy: {e}");
                continue;
            }
        };
        for p in policies {
            let (uid, gid) = match &p.id {
                PolicyId::User(name) => match nix::unistd::User::from_name(name) {
                    Ok(Some(u)) => (Some(u.uid.as_raw()), None),
                    _ => {
                        log::warn!(
                            "session policy {}: {}: no user {name}",
                            file.display(),
                            p.name
                        );
                        continue;
                    }
                },
                PolicyId::Group(name) => match nix::unistd::Group::from_name(name) {
                    Ok(Some(g)) => (None, Some(g.gid.as_raw())),
                    _ => {
                        log::warn!(
                            "session policy {}: {}: no group {name}",
                            file.display(),
                            p.name
                        );
                        continue;
                    }
                },
                PolicyId::Selinux(_) => {
                    log::warn!(
                        "session policy {}: {}: SELinux identities are not supported",
                        file.display(),
                        p.name
                    );
                    continue;
                }
            };
            let allowed_bearers = match &p.allowed_bearers {
                None => None,
                Some(list) => match parse_bearers(list) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        log::warn!("session policy {}: {}: {e}", file.display(), p.name);
                        continue;
                    }
                },
            };
            rules.push(PolicyRule {
                uid,
                gid,
                allowed_bearers,
                connection_type: Some(p.connection_type),
                selectors_for_all_users: p.selectors_for_all_users,
            });
        }
    }
    log::info!(
        "session policy: {} rule(s) from {}",
        rules.len(),
        dir.display()
    );
    rules
}

/// A policy decides whose traffic a session may steer, so only files that
/// root wrote count: owned by root and not writable by group or others (the
/// directory itself lives in root's state directory).
pub(super) fn trusted(file: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(file).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != 0 {
        return Err(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Wakes up when something in a watched directory changes (a file whose
/// name ends with the suffix, when one is given).
pub struct Watch(Async<Inotify>, Option<&'static str>);

impl Watch {
    /// Watches `dir` (created if missing).
    pub fn new(dir: &Path) -> Option<Watch> {
        Self::for_suffix(dir, None)
    }

    /// Watches the files of `dir` named `*<suffix>`.
    pub fn for_suffix(dir: &Path, suffix: Option<&'static str>) -> Option<Watch> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            log::warn!("session policy: cannot create {}: {e}", dir.display());
            return None;
        }
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mask = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CREATE;
        if let Err(e) = inotify.add_watch(dir, mask) {
            log::warn!("session policy: cannot watch {}: {e}", dir.display());
            return None;
        }
        Async::new(inotify).ok().map(|i| Watch(i, suffix))
    }

    /// Waits until the directory changed.
    pub async fn changed(&self) {
        let suffix = self.1;
        let wanted = |e: &nix::sys::inotify::InotifyEvent| {
            suffix.is_none_or(|s| {
                e.name
                    .as_ref()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(s))
            })
        };
        let read = |i: &Inotify| match i.read_events() {
            Ok(events) if events.iter().any(wanted) => Ok(()),
            Ok(_) => Err(std::io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(std::io::Error::from(e)),
        };
        if let Err(e) = self.0.read_with(read).await {
            log::warn!("session policy: inotify: {e}");
            std::future::pending::<()>().await;
        }
    }
}
