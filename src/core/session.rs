//! Sessions (SPEC §5) as plain data: which service a session rides, which
//! other services it may use (MultipathRoutedServices), its state, and what
//! that means for the kernel: a table and a `fwmark` rule per session,
//! source+mark rules for its multipath services, and the nftables marks
//! (policy uid/gid, SourceIPRule, flow selectors) with the SNAT that keeps
//! re-routed traffic answerable.

use std::net::IpAddr;

use crate::caps;
use crate::core::firewall::{FlowMatch, MarkRule, Match, Ruleset, SnatRule};
use crate::core::flow::FlowSelector;
use crate::core::model::{Model, RequestError, Service};
use crate::core::netstate::{IpPrefix, NetState, RouteSpec, RuleSpec};
use crate::core::order;
use crate::core::plan::{service_table, RuleBands, IPV6_ROUTE_METRIC};
use crate::core::session_policy::{
    effective, find_policy, ConnectionType, Effective, PolicyRule, UserSettings,
};
use crate::core::types::{ServiceId, ServiceState};

/// One client's session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// n: the session's mark and table are `SESSION_MARK_BASE + n`.
    pub index: u32,
    /// Unique bus name of the creator; only it may change or destroy the session.
    pub owner: String,
    /// The creator's uid and groups, for policy matching.
    pub owner_uid: u32,
    pub owner_gids: Vec<u32>,
    /// The creator is root or in AdminGroup: its selectors mark every user's
    /// packets; an unprivileged creator's mark only the creator's own.
    pub owner_admin: bool,
    /// The session's object path.
    pub path: String,
    /// The creator's `net.connman.Notification` object.
    pub notifier: String,
    pub user: UserSettings,
    pub flows: heapless::Vec<FlowSelector, { caps::MAX_SELECTORS_PER_SESSION }>,
    /// `None`: filled automatically; `Some`: the client's list.
    pub mpath_requested: Option<Vec<ServiceId>>,
    /// Connect was called (and not Disconnect).
    pub active: bool,
}

impl Session {
    /// The session's firewall mark, which is also its routing table.
    pub fn mark(&self) -> u32 {
        caps::SESSION_MARK_BASE + self.index
    }
}

/// What a session amounts to right now.
#[derive(Debug, Clone, PartialEq)]
pub struct View<'a> {
    pub eff: Effective,
    pub service: Option<&'a Service>,
    pub mpath: Vec<&'a Service>,
}

impl View<'_> {
    /// `State` of the session: disconnected, connected or online.
    pub fn state(&self) -> &'static str {
        match self.service.map(|s| s.state) {
            Some(ServiceState::Online) => "online",
            Some(ServiceState::Ready) => "connected",
            _ => "disconnected",
        }
    }
}

fn matches(eff: &Effective, svc: &Service) -> bool {
    let type_ok = match eff.connection_type {
        // ConnMan: an internet session needs an online service.
        ConnectionType::Internet => svc.state == ServiceState::Online,
        ConnectionType::Local | ConnectionType::Any => svc.state.is_connected(),
    };
    let iface_ok = match eff.allowed_interface.as_deref() {
        None | Some("*") => true,
        Some(name) => svc.ifname.as_str() == name,
    };
    type_ok && iface_ok && eff.allowed_bearers.contains(&svc.tech)
}

/// Computes a session's view: its service is the first connected service
/// matching AllowedBearers in preference order (service order within a
/// bearer), AllowedInterface and ConnectionType.
pub fn view<'a>(model: &'a Model, session: &Session, policies: &[PolicyRule]) -> View<'a> {
    let policy = find_policy(policies, session.owner_uid, &session.owner_gids);
    let eff = effective(&session.user, policy);
    let connected: Vec<&Service> = order::connected(model).collect();
    let service = eff.allowed_bearers.iter().find_map(|tech| {
        connected
            .iter()
            .copied()
            .find(|s| s.tech == *tech && matches(&eff, s))
    });
    let multipath_default = model.settings.multipath_default;
    let mpath = match (&session.mpath_requested, service) {
        (_, None) => Vec::new(),
        (None, Some(own)) => connected
            .iter()
            .copied()
            .filter(|s| s.id != own.id && s.multipath(multipath_default) && matches(&eff, s))
            .collect(),
        (Some(ids), Some(own)) => ids
            .iter()
            .filter_map(|id| connected.iter().copied().find(|s| s.id == *id))
            .filter(|s| s.id != own.id && s.multipath(multipath_default))
            .collect(),
    };
    View {
        eff,
        service,
        mpath,
    }
}

