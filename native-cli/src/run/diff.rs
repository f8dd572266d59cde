//! The runc side of RUN's changes: metadata scans of a host directory, and the change set (lw_layer::diff, shared
//! with the tab's VM; new and changed entries and whiteouts, as BuildKit's differ writes them) written as one
//! deterministic gzip layer with the files read from the directory.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use lw_engine::host::BlobStore;
pub use lw_layer::diff::{changes, layer_name, Change, Meta, Scan};
use lw_layer::diff::{changes_with, write_changes, ChangeSource};
use lw_layer::tar::WriteOptions;
use lw_layer::LayerWriter;
use lw_oci::media::Compression;
use lw_oci::{Descriptor, Digest};

use super::fsutil;

pub fn scan(root: &Path) -> Result<Scan> {
    let mut out = Scan::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Scan) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let host = e.path();
        let m = fs::symlink_metadata(&host)?;
        if m.file_type().is_socket() {
            // Sockets are not part of an image (docker skips them too).
            continue;
        }
        let link = if m.file_type().is_symlink() {
            Some(fs::read_link(&host)?.to_string_lossy().into_owned())
        } else {
            None
        };
        let meta = Meta {
            kind: m.mode() & libc::S_IFMT,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            rdev: m.rdev(),
            link,
        };
        let is_dir = m.is_dir();
        out.insert(path.clone(), meta);
        if is_dir {
            walk(&host, &path, out)?;
        }
    }
    Ok(())
}

/// Write the changes from `before` to `after` (a scan of `root`) as a gzip layer into `store`; `None` when nothing
/// changed.
pub fn write_layer(
    root: &Path,
    lower: Option<&Path>,
    before: &Scan,
    after: &Scan,
    epoch: Option<i64>,
    store: &mut dyn BlobStore,
) -> Result<Option<(Descriptor, Digest)>> {
    // `lower` holds the files as they were before the step (the overlay's lower directory): a file copied up
    // without a change (a new hard link to it) stays out of the layer, as in BuildKit's overlay differ.
    let mut same = |p: &str| same_file_content(&lower.unwrap_or(root).join(p), &root.join(p));
    let list = match lower {
        Some(_) => changes_with(before, after, Some(&mut same)),
        None => changes(before, after),
    };
    if list.is_empty() {
        return Ok(None);
    }
    let sink = store.create().map_err(|e| anyhow!("{e}"))?;
    let mut lw = LayerWriter::new(sink, Compression::Gzip, WriteOptions { clamp_mtime: epoch })?;
    write_changes(&mut lw, &list, after, epoch, &mut HostFiles { root })
        .context("writing the step's layer")?;
    let (sink, info) = lw.finish()?;
    sink.commit(&info.digest).map_err(|e| anyhow!("{e}"))?;
    Ok(Some((info.descriptor(), info.diff_id)))
}

/// Whether two regular files (never followed through a symlink) hold the same bytes; unreadable counts as
/// different.
fn same_file_content(a: &Path, b: &Path) -> bool {
    let open = |p: &Path| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
    };
    let (Ok(mut fa), Ok(mut fb)) = (open(a), open(b)) else {
        return false;
    };
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let Ok(n) = read_full(&mut fa, &mut ba) else {
            return false;
        };
        let Ok(m) = read_full(&mut fb, &mut bb) else {
            return false;
        };
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n < ba.len() {
            return true;
        }
    }
}

/// Fill `buf` as far as the file goes; the count read.
fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Entries' contents from the host directory the step ran in.
struct HostFiles<'a> {
    root: &'a Path,
}

impl ChangeSource for HostFiles<'_> {
    fn data(&mut self, p: &str) -> Result<Box<dyn Read + '_>, lw_layer::Error> {
        let host = self.root.join(p);
        // Never follow a symlink the step put where the file was scanned.
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&host)
            .map_err(|e| std::io::Error::new(e.kind(), format!("reading {p}: {e}")))?;
        Ok(Box::new(f))
    }

    fn xattrs(&mut self, p: &str) -> BTreeMap<String, Vec<u8>> {
        fsutil::lxattrs(&self.root.join(p))
    }
}
