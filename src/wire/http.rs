//! The little HTTP/1.1 the online check needs: the check URL (`http://host[:port]/path`), a
//! GET request, and a bounded, incremental parse of the response head (status code and
//! headers; the body is never read). ConnMan's rule: the header `X-ConnMan-Status: online`
//! means online. Pure, allocation-free.

use crate::caps::{HTTP_MAX_HEAD, HTTP_MAX_PATH, HTTP_MAX_REQUEST, MAX_NAME_LEN};
use core::fmt;
use heapless::{String, Vec};
use std::net::IpAddr;

/// Why a URL, request or response head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The URL's scheme is not `http://` (https is not supported: the check needs no TLS,
    /// ConnMan's URLs are plain HTTP).
    UnsupportedScheme,
    /// The URL has no host, or a host with characters a host name cannot have.
    BadHost,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// Host or path longer than the caps ([`MAX_NAME_LEN`], [`HTTP_MAX_PATH`]).
    TooLong,
    /// The path has a byte that cannot go into a request line (space, control).
    BadPath,
    /// The response head is longer than [`HTTP_MAX_HEAD`].
    HeadTooLarge,
    /// The response ended before the head did.
    Truncated,
    /// The status line or a header line is malformed.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::UnsupportedScheme => "only http:// URLs are supported",
            Error::BadHost => "bad host in URL",
            Error::BadPort => "bad port in URL",
            Error::TooLong => "URL too long",
            Error::BadPath => "bad path in URL",
            Error::HeadTooLarge => "response head too large",
            Error::Truncated => "response ended inside its head",
            Error::Malformed => "malformed response head",
        })
    }
}

impl std::error::Error for Error {}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or address literal (an IPv6 literal without its brackets).
    pub host: String<MAX_NAME_LEN>,
    /// TCP port (80 unless given).
    pub port: u16,
    /// Path with query, starting with `/`.
    pub path: String<HTTP_MAX_PATH>,
}

fn host_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

impl Url {
    /// Parses `http://host[:port][/path]`; the scheme is case-insensitive, a fragment is
    /// dropped.
    pub fn parse(s: &str) -> Result<Url, Error> {
        let s = s.trim();
        let rest = match s.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("http://") => &s[7..],
            _ => return Err(Error::UnsupportedScheme),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(Error::BadHost);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(Error::BadHost)?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(Error::BadHost);
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(Error::BadPort)?),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(Error::BadHost);
        }
        if !authority.starts_with('[') && !host.bytes().all(host_byte_ok) {
            return Err(Error::BadHost);
        }
        let port = match port {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(Error::BadPort),
            },
        };
        let path = path.split('#').next().unwrap_or("");
        let path = if path.starts_with('/') {
            path
        } else if path.is_empty() {
            "/"
        } else {
            // "?q" without a path: the path is "/" with the query.
            return Url::with_query_only(host, port, path);
        };
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadPath);
        }
        Ok(Url {
            host: String::try_from(host).map_err(|_| Error::TooLong)?,
            port,
            path: String::try_from(path).map_err(|_| Error::TooLong)?,
        })
    }

    fn with_query_only(host: &str, port: u16, query: &str) -> Result<Url, Error> {
        if !query.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadPath);
        }
        let mut path = String::new();
        path.push('/').map_err(|_| Error::TooLong)?;
        path.push_str(query).map_err(|_| Error::TooLong)?;
        Ok(Url {
            host: String::try_from(host).map_err(|_| Error::TooLong)?,
            port,
            path,
        })
    }

    /// The host as an address, when it is a literal (no DNS needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// Builds the GET request for this URL.
    pub fn request(&self) -> Result<Vec<u8, HTTP_MAX_REQUEST>, Error> {
        let mut v = Vec::new();
        let mut put = |s: &str| {
            v.extend_from_slice(s.as_bytes())
                .map_err(|_| Error::TooLong)
        };
        put("GET ")?;
        put(&self.path)?;
        put(" HTTP/1.1\r\nHost: ")?;
        let v6 = self.host.contains(':');
        if v6 {
            put("[")?;
        }
        put(&self.host)?;
        if v6 {
            put("]")?;
        }
        if self.port != 80 {
            let mut buf = [0u8; 6];
            put(":")?;
            put(fmt_u16(self.port, &mut buf))?;
        }
        put("\r\nUser-Agent: pathman\r\nConnection: close\r\n\r\n")?;
        Ok(v)
    }
}

