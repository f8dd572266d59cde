//! The 9P2000.L requests Linux's v9fs sends (mounted `trans=virtio,version=9p2000.L,cache=none`), answered from a
//! [`MemFs`]: one request in, one reply out, no I/O (v86's `handle9p` hook carries the bytes in the tab).

use std::collections::HashMap;

use super::fs::{errno::*, Ino, Kind, MemFs, NewKind, NEED, ROOT};
use super::wire::{Reader, Short, Writer};
use crate::diff::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};

// Message types (T = request; its reply R is T + 1).
const RLERROR: u8 = 7;
const TSTATFS: u8 = 8;
const TLOPEN: u8 = 12;
const TLCREATE: u8 = 14;
const TSYMLINK: u8 = 16;
const TMKNOD: u8 = 18;
const TRENAME: u8 = 20;
const TREADLINK: u8 = 22;
const TGETATTR: u8 = 24;
const TSETATTR: u8 = 26;
const TXATTRWALK: u8 = 30;
const TXATTRCREATE: u8 = 32;
const TREADDIR: u8 = 40;
const TFSYNC: u8 = 50;
const TLOCK: u8 = 52;
const TGETLOCK: u8 = 54;
const TLINK: u8 = 70;
const TMKDIR: u8 = 72;
const TRENAMEAT: u8 = 74;
const TUNLINKAT: u8 = 76;
const TVERSION: u8 = 100;
const TATTACH: u8 = 104;
const TFLUSH: u8 = 108;
const TWALK: u8 = 110;
const TREAD: u8 = 116;
const TWRITE: u8 = 118;
const TCLUNK: u8 = 120;
const TREMOVE: u8 = 122;

/// The largest message we take; the client's msize is lowered to it.
pub const MAX_MSIZE: u32 = 512 * 1024;

const O_TRUNC: u32 = 0o1000;
const AT_REMOVEDIR: u32 = 0x200;
// Tsetattr's valid bits.
const SET_MODE: u32 = 1;
const SET_UID: u32 = 2;
const SET_GID: u32 = 4;
const SET_SIZE: u32 = 8;
const SET_ATIME: u32 = 16;
const SET_MTIME: u32 = 32;
const SET_ATIME_SET: u32 = 128;
const SET_MTIME_SET: u32 = 256;

/// What a fid points at.
#[derive(Debug, Clone)]
struct Fid {
    ino: Ino,
    /// The user the guest attached as (`n_uname`): owner of what it creates.
    uid: u32,
    /// A directory's entries as read when it was opened: (name, inode, qid type, dirent type).
    listing: Option<Vec<(String, Ino)>>,
    /// An xattr fid: the value being read.
    xattr: Option<Vec<u8>>,
}

pub struct Server {
    pub fs: MemFs,
    fids: HashMap<u32, Fid>,
    msize: u32,
}

type Res = Result<Writer, u32>;

impl Server {
    pub fn new(fs: MemFs) -> Self {
        Server {
            fs,
            fids: HashMap::new(),
            msize: 8192,
        }
    }

    /// Take over `old`'s connection (its fids and msize): the guest keeps the root mounted from one step to the
    /// next while the tree it is served from changes. The root fid stays the root; the few other fids the guest
    /// still holds (the dentries its own /proc and /dev are mounted on) are only ever clunked.
    pub fn adopt(&mut self, old: &mut Server) {
        self.fids = std::mem::take(&mut old.fids);
        for f in self.fids.values_mut() {
            f.listing = None;
            f.xattr = None;
        }
        self.msize = old.msize;
    }

    /// Answer one request (a whole message). Malformed requests get an Rlerror, never a panic.
    pub fn handle(&mut self, req: &[u8]) -> Vec<u8> {
        let mut r = Reader::new(req);
        let (Ok(_size), Ok(kind), Ok(tag)) = (r.u32(), r.u8(), r.u16()) else {
            return error(0xffff, EINVAL);
        };
        match self.dispatch(kind, tag, &mut r) {
            Ok(Ok(w)) => w.finish(),
            // No answer yet: the host fetches what `fs.need()` names and hands the same request in again.
            Ok(Err(NEED)) => Vec::new(),
            Ok(Err(e)) => error(tag, e),
            Err(Short) => error(tag, EINVAL),
        }
    }

