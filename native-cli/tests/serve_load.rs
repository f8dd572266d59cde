//! Load on `layerwright serve`'s embedded registry: 50 clients pull a 50 MB image at once (manifest, config, layer
//! streamed and hashed), every digest must match; prints throughput and p50/p99 pull latency.

mod common;
#[path = "common/registry.rs"]
mod registry_fixtures;
#[path = "common/serve.rs"]
mod serve_fixtures;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use layerwright::store::Store;
use lw_oci::digest::Algorithm;
use lw_oci::{media, Digest, DigestHasher, ImageConfig, Manifest};
use serve_fixtures::Served;

const CLIENTS: usize = 50;
const LAYER_MB: usize = 50;

/// GET `path` on a keep-alive connection, hashing the body as it streams; returns (status, digest, length).
fn get_hashed(
    conn: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
    accept: &str,
) -> (u16, Digest, u64) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut len = None;
    loop {
        let mut l = String::new();
        conn.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = Some(v.trim().parse::<u64>().unwrap());
            }
        }
    }
    let len = len.expect("Content-Length on registry responses");
    let mut h = DigestHasher::new(Algorithm::Sha256);
    let mut left = len;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = conn.read(&mut buf[..want]).unwrap();
        assert!(n > 0, "connection closed early");
        h.update(&buf[..n]);
        left -= n as u64;
    }
    (status, h.finish(), len)
}

#[test]
fn fifty_concurrent_pulls_of_a_50mb_image() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let store = Store::open(&root).unwrap();
    // Incompressible content (xorshift), as one uncompressed tar layer.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut data = vec![0u8; LAYER_MB << 20];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let tar = registry_fixtures::tar_with_file("big.bin", &data);
    drop(data);
    let layer = store.put_bytes(media::OCI_LAYER_TAR, &tar).unwrap();
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    config.rootfs.diff_ids.push(layer.digest.clone());
    drop(tar);
    let cfg = store
        .put_bytes(media::OCI_CONFIG, &lw_oci::to_canonical_json(&config))
        .unwrap();
    let m = store
        .put_bytes(
            media::OCI_MANIFEST,
            &lw_oci::to_canonical_json(&Manifest::oci(cfg.clone(), vec![layer.clone()])),
        )
        .unwrap();
    store.set_tag("docker.io/load/big:1", &m).unwrap();

    let srv = Served::start(&root, |c| c.threads = 32);
    let host = srv.host();
    let addr = srv.addr;
    let start = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let host = host.clone();
            let (md, cd, ld) = (m.digest.clone(), cfg.digest.clone(), layer.digest.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                let s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
                let mut conn = BufReader::with_capacity(256 * 1024, s);
                let (st, d, _) = get_hashed(
                    &mut conn,
                    &host,
                    "/v2/load/big/manifests/1",
                    media::OCI_MANIFEST,
                );
                assert_eq!((st, &d), (200, &md));
                let (st, d, _) =
                    get_hashed(&mut conn, &host, &format!("/v2/load/big/blobs/{cd}"), "*/*");
                assert_eq!((st, &d), (200, &cd));
                let (st, d, n) =
                    get_hashed(&mut conn, &host, &format!("/v2/load/big/blobs/{ld}"), "*/*");
                assert_eq!((st, &d), (200, &ld), "layer digest");
                (t.elapsed(), n)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut bytes = 0u64;
    for h in handles {
        let (d, n) = h.join().expect("a pull failed");
        lat.push(d);
        bytes += n;
    }
    let wall = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    assert_eq!(lat.len(), CLIENTS);
    println!(
        "load: {CLIENTS} concurrent pulls of a {LAYER_MB} MB image, all digests correct: {:.1} MB in {:.2}s = {:.0} MB/s; \
latency p50 {:.2}s, p99 {:.2}s",
        bytes as f64 / 1e6,
        wall.as_secs_f64(),
        bytes as f64 / 1e6 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64(),
        pct(0.99).as_secs_f64()
    );
}
