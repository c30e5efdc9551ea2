//! The tethering DHCP server (`src/dhcp/server.rs`) as clients meet it: the fuzzer's bytes
//! are split into datagrams (a 2-byte length each, then a time step in the next byte), fed
//! to one server, and after every step the server must hold no address twice, bind and
//! offer only pool addresses, and every reply must parse with its server identifier.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use pathman::dhcp::server::{Datagram, Server, ServerConfig};
use pathman::task::{Machine, Now};
use pathman::wire::dhcpv4::{MessageType, Packet, Repr};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);

fuzz_target!(|data: &[u8]| {
    let cfg = ServerConfig {
        server: SERVER,
        prefix_len: 24,
        pool: (
            Ipv4Addr::new(192, 168, 0, 2),
            Ipv4Addr::new(192, 168, 0, 12),
        ),
        dns: vec![Ipv4Addr::new(198, 18, 1, 1)],
        domain: Some("lan".into()),
        mtu: None,
        lease_secs: 60,
    };
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut now = Now { mono: t0, wall };
    let mut s = Server::new(cfg, Vec::new(), &now).expect("a valid configuration");
    let mut rest = data;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 700;
        let step = u64::from(rest[2]);
        rest = &rest[3..];
        let take = len.min(rest.len());
        let (bytes, tail) = rest.split_at(take);
        rest = tail;
        now.mono += Duration::from_secs(step);
        now.wall += Duration::from_secs(step);
        s.process(
            &now,
            Datagram {
                bytes: bytes.to_vec(),
                src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            },
        );
        while let Some(r) = s.dispatch(&now) {
            let repr = Repr::parse(&Packet::new_unchecked(&r.bytes[..]))
                .unwrap_or_else(|e| panic!("a reply does not parse: {e}"));
            assert_eq!(repr.server_identifier, Some(SERVER));
            if repr.message_type == MessageType::Offer {
                let n = u32::from(repr.your_ip);
                assert!(
                    (0xc0a8_0002..=0xc0a8_000c).contains(&n),
                    "offered {}",
                    repr.your_ip
                );
            }
        }
        let mut addrs: Vec<Ipv4Addr> = s.bindings().iter().map(|b| b.addr).collect();
        let n = addrs.len();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), n, "an address bound twice");
        assert!(n <= 11, "more bindings than the pool");
        let _ = s.poll_event();
        let _ = s.poll_at();
    }
});
