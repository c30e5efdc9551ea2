//! `agent on|off`: pathmanctl as the `net.connman.Agent` that answers the daemon's requests
//! for secrets (SPEC §10, connman.md §1.5), in interactive mode only, as connmanctl.
//!
//! Two halves:
//! - pure: [`parse_fields`] reads a `RequestInput` fields dictionary (untrusted: wrong types
//!   are ignored, sizes capped), [`Dialog`] turns the fields into prompts and typed lines into
//!   the answer dictionary or a cancel, [`parse_yes_no`] reads `Retry (yes/no)?` answers;
//! - thin D-Bus glue: [`Agent`] registers [`AGENT_PATH`], reads method calls for it off a
//!   [`MessageStream`] in a task of its own (so `Cancel` and `Release` are answered at once,
//!   even while the user is typing), and hands requests to the interactive loop, which runs
//!   their dialogs on the terminal between commands or while a command waits for its reply.

use std::collections::{HashMap, VecDeque};
use std::future::Future;

use crate::dbus::{Connection, MessageStream};
use smol::channel::{Receiver, Sender, TrySendError};
use smol::{LocalExecutor, Task};
use zbus::message::{Flags, Type as MessageType};
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};
use zbus::{MatchRule, Message};

use super::commands::{call, Args, CallError, CtlError};
use super::format::{self, Properties};
use super::monitor::Sink;
use super::LineReader;
use crate::dbus::names;

/// The object pathmanctl serves `net.connman.Agent` at (one agent per process).
pub const AGENT_PATH: &str = "/net/pathman/ctl/agent";

/// Fields of one request that are looked at; the rest are ignored (and counted).
pub const MAX_FIELDS: usize = 32;
/// Characters of any one string from the daemon that are kept or shown.
pub const MAX_TEXT: usize = 512;
/// Requests waiting for their turn; more are answered `Canceled` at once.
pub const MAX_PENDING: usize = 8;
/// Longest SSID (IEEE 802.11), in bytes.
pub const MAX_SSID: usize = 32;

/// Error names of the agent interface.
pub const ERROR_CANCELED: &str = "net.connman.Agent.Error.Canceled";
/// `ReportError` answer asking the daemon to try again.
pub const ERROR_RETRY: &str = "net.connman.Agent.Error.Retry";

/// The fields pathmanctl asks for, in the order it asks, with connmanctl's prompts.
pub const PROMPTS: [(&str, &str); 6] = [
    ("Name", "Hidden SSID name? "),
    ("Identity", "EAP username? "),
    ("Passphrase", "Passphrase? "),
    ("WPS", "WPS PIN (empty line for pushbutton)? "),
    ("Username", "WISPr username? "),
    ("Password", "WISPr password? "),
];

/// The question after a `ReportError`.
pub const RETRY_PROMPT: &str = "Retry (yes/no)? ";

/// A field's `Requirement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Must be answered; an empty answer cancels (unless an alternate is offered).
    Mandatory,
    /// Asked; an empty answer leaves it out.
    Optional,
    /// Only asked instead of a mandatory field that lists it in `Alternates`.
    Alternate,
    /// Shown, never asked (`PreviousPassphrase`), and any value not understood.
    Informational,
}

impl Requirement {
    fn from_word(word: Option<&str>) -> Self {
        match word {
            // ConnMan always sends one; a daemon that leaves it out still gets its answer.
            None | Some("mandatory") => Self::Mandatory,
            Some("optional") => Self::Optional,
            Some("alternate") => Self::Alternate,
            Some(_) => Self::Informational,
        }
    }
}

/// One entry of a `RequestInput` fields dictionary, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The key (`Passphrase`, `Name`, …), clipped to [`MAX_TEXT`].
    pub name: String,
    /// `Type` (`psk`, `wep`, `passphrase`, `response`, `ssid`, `wpspin`, `string`).
    pub kind: Option<String>,
    /// `Requirement`.
    pub requirement: Requirement,
    /// `Value` (informational fields).
    pub value: Option<String>,
    /// `Alternates`: other fields that may be answered instead.
    pub alternates: Vec<String>,
}

