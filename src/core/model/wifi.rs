//! WiFi services in the model: made from what wpa_supplicant sees on a
//! radio ([`RadioView`]), connected through the supplicant with a
//! passphrase that is stored or asked of the client's agent. Once the radio
//! is associated the service configures like any other (DHCP, IPv4LL,
//! manual); everything after that knows nothing of WiFi.

use super::{Action, ConfigSource, Model, RequestError, Service};
use crate::caps;
use crate::config::provision::{Eap, WifiProvision};
use crate::core::tech::wifi::{self, Attempt, LinkState, Mode, RadioView, Security, Ssid, Verdict};
use crate::core::types::{Secret, ServiceId, ServiceState, Technology};

/// What a WiFi service knows of its network.
#[derive(Debug, Clone, PartialEq)]
pub struct WifiInfo {
    pub ssid: Ssid,
    pub mode: Mode,
    pub security: Security,
    /// 0–100, from the best BSS.
    pub strength: u8,
    pub frequency: u16,
    /// The network offers WPA3-SAE / WPA2-PSK (both: transition mode).
    pub sae: bool,
    pub psk: bool,
    /// Seen in the radio's last view.
    pub in_range: bool,
    /// The association under way, if any.
    pub attempt: Option<Attempt>,
    /// A secret the agent gave for this attempt: stored once it connects.
    pub offered: Option<Secret>,
    /// Waiting for the agent's answer.
    pub asking: bool,
    /// Consecutive failed connects (each one doubles the wait).
    pub failures: u8,
    /// Auto-connect waits for the retry timer (after a failure).
    pub retry_wait: bool,
    /// Named by the user for a hidden network: connects with `scan_ssid=1`.
    pub hidden: bool,
    /// The hidden service whose Connect this connect answers.
    pub for_hidden: Option<ServiceId>,
    /// The agent was told of a failure (ReportError) and may ask to retry.
    pub reporting: bool,
    /// Provisioned by a `.config` file (its key or EAP credentials).
    pub provision: Option<Box<WifiProvision>>,
    /// The key that failed last (invalid-key): the agent sees it as
    /// PreviousPassphrase the next time it is asked.
    pub previous: Option<Secret>,
}

/// What an agent's RequestInput must ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRequest {
    pub service: ServiceId,
    /// `psk` or `wep`; none for an open network.
    pub passphrase_type: Option<&'static str>,
    /// A hidden network: ask for its Name (or SSID) too.
    pub ask_name: bool,
    /// The passphrase that failed last time (informational).
    pub previous: Option<Secret>,
}

/// How the agent answered.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentAnswer {
    Passphrase(Secret),
    /// For a hidden network: the SSID the user named, and the passphrase
    /// if one was asked for.
    Named {
        ssid: Ssid,
        passphrase: Option<Secret>,
    },
    /// The user cancelled, or the agent gave nothing usable.
    Canceled(String),
    /// No answer in time, or an error reply.
    Failed(String),
}

/// What a WiFi connect needs from the supplicant.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSpec {
    pub ssid: Ssid,
    pub security: Security,
    pub sae: bool,
    pub psk: bool,
    pub passphrase: Option<Secret>,
    pub hidden: bool,
    /// 802.1X credentials (a provisioned EAP network).
    pub eap: Option<Box<Eap>>,
}

/// The outcome of a user's Connect, for its held reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectOutcome {
    pub service: ServiceId,
    pub result: Result<(), RequestError>,
}

impl Model {
    /// The supplicant's view of the radio on `ifindex` changed.
    pub fn wifi_radio(&mut self, ifindex: u32, view: &RadioView, configs: &mut dyn ConfigSource) {
        let Some(dev) = self
            .devices
            .iter()
            .find(|d| d.ifindex == ifindex && d.tech == Technology::Wifi)
            .cloned()
        else {
            return;
        };
        self.note_ap_mode(ifindex, view.ap_mode);
        if !self.tech_powered(Technology::Wifi) || self.offline {
            return;
        }
        if self.tether_ap().is_some_and(|(radio, _)| radio == ifindex) {
            // The radio is (becoming) an access point: no station services.
            return;
        }
        let nets = wifi::networks(&view.bsses);
        for s in self.services.iter_mut().filter(|s| s.ifindex == ifindex) {
            if let Some(w) = s.wifi.as_mut() {
                w.in_range = false;
            }
        }
        for n in &nets {
            let id = wifi::service_id(dev.mac, &n.ssid, n.mode, n.security);
            match self.services.iter_mut().find(|s| s.id == id) {
                Some(s) => {
                    if let Some(w) = s.wifi.as_mut() {
                        w.in_range = true;
                        w.strength = n.strength;
                        w.frequency = n.frequency;
                        w.sae = n.sae;
                        w.psk = n.psk;
                    }
                }
                None => {
                    let mut config = configs.load(&id);
                    // A stored passphrase that cannot be this network's key
                    // (an edited file) is not offered to the supplicant.
                    config.passphrase = config
                        .passphrase
                        .filter(|p| wifi::check_passphrase(n.security, &p.0).is_ok());
                    let mut svc = Service::idle(
                        id.clone(),
                        Technology::Wifi,
                        ifindex,
                        dev.name.clone(),
                        config,
                    );
                    svc.wifi = Some(Box::new(WifiInfo {
                        ssid: n.ssid.clone(),
                        mode: n.mode,
                        security: n.security,
                        strength: n.strength,
                        frequency: n.frequency,
                        sae: n.sae,
                        psk: n.psk,
                        in_range: true,
                        attempt: None,
                        offered: None,
                        asking: false,
                        failures: 0,
                        retry_wait: false,
                        hidden: false,
                        for_hidden: None,
                        reporting: false,
                        provision: None,
                        previous: None,
                    }));
                    if self.add_service_capped(svc).is_err() {
                        let level = if self.wifi_capped {
                            log::Level::Debug
                        } else {
                            log::Level::Warn
                        };
                        self.wifi_capped = true;
                        log::log!(
                            level,
                            "{}: network {} and weaker ones not shown, more than {} services (caps::MAX_SERVICES)",
                            dev.name,
                            wifi::display_name(&n.ssid),
                            caps::MAX_SERVICES
                        );
                        break;
                    }
                    log::debug!("{}: network {id}", dev.name);
                }
            }
        }
        self.provision_services();
        self.adopt_association(ifindex, view, dev.mac);
        // The association in progress, and the one that holds.
        if let Some(idx) = self.services.iter().position(|s| {
            s.ifindex == ifindex && s.wifi.as_ref().is_some_and(|w| w.attempt.is_some())
        }) {
            let verdict = match self.services[idx].wifi.as_mut() {
                Some(w) => w.attempt.as_mut().map(|a| a.step(view)),
                None => None,
            };
            match verdict {
                Some(Verdict::Connected) => self.wifi_associated(idx),
                Some(Verdict::InvalidKey) => self.wifi_failed(idx, "invalid-key"),
                Some(Verdict::Failed) => self.wifi_failed(idx, "connect-failed"),
                _ => {}
            }
        } else if let Some(idx) = self.services.iter().position(|s| {
            s.ifindex == ifindex
                && s.wifi.is_some()
                && matches!(
                    s.state,
                    ServiceState::Configuration | ServiceState::Ready | ServiceState::Online
                )
        }) {
            // Roaming passes through the connecting states with the
            // addresses kept; anything else is the association lost.
            if !view.state.is_connecting() && view.state != LinkState::Completed {
                log::info!(
                    "{}: association with {} lost ({}, reason {})",
                    self.services[idx].ifname,
                    self.services[idx].id,
                    view.state.as_str(),
                    view.disconnect_reason
                );
                self.stop_connect(idx);
            }
        }
        // Out of range and not in use: gone (ConnMan removes such networks).
        let before = self.services.len();
        self.services.retain(|s| {
            s.ifindex != ifindex
                || s.wifi.as_ref().is_none_or(|w| w.in_range)
                || s.state != ServiceState::Idle && s.state != ServiceState::Failure
        });
        if self.services.len() != before {
            log::debug!(
                "{}: {} networks out of range",
                dev.name,
                before - self.services.len()
            );
        }
        self.auto_connect();
    }

