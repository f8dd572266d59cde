//! The registry proxy at `/proxy/HOST/v2/…`: forwards to the upstream registry, answers its token auth
//! server-side (the browser never sees the token host), follows blob redirects, streams bodies both ways, and
//! rewrites `Location`/`Link` back through the proxy. Plain HTTP only to loopback upstreams.

use std::collections::HashMap;
use std::sync::Mutex;

use super::http::{Method, Request};
use lw_registry::challenge::parse_all;
use lw_registry::{Credentials, Method as RMethod, Request as RRequest, SendBody, Transport};

use super::reply::{header, percent_encode, presented_token, same_secret, Reply};
use super::{Config, Ctx, MAX_BLOB};
use crate::http::{is_loopback, HttpOptions, UreqTransport};

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
/// Request headers passed on to upstream.
const FORWARD_HEADERS: &[&str] = &[
    "accept",
    "range",
    "content-type",
    "content-range",
    "if-none-match",
];

pub struct Proxy {
    allow: Vec<String>,
    creds: HashMap<String, (String, String)>,
    /// (host, scope) → Authorization value that worked.
    tokens: Mutex<HashMap<(String, String), String>>,
}

fn scope_for(path: &str, write: bool) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let name = ["/manifests/", "/blobs/", "/tags/list", "/referrers/"]
        .iter()
        .filter_map(|s| rest.find(s).map(|i| &rest[..i]))
        .min_by_key(|n| n.len())?;
    Some(format!(
        "repository:{name}:{}",
        if write { "pull,push" } else { "pull" }
    ))
}

