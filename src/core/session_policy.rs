//! A session's effective settings: what the client asked for, narrowed by the
//! policy file rule that applies to it, with ConnMan's merge rules
//! (`src/session.c` apply_policy_on_bearers / apply_policy_on_type). Pure: the
//! caller resolves user and group names and reads the policy files.

use std::fmt;

use crate::core::types::Technology;

/// `ConnectionType` of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnectionType {
    /// Only a connected (ready) service is needed.
    Local,
    /// Only an online service will do.
    Internet,
    /// Either; ConnMan's default when the client gives none.
    #[default]
    Any,
}

impl ConnectionType {
    /// Parses `local`, `internet`, `any`. ConnMan stores anything else as an
    /// "unknown" type that matches no service; pathman refuses it instead.
    pub fn parse(s: &str) -> Option<ConnectionType> {
        match s {
            "local" => Some(ConnectionType::Local),
            "internet" => Some(ConnectionType::Internet),
            "any" => Some(ConnectionType::Any),
            _ => None,
        }
    }

    /// The D-Bus / policy file string.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::Local => "local",
            ConnectionType::Internet => "internet",
            ConnectionType::Any => "any",
        }
    }
}

impl fmt::Display for ConnectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One group of a policy file, with `uid`/`gid` already resolved to numbers.
/// The loader ensures exactly one of them is set; should both be, the rule is
/// found by either.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRule {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `None` when the group has no `AllowedBearers` key: every bearer is
    /// allowed. `Some(empty)` allows none.
    pub allowed_bearers: Option<Vec<Technology>>,
    /// `None` when the group has no `ConnectionType` key (= `any`).
    pub connection_type: Option<ConnectionType>,
    /// `SelectorScope = all`: the session's selectors mark every user's
    /// packets (otherwise an unprivileged owner's session marks only the
    /// owner's own sockets).
    pub selectors_for_all_users: bool,
}

/// The settings a client gave (CreateSession / Change), already validated.
///
/// `allowed_bearers` holds technologies rather than strings: the D-Bus layer
/// runs [`parse_bearers`] when the request arrives, so a bad name becomes an
/// `InvalidArguments` reply there and a stored `UserSettings` is always valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSettings {
    /// Order = preference.
    pub allowed_bearers: Vec<Technology>,
    pub connection_type: ConnectionType,
    /// `None` = any interface.
    pub allowed_interface: Option<String>,
    pub source_ip_rule: bool,
    /// Stored and reported back; pathman does not act on it.
    pub context_identifier: String,
}

impl Default for UserSettings {
    /// What a CreateSession without settings gets: all bearers (`*`), `any`.
    fn default() -> Self {
        UserSettings {
            allowed_bearers: Technology::ALL.to_vec(),
            connection_type: ConnectionType::Any,
            allowed_interface: None,
            source_ip_rule: false,
            context_identifier: String::new(),
        }
    }
}

/// The settings that govern the session after the policy is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Order = preference. Empty = the session never connects.
    pub allowed_bearers: Vec<Technology>,
    pub connection_type: ConnectionType,
    pub allowed_interface: Option<String>,
    pub source_ip_rule: bool,
    /// Identity of the policy rule that applied, for `meta skuid` marking.
    pub policy_uid: Option<u32>,
    /// Identity of the policy rule that applied, for `meta skgid` marking.
    pub policy_gid: Option<u32>,
    /// The policy lets the session's selectors mark every user's packets.
    pub selectors_for_all_users: bool,
}

/// A bearer name pathman does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerError {
    /// The name as given.
    pub name: String,
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown bearer '{}' (known: ethernet, wifi, cellular, gadget or *)",
            self.name
        )
    }
}

impl std::error::Error for BearerError {}

/// Parses an `AllowedBearers` list. `*` stands for every technology pathman
/// has (ethernet, wifi, cellular, gadget, in rank order); ConnMan's
/// `bluetooth` and `vpn` are unknown here and refused by name. A bearer that
/// appears twice keeps its first place, so `["wifi", "*"]` means "wifi first,
/// then anything". An empty string is skipped, as ConnMan does
/// (`connman_session_parse_bearers`). An empty list is valid and allows
/// nothing.
pub fn parse_bearers(items: &[String]) -> Result<Vec<Technology>, BearerError> {
    let mut out: Vec<Technology> = Vec::with_capacity(Technology::ALL.len());
    let mut add = |t: Technology| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for item in items {
        match item.as_str() {
            "" => {}
            "*" => Technology::ALL.into_iter().for_each(&mut add),
            name => match Technology::parse(name) {
                Some(t) => add(t),
                None => return Err(BearerError { name: name.into() }),
            },
        }
    }
    Ok(out)
}

