//! ConnMan's D-Bus methods mapped onto the model (iwd style: a thin layer;
//! every decision is the model's). Pure: a decoded call in, an [`Answer`] or
//! a ConnMan error out. The server does the I/O.

use std::net::{IpAddr, Ipv4Addr};

use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::core::model::{Model, RequestError};
use crate::core::order;
use crate::core::session as core_session;
use crate::core::types::{
    mask_to_prefix, DomainList, Ipv4Method, Ipv4Net, Ipv6Method, MptcpLink, ServerList,
    ServiceConfig, Technology, TimeserverList,
};
use crate::core::validate::{
    check_manual_ipv4, check_server_addr, parse_domain, parse_timeserver, Ipv4Field,
};
use crate::dbus::names;
use crate::dbus::props::{self, Props};
use crate::dbus::session::{self, Caller};
use crate::dbus::value::{self, bool_of, dict_entries, object_path, str_of, string_list};

/// Which object a call addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Manager,
    Technology(Technology),
    Service(String),
    Session(String),
}

impl Target {
    /// Resolves an object path; `None` for paths pathman does not serve.
    pub fn from_path(path: &str) -> Option<Target> {
        if path == "/" {
            return Some(Target::Manager);
        }
        if let Some(t) = path.strip_prefix("/net/connman/technology/") {
            return Technology::parse(t).map(Target::Technology);
        }
        if path.starts_with(names::SESSION_PATH_PREFIX) {
            return Some(Target::Session(path.to_string()));
        }
        path.strip_prefix("/net/connman/service/")
            .filter(|id| !id.is_empty())
            .map(|id| Target::Service(id.to_string()))
    }
}

/// A successful answer, serialised by the server.
#[derive(Debug)]
pub enum Answer {
    Empty,
    Props(Props),
    /// `a(oa{sv})` for GetTechnologies/GetServices.
    Objects(Vec<(OwnedObjectPath, Props)>),
    /// `as` (GetTetheringClients).
    Strings(Vec<String>),
    /// `o` (CreateSession).
    Path(OwnedObjectPath),
    /// `ao` (GetSessions).
    Paths(Vec<OwnedObjectPath>),
}

/// A ConnMan error: `net.connman.Error.<name>` plus a message saying what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub name: &'static str,
    pub message: String,
}

impl CallError {
    pub fn new(name: &'static str, message: impl Into<String>) -> CallError {
        CallError {
            name,
            message: message.into(),
        }
    }
    pub(crate) fn invalid(message: impl Into<String>) -> CallError {
        CallError::new("InvalidArguments", message)
    }
}

impl From<RequestError> for CallError {
    fn from(e: RequestError) -> CallError {
        CallError::new(e.dbus_name(), e.to_string())
    }
}

/// The arguments of a call, already type-checked by the server.
#[derive(Debug)]
pub enum Args {
    None,
    /// `(s, v)` — SetProperty.
    Property(String, OwnedValue),
    /// `(s)` — ClearProperty.
    Name(String),
    /// `(o)` — MoveBefore/MoveAfter, agents, DestroySession.
    Path(String),
    /// `(a{sv}o)` — CreateSession.
    Create(std::collections::HashMap<String, OwnedValue>, String),
}

/// True for calls that change something (need root or AdminGroup).
pub fn is_mutating(member: &str) -> bool {
    matches!(
        member,
        "SetProperty"
            | "ClearProperty"
            | "Connect"
            | "Disconnect"
            | "Remove"
            | "MoveBefore"
            | "MoveAfter"
            | "ResetCounters"
    )
}

/// The signature each method expects, for the server's type check.
pub fn expected_signature(member: &str) -> Option<&'static str> {
    Some(match member {
        "SetProperty" | "Change" => "sv",
        "CreateSession" => "a{sv}o",
        "DestroySession" => "o",
        "GetSessions" | "Destroy" => "",
        "ClearProperty" => "s",
        "MoveBefore" | "MoveAfter" | "RegisterAgent" | "UnregisterAgent" => "o",
        "GetProperties"
        | "GetTechnologies"
        | "GetServices"
        | "GetPeers"
        | "GetTetheringClients"
        | "Connect"
        | "Disconnect"
        | "Remove"
        | "ResetCounters"
        | "Scan" => "",
        _ => return None,
    })
}

