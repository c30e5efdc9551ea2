//! WiFi: one service per network (SSID + mode + security) seen by
//! wpa_supplicant on a radio, named as ConnMan names them
//! (`wifi_<mac>_<ssid-hex>_<managed|adhoc>_<security>`). Pure: the
//! supplicant's view of an interface comes in as a [`RadioView`] (decoded
//! by `dbus::wpa`); networks, strengths, the verdict on a failed
//! association and the scan schedule come out. No D-Bus, no clock.

use std::fmt::Write;
use std::time::Duration;

use crate::caps;
use crate::core::types::ServiceId;

/// An SSID: up to 32 arbitrary bytes (NUL and invalid UTF-8 included).
pub type Ssid = heapless::Vec<u8, { caps::WIFI_MAX_SSID_LEN }>;

/// The security of a network as a service identifier names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Security {
    None,
    Wep,
    /// WPA/WPA2-PSK, WPA3-SAE or both (transition mode): a passphrase.
    Psk,
    /// 802.1X/EAP: credentials from a provisioning file.
    Ieee8021x,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::Wep => "wep",
            Security::Psk => "psk",
            Security::Ieee8021x => "ieee8021x",
        }
    }

    pub fn parse(s: &str) -> Option<Security> {
        [
            Security::None,
            Security::Wep,
            Security::Psk,
            Security::Ieee8021x,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether connecting needs a secret the user gives.
    pub fn needs_passphrase(self) -> bool {
        matches!(self, Security::Wep | Security::Psk)
    }
}

/// Infrastructure or ad-hoc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Managed,
    Adhoc,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Managed => "managed",
            Mode::Adhoc => "adhoc",
        }
    }
}

/// Key management a BSS offers (from its RSN/WPA `KeyMgmt` lists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyMgmt {
    pub psk: bool,
    pub sae: bool,
    pub eap: bool,
}

/// One BSS (an access point's radio) as wpa_supplicant reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bss {
    /// The supplicant's object path, the BSS's identity.
    pub path: String,
    pub ssid: Ssid,
    pub bssid: [u8; 6],
    pub mode: Mode,
    /// dBm; anything out of [-120, 0] is clamped when turned into a strength.
    pub signal: i16,
    pub frequency: u16,
    pub privacy: bool,
    pub keys: KeyMgmt,
}

impl Bss {
    /// The security a service of this BSS has.
    pub fn security(&self) -> Security {
        if self.keys.eap {
            Security::Ieee8021x
        } else if self.keys.psk || self.keys.sae {
            Security::Psk
        } else if self.privacy {
            Security::Wep
        } else {
            Security::None
        }
    }
}

/// The supplicant's interface state (`State` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkState {
    #[default]
    Disconnected,
    Inactive,
    Scanning,
    Authenticating,
    Associating,
    Associated,
    FourWayHandshake,
    GroupHandshake,
    Completed,
    InterfaceDisabled,
    Unknown,
}

impl LinkState {
    pub fn parse(s: &str) -> LinkState {
        match s {
            "disconnected" => LinkState::Disconnected,
            "inactive" => LinkState::Inactive,
            "scanning" => LinkState::Scanning,
            "authenticating" => LinkState::Authenticating,
            "associating" => LinkState::Associating,
            "associated" => LinkState::Associated,
            "4way_handshake" => LinkState::FourWayHandshake,
            "group_handshake" => LinkState::GroupHandshake,
            "completed" => LinkState::Completed,
            "interface_disabled" => LinkState::InterfaceDisabled,
            _ => LinkState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Disconnected => "disconnected",
            LinkState::Inactive => "inactive",
            LinkState::Scanning => "scanning",
            LinkState::Authenticating => "authenticating",
            LinkState::Associating => "associating",
            LinkState::Associated => "associated",
            LinkState::FourWayHandshake => "4way_handshake",
            LinkState::GroupHandshake => "group_handshake",
            LinkState::Completed => "completed",
            LinkState::InterfaceDisabled => "interface_disabled",
            LinkState::Unknown => "unknown",
        }
    }

    /// On the way to a connection (not idle, not done).
    pub fn is_connecting(self) -> bool {
        matches!(
            self,
            LinkState::Authenticating
                | LinkState::Associating
                | LinkState::Associated
                | LinkState::FourWayHandshake
                | LinkState::GroupHandshake
        )
    }
}

