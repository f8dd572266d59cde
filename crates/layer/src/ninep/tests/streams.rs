//! Roots read from streams, and roots whose large files stay outside memory (spilled to the host's store).

use super::*;

/// A reader that hands out one byte per call, as a stream may (the compression is sniffed across calls).
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some((first, rest)) = self.0.split_first() else {
            return Ok(0);
        };
        let Some(slot) = buf.first_mut() else {
            return Ok(0);
        };
        *slot = *first;
        self.0 = rest;
        Ok(1)
    }
}

#[test]
fn a_root_read_from_streams_is_the_root_of_the_blobs() {
    let gz = base_layer();
    // A plain tar on top (a layer that is not compressed), replacing one file.
    let mut lw = LayerWriter::new(Vec::new(), Compression::None, WriteOptions::default()).unwrap();
    lw.tar()
        .append_bytes(&Entry::file("etc/a", 0o644, 3), b"new")
        .unwrap();
    let plain = lw.finish().unwrap().0;
    let from_blobs = Session::from_base(&Base::from_layers(&[&gz, &plain]).unwrap(), 5);
    let streamed = Base::from_readers([Trickle(&gz), Trickle(&plain)]).unwrap();
    let from_streams = Session::from_base(&streamed, 5);
    assert_eq!(from_streams.before, from_blobs.before);
    assert_eq!(from_streams.server.fs.read_file("etc/a"), Some(&b"new"[..]));
    assert_eq!(
        from_streams.server.fs.read_file("bin/busybox"),
        Some(&b"BB"[..])
    );
    // A stream cut short is an error naming no root (the tar ends early).
    assert!(Base::from_readers([Trickle(&gz[..gz.len() / 2])]).is_err());
}

/// A spill into memory, as the tab's VM puts large files' bytes into browser storage.
#[derive(Default, Clone)]
pub(crate) struct VecSpill(pub std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Spill for VecSpill {
    fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.0.borrow_mut().extend_from_slice(chunk);
        Ok(())
    }
}

/// The root of `layers` pushed into a [`BaseBuilder`] in chunks of `chunk` bytes, files above `threshold` spilled:
/// the root and the spilled bytes.
pub(crate) fn spilled_base(layers: &[&[u8]], threshold: u64, chunk: usize) -> (Base, Vec<u8>) {
    let spill = VecSpill::default();
    let mut b = BaseBuilder::spilling(threshold, Box::new(spill.clone()));
    for l in layers {
        for c in l.chunks(chunk) {
            b.push(c).unwrap();
        }
        b.end_layer().unwrap();
    }
    let base = b.finish().unwrap();
    let bytes = spill.0.take();
    (base, bytes)
}

/// Bytes that differ at every offset of a 4 KiB read (no window can be confused with another).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// The base layer with large files: `big/a` (hard-linked as `big/c`), `big/b`, `big/d`, and a small one.
fn big_layer() -> Vec<u8> {
    let mut lw = LayerWriter::new(Vec::new(), Compression::Gzip, WriteOptions::default()).unwrap();
    let t = lw.tar();
    t.append_bytes(&Entry::dir("big", 0o755), &[]).unwrap();
    for (name, len, seed) in [("a", 300_000, 1), ("b", 200_000, 2), ("d", 70_000, 3)] {
        let e = Entry::file(&format!("big/{name}"), 0o644, len as u64);
        t.append_bytes(&e, &pattern(len, seed)).unwrap();
    }
    t.append_bytes(&Entry::hardlink("big/c", "big/a"), &[])
        .unwrap();
    t.append_bytes(&Entry::file("big/small", 0o644, 5), b"small")
        .unwrap();
    lw.finish().unwrap().0
}

