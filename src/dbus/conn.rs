//! pathman's own D-Bus connection: the socket, the authentication, replies matched to calls,
//! and message streams. Messages themselves are zbus's (`zbus::Message`, zvariant).
//!
//! zbus's `Connection` brought its connection builder, transports (with a process spawner for
//! `unixexec:`), handshake variants, an object server with the standard interfaces, and its
//! broadcast machinery: ~150 kB of the static aarch64 binary (issue 12's size budget). pathman
//! uses none of it: it connects one unix socket itself, answers every method call itself
//! (`dbus::server`), and needs `send`, `call_method`, `request_name` and message streams. This is
//! those, on the task the owner spawns ([`crate::dbus::bus::spawn_ticker`]).
//!
//! What it keeps of zbus's behaviour: a stream gets every message that arrives after it was
//! made (a filtered one those its match rule matches, with `AddMatch` for signal rules and
//! `RemoveMatch` when it is dropped), up to 64 queued, the reading waiting while one is full;
//! a reply goes to its call and not to the streams; when the socket closes every stream ends
//! and every call waiting fails. A message that does not parse is logged and skipped, the
//! frame around it being known (zbus closed the connection).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use smol::channel::{Receiver, Sender};
use smol::io::AsyncWriteExt;
use smol::Async;
use zbus::message::{Flags, Type};
use zbus::zvariant::serialized::{Context, Data};
use zbus::zvariant::{DynamicType, Endian};
use zbus::{MatchRule, Message};

use super::bus::{Dropped, Framer};
use crate::caps;

/// The bus daemon's name (and interface), and its object.
const BUS: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";
/// Messages a stream holds before the reading waits for it (zbus's default).
const STREAM_QUEUE: usize = 64;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;
/// The longest line of the authentication dialogue pathman reads.
const MAX_AUTH_LINE: usize = 512;

/// A connection to a message bus. Clones share it.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    socket: Arc<Async<UnixStream>>,
    /// Held while a message is written, so two never interleave.
    write: smol::lock::Mutex<()>,
    unique_name: OnceLock<String>,
    /// Calls waiting for their reply, by serial.
    pending: Mutex<HashMap<u32, Sender<Message>>>,
    streams: Mutex<Vec<Subscriber>>,
    next_stream: AtomicU64,
    closed: AtomicBool,
    /// The reading side, until [`Connection::reader`] hands it out.
    reader: Mutex<Option<Reader>>,
    /// Match rules of dropped streams, for the reader to remove from the bus.
    removals: Sender<String>,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    rule: Option<MatchRule<'static>>,
    tx: Sender<Message>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_error(kind: std::io::ErrorKind, what: &str) -> zbus::Error {
    zbus::Error::InputOutput(Arc::new(std::io::Error::new(kind, what.to_owned())))
}

fn closed_error() -> zbus::Error {
    io_error(
        std::io::ErrorKind::BrokenPipe,
        "the connection to the bus is closed",
    )
}

