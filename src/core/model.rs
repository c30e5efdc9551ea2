//! The daemon's model: technologies, devices and services, and the pure
//! state machine that moves them. Inputs are plain events (a link changed, a
//! DHCP lease arrived, a D-Bus request); outputs are [`Action`]s for the edges
//! and, through [`crate::core::plan`], the desired kernel state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::caps;
use crate::core::counter::Counter;
use crate::core::session::Session;
use crate::core::session_policy::PolicyRule;
use crate::core::types::{
    wired_service_id, DomainList, IfName, Ipv4Method, Ipv4Net, Ipv6Method, ServerList,
    ServiceConfig, ServiceId, ServiceState, Technology,
};

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
}

/// Where a service's IPv4 address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Source {
    Dhcp,
    Manual,
    /// RFC 3927 link-local while DHCP keeps trying (`Method=auto` on D-Bus).
    LinkLocal,
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

/// A connectable thing; for ethernet and gadget one per device with carrier.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: ServiceId,
    pub tech: Technology,
    pub ifindex: u32,
    pub ifname: IfName,
    pub mac: [u8; 6],
    pub config: ServiceConfig,
    pub state: ServiceState,
    pub error: Option<&'static str>,
    pub ipv4: Option<Ipv4Assigned>,
    pub ipv6: heapless::Vec<Ipv6Assigned, { caps::MAX_ADDRS_PER_FAMILY }>,
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// The user disconnected it: no auto-connect until Connect or a carrier flap.
    pub user_disconnected: bool,
    /// It acquires IPv4 by DHCP: the plan wants a DHCP task for it.
    pub dhcp_running: bool,
    /// Counts DHCP starts: a new value is a fresh client (Connect after a
    /// failure, a new IPv4 method), not the running one reconfigured.
    pub dhcp_generation: u32,
    /// A lease to take over when DHCP starts (see [`ConfigSource::lease`]).
    pub resume: Option<DhcpConfig>,
}

impl Service {
    /// True when MultipathRouting is on, given the daemon-wide default.
    pub fn multipath(&self, default: bool) -> bool {
        self.config.multipath_routing.unwrap_or(default)
    }
}

/// A technology's switch and derived state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TechState {
    pub tech: Technology,
    pub powered: bool,
}

/// Side effects the edges carry out for the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Bring an interface administratively up or down.
    SetLinkUp { ifindex: u32, up: bool },
    /// Let the kernel do SLAAC on it (accept_ra) or not; when enabled, the
    /// addresses the kernel already has are reported again.
    SetIpv6 {
        ifindex: u32,
        ifname: IfName,
        enabled: bool,
    },
    /// Persist a service's configuration.
    SaveService(ServiceId),
    /// Persist the global settings (technology switches, offline mode).
    SaveGlobal,
    /// Usage counters of the service count from now (ResetCounters).
    ResetCounters(ServiceId),
}

/// The client agent that answers input requests (`RegisterAgent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Unique bus name of the client; the agent dies with its connection.
    pub owner: String,
    /// The client's `net.connman.Agent` object.
    pub path: String,
}

/// Errors for requests that come from users (D-Bus). Names follow ConnMan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    NotFound(String),
    InvalidArguments(String),
    AlreadyConnected,
    NotConnected,
    AlreadyEnabled,
    AlreadyDisabled,
    NotSupported(String),
    AlreadyExists(String),
    PermissionDenied(String),
    /// No such registration (agent, counter) of the caller.
    NotRegistered(String),
    /// A cap or another limit of pathman's refused it.
    Failed(String),
}

