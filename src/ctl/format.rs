//! connmanctl's text formats, as pure functions from D-Bus values to strings.
//!
//! Layouts follow connmanctl (`client/dbus_helpers.c`, `client/services.c`,
//! `client/commands.c` in ConnMan): properties print as `  Key = value`, arrays as `[ a, b ]`,
//! dictionaries as arrays of `Key=value` entries, structs as `{ a b }`, booleans as
//! `True`/`False`. ConnMan prints keys in the order the daemon sent them; a `HashMap` has no
//! order, so keys are sorted alphabetically (nested dictionaries are already sorted by zvariant).
//! The seed's session `Update` layout (`[ a b ]`, `{ K=v K=v }`, `true`) is available as
//! [`Style::Seed`].

use std::collections::HashMap;
use std::fmt::Write as _;

use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::dbus::names::{self, ErrorName};

/// A property dictionary (`a{sv}`) as decoded from the bus.
pub type Properties = HashMap<String, OwnedValue>;

/// One element of `GetServices`, `GetTechnologies` or `ServicesChanged`: `(o, a{sv})`.
pub type ObjectEntry = (OwnedObjectPath, Properties);

/// Width of the name column of the services list (`%-20s` in connmanctl).
pub const NAME_WIDTH: usize = 20;
/// Width of the interface column of monitor lines (`%-12s` in connmanctl).
pub const MONITOR_INTERFACE_WIDTH: usize = 12;
/// Width of the object column of monitor lines (`%-20s` in connmanctl).
pub const MONITOR_OBJECT_WIDTH: usize = 20;

/// How containers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// connmanctl: `[ a, b ]`, `[ K=v, K=v ]`, `[  ]` when empty, structs `{ a b }`.
    Connmanctl,
    /// The seed's session `Update` layout: `[ a b ]`, `{ K=v K=v }`, `[ ]` / `{ }` when empty,
    /// booleans `true`/`false`.
    Seed,
}

/// `v` as connmanctl prints it.
pub fn value(v: &Value<'_>) -> String {
    value_styled(v, Style::Connmanctl)
}

/// `v` in the given layout.
pub fn value_styled(v: &Value<'_>, style: Style) -> String {
    let mut out = String::new();
    write_value(&mut out, v, style);
    out
}

fn write_value(out: &mut String, v: &Value<'_>, style: Style) {
    match v {
        Value::U8(x) => push_display(out, x),
        // connmanctl capitalises booleans; the seed's Update output does not.
        Value::Bool(b) => out.push_str(match (style, *b) {
            (Style::Connmanctl, true) => "True",
            (Style::Connmanctl, false) => "False",
            (Style::Seed, true) => "true",
            (Style::Seed, false) => "false",
        }),
        Value::I16(x) => push_display(out, x),
        Value::U16(x) => push_display(out, x),
        Value::I32(x) => push_display(out, x),
        Value::U32(x) => push_display(out, x),
        Value::I64(x) => push_display(out, x),
        Value::U64(x) => push_display(out, x),
        // connmanctl prints doubles with "%f".
        Value::F64(x) => {
            let _ = write!(out, "{x:.6}");
        }
        Value::Str(s) => push_text(out, s.as_str()),
        Value::Signature(s) => push_text(out, &s.to_string()),
        Value::ObjectPath(p) => push_text(out, p.as_str()),
        Value::Value(inner) => write_value(out, inner, style),
        Value::Array(a) => write_list(out, a.inner().iter(), style, |out, item| {
            write_value(out, item, style)
        }),
        Value::Dict(d) => {
            let entries = d.iter();
            let write_entry = |out: &mut String, (k, v): (&Value<'_>, &Value<'_>)| {
                write_value(out, k, style);
                out.push('=');
                write_value(out, v, style);
            };
            match style {
                Style::Connmanctl => write_list(out, entries, style, write_entry),
                Style::Seed => write_container(out, entries, ("{", "}", " "), style, write_entry),
            }
        }
        Value::Structure(s) => write_container(
            out,
            s.fields().iter(),
            ("{", "}", " "),
            style,
            |out, field| write_value(out, field, style),
        ),
        #[cfg(unix)]
        Value::Fd(_) => out.push_str("<type h>"),
        // Only reachable with zvariant's deprecated gvariant feature, which we never enable.
        #[allow(unreachable_patterns)]
        _ => out.push_str("<unknown>"),
    }
}