    /// The provisioned networks changed (a `.config` file was added, edited
    /// or removed).
    pub fn set_provisioned(&mut self, list: Vec<WifiProvision>) {
        self.provisioned = list;
        self.provision_services();
        self.auto_connect();
    }

    /// Each WiFi service carries its provisioning, if a file names it; a
    /// provisioned network is a favourite (it connects by itself).
    fn provision_services(&mut self) {
        for s in self.services.iter_mut() {
            let Some(w) = s.wifi.as_mut() else { continue };
            let p = self
                .provisioned
                .iter()
                .find(|p| p.ssid == w.ssid && p.security == w.security && w.mode == Mode::Managed);
            match (p, &w.provision) {
                (Some(p), Some(have)) if **have == *p => {}
                (Some(p), _) => {
                    log::info!("{}: {} provisioned by {}", s.ifname, s.id, p.origin);
                    w.provision = Some(Box::new(p.clone()));
                    s.config.favorite = true;
                }
                (None, Some(have)) => {
                    log::info!(
                        "{}: {} no longer provisioned ({})",
                        s.ifname,
                        s.id,
                        have.origin
                    );
                    w.provision = None;
                }
                (None, None) => {}
            }
        }
    }

    /// The radio is already associated (a previous pathman connected it)
    /// and nothing of pathman's is under way on it: the service of that
    /// network takes the association over instead of breaking it.
    fn adopt_association(&mut self, ifindex: u32, view: &RadioView, mac: [u8; 6]) {
        if view.state != LinkState::Completed || self.radio_busy(ifindex) {
            return;
        }
        let Some(bss) = view
            .current_bss
            .as_ref()
            .and_then(|p| view.bsses.iter().find(|b| b.path == *p))
        else {
            return;
        };
        let id = wifi::service_id(mac, &bss.ssid, bss.mode, bss.security());
        let Ok(idx) = self.index_of(&id) else { return };
        let svc = &self.services[idx];
        if svc.state != ServiceState::Idle || svc.user_disconnected || !svc.config.favorite {
            return;
        }
        log::info!(
            "{}: already associated with {id} (a previous pathman connected it); keeping it",
            svc.ifname
        );
        self.start_connect(idx);
    }

    /// wpa_supplicant left the bus (or the radio went): every WiFi service
    /// of the radio goes, as on carrier loss.
    pub fn wifi_radio_lost(&mut self, ifindex: u32) {
        let lost: Vec<ServiceId> = self
            .services
            .iter()
            .filter(|s| s.ifindex == ifindex && s.wifi.is_some())
            .map(|s| s.id.clone())
            .collect();
        for id in lost {
            if let Ok(idx) = self.index_of(&id) {
                if self.services[idx].state != ServiceState::Idle {
                    self.fail_pending_connect(
                        idx,
                        RequestError::Failed("wpa_supplicant is gone".into()),
                    );
                }
                self.services.remove(idx);
            }
        }
    }

