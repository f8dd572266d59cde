//! The server driven with the requests Linux's v9fs sends, and the layers that come out.

use super::server::MAX_MSIZE;
use super::wire::{Reader, Writer};
use super::*;
use crate::entry::{Entry, EntryKind};
use crate::tar::TarReader;

const RLERROR: u8 = 7;

/// A base image: bin/ with busybox and a symlink, etc/ with one file, a hard-linked pair and a directory to empty.
fn base_layer() -> Vec<u8> {
    let mut lw = LayerWriter::new(Vec::new(), Compression::Gzip, WriteOptions::default()).unwrap();
    let t = lw.tar();
    t.append_bytes(&Entry::dir("bin", 0o755), &[]).unwrap();
    t.append_bytes(&Entry::file("bin/busybox", 0o755, 2), b"BB")
        .unwrap();
    t.append_bytes(&Entry::symlink("bin/true", "busybox"), &[])
        .unwrap();
    t.append_bytes(&Entry::dir("etc", 0o755), &[]).unwrap();
    t.append_bytes(&Entry::file("etc/a", 0o644, 1), b"a")
        .unwrap();
    t.append_bytes(&Entry::hardlink("etc/b", "etc/a"), &[])
        .unwrap();
    t.append_bytes(&Entry::dir("old", 0o700), &[]).unwrap();
    t.append_bytes(&Entry::file("old/f", 0o600, 0), &[])
        .unwrap();
    lw.finish().unwrap().0
}

struct Client {
    s: Session,
    tag: u16,
    /// The host's store of a spilled root's external bytes, and what the server asked of it.
    store: Option<Vec<u8>>,
    needs: Vec<Need>,
}

impl Client {
    fn new() -> Client {
        let base = base_layer();
        Client::over(Session::from_layers(&[&base], 1000).unwrap(), None)
    }

    /// A connected client of `s`; `store`: where its external files' bytes are.
    fn over(s: Session, store: Option<Vec<u8>>) -> Client {
        let mut c = Client {
            s,
            tag: 0,
            store,
            needs: Vec::new(),
        };
        let r = c.call(100, |w| {
            w.u32(1 << 20).str("9P2000.L");
        });
        assert_eq!(r.0, 101);
        let mut rd = Reader::new(&r.1);
        assert_eq!(rd.u32().unwrap(), MAX_MSIZE);
        assert_eq!(rd.str().unwrap(), "9P2000.L");
        let r = c.call(104, |w| {
            w.u32(0).u32(!0).str("root").str("").u32(0);
        });
        assert_eq!(r.0, 105);
        c
    }

    /// Send one request; (reply type, body after the header).
    fn call(&mut self, kind: u8, body: impl FnOnce(&mut Writer)) -> (u8, Vec<u8>) {
        self.tag += 1;
        let mut w = Writer::new(kind, self.tag);
        body(&mut w);
        let req = w.finish();
        let mut reply = self.s.handle(&req);
        // The host's part: an empty answer waits for external bytes; fetch them and ask again.
        while reply.is_empty() {
            let n = self
                .s
                .need()
                .expect("an empty answer names what it waits for");
            let store = self.store.as_ref().expect("only a spilled root waits");
            let bytes = store[n.off as usize..(n.off + n.len) as usize].to_vec();
            if n.whole {
                self.s.materialize(n.ino, n.off, bytes).unwrap();
            } else {
                self.s.supply(n.off, bytes);
            }
            self.needs.push(n);
            reply = self.s.handle(&req);
        }
        assert_eq!(
            u32::from_le_bytes(reply[..4].try_into().unwrap()) as usize,
            reply.len()
        );
        assert_eq!(u16::from_le_bytes([reply[5], reply[6]]), self.tag);
        (reply[4], reply[7..].to_vec())
    }

    fn ok(&mut self, kind: u8, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let (k, b) = self.call(kind, body);
        assert_eq!(k, kind + 1, "request {kind} failed: {b:?}");
        b
    }