    fn dispatch(&mut self, kind: u8, tag: u16, r: &mut Reader) -> Result<Res, Short> {
        let w = Writer::new(kind.wrapping_add(1), tag);
        Ok(match kind {
            TVERSION => self.version(w, r)?,
            TATTACH => self.attach(w, r)?,
            TWALK => self.walk(w, r)?,
            TGETATTR => self.getattr(w, r.u32()?),
            TSETATTR => self.setattr(w, r)?,
            TLOPEN => self.lopen(w, r.u32()?, r.u32()?),
            TLCREATE => self.lcreate(w, r)?,
            TREAD => self.read(w, r.u32()?, r.u64()?, r.u32()?),
            TWRITE => {
                let (fid, off, n) = (r.u32()?, r.u64()?, r.u32()?);
                self.write(w, fid, off, r.bytes(n as usize)?)
            }
            TREADDIR => self.readdir(w, r.u32()?, r.u64()?, r.u32()?),
            TMKDIR => self.mkdir(w, r)?,
            TSYMLINK => self.symlink(w, r)?,
            TMKNOD => self.mknod(w, r)?,
            TREADLINK => self.readlink(w, r.u32()?),
            TLINK => self.link(w, r.u32()?, r.u32()?, &r.str()?),
            TRENAMEAT => self.renameat(w, r.u32()?, &r.str()?, r.u32()?, &r.str()?),
            TUNLINKAT => self.unlinkat(w, r.u32()?, &r.str()?, r.u32()?),
            TCLUNK => self.fids.remove(&r.u32()?).map(|_| w).ok_or(EBADF),
            // Linux removes through unlinkat; Tremove clunks the fid whatever happens.
            TREMOVE => {
                self.fids.remove(&r.u32()?);
                Err(EOPNOTSUPP)
            }
            // Linux falls back to Trename only when Trenameat is not supported.
            TRENAME => Err(EOPNOTSUPP),
            TSTATFS => self.statfs(w, r.u32()?),
            TXATTRWALK => self.xattrwalk(w, r.u32()?, r.u32()?, &r.str()?),
            TXATTRCREATE => Err(EOPNOTSUPP),
            TFSYNC | TFLUSH => Ok(w),
            TLOCK => self.fid(r.u32()?).map(|_| {
                let mut w = w;
                w.u8(0);
                w
            }),
            TGETLOCK => self.getlock(w, r)?,
            _ => Err(EOPNOTSUPP),
        })
    }

    fn fid(&self, fid: u32) -> Result<&Fid, u32> {
        self.fids.get(&fid).ok_or(EBADF)
    }

    fn qid(&self, w: &mut Writer, ino: Ino) -> Result<(), u32> {
        let n = self.fs.node(ino).ok_or(EBADF)?;
        let t = match n.kind {
            Kind::Dir(_) => 0x80,
            Kind::Symlink(_) => 0x02,
            _ => 0,
        };
        w.u8(t).u32(0).u64(ino);
        Ok(())
    }

    fn version(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let msize = r.u32()?;
        let version = r.str()?;
        self.msize = msize.clamp(4096, MAX_MSIZE);
        self.fids.clear();
        let v = if version.starts_with("9P2000.L") {
            "9P2000.L"
        } else {
            "unknown"
        };
        w.u32(self.msize).str(v);
        Ok(Ok(w))
    }

    fn attach(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (fid, _afid, _uname, _aname, n_uname) =
            (r.u32()?, r.u32()?, r.str()?, r.str()?, r.u32()?);
        let uid = if n_uname == u32::MAX { 0 } else { n_uname };
        self.fids.insert(fid, new_fid(ROOT, uid));
        Ok(self.qid(&mut w, ROOT).map(|_| w))
    }

