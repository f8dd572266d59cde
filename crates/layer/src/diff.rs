//! Changes a RUN made to a root file system, shared by every RUN executor (runc natively, the tab's VM): metadata
//! scans before and after are compared entry by entry (new and changed entries and whiteouts) and
//! written as one deterministic layer. Where the scans come from (a host directory, the 9p server's memory) is the
//! caller's business; the bytes of the layer depend only on the scans and the files' contents. The change set is
//! BuildKit's differ's: new and changed entries and whiteouts, never an opaque marker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};

use crate::entry::{Entry, EntryKind};
use crate::{Error, LayerWriter};

/// `S_IFMT` and the file-type bits, as Linux has them.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// Linux's `major()` of a `dev_t` (glibc's encoding).
pub fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

/// Linux's `minor()` of a `dev_t`.
pub fn dev_minor(rdev: u64) -> u32 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32
}

/// Linux's `makedev()`.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    ((ma & 0xfffff000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffffff00) << 12) | (mi & 0xff)
}

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

/// One entry of the change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write this path as it is now.
    Put,
    /// `.wh.NAME` for a removed path.
    Whiteout,
}

fn is_dir(m: &Meta) -> bool {
    m.kind == S_IFDIR
}

/// Compare two scans: (path, change) in layer order.
pub fn changes(before: &Scan, after: &Scan) -> Vec<(String, Change)> {
    changes_with(before, after, None)
}

/// Whether a file that is no longer the same inode (copied up by overlayfs) is unchanged, as BuildKit's overlay
/// differ decides (`sameDirent`): same type, mode, owner, device number, size and mtime; where both mtimes have no
/// nanoseconds (unpacked from a tar) a symlink's target and a regular file's contents decide. `same_content` reads
/// both versions of a regular file; without it a new identity with the same metadata counts as unchanged only when
/// a hard link was added (the link count grew).
fn same_dirent(p: &str, b: &Meta, a: &Meta, same_content: Option<&mut ContentEq<'_>>) -> bool {
    let meta_eq = (a.kind, a.mode, a.uid, a.gid, a.rdev) == (b.kind, b.mode, b.uid, b.gid, b.rdev)
        && (a.kind == S_IFDIR || (a.size == b.size && a.mtime.0 == b.mtime.0));
    if !meta_eq || (a.kind != S_IFDIR && a.mtime.1 != b.mtime.1) {
        return false;
    }
    if a.kind == S_IFDIR || a.mtime.1 != 0 {
        return true;
    }
    match (a.kind, same_content) {
        (S_IFLNK, _) => a.link == b.link,
        (S_IFREG, _) if a.size == 0 => true,
        (S_IFREG, Some(eq)) => eq(p),
        // Without the contents: only a new hard link (count grown, nothing else but ctime and identity) is kept out.
        _ => a.nlink > b.nlink,
    }
}

/// Compares the contents of a regular file before and after the step.
pub type ContentEq<'a> = dyn FnMut(&str) -> bool + 'a;

/// [`changes`], with `same_content` comparing a regular file's two versions where BuildKit's differ would.
pub fn changes_with(
    before: &Scan,
    after: &Scan,
    mut same_content: Option<&mut ContentEq<'_>>,
) -> Vec<(String, Change)> {
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
                // A new hard link to an earlier file changes its link count and ctime (and overlayfs copies it up,
                // a new inode): BuildKit keeps the earlier name out of the layer when its metadata and contents
                // are the same, and the new name is written as a file of its own.
                if a != b && !same_dirent(p, b, a, same_content.as_deref_mut()) {
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
        let parent = crate::path::parent(p);
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
        let mut q = crate::path::parent(p);
        while !q.is_empty() {
            parents.insert(q.to_string());
            q = crate::path::parent(q);
        }
    }
    put.extend(parents);
    out.extend(put.into_iter().map(|p| (p, Change::Put)));
    // In the order of the paths themselves, a whiteout where its victim was (`d/.wh.b` after `d/a`), as BuildKit
    // walks the snapshot.
    out.sort_by(|a, b| crate::path::cmp_components(&a.0, &b.0));
    out
}

/// docker's `diff` lines for a container's writable layer: `A`dded, `C`hanged, `D`eleted, by path (`A /p`),
/// sorted; the paths are the change set's, so the parents of a change show as changed, as docker shows them.
pub fn diff_lines(before: &Scan, after: &Scan) -> Vec<String> {
    let mut out: Vec<(String, char)> = changes(before, after)
        .into_iter()
        .map(|(p, c)| {
            let kind = match c {
                Change::Whiteout => 'D',
                Change::Put if before.contains_key(&p) => 'C',
                Change::Put => 'A',
            };
            (format!("/{p}"), kind)
        })
        .collect();
    out.sort();
    out.into_iter().map(|(p, k)| format!("{k} {p}")).collect()
}

/// The name an entry has in the layer.
pub fn layer_name(p: &str, c: &Change) -> String {
    match c {
        Change::Put => p.to_string(),
        Change::Whiteout => {
            let parent = crate::path::parent(p);
            let base = crate::path::base(p);
            if parent.is_empty() {
                format!(".wh.{base}")
            } else {
                format!("{parent}/.wh.{base}")
            }
        }
    }
}

