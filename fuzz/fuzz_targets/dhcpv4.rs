//! The DHCPv4 codec (`src/wire/dhcpv4.rs`), as the client meets it: any bytes either fail to
//! parse with an error, or parse into a `Repr` that emits into a message which parses back to
//! the same `Repr` (what pathman accepts it can also write, and nothing is lost on the way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::wire::dhcpv4::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(repr) = Repr::parse(&Packet::new_unchecked(data)) else {
        return;
    };
    // The fields a client reads must be readable without panicking, too.
    let _ = format!("{repr:?}");
    let mut buf = vec![0u8; repr.buffer_len()];
    if let Err(e) = repr.emit(&mut Packet::new_unchecked(&mut buf[..])) {
        panic!("a parsed message does not emit: {e}\n{repr:?}");
    }
    match Repr::parse(&Packet::new_unchecked(&buf[..])) {
        Ok(again) => assert_eq!(repr, again, "emit + parse changed the message"),
        Err(e) => panic!("an emitted message does not parse: {e}\n{repr:?}"),
    }
});
