//! Pure tests of the encoder: batch framing and the byte layout of a few
//! expressions (checked against what `nft --debug=netlink` emits).

use crate::edge::netlink::messages;
use netlink_packet_core::{Emitable, NLM_F_ACK};
use netlink_packet_netfilter::nftables::{Operator, Register};

use super::encode::{cmp, load, replace_batch, NFNL_SUBSYS_NFTABLES};
use super::lower::Field;
use crate::core::firewall::{Family, FlowMatch, MarkRule, Match, Ruleset, SnatRule};

fn bytes(e: &impl Emitable) -> Vec<u8> {
    let mut v = vec![0; e.buffer_len()];
    e.emit(&mut v);
    v
}

fn sample() -> Ruleset {
    let mut marks: Vec<_> = (0..10)
        .map(|i| MarkRule {
            mark: 0x10001,
            m: Match::Uid(1000 + i),
        })
        .collect();
    marks.push(MarkRule {
        mark: 0x10002,
        m: Match::Flow(FlowMatch {
            family: Some(Family::V4),
            proto: Some(6),
            dport: Some((1000, 2000)),
            ..Default::default()
        }),
    });
    Ruleset {
        marks,
        snat: vec![SnatRule {
            mark: 0x10001,
            oif: 3,
            addr: "192.0.2.1".parse().unwrap(),
        }],
        ..Ruleset::default()
    }
}

#[test]
fn batch_is_framed_by_begin_and_end() {
    let b = replace_batch(&sample(), 100);
    let msgs: Vec<_> = messages("nft", &b.buf).collect();
    // begin, 3 table ops, 2 chains, map + elements + map rule, range rule, snat rule, end
    assert_eq!(msgs.len(), 2 + b.ops.len());
    assert_eq!(b.ops.len(), 10, "{:?}", b.ops);
    let total: usize = msgs.iter().map(|m| m.length() as usize).sum();
    assert_eq!(total, b.buf.len(), "messages are back to back");
    let (first, last) = (&msgs[0], &msgs[msgs.len() - 1]);
    assert_eq!(first.message_type(), 0x10, "NFNL_MSG_BATCH_BEGIN");
    assert_eq!(last.message_type(), 0x11, "NFNL_MSG_BATCH_END");
    for m in [first, last] {
        let res_id = u16::from_be_bytes([m.payload()[2], m.payload()[3]]);
        assert_eq!(res_id, NFNL_SUBSYS_NFTABLES);
    }
    assert_eq!(first.sequence_number(), 100);
    assert_eq!(last.sequence_number(), b.end_seq());
    for (i, m) in msgs[1..msgs.len() - 1].iter().enumerate() {
        assert_eq!(m.sequence_number(), 101 + i as u32);
        assert_ne!(m.flags() & NLM_F_ACK, 0, "message {i} asks for an ack");
        assert_eq!(m.message_type() >> 8, 10, "nftables subsystem");
        assert_eq!(m.payload()[0], libc::NFPROTO_INET as u8);
    }
    // NEWTABLE, DELTABLE, NEWTABLE
    let types: Vec<u16> = msgs[1..4].iter().map(|m| m.message_type() & 0xff).collect();
    assert_eq!(types, [0, 2, 0]);
}

#[test]
fn dport_load_layout() {
    // [ payload load 2b @ transport header + 2 => reg 1 ]
    let e = load(Field::Dport, Register::Reg1);
    let want: Vec<u8> = [
        &[0x34, 0, 1, 0][..],                   // NFTA_LIST_ELEM, nested
        &[12, 0, 1, 0, b'p', b'a', b'y', b'l'], // NFTA_EXPR_NAME "payload"
        &[b'o', b'a', b'd', 0],
        &[0x24, 0, 2, 0x80],       // NFTA_EXPR_DATA, nested
        &[8, 0, 1, 0, 0, 0, 0, 1], // DREG 1 (big endian)
        &[8, 0, 2, 0, 0, 0, 0, 2], // BASE transport
        &[8, 0, 3, 0, 0, 0, 0, 2], // OFFSET 2
        &[8, 0, 4, 0, 0, 0, 0, 2], // LEN 2
    ]
    .concat();
    let mut got = bytes(&e);
    // The list element header of netlink-packet-core carries NLA_F_NESTED.
    got[3] &= 0x7f;
    assert_eq!(got, want);
}

#[test]
fn cmp_layout() {
    // [ cmp eq reg 1 0x00001e61 ] = dport 7777
    let e = cmp(Operator::Equal, Register::Reg1, &7777u16.to_be_bytes());
    let got = bytes(&e);
    let want_data: Vec<u8> = [
        &[8, 0, 1, 0, 0, 0, 0, 1][..],   // SREG 1
        &[8, 0, 2, 0, 0, 0, 0, 0],       // OP eq
        &[12, 0, 3, 0x80],               // DATA, nested
        &[6, 0, 1, 0, 0x1e, 0x61, 0, 0], // NFTA_DATA_VALUE, 2 bytes + pad
    ]
    .concat();
    assert!(got.ends_with(&want_data), "{got:x?}");
}