impl Proxy {
    pub fn new(cfg: &Config) -> Proxy {
        Proxy {
            allow: cfg
                .allow_upstream
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            creds: cfg
                .proxy_credentials
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn credentials(&self, host: &str, req: &Request, ctx: &Ctx) -> Credentials {
        // Basic credentials in the request are for upstream unless they carry serve's own token.
        if let Some(v) = header(req, "authorization") {
            if let Some(b) = v.trim().strip_prefix("Basic ") {
                let is_ours = presented_token(req, &[])
                    .map(|t| same_secret(&t, &ctx.st.token))
                    .unwrap_or(false);
                if !is_ours {
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
                        return Credentials::basic(&u, &p);
                    }
                }
            }
        }
        if let Some((u, p)) = self.creds.get(&host.to_ascii_lowercase()) {
            return Credentials::basic(u, p);
        }
        crate::credentials::credentials_for(host).unwrap_or(Credentials::Anonymous)
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
            let loopback_http = realm.starts_with("http://")
                && is_loopback(&crate::http::url_host(realm).unwrap_or_default());
            if !realm.starts_with("https://") && !loopback_http {
                return Err(format!("token realm {realm} is not https"));
            }
            let mut url = format!("{realm}{}", if realm.contains('?') { "&" } else { "?" });
            if let Some(s) = c.param("service") {
                url.push_str(&format!("service={}&", percent_encode(s)));
            }
            let scope = c
                .param("scope")
                .map(str::to_string)
                .unwrap_or_else(|| scope.to_string());
            if !scope.is_empty() {
                url.push_str(&format!("scope={}", percent_encode(&scope)));
            }
            let mut headers = Vec::new();
            if let Some(b) = creds.basic_header() {
                headers.push(("Authorization".to_string(), b));
            }
            let rq = RRequest {
                method: RMethod::Get,
                url,
                headers,
                body: lw_registry::http::Body::Empty,
            };
            let (head, mut body) = t.send(&rq, SendBody::Empty).map_err(|e| e.message)?;
            let bytes = super::reply::read_small(&mut body, 1 << 20).map_err(|e| e.to_string())?;
            if head.status != 200 {
                return Err(format!("token server answered {}", head.status));
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

    pub fn handle(&self, ctx: &Ctx, req: &mut Request, rest: &str) -> Reply {
        // Two forms: `/proxy/HOST/v2/…` (the proxy as a registry base URL), and `/proxy/SCHEME://HOST/v2/…` (a
        // prefix before the registry's whole URL, as generic CORS proxies take it and the browser client sends).
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
                return Reply::text(400, "use /proxy/HOST/v2/... or /proxy/https://HOST/v2/...")
            }
        };
        if !(path == "/v2/" || path == "/v2" || path.starts_with("/v2/")) {
            return Reply::text(400, "only /v2/ API paths are proxied");
        }
        if host.is_empty() || host.contains(['@', '?', '#']) {
            return Reply::text(400, "bad upstream host");
        }
        if !self.allow.is_empty() && !self.allow.contains(&host) {
            return Reply::text(403, format!("upstream {host} is not in --allow-upstream"));
        }
        // Plain HTTP only to loopback registries (the tests' and a local registry's), whatever the URL asks.
        let scheme = match url_form {
            Some("http") if is_loopback(&host) => "http",
            Some("http") => {
                return Reply::text(
                    400,
                    "the proxy reaches non-loopback registries over https only",
                )
            }
            _ if is_loopback(&host) && url_form.is_none() => "http",
            _ => "https",
        };
        let q: Vec<String> = ctx
            .query
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        let mut url = format!("{scheme}://{host}{path}");
        if !q.is_empty() {
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let method = match *req.method() {
            Method::Get => RMethod::Get,
            Method::Head => RMethod::Head,
            Method::Post => RMethod::Post,
            Method::Put => RMethod::Put,
            Method::Patch => RMethod::Patch,
            Method::Delete => RMethod::Delete,
            _ => return Reply::text(405, "method not allowed"),
        };
        let write = !matches!(method, RMethod::Get | RMethod::Head);
        if write && !ctx.authed {
            return Reply::text(
                401,
                "pushing through the proxy needs serve's token (?token=)",
            );
        }
        let has_body = matches!(method, RMethod::Post | RMethod::Put | RMethod::Patch);
        let body_len = req.body_length().map(|n| n as u64).unwrap_or(0);
        if has_body && body_len > 0 && req.body_length().is_none() {
            return Reply::text(411, "send a Content-Length");
        }
        if body_len > MAX_BLOB {
            return Reply::text(413, "request body too large");
        }
        let scope = scope_for(&path, write).unwrap_or_default();
        let creds = self.credentials(&host, req, ctx);
        let mut t = UreqTransport::new(&HttpOptions::default());
        let key = (host.clone(), scope.clone());
        let mut headers: Vec<(String, String)> = FORWARD_HEADERS
            .iter()
            .filter_map(|h| header(req, h).map(|v| (h.to_string(), v.to_string())))
            .collect();
        let cached = self.tokens.lock().expect("token cache").get(&key).cloned();
        // A body cannot be replayed after a 401, so authorize first by probing with a bodiless request.
        let mut auth = cached;
        if auth.is_none() && has_body {
            let probe = RRequest {
                method: RMethod::Get,
                url: format!("{scheme}://{host}/v2/"),
                headers: Vec::new(),
                body: lw_registry::http::Body::Empty,
            };
            if let Ok((head, _)) = t.send(&probe, SendBody::Empty) {
                if head.status == 401 {
                    let www = head.header("www-authenticate").unwrap_or("").to_string();
                    match self.authorize(&mut t, &www, &scope, &creds) {
                        Ok(a) => auth = Some(a),
                        Err(e) => return Reply::text(502, format!("upstream auth: {e}")),
                    }
                }
            }
        }
        let mut url_now = url.clone();
        let mut same_host = true;
        for attempt in 0..8 {
            let mut hs = headers.clone();
            if let (Some(a), true) = (&auth, same_host) {
                hs.push(("Authorization".into(), a.clone()));
            }
            let rq = RRequest {
                method,
                url: url_now.clone(),
                headers: hs,
                body: lw_registry::http::Body::Empty,
            };
            let sent = if has_body && attempt == 0 {
                t.send(
                    &rq,
                    SendBody::Reader {
                        reader: req.as_reader(),
                        len: body_len,
                    },
                )
            } else {
                t.send(&rq, SendBody::Empty)
            };
            let (head, body) = match sent {
                Ok(x) => x,
                Err(e) => return Reply::text(502, format!("upstream {host}: {}", e.message)),
            };
            if head.status == 401 && !has_body && attempt < 2 && same_host {
                let www = head.header("www-authenticate").unwrap_or("").to_string();
                match self.authorize(&mut t, &www, &scope, &creds) {
                    Ok(a) => {
                        auth = Some(a);
                        continue;
                    }
                    Err(e) => {
                        return Reply::oci_error(
                            401,
                            "UNAUTHORIZED",
                            format!("upstream {host} refused: {e}"),
                        )
                    }
                }
            }
            if matches!(head.status, 301 | 302 | 303 | 307 | 308)
                && matches!(method, RMethod::Get | RMethod::Head)
            {
                let Some(loc) = head.header("location") else {
                    return Reply::text(502, "redirect without Location");
                };
                let next = if loc.starts_with("http://") || loc.starts_with("https://") {
                    loc.to_string()
                } else {
                    let origin = lw_registry::http::origin(&url_now).unwrap_or_default();
                    format!("{origin}{loc}")
                };
                // Credentials never follow a redirect to another host (blob stores use signed URLs).
                same_host = same_host
                    && lw_registry::http::origin(&next) == lw_registry::http::origin(&url);
                url_now = next;
                headers.retain(|(k, _)| k != "accept");
                continue;
            }
            if let Some(a) = &auth {
                if (200..400).contains(&head.status) {
                    self.tokens
                        .lock()
                        .expect("token cache")
                        .insert(key.clone(), a.clone());
                }
            }
            let mut reply = Reply::new(head.status);
            for (k, v) in &head.headers {
                let kl = k.to_ascii_lowercase();
                if PASS_HEADERS.contains(&kl.as_str()) {
                    reply = reply.header(k, v.clone());
                } else if kl == "location" {
                    let loc = match url_form {
                        // As if the registry had answered directly: the client puts its prefix back on.
                        Some(_) if v.starts_with('/') => format!("{scheme}://{host}{v}"),
                        Some(_) => v.clone(),
                        None => rewrite(&host, v),
                    };
                    reply = reply.header("Location", loc);
                } else if kl == "link" {
                    let link = match url_form {
                        Some(_) => v.replace("</v2/", &format!("<{scheme}://{host}/v2/")),
                        None => v.replace("</v2/", &format!("</proxy/{host}/v2/")),
                    };
                    reply = reply.header("Link", link);
                }
            }
            let len = head
                .header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            let len = if method == RMethod::Head {
                Some(len.unwrap_or(0))
            } else {
                len
            };
            return reply.stream(Box::new(body), len);
        }
        Reply::text(502, "too many redirects or auth rounds")
    }
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
