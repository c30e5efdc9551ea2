//! ConnMan session policy files (`*.policy`, reference/connman.md §2.2):
//! `[policy_*]` groups that bind a user, group or SELinux type to session
//! restrictions. Parsing only; the session code applies them.
//!
//! Stricter than ConnMan on purpose: a misspelt key or value in a policy
//! would otherwise silently grant more than intended, so it is an error
//! naming the file, group and key. Groups not named `policy_*` are skipped,
//! as ConnMan does.

use std::fmt;
use std::path::Path;

use super::keyfile::{KeyFile, ParseError};

/// Bearer names a policy may allow (ConnMan's, `*` = all but vpn).
const BEARERS: &[&str] = &[
    "ethernet",
    "wifi",
    "bluetooth",
    "cellular",
    "gadget",
    "vpn",
    "*",
];

/// Whom a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyId {
    /// A user name (`uid = name`).
    User(String),
    /// A group name (`gid = name`).
    Group(String),
    /// An SELinux type (`selinux = type`).
    Selinux(String),
}

pub use crate::core::session_policy::ConnectionType;

/// `RoamingPolicy` (stored; ConnMan never acts on it either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoamingPolicy {
    #[default]
    Default,
    Always,
    Forbidden,
    National,
    International,
}

/// One `[policy_*]` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The group name, for messages.
    pub name: String,
    pub id: PolicyId,
    /// Allowed bearers in preference order; `None` = not restricted.
    pub allowed_bearers: Option<Vec<String>>,
    pub connection_type: ConnectionType,
    /// Stored; not acted on (as in ConnMan).
    pub priority: bool,
    pub roaming_policy: RoamingPolicy,
    pub emergency_call: bool,
    /// pathman's `SelectorScope = all`: the flow selectors and SourceIPRule
    /// of sessions this rule applies to mark every user's packets, not only
    /// the session owner's (default `user`; root and AdminGroup sessions
    /// always mark everyone's).
    pub selectors_for_all_users: bool,
}

/// What is wrong in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyErrorKind {
    Io(String),
    Parse(ParseError),
    /// None or more than one of `uid`, `gid`, `selinux`.
    Identity,
    UnknownKey,
    BadValue(String),
}

/// A policy file error naming the file, and the group and key when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub group: Option<String>,
    pub key: Option<String>,
    pub kind: PolicyErrorKind,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy file {}", self.file)?;
        if let Some(g) = &self.group {
            write!(f, " [{g}]")?;
        }
        if let Some(k) = &self.key {
            write!(f, " {k}")?;
        }
        match &self.kind {
            PolicyErrorKind::Io(e) => write!(f, ": cannot read: {e}"),
            PolicyErrorKind::Parse(e) => write!(f, ": {e}"),
            PolicyErrorKind::Identity => {
                write!(f, ": needs exactly one of uid, gid and selinux")
            }
            PolicyErrorKind::UnknownKey => write!(f, ": unknown key"),
            PolicyErrorKind::BadValue(v) => write!(f, ": bad value {v:?}"),
        }
    }
}

impl std::error::Error for PolicyError {}

const KEYS: &[&str] = &[
    "uid",
    "gid",
    "selinux",
    "AllowedBearers",
    "ConnectionType",
    "Priority",
    "RoamingPolicy",
    "EmergencyCall",
    "SelectorScope",
];

/// Parses one policy file; `file` names it in errors.
pub fn parse_policies(bytes: &[u8], file: &str) -> Result<Vec<Policy>, PolicyError> {
    let err = |group: Option<&str>, key: Option<&str>, kind| PolicyError {
        file: file.to_string(),
        group: group.map(str::to_string),
        key: key.map(str::to_string),
        kind,
    };
    let (kf, _) = KeyFile::parse_bytes(bytes, file)
        .map_err(|e| err(None, None, PolicyErrorKind::Parse(e)))?;
    let mut out = Vec::new();
    for group in kf.groups().filter(|g| g.starts_with("policy_")) {
        let g = Some(group);
        if let Some(k) = kf.keys(group).find(|k| !KEYS.contains(k)) {
            return Err(err(g, Some(k), PolicyErrorKind::UnknownKey));
        }
        let string = |key: &str| kf.get_string(group, key);
        let ids: Vec<PolicyId> = [
            string("uid").map(PolicyId::User),
            string("gid").map(PolicyId::Group),
            string("selinux").map(PolicyId::Selinux),
        ]
        .into_iter()
        .flatten()
        .collect();
        let [id] =
            <[PolicyId; 1]>::try_from(ids).map_err(|_| err(g, None, PolicyErrorKind::Identity))?;
        let bad = |key: &str, v: &str| err(g, Some(key), PolicyErrorKind::BadValue(v.to_string()));

        let allowed_bearers = match string("AllowedBearers") {
            None => None,
            Some(v) => {
                let list: Vec<String> = v.split_whitespace().map(str::to_string).collect();
                if let Some(b) = list.iter().find(|b| !BEARERS.contains(&b.as_str())) {
                    return Err(bad("AllowedBearers", b));
                }
                Some(list)
            }
        };
        let connection_type = match string("ConnectionType").as_deref() {
            None | Some("any") => ConnectionType::Any,
            Some("local") => ConnectionType::Local,
            Some("internet") => ConnectionType::Internet,
            Some(v) => return Err(bad("ConnectionType", v)),
        };
        let roaming_policy = match string("RoamingPolicy").as_deref() {
            None | Some("default") => RoamingPolicy::Default,
            Some("always") => RoamingPolicy::Always,
            Some("forbidden") => RoamingPolicy::Forbidden,
            Some("national") => RoamingPolicy::National,
            Some("international") => RoamingPolicy::International,
            Some(v) => return Err(bad("RoamingPolicy", v)),
        };
        let selectors_for_all_users = match string("SelectorScope").as_deref() {
            None | Some("user") => false,
            Some("all") => true,
            Some(v) => return Err(bad("SelectorScope", v)),
        };
        let flag = |key: &str| {
            kf.get_bool(group, key)
                .map(|b| b.unwrap_or(false))
                .map_err(|_| bad(key, kf.get_raw(group, key).unwrap_or_default()))
        };
        out.push(Policy {
            name: group.to_string(),
            id,
            allowed_bearers,
            connection_type,
            priority: flag("Priority")?,
            roaming_policy,
            emergency_call: flag("EmergencyCall")?,
            selectors_for_all_users,
        });
    }
    Ok(out)
}

