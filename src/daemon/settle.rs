//! What the loop does with each event, and the settle step after it.

use std::net::{IpAddr, Ipv6Addr};

use crate::config::store::{write_atomic, GlobalSettings};
use crate::core::model::{Action, ConfigSource, DhcpConfig, Ipv6Assigned};
use crate::core::mptcp::{limits_for, plan as mptcp_plan, DesiredEndpoint, EndpointOp};
use crate::core::netstate::{NetState, Op};
use crate::core::types::{MptcpLink, Name, ServerList, ServiceConfig, ServiceId};
use crate::core::{plan, reconcile, session};
use crate::dhcp::client::Lease;
use crate::dhcp::driver::{self, DhcpEvent, DhcpEventKind};
use crate::edge::rtnl::{KernelEvent, RtnlError};
use crate::edge::sysfs;
use std::time::SystemTime;

use super::devices::Ipv6View;
use super::Daemon;

/// RTPROT_RA: routes the kernel learned from router advertisements.
const RTPROT_RA: u8 = 9;

/// Service configurations come from the state directory.
struct StoreConfigs<'a> {
    store: &'a crate::config::store::Store,
    default_mptcp_link: MptcpLink,
}

impl ConfigSource for StoreConfigs<'_> {
    fn load(&mut self, id: &ServiceId) -> ServiceConfig {
        // Warnings were logged where they arose; a bad file yields defaults.
        match self.store.load_service(id).0 {
            Some(record) => record.config,
            None => ServiceConfig {
                mptcp_link: self.default_mptcp_link,
                ..ServiceConfig::default()
            },
        }
    }
}

fn dhcp_config(lease: &Lease) -> DhcpConfig {
    let mut nameservers = ServerList::new();
    for a in &lease.dns_servers {
        let _ = nameservers.push(IpAddr::V4(*a));
    }
    let mut timeservers = ServerList::new();
    for a in &lease.ntp_servers {
        let _ = timeservers.push(IpAddr::V4(*a));
    }
    let mut domains = heapless::Vec::new();
    if let Ok(d) = Name::try_from(lease.domain_name.as_str()) {
        if !d.is_empty() {
            let _ = domains.push(d);
        }
    }
    DhcpConfig {
        net: crate::core::types::Ipv4Net {
            addr: lease.address,
            prefix_len: lease.prefix_len,
        },
        gateway: lease.router,
        nameservers,
        timeservers,
        domains,
    }
}

impl Daemon {
    /// Reads links and pathman's own kernel objects afresh (start, overrun).
    pub(super) async fn resync(&mut self) -> Result<(), RtnlError> {
        let links = self.rtnl.dump_links().await?;
        let addrs = self.rtnl.dump_addresses().await?;
        let routes = self.rtnl.dump_routes().await?;
        let rules = self.rtnl.dump_rules().await?;
        let own = crate::caps::RT_PROTO_PATHMAN;
        // Look at the kernel's endpoints afresh too (leftovers of a crash).
        self.endpoints_applied = None;
        self.kernel = NetState {
            addresses: addrs
                .iter()
                .filter(|a| a.proto == own)
                .map(|a| crate::core::netstate::AddressSpec {
                    ifindex: a.ifindex,
                    addr: a.addr,
                    prefix_len: a.prefix_len,
                })
                .collect(),
            routes: routes
                .iter()
                .filter(|r| r.proto == own)
                .map(|r| r.spec)
                .collect(),
            rules: rules
                .iter()
                .filter(|r| r.proto == own)
                .map(|r| r.spec)
                .collect(),
        };
        let present: Vec<u32> = links.iter().map(|l| l.ifindex).collect();
        let gone: Vec<u32> = self
            .model
            .devices
            .iter()
            .map(|d| d.ifindex)
            .filter(|i| !present.contains(i))
            .collect();
        for ifindex in gone {
            self.model.link_removed(ifindex);
        }
        for link in links {
            self.on_kernel(KernelEvent::Link(link));
        }
        self.ipv6.clear();
        for a in addrs {
            self.on_kernel(KernelEvent::AddrAdded(a));
        }
        for r in routes {
            self.on_kernel(KernelEvent::RouteAdded(r));
        }
        Ok(())
    }