    fn errno(&mut self, kind: u8, body: impl FnOnce(&mut Writer)) -> u32 {
        let (k, b) = self.call(kind, body);
        assert_eq!(k, RLERROR, "request {kind} should fail");
        u32::from_le_bytes(b[..4].try_into().unwrap())
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Vec<u8> {
        self.ok(110, |w| {
            w.u32(fid).u32(newfid).u16(names.len() as u16);
            for n in names {
                w.str(n);
            }
        })
    }

    /// The entries of the step's layer: (name, kind, mode, size, contents).
    fn layer(&mut self) -> Vec<(String, EntryKind, u32, Vec<u8>)> {
        let (blob, _) = self.s.layer(Compression::Gzip, Some(0)).unwrap().unwrap();
        let plain = crate::compress::decoder(&blob[..], Compression::Gzip).unwrap();
        let mut r = TarReader::new(plain);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let data = r.read_to_vec(1 << 20).unwrap();
            assert_eq!(e.mtime, 0);
            out.push((e.path, e.kind, e.mode, data));
        }
        out
    }
}

fn names(l: &[(String, EntryKind, u32, Vec<u8>)]) -> Vec<&str> {
    l.iter().map(|e| e.0.as_str()).collect()
}

#[test]
fn echo_and_rm_make_the_native_change_set() {
    let mut c = Client::new();
    // echo hi > /x
    c.walk(0, 1, &[]);
    c.ok(14, |w| {
        w.u32(1).str("x").u32(0o101).u32(0o644).u32(0);
    });
    let n = c.ok(118, |w| {
        w.u32(1).u64(0).u32(3).bytes(b"hi\n");
    });
    assert_eq!(n, 3u32.to_le_bytes());
    c.ok(120, |w| {
        w.u32(1);
    });
    // rm -f /bin/true
    c.walk(0, 2, &["bin"]);
    c.ok(76, |w| {
        w.u32(2).str("true").u32(0);
    });
    // A container's view of the same changes: docker's diff lines.
    assert_eq!(c.s.diff_lines(), ["C /bin", "D /bin/true", "A /x"]);
    let l = c.layer();
    assert_eq!(names(&l), ["bin", "bin/.wh.true", "x"]);
    assert_eq!((l[0].1.clone(), l[0].2), (EntryKind::Dir, 0o755));
    assert_eq!((l[1].2, l[1].3.as_slice()), (0, &b""[..]));
    assert_eq!((l[2].2, l[2].3.as_slice()), (0o644, &b"hi\n"[..]));
    // Nothing else changed, so the same session gives the same bytes again.
    let a = c.s.layer(Compression::Gzip, Some(0)).unwrap().unwrap().1;
    let b = c.s.layer(Compression::Gzip, Some(0)).unwrap().unwrap().1;
    assert_eq!(a.digest, b.digest);
}

#[test]
fn nothing_changed_gives_no_layer() {
    let mut c = Client::new();
    c.walk(0, 1, &["etc", "a"]);
    c.ok(12, |w| {
        w.u32(1).u32(0);
    });
    let r = c.ok(116, |w| {
        w.u32(1).u64(0).u32(100);
    });
    assert_eq!(r, [1, 0, 0, 0, b'a']);
    assert!(c.s.layer(Compression::Gzip, Some(0)).unwrap().is_none());
    assert_eq!(c.s.server.fs.read_file("/etc/a"), Some(&b"a"[..]));
    assert_eq!(c.s.server.fs.read_file("etc/b"), Some(&b"a"[..]));
    assert_eq!(
        c.s.server.fs.read_file("/bin/true"),
        None,
        "a symlink is not followed"
    );
    assert_eq!(c.s.server.fs.read_file("/etc"), None);
}