/// Merges the client's settings with the policy rule that applies (if any).
///
/// - Bearers: the user's bearers, in the user's order, that the policy also
///   allows. This is what ConnMan's code does (it walks the user list and
///   filters by the policy list), and keeps SPEC's "order = preference".
/// - Connection type: policy `any` (or none) → the user's; policy `local` →
///   `local`; policy `internet` → `internet`, even if the user asked for
///   `local` (ConnMan's rule, kept for compatibility).
/// - Interface and SourceIPRule: the user's; policy files carry neither.
pub fn effective(user: &UserSettings, policy: Option<&PolicyRule>) -> Effective {
    let policy_bearers = policy.and_then(|p| p.allowed_bearers.as_deref());
    let allowed_bearers = match policy_bearers {
        None => user.allowed_bearers.clone(),
        Some(allowed) => user
            .allowed_bearers
            .iter()
            .copied()
            .filter(|b| allowed.contains(b))
            .collect(),
    };
    let connection_type = match policy.and_then(|p| p.connection_type) {
        None | Some(ConnectionType::Any) => user.connection_type,
        Some(ConnectionType::Local) => ConnectionType::Local,
        Some(ConnectionType::Internet) => ConnectionType::Internet,
    };
    Effective {
        allowed_bearers,
        connection_type,
        allowed_interface: user.allowed_interface.clone(),
        source_ip_rule: user.source_ip_rule,
        policy_uid: policy.and_then(|p| p.uid),
        policy_gid: policy.and_then(|p| p.gid),
        selectors_for_all_users: policy.is_some_and(|p| p.selectors_for_all_users),
    }
}

