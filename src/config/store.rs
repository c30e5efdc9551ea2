//! Persistence in ConnMan's state-dir layout (reference/connman.md §4.5), so
//! a ConnMan `/var/lib/connman` can be copied to pathman's state dir:
//!
//! - `<state-dir>/settings`: `[global] OfflineMode` and one group per
//!   technology (`[Wired]`, `[WiFi]`, `[Cellular]`, `[Gadget]`) with `Enable`;
//! - `<state-dir>/<service-id>/settings`: group `[<service-id>]` with the
//!   keys of [`ServiceConfig`] plus `Name` and `Modified`.
//!
//! Reading never fails and never waits: a missing file is "nothing stored";
//! an unreadable or corrupt file — including anything but a regular file
//! (a FIFO, a device, a symbolic link) and a file over
//! [`caps::MAX_KEYFILE_BYTES`] — is a [`Warning`] (logged, naming file and
//! line) and defaults; each bad value falls back to that field's default
//! with a warning. Values get the checks of [`crate::core::validate`], the
//! same as over D-Bus, so a settings file cannot bring in what a
//! `SetProperty` would be refused.
//! Writing keeps every key and group pathman does not know (a copied ConnMan
//! file keeps its `Passphrase`, `IPv6.privacy`, …) and is atomic: temp file in
//! the same directory, fsync, rename, fsync of the directory. Files are mode
//! 0600 and service directories 0700, as ConnMan's, since they may hold
//! passphrases.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::file::{self, Links, ReadError};
use super::keyfile::{KeyFile, ValueError};
use super::{Warning, WarningKind};
use crate::caps;
use crate::core::types::{
    DomainList, Ipv4Method, Ipv4Net, Ipv6Method, MptcpLink, ServerList, ServiceConfig, ServiceId,
    Technology, TimeserverList,
};
use crate::core::validate::{
    check_manual_ipv4, check_server_addr, check_unicast_v4, parse_domain, parse_timeserver,
    Ipv4Field,
};

const SETTINGS: &str = "settings";
const TEMP_SUFFIX: &str = ".tmp";
const GLOBAL: &str = "global";

/// A store operation that failed (only writes and removals can fail).
#[derive(Debug)]
pub enum StoreError {
    /// The identifier cannot name a directory (empty, `/`, leading `.`).
    BadServiceId(String),
    /// A file system operation failed.
    Io {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
    /// A value could not be put into the keyfile (bad group name).
    Value(ValueError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadServiceId(id) => write!(f, "invalid service identifier {id:?}"),
            StoreError::Io { path, op, err } => write!(f, "{op} {}: {err}", path.display()),
            StoreError::Value(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<ValueError> for StoreError {
    fn from(e: ValueError) -> Self {
        StoreError::Value(e)
    }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |err| StoreError::Io {
        path: path.to_path_buf(),
        op,
        err,
    }
}

/// `<state-dir>/settings`: offline mode and technology power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    pub offline_mode: bool,
    /// `TimeUpdates` (ConnMan keeps the Clock's settings in `[global]`).
    pub time_updates: crate::core::clock::Updates,
    /// `TimezoneUpdates`.
    pub timezone_updates: crate::core::clock::Updates,
    /// `Timeservers`: `Clock.Timeservers`.
    pub timeservers: crate::core::types::TimeserverList,
    /// Indexed by `tech_index`.
    powered: [bool; 4],
    /// `Tethering`, `Tethering.Identifier`, `Tethering.Passphrase`,
    /// `Tethering.Freq` of each technology, indexed by `tech_index`.
    pub tether: [crate::core::tether::TetherSettings; 4],
}

impl Default for GlobalSettings {
    /// Wired-like technologies on, radios off. ConnMan powers only ethernet
    /// by default; pathman also powers gadget, a wired uplink on its boards.
    fn default() -> Self {
        let mut g = GlobalSettings {
            offline_mode: false,
            time_updates: crate::core::clock::Updates::Auto,
            timezone_updates: crate::core::clock::Updates::Auto,
            timeservers: crate::core::types::TimeserverList::new(),
            powered: [false; 4],
            tether: Default::default(),
        };
        g.set_powered(Technology::Ethernet, true);
        g.set_powered(Technology::Gadget, true);
        g
    }
}

fn tech_index(t: Technology) -> usize {
    match t {
        Technology::Ethernet => 0,
        Technology::Wifi => 1,
        Technology::Cellular => 2,
        Technology::Gadget => 3,
    }
}

impl GlobalSettings {
    /// The persisted `Powered` of a technology.
    pub fn powered(&self, t: Technology) -> bool {
        self.powered[tech_index(t)]
    }

    /// Sets the persisted `Powered` of a technology.
    pub fn set_powered(&mut self, t: Technology, on: bool) {
        self.powered[tech_index(t)] = on;
    }
}

/// A service's stored settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    /// `Name` as stored (absent for ethernet in ConnMan files).
    pub name: Option<String>,
    /// `Modified` as stored (ISO 8601).
    pub modified: Option<String>,
    pub config: ServiceConfig,
}

/// `2024-05-01T12:00:00Z` for a time (UTC, seconds; before 1970 = epoch).
pub fn iso8601_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory
/// (mode 0600), fsync, rename over `path`, fsync of the directory so the
/// rename itself survives a power cut.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(TEMP_SUFFIX);
    let tmp = dir.join(tmp_name);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp, "create"))?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp, "write"));
    drop(f);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path).map_err(io_err(path, "rename"))) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync"))
}

