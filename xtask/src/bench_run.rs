//! Benchmark rows for containers: `layerwright run --rm IMAGE true` start-to-exit time next to `podman run --rm`
//! on the same small busybox image (podman with private vfs storage and runc, never /etc).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::bench_tools::{have, run, timed};

/// Rows for `run`: a one-file busybox image built with `layerwright build`, run with `--network none` and with the
/// default network, and (when installed) the same image in podman.
pub fn rows(
    work: &Path,
    runs: usize,
    lw: &dyn Fn(&Path) -> Command,
    rows: &mut Vec<(String, f64)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() || !have("runc") {
        notes.push("busybox-static or runc is not installed: the run rows are missing".into());
        return Ok(());
    }
    let ctx = work.join("run-ctx");
    fs::create_dir_all(&ctx)?;
    fs::copy(busybox, ctx.join("busybox"))?;
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"true\"]\n",
    )?;
    let store = work.join("store-run");
    let _ = fs::remove_dir_all(&store);
    run(lw(&store)
        .args(["build", "-q", "-t", "bench/run:1"])
        .arg(&ctx))?;
    // The first run unpacks the image's snapshot; the rows time what follows.
    run(lw(&store).args(["run", "--rm", "--network", "none", "bench/run:1"]))?;
    for net in ["none", "default"] {
        rows.push((
            format!("layerwright run --rm --network {net} (busybox true)"),
            timed(runs.max(5), || {
                run(lw(&store).args(["run", "--rm", "--network", net, "bench/run:1"]))
            })?,
        ));
    }
    if have("podman") {
        let tar = work.join("run-image.tar");
        let _ = fs::remove_file(&tar);
        run(lw(&store).args(["save", "bench/run:1", "-o"]).arg(&tar))?;
        let pod = podman(&work.join("podman-run"))?;
        run(pod().arg("load").arg("-i").arg(&tar))?;
        run(pod().args(["run", "--rm", "--network", "none", "bench/run:1"]))?;
        rows.push((
            "podman run --rm --network none (busybox true; vfs, runc)".into(),
            timed(runs.max(5), || {
                run(pod().args(["run", "--rm", "--network", "none", "bench/run:1"]))
            })?,
        ));
        let _ = pod().args(["system", "reset", "--force"]).output();
    } else {
        notes.push("podman is not installed: its run row is missing".into());
    }
    let _ = fs::remove_dir_all(&store);
    Ok(())
}

/// podman with private storage and configuration under `dir`.
fn podman(dir: &Path) -> Result<impl Fn() -> Command> {
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
            dir.display()
        ),
    )?;
    // Without CAP_SYS_RESOURCE podman's default ulimits fail: stay at our hard limits (as the tests do).
    let limit = |flag: &str| -> String {
        Command::new("sh")
            .args(["-c", &format!("ulimit -H{flag}")])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .replace("unlimited", "-1")
            })
            .unwrap_or_else(|_| "1024".into())
    };
    let nproc = limit("u")
        .parse::<i64>()
        .map(|h| if h < 0 { 32768 } else { h.min(32768) })
        .unwrap_or(1024);
    fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={n}:{n}\", \"nproc={nproc}:{nproc}\"]\nnetns = \"none\"\n\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{d}/events.log\"\n\
             runtime = \"runc\"\ntmp_dir = \"{d}/tmp\"\n",
            n = limit("n"),
            d = dir.display()
        ),
    )?;
    fs::write(
        dir.join("registries.conf"),
        "unqualified-search-registries = []\n",
    )?;
    let dir = dir.to_path_buf();
    Ok(move || {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--runtime",
                "runc",
                "--root",
            ])
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"));
        c
    })
}

/// `cargo xtask bench --containers-only`: just these rows.
pub fn standalone(work: &Path, runs: usize) -> Result<()> {
    crate::bench_tools::standalone(work, runs, rows)
}