/// The whole length of the message whose fixed header starts `buf`, if `buf` holds 16 bytes;
/// `Err` when it is not D-Bus framing.
fn frame_len(buf: &[u8]) -> Option<Result<(usize, Endian), ()>> {
    let head = buf.get(..16)?;
    let endian = match head[0] {
        b'l' => Endian::Little,
        b'B' => Endian::Big,
        _ => return Some(Err(())),
    };
    let u32_at = |at: usize| {
        let b = [head[at], head[at + 1], head[at + 2], head[at + 3]];
        u64::from(match endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    };
    let (body, fields) = (u32_at(4), u32_at(12));
    let total = (16 + fields).next_multiple_of(8) + body;
    Some(usize::try_from(total).map(|t| (t, endian)).map_err(|_| ()))
}

/// The reading side: the socket's bytes through the [`Framer`], cut into messages.
#[derive(Debug)]
pub struct Reader {
    conn: Weak<Inner>,
    socket: Arc<Async<UnixStream>>,
    framer: Framer,
    /// What the framer let through and is not yet a whole message.
    buf: Vec<u8>,
    scratch: Vec<u8>,
    dropped: Option<Sender<Dropped>>,
    removals: Receiver<String>,
}

enum Next {
    /// More bytes were read (`false`: the connection ended).
    Read(bool),
    /// A dropped stream's match rule to remove.
    Remove(String),
}

impl Reader {
    /// Reads more bytes into `buf`; `false` at the end of the stream or on an error.
    async fn fill(&mut self) -> bool {
        let n = match self
            .socket
            .read_with(|s| (&*s).read(&mut self.scratch))
            .await
        {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let mut dropped = Vec::new();
        self.framer
            .feed(&self.scratch[..n], &mut self.buf, &mut dropped);
        for d in dropped {
            log::warn!(
                "dbus: dropped a message of {} bytes from {} ({}.{} on {}), over caps::MAX_DBUS_MESSAGE ({} bytes)",
                d.size,
                d.sender.as_deref().unwrap_or("?"),
                d.interface.as_deref().unwrap_or("?"),
                d.member.as_deref().unwrap_or("?"),
                d.path.as_deref().unwrap_or("?"),
                caps::MAX_DBUS_MESSAGE
            );
            if let Some(tx) = &self.dropped {
                if d.msg_type == 1 && tx.try_send(d).is_err() {
                    log::warn!("dbus: too many dropped calls at once; not all get an error reply");
                }
            }
        }
        true
    }

    /// One line of the authentication dialogue (without its CRLF).
    async fn auth_line(&mut self) -> zbus::Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end().to_owned());
            }
            if self.buf.len() > MAX_AUTH_LINE {
                return Err(zbus::Error::Handshake(
                    "the bus sent an over-long authentication line".into(),
                ));
            }
            if !self.fill().await {
                return Err(zbus::Error::Handshake(
                    "the bus closed the connection while authenticating".into(),
                ));
            }
        }
    }

    /// The next whole message in `buf`: `Ok(None)` when more bytes are needed.
    fn take(&mut self) -> Result<Option<zbus::Result<Message>>, ()> {
        let (len, endian) = match frame_len(&self.buf) {
            None => return Ok(None),
            Some(r) => r?,
        };
        if self.buf.len() < len {
            return Ok(None);
        }
        // Copied out, so a message queued in a stream holds its own bytes and not the
        // capacity the buffer grew to.
        let bytes = self.buf[..len].to_vec();
        self.buf.drain(..len);
        let data = Data::new(bytes, Context::new_dbus(endian, 0));
        // SAFETY: `from_bytes` is unsafe because nothing checked that the bytes are a valid
        // message; it checks the header itself (as zbus's own reader does with the same bytes),
        // and pathman reads bodies with `Body::deserialize`, which checks them against their
        // signature.
        Ok(Some(unsafe { Message::from_bytes(data) }))
    }

    /// The next message from the socket; `None` when the connection ended.
    async fn next(&mut self) -> Option<Message> {
        loop {
            match self.take() {
                Err(()) => {
                    log::warn!("dbus: the bus sent bytes that are not a message; closing");
                    return None;
                }
                Ok(Some(Ok(m))) => return Some(m),
                Ok(Some(Err(e))) => log::debug!("dbus: skipped a message that does not parse: {e}"),
                Ok(None) => {
                    let removals = self.removals.clone();
                    let read = async { Next::Read(self.fill().await) };
                    let remove = async {
                        match removals.recv().await {
                            Ok(rule) => Next::Remove(rule),
                            Err(_) => std::future::pending().await,
                        }
                    };
                    match smol::future::or(read, remove).await {
                        Next::Read(true) => {}
                        Next::Read(false) => return None,
                        Next::Remove(rule) => self.remove_match(rule).await,
                    }
                }
            }
        }
    }

    async fn remove_match(&self, rule: String) {
        let Some(conn) = self.conn.upgrade().map(|inner| Connection { inner }) else {
            return;
        };
        let msg = conn
            .to_bus("RemoveMatch")
            .and_then(|b| b.with_flags(Flags::NoReplyExpected))
            .and_then(|b| b.build(&(rule.as_str(),)));
        if let Err(e) = match msg {
            Ok(m) => conn.send(&m).await,
            Err(e) => Err(e),
        } {
            log::debug!("dbus: cannot remove match rule {rule}: {e}");
        }
    }

    /// Reads and delivers messages until the connection ends; then every stream ends and
    /// every call waiting fails. Cancelled (its task dropped), it does the same.
    pub async fn run(mut self) {
        while let Some(msg) = self.next().await {
            let Some(inner) = self.conn.upgrade() else {
                return;
            };
            deliver(&inner, msg).await;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(inner) = self.conn.upgrade() {
            inner.closed.store(true, Ordering::Release);
            lock(&inner.pending).clear();
            lock(&inner.streams).clear();
        }
    }
}

