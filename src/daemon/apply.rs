//! Applying the plan to the kernel in phases: rtnetlink changes, MPTCP
//! endpoints around them, the nftables ruleset, with per-pass timing.

use crate::core::mptcp::{limits_for, plan as mptcp_plan, DesiredEndpoint, EndpointOp};
use crate::core::netstate::Op;
use crate::core::{plan, reconcile, session};

use super::Daemon;

impl Daemon {
    /// Applies the plan in phases: first what adds and the main table's
    /// default routes (failover speed is measured there), then MPTCP
    /// endpoint deletes (an endpoint goes before its address and table),
    /// then the remaining deletes, then new endpoints (after their address
    /// and table exist) and the limits.
    pub(super) async fn reconcile(&mut self) {
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
                    log::debug!("kernel: {}", self.describe(op));
                    reconcile::record(&mut self.kernel, op);
                }
                Err(e) => log::warn!("{}: {}: {e}", self.about(op), self.describe(op)),
            }
        }
    }

    /// Replaces pathman's nftables table when the sessions' marking changed
    /// (one atomic batch), or removes it when no session needs one.
    pub(super) async fn apply_firewall(&mut self) {
        let mut rs = session::ruleset(&self.model, &self.model.sessions, &self.model.policies);
        if rs.offload.as_ref().map(|o| &o.devices) == self.offload_refused.as_ref() {
            rs.offload = None;
        }
        if self.ruleset_applied.as_ref() == Some(&rs) {
            return;
        }
        let Some(nft) = self.nft.as_mut() else { return };
        let mut res = if rs == crate::core::firewall::Ruleset::default() {
            // Nothing to remove unless a table is there (start, after a crash).
            match nft.exists().await {
                Ok(false) => Ok(()),
                _ => nft.remove().await,
            }
        } else {
            nft.replace(&rs).await
        };
        let fast_path_refused = matches!(&res, Err(crate::edge::nft::NftError::Kernel(e))
            if matches!(e.op, "add flowtable" | "add offload chain" | "add offload rule"));
        if let (true, Err(e), Some(o)) = (fast_path_refused, &res, &rs.offload) {
            // A kernel without nf_flow_table (or a device gone meanwhile)
            // refused the fast path itself: the same ruleset without it, NAT
            // as before. Any other refusal is not the flowtable's doing.
            log::info!(
                "nftables: no flowtable on {} ({e}); forwarding without the fast path",
                o.devices.join(",")
            );
            self.offload_refused = rs.offload.take().map(|o| o.devices);
            res = nft.replace(&rs).await;
        }
        match res {
            Ok(()) => {
                log::debug!(
                    "nftables: {} mark rules, {} snat rules, {} forward mark rules, {} masquerade rules",
                    rs.marks.len(),
                    rs.snat.len(),
                    rs.forward_marks.len(),
                    rs.masquerade.len()
                );
                if let Some(o) = &rs.offload {
                    log::debug!("nftables: flowtable on {}", o.devices.join(","));
                }
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
    pub(super) async fn plan_endpoints(&mut self, desired: &[DesiredEndpoint]) -> Vec<EndpointOp> {
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

    pub(super) async fn apply_endpoints(&mut self, ops: &[EndpointOp]) {
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
                Ok(_) => log::info!("mptcp: {who}: {}", op.describe(&|i| self.ifname(i))),
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

    /// Why a held-back request could not be carried out, if it could not.
    pub(super) fn pending_failure(
        &mut self,
        pending: &crate::dbus::request::Pending,
    ) -> Option<crate::dbus::request::CallError> {
        use crate::dbus::request::{CallError, Pending};
        match pending {
            Pending::Endpoints(service) => self
                .endpoint_failure(service)
                .map(|why| CallError::new("Failed", why)),
            Pending::State | Pending::Connect(_) | Pending::Scan(_) => None,
            Pending::Timezone | Pending::Time => self
                .clock_failure
                .take()
                .map(|why| CallError::new("Failed", why)),
        }
    }

    /// Why a service's MPTCP endpoints are not all in the kernel, if they are not.
    fn endpoint_failure(&self, service: &str) -> Option<String> {
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

    /// The interface name of an ifindex for log lines (`#N` when unknown).
    pub(super) fn ifname(&self, ifindex: u32) -> String {
        self.model
            .devices
            .iter()
            .find(|d| d.ifindex == ifindex)
            .map(|d| d.name.to_string())
            .unwrap_or_else(|| format!("#{ifindex}"))
    }

    /// An operation in `ip` words, for log lines.
    pub(super) fn describe(&self, op: &Op) -> String {
        op.describe(&|i| self.ifname(i))
    }

    /// Names the interface/service an operation is about, for log lines.
    pub(super) fn about(&self, op: &Op) -> String {
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
