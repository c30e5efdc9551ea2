//! Kernel and DHCP events into the model: links, IPv6 addresses and RA
//! routes, leases; and the full re-read of the kernel at start or overrun.

use std::net::{IpAddr, Ipv6Addr};

use crate::core::model::{ConfigSource, DhcpConfig, Ipv6Assigned};
use crate::core::netstate::{NetState, Op};
use crate::core::reconcile;
use crate::core::types::{MptcpLink, Name, ServerList, ServiceConfig, ServiceId};
use crate::dhcp::acquire::DhcpEventKind;
use crate::dhcp::client::Lease;
use crate::edge::rtnl::{AddrEntry, KernelEvent, RtnlError};

use super::devices::Ipv6View;
use super::Daemon;

/// A DHCP event and the interface it happened on.
struct DhcpEventOn {
    ifindex: u32,
    kind: DhcpEventKind,
}

/// Events the channel holds before senders wait: a burst of kernel events
/// and task events fits many times over.
const EVENT_QUEUE: usize = 256;

/// The sending side of the daemon's one event channel. A full queue makes
/// the sender wait (nothing is dropped) and is logged and counted.
#[derive(Clone)]
pub struct EventTx {
    tx: smol::channel::Sender<super::Event>,
    full: std::rc::Rc<std::cell::Cell<u64>>,
}

/// The event channel.
pub fn channel() -> (EventTx, smol::channel::Receiver<super::Event>) {
    let (tx, rx) = smol::channel::bounded(EVENT_QUEUE);
    (
        EventTx {
            tx,
            full: std::rc::Rc::new(std::cell::Cell::new(0)),
        },
        rx,
    )
}

impl EventTx {
    /// The channel itself, for a thread (the saver's).
    pub fn raw(&self) -> smol::channel::Sender<super::Event> {
        self.tx.clone()
    }

    /// Queues an event, waiting while the queue is full; false once the
    /// loop is gone.
    pub async fn send(&self, ev: super::Event) -> bool {
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(smol::channel::TrySendError::Full(ev)) => {
                let n = self.full.get() + 1;
                self.full.set(n);
                log::warn!(
                    "event queue full ({EVENT_QUEUE} events, {n} time(s) so far): the sender waits"
                );
                self.tx.send(ev).await.is_ok()
            }
            Err(smol::channel::TrySendError::Closed(_)) => false,
        }
    }
}

/// Reads rtnetlink events and hands them to the loop in batches.
pub async fn kernel_task(mut events: crate::edge::rtnl::Events, tx: EventTx) {
    loop {
        let mut batch = Vec::new();
        let r = events.next(&mut batch).await.map(|()| batch);
        if !tx.send(super::Event::Kernel(r)).await {
            return;
        }
    }
}

/// Hands signals to the loop.
pub async fn signal_task(signals: super::signals::Signals, tx: EventTx) {
    loop {
        let sig = signals.next().await;
        if !tx.send(super::Event::Signal(sig)).await {
            return;
        }
    }
}

/// Tells the loop (with the event `what` makes: Policies or Provisioning)
/// when a watched file changed.
pub async fn policy_task(watch: super::policies::Watch, tx: EventTx, what: fn() -> super::Event) {
    loop {
        watch.changed().await;
        if !tx.send(what()).await {
            return;
        }
    }
}

/// RTPROT_RA: routes the kernel learned from router advertisements.
const RTPROT_RA: u8 = 9;

/// Service configurations come from the state directory, leases a previous
/// pathman held from the run directory.
pub(super) struct StoreConfigs<'a> {
    pub(super) store: &'a crate::config::store::Store,
    pub(super) default_mptcp_link: MptcpLink,
    pub(super) run_dir: &'a std::path::Path,
    pub(super) kernel: &'a NetState,
    /// Leases taken over, with when they expire unless DHCP confirms them.
    pub(super) adopted: &'a mut Vec<(u32, Option<std::time::Instant>)>,
}

/// The daemon's [`StoreConfigs`], borrowing only the fields it reads (so
/// the model stays free to be borrowed mutably beside it).
macro_rules! store_configs {
    ($d:expr) => {
        super::events::StoreConfigs {
            store: &$d.store,
            default_mptcp_link: $d.default_mptcp_link,
            run_dir: &$d.run_dir,
            kernel: &$d.kernel,
            adopted: &mut $d.adopted,
        }
    };
}
pub(super) use store_configs;

