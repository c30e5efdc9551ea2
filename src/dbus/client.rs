//! pathman as a client on the bus: the signals its modules subscribe to
//! and the calls it makes to other daemons, on the same connection that
//! serves ConnMan's API. A module declares its match rules here; the bus
//! task adds them on every (re)connect and routes each matching signal to
//! the module that asked for it, through the daemon's one event channel.

use std::time::Duration;

use zbus::Message;

/// A part of pathman that listens to other daemons' signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscriber {
    /// Connections leaving the bus: sessions, agents and counters die
    /// with the connection that made them.
    Owners,
    /// wpa_supplicant's interfaces, BSSes and scans (WiFi).
    Supplicant,
    /// oFono's modems, SIMs, registrations and contexts (cellular).
    Ofono,
}

/// A signal a subscriber wants: fields left `None` match anything.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub subscriber: Subscriber,
    pub sender: Option<&'static str>,
    pub interface: &'static str,
    pub member: Option<&'static str>,
    pub path: Option<&'static str>,
}

/// Every subscription of every module.
pub static RULES: &[Rule] = &[
    Rule {
        subscriber: Subscriber::Owners,
        sender: Some("org.freedesktop.DBus"),
        interface: "org.freedesktop.DBus",
        member: Some("NameOwnerChanged"),
        path: None,
    },
    // Both the standard PropertiesChanged and wpa_supplicant's own
    // per-interface ones (older supplicants send only those).
    Rule {
        subscriber: Subscriber::Supplicant,
        sender: Some(crate::dbus::wpa::NAME),
        interface: crate::dbus::wpa::PROPERTIES,
        member: Some("PropertiesChanged"),
        path: None,
    },
    Rule {
        subscriber: Subscriber::Supplicant,
        sender: Some(crate::dbus::wpa::NAME),
        interface: crate::dbus::wpa::IFACE_INTERFACE,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Supplicant,
        sender: Some(crate::dbus::wpa::NAME),
        interface: crate::dbus::wpa::IFACE_BSS,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Supplicant,
        sender: Some(crate::dbus::wpa::NAME),
        interface: crate::dbus::wpa::IFACE_ROOT,
        member: None,
        path: None,
    },
    // oFono: every signal of the interfaces pathman mirrors.
    Rule {
        subscriber: Subscriber::Ofono,
        sender: Some(crate::dbus::ofono::NAME),
        interface: crate::dbus::ofono::MANAGER,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Ofono,
        sender: Some(crate::dbus::ofono::NAME),
        interface: crate::dbus::ofono::MODEM,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Ofono,
        sender: Some(crate::dbus::ofono::NAME),
        interface: crate::dbus::ofono::SIM,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Ofono,
        sender: Some(crate::dbus::ofono::NAME),
        interface: crate::dbus::ofono::NETREG,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Ofono,
        sender: Some(crate::dbus::ofono::NAME),
        interface: crate::dbus::ofono::CM,
        member: None,
        path: None,
    },
    Rule {
        subscriber: Subscriber::Ofono,
        sender: Some(crate::dbus::ofono::NAME),
        interface: crate::dbus::ofono::CONTEXT,
        member: None,
        path: None,
    },
];

impl Rule {
    /// The rule in `AddMatch` syntax.
    pub fn match_string(&self) -> String {
        let mut s = format!("type='signal',interface='{}'", self.interface);
        if let Some(v) = self.sender {
            s.push_str(&format!(",sender='{v}'"));
        }
        if let Some(v) = self.member {
            s.push_str(&format!(",member='{v}'"));
        }
        if let Some(v) = self.path {
            s.push_str(&format!(",path='{v}'"));
        }
        s
    }

    fn matches(
        &self,
        sender: Option<&str>,
        interface: Option<&str>,
        member: Option<&str>,
        path: Option<&str>,
    ) -> bool {
        // The bus daemon signs its own signals with its well-known name.
        let sender_ok = match self.sender {
            None => true,
            Some("org.freedesktop.DBus") => sender == Some("org.freedesktop.DBus"),
            // Signals carry the unique name of the well-known name's owner;
            // the bus daemon filtered by the name, and the subscriber checks
            // the sender against the owner it tracks.
            Some(want) if !want.starts_with(':') => sender.is_some_and(|s| s.starts_with(':')),
            Some(want) => sender == Some(want),
        };
        sender_ok
            && interface == Some(self.interface)
            && self.member.is_none_or(|m| member == Some(m))
            && self.path.is_none_or(|p| path == Some(p))
    }
}