/// Reads a keyfile; `Ok(None)` if absent, a warning if unreadable (not a
/// regular file, a link, over the size cap: see [`file::read_bounded`]) or
/// corrupt.
pub(crate) fn read_keyfile(path: &Path) -> Result<Option<(KeyFile, Vec<Warning>)>, Box<Warning>> {
    let source = path.display().to_string();
    let bytes = match file::read_bounded(path, Links::Refuse) {
        Ok(b) => b,
        Err(ReadError::NotFound) => return Ok(None),
        Err(e) => {
            let kind = WarningKind::Unreadable {
                reason: e.to_string(),
            };
            return Err(Box::new(Warning::new(&source, None, kind).logged()));
        }
    };
    KeyFile::parse_bytes(&bytes, &source)
        .map(Some)
        .map_err(|e| {
            let kind = WarningKind::Corrupt {
                reason: e.to_string(),
            };
            Box::new(Warning::new(&source, Some(e.line), kind).logged())
        })
}

/// Reads values of one group, collecting warnings.
struct Reader<'a> {
    kf: &'a KeyFile,
    group: &'a str,
    source: &'a str,
    warnings: Vec<Warning>,
}

impl Reader<'_> {
    fn bad(&mut self, key: &str, value: &str, reason: &str) {
        let kind = WarningKind::BadValue {
            group: self.group.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let w = Warning::new(self.source, self.kf.line_of(self.group, key), kind);
        self.warnings.push(w.logged());
    }

    fn too_many(&mut self, key: &str, cap: usize) {
        let kind = WarningKind::TooMany {
            group: self.group.to_string(),
            key: key.to_string(),
            cap,
        };
        let w = Warning::new(self.source, self.kf.line_of(self.group, key), kind);
        self.warnings.push(w.logged());
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        match self.kf.get_bool(self.group, key) {
            Ok(v) => v,
            Err(e) => {
                let w = e.to_warning(self.source, self.kf.line_of(self.group, key));
                self.warnings.push(w.logged());
                None
            }
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        self.kf.get_string(self.group, key)
    }

    fn parsed<T: std::str::FromStr>(&mut self, key: &str, expected: &str) -> Option<T> {
        let s = self.string(key)?;
        let v = s.parse().ok();
        if v.is_none() {
            self.bad(key, &s, expected);
        }
        v
    }

    fn items(&self, key: &str) -> Vec<String> {
        let mut items = self.kf.get_list(self.group, key, ';').unwrap_or_default();
        items.retain(|i| !i.is_empty());
        items
    }

    fn servers(&mut self, key: &str) -> ServerList {
        let mut out = ServerList::new();
        for item in self.items(key) {
            let ip = match item.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    self.bad(key, &item, "not an IP address, skipped");
                    continue;
                }
            };
            if let Err(why) = check_server_addr(ip) {
                self.bad(key, &item, &format!("{why}, skipped"));
                continue;
            }
            if !out.contains(&ip) && out.push(ip).is_err() {
                self.too_many(key, caps::MAX_SERVERS);
                break;
            }
        }
        out
    }

    fn timeservers(&mut self, key: &str) -> TimeserverList {
        let mut out = TimeserverList::new();
        for item in self.items(key) {
            match parse_timeserver(&item) {
                Err(why) => self.bad(key, &item, &format!("{why}, skipped")),
                Ok(t) if out.contains(&t) => {}
                Ok(t) => {
                    if out.push(t).is_err() {
                        self.too_many(key, caps::MAX_SERVERS);
                        break;
                    }
                }
            }
        }
        out
    }

    /// Search domains: only valid names, so nothing else reaches
    /// resolv.conf (a `\n` in the file decodes to a newline that would
    /// start a line of its own there).
    fn domains(&mut self, key: &str) -> DomainList {
        let mut out = DomainList::new();
        for item in self.items(key) {
            match parse_domain(&item) {
                Err(why) => self.bad(key, &item, &format!("not a domain name: it {why}, skipped")),
                Ok(name) if out.contains(&name) => {}
                Ok(name) => {
                    if out.push(name).is_err() {
                        self.too_many(key, caps::MAX_SERVERS);
                        break;
                    }
                }
            }
        }
        out
    }

    /// The manual (or ConnMan `fixed`) IPv4 configuration, checked as a
    /// D-Bus one is; `None` (and a warning naming the key at fault) if it
    /// cannot be used.
    fn manual_ipv4(&mut self, method: &str) -> Option<Ipv4Method> {
        const ADDR: &str = "IPv4.local_address";
        const PREFIX: &str = "IPv4.netmask_prefixlen";
        const GATEWAY: &str = "IPv4.gateway";
        let addr = self.parsed::<Ipv4Addr>(ADDR, "expected an IPv4 address");
        let prefix = self.parsed::<u8>(PREFIX, "expected a prefix length");
        // ConnMan writes 0.0.0.0 for "no gateway" (point-to-point links).
        let gateway = self
            .parsed::<Ipv4Addr>(GATEWAY, "expected an IPv4 address")
            .filter(|g| !g.is_unspecified());
        let (Some(addr), Some(prefix_len)) = (addr, prefix) else {
            self.bad(
                "IPv4.method",
                method,
                "manual without a valid address/prefix",
            );
            return None;
        };
        let net = Ipv4Net { addr, prefix_len };
        match check_manual_ipv4(net, gateway) {
            Ok(()) => Some(Ipv4Method::Manual { addr: net, gateway }),
            Err(e) => {
                let (key, value) = match e.field() {
                    Ipv4Field::Address => (ADDR, addr.to_string()),
                    Ipv4Field::Prefix => (PREFIX, prefix_len.to_string()),
                    Ipv4Field::Gateway => {
                        (GATEWAY, gateway.map(|g| g.to_string()).unwrap_or_default())
                    }
                };
                self.bad(key, &value, &format!("{e}; IPv4 falls back to dhcp"));
                None
            }
        }
    }
}

