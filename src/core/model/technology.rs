//! Technologies: the per-kind switches (`Technology.Powered`), offline
//! mode, and the aggregate states ConnMan reports.

use super::{Action, Model, RequestError};
use crate::core::types::{ServiceState, Technology};

/// A technology's switch and derived state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TechState {
    pub tech: Technology,
    pub powered: bool,
}

impl Model {
    /// Is this technology switched on (and the daemon not offline)?
    pub fn tech_powered(&self, tech: Technology) -> bool {
        self.techs.iter().any(|t| t.tech == tech && t.powered)
    }

    /// Technologies that have at least one device.
    pub fn present_techs(&self) -> impl Iterator<Item = Technology> + '_ {
        Technology::ALL.into_iter().filter(|t| {
            self.devices.iter().any(|d| d.tech == *t)
                || *t == Technology::Cellular && !self.modems.is_empty()
        })
    }

    /// Technology.SetProperty("Powered").
    pub fn set_powered(&mut self, tech: Technology, on: bool) -> Result<(), RequestError> {
        let Some(t) = self.techs.iter_mut().find(|t| t.tech == tech) else {
            return Err(RequestError::NotFound(format!("technology {tech}")));
        };
        if t.powered == on {
            return Err(if on {
                RequestError::AlreadyEnabled
            } else {
                RequestError::AlreadyDisabled
            });
        }
        t.powered = on;
        self.actions.push(Action::SaveGlobal);
        self.apply_power(tech);
        Ok(())
    }

    /// Manager.SetProperty("OfflineMode").
    pub fn set_offline(&mut self, on: bool) {
        if self.offline == on {
            return;
        }
        self.offline = on;
        self.actions.push(Action::SaveGlobal);
        for tech in Technology::ALL {
            self.apply_power(tech);
        }
    }

    /// Brings a technology's devices and services in line with its switch.
    fn apply_power(&mut self, tech: Technology) {
        let on = self.tech_powered(tech) && !self.offline;
        if !on && self.tether_settings(tech).enabled {
            // As ConnMan: switching a technology off ends its tethering.
            let _ = self.set_tethering(tech, false);
        }
        let devs: Vec<(u32, bool, bool)> = self
            .devices
            .iter()
            .filter(|d| d.tech == tech)
            .map(|d| (d.ifindex, d.up, d.carrier))
            .collect();
        for (ifindex, up, _) in devs {
            if on {
                if !up {
                    self.actions.push(Action::SetLinkUp { ifindex, up: true });
                }
            } else {
                self.wifi_radio_lost(ifindex);
                self.remove_service_of(ifindex);
                if up {
                    self.actions.push(Action::SetLinkUp { ifindex, up: false });
                }
            }
        }
    }

    /// ConnMan's aggregate Manager.State.
    pub fn manager_state(&self) -> &'static str {
        if self.offline {
            return "offline";
        }
        if self
            .services
            .iter()
            .any(|s| s.state == ServiceState::Online)
        {
            "online"
        } else if self.services.iter().any(|s| s.state == ServiceState::Ready) {
            "ready"
        } else {
            "idle"
        }
    }

    /// Technology.Connected.
    pub fn tech_connected(&self, tech: Technology) -> bool {
        self.services
            .iter()
            .any(|s| s.tech == tech && s.state.is_connected())
    }
}
