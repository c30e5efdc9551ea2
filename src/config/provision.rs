//! Provisioning files: ConnMan's `<state-dir>/*.config` (`doc/config-format.txt`), the
//! way a firmware image or an administrator hands pathman WiFi networks it must not ask a
//! user about — 802.1X/EAP above all. Pure: a file's text in, the networks and the
//! warnings out. A provisioned service is Immutable (only AutoConnect may change) and
//! cannot be removed over D-Bus; removing the file removes the provisioning.
//!
//! Read: `[service_<ident>]` groups with `Type=wifi`, `Name` (the SSID as text) or `SSID`
//! (hex), `Security` (none|wep|psk|ieee8021x; default: ieee8021x with `EAP`, psk with
//! `Passphrase`, else none), `Passphrase`, `Hidden`, and for EAP: `EAP` (tls|ttls|peap),
//! `Identity`, `AnonymousIdentity`, `CACertFile`, `ClientCertFile`, `PrivateKeyFile`,
//! `PrivateKeyPassphrase`, `Phase2`, `DomainSuffixMatch`, `DomainMatch`, `SubjectMatch`,
//! `AltSubjectMatch`. `[global]` (Name, Description) is accepted. Not yet: `Type=ethernet`
//! groups, the IPv4/IPv6/Nameservers/… keys (a warning says so; the network is still
//! provisioned with DHCP), `PrivateKeyPassphraseType`, and EAP credentials asked of an
//! agent (a PEAP/TTLS network needs its Identity and Passphrase in the file).

use crate::caps;
use crate::core::tech::wifi::{check_passphrase, Security, Ssid};
use crate::core::types::Secret;

use super::keyfile::KeyFile;
use super::{Warning, WarningKind};

/// The EAP methods ConnMan provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EapMethod {
    Tls,
    Ttls,
    Peap,
}

impl EapMethod {
    /// wpa_supplicant's name (`eap=`).
    pub fn wpa_name(self) -> &'static str {
        match self {
            EapMethod::Tls => "TLS",
            EapMethod::Ttls => "TTLS",
            EapMethod::Peap => "PEAP",
        }
    }
}

/// 802.1X credentials of a provisioned network.
#[derive(Debug, Clone, PartialEq)]
pub struct Eap {
    pub method: EapMethod,
    pub identity: Option<String>,
    pub anonymous_identity: Option<String>,
    pub ca_cert: Option<String>,
    pub client_cert: Option<String>,
    pub private_key: Option<String>,
    pub private_key_passphrase: Option<Secret>,
    /// The inner method (`MSCHAPV2`, `GTC`, `PAP`, `EAP-MSCHAPV2`, …).
    pub phase2: Option<String>,
    /// The password for PEAP/TTLS (the file's `Passphrase`).
    pub password: Option<Secret>,
    pub domain_suffix_match: Option<String>,
    pub domain_match: Option<String>,
    pub subject_match: Option<String>,
    pub alt_subject_match: Option<String>,
}

/// One provisioned WiFi network.
#[derive(Debug, Clone, PartialEq)]
pub struct WifiProvision {
    /// `<file stem>/<ident>`, for log lines.
    pub origin: String,
    pub ssid: Ssid,
    pub security: Security,
    /// PSK/WEP key (EAP keeps its password in [`Eap::password`]).
    pub passphrase: Option<Secret>,
    pub eap: Option<Box<Eap>>,
    pub hidden: bool,
}

const KNOWN: &[&str] = &[
    "Type",
    "Name",
    "SSID",
    "Security",
    "Passphrase",
    "Hidden",
    "EAP",
    "Identity",
    "AnonymousIdentity",
    "CACertFile",
    "ClientCertFile",
    "PrivateKeyFile",
    "PrivateKeyPassphrase",
    "Phase2",
    "DomainSuffixMatch",
    "DomainMatch",
    "SubjectMatch",
    "AltSubjectMatch",
];

/// Keys of ConnMan's format that pathman does not apply yet.
const NOT_YET: &[&str] = &[
    "IPv4",
    "IPv6",
    "IPv6.Privacy",
    "MAC",
    "DeviceName",
    "Nameservers",
    "SearchDomains",
    "Timeservers",
    "Domain",
    "mDNS",
    "PrivateKeyPassphraseType",
];

