//! Tethering in the model: the per-technology switches and settings, the
//! bridge and block in use, and what the device sees that the block must not
//! collide with. The kernel side is planned in [`crate::core::tether`].

use super::{Action, Model, RequestError};
use crate::core::tether::{self, Block, TetherSettings};
use crate::core::types::{Ipv4Net, Technology};

/// Tethering's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TetherState {
    /// The bridge's name (main.conf `TetheringBridge`, default `tether`).
    pub bridge_name: String,
    /// Per technology, indexed like [`Technology::ALL`].
    pub settings: [TetherSettings; 4],
    /// The bridge's ifindex, while the kernel has it.
    pub bridge: Option<u32>,
    /// The block in use while something is tethered.
    pub block: Option<Block>,
    /// The last block used: the walk starts there (a block moved away from
    /// is not taken again at once).
    pub last_block: Option<Block>,
    /// IPv4 networks on interfaces whose addresses pathman did not install
    /// (other daemons', the user's), by ifindex.
    pub foreign: Vec<(u32, Ipv4Net)>,
    /// MACs of the DHCP server's bound clients (`GetTetheringClients`).
    pub clients: Vec<[u8; 6]>,
    /// The lease time clients get (main.conf `TetheringLeaseTime`).
    pub lease_secs: u32,
    /// Whether the NATed flows get a flowtable (main.conf `TetheringFastPath`).
    pub fast_path: bool,
    /// The radio whose access point runs, with the settings it runs with
    /// (wpa_supplicant said so): bridged while those are still the wanted ones.
    pub ap_up: Option<(u32, tether::ApSpec)>,
    /// Radios whose supplicant said they cannot be an access point.
    pub no_ap_mode: Vec<u32>,
    /// Per technology (indexed like [`Technology::ALL`]): main.conf's
    /// `TetheringTechnologies` lets it tether.
    pub allowed: [bool; 4],
}

impl Default for TetherState {
    fn default() -> Self {
        TetherState {
            bridge_name: "tether".into(),
            settings: Default::default(),
            bridge: None,
            block: None,
            last_block: None,
            foreign: Vec::new(),
            clients: Vec::new(),
            lease_secs: 86_400,
            fast_path: true,
            ap_up: None,
            no_ap_mode: Vec::new(),
            allowed: [true; 4],
        }
    }
}

/// How many foreign networks are remembered (a device has a handful).
const MAX_FOREIGN: usize = 64;

fn index(tech: Technology) -> usize {
    Technology::ALL.iter().position(|t| *t == tech).unwrap_or(0)
}

impl Model {
    /// A technology's tethering settings.
    pub fn tether_settings(&self, tech: Technology) -> &TetherSettings {
        &self.tether.settings[index(tech)]
    }

    /// Settings loaded at start (the global settings file).
    /// Tethering of a technology that is off (or offline mode) stays off.
    pub fn load_tether_settings(&mut self, tech: Technology, mut s: TetherSettings) {
        if s.enabled && (!self.tech_powered(tech) || self.offline) {
            log::info!("tethering {tech}: off, the technology is powered off");
            s.enabled = false;
        }
        if s.enabled && !self.tether_allowed(tech) {
            log::info!("tethering {tech}: off, main.conf TetheringTechnologies leaves it out");
            s.enabled = false;
        }
        self.tether.settings[index(tech)] = s;
        self.tether_update();
    }

    /// Whether main.conf's `TetheringTechnologies` lets `tech` tether.
    pub fn tether_allowed(&self, tech: Technology) -> bool {
        self.tether.allowed[index(tech)]
    }

    /// main.conf's `TetheringTechnologies`: only these may tether.
    pub fn allow_tethering(&mut self, techs: &[Technology]) {
        for (i, t) in Technology::ALL.iter().enumerate() {
            self.tether.allowed[i] = techs.contains(t);
        }
    }

