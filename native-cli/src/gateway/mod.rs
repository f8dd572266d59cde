//! `layerwright proxy`: the public CORS gateway for OCI registries. serve's proxy ([`crate::serve::proxy`]) with
//! the public profile around it: an allow-list of registries, the read side of the API only, CORS for configured
//! origins, a token endpoint for rewritten realms, a disk cache of anonymous pulls by digest, per-client rate
//! limits, size limits, `/healthz` and `/metrics`. It keeps no state a second instance would need.

pub mod cache;
pub mod limits;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use lw_oci::Digest;

use crate::serve::http::{self, Method, Request, Response};
use crate::serve::proxy::{err, Forward, Policy, Proxy, Target};
use crate::serve::reply::{header, parse_range, split_url, Reply};
use cache::{DiskCache, Kind};
use limits::{Counted, Metrics, RateLimiter};

/// Response headers a page may read: the registry protocol's, and Retry-After for 429s.
pub const EXPOSED_HEADERS: &str = "Docker-Content-Digest, WWW-Authenticate, Link, Content-Range, Range, \
Content-Length, Content-Type, Location, Accept-Ranges, ETag, OCI-Subject, Docker-Distribution-API-Version, Retry-After";
/// Request headers a preflight may ask for.
const ALLOWED_HEADERS: &str = "Authorization, Accept, Range, If-None-Match";
/// Longest request target.
const MAX_URL: usize = 4096;
/// What by-digest responses say to browsers and CDNs: the bytes behind a digest never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub addr: SocketAddr,
    /// Origins that get CORS headers (`*`: any).
    pub cors_origins: Vec<String>,
    /// Registry hosts (`*.domain` patterns too); empty: [`crate::serve::proxy::PUBLIC_UPSTREAMS`].
    pub allow_upstream: Vec<String>,
    /// Where anonymous pulls by digest are cached; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    pub cache_max: u64,
    /// Requests a second per client (0: no limit), and the burst allowed.
    pub rate: f64,
    pub burst: f64,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a CDN or load balancer).
    pub trust_forwarded_for: bool,
    pub upstream_timeout: Duration,
    /// The proxy's public base URL, for rewritten token realms; `None`: from `Host` (and
    /// `X-Forwarded-Proto`).
    pub public_url: Option<String>,
    /// Requests handled at once.
    pub threads: usize,
}

impl GatewayConfig {
    pub fn new(addr: SocketAddr) -> GatewayConfig {
        GatewayConfig {
            addr,
            cors_origins: Vec::new(),
            allow_upstream: Vec::new(),
            cache_dir: None,
            cache_max: 10 << 30,
            rate: 20.0,
            burst: 200.0,
            trust_forwarded_for: false,
            upstream_timeout: Duration::from_secs(30),
            public_url: None,
            threads: 64,
        }
    }
}

struct State {
    cfg: GatewayConfig,
    proxy: Proxy,
    cache: Option<Arc<DiskCache>>,
    limiter: RateLimiter,
    metrics: Arc<Metrics>,
}

/// The gateway's request handling without a socket.
#[derive(Clone)]
pub struct Gateway {
    st: Arc<State>,
}

/// A running gateway.
pub struct GatewayServer {
    http: http::Server,
}

impl GatewayServer {
    pub fn start(cfg: GatewayConfig) -> Result<GatewayServer> {
        let threads = cfg.threads.max(2);
        let addr = cfg.addr;
        let gw = Gateway::open(cfg)?;
        let http =
            http::Server::start(addr, threads, Arc::new(move |r: &mut Request| gw.handle(r)))
                .map_err(|e| anyhow!("cannot listen on {addr}: {e}"))?;
        Ok(GatewayServer { http })
    }
    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }
    pub fn wait(self) {
        self.http.wait()
    }
    pub fn shutdown(self) {
        self.http.shutdown()
    }
}

/// A by-digest manifest or blob path: its kind and digest.
fn by_digest(path: &str) -> Option<(Kind, Digest)> {
    let (kind, d) = if let Some((_, d)) = path.rsplit_once("/manifests/") {
        (Kind::Manifest, d)
    } else {
        (Kind::Blob, path.rsplit_once("/blobs/")?.1)
    };
    Digest::parse(d).ok().map(|d| (kind, d))
}

impl Gateway {
    pub fn open(cfg: GatewayConfig) -> Result<Gateway> {
        let cache = match &cfg.cache_dir {
            Some(d) => Some(DiskCache::open(d, cfg.cache_max)?),
            None => None,
        };
        let policy = Policy::public(&cfg.allow_upstream, cfg.upstream_timeout);
        Ok(Gateway {
            st: Arc::new(State {
                proxy: Proxy::new(policy),
                limiter: RateLimiter::new(cfg.rate, cfg.burst),
                cache,
                metrics: Arc::new(Metrics::default()),
                cfg,
            }),
        })
    }

