//! `session create`: a ConnMan session with the seed's multipath extensions (SPEC §5, §10).
//!
//! pathmanctl creates the session with `Manager.CreateSession`, serves the session's
//! `net.connman.Notification` object itself, prints every `Update` in the seed's layout and
//! turns lines from stdin into `Connect`, `Disconnect`, `Change` and `Destroy` calls.
//!
//! The notifier is served by reading method calls off a [`MessageStream`] by hand: an
//! `ObjectServer` would want `Send` state and a second executor, and one object with two
//! methods does not need one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::dbus::{Connection, MessageStream};
use smol::channel::{Receiver, Sender};
use smol::stream::{Stream, StreamExt};
use smol::LocalExecutor;
use zbus::message::{Flags, Type as MessageType};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};
use zbus::{MatchRule, Message};

use super::commands::{
    bad, call, no_args, one_bool, option_runs, owned, Args, CallError, CtlError, ParseError,
};
use super::format::{self, Properties, Style};
use super::monitor::Sink;
use crate::dbus::names;

/// The order in which `Update` settings are printed. zbus hands us a `HashMap`, so the daemon's
/// order is lost; a fixed order keeps the output stable and diffable. Keys not listed here
/// follow, sorted.
pub const SETTING_ORDER: [&str; 13] = [
    "State",
    "Name",
    "Bearer",
    "Interface",
    "IPv4",
    "IPv6",
    "AllowedBearers",
    "ConnectionType",
    "AllowedInterface",
    "SourceIPRule",
    "ContextIdentifier",
    "MultipathRoutedServices",
    "FlowSelectors",
];

/// Settings the daemon computes and the client can only read.
const READ_ONLY: [&str; 6] = ["State", "Name", "Bearer", "Interface", "IPv4", "IPv6"];

/// Where notifier objects live; a counter makes each session of one process unique.
pub const NOTIFIER_PATH_PREFIX: &str = "/net/connman/pathmanctl/session";

/// The prompt shown before each line of session input on a terminal.
pub const PROMPT: &str = "session> ";

/// The help for the lines a running session reads.
pub const SESSION_USAGE: &str = "\
connect                               Connect the session
disconnect                            Disconnect the session
config          <Key> [<value> ...]   Change a setting (Session.Change)
                                      AllowedBearers, FlowSelectors, MultipathRoutedServices
                                      take a list; ConnectionType, AllowedInterface,
                                      ContextIdentifier a word; SourceIPRule yes|no
config          --bearers|--type|...  The same with `session create`'s options
destroy                               Destroy the session and leave
quit                                  Destroy the session and leave
";

/// `ConnectionType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionType {
    /// Only a connected (not necessarily online) service.
    Local,
    /// Only an online service.
    Internet,
    /// Either.
    Any,
}

impl ConnectionType {
    /// The value on the bus.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Internet => "internet",
            Self::Any => "any",
        }
    }

    /// The type named `word`, if any.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "local" => Some(Self::Local),
            "internet" => Some(Self::Internet),
            "any" => Some(Self::Any),
            _ => None,
        }
    }
}

/// One writable session setting with its typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `AllowedBearers` (`as`), in order of preference.
    AllowedBearers(Vec<String>),
    /// `ConnectionType` (`s`).
    ConnectionType(ConnectionType),
    /// `AllowedInterface` (`s`).
    AllowedInterface(String),
    /// `SourceIPRule` (`b`).
    SourceIpRule(bool),
    /// `ContextIdentifier` (`s`).
    ContextIdentifier(String),
    /// `MultipathRoutedServices` (`as`), service identifiers.
    MultipathRoutedServices(Vec<String>),
    /// `FlowSelectors` (`as`), `SRC-DST-PROTO-SPORT-DPORT` each.
    FlowSelectors(Vec<String>),
}

