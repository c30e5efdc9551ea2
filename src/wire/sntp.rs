//! NTP packet (RFC 5905 §7.3) view and representation, as an SNTP client (RFC 4330) needs it.
//!
//! Own codec rather than smoltcp's: the 48-byte header is a fixed layout of a dozen fields, so a
//! dependency would bring more than it saves, and the time conversions pathman needs (eras,
//! signed differences, `SystemTime`) are its own. Extension fields and MACs after the header are
//! ignored, as an SNTP client may (RFC 4330 §4).

use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// UDP port of NTP servers.
pub const PORT: u16 = 123;
/// Length of the NTP header (no extension fields, no MAC).
pub const HEADER_LEN: usize = 48;
/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const UNIX_OFFSET_SECS: u64 = 2_208_988_800;
/// The protocol version pathman sends (NTPv4).
pub const VERSION: u8 = 4;

/// Errors from parsing or emitting an NTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the 48-byte header.
    Truncated,
    /// Emit: the buffer is shorter than the header.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "NTP packet shorter than {HEADER_LEN} bytes"),
            Error::BufferTooSmall => write!(f, "buffer too small for an NTP packet"),
        }
    }
}

impl std::error::Error for Error {}

mod field {
    use core::ops::Range;
    pub const LI_VN_MODE: usize = 0;
    pub const STRATUM: usize = 1;
    pub const POLL: usize = 2;
    pub const PRECISION: usize = 3;
    pub const ROOT_DELAY: Range<usize> = 4..8;
    pub const ROOT_DISPERSION: Range<usize> = 8..12;
    pub const REFERENCE_ID: Range<usize> = 12..16;
    pub const REFERENCE_TS: Range<usize> = 16..24;
    pub const ORIGINATE_TS: Range<usize> = 24..32;
    pub const RECEIVE_TS: Range<usize> = 32..40;
    pub const TRANSMIT_TS: Range<usize> = 40..48;
}

/// Leap indicator (RFC 5905 Figure 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leap {
    /// No leap second pending.
    NoWarning,
    /// The last minute of the day has 61 seconds.
    AddSecond,
    /// The last minute of the day has 59 seconds.
    DeleteSecond,
    /// The server's clock is not synchronised (3).
    Unsynchronized,
}

impl Leap {
    /// From the two-bit field.
    pub fn from_bits(b: u8) -> Leap {
        match b & 3 {
            0 => Leap::NoWarning,
            1 => Leap::AddSecond,
            2 => Leap::DeleteSecond,
            _ => Leap::Unsynchronized,
        }
    }

    /// The two-bit field.
    pub fn bits(self) -> u8 {
        match self {
            Leap::NoWarning => 0,
            Leap::AddSecond => 1,
            Leap::DeleteSecond => 2,
            Leap::Unsynchronized => 3,
        }
    }
}

/// Association mode (RFC 5905 Figure 10). All eight values have a name, so parsing never fails
/// on it; the client decides which it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0.
    Reserved,
    /// 1.
    SymmetricActive,
    /// 2.
    SymmetricPassive,
    /// 3: what a client sends.
    Client,
    /// 4: what a server answers.
    Server,
    /// 5.
    Broadcast,
    /// 6: NTP control messages.
    Control,
    /// 7: private use.
    Private,
}

impl Mode {
    /// From the three-bit field.
    pub fn from_bits(b: u8) -> Mode {
        match b & 7 {
            0 => Mode::Reserved,
            1 => Mode::SymmetricActive,
            2 => Mode::SymmetricPassive,
            3 => Mode::Client,
            4 => Mode::Server,
            5 => Mode::Broadcast,
            6 => Mode::Control,
            _ => Mode::Private,
        }
    }

    /// The three-bit field.
    pub fn bits(self) -> u8 {
        match self {
            Mode::Reserved => 0,
            Mode::SymmetricActive => 1,
            Mode::SymmetricPassive => 2,
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Broadcast => 5,
            Mode::Control => 6,
            Mode::Private => 7,
        }
    }
}

/// NTP short format: unsigned 16.16 fixed-point seconds (root delay and root dispersion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Short(pub u32);

