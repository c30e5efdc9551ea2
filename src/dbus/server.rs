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

/// Who may change things: root, or members of main.conf's AdminGroup.
#[derive(Debug, Default)]
pub struct Access {
    pub admin_group: Option<String>,
    /// uid by unique bus name (unique names are never reused).
    cache: HashMap<String, bool>,
}

impl Access {
    /// An access checker for an optional admin group.
    pub fn new(admin_group: Option<String>) -> Access {
        Access {
            admin_group,
            cache: HashMap::new(),
        }
    }

    async fn allowed(&mut self, conn: &Connection, sender: &str) -> bool {
        if let Some(ok) = self.cache.get(sender) {
            return *ok;
        }
        let uid = match conn
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
            Ok(uid) => uid,
            Err(e) => {
                log::warn!("dbus: cannot learn the uid of {sender}: {e}");
                return false;
            }
        };
        let ok = uid == 0 || self.in_admin_group(uid);
        if self.cache.len() >= 64 {
            self.cache.clear();
        }
        self.cache.insert(sender.to_string(), ok);
        ok
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

/// Handles one incoming message. Returns true when the model may have changed.
pub async fn handle(
    conn: &Connection,
    model: &mut Model,
    access: &mut Access,
    msg: &Message,
) -> bool {
    let header = msg.header();
    if header.message_type() != MsgType::MethodCall {
        return false;
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
        return false;
    }
    if iface == "org.freedesktop.DBus.Peer" && member == "Ping" {
        let _ = conn.reply(&header, &()).await;
        return false;
    }

    let result = decode_and_call(conn, model, access, msg, &path, &iface, &member, &sender).await;
    let (mutated, sent) = match result {
        Ok(answer) => {
            let mutated = request::is_mutating(&member);
            let sent = match answer {
                Answer::Empty => conn.reply(&header, &()).await,
                Answer::Props(p) => conn.reply(&header, &as_map(&p)).await,
                Answer::Objects(list) => {
                    let body: Vec<(OwnedObjectPath, HashMap<&str, &OwnedValue>)> =
                        list.iter().map(|(o, p)| (o.clone(), as_map(p))).collect();
                    conn.reply(&header, &body).await
                }
                Answer::Strings(list) => conn.reply(&header, &list).await,
            };
            (mutated, sent)
        }
        Err(e) => {
            log::debug!(
                "dbus: {iface}.{member} on {path} from {sender}: {}: {}",
                e.name,
                e.message
            );
            let name = format!("{}{}", names::ERROR_PREFIX, e.name);
            (
                false,
                conn.reply_error(&header, name.as_str(), &e.message).await,
            )
        }
    };
    if let Err(e) = sent {
        log::debug!("dbus: reply to {sender} failed: {e}");
    }
    mutated
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
        "o" => Args::Path(
            body.deserialize::<OwnedObjectPath>()
                .map_err(|e| CallError::new("InvalidArguments", e.to_string()))?
                .as_str()
                .to_string(),
        ),
        _ => Args::None,
    };
    if request::is_mutating(member) && !access.allowed(conn, sender).await {
        return Err(CallError::new(
            "PermissionDenied",
            format!("{member} needs root or the admin group"),
        ));
    }
    request::call(model, &target, iface, member, args)
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
    }
}

fn changed<'a>(old: &'a Props, new: &'a Props) -> impl Iterator<Item = (&'a str, &'a OwnedValue)> {
    new.iter().filter_map(move |(k, v)| {
        let before = old.iter().find(|(o, _)| o == k).map(|(_, ov)| ov);
        (before != Some(v)).then_some((*k, v))
    })
}

fn object_path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p.to_string())
        .unwrap_or_else(|_| OwnedObjectPath::try_from("/").expect("'/' is a valid object path"))
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
