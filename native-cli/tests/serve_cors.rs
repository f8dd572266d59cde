//! `layerwright serve`'s browser-facing rules, header by header: CORS preflights and exposed headers, the origin
//! allow-list, Host checks against DNS rebinding, the token on the RUN backend, the static site (types, gzip,
//! caching), and the registry proxy in front of real registries (htpasswd and token auth) pulled by a client that
//! checks CORS on every response the way a browser would.

use crate::common::registry as registry_fixtures;
use crate::common::serve as serve_fixtures;

use std::io::Read;

use layerwright::serve::EXPOSED_HEADERS;
use lw_oci::{Digest, Manifest};
use registry_fixtures::{htpasswd_file, Registry, RegistryAuth, TokenServer};
use serve_fixtures::{raw, Resp, Served};

const REQUIRED_EXPOSED: &[&str] = &[
    "Location",
    "Docker-Content-Digest",
    "WWW-Authenticate",
    "Content-Range",
    "Range",
    "Link",
    "Docker-Upload-UUID",
    "Content-Length",
];

fn list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Check a response the way a browser would before letting the page read it.
fn check_cors(r: &Resp, origin: &str, what: &str) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(origin),
        "{what}: ACAO ({:?})",
        r.headers
    );
    let exposed = list(r.header("access-control-expose-headers"));
    for h in REQUIRED_EXPOSED {
        assert!(
            exposed.contains(&h.to_ascii_lowercase()),
            "{what}: {h} not exposed: {exposed:?}"
        );
    }
    assert!(
        list(r.header("vary")).contains(&"origin".to_string()),
        "{what}: Vary: Origin missing"
    );
}

/// A browser-like client: preflight, then the request with Origin, checking CORS on both.
struct CorsClient<'a> {
    srv: &'a Served,
    origin: String,
    checked: usize,
}

impl CorsClient<'_> {
    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        let asked = names.join(", ");
        let mut pre = vec![
            ("Origin", self.origin.as_str()),
            ("Access-Control-Request-Method", method),
        ];
        if !asked.is_empty() {
            pre.push(("Access-Control-Request-Headers", asked.as_str()));
        }
        let p = self.srv.req("OPTIONS", path, &pre, b"");
        assert_eq!(p.status, 204, "preflight {path}: {}", p.text());
        assert_eq!(
            p.header("access-control-allow-origin"),
            Some(self.origin.as_str())
        );
        assert!(
            list(p.header("access-control-allow-methods")).contains(&method.to_ascii_lowercase())
        );
        let allowed = list(p.header("access-control-allow-headers"));
        for n in &names {
            assert!(
                allowed.contains(&n.to_ascii_lowercase()),
                "preflight: {n} not allowed: {allowed:?}"
            );
        }
        let mut hs = vec![("Origin", self.origin.as_str())];
        hs.extend_from_slice(headers);
        let r = self.srv.req(method, path, &hs, b"");
        check_cors(&r, &self.origin, &format!("{method} {path}"));
        self.checked += 2;
        r
    }
}

