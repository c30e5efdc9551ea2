//! Builds the nfnetlink batches: typed netlink-packet-netfilter messages,
//! and — in [`raw`] only — the NLAs that crate does not model (`nat`
//! expression, set field lengths, element key end).

use netlink_packet_core::{
    DefaultNla, NetlinkMessage, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions,
    Hook, HookNumber, Immediate, InetHookNumber, ListAttribute, Lookup, Meta, MetaKey,
    NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage, SetAttribute,
    SetDescription, SetElementAttribute, SetElementList, SetElementMessage, SetFlags, SetMessage,
    TableAttribute, TableMessage, Verdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};

use super::lower::{lower, nfproto, octets, Field, Step, Term};
use crate::core::firewall::{Family, Masquerade, Ruleset, SnatRule};
use std::net::IpAddr;

/// pathman's table (family inet): it owns nothing else in nftables.
pub const TABLE: &str = "pathman";
/// Output chain of type route: marks, so marked packets are re-routed.
pub const MARK_CHAIN: &str = "marks";
/// Forward filter chain adding tethered flows to [`FLOWTABLE`].
pub const OFFLOAD_CHAIN: &str = "fastpath";
/// Tethering's flowtable.
pub const FLOWTABLE: &str = "tether";
/// The offload chain runs last on the forward hook: a flow is added only
/// once every other forward chain (any table's) has let its packet pass.
const PRIO_OFFLOAD: i32 = i32::MAX;
/// Postrouting nat chain: source address of re-routed marked packets.
pub const SNAT_CHAIN: &str = "source-nat";
/// Marks forwarded packets (tethered clients) by session flow selectors.
pub const FORWARD_MARK_CHAIN: &str = "forward-mark";

/// `NFNL_SUBSYS_NFTABLES`: batch begin/end carry it in `res_id`.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// Mangle priority of the mark chain (`NF_IP_PRI_MANGLE`).
const PRIO_MANGLE: i32 = -150;
/// Source NAT priority (`NF_IP_PRI_NAT_SRC`).
const PRIO_SRCNAT: i32 = 100;
/// `NF_ACCEPT`: chain policy and the verdict ending a matched mark rule.
const NF_ACCEPT: u32 = 1;
/// `NFT_PAYLOAD_NETWORK_HEADER`, `NFT_PAYLOAD_TRANSPORT_HEADER`.
const BASE_NETWORK: u32 = 1;
const BASE_TRANSPORT: u32 = 2;
/// Set elements per NEWSETELEM message: keeps each message well under a page
/// multiple the kernel has to allocate at once.
const ELEMS_PER_MSG: usize = 256;

/// nft's datatype ids (`enum datatypes` in nftables' datatype.h). The
/// kernel ignores them; `nft list` uses them to print keys and data.
mod nft_type {
    pub const NFPROTO: u32 = 2;
    pub const IPADDR: u32 = 7;
    pub const IP6ADDR: u32 = 8;
    pub const INET_PROTOCOL: u32 = 12;
    pub const INET_SERVICE: u32 = 13;
    pub const MARK: u32 = 19;
    pub const UID: u32 = 24;
    pub const GID: u32 = 25;
    /// Bits per member in a concatenated type id.
    pub const BITS: u32 = 6;
}

/// One encoded batch: the bytes for one `send`, and what each message does
/// (for errors), by sequence number.
pub struct Batch {
    /// BatchBegin … BatchEnd, back to back.
    pub buf: Vec<u8>,
    /// Sequence number of BatchBegin; content message i has `first_seq + 1 + i`.
    pub first_seq: u32,
    /// What content message i does, e.g. `"add rule"`.
    pub ops: Vec<&'static str>,
}

