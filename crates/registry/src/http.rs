//! The HTTP vocabulary shared by the core and its hosts: requests the core produces, response heads it consumes,
//! and the small URL helpers it needs (no URL crate: registry URLs are simple).

use std::fmt;

use lw_oci::Digest;

/// The HTTP methods the distribution protocol uses, and `OPTIONS` for the CORS preflight a server answers (the
/// client never sends it). Shared by the client and serve, so the wire vocabulary is written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// The method a request line names; `None` for any other (a server answers those without a handler).
    pub fn parse(m: &str) -> Option<Method> {
        Some(match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// Small bodies the core holds itself (manifests, token forms).
    Bytes(Vec<u8>),
    /// Bytes `offset .. offset + len` of the blob `digest`: the host streams them from its own copy of the blob.
    Blob {
        digest: Digest,
        offset: u64,
        len: u64,
    },
}

impl Body {
    /// The body length; hosts send it as `Content-Length` (the core never puts `Content-Length` in the headers,
    /// which browsers forbid scripts to set).
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Blob { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request for the host to send. The host must not follow redirects itself if it can avoid it (the core does,
/// dropping `Authorization` across hosts); a browser host whose `fetch` follows them is fine too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The absolute URL to send to, already carrying the proxy prefix when one is configured.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Status and headers of a response. Browser hosts pass only the headers the registry exposes through CORS; the
/// core copes when the optional ones (`Docker-Content-Digest`, `Link`, `Range`, `Content-Range`, `Retry-After`,
/// `WWW-Authenticate`) are missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn new(status: u16) -> Self {
        ResponseHead {
            status,
            headers: Vec::new(),
        }
    }

    /// Builder-style: add a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// Every header named `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// `Content-Length`, when present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.parse().ok()
    }

    /// `Content-Type` without parameters, lowercased.
    pub fn content_type(&self) -> Option<String> {
        let v = self.header("content-type")?;
        let base = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        (!base.is_empty()).then_some(base)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What the host must do with the body of the response it just reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// The core does not need it: the host may drop it unread, then calls `on_body_end`.
    Discard,
    /// Feed it through `on_body` (the core keeps it, refusing bodies over its limit), then `on_body_end`.
    Buffer,
    /// Blob data: feed it through `on_body`, which returns the verified bytes to pass on to the host's sink.
    Stream,
}

/// The `scheme://authority` part of an absolute URL, lowercased; `None` for a relative URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        rest[..end].to_ascii_lowercase()
    ))
}

/// The authority (`host[:port]`) of an absolute URL, lowercased.
pub fn authority(url: &str) -> Option<String> {
    origin(url).map(|o| {
        o.split_once("://")
            .map(|(_, a)| a.to_string())
            .unwrap_or_default()
    })
}

/// Resolve a `Location` / `Link` target against the URL of the response that carried it.
pub fn resolve_url(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let Some((scheme, _)) = base.split_once("://") else {
        return location.to_string();
    };
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let origin = origin(base).unwrap_or_default();
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    // Relative path: replace the last segment of the base path.
    let without_query = base.split(['?', '#']).next().unwrap_or(base);
    let dir_end = without_query
        .rfind('/')
        .map(|i| i + 1)
        .unwrap_or(without_query.len());
    if dir_end <= origin.len() {
        return format!("{origin}/{location}");
    }
    format!("{}{}", &without_query[..dir_end], location)
}

/// Percent-encode a query component (everything but RFC 3986 unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Append `key=value` (value encoded) to a URL that may already carry a query.
pub fn append_query(url: &str, key: &str, value: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let mut s = format!(
        "{base}{sep}{}={}",
        encode_component(key),
        encode_component(value)
    );
    if let Some(f) = fragment {
        s.push('#');
        s.push_str(f);
    }
    s
}

/// The `rel="next"` target of an RFC 5988 `Link` header, unresolved.
pub fn link_next(value: &str) -> Option<String> {
    // Link: <url>; rel="next", <url2>; rel="prev"
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let params_all = &after[end + 1..];
        let params = match params_all.find('<') {
            Some(next) => &params_all[..next],
            None => params_all,
        };
        for p in params.split(';') {
            let p = p.trim().trim_end_matches(',').trim();
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                {
                    return Some(target.to_string());
                }
            }
        }
        rest = &after[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip_and_others_are_none() {
        for m in [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Options,
        ] {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        // Methods are case-sensitive (RFC 9110 9.1), and unknown ones have no variant.
        assert_eq!(Method::parse("get"), None);
        assert_eq!(Method::parse("PROPFIND"), None);
    }

    #[test]
    fn resolves_locations() {
        let base = "https://r.example:5000/v2/a/blobs/uploads/?x=1";
        assert_eq!(
            resolve_url(base, "/v2/a/blobs/uploads/abc?_state=z"),
            "https://r.example:5000/v2/a/blobs/uploads/abc?_state=z"
        );
        assert_eq!(
            resolve_url(base, "https://cdn.example/b?sig=1"),
            "https://cdn.example/b?sig=1"
        );
        assert_eq!(
            resolve_url(base, "//cdn.example/b"),
            "https://cdn.example/b"
        );
        assert_eq!(
            resolve_url(base, "abc"),
            "https://r.example:5000/v2/a/blobs/uploads/abc"
        );
        assert_eq!(authority(base).as_deref(), Some("r.example:5000"));
        assert_eq!(
            authority("https://R.example/x").as_deref(),
            Some("r.example")
        );
        assert_eq!(origin("http://h:1?q").as_deref(), Some("http://h:1"));
    }

    #[test]
    fn appends_queries() {
        assert_eq!(
            append_query(
                "https://h/v2/a/blobs/uploads/u?_state=s",
                "digest",
                "sha256:ab"
            ),
            "https://h/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab"
        );
        assert_eq!(
            append_query("https://h/t", "scope", "repository:a/b:pull,push"),
            "https://h/t?scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn parses_link_next() {
        assert_eq!(
            link_next(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            link_next(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#).as_deref(),
            Some("https://x/next")
        );
        assert_eq!(link_next(r#"<https://x/prev>; rel="prev""#), None);
    }
}
