//! `xtask bench`'s browser benchmarks: a cold COPY-only build of the benchmark tree in headless Chromium through the
//! built site's `window.layerwright.build` (files fetched from a loopback server as Blobs; only the build call is
//! timed), as a ratio to the native reference of the same run; and listing a generated ~1 GB gzip layer from a Blob
//! with the peak `WebAssembly.Memory` size; RUN in the tab's VM (first output on a first and a second visit, a
//! trivial step, bytes downloaded). The browser side is `xtask/bench_wasm.mjs` (playwright-core).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::Compression;
use serde_json::Value;

/// Cheap deterministic text (xorshift over a word list), for a compressible generated layer.
fn text_pool(len: usize, mut seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "layer", "image", "tar", "gzip", "digest", "config", "fn", "let", "{", "}", "return",
        "the", "of", "and", "registry", "manifest", "0x1f8b", "struct", "impl", "=>",
    ];
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(WORDS[(seed % WORDS.len() as u64) as usize].as_bytes());
        v.push(if seed.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    v.truncate(len);
    v
}

/// A gzip layer of about `mb` MB of tar (files of 1 KB–400 KB, some incompressible), kept between runs.
pub fn generate_layer(path: &Path, mb: u64) -> Result<(u64, usize)> {
    let marker = path.with_extension("done");
    if let Ok(s) = fs::read_to_string(&marker) {
        if let Some((want, n)) = s.trim().split_once(' ') {
            if want == mb.to_string() && path.is_file() {
                return Ok((fs::metadata(path)?.len(), n.parse().unwrap_or(0)));
            }
        }
    }
    eprintln!(
        "bench-wasm: generating a {mb} MB gzip layer at {}",
        path.display()
    );
    let pool = text_pool(8 << 20, 0x9e37_79b9_7f4a_7c15);
    let f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut lw = LayerWriter::new(
        f,
        Compression::Gzip,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    )?;
    let target = mb * 1_000_000;
    let (mut total, mut n, mut seed) = (0u64, 0usize, 42u64);
    while total < target {
        if n % 500 == 0 {
            lw.tar()
                .append_bytes(&Entry::dir(&format!("d{:04}", n / 500), 0o755), &[])?;
            n += 1;
            continue;
        }
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = 1_000 + (seed >> 33) as usize % 400_000;
        let off = (seed >> 13) as usize % (pool.len() - len);
        let mut data = pool[off..off + len].to_vec();
        if n % 10 == 0 {
            // One file in ten is incompressible, as binaries and archives are.
            let mut x = seed | 1;
            for b in data.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
        }
        let name = format!("d{:04}/f{n:07}.dat", n / 500);
        lw.tar()
            .append_bytes(&Entry::file(&name, 0o644, len as u64), &data)?;
        total += len as u64;
        n += 1;
    }
    let (mut f, _) = lw.finish()?;
    f.flush()?;
    fs::write(&marker, format!("{mb} {n}"))?;
    Ok((fs::metadata(path)?.len(), n))
}