/// A reply to its call; anything else to each stream that wants it, waiting while a stream's
/// queue is full.
async fn deliver(inner: &Inner, msg: Message) {
    if matches!(msg.message_type(), Type::MethodReturn | Type::Error) {
        let call = msg.header().reply_serial().map(|s| s.get());
        if let Some(tx) = call.and_then(|s| lock(&inner.pending).remove(&s)) {
            let _ = tx.try_send(msg);
            return;
        }
    }
    let targets: Vec<Sender<Message>> = lock(&inner.streams)
        .iter()
        .filter(|s| {
            s.rule
                .as_ref()
                .is_none_or(|r| r.matches(&msg).unwrap_or(false))
        })
        .map(|s| s.tx.clone())
        .collect();
    for tx in targets {
        // A stream dropped meanwhile has closed its queue: the send fails at once.
        let _ = tx.send(msg.clone()).await;
    }
}

/// Removes a call from the waiting ones when its future is dropped (a timeout).
struct Waiting<'a> {
    inner: &'a Inner,
    serial: u32,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.inner.pending).remove(&self.serial);
    }
}

impl Connection {
    /// Authenticates on a connected bus socket (SASL EXTERNAL as the process's uid) and says
    /// Hello, within `timeout`. `dropped` gets the method calls the [`Framer`] drops for their
    /// size. The returned connection reads nothing until its [`Connection::reader`] runs.
    pub async fn handshake(
        stream: UnixStream,
        dropped: Option<Sender<Dropped>>,
        timeout: std::time::Duration,
    ) -> zbus::Result<Connection> {
        let socket =
            Arc::new(Async::new(stream).map_err(|e| zbus::Error::InputOutput(Arc::new(e)))?);
        let (removals, removals_rx) = smol::channel::unbounded();
        let conn = Connection {
            inner: Arc::new(Inner {
                socket: socket.clone(),
                write: smol::lock::Mutex::new(()),
                unique_name: OnceLock::new(),
                pending: Mutex::new(HashMap::new()),
                streams: Mutex::new(Vec::new()),
                next_stream: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                reader: Mutex::new(None),
                removals,
            }),
        };
        let mut reader = Reader {
            conn: Arc::downgrade(&conn.inner),
            socket,
            framer: Framer::new(caps::MAX_DBUS_MESSAGE),
            buf: Vec::new(),
            scratch: vec![0; READ_CHUNK],
            dropped,
            removals: removals_rx,
        };
        let steps = async {
            conn.hello(&mut reader).await?;
            Ok(())
        };
        let late = async {
            smol::Timer::after(timeout).await;
            Err(zbus::Error::Handshake(format!(
                "the bus did not complete authentication and Hello within {} s",
                timeout.as_secs()
            )))
        };
        smol::future::or(steps, late).await?;
        *lock(&conn.inner.reader) = Some(reader);
        Ok(conn)
    }

