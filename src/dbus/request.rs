//! The handlers of ConnMan's D-Bus methods (iwd style: a thin layer; every
//! decision is the model's). Pure: decoded arguments in, an [`Answer`] or a
//! ConnMan error out. [`crate::dbus::api`] says which handler serves which
//! method; the server does the I/O.

use std::net::{IpAddr, Ipv4Addr};

use zbus::zvariant::Value;

use crate::caps;
use crate::core::counter::Counter;
use crate::core::model::{Agent, Model, RequestError};
use crate::core::order;
use crate::core::session as core_session;
use crate::core::types::{
    mask_to_prefix, DomainList, Ipv4Method, Ipv4Net, Ipv6Method, MptcpLink, ServerList,
    ServiceConfig, TimeserverList,
};
use crate::core::validate::{
    check_manual_ipv4, check_server_addr, parse_domain, parse_timeserver, Ipv4Field,
};
use crate::dbus::api::{self, Object};
use crate::dbus::names::{self, ErrorName};
use crate::dbus::props::{self, Props};
use crate::dbus::session::{self, Caller};
use crate::dbus::value::{self, bool_of, dict_entries, path_of, str_of, string_list, u32_of};

/// What a handler works on: the model, who is calling, and the object.
pub struct Ctx<'a> {
    pub model: &'a mut Model,
    pub caller: &'a Caller,
    /// The object the call addresses.
    pub object: &'a Object,
    /// Its path.
    pub path: &'a str,
}

/// A method handler: the call's arguments, already checked against the
/// method's signature, in order.
pub type Handler = fn(&mut Ctx<'_>, &[Value<'_>]) -> Result<Answer, CallError>;

/// A successful answer, serialised by the server.
#[derive(Debug)]
pub enum Answer {
    Empty,
    Props(Props),
    /// `a(oa{sv})` (GetTechnologies/GetServices): object paths with properties.
    Objects(Vec<(String, Props)>),
    /// `as`.
    Strings(Vec<String>),
    /// `o`.
    Path(String),
    /// `ao`.
    Paths(Vec<String>),
    /// `s` (Introspect).
    Text(String),
    /// `a{oa{sa{sv}}}` (GetManagedObjects): object paths with their interfaces.
    Managed(Vec<(String, Vec<&'static str>)>),
    /// Success so far, but the reply waits until the change was carried
    /// out, so a refusal (an MPTCP endpoint the kernel would not add, a zone
    /// that does not exist) reaches the caller.
    AfterSettle(Pending),
}

/// What a held-back reply waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The MPTCP endpoints of this service (MultipathRouting/MultipathTcpLink).
    Endpoints(String),
    /// The zoneinfo link (Clock.Timezone).
    Timezone,
    /// The system clock (Clock.Time).
    Time,
    /// Nothing to wait for: the answer is the daemon's state text
    /// (`Debug.GetState`), which only the loop can write.
    State,
    /// A WiFi service connected or failed (Service.Connect).
    Connect(String),
    /// These radios finished scanning (Technology.Scan).
    Scan(Vec<u32>),
}

/// A ConnMan error: `net.connman.Error.<name>` plus a message saying what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub name: ErrorName,
    pub message: String,
}

impl CallError {
    /// An error by its short ConnMan name (`"InvalidArguments"`); an unknown
    /// name becomes `Failed`.
    pub fn new(name: &'static str, message: impl Into<String>) -> CallError {
        let full = format!("{}{name}", names::ERROR_PREFIX);
        CallError {
            name: ErrorName::from_name(&full).unwrap_or(ErrorName::Failed),
            message: message.into(),
        }
    }
    pub(crate) fn invalid(message: impl Into<String>) -> CallError {
        CallError {
            name: ErrorName::InvalidArguments,
            message: message.into(),
        }
    }
    fn named(name: ErrorName, message: impl Into<String>) -> CallError {
        CallError {
            name,
            message: message.into(),
        }
    }
}

