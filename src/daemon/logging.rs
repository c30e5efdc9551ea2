//! Logging for a serial console: stderr, level and module on every line;
//! `-d` turns on debug for everything or for the named modules, and puts the
//! CLOCK_MONOTONIC time (seconds, as the kernel's log and the benchmarks'
//! tools count it) after the level, so a line can be set against a capture.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

struct Logger {
    /// Debug for these module prefixes (`pathman` for all of pathman).
    debug: Vec<String>,
    time: bool,
}

impl Logger {
    fn level_for(&self, target: &str) -> LevelFilter {
        let debug = self.debug.iter().any(|m| {
            target == m || (target.starts_with(m.as_str()) && target[m.len()..].starts_with("::"))
        });
        if debug {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = String::with_capacity(128);
        use std::fmt::Write as _;
        let _ = write!(line, "{:<5} ", record.level());
        if self.time {
            let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                .map(|t| (t.tv_sec(), t.tv_nsec() / 1000))
                .unwrap_or((0, 0));
            let _ = write!(line, "{}.{:06} ", t.0, t.1);
        }
        let _ = writeln!(line, "[{}] {}", record.target(), record.args());
        // One write per line: lines of two threads never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger. `debug`: `None` = info, `Some("")` = debug for all,
/// `Some("dhcp,core")` = debug for `pathman::dhcp` and `pathman::core`.
pub fn init(debug: Option<&str>) {
    let modules: Vec<String> = match debug {
        None => Vec::new(),
        Some("") => vec!["pathman".to_string()],
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                if m.starts_with("pathman") {
                    m.to_string()
                } else {
                    format!("pathman::{m}")
                }
            })
            .collect(),
    };
    let max = if modules.is_empty() {
        LevelFilter::Info
    } else {
        LevelFilter::Debug
    };
    let logger = Logger {
        time: debug.is_some(),
        debug: modules,
    };
    if log::set_boxed_logger(Box::new(logger)).is_err() {
        eprintln!("pathman: logger already initialised");
        return;
    }
    log::set_max_level(max);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_for_the_named_modules_and_their_children_only() {
        let l = Logger {
            debug: vec!["pathman::dhcp".into()],
            time: false,
        };
        assert_eq!(l.level_for("pathman::dhcp"), LevelFilter::Debug);
        assert_eq!(l.level_for("pathman::dhcp::server"), LevelFilter::Debug);
        assert_eq!(l.level_for("pathman::dhcpx"), LevelFilter::Info);
        assert_eq!(l.level_for("pathman::core"), LevelFilter::Info);
        assert_eq!(l.level_for("zbus::conn"), LevelFilter::Info);
    }
}
