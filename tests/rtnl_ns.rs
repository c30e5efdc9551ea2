//! The rtnetlink edge against the real kernel, inside a throw-away network
//! namespace with a veth pair. Needs root; `ip` is used only to set the
//! scene and to check what the edge did.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pathman::caps::RT_PROTO_PATHMAN;
use pathman::core::netstate::{AddressSpec, IpPrefix, Op, RouteSpec, RuleSpec};
use pathman::edge::rtnl::{Events, KernelEvent, Rtnl};

/// A named network namespace, deleted on drop (also when the test panics).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pmr-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        Netns { name }
    }

    /// `ip -n NS args…`, asserting success; returns stdout.
    fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `f` on a thread that has entered the namespace, so the netlink
    /// sockets `f` creates belong to it.
    fn run_inside<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let ns = File::open(format!("/run/netns/{}", self.name)).expect("open netns");
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                // SAFETY: plain syscall on an open namespace fd; only this thread moves.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            });
            match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("v6 literal"))
}

/// Reads events until one satisfies `pred`; panics after 3 s.
async fn wait_for(events: &mut Events, what: &str, pred: impl Fn(&KernelEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let got = smol::future::or(async { Some(events.next(&mut buf).await) }, async {
            smol::Timer::at(deadline).await;
            None
        })
        .await;
        match got {
            Some(Ok(())) => {
                if buf.iter().any(&pred) {
                    return;
                }
            }
            Some(Err(e)) => panic!("events: {e}"),
            None => panic!("no event: {what}"),
        }
    }
}

fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

struct Scene {
    addr4: AddressSpec,
    addr6: AddressSpec,
    routes: [RouteSpec; 3],
    rules: [RuleSpec; 4],
}

impl Scene {
    fn new(ifindex: u32) -> Scene {
        let any4 = IpPrefix::default_for(v4(0, 0, 0, 0));
        let any6 = IpPrefix::default_for(v6("::"));
        Scene {
            addr4: AddressSpec {
                ifindex,
                addr: v4(198, 18, 1, 100),
                prefix_len: 24,
            },
            addr6: AddressSpec {
                ifindex,
                addr: v6("2001:db8:1::100"),
                prefix_len: 64,
            },
            routes: [
                RouteSpec {
                    table: 256,
                    dst: any4,
                    gateway: Some(v4(198, 18, 1, 1)),
                    oif: ifindex,
                    metric: 0,
                    pref_src: None,
                },
                RouteSpec {
                    table: 254,
                    dst: IpPrefix {
                        addr: v4(203, 0, 113, 0),
                        len: 24,
                    },
                    gateway: None,
                    oif: ifindex,
                    metric: 100,
                    pref_src: Some(v4(198, 18, 1, 100)),
                },
                RouteSpec {
                    table: 257,
                    dst: any6,
                    gateway: Some(v6("2001:db8:1::1")),
                    oif: ifindex,
                    metric: 1024,
                    pref_src: None,
                },
            ],
            rules: [
                RuleSpec {
                    ipv6: false,
                    priority: 31300,
                    src: Some(IpPrefix {
                        addr: v4(198, 18, 1, 100),
                        len: 32,
                    }),
                    fwmark: None,
                    table: 258,
                },
                RuleSpec {
                    ipv6: false,
                    priority: 31200,
                    src: None,
                    fwmark: Some(0x10000),
                    table: 65536,
                },
                RuleSpec {
                    ipv6: false,
                    priority: 31100,
                    src: Some(IpPrefix {
                        addr: v4(198, 18, 1, 100),
                        len: 32,
                    }),
                    fwmark: Some(0x10000),
                    table: 256,
                },
                RuleSpec {
                    ipv6: true,
                    priority: 31300,
                    src: Some(IpPrefix {
                        addr: v6("2001:db8:1::100"),
                        len: 128,
                    }),
                    fwmark: None,
                    table: 258,
                },
            ],
        }
    }

    /// Addresses first: the gateway routes need the subnet they bring.
    fn adds(&self) -> Vec<Op> {
        let mut ops = vec![Op::AddAddress(self.addr4), Op::AddAddress(self.addr6)];
        ops.extend(self.routes.iter().copied().map(Op::AddRoute));
        ops.extend(self.rules.iter().copied().map(Op::AddRule));
        ops
    }

