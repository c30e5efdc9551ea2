//! `/etc/pathman/main.conf`: ConnMan's `[General]` keys that apply to pathman
//! (reference/connman.md §4.7) plus pathman's own (SPEC §9).
//!
//! Lenient by design, as ConnMan is: a missing file means defaults; an
//! unreadable or unparsable file, an unknown group or key, or a bad value
//! gives a [`Warning`] (also logged) and the default for what was wrong. ConnMan
//! keys pathman does not implement (tethering, WiFi scanning, …) are logged at
//! info level only, so a copied ConnMan main.conf does not produce warnings.
//!
//! Lists use `,` as in ConnMan's main.conf (`;` is accepted too: GLib's own
//! separator, which some hand-written files use).
//!
//! Defaults that differ from ConnMan (SPEC wins): `DefaultAutoConnectTechnologies`
//! includes `gadget`, because SPEC §3 has gadget services auto-connect.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::keyfile::{KeyFile, ValueError};
use super::{Warning, WarningKind};
use crate::caps;
use crate::core::types::{MptcpLink, ServerList, Technology, TimeserverList};
use crate::core::validate::{check_server_addr, parse_timeserver};

/// The only group main.conf has.
const GENERAL: &str = "General";

/// The key of the default MultipathTcpLink: the Service property's name,
/// so one setting has one name everywhere.
pub const MPTCP_LINK_KEY: &str = "MultipathTcpLink";
/// Its former name, still read (with a deprecation warning).
pub const MPTCP_LINK_ALIAS: &str = "MptcpLink";

/// Every key main.conf has (besides [`CONNMAN_IGNORED_KEYS`] and the
/// deprecated [`MPTCP_LINK_ALIAS`]), in the order
/// `board-configs/main.conf.example` documents them.
pub const KEYS: &[&str] = &[
    "NetworkInterfaceBlacklist",
    "PreferredTechnologies",
    "DefaultAutoConnectTechnologies",
    "FallbackNameservers",
    "FallbackTimeservers",
    "AllowHostnameUpdates",
    "AllowDomainnameUpdates",
    "SingleConnectedTechnology",
    "ResolvConf",
    "EnableOnlineCheck",
    "OnlineCheckMode",
    "OnlineCheckIPv4URL",
    "OnlineCheckIPv6URL",
    "OnlineCheckConnectTimeout",
    "OnlineCheckInitialInterval",
    "OnlineCheckMaxInterval",
    "OnlineCheckFailuresThreshold",
    "OnlineCheckSuccessesThreshold",
    "OnlineCheckIntervalStyle",
    "AutoConnectRoamingServices",
    "PersistentTetheringMode",
    "TetheringBridge",
    "TetheringLeaseTime",
    "TetheringFastPath",
    "TetheringTechnologies",
    "MultipathRouting",
    MPTCP_LINK_KEY,
    "MptcpEndpointFlags",
    "MptcpManageLimits",
    "MeteredCellular",
    "RulePriorityBase",
    "AdminGroup",
    "SetClock",
    "EnableTimeSync",
    "Localtime",
    "ZoneinfoDir",
];

/// ConnMan keys that pathman reads without acting on them (nothing to do on a
/// router without radios pathman drives, or superseded by pathman's design).
pub const CONNMAN_IGNORED_KEYS: &[&str] = &[
    "InputRequestTimeout",
    "BrowserLaunchTimeout",
    "BackgroundScanning",
    "UseGatewaysAsTimeservers",
    "DefaultFavoriteTechnologies",
    "AlwaysConnectedTechnologies",
    "Enable6to4",
    "VendorClassID",
    "EnableOnlineToReadyTransition",
    "RegdomFollowsTimezone",
];

/// ConnMan technology names pathman has no technology for; skipped in lists
/// without a warning so a copied ConnMan main.conf stays quiet.
const CONNMAN_OTHER_TECHNOLOGIES: &[&str] = &["bluetooth", "p2p", "vpn", "wimax"];

/// Where pathman writes resolv.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ResolvConf {
    /// `<run-dir>/resolv.conf` (the key is unset).
    #[default]
    RunDir,
    /// An explicit path.
    Path(PathBuf),
    /// `/dev/null`: pathman writes no resolv.conf.
    Disabled,
}

impl ResolvConf {
    /// The file to write, given the daemon's run dir; `None` when disabled.
    pub fn path(&self, run_dir: &Path) -> Option<PathBuf> {
        match self {
            ResolvConf::RunDir => Some(run_dir.join("resolv.conf")),
            ResolvConf::Path(p) => Some(p.clone()),
            ResolvConf::Disabled => None,
        }
    }
}

/// Extra MPTCP endpoint flags (besides `subflow`/`backup`, which follow each
/// service's MultipathTcpLink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MptcpEndpointFlags {
    /// Announce the address to the peer (ADD_ADDR).
    pub signal: bool,
    /// Create a subflow to every peer address from this endpoint.
    pub fullmesh: bool,
}

