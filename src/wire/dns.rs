//! DNS (RFC 1035) messages, as much as a stub resolver of A and AAAA records needs: a query
//! to emit, and the addresses a response gives for the asked name, CNAME chain followed.
//!
//! Own codec rather than smoltcp's `wire::dns`: that one has a `Repr` for queries only and
//! leaves record walking and CNAME chains to its socket, and comes with the rest of the crate.
//! Everything here is bounded: names are kept in a fixed 255-byte buffer, compression
//! pointers must point strictly backwards (so a loop cannot exist), CNAME chains stop after
//! [`DNS_MAX_CNAME_CHAIN`] links and at most [`DNS_MAX_ADDRS`] addresses are kept.

use crate::caps::{DNS_MAX_ADDRS, DNS_MAX_CNAME_CHAIN};
use core::fmt;
use heapless::Vec;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// UDP port of DNS servers.
pub const PORT: u16 = 53;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest query [`Query::emit`] writes.
pub const MAX_QUERY_LEN: usize = HEADER_LEN + MAX_NAME_LEN + 4;

const CLASS_IN: u16 = 1;
const TYPE_CNAME: u16 = 5;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_AA: u16 = 0x0400;
const FLAG_RA: u16 = 0x0080;

/// Errors from parsing or emitting a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The message ends inside a header, name, record or question.
    Truncated,
    /// A label length byte with the reserved top bits 01 or 10.
    BadLabel(u8),
    /// A name longer than 255 bytes in wire form.
    NameTooLong,
    /// A label longer than 63 bytes, or an empty label inside a dotted name.
    BadLabelLength(usize),
    /// A compression pointer that does not point strictly backwards.
    BadPointer(usize),
    /// A dotted name that is empty.
    EmptyName,
    /// A response was expected (QR set), or a query (QR clear).
    WrongDirection,
    /// Opcode other than QUERY.
    BadOpcode(u8),
    /// Not exactly one question.
    QuestionCount(u16),
    /// The question is not the one asked.
    QuestionMismatch,
    /// A query type other than A or AAAA.
    UnsupportedType(u16),
    /// A record's data has the wrong size for its type, or a name runs past it.
    BadRdata {
        /// The record type.
        rtype: u16,
        /// Its data length.
        len: usize,
    },
    /// More CNAMEs than [`DNS_MAX_CNAME_CHAIN`] (or a loop).
    CnameChainTooLong,
    /// Emit: the buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "DNS message truncated"),
            Error::BadLabel(b) => write!(f, "DNS label type 0x{b:02x} unknown"),
            Error::NameTooLong => write!(f, "DNS name longer than {MAX_NAME_LEN} bytes"),
            Error::BadLabelLength(l) => {
                write!(f, "DNS label of {l} bytes (want 1..={MAX_LABEL_LEN})")
            }
            Error::BadPointer(at) => write!(f, "DNS compression pointer to {at} not backwards"),
            Error::EmptyName => write!(f, "empty DNS name"),
            Error::WrongDirection => write!(f, "DNS message in the wrong direction (QR bit)"),
            Error::BadOpcode(o) => write!(f, "DNS opcode {o} is not QUERY"),
            Error::QuestionCount(n) => write!(f, "DNS message has {n} questions, not 1"),
            Error::QuestionMismatch => write!(f, "DNS response answers another question"),
            Error::UnsupportedType(t) => write!(f, "DNS query type {t} is not A or AAAA"),
            Error::BadRdata { rtype, len } => {
                write!(f, "DNS record of type {rtype} has bad data of {len} bytes")
            }
            Error::CnameChainTooLong => {
                write!(f, "DNS CNAME chain longer than {DNS_MAX_CNAME_CHAIN}")
            }
            Error::BufferTooSmall => write!(f, "buffer too small for DNS message"),
        }
    }
}

impl std::error::Error for Error {}

/// The record types a query may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// IPv4 address (1).
    A,
    /// IPv6 address (28).
    Aaaa,
}

impl Type {
    /// The type's number.
    pub fn code(self) -> u16 {
        match self {
            Type::A => 1,
            Type::Aaaa => 28,
        }
    }

    /// From its number.
    pub fn from_code(c: u16) -> Result<Type, Error> {
        match c {
            1 => Ok(Type::A),
            28 => Ok(Type::Aaaa),
            _ => Err(Error::UnsupportedType(c)),
        }
    }