    /// Feeds one kernel event to the model and to the owned-object mirror.
    pub(super) fn on_kernel(&mut self, ev: KernelEvent) {
        let own = crate::caps::RT_PROTO_PATHMAN;
        match ev {
            KernelEvent::Link(link) => match self.devices.classify(&link) {
                Some(seen) => {
                    let mut configs = StoreConfigs {
                        store: &self.store,
                        default_mptcp_link: self.default_mptcp_link,
                    };
                    self.model.link_changed(seen, &mut configs);
                }
                None => {
                    if self.model.devices.iter().any(|d| d.ifindex == link.ifindex) {
                        self.model.link_removed(link.ifindex);
                    }
                }
            },
            KernelEvent::LinkRemoved(ifindex) => {
                self.model.link_removed(ifindex);
                self.ipv6.retain(|v| v.ifindex != ifindex);
                self.kernel.addresses.retain(|a| a.ifindex != ifindex);
                self.kernel.routes.retain(|r| r.oif != ifindex);
            }
            KernelEvent::AddrAdded(a) | KernelEvent::AddrRemoved(a) if a.proto == own => {
                if matches!(ev, KernelEvent::AddrRemoved(_)) {
                    reconcile::record(
                        &mut self.kernel,
                        &Op::DelAddress(crate::core::netstate::AddressSpec {
                            ifindex: a.ifindex,
                            addr: a.addr,
                            prefix_len: a.prefix_len,
                        }),
                    );
                }
            }
            KernelEvent::AddrAdded(a) => {
                if let IpAddr::V6(v6) = a.addr {
                    let usable = a.scope == 0 && !a.tentative;
                    let view = self.ipv6_view(a.ifindex);
                    view.addrs.retain(|x| x.addr != v6);
                    if usable {
                        view.addrs.push(Ipv6Assigned {
                            addr: v6,
                            prefix_len: a.prefix_len,
                        });
                    }
                    self.push_ipv6(a.ifindex);
                }
            }
            KernelEvent::AddrRemoved(a) => {
                if let IpAddr::V6(v6) = a.addr {
                    self.ipv6_view(a.ifindex).addrs.retain(|x| x.addr != v6);
                    self.push_ipv6(a.ifindex);
                }
            }
            KernelEvent::RouteAdded(r) | KernelEvent::RouteRemoved(r)
                if r.proto == RTPROT_RA && r.spec.dst.len == 0 && r.spec.dst.is_ipv6() =>
            {
                let gw = match (&ev, r.spec.gateway) {
                    (KernelEvent::RouteAdded(_), Some(IpAddr::V6(g))) => Some(g),
                    _ => None,
                };
                self.ipv6_view(r.spec.oif).gateway = gw;
                self.push_ipv6(r.spec.oif);
            }
            KernelEvent::RouteRemoved(r) if r.proto == own => {
                reconcile::record(&mut self.kernel, &Op::DelRoute(r.spec));
            }
            KernelEvent::RuleRemoved(r) if r.proto == own => {
                reconcile::record(&mut self.kernel, &Op::DelRule(r.spec));
            }
            _ => {}
        }
    }

    fn ipv6_view(&mut self, ifindex: u32) -> &mut Ipv6View {
        if let Some(i) = self.ipv6.iter().position(|v| v.ifindex == ifindex) {
            return &mut self.ipv6[i];
        }
        self.ipv6.push(Ipv6View {
            ifindex,
            addrs: Vec::new(),
            gateway: None,
        });
        let last = self.ipv6.len() - 1;
        &mut self.ipv6[last]
    }

