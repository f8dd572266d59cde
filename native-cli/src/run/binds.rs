//! `RUN --mount=type=bind`: the engine's resolved sources unpacked through the snapshot cache and mounted
//! read-only, or, when writable, through a throwaway overlay (or copy) whose writes are discarded after the step.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use lw_engine::host::{BindSource, BlobStore};

use super::{fsutil, mount_overlay, unpack, UnmountOnDrop};

/// The host path to bind for `src`: the snapshot itself when read-only; a scratch view under `work` when writable.
/// Overlays made here are unmounted by the guards pushed to `unmounts` (drop them before removing `work`).
pub(crate) fn prepare(
    snapshots: &unpack::Snapshots,
    src: &BindSource,
    readonly: bool,
    store: &dyn BlobStore,
    work: &Path,
    use_overlay: bool,
    unmounts: &mut Vec<UnmountOnDrop>,
) -> Result<PathBuf> {
    let root = snapshots.get(&src.layers, &src.diff_ids, store)?;
    // Symlinks in the source path are resolved inside the unpacked tree, never on the host.
    let path = fsutil::resolve_in_root(&root, &src.path)?;
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(_) => bail!("bind source {} does not exist", src.path),
    };
    if readonly {
        return Ok(path);
    }
    let scratch = work.join(format!("bind-{}", src.mount));
    fs::create_dir(&scratch)?;
    if !meta.is_dir() {
        let copy = scratch.join("file");
        fs::copy(&path, &copy).with_context(|| format!("copying bind source {}", src.path))?;
        use std::os::unix::fs::MetadataExt;
        fsutil::lchown(&copy, meta.uid(), meta.gid())?;
        return Ok(copy);
    }
    if use_overlay {
        let (upper, ow, merged) = (
            scratch.join("upper"),
            scratch.join("work"),
            scratch.join("merged"),
        );
        for d in [&upper, &ow, &merged] {
            fs::create_dir(d)?;
        }
        if mount_overlay(&path, &upper, &ow, &merged) {
            unmounts.push(UnmountOnDrop(Some(merged.clone())));
            return Ok(merged);
        }
        fs::remove_dir(&merged)?;
    }
    let copy = scratch.join("copy");
    fsutil::copy_tree(&path, &copy).with_context(|| format!("copying bind source {}", src.path))?;
    Ok(copy)
}
