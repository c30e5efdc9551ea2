//! wpa_supplicant's D-Bus API (`fi.w1.wpa_supplicant1`, hostap's
//! `doc/dbus.doxygen`): names, and decoding what it sends into the pure
//! WiFi core's types; encoding what pathman asks of it. Pure: values in,
//! values out. Anything of the wrong type is ignored (a field keeps its
//! last value), so a confused or hostile supplicant cannot make pathman
//! panic or believe garbage.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use crate::caps;
use crate::config::provision::Eap;
use crate::core::model::ConnectSpec;
use crate::core::tech::wifi::{Bss, KeyMgmt, LinkState, Mode, RadioView, Security, Ssid};
use crate::dbus::value::{bytes, inner, int, path, paths, string, strings};

pub const NAME: &str = "fi.w1.wpa_supplicant1";
pub const PATH: &str = "/fi/w1/wpa_supplicant1";
pub const IFACE_ROOT: &str = "fi.w1.wpa_supplicant1";
pub const IFACE_INTERFACE: &str = "fi.w1.wpa_supplicant1.Interface";
pub const IFACE_BSS: &str = "fi.w1.wpa_supplicant1.BSS";
pub const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
/// The error GetInterface answers for an interface it does not manage.
pub const ERR_INTERFACE_UNKNOWN: &str = "fi.w1.wpa_supplicant1.InterfaceUnknown";
/// The error CreateInterface answers when the interface exists already.
pub const ERR_INTERFACE_EXISTS: &str = "fi.w1.wpa_supplicant1.InterfaceExists";

/// A property dictionary as received.
pub type Props = HashMap<String, OwnedValue>;

/// The key management a `WPA`/`RSN` dictionary lists.
fn key_mgmt(v: &Value<'_>, keys: &mut KeyMgmt) {
    let Value::Dict(d) = inner(v) else { return };
    for (k, val) in d.iter() {
        if string(k).as_deref() != Some("KeyMgmt") {
            continue;
        }
        for m in strings(val).unwrap_or_default() {
            match m.as_str() {
                "wpa-psk" | "wpa-psk-sha256" | "wpa-ft-psk" => keys.psk = true,
                "sae" | "ft-sae" => keys.sae = true,
                m if m.contains("eap") => keys.eap = true,
                _ => {}
            }
        }
    }
}

/// A BSS from its properties (`GetAll` or `BSSAdded`); `None` without a
/// valid BSSID. An SSID longer than 32 bytes is cut.
pub fn bss(path: &str, props: &Props) -> Option<Bss> {
    let bssid_raw = props.get("BSSID").and_then(|v| bytes(v))?;
    let bssid: [u8; 6] = bssid_raw.try_into().ok()?;
    let mut b = Bss {
        path: path.to_string(),
        ssid: Ssid::new(),
        bssid,
        mode: Mode::Managed,
        signal: -100,
        frequency: 0,
        privacy: false,
        keys: KeyMgmt::default(),
    };
    update_bss(&mut b, props);
    Some(b)
}

/// Applies changed BSS properties (signal, SSID, security).
pub fn update_bss(b: &mut Bss, props: &Props) {
    for (k, v) in props {
        match k.as_str() {
            "SSID" => {
                if let Some(s) = bytes(v) {
                    let n = s.len().min(caps::WIFI_MAX_SSID_LEN);
                    b.ssid = Ssid::from_slice(&s[..n]).unwrap_or_default();
                }
            }
            "Mode" => {
                if let Some(m) = string(v) {
                    b.mode = if m == "ad-hoc" {
                        Mode::Adhoc
                    } else {
                        Mode::Managed
                    };
                }
            }
            "Signal" => {
                if let Some(n) = int(v) {
                    b.signal = n.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
                }
            }
            "Frequency" => {
                if let Some(n) = int(v) {
                    b.frequency = n.clamp(0, i64::from(u16::MAX)) as u16;
                }
            }
            "Privacy" => {
                if let Value::Bool(p) = inner(v) {
                    b.privacy = *p;
                }
            }
            "WPA" | "RSN" => {
                // Both lists together say what the BSS offers.
                let mut keys = KeyMgmt::default();
                for key in ["WPA", "RSN"] {
                    let val = if key == k.as_str() {
                        Some(&**v)
                    } else {
                        props.get(key).map(|o| &**o)
                    };
                    if let Some(val) = val {
                        key_mgmt(val, &mut keys);
                    }
                }
                if props.contains_key("WPA") && props.contains_key("RSN") {
                    b.keys = keys;
                } else {
                    // Only one list changed: keep what the other said.
                    b.keys.psk |= keys.psk;
                    b.keys.sae |= keys.sae;
                    b.keys.eap |= keys.eap;
                }
            }
            _ => {}
        }
    }
}

