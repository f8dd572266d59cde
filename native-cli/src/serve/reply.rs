//! HTTP plumbing for `layerwright serve`: the reply type handlers return, request helpers (query, headers, auth,
//! ranges) and the conversion to
//! responses of the HTTP layer (always with an exact Content-Length when the size is known).

use std::io::{Cursor, Read};

use super::http::{Request, Response};

/// What a reply carries.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A stream with its length when known (HEAD replies use a length with an empty reader).
    Stream(Box<dyn Read + Send>, Option<u64>),
}

/// A reply built by a handler; CORS and common headers are added by the dispatcher.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn bytes(mut self, content_type: &str, b: impl Into<Vec<u8>>) -> Reply {
        self.headers
            .push(("Content-Type".into(), content_type.to_string()));
        self.body = Body::Bytes(b.into());
        self
    }

    pub fn stream(mut self, r: Box<dyn Read + Send>, len: Option<u64>) -> Reply {
        self.body = Body::Stream(r, len);
        self
    }

    /// A JSON body.
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply::new(status).bytes(
            "application/json",
            serde_json::to_vec(v).unwrap_or_default(),
        )
    }

    /// An OCI Distribution error body (`{"errors":[{code,message,detail}]}`), written by the same code the client
    /// parses it with.
    pub fn oci_error(status: u16, code: &str, message: impl std::fmt::Display) -> Reply {
        Reply::new(status).bytes(
            "application/json",
            lw_registry::error_envelope(code, &message.to_string()),
        )
    }

    pub fn text(status: u16, msg: impl std::fmt::Display) -> Reply {
        Reply::new(status).bytes("text/plain; charset=utf-8", format!("{msg}\n"))
    }

    pub fn has_header(&self, k: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(k))
    }

    /// Turn into a response for the HTTP layer (HEAD replies keep their length and lose their body there).
    pub fn into_response(self) -> Response {
        let (body, len): (Box<dyn Read + Send>, Option<u64>) = match self.body {
            Body::Empty => (Box::new(std::io::empty()), Some(0)),
            Body::Bytes(b) => {
                let n = b.len() as u64;
                (Box::new(Cursor::new(b)), Some(n))
            }
            Body::Stream(r, n) => (r, n),
        };
        Response {
            status: self.status,
            headers: self.headers,
            body,
            len,
        }
    }
}

/// The value of request header `name` (first one).
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name)
}

/// Split `/a/b?x=1&y=2` into the path and decoded query pairs.
pub fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), query)
}

pub fn query<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A single `bytes=START-END` range (END inclusive, optional; suffix ranges `-N` too) clamped to `len`.
/// `None`: no usable range header (serve everything); `Some(Err(()))`: unsatisfiable.
pub fn parse_range(v: Option<&str>, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multi-range: serve the whole entity, which RFC 9110 allows
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(n), len - 1)));
    }
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        b.parse::<u64>().ok()?.min(len.saturating_sub(1))
    };
    if start >= len || end < start {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The name of the cookie that carries the token for the page (per port: cookies ignore ports).
pub fn token_cookie_name(port: u16) -> String {
    format!("lw_token_{port}")
}

/// The token in the request's `Cookie` header, if any.
pub fn cookie_token(req: &Request, name: &str) -> Option<String> {
    let v = header(req, "cookie")?;
    v.split(';').find_map(|kv| {
        let (k, val) = kv.trim().split_once('=')?;
        (k == name).then(|| val.to_string())
    })
}

/// The secret a request carries: basic-auth password (any user), `Bearer TOKEN`, or `?token=`.
pub fn presented_token(req: &Request, q: &[(String, String)]) -> Option<String> {
    if let Some(v) = header(req, "authorization") {
        let v = v.trim();
        if let Some(b) = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
        {
            use base64::Engine as _;
            let dec = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()?;
            let s = String::from_utf8(dec).ok()?;
            return s.split_once(':').map(|(_, p)| p.to_string());
        }
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(t.trim().to_string());
        }
    }
    query(q, "token").map(str::to_string)
}

/// A reader that fails once more than `limit` bytes were read (request size limits).
pub struct Limited<R> {
    pub inner: R,
    pub left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other("request body over the size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Read a whole small body, refusing more than `limit` bytes.
pub fn read_small(r: &mut dyn Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Limited {
        inner: r,
        left: limit,
    }
    .read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Some(Ok((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some("bytes=95-200"), 100), Some(Ok((95, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Some(Err(())));
        assert_eq!(parse_range(Some("items=1-2"), 100), None);
        assert_eq!(parse_range(None, 100), None);
    }

    #[test]
    fn urls() {
        let (p, q) = split_url("/v2/a/tags/list?n=2&last=x%2By");
        assert_eq!(p, "/v2/a/tags/list");
        assert_eq!(query(&q, "n"), Some("2"));
        assert_eq!(query(&q, "last"), Some("x+y"));
        assert_eq!(percent_decode("a%"), "a%");
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd"));
    }
}