/// Where the written entries' contents come from.
pub trait ChangeSource {
    /// The bytes of the regular file at `path` (its size is the scan's).
    fn data(&mut self, path: &str) -> Result<Box<dyn Read + '_>, Error>;
    /// Extended attributes of `path`.
    fn xattrs(&mut self, path: &str) -> BTreeMap<String, Vec<u8>>;
}

/// Write the change set from `before` to `after` into `lw` (the caller finishes it). `epoch` clamps every mtime
/// (SOURCE_DATE_EPOCH); without it entries keep their own.
pub fn write_changes<W: Write>(
    lw: &mut LayerWriter<W>,
    list: &[(String, Change)],
    after: &Scan,
    epoch: Option<i64>,
    src: &mut dyn ChangeSource,
) -> Result<(), Error> {
    let mut first_link: HashMap<(u64, u64), String> = HashMap::new();
    for (p, c) in list {
        let name = layer_name(p, c);
        let mut e = match c {
            // Mode 0, as BuildKit (containerd's archive writer) writes its whiteout markers.
            Change::Whiteout => Entry::file(&name, 0, 0),
            Change::Put => entry_for(p, &after[p], &mut first_link, src)?,
        };
        e.mtime = match (epoch, c) {
            (Some(t), _) => t,
            (None, Change::Put) => after[p].mtime.0,
            (None, _) => 0,
        };
        if e.kind == EntryKind::File && *c == Change::Put {
            let mut data = src.data(p)?.take(e.size);
            lw.tar().append(&e, &mut data)?;
        } else {
            lw.tar().append_bytes(&e, &[])?;
        }
    }
    Ok(())
}

fn entry_for(
    p: &str,
    m: &Meta,
    first_link: &mut HashMap<(u64, u64), String>,
    src: &mut dyn ChangeSource,
) -> Result<Entry, Error> {
    let kind = match m.kind {
        S_IFDIR => EntryKind::Dir,
        S_IFLNK => EntryKind::Symlink(m.link.clone().unwrap_or_default()),
        S_IFREG => {
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
        S_IFCHR => EntryKind::CharDevice {
            major: dev_major(m.rdev),
            minor: dev_minor(m.rdev),
        },
        S_IFBLK => EntryKind::BlockDevice {
            major: dev_major(m.rdev),
            minor: dev_minor(m.rdev),
        },
        S_IFIFO => EntryKind::Fifo,
        _ => {
            return Err(Error::Unsupported {
                path: p.to_string(),
                reason: "sockets cannot be stored in a layer".into(),
            })
        }
    };
    Ok(Entry {
        path: p.to_string(),
        size: if kind == EntryKind::File { m.size } else { 0 },
        kind,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        mtime: m.mtime.0,
        xattrs: src.xattrs(p),
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
    fn dev_numbers() {
        for (ma, mi) in [(0, 0), (5, 1), (259, 65536), (4095, 255), (4096, 1 << 20)] {
            let d = makedev(ma, mi);
            assert_eq!((dev_major(d), dev_minor(d)), (ma, mi));
        }
        // /dev/console: major 5, minor 1.
        assert_eq!(makedev(5, 1), 0x501);
    }

    #[test]
    fn copied_up_files_count_as_changed_as_buildkit_decides() {
        let f = S_IFREG;
        let file = |ino, size, mtime, nlink| Meta {
            size,
            mtime,
            nlink,
            ctime: (9, 9),
            ..meta(f, ino)
        };
        // Linked (copied up, a new inode, same link count), moved back and forth, touched, rewritten: (name, before,
        // after).
        let cases = [
            ("linked", file(1, 4, (5, 0), 2), file(11, 4, (5, 0), 2)),
            ("moved", file(2, 4, (5, 0), 1), file(12, 4, (5, 0), 1)),
            ("moved_nanos", file(3, 4, (5, 7), 1), file(13, 4, (5, 7), 1)),
            ("touched", file(4, 4, (5, 0), 1), file(14, 4, (6, 0), 1)),
            ("empty", file(5, 0, (5, 0), 1), file(15, 0, (5, 0), 1)),
        ];
        let before: Scan = cases
            .iter()
            .map(|(p, b, _)| (p.to_string(), b.clone()))
            .collect();
        let after: Scan = cases
            .iter()
            .map(|(p, _, a)| (p.to_string(), a.clone()))
            .collect();
        let names =
            |l: Vec<(String, Change)>| -> Vec<String> { l.into_iter().map(|c| c.0).collect() };
        // The contents decide where both mtimes lack nanoseconds.
        let mut same = |p: &str| p != "moved";
        let got = names(changes_with(&before, &after, Some(&mut same)));
        assert_eq!(got, ["moved", "touched"]);
        // Without the contents a new identity with equal metadata counts as changed.
        assert_eq!(
            names(changes(&before, &after)),
            ["linked", "moved", "touched"]
        );
    }

    #[test]
    fn change_set() {
        let d = S_IFDIR;
        let f = S_IFREG;
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
        assert_eq!(
            diff_lines(&before, &after),
            [
                "C /a",
                "A /a/new",
                "D /a/old",
                "C /b",
                "D /b/x",
                "A /b/y",
                "C /c",
                "D /c/gone",
                "C /d",
                "A /d/a",
                "D /d/b",
                "A /d/c"
            ]
        );
    }
}