#[test]
fn preflight_origins_hosts_and_the_run_token() {
    lw_test_kit::require!("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |c| {
        c.cors_origins = vec!["https://app.example".into()]
    });
    let own = srv.origin();
    let localhost = format!("http://localhost:{}", srv.addr.port());
    let mut checks = 0;

    // Preflight needs no token and answers for the served origin (both spellings) and --cors-origin.
    for o in [own.as_str(), localhost.as_str(), "https://app.example"] {
        let r = srv.req(
            "OPTIONS",
            "/v2/x/blobs/uploads/",
            &[
                ("Origin", o),
                ("Access-Control-Request-Method", "PATCH"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type, content-range",
                ),
            ],
            b"",
        );
        assert_eq!(r.status, 204, "{o}");
        assert_eq!(r.header("access-control-allow-origin"), Some(o));
        let m = list(r.header("access-control-allow-methods"));
        for want in ["get", "head", "post", "put", "patch", "delete"] {
            assert!(m.contains(&want.to_string()), "{m:?}");
        }
        let h = list(r.header("access-control-allow-headers"));
        for want in [
            "authorization",
            "content-type",
            "content-range",
            "range",
            "accept",
        ] {
            assert!(h.contains(&want.to_string()), "{h:?}");
        }
        assert!(r.header("access-control-max-age").is_some());
        assert!(
            r.header("access-control-allow-credentials").is_none(),
            "no cookies are used"
        );
        checks += 1;
    }
    // A preflight asking for a header we do not take is refused.
    let r = srv.req(
        "OPTIONS",
        "/v2/",
        &[
            ("Origin", &own),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-evil"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    // Another origin: refused, with no CORS headers, for preflights, pulls and the site.
    let lan = format!("http://10.1.2.3:{}", srv.addr.port());
    for (m, p, o) in [
        ("OPTIONS", "/v2/", "http://evil.example"),
        ("GET", "/v2/_catalog", "http://evil.example"),
        ("GET", "/", "null"),
        ("GET", "/proxy/r.example/v2/", "http://evil.example"),
        ("GET", "/v2/_catalog", lan.as_str()),
        ("GET", "/v2/_catalog", "https://app.example.evil"),
    ] {
        let r = srv.req(
            m,
            p,
            &[("Origin", o), ("Access-Control-Request-Method", "GET")],
            b"",
        );
        assert_eq!(r.status, 403, "{m} {p} from {o}");
        assert!(r.header("access-control-allow-origin").is_none());
        checks += 1;
    }
    // Every response to an allowed origin exposes the registry headers.
    let r = srv.req("GET", "/v2/_catalog", &[("Origin", &own)], b"");
    assert_eq!(r.status, 200);
    check_cors(&r, &own, "catalog");
    let r = srv.req("GET", "/v2/", &[("Origin", &own)], b"");
    assert_eq!(r.status, 401);
    check_cors(&r, &own, "401 ping");
    assert!(EXPOSED_HEADERS.contains("WWW-Authenticate"));
    // No Origin (curl, skopeo): no CORS headers at all.
    let r = srv.req("GET", "/v2/_catalog", &[], b"");
    assert!(r.header("access-control-allow-origin").is_none());

    // Host must be this server: DNS rebinding names and other ports are refused.
    let port = srv.addr.port();
    for (h, ok) in [
        (format!("127.0.0.1:{port}"), true),
        (format!("localhost:{port}"), true),
        (format!("evil.example:{port}"), false),
        (format!("127.0.0.1:{}", port.wrapping_add(1)), false),
        ("evil.example".to_string(), false),
    ] {
        let r = raw(srv.addr, "GET", "/v2/_catalog", &[("Host", h.clone())], b"");
        assert_eq!(r.status == 200, ok, "Host {h}: {}", r.status);
        checks += 1;
    }
    let r = raw(srv.addr, "GET", "/v2/_catalog", &[], b"");
    assert_eq!(r.status, 403, "no Host header");

    // The RUN backend: token required; other origins and hosts refused even with it.
    let body = br#"{"layers":[],"diffIds":[],"args":["true"]}"#;
    let json = ("Content-Type", "application/json");
    let r = srv.req("POST", "/api/run", &[json], body);
    assert_eq!(r.status, 401);
    let r = srv.req("POST", "/api/run?token=wrong", &[json], body);
    assert_eq!(r.status, 401);
    let good = format!("/api/run?token={}", srv.token);
    let r = srv.req(
        "POST",
        &good,
        &[json, ("Origin", "http://evil.example")],
        body,
    );
    assert_eq!(r.status, 403);
    let r = raw(
        srv.addr,
        "POST",
        &good,
        &[
            ("Host", "evil.example".into()),
            ("Content-Type", "application/json".into()),
        ],
        body,
    );
    assert_eq!(r.status, 403);
    let r = srv.req("GET", &good, &[], b"");
    assert_eq!(r.status, 405);
    let r = srv.req("POST", &good, &[("Content-Type", "text/plain")], body);
    assert_eq!(
        r.status, 415,
        "a simple (non-preflighted) content type is refused"
    );
    let big = vec![b' '; (1 << 20) + 10];
    let r = srv.req("POST", &good, &[json], &big);
    assert_eq!(r.status, 413);
    checks += 7;
    println!("serve security checks: {checks} passed");
}

/// A method no handler serves is answered at the door with 405, an `Allow` list and its name, on every route.
#[test]
fn an_unknown_method_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    for path in ["/v2/", "/v2/x/manifests/latest", "/", "/api/run"] {
        let r = srv.req("PROPFIND", path, &[], b"");
        assert_eq!(r.status, 405, "{path}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("method PROPFIND is not supported"),
            "{path}"
        );
        let allow = list(r.header("allow"));
        assert!(
            allow.contains(&"options".to_string()) && allow.contains(&"get".to_string()),
            "{allow:?}"
        );
    }
}