#[test]
fn walk_getattr_and_errors() {
    let mut c = Client::new();
    // A partial walk answers the qids it found and makes no fid.
    let r = c.walk(0, 5, &["bin", "nope"]);
    assert_eq!(u16::from_le_bytes([r[0], r[1]]), 1);
    assert_eq!(
        c.errno(24, |w| {
            w.u32(5).u64(0x7ff);
        }),
        9
    );
    assert_eq!(
        c.errno(110, |w| {
            w.u32(0).u32(6).u16(1).str("missing");
        }),
        2
    );
    c.walk(0, 6, &["etc", "a"]);
    let r = c.ok(24, |w| {
        w.u32(6).u64(0x7ff);
    });
    let mut rd = Reader::new(&r);
    assert_eq!(rd.u64().unwrap(), 0x7ff);
    rd.bytes(13).unwrap();
    assert_eq!(rd.u32().unwrap(), 0o100644);
    assert_eq!((rd.u32().unwrap(), rd.u32().unwrap()), (0, 0));
    // Two names (a and its hard link b).
    assert_eq!(rd.u64().unwrap(), 2);
    rd.u64().unwrap();
    assert_eq!(rd.u64().unwrap(), 1);
    // A short request and an unknown one fail cleanly.
    assert_eq!(c.errno(24, |_| {}), 22);
    assert_eq!(c.errno(99, |_| {}), 95);
    assert_eq!(c.s.handle(&[1, 2])[4], RLERROR);
}

#[test]
fn readdir_lists_dot_entries_and_pages() {
    let mut c = Client::new();
    c.walk(0, 1, &["etc"]);
    c.ok(12, |w| {
        w.u32(1).u32(0);
    });
    let mut seen = Vec::new();
    let mut offset = 0u64;
    loop {
        // Room for one entry per answer, so paging is exercised.
        let r = c.ok(40, |w| {
            w.u32(1).u64(offset).u32(30);
        });
        let mut rd = Reader::new(&r);
        let n = rd.u32().unwrap();
        if n == 0 {
            break;
        }
        rd.bytes(13).unwrap();
        offset = rd.u64().unwrap();
        rd.u8().unwrap();
        seen.push(rd.str().unwrap());
    }
    assert_eq!(seen, [".", "..", "a", "b"]);
}

#[test]
fn emptied_directory_gets_whiteouts_and_links_are_kept() {
    let mut c = Client::new();
    c.walk(0, 1, &["old"]);
    c.ok(76, |w| {
        w.u32(1).str("f").u32(0);
    });
    c.ok(72, |w| {
        w.u32(1).str("new").u32(0o755).u32(0);
    });
    // ln /etc/a /etc/c; chmod 600 /bin/busybox; mv /etc/b /etc/d
    c.walk(0, 2, &["etc"]);
    c.walk(0, 3, &["etc", "a"]);
    c.ok(70, |w| {
        w.u32(2).u32(3).str("c");
    });
    c.walk(0, 4, &["bin", "busybox"]);
    setattr(&mut c, 4, Some(0o600), None);
    c.ok(74, |w| {
        w.u32(2).str("b").u32(2).str("d");
    });
    let l = c.layer();
    assert_eq!(
        names(&l),
        [
            "bin",
            "bin/busybox",
            "etc",
            "etc/.wh.b",
            "etc/c",
            "etc/d",
            "old",
            "old/.wh.f",
            "old/new"
        ]
    );
    assert_eq!(l[1].2, 0o600);
    // The first new name of the linked file carries the data, the next links to it.
    assert_eq!(
        (l[4].1.clone(), l[4].3.as_slice()),
        (EntryKind::File, &b"a"[..])
    );
    assert_eq!(l[5].1, EntryKind::Hardlink("etc/c".into()));
    assert_eq!(
        c.errno(76, |w| {
            w.u32(0).str("etc").u32(0x200);
        }),
        39
    );
}

/// Tsetattr of `fid`: the mode (when given) and the mtime (when given, as set by `touch -d`).
fn setattr(c: &mut Client, fid: u32, mode: Option<u32>, mtime: Option<(u64, u64)>) {
    let valid = mode.map_or(0, |_| 1) | mtime.map_or(0, |_| 32 | 256);
    let (sec, nsec) = mtime.unwrap_or_default();
    c.ok(26, |w| {
        w.u32(fid)
            .u32(valid)
            .u32(mode.unwrap_or(0))
            .u32(0)
            .u32(0)
            .u64(0);
        w.u64(0).u64(0).u64(sec).u64(nsec);
    });
}