    fn push_ipv6(&mut self, ifindex: u32) {
        let (addrs, gw): (Vec<Ipv6Assigned>, Option<Ipv6Addr>) =
            match self.ipv6.iter().find(|v| v.ifindex == ifindex) {
                Some(v) => (v.addrs.clone(), v.gateway),
                None => (Vec::new(), None),
            };
        self.model.ipv6_changed(ifindex, &addrs, gw);
    }

    /// Feeds one DHCP event to the model.
    pub(super) fn on_dhcp(&mut self, ev: DhcpEvent) {
        match ev.kind {
            DhcpEventKind::Bound(lease) | DhcpEventKind::Renewed(lease) => {
                self.model.dhcp_bound(ev.ifindex, dhcp_config(&lease))
            }
            DhcpEventKind::Lost => self.model.dhcp_lost(ev.ifindex),
            DhcpEventKind::LinkLocal(addr) => self.model.link_local_claimed(ev.ifindex, addr),
            DhcpEventKind::LinkLocalLost => self.model.link_local_lost(ev.ifindex),
        }
    }

    /// Brings the kernel, the files and D-Bus clients in line with the model.
    pub(super) async fn settle(&mut self) {
        let started = std::time::Instant::now();
        self.settle_inner().await;
        log::debug!("settle: {} us", started.elapsed().as_micros());
    }

    async fn settle_inner(&mut self) {
        // Kernel first: failover speed is measured from the link event to
        // the route change, so nothing slower may come before it.
        self.reconcile().await;
        let actions = self.model.take_actions();
        let had_actions = !actions.is_empty();
        for action in actions {
            self.act(action).await;
        }
        if had_actions {
            // Actions (a manual address, a stopped client) may change the plan.
            self.reconcile().await;
        }
        // After routes and rules (marks must find their tables), and after the
        // actions (bringing links up and starting DHCP matter more at start).
        self.apply_firewall().await;
        self.write_resolv_conf();
        if let Some(conn) = self.bus.clone() {
            self.snapshot.emit_changes(&conn, &self.model).await;
        }
    }

    /// Applies the plan in phases: first what adds and the main table's
    /// default routes (failover speed is measured there), then MPTCP
    /// endpoint deletes (an endpoint goes before its address and table),
    /// then the remaining deletes, then new endpoints (after their address
    /// and table exist) and the limits.
    async fn reconcile(&mut self) {
        let desired = plan::desired(&self.model);
        let ops = reconcile::diff(&desired, &self.kernel);
        let endpoints = plan::endpoints(&self.model, self.mptcp_extra);
        let endpoints_changed =
            self.mptcp.is_some() && self.endpoints_applied.as_ref() != Some(&endpoints);
        if ops.is_empty() && !endpoints_changed {
            return;
        }
        let started = std::time::Instant::now();
        let n_ops = ops.len();
        let (early, late): (Vec<Op>, Vec<Op>) =
            ops.into_iter().partition(|op| !takes_state_away(op));
        self.apply(&early).await;
        if !endpoints_changed {
            self.apply(&late).await;
            log_pass(started, n_ops, 0);
            return;
        }
        let ep_ops = self.plan_endpoints(&endpoints).await;
        let n_ep = ep_ops.len();
        let (dels, rest): (Vec<EndpointOp>, Vec<EndpointOp>) = ep_ops
            .into_iter()
            .partition(|o| matches!(o, EndpointOp::Del { .. }));
        self.apply_endpoints(&dels).await;
        self.apply(&late).await;
        self.apply_endpoints(&rest).await;
        self.check_endpoints(&endpoints).await;
        log_pass(started, n_ops, n_ep);
        self.endpoints_applied = Some(endpoints.clone());
        if self.mptcp_manage_limits {
            let limits = limits_for(endpoints.len());
            if self.limits_applied != Some(limits) {
                if let Some(m) = self.mptcp.as_mut() {
                    match m.set_limits(limits).await {
                        Ok(()) => {
                            log::info!(
                                "mptcp: limits subflows {} add_addr_accepted {}",
                                limits.subflows,
                                limits.add_addr_accepted
                            );
                            self.limits_applied = Some(limits);
                        }
                        Err(e) => log::warn!("mptcp: {e}"),
                    }
                }
            }
        }
    }

