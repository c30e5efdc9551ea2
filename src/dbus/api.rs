//! ConnMan's D-Bus interfaces, declared once. Each [`Interface`] lists its
//! methods (name, arguments, who may call it, handler) and signals; that one
//! declaration drives dispatch (a call is found by name and signature), the
//! permission check and `Introspect`, so a method cannot be served without
//! being introspected or introspected without being served. Arguments and
//! their names are ConnMan 1.41's (checked against a running connmand).
//!
//! Which objects exist, and which interfaces each has, also lives here.

use std::fmt::Write;

use crate::core::model::Model;
use crate::core::types::Technology;
use crate::dbus::names;
use crate::dbus::request::{self as rq, Handler};

/// One argument: name and D-Bus signature.
#[derive(Debug)]
pub struct Arg {
    pub name: &'static str,
    pub sig: &'static str,
}

const fn arg(name: &'static str, sig: &'static str) -> Arg {
    Arg { name, sig }
}

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (reading).
    Read,
    /// Root or a member of main.conf's AdminGroup (SPEC §8).
    Admin,
    /// Anyone whose uid the bus can tell; the handler decides per caller
    /// (sessions, counters and agents belong to the connection that made them).
    Client,
}

/// A method: how it is called, who may call it, what runs.
pub struct Method {
    pub name: &'static str,
    pub ins: &'static [Arg],
    pub outs: &'static [Arg],
    pub access: Access,
    /// `org.freedesktop.DBus.Deprecated` in the introspection (as ConnMan marks it).
    pub deprecated: bool,
    pub handler: Handler,
}

impl Method {
    /// The signature of the arguments the method takes, e.g. `sv`.
    pub fn in_signature(&self) -> String {
        self.ins.iter().map(|a| a.sig).collect()
    }
}

/// A signal and its arguments.
#[derive(Debug)]
pub struct Signal {
    pub name: &'static str,
    pub args: &'static [Arg],
}

/// An interface: its name, methods and signals.
pub struct Interface {
    pub name: &'static str,
    pub methods: &'static [Method],
    pub signals: &'static [Signal],
}

impl Interface {
    /// The method called `name` taking `sig`, if there is one.
    pub fn method(&self, name: &str, sig: &str) -> Option<&'static Method> {
        self.methods
            .iter()
            .find(|m| m.name == name && m.in_signature() == sig)
    }
}

const fn m(
    name: &'static str,
    ins: &'static [Arg],
    outs: &'static [Arg],
    access: Access,
    handler: Handler,
) -> Method {
    Method {
        name,
        ins,
        outs,
        access,
        deprecated: false,
        handler,
    }
}

const fn deprecated(method: Method) -> Method {
    Method {
        deprecated: true,
        ..method
    }
}

use Access::{Admin, Client, Read};

const PROPERTIES: &[Arg] = &[arg("properties", "a{sv}")];
const NAME_VALUE: &[Arg] = &[arg("name", "s"), arg("value", "v")];
const NONE: &[Arg] = &[];
const PROPERTY_CHANGED: Signal = Signal {
    name: names::PROPERTY_CHANGED,
    args: NAME_VALUE,
};

/// `org.freedesktop.DBus.Introspectable`, on every object.
pub static INTROSPECTABLE: Interface = Interface {
    name: "org.freedesktop.DBus.Introspectable",
    methods: &[m(
        "Introspect",
        NONE,
        &[arg("xml", "s")],
        Read,
        rq::introspect,
    )],
    signals: &[],
};

/// `org.freedesktop.DBus.ObjectManager` at `/` (ConnMan has it through gdbus).
pub static OBJECT_MANAGER: Interface = Interface {
    name: "org.freedesktop.DBus.ObjectManager",
    methods: &[m(
        "GetManagedObjects",
        NONE,
        &[arg("objects", "a{oa{sa{sv}}}")],
        Read,
        rq::get_managed_objects,
    )],
    signals: &[
        Signal {
            name: "InterfacesAdded",
            args: &[arg("object", "o"), arg("interfaces", "a{sa{sv}}")],
        },
        Signal {
            name: "InterfacesRemoved",
            args: &[arg("object", "o"), arg("interfaces", "as")],
        },
    ],
};

/// pathman's own `net.connman.pathman.Debug` at `/`: the serial-console
/// state dump (`pathman ctl state --all`). Not ConnMan's: its clients never
/// see it unless they look for it.
pub static DEBUG: Interface = Interface {
    name: names::DEBUG_INTERFACE,
    methods: &[m(
        "GetState",
        NONE,
        &[arg("state", "s")],
        Admin,
        rq::get_state,
    )],
    signals: &[],
};

