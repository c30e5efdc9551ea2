//! Board configs (SPEC §9): which interfaces a board's pathman manages, what
//! technology each is, and defaults for main.conf keys. One file per board in
//! `board-configs/`, chosen with `--board FILE`; same keyfile syntax as
//! main.conf.
//!
//! ```text
//! [Board]
//! Name=rpi-gadget                  # required
//! Description=Raspberry Pi-class   # optional
//!
//! [Interfaces]
//! Manage=eth0,usb0,wlan0           # like -i; absent or empty = all interfaces
//! Ignore=docker*                   # like -I; wins over Manage
//!
//! [Interface usb0]                 # one group per interface (or pattern)
//! Technology=gadget                # ethernet | gadget | wifi | cellular
//!
//! [Interface lan*]
//! Role=lan                         # uplink (default) | lan: a LAN port, never
//!                                  # an uplink, bridged when ethernet is tethered
//!
//! [Defaults]                       # defaults for main.conf [General] keys
//! MultipathRouting=true
//! PreferredTechnologies=ethernet,wifi
//! MultipathTcpLink=on              # formerly MptcpLink (still read, warned)
//! ```
//!
//! Interface names in `Manage`, `Ignore` and `[Interface …]` are glob patterns
//! (`*`, `?`), as ConnMan matches `-i`/`-I`. A per-interface group was chosen
//! over `Technology.<if>=` keys so that later per-interface settings have a
//! place without new key-name conventions.
//!
//! Precedence: a board's `[Defaults]` sit under main.conf —
//! [`BoardDefaults::apply_to`] is applied to the built-in defaults before
//! main.conf is read over them (see [`crate::config::load`]), so main.conf
//! wins where both set a key, and `-i`/`-I`/`-M` on the command line win over
//! both. Unlike main.conf, a board config is strict: it ships with the
//! firmware and decides which interfaces are touched, so any unknown group,
//! key or bad value is an error naming the file, line and key.

use std::fmt;
use std::path::Path;

use super::file::{self, Links};
use super::keyfile::{KeyFile, ParseError, ValueError};
use super::main_conf::{conf_list, technology_list, MainConf, MPTCP_LINK_ALIAS, MPTCP_LINK_KEY};
use crate::caps;
use crate::core::types::{IfName, MptcpLink, Technology};

const BOARD: &str = "Board";
const INTERFACES: &str = "Interfaces";
const DEFAULTS: &str = "Defaults";
const INTERFACE_PREFIX: &str = "Interface ";

/// Why a board config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardErrorKind {
    /// The file cannot be read.
    Io(String),
    /// The file is not a valid keyfile.
    Parse(ParseError),
    /// A group that board configs do not have.
    UnknownGroup(String),
    /// A key that the group does not have.
    UnknownKey { group: String, key: String },
    /// A value that does not parse.
    BadValue {
        group: String,
        key: String,
        value: String,
        reason: String,
    },
    /// `[Board] Name` is missing or empty.
    MissingName,
}

/// A board config error, naming the file and (when known) the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardError {
    pub source: String,
    pub line: Option<usize>,
    /// Boxed to keep `Result<_, BoardError>` small.
    pub kind: Box<BoardErrorKind>,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "board config {}", self.source)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        match &*self.kind {
            BoardErrorKind::Io(e) => write!(f, ": cannot read: {e}"),
            BoardErrorKind::Parse(e) => write!(f, ": {e}"),
            BoardErrorKind::UnknownGroup(g) => write!(f, ": unknown group [{g}]"),
            BoardErrorKind::UnknownKey { group, key } => {
                write!(f, ": unknown key {key} in [{group}]")
            }
            BoardErrorKind::BadValue {
                group,
                key,
                value,
                reason,
            } => write!(f, ": [{group}] {key}={value:?}: {reason}"),
            BoardErrorKind::MissingName => write!(f, ": [{BOARD}] Name is missing"),
        }
    }
}

impl std::error::Error for BoardError {}