/// `s` cut to [`MAX_TEXT`] characters.
fn clip(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// `v` without its variant wrappers (a few levels; deeper nesting is left as it is).
fn peel<'v, 'a>(mut v: &'v Value<'a>) -> &'v Value<'a> {
    for _ in 0..4 {
        match v {
            Value::Value(inner) => v = inner,
            _ => break,
        }
    }
    v
}

fn text_of(v: &Value<'_>) -> Option<String> {
    match peel(v) {
        Value::Str(s) => Some(clip(s.as_str())),
        _ => None,
    }
}

/// The fields of a `RequestInput`, sorted by name, at most [`MAX_FIELDS`]. An entry whose value
/// is not a dictionary is skipped; arguments of the wrong type count as absent.
pub fn parse_fields(fields: &Properties) -> Vec<Field> {
    let mut keys: Vec<&String> = fields.keys().collect();
    crate::sort::sort(&mut keys);
    keys.into_iter()
        .take(MAX_FIELDS)
        .filter_map(|key| {
            let Value::Dict(args) = peel(&fields[key]) else {
                return None;
            };
            let mut field = Field {
                name: clip(key),
                kind: None,
                requirement: Requirement::Mandatory,
                value: None,
                alternates: Vec::new(),
            };
            let mut requirement = None;
            for (k, v) in args.iter().take(MAX_FIELDS) {
                let Some(k) = text_of(k) else { continue };
                match k.as_str() {
                    "Type" => field.kind = text_of(v),
                    "Requirement" => requirement = text_of(v),
                    "Value" => field.value = text_of(v),
                    "Alternates" => {
                        if let Value::Array(a) = peel(v) {
                            field.alternates =
                                a.iter().take(MAX_FIELDS).filter_map(text_of).collect();
                        }
                    }
                    _ => {}
                }
            }
            field.requirement = Requirement::from_word(requirement.as_deref());
            Some(field)
        })
        .collect()
}

/// What a request looks like on the terminal before its first prompt: a header line naming
/// the service, then the fields (sorted, capped), then a blank line.
pub fn request_text(method: &str, service: &str, fields: &Properties) -> String {
    let mut out = format!(
        "Agent {method} {}\n",
        clip(names::last_path_element(service))
    );
    let mut keys: Vec<&String> = fields.keys().collect();
    crate::sort::sort(&mut keys);
    for key in keys.iter().take(MAX_FIELDS) {
        let value = format::value(&fields[*key]);
        let line = format::property_lines(
            [(clip(key), &fields[*key])],
            "  ",
            format::Style::Connmanctl,
        );
        // property_lines escapes control characters; only the length needs a cap here.
        if value.chars().count() > MAX_TEXT {
            out.push_str(&clip(line.trim_end()));
            out.push_str(" …\n");
        } else {
            out.push_str(&line);
        }
    }
    if keys.len() > MAX_FIELDS {
        out.push_str(&format!(
            "  ({} more fields ignored)\n",
            keys.len() - MAX_FIELDS
        ));
    }
    out.push('\n');
    out
}

/// A report (`ReportError`, `RequestBrowser`): header line and the indented text.
pub fn report_text(method: &str, service: &str, text: &str) -> String {
    let mut line = String::new();
    line.push_str(&format::value(&Value::from(clip(text).as_str())));
    format!(
        "Agent {method} {}\n  {line}\n",
        clip(names::last_path_element(service))
    )
}

/// What to do with an empty answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    /// Cancel the request (or ask the alternates instead, if any).
    Cancel,
    /// Leave the field out.
    Skip,
    /// Answer the empty string (WPS: push-button).
    Accept,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ask {
    field: &'static str,
    prompt: &'static str,
    empty: Empty,
    alternates: Vec<&'static str>,
}

/// What the dialog wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Show `note` (if any) on its own line, then `prompt`, and read a line.
    Ask {
        /// Why the last answer was not taken.
        note: Option<&'static str>,
        /// The question.
        prompt: &'static str,
    },
    /// Reply with these answers (field, value), in the order asked.
    Done(Vec<(String, String)>),
    /// Reply `net.connman.Agent.Error.Canceled`.
    Canceled,
}

/// The questions of one `RequestInput`, answered one line at a time.
#[derive(Debug, Clone)]
pub struct Dialog {
    asks: VecDeque<Ask>,
    answers: Vec<(String, String)>,
    note: Option<&'static str>,
    canceled: bool,
}

fn prompt_of(name: &str) -> Option<(&'static str, &'static str)> {
    PROMPTS.iter().copied().find(|(n, _)| *n == name)
}

