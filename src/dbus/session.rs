//! ConnMan's Session API on the model (pure: decoded calls in, the model
//! changed or a ConnMan error out). Settings are validated whole before any
//! of them is applied; only the creator of a session may change or destroy it.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use crate::caps;
use crate::core::flow;
use crate::core::model::Model;
use crate::core::session::{free_index, Session};
use crate::core::session_policy::{parse_bearers, ConnectionType, UserSettings};
use crate::core::types::ServiceId;
use crate::dbus::request::CallError;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Unique bus name.
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
}

fn invalid(message: impl Into<String>) -> CallError {
    CallError::new("InvalidArguments", message)
}

fn unwrap_variant<'a>(v: &'a Value<'a>) -> &'a Value<'a> {
    match v {
        Value::Value(inner) => inner,
        other => other,
    }
}

fn string_of(v: &Value<'_>, key: &str) -> Result<String, CallError> {
    match unwrap_variant(v) {
        Value::Str(s) => Ok(s.to_string()),
        other => Err(invalid(format!(
            "{key} must be a string (s), got {}",
            other.value_signature()
        ))),
    }
}

fn list_of(v: &Value<'_>, key: &str) -> Result<Vec<String>, CallError> {
    let Value::Array(a) = unwrap_variant(v) else {
        return Err(invalid(format!(
            "{key} must be a string list (as), got {}",
            v.value_signature()
        )));
    };
    a.iter()
        .map(|e| match e {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(invalid(format!(
                "{key} must be a string list (as), got an element {}",
                other.value_signature()
            ))),
        })
        .collect()
}

/// Applies one setting to a session copy; errors name the setting and what was wrong.
fn apply(model: &Model, s: &mut Session, key: &str, value: &Value<'_>) -> Result<(), CallError> {
    match key {
        "AllowedBearers" => {
            s.user.allowed_bearers = parse_bearers(&list_of(value, key)?)
                .map_err(|e| invalid(format!("AllowedBearers: {e}")))?;
        }
        "ConnectionType" => {
            let t = string_of(value, key)?;
            s.user.connection_type = ConnectionType::parse(&t).ok_or_else(|| {
                invalid(format!(
                    "ConnectionType must be local, internet or any, not '{t}'"
                ))
            })?;
        }
        "AllowedInterface" => {
            let i = string_of(value, key)?;
            if i.len() > caps::MAX_IFNAME_LEN {
                return Err(invalid(format!(
                    "AllowedInterface '{i}' is longer than an interface name"
                )));
            }
            s.user.allowed_interface = match i.as_str() {
                "" | "*" => None,
                _ => Some(i),
            };
        }
        "SourceIPRule" => match unwrap_variant(value) {
            Value::Bool(b) => s.user.source_ip_rule = *b,
            other => {
                return Err(invalid(format!(
                    "SourceIPRule must be a boolean (b), got {}",
                    other.value_signature()
                )))
            }
        },
        "ContextIdentifier" => {
            let c = string_of(value, key)?;
            if c.len() > caps::MAX_NAME_LEN {
                return Err(invalid("ContextIdentifier is too long"));
            }
            s.user.context_identifier = c;
        }
        "FlowSelectors" => {
            s.flows =
                flow::parse_list(&list_of(value, key)?).map_err(|e| invalid(e.to_string()))?;
        }
        "MultipathRoutedServices" => {
            let mut ids = Vec::new();
            for id in list_of(value, key)?.into_iter().filter(|i| !i.is_empty()) {
                let Some(svc) = model.service(&id) else {
                    return Err(invalid(format!("MultipathRoutedServices: no service {id}")));
                };
                if !svc.multipath(model.settings.multipath_default) {
                    return Err(invalid(format!(
                        "MultipathRoutedServices: {id} does not have MultipathRouting on"
                    )));
                }
                let sid = ServiceId::try_from(id.as_str())
                    .map_err(|_| invalid(format!("MultipathRoutedServices: '{id}' is too long")))?;
                if !ids.contains(&sid) {
                    ids.push(sid);
                }
            }
            s.mpath_requested = Some(ids);
        }
        "State" | "Name" | "Bearer" | "Interface" | "IPv4" | "IPv6" => {
            return Err(invalid(format!("{key} is read-only")));
        }
        other => return Err(invalid(format!("unknown session setting {other}"))),
    }
    Ok(())
}

