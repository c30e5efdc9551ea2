//! Services: what can be connected, the addresses it has, its state
//! machine (configuration → ready → online) and the user's requests on it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Action, Model, RequestError};
use crate::caps;
use crate::core::types::{
    DomainList, IfName, Ipv4Method, Ipv4Net, Ipv6Method, ServerList, ServiceConfig, ServiceId,
    ServiceState, Technology,
};

/// Where a service's IPv4 address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Source {
    Dhcp,
    Manual,
    /// RFC 3927 link-local while DHCP keeps trying (`Method=auto` on D-Bus).
    LinkLocal,
    /// Given by the modem (a cellular context's static Settings; ConnMan's `fixed`).
    Fixed,
}

/// The IPv4 configuration a service currently has.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipv4Assigned {
    pub source: Ipv4Source,
    pub net: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub nameservers: ServerList,
    pub timeservers: ServerList,
    pub domains: DomainList,
}

/// What a DHCP client learned (the subset the model needs).
#[derive(Debug, Clone, PartialEq)]
pub struct DhcpConfig {
    pub net: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub nameservers: ServerList,
    pub timeservers: ServerList,
    pub domains: DomainList,
}

/// One IPv6 address learned from the kernel (SLAAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Assigned {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
}

/// An IPv6 address the network gave outright (a cellular context's
/// `IPv6.Settings`, ConnMan's `fixed`): pathman installs it, and its router
/// and name servers are the service's.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipv6Fixed {
    /// None: the network gave a router or servers but no global address.
    pub addr: Option<Ipv6Assigned>,
    pub gateway: Option<Ipv6Addr>,
    pub nameservers: ServerList,
}

/// A connectable thing; for ethernet and gadget one per device with carrier.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: ServiceId,
    pub tech: Technology,
    pub ifindex: u32,
    pub ifname: IfName,
    pub config: ServiceConfig,
    pub state: ServiceState,
    pub error: Option<&'static str>,
    pub ipv4: Option<Ipv4Assigned>,
    pub ipv6: heapless::Vec<Ipv6Assigned, { caps::MAX_ADDRS_PER_FAMILY }>,
    /// The router of `ipv6`: the fixed one, else the kernel's RA default.
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// The kernel's RA default router on the link.
    pub ipv6_ra_gateway: Option<Ipv6Addr>,
    /// The address the network gave (also first in `ipv6`).
    pub ipv6_fixed: Option<Ipv6Fixed>,
    /// The user disconnected it: no auto-connect until Connect or a carrier flap.
    pub user_disconnected: bool,
    /// It acquires IPv4 by DHCP: the plan wants a DHCP task for it.
    pub dhcp_running: bool,
    /// Counts DHCP starts: a new value is a fresh client (Connect after a
    /// failure, a new IPv4 method), not the running one reconfigured.
    pub dhcp_generation: u32,
    /// A lease to take over when DHCP starts (see [`ConfigSource::lease`]).
    pub resume: Option<DhcpConfig>,
    /// The online check found no Internet through it (its verdict, not the
    /// absence of one: a service whose check has not answered yet is not
    /// lost). It then ranks below the others and its MPTCP endpoints are
    /// backups.
    pub internet_lost: bool,
    /// WiFi: the network (boxed: most services are wired).
    pub wifi: Option<Box<super::WifiInfo>>,
    /// Cellular: the modem and context.
    pub cellular: Option<Box<super::CellularInfo>>,
}

impl Service {
    /// Provisioned from a `.config` file: only AutoConnect may change, and
    /// it cannot be removed over D-Bus (ConnMan's Immutable).
    pub fn immutable(&self) -> bool {
        self.wifi.as_ref().is_some_and(|w| w.provision.is_some())
    }