/// The policy rule for a client: the first rule naming its uid; failing
/// that, the rule of its first group (in `gids` order, primary group first,
/// as ConnMan walks `getgrouplist`) that has one. Among rules for the same id
/// the first wins.
pub fn find_policy<'a>(rules: &'a [PolicyRule], uid: u32, gids: &[u32]) -> Option<&'a PolicyRule> {
    rules.iter().find(|r| r.uid == Some(uid)).or_else(|| {
        gids.iter()
            .find_map(|g| rules.iter().find(|r| r.gid == Some(*g)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Technology::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn user(bearers: &[Technology], ty: ConnectionType) -> UserSettings {
        UserSettings {
            allowed_bearers: bearers.to_vec(),
            connection_type: ty,
            ..UserSettings::default()
        }
    }

    fn rule(bearers: Option<&[Technology]>, ty: Option<ConnectionType>) -> PolicyRule {
        PolicyRule {
            uid: Some(1000),
            gid: None,
            allowed_bearers: bearers.map(<[Technology]>::to_vec),
            connection_type: ty,
            selectors_for_all_users: false,
        }
    }

    #[test]
    fn connection_type_strings() {
        for t in [
            ConnectionType::Local,
            ConnectionType::Internet,
            ConnectionType::Any,
        ] {
            assert_eq!(ConnectionType::parse(t.as_str()), Some(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(ConnectionType::parse(""), None);
        assert_eq!(ConnectionType::parse("Internet"), None);
        assert_eq!(ConnectionType::default(), ConnectionType::Any);
    }

    #[test]
    fn bearers_parse() {
        assert_eq!(
            parse_bearers(&strings(&["*"])),
            Ok(vec![Ethernet, Wifi, Cellular, Gadget])
        );
        assert_eq!(
            parse_bearers(&strings(&["cellular", "wifi"])),
            Ok(vec![Cellular, Wifi])
        );
        assert_eq!(
            parse_bearers(&strings(&["wifi", "*"])),
            Ok(vec![Wifi, Ethernet, Cellular, Gadget])
        );
        assert_eq!(
            parse_bearers(&strings(&["gadget", "gadget", "*", "*"])),
            Ok(vec![Gadget, Ethernet, Wifi, Cellular])
        );
        assert_eq!(parse_bearers(&[]), Ok(vec![]));
        assert_eq!(parse_bearers(&strings(&["", "wifi", ""])), Ok(vec![Wifi]));
    }

    #[test]
    fn bearer_errors_name_the_bearer() {
        for bad in ["bluetooth", "vpn", "Ethernet", "wlan", " wifi"] {
            let e = parse_bearers(&strings(&["wifi", bad])).unwrap_err();
            assert_eq!(e.name, bad);
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn no_policy_keeps_user_settings() {
        let u = UserSettings {
            allowed_bearers: vec![Cellular, Ethernet],
            connection_type: ConnectionType::Local,
            allowed_interface: Some("eth1".into()),
            source_ip_rule: true,
            context_identifier: "ctx".into(),
        };
        assert_eq!(
            effective(&u, None),
            Effective {
                allowed_bearers: vec![Cellular, Ethernet],
                connection_type: ConnectionType::Local,
                allowed_interface: Some("eth1".into()),
                source_ip_rule: true,
                policy_uid: None,
                policy_gid: None,
                selectors_for_all_users: false,
            }
        );
    }

    #[test]
    fn bearers_are_users_order_filtered_by_policy() {
        let u = user(&[Cellular, Wifi, Ethernet], ConnectionType::Any);
        let p = rule(Some(&[Ethernet, Gadget, Cellular]), None);
        assert_eq!(
            effective(&u, Some(&p)).allowed_bearers,
            vec![Cellular, Ethernet]
        );
    }

    #[test]
    fn policy_without_bearers_allows_all() {
        let u = user(&[Gadget, Wifi], ConnectionType::Any);
        let p = rule(None, None);
        assert_eq!(effective(&u, Some(&p)).allowed_bearers, vec![Gadget, Wifi]);
    }

    #[test]
    fn empty_lists_allow_nothing() {
        let p = rule(Some(&[]), None);
        let u = user(&[Ethernet], ConnectionType::Any);
        assert!(effective(&u, Some(&p)).allowed_bearers.is_empty());
        let u = user(&[], ConnectionType::Any);
        let p = rule(Some(&[Ethernet]), None);
        assert!(effective(&u, Some(&p)).allowed_bearers.is_empty());
    }

    #[test]
    fn disjoint_bearers_allow_nothing() {
        let u = user(&[Wifi], ConnectionType::Any);
        let p = rule(Some(&[Cellular]), None);
        assert!(effective(&u, Some(&p)).allowed_bearers.is_empty());
    }

    #[test]
    fn connection_type_merge_table() {
        use ConnectionType::*;
        let cases = [
            // (policy, user, effective)
            (None, Local, Local),
            (None, Internet, Internet),
            (None, Any, Any),
            (Some(Any), Local, Local),
            (Some(Any), Internet, Internet),
            (Some(Any), Any, Any),
            (Some(Local), Local, Local),
            (Some(Local), Internet, Local),
            (Some(Local), Any, Local),
            (Some(Internet), Local, Internet),
            (Some(Internet), Internet, Internet),
            (Some(Internet), Any, Internet),
        ];
        for (policy, user_type, want) in cases {
            let u = user(&[Ethernet], user_type);
            let p = rule(None, policy);
            assert_eq!(
                effective(&u, Some(&p)).connection_type,
                want,
                "policy {policy:?} user {user_type:?}"
            );
        }
    }

    #[test]
    fn interface_and_source_ip_rule_stay_users() {
        let mut u = user(&[Ethernet], ConnectionType::Any);
        u.allowed_interface = Some("wwan0".into());
        u.source_ip_rule = true;
        let p = rule(Some(&[Ethernet]), Some(ConnectionType::Local));
        let e = effective(&u, Some(&p));
        assert_eq!(e.allowed_interface.as_deref(), Some("wwan0"));
        assert!(e.source_ip_rule);
    }

    #[test]
    fn effective_carries_the_rule_identity() {
        let u = UserSettings::default();
        let by_uid = rule(None, None);
        let e = effective(&u, Some(&by_uid));
        assert_eq!((e.policy_uid, e.policy_gid), (Some(1000), None));
        let by_gid = PolicyRule {
            uid: None,
            gid: Some(27),
            ..PolicyRule::default()
        };
        let e = effective(&u, Some(&by_gid));
        assert_eq!((e.policy_uid, e.policy_gid), (None, Some(27)));
        assert_eq!(e.allowed_bearers, Technology::ALL.to_vec());
    }

    #[test]
    fn default_user_settings_are_connmans() {
        let u = UserSettings::default();
        assert_eq!(u.allowed_bearers, vec![Ethernet, Wifi, Cellular, Gadget]);
        assert_eq!(u.connection_type, ConnectionType::Any);
        assert_eq!(u.allowed_interface, None);
        assert!(!u.source_ip_rule);
    }

    #[test]
    fn find_policy_prefers_uid_then_groups_in_order() {
        let by_gid = |gid, bearer| PolicyRule {
            uid: None,
            gid: Some(gid),
            allowed_bearers: Some(vec![bearer]),
            connection_type: None,
            selectors_for_all_users: false,
        };
        let by_uid = |uid, bearer| PolicyRule {
            uid: Some(uid),
            gid: None,
            allowed_bearers: Some(vec![bearer]),
            connection_type: None,
            selectors_for_all_users: false,
        };
        let rules = vec![
            by_gid(100, Ethernet),
            by_gid(200, Wifi),
            by_uid(1000, Cellular),
            by_uid(1000, Gadget),
        ];
        // uid beats any group, first rule for the uid wins.
        assert_eq!(find_policy(&rules, 1000, &[100]), Some(&rules[2]));
        // Groups in the caller's order, not file order.
        assert_eq!(find_policy(&rules, 1, &[200, 100]), Some(&rules[1]));
        assert_eq!(find_policy(&rules, 1, &[300, 100]), Some(&rules[0]));
        assert_eq!(find_policy(&rules, 1, &[300]), None);
        assert_eq!(find_policy(&rules, 1, &[]), None);
        assert_eq!(find_policy(&[], 1000, &[100]), None);
    }
}
