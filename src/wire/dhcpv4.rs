//! DHCPv4 (RFC 2131/2132) message view and representation.
//!
//! Own codec rather than smoltcp's `wire::dhcpv4` (its Repr has no typed fields for options
//! 15/42 and it pulls its whole wire stack) or dhcproto (pulls ICU tables through its deps).

use crate::caps::DHCP_MAX_OPTION_PARTS;
use core::fmt;
use std::net::Ipv4Addr;

/// Errors from parsing or emitting a DHCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed BOOTP header plus magic cookie.
    Truncated,
    /// The magic cookie is not 99.130.83.99.
    BadMagic,
    /// `op` is not BOOTREQUEST/BOOTREPLY or does not match the message type's direction.
    BadOp(u8),
    /// `htype` is not Ethernet.
    BadHardwareType(u8),
    /// `hlen` is not 6.
    BadHardwareLength(u8),
    /// An option's length byte runs past the end of its area.
    OptionTruncated(u8),
    /// An option has a length invalid for its kind.
    BadOptionLength { kind: u8, len: usize },
    /// No option 53.
    MissingMessageType,
    /// Option 53 has an unknown value.
    BadMessageType(u8),
    /// An option comes in more instances than [`DHCP_MAX_OPTION_PARTS`] (RFC 3396 splits
    /// need two or three; more is a broken or hostile sender).
    TooManyParts(u8),
    /// Emit: the buffer is shorter than `buffer_len()`.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "DHCP message truncated"),
            Error::BadMagic => write!(f, "bad DHCP magic cookie"),
            Error::BadOp(op) => write!(f, "bad BOOTP op {op}"),
            Error::BadHardwareType(t) => write!(f, "hardware type {t} is not Ethernet"),
            Error::BadHardwareLength(l) => write!(f, "hardware address length {l} is not 6"),
            Error::OptionTruncated(k) => write!(f, "DHCP option {k} runs past the end"),
            Error::BadOptionLength { kind, len } => {
                write!(f, "DHCP option {kind} has invalid length {len}")
            }
            Error::MissingMessageType => write!(f, "DHCP message type (option 53) missing"),
            Error::BadMessageType(t) => write!(f, "unknown DHCP message type {t}"),
            Error::TooManyParts(k) => write!(
                f,
                "DHCP option {k} split into more than {DHCP_MAX_OPTION_PARTS} instances"
            ),
            Error::BufferTooSmall => write!(f, "buffer too small for DHCP message"),
        }
    }
}

impl std::error::Error for Error {}

/// BOOTP `op` values.
pub const OP_BOOTREQUEST: u8 = 1;
/// BOOTP `op` value of server replies.
pub const OP_BOOTREPLY: u8 = 2;
/// The magic cookie that starts the options area.
pub const MAGIC_COOKIE: u32 = 0x6382_5363;
/// UDP port of DHCP servers.
pub const SERVER_PORT: u16 = 67;
/// UDP port of DHCP clients.
pub const CLIENT_PORT: u16 = 68;
/// Emitted messages are padded to this size: some relays drop shorter BOOTP packets.
pub const MIN_MESSAGE_LEN: usize = 300;

/// Option codes this codec understands.
pub mod opt {
    /// Padding.
    pub const PAD: u8 = 0;
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers.
    pub const ROUTER: u8 = 3;
    /// DNS servers.
    pub const DNS: u8 = 6;
    /// Host name.
    pub const HOSTNAME: u8 = 12;
    /// Domain name.
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU.
    pub const MTU: u8 = 26;
    /// NTP servers.
    pub const NTP: u8 = 42;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time.
    pub const LEASE_TIME: u8 = 51;
    /// Option overload.
    pub const OVERLOAD: u8 = 52;
    /// Message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Maximum message size.
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) time.
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time.
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// End of options.
    pub const END: u8 = 255;
}

mod field {
    use core::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: Range<usize> = 236..240;
    pub const OPTIONS: usize = 240;
}

/// Length of the fixed header including the magic cookie.
pub const HEADER_LEN: usize = field::OPTIONS;

const FLAG_BROADCAST: u16 = 0x8000;

/// DHCP message type (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// DHCPDISCOVER.
    Discover,
    /// DHCPOFFER.
    Offer,
    /// DHCPREQUEST.
    Request,
    /// DHCPDECLINE.
    Decline,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
    /// DHCPRELEASE.
    Release,
    /// DHCPINFORM.
    Inform,
}

impl MessageType {
    fn from_u8(v: u8) -> Result<Self, Error> {
        Ok(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return Err(Error::BadMessageType(v)),
        })
    }

    fn to_u8(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }

    /// The BOOTP `op` a message of this type must carry.
    pub fn op(self) -> u8 {
        match self {
            MessageType::Offer | MessageType::Ack | MessageType::Nak => OP_BOOTREPLY,
            _ => OP_BOOTREQUEST,
        }
    }
}