/// `net.connman.Manager` at `/`, in ConnMan's order, plus the multipath
/// fork's GetSessions/SessionAdded/SessionRemoved.
pub static MANAGER: Interface = Interface {
    name: names::MANAGER_INTERFACE,
    methods: &[
        m("GetProperties", NONE, PROPERTIES, Read, rq::get_properties),
        m("SetProperty", NAME_VALUE, NONE, Admin, rq::set_property),
        m(
            "GetTechnologies",
            NONE,
            &[arg("technologies", "a(oa{sv})")],
            Read,
            rq::get_technologies,
        ),
        deprecated(m(
            "RemoveProvider",
            &[arg("provider", "o")],
            NONE,
            Admin,
            rq::no_vpn,
        )),
        m(
            "GetServices",
            NONE,
            &[arg("services", "a(oa{sv})")],
            Read,
            rq::get_services,
        ),
        m(
            "GetPeers",
            NONE,
            &[arg("peers", "a(oa{sv})")],
            Read,
            rq::get_peers,
        ),
        m(
            "GetTetheringClients",
            NONE,
            &[arg("tethering_clients", "as")],
            Read,
            rq::get_tethering_clients,
        ),
        deprecated(m(
            "ConnectProvider",
            &[arg("provider", "a{sv}")],
            &[arg("path", "o")],
            Admin,
            rq::no_vpn,
        )),
        m(
            "RegisterAgent",
            &[arg("path", "o")],
            NONE,
            Admin,
            rq::register_agent,
        ),
        m(
            "UnregisterAgent",
            &[arg("path", "o")],
            NONE,
            Client,
            rq::unregister_agent,
        ),
        m(
            "RegisterCounter",
            &[arg("path", "o"), arg("accuracy", "u"), arg("period", "u")],
            NONE,
            Client,
            rq::register_counter,
        ),
        m(
            "UnregisterCounter",
            &[arg("path", "o")],
            NONE,
            Client,
            rq::unregister_counter,
        ),
        m(
            "CreateSession",
            &[arg("settings", "a{sv}"), arg("notifier", "o")],
            &[arg("session", "o")],
            Client,
            rq::create_session,
        ),
        m(
            "DestroySession",
            &[arg("session", "o")],
            NONE,
            Client,
            rq::destroy_session,
        ),
        m(
            "RequestPrivateNetwork",
            NONE,
            &[
                arg("path", "o"),
                arg("settings", "a{sv}"),
                arg("socket", "h"),
            ],
            Admin,
            rq::no_private_network,
        ),
        m(
            "ReleasePrivateNetwork",
            &[arg("path", "o")],
            NONE,
            Admin,
            rq::no_private_network,
        ),
        m(
            "RegisterPeerService",
            &[arg("specification", "a{sv}"), arg("master", "b")],
            NONE,
            Admin,
            rq::no_peers,
        ),
        m(
            "UnregisterPeerService",
            &[arg("specification", "a{sv}")],
            NONE,
            Admin,
            rq::no_peers,
        ),
        m(
            "GetSessions",
            NONE,
            &[arg("sessions", "ao")],
            Read,
            rq::get_sessions,
        ),
    ],
    signals: &[
        PROPERTY_CHANGED,
        Signal {
            name: names::TECHNOLOGY_ADDED,
            args: &[arg("path", "o"), arg("properties", "a{sv}")],
        },
        Signal {
            name: names::TECHNOLOGY_REMOVED,
            args: &[arg("path", "o")],
        },
        Signal {
            name: names::SERVICES_CHANGED,
            args: &[arg("changed", "a(oa{sv})"), arg("removed", "ao")],
        },
        Signal {
            name: "PeersChanged",
            args: &[arg("changed", "a(oa{sv})"), arg("removed", "ao")],
        },
        Signal {
            name: "TetheringClientsChanged",
            args: &[arg("registered", "as"), arg("removed", "as")],
        },
        Signal {
            name: "SessionAdded",
            args: &[arg("session", "o")],
        },
        Signal {
            name: "SessionRemoved",
            args: &[arg("session", "o")],
        },
    ],
};

