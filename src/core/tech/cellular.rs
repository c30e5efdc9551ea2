//! Cellular: one service per `internet` context (with an access point name)
//! of a modem oFono manages, named as ConnMan names them
//! (`cellular_<imsi>_context<N>`). Pure: oFono's view of a modem comes in
//! as a [`ModemView`] (decoded by `dbus::ofono`); the networks it offers
//! come out. No D-Bus, no clock.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::caps;
use crate::core::types::{IfName, Ipv4Net, ServiceId};

/// The SIM as `org.ofono.SimManager` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sim {
    /// No SimManager yet, or not read yet.
    #[default]
    Unknown,
    Absent,
    /// The SIM waits for a code (`PinRequired`: pin, puk, ...): reported,
    /// never answered by pathman.
    Locked(String),
    Ready,
}

/// `org.ofono.NetworkRegistration.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegStatus {
    #[default]
    Unregistered,
    Registered,
    Searching,
    Denied,
    Unknown,
    Roaming,
}

impl RegStatus {
    pub fn parse(s: &str) -> RegStatus {
        match s {
            "registered" => RegStatus::Registered,
            "searching" => RegStatus::Searching,
            "denied" => RegStatus::Denied,
            "roaming" => RegStatus::Roaming,
            "unregistered" => RegStatus::Unregistered,
            _ => RegStatus::Unknown,
        }
    }

    /// On a network that carries data (home or visited).
    pub fn registered(self) -> bool {
        matches!(self, RegStatus::Registered | RegStatus::Roaming)
    }
}

/// `org.ofono.NetworkRegistration`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetReg {
    pub status: RegStatus,
    /// The operator's name (the service's Name).
    pub name: String,
    /// 0–100.
    pub strength: u8,
}

/// IPv4 as a context's `Settings` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4Method {
    /// pathman's DHCP client runs on the interface.
    Dhcp,
    /// The modem gave the address (ConnMan's `fixed`).
    Static {
        net: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        dns: heapless::Vec<Ipv4Addr, { caps::MAX_SERVERS }>,
    },
}

/// A context's active IPv4 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSettings {
    pub interface: IfName,
    pub method: Ipv4Method,
}

/// A context's active `IPv6.Settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Settings {
    /// The data interface; None: the one `Settings` names.
    pub interface: Option<IfName>,
    /// The global (or ULA) address and prefix length the network gave,
    /// installed by pathman. None when the modem gives none or only a
    /// link-local one: the kernel makes its own, and router advertisements
    /// on the link give the rest.
    pub address: Option<(Ipv6Addr, u8)>,
    pub gateway: Option<Ipv6Addr>,
    pub dns: heapless::Vec<Ipv6Addr, { caps::MAX_SERVERS }>,
}

/// One `org.ofono.ConnectionContext`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub path: String,
    /// `Type`: only `internet` contexts make services.
    pub kind: String,
    pub apn: String,
    pub active: bool,
    /// `Settings` as decoded, or why they cannot be used.
    pub settings: Option<Result<IpSettings, String>>,
    /// `IPv6.Settings` as decoded, or why they cannot be used.
    pub ipv6: Option<Result<Ipv6Settings, String>>,
}

/// What oFono says of one modem.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModemView {
    pub path: String,
    /// `Type` is `hardware` (others — hfp, sap, test — are not uplinks).
    pub hardware: bool,
    pub powered: bool,
    pub online: bool,
    /// The interfaces the modem has now (`Interfaces`).
    pub interfaces: Vec<String>,
    /// `SubscriberIdentity`.
    pub imsi: Option<String>,
    pub sim: Sim,
    pub netreg: Option<NetReg>,
    /// `org.ofono.ConnectionManager` is there.
    pub cm: bool,
    pub attached: bool,
    pub cm_powered: bool,
    pub roaming_allowed: bool,
    pub contexts: Vec<Context>,
}

impl ModemView {
    pub fn has(&self, iface: &str) -> bool {
        self.interfaces.iter().any(|i| i == iface)
    }
}

/// A network the modem offers now: one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: ServiceId,
    /// The context's object path.
    pub context: String,
    pub name: String,
    pub strength: u8,
    pub roaming: bool,
}

