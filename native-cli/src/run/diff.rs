//! Changes a RUN made to its root file system: a metadata scan before and after, compared entry by entry, and
//! written as one deterministic gzip layer (new and changed entries and whiteouts, as BuildKit's differ writes them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use lw_build::host::BlobStore;
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, EntryKind, LayerWriter};
use lw_oci::media::Compression;
use lw_oci::{Descriptor, Digest};

use super::fsutil;

/// What we remember of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `S_IFMT` bits.
    pub kind: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
    pub link: Option<String>,
}

/// Every path under a root (clean, relative; the root itself excluded) with its metadata.
pub type Scan = BTreeMap<String, Meta>;

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

/// One entry of the change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write this path as it is now.
    Put,
    /// `.wh.NAME` for a removed path.
    Whiteout,
}

fn is_dir(m: &Meta) -> bool {
    m.kind == libc::S_IFDIR
}

/// Compare two scans: (path, change) in layer order.
pub fn changes(before: &Scan, after: &Scan) -> Vec<(String, Change)> {
    let mut put: BTreeSet<String> = BTreeSet::new();
    for (p, a) in after {
        match before.get(p) {
            None => {
                put.insert(p.clone());
            }
            Some(b) if is_dir(a) && is_dir(b) => {
                if (a.mode, a.uid, a.gid) != (b.mode, b.uid, b.gid) {
                    // A directory's times change with its children, which are diffed on their own.
                    put.insert(p.clone());
                }
            }
            Some(b) => {
                // A new hard link to an earlier file changes only its link count (and ctime): BuildKit keeps the
                // earlier name out of the layer, and the new name is written as a file of its own.
                let only_linked = a.nlink > b.nlink
                    && Meta {
                        ctime: b.ctime,
                        nlink: b.nlink,
                        ..a.clone()
                    } == *b;
                if a != b && !only_linked {
                    put.insert(p.clone());
                }
            }
        }
    }
    let mut out: Vec<(String, Change)> = Vec::new();
    for p in before.keys() {
        if after.contains_key(p) {
            continue;
        }
        let parent = lw_layer::path::parent(p);
        // BuildKit's snapshot differs never write an opaque marker: a directory emptied in place, or removed and
        // made again, gets one whiteout per entry it lost. Under a removed (or replaced) parent the parent's own
        // record covers it.
        let parent_kept = parent.is_empty()
            || (after.get(parent).is_some_and(is_dir) && before.get(parent).is_some_and(is_dir));
        if parent_kept {
            out.push((p.clone(), Change::Whiteout));
        }
    }
    // Parents of everything we write, so the layer stands on its own.
    let mut parents: BTreeSet<String> = BTreeSet::new();
    for p in put.iter().chain(out.iter().map(|(p, _)| p)) {
        let mut q = lw_layer::path::parent(p);
        while !q.is_empty() {
            parents.insert(q.to_string());
            q = lw_layer::path::parent(q);
        }
    }
    put.extend(parents);
    out.extend(put.into_iter().map(|p| (p, Change::Put)));
    // In the order of the paths themselves, a whiteout where its victim was (`d/.wh.b` after `d/a`), as BuildKit
    // walks the snapshot.
    out.sort_by(|a, b| lw_layer::path::cmp_components(&a.0, &b.0));
    out
}

/// The name an entry has in the layer.
fn layer_name(p: &str, c: &Change) -> String {
    match c {
        Change::Put => p.to_string(),
        Change::Whiteout => {
            let parent = lw_layer::path::parent(p);
            let base = lw_layer::path::base(p);
            if parent.is_empty() {
                format!(".wh.{base}")
            } else {
                format!("{parent}/.wh.{base}")
            }
        }
    }
}