fn addrs_of(svc: &Service) -> Vec<IpAddr> {
    Model::addresses(svc).collect()
}

/// Adds the sessions' routes and rules to the desired kernel state.
pub fn plan(
    model: &Model,
    sessions: &[Box<Session>],
    policies: &[PolicyRule],
    bands: RuleBands,
    st: &mut NetState,
) {
    for session in sessions {
        let v = view(model, session, policies);
        let Some(svc) = v.service else { continue };
        let mark = session.mark();
        if let Some(a) = &svc.ipv4 {
            let src = IpAddr::V4(a.net.addr);
            st.routes.push(RouteSpec {
                table: mark,
                dst: IpPrefix {
                    addr: IpAddr::V4(a.net.network()),
                    len: a.net.prefix_len,
                },
                gateway: None,
                oif: svc.ifindex,
                metric: 0,
                pref_src: Some(src),
            });
            st.routes.push(RouteSpec {
                table: mark,
                dst: IpPrefix::default_for(src),
                gateway: a.gateway.map(IpAddr::V4),
                oif: svc.ifindex,
                metric: 0,
                pref_src: Some(src),
            });
        }
        if let (Some(gw), false) = (svc.ipv6_gateway, svc.ipv6.is_empty()) {
            st.routes.push(RouteSpec {
                table: mark,
                dst: IpPrefix::default_for(IpAddr::V6(gw)),
                gateway: Some(IpAddr::V6(gw)),
                oif: svc.ifindex,
                metric: IPV6_ROUTE_METRIC,
                pref_src: None,
            });
        }
        for ipv6 in [false, true] {
            st.rules.push(RuleSpec {
                ipv6,
                priority: bands.session_default,
                src: None,
                fwmark: Some(mark),
                table: mark,
            });
        }
        for other in &v.mpath {
            for addr in addrs_of(other) {
                st.rules.push(RuleSpec {
                    ipv6: addr.is_ipv6(),
                    priority: bands.session_multipath,
                    src: Some(IpPrefix {
                        addr,
                        len: if addr.is_ipv6() { 128 } else { 32 },
                    }),
                    fwmark: Some(mark),
                    table: service_table(other.ifindex),
                });
            }
        }
    }
}

/// The nftables marking and SNAT for all sessions.
pub fn ruleset(model: &Model, sessions: &[Box<Session>], policies: &[PolicyRule]) -> Ruleset {
    let mut rs = Ruleset::default();
    for session in sessions {
        let v = view(model, session, policies);
        let Some(svc) = v.service else { continue };
        let mark = session.mark();
        // Whose packets the session's own selectors may steer: everyone's
        // for an admin (or where a root-owned policy says so), else only
        // the creator's sockets.
        let only_uid =
            (!session.owner_admin && !v.eff.selectors_for_all_users).then_some(session.owner_uid);
        if let Some(uid) = v.eff.policy_uid {
            rs.marks.push(MarkRule {
                mark,
                m: Match::Uid(uid),
            });
        }
        if let Some(gid) = v.eff.policy_gid {
            rs.marks.push(MarkRule {
                mark,
                m: Match::Gid(gid),
            });
        }
        if v.eff.source_ip_rule {
            for addr in addrs_of(svc) {
                let m = match only_uid {
                    None => Match::Saddr(addr),
                    Some(uid) => Match::Flow(FlowMatch {
                        src: Some((addr, if addr.is_ipv6() { 128 } else { 32 })),
                        uid: Some(uid),
                        ..FlowMatch::default()
                    }),
                };
                rs.marks.push(MarkRule { mark, m });
            }
        }
        for f in &session.flows {
            let m = FlowMatch {
                uid: only_uid,
                ..f.to_match()
            };
            // A tethered client's traffic is forwarded, never locally sent:
            // an admin's selector whose source lies in the tether block
            // marks it at prerouting too, so the client uses the session's
            // uplink (README: "Steering a LAN host").
            if only_uid.is_none() && forwarded_source(model, &m) {
                rs.forward_marks.push(MarkRule {
                    mark,
                    m: Match::Flow(m.clone()),
                });
            }
            rs.marks.push(MarkRule {
                mark,
                m: Match::Flow(m),
            });
        }
        if let Some(a) = &svc.ipv4 {
            rs.snat.push(SnatRule {
                mark,
                oif: svc.ifindex,
                addr: IpAddr::V4(a.net.addr),
            });
        }
        if let Some(a) = svc.ipv6.first() {
            rs.snat.push(SnatRule {
                mark,
                oif: svc.ifindex,
                addr: IpAddr::V6(a.addr),
            });
        }
    }
    rs.masquerade = crate::core::tether::masquerade(model);
    rs.offload = crate::core::tether::offload(model, &rs.masquerade);
    rs
}

