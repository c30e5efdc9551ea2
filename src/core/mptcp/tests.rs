use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

const SUB: EndpointFlags = EndpointFlags::SUBFLOW;
const SIG: EndpointFlags = EndpointFlags::SIGNAL;
const BAK: EndpointFlags = EndpointFlags::BACKUP;
const FM: EndpointFlags = EndpointFlags::FULLMESH;
const IMP: EndpointFlags = EndpointFlags::IMPLICIT;

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

fn want(n: u8, ifindex: u32, flags: EndpointFlags) -> DesiredEndpoint {
    DesiredEndpoint {
        addr: ip(n),
        ifindex,
        flags,
    }
}

fn ep(id: u8, n: u8, ifindex: Option<u32>, flags: EndpointFlags) -> Endpoint {
    Endpoint {
        id,
        addr: ip(n),
        ifindex,
        flags,
        port: None,
    }
}

fn add(n: u8, ifindex: u32, flags: EndpointFlags) -> EndpointOp {
    EndpointOp::Add {
        addr: ip(n),
        ifindex,
        flags,
    }
}

fn del(id: u8) -> EndpointOp {
    EndpointOp::Del { id }
}

fn set(id: u8, flags: EndpointFlags) -> EndpointOp {
    EndpointOp::SetFlags { id, flags }
}

struct Case {
    name: &'static str,
    desired: Vec<DesiredEndpoint>,
    current: Vec<Endpoint>,
    managed: Vec<u32>,
    ops: Vec<EndpointOp>,
}

#[test]
fn plan_table() {
    let ported = Endpoint {
        port: Some(8080),
        ..ep(3, 1, Some(2), SUB)
    };
    let cases = vec![
        Case {
            name: "nothing to do",
            desired: vec![],
            current: vec![],
            managed: vec![2],
            ops: vec![],
        },
        Case {
            name: "add missing",
            desired: vec![want(1, 2, SUB), want(2, 3, SUB | BAK)],
            current: vec![],
            managed: vec![2, 3],
            ops: vec![add(1, 2, SUB), add(2, 3, SUB | BAK)],
        },
        Case {
            name: "already as wanted",
            desired: vec![want(1, 2, SUB)],
            current: vec![ep(5, 1, Some(2), SUB)],
            managed: vec![2],
            ops: vec![],
        },
        Case {
            name: "backup toggles via set flags",
            desired: vec![want(1, 2, SUB | BAK)],
            current: vec![ep(5, 1, Some(2), SUB)],
            managed: vec![2],
            ops: vec![set(5, SUB | BAK)],
        },
        Case {
            name: "fullmesh off via set flags",
            desired: vec![want(1, 2, SUB)],
            current: vec![ep(5, 1, Some(2), SUB | FM)],
            managed: vec![2],
            ops: vec![set(5, SUB)],
        },
        Case {
            name: "signal/subflow change is delete + add",
            desired: vec![want(1, 2, SUB | SIG)],
            current: vec![ep(5, 1, Some(2), SUB | BAK)],
            managed: vec![2],
            ops: vec![del(5), add(1, 2, SUB | SIG)],
        },
        Case {
            name: "moved to another managed interface",
            desired: vec![want(1, 3, SUB)],
            current: vec![ep(5, 1, Some(2), SUB)],
            managed: vec![2, 3],
            ops: vec![del(5), add(1, 3, SUB)],
        },
        Case {
            name: "port set is delete + add",
            desired: vec![want(1, 2, SUB)],
            current: vec![ported],
            managed: vec![2],
            ops: vec![del(3), add(1, 2, SUB)],
        },
        Case {
            name: "stale endpoint on managed interface deleted",
            desired: vec![],
            current: vec![ep(7, 9, Some(2), SUB)],
            managed: vec![2],
            ops: vec![del(7)],
        },
        Case {
            name: "implicit endpoint on managed interface deleted",
            desired: vec![],
            current: vec![ep(7, 9, Some(2), IMP)],
            managed: vec![2],
            ops: vec![del(7)],
        },
        Case {
            name: "unmanaged interface untouched",
            desired: vec![],
            current: vec![ep(7, 9, Some(4), SUB)],
            managed: vec![2],
            ops: vec![],
        },
        Case {
            name: "no interface, address not desired: untouched",
            desired: vec![want(1, 2, SUB)],
            current: vec![ep(7, 9, None, SIG)],
            managed: vec![2],
            ops: vec![add(1, 2, SUB)],
        },
        Case {
            name: "no interface, desired address: rebound to the interface",
            desired: vec![want(1, 2, SUB)],
            current: vec![ep(7, 1, None, SUB)],
            managed: vec![2],
            ops: vec![del(7), add(1, 2, SUB)],
        },
        Case {
            name: "desired address held on unmanaged interface: skipped",
            desired: vec![want(1, 2, SUB)],
            current: vec![ep(7, 1, Some(4), SUB)],
            managed: vec![2],
            ops: vec![],
        },
        Case {
            name: "duplicate desired address: first wins",
            desired: vec![want(1, 2, SUB), want(1, 3, SUB | BAK)],
            current: vec![],
            managed: vec![2, 3],
            ops: vec![add(1, 2, SUB)],
        },
        Case {
            name: "deletes before set flags before adds",
            desired: vec![want(1, 2, SUB), want(2, 2, SUB | BAK)],
            current: vec![ep(1, 2, Some(2), SUB), ep(2, 3, Some(2), SUB)],
            managed: vec![2],
            ops: vec![del(2), set(1, SUB | BAK), add(1, 2, SUB)],
        },
        Case {
            name: "cap counts unmanaged endpoints",
            desired: (1..=4).map(|n| want(n, 2, SUB)).collect(),
            current: (11..=16).map(|n| ep(n, n, Some(9), SUB)).collect(),
            managed: vec![2],
            ops: vec![add(1, 2, SUB), add(2, 2, SUB)],
        },
        Case {
            name: "cap counts deletes as freed",
            desired: (1..=8).map(|n| want(n, 2, SUB)).collect(),
            current: (11..=18).map(|n| ep(n, n, Some(2), SUB)).collect(),
            managed: vec![2],
            ops: (11..=18)
                .map(del)
                .chain((1..=8).map(|n| add(n, 2, SUB)))
                .collect(),
        },
        Case {
            name: "cap: more than 8 desired",
            desired: (1..=10).map(|n| want(n, 2, SUB)).collect(),
            current: vec![],
            managed: vec![2],
            ops: (1..=8).map(|n| add(n, 2, SUB)).collect(),
        },
    ];
    for c in cases {
        assert_eq!(
            plan(&c.desired, &c.current, &c.managed),
            c.ops,
            "case: {}",
            c.name
        );
    }
}

