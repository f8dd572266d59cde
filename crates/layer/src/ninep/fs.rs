//! The in-memory file system the tab's 9p server serves: a stage root made from the engine's layers, changed in
//! place by the guest (file contents are shared with the base until written: copy-on-write per file), and scanned
//! into the same metadata the native RUN compares, so the step's layer comes out of [`crate::diff`] unchanged.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use crate::diff::{
    self, Meta, Scan, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use crate::entry::EntryKind;
use crate::{Error, FileTree};

pub type Ino = u64;

/// The root directory's inode number.
pub const ROOT: Ino = 1;

/// Linux errno values the server answers with.
pub mod errno {
    pub const EPERM: u32 = 1;
    pub const ENOENT: u32 = 2;
    pub const EIO: u32 = 5;
    pub const EBADF: u32 = 9;
    pub const EEXIST: u32 = 17;
    pub const EXDEV: u32 = 18;
    pub const ENOTDIR: u32 = 20;
    pub const EISDIR: u32 = 21;
    pub const EINVAL: u32 = 22;
    pub const EFBIG: u32 = 27;
    pub const ENAMETOOLONG: u32 = 36;
    pub const ENOTEMPTY: u32 = 39;
    pub const ENODATA: u32 = 61;
    pub const EOPNOTSUPP: u32 = 95;
}
use errno::*;

/// A file's largest size; the guest's writes beyond it fail with EFBIG (the tab's memory is the limit).
pub const MAX_FILE: u64 = 1 << 30;

/// Not an errno: the answer needs bytes of an external file ([`MemFs::need`]); the host fetches them and asks again.
pub const NEED: u32 = u32::MAX;

/// How much of an external file one fetch reads at least (read-ahead for the guest's sequential 4 KiB reads).
pub const READ_AHEAD: u64 = 1 << 20;

