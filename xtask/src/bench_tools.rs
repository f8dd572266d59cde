//! Whole-tool benchmarks for `cargo xtask bench`: `layerwright build` (cold, no change, one file changed) next to
//! buildah, registry pull + verify + save next to `skopeo copy`, and a 20-step RUN build cold and warm next to
//! buildah (and, in bench_debian, nginx on Debian). Every external tool runs against private state in target/bench; the registry listens on 127.0.0.1.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub(crate) fn run(c: &mut Command) -> Result<()> {
    let out = c.output().with_context(|| format!("{c:?}"))?;
    if !out.status.success() {
        bail!("{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Peak resident memory of a finished child, from wait4's rusage (kilobytes on Linux).
fn run_rss(c: &mut Command) -> Result<u64> {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(c.get_program())
        .args(c.get_args())
        .envs(
            c.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stderr);
            Ok(s.lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0))
        }
        Ok(o) => bail!("{c:?} failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => {
            run(c)?;
            Ok(0)
        }
    }
}

pub(crate) fn timed<F: FnMut() -> Result<()>>(runs: usize, mut f: F) -> Result<f64> {
    let mut t = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(t[t.len() / 2])
}

/// Private containers/storage configuration for buildah (never /etc).
pub(crate) fn buildah(dir: &Path) -> Result<impl Fn() -> Command> {
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
            dir.display()
        ),
    )?;
    fs::write(
        dir.join("containers.conf"),
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n",
    )?;
    let dir = dir.to_path_buf();
    Ok(move || {
        let mut c = Command::new("buildah");
        c.env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("BUILDAH_ISOLATION", "chroot")
            .args(["--storage-driver", "vfs", "--root"])
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"));
        c
    })
}

pub(crate) struct Registry(Child, u16, PathBuf);

impl Registry {
    pub(crate) fn port(&self) -> u16 {
        self.1
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = fs::remove_dir_all(&self.2);
    }
}

pub(crate) fn start_registry(work: &Path) -> Result<Registry> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = work.join(format!("registry-{port}"));
    fs::create_dir_all(dir.join("data"))?;
    let cfg = dir.join("config.yml");
    fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let reg = Registry(child, port, dir);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("docker-registry did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(reg)
}

/// Overwrite 1 KB of `path` at `at` (clamped to the file) with bytes that differ from what was there.
fn edit_1k(path: &Path, at: u64) -> Result<Vec<u8>> {
    let mut data = fs::read(path)?;
    let before = data.clone();
    let start = (at as usize).min(data.len().saturating_sub(1024));
    let end = (start + 1024).min(data.len());
    for b in &mut data[start..end] {
        *b = b.wrapping_add(1);
    }
    fs::write(path, &data)?;
    Ok(before)
}

/// Rebuilds after a 1 KB edit inside an existing file: at 5 places drawn from a fixed seed (the mean), and in the
/// tree's last file (the layer's last member). The floor to compare with is `tar | sha256sum`.
fn edit_rows(
    tree: &Path,
    lw: &dyn Fn(&Path) -> Command,
    store: &Path,
    df: &Path,
    rows: &mut Vec<(String, f64)>,
) -> Result<()> {
    let mut files = crate::bench::walk_files(tree)?;
    // The generator's marker is not tree content: editing it would make the next run generate the tree again.
    files.retain(|f| !f.ends_with(".lw-bench-tree"));
    let rebuild = |path: &Path, at: u64| -> Result<f64> {
        let before = edit_1k(path, at)?;
        let s = Instant::now();
        let r = run(lw(store)
            .args(["build", "-q", "-t", "bench/copy:1", "-f"])
            .arg(df)
            .arg(tree));
        let t = s.elapsed().as_secs_f64();
        fs::write(path, before)?;
        r.map(|_| t)
    };
    // The last file first: the step's last layer is then the unchanged tree's. Each edit is undone after its
    // rebuild, so the next rebuild differs from the last layer written in two places, and from the one before it
    // in one (the store keeps a few of a step's latest resume records and takes the best).
    let last = files.last().context("an empty tree")?;
    let last_member = rebuild(last, 0)?;
    let mut rng = crate::bench::Rng(7);
    let mut total = 0.0;
    for _ in 0..5 {
        let f = &files[rng.below(files.len() as u64) as usize];
        let at = rng.below(fs::metadata(f)?.len().max(1));
        total += rebuild(f, at)?;
    }
    rows.push((
        "layerwright rebuild after a 1 KB edit at a random place (mean of 5)".into(),
        total / 5.0,
    ));
    rows.push((
        "layerwright rebuild after a 1 KB edit in the last file (last member)".into(),
        last_member,
    ));
    Ok(())
}

