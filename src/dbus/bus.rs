//! Connecting to the system bus without threads.
//!
//! zbus's own connect path runs the blocking `connect(2)` on the `blocking` thread pool, and its
//! internal executor is another thread; pathman is single-threaded (SPEC §1), so we connect the
//! socket ourselves and the owner of the connection ticks zbus's executor on its local executor
//! (see [`spawn_ticker`]).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Environment variable that overrides the system bus address (D-Bus specification).
pub const SYSTEM_BUS_ADDRESS_ENV: &str = "DBUS_SYSTEM_BUS_ADDRESS";

/// Socket of the system bus when [`SYSTEM_BUS_ADDRESS_ENV`] is not set.
pub const DEFAULT_SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";

/// Why a bus address could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// No entry of the address list has the `unix:path=` form (the only one supported).
    Unsupported(String),
    /// A `%` escape in a value is not followed by two hex digits.
    BadEscape(String),
}

impl core::fmt::Display for AddressError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unsupported(a) => write!(f, "unsupported bus address {a:?} (need unix:path=…)"),
            Self::BadEscape(a) => write!(f, "bad %-escape in bus address {a:?}"),
        }
    }
}

impl std::error::Error for AddressError {}

impl From<AddressError> for zbus::Error {
    fn from(e: AddressError) -> Self {
        zbus::Error::Address(e.to_string())
    }
}

/// The socket path of the system bus, given the value of [`SYSTEM_BUS_ADDRESS_ENV`] (if set).
///
/// The address may list several transports separated by `;`; the first `unix:path=` entry wins,
/// since that is the only transport a router's bus uses and the only one we connect by hand.
pub fn system_bus_socket_path(address: Option<&str>) -> Result<PathBuf, AddressError> {
    let Some(address) = address.filter(|a| !a.trim().is_empty()) else {
        return Ok(PathBuf::from(DEFAULT_SYSTEM_BUS_SOCKET));
    };
    for entry in address.split(';') {
        let Some(params) = entry.trim().strip_prefix("unix:") else {
            continue;
        };
        for param in params.split(',') {
            if let Some(value) = param.strip_prefix("path=") {
                return unescape(value)
                    .map(PathBuf::from)
                    .ok_or_else(|| AddressError::BadEscape(address.to_owned()));
            }
        }
    }
    Err(AddressError::Unsupported(address.to_owned()))
}

/// Undoes the D-Bus address `%XX` escaping; `None` on a malformed escape.
fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = core::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Connects to the system bus (honouring `DBUS_SYSTEM_BUS_ADDRESS`) with zbus's internal
/// executor off.
///
/// The caller must keep the connection's executor ticking, e.g. with [`spawn_ticker`], or every
/// call on it hangs.
pub async fn connect_system() -> zbus::Result<zbus::Connection> {
    let env = std::env::var(SYSTEM_BUS_ADDRESS_ENV).ok();
    let path = system_bus_socket_path(env.as_deref())?;
    // A local-socket connect() does not wait on the network: it succeeds or fails at once, so
    // doing it blocking here is fine and keeps zbus off its thread pool.
    let stream = UnixStream::connect(&path).map_err(|e| {
        zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )))
    })?;
    zbus::connection::Builder::async_io_unix_stream(stream)
        .internal_executor(false)
        .build()
        .await
}

/// Spawns a task on `ex` that drives zbus's executor for `conn` for as long as the task lives
/// (drop or cancel it to stop).
pub fn spawn_ticker(ex: &smol::LocalExecutor<'_>, conn: &zbus::Connection) -> smol::Task<()> {
    let conn = conn.clone();
    ex.spawn(async move {
        loop {
            conn.executor().tick().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_when_unset_or_empty() {
        let default = PathBuf::from(DEFAULT_SYSTEM_BUS_SOCKET);
        assert_eq!(system_bus_socket_path(None), Ok(default.clone()));
        assert_eq!(system_bus_socket_path(Some("  ")), Ok(default));
    }

    #[test]
    fn unix_path_with_guid_and_escapes() {
        assert_eq!(
            system_bus_socket_path(Some("unix:path=/tmp/hx/dbus/system_bus_socket")),
            Ok(PathBuf::from("/tmp/hx/dbus/system_bus_socket"))
        );
        assert_eq!(
            system_bus_socket_path(Some("unix:guid=abc,path=/tmp/a%20b")),
            Ok(PathBuf::from("/tmp/a b"))
        );
        assert_eq!(
            system_bus_socket_path(Some("tcp:host=x,port=1;unix:path=/s")),
            Ok(PathBuf::from("/s"))
        );
    }

    #[test]
    fn unsupported_and_malformed() {
        assert!(matches!(
            system_bus_socket_path(Some("unix:abstract=/tmp/x")),
            Err(AddressError::Unsupported(_))
        ));
        assert!(matches!(
            system_bus_socket_path(Some("tcp:host=localhost,port=4")),
            Err(AddressError::Unsupported(_))
        ));
        assert!(matches!(
            system_bus_socket_path(Some("unix:path=/tmp/%2")),
            Err(AddressError::BadEscape(_))
        ));
        assert!(matches!(
            system_bus_socket_path(Some("unix:path=/tmp/%zz")),
            Err(AddressError::BadEscape(_))
        ));
    }
}