#[test]
fn files_changed_only_in_ctime_stay_out_as_buildkit_decides_from_their_bytes() {
    // mv /etc/a /old/a2 && mv /old/a2 /etc/a; chmod 755 /bin/busybox (its mode already); the same bytes written
    // into it and its mtime put back (touch -d @0): overlayfs copies each up, BuildKit's differ compares metadata
    // and, the mtimes having no nanoseconds, the bytes: nothing changed.
    let mut c = Client::new();
    c.walk(0, 2, &["etc"]);
    c.walk(0, 3, &["old"]);
    c.ok(74, |w| {
        w.u32(2).str("a").u32(3).str("a2");
    });
    c.ok(74, |w| {
        w.u32(3).str("a2").u32(2).str("a");
    });
    c.walk(0, 4, &["bin", "busybox"]);
    setattr(&mut c, 4, Some(0o755), None);
    c.ok(12, |w| {
        w.u32(4).u32(1);
    });
    c.ok(118, |w| {
        w.u32(4).u64(0).u32(2).bytes(b"BB");
    });
    setattr(&mut c, 4, None, Some((0, 0)));
    assert!(c.s.layer(Compression::Gzip, Some(0)).unwrap().is_none());

    // Other bytes of the same size with the mtime put back: changed (both names of the linked file).
    let mut c = Client::new();
    c.walk(0, 2, &["etc", "a"]);
    c.ok(12, |w| {
        w.u32(2).u32(1);
    });
    c.ok(118, |w| {
        w.u32(2).u64(0).u32(1).bytes(b"z");
    });
    setattr(&mut c, 2, None, Some((0, 0)));
    let l = c.layer();
    assert_eq!(names(&l), ["etc", "etc/a", "etc/b"]);
    assert_eq!(l[1].3, b"z");
}

#[test]
fn symlinks_devices_and_truncation() {
    let mut c = Client::new();
    c.walk(0, 1, &[]);
    c.ok(16, |w| {
        w.u32(1).str("l").str("/bin/busybox").u32(0);
    });
    c.ok(18, |w| {
        w.u32(1).str("null").u32(0o20666).u32(1).u32(3).u32(0);
    });
    c.walk(0, 2, &["l"]);
    let r = c.ok(22, |w| {
        w.u32(2);
    });
    assert_eq!(Reader::new(&r).str().unwrap(), "/bin/busybox");
    // O_TRUNC on open empties the file.
    c.walk(0, 3, &["etc", "a"]);
    c.ok(12, |w| {
        w.u32(3).u32(0o1001);
    });
    let l = c.layer();
    // b is the same inode as a, so it changed too (as the native scan sees it), written as a link to a.
    assert_eq!(names(&l), ["etc", "etc/a", "etc/b", "l", "null"]);
    assert_eq!(l[1].1, EntryKind::File);
    assert!(l[1].3.is_empty());
    assert_eq!(l[2].1, EntryKind::Hardlink("etc/a".into()));
    assert_eq!(l[3].1, EntryKind::Symlink("/bin/busybox".into()));
    assert_eq!(l[4].1, EntryKind::CharDevice { major: 1, minor: 3 });
}

#[test]
fn mount_sources_are_walkable_but_never_listed_scanned_or_written() {
    let mut c = Client::new();
    // The base layer again as another stage: its etc/ (with the hard-linked pair) as a source, and one file.
    let other = base_layer();
    assert_eq!(
        c.s.add_source(".lw-mount-0", [&other[..]], "etc").unwrap(),
        Some(true)
    );
    assert_eq!(
        c.s.add_source(".lw-mount-1", [&other[..]], "/bin/busybox")
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        c.s.add_source(".lw-mount-2", [&other[..]], "nowhere")
            .unwrap(),
        None
    );
    assert!(c.s.add_source(".lw-mount-0", [&other[..]], "etc").is_err());
    // The guest walks into it (its bind mount's source) and reads and writes there.
    c.walk(0, 1, &[".lw-mount-0", "b"]);
    c.ok(12, |w| {
        w.u32(1).u32(0);
    });
    let r = c.ok(116, |w| {
        w.u32(1).u64(0).u32(10);
    });
    assert_eq!(r, [1, 0, 0, 0, b'a']);
    let fs = &c.s.server.fs;
    let (a, b) = (
        fs.resolve(".lw-mount-0/a").unwrap(),
        fs.resolve(".lw-mount-0/b").unwrap(),
    );
    assert_eq!(a, b, "a hard link in the source stays one");
    c.walk(0, 2, &[".lw-mount-0"]);
    c.ok(14, |w| {
        w.u32(2).str("written").u32(0o101).u32(0o644).u32(0);
    });
    // The root's listing leaves the sources out.
    c.walk(0, 3, &[]);
    c.ok(12, |w| {
        w.u32(3).u32(0);
    });
    let r = c.ok(40, |w| {
        w.u32(3).u64(0).u32(8192);
    });
    let mut rd = Reader::new(&r);
    rd.u32().unwrap();
    let mut seen = Vec::new();
    while rd.bytes(13).is_ok() {
        rd.u64().unwrap();
        rd.u8().unwrap();
        seen.push(rd.str().unwrap());
    }
    assert_eq!(seen, [".", "..", "bin", "etc", "old"]);
    // Nothing of them is a change of the step.
    assert!(c.s.diff_lines().is_empty());
    assert!(c.s.layer(Compression::Gzip, Some(0)).unwrap().is_none());
}