impl RequestError {
    /// The `net.connman.Error.*` suffix.
    pub fn dbus_name(&self) -> &'static str {
        match self {
            RequestError::NotFound(_) => "NotFound",
            RequestError::InvalidArguments(_) => "InvalidArguments",
            RequestError::AlreadyConnected => "AlreadyConnected",
            RequestError::NotConnected => "NotConnected",
            RequestError::AlreadyEnabled => "AlreadyEnabled",
            RequestError::AlreadyDisabled => "AlreadyDisabled",
            RequestError::NotSupported(_) => "NotSupported",
            RequestError::AlreadyExists(_) => "AlreadyExists",
            RequestError::PermissionDenied(_) => "PermissionDenied",
            RequestError::NotRegistered(_) => "NotRegistered",
            RequestError::Failed(_) => "Failed",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::NotFound(what) => write!(f, "{what} not found"),
            RequestError::InvalidArguments(why) => write!(f, "invalid arguments: {why}"),
            RequestError::AlreadyConnected => f.write_str("already connected"),
            RequestError::NotConnected => f.write_str("not connected"),
            RequestError::AlreadyEnabled => f.write_str("already enabled"),
            RequestError::AlreadyDisabled => f.write_str("already disabled"),
            RequestError::NotSupported(what) => write!(f, "{what} is not supported"),
            RequestError::AlreadyExists(why)
            | RequestError::PermissionDenied(why)
            | RequestError::NotRegistered(why)
            | RequestError::Failed(why) => f.write_str(why),
        }
    }
}

/// Daemon-wide settings the model needs.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// Default of MultipathRouting for services that did not set it.
    pub multipath_default: bool,
    pub preferred: heapless::Vec<Technology, 4>,
    pub rule_priority_base: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            multipath_default: false,
            preferred: heapless::Vec::new(),
            rule_priority_base: caps::RULE_PRIORITY_BASE,
        }
    }
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
}

/// Loads a service's persisted configuration (an edge: the state directory).
pub trait ConfigSource {
    fn load(&mut self, id: &ServiceId) -> ServiceConfig;
    /// A DHCP lease that a previous pathman held for this service and that is
    /// still valid and still on the interface (a restart): the service takes
    /// it over instead of starting from nothing, so nothing in the kernel
    /// changes.
    fn lease(&mut self, _id: &ServiceId, _ifindex: u32) -> Option<DhcpConfig> {
        None
    }
}

/// The whole model.
#[derive(Debug)]
pub struct Model {
    pub settings: ModelSettings,
    pub offline: bool,
    pub techs: heapless::Vec<TechState, 4>,
    pub devices: heapless::Vec<Device, { caps::MAX_DEVICES }>,
    pub services: heapless::Vec<Service, { caps::MAX_SERVICES }>,
    /// Service ids in the order the user arranged with MoveBefore/MoveAfter.
    pub user_order: heapless::Vec<ServiceId, { caps::MAX_SERVICES }>,
    /// Clients' sessions (SPEC §5), bounded in number; each boxed so the
    /// model stays small enough to live on the stack of the event loop.
    pub sessions: heapless::Vec<Box<Session>, { caps::MAX_SESSIONS }>,
    /// Session policy rules from `<state-dir>/session_policy_local/*.policy`.
    pub policies: Vec<PolicyRule>,
    /// The registered agent, if any.
    pub agent: Option<Agent>,
    /// Registered usage counters.
    pub counters: heapless::Vec<Counter, { caps::MAX_COUNTERS }>,
    actions: Vec<Action>,
}

impl Model {
    /// A model with every technology powered unless `powered` says otherwise.
    pub fn new(settings: ModelSettings, offline: bool, powered: &[(Technology, bool)]) -> Model {
        let mut techs = heapless::Vec::new();
        for tech in Technology::ALL {
            let on = powered
                .iter()
                .find(|(t, _)| *t == tech)
                .map(|(_, p)| *p)
                .unwrap_or(true);
            let _ = techs.push(TechState { tech, powered: on });
        }
        Model {
            settings,
            offline,
            techs,
            devices: heapless::Vec::new(),
            services: heapless::Vec::new(),
            user_order: heapless::Vec::new(),
            sessions: heapless::Vec::new(),
            policies: Vec::new(),
            agent: None,
            counters: heapless::Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Takes the actions produced since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Is this technology switched on (and the daemon not offline)?
    pub fn tech_powered(&self, tech: Technology) -> bool {
        self.techs.iter().any(|t| t.tech == tech && t.powered)
    }

    /// Technologies that have at least one device.
    pub fn present_techs(&self) -> impl Iterator<Item = Technology> + '_ {
        Technology::ALL
            .into_iter()
            .filter(|t| self.devices.iter().any(|d| d.tech == *t))
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id.as_str() == id)
    }

