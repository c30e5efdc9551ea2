//! From the model to the desired kernel state (SPEC §3–4): addresses, default
//! routes in `main` by service order, per-service multipath tables and source
//! rules, and the resolv.conf text.

use std::fmt::Write;
use std::net::IpAddr;

use crate::caps;
use crate::core::model::{Model, Service};
use crate::core::mptcp::{DesiredEndpoint, EndpointFlags};
use crate::core::netstate::{AddressSpec, IpPrefix, NetState, RouteSpec, RuleSpec};
use crate::core::order;
use crate::core::session;
use crate::core::types::MptcpLink;

/// The kernel's main routing table.
pub const TABLE_MAIN: u32 = 254;

/// Metric of pathman's IPv6 routes: the kernel stores 0 as 1024 for IPv6,
/// so planning 1024 keeps the plan equal to what a dump returns.
pub const IPV6_ROUTE_METRIC: u32 = 1024;

/// Rule priority bands (SPEC §4), from the configured base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleBands {
    pub session_multipath: u32,
    pub session_default: u32,
    pub service_source: u32,
}

impl RuleBands {
    /// Bands from a base priority.
    pub fn from_base(base: u32) -> RuleBands {
        RuleBands {
            session_multipath: base,
            session_default: base + caps::RULE_BAND_STEP,
            service_source: base + 2 * caps::RULE_BAND_STEP,
        }
    }
}

/// A service's own multipath routing table (SPEC §4: 255 + ifindex).
pub fn service_table(ifindex: u32) -> u32 {
    caps::SERVICE_TABLE_BASE + ifindex
}

/// Computes everything pathman wants in the kernel for this model.
pub fn desired(model: &Model) -> NetState {
    let mut st = NetState::default();
    let bands = RuleBands::from_base(model.settings.rule_priority_base);
    for (rank, svc) in order::connected(model).enumerate() {
        let metric = if rank == 0 {
            caps::DEFAULT_ROUTE_METRIC
        } else {
            caps::FALLBACK_ROUTE_METRIC_BASE + svc.ifindex
        };
        plan_ipv4(svc, metric, &mut st);
        if svc.multipath(model.settings.multipath_default) {
            plan_multipath(svc, bands, &mut st);
        }
    }
    session::plan(model, &model.sessions, &model.policies, bands, &mut st);
    st.addresses.sort();
    st.routes.sort();
    st.rules.sort();
    st
}

fn plan_ipv4(svc: &Service, metric: u32, st: &mut NetState) {
    let Some(v4) = &svc.ipv4 else { return };
    let addr = IpAddr::V4(v4.net.addr);
    st.addresses.push(AddressSpec {
        ifindex: svc.ifindex,
        addr,
        prefix_len: v4.net.prefix_len,
    });
    st.routes.push(RouteSpec {
        table: TABLE_MAIN,
        dst: IpPrefix::default_for(addr),
        gateway: v4.gateway.map(IpAddr::V4),
        oif: svc.ifindex,
        metric,
        pref_src: Some(addr),
    });
}

/// Table 255+ifindex with the subnet and default routes of each family that
/// has an address, and `from <addr> lookup <table>` for each address.
fn plan_multipath(svc: &Service, bands: RuleBands, st: &mut NetState) {
    let table = service_table(svc.ifindex);
    if let Some(v4) = &svc.ipv4 {
        let addr = IpAddr::V4(v4.net.addr);
        st.routes.push(RouteSpec {
            table,
            dst: IpPrefix {
                addr: IpAddr::V4(v4.net.network()),
                len: v4.net.prefix_len,
            },
            gateway: None,
            oif: svc.ifindex,
            metric: 0,
            pref_src: Some(addr),
        });
        st.routes.push(RouteSpec {
            table,
            dst: IpPrefix::default_for(addr),
            gateway: v4.gateway.map(IpAddr::V4),
            oif: svc.ifindex,
            metric: 0,
            pref_src: Some(addr),
        });
        st.rules.push(source_rule(addr, table, bands));
    }
    if !svc.ipv6.is_empty() {
        for a in &svc.ipv6 {
            let net = ipv6_network(a.addr, a.prefix_len);
            let route = RouteSpec {
                table,
                dst: IpPrefix {
                    addr: IpAddr::V6(net),
                    len: a.prefix_len,
                },
                gateway: None,
                oif: svc.ifindex,
                metric: IPV6_ROUTE_METRIC,
                pref_src: None,
            };
            if !st.routes.contains(&route) {
                st.routes.push(route);
            }
            st.rules.push(source_rule(IpAddr::V6(a.addr), table, bands));
        }
        if let Some(gw) = svc.ipv6_gateway {
            st.routes.push(RouteSpec {
                table,
                dst: IpPrefix::default_for(IpAddr::V6(gw)),
                gateway: Some(IpAddr::V6(gw)),
                oif: svc.ifindex,
                metric: IPV6_ROUTE_METRIC,
                pref_src: None,
            });
        }
    }
}

fn source_rule(addr: IpAddr, table: u32, bands: RuleBands) -> RuleSpec {
    RuleSpec {
        ipv6: addr.is_ipv6(),
        priority: bands.service_source,
        src: Some(IpPrefix {
            addr,
            len: if addr.is_ipv6() { 128 } else { 32 },
        }),
        fwmark: None,
        table,
    }
}

fn ipv6_network(addr: std::net::Ipv6Addr, len: u8) -> std::net::Ipv6Addr {
    let bits = u128::from(addr);
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    std::net::Ipv6Addr::from(bits & mask)
}

/// The resolv.conf text: nameservers and search domains of the default
/// service (configured ones first), or a comment when there is none.
pub fn resolv_conf(model: &Model) -> String {
    let mut out = String::from("# Generated by pathman\n");
    let Some(svc) = order::connected(model).next() else {
        return out;
    };
    let domains = Model::domains(svc);
    if !domains.is_empty() {
        out.push_str("search");
        for d in &domains {
            let _ = write!(out, " {d}");
        }
        out.push('\n');
    }
    for ns in Model::nameservers(svc) {
        let _ = writeln!(out, "nameserver {ns}");
    }
    out
}

/// MPTCP endpoints (SPEC §4): for each address of a connected service with
/// MultipathRouting on, `subflow` (MultipathTcpLink=on) or `subflow backup`
/// (backup), plus main.conf's extra flags (`signal`, `fullmesh`); none for
/// `off`. Default service first, so the cap keeps the most preferred.
pub fn endpoints(model: &Model, extra: EndpointFlags) -> Vec<DesiredEndpoint> {
    let mut out = Vec::new();
    for svc in order::connected(model) {
        if !svc.multipath(model.settings.multipath_default) {
            continue;
        }
        let flags = match svc.config.mptcp_link {
            MptcpLink::Off => continue,
            MptcpLink::On => EndpointFlags::SUBFLOW,
            MptcpLink::Backup => EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
        };
        for addr in Model::addresses(svc) {
            out.push(DesiredEndpoint {
                addr,
                ifindex: svc.ifindex,
                flags: flags | extra,
            });
        }
    }
    out
}