    /// Connect on a WiFi service: the passphrase it has, or the agent's.
    pub(super) fn wifi_connect(&mut self, idx: usize) -> Result<(), RequestError> {
        let svc = &mut self.services[idx];
        let Some(w) = svc.wifi.as_mut() else {
            return Err(RequestError::Failed("not a WiFi service".into()));
        };
        if !w.in_range {
            return Err(RequestError::Failed(format!("{} is out of range", svc.id)));
        }
        if w.security == Security::Ieee8021x && w.provision.as_ref().is_none_or(|p| p.eap.is_none())
        {
            return Err(RequestError::NotSupported(format!(
                "{}: an 802.1X network connects only with a provisioning file (<state-dir>/*.config)",
                svc.id
            )));
        }
        svc.error = None;
        svc.user_disconnected = false;
        svc.state = ServiceState::Association;
        w.offered = None;
        w.for_hidden = None;
        let passphrase_type = match w.security {
            Security::Wep => Some("wep"),
            s if s.needs_passphrase() => Some("psk"),
            _ => None,
        };
        if w.ssid.is_empty() {
            // A hidden network: only the user knows its name.
            if self.agent.is_none() {
                svc.state = ServiceState::Idle;
                return Err(RequestError::Failed(format!(
                    "{} is a hidden network: an agent must name it, and none is registered",
                    svc.id
                )));
            }
            w.asking = true;
            log::info!(
                "{}: asking the agent for the name of hidden network {}",
                svc.ifname,
                svc.id
            );
            self.actions.push(Action::RequestInput(InputRequest {
                service: svc.id.clone(),
                passphrase_type,
                ask_name: true,
                previous: None,
            }));
            return Ok(());
        }
        let provisioned_key = w.provision.as_ref().and_then(|p| p.passphrase.clone());
        if w.security.needs_passphrase()
            && svc.config.passphrase.is_none()
            && provisioned_key.is_none()
        {
            if self.agent.is_none() {
                svc.state = ServiceState::Idle;
                return Err(RequestError::PassphraseRequired(format!(
                    "{} needs a passphrase and no agent is registered",
                    svc.id
                )));
            }
            w.asking = true;
            log::info!(
                "{}: asking the agent for the passphrase of {}",
                svc.ifname,
                svc.id
            );
            self.actions.push(Action::RequestInput(InputRequest {
                service: svc.id.clone(),
                passphrase_type,
                ask_name: false,
                previous: w.previous.take(),
            }));
            return Ok(());
        }
        // The file's key wins over a stored one: the administrator changed it.
        let pass = provisioned_key.or_else(|| svc.config.passphrase.clone());
        self.wifi_associate(idx, pass);
        Ok(())
    }

    fn wifi_associate(&mut self, idx: usize, passphrase: Option<Secret>) {
        let svc = &mut self.services[idx];
        let Some(w) = svc.wifi.as_mut() else { return };
        w.attempt = Some(Attempt::default());
        w.asking = false;
        log::info!("{}: associating with {}", svc.ifname, svc.id);
        self.actions.push(Action::WifiConnect {
            ifindex: svc.ifindex,
            spec: Box::new(ConnectSpec {
                ssid: w.ssid.clone(),
                security: w.security,
                sae: w.sae,
                psk: w.psk,
                passphrase,
                hidden: w.hidden || w.provision.as_ref().is_some_and(|p| p.hidden),
                eap: w.provision.as_ref().and_then(|p| p.eap.clone()),
            }),
        });
    }

    /// The agent answered the input request for `id`.
    pub fn agent_answered(
        &mut self,
        id: &str,
        answer: AgentAnswer,
        configs: &mut dyn ConfigSource,
    ) {
        let Ok(idx) = self.index_of(id) else { return };
        let svc = &mut self.services[idx];
        let Some(w) = svc.wifi.as_mut() else { return };
        if !w.asking || svc.state != ServiceState::Association {
            return;
        }
        w.asking = false;
        match answer {
            AgentAnswer::Named { ssid, passphrase } if w.ssid.is_empty() => {
                let security = w.security;
                self.hidden_named(idx, ssid, security, passphrase, configs);
            }
            AgentAnswer::Named { .. } => {
                svc.state = ServiceState::Failure;
                svc.error = Some("invalid-key");
                self.fail_pending_connect(
                    idx,
                    RequestError::Failed("the agent named a network that is not hidden".into()),
                );
            }
            AgentAnswer::Passphrase(_) if w.ssid.is_empty() => {
                svc.state = ServiceState::Idle;
                self.fail_pending_connect(
                    idx,
                    RequestError::InvalidArguments(
                        "the agent gave no Name or SSID for the hidden network".into(),
                    ),
                );
            }
            AgentAnswer::Passphrase(p) => match wifi::check_passphrase(w.security, &p.0) {
                Ok(()) => {
                    w.offered = Some(p.clone());
                    self.wifi_associate(idx, Some(p));
                }
                Err(why) => {
                    log::warn!(
                        "{}: the agent's passphrase for {id} is refused: {why}",
                        svc.ifname
                    );
                    svc.state = ServiceState::Failure;
                    svc.error = Some("invalid-key");
                    self.fail_pending_connect(idx, RequestError::InvalidArguments(why));
                }
            },
            AgentAnswer::Canceled(why) => {
                log::info!(
                    "{}: connecting {id} canceled by the agent: {why}",
                    svc.ifname
                );
                svc.state = ServiceState::Idle;
                svc.user_disconnected = true;
                self.fail_pending_connect(idx, RequestError::OperationAborted(why));
            }
            AgentAnswer::Failed(why) => {
                log::warn!("{}: no passphrase for {id}: {why}", svc.ifname);
                svc.state = ServiceState::Failure;
                svc.error = Some("invalid-key");
                self.fail_pending_connect(idx, RequestError::Failed(why));
            }
        }
    }

    /// The radio is associated: the key worked, the service configures.
    fn wifi_associated(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        let Some(w) = svc.wifi.as_mut() else { return };
        w.attempt = None;
        w.failures = 0;
        w.retry_wait = false;
        w.previous = None;
        let mut save = !svc.config.favorite;
        svc.config.favorite = true;
        if let Some(p) = w.offered.take() {
            svc.config.passphrase = Some(p);
            save = true;
        }
        log::info!("{}: associated with {}", svc.ifname, svc.id);
        if save {
            self.actions.push(Action::SaveService(svc.id.clone()));
        }
        let hidden = w.for_hidden.clone();
        self.start_connect(idx);
        if let Some(h) = hidden {
            self.connect_results.push(ConnectOutcome {
                service: h,
                result: Ok(()),
            });
        }
        self.connect_results.push(ConnectOutcome {
            service: self.services[idx].id.clone(),
            result: Ok(()),
        });
    }

