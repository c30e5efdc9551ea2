//! Connecting to the system bus without threads: the bus address, the [`Framer`] that keeps
//! oversized messages out, and the task that reads the connection ([`spawn_ticker`]).
//!
//! pathman is single-threaded (SPEC §1): the socket is connected here and read by a task on the
//! owner's local executor; the connection itself is [`super::conn`].

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use super::conn::Connection;
use crate::caps;

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

/// Connects to the system bus (honouring `DBUS_SYSTEM_BUS_ADDRESS`). Incoming messages larger
/// than [`caps::MAX_DBUS_MESSAGE`] are dropped while they stream in (the [`Framer`]).
///
/// The caller must run the connection's reader, e.g. with [`spawn_ticker`], or every call on it
/// hangs.
pub async fn connect_system() -> zbus::Result<Connection> {
    connect_system_reporting(None).await
}

/// [`connect_system`], reporting each method call dropped for its size on `dropped`.
pub async fn connect_system_reporting(
    dropped: Option<smol::channel::Sender<Dropped>>,
) -> zbus::Result<Connection> {
    let env = std::env::var(SYSTEM_BUS_ADDRESS_ENV).ok();
    let path = system_bus_socket_path(env.as_deref())?;
    // A local-socket connect() does not wait on the network: it succeeds or fails at once, so
    // doing it blocking here is fine.
    let stream = UnixStream::connect(&path).map_err(|e| {
        zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )))
    })?;
    Connection::handshake(stream, dropped, crate::dbus::client::CALL_TIMEOUT).await
}

/// Header fields longer than this are not kept for the error reply of a dropped message.
const MAX_KEPT_HEADER: usize = 4096;

/// A message the [`Framer`] dropped for its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// D-Bus message type (1 call, 2 return, 3 error, 4 signal).
    pub msg_type: u8,
    /// Its serial.
    pub serial: u32,
    /// Its whole length in bytes.
    pub size: usize,
    /// The sender, path, interface and member, if its header was small enough to keep.
    pub sender: Option<String>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    /// The serial it answers (returns and errors).
    pub reply_serial: Option<u32>,
}

#[derive(Debug)]
enum FrameState {
    /// The authentication dialogue: text lines until the server's `OK`.
    Auth { line: Vec<u8> },
    /// Collecting the 16-byte fixed header of the next message.
    Header { buf: [u8; 16], have: usize },
    /// Passing the rest of a message through.
    Pass { left: usize },
    /// Keeping the header of a message that is too large, to describe it.
    Keep {
        head: Vec<u8>,
        header_len: usize,
        total: usize,
    },
    /// Discarding the rest of a message that is too large.
    Drop { left: usize },
}

/// A sans-I/O filter on the byte stream from the bus: it passes messages up
/// to `cap` bytes through unchanged and drops larger ones as they stream in,
/// so no more than a read chunk of such a message is ever held in memory.
/// A dropped method return or error is replaced by a small error reply to
/// the same call, so a call pathman made fails instead of waiting forever.
#[derive(Debug)]
pub struct Framer {
    cap: usize,
    state: FrameState,
}

fn endian_of(b: u8) -> Option<zbus::zvariant::Endian> {
    match b {
        b'l' => Some(zbus::zvariant::Endian::Little),
        b'B' => Some(zbus::zvariant::Endian::Big),
        _ => None,
    }
}

fn u32_at(buf: &[u8], at: usize, little: bool) -> u32 {
    let b = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    }
}

impl Framer {
    /// A framer that lets messages of up to `cap` bytes through.
    pub fn new(cap: usize) -> Framer {
        Framer {
            cap,
            state: FrameState::Auth { line: Vec::new() },
        }
    }

