//! The model seen through ConnMan's D-Bus properties (pure: model in,
//! `a{sv}` entries out), in ConnMan's order for every object, nested
//! dictionaries included, so `connmanctl services ID` prints the same lines
//! in the same order on every call. The server diffs these snapshots to emit
//! `PropertyChanged`.
//!
//! Values are [`Prop`]s rather than zvariant `Value`s because zvariant keeps
//! dictionaries in a `BTreeMap` (sorted by key); a [`Prop::Dict`] keeps the
//! order it was built in when it is serialised.

use zbus::export::serde::ser::{self, SerializeMap, SerializeSeq, SerializeStruct};
use zbus::export::serde::{Serialize, Serializer};
use zbus::zvariant::{OwnedValue, Signature, Type};

use crate::core::model::{Ipv4Source, Model, Service};
use crate::core::session::{self, Session};
use crate::core::types::{prefix_to_mask, Ipv4Method, ServerList, Technology, Timeserver};

/// One property value: the D-Bus types ConnMan's properties use.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    /// `b`
    Bool(bool),
    /// `y`
    Byte(u8),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `as`
    Strs(Vec<String>),
    /// `a{sv}`, in the order given.
    Dict(Vec<(&'static str, Prop)>),
}

impl Prop {
    /// The D-Bus signature of the value.
    pub fn signature(&self) -> &'static str {
        match self {
            Prop::Bool(_) => "b",
            Prop::Byte(_) => "y",
            Prop::U16(_) => "q",
            Prop::I32(_) => "i",
            Prop::U32(_) => "u",
            Prop::U64(_) => "t",
            Prop::Str(_) => "s",
            Prop::Strs(_) => "as",
            Prop::Dict(_) => "a{sv}",
        }
    }
}

impl From<bool> for Prop {
    fn from(v: bool) -> Prop {
        Prop::Bool(v)
    }
}

impl From<&str> for Prop {
    fn from(v: &str) -> Prop {
        Prop::Str(v.to_string())
    }
}

impl From<String> for Prop {
    fn from(v: String) -> Prop {
        Prop::Str(v)
    }
}

/// The value itself, serialised with the signature [`Prop::signature`] names.
impl Serialize for Prop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Prop::Bool(v) => s.serialize_bool(*v),
            Prop::Byte(v) => s.serialize_u8(*v),
            Prop::U16(v) => s.serialize_u16(*v),
            Prop::I32(v) => s.serialize_i32(*v),
            Prop::U32(v) => s.serialize_u32(*v),
            Prop::U64(v) => s.serialize_u64(*v),
            Prop::Str(v) => s.serialize_str(v),
            Prop::Strs(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Prop::Dict(entries) => Dict(entries).serialize(s),
        }
    }
}

/// A [`Prop`] as a D-Bus variant (`v`): its signature, then its value, the
/// way zvariant serialises its own `Value`.
#[derive(Debug, Clone, Copy)]
pub struct Variant<'a>(pub &'a Prop);

impl Serialize for Variant<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sig =
            Signature::try_from(self.0.signature()).map_err(<S::Error as ser::Error>::custom)?;
        let mut st = s.serialize_struct("Variant", 2)?;
        st.serialize_field("signature", &sig)?;
        st.serialize_field("value", self.0)?;
        st.end()
    }
}

impl Type for Variant<'_> {
    const SIGNATURE: &'static Signature = <OwnedValue as Type>::SIGNATURE;
}

/// An ordered `a{sv}`.
#[derive(Debug, Clone, Copy)]
pub struct Dict<'a>(pub &'a [(&'static str, Prop)]);

impl Serialize for Dict<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Variant(v))?;
        }
        map.end()
    }
}

impl Type for Dict<'_> {
    const SIGNATURE: &'static Signature =
        <std::collections::HashMap<String, OwnedValue> as Type>::SIGNATURE;
}

