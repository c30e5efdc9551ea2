//! Cellular services in the model: made from what oFono says of a modem
//! ([`ModemView`]), connected by activating their context. Once oFono
//! reports the context active with its Settings, the service takes the
//! data interface they name and configures like any other (pathman's DHCP
//! client, or the modem's fixed address); everything after that knows
//! nothing of cellular. Metered: it ranks below wired and WiFi (ConnMan's
//! technology order) and its MPTCP endpoints are backups (`core::plan`).

use super::{
    Action, ConfigSource, Ipv4Assigned, Ipv4Source, Ipv6Assigned, Ipv6Fixed, Model, RequestError,
    Service,
};
use crate::core::tech::cellular::{self, IpSettings, Ipv4Method, Ipv6Settings, ModemView};
use crate::core::types::{DomainList, IfName, ServerList, ServiceState, Technology};

/// What a cellular service knows of its context.
#[derive(Debug, Clone, PartialEq)]
pub struct CellularInfo {
    /// oFono's modem and context objects.
    pub modem: String,
    pub context: String,
    /// The operator's name.
    pub name: String,
    /// 0–100.
    pub strength: u8,
    pub roaming: bool,
    /// oFono's RoamingAllowed for the modem.
    pub roaming_allowed: bool,
    /// pathman asked for the context to be active and waits for it.
    pub activating: bool,
    /// The IPv4 settings of the active context (bound).
    pub settings: Option<IpSettings>,
    /// Its IPv6 settings.
    pub ipv6: Option<Ipv6Settings>,
    /// Consecutive failed activations (each doubles the wait).
    pub failures: u8,
    /// Auto-connect waits for the retry timer (after a failure).
    pub retry_wait: bool,
}

impl Model {
    /// oFono's view of a modem changed (or appeared).
    pub fn cellular_modem(&mut self, view: &ModemView, configs: &mut dyn ConfigSource) {
        if view.hardware
            && !self.modems.contains(&view.path)
            && self.modems.push(view.path.clone()).is_err()
        {
            log::warn!(
                "cellular: modem {} not counted, more than {} (caps::CELLULAR_MAX_MODEMS)",
                view.path,
                crate::caps::CELLULAR_MAX_MODEMS
            );
        }
        let on = self.tech_powered(Technology::Cellular) && !self.offline;
        let mut nets = if on {
            cellular::networks(view)
        } else {
            Vec::new()
        };
        if nets.len() > crate::caps::CELLULAR_MAX_CONTEXTS {
            if !std::mem::replace(&mut self.cellular_capped, true) {
                log::warn!(
                    "{}: {} internet contexts, services for the first {} only (caps::CELLULAR_MAX_CONTEXTS)",
                    view.path,
                    nets.len(),
                    crate::caps::CELLULAR_MAX_CONTEXTS
                );
            }
            nets.truncate(crate::caps::CELLULAR_MAX_CONTEXTS);
        }
        // Services of the modem that it no longer offers go.
        let gone: Vec<usize> = (0..self.services.len())
            .rev()
            .filter(|&i| {
                self.services[i]
                    .cellular
                    .as_ref()
                    .is_some_and(|c| c.modem == view.path)
                    && !nets.iter().any(|n| n.id == self.services[i].id)
            })
            .collect();
        for idx in gone {
            self.cellular_drop(idx, "the modem no longer offers it");
        }
        for n in &nets {
            let idx = match self.index_of(&n.id) {
                Ok(idx) => idx,
                Err(_) => {
                    let mut svc = Service::idle(
                        n.id.clone(),
                        Technology::Cellular,
                        0,
                        IfName::new(),
                        configs.load(&n.id),
                    );
                    svc.cellular = Some(Box::new(CellularInfo {
                        modem: view.path.clone(),
                        context: n.context.clone(),
                        name: String::new(),
                        strength: 0,
                        roaming: false,
                        roaming_allowed: false,
                        activating: false,
                        settings: None,
                        ipv6: None,
                        failures: 0,
                        retry_wait: false,
                    }));
                    if self.add_service_capped(svc).is_err() {
                        log::warn!(
                            "{}: service {} ignored, more than {} services (caps::MAX_SERVICES)",
                            view.path,
                            n.id,
                            crate::caps::MAX_SERVICES
                        );
                        continue;
                    }
                    log::info!("{}: new cellular service {}", view.path, n.id);
                    self.services.len() - 1
                }
            };
            if let Some(c) = self.services[idx].cellular.as_mut() {
                c.name.clone_from(&n.name);
                c.strength = n.strength;
                c.roaming = n.roaming;
                c.roaming_allowed = view.roaming_allowed;
            }
            let Some(ctx) = view.contexts.iter().find(|c| c.path == n.context) else {
                continue;
            };
            match (ctx.active, &ctx.settings, &ctx.ipv6) {
                (false, _, _) => self.cellular_inactive(idx),
                (true, Some(Err(why)), _) | (true, _, Some(Err(why))) => {
                    log::warn!(
                        "{}: context {} is active with unusable settings: {why}",
                        view.path,
                        ctx.path
                    );
                    self.cellular_failed(idx, why.clone());
                }
                (true, None, None) => {} // Settings follow.
                (true, v4, v6) => self.cellular_active(
                    idx,
                    v4.clone().and_then(Result::ok),
                    v6.clone().and_then(Result::ok),
                ),
            }
        }
        self.auto_connect();
    }

