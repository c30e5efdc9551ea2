//! Tethering's kernel edge: makes the bridge, its ports and IPv4 forwarding
//! match [`crate::core::tether::plan`]. The bridge's address, NAT and the
//! DHCP server follow from the same plan through the reconciler, the
//! nftables ruleset and the task supervisor.

use std::path::{Path, PathBuf};

use crate::core::tether;

use super::Daemon;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// The tethering server's leases, in the state dir.
pub const LEASES_FILE: &str = "tether.leases";

/// The server configuration of a [`TaskSpec::DhcpServer`](crate::core::tasks::TaskSpec).
pub(super) fn server_config(
    spec: &crate::core::tasks::TaskSpec,
) -> Option<crate::dhcp::server::ServerConfig> {
    let crate::core::tasks::TaskSpec::DhcpServer {
        block,
        dns,
        domain,
        lease_secs,
        ..
    } = spec
    else {
        return None;
    };
    Some(crate::dhcp::server::ServerConfig {
        server: block.gateway(),
        prefix_len: 24,
        pool: block.pool(),
        dns: dns.clone(),
        domain: domain.clone(),
        mtu: None,
        lease_secs: *lease_secs,
    })
}

/// What tethering changed outside pathman's own objects.
#[derive(Debug)]
pub struct TetherEdge {
    /// `ip_forward` before tethering set it, kept in the run dir too so a
    /// pathman that crashed restores it at its next start.
    forward_saved: Option<String>,
    saved_file: PathBuf,
    /// A bridge create that failed: not retried on every event.
    create_failed: Option<String>,
    /// The saved file of a previous run was looked at (once, at start).
    checked_saved: bool,
}

impl TetherEdge {
    pub fn new(run_dir: &Path) -> TetherEdge {
        TetherEdge {
            forward_saved: None,
            saved_file: run_dir.join("ip_forward.saved"),
            create_failed: None,
            checked_saved: false,
        }
    }
}

/// Writes `value` to `ip_forward` on the worker thread (in the loop without
/// one): the write makes the kernel walk every device, 35 ms in a slow guest,
/// and the tethering DHCP server, started just before, answers meanwhile.
/// Writes run in the order given, so an on then an off end off.
fn write_forwarding(value: &str, done: String) {
    let value = value.to_string();
    crate::edge::worker::run(Box::new(move || match std::fs::write(IP_FORWARD, &value) {
        Ok(()) => log::info!("tethering: {done}"),
        Err(e) => log::warn!("tethering: cannot set {IP_FORWARD} to {value}: {e}"),
    }));
}

impl Daemon {
    /// The bridge as the plan wants it: made when something is tethered,
    /// gone with its ports when nothing is. Its ports follow in
    /// [`Self::sync_tether_ports`], after its address and DHCP server.
    pub(super) async fn sync_tether(&mut self) {
        self.model.tether_update();
        let Some(plan) = tether::plan(&self.model) else {
            self.tether_down().await;
            return;
        };
        if self.model.tether.bridge.is_none() {
            self.create_bridge(&plan.bridge).await;
        }
        // Ports leave first: an access point's radio leaves before its
        // supplicant interface is made again as a station (sync_radios).
        self.sync_tether_ports(false).await;
    }

    /// Ports out of the bridge (`join` false) or into it (`join` true) as
    /// the plan wants them. Joins come at the end of a settle, once the
    /// bridge's address, its DHCP server and NAT are in place: a client's
    /// first DISCOVER, which comes through the port, finds the server ready
    /// and the loop free (a join takes 30 ms in a slow guest).
    pub(super) async fn sync_tether_ports(&mut self, join: bool) {
        let (Some(plan), Some(bridge)) = (tether::plan(&self.model), self.model.tether.bridge)
        else {
            return;
        };
        let moves: Vec<(u32, u32, String)> = self
            .model
            .devices
            .iter()
            .filter_map(|d| {
                let want = plan.ports.contains(&d.ifindex);
                match (want, d.master == Some(bridge), join) {
                    (true, false, true) => Some((d.ifindex, bridge, d.name.to_string())),
                    (false, true, false) => Some((d.ifindex, 0, d.name.to_string())),
                    _ => None,
                }
            })
            .collect();
        for (ifindex, master, name) in moves {
            let t = std::time::Instant::now();
            let set = self.rtnl.set_master(ifindex, master).await;
            log::debug!(
                "tethering: {name} master {master}: {} us",
                t.elapsed().as_micros()
            );
            match set {
                Ok(()) => {
                    log::info!(
                        "tethering: {name} {} {}",
                        if master == 0 { "left" } else { "joined" },
                        plan.bridge
                    );
                    // The link event confirms it; until then do not ask again.
                    if let Some(d) = self.model.devices.iter_mut().find(|d| d.ifindex == ifindex) {
                        d.master = (master != 0).then_some(master);
                    }
                }
                Err(e) => log::warn!("tethering: {name}: cannot join {}: {e}", plan.bridge),
            }
        }
    }

