//! Which protocol tasks should run, as declared state: the plan says what
//! must run with which configuration, as it says which routes must exist,
//! and the daemon's supervisor starts, reconfigures and stops tasks by
//! diffing that set against what runs. A new protocol is a machine plus a
//! line here.

use std::net::{IpAddr, Ipv4Addr};

use crate::core::model::Model;
use crate::core::types::{IfName, Timeserver};

/// Identifies a task across plans: one of a kind per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskKey {
    /// The DHCP client (with IPv4LL) of an interface.
    Dhcp(u32),
    /// The SNTP client (one for the system).
    Sntp,
    /// The online check of the service on an interface.
    Online(u32),
    /// The tethering DHCP server (one, on the bridge).
    DhcpServer,
}

/// A task the model wants running, with its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSpec {
    /// DHCP with the IPv4LL fallback on one interface.
    Dhcp {
        ifindex: u32,
        ifname: IfName,
        mac: [u8; 6],
        /// Which start of the service's DHCP this is (a new one restarts the client).
        generation: u32,
        /// The last leased address, tried first with INIT-REBOOT (start only).
        remembered: Option<Ipv4Addr>,
        /// Other hosts may share the link (ARP conflict detection is worth
        /// its 50 ms); false on a modem's data link, whose other end is the
        /// operator's network, where ConnMan probes nothing either.
        shared_link: bool,
    },
    /// The SNTP client, while there are timeservers to ask.
    Sntp {
        /// In SPEC §6 order.
        servers: Vec<Timeserver>,
        /// The default service's DNS servers, for server names.
        dns: Vec<IpAddr>,
    },
    /// The online check of one connected service, bound to its interface and
    /// IPv4 source address (so its own routing table carries the probes).
    Online {
        ifindex: u32,
        ifname: IfName,
        source: Ipv4Addr,
        /// The service's DNS servers, for the check URL's host.
        dns: Vec<IpAddr>,
        /// Cellular: probed rarely.
        metered: bool,
        /// [`Model::recheck`]: a new value pings at once (another uplink lost the Internet).
        recheck: u32,
    },
    /// The DHCP server of tethered clients, on the bridge.
    DhcpServer {
        ifindex: u32,
        ifname: IfName,
        /// The block: the bridge is its .1, the pool .2–.253.
        block: crate::core::tether::Block,
        /// The default service's IPv4 DNS servers (pathman runs no DNS proxy).
        dns: Vec<Ipv4Addr>,
        /// The default service's first search domain.
        domain: Option<String>,
        lease_secs: u32,
    },
}

impl TaskSpec {
    /// The task's identity.
    pub fn key(&self) -> TaskKey {
        match self {
            TaskSpec::Dhcp { ifindex, .. } => TaskKey::Dhcp(*ifindex),
            TaskSpec::Sntp { .. } => TaskKey::Sntp,
            TaskSpec::Online { ifindex, .. } => TaskKey::Online(*ifindex),
            TaskSpec::DhcpServer { .. } => TaskKey::DhcpServer,
        }
    }

    /// Whether a task running with `running` must be restarted to become
    /// this one (rather than left alone or reconfigured).
    pub fn needs_restart(&self, running: &TaskSpec) -> bool {
        match (self, running) {
            (
                TaskSpec::Dhcp {
                    ifname,
                    mac,
                    generation,
                    ..
                },
                TaskSpec::Dhcp {
                    ifname: n2,
                    mac: m2,
                    generation: g2,
                    ..
                },
            ) => ifname != n2 || mac != m2 || generation != g2,
            // A new server list is a reconfiguration.
            (TaskSpec::Sntp { .. }, TaskSpec::Sntp { .. }) => false,
            // New DNS servers or metering are a reconfiguration; a new
            // address or interface needs new sockets.
            (
                TaskSpec::Online { ifname, source, .. },
                TaskSpec::Online {
                    ifname: n2,
                    source: s2,
                    ..
                },
            ) => ifname != n2 || source != s2,
            // New DNS servers, domain or lease time are a reconfiguration; a
            // new block or bridge is a new server (its clients renew into it).
            (
                TaskSpec::DhcpServer { ifindex, block, .. },
                TaskSpec::DhcpServer {
                    ifindex: i2,
                    block: b2,
                    ..
                },
            ) => ifindex != i2 || block != b2,
            _ => true,
        }
    }
}

/// Every task the model wants: a DHCP client for each service that
/// acquires IPv4 by DHCP, the SNTP client while there are timeservers
/// (a connected service and automatic time updates), and an online check
/// for every connected service that can reach beyond its link.
pub fn desired(model: &Model) -> Vec<TaskSpec> {
    let mut out = dhcp(model);
    if model.settings.online_check {
        out.extend(online(model));
    }
    let servers = crate::core::clock::servers(model);
    if model.settings.time_sync && !servers.is_empty() {
        let dns = crate::core::order::connected(model)
            .next()
            .map(|svc| Model::nameservers(svc).iter().copied().collect())
            .unwrap_or_default();
        out.push(TaskSpec::Sntp { servers, dns });
    }
    out.extend(dhcp_server(model));
    out
}

/// The tethering DHCP server, while something is tethered and the bridge exists.
fn dhcp_server(model: &Model) -> Option<TaskSpec> {
    let plan = crate::core::tether::plan(model)?;
    let ifindex = model.tether.bridge?;
    let default = crate::core::order::connected(model).next();
    let dns = default
        .map(|s| {
            Model::nameservers(s)
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let domain = default.and_then(|s| Model::domains(s).first().map(|d| d.to_string()));
    Some(TaskSpec::DhcpServer {
        ifindex,
        ifname: IfName::try_from(plan.bridge.as_str()).ok()?,
        block: plan.block,
        dns,
        domain,
        lease_secs: model.tether.lease_secs,
    })
}

fn dhcp(model: &Model) -> Vec<TaskSpec> {
    model
        .services
        .iter()
        .filter(|s| s.dhcp_running)
        .filter_map(|s| {
            // The client speaks with the interface's hardware address.
            let dev = model.devices.iter().find(|d| d.ifindex == s.ifindex)?;
            Some((s, dev.mac))
        })
        .map(|(s, mac)| TaskSpec::Dhcp {
            ifindex: s.ifindex,
            ifname: s.ifname.clone(),
            mac,
            generation: s.dhcp_generation,
            remembered: s
                .ipv4
                .as_ref()
                .map(|a| a.net.addr)
                .or(s.config.dhcp_last_address),
            shared_link: s.tech != crate::core::types::Technology::Cellular,
        })
        .collect()
}

/// An online check per connected service with a usable IPv4 address and a
/// router (SPEC §6: every uplink is judged on its own path, not only the
/// default one).
fn online(model: &Model) -> Vec<TaskSpec> {
    model
        .services
        .iter()
        .filter(|s| s.state.is_connected())
        .filter_map(|s| {
            let v4 = s.ipv4.as_ref()?;
            // A link-local address or no router: nothing beyond the link to check.
            if v4.net.addr.is_link_local() || v4.gateway.is_none() {
                return None;
            }
            Some(TaskSpec::Online {
                ifindex: s.ifindex,
                ifname: s.ifname.clone(),
                source: v4.net.addr,
                dns: Model::nameservers(s).iter().copied().collect(),
                metered: s.tech == crate::core::types::Technology::Cellular
                    && model.settings.metered_cellular,
                recheck: model.recheck,
            })
        })
        .collect()
}