/// The same requests on the root in memory and on the root whose large files are outside: every answer and the
/// layer are the same; only files the layer writes or the guest changes are taken in.
#[test]
fn a_root_with_external_files_answers_and_writes_as_the_root_in_memory() {
    let (base, big) = (base_layer(), big_layer());
    let (outside, spill) = spilled_base(&[&base, &big], 64 << 10, 1 << 20);
    // Only the three large files went out, each once (the hard link shares a's bytes).
    assert_eq!(spill.len(), 300_000 + 200_000 + 70_000);
    assert_eq!(outside.fs.external_of("big/a"), Some((0, 300_000)));
    assert_eq!(outside.fs.external_of("big/small"), None);
    assert_eq!(
        outside.fs.read_file("big/a"),
        None,
        "its bytes are not in memory"
    );
    let inside = Base::from_layers(&[&base, &big]).unwrap();
    let mut x = Client::over(Session::from_base(&outside, 1000), Some(spill));
    let mut m = Client::over(Session::from_base(&inside, 1000), None);
    for c in [&mut x, &mut m] {
        c.walk(0, 1, &["big", "a"]);
        c.ok(12, |w| {
            w.u32(1).u32(0);
        });
    }
    // Sequential 4 KiB reads of a, past its end: one fetch a MiB (the read-ahead covers the whole file).
    for off in (0..310_000u64).step_by(4096) {
        let read = |c: &mut Client| {
            c.ok(116, |w| {
                w.u32(1).u64(off).u32(4096);
            })
        };
        assert_eq!(read(&mut x), read(&mut m), "read at {off}");
    }
    assert_eq!(x.needs.len(), 1);
    assert_eq!(
        (x.needs[0].off, x.needs[0].len, x.needs[0].whole),
        (0, 300_000, false)
    );
    // Write into b (taken in whole first), truncate d to nothing (nothing to fetch), chmod a (its hard link c too).
    for c in [&mut x, &mut m] {
        c.walk(0, 2, &["big", "b"]);
        c.ok(12, |w| {
            w.u32(2).u32(1);
        });
        c.ok(118, |w| {
            w.u32(2).u64(199_998).u32(4).bytes(b"tail");
        });
        c.walk(0, 3, &["big", "d"]);
        c.ok(12, |w| {
            w.u32(3).u32(0o1001);
        });
        setattr(c, 1, Some(0o600), None);
    }
    assert_eq!(x.needs.len(), 2);
    assert_eq!(
        (x.needs[1].off, x.needs[1].len, x.needs[1].whole),
        (300_000, 200_000, true)
    );
    assert_eq!(
        x.s.server.fs.external_of("big/d"),
        None,
        "emptied without a fetch"
    );
    // The layer writes a (and c) with their bytes: the host takes a in first; b already is.
    let needs = x.s.layer_needs();
    assert_eq!(needs.len(), 1);
    assert_eq!((needs[0].off, needs[0].len), (0, 300_000));
    assert!(m.s.layer_needs().is_empty());
    assert!(
        x.s.layer(Compression::Gzip, Some(0)).is_err(),
        "a layer needing outside bytes is refused"
    );
    let store = x.store.clone().unwrap();
    x.s.materialize(needs[0].ino, 0, store[..300_000].to_vec())
        .unwrap();
    assert!(x.s.layer_needs().is_empty());
    assert_eq!(x.s.diff_lines(), m.s.diff_lines());
    let (lx, lm) = (x.layer(), m.layer());
    assert_eq!(names(&lx), ["big", "big/a", "big/b", "big/c", "big/d"]);
    assert_eq!(lx, lm);
    assert_eq!(&lx[2].3[199_998..], b"tail");
    let (bx, ix) = x.s.layer(Compression::Gzip, Some(0)).unwrap().unwrap();
    let (bm, im) = m.s.layer(Compression::Gzip, Some(0)).unwrap().unwrap();
    assert_eq!((bx, ix.digest), (bm, im.digest), "byte-identical layers");
}

