//! The D-Bus edge: decodes incoming method calls, checks types and
//! permissions, runs them through [`request::call`], sends the reply, and
//! emits ConnMan's signals by diffing property snapshots after every change.
//! No object server: calls are dispatched by hand so the model can live in
//! the single-threaded event loop without locks.

use std::collections::HashMap;

use zbus::message::Type as MsgType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, Message};

use crate::core::model::Model;
use crate::core::order;
use crate::core::types::Technology;
use crate::dbus::names;
use crate::dbus::props::{self, Props};
use crate::dbus::request::{self, Answer, Args, CallError, Target};
use crate::dbus::session::Caller;
use crate::dbus::value::object_path;

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
        match conn
            .call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus"),
                "GetConnectionUnixUser",
                &(sender,),
            )
            .await
            .and_then(|m| m.body().deserialize::<u32>())
        {
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

    async fn allowed(&mut self, conn: &Connection, sender: &str) -> bool {
        match self.uid(conn, sender).await {
            Some(uid) => uid == 0 || self.in_admin_group(uid),
            None => false,
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

    fn in_admin_group(&self, uid: u32) -> bool {
        let Some(group) = &self.admin_group else {
            return false;
        };
        let Ok(Some(g)) = nix::unistd::Group::from_name(group) else {
            return false;
        };
        let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
            return false;
        };
        user.gid == g.gid || g.mem.contains(&user.name)
    }
}

/// A reply held back until the change has reached the kernel, so that a
/// kernel refusal (an MPTCP endpoint that could not be added) reaches the
/// caller whose request it was.
pub struct Deferred {
    msg: Message,
    /// The service whose MultipathRouting/MultipathTcpLink was set.
    pub service: String,
}

/// Answers a deferred request: success, or `net.connman.Error.Failed` saying
/// what the kernel refused (the setting itself stays applied).
pub async fn finish(conn: &Connection, d: Deferred, failure: Option<String>) {
    let header = d.msg.header();
    let sent = match failure {
        None => conn.reply(&header, &()).await,
        Some(why) => {
            let name = format!("{}Failed", names::ERROR_PREFIX);
            conn.reply_error(&header, name.as_str(), &why).await
        }
    };
    if let Err(e) = sent {
        log::debug!("dbus: deferred reply for {} failed: {e}", d.service);
    }
}

/// Properties whose effect includes MPTCP endpoints: their reply waits for the kernel.
fn touches_endpoints(msg: &Message) -> bool {
    matches!(
        msg.body().deserialize::<(String, OwnedValue)>(),
        Ok((name, _)) if name == "MultipathRouting" || name == "MultipathTcpLink"
    )
}

/// Handles one incoming message; a request whose outcome depends on the
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
    let path = header
        .path()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let iface = header
        .interface()
        .map(|i| i.as_str().to_string())
        .unwrap_or_default();
    let member = header
        .member()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let sender = header
        .sender()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();

    if iface == "org.freedesktop.DBus.Introspectable" && member == "Introspect" {
        let xml = introspect(model, &path);
        if let Err(e) = conn.reply(&header, &xml).await {
            log::debug!("dbus: reply to {sender} failed: {e}");
        }
        return None;
    }
    if iface == "org.freedesktop.DBus.Peer" && member == "Ping" {
        let _ = conn.reply(&header, &()).await;
        return None;
    }

    let result = decode_and_call(conn, model, access, msg, &path, &iface, &member, &sender).await;
    let sent = match result {
        Ok(Answer::Empty)
            if member == "SetProperty"
                && matches!(Target::from_path(&path), Some(Target::Service(_)))
                && touches_endpoints(msg) =>
        {
            let service = names::last_path_element(&path).to_string();
            return Some(Deferred {
                msg: msg.clone(),
                service,
            });
        }
        Ok(answer) => match answer {
            Answer::Empty => conn.reply(&header, &()).await,
            Answer::Props(p) => conn.reply(&header, &as_map(&p)).await,
            Answer::Objects(list) => {
                let body: Vec<(OwnedObjectPath, HashMap<&str, &OwnedValue>)> =
                    list.iter().map(|(o, p)| (o.clone(), as_map(p))).collect();
                conn.reply(&header, &body).await
            }
            Answer::Strings(list) => conn.reply(&header, &list).await,
            Answer::Path(p) => conn.reply(&header, &p).await,
            Answer::Paths(list) => conn.reply(&header, &list).await,
        },
        Err(e) => {
            log::debug!(
                "dbus: {iface}.{member} on {path} from {sender}: {}: {}",
                e.name,
                e.message
            );
            let name = format!("{}{}", names::ERROR_PREFIX, e.name);
            conn.reply_error(&header, name.as_str(), &e.message).await
        }
    };
    if let Err(e) = sent {
        log::debug!("dbus: reply to {sender} failed: {e}");
    }
    None
}

