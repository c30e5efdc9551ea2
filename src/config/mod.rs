//! Configuration and persistence: main.conf, board configs, session policy
//! files and the state directory, all in ConnMan's keyfile syntax and read by
//! the one parser in [`keyfile`].
//!
//! Precedence of daemon-wide settings, lowest first: built-in defaults
//! ([`MainConf::default`]), the board config's `[Defaults]`, main.conf, then
//! command-line options (applied by the caller). [`load`] builds the first
//! three layers.
//!
//! Nothing here is fatal except a broken board config: main.conf and state
//! files that cannot be read or parsed yield defaults plus [`Warning`]s, which
//! are also logged with `log::warn!` where they arise.

pub mod board;
pub mod keyfile;
pub mod lease;
pub mod main_conf;
pub mod policy;
pub mod store;

use std::fmt;
use std::path::Path;

pub use board::{Board, BoardError};
pub use keyfile::{KeyFile, ParseError};
pub use main_conf::MainConf;

/// Something wrong in a configuration or state file that pathman worked
/// around (default used, key ignored, file replaced by defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file (or other source) the problem is in.
    pub source: String,
    /// 1-based line, when the problem is tied to one.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: WarningKind,
}

/// The kinds of [`Warning`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A key appeared twice in a group; the last value is used.
    DuplicateKey { group: String, key: String },
    /// A group pathman does not know; ignored.
    UnknownGroup { group: String },
    /// A key pathman does not know; ignored.
    UnknownKey { group: String, key: String },
    /// A value that does not parse or is out of range; the default is used.
    BadValue {
        group: String,
        key: String,
        value: String,
        reason: String,
    },
    /// A list longer than its cap; the extra items are ignored.
    TooMany {
        group: String,
        key: String,
        cap: usize,
    },
    /// The file could not be read; defaults are used.
    Unreadable { reason: String },
    /// The file is not a valid keyfile; defaults are used.
    Corrupt { reason: String },
}

impl Warning {
    /// A warning tied to a source and optional line.
    pub fn new(source: &str, line: Option<usize>, kind: WarningKind) -> Warning {
        Warning {
            source: source.to_string(),
            line,
            kind,
        }
    }

    /// Logs the warning with `log::warn!` and returns it, so call sites can
    /// log and collect in one step.
    pub fn logged(self) -> Warning {
        log::warn!("{self}");
        self
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.source, line, self.kind),
            None => write!(f, "{}: {}", self.source, self.kind),
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::DuplicateKey { group, key } => {
                write!(
                    f,
                    "[{group}] {key} set more than once, using the last value"
                )
            }
            WarningKind::UnknownGroup { group } => write!(f, "unknown group [{group}] ignored"),
            WarningKind::UnknownKey { group, key } => {
                write!(f, "unknown key {key} in [{group}] ignored")
            }
            WarningKind::BadValue {
                group,
                key,
                value,
                reason,
            } => write!(f, "[{group}] {key}={value:?}: {reason}, using the default"),
            WarningKind::TooMany { group, key, cap } => {
                write!(
                    f,
                    "[{group}] {key}: more than {cap} items, the rest ignored"
                )
            }
            WarningKind::Unreadable { reason } => {
                write!(f, "cannot read ({reason}), using defaults")
            }
            WarningKind::Corrupt { reason } => write!(f, "{reason}, using defaults"),
        }
    }
}

/// Loads the board config (if any) and main.conf, in precedence order: the
/// board's `[Defaults]` under main.conf. A missing or broken main.conf gives
/// warnings; a board config that cannot be loaded is an error, because it
/// decides which interfaces are managed.
pub fn load(
    main_conf: &Path,
    board: Option<&Path>,
) -> Result<(MainConf, Option<Board>, Vec<Warning>), BoardError> {
    let board = board.map(Board::load).transpose()?;
    let mut base = MainConf::default();
    if let Some(b) = &board {
        b.defaults.apply_to(&mut base);
    }
    let (conf, warnings) = MainConf::load_over(base, main_conf);
    Ok((conf, board, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::MptcpLink;

    #[test]
    fn board_under_main_conf() {
        let dir = std::env::temp_dir().join(format!("pathman-config-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let board = dir.join("board.conf");
        let main = dir.join("main.conf");
        std::fs::write(
            &board,
            "[Board]\nName=t\n[Defaults]\nMultipathRouting=true\nMptcpLink=backup\n",
        )
        .unwrap();
        std::fs::write(&main, "[General]\nMptcpLink=off\nFrobnicate=1\n").unwrap();
        let result = load(&main, Some(&board));
        let broken = load(&main, Some(&dir.join("missing.conf")));
        let _ = std::fs::remove_dir_all(&dir);

        let (conf, board, warnings) = result.unwrap();
        assert_eq!(board.map(|b| b.name).as_deref(), Some("t"));
        assert!(conf.multipath_routing);
        assert_eq!(conf.default_mptcp_link, MptcpLink::Off);
        assert_eq!(warnings.len(), 1);
        assert!(broken.unwrap_err().to_string().contains("missing.conf"));
    }
}