/// Write the changes from `before` to `after` (a scan of `root`) as a gzip layer into `store`; `None` when nothing
/// changed.
pub fn write_layer(
    root: &Path,
    before: &Scan,
    after: &Scan,
    epoch: Option<i64>,
    store: &mut dyn BlobStore,
) -> Result<Option<(Descriptor, Digest)>> {
    let list = changes(before, after);
    if list.is_empty() {
        return Ok(None);
    }
    let sink = store.create().map_err(|e| anyhow!("{e}"))?;
    let mut lw = LayerWriter::new(sink, Compression::Gzip, WriteOptions { clamp_mtime: epoch })?;
    let mut first_link: HashMap<(u64, u64), String> = HashMap::new();
    for (p, c) in &list {
        let name = layer_name(p, c);
        let mut e = match c {
            // Mode 0, as BuildKit (containerd's archive writer) writes its whiteout markers.
            Change::Whiteout => Entry::file(&name, 0, 0),
            Change::Put => {
                let m = &after[p];
                entry_for(root, p, m, &mut first_link)?
            }
        };
        e.mtime = match (epoch, c) {
            (Some(t), _) => t,
            (None, Change::Put) => after[p].mtime.0,
            (None, _) => 0,
        };
        if e.kind == EntryKind::File && *c == Change::Put {
            let host = root.join(p);
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&host)
                .with_context(|| format!("reading {p}"))?;
            let mut data = f.take(e.size);
            lw.tar()
                .append(&e, &mut data)
                .with_context(|| format!("adding {p} to the layer"))?;
        } else {
            lw.tar().append_bytes(&e, &[])?;
        }
    }
    let (sink, info) = lw.finish()?;
    sink.commit(&info.digest).map_err(|e| anyhow!("{e}"))?;
    Ok(Some((info.descriptor(), info.diff_id)))
}

fn entry_for(
    root: &Path,
    p: &str,
    m: &Meta,
    first_link: &mut HashMap<(u64, u64), String>,
) -> Result<Entry> {
    let host: PathBuf = root.join(p);
    let kind = match m.kind {
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink(m.link.clone().unwrap_or_default()),
        libc::S_IFREG => {
            if m.nlink > 1 {
                if let Some(first) = first_link.get(&(m.dev, m.ino)) {
                    EntryKind::Hardlink(first.clone())
                } else {
                    first_link.insert((m.dev, m.ino), p.to_string());
                    EntryKind::File
                }
            } else {
                EntryKind::File
            }
        }
        libc::S_IFCHR => EntryKind::CharDevice {
            major: fsutil::dev_major(m.rdev),
            minor: fsutil::dev_minor(m.rdev),
        },
        libc::S_IFBLK => EntryKind::BlockDevice {
            major: fsutil::dev_major(m.rdev),
            minor: fsutil::dev_minor(m.rdev),
        },
        libc::S_IFIFO => EntryKind::Fifo,
        _ => bail!("{p}: sockets cannot be stored in a layer"),
    };
    let ft = fs::symlink_metadata(&host)
        .map_err(|e| anyhow!("{p}: {e}"))?
        .file_type();
    if ft.is_socket() {
        bail!("{p}: sockets cannot be stored in a layer");
    }
    Ok(Entry {
        path: p.to_string(),
        size: if kind == EntryKind::File { m.size } else { 0 },
        kind,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        mtime: m.mtime.0,
        xattrs: fsutil::lxattrs(&host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: u32, ino: u64) -> Meta {
        Meta {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: (0, 0),
            ctime: (0, 0),
            dev: 1,
            ino,
            nlink: 1,
            rdev: 0,
            link: None,
        }
    }

    #[test]
    fn change_set() {
        let d = libc::S_IFDIR;
        let f = libc::S_IFREG;
        let mut before = Scan::new();
        before.insert("a".into(), meta(d, 1));
        before.insert("a/old".into(), meta(f, 2));
        before.insert("b".into(), meta(d, 3));
        before.insert("b/x".into(), meta(f, 4));
        before.insert("c".into(), meta(d, 5));
        before.insert("c/gone".into(), meta(d, 6));
        before.insert("c/gone/deep".into(), meta(f, 7));
        before.insert("c/keep".into(), meta(f, 11));
        before.insert("d".into(), meta(d, 12));
        before.insert("d/b".into(), meta(f, 13));
        let mut after = Scan::new();
        after.insert("a".into(), meta(d, 1));
        after.insert("a/new".into(), meta(f, 8));
        after.insert("b".into(), meta(d, 9));
        after.insert("b/y".into(), meta(f, 10));
        after.insert("c".into(), meta(d, 5));
        after.insert("c/keep".into(), meta(f, 11));
        after.insert("d".into(), meta(d, 12));
        after.insert("d/a".into(), meta(f, 14));
        after.insert("d/c".into(), meta(f, 15));
        let got: Vec<String> = changes(&before, &after)
            .iter()
            .map(|(p, c)| layer_name(p, c))
            .collect();
        assert_eq!(
            got,
            [
                // Emptied in place (a) or made again (b): one whiteout per lost entry, no opaque marker.
                "a",
                "a/new",
                "a/.wh.old",
                "b",
                "b/.wh.x",
                "b/y",
                // A removed directory: one whiteout, none for what it held.
                "c",
                "c/.wh.gone",
                // A whiteout stands where its victim stood.
                "d",
                "d/a",
                "d/.wh.b",
                "d/c"
            ]
        );
    }
}