    /// oFono left the bus, or the modem went: its services go.
    pub fn cellular_modem_gone(&mut self, modem: &str) {
        self.modems.retain(|m| m != modem);
        let gone: Vec<usize> = (0..self.services.len())
            .rev()
            .filter(|&i| {
                self.services[i]
                    .cellular
                    .as_ref()
                    .is_some_and(|c| c.modem == modem)
            })
            .collect();
        for idx in gone {
            self.cellular_drop(idx, "oFono or the modem is gone");
        }
    }

    fn cellular_drop(&mut self, idx: usize, why: &str) {
        if self.services[idx].state != ServiceState::Idle {
            self.fail_pending_connect(idx, RequestError::Failed(why.into()));
            if self.services[idx].ifindex != 0 {
                self.stop_connect(idx);
            }
        }
        log::info!("cellular: service {} removed: {why}", self.services[idx].id);
        self.services.remove(idx);
    }

    /// The context is active with these settings (IPv4, IPv6 or both): the
    /// service takes the interface they name and configures.
    fn cellular_active(&mut self, idx: usize, v4: Option<IpSettings>, v6: Option<Ipv6Settings>) {
        let svc = &self.services[idx];
        let Some(c) = svc.cellular.as_ref() else {
            return;
        };
        // A deactivation under way (the user's, or the network's: oFono
        // clears Settings, then IPv6.Settings, then Active) is not a new
        // activation: what is left of the settings binds nothing.
        if svc.user_disconnected && !c.activating
            || svc.ifindex != 0 && c.settings.is_some() && v4.is_none()
        {
            return;
        }
        let named = v4
            .as_ref()
            .map(|s| s.interface.clone())
            .or_else(|| v6.as_ref().and_then(|s| s.interface.clone()));
        let Some(interface) = named else {
            let why = "IPv6.Settings without Interface".to_string();
            log::warn!("{}: {why}", c.modem);
            return self.cellular_failed(idx, why);
        };
        let v6 = v6.filter(|s| match &s.interface {
            Some(i) if *i != interface => {
                log::warn!(
                    "{}: IPv6.Settings name {i}, Settings {interface}: the IPv6 settings are ignored",
                    c.modem
                );
                false
            }
            _ => true,
        });
        if c.settings == v4 && svc.ifindex != 0 && svc.ifname == interface {
            if c.ipv6 != v6 {
                self.cellular_ipv6(idx, v6);
                self.update_state(idx);
            }
            return;
        }
        let Some(dev) = self
            .devices
            .iter()
            .find(|d| d.name == interface)
            .map(|d| (d.ifindex, d.name.clone()))
        else {
            log::warn!(
                "{}: the context's Interface {} is not an interface pathman manages (a board config `Technology=cellular` or DEVTYPE wwan)",
                c.modem,
                interface
            );
            let why = format!("Interface {interface} is not managed");
            return self.cellular_failed(idx, why);
        };
        if svc.ifindex != 0 && svc.ifindex != dev.0 {
            // Moved to another interface: start over there.
            self.stop_connect(idx);
        }
        let svc = &mut self.services[idx];
        svc.ifindex = dev.0;
        svc.ifname = dev.1;
        svc.config.favorite = true;
        let method = v4.as_ref().map(|s| s.method.clone());
        if let Some(c) = svc.cellular.as_mut() {
            c.activating = false;
            c.settings = v4;
            c.failures = 0;
            c.retry_wait = false;
        }
        log::info!("{}: context of {} is active", svc.ifname, svc.id);
        self.actions.push(Action::SaveService(svc.id.clone()));
        self.start_connect(idx);
        match method {
            Some(Ipv4Method::Dhcp) => {}
            Some(Ipv4Method::Static { net, gateway, dns }) => {
                // The modem's address (ConnMan's `fixed`): no DHCP.
                let svc = &mut self.services[idx];
                svc.dhcp_running = false;
                let mut nameservers = ServerList::new();
                for a in dns {
                    let _ = nameservers.push(a.into());
                }
                svc.ipv4 = Some(Ipv4Assigned {
                    source: Ipv4Source::Fixed,
                    net,
                    gateway,
                    nameservers,
                    timeservers: ServerList::new(),
                    domains: DomainList::new(),
                });
            }
            // An IPv6-only context: nothing for DHCP to find.
            None => self.services[idx].dhcp_running = false,
        }
        self.cellular_ipv6(idx, v6);
        self.update_state(idx);
    }

