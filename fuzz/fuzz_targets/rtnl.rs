//! The rtnetlink decoders (`src/edge/rtnl/decode.rs`) on whole datagrams, the way
//! `rtnl::Events::next` and the dumps read them: `edge::netlink::messages` splits the
//! datagram, netlink-packet-route parses each message, `decode_event` turns it into what
//! pathman acts on. Any bytes: an event, a skipped message, or an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use pathman::edge::netlink::messages;
use pathman::edge::rtnl::{decode_address, decode_event, decode_link, decode_route, decode_rule};

fuzz_target!(|data: &[u8]| {
    let mut total = 0;
    for msg in messages("fuzz", data) {
        let bytes = msg.into_inner();
        total += bytes.len();
        assert!(
            total <= data.len(),
            "messages() yielded more bytes than the datagram holds"
        );
        let Ok(NetlinkMessage {
            payload: NetlinkPayload::InnerMessage(m),
            ..
        }) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
        else {
            continue;
        };
        let _ = decode_event(&m);
        // The dump paths call the per-kind decoders directly.
        match &m {
            RouteNetlinkMessage::NewLink(l) => drop(decode_link(l)),
            RouteNetlinkMessage::NewAddress(a) => drop(decode_address(a)),
            RouteNetlinkMessage::NewRoute(r) => drop(decode_route(r)),
            RouteNetlinkMessage::NewRule(r) => drop(decode_rule(r)),
            _ => {}
        }
    }
});
