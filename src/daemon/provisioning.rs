//! Provisioning files (`<state-dir>/*.config`, ConnMan's format): read at start and again
//! whenever one is written, renamed or removed (inotify). The parsing is pure
//! ([`crate::config::provision`]); here are the file rules: regular files owned by root
//! and not writable by group or others (they carry credentials and decide which networks
//! the device joins), at most [`caps::MAX_PROVISION_FILES`] files and
//! [`caps::MAX_PROVISIONED`] networks, no symlinks. Nothing of a file's secrets reaches a
//! log line.

use std::path::{Path, PathBuf};

use crate::caps;
use crate::config::file::{read_bounded, Links};
use crate::config::provision::{self, WifiProvision};

/// Every provisioned network of the state directory.
pub fn load(state_dir: &Path) -> Vec<WifiProvision> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".config") && n.len() > ".config".len())
        })
        .map(|e| e.path())
        .collect();
    crate::sort::sort(&mut files);
    if files.len() > caps::MAX_PROVISION_FILES {
        log::warn!(
            "provisioning: {} .config files in {}; only the first {} are read (caps::MAX_PROVISION_FILES)",
            files.len(),
            state_dir.display(),
            caps::MAX_PROVISION_FILES
        );
        files.truncate(caps::MAX_PROVISION_FILES);
    }
    let mut out: Vec<WifiProvision> = Vec::new();
    for file in files {
        let name = file.display().to_string();
        if let Err(why) = super::policies::trusted(&file) {
            log::warn!("provisioning {name}: ignored: {why}");
            continue;
        }
        let text = match read_bounded(&file, Links::Refuse) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                log::warn!("provisioning {name}: ignored: {e}");
                continue;
            }
        };
        let (nets, warnings) = provision::parse(&text, &name);
        for w in warnings {
            log::warn!("provisioning: {w}");
        }
        for n in nets {
            if out.len() == caps::MAX_PROVISIONED {
                log::warn!(
                    "provisioning {name}: {} and later networks ignored: more than {} (caps::MAX_PROVISIONED)",
                    n.origin,
                    caps::MAX_PROVISIONED
                );
                break;
            }
            if out
                .iter()
                .any(|o| o.ssid == n.ssid && o.security == n.security)
            {
                log::warn!("provisioning {name}: {} is provisioned by an earlier file too; that one is used", n.origin);
                continue;
            }
            out.push(n);
        }
    }
    if !out.is_empty() {
        log::info!(
            "provisioning: {} WiFi network(s) from {}",
            out.len(),
            state_dir.display()
        );
    }
    out
}