/// An IMSI: 6 to 15 digits.
pub fn valid_imsi(s: &str) -> bool {
    (6..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// The `N` of a context object path ending in `/context<N>`.
pub fn context_number(path: &str) -> Option<u32> {
    let last = path.rsplit('/').next()?;
    let n = last.strip_prefix("context")?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `cellular_<imsi>_context<N>`.
pub fn service_id(imsi: &str, context: u32) -> Option<ServiceId> {
    if !valid_imsi(imsi) {
        return None;
    }
    let mut id = ServiceId::new();
    write!(id, "cellular_{imsi}_context{context}").ok()?;
    Some(id)
}

/// The networks of a modem: its `internet` contexts with an access point
/// name, while it is online, attached and registered, and its SIM is known.
pub fn networks(view: &ModemView) -> Vec<Network> {
    let (Some(imsi), Some(reg)) = (view.imsi.as_deref(), view.netreg.as_ref()) else {
        return Vec::new();
    };
    if !view.hardware || !view.online || !view.attached || !reg.status.registered() {
        return Vec::new();
    }
    view.contexts
        .iter()
        .filter(|c| c.kind == "internet" && !c.apn.is_empty())
        .filter_map(|c| {
            let id = service_id(imsi, context_number(&c.path)?)?;
            Some(Network {
                id,
                context: c.path.clone(),
                name: reg.name.clone(),
                strength: reg.strength,
                roaming: reg.status == RegStatus::Roaming,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn modem() -> ModemView {
        ModemView {
            path: "/phonesim".into(),
            hardware: true,
            powered: true,
            online: true,
            imsi: Some("001010123456789".into()),
            sim: Sim::Ready,
            netreg: Some(NetReg {
                status: RegStatus::Registered,
                name: "CellSpike".into(),
                strength: 77,
            }),
            cm: true,
            attached: true,
            contexts: vec![Context {
                path: "/phonesim/context1".into(),
                kind: "internet".into(),
                apn: "internet".into(),
                ..Context::default()
            }],
            ..ModemView::default()
        }
    }

    #[test]
    fn an_attached_modem_offers_its_internet_context() {
        let nets = networks(&modem());
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].id.as_str(), "cellular_001010123456789_context1");
        assert_eq!(nets[0].name, "CellSpike");
        assert_eq!(nets[0].strength, 77);
        assert!(!nets[0].roaming);
    }

    #[test]
    fn no_network_without_attach_registration_apn_or_imsi() {
        let mut m = modem();
        m.attached = false;
        assert!(networks(&m).is_empty());
        let mut m = modem();
        m.netreg.as_mut().unwrap().status = RegStatus::Denied;
        assert!(networks(&m).is_empty());
        let mut m = modem();
        m.contexts[0].apn.clear();
        assert!(networks(&m).is_empty());
        let mut m = modem();
        m.contexts[0].kind = "mms".into();
        assert!(networks(&m).is_empty());
        let mut m = modem();
        m.imsi = None;
        assert!(networks(&m).is_empty());
        let mut m = modem();
        m.hardware = false;
        assert!(networks(&m).is_empty());
        let mut m = modem();
        m.netreg.as_mut().unwrap().status = RegStatus::Roaming;
        assert!(networks(&m)[0].roaming);
    }

    #[test]
    fn ten_contexts_make_ten_networks() {
        let mut m = modem();
        m.contexts = (1..=10)
            .map(|n| Context {
                path: format!("/phonesim/context{n}"),
                kind: "internet".into(),
                apn: format!("apn{n}"),
                ..Context::default()
            })
            .collect();
        // The model caps them (and says so).
        assert_eq!(networks(&m).len(), 10);
    }

    #[test]
    fn context_numbers_and_identifiers() {
        assert_eq!(context_number("/phonesim/context12"), Some(12));
        assert_eq!(context_number("/phonesim/context"), None);
        assert_eq!(context_number("/phonesim/contextx"), None);
        assert_eq!(context_number("/phonesim/ctx1"), None);
        assert!(service_id("12345", 1).is_none());
        assert!(service_id("00101012345678a", 1).is_none());
        assert!(service_id("0010101234567890", 1).is_none());
    }

    proptest! {
        #[test]
        fn any_path_and_imsi_give_a_valid_identifier_or_none(path in ".{0,80}", imsi in ".{0,20}") {
            if let (Some(n), Some(id)) = (context_number(&path), service_id(&imsi, context_number(&path).unwrap_or(0))) {
                prop_assert!(id.starts_with("cellular_"));
                let tail = format!("_context{n}");
                prop_assert!(id.ends_with(&tail));
                prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            }
        }
    }
}