    async fn hello(&self, reader: &mut Reader) -> zbus::Result<()> {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.write_bytes(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .await?;
        let answer = reader.auth_line().await?;
        if !answer.starts_with("OK ") {
            return Err(zbus::Error::Handshake(format!(
                "the bus refused EXTERNAL authentication: {answer}"
            )));
        }
        self.write_bytes(b"BEGIN\r\n").await?;
        let hello = self.to_bus("Hello")?.build(&())?;
        let serial = hello.primary_header().serial_num().get();
        self.send(&hello).await?;
        loop {
            let Some(msg) = reader.next().await else {
                return Err(zbus::Error::Handshake(
                    "the bus closed the connection before answering Hello".into(),
                ));
            };
            if msg.header().reply_serial().map(|s| s.get()) != Some(serial) {
                continue;
            }
            if msg.message_type() == Type::Error {
                return Err(msg.into());
            }
            let name: String = msg.body().deserialize()?;
            let _ = self.inner.unique_name.set(name);
            return Ok(());
        }
    }

    /// The reading side, once: the owner runs it (`spawn_ticker`) for as long as it uses the
    /// connection.
    pub fn reader(&self) -> Option<Reader> {
        lock(&self.inner.reader).take()
    }

    /// The unique name the bus gave this connection.
    pub fn unique_name(&self) -> Option<&str> {
        self.inner.unique_name.get().map(String::as_str)
    }

    async fn write_bytes(&self, bytes: &[u8]) -> zbus::Result<()> {
        let _turn = self.inner.write.lock().await;
        let mut socket = &*self.inner.socket;
        socket
            .write_all(bytes)
            .await
            .map_err(|e| zbus::Error::InputOutput(Arc::new(e)))
    }

    /// Sends `msg`. Messages carrying file descriptors are refused (pathman passes none).
    pub async fn send(&self, msg: &Message) -> zbus::Result<()> {
        if !msg.data().fds().is_empty() {
            return Err(zbus::Error::Unsupported);
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        self.write_bytes(msg.data()).await
    }

    /// Answers `call` with the error `name` carrying `body` (zbus's `reply_error`).
    pub async fn reply_error<B>(
        &self,
        call: &zbus::message::Header<'_>,
        name: &str,
        body: &B,
    ) -> zbus::Result<()>
    where
        B: zbus::export::serde::Serialize + DynamicType,
    {
        let msg = Message::error(call, name).and_then(|b| self.from_self(b)?.build(body));
        self.send(&msg?).await
    }

    /// Answers `call` with `e`: its name, and its description as the body when it has one
    /// (zbus's `reply_dbus_error`).
    pub async fn reply_dbus_error(
        &self,
        call: &zbus::message::Header<'_>,
        e: impl zbus::DBusError,
    ) -> zbus::Result<()> {
        let name = e.name();
        let msg = Message::error(call, name).and_then(|b| {
            let b = self.from_self(b)?;
            match e.description() {
                Some(text) => b.build(&(text,)),
                None => b.build(&()),
            }
        });
        self.send(&msg?).await
    }

    /// `b` with this connection as its sender.
    pub fn from_self<'b>(
        &self,
        b: zbus::message::Builder<'b>,
    ) -> zbus::Result<zbus::message::Builder<'b>> {
        match self.unique_name() {
            Some(name) => b.sender(name.to_owned()),
            None => Ok(b),
        }
    }

    /// A call to the bus daemon itself (`org.freedesktop.DBus`), from this connection.
    fn to_bus(&self, member: &'static str) -> zbus::Result<zbus::message::Builder<'static>> {
        self.builder(Some(BUS), BUS_PATH, Some(BUS), member)
    }

    /// Calls the bus daemon and waits for its reply.
    async fn call_bus<B>(&self, member: &'static str, body: &B) -> zbus::Result<Message>
    where
        B: zbus::export::serde::Serialize + DynamicType,
    {
        self.call(self.to_bus(member)?.build(body)?).await
    }

    /// A method call's builder, from this connection.
    fn builder<'b>(
        &self,
        destination: Option<&'b str>,
        path: &'b str,
        interface: Option<&'b str>,
        member: &'b str,
    ) -> zbus::Result<zbus::message::Builder<'b>> {
        let mut b = Message::method_call(path, member)?;
        if let Some(name) = self.unique_name() {
            b = b.sender(name.to_owned())?;
        }
        if let Some(d) = destination {
            b = b.destination(d)?;
        }
        if let Some(i) = interface {
            b = b.interface(i)?;
        }
        Ok(b)
    }

    /// Calls a method and waits for its reply; an error reply is `zbus::Error::MethodError`.
    pub async fn call_method<B>(
        &self,
        destination: Option<&str>,
        path: &str,
        interface: Option<&str>,
        member: &str,
        body: &B,
    ) -> zbus::Result<Message>
    where
        B: zbus::export::serde::Serialize + DynamicType,
    {
        let msg = self
            .builder(destination, path, interface, member)
            .and_then(|b| b.build(body));
        self.call(msg?).await
    }

    /// Sends a method call and waits for its reply (one copy for every body type).
    async fn call(&self, msg: Message) -> zbus::Result<Message> {
        let serial = msg.primary_header().serial_num().get();
        let (tx, rx) = smol::channel::bounded(1);
        lock(&self.inner.pending).insert(serial, tx);
        let _waiting = Waiting {
            inner: &self.inner,
            serial,
        };
        self.send(&msg).await?;
        let reply = rx.recv().await.map_err(|_| closed_error())?;
        if reply.message_type() == Type::Error {
            Err(reply.into())
        } else {
            Ok(reply)
        }
    }

    /// Asks the bus for a well-known name, as zbus's `request_name` does (the flags allow
    /// replacement, replace the existing owner, do not queue): `NameTaken` when another
    /// connection keeps it.
    pub async fn request_name(&self, name: &str) -> zbus::Result<()> {
        let reply = self.call_bus("RequestName", &(name, 7u32)).await?;
        // 1 primary owner, 2 in queue, 3 exists, 4 already the owner.
        match reply.body().deserialize::<u32>()? {
            1 | 4 => Ok(()),
            _ => Err(zbus::Error::NameTaken),
        }
    }

