//! Crash consistency: every writing command is killed (SIGKILL) at random moments, 20 times each, and after each
//! kill the store still verifies (every blob hashes to its name, every name resolves to a manifest whose config
//! and layers are there), a file the command writes outside the store is whole or absent, and the same command
//! then succeeds. serve's store, which `push` writes to, must verify as well. The moments come from a fixed seed,
//! so a failure can be replayed.

mod common;
#[path = "common/serve.rs"]
mod serve_fixtures;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_files, lw_ok, make_busybox_image};
use layerwright::store::Store;
use lw_oci::{media, Digest, DigestHasher};
use serve_fixtures::Served;

const KILLS: usize = 20;

/// A small deterministic generator (no clock): the kill moments of a run are the same every time.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// What a store check found.
#[derive(Debug, Default)]
struct Check {
    blobs: usize,
    names: usize,
    temporaries: usize,
    problems: Vec<String>,
}

/// Verify every blob's digest and every name's manifest, config and layers.
fn verify(root: &Path) -> Check {
    let mut c = Check::default();
    let store = Store::open(root).unwrap();
    for alg in std::fs::read_dir(root.join("blobs")).unwrap().flatten() {
        let alg_name = alg.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(alg.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                c.temporaries += 1;
                continue;
            }
            let Ok(d) = Digest::parse(&format!("{alg_name}:{name}")) else {
                c.problems
                    .push(format!("a blob file with a name that is no digest: {name}"));
                continue;
            };
            let bytes = std::fs::read(f.path()).unwrap();
            let mut h = DigestHasher::new(d.algorithm());
            h.update(&bytes);
            if h.finish() != d {
                c.problems
                    .push(format!("blob {d} does not hash to its name"));
            }
            c.blobs += 1;
        }
    }
    let recs = match store.records() {
        Ok(r) => r,
        Err(e) => {
            c.problems.push(format!("index.json: {e:#}"));
            return c;
        }
    };
    for r in recs {
        c.names += 1;
        let what = r
            .name
            .clone()
            .unwrap_or_else(|| r.descriptor.digest.to_string());
        if media::is_index(&r.descriptor.media_type) {
            if store.read_document(&r.descriptor.digest).is_err() {
                c.problems.push(format!("{what}: its index is missing"));
            }
            continue;
        }
        match store.resolve(&r.descriptor, None) {
            Ok(img) => {
                for l in &img.manifest.layers {
                    if !store.has_blob(&l.digest) {
                        c.problems
                            .push(format!("{what}: layer {} is missing", l.digest));
                    }
                }
            }
            Err(e) => c.problems.push(format!("{what}: {e:#}")),
        }
    }
    c
}