impl From<RequestError> for CallError {
    fn from(e: RequestError) -> CallError {
        let name = match &e {
            RequestError::NotFound(_) => ErrorName::NotFound,
            RequestError::InvalidArguments(_) => ErrorName::InvalidArguments,
            RequestError::AlreadyConnected => ErrorName::AlreadyConnected,
            RequestError::NotConnected => ErrorName::NotConnected,
            RequestError::AlreadyEnabled => ErrorName::AlreadyEnabled,
            RequestError::AlreadyDisabled => ErrorName::AlreadyDisabled,
            RequestError::NotSupported(_) => ErrorName::NotSupported,
            RequestError::AlreadyExists(_) => ErrorName::AlreadyExists,
            RequestError::PermissionDenied(_) => ErrorName::PermissionDenied,
            RequestError::NotRegistered(_) => ErrorName::NotRegistered,
            RequestError::Failed(_) => ErrorName::Failed,
            RequestError::PassphraseRequired(_) => ErrorName::PassphraseRequired,
            RequestError::OperationAborted(_) => ErrorName::OperationAborted,
            RequestError::NoCarrier(_) => ErrorName::NoCarrier,
        };
        CallError::named(name, e.to_string())
    }
}

/// The unique bus name of the caller, required by calls that register
/// something for the calling connection.
fn service_id(ctx: &Ctx<'_>) -> Result<String, CallError> {
    match ctx.object {
        Object::Service(id) => Ok(id.clone()),
        _ => Err(CallError::new(
            "NotFound",
            format!("no service at {}", ctx.path),
        )),
    }
}

// ----- every object --------------------------------------------------------

/// `Introspect`.
pub fn introspect(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::Text(api::introspect(ctx.model, ctx.path)))
}

/// `ObjectManager.GetManagedObjects`: every object below `/` with its interfaces.
pub fn get_managed_objects(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::Managed(
        api::objects(ctx.model)
            .into_iter()
            .filter(|o| *o != Object::Manager)
            .map(|o| (o.path(), o.interfaces().iter().map(|i| i.name).collect()))
            .collect(),
    ))
}

/// `GetProperties` of the Manager, a technology or a service.
pub fn get_properties(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let model = &*ctx.model;
    Ok(Answer::Props(match ctx.object {
        Object::Manager => props::manager(model),
        Object::Technology(t) => props::technology(model, *t),
        Object::Service(id) => {
            let svc = model
                .service(id)
                .ok_or_else(|| CallError::new("NotFound", format!("service {id} not found")))?;
            props::service(model, svc)
        }
        Object::Session(_) => return Err(CallError::invalid("sessions have no properties")),
    }))
}

