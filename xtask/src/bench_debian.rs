//! Benchmark rows on a Debian bookworm base (the one the end-to-end tests make with debootstrap and cache): the
//! article's nginx Dockerfile cold and warm next to `buildah bud`, and a 1 KB COPY on the resulting image.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::bench_tools::{buildah, have, run, timed};

/// The cached base tar `native-cli/tests/debian_apps.rs` makes (same directory and version string).
fn base_tar() -> PathBuf {
    std::env::var_os("LAYERWRIGHT_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/layerwright-test"))
        .join("debian-bookworm-minbase-v1.tar")
}

const NGINX: &str = "FROM debian:bookworm-local\n\
RUN apt-get update && apt-get install -y --no-install-recommends nginx\n\
COPY index.html /var/www/html/\n\
EXPOSE 80\n\
CMD [\"nginx\", \"-g\", \"daemon off;\"]\n";

/// Appends the rows, or a note saying why they are missing.
pub fn rows(
    work: &Path,
    runs: usize,
    lw: &dyn Fn(&Path) -> Command,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let tar = base_tar();
    if !tar.is_file() {
        notes.push(format!(
            "no Debian base at {} (the debian_apps test makes it): the nginx rows are missing",
            tar.display()
        ));
        return Ok(());
    }
    // The mirror's address as the host resolves it, passed as a docker user would.
    let out = Command::new("getent")
        .args(["ahostsv4", "deb.debian.org"])
        .output()?;
    let Some(ip) = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
    else {
        notes.push("deb.debian.org does not resolve here: the nginx rows are missing".into());
        return Ok(());
    };
    let add_host = format!("deb.debian.org:{ip}");
    let store = work.join("store-debian");
    let _ = fs::remove_dir_all(&store);
    let base_ctx = work.join("debian-base");
    fs::create_dir_all(&base_ctx)?;
    let rootfs = base_ctx.join("rootfs.tar");
    let _ = fs::remove_file(&rootfs);
    if fs::hard_link(&tar, &rootfs).is_err() {
        fs::copy(&tar, &rootfs).context("copying the Debian base")?;
    }
    fs::write(
        base_ctx.join("Dockerfile"),
        "FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n",
    )?;
    run(lw(&store)
        .args(["build", "-q", "-t", "debian:bookworm-local"])
        .arg(&base_ctx))?;
    let ctx = work.join("nginx-ctx");
    fs::create_dir_all(&ctx)?;
    fs::write(ctx.join("index.html"), "<h1>bench</h1>\n")?;
    fs::write(ctx.join("Dockerfile"), NGINX)?;
    // apt-get downloads make a cold run long: one run each.
    let cold_runs = runs.min(1);
    rows.push((
        "layerwright build, nginx on Debian (apt-get, default network), cold".into(),
        timed(cold_runs, || {
            run(lw(&store)
                .args([
                    "build",
                    "-q",
                    "--no-cache",
                    "--add-host",
                    &add_host,
                    "-t",
                    "bench/nginx:1",
                ])
                .arg(&ctx))
        })?,
    ));
    rows.push((
        "layerwright build, nginx on Debian, warm".into(),
        timed(runs, || {
            run(lw(&store)
                .args([
                    "build",
                    "-q",
                    "--add-host",
                    &add_host,
                    "-t",
                    "bench/nginx:1",
                ])
                .arg(&ctx))
        })?,
    ));
    let small = work.join("small-ctx");
    fs::create_dir_all(&small)?;
    fs::write(small.join("small.bin"), vec![b'x'; 1024])?;
    fs::write(
        small.join("Dockerfile"),
        "FROM bench/nginx:1\nCOPY small.bin /var/www/html/\n",
    )?;
    rows.push((
        "layerwright build, 1 KB COPY on the nginx image".into(),
        timed(runs, || {
            run(lw(&store)
                .args(["build", "-q", "--no-cache", "-t", "bench/small:1"])
                .arg(&small))
        })?,
    ));
    if have("buildah") {
        let b = buildah(&work.join("buildah-debian"))?;
        let saved = work.join("debian.tar");
        run(lw(&store)
            .args(["save", "debian:bookworm-local", "-o"])
            .arg(&saved))?;
        run(b()
            .args(["pull", "-q"])
            .arg(format!("oci-archive:{}", saved.display())))?;
        let df = ctx.join("Dockerfile.buildah");
        fs::write(
            &df,
            NGINX.replace("FROM debian:", "FROM docker.io/library/debian:"),
        )?;
        let bud = |extra: &[&str]| {
            let mut c = b();
            c.args([
                "bud",
                "--layers",
                "-q",
                "--add-host",
                &add_host,
                "-t",
                "bench-nginx",
            ])
            .args(extra)
            .arg("-f")
            .arg(&df)
            .arg(&ctx);
            c
        };
        rows.push((
            "buildah bud --isolation chroot, nginx on Debian, cold".into(),
            timed(cold_runs, || run(&mut bud(&["--no-cache"])))?,
        ));
        rows.push((
            "buildah bud --isolation chroot, nginx on Debian, warm".into(),
            timed(runs, || run(&mut bud(&[])))?,
        ));
        notes.push(
            "buildah's chroot isolation shares the host's network; layerwright's RUN has its own (slirp4netns)".into(),
        );
    }
    Ok(())
}