/// The zstd rows: a cold COPY build with `--output ...,compression=zstd` next to `tar | zstd -3 | sha256sum`, and
/// the layer's size against `zstd -3`'s for the same tree.
fn zstd_rows(
    work: &Path,
    tree: &Path,
    runs: usize,
    lw: &dyn Fn(&Path) -> Command,
    df: &Path,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let store = work.join("store-zstd");
    let out = work.join("built-zstd.tar");
    rows.push((
        "layerwright build --compression zstd, COPY-only, cold, to OCI tarball".into(),
        timed(runs, || {
            let _ = fs::remove_dir_all(&store);
            run(lw(&store)
                .args(["build", "-q", "--no-cache", "-t", "bench/zstd:1", "-f"])
                .arg(df)
                .arg("--output")
                .arg(format!("type=oci,dest={},compression=zstd", out.display()))
                .arg(tree))
        })?,
    ));
    if !have("zstd") {
        notes.push("zstd is not installed: the `zstd -3` row and size are missing".into());
        return Ok(());
    }
    let t = tree.display();
    rows.push((
        "tar | zstd -3 | sha256sum".into(),
        timed(runs, || {
            run(Command::new("bash").args([
                "-o",
                "pipefail",
                "-c",
                &format!("tar -C {t} -cf - . | zstd -3 -q -c | sha256sum >/dev/null"),
            ]))
        })?,
    ));
    // The layer is the store's largest blob.
    let mut ours = 0;
    for e in fs::read_dir(store.join("blobs/sha256"))? {
        ours = ours.max(e?.metadata()?.len());
    }
    let o = Command::new("sh")
        .args(["-c", &format!("tar -C {t} -cf - . | zstd -3 -q -c | wc -c")])
        .output()?;
    let zstd3: u64 = String::from_utf8(o.stdout)?
        .trim()
        .parse()
        .context("zstd -3 size")?;
    notes.push(format!(
        "zstd layer size: layerwright {ours} bytes, zstd -3 {zstd3} bytes ({:+.2}%)",
        (ours as f64 / zstd3 as f64 - 1.0) * 100.0
    ));
    Ok(())
}

/// The release `layerwright` binary, built first (a no-op when it is current).
fn release_cli() -> Result<PathBuf> {
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(crate::repo_root())
            .args(["build", "--release", "--quiet", "-p", "layerwright"]),
    )?;
    // The binary cargo just built: under CARGO_TARGET_DIR when one is set (each builder has its own).
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                crate::repo_root().join(d)
            }
        })
        .unwrap_or_else(|| crate::repo_root().join("target"));
    Ok(target_dir.join("release/layerwright"))
}

/// The COPY-only Dockerfile every COPY row builds (in its own directory: the tree is the context).
pub(crate) fn copy_dockerfile(work: &Path) -> Result<PathBuf> {
    let df_dir = work.join("copy-df");
    fs::create_dir_all(&df_dir)?;
    let df = df_dir.join("Dockerfile");
    fs::write(&df, "FROM scratch\nCOPY . /data/\n")?;
    Ok(df)
}

/// The release CLI as `layerwright --root ROOT ...`, a store per call.
fn cli_at() -> Result<impl Fn(&Path) -> Command> {
    let bin = release_cli()?;
    Ok(move |root: &Path| {
        let mut c = Command::new(&bin);
        c.arg("--root").arg(root);
        c
    })
}

/// The zstd rows alone (for `bench --wasm-only`, which has no other native build rows).
pub fn zstd_only(
    work: &Path,
    tree: &Path,
    runs: usize,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let lw = cli_at()?;
    let df = copy_dockerfile(work)?;
    zstd_rows(work, tree, runs, &lw, &df, rows, notes)
}