/// The subscriber a signal is for, if any.
pub fn route(msg: &Message) -> Option<Subscriber> {
    if msg.message_type() != zbus::message::Type::Signal {
        return None;
    }
    let h = msg.header();
    let (sender, iface, member, path) = (
        h.sender().map(|s| s.as_str()),
        h.interface().map(|i| i.as_str()),
        h.member().map(|m| m.as_str()),
        h.path().map(|p| p.as_str()),
    );
    RULES
        .iter()
        .find(|r| r.matches(sender, iface, member, path))
        .map(|r| r.subscriber)
}

/// Adds every rule to the bus daemon (after each connect).
pub async fn subscribe(conn: &crate::dbus::Connection) {
    for r in RULES {
        let res = call(
            conn,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            &Args::of((r.match_string(),)),
        )
        .await;
        if let Err(e) = res {
            log::warn!("dbus: cannot subscribe to {}: {e}", r.match_string());
        }
    }
}

/// How long pathman waits for another daemon's reply before giving up, so
/// a stuck peer never holds up the loop for long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A method call's arguments: one body type for every call pathman makes.
///
/// zbus's `call_method` is async and generic over the body, so each body type got its own
/// copy of its future (issue 12's size budget); pathman's calls all pass an `Args`, so there
/// is one. `Args::of((a, b))` holds the arguments as a zvariant structure, which zbus writes
/// exactly as the tuple `(a, b)` (the body signature is the structure's without its
/// parentheses); a `Value` argument is sent as a variant.
#[derive(Debug)]
pub struct Args<'a>(Option<zbus::zvariant::Structure<'a>>);

impl Args<'static> {
    /// No arguments.
    pub const NONE: Args<'static> = Args(None);
}

impl<'a> Args<'a> {
    /// The arguments of a tuple: `Args::of((name, value))`, `Args::of((path,))`.
    pub fn of(args: impl Into<zbus::zvariant::Structure<'a>>) -> Args<'a> {
        Args(Some(args.into()))
    }
}

impl zbus::zvariant::DynamicType for Args<'_> {
    fn signature(&self) -> zbus::zvariant::Signature {
        match &self.0 {
            None => zbus::zvariant::Signature::Unit,
            Some(s) => zbus::zvariant::DynamicType::signature(s),
        }
    }
}

impl zbus::export::serde::Serialize for Args<'_> {
    fn serialize<S: zbus::export::serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            None => ().serialize(ser),
            Some(s) => s.serialize(ser),
        }
    }
}

/// A method call to another daemon, with [`CALL_TIMEOUT`].
pub async fn call(
    conn: &crate::dbus::Connection,
    dest: &str,
    path: &str,
    iface: &str,
    member: &str,
    body: &Args<'_>,
) -> zbus::Result<Message> {
    call_within(conn, dest, path, iface, member, body, CALL_TIMEOUT).await
}

/// A method call with its own timeout (the error says who did not answer what, and when).
pub async fn call_within(
    conn: &crate::dbus::Connection,
    dest: &str,
    path: &str,
    iface: &str,
    member: &str,
    body: &Args<'_>,
    timeout: Duration,
) -> zbus::Result<Message> {
    let call = conn.call_method(Some(dest), path, Some(iface), member, body);
    let timeout = async {
        smol::Timer::after(timeout).await;
        Err(zbus::Error::Failure(format!(
            "{dest} did not answer {iface}.{member} within {} s",
            timeout.as_secs()
        )))
    };
    smol::future::or(call, timeout).await
}

/// A reply to `call` carrying `body`, sent (zbus's `Connection::reply`).
///
/// Only the message is built per body type (synchronously); the sending is one async fn for
/// every reply and signal in pathman. `Connection::reply` and `emit_signal` are async and
/// generic over the body, so each body type got its own copy of their futures (issue 12's
/// size budget: ~40 kB for pathman's ~30 reply sites and its signals).
pub fn reply<'c, B>(
    conn: &'c crate::dbus::Connection,
    call: &zbus::message::Header<'_>,
    body: &B,
) -> impl std::future::Future<Output = zbus::Result<()>> + 'c
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    let msg = Message::method_return(call).and_then(|b| conn.from_self(b)?.build(body));
    send(conn, msg)
}

/// A signal from `path` carrying `body`, broadcast (zbus's `Connection::emit_signal` with no
/// destination); see [`reply`].
pub fn signal<'c, B>(
    conn: &'c crate::dbus::Connection,
    path: &str,
    iface: &str,
    member: &str,
    body: &B,
) -> impl std::future::Future<Output = zbus::Result<()>> + 'c
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    let msg = Message::signal(path, iface, member).and_then(|b| conn.from_self(b)?.build(body));
    send(conn, msg)
}