    /// The context's IPv6 settings become the service's fixed IPv6.
    fn cellular_ipv6(&mut self, idx: usize, v6: Option<Ipv6Settings>) {
        let svc = &mut self.services[idx];
        let fixed = v6.as_ref().map(|s| {
            let mut nameservers = ServerList::new();
            for a in &s.dns {
                let _ = nameservers.push((*a).into());
            }
            Ipv6Fixed {
                addr: s
                    .address
                    .map(|(addr, prefix_len)| Ipv6Assigned { addr, prefix_len }),
                gateway: s.gateway,
                nameservers,
            }
        });
        if let Some(a) = fixed.as_ref().and_then(|f| f.addr) {
            log::info!(
                "{}: IPv6 address {}/{} from the network",
                svc.ifname,
                a.addr,
                a.prefix_len
            );
        }
        svc.set_ipv6_fixed(fixed);
        if let Some(c) = svc.cellular.as_mut() {
            c.ipv6 = v6;
        }
    }

    /// The context is not active (deactivated, detached or never was).
    fn cellular_inactive(&mut self, idx: usize) {
        let svc = &mut self.services[idx];
        let Some(c) = svc.cellular.as_mut() else {
            return;
        };
        if c.activating {
            return; // Asked for; Active follows.
        }
        c.ipv6 = None;
        if c.settings.take().is_some() || svc.ifindex != 0 {
            log::info!("{}: context of {} is no longer active", svc.ifname, svc.id);
            if svc.state != ServiceState::Idle {
                self.stop_connect(idx);
            }
            let svc = &mut self.services[idx];
            svc.ifindex = 0;
            svc.ifname = IfName::new();
        }
    }

