//! MPTCP endpoints as plain values, and the planner that turns "these
//! addresses should be endpoints" plus "the kernel has these endpoints" into
//! the add/delete/set-flags operations between them (SPEC §4).

use std::fmt;
use std::net::IpAddr;
use std::ops::BitOr;

use crate::caps::{MPTCP_MAX_ENDPOINTS, MPTCP_MAX_LIMIT};

#[cfg(test)]
mod tests;

/// `MPTCP_PM_ADDR_FLAG_*` bits of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EndpointFlags(pub u32);

impl EndpointFlags {
    /// No flags.
    pub const NONE: EndpointFlags = EndpointFlags(0);
    /// Announce the address to the peer (ADD_ADDR; server side).
    pub const SIGNAL: EndpointFlags = EndpointFlags(1);
    /// Open subflows from this address (client side).
    pub const SUBFLOW: EndpointFlags = EndpointFlags(2);
    /// Subflows from this address are backup paths (MP_PRIO).
    pub const BACKUP: EndpointFlags = EndpointFlags(4);
    /// One subflow from this address to every known peer address.
    pub const FULLMESH: EndpointFlags = EndpointFlags(8);
    /// Created by the kernel for an address a subflow used; not configured.
    pub const IMPLICIT: EndpointFlags = EndpointFlags(16);
    /// The bits SET_FLAGS can change on a live endpoint. A change in any
    /// other bit needs the endpoint deleted and added again.
    pub const CHANGEABLE: EndpointFlags = EndpointFlags(4 | 8);

    /// True when every bit of `other` is set.
    pub fn contains(self, other: EndpointFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits set or cleared.
    pub fn with(self, other: EndpointFlags, on: bool) -> EndpointFlags {
        if on {
            EndpointFlags(self.0 | other.0)
        } else {
            EndpointFlags(self.0 & !other.0)
        }
    }

    /// Only the bits SET_FLAGS can change.
    pub fn changeable(self) -> EndpointFlags {
        EndpointFlags(self.0 & Self::CHANGEABLE.0)
    }

    /// Everything except the bits SET_FLAGS can change.
    pub fn fixed(self) -> EndpointFlags {
        EndpointFlags(self.0 & !Self::CHANGEABLE.0)
    }
}

impl BitOr for EndpointFlags {
    type Output = EndpointFlags;
    fn bitor(self, rhs: EndpointFlags) -> EndpointFlags {
        EndpointFlags(self.0 | rhs.0)
    }
}

/// Space-separated names as `ip mptcp endpoint show` prints them.
impl fmt::Display for EndpointFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(EndpointFlags, &str); 5] = [
            (EndpointFlags::SIGNAL, "signal"),
            (EndpointFlags::SUBFLOW, "subflow"),
            (EndpointFlags::BACKUP, "backup"),
            (EndpointFlags::FULLMESH, "fullmesh"),
            (EndpointFlags::IMPLICIT, "implicit"),
        ];
        let mut sep = "";
        let mut rest = self.0;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = " ";
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            write!(f, "{sep}{rest:#x}")?;
        }
        Ok(())
    }
}

/// An endpoint of the in-kernel path manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Endpoint id, 1..=255 (0 is the initial subflow's address, never an endpoint).
    pub id: u8,
    pub addr: IpAddr,
    /// Interface the endpoint is bound to (`dev`), if any.
    pub ifindex: Option<u32>,
    pub flags: EndpointFlags,
    /// Port for signal endpoints that announce one.
    pub port: Option<u16>,
}

/// Per-netns limits of the in-kernel path manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Extra subflows per connection.
    pub subflows: u32,
    /// ADD_ADDR announcements from the peer accepted per connection.
    pub add_addr_accepted: u32,
}

/// The limits pathman sets for `n_endpoints` endpoints: one subflow and one
/// accepted announcement per endpoint, capped at the kernel's maximum.
pub fn limits_for(n_endpoints: usize) -> Limits {
    let n = u32::try_from(n_endpoints)
        .unwrap_or(u32::MAX)
        .min(MPTCP_MAX_LIMIT);
    Limits {
        subflows: n,
        add_addr_accepted: n,
    }
}

/// An endpoint that pathman wants: address, interface, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredEndpoint {
    pub addr: IpAddr,
    pub ifindex: u32,
    pub flags: EndpointFlags,
}

