//! The registry proxy at `/proxy/HOST/v2/…`, one code path for `serve` and the public gateway (`layerwright
//! proxy`): forwards to the upstream registry, answers its token auth server-side (the browser never sees the token
//! host), follows blob redirects, streams bodies both ways, and rewrites `Location`/`Link` back through the proxy.
//! A [`Policy`] says what differs: serve's may push and use the machine's credentials; the public one reads only,
//! uses none, and points clients that need credentials at its own token endpoint. Plain HTTP only to loopback.

use std::collections::HashMap;
use std::sync::Mutex;

use super::http::{Method, Request};
use lw_registry::challenge::parse_all;
use lw_registry::{Credentials, Request as RRequest, SendBody, Transport};

use super::proxy_policy::private_ip;
pub use super::proxy_policy::{readable_path, Policy, PUBLIC_UPSTREAMS};
use super::reply::{header, percent_encode, Reply};
use super::MAX_BLOB;
use crate::http::{is_loopback, UreqTransport};

/// Response headers passed back from upstream.
const PASS_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "docker-content-digest",
    "content-range",
    "range",
    "accept-ranges",
    "docker-upload-uuid",
    "etag",
    "oci-subject",
    "oci-filters-applied",
    "docker-distribution-api-version",
];
/// Request headers passed on to upstream (never Cookie: the proxy neither stores nor forwards cookies).
const FORWARD_HEADERS: &[&str] = &[
    "accept",
    "range",
    "content-type",
    "content-range",
    "if-none-match",
];
/// Token cache entries kept before the cache is emptied (a public proxy sees many credentials).
const MAX_TOKENS: usize = 10_000;

/// The proxy's JSON error: the OCI error shape, which registry clients and the inspector show as they are.
pub fn err(status: u16, code: &str, msg: impl std::fmt::Display) -> Reply {
    Reply::oci_error(status, code, msg)
}

/// An upstream resolved from the path after `/proxy/`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host the client named (lower case), as it appears in rewritten URLs.
    pub host: String,
    /// The host connected to (`docker.io` → `registry-1.docker.io`).
    pub upstream: String,
    pub scheme: &'static str,
    /// `/v2/…`
    pub path: String,
    /// `Some(scheme)` for the prefix form `/proxy/SCHEME://HOST/v2/…`.
    pub url_form: Option<&'static str>,
}

/// What the caller knows about the client.
pub struct Forward<'a> {
    pub query: &'a [(String, String)],
    /// The client may push (serve: it carries serve's token).
    pub may_write: bool,
    /// The request's `Authorization` is the proxy's own (serve's token), not for upstream.
    pub auth_is_ours: bool,
    /// The proxy's base URL as the client reaches it: upstream Bearer challenges come back with a realm at
    /// `BASE/token/HOST`. `None`: upstream refusals are plain 401 errors.
    pub realm_base: Option<String>,
}

/// The client's authorization for upstream.
enum ClientAuth {
    /// Credentials to get a token with server-side, and a fingerprint for the token cache.
    Creds(Credentials, String),
    /// A Bearer token the client got from our token endpoint: forwarded as it is.
    Bearer(String),
}

pub struct Proxy {
    pub policy: Policy,
    /// (host, scope, credential fingerprint) → Authorization value that worked.
    tokens: Mutex<HashMap<(String, String, String), String>>,
    /// One agent for every request: upstream connections (and their TLS sessions) are reused.
    transport: UreqTransport,
}

/// The repository scope of a registry API path.
pub fn scope_for(path: &str, write: bool) -> Option<String> {
    let name = repo_of(path)?;
    Some(format!(
        "repository:{name}:{}",
        if write { "pull,push" } else { "pull" }
    ))
}

/// The repository name in `/v2/NAME/(manifests|blobs|tags|referrers)/…`.
pub fn repo_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/tags/list", "/referrers/"]
        .iter()
        .filter_map(|s| rest.find(s).map(|i| &rest[..i]))
        .min_by_key(|n| n.len())
        .filter(|n| !n.is_empty())
}