/// ConnMan's `OnlineCheckMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnlineCheckMode {
    /// No online check; services stop at ready.
    None,
    /// Check once after ready.
    #[default]
    OneShot,
    /// Keep checking while connected.
    Continuous,
}

/// ConnMan's `OnlineCheckIntervalStyle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntervalStyle {
    /// Interval grows along the Fibonacci sequence.
    Fibonacci,
    /// Interval grows as the square of the attempt.
    #[default]
    Geometric,
}

/// Online check settings, stored for the online check (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineCheckConf {
    pub mode: OnlineCheckMode,
    pub ipv4_url: String,
    pub ipv6_url: String,
    /// Milliseconds; 0 = the client's default.
    pub connect_timeout_ms: u32,
    /// Seconds.
    pub initial_interval: u32,
    /// Seconds.
    pub max_interval: u32,
    pub failures_threshold: u32,
    pub successes_threshold: u32,
    pub interval_style: IntervalStyle,
}

impl Default for OnlineCheckConf {
    fn default() -> Self {
        OnlineCheckConf {
            mode: OnlineCheckMode::OneShot,
            ipv4_url: "http://ipv4.connman.net/online/status.html".to_string(),
            ipv6_url: "http://ipv6.connman.net/online/status.html".to_string(),
            connect_timeout_ms: 0,
            initial_interval: 1,
            max_interval: 12,
            failures_threshold: 6,
            successes_threshold: 6,
            interval_style: IntervalStyle::Geometric,
        }
    }
}

/// Daemon-wide settings from main.conf (and, under it, the board config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainConf {
    /// Interface name prefixes never managed.
    pub network_interface_blacklist: Vec<String>,
    /// Technologies preferred for the default route, in order.
    pub preferred_technologies: Vec<Technology>,
    /// Technologies whose new services auto-connect.
    pub default_auto_connect_technologies: Vec<Technology>,
    /// Nameservers used when no service provides any (numeric only).
    pub fallback_nameservers: ServerList,
    /// Timeservers used when no service provides any (names or addresses).
    pub fallback_timeservers: TimeserverList,
    pub allow_hostname_updates: bool,
    pub allow_domainname_updates: bool,
    /// Stored for the D-Bus layer; pathman does not act on it (multipath
    /// wants several technologies connected).
    pub single_connected_technology: bool,
    pub resolv_conf: ResolvConf,
    pub online_check: OnlineCheckConf,
    /// Default of every service's MultipathRouting (SPEC §4).
    pub multipath_routing: bool,
    /// Default of every service's MultipathTcpLink (key `MultipathTcpLink`,
    /// formerly `MptcpLink`).
    pub default_mptcp_link: MptcpLink,
    pub mptcp_endpoint_flags: MptcpEndpointFlags,
    /// Set the kernel's MPTCP limits to the number of endpoints.
    pub mptcp_manage_limits: bool,
    /// First of the three rule priority bands (SPEC §4).
    pub rule_priority_base: u32,
    /// Group whose members may change settings over D-Bus (SPEC §8).
    pub admin_group: Option<String>,
    /// ARP-probe a DHCP address before using it and decline it when another host has it
    /// (ConnMan's key; pathman's default is on, ConnMan's off).
    pub address_conflict_detection: bool,
    /// Whether pathman sets the system clock from SNTP (`SetClock`, default
    /// true). Off, it measures and reports (`TimeserverSynced`, `Time`) but
    /// never touches the clock; tests and benchmarks always turn it off.
    pub set_clock: bool,
    /// Whether pathman runs its SNTP client at all (`EnableTimeSync`,
    /// default true). Off, another daemon (OpenWrt's sysntpd, chronyd) keeps
    /// time and pathman sends no NTP packet; the Clock API still answers.
    pub time_sync: bool,
    /// Cellular services auto-connect while roaming (ConnMan's
    /// `AutoConnectRoamingServices`, default false; oFono's RoamingAllowed
    /// must allow roaming too).
    pub auto_connect_roaming: bool,
    /// Cellular is a metered backup (`MeteredCellular`, default true): its
    /// MPTCP endpoints are backups and its online check probes rarely. Off,
    /// it is an uplink like the others (it still ranks below wired and WiFi,
    /// ConnMan's technology order, unless PreferredTechnologies says otherwise).
    pub metered_cellular: bool,
    /// Tethering is switched back on at start as it was left
    /// (`PersistentTetheringMode`, ConnMan's key, default false).
    pub persistent_tethering: bool,
    /// The tethering bridge's name (`TetheringBridge`, default `tether`).
    pub tethering_bridge: String,
    /// Lease time the tethering DHCP server gives, in seconds
    /// (`TetheringLeaseTime`, default 86400: ConnMan's 24 h; 30–604800).
    pub tethering_lease_secs: u32,
    /// Tethered clients' forwarded flows take the kernel's flowtable fast path
    /// (`TetheringFastPath`, default true). Off, they are NATed without one:
    /// no flowtable, no `fastpath` chain.
    pub tethering_fast_path: bool,
    /// The technologies that may tether (`TetheringTechnologies`, ConnMan's
    /// key; default wifi, gadget and ethernet: ConnMan's wifi, bluetooth,
    /// gadget, plus ethernet, which tethers only the board config's LAN ports).
    /// Empty: nothing tethers, no DHCP server ever runs.
    pub tethering_technologies: Vec<Technology>,
    /// The zoneinfo link `Clock.Timezone` writes (ConnMan's `Localtime`).
    pub localtime: PathBuf,
    /// Where the tzdata zones are (`ZoneinfoDir`).
    pub zoneinfo_dir: PathBuf,
}