/// Taking in bytes that do not fit the file (a wrong length) fails; bytes for a file already taken in are ignored.
#[test]
fn materialize_checks_what_it_takes_in() {
    let big = big_layer();
    let (base, spill) = spilled_base(&[&big], 64 << 10, 1 << 20);
    let mut s = Session::from_base(&base, 1000);
    let ino = s.server.fs.resolve("big/b").unwrap();
    assert!(s.materialize(ino, 300_000, vec![0; 10]).is_err());
    s.materialize(ino, 300_000, spill[300_000..500_000].to_vec())
        .unwrap();
    assert_eq!(
        s.server.fs.read_file("big/b"),
        Some(&pattern(200_000, 2)[..])
    );
    s.materialize(ino, 300_000, vec![0; 10]).unwrap();
    assert_eq!(s.server.fs.external_of("big/b"), None);
}

/// A mount source streamed as a root is (its layer pushed in chunks), its large files spilled after the root's in
/// the session's one store: the guest reads and writes them as it does the same source kept in memory, each fetched
/// from its own place, and the step's layer is the same.
#[test]
fn a_spilled_mount_source_follows_the_roots_bytes_in_one_store() {
    let (base, big) = (base_layer(), big_layer());
    let (root, mut store) = spilled_base(&[&base, &big], 64 << 10, 1 << 20);
    let start = store.len() as u64;
    let spill = VecSpill::default();
    let mut b = BaseBuilder::spilling_from(64 << 10, Box::new(spill.clone()), start);
    for c in big.chunks(1000) {
        b.push(c).unwrap();
    }
    b.end_layer().unwrap();
    let source = b.finish_source().unwrap();
    assert_eq!(source.fs.external_of("big/a"), Some((start, 300_000)));
    assert_eq!(source.fs.read_file("big/small"), Some(&b"small"[..]));
    store.extend(spill.0.take());
    assert_eq!(
        store.len() as u64,
        2 * start,
        "the source's three large files, once each"
    );

    let mut x = Client::over(Session::from_base(&root, 1000), Some(store));
    let inside = Base::from_layers(&[&base, &big]).unwrap();
    let mut m = Client::over(Session::from_base(&inside, 1000), None);
    assert_eq!(
        x.s.add_source_from(".lw-mount-0", &source, "big").unwrap(),
        Some(true)
    );
    assert_eq!(
        m.s.add_source(".lw-mount-0", [&big[..]], "big").unwrap(),
        Some(true)
    );
    assert_eq!(
        x.s.add_source_from(".lw-mount-1", &source, "nowhere")
            .unwrap(),
        None
    );
    for c in [&mut x, &mut m] {
        c.walk(0, 1, &[".lw-mount-0", "a"]);
        c.ok(12, |w| {
            w.u32(1).u32(0);
        });
        c.walk(0, 2, &["big", "d"]);
        c.ok(12, |w| {
            w.u32(2).u32(0);
        });
    }
    // One file after the other (the host keeps one fetched window).
    for fid in [1, 2] {
        for off in (0..310_000u64).step_by(65536) {
            let read = |c: &mut Client| {
                c.ok(116, |w| {
                    w.u32(fid).u64(off).u32(4096);
                })
            };
            assert_eq!(read(&mut x), read(&mut m), "fid {fid}: read at {off}");
        }
    }
    let places: Vec<_> = x.needs.iter().map(|n| (n.off, n.len, n.whole)).collect();
    assert_eq!(
        places,
        [(start, 300_000, false), (500_000, 70_000, false)],
        "the source's a after the root's bytes, the root's d at its own place"
    );
    // A write into the source's b (a read-write bind) takes it in whole from the source's place; the layer holds
    // none of it.
    for c in [&mut x, &mut m] {
        c.walk(0, 3, &[".lw-mount-0", "b"]);
        c.ok(12, |w| {
            w.u32(3).u32(1);
        });
        c.ok(118, |w| {
            w.u32(3).u64(0).u32(4).bytes(b"head");
        });
    }
    let n = x.needs.last().unwrap();
    assert_eq!((n.off, n.len, n.whole), (start + 300_000, 200_000, true));
    assert!(x.s.layer_needs().is_empty());
    assert_eq!(x.s.diff_lines(), m.s.diff_lines());
    for c in [&mut x, &mut m] {
        assert!(
            c.s.layer(Compression::Gzip, Some(0)).unwrap().is_none(),
            "no change to the root"
        );
    }
}
