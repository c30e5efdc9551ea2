//! oFono's D-Bus API (`org.ofono`, oFono's `doc/*-api.txt`): names, and
//! decoding what it sends into the pure cellular core's types. Pure:
//! values in, values out. A property of the wrong type or size is refused
//! with the reason (the caller logs it with the modem's path) and the
//! field keeps its last value, so a confused oFono cannot make pathman
//! panic or believe garbage.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use zbus::zvariant::{OwnedValue, Value};

use crate::caps;
use crate::core::tech::cellular::{
    Context, IpSettings, Ipv4Method, Ipv6Settings, ModemView, NetReg, RegStatus, Sim,
};
use crate::core::types::{IfName, Ipv4Net};
use crate::dbus::value::{inner, int, string, strings};

pub const NAME: &str = "org.ofono";
pub const MANAGER: &str = "org.ofono.Manager";
pub const MODEM: &str = "org.ofono.Modem";
pub const SIM: &str = "org.ofono.SimManager";
pub const NETREG: &str = "org.ofono.NetworkRegistration";
pub const CM: &str = "org.ofono.ConnectionManager";
pub const CONTEXT: &str = "org.ofono.ConnectionContext";

/// A property dictionary as received (`GetProperties`).
pub type Props = HashMap<String, OwnedValue>;

fn boolean(v: &Value<'_>, name: &str) -> Result<bool, String> {
    match inner(v) {
        Value::Bool(b) => Ok(*b),
        other => Err(format!(
            "{name} must be a boolean, got {}",
            other.value_signature()
        )),
    }
}

fn text(v: &Value<'_>, name: &str, max: usize) -> Result<String, String> {
    let s = string(v).ok_or_else(|| format!("{name} must be a string"))?;
    if s.len() > max {
        return Err(format!("{name} is longer than {max} bytes"));
    }
    Ok(s)
}