struct Cli {
    root: PathBuf,
    docker_config: PathBuf,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_layerwright"));
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .env("DOCKER_CONFIG", &self.docker_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    fn ok(&self, args: &[&str]) {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Start `args`, kill it after `after`; whether it had already finished.
    fn kill_after(&self, args: &[&str], after: Duration) -> bool {
        let mut child = self.cmd(args).spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < after {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

/// A context whose COPY takes a while to compress: 12 files of 1 MiB of text-like bytes.
fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut rng = Lcg(7);
    for i in 0..12 {
        let data: Vec<u8> = (0..1 << 20)
            .map(|_| b"abcdefghij klmnop\n"[rng.below(18) as usize])
            .collect();
        std::fs::write(ctx.join(format!("f{i}.txt")), data).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /data/\n").unwrap();
    ctx
}

#[test]
fn every_writing_command_killed_at_random_leaves_a_store_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "kill/base:1", &[busybox_files(&[])]);
    let ctx = context(tmp.path());
    let served_root = tmp.path().join("served");
    let srv = Served::start(&served_root, |_| {});
    let host = srv.host();
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    let mut login = cli.cmd(&["login", &host, "-u", "k", "--password-stdin"]);
    let mut child = login.stdin(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(srv.token.as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    // Something to pull, save and load.
    cli.ok(&["build", "-q", "-t", "kill/built:1", ctx.to_str().unwrap()]);
    cli.ok(&["push", "kill/built:1", &format!("{host}/kill/src:1")]);
    let saved = tmp.path().join("saved.tar");
    cli.ok(&["save", "-o", saved.to_str().unwrap(), "kill/built:1"]);

    let mut rng = Lcg(0x5eed);
    let out = tmp.path().join("out.tar");
    // Pulls go to a store emptied before each one, so each pull downloads every blob again.
    let pull_root = tmp.path().join("pulls");
    let pull_cli = Cli {
        root: pull_root.clone(),
        docker_config: cli.docker_config.clone(),
    };
    let mut report = Vec::new();
    for command in [
        "build", "save", "load", "tag", "rmi", "prune", "pull", "push",
    ] {
        let (mut killed, mut finished) = (0, 0);
        let mut window: Option<u64> = None;
        for i in 0..KILLS {
            let name = format!("kill/t{i}:1");
            let (ctx_s, saved_s, out_s) = (
                ctx.to_str().unwrap(),
                saved.to_str().unwrap(),
                out.to_str().unwrap(),
            );
            let remote = format!("{host}/kill/pushed:{i}");
            let pull_src = format!("{host}/kill/src:1");
            // Each build differs (a file changes), so the kill lands in real work, not a cache hit.
            if command == "build" {
                std::fs::write(ctx.join("changing.txt"), format!("{i}")).unwrap();
            }
            if command == "rmi" {
                cli.ok(&["tag", "kill/base:1", &name]);
            }
            let args: Vec<&str> = match command {
                "build" => vec!["build", "-q", "--no-cache", "-t", &name, ctx_s],
                "save" => vec!["save", "-o", out_s, "kill/built:1"],
                "load" => vec!["load", "-i", saved_s],
                "tag" => vec!["tag", "kill/base:1", &name],
                "rmi" => vec!["rmi", &name],
                "prune" => vec!["prune"],
                "pull" => vec!["pull", &pull_src],
                _ => vec!["push", "kill/built:1", &remote],
            };
            let (cli, root) = if command == "pull" {
                (&pull_cli, &pull_root)
            } else {
                (&cli, &root)
            };
            let mut garbage = 0;
            let mut fresh = || {
                let _ = std::fs::remove_file(&out);
                if command == "pull" {
                    let _ = std::fs::remove_dir_all(&pull_root);
                }
                if command == "prune" {
                    // Something to prune: an untagged image with its own 12 MB layer.
                    garbage += 1;
                    std::fs::write(ctx.join("changing.txt"), format!("garbage {i} {garbage}"))
                        .unwrap();
                    cli.ok(&["build", "-q", "--no-cache", ctx_s]);
                }
            };
            // Within the command's own run time on this machine (measured by an unkilled run of it first), so
            // the kills land mid-work whether the machine is fast or busy.
            let window = *window.get_or_insert_with(|| {
                if command == "prune" {
                    // What earlier commands left behind goes first, so the measured prune is a typical one.
                    cli.ok(&["prune"]);
                }
                fresh();
                let t = Instant::now();
                cli.ok(&args);
                if command == "rmi" {
                    cli.ok(&["tag", "kill/base:1", &name]);
                }
                (t.elapsed().as_millis() as u64).max(5)
            });
            fresh();
            let after = Duration::from_millis(rng.below(window));
            if cli.kill_after(&args, after) {
                finished += 1;
            } else {
                killed += 1;
            }
            let c = verify(root);
            assert!(
                c.problems.is_empty(),
                "{command} killed after {after:?}: {:?}",
                c.problems
            );
            let served = verify(&served_root);
            assert!(
                served.problems.is_empty(),
                "serve's store after {command}: {:?}",
                served.problems
            );
            if command == "save" && out.exists() {
                // Whole or absent: a file there must load.
                let check = tmp.path().join("check");
                let _ = std::fs::remove_dir_all(&check);
                lw_ok(&check, &["load", "-i", out_s]);
            }
            // The same command then succeeds (an rmi the kill did not stop has nothing left to remove: tag again).
            if command == "rmi" {
                cli.ok(&["tag", "kill/base:1", &name]);
            }
            cli.ok(&args);
            // What the command then made verifies too.
            assert!(
                verify(root).problems.is_empty(),
                "{command}: after the rerun"
            );
        }
        let c = verify(if command == "pull" { &pull_root } else { &root });
        report.push(format!(
            "{command}: {killed} killed, {finished} finished first, corrupt stores 0, temporary files left {}",
            c.temporaries
        ));
    }
    for r in &report {
        println!("kills: {r}");
    }
}