    /// IPv4 forwarding on while something is tethered. Called at the end of
    /// a settle, after the bridge's address, the DHCP server and NAT; the
    /// write itself runs on the worker ([`write_forwarding`]).
    pub(super) fn tether_forwarding(&mut self) {
        if tether::plan(&self.model).is_some() {
            self.set_forwarding(true);
        }
    }

    async fn create_bridge(&mut self, name: &str) -> Option<u32> {
        if self.tether.create_failed.as_deref() == Some(name) {
            return None;
        }
        // Created first, looked up after: a name lookup of a link that does
        // not exist makes the kernel run modprobe ("netdev-<name>"), which
        // took 250 ms in a slow guest.
        let t = std::time::Instant::now();
        let made = self.rtnl.new_bridge(name).await;
        log::debug!(
            "tethering: create bridge {name}: {} us",
            t.elapsed().as_micros()
        );
        let existed = matches!(&made, Err(e) if e.errno == libc::EEXIST);
        if let (Err(e), false) = (made, existed) {
            log::warn!("tethering: cannot create bridge {name}: {e}");
            self.tether.create_failed = Some(name.to_string());
            return None;
        }
        match nix::net::if_::if_nametoindex(name) {
            Ok(i) => {
                log::info!(
                    "tethering: bridge {name} {}",
                    if existed { "found" } else { "created" }
                );
                self.model.tether_bridge_seen(Some(i));
                Some(i)
            }
            Err(e) => {
                log::warn!("tethering: bridge {name} created but not found: {e}");
                None
            }
        }
    }

    /// Nothing tethered: ports leave, the bridge goes, forwarding as before.
    async fn tether_down(&mut self) {
        self.tether.create_failed = None;
        if let Some(bridge) = self.model.tether.bridge {
            let ports: Vec<u32> = self
                .model
                .devices
                .iter()
                .filter(|d| d.master == Some(bridge))
                .map(|d| d.ifindex)
                .collect();
            for ifindex in ports {
                if let Err(e) = self.rtnl.set_master(ifindex, 0).await {
                    log::warn!("tethering: ifindex {ifindex}: cannot leave the bridge: {e}");
                }
            }
            match self.rtnl.del_link(bridge).await {
                Ok(()) => log::info!(
                    "tethering: bridge {} removed",
                    self.model.tether.bridge_name
                ),
                // Gone already (deleted by hand, or its last event came late).
                Err(e) if e.errno == libc::ENODEV => {}
                Err(e) => log::warn!("tethering: cannot remove the bridge: {e}"),
            }
            // Its ports are free now (their link events confirm it).
            for d in self.model.devices.iter_mut() {
                if d.master == Some(bridge) {
                    d.master = None;
                }
            }
            self.model.tether_bridge_seen(None);
        }
        self.set_forwarding(false);
    }

