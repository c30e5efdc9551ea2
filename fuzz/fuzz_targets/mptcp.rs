//! The `mptcp_pm` generic-netlink decoder (`src/edge/mptcp/wire.rs`) on whole datagrams, as
//! `Mptcp::request` reads the kernel's replies: `edge::netlink::messages` splits them, each
//! is parsed as a generic-netlink `PmMessage`, and `endpoint()` / `limits()` read what
//! pathman uses. Whatever parses also emits into bytes that parse back to the same message
//! (attributes pathman does not know are carried as netlink-packet-core's `DefaultNla`, whose
//! emit drops the NLA_F_NESTED bit, so those are compared without it).
//!
//! `wire.rs` is private to the daemon (its types are `pub(super)`), so this target compiles
//! that very file as its own module (`#[path]`), with `crate::core` pointing at pathman's
//! core: the code under test is the daemon's, with no visibility widened for fuzzing.
#![no_main]

#[path = "../../src/edge/mptcp/wire.rs"]
#[allow(dead_code)]
mod wire;

/// What `wire.rs` reaches as `crate::core`.
mod core {
    pub use pathman::core::*;
}

use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{Emitable, NetlinkMessage, NetlinkPayload, ParseableParametrized};
use netlink_packet_generic::{GenlHeader, GenlMessage};
use pathman::edge::netlink::messages;
use wire::{AddrAttr, PmAttr, PmMessage};

/// `m` with unknown attributes' kinds reduced to the type bits (NLA_TYPE_MASK).
fn normalised(m: &PmMessage) -> PmMessage {
    const TYPE_MASK: u16 = !(0x8000 | 0x4000);
    let mut m = m.clone();
    for a in &mut m.attrs {
        match a {
            PmAttr::Other(o) => *a = PmAttr::Other(masked(o, TYPE_MASK)),
            PmAttr::Addr(nested) => {
                for n in nested.iter_mut() {
                    if let AddrAttr::Other(o) = n {
                        *n = AddrAttr::Other(masked(o, TYPE_MASK));
                    }
                }
            }
            _ => {}
        }
    }
    m
}

fn masked(o: &netlink_packet_core::DefaultNla, mask: u16) -> netlink_packet_core::DefaultNla {
    use netlink_packet_core::Nla;
    let mut value = vec![0u8; o.value_len()];
    o.emit_value(&mut value);
    netlink_packet_core::DefaultNla::new(o.kind() & mask, value)
}

fuzz_target!(|data: &[u8]| {
    for msg in messages("fuzz", data) {
        let Ok(NetlinkMessage {
            payload: NetlinkPayload::InnerMessage(genl),
            ..
        }) = NetlinkMessage::<GenlMessage<PmMessage>>::deserialize(msg.into_inner())
        else {
            continue;
        };
        let m = genl.payload;
        let _ = m.endpoint();
        let _ = m.limits();
        // Emit the attributes and parse them back.
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        let header = GenlHeader {
            cmd: m.cmd,
            version: 1,
        };
        match PmMessage::parse_with_param(&buf[..], header) {
            Ok(again) => {
                assert_eq!(
                    m.endpoint(),
                    again.endpoint(),
                    "emit + parse changed the endpoint"
                );
                assert_eq!(
                    m.limits(),
                    again.limits(),
                    "emit + parse changed the limits"
                );
                assert_eq!(
                    normalised(&m),
                    normalised(&again),
                    "emit + parse changed the message"
                );
            }
            Err(e) => panic!("an emitted mptcp_pm message does not parse: {e}\n{m:?}"),
        }
    }
});