/// Reads global settings from keyfile text (pure; see [`Store::load_global`]).
pub fn parse_global(kf: &KeyFile, source: &str) -> (GlobalSettings, Vec<Warning>) {
    let mut g = GlobalSettings::default();
    let mut r = Reader {
        kf,
        group: GLOBAL,
        source,
        warnings: Vec::new(),
    };
    if let Some(v) = r.bool("OfflineMode") {
        g.offline_mode = v;
    }
    for (key, slot) in [
        ("TimeUpdates", &mut g.time_updates),
        ("TimezoneUpdates", &mut g.timezone_updates),
    ] {
        if let Some(v) = r.string(key) {
            match crate::core::clock::Updates::parse(&v) {
                Some(u) => *slot = u,
                None => r.bad(key, &v, "expected auto or manual"),
            }
        }
    }
    g.timeservers = r.timeservers("Timeservers");
    let mut warnings = r.warnings;
    for t in Technology::ALL {
        let mut r = Reader {
            kf,
            group: t.display_name(),
            source,
            warnings: Vec::new(),
        };
        if let Some(v) = r.bool("Enable") {
            g.set_powered(t, v);
        }
        let ts = &mut g.tether[tech_index(t)];
        if let Some(v) = r.bool("Tethering") {
            ts.enabled = v;
        }
        ts.identifier = r
            .string("Tethering.Identifier")
            .filter(|v| crate::core::tether::check_identifier(v).is_ok());
        ts.passphrase = r
            .string("Tethering.Passphrase")
            .filter(|v| crate::core::tether::check_passphrase(v).is_ok())
            .map(crate::core::types::Secret);
        if let Some(v) = r.string("Tethering.Freq") {
            match v.parse::<i32>().ok().map(crate::core::tether::check_freq) {
                Some(Ok(f)) => ts.freq = f,
                _ => r.bad("Tethering.Freq", &v, "expected a channel frequency in MHz"),
            }
        }
        warnings.append(&mut r.warnings);
    }
    (g, warnings)
}

/// Puts global settings into `kf`, keeping whatever else it holds.
pub fn global_to_keyfile(kf: &mut KeyFile, g: &GlobalSettings) -> Result<(), ValueError> {
    kf.set_bool(GLOBAL, "OfflineMode", g.offline_mode)?;
    kf.set_string(GLOBAL, "TimeUpdates", g.time_updates.as_str())?;
    kf.set_string(GLOBAL, "TimezoneUpdates", g.timezone_updates.as_str())?;
    let ts: Vec<String> = g.timeservers.iter().map(|t| t.to_string()).collect();
    kf.set_list(GLOBAL, "Timeservers", &ts, ';')?;
    for t in Technology::ALL {
        let group = t.display_name();
        kf.set_bool(group, "Enable", g.powered(t))?;
        let ts = &g.tether[tech_index(t)];
        kf.set_bool(group, "Tethering", ts.enabled)?;
        match &ts.identifier {
            Some(id) => kf.set_string(group, "Tethering.Identifier", id)?,
            None => {
                kf.remove_key(group, "Tethering.Identifier");
            }
        }
        match &ts.passphrase {
            Some(p) => kf.set_string(group, "Tethering.Passphrase", &p.0)?,
            None => {
                kf.remove_key(group, "Tethering.Passphrase");
            }
        }
        if ts.freq != 0 {
            kf.set_string(group, "Tethering.Freq", &ts.freq.to_string())?;
        }
    }
    Ok(())
}