/// The COPY-only build rows: cold to an OCI tarball (with its peak memory), unchanged, one file added, the 1 KB
/// edits, and zstd.
fn copy_rows(
    work: &Path,
    tree: &Path,
    runs: usize,
    lw: &dyn Fn(&Path) -> Command,
    df: &Path,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let out = work.join("built.tar");
    let store = work.join("store-copy");

    // Cold COPY-only build straight to an OCI tarball (fresh store, no cache), and its peak memory.
    let mut peak_kb = 0;
    let cold = timed(runs, || {
        let _ = fs::remove_dir_all(&store);
        let kb = run_rss(
            lw(&store)
                .args(["build", "-q", "--no-cache", "-t", "bench/copy:1", "-f"])
                .arg(df)
                .arg("--output")
                .arg(format!("type=oci,dest={}", out.display()))
                .arg(tree),
        )?;
        peak_kb = peak_kb.max(kb);
        Ok(())
    })?;
    rows.push((
        "layerwright build, COPY-only, cold, to OCI tarball".into(),
        cold,
    ));
    notes.push(format!(
        "peak RSS of the cold native build: {} MB",
        peak_kb / 1024
    ));
    rows.push((
        "layerwright rebuild, nothing changed".into(),
        timed(runs, || {
            run(lw(&store)
                .args(["build", "-q", "-t", "bench/copy:1", "-f"])
                .arg(df)
                .arg(tree))
        })?,
    ));
    // The in-file edits first, while the step's last layer is the unchanged tree's: the new file below is made
    // near the tree's start, so a rebuild after it resumes there.
    let mut edits = Vec::new();
    edit_rows(tree, lw, &store, df, &mut edits)?;
    let probe = tree.join("d00/s00/bench-edit.txt");
    let mut n = 0u32;
    rows.push((
        "layerwright rebuild after changing one 1 KB file".into(),
        timed(runs, || {
            n += 1;
            fs::write(&probe, format!("{n:01024}"))?;
            run(lw(&store)
                .args(["build", "-q", "-t", "bench/copy:1", "-f"])
                .arg(df)
                .arg(tree))
        })?,
    ));
    let _ = fs::remove_file(&probe);
    rows.extend(edits);
    zstd_rows(work, tree, runs, lw, df, rows, notes)
}

/// The COPY rows alone (`bench --copy-only`): cold, unchanged, the edits and zstd.
pub fn copy_only(
    work: &Path,
    tree: &Path,
    runs: usize,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let lw = cli_at()?;
    let df = copy_dockerfile(work)?;
    copy_rows(work, tree, runs, &lw, &df, rows, notes)
}