    /// The data interface of a bound service disappeared: the connection
    /// ends (and the context is deactivated); the service stays while the
    /// modem offers it.
    pub(super) fn cellular_link_gone(&mut self, ifindex: u32) {
        if let Some(idx) = self
            .services
            .iter()
            .position(|s| s.ifindex == ifindex && s.cellular.is_some())
        {
            self.cellular_failed(idx, "the data interface is gone".into());
        }
    }

    /// Connect on a cellular service: activate its context.
    pub(super) fn cellular_connect(&mut self, idx: usize) -> Result<(), RequestError> {
        let svc = &mut self.services[idx];
        let Some(c) = svc.cellular.as_mut() else {
            return Err(RequestError::Failed("not a cellular service".into()));
        };
        svc.error = None;
        svc.user_disconnected = false;
        svc.state = ServiceState::Association;
        c.activating = true;
        log::info!("{}: activating the context of {}", c.modem, svc.id);
        self.actions.push(Action::CellularActivate {
            modem: c.modem.clone(),
            context: c.context.clone(),
            active: true,
        });
        Ok(())
    }

    /// Disconnect on a cellular service: deactivate its context.
    pub(super) fn cellular_disconnect(&mut self, idx: usize) {
        let bound = self.services[idx].ifindex != 0;
        if bound {
            self.stop_connect(idx);
        }
        let svc = &mut self.services[idx];
        svc.state = ServiceState::Idle;
        svc.user_disconnected = true;
        let Some(c) = svc.cellular.as_mut() else {
            return;
        };
        c.activating = false;
        c.settings = None;
        c.ipv6 = None;
        svc.ifindex = 0;
        svc.ifname = IfName::new();
        self.actions.push(Action::CellularActivate {
            modem: c.modem.clone(),
            context: c.context.clone(),
            active: false,
        });
    }

    /// oFono refused or did not finish the activation of `context`.
    pub fn cellular_activate_failed(&mut self, context: &str, why: String) {
        let Some(idx) = self.services.iter().position(|s| {
            s.cellular
                .as_ref()
                .is_some_and(|c| c.context == context && c.activating)
        }) else {
            return;
        };
        log::warn!(
            "cellular: activating the context of {} failed: {why}",
            self.services[idx].id
        );
        self.cellular_failed(idx, why);
    }

    fn cellular_failed(&mut self, idx: usize, why: String) {
        if self.services[idx].ifindex != 0 {
            self.stop_connect(idx);
        }
        let svc = &mut self.services[idx];
        svc.state = ServiceState::Failure;
        svc.error = Some("connect-failed");
        svc.ifindex = 0;
        svc.ifname = IfName::new();
        if let Some(c) = svc.cellular.as_mut() {
            c.activating = false;
            c.settings = None;
            c.ipv6 = None;
            c.failures = c.failures.saturating_add(1);
            c.retry_wait = true;
            let after = crate::core::tech::wifi::retry_delay(c.failures);
            log::info!(
                "cellular: {} auto-connects again in {} s",
                svc.id,
                after.as_secs()
            );
            self.actions.push(Action::CellularActivate {
                modem: c.modem.clone(),
                context: c.context.clone(),
                active: false,
            });
            self.actions.push(Action::RetryAfter {
                service: svc.id.clone(),
                after,
            });
        }
        self.fail_pending_connect(idx, RequestError::Failed(why));
    }

