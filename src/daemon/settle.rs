//! The settle step after every event: kernel first, then the model's
//! actions (links, DHCP clients, files), nftables, resolv.conf; and shutdown.

use crate::config::store::{write_atomic, GlobalSettings};
use crate::core::model::Action;
use crate::core::netstate::NetState;
use crate::core::{plan, reconcile};
use crate::edge::{clock, sysfs};
use std::time::SystemTime;

use super::Daemon;

/// How often failed saves are retried.
const SAVE_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

impl Daemon {
    /// Brings the kernel, the files and D-Bus clients in line with the model.
    pub(super) async fn settle(&mut self) {
        let started = std::time::Instant::now();
        self.settle_inner().await;
        log::debug!("settle: {} us", started.elapsed().as_micros());
    }

    async fn settle_inner(&mut self) {
        let t0 = std::time::Instant::now();
        // Kernel first: failover speed is measured from the link event to
        // the route change, so nothing slower may come before it.
        self.reconcile().await;
        let t_reconcile = t0.elapsed().as_micros();
        let actions = self.model.take_actions();
        let had_actions = !actions.is_empty();
        // Files last: an fsync must not delay what the kernel, the tasks and
        // the bus are waiting for (tethering's bridge and server, a link up).
        let (saves, now): (Vec<Action>, Vec<Action>) = actions.into_iter().partition(|a| {
            matches!(
                a,
                Action::SaveGlobal | Action::SaveService(_) | Action::ForgetService(_)
            )
        });
        for action in now {
            self.act(action).await;
        }
        let tether_before = (self.model.tether.bridge, self.model.tether.block);
        let t = std::time::Instant::now();
        self.sync_tether().await;
        let tether_changed = tether_before != (self.model.tether.bridge, self.model.tether.block);
        if tether_changed {
            log::debug!("tethering: bridge in {} us", t.elapsed().as_micros());
        }
        let t_tether = t0.elapsed().as_micros();
        if had_actions || tether_changed {
            // Actions (a manual address) and tethering (the bridge's
            // address) may change the plan.
            self.reconcile().await;
        }
        self.sync_radios();
        self.sync_modems();
        self.supervise().await;
        if tether_changed {
            log::debug!(
                "settle: kernel {t_reconcile} us, actions and tethering {t_tether} us, tasks {} us",
                t0.elapsed().as_micros()
            );
            // The tethering DHCP server just started: it opens its sockets
            // now, before NAT, forwarding, the bus's signals and the ports.
            smol::future::yield_now().await;
        }
        // After routes and rules (marks must find their tables), and after the
        // actions (bringing links up and starting DHCP matter more at start).
        let t = std::time::Instant::now();
        self.apply_firewall().await;
        log::trace!("nftables applied in {} us", t.elapsed().as_micros());
        self.tether_forwarding();
        // Queued for the saver thread: an fsync never holds the loop.
        for action in saves {
            self.act(action).await;
        }
        self.write_resolv_conf();
        self.counters.track(&self.model, std::time::Instant::now());
        if let Some(conn) = self.bus.clone() {
            self.snapshot.emit_changes(&conn, &self.model).await;
        }
        for (ifindex, cfg, expires) in std::mem::take(&mut self.leases_to_save) {
            self.save_lease(ifindex, cfg, expires);
        }
        // Tethered ports join last: the clients' first DISCOVER comes through
        // them, and right after, the loop is free to answer it.
        let t = std::time::Instant::now();
        self.sync_tether_ports(true).await;
        if tether_changed {
            log::debug!("tethering: ports in {} us", t.elapsed().as_micros());
        }
    }

    /// A save that failed (state dir read-only, overlay full) is tried
    /// again later, so a setting made meanwhile is not lost.
    fn save_later(&mut self, action: Action) {
        if !self.unsaved.contains(&action) {
            self.unsaved.push(action);
        }
        self.save_retry_at
            .get_or_insert_with(|| std::time::Instant::now() + SAVE_RETRY);
    }

    /// Retries the saves that failed (the latest settings are written).
    pub(super) async fn retry_saves(&mut self) {
        self.save_retry_at = None;
        for action in std::mem::take(&mut self.unsaved) {
            self.act(action).await;
        }
    }

