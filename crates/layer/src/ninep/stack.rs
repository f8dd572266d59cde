//! A stage root stacked from its layers pushed chunk by chunk ([`BaseBuilder`]): each layer decompressed and its
//! tar parsed in push mode ([`crate::push::LayerScan`]), every entry applied as [`FileTree::apply_layer`] applies
//! it ([`FileTree::place`], then [`FileTree::put`] once its data is in), so the tab never holds a whole layer: the
//! page reads a stored layer a MiB at a time and pushes each piece.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

use super::{fs, Base, BASE_CLOCK};
use crate::push::{LayerScan, Tap};
use crate::tree::{LayerStats, Spill};
use crate::{Entry, Error, FileTree};

/// An entry whose data is arriving: into memory (`data`), to the spill (`external`: its place there) or nowhere (a
/// file above [`fs::MAX_FILE`], kept empty as the pull-mode tree keeps it).
struct Pending {
    entry: Entry,
    data: Option<Vec<u8>>,
    external: Option<u64>,
}

/// The tree being stacked, shared by a layer scan's two callbacks (headers, data).
struct Stacker {
    tree: FileTree,
    layer: usize,
    stats: LayerStats,
    /// Files above the threshold have their bytes appended to the spill; `spilled` bytes are there so far.
    spill: Option<(u64, Box<dyn Spill>)>,
    spilled: u64,
    pending: Option<Pending>,
    /// The error a callback stopped the scan with (the scan carries only its words).
    failed: Option<Error>,
}

impl Stacker {
    /// `r`, its error kept for the builder to answer with.
    fn keep(&mut self, r: Result<(), Error>) -> Result<(), String> {
        r.map_err(|e| {
            let words = e.to_string();
            self.failed = Some(e);
            words
        })
    }

    fn entry(&mut self, entry: Entry) -> Result<(), Error> {
        if !self.tree.place(self.layer, &entry, &mut self.stats)? {
            return Ok(());
        }
        if !entry.has_data() || entry.size == 0 {
            // An empty file's data is empty (in memory), as the pull-mode tree reads it.
            let data = entry.has_data().then(Vec::new);
            self.tree
                .put(self.layer, entry, data, None, &mut self.stats);
            return Ok(());
        }
        let external = match &self.spill {
            Some((threshold, _)) if entry.size > *threshold => Some(self.spilled),
            _ => None,
        };
        // Its exact size reserved, as the pull-mode reader does: the root keeps the vector, so no slack.
        let data = (external.is_none() && entry.size <= fs::MAX_FILE)
            .then(|| Vec::with_capacity(entry.size as usize));
        self.pending = Some(Pending {
            entry,
            data,
            external,
        });
        Ok(())
    }

    fn data(&mut self, chunk: &[u8], last: bool) -> Result<(), Error> {
        // Data of an entry `place` took (a whiteout with bytes) has nowhere to go.
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        match (&mut p.data, p.external, &mut self.spill) {
            (Some(d), _, _) => d.extend_from_slice(chunk),
            (None, Some(_), Some((_, spill))) => {
                spill.write(chunk)?;
                self.spilled += chunk.len() as u64;
            }
            _ => {}
        }
        if last {
            let p = self.pending.take().expect("pending");
            self.tree
                .put(self.layer, p.entry, p.data, p.external, &mut self.stats);
        }
        Ok(())
    }
}

/// A stage root made from its layers pushed in chunks, base first: [`BaseBuilder::push`] each layer's bytes,
/// [`BaseBuilder::end_layer`] after each, [`BaseBuilder::finish`]. Compression (gzip, zstd, none) is told from each
/// layer's first bytes.
pub struct BaseBuilder {
    stacker: Rc<RefCell<Stacker>>,
    scan: Option<LayerScan<'static>>,
}

impl Default for BaseBuilder {
    fn default() -> Self {
        BaseBuilder::new()
    }
}

impl BaseBuilder {
    /// A root that keeps every file's bytes in memory.
    pub fn new() -> BaseBuilder {
        BaseBuilder::with_spill(None)
    }

