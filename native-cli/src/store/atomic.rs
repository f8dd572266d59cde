//! The store's file primitives: uniquely named temporary files (named after the process that made them, so a
//! later command can tell a dead writer's leftovers) and atomic writes (temp file, fsync, rename, fsync the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    write_atomic_via(dir, path, bytes)
}

/// [`write_atomic`] with the temp file in `staging` (on the same file system): the store's `tmp/`, which every
/// command sweeps of a killed process's files, for directories too large to sweep (the step cache).
pub fn write_atomic_via(staging: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    let mut tmp = tempfile_in(staging)?;
    let written = tmp
        .1
        .write_all(bytes)
        .and_then(|_| tmp.1.sync_all())
        .and_then(|_| fs::rename(&tmp.0, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp.0);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    sync_dir(dir);
    Ok(())
}

pub(super) fn sync_dir(dir: &Path) {
    // Directory fsync makes the rename durable; some file systems refuse it, which is not an error for us.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether a temporary file's name (`.tmp-PID-...`, see [`tempfile_in`]) says a process that is gone made it.
pub(super) fn made_by_dead_process(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(".tmp-")
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// A uniquely named new file in `dir`.
pub fn tempfile_in(dir: &Path) -> Result<(PathBuf, File)> {
    for attempt in 0..1000u32 {
        let name = format!(".tmp-{}-{}-{attempt}", std::process::id(), unique());
        let p = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating a temporary file in {}", dir.display()))
            }
        }
    }
    bail!("could not create a temporary file in {}", dir.display())
}

/// A number no other call in this process returns (the clock and a counter), for temporary names.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 48)
}
