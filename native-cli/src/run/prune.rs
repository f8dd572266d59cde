//! Reclaiming RUN's disk use under the store: unpacked layer snapshots no image needs, temporary trees, and cache
//! mounts; all behind the RUN lock, which running steps hold shared so a concurrent build is never disturbed.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::Path;

use anyhow::{Context as _, Result};

use super::{cachemount, fsutil};
use crate::store::Store;

/// The store's RUN lock (`run/lock`): shared by running steps, exclusive for pruning.
pub struct RunLock(#[allow(dead_code)] File);

fn open_lock(root: &Path) -> Result<File> {
    fs::create_dir_all(root.join("run"))?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("run/lock"))
        .context("opening the RUN lock")
}

impl RunLock {
    /// Taken by every RUN step for its whole run (waits only while a prune is removing snapshots).
    pub fn shared(root: &Path) -> Result<RunLock> {
        let f = open_lock(root)?;
        f.lock_shared().context("locking run/lock")?;
        Ok(RunLock(f))
    }

    /// For pruning: `None` when a RUN step is running now.
    pub fn try_exclusive(root: &Path) -> Result<Option<RunLock>> {
        let f = open_lock(root)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(RunLock(f))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e).context("locking run/lock"),
        }
    }
}

/// What a prune of RUN state did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Snapshot directories removed.
    pub snapshots: usize,
    pub bytes: u64,
    /// A RUN step was running: nothing was touched.
    pub busy: bool,
}

/// The chain IDs of every layer prefix of the store's images: the snapshots worth keeping for later builds.
fn wanted_chains(store: &Store) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for r in store.records()? {
        let Ok(img) = store.resolve(&r.descriptor, None) else {
            continue;
        };
        let ids = &img.config.rootfs.diff_ids;
        for n in 1..=ids.len() {
            if let Some(c) = lw_oci::chainid::chain_id(&ids[..n]) {
                out.insert(c.encoded().to_string());
            }
        }
    }
    Ok(out)
}

/// Remove RUN snapshots that no image of the store has as a layer prefix (or every one with `all`), plus
/// unfinished ones; skipped entirely while a RUN step runs. Call after the images and blobs are pruned.
pub fn prune_snapshots(store: &Store, all: bool) -> Result<Pruned> {
    let Some(_lock) = RunLock::try_exclusive(store.root())? else {
        return Ok(Pruned {
            busy: true,
            ..Default::default()
        });
    };
    let keep = if all {
        BTreeSet::new()
    } else {
        wanted_chains(store)?
    };
    let mut out = Pruned::default();
    let dir = store.root().join("run/snapshots");
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        out.bytes += fsutil::tree_size(&e.path());
        fsutil::remove_tree(&e.path())
            .with_context(|| format!("removing snapshot {}", e.path().display()))?;
        out.snapshots += 1;
    }
    Ok(out)
}

/// Remove the store's temporary files unless a RUN step is using them (its container root lives there).
pub fn clean_tmp(store: &Store) -> Result<bool> {
    match RunLock::try_exclusive(store.root())? {
        Some(_lock) => store.clean_tmp(),
        None => Ok(false),
    }
}

/// `builder prune`: every RUN snapshot and every cache mount no running step holds.
pub fn prune_builder(store: &Store) -> Result<(Pruned, cachemount::Cleared)> {
    let snaps = prune_snapshots(store, true)?;
    let caches = cachemount::clear(&store.root().join("cache-mounts"))?;
    Ok((snaps, caches))
}

/// Remove every cached unpacked layer stack (they are remade on demand); returns how many there were.
pub fn remove_snapshots(store: &Store) -> Result<usize> {
    Ok(prune_snapshots(store, true)?.snapshots)
}

/// What a killed build left of its RUN steps: `lw-run-PID-*` work trees in `tmp` whose process is gone, with
/// their runc container (killed and deleted: the step's processes go too) and their mounts (overlay root, bind
/// and cache mounts). A tree is removed only once nothing is mounted under it, so removal never reaches through
/// a bind mount into a cache directory or the host. Called before each step, so nothing outlives the next build.
pub fn reap_dead_steps(tmp: &Path, runtime: &super::runtime::Runtime) {
    let Ok(rd) = fs::read_dir(tmp) else {
        return;
    };
    for e in rd.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = id
            .strip_prefix("lw-run-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || super::container::pid_alive(pid) {
            continue;
        }
        runtime.kill(&id, "KILL");
        runtime.delete(&id);
        let work = e.path();
        // Deepest first, so a mount inside the overlay root goes before the root.
        let mut under = mounts_under(&work);
        under.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for m in under {
            drop(super::UnmountOnDrop(Some(m)));
        }
        if mounts_under(&work).is_empty() {
            let _ = fsutil::remove_tree(&work);
        }
    }
}

/// Mount points at or under `dir` (from /proc/self/mounts, whose octal escapes are undone).
fn mounts_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(|p| {
            std::path::PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .filter(|p| p.starts_with(dir))
        .collect()
}