/// What an interface's properties change in its view; the new `BSSs`
/// list if it was among them.
pub fn update_interface(view: &mut RadioView, props: &Props) -> Option<Vec<String>> {
    let mut bss_list = None;
    for (k, v) in props {
        match k.as_str() {
            "State" => {
                if let Some(s) = string(v) {
                    view.state = LinkState::parse(&s);
                }
            }
            "CurrentBSS" => {
                if let Some(p) = path(v) {
                    view.current_bss = (p != "/").then_some(p);
                }
            }
            "DisconnectReason" => {
                if let Some(n) = int(v) {
                    view.disconnect_reason = n.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
                }
            }
            "AssocStatusCode" => {
                if let Some(n) = int(v) {
                    view.assoc_status = n.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
                }
            }
            "AuthStatusCode" => {
                if let Some(n) = int(v) {
                    view.auth_status = n.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
                }
            }
            "BSSs" => bss_list = paths(v),
            "Capabilities" => {
                if let Some(modes) = capability_modes(v) {
                    view.ap_mode = Some(modes.iter().any(|m| m == "ap"));
                }
            }
            _ => {}
        }
    }
    bss_list
}

/// The `Modes` of an interface's `Capabilities` (a{sv}); None when it is not there or
/// not a list of strings.
fn capability_modes(v: &Value<'_>) -> Option<Vec<String>> {
    let Value::Dict(d) = inner(v) else {
        return None;
    };
    d.iter()
        .find(|(k, _)| string(k).as_deref() == Some("Modes"))
        .and_then(|(_, m)| strings(m))
}

/// Keeps the strongest [`caps::WIFI_MAX_BSS`] BSSes; says how many went.
pub fn cap_bsses(bsses: &mut Vec<Bss>) -> usize {
    if bsses.len() <= caps::WIFI_MAX_BSS {
        return 0;
    }
    crate::sort::sort_by_key(bsses, |b| std::cmp::Reverse(b.signal));
    let dropped = bsses.len() - caps::WIFI_MAX_BSS;
    bsses.truncate(caps::WIFI_MAX_BSS);
    dropped
}

/// The `AddNetwork` dictionary for a connect (keys as wpa_supplicant.conf).
/// AddNetwork's arguments for tethering's access point (ConnMan's: mode 2,
/// the frequency, WPA2-PSK with RSN/CCMP, or open without a passphrase).
pub fn ap_args(spec: &crate::core::tether::ApSpec) -> HashMap<&'static str, Value<'static>> {
    let mut m: HashMap<&'static str, Value<'static>> = HashMap::new();
    m.insert("ssid", Value::from(spec.ssid.as_bytes().to_vec()));
    m.insert("mode", Value::U32(2));
    m.insert("frequency", Value::I32(spec.freq as i32));
    // wpa_supplicant scans before it starts an AP: on its channel only, not
    // every channel the radio has (seconds).
    m.insert("scan_freq", Value::from(spec.freq.to_string()));
    match &spec.passphrase {
        Some(p) => {
            m.insert("key_mgmt", Value::from("WPA-PSK"));
            m.insert("proto", Value::from("RSN"));
            m.insert("pairwise", Value::from("CCMP"));
            m.insert("group", Value::from("CCMP"));
            m.insert("psk", Value::from(p.0.clone()));
        }
        None => {
            m.insert("key_mgmt", Value::from("NONE"));
        }
    }
    m
}

