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
use crate::core::types::{MptcpLink, ServiceState};

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
///
/// A connected service without an IPv4 gateway (link-local only, a lease without a usable
/// router, manual without gateway) gets no default route in `main` while any connected
/// service has a gateway: its device route would catch everything the kernel does not
/// route elsewhere and black-hole it. When no connected service has a gateway it keeps
/// `default dev <if>` (a link-local-only LAN, where every host is on the link).
pub fn desired(model: &Model) -> NetState {
    let mut st = NetState::default();
    let bands = RuleBands::from_base(model.settings.rule_priority_base);
    let any_gateway = order::connected(model).any(|s| ipv4_gateway(s).is_some());
    for (rank, svc) in order::connected(model).enumerate() {
        let metric = if rank == 0 {
            caps::DEFAULT_ROUTE_METRIC
        } else {
            caps::FALLBACK_ROUTE_METRIC_BASE + svc.ifindex
        };
        plan_ipv4(svc, metric, any_gateway, &mut st);
        plan_ipv6_fixed(svc, metric, &mut st);
        if svc.multipath(model.settings.multipath_default) {
            plan_multipath(svc, bands, &mut st);
        }
    }
    session::plan(model, &model.sessions, &model.policies, bands, &mut st);
    // Tethering: the bridge's address (router and DHCP server of the
    // clients); the kernel adds the block's route in `main` with it.
    if let (Some(p), Some(bridge)) = (crate::core::tether::plan(model), model.tether.bridge) {
        st.addresses.push(AddressSpec {
            ifindex: bridge,
            addr: IpAddr::V4(p.block.gateway()),
            prefix_len: 24,
        });
    }
    crate::sort::sort(&mut st.addresses);
    // Routes without a gateway first: the kernel accepts `default via G` only once G is
    // reachable, which for a /32 lease is the on-link host route planned beside it.
    crate::sort::sort_by_key(&mut st.routes, |r| (r.gateway.is_some(), *r));
    crate::sort::sort(&mut st.rules);
    st
}

fn ipv4_gateway(svc: &Service) -> Option<std::net::Ipv4Addr> {
    svc.ipv4.as_ref().and_then(|v4| v4.gateway)
}

/// `<gw> dev <if> scope link` when the gateway is outside the service's subnet (a /32 or
/// /31 lease, RFC 3442-style): it makes the gateway reachable, so `default via <gw>` works.
fn gateway_host_route(
    v4: &crate::core::model::Ipv4Assigned,
    oif: u32,
    table: u32,
    metric: u32,
) -> Option<RouteSpec> {
    let gw = v4.gateway?;
    let gw_net = crate::core::types::Ipv4Net {
        addr: gw,
        prefix_len: v4.net.prefix_len,
    };
    if gw_net.network() == v4.net.network() {
        return None;
    }
    Some(RouteSpec {
        table,
        dst: IpPrefix {
            addr: IpAddr::V4(gw),
            len: 32,
        },
        gateway: None,
        oif,
        metric,
        pref_src: Some(IpAddr::V4(v4.net.addr)),
    })
}

fn plan_ipv4(svc: &Service, metric: u32, any_gateway: bool, st: &mut NetState) {
    let Some(v4) = &svc.ipv4 else { return };
    let addr = IpAddr::V4(v4.net.addr);
    st.addresses.push(AddressSpec {
        ifindex: svc.ifindex,
        addr,
        prefix_len: v4.net.prefix_len,
    });
    if v4.gateway.is_none() && any_gateway {
        return;
    }
    // The host route shares the default route's metric, so two uplinks with the same
    // gateway address (a common /32 setup) each keep their own.
    if let Some(host) = gateway_host_route(v4, svc.ifindex, TABLE_MAIN, metric) {
        st.routes.push(host);
    }
    st.routes.push(RouteSpec {
        table: TABLE_MAIN,
        dst: IpPrefix::default_for(addr),
        gateway: v4.gateway.map(IpAddr::V4),
        oif: svc.ifindex,
        metric,
        pref_src: Some(addr),
    });
}

/// The network-given IPv6 address (a cellular context's `IPv6.Settings`),
/// and a default route in `main` for it: no router advertisement brings one.
/// Skipped when the kernel already has that route from an RA. The metric
/// follows the service order like IPv4's (the kernel stores 0 as 1024).
fn plan_ipv6_fixed(svc: &Service, metric: u32, st: &mut NetState) {
    let Some(a) = svc.ipv6_fixed.as_ref().and_then(|f| f.addr) else {
        return;
    };
    let addr = IpAddr::V6(a.addr);
    st.addresses.push(AddressSpec {
        ifindex: svc.ifindex,
        addr,
        prefix_len: a.prefix_len,
    });
    let gateway = svc.ipv6_fixed.as_ref().and_then(|f| f.gateway);
    if gateway.is_some() && gateway == svc.ipv6_ra_gateway {
        return;
    }
    st.routes.push(RouteSpec {
        table: TABLE_MAIN,
        dst: IpPrefix::default_for(addr),
        gateway: gateway.map(IpAddr::V6),
        oif: svc.ifindex,
        metric: metric.max(IPV6_ROUTE_METRIC),
        pref_src: None,
    });
}