/// Reads a service record from its keyfile (pure; see [`Store::load_service`]).
pub fn parse_service(kf: &KeyFile, id: &str, source: &str) -> (ServiceRecord, Vec<Warning>) {
    let mut r = Reader {
        kf,
        group: id,
        source,
        warnings: Vec::new(),
    };
    if !kf.has_group(id) {
        let kind = WarningKind::Corrupt {
            reason: format!("no [{id}] group"),
        };
        r.warnings.push(Warning::new(source, None, kind).logged());
    }
    let mut c = ServiceConfig::default();
    if let Some(v) = r.bool("AutoConnect") {
        c.auto_connect = v;
    }
    if let Some(v) = r.bool("Favorite") {
        c.favorite = v;
    }
    c.ipv4 = match r.string("IPv4.method").as_deref() {
        None | Some("dhcp") => Ipv4Method::Dhcp,
        Some("off") => Ipv4Method::Off,
        // ConnMan's `fixed` (set by the network, e.g. cellular) is a manual
        // address as far as persistence goes.
        Some(m @ ("manual" | "fixed")) => r.manual_ipv4(m).unwrap_or(Ipv4Method::Dhcp),
        Some(other) => {
            r.bad("IPv4.method", other, "expected dhcp, manual or off");
            Ipv4Method::Dhcp
        }
    };
    // Asked for again in INIT-REBOOT: only a unicast address is worth asking.
    c.dhcp_last_address = r
        .parsed::<Ipv4Addr>("IPv4.DHCP.LastAddress", "expected an IPv4 address")
        .filter(|a| match check_unicast_v4(*a) {
            Ok(()) => true,
            Err(why) => {
                r.bad(
                    "IPv4.DHCP.LastAddress",
                    &a.to_string(),
                    &format!("{why}, ignored"),
                );
                false
            }
        });
    c.ipv6 = match r.string("IPv6.method").as_deref() {
        None | Some("auto") => Ipv6Method::Auto,
        Some("off") => Ipv6Method::Off,
        Some(other) => {
            r.bad("IPv6.method", other, "expected auto or off");
            Ipv6Method::Auto
        }
    };
    c.nameservers = r.servers("Nameservers");
    c.timeservers = r.timeservers("Timeservers");
    c.domains = r.domains("Domains");
    c.multipath_routing = r.bool("MultipathRouting");
    if let Some(v) = r.string("MultipathTcpLink") {
        match MptcpLink::parse(&v) {
            Some(l) => c.mptcp_link = l,
            None => r.bad("MultipathTcpLink", &v, "expected on, backup or off"),
        }
    }
    c.passphrase = r
        .string("Passphrase")
        .filter(|p| !p.is_empty())
        .map(crate::core::types::Secret);
    let record = ServiceRecord {
        name: r.string("Name"),
        modified: r.string("Modified"),
        config: c,
    };
    (record, r.warnings)
}

/// Puts a service's settings into `kf` (group `[id]`), keeping keys and
/// groups pathman does not know, in place and in order. Known keys that do
/// not apply (a gateway under DHCP) are removed.
pub fn service_to_keyfile(
    kf: &mut KeyFile,
    id: &str,
    name: &str,
    c: &ServiceConfig,
    modified: &str,
) -> Result<(), ValueError> {
    fn list<T: ToString>(items: &[T]) -> Option<Vec<String>> {
        (!items.is_empty()).then(|| items.iter().map(|i| i.to_string()).collect())
    }
    let b = |v: bool| Some(if v { "true" } else { "false" }.to_string());
    let (addr, prefix, gateway) = match c.ipv4 {
        Ipv4Method::Manual { addr, gateway } => (
            Some(addr.addr.to_string()),
            Some(addr.prefix_len.to_string()),
            gateway.map(|g| g.to_string()),
        ),
        _ => (None, None, None),
    };
    let scalars: [(&str, Option<String>); 13] = [
        ("Name", (!name.is_empty()).then(|| name.to_string())),
        ("AutoConnect", b(c.auto_connect)),
        ("Favorite", b(c.favorite)),
        ("Modified", Some(modified.to_string())),
        ("IPv4.method", Some(c.ipv4.as_str().to_string())),
        ("IPv4.netmask_prefixlen", prefix),
        ("IPv4.local_address", addr),
        ("IPv4.gateway", gateway),
        (
            "IPv4.DHCP.LastAddress",
            c.dhcp_last_address.map(|a| a.to_string()),
        ),
        ("IPv6.method", Some(c.ipv6.as_str().to_string())),
        ("MultipathRouting", c.multipath_routing.and_then(b)),
        ("MultipathTcpLink", Some(c.mptcp_link.as_str().to_string())),
        ("Passphrase", c.passphrase.as_ref().map(|p| p.0.clone())),
    ];
    kf.add_group(id)?;
    for (key, value) in scalars {
        match value {
            Some(v) => kf.set_string(id, key, &v)?,
            None => {
                kf.remove_key(id, key);
            }
        }
    }
    let lists = [
        ("Nameservers", list(&c.nameservers)),
        ("Timeservers", list(&c.timeservers)),
        ("Domains", list(&c.domains)),
    ];
    for (key, value) in lists {
        match value {
            Some(v) => kf.set_list(id, key, &v, ';')?,
            None => {
                kf.remove_key(id, key);
            }
        }
    }
    Ok(())
}

