//! Kernel and DHCP events into the model: links, IPv6 addresses and RA
//! routes, leases; and the full re-read of the kernel at start or overrun.

use std::net::{IpAddr, Ipv6Addr};

use crate::core::model::{ConfigSource, DhcpConfig, Ipv6Assigned};
use crate::core::netstate::{NetState, Op};
use crate::core::reconcile;
use crate::core::types::{MptcpLink, Name, ServerList, ServiceConfig, ServiceId};
use crate::dhcp::client::Lease;
use crate::dhcp::driver::{DhcpEvent, DhcpEventKind};
use crate::edge::rtnl::{AddrEntry, KernelEvent, RtnlError};

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
                .map(AddrEntry::spec)
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
            // Pathman's own address appearing is what it asked for; one that
            // vanishes (removed by hand, link deleted) must be added again.
            KernelEvent::AddrAdded(a) if a.proto == own => {}
            KernelEvent::AddrRemoved(a) if a.proto == own => {
                reconcile::record(&mut self.kernel, &Op::DelAddress(a.spec()));
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
}