    /// A service not connected yet, nothing acquired.
    pub(super) fn idle(
        id: ServiceId,
        tech: Technology,
        ifindex: u32,
        ifname: IfName,
        config: ServiceConfig,
    ) -> Service {
        Service {
            id,
            tech,
            ifindex,
            ifname,
            config,
            state: ServiceState::Idle,
            error: None,
            ipv4: None,
            ipv6: heapless::Vec::new(),
            ipv6_gateway: None,
            ipv6_ra_gateway: None,
            ipv6_fixed: None,
            user_disconnected: false,
            dhcp_running: false,
            dhcp_generation: 0,
            resume: None,
            internet_lost: false,
            wifi: None,
            cellular: None,
        }
    }

    /// Sets the network-given IPv6 address (None: drops it), beside the
    /// addresses the kernel made (SLAAC).
    pub fn set_ipv6_fixed(&mut self, fixed: Option<Ipv6Fixed>) {
        if let Some(a) = self.ipv6_fixed.as_ref().and_then(|f| f.addr) {
            self.ipv6.retain(|x| *x != a);
        }
        self.ipv6_fixed = fixed.filter(|_| self.config.ipv6 != Ipv6Method::Off);
        let observed = std::mem::take(&mut self.ipv6);
        self.refill_ipv6(&observed, self.ipv6_ra_gateway);
    }

    /// `ipv6`: the fixed address first, then the kernel's (to the cap).
    fn refill_ipv6(&mut self, observed: &[Ipv6Assigned], ra_gateway: Option<Ipv6Addr>) {
        self.ipv6.clear();
        let fixed = self.ipv6_fixed.as_ref();
        for a in fixed.and_then(|f| f.addr).iter().chain(observed) {
            if !self.ipv6.contains(a) && self.ipv6.push(*a).is_err() {
                break;
            }
        }
        self.ipv6_ra_gateway = ra_gateway;
        self.ipv6_gateway = fixed.and_then(|f| f.gateway).or(ra_gateway);
    }

    /// True when MultipathRouting is on, given the daemon-wide default.
    pub fn multipath(&self, default: bool) -> bool {
        self.config.multipath_routing.unwrap_or(default)
    }
}

impl Model {
    /// The kernel's IPv6 view of an interface changed (SLAAC addresses, RA
    /// default router). `addrs` are the global/ULA addresses now present.
    pub fn ipv6_changed(
        &mut self,
        ifindex: u32,
        addrs: &[Ipv6Assigned],
        gateway: Option<Ipv6Addr>,
    ) {
        let Some(idx) = self.service_idx_by_ifindex(ifindex) else {
            return;
        };
        let svc = &mut self.services[idx];
        if svc.config.ipv6 == Ipv6Method::Off || svc.state == ServiceState::Idle {
            svc.ipv6.clear();
            svc.ipv6_gateway = None;
            return;
        }
        svc.refill_ipv6(addrs, gateway);
        self.update_state(idx);
    }

    // ----- DHCP events ---------------------------------------------------

    /// A DHCP lease was obtained or renewed.
    pub fn dhcp_bound(&mut self, ifindex: u32, cfg: DhcpConfig) {
        let Some(idx) = self.service_idx_by_ifindex(ifindex) else {
            return;
        };
        let svc = &mut self.services[idx];
        if !svc.dhcp_running || svc.config.ipv4 != Ipv4Method::Dhcp {
            return;
        }
        let changed_addr = svc.ipv4.as_ref().map(|a| a.net) != Some(cfg.net);
        svc.ipv4 = Some(Ipv4Assigned {
            source: Ipv4Source::Dhcp,
            net: cfg.net,
            gateway: cfg.gateway,
            nameservers: cfg.nameservers,
            timeservers: cfg.timeservers,
            domains: cfg.domains,
        });
        if changed_addr {
            log::info!(
                "{}: DHCP address {}/{}",
                svc.ifname,
                cfg.net.addr,
                cfg.net.prefix_len
            );
            if svc.config.dhcp_last_address != Some(cfg.net.addr) {
                svc.config.dhcp_last_address = Some(cfg.net.addr);
                self.actions.push(Action::SaveService(svc.id.clone()));
            }
        }
        self.update_state(idx);
    }