impl Proxy {
    pub fn new(policy: Policy) -> Proxy {
        Proxy {
            transport: UreqTransport::new(&policy.http),
            policy,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Resolve `rest` (the path after `/proxy/`): `HOST/v2/…` (the proxy as a registry base URL), or
    /// `SCHEME://HOST/v2/…` (a prefix before the registry's whole URL, as generic CORS proxies take it and the
    /// browser client sends).
    pub fn target(&self, rest: &str) -> Result<Target, Reply> {
        let (url_form, rest) = match rest
            .strip_prefix("https://")
            .map(|r| (Some("https"), r))
            .or_else(|| rest.strip_prefix("http://").map(|r| (Some("http"), r)))
        {
            Some((scheme, r)) => (scheme, r),
            None => (None, rest),
        };
        let (host, path) = match rest.split_once('/') {
            Some((h, p)) => (h.to_ascii_lowercase(), format!("/{p}")),
            None => {
                return Err(err(
                    400,
                    "BAD_REQUEST",
                    "use /proxy/HOST/v2/... or /proxy/https://HOST/v2/...",
                ))
            }
        };
        if !(path == "/v2/" || path == "/v2" || path.starts_with("/v2/")) {
            return Err(err(400, "BAD_REQUEST", "only /v2/ API paths are proxied"));
        }
        if host.is_empty() || host.contains(['@', '?', '#', '\\']) {
            return Err(err(400, "BAD_REQUEST", "bad upstream host"));
        }
        if !self.policy.allows(&host) {
            return Err(err(
                403,
                "DENIED",
                format!("upstream {host} is not in the proxy's allow-list (--allow-upstream)"),
            ));
        }
        // Plain HTTP only to loopback registries (the tests' and a local registry's), whatever the URL asks.
        let scheme = match url_form {
            Some("http") if is_loopback(&host) => "http",
            Some("http") => {
                return Err(err(
                    400,
                    "BAD_REQUEST",
                    "the proxy reaches non-loopback registries over https only",
                ))
            }
            _ if is_loopback(&host) && url_form.is_none() => "http",
            _ => "https",
        };
        let upstream = if host == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            host.clone()
        };
        Ok(Target {
            host,
            upstream,
            scheme,
            path,
            url_form,
        })
    }

    /// `/proxy/…` in one call: [`Proxy::target`], then [`Proxy::forward`].
    pub fn handle(&self, f: &Forward, req: &mut Request, rest: &str) -> Reply {
        match self.target(rest) {
            Ok(t) => self.forward(&t, f, req),
            Err(r) => r,
        }
    }

    fn client_auth(&self, t: &Target, req: &Request, f: &Forward) -> ClientAuth {
        if let (Some(v), false) = (header(req, "authorization"), f.auth_is_ours) {
            let v = v.trim();
            if let Some(b) = v.strip_prefix("Basic ") {
                use base64::Engine as _;
                if let Some((u, p)) = base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .and_then(|s| {
                        s.split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                    })
                {
                    let fp = lw_oci::Digest::sha256_of(v.as_bytes())
                        .encoded()
                        .to_string();
                    return ClientAuth::Creds(Credentials::basic(&u, &p), fp);
                }
            }
            if self.policy.forward_bearer && v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
                return ClientAuth::Bearer(format!("Bearer {}", v[7..].trim()));
            }
        }
        if !self.policy.server_credentials {
            return ClientAuth::Creds(Credentials::Anonymous, String::new());
        }
        if let Some((u, p)) = self.policy.creds.get(&t.host) {
            return ClientAuth::Creds(Credentials::basic(u, p), "server".into());
        }
        let c = crate::credentials::credentials_for(&t.host).unwrap_or(Credentials::Anonymous);
        ClientAuth::Creds(c, "server".into())
    }