    /// Technology.SetProperty("Tethering").
    pub fn set_tethering(&mut self, tech: Technology, on: bool) -> Result<(), RequestError> {
        if self.tether_settings(tech).enabled == on {
            return Err(if on {
                RequestError::AlreadyEnabled
            } else {
                RequestError::AlreadyDisabled
            });
        }
        if on {
            tether::can_tether(tech).map_err(|e| RequestError::NotSupported(e.into()))?;
            // ConnMan: a technology left out of TetheringTechnologies is EOPNOTSUPP.
            if !self.tether_allowed(tech) {
                return Err(RequestError::NotSupported(format!(
                    "{tech}: tethering is not allowed by main.conf TetheringTechnologies"
                )));
            }
            // ConnMan refuses tethering a technology that is off (EACCES).
            if !self.tech_powered(tech) || self.offline {
                return Err(RequestError::PermissionDenied(format!(
                    "{tech} is powered off{}: power it on first",
                    if self.offline { " (offline mode)" } else { "" }
                )));
            }
            if tech == Technology::Wifi && self.tether_settings(tech).identifier.is_none() {
                return Err(RequestError::InvalidArguments(
                    "wifi: set TetheringIdentifier (the access point's SSID) first".into(),
                ));
            }
            let radios = self.devices.iter().filter(|d| d.tech == Technology::Wifi);
            if tech == Technology::Wifi
                && radios.clone().next().is_some()
                && radios
                    .clone()
                    .all(|d| self.tether.no_ap_mode.contains(&d.ifindex))
            {
                // ConnMan: no radio with AP mode is EOPNOTSUPP.
                return Err(RequestError::NotSupported(
                    "wifi: no radio can be an access point (wpa_supplicant's Capabilities.Modes has no \"ap\")".into(),
                ));
            }
            if self.tether_candidates(tech).next().is_none() {
                let what = match tech {
                    Technology::Ethernet => "no LAN port (board config Role=lan)",
                    _ => "no device",
                };
                return Err(RequestError::NoCarrier(format!("{tech}: {what} to tether")));
            }
        }
        self.tether.settings[index(tech)].enabled = on;
        log::info!("tethering {tech}: {}", if on { "on" } else { "off" });
        self.actions.push(Action::SaveGlobal);
        if on {
            // A tethered gadget stops being an uplink at once.
            let ports: Vec<u32> = self.tether_candidates(tech).collect();
            for ifindex in ports {
                self.remove_service_of(ifindex);
            }
        }
        self.tether_update();
        if !on {
            // A gadget given back is an uplink again when it has carrier:
            // the links are read afresh and offer their services.
            self.actions.push(Action::Resync);
        }
        Ok(())
    }

    /// Technology.SetProperty("TetheringIdentifier" / "TetheringPassphrase" / "TetheringFreq").
    pub fn set_tether_ap(
        &mut self,
        tech: Technology,
        identifier: Option<String>,
        passphrase: Option<String>,
        freq: Option<i32>,
    ) -> Result<(), RequestError> {
        if tech != Technology::Wifi {
            return Err(RequestError::NotSupported(format!(
                "{tech} has no access point settings"
            )));
        }
        if let Some(id) = &identifier {
            tether::check_identifier(id).map_err(RequestError::InvalidArguments)?;
        }
        if let Some(p) = &passphrase {
            tether::check_passphrase(p).map_err(RequestError::PassphraseRequired)?;
        }
        let freq = freq
            .map(tether::check_freq)
            .transpose()
            .map_err(RequestError::InvalidArguments)?;
        let s = &mut self.tether.settings[index(tech)];
        if let Some(id) = identifier {
            s.identifier = Some(id);
        }
        if let Some(p) = passphrase {
            s.passphrase = Some(crate::core::types::Secret(p));
        }
        if let Some(f) = freq {
            s.freq = f;
        }
        self.actions.push(Action::SaveGlobal);
        Ok(())
    }