    fn service_idx_by_ifindex(&self, ifindex: u32) -> Option<usize> {
        self.services.iter().position(|s| s.ifindex == ifindex)
    }

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
        let has_service = self.service_idx_by_ifindex(link.ifindex).is_some();
        if link.carrier && link.up && powered && !has_service {
            self.add_service(&link, configs);
        } else if (!link.carrier || !link.up) && has_service {
            log::info!("{}: carrier lost", link.name);
            self.remove_service_of(link.ifindex);
        }
    }

    /// A managed link disappeared.
    pub fn link_removed(&mut self, ifindex: u32) {
        if self.service_idx_by_ifindex(ifindex).is_some() {
            self.remove_service_of(ifindex);
        }
        if let Some(pos) = self.devices.iter().position(|d| d.ifindex == ifindex) {
            let dev = self.devices.remove(pos);
            log::info!("{}: device removed", dev.name);
        }
    }

    fn add_service(&mut self, link: &LinkSeen, configs: &mut dyn ConfigSource) {
        let id = wired_service_id(link.tech, link.mac);
        let config = configs.load(&id);
        let resume = configs.lease(&id, link.ifindex);
        let svc = Service {
            id: id.clone(),
            tech: link.tech,
            ifindex: link.ifindex,
            ifname: link.name.clone(),
            mac: link.mac,
            config,
            state: ServiceState::Idle,
            error: None,
            ipv4: None,
            ipv6: heapless::Vec::new(),
            ipv6_gateway: None,
            user_disconnected: false,
            dhcp_running: false,
            dhcp_generation: 0,
            resume,
        };
        if self.services.push(svc).is_err() {
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

    fn remove_service_of(&mut self, ifindex: u32) {
        let Some(idx) = self.service_idx_by_ifindex(ifindex) else {
            return;
        };
        let svc = self.services.remove(idx);
        log::info!("{}: service {} gone", svc.ifname, svc.id);
    }

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
        svc.ipv6.clear();
        for a in addrs.iter().take(caps::MAX_ADDRS_PER_FAMILY) {
            let _ = svc.ipv6.push(*a);
        }
        svc.ipv6_gateway = gateway;
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
            };
            log::info!("{}: {what} address lost", svc.ifname);
            svc.ipv4 = None;
            self.update_state(idx);
        }
    }

    // ----- state ---------------------------------------------------------

    /// Recomputes a connecting/connected service's state from its addresses.
    fn update_state(&mut self, idx: usize) {
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

    /// Starts connecting a service (state configuration, address acquisition).
    fn start_connect(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        svc.state = ServiceState::Configuration;
        svc.error = None;
        svc.user_disconnected = false;
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
        svc.ipv6.clear();
        svc.ipv6_gateway = None;
        self.actions.push(Action::SetIpv6 {
            ifindex: svc.ifindex,
            ifname: svc.ifname.clone(),
            enabled: svc.config.ipv6 == Ipv6Method::Auto,
        });
    }

    /// Stops a service's address acquisition and drops its addresses.
    fn stop_connect(&mut self, idx: usize) {
        self.stop_ipv4(idx);
        let svc = &mut self.services[idx];
        svc.ipv6.clear();
        svc.ipv6_gateway = None;
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
                && svc.config.auto_connect
                && !svc.user_disconnected
                && self.tech_powered(svc.tech)
            {
                self.start_connect(idx);
            }
        }
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
        self.start_connect(idx);
        Ok(())
    }

    /// Service.Disconnect.
    pub fn disconnect(&mut self, id: &str) -> Result<(), RequestError> {
        let idx = self.index_of(id)?;
        if self.services[idx].state == ServiceState::Idle {
            return Err(RequestError::NotConnected);
        }
        self.stop_connect(idx);
        self.services[idx].user_disconnected = true;
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
        if matches!(
            self.services[idx].tech,
            Technology::Ethernet | Technology::Gadget
        ) {
            return Err(RequestError::NotSupported(format!(
                "removing wired service {id}"
            )));
        }
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

    fn index_of(&self, id: &str) -> Result<usize, RequestError> {
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

    /// The nameservers of a service: configured first, then learned.
    pub fn nameservers(svc: &Service) -> ServerList {
        let mut out = svc.config.nameservers.clone();
        if let Some(v4) = &svc.ipv4 {
            for ns in &v4.nameservers {
                if !out.contains(ns) {
                    let _ = out.push(*ns);
                }
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
