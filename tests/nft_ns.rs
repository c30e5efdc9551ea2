//! The nftables edge against the real kernel, each test in its own network
//! namespace (needs root). `nft`/`ip` only check what pathman did.

use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pathman::core::firewall::{Family, FlowMatch, MarkRule, Match, Ruleset, SnatRule};
use pathman::edge::nft::{self, NftError};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named netns the current thread has entered; deleted on drop, also
/// when the test panics.
struct Netns {
    name: String,
}

impl Netns {
    fn enter() -> Netns {
        let name = format!(
            "pmn-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        let f = std::fs::File::open(format!("/run/netns/{}", ns.name)).unwrap();
        // SAFETY: a valid netns fd; setns only changes this thread's netns.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        ns
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    fn nft_table(&self) -> String {
        self.exec(&["nft", "list", "table", "inet", "pathman"])
    }

    /// nft reads pathman's table back from its own listing (no chain is
    /// named after an nft keyword: `nft list ruleset > f; nft -f f`, as
    /// admins back up and restore, keeps working): the table is deleted,
    /// loaded from `listing` and listed the same.
    fn assert_round_trip(&self, listing: &str) {
        use std::io::Write;
        self.exec(&["nft", "delete", "table", "inet", "pathman"]);
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(listing.as_bytes())
            .unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -f of pathman's listing: {}\n{listing}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(self.nft_table(), listing);
    }

    fn tx_packets(&self, dev: &str) -> u64 {
        let p = format!("/sys/class/net/{dev}/statistics/tx_packets");
        self.exec(&["cat", &p]).trim().parse().unwrap()
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
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn flow(mark: u32, f: FlowMatch) -> MarkRule {
    MarkRule {
        mark,
        m: Match::Flow(f),
    }
}

fn udp_dport(mark: u32, lo: u16, hi: u16) -> MarkRule {
    flow(
        mark,
        FlowMatch {
            proto: Some(17),
            dport: Some((lo, hi)),
            ..Default::default()
        },
    )
}

fn ruleset_a() -> Ruleset {
    let mut marks: Vec<MarkRule> = (1000..1006)
        .map(|u| MarkRule {
            mark: 0x10001,
            m: Match::Uid(u),
        })
        .collect();
    marks.extend([
        MarkRule {
            mark: 0x10002,
            m: Match::Gid(2000),
        },
        MarkRule {
            mark: 0x10001,
            m: Match::Saddr(ip("192.0.2.10")),
        },
        MarkRule {
            mark: 0x10002,
            m: Match::Saddr(ip("2001:db8::10")),
        },
        // *-*-udp-*-8888
        udp_dport(0x10001, 8888, 8888),
        // *-*-tcp-1111-2222
        flow(
            0x10002,
            FlowMatch {
                proto: Some(6),
                sport: Some((1111, 1111)),
                dport: Some((2222, 2222)),
                ..Default::default()
            },
        ),
        // *-10.0.0.0/8
        flow(
            0x10001,
            FlowMatch {
                dst: Some((ip("10.0.0.0"), 8)),
                ..Default::default()
            },
        ),
        // *-*-udp-*-1000:2000
        udp_dport(0x10002, 1000, 2000),
        // *-2001:db8:1::/48
        flow(
            0x10001,
            FlowMatch {
                dst: Some((ip("2001:db8:1::"), 48)),
                ..Default::default()
            },
        ),
    ]);
    // Five more of the udp-dport shape: with 8888 and 1000:2000 one map
    // (with intervals, as one member is a range).
    marks.extend((9001..9006).map(|p| udp_dport(0x10003, p, p)));
    // Port ranges and prefixes of one shape: a map with intervals.
    marks.extend((0..4).map(|i| {
        flow(
            0x10004,
            FlowMatch {
                dst: Some((IpAddr::from([172, 16 + i, 0, 0]), 16)),
                proto: Some(17),
                dport: Some((4000 + u16::from(i) * 10, 4005 + u16::from(i) * 10)),
                ..Default::default()
            },
        )
    }));
    Ruleset {
        marks,
        snat: vec![
            SnatRule {
                mark: 0x10001,
                oif: 1,
                addr: ip("192.0.2.1"),
            },
            SnatRule {
                mark: 0x10002,
                oif: 1,
                addr: ip("2001:db8::1"),
            },
        ],
        ..Ruleset::default()
    }
}

fn ruleset_b() -> Ruleset {
    Ruleset {
        marks: vec![
            MarkRule {
                mark: 0x10005,
                m: Match::Gid(3000),
            },
            flow(
                0x10005,
                FlowMatch {
                    family: Some(Family::V6),
                    proto: Some(132),
                    sport: Some((5000, 5100)),
                    ..Default::default()
                },
            ),
        ],
        snat: vec![SnatRule {
            mark: 0x10005,
            oif: 1,
            addr: ip("198.51.100.7"),
        }],
        ..Ruleset::default()
    }
}

fn assert_has(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing {p:?} in:\n{text}");
    }
}

fn assert_lacks(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(!text.contains(p), "unexpected {p:?} in:\n{text}");
    }
}

#[test]
fn replace_replace_refuse_remove() {
    let ns = Netns::enter();
    let mut nft = nft::open().unwrap();
    smol::block_on(async {
        // remove before anything exists is fine
        nft.remove().await.unwrap();

        nft.replace(&ruleset_a()).await.unwrap();
        let a = ns.nft_table();
        println!("{a}");
        let a_parts = [
            "type route hook output priority mangle; policy accept;",
            "type nat hook postrouting priority srcnat; policy accept;",
            "meta mark set meta skuid map @shape1 accept",
            "1000 : 0x00010001",
            "meta skgid 2000 meta mark set 0x00010002 accept",
            "ip saddr 192.0.2.10 meta mark set 0x00010001",
            "ip6 saddr 2001:db8::10 meta mark set 0x00010002",
            "meta l4proto . th dport map @shape2",
            "udp . 8888 : 0x00010001",
            "udp . 9005 : 0x00010003",
            "tcp sport 1111 tcp dport 2222 meta mark set 0x00010002",
            "ip daddr 10.0.0.0/8 meta mark set 0x00010001",
            "udp . 1000-2000 : 0x00010002",
            "ip6 daddr 2001:db8:1::/48 meta mark set 0x00010001",
            "meta mark set meta nfproto . ip daddr . meta l4proto . th dport map @shape3 accept",
            "ipv4 . 172.17.0.0/16 . udp . 4010-4015 : 0x00010004",
            "meta nfproto ipv4 meta mark 0x00010001 oif \"lo\" snat ip to 192.0.2.1",
            "meta nfproto ipv6 meta mark 0x00010002 oif \"lo\" snat ip6 to 2001:db8::1",
        ];
        assert_has(&a, &a_parts);
        ns.assert_round_trip(&a);

        nft.replace(&ruleset_b()).await.unwrap();
        let b = ns.nft_table();
        println!("{b}");
        assert_has(
            &b,
            &[
                "meta skgid 3000 meta mark set 0x00010005 accept",
                "meta nfproto ipv6 sctp sport 5000-5100 meta mark set 0x00010005",
                "snat ip to 198.51.100.7",
            ],
        );
        assert_lacks(&b, &["shape", "2000", "192.0.2.1", "8888"]);

        // Refused before the kernel: nothing changes.
        let mut bad = ruleset_a();
        bad.marks.push(flow(
            0x10009,
            FlowMatch {
                proto: Some(1),
                dport: Some((1, 2)),
                ..Default::default()
            },
        ));
        match nft.replace(&bad).await {
            Err(NftError::Invalid(why)) => assert!(why.contains("dport"), "{why}"),
            r => panic!("expected Invalid, got {r:?}"),
        }
        assert_eq!(ns.nft_table(), b);

        nft.remove().await.unwrap();
        let tables = ns.exec(&["nft", "list", "tables"]);
        assert!(!tables.contains("pathman"), "{tables}");
        nft.remove().await.unwrap();
    });
}

/// Marks UDP to port 7777 with 0x10001: `ip rule fwmark 0x10001 lookup
/// 100` re-routes it out of veth1a, SNAT gives it veth1a's address. Other
/// ports leave by the default route on veth0a.
#[test]
fn marked_traffic_is_rerouted_and_snatted() {
    let ns = Netns::enter();
    for (i, a, b) in [(0, "veth0a", "veth0b"), (1, "veth1a", "veth1b")] {
        ns.exec(&["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
        let peer_mac = format!("02:00:00:00:00:1{i}");
        ns.exec(&["ip", "link", "set", b, "address", &peer_mac]);
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{a}.disable_ipv6=1"),
        ]);
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{b}.disable_ipv6=1"),
        ]);
        let net = 10 + 10 * i;
        ns.exec(&["ip", "addr", "add", &format!("10.{net}.0.1/24"), "dev", a]);
        ns.exec(&["ip", "link", "set", a, "up"]);
        ns.exec(&["ip", "link", "set", b, "up"]);
        ns.exec(&[
            "ip",
            "neigh",
            "add",
            &format!("10.{net}.0.2"),
            "lladdr",
            &peer_mac,
            "dev",
            a,
            "nud",
            "permanent",
        ]);
    }
    ns.exec(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.10.0.2",
        "dev",
        "veth0a",
    ]);
    ns.exec(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.20.0.2",
        "dev",
        "veth1a",
        "table",
        "100",
    ]);
    ns.exec(&["ip", "rule", "add", "fwmark", "0x10001", "lookup", "100"]);
    let veth1a: u32 = ns
        .exec(&["cat", "/sys/class/net/veth1a/ifindex"])
        .trim()
        .parse()
        .unwrap();

    let mut nft = nft::open().unwrap();
    let rs = Ruleset {
        marks: vec![udp_dport(0x10001, 7777, 7777)],
        snat: vec![SnatRule {
            mark: 0x10001,
            oif: veth1a,
            addr: ip("10.20.0.1"),
        }],
        ..Ruleset::default()
    };
    smol::block_on(nft.replace(&rs)).unwrap();

    // Capture on veth1b and send from the netns; print the source address
    // of the first UDP frame to 7777 seen on the re-routed path.
    let script = r#"
