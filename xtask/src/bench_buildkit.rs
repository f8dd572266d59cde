//! `bench --buildkit PATH`: BuildKit's cold COPY build of the bench tree (the same `FROM scratch / COPY . /data/`
//! our rows build) to an OCI tarball, with a buildkitd of its own (own root and socket) started and stopped here.
//! The binaries are not built by the repository: PATH is buildkitd, buildctl, or the directory holding both.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bench_tools::{run, timed};

/// buildkitd and buildctl from `--buildkit PATH` (a directory, or one of the two binaries).
fn binaries(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .with_context(|| format!("--buildkit {}: no directory", path.display()))?
            .to_path_buf()
    };
    let (d, c) = (dir.join("buildkitd"), dir.join("buildctl"));
    for b in [&d, &c] {
        if !b.is_file() {
            bail!(
                "--buildkit {}: {} is missing (buildkitd and buildctl must be side by side)",
                path.display(),
                b.display()
            );
        }
    }
    Ok((d, c))
}

/// A buildkitd of the bench's own, killed (by its pid) when dropped.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--buildkit PATH` from the bench's arguments.
pub fn arg(args: &[String]) -> Option<PathBuf> {
    let i = args.iter().position(|a| a == "--buildkit")?;
    args.get(i + 1).map(PathBuf::from)
}

/// Appends BuildKit's cold COPY build (median of `runs`, its cache pruned before each) to `rows`.
pub fn rows(
    work: &Path,
    tree: &Path,
    path: &Path,
    runs: usize,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let (buildkitd, buildctl) = binaries(path)?;
    let state = work.join("buildkit-state");
    let _ = fs::remove_dir_all(&state);
    fs::create_dir_all(&state)?;
    let sock = format!("unix://{}", state.join("buildkitd.sock").display());
    let log = fs::File::create(work.join("buildkitd.log"))?;
    let child = Command::new(&buildkitd)
        .arg("--root")
        .arg(state.join("root"))
        .args([
            "--addr",
            &sock,
            "--oci-worker=true",
            "--containerd-worker=false",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", buildkitd.display()))?;
    let daemon = Daemon { child };
    let ctl = || {
        let mut c = Command::new(&buildctl);
        c.args(["--addr", &sock]);
        c
    };
    let t = Instant::now();
    while run(ctl().args(["debug", "workers"])).is_err() {
        if t.elapsed() > Duration::from_secs(60) {
            bail!(
                "buildkitd did not answer in 60 s (see {})",
                work.join("buildkitd.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let df = crate::bench_tools::copy_dockerfile(work)?;
    let df_dir = df.parent().context("the Dockerfile's directory")?;
    let out = work.join("built-buildkit.tar");
    let secs = timed(runs, || {
        run(ctl().args(["prune", "--all"]))?;
        run(ctl()
            .args(["build", "--frontend", "dockerfile.v0", "--local"])
            .arg(format!("context={}", tree.display()))
            .arg("--local")
            .arg(format!("dockerfile={}", df_dir.display()))
            .args(["--output"])
            .arg(format!("type=oci,dest={}", out.display())))
    })?;
    rows.push((
        "BuildKit (buildctl + buildkitd), COPY-only, cold, to OCI tarball".into(),
        secs,
    ));
    let size = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    notes.push(format!(
        "BuildKit from {}: cold COPY build {secs:.2}s (its cache pruned before each run), OCI tarball {size} bytes",
        buildkitd.display()
    ));
    let _ = fs::remove_file(&out);
    // Its content store holds a copy of the tree: not kept between benches.
    drop(daemon);
    let _ = fs::remove_dir_all(&state);
    Ok(())
}