    /// Auto-connect of cellular favourites: not while roaming, unless
    /// main.conf's AutoConnectRoamingServices and oFono's RoamingAllowed for
    /// the modem both allow it (ConnMan's rule).
    pub(super) fn cellular_auto_connect(&mut self) {
        let roam_ok = self.settings.auto_connect_roaming;
        let want: Vec<usize> = (0..self.services.len())
            .filter(|&i| {
                let s = &self.services[i];
                s.cellular.as_ref().is_some_and(|c| {
                    !c.activating
                        && (!c.roaming || roam_ok && c.roaming_allowed)
                        // A failed one again once its retry wait is over.
                        && (s.state == ServiceState::Idle
                            || s.state == ServiceState::Failure && c.failures > 0 && !c.retry_wait)
                }) && s.config.favorite
                    && s.config.auto_connect
                    && !s.user_disconnected
                    && self.tech_powered(Technology::Cellular)
            })
            .collect();
        for idx in want {
            let _ = self.cellular_connect(idx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{ConnectOutcome, LinkSeen, ModelSettings};
    use crate::core::tech::cellular::{Context, NetReg, RegStatus, Sim};
    use crate::core::types::{Ipv4Net, ServiceConfig, ServiceId};
    use std::net::Ipv4Addr;

    struct Store;
    impl ConfigSource for Store {
        fn load(&mut self, _: &ServiceId) -> ServiceConfig {
            // Never connected: not a favourite (as the daemon's store says).
            ServiceConfig {
                favorite: false,
                ..ServiceConfig::default()
            }
        }
    }

    const ID: &str = "cellular_001010123456789_context1";

    fn model() -> Model {
        let mut m = Model::new(ModelSettings::default(), false, &[]);
        m.link_changed(
            LinkSeen {
                ifindex: 9,
                name: IfName::try_from("dummy0").unwrap(),
                mac: [2, 0, 0, 0, 0, 9],
                tech: Technology::Cellular,
                up: true,
                carrier: true,
                mtu: 1500,
                lan: false,
                master: None,
            },
            &mut Store,
        );
        m.take_actions();
        m
    }

    fn view(active: bool, settings: Option<Result<IpSettings, String>>) -> ModemView {
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
                active,
                settings,
                ipv6: None,
            }],
            ..ModemView::default()
        }
    }

    fn dhcp() -> Option<Result<IpSettings, String>> {
        Some(Ok(IpSettings {
            interface: IfName::try_from("dummy0").unwrap(),
            method: Ipv4Method::Dhcp,
        }))
    }