import socket, sys
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
cap.bind(("veth1b", 0)); cap.settimeout(2)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(10):
    s.sendto(b"x", ("198.51.100.1", 7777))
    s.sendto(b"y", ("198.51.100.1", 7778))
while True:
    f = cap.recv(2048)
    if f[23] == 17 and int.from_bytes(f[36:38], "big") == 7777:
        print(socket.inet_ntoa(f[26:30])); break
"#;
    let (t0, t1) = (ns.tx_packets("veth0a"), ns.tx_packets("veth1a"));
    let src = ns.exec(&["python3", "-c", script]);
    let (d0, d1) = (ns.tx_packets("veth0a") - t0, ns.tx_packets("veth1a") - t1);
    println!("tx veth0a +{d0}, veth1a +{d1}, snat source {}", src.trim());
    assert_eq!(d1, 10, "marked packets leave via veth1a");
    assert_eq!(d0, 10, "unmarked packets leave via veth0a");
    assert_eq!(src.trim(), "10.20.0.1");
}

/// A batch of few large messages, then one of many small messages but
/// fewer bytes: the second one's acks must still fit in the receive
/// buffer, or the kernel drops them and the commit looks like a failure.
#[test]
fn many_small_messages_after_few_large_ones() {
    let ns = Netns::enter();
    let mut nft = nft::open().unwrap();
    // One interval map: a few element messages carrying many bytes.
    let few_large: Vec<MarkRule> = (0..1280u16)
        .map(|i| {
            flow(
                0x10001,
                FlowMatch {
                    dst: Some((IpAddr::from([0x2001, 0xdb8, i, 0, 0, 0, 0, 0]), 64)),
                    proto: Some(17),
                    dport: Some((1000, 2000)),
                    ..Default::default()
                },
            )
        })
        .collect();
    // Every range contains all later ones: one plain rule each.
    let many_small: Vec<MarkRule> = (0..250u16)
        .map(|i| udp_dport(0x10002, 20000 + i, 65000))
        .collect();
    let rs = |marks: Vec<MarkRule>| Ruleset {
        marks,
        snat: vec![],
        ..Ruleset::default()
    };
    let (a, b) = (rs(few_large), rs(many_small));
    let (ba, bb) = (
        nft::encode::replace_batch(&a, 1),
        nft::encode::replace_batch(&b, 1),
    );
    assert!(
        ba.buf.len() > bb.buf.len() && ba.ops.len() * 10 < bb.ops.len(),
        "batches: {} bytes / {} msgs, then {} bytes / {} msgs",
        ba.buf.len(),
        ba.ops.len(),
        bb.buf.len(),
        bb.ops.len()
    );
    smol::block_on(async {
        nft.replace(&a).await.unwrap();
        nft.replace(&b).await.unwrap();
        nft.replace(&a).await.unwrap();
        nft.replace(&b).await.unwrap();
    });
    let listed = ns.nft_table();
    assert_eq!(listed.matches("meta mark set 0x00010002").count(), 249);
}

