//! The D-Bus edge's dispatcher: finds the object a call addresses and the
//! method it names (by name and signature, in the declarations of
//! [`crate::dbus::api`]), checks who may call it, decodes the arguments, runs
//! the handler and sends the reply. Errors for calls that name no method or
//! no object are the standard D-Bus ones, worded as libdbus words them for
//! ConnMan. No object server: calls are dispatched by hand so the model can
//! live in the single-threaded event loop without locks.

use std::collections::HashMap;

use crate::dbus::Connection;
use zbus::message::Type as MsgType;
use zbus::zvariant::{OwnedObjectPath, Structure, Value};
use zbus::Message;

use crate::core::model::Model;
use crate::dbus::api::{self, Access as Need, Method, Object};
use crate::dbus::props::Dict;
use crate::dbus::request::{Answer, CallError, Ctx};
use crate::dbus::session::Caller;
use crate::dbus::value::object_path;

/// `org.freedesktop.DBus.Error.UnknownMethod`.
pub const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
/// `org.freedesktop.DBus.Error.UnknownObject`.
pub const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";
/// `org.freedesktop.DBus.Error.LimitsExceeded`.
pub const LIMITS_EXCEEDED: &str = "org.freedesktop.DBus.Error.LimitsExceeded";

/// Who may change things: root, or members of main.conf's AdminGroup.
#[derive(Debug, Default)]
pub struct Access {
    pub admin_group: Option<String>,
    /// uid by unique bus name (unique names are never reused).
    cache: HashMap<String, u32>,
}

impl Access {
    /// An access checker for an optional admin group.
    pub fn new(admin_group: Option<String>) -> Access {
        Access {
            admin_group,
            cache: HashMap::new(),
        }
    }

    /// The caller's uid, asked from the bus once per connection.
    pub async fn uid(&mut self, conn: &Connection, sender: &str) -> Option<u32> {
        if let Some(uid) = self.cache.get(sender) {
            return Some(*uid);
        }
        match crate::dbus::client::unix_user(conn, sender).await {
            Ok(uid) => {
                if self.cache.len() >= 64 {
                    self.cache.clear();
                }
                self.cache.insert(sender.to_string(), uid);
                Some(uid)
            }
            Err(e) => {
                log::warn!("dbus: cannot learn the uid of {sender}: {e}");
                None
            }
        }
    }

    /// Forgets a connection that left the bus.
    pub fn forget(&mut self, sender: &str) {
        self.cache.remove(sender);
    }

    /// The groups of a uid (primary and supplementary), for session policies.
    pub fn groups(uid: u32) -> Vec<u32> {
        let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
            return Vec::new();
        };
        let Ok(name) = std::ffi::CString::new(user.name.as_str()) else {
            return vec![user.gid.as_raw()];
        };
        nix::unistd::getgrouplist(&name, user.gid)
            .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|_| vec![user.gid.as_raw()])
    }

    fn is_admin(&self, uid: u32, gids: &[u32]) -> bool {
        if uid == 0 {
            return true;
        }
        let Some(group) = &self.admin_group else {
            return false;
        };
        match nix::unistd::Group::from_name(group) {
            Ok(Some(g)) => gids.contains(&g.gid.as_raw()),
            _ => false,
        }
    }

    /// Who is calling, as much as the method's access needs: nothing for
    /// reading; uid, groups and admin status otherwise.
    async fn caller(&mut self, conn: &Connection, sender: &str, need: Need) -> Caller {
        let mut caller = Caller {
            name: sender.to_string(),
            ..Caller::default()
        };
        if need == Need::Read {
            return caller;
        }
        let started = std::time::Instant::now();
        if let Some(uid) = self.uid(conn, sender).await {
            caller.uid = Some(uid);
            // Root is admin without its groups (reading passwd and group
            // files is the slow part); clients' groups are for sessions.
            if uid != 0 || need == Need::Client {
                caller.gids = Access::groups(uid);
            }
            caller.admin = self.is_admin(uid, &caller.gids);
        }
        log::debug!(
            "dbus: caller {sender} uid {:?} in {} us",
            caller.uid,
            started.elapsed().as_micros()
        );
        caller
    }
}

/// A reply held back until the change has reached the kernel, so that a
/// kernel refusal (an MPTCP endpoint that could not be added) reaches the
/// caller whose request it was.
pub struct Deferred {
    msg: Message,
    /// What the reply waits for.
    pub pending: crate::dbus::request::Pending,
}