/// Executes one call against the model.
pub fn call(
    model: &mut Model,
    target: &Target,
    iface: &str,
    member: &str,
    args: Args,
    caller: &Caller,
) -> Result<Answer, CallError> {
    match (target, iface, member) {
        (Target::Technology(t), "net.connman.Technology", _) => technology(model, *t, member, args),
        (Target::Service(id), "net.connman.Service", _) => service(model, id, member, args),
        (Target::Session(path), "net.connman.Session", _) => {
            session_call(model, path, member, args, caller)
        }
        (
            Target::Manager,
            "net.connman.Manager",
            "CreateSession" | "DestroySession" | "GetSessions",
        ) => manager_sessions(model, member, args, caller),
        (Target::Manager, "net.connman.Manager", _) => manager(model, member, args),
        _ => Err(CallError::new(
            "NotImplemented",
            format!("no method {iface}.{member} on this object"),
        )),
    }
}

fn manager(model: &mut Model, member: &str, args: Args) -> Result<Answer, CallError> {
    match member {
        "GetProperties" => Ok(Answer::Props(props::manager(model))),
        "SetProperty" => {
            let Args::Property(name, value) = args else {
                return Err(CallError::invalid("SetProperty needs (s, v)"));
            };
            match name.as_str() {
                "OfflineMode" => {
                    let on = bool_of(&value, &name)?;
                    model.set_offline(on);
                    Ok(Answer::Empty)
                }
                // Deprecated no-op in ConnMan; accepted for compatibility.
                "SessionMode" => bool_of(&value, &name).map(|_| Answer::Empty),
                _ => Err(CallError::new(
                    "InvalidProperty",
                    format!("Manager property {name} is not writable or unknown"),
                )),
            }
        }
        "GetTechnologies" => Ok(Answer::Objects(
            model
                .present_techs()
                .map(|t| {
                    (
                        object_path(&names::technology_path(t.as_str())),
                        props::technology(model, t),
                    )
                })
                .collect(),
        )),
        "GetServices" => Ok(Answer::Objects(
            order::sorted(model)
                .into_iter()
                .map(|i| {
                    let s = &model.services[i];
                    (
                        object_path(&names::service_path(&s.id)),
                        props::service(model, s),
                    )
                })
                .collect(),
        )),
        "GetPeers" => Ok(Answer::Objects(Vec::new())),
        "GetTetheringClients" => Ok(Answer::Strings(Vec::new())),
        // Wired services never ask for input; an agent is accepted and unused.
        "RegisterAgent" | "UnregisterAgent" => Ok(Answer::Empty),
        _ => Err(CallError::new(
            "NotImplemented",
            format!("net.connman.Manager.{member} is not implemented"),
        )),
    }
}

fn manager_sessions(
    model: &mut Model,
    member: &str,
    args: Args,
    caller: &Caller,
) -> Result<Answer, CallError> {
    match (member, args) {
        ("CreateSession", Args::Create(settings, notifier)) => {
            let path = session::create(model, caller, &settings, &notifier)?;
            Ok(Answer::Path(object_path(&path)))
        }
        ("DestroySession", Args::Path(path)) => {
            core_session::destroy(model, &caller.name, &path)?;
            Ok(Answer::Empty)
        }
        ("GetSessions", _) => Ok(Answer::Paths(
            model
                .sessions
                .iter()
                .map(|s| object_path(&s.path))
                .collect(),
        )),
        (m, _) => Err(CallError::invalid(format!("bad arguments for {m}"))),
    }
}

fn session_call(
    model: &mut Model,
    path: &str,
    member: &str,
    args: Args,
    caller: &Caller,
) -> Result<Answer, CallError> {
    match (member, args) {
        ("Connect", _) => {
            core_session::set_active(model, &caller.name, path, true).map_err(Into::into)
        }
        ("Disconnect", _) => {
            core_session::set_active(model, &caller.name, path, false).map_err(Into::into)
        }
        ("Destroy", _) => core_session::destroy(model, &caller.name, path).map_err(Into::into),
        ("Change", Args::Property(key, value)) => {
            session::change(model, &caller.name, path, &key, &value)
        }
        (m, _) => Err(CallError::new(
            "NotImplemented",
            format!("net.connman.Session.{m} is not implemented"),
        )),
    }
    .map(|_| Answer::Empty)
}

