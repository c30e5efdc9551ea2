//! The SNTP client (`src/time/sntp.rs`) as a hostile server meets it: one request goes out,
//! the fuzzer's bytes come back from the server's address and port, with our transmit cookie
//! patched in as the originate timestamp when the first byte is odd (so the checks behind
//! the cookie are reached too). Nothing may panic, and a reply that is taken must be one the
//! checks allow: stratum 1..=15, root distance within the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::core::types::Timeserver;
use pathman::time::sntp::{Client, Event};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

fuzz_target!(|data: &[u8]| {
    let mut c = Client::new(1);
    c.set_servers(&[Timeserver::Addr(IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)))]);
    let now = Instant::now();
    let wall = SystemTime::now();
    let Some(out) = c.dispatch(now, wall) else {
        panic!("no request for a fresh server list");
    };
    let mut reply = data.to_vec();
    if data.first().is_some_and(|b| b & 1 == 1) && reply.len() >= 48 {
        reply[24..32].copy_from_slice(&out.bytes[40..48]);
    }
    c.process(now + Duration::from_millis(1), wall, out.to, &reply);
    while let Some(ev) = c.poll_event() {
        if let Event::Synced(m) = ev {
            assert!((1..=15).contains(&m.stratum), "stratum {}", m.stratum);
            assert!(
                m.root_distance <= Duration::from_millis(pathman::caps::SNTP_MAX_ROOT_DISTANCE_MS),
                "root distance {:?}",
                m.root_distance
            );
        }
    }
});
