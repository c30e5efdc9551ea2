//! The model seen through ConnMan's D-Bus properties (pure: model in,
//! `a{sv}` entries out). The server diffs these snapshots to emit
//! `PropertyChanged`.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use crate::core::model::{Ipv4Source, Model, Service};
use crate::core::session::{self, Session};
use crate::core::types::{prefix_to_mask, Ipv4Method, ServerList, Technology, Timeserver};

/// Property name → value, in a stable order.
pub type Props = Vec<(&'static str, OwnedValue)>;

fn owned(v: Value<'_>) -> OwnedValue {
    // Only fds can fail to convert, and we never put fds in properties.
    v.try_to_owned().unwrap_or_else(|_| OwnedValue::from(false))
}

/// An `a{sv}` value.
pub fn dict(entries: Vec<(&'static str, Value<'static>)>) -> Value<'static> {
    let map: HashMap<String, Value<'static>> = entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Value::from(map)
}

fn strings<I: IntoIterator<Item = String>>(items: I) -> Value<'static> {
    Value::from(items.into_iter().collect::<Vec<String>>())
}

fn servers(list: &ServerList) -> Value<'static> {
    strings(list.iter().map(|a| a.to_string()))
}

/// Manager.GetProperties.
pub fn manager(model: &Model) -> Props {
    vec![
        ("State", owned(Value::from(model.manager_state()))),
        ("OfflineMode", owned(Value::from(model.offline))),
        ("SessionMode", owned(Value::from(false))),
    ]
}

/// Technology properties.
pub fn technology(model: &Model, tech: Technology) -> Props {
    vec![
        ("Name", owned(Value::from(tech.display_name()))),
        ("Type", owned(Value::from(tech.as_str()))),
        ("Powered", owned(Value::from(model.tech_powered(tech)))),
        ("Connected", owned(Value::from(model.tech_connected(tech)))),
        ("Tethering", owned(Value::from(false))),
    ]
}

fn ipv4(svc: &Service) -> Value<'static> {
    let Some(a) = &svc.ipv4 else {
        return dict(vec![]);
    };
    let method = match a.source {
        Ipv4Source::Dhcp => "dhcp",
        Ipv4Source::Manual => "manual",
        Ipv4Source::LinkLocal => "auto",
    };
    let mut e = vec![
        ("Method", Value::from(method)),
        ("Address", Value::from(a.net.addr.to_string())),
        (
            "Netmask",
            Value::from(std::net::Ipv4Addr::from(prefix_to_mask(a.net.prefix_len)).to_string()),
        ),
    ];
    if let Some(gw) = a.gateway {
        e.push(("Gateway", Value::from(gw.to_string())));
    }
    dict(e)
}

fn ipv4_config(svc: &Service) -> Value<'static> {
    let mut e = vec![("Method", Value::from(svc.config.ipv4.as_str()))];
    if let Ipv4Method::Manual { addr, gateway } = svc.config.ipv4 {
        e.push(("Address", Value::from(addr.addr.to_string())));
        e.push((
            "Netmask",
            Value::from(std::net::Ipv4Addr::from(prefix_to_mask(addr.prefix_len)).to_string()),
        ));
        if let Some(gw) = gateway {
            e.push(("Gateway", Value::from(gw.to_string())));
        }
    }
    dict(e)
}

fn ipv6(svc: &Service) -> Value<'static> {
    let Some(a) = svc.ipv6.first() else {
        return dict(vec![]);
    };
    let mut e = vec![
        ("Method", Value::from("auto")),
        ("Address", Value::from(a.addr.to_string())),
        ("PrefixLength", Value::from(a.prefix_len)),
        ("Privacy", Value::from("disabled")),
    ];
    if let Some(gw) = svc.ipv6_gateway {
        e.push(("Gateway", Value::from(gw.to_string())));
    }
    dict(e)
}

