//! Desired versus actual: the netlink operations that turn the kernel's
//! owned objects into the desired ones, in an order the kernel accepts
//! (addresses before the routes that use them; new routes before old ones
//! go, so a default route is never missing during a change).

use crate::core::netstate::{NetState, Op, RouteSpec};

/// Operations that make `current` equal to `desired`.
pub fn diff(desired: &NetState, current: &NetState) -> Vec<Op> {
    let mut ops = Vec::new();
    for a in &desired.addresses {
        if !current.addresses.contains(a) {
            ops.push(Op::AddAddress(*a));
        }
    }
    // Adds that take a key another route holds (a replace) go after the other
    // adds: when the default moves, the old default's new route (a higher
    // metric) exists before the new default replaces its metric-0 route, so
    // the old uplink is never without a route (its sockets bound to the
    // device would otherwise be routed as if the destination were on-link).
    let new_routes = || {
        desired
            .routes
            .iter()
            .filter(|r| !current.routes.contains(r))
    };
    let replaces = |r: &RouteSpec| current.routes.iter().any(|c| same_route_key(c, r));
    for r in new_routes().filter(|r| !replaces(r)) {
        ops.push(Op::AddRoute(*r));
    }
    for r in new_routes().filter(|r| replaces(r)) {
        ops.push(Op::AddRoute(*r));
    }
    for r in &desired.rules {
        if !current.rules.contains(r) {
            ops.push(Op::AddRule(*r));
        }
    }
    for r in &current.rules {
        if !desired.rules.contains(r) {
            ops.push(Op::DelRule(*r));
        }
    }
    for r in &current.routes {
        // A route an add replaces (same key) is gone with that add; deleting it
        // as well would hit another route: the kernel takes metric 0 in a
        // delete as "any metric".
        let replaced = desired
            .routes
            .iter()
            .any(|d| !current.routes.contains(d) && same_route_key(d, r));
        if !desired.routes.contains(r) && !replaced {
            ops.push(Op::DelRoute(*r));
        }
    }
    for a in &current.addresses {
        if !desired.addresses.contains(a) {
            ops.push(Op::DelAddress(*a));
        }
    }
    ops
}

/// Records in `current` the effect of an operation the kernel accepted.
pub fn record(current: &mut NetState, op: &Op) {
    match op {
        Op::AddAddress(a) => {
            if !current.addresses.contains(a) {
                current.addresses.push(*a)
            }
        }
        Op::DelAddress(a) => current.addresses.retain(|x| x != a),
        Op::AddRoute(r) => {
            // Route adds replace the kernel's route with the same key.
            current.routes.retain(|x| !same_route_key(x, r));
            current.routes.push(*r)
        }
        Op::DelRoute(r) => current.routes.retain(|x| x != r),
        Op::AddRule(r) => {
            if !current.rules.contains(r) {
                current.rules.push(*r)
            }
        }
        Op::DelRule(r) => current.rules.retain(|x| x != r),
    }
}

/// The kernel's identity of a route: an add with NLM_F_REPLACE replaces the
/// route with the same table, destination, metric (and family).
fn same_route_key(a: &RouteSpec, b: &RouteSpec) -> bool {
    a.table == b.table && a.dst == b.dst && a.metric == b.metric
}