#[allow(clippy::too_many_arguments)]
async fn decode_and_call(
    conn: &Connection,
    model: &mut Model,
    access: &mut Access,
    msg: &Message,
    path: &str,
    iface: &str,
    member: &str,
    sender: &str,
) -> Result<Answer, CallError> {
    let target = Target::from_path(path)
        .ok_or_else(|| CallError::new("NotFound", format!("no object at {path}")))?;
    let expected = request::expected_signature(member).ok_or_else(|| {
        CallError::new("NotImplemented", format!("unknown method {iface}.{member}"))
    })?;
    let body = msg.body();
    // zbus renders a multi-argument body as one structure: "(sv)".
    let full = body.signature().to_string();
    let got = match full.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        Some(inner) => inner.to_string(),
        None => full,
    };
    if got != expected {
        return Err(CallError::new(
            "InvalidArguments",
            format!("{member} takes ({expected}), got ({got})"),
        ));
    }
    let args = match expected {
        "sv" => {
            let (name, value): (String, OwnedValue) = body
                .deserialize()
                .map_err(|e| CallError::new("InvalidArguments", e.to_string()))?;
            Args::Property(name, value)
        }
        "s" => Args::Name(
            body.deserialize::<String>()
                .map_err(|e| CallError::new("InvalidArguments", e.to_string()))?,
        ),
        "a{sv}o" => {
            let (settings, notifier): (HashMap<String, OwnedValue>, OwnedObjectPath) = body
                .deserialize()
                .map_err(|e| CallError::new("InvalidArguments", e.to_string()))?;
            Args::Create(settings, notifier.as_str().to_string())
        }
        "o" => Args::Path(
            body.deserialize::<OwnedObjectPath>()
                .map_err(|e| CallError::new("InvalidArguments", e.to_string()))?
                .as_str()
                .to_string(),
        ),
        _ => Args::None,
    };
    // Sessions belong to their creator (checked by the session code); the
    // rest of the API changes the machine and needs root or the admin group.
    let session_call = matches!(target, Target::Session(_))
        || matches!(member, "CreateSession" | "DestroySession" | "GetSessions");
    if !session_call && request::is_mutating(member) && !access.allowed(conn, sender).await {
        return Err(CallError::new(
            "PermissionDenied",
            format!("{member} needs root or the admin group"),
        ));
    }
    let uid = if member == "CreateSession" {
        access
            .uid(conn, sender)
            .await
            .ok_or_else(|| CallError::new("PermissionDenied", "cannot tell who is calling"))?
    } else {
        0
    };
    let caller = Caller {
        name: sender.to_string(),
        uid,
        gids: if member == "CreateSession" {
            Access::groups(uid)
        } else {
            Vec::new()
        },
    };
    request::call(model, &target, iface, member, args, &caller)
}

fn as_map(p: &Props) -> HashMap<&str, &OwnedValue> {
    p.iter().map(|(k, v)| (*k, v)).collect()
}