    fn walk(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (fid, newfid, n) = (r.u32()?, r.u32()?, r.u16()?);
        let mut names = Vec::with_capacity(n as usize);
        for _ in 0..n {
            names.push(r.str()?);
        }
        let Ok(start) = self.fid(fid).cloned() else {
            return Ok(Err(EBADF));
        };
        if newfid != fid && self.fids.contains_key(&newfid) {
            return Ok(Err(EBADF));
        }
        let mut ino = start.ino;
        let mut qids = Vec::new();
        for name in &names {
            let next = match self.fs.node(ino).map(|n| &n.kind) {
                Some(Kind::Dir(_)) if name == ".." => self.fs.node(ino).map(|n| n.parent),
                Some(Kind::Dir(_)) if name == "." => Some(ino),
                Some(Kind::Dir(_)) => self.fs.lookup(ino, name),
                _ => None,
            };
            let Some(next) = next else { break };
            ino = next;
            qids.push(ino);
        }
        if qids.len() < names.len() && qids.is_empty() {
            return Ok(Err(ENOENT));
        }
        if qids.len() == names.len() {
            self.fids.insert(newfid, new_fid(ino, start.uid));
        }
        w.u16(qids.len() as u16);
        for q in qids {
            if let Err(e) = self.qid(&mut w, q) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(w))
    }

    fn getattr(&mut self, mut w: Writer, fid: u32) -> Res {
        let ino = self.fid(fid)?.ino;
        let n = self.fs.node(ino).ok_or(EBADF)?;
        let size = n.size();
        // P9_GETATTR_BASIC: mode, nlink, uid, gid, rdev, times, ino, size, blocks.
        w.u64(0x7ff);
        self.qid(&mut w, ino)?;
        w.u32(n.ifmt() | n.mode)
            .u32(n.uid)
            .u32(n.gid)
            .u64(n.nlink)
            .u64(n.rdev());
        w.u64(size).u64(4096).u64(size.div_ceil(512));
        for t in [n.atime, n.mtime, n.ctime, (0, 0)] {
            w.u64(t.0 as u64).u64(t.1 as u64);
        }
        w.u64(0).u64(0);
        Ok(w)
    }