fn tree_list(tree: &Path, out: &Path) -> Result<usize> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
        for e in fs::read_dir(root.join(rel))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if rel.is_empty() && name == ".lw-bench-tree" {
                continue;
            }
            let p = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type()?.is_dir() {
                walk(root, &p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut list = Vec::new();
    walk(tree, "", &mut list)?;
    list.sort();
    fs::write(out, serde_json::to_vec(&list)?)?;
    Ok(list.len())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Self time per function of a Chromium `.cpuprofile`, largest first, as `(ms, name)`.
fn hot_spots(profile: &Path, top: usize) -> Result<Vec<(f64, String)>> {
    let p: Value = serde_json::from_slice(&fs::read(profile)?)?;
    let mut by_node = std::collections::HashMap::new();
    for n in p["nodes"].as_array().into_iter().flatten() {
        let cf = &n["callFrame"];
        let name = cf["functionName"].as_str().unwrap_or("");
        let url = cf["url"].as_str().unwrap_or("");
        let short = url.rsplit('/').next().unwrap_or("");
        let label = if name.is_empty() {
            format!("(anonymous) {short}")
        } else {
            format!("{name} {short}")
        };
        by_node.insert(n["id"].as_i64().unwrap_or(-1), label);
    }
    let mut self_ms: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    let samples = p["samples"].as_array().cloned().unwrap_or_default();
    let deltas = p["timeDeltas"].as_array().cloned().unwrap_or_default();
    for (i, s) in samples.iter().enumerate() {
        // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
        let dt = deltas.get(i + 1).and_then(Value::as_f64).unwrap_or(0.0) / 1000.0;
        let label = by_node
            .get(&s.as_i64().unwrap_or(-1))
            .cloned()
            .unwrap_or_default();
        *self_ms.entry(label).or_default() += dt;
    }
    let mut v: Vec<(f64, String)> = self_ms.into_iter().map(|(k, ms)| (ms, k)).collect();
    v.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    v.truncate(top);
    Ok(v)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// A copy of www/dist whose wasm keeps its `name` section (wasm-bindgen over the cargo output, no wasm-opt), so a
/// CPU profile names Rust functions instead of `wasm-function[N]`.
fn profiling_dist(work: &Path) -> Result<PathBuf> {
    let root = crate::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let raw = target.join("wasm32-unknown-unknown/wasm-release/lw_wasm.wasm");
    let version = crate::wasm::locked_wasm_bindgen_version(&root)?;
    let bindgen = crate::wasm::ensure_wasm_bindgen_cli(&version)?.with_file_name("wasm-bindgen");
    let dist = work.join("dist-profile");
    let _ = fs::remove_dir_all(&dist);
    copy_dir(&root.join("www/dist"), &dist)?;
    let st = Command::new(&bindgen)
        .args(["--target", "web", "--out-name", "lw_wasm", "--out-dir"])
        .arg(dist.join("pkg"))
        .arg(&raw)
        .status()
        .with_context(|| format!("starting {}", bindgen.display()))?;
    if !st.success() {
        bail!("wasm-bindgen for the profiling build failed");
    }
    Ok(dist)
}

/// Options of the browser benchmarks.
pub struct Options {
    pub runs: usize,
    pub layer_mb: u64,
    /// The generated context of the bounded-memory tab build, in MB.
    pub big_mb: u64,
    pub profile: bool,
    pub skip_site_build: bool,
}

impl Options {
    pub fn from_args(args: &[String], runs: usize) -> Options {
        let quick = args.iter().any(|a| a == "--quick" || a == "--smoke");
        Options {
            runs: if quick { 1 } else { runs },
            layer_mb: if quick { 100 } else { 1000 },
            big_mb: if quick { 256 } else { 1000 },
            profile: args.iter().any(|a| a == "--wasm-profile"),
            skip_site_build: args.iter().any(|a| a == "--no-site-build"),
        }
    }
}

/// Run the browser benchmarks; rows go into the table next to the native ones (`reference` is the same run's
/// `tar | gzip -6 | sha256sum` in seconds), findings into `notes`.
pub fn run(
    work: &Path,
    tree: &Path,
    reference: f64,
    opts: &Options,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<Value> {
    let root = crate::repo_root();
    if !opts.skip_site_build {
        crate::build::build().context("building the site for the browser benchmarks")?;
    }
    let www = root.join("www");
    if opts.skip_site_build {
        if let Some(why) = stale_site(&root) {
            eprintln!("xtask: warning: {why}");
            notes.push(format!("warning: {why}"));
        }
    }
    if !www.join("node_modules/playwright-core").is_dir() {
        bail!("www/node_modules/playwright-core is missing: run `cargo xtask build` (it runs npm ci in www/)");
    }
    let list = work.join("tree.json");
    let files = tree_list(tree, &list)?;
    let layer = work.join(format!("layer-{}mb.tar.gz", opts.layer_mb));
    let (layer_bytes, layer_entries) = generate_layer(&layer, opts.layer_mb)?;
    let profile = work.join("wasm-build.cpuprofile");
    let mut c = Command::new("node");
    c.arg(root.join("xtask/bench_wasm.mjs"))
        .arg("--www")
        .arg(&www)
        .arg("--tree")
        .arg(tree)
        .arg("--list")
        .arg(&list)
        .arg("--layer")
        .arg(&layer)
        .args(["--runs", &opts.runs.to_string()]);
    // The bounded-memory build: a tree made as the bench tree is (another seed), kept between runs.
    if opts.big_mb > 0 {
        let big = work.join(format!("bigctx-{}mb", opts.big_mb));
        crate::bench::generate_tree(&big, opts.big_mb, 43)?;
        c.arg("--big-tree").arg(&big);
    }
    // Rebuilds after 1 KB edits of the bench tree: in its last file, and at this many random places.
    c.args(["--rebuilds", if opts.runs > 1 { "5" } else { "2" }]);
    // Streamed remote inspection needs a loopback registry (Debian's docker-registry, which `xtask deps` installs).
    let remote = crate::build::which("docker-registry").is_some();
    if remote {
        c.args(["--remote-mb", &opts.layer_mb.to_string()]);
    } else {
        notes.push("streamed remote inspection skipped: docker-registry is not installed".into());
    }
    if opts.profile {
        c.arg("--profile")
            .arg(&profile)
            .arg("--profile-dist")
            .arg(profiling_dist(work)?);
    }
    eprintln!("bench-wasm: {files} context files, layer {layer_bytes} bytes ({layer_entries} entries); running {c:?}");
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .context("starting node")?;
    if !out.status.success() {
        bail!("the browser benchmark failed ({})", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(line.lines().last().unwrap_or(""))
        .with_context(|| format!("reading the browser benchmark's output: {line}"))?;
    let builds = r["builds"].as_array().cloned().unwrap_or_default();
    let pick = |k: &str| -> Vec<f64> { builds.iter().filter_map(|b| b[k].as_f64()).collect() };
    let build = median(pick("build"));
    rows.push((
        "wasm in Chromium: layerwright.build, COPY-only, cold".into(),
        build,
    ));
    let core = pick("core");
    if !core.is_empty() {
        rows.push((
            "wasm in Chromium: same, until the `finished` event (before IndexedDB)".into(),
            median(core),
        ));
    }
    let zstd: Vec<f64> = r["zstd"]
        .as_array()
        .map(|z| z.iter().filter_map(|b| b["build"].as_f64()).collect())
        .unwrap_or_default();
    if !zstd.is_empty() {
        rows.push((
            "wasm in Chromium: layerwright.build with compression zstd, COPY-only, cold".into(),
            median(zstd),
        ));
    }
    let export = median(pick("exportSeconds"));
    rows.push((
        "wasm in Chromium: build + exportTarball (OCI tarball Blob)".into(),
        build + export,
    ));
    notes.push(format!(
        "wasm cold build in Chromium: {:.2}s = {:.2}× the reference (issue target ≤ 0.60); wasm memory after the build {:.0} MB",
        build,
        build / reference,
        builds.first().and_then(|b| b["memory"].as_f64()).unwrap_or(0.0) / 1e6
    ));
    if let Some(l) = r.get("list").filter(|l| !l.is_null()) {
        let secs = l["seconds"].as_f64().unwrap_or(0.0);
        let tar = l["tarBytes"].as_f64().unwrap_or(0.0);
        rows.push((
            format!(
                "wasm in Chromium: list a {} MB gzip layer from a Blob",
                opts.layer_mb
            ),
            secs,
        ));
        notes.push(format!(
            "wasm layer listing: {} entries, {:.0} MB of file data ({:.0} MB gzip blob) in {secs:.2}s ({:.0} MB/s of tar); WebAssembly.Memory {:.1} MB before, peak {:.1} MB after",
            l["entries"], tar / 1e6, l["blobBytes"].as_f64().unwrap_or(0.0) / 1e6, tar / 1e6 / secs.max(1e-9),
            l["memoryBefore"].as_f64().unwrap_or(0.0) / 1e6, l["memoryAfter"].as_f64().unwrap_or(0.0) / 1e6
        ));
    }
    if let Some(vm) = r.get("vm").filter(|v| !v.is_null()) {
        let secs = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        let (cold, warm) = (&vm["cold"], &vm["warm"]);
        rows.push((
            "wasm in Chromium: RUN in the tab, build() to first RUN output, first visit".into(),
            secs(cold, "firstOutput"),
        ));
        rows.push((
            "wasm in Chromium: same, second visit (guest from the service worker's cache)".into(),
            secs(warm, "firstOutput"),
        ));
        rows.push((
            "wasm in Chromium: a trivial RUN step after the first".into(),
            secs(cold, "trivial").max(secs(warm, "trivial")),
        ));
        rows.push((
            "wasm in Chromium: `run` in the tab (runContainer echo), to the end".into(),
            secs(cold, "run").max(secs(warm, "run")),
        ));
        notes.push(format!(
            "run in the tab: first output {:.2}s / {:.2}s, exited after {:.2}s / {:.2}s",
            secs(cold, "runFirstOutput"),
            secs(warm, "runFirstOutput"),
            secs(cold, "run"),
            secs(warm, "run"),
        ));
        notes.push(format!(
            "RUN in the tab: {:.1} MB downloaded by the first visit for the VM (issue target < 30 MB), restore {:.2}s / {:.2}s; \
             first output {:.2}s / {:.2}s (target ≤ 3 s), trivial step {:.2}s / {:.2}s (target ≤ 1 s)",
            secs(cold, "bytes") / 1e6,
            secs(cold, "restore"),
            secs(warm, "restore"),
            secs(cold, "firstOutput"),
            secs(warm, "firstOutput"),
            secs(cold, "trivial"),
            secs(warm, "trivial"),
        ));
    }
    if let Some(l) = r.get("remote").filter(|l| !l.is_null()) {
        let secs = l["seconds"].as_f64().unwrap_or(0.0);
        let download = l["downloadSeconds"].as_f64().unwrap_or(0.0);
        let mb = l["blobBytes"].as_f64().unwrap_or(0.0) / 1e6;
        rows.push((
            format!("wasm in Chromium: streamed remote inspection of a {mb:.0} MB image (loopback registry; blob digest on a Web Worker, hashWorker: true)"),
            secs,
        ));
        let one = l["oneThreadSeconds"].as_f64().unwrap_or(0.0);
        rows.push((
            "wasm in Chromium: the same, the blob digest on the page's thread (the default)".into(),
            one,
        ));
        rows.push((
            "wasm in Chromium: the same blobs fetched and discarded (download alone)".into(),
            download,
        ));
        let inflate = l["inflateSeconds"].as_f64().unwrap_or(0.0);
        rows.push((
            "wasm in Chromium: the same blobs downloaded, then inflated + parsed in wasm (no digest)".into(),
            download + inflate,
        ));
        let ui = &l["inspector"];
        let ui_secs = ui["seconds"].as_f64().unwrap_or(0.0);
        rows.push((
            "wasm in Chromium: the same listing in the inspector page (Browse files, streamed)"
                .into(),
            ui_secs,
        ));
        notes.push(format!(
            "streamed inspection, where the time goes: download alone {download:.2}s; inflate + parse in wasm {inflate:.2}s without a digest, {:.2}s with the blob digest and diff ID; the inspector page lists it in {ui_secs:.2}s = {:.2}× the download (first files {:.0} ms after the first byte, WebAssembly.Memory {:.1} MB)",
            l["inflateHashSeconds"].as_f64().unwrap_or(0.0),
            ui_secs / download.max(1e-9),
            ui["firstShownMs"].as_f64().unwrap_or(0.0),
            ui["memory"].as_f64().unwrap_or(0.0) / 1e6
        ));
        let q = &l["hashQueue"];
        notes.push(format!(
            "streamed inspection's blob digest: on a Web Worker ({}): {secs:.2}s = {:.2}× the download, against {one:.2}s = {:.2}× on the page's thread; handing {} chunks to the worker cost the page {:.1} ms, the worker hashed for {:.0} ms, the download waited {:.0} ms ({} times) for the worker, at most {:.1} MiB queued",
            if l["hashedApart"].as_bool() == Some(true) { "used" } else { "NOT used: no Workers" },
            secs / download.max(1e-9),
            one / download.max(1e-9),
            q["chunks"], q["postMs"].as_f64().unwrap_or(0.0), q["hashMs"].as_f64().unwrap_or(0.0), q["waitMs"].as_f64().unwrap_or(0.0), q["waits"],
            q["maxQueuedBytes"].as_f64().unwrap_or(0.0) / 1048576.0
        ));
        notes.push(format!(
            "streamed remote inspection: {} entries listed in {secs:.2}s = {:.2}× the download alone (issue target ≤ 1.1); first entries {:.0} ms after the first layer byte (target ≤ 1000); WebAssembly.Memory {:.1} MB (target ≤ 64); {} bytes stored",
            l["entries"], secs / download.max(1e-9), l["firstEntryMs"].as_f64().unwrap_or(0.0),
            l["memory"].as_f64().unwrap_or(0.0) / 1e6, l["stored"]
        ));
    }
    if let Some(l) = r["remote"].get("slowLink").filter(|l| !l.is_null()) {
        slow_link_rows(l, rows, notes);
    }
    if let Some(b) = r.get("big").filter(|b| !b.is_null()) {
        big_rows(b, rows, notes);
    }
    if let Some(b) = r.get("rebuilt").filter(|b| !b.is_null()) {
        rebuild_rows(b, rows, notes);
    }
    if opts.profile && profile.is_file() {
        let hot = hot_spots(&profile, 15)?;
        let total: f64 = hot.iter().map(|h| h.0).sum();
        eprintln!("bench-wasm: hottest functions of the profiled build (self time, top 15 = {total:.0} ms):");
        for (ms, name) in &hot {
            eprintln!("  {ms:9.1} ms  {name}");
        }
        notes.push(format!("wasm build CPU profile: {}", profile.display()));
    }
    Ok(r)
}

/// The bounded-memory build of a large context (its own tree, so its own reference, measured in the same run).
fn big_rows(b: &Value, rows: &mut Vec<(String, f64)>, notes: &mut Vec<String>) {
    let f = |k: &str| b[k].as_f64().unwrap_or(0.0);
    let (mb, build, reference) = (f("bytes") / 1e6, f("buildSeconds"), f("referenceSeconds"));
    rows.push((
        format!(
            "wasm in Chromium: COPY build of a {mb:.0} MB context of Files, peak WebAssembly.Memory {:.0} MiB",
            f("peakMemory") / 1048576.0
        ),
        build,
    ));
    rows.push((
        format!("tar | gzip -6 | sha256sum of that {mb:.0} MB context (its reference)"),
        reference,
    ));
    // The export reads the stored layer through once (its digest checked) before splicing it: about a second per
    // 50-100 MB here. A few milliseconds means no check ran (a site built before it: see `stale_site`).
    let export = f("exportSeconds");
    rows.push((
        format!(
            "wasm in Chromium: exportTarball of that image (its {:.0} MB stored layer checked, then spliced)",
            f("layerBytes") / 1e6
        ),
        export,
    ));
    notes.push(format!(
        "exportTarball of the large context's image: {:.0} ms, the stored layer read and hashed at {:.0} MB/s",
        export * 1000.0,
        f("layerBytes") / 1e6 / export.max(1e-9)
    ));
    notes.push(format!(
        "large context in the tab: {mb:.0} MB in {} files built in {build:.2}s = {:.2}× its reference \
         {reference:.2}s (issue target ≤ 0.5); peak WebAssembly.Memory {:.1} MiB (target ≤ 256); layer {:.0} MB",
        b["files"],
        build / reference.max(1e-9),
        f("peakMemory") / 1048576.0,
        f("layerBytes") / 1e6
    ));
}

/// Rebuilds of the bench tree in the tab after 1 KB edits (resumed from a checkpoint), beside its floor.
fn rebuild_rows(b: &Value, rows: &mut Vec<(String, f64)>, notes: &mut Vec<String>) {
    let secs = |v: &Value| v["seconds"].as_f64().unwrap_or(0.0);
    let floor = b["floorSeconds"].as_f64().unwrap_or(0.0);
    let edits = b["edits"].as_array().cloned().unwrap_or_default();
    let mean = |v: &[&Value], k: &str| {
        v.iter().map(|e| secs(&e[k])).sum::<f64>() / (v.len().max(1) as f64)
    };
    let (last, random) = match edits.split_first() {
        Some((l, r)) => (vec![l], r.iter().collect::<Vec<_>>()),
        None => (vec![], vec![]),
    };
    rows.push((
        "tar | sha256sum of the bench tree (the floor)".into(),
        floor,
    ));
    rows.push((
        "wasm in Chromium: COPY build, cold (cache on: checkpoints kept)".into(),
        secs(&b["cold"]),
    ));
    rows.push((
        "wasm in Chromium: rebuild, nothing changed".into(),
        secs(&b["unchanged"]),
    ));
    rows.push((
        "wasm in Chromium: rebuild after a 1 KB edit in the last file (resumed)".into(),
        mean(&last, "resumed"),
    ));
    rows.push((
        format!(
            "wasm in Chromium: rebuild after a 1 KB edit at a random place (resumed, mean of {})",
            random.len()
        ),
        mean(&random, "resumed"),
    ));
    let all: Vec<&Value> = edits.iter().collect();
    rows.push((
        "wasm in Chromium: the same edited trees built --no-cache (mean)".into(),
        mean(&all, "fresh"),
    ));
    // The same places edited again and resumed with the layer's hashes on the page's thread (no hash worker).
    if edits.iter().all(|e| e["pageHashed"].is_object()) && !edits.is_empty() {
        rows.push((
            "wasm in Chromium: last-file edit resumed, hashing on the page's thread".into(),
            mean(&last, "pageHashed"),
        ));
        rows.push((
            "wasm in Chromium: random edits resumed, hashing on the page's thread (mean)".into(),
            mean(&random, "pageHashed"),
        ));
    }
    let read = |v: &[&Value]| {
        v.iter()
            .map(|e| e["resumed"]["read"].as_f64().unwrap_or(0.0))
            .sum::<f64>()
            / (v.len().max(1) as f64)
            / 1e6
    };
    let same = edits
        .iter()
        .all(|e| e["resumed"]["layer"] == e["fresh"]["layer"]);
    notes.push(format!(
        "tab rebuilds of the {:.0} MB bench tree: last-file edit {:.2}× the floor {floor:.2}s ({:.1} MB of the context read),          random edit {:.2}× ({:.1} MB read on average), nothing changed {:.2}×; resumed layers identical to --no-cache ones: {same}",
        b["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        mean(&last, "resumed") / floor.max(1e-9),
        read(&last),
        mean(&random, "resumed") / floor.max(1e-9),
        read(&random),
        secs(&b["unchanged"]) / floor.max(1e-9),
    ));
}

/// With `--no-site-build`, whether www/dist's main module is older than the tab's sources (the engine and lw-wasm):
/// the browser rows would then measure an older build (an `exportTarball` row of a few milliseconds was one: a site
/// from before the export checked stored layers).
fn stale_site(root: &Path) -> Option<String> {
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        let mut t = None;
        for e in fs::read_dir(dir).ok()?.flatten() {
            let m = e.metadata().ok()?;
            let this = if m.is_dir() {
                newest(&e.path())
            } else {
                m.modified().ok()
            };
            t = t.max(this);
        }
        t
    }
    let wasm = root.join("www/dist/pkg/lw_wasm_bg.wasm");
    let built = fs::metadata(&wasm).and_then(|m| m.modified()).ok()?;
    let src = ["crates/wasm/src", "crates/wasm/js", "crates/engine/src"]
        .iter()
        .filter_map(|d| newest(&root.join(d)))
        .max()?;
    (src > built).then(|| {
        format!(
            "{} is older than the sources of the tab (--no-site-build): the browser rows measure an older build",
            wasm.display()
        )
    })
}

/// `cargo xtask bench --wasm-only [--quick|--smoke] [--tree-mb N] [--wasm-profile] [--no-site-build]`: the tree, the reference
/// and the browser benchmarks alone; prints a table and writes target/bench-wasm.json.
pub fn standalone(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick" || a == "--smoke");
    let (mb, runs) = if quick { (20, 1) } else { (200, 3) };
    // `--tree-mb N`: another size of the bench tree (the rebuild rows want 64-200 MB also in a quick run).
    let mb = args
        .iter()
        .position(|a| a == "--tree-mb")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(mb);
    let work: PathBuf = crate::repo_root().join("target/bench");
    fs::create_dir_all(&work)?;
    let tree = work.join(format!("tree-{mb}"));
    let bytes = crate::bench::generate_tree(&tree, mb, 42)?;
    let t = tree.display();
    let mut ref_runs = Vec::new();
    for _ in 0..runs.max(3) {
        let s = std::time::Instant::now();
        let st = Command::new("bash")
            .args(["-o", "pipefail", "-c"])
            .arg(format!(
                "tar -C {t} -cf - . | gzip -6 | sha256sum >/dev/null"
            ))
            .status()?;
        if !st.success() {
            bail!("the reference pipeline failed");
        }
        ref_runs.push(s.elapsed().as_secs_f64());
    }
    let reference = median(ref_runs);
    let mut rows = vec![(
        "tar | gzip -6 | sha256sum (reference)".to_string(),
        reference,
    )];
    let mut notes = Vec::new();
    // The native rows #21 asks to see beside the tab's: zstd layers, and BuildKit when its binaries are given.
    crate::bench_tools::zstd_only(&work, &tree, runs, &mut rows, &mut notes)?;
    if let Some(bk) = crate::bench_buildkit::arg(args) {
        crate::bench_buildkit::rows(&work, &tree, &bk, runs, &mut rows, &mut notes)?;
    }
    let opts = Options::from_args(args, runs);
    let raw = run(&work, &tree, reference, &opts, &mut rows, &mut notes)?;
    let mbytes = bytes as f64 / 1e6;
    println!(
        "\nBrowser benchmarks on a generated {mbytes:.0} MB tree (medians of {} runs):\n",
        opts.runs
    );
    crate::bench::print_table(&rows, mbytes, reference);
    for n in &notes {
        println!("- {n}");
    }
    let json = serde_json::json!({
        "tree_bytes": bytes, "runs": opts.runs, "reference_seconds": reference,
        "pipelines": rows.iter().map(|(n, s)| serde_json::json!({"name": n, "seconds": s, "ratio": s / reference})).collect::<Vec<_>>(),
        "notes": notes, "raw": raw,
    });
    let jp = crate::repo_root().join("target/bench-wasm.json");
    fs::write(&jp, serde_json::to_vec_pretty(&json)?)?;
    println!("\nwritten: {}", jp.display());
    Ok(())
}

/// The streamed listing through a loopback link limited to a real network's speed (the registry on loopback is
/// faster than any), next to the download alone through the same link (medians of interleaved rounds).
fn slow_link_rows(l: &Value, rows: &mut Vec<(String, f64)>, notes: &mut Vec<String>) {
    let mbs = l["mbs"].as_f64().unwrap_or(0.0);
    let pick = |k: &str| l[k].as_f64().unwrap_or(0.0);
    let (secs, worker, download) = (
        pick("seconds"),
        pick("workerSeconds"),
        pick("downloadSeconds"),
    );
    // The relay's pacing runs late under load: the rate it reached is what the ratio is against.
    let reached = pick("blobBytes") / download.max(1e-9) / 1e6;
    let link = format!("through a {mbs:.0} MB/s loopback link");
    rows.push((
        format!("wasm in Chromium: the streamed listing {link} (blob digest on the page's thread)"),
        secs,
    ));
    rows.push((
        "wasm in Chromium: the same, the blob digest on a Web Worker (hashWorker: true)".into(),
        worker,
    ));
    rows.push((
        format!("wasm in Chromium: the same blobs fetched and discarded {link}"),
        download,
    ));
    notes.push(format!(
        "streamed remote inspection {link} ({reached:.0} MB/s reached; medians of {} interleaved rounds): {} entries listed in {secs:.2}s = {:.2}× the download alone through it (issue target ≤ 1.1), {worker:.2}s = {:.2}× with the digest on a Web Worker; WebAssembly.Memory {:.1} MB",
        l["rounds"],
        l["entries"],
        secs / download.max(1e-9),
        worker / download.max(1e-9),
        pick("memory") / 1e6
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuild_rows_read_what_bench_wasm_mjs_writes() {
        let build = |s: f64, read: f64, layer: &str| serde_json::json!({"seconds": s, "read": read, "layer": layer});
        let r = serde_json::json!({
            "cold": build(3.0, 100e6, "a"), "unchanged": build(0.03, 0.0, "a"), "bytes": 100e6, "floorSeconds": 0.5,
            "edits": [
                {"path": "d/last", "at": 1, "resumed": build(0.6, 4e6, "b"), "fresh": build(3.2, 100e6, "b"),
                 "pageHashed": build(0.7, 4e6, "b2")},
                {"path": "d/x", "at": 2, "resumed": build(2.0, 80e6, "c"), "fresh": build(3.0, 100e6, "c"),
                 "pageHashed": build(2.2, 80e6, "c2")},
                {"path": "d/y", "at": 3, "resumed": build(1.0, 20e6, "d"), "fresh": build(3.4, 100e6, "d"),
                 "pageHashed": build(1.4, 20e6, "e")},
            ],
        });
        let (mut rows, mut notes) = (Vec::new(), Vec::new());
        rebuild_rows(&r, &mut rows, &mut notes);
        let row = |prefix: &str| {
            rows.iter()
                .find(|(n, _)| n.starts_with(prefix))
                .map(|r| r.1)
                .unwrap_or_else(|| panic!("no row {prefix}: {rows:?}"))
        };
        assert_eq!(row("tar | sha256sum"), 0.5);
        assert_eq!(row("wasm in Chromium: COPY build, cold"), 3.0);
        assert_eq!(row("wasm in Chromium: rebuild, nothing changed"), 0.03);
        assert_eq!(
            row("wasm in Chromium: rebuild after a 1 KB edit in the last"),
            0.6
        );
        assert_eq!(
            row("wasm in Chromium: rebuild after a 1 KB edit at a random"),
            1.5
        );
        assert!((row("wasm in Chromium: the same edited trees") - 3.2).abs() < 1e-9);
        assert_eq!(
            row("wasm in Chromium: last-file edit resumed, hashing on"),
            0.7
        );
        assert!((row("wasm in Chromium: random edits resumed, hashing on") - 1.8).abs() < 1e-9);
        assert!(
            notes[0].contains("identical to --no-cache ones: true"),
            "{notes:?}"
        );
    }
}
