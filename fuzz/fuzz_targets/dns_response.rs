//! The stub resolver (`src/time/resolve.rs`, over `src/wire/dns.rs`) as a hostile DNS server
//! meets it: the queries go out, the fuzzer's bytes come back from the server with the first
//! query's id patched in (so the parser behind the id check is reached). Nothing may panic,
//! and a resolution holds at most `DNS_MAX_ADDRS` addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::time::resolve::{Event, Families, Resolver};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Instant, SystemTime};

fuzz_target!(|data: &[u8]| {
    let server = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
    let mut r = Resolver::new("ntp.lab.test", &[server], Families::Both, 7);
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut first = None;
    while let Some(q) = r.dispatch(now, wall) {
        first.get_or_insert(q);
    }
    let Some(q) = first else {
        panic!("no query for a valid name");
    };
    let mut reply = data.to_vec();
    if reply.len() >= 2 {
        reply[..2].copy_from_slice(&q.bytes()[..2]);
    }
    r.process(now, wall, q.to, &reply);
    if let Some(Event::Resolved(res)) = r.poll_event() {
        assert!(res.addrs.len() <= pathman::caps::DNS_MAX_ADDRS);
    }
});