fn introspect(model: &Model, path: &str) -> String {
    let mut xml = String::from(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\" \
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n\
         <interface name=\"org.freedesktop.DBus.Introspectable\"><method name=\"Introspect\">\
         <arg type=\"s\" direction=\"out\"/></method></interface>\n",
    );
    let iface = match Target::from_path(path) {
        Some(Target::Manager) => Some((
            "net.connman.Manager",
            &[
                "GetProperties",
                "SetProperty",
                "GetTechnologies",
                "GetServices",
                "GetPeers",
                "GetTetheringClients",
                "RegisterAgent",
                "UnregisterAgent",
            ][..],
        )),
        Some(Target::Technology(_)) => Some((
            "net.connman.Technology",
            &["GetProperties", "SetProperty", "Scan"][..],
        )),
        Some(Target::Service(_)) => Some((
            "net.connman.Service",
            &[
                "GetProperties",
                "SetProperty",
                "ClearProperty",
                "Connect",
                "Disconnect",
                "Remove",
                "MoveBefore",
                "MoveAfter",
                "ResetCounters",
            ][..],
        )),
        Some(Target::Session(_)) => Some((
            "net.connman.Session",
            &["Connect", "Disconnect", "Change", "Destroy"][..],
        )),
        None => None,
    };
    if let Some((name, methods)) = iface {
        xml.push_str(&format!("<interface name=\"{name}\">"));
        for m in methods {
            xml.push_str(&format!("<method name=\"{m}\"/>"));
        }
        xml.push_str("<signal name=\"PropertyChanged\"><arg type=\"s\"/><arg type=\"v\"/></signal></interface>\n");
    }
    let children: Vec<String> = match path {
        "/" => vec!["net".into()],
        "/net" => vec!["connman".into()],
        "/net/connman" => vec!["technology".into(), "service".into()],
        "/net/connman/technology" => model
            .present_techs()
            .map(|t| t.as_str().to_string())
            .collect(),
        "/net/connman/service" => model.services.iter().map(|s| s.id.to_string()).collect(),
        _ => Vec::new(),
    };
    for c in children {
        xml.push_str(&format!("<node name=\"{c}\"/>\n"));
    }
    xml.push_str("</node>\n");
    xml
}

/// What clients last saw, to emit only differences.
#[derive(Debug, Default)]
pub struct Snapshot {
    manager: Props,
    techs: Vec<(Technology, Props)>,
    /// Services in order with their properties.
    services: Vec<(String, Props)>,
    /// Sessions: path, owner, notifier and the settings last sent.
    sessions: Vec<(String, String, String, Props)>,
}

impl Snapshot {
    /// Emits TechnologyAdded/Removed, PropertyChanged and ServicesChanged for
    /// everything that differs from the last snapshot, and remembers the new one.
    pub async fn emit_changes(&mut self, conn: &Connection, model: &Model) {
        let manager = props::manager(model);
        for (k, v) in changed(&self.manager, &manager) {
            emit(
                conn,
                "/",
                names::MANAGER_INTERFACE,
                "PropertyChanged",
                &(k, v),
            )
            .await;
        }
        self.manager = manager;

        let techs: Vec<(Technology, Props)> = model
            .present_techs()
            .map(|t| (t, props::technology(model, t)))
            .collect();
        for (t, p) in &techs {
            let path = names::technology_path(t.as_str());
            match self.techs.iter().find(|(o, _)| o == t) {
                None => {
                    let obj = object_path(&path);
                    emit(
                        conn,
                        "/",
                        names::MANAGER_INTERFACE,
                        "TechnologyAdded",
                        &(obj, as_map(p)),
                    )
                    .await;
                }
                Some((_, old)) => {
                    for (k, v) in changed(old, p) {
                        emit(
                            conn,
                            &path,
                            names::TECHNOLOGY_INTERFACE,
                            "PropertyChanged",
                            &(k, v),
                        )
                        .await;
                    }
                }
            }
        }
        for (t, _) in &self.techs {
            if !techs.iter().any(|(n, _)| n == t) {
                let obj = object_path(&names::technology_path(t.as_str()));
                emit(
                    conn,
                    "/",
                    names::MANAGER_INTERFACE,
                    "TechnologyRemoved",
                    &(obj,),
                )
                .await;
            }
        }
        self.techs = techs;

        let services: Vec<(String, Props)> = order::sorted(model)
            .into_iter()
            .map(|i| {
                let s = &model.services[i];
                (s.id.to_string(), props::service(model, s))
            })
            .collect();
        for (id, p) in &services {
            if let Some((_, old)) = self.services.iter().find(|(o, _)| o == id) {
                let path = names::service_path(id);
                for (k, v) in changed(old, p) {
                    emit(
                        conn,
                        &path,
                        names::SERVICE_INTERFACE,
                        "PropertyChanged",
                        &(k, v),
                    )
                    .await;
                }
            }
        }
        let old_ids: Vec<&str> = self.services.iter().map(|(id, _)| id.as_str()).collect();
        let new_ids: Vec<&str> = services.iter().map(|(id, _)| id.as_str()).collect();
        if old_ids != new_ids {
            let empty = Props::new();
            let changed_list: Vec<(OwnedObjectPath, HashMap<&str, &OwnedValue>)> = services
                .iter()
                .map(|(id, p)| {
                    let is_new = !old_ids.contains(&id.as_str());
                    (
                        object_path(&names::service_path(id)),
                        as_map(if is_new { p } else { &empty }),
                    )
                })
                .collect();
            let removed: Vec<OwnedObjectPath> = old_ids
                .iter()
                .filter(|id| !new_ids.contains(id))
                .map(|id| object_path(&names::service_path(id)))
                .collect();
            emit(
                conn,
                "/",
                names::MANAGER_INTERFACE,
                "ServicesChanged",
                &(changed_list, removed),
            )
            .await;
        }
        self.services = services;
        self.emit_session_changes(conn, model).await;
    }

