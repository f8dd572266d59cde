//! `layerwright proxy`, the public CORS gateway, against loopback registries that send no CORS headers: a real
//! Distribution registry (anonymous, and with token auth from the test token server) and a fake one whose blobs
//! redirect to another origin. The "site" origin is another loopback port than the proxy's. Checked: CORS for
//! listed origins only, the read-only API and the allow-list, the disk cache (by digest, counted in /metrics, served
//! with the registry gone), rewritten token realms, no cookies either way, rate limits and size limits.

use crate::common::registry as registry_fixtures;
use crate::common::serve as serve_fixtures;

use std::net::SocketAddr;
use std::process::Command;

use layerwright::gateway::{GatewayConfig, GatewayServer, IMMUTABLE};
use lw_oci::Digest;
use registry_fixtures::{FakeServer, Registry, RegistryAuth, Reply as FakeReply, TokenServer};
use serve_fixtures::{raw, Resp};

/// The site's origin: another loopback port than the proxy's.
const SITE: &str = "http://127.0.0.1:1";
const EXPOSED: &[&str] = &[
    "docker-content-digest",
    "www-authenticate",
    "link",
    "content-range",
    "content-length",
    "content-type",
];

struct Gw {
    server: Option<GatewayServer>,
    addr: SocketAddr,
}

impl Gw {
    fn start(tweak: impl FnOnce(&mut GatewayConfig)) -> Gw {
        let mut cfg = GatewayConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.cors_origins = vec![SITE.into()];
        cfg.threads = 16;
        tweak(&mut cfg);
        let server = GatewayServer::start(cfg).expect("proxy starts");
        Gw {
            addr: server.addr(),
            server: Some(server),
        }
    }

    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.req_body(method, path, headers, b"")
    }

    fn req_body(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut hs = vec![("Host", self.addr.to_string())];
        hs.extend(headers.iter().map(|(k, v)| (*k, v.to_string())));
        raw(self.addr, method, path, &hs, body)
    }

    /// A counter from /metrics.
    fn metric(&self, name: &str) -> u64 {
        let m = self.req("GET", "/metrics", &[]);
        assert_eq!(m.status, 200);
        m.text()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{}", m.text()))
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

fn list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What a browser checks before a page may read a response.
fn check_cors(r: &Resp, what: &str) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(SITE),
        "{what}: {:?}",
        r.headers
    );
    let exposed = list(r.header("access-control-expose-headers"));
    for h in EXPOSED {
        assert!(exposed.contains(&h.to_string()), "{what}: {h} not exposed");
    }
    assert!(
        list(r.header("vary")).contains(&"origin".to_string()),
        "{what}: Vary"
    );
    assert!(r.header("set-cookie").is_none(), "{what}: a cookie");
}

