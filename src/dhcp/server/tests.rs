//! The server's decisions, message by message (RFC 2131 §4.3), and its invariants under
//! arbitrary traffic.

use super::*;
use proptest::prelude::*;
use std::time::SystemTime;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 254);

fn cfg() -> ServerConfig {
    ServerConfig {
        server: SERVER,
        prefix_len: 24,
        pool: (
            Ipv4Addr::new(192, 168, 0, 2),
            Ipv4Addr::new(192, 168, 0, 253),
        ),
        dns: vec![Ipv4Addr::new(198, 18, 1, 1)],
        domain: Some("lan".into()),
        mtu: None,
        lease_secs: 3600,
    }
}

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

fn at(t: &Now, secs: u64) -> Now {
    Now {
        mono: t.mono + Duration::from_secs(secs),
        wall: t.wall + Duration::from_secs(secs),
    }
}

fn mac(i: u8) -> [u8; 6] {
    [2, 0x50, 0x4d, 0x20, 0, i]
}

/// A client message.
#[derive(Debug, Clone)]
struct Msg {
    kind: MessageType,
    mac: [u8; 6],
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
    client_id: Option<Vec<u8>>,
    broadcast: bool,
    giaddr: Ipv4Addr,
}

fn msg(kind: MessageType, i: u8) -> Msg {
    Msg {
        kind,
        mac: mac(i),
        ciaddr: Ipv4Addr::UNSPECIFIED,
        requested: None,
        server: None,
        client_id: None,
        broadcast: false,
        giaddr: Ipv4Addr::UNSPECIFIED,
    }
}

impl Msg {
    fn bytes(&self) -> Vec<u8> {
        let mut r = Repr::new(self.kind, 0x1234_0000 | u32::from(self.mac[5]), self.mac);
        r.client_ip = self.ciaddr;
        r.requested_ip = self.requested;
        r.server_identifier = self.server;
        r.broadcast = self.broadcast;
        r.relay_agent_ip = self.giaddr;
        r.client_identifier = self.client_id.as_deref().map(OptionBytes::new);
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        buf
    }
}

fn send(s: &mut Server, now: &Now, m: &Msg) -> Vec<(MessageType, Ipv4Addr, Destination)> {
    s.process(
        now,
        Datagram {
            bytes: m.bytes(),
            src: SocketAddrV4::new(m.ciaddr, 68),
        },
    );
    replies(s, now)
}

