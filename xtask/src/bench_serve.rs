//! Benchmark rows for `serve`'s registry under load: N concurrent anonymous pulls of one 50 MB layer from
//! `layerwright serve`, next to the same pulls of the same blob from the CNCF Distribution registry
//! (Debian's docker-registry), in the same run. The clients are curl processes, the same for both servers.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::bench_tools::{have, run, start_registry, timed};

/// Concurrent clients per round.
const CLIENTS: usize = 50;
const LAYER_MB: usize = 50;

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16) -> Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("nothing listens on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `CLIENTS` curl processes fetching `url` at once; every one must get 200 and the whole blob.
fn pulls(url: &str, size: u64) -> Result<()> {
    let children: Vec<Child> = (0..CLIENTS)
        .map(|_| {
            Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{size_download}",
                ])
                .arg(url)
                .stdout(Stdio::piped())
                .spawn()
                .context("starting curl")
        })
        .collect::<Result<_>>()?;
    for c in children {
        let out = c.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text != format!("200 {size}") {
            bail!("a pull of {url} answered {text:?}");
        }
    }
    Ok(())
}

/// The image's single layer (digest, size), read from the store's index and manifest.
fn layer_of(store: &Path) -> Result<(String, u64)> {
    let idx: serde_json::Value = serde_json::from_slice(&fs::read(store.join("index.json"))?)?;
    let m = idx["manifests"][0]["digest"]
        .as_str()
        .context("no image in the store")?;
    let (alg, hex) = m.split_once(':').context("manifest digest")?;
    let man: serde_json::Value =
        serde_json::from_slice(&fs::read(store.join("blobs").join(alg).join(hex))?)?;
    let l = &man["layers"][0];
    Ok((
        l["digest"].as_str().context("layer digest")?.to_string(),
        l["size"].as_u64().context("layer size")?,
    ))
}

/// Appends the rows: seconds for `CLIENTS` concurrent pulls of the layer from each server.
pub fn rows(
    work: &Path,
    runs: usize,
    lw: &dyn Fn(&Path) -> Command,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    if !have("curl") || !have("docker-registry") {
        notes.push(
            "curl or docker-registry is not installed: the serve load rows are missing".into(),
        );
        return Ok(());
    }
    let ctx = work.join("serve-ctx");
    fs::create_dir_all(&ctx)?;
    // Incompressible bytes (xorshift, fixed seed), so the layer is as large as the file.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut f = fs::File::create(ctx.join("big.bin"))?;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..LAYER_MB {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&buf)?;
    }
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\n",
    )?;
    let store = work.join("store-serve");
    let _ = fs::remove_dir_all(&store);
    run(lw(&store)
        .args(["build", "-q", "-t", "bench/load:1"])
        .arg(&ctx))?;
    let (digest, size) = layer_of(&store)?;

    let port = free_port()?;
    let _serve = Served(
        lw(&store)
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--token",
                "bench",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_port(port)?;
    let reg = start_registry(work)?;
    run(lw(&store).args([
        "push",
        "-q",
        "bench/load:1",
        &format!("127.0.0.1:{}/bench/load:1", reg.port()),
    ]))?;
    let mb = (CLIENTS as u64 * size) as f64 / 1e6;
    for (name, p) in [
        ("layerwright serve (hyper)", port),
        ("docker-registry (Distribution)", reg.port()),
    ] {
        let url = format!("http://127.0.0.1:{p}/v2/bench/load/blobs/{digest}");
        pulls(&url, size)?;
        let s = timed(runs, || pulls(&url, size))?;
        notes.push(format!(
            "{name}: {CLIENTS} concurrent pulls of a {LAYER_MB} MB layer, {:.0} MB/s",
            mb / s
        ));
        rows.push((
            format!("{CLIENTS} concurrent blob pulls ({LAYER_MB} MB each) from {name}"),
            s,
        ));
    }
    let _ = fs::remove_dir_all(&store);
    Ok(())
}

/// `cargo xtask bench --serve-only`: just these rows.
pub fn standalone(work: &Path, runs: usize) -> Result<()> {
    crate::bench_tools::standalone(work, runs, rows)
}