/// Table 255+ifindex with the subnet and default routes of each family that
/// has an address, and `from <addr> lookup <table>` for each address.
///
/// A service without an IPv4 gateway keeps `default dev <if>` in its own table: only
/// traffic from its own address uses the table, and that traffic must stay on its link
/// (RFC 3927 §2.6.2: link-local sources are never sent to a router) rather than fall
/// through to `main` and out of another uplink.
fn plan_multipath(svc: &Service, bands: RuleBands, st: &mut NetState) {
    let table = service_table(svc.ifindex);
    if let Some(v4) = &svc.ipv4 {
        let addr = IpAddr::V4(v4.net.addr);
        if let Some(host) = gateway_host_route(v4, svc.ifindex, table, 0) {
            st.routes.push(host);
        }
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
        // A network-given address without a router (a point-to-point
        // modem link) keeps `default dev <if>`, as in `main`.
        let fixed = svc.ipv6_fixed.as_ref().is_some_and(|f| f.addr.is_some());
        if svc.ipv6_gateway.is_some() || fixed {
            st.routes.push(RouteSpec {
                table,
                dst: IpPrefix::default_for(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
                gateway: svc.ipv6_gateway.map(IpAddr::V6),
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

/// MPTCP endpoints (SPEC §4): for each address (but IPv4 link-local) of a
/// connected service with MultipathRouting on, `subflow` (MultipathTcpLink=on)
/// or `subflow backup` (backup), plus main.conf's extra flags (`signal`,
/// `fullmesh`); none for `off`. Default service first, so the cap keeps the
/// most preferred.
pub fn endpoints(model: &Model, extra: EndpointFlags) -> Vec<DesiredEndpoint> {
    let mut out = Vec::new();
    // While another service is online, one the online check found without the
    // Internet is a backup path: MPTCP moves its traffic to the others at once
    // and keeps the subflow for when it returns (SPEC §6).
    let some_online = model.settings.online_check
        && model
            .services
            .iter()
            .any(|s| s.state == ServiceState::Online);
    for svc in order::connected(model) {
        if !svc.multipath(model.settings.multipath_default) {
            continue;
        }
        // Only a verdict makes a backup: a service still being checked keeps
        // its flags (no endpoint churn at start or after a restart).
        let offline = some_online && svc.internet_lost;
        // Metered (cellular): MPTCP sends over it only when the other paths fail.
        let metered =
            svc.tech == crate::core::types::Technology::Cellular && model.settings.metered_cellular;
        let flags = match svc.config.mptcp_link {
            MptcpLink::Off => continue,
            MptcpLink::On if offline || metered => EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
            MptcpLink::On => EndpointFlags::SUBFLOW,
            MptcpLink::Backup => EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
        };
        for addr in Model::addresses(svc) {
            // RFC 3927 §2.6.2: a link-local address is not for traffic beyond the link.
            if matches!(addr, IpAddr::V4(a) if a.is_link_local()) {
                continue;
            }
            out.push(DesiredEndpoint {
                addr,
                ifindex: svc.ifindex,
                flags: flags | extra,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{ConfigSource, DhcpConfig, LinkSeen, ModelSettings};
    use crate::core::netstate::Op;
    use crate::core::reconcile::diff;
    use crate::core::types::{Ipv4Net, ServerList, ServiceConfig, ServiceId, Technology};
    use std::net::Ipv4Addr;

    struct Defaults;
    impl ConfigSource for Defaults {
        fn load(&mut self, _id: &ServiceId) -> ServiceConfig {
            ServiceConfig::default()
        }
    }

    /// A model with connected ethernet services on `ifindexes` (DHCP running, no address).
    fn model(ifindexes: &[u32], multipath: bool) -> Model {
        let settings = ModelSettings {
            multipath_default: multipath,
            ..Default::default()
        };
        let mut m = Model::new(settings, false, &[]);
        for &i in ifindexes {
            let seen = LinkSeen {
                ifindex: i,
                name: heapless::String::try_from(format!("eth{}", i - 2).as_str()).unwrap(),
                mac: [2, 0x50, 0x4d, 0, 0, i as u8],
                tech: Technology::Ethernet,
                up: true,
                carrier: true,
                mtu: 1500,
                lan: false,
                master: None,
            };
            m.link_changed(seen, &mut Defaults);
        }
        m.take_actions();
        m
    }

    fn lease(addr: [u8; 4], prefix_len: u8, gateway: Option<[u8; 4]>) -> DhcpConfig {
        DhcpConfig {
            net: Ipv4Net {
                addr: Ipv4Addr::from(addr),
                prefix_len,
            },
            gateway: gateway.map(Ipv4Addr::from),
            nameservers: ServerList::new(),
            timeservers: ServerList::new(),
            domains: Default::default(),
        }
    }

    fn main_defaults(st: &NetState) -> Vec<(u32, Option<IpAddr>, u32)> {
        st.routes
            .iter()
            .filter(|r| r.table == TABLE_MAIN && r.dst.len == 0)
            .map(|r| (r.oif, r.gateway, r.metric))
            .collect()
    }

    fn gw(a: [u8; 4]) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    }

    #[test]
    fn weak_services_get_no_default_route_beside_a_gateway() {
        // eth1 (ifindex 3) link-local only, eth2 (4) a lease without router, eth3 (5) a
        // real lease: only eth3 has a default route, and it is the default service.
        let mut m = model(&[3, 4, 5], false);
        m.link_local_claimed(3, Ipv4Addr::new(169, 254, 7, 7));
        m.dhcp_bound(4, lease([198, 18, 2, 100], 24, None));
        m.dhcp_bound(5, lease([198, 18, 3, 100], 24, Some([198, 18, 3, 1])));
        let st = desired(&m);
        assert_eq!(st.addresses.len(), 3, "weak services keep their addresses");
        assert_eq!(main_defaults(&st), [(5, gw([198, 18, 3, 1]), 0)]);
        assert_eq!(order::connected(&m).next().map(|s| s.ifindex), Some(5));
        // Not even the user's order makes a weak service the default.
        let weak = m
            .services
            .iter()
            .find(|s| s.ifindex == 3)
            .unwrap()
            .id
            .clone();
        m.user_order.push(weak).unwrap();
        assert_eq!(order::connected(&m).next().map(|s| s.ifindex), Some(5));
        // The gateway service goes: the weak ones fall back to device routes.
        m.dhcp_lost(5);
        let st = desired(&m);
        let d = main_defaults(&st);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.iter().all(|(_, g, _)| g.is_none()), "{d:?}");
        assert_eq!(d.iter().filter(|(_, _, metric)| *metric == 0).count(), 1);
    }

    #[test]
    fn weak_service_keeps_a_device_default_in_its_own_table() {
        let mut m = model(&[3, 4], true);
        m.link_local_claimed(3, Ipv4Addr::new(169, 254, 7, 7));
        m.dhcp_bound(4, lease([198, 18, 2, 100], 24, Some([198, 18, 2, 1])));
        let st = desired(&m);
        let t = service_table(3);
        assert!(st
            .routes
            .iter()
            .any(|r| r.table == t && r.dst.len == 0 && r.gateway.is_none()));
        // A link-local address is no MPTCP endpoint.
        let eps = endpoints(&m, EndpointFlags::NONE);
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].ifindex, 4);
    }

    #[test]
    fn slash32_lease_reaches_its_gateway_on_link() {
        let mut m = model(&[3], true);
        m.dhcp_bound(3, lease([100, 64, 9, 9], 32, Some([100, 64, 0, 1])));
        let st = desired(&m);
        for (table, metric) in [(TABLE_MAIN, 0), (service_table(3), 0)] {
            let host = st
                .routes
                .iter()
                .position(|r| {
                    r.table == table
                        && r.dst.len == 32
                        && r.dst.addr == IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1))
                        && r.gateway.is_none()
                        && r.metric == metric
                })
                .expect("on-link host route to the gateway");
            let default = st
                .routes
                .iter()
                .position(|r| r.table == table && r.dst.len == 0)
                .expect("default route");
            assert_eq!(st.routes[default].gateway, gw([100, 64, 0, 1]));
            assert!(host < default, "the host route must go in first");
        }
        // The kernel gets them in that order too.
        let ops = diff(&st, &NetState::default());
        let pos = |want: &dyn Fn(&RouteSpec) -> bool| {
            ops.iter()
                .position(|o| matches!(o, Op::AddRoute(r) if want(r)))
                .unwrap()
        };
        assert!(pos(&|r| r.dst.len == 32 && r.table == TABLE_MAIN) < pos(&|r| r.dst.len == 0));
        // An on-subnet gateway needs no host route.
        let mut m = model(&[3], false);
        m.dhcp_bound(3, lease([198, 18, 1, 100], 24, Some([198, 18, 1, 1])));
        assert!(desired(&m).routes.iter().all(|r| r.dst.len == 0));
    }
}