/// One change to the kernel's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointOp {
    /// ADD_ADDR; the kernel picks the id.
    Add {
        addr: IpAddr,
        ifindex: u32,
        flags: EndpointFlags,
    },
    /// DEL_ADDR by id.
    Del { id: u8 },
    /// SET_FLAGS by id: only backup/fullmesh change.
    SetFlags { id: u8, flags: EndpointFlags },
}

impl EndpointOp {
    /// The change in `ip mptcp` words (`add endpoint 198.18.1.10 dev eth0
    /// subflow`), interfaces named by `ifname`.
    pub fn describe(&self, ifname: &dyn Fn(u32) -> String) -> String {
        match self {
            EndpointOp::Add {
                addr,
                ifindex,
                flags,
            } => format!("add endpoint {addr} dev {} {flags}", ifname(*ifindex)),
            EndpointOp::Del { id } => format!("delete endpoint id {id}"),
            EndpointOp::SetFlags { id, flags } => format!("change endpoint id {id} to {flags}"),
        }
    }
}

/// Whether pathman may change `ep`: it sits on an interface pathman
/// manages, or it has no interface but claims an address pathman wants.
/// Everything else belongs to someone else (the admin, another daemon).
fn is_ours(ep: &Endpoint, desired: &[DesiredEndpoint], managed: &[u32]) -> bool {
    match ep.ifindex {
        Some(ifindex) => managed.contains(&ifindex),
        None => desired.iter().any(|d| d.addr == ep.addr),
    }
}

/// The ops that turn `current` into `desired` on the managed interfaces
/// (`managed` lists their ifindexes), in the order to apply them:
/// deletes, then flag changes, then adds.
///
/// - An endpoint that is not ours (see `is_ours`) is never touched.
/// - Ours but not desired (also leftovers of a crashed pathman): deleted.
/// - Desired and present with only backup/fullmesh different: SetFlags.
/// - Desired and present with another interface, port or other flags:
///   deleted and added again.
/// - Adds stop where the kernel's endpoint cap would be passed; the
///   addresses left out are logged. A desired address held by an endpoint
///   that is not ours cannot be added (the kernel keys endpoints by
///   address) and is logged too. Later duplicates of an address are ignored.
pub fn plan(desired: &[DesiredEndpoint], current: &[Endpoint], managed: &[u32]) -> Vec<EndpointOp> {
    let mut dels = Vec::new();
    let mut set_flags = Vec::new();
    let mut adds: Vec<&DesiredEndpoint> = Vec::new();
    let mut kept = 0usize;

    for ep in current {
        if !is_ours(ep, desired, managed) {
            kept += 1;
            continue;
        }
        let want = desired.iter().find(|d| d.addr == ep.addr);
        match want {
            Some(d) if same_endpoint(ep, d) => {
                kept += 1;
                if ep.flags.changeable() != d.flags.changeable() {
                    set_flags.push(EndpointOp::SetFlags {
                        id: ep.id,
                        flags: d.flags,
                    });
                }
            }
            _ => dels.push(EndpointOp::Del { id: ep.id }),
        }
    }

    for (i, d) in desired.iter().enumerate() {
        if desired[..i].iter().any(|e| e.addr == d.addr) {
            continue;
        }
        match current.iter().find(|ep| ep.addr == d.addr) {
            Some(ep) if !is_ours(ep, desired, managed) => log::warn!(
                "mptcp: {} is already an endpoint (id {}) on an interface pathman does not manage; not adding it",
                d.addr,
                ep.id
            ),
            Some(ep) if same_endpoint(ep, d) => {}
            _ => adds.push(d),
        }
    }

    let room = MPTCP_MAX_ENDPOINTS.saturating_sub(kept);
    if adds.len() > room {
        let left_out: Vec<String> = adds[room..].iter().map(|d| d.addr.to_string()).collect();
        log::warn!(
            "mptcp: the kernel keeps at most {MPTCP_MAX_ENDPOINTS} endpoints; not adding {}",
            left_out.join(", ")
        );
        adds.truncate(room);
    }

    let mut ops = dels;
    ops.extend(set_flags);
    ops.extend(adds.into_iter().map(|d| EndpointOp::Add {
        addr: d.addr,
        ifindex: d.ifindex,
        flags: d.flags,
    }));
    ops
}

/// Same address, interface and port, and the flags differ at most in what
/// SET_FLAGS can change.
fn same_endpoint(ep: &Endpoint, d: &DesiredEndpoint) -> bool {
    ep.addr == d.addr
        && ep.ifindex == Some(d.ifindex)
        && ep.port.is_none()
        && ep.flags.fixed() == d.flags.fixed()
}