impl Short {
    /// The value as a duration (rounded down to the nanosecond).
    pub fn to_duration(self) -> Duration {
        let secs = u64::from(self.0 >> 16);
        let nanos = (u64::from(self.0 & 0xffff) * 1_000_000_000) >> 16;
        Duration::new(secs, nanos as u32)
    }

    /// A duration in short format, rounded up to the next 1/65536 s; longer than the format
    /// holds (about 18 h) saturates.
    pub fn from_duration(d: Duration) -> Short {
        let Ok(secs) = u32::try_from(d.as_secs()) else {
            return Short(u32::MAX);
        };
        if secs > 0xffff {
            return Short(u32::MAX);
        }
        let frac = (u64::from(d.subsec_nanos()) << 16).div_ceil(1_000_000_000);
        // frac can round up to 65536: carry into the seconds.
        let v = (u64::from(secs) << 16) + frac;
        Short(u32::try_from(v).unwrap_or(u32::MAX))
    }
}

/// An NTP timestamp: 32.32 fixed-point seconds since the start of an NTP era (era 0 began
/// 1900-01-01, era 1 begins 2036-02-07). The packet carries no era; conversions to absolute
/// time take a nearby reference time to pick one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The all-zero timestamp, which NTP uses for "unknown".
    pub const ZERO: Timestamp = Timestamp(0);

    /// From the seconds and fraction fields.
    pub fn new(seconds: u32, fraction: u32) -> Timestamp {
        Timestamp((u64::from(seconds) << 32) | u64::from(fraction))
    }

    /// The seconds field.
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The fraction field (units of 2^-32 s).
    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// True for the all-zero timestamp.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// A time as an NTP timestamp (its era is dropped, as on the wire). Sub-nanosecond
    /// rounding is chosen so that [`Timestamp::to_system_time`] gives the same time back.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i128::from(d.as_secs()) + i128::from(UNIX_OFFSET_SECS),
                d.subsec_nanos(),
            ),
            Err(e) => {
                // Before 1970: count back from the epoch, keeping the fraction positive.
                let d = e.duration();
                let mut secs = i128::from(UNIX_OFFSET_SECS) - i128::from(d.as_secs());
                let mut nanos = d.subsec_nanos();
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                (secs, nanos)
            }
        };
        let seconds = secs.rem_euclid(1 << 32) as u32;
        Timestamp::new(seconds, nanos_to_fraction(nanos))
    }

    /// The absolute time this timestamp stands for, taking the era that puts it within 68
    /// years of `near` (RFC 5905 §6: eras are resolved against a time known to be close).
    pub fn to_system_time(self, near: SystemTime) -> SystemTime {
        // Whole seconds of `near` since the NTP epoch of era 0 (negative before 1900).
        let near_secs = match near.duration_since(UNIX_EPOCH) {
            Ok(d) => i128::from(d.as_secs()),
            Err(e) => {
                -i128::from(e.duration().as_secs()) - i128::from(e.duration().subsec_nanos() > 0)
            }
        } + i128::from(UNIX_OFFSET_SECS);
        let near_field = near_secs.rem_euclid(1 << 32) as u32;
        // The era is picked on the seconds alone; the fraction converts exactly.
        let delta = i128::from(self.seconds().wrapping_sub(near_field) as i32);
        let unix_secs = near_secs + delta - i128::from(UNIX_OFFSET_SECS);
        let nanos = Duration::from_nanos(u64::from(fraction_to_nanos(self.fraction())));
        let whole = Duration::from_secs(unix_secs.unsigned_abs() as u64);
        let t = if unix_secs >= 0 {
            UNIX_EPOCH.checked_add(whole)
        } else {
            UNIX_EPOCH.checked_sub(whole)
        };
        t.and_then(|t| t.checked_add(nanos)).unwrap_or(near)
    }

    /// `self - earlier` in nanoseconds (rounded to the nearest), with the 64-bit wrap-around
    /// of RFC 5905 §6 so that it is right across an era boundary as long as the two are within
    /// 68 years of each other.
    pub fn nanos_since(self, earlier: Timestamp) -> i64 {
        let diff = self.0.wrapping_sub(earlier.0) as i64;
        // diff is 32.32 fixed point; |diff| < 2^63 so the product fits i128.
        let nanos = (i128::from(diff) * 1_000_000_000 + (1 << 31)) >> 32;
        // |nanos| <= 2^31 * 1e9 < 2^63.
        nanos as i64
    }

    /// From the wire bytes.
    pub fn from_bytes(b: [u8; 8]) -> Timestamp {
        Timestamp(u64::from_be_bytes(b))
    }

    /// The wire bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

