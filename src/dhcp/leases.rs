//! The tethering server's leases file (`<state-dir>/tether.leases`), pure: one binding a
//! line, expiry in wall-clock seconds so it means the same after a restart. The edge
//! writes it atomically (temporary file and rename) after every change.
//!
//! ```text
//! pathman-leases 1
//! 192.168.0.23 02:50:4d:20:00:01 01025048200001 1764763200 laptop
//! 192.168.0.24 02:50:4d:20:00:02 - 1764760000 -
//! ```
//! Fields: address, chaddr, client id in hex (or `-`: keyed by chaddr), lease end
//! (seconds since the epoch; past = the client's remembered address), host name or `-`.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use super::server::{Binding, ClientKey};
use crate::caps;
use crate::task::Now;

const HEADER: &str = "pathman-leases 1";

/// Why a leases file was not used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeasesError {
    /// The first line is not the format's header.
    BadHeader(String),
}

impl std::fmt::Display for LeasesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeasesError::BadHeader(h) => write!(f, "not a pathman leases file (first line {h:?})"),
        }
    }
}

fn wall_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The file's text for `bindings` at `now`.
pub fn encode(bindings: &[Binding], now: &Now) -> String {
    let base = wall_secs(now.wall);
    let mut out = String::with_capacity(32 + bindings.len() * 64);
    out.push_str(HEADER);
    out.push('\n');
    for b in bindings {
        let end = if b.expires >= now.mono {
            base.saturating_add(b.expires.duration_since(now.mono).as_secs() as i64)
        } else {
            base.saturating_sub(now.mono.duration_since(b.expires).as_secs() as i64)
        };
        let id = match &b.key {
            ClientKey::Id(id) => id.iter().fold(String::new(), |mut s, x| {
                let _ = write!(s, "{x:02x}");
                s
            }),
            ClientKey::Mac(_) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{} {} {id} {end} {}",
            b.addr,
            crate::core::types::mac_text(&b.mac),
            b.hostname.as_deref().unwrap_or("-")
        );
    }
    out
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() / 2 > caps::DHCP_SERVER_MAX_CLIENT_ID || s.len() < 4 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn parse_line(line: &str, now: &Now) -> Result<Binding, &'static str> {
    let f: Vec<&str> = line.split(' ').collect();
    let [addr, mac, id, end, host] = f.as_slice() else {
        return Err("not five fields");
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| "bad address")?;
    let mac = parse_mac(mac).ok_or("bad MAC")?;
    let key = match *id {
        "-" => ClientKey::Mac(mac),
        hex => ClientKey::Id(parse_hex(hex).ok_or("bad client id")?),
    };
    let end: i64 = end.parse().map_err(|_| "bad lease end")?;
    let delta = end.saturating_sub(wall_secs(now.wall));
    let expires = if delta >= 0 {
        now.mono
            .checked_add(Duration::from_secs(delta as u64))
            .ok_or("lease end too far")?
    } else {
        // Ended before this boot's clock can tell: remembered, ended now.
        now.mono
            .checked_sub(Duration::from_secs(delta.unsigned_abs()))
            .unwrap_or(now.mono)
    };
    let hostname = match *host {
        "-" => None,
        h if h.len() <= 63
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') =>
        {
            Some(h.to_string())
        }
        _ => return Err("bad host name"),
    };
    Ok(Binding {
        addr,
        key,
        mac,
        expires,
        hostname,
    })
}

/// The bindings in `text`, and a warning per line skipped (bad, doubled or beyond
/// `max` bindings). Never panics; a wrong header is an error (start empty).
pub fn decode(
    text: &str,
    now: &Now,
    max: usize,
) -> Result<(Vec<Binding>, Vec<String>), LeasesError> {
    let mut lines = text.lines();
    let head = lines.next().unwrap_or("");
    if head != HEADER {
        return Err(LeasesError::BadHeader(head.chars().take(40).collect()));
    }
    let mut out: Vec<Binding> = Vec::new();
    let mut warnings = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        if out.len() >= max {
            warnings.push(format!(
                "line {}: more than {max} leases, the rest skipped",
                n + 2
            ));
            break;
        }
        match parse_line(line, now) {
            Ok(b) if out.iter().any(|x| x.addr == b.addr || x.key == b.key) => {
                warnings.push(format!("line {}: {} doubled, skipped", n + 2, b.addr));
            }
            Ok(b) => out.push(b),
            Err(why) => warnings.push(format!("line {}: {why}, skipped", n + 2)),
        }
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Instant;

    fn now() -> Now {
        Now {
            mono: Instant::now() + Duration::from_secs(100_000),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_763_200),
        }
    }

    fn b(i: u8, id: bool, secs: i64, now: &Now) -> Binding {
        let mac = [2, 0x50, 0x4d, 0x20, 0, i];
        Binding {
            addr: Ipv4Addr::new(192, 168, 0, i),
            key: if id {
                ClientKey::Id(vec![1, 2, 0x50, 0x4d, 0x20, 0, i])
            } else {
                ClientKey::Mac(mac)
            },
            mac,
            expires: if secs >= 0 {
                now.mono + Duration::from_secs(secs as u64)
            } else {
                now.mono - Duration::from_secs(secs.unsigned_abs())
            },
            hostname: i.is_multiple_of(2).then(|| format!("host{i}")),
        }
    }

    #[test]
    fn the_file_round_trips_running_and_remembered_leases() {
        let n = now();
        let list = vec![b(2, true, 3600, &n), b(3, false, -60, &n)];
        let text = encode(&list, &n);
        assert!(
            text.starts_with(
                "pathman-leases 1\n192.168.0.2 02:50:4d:20:00:02 0102504d200002 1764766800 host2\n"
            ),
            "{text}"
        );
        let (back, w) = decode(&text, &n, 252).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(back, list);
    }

    #[test]
    fn corrupt_lines_are_skipped_with_a_reason_and_a_bad_header_refuses_the_file() {
        let n = now();
        assert!(decode("garbage\n", &n, 252).is_err());
        assert!(decode("", &n, 252).is_err());
        let text = "pathman-leases 1\n192.168.0.9 02:50:4d:20:00:09 - 1764766800 -\n\
                    192.168.0.9 02:50:4d:20:00:0a - 1764766800 -\n\
                    1.2.3 02:50:4d:20:00:0b - 1 -\n\
                    192.168.0.10 zz - 1 -\n192.168.0.11 02:50:4d:20:00:0c abc 1 -\n\
                    192.168.0.12 02:50:4d:20:00:0d - 1 bad/name\n";
        let (v, w) = decode(text, &n, 252).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(w.len(), 5, "{w:?}");
        let (v, w) = decode(text, &n, 0).unwrap();
        assert!(v.is_empty() && w[0].contains("more than 0"), "{w:?}");
    }

    proptest! {
        #[test]
        fn decode_never_panics(text in ".{0,400}") {
            let _ = decode(&format!("pathman-leases 1\n{text}"), &now(), 252);
            let _ = decode(&text, &now(), 252);
        }

        #[test]
        fn encode_then_decode_is_identity(
            entries in proptest::collection::btree_map(2u8..250, (any::<bool>(), -100_000i64..100_000), 0..30)
        ) {
            let n = now();
            let list: Vec<Binding> = entries.iter().map(|(i, (id, s))| b(*i, *id, *s, &n)).collect();
            let (back, w) = decode(&encode(&list, &n), &n, 252).unwrap();
            prop_assert!(w.is_empty());
            prop_assert_eq!(back, list);
        }
    }
}