    fn wifi_failed(&mut self, idx: usize, error: &'static str) {
        let svc = &mut self.services[idx];
        let Some(w) = svc.wifi.as_mut() else { return };
        w.attempt = None;
        // A key the agent gave just now: the agent hears why, and may retry.
        let offered = w.offered.take();
        let report = offered.is_some() && error == "invalid-key";
        if error == "invalid-key" {
            w.previous = offered.or_else(|| svc.config.passphrase.clone());
        }
        w.failures = w.failures.saturating_add(1);
        w.retry_wait = true;
        let after = wifi::retry_delay(w.failures);
        log::warn!(
            "{}: connecting {} failed: {error} (auto-connect again in {} s)",
            svc.ifname,
            svc.id,
            after.as_secs()
        );
        self.actions.push(Action::RetryAfter {
            service: svc.id.clone(),
            after,
        });
        if error == "invalid-key" && svc.config.passphrase.take().is_some() {
            // Asked again on the next connect (ConnMan forgets it too).
            self.actions.push(Action::SaveService(svc.id.clone()));
        }
        svc.state = ServiceState::Failure;
        svc.error = Some(error);
        let ifindex = svc.ifindex;
        self.actions.push(Action::WifiDisconnect { ifindex });
        if report && self.agent.is_some() {
            let svc = &mut self.services[idx];
            if let Some(w) = svc.wifi.as_mut() {
                w.reporting = true;
            }
            self.actions.push(Action::ReportError {
                service: svc.id.clone(),
                error,
            });
        } else {
            self.fail_pending_connect(idx, RequestError::Failed(error.into()));
        }
    }

    /// The agent answered ReportError for `id`: Retry connects again
    /// (asking for the key again), anything else ends the Connect.
    pub fn agent_reported(&mut self, id: &str, retry: bool) {
        let Ok(idx) = self.index_of(id) else { return };
        let svc = &mut self.services[idx];
        let Some(w) = svc.wifi.as_mut() else { return };
        if !w.reporting {
            return;
        }
        w.reporting = false;
        let error = svc.error.unwrap_or("connect-failed");
        if !retry || svc.state != ServiceState::Failure {
            return self.fail_pending_connect(idx, RequestError::Failed(error.into()));
        }
        log::info!("{}: the agent asks to retry {id}", svc.ifname);
        let hidden = w.for_hidden.clone();
        let res = self.wifi_connect(idx);
        if let Some(w) = self.services[idx].wifi.as_mut() {
            w.for_hidden = hidden;
        }
        if let Err(e) = res {
            self.fail_pending_connect(idx, e);
        }
    }

    pub(super) fn fail_pending_connect(&mut self, idx: usize, e: RequestError) {
        if let Some(h) = self.services[idx]
            .wifi
            .as_mut()
            .and_then(|w| w.for_hidden.take())
        {
            self.connect_results.push(ConnectOutcome {
                service: h,
                result: Err(e.clone()),
            });
        }
        self.connect_results.push(ConnectOutcome {
            service: self.services[idx].id.clone(),
            result: Err(e),
        });
    }

    /// The agent named the hidden network `idx` stands for: the network of
    /// that SSID connects (found by a scan naming it, `scan_ssid=1`) and
    /// answers the hidden service's Connect; the hidden one stays idle.
    fn hidden_named(
        &mut self,
        idx: usize,
        ssid: Ssid,
        security: Security,
        passphrase: Option<Secret>,
        configs: &mut dyn ConfigSource,
    ) {
        let svc = &mut self.services[idx];
        svc.state = ServiceState::Idle;
        let hidden_id = svc.id.clone();
        let ifindex = svc.ifindex;
        let ifname = svc.ifname.clone();
        let refuse = |m: &mut Model, e: RequestError| {
            log::warn!("{ifname}: hidden network {hidden_id}: {e:?}");
            m.fail_pending_connect(idx, e);
        };
        if ssid.is_empty() || wifi::is_all_nul(&ssid) {
            return refuse(
                self,
                RequestError::InvalidArguments("the agent named no network".into()),
            );
        }
        let passphrase = match (security.needs_passphrase(), passphrase) {
            (true, None) => {
                return refuse(
                    self,
                    RequestError::InvalidArguments("the agent gave no passphrase".into()),
                )
            }
            (true, Some(p)) => match wifi::check_passphrase(security, &p.0) {
                Ok(()) => Some(p),
                Err(why) => return refuse(self, RequestError::InvalidArguments(why)),
            },
            (false, _) => None,
        };
        let Some(mac) = self
            .devices
            .iter()
            .find(|d| d.ifindex == ifindex)
            .map(|d| d.mac)
        else {
            return refuse(self, RequestError::Failed("the radio is gone".into()));
        };
        let id = wifi::service_id(mac, &ssid, Mode::Managed, security);
        let real = match self.index_of(&id) {
            Ok(i) => i,
            Err(_) => {
                let (sae, psk) = {
                    let w = self.services[idx].wifi.as_ref();
                    (w.is_some_and(|w| w.sae), w.is_some_and(|w| w.psk))
                };
                let mut svc = Service::idle(
                    id.clone(),
                    Technology::Wifi,
                    ifindex,
                    ifname.clone(),
                    configs.load(&id),
                );
                svc.wifi = Some(Box::new(WifiInfo {
                    ssid: ssid.clone(),
                    mode: Mode::Managed,
                    security,
                    strength: self.services[idx].wifi.as_ref().map_or(0, |w| w.strength),
                    frequency: 0,
                    sae,
                    psk,
                    in_range: true,
                    attempt: None,
                    offered: None,
                    asking: false,
                    failures: 0,
                    retry_wait: false,
                    hidden: true,
                    for_hidden: None,
                    reporting: false,
                    provision: None,
                    previous: None,
                }));
                if self.add_service_capped(svc).is_err() {
                    return refuse(
                        self,
                        RequestError::Failed(format!(
                            "more than {} services (caps::MAX_SERVICES)",
                            caps::MAX_SERVICES
                        )),
                    );
                }
                self.services.len() - 1
            }
        };
        if self.radio_busy(ifindex) {
            return refuse(
                self,
                RequestError::Failed("the radio is connecting another network".into()),
            );
        }
        let svc = &mut self.services[real];
        svc.error = None;
        svc.user_disconnected = false;
        svc.state = ServiceState::Association;
        if let Some(w) = svc.wifi.as_mut() {
            w.hidden = true;
            w.offered = passphrase.clone();
            w.for_hidden = Some(hidden_id);
        }
        log::info!("{}: hidden network named: {id}", svc.ifname);
        let pass = passphrase.or_else(|| svc.config.passphrase.clone());
        self.wifi_associate(real, pass);
    }