    /// SessionAdded/SessionRemoved, and `Update` to each session's notifier:
    /// everything the first time, then only what changed.
    async fn emit_session_changes(&mut self, conn: &Connection, model: &Model) {
        let mut next = Vec::with_capacity(model.sessions.len());
        for s in &model.sessions {
            let p = props::session(model, s);
            let old = self.sessions.iter().find(|(path, ..)| *path == s.path);
            let update: Vec<(&str, &OwnedValue)> = match old {
                None => {
                    emit(
                        conn,
                        "/",
                        names::MANAGER_INTERFACE,
                        "SessionAdded",
                        &(object_path(&s.path),),
                    )
                    .await;
                    p.iter().map(|(k, v)| (*k, v)).collect()
                }
                Some((.., old_props)) => changed(old_props, &p).collect(),
            };
            if !update.is_empty() {
                let body: HashMap<&str, &OwnedValue> = update.into_iter().collect();
                notify(conn, &s.owner, &s.notifier, "Update", &(body,)).await;
            }
            next.push((s.path.clone(), s.owner.clone(), s.notifier.clone(), p));
        }
        for (path, ..) in &self.sessions {
            if !model.sessions.iter().any(|s| s.path == *path) {
                emit(
                    conn,
                    "/",
                    names::MANAGER_INTERFACE,
                    "SessionRemoved",
                    &(object_path(path),),
                )
                .await;
            }
        }
        self.sessions = next;
    }

    /// Tells every session's client that the daemon drops it (shutdown).
    pub async fn release_sessions(&mut self, conn: &Connection) {
        for (_, owner, notifier, _) in self.sessions.drain(..) {
            notify(conn, &owner, &notifier, "Release", &()).await;
        }
    }
}

/// A method call to a client's notifier that expects no reply, so a slow or
/// gone client never holds the loop up.
async fn notify<B>(conn: &Connection, owner: &str, path: &str, member: &str, body: &B)
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    let msg = zbus::Message::method_call(path, member)
        .and_then(|b| b.destination(owner))
        .and_then(|b| b.interface(names::NOTIFICATION_INTERFACE))
        .and_then(|b| b.with_flags(zbus::message::Flags::NoReplyExpected))
        .and_then(|b| b.build(body));
    match msg {
        Ok(m) => {
            if let Err(e) = conn.send(&m).await {
                log::debug!("dbus: {member} to {owner} {path} failed: {e}");
            }
        }
        Err(e) => log::warn!("dbus: cannot build {member} for {owner} {path}: {e}"),
    }
}

fn changed<'a>(old: &'a Props, new: &'a Props) -> impl Iterator<Item = (&'a str, &'a OwnedValue)> {
    new.iter().filter_map(move |(k, v)| {
        let before = old.iter().find(|(o, _)| o == k).map(|(_, ov)| ov);
        (before != Some(v)).then_some((*k, v))
    })
}

async fn emit<B>(conn: &Connection, path: &str, iface: &str, member: &str, body: &B)
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    if let Err(e) = conn
        .emit_signal(None::<zbus::names::BusName<'_>>, path, iface, member, body)
        .await
    {
        log::debug!("dbus: signal {member} on {path} failed: {e}");
    }
}