impl Setting {
    /// The setting's key on the bus.
    pub fn key(&self) -> &'static str {
        match self {
            Self::AllowedBearers(_) => "AllowedBearers",
            Self::ConnectionType(_) => "ConnectionType",
            Self::AllowedInterface(_) => "AllowedInterface",
            Self::SourceIpRule(_) => "SourceIPRule",
            Self::ContextIdentifier(_) => "ContextIdentifier",
            Self::MultipathRoutedServices(_) => "MultipathRoutedServices",
            Self::FlowSelectors(_) => "FlowSelectors",
        }
    }

    /// The value to send, with the type the key demands.
    pub fn value(&self) -> Value<'static> {
        match self {
            Self::AllowedBearers(l) | Self::MultipathRoutedServices(l) | Self::FlowSelectors(l) => {
                Value::from(l.clone())
            }
            Self::ConnectionType(t) => Value::from(t.as_str()),
            Self::AllowedInterface(s) | Self::ContextIdentifier(s) => Value::from(s.clone()),
            Self::SourceIpRule(b) => Value::from(*b),
        }
    }

    /// The setting `key` (exact bus spelling) from the words after it; `word` names the
    /// option or key in errors, as typed.
    fn from_words(key: &'static str, word: &str, values: &[&str]) -> Result<Self, ParseError> {
        let one = || match values {
            [v] => Ok(*v),
            _ => Err(bad(word, "Expected one value")),
        };
        Ok(match key {
            "AllowedBearers" => Self::AllowedBearers(owned(values)),
            "MultipathRoutedServices" => Self::MultipathRoutedServices(owned(values)),
            "FlowSelectors" => Self::FlowSelectors(owned(values)),
            "ConnectionType" => {
                let v = one()?;
                Self::ConnectionType(ConnectionType::from_word(v).ok_or_else(|| {
                    bad(word, format!("Expected local, internet or any, not '{v}'"))
                })?)
            }
            "AllowedInterface" => Self::AllowedInterface(one()?.to_owned()),
            "ContextIdentifier" => Self::ContextIdentifier(one()?.to_owned()),
            "SourceIPRule" => Self::SourceIpRule(one_bool(word, values)?),
            _ => return Err(bad(word, "Unknown setting")),
        })
    }
}

/// The setting of a connmanctl-style option (`--bearers`, `-b`, …) and its values.
fn option_setting(word: &str, values: &[&str]) -> Result<Setting, ParseError> {
    let key = match word {
        "--bearers" | "-b" => "AllowedBearers",
        "--type" | "-t" => "ConnectionType",
        "--ifname" | "-i" => "AllowedInterface",
        "--srciprule" | "-s" => "SourceIPRule",
        "--ctxid" | "-c" => "ContextIdentifier",
        "--flows" | "-f" => "FlowSelectors",
        "--mpath-services" | "--mpath_services" | "-m" => "MultipathRoutedServices",
        _ => return Err(bad(word, "Unknown option")),
    };
    Setting::from_words(key, word, values)
}

/// What `session create` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateOptions {
    /// The settings given, in command-line order (a repeated key: the last one counts).
    pub settings: Vec<Setting>,
    /// Call `Session.Connect` once the session exists.
    pub connect: bool,
}

impl CreateOptions {
    /// The `CreateSession` settings dictionary: only the keys given.
    pub fn settings_dict(&self) -> HashMap<&'static str, Value<'static>> {
        self.settings.iter().map(|s| (s.key(), s.value())).collect()
    }
}

/// Parses the words after `session create`.
pub fn parse_create(words: &[&str]) -> Result<CreateOptions, ParseError> {
    let mut options = CreateOptions::default();
    for (word, values) in option_runs(words) {
        if word == "--connect" {
            if !values.is_empty() {
                return Err(bad(word, "Takes no value"));
            }
            options.connect = true;
            continue;
        }
        options.settings.push(option_setting(word, values)?);
    }
    Ok(options)
}

