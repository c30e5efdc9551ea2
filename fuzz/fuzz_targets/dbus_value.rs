//! D-Bus call arguments as pathman decodes them: the input's first byte picks the byte order
//! and the body's signature, the rest is the marshalled body (D-Bus wire format, as it
//! arrives in a message). The body is decoded the way `dbus/server.rs` does (zvariant), then
//! goes through `dbus/value.rs`'s getters, `request::set_service_property` on a default
//! service configuration (under the name given and under every writable property name) and
//! the session settings decoder (`dbus::session::create` and `change` on an empty model).
//! Every outcome must be `Ok` or a ConnMan error, never a panic; a refused property leaves
//! the configuration as it was ("validated whole").
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use pathman::core::model::{Model, ModelSettings};
use pathman::core::types::ServiceConfig;
use pathman::dbus::request::set_service_property;
use pathman::dbus::session::{self, Caller};
use pathman::dbus::value::{bool_of, dict_entries, str_of, string_list};
use zvariant::serialized::{Context, Data};
use zvariant::{OwnedObjectPath, OwnedValue, Value, BE, LE};

/// Every Service property a client may try to set, writable or not.
const SERVICE_PROPERTIES: &[&str] = &[
    "AutoConnect",
    "MultipathRouting",
    "MultipathTcpLink",
    "Nameservers.Configuration",
    "Timeservers.Configuration",
    "Domains.Configuration",
    "IPv4.Configuration",
    "IPv6.Configuration",
    "Proxy.Configuration",
    "mDNS.Configuration",
    "Name",
];

/// Every session setting (ConnMan's and the multipath additions).
const SESSION_SETTINGS: &[&str] = &[
    "AllowedBearers",
    "ConnectionType",
    "AllowedInterface",
    "SourceIPRule",
    "ContextIdentifier",
    "FlowSelectors",
    "MultipathRoutedServices",
    "State",
];

fn root() -> Caller {
    Caller {
        name: ":1.7".to_string(),
        uid: Some(0),
        gids: vec![0],
        admin: true,
    }
}

fn getters(v: &Value<'_>) {
    let _ = bool_of(v, "X");
    let _ = str_of(v, "X");
    let _ = string_list(v, "X");
    if let Ok(entries) = dict_entries(v, "X") {
        for (_, e) in entries {
            let _ = str_of(e, "X");
            let _ = string_list(e, "X");
        }
    }
}

fn service_property(name: &str, v: &Value<'_>) {
    let mut cfg = ServiceConfig::default();
    if set_service_property(&mut cfg, name, v).is_err() {
        assert_eq!(
            cfg,
            ServiceConfig::default(),
            "refused {name} changed the configuration"
        );
    }
}

fn session_setting(name: &str, v: &OwnedValue) {
    let mut model = Model::new(ModelSettings::default(), false, &[]);
    let settings = [(name.to_string(), &**v)];
    let _ = session::create(&mut model, &root(), &settings, "/fuzz/notifier");
    // Change on a session created without settings.
    if let Ok(path) = session::create(&mut model, &root(), &[], "/fuzz/n2") {
        let _ = session::change(&mut model, &root(), &path, name, v);
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let endian = if selector & 1 == 0 { LE } else { BE };
    let data = Data::new(body, Context::new_dbus(endian, 0));
    match (selector >> 1) % 4 {
        // SetProperty(sv) on a Service, Session.Change(sv).
        0 => {
            let Ok(((name, value), _)) = data.deserialize::<(String, OwnedValue)>() else {
                return;
            };
            getters(&value);
            service_property(&name, &value);
            for p in SERVICE_PROPERTIES {
                service_property(p, &value);
            }
            session_setting(&name, &value);
            for s in SESSION_SETTINGS {
                session_setting(s, &value);
            }
        }
        // CreateSession(a{sv}o).
        1 => {
            let Ok(((settings, notifier), _)) =
                data.deserialize::<(HashMap<String, OwnedValue>, OwnedObjectPath)>()
            else {
                return;
            };
            let mut model = Model::new(ModelSettings::default(), false, &[]);
            let entries: Vec<(String, &Value<'_>)> =
                settings.iter().map(|(k, v)| (k.clone(), &**v)).collect();
            let _ = session::create(&mut model, &root(), &entries, notifier.as_str());
        }
        // A bare variant (`v`), e.g. a value nested in a dictionary entry.
        2 => {
            let Ok((value, _)) = data.deserialize::<OwnedValue>() else {
                return;
            };
            getters(&value);
            for p in SERVICE_PROPERTIES {
                service_property(p, &value);
            }
        }
        // A bare a{sv}: IPv4.Configuration / IPv6.Configuration dictionaries.
        _ => {
            let Ok((dict, _)) = data.deserialize::<HashMap<String, OwnedValue>>() else {
                return;
            };
            let Ok(value) = OwnedValue::try_from(Value::from(dict)) else {
                return;
            };
            getters(&value);
            service_property("IPv4.Configuration", &value);
            service_property("IPv6.Configuration", &value);
        }
    }
});
