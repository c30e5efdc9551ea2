//! Devices: the kernel interfaces pathman manages, and what happens when
//! one appears, changes or goes. Which services a device offers is its
//! technology's business ([`crate::core::tech`]).

use super::{Action, ConfigSource, Model, Service};
use crate::caps;
use crate::core::tech;
use crate::core::types::{IfName, Technology};

/// A kernel interface pathman manages.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub ifindex: u32,
    pub name: IfName,
    pub mac: [u8; 6],
    pub tech: Technology,
    /// IFF_UP as last seen.
    pub up: bool,
    /// IFF_LOWER_UP as last seen.
    pub carrier: bool,
    /// The link's MTU (`Service.Ethernet.MTU`).
    pub mtu: u32,
    /// A LAN port (board config `Role=lan`): never an uplink, bridged when
    /// ethernet is tethered.
    pub lan: bool,
    /// The bridge (or other master) it is a port of, as last seen.
    pub master: Option<u32>,
}

/// A link as the kernel reports it, reduced to what the model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSeen {
    pub ifindex: u32,
    pub name: IfName,
    pub mac: [u8; 6],
    pub tech: Technology,
    pub up: bool,
    pub carrier: bool,
    pub mtu: u32,
    /// Board config `Role=lan`.
    pub lan: bool,
    /// IFLA_MASTER.
    pub master: Option<u32>,
}

impl Model {
    // ----- kernel events -------------------------------------------------

    /// A managed link appeared or changed.
    pub fn link_changed(&mut self, link: LinkSeen, configs: &mut dyn ConfigSource) {
        let powered = self.tech_powered(link.tech) && !self.offline;
        match self.devices.iter_mut().find(|d| d.ifindex == link.ifindex) {
            Some(dev) => {
                dev.up = link.up;
                dev.carrier = link.carrier;
                dev.name = link.name.clone();
                dev.tech = link.tech;
                dev.mtu = link.mtu;
                dev.lan = link.lan;
                dev.master = link.master;
            }
            None => {
                let dev = Device {
                    ifindex: link.ifindex,
                    name: link.name.clone(),
                    mac: link.mac,
                    tech: link.tech,
                    up: link.up,
                    carrier: link.carrier,
                    mtu: link.mtu,
                    lan: link.lan,
                    master: link.master,
                };
                if self.devices.push(dev).is_err() {
                    log::warn!(
                        "{}: ignored, more than {} devices (caps::MAX_DEVICES)",
                        link.name,
                        caps::MAX_DEVICES
                    );
                    return;
                }
                log::info!("{}: new {} device", link.name, link.tech);
            }
        }
        if powered && !link.up {
            self.actions.push(Action::SetLinkUp {
                ifindex: link.ifindex,
                up: true,
            });
        }
        // A radio's services are its networks, made from wpa_supplicant's
        // view (model::wifi), and a modem link's its contexts, from oFono's
        // (model::cellular): not from its carrier.
        if matches!(link.tech, Technology::Wifi | Technology::Cellular) {
            return;
        }
        let has_service = self.service_idx_by_ifindex(link.ifindex).is_some();
        // A LAN port or a tethered gadget serves clients: it is no uplink.
        if link.lan || self.is_tethered_port(link.ifindex) {
            if has_service {
                self.remove_service_of(link.ifindex);
            }
            return;
        }
        match tech::offered(&link) {
            Some(id) if powered && !has_service => self.add_service(&link, id, configs),
            None if has_service => {
                log::info!("{}: carrier lost", link.name);
                self.remove_service_of(link.ifindex);
            }
            _ => {}
        }
    }

    /// A managed link disappeared.
    pub fn link_removed(&mut self, ifindex: u32) {
        self.wifi_radio_lost(ifindex);
        self.cellular_link_gone(ifindex);
        if self.service_idx_by_ifindex(ifindex).is_some() {
            self.remove_service_of(ifindex);
        }
        if let Some(pos) = self.devices.iter().position(|d| d.ifindex == ifindex) {
            let dev = self.devices.remove(pos);
            log::info!("{}: device removed", dev.name);
        }
    }

    fn add_service(
        &mut self,
        link: &LinkSeen,
        id: crate::core::types::ServiceId,
        configs: &mut dyn ConfigSource,
    ) {
        let config = configs.load(&id);
        let resume = configs.lease(&id, link.ifindex);
        let mut svc = Service::idle(
            id.clone(),
            link.tech,
            link.ifindex,
            link.name.clone(),
            config,
        );
        svc.resume = resume;
        if self.add_service_capped(svc).is_err() {
            log::warn!(
                "{}: no service created, more than {} services (caps::MAX_SERVICES)",
                link.name,
                caps::MAX_SERVICES
            );
            return;
        }
        log::info!("{}: carrier, service {}", link.name, id);
        self.auto_connect();
    }

    pub(super) fn remove_service_of(&mut self, ifindex: u32) {
        let Some(idx) = self.service_idx_by_ifindex(ifindex) else {
            return;
        };
        let svc = self.services.remove(idx);
        log::info!("{}: service {} gone", svc.ifname, svc.id);
    }
}