    /// Get a token (or basic header) for the challenge in `www`.
    fn authorize(
        &self,
        t: &mut UreqTransport,
        www: &str,
        scope: &str,
        creds: &Credentials,
    ) -> Result<String, String> {
        let chs = parse_all([www]);
        if let Some(c) = chs.iter().find(|c| c.is_bearer()) {
            let realm = c.param("realm").ok_or("bearer challenge without realm")?;
            check_realm(realm)?;
            let scope = c
                .param("scope")
                .map(str::to_string)
                .unwrap_or_else(|| scope.to_string());
            let (status, bytes) = fetch_token(t, realm, c.param("service"), &scope, creds)?;
            if status != 200 {
                return Err(format!("token server answered {status}"));
            }
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            let tok = v
                .get("token")
                .or_else(|| v.get("access_token"))
                .and_then(|t| t.as_str())
                .ok_or("token server sent no token")?;
            return Ok(format!("Bearer {tok}"));
        }
        if chs.iter().any(|c| c.is_basic()) {
            return creds
                .basic_header()
                .ok_or_else(|| "upstream wants credentials".to_string());
        }
        Err(format!("unsupported challenge {www:?}"))
    }

    /// Forward one request to `t`.
    pub fn forward(&self, t: &Target, f: &Forward, req: &mut Request) -> Reply {
        let method = match *req.method() {
            m @ (Method::Get | Method::Head) => m,
            m @ (Method::Post | Method::Put | Method::Patch | Method::Delete)
                if !self.policy.read_only =>
            {
                m
            }
            m if self.policy.read_only => {
                return err(
                    405,
                    "UNSUPPORTED",
                    format!("the public proxy is read-only: {m} is refused"),
                )
            }
            _ => return err(405, "UNSUPPORTED", "method not allowed"),
        };
        if self.policy.read_only {
            if let Err(r) = readable_path(&t.path) {
                return r;
            }
        }
        let write = !matches!(method, Method::Get | Method::Head);
        if write && !f.may_write {
            return err(
                401,
                "UNAUTHORIZED",
                "pushing through the proxy needs serve's token (?token=)",
            );
        }
        let has_body = matches!(method, Method::Post | Method::Put | Method::Patch);
        let body_len = req.body_length().map(|n| n as u64).unwrap_or(0);
        if has_body && req.body_length().is_none() {
            return err(411, "BAD_REQUEST", "send a Content-Length");
        }
        if body_len > MAX_BLOB {
            return err(413, "SIZE_INVALID", "request body too large");
        }
        let q: Vec<String> = f
            .query
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        let mut url = format!("{}://{}{}", t.scheme, t.upstream, t.path);
        if !q.is_empty() {
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let scope = scope_for(&t.path, write).unwrap_or_default();
        let client = self.client_auth(t, req, f);
        let mut tr = self.transport.clone();
        let mut x = Exchange {
            t,
            f,
            method,
            url,
            scope,
            auth: None,
            has_body,
            body_len,
        };
        match &client {
            ClientAuth::Bearer(b) => x.auth = Some(b.clone()),
            ClientAuth::Creds(_, fp) => {
                let key = (t.host.clone(), x.scope.clone(), fp.clone());
                x.auth = self.tokens.lock().expect("token cache").get(&key).cloned();
            }
        }
        // A body cannot be replayed after a 401, so authorize first by probing with a bodiless request.
        if let (None, true, ClientAuth::Creds(creds, _)) = (&x.auth, has_body, &client) {
            let probe = RRequest {
                method: Method::Get,
                url: format!("{}://{}/v2/", t.scheme, t.upstream),
                headers: Vec::new(),
                body: lw_registry::http::Body::Empty,
            };
            if let Ok((head, _)) = tr.send(&probe, SendBody::Empty) {
                if head.status == 401 {
                    let www = head.header("www-authenticate").unwrap_or("").to_string();
                    match self.authorize(&mut tr, &www, &x.scope, creds) {
                        Ok(a) => x.auth = Some(a),
                        Err(e) => return err(502, "UPSTREAM", format!("upstream auth: {e}")),
                    }
                }
            }
        }
        self.exchange(&mut tr, &mut x, &client, req)
    }

    /// The request/response rounds: auth challenges answered, redirects followed, then the response relayed.
    fn exchange(
        &self,
        tr: &mut UreqTransport,
        x: &mut Exchange,
        client: &ClientAuth,
        req: &mut Request,
    ) -> Reply {
        let t = x.t;
        let mut headers: Vec<(String, String)> = FORWARD_HEADERS
            .iter()
            .filter_map(|h| header(req, h).map(|v| (h.to_string(), v.to_string())))
            .collect();
        let mut url_now = x.url.clone();
        let mut same_host = true;
        for attempt in 0..8 {
            let mut hs = headers.clone();
            if let (Some(a), true) = (&x.auth, same_host) {
                hs.push(("Authorization".into(), a.clone()));
            }
            let rq = RRequest {
                method: x.method,
                url: url_now.clone(),
                headers: hs,
                body: lw_registry::http::Body::Empty,
            };
            let sent = if x.has_body && attempt == 0 {
                tr.send(
                    &rq,
                    SendBody::Reader {
                        reader: req.as_reader(),
                        len: x.body_len,
                    },
                )
            } else {
                tr.send(&rq, SendBody::Empty)
            };
            let (head, body) = match sent {
                Ok(r) => r,
                Err(e) if e.message.contains("timed out") => {
                    return err(
                        504,
                        "UPSTREAM_TIMEOUT",
                        format!("upstream {}: {}", t.host, e.message),
                    )
                }
                Err(e) => {
                    return err(
                        502,
                        "UPSTREAM",
                        format!("upstream {}: {}", t.host, e.message),
                    )
                }
            };
            if head.status == 401 && same_host {
                let www = head.header("www-authenticate").unwrap_or("").to_string();
                let creds = match client {
                    ClientAuth::Creds(c, _) if !x.has_body && attempt < 2 => c,
                    _ => return self.refused(x, &www, "the upstream refused the credentials"),
                };
                match self.authorize(tr, &www, &x.scope, creds) {
                    Ok(a) => {
                        x.auth = Some(a);
                        continue;
                    }
                    Err(e) => return self.refused(x, &www, &e),
                }
            }
            if matches!(head.status, 301 | 302 | 303 | 307 | 308)
                && matches!(x.method, Method::Get | Method::Head)
            {
                let Some(loc) = head.header("location") else {
                    return err(502, "UPSTREAM", "redirect without Location");
                };
                let next = if loc.starts_with("http://") || loc.starts_with("https://") {
                    loc.to_string()
                } else {
                    let origin = lw_registry::http::origin(&url_now).unwrap_or_default();
                    format!("{origin}{loc}")
                };
                if let Err(e) = self.redirect_ok(t, &next) {
                    return err(502, "UPSTREAM", e);
                }
                // Credentials never follow a redirect to another host (blob stores use signed URLs).
                same_host = same_host
                    && lw_registry::http::origin(&next) == lw_registry::http::origin(&x.url);
                url_now = next;
                headers.retain(|(k, _)| k != "accept");
                continue;
            }
            if (200..400).contains(&head.status) {
                self.remember_token(x, client);
            }
            return relay(t, x.method, head, Box::new(body));
        }
        err(502, "UPSTREAM", "too many redirects or auth rounds")
    }

    /// Caches the authorization that a client's credentials got accepted with, for its next requests.
    fn remember_token(&self, x: &Exchange, client: &ClientAuth) {
        if let (Some(a), ClientAuth::Creds(_, fp)) = (&x.auth, client) {
            let mut tokens = self.tokens.lock().expect("token cache");
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
            tokens.insert((x.t.host.clone(), x.scope.clone(), fp.clone()), a.clone());
        }
    }

    /// A redirect the proxy will follow: https, or http between loopback hosts; never from a remote registry to
    /// this machine or a private network (the proxy must not become a way in).
    fn redirect_ok(&self, t: &Target, next: &str) -> Result<(), String> {
        let host = crate::http::url_host(next).unwrap_or_default();
        let from_loopback = is_loopback(&t.upstream);
        if next.starts_with("http://") && !(is_loopback(&host) && from_loopback) {
            return Err(format!("upstream redirected to plain http ({host})"));
        }
        if self.policy.read_only && !from_loopback && (is_loopback(&host) || private_ip(&host)) {
            return Err(format!("upstream redirected to a local address ({host})"));
        }
        Ok(())
    }

    /// Upstream refused: a 401 whose challenge, when the caller has a token endpoint, points back at it.
    fn refused(&self, x: &Exchange, www: &str, why: &str) -> Reply {
        let mut r = err(
            401,
            "UNAUTHORIZED",
            format!("upstream {} refused: {why}", x.t.host),
        );
        if let Some(base) = &x.f.realm_base {
            let chs = parse_all([www]);
            if let Some(c) = chs.iter().find(|c| c.is_bearer()) {
                let mut v = format!(
                    "Bearer realm=\"{}/token/{}\"",
                    base.trim_end_matches('/'),
                    x.t.host
                );
                if let Some(s) = c.param("service") {
                    v.push_str(&format!(",service=\"{}\"", s.replace('"', "")));
                }
                let scope = c.param("scope").unwrap_or(&x.scope);
                if !scope.is_empty() {
                    v.push_str(&format!(",scope=\"{}\"", scope.replace('"', "")));
                }
                r = r.header("WWW-Authenticate", v);
            }
        }
        r
    }

    /// The token endpoint clients reach through a rewritten realm (`/token/HOST?service=…&scope=…`): asks the
    /// upstream's own token server, with the client's Basic credentials when it sent some, and returns its token.
    /// Nothing is stored or logged; cookies from the token server are dropped.
    pub fn client_token(&self, host: &str, query: &[(String, String)], req: &Request) -> Reply {
        let t = match self.target(&format!("{host}/v2/")) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let mut tr = self.transport.clone();
        let ping = RRequest {
            method: Method::Get,
            url: format!("{}://{}/v2/", t.scheme, t.upstream),
            headers: Vec::new(),
            body: lw_registry::http::Body::Empty,
        };
        let www = match tr.send(&ping, SendBody::Empty) {
            Ok((head, _)) => head.header("www-authenticate").unwrap_or("").to_string(),
            Err(e) => {
                return err(
                    502,
                    "UPSTREAM",
                    format!("upstream {}: {}", t.host, e.message),
                )
            }
        };
        let chs = parse_all([www.as_str()]);
        let Some(realm) = chs
            .iter()
            .find(|c| c.is_bearer())
            .and_then(|c| c.param("realm"))
        else {
            return err(404, "NOT_FOUND", format!("{} uses no token server", t.host));
        };
        if let Err(e) = check_realm(realm) {
            return err(502, "UPSTREAM", e);
        }
        let f = Forward {
            query,
            may_write: false,
            auth_is_ours: false,
            realm_base: None,
        };
        let creds = match self.client_auth(&t, req, &f) {
            ClientAuth::Creds(c, _) => c,
            ClientAuth::Bearer(_) => Credentials::Anonymous,
        };
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let scopes: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str())
            .collect();
        match fetch_token(&mut tr, realm, q("service"), &scopes.join(" "), &creds) {
            Ok((status, body)) => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if status != 200 {
                    return err(
                        status.clamp(400, 599),
                        "UNAUTHORIZED",
                        "the token server refused",
                    );
                }
                let keep = ["token", "access_token", "expires_in", "issued_at"];
                let out: serde_json::Map<String, serde_json::Value> = keep
                    .iter()
                    .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
                    .collect();
                Reply::json(200, &serde_json::Value::Object(out))
                    .header("Cache-Control", "no-store")
            }
            Err(e) => err(502, "UPSTREAM", format!("token server: {e}")),
        }
    }
}