pub fn network_args(spec: &ConnectSpec) -> HashMap<&'static str, Value<'static>> {
    let mut m: HashMap<&'static str, Value<'static>> = HashMap::new();
    m.insert("ssid", Value::from(spec.ssid.to_vec()));
    if spec.hidden {
        m.insert("scan_ssid", Value::U32(1));
    }
    // Background scanning while connected finds a better BSS to roam to.
    m.insert("bgscan", Value::from("simple:30:-65:300"));
    let pass = spec.passphrase.as_ref().map(|p| p.0.clone());
    match spec.security {
        Security::None => {
            m.insert("key_mgmt", Value::from("NONE"));
        }
        Security::Wep => {
            m.insert("key_mgmt", Value::from("NONE"));
            m.insert("auth_alg", Value::from("OPEN SHARED"));
            m.insert("wep_tx_keyidx", Value::U32(0));
            if let Some(p) = pass {
                // A hex key goes as raw bytes, a text one as a string.
                let hex = matches!(p.len(), 10 | 26) && p.bytes().all(|b| b.is_ascii_hexdigit());
                if hex {
                    let raw: Vec<u8> = (0..p.len())
                        .step_by(2)
                        .filter_map(|i| u8::from_str_radix(&p[i..i + 2], 16).ok())
                        .collect();
                    m.insert("wep_key0", Value::from(raw));
                } else {
                    m.insert("wep_key0", Value::from(p));
                }
            }
        }
        Security::Psk => {
            let (key_mgmt, pmf) = match (spec.psk, spec.sae) {
                // WPA3-only: management frame protection is required.
                (false, true) => ("SAE", 2u32),
                // Transition mode: either, PMF when both can.
                (true, true) => ("WPA-PSK SAE", 1),
                _ => ("WPA-PSK", 0),
            };
            m.insert("key_mgmt", Value::from(key_mgmt));
            if pmf > 0 {
                m.insert("ieee80211w", Value::U32(pmf));
            }
            if let Some(p) = pass {
                if p.len() == 64 {
                    // 64 hex digits are the PSK itself.
                    let raw: Vec<u8> = (0..64)
                        .step_by(2)
                        .filter_map(|i| u8::from_str_radix(&p[i..i + 2], 16).ok())
                        .collect();
                    m.insert("psk", Value::from(raw));
                } else {
                    if spec.sae {
                        m.insert("sae_password", Value::from(p.clone()));
                    }
                    m.insert("psk", Value::from(p));
                }
            }
        }
        Security::Ieee8021x => {
            m.insert("key_mgmt", Value::from("WPA-EAP"));
            if let Some(eap) = &spec.eap {
                eap_args(&mut m, eap);
            }
        }
    }
    m
}