    fn setattr(&mut self, w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (fid, valid, mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let size = r.u64()?;
        let atime = (r.u64()? as i64, r.u64()? as i64);
        let mtime = (r.u64()? as i64, r.u64()? as i64);
        let Ok(ino) = self.fid(fid).map(|f| f.ino) else {
            return Ok(Err(EBADF));
        };
        if valid & SET_SIZE != 0 {
            if let Err(e) = self.fs.set_size(ino, size) {
                return Ok(Err(e));
            }
        }
        let now = self.fs.tick();
        let Some(n) = self.fs.node_mut(ino) else {
            return Ok(Err(EBADF));
        };
        if valid & SET_MODE != 0 {
            n.mode = mode & 0o7777;
        }
        if valid & SET_UID != 0 {
            n.uid = uid;
        }
        if valid & SET_GID != 0 {
            n.gid = gid;
        }
        if valid & SET_ATIME != 0 {
            n.atime = if valid & SET_ATIME_SET != 0 {
                atime
            } else {
                now
            };
        }
        if valid & SET_MTIME != 0 {
            n.mtime = if valid & SET_MTIME_SET != 0 {
                mtime
            } else {
                now
            };
        }
        n.ctime = now;
        Ok(Ok(w))
    }

    fn lopen(&mut self, mut w: Writer, fid: u32, flags: u32) -> Res {
        let ino = self.fid(fid)?.ino;
        let node = self.fs.node(ino).ok_or(EBADF)?;
        if let Kind::Dir(children) = &node.kind {
            let mut list = vec![(".".to_string(), ino), ("..".to_string(), node.parent)];
            list.extend(
                children
                    .iter()
                    .filter(|(k, _)| !self.fs.is_hidden(ino, k))
                    .map(|(k, v)| (k.clone(), *v)),
            );
            self.fids.get_mut(&fid).expect("checked").listing = Some(list);
        } else if flags & O_TRUNC != 0 && matches!(node.kind, Kind::File(_) | Kind::External { .. })
        {
            self.fs.set_size(ino, 0)?;
        }
        self.qid(&mut w, ino)?;
        w.u32(0);
        Ok(w)
    }

    fn lcreate(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (fid, name, _flags, mode, gid) = (r.u32()?, r.str()?, r.u32()?, r.u32()?, r.u32()?);
        Ok((|| {
            let f = self.fid(fid)?.clone();
            let ino = self
                .fs
                .create(f.ino, &name, NewKind::File, mode, f.uid, gid)?;
            self.fids.insert(fid, new_fid(ino, f.uid));
            self.qid(&mut w, ino)?;
            w.u32(0);
            Ok(w)
        })())
    }

    fn read(&mut self, mut w: Writer, fid: u32, offset: u64, count: u32) -> Res {
        let f = self.fid(fid)?;
        let count = count.min(self.msize - 11);
        if let Some(x) = &f.xattr {
            let start = (offset as usize).min(x.len());
            let end = (start + count as usize).min(x.len());
            w.u32((end - start) as u32).bytes(&x[start..end]);
            return Ok(w);
        }
        let data = self.fs.read(f.ino, offset, count)?;
        w.u32(data.len() as u32).bytes(data);
        Ok(w)
    }

    fn write(&mut self, mut w: Writer, fid: u32, offset: u64, data: &[u8]) -> Res {
        let ino = self.fid(fid)?.ino;
        let n = self.fs.write(ino, offset, data)?;
        w.u32(n);
        Ok(w)
    }

    fn readdir(&mut self, mut w: Writer, fid: u32, offset: u64, count: u32) -> Res {
        let f = self.fid(fid)?;
        let list = f.listing.as_ref().ok_or(EBADF)?;
        let count = count.min(self.msize - 11) as usize;
        let mut body = Writer::new(0, 0);
        let mut n = 0;
        for (i, (name, ino)) in list.iter().enumerate().skip(offset as usize) {
            let Some(node) = self.fs.node(*ino) else {
                continue;
            };
            // qid[13] offset[8] type[1] name[s]
            if body.written() - 7 + 24 + name.len() > count {
                break;
            }
            self.qid(&mut body, *ino)?;
            body.u64(i as u64 + 1)
                .u8(dirent_type(node.ifmt()))
                .str(name);
            n += 1;
        }
        let bytes = body.finish();
        let payload = if n == 0 { &[][..] } else { &bytes[7..] };
        w.u32(payload.len() as u32).bytes(payload);
        Ok(w)
    }

    fn mkdir(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (dfid, name, mode, gid) = (r.u32()?, r.str()?, r.u32()?, r.u32()?);
        Ok((|| {
            let f = self.fid(dfid)?.clone();
            let ino = self
                .fs
                .create(f.ino, &name, NewKind::Dir, mode, f.uid, gid)?;
            self.qid(&mut w, ino)?;
            Ok(w)
        })())
    }

    fn symlink(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (fid, name, target, gid) = (r.u32()?, r.str()?, r.str()?, r.u32()?);
        Ok((|| {
            let f = self.fid(fid)?.clone();
            let ino = self
                .fs
                .create(f.ino, &name, NewKind::Symlink(target), 0o777, f.uid, gid)?;
            self.qid(&mut w, ino)?;
            Ok(w)
        })())
    }

    fn mknod(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (dfid, name, mode, major, minor, gid) =
            (r.u32()?, r.str()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        Ok((|| {
            let f = self.fid(dfid)?.clone();
            let ifmt = mode & S_IFMT;
            let kind = match ifmt {
                S_IFREG | 0 => NewKind::File,
                S_IFCHR | S_IFBLK => NewKind::Special {
                    ifmt,
                    rdev: crate::diff::makedev(major, minor),
                },
                S_IFIFO | S_IFSOCK => NewKind::Special { ifmt, rdev: 0 },
                _ => return Err(EINVAL),
            };
            let ino = self.fs.create(f.ino, &name, kind, mode, f.uid, gid)?;
            self.qid(&mut w, ino)?;
            Ok(w)
        })())
    }

    fn readlink(&mut self, mut w: Writer, fid: u32) -> Res {
        let ino = self.fid(fid)?.ino;
        match &self.fs.node(ino).ok_or(EBADF)?.kind {
            Kind::Symlink(t) => {
                w.str(t);
                Ok(w)
            }
            _ => Err(EINVAL),
        }
    }

    fn link(&mut self, w: Writer, dfid: u32, fid: u32, name: &str) -> Res {
        let (dir, target) = (self.fid(dfid)?.ino, self.fid(fid)?.ino);
        self.fs.link_at(dir, name, target)?;
        Ok(w)
    }

    fn renameat(&mut self, w: Writer, ofid: u32, oname: &str, nfid: u32, nname: &str) -> Res {
        let (odir, ndir) = (self.fid(ofid)?.ino, self.fid(nfid)?.ino);
        self.fs.rename(odir, oname, ndir, nname)?;
        Ok(w)
    }

    fn unlinkat(&mut self, w: Writer, dfid: u32, name: &str, flags: u32) -> Res {
        let dir = self.fid(dfid)?.ino;
        self.fs.unlink_at(dir, name, flags & AT_REMOVEDIR != 0)?;
        Ok(w)
    }

    fn statfs(&mut self, mut w: Writer, fid: u32) -> Res {
        self.fid(fid)?;
        // V9FS_MAGIC; sizes that leave room (the tab's memory is the real limit).
        w.u32(0x01021997)
            .u32(4096)
            .u64(1 << 20)
            .u64(1 << 19)
            .u64(1 << 19);
        w.u64(1 << 20).u64(1 << 19).u64(0).u32(255);
        Ok(w)
    }

    /// Extended attributes: listing works (none are kept for the guest), reading one says it is absent.
    fn xattrwalk(&mut self, mut w: Writer, fid: u32, newfid: u32, name: &str) -> Res {
        let f = self.fid(fid)?.clone();
        if !name.is_empty() {
            return Err(ENODATA);
        }
        self.fids.insert(
            newfid,
            Fid {
                xattr: Some(Vec::new()),
                ..new_fid(f.ino, f.uid)
            },
        );
        w.u64(0);
        Ok(w)
    }

    /// Locks always succeed (one guest, no other user of the tree): the lock reported is F_UNLCK.
    fn getlock(&mut self, mut w: Writer, r: &mut Reader) -> Result<Res, Short> {
        let (fid, _type, start, length, proc_id, client) =
            (r.u32()?, r.u8()?, r.u64()?, r.u64()?, r.u32()?, r.str()?);
        if self.fid(fid).is_err() {
            return Ok(Err(EBADF));
        }
        w.u8(2).u64(start).u64(length).u32(proc_id).str(&client);
        Ok(Ok(w))
    }
}

fn new_fid(ino: Ino, uid: u32) -> Fid {
    Fid {
        ino,
        uid,
        listing: None,
        xattr: None,
    }
}

fn error(tag: u16, errno: u32) -> Vec<u8> {
    let mut w = Writer::new(RLERROR, tag);
    w.u32(errno);
    w.finish()
}

fn dirent_type(ifmt: u32) -> u8 {
    match ifmt {
        S_IFDIR => 4,
        S_IFREG => 8,
        S_IFLNK => 10,
        S_IFCHR => 2,
        S_IFBLK => 6,
        S_IFIFO => 1,
        S_IFSOCK => 12,
        _ => 0,
    }
}