/// Property name → value, in ConnMan's order.
pub type Props = Vec<(&'static str, Prop)>;

fn strings<I: IntoIterator<Item = String>>(items: I) -> Prop {
    Prop::Strs(items.into_iter().collect())
}

fn servers(list: &ServerList) -> Prop {
    strings(list.iter().map(|a| a.to_string()))
}

fn netmask(prefix_len: u8) -> Prop {
    Prop::Str(std::net::Ipv4Addr::from(prefix_to_mask(prefix_len)).to_string())
}

/// Manager.GetProperties.
pub fn manager(model: &Model) -> Props {
    vec![
        ("State", model.manager_state().into()),
        ("OfflineMode", model.offline.into()),
        ("SessionMode", false.into()),
    ]
}

/// Clock properties (ConnMan's order). `Time` is the measured time when a
/// valid SNTP measurement exists (whether or not the clock could be set from
/// it), else the system clock's; `now` is the system clock.
pub fn clock(model: &Model, now: std::time::SystemTime) -> Props {
    let c = &model.clock;
    let time = match c.measured {
        Some(m) => crate::edge::clock::shifted(now, m.offset_ns),
        None => now,
    };
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    vec![
        ("Time", Prop::U64(secs)),
        ("TimeUpdates", c.time_updates.as_str().into()),
        ("Timezone", c.timezone.clone().into()),
        ("TimezoneUpdates", c.timezone_updates.as_str().into()),
        (
            "Timeservers",
            strings(c.timeservers.iter().map(|t| t.to_string())),
        ),
        ("TimeserverSynced", c.synced().into()),
    ]
}

/// Technology properties (ConnMan: Name, Type, Powered, Connected,
/// Tethering, TetheringIdentifier and TetheringPassphrase when set,
/// TetheringFreq).
pub fn technology(model: &Model, tech: Technology) -> Props {
    let ts = model.tether_settings(tech);
    let mut out = vec![
        ("Name", tech.display_name().into()),
        ("Type", tech.as_str().into()),
        ("Powered", model.tech_powered(tech).into()),
        ("Connected", model.tech_connected(tech).into()),
        ("Tethering", ts.enabled.into()),
    ];
    if let Some(id) = &ts.identifier {
        out.push(("TetheringIdentifier", id.clone().into()));
    }
    // ConnMan shows the passphrase to whoever reads the technology; so
    // does pathman (only root and AdminGroup may set it).
    if let Some(p) = &ts.passphrase {
        out.push(("TetheringPassphrase", p.0.clone().into()));
    }
    let freq = if tech == Technology::Wifi && ts.freq == 0 {
        2412
    } else {
        ts.freq
    };
    out.push(("TetheringFreq", Prop::I32(freq as i32)));
    out
}

/// `IPv4`: Method, Address, Netmask, Gateway.
fn ipv4(svc: &Service) -> Prop {
    let Some(a) = &svc.ipv4 else {
        return Prop::Dict(vec![]);
    };
    let method = match a.source {
        Ipv4Source::Dhcp => "dhcp",
        Ipv4Source::Manual => "manual",
        Ipv4Source::LinkLocal => "auto",
        Ipv4Source::Fixed => "fixed",
    };
    let mut e = vec![
        ("Method", method.into()),
        ("Address", a.net.addr.to_string().into()),
        ("Netmask", netmask(a.net.prefix_len)),
    ];
    if let Some(gw) = a.gateway {
        e.push(("Gateway", gw.to_string().into()));
    }
    Prop::Dict(e)
}

/// `IPv4.Configuration`: Method, and for manual Address, Netmask, Gateway.
fn ipv4_config(svc: &Service) -> Prop {
    let mut e = vec![("Method", svc.config.ipv4.as_str().into())];
    if let Ipv4Method::Manual { addr, gateway } = svc.config.ipv4 {
        e.push(("Address", addr.addr.to_string().into()));
        e.push(("Netmask", netmask(addr.prefix_len)));
        if let Some(gw) = gateway {
            e.push(("Gateway", gw.to_string().into()));
        }
    }
    Prop::Dict(e)
}

/// The address part of `IPv6` and (for `auto`) `IPv6.Configuration`:
/// Address, PrefixLength, Gateway, Privacy.
fn ipv6_address(svc: &Service, e: &mut Vec<(&'static str, Prop)>) {
    let Some(a) = svc.ipv6.first() else { return };
    e.push(("Address", a.addr.to_string().into()));
    e.push(("PrefixLength", Prop::Byte(a.prefix_len)));
    if let Some(gw) = svc.ipv6_gateway {
        e.push(("Gateway", gw.to_string().into()));
    }
    e.push(("Privacy", "disabled".into()));
}

/// `IPv6`: empty until an address exists.
fn ipv6(svc: &Service) -> Prop {
    if svc.ipv6.is_empty() {
        return Prop::Dict(vec![]);
    }
    // The network's own address comes first (cellular): ConnMan's `fixed`.
    let fixed = svc.ipv6_fixed.as_ref().and_then(|f| f.addr) == svc.ipv6.first().copied();
    let mut e = vec![("Method", if fixed { "fixed" } else { "auto" }.into())];
    ipv6_address(svc, &mut e);
    Prop::Dict(e)
}

/// `IPv6.Configuration`: the Method, and for `auto` the address in use (as ConnMan).
fn ipv6_config(svc: &Service) -> Prop {
    let mut e = vec![("Method", svc.config.ipv6.as_str().into())];
    if svc.config.ipv6 == crate::core::types::Ipv6Method::Auto {
        ipv6_address(svc, &mut e);
    }
    Prop::Dict(e)
}

/// `Ethernet`: Method, Interface, Address (MAC), MTU.
fn ethernet(model: &Model, svc: &Service) -> Prop {
    let dev = model.devices.iter().find(|d| d.ifindex == svc.ifindex);
    let m = dev.map(|d| d.mac).unwrap_or_default();
    let mac = format!(
        "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    let mtu = dev.map(|d| d.mtu).unwrap_or(1500);
    Prop::Dict(vec![
        ("Method", "auto".into()),
        ("Interface", svc.ifname.to_string().into()),
        ("Address", mac.into()),
        ("MTU", Prop::U16(u16::try_from(mtu).unwrap_or(u16::MAX))),
    ])
}

/// Service properties in ConnMan's order (`src/service.c` append_properties),
/// then pathman's multipath ones.
pub fn service(model: &Model, svc: &Service) -> Props {
    let security = match (&svc.wifi, &svc.cellular) {
        (Some(w), _) => vec![w.security.as_str().to_string()],
        (None, Some(_)) => vec!["none".to_string()],
        (None, None) => Vec::new(),
    };
    let mut p: Props = vec![
        ("Type", svc.tech.as_str().into()),
        ("Security", Prop::Strs(security)),
        ("State", svc.state.as_str().into()),
    ];
    if let Some(err) = svc.error {
        p.push(("Error", err.into()));
    }
    let learned_ts: ServerList = svc
        .ipv4
        .as_ref()
        .map(|a| a.timeservers.clone())
        .unwrap_or_default();
    let mut timeservers = svc.config.timeservers.clone();
    for t in learned_ts.iter().map(|a| Timeserver::Addr(*a)) {
        if !timeservers.contains(&t) && timeservers.push(t).is_err() {
            break;
        }
    }
    if let Some(w) = &svc.wifi {
        p.push(("Strength", Prop::Byte(w.strength)));
    }
    if let Some(c) = &svc.cellular {
        p.push(("Strength", Prop::Byte(c.strength)));
    }
    // A hidden network has no Name (ConnMan leaves it out).
    match &svc.wifi {
        Some(w) if w.ssid.is_empty() => {}
        Some(w) => p.push((
            "Name",
            crate::core::tech::wifi::display_name(&w.ssid).into(),
        )),
        // A cellular service is named after its operator (ConnMan).
        None => match &svc.cellular {
            Some(c) if !c.name.is_empty() => p.push(("Name", c.name.clone().into())),
            _ => p.push(("Name", svc.tech.display_name().to_string().into())),
        },
    }
    if let Some(c) = &svc.cellular {
        p.push(("Roaming", c.roaming.into()));
    }
    p.extend([
        ("Favorite", svc.config.favorite.into()),
        ("Immutable", svc.immutable().into()),
        ("AutoConnect", svc.config.auto_connect.into()),
        ("Ethernet", ethernet(model, svc)),
        ("IPv4", ipv4(svc)),
        ("IPv4.Configuration", ipv4_config(svc)),
        ("IPv6", ipv6(svc)),
        ("IPv6.Configuration", ipv6_config(svc)),
        ("Nameservers", servers(&Model::nameservers(svc))),
        (
            "Nameservers.Configuration",
            servers(&svc.config.nameservers),
        ),
        (
            "Timeservers",
            strings(timeservers.iter().map(|t| t.to_string())),
        ),
        (
            "Timeservers.Configuration",
            strings(svc.config.timeservers.iter().map(|t| t.to_string())),
        ),
        (
            "Domains",
            strings(Model::domains(svc).iter().map(|d| d.to_string())),
        ),
        (
            "Domains.Configuration",
            strings(svc.config.domains.iter().map(|d| d.to_string())),
        ),
        ("Proxy", Prop::Dict(vec![])),
        ("Proxy.Configuration", Prop::Dict(vec![])),
        ("mDNS", false.into()),
        ("mDNS.Configuration", false.into()),
        ("Provider", Prop::Dict(vec![])),
        (
            "MultipathRouting",
            svc.multipath(model.settings.multipath_default).into(),
        ),
        ("MultipathTcpLink", svc.config.mptcp_link.as_str().into()),
    ]);
    p
}

/// A session's settings, as `Update` reports them (ConnMan's order, then
/// pathman's multipath ones).
pub fn session(model: &Model, s: &Session) -> Props {
    let v = session::view(model, s, &model.policies);
    let svc = v.service;
    vec![
        ("State", v.state().into()),
        (
            "Name",
            svc.map(|x| x.tech.display_name()).unwrap_or("").into(),
        ),
        ("IPv4", svc.map(ipv4).unwrap_or(Prop::Dict(vec![]))),
        ("IPv6", svc.map(ipv6).unwrap_or(Prop::Dict(vec![]))),
        (
            "Interface",
            svc.map(|x| x.ifname.to_string()).unwrap_or_default().into(),
        ),
        ("Bearer", svc.map(|x| x.tech.as_str()).unwrap_or("").into()),
        ("ConnectionType", s.user.connection_type.as_str().into()),
        (
            "AllowedBearers",
            strings(
                s.user
                    .allowed_bearers
                    .iter()
                    .map(|t| t.as_str().to_string()),
            ),
        ),
        (
            "AllowedInterface",
            s.user
                .allowed_interface
                .clone()
                .unwrap_or_else(|| "*".to_string())
                .into(),
        ),
        (
            "ContextIdentifier",
            s.user.context_identifier.clone().into(),
        ),
        ("SourceIPRule", s.user.source_ip_rule.into()),
        (
            "MultipathRoutedServices",
            strings(v.mpath.iter().map(|x| x.id.to_string())),
        ),
        (
            "FlowSelectors",
            strings(s.flows.iter().map(|f| f.to_string())),
        ),
    ]
}

/// One `Usage` dictionary of `net.connman.Counter` (ConnMan's keys and order).
pub fn usage(
    stats: &crate::core::counter::Usage,
    only_changed: Option<&crate::core::counter::Usage>,
) -> Props {
    let fields = stats.fields();
    let before = only_changed.map(|b| b.fields());
    fields
        .iter()
        .enumerate()
        .filter(|(i, (name, v))| *name == "Time" || before.as_ref().is_none_or(|b| b[*i].1 != *v))
        .map(|(_, (name, v))| (*name, Prop::U32(*v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use zbus::zvariant::serialized::Context;

    #[test]
    fn props_serialise_as_a_sv_in_the_given_order() {
        let p: Props = vec![
            ("Zeta", true.into()),
            ("Alpha", Prop::Byte(7)),
            (
                "Nested",
                Prop::Dict(vec![
                    ("Method", "dhcp".into()),
                    ("Address", "1.2.3.4".into()),
                ]),
            ),
            ("List", Prop::Strs(vec!["a".into(), "b".into()])),
        ];
        assert_eq!(<Dict<'_> as Type>::SIGNATURE.to_string(), "a{sv}");
        let ctxt = Context::new_dbus(zbus::zvariant::LE, 0);
        let data = zbus::zvariant::to_bytes(ctxt, &Dict(&p)).unwrap();
        // The keys appear on the wire in the given order, nested ones too.
        let bytes: &[u8] = &data;
        let pos = |needle: &str| {
            bytes
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap()
        };
        assert!(pos("Zeta") < pos("Alpha"));
        assert!(pos("Alpha") < pos("Nested"));
        assert!(pos("Method") < pos("Address"));
        // And it decodes as an ordinary a{sv} with the right values.
        let (back, _): (HashMap<String, OwnedValue>, _) = data.deserialize().unwrap();
        assert_eq!(back.len(), 4);
        assert!(bool::try_from(&back["Zeta"]).unwrap());
        assert_eq!(u8::try_from(&back["Alpha"]).unwrap(), 7);
        let list: Vec<String> = back["List"].try_clone().unwrap().try_into().unwrap();
        assert_eq!(list, vec!["a", "b"]);
        let nested: HashMap<String, OwnedValue> =
            back["Nested"].try_clone().unwrap().try_into().unwrap();
        assert_eq!(
            String::try_from(nested["Address"].try_clone().unwrap()).unwrap(),
            "1.2.3.4"
        );
    }
}