    fn addr(self, rdata: &[u8]) -> Result<IpAddr, Error> {
        let bad = Error::BadRdata {
            rtype: self.code(),
            len: rdata.len(),
        };
        match self {
            Type::A => <[u8; 4]>::try_from(rdata)
                .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
                .map_err(|_| bad),
            Type::Aaaa => <[u8; 16]>::try_from(rdata)
                .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
                .map_err(|_| bad),
        }
    }
}

/// Response code (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// 0.
    NoError,
    /// 1: the server could not read the query.
    FormErr,
    /// 2: the server failed.
    ServFail,
    /// 3: the name does not exist.
    NxDomain,
    /// 4: not implemented.
    NotImp,
    /// 5: refused.
    Refused,
    /// Anything else.
    Other(u8),
}

impl Rcode {
    /// From the four-bit field.
    pub fn from_bits(b: u8) -> Rcode {
        match b & 0xf {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            x => Rcode::Other(x),
        }
    }

    /// The four-bit field.
    pub fn bits(self) -> u8 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(x) => x & 0xf,
        }
    }
}

/// A domain name in wire form (length-prefixed labels, root label last), ASCII letters
/// lowercased so that equality is DNS's case-insensitive comparison. Fixed size, no
/// allocation.
#[derive(Clone)]
pub struct Name {
    len: u8,
    buf: [u8; MAX_NAME_LEN],
}

impl Name {
    /// The root name (`.`).
    pub fn root() -> Name {
        let mut n = Name::empty();
        n.len = 1;
        n
    }

    fn empty() -> Name {
        Name {
            len: 0,
            buf: [0; MAX_NAME_LEN],
        }
    }