impl Dialog {
    /// The dialog for `fields`: every known mandatory or optional field in [`PROMPTS`] order.
    /// A request with nothing to ask is [`Step::Done`] at once with no answers.
    pub fn new(fields: &[Field]) -> Self {
        let offered = |name: &str, req: Requirement| {
            fields
                .iter()
                .any(|f| f.name == name && f.requirement == req)
        };
        let mut asks = VecDeque::new();
        for (name, prompt) in PROMPTS {
            let Some(field) = fields.iter().find(|f| f.name == name) else {
                continue;
            };
            let empty = match field.requirement {
                Requirement::Mandatory if name == "WPS" => Empty::Accept,
                Requirement::Mandatory => Empty::Cancel,
                Requirement::Optional => Empty::Skip,
                Requirement::Alternate | Requirement::Informational => continue,
            };
            // Alternates are asked in PROMPTS order, and only those offered as alternates.
            let alternates = PROMPTS
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| field.alternates.iter().any(|a| a == n))
                .filter(|n| offered(n, Requirement::Alternate))
                .collect();
            asks.push_back(Ask {
                field: name,
                prompt,
                empty,
                alternates,
            });
        }
        Self {
            asks,
            answers: Vec::new(),
            note: None,
            canceled: false,
        }
    }

    /// Where the dialog stands.
    pub fn step(&self) -> Step {
        if self.canceled {
            return Step::Canceled;
        }
        match self.asks.front() {
            Some(ask) => Step::Ask {
                note: self.note,
                prompt: ask.prompt,
            },
            None => Step::Done(self.answers.clone()),
        }
    }

    /// Takes the answer to the current question: a line without its newline, or `None` at end
    /// of input (which cancels).
    pub fn answer(&mut self, line: Option<&str>) -> Step {
        self.note = None;
        let Some(ask) = self.asks.front().cloned() else {
            return self.step();
        };
        let Some(line) = line else {
            self.canceled = true;
            return self.step();
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            self.asks.pop_front();
            match ask.empty {
                Empty::Cancel if ask.alternates.is_empty() => self.canceled = true,
                Empty::Cancel => {
                    for alt in ask.alternates.iter().rev() {
                        if let Some((field, prompt)) = prompt_of(alt) {
                            self.asks.push_front(Ask {
                                field,
                                prompt,
                                empty: if field == "WPS" {
                                    Empty::Accept
                                } else {
                                    Empty::Cancel
                                },
                                alternates: Vec::new(),
                            });
                        }
                    }
                }
                Empty::Skip => {}
                Empty::Accept => self.answers.push((ask.field.to_owned(), String::new())),
            }
            return self.step();
        }
        if ask.field == "Name" && line.len() > MAX_SSID {
            self.note = Some("An SSID is at most 32 bytes");
            return self.step();
        }
        self.asks.pop_front();
        self.answers.push((ask.field.to_owned(), line.to_owned()));
        self.step()
    }
}

/// A yes/no answer (`yes`, `y`, `no`, `n`, any case, surrounding blanks ignored); `None` for
/// anything else, which asks again.
pub fn parse_yes_no(line: &str) -> Option<bool> {
    let word = line.trim();
    if word.eq_ignore_ascii_case("yes") || word.eq_ignore_ascii_case("y") {
        Some(true)
    } else if word.eq_ignore_ascii_case("no") || word.eq_ignore_ascii_case("n") {
        Some(false)
    } else {
        None
    }
}

/// The reply body of a finished dialog: each answer as a string variant.
pub fn answer_dict(answers: &[(String, String)]) -> HashMap<String, Value<'static>> {
    answers
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect()
}

// ------------------------------------------------------------------------- D-Bus glue

/// A call to the agent object, handed to the interactive loop.
pub(super) enum Incoming {
    /// `RequestInput`: `text` is shown, then the dialog for `fields` runs.
    Input {
        msg: Message,
        text: String,
        fields: Vec<Field>,
    },
    /// `ReportError`: `text` is shown, then `Retry (yes/no)?`.
    Error { msg: Message, text: String },
    /// `RequestBrowser`: `text` (with the URL) is shown and the call answered `Canceled`.
    Browser { msg: Message, text: String },
    /// `Cancel`: abandon the request being asked (already answered).
    Cancel,
    /// `Release`: the daemon forgot the agent (already answered).
    Release,
    /// The bus connection closed.
    Closed,
}

/// pathmanctl's agent: unregistered until `agent on`.
pub(super) struct Agent {
    serving: Option<Serving>,
    backlog: VecDeque<Incoming>,
}

struct Serving {
    rx: Receiver<Incoming>,
    _task: Task<()>,
}

