//! `layerwright serve`: the playground's local HTTP server — the built site, an OCI registry over the store at
//! `/v2/`, a CORS proxy to upstream registries at `/proxy/HOST/v2/…`, the RUN backend at `/api/run`, git over SSH
//! for the tab at `/api/git` and the container API at `/api/containers` — guarded by a per-start token, Host/Origin checks against DNS rebinding,
//! and request size limits.

pub mod containers_api;
pub mod git_api;
pub mod http;
pub mod mem_store;
pub mod proxy;
pub mod proxy_policy;
pub mod registry;
pub mod reply;
pub mod repos;
pub mod run_api;
pub mod site;
pub mod storage;
pub mod upload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _, Result};
use http::{Method, Request};

use crate::store::Store;
use reply::{header, presented_token, same_secret, split_url, Reply};

/// Response headers a browser script may read (everything the registry protocol needs).
pub const EXPOSED_HEADERS: &str =
    "Location, Docker-Content-Digest, WWW-Authenticate, Content-Range, Range, Link, \
Docker-Upload-UUID, Content-Length, Content-Type, OCI-Subject, OCI-Tag, Docker-Distribution-API-Version";
/// Request headers a preflight may ask for.
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, Accept, Range, Content-Range, Docker-Content-Digest, If-None-Match";
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Largest request body for JSON APIs.
pub const MAX_JSON: u64 = 1 << 20;
/// Largest single uploaded blob.
pub const MAX_BLOB: u64 = 16 << 30;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub root: PathBuf,
    /// Serve the site from this directory instead of the copy embedded at build time.
    pub www: Option<PathBuf>,
    /// Origins allowed besides the served one.
    pub cors_origins: Vec<String>,
    /// Upstream registry hosts the proxy may reach; empty = any.
    pub allow_upstream: Vec<String>,
    /// The token; `None` makes a random one.
    pub token: Option<String>,
    /// Upstream credentials for the proxy: registry host → (user, password). Docker's config.json is the fallback.
    pub proxy_credentials: BTreeMap<String, (String, String)>,
    pub threads: usize,
    /// How long an upload, or a pushed blob no manifest names yet, is kept without use ([`upload::UPLOAD_IDLE`]).
    pub upload_idle: std::time::Duration,
    /// Where pushed repositories go in the store ([`repos::Namespace`]): `localhost` (`NAME` →
    /// `localhost/NAME`), or `docker.io` for docker's normalisation.
    pub repo_prefix: String,
    /// The `layerwright` binary whose hidden `container-monitor` owns containers started through the API;
    /// `None`: this process's executable.
    pub exe: Option<PathBuf>,
    /// The SSH agents (`serve --ssh`) a RUN step from the tab may mount: id → the agent's socket.
    pub ssh: BTreeMap<String, PathBuf>,
}

impl Config {
    pub fn new(addr: SocketAddr, root: PathBuf) -> Config {
        Config {
            addr,
            root,
            www: None,
            cors_origins: Vec::new(),
            allow_upstream: Vec::new(),
            token: None,
            proxy_credentials: BTreeMap::new(),
            threads: 32,
            upload_idle: upload::UPLOAD_IDLE,
            repo_prefix: "localhost".to_string(),
            exe: None,
            ssh: BTreeMap::new(),
        }
    }
}

/// Shared state of a running server.
pub struct State {
    pub cfg: Config,
    pub token: String,
    /// The bearer token `/api/token` gives anonymous clients on a loopback listener: reads only.
    pub pull_token: String,
    /// What the registry at `/v2/` stores into: the store under `--root`, or memory.
    pub storage: Arc<dyn storage::RegistryStorage>,
    /// The store under `--root`, for the RUN backend; `None` when the registry runs in memory.
    pub store: Option<Store>,
    pub addr: SocketAddr,
    pub uploads: upload::Uploads,
    pub ns: repos::Namespace,
    pub proxy: proxy::Proxy,
    pub site: site::Site,
    /// One RUN at a time: runc steps are heavy and share the snapshot cache.
    pub run_lock: Arc<Mutex<()>>,
}

/// A running server.
pub struct Server {
    state: Arc<State>,
    http: http::Server,
}