    /// The saver thread wrote (or failed to write) a file.
    pub(super) fn saved(&mut self, what: Action, error: Option<String>) {
        let Some(e) = error else {
            if self.saves_failing && self.unsaved.is_empty() {
                self.saves_failing = false;
                log::info!("settings saved after all");
            }
            return;
        };
        let retried = format!("kept in memory, retried every {} s", SAVE_RETRY.as_secs());
        match &what {
            Action::ForgetService(id) => {
                log::warn!("{id}: stored settings not removed: {e}");
                return;
            }
            Action::SaveService(id) => {
                let ifname = self
                    .model
                    .service(id)
                    .map(|s| s.ifname.to_string())
                    .unwrap_or_default();
                log::warn!("{ifname} {id}: settings not saved: {e}; {retried}");
            }
            _ => log::warn!("global settings not saved: {e}; {retried}"),
        }
        self.saves_failing = true;
        self.save_later(what);
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
            // A service without an interface yet (a cellular context not active).
            Action::SetIpv6 { ifindex: 0, .. } => {}
            Action::SetIpv6 {
                ifindex,
                ifname,
                enabled,
            } => {
                if let Err(e) = sysfs::set_ipv6_autoconf(&ifname, enabled) {
                    log::warn!(
                        "{ifname}: cannot {} IPv6 autoconfiguration: {e}",
                        if enabled { "enable" } else { "disable" }
                    );
                }
                if enabled {
                    self.push_ipv6(ifindex);
                }
            }
            Action::ResetCounters(id) => self.counters.reset(&self.model, &id),
            Action::SetTimezone(zone) => {
                match clock::set_timezone(&self.time.localtime, &self.time.zoneinfo, &zone) {
                    Ok(()) => {
                        log::info!("time zone {zone}");
                        self.model.clock.timezone = zone;
                    }
                    Err(e) => {
                        log::warn!("time zone {zone} not set: {e}");
                        self.clock_failure = Some(e);
                    }
                }
            }
            Action::SetTime(ns) => {
                let res = if !self.time.set_clock {
                    Err(
                        "pathman does not set the clock here (SetClock=false or --no-set-clock)"
                            .to_string(),
                    )
                } else {
                    clock::set(ns).map_err(|e| format!("cannot set the clock: {e}"))
                };
                if let Err(e) = res {
                    log::warn!("{e}");
                    self.clock_failure = Some(e);
                }
            }
            Action::WifiConnect { .. }
            | Action::WifiDisconnect { .. }
            | Action::WifiScan { .. }
            | Action::RequestInput(_)
            | Action::CancelInput { .. }
            | Action::RetryAfter { .. }
            | Action::ReportError { .. } => self.wifi_action(action),
            Action::CellularActivate { .. } => self.cellular_action(action),
            Action::ForgetService(id) => {
                // Through the saver: after any save of it still queued.
                let store = self.store.clone();
                let which = id.clone();
                self.saver.submit(
                    Action::ForgetService(id),
                    Box::new(move || store.remove_service(&which)),
                );
            }
            Action::SaveService(id) => {
                if let Some(svc) = self.model.service(&id) {
                    let wifi_name = svc
                        .wifi
                        .as_ref()
                        .map(|w| crate::core::tech::wifi::display_name(&w.ssid));
                    let name = wifi_name
                        .as_deref()
                        .unwrap_or(svc.tech.display_name())
                        .to_string();
                    let (store, config, now) =
                        (self.store.clone(), svc.config.clone(), SystemTime::now());
                    let which = id.clone();
                    self.saver.submit(
                        Action::SaveService(id),
                        Box::new(move || store.save_service(&which, &name, &config, now)),
                    );
                }
            }
            Action::Resync => {
                if let Err(e) = self.resync().await {
                    log::warn!("kernel dump failed: {e}");
                }
            }
            Action::SaveGlobal => {
                let mut global = GlobalSettings::default();
                global.offline_mode = self.model.offline;
                global.time_updates = self.model.clock.time_updates;
                global.timezone_updates = self.model.clock.timezone_updates;
                global.timeservers = self.model.clock.timeservers.clone();
                for t in &self.model.techs {
                    global.set_powered(t.tech, t.powered);
                }
                global.tether = self.model.tether.settings.clone();
                let store = self.store.clone();
                self.saver.submit(
                    Action::SaveGlobal,
                    Box::new(move || store.save_global(&global)),
                );
            }
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
        // Settings asked for before the signal reach the disk before exit.
        self.saver.flush();
        if let Some(conn) = self.bus.clone() {
            self.snapshot.release_clients(&conn, &self.model).await;
        }
        self.model.sessions.clear();
        self.stop_all_tasks().await;
        self.tether_shutdown().await;
        let ep_ops = self.plan_endpoints(&[]).await;
        self.apply_endpoints(&ep_ops).await;
        // Only a table that is there needs removing (no warning on every
        // clean stop when no session ever marked anything).
        if let Some(nft) = self.nft.as_mut() {
            if nft.exists().await.unwrap_or(true) {
                if let Err(e) = nft.remove().await {
                    log::warn!("nftables: {e}");
                }
            }
        }
        let ops = reconcile::diff(&NetState::default(), &self.kernel);
        let results = self.rtnl.apply(&ops).await;
        for (op, res) in ops.iter().zip(results) {
            if let Err(e) = res {
                log::warn!("{}: {}: {e}", self.about(op), self.describe(op));
            }
        }
    }
}