/// What the supplicant says about one radio, after every change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RadioView {
    pub state: LinkState,
    /// Capped at [`caps::WIFI_MAX_BSS`]; the strongest are kept.
    pub bsses: Vec<Bss>,
    /// Path of the BSS the radio is associated with, if any.
    pub current_bss: Option<String>,
    pub disconnect_reason: i32,
    pub assoc_status: i32,
    pub auth_status: i32,
    /// A scan is running.
    pub scanning: bool,
    /// Whether the radio can be an access point (`Capabilities.Modes` holds "ap"); None
    /// while the supplicant has not said.
    pub ap_mode: Option<bool>,
}

/// A network: the BSSes that share SSID, mode and security.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub ssid: Ssid,
    pub mode: Mode,
    pub security: Security,
    /// The best BSS's signal, as ConnMan's 0–100 strength.
    pub strength: u8,
    pub frequency: u16,
    /// WPA3-SAE offered (by some BSS of it).
    pub sae: bool,
    /// WPA2-PSK offered (by some BSS of it).
    pub psk: bool,
}

/// ConnMan's strength: 120 + dBm, clamped to 0–100.
pub fn strength(signal_dbm: i16) -> u8 {
    (120i32 + i32::from(signal_dbm)).clamp(0, 100) as u8
}

/// The networks the BSSes make up, strongest first (ties by SSID bytes).
/// Hidden BSSes (an empty or all-NUL SSID) make one network per security,
/// with an empty SSID (ConnMan's `wifi_<mac>_hidden_managed_<security>`):
/// a user connects to it by naming the SSID.
pub fn networks(bsses: &[Bss]) -> Vec<Network> {
    let mut out: Vec<Network> = Vec::new();
    for b in bsses {
        let hidden = is_all_nul(&b.ssid);
        let ssid = if hidden { Ssid::new() } else { b.ssid.clone() };
        let mode = if hidden { Mode::Managed } else { b.mode };
        if hidden && b.mode != Mode::Managed {
            continue;
        }
        let sec = b.security();
        let st = strength(b.signal);
        match out
            .iter_mut()
            .find(|n| n.ssid == ssid && n.mode == mode && n.security == sec)
        {
            Some(n) => {
                if st > n.strength {
                    n.strength = st;
                    n.frequency = b.frequency;
                }
                n.sae |= b.keys.sae;
                n.psk |= b.keys.psk;
            }
            None => out.push(Network {
                ssid,
                mode,
                security: sec,
                strength: st,
                frequency: b.frequency,
                sae: b.keys.sae,
                psk: b.keys.psk,
            }),
        }
    }
    crate::sort::sort_by(&mut out, |a, b| {
        b.strength
            .cmp(&a.strength)
            .then_with(|| a.ssid.cmp(&b.ssid))
    });
    out
}

/// Hidden networks announce an SSID of NUL bytes as often as an empty one
/// (an empty SSID counts as all-NUL).
pub fn is_all_nul(ssid: &[u8]) -> bool {
    ssid.iter().all(|b| *b == 0)
}

/// `wifi_<mac>_<ssid-hex>_<mode>_<security>`; `ssid` empty gives the
/// hidden form `wifi_<mac>_hidden_managed_<security>`.
pub fn service_id(mac: [u8; 6], ssid: &[u8], mode: Mode, security: Security) -> ServiceId {
    let mut id = ServiceId::new();
    // At most 5 + 12 + 1 + 64 + 1 + 7 + 1 + 9 = 100 characters: fits.
    let _ = write!(id, "wifi_");
    for b in mac {
        let _ = write!(id, "{b:02x}");
    }
    let _ = id.push('_');
    if ssid.is_empty() {
        let _ = id.push_str("hidden");
    } else {
        for b in ssid.iter().take(caps::WIFI_MAX_SSID_LEN) {
            let _ = write!(id, "{b:02x}");
        }
    }
    let _ = write!(id, "_{}_{}", mode.as_str(), security.as_str());
    id
}