/// The flowtable asks for `NF_FLOWTABLE_COUNTER` (0x2 in
/// `NFTA_FLOWTABLE_FLAGS`, attribute 7, big endian), as
/// nft 1.0.6 sends for a flowtable with `counter` (seen with strace).
#[test]
fn flowtable_has_the_counter_flag() {
    use crate::core::firewall::{Masquerade, Offload};
    let rs = Ruleset {
        masquerade: vec![Masquerade {
            src: ("192.168.0.0".parse().unwrap(), 24),
            oif: 3,
        }],
        offload: Some(Offload {
            devices: vec!["tether".into(), "eth0".into()],
            src: ("192.168.0.0".parse().unwrap(), 24),
        }),
        ..Ruleset::default()
    };
    let b = replace_batch(&rs, 1);
    let newflowtable = (10 << 8) | 22;
    let msg = messages("nft", &b.buf)
        .find(|m| m.message_type() == newflowtable)
        .expect("a NEWFLOWTABLE message");
    // After the nfgenmsg header: (len, type, value) attributes.
    let mut attrs = &msg.payload()[4..];
    let mut flags = None;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if kind == 7 {
            flags = Some(attrs[4..len].to_vec());
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    assert_eq!(flags, Some(vec![0, 0, 0, 2]));
}

/// A batch the kernel refuses part-way (a rule for a chain that does not
/// exist, after a valid replacement): the error names that message and the
/// previous ruleset is untouched. Runs in its own netns (needs root).
#[test]
fn kernel_refusal_leaves_previous_ruleset() {
    use std::os::fd::AsRawFd;
    use std::process::Command;

    struct Ns(String);
    impl Drop for Ns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let ns = Ns(format!("pmn-{}-unit", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    let f = std::fs::File::open(format!("/run/netns/{}", ns.0)).unwrap();
    // SAFETY: a valid netns fd; only this test thread moves.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
    let list = || {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &ns.0, "nft", "list", "table", "inet", "pathman",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let mut nft = super::open().unwrap();
    smol::block_on(nft.replace(&sample())).unwrap();
    let before = list();
    assert!(before.contains("map shape1"), "{before}");

    let mut other = sample();
    other.marks.truncate(1);
    let mut b = super::encode::replace_body(&other, nft.sock.take_seq(0));
    b.push(
        "add bogus rule",
        super::encode::rule("no-such-chain", super::encode::mark_rule(&[], 7)),
        netlink_packet_core::NLM_F_CREATE,
    );
    let r = smol::block_on(nft.transact(b.end()));
    assert_eq!(
        r,
        Err(super::NftError::Kernel(crate::edge::netlink::NlError::new(
            "nft",
            "add bogus rule",
            libc::ENOENT
        )))
    );
    assert_eq!(list(), before);
}

/// An NLMSG_ERROR reply: errno, the echoed request (`echo_len` long, its
/// header saying `req_len`), then the attributes in `tlvs`.
fn error_reply(flags: u16, echo_len: usize, req_len: u32, tlvs: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    let total = 16 + 4 + echo_len + tlvs.len();
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&netlink_packet_core::NLMSG_ERROR.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&7u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&(-libc::EINVAL).to_ne_bytes());
    let mut echo = vec![0; echo_len];
    echo[..4].copy_from_slice(&req_len.to_ne_bytes());
    m.extend_from_slice(&echo);
    m.extend_from_slice(tlvs);
    m
}

#[test]
fn ext_ack_message_after_capped_or_full_request() {
    use netlink_packet_core::{NetlinkBuffer, NLM_F_ACK_TLVS, NLM_F_CAPPED};
    // An unrelated attribute first, then NLMSGERR_ATTR_MSG "boom".
    let tlvs = [
        8, 0, 2, 0, 1, 0, 0, 0, //
        9, 0, 1, 0, b'b', b'o', b'o', b'm', 0, 0, 0, 0,
    ];
    let msg = |v: &[u8]| crate::edge::netlink::ext_ack_msg(&NetlinkBuffer::new(v));
    let capped = error_reply(NLM_F_CAPPED | NLM_F_ACK_TLVS, 16, 200, &tlvs);
    assert_eq!(msg(&capped).as_deref(), Some("boom"));
    // Not capped: the whole 22-byte request, padded to 24, comes first.
    let full = error_reply(NLM_F_ACK_TLVS, 24, 22, &tlvs);
    assert_eq!(msg(&full).as_deref(), Some("boom"));
    let no_tlvs = error_reply(NLM_F_CAPPED, 16, 200, &tlvs);
    assert_eq!(msg(&no_tlvs), None);
}
