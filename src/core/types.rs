//! Plain domain values shared by the core, the configuration files and the
//! D-Bus layer. No I/O here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::caps;

/// Bounded string types used across the model.
pub type IfName = heapless::String<{ caps::MAX_IFNAME_LEN }>;
/// A host/domain name.
pub type Name = heapless::String<{ caps::MAX_NAME_LEN }>;
/// A short list of server addresses (nameservers, timeservers).
pub type ServerList = heapless::Vec<IpAddr, { caps::MAX_SERVERS }>;
/// A short list of search domains.
pub type DomainList = heapless::Vec<Name, { caps::MAX_SERVERS }>;
/// A short list of timeservers (addresses or names).
pub type TimeserverList = heapless::Vec<Timeserver, { caps::MAX_SERVERS }>;

/// A timeserver as a user configures it: an address, or a host name (ConnMan
/// accepts both; a name is resolved when the time is fetched). Build one
/// from outside input with [`crate::core::validate::parse_timeserver`].
// Inline rather than boxed: lists hold at most MAX_SERVERS of them, and a
// name kept in place costs no allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timeserver {
    Addr(IpAddr),
    Name(Name),
}

impl fmt::Display for Timeserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeserver::Addr(a) => write!(f, "{a}"),
            Timeserver::Name(n) => f.write_str(n),
        }
    }
}

impl From<IpAddr> for Timeserver {
    fn from(a: IpAddr) -> Timeserver {
        Timeserver::Addr(a)
    }
}

/// A kind of uplink. Order of the variants is ConnMan's technology rank for
/// the default route (ethernet > wifi > cellular > gadget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Technology {
    Ethernet,
    Wifi,
    Cellular,
    Gadget,
}

impl Technology {
    /// All technologies, in rank order.
    pub const ALL: [Technology; 4] = [
        Technology::Ethernet,
        Technology::Wifi,
        Technology::Cellular,
        Technology::Gadget,
    ];

    /// The D-Bus `Type` string (also the object path element).
    pub fn as_str(self) -> &'static str {
        match self {
            Technology::Ethernet => "ethernet",
            Technology::Wifi => "wifi",
            Technology::Cellular => "cellular",
            Technology::Gadget => "gadget",
        }
    }

    /// The human name ConnMan shows (`Name` property, settings group).
    pub fn display_name(self) -> &'static str {
        match self {
            Technology::Ethernet => "Wired",
            Technology::Wifi => "WiFi",
            Technology::Cellular => "Cellular",
            Technology::Gadget => "Gadget",
        }
    }

    /// The technology of a kernel interface from its sysfs DEVTYPE (SPEC §2):
    /// none → ethernet, `gadget` → gadget, `wlan` → wifi, `wwan` →
    /// cellular; other DEVTYPEs (bridge, vlan, …) are not uplinks.
    pub fn from_devtype(devtype: Option<&str>) -> Option<Technology> {
        match devtype {
            None => Some(Technology::Ethernet),
            Some("gadget") => Some(Technology::Gadget),
            Some("wlan") => Some(Technology::Wifi),
            Some("wwan") => Some(Technology::Cellular),
            Some(_) => None,
        }
    }

    /// Parses a D-Bus `Type` string.
    pub fn parse(s: &str) -> Option<Technology> {
        Technology::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Technology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service identifier such as `ethernet_025048000001_cable`.
///
/// Bounded by [`caps::MAX_SERVICE_ID_LEN`]: ConnMan's longest identifiers
/// are WiFi's, `wifi_<mac>_<ssid as up to 64 hex digits>_managed_ieee8021x`
/// (100 characters).
pub type ServiceId = heapless::String<{ caps::MAX_SERVICE_ID_LEN }>;

/// Service states, as ConnMan names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Idle,
    Association,
    Configuration,
    Ready,
    Online,
    Disconnect,
    Failure,
}

impl ServiceState {
    /// The D-Bus string.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Idle => "idle",
            ServiceState::Association => "association",
            ServiceState::Configuration => "configuration",
            ServiceState::Ready => "ready",
            ServiceState::Online => "online",
            ServiceState::Disconnect => "disconnect",
            ServiceState::Failure => "failure",
        }
    }

    /// Ready or online.
    pub fn is_connected(self) -> bool {
        matches!(self, ServiceState::Ready | ServiceState::Online)
    }
}