    /// A dotted name (`pool.ntp.org`, a trailing dot allowed). Labels must be 1..=63 bytes
    /// and the whole at most 255 in wire form; what characters a host name may hold is
    /// checked where names come in ([`crate::core::validate`]).
    pub fn from_dotted(s: &str) -> Result<Name, Error> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(Error::EmptyName);
        }
        let mut n = Name::empty();
        for label in s.split('.') {
            if label.is_empty() {
                return Err(Error::BadLabelLength(0));
            }
            n.push_label(label.as_bytes())?;
        }
        n.push_root()?;
        Ok(n)
    }

    fn push_label(&mut self, label: &[u8]) -> Result<(), Error> {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(Error::BadLabelLength(label.len()));
        }
        let at = usize::from(self.len);
        // Room for this label and the root label after it.
        if at + 1 + label.len() + 1 > MAX_NAME_LEN {
            return Err(Error::NameTooLong);
        }
        self.buf[at] = label.len() as u8;
        for (d, s) in self.buf[at + 1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        self.len = (at + 1 + label.len()) as u8;
        Ok(())
    }

    fn push_root(&mut self) -> Result<(), Error> {
        let at = usize::from(self.len);
        let slot = self.buf.get_mut(at).ok_or(Error::NameTooLong)?;
        *slot = 0;
        self.len += 1;
        Ok(())
    }

    /// The name in wire form.
    pub fn as_wire(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Reads the name that starts at `start` in `msg`, following compression pointers.
    /// Returns it and the offset just after it where it started (after the first pointer,
    /// if it has one). A pointer must point below the place the current run of labels was
    /// reached from, so every jump goes strictly backwards and a loop cannot exist.
    pub fn read(msg: &[u8], start: usize) -> Result<(Name, usize), Error> {
        let mut name = Name::empty();
        let mut pos = start;
        let mut limit = start;
        let mut end = None;
        loop {
            let b = *msg.get(pos).ok_or(Error::Truncated)?;
            match b >> 6 {
                0 => {
                    let len = usize::from(b);
                    if len == 0 {
                        name.push_root()?;
                        return Ok((name, end.unwrap_or(pos + 1)));
                    }
                    let label = msg.get(pos + 1..pos + 1 + len).ok_or(Error::Truncated)?;
                    name.push_label(label)?;
                    pos += 1 + len;
                }
                3 => {
                    let lo = *msg.get(pos + 1).ok_or(Error::Truncated)?;
                    let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                    end.get_or_insert(pos + 2);
                    if target >= limit {
                        return Err(Error::BadPointer(target));
                    }
                    limit = target;
                    pos = target;
                }
                _ => return Err(Error::BadLabel(b)),
            }
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_wire() == other.as_wire()
    }
}

impl Eq for Name {}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.as_wire();
        let mut at = 0;
        let mut first = true;
        while let Some(&len) = w.get(at) {
            if len == 0 {
                break;
            }
            if !first {
                f.write_str(".")?;
            }
            first = false;
            for &c in w.get(at + 1..at + 1 + usize::from(len)).unwrap_or(&[]) {
                if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                    write!(f, "{}", c as char)?;
                } else {
                    write!(f, "\\{c:03}")?;
                }
            }
            at += 1 + usize::from(len);
        }
        if first {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// A zero-copy view of a DNS message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, Error> {
    let s = b.get(at..at + 2).ok_or(Error::Truncated)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; header accessors may panic on a short one.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer holds the 12-byte header.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn word(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    /// Message id.
    pub fn id(&self) -> u16 {
        self.word(0)
    }
    /// The flags word.
    pub fn flags(&self) -> u16 {
        self.word(2)
    }
    /// QR: a response.
    pub fn is_response(&self) -> bool {
        self.flags() & FLAG_QR != 0
    }
    /// Opcode (0 = QUERY).
    pub fn opcode(&self) -> u8 {
        ((self.flags() >> 11) & 0xf) as u8
    }
    /// AA: an authoritative answer.
    pub fn authoritative(&self) -> bool {
        self.flags() & FLAG_AA != 0
    }
    /// TC: the message was truncated.
    pub fn truncated(&self) -> bool {
        self.flags() & FLAG_TC != 0
    }
    /// RD: recursion desired.
    pub fn recursion_desired(&self) -> bool {
        self.flags() & FLAG_RD != 0
    }
    /// RA: recursion available.
    pub fn recursion_available(&self) -> bool {
        self.flags() & FLAG_RA != 0
    }
    /// Response code.
    pub fn rcode(&self) -> Rcode {
        Rcode::from_bits((self.flags() & 0xf) as u8)
    }
    /// Number of questions.
    pub fn question_count(&self) -> u16 {
        self.word(4)
    }
    /// Number of answer records.
    pub fn answer_count(&self) -> u16 {
        self.word(6)
    }
    /// Number of authority records.
    pub fn authority_count(&self) -> u16 {
        self.word(8)
    }
    /// Number of additional records.
    pub fn additional_count(&self) -> u16 {
        self.word(10)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_word(&mut self, at: usize, v: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the id.
    pub fn set_id(&mut self, v: u16) {
        self.set_word(0, v);
    }
    /// Sets the flags word.
    pub fn set_flags(&mut self, v: u16) {
        self.set_word(2, v);
    }
    /// Sets the four section counts.
    pub fn set_counts(&mut self, qd: u16, an: u16, ns: u16, ar: u16) {
        self.set_word(4, qd);
        self.set_word(6, an);
        self.set_word(8, ns);
        self.set_word(10, ar);
    }
}

/// A query for one name and type, recursion desired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Message id.
    pub id: u16,
    /// The asked name.
    pub name: Name,
    /// The asked type.
    pub qtype: Type,
}

impl Query {
    /// Reads a query (what a server would see; used to check [`Query::emit`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Query, Error> {
        packet.check_len()?;
        if packet.is_response() {
            return Err(Error::WrongDirection);
        }
        if packet.opcode() != 0 {
            return Err(Error::BadOpcode(packet.opcode()));
        }
        if packet.question_count() != 1 {
            return Err(Error::QuestionCount(packet.question_count()));
        }
        let (name, at) = Name::read(packet.b(), HEADER_LEN)?;
        let qtype = Type::from_code(u16_at(packet.b(), at)?)?;
        if u16_at(packet.b(), at + 2)? != CLASS_IN {
            return Err(Error::QuestionMismatch);
        }
        Ok(Query {
            id: packet.id(),
            name,
            qtype,
        })
    }

    /// Bytes needed to emit.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.name.as_wire().len() + 4
    }

    /// Writes the query at the start of the packet's buffer; returns its length.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<usize, Error> {
        let len = self.buffer_len();
        if packet.buffer.as_ref().len() < len {
            return Err(Error::BufferTooSmall);
        }
        packet.set_id(self.id);
        packet.set_flags(FLAG_RD);
        packet.set_counts(1, 0, 0, 0);
        let w = self.name.as_wire();
        let b = packet.buffer.as_mut();
        b[HEADER_LEN..HEADER_LEN + w.len()].copy_from_slice(w);
        let at = HEADER_LEN + w.len();
        b[at..at + 2].copy_from_slice(&self.qtype.code().to_be_bytes());
        b[at + 2..at + 4].copy_from_slice(&CLASS_IN.to_be_bytes());
        Ok(len)
    }
}

/// One address of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The address.
    pub addr: IpAddr,
    /// Seconds it may be kept: the smallest TTL along the CNAME chain that led to it
    /// (TTLs with the top bit set count as 0, RFC 2181 §8).
    pub ttl: u32,
}