/// Whether a selector's source is inside the tether block (a LAN client).
fn forwarded_source(model: &Model, m: &FlowMatch) -> bool {
    let (Some(block), Some((IpAddr::V4(a), len))) = (model.tether.block, m.src) else {
        return false;
    };
    len >= 24 && block.contains(a) && crate::core::tether::plan(model).is_some()
}

/// The lowest free session index, or `None` when every mark is taken.
pub fn free_index(sessions: &[Box<Session>]) -> Option<u32> {
    (0..caps::MAX_SESSIONS as u32).find(|n| !sessions.iter().any(|s| s.index == *n))
}

/// The object path of a session: `/sessions/<owner>` + the notifier path,
/// with the characters of a unique name that paths cannot hold replaced.
pub fn session_path(owner: &str, notifier: &str) -> String {
    let owner: String = owner
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tail = if notifier == "/" { "" } else { notifier };
    format!("/sessions/{owner}{tail}")
}

/// Who creates a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// Unique bus name.
    pub name: String,
    pub uid: u32,
    /// Primary and supplementary groups.
    pub gids: Vec<u32>,
    /// Root or a member of AdminGroup.
    pub admin: bool,
}

/// A new, empty session for `who` at `notifier`, or why there cannot be
/// one: the path exists, the connection or the user holds its share (so a
/// user who floods CreateSession from many connections is stopped too), the
/// marks left for unprivileged users are taken (some are always kept for
/// root and AdminGroup), or every mark is taken. Settings are applied to the
/// result before [`insert`].
pub fn admit(model: &Model, who: &Creator, notifier: &str) -> Result<Session, RequestError> {
    let owner = who.name.as_str();
    let path = session_path(owner, notifier);
    if model.sessions.iter().any(|s| s.path == path) {
        return Err(RequestError::AlreadyExists(format!(
            "{owner} already has a session for {notifier}"
        )));
    }
    if !who.admin {
        let owned = model.sessions.iter().filter(|s| s.owner == owner).count();
        if owned >= caps::MAX_SESSIONS_PER_CLIENT {
            return Err(RequestError::Failed(format!(
                "{owner} owns {owned} sessions, the most one client may have (caps::MAX_SESSIONS_PER_CLIENT)"
            )));
        }
        let by_uid = model
            .sessions
            .iter()
            .filter(|s| !s.owner_admin && s.owner_uid == who.uid)
            .count();
        if by_uid >= caps::MAX_SESSIONS_PER_UID {
            return Err(RequestError::Failed(format!(
                "uid {} owns {by_uid} sessions, the most one user may have (caps::MAX_SESSIONS_PER_UID)",
                who.uid
            )));
        }
        let unprivileged = model.sessions.iter().filter(|s| !s.owner_admin).count();
        if unprivileged >= caps::MAX_SESSIONS - caps::SESSIONS_RESERVED_FOR_ADMIN {
            return Err(RequestError::Failed(format!(
                "{unprivileged} sessions of unprivileged users exist; the remaining marks are kept for root and AdminGroup (caps::SESSIONS_RESERVED_FOR_ADMIN)"
            )));
        }
    }
    let index = free_index(&model.sessions).ok_or_else(|| {
        RequestError::Failed(format!(
            "{} sessions exist, the most pathman keeps (caps::MAX_SESSIONS)",
            caps::MAX_SESSIONS
        ))
    })?;
    Ok(Session {
        index,
        owner: owner.to_string(),
        owner_uid: who.uid,
        owner_gids: who.gids.clone(),
        owner_admin: who.admin,
        path,
        notifier: notifier.to_string(),
        user: UserSettings::default(),
        flows: heapless::Vec::new(),
        mpath_requested: None,
        active: false,
    })
}

