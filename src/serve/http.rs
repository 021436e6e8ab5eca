//! Just enough HTTP/1.1 for a read-only view: one GET (or HEAD) per connection, a bounded
//! request head read under a deadline, and a response with a fixed set of safety headers.
//!
//! Hand-written over std::net rather than a crate: the small synchronous servers do not set
//! socket timeouts or bound the request head, which is the part that matters here, and the
//! async ones bring a runtime that would double the build on two cores.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The request line and headers together; browsers send under 2 KiB.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The whole request head has to arrive within this, however slowly it trickles in.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// A parsed request: method, decoded path segments, query parameters and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path as sent, without the query.
    pub path: String,
    /// Percent-decoded path segments; None if the path is malformed or tries to climb (`..`).
    pub segments: Option<Vec<String>>,
    pub query: BTreeMap<String, String>,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Why a request could not be read; each maps to a status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadError {
    /// Closed before a full head (nothing to answer).
    Closed,
    Timeout,
    TooLarge,
    Malformed,
}

/// Reads and parses one request head from the stream (socket timeouts set by the caller).
pub fn read_request(stream: &mut impl Read) -> Result<Request, ReadError> {
    let started = Instant::now();
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(&head) {
            head.truncate(end);
            break;
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(ReadError::TooLarge);
        }
        if started.elapsed() > HEAD_DEADLINE {
            return Err(ReadError::Timeout);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Timeout)
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
    if head.len() > MAX_HEAD_BYTES {
        return Err(ReadError::TooLarge);
    }
    parse_head(std::str::from_utf8(&head).map_err(|_| ReadError::Malformed)?)
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn parse_head(head: &str) -> Result<Request, ReadError> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(ReadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(ReadError::Malformed);
    }
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(ReadError::Malformed)?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        segments: segments(path),
        query: parse_query(query),
        headers,
    })
}

/// The decoded segments of an absolute path ("/" has none). Anything that could name
/// something outside the routes (`.`/`..`, empty segments, slashes or NULs hidden by
/// percent-encoding, bad escapes) gives None, which routes to 404.
pub fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/')
        .map(|raw| {
            let s = percent_decode(raw)?;
            let bad = s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']);
            (!bad).then_some(s)
        })
        .collect()
}

/// Query parameters (`+` is a space); a key given twice keeps the last value.
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(&k.replace('+', " "))?, percent_decode(&v.replace('+', " "))?))
        })
        .collect()
}

pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for names in links).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A complete response, built before anything is written (the database is closed by then).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub const HTML: &str = "text/html; charset=utf-8";
pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Scripts only from our own /assets; inline styles are the report's chart legends.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, TEXT, format!("{body}\n"))
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        match serde_json::to_vec_pretty(value) {
            Ok(body) => Response::new(status, JSON, body),
            Err(_) => Response::text(500, "500 internal error"),
        }
    }

    pub fn json_error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    /// Writes status line, headers and (unless `head_only`) the body; then the connection closes.
    pub fn write_to(&self, out: &mut impl Write, head_only: bool) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n\
             Content-Security-Policy: {CSP}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head += &format!("{name}: {value}\r\n");
        }
        head += "\r\n";
        out.write_all(head.as_bytes())?;
        if !head_only {
            out.write_all(&self.body)?;
        }
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_refuse_climbing_and_hidden_slashes() {
        assert_eq!(segments("/"), Some(vec![]));
        assert_eq!(segments("/sweeps/a%20b"), Some(vec!["sweeps".into(), "a b".into()]));
        for bad in [
            "/../etc/passwd",
            "/assets/../Cargo.toml",
            "/%2e%2e/x",
            "/a%2Fb",
            "/a//b",
            "/x/",
            "/%zz",
            "/a%00",
        ] {
            assert_eq!(segments(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_head_is_parsed_and_bounded() {
        let raw =
            b"GET /api/sweeps?sort=macro&token=ab%2Bc HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\n";
        let r = read_request(&mut &raw[..]).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/api/sweeps"));
        assert_eq!(r.query["sort"], "macro");
        assert_eq!(r.query["token"], "ab+c");
        assert_eq!(r.header("cookie"), Some("a=b"));
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(read_request(&mut huge.as_bytes()), Err(ReadError::TooLarge));
        assert_eq!(read_request(&mut &b"GET / HTTP/1.1\r\n"[..]), Err(ReadError::Closed));
        assert_eq!(
            read_request(&mut &b"GET nothing HTTP/1.1\r\n\r\n"[..]),
            Err(ReadError::Malformed)
        );
    }

    #[test]
    fn percent_encoding_round_trips() {
        let name = "tiny <report> & co/é";
        assert_eq!(percent_decode(&percent_encode(name)).as_deref(), Some(name));
    }
}