fn write_now(out: &Sink, text: &str) -> std::io::Result<()> {
    let mut out = out.borrow_mut();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// What interrupted a dialog.
enum Abort {
    Canceled,
    Released,
    Closed,
}

impl Agent {
    pub(super) fn new() -> Self {
        Self {
            serving: None,
            backlog: VecDeque::new(),
        }
    }

    /// Whether `agent on` succeeded and the daemon has not released it since.
    pub(super) fn is_registered(&self) -> bool {
        self.serving.is_some()
    }

    /// `agent on` / `agent off`.
    pub(super) async fn set(
        &mut self,
        ex: &LocalExecutor<'static>,
        conn: &Connection,
        on: bool,
        out: &Sink,
    ) -> Result<(), CtlError> {
        let msg = |s: String| CtlError::Message(s);
        if on {
            if self.is_registered() {
                return Err(msg("Agent already registered".into()));
            }
            let failed = |e: zbus::Error| msg(format!("Error registering Agent: {e}"));
            // The stream exists before RegisterAgent, so no early call is missed.
            let rule = MatchRule::builder()
                .msg_type(MessageType::MethodCall)
                .path(AGENT_PATH)
                .map_err(failed)?
                .build();
            let stream = conn.stream_for(rule).await.map_err(failed)?;
            let (tx, rx) = smol::channel::bounded(MAX_PENDING);
            let task = ex.spawn(serve(conn.clone(), stream, tx));
            match call::<()>(
                conn,
                names::MANAGER_PATH,
                names::MANAGER_INTERFACE,
                "RegisterAgent",
                &Args::of((agent_path(),)),
            )
            .await
            {
                Ok(()) => {}
                Err(CallError::NotRunning) => return Err(CtlError::NotRunning),
                Err(CallError::Failed(reason)) => {
                    return Err(msg(format!("Error registering Agent: {reason}")))
                }
            }
            self.serving = Some(Serving { rx, _task: task });
            write_now(out, "Agent registered\n")?;
        } else {
            if !self.is_registered() {
                return Err(msg("Agent not registered".into()));
            }
            // As connmanctl: stop serving first, then tell the daemon.
            self.forget();
            match call::<()>(
                conn,
                names::MANAGER_PATH,
                names::MANAGER_INTERFACE,
                "UnregisterAgent",
                &Args::of((agent_path(),)),
            )
            .await
            {
                Ok(()) => {}
                Err(CallError::NotRunning) => return Err(CtlError::NotRunning),
                Err(CallError::Failed(reason)) => {
                    return Err(msg(format!("Error unregistering Agent: {reason}")))
                }
            }
            write_now(out, "Agent unregistered\n")?;
        }
        Ok(())
    }

    /// Leaving interactive mode: unregister, without a word (the daemon also forgets the agent
    /// when this connection closes).
    pub(super) async fn shut_down(&mut self, conn: &Connection) {
        if self.is_registered() {
            self.forget();
            let _ = call::<()>(
                conn,
                names::MANAGER_PATH,
                names::MANAGER_INTERFACE,
                "UnregisterAgent",
                &Args::of((agent_path(),)),
            )
            .await;
        }
    }

    fn forget(&mut self) {
        self.serving = None;
        self.backlog.clear();
    }

    /// The next request, in arrival order; never resolves while unregistered.
    pub(super) async fn next(&mut self) -> Incoming {
        if let Some(inc) = self.backlog.pop_front() {
            return inc;
        }
        match &self.serving {
            Some(s) => s.rx.recv().await.unwrap_or(Incoming::Closed),
            None => smol::future::pending().await,
        }
    }

    /// Runs `fut` (a command) while answering requests; a request's dialog reads `input`, and
    /// `fut` waits until the dialog is done.
    pub(super) async fn serve_during<F: Future>(
        &mut self,
        conn: &Connection,
        fut: F,
        input: &mut LineReader,
        out: &Sink,
        prompt: bool,
    ) -> std::io::Result<F::Output> {
        smol::pin!(fut);
        loop {
            let next = smol::future::or(async { Ok(fut.as_mut().await) }, async {
                Err(self.next().await)
            })
            .await;
            match next {
                Ok(done) => return Ok(done),
                Err(inc) => self.handle(conn, inc, input, out, prompt).await?,
            }
        }
    }

    /// Waits for the next line of `input` while `Cancel`/`Release` may interrupt; other
    /// requests wait in the backlog.
    async fn line_or_abort(
        &mut self,
        conn: &Connection,
        input: &mut LineReader,
    ) -> Result<Option<String>, Abort> {
        let line = async { Ok(input.next_raw_line().await.ok().flatten()) };
        let abort = async {
            loop {
                match self.next_from_daemon().await {
                    Incoming::Cancel => return Err(Abort::Canceled),
                    Incoming::Release => return Err(Abort::Released),
                    Incoming::Closed => return Err(Abort::Closed),
                    other if self.backlog.len() >= MAX_PENDING => refuse(conn, other).await,
                    other => self.backlog.push_back(other),
                }
            }
        };
        smol::future::or(line, abort).await
    }

    async fn next_from_daemon(&mut self) -> Incoming {
        match &self.serving {
            Some(s) => s.rx.recv().await.unwrap_or(Incoming::Closed),
            None => smol::future::pending().await,
        }
    }

    fn aborted(&mut self, why: Abort, out: &Sink) -> std::io::Result<()> {
        let text = match why {
            Abort::Canceled => "Agent request cancelled by pathman\n",
            Abort::Released => {
                self.forget();
                "Agent unregistered by pathman\n"
            }
            Abort::Closed => {
                self.forget();
                "Agent stopped: bus connection closed\n"
            }
        };
        write_now(out, text)
    }

    /// Answers one request, on the terminal where it needs the user. Only output failures are
    /// returned; a reply that cannot be sent means the daemon is gone, which it will notice.
    pub(super) async fn handle(
        &mut self,
        conn: &Connection,
        inc: Incoming,
        input: &mut LineReader,
        out: &Sink,
        prompt: bool,
    ) -> std::io::Result<()> {
        match inc {
            Incoming::Input { msg, text, fields } => {
                write_now(out, &text)?;
                let mut dialog = Dialog::new(&fields);
                loop {
                    match dialog.step() {
                        Step::Done(answers) => {
                            let _ = crate::dbus::client::reply(
                                conn,
                                &msg.header(),
                                &answer_dict(&answers),
                            )
                            .await;
                            return Ok(());
                        }
                        Step::Canceled => {
                            reply_error(conn, &msg, ERROR_CANCELED).await;
                            return Ok(());
                        }
                        Step::Ask { note, prompt: ask } => {
                            if let Some(note) = note {
                                write_now(out, &format!("{note}\n"))?;
                            }
                            if prompt {
                                write_now(out, ask)?;
                            }
                            match self.line_or_abort(conn, input).await {
                                Ok(line) => {
                                    dialog.answer(line.as_deref());
                                }
                                Err(why) => {
                                    reply_error(conn, &msg, ERROR_CANCELED).await;
                                    return self.aborted(why, out);
                                }
                            }
                        }
                    }
                }
            }
            Incoming::Error { msg, text } => {
                write_now(out, &text)?;
                loop {
                    if prompt {
                        write_now(out, RETRY_PROMPT)?;
                    }
                    match self.line_or_abort(conn, input).await {
                        Ok(Some(line)) => match parse_yes_no(&line) {
                            Some(true) => {
                                reply_error(conn, &msg, ERROR_RETRY).await;
                                return Ok(());
                            }
                            Some(false) => break,
                            None => continue,
                        },
                        // End of input: no retry.
                        Ok(None) => break,
                        Err(why) => {
                            let _ = crate::dbus::client::reply(conn, &msg.header(), &()).await;
                            return self.aborted(why, out);
                        }
                    }
                }
                let _ = crate::dbus::client::reply(conn, &msg.header(), &()).await;
                Ok(())
            }
            Incoming::Browser { msg, text } => {
                write_now(out, &text)?;
                reply_error(conn, &msg, ERROR_CANCELED).await;
                Ok(())
            }
            // Nothing is being asked: nothing to cancel.
            Incoming::Cancel => Ok(()),
            Incoming::Release => self.aborted(Abort::Released, out),
            Incoming::Closed => self.aborted(Abort::Closed, out),
        }
    }
}

fn agent_path() -> OwnedObjectPath {
    ObjectPath::from_static_str_unchecked(AGENT_PATH).into()
}

async fn reply_error(conn: &Connection, msg: &Message, name: &str) {
    if !msg
        .header()
        .primary()
        .flags()
        .contains(Flags::NoReplyExpected)
    {
        let _ = conn.reply_error(&msg.header(), name, &()).await;
    }
}

/// Answers a request that cannot wait for its turn.
async fn refuse(conn: &Connection, inc: Incoming) {
    match inc {
        Incoming::Input { msg, .. } | Incoming::Browser { msg, .. } => {
            reply_error(conn, &msg, ERROR_CANCELED).await
        }
        Incoming::Error { msg, .. } => {
            let _ = crate::dbus::client::reply(conn, &msg.header(), &()).await;
        }
        Incoming::Cancel | Incoming::Release | Incoming::Closed => {}
    }
}

/// Whether a caller may talk to the agent: root (the daemon) or this process's own user. Other
/// users could otherwise make pathmanctl prompt for a passphrase and receive it.
async fn allowed(conn: &Connection, cache: &mut HashMap<String, bool>, sender: &str) -> bool {
    if let Some(ok) = cache.get(sender) {
        return *ok;
    }
    if zbus::names::BusName::try_from(sender).is_err() {
        return false;
    }
    // SAFETY: getuid cannot fail and touches no memory.
    let me = unsafe { libc::getuid() };
    // A plain call, not zbus's DBusProxy: its property cache machinery costs ~30 kB of binary.
    let uid = crate::dbus::client::unix_user(conn, sender).await;
    let ok = matches!(uid, Ok(uid) if uid == 0 || uid == me);
    // Unique names are never reused; the cache only needs to be small.
    if cache.len() >= 16 {
        cache.clear();
    }
    cache.insert(sender.to_owned(), ok);
    ok
}

/// Reads the agent's method calls, answers what needs no user at once and queues the rest.
async fn serve(conn: Connection, mut stream: MessageStream, tx: Sender<Incoming>) {
    let mut senders = HashMap::new();
    while let Some(msg) = stream.next().await {
        let header = msg.header();
        let no_reply = header.primary().flags().contains(Flags::NoReplyExpected);
        let answer_err = |e: zbus::fdo::Error| {
            let conn = conn.clone();
            let header = header.clone();
            async move {
                if !no_reply {
                    let _ = conn.reply_dbus_error(&header, e).await;
                }
            }
        };
        let sender = header
            .sender()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let permitted = allowed(&conn, &mut senders, &sender).await;
        if !permitted {
            answer_err(zbus::fdo::Error::AccessDenied(
                "only root or this user may use this agent".into(),
            ))
            .await;
            continue;
        }
        if header.interface().map(|i| i.as_str()) != Some(names::AGENT_INTERFACE) {
            answer_err(zbus::fdo::Error::UnknownInterface(format!(
                "{AGENT_PATH} only serves {}",
                names::AGENT_INTERFACE
            )))
            .await;
            continue;
        }
        let member = header
            .member()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let invalid = |what: &str, e: zbus::Error| {
            zbus::fdo::Error::InvalidArgs(format!("{member} expects {what}: {e}"))
        };
        let inc = match member.as_str() {
            "Release" => {
                if !no_reply {
                    let _ = crate::dbus::client::reply(&conn, &header, &()).await;
                }
                let _ = tx.send(Incoming::Release).await;
                return;
            }
            "Cancel" => {
                if !no_reply {
                    let _ = crate::dbus::client::reply(&conn, &header, &()).await;
                }
                Incoming::Cancel
            }
            "RequestInput" => match msg.body().deserialize::<(OwnedObjectPath, Properties)>() {
                Ok((service, fields)) => Incoming::Input {
                    text: request_text("RequestInput", service.as_str(), &fields),
                    fields: parse_fields(&fields),
                    msg: msg.clone(),
                },
                Err(e) => {
                    answer_err(invalid("(o, a{sv})", e)).await;
                    continue;
                }
            },
            "ReportError" | "RequestBrowser" => {
                match msg.body().deserialize::<(OwnedObjectPath, String)>() {
                    Ok((service, s)) => {
                        let text = report_text(&member, service.as_str(), &s);
                        if member == "ReportError" {
                            Incoming::Error {
                                msg: msg.clone(),
                                text,
                            }
                        } else {
                            Incoming::Browser {
                                msg: msg.clone(),
                                text,
                            }
                        }
                    }
                    Err(e) => {
                        answer_err(invalid("(o, s)", e)).await;
                        continue;
                    }
                }
            }
            // No peers in pathman: nothing to report or authorise.
            "ReportPeerError" => {
                if !no_reply {
                    let _ = crate::dbus::client::reply(&conn, &header, &()).await;
                }
                continue;
            }
            "RequestPeerAuthorization" => {
                reply_error(&conn, &msg, ERROR_CANCELED).await;
                continue;
            }
            other => {
                answer_err(zbus::fdo::Error::UnknownMethod(format!(
                    "no method {other} on {}",
                    names::AGENT_INTERFACE
                )))
                .await;
                continue;
            }
        };
        match tx.try_send(inc) {
            Ok(()) => {}
            // A flood: answer now rather than hold it.
            Err(TrySendError::Full(inc)) => refuse(&conn, inc).await,
            Err(TrySendError::Closed(_)) => return,
        }
    }
    let _ = tx.send(Incoming::Closed).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::test_util::props;

    fn field_args(entries: Vec<(&str, Value<'static>)>) -> Value<'static> {
        let m: HashMap<String, Value<'static>> = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Value::from(m)
    }

    fn req(kind: &str, requirement: &str) -> Value<'static> {
        field_args(vec![
            ("Type", Value::from(kind.to_owned())),
            ("Requirement", Value::from(requirement.to_owned())),
        ])
    }

    /// Runs the dialog for `fields` with `lines` (None = end of input); returns the prompts
    /// shown (notes prefixed with `!`) and the outcome.
    fn run(fields: &Properties, lines: &[Option<&str>]) -> (Vec<String>, Step) {
        let mut d = Dialog::new(&parse_fields(fields));
        let mut shown = Vec::new();
        let mut lines = lines.iter();
        loop {
            match d.step() {
                Step::Ask { note, prompt } => {
                    if let Some(n) = note {
                        shown.push(format!("!{n}"));
                    }
                    shown.push(prompt.to_owned());
                    let Some(line) = lines.next() else {
                        panic!("dialog wants more input after {shown:?}");
                    };
                    d.answer(*line);
                }
                done => return (shown, done),
            }
        }
    }

    fn done(pairs: &[(&str, &str)]) -> Step {
        Step::Done(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn psk_network_asks_the_passphrase() {
        let f = props(vec![("Passphrase", req("psk", "mandatory"))]);
        assert_eq!(
            run(&f, &[Some("hunter22")]),
            (
                vec!["Passphrase? ".into()],
                done(&[("Passphrase", "hunter22")])
            )
        );
        // Blanks are part of a passphrase; only a carriage return is dropped.
        assert_eq!(
            run(&f, &[Some(" a b \r")]).1,
            done(&[("Passphrase", " a b ")])
        );
    }

    #[test]
    fn empty_answer_or_end_of_input_cancels() {
        let f = props(vec![("Passphrase", req("psk", "mandatory"))]);
        assert_eq!(run(&f, &[Some("")]).1, Step::Canceled);
        assert_eq!(run(&f, &[None]).1, Step::Canceled);
    }

    #[test]
    fn previous_passphrase_is_shown_not_asked() {
        let f = props(vec![
            ("Passphrase", req("psk", "mandatory")),
            (
                "PreviousPassphrase",
                field_args(vec![
                    ("Type", Value::from("psk")),
                    ("Requirement", Value::from("informational")),
                    ("Value", Value::from("oldsecret")),
                ]),
            ),
        ]);
        let (prompts, outcome) = run(&f, &[Some("new")]);
        assert_eq!(prompts, ["Passphrase? "]);
        assert_eq!(outcome, done(&[("Passphrase", "new")]));
        let text = request_text(
            "RequestInput",
            "/net/connman/service/wifi_a_b_managed_psk",
            &f,
        );
        assert_eq!(
            text,
            "Agent RequestInput wifi_a_b_managed_psk\n\
             \x20 Passphrase = [ Requirement=mandatory, Type=psk ]\n\
             \x20 PreviousPassphrase = [ Requirement=informational, Type=psk, Value=oldsecret ]\n\
             \n"
        );
    }

    #[test]
    fn hidden_network_asks_name_then_passphrase() {
        let f = props(vec![
            (
                "Name",
                field_args(vec![
                    ("Type", Value::from("string")),
                    ("Requirement", Value::from("mandatory")),
                    ("Alternates", Value::from(vec!["SSID"])),
                ]),
            ),
            ("SSID", req("ssid", "alternate")),
            ("Passphrase", req("psk", "mandatory")),
        ]);
        let long = "x".repeat(33);
        let (prompts, outcome) = run(&f, &[Some(&long), Some("Lab Net"), Some("pw")]);
        assert_eq!(
            prompts,
            [
                "Hidden SSID name? ",
                "!An SSID is at most 32 bytes",
                "Hidden SSID name? ",
                "Passphrase? "
            ]
        );
        assert_eq!(outcome, done(&[("Name", "Lab Net"), ("Passphrase", "pw")]));
        // The SSID alternate cannot be typed: an empty name cancels.
        assert_eq!(run(&f, &[Some("")]).1, Step::Canceled);
    }

    #[test]
    fn wps_is_the_alternate_of_an_empty_passphrase() {
        let f = props(vec![
            (
                "Passphrase",
                field_args(vec![
                    ("Type", Value::from("psk")),
                    ("Requirement", Value::from("mandatory")),
                    ("Alternates", Value::from(vec!["WPS"])),
                ]),
            ),
            ("WPS", req("wpspin", "alternate")),
        ]);
        assert_eq!(
            run(&f, &[Some("secret")]),
            (
                vec!["Passphrase? ".into()],
                done(&[("Passphrase", "secret")])
            )
        );
        assert_eq!(
            run(&f, &[Some(""), Some("12345670")]),
            (
                vec![
                    "Passphrase? ".into(),
                    "WPS PIN (empty line for pushbutton)? ".into()
                ],
                done(&[("WPS", "12345670")])
            )
        );
        // Empty WPS PIN: push-button.
        assert_eq!(run(&f, &[Some(""), Some("")]).1, done(&[("WPS", "")]));
        assert_eq!(run(&f, &[Some(""), None]).1, Step::Canceled);
    }

    #[test]
    fn eap_and_wispr_fields_in_order() {
        let f = props(vec![
            ("Passphrase", req("passphrase", "mandatory")),
            ("Identity", req("string", "mandatory")),
        ]);
        assert_eq!(
            run(&f, &[Some("alice"), Some("pw")]),
            (
                vec!["EAP username? ".into(), "Passphrase? ".into()],
                done(&[("Identity", "alice"), ("Passphrase", "pw")])
            )
        );
        let f = props(vec![
            ("Password", req("passphrase", "mandatory")),
            ("Username", req("string", "mandatory")),
        ]);
        assert_eq!(
            run(&f, &[Some("bob"), Some("pw")]).1,
            done(&[("Username", "bob"), ("Password", "pw")])
        );
    }

    #[test]
    fn optional_fields_may_be_left_empty() {
        let f = props(vec![
            ("Identity", req("string", "optional")),
            ("Passphrase", req("psk", "mandatory")),
        ]);
        assert_eq!(
            run(&f, &[Some(""), Some("pw")]).1,
            done(&[("Passphrase", "pw")])
        );
    }

    #[test]
    fn nothing_to_ask_answers_empty() {
        assert_eq!(run(&Properties::new(), &[]).1, done(&[]));
        let f = props(vec![
            ("Frobnicator", req("string", "mandatory")),
            ("Passphrase", req("psk", "sometimes")),
        ]);
        assert_eq!(run(&f, &[]).1, done(&[]));
    }

    #[test]
    fn hostile_fields_are_ignored_not_fatal() {
        // Wrong types: not a dict, a dict with wrong value types, a missing Requirement.
        let f = props(vec![
            ("Name", Value::from("not a dict")),
            (
                "Identity",
                field_args(vec![
                    ("Requirement", Value::U32(7)),
                    ("Alternates", Value::from("WPS")),
                ]),
            ),
            ("Passphrase", field_args(vec![])),
        ]);
        let fields = parse_fields(&f);
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert!(fields
            .iter()
            .all(|f| f.requirement == Requirement::Mandatory));
        assert_eq!(
            run(&f, &[Some("id"), Some("pw")]).1,
            done(&[("Identity", "id"), ("Passphrase", "pw")])
        );
        // A huge dictionary: capped, and the header says so.
        let mut big: Vec<(String, Value<'static>)> = (0..1000)
            .map(|i| (format!("F{i:04}"), req("string", "mandatory")))
            .collect();
        big.push(("Passphrase".into(), req("psk", "mandatory")));
        let f: Properties = big
            .into_iter()
            .map(|(k, v)| (k, crate::ctl::test_util::ov(v)))
            .collect();
        assert_eq!(parse_fields(&f).len(), MAX_FIELDS);
        let text = request_text("RequestInput", "/s", &f);
        assert!(text.contains("(969 more fields ignored)"), "{text}");
        assert_eq!(text.lines().count(), MAX_FIELDS + 3);
        // A huge string is clipped.
        let long = "p".repeat(100_000);
        let f = props(vec![(
            "Passphrase",
            field_args(vec![("Value", Value::from(long.clone()))]),
        )]);
        assert_eq!(
            parse_fields(&f)[0].value.as_deref().map(str::len),
            Some(MAX_TEXT)
        );
        assert!(request_text("RequestInput", "/s", &f).len() < 2 * MAX_TEXT);
        assert!(report_text("ReportError", "/s", &long).len() < 2 * MAX_TEXT);
    }

    #[test]
    fn reports_are_one_indented_line() {
        assert_eq!(
            report_text(
                "ReportError",
                "/net/connman/service/wifi_a_b_managed_psk",
                "invalid-key"
            ),
            "Agent ReportError wifi_a_b_managed_psk\n  invalid-key\n"
        );
        assert_eq!(
            report_text("RequestBrowser", "/net/connman/service/x", "http://a/\nb"),
            "Agent RequestBrowser x\n  http://a/\\nb\n"
        );
    }

    #[test]
    fn yes_no() {
        for (w, want) in [
            ("yes", Some(true)),
            (" Y ", Some(true)),
            ("YES", Some(true)),
            ("no", Some(false)),
            ("n", Some(false)),
            ("", None),
            ("maybe", None),
            ("yess", None),
        ] {
            assert_eq!(parse_yes_no(w), want, "{w:?}");
        }
    }

    #[test]
    fn answers_are_string_variants() {
        let d = answer_dict(&[("Passphrase".into(), "pw".into())]);
        assert_eq!(Value::from(d).value_signature().to_string(), "a{sv}");
    }

    #[test]
    fn agent_path_is_valid() {
        assert!(ObjectPath::try_from(AGENT_PATH).is_ok());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn dialogs_end_and_never_panic(
                names in prop::collection::vec(
                    prop::sample::select(vec!["Name", "SSID", "Identity", "Passphrase", "WPS",
                        "Username", "Password", "PreviousPassphrase", "X"]), 0..8),
                reqs in prop::collection::vec(
                    prop::sample::select(vec!["mandatory", "optional", "alternate",
                        "informational", "?"]), 8),
                lines in prop::collection::vec(prop::option::of(".{0,40}"), 0..40),
            ) {
                let f: Properties = names.iter().zip(&reqs).map(|(n, r)| {
                    let v = field_args(vec![
                        ("Requirement", Value::from((*r).to_owned())),
                        ("Alternates", Value::from(vec!["WPS", "SSID"])),
                    ]);
                    ((*n).to_owned(), crate::ctl::test_util::ov(v))
                }).collect();
                let mut d = Dialog::new(&parse_fields(&f));
                let mut steps = 0;
                for line in &lines {
                    if !matches!(d.step(), Step::Ask { .. }) { break; }
                    d.answer(line.as_deref());
                    steps += 1;
                }
                // Every answered field is one that was offered.
                if let Step::Done(answers) = d.step() {
                    for (k, _) in &answers {
                        prop_assert!(f.contains_key(k));
                    }
                }
                prop_assert!(steps <= lines.len());
            }
        }
    }
}