    /// Feeds bytes read from the socket; what zbus may see is appended to
    /// `out`, dropped messages to `dropped`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>, dropped: &mut Vec<Dropped>) {
        while !input.is_empty() {
            match &mut self.state {
                FrameState::Auth { line } => {
                    let (take, eol) = match input.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (input.len(), false),
                    };
                    out.extend_from_slice(&input[..take]);
                    if line.len() < 512 {
                        line.extend_from_slice(&input[..take.min(512)]);
                    }
                    input = &input[take..];
                    if eol {
                        let ok = line.starts_with(b"OK ");
                        line.clear();
                        if ok {
                            self.state = FrameState::Header {
                                buf: [0; 16],
                                have: 0,
                            };
                        }
                    }
                }
                FrameState::Header { buf, have } => {
                    let n = (16 - *have).min(input.len());
                    buf[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    if *have < 16 {
                        continue;
                    }
                    let buf = *buf;
                    let Some(endian) = endian_of(buf[0]) else {
                        // Not D-Bus framing: let zbus see it and fail.
                        out.extend_from_slice(&buf);
                        self.state = FrameState::Pass { left: 0 };
                        continue;
                    };
                    let little = matches!(endian, zbus::zvariant::Endian::Little);
                    // In u64 then saturated: no overflow where usize is 32 bits.
                    let body = u64::from(u32_at(&buf, 4, little));
                    let fields = u64::from(u32_at(&buf, 12, little));
                    let header_len = usize::try_from(16 + fields).unwrap_or(usize::MAX);
                    let total = usize::try_from((16 + fields).next_multiple_of(8) + body)
                        .unwrap_or(usize::MAX);
                    if total <= self.cap {
                        out.extend_from_slice(&buf);
                        self.state = FrameState::Pass { left: total - 16 };
                    } else if header_len <= MAX_KEPT_HEADER {
                        self.state = FrameState::Keep {
                            head: buf.to_vec(),
                            header_len,
                            total,
                        };
                    } else {
                        dropped.push(describe(&buf, total));
                        self.state = FrameState::Drop { left: total - 16 };
                    }
                }
                FrameState::Pass { left } => {
                    let n = (*left).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    *left -= n;
                    input = &input[n..];
                }
                FrameState::Keep {
                    head,
                    header_len,
                    total,
                } => {
                    let n = (*header_len - head.len()).min(input.len());
                    head.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if head.len() == *header_len {
                        let d = describe(head, *total);
                        let left = *total - *header_len;
                        if matches!(d.msg_type, 2 | 3) {
                            if let Some(reply) = substitute_error(&d) {
                                out.extend_from_slice(&reply);
                            }
                        }
                        dropped.push(d);
                        self.state = FrameState::Drop { left };
                    }
                }
                FrameState::Drop { left } => {
                    let n = (*left).min(input.len());
                    *left -= n;
                    input = &input[n..];
                }
            }
            if matches!(
                self.state,
                FrameState::Pass { left: 0 } | FrameState::Drop { left: 0 }
            ) {
                self.state = FrameState::Header {
                    buf: [0; 16],
                    have: 0,
                };
            }
        }
    }
}

/// What a dropped message was, from its fixed header and (when kept) its header fields.
fn describe(head: &[u8], total: usize) -> Dropped {
    let little = head[0] == b'l';
    let mut d = Dropped {
        msg_type: head[1],
        serial: u32_at(head, 8, little),
        size: total,
        sender: None,
        path: None,
        interface: None,
        member: None,
        reply_serial: None,
    };
    if head.len() <= 16 {
        return d;
    }
    let Some(endian) = endian_of(head[0]) else {
        return d;
    };
    let ctxt = zbus::zvariant::serialized::Context::new_dbus(endian, 12);
    let data = zbus::zvariant::serialized::Data::new(&head[12..], ctxt);
    let Ok((fields, _)) = data.deserialize::<Vec<(u8, zbus::zvariant::Value<'_>)>>() else {
        return d;
    };
    for (code, v) in fields {
        let text = match &v {
            zbus::zvariant::Value::Str(s) => Some(s.as_str().to_string()),
            zbus::zvariant::Value::ObjectPath(p) => Some(p.as_str().to_string()),
            _ => None,
        };
        match code {
            1 => d.path = text,
            2 => d.interface = text,
            3 => d.member = text,
            5 => {
                if let zbus::zvariant::Value::U32(n) = v {
                    d.reply_serial = Some(n);
                }
            }
            7 => d.sender = text,
            _ => {}
        }
    }
    d
}

/// An error message answering the call a dropped return or error answered,
/// as if its sender had said the reply was too large.
fn substitute_error(d: &Dropped) -> Option<Vec<u8>> {
    let serial = std::num::NonZeroU32::new(d.reply_serial?)?;
    let call = zbus::Message::method_call("/", "Dropped")
        .ok()?
        .serial(serial)
        .build(&())
        .ok()?;
    let mut err = zbus::Message::error(&call.header(), LIMITS_EXCEEDED_ERROR).ok()?;
    if let Some(sender) = &d.sender {
        err = err.sender(sender.as_str()).ok()?;
    }
    let msg = err
        .build(&(format!(
            "reply of {} bytes exceeds pathman's limit of {} bytes (caps::MAX_DBUS_MESSAGE)",
            d.size,
            caps::MAX_DBUS_MESSAGE
        ),))
        .ok()?;
    Some(msg.data().to_vec())
}

/// Error name for replies and calls dropped for their size.
pub const LIMITS_EXCEEDED_ERROR: &str = "org.freedesktop.DBus.Error.LimitsExceeded";

