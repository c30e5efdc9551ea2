//! Flow selectors (`src/core/flow.rs`) from a session's `FlowSelectors` list, one selector
//! per input line, down to the nftables batch they become: each selector either is refused
//! with an error or parses into one that prints (`Display`, what Update reports back) to a
//! text that parses to the same selector; a list `parse_list` accepts must pass the
//! firewall's validation (`Ruleset::validate`, or the session would be accepted and then
//! never applied) and lower into an nfnetlink batch (`edge::nft::encode::replace_batch`)
//! whose messages are well-formed netlink, one per operation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::core::firewall::{Family, MarkRule, Match, Ruleset, SnatRule};
use pathman::core::flow;
use pathman::edge::netlink::messages;
use pathman::edge::nft::encode::replace_batch;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let items: Vec<String> = text.split('\n').map(str::to_string).collect();
    for item in &items {
        if let Ok(sel) = flow::parse(item) {
            let shown = sel.to_string();
            match flow::parse(&shown) {
                Ok(again) => assert_eq!(sel, again, "'{item}' shows as '{shown}', which differs"),
                Err(e) => panic!("'{item}' shows as '{shown}', which does not parse: {e}"),
            }
        }
    }
    let Ok(list) = flow::parse_list(&items) else {
        return;
    };
    // Two sessions share the selectors, as the session code would place them, plus SNAT.
    let marks: Vec<MarkRule> = list
        .iter()
        .enumerate()
        .map(|(i, s)| MarkRule {
            mark: 0x10000 + 1 + (i as u32 % 2),
            m: Match::Flow(s.to_match()),
        })
        .collect();
    let snat = match list.first().and_then(|s| s.to_match().effective_family()) {
        Some(Family::V6) => vec![SnatRule {
            mark: 0x10001,
            oif: 2,
            addr: "fd18:1::100".parse().unwrap(),
        }],
        _ => vec![SnatRule {
            mark: 0x10001,
            oif: 2,
            addr: "198.18.1.100".parse().unwrap(),
        }],
    };
    let rs = Ruleset {
        marks,
        snat,
        ..Ruleset::default()
    };
    if let Err(e) = rs.validate() {
        panic!("selectors accepted by parse_list fail the firewall's validation: {e}\n{items:?}");
    }
    let batch = replace_batch(&rs, 1);
    let n = messages("fuzz", &batch.buf).count();
    // BatchBegin + one message per op + BatchEnd.
    assert_eq!(
        n,
        batch.ops.len() + 2,
        "batch does not split into its messages"
    );
});