/// The parts of a WiFi service identifier.
pub fn parse_service_id(id: &str) -> Option<([u8; 6], Ssid, Mode, Security)> {
    let rest = id.strip_prefix("wifi_")?;
    let mut parts = rest.split('_');
    let mac_hex = parts.next()?;
    let ssid_hex = parts.next()?;
    let mode = match parts.next()? {
        "managed" => Mode::Managed,
        "adhoc" => Mode::Adhoc,
        _ => return None,
    };
    let security = Security::parse(parts.next()?)?;
    if parts.next().is_some() || mac_hex.len() != 12 {
        return None;
    }
    let mac_bytes = hex(mac_hex)?;
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&mac_bytes);
    let ssid = if ssid_hex == "hidden" {
        Ssid::new()
    } else {
        Ssid::from_slice(&hex(ssid_hex)?).ok()?
    };
    Some((mac, ssid, mode, security))
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The service's display name: the SSID as text, invalid UTF-8 replaced
/// and control characters (NUL included) dropped, so a hostile SSID cannot
/// reach a terminal or a log as escape sequences.
pub fn display_name(ssid: &[u8]) -> String {
    String::from_utf8_lossy(ssid)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// Why a passphrase cannot be the key of a network of this security.
pub fn check_passphrase(security: Security, pass: &str) -> Result<(), String> {
    let n = pass.len();
    match security {
        Security::Psk => {
            let hex64 = n == 64 && pass.bytes().all(|b| b.is_ascii_hexdigit());
            if hex64 || ((8..=63).contains(&n) && pass.bytes().all(|b| (0x20..0x7f).contains(&b))) {
                Ok(())
            } else {
                Err(format!(
                    "a WPA passphrase has 8 to 63 printable ASCII characters or 64 hex digits, not {n} bytes"
                ))
            }
        }
        Security::Wep => {
            let hex = pass.bytes().all(|b| b.is_ascii_hexdigit());
            let printable = pass.bytes().all(|b| (0x20..0x7f).contains(&b));
            if (printable && matches!(n, 5 | 13)) || (hex && matches!(n, 10 | 26)) {
                Ok(())
            } else {
                Err(format!(
                    "a WEP key has 5 or 13 characters or 10 or 26 hex digits, not {n} bytes"
                ))
            }
        }
        Security::None | Security::Ieee8021x => Ok(()),
    }
}

/// How an association attempt ended, judged from the states the radio went
/// through (ConnMan's heuristics, `plugins/wifi.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Still going.
    Pending,
    Connected,
    /// The key was refused: the 4-way handshake (PSK) or the SAE
    /// authentication failed. Error `invalid-key`.
    InvalidKey,
    /// The AP refused the association (status code), or the radio gave up
    /// otherwise. Error `connect-failed`.
    Failed,
}

/// Follows one association attempt through the supplicant's states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempt {
    /// The furthest state reached so far.
    reached_handshake: bool,
    reached_authenticating: bool,
    /// Whether the radio has left idle for this attempt yet.
    started: bool,
}

impl Attempt {
    /// The verdict after the radio moved to `view.state`.
    pub fn step(&mut self, view: &RadioView) -> Verdict {
        match view.state {
            // Completed before the radio moved at all is the association
            // the connect is about to replace, not its result.
            LinkState::Completed if self.started => return Verdict::Connected,
            LinkState::FourWayHandshake | LinkState::GroupHandshake => {
                self.reached_handshake = true;
                self.started = true;
            }
            LinkState::Authenticating => {
                self.reached_authenticating = true;
                self.started = true;
            }
            LinkState::Associating | LinkState::Associated => self.started = true,
            LinkState::Disconnected | LinkState::Inactive if self.started => {
                // Status 16 from associating/associated is how some drivers
                // report a bad key (ConnMan treats it as invalid-key too);
                // a refused SAE commit comes back as an authentication
                // status; a handshake that never finishes is a bad PSK.
                if self.reached_handshake
                    || view.assoc_status == 16
                    || (self.reached_authenticating && view.auth_status != 0)
                {
                    return Verdict::InvalidKey;
                }
                return Verdict::Failed;
            }
            LinkState::InterfaceDisabled => return Verdict::Failed,
            _ => {}
        }
        Verdict::Pending
    }
}

/// How long auto-connect leaves a favourite alone after `failures`
/// consecutive failed attempts: 10 s, doubling, at most 300 s (a network
/// out of reach is still tried every 5 minutes; a user Connect retries at
/// once).
pub fn retry_delay(failures: u8) -> Duration {
    let secs = caps::WIFI_RETRY_FIRST_SECS
        .saturating_mul(1u64 << u32::from(failures.saturating_sub(1)).min(16))
        .min(caps::WIFI_RETRY_MAX_SECS);
    Duration::from_secs(secs)
}

/// Background scanning: exponential from 3 s to 300 s while nothing is
/// connected on the radio (ConnMan's `exponential:3:300`), every 300 s
/// while connected (what bgscan's long interval gives).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanBackoff {
    next: u32,
}

impl ScanBackoff {
    pub const FIRST: u32 = 3;
    pub const MAX: u32 = 300;

