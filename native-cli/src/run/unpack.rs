//! Unpacking image layers into a directory safely (no path escapes, whiteouts honoured, owners, modes, links,
//! devices, xattrs), and the snapshot cache of unpacked stacks keyed by chain ID.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use lw_engine::host::BlobStore;
use lw_layer::tar::TarReader;
use lw_layer::EntryKind;
use lw_oci::{Descriptor, Digest};

use super::fsutil;

/// Make sure every parent of the clean relative `path` is a real directory under `root` (creating missing ones),
/// never passing through a symlink. Returns the host path of `path` itself.
fn safe_parent(root: &Path, path: &str) -> Result<PathBuf> {
    let mut cur = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                bail!("layer entry {path:?} passes through the symlink {part:?}")
            }
            Ok(_) => bail!("layer entry {path:?}: parent {part:?} is not a directory"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).with_context(|| format!("creating {}", cur.display()))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    cur.push(parts[parts.len() - 1]);
    Ok(cur)
}

/// Apply one layer (an uncompressed tar stream) on top of the directory `root`.
pub fn apply_tar(root: &Path, tar: impl Read) -> Result<()> {
    let mut r = TarReader::new(tar);
    // Paths this layer wrote, so an opaque whiteout only hides what lower layers had.
    let mut written: HashSet<String> = HashSet::new();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    while let Some(e) = r.next_entry().map_err(|e| anyhow!("reading layer: {e}"))? {
        if e.path.is_empty() {
            // The root itself: keep our root's metadata.
            continue;
        }
        apply_entry(root, &e, &mut r, &mut written, &mut dir_times)
            .with_context(|| format!("layer entry {}", e.path))?;
    }
    for (d, t) in dir_times.iter().rev() {
        // A later layer entry may have removed the directory again.
        let _ = fsutil::lutimes(d, *t, 0);
    }
    Ok(())
}

fn apply_entry<R: Read>(
    root: &Path,
    e: &lw_layer::Entry,
    r: &mut TarReader<R>,
    written: &mut HashSet<String>,
    dir_times: &mut Vec<(PathBuf, i64)>,
) -> Result<()> {
    {
        let host = safe_parent(root, &e.path)?;
        let base = lw_layer::path::base(&e.path);
        let parent = lw_layer::path::parent(&e.path);
        if base == ".wh..wh..opq" {
            let dir = host.parent().expect("entry has a parent");
            for c in fs::read_dir(dir)? {
                let c = c?;
                let name = c.file_name().to_string_lossy().into_owned();
                let rel = if parent.is_empty() {
                    name
                } else {
                    format!("{parent}/{name}")
                };
                if !written.contains(&rel) {
                    fsutil::remove_tree(&c.path())?;
                }
            }
            return Ok(());
        }
        if let Some(victim) = base.strip_prefix(".wh.") {
            fsutil::remove_tree(&host.with_file_name(victim))?;
            return Ok(());
        }
        written.insert(e.path.clone());
        let existing = fs::symlink_metadata(&host).ok();
        match (&existing, &e.kind) {
            (Some(m), EntryKind::Dir) if m.is_dir() => {}
            (Some(_), _) => fsutil::remove_tree(&host)?,
            (None, _) => {}
        }
        match &e.kind {
            EntryKind::Dir => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    fs::create_dir(&host)?;
                }
            }
            EntryKind::File => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&host)
                    .with_context(|| format!("creating {}", e.path))?;
                io::copy(&mut r.data(), &mut f).with_context(|| format!("writing {}", e.path))?;
            }
            EntryKind::Symlink(t) => std::os::unix::fs::symlink(t, &host)?,
            EntryKind::Hardlink(t) => {
                let target = safe_parent(root, t)?;
                match fs::symlink_metadata(&target) {
                    Ok(m) if !m.is_dir() => {}
                    _ => bail!(
                        "layer entry {:?} links to {t:?}, which is not a file of the layer stack",
                        e.path
                    ),
                }
                fs::hard_link(&target, &host)?;
                // A hard link shares the target's metadata; nothing more to set.
                return Ok(());
            }
            EntryKind::CharDevice { major, minor } => {
                fsutil::mknod(&host, libc::S_IFCHR, e.mode, *major, *minor)?
            }
            EntryKind::BlockDevice { major, minor } => {
                fsutil::mknod(&host, libc::S_IFBLK, e.mode, *major, *minor)?
            }
            EntryKind::Fifo => fsutil::mknod(&host, libc::S_IFIFO, e.mode, 0, 0)?,
        }
        fsutil::lchown(&host, e.uid, e.gid).with_context(|| format!("chown {}", e.path))?;
        if !matches!(e.kind, EntryKind::Symlink(_)) {
            fs::set_permissions(&host, fs::Permissions::from_mode(e.mode & 0o7777))?;
        }
        for (k, v) in &e.xattrs {
            let _ = fsutil::lsetxattr(&host, k, v);
        }
        if e.is_dir() {
            dir_times.push((host, e.mtime));
        } else {
            fsutil::lutimes(&host, e.mtime, 0)?;
        }
    }
    Ok(())
}