/// 128 random bits from the kernel (getrandom(2): no file, so an in-memory service opens none), as hex.
pub fn random_token() -> Result<String> {
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `b`.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        match n {
            n if n > 0 => got += n as usize,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return Err(std::io::Error::last_os_error()).context("getrandom"),
        }
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// serve's request handling without a socket: requests in, responses out. The server feeds it from hyper; tests
/// and fuzzing drive it in memory (the registry client's transport can call it directly).
#[derive(Clone)]
pub struct Service {
    state: Arc<State>,
}

impl Service {
    /// Open the store and set everything up for a server that answers at `addr` (the Host and Origin checks
    /// compare with it).
    pub fn open(cfg: Config, addr: SocketAddr) -> Result<Service> {
        let store = Store::open(&cfg.root)?;
        let storage = Arc::new(storage::DiskStorage::new(store.clone()));
        Service::build(cfg, addr, storage, Some(store))
    }

    /// A service whose registry stores into `storage` (say a [`mem_store::MemStorage`]): `cfg.root` is never
    /// touched, and `/api/run`, which needs the on-disk store, answers 503.
    pub fn with_storage(
        cfg: Config,
        addr: SocketAddr,
        storage: Arc<dyn storage::RegistryStorage>,
    ) -> Result<Service> {
        Service::build(cfg, addr, storage, None)
    }

    fn build(
        cfg: Config,
        addr: SocketAddr,
        storage: Arc<dyn storage::RegistryStorage>,
        store: Option<Store>,
    ) -> Result<Service> {
        let token = match &cfg.token {
            Some(t) if !t.is_empty() => t.clone(),
            _ => random_token()?,
        };
        let site = site::Site::new(cfg.www.clone())?;
        let proxy = proxy::Proxy::new(proxy::Policy::serve(&cfg));
        let uploads = upload::Uploads::new(storage.clone(), cfg.upload_idle);
        let ns =
            repos::Namespace::new(&cfg.repo_prefix).map_err(|e| anyhow!("--repo-prefix: {e}"))?;
        Ok(Service {
            state: Arc::new(State {
                cfg,
                token,
                pull_token: random_token()?,
                storage,
                store,
                addr,
                uploads,
                ns,
                proxy,
                site,
                run_lock: Arc::new(Mutex::new(())),
            }),
        })
    }

    /// Answer one request; the flag says the connection should end after it.
    pub fn handle(&self, req: &mut Request) -> (http::Response, bool) {
        handle(&self.state, req)
    }

    pub fn token(&self) -> &str {
        &self.state.token
    }
}

impl Server {
    /// Bind and start serving, the registry on the store under `cfg.root`.
    pub fn start(cfg: Config) -> Result<Server> {
        Server::start_on(cfg, None)
    }

    /// Bind and start serving, the registry on `storage` ([`Service::with_storage`]).
    pub fn start_with_storage(
        cfg: Config,
        storage: Arc<dyn storage::RegistryStorage>,
    ) -> Result<Server> {
        Server::start_on(cfg, Some(storage))
    }

    fn start_on(cfg: Config, storage: Option<Arc<dyn storage::RegistryStorage>>) -> Result<Server> {
        // Bind first, so the address (port 0 → a free one) is known to the state.
        let listener = std::net::TcpListener::bind(cfg.addr)
            .with_context(|| format!("cannot listen on {}", cfg.addr))?;
        let addr = listener.local_addr()?;
        drop(listener);
        let threads = cfg.threads.max(2);
        let svc = match storage {
            Some(s) => Service::with_storage(cfg, addr, s)?,
            None => Service::open(cfg, addr)?,
        };
        let state = svc.state.clone();
        let http = http::Server::start(
            addr,
            threads,
            Arc::new(move |req: &mut Request| svc.handle(req)),
        )
        .map_err(|e| anyhow!("cannot listen on {addr}: {e}"))?;
        Ok(Server { state, http })
    }

    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// The URL to open, with the token.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr(), self.token())
    }

    /// Serve until the process ends.
    pub fn wait(self) {
        self.http.wait()
    }

    /// Stop accepting new connections.
    pub fn shutdown(self) {
        self.http.shutdown()
    }
}

/// What a request may do, decided once before routing.
pub struct Ctx<'a> {
    pub st: &'a State,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The request carries the token: it may push, delete and RUN.
    pub authed: bool,
    /// The request carries the anonymous pull token (a registry client that followed the challenge).
    pub pull_authed: bool,
    /// Pulls need no token on a loopback listener.
    pub open_reads: bool,
}

impl Ctx<'_> {
    pub fn may_read(&self) -> bool {
        self.authed || self.open_reads
    }
}

fn host_allowed(st: &State, host: &str) -> bool {
    let port = st.addr.port();
    let host = host.trim().to_ascii_lowercase();
    let (name, p) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
            (n.to_string(), p.parse::<u16>().ok())
        }
        _ => (host.clone(), Some(80)),
    };
    if p != Some(port) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    // DNS rebinding needs a DNS name: IP literals (whatever reached our socket) and localhost are safe.
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok()
}

fn origin_allowed(st: &State, origin: &str) -> bool {
    if st.cfg.cors_origins.iter().any(|o| o == "*" || o == origin) {
        return true;
    }
    // The served origin only: this port on localhost, a loopback address or the address we are bound to (an
    // IP-literal Host is fine for requests, but another machine's page at the same port is another origin).
    let Some(h) = origin.strip_prefix("http://") else {
        return false;
    };
    if !host_allowed(st, h) {
        return false;
    }
    let name = h.rsplit_once(':').map(|(n, _)| n).unwrap_or(h);
    let name = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || (ip == st.addr.ip() && !ip.is_unspecified()),
        Err(_) => name == "localhost",
    }
}