impl Default for MainConf {
    fn default() -> Self {
        MainConf {
            network_interface_blacklist: ["vmnet", "vboxnet", "virbr", "ifb", "ve-", "vb-", "ham"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            preferred_technologies: Vec::new(),
            default_auto_connect_technologies: vec![
                Technology::Ethernet,
                Technology::Gadget,
                Technology::Wifi,
                Technology::Cellular,
            ],
            fallback_nameservers: ServerList::new(),
            fallback_timeservers: TimeserverList::new(),
            allow_hostname_updates: true,
            allow_domainname_updates: true,
            single_connected_technology: false,
            resolv_conf: ResolvConf::RunDir,
            online_check: OnlineCheckConf::default(),
            multipath_routing: false,
            default_mptcp_link: MptcpLink::On,
            mptcp_endpoint_flags: MptcpEndpointFlags::default(),
            mptcp_manage_limits: true,
            rule_priority_base: caps::RULE_PRIORITY_BASE,
            admin_group: None,
            address_conflict_detection: true,
            set_clock: true,
            time_sync: true,
            auto_connect_roaming: false,
            metered_cellular: true,
            persistent_tethering: false,
            tethering_bridge: "tether".into(),
            tethering_lease_secs: 86_400,
            tethering_fast_path: true,
            tethering_technologies: vec![
                Technology::Wifi,
                Technology::Gadget,
                Technology::Ethernet,
            ],
            localtime: PathBuf::from("/etc/localtime"),
            zoneinfo_dir: PathBuf::from("/usr/share/zoneinfo"),
        }
    }
}

/// A rule priority base that leaves no room for the three bands below the
/// `main` table's rule (32766), or collides with the `local` rule (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulePriorityBaseError(pub u32);

impl RulePriorityBaseError {
    /// Largest usable base: three bands end below 32766.
    pub const MAX: u32 = 32766 - 3 * caps::RULE_BAND_STEP;
}

impl std::fmt::Display for RulePriorityBaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule priority base {} out of range 1..={} (three bands of {} must fit below 32766)",
            self.0,
            RulePriorityBaseError::MAX,
            caps::RULE_BAND_STEP
        )
    }
}

impl std::error::Error for RulePriorityBaseError {}

/// Checks a rule priority base (main.conf `RulePriorityBase`).
pub fn check_rule_priority_base(base: u32) -> Result<u32, RulePriorityBaseError> {
    if (1..=RulePriorityBaseError::MAX).contains(&base) {
        Ok(base)
    } else {
        Err(RulePriorityBaseError(base))
    }
}