/// Checks the selector caps with `s` in place of the session at its path
/// (or added): over all sessions, and for an unprivileged owner also per
/// user and over all unprivileged users (so some room is always left for
/// root and AdminGroup).
fn check_total(model: &Model, s: &Session) -> Result<(), RequestError> {
    let sum = |keep: &dyn Fn(&Session) -> bool| -> usize {
        model
            .sessions
            .iter()
            .filter(|o| o.path != s.path && keep(o))
            .map(|o| o.flows.len())
            .sum::<usize>()
            + if keep(s) { s.flows.len() } else { 0 }
    };
    let limits: [(usize, usize, &str); 3] = [
        (
            sum(&|_| true),
            caps::MAX_SELECTORS_TOTAL,
            "over all sessions (caps::MAX_SELECTORS_TOTAL)",
        ),
        (
            sum(&|o| !o.owner_admin && o.owner_uid == s.owner_uid),
            if s.owner_admin { usize::MAX } else { caps::MAX_SELECTORS_PER_UID },
            "of this user (caps::MAX_SELECTORS_PER_UID)",
        ),
        (
            sum(&|o| !o.owner_admin),
            if s.owner_admin {
                usize::MAX
            } else {
                caps::MAX_SELECTORS_TOTAL - caps::SELECTORS_RESERVED_FOR_ADMIN
            },
            "of unprivileged users; the rest is kept for root and AdminGroup (caps::SELECTORS_RESERVED_FOR_ADMIN)",
        ),
    ];
    for (total, cap, what) in limits {
        if total > cap {
            return Err(RequestError::InvalidArguments(format!(
                "FlowSelectors: {total} selectors {what}, more than {cap}"
            )));
        }
    }
    Ok(())
}

/// Adds a session made by [`admit`] (with its settings applied).
pub fn insert(model: &mut Model, s: Session) -> Result<(), RequestError> {
    check_total(model, &s)?;
    log::info!(
        "session {}: created by {} (uid {}), mark {:#x}",
        s.path,
        s.owner,
        s.owner_uid,
        s.mark()
    );
    model
        .sessions
        .push(Box::new(s))
        .map_err(|_| RequestError::Failed("no room for another session".into()))
}

/// The index of `caller`'s session at `path`; only the creator may touch it.
pub fn owned(model: &Model, caller: &str, path: &str) -> Result<usize, RequestError> {
    let i = model
        .sessions
        .iter()
        .position(|s| s.path == path)
        .ok_or_else(|| RequestError::NotFound(format!("session {path}")))?;
    if model.sessions[i].owner != caller {
        return Err(RequestError::PermissionDenied(format!(
            "session {path} belongs to another client"
        )));
    }
    Ok(i)
}

/// Puts a changed copy of session `i` in place (see [`owned`]).
pub fn replace(model: &mut Model, i: usize, s: Session) -> Result<(), RequestError> {
    check_total(model, &s)?;
    *model.sessions[i] = s;
    Ok(())
}

/// Manager.DestroySession / Session.Destroy.
pub fn destroy(model: &mut Model, caller: &str, path: &str) -> Result<(), RequestError> {
    let i = owned(model, caller, path)?;
    model.sessions.remove(i);
    log::info!("session {path}: destroyed");
    Ok(())
}

/// Session.Connect / Disconnect.
pub fn set_active(
    model: &mut Model,
    caller: &str,
    path: &str,
    active: bool,
) -> Result<(), RequestError> {
    let i = owned(model, caller, path)?;
    model.sessions[i].active = active;
    if active {
        model.auto_connect();
    }
    Ok(())
}

/// Drops every session of a client that left the bus; returns how many.
pub fn drop_owner(model: &mut Model, owner: &str) -> usize {
    let before = model.sessions.len();
    model.sessions.retain(|s| s.owner != owner);
    let n = before - model.sessions.len();
    if n > 0 {
        log::info!("{owner} left the bus: {n} session(s) destroyed");
    }
    n
}