/// Spawns a task on `ex` that reads and delivers `conn`'s messages for as long as the task lives
/// (drop or cancel it to stop: every stream of the connection then ends). A connection has one
/// reader: a second call spawns a task that ends at once.
pub fn spawn_ticker(ex: &smol::LocalExecutor<'_>, conn: &Connection) -> smol::Task<()> {
    let reader = conn.reader();
    ex.spawn(async move {
        if let Some(reader) = reader {
            reader.run().await;
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

    fn call(serial: u32, member: &str, body: &str) -> Vec<u8> {
        zbus::Message::method_call("/net/connman/service/x", member)
            .unwrap()
            .interface("net.connman.Service")
            .unwrap()
            .sender(":1.42")
            .unwrap()
            .serial(std::num::NonZeroU32::new(serial).unwrap())
            .build(&("Domains.Configuration", zbus::zvariant::Value::from(body)))
            .unwrap()
            .data()
            .to_vec()
    }

    /// Runs `input` through a framer in chunks of `chunk` bytes.
    fn run(input: &[u8], chunk: usize, cap: usize) -> (Vec<u8>, Vec<Dropped>) {
        let mut f = Framer::new(cap);
        let (mut out, mut dropped) = (Vec::new(), Vec::new());
        for piece in input.chunks(chunk.max(1)) {
            f.feed(piece, &mut out, &mut dropped);
        }
        (out, dropped)
    }

    #[test]
    fn framer_passes_auth_and_small_messages_unchanged() {
        let mut input = b"DATA\r\nOK 1234deadbeef\r\n".to_vec();
        input.extend(call(7, "SetProperty", "small"));
        input.extend(call(8, "SetProperty", "also small"));
        for chunk in [1, 3, 16, 4096] {
            let (out, dropped) = run(&input, chunk, 4096);
            assert_eq!(out, input, "chunk {chunk}");
            assert!(dropped.is_empty());
        }
    }

    #[test]
    fn framer_drops_an_oversized_call_and_keeps_the_stream_in_step() {
        let big = "x".repeat(10_000);
        let mut input = b"OK 1234\r\n".to_vec();
        let small = call(9, "SetProperty", "after");
        input.extend(call(8, "SetProperty", &big));
        input.extend(&small);
        for chunk in [1, 7, 4096] {
            let (out, dropped) = run(&input, chunk, 1024);
            let mut want = b"OK 1234\r\n".to_vec();
            want.extend(&small);
            assert_eq!(out, want, "chunk {chunk}");
            assert_eq!(dropped.len(), 1);
            let d = &dropped[0];
            assert_eq!((d.msg_type, d.serial), (1, 8));
            assert_eq!(d.sender.as_deref(), Some(":1.42"));
            assert_eq!(d.member.as_deref(), Some("SetProperty"));
            assert!(d.size > 10_000);
        }
    }

    #[test]
    fn framer_turns_an_oversized_reply_into_an_error_for_the_call() {
        let req = zbus::Message::method_call("/", "GetAll")
            .unwrap()
            .serial(std::num::NonZeroU32::new(3).unwrap())
            .build(&())
            .unwrap();
        let big_reply = zbus::Message::method_return(&req.header())
            .unwrap()
            .sender(":1.7")
            .unwrap()
            .build(&("y".repeat(5000),))
            .unwrap();
        let mut input = b"OK 99\r\n".to_vec();
        input.extend(big_reply.data().iter());
        let (out, dropped) = run(&input, 100, 1024);
        assert_eq!(dropped.len(), 1);
        let msg_bytes = out[b"OK 99\r\n".len()..].to_vec();
        let ctxt = zbus::zvariant::serialized::Context::new_dbus(zbus::zvariant::NATIVE_ENDIAN, 0);
        // SAFETY: the bytes were produced by zbus's own builder just above.
        let msg = unsafe {
            zbus::Message::from_bytes(zbus::zvariant::serialized::Data::new(msg_bytes, ctxt))
        }
        .unwrap();
        assert_eq!(msg.message_type(), zbus::message::Type::Error);
        assert_eq!(msg.header().reply_serial().map(|s| s.get()), Some(3));
        assert_eq!(
            msg.header().error_name().map(|e| e.as_str()),
            Some(LIMITS_EXCEEDED_ERROR)
        );
    }

    proptest::proptest! {
        #[test]
        fn framer_output_does_not_depend_on_chunking(
            sizes in proptest::collection::vec(0usize..3000, 1..6),
            chunk in 1usize..600,
        ) {
            let mut input = b"OK 1\r\n".to_vec();
            let mut kept = input.clone();
            let mut too_big = 0;
            for (i, n) in sizes.iter().enumerate() {
                let m = call(i as u32 + 1, "SetProperty", &"z".repeat(*n));
                if m.len() > 1500 {
                    too_big += 1;
                } else {
                    kept.extend(&m);
                }
                input.extend(m);
            }
            let pieces = run(&input, chunk, 1500);
            proptest::prop_assert_eq!(&pieces.0, &kept);
            proptest::prop_assert_eq!(pieces.1.len(), too_big);
        }
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
