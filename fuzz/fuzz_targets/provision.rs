//! Provisioning files (`src/config/provision.rs`, ConnMan's `<state-dir>/*.config`): any
//! text yields networks and warnings, never a panic; every network it yields is one pathman
//! can hand to wpa_supplicant (an SSID of 1–32 bytes that is not all NUL, a key that passes
//! the security's check, EAP credentials for 802.1X), at most `caps::MAX_PROVISIONED`, and
//! no warning's value is a PSK/WEP key (group and key names are the file's own text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::caps;
use pathman::config::provision::parse;
use pathman::config::WarningKind;
use pathman::core::tech::wifi::{check_passphrase, Security};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (nets, warnings) = parse(&text, "fuzz.config");
    assert!(nets.len() <= caps::MAX_PROVISIONED);
    for n in &nets {
        assert!(!n.ssid.is_empty() && n.ssid.iter().any(|b| *b != 0));
        match n.security {
            Security::Psk | Security::Wep => {
                let key = &n.passphrase.as_ref().expect("a key").0;
                assert!(check_passphrase(n.security, key).is_ok());
                // Values go into warnings only as BadValue's value: never a key's.
                for w in &warnings {
                    if let WarningKind::BadValue { value, .. } = &w.kind {
                        assert!(value != key, "a key in a warning: {w:?}");
                    }
                }
            }
            Security::Ieee8021x => assert!(n.eap.is_some()),
            Security::None => assert!(n.passphrase.is_none() && n.eap.is_none()),
        }
    }
});
