//! `cargo xtask bench`: a generated 200 MB mixed tree (fixed seed) turned into a layer by our tar + gzip + sha256
//! pipeline, next to `tar | gzip -6 | sha256sum` and friends in the same run; medians, ratios, and JSON.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::Compression;

/// Deterministic generator (splitmix64) so every run and machine gets the same tree.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "layer",
    "image",
    "docker",
    "build",
    "cache",
    "digest",
    "manifest",
    "config",
    "registry",
    "tar",
    "gzip",
    "container",
    "runtime",
    "platform",
    "stage",
    "copy",
    "run",
    "env",
    "arg",
    "label",
    "volume",
    "user",
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "with",
    "fn",
    "let",
    "mut",
    "return",
    "struct",
    "impl",
    "{",
    "}",
    "(",
];

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        v.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        v.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    v.truncate(len);
    v
}

fn random(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Generate about `mb` MB: many small source-like files, medium mixed files and a few large ones.
pub fn generate_tree(dir: &Path, mb: u64, seed: u64) -> Result<u64> {
    let marker = dir.join(".lw-bench-tree");
    let want = format!("{mb}:{seed}");
    if fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return dir_size(dir);
    }
    let _ = fs::remove_dir_all(dir);
    let mut rng = Rng(seed);
    let target = mb * 1_000_000;
    let mut total = 0u64;
    let mut i = 0u64;
    while total < target {
        let sub = dir.join(format!("d{:02}/s{:02}", i % 37, (i / 37) % 11));
        fs::create_dir_all(&sub)?;
        let kind = rng.below(100);
        let data = if kind < 70 {
            let n = 200 + rng.below(16_000) as usize;
            text(&mut rng, n)
        } else if kind < 93 {
            let (n, m) = (
                50_000 + rng.below(300_000) as usize,
                rng.below(150_000) as usize,
            );
            let mut v = text(&mut rng, n);
            v.extend(random(&mut rng, m));
            v
        } else if kind < 98 {
            let n = 200_000 + rng.below(800_000) as usize;
            random(&mut rng, n)
        } else {
            let n = 2_000_000 + rng.below(3_000_000) as usize;
            let mut v = text(&mut rng, n);
            v.extend(random(&mut rng, 1_000_000));
            v
        };
        total += data.len() as u64;
        fs::write(sub.join(format!("f{i:05}.dat")), &data)?;
        i += 1;
    }
    fs::write(&marker, want)?;
    Ok(total)
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            dir_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}

/// Walk `dir` in our canonical order into a gzip layer; returns (digest, diff_id).
pub fn layer_from_dir(dir: &Path, out: impl Write) -> Result<lw_layer::LayerInfo> {
    let mut lw = LayerWriter::new(
        out,
        Compression::Gzip,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    )?;
    fn walk<W: Write>(lw: &mut LayerWriter<W>, root: &Path, rel: &str) -> Result<()> {
        let mut names: Vec<String> = fs::read_dir(root.join(rel))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for n in names {
            if rel.is_empty() && n == ".lw-bench-tree" {
                continue;
            }
            let p = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            let m = fs::symlink_metadata(root.join(&p))?;
            if m.is_dir() {
                lw.tar().append_bytes(&Entry::dir(&p, 0o755), &[])?;
                walk(lw, root, &p)?;
            } else {
                let mut f = fs::File::open(root.join(&p))?;
                lw.tar().append(&Entry::file(&p, 0o644, m.len()), &mut f)?;
            }
        }
        Ok(())
    }
    walk(&mut lw, dir, "")?;
    let (_, info) = lw.finish()?;
    Ok(info)
}

