//! SIGUSR1: a log listing of everything pathman owns in the kernel.

use super::Daemon;

impl Daemon {
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
}