    async fn apply(&mut self, ops: &[Op]) {
        if ops.is_empty() {
            return;
        }
        let results = self.rtnl.apply(ops).await;
        for (op, res) in ops.iter().zip(results) {
            match res {
                Ok(()) => {
                    log::debug!("kernel: {op:?}");
                    reconcile::record(&mut self.kernel, op);
                }
                Err(e) => log::warn!("{}: {e} ({op:?})", self.about(op)),
            }
        }
    }

    /// Replaces pathman's nftables table when the sessions' marking changed
    /// (one atomic batch), or removes it when no session needs one.
    async fn apply_firewall(&mut self) {
        let rs = session::ruleset(&self.model, &self.model.sessions, &self.model.policies);
        if self.ruleset_applied.as_ref() == Some(&rs) {
            return;
        }
        let Some(nft) = self.nft.as_mut() else { return };
        let res = if rs.marks.is_empty() && rs.snat.is_empty() {
            // Nothing to remove unless a table is there (start, after a crash).
            match nft.exists().await {
                Ok(false) => Ok(()),
                _ => nft.remove().await,
            }
        } else {
            nft.replace(&rs).await
        };
        match res {
            Ok(()) => {
                log::debug!(
                    "nftables: {} mark rules, {} snat rules",
                    rs.marks.len(),
                    rs.snat.len()
                );
                self.ruleset_applied = Some(rs);
            }
            Err(e) => {
                log::warn!("nftables: {e}");
                // Do not retry the same ruleset on every event.
                self.ruleset_applied = Some(rs);
            }
        }
    }

    /// The endpoint changes from what the kernel has now.
    async fn plan_endpoints(&mut self, desired: &[DesiredEndpoint]) -> Vec<EndpointOp> {
        let managed: Vec<u32> = self.model.devices.iter().map(|d| d.ifindex).collect();
        let Some(m) = self.mptcp.as_mut() else {
            return Vec::new();
        };
        match m.endpoints().await {
            Ok(current) => mptcp_plan(desired, &current, &managed),
            Err(e) => {
                log::warn!("mptcp: {e}");
                Vec::new()
            }
        }
    }

    async fn apply_endpoints(&mut self, ops: &[EndpointOp]) {
        for op in ops {
            let Some(m) = self.mptcp.as_mut() else { return };
            let res = m.apply(*op).await;
            let who = match op {
                EndpointOp::Add { addr, ifindex, .. } => self
                    .model
                    .services
                    .iter()
                    .find(|s| s.ifindex == *ifindex)
                    .map(|s| format!("{} {} {addr}", s.ifname, s.id))
                    .unwrap_or_else(|| addr.to_string()),
                EndpointOp::Del { id } | EndpointOp::SetFlags { id, .. } => {
                    format!("endpoint {id}")
                }
            };
            match res {
                Ok(_) => log::info!("mptcp: {who}: {op:?}"),
                // The service keeps working without that endpoint.
                Err(e) => log::warn!("mptcp: {who}: {e}"),
            }
        }
    }

    /// Notes which wanted endpoints the kernel lacks after a change (the
    /// cap was reached or it refused), so a D-Bus caller who asked for them
    /// hears about it.
    async fn check_endpoints(&mut self, desired: &[DesiredEndpoint]) {
        self.endpoints_missing.clear();
        let Some(m) = self.mptcp.as_mut() else { return };
        let Ok(current) = m.endpoints().await else {
            return;
        };
        for d in desired {
            if !current.iter().any(|c| c.addr == d.addr) {
                self.endpoints_missing.push((d.ifindex, d.addr));
            }
        }
    }