    /// The DHCP lease was lost (expired, NAK); the client keeps trying.
    pub fn dhcp_lost(&mut self, ifindex: u32) {
        self.drop_ipv4_source(ifindex, Ipv4Source::Dhcp);
    }

    /// IPv4LL claimed an address while DHCP keeps trying.
    pub fn link_local_claimed(&mut self, ifindex: u32, addr: Ipv4Addr) {
        let Some(idx) = self.service_idx_by_ifindex(ifindex) else {
            return;
        };
        let svc = &mut self.services[idx];
        if !svc.dhcp_running
            || matches!(
                svc.ipv4,
                Some(Ipv4Assigned {
                    source: Ipv4Source::Dhcp,
                    ..
                })
            )
        {
            return;
        }
        log::info!("{}: link-local address {}", svc.ifname, addr);
        svc.ipv4 = Some(Ipv4Assigned {
            source: Ipv4Source::LinkLocal,
            net: Ipv4Net {
                addr,
                prefix_len: 16,
            },
            gateway: None,
            nameservers: ServerList::new(),
            timeservers: ServerList::new(),
            domains: DomainList::new(),
        });
        self.update_state(idx);
    }

    /// IPv4LL lost its address (conflict) or DHCP superseded it.
    pub fn link_local_lost(&mut self, ifindex: u32) {
        self.drop_ipv4_source(ifindex, Ipv4Source::LinkLocal);
    }

    fn drop_ipv4_source(&mut self, ifindex: u32, source: Ipv4Source) {
        let Some(idx) = self.service_idx_by_ifindex(ifindex) else {
            return;
        };
        let svc = &mut self.services[idx];
        if svc.ipv4.as_ref().map(|a| a.source) == Some(source) {
            let what = match source {
                Ipv4Source::Dhcp => "DHCP",
                Ipv4Source::Manual => "manual",
                Ipv4Source::LinkLocal => "link-local",
                Ipv4Source::Fixed => "fixed",
            };
            log::info!("{}: {what} address lost", svc.ifname);
            svc.ipv4 = None;
            self.update_state(idx);
        }
    }

    // ----- state ---------------------------------------------------------

    /// Recomputes a connecting/connected service's state from its addresses.
    pub(super) fn update_state(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        if !matches!(
            svc.state,
            ServiceState::Configuration | ServiceState::Ready | ServiceState::Online
        ) {
            return;
        }
        let v4_off = svc.config.ipv4 == Ipv4Method::Off;
        let v6_off = svc.config.ipv6 == Ipv6Method::Off;
        let has_addr = svc.ipv4.is_some() || !svc.ipv6.is_empty() || (v4_off && v6_off);
        let new = if has_addr {
            ServiceState::Ready
        } else {
            ServiceState::Configuration
        };
        if svc.state != new && !(svc.state == ServiceState::Online && new == ServiceState::Ready) {
            log::info!(
                "{}: {} {} -> {}",
                svc.ifname,
                svc.id,
                svc.state.as_str(),
                new.as_str()
            );
            svc.state = new;
        }
    }

    /// The online check of the service on `ifindex` found the Internet
    /// (`online`) or lost it: ready → online, online → ready. The order, the
    /// default route, `internet` sessions and MPTCP backup flags follow from
    /// the state. A service not connected ignores it (a late report).
    pub fn online_changed(&mut self, ifindex: u32, online: bool) {
        let Some(svc) = self
            .services
            .iter_mut()
            .find(|s| s.ifindex == ifindex && s.state.is_connected())
        else {
            return;
        };
        let new = if online {
            ServiceState::Online
        } else {
            ServiceState::Ready
        };
        svc.internet_lost = !online;
        if !online && svc.state == ServiceState::Online {
            // The others are pinged at once: a fault they share shows on all together.
            self.recheck = self.recheck.wrapping_add(1);
        }
        if svc.state != new {
            log::info!(
                "{}: {} {} -> {}{}",
                svc.ifname,
                svc.id,
                svc.state.as_str(),
                new.as_str(),
                if online {
                    ""
                } else {
                    " (the Internet is not reachable through it)"
                }
            );
            svc.state = new;
        }
    }

