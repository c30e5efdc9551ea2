//! The ARP parser (`src/wire/arp.rs`) as IPv4LL (and conflict detection) meets it: any bytes
//! either fail with an error or parse into a `Repr` whose emitted form is exactly the 28
//! bytes that were parsed (every field of an Ethernet/IPv4 ARP message is kept) and parses
//! back to the same `Repr`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::wire::arp::{Packet, Repr, PACKET_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    let mut buf = [0u8; PACKET_LEN];
    if let Err(e) = repr.emit(&mut Packet::new_unchecked(&mut buf[..])) {
        panic!("a parsed ARP message does not emit: {e}");
    }
    assert_eq!(
        &buf[..],
        &data[..PACKET_LEN],
        "emit differs from the parsed bytes"
    );
    match Repr::parse(&Packet::new_unchecked(&buf[..])) {
        Ok(again) => assert_eq!(repr, again),
        Err(e) => panic!("an emitted ARP message does not parse: {e}"),
    }
});