fn technology(
    model: &mut Model,
    tech: Technology,
    member: &str,
    args: Args,
) -> Result<Answer, CallError> {
    if !model.present_techs().any(|t| t == tech) {
        return Err(CallError::new(
            "NotFound",
            format!("technology {tech} has no device"),
        ));
    }
    match member {
        "GetProperties" => Ok(Answer::Props(props::technology(model, tech))),
        "SetProperty" => {
            let Args::Property(name, value) = args else {
                return Err(CallError::invalid("SetProperty needs (s, v)"));
            };
            match name.as_str() {
                "Powered" => {
                    let on = bool_of(&value, &name)?;
                    model.set_powered(tech, on)?;
                    Ok(Answer::Empty)
                }
                "Tethering" => Err(CallError::new(
                    "NotSupported",
                    "tethering is not supported yet",
                )),
                _ => Err(CallError::new(
                    "InvalidProperty",
                    format!("Technology property {name} is not writable or unknown"),
                )),
            }
        }
        "Scan" => Err(CallError::new(
            "NotSupported",
            format!("{tech} cannot scan"),
        )),
        _ => Err(CallError::new(
            "NotImplemented",
            format!("net.connman.Technology.{member} is not implemented"),
        )),
    }
}

fn service(model: &mut Model, id: &str, member: &str, args: Args) -> Result<Answer, CallError> {
    let Some(svc) = model.service(id) else {
        return Err(CallError::new(
            "NotFound",
            format!("service {id} not found"),
        ));
    };
    match member {
        "GetProperties" => Ok(Answer::Props(props::service(model, svc))),
        "SetProperty" => {
            let Args::Property(name, value) = args else {
                return Err(CallError::invalid("SetProperty needs (s, v)"));
            };
            let mut cfg = svc.config.clone();
            set_service_property(&mut cfg, &name, &value)?;
            model.configure(id, cfg)?;
            Ok(Answer::Empty)
        }
        "ClearProperty" => {
            let Args::Name(name) = args else {
                return Err(CallError::invalid("ClearProperty needs (s)"));
            };
            if name != "Error" {
                return Err(CallError::new(
                    "InvalidProperty",
                    format!("only Error can be cleared, not {name}"),
                ));
            }
            Ok(Answer::Empty)
        }
        "Connect" => model.connect(id).map(|_| Answer::Empty).map_err(Into::into),
        "Disconnect" => model
            .disconnect(id)
            .map(|_| Answer::Empty)
            .map_err(Into::into),
        "Remove" => model.remove(id).map(|_| Answer::Empty).map_err(Into::into),
        "MoveBefore" | "MoveAfter" => {
            let Args::Path(target) = args else {
                return Err(CallError::invalid(format!("{member} needs (o)")));
            };
            let Some(Target::Service(other)) = Target::from_path(&target) else {
                return Err(CallError::invalid(format!(
                    "{target} is not a service path"
                )));
            };
            model.move_service(id, &other, member == "MoveBefore")?;
            Ok(Answer::Empty)
        }
        "ResetCounters" => Ok(Answer::Empty),
        _ => Err(CallError::new(
            "NotImplemented",
            format!("net.connman.Service.{member} is not implemented"),
        )),
    }
}

fn ipv4_addr(v: &Value<'_>, key: &str) -> Result<Ipv4Addr, CallError> {
    let s = str_of(v, key)?;
    s.parse().map_err(|_| {
        CallError::invalid(format!(
            "IPv4.Configuration: {key} '{s}' is not an IPv4 address"
        ))
    })
}

/// Parses `Nameservers.Configuration` (`as`): unicast server addresses
/// only (see [`check_server_addr`]); the first bad item refuses the list.
pub fn parse_servers(items: &[String], what: &str) -> Result<ServerList, String> {
    let mut out = ServerList::new();
    for s in items.iter().filter(|s| !s.is_empty()) {
        let addr: IpAddr = s
            .parse()
            .map_err(|_| format!("{what}: '{s}' is not an IP address"))?;
        check_server_addr(addr).map_err(|why| format!("{what}: {s} {why}, not a server"))?;
        out.push(addr).map_err(|_| too_many(what))?;
    }
    Ok(out)
}

/// Parses `Timeservers.Configuration` (`as`): server addresses or host
/// names (see [`parse_timeserver`]); the first bad item refuses the list.
pub fn parse_timeservers(items: &[String], what: &str) -> Result<TimeserverList, String> {
    let mut out = TimeserverList::new();
    for s in items.iter().filter(|s| !s.is_empty()) {
        let t = parse_timeserver(s).map_err(|why| format!("{what}: {s:?} {why}"))?;
        out.push(t).map_err(|_| too_many(what))?;
    }
    Ok(out)
}