/// Splits a main.conf list: `,` (ConnMan) or `;` (GLib), empty items dropped.
pub(crate) fn conf_list(kf: &KeyFile, group: &str, key: &str) -> Option<Vec<String>> {
    let raw = kf.get_raw(group, key)?;
    let sep = if raw.contains(',') { ',' } else { ';' };
    let items = kf.get_list(group, key, sep)?;
    Some(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Parses a technology list; unknown names are reported in `bad`.
pub(crate) fn technology_list(items: &[String], bad: &mut Vec<String>) -> Vec<Technology> {
    let mut out = Vec::new();
    for item in items {
        match Technology::parse(item) {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None if CONNMAN_OTHER_TECHNOLOGIES.contains(&item.as_str()) => {
                log::info!("technology {item} is not supported by pathman, ignored");
            }
            None => bad.push(item.clone()),
        }
    }
    out
}

/// Collects warnings while reading one file.
struct Reader<'a> {
    kf: &'a KeyFile,
    source: &'a str,
    warnings: Vec<Warning>,
}

impl Reader<'_> {
    fn bad(&mut self, key: &str, value: &str, reason: impl Into<String>) {
        let w = Warning::new(
            self.source,
            self.kf.line_of(GENERAL, key),
            WarningKind::BadValue {
                group: GENERAL.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                reason: reason.into(),
            },
        );
        self.warnings.push(w.logged());
    }

    fn too_many(&mut self, key: &str) {
        let w = Warning::new(
            self.source,
            self.kf.line_of(GENERAL, key),
            WarningKind::TooMany {
                group: GENERAL.to_string(),
                key: key.to_string(),
                cap: caps::MAX_SERVERS,
            },
        );
        self.warnings.push(w.logged());
    }

    fn deprecated(&mut self, key: &str, replacement: &'static str) {
        let w = Warning::new(
            self.source,
            self.kf.line_of(GENERAL, key),
            WarningKind::Deprecated {
                group: GENERAL.to_string(),
                key: key.to_string(),
                replacement,
            },
        );
        self.warnings.push(w.logged());
    }

    fn value_error(&mut self, e: ValueError, key: &str) {
        let w = e.to_warning(self.source, self.kf.line_of(GENERAL, key));
        self.warnings.push(w.logged());
    }

    fn bool(&mut self, key: &str, slot: &mut bool) {
        match self.kf.get_bool(GENERAL, key) {
            Ok(Some(v)) => *slot = v,
            Ok(None) => {}
            Err(e) => self.value_error(e, key),
        }
    }

    fn u32(&mut self, key: &str, slot: &mut u32) {
        match self.kf.get_u32(GENERAL, key) {
            Ok(Some(v)) => *slot = v,
            Ok(None) => {}
            Err(e) => self.value_error(e, key),
        }
    }

    fn string(&mut self, key: &str) -> String {
        self.kf.get_string(GENERAL, key).unwrap_or_default()
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        conf_list(self.kf, GENERAL, key).unwrap_or_default()
    }

    fn technologies(&mut self, key: &str, slot: &mut Vec<Technology>) {
        let items = self.list(key);
        let mut bad = Vec::new();
        let techs = technology_list(&items, &mut bad);
        for b in bad {
            self.bad(key, &b, "unknown technology, skipped");
        }
        *slot = techs;
    }

    fn enum_value<T>(
        &mut self,
        key: &str,
        slot: &mut T,
        parse: fn(&str) -> Option<T>,
        expected: &str,
    ) {
        let value = self.string(key);
        match parse(&value) {
            Some(v) => *slot = v,
            None => self.bad(key, &value, format!("expected {expected}")),
        }
    }
}

impl MainConf {
    /// Parses main.conf text over `base` (defaults with the board's defaults
    /// applied): keys main.conf sets win, the others keep `base`'s value.
    /// `source` names the file in warnings. Reading the file is
    /// [`crate::config::load`]'s job.
    pub fn parse_over(base: MainConf, bytes: &[u8], source: &str) -> (MainConf, Vec<Warning>) {
        let (kf, warnings) = match KeyFile::parse_bytes(bytes, source) {
            Ok(parsed) => parsed,
            Err(e) => {
                let w = Warning::new(
                    source,
                    Some(e.line),
                    WarningKind::Corrupt {
                        reason: e.to_string(),
                    },
                );
                return (base, vec![w.logged()]);
            }
        };
        let mut r = Reader {
            kf: &kf,
            source,
            warnings,
        };
        let mut conf = base;
        for group in kf.groups().filter(|g| *g != GENERAL) {
            let w = Warning::new(
                source,
                None,
                WarningKind::UnknownGroup {
                    group: group.to_string(),
                },
            );
            r.warnings.push(w.logged());
        }
        let has_new_name = kf.get_raw(GENERAL, MPTCP_LINK_KEY).is_some();
        for key in kf.keys(GENERAL) {
            if key == MPTCP_LINK_ALIAS {
                r.deprecated(key, MPTCP_LINK_KEY);
                if has_new_name {
                    // Both spellings: the current name wins wherever it is.
                    continue;
                }
                conf.apply_key(&mut r, MPTCP_LINK_KEY, key);
                continue;
            }
            conf.apply_key(&mut r, key, key);
        }
        (conf, r.warnings)
    }