/// The board's defaults for main.conf keys; `None` = not set by the board.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoardDefaults {
    pub multipath_routing: Option<bool>,
    pub preferred_technologies: Option<Vec<Technology>>,
    pub mptcp_link: Option<MptcpLink>,
}

impl BoardDefaults {
    /// Writes the keys the board sets into `conf`. Call on the built-in
    /// defaults, before main.conf is read over them.
    pub fn apply_to(&self, conf: &mut MainConf) {
        if let Some(m) = self.multipath_routing {
            conf.multipath_routing = m;
        }
        if let Some(p) = &self.preferred_technologies {
            conf.preferred_technologies = p.clone();
        }
        if let Some(l) = self.mptcp_link {
            conf.default_mptcp_link = l;
        }
    }
}

/// A board config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    pub name: String,
    pub description: Option<String>,
    /// Patterns of interfaces to manage; empty = all (like no `-i`).
    pub manage: Vec<IfName>,
    /// Patterns of interfaces never managed (like `-I`).
    pub ignore: Vec<IfName>,
    /// Per-interface technology overrides, in file order (first match wins).
    pub technologies: Vec<(IfName, Technology)>,
    /// Interfaces that are LAN ports (`Role=lan`): never uplinks, bridged
    /// for clients when ethernet is tethered.
    pub lan_ports: Vec<IfName>,
    pub defaults: BoardDefaults,
}

/// Glob match with `*` (any run) and `?` (one character), as ConnMan's
/// `g_pattern_match_simple` for `-i`/`-I`.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Position after the last `*` and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

struct Checker<'a> {
    kf: &'a KeyFile,
    source: &'a str,
}

impl Checker<'_> {
    fn err(&self, group: &str, key: Option<&str>, kind: BoardErrorKind) -> BoardError {
        BoardError {
            source: self.source.to_string(),
            line: key.and_then(|k| self.kf.line_of(group, k)),
            kind: Box::new(kind),
        }
    }

    fn bad(&self, group: &str, key: &str, value: &str, reason: impl Into<String>) -> BoardError {
        self.err(
            group,
            Some(key),
            BoardErrorKind::BadValue {
                group: group.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                reason: reason.into(),
            },
        )
    }

    fn value(&self, group: &str, key: &str, e: ValueError) -> BoardError {
        match e {
            ValueError::Invalid {
                value, expected, ..
            } => self.bad(group, key, &value, format!("expected {expected}")),
            other => self.bad(group, key, "", other.to_string()),
        }
    }

    fn only_keys(&self, group: &str, allowed: &[&str]) -> Result<(), BoardError> {
        match self.kf.keys(group).find(|k| !allowed.contains(k)) {
            Some(k) => Err(self.err(
                group,
                Some(k),
                BoardErrorKind::UnknownKey {
                    group: group.to_string(),
                    key: k.to_string(),
                },
            )),
            None => Ok(()),
        }
    }

    fn pattern(&self, group: &str, key: &str, s: &str) -> Result<IfName, BoardError> {
        if s.is_empty() || s.contains(['/', ' ']) {
            return Err(self.bad(group, key, s, "not an interface name"));
        }
        IfName::try_from(s).map_err(|_| {
            self.bad(
                group,
                key,
                s,
                format!("longer than {} characters", caps::MAX_IFNAME_LEN),
            )
        })
    }

    fn patterns(&self, key: &str) -> Result<Vec<IfName>, BoardError> {
        conf_list(self.kf, INTERFACES, key)
            .unwrap_or_default()
            .iter()
            .map(|s| self.pattern(INTERFACES, key, s))
            .collect()
    }
}

impl Board {
    /// Reads and checks a board config.
    pub fn load(path: &Path) -> Result<Board, BoardError> {
        let source = path.display().to_string();
        let bytes = file::read_bounded(path, Links::Follow).map_err(|e| BoardError {
            source: source.clone(),
            line: None,
            kind: Box::new(BoardErrorKind::Io(e.to_string())),
        })?;
        Board::parse(&bytes, &source)
    }

