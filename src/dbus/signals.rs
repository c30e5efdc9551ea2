//! What pathman tells clients without being asked: ConnMan's signals
//! (PropertyChanged, TechnologyAdded/Removed, ServicesChanged,
//! SessionAdded/Removed), the ObjectManager's InterfacesAdded/Removed, and
//! the calls it makes on clients' objects (session `Update`/`Release`,
//! counter `Usage`/`Release`, agent `Release`). Signals come from diffing
//! property snapshots after every change, so they cannot disagree with
//! GetProperties.

use crate::dbus::Connection;
use zbus::zvariant::OwnedObjectPath;

use crate::core::model::Model;
use crate::core::order;
use crate::core::types::Technology;
use crate::dbus::api::{self, Object};
use crate::dbus::names;
use crate::dbus::props::{self, Dict, Prop, Props, Variant};
use crate::dbus::value::object_path;

/// What clients last saw, to emit only differences.
#[derive(Debug, Default)]
pub struct Snapshot {
    manager: Props,
    techs: Vec<(Technology, Props)>,
    /// Services in order with their properties.
    services: Vec<(String, Props)>,
    /// Sessions: path, owner, notifier and the settings last sent.
    sessions: Vec<(String, String, String, Props)>,
    /// Object paths with their interfaces, for the ObjectManager signals.
    objects: Vec<(String, Vec<&'static str>)>,
    /// The Clock's properties but Time (which moves every second: it is
    /// emitted when a measurement changes it, as ConnMan does on a sync).
    clock: Props,
    clock_measured: Option<crate::core::clock::Measured>,
    /// The tethered clients' MACs last announced (TetheringClientsChanged).
    tether_clients: Vec<[u8; 6]>,
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
                names::PROPERTY_CHANGED,
                &(k, Variant(v)),
            )
            .await;
        }
        self.manager = manager;

        let clients = &model.tether.clients;
        if *clients != self.tether_clients {
            let text = |m: &[u8; 6]| crate::dbus::request::mac_text(m);
            let registered: Vec<String> = clients
                .iter()
                .filter(|m| !self.tether_clients.contains(m))
                .map(text)
                .collect();
            let removed: Vec<String> = self
                .tether_clients
                .iter()
                .filter(|m| !clients.contains(m))
                .map(text)
                .collect();
            emit(
                conn,
                "/",
                names::MANAGER_INTERFACE,
                "TetheringClientsChanged",
                &(registered, removed),
            )
            .await;
            self.tether_clients = clients.clone();
        }

        let mut clock = props::clock(model, std::time::SystemTime::now());
        let time = clock.remove(0);
        if self.clock_measured != model.clock.measured && model.clock.measured.is_some() {
            emit(
                conn,
                "/",
                names::CLOCK_INTERFACE,
                names::PROPERTY_CHANGED,
                &(time.0, Variant(&time.1)),
            )
            .await;
        }
        if !self.clock.is_empty() {
            for (k, v) in changed(&self.clock, &clock) {
                emit(
                    conn,
                    "/",
                    names::CLOCK_INTERFACE,
                    names::PROPERTY_CHANGED,
                    &(k, Variant(v)),
                )
                .await;
            }
        }
        self.clock = clock;
        self.clock_measured = model.clock.measured;

        let techs: Vec<(Technology, Props)> = model
            .present_techs()
            .map(|t| (t, props::technology(model, t)))
            .collect();
        for (t, p) in &techs {
            let path = names::technology_path(t.as_str());
            match self.techs.iter().find(|(o, _)| o == t) {
                None => {
                    emit(
                        conn,
                        "/",
                        names::MANAGER_INTERFACE,
                        names::TECHNOLOGY_ADDED,
                        &(object_path(&path), Dict(p)),
                    )
                    .await;
                }
                Some((_, old)) => {
                    for (k, v) in changed(old, p) {
                        emit(
                            conn,
                            &path,
                            names::TECHNOLOGY_INTERFACE,
                            names::PROPERTY_CHANGED,
                            &(k, Variant(v)),
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
                    names::TECHNOLOGY_REMOVED,
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
                        names::PROPERTY_CHANGED,
                        &(k, Variant(v)),
                    )
                    .await;
                }
            }
        }
        let old_ids: Vec<&str> = self.services.iter().map(|(id, _)| id.as_str()).collect();
        let new_ids: Vec<&str> = services.iter().map(|(id, _)| id.as_str()).collect();
        if old_ids != new_ids {
            // ConnMan: every service in order; new ones with all properties.
            let empty = Props::new();
            let changed_list: Vec<(OwnedObjectPath, Dict<'_>)> = services
                .iter()
                .map(|(id, p)| {
                    let is_new = !old_ids.contains(&id.as_str());
                    (
                        object_path(&names::service_path(id)),
                        Dict(if is_new { p } else { &empty }),
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
                names::SERVICES_CHANGED,
                &(changed_list, removed),
            )
            .await;
        }
        self.services = services;
        // The ObjectManager's signals after ConnMan's own: clients wait for
        // ServicesChanged (20 new networks: 20 InterfacesAdded before it
        // would delay it by as many messages), and the objects exist already.
        self.emit_objects(conn, model).await;
        self.emit_session_changes(conn, model).await;
    }

    /// InterfacesAdded / InterfacesRemoved for objects that came or went.
    async fn emit_objects(&mut self, conn: &Connection, model: &Model) {
        let now: Vec<(String, Vec<&'static str>)> = api::objects(model)
            .into_iter()
            .filter(|o| *o != Object::Manager)
            .map(|o| (o.path(), o.interfaces().iter().map(|i| i.name).collect()))
            .collect();
        let om = api::OBJECT_MANAGER.name;
        for (path, ifaces) in &self.objects {
            if !now.iter().any(|(p, _)| p == path) {
                emit(
                    conn,
                    "/",
                    om,
                    "InterfacesRemoved",
                    &(object_path(path), ifaces),
                )
                .await;
            }
        }
        for (path, ifaces) in &now {
            if !self.objects.iter().any(|(p, _)| p == path) {
                let empty = Props::new();
                let body: std::collections::HashMap<&str, Dict<'_>> =
                    ifaces.iter().map(|i| (*i, Dict(&empty))).collect();
                emit(conn, "/", om, "InterfacesAdded", &(object_path(path), body)).await;
            }
        }
        self.objects = now;
    }

    /// SessionAdded/SessionRemoved, and `Update` to each session's notifier:
    /// everything the first time, then only what changed.
    async fn emit_session_changes(&mut self, conn: &Connection, model: &Model) {
        let mut next = Vec::with_capacity(model.sessions.len());
        for s in &model.sessions {
            let p = props::session(model, s);
            let old = self
                .sessions
                .iter()
                .find(|(path, ..)| *path == s.path)
                .map(|(.., props)| props);
            let update: Props = match old {
                None => {
                    emit(
                        conn,
                        "/",
                        names::MANAGER_INTERFACE,
                        "SessionAdded",
                        &(object_path(&s.path),),
                    )
                    .await;
                    p.clone()
                }
                Some(old_props) => changed_owned(old_props, &p),
            };
            if !update.is_empty() {
                call_client(
                    conn,
                    &s.owner,
                    &s.notifier,
                    names::NOTIFICATION_INTERFACE,
                    "Update",
                    &(Dict(&update),),
                )
                .await;
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

    /// Tells every session's client, the agent and every counter that the
    /// daemon drops them (shutdown).
    pub async fn release_clients(&mut self, conn: &Connection, model: &Model) {
        for (_, owner, notifier, _) in self.sessions.drain(..) {
            call_client(
                conn,
                &owner,
                &notifier,
                names::NOTIFICATION_INTERFACE,
                "Release",
                &(),
            )
            .await;
        }
        if let Some(a) = &model.agent {
            call_client(
                conn,
                &a.owner,
                &a.path,
                names::AGENT_INTERFACE,
                "Release",
                &(),
            )
            .await;
        }
        for c in &model.counters {
            call_client(
                conn,
                &c.owner,
                &c.path,
                names::COUNTER_INTERFACE,
                "Release",
                &(),
            )
            .await;
        }
    }
}

/// `Counter.Usage(o service, a{sv} home, a{sv} roaming)`: the usage goes in
/// `home` (pathman knows no roaming yet), `roaming` stays empty except in the
/// first report, which carries every key in both, as ConnMan's does.
pub async fn send_usage(
    conn: &Connection,
    owner: &str,
    counter: &str,
    service: &str,
    home: &Props,
    first: bool,
) {
    let roaming: Props = if first {
        home.iter().map(|(k, _)| (*k, Prop::U32(0))).collect()
    } else {
        Props::new()
    };
    call_client(
        conn,
        owner,
        counter,
        names::COUNTER_INTERFACE,
        "Usage",
        &(
            object_path(&names::service_path(service)),
            Dict(home),
            Dict(&roaming),
        ),
    )
    .await;
}

/// A method call to a client's object that expects no reply, so a slow or
/// gone client never holds the loop up.
pub async fn call_client<B>(
    conn: &Connection,
    owner: &str,
    path: &str,
    iface: &str,
    member: &str,
    body: &B,
) where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    let msg = zbus::Message::method_call(path, member)
        .and_then(|b| b.destination(owner))
        .and_then(|b| b.interface(iface))
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

fn changed_owned(old: &Props, new: &Props) -> Props {
    changed(old, new).map(|(k, v)| (k, v.clone())).collect()
}

fn changed<'a>(old: &'a Props, new: &'a Props) -> impl Iterator<Item = (&'static str, &'a Prop)> {
    new.iter().filter_map(move |(k, v)| {
        let before = old.iter().find(|(o, _)| o == k).map(|(_, ov)| ov);
        (before != Some(v)).then_some((*k, v))
    })
}

async fn emit<B>(conn: &Connection, path: &str, iface: &str, member: &str, body: &B)
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    if let Err(e) = crate::dbus::client::signal(conn, path, iface, member, body).await {
        log::debug!("dbus: signal {member} on {path} failed: {e}");
    }
}