/// `net.connman.Clock` at `/` (beside the Manager, as in ConnMan).
pub static CLOCK: Interface = Interface {
    name: names::CLOCK_INTERFACE,
    methods: &[
        m(
            "GetProperties",
            NONE,
            PROPERTIES,
            Read,
            rq::clock_get_properties,
        ),
        m(
            "SetProperty",
            NAME_VALUE,
            NONE,
            Admin,
            rq::clock_set_property,
        ),
    ],
    signals: &[PROPERTY_CHANGED],
};

/// `net.connman.Technology` at `/net/connman/technology/<type>`.
pub static TECHNOLOGY: Interface = Interface {
    name: names::TECHNOLOGY_INTERFACE,
    methods: &[
        deprecated(m(
            "GetProperties",
            NONE,
            PROPERTIES,
            Read,
            rq::get_properties,
        )),
        m("SetProperty", NAME_VALUE, NONE, Admin, rq::set_property),
        m("Scan", NONE, NONE, Admin, rq::scan),
    ],
    signals: &[PROPERTY_CHANGED],
};

/// `net.connman.Service` at `/net/connman/service/<id>`.
pub static SERVICE: Interface = Interface {
    name: names::SERVICE_INTERFACE,
    methods: &[
        deprecated(m(
            "GetProperties",
            NONE,
            PROPERTIES,
            Read,
            rq::get_properties,
        )),
        m("SetProperty", NAME_VALUE, NONE, Admin, rq::set_property),
        m(
            "ClearProperty",
            &[arg("name", "s")],
            NONE,
            Admin,
            rq::clear_property,
        ),
        m("Connect", NONE, NONE, Admin, rq::connect),
        m("Disconnect", NONE, NONE, Admin, rq::disconnect),
        m("Remove", NONE, NONE, Admin, rq::remove),
        m(
            "MoveBefore",
            &[arg("service", "o")],
            NONE,
            Admin,
            rq::move_before,
        ),
        m(
            "MoveAfter",
            &[arg("service", "o")],
            NONE,
            Admin,
            rq::move_after,
        ),
        m("ResetCounters", NONE, NONE, Admin, rq::reset_counters),
    ],
    signals: &[PROPERTY_CHANGED],
};

/// `net.connman.Session` at the path CreateSession returned.
pub static SESSION: Interface = Interface {
    name: names::SESSION_INTERFACE,
    methods: &[
        m("Destroy", NONE, NONE, Client, rq::session_destroy),
        m("Connect", NONE, NONE, Client, rq::session_connect),
        m("Disconnect", NONE, NONE, Client, rq::session_disconnect),
        m("Change", NAME_VALUE, NONE, Client, rq::session_change),
    ],
    signals: &[],
};

/// An object pathman serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `/`: Manager (and ObjectManager).
    Manager,
    Technology(Technology),
    /// A service, by identifier.
    Service(String),
    /// A session, by object path.
    Session(String),
}

impl Object {
    /// The interfaces of the object, `Introspectable` first, as ConnMan lists them.
    pub fn interfaces(&self) -> &'static [&'static Interface] {
        static ROOT: [&Interface; 5] = [&INTROSPECTABLE, &OBJECT_MANAGER, &MANAGER, &CLOCK, &DEBUG];
        static TECH: [&Interface; 2] = [&INTROSPECTABLE, &TECHNOLOGY];
        static SVC: [&Interface; 2] = [&INTROSPECTABLE, &SERVICE];
        static SESS: [&Interface; 2] = [&INTROSPECTABLE, &SESSION];
        match self {
            Object::Manager => &ROOT,
            Object::Technology(_) => &TECH,
            Object::Service(_) => &SVC,
            Object::Session(_) => &SESS,
        }
    }

    /// The object's path.
    pub fn path(&self) -> String {
        match self {
            Object::Manager => names::MANAGER_PATH.to_string(),
            Object::Technology(t) => names::technology_path(t.as_str()),
            Object::Service(id) => names::service_path(id),
            Object::Session(p) => p.clone(),
        }
    }
}

/// The object at `path`, if one exists now. Technologies exist while they
/// have a device, services and sessions while the model has them.
pub fn object_at(model: &Model, path: &str) -> Option<Object> {
    if path == names::MANAGER_PATH {
        return Some(Object::Manager);
    }
    if let Some(t) = path.strip_prefix(names::TECHNOLOGY_PATH_PREFIX) {
        return Technology::parse(t)
            .filter(|t| model.present_techs().any(|p| p == *t))
            .map(Object::Technology);
    }
    if let Some(id) = path.strip_prefix(names::SERVICE_PATH_PREFIX) {
        return model.service(id).map(|s| Object::Service(s.id.to_string()));
    }
    model
        .sessions
        .iter()
        .find(|s| s.path == path)
        .map(|s| Object::Session(s.path.clone()))
}