/// `SetProperty(s, v)` of the Manager, a technology or a service.
pub fn set_property(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let name = str_of(&args[0], "name")?;
    let value = value::inner(&args[1]);
    match ctx.object.clone() {
        Object::Manager => match name {
            "OfflineMode" => {
                let on = bool_of(value, name)?;
                ctx.model.set_offline(on);
                Ok(Answer::Empty)
            }
            // Deprecated no-op in ConnMan; accepted for compatibility.
            "SessionMode" => bool_of(value, name).map(|_| Answer::Empty),
            _ => Err(CallError::new(
                "InvalidProperty",
                format!("Manager property {name} is not writable or unknown"),
            )),
        },
        Object::Technology(tech) => match name {
            "Powered" => {
                let on = bool_of(value, name)?;
                ctx.model.set_powered(tech, on)?;
                Ok(Answer::Empty)
            }
            "Tethering" => {
                let on = bool_of(value, name)?;
                ctx.model.set_tethering(tech, on)?;
                Ok(Answer::Empty)
            }
            "TetheringIdentifier" => {
                let id = str_of(value, name)?;
                ctx.model.set_tether_ap(tech, Some(id.into()), None, None)?;
                Ok(Answer::Empty)
            }
            "TetheringPassphrase" => {
                let p = str_of(value, name)?;
                ctx.model.set_tether_ap(tech, None, Some(p.into()), None)?;
                Ok(Answer::Empty)
            }
            "TetheringFreq" => {
                let f = match value {
                    Value::I32(f) => *f,
                    _ => return Err(CallError::invalid("TetheringFreq must be an int32 (i)")),
                };
                ctx.model.set_tether_ap(tech, None, None, Some(f))?;
                Ok(Answer::Empty)
            }
            _ => Err(CallError::new(
                "InvalidProperty",
                format!("Technology property {name} is not writable or unknown"),
            )),
        },
        Object::Service(id) => {
            let svc = ctx
                .model
                .service(&id)
                .ok_or_else(|| CallError::new("NotFound", format!("service {id} not found")))?;
            if svc.immutable() && name != "AutoConnect" {
                // ConnMan: a provisioned service changes by its file only.
                return Err(CallError::new(
                    "PermissionDenied",
                    format!("{id} is provisioned by a .config file: only AutoConnect can change"),
                ));
            }
            let mut cfg = svc.config.clone();
            if name == "Passphrase" {
                // Write-only (never in GetProperties), checked against the
                // network's security; used by the next connect.
                let Some(w) = &svc.wifi else {
                    return Err(CallError::new(
                        "InvalidProperty",
                        "only WiFi services have a Passphrase",
                    ));
                };
                let pass = str_of(value::inner(value), name)?;
                crate::core::tech::wifi::check_passphrase(w.security, pass)
                    .map_err(CallError::invalid)?;
                cfg.passphrase =
                    (!pass.is_empty()).then(|| crate::core::types::Secret(pass.to_string()));
                ctx.model.configure(&id, cfg)?;
                return Ok(Answer::Empty);
            }
            set_service_property(&mut cfg, name, value)?;
            ctx.model.configure(&id, cfg)?;
            if matches!(name, "MultipathRouting" | "MultipathTcpLink") {
                Ok(Answer::AfterSettle(Pending::Endpoints(id)))
            } else {
                Ok(Answer::Empty)
            }
        }
        Object::Session(_) => Err(CallError::invalid("use Session.Change")),
    }
}

// ----- Clock ---------------------------------------------------------------

/// `Clock.GetProperties`.
pub fn clock_get_properties(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::Props(props::clock(
        ctx.model,
        std::time::SystemTime::now(),
    )))
}