/// One `org.ofono.Modem` property.
pub fn modem(view: &mut ModemView, name: &str, v: &Value<'_>) -> Result<(), String> {
    match name {
        "Powered" => view.powered = boolean(v, name)?,
        "Online" => view.online = boolean(v, name)?,
        "Type" => view.hardware = text(v, name, caps::OFONO_MAX_STRING)? == "hardware",
        "Interfaces" => {
            let list = strings(v).ok_or("Interfaces must be a string list")?;
            view.interfaces = list.into_iter().take(caps::OFONO_MAX_INTERFACES).collect();
            if !view.has(SIM) {
                view.sim = Sim::Unknown;
                view.imsi = None;
            }
            if !view.has(NETREG) {
                view.netreg = None;
            } else if view.netreg.is_none() {
                view.netreg = Some(NetReg::default());
            }
            if !view.has(CM) {
                view.cm = false;
                view.attached = false;
                view.contexts.clear();
            } else {
                view.cm = true;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One `org.ofono.SimManager` property.
pub fn sim(view: &mut ModemView, name: &str, v: &Value<'_>) -> Result<(), String> {
    match name {
        "Present" => {
            if !boolean(v, name)? {
                view.sim = Sim::Absent;
                view.imsi = None;
            } else if view.sim == Sim::Absent {
                view.sim = Sim::Unknown;
            }
        }
        "SubscriberIdentity" => {
            let imsi = text(v, name, 15)?;
            if !imsi.is_empty() && !crate::core::tech::cellular::valid_imsi(&imsi) {
                return Err(format!(
                    "SubscriberIdentity {imsi:?} is not an IMSI (6-15 digits)"
                ));
            }
            view.imsi = (!imsi.is_empty()).then_some(imsi);
        }
        "PinRequired" => {
            let pin = text(v, name, caps::OFONO_MAX_STRING)?;
            view.sim = if pin == "none" {
                Sim::Ready
            } else {
                Sim::Locked(pin)
            };
        }
        _ => {}
    }
    Ok(())
}

/// One `org.ofono.NetworkRegistration` property.
pub fn netreg(view: &mut ModemView, name: &str, v: &Value<'_>) -> Result<(), String> {
    let reg = view.netreg.get_or_insert_with(NetReg::default);
    match name {
        "Status" => reg.status = RegStatus::parse(&text(v, name, caps::OFONO_MAX_STRING)?),
        "Name" => reg.name = text(v, name, caps::OFONO_MAX_STRING)?,
        "Strength" => {
            let n = int(v).ok_or("Strength must be a number")?;
            reg.strength = u8::try_from(n.clamp(0, 100)).unwrap_or(0);
        }
        _ => {}
    }
    Ok(())
}

/// One `org.ofono.ConnectionManager` property.
pub fn cm(view: &mut ModemView, name: &str, v: &Value<'_>) -> Result<(), String> {
    match name {
        "Attached" => view.attached = boolean(v, name)?,
        "Powered" => view.cm_powered = boolean(v, name)?,
        "RoamingAllowed" => view.roaming_allowed = boolean(v, name)?,
        _ => {}
    }
    Ok(())
}

/// One `org.ofono.ConnectionContext` property.
pub fn context(ctx: &mut Context, name: &str, v: &Value<'_>) -> Result<(), String> {
    match name {
        "Active" => ctx.active = boolean(v, name)?,
        "Type" => ctx.kind = text(v, name, caps::OFONO_MAX_STRING)?,
        "AccessPointName" => ctx.apn = text(v, name, caps::OFONO_MAX_STRING)?,
        "Settings" => ctx.settings = settings(v),
        "IPv6.Settings" => ctx.ipv6 = ipv6_settings(v),
        _ => {}
    }
    Ok(())
}

/// The properties of a `GetProperties` reply, one by one; the refusals.
pub fn each(
    props: &Props,
    mut f: impl FnMut(&str, &Value<'_>) -> Result<(), String>,
) -> Vec<String> {
    let mut keys: Vec<&String> = props.keys().collect();
    // Interfaces last: it decides which parts of the view exist.
    crate::sort::sort_by_key(&mut keys, |k| k.as_str() == "Interfaces");
    keys.into_iter()
        .filter_map(|k| f(k, &props[k]).err())
        .collect()
}

/// A settings dictionary by key; None while empty (inactive).
fn settings_map<'a>(
    v: &'a Value<'a>,
    what: &str,
) -> Result<Option<HashMap<String, &'a Value<'a>>>, String> {
    let Value::Dict(d) = inner(v) else {
        return Err(format!("{what} must be a dictionary"));
    };
    let mut map: HashMap<String, &Value<'_>> = HashMap::new();
    for (k, val) in d.iter() {
        if let Some(k) = string(k) {
            map.insert(k, val);
        }
    }
    Ok((!map.is_empty()).then_some(map))
}

/// A context's `Settings`: None while empty (inactive), else the IPv4
/// configuration or why it cannot be used.
pub fn settings(v: &Value<'_>) -> Option<Result<IpSettings, String>> {
    match settings_map(v, "Settings") {
        Ok(None) => None,
        Ok(Some(map)) => Some(ipv4(&map)),
        Err(e) => Some(Err(e)),
    }
}

/// A context's `IPv6.Settings`: None while empty (inactive, or an IPv4-only
/// context), else the IPv6 configuration or why it cannot be used.
pub fn ipv6_settings(v: &Value<'_>) -> Option<Result<Ipv6Settings, String>> {
    match settings_map(v, "IPv6.Settings") {
        Ok(None) => None,
        Ok(Some(map)) => Some(ipv6(&map)),
        Err(e) => Some(Err(e)),
    }
}

fn addr<T: std::str::FromStr>(
    map: &HashMap<String, &Value<'_>>,
    what: &str,
    key: &str,
) -> Result<Option<T>, String> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    let s = string(v).ok_or_else(|| format!("{what}.{key} must be a string"))?;
    let family = if what == "Settings" { "IPv4" } else { "IPv6" };
    s.parse()
        .map(Some)
        .map_err(|_| format!("{what}.{key} {s:?} is not an {family} address"))
}

/// `Interface`: None when absent, an error when it is no interface name.
fn interface(map: &HashMap<String, &Value<'_>>, what: &str) -> Result<Option<IfName>, String> {
    let Some(v) = map.get("Interface") else {
        return Ok(None);
    };
    let ifname = string(v).ok_or_else(|| format!("{what}.Interface must be a string"))?;
    let interface = IfName::try_from(ifname.as_str())
        .map_err(|_| format!("{what}.Interface {ifname:?} is too long for an interface name"))?;
    if interface.is_empty() || interface.contains('/') {
        return Err(format!(
            "{what}.Interface {ifname:?} is not an interface name"
        ));
    }
    Ok(Some(interface))
}

/// `DomainNameServers`: the addresses of this family, up to the cap (named
/// in a log line when more came); others are skipped.
fn servers<T: std::str::FromStr>(
    map: &HashMap<String, &Value<'_>>,
    what: &str,
) -> Result<heapless::Vec<T, { caps::MAX_SERVERS }>, String> {
    let mut dns = heapless::Vec::new();
    if let Some(v) = map.get("DomainNameServers") {
        let list =
            strings(v).ok_or_else(|| format!("{what}.DomainNameServers must be a string list"))?;
        let total = list.len();
        for s in list.iter().filter_map(|s| s.parse::<T>().ok()) {
            if dns.push(s).is_err() {
                log::warn!(
                    "ofono: {total} {what}.DomainNameServers, only the first {} kept (caps::MAX_SERVERS)",
                    caps::MAX_SERVERS
                );
                break;
            }
        }
    }
    Ok(dns)
}

fn ipv4(map: &HashMap<String, &Value<'_>>) -> Result<IpSettings, String> {
    const W: &str = "Settings";
    let interface = interface(map, W)?.ok_or("Settings without Interface")?;
    let method = map
        .get("Method")
        .and_then(|v| string(v))
        .unwrap_or_default();
    let method = match method.as_str() {
        "dhcp" => Ipv4Method::Dhcp,
        "static" => {
            let address = addr(map, W, "Address")?.ok_or("static Settings without Address")?;
            let mask = addr(map, W, "Netmask")?.unwrap_or(Ipv4Addr::BROADCAST);
            let prefix_len = crate::core::types::mask_to_prefix(mask)
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("Settings.Netmask {mask} is not a usable netmask"))?;
            Ipv4Method::Static {
                net: Ipv4Net {
                    addr: address,
                    prefix_len,
                },
                gateway: addr(map, W, "Gateway")?,
                dns: servers(map, W)?,
            }
        }
        other => {
            return Err(format!(
                "Settings.Method {other:?} is neither dhcp nor static"
            ))
        }
    };
    Ok(IpSettings { interface, method })
}

/// A unicast address a host may use (not unspecified, loopback or multicast).
fn unicast6(a: Ipv6Addr) -> bool {
    !a.is_unspecified() && !a.is_loopback() && !a.is_multicast()
}

fn link_local6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn ipv6(map: &HashMap<String, &Value<'_>>) -> Result<Ipv6Settings, String> {
    const W: &str = "IPv6.Settings";
    let interface = interface(map, W)?;
    let address: Option<Ipv6Addr> = addr(map, W, "Address")?;
    if let Some(a) = address.filter(|a| !unicast6(*a)) {
        return Err(format!(
            "IPv6.Settings.Address {a} is not a unicast address"
        ));
    }
    let prefix_len = match map.get("PrefixLength") {
        None => 64,
        Some(v) => match inner(v) {
            Value::U8(n) if (1..=128).contains(n) => *n,
            Value::U8(n) => return Err(format!("IPv6.Settings.PrefixLength {n} is not 1 to 128")),
            _ => return Err("IPv6.Settings.PrefixLength must be a byte".into()),
        },
    };
    let gateway: Option<Ipv6Addr> = addr(map, W, "Gateway")?;
    if let Some(g) = gateway.filter(|g| !unicast6(*g)) {
        return Err(format!(
            "IPv6.Settings.Gateway {g} is not a unicast address"
        ));
    }
    Ok(Ipv6Settings {
        interface,
        // A link-local address is the kernel's own business.
        address: address
            .filter(|a| !link_local6(*a))
            .map(|a| (a, prefix_len)),
        gateway,
        dns: servers(map, W)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dict(entries: &[(&str, Value<'static>)]) -> Value<'static> {
        let mut m: HashMap<String, Value<'static>> = HashMap::new();
        for (k, v) in entries {
            m.insert((*k).to_string(), v.clone());
        }
        Value::from(m)
    }

    #[test]
    fn dhcp_and_static_settings() {
        let s = settings(&dict(&[
            ("Interface", Value::from("dummy0")),
            ("Method", Value::from("dhcp")),
        ]));
        assert_eq!(
            s,
            Some(Ok(IpSettings {
                interface: IfName::try_from("dummy0").unwrap(),
                method: Ipv4Method::Dhcp
            }))
        );
        let dns: Vec<String> = (0..50).map(|i| format!("10.0.0.{i}")).collect();
        let s = settings(&dict(&[
            ("Interface", Value::from("wwan0")),
            ("Method", Value::from("static")),
            ("Address", Value::from("10.64.1.2")),
            ("Netmask", Value::from("255.255.255.252")),
            ("Gateway", Value::from("10.64.1.1")),
            ("DomainNameServers", Value::from(dns)),
        ]))
        .unwrap()
        .unwrap();
        match s.method {
            Ipv4Method::Static { net, gateway, dns } => {
                assert_eq!(net.prefix_len, 30);
                assert_eq!(gateway, Some(Ipv4Addr::new(10, 64, 1, 1)));
                assert_eq!(dns.len(), caps::MAX_SERVERS, "50 servers: the cap");
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(settings(&dict(&[])), None, "empty: not active yet");
    }

    #[test]
    fn odd_settings_are_refused_with_a_reason() {
        for (entries, why) in [
            (vec![("Method", Value::from("dhcp"))], "without Interface"),
            (
                vec![
                    ("Interface", Value::from("dummy0")),
                    ("Method", Value::from("ppp")),
                ],
                "neither",
            ),
            (
                vec![
                    ("Interface", Value::from("dummy0")),
                    ("Method", Value::from("static")),
                    ("Address", Value::from("10.0.0.2")),
                    ("Netmask", Value::from("0.0.0.0")),
                ],
                "netmask",
            ),
            (
                vec![
                    ("Interface", Value::from("dummy0")),
                    ("Method", Value::from("static")),
                    ("Address", Value::from(7u32)),
                ],
                "must be a string",
            ),
            (
                vec![
                    ("Interface", Value::from("x".repeat(40))),
                    ("Method", Value::from("dhcp")),
                ],
                "too long",
            ),
            (
                vec![
                    ("Interface", Value::from("../etc")),
                    ("Method", Value::from("dhcp")),
                ],
                "not an interface",
            ),
        ] {
            let got = settings(&dict(&entries));
            assert!(
                matches!(&got, Some(Err(e)) if e.contains(why)),
                "{entries:?}: {got:?}"
            );
        }
        assert!(matches!(settings(&Value::from(3u32)), Some(Err(_))));
    }

    #[test]
    fn ipv6_settings_and_their_refusals() {
        let s = ipv6_settings(&dict(&[
            ("Interface", Value::from("wwan0")),
            ("Address", Value::from("2001:db8:1::50")),
            ("PrefixLength", Value::from(56u8)),
            ("Gateway", Value::from("fe80::1")),
            (
                "DomainNameServers",
                Value::from(vec!["2001:db8::53", "10.0.0.1"]),
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.interface.as_deref(), Some("wwan0"));
        assert_eq!(s.address, Some(("2001:db8:1::50".parse().unwrap(), 56)));
        assert_eq!(s.gateway, Some("fe80::1".parse().unwrap()));
        assert_eq!(&s.dns[..], &["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
        // phonesim's link-local address: nothing to install; no Interface: Settings' one.
        let s = ipv6_settings(&dict(&[
            ("Address", Value::from("fe80::1")),
            ("PrefixLength", Value::from(10u8)),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((s.interface, s.address), (None, None));
        assert_eq!(
            ipv6_settings(&dict(&[])),
            None,
            "empty: IPv4-only or inactive"
        );
        for (entries, why) in [
            (
                vec![("Address", Value::from("10.0.0.2"))],
                "not an IPv6 address",
            ),
            (vec![("Address", Value::from("ff02::1"))], "not a unicast"),
            (vec![("Address", Value::from("::"))], "not a unicast"),
            (
                vec![
                    ("Address", Value::from("2001:db8::2")),
                    ("PrefixLength", Value::from(0u8)),
                ],
                "not 1 to 128",
            ),
            (
                vec![
                    ("Address", Value::from("2001:db8::2")),
                    ("PrefixLength", Value::from(200u8)),
                ],
                "not 1 to 128",
            ),
            (vec![("PrefixLength", Value::from("64"))], "must be a byte"),
            (vec![("Gateway", Value::from("ff02::2"))], "not a unicast"),
            (vec![("Interface", Value::from(3u32))], "must be a string"),
            (
                vec![("DomainNameServers", Value::from("2001:db8::53"))],
                "string list",
            ),
        ] {
            let got = ipv6_settings(&dict(&entries));
            assert!(
                matches!(&got, Some(Err(e)) if e.contains(why)),
                "{entries:?}: {got:?}"
            );
        }
        assert!(matches!(ipv6_settings(&Value::from(3u32)), Some(Err(_))));
    }

    #[test]
    fn wrong_types_keep_the_last_value() {
        let mut v = ModemView {
            powered: true,
            ..ModemView::default()
        };
        assert!(modem(&mut v, "Powered", &Value::from("yes")).is_err());
        assert!(v.powered);
        assert!(sim(&mut v, "SubscriberIdentity", &Value::from("12ab")).is_err());
        assert!(v.imsi.is_none());
        sim(
            &mut v,
            "SubscriberIdentity",
            &Value::from("001010123456789"),
        )
        .unwrap();
        sim(&mut v, "PinRequired", &Value::from("pin")).unwrap();
        assert_eq!(v.sim, Sim::Locked("pin".into()));
        netreg(&mut v, "Strength", &Value::from(250u8)).unwrap();
        assert_eq!(v.netreg.as_ref().unwrap().strength, 100);
        netreg(&mut v, "Status", &Value::from("roaming")).unwrap();
        assert_eq!(v.netreg.as_ref().unwrap().status, RegStatus::Roaming);
        assert!(netreg(&mut v, "Name", &Value::from("n".repeat(1000))).is_err());
    }

    #[test]
    fn interfaces_decide_which_parts_exist() {
        let mut v = ModemView::default();
        modem(&mut v, "Interfaces", &Value::from(vec![SIM, NETREG, CM])).unwrap();
        assert!(v.cm && v.netreg.is_some());
        v.attached = true;
        v.contexts.push(Context::default());
        modem(&mut v, "Interfaces", &Value::from(vec![SIM])).unwrap();
        assert!(!v.cm && !v.attached && v.contexts.is_empty() && v.netreg.is_none());
    }

    proptest! {
        #[test]
        fn any_ipv6_settings_never_panic(iface in ".{0,20}", a in "[0-9a-f:.]{0,45}", len in any::<u8>(), g in "[0-9a-f:]{0,45}") {
            let got = ipv6_settings(&dict(&[
                ("Interface", Value::from(iface)),
                ("Address", Value::from(a)),
                ("PrefixLength", Value::from(len)),
                ("Gateway", Value::from(g)),
            ]));
            if let Some(Ok(s)) = got {
                // What is kept is usable: a unicast address with a real prefix.
                if let Some((a, l)) = s.address {
                    prop_assert!(!a.is_multicast() && !a.is_unspecified() && (1..=128).contains(&l));
                }
            }
        }

        #[test]
        fn any_string_settings_never_panic(iface in ".{0,40}", method in ".{0,10}", a in ".{0,20}", m in ".{0,20}") {
            let _ = settings(&dict(&[
                ("Interface", Value::from(iface)),
                ("Method", Value::from(method)),
                ("Address", Value::from(a)),
                ("Netmask", Value::from(m)),
            ]));
        }
    }
}