/// The OCI error code of a JSON error reply.
fn error_code(r: &Resp) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()));
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn anonymous_pulls_get_cors_and_are_cached_by_digest() {
    lw_test_kit::require!("docker-registry", "skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistryAuth::None);
    let (digest, manifest) = registry_fixtures::seed_busybox(tmp.path(), &reg.host(), None);
    let cache = tmp.path().join("cache");
    let gw = Gw::start(|c| {
        c.allow_upstream = vec![reg.host()];
        c.cache_dir = Some(cache.clone());
    });
    let base = format!("/proxy/{}/v2/team/bb", reg.host());
    let accept = lw_oci::media::OCI_MANIFEST;
    let o = [("Origin", SITE)];

    // The preflight is answered by the proxy (the registry knows nothing of CORS), for reads only.
    let p = gw.req(
        "OPTIONS",
        &format!("{base}/manifests/1"),
        &[
            ("Origin", SITE),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "accept, range, authorization",
            ),
        ],
    );
    assert_eq!(p.status, 204, "{}", p.text());
    assert_eq!(p.header("access-control-allow-origin"), Some(SITE));
    assert!(list(p.header("access-control-allow-headers")).contains(&"authorization".into()));
    let p = gw.req(
        "OPTIONS",
        &format!("{base}/blobs/uploads/"),
        &[("Origin", SITE), ("Access-Control-Request-Method", "POST")],
    );
    assert_eq!(p.status, 405);

    // Manifest by tag, tags, the manifest by digest, every blob: with CORS headers; by digest immutable.
    let r = gw.req(
        "GET",
        &format!("{base}/manifests/1"),
        &[("Origin", SITE), ("Accept", accept)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    check_cors(&r, "manifest by tag");
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(Digest::sha256_of(&r.body), digest);
    assert_ne!(r.header("cache-control"), Some(IMMUTABLE), "a tag can move");
    let manifest_type = r.header("content-type").unwrap().to_string();
    let r = gw.req("GET", &format!("{base}/tags/list"), &o);
    assert_eq!(r.status, 200);
    check_cors(&r, "tags");
    assert!(r.text().contains("\"1\""));
    let by_digest = format!("{base}/manifests/{digest}");
    let r = gw.req("GET", &by_digest, &[("Origin", SITE), ("Accept", accept)]);
    assert_eq!(
        (r.status, r.header("cache-control")),
        (200, Some(IMMUTABLE))
    );
    let blobs: Vec<_> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .collect();
    for d in &blobs {
        let r = gw.req("GET", &format!("{base}/blobs/{}", d.digest), &o);
        assert_eq!(r.status, 200, "{}", r.text());
        check_cors(&r, "blob");
        assert_eq!(Digest::sha256_of(&r.body), d.digest);
        assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
        assert!(r.header("x-cache").is_none(), "first fetch goes upstream");
    }
    let misses = gw.metric("layerwright_proxy_cache_misses_total");
    assert_eq!(misses, 1 + blobs.len() as u64);
    assert_eq!(
        gw.metric("layerwright_proxy_cache_entries"),
        1 + blobs.len() as u64
    );

    // Another origin: answered, but with no CORS headers (a browser will not let its page read it).
    let r = gw.req(
        "GET",
        &format!("{base}/manifests/1"),
        &[("Origin", "http://127.0.0.1:2"), ("Accept", accept)],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("access-control-allow-origin").is_none()
            && r.header("access-control-expose-headers").is_none()
    );
    let p = gw.req(
        "OPTIONS",
        &by_digest,
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
    );
    assert_eq!(p.status, 403);
    assert!(p.header("access-control-allow-origin").is_none());

    // Pushes and the catalog are refused with JSON errors; so is a registry off the allow-list.
    let r = gw.req_body("POST", &format!("{base}/blobs/uploads/"), &o, b"");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (405, "UNSUPPORTED"),
        "{}",
        r.text()
    );
    check_cors(&r, "refused push");
    let r = gw.req_body(
        "PUT",
        &format!("{base}/manifests/2"),
        &[("Content-Type", accept)],
        b"{}",
    );
    assert_eq!(r.status, 405, "{}", r.text());
    let r = gw.req("DELETE", &by_digest, &[]);
    assert_eq!(r.status, 405);
    let r = gw.req(
        "GET",
        &format!("/proxy/{}/v2/team/bb/blobs/uploads/x", reg.host()),
        &[],
    );
    assert_eq!(r.status, 405, "{}", r.text());
    let r = gw.req("GET", &format!("/proxy/{}/v2/_catalog", reg.host()), &[]);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "DENIED"));
    let r = gw.req("GET", "/proxy/127.0.0.1:1/v2/", &o);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "DENIED"));
    assert!(r.text().contains("allow-list"), "{}", r.text());
    // The tag is unchanged upstream: nothing was pushed.
    let direct = raw(
        reg.host().parse().unwrap(),
        "GET",
        "/v2/team/bb/tags/list",
        &[("Host", reg.host())],
        b"",
    );
    assert!(direct.text().contains("[\"1\"]"), "{}", direct.text());
    // The default allow-list does not include loopback registries.
    let public = Gw::start(|_| {});
    let r = public.req("GET", &format!("{base}/manifests/1"), &[]);
    assert_eq!(r.status, 403);
    drop(public);

    // The registry goes away: everything by digest still comes, from the cache, with the same headers.
    drop(reg);
    let r = gw.req("GET", &by_digest, &[("Origin", SITE), ("Accept", accept)]);
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("HIT")),
        "{}",
        r.text()
    );
    check_cors(&r, "cached manifest");
    assert_eq!(Digest::sha256_of(&r.body), digest);
    assert_eq!(r.header("content-type"), Some(manifest_type.as_str()));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    for d in &blobs {
        let path = format!("{base}/blobs/{}", d.digest);
        let r = gw.req("GET", &path, &o);
        assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
        check_cors(&r, "cached blob");
        assert_eq!(Digest::sha256_of(&r.body), d.digest);
        let r = gw.req("GET", &path, &[("Range", "bytes=0-9")]);
        assert_eq!((r.status, r.body.len()), (206, 10));
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes 0-9/{}", d.size).as_str())
        );
        let r = gw.req("HEAD", &path, &[]);
        assert_eq!(
            r.header("content-length"),
            Some(d.size.to_string().as_str())
        );
    }
    assert_eq!(
        gw.metric("layerwright_proxy_cache_hits_total"),
        1 + 3 * blobs.len() as u64
    );
    assert_eq!(gw.metric("layerwright_proxy_cache_misses_total"), misses);
    // By tag needs the registry.
    let r = gw.req("GET", &format!("{base}/manifests/1"), &[]);
    assert_eq!((r.status, error_code(&r).as_str()), (502, "UPSTREAM"));
    assert!(gw.metric("layerwright_proxy_upstream_errors_total") >= 1);
    let h = gw.req("GET", "/healthz", &[]);
    assert_eq!(h.status, 200);
    println!(
        "proxy: {} blobs and the manifest pulled with CORS, then served from the cache with the registry gone",
        blobs.len()
    );
}