    fn deletes(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = self.rules.iter().copied().map(Op::DelRule).collect();
        ops.extend(self.routes.iter().copied().map(Op::DelRoute));
        ops.extend([Op::DelAddress(self.addr6), Op::DelAddress(self.addr4)]);
        ops
    }
}

fn assert_all_ok(what: &str, results: &[Result<(), pathman::edge::rtnl::RtnlError>]) {
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            panic!("{what}: op {i}: {e}");
        }
    }
}

#[test]
fn rtnl_against_kernel_in_netns() {
    assert!(is_root(), "needs root for network namespaces");
    let ns = Netns::new();
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    ns.ip(&["link", "set", "vb", "up"]);
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.va.accept_dad=0",
        ],
    );

    ns.run_inside(|| smol::block_on(scenario(&ns)));
}

async fn scenario(ns: &Netns) {
    let mut rtnl = Rtnl::open().expect("open rtnl");
    let mut events = Events::open().expect("open events");

    // Links, set_link_up, carrier.
    let links = rtnl.dump_links().await.expect("dump links");
    let va = links
        .iter()
        .find(|l| l.name.as_str() == "va")
        .expect("va in dump")
        .clone();
    assert!(!va.up && va.mac.is_some() && va.arphrd == 1 && va.mtu == 1500);
    assert!(links.iter().any(|l| l.loopback && l.name.as_str() == "lo"));
    rtnl.set_link_up(va.ifindex, true).await.expect("link up");
    wait_for(
        &mut events,
        "va carrier up",
        |e| matches!(e, KernelEvent::Link(l) if l.ifindex == va.ifindex && l.up && l.carrier),
    )
    .await;

    // Carrier follows the peer.
    ns.ip(&["link", "set", "vb", "down"]);
    wait_for(
        &mut events,
        "va carrier down",
        |e| matches!(e, KernelEvent::Link(l) if l.ifindex == va.ifindex && l.up && !l.carrier),
    )
    .await;
    ns.ip(&["link", "set", "vb", "up"]);
    wait_for(
        &mut events,
        "va carrier back",
        |e| matches!(e, KernelEvent::Link(l) if l.ifindex == va.ifindex && l.carrier),
    )
    .await;

    // One batch of adds.
    let scene = Scene::new(va.ifindex);
    let adds = scene.adds();
    assert_all_ok("adds", &rtnl.apply(&adds).await);
    wait_for(&mut events, "v4 address added", |e| {
        matches!(e, KernelEvent::AddrAdded(a) if a.addr == scene.addr4.addr && a.proto == RT_PROTO_PATHMAN)
    })
    .await;

    let rules = ns.ip(&["rule"]);
    let rules6 = ns.ip(&["-6", "rule"]);
    let routes = ns.ip(&["route", "show", "table", "all"]);
    let routes6 = ns.ip(&["-6", "route", "show", "table", "all"]);
    let addrs = ns.ip(&["addr", "show", "dev", "va"]);
    println!("{rules}{rules6}{routes}{routes6}{addrs}");
    for (text, want) in [
        (&rules, "31300:\tfrom 198.18.1.100 lookup 258 proto 196"),
        (
            &rules,
            "31200:\tfrom all fwmark 0x10000 lookup 65536 proto 196",
        ),
        (
            &rules,
            "31100:\tfrom 198.18.1.100 fwmark 0x10000 lookup 256 proto 196",
        ),
        (&rules6, "31300:\tfrom 2001:db8:1::100 lookup 258 proto 196"),
        (&routes, "default via 198.18.1.1 dev va table 256 proto 196"),
        (
            &routes,
            "203.0.113.0/24 dev va proto 196 scope link src 198.18.1.100 metric 100",
        ),
        // The kernel's own subnet route: no IFA_F_NOPREFIXROUTE.
        (
            &routes,
            "198.18.1.0/24 dev va proto kernel scope link src 198.18.1.100",
        ),
        (
            &routes6,
            "default via 2001:db8:1::1 dev va table 257 proto 196 metric 1024",
        ),
        (&addrs, "inet 198.18.1.100/24 brd 198.18.1.255 scope global"),
        (&addrs, "inet6 2001:db8:1::100/64 scope global"),
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    // Dumps report them with pathman's protocol.
    let dumped = rtnl.dump_addresses().await.expect("dump addresses");
    for spec in [scene.addr4, scene.addr6] {
        let a = dumped
            .iter()
            .find(|a| a.addr == spec.addr)
            .expect("address in dump");
        assert_eq!(
            (a.ifindex, a.prefix_len, a.proto, a.permanent, a.tentative),
            (spec.ifindex, spec.prefix_len, RT_PROTO_PATHMAN, true, false)
        );
    }
    let dumped = rtnl.dump_routes().await.expect("dump routes");
    for spec in scene.routes {
        assert!(
            dumped
                .iter()
                .any(|r| r.spec == spec && r.proto == RT_PROTO_PATHMAN && r.kind_unicast),
            "{spec:?} not in route dump"
        );
    }
    assert!(dumped
        .iter()
        .any(|r| r.spec.table == 255 && !r.kind_unicast));
    let dumped = rtnl.dump_rules().await.expect("dump rules");
    for spec in scene.rules {
        assert!(
            dumped
                .iter()
                .any(|r| r.spec == spec && r.proto == RT_PROTO_PATHMAN),
            "{spec:?} not in rule dump"
        );
    }
    assert!(dumped
        .iter()
        .any(|r| r.spec.priority == 32766 && r.proto != RT_PROTO_PATHMAN));

    // Idempotent: the same batch again succeeds.
    assert_all_ok("adds again", &rtnl.apply(&adds).await);

    // A genuine failure is reported per op, the others still apply.
    let bad = RouteSpec {
        oif: 9999,
        ..scene.routes[1]
    };
    let extra = Op::AddRule(RuleSpec {
        priority: 31150,
        ..scene.rules[1]
    });
    let res = rtnl.apply(&[Op::AddRoute(bad), extra]).await;
    let err = res[0].clone().expect_err("route via missing device");
    assert_eq!((err.op, err.errno), ("add route", libc::ENODEV));
    println!("typed error: {err}");
    assert!(res[1].is_ok());
    assert_all_ok(
        "cleanup extra",
        &rtnl
            .apply(&[Op::DelRule(match extra {
                Op::AddRule(r) => r,
                _ => unreachable!(),
            })])
            .await,
    );

    // Route events, with the real table number.
    let probe = RouteSpec {
        table: 70000,
        ..scene.routes[0]
    };
    assert_all_ok("probe add", &rtnl.apply(&[Op::AddRoute(probe)]).await);
    wait_for(&mut events, "route added in table 70000", |e| {
        matches!(e, KernelEvent::RouteAdded(r) if r.spec == probe && r.proto == RT_PROTO_PATHMAN)
    })
    .await;
    assert_all_ok("probe del", &rtnl.apply(&[Op::DelRoute(probe)]).await);
    wait_for(
        &mut events,
        "route removed",
        |e| matches!(e, KernelEvent::RouteRemoved(r) if r.spec == probe),
    )
    .await;

    // Timing: batches of 3 ops (route + rule + route), added then deleted.
    let batch_routes = [
        RouteSpec {
            table: 300,
            ..scene.routes[0]
        },
        RouteSpec {
            table: 301,
            ..scene.routes[2]
        },
    ];
    let batch_rule = RuleSpec {
        priority: 31301,
        ..scene.rules[0]
    };
    let add3 = [
        Op::AddRoute(batch_routes[0]),
        Op::AddRule(batch_rule),
        Op::AddRoute(batch_routes[1]),
    ];
    let del3 = [
        Op::DelRoute(batch_routes[0]),
        Op::DelRule(batch_rule),
        Op::DelRoute(batch_routes[1]),
    ];
    let (mut t_add, mut t_del) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let t = Instant::now();
        let r = rtnl.apply(&add3).await;
        t_add.push(t.elapsed());
        assert_all_ok("timed add", &r);
        let t = Instant::now();
        let r = rtnl.apply(&del3).await;
        t_del.push(t.elapsed());
        assert_all_ok("timed del", &r);
    }
    println!(
        "apply 3 ops: median add {:.1} us, median delete {:.1} us (100 iterations)",
        median_us(t_add),
        median_us(t_del)
    );

    // Deletes remove exactly what was added, and repeat harmlessly.
    let deletes = scene.deletes();
    assert_all_ok("deletes", &rtnl.apply(&deletes).await);
    wait_for(
        &mut events,
        "v4 address removed",
        |e| matches!(e, KernelEvent::AddrRemoved(a) if a.addr == scene.addr4.addr),
    )
    .await;
    assert_all_ok("deletes again", &rtnl.apply(&deletes).await);
    let all = [
        ns.ip(&["rule"]),
        ns.ip(&["-6", "rule"]),
        ns.ip(&["route", "show", "table", "all"]),
        ns.ip(&["-6", "route", "show", "table", "all"]),
        ns.ip(&["addr", "show", "dev", "va"]),
    ]
    .concat();
    for gone in [
        "proto 196",
        "198.18.1.100",
        "2001:db8:1::100",
        "203.0.113.0",
    ] {
        assert!(!all.contains(gone), "{gone:?} still present:\n{all}");
    }
    assert!(rtnl
        .dump_rules()
        .await
        .expect("dump rules")
        .iter()
        .all(|r| r.proto != RT_PROTO_PATHMAN));
}