/// A zero-copy view of a DHCP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// One option as found in the message: kind and value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    /// Option code.
    pub kind: u8,
    /// Option value.
    pub data: &'a [u8],
}

/// Iterator over the options of one area (options field, `file` or `sname`).
///
/// Skips pads, stops at END or the end of the area; yields one error and stops if an option
/// runs past the end.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
}

impl<'a> OptionIter<'a> {
    /// Iterates the options in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        OptionIter { data }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<DhcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&kind, rest) = self.data.split_first()?;
            match kind {
                opt::PAD => self.data = rest,
                opt::END => {
                    self.data = &[];
                    return None;
                }
                _ => {
                    let Some((&len, rest)) = rest.split_first() else {
                        self.data = &[];
                        return Some(Err(Error::OptionTruncated(kind)));
                    };
                    let len = usize::from(len);
                    if rest.len() < len {
                        self.data = &[];
                        return Some(Err(Error::OptionTruncated(kind)));
                    }
                    let (data, rest) = rest.split_at(len);
                    self.data = rest;
                    return Some(Ok(DhcpOption { kind, data }));
                }
            }
        }
    }
}

fn addr_at(b: &[u8], r: core::ops::Range<usize>) -> Ipv4Addr {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    Ipv4Addr::from(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the fixed header and magic cookie.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer is long enough for every fixed-field accessor.
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

    /// BOOTP op.
    pub fn op(&self) -> u8 {
        self.b()[field::OP]
    }
    /// Hardware type.
    pub fn htype(&self) -> u8 {
        self.b()[field::HTYPE]
    }
    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.b()[field::HLEN]
    }
    /// Relay hops.
    pub fn hops(&self) -> u8 {
        self.b()[field::HOPS]
    }
    /// Transaction id.
    pub fn xid(&self) -> u32 {
        let b = &self.b()[field::XID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Seconds since the client began.
    pub fn secs(&self) -> u16 {
        let b = &self.b()[field::SECS];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Flags (bit 15 = broadcast).
    pub fn flags(&self) -> u16 {
        let b = &self.b()[field::FLAGS];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Client address (ciaddr).
    pub fn ciaddr(&self) -> Ipv4Addr {
        addr_at(self.b(), field::CIADDR)
    }
    /// Offered address (yiaddr).
    pub fn yiaddr(&self) -> Ipv4Addr {
        addr_at(self.b(), field::YIADDR)
    }
    /// Next server (siaddr).
    pub fn siaddr(&self) -> Ipv4Addr {
        addr_at(self.b(), field::SIADDR)
    }
    /// Relay agent (giaddr).
    pub fn giaddr(&self) -> Ipv4Addr {
        addr_at(self.b(), field::GIADDR)
    }
    /// First six bytes of chaddr (Ethernet MAC).
    pub fn chaddr(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.b()[field::CHADDR][..6]);
        m
    }
    /// The magic cookie.
    pub fn magic(&self) -> u32 {
        let b = &self.b()[field::MAGIC];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Options in the options field.
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter::new(&self.b()[field::OPTIONS..])
    }
    /// The `file` field, which may hold options when overloaded.
    pub fn file(&self) -> &[u8] {
        &self.b()[field::FILE]
    }
    /// The `sname` field, which may hold options when overloaded.
    pub fn sname(&self) -> &[u8] {
        &self.b()[field::SNAME]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets the BOOTP op.
    pub fn set_op(&mut self, v: u8) {
        self.bm()[field::OP] = v;
    }
    /// Sets the hardware type.
    pub fn set_htype(&mut self, v: u8) {
        self.bm()[field::HTYPE] = v;
    }
    /// Sets the hardware address length.
    pub fn set_hlen(&mut self, v: u8) {
        self.bm()[field::HLEN] = v;
    }
    /// Sets relay hops.
    pub fn set_hops(&mut self, v: u8) {
        self.bm()[field::HOPS] = v;
    }
    /// Sets the transaction id.
    pub fn set_xid(&mut self, v: u32) {
        self.bm()[field::XID].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets seconds elapsed.
    pub fn set_secs(&mut self, v: u16) {
        self.bm()[field::SECS].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets flags.
    pub fn set_flags(&mut self, v: u16) {
        self.bm()[field::FLAGS].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets ciaddr.
    pub fn set_ciaddr(&mut self, a: Ipv4Addr) {
        self.bm()[field::CIADDR].copy_from_slice(&a.octets());
    }
    /// Sets yiaddr.
    pub fn set_yiaddr(&mut self, a: Ipv4Addr) {
        self.bm()[field::YIADDR].copy_from_slice(&a.octets());
    }
    /// Sets siaddr.
    pub fn set_siaddr(&mut self, a: Ipv4Addr) {
        self.bm()[field::SIADDR].copy_from_slice(&a.octets());
    }
    /// Sets giaddr.
    pub fn set_giaddr(&mut self, a: Ipv4Addr) {
        self.bm()[field::GIADDR].copy_from_slice(&a.octets());
    }
    /// Sets chaddr to a MAC, zero-filling the rest of the 16-byte field.
    pub fn set_chaddr(&mut self, mac: [u8; 6]) {
        let f = &mut self.bm()[field::CHADDR];
        f.fill(0);
        f[..6].copy_from_slice(&mac);
    }
    /// Zeroes `sname` and `file`.
    pub fn clear_sname_file(&mut self) {
        self.bm()[field::SNAME].fill(0);
        self.bm()[field::FILE].fill(0);
    }
    /// Sets the magic cookie.
    pub fn set_magic(&mut self, v: u32) {
        self.bm()[field::MAGIC].copy_from_slice(&v.to_be_bytes());
    }
    /// The options area, for emitting.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.bm()[field::OPTIONS..]
    }
}

/// The value of one option: every instance of it in the message, concatenated in order
/// (RFC 3396: options field, then `file`, then `sname`).
///
/// Zero-copy: it keeps the instances as slices of the message, at most
/// [`DHCP_MAX_OPTION_PARTS`] of them. Two values are equal when their bytes are, however
/// they were split.
#[derive(Clone, Copy)]
pub struct OptionBytes<'a> {
    parts: [&'a [u8]; DHCP_MAX_OPTION_PARTS],
    count: usize,
    len: usize,
}

impl<'a> OptionBytes<'a> {
    /// A value held in one slice (what a sender builds).
    pub fn new(data: &'a [u8]) -> Self {
        let mut parts: [&'a [u8]; DHCP_MAX_OPTION_PARTS] = [&[]; DHCP_MAX_OPTION_PARTS];
        parts[0] = data;
        OptionBytes {
            parts,
            count: 1,
            len: data.len(),
        }
    }

    fn push(&mut self, kind: u8, part: &'a [u8]) -> Result<(), Error> {
        let slot = self
            .parts
            .get_mut(self.count)
            .ok_or(Error::TooManyParts(kind))?;
        *slot = part;
        self.count += 1;
        self.len += part.len();
        Ok(())
    }

    /// Total length of the value in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when every instance was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The instances as they were found.
    pub fn parts(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let parts = self.parts;
        (0..self.count).map(move |i| parts[i])
    }

    /// The value's bytes, across instances.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        self.parts().flat_map(|p| p.iter().copied())
    }

    /// Copies the value into `buf`; None when it does not fit.
    pub fn copy_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let out = buf.get_mut(..self.len)?;
        let mut at = 0;
        for p in self.parts() {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        Some(out)
    }
}

impl<'a> From<&'a [u8]> for OptionBytes<'a> {
    fn from(data: &'a [u8]) -> Self {
        OptionBytes::new(data)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for OptionBytes<'a> {
    fn from(data: &'a [u8; N]) -> Self {
        OptionBytes::new(data)
    }
}

impl PartialEq for OptionBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes().eq(other.bytes())
    }
}

impl Eq for OptionBytes<'_> {}

impl fmt::Debug for OptionBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OptionBytes(\"")?;
        for b in self.bytes() {
            write!(f, "{}", core::ascii::escape_default(b))?;
        }
        write!(f, "\")")
    }
}

/// A validated list of IPv4 addresses in an option (non-empty, length a multiple of 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrList<'a>(OptionBytes<'a>);

impl<'a> AddrList<'a> {
    /// Validates an option value held in one slice as an address list.
    pub fn new(kind: u8, data: &'a [u8]) -> Result<Self, Error> {
        AddrList::from_bytes(kind, OptionBytes::new(data))
    }

    /// Validates an option value (possibly split over instances) as an address list.
    pub fn from_bytes(kind: u8, value: OptionBytes<'a>) -> Result<Self, Error> {
        if value.is_empty() || !value.len().is_multiple_of(4) {
            return Err(Error::BadOptionLength {
                kind,
                len: value.len(),
            });
        }
        Ok(AddrList(value))
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + 'a {
        let mut b = self.0.bytes();
        core::iter::from_fn(move || Some(Ipv4Addr::new(b.next()?, b.next()?, b.next()?, b.next()?)))
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Always false: an empty list does not validate.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw option value.
    pub fn bytes(&self) -> OptionBytes<'a> {
        self.0
    }
}

/// A high-level representation of a DHCP message between client and server.
///
/// Fields not listed (hops, sname/file contents) are not kept; unknown options are skipped.
/// An option sent in several instances is one value here (RFC 3396); a value longer than
/// 255 bytes is emitted in several instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Message type (option 53); also fixes `op`.
    pub message_type: MessageType,
    /// Transaction id.
    pub transaction_id: u32,
    /// Seconds since the client began acquiring.
    pub secs: u16,
    /// Broadcast flag.
    pub broadcast: bool,
    /// Client MAC (chaddr).
    pub client_hardware_address: [u8; 6],
    /// ciaddr.
    pub client_ip: Ipv4Addr,
    /// yiaddr.
    pub your_ip: Ipv4Addr,
    /// siaddr.
    pub server_ip: Ipv4Addr,
    /// giaddr.
    pub relay_agent_ip: Ipv4Addr,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3, in the server's order of preference.
    pub routers: Option<AddrList<'a>>,
    /// Option 6.
    pub dns_servers: Option<AddrList<'a>>,
    /// Option 12 (raw bytes; the client validates the text).
    pub hostname: Option<OptionBytes<'a>>,
    /// Option 15 (raw bytes; the client validates the text).
    pub domain_name: Option<OptionBytes<'a>>,
    /// Option 26.
    pub mtu: Option<u16>,
    /// Option 42.
    pub ntp_servers: Option<AddrList<'a>>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_duration: Option<u32>,
    /// Option 54.
    pub server_identifier: Option<Ipv4Addr>,
    /// Option 55.
    pub parameter_request_list: Option<OptionBytes<'a>>,
    /// Option 57.
    pub max_size: Option<u16>,
    /// Option 58, seconds.
    pub renew_duration: Option<u32>,
    /// Option 59, seconds.
    pub rebind_duration: Option<u32>,
    /// Option 61.
    pub client_identifier: Option<OptionBytes<'a>>,
}

/// Every instance of option `kind` in `areas`, concatenated; None when there is none.
fn gather<'a>(areas: &[&'a [u8]], kind: u8) -> Result<Option<OptionBytes<'a>>, Error> {
    let mut out: Option<OptionBytes<'a>> = None;
    for area in areas {
        for o in OptionIter::new(area) {
            let o = o?;
            if o.kind != kind {
                continue;
            }
            match out.as_mut() {
                None => out = Some(OptionBytes::new(o.data)),
                Some(v) => v.push(kind, o.data)?,
            }
        }
    }
    Ok(out)
}