    /// The supplicant refused or timed out the connect on `ifindex`.
    pub fn wifi_connect_failed(&mut self, ifindex: u32, why: &str) {
        if let Some(idx) = self.services.iter().position(|s| {
            s.ifindex == ifindex && s.wifi.as_ref().is_some_and(|w| w.attempt.is_some())
        }) {
            log::warn!("{}: {why}", self.services[idx].ifname);
            self.wifi_failed(idx, "connect-failed");
        }
    }

    /// Technology.Scan on wifi: a scan on every powered radio; the radios
    /// asked (none: nothing to scan with).
    pub fn wifi_scan(&mut self) -> Result<Vec<u32>, RequestError> {
        if !self.tech_powered(Technology::Wifi) || self.offline {
            return Err(RequestError::NotSupported(
                "scanning while WiFi is off".into(),
            ));
        }
        let radios: Vec<u32> = self
            .devices
            .iter()
            .filter(|d| d.tech == Technology::Wifi)
            .map(|d| d.ifindex)
            .collect();
        if radios.is_empty() {
            return Err(RequestError::NoCarrier("no WiFi device".into()));
        }
        for &ifindex in &radios {
            self.actions.push(Action::WifiScan { ifindex });
        }
        Ok(radios)
    }

    /// The service a Connect on `id` waits for: the named network of a
    /// hidden one, else `id` itself.
    pub fn connect_target<'a>(&'a self, id: &'a str) -> &'a str {
        self.services
            .iter()
            .find(|s| {
                s.wifi
                    .as_ref()
                    .is_some_and(|w| w.for_hidden.as_deref() == Some(id))
            })
            .map_or(id, |s| s.id.as_str())
    }

    /// The outcomes of Connect calls since the last call.
    pub fn take_connect_results(&mut self) -> Vec<ConnectOutcome> {
        std::mem::take(&mut self.connect_results)
    }

    /// Whether the radio of this service already has a service on the way
    /// or connected (only one network per radio at a time).
    pub(super) fn radio_busy(&self, ifindex: u32) -> bool {
        self.services.iter().any(|s| {
            s.ifindex == ifindex
                && s.wifi.is_some()
                && s.state != ServiceState::Idle
                && s.state != ServiceState::Failure
        })
    }

    /// The retry wait of `id` after a failure is over: auto-connect may try
    /// it again.
    pub fn retry_due(&mut self, id: &str) {
        let Ok(idx) = self.index_of(id) else { return };
        if let Some(w) = self.services[idx].wifi.as_mut() {
            w.retry_wait = false;
        }
        if let Some(c) = self.services[idx].cellular.as_mut() {
            c.retry_wait = false;
        }
        self.auto_connect();
    }

