//! ConnMan's Session API on the model (pure: decoded calls in, the model
//! changed or a ConnMan error out). Settings are validated whole before any
//! of them is applied; only the creator of a session may change or destroy it.

use zbus::zvariant::Value;

use crate::caps;
use crate::core::flow;
use crate::core::model::Model;
use crate::core::session::{self, Session};
use crate::core::session_policy::{parse_bearers, ConnectionType};
use crate::core::types::ServiceId;
use crate::dbus::request::CallError;
use crate::dbus::value::{bool_of, str_of, string_list};

/// Who is calling.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Unique bus name.
    pub name: String,
    /// The caller's uid, as the bus reports it (`None` for reading calls,
    /// which do not ask).
    pub uid: Option<u32>,
    pub gids: Vec<u32>,
    /// Root or a member of AdminGroup.
    pub admin: bool,
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
    settings: &[(String, &Value<'_>)],
    notifier: &str,
) -> Result<String, CallError> {
    let uid = caller
        .uid
        .ok_or_else(|| CallError::new("PermissionDenied", "cannot tell who is calling"))?;
    let who = session::Creator {
        name: caller.name.clone(),
        uid,
        gids: caller.gids.clone(),
        admin: caller.admin,
    };
    let mut s = session::admit(model, &who, notifier)?;
    // A stable order makes the error for several bad settings deterministic.
    let mut sorted: Vec<&(String, &Value<'_>)> = settings.iter().collect();
    crate::sort::sort_by(&mut sorted, |a, b| a.0.cmp(&b.0));
    for (i, (key, value)) in sorted.iter().enumerate() {
        if sorted[..i].iter().any(|(k, _)| k == key) {
            return Err(CallError::invalid(format!("setting {key} given twice")));
        }
        apply(model, &mut s, key, value)?;
    }
    let path = s.path.clone();
    session::insert(model, s)?;
    Ok(path)
}

/// Session.Change: one setting, validated before it is applied.
pub fn change(
    model: &mut Model,
    caller: &Caller,
    path: &str,
    key: &str,
    value: &Value<'_>,
) -> Result<(), CallError> {
    let i = session::owned(model, &caller.name, path)?;
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

    fn caller(name: &str, uid: u32) -> Caller {
        Caller {
            name: name.to_string(),
            uid: Some(uid),
            gids: vec![uid],
            admin: uid == 0,
        }
    }

    #[test]
    fn one_client_cannot_flood_create_session() {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        for i in 0..caps::MAX_SESSIONS_PER_CLIENT {
            create(&mut m, &caller(":1.5", 1000), &[], &format!("/n{i}")).unwrap();
        }
        let err = create(&mut m, &caller(":1.5", 1000), &[], "/more").unwrap_err();
        assert!(err.message.contains("MAX_SESSIONS_PER_CLIENT"), "{err:?}");
        // Another user still gets one, with the lowest free mark.
        let p = create(&mut m, &caller(":1.6", 1001), &[], "/n").unwrap();
        assert_eq!(p, "/sessions/_1_6/n");
        assert_eq!(
            m.sessions.last().unwrap().mark(),
            0x10000 + caps::MAX_SESSIONS_PER_CLIENT as u32
        );
        assert_eq!(
            session::drop_owner(&mut m, ":1.5"),
            caps::MAX_SESSIONS_PER_CLIENT
        );
        let p = create(&mut m, &caller(":1.7", 1002), &[], "/n").unwrap();
        assert_eq!(
            m.sessions.iter().find(|s| s.path == p).unwrap().mark(),
            0x10000,
            "marks are reused"
        );
    }

    #[test]
    fn one_user_with_many_connections_cannot_take_every_mark() {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        // uid 65534 opens connection after connection.
        let mut made = 0;
        for conn in 0..8 {
            for i in 0..caps::MAX_SESSIONS_PER_CLIENT {
                let who = caller(&format!(":1.{}", 10 + conn), 65534);
                if create(&mut m, &who, &[], &format!("/n{i}")).is_ok() {
                    made += 1;
                }
            }
        }
        assert_eq!(made, caps::MAX_SESSIONS_PER_UID);
        // Many unprivileged users together leave the reserved marks free.
        for uid in 2000..2100u32 {
            for i in 0..caps::MAX_SESSIONS_PER_UID {
                let _ = create(
                    &mut m,
                    &caller(&format!(":2.{uid}"), uid),
                    &[],
                    &format!("/n{i}"),
                );
            }
        }
        assert_eq!(
            m.sessions.len(),
            caps::MAX_SESSIONS - caps::SESSIONS_RESERVED_FOR_ADMIN
        );
        // Root still can.
        for i in 0..caps::SESSIONS_RESERVED_FOR_ADMIN {
            create(&mut m, &caller(":1.1", 0), &[], &format!("/root{i}")).unwrap();
        }
        assert_eq!(m.sessions.len(), caps::MAX_SESSIONS);
    }

    #[test]
    fn selectors_are_capped_per_user() {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        let many: Vec<String> = (0..caps::MAX_SELECTORS_PER_SESSION)
            .map(|i| format!("*-*-udp-*-{}", 1000 + i))
            .collect();
        let v = Value::from(many);
        let per_uid = caps::MAX_SELECTORS_PER_UID / caps::MAX_SELECTORS_PER_SESSION;
        let mut refused = None;
        for i in 0..=per_uid {
            let p = create(&mut m, &caller(":1.5", 1000), &[], &format!("/n{i}")).unwrap();
            if let Err(e) = change(&mut m, &caller(":1.5", 1000), &p, "FlowSelectors", &v) {
                refused = Some((i, e));
                break;
            }
        }
        let (i, e) = refused.expect("the per-user selector cap holds");
        assert_eq!(i, per_uid);
        assert!(e.message.contains("MAX_SELECTORS_PER_UID"), "{e:?}");
        // Root is not bound by it.
        let p = create(&mut m, &caller(":1.1", 0), &[], "/r").unwrap();
        change(&mut m, &caller(":1.1", 0), &p, "FlowSelectors", &v).unwrap();
    }

    #[test]
    fn only_the_owner_may_change_or_destroy() {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        let p = create(&mut m, &caller(":1.5", 1000), &[], "/n").unwrap();
        let v = Value::from(true);
        assert_eq!(
            change(&mut m, &caller(":1.9", 1000), &p, "SourceIPRule", &v)
                .unwrap_err()
                .name,
            crate::dbus::names::ErrorName::PermissionDenied
        );
        assert_eq!(
            session::destroy(&mut m, ":1.9", &p)
                .unwrap_err()
                .dbus_name(),
            "PermissionDenied"
        );
        change(&mut m, &caller(":1.5", 1000), &p, "SourceIPRule", &v).unwrap();
        assert!(m.sessions[0].user.source_ip_rule);
        let bad = Value::from(vec!["*-*-udp-1".to_string(), "*-*-bogus".to_string()]);
        assert!(change(&mut m, &caller(":1.5", 1000), &p, "FlowSelectors", &bad).is_err());
        assert!(
            m.sessions[0].flows.is_empty(),
            "a bad list is rejected whole"
        );
        session::destroy(&mut m, ":1.5", &p).unwrap();
        assert!(m.sessions.is_empty());
    }
}