/// The WiFi networks of one provisioning file (`source`: its name, for warnings).
pub fn parse(text: &str, source: &str) -> (Vec<WifiProvision>, Vec<Warning>) {
    let stem = source
        .rsplit('/')
        .next()
        .unwrap_or(source)
        .trim_end_matches(".config");
    let (kf, mut warnings) = match KeyFile::parse(text, source) {
        Ok(x) => x,
        Err(e) => {
            let w = Warning::new(
                source,
                Some(e.line),
                WarningKind::Corrupt {
                    reason: e.to_string(),
                },
            );
            return (Vec::new(), vec![w]);
        }
    };
    let mut out = Vec::new();
    for group in kf.groups() {
        let Some(ident) = group.strip_prefix("service_") else {
            if group != "global" {
                warnings.push(Warning::new(
                    source,
                    None,
                    WarningKind::UnknownGroup {
                        group: group.to_string(),
                    },
                ));
            }
            continue;
        };
        if out.len() == caps::MAX_PROVISIONED {
            warnings.push(Warning::new(
                source,
                None,
                WarningKind::TooMany {
                    group: group.to_string(),
                    key: "[service_*]".into(),
                    cap: caps::MAX_PROVISIONED,
                },
            ));
            break;
        }
        match service(
            &kf,
            group,
            &format!("{stem}/{ident}"),
            source,
            &mut warnings,
        ) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => {}
            Err((key, value, reason)) => warnings.push(Warning::new(
                source,
                kf.line_of(group, key),
                WarningKind::BadValue {
                    group: group.to_string(),
                    key: key.to_string(),
                    value,
                    reason: format!("{reason}; the network is not provisioned"),
                },
            )),
        }
    }
    // One network, one provisioning: the first file/group wins.
    let mut seen: Vec<(Ssid, Security)> = Vec::new();
    out.retain(|p| {
        let k = (p.ssid.clone(), p.security);
        let dup = seen.contains(&k);
        seen.push(k);
        dup.then(|| log::warn!("{}: provisioned twice; the first one is used", p.origin));
        !dup
    });
    (out, warnings)
}