fn write_list<I, T>(out: &mut String, items: I, style: Style, write_item: impl Fn(&mut String, T))
where
    I: Iterator<Item = T>,
{
    let sep = match style {
        Style::Connmanctl => ", ",
        Style::Seed => " ",
    };
    write_container(out, items, ("[", "]", sep), style, write_item);
}

/// Writes `open item sep item … close`.
fn write_container<I, T>(
    out: &mut String,
    items: I,
    (open, close, sep): (&str, &str, &str),
    style: Style,
    write_item: impl Fn(&mut String, T),
) where
    I: Iterator<Item = T>,
{
    out.push_str(open);
    out.push(' ');
    let mut first = true;
    for item in items {
        if !first {
            out.push_str(sep);
        }
        first = false;
        write_item(out, item);
    }
    // connmanctl writes "[ " and " ]" around whatever is inside, so an empty list is "[  ]";
    // the seed's layout has a single space.
    if !first || style == Style::Connmanctl {
        out.push(' ');
    }
    out.push_str(close);
}

fn push_display(out: &mut String, x: impl core::fmt::Display) {
    let _ = write!(out, "{x}");
}

/// Text from the bus, with control characters escaped so that every record stays on one line
/// (monitor output is read line by line by scripts).
fn push_text(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

/// `props` as `  Key = value` lines, sorted by key, each ending in a newline.
pub fn properties(props: &Properties) -> String {
    properties_styled(props, "  ", Style::Connmanctl)
}

/// `props` as `{indent}Key = value` lines in the given layout, sorted by key.
pub fn properties_styled(props: &Properties, indent: &str, style: Style) -> String {
    property_lines(sorted(props), indent, style)
}

/// One `{indent}Key = value` line per entry, in the order given.
pub fn property_lines<'a, K: AsRef<str>>(
    entries: impl IntoIterator<Item = (K, &'a OwnedValue)>,
    indent: &str,
    style: Style,
) -> String {
    let mut out = String::new();
    for (key, v) in entries {
        out.push_str(indent);
        push_text(&mut out, key.as_ref());
        out.push_str(" = ");
        write_value(&mut out, v, style);
        out.push('\n');
    }
    out
}

/// The entries of `props`, sorted by key (ConnMan's order is lost in the `HashMap`).
fn sorted(props: &Properties) -> Vec<(&String, &OwnedValue)> {
    let mut entries: Vec<_> = props.iter().collect();
    crate::sort::sort_by_key(&mut entries, |(k, _)| *k);
    entries
}

/// An object's path line followed by its properties (`technologies`, `services ID`).
pub fn object_properties(path: &str, props: &Properties) -> String {
    let mut out = String::new();
    push_text(&mut out, path);
    out.push('\n');
    out.push_str(&properties(props));
    out
}

fn bool_property(props: &Properties, key: &str) -> bool {
    matches!(props.get(key).map(|v| &**v), Some(Value::Bool(true)))
}

fn str_property<'a>(props: &'a Properties, key: &str) -> Option<&'a str> {
    match props.get(key).map(|v| &**v) {
        Some(Value::Str(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// The state column letter for a service state (`O` online, `R` ready, `a` association,
/// `c` configuration, `d` disconnect, blank for idle, failure and anything unknown).
pub fn state_letter(state: &str) -> char {
    match state {
        "online" => 'O',
        "ready" => 'R',
        "association" => 'a',
        "configuration" => 'c',
        "disconnect" => 'd',
        _ => ' ',
    }
}

/// The four flag columns of a service: Favorite `*`, AutoConnect `A`, MultipathRouting `M`
/// (the multipath fork's column) and the state letter.
pub fn service_flags(props: &Properties) -> [char; 4] {
    let flag = |key, c| if bool_property(props, key) { c } else { ' ' };
    [
        flag("Favorite", '*'),
        flag("AutoConnect", 'A'),
        flag("MultipathRouting", 'M'),
        str_property(props, "State").map_or(' ', state_letter),
    ]
}

/// One line of the services list, without the newline: `*AMR Wired                ethernet_…`.
/// An entry without properties (ServicesChanged's "same as before") prints `unchanged`.
///
/// The name is padded to [`NAME_WIDTH`] *bytes*, as connmanctl's `%-20s` does, so a UTF-8
/// SSID puts the identifier where connmanctl puts it (scripts cut these lines at fixed
/// offsets). A hidden network has no (or an empty) name: blanks. A longer name is kept whole.
pub fn service_line(path: &str, props: &Properties) -> String {
    let mut id = String::new();
    push_text(&mut id, names::last_path_element(path));
    if props.is_empty() {
        return format!("{:<width$} {id}", "unchanged", width = NAME_WIDTH + 4);
    }
    let flags: String = service_flags(props).iter().collect();
    let mut name = String::new();
    push_text(&mut name, str_property(props, "Name").unwrap_or(""));
    let pad = NAME_WIDTH.saturating_sub(name.len());
    format!("{flags} {name}{:pad$} {id}", "")
}

/// The services list (`services`), one line per service, in the daemon's order.
pub fn services_list(services: &[ObjectEntry]) -> String {
    let mut out = String::new();
    for (path, props) in services {
        out.push_str(&service_line(path.as_str(), props));
        out.push('\n');
    }
    out
}

/// The monitor prefix: interface (without `net.connman.`) and object (last path element) in
/// connmanctl's `%-12s %-20s ` columns.
pub fn monitor_prefix(interface: &str, object: &str) -> String {
    let short = interface.strip_prefix("net.connman.").unwrap_or(interface);
    let mut iface = String::new();
    push_text(&mut iface, short);
    let mut obj = String::new();
    push_text(&mut obj, object);
    format!(
        "{iface:<iw$} {obj:<ow$} ",
        iw = MONITOR_INTERFACE_WIDTH,
        ow = MONITOR_OBJECT_WIDTH
    )
}

/// A `PropertyChanged` signal: `Service      ethernet_…_cable State = ready`.
pub fn property_changed_line(interface: &str, path: &str, name: &str, v: &Value<'_>) -> String {
    let mut out = monitor_prefix(interface, names::last_path_element(path));
    push_text(&mut out, name);
    out.push_str(" = ");
    write_value(&mut out, v, Style::Connmanctl);
    out
}

/// A `TechnologyAdded` signal: `Manager      TechnologyAdded      /net/…/wifi = [ K=v, … ]`.
pub fn technology_added_line(path: &str, props: &Properties) -> String {
    let mut out = monitor_prefix(names::MANAGER_INTERFACE, names::TECHNOLOGY_ADDED);
    push_text(&mut out, path);
    out.push_str(" = ");
    out.push_str(&inline_properties(props));
    out
}

/// A `TechnologyRemoved` signal: `Manager      TechnologyRemoved    /net/connman/technology/wifi`.
pub fn technology_removed_line(path: &str) -> String {
    let mut out = monitor_prefix(names::MANAGER_INTERFACE, names::TECHNOLOGY_REMOVED);
    push_text(&mut out, path);
    out
}

/// A `ServicesChanged` signal as connmanctl's block: a header line, one services-list line per
/// entry (`unchanged` for entries without properties), then the removed paths.
pub fn services_changed(changed: &[ObjectEntry], removed: &[OwnedObjectPath]) -> String {
    let mut out = monitor_prefix(names::MANAGER_INTERFACE, names::SERVICES_CHANGED);
    out.push_str("= {\n");
    out.push_str(&services_list(changed));
    if !removed.is_empty() {
        out.push_str("}, {\n");
        for path in removed {
            let mut p = String::new();
            push_text(&mut p, path.as_str());
            let _ = writeln!(out, "{:<width$} {p}", "removed", width = NAME_WIDTH + 4);
        }
    }
    out.push_str("}\n");
    out
}

/// A dictionary on one line, `[ K=v, K=v ]`, keys sorted.
pub fn inline_properties(props: &Properties) -> String {
    let mut out = String::new();
    write_list(
        &mut out,
        sorted(props).into_iter(),
        Style::Connmanctl,
        |out, (key, v)| {
            push_text(out, key);
            out.push('=');
            write_value(out, v, Style::Connmanctl);
        },
    );
    out
}

/// The last component of an error name in words: `net.connman.Error.AlreadyEnabled` →
/// `Already enabled` (ConnMan's own message for it).
pub fn humanize_error_name(name: &str) -> String {
    let short = name.rsplit('.').next().unwrap_or(name);
    let mut out = String::with_capacity(short.len() + 4);
    for (i, c) in short.chars().enumerate() {
        if i > 0 && c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What to show for a D-Bus error reply.
///
/// ConnMan's errors show as their humanised name (`Already enabled`), which is also the message
/// ConnMan sends; a message that adds detail follows in parentheses. Foreign errors
/// (`org.freedesktop.DBus.Error.*`) show their message, or their name when there is none.
pub fn error_text(name: &str, message: Option<&str>) -> String {
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    let mut out = String::new();
    if name.starts_with(names::ERROR_PREFIX) {
        let human = ErrorName::from_name(name)
            .map(|e| e.message().to_owned())
            .unwrap_or_else(|| humanize_error_name(name));
        push_text(&mut out, &human);
        if let Some(m) = message.filter(|m| !m.eq_ignore_ascii_case(&human)) {
            out.push_str(" (");
            push_text(&mut out, m);
            out.push(')');
        }
    } else {
        push_text(&mut out, message.unwrap_or(name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::test_util::{ov, path, props};
    use std::collections::HashMap;
    use zbus::zvariant::{ObjectPath, Signature, StructureBuilder};

    fn ipv4_dict() -> Value<'static> {
        let mut m: HashMap<String, Value<'static>> = HashMap::new();
        m.insert("Method".into(), Value::from("dhcp"));
        m.insert("Address".into(), Value::from("198.18.1.100"));
        m.insert("Netmask".into(), Value::from("255.255.255.0"));
        m.insert("Gateway".into(), Value::from("198.18.1.1"));
        Value::from(m)
    }

    #[test]
    fn scalars() {
        assert_eq!(value(&Value::from("online")), "online");
        assert_eq!(value(&Value::from(true)), "True");
        assert_eq!(value(&Value::from(false)), "False");
        assert_eq!(value(&Value::U8(255)), "255");
        assert_eq!(value(&Value::U16(1500)), "1500");
        assert_eq!(value(&Value::U32(4_000_000_000)), "4000000000");
        assert_eq!(value(&Value::I32(-7)), "-7");
        assert_eq!(value(&Value::I16(-2)), "-2");
        assert_eq!(value(&Value::I64(-1)), "-1");
        assert_eq!(value(&Value::U64(1_700_000_000)), "1700000000");
        assert_eq!(value(&Value::F64(1.5)), "1.500000");
        assert_eq!(
            value(&Value::ObjectPath(ObjectPath::from_static_str_unchecked(
                "/net/connman/service/x"
            ))),
            "/net/connman/service/x"
        );
        assert_eq!(value(&Value::Signature(Signature::Str)), "s");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(value(&Value::from("a\nb\tc")), "a\\nb\\tc");
        assert_eq!(value(&Value::from("caf\u{e9}")), "caf\u{e9}");
    }

    #[test]
    fn variants_are_transparent() {
        let v = Value::Value(Box::new(Value::Value(Box::new(Value::from(3u32)))));
        assert_eq!(value(&v), "3");
    }

    #[test]
    fn arrays() {
        assert_eq!(
            value(&Value::from(vec!["8.8.8.8", "1.1.1.1"])),
            "[ 8.8.8.8, 1.1.1.1 ]"
        );
        assert_eq!(value(&Value::from(vec!["psk"])), "[ psk ]");
        assert_eq!(value(&Value::from(Vec::<String>::new())), "[  ]");
        assert_eq!(value(&Value::from(vec![1u8, 2, 3])), "[ 1, 2, 3 ]");
        assert_eq!(
            value_styled(&Value::from(vec!["a", "b"]), Style::Seed),
            "[ a b ]"
        );
        assert_eq!(
            value_styled(&Value::from(Vec::<String>::new()), Style::Seed),
            "[ ]"
        );
    }

    #[test]
    fn dicts_are_sorted_key_value_lists() {
        assert_eq!(
            value(&ipv4_dict()),
            "[ Address=198.18.1.100, Gateway=198.18.1.1, Method=dhcp, Netmask=255.255.255.0 ]"
        );
        assert_eq!(
            value_styled(&ipv4_dict(), Style::Seed),
            "{ Address=198.18.1.100 Gateway=198.18.1.1 Method=dhcp Netmask=255.255.255.0 }"
        );
        let empty: HashMap<String, Value<'static>> = HashMap::new();
        assert_eq!(value(&Value::from(empty.clone())), "[  ]");
        assert_eq!(value_styled(&Value::from(empty), Style::Seed), "{ }");
    }

    #[test]
    fn nested_dicts() {
        let mut inner: HashMap<String, Value<'static>> = HashMap::new();
        inner.insert("Address".into(), Value::from("198.18.1.7"));
        let mut outer: HashMap<String, Value<'static>> = HashMap::new();
        outer.insert("IPv4".into(), Value::from(inner));
        outer.insert("Resolved".into(), Value::from(true));
        outer.insert("Timestamp".into(), Value::I64(12));
        assert_eq!(
            value(&Value::from(outer)),
            "[ IPv4=[ Address=198.18.1.7 ], Resolved=True, Timestamp=12 ]"
        );
    }

    #[test]
    fn structs() {
        let s = match StructureBuilder::new()
            .add_field("a")
            .add_field(7u8)
            .build()
        {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(value(&Value::Structure(s)), "{ a 7 }");
    }

    #[test]
    fn property_lines_are_sorted() {
        let p = props(vec![
            ("State", Value::from("online")),
            ("OfflineMode", Value::from(false)),
            ("SessionMode", Value::from(false)),
        ]);
        assert_eq!(
            properties(&p),
            "  OfflineMode = False\n  SessionMode = False\n  State = online\n"
        );
        assert_eq!(
            properties_styled(&p, " ", Style::Seed),
            " OfflineMode = false\n SessionMode = false\n State = online\n"
        );
        assert_eq!(properties(&Properties::new()), "");
    }

    #[test]
    fn object_properties_has_the_path_line() {
        let p = props(vec![
            ("Powered", Value::from(true)),
            ("Name", Value::from("Wired")),
        ]);
        assert_eq!(
            object_properties("/net/connman/technology/ethernet", &p),
            "/net/connman/technology/ethernet\n  Name = Wired\n  Powered = True\n"
        );
    }

    #[test]
    fn state_letters() {
        assert_eq!(state_letter("online"), 'O');
        assert_eq!(state_letter("ready"), 'R');
        assert_eq!(state_letter("association"), 'a');
        assert_eq!(state_letter("configuration"), 'c');
        assert_eq!(state_letter("disconnect"), 'd');
        assert_eq!(state_letter("idle"), ' ');
        assert_eq!(state_letter("failure"), ' ');
        assert_eq!(state_letter("bogus"), ' ');
    }

    #[test]
    fn service_flag_columns() {
        let all = props(vec![
            ("Favorite", Value::from(true)),
            ("AutoConnect", Value::from(true)),
            ("MultipathRouting", Value::from(true)),
            ("State", Value::from("ready")),
        ]);
        assert_eq!(service_flags(&all), ['*', 'A', 'M', 'R']);
        let none = props(vec![
            ("Favorite", Value::from(false)),
            ("AutoConnect", Value::from(false)),
            ("State", Value::from("idle")),
        ]);
        assert_eq!(service_flags(&none), [' ', ' ', ' ', ' ']);
        // A property of the wrong type counts as absent rather than failing.
        let odd = props(vec![
            ("Favorite", Value::from("yes")),
            ("State", Value::from(3u8)),
        ]);
        assert_eq!(service_flags(&odd), [' ', ' ', ' ', ' ']);
    }

    #[test]
    fn service_lines() {
        let p = props(vec![
            ("Name", Value::from("Wired")),
            ("Favorite", Value::from(true)),
            ("AutoConnect", Value::from(true)),
            ("MultipathRouting", Value::from(true)),
            ("State", Value::from("ready")),
        ]);
        assert_eq!(
            service_line("/net/connman/service/ethernet_36e0bdee6014_cable", &p),
            "*AMR Wired                ethernet_36e0bdee6014_cable"
        );
        let online = props(vec![
            ("Name", Value::from("Wired")),
            ("Favorite", Value::from(true)),
            ("AutoConnect", Value::from(true)),
            ("State", Value::from("online")),
        ]);
        assert_eq!(
            service_line("/net/connman/service/ethernet_1_cable", &online),
            "*A O Wired                ethernet_1_cable"
        );
        let nameless = props(vec![("State", Value::from("idle"))]);
        assert_eq!(
            service_line("/net/connman/service/wifi_x_hidden_managed_psk", &nameless),
            "                          wifi_x_hidden_managed_psk"
        );
        let long = props(vec![(
            "Name",
            Value::from("A very long network name indeed"),
        )]);
        assert_eq!(
            service_line("/net/connman/service/wifi_y", &long),
            "     A very long network name indeed wifi_y"
        );
        assert_eq!(
            service_line("/net/connman/service/ethernet_2_cable", &Properties::new()),
            "unchanged                ethernet_2_cable"
        );
    }

    #[test]
    fn wifi_service_lines() {
        let wifi = |name: Option<&str>, state: &str| {
            let mut p = props(vec![
                ("Type", Value::from("wifi")),
                ("State", Value::from(state.to_owned())),
                ("Security", Value::from(vec!["psk"])),
                ("Strength", Value::U8(62)),
            ]);
            if let Some(n) = name {
                p.insert("Name".into(), ov(Value::from(n.to_owned())));
            }
            p
        };
        // A hidden network: an empty Name (or none) is blank, like connmanctl's "".
        let hidden = "/net/connman/service/wifi_02504d000001_hidden_managed_psk";
        let blank = "                          wifi_02504d000001_hidden_managed_psk";
        assert_eq!(service_line(hidden, &wifi(Some(""), "idle")), blank);
        assert_eq!(service_line(hidden, &wifi(None, "idle")), blank);
        let mut saved = wifi(Some("LabNet"), "online");
        saved.insert("Favorite".into(), ov(Value::from(true)));
        saved.insert("AutoConnect".into(), ov(Value::from(true)));
        assert_eq!(
            service_line(
                "/net/connman/service/wifi_1_4c61624e6574_managed_psk",
                &saved
            ),
            "*A O LabNet               wifi_1_4c61624e6574_managed_psk"
        );
        // Exactly 20 bytes, and 21: one blank before the identifier either way.
        assert_eq!(
            service_line("/s/wifi_a", &wifi(Some("12345678901234567890"), "idle")),
            "     12345678901234567890 wifi_a"
        );
        assert_eq!(
            service_line("/s/wifi_b", &wifi(Some("123456789012345678901"), "ready")),
            "   R 123456789012345678901 wifi_b"
        );
        // The longest SSID (32 bytes) is kept whole.
        let ssid = "S".repeat(32);
        assert_eq!(
            service_line("/s/wifi_c", &wifi(Some(&ssid), "association")),
            format!("   a {ssid} wifi_c")
        );
        // UTF-8: padded to 20 bytes as connmanctl's %-20s ("Café" is 5 bytes: 15 blanks).
        let line = service_line("/s/wifi_d", &wifi(Some("Caf\u{e9}"), "idle"));
        assert_eq!(line, format!("     Caf\u{e9}{} wifi_d", " ".repeat(15)));
        assert_eq!(line.find("wifi_d"), Some(4 + 1 + 20 + 1));
        // Control characters in an SSID stay escaped on the one line.
        assert_eq!(
            service_line("/s/wifi_e", &wifi(Some("a\nb"), "idle")),
            "     a\\nb                 wifi_e"
        );
    }

    #[test]
    fn services_list_keeps_daemon_order() {
        let a = props(vec![
            ("Name", Value::from("Wired")),
            ("State", Value::from("online")),
        ]);
        let b = props(vec![
            ("Name", Value::from("Wired")),
            ("State", Value::from("ready")),
        ]);
        let list = vec![
            (path("/net/connman/service/ethernet_b_cable"), a),
            (path("/net/connman/service/ethernet_a_cable"), b),
        ];
        assert_eq!(
            services_list(&list),
            "   O Wired                ethernet_b_cable\n   R Wired                ethernet_a_cable\n"
        );
        assert_eq!(services_list(&[]), "");
    }

    #[test]
    fn monitor_lines() {
        assert_eq!(
            property_changed_line(
                "net.connman.Service",
                "/net/connman/service/ethernet_024858000001_cable",
                "State",
                &Value::from("ready")
            ),
            "Service      ethernet_024858000001_cable State = ready"
        );
        assert_eq!(
            property_changed_line("net.connman.Manager", "/", "State", &Value::from("online")),
            "Manager                           State = online"
        );
        assert_eq!(
            property_changed_line(
                "net.connman.Technology",
                "/net/connman/technology/wifi",
                "Powered",
                &Value::from(true)
            ),
            "Technology   wifi                 Powered = True"
        );
        let p = props(vec![
            ("Name", Value::from("WiFi")),
            ("Powered", Value::from(false)),
        ]);
        assert_eq!(
            technology_added_line("/net/connman/technology/wifi", &p),
            "Manager      TechnologyAdded      /net/connman/technology/wifi = [ Name=WiFi, Powered=False ]"
        );
        assert_eq!(
            technology_removed_line("/net/connman/technology/wifi"),
            "Manager      TechnologyRemoved    /net/connman/technology/wifi"
        );
    }

    #[test]
    fn services_changed_block() {
        let p = props(vec![
            ("Name", Value::from("Wired")),
            ("AutoConnect", Value::from(true)),
            ("State", Value::from("configuration")),
        ]);
        let changed = vec![
            (path("/net/connman/service/ethernet_1_cable"), p),
            (
                path("/net/connman/service/ethernet_2_cable"),
                Properties::new(),
            ),
        ];
        let removed = vec![path("/net/connman/service/ethernet_3_cable")];
        assert_eq!(
            services_changed(&changed, &removed),
            "Manager      ServicesChanged      = {\n \
             A c Wired                ethernet_1_cable\n\
             unchanged                ethernet_2_cable\n\
             }, {\n\
             removed                  /net/connman/service/ethernet_3_cable\n\
             }\n"
        );
        assert_eq!(
            services_changed(&[], &[]),
            "Manager      ServicesChanged      = {\n}\n"
        );
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            humanize_error_name("net.connman.Error.AlreadyEnabled"),
            "Already enabled"
        );
        assert_eq!(humanize_error_name("Failed"), "Failed");
        assert_eq!(
            error_text("net.connman.Error.AlreadyEnabled", Some("Already enabled")),
            "Already enabled"
        );
        assert_eq!(
            error_text("net.connman.Error.AlreadyEnabled", None),
            "Already enabled"
        );
        assert_eq!(
            error_text(
                "net.connman.Error.InvalidArguments",
                Some("Address: not an IPv4 address")
            ),
            "Invalid arguments (Address: not an IPv4 address)"
        );
        assert_eq!(
            error_text("net.connman.Error.SomethingNew", Some("")),
            "Something new"
        );
        assert_eq!(
            error_text(
                "org.freedesktop.DBus.Error.UnknownMethod",
                Some("No such method 'GetProperties'")
            ),
            "No such method 'GetProperties'"
        );
        assert_eq!(
            error_text("org.freedesktop.DBus.Error.Failed", None),
            "org.freedesktop.DBus.Error.Failed"
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn leaf() -> impl Strategy<Value = Value<'static>> {
            prop_oneof![
                any::<u8>().prop_map(Value::U8),
                any::<bool>().prop_map(Value::Bool),
                any::<i16>().prop_map(Value::I16),
                any::<u16>().prop_map(Value::U16),
                any::<i32>().prop_map(Value::I32),
                any::<u32>().prop_map(Value::U32),
                any::<i64>().prop_map(Value::I64),
                any::<u64>().prop_map(Value::U64),
                any::<f64>().prop_map(Value::F64),
                any::<String>().prop_map(Value::from),
                "(/[A-Za-z0-9_]{1,8}){0,3}".prop_map(|p| {
                    let p = if p.is_empty() { "/".to_owned() } else { p };
                    match ObjectPath::try_from(p) {
                        Ok(p) => Value::ObjectPath(p),
                        Err(_) => Value::from("/"),
                    }
                }),
            ]
        }

        fn nested() -> impl Strategy<Value = Value<'static>> {
            leaf().prop_recursive(5, 96, 6, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|v| Value::Value(Box::new(v))),
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                    prop::collection::vec(any::<String>(), 0..6).prop_map(Value::from),
                    prop::collection::hash_map(any::<String>(), inner.clone(), 0..6)
                        .prop_map(Value::from),
                    prop::collection::vec(inner, 1..5).prop_map(|fields| {
                        let builder = fields
                            .into_iter()
                            .fold(StructureBuilder::new(), |b, f| b.append_field(f));
                        match builder.build() {
                            Ok(s) => Value::Structure(s),
                            Err(_) => Value::from("unbuildable"),
                        }
                    }),
                ]
            })
        }

        proptest! {
            #[test]
            fn formatting_never_panics_and_stays_on_one_line(v in nested()) {
                let a = value(&v);
                let b = value_styled(&v, Style::Seed);
                prop_assert!(!a.contains('\n'));
                prop_assert!(!b.contains('\n'));
            }

            #[test]
            fn one_line_per_property(m in prop::collection::hash_map(any::<String>(), nested(), 0..8)) {
                let p: Properties = m.into_iter().map(|(k, v)| (k, ov(v))).collect();
                let text = properties(&p);
                prop_assert_eq!(text.lines().count(), p.len());
                let flags = service_flags(&p);
                prop_assert_eq!(flags.len(), 4);
                let line = service_line("/net/connman/service/x", &p);
                prop_assert!(!line.contains('\n'));
                prop_assert!(!inline_properties(&p).contains('\n'));
            }
        }
    }
}