impl Batch {
    pub(super) fn begin(first_seq: u32) -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(4096),
            first_seq,
            ops: Vec::new(),
        };
        b.emit(
            ControlMessage::BatchBegin,
            NLM_F_REQUEST,
            first_seq,
            NFNL_SUBSYS_NFTABLES,
        );
        b
    }

    pub(super) fn end(mut self) -> Batch {
        let seq = self.end_seq();
        self.emit(
            ControlMessage::BatchEnd,
            NLM_F_REQUEST,
            seq,
            NFNL_SUBSYS_NFTABLES,
        );
        self
    }

    /// Sequence number of BatchEnd (and one past the last content message).
    pub fn end_seq(&self) -> u32 {
        self.first_seq
            .wrapping_add(1)
            .wrapping_add(self.ops.len() as u32)
    }

    /// Appends one content message; every one asks for an ack, so the
    /// kernel answers each and errors can be tied to the message.
    pub(super) fn push(&mut self, op: &'static str, msg: NfTablesMessage, flags: u16) {
        let seq = self.end_seq();
        self.ops.push(op);
        self.emit(msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0);
    }

    fn emit<M: Into<NetfilterMessageInner>>(&mut self, msg: M, flags: u16, seq: u32, res_id: u16) {
        let family = match res_id {
            0 => NetfilterProtoFamily::Inet,
            _ => NetfilterProtoFamily::Unspec,
        };
        let mut nl = NetlinkMessage::from(NetfilterMessage::new(
            NetfilterHeader::new(family, 0, res_id),
            msg,
        ));
        nl.header.flags = flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let at = self.buf.len();
        // Netlink messages are 4-byte aligned and their lengths already are.
        self.buf.resize(at + nl.buffer_len(), 0);
        nl.serialize(&mut self.buf[at..]);
    }
}

fn table() -> TableMessage {
    TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    }
}

/// A lone GETTABLE request for pathman's table (no batch: a read is not a
/// transaction), for [`super::Nft::exists`].
pub fn get_table(seq: u32) -> Vec<u8> {
    let mut b = Batch {
        buf: Vec::with_capacity(64),
        first_seq: seq,
        ops: Vec::new(),
    };
    b.emit(
        NfTablesMessage::GetTable(table()),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        0,
    );
    b.buf
}

/// The batch for [`super::Nft::remove`]: delete the table.
pub fn remove_batch(first_seq: u32) -> Batch {
    let mut b = Batch::begin(first_seq);
    b.push("delete table", NfTablesMessage::DeleteTable(table()), 0);
    b.end()
}

/// The batch for [`super::Nft::replace`]: create-if-missing, delete and
/// recreate the table with everything in `rs`, in one transaction. `rs`
/// must be validated.
pub fn replace_batch(rs: &Ruleset, first_seq: u32) -> Batch {
    replace_body(rs, first_seq).end()
}