/// Every object that exists, `/` first, then technologies, services (in
/// service order) and sessions.
pub fn objects(model: &Model) -> Vec<Object> {
    let mut out = vec![Object::Manager];
    out.extend(model.present_techs().map(Object::Technology));
    out.extend(
        crate::core::order::sorted(model)
            .into_iter()
            .map(|i| Object::Service(model.services[i].id.to_string())),
    );
    out.extend(
        model
            .sessions
            .iter()
            .map(|s| Object::Session(s.path.clone())),
    );
    out
}

/// The child node names of `path`: the next path element of every object below it.
pub fn children(model: &Model, path: &str) -> Vec<String> {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    let mut out: Vec<String> = Vec::new();
    for o in objects(model) {
        let p = o.path();
        if let Some(rest) = p.strip_prefix(&prefix) {
            if let Some(first) = rest.split('/').next().filter(|s| !s.is_empty()) {
                if !out.iter().any(|c| c == first) {
                    out.push(first.to_string());
                }
            }
        }
    }
    crate::sort::sort(&mut out);
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn write_interface(xml: &mut String, iface: &Interface) {
    let _ = write!(xml, "<interface name=\"{}\">", iface.name);
    for m in iface.methods {
        let _ = write!(xml, "<method name=\"{}\">", m.name);
        for a in m.ins {
            let _ = writeln!(
                xml,
                "<arg name=\"{}\" type=\"{}\" direction=\"in\"/>",
                a.name, a.sig
            );
        }
        for a in m.outs {
            let _ = writeln!(
                xml,
                "<arg name=\"{}\" type=\"{}\" direction=\"out\"/>",
                a.name, a.sig
            );
        }
        if m.deprecated {
            xml.push_str("<annotation name=\"org.freedesktop.DBus.Deprecated\" value=\"true\"/>");
        }
        xml.push_str("</method>");
    }
    for s in iface.signals {
        let _ = write!(xml, "<signal name=\"{}\">", s.name);
        for a in s.args {
            let _ = writeln!(xml, "<arg name=\"{}\" type=\"{}\"/>", a.name, a.sig);
        }
        xml.push_str("</signal>\n");
    }
    xml.push_str("</interface>");
}

/// The introspection XML of `path`: the interfaces of the object there (if
/// any) and its child nodes. A path with no object and no children
/// introspects as an empty node, as with ConnMan.
pub fn introspect(model: &Model, path: &str) -> String {
    let mut xml = String::from(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n\
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>",
    );
    if let Some(obj) = object_at(model, path) {
        for iface in obj.interfaces() {
            write_interface(&mut xml, iface);
        }
    } else {
        xml.push('\n');
    }
    for c in children(model, path) {
        let _ = writeln!(xml, "  <node name=\"{}\"/>", escape(&c));
    }
    xml.push_str("</node>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::ModelSettings;

    #[test]
    fn every_method_has_a_unique_name_and_signature_per_interface() {
        for iface in [
            &INTROSPECTABLE,
            &OBJECT_MANAGER,
            &MANAGER,
            &CLOCK,
            &DEBUG,
            &TECHNOLOGY,
            &SERVICE,
            &SESSION,
        ] {
            for (i, a) in iface.methods.iter().enumerate() {
                for b in &iface.methods[i + 1..] {
                    assert!(
                        a.name != b.name || a.in_signature() != b.in_signature(),
                        "{}.{} twice",
                        iface.name,
                        a.name
                    );
                }
            }
        }
    }

    #[test]
    fn manager_lists_arguments_and_missing_objects_introspect_as_nothing() {
        let model = Model::new(ModelSettings::default(), false, &[]);
        let xml = introspect(&model, "/");
        assert!(xml.contains(
            "<method name=\"SetProperty\"><arg name=\"name\" type=\"s\" direction=\"in\"/>"
        ));
        assert!(xml.contains("<method name=\"CreateSession\"><arg name=\"settings\" type=\"a{sv}\" direction=\"in\"/>"));
        assert!(xml.contains("<node name=\"net\"/>") || children(&model, "/").is_empty());
        let none = introspect(&model, "/net/connman/service/nothing");
        assert!(!none.contains("<interface"), "{none}");
        assert_eq!(object_at(&model, "/net/connman/service/nothing"), None);
        assert_eq!(object_at(&model, "/"), Some(Object::Manager));
    }
}