fn sh(script: &str) -> Result<()> {
    let st = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .status()?;
    if !st.success() {
        bail!("`{script}` failed");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> Result<()>>(runs: usize, mut f: F) -> Result<f64> {
    let mut t = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    Ok(median(t))
}

pub fn main(args: &[String]) -> Result<()> {
    // Re-run ourselves in release mode: timings of a debug build mean nothing.
    if std::env::var_os("LW_BENCH_INNER").is_none() {
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(crate::repo_root())
            .args(["run", "--release", "--quiet", "-p", "xtask", "--", "bench"])
            .args(args)
            .env("LW_BENCH_INNER", "1")
            .status()?;
        if !st.success() {
            bail!("benchmark failed");
        }
        return Ok(());
    }
    if args.iter().any(|a| a == "--wasm-only") {
        return crate::bench_wasm::standalone(args);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (mb, runs) = if quick { (20, 3) } else { (200, 3) };
    let work: PathBuf = crate::repo_root().join("target/bench");
    if args.iter().any(|a| a == "--containers-only") {
        return crate::bench_run::standalone(&work, runs);
    }
    if args.iter().any(|a| a == "--serve-only") {
        return crate::bench_serve::standalone(&work, runs);
    }
    let tree = work.join(format!("tree-{mb}"));
    fs::create_dir_all(&work)?;
    eprintln!(
        "bench: generating a {mb} MB mixed tree (seed 42) in {}",
        tree.display()
    );
    let bytes = generate_tree(&tree, mb, 42)?;
    let t = tree.display().to_string();
    let out = work.join("layer.tar.gz");

    let mut rows: Vec<(String, f64)> = Vec::new();
    let reference = time(runs, || {
        sh(&format!(
            "tar -C {t} -cf - . | gzip -6 | sha256sum >/dev/null"
        ))
    })?;
    rows.push(("tar | gzip -6 | sha256sum (reference)".into(), reference));
    if args.iter().any(|a| a == "--copy-only") {
        // The layerwright build rows (cold, unchanged, edits, zstd) with both references, nothing else.
        let floor = time(runs, || {
            sh(&format!("tar -C {t} -cf - . | sha256sum >/dev/null"))
        })?;
        rows.push(("tar | sha256sum (floor, no compression)".into(), floor));
        let mut notes = Vec::new();
        crate::bench_tools::copy_only(&work, &tree, runs, &mut rows, &mut notes)?;
        println!("\nCOPY builds of a generated {:.0} MB tree ({runs} runs each, medians; load average {}):\n", bytes as f64 / 1e6, load_average());
        print_table(&rows, bytes as f64 / 1e6, reference);
        println!(
            "\nratios to the floor: {}",
            rows.iter()
                .filter(|(n, _)| n.contains("rebuild"))
                .map(|(n, s)| format!("{n}: {:.2}", s / floor))
                .collect::<Vec<_>>()
                .join("; ")
        );
        for n in &notes {
            println!("- {n}");
        }
        return Ok(());
    }
    rows.push((
        "layerwright tar+gzip+sha256 (one pass)".into(),
        time(runs, || {
            let f = io::BufWriter::with_capacity(1 << 20, fs::File::create(&out)?);
            layer_from_dir(&tree, f).map(|_| ())
        })?,
    ));
    if Command::new("sh")
        .args(["-c", "command -v pigz"])
        .output()?
        .status
        .success()
    {
        rows.push((
            "tar | pigz -6 | sha256sum".into(),
            time(runs, || {
                sh(&format!(
                    "tar -C {t} -cf - . | pigz -6 | sha256sum >/dev/null"
                ))
            })?,
        ));
    }
    rows.push((
        "tar | sha256sum (floor, no compression)".into(),
        time(runs, || {
            sh(&format!("tar -C {t} -cf - . | sha256sum >/dev/null"))
        })?,
    ));
    let mut notes = Vec::new();
    // The bound: our layer within 2% of `gzip -6`'s output for the same tree.
    let ours = fs::metadata(&out)?.len();
    let gzip6: u64 = String::from_utf8(
        Command::new("sh")
            .args(["-c", &format!("tar -C {t} -cf - . | gzip -6 | wc -c")])
            .output()?
            .stdout,
    )?
    .trim()
    .parse()
    .context("gzip -6 size")?;
    notes.push(format!(
        "compressed size: layerwright {ours} bytes, gzip -6 {gzip6} bytes ({:+.2}%)",
        (ours as f64 / gzip6 as f64 - 1.0) * 100.0
    ));
    if !args.iter().any(|a| a == "--layers-only") {
        crate::bench_tools::run_all(&work, &tree, runs, &mut rows, &mut notes)?;
    }
    if let Some(bk) = crate::bench_buildkit::arg(args) {
        crate::bench_buildkit::rows(&work, &tree, &bk, runs, &mut rows, &mut notes)?;
    }
    let skip_wasm = args
        .iter()
        .any(|a| a == "--layers-only" || a == "--no-wasm");
    if !skip_wasm {
        let opts = crate::bench_wasm::Options::from_args(args, runs);
        crate::bench_wasm::run(&work, &tree, reference, &opts, &mut rows, &mut notes)?;
    }

    // Encoder kernels on the same uncompressed tar, in memory.
    let mut tar = Vec::new();
    {
        let mut w = lw_layer::tar::TarWriter::new(&mut tar, WriteOptions::default());
        let mut n = 0;
        for e in walk_files(&tree)? {
            if n > 64_000_000 {
                break;
            }
            let data = fs::read(&e)?;
            n += data.len();
            let rel = e
                .strip_prefix(&tree)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            w.append_bytes(&Entry::file(&rel, 0o644, 0), &data)?;
        }
        w.finish()?;
    }
    let mb_tar = tar.len() as f64 / 1e6;
    let zlibrs = time(runs, || {
        let mut e = lw_layer::compress::gzip_encoder(Vec::new(), 6);
        e.write_all(&tar)?;
        e.finish()?;
        Ok(())
    })?;
    // Our member encoder as layers use it (1 MiB members; the tuned level 6 and stored incompressible blocks).
    let members = time(runs, || {
        let mut out = Vec::new();
        for m in tar.chunks(1 << 20) {
            out.clear();
            lw_layer::deflate::gzip_member(m, 6, &mut out)?;
        }
        Ok(())
    })?;
    let miniz = time(runs, || {
        let _ = miniz_oxide::deflate::compress_to_vec(&tar, 6);
        Ok(())
    })?;
    // Inflate kernels on the same raw deflate stream (the streamed listing's floor besides SHA-256).
    let raw = miniz_oxide::deflate::compress_to_vec(&tar, 6);
    let inflate_zlibrs = time(runs, || {
        let mut out = Vec::with_capacity(tar.len());
        io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(&raw[..]), &mut out)?;
        Ok(())
    })?;
    let inflate_miniz = time(runs, || {
        miniz_oxide::inflate::decompress_to_vec(&raw)
            .map_err(|e| anyhow::anyhow!("miniz_oxide inflate: {e:?}"))?;
        Ok(())
    })?;
    let sha = time(runs, || {
        let _ = lw_oci::Digest::sha256_of(&tar);
        Ok(())
    })?;

    let mbytes = bytes as f64 / 1e6;
    println!("\nLayer pipeline on a generated {mbytes:.0} MB tree ({runs} runs each, medians):\n");
    print_table(&rows, mbytes, reference);
    println!("\nKernels on {mb_tar:.0} MB of tar in memory, one thread: gzip-6 zlib-rs (flate2) {:.0} MB/s, our layer member encoder {:.0} MB/s, gzip-6 miniz_oxide {:.0} MB/s, inflate zlib-rs {:.0} MB/s, inflate miniz_oxide {:.0} MB/s (of tar), sha256 {:.0} MB/s",
        mb_tar / zlibrs, mb_tar / members, mb_tar / miniz, mb_tar / inflate_zlibrs, mb_tar / inflate_miniz, mb_tar / sha);
    let json = serde_json::json!({
        "tree_bytes": bytes, "runs": runs,
        "pipelines": rows.iter().map(|(n, s)| serde_json::json!({"name": n, "seconds": s, "ratio": s / reference})).collect::<Vec<_>>(),
        "notes": notes,
        "kernels_mb_per_s": {"gzip6_zlib_rs": mb_tar / zlibrs, "layer_members": mb_tar / members, "gzip6_miniz_oxide": mb_tar / miniz, "inflate_zlib_rs": mb_tar / inflate_zlibrs, "inflate_miniz_oxide": mb_tar / inflate_miniz, "sha256": mb_tar / sha},
        "compressed_bytes": {"layerwright": ours, "gzip_6": gzip6},
    });
    for n in &notes {
        println!("- {n}");
    }
    let jp = crate::repo_root().join("target/bench.json");
    fs::write(&jp, serde_json::to_vec_pretty(&json)?).context("writing target/bench.json")?;
    println!("\nwritten: {}", jp.display());
    Ok(())
}

/// The 1-minute load average (from /proc/loadavg), for the record: timings on a shared machine depend on it.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The Markdown table of `rows` (name, median seconds): throughput over `mbytes` and the ratio to `reference`.
pub fn print_table(rows: &[(String, f64)], mbytes: f64, reference: f64) {
    println!("| pipeline | seconds | MB/s | ratio to reference |");
    println!("|---|---:|---:|---:|");
    for (name, secs) in rows {
        println!(
            "| {} | {secs:.2} | {:.0} | {:.2} |",
            name.replace('|', "\\|"),
            mbytes / secs,
            secs / reference
        );
    }
}

pub(crate) fn walk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut names: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        if e.file_type()?.is_dir() {
            out.extend(walk_files(&e.path())?);
        } else {
            out.push(e.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tree_is_deterministic_and_layers_match() {
        let a = tempdir("a");
        let b = tempdir("b");
        let na = generate_tree(&a, 1, 7).unwrap();
        let nb = generate_tree(&b, 1, 7).unwrap();
        assert_eq!(na, nb);
        assert!(na >= 1_000_000);
        let la = layer_from_dir(&a, io::sink()).unwrap();
        let lb = layer_from_dir(&b, io::sink()).unwrap();
        assert_eq!(la, lb, "same tree, same layer digests");
        let _ = fs::remove_dir_all(a);
        let _ = fs::remove_dir_all(b);
    }

    #[test]
    fn layers_of_the_generated_tree_are_within_two_percent_of_gzip_6() {
        // The bound, on a smaller tree from the same generator (xtask tests run in debug: 8 MB is enough
        // for the mix of text, noise and large files).
        let dir = tempdir("ratio");
        generate_tree(&dir, 8, 42).unwrap();
        let ours = layer_from_dir(&dir, io::sink()).unwrap().size;
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("tar -C {} -cf - . | gzip -6 | wc -c", dir.display()),
            ])
            .output()
            .unwrap();
        let gzip6: u64 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            ours * 100 <= gzip6 * 102,
            "layerwright {ours} bytes vs gzip -6 {gzip6} bytes"
        );
        let _ = fs::remove_dir_all(dir);
    }

    fn tempdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("lw-bench-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }
}
