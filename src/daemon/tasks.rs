//! The supervisor: makes the protocol tasks that run match the plan's
//! [`crate::core::tasks::desired`] set, as the reconciler makes the kernel
//! match the planned routes: starts what is missing, restarts what changed,
//! stops what is no longer wanted.

use crate::core::tasks::{self as plan, TaskKey, TaskSpec};
use crate::edge::dhcp::DhcpSockets;
use crate::edge::ntp::NtpSockets;
use crate::task::Handle;
use crate::time::task::{SntpConfig, SntpTask};

use super::{Daemon, Event};

/// A running task.
pub(super) enum Running {
    Dhcp(Handle<()>),
    Sntp(Handle<SntpConfig>),
    Online(Handle<crate::online::Config>),
    /// The tethering DHCP server, with the counters it publishes before each wait.
    DhcpServer(
        Handle<crate::dhcp::server::ServerConfig>,
        std::rc::Rc<std::cell::Cell<crate::dhcp::server::Stats>>,
    ),
    /// A task that could not start (its configuration is unusable); kept so
    /// the supervisor does not try again until the spec changes.
    Idle,
}

/// The tasks that run, with the spec each was started with.
#[derive(Default)]
pub struct Tasks {
    running: Vec<(TaskSpec, Running)>,
}

impl Tasks {
    /// How many tasks there are (running or idle).
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// The running DHCP server's bridge and counters.
    pub fn dhcp_server_stats(&self) -> Option<(&str, crate::dhcp::server::Stats)> {
        self.running
            .iter()
            .find_map(|(spec, run)| match (spec, run) {
                (TaskSpec::DhcpServer { ifname, .. }, Running::DhcpServer(_, stats)) => {
                    Some((ifname.as_str(), stats.get()))
                }
                _ => None,
            })
    }