    /// A root that keeps the bytes of files above `threshold` in `spill`: the tree keeps where they are
    /// ([`fs::Kind::External`]) and the host answers reads of them ([`super::Session::need`]).
    pub fn spilling(threshold: u64, spill: Box<dyn Spill>) -> BaseBuilder {
        BaseBuilder::spilling_from(threshold, spill, 0)
    }

    /// [`BaseBuilder::spilling`] into a store that already holds `start` bytes (a mount source's large files go
    /// after the stage root's in the session's one store), so the first spilled file's place is `start`.
    pub fn spilling_from(threshold: u64, spill: Box<dyn Spill>, start: u64) -> BaseBuilder {
        let b = BaseBuilder::with_spill(Some((threshold, spill)));
        b.stacker.borrow_mut().spilled = start;
        b
    }

    fn with_spill(spill: Option<(u64, Box<dyn Spill>)>) -> BaseBuilder {
        BaseBuilder {
            stacker: Rc::new(RefCell::new(Stacker {
                tree: FileTree::with_data(fs::MAX_FILE),
                layer: 0,
                stats: LayerStats::default(),
                spill,
                spilled: 0,
                pending: None,
                failed: None,
            })),
            scan: None,
        }
    }

    /// The scan of the next layer, its entries and their data going into the tree.
    fn scan(&self) -> LayerScan<'static> {
        let (heads, bodies) = (self.stacker.clone(), self.stacker.clone());
        LayerScan::with_tap(
            Box::new(move |e| {
                let mut s = heads.borrow_mut();
                let r = s.entry(e);
                s.keep(r)
            }),
            Tap {
                want: Box::new(|e| e.has_data() && e.size > 0),
                data: Box::new(move |d, last| {
                    let mut s = bodies.borrow_mut();
                    let r = s.data(d, last);
                    s.keep(r)
                }),
            },
            false,
        )
    }

    /// The next bytes of the current layer.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if self.scan.is_none() {
            self.scan = Some(self.scan());
        }
        let r = self.scan.as_mut().expect("made").push(chunk);
        r.map_err(|e| self.failure(e))
    }

    /// The callback's own error when one stopped the scan, else `e`.
    fn failure(&self, e: Error) -> Error {
        self.stacker.borrow_mut().failed.take().unwrap_or(e)
    }

    /// The current layer is complete (an error when its stream is not: a truncated tar or compressed stream).
    pub fn end_layer(&mut self) -> Result<(), Error> {
        let scan = match self.scan.take() {
            Some(s) => s,
            None => self.scan(),
        };
        scan.finish().map_err(|e| self.failure(e))?;
        let mut s = self.stacker.borrow_mut();
        s.layer += 1;
        s.stats = LayerStats::default();
        Ok(())
    }

    /// The merged tree of the layers ended so far (every file's bytes handed on to the spill).
    pub fn into_tree(self) -> Result<FileTree, Error> {
        if self.scan.is_some() {
            return Err(Error::Truncated("the last layer was not ended".into()));
        }
        let Ok(s) = Rc::try_unwrap(self.stacker) else {
            unreachable!("only a layer's scan shares the tree, and none is left");
        };
        let mut s = s.into_inner();
        if let Some((_, spill)) = s.spill.as_mut() {
            spill.flush()?;
        }
        Ok(s.tree)
    }

    /// The stage root.
    pub fn finish(self) -> Result<Base, Error> {
        Ok(Base {
            fs: fs::MemFs::from_tree(self.into_tree()?, BASE_CLOCK)?,
        })
    }

    /// A mount source's tree ([`super::Session::add_source_from`]).
    pub fn finish_source(self) -> Result<Source, Error> {
        Ok(Source {
            fs: fs::MemFs::from_tree(self.into_tree()?, 0)?,
        })
    }
}

/// The tree of a mount source's layers (a bind mount's source, a cache mount's seed), made once and grafted into a
/// session as a hidden root entry.
pub struct Source {
    pub(super) fs: fs::MemFs,
}