#[test]
fn the_site_has_types_gzip_and_cache_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(www.join("pkg")).unwrap();
    let html = "<!doctype html><title>x</title>".repeat(40);
    std::fs::write(www.join("index.html"), &html).unwrap();
    let js = "export const x = 1;\n".repeat(100);
    std::fs::write(www.join("app-3f9a1c0b7e.js"), &js).unwrap();
    std::fs::write(www.join("pkg/lw_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(tmp.path().join("secret"), b"no").unwrap();
    let srv = Served::start(&tmp.path().join("s"), |c| c.www = Some(www.clone()));

    let r = srv.req("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.text(), html);
    let r = srv.req(
        "GET",
        "/app-3f9a1c0b7e.js",
        &[("Accept-Encoding", "gzip, br")],
        b"",
    );
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, js);
    let r = srv.req(
        "GET",
        "/app-3f9a1c0b7e.js",
        &[("Accept-Encoding", "gzip;q=0")],
        b"",
    );
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.text(), js);
    let r = srv.req("HEAD", "/pkg/lw_bg.wasm", &[], b"");
    assert_eq!(r.header("content-type"), Some("application/wasm"));
    assert_eq!(r.header("content-length"), Some("8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    for p in ["/../secret", "/%2e%2e/secret", "/pkg/../../secret"] {
        let r = srv.req("GET", p, &[], b"");
        assert!(r.status == 400 || r.status == 404, "{p}: {}", r.status);
    }
    assert_eq!(srv.req("GET", "/missing.js", &[], b"").status, 404);
    drop(srv);

    // The built-in copy (or the placeholder when the binary was built without www/dist).
    let srv = Served::start(&tmp.path().join("s2"), |_| {});
    let r = srv.req("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    if !layerwright::serve::site::Site::embedded() {
        assert!(r.text().contains("cargo xtask build"));
    }
    println!("site: content types, gzip, caching, traversal checked");
}

fn pull_through_proxy(srv: &Served, host: &str, digest: &Digest, manifest: &Manifest) -> usize {
    let mut c = CorsClient {
        srv,
        origin: srv.origin(),
        checked: 0,
    };
    let base = format!("/proxy/{host}/v2/team/bb");
    let accept = lw_oci::media::OCI_MANIFEST;
    let r = c.send("GET", &format!("{base}/manifests/1"), &[("Accept", accept)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(Digest::sha256_of(&r.body), *digest);
    let r = c.send(
        "HEAD",
        &format!("{base}/manifests/{digest}"),
        &[("Accept", accept)],
    );
    assert_eq!(r.status, 200);
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let r = c.send("GET", &format!("{base}/blobs/{}", d.digest), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            Digest::sha256_of(&r.body),
            d.digest,
            "blob through the proxy"
        );
        let r = c.send(
            "GET",
            &format!("{base}/blobs/{}", d.digest),
            &[("Range", "bytes=0-9")],
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.body.len(), 10);
        assert!(r.header("content-range").is_some());
    }
    let r = c.send("GET", &format!("{base}/tags/list"), &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"1\""));
    c.checked
}

#[test]
fn the_proxy_answers_htpasswd_and_token_auth_server_side() {
    lw_test_kit::require!("docker-registry", "htpasswd", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    // htpasswd upstream.
    let reg = Registry::start(RegistryAuth::Htpasswd(htpasswd_file(
        tmp.path(),
        &[("alice", "s3cret")],
    )));
    let (digest, manifest) =
        registry_fixtures::seed_busybox(tmp.path(), &reg.host(), Some("alice:s3cret"));
    let srv = Served::start(&tmp.path().join("s"), |c| {
        c.allow_upstream = vec![reg.host()];
        c.proxy_credentials
            .insert(reg.host(), ("alice".into(), "s3cret".into()));
    });
    let n = pull_through_proxy(&srv, &reg.host(), &digest, &manifest);
    // The prefix form (`/proxy/http://HOST/v2/…`, what the browser client sends) pulls the same.
    let n = n + pull_through_proxy(&srv, &format!("http://{}", reg.host()), &digest, &manifest);
    // Not on the allow-list.
    let r = srv.req("GET", "/proxy/127.0.0.1:1/v2/", &[], b"");
    assert_eq!(r.status, 403);
    // A blob pushed through the proxy (with serve's token; upstream credentials stay server-side).
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
    let bd = Digest::sha256_of(&blob);
    let bearer = format!("Bearer {}", srv.token);
    let r = srv.req(
        "POST",
        &format!("/proxy/{}/v2/team/bb/blobs/uploads/", reg.host()),
        &[("Authorization", &bearer), ("Origin", &srv.origin())],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    check_cors(&r, &srv.origin(), "proxied upload start");
    let loc = r.header("location").unwrap().to_string();
    assert!(
        loc.starts_with(&format!("/proxy/{}/v2/team/bb/blobs/uploads/", reg.host())),
        "{loc}"
    );
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = srv.req(
        "PUT",
        &format!("{loc}{sep}digest={bd}"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/octet-stream"),
        ],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = srv.req(
        "GET",
        &format!("/proxy/{}/v2/team/bb/blobs/{bd}", reg.host()),
        &[],
        b"",
    );
    assert_eq!(
        Digest::sha256_of(&r.body),
        bd,
        "pushed through the proxy, read back"
    );
    // The prefix form, authorized by the page's cookie: Location comes back as the registry's own URL, which the
    // client prefixes again.
    let page = srv.req("GET", &format!("/?token={}", srv.token), &[], b"");
    let set = page.header("set-cookie").unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert_eq!(
        cookie,
        format!("lw_token_{}={}", srv.addr.port(), srv.token)
    );
    let r = srv.req(
        "POST",
        &format!("/proxy/http://{}/v2/team/bb/blobs/uploads/", reg.host()),
        &[("Cookie", &cookie), ("Origin", &srv.origin())],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    assert!(
        loc.starts_with(&format!("http://{}/v2/team/bb/blobs/uploads/", reg.host())),
        "{loc}"
    );
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = srv.req(
        "PUT",
        &format!("/proxy/{loc}{sep}digest={bd}"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/octet-stream"),
        ],
        &blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A wrong cookie is no token; no cookie is set without the right token.
    let bad = format!("lw_token_{}=nope", srv.addr.port());
    let r = srv.req(
        "POST",
        &format!("/proxy/http://{}/v2/team/bb/blobs/uploads/", reg.host()),
        &[("Cookie", &bad)],
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(srv
        .req("GET", "/?token=nope", &[], b"")
        .header("set-cookie")
        .is_none());
    // Pushing through the proxy needs serve's token.
    let r = srv.req(
        "POST",
        &format!("/proxy/{}/v2/team/bb/blobs/uploads/", reg.host()),
        &[],
        b"",
    );
    assert_eq!(r.status, 401);
    drop(srv);
    // Without credentials the upstream's refusal comes back as 401.
    let srv = Served::start(&tmp.path().join("s2"), |_| {});
    // Non-loopback upstreams only over https.
    let r = srv.req("GET", "/proxy/http://registry.example/v2/", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = srv.req(
        "GET",
        &format!("/proxy/{}/v2/team/bb/manifests/1", reg.host()),
        &[],
        b"",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    drop(srv);
    drop(reg);

    // Token-auth upstream: the proxy fetches the token; the client only ever talks to serve.
    let tdir = tmp.path().join("tok");
    std::fs::create_dir_all(&tdir).unwrap();
    let ts = TokenServer::start(&tdir, &[("bob", "pw")]);
    let reg = Registry::start(ts.registry_auth());
    let (digest, manifest) =
        registry_fixtures::seed_busybox(&tmp.path().join("t"), &reg.host(), Some("bob:pw"));
    let before = ts.requests().len();
    let srv = Served::start(&tmp.path().join("s3"), |c| {
        c.proxy_credentials
            .insert(reg.host(), ("bob".into(), "pw".into()));
    });
    let m = pull_through_proxy(&srv, &reg.host(), &digest, &manifest);
    let asked = ts.requests().len() - before;
    assert!(asked >= 1, "serve asked the token server");
    assert!(
        asked <= 3,
        "tokens are cached per scope ({asked} token requests)"
    );
    println!("proxy: htpasswd and token upstreams pulled, {} CORS-checked responses, {asked} token request(s)", n + m);
}

#[test]
fn the_proxy_follows_blob_redirects_without_leaking_credentials() {
    use registry_fixtures::{FakeServer, Reply as FakeReply};
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::Arc;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 239) as u8).collect();
    let digest = Digest::sha256_of(&data);
    let port = Arc::new(AtomicU16::new(0));
    let (p2, d2, data2) = (port.clone(), digest.clone(), data.clone());
    let fake = FakeServer::start(move |r| {
        let basic = "Basic dTpw"; // u:p
        if r.target.starts_with("/storage/") {
            // The signed URL must not receive the registry's credentials.
            if r.header("authorization").is_some() {
                return FakeReply::new(400).body("credentials leaked to the blob store");
            }
            return FakeReply::new(200).body(data2.clone());
        }
        if r.header("authorization") != Some(basic) {
            return FakeReply::new(401).header("WWW-Authenticate", "Basic realm=\"fake\"");
        }
        if r.target == format!("/v2/team/x/blobs/{d2}") {
            // Another origin (localhost instead of 127.0.0.1), as registries redirect to object stores.
            let loc = format!(
                "http://localhost:{}/storage/blob?sig=1",
                p2.load(Ordering::SeqCst)
            );
            return FakeReply::new(307).header("Location", &loc);
        }
        FakeReply::new(404)
    });
    port.store(fake.port, Ordering::SeqCst);
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |c| {
        c.proxy_credentials
            .insert(fake.host(), ("u".into(), "p".into()));
    });
    let r = srv.req(
        "GET",
        &format!("/proxy/{}/v2/team/x/blobs/{digest}", fake.host()),
        &[("Origin", &srv.origin())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(Digest::sha256_of(&r.body), digest);
    check_cors(&r, &srv.origin(), "redirected blob");
    let seen = fake.requests();
    assert!(
        seen.iter().any(|r| r.target.starts_with("/storage/")),
        "the redirect was followed server-side"
    );
    println!("proxy: blob redirect to another origin followed server-side without credentials");
}

/// Every client gets a Bearer challenge pointing at serve's own token endpoint: browsers prompt for a password on
/// a Basic challenge (even to `fetch()`), and docker sends no credentials to one unless logged in. An anonymous
/// client gets a pull-only token; the token as password gets the token itself.
#[test]
fn every_client_gets_a_bearer_challenge_with_a_same_origin_token_endpoint() {
    lw_test_kit::require!("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    let token = srv.token.clone();
    let expected = format!(
        "Bearer realm=\"http://{}/api/token\",service=\"layerwright serve\"",
        srv.host()
    );
    // A registry client (docker, skopeo) and a page: the same challenge; no Basic anywhere (that would prompt).
    for extra in [vec![], vec![("Sec-Fetch-Mode", "cors")]] {
        let r = srv.req("GET", "/v2/", &extra, b"");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some(expected.as_str()));
    }
    // A push without the token names the scope it needs, as docker's token flow expects.
    let r = srv.req("POST", "/v2/x/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!("{expected},scope=\"repository:x:pull,push\"").as_str())
    );
    let r = srv.req(
        "POST",
        "/v2/x/blobs/uploads/",
        &[("Sec-Fetch-Mode", "cors")],
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));

    // The token endpoint: the token as basic password → the bearer token, which then authorizes pushes.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{token}"))
    );
    let r = srv.req(
        "GET",
        "/api/token?service=layerwright+serve",
        &[("Authorization", &basic)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["token"], token);
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());
    let r = srv.req(
        "POST",
        "/v2/x/blobs/uploads/",
        &[("Authorization", &bearer), ("Sec-Fetch-Mode", "cors")],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    // No credentials: an anonymous token that pushes cannot use; wrong ones: 401 without any challenge.
    let r = srv.req("GET", "/api/token", &[], b"");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_ne!(v["token"], token);
    let anon = format!("Bearer {}", v["token"].as_str().unwrap());
    let r = srv.req(
        "POST",
        "/v2/x/blobs/uploads/",
        &[("Authorization", &anon)],
        b"",
    );
    assert_eq!(r.status, 401);
    // The pull token answers the ping (docker logs in anonymously that way) and reads.
    let r = srv.req("GET", "/v2/", &[("Authorization", &anon)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("anyone:nope")
    );
    let r = srv.req("GET", "/api/token", &[("Authorization", &wrong)], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), None);
}