/// Service properties (ConnMan's set for ethernet, plus pathman's multipath ones).
pub fn service(model: &Model, svc: &Service) -> Props {
    let mac = svc.mac;
    let mac_str = format!(
        "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    let mut p: Props = vec![
        ("Type", owned(Value::from(svc.tech.as_str()))),
        ("Security", owned(strings(Vec::new()))),
        ("State", owned(Value::from(svc.state.as_str()))),
    ];
    if let Some(err) = svc.error {
        p.push(("Error", owned(Value::from(err))));
    }
    let learned_ts: ServerList = svc
        .ipv4
        .as_ref()
        .map(|a| a.timeservers.clone())
        .unwrap_or_default();
    let mut timeservers = svc.config.timeservers.clone();
    for t in learned_ts.iter().map(|a| Timeserver::Addr(*a)) {
        if !timeservers.contains(&t) {
            let _ = timeservers.push(t);
        }
    }
    p.extend([
        ("Name", owned(Value::from(svc.tech.display_name()))),
        ("Favorite", owned(Value::from(svc.config.favorite))),
        ("Immutable", owned(Value::from(false))),
        ("AutoConnect", owned(Value::from(svc.config.auto_connect))),
        ("Nameservers", owned(servers(&Model::nameservers(svc)))),
        (
            "Nameservers.Configuration",
            owned(servers(&svc.config.nameservers)),
        ),
        (
            "Timeservers",
            owned(strings(timeservers.iter().map(|t| t.to_string()))),
        ),
        (
            "Timeservers.Configuration",
            owned(strings(
                svc.config.timeservers.iter().map(|t| t.to_string()),
            )),
        ),
        (
            "Domains",
            owned(strings(Model::domains(svc).iter().map(|d| d.to_string()))),
        ),
        (
            "Domains.Configuration",
            owned(strings(svc.config.domains.iter().map(|d| d.to_string()))),
        ),
        ("IPv4", owned(ipv4(svc))),
        ("IPv4.Configuration", owned(ipv4_config(svc))),
        ("IPv6", owned(ipv6(svc))),
        (
            "IPv6.Configuration",
            owned(dict(vec![(
                "Method",
                Value::from(svc.config.ipv6.as_str()),
            )])),
        ),
        (
            "Proxy",
            owned(dict(vec![("Method", Value::from("direct"))])),
        ),
        ("Proxy.Configuration", owned(dict(vec![]))),
        ("Provider", owned(dict(vec![]))),
        (
            "Ethernet",
            owned(dict(vec![
                ("Method", Value::from("auto")),
                ("Interface", Value::from(svc.ifname.to_string())),
                ("Address", Value::from(mac_str)),
                ("MTU", Value::from(1500u16)),
            ])),
        ),
        ("mDNS", owned(Value::from(false))),
        ("mDNS.Configuration", owned(Value::from(false))),
        (
            "MultipathRouting",
            owned(Value::from(svc.multipath(model.settings.multipath_default))),
        ),
        (
            "MultipathTcpLink",
            owned(Value::from(svc.config.mptcp_link.as_str())),
        ),
    ]);
    p
}

/// A session's settings, as `Update` reports them (SPEC §5).
pub fn session(model: &Model, s: &Session) -> Props {
    let v = session::view(model, s, &model.policies);
    let svc = v.service;
    vec![
        ("State", owned(Value::from(v.state()))),
        (
            "Name",
            owned(Value::from(
                svc.map(|x| x.tech.display_name()).unwrap_or(""),
            )),
        ),
        (
            "Bearer",
            owned(Value::from(svc.map(|x| x.tech.as_str()).unwrap_or(""))),
        ),
        (
            "Interface",
            owned(Value::from(
                svc.map(|x| x.ifname.to_string()).unwrap_or_default(),
            )),
        ),
        ("IPv4", owned(svc.map(ipv4).unwrap_or_else(|| dict(vec![])))),
        ("IPv6", owned(svc.map(ipv6).unwrap_or_else(|| dict(vec![])))),
        (
            "AllowedBearers",
            owned(strings(
                s.user
                    .allowed_bearers
                    .iter()
                    .map(|t| t.as_str().to_string()),
            )),
        ),
        (
            "ConnectionType",
            owned(Value::from(s.user.connection_type.as_str())),
        ),
        (
            "AllowedInterface",
            owned(Value::from(
                s.user
                    .allowed_interface
                    .clone()
                    .unwrap_or_else(|| "*".to_string()),
            )),
        ),
        ("SourceIPRule", owned(Value::from(s.user.source_ip_rule))),
        (
            "ContextIdentifier",
            owned(Value::from(s.user.context_identifier.clone())),
        ),
        (
            "MultipathRoutedServices",
            owned(strings(v.mpath.iter().map(|x| x.id.to_string()))),
        ),
        (
            "FlowSelectors",
            owned(strings(s.flows.iter().map(|f| f.to_string()))),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_is_a_sv() {
        let v = dict(vec![("Method", Value::from("dhcp"))]);
        assert_eq!(v.value_signature().to_string(), "a{sv}");
    }
}