type Bad = (&'static str, String, String);

fn service(
    kf: &KeyFile,
    group: &str,
    origin: &str,
    source: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<WifiProvision>, Bad> {
    let get = |k: &str| kf.get_string(group, k).filter(|v| !v.is_empty());
    for key in kf.keys(group) {
        if NOT_YET.contains(&key) {
            warnings.push(Warning::new(
                source,
                kf.line_of(group, key),
                WarningKind::BadValue {
                    group: group.to_string(),
                    key: key.to_string(),
                    value: String::new(),
                    reason: "not applied by pathman yet (the network uses DHCP/auto)".into(),
                },
            ));
        } else if !KNOWN.contains(&key) {
            warnings.push(Warning::new(
                source,
                kf.line_of(group, key),
                WarningKind::UnknownKey {
                    group: group.to_string(),
                    key: key.to_string(),
                },
            ));
        }
    }
    match get("Type").as_deref() {
        Some("wifi") => {}
        Some("ethernet") => {
            warnings.push(Warning::new(
                source,
                kf.line_of(group, "Type"),
                WarningKind::BadValue {
                    group: group.to_string(),
                    key: "Type".into(),
                    value: "ethernet".into(),
                    reason: "ethernet provisioning is not supported yet; ignored".into(),
                },
            ));
            return Ok(None);
        }
        other => {
            return Err((
                "Type",
                other.unwrap_or("").to_string(),
                "must be wifi".into(),
            ))
        }
    }
    let ssid = match (get("SSID"), get("Name")) {
        (Some(hex), _) => {
            let bytes = decode_hex(&hex).ok_or(("SSID", hex.clone(), "not hex".to_string()))?;
            Ssid::from_slice(&bytes).map_err(|_| ("SSID", hex, "longer than 32 bytes".into()))?
        }
        (None, Some(name)) => Ssid::from_slice(name.as_bytes())
            .map_err(|_| ("Name", name, "longer than 32 bytes".to_string()))?,
        (None, None) => return Err(("Name", String::new(), "no Name or SSID".into())),
    };
    if ssid.iter().all(|b| *b == 0) {
        return Err(("SSID", String::new(), "all NUL bytes".into()));
    }
    let passphrase = get("Passphrase").map(Secret);
    let eap_name = get("EAP");
    let security = match get("Security") {
        Some(s) => {
            Security::parse(&s).ok_or(("Security", s, "not none|wep|psk|ieee8021x".into()))?
        }
        None if eap_name.is_some() => Security::Ieee8021x,
        None if passphrase.is_some() => Security::Psk,
        None => Security::None,
    };
    let hidden = kf
        .get_bool(group, "Hidden")
        .map_err(|e| ("Hidden", String::new(), e.to_string()))?
        .unwrap_or(false);
    let mut out = WifiProvision {
        origin: origin.to_string(),
        ssid,
        security,
        passphrase: None,
        eap: None,
        hidden,
    };
    match security {
        Security::None => {}
        Security::Psk | Security::Wep => {
            let p = passphrase.ok_or(("Passphrase", String::new(), "missing".to_string()))?;
            // The reason names lengths only: the key itself never reaches a log line.
            check_passphrase(security, &p.0).map_err(|why| ("Passphrase", "…".into(), why))?;
            out.passphrase = Some(p);
        }
        Security::Ieee8021x => {
            let name = eap_name.ok_or(("EAP", String::new(), "missing".to_string()))?;
            let method = match name.as_str() {
                "tls" => EapMethod::Tls,
                "ttls" => EapMethod::Ttls,
                "peap" => EapMethod::Peap,
                _ => return Err(("EAP", name, "not tls|ttls|peap".into())),
            };
            let path = |k: &'static str| -> Result<Option<String>, Bad> {
                match get(k) {
                    Some(p) if !p.starts_with('/') => Err((k, p, "not an absolute path".into())),
                    Some(p) if p.len() > caps::MAX_PROVISION_VALUE_LEN || p.contains('\0') => {
                        Err((k, String::new(), "too long".into()))
                    }
                    other => Ok(other),
                }
            };
            let text = |k: &'static str| -> Result<Option<String>, Bad> {
                match get(k) {
                    Some(v) if v.len() > caps::MAX_PROVISION_VALUE_LEN => {
                        Err((k, String::new(), "too long".into()))
                    }
                    Some(v) if v.chars().any(|c| c.is_control()) => {
                        Err((k, String::new(), "contains a control character".into()))
                    }
                    other => Ok(other),
                }
            };
            let eap = Eap {
                method,
                identity: text("Identity")?,
                anonymous_identity: text("AnonymousIdentity")?,
                ca_cert: path("CACertFile")?,
                client_cert: path("ClientCertFile")?,
                private_key: path("PrivateKeyFile")?,
                private_key_passphrase: text("PrivateKeyPassphrase")?.map(Secret),
                phase2: text("Phase2")?,
                password: None,
                domain_suffix_match: text("DomainSuffixMatch")?,
                domain_match: text("DomainMatch")?,
                subject_match: text("SubjectMatch")?,
                alt_subject_match: text("AltSubjectMatch")?,
            };
            let mut eap = eap;
            match method {
                EapMethod::Tls => {
                    if eap.client_cert.is_none() || eap.private_key.is_none() {
                        return Err((
                            "ClientCertFile",
                            String::new(),
                            "EAP-TLS needs ClientCertFile and PrivateKeyFile".into(),
                        ));
                    }
                }
                EapMethod::Ttls | EapMethod::Peap => {
                    if eap.identity.is_none() {
                        return Err(("Identity", String::new(), "missing".into()));
                    }
                    let p = text("Passphrase")?.ok_or((
                        "Passphrase",
                        String::new(),
                        "missing".to_string(),
                    ))?;
                    eap.password = Some(Secret(p));
                }
            }
            if eap.identity.is_none() {
                // wpa_supplicant needs one for TLS too; ConnMan's default.
                eap.identity = Some("anonymous".into());
            }
            out.eap = Some(Box::new(eap));
        }
    }
    Ok(Some(out))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PEAP: &str = "[global]\nName=corp\n\n[service_corp]\nType=wifi\nName=corp-wifi\nEAP=peap\nCACertFile=/etc/ssl/corp-ca.pem\nPhase2=MSCHAPV2\nIdentity=alice\nPassphrase=s3cret\n";

    #[test]
    fn a_peap_network_is_provisioned() {
        let (p, w) = parse(PEAP, "/var/lib/pathman/corp.config");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.origin, "corp/corp");
        assert_eq!(p.ssid.as_slice(), b"corp-wifi");
        assert_eq!(p.security, Security::Ieee8021x);
        let eap = p.eap.as_ref().unwrap();
        assert_eq!(eap.method, EapMethod::Peap);
        assert_eq!(eap.identity.as_deref(), Some("alice"));
        assert_eq!(eap.password.as_ref().unwrap().0, "s3cret");
        assert_eq!(eap.ca_cert.as_deref(), Some("/etc/ssl/corp-ca.pem"));
        assert_eq!(eap.phase2.as_deref(), Some("MSCHAPV2"));
        assert!(
            !format!("{p:?}").contains("s3cret"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn psk_open_hex_ssid_and_hidden() {
        let text = "[service_a]\nType=wifi\nSSID=00ff41\nPassphrase=correct horse\nHidden=true\n\
                    [service_b]\nType=wifi\nName=cafe\n";
        let (p, w) = parse(text, "x.config");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(p[0].ssid.as_slice(), &[0, 0xff, 0x41]);
        assert_eq!(p[0].security, Security::Psk);
        assert!(p[0].hidden);
        assert_eq!(p[1].security, Security::None);
        assert!(p[1].passphrase.is_none());
    }

    #[test]
    fn bad_groups_are_refused_with_a_reason_and_the_rest_stays() {
        let text = "[service_1]\nType=wifi\nName=short\nPassphrase=abc\n\
                    [service_2]\nType=wifi\nName=tls\nEAP=tls\nIdentity=x\n\
                    [service_3]\nType=wifi\nName=rel\nEAP=peap\nIdentity=x\nPassphrase=p\nCACertFile=ca.pem\n\
                    [service_4]\nType=wifi\nName=md5\nEAP=md5\n\
                    [service_5]\nType=wifi\nSSID=zz\n\
                    [service_6]\nType=wifi\nName=ok\nIPv4=10.0.0.2/24/10.0.0.1\nColour=blue\n\
                    [service_7]\nType=ethernet\nMAC=02:00:00:00:00:01\n\
                    [service_8]\nName=notype\n\
                    [other]\nx=y\n";
        let (p, w) = parse(text, "bad.config");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].ssid.as_slice(), b"ok");
        let says = |key: &str| {
            w.iter().any(|w| match &w.kind {
                WarningKind::BadValue { key: k, .. } | WarningKind::UnknownKey { key: k, .. } => {
                    k == key
                }
                _ => false,
            })
        };
        for key in [
            "Passphrase",
            "ClientCertFile",
            "CACertFile",
            "EAP",
            "SSID",
            "IPv4",
            "Colour",
            "Type",
        ] {
            assert!(says(key), "no warning for {key}: {w:?}");
        }
        assert!(w
            .iter()
            .any(|w| matches!(&w.kind, WarningKind::UnknownGroup { group } if group == "other")));
        assert!(!format!("{w:?}").contains("abc"), "a key reached a warning");
    }

    #[test]
    fn a_corrupt_file_provisions_nothing() {
        let (p, w) = parse("[service_x\nType=wifi\n", "c.config");
        assert!(p.is_empty());
        assert!(matches!(w[0].kind, WarningKind::Corrupt { .. }));
    }

    #[test]
    fn the_same_network_twice_keeps_the_first() {
        let text = "[service_a]\nType=wifi\nName=n\n[service_b]\nType=wifi\nName=n\n";
        let (p, _) = parse(text, "d.config");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].origin, "d/a");
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panic_and_within_caps(text in "(\\[service_[a-z]{0,3}\\]\n|Type=wifi\n|Name=[ -~]{0,40}\n|SSID=[0-9a-f]{0,70}\n|EAP=(peap|tls|x)\n|Identity=[a-z]{0,3}\n|Passphrase=[ -~]{0,70}\n|Security=[a-z]{0,9}\n|[ -~]{0,20}\n){0,40}") {
            let (p, _) = parse(&text, "p.config");
            prop_assert!(p.len() <= caps::MAX_PROVISIONED);
            for x in &p {
                prop_assert!(!x.ssid.is_empty() && x.ssid.len() <= 32);
                match x.security {
                    Security::Psk | Security::Wep => {
                        prop_assert!(check_passphrase(x.security, &x.passphrase.as_ref().unwrap().0).is_ok())
                    }
                    Security::Ieee8021x => prop_assert!(x.eap.is_some()),
                    Security::None => prop_assert!(x.passphrase.is_none()),
                }
            }
        }
    }
}