/// [`replace_batch`] without its BatchEnd.
pub(super) fn replace_body(rs: &Ruleset, first_seq: u32) -> Batch {
    let mut b = Batch::begin(first_seq);
    // "table; delete table; table {…}" as nft -f does it: the first add
    // makes the delete succeed when the table does not exist yet.
    b.push(
        "add table",
        NfTablesMessage::NewTable(table()),
        NLM_F_CREATE,
    );
    b.push("delete table", NfTablesMessage::DeleteTable(table()), 0);
    b.push(
        "add table",
        NfTablesMessage::NewTable(table()),
        NLM_F_CREATE,
    );
    b.push(
        "add mark chain",
        chain(MARK_CHAIN, "route", InetHookNumber::LocalOut, PRIO_MANGLE),
        NLM_F_CREATE,
    );
    b.push(
        "add snat chain",
        chain(SNAT_CHAIN, "nat", InetHookNumber::PostRouting, PRIO_SRCNAT),
        NLM_F_CREATE,
    );
    if !rs.forward_marks.is_empty() {
        b.push(
            "add forward mark chain",
            chain(
                FORWARD_MARK_CHAIN,
                "filter",
                InetHookNumber::PreRouting,
                PRIO_MANGLE,
            ),
            NLM_F_CREATE,
        );
    }
    let mut set_id = 0u32;
    let lowered = lower(&rs.marks).into_iter().map(|s| (MARK_CHAIN, s)).chain(
        lower(&rs.forward_marks)
            .into_iter()
            .map(|s| (FORWARD_MARK_CHAIN, s)),
    );
    for (chain_name, step) in lowered {
        match step {
            Step::Rule { terms, mark } => b.push(
                "add mark rule",
                rule(chain_name, mark_rule(&terms, mark)),
                NLM_F_CREATE | NLM_F_APPEND,
            ),
            Step::Map {
                fields,
                interval,
                elems,
            } => {
                set_id += 1;
                let name = format!("shape{set_id}");
                b.push(
                    "add map",
                    map(&name, set_id, &fields, interval),
                    NLM_F_CREATE,
                );
                for chunk in elems.chunks(ELEMS_PER_MSG) {
                    b.push(
                        "add map elements",
                        map_elements(&name, set_id, interval, chunk),
                        NLM_F_CREATE,
                    );
                }
                b.push(
                    "add map rule",
                    rule(chain_name, map_rule(&name, set_id, &fields)),
                    NLM_F_CREATE | NLM_F_APPEND,
                );
            }
        }
    }
    for s in &rs.snat {
        b.push(
            "add snat rule",
            rule(SNAT_CHAIN, snat_rule(s)),
            NLM_F_CREATE | NLM_F_APPEND,
        );
    }
    if let Some(o) = &rs.offload {
        b.push(
            "add flowtable",
            raw::flowtable(FLOWTABLE, &o.devices),
            NLM_F_CREATE,
        );
        b.push(
            "add offload chain",
            chain(
                OFFLOAD_CHAIN,
                "filter",
                InetHookNumber::Forward,
                PRIO_OFFLOAD,
            ),
            NLM_F_CREATE,
        );
        for proto in [libc::IPPROTO_TCP as u8, libc::IPPROTO_UDP as u8] {
            b.push(
                "add offload rule",
                rule(OFFLOAD_CHAIN, offload_rule(o.src, proto)),
                NLM_F_CREATE | NLM_F_APPEND,
            );
        }
    }
    for m in &rs.masquerade {
        b.push(
            "add masquerade rule",
            rule(SNAT_CHAIN, masquerade_rule(m)),
            NLM_F_CREATE | NLM_F_APPEND,
        );
    }
    b
}

/// `meta nfproto ipv4 ip saddr <net>/<len> meta oif == I masquerade`.
fn masquerade_rule(m: &Masquerade) -> Vec<Expr> {
    let r = Register::Reg1;
    let src = IpAddr::V4(m.src.0);
    let mut out = vec![
        load(Field::NfProto, r),
        cmp(Operator::Equal, r, &[nfproto(Family::V4)]),
    ];
    let mask_bytes = crate::core::types::prefix_to_mask(m.src.1)
        .to_be_bytes()
        .to_vec();
    out.push(load(Field::Saddr(Family::V4), r));
    out.push(mask(r, mask_bytes));
    out.push(cmp(Operator::Equal, r, &octets(&src)));
    out.push(Expressions::Meta(vec![Meta::DestinationRegister(r), Meta::Key(MetaKey::Oif)]).into());
    out.push(cmp(Operator::Equal, r, &m.oif.to_ne_bytes()));
    out.push(
        Expressions::Other {
            expression_type: "masq".into(),
            attributes: vec![],
        }
        .into(),
    );
    out
}

/// `meta nfproto ipv4 ip saddr <net>/<len> meta l4proto <proto> flow add @ft`.
fn offload_rule(src: (std::net::Ipv4Addr, u8), proto: u8) -> Vec<Expr> {
    let r = Register::Reg1;
    let mask_bytes = crate::core::types::prefix_to_mask(src.1)
        .to_be_bytes()
        .to_vec();
    vec![
        load(Field::NfProto, r),
        cmp(Operator::Equal, r, &[nfproto(Family::V4)]),
        load(Field::Saddr(Family::V4), r),
        mask(r, mask_bytes),
        cmp(Operator::Equal, r, &src.0.octets()),
        load(Field::L4Proto, r),
        cmp(Operator::Equal, r, &[proto]),
        raw::flow_offload(FLOWTABLE),
    ]
}