/// Appends (name, seconds) rows; `reference` is the `tar | gzip -6 | sha256sum` time of the same tree.
pub fn run_all(
    work: &Path,
    tree: &Path,
    runs: usize,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let lw = cli_at()?;
    let df = copy_dockerfile(work)?;
    copy_rows(work, tree, runs, &lw, &df, rows, notes)?;
    let store = work.join("store-copy");

    if have("buildah") {
        let b = buildah(&work.join("buildah"))?;
        let bout = work.join("buildah.tar");
        rows.push((
            "buildah bud (COPY-only) + push oci-archive".into(),
            timed(runs, || {
                run(b()
                    .args(["bud", "--layers=false", "-q", "-t", "bench-copy", "-f"])
                    .arg(&df)
                    .arg(tree))?;
                let _ = fs::remove_file(&bout);
                run(b()
                    .args(["push", "bench-copy"])
                    .arg(format!("oci-archive:{}", bout.display())))?;
                run(b().args(["rmi", "-a", "-f"]))
            })?,
        ));
    } else {
        notes.push("buildah is not installed: its rows are missing".into());
    }

    // Pull + verify + save from a local registry, next to skopeo copy.
    if have("docker-registry") && have("skopeo") {
        let reg = start_registry(work)?;
        let remote = format!("127.0.0.1:{}/bench/copy:1", reg.1);
        run(lw(&store).args(["push", "-q", "bench/copy:1", &remote]))?;
        let pulled = work.join("store-pull");
        let ptar = work.join("pulled.tar");
        rows.push((
            "layerwright copy registry → oci-archive (pull + verify + save)".into(),
            timed(runs, || {
                let _ = fs::remove_dir_all(&pulled);
                run(lw(&pulled)
                    .args(["copy", &remote])
                    .arg(format!("oci-archive:{}", ptar.display())))
            })?,
        ));
        let star = work.join("skopeo.tar");
        rows.push((
            "skopeo copy registry → oci-archive".into(),
            timed(runs, || {
                let _ = fs::remove_file(&star);
                run(Command::new("skopeo")
                    .args([
                        "copy",
                        "--src-tls-verify=false",
                        &format!("docker://{remote}"),
                    ])
                    .arg(format!("oci-archive:{}", star.display())))
            })?,
        ));
    }

    // 20 RUN steps on a busybox base, cold and warm, next to buildah --isolation chroot.
    if Path::new("/bin/busybox").exists() && have("runc") {
        let base_ctx = work.join("bb-ctx");
        fs::create_dir_all(base_ctx.join("bin"))?;
        fs::copy("/bin/busybox", base_ctx.join("bin/busybox"))?;
        for a in ["sh", "echo", "cat", "ls", "true"] {
            let l = base_ctx.join("bin").join(a);
            if !l.exists() {
                std::os::unix::fs::symlink("busybox", &l)?;
            }
        }
        fs::write(
            base_ctx.join("Dockerfile"),
            "FROM scratch\nCOPY bin/ /bin/\nENV PATH=/bin\n",
        )?;
        let rstore = work.join("store-run");
        let _ = fs::remove_dir_all(&rstore);
        run(lw(&rstore)
            .args(["build", "-q", "-t", "bench/bb:1"])
            .arg(&base_ctx))?;
        let run_ctx = work.join("run-ctx");
        fs::create_dir_all(&run_ctx)?;
        let mut steps = String::from("FROM bench/bb:1\n");
        for i in 0..20 {
            steps.push_str(&format!("RUN echo step {i} > /f{i} && cat /f{i}\n"));
        }
        fs::write(run_ctx.join("Dockerfile"), &steps)?;
        rows.push((
            "layerwright build, 20 RUN steps, cold".into(),
            timed(runs, || {
                run(lw(&rstore)
                    .args(["build", "-q", "--no-cache", "-t", "bench/run:1"])
                    .arg(&run_ctx))
            })?,
        ));
        rows.push((
            "layerwright build, 20 RUN steps, warm".into(),
            timed(runs, || {
                run(lw(&rstore)
                    .args(["build", "-q", "-t", "bench/run:1"])
                    .arg(&run_ctx))
            })?,
        ));
        if have("buildah") {
            let b = buildah(&work.join("buildah-run"))?;
            let bbtar = work.join("bb.tar");
            run(lw(&rstore).args(["save", "bench/bb:1", "-o"]).arg(&bbtar))?;
            run(b()
                .args(["pull", "-q"])
                .arg(format!("oci-archive:{}", bbtar.display())))?;
            let df = run_ctx.join("Dockerfile.buildah");
            fs::write(
                &df,
                steps.replace("FROM bench/bb:1", "FROM docker.io/bench/bb:1"),
            )?;
            rows.push((
                "buildah bud --isolation chroot, 20 RUN steps, cold".into(),
                timed(runs, || {
                    run(b()
                        .args([
                            "bud",
                            "--layers",
                            "--no-cache",
                            "-q",
                            "-t",
                            "bench-run",
                            "-f",
                        ])
                        .arg(&df)
                        .arg(&run_ctx))
                })?,
            ));
            rows.push((
                "buildah bud --isolation chroot, 20 RUN steps, warm".into(),
                timed(runs, || {
                    run(b()
                        .args(["bud", "--layers", "-q", "-t", "bench-run", "-f"])
                        .arg(&df)
                        .arg(&run_ctx))
                })?,
            ));
        }
    }
    crate::bench_debian::rows(work, runs, &lw, rows, notes)?;
    crate::bench_run::rows(work, runs, &lw, rows, notes)?;
    crate::bench_serve::rows(work, runs, &lw, rows, notes)?;
    Ok(())
}

/// Rows a `--*-only` benchmark adds: (work, runs, the CLI for a store, rows, notes).
type RowsFn = fn(
    &Path,
    usize,
    &dyn Fn(&Path) -> Command,
    &mut Vec<(String, f64)>,
    &mut Vec<String>,
) -> Result<()>;

/// A `--*-only` benchmark: the release CLI, then only `rows`, printed as a table with its notes.
pub fn standalone(work: &Path, runs: usize, rows: RowsFn) -> Result<()> {
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(crate::repo_root())
            .args(["build", "--release", "--quiet", "-p", "layerwright"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                crate::repo_root().join(d)
            }
        })
        .unwrap_or_else(|| crate::repo_root().join("target"));
    let bin = target.join("release/layerwright");
    let lw = |root: &Path| {
        let mut c = Command::new(&bin);
        c.arg("--root").arg(root);
        c
    };
    fs::create_dir_all(work)?;
    let (mut rows_, mut notes) = (Vec::new(), Vec::new());
    rows(work, runs, &lw, &mut rows_, &mut notes)?;
    println!("| row | median |\n|---|---|");
    for (n, s) in &rows_ {
        println!("| {n} | {:.0} ms |", s * 1000.0);
    }
    for n in &notes {
        println!("- {n}");
    }
    Ok(())
}