/// Parses `Domains.Configuration` (`as`): valid domain names only, so
/// nothing else can reach resolv.conf's `search` line.
pub fn parse_domains(items: &[String], what: &str) -> Result<DomainList, String> {
    let mut out = DomainList::new();
    for d in items.iter().filter(|d| !d.is_empty()) {
        let name = parse_domain(d)
            .map_err(|why| format!("{what}: {d:?} is not a domain name: it {why}"))?;
        out.push(name).map_err(|_| too_many(what))?;
    }
    Ok(out)
}

fn too_many(what: &str) -> String {
    format!(
        "{what}: more than {} entries (caps::MAX_SERVERS)",
        crate::caps::MAX_SERVERS
    )
}

/// Applies one writable Service property to a configuration (validating it whole).
pub fn set_service_property(
    cfg: &mut ServiceConfig,
    name: &str,
    value: &Value<'_>,
) -> Result<(), CallError> {
    let value = value::inner(value);
    match name {
        "AutoConnect" => cfg.auto_connect = bool_of(value, name)?,
        "MultipathRouting" => cfg.multipath_routing = Some(bool_of(value, name)?),
        "MultipathTcpLink" => {
            let s = str_of(value, name)?;
            cfg.mptcp_link = MptcpLink::parse(s).ok_or_else(|| {
                CallError::invalid(format!(
                    "MultipathTcpLink must be on, backup or off, not '{s}'"
                ))
            })?;
        }
        "Nameservers.Configuration" => {
            cfg.nameservers =
                parse_servers(&string_list(value, name)?, name).map_err(CallError::invalid)?;
        }
        "Timeservers.Configuration" => {
            cfg.timeservers =
                parse_timeservers(&string_list(value, name)?, name).map_err(CallError::invalid)?;
        }
        "Domains.Configuration" => {
            cfg.domains =
                parse_domains(&string_list(value, name)?, name).map_err(CallError::invalid)?;
        }
        "IPv4.Configuration" => cfg.ipv4 = parse_ipv4_config(value)?,
        "IPv6.Configuration" => {
            let entries = dict_entries(value, name)?;
            let method = entries
                .iter()
                .find(|(k, _)| k == "Method")
                .map(|(_, v)| str_of(v, "Method"))
                .transpose()?
                .ok_or_else(|| CallError::invalid("IPv6.Configuration needs a Method"))?;
            cfg.ipv6 = match method {
                "auto" => Ipv6Method::Auto,
                "off" => Ipv6Method::Off,
                "manual" | "6to4" => {
                    return Err(CallError::new(
                        "NotSupported",
                        format!("IPv6 method {method} is not supported yet"),
                    ))
                }
                other => {
                    return Err(CallError::invalid(format!(
                        "IPv6.Configuration: unknown Method '{other}'"
                    )))
                }
            };
        }
        "Proxy.Configuration" | "mDNS.Configuration" => {
            return Err(CallError::new(
                "NotSupported",
                format!("{name} is not supported"),
            ));
        }
        _ => {
            return Err(CallError::new(
                "InvalidProperty",
                format!("Service property {name} is not writable or unknown"),
            ))
        }
    }
    Ok(())
}