/// An IPv4 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Net {
    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & prefix_to_mask(self.prefix_len))
    }
}

/// `24` → `0xffffff00`.
pub fn prefix_to_mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

/// `255.255.255.0` → `Some(24)`; `None` for a non-contiguous mask.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// How a service gets its IPv4 address (`IPv4.Configuration` Method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Method {
    /// Native DHCP client; IPv4LL while no lease arrives.
    Dhcp,
    /// Fixed address, optional gateway.
    Manual {
        addr: Ipv4Net,
        gateway: Option<Ipv4Addr>,
    },
    /// No IPv4.
    Off,
}

impl Ipv4Method {
    /// The D-Bus `Method` string of the configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            Ipv4Method::Dhcp => "dhcp",
            Ipv4Method::Manual { .. } => "manual",
            Ipv4Method::Off => "off",
        }
    }
}

/// How a service gets IPv6 (`IPv6.Configuration` Method). Only kernel SLAAC
/// (`auto`) and `off` for now; manual IPv6 comes with DHCPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Method {
    Auto,
    Off,
}

impl Ipv6Method {
    /// The D-Bus `Method` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Ipv6Method::Auto => "auto",
            Ipv6Method::Off => "off",
        }
    }
}

/// MPTCP endpoint use of a service's addresses (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpLink {
    On,
    Backup,
    Off,
}

impl MptcpLink {
    /// The D-Bus / settings string.
    pub fn as_str(self) -> &'static str {
        match self {
            MptcpLink::On => "on",
            MptcpLink::Backup => "backup",
            MptcpLink::Off => "off",
        }
    }

    /// Parses `on`, `backup`, `off`.
    pub fn parse(s: &str) -> Option<MptcpLink> {
        match s {
            "on" => Some(MptcpLink::On),
            "backup" => Some(MptcpLink::Backup),
            "off" => Some(MptcpLink::Off),
            _ => None,
        }
    }
}

/// Everything about a service that the user configures and that is persisted
/// in `<state-dir>/<service-id>/settings`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub auto_connect: bool,
    pub favorite: bool,
    pub ipv4: Ipv4Method,
    pub ipv6: Ipv6Method,
    pub nameservers: ServerList,
    pub timeservers: TimeserverList,
    pub domains: DomainList,
    /// `None` = follow the daemon-wide default (`-M`, main.conf).
    pub multipath_routing: Option<bool>,
    pub mptcp_link: MptcpLink,
    /// Last DHCP address, for INIT-REBOOT.
    pub dhcp_last_address: Option<Ipv4Addr>,
    /// WiFi: the passphrase (WPA) or key (WEP) that last connected. Saved
    /// only after a successful connection; never logged.
    pub passphrase: Option<Secret>,
}

/// A secret (a WiFi passphrase): its `Debug` never shows it, so no log line
/// or state dump can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            auto_connect: true,
            favorite: true,
            ipv4: Ipv4Method::Dhcp,
            ipv6: Ipv6Method::Auto,
            nameservers: ServerList::new(),
            timeservers: TimeserverList::new(),
            domains: DomainList::new(),
            multipath_routing: None,
            mptcp_link: MptcpLink::On,
            dhcp_last_address: None,
            passphrase: None,
        }
    }
}

/// A MAC as `aa:bb:cc:dd:ee:ff` (logs, the dump, the leases file).
pub fn mac_text(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devtypes() {
        assert_eq!(Technology::from_devtype(None), Some(Technology::Ethernet));
        assert_eq!(
            Technology::from_devtype(Some("gadget")),
            Some(Technology::Gadget)
        );
        assert_eq!(
            Technology::from_devtype(Some("wlan")),
            Some(Technology::Wifi)
        );
        assert_eq!(
            Technology::from_devtype(Some("wwan")),
            Some(Technology::Cellular)
        );
        assert_eq!(Technology::from_devtype(Some("bridge")), None);
    }

    #[test]
    fn masks() {
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(prefix_to_mask(24), 0xffff_ff00);
        assert_eq!(prefix_to_mask(0), 0);
    }
}