fn total_selectors(model: &Model, except: Option<&str>) -> usize {
    model
        .sessions
        .iter()
        .filter(|s| Some(s.path.as_str()) != except)
        .map(|s| s.flows.len())
        .sum()
}

fn check_total(model: &Model, s: &Session) -> Result<(), CallError> {
    let total = total_selectors(model, Some(&s.path)) + s.flows.len();
    if total > caps::MAX_SELECTORS_TOTAL {
        return Err(invalid(format!(
            "FlowSelectors: {total} selectors over all sessions, more than {} (caps::MAX_SELECTORS_TOTAL)",
            caps::MAX_SELECTORS_TOTAL
        )));
    }
    Ok(())
}

/// The object path of a session: `/sessions/<owner>` + the notifier path,
/// with the characters of a unique name that paths cannot hold replaced.
pub fn session_path(owner: &str, notifier: &str) -> String {
    let owner: String = owner
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tail = if notifier == "/" { "" } else { notifier };
    format!("/sessions/{owner}{tail}")
}

/// Manager.CreateSession.
pub fn create(
    model: &mut Model,
    caller: &Caller,
    settings: &HashMap<String, OwnedValue>,
    notifier: &str,
) -> Result<String, CallError> {
    let path = session_path(&caller.name, notifier);
    if model.sessions.iter().any(|s| s.path == path) {
        return Err(CallError::new(
            "AlreadyExists",
            format!(
                "{caller_name} already has a session for {notifier}",
                caller_name = caller.name
            ),
        ));
    }
    let owned = model
        .sessions
        .iter()
        .filter(|s| s.owner == caller.name)
        .count();
    if owned >= caps::MAX_SESSIONS_PER_CLIENT {
        return Err(CallError::new(
            "Failed",
            format!("{} owns {owned} sessions, the most one client may have (caps::MAX_SESSIONS_PER_CLIENT)", caller.name),
        ));
    }
    let index = free_index(&model.sessions).ok_or_else(|| {
        CallError::new(
            "Failed",
            format!(
                "{} sessions exist, the most pathman keeps (caps::MAX_SESSIONS)",
                caps::MAX_SESSIONS
            ),
        )
    })?;
    let mut s = Session {
        index,
        owner: caller.name.clone(),
        owner_uid: caller.uid,
        owner_gids: caller.gids.clone(),
        path: path.clone(),
        notifier: notifier.to_string(),
        user: UserSettings::default(),
        flows: heapless::Vec::new(),
        mpath_requested: None,
        active: false,
    };
    // A stable order makes the error for several bad settings deterministic.
    let mut keys: Vec<&String> = settings.keys().collect();
    keys.sort();
    for key in keys {
        apply(model, &mut s, key, &settings[key])?;
    }
    check_total(model, &s)?;
    log::info!(
        "session {path}: created by {} (uid {}), mark {:#x}",
        caller.name,
        caller.uid,
        s.mark()
    );
    model
        .sessions
        .push(Box::new(s))
        .map_err(|_| CallError::new("Failed", "no room for another session"))?;
    Ok(path)
}

fn owned_index(model: &Model, caller: &str, path: &str) -> Result<usize, CallError> {
    let i = model
        .sessions
        .iter()
        .position(|s| s.path == path)
        .ok_or_else(|| CallError::new("NotFound", format!("no session {path}")))?;
    if model.sessions[i].owner != caller {
        return Err(CallError::new(
            "PermissionDenied",
            format!("session {path} belongs to another client"),
        ));
    }
    Ok(i)
}