    fn client_ip(&self, req: &Request) -> IpAddr {
        let peer = req
            .peer()
            .map(|p| p.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        if self.st.cfg.trust_forwarded_for {
            if let Some(ip) = header(req, "x-forwarded-for")
                .and_then(|v| v.rsplit(',').next())
                .and_then(|s| s.trim().parse().ok())
            {
                return ip;
            }
        }
        peer
    }

    fn origin_allowed(&self, o: &str) -> bool {
        self.st.cfg.cors_origins.iter().any(|a| a == "*" || a == o)
    }

    /// Answer one request; the flag says the connection should end after it.
    pub fn handle(&self, req: &mut Request) -> (Response, bool) {
        let st = &*self.st;
        let started = Instant::now();
        st.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let ip = self.client_ip(req);
        let (path, query) = split_url(req.url());
        let method = *req.method();
        let origin = header(req, "origin").map(str::to_string);
        let cors = origin
            .as_deref()
            .filter(|o| self.origin_allowed(o))
            .map(str::to_string);
        let mut reply = self.route(req, &path, &query, ip, cors.is_some());
        if let Some(o) = &cors {
            reply = reply
                .header("Access-Control-Allow-Origin", o.clone())
                .header("Access-Control-Expose-Headers", EXPOSED_HEADERS);
        }
        // Always: a CDN must not give one origin's answer (or a no-Origin answer) to another.
        reply = reply
            .header("Vary", "Origin")
            .header("X-Content-Type-Options", "nosniff");
        if !reply.has_header("Cache-Control") {
            reply = reply.header("Cache-Control", "no-store");
        }
        st.metrics.count_status(reply.status);
        if matches!(reply.status, 502 | 504) {
            st.metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
        }
        // Never the query (it may hold scopes of private repositories) nor any header.
        eprintln!(
            "{ip} {method} {} {} {}ms",
            path.chars().take(300).collect::<String>(),
            reply.status,
            started.elapsed().as_millis()
        );
        st.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let close = matches!(reply.status, 413 | 414 | 429);
        let mut resp = reply.into_response();
        resp.body = Box::new(Counted {
            inner: resp.body,
            metrics: st.metrics.clone(),
        });
        (resp, close)
    }

    fn route(
        &self,
        req: &mut Request,
        path: &str,
        query: &[(String, String)],
        ip: IpAddr,
        cors_ok: bool,
    ) -> Reply {
        let st = &*self.st;
        match path {
            "/healthz" => return Reply::json(200, &serde_json::json!({"ok": true})),
            "/metrics" => {
                let c = st.cache.as_ref().map(|c| {
                    let (b, n) = c.usage();
                    (b, n, c.max())
                });
                return Reply::new(200).bytes("text/plain; version=0.0.4", st.metrics.render(c));
            }
            _ => {}
        }
        if req.url().len() > MAX_URL {
            return err(414, "BAD_REQUEST", "request target too long");
        }
        if let Err(secs) = st.limiter.take(ip, Instant::now()) {
            st.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return err(
                429,
                "TOOMANYREQUESTS",
                format!("rate limit: try again in {secs} s"),
            )
            .header("Retry-After", secs.to_string());
        }
        if *req.method() == Method::Options {
            return if cors_ok {
                preflight(req)
            } else {
                err(403, "DENIED", "origin not allowed (--cors-origin)")
            };
        }
        if !matches!(*req.method(), Method::Get | Method::Head) {
            return err(
                405,
                "UNSUPPORTED",
                format!("the public proxy is read-only: {} is refused", req.method()),
            );
        }
        if req.body_length() != Some(0) {
            return err(413, "SIZE_INVALID", "requests to the proxy carry no body");
        }
        if path == "/" {
            return Reply::json(
                200,
                &serde_json::json!({"service": "layerwright proxy", "version": env!("CARGO_PKG_VERSION"),
                    "usage": "/proxy/HOST/v2/NAME/manifests/REF", "upstreams": st.proxy.policy.allow}),
            );
        }
        if let Some(host) = path.strip_prefix("/token/") {
            if !matches!(*req.method(), Method::Get) {
                return err(405, "UNSUPPORTED", "GET the token endpoint");
            }
            return st.proxy.client_token(host, query, req);
        }
        let Some(rest) = path.strip_prefix("/proxy/") else {
            return err(404, "NOT_FOUND", "use /proxy/HOST/v2/...");
        };
        // A client with a proxy prefix puts it before the token realm too: `/proxy/SCHEME://US/token/HOST`.
        if let Some(host) = rest
            .split_once("://")
            .and_then(|(_, r)| r.split_once('/'))
            .and_then(|(_, p)| p.strip_prefix("token/"))
            .filter(|_| matches!(*req.method(), Method::Get))
        {
            return st.proxy.client_token(host, query, req);
        }
        let t = match st.proxy.target(rest) {
            Ok(t) => t,
            Err(r) => return r,
        };
        self.pull(req, &t, query)
    }

    /// A request for the registry behind `t`: from the cache when it can be, else forwarded (and cached).
    fn pull(&self, req: &mut Request, t: &Target, query: &[(String, String)]) -> Reply {
        let st = &*self.st;
        let anonymous = header(req, "authorization").is_none();
        let read = matches!(*req.method(), Method::Get | Method::Head);
        let digest = by_digest(&t.path).filter(|_| read && t.path.starts_with("/v2/"));
        if let (Some(c), Some((kind, d)), true) = (&st.cache, &digest, anonymous) {
            if let Some((file, size)) = c.get(*kind, d) {
                st.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                return from_cache(req, *kind, d, file, size);
            }
            st.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        }
        let f = Forward {
            query,
            may_write: false,
            auth_is_ours: false,
            realm_base: Some(self.base_url(req)),
        };
        let mut reply = st.proxy.forward(t, &f, req);
        let ok = matches!(reply.status, 200 | 206);
        if let (Some(c), Some((kind, d)), true, 200, Method::Get) =
            (&st.cache, &digest, anonymous, reply.status, *req.method())
        {
            if header(req, "range").is_none() {
                if let crate::serve::reply::Body::Stream(body, len) = reply.body {
                    reply.body =
                        crate::serve::reply::Body::Stream(c.fill(*kind, d, len, body), len);
                }
            }
        }
        let cc = match (ok, &digest, anonymous) {
            (true, Some(_), true) => IMMUTABLE,
            (true, _, false) => "private, no-store",
            (true, None, true) => "public, max-age=60",
            _ => "no-store",
        };
        reply.header("Cache-Control", cc)
    }

    /// Where clients reach this proxy: `--public-url`, else the request's Host (https behind a proxy that says so).
    fn base_url(&self, req: &Request) -> String {
        if let Some(u) = &self.st.cfg.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = header(req, "host").unwrap_or("localhost");
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(*c))
            .collect();
        let proto = match header(req, "x-forwarded-proto") {
            Some(p) if p.trim().eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        format!("{proto}://{host}")
    }
}

/// A cached manifest or blob: the whole of it, a range, or (HEAD) its length.
fn from_cache(req: &Request, kind: Kind, d: &Digest, mut file: std::fs::File, size: u64) -> Reply {
    use std::io::{Seek, SeekFrom};
    let ctype = match kind {
        Kind::Blob => "application/octet-stream".to_string(),
        Kind::Manifest => manifest_type(&mut file, size),
    };
    let r = Reply::new(200)
        .header("Content-Type", ctype)
        .header("Docker-Content-Digest", d.as_str())
        .header("Accept-Ranges", "bytes")
        .header("Cache-Control", IMMUTABLE)
        .header("X-Cache", "HIT");
    if *req.method() == Method::Head {
        return r.stream(Box::new(std::io::empty()), Some(size));
    }
    match parse_range(header(req, "range"), size) {
        None => r.stream(Box::new(file), Some(size)),
        Some(Err(())) => err(416, "RANGE_INVALID", "range not satisfiable")
            .header("Content-Range", format!("bytes */{size}")),
        Some(Ok((a, b))) => {
            if file.seek(SeekFrom::Start(a)).is_err() {
                return err(500, "UNKNOWN", "reading the cache");
            }
            let mut r = r.stream(Box::new(file.take(b - a + 1)), Some(b - a + 1));
            r.status = 206;
            r.header("Content-Range", format!("bytes {a}-{b}/{size}"))
        }
    }
}

/// A cached manifest's media type, from its `mediaType` field (or its shape), rewinding the file after.
fn manifest_type(file: &mut std::fs::File, size: u64) -> String {
    use std::io::{Seek, SeekFrom};
    let mut buf = Vec::new();
    let _ = (&mut *file).take(size.min(4 << 20)).read_to_end(&mut buf);
    let _ = file.seek(SeekFrom::Start(0));
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if v.get("manifests").is_some() => lw_oci::media::OCI_INDEX.to_string(),
        None => lw_oci::media::OCI_MANIFEST.to_string(),
    }
}

fn preflight(req: &Request) -> Reply {
    let asked_method = header(req, "access-control-request-method").unwrap_or("GET");
    if !matches!(asked_method.trim(), "GET" | "HEAD") {
        return err(
            405,
            "UNSUPPORTED",
            format!("the public proxy is read-only: {asked_method} is refused"),
        );
    }
    let allowed: Vec<String> = ALLOWED_HEADERS
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let asked = header(req, "access-control-request-headers").unwrap_or("");
    if let Some(bad) = asked
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .find(|h| !h.is_empty() && !allowed.contains(h))
    {
        return err(
            403,
            "DENIED",
            format!("request header {bad} is not allowed"),
        );
    }
    Reply::new(204)
        .header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        .header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        .header("Access-Control-Max-Age", "86400")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_paths() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(
            by_digest(&format!("/v2/a/b/blobs/{d}")),
            Some((Kind::Blob, d.clone()))
        );
        assert_eq!(
            by_digest(&format!("/v2/a/manifests/{d}")),
            Some((Kind::Manifest, d))
        );
        assert_eq!(by_digest("/v2/a/manifests/latest"), None);
        assert_eq!(by_digest("/v2/a/tags/list"), None);
    }
}