/// `Clock.SetProperty(s, v)`: TimeUpdates, TimezoneUpdates, Timeservers,
/// Timezone (manual timezone updates only) and Time (manual time updates
/// only), each checked whole before anything changes.
pub fn clock_set_property(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    use crate::core::clock::Updates;
    let name = str_of(&args[0], "name")?;
    let value = value::inner(&args[1]);
    let clock = &mut ctx.model.clock;
    let updates = |v: &Value<'_>| -> Result<Updates, CallError> {
        let s = str_of(v, name)?;
        Updates::parse(s)
            .ok_or_else(|| CallError::invalid(format!("{name} must be auto or manual, not '{s}'")))
    };
    match name {
        "TimeUpdates" => {
            let u = updates(value)?;
            if clock.time_updates != u {
                clock.time_updates = u;
                ctx.model.request_save_global();
            }
        }
        "TimezoneUpdates" => {
            let u = updates(value)?;
            if clock.timezone_updates != u {
                clock.timezone_updates = u;
                ctx.model.request_save_global();
            }
        }
        "Timeservers" => {
            let mut list = TimeserverList::new();
            for item in string_list(value, name)?.iter().filter(|s| !s.is_empty()) {
                let t = parse_timeserver(item)
                    .map_err(|e| CallError::invalid(format!("{name}: '{item}' {e}")))?;
                if !list.contains(&t) {
                    list.push(t).map_err(|_| {
                        CallError::invalid(format!(
                            "{name}: more than {} entries (caps::MAX_SERVERS)",
                            caps::MAX_SERVERS
                        ))
                    })?;
                }
            }
            if clock.timeservers != list {
                clock.timeservers = list;
                ctx.model.request_save_global();
            }
        }
        "Timezone" => {
            if clock.timezone_updates != Updates::Manual {
                return Err(CallError::new(
                    "PermissionDenied",
                    "Timezone can be set only with TimezoneUpdates=manual",
                ));
            }
            let zone = str_of(value, name)?;
            crate::core::validate::check_zone_name(zone)
                .map_err(|e| CallError::invalid(format!("Timezone '{zone}': {e}")))?;
            ctx.model.request_timezone(zone);
            return Ok(Answer::AfterSettle(Pending::Timezone));
        }
        "Time" => {
            if clock.time_updates != Updates::Manual {
                return Err(CallError::new(
                    "PermissionDenied",
                    "Time can be set only with TimeUpdates=manual",
                ));
            }
            let secs = match value {
                Value::U64(t) => *t,
                other => {
                    return Err(CallError::invalid(format!(
                        "Time must be a uint64 (t), got {}",
                        other.value_signature()
                    )))
                }
            };
            ctx.model.request_time(secs.saturating_mul(1_000_000_000));
            return Ok(Answer::AfterSettle(Pending::Time));
        }
        "TimeserverSynced" => {
            return Err(CallError::new(
                "InvalidProperty",
                "TimeserverSynced is read-only",
            ))
        }
        _ => {
            return Err(CallError::new(
                "InvalidProperty",
                format!("Clock property {name} is not writable or unknown"),
            ))
        }
    }
    Ok(Answer::Empty)
}

// ----- Manager -------------------------------------------------------------

/// `GetTechnologies`.
pub fn get_technologies(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let model = &*ctx.model;
    Ok(Answer::Objects(
        model
            .present_techs()
            .map(|t| {
                (
                    names::technology_path(t.as_str()),
                    props::technology(model, t),
                )
            })
            .collect(),
    ))
}

/// `GetServices`, in service order.
pub fn get_services(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let model = &*ctx.model;
    Ok(Answer::Objects(
        order::sorted(model)
            .into_iter()
            .map(|i| {
                let s = &model.services[i];
                (names::service_path(&s.id), props::service(model, s))
            })
            .collect(),
    ))
}

/// `GetPeers`: pathman has no P2P peers.
pub fn get_peers(_: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::Objects(Vec::new()))
}

/// `GetTetheringClients`: the MACs of the DHCP server's bound clients.
pub fn get_tethering_clients(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::Strings(
        ctx.model.tether.clients.iter().map(mac_text).collect(),
    ))
}

/// A MAC as ConnMan writes tethering clients: `AA:BB:CC:DD:EE:FF`.
pub fn mac_text(m: &[u8; 6]) -> String {
    crate::core::types::mac_text(m).to_uppercase()
}

/// `ConnectProvider` / `RemoveProvider`: VPNs are not pathman's (ConnMan
/// without its VPN daemon answers the same).
pub fn no_vpn(_: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Err(CallError::new(
        "NotSupported",
        "pathman manages no VPN providers",
    ))
}

/// `RequestPrivateNetwork` / `ReleasePrivateNetwork`.
pub fn no_private_network(_: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Err(CallError::new(
        "NotSupported",
        "private networks are not supported",
    ))
}

/// `RegisterPeerService` / `UnregisterPeerService`.
pub fn no_peers(_: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Err(CallError::new(
        "NotSupported",
        "P2P peer services are not supported",
    ))
}

/// `RegisterAgent(o)`: one agent at a time, as ConnMan 1.41.
pub fn register_agent(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = path_of(&args[0], "path")?;
    if let Some(a) = &ctx.model.agent {
        return Err(CallError::new(
            "AlreadyExists",
            format!("an agent is registered already ({} {})", a.owner, a.path),
        ));
    }
    log::info!("agent {path} of {} registered", ctx.caller.name);
    ctx.model.agent = Some(Agent {
        owner: ctx.caller.name.clone(),
        path,
    });
    Ok(Answer::Empty)
}