/// The tree of a stack of layers read as streams (compressed or plain tars, base first), pushed a block at a time
/// into a [`BaseBuilder`]: the one way a root is stacked.
pub(super) fn stack<R: Read>(layers: impl IntoIterator<Item = R>) -> Result<FileTree, Error> {
    let mut b = BaseBuilder::new();
    let mut buf = vec![0u8; 256 << 10];
    for mut l in layers {
        loop {
            match l.read(&mut buf)? {
                0 => break,
                n => b.push(&buf[..n])?,
            }
        }
        b.end_layer()?;
    }
    b.into_tree()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress;
    use crate::ninep::tests::{spilled_base, VecSpill};
    use crate::tar::{TarWriter, WriteOptions};

    fn tar(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out, WriteOptions::default());
        for (e, d) in entries {
            w.append_bytes(e, d).unwrap();
        }
        w.finish().unwrap();
        out
    }

    fn file(path: &str, data: &[u8]) -> (Entry, Vec<u8>) {
        (Entry::file(path, 0o644, data.len() as u64), data.to_vec())
    }

    fn bytes(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed).to_le_bytes()[2])
            .collect()
    }

    /// Three layers, gzip, zstd (two frames) and plain: large and small files, an empty one, a long name, hard and
    /// symbolic links, a whiteout, an opaque directory, a directory replaced by a file, a directory implied only.
    fn layers() -> Vec<Vec<u8>> {
        compress::set_zstd_encoder(compress::ZstdEncoder {
            version: lw_zstd::version(),
            frame: lw_zstd::frame,
        });
        let long = format!("deep/{}/f", "n".repeat(150));
        let base = tar(&[
            (Entry::dir("etc", 0o755), vec![]),
            file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            file("etc/big", &bytes(200_000, 1)),
            (Entry::hardlink("etc/big-link", "etc/big"), vec![]),
            (Entry::symlink("etc/sym", "passwd"), vec![]),
            file("opq/gone", b"gone"),
            file("opq/big", &bytes(70_000, 2)),
            file("todel/x", b"x"),
            file("was-dir/y", b"y"),
            file("implied/dir/file", b"z"),
            file(&long, &bytes(5000, 3)),
            file("empty", b""),
        ]);
        let mut gz = compress::gzip_encoder(Vec::new(), 6);
        std::io::Write::write_all(&mut gz, &base).unwrap();
        let gz = gz.finish().unwrap();
        let second = tar(&[
            (Entry::dir("opq", 0o700), vec![]),
            file("opq/.wh..wh..opq", b""),
            file("opq/new", &bytes(100_000, 4)),
            file(".wh.todel", b""),
            file("was-dir", b"now a file"),
            file("etc/passwd", b"root:x:0:0::/root:/bin/ash\n"),
        ]);
        let mut zst = Vec::new();
        for part in second.chunks(3000) {
            compress::zstd_frame(part, 3, &mut zst).unwrap();
        }
        let third = tar(&[file("etc/big", &bytes(90_000, 5)), file("small", b"small")]);
        vec![gz, zst, third]
    }

    /// The tree as the pull-mode reader stacks it (decompressed as a stream, [`FileTree::apply_layer`]).
    fn pulled(layers: &[Vec<u8>]) -> FileTree {
        let mut tree = FileTree::with_data(fs::MAX_FILE);
        for (i, l) in layers.iter().enumerate() {
            let plain = compress::decoder(&l[..], compress::sniff(l)).unwrap();
            tree.apply_layer(i, plain).unwrap();
        }
        tree
    }

    /// The tree pushed in pieces of the sizes `sizes` gives (in turn), files above `threshold` spilled.
    fn pushed(
        layers: &[Vec<u8>],
        threshold: u64,
        sizes: &mut dyn FnMut() -> usize,
    ) -> (FileTree, Vec<u8>) {
        let spill = VecSpill::default();
        let mut b = BaseBuilder::spilling(threshold, Box::new(spill.clone()));
        for l in layers {
            let mut at = 0;
            while at < l.len() {
                let n = sizes().clamp(1, l.len() - at);
                b.push(&l[at..at + n]).unwrap();
                at += n;
            }
            b.end_layer().unwrap();
        }
        let tree = b.into_tree().unwrap();
        let bytes = spill.0.take();
        (tree, bytes)
    }

    /// `pushed` is `pulled` with the spilled files' bytes at their places in `spill`.
    fn assert_same(pulled: &FileTree, pushed: &FileTree, spill: &[u8]) {
        let want: Vec<_> = pulled.iter().collect();
        let got: Vec<_> = pushed.iter().collect();
        assert_eq!(got.len(), want.len());
        for ((p, w), (q, g)) in want.into_iter().zip(got) {
            assert_eq!(p, q);
            assert_eq!((&g.entry, g.layer), (&w.entry, w.layer), "{p}");
            match g.external {
                Some(off) => {
                    let len = g.entry.size as usize;
                    assert_eq!(g.data, None, "{p}");
                    assert_eq!(
                        Some(&spill[off as usize..off as usize + len]),
                        w.data.as_deref(),
                        "{p}"
                    );
                }
                None => assert_eq!(g.data, w.data, "{p}"),
            }
        }
    }

    #[test]
    fn a_pushed_root_is_the_pulled_root_in_pieces_of_one_byte_and_of_random_sizes() {
        let layers = layers();
        let want = pulled(&layers);
        assert!(want.get("opq/gone").is_none() && want.get("todel/x").is_none());
        assert_eq!(want.get("was-dir/y"), None);
        // Everything in memory, one byte at a time.
        let (one, spill) = pushed(&layers, u64::MAX, &mut || 1);
        assert!(spill.is_empty());
        assert_same(&want, &one, &spill);
        // Files above 64 KiB spilled, pieces of random sizes (xorshift: the same every run).
        for seed in [1u64, 7, 1234] {
            let mut x = seed;
            let mut random = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 70_000) as usize + 1
            };
            let (got, spill) = pushed(&layers, 64 << 10, &mut random);
            assert_eq!(
                spill.len(),
                200_000 + 70_000 + 100_000 + 90_000,
                "seed {seed}"
            );
            assert!(got.get("etc/big").unwrap().external.is_some());
            assert_same(&want, &got, &spill);
        }
    }

    #[test]
    fn a_pushed_root_serves_what_a_root_from_readers_serves() {
        let layers = layers();
        let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let (pushed, _) = spilled_base(&refs, u64::MAX, 777);
        let read = Base::from_layers(&refs).unwrap();
        assert_eq!(pushed.fs.scan(), read.fs.scan());
        assert_eq!(
            pushed.fs.read_file("etc/passwd"),
            Some(&b"root:x:0:0::/root:/bin/ash\n"[..])
        );
    }

    #[test]
    fn a_truncated_layer_or_a_bad_entry_is_refused_with_its_error() {
        let layers = layers();
        for l in &layers {
            let mut b = BaseBuilder::new();
            let cut = &l[..l.len() - 700.min(l.len() / 2)];
            let r = cut
                .chunks(4096)
                .try_for_each(|c| b.push(c))
                .and_then(|()| b.end_layer());
            assert!(r.is_err(), "a layer cut short is refused");
        }
        // A hard link to nothing, and a whiteout naming nothing: the tree's own errors.
        for bad in [
            tar(&[(Entry::hardlink("a", "missing"), vec![])]),
            tar(&[file("d/.wh.", b"")]),
        ] {
            let mut b = BaseBuilder::new();
            let e = b.push(&bad).expect_err("refused");
            assert!(matches!(e, Error::UnsafePath { .. }), "{e:?}");
        }
        // A layer not ended is no root.
        let mut b = BaseBuilder::new();
        b.push(&layers[2]).unwrap();
        assert!(b.finish().is_err());
    }

    #[test]
    fn an_empty_stack_and_an_empty_layer_make_an_empty_root() {
        let mut b = BaseBuilder::new();
        b.end_layer().unwrap();
        assert!(b.into_tree().unwrap().is_empty());
        assert!(BaseBuilder::new().finish().unwrap().fs.scan().is_empty());
    }
}