fn parse_ipv4_config(value: &Value<'_>) -> Result<Ipv4Method, CallError> {
    let entries = dict_entries(value, "IPv4.Configuration")?;
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    for (k, _) in &entries {
        if !matches!(k.as_str(), "Method" | "Address" | "Netmask" | "Gateway") {
            return Err(CallError::invalid(format!(
                "IPv4.Configuration: unknown key {k}"
            )));
        }
    }
    let method = get("Method")
        .map(|v| str_of(v, "Method"))
        .transpose()?
        .ok_or_else(|| CallError::invalid("IPv4.Configuration needs a Method"))?;
    match method {
        "dhcp" => Ok(Ipv4Method::Dhcp),
        "off" => Ok(Ipv4Method::Off),
        "manual" => {
            let addr = get("Address")
                .map(|v| ipv4_addr(v, "Address"))
                .transpose()?
                .ok_or_else(|| CallError::invalid("IPv4.Configuration: manual needs an Address"))?;
            let mask = get("Netmask")
                .map(|v| ipv4_addr(v, "Netmask"))
                .transpose()?
                .unwrap_or(Ipv4Addr::new(255, 255, 255, 0));
            let prefix_len = mask_to_prefix(mask).ok_or_else(|| {
                CallError::invalid(format!(
                    "IPv4.Configuration: Netmask {mask} is not contiguous"
                ))
            })?;
            // No gateway: the key absent, empty, or ConnMan's 0.0.0.0.
            let gateway = match get("Gateway") {
                None => None,
                Some(v) if str_of(v, "Gateway")?.is_empty() => None,
                Some(v) => Some(ipv4_addr(v, "Gateway")?).filter(|g| !g.is_unspecified()),
            };
            let net = Ipv4Net { addr, prefix_len };
            check_manual_ipv4(net, gateway).map_err(|e| {
                let field = match e.field() {
                    Ipv4Field::Address => "Address",
                    Ipv4Field::Prefix => "Netmask",
                    Ipv4Field::Gateway => "Gateway",
                };
                CallError::invalid(format!("IPv4.Configuration: {field}: {e}"))
            })?;
            Ok(Ipv4Method::Manual { addr: net, gateway })
        }
        "auto" | "fixed" => Err(CallError::new(
            "NotSupported",
            format!("IPv4 method {method} cannot be set; use dhcp (IPv4LL is automatic)"),
        )),
        other => Err(CallError::invalid(format!(
            "IPv4.Configuration: unknown Method '{other}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ipv4(method: &str, addr: &str, mask: Option<&str>, gw: Option<&str>) -> Value<'static> {
        let mut d: HashMap<&'static str, Value<'static>> = HashMap::new();
        d.insert("Method", Value::from(method.to_string()));
        d.insert("Address", Value::from(addr.to_string()));
        if let Some(m) = mask {
            d.insert("Netmask", Value::from(m.to_string()));
        }
        if let Some(g) = gw {
            d.insert("Gateway", Value::from(g.to_string()));
        }
        Value::from(d)
    }

    fn set(name: &str, value: &Value<'_>) -> (ServiceConfig, Result<(), CallError>) {
        let mut cfg = ServiceConfig::default();
        let r = set_service_property(&mut cfg, name, value);
        (cfg, r)
    }

    fn list(items: &[&str]) -> Value<'static> {
        Value::from(items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// Everything the kernel must never get is refused with
    /// InvalidArguments naming the field and why, and nothing changes.
    /// Loopback, class E, multicast gateways, prefix 0 and network or
    /// broadcast addresses used to be accepted.
    #[test]
    fn bad_manual_ipv4_is_refused_naming_the_field() {
        let m24 = Some("255.255.255.0");
        for (addr, mask, gw, want) in [
            (
                "127.0.0.1",
                Some("255.0.0.0"),
                None,
                "Address: address 127.0.0.1 is in 127.0.0.0/8 (loopback)",
            ),
            (
                "240.0.0.1",
                m24,
                None,
                "Address: address 240.0.0.1 is in 240.0.0.0/4 (reserved, class E)",
            ),
            (
                "0.1.2.3",
                m24,
                None,
                "Address: address 0.1.2.3 is in 0.0.0.0/8",
            ),
            (
                "192.0.2.0",
                m24,
                None,
                "Address: address 192.0.2.0 is the network address of 192.0.2.0/24",
            ),
            (
                "192.0.2.255",
                m24,
                None,
                "Address: address 192.0.2.255 is the broadcast address of 192.0.2.0/24",
            ),
            (
                "192.0.2.10",
                Some("0.0.0.0"),
                None,
                "Netmask: prefix length 0 is outside 1..=32",
            ),
            (
                "192.0.2.10",
                m24,
                Some("224.0.0.1"),
                "Gateway: gateway 224.0.0.1 is in 224.0.0.0/4 (multicast)",
            ),
            (
                "192.0.2.10",
                m24,
                Some("127.0.0.1"),
                "Gateway: gateway 127.0.0.1 is in 127.0.0.0/8 (loopback)",
            ),
            (
                "192.0.2.10",
                m24,
                Some("255.255.255.255"),
                "Gateway: gateway 255.255.255.255 is the limited broadcast",
            ),
            (
                "192.0.2.10",
                m24,
                Some("240.0.0.1"),
                "Gateway: gateway 240.0.0.1 is in 240.0.0.0/4",
            ),
            (
                "192.0.2.10",
                m24,
                Some("192.0.2.10"),
                "Gateway: gateway 192.0.2.10 is the address itself",
            ),
            (
                "192.0.2.10",
                m24,
                Some("198.51.100.1"),
                "Gateway: gateway 198.51.100.1 is not inside 192.0.2.0/24 (an off-link gateway",
            ),
        ] {
            let (cfg, r) = set("IPv4.Configuration", &ipv4("manual", addr, mask, gw));
            let e = r.unwrap_err();
            assert_eq!(e.name, "InvalidArguments");
            assert!(
                e.message
                    .starts_with(&format!("IPv4.Configuration: {want}")),
                "{addr} {mask:?} {gw:?}: {}",
                e.message
            );
            assert_eq!(cfg, ServiceConfig::default());
        }
    }

    #[test]
    fn good_manual_ipv4_is_taken() {
        let (cfg, r) = set(
            "IPv4.Configuration",
            &ipv4(
                "manual",
                "192.0.2.10",
                Some("255.255.255.0"),
                Some("192.0.2.1"),
            ),
        );
        r.unwrap();
        assert_eq!(
            cfg.ipv4,
            Ipv4Method::Manual {
                addr: Ipv4Net {
                    addr: "192.0.2.10".parse().unwrap(),
                    prefix_len: 24
                },
                gateway: Some("192.0.2.1".parse().unwrap()),
            }
        );
        // No gateway: absent, empty or ConnMan's 0.0.0.0.
        for gw in [None, Some(""), Some("0.0.0.0")] {
            let (cfg, r) = set(
                "IPv4.Configuration",
                &ipv4("manual", "198.51.100.7", Some("255.255.255.254"), gw),
            );
            r.unwrap();
            assert!(
                matches!(cfg.ipv4, Ipv4Method::Manual { gateway: None, .. }),
                "{gw:?}"
            );
        }
    }

    #[test]
    fn bad_servers_and_domains_are_refused() {
        for (name, items, want) in [
            (
                "Nameservers.Configuration",
                &["192.0.2.53", "127.0.0.1"][..],
                "127.0.0.1 is in 127.0.0.0/8 (loopback), not a server",
            ),
            (
                "Nameservers.Configuration",
                &["0.0.0.0"][..],
                "0.0.0.0 is the unspecified address",
            ),
            (
                "Nameservers.Configuration",
                &["::"][..],
                ":: is the unspecified address",
            ),
            ("Nameservers.Configuration", &["ff02::1"][..], "multicast"),
            ("Nameservers.Configuration", &["fe80::1"][..], "link-local"),
            (
                "Nameservers.Configuration",
                &["255.255.255.255"][..],
                "limited broadcast",
            ),
            ("Nameservers.Configuration", &["240.0.0.1"][..], "class E"),
            ("Timeservers.Configuration", &["224.0.1.1"][..], "multicast"),
            (
                "Timeservers.Configuration",
                &["127.1"][..],
                "numeric address",
            ),
            (
                "Timeservers.Configuration",
                &["ntp example"][..],
                "contains ' '",
            ),
            (
                "Domains.Configuration",
                &["lab.example\nnameserver 6.6.6.6"][..],
                "contains '\\n'",
            ),
            (
                "Domains.Configuration",
                &["lab example"][..],
                "contains ' '",
            ),
            (
                "Domains.Configuration",
                &["lab..example"][..],
                "empty label",
            ),
            (
                "Domains.Configuration",
                &["-lab.example"][..],
                "starts or ends with '-'",
            ),
        ] {
            let (cfg, r) = set(name, &list(items));
            let e = r.unwrap_err();
            assert_eq!(e.name, "InvalidArguments", "{items:?}");
            assert!(
                e.message.starts_with(name) && e.message.contains(want),
                "{items:?}: {}",
                e.message
            );
            assert_eq!(cfg, ServiceConfig::default());
        }
    }

    #[test]
    fn timeservers_may_be_names() {
        let (cfg, r) = set(
            "Timeservers.Configuration",
            &list(&["ntp.lab.test", "192.0.2.123", "2001:db8::123"]),
        );
        r.unwrap();
        let ts: Vec<String> = cfg.timeservers.iter().map(|t| t.to_string()).collect();
        assert_eq!(ts, ["ntp.lab.test", "192.0.2.123", "2001:db8::123"]);
        let (cfg, r) = set("Domains.Configuration", &list(&["lab.test", "example.org"]));
        r.unwrap();
        assert_eq!(cfg.domains.len(), 2);
    }

    #[test]
    fn servers_are_validated() {
        assert!(parse_servers(&["1.2.3.4".into(), "fd00::1".into()], "Nameservers").is_ok());
        let err = parse_servers(&["bogus".into()], "Nameservers").unwrap_err();
        assert!(err.contains("bogus"));
        let many: Vec<String> = (1..=9).map(|i| format!("10.0.0.{i}")).collect();
        assert!(parse_servers(&many, "Nameservers")
            .unwrap_err()
            .contains("MAX_SERVERS"));
    }
}