/// Reads one policy file (a regular file within the size cap; a FIFO or a
/// device dropped into the policy dir is refused, not waited on).
pub fn load_policy_file(path: &Path) -> Result<Vec<Policy>, PolicyError> {
    let file = path.display().to_string();
    match super::file::read_bounded(path, super::file::Links::Follow) {
        Ok(bytes) => parse_policies(&bytes, &file),
        Err(e) => Err(PolicyError {
            file,
            group: None,
            key: None,
            kind: PolicyErrorKind::Io(e.to_string()),
        }),
    }
}

/// True for names ConnMan reads from the policy dir: `*.policy`, not hidden.
pub fn is_policy_file_name(name: &str) -> bool {
    name.ends_with(".policy") && !name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# from doc/session-policy-format.txt
[policy_foo]
uid = foo
AllowedBearers = wifi cellular
ConnectionType = internet
Priority = true
RoamingPolicy = forbidden

[policy_bar]
gid = bar
EmergencyCall = true

[other]
ignored = yes
";

    #[test]
    fn connman_example() {
        let p = parse_policies(EXAMPLE.as_bytes(), "a.policy").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].id, PolicyId::User("foo".into()));
        assert_eq!(
            p[0].allowed_bearers.as_deref(),
            Some(&["wifi".to_string(), "cellular".to_string()][..])
        );
        assert_eq!(p[0].connection_type, ConnectionType::Internet);
        assert!(p[0].priority && !p[0].emergency_call);
        assert_eq!(p[0].roaming_policy, RoamingPolicy::Forbidden);
        assert_eq!(p[1].id, PolicyId::Group("bar".into()));
        assert_eq!(p[1].allowed_bearers, None);
        assert!(p[1].emergency_call);
    }

    #[test]
    fn errors_name_file_group_key() {
        let e = parse_policies(b"[policy_x]\nuid=a\ngid=b\n", "x.policy").unwrap_err();
        assert_eq!(e.kind, PolicyErrorKind::Identity);
        assert!(e.to_string().contains("x.policy [policy_x]"));
        let e = parse_policies(
            b"[policy_x]\nselinux=t\nAllowedBearers=wifi laser\n",
            "x.policy",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy file x.policy [policy_x] AllowedBearers: bad value \"laser\""
        );
        let e = parse_policies(b"[policy_x]\nuid=a\nPriority=yes\n", "x.policy").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("Priority"));
        let e = parse_policies(b"[policy_x]\nuid=a\nAllowedBearer=wifi\n", "x.policy").unwrap_err();
        assert_eq!(e.kind, PolicyErrorKind::UnknownKey);
        assert!(parse_policies(b"garbage\n", "x.policy").is_err());
        assert!(load_policy_file(Path::new("/nonexistent/x.policy")).is_err());
        assert!(is_policy_file_name("a.policy") && !is_policy_file_name(".a.policy"));
    }

    /// A FIFO or a link to /dev/zero among the policy files is an error
    /// for that file at once, not a hang or an unbounded read.
    #[test]
    fn special_files_are_refused() {
        let tmp = crate::test_dir::TempDir::new("policy");
        let dir = tmp.0.clone();
        let fifo = dir.join("fifo.policy");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let zero = dir.join("zero.policy");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let from_fifo = load_policy_file(&fifo);
        let from_zero = load_policy_file(&zero);
        let e = from_fifo.unwrap_err().to_string();
        assert!(e.contains("fifo.policy") && e.contains("FIFO"), "{e}");
        let e = from_zero.unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
    }
}