fn chain(name: &str, kind: &str, hook: InetHookNumber, prio: i32) -> NfTablesMessage {
    NfTablesMessage::NewChain(ChainMessage {
        attributes: vec![
            ChainAttribute::Table(TABLE.into()),
            ChainAttribute::Name(name.into()),
            ChainAttribute::Hook(vec![
                Hook::Number(HookNumber::Inet(hook)),
                // The kernel reads the priority as a signed 32-bit value.
                Hook::Priority(prio as u32),
            ]),
            ChainAttribute::Policy(NF_ACCEPT),
            ChainAttribute::Type(kind.into()),
        ],
    })
}

type Expr = ListAttribute<ExpressionAttribute>;

pub(super) fn rule(chain: &str, exprs: Vec<Expr>) -> NfTablesMessage {
    NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(chain.into()),
            RuleAttribute::Expressions(exprs),
        ],
    })
}

/// Loads `field` into `reg`.
pub(super) fn load(field: Field, reg: Register) -> Expr {
    let meta = |key| Expressions::Meta(vec![Meta::DestinationRegister(reg), Meta::Key(key)]).into();
    let payload = |base, offset, len: usize| {
        Expressions::Payload(vec![
            Payload::DestinationRegister(reg),
            Payload::Base(base),
            Payload::Offset(offset),
            Payload::Len(len as u32),
        ])
        .into()
    };
    match field {
        Field::NfProto => meta(MetaKey::Nfproto),
        Field::L4Proto => meta(MetaKey::L4Proto),
        Field::Uid => meta(MetaKey::SocketUserId),
        Field::Gid => meta(MetaKey::SocketGroupId),
        Field::Saddr(Family::V4) => payload(BASE_NETWORK, 12, 4),
        Field::Daddr(Family::V4) => payload(BASE_NETWORK, 16, 4),
        Field::Saddr(Family::V6) => payload(BASE_NETWORK, 8, 16),
        Field::Daddr(Family::V6) => payload(BASE_NETWORK, 24, 16),
        Field::Sport => payload(BASE_TRANSPORT, 0, 2),
        Field::Dport => payload(BASE_TRANSPORT, 2, 2),
    }
}

/// Compares `reg` with `data`.
pub(super) fn cmp(op: Operator, reg: Register, data: &[u8]) -> Expr {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(reg),
        Cmp::Op(op),
        Cmp::Data(DataAttribute::Value(data.to_vec())),
    ])
    .into()
}

fn mask(reg: Register, mask: Vec<u8>) -> Expr {
    let len = mask.len();
    Expressions::Bitwise(vec![
        Bitwise::SourceRegister(reg),
        Bitwise::DestinationRegister(reg),
        Bitwise::Length(len as u32),
        Bitwise::Mask(DataAttribute::Value(mask)),
        Bitwise::Xor(DataAttribute::Value(vec![0; len])),
    ])
    .into()
}

fn immediate(reg: Register, data: &[u8]) -> Expr {
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(reg),
        Immediate::Data(DataAttribute::Value(data.to_vec())),
    ])
    .into()
}

fn accept() -> Expr {
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Verdict),
        Immediate::Data(DataAttribute::Verdict(vec![VerdictAttribute::Code(
            Verdict::Other(NF_ACCEPT),
        )])),
    ])
    .into()
}

fn set_mark_from(reg: Register) -> Expr {
    Expressions::Meta(vec![Meta::Key(MetaKey::Mark), Meta::SourceRegister(reg)]).into()
}

/// The matching expressions of one term, in register 1.
fn term_exprs(t: &Term, out: &mut Vec<Expr>) {
    let r = Register::Reg1;
    out.push(load(t.field, r));
    if t.is_exact() {
        out.push(cmp(Operator::Equal, r, &t.lo));
        return;
    }
    match t.field {
        // A prefix: lo/hi differ exactly in the host bits.
        Field::Saddr(_) | Field::Daddr(_) => {
            let m = t.lo.iter().zip(&t.hi).map(|(l, h)| !(l ^ h)).collect();
            out.push(mask(r, m));
            out.push(cmp(Operator::Equal, r, &t.lo));
        }
        _ => {
            out.push(cmp(Operator::GreatherThanEqual, r, &t.lo));
            out.push(cmp(Operator::LessThanEqual, r, &t.hi));
        }
    }
}