/// Nanoseconds (below one second) as a 32-bit fraction, rounded up so that the round trip
/// through [`fraction_to_nanos`] is exact.
fn nanos_to_fraction(nanos: u32) -> u32 {
    let f = (u64::from(nanos) << 32).div_ceil(1_000_000_000);
    u32::try_from(f).unwrap_or(u32::MAX)
}

/// A 32-bit fraction as nanoseconds, rounded down.
pub fn fraction_to_nanos(fraction: u32) -> u32 {
    ((u64::from(fraction) * 1_000_000_000) >> 32) as u32
}

/// A kiss-o'-death code (RFC 5905 §7.4): the reference id of a stratum-0 packet, in ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KissCode {
    /// "DENY": access denied, stop using the server.
    Deny,
    /// "RSTR": access restricted, stop using the server.
    Restrict,
    /// "RATE": polling too fast, slow down.
    Rate,
    /// Any other code (the four bytes as sent).
    Other([u8; 4]),
}

impl KissCode {
    /// The code in a reference id.
    pub fn from_reference_id(id: [u8; 4]) -> KissCode {
        match &id {
            b"DENY" => KissCode::Deny,
            b"RSTR" => KissCode::Restrict,
            b"RATE" => KissCode::Rate,
            _ => KissCode::Other(id),
        }
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KissCode::Deny => f.write_str("DENY"),
            KissCode::Restrict => f.write_str("RSTR"),
            KissCode::Rate => f.write_str("RATE"),
            KissCode::Other(b) => {
                for &c in b {
                    write!(f, "{}", core::ascii::escape_default(c))?;
                }
                Ok(())
            }
        }
    }
}

