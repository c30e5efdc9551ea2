//! The one keyfile parser and writer: GLib key-file syntax as ConnMan writes
//! it, used for main.conf, board configs, policy files and the state dir.
//!
//! Syntax accepted:
//! - `[group]` headers (name: anything but `[`, `]` and control characters),
//! - `key=value`; spaces and tabs around the key and the value are trimmed,
//! - `#` comments and blank lines (both dropped: a rewritten file has none),
//! - `\r\n` line ends (any `\r` at the end of a line is dropped).
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

use std::borrow::Borrow;
use std::collections::hash_map::{self, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};

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

/// A group or key name as a hash-index key. Its comparisons are counted in
/// tests: every lookup of the parser goes through an index of these, so a
/// test can check that a file of n lines costs O(n) name comparisons (a
/// linear search per line once made 80 000 keys cost 3.2·10⁹ of them).
#[derive(Debug, Clone, Eq)]
struct IndexKey(Box<str>);

#[cfg(test)]
thread_local! {
    static NAME_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &IndexKey) -> bool {
        #[cfg(test)]
        NAME_COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0 == other.0
    }
}

impl Hash for IndexKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so `Borrow<str>` lookups find the same slot.
        self.0.hash(state)
    }
}

impl Borrow<str> for IndexKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Ordered entries with a name index. std's `HashMap` uses SipHash with a
/// per-process random key, so a hostile file cannot choose colliding names.
#[derive(Debug, Clone)]
struct Indexed<T> {
    items: Vec<T>,
    index: HashMap<IndexKey, usize>,
}

impl<T> Default for Indexed<T> {
    fn default() -> Self {
        Indexed {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Indexed<T> {
    fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|&i| &self.items[i])
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.index.get(name).map(|&i| &mut self.items[i])
    }

    /// The index of `name`, appending `make()` if absent. One hash lookup,
    /// whatever the size.
    fn index_or_insert(&mut self, name: &str, make: impl FnOnce() -> T) -> usize {
        let next = self.items.len();
        match self.index.entry(IndexKey(name.into())) {
            hash_map::Entry::Occupied(o) => *o.get(),
            hash_map::Entry::Vacant(v) => {
                v.insert(next);
                self.items.push(make());
                next
            }
        }
    }

    /// Puts `item` under `name`: replaces it in place if present (true),
    /// else appends it (false). One hash lookup, whatever the size.
    fn upsert(&mut self, name: &str, item: T) -> bool {
        let next = self.items.len();
        match self.index.entry(IndexKey(name.into())) {
            hash_map::Entry::Occupied(o) => {
                self.items[*o.get()] = item;
                true
            }
            hash_map::Entry::Vacant(v) => {
                v.insert(next);
                self.items.push(item);
                false
            }
        }
    }

    /// Removes `name`; O(n) to renumber the index, and only setters call it.
    fn remove(&mut self, name: &str, name_of: impl Fn(&T) -> &str) -> bool {
        let Some(i) = self.index.remove(name) else {
            return false;
        };
        self.items.remove(i);
        for (j, item) in self.items.iter().enumerate().skip(i) {
            if let Some(slot) = self.index.get_mut(name_of(item)) {
                *slot = j;
            }
        }
        true
    }
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    entries: Indexed<Entry>,
}

/// A parsed keyfile: ordered groups of ordered `key=value` entries, with a
/// hash index per level so parsing and every lookup are linear in the file
/// size, whatever the number of keys per group.
///
/// Equality compares groups, keys and raw values, not line numbers.
#[derive(Debug, Clone, Default)]
pub struct KeyFile {
    groups: Indexed<Group>,
}

impl PartialEq for KeyFile {
    fn eq(&self, other: &KeyFile) -> bool {
        let (a, b) = (&self.groups.items, &other.groups.items);
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                let (x, y) = (&a.entries.items, &b.entries.items);
                a.name == b.name
                    && x.len() == y.len()
                    && x.iter()
                        .zip(y)
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
            // A `\r` left at the end (a CRLF file converted twice) is line
            // ending, not value: kept, it would not survive a rewrite.
            let l = raw_line
                .trim_end_matches(|c| is_blank(c) || c == '\r')
                .trim_start_matches(is_blank);
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
            let group = &mut kf.groups.items[gi];
            let entry = Entry {
                key: key.to_string(),
                raw: value.trim_start_matches(is_blank).to_string(),
                line,
            };
            if group.entries.upsert(key, entry) {
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
            }
        }
        Ok((kf, warnings))
    }

    fn group_index_or_insert(&mut self, name: &str) -> usize {
        let make = || Group {
            name: name.to_string(),
            entries: Indexed::default(),
        };
        self.groups.index_or_insert(name, make)
    }

    fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    fn entry(&self, group: &str, key: &str) -> Option<&Entry> {
        self.group(group)?.entries.get(key)
    }

    /// Group names in file order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.items.iter().map(|g| g.name.as_str())
    }

    /// Keys of a group in file order (empty if the group is absent).
    pub fn keys<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> {
        self.group(group)
            .into_iter()
            .flat_map(|g| g.entries.items.iter().map(|e| e.key.as_str()))
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
        let entries = &mut self.groups.items[gi].entries;
        match entries.get_mut(key) {
            Some(e) => e.raw = raw,
            None => {
                let entry = Entry {
                    key: key.to_string(),
                    raw,
                    line: 0,
                };
                entries.upsert(key, entry);
            }
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
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        g.entries.remove(key, |e| &e.key)
    }

    /// Removes a group and its keys; true if it was there.
    pub fn remove_group(&mut self, group: &str) -> bool {
        self.groups.remove(group, |g| &g.name)
    }
}

/// Writes the keyfile as GLib does: groups separated by a blank line.
impl fmt::Display for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.groups.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[{}]", g.name)?;
            for e in &g.entries.items {
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

    fn comparisons() -> u64 {
        NAME_COMPARISONS.with(|c| c.get())
    }

    /// 80 000 keys in one group, each then set again, and 80 000 groups:
    /// the parser must do O(1) name comparisons per line. The linear search
    /// it once did per key needed ~N²/2 = 3.2·10⁹ here (16 s of CPU). A small
    /// file first, so a quadratic parser fails in milliseconds rather than
    /// after minutes.
    #[test]
    fn parsing_is_linear_in_keys_and_groups() {
        use std::fmt::Write;
        for n in [2_000u64, 80_000] {
            let mut text = String::from("[g]\n");
            for i in 0..n {
                writeln!(text, "k{i}=v").unwrap();
            }
            for i in 0..n {
                writeln!(text, "k{i}=w").unwrap();
            }
            for i in 0..n {
                writeln!(text, "[g{i}]\nk=v").unwrap();
            }
            let lines = 4 * n + 1;
            let before = comparisons();
            let (kf, w) = KeyFile::parse(&text, "big").unwrap();
            let used = comparisons() - before;
            assert!(
                used <= 2 * lines,
                "{used} name comparisons for {lines} lines"
            );
            assert_eq!(w.len() as u64, n);
            assert_eq!(kf.keys("g").count() as u64, n);
            assert_eq!(kf.get_raw("g", "k0"), Some("w"));
            assert_eq!(kf.get_raw("g", &format!("k{}", n - 1)), Some("w"));
            assert_eq!(kf.groups().count() as u64, n + 1);
            assert_eq!(kf.get_raw(&format!("g{}", n - 1), "k"), Some("v"));
        }
    }

    #[test]
    fn index_survives_removal_and_merge() {
        let mut kf = parse("[a]\nk1=1\nk2=2\nk3=3\n[b]\nx=1\n[c]\ny=2\n[a]\nk4=4\n");
        assert!(kf.remove_key("a", "k1"));
        assert_eq!(kf.get_raw("a", "k3"), Some("3"));
        assert_eq!(kf.get_raw("a", "k4"), Some("4"));
        kf.set_raw("a", "k3", "three").unwrap();
        assert_eq!(kf.keys("a").collect::<Vec<_>>(), ["k2", "k3", "k4"]);
        assert!(kf.remove_group("b"));
        assert_eq!(kf.get_raw("c", "y"), Some("2"));
        kf.set_raw("c", "z", "3").unwrap();
        assert_eq!(
            kf.to_string(),
            "[a]\nk2=2\nk3=three\nk4=4\n\n[c]\ny=2\nz=3\n"
        );
    }

    #[test]
    fn stray_carriage_returns_are_line_ends() {
        let kf = parse("[a]\r\r\nk=v\r \r\n");
        assert_eq!(kf.get_raw("a", "k"), Some("v"));
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

        /// Whatever parses is written back in a form that parses to the
        /// same keyfile, and the written form is stable.
        #[test]
        fn parse_emit_round_trip(text in "[\\[\\]a-c=#; \t\r\n\\\\]{0,200}") {
            if let Ok((kf, _)) = KeyFile::parse(&text, "p") {
                let emitted = kf.to_string();
                let (back, warnings) = KeyFile::parse(&emitted, "p").unwrap();
                prop_assert!(warnings.is_empty());
                prop_assert_eq!(&back, &kf);
                prop_assert_eq!(back.to_string(), emitted);
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
