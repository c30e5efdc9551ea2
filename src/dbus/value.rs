//! Decoding the values of incoming calls: one set of typed getters that
//! look through variant wrapping and name what was wrong, for the service,
//! manager and session requests alike.

use zbus::zvariant::{OwnedObjectPath, Value};

use crate::dbus::request::CallError;

/// The value inside a variant (`v` arguments and `a{sv}` entries arrive wrapped).
pub fn inner<'a>(v: &'a Value<'a>) -> &'a Value<'a> {
    match v {
        Value::Value(inner) => inner,
        other => other,
    }
}

// Lenient getters for what other daemons send: the wrong type is None
// (the caller keeps what it had), never an error to a caller.

/// A byte array (`ay`), or None if it is anything else.
pub fn bytes(v: &Value<'_>) -> Option<Vec<u8>> {
    match inner(v) {
        Value::Array(a) => a
            .iter()
            .map(|e| match inner(e) {
                Value::U8(b) => Some(*b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// A string (`s`), or None.
pub fn string(v: &Value<'_>) -> Option<String> {
    match inner(v) {
        Value::Str(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// A string list (`as`), or None if any element is not a string.
pub fn strings(v: &Value<'_>) -> Option<Vec<String>> {
    match inner(v) {
        Value::Array(a) => a.iter().map(string).collect(),
        _ => None,
    }
}

/// An object path (`o`) as a string, or None.
pub fn path(v: &Value<'_>) -> Option<String> {
    match inner(v) {
        Value::ObjectPath(p) => Some(p.as_str().to_string()),
        _ => None,
    }
}

/// An object path list (`ao`), or None.
pub fn paths(v: &Value<'_>) -> Option<Vec<String>> {
    match inner(v) {
        Value::Array(a) => a.iter().map(path).collect(),
        _ => None,
    }
}

/// Any integer type up to 32 bits, widened; None for anything else.
pub fn int(v: &Value<'_>) -> Option<i64> {
    match inner(v) {
        Value::I16(n) => Some(i64::from(*n)),
        Value::I32(n) => Some(i64::from(*n)),
        Value::U16(n) => Some(i64::from(*n)),
        Value::U32(n) => Some(i64::from(*n)),
        Value::U8(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// A boolean (`b`).
pub fn bool_of(v: &Value<'_>, name: &str) -> Result<bool, CallError> {
    match inner(v) {
        Value::Bool(b) => Ok(*b),
        other => Err(CallError::invalid(format!(
            "{name} must be a boolean (b), got {}",
            other.value_signature()
        ))),
    }
}

/// A string (`s`).
pub fn str_of<'a>(v: &'a Value<'a>, name: &str) -> Result<&'a str, CallError> {
    match inner(v) {
        Value::Str(s) => Ok(s.as_str()),
        other => Err(CallError::invalid(format!(
            "{name} must be a string (s), got {}",
            other.value_signature()
        ))),
    }
}

/// A string list (`as`).
pub fn string_list(v: &Value<'_>, name: &str) -> Result<Vec<String>, CallError> {
    let Value::Array(a) = inner(v) else {
        return Err(CallError::invalid(format!(
            "{name} must be a string list (as), got {}",
            v.value_signature()
        )));
    };
    a.iter()
        .map(|e| str_of(e, name).map(str::to_string))
        .collect()
}

/// A `u` (uint32).
pub fn u32_of(v: &Value<'_>, name: &str) -> Result<u32, CallError> {
    match inner(v) {
        Value::U32(n) => Ok(*n),
        other => Err(CallError::invalid(format!(
            "{name} must be a uint32 (u), got {}",
            other.value_signature()
        ))),
    }
}

/// An object path (`o`), as a string.
pub fn path_of(v: &Value<'_>, name: &str) -> Result<String, CallError> {
    match inner(v) {
        Value::ObjectPath(p) => Ok(p.as_str().to_string()),
        other => Err(CallError::invalid(format!(
            "{name} must be an object path (o), got {}",
            other.value_signature()
        ))),
    }
}

/// The `(key, value)` entries of an `a{sv}`, values unwrapped.
pub fn dict_entries<'a>(
    v: &'a Value<'a>,
    name: &str,
) -> Result<Vec<(String, &'a Value<'a>)>, CallError> {
    let Value::Dict(d) = inner(v) else {
        return Err(CallError::invalid(format!(
            "{name} must be a dictionary (a{{sv}}), got {}",
            v.value_signature()
        )));
    };
    d.iter()
        .map(|(k, val)| Ok((str_of(k, name)?.to_string(), inner(val))))
        .collect()
}

/// An object path for a reply or signal. Paths are built from validated
/// ids; an impossible one becomes "/" rather than a panic.
pub fn object_path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p.to_string())
        .unwrap_or_else(|_| OwnedObjectPath::try_from("/").expect("'/' is a valid object path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_look_through_variants_and_name_the_setting() {
        let wrapped = Value::Value(Box::new(Value::from(true)));
        assert!(bool_of(&wrapped, "X").unwrap());
        let err = bool_of(&Value::from("yes"), "AutoConnect").unwrap_err();
        assert!(err.message.contains("AutoConnect must be a boolean"));
        let list = Value::from(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(string_list(&list, "L").unwrap(), vec!["a", "b"]);
        assert!(string_list(&Value::from(3u32), "L")
            .unwrap_err()
            .message
            .contains("string list"));
        assert_eq!(object_path("not a path").as_str(), "/");
    }
}
