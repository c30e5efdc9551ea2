//! Values for the unit tests of `ctl`: property dictionaries and object paths built from
//! literals, panicking on a literal that is not valid.

use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use super::format::Properties;

/// `v` as an owned value.
pub fn ov(v: Value<'_>) -> OwnedValue {
    match v.try_to_owned() {
        Ok(o) => o,
        Err(e) => panic!("test value not ownable: {e}"),
    }
}

/// A property dictionary from `(key, value)` pairs.
pub fn props(entries: Vec<(&str, Value<'_>)>) -> Properties {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ov(v)))
        .collect()
}

/// `p` as an object path.
pub fn path(p: &str) -> OwnedObjectPath {
    match ObjectPath::try_from(p) {
        Ok(p) => p.into(),
        Err(e) => panic!("bad test path {p}: {e}"),
    }
}