    /// Parses a board config; `source` names the file in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Board, BoardError> {
        let (kf, _duplicates_already_logged) =
            KeyFile::parse_bytes(bytes, source).map_err(|e| BoardError {
                source: source.to_string(),
                line: Some(e.line),
                kind: Box::new(BoardErrorKind::Parse(e)),
            })?;
        let c = Checker { kf: &kf, source };

        c.only_keys(BOARD, &["Name", "Description"])?;
        let name = kf.get_string(BOARD, "Name").unwrap_or_default();
        if name.is_empty() {
            return Err(c.err(BOARD, Some("Name"), BoardErrorKind::MissingName));
        }
        let description = kf
            .get_string(BOARD, "Description")
            .filter(|d| !d.is_empty());

        c.only_keys(INTERFACES, &["Manage", "Ignore"])?;
        let manage = c.patterns("Manage")?;
        let ignore = c.patterns("Ignore")?;

        let mut technologies = Vec::new();
        let mut lan_ports = Vec::new();
        for group in kf.groups() {
            if let Some(ifname) = group.strip_prefix(INTERFACE_PREFIX) {
                c.only_keys(group, &["Technology", "Role"])?;
                let pattern = c.pattern(group, "Technology", ifname.trim())?;
                match kf.get_string(group, "Role").as_deref() {
                    None | Some("uplink") => {}
                    Some("lan") => lan_ports.push(pattern.clone()),
                    Some(other) => {
                        return Err(c.bad(group, "Role", other, "expected uplink or lan"))
                    }
                }
                let Some(value) = kf.get_string(group, "Technology") else {
                    continue;
                };
                let tech = Technology::parse(&value).ok_or_else(|| {
                    c.bad(
                        group,
                        "Technology",
                        &value,
                        "expected ethernet, gadget, wifi or cellular",
                    )
                })?;
                technologies.push((pattern, tech));
            } else if ![BOARD, INTERFACES, DEFAULTS].contains(&group) {
                return Err(c.err(group, None, BoardErrorKind::UnknownGroup(group.to_string())));
            }
        }

        c.only_keys(
            DEFAULTS,
            &[
                "MultipathRouting",
                "PreferredTechnologies",
                MPTCP_LINK_KEY,
                MPTCP_LINK_ALIAS,
            ],
        )?;
        let multipath_routing = kf
            .get_bool(DEFAULTS, "MultipathRouting")
            .map_err(|e| c.value(DEFAULTS, "MultipathRouting", e))?;
        let preferred_technologies = match conf_list(&kf, DEFAULTS, "PreferredTechnologies") {
            None => None,
            Some(items) => {
                let mut bad = Vec::new();
                let techs = technology_list(&items, &mut bad);
                if let Some(b) = bad.first() {
                    return Err(c.bad(DEFAULTS, "PreferredTechnologies", b, "unknown technology"));
                }
                Some(techs)
            }
        };
        let link_key = match (
            kf.get_raw(DEFAULTS, MPTCP_LINK_KEY),
            kf.get_raw(DEFAULTS, MPTCP_LINK_ALIAS),
        ) {
            (Some(_), Some(old)) => {
                return Err(c.bad(
                    DEFAULTS,
                    MPTCP_LINK_ALIAS,
                    old,
                    format!("set twice, as {MPTCP_LINK_KEY} and under its old name"),
                ))
            }
            (None, Some(_)) => {
                log::warn!(
                    "board config {source}:{}: [{DEFAULTS}] {MPTCP_LINK_ALIAS} is a deprecated \
                     name, read as {MPTCP_LINK_KEY}: rename it",
                    kf.line_of(DEFAULTS, MPTCP_LINK_ALIAS).unwrap_or(0)
                );
                MPTCP_LINK_ALIAS
            }
            _ => MPTCP_LINK_KEY,
        };
        let mptcp_link = match kf.get_string(DEFAULTS, link_key) {
            None => None,
            Some(v) => Some(
                MptcpLink::parse(&v)
                    .ok_or_else(|| c.bad(DEFAULTS, link_key, &v, "expected on, backup or off"))?,
            ),
        };

