//! pathman's own bus connection (`dbus::conn`) against a real dbus-daemon: filtered streams
//! get what their rule matches, a dropped stream gives its match rule back to the bus (the
//! bus's per-connection limit would refuse more otherwise), and when the bus goes away every
//! stream ends and calls fail.
//!
//! Needs dbus-daemon; no root, no lab.

#[path = "common/private_bus.rs"]
#[allow(dead_code)]
mod private_bus;
use private_bus::PrivateBus;

use std::time::{Duration, Instant};

use pathman::dbus::bus;
use smol::LocalExecutor;
use zbus::message::Type;
use zbus::{MatchRule, Message};

/// The bus refuses a connection's match rules beyond this.
const RULE_LIMIT: u32 = 4;

fn rule(member: &str) -> MatchRule<'static> {
    MatchRule::builder()
        .msg_type(Type::Signal)
        .interface("net.example.Conn")
        .unwrap()
        .member(member.to_owned())
        .unwrap()
        .build()
}

#[test]
fn streams_filter_give_their_rules_back_and_end_with_the_bus() {
    let bus_daemon = PrivateBus::start_with_limits(
        "conn-test",
        &[("max_match_rules_per_connection", RULE_LIMIT)],
    );
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(async {
        let conn = bus::connect_system().await.expect("connects");
        let _reader = bus::spawn_ticker(&ex, &conn);
        let other = bus::connect_system().await.expect("second connection");
        let _other_reader = bus::spawn_ticker(&ex, &other);

        // The limit is real: with RULE_LIMIT streams held, one more is refused.
        let mut held = Vec::new();
        for i in 0..RULE_LIMIT {
            held.push(
                conn.stream_for(rule(&format!("M{i}")))
                    .await
                    .expect("within the limit"),
            );
        }
        let refused = conn.stream_for(rule("Over")).await;
        assert!(refused.is_err(), "the bus enforces its match rule limit");

        // Each stream gets only what its rule matches.
        let signal = |member: &str| {
            Message::signal("/net/example", "net.example.Conn", member)
                .unwrap()
                .build(&())
                .unwrap()
        };
        other.send(&signal("M3")).await.expect("send M3");
        other.send(&signal("M1")).await.expect("send M1");
        let got = held[1].next().await.expect("M1 arrives");
        assert_eq!(got.header().member().map(|m| m.as_str()), Some("M1"));
        let got = held[3].next().await.expect("M3 arrives");
        assert_eq!(got.header().member().map(|m| m.as_str()), Some("M3"));

        // Dropped streams give their rules back: many rounds of RULE_LIMIT fit. The removal
        // goes out from the reader task, so each new stream waits (up to 5 s) for the bus to
        // take it.
        drop(held);
        for round in 0..10 {
            let mut streams = Vec::new();
            for i in 0..RULE_LIMIT {
                let r = rule(&format!("R{round}x{i}"));
                let deadline = Instant::now() + Duration::from_secs(5);
                let s = loop {
                    match conn.stream_for(r.clone()).await {
                        Ok(s) => break s,
                        Err(e) => {
                            assert!(
                                Instant::now() < deadline,
                                "round {round}: a dropped stream's rule was not removed: {e}"
                            );
                            smol::Timer::after(Duration::from_millis(10)).await;
                        }
                    }
                };
                streams.push(s);
            }
        }

        // The bus goes away: streams end, calls fail.
        let mut stream = conn.stream();
        drop(bus_daemon);
        assert!(
            stream.next().await.is_none(),
            "the stream ends with the bus"
        );
        let call = conn
            .call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus"),
                "GetId",
                &(),
            )
            .await;
        assert!(call.is_err(), "no bus, no answer");
    }));
}