    /// Starts connecting a service (state configuration, address acquisition).
    pub(super) fn start_connect(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        svc.state = ServiceState::Configuration;
        svc.error = None;
        svc.user_disconnected = false;
        svc.internet_lost = false;
        log::info!("{}: connecting {}", svc.ifname, svc.id);
        self.actions.push(Action::SetIpv6 {
            ifindex: svc.ifindex,
            ifname: svc.ifname.clone(),
            enabled: svc.config.ipv6 == Ipv6Method::Auto,
        });
        self.start_ipv4(idx);
        self.update_state(idx);
    }

    /// Starts IPv4 acquisition by the configured method.
    fn start_ipv4(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        match svc.config.ipv4 {
            Ipv4Method::Dhcp => {
                svc.dhcp_running = true;
                svc.dhcp_generation = svc.dhcp_generation.wrapping_add(1);
                if let Some(cfg) = svc.resume.take() {
                    log::info!(
                        "{}: keeping the lease {}/{} a previous pathman held",
                        svc.ifname,
                        cfg.net.addr,
                        cfg.net.prefix_len
                    );
                    svc.ipv4 = Some(Ipv4Assigned {
                        source: Ipv4Source::Dhcp,
                        net: cfg.net,
                        gateway: cfg.gateway,
                        nameservers: cfg.nameservers,
                        timeservers: cfg.timeservers,
                        domains: cfg.domains,
                    });
                }
            }
            Ipv4Method::Manual { addr, gateway } => {
                svc.ipv4 = Some(Ipv4Assigned {
                    source: Ipv4Source::Manual,
                    net: addr,
                    gateway,
                    nameservers: ServerList::new(),
                    timeservers: ServerList::new(),
                    domains: DomainList::new(),
                });
            }
            Ipv4Method::Off => {}
        }
    }

    /// Stops IPv4 acquisition and drops the IPv4 address.
    fn stop_ipv4(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        svc.dhcp_running = false;
        svc.ipv4 = None;
    }

    /// Applies a new IPv6 method: SLAAC on or off, addresses re-learned.
    fn restart_ipv6(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        svc.refill_ipv6(&[], None);
        if svc.config.ipv6 == Ipv6Method::Off {
            svc.set_ipv6_fixed(None);
        }
        self.actions.push(Action::SetIpv6 {
            ifindex: svc.ifindex,
            ifname: svc.ifname.clone(),
            enabled: svc.config.ipv6 == Ipv6Method::Auto,
        });
    }

    /// Stops a service's address acquisition and drops its addresses.
    pub(super) fn stop_connect(&mut self, idx: usize) {
        self.stop_ipv4(idx);
        let svc = &mut self.services[idx];
        svc.ipv6_fixed = None;
        svc.refill_ipv6(&[], None);
        svc.state = ServiceState::Idle;
        self.actions.push(Action::SetIpv6 {
            ifindex: svc.ifindex,
            ifname: svc.ifname.clone(),
            enabled: false,
        });
    }

    /// Connects every idle service that wants to be connected. Wired
    /// services (and every service with MultipathRouting) connect in
    /// parallel: a router wants all its uplinks.
    pub fn auto_connect(&mut self) {
        if self.offline {
            return;
        }
        for idx in 0..self.services.len() {
            let svc = &self.services[idx];
            if svc.state == ServiceState::Idle
                && svc.wifi.is_none()
                && svc.cellular.is_none()
                && svc.config.auto_connect
                && !svc.user_disconnected
                && self.tech_powered(svc.tech)
            {
                self.start_connect(idx);
            }
        }
        self.wifi_auto_connect();
        self.cellular_auto_connect();
    }