/// One forwarded request's state.
struct Exchange<'a> {
    t: &'a Target,
    f: &'a Forward<'a>,
    method: Method,
    url: String,
    scope: String,
    auth: Option<String>,
    has_body: bool,
    body_len: u64,
}

/// A token realm the proxy may call: https, or http on loopback.
fn check_realm(realm: &str) -> Result<(), String> {
    let loopback_http = realm.starts_with("http://")
        && is_loopback(&crate::http::url_host(realm).unwrap_or_default());
    if !realm.starts_with("https://") && !loopback_http {
        return Err(format!("token realm {realm} is not https"));
    }
    Ok(())
}

/// GET a token from `realm`; (status, body up to 1 MiB).
fn fetch_token(
    t: &mut UreqTransport,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    creds: &Credentials,
) -> Result<(u16, Vec<u8>), String> {
    let mut url = format!("{realm}{}", if realm.contains('?') { "&" } else { "?" });
    if let Some(s) = service {
        url.push_str(&format!("service={}&", percent_encode(s)));
    }
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        url.push_str(&format!("scope={}&", percent_encode(s)));
    }
    let url = url.trim_end_matches(['&', '?']).to_string();
    let mut headers = Vec::new();
    if let Some(b) = creds.basic_header() {
        headers.push(("Authorization".to_string(), b));
    }
    let rq = RRequest {
        method: Method::Get,
        url,
        headers,
        body: lw_registry::http::Body::Empty,
    };
    let (head, mut body) = t.send(&rq, SendBody::Empty).map_err(|e| e.message)?;
    let bytes = super::reply::read_small(&mut body, 1 << 20).map_err(|e| e.to_string())?;
    Ok((head.status, bytes))
}

