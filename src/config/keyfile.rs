//! The one keyfile parser and writer: GLib key-file syntax as ConnMan writes
//! it, used for main.conf, board configs, policy files and the state dir.
//!
//! Syntax accepted:
//! - `[group]` headers (name: anything but `[`, `]` and control characters),
//! - `key=value`; spaces and tabs around the key and the value are trimmed,
//! - `#` comments and blank lines (both dropped: a rewritten file has none),
//! - `\r\n` line ends.
//!
//! Values are stored raw (as written in the file) and decoded by the getters:
//! [`KeyFile::get_string`] undoes GLib's escapes `\s \n \t \r \\`;
//! [`KeyFile::get_list`] splits on a separator (`;` in GLib files, `,` in
//! ConnMan's main.conf), honours `\<sep>` inside items, trims spaces around
//! items and drops one trailing empty item (GLib writes `a;b;`). An unknown
//! escape is kept literally rather than failing, because ConnMan writes some
//! values (Passphrase) with C escapes that GLib's decoder would refuse.
//!
//! Booleans: exactly GLib's rule, lowercase `true`/`1` and `false`/`0`;
//! `True` or `yes` are errors (ConnMan would read them as false with an error).
//!
//! Duplicate keys: the last wins and a [`Warning`] is returned. A group that
//! appears twice is merged, as GLib does. Group and key order is kept.

use std::fmt;

use super::{Warning, WarningKind};

/// A line that is not a group header, comment, blank or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: ParseErrorReason,
}

/// Why a line did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorReason {
    /// Neither a group, a comment nor `key=value`.
    NotKeyValue,
    /// `key=value` before the first `[group]`.
    KeyOutsideGroup,
    /// `=value` without a key.
    EmptyKey,
    /// `[...]` with an empty name, a nested bracket or a control character.
    BadGroupName,
    /// The file is not UTF-8.
    NotUtf8,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason {
            ParseErrorReason::NotKeyValue => "not a [group], # comment or key=value line",
            ParseErrorReason::KeyOutsideGroup => "key=value before the first [group]",
            ParseErrorReason::EmptyKey => "empty key",
            ParseErrorReason::BadGroupName => "invalid group name",
            ParseErrorReason::NotUtf8 => "not valid UTF-8",
        };
        write!(f, "line {}: {}", self.line, reason)
    }
}

impl std::error::Error for ParseError {}

/// A typed getter or a setter was given something it cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The value does not parse as the requested type.
    Invalid {
        group: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    /// A setter was given a group name that cannot be written.
    BadGroupName(String),
    /// A setter was given a key that cannot be written.
    BadKey(String),
}

impl ValueError {
    /// The warning a lenient reader reports for this error.
    pub fn to_warning(&self, source: &str, line: Option<usize>) -> Warning {
        let kind = match self {
            ValueError::Invalid {
                group,
                key,
                value,
                expected,
            } => WarningKind::BadValue {
                group: group.clone(),
                key: key.clone(),
                value: value.clone(),
                reason: format!("expected {expected}"),
            },
            other => WarningKind::Corrupt {
                reason: other.to_string(),
            },
        };
        Warning::new(source, line, kind)
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Invalid {
                group,
                key,
                value,
                expected,
            } => write!(f, "[{group}] {key}={value:?}: expected {expected}"),
            ValueError::BadGroupName(g) => write!(f, "invalid group name {g:?}"),
            ValueError::BadKey(k) => write!(f, "invalid key {k:?}"),
        }
    }
}

impl std::error::Error for ValueError {}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    raw: String,
    /// Where the key was read from; 0 for keys set in memory.
    line: usize,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    entries: Vec<Entry>,
}

/// A parsed keyfile: ordered groups of ordered `key=value` entries.
///
/// Equality compares groups, keys and raw values, not line numbers.
#[derive(Debug, Clone, Default)]
pub struct KeyFile {
    groups: Vec<Group>,
}

impl PartialEq for KeyFile {
    fn eq(&self, other: &KeyFile) -> bool {
        self.groups.len() == other.groups.len()
            && self.groups.iter().zip(&other.groups).all(|(a, b)| {
                a.name == b.name
                    && a.entries.len() == b.entries.len()
                    && a.entries
                        .iter()
                        .zip(&b.entries)
                        .all(|(x, y)| x.key == y.key && x.raw == y.raw)
            })
    }
}

