//! Shared by the fault tests (kills, full disk, isolation): a deterministic generator, a store check (every blob
//! hashes to its name, every name resolves), the CLI over one store, and the store's leftovers (temporary files,
//! uploads) a command may leave; the host's (mounts, processes) come from the kit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use layerwright::store::Store;
use lw_oci::{media, Digest, DigestHasher};

pub use lw_test_kit::process::{mounts_under, processes_with};

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
    // Spliced blobs (a resumed layer: an earlier blob's start and a tail) read through the store.
    for alg in std::fs::read_dir(root.join("spliced"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let alg_name = alg.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(alg.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Ok(d) = Digest::parse(&format!("{alg_name}:{name}")) else {
                c.problems.push(format!(
                    "a spliced file with a name that is no digest: {name}"
                ));
                continue;
            };
            let mut bytes = Vec::new();
            let read = store
                .open_blob(&d)
                .and_then(|mut b| Ok(std::io::Read::read_to_end(&mut b, &mut bytes)?));
            let mut h = DigestHasher::new(d.algorithm());
            h.update(&bytes);
            if let Err(e) = read {
                c.problems.push(format!("spliced blob {d}: {e:#}"));
            } else if h.finish() != d {
                c.problems
                    .push(format!("spliced blob {d} does not hash to its name"));
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

/// A build context of 12 files of 1 MiB of text-like bytes from `seed` (a COPY that takes a while to compress and
/// whose layer does not fit in a megabyte), with `dockerfile`.
pub fn text_context(dir: &Path, seed: u64, dockerfile: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut rng = Lcg(seed);
    for i in 0..12 {
        let data: Vec<u8> = (0..1 << 20)
            .map(|_| b"abcdefghij klmnop\n"[rng.below(18) as usize])
            .collect();
        std::fs::write(ctx.join(format!("f{i}.txt")), data).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// The CLI over one store, with its own docker config (credentials).
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

    /// `login HOST -u u --password-stdin` with `token` (serve takes its token as any user's password).
    pub fn login(&self, host: &str, token: &str) {
        let mut login = self.cmd(&["login", host, "-u", "u", "--password-stdin"]);
        let mut child = login.stdin(Stdio::piped()).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(token.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "login to {host}");
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