/// A line of input to a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionInput {
    /// `connect`: Session.Connect.
    Connect,
    /// `disconnect`: Session.Disconnect.
    Disconnect,
    /// `config …`: one Session.Change per setting, in order.
    Change(Vec<Setting>),
    /// `destroy`: Session.Destroy, then leave.
    Destroy,
    /// `quit`/`exit`: the same as `destroy`.
    Quit,
    /// `help`: print [`SESSION_USAGE`].
    Help,
}

/// Parses one line of session input; `None` for a blank line. A leading `session` word is
/// ignored, so the seed's `session config FlowSelectors …` works as typed.
pub fn parse_input(line: &str) -> Result<Option<SessionInput>, ParseError> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.first() == Some(&"session") {
        words.remove(0);
    }
    let Some((cmd, rest)) = words.split_first() else {
        return Ok(None);
    };
    let no_args = |input| no_args(cmd, rest).map(|()| Some(input));
    match *cmd {
        "connect" => no_args(SessionInput::Connect),
        "disconnect" => no_args(SessionInput::Disconnect),
        "destroy" => no_args(SessionInput::Destroy),
        "quit" | "exit" => no_args(SessionInput::Quit),
        "help" => no_args(SessionInput::Help),
        "config" => parse_config(rest).map(|s| Some(SessionInput::Change(s))),
        other => Err(ParseError::UnknownCommand(other.to_owned())),
    }
}

/// `config KEY VALUE…` or `config --option VALUE… [--option VALUE…]`.
fn parse_config(words: &[&str]) -> Result<Vec<Setting>, ParseError> {
    match words {
        [] => Err(bad("config", "Expected a setting and its value")),
        [first, ..] if first.starts_with('-') => option_runs(words)
            .into_iter()
            .map(|(word, values)| option_setting(word, values))
            .collect(),
        [name, values @ ..] => {
            // Keys are matched without regard to case: `sourceiprule` is not worth an error.
            let key = SETTING_ORDER
                .iter()
                .copied()
                .find(|k| k.eq_ignore_ascii_case(name))
                .ok_or_else(|| bad(name, "Unknown setting"))?;
            if READ_ONLY.contains(&key) {
                return Err(bad(name, "Read-only setting"));
            }
            Setting::from_words(key, name, values).map(|s| vec![s])
        }
    }
}

/// One `Update` in the seed's layout: `Update called at <notifier>`, then ` Key = value` per
/// setting in [`SETTING_ORDER`], others sorted after.
pub fn update_text(notifier: &str, settings: &Properties) -> String {
    let mut others: Vec<&str> = settings
        .keys()
        .map(String::as_str)
        .filter(|k| !SETTING_ORDER.contains(k))
        .collect();
    crate::sort::sort(&mut others);
    let entries = SETTING_ORDER
        .iter()
        .copied()
        .chain(others)
        .filter_map(|k| settings.get(k).map(|v| (k, v)));
    let mut out = format!("Update called at {notifier}\n");
    out.push_str(&format::property_lines(entries, " ", Style::Seed));
    out
}