/// The upstream response as the client gets it: known headers passed, `Location`/`Link` pointed back through the
/// proxy (everything else, `Set-Cookie` included, dropped), the body streamed.
fn relay(
    t: &Target,
    method: Method,
    head: lw_registry::http::ResponseHead,
    body: Box<dyn std::io::Read + Send>,
) -> Reply {
    let (scheme, host) = (t.scheme, t.host.as_str());
    let mut reply = Reply::new(head.status);
    for (k, v) in &head.headers {
        let kl = k.to_ascii_lowercase();
        if PASS_HEADERS.contains(&kl.as_str()) {
            reply = reply.header(k, v.clone());
        } else if kl == "location" {
            let loc = match t.url_form {
                // As if the registry had answered directly: the client puts its prefix back on.
                Some(_) if v.starts_with('/') => format!("{scheme}://{host}{v}"),
                Some(_) => v.clone(),
                None => rewrite(host, v),
            };
            reply = reply.header("Location", loc);
        } else if kl == "link" {
            let link = match t.url_form {
                Some(_) => v.replace("</v2/", &format!("<{scheme}://{host}/v2/")),
                None => v.replace("</v2/", &format!("</proxy/{host}/v2/")),
            };
            reply = reply.header("Link", link);
        }
    }
    let len = head
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let len = if method == Method::Head {
        Some(len.unwrap_or(0))
    } else {
        len
    };
    reply.stream(body, len)
}

/// Point an upstream `Location` back through the proxy.
fn rewrite(host: &str, loc: &str) -> String {
    if loc.starts_with("/v2/") {
        return format!("/proxy/{host}{loc}");
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = loc.strip_prefix(scheme) {
            if let Some((h, p)) = rest.split_once('/') {
                if p.starts_with("v2/") {
                    return format!("/proxy/{}/{p}", h.to_ascii_lowercase());
                }
            }
        }
    }
    loc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_rewrites() {
        assert_eq!(
            scope_for("/v2/a/b/manifests/x", false).as_deref(),
            Some("repository:a/b:pull")
        );
        assert_eq!(
            scope_for("/v2/a/blobs/uploads/", true).as_deref(),
            Some("repository:a:pull,push")
        );
        assert_eq!(scope_for("/v2/", false), None);
        assert_eq!(
            rewrite("r:5000", "/v2/a/blobs/uploads/1?x=y"),
            "/proxy/r:5000/v2/a/blobs/uploads/1?x=y"
        );
        assert_eq!(
            rewrite("r", "https://r/v2/a/blobs/uploads/1"),
            "/proxy/r/v2/a/blobs/uploads/1"
        );
    }
}