    fn add_stream(&self, rule: Option<MatchRule<'static>>) -> MessageStream {
        let (tx, rx) = smol::channel::bounded(STREAM_QUEUE);
        let id = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let remove = rule
            .as_ref()
            .filter(|r| r.msg_type().unwrap_or(Type::Signal) == Type::Signal)
            .map(|r| r.to_string());
        if self.inner.closed.load(Ordering::Acquire) {
            drop(tx);
        } else {
            lock(&self.inner.streams).push(Subscriber { id, rule, tx });
        }
        MessageStream {
            rx,
            id,
            conn: Arc::downgrade(&self.inner),
            remove,
        }
    }

    /// Every message that arrives from now on (replies to this connection's calls excepted).
    pub fn stream(&self) -> MessageStream {
        self.add_stream(None)
    }

    /// The messages `rule` matches from now on. A signal rule is added to the bus
    /// (`AddMatch`) before this returns, and removed when the stream is dropped.
    pub async fn stream_for(&self, rule: MatchRule<'_>) -> zbus::Result<MessageStream> {
        let rule = rule.into_owned();
        let text = rule.to_string();
        let signals = rule.msg_type().unwrap_or(Type::Signal) == Type::Signal;
        let mut stream = self.add_stream(Some(rule));
        if signals {
            let added = self.call_bus("AddMatch", &(text.as_str(),)).await;
            if let Err(e) = added {
                // Not added: nothing to remove.
                stream.remove = None;
                return Err(e);
            }
        }
        Ok(stream)
    }
}

/// Messages from a [`Connection`]: see [`Connection::stream`] and [`Connection::stream_for`].
#[derive(Debug)]
pub struct MessageStream {
    rx: Receiver<Message>,
    id: u64,
    conn: Weak<Inner>,
    /// The match rule to remove from the bus when dropped.
    remove: Option<String>,
}