/// The notifier path for the next session of this process.
pub fn next_notifier_path() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{NOTIFIER_PATH_PREFIX}{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the notifier and the bus watcher tell the input loop.
enum Event {
    /// The daemon called `Release`.
    Released,
    /// pathman left the bus without releasing the session.
    DaemonGone,
    /// The bus connection closed.
    Closed,
    /// Output could not be written.
    Output(std::io::Error),
}

/// Notifier output held back until `Session created at` is printed, so the first `Update`
/// (which the daemon may send before it replies to `CreateSession`) never comes first.
enum Gate {
    Holding(Vec<String>),
    Open,
}

/// Writes `text` to `out` and flushes: Updates are read by people and scripts as they come.
fn write_now(out: &Sink, text: &str) -> std::io::Result<()> {
    let mut out = out.borrow_mut();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn emit(gate: &RefCell<Gate>, out: &Sink, events: &Sender<Event>, text: String) {
    let mut gate = gate.borrow_mut();
    match &mut *gate {
        Gate::Holding(held) => held.push(text),
        Gate::Open => {
            if let Err(e) = write_now(out, &text) {
                let _ = events.try_send(Event::Output(e));
            }
        }
    }
}

/// Serves `net.connman.Notification` at `notifier` from `stream` (method calls to that path).
async fn serve_notifier(
    conn: Connection,
    mut stream: MessageStream,
    notifier: String,
    out: Sink,
    gate: Rc<RefCell<Gate>>,
    events: Sender<Event>,
) {
    while let Some(msg) = stream.next().await {
        let (reply, text, released) = handle_call(&msg, &notifier);
        let header = msg.header();
        if !header.primary().flags().contains(Flags::NoReplyExpected) {
            // A failed reply only means the daemon went away; the bus watcher reports that.
            let _ = match reply {
                Ok(()) => crate::dbus::client::reply(&conn, &header, &()).await,
                Err(e) => conn.reply_dbus_error(&header, e).await,
            };
        }
        if let Some(text) = text {
            emit(&gate, &out, &events, text);
        }
        if released {
            let _ = events.try_send(Event::Released);
            return;
        }
    }
    let _ = events.try_send(Event::Closed);
}

/// What to answer to one method call at the notifier path, what to print, and whether the
/// session was released.
fn handle_call(
    msg: &Message,
    notifier: &str,
) -> (Result<(), zbus::fdo::Error>, Option<String>, bool) {
    let header = msg.header();
    let member = header.member().map(|m| m.as_str().to_owned());
    let interface = header.interface().map(|i| i.as_str().to_owned());
    if interface.as_deref() != Some(names::NOTIFICATION_INTERFACE) {
        let e = zbus::fdo::Error::UnknownInterface(format!(
            "{notifier} only serves {}",
            names::NOTIFICATION_INTERFACE
        ));
        return (Err(e), None, false);
    }
    match member.as_deref() {
        Some("Update") => match msg.body().deserialize::<Properties>() {
            Ok(settings) => (Ok(()), Some(update_text(notifier, &settings)), false),
            Err(e) => (
                Err(zbus::fdo::Error::InvalidArgs(format!(
                    "Update expects a{{sv}}: {e}"
                ))),
                None,
                false,
            ),
        },
        Some("Release") => (Ok(()), Some("Session released\n".to_owned()), true),
        other => (
            Err(zbus::fdo::Error::UnknownMethod(format!(
                "no method {} on {}",
                other.unwrap_or(""),
                names::NOTIFICATION_INTERFACE
            ))),
            None,
            false,
        ),
    }
}

/// Watches for pathman losing `net.connman` (a crash sends no `Release`).
async fn watch_daemon(mut stream: MessageStream, events: Sender<Event>) {
    while let Some(msg) = stream.next().await {
        if let Ok((_, _, new_owner)) = msg.body().deserialize::<(String, String, String)>() {
            if new_owner.is_empty() {
                let _ = events.try_send(Event::DaemonGone);
                return;
            }
        }
    }
}

async fn name_owner_stream(conn: &Connection) -> zbus::Result<MessageStream> {
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender("org.freedesktop.DBus")?
        .interface("org.freedesktop.DBus")?
        .member("NameOwnerChanged")?
        .arg(0, names::BUS_NAME)?
        .build();
    conn.stream_for(rule).await
}

async fn notifier_stream(conn: &Connection, notifier: &str) -> zbus::Result<MessageStream> {
    let rule = MatchRule::builder()
        .msg_type(MessageType::MethodCall)
        .path(notifier)?
        .build();
    conn.stream_for(rule).await
}

/// Calls `member` on the session object.
async fn session_call(
    conn: &Connection,
    session: &str,
    member: &str,
    body: &Args<'_>,
) -> Result<(), CallError> {
    call::<()>(conn, session, names::SESSION_INTERFACE, member, body).await
}

/// What a line of input led to.
enum Next {
    Continue,
    Leave,
}

/// Runs one session: creates it with `options`, serves its notifier (printing every `Update`
/// to `out`), and acts on `input` lines until `destroy`, `quit`, end of input, or `Release`.
///
/// Errors of `Connect`/`Disconnect`/`Change` are printed to `out` as `Error <what>: <message>`
/// and the session goes on; a failed `CreateSession`, a failed final `Destroy`, a lost bus or
/// daemon, and unwritable output are returned.
pub async fn run<S>(
    ex: &LocalExecutor<'static>,
    conn: &Connection,
    options: &CreateOptions,
    input: S,
    out: Sink,
    prompt: bool,
) -> Result<(), CtlError>
where
    S: Stream<Item = std::io::Result<String>>,
{
    let failed = |e: zbus::Error| CtlError::Call {
        context: "session".into(),
        reason: e.to_string(),
    };
    let notifier = next_notifier_path();
    let notifier_obj = ObjectPath::try_from(notifier.as_str()).map_err(|e| failed(e.into()))?;
    // Both streams exist before CreateSession, so neither the first Update nor the daemon
    // leaving right after can be missed.
    let calls = notifier_stream(conn, &notifier).await.map_err(failed)?;
    let owners = name_owner_stream(conn).await.map_err(failed)?;
    let (tx, rx) = smol::channel::unbounded();
    let gate = Rc::new(RefCell::new(Gate::Holding(Vec::new())));
    // The notifier answers at once even while output is held: a daemon that waits for the
    // first Update's reply before answering CreateSession must not deadlock with us.
    let _notifier_task = ex.spawn(serve_notifier(
        conn.clone(),
        calls,
        notifier.clone(),
        out.clone(),
        gate.clone(),
        tx.clone(),
    ));
    let _watch_task = ex.spawn(watch_daemon(owners, tx));

    let session: OwnedObjectPath = call(
        conn,
        names::MANAGER_PATH,
        names::MANAGER_INTERFACE,
        "CreateSession",
        &Args::of((options.settings_dict(), notifier_obj)),
    )
    .await
    .map_err(|e| e.in_context("session"))?;
    let session = session.as_str().to_owned();
    write_now(&out, &format!("Session created at {session}\n"))?;
    let held = match std::mem::replace(&mut *gate.borrow_mut(), Gate::Open) {
        Gate::Holding(held) => held,
        Gate::Open => Vec::new(),
    };
    for text in held {
        write_now(&out, &text)?;
    }
    if options.connect {
        call_and_report(conn, &session, "Connect", &Args::NONE, "connect", &out).await?;
    }

    smol::pin!(input);
    loop {
        if prompt {
            write_now(&out, PROMPT)?;
        }
        let line = smol::future::or(async { Ok(input.next().await) }, async {
            Err(next_event(&rx).await)
        })
        .await;
        let line = match line {
            Ok(Some(Ok(line))) => line,
            // End of input (or an unreadable stdin) ends the session like `quit`.
            Ok(None) | Ok(Some(Err(_))) => return destroy(conn, &session).await,
            Err(Event::Released) => return Ok(()),
            Err(Event::DaemonGone) => {
                write_now(&out, "Session lost: pathman left the bus\n")?;
                return Err(CtlError::NotRunning);
            }
            Err(Event::Closed) => {
                return Err(CtlError::Call {
                    context: "session".into(),
                    reason: "bus connection closed".into(),
                })
            }
            Err(Event::Output(e)) => {
                // Nobody can see the session any more; take it down before reporting.
                let _ = destroy(conn, &session).await;
                return Err(CtlError::Output(e));
            }
        };
        match act(conn, &session, &line, &out).await? {
            Next::Continue => {}
            Next::Leave => return Ok(()),
        }
    }
}

async fn next_event(rx: &Receiver<Event>) -> Event {
    // Both senders gone means both tasks ended without a word, which only a closed bus does.
    rx.recv().await.unwrap_or(Event::Closed)
}

async fn destroy(conn: &Connection, session: &str) -> Result<(), CtlError> {
    session_call(conn, session, "Destroy", &Args::NONE)
        .await
        .map_err(|e| e.in_context(session))
}

/// Calls `member` on the session and prints a failure as `Error <what>: <message>`; the
/// session goes on, so only output failures are returned.
async fn call_and_report(
    conn: &Connection,
    session: &str,
    member: &str,
    body: &Args<'_>,
    what: &str,
    out: &Sink,
) -> Result<(), CtlError> {
    if let Err(e) = session_call(conn, session, member, body).await {
        write_now(out, &format!("{}\n", e.in_context(what)))?;
    }
    Ok(())
}

async fn act(conn: &Connection, session: &str, line: &str, out: &Sink) -> Result<Next, CtlError> {
    let input = match parse_input(line) {
        Ok(Some(input)) => input,
        Ok(None) => return Ok(Next::Continue),
        Err(e) => {
            write_now(out, &format!("{e}\n"))?;
            return Ok(Next::Continue);
        }
    };
    match input {
        SessionInput::Connect => {
            call_and_report(conn, session, "Connect", &Args::NONE, "connect", out).await?;
        }
        SessionInput::Disconnect => {
            call_and_report(conn, session, "Disconnect", &Args::NONE, "disconnect", out).await?;
        }
        SessionInput::Change(settings) => {
            for setting in settings {
                let body = Args::of((setting.key(), setting.value()));
                call_and_report(conn, session, "Change", &body, setting.key(), out).await?;
            }
        }
        SessionInput::Help => write_now(out, SESSION_USAGE)?,
        SessionInput::Destroy | SessionInput::Quit => {
            destroy(conn, session).await?;
            return Ok(Next::Leave);
        }
    }
    Ok(Next::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::test_util::{ov, props};

    fn full_update() -> Properties {
        let mut ipv4: HashMap<String, Value<'static>> = HashMap::new();
        ipv4.insert("Method".into(), Value::from("dhcp"));
        ipv4.insert("Address".into(), Value::from("198.18.1.146"));
        ipv4.insert("Netmask".into(), Value::from("255.255.255.0"));
        let ipv6: HashMap<String, Value<'static>> = HashMap::new();
        props(vec![
            ("Name", Value::from("Wired")),
            ("AllowedBearers", Value::from(vec!["ethernet"])),
            ("IPv6", Value::from(ipv6)),
            ("Bearer", Value::from("ethernet")),
            ("ConnectionType", Value::from("any")),
            ("State", Value::from("connected")),
            ("FlowSelectors", Value::from(vec!["*-*-udp-7777-8888"])),
            (
                "MultipathRoutedServices",
                Value::from(vec![
                    "ethernet_02504d000002_cable",
                    "ethernet_02504d000003_cable",
                ]),
            ),
            ("IPv4", Value::from(ipv4)),
            ("Interface", Value::from("eth0")),
            ("AllowedInterface", Value::from("*")),
            ("SourceIPRule", Value::from(false)),
            ("ContextIdentifier", Value::from("")),
        ])
    }

    #[test]
    fn full_update_in_seed_layout() {
        assert_eq!(
            update_text("/net/connman/pathmanctl/session0", &full_update()),
            "Update called at /net/connman/pathmanctl/session0\n\
             \x20State = connected\n\
             \x20Name = Wired\n\
             \x20Bearer = ethernet\n\
             \x20Interface = eth0\n\
             \x20IPv4 = { Address=198.18.1.146 Method=dhcp Netmask=255.255.255.0 }\n\
             \x20IPv6 = { }\n\
             \x20AllowedBearers = [ ethernet ]\n\
             \x20ConnectionType = any\n\
             \x20AllowedInterface = *\n\
             \x20SourceIPRule = false\n\
             \x20ContextIdentifier = \n\
             \x20MultipathRoutedServices = [ ethernet_02504d000002_cable ethernet_02504d000003_cable ]\n\
             \x20FlowSelectors = [ *-*-udp-7777-8888 ]\n"
        );
    }

    #[test]
    fn partial_and_unknown_keys() {
        let p = props(vec![
            ("Zeta", Value::from(true)),
            ("MultipathRoutedServices", Value::from(Vec::<String>::new())),
            ("Alpha", Value::U32(3)),
        ]);
        assert_eq!(
            update_text("/n", &p),
            "Update called at /n\n MultipathRoutedServices = [ ]\n Alpha = 3\n Zeta = true\n"
        );
        assert_eq!(
            update_text("/n", &Properties::new()),
            "Update called at /n\n"
        );
    }

    #[test]
    fn notifier_paths_are_valid_and_distinct() {
        let a = next_notifier_path();
        let b = next_notifier_path();
        assert_ne!(a, b);
        assert!(ObjectPath::try_from(a.as_str()).is_ok(), "{a}");
        assert!(a.starts_with(NOTIFIER_PATH_PREFIX));
    }

    fn create(line: &str) -> Result<CreateOptions, ParseError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse_create(&words)
    }

    #[test]
    fn create_options() {
        assert_eq!(create(""), Ok(CreateOptions::default()));
        let o = create(
            "--bearers ethernet wifi --type internet --ifname eth0 --srciprule yes \
             --ctxid app1 --flows *-*-tcp-1111-2222 *-*-udp-7777-8888 \
             --mpath-services ethernet_1_cable --connect",
        );
        assert_eq!(
            o,
            Ok(CreateOptions {
                settings: vec![
                    Setting::AllowedBearers(vec!["ethernet".into(), "wifi".into()]),
                    Setting::ConnectionType(ConnectionType::Internet),
                    Setting::AllowedInterface("eth0".into()),
                    Setting::SourceIpRule(true),
                    Setting::ContextIdentifier("app1".into()),
                    Setting::FlowSelectors(vec![
                        "*-*-tcp-1111-2222".into(),
                        "*-*-udp-7777-8888".into()
                    ]),
                    Setting::MultipathRoutedServices(vec!["ethernet_1_cable".into()]),
                ],
                connect: true,
            })
        );
        assert_eq!(
            create("-b -t local").map(|o| o.settings),
            Ok(vec![
                Setting::AllowedBearers(vec![]),
                Setting::ConnectionType(ConnectionType::Local)
            ])
        );
    }

    #[test]
    fn create_dict_has_only_the_given_keys_with_their_types() {
        let o = match create("--srciprule no --bearers ethernet --type any") {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        let d = o.settings_dict();
        let mut keys: Vec<&str> = d.keys().copied().collect();
        crate::sort::sort(&mut keys);
        assert_eq!(keys, ["AllowedBearers", "ConnectionType", "SourceIPRule"]);
        let sig = |k: &str| d.get(k).map(|v| v.value_signature().to_string());
        assert_eq!(sig("AllowedBearers").as_deref(), Some("as"));
        assert_eq!(sig("ConnectionType").as_deref(), Some("s"));
        assert_eq!(sig("SourceIPRule").as_deref(), Some("b"));
    }

    #[test]
    fn create_errors() {
        let err = |line: &str| create(line).map_err(|e| e.to_string()).err();
        assert_eq!(
            err("--bogus"),
            Some("Error '--bogus': Unknown option".into())
        );
        assert_eq!(
            err("--type everywhere"),
            Some("Error '--type': Expected local, internet or any, not 'everywhere'".into())
        );
        assert_eq!(
            err("--srciprule maybe"),
            Some("Error '--srciprule': Expected yes or no, not 'maybe'".into())
        );
        for line in ["--srciprule", "--ifname a b", "--connect now", "ethernet"] {
            assert!(err(line).is_some(), "{line}");
        }
    }

    fn input(line: &str) -> Result<Option<SessionInput>, ParseError> {
        parse_input(line)
    }

    #[test]
    fn input_lines() {
        assert_eq!(input("connect"), Ok(Some(SessionInput::Connect)));
        assert_eq!(input("  disconnect "), Ok(Some(SessionInput::Disconnect)));
        assert_eq!(input("destroy"), Ok(Some(SessionInput::Destroy)));
        assert_eq!(input("quit"), Ok(Some(SessionInput::Quit)));
        assert_eq!(input("exit"), Ok(Some(SessionInput::Quit)));
        assert_eq!(input("help"), Ok(Some(SessionInput::Help)));
        assert_eq!(input(""), Ok(None));
        assert_eq!(input("session"), Ok(None));
        assert_eq!(
            input("frob"),
            Err(ParseError::UnknownCommand("frob".into()))
        );
        assert!(input("connect now").is_err());
    }

    /// The changes a `config` line asks for, as `Key (signature) = value`.
    fn change(line: &str) -> Vec<String> {
        match input(line) {
            Ok(Some(SessionInput::Change(settings))) => settings
                .iter()
                .map(|s| {
                    let v = s.value();
                    let text = format::value_styled(&v, Style::Seed);
                    format!("{} ({}) = {text}", s.key(), v.value_signature())
                })
                .collect(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn config_lines_are_typed_by_key() {
        let cases: [(&str, &[&str]); 9] = [
            (
                "session config FlowSelectors *-*-* *-*-udp-7777-8888",
                &["FlowSelectors (as) = [ *-*-* *-*-udp-7777-8888 ]"],
            ),
            ("config AllowedBearers", &["AllowedBearers (as) = [ ]"]),
            (
                "config MultipathRoutedServices ethernet_1_cable",
                &["MultipathRoutedServices (as) = [ ethernet_1_cable ]"],
            ),
            (
                "config ConnectionType internet",
                &["ConnectionType (s) = internet"],
            ),
            (
                "config allowedinterface eth1",
                &["AllowedInterface (s) = eth1"],
            ),
            (
                "config ContextIdentifier app",
                &["ContextIdentifier (s) = app"],
            ),
            ("config SourceIPRule yes", &["SourceIPRule (b) = true"]),
            ("config SourceIPRule false", &["SourceIPRule (b) = false"]),
            (
                "config --bearers wifi ethernet --srciprule no",
                &[
                    "AllowedBearers (as) = [ wifi ethernet ]",
                    "SourceIPRule (b) = false",
                ],
            ),
        ];
        for (line, want) in cases {
            assert_eq!(change(line), want, "{line}");
        }
    }

    #[test]
    fn config_errors() {
        let err = |line: &str| input(line).map_err(|e| e.to_string()).err();
        assert_eq!(
            err("config Bogus 1"),
            Some("Error 'Bogus': Unknown setting".into())
        );
        assert_eq!(
            err("config State online"),
            Some("Error 'State': Read-only setting".into())
        );
        assert_eq!(
            err("config SourceIPRule maybe"),
            Some("Error 'SourceIPRule': Expected yes or no, not 'maybe'".into())
        );
        for line in [
            "config SourceIPRule",
            "config SourceIPRule yes no",
            "config ConnectionType sometimes",
            "config AllowedInterface",
            "config",
            "config --bogus x",
        ] {
            assert!(err(line).is_some(), "{line}");
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_input_never_panics(line in any::<String>()) {
                let _ = parse_input(&line);
            }

            #[test]
            fn one_line_per_setting(keys in prop::collection::hash_set("[A-Za-z]{1,12}", 0..10)) {
                let p: Properties = keys.iter().map(|k| (k.clone(), ov(Value::from(true)))).collect();
                let text = update_text("/n", &p);
                prop_assert_eq!(text.lines().count(), p.len() + 1);
            }
        }
    }
}