/// `<terms> meta mark set <mark> accept`. Accept ends this base chain only
/// (later chains still run) and makes the first matching rule win.
pub(super) fn mark_rule(terms: &[Term], mark: u32) -> Vec<Expr> {
    let mut out = Vec::new();
    for t in terms {
        term_exprs(t, &mut out);
    }
    out.push(immediate(Register::Reg1, &mark.to_ne_bytes()));
    out.push(set_mark_from(Register::Reg1));
    out.push(accept());
    out
}

/// 32-bit register `NFT_REG32_00 + off / 4`: where a concatenation member
/// at byte offset `off` goes.
fn reg32(off: usize) -> Register {
    Register::from(8 + (off / 4) as u32)
}

/// `meta mark set <f1> . <f2> … map @name accept`.
fn map_rule(name: &str, set_id: u32, fields: &[Field]) -> Vec<Expr> {
    let mut out = Vec::new();
    // Shapes with an address have one family: checking it first skips the
    // lookup for the other family, and lets nft print `ip daddr` instead
    // of raw payload offsets.
    let fam = fields.iter().find_map(|f| match f {
        Field::Saddr(fam) | Field::Daddr(fam) => Some(*fam),
        _ => None,
    });
    if let Some(fam) = fam {
        out.push(load(Field::NfProto, Register::Reg1));
        out.push(cmp(Operator::Equal, Register::Reg1, &[nfproto(fam)]));
    }
    let mut off = 0;
    for f in fields {
        out.push(load(*f, reg32(off)));
        off += f.padded_len();
    }
    out.push(
        Expressions::Lookup(vec![
            Lookup::Set(name.into()),
            Lookup::SetId(set_id),
            Lookup::SourceRegister(reg32(0)),
            Lookup::DestinationRegister(Register::Reg1),
        ])
        .into(),
    );
    out.push(set_mark_from(Register::Reg1));
    out.push(accept());
    out
}

fn nft_type(f: Field) -> u32 {
    match f {
        Field::NfProto => nft_type::NFPROTO,
        Field::L4Proto => nft_type::INET_PROTOCOL,
        Field::Uid => nft_type::UID,
        Field::Gid => nft_type::GID,
        Field::Saddr(Family::V4) | Field::Daddr(Family::V4) => nft_type::IPADDR,
        Field::Saddr(Family::V6) | Field::Daddr(Family::V6) => nft_type::IP6ADDR,
        Field::Sport | Field::Dport => nft_type::INET_SERVICE,
    }
}

fn map(name: &str, set_id: u32, fields: &[Field], interval: bool) -> NfTablesMessage {
    let key_type = fields
        .iter()
        .fold(0, |acc, f| (acc << nft_type::BITS) | nft_type(*f));
    let key_len: usize = fields.iter().map(|f| f.padded_len()).sum();
    let mut flags = SetFlags::Map;
    let mut attributes = vec![
        SetAttribute::Table(TABLE.into()),
        SetAttribute::Name(name.into()),
        SetAttribute::KeyType(key_type),
        SetAttribute::KeyLen(key_len as u32),
        SetAttribute::DataType(nft_type::MARK),
        SetAttribute::DataLen(4),
        SetAttribute::Id(set_id),
    ];
    if interval {
        // Ranges over a concatenation: the pipapo backend, which needs the
        // member lengths (every interval shape has at least two members:
        // addresses come with nfproto, ports with l4proto).
        flags |= SetFlags::Interval | SetFlags::Concat;
        attributes.push(SetAttribute::Description(vec![SetDescription::Concat(
            fields.iter().map(|f| raw::field_len(f.len())).collect(),
        )]));
    }
    attributes.insert(2, SetAttribute::Flags(flags));
    // Uid/gid keys and the mark are host-endian; without saying so nft
    // would print them byte-swapped.
    let host_key = matches!(fields, [Field::Uid] | [Field::Gid]);
    attributes.push(SetAttribute::UserData(raw::set_byteorder(host_key)));
    NfTablesMessage::NewSet(SetMessage { attributes })
}