/// Answers a deferred request: success, or the error saying what could not
/// be carried out.
pub async fn finish(conn: &Connection, d: Deferred, failure: Option<CallError>) {
    let header = d.msg.header();
    let sent = match failure {
        None => crate::dbus::client::reply(conn, &header, &()).await,
        Some(e) => conn.reply_error(&header, e.name.as_str(), &e.message).await,
    };
    if let Err(e) = sent {
        log::debug!("dbus: deferred reply ({:?}) failed: {e}", d.pending);
    }
}

/// Answers a deferred request whose answer is a text (`Debug.GetState`).
pub async fn finish_text(conn: &Connection, d: Deferred, text: &str) {
    let header = d.msg.header();
    if let Err(e) = crate::dbus::client::reply(conn, &header, &text).await {
        log::debug!("dbus: deferred reply ({:?}) failed: {e}", d.pending);
    }
}

/// Answers a method call the bus socket dropped for its size with
/// `org.freedesktop.DBus.Error.LimitsExceeded` (the call never reached the
/// model; nothing changed).
pub async fn refuse_oversized(conn: &Connection, d: &crate::dbus::bus::Dropped) {
    let (Some(sender), Some(serial)) = (&d.sender, std::num::NonZeroU32::new(d.serial)) else {
        return;
    };
    // A stand-in for the dropped call with its serial and sender: what a
    // reply needs to reach the caller.
    let call = zbus::Message::method_call(
        d.path.as_deref().unwrap_or("/"),
        d.member.as_deref().unwrap_or("Dropped"),
    )
    .and_then(|b| b.sender(sender.as_str()))
    .map(|b| b.serial(serial))
    .and_then(|b| b.build(&()));
    let Ok(call) = call else { return };
    let text = format!(
        "message of {} bytes exceeds pathman's limit of {} bytes (caps::MAX_DBUS_MESSAGE)",
        d.size,
        crate::caps::MAX_DBUS_MESSAGE
    );
    if let Err(e) = conn
        .reply_error(&call.header(), LIMITS_EXCEEDED, &text)
        .await
    {
        log::debug!("dbus: cannot refuse the oversized call of {sender}: {e}");
    }
}

/// libdbus's wording for a call that names no method (or no object) there.
fn no_such_method(member: &str, sig: &str, iface: Option<&str>) -> String {
    format!(
        "Method \"{member}\" with signature \"{sig}\" on interface \"{}\" doesn't exist\n",
        iface.unwrap_or("(null)")
    )
}

/// The method a call names on `obj`: by interface when the call gives one,
/// else the first interface that has a method of that name and signature.
fn find_method(
    obj: &Object,
    iface: Option<&str>,
    member: &str,
    sig: &str,
) -> Option<&'static Method> {
    obj.interfaces()
        .iter()
        .filter(|i| iface.is_none_or(|n| n == i.name))
        .find_map(|i| i.method(member, sig))
}

/// The arguments of a call, in order (the body as a structure).
fn arguments<'m>(msg: &'m Message, sig: &str) -> Result<Vec<Value<'m>>, CallError> {
    if sig.is_empty() {
        return Ok(Vec::new());
    }
    let body = msg.body();
    let data = body.data();
    let (s, _): (Structure<'_>, usize) = data
        .deserialize_for_dynamic_signature(format!("({sig})").as_str())
        .map_err(|e| CallError::invalid(format!("cannot decode the arguments: {e}")))?;
    // The body lives as long as the message; the values borrow from it.
    Ok(s.into_fields()
        .into_iter()
        .map(|v| {
            v.try_to_owned()
                .map(Value::from)
                .unwrap_or(Value::Bool(false))
        })
        .collect())
}

