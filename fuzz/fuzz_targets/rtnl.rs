//! The rtnetlink decoders (`src/edge/rtnl/decode.rs`) on whole datagrams, the way
//! `rtnl::Events::next` and the dumps read them: `edge::netlink::messages` splits the
//! datagram, `decode_event` turns each message into what pathman acts on, and the dump
//! paths call the per-kind decoders on the message's body. Any bytes: an event, a skipped
//! message, or nothing; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::edge::netlink::messages;
use pathman::edge::rtnl::{
    decode_address, decode_event, decode_link, decode_route, decode_rule, parse_message,
};

fuzz_target!(|data: &[u8]| {
    let mut total = 0;
    for msg in messages("fuzz", data) {
        let bytes = msg.into_inner();
        total += bytes.len();
        assert!(
            total <= data.len(),
            "messages() yielded more bytes than the datagram holds"
        );
        let _ = decode_event(bytes);
        if let Some((_, body)) = parse_message(bytes) {
            let _ = decode_link(body);
            let _ = decode_address(body);
            let _ = decode_route(body);
            let _ = decode_rule(body);
        }
    }
});
