//! Logging for a serial console: stderr, level and module on every line;
//! `-d` turns on debug for everything or for the named modules.

use log::LevelFilter;

/// Installs the logger. `debug`: `None` = info, `Some("")` = debug for all,
/// `Some("dhcp,core")` = debug for `pathman::dhcp` and `pathman::core`.
pub fn init(debug: Option<&str>) {
    let mut logger = simple_logger::SimpleLogger::new().with_level(LevelFilter::Info);
    match debug {
        None => {}
        Some("") => logger = logger.with_module_level("pathman", LevelFilter::Debug),
        Some(list) => {
            for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let module = if m.starts_with("pathman") {
                    m.to_string()
                } else {
                    format!("pathman::{m}")
                };
                logger = logger.with_module_level(&module, LevelFilter::Debug);
            }
        }
    }
    if logger.init().is_err() {
        eprintln!("pathman: logger already initialised");
    }
}