/// Handles one incoming method call; a request whose outcome depends on the
/// kernel comes back as [`Deferred`] for [`finish`] after the loop settled.
pub async fn handle(
    conn: &Connection,
    model: &mut Model,
    access: &mut Access,
    msg: &Message,
) -> Option<Deferred> {
    let header = msg.header();
    if header.message_type() != MsgType::MethodCall {
        return None;
    }
    let path = header.path().map(|p| p.as_str()).unwrap_or("/").to_string();
    let iface = header.interface().map(|i| i.as_str().to_string());
    let member = header
        .member()
        .map(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    let sender = header
        .sender()
        .map(|s| s.as_str())
        .unwrap_or("")
        .to_string();
    let sig = header.signature().to_string();
    let sig = sig
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .map(str::to_string)
        .unwrap_or(sig);

    let reply = |r: zbus::Result<()>| {
        if let Err(e) = r {
            log::debug!("dbus: reply to {sender} failed: {e}");
        }
    };
    let iface_ref = iface.as_deref();
    // Introspection answers on every path (an empty node where nothing is),
    // and org.freedesktop.DBus.Peer on every object, as libdbus does.
    if member == "Introspect"
        && sig.is_empty()
        && iface_ref.is_none_or(|i| i == api::INTROSPECTABLE.name)
    {
        reply(crate::dbus::client::reply(conn, &header, &api::introspect(model, &path)).await);
        return None;
    }
    if iface_ref == Some("org.freedesktop.DBus.Peer") {
        match (member.as_str(), sig.as_str()) {
            ("Ping", "") => reply(crate::dbus::client::reply(conn, &header, &()).await),
            ("GetMachineId", "") => {
                let id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
                reply(crate::dbus::client::reply(conn, &header, &id.trim()).await);
            }
            _ => {
                let text = no_such_method(&member, &sig, iface_ref);
                reply(conn.reply_error(&header, UNKNOWN_METHOD, &text).await);
            }
        }
        return None;
    }
    let Some(obj) = api::object_at(model, &path) else {
        let text = no_such_method(&member, &sig, iface_ref);
        reply(conn.reply_error(&header, UNKNOWN_OBJECT, &text).await);
        return None;
    };
    let Some(method) = find_method(&obj, iface_ref, &member, &sig) else {
        let text = no_such_method(&member, &sig, iface_ref);
        reply(conn.reply_error(&header, UNKNOWN_METHOD, &text).await);
        return None;
    };
    let caller = access.caller(conn, &sender, method.access).await;
    let result = match method.access {
        Need::Admin if !caller.admin => Err(CallError::new(
            "PermissionDenied",
            format!("{member} needs root or the admin group"),
        )),
        Need::Client if caller.uid.is_none() => Err(CallError::new(
            "PermissionDenied",
            "cannot tell who is calling",
        )),
        _ => match arguments(msg, &sig) {
            Ok(args) => {
                let mut ctx = Ctx {
                    model,
                    caller: &caller,
                    object: &obj,
                    path: &path,
                };
                (method.handler)(&mut ctx, &args)
            }
            Err(e) => Err(e),
        },
    };
    let sent = match result {
        Ok(Answer::AfterSettle(pending)) => {
            return Some(Deferred {
                msg: msg.clone(),
                pending,
            })
        }
        Ok(answer) => send_answer(conn, &header, answer).await,
        Err(e) => {
            log::debug!(
                "dbus: {}.{member} on {path} from {sender}: {}: {}",
                iface_ref.unwrap_or("?"),
                e.name,
                e.message
            );
            conn.reply_error(&header, e.name.as_str(), &e.message).await
        }
    };
    reply(sent);
    None
}

async fn send_answer(
    conn: &Connection,
    header: &zbus::message::Header<'_>,
    answer: Answer,
) -> zbus::Result<()> {
    match answer {
        Answer::Empty | Answer::AfterSettle(_) => {
            crate::dbus::client::reply(conn, header, &()).await
        }
        Answer::Props(p) => crate::dbus::client::reply(conn, header, &Dict(&p)).await,
        Answer::Objects(list) => {
            let body: Vec<(OwnedObjectPath, Dict<'_>)> = list
                .iter()
                .map(|(o, p)| (object_path(o), Dict(p)))
                .collect();
            crate::dbus::client::reply(conn, header, &body).await
        }
        Answer::Strings(list) => crate::dbus::client::reply(conn, header, &list).await,
        Answer::Path(p) => crate::dbus::client::reply(conn, header, &object_path(&p)).await,
        Answer::Paths(list) => {
            let paths: Vec<OwnedObjectPath> = list.iter().map(|p| object_path(p)).collect();
            crate::dbus::client::reply(conn, header, &paths).await
        }
        Answer::Text(t) => crate::dbus::client::reply(conn, header, &t).await,
        Answer::Managed(objects) => {
            let empty = HashMap::<String, Value<'static>>::new();
            let body: HashMap<OwnedObjectPath, HashMap<&str, &HashMap<String, Value<'static>>>> =
                objects
                    .iter()
                    .map(|(o, ifaces)| {
                        (
                            object_path(o),
                            ifaces.iter().map(|i| (*i, &empty)).collect(),
                        )
                    })
                    .collect();
            crate::dbus::client::reply(conn, header, &body).await
        }
    }
}