impl MessageStream {
    /// The next message; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await.ok()
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        self.rx.close();
        let Some(inner) = self.conn.upgrade() else {
            return;
        };
        lock(&inner.streams).retain(|s| s.id != self.id);
        if let Some(rule) = self.remove.take() {
            if !inner.closed.load(Ordering::Acquire) {
                let _ = inner.removals.try_send(rule);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(serial: u32) -> Vec<u8> {
        Message::signal("/net/connman", "net.connman.Manager", "PropertyChanged")
            .unwrap()
            .serial(std::num::NonZeroU32::new(serial).unwrap())
            .build(&("State", zbus::zvariant::Value::from("online")))
            .unwrap()
            .data()
            .to_vec()
    }

    #[test]
    fn frame_len_reads_the_fixed_header() {
        let m = msg(3);
        assert_eq!(frame_len(&m[..15]), None);
        assert_eq!(frame_len(&m), Some(Ok((m.len(), Endian::Little))));
        let mut bad = m.clone();
        bad[0] = b'x';
        assert_eq!(frame_len(&bad), Some(Err(())));
        // Lengths near u32::MAX do not overflow (they are over any cap anyway).
        let mut huge = m;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let want = 2 * u64::from(u32::MAX) + 1 + 16;
        let got = frame_len(&huge).unwrap();
        assert_eq!(
            got.map(|(n, _)| n as u64),
            usize::try_from(want).map(|n| n as u64).map_err(|_| ())
        );
    }

    /// The bus side of a socket pair, scripted. dbus-daemon itself is used by the integration
    /// tests; this stands in for what it never does on demand: stay silent, refuse, send a
    /// message that does not parse, or hang up in the middle of a call.
    struct FakeBus {
        r: std::io::BufReader<UnixStream>,
        w: UnixStream,
    }

    impl FakeBus {
        fn pair() -> (UnixStream, FakeBus) {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let w = theirs.try_clone().expect("clone");
            (
                ours,
                FakeBus {
                    r: std::io::BufReader::new(theirs),
                    w,
                },
            )
        }

        fn line(&mut self) -> String {
            use std::io::BufRead;
            let mut l = String::new();
            self.r.read_line(&mut l).expect("read line");
            l
        }

        fn message(&mut self) -> Message {
            let mut head = vec![0; 16];
            self.r.read_exact(&mut head).expect("fixed header");
            let (len, endian) = frame_len(&head).unwrap().unwrap();
            head.resize(len, 0);
            self.r.read_exact(&mut head[16..]).expect("rest");
            let data = Data::new(head, Context::new_dbus(endian, 0));
            // SAFETY: the test reads back what pathman wrote.
            unsafe { Message::from_bytes(data) }.expect("pathman writes messages")
        }

        fn write(&mut self, bytes: &[u8]) {
            use std::io::Write;
            self.w.write_all(bytes).expect("write");
        }

        /// Accepts the authentication and answers Hello (`:1.7`).
        fn accept(&mut self) {
            let auth = self.line();
            assert!(auth.starts_with("\0AUTH EXTERNAL "), "{auth:?}");
            self.write(b"OK 0123456789abcdef0123456789abcdef\r\n");
            assert_eq!(self.line(), "BEGIN\r\n");
            let hello = self.message();
            assert_eq!(hello.header().member().map(|m| m.as_str()), Some("Hello"));
            let reply = Message::method_return(&hello.header())
                .unwrap()
                .sender("org.freedesktop.DBus")
                .unwrap()
                .build(&(":1.7",))
                .unwrap();
            self.write(reply.data());
        }
    }

    fn connect(ours: UnixStream, timeout_ms: u64) -> zbus::Result<Connection> {
        smol::block_on(Connection::handshake(
            ours,
            None,
            std::time::Duration::from_millis(timeout_ms),
        ))
    }

    #[test]
    fn a_silent_bus_fails_the_handshake_in_time() {
        let (ours, _bus) = FakeBus::pair();
        let e = connect(ours, 100).expect_err("nobody answers");
        assert!(
            matches!(&e, zbus::Error::Handshake(t) if t.contains("within")),
            "{e}"
        );
    }

    #[test]
    fn refused_authentication_is_an_error_that_says_so() {
        let (ours, mut bus) = FakeBus::pair();
        let t = std::thread::spawn(move || {
            bus.line();
            bus.write(b"REJECTED EXTERNAL\r\n");
            bus
        });
        let e = connect(ours, 5000).expect_err("refused");
        assert!(e.to_string().contains("REJECTED"), "{e}");
        t.join().unwrap();
    }

    #[test]
    fn hello_gives_the_unique_name() {
        let (ours, mut bus) = FakeBus::pair();
        let t = std::thread::spawn(move || {
            bus.accept();
            bus
        });
        let conn = connect(ours, 5000).expect("handshake");
        assert_eq!(conn.unique_name(), Some(":1.7"));
        t.join().unwrap();
    }

    /// A message that does not parse is skipped and the next one arrives; when the bus hangs
    /// up, the call waiting fails and the stream ends.
    #[test]
    fn unparsable_message_skipped_then_hang_up_ends_calls_and_streams() {
        let (ours, mut bus) = FakeBus::pair();
        let peer = std::thread::spawn(move || {
            bus.accept();
            // The test's first call: the go-ahead (after its stream exists).
            let go = bus.message();
            let mut bad = msg(90);
            // The first header field's signature 'o' becomes an invalid one: the frame holds,
            // its header does not parse.
            assert_eq!(bad[18], b'o');
            bad[18] = b'!';
            bus.write(&bad);
            bus.write(&msg(91));
            let done = Message::method_return(&go.header())
                .unwrap()
                .build(&())
                .unwrap();
            bus.write(done.data());
            // The second call is never answered: the bus goes away.
            let _unanswered = bus.message();
        });
        let conn = connect(ours, 5000).expect("handshake");
        let ex = smol::LocalExecutor::new();
        smol::block_on(ex.run(async {
            let _reader = crate::dbus::bus::spawn_ticker(&ex, &conn);
            let mut stream = conn.stream();
            conn.call_method(Some("net.example"), "/", Some("net.example.T"), "Go", &())
                .await
                .expect("answered");
            let m = stream.next().await.expect("the good message");
            assert_eq!(m.primary_header().serial_num().get(), 91);
            let e = conn
                .call_method(Some("net.example"), "/", Some("net.example.T"), "Wait", &())
                .await
                .expect_err("the bus hung up");
            assert!(matches!(e, zbus::Error::InputOutput(_)), "{e}");
            assert!(stream.next().await.is_none(), "the stream ends");
            assert!(conn
                .send(
                    &Message::signal("/", "net.example.T", "After")
                        .unwrap()
                        .build(&())
                        .unwrap()
                )
                .await
                .is_err());
        }));
        peer.join().unwrap();
    }
}