/// The 802.1X part of a network (wpa_supplicant.conf's names; ConnMan's
/// Phase2 rule: `EAP-X` is `autheap=X`, anything else `auth=X`).
fn eap_args(m: &mut HashMap<&'static str, Value<'static>>, eap: &Eap) {
    m.insert("eap", Value::from(eap.method.wpa_name()));
    // Management frame protection when the AP offers it.
    m.insert("ieee80211w", Value::U32(1));
    let mut text = |k: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k, Value::from(v.clone()));
        }
    };
    text("identity", &eap.identity);
    text("anonymous_identity", &eap.anonymous_identity);
    text("ca_cert", &eap.ca_cert);
    text("client_cert", &eap.client_cert);
    text("private_key", &eap.private_key);
    text("domain_suffix_match", &eap.domain_suffix_match);
    text("domain_match", &eap.domain_match);
    text("subject_match", &eap.subject_match);
    text("altsubject_match", &eap.alt_subject_match);
    let phase2 = eap.phase2.as_ref().map(|p| match p.strip_prefix("EAP-") {
        Some(inner) => format!("autheap={inner}"),
        None => format!("auth={p}"),
    });
    text("phase2", &phase2);
    if let Some(p) = &eap.password {
        m.insert("password", Value::from(p.0.clone()));
    }
    if let Some(p) = &eap.private_key_passphrase {
        m.insert("private_key_passwd", Value::from(p.0.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::Secret;
    use proptest::prelude::*;

    fn ov(v: Value<'_>) -> OwnedValue {
        OwnedValue::try_from(v).unwrap()
    }

    fn rsn(keys: &[&str]) -> OwnedValue {
        let mut d: HashMap<String, Value<'_>> = HashMap::new();
        d.insert(
            "KeyMgmt".into(),
            Value::from(keys.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        );
        ov(Value::from(d))
    }

    #[test]
    fn a_bss_decodes_with_its_security() {
        let mut p = Props::new();
        p.insert("BSSID".into(), ov(Value::from(vec![2u8, 0, 0, 0, 1, 0])));
        p.insert("SSID".into(), ov(Value::from(b"pm-psk".to_vec())));
        p.insert("Signal".into(), ov(Value::I16(-40)));
        p.insert("Frequency".into(), ov(Value::U16(2412)));
        p.insert("Privacy".into(), ov(Value::Bool(true)));
        p.insert("RSN".into(), rsn(&["wpa-psk", "sae"]));
        p.insert("WPA".into(), rsn(&[]));
        let b = bss("/b/1", &p).unwrap();
        assert_eq!(b.ssid.as_slice(), b"pm-psk");
        assert_eq!((b.signal, b.frequency), (-40, 2412));
        assert!(b.keys.psk && b.keys.sae && !b.keys.eap);
        assert_eq!(b.security(), Security::Psk);
        // Wrong types change nothing; no BSSID, no BSS.
        let mut bad = Props::new();
        bad.insert("Signal".into(), ov(Value::from("loud")));
        let mut b2 = b.clone();
        update_bss(&mut b2, &bad);
        assert_eq!(b2, b);
        assert!(bss("/b/2", &bad).is_none());
        let mut long = p.clone();
        long.insert("SSID".into(), ov(Value::from(vec![0xffu8; 40])));
        assert_eq!(bss("/b/3", &long).unwrap().ssid.len(), 32);
    }

    #[test]
    fn capabilities_say_whether_the_radio_can_be_an_access_point() {
        let caps = |modes: Option<&[&str]>| {
            let mut d: HashMap<String, Value<'static>> = HashMap::new();
            d.insert("Scan".into(), Value::from(vec!["active".to_string()]));
            if let Some(m) = modes {
                d.insert(
                    "Modes".into(),
                    Value::from(m.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                );
            }
            let mut p = Props::new();
            p.insert("Capabilities".into(), ov(Value::from(d)));
            p
        };
        let mut v = RadioView::default();
        update_interface(&mut v, &caps(Some(&["infrastructure", "ad-hoc"])));
        assert_eq!(v.ap_mode, Some(false));
        update_interface(&mut v, &caps(Some(&["infrastructure", "ap", "p2p"])));
        assert_eq!(v.ap_mode, Some(true));
        // No Modes, or Capabilities of the wrong type: what was known stays.
        update_interface(&mut v, &caps(None));
        assert_eq!(v.ap_mode, Some(true));
        let mut p = Props::new();
        p.insert("Capabilities".into(), ov(Value::from("ap")));
        let mut fresh = RadioView::default();
        update_interface(&mut fresh, &p);
        assert_eq!(fresh.ap_mode, None);
    }

    #[test]
    fn interface_properties_update_the_view() {
        let mut view = RadioView::default();
        let mut p = Props::new();
        p.insert("State".into(), ov(Value::from("4way_handshake")));
        p.insert(
            "CurrentBSS".into(),
            ov(Value::from(
                zbus::zvariant::ObjectPath::try_from("/fi/w1/wpa_supplicant1/Interfaces/1/BSSs/2")
                    .unwrap(),
            )),
        );
        p.insert("DisconnectReason".into(), ov(Value::I32(-15)));
        assert!(update_interface(&mut view, &p).is_none());
        assert_eq!(view.state, LinkState::FourWayHandshake);
        assert_eq!(view.disconnect_reason, -15);
        assert!(view.current_bss.as_deref().unwrap().ends_with("BSSs/2"));
    }

    #[test]
    fn ap_args_are_connmans_access_point() {
        let mut spec = crate::core::tether::ApSpec {
            ssid: "pm-ap".into(),
            passphrase: Some(Secret("correct horse".into())),
            freq: 2437,
            bridge: "tether".into(),
        };
        let m = ap_args(&spec);
        assert_eq!(m["ssid"], Value::from(b"pm-ap".to_vec()));
        assert_eq!(m["mode"], Value::U32(2));
        assert_eq!(m["frequency"], Value::I32(2437));
        assert_eq!(m["key_mgmt"], Value::from("WPA-PSK"));
        assert_eq!(m["proto"], Value::from("RSN"));
        assert_eq!(m["pairwise"], Value::from("CCMP"));
        assert_eq!(m["psk"], Value::from("correct horse"));
        spec.passphrase = None;
        let m = ap_args(&spec);
        assert_eq!(m["key_mgmt"], Value::from("NONE"));
        assert!(!m.contains_key("psk"));
    }

    #[test]
    fn network_args_follow_the_security() {
        let spec = |psk, sae, pass: &str| ConnectSpec {
            ssid: Ssid::from_slice(b"n").unwrap(),
            security: Security::Psk,
            sae,
            psk,
            passphrase: Some(Secret(pass.into())),
            hidden: false,
            eap: None,
        };
        let m = network_args(&spec(true, false, "correct horse"));
        assert_eq!(m["key_mgmt"], Value::from("WPA-PSK"));
        assert_eq!(m["psk"], Value::from("correct horse"));
        let m = network_args(&spec(false, true, "correct horse"));
        assert_eq!(m["key_mgmt"], Value::from("SAE"));
        assert_eq!(m["ieee80211w"], Value::U32(2));
        let m = network_args(&spec(true, true, "correct horse"));
        assert_eq!(m["key_mgmt"], Value::from("WPA-PSK SAE"));
        let m = network_args(&spec(true, false, &"ab".repeat(32)));
        assert_eq!(m["psk"], Value::from(vec![0xabu8; 32]));
    }

    #[test]
    fn an_eap_network_gets_its_provisioned_credentials() {
        let text = "[service_c]\nType=wifi\nName=corp\nEAP=ttls\nPhase2=EAP-MSCHAPV2\n\
                    Identity=alice\nAnonymousIdentity=anon\nPassphrase=s3cret\n\
                    CACertFile=/etc/ca.pem\nDomainSuffixMatch=radius.corp\n";
        let (p, w) = crate::config::provision::parse(text, "c.config");
        assert!(w.is_empty(), "{w:?}");
        let spec = ConnectSpec {
            ssid: p[0].ssid.clone(),
            security: Security::Ieee8021x,
            sae: false,
            psk: false,
            passphrase: None,
            hidden: false,
            eap: p[0].eap.clone(),
        };
        let m = network_args(&spec);
        for (k, v) in [
            ("key_mgmt", "WPA-EAP"),
            ("eap", "TTLS"),
            ("identity", "alice"),
            ("anonymous_identity", "anon"),
            ("password", "s3cret"),
            ("ca_cert", "/etc/ca.pem"),
            ("phase2", "autheap=MSCHAPV2"),
            ("domain_suffix_match", "radius.corp"),
        ] {
            assert_eq!(m[k], Value::from(v), "{k}");
        }
        assert!(!m.contains_key("psk"));
    }

    proptest! {
        #[test]
        fn any_bss_properties_decode_without_panic(
            bssid in proptest::collection::vec(any::<u8>(), 0..8),
            ssid in proptest::collection::vec(any::<u8>(), 0..64),
            signal in any::<i32>(),
            freq in any::<u32>(),
        ) {
            let mut p = Props::new();
            p.insert("BSSID".into(), ov(Value::from(bssid.clone())));
            p.insert("SSID".into(), ov(Value::from(ssid)));
            p.insert("Signal".into(), ov(Value::I32(signal)));
            p.insert("Frequency".into(), ov(Value::U32(freq)));
            let b = bss("/x", &p);
            prop_assert_eq!(b.is_some(), bssid.len() == 6);
            if let Some(b) = b {
                prop_assert!(b.ssid.len() <= 32);
            }
        }
    }
}