/// Apply a layer blob from the store (any supported compression).
pub fn apply_blob(root: &Path, store: &dyn BlobStore, layer: &Descriptor) -> Result<()> {
    let c = lw_oci::media::layer_compression(&layer.media_type)
        .ok_or_else(|| anyhow!("{} is not a layer media type", layer.media_type))?;
    let blob = store.open(&layer.digest).map_err(|e| anyhow!("{e}"))?;
    let dec = lw_layer::compress::decoder(blob, c)?;
    apply_tar(root, dec).with_context(|| format!("unpacking layer {}", layer.digest))
}

/// Unpacked layer stacks under `dir`, one directory per chain ID, never modified once made.
pub struct Snapshots {
    pub dir: PathBuf,
}

impl Snapshots {
    fn path(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.encoded())
    }

    /// The directory holding `layers` unpacked, making it (from the longest cached prefix) when needed.
    pub fn get(
        &self,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        store: &dyn BlobStore,
    ) -> Result<PathBuf> {
        if layers.len() != diff_ids.len() {
            bail!(
                "the stage has {} layers but {} diff IDs",
                layers.len(),
                diff_ids.len()
            );
        }
        fs::create_dir_all(&self.dir)?;
        let chains: Vec<Digest> = (1..=diff_ids.len())
            .map(|n| lw_oci::chainid::chain_id(&diff_ids[..n]).expect("non-empty"))
            .collect();
        let want = match chains.last() {
            Some(c) => self.path(c),
            None => self.dir.join("empty"),
        };
        if want.is_dir() {
            return Ok(want);
        }
        let start = (1..=chains.len())
            .rev()
            .find(|&n| self.path(&chains[n - 1]).is_dir())
            .unwrap_or(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            super::unique_suffix()
        ));
        let guard = super::RemoveOnDrop(Some(tmp.clone()));
        if start == 0 {
            fs::create_dir(&tmp)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        } else {
            fsutil::copy_tree(&self.path(&chains[start - 1]), &tmp)?;
        }
        for l in &layers[start..] {
            apply_blob(&tmp, store, l)?;
        }
        match fs::rename(&tmp, &want) {
            Ok(()) => {}
            // Another build made it meanwhile; theirs is as good as ours.
            Err(_) if want.is_dir() => {}
            Err(e) => return Err(e).with_context(|| format!("saving snapshot {}", want.display())),
        }
        drop(guard);
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lw_layer::tar::{TarWriter, WriteOptions};
    use lw_layer::Entry;

    fn tar(entries: &[(Entry, &[u8])]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
        for (e, d) in entries {
            w.append_bytes(e, d).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn whiteouts_and_symlink_escapes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let l1 = tar(&[
            (Entry::dir("a", 0o755), b""),
            (Entry::file("a/x", 0o644, 1), b"x"),
            (Entry::file("a/y", 0o644, 1), b"y"),
            (Entry::file("b", 0o600, 2), b"bb"),
            (Entry::symlink("evil", "/"), b""),
        ]);
        apply_tar(r, &l1[..]).unwrap();
        let l2 = tar(&[
            (Entry::dir("a", 0o700), b""),
            (Entry::file("a/.wh..wh..opq", 0, 0), b""),
            (Entry::file("a/z", 0o644, 1), b"z"),
            (Entry::file(".wh.b", 0, 0), b""),
        ]);
        apply_tar(r, &l2[..]).unwrap();
        assert!(r.join("a/z").exists() && !r.join("a/x").exists() && !r.join("b").exists());
        assert_eq!(
            fs::metadata(r.join("a")).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        let l3 = tar(&[(Entry::file("evil/tmp/escaped", 0o644, 1), b"!")]);
        assert!(apply_tar(r, &l3[..]).is_err());
        assert!(!Path::new("/tmp/escaped").exists());
        let l4 = tar(&[(Entry::hardlink("stolen", "evil/etc/hostname"), b"")]);
        assert!(apply_tar(r, &l4[..]).is_err());
        assert!(!r.join("stolen").exists());
        let mut owned = Entry::file("owned", 0o4750, 1);
        (owned.uid, owned.gid, owned.mtime) = (7, 8, 1234);
        apply_tar(
            r,
            &tar(&[(owned, b"o"), (Entry::hardlink("owned2", "owned"), b"")])[..],
        )
        .unwrap();
        use std::os::unix::fs::MetadataExt;
        let m = fs::symlink_metadata(r.join("owned2")).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777, m.mtime(), m.nlink()),
            (7, 8, 0o4750, 1234, 2)
        );
    }
}