    /// Why a service's MPTCP endpoints are not all in the kernel, if they are not.
    pub(super) fn endpoint_failure(&self, service: &str) -> Option<String> {
        let svc = self.model.service(service)?;
        let missing: Vec<String> = self
            .endpoints_missing
            .iter()
            .filter(|(ifindex, _)| *ifindex == svc.ifindex)
            .map(|(_, a)| a.to_string())
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "MPTCP endpoint for {} not added (the kernel keeps at most {} endpoints, or refused it); {} keeps working without it",
                missing.join(", "),
                crate::caps::MPTCP_MAX_ENDPOINTS,
                svc.id
            )
        })
    }

    /// SIGUSR1: logs everything pathman owns in the kernel.
    pub(super) async fn dump(&mut self) {
        log::info!(
            "dump: {} services, {} devices",
            self.model.services.len(),
            self.model.devices.len()
        );
        for a in &self.kernel.addresses {
            log::info!(
                "dump: address {}/{} ifindex {}",
                a.addr,
                a.prefix_len,
                a.ifindex
            );
        }
        for r in &self.kernel.routes {
            let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
            log::info!(
                "dump: route table {} {}/{}{via} oif {} metric {}",
                r.table,
                r.dst.addr,
                r.dst.len,
                r.oif,
                r.metric
            );
        }
        for r in &self.kernel.rules {
            let from = r
                .src
                .map(|p| format!(" from {}/{}", p.addr, p.len))
                .unwrap_or_default();
            let mark = r
                .fwmark
                .map(|m| format!(" fwmark {m:#x}"))
                .unwrap_or_default();
            log::info!("dump: rule {}:{from}{mark} lookup {}", r.priority, r.table);
        }
        if let Some(m) = self.mptcp.as_mut() {
            match m.endpoints().await {
                Ok(eps) => {
                    for ep in eps {
                        log::info!(
                            "dump: mptcp endpoint id {} {} ifindex {:?} flags {}",
                            ep.id,
                            ep.addr,
                            ep.ifindex,
                            ep.flags
                        );
                    }
                }
                Err(e) => log::warn!("dump: mptcp: {e}"),
            }
            if let Ok(l) = m.limits().await {
                log::info!(
                    "dump: mptcp limits subflows {} add_addr_accepted {}",
                    l.subflows,
                    l.add_addr_accepted
                );
            }
        } else {
            log::info!("dump: mptcp not available");
        }
    }

    /// Names the interface/service an operation is about, for log lines.
    fn about(&self, op: &Op) -> String {
        let ifindex = match op {
            Op::AddAddress(a) | Op::DelAddress(a) => Some(a.ifindex),
            Op::AddRoute(r) | Op::DelRoute(r) => Some(r.oif),
            Op::AddRule(r) | Op::DelRule(r) => self
                .model
                .services
                .iter()
                .find(|s| plan::service_table(s.ifindex) == r.table)
                .map(|s| s.ifindex),
        };
        match ifindex.and_then(|i| self.model.services.iter().find(|s| s.ifindex == i)) {
            Some(s) => format!("{} {}", s.ifname, s.id),
            None => {
                match ifindex.and_then(|i| self.model.devices.iter().find(|d| d.ifindex == i)) {
                    Some(d) => d.name.to_string(),
                    None => "kernel".to_string(),
                }
            }
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::SetLinkUp { ifindex, up } => {
                if let Err(e) = self.rtnl.set_link_up(ifindex, up).await {
                    log::warn!(
                        "ifindex {ifindex}: cannot set link {}: {e}",
                        if up { "up" } else { "down" }
                    );
                }
            }
            Action::SetIpv6 { ifname, enabled } => {
                if let Err(e) = sysfs::set_ipv6_autoconf(&ifname, enabled) {
                    log::warn!(
                        "{ifname}: cannot {} IPv6 autoconfiguration: {e}",
                        if enabled { "enable" } else { "disable" }
                    );
                }
            }
            Action::StartDhcp {
                ifindex,
                ifname,
                mac,
                remembered,
            } => {
                self.stop_dhcp(ifindex, false);
                let handle = driver::spawn(
                    self.ex,
                    ifindex,
                    &ifname,
                    mac,
                    remembered,
                    self.dhcp_tx.clone(),
                );
                self.dhcp.push((ifindex, handle));
            }
            Action::StopDhcp { ifindex, release } => self.stop_dhcp(ifindex, release),
            Action::SaveService(id) => {
                if let Some(svc) = self.model.service(&id) {
                    let name = svc.tech.display_name();
                    if let Err(e) =
                        self.store
                            .save_service(&id, name, &svc.config, SystemTime::now())
                    {
                        log::warn!("{} {id}: settings not saved: {e}", svc.ifname);
                    }
                }
            }
            Action::ForgetService(id) => {
                if let Err(e) = self.store.remove_service(&id) {
                    log::warn!("{id}: settings not removed: {e}");
                }
            }
            Action::SaveGlobal => {
                let mut global = GlobalSettings::default();
                global.offline_mode = self.model.offline;
                for t in &self.model.techs {
                    global.set_powered(t.tech, t.powered);
                }
                if let Err(e) = self.store.save_global(&global) {
                    log::warn!("global settings not saved: {e}");
                }
            }
        }
    }

    fn stop_dhcp(&mut self, ifindex: u32, release: bool) {
        if let Some(pos) = self.dhcp.iter().position(|(i, _)| *i == ifindex) {
            let (_, handle) = self.dhcp.swap_remove(pos);
            // RELEASE goes out in the background; the loop does not wait for it.
            self.ex.spawn(handle.stop(release)).detach();
        }
    }

    fn write_resolv_conf(&mut self) {
        let Some(path) = self.resolv_path.clone() else {
            return;
        };
        let text = plan::resolv_conf(&self.model);
        if self.resolv_written.as_deref() == Some(text.as_str()) {
            return;
        }
        match write_atomic(&path, text.as_bytes()) {
            Ok(()) => self.resolv_written = Some(text),
            Err(e) => log::warn!("resolv.conf {}: {e}", path.display()),
        }
    }

    /// Stops every client and removes everything pathman installed.
    pub(super) async fn shutdown(&mut self) {
        if let Some(conn) = self.bus.clone() {
            self.snapshot.release_sessions(&conn).await;
        }
        self.model.sessions.clear();
        for (_, handle) in self.dhcp.drain(..) {
            handle.stop(false).await;
        }
        let ep_ops = self.plan_endpoints(&[]).await;
        self.apply_endpoints(&ep_ops).await;
        if let Some(nft) = self.nft.as_mut() {
            if let Err(e) = nft.remove().await {
                log::warn!("nftables: {e}");
            }
        }
        let ops = reconcile::diff(&NetState::default(), &self.kernel);
        let results = self.rtnl.apply(&ops).await;
        for (op, res) in ops.iter().zip(results) {
            if let Err(e) = res {
                log::warn!("{}: {e} ({op:?})", self.about(op));
            }
        }
    }
}

/// Operations that take away an address, a rule or a service-table route:
/// they wait until the MPTCP endpoints that use them are gone.
fn takes_state_away(op: &Op) -> bool {
    match op {
        Op::DelAddress(_) | Op::DelRule(_) => true,
        Op::DelRoute(r) => r.table != plan::TABLE_MAIN,
        _ => false,
    }
}

/// One debug line per reconcile pass, for the benchmarks: how many netlink
/// and endpoint requests it took and how long.
fn log_pass(started: std::time::Instant, ops: usize, endpoint_ops: usize) {
    log::debug!(
        "reconcile: {ops} netlink ops, {endpoint_ops} endpoint ops in {} us",
        started.elapsed().as_micros()
    );
}