/// A delete only removes what pathman installed: a route that matches in
/// every key but belongs to another protocol stays.
#[test]
fn deletes_leave_foreign_routes_alone() {
    assert!(is_root(), "needs root for network namespaces");
    let ns = Netns::new();
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    ns.ip(&["link", "set", "va", "up"]);
    ns.ip(&[
        "route",
        "add",
        "192.0.2.0/24",
        "dev",
        "va",
        "table",
        "400",
        "metric",
        "5",
    ]);
    let out = ns.run_inside(|| {
        smol::block_on(async {
            let mut rtnl = Rtnl::open().expect("open");
            let links = rtnl.dump_links().await.expect("dump links");
            let va = links
                .iter()
                .find(|l| l.name.as_str() == "va")
                .expect("va")
                .ifindex;
            let foreign = RouteSpec {
                table: 400,
                dst: IpPrefix {
                    addr: v4(192, 0, 2, 0),
                    len: 24,
                },
                gateway: None,
                oif: va,
                metric: 5,
                pref_src: None,
            };
            let dumped = rtnl.dump_routes().await.expect("dump");
            let r = dumped
                .iter()
                .find(|r| r.spec == foreign)
                .expect("foreign route dumped");
            assert_eq!(r.proto, 3, "ip's routes are RTPROT_BOOT");
            rtnl.apply(&[Op::DelRoute(foreign)]).await
        })
    });
    assert_all_ok("delete foreign (no-op)", &out);
    assert!(ns
        .ip(&["route", "show", "table", "400"])
        .contains("192.0.2.0/24 dev va"));
}

