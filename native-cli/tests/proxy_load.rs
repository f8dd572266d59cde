//! Load on `layerwright proxy`: N clients (PROXY_LOAD_CLIENTS, default 20) pull a 50 MB image at once from a
//! Distribution registry directly, then through the proxy without a cache, then through the proxy with a cache
//! (a cold round that fills it, a warm round served from it). Every digest must match; prints throughput per
//! round and the proxy process's peak RSS.

use crate::common::load;
use crate::common::registry as registry_fixtures;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

use lw_oci::{media, Digest, Manifest};
use registry_fixtures::{Registry, RegistryAuth};

const LAYER_MB: usize = 50;

struct ProxyProc(Child, SocketAddr);

impl ProxyProc {
    fn start(upstream: &str, cache: Option<&std::path::Path>) -> ProxyProc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_layerwright"));
        cmd.args([
            "proxy",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--allow-upstream",
            upstream,
        ])
        .args(["--rate", "0", "--cors-origin", "http://127.0.0.1:1"]);
        if let Some(c) = cache {
            cmd.arg("--cache-dir").arg(c);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://"), "{line}");
        ProxyProc(child, format!("127.0.0.1:{port}").parse().unwrap())
    }

    /// Peak resident set size in MB (VmHWM).
    fn peak_rss_mb(&self) -> f64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        let kb: f64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb / 1024.0
    }
}

impl Drop for ProxyProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn concurrent_pulls_through_the_proxy_next_to_direct() {
    lw_test_kit::require!("docker-registry", "skopeo");
    let clients: usize = std::env::var("PROXY_LOAD_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    let made = load::make_image(&root);
    let reg = Registry::start(RegistryAuth::None);
    registry_fixtures::skopeo_copy(
        &format!("oci:{}:docker.io/load/big:1", root.display()),
        &format!("docker://{}/load/big:1", reg.host()),
        None,
    );
    let reg_addr: SocketAddr = reg.host().parse().unwrap();
    // skopeo may rewrite the manifest on the way (layer compression): pull against what the registry holds.
    let d = {
        let s = TcpStream::connect(reg_addr).unwrap();
        let mut conn = BufReader::new(s);
        let req = format!(
            "GET /v2/load/big/manifests/1 HTTP/1.1\r\nHost: {}\r\nAccept: {}\r\nConnection: close\r\n\r\n",
            reg.host(),
            media::OCI_MANIFEST
        );
        conn.get_mut().write_all(req.as_bytes()).unwrap();
        let mut text = Vec::new();
        conn.read_to_end(&mut text).unwrap();
        let at = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &text[at..];
        let m: Manifest = serde_json::from_slice(body).unwrap();
        assert_eq!(m.layers.len(), 1);
        (
            Digest::sha256_of(body),
            m.config.digest.clone(),
            m.layers[0].digest.clone(),
        )
    };
    let _ = made;
    let via = format!("/proxy/{}/v2/load/big", reg.host());

    let r = load::round(reg_addr, "/v2/load/big", clients, &d);
    let (direct, direct_p99) = (r.mb_per_s, r.p99);
    let plain = ProxyProc::start(&reg.host(), None);
    let r = load::round(plain.1, &via, clients, &d);
    let (proxied, proxied_p99) = (r.mb_per_s, r.p99);
    let rss_plain = plain.peak_rss_mb();
    drop(plain);
    let cached = ProxyProc::start(&reg.host(), Some(&tmp.path().join("cache")));
    let r = load::round(cached.1, &via, clients, &d);
    let (cold, cold_p99) = (r.mb_per_s, r.p99);
    let r = load::round(cached.1, &via, clients, &d);
    let (warm, warm_p99) = (r.mb_per_s, r.p99);
    let rss_cached = cached.peak_rss_mb();
    let metrics = {
        let mut s = TcpStream::connect(cached.1).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    };
    let hits: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("layerwright_proxy_cache_hits_total ")?
                .parse()
                .ok()
        })
        .unwrap();
    // The warm round's config and layer come from the cache (the manifest is asked for by tag).
    assert!(hits >= 2 * clients as u64, "cache hits {hits}:\n{metrics}");
    println!(
        "proxy load: {clients} concurrent pulls of a {LAYER_MB} MB image, every digest checked: direct from docker-registry \
{direct:.0} MB/s (p99 {direct_p99:.2}s); through the proxy, no cache {proxied:.0} MB/s (p99 {proxied_p99:.2}s, peak RSS \
{rss_plain:.0} MB); cache cold {cold:.0} MB/s (p99 {cold_p99:.2}s), warm {warm:.0} MB/s (p99 {warm_p99:.2}s), peak RSS \
{rss_cached:.0} MB"
    );
}
