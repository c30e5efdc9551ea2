//! The IPv4/UDP parser (`src/wire/ipv4udp.rs`) on what the DHCP packet socket receives, with
//! and without UDP checksum verification (the kernel's unfinished-checksum case), and a
//! DHCP payload on the DHCP ports handed on to the DHCP parser as the driver does. Whatever
//! parses re-emits (headers + payload) into a packet that parses to the same headers and
//! payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::wire::dhcpv4;
use pathman::wire::ipv4udp::{Ipv4Packet, Repr, UdpChecksum, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    for mode in [UdpChecksum::Verify, UdpChecksum::KernelUnfinished] {
        let Ok((repr, payload)) = Repr::parse(&Ipv4Packet::new_unchecked(data), mode) else {
            continue;
        };
        assert_eq!(
            repr.payload_len,
            payload.len(),
            "payload_len disagrees with the payload"
        );
        if repr.src_port == dhcpv4::SERVER_PORT && repr.dst_port == dhcpv4::CLIENT_PORT {
            let _ = dhcpv4::Repr::parse(&dhcpv4::Packet::new_unchecked(payload));
        }
        // Our own emit (IP options dropped, checksums recomputed) must parse back.
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[HEADER_LEN..].copy_from_slice(payload);
        if repr.emit(&mut buf).is_err() {
            // Only a payload too large for a 16-bit total length may refuse.
            assert!(
                repr.buffer_len() > usize::from(u16::MAX),
                "emit refused {repr:?}"
            );
            continue;
        }
        let (again, again_payload) =
            match Repr::parse(&Ipv4Packet::new_unchecked(&buf[..]), UdpChecksum::Verify) {
                Ok(r) => r,
                Err(e) => panic!("an emitted packet does not parse: {e}\n{repr:?}"),
            };
        assert_eq!(repr, again);
        assert_eq!(payload, again_payload);
    }
});