#[test]
fn token_realms_point_at_the_proxy_and_credentialed_pulls_are_not_cached() {
    lw_test_kit::require!("docker-registry", "skopeo", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let tdir = tmp.path().join("tok");
    std::fs::create_dir_all(&tdir).unwrap();
    let ts = TokenServer::start(&tdir, &[("bob", "pw")]);
    let reg = Registry::start(ts.registry_auth());
    let (digest, manifest) =
        registry_fixtures::seed_busybox(&tmp.path().join("t"), &reg.host(), Some("bob:pw"));
    // The proxy as a process, so its log can be read.
    let cache = tmp.path().join("cache");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tmp.path().join("proxy.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .args([
            "proxy",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--cors-origin",
            SITE,
        ])
        .args([
            "--allow-upstream",
            &reg.host(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("http://127.0.0.1:{port}/"));
    }
    let gw = Gw {
        server: None,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    };
    let base = format!("/proxy/{}/v2/team/bb", reg.host());
    let accept = lw_oci::media::OCI_MANIFEST;
    // Anonymous: the proxy gets an anonymous token server-side, which has no access here: the client is told
    // to get a token from the proxy's own endpoint, for the right scope.
    let r = gw.req(
        "GET",
        &format!("{base}/manifests/1"),
        &[("Origin", SITE), ("Accept", accept)],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    check_cors(&r, "401");
    let www = r.header("www-authenticate").unwrap().to_string();
    let realm = format!("http://127.0.0.1:{port}/token/{}", reg.host());
    assert!(
        www.starts_with(&format!("Bearer realm=\"{realm}\"")),
        "{www}"
    );
    assert!(www.contains("scope=\"repository:team/bb:pull\""), "{www}");
    assert!(
        www.contains(&format!("service=\"{}\"", ts.service)),
        "{www}"
    );
    // The client follows the challenge with its credentials; the proxy asks the upstream's token server.
    let basic = "Basic Ym9iOnB3"; // bob:pw
    let tok = gw.req(
        "GET",
        &format!(
            "/token/{}?service={}&scope=repository:team/bb:pull",
            reg.host(),
            ts.service
        ),
        &[
            ("Origin", SITE),
            ("Authorization", basic),
            ("Cookie", "session=do-not-forward"),
        ],
    );
    assert_eq!(tok.status, 200, "{}", tok.text());
    check_cors(&tok, "token");
    assert_eq!(tok.header("cache-control"), Some("no-store"));
    let token = serde_json::from_slice::<serde_json::Value>(&tok.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let last = ts.requests().last().cloned().unwrap();
    assert!(
        last.header("cookie").is_none(),
        "cookies are never forwarded"
    );
    assert_eq!(last.header("authorization"), Some(basic));
    // The same through a client's proxy prefix (it puts the prefix before the realm too).
    let prefixed = gw.req(
        "GET",
        &format!(
            "/proxy/{realm}?service={}&scope=repository:team/bb:pull",
            ts.service
        ),
        &[("Authorization", basic)],
    );
    assert_eq!(prefixed.status, 200, "{}", prefixed.text());
    assert!(prefixed.text().contains("\"token\""));
    let wrong = gw.req(
        "GET",
        &format!("/token/{}?service=x", reg.host()),
        &[("Authorization", "Basic Ym9iOm5v")],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    // With the token: pulled through the proxy, private to this client (not cached, not for a CDN).
    let bearer = format!("Bearer {token}");
    for _ in 0..2 {
        let r = gw.req(
            "GET",
            &format!("{base}/manifests/{digest}"),
            &[
                ("Origin", SITE),
                ("Accept", accept),
                ("Authorization", &bearer),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        check_cors(&r, "manifest with a token");
        assert_eq!(Digest::sha256_of(&r.body), digest);
        assert_eq!(r.header("cache-control"), Some("private, no-store"));
        let l = &manifest.layers[0];
        let r = gw.req(
            "GET",
            &format!("{base}/blobs/{}", l.digest),
            &[("Authorization", &bearer)],
        );
        assert_eq!(Digest::sha256_of(&r.body), l.digest);
    }
    // Basic credentials straight to the proxy work too (it gets the token itself).
    let r = gw.req(
        "GET",
        &format!("{base}/manifests/1"),
        &[("Accept", accept), ("Authorization", basic)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(gw.metric("layerwright_proxy_cache_hits_total"), 0);
    assert_eq!(
        gw.metric("layerwright_proxy_cache_entries"),
        0,
        "credentialed pulls are not cached"
    );
    // Then the anonymous client is still refused: no token of bob's is lent to it.
    let r = gw.req(
        "GET",
        &format!("{base}/manifests/{digest}"),
        &[("Accept", accept)],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!(
            "GET /proxy/{}/v2/team/bb/manifests/1 200",
            reg.host()
        )),
        "{text}"
    );
    for secret in [
        token.as_str(),
        "Ym9iOnB3",
        "bob",
        "do-not-forward",
        "scope=",
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
    println!("proxy: token realm rewritten to the proxy, credentialed pulls private and uncached, log clean");
}

#[test]
fn blob_redirects_are_followed_server_side_and_cookies_stay_out() {
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::Arc;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&data);
    let port = Arc::new(AtomicU16::new(0));
    let (p2, d2, data2) = (port.clone(), digest.clone(), data.clone());
    // A registry with no CORS whose blobs live on another origin (localhost instead of 127.0.0.1).
    let fake = FakeServer::start(move |r| {
        if r.target.starts_with("/storage/") {
            return FakeReply::new(200)
                .header("Set-Cookie", "storage=1")
                .body(data2.clone());
        }
        if r.target == format!("/v2/team/x/blobs/{d2}") {
            let loc = format!(
                "http://localhost:{}/storage/blob?sig=1",
                p2.load(Ordering::SeqCst)
            );
            return FakeReply::new(307)
                .header("Location", &loc)
                .header("Set-Cookie", "reg=1");
        }
        FakeReply::new(404)
    });
    port.store(fake.port, Ordering::SeqCst);
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gw::start(|c| {
        c.allow_upstream = vec![fake.host()];
        c.cache_dir = Some(tmp.path().join("cache"));
    });
    let path = format!("/proxy/{}/v2/team/x/blobs/{digest}", fake.host());
    for round in 0..2 {
        let r = gw.req("GET", &path, &[("Origin", SITE), ("Cookie", "site=secret")]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(Digest::sha256_of(&r.body), digest);
        check_cors(&r, "redirected blob");
        assert_eq!(
            r.header("x-cache"),
            if round == 0 { None } else { Some("HIT") }
        );
    }
    let seen = fake.requests();
    assert_eq!(
        seen.iter()
            .filter(|r| r.target.starts_with("/storage/"))
            .count(),
        1,
        "the second came from the cache"
    );
    assert!(
        seen.iter().all(|r| r.header("cookie").is_none()),
        "a client cookie reached upstream"
    );
    // A blob whose bytes do not match its digest is passed on but never cached.
    let liar = Digest::sha256_of(b"something else");
    let fake2 = FakeServer::start(move |_| FakeReply::new(200).body(b"not the bytes".to_vec()));
    let gw2 = Gw::start(|c| {
        c.allow_upstream = vec![fake2.host()];
        c.cache_dir = Some(tmp.path().join("cache2"));
    });
    for _ in 0..2 {
        let r = gw2.req(
            "GET",
            &format!("/proxy/{}/v2/a/blobs/{liar}", fake2.host()),
            &[],
        );
        assert_eq!((r.status, r.header("x-cache")), (200, None));
    }
    assert_eq!(gw2.metric("layerwright_proxy_cache_entries"), 0);
    println!("proxy: blob redirect followed server-side, cached once verified, cookies dropped both ways");
}

#[test]
fn rate_and_size_limits_answer_with_clear_errors() {
    let gw = Gw::start(|c| {
        // Slow enough that a busy machine cannot refill a token between the burst and the next request.
        c.rate = 0.2;
        c.burst = 3.0;
        c.trust_forwarded_for = true;
    });
    // The last entry is the one the trusted CDN added; earlier ones are whatever the client claimed.
    let xff = [("X-Forwarded-For", "127.0.0.1, 127.0.0.7")];
    for _ in 0..3 {
        assert_eq!(gw.req("GET", "/", &[]).status, 200);
    }
    let r = gw.req("GET", "/proxy/ghcr.io/v2/", &[("Origin", SITE)]);
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (429, "TOOMANYREQUESTS"),
        "{}",
        r.text()
    );
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&secs), "{secs}");
    check_cors(&r, "429");
    // Health and metrics are not limited; another client (behind the trusted proxy) has its own bucket.
    assert_eq!(gw.req("GET", "/healthz", &[]).status, 200);
    assert_eq!(gw.req("GET", "/", &xff).status, 200);
    assert_eq!(gw.metric("layerwright_proxy_rate_limited_total"), 1);
    let r = gw.req_body("GET", "/", &xff, b"a body");
    assert_eq!(r.status, 413, "{}", r.text());
    let long = format!("/proxy/ghcr.io/v2/{}/manifests/x", "a".repeat(5000));
    let r = gw.req("GET", &long, &xff);
    assert_eq!(r.status, 414);
    std::thread::sleep(std::time::Duration::from_millis(1000 * secs + 200));
    assert_eq!(gw.req("GET", "/", &[]).status, 200, "the bucket refills");
    assert!(gw.metric("layerwright_proxy_requests_total{code=\"4xx\"}") >= 3);
    println!("proxy: 429 with Retry-After {secs}, 413, 414");
}