#[test]
fn ipv6_endpoints() {
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let d = [DesiredEndpoint {
        addr: v6,
        ifindex: 2,
        flags: SUB,
    }];
    let ops = plan(&d, &[], &[2]);
    assert_eq!(
        ops,
        vec![EndpointOp::Add {
            addr: v6,
            ifindex: 2,
            flags: SUB
        }]
    );
}

#[test]
fn limits_follow_endpoints() {
    assert_eq!(
        limits_for(0),
        Limits {
            subflows: 0,
            add_addr_accepted: 0
        }
    );
    assert_eq!(limits_for(3).subflows, 3);
    assert_eq!(limits_for(3).add_addr_accepted, 3);
    assert_eq!(limits_for(8).subflows, 8);
    assert_eq!(limits_for(100).subflows, 8);
    assert_eq!(limits_for(usize::MAX).add_addr_accepted, 8);
}

#[test]
fn flags_helpers_and_display() {
    let f = SUB | BAK;
    assert!(f.contains(BAK));
    assert!(!f.contains(FM));
    assert_eq!(f.with(BAK, false), SUB);
    assert_eq!(SUB.with(FM, true), SUB | FM);
    assert_eq!(f.changeable(), BAK);
    assert_eq!(f.fixed(), SUB);
    assert_eq!(f.to_string(), "subflow backup");
    assert_eq!(EndpointFlags(0x22).to_string(), "subflow 0x20");
    assert_eq!(EndpointFlags::NONE.to_string(), "");
}

/// A model of the kernel's endpoint table: what each op does, and the
/// errors it would give.
fn apply(current: &[Endpoint], ops: &[EndpointOp]) -> Result<Vec<Endpoint>, String> {
    let mut eps = current.to_vec();
    for op in ops {
        match *op {
            EndpointOp::Del { id } => {
                let i = eps
                    .iter()
                    .position(|e| e.id == id)
                    .ok_or(format!("del {id}: ENOENT"))?;
                eps.remove(i);
            }
            EndpointOp::SetFlags { id, flags } => {
                let e = eps
                    .iter_mut()
                    .find(|e| e.id == id)
                    .ok_or(format!("set {id}: ENOENT"))?;
                e.flags = EndpointFlags(e.flags.fixed().0 | flags.changeable().0);
            }
            EndpointOp::Add {
                addr,
                ifindex,
                flags,
            } => {
                if eps.len() >= MPTCP_MAX_ENDPOINTS {
                    return Err(format!("add {addr}: ERANGE"));
                }
                if eps.iter().any(|e| e.addr == addr) {
                    return Err(format!("add {addr}: EEXIST"));
                }
                let id = (1..=255u8)
                    .find(|id| eps.iter().all(|e| e.id != *id))
                    .ok_or("no free id")?;
                eps.push(Endpoint {
                    id,
                    addr,
                    ifindex: Some(ifindex),
                    flags,
                    port: None,
                });
            }
        }
    }
    Ok(eps)
}