/// `UnregisterAgent(o)`: only the connection that registered it.
pub fn unregister_agent(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = path_of(&args[0], "path")?;
    match &ctx.model.agent {
        Some(a) if a.owner == ctx.caller.name && a.path == path => {
            log::info!("agent {path} of {} unregistered", ctx.caller.name);
            ctx.model.agent = None;
            Ok(Answer::Empty)
        }
        _ => Err(
            RequestError::NotRegistered(format!("no agent {path} of {}", ctx.caller.name)).into(),
        ),
    }
}

/// `RegisterCounter(o, u accuracy, u period)`.
pub fn register_counter(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = path_of(&args[0], "path")?;
    let accuracy_kb = u32_of(&args[1], "accuracy")?;
    let period = u32_of(&args[2], "period")?;
    let model = &mut *ctx.model;
    let owner = &ctx.caller.name;
    if model
        .counters
        .iter()
        .any(|c| c.owner == *owner && c.path == path)
    {
        return Err(CallError::new(
            "AlreadyExists",
            format!("counter {path} is registered already"),
        ));
    }
    let mine = model.counters.iter().filter(|c| c.owner == *owner).count();
    if mine >= caps::MAX_COUNTERS_PER_CLIENT {
        return Err(CallError::new(
            "Failed",
            format!(
                "{owner} has {mine} counters, the most one client may have (caps::MAX_COUNTERS_PER_CLIENT)"
            ),
        ));
    }
    let counter = Counter {
        owner: owner.clone(),
        path: path.clone(),
        accuracy_kb,
        period_secs: period.clamp(caps::COUNTER_MIN_PERIOD_SECS, caps::COUNTER_MAX_PERIOD_SECS),
    };
    model.counters.push(counter).map_err(|_| {
        CallError::new(
            "Failed",
            format!(
                "{} counters exist, the most pathman keeps (caps::MAX_COUNTERS)",
                caps::MAX_COUNTERS
            ),
        )
    })?;
    log::info!("counter {path} of {owner} registered (every {period} s)");
    Ok(Answer::Empty)
}

/// `UnregisterCounter(o)`: only the connection that registered it.
pub fn unregister_counter(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = path_of(&args[0], "path")?;
    let owner = &ctx.caller.name;
    let Some(i) = ctx
        .model
        .counters
        .iter()
        .position(|c| c.owner == *owner && c.path == path)
    else {
        return Err(RequestError::NotRegistered(format!("no counter {path} of {owner}")).into());
    };
    ctx.model.counters.remove(i);
    Ok(Answer::Empty)
}

/// `CreateSession(a{sv}, o) → o`.
pub fn create_session(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let settings = dict_entries(&args[0], "settings")?;
    let notifier = path_of(&args[1], "notifier")?;
    let path = session::create(ctx.model, ctx.caller, &settings, &notifier)?;
    Ok(Answer::Path(path))
}

/// `DestroySession(o)`.
pub fn destroy_session(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = path_of(&args[0], "session")?;
    core_session::destroy(ctx.model, &ctx.caller.name, &path)?;
    Ok(Answer::Empty)
}

/// `GetSessions() → ao` (the multipath fork's).
pub fn get_sessions(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::Paths(
        ctx.model.sessions.iter().map(|s| s.path.clone()).collect(),
    ))
}

/// `Debug.GetState`: answered by the loop with its state text.
pub fn get_state(_: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    Ok(Answer::AfterSettle(Pending::State))
}

// ----- Technology ----------------------------------------------------------

/// `Technology.Scan`: wired technologies cannot scan (ConnMan: NotSupported).
pub fn scan(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let what = match ctx.object {
        Object::Technology(crate::core::types::Technology::Wifi) => {
            let radios = ctx.model.wifi_scan()?;
            return Ok(Answer::AfterSettle(Pending::Scan(radios)));
        }
        Object::Technology(t) => t.as_str(),
        _ => "this object",
    };
    Err(CallError::new(
        "NotSupported",
        format!("{what} cannot scan"),
    ))
}

