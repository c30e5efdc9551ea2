//! The daemon's model: technologies, devices and services, and the pure
//! state machine that moves them. Inputs are plain events (a link changed, a
//! DHCP lease arrived, a D-Bus request); outputs are [`Action`]s for the edges
//! and, through [`crate::core::plan`] and [`crate::core::tasks`], the desired
//! kernel state and protocol tasks. One file per concept: [`device`] (kernel
//! interfaces), [`service`] (what can be connected, its addresses and state
//! machine), [`technology`] (the switches); what a technology makes of its
//! devices lives in [`crate::core::tech`].

mod cellular;
mod device;
mod service;
mod technology;
mod tether;
mod wifi;

pub use cellular::CellularInfo;
pub use device::{Device, LinkSeen};
pub use service::{DhcpConfig, Ipv4Assigned, Ipv4Source, Ipv6Assigned, Ipv6Fixed, Service};
pub use technology::TechState;
pub use wifi::{AgentAnswer, ConnectOutcome, ConnectSpec, InputRequest, WifiInfo};

use crate::caps;
use crate::core::clock::ClockState;
use crate::core::counter::Counter;
use crate::core::session::Session;
use crate::core::session_policy::PolicyRule;
use crate::core::types::{IfName, ServiceConfig, ServiceId, ServiceState, Technology};
pub use tether::TetherState;

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
    /// Point the local time at this tzdata zone (Clock.Timezone); the
    /// daemon sets [`ClockState::timezone`] once the link is written.
    SetTimezone(String),
    /// Set the system clock to this many nanoseconds since the epoch
    /// (Clock.Time with TimeUpdates=manual), where pathman may.
    SetTime(u64),
    /// Forget a service's stored settings (Service.Remove of a WiFi network).
    ForgetService(ServiceId),
    /// Ask the registered agent for a passphrase.
    RequestInput(InputRequest),
    /// The agent's question about this service is moot (the user
    /// disconnected while it was asked): `net.connman.Agent.Cancel`.
    CancelInput { service: ServiceId },
    /// Tell the agent why the connect failed (`ReportError`); its answer
    /// (Retry or not) goes to [`Model::agent_reported`].
    ReportError {
        service: ServiceId,
        error: &'static str,
    },
    /// Activate (or deactivate) a cellular context through oFono.
    CellularActivate {
        modem: String,
        context: String,
        active: bool,
    },
    /// Associate the radio with a network.
    WifiConnect {
        ifindex: u32,
        spec: Box<ConnectSpec>,
    },
    /// Leave the network the radio is on (or trying).
    WifiDisconnect { ifindex: u32 },
    /// Scan on the radio (Technology.Scan).
    WifiScan { ifindex: u32 },
    /// Auto-connect leaves the (WiFi or cellular) favourite alone for this
    /// long after a failure; then the daemon calls [`Model::retry_due`].
    RetryAfter {
        service: ServiceId,
        after: std::time::Duration,
    },
    /// Read the kernel's links and addresses afresh (a gadget given back by
    /// tethering offers its service again).
    Resync,
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
    /// A secret is needed and nobody can be asked for it.
    PassphraseRequired(String),
    /// The user (through the agent) gave up.
    OperationAborted(String),
    /// Nothing to do it with (no device).
    NoCarrier(String),
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
            RequestError::PassphraseRequired(_) => "PassphraseRequired",
            RequestError::OperationAborted(_) => "OperationAborted",
            RequestError::NoCarrier(_) => "NoCarrier",
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
            | RequestError::Failed(why)
            | RequestError::PassphraseRequired(why)
            | RequestError::OperationAborted(why)
            | RequestError::NoCarrier(why) => f.write_str(why),
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
    /// Whether connected services are checked for the Internet (main.conf
    /// OnlineCheckMode other than none): ready → online on success.
    pub online_check: bool,
    /// Whether pathman runs its SNTP client at all (main.conf
    /// `EnableTimeSync`, default true; off where another daemon keeps time).
    pub time_sync: bool,
    /// Cellular auto-connects while roaming (`AutoConnectRoamingServices`).
    pub auto_connect_roaming: bool,
    /// Cellular is a metered backup (`MeteredCellular`).
    pub metered_cellular: bool,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            multipath_default: false,
            preferred: heapless::Vec::new(),
            rule_priority_base: caps::RULE_PRIORITY_BASE,
            online_check: false,
            time_sync: true,
            auto_connect_roaming: false,
            metered_cellular: true,
        }
    }
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
    /// On the heap, as many as exist (a service is ~5 KB; a preallocated
    /// array of [`caps::MAX_SERVICES`] would be resident whole), bounded by
    /// [`Model::add_service_capped`].
    pub services: Vec<Service>,
    /// Service ids in the order the user arranged with MoveBefore/MoveAfter.
    pub user_order: heapless::Vec<ServiceId, { caps::MAX_SERVICES }>,
    /// Clients' sessions (SPEC §5), bounded in number; each boxed so the
    /// model stays small enough to live on the stack of the event loop.
    pub sessions: heapless::Vec<Box<Session>, { caps::MAX_SESSIONS }>,
    /// Session policy rules from `<state-dir>/session_policy_local/*.policy`.
    pub policies: Vec<PolicyRule>,
    /// WiFi networks from `<state-dir>/*.config` ([`Model::set_provisioned`]).
    pub provisioned: Vec<crate::config::provision::WifiProvision>,
    /// The registered agent, if any.
    pub agent: Option<Agent>,
    /// Counts the times an online service lost the Internet: every online check is asked
    /// to ping at once then ([`crate::core::tasks`]), so a fault the uplinks share is found
    /// on all of them together.
    pub recheck: u32,
    /// oFono's hardware modems (the cellular technology exists while one does).
    pub modems: heapless::Vec<String, { caps::CELLULAR_MAX_MODEMS }>,
    /// Registered usage counters.
    pub counters: heapless::Vec<Counter, { caps::MAX_COUNTERS }>,
    /// The Clock API's state.
    pub clock: ClockState,
    /// Tethering's switches, bridge and block.
    pub tether: TetherState,
    actions: Vec<Action>,
    /// Outcomes of WiFi connects, for the Connect replies held until then.
    connect_results: Vec<ConnectOutcome>,
    /// The service cap was hit by WiFi networks (said once).
    wifi_capped: bool,
    /// A modem had more internet contexts than services are made for (said once).
    cellular_capped: bool,
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
            services: Vec::new(),
            user_order: heapless::Vec::new(),
            sessions: heapless::Vec::new(),
            policies: Vec::new(),
            provisioned: Vec::new(),
            agent: None,
            recheck: 0,
            modems: heapless::Vec::new(),
            counters: heapless::Vec::new(),
            clock: ClockState::default(),
            tether: TetherState::default(),
            actions: Vec::new(),
            connect_results: Vec::new(),
            wifi_capped: false,
            cellular_capped: false,
        }
    }

    /// Asks for the global settings (switches, clock) to be saved.
    pub fn request_save_global(&mut self) {
        if !self.actions.contains(&Action::SaveGlobal) {
            self.actions.push(Action::SaveGlobal);
        }
    }

    /// Asks for the local time zone to become `zone` (checked already).
    pub fn request_timezone(&mut self, zone: &str) {
        self.actions.push(Action::SetTimezone(zone.to_string()));
    }

    /// Asks for the system clock to be set (Clock.Time, manual updates).
    pub fn request_time(&mut self, ns_since_epoch: u64) {
        self.actions.push(Action::SetTime(ns_since_epoch));
    }

    /// Takes the actions produced since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Adds a service unless [`caps::MAX_SERVICES`] are known (the service
    /// comes back as the error).
    fn add_service_capped(&mut self, svc: Service) -> Result<(), Box<Service>> {
        if self.services.len() >= caps::MAX_SERVICES {
            return Err(Box::new(svc));
        }
        self.services.push(svc);
        Ok(())
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id.as_str() == id)
    }

    /// The service that uses the interface: a radio has a service per
    /// network in range, of which at most one is connecting or connected.
    fn service_idx_by_ifindex(&self, ifindex: u32) -> Option<usize> {
        let active = |s: &Service| {
            s.ifindex == ifindex && !matches!(s.state, ServiceState::Idle | ServiceState::Failure)
        };
        self.services
            .iter()
            .position(active)
            .or_else(|| self.services.iter().position(|s| s.ifindex == ifindex))
    }
}
