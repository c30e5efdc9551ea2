//! Configuration and persistence: main.conf, board configs, session policy
//! files and the state directory, all in ConnMan's keyfile syntax and read by
//! the one parser in [`keyfile`].
//!
//! Precedence of daemon-wide settings, lowest first: built-in defaults
//! ([`MainConf::default`]), the board config's `[Defaults]`, main.conf, then
//! command-line options (applied by the caller). [`load`] builds the first
//! three layers.
//!
//! What is fatal: a file named on the command line (`-c`, `--board`) that
//! does not exist or cannot be read — the user asked for it, so running
//! without it would be a surprise — and a board config that does not check
//! (it decides which interfaces are touched). Everything else yields
//! defaults plus [`Warning`]s, also logged with `log::warn!` where they
//! arise: the default main.conf being absent (an info line: that is normal),
//! a main.conf or state file that cannot be read or parsed, a bad value.
//! Every file is read through [`file::read_bounded`]: regular files only,
//! size-capped, never blocking.

pub mod board;
pub mod file;
pub mod keyfile;
pub mod lease;
pub mod main_conf;
pub mod policy;
pub mod provision;
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
    /// A key under an old name; it still works, under the new name.
    Deprecated {
        group: String,
        key: String,
        replacement: &'static str,
    },
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
            WarningKind::Deprecated {
                group,
                key,
                replacement,
            } => write!(
                f,
                "[{group}] {key} is a deprecated name, read as {replacement}: rename it"
            ),
        }
    }
}

/// Where main.conf is read from when `-c` does not say.
pub const DEFAULT_MAIN_CONF: &str = "/etc/pathman/main.conf";

/// A file named on the command line that cannot be used.
#[derive(Debug)]
pub enum LoadError {
    /// `--board FILE` cannot be read or does not check.
    Board(BoardError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Board(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads the board config (if any) and main.conf, in precedence order: the
/// board's `[Defaults]` under main.conf.
///
/// `main_conf` is the file named with `-c`, or `None` for
/// [`DEFAULT_MAIN_CONF`]. A main.conf that is missing or unreadable is a
/// warning and the built-in defaults (the default path being absent is only
/// an info line); a board config that cannot be loaded is an error, since it
/// decides which interfaces pathman may touch.
pub fn load(
    main_conf: Option<&Path>,
    board: Option<&Path>,
) -> Result<(MainConf, Option<Board>, Vec<Warning>), LoadError> {
    load_with_default(main_conf, Path::new(DEFAULT_MAIN_CONF), board)
}

/// [`load`] with the default main.conf path as a parameter, for tests.
fn load_with_default(
    main_conf: Option<&Path>,
    default: &Path,
    board: Option<&Path>,
) -> Result<(MainConf, Option<Board>, Vec<Warning>), LoadError> {
    let board = board
        .map(Board::load)
        .transpose()
        .map_err(LoadError::Board)?;
    let mut base = MainConf::default();
    if let Some(b) = &board {
        b.defaults.apply_to(&mut base);
    }
    let (path, explicit) = match main_conf {
        Some(p) => (p, true),
        None => (default, false),
    };
    let source = path.display().to_string();
    let (conf, warnings) = match file::read_bounded(path, file::Links::Follow) {
        Ok(bytes) => MainConf::parse_over(base, &bytes, &source),
        Err(file::ReadError::NotFound) if !explicit => {
            log::info!("{source} not found, using built-in defaults");
            (base, Vec::new())
        }
        // A firmware overlay can lose the file the init script names: pathman
        // still starts (a router without its manager is worse) and says so.
        Err(e) => {
            let reason = if explicit {
                format!("{e} (named with -c); using built-in defaults")
            } else {
                e.to_string()
            };
            let kind = WarningKind::Unreadable { reason };
            (base, vec![Warning::new(&source, None, kind).logged()])
        }
    };
    Ok((conf, board, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::MptcpLink;

    #[test]
    fn board_under_main_conf() {
        let tmp = crate::test_dir::TempDir::new("config-load");
        let dir = tmp.0.clone();
        let board = dir.join("board.conf");
        let main = dir.join("main.conf");
        std::fs::write(
            &board,
            "[Board]\nName=t\n[Defaults]\nMultipathRouting=true\nMultipathTcpLink=backup\n",
        )
        .unwrap();
        std::fs::write(&main, "[General]\nMultipathTcpLink=off\nFrobnicate=1\n").unwrap();
        let result = load(Some(&main), Some(&board));
        let broken = load(Some(&main), Some(&dir.join("missing.conf")));

        let (conf, board, warnings) = result.unwrap();
        assert_eq!(board.map(|b| b.name).as_deref(), Some("t"));
        assert!(conf.multipath_routing);
        assert_eq!(conf.default_mptcp_link, MptcpLink::Off);
        assert_eq!(warnings.len(), 1);
        assert!(broken.unwrap_err().to_string().contains("missing.conf"));
    }

    /// One rule for files named on the command line: missing or unreadable
    /// is fatal for `-c` as for `--board`. It used to be silently ignored
    /// for `-c`.
    #[test]
    fn named_files_must_exist() {
        let tmp = crate::test_dir::TempDir::new("config-named");
        let dir = tmp.0.clone();
        let missing = dir.join("nope.conf");
        let fifo = dir.join("fifo.conf");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e_missing = load(Some(&missing), None);
        let e_fifo = load(Some(&fifo), None);
        let e_board = load(None, Some(&missing));
        // The default path: absent is normal, unreadable is a warning.
        let absent_default = load_with_default(None, &missing, None);
        let fifo_default = load_with_default(None, &fifo, None);

        let (conf, _, w) = absent_default.unwrap();
        assert_eq!(conf, MainConf::default());
        assert!(w.is_empty(), "{w:?}");
        let (conf, _, w) = fifo_default.unwrap();
        assert_eq!(conf, MainConf::default());
        assert_eq!(w.len(), 1);
        assert!(w[0].to_string().contains("FIFO"), "{}", w[0]);

        // Named with -c: still a start, with a warning naming file and flag.
        let (conf, _, w) = e_missing.unwrap();
        assert_eq!(conf, MainConf::default());
        let msg = w[0].to_string();
        assert!(msg.contains("nope.conf") && msg.contains("-c"), "{msg}");
        let (_, _, w) = e_fifo.unwrap();
        assert!(w[0].to_string().contains("FIFO"), "{}", w[0]);
        let e = e_board.unwrap_err();
        assert!(matches!(e, LoadError::Board(_)), "{e}");
        assert!(e.to_string().contains("nope.conf"), "{e}");
    }
}
