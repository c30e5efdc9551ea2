//! Service order (ConnMan's rules, SPEC §3): connected before not connected,
//! services with a default gateway before those without, online before ready
//! (a service whose online check has not answered yet counts as online),
//! the user's MoveBefore/MoveAfter order, preferred technologies, technology
//! rank, favourites, WiFi strength, then interface index and identifier for
//! a stable tie-break.
//! The first connected service is the default.

use std::cmp::Ordering;

use crate::core::model::{Model, Service};
use crate::core::types::ServiceState;

/// Online before ready, as ConnMan; but a ready service whose online check
/// has not answered yet ranks with the online ones: the order (and the
/// default route) does not flip at start or after a restart as the checks of
/// the uplinks finish in whatever order. Only a verdict (no Internet, a
/// portal) puts a service below.
fn state_rank(s: &Service) -> u8 {
    match s.state {
        ServiceState::Online => 0,
        ServiceState::Ready if !s.internet_lost => 0,
        ServiceState::Ready => 1,
        ServiceState::Configuration | ServiceState::Association => 2,
        _ => 3,
    }
}

/// True when the service has no default gateway in either family (link-local only, a
/// lease without a usable router, manual without gateway): it cannot reach beyond its
/// link, so it must not be the default while one that can is connected. An IPv6 router
/// counts: an IPv6-only uplink is not weak.
fn no_gateway(s: &Service) -> bool {
    s.ipv4.as_ref().and_then(|v4| v4.gateway).is_none() && s.ipv6_gateway.is_none()
}

fn compare(model: &Model, a: &Service, b: &Service) -> Ordering {
    let connected = |s: &Service| !s.state.is_connected();
    connected(a)
        .cmp(&connected(b))
        .then_with(|| no_gateway(a).cmp(&no_gateway(b)))
        .then_with(|| state_rank(a).cmp(&state_rank(b)))
        .then_with(|| {
            let pos = |s: &Service| model.user_order.iter().position(|id| *id == s.id);
            match (pos(a), pos(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => Ordering::Equal,
            }
        })
        .then_with(|| {
            let pref = |s: &Service| {
                model
                    .settings
                    .preferred
                    .iter()
                    .position(|t| *t == s.tech)
                    .unwrap_or(usize::MAX)
            };
            pref(a).cmp(&pref(b))
        })
        .then_with(|| a.tech.cmp(&b.tech))
        .then_with(|| b.config.favorite.cmp(&a.config.favorite))
        .then_with(|| strength(b).cmp(&strength(a)))
        .then_with(|| a.ifindex.cmp(&b.ifindex))
        .then_with(|| a.id.cmp(&b.id))
}

/// A WiFi network's signal (wired services have none and tie).
fn strength(s: &Service) -> u8 {
    s.wifi.as_ref().map_or(0, |w| w.strength)
}

/// Indices into `model.services`, in service order.
pub fn sorted(model: &Model) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..model.services.len()).collect();
    crate::sort::sort_by(&mut idx, |&a, &b| {
        compare(model, &model.services[a], &model.services[b])
    });
    idx
}

/// Connected services in order; the first is the default service.
pub fn connected(model: &Model) -> impl Iterator<Item = &Service> {
    sorted(model)
        .into_iter()
        .map(move |i| &model.services[i])
        .filter(|s| s.state.is_connected())
}