/// Bytes of an external file the host must fetch before a request can be answered: `len` bytes at `off` in the
/// host's store; `whole`: the file's whole data, to take it into memory ([`MemFs::materialize`] of `ino`), else a
/// read window ([`MemFs::supply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub ino: Ino,
    pub off: u64,
    pub len: u64,
    pub whole: bool,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Dir(BTreeMap<String, Ino>),
    File(Arc<Vec<u8>>),
    /// A regular file whose `len` bytes are outside wasm memory, at `off` in the host's store (the tab's VM keeps a
    /// base layer's large files in browser storage); reads fetch them, a change takes them in first.
    External {
        off: u64,
        len: u64,
    },
    Symlink(String),
    /// Character or block device (`S_IFCHR`/`S_IFBLK`) with its `dev_t`, a FIFO or a socket (rdev 0).
    Special {
        ifmt: u32,
        rdev: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid/setgid/sticky (0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub nlink: u64,
    /// A directory's parent (`..`); the root is its own.
    pub parent: Ino,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Node {
    pub fn ifmt(&self) -> u32 {
        match &self.kind {
            Kind::Dir(_) => S_IFDIR,
            Kind::File(_) | Kind::External { .. } => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::Special { ifmt, .. } => *ifmt,
        }
    }

    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(d) => d.len() as u64,
            Kind::External { len, .. } => *len,
            Kind::Symlink(t) => t.len() as u64,
            Kind::Dir(_) => 4096,
            Kind::Special { .. } => 0,
        }
    }

    pub fn rdev(&self) -> u64 {
        match &self.kind {
            Kind::Special { rdev, .. } => *rdev,
            _ => 0,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }
}

/// What a new node is.
pub enum NewKind {
    Dir,
    File,
    Symlink(String),
    Special { ifmt: u32, rdev: u64 },
}

#[derive(Debug, Clone)]
pub struct MemFs {
    nodes: HashMap<Ino, Node>,
    next: Ino,
    /// The time changes are stamped with: the host's clock at the step's start, then one nanosecond more per
    /// change, so every change is visible to the scan even within one second.
    clock: (i64, i64),
    /// Names in the root that hold the step's mount sources ([`MemFs::graft_hidden`]): the guest binds them over
    /// their targets; they are neither listed nor scanned, so they never reach the layer.
    hidden: BTreeSet<String>,
    /// What the last request that answered [`NEED`] is waiting for.
    need: Cell<Option<Need>>,
    /// The last bytes fetched for reads of an external file: its store offset and the bytes.
    window: Option<(u64, Vec<u8>)>,
    /// Files whose bytes a write or a truncation changed: one taken in and not here holds its outside bytes.
    written: HashSet<Ino>,
}

impl MemFs {
    /// An empty root directory (mode 0755, root's).
    pub fn new(now: i64) -> MemFs {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, dir_node(0o755, 0, 0, (0, 0), ROOT));
        MemFs {
            nodes,
            next: ROOT + 1,
            clock: (now, 0),
            hidden: BTreeSet::new(),
            need: Cell::new(None),
            window: None,
            written: HashSet::new(),
        }
    }

    /// The merged tree of a stack of layers (a [`FileTree`] made with data). Directories the layers imply but do
    /// not list are made 0755 and root's, as an unpacker makes them. The files' data moves out of the tree (no
    /// second copy: the root's data is held once).
    pub fn from_tree(tree: FileTree, now: i64) -> Result<MemFs, Error> {
        let mut fs = MemFs::new(now);
        let mut by_path: HashMap<String, Ino> = HashMap::new();
        by_path.insert(String::new(), ROOT);
        let mut entries: Vec<_> = tree.into_nodes().collect();
        entries.sort_by(|a, b| crate::path::cmp_components(&a.0, &b.0));
        for (path, mut node) in entries {
            let path = &path;
            let e = &node.entry;
            let parent = fs.ensure_dirs(crate::path::parent(path), &mut by_path);
            let name = crate::path::base(path).to_string();
            let t = (e.mtime, 0);
            if path.is_empty() || path == "." {
                continue;
            }
            let kind = match &e.kind {
                EntryKind::Dir => {
                    if let Some(&ino) = by_path.get(path.as_str()) {
                        let n = fs.nodes.get_mut(&ino).expect("listed");
                        (n.mode, n.uid, n.gid, n.mtime) = (e.mode, e.uid, e.gid, t);
                        n.xattrs = e.xattrs.clone();
                        continue;
                    }
                    NewKind::Dir
                }
                EntryKind::File => NewKind::File,
                EntryKind::Symlink(t) => NewKind::Symlink(t.clone()),
                EntryKind::Hardlink(target) => {
                    let target = by_path.get(target.as_str()).copied().ok_or_else(|| {
                        Error::Unsupported {
                            path: path.clone(),
                            reason: format!("hard link to {target:?}, which is not in the tree"),
                        }
                    })?;
                    fs.link_at(parent, &name, target)
                        .map_err(|_| Error::Duplicate(path.clone()))?;
                    by_path.insert(path.clone(), target);
                    continue;
                }
                EntryKind::CharDevice { major, minor } => NewKind::Special {
                    ifmt: S_IFCHR,
                    rdev: diff::makedev(*major, *minor),
                },
                EntryKind::BlockDevice { major, minor } => NewKind::Special {
                    ifmt: S_IFBLK,
                    rdev: diff::makedev(*major, *minor),
                },
                EntryKind::Fifo => NewKind::Special {
                    ifmt: S_IFIFO,
                    rdev: 0,
                },
            };
            let is_file = matches!(kind, NewKind::File);
            let ino = fs
                .create(parent, &name, kind, e.mode, e.uid, e.gid)
                .map_err(|_| Error::Duplicate(path.clone()))?;
            let n = fs.nodes.get_mut(&ino).expect("just made");
            if is_file {
                n.kind = match node.external {
                    Some(off) => Kind::External { off, len: e.size },
                    None => Kind::File(Arc::new(node.data.take().unwrap_or_default())),
                };
            }
            (n.atime, n.mtime, n.ctime) = (t, t, t);
            n.xattrs = e.xattrs.clone();
            by_path.insert(path.clone(), ino);
        }
        Ok(fs)
    }

    fn ensure_dirs(&mut self, path: &str, by_path: &mut HashMap<String, Ino>) -> Ino {
        if let Some(&ino) = by_path.get(path) {
            return ino;
        }
        let parent = self.ensure_dirs(crate::path::parent(path), by_path);
        let name = crate::path::base(path);
        let ino = match self.lookup(parent, name) {
            Some(i) => i,
            None => self
                .create(parent, name, NewKind::Dir, 0o755, 0, 0)
                .expect("a missing name"),
        };
        by_path.insert(path.to_string(), ino);
        ino
    }

    /// Copy what is at `path` in `other` (a bind mount's source: a directory with everything under it, or one
    /// entry) into the root as `name`, hidden ([`MemFs::is_hidden`]). Hard links inside the copy stay links.
    /// `false` when `path` is not in `other` (no symlinks are followed).
    pub fn graft_hidden(&mut self, name: &str, other: &MemFs, path: &str) -> Result<bool, Error> {
        let Some(from) = other.resolve(path) else {
            return Ok(false);
        };
        check_name(name).map_err(|_| Error::Unsupported {
            path: name.to_string(),
            reason: "not a name for a mount source".into(),
        })?;
        if self.lookup(ROOT, name).is_some() {
            return Err(Error::Duplicate(name.to_string()));
        }
        let mut map: HashMap<Ino, Ino> = HashMap::new();
        let top = self.copy_node(other, from, ROOT, &mut map);
        self.children(ROOT)
            .expect("the root is a directory")
            .insert(name.to_string(), top);
        if self.nodes[&top].is_dir() {
            self.nodes.get_mut(&ROOT).expect("root").nlink += 1;
        }
        self.hidden.insert(name.to_string());
        Ok(true)
    }

    fn copy_node(
        &mut self,
        other: &MemFs,
        ino: Ino,
        parent: Ino,
        map: &mut HashMap<Ino, Ino>,
    ) -> Ino {
        if let Some(&done) = map.get(&ino) {
            return done;
        }
        let new = self.next;
        self.next += 1;
        map.insert(ino, new);
        let mut node = other.nodes[&ino].clone();
        if let Kind::Dir(children) = &node.kind {
            node.parent = parent;
            let children: Vec<(String, Ino)> =
                children.iter().map(|(k, v)| (k.clone(), *v)).collect();
            let copied = children
                .into_iter()
                .map(|(k, c)| (k, self.copy_node(other, c, new, map)))
                .collect();
            node.kind = Kind::Dir(copied);
        }
        self.nodes.insert(new, node);
        new
    }

    /// Whether `name` in `dir` is a hidden mount source.
    pub fn is_hidden(&self, dir: Ino, name: &str) -> bool {
        dir == ROOT && self.hidden.contains(name)
    }

    /// Every time stamp (and the clock) in second `from` moved to second `to`, nanoseconds kept: a tree made with
    /// a placeholder clock gets the stamps a tree made at `to` would have.
    pub fn restamp(&mut self, from: i64, to: i64) {
        let move_t = |t: &mut (i64, i64)| {
            if t.0 == from {
                t.0 = to;
            }
        };
        for n in self.nodes.values_mut() {
            move_t(&mut n.atime);
            move_t(&mut n.mtime);
            move_t(&mut n.ctime);
        }
        move_t(&mut self.clock);
    }

    /// Set the clock (seconds since the epoch) changes are stamped with from now on.
    pub fn set_time(&mut self, now: i64) {
        if now > self.clock.0 {
            self.clock = (now, 0);
        }
    }

    /// The next change's time stamp.
    pub fn tick(&mut self) -> (i64, i64) {
        self.clock.1 += 1;
        if self.clock.1 >= 1_000_000_000 {
            self.clock = (self.clock.0 + 1, 0);
        }
        self.clock
    }

    pub fn node(&self, ino: Ino) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    pub fn node_mut(&mut self, ino: Ino) -> Option<&mut Node> {
        self.nodes.get_mut(&ino)
    }

    pub fn lookup(&self, dir: Ino, name: &str) -> Option<Ino> {
        match &self.nodes.get(&dir)?.kind {
            Kind::Dir(c) => c.get(name).copied(),
            _ => None,
        }
    }

    fn children(&mut self, dir: Ino) -> Result<&mut BTreeMap<String, Ino>, u32> {
        match &mut self.nodes.get_mut(&dir).ok_or(EBADF)?.kind {
            Kind::Dir(c) => Ok(c),
            _ => Err(ENOTDIR),
        }
    }

    fn touch_dir(&mut self, dir: Ino) {
        let t = self.tick();
        if let Some(n) = self.nodes.get_mut(&dir) {
            (n.mtime, n.ctime) = (t, t);
        }
    }

    /// A new node named `name` in `dir`.
    pub fn create(
        &mut self,
        dir: Ino,
        name: &str,
        kind: NewKind,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, u32> {
        check_name(name)?;
        if self.children(dir)?.contains_key(name) {
            return Err(EEXIST);
        }
        let t = self.tick();
        let ino = self.next;
        self.next += 1;
        let mut n = match kind {
            NewKind::Dir => dir_node(mode, uid, gid, t, dir),
            NewKind::File => leaf(Kind::File(Arc::new(Vec::new())), mode, uid, gid, t),
            NewKind::Symlink(target) => leaf(Kind::Symlink(target), 0o777, uid, gid, t),
            NewKind::Special { ifmt, rdev } => {
                leaf(Kind::Special { ifmt, rdev }, mode, uid, gid, t)
            }
        };
        n.mode &= 0o7777;
        let is_dir = n.is_dir();
        self.nodes.insert(ino, n);
        self.children(dir)?.insert(name.to_string(), ino);
        if is_dir {
            self.nodes.get_mut(&dir).expect("a directory").nlink += 1;
        }
        self.touch_dir(dir);
        Ok(ino)
    }

    /// A hard link `dir/name` to the non-directory `target`.
    pub fn link_at(&mut self, dir: Ino, name: &str, target: Ino) -> Result<(), u32> {
        check_name(name)?;
        if self.nodes.get(&target).ok_or(EBADF)?.is_dir() {
            return Err(EPERM);
        }
        if self.children(dir)?.contains_key(name) {
            return Err(EEXIST);
        }
        self.children(dir)?.insert(name.to_string(), target);
        let t = self.tick();
        let n = self.nodes.get_mut(&target).expect("checked");
        n.nlink += 1;
        n.ctime = t;
        self.touch_dir(dir);
        Ok(())
    }

    /// Remove `dir/name`; `want_dir`: rmdir (the directory must be empty), else unlink (must not be a directory).
    pub fn unlink_at(&mut self, dir: Ino, name: &str, want_dir: bool) -> Result<(), u32> {
        let ino = self.lookup(dir, name).ok_or(ENOENT)?;
        let n = self.nodes.get(&ino).expect("linked");
        match (&n.kind, want_dir) {
            (Kind::Dir(c), true) if !c.is_empty() => return Err(ENOTEMPTY),
            (Kind::Dir(_), true) => {}
            (Kind::Dir(_), false) => return Err(EISDIR),
            (_, true) => return Err(ENOTDIR),
            _ => {}
        }
        self.children(dir)?.remove(name);
        self.drop_link(ino);
        if want_dir {
            self.nodes.get_mut(&dir).expect("a directory").nlink -= 1;
        }
        self.touch_dir(dir);
        Ok(())
    }

    /// One name fewer for `ino`; its node stays while the guest may hold it open (until the step ends).
    fn drop_link(&mut self, ino: Ino) {
        let t = self.tick();
        let n = self.nodes.get_mut(&ino).expect("linked");
        n.nlink = if n.is_dir() {
            0
        } else {
            n.nlink.saturating_sub(1)
        };
        n.ctime = t;
    }

    /// rename(2): `odir/oname` becomes `ndir/nname`, replacing what is there when the kinds allow it.
    pub fn rename(&mut self, odir: Ino, oname: &str, ndir: Ino, nname: &str) -> Result<(), u32> {
        check_name(nname)?;
        let ino = self.lookup(odir, oname).ok_or(ENOENT)?;
        let moving_dir = self.nodes[&ino].is_dir();
        if moving_dir && (ino == ndir || self.is_ancestor(ino, ndir)) {
            return Err(EINVAL);
        }
        if let Some(old) = self.lookup(ndir, nname) {
            if old == ino {
                return Ok(());
            }
            match (&self.nodes[&old].kind, moving_dir) {
                (Kind::Dir(c), true) if !c.is_empty() => return Err(ENOTEMPTY),
                (Kind::Dir(_), true) => self.unlink_at(ndir, nname, true)?,
                (Kind::Dir(_), false) => return Err(EISDIR),
                (_, true) => return Err(ENOTDIR),
                _ => self.unlink_at(ndir, nname, false)?,
            }
        }
        self.children(odir)?.remove(oname);
        self.children(ndir)?.insert(nname.to_string(), ino);
        let t = self.tick();
        let n = self.nodes.get_mut(&ino).expect("linked");
        n.ctime = t;
        if moving_dir {
            n.parent = ndir;
            self.nodes.get_mut(&odir).expect("a directory").nlink -= 1;
            self.nodes.get_mut(&ndir).expect("a directory").nlink += 1;
        }
        self.touch_dir(odir);
        self.touch_dir(ndir);
        Ok(())
    }

    fn is_ancestor(&self, a: Ino, mut d: Ino) -> bool {
        while d != ROOT {
            if d == a {
                return true;
            }
            d = self.nodes[&d].parent;
        }
        false
    }

    /// `count` bytes from `offset` of a regular file ([`NEED`] when they are outside and not fetched yet).
    pub fn read(&self, ino: Ino, offset: u64, count: u32) -> Result<&[u8], u32> {
        match &self.nodes.get(&ino).ok_or(EBADF)?.kind {
            Kind::File(d) => {
                let start = (offset.min(d.len() as u64)) as usize;
                let end = (start + count as usize).min(d.len());
                Ok(&d[start..end])
            }
            &Kind::External { off, len } => {
                let start = offset.min(len);
                let end = (start + count as u64).min(len);
                if start == end {
                    return Ok(&[]);
                }
                if let Some((at, bytes)) = &self.window {
                    let have = *at..*at + bytes.len() as u64;
                    if have.contains(&(off + start)) && off + end <= have.end {
                        return Ok(&bytes[(off + start - at) as usize..(off + end - at) as usize]);
                    }
                }
                let want = (end - start).max(READ_AHEAD).min(len - start);
                self.need.set(Some(Need {
                    ino,
                    off: off + start,
                    len: want,
                    whole: false,
                }));
                Err(NEED)
            }
            Kind::Dir(_) => Err(EISDIR),
            _ => Err(EINVAL),
        }
    }

    /// What the last request answered with [`NEED`] waits for (taken: asked once).
    pub fn need(&self) -> Option<Need> {
        self.need.take()
    }

    /// Bytes fetched for a read ([`Need`] not `whole`): `bytes` at store offset `off`, kept until the next fetch.
    pub fn supply(&mut self, off: u64, bytes: Vec<u8>) {
        self.window = Some((off, bytes));
    }

    /// An external file's whole data, fetched for a change to it ([`Need`] `whole`): the file is in memory from now
    /// on. Its times stay (taking it in is no change). Ignored unless `ino` is still that external file.
    pub fn materialize(&mut self, ino: Ino, off: u64, bytes: Vec<u8>) -> Result<(), u32> {
        let n = self.nodes.get_mut(&ino).ok_or(EBADF)?;
        match n.kind {
            Kind::External { off: o, len } if o == off => {
                if bytes.len() as u64 != len {
                    return Err(EIO);
                }
                n.kind = Kind::File(Arc::new(bytes));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// [`NEED`] for the whole of `ino` when it is external (a change must take it in first).
    fn need_whole(&self, ino: Ino) -> Result<(), u32> {
        if let Some(&Kind::External { off, len }) = self.nodes.get(&ino).map(|n| &n.kind) {
            self.need.set(Some(Need {
                ino,
                off,
                len,
                whole: true,
            }));
            return Err(NEED);
        }
        Ok(())
    }

    /// The external files among `paths` (regular files whose bytes are outside), as [`Need`]s of their whole data:
    /// the host takes them in before the layer that writes them is made.
    pub fn external_needs<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> Vec<Need> {
        let mut out: Vec<Need> = Vec::new();
        for p in paths {
            let Some(ino) = self.resolve(p) else { continue };
            if let Some(&Kind::External { off, len }) = self.nodes.get(&ino).map(|n| &n.kind) {
                if !out.iter().any(|n| n.ino == ino) {
                    out.push(Need {
                        ino,
                        off,
                        len,
                        whole: true,
                    });
                }
            }
        }
        out
    }

    /// Whether a write or a truncation changed the bytes of `ino` (an external file taken in only to be read or
    /// written into a layer was not).
    pub fn was_written(&self, ino: Ino) -> bool {
        self.written.contains(&ino)
    }

    /// Where the bytes of the external file at `path` are (`(off, len)` in the host's store), or `None`.
    pub fn external_of(&self, path: &str) -> Option<(u64, u64)> {
        match self.node(self.resolve(path)?)?.kind {
            Kind::External { off, len } => Some((off, len)),
            _ => None,
        }
    }

    /// Write into a regular file (copying its bytes away from the base the first time).
    pub fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> Result<u32, u32> {
        let end = offset.checked_add(bytes.len() as u64).ok_or(EFBIG)?;
        if end > MAX_FILE {
            return Err(EFBIG);
        }
        self.need_whole(ino)?;
        self.written.insert(ino);
        let t = self.tick();
        let n = self.nodes.get_mut(&ino).ok_or(EBADF)?;
        let Kind::File(d) = &mut n.kind else {
            return Err(if n.is_dir() { EISDIR } else { EINVAL });
        };
        let d = Arc::make_mut(d);
        if d.len() < end as usize {
            d.resize(end as usize, 0);
        }
        d[offset as usize..end as usize].copy_from_slice(bytes);
        (n.mtime, n.ctime) = (t, t);
        Ok(bytes.len() as u32)
    }

    /// Truncate or extend a regular file.
    pub fn set_size(&mut self, ino: Ino, size: u64) -> Result<(), u32> {
        if size > MAX_FILE {
            return Err(EFBIG);
        }
        // Truncating an external file to nothing needs none of its bytes; keeping any of them takes it in.
        if size == 0
            && matches!(
                self.nodes.get(&ino).map(|n| &n.kind),
                Some(Kind::External { .. })
            )
        {
            self.nodes.get_mut(&ino).expect("checked").kind = Kind::File(Arc::default());
        }
        self.need_whole(ino)?;
        self.written.insert(ino);
        let t = self.tick();
        let n = self.nodes.get_mut(&ino).ok_or(EBADF)?;
        let Kind::File(d) = &mut n.kind else {
            return Err(if n.is_dir() { EISDIR } else { EINVAL });
        };
        if d.len() as u64 != size {
            Arc::make_mut(d).resize(size as usize, 0);
        }
        (n.mtime, n.ctime) = (t, t);
        Ok(())
    }

    /// Every path under the root (the root itself excluded) with what [`crate::diff::changes`] compares.
    pub fn scan(&self) -> Scan {
        let mut out = Scan::new();
        self.walk(ROOT, "", &mut out);
        out
    }

    fn walk(&self, dir: Ino, rel: &str, out: &mut Scan) {
        let Kind::Dir(children) = &self.nodes[&dir].kind else {
            return;
        };
        for (name, &ino) in children {
            let n = &self.nodes[&ino];
            if n.ifmt() == S_IFSOCK || self.is_hidden(dir, name) {
                // Sockets are not part of an image (as the native scan skips them); mount sources are not the
                // step's.
                continue;
            }
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            out.insert(
                path.clone(),
                Meta {
                    kind: n.ifmt() & S_IFMT,
                    mode: n.mode,
                    uid: n.uid,
                    gid: n.gid,
                    size: n.size(),
                    mtime: n.mtime,
                    ctime: n.ctime,
                    dev: 1,
                    ino,
                    nlink: n.nlink,
                    rdev: n.rdev(),
                    link: match &n.kind {
                        Kind::Symlink(t) => Some(t.clone()),
                        _ => None,
                    },
                },
            );
            if n.is_dir() {
                self.walk(ino, &path, out);
            }
        }
    }

    /// The bytes of the regular file at `path` (absolute or relative to the root; no symlinks followed), for the
    /// host to read the image's `/etc/passwd` and `/etc/group`.
    pub fn read_file(&self, path: &str) -> Option<&[u8]> {
        match &self.node(self.resolve(path)?)?.kind {
            Kind::File(d) => Some(d),
            _ => None,
        }
    }

    /// The inode at a clean relative path (no symlinks followed).
    pub fn resolve(&self, path: &str) -> Option<Ino> {
        let mut ino = ROOT;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            ino = self.lookup(ino, c)?;
        }
        Some(ino)
    }
}

/// Contents for [`crate::diff::write_changes`] from the file system's memory.
impl diff::ChangeSource for MemFs {
    fn data(&mut self, path: &str) -> Result<Box<dyn Read + '_>, Error> {
        let ino = self.resolve(path).ok_or_else(|| Error::Unsupported {
            path: path.to_string(),
            reason: "vanished while the layer was written".into(),
        })?;
        if let Some(Kind::External { .. }) = self.nodes.get(&ino).map(|n| &n.kind) {
            // The host takes every changed external file in before the layer is written (external_needs).
            return Err(Error::Unsupported {
                path: path.to_string(),
                reason: "its bytes are outside memory and were not taken in for the layer".into(),
            });
        }
        let bytes = self.read(ino, 0, u32::MAX).unwrap_or_default();
        Ok(Box::new(bytes))
    }

    fn xattrs(&mut self, path: &str) -> BTreeMap<String, Vec<u8>> {
        self.resolve(path)
            .and_then(|i| self.nodes.get(&i))
            .map(|n| n.xattrs.clone())
            .unwrap_or_default()
    }
}

fn check_name(name: &str) -> Result<(), u32> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(EINVAL);
    }
    if name.len() > 255 {
        return Err(ENAMETOOLONG);
    }
    Ok(())
}

fn dir_node(mode: u32, uid: u32, gid: u32, t: (i64, i64), parent: Ino) -> Node {
    Node {
        nlink: 2,
        parent,
        ..leaf(Kind::Dir(BTreeMap::new()), mode, uid, gid, t)
    }
}

fn leaf(kind: Kind, mode: u32, uid: u32, gid: u32, t: (i64, i64)) -> Node {
    Node {
        kind,
        mode,
        uid,
        gid,
        atime: t,
        mtime: t,
        ctime: t,
        nlink: 1,
        parent: 0,
        xattrs: BTreeMap::new(),
    }
}