impl Eq for KeyFile {}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn valid_group_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '[' || c == ']' || c.is_control())
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('[')
        && !key.starts_with('#')
        && !key.starts_with(is_blank)
        && !key.ends_with(is_blank)
        && !key.chars().any(|c| c == '=' || c == '\n' || c == '\r')
}

impl KeyFile {
    /// An empty keyfile.
    pub fn new() -> KeyFile {
        KeyFile::default()
    }

    /// Parses bytes; non-UTF-8 input is an error on the line of the first
    /// bad byte.
    pub fn parse_bytes(bytes: &[u8], source: &str) -> Result<(KeyFile, Vec<Warning>), ParseError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => KeyFile::parse(text, source),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                Err(ParseError {
                    line,
                    reason: ParseErrorReason::NotUtf8,
                })
            }
        }
    }

    /// Parses text. `source` names the file in the returned warnings
    /// (duplicate keys).
    pub fn parse(text: &str, source: &str) -> Result<(KeyFile, Vec<Warning>), ParseError> {
        let mut kf = KeyFile::new();
        let mut warnings = Vec::new();
        let mut current: Option<usize> = None;
        for (idx, raw_line) in text.lines().enumerate() {
            let line = idx + 1;
            let l = raw_line.trim_matches(is_blank);
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let err = |reason| ParseError { line, reason };
            if let Some(rest) = l.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or(err(ParseErrorReason::NotKeyValue))?;
                if !valid_group_name(name) {
                    return Err(err(ParseErrorReason::BadGroupName));
                }
                current = Some(kf.group_index_or_insert(name));
                continue;
            }
            let (key, value) = l
                .split_once('=')
                .ok_or(err(ParseErrorReason::NotKeyValue))?;
            let key = key.trim_end_matches(is_blank);
            if key.is_empty() {
                return Err(err(ParseErrorReason::EmptyKey));
            }
            let gi = current.ok_or(err(ParseErrorReason::KeyOutsideGroup))?;
            let group = &mut kf.groups[gi];
            let entry = Entry {
                key: key.to_string(),
                raw: value.trim_start_matches(is_blank).to_string(),
                line,
            };
            if let Some(old) = group.entries.iter_mut().find(|e| e.key == key) {
                warnings.push(
                    Warning::new(
                        source,
                        Some(line),
                        WarningKind::DuplicateKey {
                            group: group.name.clone(),
                            key: key.to_string(),
                        },
                    )
                    .logged(),
                );
                *old = entry;
            } else {
                group.entries.push(entry);
            }
        }
        Ok((kf, warnings))
    }

    fn group_index_or_insert(&mut self, name: &str) -> usize {
        match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                self.groups.len() - 1
            }
        }
    }

    fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    fn entry(&self, group: &str, key: &str) -> Option<&Entry> {
        self.group(group)?.entries.iter().find(|e| e.key == key)
    }

    /// Group names in file order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Keys of a group in file order (empty if the group is absent).
    pub fn keys<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> {
        self.group(group)
            .into_iter()
            .flat_map(|g| g.entries.iter().map(|e| e.key.as_str()))
    }

    /// True if the group exists (possibly empty).
    pub fn has_group(&self, group: &str) -> bool {
        self.group(group).is_some()
    }

    /// The line a key was read from, for messages.
    pub fn line_of(&self, group: &str, key: &str) -> Option<usize> {
        self.entry(group, key).map(|e| e.line).filter(|&l| l > 0)
    }

    /// The value exactly as written in the file (escapes not decoded).
    pub fn get_raw(&self, group: &str, key: &str) -> Option<&str> {
        self.entry(group, key).map(|e| e.raw.as_str())
    }

    /// The value with GLib escapes decoded.
    pub fn get_string(&self, group: &str, key: &str) -> Option<String> {
        self.get_raw(group, key).map(|raw| unescape(raw, None))
    }

    /// The value split on `sep` (see the module doc for the rules).
    pub fn get_list(&self, group: &str, key: &str, sep: char) -> Option<Vec<String>> {
        self.get_raw(group, key).map(|raw| split_list(raw, sep))
    }

    fn invalid(&self, group: &str, key: &str, raw: &str, expected: &'static str) -> ValueError {
        ValueError::Invalid {
            group: group.to_string(),
            key: key.to_string(),
            value: raw.to_string(),
            expected,
        }
    }

    /// `true`/`1` or `false`/`0` (lowercase only, as GLib).
    pub fn get_bool(&self, group: &str, key: &str) -> Result<Option<bool>, ValueError> {
        match self.get_raw(group, key) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(raw) => Err(self.invalid(group, key, raw, "true or false")),
        }
    }

    /// A decimal unsigned 32-bit integer.
    pub fn get_u32(&self, group: &str, key: &str) -> Result<Option<u32>, ValueError> {
        match self.get_raw(group, key) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<u32>()
                .map(Some)
                .map_err(|_| self.invalid(group, key, raw, "an unsigned integer")),
        }
    }

    /// A decimal signed 32-bit integer.
    pub fn get_i32(&self, group: &str, key: &str) -> Result<Option<i32>, ValueError> {
        match self.get_raw(group, key) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<i32>()
                .map(Some)
                .map_err(|_| self.invalid(group, key, raw, "an integer")),
        }
    }

    /// Sets a raw value (already escaped, e.g. copied from another keyfile).
    /// Replaces an existing key in place; otherwise appends, creating the
    /// group at the end if needed.
    pub fn set_raw(&mut self, group: &str, key: &str, raw: &str) -> Result<(), ValueError> {
        if !valid_group_name(group) {
            return Err(ValueError::BadGroupName(group.to_string()));
        }
        if !valid_key(key) {
            return Err(ValueError::BadKey(key.to_string()));
        }
        // A raw value must survive a write/parse cycle unchanged.
        let raw =
            if raw.contains(['\n', '\r']) || raw.starts_with(is_blank) || raw.ends_with(is_blank) {
                escape(&unescape(raw, None), None)
            } else {
                raw.to_string()
            };
        let gi = self.group_index_or_insert(group);
        let entries = &mut self.groups[gi].entries;
        match entries.iter_mut().find(|e| e.key == key) {
            Some(e) => e.raw = raw,
            None => entries.push(Entry {
                key: key.to_string(),
                raw,
                line: 0,
            }),
        }
        Ok(())
    }

    /// Sets a string, escaping it as GLib does.
    pub fn set_string(&mut self, group: &str, key: &str, value: &str) -> Result<(), ValueError> {
        self.set_raw(group, key, &escape(value, None))
    }

    /// Sets a list, each item escaped, every item followed by `sep` (GLib's
    /// layout: `a;b;`).
    pub fn set_list<S: AsRef<str>>(
        &mut self,
        group: &str,
        key: &str,
        items: &[S],
        sep: char,
    ) -> Result<(), ValueError> {
        let mut raw = String::new();
        for item in items {
            raw.push_str(&escape(item.as_ref(), Some(sep)));
            raw.push(sep);
        }
        self.set_raw(group, key, &raw)
    }

    /// Sets `true` or `false`.
    pub fn set_bool(&mut self, group: &str, key: &str, value: bool) -> Result<(), ValueError> {
        self.set_raw(group, key, if value { "true" } else { "false" })
    }

    /// Sets a decimal integer.
    pub fn set_u32(&mut self, group: &str, key: &str, value: u32) -> Result<(), ValueError> {
        self.set_raw(group, key, &value.to_string())
    }

    /// Creates an empty group if it does not exist.
    pub fn add_group(&mut self, group: &str) -> Result<(), ValueError> {
        if !valid_group_name(group) {
            return Err(ValueError::BadGroupName(group.to_string()));
        }
        self.group_index_or_insert(group);
        Ok(())
    }

    /// Removes a key; true if it was there.
    pub fn remove_key(&mut self, group: &str, key: &str) -> bool {
        let Some(g) = self.groups.iter_mut().find(|g| g.name == group) else {
            return false;
        };
        let before = g.entries.len();
        g.entries.retain(|e| e.key != key);
        g.entries.len() != before
    }

    /// Removes a group and its keys; true if it was there.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|g| g.name != group);
        self.groups.len() != before
    }
}