fn fmt_u16(mut n: u16, buf: &mut [u8; 6]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Length of the response head in `buf` (up to and including the empty line), once it is
/// complete; `Err(HeadTooLarge)` when [`HTTP_MAX_HEAD`] bytes hold no end. A reader calls
/// it after every read and stops reading at `Ok(Some(_))` or an error.
pub fn head_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    let window = &buf[..buf.len().min(HTTP_MAX_HEAD)];
    for i in 0..window.len() {
        if window[i] != b'\n' {
            continue;
        }
        // "\n\n" or "\n\r\n" ends the head.
        match window.get(i + 1..) {
            Some([b'\n', ..]) => return Ok(Some(i + 2)),
            Some([b'\r', b'\n', ..]) => return Ok(Some(i + 3)),
            _ => {}
        }
    }
    if buf.len() >= HTTP_MAX_HEAD {
        Err(Error::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The header lines (after the status line, before the empty line).
    headers: &'a [u8],
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

impl<'a> Response<'a> {
    /// Parses the head at the start of `buf` (everything read from the connection).
    pub fn parse(buf: &'a [u8]) -> Result<Response<'a>, Error> {
        let len = head_len(buf)?.ok_or(Error::Truncated)?;
        let head = &buf[..len];
        let line_end = head
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(Error::Malformed)?;
        let status_line = trim(&head[..line_end]);
        // "HTTP/1.x SSS[ reason]"
        let rest = status_line
            .strip_prefix(b"HTTP/1.")
            .ok_or(Error::Malformed)?;
        let (minor, rest) = rest.split_first().ok_or(Error::Malformed)?;
        if !minor.is_ascii_digit() {
            return Err(Error::Malformed);
        }
        let code = match rest {
            [b' ', a, b, c] | [b' ', a, b, c, b' ', ..] => [*a, *b, *c],
            _ => return Err(Error::Malformed),
        };
        if !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
            return Err(Error::Malformed);
        }
        let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        let headers = &head[line_end + 1..];
        for line in headers.split(|&b| b == b'\n') {
            let line = trim(line);
            if line.is_empty() {
                continue;
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(Error::Malformed)?;
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Malformed);
            }
        }
        Ok(Response { status, headers })
    }

    /// The value of the first header called `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.split(|&b| b == b'\n').find_map(|line| {
            let line = trim(line);
            let colon = line.iter().position(|&b| b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| trim(&line[colon + 1..]))
        })
    }

    /// ConnMan's verdict: `X-ConnMan-Status: online` (value case-insensitive).
    pub fn is_online(&self) -> bool {
        self.header("X-ConnMan-Status")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"online"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_connman_urls() {
        let u = Url::parse("http://ipv4.connman.net/online/status.html").unwrap();
        assert_eq!(u.host.as_str(), "ipv4.connman.net");
        assert_eq!(u.port, 80);
        assert_eq!(u.path.as_str(), "/online/status.html");
        assert_eq!(u.ip(), None);
        let u = Url::parse("HTTP://192.0.2.9:8080").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("192.0.2.9", 8080, "/")
        );
        assert_eq!(u.ip(), Some("192.0.2.9".parse().unwrap()));
        let u = Url::parse("http://[2001:db8::9]/s?x=1#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.path.as_str()),
            ("2001:db8::9", "/s?x=1")
        );
        let u = Url::parse("http://h?q").unwrap();
        assert_eq!(u.path.as_str(), "/?q");
    }

    #[test]
    fn refuses_what_it_cannot_check() {
        assert_eq!(
            Url::parse("https://ipv4.connman.net/"),
            Err(Error::UnsupportedScheme)
        );
        assert_eq!(Url::parse("ftp://x/"), Err(Error::UnsupportedScheme));
        assert_eq!(Url::parse("http:///x"), Err(Error::BadHost));
        assert_eq!(Url::parse("http://a b/"), Err(Error::BadHost));
        assert_eq!(Url::parse("http://u@h/"), Err(Error::BadHost));
        assert_eq!(Url::parse("http://h:0/"), Err(Error::BadPort));
        assert_eq!(Url::parse("http://h:99999/"), Err(Error::BadPort));
        assert_eq!(Url::parse("http://h:+80/"), Err(Error::BadPort));
        assert_eq!(Url::parse("http://[zz]/"), Err(Error::BadHost));
        let long = format!("http://h/{}", "a".repeat(HTTP_MAX_PATH));
        assert_eq!(Url::parse(&long), Err(Error::TooLong));
    }

    #[test]
    fn request_is_minimal_http11() {
        let u = Url::parse("http://ipv4.connman.net/online/status.html").unwrap();
        assert_eq!(
            &u.request().unwrap()[..],
            b"GET /online/status.html HTTP/1.1\r\nHost: ipv4.connman.net\r\n\
              User-Agent: pathman\r\nConnection: close\r\n\r\n"
        );
        let u = Url::parse("http://[fd19::1]:8080/").unwrap();
        let r = u.request().unwrap();
        assert!(r.starts_with(b"GET / HTTP/1.1\r\nHost: [fd19::1]:8080\r\n"));
    }

    #[test]
    fn parses_a_connman_answer() {
        let head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nx-connman-status:   Online \r\n\
                     Content-Length: 0\r\n\r\nbody";
        assert_eq!(head_len(head), Ok(Some(head.len() - 4)));
        let r = Response::parse(head).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.is_online());
        assert_eq!(r.header("content-length"), Some(&b"0"[..]));
        assert_eq!(r.header("X-Missing"), None);
        let portal = Response::parse(b"HTTP/1.0 302 Found\nLocation: http://p/\n\n").unwrap();
        assert_eq!(portal.status, 302);
        assert!(!portal.is_online());
    }

    #[test]
    fn head_bounds_and_errors() {
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\nA: b\r\n"), Ok(None));
        assert_eq!(
            Response::parse(b"HTTP/1.1 200 OK\r\n"),
            Err(Error::Truncated)
        );
        let big = vec![b'a'; HTTP_MAX_HEAD];
        assert_eq!(head_len(&big), Err(Error::HeadTooLarge));
        assert_eq!(Response::parse(&big), Err(Error::HeadTooLarge));
        assert_eq!(Response::parse(b"garbage\r\n\r\n"), Err(Error::Malformed));
        assert_eq!(
            Response::parse(b"HTTP/1.1 20 OK\r\n\r\n"),
            Err(Error::Malformed)
        );
        assert_eq!(
            Response::parse(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
            Err(Error::Malformed)
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let _ = head_len(&b);
            if let Ok(r) = Response::parse(&b) {
                let _ = r.is_online();
                let _ = r.header("a");
            }
        }

        #[test]
        fn never_panics_on_arbitrary_urls(s in "\\PC{0,80}") {
            let _ = Url::parse(&s);
            let _ = Url::parse(&format!("http://{s}"));
        }

        #[test]
        fn url_round_trips_through_the_request(
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9]{1,10}){0,3}",
            port in 1u16..,
            path in "(/[A-Za-z0-9._~%-]{0,12}){1,4}",
        ) {
            let s = format!("http://{host}:{port}{path}");
            let u = Url::parse(&s).unwrap();
            prop_assert_eq!(u.host.as_str(), host.as_str());
            prop_assert_eq!(u.port, port);
            prop_assert_eq!(u.path.as_str(), path.as_str());
            let req = u.request().unwrap();
            let text = core::str::from_utf8(&req).unwrap();
            let want_start = format!("GET {path} HTTP/1.1\r\n");
            prop_assert!(text.starts_with(&want_start));
            let host_line = if port == 80 {
                format!("\r\nHost: {host}\r\n")
            } else {
                format!("\r\nHost: {host}:{port}\r\n")
            };
            prop_assert!(text.contains(&host_line));
            prop_assert!(text.ends_with("\r\n\r\n"));
        }

        #[test]
        fn response_round_trips(
            status in 100u16..1000,
            value in "[A-Za-z0-9]{0,20}",
            online in any::<bool>(),
        ) {
            let mut head = format!("HTTP/1.1 {status} Whatever\r\nX-Test: {value}\r\n");
            if online {
                head.push_str("X-ConnMan-Status: online\r\n");
            }
            head.push_str("\r\n");
            let r = Response::parse(head.as_bytes()).unwrap();
            prop_assert_eq!(r.status, status);
            prop_assert_eq!(r.header("x-test"), Some(value.as_bytes()));
            prop_assert_eq!(r.is_online(), online);
        }
    }
}