// ----- Service -------------------------------------------------------------

/// `ClearProperty(s)`: only `Error` can be cleared.
pub fn clear_property(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let id = service_id(ctx)?;
    let name = str_of(&args[0], "name")?;
    if name != "Error" {
        return Err(CallError::new(
            "InvalidProperty",
            format!("only Error can be cleared, not {name}"),
        ));
    }
    ctx.model.clear_error(&id)?;
    Ok(Answer::Empty)
}

/// `Service.Connect`.
pub fn connect(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let id = service_id(ctx)?;
    ctx.model.connect(&id)?;
    // A WiFi or cellular connect answers once the service is ready or has
    // failed, as ConnMan's does (connmanctl prints "Connected" on that reply).
    match ctx.model.service(&id) {
        Some(s) if (s.wifi.is_some() || s.cellular.is_some()) && !s.state.is_connected() => {
            Ok(Answer::AfterSettle(Pending::Connect(id)))
        }
        _ => Ok(Answer::Empty),
    }
}

/// `Service.Disconnect`.
pub fn disconnect(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let id = service_id(ctx)?;
    ctx.model.disconnect(&id)?;
    Ok(Answer::Empty)
}

/// `Service.Remove`.
pub fn remove(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let id = service_id(ctx)?;
    ctx.model.remove(&id)?;
    Ok(Answer::Empty)
}

fn move_relative(ctx: &mut Ctx<'_>, args: &[Value<'_>], before: bool) -> Result<Answer, CallError> {
    let id = service_id(ctx)?;
    let target = path_of(&args[0], "service")?;
    let other = target
        .strip_prefix(names::SERVICE_PATH_PREFIX)
        .filter(|o| ctx.model.service(o).is_some())
        .ok_or_else(|| CallError::new("InvalidService", format!("{target} is not a service")))?
        .to_string();
    ctx.model.move_service(&id, &other, before)?;
    Ok(Answer::Empty)
}

/// `Service.MoveBefore(o)`.
pub fn move_before(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    move_relative(ctx, args, true)
}

/// `Service.MoveAfter(o)`.
pub fn move_after(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    move_relative(ctx, args, false)
}

/// `Service.ResetCounters`: usage counts from now on.
pub fn reset_counters(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let id = service_id(ctx)?;
    ctx.model.reset_counters(&id)?;
    Ok(Answer::Empty)
}

// ----- Session -------------------------------------------------------------

fn session_path(ctx: &Ctx<'_>) -> String {
    ctx.path.to_string()
}

/// `Session.Destroy`.
pub fn session_destroy(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = session_path(ctx);
    core_session::destroy(ctx.model, &ctx.caller.name, &path)?;
    Ok(Answer::Empty)
}

/// `Session.Connect`.
pub fn session_connect(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = session_path(ctx);
    core_session::set_active(ctx.model, &ctx.caller.name, &path, true)?;
    Ok(Answer::Empty)
}

/// `Session.Disconnect`.
pub fn session_disconnect(ctx: &mut Ctx<'_>, _: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = session_path(ctx);
    core_session::set_active(ctx.model, &ctx.caller.name, &path, false)?;
    Ok(Answer::Empty)
}

/// `Session.Change(s, v)`.
pub fn session_change(ctx: &mut Ctx<'_>, args: &[Value<'_>]) -> Result<Answer, CallError> {
    let path = session_path(ctx);
    let key = str_of(&args[0], "name")?.to_string();
    session::change(ctx.model, ctx.caller, &path, &key, value::inner(&args[1]))?;
    Ok(Answer::Empty)
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
            assert_eq!(e.name, ErrorName::InvalidArguments);
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
            assert_eq!(e.name, ErrorName::InvalidArguments, "{items:?}");
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