/// A zero-copy view of an NTP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn u32_at(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    let b = &b[r];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn ts_at(b: &[u8], r: core::ops::Range<usize>) -> Timestamp {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    Timestamp::from_bytes(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the 48-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer is long enough for every accessor.
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

    /// Leap indicator.
    pub fn leap(&self) -> Leap {
        Leap::from_bits(self.b()[field::LI_VN_MODE] >> 6)
    }
    /// Version number (0..=7 as sent).
    pub fn version(&self) -> u8 {
        (self.b()[field::LI_VN_MODE] >> 3) & 7
    }
    /// Association mode.
    pub fn mode(&self) -> Mode {
        Mode::from_bits(self.b()[field::LI_VN_MODE])
    }
    /// Stratum (0 = kiss-o'-death, 1 = primary, 16+ = unsynchronised).
    pub fn stratum(&self) -> u8 {
        self.b()[field::STRATUM]
    }
    /// Poll exponent (log2 seconds), signed.
    pub fn poll(&self) -> i8 {
        self.b()[field::POLL] as i8
    }
    /// Precision exponent (log2 seconds), signed.
    pub fn precision(&self) -> i8 {
        self.b()[field::PRECISION] as i8
    }
    /// Root delay.
    pub fn root_delay(&self) -> Short {
        Short(u32_at(self.b(), field::ROOT_DELAY))
    }
    /// Root dispersion.
    pub fn root_dispersion(&self) -> Short {
        Short(u32_at(self.b(), field::ROOT_DISPERSION))
    }
    /// Reference id (an address, a refclock name, or a kiss code at stratum 0).
    pub fn reference_id(&self) -> [u8; 4] {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.b()[field::REFERENCE_ID]);
        a
    }
    /// When the server's clock was last set.
    pub fn reference_timestamp(&self) -> Timestamp {
        ts_at(self.b(), field::REFERENCE_TS)
    }
    /// The client's transmit timestamp, echoed by the server.
    pub fn originate_timestamp(&self) -> Timestamp {
        ts_at(self.b(), field::ORIGINATE_TS)
    }
    /// When the server received the request.
    pub fn receive_timestamp(&self) -> Timestamp {
        ts_at(self.b(), field::RECEIVE_TS)
    }
    /// When the packet left its sender.
    pub fn transmit_timestamp(&self) -> Timestamp {
        ts_at(self.b(), field::TRANSMIT_TS)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets leap indicator, version and mode (the first byte).
    pub fn set_leap_version_mode(&mut self, leap: Leap, version: u8, mode: Mode) {
        self.bm()[field::LI_VN_MODE] = (leap.bits() << 6) | ((version & 7) << 3) | mode.bits();
    }
    /// Sets the stratum.
    pub fn set_stratum(&mut self, v: u8) {
        self.bm()[field::STRATUM] = v;
    }
    /// Sets the poll exponent.
    pub fn set_poll(&mut self, v: i8) {
        self.bm()[field::POLL] = v as u8;
    }
    /// Sets the precision exponent.
    pub fn set_precision(&mut self, v: i8) {
        self.bm()[field::PRECISION] = v as u8;
    }
    /// Sets the root delay.
    pub fn set_root_delay(&mut self, v: Short) {
        self.bm()[field::ROOT_DELAY].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Sets the root dispersion.
    pub fn set_root_dispersion(&mut self, v: Short) {
        self.bm()[field::ROOT_DISPERSION].copy_from_slice(&v.0.to_be_bytes());
    }
    /// Sets the reference id.
    pub fn set_reference_id(&mut self, v: [u8; 4]) {
        self.bm()[field::REFERENCE_ID].copy_from_slice(&v);
    }
    /// Sets the reference timestamp.
    pub fn set_reference_timestamp(&mut self, v: Timestamp) {
        self.bm()[field::REFERENCE_TS].copy_from_slice(&v.to_bytes());
    }
    /// Sets the originate timestamp.
    pub fn set_originate_timestamp(&mut self, v: Timestamp) {
        self.bm()[field::ORIGINATE_TS].copy_from_slice(&v.to_bytes());
    }
    /// Sets the receive timestamp.
    pub fn set_receive_timestamp(&mut self, v: Timestamp) {
        self.bm()[field::RECEIVE_TS].copy_from_slice(&v.to_bytes());
    }
    /// Sets the transmit timestamp.
    pub fn set_transmit_timestamp(&mut self, v: Timestamp) {
        self.bm()[field::TRANSMIT_TS].copy_from_slice(&v.to_bytes());
    }
}

/// The fields of an NTP header as plain values. Parsing accepts any 48 bytes; whether a reply
/// is acceptable is the client's decision ([`crate::time::sntp`]), so it can say why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Leap indicator.
    pub leap: Leap,
    /// Version number (three bits).
    pub version: u8,
    /// Association mode.
    pub mode: Mode,
    /// Stratum.
    pub stratum: u8,
    /// Poll exponent.
    pub poll: i8,
    /// Precision exponent.
    pub precision: i8,
    /// Root delay.
    pub root_delay: Short,
    /// Root dispersion.
    pub root_dispersion: Short,
    /// Reference id.
    pub reference_id: [u8; 4],
    /// Reference timestamp.
    pub reference_timestamp: Timestamp,
    /// Originate timestamp.
    pub originate_timestamp: Timestamp,
    /// Receive timestamp.
    pub receive_timestamp: Timestamp,
    /// Transmit timestamp.
    pub transmit_timestamp: Timestamp,
}

impl Repr {
    /// A client request as pathman sends it: LI 3 (unsynchronised, as a client that has not
    /// synced says), version 4, mode 3, our poll exponent, and every other field zero except
    /// the transmit timestamp, which the server echoes as the originate timestamp. Nothing
    /// about our clock is disclosed (the transmit value is a cookie, not our time).
    pub fn client_request(poll: i8, transmit: Timestamp) -> Repr {
        Repr {
            leap: Leap::Unsynchronized,
            version: VERSION,
            mode: Mode::Client,
            stratum: 0,
            poll,
            precision: 0,
            root_delay: Short(0),
            root_dispersion: Short(0),
            reference_id: [0; 4],
            reference_timestamp: Timestamp::ZERO,
            originate_timestamp: Timestamp::ZERO,
            receive_timestamp: Timestamp::ZERO,
            transmit_timestamp: transmit,
        }
    }