    /// Devices a technology's tethering would bridge: LAN ports for
    /// ethernet, every gadget link for gadget, the first radio for wifi
    /// (one access point; a second radio stays an uplink).
    fn tether_candidates(&self, tech: Technology) -> impl Iterator<Item = u32> + '_ {
        let radio = self.ap_radio();
        self.devices
            .iter()
            .filter(move |d| {
                d.tech == tech
                    && match tech {
                        Technology::Ethernet => d.lan,
                        Technology::Gadget => true,
                        Technology::Wifi => Some(d.ifindex) == radio,
                        Technology::Cellular => false,
                    }
            })
            .map(|d| d.ifindex)
    }

    /// The radio an access point would run on: the lowest-numbered one that can (or has
    /// not said it cannot).
    fn ap_radio(&self) -> Option<u32> {
        self.devices
            .iter()
            .filter(|d| d.tech == Technology::Wifi && !self.tether.no_ap_mode.contains(&d.ifindex))
            .map(|d| d.ifindex)
            .min()
    }

    /// Records whether the radio on `ifindex` can be an access point (the supplicant's
    /// `Capabilities.Modes`).
    pub(super) fn note_ap_mode(&mut self, ifindex: u32, ap_mode: Option<bool>) {
        // Radios that went (a replugged dongle comes back with a new ifindex) are forgotten,
        // so the list never outgrows the radios there are.
        let devices = &self.devices;
        self.tether.no_ap_mode.retain(|i| {
            devices
                .iter()
                .any(|d| d.ifindex == *i && d.tech == Technology::Wifi)
        });
        let listed = self.tether.no_ap_mode.contains(&ifindex);
        match ap_mode {
            Some(false) if !listed => self.tether.no_ap_mode.push(ifindex),
            Some(true) if listed => self.tether.no_ap_mode.retain(|i| *i != ifindex),
            _ => {}
        }
    }

    /// Whether the device on `ifindex` is (to be) a port of the bridge. A
    /// radio is one only while its access point runs: a station cannot be
    /// bridged.
    pub fn is_tethered_port(&self, ifindex: u32) -> bool {
        self.devices.iter().any(|d| {
            d.ifindex == ifindex
                && self.tether_settings(d.tech).enabled
                && match d.tech {
                    Technology::Ethernet => d.lan,
                    Technology::Gadget => true,
                    Technology::Wifi => self.tether.ap_up.as_ref().is_some_and(|(i, up)| {
                        *i == ifindex
                            && self
                                .tether_ap()
                                .is_some_and(|(radio, want)| radio == ifindex && want == *up)
                    }),
                    Technology::Cellular => false,
                }
        })
    }

    /// The access point tethering wants now: its radio and settings.
    pub fn tether_ap(&self) -> Option<(u32, tether::ApSpec)> {
        let s = self.tether_settings(Technology::Wifi);
        if !s.enabled || !self.tech_powered(Technology::Wifi) || self.offline {
            return None;
        }
        Some((
            self.ap_radio()?,
            tether::ApSpec {
                ssid: s.identifier.clone()?,
                passphrase: s.passphrase.clone(),
                freq: if s.freq == 0 {
                    tether::DEFAULT_AP_FREQ
                } else {
                    s.freq
                },
                bridge: self.tether.bridge_name.clone(),
            },
        ))
    }

    /// Whether tethering needs the bridge, a block and NAT: something is
    /// bridged, or an access point is starting (its supplicant interface
    /// needs the bridge first).
    pub fn tether_wanted(&self) -> bool {
        self.tether_ap().is_some() || !self.tethered_ports().is_empty()
    }

    /// wpa_supplicant's access point on `ifindex` runs with `up` (or
    /// stopped: None).
    pub fn tether_ap_state(&mut self, ifindex: u32, up: Option<tether::ApSpec>) {
        let was = self.tether.ap_up.take();
        self.tether.ap_up = match up {
            Some(spec) => Some((ifindex, spec)),
            None => was.clone().filter(|(i, _)| *i != ifindex),
        };
        if was != self.tether.ap_up {
            match &self.tether.ap_up {
                Some((_, spec)) => log::info!(
                    "tethering wifi: access point {:?} up on {} MHz",
                    spec.ssid,
                    spec.freq
                ),
                None => log::info!("tethering wifi: access point down"),
            }
        }
        self.tether_update();
    }

    /// Every device that must be a port of the bridge now (powered).
    pub fn tethered_ports(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .devices
            .iter()
            .filter(|d| self.tech_powered(d.tech) && !self.offline)
            .map(|d| d.ifindex)
            .filter(|i| self.is_tethered_port(*i))
            .collect();
        crate::sort::sort(&mut out);
        out
    }

    /// The bridge appeared (Some) or went (None).
    pub fn tether_bridge_seen(&mut self, ifindex: Option<u32>) {
        self.tether.bridge = ifindex;
    }

    /// An IPv4 address pathman did not install appeared or went.
    pub fn foreign_address(&mut self, ifindex: u32, net: Ipv4Net, present: bool) {
        let f = &mut self.tether.foreign;
        f.retain(|(i, n)| !(*i == ifindex && n.addr == net.addr));
        if present && net.prefix_len > 0 && f.len() < MAX_FOREIGN {
            f.push((ifindex, net));
        }
        self.tether_update();
    }

    /// A link went, and with it its addresses.
    pub fn foreign_link_gone(&mut self, ifindex: u32) {
        self.tether.foreign.retain(|(i, _)| *i != ifindex);
    }

    /// The DHCP server's bound clients changed.
    pub fn tether_clients(&mut self, mut macs: Vec<[u8; 6]>) {
        crate::sort::sort(&mut macs);
        macs.dedup();
        self.tether.clients = macs;
    }

    /// Every IPv4 network the block must stay clear of: the uplinks'
    /// addresses and gateways and every foreign address, except the
    /// bridge's own.
    fn used_networks(&self) -> Vec<Ipv4Net> {
        let bridge = self.tether.bridge;
        let mut used: Vec<Ipv4Net> = self
            .tether
            .foreign
            .iter()
            .filter(|(i, _)| Some(*i) != bridge)
            .map(|(_, n)| *n)
            .collect();
        for s in &self.services {
            if let Some(a) = &s.ipv4 {
                used.push(a.net);
                if let Some(gw) = a.gateway {
                    used.push(Ipv4Net {
                        addr: gw,
                        prefix_len: 32,
                    });
                }
            }
        }
        used
    }

    /// Chooses, keeps or moves the block: called after anything that can
    /// change what is tethered or what the device's networks are.
    pub fn tether_update(&mut self) {
        if !self.tether_wanted() {
            if let Some(b) = self.tether.block.take() {
                log::info!("tethering: {b} released");
                self.tether.clients.clear();
            }
            return;
        }
        let used = self.used_networks();
        if let Some(b) = self.tether.block {
            let Some(hit) = used.iter().find(|n| b.overlaps(**n)) else {
                return;
            };
            log::warn!(
                "tethering: {}/{} is now in the tether block {b}; moving tethering to a free block (clients renew into it)",
                hit.addr,
                hit.prefix_len
            );
            self.tether.block = None;
        }
        let start = self.tether.last_block;
        match tether::choose_block(&used, start) {
            Some(b) => {
                log::info!("tethering: clients get {b}, the bridge {}", b.gateway());
                self.tether.block = Some(b);
                self.tether.last_block = Some(b);
            }
            None => log::warn!("tethering: every private /24 is in use; nothing to give clients"),
        }
    }
}