/// Handle one request: security checks, routing, CORS, logging (method, path without query, status).
fn handle(st: &State, req: &mut Request) -> (http::Response, bool) {
    let (path, query) = split_url(req.url());
    let req = &mut *req;
    let method = *req.method();
    let origin = header(req, "origin").map(str::to_string);
    let reply = (|| {
        match header(req, "host") {
            Some(h) if host_allowed(st, h) => {}
            _ => return Reply::text(403, "forbidden: unexpected Host header"),
        }
        if let Some(o) = &origin {
            if !origin_allowed(st, o) {
                return Reply::text(403, format!("forbidden: origin {o} is not allowed"));
            }
        }
        if method == Method::Options {
            return preflight(req);
        }
        // The page's own requests carry the token in a cookie set when it was opened with `?token=`, so
        // neither its registry client nor the proxy needs to know about it; others present it themselves.
        let cookie = reply::cookie_token(req, &reply::token_cookie_name(st.addr.port()));
        let presented = [presented_token(req, &query), cookie];
        let authed = presented
            .iter()
            .flatten()
            .any(|t| same_secret(t, &st.token));
        let open_reads = st.addr.ip().is_loopback();
        let pull_authed = open_reads
            && presented
                .iter()
                .flatten()
                .any(|t| same_secret(t, &st.pull_token));
        let ctx = Ctx {
            st,
            path: path.clone(),
            query: query.clone(),
            authed,
            pull_authed,
            open_reads,
        };
        route(&ctx, req)
    })();
    let mut reply = reply;
    // Opening the site with the right `?token=` gives the page a cookie for its later requests: HttpOnly (no script
    // reads it) and SameSite=Strict (no other site's page sends it).
    if method == Method::Get
        && reply::query(&query, "token").is_some_and(|t| same_secret(t, &st.token))
        && !path.starts_with("/v2")
        && !path.starts_with("/proxy/")
        && !path.starts_with("/api/")
    {
        reply = reply.header(
            "Set-Cookie",
            format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                reply::token_cookie_name(st.addr.port()),
                st.token
            ),
        );
    }
    if let Some(o) = &origin {
        if origin_allowed(st, o) {
            reply = reply
                .header("Access-Control-Allow-Origin", o.clone())
                .header("Access-Control-Expose-Headers", EXPOSED_HEADERS);
        }
        reply = reply.header("Vary", "Origin");
    }
    if !reply.has_header("X-Content-Type-Options") {
        reply = reply.header("X-Content-Type-Options", "nosniff");
    }
    eprintln!("{} {} {}", method, path, reply.status);
    // Refused requests end the connection: their bodies are not worth reading.
    let close = reply.status == 403 || reply.status == 413;
    (reply.into_response(), close)
}

fn preflight(req: &Request) -> Reply {
    let asked = header(req, "access-control-request-headers").unwrap_or("");
    let allowed: Vec<String> = ALLOWED_HEADERS
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if let Some(bad) = asked
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .find(|h| !h.is_empty() && !allowed.contains(h))
    {
        return Reply::text(
            403,
            format!("forbidden: request header {bad} is not allowed"),
        );
    }
    Reply::new(204)
        .header("Access-Control-Allow-Methods", ALLOWED_METHODS)
        .header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        .header("Access-Control-Max-Age", "600")
}

fn route(ctx: &Ctx, req: &mut Request) -> Reply {
    let p = ctx.path.as_str();
    if p == "/v2" || p.starts_with("/v2/") {
        return registry::handle(ctx, req);
    }
    if let Some(rest) = p.strip_prefix("/proxy/") {
        if !ctx.may_read() {
            return Reply::text(401, "the proxy needs the token");
        }
        // Basic credentials in the request are for upstream unless they carry serve's own token.
        let auth_is_ours =
            presented_token(req, &[]).is_some_and(|t| same_secret(&t, &ctx.st.token));
        let f = proxy::Forward {
            query: &ctx.query,
            may_write: ctx.authed,
            auth_is_ours,
            realm_base: None,
        };
        return ctx.st.proxy.handle(&f, req, rest);
    }
    if p == "/api/run" {
        return run_api::handle(ctx, req);
    }
    if p == "/api/git" {
        return git_api::handle(ctx, req);
    }
    if p == "/api/containers" || p.starts_with("/api/containers/") {
        return containers_api::handle(ctx, req);
    }
    if p == "/api/token" {
        return registry::token_endpoint(ctx, req);
    }
    if p == "/api/info" {
        return Reply::json(
            200,
            &serde_json::json!({"version": env!("CARGO_PKG_VERSION"), "run": true, "containers": "/api/containers",
                "registry": "/v2/", "proxy": "/proxy/", "runRepository": "layerwright/run-cache",
                "ssh": ctx.st.cfg.ssh.keys().collect::<Vec<_>>(), "git": "/api/git"}),
        );
    }
    match *req.method() {
        Method::Get | Method::Head => ctx.st.site.serve(req, p),
        _ => Reply::text(405, "method not allowed"),
    }
}