    /// Applies the key `written` (as it appears in the file) under the name
    /// `name` (the same, except for a deprecated alias).
    fn apply_key(&mut self, r: &mut Reader<'_>, name: &str, written: &str) {
        let key = written;
        let oc = &mut self.online_check;
        match name {
            "NetworkInterfaceBlacklist" => self.network_interface_blacklist = r.list(key),
            "PreferredTechnologies" => r.technologies(key, &mut self.preferred_technologies),
            "DefaultAutoConnectTechnologies" => {
                r.technologies(key, &mut self.default_auto_connect_technologies)
            }
            "FallbackNameservers" => {
                let mut servers = ServerList::new();
                for item in r.list(key) {
                    let ip = match item.parse::<IpAddr>() {
                        Ok(ip) => ip,
                        Err(_) => {
                            r.bad(key, &item, "not an IP address, skipped");
                            continue;
                        }
                    };
                    if let Err(why) = check_server_addr(ip) {
                        r.bad(key, &item, format!("{why}, skipped"));
                        continue;
                    }
                    if !servers.contains(&ip) && servers.push(ip).is_err() {
                        r.too_many(key);
                        break;
                    }
                }
                self.fallback_nameservers = servers;
            }
            "FallbackTimeservers" => {
                let mut servers = TimeserverList::new();
                for item in r.list(key) {
                    match parse_timeserver(&item) {
                        Err(why) => r.bad(key, &item, format!("{why}, skipped")),
                        Ok(t) if servers.contains(&t) => {}
                        Ok(t) => {
                            if servers.push(t).is_err() {
                                r.too_many(key);
                                break;
                            }
                        }
                    }
                }
                self.fallback_timeservers = servers;
            }
            "AllowHostnameUpdates" => r.bool(key, &mut self.allow_hostname_updates),
            "AllowDomainnameUpdates" => r.bool(key, &mut self.allow_domainname_updates),
            "SingleConnectedTechnology" => r.bool(key, &mut self.single_connected_technology),
            "ResolvConf" => {
                let value = r.string(key);
                self.resolv_conf = match value.as_str() {
                    "" => ResolvConf::RunDir,
                    "/dev/null" => ResolvConf::Disabled,
                    p if p.starts_with('/') => ResolvConf::Path(PathBuf::from(p)),
                    _ => {
                        r.bad(key, &value, "expected an absolute path");
                        return;
                    }
                };
            }
            "EnableOnlineCheck" => {
                let mut enabled = oc.mode != OnlineCheckMode::None;
                r.bool(key, &mut enabled);
                // The deprecated switch only turns the check off; an explicit
                // OnlineCheckMode elsewhere in the file still wins when later.
                if !enabled {
                    oc.mode = OnlineCheckMode::None;
                }
            }
            "OnlineCheckMode" => r.enum_value(
                key,
                &mut oc.mode,
                |s| match s {
                    "none" => Some(OnlineCheckMode::None),
                    "one-shot" => Some(OnlineCheckMode::OneShot),
                    "continuous" => Some(OnlineCheckMode::Continuous),
                    _ => None,
                },
                "none, one-shot or continuous",
            ),
            "OnlineCheckIPv4URL" => oc.ipv4_url = r.string(key),
            "OnlineCheckIPv6URL" => oc.ipv6_url = r.string(key),
            "OnlineCheckConnectTimeout" => r.u32(key, &mut oc.connect_timeout_ms),
            "OnlineCheckInitialInterval" => r.u32(key, &mut oc.initial_interval),
            "OnlineCheckMaxInterval" => r.u32(key, &mut oc.max_interval),
            "OnlineCheckFailuresThreshold" => r.u32(key, &mut oc.failures_threshold),
            "OnlineCheckSuccessesThreshold" => r.u32(key, &mut oc.successes_threshold),
            "OnlineCheckIntervalStyle" => r.enum_value(
                key,
                &mut oc.interval_style,
                |s| match s {
                    "fibonacci" => Some(IntervalStyle::Fibonacci),
                    "geometric" => Some(IntervalStyle::Geometric),
                    _ => None,
                },
                "fibonacci or geometric",
            ),
            "MultipathRouting" => r.bool(key, &mut self.multipath_routing),
            MPTCP_LINK_KEY => r.enum_value(
                key,
                &mut self.default_mptcp_link,
                MptcpLink::parse,
                "on, backup or off",
            ),
            "MptcpEndpointFlags" => {
                let mut flags = MptcpEndpointFlags::default();
                for item in r.list(key) {
                    match item.as_str() {
                        "signal" => flags.signal = true,
                        "fullmesh" => flags.fullmesh = true,
                        _ => {
                            r.bad(key, &item, "expected signal or fullmesh");
                            return;
                        }
                    }
                }
                self.mptcp_endpoint_flags = flags;
            }
            "MptcpManageLimits" => r.bool(key, &mut self.mptcp_manage_limits),
            "AddressConflictDetection" => r.bool(key, &mut self.address_conflict_detection),
            "SetClock" => r.bool(key, &mut self.set_clock),
            "EnableTimeSync" => r.bool(key, &mut self.time_sync),
            "AutoConnectRoamingServices" => r.bool(key, &mut self.auto_connect_roaming),
            "MeteredCellular" => r.bool(key, &mut self.metered_cellular),
            "PersistentTetheringMode" => r.bool(key, &mut self.persistent_tethering),
            "TetheringFastPath" => r.bool(key, &mut self.tethering_fast_path),
            "TetheringTechnologies" => r.technologies(key, &mut self.tethering_technologies),
            "TetheringBridge" => {
                let value = r.string(key);
                if crate::core::types::IfName::try_from(value.as_str()).is_err()
                    || value.is_empty()
                    || value.contains(['/', ' ', ':'])
                {
                    r.bad(key, &value, "expected an interface name (1-15 characters)");
                    return;
                }
                self.tethering_bridge = value;
            }
            "Localtime" | "ZoneinfoDir" => {
                let value = r.string(key);
                if !value.starts_with('/') {
                    r.bad(key, &value, "expected an absolute path");
                    return;
                }
                let slot = if key == "Localtime" {
                    &mut self.localtime
                } else {
                    &mut self.zoneinfo_dir
                };
                *slot = PathBuf::from(value);
            }
            "RulePriorityBase" => {
                let mut base = self.rule_priority_base;
                r.u32(key, &mut base);
                match check_rule_priority_base(base) {
                    Ok(b) => self.rule_priority_base = b,
                    Err(e) => r.bad(key, &base.to_string(), e.to_string()),
                }
            }
            "TetheringLeaseTime" => {
                let mut secs = self.tethering_lease_secs;
                r.u32(key, &mut secs);
                if (30..=604_800).contains(&secs) {
                    self.tethering_lease_secs = secs;
                } else {
                    r.bad(key, &secs.to_string(), "expected 30 to 604800 seconds");
                }
            }
            "AdminGroup" => {
                let value = r.string(key);
                self.admin_group = (!value.is_empty()).then_some(value);
            }
            k if CONNMAN_IGNORED_KEYS.contains(&k) => {
                log::info!("{}: ConnMan key {k} is not used by pathman", r.source);
            }
            _ => {
                let w = Warning::new(
                    r.source,
                    r.kf.line_of(GENERAL, key),
                    WarningKind::UnknownKey {
                        group: GENERAL.to_string(),
                        key: key.to_string(),
                    },
                );
                r.warnings.push(w.logged());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn parse(text: &str) -> (MainConf, Vec<Warning>) {
        MainConf::parse_over(MainConf::default(), text.as_bytes(), "main.conf")
    }

    #[test]
    fn defaults() {
        let c = MainConf::default();
        assert_eq!(c.network_interface_blacklist.len(), 7);
        assert!(!c.multipath_routing);
        assert!(c.mptcp_manage_limits);
        assert_eq!(c.rule_priority_base, caps::RULE_PRIORITY_BASE);
        assert!(check_rule_priority_base(c.rule_priority_base).is_ok());
        assert_eq!(
            c.resolv_conf.path(Path::new("/run/pathman")),
            Some(PathBuf::from("/run/pathman/resolv.conf"))
        );
    }

    #[test]
    fn every_key() {
        let (c, w) = parse(
            "[General]\n\
             NetworkInterfaceBlacklist = vmnet, veth\n\
             PreferredTechnologies=ethernet,wifi,bluetooth\n\
             DefaultAutoConnectTechnologies=ethernet\n\
             FallbackNameservers=8.8.8.8,2001:4860:4860::8888\n\
             FallbackTimeservers=pool.ntp.org,192.0.2.1\n\
             AllowHostnameUpdates=false\n\
             AllowDomainnameUpdates=false\n\
             SingleConnectedTechnology=true\n\
             ResolvConf=/dev/null\n\
             EnableOnlineCheck=true\n\
             OnlineCheckMode=continuous\n\
             OnlineCheckIPv4URL=http://192.0.2.9/s\n\
             OnlineCheckIPv6URL=http://[2001:db8::9]/s\n\
             OnlineCheckConnectTimeout=500\n\
             OnlineCheckInitialInterval=2\n\
             OnlineCheckMaxInterval=20\n\
             OnlineCheckFailuresThreshold=3\n\
             OnlineCheckSuccessesThreshold=4\n\
             OnlineCheckIntervalStyle=fibonacci\n\
             MultipathRouting=true\n\
             MultipathTcpLink=backup\n\
             MptcpEndpointFlags=signal,fullmesh\n\
             MptcpManageLimits=false\n\
             RulePriorityBase=20000\n\
             EnableTimeSync=false\n\
             AdminGroup=netadmin\n\
             BackgroundScanning=false\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.network_interface_blacklist, ["vmnet", "veth"]);
        assert_eq!(
            c.preferred_technologies,
            [Technology::Ethernet, Technology::Wifi]
        );
        assert_eq!(c.default_auto_connect_technologies, [Technology::Ethernet]);
        assert_eq!(c.fallback_nameservers.len(), 2);
        assert_eq!(
            c.fallback_nameservers[0],
            IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8))
        );
        let ts: Vec<String> = c
            .fallback_timeservers
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(ts, ["pool.ntp.org", "192.0.2.1"]);
        assert!(!c.allow_hostname_updates && !c.allow_domainname_updates);
        assert!(c.single_connected_technology);
        assert_eq!(c.resolv_conf, ResolvConf::Disabled);
        assert_eq!(c.resolv_conf.path(Path::new("/run")), None);
        assert_eq!(c.online_check.mode, OnlineCheckMode::Continuous);
        assert_eq!(c.online_check.ipv6_url, "http://[2001:db8::9]/s");
        assert_eq!(c.online_check.connect_timeout_ms, 500);
        assert_eq!(c.online_check.initial_interval, 2);
        assert_eq!(c.online_check.max_interval, 20);
        assert_eq!(c.online_check.failures_threshold, 3);
        assert_eq!(c.online_check.successes_threshold, 4);
        assert_eq!(c.online_check.interval_style, IntervalStyle::Fibonacci);
        assert!(c.multipath_routing);
        assert_eq!(c.default_mptcp_link, MptcpLink::Backup);
        assert!(c.mptcp_endpoint_flags.signal && c.mptcp_endpoint_flags.fullmesh);
        assert!(!c.mptcp_manage_limits);
        assert_eq!(c.rule_priority_base, 20000);
        assert!(!c.time_sync);
        assert_eq!(c.admin_group.as_deref(), Some("netadmin"));
    }

    #[test]
    fn address_conflict_detection_key() {
        assert!(MainConf::default().address_conflict_detection);
        let (c, w) = parse("[General]\nAddressConflictDetection=false\n");
        assert!(w.is_empty(), "{w:?}");
        assert!(!c.address_conflict_detection);
        let (c, w) = parse("[General]\nAddressConflictDetection=sometimes\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(c.address_conflict_detection);
    }

    #[test]
    fn bad_values_warn_and_keep_default() {
        let (c, w) = parse(
            "[General]\nMultipathRouting=maybe\nRulePriorityBase=32700\nMptcpEndpointFlags=signal,bogus\n\
             PreferredTechnologies=ethernet,laser\nFallbackNameservers=dns.example,1.1.1.1\n\
             ResolvConf=relative\nOnlineCheckMode=sometimes\n",
        );
        assert!(!c.multipath_routing);
        assert_eq!(c.rule_priority_base, caps::RULE_PRIORITY_BASE);
        assert_eq!(c.mptcp_endpoint_flags, MptcpEndpointFlags::default());
        assert_eq!(c.preferred_technologies, [Technology::Ethernet]);
        assert_eq!(c.fallback_nameservers.len(), 1);
        assert_eq!(c.resolv_conf, ResolvConf::RunDir);
        assert_eq!(c.online_check.mode, OnlineCheckMode::OneShot);
        assert_eq!(w.len(), 7, "{w:?}");
        let first = w[0].to_string();
        assert!(first.contains("main.conf:2:"), "{first}");
        assert!(
            first.contains("MultipathRouting") && first.contains("maybe"),
            "{first}"
        );
        assert!(w[1].to_string().contains("32466"), "{}", w[1]);
    }

    #[test]
    fn rule_priority_base_range() {
        assert!(check_rule_priority_base(0).is_err());
        assert!(check_rule_priority_base(32466).is_ok());
        assert!(check_rule_priority_base(32467).is_err());
    }

    #[test]
    fn unknown_keys_and_groups_warn() {
        let (c, w) = parse("[General]\nFrobnicate=1\n[Extra]\nx=1\n");
        assert_eq!(c, MainConf::default());
        assert_eq!(w.len(), 2);
        assert!(w.iter().any(
            |w| matches!(&w.kind, WarningKind::UnknownKey { key, .. } if key == "Frobnicate")
        ));
        assert!(w
            .iter()
            .any(|w| matches!(&w.kind, WarningKind::UnknownGroup { group } if group == "Extra")));
    }

    #[test]
    fn corrupt_file_is_defaults() {
        let (c, w) = parse("[General]\nMultipathRouting=true\nthis is not a keyfile\n");
        assert_eq!(c, MainConf::default());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, Some(3));
    }

    #[test]
    fn too_many_nameservers() {
        let (c, w) =
            parse("[General]\nFallbackNameservers=1.1.1.1,1.0.0.1,8.8.8.8,8.8.4.4,9.9.9.9\n");
        assert_eq!(c.fallback_nameservers.len(), caps::MAX_SERVERS);
        assert!(matches!(w[0].kind, WarningKind::TooMany { cap: 4, .. }));
    }

    /// One name for one setting: `MultipathTcpLink`, as the Service
    /// property. The old main.conf name still works, with a warning naming
    /// the line and the new name; when both are set the new one wins.
    #[test]
    fn multipath_tcp_link_and_its_old_name() {
        let (c, w) = parse("[General]\nMultipathTcpLink=backup\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.default_mptcp_link, MptcpLink::Backup);

        let (c, w) = parse("[General]\nMptcpLink=off\n");
        assert_eq!(c.default_mptcp_link, MptcpLink::Off);
        assert_eq!(w.len(), 1, "{w:?}");
        let msg = w[0].to_string();
        assert!(
            msg.starts_with("main.conf:2:")
                && msg.contains("MptcpLink")
                && msg.contains("MultipathTcpLink"),
            "{msg}"
        );

        for text in [
            "[General]\nMptcpLink=off\nMultipathTcpLink=backup\n",
            "[General]\nMultipathTcpLink=backup\nMptcpLink=off\n",
        ] {
            let (c, w) = parse(text);
            assert_eq!(c.default_mptcp_link, MptcpLink::Backup, "{text}");
            assert!(
                matches!(
                    w[..],
                    [Warning {
                        kind: WarningKind::Deprecated { .. },
                        ..
                    }]
                ),
                "{w:?}"
            );
        }
        let (c, w) = parse("[General]\nMptcpLink=sometimes\n");
        assert_eq!(c.default_mptcp_link, MptcpLink::On);
        assert_eq!(w.len(), 2, "{w:?}");
    }

    /// Fallback servers get the same checks as a service's: nothing that
    /// is not a unicast server (or, for time, a host name) is kept.
    #[test]
    fn fallback_servers_are_validated() {
        let (c, w) = parse(
            "[General]\nFallbackNameservers=0.0.0.0,127.0.0.1,224.0.0.1,::1,fe80::1,192.0.2.53\n\
             FallbackTimeservers=pool.ntp.org,127.1,ntp\\sevil,255.255.255.255,2001:db8::123\n",
        );
        assert_eq!(c.fallback_nameservers.len(), 1);
        assert_eq!(c.fallback_nameservers[0].to_string(), "192.0.2.53");
        let ts: Vec<String> = c
            .fallback_timeservers
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(ts, ["pool.ntp.org", "2001:db8::123"]);
        assert_eq!(w.len(), 8, "{w:?}");
        assert!(w.iter().all(|w| w.line.is_some()), "{w:?}");
        assert!(w[1].to_string().contains("loopback"), "{}", w[1]);
    }

    /// board-configs/main.conf.example documents every key with its default
    /// and refers to nothing a user's checkout does not have.
    #[test]
    fn example_documents_every_key() {
        let example = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/board-configs/main.conf.example"
        ));
        for key in KEYS {
            assert!(
                example.lines().any(|l| l.starts_with(&format!("#{key}="))),
                "main.conf.example lacks {key}"
            );
            // Each listed key is one the parser knows.
            let (_, w) = parse(&format!("[General]\n{key}=\n"));
            assert!(
                !w.iter()
                    .any(|w| matches!(w.kind, WarningKind::UnknownKey { .. })),
                "{key}: {w:?}"
            );
        }
        for key in CONNMAN_IGNORED_KEYS {
            assert!(
                example.contains(key),
                "main.conf.example does not mention {key}"
            );
        }
        assert!(!example.contains("SPEC"), "main.conf.example cites SPEC");
        assert!(!example.contains("#MptcpLink="));
    }

    #[test]
    fn tethering_technologies_key() {
        use Technology::*;
        let all = MainConf::default().tethering_technologies;
        assert_eq!(all, [Wifi, Gadget, Ethernet]);
        // ConnMan's own default value parses (bluetooth quietly left out).
        let (c, w) = parse("[General]\nTetheringTechnologies=wifi,bluetooth,gadget\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.tethering_technologies, [Wifi, Gadget]);
        // Empty: nothing tethers.
        let (c, w) = parse("[General]\nTetheringTechnologies=\n");
        assert!(w.is_empty(), "{w:?}");
        assert!(c.tethering_technologies.is_empty());
        // An unknown name warns, naming key and line; the rest is kept.
        let (c, w) = parse("[General]\nTetheringTechnologies=ethernet,wlan\n");
        assert_eq!(c.tethering_technologies, [Ethernet]);
        assert_eq!(w.len(), 1, "{w:?}");
        let msg = w[0].to_string();
        assert!(
            msg.starts_with("main.conf:2:") && msg.contains("wlan"),
            "{msg}"
        );
    }

    #[test]
    fn tethering_fast_path_key() {
        assert!(MainConf::default().tethering_fast_path);
        let (c, w) = parse("[General]\nTetheringFastPath=false\n");
        assert!(w.is_empty(), "{w:?}");
        assert!(!c.tethering_fast_path);
        let (c, w) = parse("[General]\nTetheringFastPath=true\n");
        assert!(w.is_empty(), "{w:?}");
        assert!(c.tethering_fast_path);
        // A bad value warns, naming key and line, and keeps the default.
        let (c, w) = parse("[General]\nTetheringFastPath=fast\n");
        assert!(c.tethering_fast_path);
        assert_eq!(w.len(), 1, "{w:?}");
        let msg = w[0].to_string();
        assert!(
            msg.starts_with("main.conf:2:") && msg.contains("TetheringFastPath"),
            "{msg}"
        );
    }

    #[test]
    fn disabling_online_check() {
        let (c, _) = parse("[General]\nEnableOnlineCheck=false\n");
        assert_eq!(c.online_check.mode, OnlineCheckMode::None);
    }
}
