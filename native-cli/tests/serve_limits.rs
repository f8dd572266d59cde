//! Bounded resources for `layerwright serve` (a separate process, so its memory is its own): 200 slowloris clients
//! trickling request heads, slow uploads trickling bodies, oversized heads and bodies, and clients cut off
//! mid-upload, all at once. There are more trickling uploads than serve has handler threads (2 × 32): they may
//! hold only half, and are cut once slower than 500 bytes/s past 20 s. Meanwhile a normal pull must succeed, serve's peak RSS must stay under
//! [`RSS_BOUND_MB`], and once the next upload runs no upload file is left on disk.

use crate::common;
use crate::common::kills;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{busybox_files, make_busybox_image};
use kills::{uploads, verify, Cli, Lcg};
use layerwright::store::Store;

/// serve's peak resident memory (VmHWM) under all of this, in MB. Measured at 41 MB on a 2-core VM;
/// the bound leaves room for allocator and thread-stack variation, and is far below what buffering
/// 200 heads or any body would take.
const RSS_BOUND_MB: u64 = 96;
const SLOWLORIS: usize = 200;
const SLOW_UPLOADS: usize = 100;
const TOKEN: &str = "limits-token-0123456789";

/// serve's peak and current resident set, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// serve's process, killed when the test ends, passed or not.
struct ServeProcess(Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_serve(root: &Path, host: &str) -> ServeProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args([
            "serve",
            "--addr",
            host,
            "--token",
            TOKEN,
            "--upload-idle",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while TcpStream::connect(host).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    ServeProcess(child)
}

fn head(method: &str, path: &str, host: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n{extra}")
}

/// Send a whole request and read the status code of the answer (0 when the connection ends without one).
fn status_of(host: &str, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // The server may answer and close before it read everything (a refused head): a failed write is fine.
    let _ = s.write_all(request);
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// 200 connections that send a request head one byte at a time, opening a new one whenever serve closes one
/// (as a slowloris attacker does); counts the connections serve closed.
fn slowloris(host: String, stop: Arc<AtomicBool>, closed: Arc<AtomicUsize>) {
    let line = head("GET", "/v2/", &host, "X-Slow: ");
    let open = || {
        let s = TcpStream::connect(&host).ok()?;
        s.set_nonblocking(true).ok()?;
        Some((s, 0usize))
    };
    let mut conns: Vec<Option<(TcpStream, usize)>> = (0..SLOWLORIS).map(|_| open()).collect();
    while !stop.load(Ordering::Relaxed) {
        for c in conns.iter_mut() {
            let alive = match c {
                Some((s, at)) => {
                    let b = line.as_bytes().get(*at).copied().unwrap_or(b'a');
                    *at += 1;
                    let mut probe = [0u8; 1];
                    let ended = s.read(&mut probe).is_ok();
                    !ended && s.write(&[b]).is_ok()
                }
                None => false,
            };
            if !alive {
                closed.fetch_add(1, Ordering::Relaxed);
                *c = open();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A chunked upload whose PATCH trickles a byte a second until serve cuts it (counted in `cut`: it answers or
/// closes) or the test ends.
fn slow_upload(host: String, stop: Arc<AtomicBool>, cut: Arc<AtomicUsize>) {
    let r = status_and_location(&host);
    let Some(loc) = r else { return };
    let Ok(mut s) = TcpStream::connect(&host) else {
        return;
    };
    let h = head(
        "PATCH",
        &loc,
        &host,
        "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n",
    );
    if s.write_all(h.as_bytes()).is_err() || s.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let mut probe = [0u8; 1];
        let answered = s.read(&mut probe).is_ok();
        let failed = matches!(s.write(b"x"), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock);
        if answered || failed {
            cut.fetch_add(1, Ordering::Relaxed);
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// POST a new upload session; its Location.
fn status_and_location(host: &str) -> Option<String> {
    let mut s = TcpStream::connect(host).ok()?;
    let h = head(
        "POST",
        "/v2/limits/slow/blobs/uploads/",
        host,
        "Content-Length: 0\r\nConnection: close\r\n\r\n",
    );
    s.write_all(h.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .map(|l| l.trim().to_string())
}

/// Oversized heads (a 1 MB header, 2000 small headers) must be refused; a 64 MB manifest too, and a 64 MB body
/// on a request that wants none must not be buffered. What serve answered.
fn oversized(host: &str) -> String {
    // Oversized heads: a 1 MB header, and 2000 small headers.
    let huge = format!(
        "{}X-Big: {}\r\n\r\n",
        head("GET", "/v2/", host, ""),
        "a".repeat(1 << 20)
    );
    let many = format!(
        "{}{}\r\n",
        head("GET", "/v2/", host, ""),
        (0..2000)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let mut refused_heads = 0;
    for req in [&huge, &many] {
        for _ in 0..5 {
            let st = status_of(host, req.as_bytes());
            assert!(
                st == 431 || st == 400 || st == 0,
                "an oversized head got {st}"
            );
            refused_heads += 1;
        }
    }
    // Oversized bodies: a 64 MB manifest, and a 64 MB body on a request that wants none.
    let body = vec![b'{'; 64 << 20];
    let mut big_manifest = head(
        "PUT",
        "/v2/limits/img/manifests/huge",
        host,
        &format!(
            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
    )
    .into_bytes();
    big_manifest.extend_from_slice(&body);
    let st = status_of(host, &big_manifest);
    assert!(
        st == 413 || st == 400 || st == 0,
        "a 64 MB manifest got {st}"
    );
    let mut ping = head(
        "GET",
        "/v2/",
        host,
        &format!("Content-Length: {}\r\n\r\n", body.len()),
    )
    .into_bytes();
    ping.extend_from_slice(&body);
    let ping_status = status_of(host, &ping);
    format!(
        "{refused_heads} oversized heads refused, a 64 MB manifest refused ({st}), a 64 MB body on GET /v2/ \
         answered {ping_status}"
    )
}

/// Uploads cut off mid-body: the connection closes with most of the declared body unsent.
fn cut_uploads(host: &str, big: &[u8]) {
    // Uploads cut off mid-body, the connection reset.
    for i in 0..10 {
        let Some(loc) = status_and_location(host) else {
            panic!("no upload session");
        };
        let mut s = TcpStream::connect(host).unwrap();
        let h = head(
            "PATCH",
            &loc,
            host,
            "Content-Type: application/octet-stream\r\nContent-Length: 4000000\r\n\r\n",
        );
        s.write_all(h.as_bytes()).unwrap();
        s.write_all(&big[..(i + 1) * 100_000]).unwrap();
        drop(s);
    }
}

/// Log in to serve with its token and push the test image.
fn login_and_push(cli: &Cli, host: &str) {
    cli.login(host, TOKEN);
    cli.ok(&["push", "limits/img:1", &format!("{host}/limits/img:1")]);
}

#[test]
fn serve_under_slow_oversized_and_cut_clients_stays_bounded_and_keeps_serving() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let serve_root = tmp.path().join("served");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    // An image to pull: busybox plus 8 MB of random bytes, pushed to serve before the clients arrive.
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let mut rng = Lcg(0x5101);
    let big: Vec<u8> = (0..8 << 20).map(|_| rng.below(256) as u8).collect();
    make_busybox_image(
        &store,
        "limits/img:1",
        &[busybox_files(&[("big.bin", big.as_slice())])],
    );
    let server = start_serve(&serve_root, &host);
    let pid = server.0.id();
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    login_and_push(&cli, &host);
    let (base_peak, _) = rss_kb(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    {
        let (h, s, c) = (host.clone(), stop.clone(), closed.clone());
        threads.push(std::thread::spawn(move || slowloris(h, s, c)));
    }
    let cut = Arc::new(AtomicUsize::new(0));
    for _ in 0..SLOW_UPLOADS {
        let (h, s, c) = (host.clone(), stop.clone(), cut.clone());
        threads.push(std::thread::spawn(move || slow_upload(h, s, c)));
    }
    std::thread::sleep(Duration::from_secs(2));

    let oversized = oversized(&host);
    cut_uploads(&host, &big);

    // A normal pull, while all of that goes on.
    let pull_root = tmp.path().join("pulled");
    let puller = Cli {
        root: pull_root.clone(),
        docker_config: cli.docker_config.clone(),
    };
    let t = Instant::now();
    puller.ok(&["pull", &format!("{host}/limits/img:1")]);
    let pull_secs = t.elapsed().as_secs_f64();
    assert!(verify(&pull_root).problems.is_empty());
    // The trickles go on until serve has cut every slow upload (past 20 s under 500 bytes/s; those waiting for a
    // handler are cut once they get one) and its head timeout has closed slowloris connections.
    let t = Instant::now();
    while (cut.load(Ordering::Relaxed) < SLOW_UPLOADS || closed.load(Ordering::Relaxed) < SLOWLORIS)
        && t.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut = cut.load(Ordering::Relaxed);
    assert_eq!(cut, SLOW_UPLOADS, "serve cut only {cut} trickling uploads");
    let (peak, now) = rss_kb(pid);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let closed = closed.load(Ordering::Relaxed);
    assert!(
        closed >= SLOWLORIS,
        "serve closed only {closed} slowloris connections"
    );
    assert!(
        peak / 1024 < RSS_BOUND_MB,
        "serve's peak RSS {} MB is over the {RSS_BOUND_MB} MB bound",
        peak / 1024
    );
    // The next upload, past the 1 s upload idle time, sweeps every abandoned session.
    std::thread::sleep(Duration::from_millis(1500));
    cli.ok(&["push", "limits/img:1", &format!("{host}/limits/again:1")]);
    let t = Instant::now();
    while !uploads(&serve_root).is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = uploads(&serve_root);
    assert!(left.is_empty(), "uploads left on disk: {left:?}");
    assert!(verify(&serve_root).problems.is_empty());
    drop(server);
    println!(
        "serve limits: {SLOWLORIS} slowloris clients ({closed} connections closed by serve), {cut} \
         trickling uploads cut, {oversized}, 10 uploads cut; a normal pull took {pull_secs:.2}s meanwhile; \
         serve's peak RSS {} MB before, {} MB under load ({} MB at the end), bound {RSS_BOUND_MB} MB; uploads \
         left 0",
        base_peak / 1024,
        peak / 1024,
        now / 1024
    );
}
