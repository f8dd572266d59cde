//! Load-test helpers shared by `serve_load` and `proxy_load`: a 50 MB incompressible image in a store, and rounds of
//! concurrent pulls over keep-alive connections that hash every body as it streams.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use layerwright::store::Store;
use lw_oci::digest::Algorithm;
use lw_oci::{media, Digest, DigestHasher, ImageConfig, Manifest};

use super::registry as registry_fixtures;

pub const LAYER_MB: usize = 50;

/// GET `path` on a keep-alive connection, hashing the body as it streams; returns (status, digest, length).
pub fn get_hashed(
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
    let len = len.unwrap_or_else(|| panic!("no Content-Length on {path} ({line})"));
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

/// A 50 MB incompressible single-layer image in a store; (root, manifest, config, layer) digests.
pub fn make_image(root: &std::path::Path) -> (Digest, Digest, Digest) {
    let store = Store::open(root).unwrap();
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
    (m.digest, cfg.digest, layer.digest)
}

/// What one round of pulls measured.
pub struct Round {
    pub mb_per_s: f64,
    pub p50: f64,
    pub p99: f64,
    pub bytes: u64,
    pub wall: f64,
}

/// `clients` concurrent pulls of `base` (`/v2/load/big` or its proxied form), every digest checked.
pub fn round(addr: SocketAddr, base: &str, clients: usize, d: &(Digest, Digest, Digest)) -> Round {
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (base, (md, cd, ld)) = (base.to_string(), d.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                let s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
                let host = addr.to_string();
                let mut conn = BufReader::with_capacity(256 * 1024, s);
                let (st, got, _) = get_hashed(
                    &mut conn,
                    &host,
                    &format!("{base}/manifests/1"),
                    media::OCI_MANIFEST,
                );
                assert_eq!((st, &got), (200, &md));
                let (st, got, _) =
                    get_hashed(&mut conn, &host, &format!("{base}/blobs/{cd}"), "*/*");
                assert_eq!((st, &got), (200, &cd));
                let (st, got, n) =
                    get_hashed(&mut conn, &host, &format!("{base}/blobs/{ld}"), "*/*");
                assert_eq!((st, &got), (200, &ld), "layer digest");
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
    let wall = start.elapsed().as_secs_f64();
    lat.sort();
    assert_eq!(lat.len(), clients);
    let pct = |p: f64| {
        lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1].as_secs_f64()
    };
    Round {
        mb_per_s: bytes as f64 / 1e6 / wall,
        p50: pct(0.50),
        p99: pct(0.99),
        bytes,
        wall,
    }
}