        Ok(Board {
            name,
            description,
            manage,
            ignore,
            technologies,
            lan_ports,
            defaults: BoardDefaults {
                multipath_routing,
                preferred_technologies,
                mptcp_link,
            },
        })
    }

    /// Whether pathman should manage `ifname` according to this board
    /// (blacklist and command-line filters are checked elsewhere).
    pub fn is_managed(&self, ifname: &str) -> bool {
        if self.ignore.iter().any(|p| pattern_matches(p, ifname)) {
            return false;
        }
        self.manage.is_empty() || self.manage.iter().any(|p| pattern_matches(p, ifname))
    }

    /// Whether `ifname` is a LAN port (`Role=lan`).
    pub fn is_lan_port(&self, ifname: &str) -> bool {
        self.lan_ports.iter().any(|p| pattern_matches(p, ifname))
    }

    /// The board's technology for `ifname`, overriding sysfs `DEVTYPE`.
    pub fn technology_of(&self, ifname: &str) -> Option<Technology> {
        self.technologies
            .iter()
            .find(|(p, _)| pattern_matches(p, ifname))
            .map(|(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Board, BoardError> {
        Board::parse(text.as_bytes(), "test.conf")
    }

    fn must(text: &str, file: &str) -> Board {
        match Board::parse(text.as_bytes(), file) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn globs_never_panic(p in "[a-c*?]{0,8}", n in "[a-c]{0,8}") {
            let _ = pattern_matches(&p, &n);
            proptest::prop_assert!(pattern_matches("*", &n));
            proptest::prop_assert!(pattern_matches(&n, &n));
        }
    }

    #[test]
    fn globs() {
        assert!(pattern_matches("lan*", "lan1"));
        assert!(pattern_matches("lan*", "lan"));
        assert!(!pattern_matches("lan*", "wan"));
        assert!(pattern_matches("e?h*0", "eth0"));
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("*a*b", "xaxxab"));
        assert!(!pattern_matches("eth0", "eth01"));
    }

    #[test]
    fn full_board() {
        let b = must(
            "[Board]\nName=t\n[Interfaces]\nManage=eth*,usb0\nIgnore=eth9\n\
             [Interface usb0]\nTechnology=gadget\n\
             [Defaults]\nMultipathRouting=true\nPreferredTechnologies=wifi,ethernet\nMultipathTcpLink=backup\n",
            "t",
        );
        assert!(b.is_managed("eth0") && b.is_managed("usb0"));
        assert!(!b.is_managed("eth9") && !b.is_managed("wlan0"));
        assert_eq!(b.technology_of("usb0"), Some(Technology::Gadget));
        assert_eq!(b.technology_of("eth0"), None);
        let mut conf = MainConf::default();
        b.defaults.apply_to(&mut conf);
        assert!(conf.multipath_routing);
        assert_eq!(conf.default_mptcp_link, MptcpLink::Backup);
        assert_eq!(
            conf.preferred_technologies,
            [Technology::Wifi, Technology::Ethernet]
        );
    }

    #[test]
    fn main_conf_wins_over_board() {
        let b = must(
            "[Board]\nName=t\n[Defaults]\nMultipathRouting=true\nMultipathTcpLink=off\n",
            "t",
        );
        let mut base = MainConf::default();
        b.defaults.apply_to(&mut base);
        let (conf, w) =
            MainConf::parse_over(base, b"[General]\nMultipathRouting=false\n", "main.conf");
        assert!(w.is_empty());
        assert!(!conf.multipath_routing);
        assert_eq!(conf.default_mptcp_link, MptcpLink::Off);
    }

    /// The board's default MultipathTcpLink has the Service property's name;
    /// the old `MptcpLink` is still read, and setting both is an error.
    #[test]
    fn multipath_tcp_link_and_its_old_name() {
        let b = must("[Board]\nName=t\n[Defaults]\nMptcpLink=backup\n", "t");
        assert_eq!(b.defaults.mptcp_link, Some(MptcpLink::Backup));
        let b = must("[Board]\nName=t\n[Defaults]\nMultipathTcpLink=off\n", "t");
        assert_eq!(b.defaults.mptcp_link, Some(MptcpLink::Off));
        let e =
            parse("[Board]\nName=t\n[Defaults]\nMultipathTcpLink=off\nMptcpLink=on\n").unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.to_string().contains("set twice"), "{e}");
        let e = parse("[Board]\nName=t\n[Defaults]\nMptcpLink=sometimes\n").unwrap_err();
        assert!(e.to_string().contains("MptcpLink"), "{e}");
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = parse("[Board]\nName=t\n[Defaults]\nMultipathRouting=maybe\n").unwrap_err();
        assert_eq!(e.line, Some(4));
        let msg = e.to_string();
        assert!(
            msg.contains("test.conf:4")
                && msg.contains("MultipathRouting")
                && msg.contains("maybe"),
            "{msg}"
        );

        let e = parse("[Board]\nName=t\n[Interface usb0]\nTechnology=laser\n").unwrap_err();
        assert!(e.to_string().contains("laser"));
        let e =
            parse("[Board]\nName=t\n[Interfaces]\nManage=averyveryverylongname0\n").unwrap_err();
        assert!(e.to_string().contains("Manage"));
        let e = parse("[Board]\nName=t\n[Interfaces]\nManaged=eth0\n").unwrap_err();
        assert!(matches!(*e.kind, BoardErrorKind::UnknownKey { .. }));
        assert_eq!(e.line, Some(4));
        let e = parse("[Board]\nName=t\n[Bogus]\n").unwrap_err();
        assert!(matches!(*e.kind, BoardErrorKind::UnknownGroup(_)));
        let e = parse("[Interfaces]\nManage=eth0\n").unwrap_err();
        assert_eq!(*e.kind, BoardErrorKind::MissingName);
        let e = parse("[Board]\nName=t\njunk\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(Board::load(Path::new("/nonexistent/board.conf")).is_err());
    }

    #[test]
    fn shipped_board_configs_parse() {
        let x86 = must(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/board-configs/x86-lab.conf"
            )),
            "x86-lab.conf",
        );
        assert!(x86.is_managed("eth2") && !x86.is_managed("eth3"));

        let rpi = must(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/board-configs/rpi-gadget.conf"
            )),
            "rpi-gadget.conf",
        );
        assert_eq!(rpi.technology_of("usb0"), Some(Technology::Gadget));
        assert_eq!(rpi.technology_of("wlan0"), Some(Technology::Wifi));
        assert_eq!(rpi.technology_of("eth0"), Some(Technology::Ethernet));

        let owrt = must(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/board-configs/openwrt-2wan.conf"
            )),
            "openwrt-2wan.conf",
        );
        assert!(owrt.is_managed("wan") && owrt.is_managed("wan2"));
        assert!(!owrt.is_managed("br-lan") && !owrt.is_managed("lan3"));
        assert_eq!(owrt.defaults.multipath_routing, Some(true));

        let example = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/board-configs/main.conf.example"
        ));
        let (conf, warnings) =
            MainConf::parse_over(MainConf::default(), example.as_bytes(), "main.conf.example");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(conf, MainConf::default());
        // Uncommented, every documented default must be the real default.
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest)
                    if rest.starts_with(|c: char| c.is_ascii_uppercase()) && rest.contains('=') =>
                {
                    rest
                }
                _ => l,
            })
            .flat_map(|l| [l, "\n"])
            .collect();
        let (conf, warnings) = MainConf::parse_over(
            MainConf::default(),
            uncommented.as_bytes(),
            "main.conf.example",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(conf, MainConf::default());
        assert!(uncommented.matches("\n#").count() < example.matches("\n#").count());
    }
}