/// Manager.DestroySession / Session.Destroy.
pub fn destroy(model: &mut Model, caller: &str, path: &str) -> Result<(), CallError> {
    let i = owned_index(model, caller, path)?;
    model.sessions.remove(i);
    log::info!("session {path}: destroyed");
    Ok(())
}

/// Session.Change: one setting, validated before it is applied.
pub fn change(
    model: &mut Model,
    caller: &str,
    path: &str,
    key: &str,
    value: &Value<'_>,
) -> Result<(), CallError> {
    let i = owned_index(model, caller, path)?;
    let mut s = (*model.sessions[i]).clone();
    apply(model, &mut s, key, value)?;
    check_total(model, &s)?;
    log::info!("session {path}: {key} changed");
    *model.sessions[i] = s;
    Ok(())
}

/// Session.Connect / Disconnect.
pub fn set_active(
    model: &mut Model,
    caller: &str,
    path: &str,
    active: bool,
) -> Result<(), CallError> {
    let i = owned_index(model, caller, path)?;
    model.sessions[i].active = active;
    if active {
        model.auto_connect();
    }
    Ok(())
}

/// Drops every session of a client that left the bus; returns how many.
pub fn drop_owner(model: &mut Model, owner: &str) -> usize {
    let before = model.sessions.len();
    model.sessions.retain(|s| s.owner != owner);
    let n = before - model.sessions.len();
    if n > 0 {
        log::info!("{owner} left the bus: {n} session(s) destroyed");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::ModelSettings;

    fn caller(name: &str) -> Caller {
        Caller {
            name: name.to_string(),
            uid: 1000,
            gids: vec![1000],
        }
    }

    #[test]
    fn one_client_cannot_flood_create_session() {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        let none = HashMap::new();
        for i in 0..caps::MAX_SESSIONS_PER_CLIENT {
            create(&mut m, &caller(":1.5"), &none, &format!("/n{i}")).unwrap();
        }
        let err = create(&mut m, &caller(":1.5"), &none, "/more").unwrap_err();
        assert!(err.message.contains("MAX_SESSIONS_PER_CLIENT"), "{err:?}");
        // Another client still gets one, with the lowest free mark.
        let p = create(&mut m, &caller(":1.6"), &none, "/n").unwrap();
        assert_eq!(p, "/sessions/_1_6/n");
        assert_eq!(
            m.sessions.last().unwrap().mark(),
            0x10000 + caps::MAX_SESSIONS_PER_CLIENT as u32
        );
        assert_eq!(drop_owner(&mut m, ":1.5"), caps::MAX_SESSIONS_PER_CLIENT);
        let p = create(&mut m, &caller(":1.7"), &none, "/n").unwrap();
        assert_eq!(
            m.sessions.iter().find(|s| s.path == p).unwrap().mark(),
            0x10000,
            "marks are reused"
        );
    }

    #[test]
    fn only_the_owner_may_change_or_destroy() {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        let p = create(&mut m, &caller(":1.5"), &HashMap::new(), "/n").unwrap();
        let v = Value::from(true);
        assert_eq!(
            change(&mut m, ":1.9", &p, "SourceIPRule", &v)
                .unwrap_err()
                .name,
            "PermissionDenied"
        );
        assert_eq!(
            destroy(&mut m, ":1.9", &p).unwrap_err().name,
            "PermissionDenied"
        );
        change(&mut m, ":1.5", &p, "SourceIPRule", &v).unwrap();
        assert!(m.sessions[0].user.source_ip_rule);
        let bad = Value::from(vec!["*-*-udp-1".to_string(), "*-*-bogus".to_string()]);
        assert!(change(&mut m, ":1.5", &p, "FlowSelectors", &bad).is_err());
        assert!(
            m.sessions[0].flows.is_empty(),
            "a bad list is rejected whole"
        );
        destroy(&mut m, ":1.5", &p).unwrap();
        assert!(m.sessions.is_empty());
    }
}