fn replies(s: &mut Server, now: &Now) -> Vec<(MessageType, Ipv4Addr, Destination)> {
    let mut out = Vec::new();
    while let Some(r) = s.dispatch(now) {
        let p = Packet::new_checked(&r.bytes[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr.server_identifier, Some(SERVER));
        out.push((repr.message_type, repr.your_ip, r.dst));
    }
    out
}

fn server() -> (Server, Now) {
    let now = t0();
    (Server::new(cfg(), Vec::new(), &now).unwrap(), now)
}

/// DISCOVER, OFFER, REQUEST, ACK for client `i`; the address.
fn dora(s: &mut Server, now: &Now, i: u8) -> Ipv4Addr {
    let r = send(s, now, &msg(MessageType::Discover, i));
    let [(MessageType::Offer, a, _)] = r.as_slice() else {
        panic!("no offer: {r:?}");
    };
    let mut req = msg(MessageType::Request, i);
    req.requested = Some(*a);
    req.server = Some(SERVER);
    let r = send(s, now, &req);
    assert_eq!(
        r.first().map(|x| (x.0, x.1)),
        Some((MessageType::Ack, *a)),
        "{r:?}"
    );
    *a
}

#[test]
fn discover_offer_request_ack_gives_a_pool_address_with_the_options() {
    let (mut s, now) = server();
    let m = msg(MessageType::Discover, 1);
    s.process(
        &now,
        Datagram {
            bytes: m.bytes(),
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        },
    );
    let offer = s.dispatch(&now).unwrap();
    // No address, no broadcast flag: to the client's MAC and the offered address.
    assert_eq!(
        offer.dst,
        Destination::Frame {
            mac: mac(1),
            ip: Ipv4Addr::new(192, 168, 0, 2)
        }
    );
    let p = Packet::new_checked(&offer.bytes[..]).unwrap();
    let r = Repr::parse(&p).unwrap();
    assert_eq!(r.message_type, MessageType::Offer);
    assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(r.router(), Some(SERVER));
    assert_eq!(
        r.dns_servers.unwrap().iter().collect::<Vec<_>>(),
        vec![Ipv4Addr::new(198, 18, 1, 1)]
    );
    assert_eq!(r.lease_duration, Some(3600));
    assert_eq!(r.renew_duration, Some(1800));
    assert_eq!(r.rebind_duration, Some(3150));
    assert_eq!(r.domain_name, Some(OptionBytes::new(b"lan")));
    let a = dora(&mut s, &now, 1);
    assert_eq!(
        a,
        Ipv4Addr::new(192, 168, 0, 2),
        "the same address as offered"
    );
    assert_eq!(s.clients(now.mono), vec![mac(1)]);
    assert!(
        matches!(s.poll_event(), Some(Event::LeasesChanged { clients }) if clients == vec![mac(1)])
    );
    // A second client gets the next address.
    assert_eq!(dora(&mut s, &now, 2), Ipv4Addr::new(192, 168, 0, 3));
}

#[test]
fn a_request_for_another_server_forgets_the_offer_silently() {
    let (mut s, now) = server();
    let r = send(&mut s, &now, &msg(MessageType::Discover, 1));
    let a = r[0].1;
    let mut req = msg(MessageType::Request, 1);
    req.requested = Some(a);
    req.server = Some(OTHER);
    assert!(send(&mut s, &now, &req).is_empty(), "no NAK in SELECTING");
    // The address is free again for someone else at once.
    let r = send(&mut s, &now, &msg(MessageType::Discover, 2));
    assert_eq!(r[0].1, a);
}

#[test]
fn the_broadcast_flag_ciaddr_and_giaddr_pick_the_destination() {
    let (mut s, now) = server();
    let mut d = msg(MessageType::Discover, 1);
    d.broadcast = true;
    assert_eq!(send(&mut s, &now, &d)[0].2, Destination::Broadcast);
    let mut d = msg(MessageType::Discover, 2);
    d.giaddr = Ipv4Addr::new(192, 168, 0, 250);
    assert_eq!(
        send(&mut s, &now, &d)[0].2,
        Destination::Relay(Ipv4Addr::new(192, 168, 0, 250))
    );
    let a = dora(&mut s, &now, 3);
    let mut renew = msg(MessageType::Request, 3);
    renew.ciaddr = a;
    assert_eq!(
        send(&mut s, &now, &renew),
        vec![(MessageType::Ack, a, Destination::Unicast(a))]
    );
}

#[test]
fn init_reboot_is_acked_for_its_address_and_naked_off_the_network_or_for_anothers() {
    let (mut s, now) = server();
    let a = dora(&mut s, &now, 1);
    let mut reboot = msg(MessageType::Request, 1);
    reboot.requested = Some(a);
    assert_eq!(send(&mut s, &now, &reboot)[0].0, MessageType::Ack);
    reboot.requested = Some(Ipv4Addr::new(10, 0, 0, 5));
    let r = send(&mut s, &now, &reboot);
    assert_eq!(
        r,
        vec![(
            MessageType::Nak,
            Ipv4Addr::UNSPECIFIED,
            Destination::Broadcast
        )]
    );
    // Client 2 asks for client 1's address.
    let mut other = msg(MessageType::Request, 2);
    other.requested = Some(a);
    assert_eq!(send(&mut s, &now, &other)[0].0, MessageType::Nak);
    // A client we know nothing of, asking for a free pool address (a lost leases file).
    let mut fresh = msg(MessageType::Request, 3);
    fresh.requested = Some(Ipv4Addr::new(192, 168, 0, 77));
    assert_eq!(
        send(&mut s, &now, &fresh)[0].1,
        Ipv4Addr::new(192, 168, 0, 77)
    );
    // …or for the server's own address: silence.
    fresh.requested = Some(SERVER);
    let mut f4 = fresh;
    f4.mac = mac(4);
    assert!(send(&mut s, &now, &f4).is_empty());
}

#[test]
fn renewing_extends_the_lease_and_a_foreign_ciaddr_is_naked() {
    let (mut s, now) = server();
    let a = dora(&mut s, &now, 1);
    let later = at(&now, 1800);
    let mut renew = msg(MessageType::Request, 1);
    renew.ciaddr = a;
    assert_eq!(send(&mut s, &later, &renew)[0].0, MessageType::Ack);
    assert!(s.bindings()[0].expires >= later.mono + Duration::from_secs(3599));
    // The block moved: a client of the old block is told at its next renewal.
    let mut old = msg(MessageType::Request, 2);
    old.ciaddr = Ipv4Addr::new(192, 168, 5, 9);
    assert_eq!(send(&mut s, &later, &old)[0].0, MessageType::Nak);
    // Someone else's lease.
    let mut thief = msg(MessageType::Request, 3);
    thief.ciaddr = a;
    assert_eq!(send(&mut s, &later, &thief)[0].0, MessageType::Nak);
}

#[test]
fn a_declined_address_is_quarantined_then_given_again() {
    let (mut s, now) = server();
    let a = dora(&mut s, &now, 1);
    let mut dec = msg(MessageType::Decline, 1);
    dec.requested = Some(a);
    dec.server = Some(SERVER);
    assert!(send(&mut s, &now, &dec).is_empty());
    assert!(s.bindings().is_empty());
    let r = send(&mut s, &now, &msg(MessageType::Discover, 1));
    assert_ne!(r[0].1, a, "not the declined address");
    // A DECLINE of an address the client never had is ignored.
    let mut bogus = msg(MessageType::Decline, 5);
    bogus.requested = Some(Ipv4Addr::new(192, 168, 0, 100));
    send(&mut s, &now, &bogus);
    assert_eq!(s.stats().declines, 1);
    let later = at(&now, caps::DHCP_SERVER_QUARANTINE_SECS + 1);
    let r = send(&mut s, &later, &msg(MessageType::Discover, 9));
    assert_eq!(r[0].1, a, "free again after the quarantine");
}

#[test]
fn stats_count_a_lease_and_read_as_the_dump_shows_them() {
    let (mut s, now) = server();
    assert_eq!(
        s.stats().to_string(),
        "received 0 offers 0 acks 0 naks 0 declines 0 releases 0 dropped 0 exhausted 0"
    );
    dora(&mut s, &now, 1);
    s.process(
        &now,
        Datagram {
            bytes: vec![0; 3],
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        },
    );
    assert_eq!(
        s.stats().to_string(),
        "received 3 offers 1 acks 1 naks 0 declines 0 releases 0 dropped 1 exhausted 0"
    );
}

#[test]
fn a_released_address_comes_back_to_its_client() {
    let (mut s, now) = server();
    let a = dora(&mut s, &now, 1);
    let _b = dora(&mut s, &now, 2);
    let mut rel = msg(MessageType::Release, 1);
    rel.ciaddr = a;
    rel.server = Some(SERVER);
    assert!(send(&mut s, &now, &rel).is_empty());
    assert_eq!(s.clients(now.mono), vec![mac(2)]);
    let r = send(&mut s, &now, &msg(MessageType::Discover, 3));
    assert_ne!(r[0].1, a, "remembered for client 1");
    let r = send(&mut s, &now, &msg(MessageType::Discover, 1));
    assert_eq!(r[0].1, a, "client 1 gets it back");
}

#[test]
fn inform_is_answered_without_a_lease() {
    let (mut s, now) = server();
    let mut inf = msg(MessageType::Inform, 1);
    inf.ciaddr = Ipv4Addr::new(192, 168, 0, 200);
    s.process(
        &now,
        Datagram {
            bytes: inf.bytes(),
            src: SocketAddrV4::new(inf.ciaddr, 68),
        },
    );
    let r = s.dispatch(&now).unwrap();
    assert_eq!(r.dst, Destination::Unicast(inf.ciaddr));
    let repr = Repr::parse(&Packet::new_checked(&r.bytes[..]).unwrap()).unwrap();
    assert_eq!(repr.message_type, MessageType::Ack);
    assert_eq!(repr.your_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(repr.lease_duration, None);
    assert!(s.bindings().is_empty());
}

#[test]
fn bindings_follow_the_client_id_and_one_mac_is_capped() {
    let (mut s, now) = server();
    let mut got = Vec::new();
    for n in 0..10u8 {
        let mut d = msg(MessageType::Discover, 1);
        d.client_id = Some(vec![0xff, n, 1, 2, 3]);
        got.extend(send(&mut s, &now, &d));
    }
    assert_eq!(got.len(), caps::DHCP_SERVER_MAX_PER_MAC, "{got:?}");
    // A 255-byte client id is refused, not stored.
    let mut d = msg(MessageType::Discover, 2);
    d.client_id = Some(vec![7; 255]);
    assert!(send(&mut s, &now, &d).is_empty());
}

#[test]
fn an_exhausted_pool_is_silent_and_a_flood_of_offers_never_takes_a_lease() {
    let now = t0();
    let mut c = cfg();
    c.pool = (Ipv4Addr::new(192, 168, 0, 2), Ipv4Addr::new(192, 168, 0, 5));
    let mut s = Server::new(c, Vec::new(), &now).unwrap();
    let leased: Vec<Ipv4Addr> = (1..=2).map(|i| dora(&mut s, &now, i)).collect();
    // A flood from 50 MACs: the two free addresses are offered round and round.
    for i in 10..60u8 {
        let r = send(&mut s, &now, &msg(MessageType::Discover, i));
        assert_eq!(r.len(), 1);
        assert!(!leased.contains(&r[0].1), "a lease was offered to another");
    }
    // A real client still gets an address.
    let a = dora(&mut s, &now, 200);
    assert!(!leased.contains(&a));
    let _ = dora(&mut s, &now, 201);
    // Everything leased now: no more offers.
    assert!(send(&mut s, &now, &msg(MessageType::Discover, 99)).is_empty());
    assert_eq!(s.stats().exhausted, 1);
}

#[test]
fn expiry_is_reported_and_reconfigure_keeps_bindings() {
    let (mut s, now) = server();
    let a = dora(&mut s, &now, 1);
    let _ = s.poll_event();
    let PollAt::At(t) = s.poll_at() else {
        panic!("{:?}", s.poll_at())
    };
    assert!(t <= now.mono + Duration::from_secs(3600));
    let mut c = cfg();
    c.dns = vec![Ipv4Addr::new(9, 9, 9, 9)];
    s.reconfigure(c);
    assert_eq!(s.bindings()[0].addr, a);
    let end = at(&now, 3601);
    assert!(s.dispatch(&end).is_none());
    assert_eq!(
        s.poll_event(),
        Some(Event::LeasesChanged { clients: vec![] })
    );
    assert_eq!(s.bindings().len(), 1, "remembered");
}

#[test]
fn a_leases_file_restores_bindings_inside_the_pool_only() {
    let now = t0();
    let keep = Binding {
        addr: Ipv4Addr::new(192, 168, 0, 40),
        key: ClientKey::Mac(mac(1)),
        mac: mac(1),
        expires: now.mono + Duration::from_secs(600),
        hostname: None,
    };
    let mut outside = keep.clone();
    outside.addr = Ipv4Addr::new(10, 0, 0, 1);
    outside.key = ClientKey::Mac(mac(2));
    let mut s = Server::new(cfg(), vec![keep.clone(), outside], &now).unwrap();
    assert_eq!(s.bindings(), std::slice::from_ref(&keep));
    let mut renew = msg(MessageType::Request, 1);
    renew.ciaddr = keep.addr;
    assert_eq!(send(&mut s, &now, &renew)[0].0, MessageType::Ack);
}

#[test]
fn configurations_that_cannot_serve_are_refused() {
    let now = t0();
    let mut c = cfg();
    c.pool = (Ipv4Addr::new(192, 168, 0, 9), Ipv4Addr::new(192, 168, 1, 9));
    assert!(Server::new(c, vec![], &now).is_err());
    let mut c = cfg();
    c.prefix_len = 31;
    assert!(Server::new(c, vec![], &now).is_err());
    let mut c = cfg();
    c.lease_secs = 5;
    assert!(Server::new(c, vec![], &now).is_err());
}

fn arb_msg() -> impl Strategy<Value = (Msg, u64)> {
    (
        0u8..8,
        0u8..6,
        proptest::option::of(0u8..=255),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0u8..4),
        any::<bool>(),
        prop_oneof![Just(0u8), 1u8..=255],
        0u64..4000,
    )
        .prop_map(|(kind, m, req, srv, id, bcast, ci, dt)| {
            let kind = [
                MessageType::Discover,
                MessageType::Request,
                MessageType::Decline,
                MessageType::Release,
                MessageType::Inform,
                MessageType::Request,
                MessageType::Discover,
                MessageType::Request,
            ][kind as usize];
            let mut x = msg(kind, m);
            x.requested = req.map(|o| Ipv4Addr::new(192, 168, if o % 7 == 0 { 9 } else { 0 }, o));
            x.server = srv.map(|ours| if ours { SERVER } else { OTHER });
            x.client_id = id.map(|n| vec![1, n, m]);
            x.broadcast = bcast;
            if ci != 0 {
                x.ciaddr = Ipv4Addr::new(192, 168, 0, ci);
            }
            (x, dt)
        })
}

proptest! {
    #[test]
    fn the_servers_invariants_hold_under_any_client_traffic(
        msgs in proptest::collection::vec(arb_msg(), 1..120)
    ) {
        let now0 = t0();
        let mut c = cfg();
        c.pool = (Ipv4Addr::new(192, 168, 0, 2), Ipv4Addr::new(192, 168, 0, 9));
        let mut s = Server::new(c.clone(), Vec::new(), &now0).unwrap();
        let mut t = 0;
        for (m, dt) in msgs {
            t += dt;
            let now = at(&now0, t);
            s.process(&now, Datagram { bytes: m.bytes(), src: SocketAddrV4::new(m.ciaddr, 68) });
            while let Some(r) = s.dispatch(&now) {
                let repr = Repr::parse(&Packet::new_checked(&r.bytes[..]).unwrap()).unwrap();
                prop_assert_eq!(repr.server_identifier, Some(SERVER));
                if repr.message_type == MessageType::Offer
                    || (repr.message_type == MessageType::Ack && repr.lease_duration.is_some())
                {
                    prop_assert!(c.assignable(repr.your_ip), "gave {}", repr.your_ip);
                }
            }
            let mut addrs: Vec<Ipv4Addr> = s.bindings().iter().map(|b| b.addr).collect();
            addrs.sort();
            let n = addrs.len();
            addrs.dedup();
            prop_assert_eq!(addrs.len(), n, "two bindings on one address");
            prop_assert!(s.bindings().iter().all(|b| c.assignable(b.addr)));
            for i in 0..6u8 {
                let held = s.offers.iter().filter(|o| o.mac == mac(i)).count()
                    + s.bindings().iter().filter(|b| b.mac == mac(i) && b.active(now.mono)).count();
                prop_assert!(held <= caps::DHCP_SERVER_MAX_PER_MAC + 1, "mac {i} holds {held}");
            }
            let _ = s.poll_event();
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let (mut s, now) = server();
        s.process(&now, Datagram { bytes, src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68) });
        while s.dispatch(&now).is_some() {}
    }
}
