//! Shared by the fault tests (kills, full disk, isolation): a deterministic generator, a store check (every blob
//! hashes to its name, every name resolves), the CLI over one store, and the host's leftovers (temporary files,
//! mounts, processes) a command may leave. Include it with `#[path = "common/kills.rs"] mod kills;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use layerwright::store::Store;
use lw_oci::{media, Digest, DigestHasher};

pub const KILLS: usize = 20;

/// A small deterministic generator (no clock): the kill moments of a run are the same every time.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// What a store check found.
#[derive(Debug, Default)]
pub struct Check {
    pub blobs: usize,
    pub names: usize,
    pub temporaries: usize,
    pub problems: Vec<String>,
}

/// Verify every blob's digest and every name's manifest, config and layers.
pub fn verify(root: &Path) -> Check {
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

pub struct Cli {
    pub root: PathBuf,
    pub docker_config: PathBuf,
}

impl Cli {
    pub fn cmd(&self, args: &[&str]) -> Command {
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

    pub fn ok(&self, args: &[&str]) {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Start `args`, kill it after `after`; whether it had already finished.
    pub fn kill_after(&self, args: &[&str], after: Duration) -> bool {
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

/// Temporary files under the store: `.tmp-*` anywhere outside unpacked snapshots and containers, and anything in
/// `tmp/` other than registry uploads (`uploads`, judged separately: a live server's sessions belong there) and
/// runc's state directory (but not a container's state in it).
pub fn temporaries(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if name.starts_with(".tmp-") {
                out.push(p.clone());
            }
            if is_dir
                && !matches!(
                    name.as_str(),
                    "snapshots" | "containers" | "tmp" | "cache-mounts"
                )
            {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    if let Ok(rd) = std::fs::read_dir(root.join("tmp")) {
        out.extend(
            rd.flatten()
                .filter(|e| e.file_name() != "uploads" && e.file_name() != "runc-state")
                .map(|e| e.path()),
        );
    }
    // runc's state directory stays; a container's state in it is a leftover.
    if let Ok(rd) = std::fs::read_dir(root.join("tmp/runc-state")) {
        out.extend(rd.flatten().map(|e| e.path()));
    }
    out
}

/// Files in the registry's upload directory.
pub fn uploads(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("tmp/uploads"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Mounts whose mount point or source mention `under`.
pub fn mounts_under(under: &Path) -> Vec<String> {
    let s = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let u = under.to_string_lossy().into_owned();
    s.lines()
        .filter(|l| l.contains(&u))
        .map(String::from)
        .collect()
}

/// Processes (other than this one) whose command line mentions `marker`: a RUN step's or a runtime's leftovers.
pub fn processes_with(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) {
            out.push(format!("{pid}: {cmd}"));
        }
    }
    out
}