    /// One line per task: what it is, with its configuration.
    pub fn describe(&self, ifname: &dyn Fn(u32) -> String) -> Vec<String> {
        self.running
            .iter()
            .map(|(spec, run)| {
                let state = if matches!(run, Running::Idle) {
                    " (not running: its configuration is unusable)"
                } else {
                    ""
                };
                let what = match spec {
                    TaskSpec::Dhcp {
                        ifindex,
                        generation,
                        remembered,
                        ..
                    } => format!(
                        "dhcp on {} generation {generation}{}",
                        ifname(*ifindex),
                        remembered
                            .map(|a| format!(" init-reboot {a}"))
                            .unwrap_or_default()
                    ),
                    TaskSpec::Sntp { servers, dns } => format!(
                        "sntp servers {} dns {}",
                        list(servers),
                        dns.iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    TaskSpec::Online {
                        ifindex,
                        source,
                        metered,
                        ..
                    } => format!(
                        "online check on {} from {source}{}",
                        ifname(*ifindex),
                        if *metered { " (metered)" } else { "" }
                    ),
                    TaskSpec::DhcpServer {
                        ifname,
                        block,
                        dns,
                        lease_secs,
                        ..
                    } => format!(
                        "dhcp server on {ifname} for {block} lease {lease_secs} s dns {}",
                        dns.iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                };
                format!("{what}{state}")
            })
            .collect()
    }
}

impl Daemon {
    /// Brings the running tasks in line with the plan.
    pub(super) async fn supervise(&mut self) {
        let want = plan::desired(&self.model);
        let mut i = 0;
        while i < self.tasks.running.len() {
            let (spec, _) = &self.tasks.running[i];
            let keep = want
                .iter()
                .any(|w| w.key() == spec.key() && !w.needs_restart(spec));
            if keep {
                i += 1;
                continue;
            }
            let (spec, task) = self.tasks.running.swap_remove(i);
            self.stop_task(spec, task);
        }
        for spec in want {
            if let Some(i) = self
                .tasks
                .running
                .iter()
                .position(|(s, _)| s.key() == spec.key())
            {
                if self.tasks.running[i].0 != spec {
                    // Same task, new configuration.
                    let online = match &spec {
                        TaskSpec::Online {
                            dns,
                            metered,
                            recheck,
                            ..
                        } => self.online_config(dns, *metered, *recheck),
                        _ => None,
                    };
                    match (&spec, &self.tasks.running[i].1) {
                        (TaskSpec::Sntp { servers, dns }, Running::Sntp(h)) => {
                            h.reconfigure(SntpConfig {
                                servers: servers.clone(),
                                dns: dns.clone(),
                            })
                            .await;
                        }
                        (TaskSpec::Online { .. }, Running::Online(h)) => {
                            if let Some(c) = online {
                                h.reconfigure(c).await;
                            }
                        }
                        (TaskSpec::DhcpServer { .. }, Running::DhcpServer(h, _)) => {
                            if let Some(c) = super::tether::server_config(&spec) {
                                h.reconfigure(c).await;
                            }
                        }
                        _ => {}
                    }
                    self.tasks.running[i].0 = spec;
                }
                continue;
            }
            let task = self.start_task(&spec);
            self.tasks.running.push((spec, task));
        }
    }

    fn start_task(&mut self, spec: &TaskSpec) -> Running {
        match spec {
            TaskSpec::DhcpServer { .. } => self.start_dhcp_server(spec),
            TaskSpec::Dhcp {
                ifindex,
                ifname,
                mac,
                remembered,
                shared_link,
                ..
            } => {
                let detection = if *shared_link {
                    self.dhcp_detection
                } else {
                    crate::dhcp::acd::ConflictDetection::Off
                };
                let machine = crate::dhcp::acquire::Acquire::new(
                    ifname.clone(),
                    *mac,
                    crate::dhcp::seed_for(*mac),
                    *remembered,
                    detection,
                );
                let transport = DhcpSockets::new(*ifindex, ifname.clone());
                let tx = self.events.clone();
                let ifindex = *ifindex;
                Running::Dhcp(Handle::spawn(self.ex, machine, transport, move |kind| {
                    let tx = tx.clone();
                    async move {
                        tx.send(Event::Dhcp {
                            ifindex,
                            kind: Box::new(kind),
                        })
                        .await
                    }
                }))
            }
            TaskSpec::Online {
                ifindex,
                ifname,
                source,
                dns,
                metered,
                recheck,
            } => {
                let Some(config) = self.online_config(dns, *metered, *recheck) else {
                    return Running::Idle;
                };
                log::info!(
                    "{ifname}: online check from {source} ({}{})",
                    config.url,
                    if *metered { ", metered" } else { "" }
                );
                let seed = crate::edge::random::seed();
                let machine = crate::online::Checker::new(config, seed);
                let transport = crate::edge::probe::ProbeSockets::new(ifname, *ifindex, *source);
                let tx = self.events.clone();
                let ifindex = *ifindex;
                Running::Online(Handle::spawn(self.ex, machine, transport, move |ev| {
                    let tx = tx.clone();
                    async move { tx.send(Event::Online { ifindex, ev }).await }
                }))
            }
            TaskSpec::Sntp { servers, dns } => {
                log::info!("SNTP: asking {}", list(servers));
                let machine = SntpTask::new(
                    SntpConfig {
                        servers: servers.clone(),
                        dns: dns.clone(),
                    },
                    crate::edge::random::seed(),
                );
                let tx = self.events.clone();
                Running::Sntp(Handle::spawn(
                    self.ex,
                    machine,
                    NtpSockets::new(),
                    move |ev| {
                        let tx = tx.clone();
                        async move { tx.send(Event::Sntp(Box::new(ev))).await }
                    },
                ))
            }
        }
    }

    /// Stops a task in the background; a DHCP client says goodbye (RELEASE)
    /// only while its link still has carrier (a user disconnect, a new IPv4
    /// method), not when the link went away.
    fn stop_task(&mut self, spec: TaskSpec, task: Running) {
        match (spec.key(), task) {
            (TaskKey::Dhcp(ifindex), Running::Dhcp(h)) => {
                let graceful = self
                    .model
                    .devices
                    .iter()
                    .any(|d| d.ifindex == ifindex && d.carrier && d.up);
                if graceful {
                    self.forget_lease(ifindex);
                }
                log::info!(
                    "ifindex {ifindex}: DHCP stopped{}",
                    if graceful { ", releasing" } else { "" }
                );
                self.ex.spawn(h.stop(graceful)).detach();
            }
            (_, Running::Sntp(h)) => {
                log::info!("SNTP: stopped (no timeservers)");
                // Nothing keeps the measurement current any more.
                self.model.clock.measured = None;
                self.ex.spawn(h.stop(false)).detach();
            }
            (TaskKey::Online(ifindex), Running::Online(h)) => {
                log::debug!("ifindex {ifindex}: online check stopped");
                self.ex.spawn(h.stop(false)).detach();
            }
            (_, Running::DhcpServer(h, _)) => {
                log::info!("dhcp server: stopped");
                self.model.tether_clients(Vec::new());
                self.ex.spawn(h.stop(false)).detach();
            }
            (_, Running::Idle) => {}
            (key, _) => log::error!("task {key:?}: stopped with the wrong handle"),
        }
    }

    /// Stops every task and waits for them (shutdown; no goodbyes).
    pub(super) async fn stop_all_tasks(&mut self) {
        for (_, task) in self.tasks.running.drain(..) {
            match task {
                Running::Dhcp(h) => h.stop(false).await,
                Running::Sntp(h) => h.stop(false).await,
                Running::Online(h) => h.stop(false).await,
                Running::DhcpServer(h, _) => h.stop(false).await,
                Running::Idle => {}
            }
        }
    }
}

impl Daemon {
    /// The online checker's configuration from main.conf (None: OnlineCheckMode=none).
    fn online_config(
        &self,
        dns: &[std::net::IpAddr],
        metered: bool,
        recheck: u32,
    ) -> Option<crate::online::Config> {
        let mut c = crate::online::Config::from_conf(&self.online_conf, dns, metered)?;
        c.recheck = recheck;
        Some(c)
    }
}

fn list(servers: &[crate::core::types::Timeserver]) -> String {
    let v: Vec<String> = servers.iter().map(|t| t.to_string()).collect();
    v.join(", ")
}
