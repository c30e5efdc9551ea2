//! ConnMan's Session API on the model (pure: decoded calls in, the model
//! changed or a ConnMan error out). Settings are validated whole before any
//! of them is applied; only the creator of a session may change or destroy it.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use crate::caps;
use crate::core::flow;
use crate::core::model::Model;
use crate::core::session::{self, Session};
use crate::core::session_policy::{parse_bearers, ConnectionType};
use crate::core::types::ServiceId;
use crate::dbus::request::CallError;
use crate::dbus::value::{bool_of, str_of, string_list};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Unique bus name.
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// Applies one setting to a session copy; errors name the setting and what was wrong.
fn apply(model: &Model, s: &mut Session, key: &str, value: &Value<'_>) -> Result<(), CallError> {
    match key {
        "AllowedBearers" => {
            s.user.allowed_bearers = parse_bearers(&string_list(value, key)?)
                .map_err(|e| CallError::invalid(format!("AllowedBearers: {e}")))?;
        }
        "ConnectionType" => {
            let t = str_of(value, key)?.to_string();
            s.user.connection_type = ConnectionType::parse(&t).ok_or_else(|| {
                CallError::invalid(format!(
                    "ConnectionType must be local, internet or any, not '{t}'"
                ))
            })?;
        }
        "AllowedInterface" => {
            let i = str_of(value, key)?.to_string();
            if i.len() > caps::MAX_IFNAME_LEN {
                return Err(CallError::invalid(format!(
                    "AllowedInterface '{i}' is longer than an interface name"
                )));
            }
            s.user.allowed_interface = match i.as_str() {
                "" | "*" => None,
                _ => Some(i),
            };
        }
        "SourceIPRule" => s.user.source_ip_rule = bool_of(value, key)?,
        "ContextIdentifier" => {
            let c = str_of(value, key)?.to_string();
            if c.len() > caps::MAX_NAME_LEN {
                return Err(CallError::invalid("ContextIdentifier is too long"));
            }
            s.user.context_identifier = c;
        }
        "FlowSelectors" => {
            s.flows = flow::parse_list(&string_list(value, key)?)
                .map_err(|e| CallError::invalid(e.to_string()))?;
        }
        "MultipathRoutedServices" => {
            let mut ids = Vec::new();
            for id in string_list(value, key)?
                .into_iter()
                .filter(|i| !i.is_empty())
            {
                let Some(svc) = model.service(&id) else {
                    return Err(CallError::invalid(format!(
                        "MultipathRoutedServices: no service {id}"
                    )));
                };
                if !svc.multipath(model.settings.multipath_default) {
                    return Err(CallError::invalid(format!(
                        "MultipathRoutedServices: {id} does not have MultipathRouting on"
                    )));
                }
                let sid = ServiceId::try_from(id.as_str()).map_err(|_| {
                    CallError::invalid(format!("MultipathRoutedServices: '{id}' is too long"))
                })?;
                if !ids.contains(&sid) {
                    ids.push(sid);
                }
            }
            s.mpath_requested = Some(ids);
        }
        "State" | "Name" | "Bearer" | "Interface" | "IPv4" | "IPv6" => {
            return Err(CallError::invalid(format!("{key} is read-only")));
        }
        other => {
            return Err(CallError::invalid(format!(
                "unknown session setting {other}"
            )))
        }
    }
    Ok(())
}

/// Manager.CreateSession: a session from the core, the client's settings
/// decoded and applied whole, then added.
pub fn create(
    model: &mut Model,
    caller: &Caller,
    settings: &HashMap<String, OwnedValue>,
    notifier: &str,
) -> Result<String, CallError> {
    let mut s = session::admit(
        model,
        &caller.name,
        caller.uid,
        caller.gids.clone(),
        notifier,
    )?;
    // A stable order makes the error for several bad settings deterministic.
    let mut keys: Vec<&String> = settings.keys().collect();
    keys.sort();
    for key in keys {
        apply(model, &mut s, key, &settings[key])?;
    }
    let path = s.path.clone();
    session::insert(model, s)?;
    Ok(path)
}

/// Session.Change: one setting, validated before it is applied.
pub fn change(
    model: &mut Model,
    caller: &str,
    path: &str,
    key: &str,
    value: &Value<'_>,
) -> Result<(), CallError> {
    let i = session::owned(model, caller, path)?;
    let mut s = (*model.sessions[i]).clone();
    apply(model, &mut s, key, value)?;
    session::replace(model, i, s)?;
    log::info!("session {path}: {key} changed");
    Ok(())
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
        assert_eq!(
            session::drop_owner(&mut m, ":1.5"),
            caps::MAX_SESSIONS_PER_CLIENT
        );
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
            session::destroy(&mut m, ":1.9", &p)
                .unwrap_err()
                .dbus_name(),
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
        session::destroy(&mut m, ":1.5", &p).unwrap();
        assert!(m.sessions.is_empty());
    }
}