fn fixed<const N: usize>(kind: u8, v: Option<OptionBytes<'_>>) -> Result<Option<[u8; N]>, Error> {
    let Some(v) = v else { return Ok(None) };
    let mut out = [0u8; N];
    if v.len() != N {
        return Err(Error::BadOptionLength { kind, len: v.len() });
    }
    v.copy_into(&mut out);
    Ok(Some(out))
}

fn non_empty(kind: u8, v: Option<OptionBytes<'_>>) -> Result<Option<OptionBytes<'_>>, Error> {
    match v {
        Some(v) if v.is_empty() => Err(Error::BadOptionLength { kind, len: 0 }),
        v => Ok(v),
    }
}

/// A 16-bit option with a lower bound (`BadOptionLength` below it).
fn u16_at_least(kind: u8, v: Option<OptionBytes<'_>>, min: u16) -> Result<Option<u16>, Error> {
    match fixed::<2>(kind, v)?.map(u16::from_be_bytes) {
        Some(x) if x < min => Err(Error::BadOptionLength { kind, len: 2 }),
        x => Ok(x),
    }
}

impl<'a> Repr<'a> {
    /// A message with every option absent and every address zero.
    pub fn new(message_type: MessageType, transaction_id: u32, mac: [u8; 6]) -> Self {
        Repr {
            message_type,
            transaction_id,
            secs: 0,
            broadcast: false,
            client_hardware_address: mac,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            subnet_mask: None,
            routers: None,
            dns_servers: None,
            hostname: None,
            domain_name: None,
            mtu: None,
            ntp_servers: None,
            requested_ip: None,
            lease_duration: None,
            server_identifier: None,
            parameter_request_list: None,
            max_size: None,
            renew_duration: None,
            rebind_duration: None,
            client_identifier: None,
        }
    }

    /// The first router (option 3), if any.
    pub fn router(&self) -> Option<Ipv4Addr> {
        self.routers.and_then(|l| l.iter().next())
    }

    /// Parses and validates a message.
    ///
    /// Options overloaded into `file`/`sname` (option 52 in the options field) are read once
    /// each, in the RFC 2131 order; option 52 inside those fields is ignored, so no loops.
    /// Every instance of an option is part of its value (RFC 3396), wherever it is.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>, Error> {
        let buf: &'a [u8] = packet.buffer.as_ref();
        let packet = Packet::new_checked(buf)?;
        if packet.magic() != MAGIC_COOKIE {
            return Err(Error::BadMagic);
        }
        if packet.htype() != 1 {
            return Err(Error::BadHardwareType(packet.htype()));
        }
        if packet.hlen() != 6 {
            return Err(Error::BadHardwareLength(packet.hlen()));
        }
        let mut repr = Repr::new(MessageType::Discover, packet.xid(), packet.chaddr());
        repr.secs = packet.secs();
        repr.broadcast = packet.flags() & FLAG_BROADCAST != 0;
        repr.client_ip = packet.ciaddr();
        repr.your_ip = packet.yiaddr();
        repr.server_ip = packet.siaddr();
        repr.relay_agent_ip = packet.giaddr();

        let options: &'a [u8] = &buf[field::OPTIONS..];
        let overload = match fixed::<1>(opt::OVERLOAD, gather(&[options], opt::OVERLOAD)?)? {
            None => 0,
            Some([v]) if (1..=3).contains(&v) => v,
            Some(_) => {
                return Err(Error::BadOptionLength {
                    kind: opt::OVERLOAD,
                    len: 1,
                })
            }
        };
        // RFC 2131 §4.1: file first, then sname.
        let mut areas: [&'a [u8]; 3] = [options, &[], &[]];
        if overload & 1 != 0 {
            areas[1] = &buf[field::FILE];
        }
        if overload & 2 != 0 {
            areas[2] = &buf[field::SNAME];
        }
        // Every area must be well formed, whatever it holds.
        for area in areas {
            for o in OptionIter::new(area) {
                o?;
            }
        }
        let get = |kind| gather(&areas, kind);
        let addr = |kind| -> Result<Option<Ipv4Addr>, Error> {
            Ok(fixed::<4>(kind, get(kind)?)?.map(Ipv4Addr::from))
        };
        let secs = |kind| -> Result<Option<u32>, Error> {
            Ok(fixed::<4>(kind, get(kind)?)?.map(u32::from_be_bytes))
        };
        let list = |kind| -> Result<Option<AddrList<'a>>, Error> {
            get(kind)?
                .map(|v| AddrList::from_bytes(kind, v))
                .transpose()
        };
        let [mt] = fixed::<1>(opt::MESSAGE_TYPE, get(opt::MESSAGE_TYPE)?)?
            .ok_or(Error::MissingMessageType)?;
        repr.message_type = MessageType::from_u8(mt)?;
        repr.subnet_mask = addr(opt::SUBNET_MASK)?;
        repr.routers = list(opt::ROUTER)?;
        repr.dns_servers = list(opt::DNS)?;
        repr.hostname = non_empty(opt::HOSTNAME, get(opt::HOSTNAME)?)?;
        repr.domain_name = non_empty(opt::DOMAIN_NAME, get(opt::DOMAIN_NAME)?)?;
        // RFC 2132 §5.1: the minimum legal MTU is 68.
        repr.mtu = u16_at_least(opt::MTU, get(opt::MTU)?, 68)?;
        repr.ntp_servers = list(opt::NTP)?;
        repr.requested_ip = addr(opt::REQUESTED_IP)?;
        repr.lease_duration = secs(opt::LEASE_TIME)?;
        repr.server_identifier = addr(opt::SERVER_ID)?;
        repr.parameter_request_list = non_empty(
            opt::PARAMETER_REQUEST_LIST,
            get(opt::PARAMETER_REQUEST_LIST)?,
        )?;
        // RFC 2132 §9.10: minimum legal value is 576.
        repr.max_size = u16_at_least(opt::MAX_MESSAGE_SIZE, get(opt::MAX_MESSAGE_SIZE)?, 576)?;
        repr.renew_duration = secs(opt::RENEWAL_TIME)?;
        repr.rebind_duration = secs(opt::REBINDING_TIME)?;
        repr.client_identifier = match get(opt::CLIENT_ID)? {
            // RFC 2132 §9.14: type byte plus at least one byte.
            Some(v) if v.len() < 2 => {
                return Err(Error::BadOptionLength {
                    kind: opt::CLIENT_ID,
                    len: v.len(),
                })
            }
            v => v,
        };
        if packet.op() != repr.message_type.op() {
            return Err(Error::BadOp(packet.op()));
        }
        Ok(repr)
    }

    fn options_len(&self) -> usize {
        let addr = |a: &Option<Ipv4Addr>| a.map_or(0, |_| 6);
        let u32o = |v: &Option<u32>| v.map_or(0, |_| 6);
        let u16o = |v: &Option<u16>| v.map_or(0, |_| 4);
        let long = |v: Option<OptionBytes<'_>>| v.map_or(0, |d| long_option_len(d.len()));
        let list = |v: &Option<AddrList<'_>>| long(v.map(|l| l.bytes()));
        3 + addr(&self.subnet_mask)
            + list(&self.routers)
            + list(&self.dns_servers)
            + long(self.hostname)
            + long(self.domain_name)
            + u16o(&self.mtu)
            + list(&self.ntp_servers)
            + addr(&self.requested_ip)
            + u32o(&self.lease_duration)
            + addr(&self.server_identifier)
            + long(self.parameter_request_list)
            + u16o(&self.max_size)
            + u32o(&self.renew_duration)
            + u32o(&self.rebind_duration)
            + long(self.client_identifier)
            + 1
    }

    /// Bytes needed to emit this message (padded to [`MIN_MESSAGE_LEN`]).
    pub fn buffer_len(&self) -> usize {
        (HEADER_LEN + self.options_len()).max(MIN_MESSAGE_LEN)
    }

    /// Writes the message into `packet`, whose buffer must be at least `buffer_len()` long;
    /// bytes after the END option up to `buffer_len()` are zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
    ) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf: &mut [u8] = packet.buffer.as_mut();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        let mut p = Packet::new_unchecked(&mut buf[..len]);
        p.set_op(self.message_type.op());
        p.set_htype(1);
        p.set_hlen(6);
        p.set_hops(0);
        p.set_xid(self.transaction_id);
        p.set_secs(self.secs);
        p.set_flags(if self.broadcast { FLAG_BROADCAST } else { 0 });
        p.set_ciaddr(self.client_ip);
        p.set_yiaddr(self.your_ip);
        p.set_siaddr(self.server_ip);
        p.set_giaddr(self.relay_agent_ip);
        p.set_chaddr(self.client_hardware_address);
        p.clear_sname_file();
        p.set_magic(MAGIC_COOKIE);
        let mut w = OptionWriter {
            buf: p.options_mut(),
            pos: 0,
        };
        w.put(opt::MESSAGE_TYPE, &[self.message_type.to_u8()])?;
        let addr = |w: &mut OptionWriter<'_>, k, a: Option<Ipv4Addr>| match a {
            Some(a) => w.put(k, &a.octets()),
            None => Ok(()),
        };
        let u32o = |w: &mut OptionWriter<'_>, k, v: Option<u32>| match v {
            Some(v) => w.put(k, &v.to_be_bytes()),
            None => Ok(()),
        };
        let u16o = |w: &mut OptionWriter<'_>, k, v: Option<u16>| match v {
            Some(v) => w.put(k, &v.to_be_bytes()),
            None => Ok(()),
        };
        let long = |w: &mut OptionWriter<'_>, k, v: Option<OptionBytes<'_>>| match v {
            Some(v) => w.put_long(k, &v),
            None => Ok(()),
        };
        addr(&mut w, opt::SUBNET_MASK, self.subnet_mask)?;
        long(&mut w, opt::ROUTER, self.routers.map(|l| l.bytes()))?;
        long(&mut w, opt::DNS, self.dns_servers.map(|l| l.bytes()))?;
        long(&mut w, opt::HOSTNAME, self.hostname)?;
        long(&mut w, opt::DOMAIN_NAME, self.domain_name)?;
        u16o(&mut w, opt::MTU, self.mtu)?;
        long(&mut w, opt::NTP, self.ntp_servers.map(|l| l.bytes()))?;
        addr(&mut w, opt::REQUESTED_IP, self.requested_ip)?;
        u32o(&mut w, opt::LEASE_TIME, self.lease_duration)?;
        addr(&mut w, opt::SERVER_ID, self.server_identifier)?;
        long(
            &mut w,
            opt::PARAMETER_REQUEST_LIST,
            self.parameter_request_list,
        )?;
        u16o(&mut w, opt::MAX_MESSAGE_SIZE, self.max_size)?;
        u32o(&mut w, opt::RENEWAL_TIME, self.renew_duration)?;
        u32o(&mut w, opt::REBINDING_TIME, self.rebind_duration)?;
        long(&mut w, opt::CLIENT_ID, self.client_identifier)?;
        let pos = w.pos;
        let rest = &mut w.buf[pos..];
        let Some((end, pad)) = rest.split_first_mut() else {
            return Err(Error::BufferTooSmall);
        };
        *end = opt::END;
        pad.fill(0);
        Ok(())
    }
}