/// What a response says about the asked name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Message id.
    pub id: u16,
    /// Response code; answers are read only for `NoError`.
    pub rcode: Rcode,
    /// TC: the server cut the message (the answers may be incomplete).
    pub truncated: bool,
    /// Addresses for the asked name (directly, or at the end of its CNAME chain), in the
    /// server's order, without duplicates, at most [`DNS_MAX_ADDRS`].
    pub answers: Vec<Answer, DNS_MAX_ADDRS>,
}

/// One resource record's fixed part, located in the message.
struct Record {
    owner: Name,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: core::ops::Range<usize>,
}

impl Record {
    fn read(msg: &[u8], at: usize) -> Result<Record, Error> {
        let (owner, p) = Name::read(msg, at)?;
        let fixed = msg.get(p..p + 10).ok_or(Error::Truncated)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata = p + 10..p + 10 + rdlen;
        if msg.len() < rdata.end {
            return Err(Error::Truncated);
        }
        Ok(Record {
            owner,
            rtype,
            class,
            ttl: if ttl & 0x8000_0000 != 0 { 0 } else { ttl },
            rdata,
        })
    }
}

impl Response {
    /// Reads a response to the question (`name`, `qtype`): checks it is a response to a
    /// QUERY whose one question is exactly that, and (for `NoError`) collects the addresses
    /// of `name`, following CNAMEs within the answer section. Authority and additional
    /// sections are not read (a stub resolver does not trust them).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        name: &Name,
        qtype: Type,
    ) -> Result<Response, Error> {
        packet.check_len()?;
        let msg = packet.b();
        if !packet.is_response() {
            return Err(Error::WrongDirection);
        }
        if packet.opcode() != 0 {
            return Err(Error::BadOpcode(packet.opcode()));
        }
        if packet.question_count() != 1 {
            return Err(Error::QuestionCount(packet.question_count()));
        }
        let (qname, at) = Name::read(msg, HEADER_LEN)?;
        let (qt, qc) = (u16_at(msg, at)?, u16_at(msg, at + 2)?);
        if qname != *name || qt != qtype.code() || qc != CLASS_IN {
            return Err(Error::QuestionMismatch);
        }
        let mut r = Response {
            id: packet.id(),
            rcode: packet.rcode(),
            truncated: packet.truncated(),
            answers: Vec::new(),
        };
        if r.rcode != Rcode::NoError {
            return Ok(r);
        }
        let answers_at = at + 4;
        let mut target = name.clone();
        let mut chain_ttl = u32::MAX;
        // Each pass reads the answer section once (bounded by the message length: a record
        // takes at least 11 bytes) looking for `target`'s addresses or its CNAME.
        for hop in 0..=DNS_MAX_CNAME_CHAIN {
            let mut next: Option<(Name, u32)> = None;
            let mut pos = answers_at;
            for _ in 0..packet.answer_count() {
                let rec = Record::read(msg, pos)?;
                pos = rec.rdata.end;
                if rec.class != CLASS_IN || rec.owner != target {
                    continue;
                }
                if rec.rtype == qtype.code() {
                    let addr = qtype.addr(&msg[rec.rdata.clone()])?;
                    if r.answers.iter().any(|a| a.addr == addr) {
                        continue;
                    }
                    let answer = Answer {
                        addr,
                        ttl: rec.ttl.min(chain_ttl),
                    };
                    // Past the cap further addresses are ignored: a timeserver needs few.
                    let _ = r.answers.push(answer);
                } else if rec.rtype == TYPE_CNAME && next.is_none() {
                    let (cname, end) = Name::read(msg, rec.rdata.start)?;
                    if end > rec.rdata.end {
                        return Err(Error::BadRdata {
                            rtype: TYPE_CNAME,
                            len: rec.rdata.len(),
                        });
                    }
                    next = Some((cname, rec.ttl));
                }
            }
            if !r.answers.is_empty() {
                return Ok(r);
            }
            let Some((cname, ttl)) = next else {
                return Ok(r);
            };
            if hop == DNS_MAX_CNAME_CHAIN {
                break;
            }
            target = cname;
            chain_ttl = chain_ttl.min(ttl);
        }
        Err(Error::CnameChainTooLong)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn name(s: &str) -> Name {
        Name::from_dotted(s).unwrap()
    }

    // Responses of dnsmasq 2.x in the lab (upstream 1, 198.18.1.1), captured from the DUT
    // namespace with a stdlib Python client sending exactly what `Query::emit` sends (ids
    // 0x1001.., RD set). Lab config plus `host-record=ntphost.lab.test,198.19.0.7,fd19::7`,
    // `cname=ntp.lab.test,time.lab.test`, `cname=time.lab.test,ntphost.lab.test`,
    // `local=/lab.test/`, `local-ttl=120`.
    /// ntp.lab.test A: CNAME -> time.lab.test, CNAME -> ntphost.lab.test, A 198.19.0.7.
    pub(crate) const DNSMASQ_CNAME_A: &str = "100185800001000300000000036e7470036c616204746573740000010001c00c0005000100000078000f0474696d65036c6162047465737400c02a00050001000000780012076e7470686f7374036c6162047465737400c04500010001000000780004c6130007";
    /// ntp.lab.test AAAA: the same chain, AAAA fd19::7.
    pub(crate) const DNSMASQ_CNAME_AAAA: &str = "100285800001000300000000036e7470036c6162047465737400001c0001c00c0005000100000078000f0474696d65036c6162047465737400c02a00050001000000780012076e7470686f7374036c6162047465737400c045001c0001000000780010fd190000000000000000000000000007";
    /// NTP.lab.test A (the question's case is echoed).
    const DNSMASQ_UPPER_A: &str = "100585800001000300000000034e5450036c616204746573740000010001c00c0005000100000078000f0474696d65036c6162047465737400c02a00050001000000780012076e7470686f7374036c6162047465737400c04500010001000000780004c6130007";
    /// nonexist.lab.test A: NXDOMAIN.
    pub(crate) const DNSMASQ_NXDOMAIN: &str =
        "100781830001000000000000086e6f6e6578697374036c616204746573740000010001";
    // The plain lab config (no local=, TTL 0):
    /// server.lab.test A 198.19.0.1, TTL 0.
    const DNSMASQ_PLAIN_A: &str = "10018580000100010000000006736572766572036c616204746573740000010001c00c00010001000000000004c6130001";
    /// up1.lab.test AAAA (an address= name with no IPv6 address): REFUSED.
    pub(crate) const DNSMASQ_REFUSED: &str =
        "10068185000100000000000003557031034c6162045465737400001c0001";

    fn parse(hexmsg: &str, q: &str, t: Type) -> Result<Response, Error> {
        let b = hex(hexmsg);
        Response::parse(&Packet::new_checked(&b[..])?, &name(q), t)
    }

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn dnsmasq_cname_chains() {
        let r = parse(DNSMASQ_CNAME_A, "ntp.lab.test", Type::A).unwrap();
        assert_eq!(r.id, 0x1001);
        assert_eq!(r.rcode, Rcode::NoError);
        assert!(!r.truncated);
        assert_eq!(
            &r.answers[..],
            &[Answer {
                addr: v4("198.19.0.7"),
                ttl: 120
            }]
        );
        let r = parse(DNSMASQ_CNAME_AAAA, "ntp.lab.test", Type::Aaaa).unwrap();
        assert_eq!(r.answers[0].addr, v4("fd19::7"));
        // Case-insensitive: asked in lower case, answered with the query's upper case.
        let r = parse(DNSMASQ_UPPER_A, "ntp.LAB.test", Type::A).unwrap();
        assert_eq!(r.answers[0].addr, v4("198.19.0.7"));
        let r = parse(DNSMASQ_PLAIN_A, "server.lab.test", Type::A).unwrap();
        assert_eq!(
            &r.answers[..],
            &[Answer {
                addr: v4("198.19.0.1"),
                ttl: 0
            }]
        );
    }

    #[test]
    fn dnsmasq_errors_and_mismatches() {
        let r = parse(DNSMASQ_NXDOMAIN, "nonexist.lab.test", Type::A).unwrap();
        assert_eq!(r.rcode, Rcode::NxDomain);
        assert!(r.answers.is_empty());
        let r = parse(DNSMASQ_REFUSED, "up1.lab.test", Type::Aaaa).unwrap();
        assert_eq!(r.rcode, Rcode::Refused);
        // Another name or type than asked.
        assert_eq!(
            parse(DNSMASQ_CNAME_A, "time.lab.test", Type::A),
            Err(Error::QuestionMismatch)
        );
        assert_eq!(
            parse(DNSMASQ_CNAME_A, "ntp.lab.test", Type::Aaaa),
            Err(Error::QuestionMismatch)
        );
        // A query is not a response.
        let mut b = [0u8; MAX_QUERY_LEN];
        let q = Query {
            id: 7,
            name: name("ntp.lab.test"),
            qtype: Type::A,
        };
        let n = q.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(
            Response::parse(&Packet::new_unchecked(&b[..n]), &q.name, Type::A),
            Err(Error::WrongDirection)
        );
    }

    #[test]
    fn query_bytes_match_the_captured_query() {
        // What the capture client sent for the first vector.
        let q = Query {
            id: 0x1001,
            name: name("ntp.lab.test"),
            qtype: Type::A,
        };
        let mut b = [0u8; MAX_QUERY_LEN];
        let n = q.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(
            &b[..n],
            &hex("100101000001000000000000036e7470036c616204746573740000010001")[..]
        );
        assert_eq!(Query::parse(&Packet::new_unchecked(&b[..n])), Ok(q));
        let mut small = [0u8; 20];
        assert_eq!(
            Query {
                id: 1,
                name: name("ntp.lab.test"),
                qtype: Type::A
            }
            .emit(&mut Packet::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn dotted_names() {
        assert_eq!(name("Pool.NTP.org.").to_string(), "pool.ntp.org");
        assert_eq!(name("a").as_wire(), &[1, b'a', 0]);
        assert_eq!(Name::from_dotted(""), Err(Error::EmptyName));
        assert_eq!(Name::from_dotted("."), Err(Error::EmptyName));
        assert_eq!(Name::from_dotted("a..b"), Err(Error::BadLabelLength(0)));
        assert_eq!(
            Name::from_dotted(&"x".repeat(64)),
            Err(Error::BadLabelLength(64))
        );
        // 4 labels of 63 = 256 bytes in wire form with the root: one too many.
        let l = "y".repeat(63);
        assert_eq!(
            Name::from_dotted(&[&l[..], &l, &l, &l].join(".")),
            Err(Error::NameTooLong)
        );
        let ok = [&l[..], &l, &l, &"y".repeat(61)].join(".");
        assert_eq!(name(&ok).as_wire().len(), 255);
    }

    /// A message with the header, then `body` at offset 12.
    fn msg(body: &[u8]) -> std::vec::Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        // The name at 12 points at itself.
        assert_eq!(
            Name::read(&msg(&[0xc0, 12]), 12).map(|_| ()),
            Err(Error::BadPointer(12))
        );
        // Forward.
        assert_eq!(
            Name::read(&msg(&[0xc0, 14, 1, b'a', 0]), 12).map(|_| ()),
            Err(Error::BadPointer(14))
        );
        // Two names pointing at each other: 12 -> "a" + ptr 16, 16 -> ptr 12.
        let m = msg(&[1, b'a', 0xc0, 16, 0xc0, 12]);
        assert_eq!(Name::read(&m, 16).map(|_| ()), Err(Error::BadPointer(16)));
        assert_eq!(Name::read(&m, 12).map(|_| ()), Err(Error::BadPointer(16)));
        // Backwards is fine, and the end is after the first pointer.
        let m = msg(&[1, b'a', 0, 1, b'b', 0xc0, 12]);
        let (n, end) = Name::read(&m, 15).unwrap();
        assert_eq!(n.to_string(), "b.a");
        assert_eq!(end, 19);
        // Reserved label types.
        assert_eq!(
            Name::read(&msg(&[0x40]), 12).map(|_| ()),
            Err(Error::BadLabel(0x40))
        );
    }

    /// Builds a response to (`q`, `qtype`) with `records` (owner, type, ttl, rdata) in the
    /// answer section, owners and CNAME targets written out (or as a pointer to the question
    /// when they equal it, as servers do).
    fn build(
        q: &str,
        qtype: Type,
        rcode: u8,
        records: &[(&str, u16, u32, &[u8])],
    ) -> std::vec::Vec<u8> {
        let qn = name(q);
        let mut m = vec![
            0xab,
            0xcd,
            0x81,
            0x80 | rcode,
            0,
            1,
            0,
            records.len() as u8,
            0,
            0,
            0,
            0,
        ];
        m.extend_from_slice(qn.as_wire());
        m.extend_from_slice(&qtype.code().to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        let put_name = |m: &mut std::vec::Vec<u8>, s: &str| {
            if name(s) == qn {
                m.extend_from_slice(&[0xc0, 12]);
            } else {
                m.extend_from_slice(name(s).as_wire());
            }
        };
        for (owner, rtype, ttl, rdata) in records {
            put_name(&mut m, owner);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&ttl.to_be_bytes());
            if *rtype == TYPE_CNAME {
                let target = core::str::from_utf8(rdata).unwrap();
                let mut rd = std::vec::Vec::new();
                put_name(&mut rd, target);
                m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                m.extend_from_slice(&rd);
            } else {
                m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                m.extend_from_slice(rdata);
            }
        }
        m
    }

    fn addrs(m: &[u8], q: &str, t: Type) -> Result<std::vec::Vec<(IpAddr, u32)>, Error> {
        let r = Response::parse(&Packet::new_checked(m)?, &name(q), t)?;
        Ok(r.answers.iter().map(|a| (a.addr, a.ttl)).collect())
    }

    #[test]
    fn chain_rules() {
        // CNAME records after the addresses they lead to, other owners' records ignored.
        let m = build(
            "a.test",
            Type::A,
            0,
            &[
                ("c.test", 1, 50, &[10, 0, 0, 3]),
                ("other.test", 1, 50, &[10, 9, 9, 9]),
                ("b.test", TYPE_CNAME, 30, b"c.test"),
                ("a.test", TYPE_CNAME, 100, b"b.test"),
                ("c.test", 1, 70, &[10, 0, 0, 4]),
                ("c.test", 1, 70, &[10, 0, 0, 4]),
            ],
        );
        assert_eq!(
            addrs(&m, "a.test", Type::A).unwrap(),
            vec![(v4("10.0.0.3"), 30), (v4("10.0.0.4"), 30)]
        );
        // A loop a -> b -> a.
        let m = build(
            "a.test",
            Type::A,
            0,
            &[
                ("a.test", TYPE_CNAME, 1, b"b.test"),
                ("b.test", TYPE_CNAME, 1, b"a.test"),
            ],
        );
        assert_eq!(addrs(&m, "a.test", Type::A), Err(Error::CnameChainTooLong));
        // The longest chain allowed, and one more.
        let hops: std::vec::Vec<String> = (0..=DNS_MAX_CNAME_CHAIN + 1)
            .map(|i| format!("h{i}.test"))
            .collect();
        let mut recs: std::vec::Vec<(&str, u16, u32, &[u8])> = hops
            .windows(2)
            .take(DNS_MAX_CNAME_CHAIN)
            .map(|w| (w[0].as_str(), TYPE_CNAME, 60, w[1].as_bytes()))
            .collect();
        recs.push((hops[DNS_MAX_CNAME_CHAIN].as_str(), 1, 60, &[10, 1, 1, 1]));
        assert_eq!(
            addrs(&build("h0.test", Type::A, 0, &recs), "h0.test", Type::A)
                .unwrap()
                .len(),
            1
        );
        recs.pop();
        recs.push((
            hops[DNS_MAX_CNAME_CHAIN].as_str(),
            TYPE_CNAME,
            60,
            hops[DNS_MAX_CNAME_CHAIN + 1].as_bytes(),
        ));
        assert_eq!(
            addrs(&build("h0.test", Type::A, 0, &recs), "h0.test", Type::A),
            Err(Error::CnameChainTooLong)
        );
        // Bad address size, TTL with the top bit, a CNAME only (no data), the address cap.
        let m = build("a.test", Type::A, 0, &[("a.test", 1, 5, &[1, 2, 3])]);
        assert_eq!(
            addrs(&m, "a.test", Type::A),
            Err(Error::BadRdata { rtype: 1, len: 3 })
        );
        let m = build(
            "a.test",
            Type::A,
            0,
            &[("a.test", 1, 0x8000_0001, &[1, 2, 3, 4])],
        );
        assert_eq!(
            addrs(&m, "a.test", Type::A).unwrap(),
            vec![(v4("1.2.3.4"), 0)]
        );
        let m = build(
            "a.test",
            Type::A,
            0,
            &[("a.test", TYPE_CNAME, 5, b"b.test")],
        );
        assert_eq!(addrs(&m, "a.test", Type::A).unwrap(), vec![]);
        let many: std::vec::Vec<[u8; 4]> = (0..DNS_MAX_ADDRS as u8 + 3)
            .map(|i| [10, 0, 0, i])
            .collect();
        let recs: std::vec::Vec<(&str, u16, u32, &[u8])> =
            many.iter().map(|a| ("a.test", 1, 9, &a[..])).collect();
        assert_eq!(
            addrs(&build("a.test", Type::A, 0, &recs), "a.test", Type::A)
                .unwrap()
                .len(),
            DNS_MAX_ADDRS
        );
        // Records cut short.
        let m = build("a.test", Type::A, 0, &[("a.test", 1, 5, &[1, 2, 3, 4])]);
        for cut in 1..15 {
            assert_eq!(
                addrs(&m[..m.len() - cut], "a.test", Type::A),
                Err(Error::Truncated),
                "cut {cut}"
            );
        }
        // A CNAME whose target runs past its data (rdlength 2, name of 9 bytes).
        let mut m = build(
            "a.test",
            Type::A,
            0,
            &[("a.test", TYPE_CNAME, 5, b"bb.test")],
        );
        let rdlen_at = m.len() - name("bb.test").as_wire().len() - 2;
        m[rdlen_at..rdlen_at + 2].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(
            addrs(&m, "a.test", Type::A),
            Err(Error::BadRdata {
                rtype: TYPE_CNAME,
                len: 2
            })
        );
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9-]{1,20}"
    }

    fn dotted() -> impl Strategy<Value = String> {
        proptest::collection::vec(label(), 1..5).prop_map(|v| v.join("."))
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let q = name("pool.ntp.org");
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = Response::parse(&p, &q, Type::A);
                let _ = Query::parse(&p);
            }
            for at in 0..data.len().min(64) {
                let _ = Name::read(&data, at);
            }
        }

        /// Captured responses with bytes changed or cut anywhere never panic.
        #[test]
        fn mutated_captures_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
            cut in any::<u16>(),
        ) {
            let v = [DNSMASQ_CNAME_A, DNSMASQ_CNAME_AAAA, DNSMASQ_NXDOMAIN, DNSMASQ_PLAIN_A][which];
            let mut m = hex(v);
            for (at, b) in edits {
                let i = usize::from(at) % m.len();
                m[i] = b;
            }
            m.truncate(usize::from(cut) % (m.len() + 1));
            if let Ok(p) = Packet::new_checked(&m[..]) {
                let _ = Response::parse(&p, &name("ntp.lab.test"), Type::A);
                let _ = Response::parse(&p, &name("ntp.lab.test"), Type::Aaaa);
            }
        }

        /// Emitted queries parse back.
        #[test]
        fn query_round_trip(id in any::<u16>(), n in dotted(), v6 in any::<bool>()) {
            let q = Query { id, name: name(&n), qtype: if v6 { Type::Aaaa } else { Type::A } };
            let mut b = [0u8; MAX_QUERY_LEN];
            let len = q.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
            prop_assert_eq!(len, q.buffer_len());
            prop_assert_eq!(Query::parse(&Packet::new_unchecked(&b[..len])).unwrap(), q);
        }

        /// A generated chain of CNAMEs ending in addresses resolves to exactly those
        /// addresses with the chain's smallest TTL, whatever the record order.
        #[test]
        fn generated_chains(
            hops in proptest::collection::vec(dotted(), 0..DNS_MAX_CNAME_CHAIN),
            ttls in proptest::collection::vec(any::<u32>(), DNS_MAX_CNAME_CHAIN + 1),
            addr_list in proptest::collection::btree_set(any::<[u8; 4]>(), 1..DNS_MAX_ADDRS),
            rotate in any::<usize>(),
        ) {
            let q = "start.test";
            let mut chain = vec![q.to_string()];
            chain.extend(hops.iter().map(|h| format!("{h}.chain.test")));
            prop_assume!(chain.iter().collect::<std::collections::BTreeSet<_>>().len() == chain.len());
            let ttl = |i: usize| ttls[i] & 0x7fff_ffff;
            let mut recs: std::vec::Vec<(&str, u16, u32, &[u8])> = chain
                .windows(2)
                .enumerate()
                .map(|(i, w)| (w[0].as_str(), TYPE_CNAME, ttl(i), w[1].as_bytes()))
                .collect();
            let last = chain.last().unwrap().as_str();
            let addr_list: std::vec::Vec<[u8; 4]> = addr_list.into_iter().collect();
            for a in &addr_list {
                recs.push((last, 1, ttl(DNS_MAX_CNAME_CHAIN), &a[..]));
            }
            let len = recs.len();
            recs.rotate_left(rotate % len);
            let got = addrs(&build(q, Type::A, 0, &recs), q, Type::A).unwrap();
            let min_ttl = (0..chain.len() - 1).map(ttl).chain([ttl(DNS_MAX_CNAME_CHAIN)]).min().unwrap();
            let mut want: std::vec::Vec<(IpAddr, u32)> = addr_list.iter().map(|a| (IpAddr::from(*a), min_ttl)).collect();
            let mut got_sorted = got.clone();
            got_sorted.sort();
            want.sort();
            prop_assert_eq!(got_sorted, want);
        }
    }
}