/// Writes the keyfile as GLib does: groups separated by a blank line.
impl fmt::Display for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[{}]", g.name)?;
            for e in &g.entries {
                writeln!(f, "{}={}", e.key, e.raw)?;
            }
        }
        Ok(())
    }
}

/// GLib escaping; spaces are escaped at both ends because the parser trims
/// them, and `sep` (inside list items) as `\<sep>`.
fn escape(value: &str, sep: Option<char>) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ' ' if i == 0 || i == last => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if Some(c) == sep => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Decodes GLib escapes; `\<sep>` too when `sep` is given. Unknown escapes
/// and a trailing lone backslash are kept literally.
fn unescape(raw: &str, sep: Option<char>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(c) if Some(c) == sep => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn split_list(raw: &str, sep: char) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // Keep the escape for `unescape`; only the separator test needs it.
            item.push(c);
            if let Some(n) = chars.next() {
                item.push(n);
            }
        } else if c == sep {
            items.push(std::mem::take(&mut item));
        } else {
            item.push(c);
        }
    }
    items.push(item);
    if items.last().is_some_and(|s| s.is_empty()) {
        items.pop();
    }
    items
        .iter()
        .map(|s| unescape(s.trim_matches(is_blank), Some(sep)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> KeyFile {
        match KeyFile::parse(text, "test") {
            Ok((kf, _)) => kf,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    #[test]
    fn connman_settings_file() {
        let text = "[global]\nOfflineMode=false\n\n[Wired]\nEnable=true\nTethering=false\n";
        let kf = parse(text);
        assert_eq!(kf.groups().collect::<Vec<_>>(), ["global", "Wired"]);
        assert_eq!(kf.get_bool("global", "OfflineMode"), Ok(Some(false)));
        assert_eq!(kf.get_bool("Wired", "Enable"), Ok(Some(true)));
        assert_eq!(kf.to_string(), text);
    }

    #[test]
    fn whitespace_comments_and_crlf() {
        let kf = parse("# c\r\n  [General]  \r\n\tKey  =  some value \r\n#x=y\r\n");
        assert_eq!(
            kf.get_string("General", "Key").as_deref(),
            Some("some value")
        );
        assert_eq!(kf.keys("General").count(), 1);
        assert_eq!(kf.line_of("General", "Key"), Some(3));
    }

    #[test]
    fn errors_name_the_line() {
        let e = KeyFile::parse("[a]\nk=v\njunk\n", "t").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.reason, ParseErrorReason::NotKeyValue);
        assert_eq!(
            KeyFile::parse("k=v\n", "t").unwrap_err().reason,
            ParseErrorReason::KeyOutsideGroup
        );
        assert_eq!(
            KeyFile::parse("[a]\n=v\n", "t").unwrap_err().reason,
            ParseErrorReason::EmptyKey
        );
        assert_eq!(
            KeyFile::parse("[a[b]\n", "t").unwrap_err().reason,
            ParseErrorReason::BadGroupName
        );
        assert_eq!(
            KeyFile::parse("[a\n", "t").unwrap_err().reason,
            ParseErrorReason::NotKeyValue
        );
        let e = KeyFile::parse_bytes(b"[a]\nk=\xff\n", "t").unwrap_err();
        assert_eq!((e.line, e.reason.clone()), (2, ParseErrorReason::NotUtf8));
        assert!(e.to_string().contains("line 2"));
    }

    #[test]
    fn duplicate_key_last_wins_with_warning() {
        let (kf, w) = KeyFile::parse("[a]\nk=1\nj=2\nk=3\n[b]\n[a]\nm=4\n", "f").unwrap();
        assert_eq!(kf.get_raw("a", "k"), Some("3"));
        assert_eq!(kf.keys("a").collect::<Vec<_>>(), ["k", "j", "m"]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, Some(4));
        assert!(w[0].to_string().starts_with("f:4: [a] k"));
    }

    #[test]
    fn bools_follow_glib() {
        let kf = parse("[a]\nt=true\no=1\nf=false\nz=0\nT=True\ny=yes\n");
        assert_eq!(kf.get_bool("a", "t"), Ok(Some(true)));
        assert_eq!(kf.get_bool("a", "o"), Ok(Some(true)));
        assert_eq!(kf.get_bool("a", "f"), Ok(Some(false)));
        assert_eq!(kf.get_bool("a", "z"), Ok(Some(false)));
        assert!(kf.get_bool("a", "T").is_err());
        assert!(kf.get_bool("a", "y").is_err());
        assert_eq!(kf.get_bool("a", "missing"), Ok(None));
        assert_eq!(kf.get_bool("nogroup", "t"), Ok(None));
    }

    #[test]
    fn numbers() {
        let kf = parse("[a]\nu=31100\nn=-3\nbad=12x\n");
        assert_eq!(kf.get_u32("a", "u"), Ok(Some(31100)));
        assert_eq!(kf.get_i32("a", "n"), Ok(Some(-3)));
        assert!(kf.get_u32("a", "n").is_err());
        let e = kf.get_u32("a", "bad").unwrap_err();
        assert!(e.to_string().contains("bad=\"12x\""));
    }

    #[test]
    fn escapes_and_lists() {
        let kf = parse("[a]\ns=\\sx\\ty\\nz\\\\\\q\nl=a;b\\;c; d ;\nc=vmnet, vboxnet,virbr\ne=\n");
        assert_eq!(kf.get_string("a", "s").as_deref(), Some(" x\ty\nz\\\\q"));
        assert_eq!(kf.get_list("a", "l", ';').unwrap(), ["a", "b;c", "d"]);
        assert_eq!(
            kf.get_list("a", "c", ',').unwrap(),
            ["vmnet", "vboxnet", "virbr"]
        );
        assert!(kf.get_list("a", "e", ';').unwrap().is_empty());
    }

    #[test]
    fn setters_and_removal() {
        let mut kf = KeyFile::new();
        kf.set_list("g", "Nameservers", &["8.8.8.8", "1.1.1.1"], ';')
            .unwrap();
        kf.set_bool("g", "AutoConnect", true).unwrap();
        kf.set_string("h", "Name", " lead").unwrap();
        assert_eq!(
            kf.to_string(),
            "[g]\nNameservers=8.8.8.8;1.1.1.1;\nAutoConnect=true\n\n[h]\nName=\\slead\n"
        );
        assert!(kf.set_raw("g", "a=b", "x").is_err());
        assert!(kf.set_raw("g]", "a", "x").is_err());
        assert!(kf.remove_key("g", "AutoConnect"));
        assert!(!kf.remove_key("g", "AutoConnect"));
        assert!(kf.remove_group("h"));
        assert_eq!(kf.to_string(), "[g]\nNameservers=8.8.8.8;1.1.1.1;\n");
    }

    fn arb_key() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.\\-\\[\\]]{1,12}".prop_filter("valid key", |k| valid_key(k))
    }

    fn arb_group() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_ .\\-]{1,12}".prop_filter("valid group", |g| valid_group_name(g))
    }

    fn arb_value() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[ a-z;,\\\\\t\n\r=#\\[]{0,10}"]
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = KeyFile::parse_bytes(&bytes, "p");
        }

        #[test]
        fn parser_never_panics_on_keyfile_like_text(text in "[\\[\\]a-z=#;,\\\\ \t\r\n]{0,200}") {
            if let Ok((kf, _)) = KeyFile::parse(&text, "p") {
                for g in kf.groups() {
                    for k in kf.keys(g) {
                        let _ = kf.get_list(g, k, ';');
                        let _ = kf.get_string(g, k);
                    }
                }
            }
        }

        #[test]
        fn write_parse_round_trip(
            groups in proptest::collection::btree_map(
                arb_group(),
                proptest::collection::btree_map(
                    arb_key(),
                    (arb_value(), proptest::collection::vec(arb_value(), 0..4)),
                    0..5),
                0..4)
        ) {
            let mut kf = KeyFile::new();
            for (g, entries) in &groups {
                kf.add_group(g).unwrap();
                for (k, (v, list)) in entries {
                    kf.set_string(g, &format!("{k}.s"), v).unwrap();
                    kf.set_list(g, &format!("{k}.l"), list, ';').unwrap();
                    kf.set_list(g, &format!("{k}.c"), list, ',').unwrap();
                }
            }
            let (back, warnings) = KeyFile::parse(&kf.to_string(), "rt").unwrap();
            prop_assert!(warnings.is_empty());
            prop_assert_eq!(&back, &kf);
            for (g, entries) in &groups {
                for (k, (v, list)) in entries {
                    prop_assert_eq!(back.get_string(g, &format!("{k}.s")), Some(v.clone()));
                    prop_assert_eq!(back.get_list(g, &format!("{k}.l"), ';'), Some(list.clone()));
                    prop_assert_eq!(back.get_list(g, &format!("{k}.c"), ','), Some(list.clone()));
                }
            }
        }
    }
}