/// 64 marks × 16 selectors, three layouts: one exact map, mixed shapes,
/// and overlapping ranges that must stay plain rules. Prints the median
/// `replace` time and the send rate of UDP packets that miss every rule.
#[test]
fn timing_1024_selectors() {
    let ns = Netns::enter();
    // A veth whose peer drops what it gets (no address): a cheap sink.
    ns.exec(&[
        "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    ns.exec(&["ip", "addr", "add", "10.30.0.1/24", "dev", "d0"]);
    ns.exec(&["ip", "link", "set", "d0", "up"]);
    ns.exec(&["ip", "link", "set", "d1", "up"]);
    ns.exec(&[
        "ip",
        "neigh",
        "add",
        "10.30.0.2",
        "lladdr",
        "02:00:00:00:00:30",
        "dev",
        "d0",
        "nud",
        "permanent",
    ]);
    let mut nft = nft::open().unwrap();

    let exact: Vec<MarkRule> = (0..1024u16)
        .map(|i| udp_dport(0x10000 + u32::from(i / 16), 20000 + i, 20000 + i))
        .collect();
    let mixed: Vec<MarkRule> = (0..1024u32)
        .map(|i| {
            let mark = 0x10000 + i / 16;
            match i % 4 {
                0 => MarkRule {
                    mark,
                    m: Match::Uid(5000 + i),
                },
                1 => flow(
                    mark,
                    FlowMatch {
                        dst: Some((IpAddr::from([172, 16, (i >> 8) as u8, i as u8]), 32)),
                        proto: Some(6),
                        dport: Some((443, 443)),
                        ..Default::default()
                    },
                ),
                2 => flow(
                    mark,
                    FlowMatch {
                        dst: Some((IpAddr::from([100, (i >> 2) as u8, 0, 0]), 16)),
                        ..Default::default()
                    },
                ),
                _ => udp_dport(mark, 30000 + i as u16 * 4, 30000 + i as u16 * 4 + 2),
            }
        })
        .collect();
    // Every range contains all later ones: only the first fits a map.
    let overlapping: Vec<MarkRule> = (0..1024u16)
        .map(|i| udp_dport(0x10000 + u32::from(i / 16), 20000 + i, 65000))
        .collect();

    let pps = |nft: &mut nft::Nft, marks: &[MarkRule]| -> f64 {
        let rs = Ruleset {
            marks: marks.to_vec(),
            snat: vec![],
            ..Ruleset::default()
        };
        smol::block_on(nft.replace(&rs)).unwrap();
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            s.send_to(b"p", "10.30.0.2:9").unwrap();
        }
        f64::from(n) / t.elapsed().as_secs_f64()
    };

    for (name, marks) in [
        ("exact map", &exact),
        ("mixed", &mixed),
        ("plain rules", &overlapping),
    ] {
        let rs = Ruleset {
            marks: marks.clone(),
            snat: vec![],
            ..Ruleset::default()
        };
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                smol::block_on(nft.replace(&rs)).unwrap();
                t.elapsed()
            })
            .collect();
        times.sort();
        let listed = ns.nft_table();
        let rules = listed.matches("meta mark set").count();
        let maps = listed.matches("map shape").count();
        println!(
            "replace {name}: 1024 selectors -> {rules} rules, {maps} maps; median {:?} (min {:?}, max {:?})",
            times[10], times[0], times[19]
        );
    }
    let base = pps(&mut nft, &[]);
    let map = pps(&mut nft, &exact);
    let mixed_pps = pps(&mut nft, &mixed);
    let plain = pps(&mut nft, &overlapping);
    println!(
        "udp send rate, packet misses every selector: none {base:.0}/s, exact map {map:.0}/s, mixed {mixed_pps:.0}/s, 1024 plain rules {plain:.0}/s"
    );
}