    /// Auto-connect of WiFi favourites, strongest first, one per radio.
    pub(super) fn wifi_auto_connect(&mut self) {
        let mut order: Vec<usize> = (0..self.services.len())
            .filter(|&i| {
                let s = &self.services[i];
                s.wifi.as_ref().is_some_and(|w| {
                    w.in_range
                        && !w.retry_wait
                        && (!w.security.needs_passphrase()
                            || s.config.passphrase.is_some()
                            || w.provision.as_ref().is_some_and(|p| p.passphrase.is_some()))
                        && (w.security != Security::Ieee8021x
                            || w.provision.as_ref().is_some_and(|p| p.eap.is_some()))
                        // A failed one again once its retry wait is over.
                        && (s.state == ServiceState::Idle
                            || s.state == ServiceState::Failure && w.failures > 0)
                }) && s.config.favorite
                    && s.config.auto_connect
                    && !s.user_disconnected
            })
            .collect();
        crate::sort::sort_by_key(&mut order, |&i| {
            std::cmp::Reverse(
                self.services[i]
                    .wifi
                    .as_ref()
                    .map(|w| w.strength)
                    .unwrap_or(0),
            )
        });
        for i in order {
            if self.radio_busy(self.services[i].ifindex) {
                continue;
            }
            log::info!(
                "{}: auto-connecting {}",
                self.services[i].ifname,
                self.services[i].id
            );
            let _ = self.wifi_connect(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Action, Agent, DhcpConfig, LinkSeen, ModelSettings};
    use crate::core::tech::wifi::{Bss, KeyMgmt};
    use crate::core::types::{Ipv4Net, ServerList, ServiceConfig};
    use std::net::Ipv4Addr;

    /// WiFi networks never connected are not favourites (as the daemon's store says).
    struct Store;
    impl ConfigSource for Store {
        fn load(&mut self, id: &ServiceId) -> ServiceConfig {
            ServiceConfig {
                favorite: !id.starts_with("wifi_"),
                ..ServiceConfig::default()
            }
        }
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn radio() -> Model {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        m.link_changed(
            LinkSeen {
                ifindex: 7,
                name: "wlan0".try_into().unwrap(),
                mac: MAC,
                tech: Technology::Wifi,
                up: true,
                carrier: false,
                mtu: 1500,
                lan: false,
                master: None,
            },
            &mut Store,
        );
        m.take_actions();
        m
    }

    fn bss(n: u8, ssid: &[u8], signal: i16, psk: bool) -> Bss {
        Bss {
            path: format!("/fi/w1/wpa_supplicant1/Interfaces/1/BSSs/{n}"),
            ssid: Ssid::from_slice(ssid).unwrap(),
            bssid: [2, 0, 0, 0, 9, n],
            mode: Mode::Managed,
            signal,
            frequency: 2412,
            privacy: psk,
            keys: KeyMgmt {
                psk,
                ..Default::default()
            },
        }
    }

    fn view(state: LinkState, bsses: &[Bss]) -> RadioView {
        RadioView {
            state,
            bsses: bsses.to_vec(),
            ..Default::default()
        }
    }

    fn psk_id() -> ServiceId {
        wifi::service_id(MAC, b"pm-psk", Mode::Managed, Security::Psk)
    }

    fn connect_with_agent(m: &mut Model, air: &[Bss], pass: &str) {
        m.agent = Some(Agent {
            owner: ":1.5".into(),
            path: "/agent".into(),
        });
        m.connect(&psk_id()).unwrap();
        let acts = m.take_actions();
        assert!(
            matches!(&acts[..], [Action::RequestInput(r)] if r.service == psk_id() && r.passphrase_type == Some("psk") && !r.ask_name),
            "{acts:?}"
        );
        assert_eq!(
            m.service(&psk_id()).unwrap().state,
            ServiceState::Association
        );
        m.agent_answered(
            &psk_id(),
            AgentAnswer::Passphrase(Secret(pass.into())),
            &mut Store,
        );
        let acts = m.take_actions();
        match &acts[..] {
            [Action::WifiConnect { ifindex: 7, spec }] => {
                assert_eq!(spec.passphrase.as_ref().unwrap().0, pass);
                assert_eq!(spec.ssid.as_slice(), b"pm-psk");
            }
            other => panic!("{other:?}"),
        }
        for s in [
            LinkState::Associating,
            LinkState::Associated,
            LinkState::FourWayHandshake,
        ] {
            m.wifi_radio(7, &view(s, air), &mut Store);
        }
    }

    #[test]
    fn networks_become_services_sorted_by_strength_and_leave_out_of_range() {
        let mut m = radio();
        let air = [
            bss(1, b"pm-psk", -40, true),
            bss(2, b"pm-open", -60, false),
            bss(3, b"pm-psk", -70, true),
        ];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        assert_eq!(m.services.len(), 2);
        let s = m.service(&psk_id()).unwrap();
        assert_eq!(s.wifi.as_ref().unwrap().strength, 80);
        assert!(!s.config.favorite, "never connected: not a favourite");
        assert_eq!(
            s.state,
            ServiceState::Idle,
            "not a favourite: no auto-connect"
        );
        m.wifi_radio(7, &view(LinkState::Disconnected, &air[1..2]), &mut Store);
        assert!(
            m.service(&psk_id()).is_none(),
            "out of range and idle: gone"
        );
    }

    #[test]
    fn an_agent_passphrase_connects_and_is_saved_only_after_success() {
        let mut m = radio();
        let air = [bss(1, b"pm-psk", -40, true)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        connect_with_agent(&mut m, &air, "correct horse");
        assert!(m.service(&psk_id()).unwrap().config.passphrase.is_none());
        m.wifi_radio(7, &view(LinkState::Completed, &air), &mut Store);
        let s = m.service(&psk_id()).unwrap();
        assert_eq!(s.state, ServiceState::Configuration);
        assert!(s.dhcp_running, "associated: DHCP as on any link");
        assert!(s.config.favorite);
        assert_eq!(s.config.passphrase.as_ref().unwrap().0, "correct horse");
        assert!(m.take_actions().contains(&Action::SaveService(psk_id())));
        m.dhcp_bound(
            7,
            DhcpConfig {
                net: Ipv4Net {
                    addr: Ipv4Addr::new(192, 168, 50, 10),
                    prefix_len: 24,
                },
                gateway: Some(Ipv4Addr::new(192, 168, 50, 1)),
                nameservers: ServerList::new(),
                timeservers: ServerList::new(),
                domains: Default::default(),
            },
        );
        assert_eq!(m.service(&psk_id()).unwrap().state, ServiceState::Ready);
        // Roaming to another BSS of the network keeps the service and its address.
        let roam = [bss(1, b"pm-psk", -80, true), bss(2, b"pm-psk", -30, true)];
        for s in [
            LinkState::Authenticating,
            LinkState::Associating,
            LinkState::Completed,
        ] {
            m.wifi_radio(7, &view(s, &roam), &mut Store);
        }
        let s = m.service(&psk_id()).unwrap();
        assert_eq!(s.state, ServiceState::Ready);
        assert!(s.ipv4.is_some());
        assert_eq!(s.wifi.as_ref().unwrap().strength, 90);
        // Losing the association drops the addresses, as carrier loss does.
        m.wifi_radio(7, &view(LinkState::Disconnected, &roam), &mut Store);
        let s = m.service(&psk_id()).unwrap();
        assert_ne!(s.state, ServiceState::Ready);
        assert!(s.ipv4.is_none());
    }

    #[test]
    fn a_wrong_passphrase_fails_with_invalid_key_and_is_not_stored() {
        let mut m = radio();
        let air = [bss(1, b"pm-psk", -40, true)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        connect_with_agent(&mut m, &air, "wrong horse");
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        let s = m.service(&psk_id()).unwrap();
        assert_eq!(s.state, ServiceState::Failure);
        assert_eq!(s.error, Some("invalid-key"));
        assert!(s.config.passphrase.is_none());
        // The agent hears why first; the Connect ends when it does not retry.
        assert!(m.take_connect_results().is_empty());
        assert!(m.take_actions().contains(&Action::ReportError {
            service: psk_id(),
            error: "invalid-key"
        }));
        m.agent_reported(&psk_id(), false);
        let out = m.take_connect_results();
        assert!(
            matches!(&out[..], [ConnectOutcome { result: Err(RequestError::Failed(e)), .. }] if e == "invalid-key")
        );
        m.agent_reported(&psk_id(), true);
        assert!(m.take_actions().is_empty(), "a second answer did something");
        // The next connect asks the agent again.
        m.connect(&psk_id()).unwrap();
        assert!(matches!(
            &m.take_actions()[..],
            [.., Action::RequestInput(_)]
        ));
    }

    #[test]
    fn a_disconnect_while_the_agent_asks_cancels_the_prompt_and_the_connect() {
        let mut m = radio();
        let air = [bss(1, b"pm-psk", -40, true)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        m.agent = Some(Agent {
            owner: ":1.5".into(),
            path: "/agent".into(),
        });
        m.connect(&psk_id()).unwrap();
        assert!(matches!(
            &m.take_actions()[..],
            [.., Action::RequestInput(_)]
        ));
        m.disconnect(&psk_id()).unwrap();
        let acts = m.take_actions();
        assert!(acts.contains(&Action::CancelInput { service: psk_id() }));
        assert!(matches!(
            &m.take_connect_results()[..],
            [ConnectOutcome {
                result: Err(RequestError::OperationAborted(_)),
                ..
            }]
        ));
        let s = m.service(&psk_id()).unwrap();
        assert_eq!(s.state, ServiceState::Idle);
        // The agent's late answer connects nothing.
        m.agent_answered(
            &psk_id(),
            AgentAnswer::Passphrase(Secret("correct horse".into())),
            &mut Store,
        );
        assert!(m
            .take_actions()
            .iter()
            .all(|a| !matches!(a, Action::WifiConnect { .. })));
        // A disconnect while associating (no prompt) sends no Cancel.
        connect_with_agent(&mut m, &air, "correct horse");
        m.disconnect(&psk_id()).unwrap();
        assert!(!m
            .take_actions()
            .iter()
            .any(|a| matches!(a, Action::CancelInput { .. })));
    }

    #[test]
    fn bad_agent_answers_change_nothing_stored() {
        let mut m = radio();
        let air = [bss(1, b"pm-psk", -40, true)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        m.agent = Some(Agent {
            owner: ":1.5".into(),
            path: "/agent".into(),
        });
        for answer in [
            AgentAnswer::Passphrase(Secret("abc".into())),
            AgentAnswer::Passphrase(Secret("x".repeat(200))),
            AgentAnswer::Canceled("no".into()),
            AgentAnswer::Failed("timeout".into()),
        ] {
            m.clear_error(&psk_id()).unwrap();
            m.connect(&psk_id()).unwrap();
            m.take_actions();
            m.agent_answered(&psk_id(), answer, &mut Store);
            assert!(m
                .take_actions()
                .iter()
                .all(|a| !matches!(a, Action::WifiConnect { .. })));
            assert!(m.service(&psk_id()).unwrap().config.passphrase.is_none());
            assert!(matches!(
                &m.take_connect_results()[..],
                [ConnectOutcome { result: Err(_), .. }]
            ));
        }
        // No agent: a clear error, nothing started.
        m.agent = None;
        m.clear_error(&psk_id()).unwrap();
        assert!(matches!(
            m.connect(&psk_id()),
            Err(RequestError::PassphraseRequired(_))
        ));
    }

    #[test]
    fn favourites_auto_connect_strongest_first_and_remove_forgets() {
        let mut m = radio();
        let air = [bss(1, b"pm-psk", -40, true), bss(2, b"pm-open", -30, false)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        let open = wifi::service_id(MAC, b"pm-open", Mode::Managed, Security::None);
        for id in [&psk_id(), &open] {
            let idx = m.index_of(id).unwrap();
            m.services[idx].config.favorite = true;
        }
        let idx = m.index_of(&psk_id()).unwrap();
        m.services[idx].config.passphrase = Some(Secret("correct horse".into()));
        m.auto_connect();
        let acts = m.take_actions();
        let connects: Vec<_> = acts
            .iter()
            .filter_map(|a| match a {
                Action::WifiConnect { spec, .. } => Some(spec.ssid.to_vec()),
                _ => None,
            })
            .collect();
        assert_eq!(
            connects,
            vec![b"pm-open".to_vec()],
            "one network per radio, the strongest"
        );
        m.remove(&psk_id()).unwrap();
        let s = m.service(&psk_id()).unwrap();
        assert!(s.config.passphrase.is_none() && !s.config.favorite);
        assert!(m.take_actions().contains(&Action::ForgetService(psk_id())));
    }

    #[test]
    fn a_failed_favourite_is_auto_connected_again_after_a_growing_wait() {
        let mut m = radio();
        let air = [bss(2, b"pm-open", -30, false)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        let open = wifi::service_id(MAC, b"pm-open", Mode::Managed, Security::None);
        let idx = m.index_of(&open).unwrap();
        m.services[idx].config.favorite = true;
        let mut waits = Vec::new();
        for round in 0..3 {
            m.auto_connect();
            let acts = m.take_actions();
            assert!(
                acts.iter()
                    .any(|a| matches!(a, Action::WifiConnect { ifindex: 7, .. })),
                "round {round}: {acts:?}"
            );
            m.wifi_connect_failed(7, "association timed out");
            let acts = m.take_actions();
            let wait = acts.iter().find_map(|a| match a {
                Action::RetryAfter { service, after } if *service == open => Some(*after),
                _ => None,
            });
            waits.push(wait.expect("a retry wait").as_secs());
            let s = m.service(&open).unwrap();
            assert_eq!(s.state, ServiceState::Failure);
            assert_eq!(s.error, Some("connect-failed"));
            // Nothing tries it while the wait runs, whatever the radio says.
            m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
            m.auto_connect();
            assert!(
                !m.take_actions()
                    .iter()
                    .any(|a| matches!(a, Action::WifiConnect { .. })),
                "round {round}: tried again before the wait was over"
            );
            m.retry_due(&open);
        }
        assert_eq!(waits, [10, 20, 40]);
        // A user who disconnects it stops the retries; a success resets them.
        // (the last wait was over: it is associating again)
        m.disconnect(&open).unwrap();
        m.wifi_connect_failed(7, "association timed out");
        m.take_actions();
        m.retry_due(&open);
        assert!(!m
            .take_actions()
            .iter()
            .any(|a| matches!(a, Action::WifiConnect { .. })));
        m.connect(&open).unwrap();
        m.take_actions();
        m.wifi_radio(7, &view(LinkState::Associating, &air), &mut Store);
        m.wifi_radio(7, &view(LinkState::Completed, &air), &mut Store);
        let w = m.service(&open).unwrap().wifi.as_ref().unwrap();
        assert_eq!((w.failures, w.retry_wait), (0, false));
    }

    #[test]
    fn an_agent_that_retries_is_asked_again_within_the_same_connect() {
        let mut m = radio();
        let air = [bss(1, b"pm-psk", -40, true)];
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        connect_with_agent(&mut m, &air, "wrong horse");
        m.wifi_radio(7, &view(LinkState::Disconnected, &air), &mut Store);
        m.take_actions();
        m.agent_reported(&psk_id(), true);
        assert!(m.take_connect_results().is_empty(), "the Connect ended");
        let acts = m.take_actions();
        assert!(
            matches!(&acts[..], [Action::RequestInput(r)]
                if r.service == psk_id()
                    && r.previous == Some(Secret("wrong horse".into()))),
            "the failed key is not the PreviousPassphrase: {acts:?}"
        );
        let s = m.service(&psk_id()).unwrap();
        assert_eq!((s.state, s.error), (ServiceState::Association, None));
    }

    #[test]
    fn a_hidden_network_named_by_the_agent_connects_as_its_ssid() {
        let mut m = radio();
        let beacon = bss(4, b"", -35, true);
        m.wifi_radio(
            7,
            &view(LinkState::Disconnected, std::slice::from_ref(&beacon)),
            &mut Store,
        );
        let hidden = wifi::service_id(MAC, b"", Mode::Managed, Security::Psk);
        assert!(hidden.contains("_hidden_managed_psk"), "{hidden}");
        assert!(m.service(&hidden).is_some(), "no hidden service");
        // Without an agent nobody can name it.
        assert!(matches!(m.connect(&hidden), Err(RequestError::Failed(_))));
        assert_eq!(m.service(&hidden).unwrap().state, ServiceState::Idle);
        m.agent = Some(Agent {
            owner: ":1.5".into(),
            path: "/agent".into(),
        });
        m.connect(&hidden).unwrap();
        let acts = m.take_actions();
        assert!(
            matches!(&acts[..], [Action::RequestInput(r)]
                if r.service == hidden && r.ask_name && r.passphrase_type == Some("psk")),
            "{acts:?}"
        );
        // A name without the passphrase a PSK network needs: refused, nothing made.
        let ssid = Ssid::from_slice(b"pm-hidden").unwrap();
        m.agent_answered(
            &hidden,
            AgentAnswer::Named {
                ssid: ssid.clone(),
                passphrase: None,
            },
            &mut Store,
        );
        let out = m.take_connect_results();
        assert!(
            matches!(&out[..], [o] if o.service == hidden && o.result.is_err()),
            "{out:?}"
        );
        let real = wifi::service_id(MAC, b"pm-hidden", Mode::Managed, Security::Psk);
        assert!(m.service(&real).is_none());
        m.connect(&hidden).unwrap();
        m.take_actions();
        m.agent_answered(
            &hidden,
            AgentAnswer::Named {
                ssid,
                passphrase: Some(Secret("correct horse".into())),
            },
            &mut Store,
        );
        match &m.take_actions()[..] {
            [Action::WifiConnect { ifindex: 7, spec }] => {
                assert_eq!(spec.ssid.as_slice(), b"pm-hidden");
                assert!(spec.hidden, "no scan_ssid for a hidden network");
                assert_eq!(spec.passphrase.as_ref().unwrap().0, "correct horse");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.service(&hidden).unwrap().state, ServiceState::Idle);
        assert_eq!(m.service(&real).unwrap().state, ServiceState::Association);
        // The supplicant finds it by name (a second BSS object) and associates.
        let named = bss(5, b"pm-hidden", -35, true);
        let air = [beacon, named];
        for st in [
            LinkState::Associating,
            LinkState::FourWayHandshake,
            LinkState::Completed,
        ] {
            m.wifi_radio(7, &view(st, &air), &mut Store);
        }
        let out = m.take_connect_results();
        for id in [&hidden, &real] {
            assert!(
                out.iter().any(|o| o.service == *id && o.result.is_ok()),
                "{id}: {out:?}"
            );
        }
        assert_eq!(m.connect_target(&hidden), real.as_str());
        let s = m.service(&real).unwrap();
        assert_eq!(s.state, ServiceState::Configuration);
        assert!(s.config.favorite);
        assert_eq!(s.config.passphrase.as_ref().unwrap().0, "correct horse");
        assert!(m
            .take_actions()
            .contains(&Action::SaveService(real.clone())));
    }

    #[test]
    fn the_supplicant_leaving_removes_the_radios_services() {
        let mut m = radio();
        m.wifi_radio(
            7,
            &view(LinkState::Disconnected, &[bss(1, b"pm-psk", -40, true)]),
            &mut Store,
        );
        assert_eq!(m.services.len(), 1);
        m.wifi_radio_lost(7);
        assert!(m.services.is_empty());
    }
}