#[test]
fn sessions_from_one_base_are_those_of_their_layers_and_stay_apart() {
    let layer = base_layer();
    let base = Base::from_layers(&[&layer]).unwrap();
    let direct = |now| MemFs::from_tree(stack::stack([&layer[..]]).unwrap(), now).unwrap();
    let mut a = Session::from_base(&base, 2000);
    let b = Session::from_base(&base, 3000);
    // Every stamp the making took (the directories the entries were made in) is the session's own time.
    assert_eq!(a.before, direct(2000).scan());
    assert_eq!(b.before, direct(3000).scan());
    assert_eq!(
        a.before["bin"].mtime.0, 2000,
        "a directory stamped while made"
    );
    assert_eq!(b.before["bin"].mtime.0, 3000);
    // The clock goes on from where a tree made at that time leaves it.
    let mut d = direct(2000);
    let ino = a.server.fs.resolve("etc/a").unwrap();
    a.server.fs.write(ino, 0, b"z").unwrap();
    d.write(ino, 0, b"z").unwrap();
    assert_eq!(a.server.fs.scan(), d.scan());
    // A change in one session is not in the other (file data is copied on the first write).
    assert_eq!(a.server.fs.read_file("etc/a"), Some(&b"z"[..]));
    assert_eq!(b.server.fs.read_file("etc/a"), Some(&b"a"[..]));
    assert_eq!(Session::from_base(&base, 2000).before, direct(2000).scan());
}

#[test]
fn a_new_tree_is_served_on_the_mounted_connection() {
    let mut c = Client::new();
    // The guest writes /x in the first step's tree.
    c.walk(0, 1, &[]);
    c.ok(14, |w| {
        w.u32(1).str("x").u32(0o101).u32(0o644).u32(0);
    });
    c.ok(120, |w| {
        w.u32(1);
    });
    // The next step: a fresh tree of the same layers on the same connection (no Tversion, no Tattach).
    let mut next = Session::from_base(&Base::from_layers(&[&base_layer()]).unwrap(), 2000);
    next.adopt(&mut c.s);
    let mut old = std::mem::replace(&mut c.s, next);
    // The root fid walks the new tree: /x is gone, /etc/a is there; the old session answers nothing any more.
    assert_eq!(
        c.errno(110, |w| {
            w.u32(0).u32(2).u16(1).str("x");
        }),
        2
    );
    c.walk(0, 2, &["etc", "a"]);
    c.ok(12, |w| {
        w.u32(2).u32(0);
    });
    let r = c.ok(116, |w| {
        w.u32(2).u64(0).u32(100);
    });
    assert_eq!(r, [1, 0, 0, 0, b'a']);
    let mut w = Writer::new(110, 9);
    w.u32(0).u32(3).u16(0);
    assert_eq!(
        old.handle(&w.finish())[4],
        RLERROR,
        "the old tree lost its fids"
    );
    assert!(c.s.layer(Compression::Gzip, Some(0)).unwrap().is_none());
}

mod streams;
pub(crate) use streams::{spilled_base, VecSpill};