    /// IPv4 forwarding on while tethering, back to what it was after.
    fn set_forwarding(&mut self, on: bool) {
        let t = &mut self.tether;
        if on && t.forward_saved.is_none() {
            // A pathman that crashed while tethering left the value from before it.
            let crashed = (!t.checked_saved)
                .then(|| std::fs::read_to_string(&t.saved_file).ok())
                .flatten()
                .map(|v| v.trim().to_string());
            t.checked_saved = true;
            let now = match std::fs::read_to_string(IP_FORWARD) {
                Ok(v) => v.trim().to_string(),
                Err(e) => {
                    log::warn!("tethering: cannot read {IP_FORWARD}: {e}");
                    return;
                }
            };
            let before = crashed.unwrap_or_else(|| now.clone());
            // The run dir is volatile: no fsync (it would delay the clients' first answer).
            if let Err(e) = std::fs::write(&t.saved_file, before.as_bytes()) {
                log::debug!("tethering: {}: {e}", t.saved_file.display());
            }
            if now != "1" {
                write_forwarding("1", format!("IPv4 forwarding on (was {before})"));
            }
            t.forward_saved = Some(before);
        } else if !on && (t.forward_saved.is_some() || !t.checked_saved) {
            t.checked_saved = true;
            let before = t.forward_saved.take().or_else(|| {
                // A pathman that stopped without restoring it (a crash).
                std::fs::read_to_string(&t.saved_file)
                    .ok()
                    .map(|v| v.trim().to_string())
            });
            let Some(before) = before else { return };
            if before != "1" {
                let done = format!("IPv4 forwarding restored to {before}");
                write_forwarding(&before, done);
            }
            let _ = std::fs::remove_file(&t.saved_file);
        }
    }

    /// An IPv4 address pathman did not install (loopback's aside): the
    /// tether block keeps clear of it.
    pub(super) fn foreign_v4(
        &mut self,
        ifindex: u32,
        addr: std::net::Ipv4Addr,
        len: u8,
        present: bool,
    ) {
        if addr.is_loopback() || addr.is_link_local() {
            return;
        }
        let net = crate::core::types::Ipv4Net {
            addr,
            prefix_len: len,
        };
        self.model.foreign_address(ifindex, net, present);
    }

    /// Starts the tethering DHCP server of `spec`.
    pub(super) fn start_dhcp_server(
        &mut self,
        spec: &crate::core::tasks::TaskSpec,
    ) -> super::tasks::Running {
        use crate::dhcp::server::Server;
        let (
            Some(cfg),
            crate::core::tasks::TaskSpec::DhcpServer {
                ifindex,
                ifname,
                block,
                ..
            },
        ) = (server_config(spec), spec)
        else {
            return super::tasks::Running::Idle;
        };
        let now = crate::task::Now::read();
        let path = self.store.dir().join(LEASES_FILE);
        let pool = (u32::from(cfg.pool.1) - u32::from(cfg.pool.0) + 1) as usize;
        let leases = match std::fs::read_to_string(&path) {
            Ok(text) => match crate::dhcp::leases::decode(&text, &now, pool) {
                Ok((b, warnings)) => {
                    for w in warnings {
                        log::warn!("{}: {w}", path.display());
                    }
                    b
                }
                Err(e) => {
                    log::warn!("{}: {e}; starting without leases", path.display());
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                log::warn!("{}: {e}; starting without leases", path.display());
                Vec::new()
            }
        };
        let machine = match Server::new(cfg, leases, &now) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("dhcp server on {ifname}: {e}");
                return super::tasks::Running::Idle;
            }
        };
        log::info!(
            "dhcp server on {ifname}: {block}, {} leases kept",
            machine.bindings().len()
        );
        self.model.tether_clients(machine.clients(now.mono));
        let transport =
            crate::edge::dhcp_server::ServerSockets::new(*ifindex, ifname.as_str(), path);
        let tx = self.events.clone();
        let stats = std::rc::Rc::new(std::cell::Cell::new(machine.stats()));
        let published = stats.clone();
        let handle = crate::task::Handle::spawn_observed(
            self.ex,
            machine,
            transport,
            move |ev| {
                let tx = tx.clone();
                async move {
                    let crate::dhcp::server::Event::LeasesChanged { clients } = ev;
                    tx.send(super::Event::TetherClients(clients)).await
                }
            },
            move |m: &Server| published.set(m.stats()),
        );
        super::tasks::Running::DhcpServer(handle, stats)
    }

    /// At shutdown: the bridge and forwarding go with pathman.
    pub(super) async fn tether_shutdown(&mut self) {
        self.tether_down().await;
        // The restore is written on the worker: done before pathman exits.
        crate::edge::worker::flush();
    }
}