    /// Reads every header field. Fails only on a short buffer.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        Ok(Repr {
            leap: packet.leap(),
            version: packet.version(),
            mode: packet.mode(),
            stratum: packet.stratum(),
            poll: packet.poll(),
            precision: packet.precision(),
            root_delay: packet.root_delay(),
            root_dispersion: packet.root_dispersion(),
            reference_id: packet.reference_id(),
            reference_timestamp: packet.reference_timestamp(),
            originate_timestamp: packet.originate_timestamp(),
            receive_timestamp: packet.receive_timestamp(),
            transmit_timestamp: packet.transmit_timestamp(),
        })
    }

    /// Bytes needed to emit.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of the packet's buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_leap_version_mode(self.leap, self.version, self.mode);
        packet.set_stratum(self.stratum);
        packet.set_poll(self.poll);
        packet.set_precision(self.precision);
        packet.set_root_delay(self.root_delay);
        packet.set_root_dispersion(self.root_dispersion);
        packet.set_reference_id(self.reference_id);
        packet.set_reference_timestamp(self.reference_timestamp);
        packet.set_originate_timestamp(self.originate_timestamp);
        packet.set_receive_timestamp(self.receive_timestamp);
        packet.set_transmit_timestamp(self.transmit_timestamp);
        Ok(())
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut buf = [0u8; HEADER_LEN];
        // The buffer is exactly HEADER_LEN long, so emit cannot fail.
        let _ = self.emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf
    }

    /// The kiss code, when this is a kiss-o'-death packet (stratum 0).
    pub fn kiss_code(&self) -> Option<KissCode> {
        (self.stratum == 0).then(|| KissCode::from_reference_id(self.reference_id))
    }

    /// Root distance as the server states it: root delay / 2 + root dispersion (RFC 5905
    /// Appendix A.5.5.2 without our own path's share, which the client adds).
    pub fn root_distance(&self) -> Duration {
        self.root_delay.to_duration() / 2 + self.root_dispersion.to_duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A reply of chronyd 4.3 (`local stratum 10`, `-x`) in the lab, captured with
    /// `tests/lab/hostile_ntp.py query` (see `crate::time::sntp` tests for all vectors).
    const CHRONY_REPLY: &str = "240a06e600000000000000007f7f0101eeb9dbac3fc7a183d04c01db29f5b49aeeb9dbad809b5c37eeb9dbad80a9bd2a";

    #[test]
    fn parses_every_field_of_a_chronyd_reply() {
        let b = hex(CHRONY_REPLY);
        let r = Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.leap, Leap::NoWarning);
        assert_eq!(r.version, 4);
        assert_eq!(r.mode, Mode::Server);
        assert_eq!(r.stratum, 10);
        assert_eq!(r.poll, 6);
        assert_eq!(r.precision, -26);
        assert_eq!(r.root_delay, Short(0));
        assert_eq!(r.root_dispersion, Short(0));
        assert_eq!(r.reference_id, [127, 127, 1, 1]);
        assert_eq!(r.originate_timestamp, Timestamp(0xd04c01db29f5b49a));
        assert_eq!(r.receive_timestamp.seconds(), 0xeeb9dbad);
        assert_eq!(r.kiss_code(), None);
        assert_eq!(r.to_bytes().to_vec(), b);
    }

    #[test]
    fn client_request_layout() {
        let r = Repr::client_request(6, Timestamp(0x0102_0304_0506_0708));
        let b = r.to_bytes();
        assert_eq!(b[0], 0xe3, "LI 3, VN 4, mode 3");
        assert_eq!(b[2], 6);
        assert!(b[1..40].iter().enumerate().all(|(i, &x)| i == 1 || x == 0));
        assert_eq!(&b[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn short_and_truncated() {
        assert_eq!(
            Packet::new_checked(&[0u8; 47][..]).map(|_| ()),
            Err(Error::Truncated)
        );
        assert!(Packet::new_checked(&[0u8; 48][..]).is_ok());
        // Extension fields or a MAC after the header are ignored.
        assert!(Repr::parse(&Packet::new_unchecked(&[0u8; 68][..])).is_ok());
        let mut small = [0u8; 47];
        assert_eq!(
            Repr::client_request(6, Timestamp(1)).emit(&mut Packet::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn kiss_codes() {
        for (id, code) in [
            (*b"DENY", KissCode::Deny),
            (*b"RSTR", KissCode::Restrict),
            (*b"RATE", KissCode::Rate),
            (*b"INIT", KissCode::Other(*b"INIT")),
        ] {
            let mut r = Repr::client_request(0, Timestamp(1));
            r.stratum = 0;
            r.reference_id = id;
            assert_eq!(r.kiss_code(), Some(code));
        }
        assert_eq!(KissCode::Other(*b"X\0\x01Y").to_string(), "X\\x00\\x01Y");
    }

    #[test]
    fn unix_epoch_and_era_boundary() {
        let t = Timestamp::from_system_time(UNIX_EPOCH);
        assert_eq!(t, Timestamp::new(2_208_988_800, 0));
        // 2036-02-07T06:28:16Z is the first second of era 1: seconds field 0.
        let era1 = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - UNIX_OFFSET_SECS);
        assert_eq!(Timestamp::from_system_time(era1), Timestamp::new(0, 0));
        // A timestamp just after the boundary, read near a time just before it, is in era 1.
        let before = era1 - Duration::from_secs(10);
        let after = Timestamp::new(5, 0);
        assert_eq!(after.to_system_time(before), era1 + Duration::from_secs(5));
        assert_eq!(
            after.nanos_since(Timestamp::from_system_time(before)),
            15_000_000_000
        );
    }

    #[test]
    fn short_format() {
        assert_eq!(
            Short(0x0001_8000).to_duration(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            Short::from_duration(Duration::from_millis(1500)),
            Short(0x0001_8000)
        );
        assert_eq!(
            Short::from_duration(Duration::from_secs(1 << 20)),
            Short(u32::MAX)
        );
        // 999_999_999 ns rounds up into the next second.
        assert_eq!(
            Short::from_duration(Duration::new(1, 999_999_999)),
            Short(0x0002_0000)
        );
    }

    /// `t` moved by a signed number of nanoseconds (saturating at what `SystemTime` holds).
    fn shift(t: SystemTime, nanos: i64) -> SystemTime {
        let d = Duration::from_nanos(nanos.unsigned_abs());
        let moved = if nanos >= 0 {
            t.checked_add(d)
        } else {
            t.checked_sub(d)
        };
        moved.unwrap_or(t)
    }

    fn any_system_time() -> impl Strategy<Value = SystemTime> {
        // 1900 .. 2100, both sides of the Unix epoch and of the 2036 era boundary.
        (-2_208_988_800i64..4_102_444_800i64, 0u32..1_000_000_000).prop_map(|(s, n)| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, n)
            } else {
                UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(n.into())
            }
        })
    }

    proptest! {
        #[test]
        fn random_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            match Repr::parse(&Packet::new_unchecked(&data[..])) {
                Ok(r) => prop_assert_eq!(&r.to_bytes()[..], &data[..HEADER_LEN]),
                Err(e) => {
                    prop_assert_eq!(e, Error::Truncated);
                    prop_assert!(data.len() < HEADER_LEN);
                }
            }
        }

        /// SystemTime -> Timestamp -> SystemTime is exact to the nanosecond, for any reference
        /// time within 68 years.
        #[test]
        fn system_time_round_trip(t in any_system_time(), skew in -2_000_000_000i64..2_000_000_000) {
            let ts = Timestamp::from_system_time(t);
            let near = shift(t, skew * 1_000_000_000 / 1_000);
            prop_assert_eq!(ts.to_system_time(near), t);
            let near = shift(t, skew.signum() * 2_000_000_000 * 1_000_000_000);
            prop_assert_eq!(ts.to_system_time(near), t);
        }

        /// Differences are right across eras and signs.
        #[test]
        fn differences(a in any_system_time(), d in -2_000_000_000_000_000_000i64..2_000_000_000_000_000_000) {
            let b = shift(a, d);
            let (ta, tb) = (Timestamp::from_system_time(a), Timestamp::from_system_time(b));
            prop_assert_eq!(tb.nanos_since(ta), d);
            prop_assert_eq!(ta.nanos_since(tb), -d);
        }

        #[test]
        fn short_round_trip(v in any::<u32>()) {
            prop_assert_eq!(Short::from_duration(Short(v).to_duration()), Short(v));
        }
    }
}