fn arb_flags() -> impl Strategy<Value = EndpointFlags> {
    (0u32..32).prop_map(EndpointFlags)
}

/// The kernel refuses signal+fullmesh and never takes implicit from
/// userspace, so desired flags are drawn without those.
fn arb_desired_flags() -> impl Strategy<Value = EndpointFlags> {
    (0u32..16)
        .prop_filter("signal+fullmesh", |f| f & 9 != 9)
        .prop_map(EndpointFlags)
}

fn arb_current() -> impl Strategy<Value = Vec<Endpoint>> {
    prop::collection::vec(
        (
            0u8..12,
            prop::option::weighted(0.8, 1u32..5),
            arb_flags(),
            prop::option::weighted(0.1, 1u16..3),
        ),
        0..=MPTCP_MAX_ENDPOINTS,
    )
    .prop_map(|raw| {
        let mut eps: Vec<Endpoint> = Vec::new();
        for (n, ifindex, flags, port) in raw {
            // The kernel keys endpoints by address: no duplicates.
            if eps.iter().all(|e| e.addr != ip(n)) {
                let id = eps.len() as u8 + 1;
                eps.push(Endpoint {
                    id,
                    addr: ip(n),
                    ifindex,
                    flags,
                    port,
                });
            }
        }
        eps
    })
}

proptest! {
    #[test]
    fn plan_reaches_desired_state(
        current in arb_current(),
        managed in prop::collection::vec(1u32..5, 0..4),
        raw_desired in prop::collection::vec((0u8..12, 0usize..4, arb_desired_flags()), 0..12),
    ) {
        let desired: Vec<DesiredEndpoint> = raw_desired
            .iter()
            .filter_map(|&(n, i, flags)| {
                managed.get(i % managed.len().max(1)).map(|&ifindex| want(n, ifindex, flags))
            })
            .collect();
        let ops = plan(&desired, &current, &managed);
        let after = apply(&current, &ops).map_err(TestCaseError::fail)?;

        // Deletes, then flag changes, then adds.
        let rank = |op: &EndpointOp| match op {
            EndpointOp::Del { .. } => 0,
            EndpointOp::SetFlags { .. } => 1,
            EndpointOp::Add { .. } => 2,
        };
        prop_assert!(ops.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));

        // Endpoints that are not ours are exactly as they were.
        let foreign: Vec<&Endpoint> =
            current.iter().filter(|e| !is_ours(e, &desired, &managed)).collect();
        for e in &foreign {
            prop_assert!(after.contains(e), "foreign endpoint {e:?} changed");
        }
        prop_assert!(after.len() <= MPTCP_MAX_ENDPOINTS);

        // Every endpoint of ours is desired, exactly as desired.
        let ours: Vec<&Endpoint> = after.iter().filter(|e| !foreign.contains(e)).collect();
        for e in &ours {
            let d = desired.iter().find(|d| d.addr == e.addr);
            prop_assert!(d.is_some(), "undesired endpoint {e:?} left");
            if let Some(d) = d {
                prop_assert_eq!(e.ifindex, Some(d.ifindex));
                prop_assert_eq!(e.flags, d.flags);
                prop_assert_eq!(e.port, None);
            }
        }

        // Every desired address that is not blocked by a foreign endpoint
        // is there, unless the cap left no room.
        let mut addable: Vec<IpAddr> = Vec::new();
        for d in &desired {
            if !addable.contains(&d.addr) && foreign.iter().all(|e| e.addr != d.addr) {
                addable.push(d.addr);
            }
        }
        let expected = addable.len().min(MPTCP_MAX_ENDPOINTS - foreign.len());
        prop_assert_eq!(ours.len(), expected);

        // Planning again on the result changes nothing.
        prop_assert_eq!(plan(&desired, &after, &managed), vec![]);
    }
}