async fn send(conn: &crate::dbus::Connection, msg: zbus::Result<Message>) -> zbus::Result<()> {
    conn.send(&msg?).await
}

/// The uid of the process behind a bus connection (`GetConnectionUnixUser`).
pub async fn unix_user(conn: &crate::dbus::Connection, name: &str) -> zbus::Result<u32> {
    call(
        conn,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetConnectionUnixUser",
        &Args::of((name,)),
    )
    .await
    .and_then(|m| m.body().deserialize::<u32>())
}

/// The unique name that owns `name` now, if any.
pub async fn name_owner(conn: &crate::dbus::Connection, name: &str) -> Option<String> {
    let msg = call(
        conn,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetNameOwner",
        &Args::of((name,)),
    )
    .await
    .ok()?;
    msg.body().deserialize::<String>().ok()
}

/// An owner change of a well-known name: `(name, new owner)` (empty = gone).
pub fn owner_change(msg: &Message) -> Option<(String, String)> {
    let (name, _old, new) = msg.body().deserialize::<(String, String, String)>().ok()?;
    Some((name, new))
}

/// A connection that left the bus, from a `NameOwnerChanged` signal: its
/// unique name when the new owner is empty.
pub fn gone_connection(msg: &Message) -> Option<String> {
    let (name, _old, new) = msg.body().deserialize::<(String, String, String)>().ok()?;
    (new.is_empty() && name.starts_with(':')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Args` puts on the wire exactly what the tuple it holds would: the same body
    /// signature and bytes, a `Value` as a variant, no arguments as no body.
    #[test]
    fn args_are_written_as_their_tuple() {
        use std::collections::HashMap;
        use zbus::zvariant::{OwnedObjectPath, Value};
        fn body<B>(b: &B) -> (String, Vec<u8>)
        where
            B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
        {
            let m = Message::method_call("/x", "M").unwrap().build(b).unwrap();
            // The header's signature is the one on the wire.
            let sig = m.header().signature().to_string_no_parens();
            let b = m.body();
            let data: &[u8] = b.data();
            (sig, data.to_vec())
        }
        assert_eq!(body(&Args::NONE), body(&()));
        assert_eq!(body(&Args::NONE).0, "");
        assert_eq!(body(&Args::of(("eth0",))), body(&("eth0",)));
        let (sig, _) = body(&Args::of(("Powered", Value::from(true))));
        assert_eq!(sig, "sv");
        assert_eq!(
            body(&Args::of(("Powered", Value::from(true)))),
            body(&("Powered", Value::from(true)))
        );
        let path = OwnedObjectPath::try_from("/net/connman/service/x").unwrap();
        let mut fields: HashMap<&str, Value<'_>> = HashMap::new();
        fields.insert("Name", Value::from("pm"));
        let via_args = body(&Args::of((path.clone(), fields.clone())));
        assert_eq!(via_args.0, "oa{sv}");
        assert_eq!(via_args, body(&(path, fields)));
        assert_eq!(
            body(&Args::of(("a", 7u32, "b"))),
            body(&("a", 7u32, "b")),
            "alignment after a string"
        );
    }

    #[test]
    fn owner_changes_are_routed_to_the_owner_tracking() {
        let sig = zbus::Message::signal(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameOwnerChanged",
        )
        .unwrap()
        .sender("org.freedesktop.DBus")
        .unwrap()
        .build(&(":1.42", ":1.42", ""))
        .unwrap();
        assert_eq!(route(&sig), Some(Subscriber::Owners));
        assert_eq!(gone_connection(&sig).as_deref(), Some(":1.42"));
        // The same signal from anyone else is not the bus daemon's word.
        let forged = zbus::Message::signal(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameOwnerChanged",
        )
        .unwrap()
        .sender(":1.9")
        .unwrap()
        .build(&(":1.42", ":1.42", ""))
        .unwrap();
        assert_eq!(route(&forged), None);
        let other = zbus::Message::signal("/", "net.example.X", "Y")
            .unwrap()
            .sender("org.freedesktop.DBus")
            .unwrap()
            .build(&())
            .unwrap();
        assert_eq!(route(&other), None);
        assert_eq!(
            RULES[0].match_string(),
            "type='signal',interface='org.freedesktop.DBus',sender='org.freedesktop.DBus',member='NameOwnerChanged'"
        );
    }
}