/// Concatenates term bounds, each member zero-padded to 32 bits.
fn concat(terms: &[Term], hi: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for t in terms {
        out.extend_from_slice(if hi { &t.hi } else { &t.lo });
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

fn map_elements(
    name: &str,
    set_id: u32,
    interval: bool,
    elems: &[(Vec<Term>, u32)],
) -> NfTablesMessage {
    let list = elems
        .iter()
        .map(|(terms, mark)| {
            let mut e = vec![SetElementAttribute::Key(DataAttribute::Value(concat(
                terms, false,
            )))];
            if interval {
                e.push(SetElementAttribute::KeyEnd(vec![raw::data_value(concat(
                    terms, true,
                ))]));
            }
            e.push(SetElementAttribute::Data(DataAttribute::Value(
                mark.to_ne_bytes().to_vec(),
            )));
            ListAttribute::Element(e)
        })
        .collect();
    NfTablesMessage::NewSetElement(SetElementMessage {
        attributes: vec![
            SetElementList::Table(TABLE.into()),
            SetElementList::Set(name.into()),
            SetElementList::SetId(set_id),
            SetElementList::Elements(list),
        ],
    })
}

/// `meta nfproto F meta mark == M meta oif == I snat ip(6) to A`.
fn snat_rule(s: &SnatRule) -> Vec<Expr> {
    let r = Register::Reg1;
    let fam = Family::of(&s.addr);
    let addr = octets(&s.addr);
    let meta = |key| Expressions::Meta(vec![Meta::DestinationRegister(r), Meta::Key(key)]).into();
    vec![
        load(Field::NfProto, r),
        cmp(Operator::Equal, r, &[nfproto(fam)]),
        meta(MetaKey::Mark),
        cmp(Operator::Equal, r, &s.mark.to_ne_bytes()),
        meta(MetaKey::Oif),
        cmp(Operator::Equal, r, &s.oif.to_ne_bytes()),
        immediate(r, &addr),
        raw::snat_to(fam, r),
    ]
}

/// The NLAs netlink-packet-netfilter 0.4 has no types for. Nothing else
/// builds attributes from bytes.
mod raw {
    use super::*;

    /// `NFTA_LIST_ELEM { NFTA_SET_FIELD_LEN }` of `NFTA_SET_DESC_CONCAT`.
    pub fn field_len(len: usize) -> DefaultNla {
        const NFTA_LIST_ELEM: u16 = 1;
        const NFTA_SET_FIELD_LEN: u16 = 1;
        let inner = nla(NFTA_SET_FIELD_LEN, &(len as u32).to_be_bytes());
        DefaultNla::new(NFTA_LIST_ELEM | netlink_packet_core::NLA_F_NESTED, inner)
    }

    /// `NFTA_DATA_VALUE` (inside `NFTA_SET_ELEM_KEY_END`).
    pub fn data_value(v: Vec<u8>) -> DefaultNla {
        const NFTA_DATA_VALUE: u16 = 1;
        DefaultNla::new(NFTA_DATA_VALUE, v)
    }

    /// nft's set user data (libnftnl `NFTNL_UDATA_SET_KEYBYTEORDER`,
    /// `_DATABYTEORDER`: type u8, length u8, host-endian u32 value;
    /// byte order 1 = host, 2 = big endian). Only `nft list` reads it.
    pub fn set_byteorder(host_key: bool) -> Vec<u8> {
        const KEYBYTEORDER: u8 = 0;
        const DATABYTEORDER: u8 = 1;
        const HOST: u32 = 1;
        const BIG: u32 = 2;
        let mut out = Vec::with_capacity(12);
        for (kind, order) in [
            (KEYBYTEORDER, if host_key { HOST } else { BIG }),
            (DATABYTEORDER, HOST),
        ] {
            out.extend_from_slice(&[kind, 4]);
            out.extend_from_slice(&order.to_ne_bytes());
        }
        out
    }

    /// The `nat` expression: SNAT to the address in `reg`.
    pub fn snat_to(fam: Family, reg: Register) -> Expr {
        const NFTA_NAT_TYPE: u16 = 1;
        const NFTA_NAT_FAMILY: u16 = 2;
        const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
        const NFTA_NAT_REG_ADDR_MAX: u16 = 4;
        const NFTA_NAT_FLAGS: u16 = 7;
        const NFT_NAT_SNAT: u32 = 0;
        const NF_NAT_RANGE_MAP_IPS: u32 = 1;
        let family = u32::from(nfproto(fam));
        let reg = u32::from(reg);
        let be = |k, v: u32| DefaultNla::new(k, v.to_be_bytes().to_vec());
        Expressions::Other {
            expression_type: "nat".into(),
            attributes: vec![
                be(NFTA_NAT_TYPE, NFT_NAT_SNAT),
                be(NFTA_NAT_FAMILY, family),
                be(NFTA_NAT_REG_ADDR_MIN, reg),
                be(NFTA_NAT_REG_ADDR_MAX, reg),
                be(NFTA_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS),
            ],
        }
        .into()
    }

    /// `NFT_MSG_NEWFLOWTABLE`: flowtable `name` of pathman's table on the
    /// ingress hook of `devices`, with `NF_FLOWTABLE_COUNTER` so offloaded
    /// packets still count in their conntrack entry's counters (`nft list`
    /// shows `counter`; Linux 5.7+). netlink-packet-netfilter has no
    /// flowtable messages.
    pub fn flowtable(name: &str, devices: &[String]) -> NfTablesMessage {
        const NFT_MSG_NEWFLOWTABLE: u8 = 22;
        const NFTA_FLOWTABLE_TABLE: u16 = 1;
        const NFTA_FLOWTABLE_NAME: u16 = 2;
        const NFTA_FLOWTABLE_HOOK: u16 = 3;
        const NFTA_FLOWTABLE_FLAGS: u16 = 7;
        const NF_FLOWTABLE_COUNTER: u32 = 0x2;
        const NFTA_FLOWTABLE_HOOK_NUM: u16 = 1;
        const NFTA_FLOWTABLE_HOOK_PRIORITY: u16 = 2;
        const NFTA_FLOWTABLE_HOOK_DEVS: u16 = 3;
        const NFTA_DEVICE_NAME: u16 = 1;
        const NF_NETDEV_INGRESS: u32 = 0;
        use netlink_packet_core::NLA_F_NESTED;
        let mut devs = Vec::new();
        for d in devices {
            devs.extend(nla(NFTA_DEVICE_NAME, &cstr(d)));
        }
        let mut hook = nla(NFTA_FLOWTABLE_HOOK_NUM, &NF_NETDEV_INGRESS.to_be_bytes());
        hook.extend(nla(NFTA_FLOWTABLE_HOOK_PRIORITY, &0u32.to_be_bytes()));
        hook.extend(nla(NFTA_FLOWTABLE_HOOK_DEVS | NLA_F_NESTED, &devs));
        NfTablesMessage::Other {
            message_type: NFT_MSG_NEWFLOWTABLE,
            attributes: vec![
                DefaultNla::new(NFTA_FLOWTABLE_TABLE, cstr(super::TABLE)),
                DefaultNla::new(NFTA_FLOWTABLE_NAME, cstr(name)),
                DefaultNla::new(NFTA_FLOWTABLE_HOOK | NLA_F_NESTED, hook),
                DefaultNla::new(
                    NFTA_FLOWTABLE_FLAGS,
                    NF_FLOWTABLE_COUNTER.to_be_bytes().to_vec(),
                ),
            ],
        }
    }

    /// The `flow_offload` expression: add the packet's flow to flowtable `name`.
    pub fn flow_offload(name: &str) -> Expr {
        const NFTA_FLOW_TABLE_NAME: u16 = 1;
        Expressions::Other {
            expression_type: "flow_offload".into(),
            attributes: vec![DefaultNla::new(NFTA_FLOW_TABLE_NAME, cstr(name))],
        }
        .into()
    }

    /// A NUL-terminated string attribute value.
    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    /// One NLA as bytes (header + value, padded), for nesting in a `DefaultNla`.
    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut out = Vec::with_capacity(len.next_multiple_of(4));
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(len.next_multiple_of(4), 0);
        out
    }
}