/// Largest value one option instance carries (its length is one byte).
const MAX_INSTANCE_LEN: usize = 255;

/// Bytes a value of `len` takes when emitted: one instance per 255 bytes (RFC 3396 §5), at
/// least one.
fn long_option_len(len: usize) -> usize {
    2 * len.div_ceil(MAX_INSTANCE_LEN).max(1) + len
}

struct OptionWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl OptionWriter<'_> {
    /// One instance; `data` is at most 255 bytes (fixed-size options only).
    fn put(&mut self, kind: u8, data: &[u8]) -> Result<(), Error> {
        self.put_long(kind, &OptionBytes::new(data))
    }

    /// A value of any length, split into instances of at most 255 bytes (RFC 3396 §5).
    fn put_long(&mut self, kind: u8, value: &OptionBytes<'_>) -> Result<(), Error> {
        let mut left = value.len();
        let mut bytes = value.bytes();
        loop {
            let n = left.min(MAX_INSTANCE_LEN);
            let end = self.pos + 2 + n;
            let dst = self
                .buf
                .get_mut(self.pos..end)
                .ok_or(Error::BufferTooSmall)?;
            dst[0] = kind;
            dst[1] = n as u8;
            for (d, b) in dst[2..].iter_mut().zip(&mut bytes) {
                *d = b;
            }
            self.pos = end;
            left -= n;
            if left == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn ack() -> Repr<'static> {
        let mut r = Repr::new(MessageType::Ack, 0x1234_5678, MAC);
        r.your_ip = Ipv4Addr::new(10, 0, 0, 50);
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.routers = Some(AddrList::new(opt::ROUTER, &[10, 0, 0, 1]).unwrap());
        r.dns_servers = Some(AddrList::new(opt::DNS, &[10, 0, 0, 1, 8, 8, 8, 8]).unwrap());
        r.hostname = Some(OptionBytes::from(b"box"));
        r.domain_name = Some(OptionBytes::from(b"lan.example"));
        r.mtu = Some(1400);
        r.ntp_servers = Some(AddrList::new(opt::NTP, &[10, 0, 0, 2]).unwrap());
        r.lease_duration = Some(3600);
        r.server_identifier = Some(Ipv4Addr::new(10, 0, 0, 1));
        r.renew_duration = Some(1800);
        r.rebind_duration = Some(3150);
        r
    }

    fn emit_vec(r: &Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        buf
    }

    #[test]
    fn round_trip_ack() {
        let r = ack();
        let buf = emit_vec(&r);
        assert!(buf.len() >= MIN_MESSAGE_LEN);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.op(), OP_BOOTREPLY);
        assert_eq!(Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn round_trip_request() {
        let mut r = Repr::new(MessageType::Request, 7, MAC);
        r.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 50));
        r.server_identifier = Some(Ipv4Addr::new(10, 0, 0, 1));
        r.parameter_request_list = Some(OptionBytes::from(&[1, 3, 6, 15]));
        r.max_size = Some(1500);
        r.client_identifier = Some(OptionBytes::from(&[1, 2, 0, 0, 0, 0, 1]));
        r.broadcast = true;
        let buf = emit_vec(&r);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), r);
    }

    #[test]
    fn rejects_bad_headers() {
        let buf = emit_vec(&ack());
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&buf[..239])),
            Err(Error::Truncated)
        );
        let mut b = buf.clone();
        b[236] = 0;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadMagic)
        );
        let mut b = buf.clone();
        b[0] = OP_BOOTREQUEST;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadOp(1))
        );
        let mut b = buf.clone();
        b[2] = 16;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadHardwareLength(16))
        );
        let mut b = buf.clone();
        b[1] = 6;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadHardwareType(6))
        );
    }

    #[test]
    fn rejects_bad_options() {
        let mut b = emit_vec(&ack());
        // Message type option is first: [53, 1, 5]. Make its length run past the end.
        b.truncate(HEADER_LEN + 2);
        b[HEADER_LEN + 1] = 9;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::OptionTruncated(53))
        );
        let mut b = emit_vec(&ack());
        b[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&[53, 1, 99, 255]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadMessageType(99))
        );
        let mut b = emit_vec(&ack());
        b[HEADER_LEN] = opt::PAD;
        b[HEADER_LEN + 1] = opt::PAD;
        b[HEADER_LEN + 2] = opt::PAD;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::MissingMessageType)
        );
        let mut b = emit_vec(&ack());
        b[HEADER_LEN..HEADER_LEN + 6].copy_from_slice(&[53, 1, 5, 1, 3, 255]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadOptionLength { kind: 1, len: 3 })
        );
    }

    #[test]
    fn overload_reads_file_and_sname_once() {
        let mut b = vec![0u8; 300];
        b[0] = OP_BOOTREPLY;
        b[1] = 1;
        b[2] = 6;
        b[236..240].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        b[240..247].copy_from_slice(&[52, 1, 3, 53, 1, 2, 255]);
        // file: lease time and a nested overload that must be ignored.
        b[108..117].copy_from_slice(&[51, 4, 0, 0, 0, 60, 52, 1, 3]);
        b[117] = 255;
        // sname: server id.
        b[44..51].copy_from_slice(&[54, 4, 10, 0, 0, 1, 255]);
        let r = Repr::parse(&Packet::new_unchecked(&b[..])).unwrap();
        assert_eq!(r.message_type, MessageType::Offer);
        assert_eq!(r.lease_duration, Some(60));
        assert_eq!(r.server_identifier, Some(Ipv4Addr::new(10, 0, 0, 1)));
        // Without option 52 the same bytes in file/sname are not options.
        b[240..247].copy_from_slice(&[53, 1, 2, 255, 0, 0, 0]);
        let r = Repr::parse(&Packet::new_unchecked(&b[..])).unwrap();
        assert_eq!(r.lease_duration, None);
    }

    #[test]
    fn emit_rejects_small_buffer() {
        let r = ack();
        let mut buf = [0u8; 100];
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::BufferTooSmall)
        );
    }

    /// A reply with the fixed header and `options` (which must hold END).
    fn raw_reply(options: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = OP_BOOTREPLY;
        b[1] = 1;
        b[2] = 6;
        b[236..240].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        b.extend_from_slice(options);
        b.resize(b.len().max(MIN_MESSAGE_LEN), 0);
        b
    }

    #[test]
    fn split_options_are_concatenated() {
        // RFC 3396: a domain and a DNS list, each in two instances (the address cut in the
        // middle), with a router between them.
        let b = raw_reply(&[
            53, 1, 5, 15, 4, b'l', b'a', b'b', b'.', 6, 6, 10, 0, 0, 1, 10, 0, 3, 4, 10, 0, 0, 9,
            15, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 6, 2, 0, 2, 255,
        ]);
        let r = Repr::parse(&Packet::new_unchecked(&b[..])).unwrap();
        assert_eq!(r.domain_name, Some(OptionBytes::from(b"lab.example")));
        let dns: Vec<Ipv4Addr> = r.dns_servers.unwrap().iter().collect();
        assert_eq!(
            dns,
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(r.router(), Some(Ipv4Addr::new(10, 0, 0, 9)));
        // Concatenated fixed-size options must still have their size.
        let b = raw_reply(&[
            53, 1, 5, 1, 4, 255, 255, 255, 0, 1, 4, 255, 255, 255, 0, 255,
        ]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadOptionLength { kind: 1, len: 8 })
        );
        // Instances in the overloaded file field follow those in the options field.
        let mut b = raw_reply(&[52, 1, 1, 53, 1, 5, 15, 4, b'l', b'a', b'b', b'.', 255]);
        b[108..118].copy_from_slice(&[15, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 255]);
        let r = Repr::parse(&Packet::new_unchecked(&b[..])).unwrap();
        assert_eq!(r.domain_name, Some(OptionBytes::from(b"lab.example")));
        // Beyond the cap of instances the message is refused, not cut.
        let mut opts = vec![53, 1, 5];
        for _ in 0..=DHCP_MAX_OPTION_PARTS {
            opts.extend_from_slice(&[15, 1, b'a']);
        }
        opts.push(255);
        let b = raw_reply(&opts);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::TooManyParts(15))
        );
    }

    #[test]
    fn long_values_are_emitted_in_instances() {
        let long = [b'a'; 600];
        let mut r = ack();
        r.domain_name = Some(OptionBytes::from(&long));
        let buf = emit_vec(&r);
        let p = Packet::new_unchecked(&buf[..]);
        let parts: Vec<usize> = p
            .options()
            .map(|o| o.unwrap())
            .filter(|o| o.kind == opt::DOMAIN_NAME)
            .map(|o| o.data.len())
            .collect();
        assert_eq!(parts, [255, 255, 90]);
        assert_eq!(Repr::parse(&p).unwrap(), r);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(r) = Repr::parse(&Packet::new_unchecked(&data[..])) {
                let buf = emit_vec(&r);
                prop_assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), r);
            }
        }

        #[test]
        fn random_options_never_panic(opts in proptest::collection::vec(any::<u8>(), 0..400),
                                      reply in any::<bool>()) {
            let mut data = vec![0u8; HEADER_LEN];
            data[0] = if reply { OP_BOOTREPLY } else { OP_BOOTREQUEST };
            data[1] = 1;
            data[2] = 6;
            data[236..240].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            data.extend_from_slice(&[53, 1, if reply { 5 } else { 3 }]);
            data.extend_from_slice(&opts);
            if let Ok(r) = Repr::parse(&Packet::new_unchecked(&data[..])) {
                let buf = emit_vec(&r);
                prop_assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), r);
            }
        }

        /// A value cut anywhere into instances (RFC 3396) parses back whole, and a parsed
        /// message emits and parses back equal.
        #[test]
        fn split_values_round_trip(
            domain in proptest::collection::vec(any::<u8>(), 1..700),
            dns in proptest::collection::vec(any::<[u8; 4]>(), 1..80),
            cuts in proptest::collection::vec(any::<u16>(), 0..DHCP_MAX_OPTION_PARTS - 1),
        ) {
            let dns: Vec<u8> = dns.concat();
            let mut opts = vec![53, 1, 5];
            for (kind, value) in [(opt::DOMAIN_NAME, &domain), (opt::DNS, &dns)] {
                let mut at: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % value.len()).collect();
                at.push(0);
                at.push(value.len());
                at.sort_unstable();
                at.dedup();
                for w in at.windows(2) {
                    for chunk in value[w[0]..w[1]].chunks(255) {
                        opts.push(kind);
                        opts.push(chunk.len() as u8);
                        opts.extend_from_slice(chunk);
                    }
                }
            }
            opts.push(255);
            let b = raw_reply(&opts);
            match Repr::parse(&Packet::new_unchecked(&b[..])) {
                Ok(r) => {
                    let got: Vec<u8> = r.domain_name.unwrap().bytes().collect();
                    prop_assert_eq!(&got, &domain);
                    let got: Vec<u8> = r.dns_servers.unwrap().bytes().bytes().collect();
                    prop_assert_eq!(&got, &dns);
                    let buf = emit_vec(&r);
                    prop_assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap(), r);
                }
                // Long values cut many times may need more instances than the cap.
                Err(e) => prop_assert!(matches!(e, Error::TooManyParts(_)), "{}", e),
            }
        }
    }
}