    /// The wait before the next background scan; advances the schedule.
    pub fn next_interval(&mut self, connected: bool) -> Duration {
        if connected {
            return Duration::from_secs(u64::from(Self::MAX));
        }
        let now = if self.next == 0 {
            Self::FIRST
        } else {
            self.next
        };
        self.next = (now * 2).min(Self::MAX);
        Duration::from_secs(u64::from(now))
    }

    /// Something changed (enabled, disconnected, a user scan): start again
    /// from the short interval.
    pub fn reset(&mut self) {
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bss(path: &str, ssid: &[u8], signal: i16, keys: KeyMgmt, privacy: bool) -> Bss {
        Bss {
            path: path.into(),
            ssid: Ssid::from_slice(ssid).unwrap(),
            bssid: [2, 0, 0, 0, 0, path.len() as u8],
            mode: Mode::Managed,
            signal,
            frequency: 2412,
            privacy,
            keys,
        }
    }

    const PSK: KeyMgmt = KeyMgmt {
        psk: true,
        sae: false,
        eap: false,
    };

    #[test]
    fn service_ids_look_like_connman() {
        let mac = [0x02, 0x00, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(
            service_id(mac, b"home", Mode::Managed, Security::Psk).as_str(),
            "wifi_020000000100_686f6d65_managed_psk"
        );
        assert_eq!(
            service_id(mac, b"", Mode::Managed, Security::None).as_str(),
            "wifi_020000000100_hidden_managed_none"
        );
        let long = service_id(mac, &[0xff; 32], Mode::Adhoc, Security::Ieee8021x);
        assert_eq!(long.len(), 5 + 12 + 1 + 64 + 1 + 5 + 1 + 9);
        let (m, s, mode, sec) = parse_service_id(&long).unwrap();
        assert_eq!(
            (m, s.as_slice(), mode, sec),
            (mac, &[0xff; 32][..], Mode::Adhoc, Security::Ieee8021x)
        );
        assert!(parse_service_id("ethernet_020000000100_cable").is_none());
        assert!(parse_service_id("wifi_02_aa_managed_psk").is_none());
        assert!(parse_service_id("wifi_020000000100_a_managed_psk").is_none());
    }

    #[test]
    fn networks_group_bsses_and_take_the_best_signal() {
        let bsses = [
            bss("/a", b"home", -70, PSK, true),
            bss("/b", b"home", -40, PSK, true),
            bss("/c", b"cafe", -50, KeyMgmt::default(), false),
            bss("/d", b"", -30, PSK, true),
            bss("/e", b"\0\0\0", -30, PSK, true),
            bss("/f", b"home", -60, KeyMgmt::default(), true),
        ];
        let n = networks(&bsses);
        assert_eq!(n.len(), 4, "{n:?}");
        // The two hidden BSSes (empty, all-NUL) are one hidden PSK network.
        assert_eq!((n[0].ssid.as_slice(), n[0].strength), (&b""[..], 90));
        assert_eq!((n[0].security, n[0].mode), (Security::Psk, Mode::Managed));
        assert_eq!((n[1].ssid.as_slice(), n[1].strength), (&b"home"[..], 80));
        assert_eq!(n[1].security, Security::Psk);
        assert_eq!(
            (n[2].ssid.as_slice(), n[2].security),
            (&b"cafe"[..], Security::None)
        );
        assert_eq!(
            (n[3].ssid.as_slice(), n[3].security),
            (&b"home"[..], Security::Wep)
        );
        let hidden = service_id([2, 0, 0, 0, 1, 0], &n[0].ssid, n[0].mode, n[0].security);
        assert_eq!(hidden, "wifi_020000000100_hidden_managed_psk");
    }

    #[test]
    fn strength_is_clamped() {
        assert_eq!(strength(-200), 0);
        assert_eq!(strength(-120), 0);
        assert_eq!(strength(-50), 70);
        assert_eq!(strength(10), 100);
        assert_eq!(strength(i16::MAX), 100);
        assert_eq!(strength(i16::MIN), 0);
    }

    #[test]
    fn hostile_ssids_make_safe_names() {
        assert_eq!(display_name(b"a\0b\x1b[31mc\xff"), "ab[31mc\u{fffd}");
    }

    #[test]
    fn passphrases_are_checked_by_security() {
        assert!(check_passphrase(Security::Psk, "abc").is_err());
        assert!(check_passphrase(Security::Psk, &"x".repeat(200)).is_err());
        assert!(check_passphrase(Security::Psk, "correct horse").is_ok());
        assert!(check_passphrase(Security::Psk, &"a".repeat(64)).is_ok());
        assert!(check_passphrase(Security::Psk, &"z".repeat(64)).is_err());
        assert!(check_passphrase(Security::Wep, "12345").is_ok());
        assert!(check_passphrase(Security::Wep, "0123456789").is_ok());
        assert!(check_passphrase(Security::Wep, "123456").is_err());
        assert!(
            check_passphrase(Security::Wep, "a\nbcd").is_err(),
            "a control character"
        );
    }

    fn view(state: LinkState) -> RadioView {
        RadioView {
            state,
            ..Default::default()
        }
    }

    #[test]
    fn a_failed_handshake_is_an_invalid_key() {
        let mut a = Attempt::default();
        for s in [
            LinkState::Scanning,
            LinkState::Authenticating,
            LinkState::Associating,
            LinkState::Associated,
            LinkState::FourWayHandshake,
        ] {
            assert_eq!(a.step(&view(s)), Verdict::Pending);
        }
        assert_eq!(a.step(&view(LinkState::Disconnected)), Verdict::InvalidKey);

        let mut a = Attempt::default();
        assert_eq!(a.step(&view(LinkState::Disconnected)), Verdict::Pending);
        a.step(&view(LinkState::Associating));
        let mut refused = view(LinkState::Disconnected);
        refused.assoc_status = 17;
        assert_eq!(a.step(&refused), Verdict::Failed);

        let mut a = Attempt::default();
        a.step(&view(LinkState::Authenticating));
        let mut sae = view(LinkState::Disconnected);
        sae.auth_status = 1;
        assert_eq!(a.step(&sae), Verdict::InvalidKey);

        let mut a = Attempt::default();
        assert_eq!(
            a.step(&view(LinkState::Completed)),
            Verdict::Pending,
            "the old association"
        );
        assert_eq!(a.step(&view(LinkState::Scanning)), Verdict::Pending);
        assert_eq!(
            a.step(&view(LinkState::Disconnected)),
            Verdict::Pending,
            "not started yet"
        );
        a.step(&view(LinkState::Associating));
        assert_eq!(a.step(&view(LinkState::Completed)), Verdict::Connected);
    }

    #[test]
    fn scans_back_off_from_3_to_300_seconds() {
        let mut b = ScanBackoff::default();
        let secs: Vec<u64> = (0..10).map(|_| b.next_interval(false).as_secs()).collect();
        assert_eq!(secs, [3, 6, 12, 24, 48, 96, 192, 300, 300, 300]);
        assert_eq!(b.next_interval(true).as_secs(), 300);
        b.reset();
        assert_eq!(b.next_interval(false).as_secs(), 3);
    }

    #[test]
    fn auto_connect_retries_back_off_from_10_s_to_5_minutes() {
        let secs: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(0).as_secs(), 10);
        assert_eq!(retry_delay(u8::MAX).as_secs(), 300);
    }

    proptest! {
        #[test]
        fn any_ssid_round_trips_through_its_service_id(
            ssid in proptest::collection::vec(any::<u8>(), 1..=32),
            mac in any::<[u8; 6]>(),
        ) {
            let id = service_id(mac, &ssid, Mode::Managed, Security::Psk);
            let (m, s, _, sec) = parse_service_id(&id).unwrap();
            prop_assert_eq!(m, mac);
            prop_assert_eq!(s.as_slice(), &ssid[..]);
            prop_assert_eq!(sec, Security::Psk);
            prop_assert!(id.len() <= caps::MAX_SERVICE_ID_LEN);
            prop_assert!(!display_name(&ssid).chars().any(|c| c.is_control()));
        }

        #[test]
        fn networks_never_outnumber_bsses_and_are_sorted(
            raw in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..4), any::<i16>(), any::<bool>()), 0..40)
        ) {
            let bsses: Vec<Bss> = raw.iter().enumerate().map(|(i, (s, sig, p))| {
                bss(&format!("/{i}"), s, *sig, if *p { PSK } else { KeyMgmt::default() }, *p)
            }).collect();
            let n = networks(&bsses);
            prop_assert!(n.len() <= bsses.len());
            // No network is named by NUL bytes: those are the hidden one.
            prop_assert!(n.iter().all(|x| x.ssid.is_empty() || !is_all_nul(&x.ssid)));
            prop_assert!(n.windows(2).all(|w| w[0].strength >= w[1].strength));
        }
    }
}