    // ----- user requests -------------------------------------------------

    /// Service.Connect.
    pub fn connect(&mut self, id: &str) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        if self.services[idx].state != ServiceState::Idle
            && self.services[idx].state != ServiceState::Failure
        {
            return Err(RequestError::AlreadyConnected);
        }
        if self.services[idx].wifi.is_some() {
            // One network per radio: leave the one it is on.
            let ifindex = self.services[idx].ifindex;
            if let Some(other) = self.services.iter().position(|s| {
                s.ifindex == ifindex
                    && !matches!(s.state, ServiceState::Idle | ServiceState::Failure)
            }) {
                self.stop_connect(other);
            }
            return self.wifi_connect(idx);
        }
        if self.services[idx].cellular.is_some() {
            return self.cellular_connect(idx);
        }
        self.start_connect(idx);
        Ok(())
    }

    /// Service.Disconnect.
    pub fn disconnect(&mut self, id: &str) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        if self.services[idx].state == ServiceState::Idle {
            return Err(RequestError::NotConnected);
        }
        let connecting = !self.services[idx].state.is_connected();
        if self.services[idx].cellular.is_some() {
            if connecting {
                self.fail_pending_connect(
                    idx,
                    RequestError::OperationAborted(format!("{id} disconnected by request")),
                );
            }
            self.cellular_disconnect(idx);
            log::info!("cellular: {id} disconnected by request");
            return Ok(());
        }
        self.stop_connect(idx);
        self.services[idx].user_disconnected = true;
        if let Some(w) = self.services[idx].wifi.as_mut() {
            let asking = std::mem::take(&mut w.asking);
            w.attempt = None;
            w.offered = None;
            w.reporting = false;
            let ifindex = self.services[idx].ifindex;
            if asking {
                // The agent's prompt is moot now: it is told so.
                let service = self.services[idx].id.clone();
                self.actions.push(Action::CancelInput { service });
            }
            self.actions.push(Action::WifiDisconnect { ifindex });
            if connecting {
                // A Connect still waiting for this service ends here.
                self.fail_pending_connect(
                    idx,
                    RequestError::OperationAborted(format!("{id} disconnected by request")),
                );
            }
        }
        log::info!(
            "{}: {} disconnected by request",
            self.services[idx].ifname,
            id
        );
        Ok(())
    }

    /// Service.Remove: wired services cannot be removed (ConnMan), but their
    /// configuration is reset, which is what a user means by it.
    pub fn remove(&mut self, id: &str) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        let tech = self.services[idx].tech;
        if self.services[idx].immutable() {
            return Err(RequestError::NotSupported(format!(
                "{id} is provisioned by a .config file: remove the file"
            )));
        }
        if !crate::core::tech::removable(tech) {
            return Err(RequestError::NotSupported(format!(
                "removing {tech} service {id}"
            )));
        }
        // A WiFi network: disconnect, forget the passphrase and the
        // favourite; the service stays listed while it is in range.
        if self.services[idx].state != ServiceState::Idle
            && self.services[idx].state != ServiceState::Failure
        {
            let _ = self.disconnect(id);
        }
        let svc = &mut self.services[idx];
        svc.config.passphrase = None;
        svc.config.favorite = false;
        svc.user_disconnected = false;
        svc.error = None;
        if svc.state == ServiceState::Failure {
            svc.state = ServiceState::Idle;
        }
        log::info!("{}: {} removed (passphrase forgotten)", svc.ifname, svc.id);
        self.actions.push(Action::ForgetService(svc.id.clone()));
        Ok(())
    }

    /// Service.ClearProperty("Error"): a failed service goes back to idle.
    pub fn clear_error(&mut self, id: &str) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        let svc = &mut self.services[idx];
        svc.error = None;
        if svc.state == ServiceState::Failure {
            svc.state = ServiceState::Idle;
        }
        Ok(())
    }

    /// Service.ResetCounters.
    pub fn reset_counters(&mut self, id: &str) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        self.actions
            .push(Action::ResetCounters(self.services[idx].id.clone()));
        Ok(())
    }

    /// Forgets the agent and counters of a client that left the bus.
    pub fn drop_client(&mut self, owner: &str) {
        if self.agent.as_ref().is_some_and(|a| a.owner == owner) {
            log::info!("agent of {owner} gone with its connection");
            self.agent = None;
        }
        self.counters.retain(|c| c.owner != owner);
    }

    pub(super) fn index_of(&self, id: &str) -> Result<usize, RequestError> {
        self.services
            .iter()
            .position(|s| s.id.as_str() == id)
            .ok_or_else(|| RequestError::NotFound(format!("service {id}")))
    }

    /// Applies a new configuration to a service (from SetProperty), restarting
    /// address acquisition when the IP method changed.
    pub fn configure(&mut self, id: &str, config: ServiceConfig) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        let old = self.services[idx].config.clone();
        if old == config {
            return Ok(());
        }
        let v4_changed = old.ipv4 != config.ipv4;
        let v6_changed = old.ipv6 != config.ipv6;
        self.services[idx].config = config;
        self.actions
            .push(Action::SaveService(self.services[idx].id.clone()));
        // Each family's configuration restarts only that family: a new
        // IPv6 method must not drop the DHCP lease, nor a new IPv4 method
        // the SLAAC addresses.
        if self.services[idx].state != ServiceState::Idle {
            if v4_changed {
                self.stop_ipv4(idx);
                self.start_ipv4(idx);
            }
            if v6_changed {
                self.restart_ipv6(idx);
            }
            self.update_state(idx);
        }
        if !old.auto_connect && self.services[idx].config.auto_connect {
            self.auto_connect();
        }
        Ok(())
    }

    /// Service.MoveBefore / MoveAfter.
    pub fn move_service(
        &mut self,
        id: &str,
        target: &str,
        before: bool,
    ) -> Result<(), RequestError> {
        let a = self.index_of(id)?;
        let b = self.index_of(target)?;
        if a == b {
            return Err(RequestError::InvalidArguments(
                "cannot move a service relative to itself".into(),
            ));
        }
        // Make the current visible order explicit, then move.
        let mut order: Vec<ServiceId> = crate::core::order::sorted(self)
            .into_iter()
            .map(|i| self.services[i].id.clone())
            .collect();
        let sid = self.services[a].id.clone();
        let tid = self.services[b].id.clone();
        order.retain(|x| *x != sid);
        let pos = order.iter().position(|x| *x == tid).unwrap_or(order.len());
        order.insert(if before { pos } else { pos + 1 }, sid);
        self.user_order.clear();
        for x in order {
            let _ = self.user_order.push(x);
        }
        Ok(())
    }

    /// The nameservers of a service: configured first, then learned.
    pub fn nameservers(svc: &Service) -> ServerList {
        let mut out = svc.config.nameservers.clone();
        let v4 = svc.ipv4.iter().flat_map(|v4| &v4.nameservers);
        let v6 = svc.ipv6_fixed.iter().flat_map(|f| &f.nameservers);
        for ns in v4.chain(v6) {
            if !out.contains(ns) {
                let _ = out.push(*ns);
            }
        }
        out
    }

    /// The search domains of a service: configured first, then learned.
    pub fn domains(svc: &Service) -> DomainList {
        let mut out = svc.config.domains.clone();
        if let Some(v4) = &svc.ipv4 {
            for d in &v4.domains {
                if !out.contains(d) {
                    let _ = out.push(d.clone());
                }
            }
        }
        out
    }

    /// Addresses of a connected service, both families (for source rules).
    pub fn addresses(svc: &Service) -> impl Iterator<Item = IpAddr> + '_ {
        svc.ipv4
            .iter()
            .map(|a| IpAddr::V4(a.net.addr))
            .chain(svc.ipv6.iter().map(|a| IpAddr::V6(a.addr)))
    }
}