/// A change larger than one datagram's worth (caps::RTNL_OPS_PER_BATCH) is
/// applied whole, with every ack collected.
#[test]
fn large_changes_are_split_and_fully_acked() {
    assert!(is_root(), "needs root for network namespaces");
    let ns = Netns::new();
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    ns.ip(&["link", "set", "va", "up"]);
    let n = 3 * pathman::caps::RTNL_OPS_PER_BATCH + 7;
    let (added, deleted) = ns.run_inside(|| {
        smol::block_on(async {
            let mut rtnl = Rtnl::open().expect("open");
            let links = rtnl.dump_links().await.expect("dump links");
            let va = links
                .iter()
                .find(|l| l.name.as_str() == "va")
                .expect("va")
                .ifindex;
            let routes: Vec<RouteSpec> = (0..n)
                .map(|i| RouteSpec {
                    table: 500,
                    dst: IpPrefix {
                        addr: v4(10, (i / 256) as u8, (i % 256) as u8, 0),
                        len: 24,
                    },
                    gateway: None,
                    oif: va,
                    metric: 0,
                    pref_src: None,
                })
                .collect();
            let adds: Vec<Op> = routes.iter().copied().map(Op::AddRoute).collect();
            let dels: Vec<Op> = routes.iter().copied().map(Op::DelRoute).collect();
            let added = rtnl.apply(&adds).await;
            let count = rtnl
                .dump_routes()
                .await
                .expect("dump")
                .iter()
                .filter(|r| r.spec.table == 500)
                .count();
            assert_eq!(count, n, "every route of the large change is in the kernel");
            (added, rtnl.apply(&dels).await)
        })
    });
    assert_eq!(added.len(), n);
    assert_all_ok("large add", &added);
    assert_all_ok("large delete", &deleted);
    assert!(ns.ip(&["route", "show", "table", "500"]).trim().is_empty());
}