    #[test]
    fn connect_activates_and_the_active_context_runs_dhcp_on_its_interface() {
        let mut m = model();
        m.cellular_modem(&view(false, None), &mut Store);
        let s = m.service(ID).expect("service");
        assert_eq!(s.state, ServiceState::Idle);
        assert_eq!(s.cellular.as_ref().unwrap().name, "CellSpike");
        m.connect(ID).unwrap();
        assert!(m.take_actions().contains(&Action::CellularActivate {
            modem: "/phonesim".into(),
            context: "/phonesim/context1".into(),
            active: true
        }));
        // oFono sends Settings before Active; inactive meanwhile changes nothing.
        m.cellular_modem(&view(false, None), &mut Store);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Association);
        m.cellular_modem(&view(true, dhcp()), &mut Store);
        let s = m.service(ID).unwrap();
        assert_eq!(s.ifindex, 9);
        assert!(s.dhcp_running);
        assert_eq!(s.state, ServiceState::Configuration);
        // The held Connect answers once the service is ready (the daemon looks).
        assert!(m.take_connect_results().is_empty());
        // The link's carrier says nothing of the context (oFono does).
        m.link_changed(
            LinkSeen {
                ifindex: 9,
                name: IfName::try_from("dummy0").unwrap(),
                mac: [2, 0, 0, 0, 0, 9],
                tech: Technology::Cellular,
                up: true,
                carrier: false,
                mtu: 1500,
                lan: false,
                master: None,
            },
            &mut Store,
        );
        assert_eq!(m.service(ID).unwrap().ifindex, 9);
        // Deactivated by the network: unbound, addresses gone.
        m.cellular_modem(&view(false, None), &mut Store);
        let s = m.service(ID).unwrap();
        assert_eq!(s.ifindex, 0);
        assert!(!s.dhcp_running);
        assert_ne!(s.state, ServiceState::Ready);
    }

    #[test]
    fn static_settings_give_a_fixed_address_and_detach_removes_the_service() {
        let mut m = model();
        m.cellular_modem(&view(false, None), &mut Store);
        m.connect(ID).unwrap();
        let st = Some(Ok(IpSettings {
            interface: IfName::try_from("dummy0").unwrap(),
            method: Ipv4Method::Static {
                net: Ipv4Net {
                    addr: Ipv4Addr::new(10, 64, 1, 2),
                    prefix_len: 30,
                },
                gateway: Some(Ipv4Addr::new(10, 64, 1, 1)),
                dns: heapless::Vec::new(),
            },
        }));
        m.cellular_modem(&view(true, st), &mut Store);
        let s = m.service(ID).unwrap();
        assert_eq!(s.state, ServiceState::Ready);
        assert!(!s.dhcp_running);
        assert_eq!(s.ipv4.as_ref().unwrap().source, Ipv4Source::Fixed);
        let mut detached = view(true, None);
        detached.attached = false;
        m.cellular_modem(&detached, &mut Store);
        assert!(m.service(ID).is_none());
    }

    fn v6(addr: Option<&str>, gateway: Option<&str>) -> Ipv6Settings {
        Ipv6Settings {
            interface: Some(IfName::try_from("dummy0").unwrap()),
            address: addr.map(|a| (a.parse().unwrap(), 64)),
            gateway: gateway.map(|g| g.parse().unwrap()),
            dns: heapless::Vec::from_slice(&["fd18:1::53".parse().unwrap()]).unwrap(),
        }
    }

    #[test]
    fn ipv6_settings_give_a_fixed_address_the_plan_installs_and_deactivation_removes() {
        use crate::core::netstate::IpPrefix;
        use std::net::{IpAddr, Ipv6Addr};
        let addr: Ipv6Addr = "fd18:1::50".parse().unwrap();
        let gw: Ipv6Addr = "fd18:1::1".parse().unwrap();
        for dual in [true, false] {
            let mut m = model();
            m.settings.multipath_default = true;
            m.cellular_modem(&view(false, None), &mut Store);
            m.connect(ID).unwrap();
            let mut active = view(true, if dual { dhcp() } else { None });
            active.contexts[0].ipv6 = Some(Ok(v6(Some("fd18:1::50"), Some("fd18:1::1"))));
            m.cellular_modem(&active, &mut Store);
            let s = m.service(ID).unwrap();
            // IPv6 alone is an address: ready; DHCP runs only for a dual context.
            assert_eq!(s.state, ServiceState::Ready, "dual {dual}");
            assert_eq!(s.dhcp_running, dual);
            assert_eq!(s.ipv6.first().map(|a| a.addr), Some(addr));
            assert_eq!(s.ipv6_gateway, Some(gw));
            assert!(Model::nameservers(s).contains(&IpAddr::V6("fd18:1::53".parse().unwrap())));
            // The kernel's own (SLAAC) addresses come beside it, never instead.
            let slaac = Ipv6Assigned {
                addr: "2001:db8::2".parse().unwrap(),
                prefix_len: 64,
            };
            m.ipv6_changed(9, &[slaac], None);
            let s = m.service(ID).unwrap();
            assert_eq!(s.ipv6.len(), 2);
            assert_eq!(s.ipv6[0].addr, addr);
            assert_eq!(s.ipv6_gateway, Some(gw));
            let st = crate::core::plan::desired(&m);
            assert!(st
                .addresses
                .iter()
                .any(|a| a.addr == IpAddr::V6(addr) && a.prefix_len == 64 && a.ifindex == 9));
            let default6 = |table: u32| {
                st.routes.iter().any(|r| {
                    r.table == table
                        && r.dst == IpPrefix::default_for(IpAddr::V6(addr))
                        && r.gateway == Some(IpAddr::V6(gw))
                        && r.oif == 9
                })
            };
            assert!(default6(crate::core::plan::TABLE_MAIN), "{st:?}");
            assert!(default6(crate::core::plan::service_table(9)), "{st:?}");
            assert!(st
                .rules
                .iter()
                .any(|r| r.src.is_some_and(|p| p.addr == IpAddr::V6(addr))));
            let eps = crate::core::plan::endpoints(&m, crate::core::mptcp::EndpointFlags::NONE);
            assert!(eps.iter().any(|e| e.addr == IpAddr::V6(addr)), "{eps:?}");
            // The network ends the context the way oFono does (Settings, then
            // IPv6.Settings, then Active): what is left of it binds nothing anew.
            if dual {
                let mut going = active.clone();
                going.contexts[0].settings = None;
                m.take_actions();
                m.cellular_modem(&going, &mut Store);
                assert!(
                    !m.take_actions()
                        .iter()
                        .any(|a| matches!(a, Action::SetIpv6 { enabled: true, .. })),
                    "restarted while going down"
                );
            }
            m.cellular_modem(&view(false, None), &mut Store);
            let s = m.service(ID).unwrap();
            assert!(s.ipv6.is_empty() && s.ipv6_fixed.is_none() && s.ipv6_gateway.is_none());
            let st = crate::core::plan::desired(&m);
            assert!(st.addresses.is_empty() && st.routes.is_empty(), "{st:?}");
        }
    }

    #[test]
    fn after_a_disconnect_the_contexts_last_signals_bind_nothing() {
        let mut m = model();
        m.cellular_modem(&view(false, None), &mut Store);
        m.connect(ID).unwrap();
        let mut active = view(true, dhcp());
        active.contexts[0].ipv6 = Some(Ok(v6(Some("fd18:1::50"), None)));
        m.cellular_modem(&active, &mut Store);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Ready);
        m.disconnect(ID).unwrap();
        // oFono has not answered yet: a signal with the old settings, then half of them.
        m.cellular_modem(&active, &mut Store);
        active.contexts[0].settings = None;
        m.cellular_modem(&active, &mut Store);
        let s = m.service(ID).unwrap();
        assert_eq!((s.state, s.ifindex), (ServiceState::Idle, 0));
        assert!(s.ipv6.is_empty() && s.ipv6_fixed.is_none());
        assert!(crate::core::plan::desired(&m).addresses.is_empty());
    }

    #[test]
    fn a_link_local_or_gatewayless_ipv6_setting_plans_what_it_can() {
        use std::net::IpAddr;
        let mut m = model();
        m.cellular_modem(&view(false, None), &mut Store);
        m.connect(ID).unwrap();
        // Only servers (phonesim's link-local address is dropped by the decoder):
        // nothing to install, the DHCP context goes on as before.
        let mut active = view(true, dhcp());
        active.contexts[0].ipv6 = Some(Ok(v6(None, None)));
        m.cellular_modem(&active, &mut Store);
        let s = m.service(ID).unwrap();
        assert!(s.ipv6.is_empty());
        assert_eq!(s.state, ServiceState::Configuration);
        assert!(crate::core::plan::desired(&m).addresses.is_empty());
        // An address without a router (point-to-point): `default dev`.
        active.contexts[0].ipv6 = Some(Ok(v6(Some("fd18:1::50"), None)));
        m.cellular_modem(&active, &mut Store);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Ready);
        let st = crate::core::plan::desired(&m);
        assert!(
            st.routes
                .iter()
                .any(|r| r.table == crate::core::plan::TABLE_MAIN
                    && r.dst.len == 0
                    && r.dst.addr.is_ipv6()
                    && r.gateway.is_none()
                    && r.metric == crate::core::plan::IPV6_ROUTE_METRIC),
            "{st:?}"
        );
        // IPv6 off for the service: the network's address is not installed.
        let idx = m.index_of(ID).unwrap();
        m.services[idx].config.ipv6 = crate::core::types::Ipv6Method::Off;
        m.services[idx].set_ipv6_fixed(None);
        active.contexts[0].ipv6 = Some(Ok(v6(Some("fd18:1::51"), None)));
        m.cellular_modem(&active, &mut Store);
        let st = crate::core::plan::desired(&m);
        assert!(
            !st.addresses.iter().any(|a| matches!(a.addr, IpAddr::V6(_))),
            "{st:?}"
        );
    }

    #[test]
    fn a_metered_cellular_uplink_is_an_mptcp_backup_unless_main_conf_says_otherwise() {
        use crate::core::mptcp::EndpointFlags;
        for metered in [true, false] {
            let mut m = model();
            m.settings.multipath_default = true;
            m.settings.metered_cellular = metered;
            m.cellular_modem(&view(false, None), &mut Store);
            m.connect(ID).unwrap();
            let st = Some(Ok(IpSettings {
                interface: IfName::try_from("dummy0").unwrap(),
                method: Ipv4Method::Static {
                    net: Ipv4Net {
                        addr: Ipv4Addr::new(10, 64, 1, 2),
                        prefix_len: 30,
                    },
                    gateway: Some(Ipv4Addr::new(10, 64, 1, 1)),
                    dns: heapless::Vec::new(),
                },
            }));
            m.cellular_modem(&view(true, st), &mut Store);
            let eps = crate::core::plan::endpoints(&m, EndpointFlags::NONE);
            assert_eq!(eps.len(), 1, "{eps:?}");
            assert_eq!(eps[0].flags.contains(EndpointFlags::BACKUP), metered);
        }
    }

    #[test]
    fn unusable_settings_or_an_unknown_interface_fail_the_connect() {
        for settings in [
            Some(Err("Settings without Interface".to_string())),
            Some(Ok(IpSettings {
                interface: IfName::try_from("wwan7").unwrap(),
                method: Ipv4Method::Dhcp,
            })),
        ] {
            let mut m = model();
            m.cellular_modem(&view(false, None), &mut Store);
            m.connect(ID).unwrap();
            m.take_actions();
            m.cellular_modem(&view(true, settings), &mut Store);
            let s = m.service(ID).unwrap();
            assert_eq!(s.state, ServiceState::Failure);
            assert_eq!(s.error, Some("connect-failed"));
            assert_eq!(s.ifindex, 0);
            assert!(m.take_actions().contains(&Action::CellularActivate {
                modem: "/phonesim".into(),
                context: "/phonesim/context1".into(),
                active: false
            }));
            assert!(matches!(
                &m.take_connect_results()[..],
                [ConnectOutcome { result: Err(_), .. }]
            ));
        }
    }

    #[test]
    fn a_favourite_auto_connects_but_not_while_roaming() {
        let mut m = model();
        m.cellular_modem(&view(false, None), &mut Store);
        let idx = m.index_of(ID).unwrap();
        m.services[idx].config.favorite = true;
        let mut roaming = view(false, None);
        roaming.netreg.as_mut().unwrap().status = RegStatus::Roaming;
        m.cellular_modem(&roaming, &mut Store);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Idle);
        roaming.roaming_allowed = true;
        m.cellular_modem(&roaming, &mut Store);
        assert_eq!(
            m.service(ID).unwrap().state,
            ServiceState::Idle,
            "AutoConnectRoamingServices is off"
        );
        m.settings.auto_connect_roaming = true;
        m.cellular_modem(&roaming, &mut Store);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Association);
        // oFono refuses: failure, and auto-connect waits for the retry timer.
        m.take_actions();
        m.cellular_activate_failed("/phonesim/context1", "org.ofono.Error.NotAttached".into());
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Failure);
        let acts = m.take_actions();
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::RetryAfter { after, .. } if after.as_secs() == 10)),
            "{acts:?}"
        );
        m.cellular_modem(&roaming, &mut Store);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Failure);
        m.retry_due(ID);
        assert_eq!(m.service(ID).unwrap().state, ServiceState::Association);
    }
}