impl ConfigSource for StoreConfigs<'_> {
    fn lease(&mut self, id: &ServiceId, ifindex: u32) -> Option<DhcpConfig> {
        let path = crate::config::lease::path(self.run_dir, id);
        let (kf, _) = crate::config::store::read_keyfile(&path).ok()??;
        let saved = match crate::config::lease::parse(&kf) {
            Ok(l) => l,
            Err(e) => {
                log::warn!("{}: ignored: {e}", path.display());
                return None;
            }
        };
        let now = crate::config::lease::boottime_secs();
        let left = match saved.expires {
            Some(t) if t <= now => return None,
            Some(t) => Some(std::time::Duration::from_secs(t - now)),
            None => None,
        };
        // Only a lease whose address is still ours on this interface: after a
        // restart, not after a carrier flap (which removed the address).
        let held = self.kernel.addresses.iter().any(|a| {
            a.ifindex == ifindex
                && a.addr == IpAddr::V4(saved.config.net.addr)
                && a.prefix_len == saved.config.net.prefix_len
        });
        if !held {
            return None;
        }
        self.adopted.retain(|(i, _)| *i != ifindex);
        self.adopted
            .push((ifindex, left.map(|d| std::time::Instant::now() + d)));
        Some(saved.config)
    }

    fn load(&mut self, id: &ServiceId) -> ServiceConfig {
        // Warnings were logged where they arose; a bad file yields defaults.
        match self.store.load_service(id).0 {
            Some(record) => record.config,
            // A WiFi network or cellular context never connected is not a
            // favourite (ConnMan): it does not auto-connect.
            None => ServiceConfig {
                mptcp_link: self.default_mptcp_link,
                favorite: !id.starts_with("wifi_") && !id.starts_with("cellular_"),
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
            KernelEvent::Link(link) if link.name.as_str() == self.model.tether.bridge_name => {
                self.model.tether_bridge_seen(Some(link.ifindex));
            }
            KernelEvent::Link(link) => match self.devices.classify(&link) {
                Some(seen) => {
                    let mut configs = store_configs!(self);
                    self.model.link_changed(seen, &mut configs);
                }
                // A wireless event (RTM_NEWLINK with IFLA_WIRELESS only) has
                // no address: it says nothing about whether pathman manages it.
                None if link.mac.is_none() => {}
                None => {
                    if self.model.devices.iter().any(|d| d.ifindex == link.ifindex) {
                        self.model.link_removed(link.ifindex);
                    }
                }
            },
            KernelEvent::LinkRemoved(ifindex) => {
                if self.model.tether.bridge == Some(ifindex) {
                    self.model.tether_bridge_seen(None);
                }
                self.model.foreign_link_gone(ifindex);
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
                if let IpAddr::V4(v4) = a.addr {
                    self.foreign_v4(a.ifindex, v4, a.prefix_len, true);
                }
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
                if let IpAddr::V4(v4) = a.addr {
                    self.foreign_v4(a.ifindex, v4, a.prefix_len, false);
                }
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

    /// Writes the lease file of the service on `ifindex` (if the model took the lease).
    pub(super) fn save_lease(
        &self,
        ifindex: u32,
        cfg: DhcpConfig,
        expires: Option<std::time::Instant>,
    ) {
        let Some(svc) = self.model.services.iter().find(|s| s.ifindex == ifindex) else {
            return;
        };
        if svc.ipv4.as_ref().map(|a| a.net) != Some(cfg.net) {
            return;
        }
        let now = std::time::Instant::now();
        let saved = crate::config::lease::SavedLease {
            config: cfg,
            expires: expires.map(|t| {
                crate::config::lease::boottime_secs() + t.saturating_duration_since(now).as_secs()
            }),
        };
        let path = crate::config::lease::path(&self.run_dir, &svc.id);
        let text = crate::config::lease::to_text(&saved);
        if let Err(e) = crate::config::store::write_atomic(&path, text.as_bytes()) {
            log::warn!("{} {}: lease not saved: {e}", svc.ifname, svc.id);
        }
    }

    /// Removes the lease file of the service on `ifindex`.
    pub(super) fn forget_lease(&self, ifindex: u32) {
        if let Some(svc) = self.model.services.iter().find(|s| s.ifindex == ifindex) {
            let path = crate::config::lease::path(&self.run_dir, &svc.id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("{}: {e}", path.display()),
            }
        }
    }

    /// Drops taken-over leases whose time ran out without DHCP confirming them.
    pub(super) fn expire_adopted(&mut self, now: std::time::Instant) {
        let expired: Vec<u32> = self
            .adopted
            .iter()
            .filter(|(_, t)| t.is_some_and(|t| t <= now))
            .map(|(i, _)| *i)
            .collect();
        for ifindex in expired {
            log::info!("ifindex {ifindex}: the lease taken over expired unconfirmed");
            self.adopted.retain(|(i, _)| *i != ifindex);
            self.model.dhcp_lost(ifindex);
            self.forget_lease(ifindex);
        }
    }

    /// When the next taken-over lease expires.
    pub(super) fn next_adopted_expiry(&self) -> Option<std::time::Instant> {
        self.adopted.iter().filter_map(|(_, t)| *t).min()
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

    pub(super) fn push_ipv6(&mut self, ifindex: u32) {
        let (addrs, gw): (Vec<Ipv6Assigned>, Option<Ipv6Addr>) =
            match self.ipv6.iter().find(|v| v.ifindex == ifindex) {
                Some(v) => (v.addrs.clone(), v.gateway),
                None => (Vec::new(), None),
            };
        self.model.ipv6_changed(ifindex, &addrs, gw);
    }

    /// Feeds one DHCP event to the model, and keeps the lease file of the
    /// service in step (so a restart can take the lease over).
    pub(super) fn on_dhcp(&mut self, ifindex: u32, kind: DhcpEventKind) {
        let ev = DhcpEventOn { ifindex, kind };
        match &ev.kind {
            DhcpEventKind::Bound(_) | DhcpEventKind::Renewed(_) | DhcpEventKind::Lost => {
                // DHCP has spoken: a lease taken over needs no expiry of its own.
                self.adopted.retain(|(i, _)| *i != ev.ifindex);
            }
            _ => {}
        }
        match ev.kind {
            DhcpEventKind::Bound(lease) | DhcpEventKind::Renewed(lease) => {
                let cfg = dhcp_config(&lease);
                self.model.dhcp_bound(ev.ifindex, cfg.clone());
                // Written after the settle: the kernel and the bus first
                // (the file only matters to a restarted pathman).
                self.leases_to_save
                    .push((ev.ifindex, cfg, lease.expires_at()));
            }
            DhcpEventKind::Lost => {
                self.model.dhcp_lost(ev.ifindex);
                self.forget_lease(ev.ifindex);
            }
            DhcpEventKind::LinkLocal(addr) => self.model.link_local_claimed(ev.ifindex, addr),
            DhcpEventKind::LinkLocalLost => self.model.link_local_lost(ev.ifindex),
        }
    }
}