/// True if `id` can safely name a directory under the state dir.
fn valid_service_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && !id
            .chars()
            .any(|c| c == '/' || c == '[' || c == ']' || c.is_control())
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// A store rooted at `dir` (`--state-dir`); nothing is touched yet.
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn service_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        if valid_service_id(id) {
            Ok(self.dir.join(id))
        } else {
            Err(StoreError::BadServiceId(id.to_string()))
        }
    }

    fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir, "create directory"))
    }

    /// Global settings; defaults when absent, unreadable or corrupt.
    pub fn load_global(&self) -> (GlobalSettings, Vec<Warning>) {
        let path = self.dir.join(SETTINGS);
        match read_keyfile(&path) {
            Ok(Some((kf, mut warnings))) => {
                let (g, mut w) = parse_global(&kf, &path.display().to_string());
                warnings.append(&mut w);
                (g, warnings)
            }
            Ok(None) => (GlobalSettings::default(), Vec::new()),
            Err(w) => (GlobalSettings::default(), vec![*w]),
        }
    }

    /// Writes global settings, keeping other keys of the existing file.
    pub fn save_global(&self, g: &GlobalSettings) -> Result<(), StoreError> {
        Store::ensure_dir(&self.dir)?;
        let path = self.dir.join(SETTINGS);
        let mut kf = match read_keyfile(&path) {
            Ok(Some((kf, _))) => kf,
            _ => KeyFile::new(),
        };
        global_to_keyfile(&mut kf, g)?;
        write_atomic(&path, kf.to_string().as_bytes())
    }

    /// A service's stored settings: `None` if nothing is stored (or the id
    /// cannot be a directory name); defaults with a warning if the file is
    /// unreadable or corrupt.
    pub fn load_service(&self, id: &str) -> (Option<ServiceRecord>, Vec<Warning>) {
        let Ok(dir) = self.service_dir(id) else {
            return (None, Vec::new());
        };
        let path = dir.join(SETTINGS);
        let source = path.display().to_string();
        match read_keyfile(&path) {
            Ok(Some((kf, mut warnings))) => {
                let (rec, mut w) = parse_service(&kf, id, &source);
                warnings.append(&mut w);
                (Some(rec), warnings)
            }
            Ok(None) => (None, Vec::new()),
            Err(w) => {
                let rec = ServiceRecord {
                    name: None,
                    modified: None,
                    config: ServiceConfig::default(),
                };
                (Some(rec), vec![*w])
            }
        }
    }

    /// Writes a service's settings with `Modified` = `now`, keeping keys
    /// pathman does not know from the existing file (if it parses).
    pub fn save_service(
        &self,
        id: &str,
        name: &str,
        config: &ServiceConfig,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let dir = self.service_dir(id)?;
        Store::ensure_dir(&dir)?;
        let path = dir.join(SETTINGS);
        let mut kf = match read_keyfile(&path) {
            Ok(Some((kf, _))) => kf,
            _ => KeyFile::new(),
        };
        service_to_keyfile(&mut kf, id, name, config, &iso8601_utc(now))?;
        write_atomic(&path, kf.to_string().as_bytes())
    }

    /// Removes a service's directory (settings and statistics), as ConnMan
    /// does when a service is removed. Nothing stored is not an error.
    pub fn remove_service(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.service_dir(id)?;
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io {
                path: dir,
                op: "remove",
                err: e,
            }),
            _ => Ok(()),
        }
    }

    /// Identifiers of all services with a settings file.
    pub fn service_ids(&self) -> (Vec<ServiceId>, Vec<Warning>) {
        let mut ids = Vec::new();
        let mut warnings = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (ids, warnings),
            Err(e) => {
                let kind = WarningKind::Unreadable {
                    reason: e.to_string(),
                };
                let w = Warning::new(&self.dir.display().to_string(), None, kind);
                return (ids, vec![w.logged()]);
            }
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !valid_service_id(&name) || !entry.path().join(SETTINGS).is_file() {
                continue;
            }
            match ServiceId::try_from(name.as_str()) {
                Ok(id) => ids.push(id),
                Err(_) => {
                    let kind = WarningKind::BadValue {
                        group: String::new(),
                        key: "service identifier".to_string(),
                        value: name.clone(),
                        reason: "too long, skipped".to_string(),
                    };
                    let w = Warning::new(&entry.path().display().to_string(), None, kind);
                    warnings.push(w.logged());
                }
            }
        }
        crate::sort::sort(&mut ids);
        (ids, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{Name, Timeserver};
    use crate::test_dir::TempDir;
    use proptest::prelude::*;
    use std::time::Duration;

    const ID: &str = "ethernet_024858000001_cable";

    #[test]
    fn iso8601() {
        assert_eq!(iso8601_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696); // leap day 2000
        assert_eq!(iso8601_utc(t), "2000-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(iso8601_utc(t), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn global_round_trip_keeps_unknown_keys() {
        let tmp = TempDir::new("store-test");
        let store = Store::new(&tmp.0);
        let (g, w) = store.load_global();
        assert_eq!(g, GlobalSettings::default());
        assert!(w.is_empty());
        assert!(g.powered(Technology::Ethernet) && !g.powered(Technology::Wifi));

        fs::write(
            tmp.0.join("settings"),
            "[global]\nOfflineMode=false\nTimeUpdates=auto\n\n[WiFi]\nEnable=true\nTethering=false\n\n[Bluetooth]\nEnable=false\n",
        )
        .unwrap();
        let (mut g, w) = store.load_global();
        assert!(w.is_empty());
        assert!(g.powered(Technology::Wifi));
        g.offline_mode = true;
        g.set_powered(Technology::Gadget, false);
        store.save_global(&g).unwrap();
        let text = fs::read_to_string(tmp.0.join("settings")).unwrap();
        assert!(text.contains("TimeUpdates=auto") && text.contains("[Bluetooth]"));
        assert!(text.contains("Tethering=false"));
        assert_eq!(store.load_global(), (g, Vec::new()));
        assert!(!tmp.0.join("settings.tmp").exists());
    }

    fn full_config() -> ServiceConfig {
        let mut c = ServiceConfig {
            auto_connect: false,
            favorite: false,
            ipv4: Ipv4Method::Manual {
                addr: Ipv4Net {
                    addr: Ipv4Addr::new(192, 0, 2, 10),
                    prefix_len: 24,
                },
                gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            },
            ipv6: Ipv6Method::Off,
            multipath_routing: Some(false),
            mptcp_link: MptcpLink::Backup,
            dhcp_last_address: Some(Ipv4Addr::new(192, 0, 2, 77)),
            ..ServiceConfig::default()
        };
        c.nameservers.push("192.0.2.53".parse().unwrap()).unwrap();
        c.nameservers.push("2001:db8::53".parse().unwrap()).unwrap();
        c.timeservers
            .push(Timeserver::Addr("192.0.2.123".parse().unwrap()))
            .unwrap();
        c.timeservers
            .push(Timeserver::Name(Name::try_from("ntp.lab.example").unwrap()))
            .unwrap();
        c.domains
            .push(Name::try_from("lab.example").unwrap())
            .unwrap();
        c.domains
            .push(Name::try_from("example.org").unwrap())
            .unwrap();
        c
    }

    #[test]
    fn service_round_trip_every_field() {
        let tmp = TempDir::new("store-test");
        let store = Store::new(&tmp.0);
        assert_eq!(store.load_service(ID), (None, Vec::new()));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for c in [ServiceConfig::default(), full_config()] {
            store.save_service(ID, "Wired", &c, now).unwrap();
            let (rec, w) = store.load_service(ID);
            assert!(w.is_empty(), "{w:?}");
            let rec = rec.unwrap();
            assert_eq!(rec.config, c);
            assert_eq!(rec.name.as_deref(), Some("Wired"));
            assert_eq!(rec.modified.as_deref(), Some("2023-11-14T22:13:20Z"));
        }
        // Back to DHCP: the manual address keys go away.
        let mut c = full_config();
        c.ipv4 = Ipv4Method::Dhcp;
        c.multipath_routing = Some(true);
        store.save_service(ID, "Wired", &c, now).unwrap();
        let text = fs::read_to_string(tmp.0.join(ID).join("settings")).unwrap();
        assert!(!text.contains("IPv4.gateway") && !text.contains("IPv4.local_address"));
        assert!(text.contains("MultipathRouting=true"));
        assert!(text.contains("Nameservers=192.0.2.53;2001:db8::53;"));
        assert_eq!(store.load_service(ID).0.unwrap().config, c);
        assert_eq!(
            store.service_ids().0.as_slice(),
            [ServiceId::try_from(ID).unwrap()]
        );
    }

    #[test]
    fn connman_file_keeps_extra_keys() {
        let tmp = TempDir::new("store-test");
        let id = "wifi_024858000001_686f6d65_managed_psk";
        let dir = tmp.0.join(id);
        fs::create_dir_all(&dir).unwrap();
        let original = format!(
            "[{id}]\nName=home\nSSID=686f6d65\nFrequency=2412\nFavorite=true\nAutoConnect=true\n\
             Modified=2024-03-01T10:20:30.123456Z\nPassphrase=s3cr\\\\et\nIPv4.method=dhcp\n\
             IPv4.DHCP.LastAddress=192.168.1.23\nIPv6.method=auto\nIPv6.privacy=disabled\n\
             Nameservers=1.1.1.1;ntp.example;\nTimeservers=pool.ntp.org;\nmDNS=false\n\
             MultipathRouting=true\nMultipathTcpLink=backup\n"
        );
        fs::write(dir.join("settings"), &original).unwrap();
        fs::write(dir.join("data"), "stats").unwrap();
        let store = Store::new(&tmp.0);
        let (rec, w) = store.load_service(id);
        let rec = rec.unwrap();
        assert_eq!(rec.name.as_deref(), Some("home"));
        assert_eq!(
            rec.config.dhcp_last_address,
            Some(Ipv4Addr::new(192, 168, 1, 23))
        );
        assert_eq!(rec.config.multipath_routing, Some(true));
        assert_eq!(rec.config.mptcp_link, MptcpLink::Backup);
        // A name is no nameserver: warned, not silent. Timeservers may be names.
        assert_eq!(rec.config.nameservers.len(), 1);
        assert_eq!(rec.config.timeservers.len(), 1);
        assert_eq!(rec.config.timeservers[0].to_string(), "pool.ntp.org");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().contains(":13:"), "{}", w[0]);

        store
            .save_service(id, "home", &rec.config, SystemTime::now())
            .unwrap();
        let text = fs::read_to_string(dir.join("settings")).unwrap();
        for kept in [
            "SSID=686f6d65",
            "Frequency=2412",
            "Passphrase=s3cr\\\\et",
            "IPv6.privacy=disabled",
            "mDNS=false",
        ] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        // Order of the known keys is kept in place.
        assert!(text.starts_with(&format!("[{id}]\nName=home\nSSID=")));

        store.remove_service(id).unwrap();
        assert!(!dir.exists());
        store.remove_service(id).unwrap();
        assert!(store.remove_service("../etc").is_err());
        assert!(store
            .save_service("", "x", &rec.config, SystemTime::now())
            .is_err());
    }

    #[test]
    fn corrupt_and_bad_values() {
        let tmp = TempDir::new("store-test");
        let dir = tmp.0.join(ID);
        fs::create_dir_all(&dir).unwrap();
        let store = Store::new(&tmp.0);

        fs::write(
            dir.join("settings"),
            "[x]\nAutoConnect=true\n<<<garbage>>>\n",
        )
        .unwrap();
        let (rec, w) = store.load_service(ID);
        assert_eq!(rec.unwrap().config, ServiceConfig::default());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, Some(3));
        assert!(w[0].to_string().contains("settings:3:"), "{}", w[0]);

        fs::write(
            dir.join("settings"),
            format!(
                "[{ID}]\nAutoConnect=perhaps\nFavorite=false\nIPv4.method=manual\nIPv4.local_address=300.1.1.1\n\
                 IPv6.method=6to4\nMultipathTcpLink=sometimes\nDomains=a.example;\n"
            ),
        )
        .unwrap();
        let (rec, w) = store.load_service(ID);
        let c = rec.unwrap().config;
        assert!(c.auto_connect && !c.favorite);
        assert_eq!(c.ipv4, Ipv4Method::Dhcp);
        assert_eq!(c.ipv6, Ipv6Method::Auto);
        assert_eq!(c.mptcp_link, MptcpLink::On);
        assert_eq!(c.domains.len(), 1);
        assert_eq!(w.len(), 5, "{w:?}");

        // A corrupt file is replaced on the next save.
        fs::write(dir.join("settings"), b"\xff\xfe").unwrap();
        store
            .save_service(ID, "", &full_config(), SystemTime::now())
            .unwrap();
        assert_eq!(store.load_service(ID).0.unwrap().config, full_config());

        fs::write(tmp.0.join("settings"), "OfflineMode=true\n").unwrap();
        let (g, w) = store.load_global();
        assert_eq!(g, GlobalSettings::default());
        assert_eq!(w.len(), 1);
    }

    fn load_text(text: &str) -> (ServiceConfig, Vec<Warning>) {
        let tmp = TempDir::new("store-test");
        let dir = tmp.0.join(ID);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("settings"), format!("[{ID}]\n{text}")).unwrap();
        let (rec, w) = Store::new(&tmp.0).load_service(ID);
        (rec.unwrap().config, w)
    }

    /// A manual IPv4 configuration from a settings file gets the checks a
    /// D-Bus one gets. `0.0.0.0/0` used to be accepted, and became an MPTCP
    /// endpoint for 0.0.0.0 and a `from 0.0.0.0` rule.
    #[test]
    fn manual_ipv4_from_file_is_checked() {
        let manual = |a: &str, p: &str, g: Option<&str>| {
            let mut t =
                format!("IPv4.method=manual\nIPv4.local_address={a}\nIPv4.netmask_prefixlen={p}\n");
            if let Some(g) = g {
                t.push_str(&format!("IPv4.gateway={g}\n"));
            }
            t
        };
        for (a, p, g, key, why) in [
            (
                "0.0.0.0",
                "0",
                None,
                "IPv4.netmask_prefixlen",
                "outside 1..=32",
            ),
            ("0.0.0.0", "24", None, "IPv4.local_address", "unspecified"),
            ("127.0.0.1", "8", None, "IPv4.local_address", "loopback"),
            ("240.0.0.1", "24", None, "IPv4.local_address", "class E"),
            (
                "192.0.2.0",
                "24",
                None,
                "IPv4.local_address",
                "network address",
            ),
            (
                "192.0.2.255",
                "24",
                None,
                "IPv4.local_address",
                "broadcast address",
            ),
            (
                "192.0.2.10",
                "24",
                Some("224.0.0.1"),
                "IPv4.gateway",
                "multicast",
            ),
            (
                "192.0.2.10",
                "24",
                Some("127.0.0.1"),
                "IPv4.gateway",
                "loopback",
            ),
            (
                "192.0.2.10",
                "24",
                Some("192.0.2.10"),
                "IPv4.gateway",
                "the address itself",
            ),
            (
                "192.0.2.10",
                "24",
                Some("198.51.100.1"),
                "IPv4.gateway",
                "off-link",
            ),
            (
                "192.0.2.10",
                "24",
                Some("192.0.2.255"),
                "IPv4.gateway",
                "broadcast",
            ),
            (
                "192.0.2.10",
                "33",
                None,
                "IPv4.netmask_prefixlen",
                "outside 1..=32",
            ),
        ] {
            let (c, w) = load_text(&manual(a, p, g));
            assert_eq!(c.ipv4, Ipv4Method::Dhcp, "{a}/{p} via {g:?}");
            assert_eq!(w.len(), 1, "{w:?}");
            let msg = w[0].to_string();
            assert!(msg.contains(&format!("{ID}/settings:")), "{msg}");
            assert!(
                msg.contains(key) && msg.contains(why),
                "{a}/{p} {g:?}: {msg}"
            );
            assert!(msg.contains("falls back to dhcp"), "{msg}");
        }
        // Line numbers name the key at fault (the group is line 1).
        let (_, w) = load_text(&manual("127.0.0.1", "8", None));
        assert_eq!(w[0].line, Some(3));
        // A usable one, and ConnMan's 0.0.0.0 for "no gateway".
        let (c, w) = load_text(&manual("192.0.2.10", "24", Some("192.0.2.1")));
        assert!(w.is_empty(), "{w:?}");
        assert!(matches!(
            c.ipv4,
            Ipv4Method::Manual {
                gateway: Some(_),
                ..
            }
        ));
        let (c, w) = load_text(&manual("192.0.2.10", "24", Some("0.0.0.0")));
        assert!(w.is_empty(), "{w:?}");
        assert!(matches!(c.ipv4, Ipv4Method::Manual { gateway: None, .. }));
    }

    /// Only unicast servers and valid names come out of a settings file; a
    /// domain with an escaped newline would have written its own
    /// `nameserver` line into resolv.conf.
    #[test]
    fn servers_and_domains_from_file_are_checked() {
        let (c, w) = load_text(
            "Nameservers=0.0.0.0;127.0.0.53;224.0.0.251;255.255.255.255;::;::1;ff02::1;fe80::1;192.0.2.53;\n\
             Timeservers=127.0.0.1;240.1.1.1;127.1;ntp.lab.example;192.0.2.123;ntp\\sx;\n\
             Domains=lab.example\\nnameserver\\s6.6.6.6;a\\sb;-x.example;ok.example;\n\
             IPv4.DHCP.LastAddress=127.0.0.1\n",
        );
        assert_eq!(c.nameservers.len(), 1);
        assert_eq!(c.nameservers[0].to_string(), "192.0.2.53");
        let ts: Vec<String> = c.timeservers.iter().map(|t| t.to_string()).collect();
        assert_eq!(ts, ["ntp.lab.example", "192.0.2.123"]);
        let ds: Vec<&str> = c.domains.iter().map(|d| d.as_str()).collect();
        assert_eq!(ds, ["ok.example"]);
        assert_eq!(c.dhcp_last_address, None);
        assert_eq!(w.len(), 8 + 4 + 3 + 1, "{w:?}");
        let injected = w
            .iter()
            .find(|w| w.to_string().contains("nameserver"))
            .unwrap()
            .to_string();
        assert!(
            injected.contains("Domains") && injected.contains("'\\n'") && injected.contains(":4:"),
            "{injected}"
        );
    }

    /// A FIFO, a link to /dev/zero and an oversized file where a settings
    /// file should be: each a warning and defaults, at once. The FIFO used
    /// to block start-up forever, the link to be read until allocation
    /// failed.
    #[test]
    fn special_state_files_are_defaults_not_hangs() {
        let tmp = TempDir::new("store-test");
        let store = Store::new(&tmp.0);
        let global = tmp.0.join("settings");
        nix::unistd::mkfifo(&global, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (g, w) = store.load_global();
        assert_eq!(g, GlobalSettings::default());
        assert_eq!(w.len(), 1);
        assert!(w[0].to_string().contains("FIFO"), "{}", w[0]);
        // Saving replaces the FIFO by a file.
        store.save_global(&g).unwrap();
        assert!(fs::symlink_metadata(&global).unwrap().is_file());

        let dir = tmp.0.join(ID);
        fs::create_dir_all(&dir).unwrap();
        let settings = dir.join("settings");
        std::os::unix::fs::symlink("/dev/zero", &settings).unwrap();
        let (rec, w) = store.load_service(ID);
        assert_eq!(rec.unwrap().config, ServiceConfig::default());
        assert_eq!(w.len(), 1);
        assert!(w[0].to_string().contains("symbolic link"), "{}", w[0]);

        fs::remove_file(&settings).unwrap();
        let mut big = format!("[{ID}]\nAutoConnect=false\n");
        while big.len() as u64 <= caps::MAX_KEYFILE_BYTES {
            big.push_str("# padding padding padding padding padding padding\n");
        }
        fs::write(&settings, &big).unwrap();
        let (rec, w) = store.load_service(ID);
        assert_eq!(rec.unwrap().config, ServiceConfig::default());
        assert_eq!(w.len(), 1);
        assert!(
            w[0].to_string().contains("more than the 65536 bytes"),
            "{}",
            w[0]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let source = "settings";
            let (kf, _) = KeyFile::parse_bytes(&bytes, source).unwrap_or_default();
            let (rec, _) = parse_service(&kf, ID, source);
            let _ = rec.config;
            let _ = parse_global(&kf, source);
        }

        #[test]
        fn keyfile_like_settings_never_panic(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just(format!("[{ID}]")),
                    "(AutoConnect|Favorite|IPv4\\.method|IPv4\\.local_address|IPv4\\.netmask_prefixlen|IPv4\\.gateway|IPv6\\.method|Nameservers|Timeservers|Domains|MultipathRouting|MultipathTcpLink|IPv4\\.DHCP\\.LastAddress)=[a-z0-9.:;\\\\ ]{0,40}",
                    any::<String>(),
                ],
                0..20)
        ) {
            let text = lines.join("\n");
            let (kf, _) = KeyFile::parse(&text, "settings").unwrap_or_default();
            let (rec, _) = parse_service(&kf, ID, "settings");
            let mut out = KeyFile::new();
            service_to_keyfile(&mut out, ID, "n", &rec.config, "m").unwrap();
            let (back, w) = parse_service(&out, ID, "settings");
            prop_assert!(w.is_empty());
            prop_assert_eq!(back.config, rec.config);
        }
    }
}