/// Tethering's fast path: the flowtable on the given devices and the last
/// forward chain adding the clients' TCP and UDP flows to it, when this
/// kernel has flowtables (the real nft is the oracle: it makes one in a
/// scratch table first); without them the batch is refused as a whole and
/// the ruleset before it stays.
#[test]
fn offload_flowtable_as_nft_makes_it_or_refused_whole() {
    use pathman::core::firewall::{Masquerade, Offload};
    let ns = Netns::enter();
    ns.exec(&["ip", "link", "add", "tether", "type", "bridge"]);
    ns.exec(&[
        "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p",
    ]);
    let oracle = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(
                // What pathman asks for, counter flag included (on lines of
                // their own: nft 1.0.6 takes no `counter;` in the one-line form).
                b"table inet probe {\n flowtable f {\n  hook ingress priority 0\n  devices = { tether, up0 }\n  counter\n }\n}\n",
            )?;
            c.wait()
        })
        .unwrap()
        .success();
    let _ = ns.exec(&["nft", "flush", "ruleset"]);
    let mut nft = nft::open().unwrap();
    smol::block_on(async {
        let mut plain = Ruleset::default();
        let up0: u32 = ns
            .exec(&["cat", "/sys/class/net/up0/ifindex"])
            .trim()
            .parse()
            .unwrap();
        plain.masquerade.push(Masquerade {
            src: ("192.168.7.0".parse().unwrap(), 24),
            oif: up0,
        });
        nft.replace(&plain).await.unwrap();
        let before = ns.nft_table();
        let mut rs = plain.clone();
        rs.offload = Some(Offload {
            devices: vec!["tether".into(), "up0".into()],
            src: ("192.168.7.0".parse().unwrap(), 24),
        });
        let res = nft.replace(&rs).await;
        let table = ns.nft_table();
        println!("flowtables in this kernel: {oracle}\n{table}");
        if oracle {
            res.unwrap();
            assert_has(
                &table,
                &[
                    "flowtable tether {",
                    "hook ingress priority filter",
                    "devices = { tether, up0 }",
                    "chain fastpath {",
                    "type filter hook forward priority 2147483647; policy accept;",
                    "ip saddr 192.168.7.0/24 meta l4proto tcp flow add @tether",
                    "ip saddr 192.168.7.0/24 meta l4proto udp flow add @tether",
                    "masquerade",
                ],
            );
            // NF_FLOWTABLE_COUNTER: a `counter` line inside the flowtable's
            // block (offloaded packets keep counting in conntrack).
            let block: Vec<&str> = table
                .lines()
                .skip_while(|l| !l.contains("flowtable tether {"))
                .skip(1)
                .take_while(|l| l.trim() != "}")
                .collect();
            assert!(
                block.iter().any(|l| l.trim() == "counter"),
                "no counter in the flowtable:\n{table}"
            );
            ns.assert_round_trip(&table);
        } else {
            assert!(
                matches!(res, Err(NftError::Kernel(_))),
                "no flowtables here, yet {res:?}"
            );
            assert_eq!(table, before, "a refused batch changes nothing");
        }
        // Bad device names never reach the kernel.
        let mut bad = rs.clone();
        bad.offload.as_mut().unwrap().devices = vec!["a-name-longer-than-15".into()];
        assert!(matches!(nft.replace(&bad).await, Err(NftError::Invalid(_))));
        nft.remove().await.unwrap();
    });
}
