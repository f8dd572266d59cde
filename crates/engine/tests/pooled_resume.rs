//! Rebuilds in proportion to the change on the tab's path: a COPY layer compressed on a member pool (the tab's Web
//! Workers, here a pool that answers only when awaited, newest first) is written with checkpoints and resumed from
//! the last unchanged one, its start copied through the store's `resume_blob` (awaited, as the tab reads a layer
//! back from browser storage), and the result is the cold build's bytes while only the files after the
//! checkpoint are read.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use lw_engine::context::{Context, ContextEntry, MemoryContext};
use lw_engine::engine::{build_async, BuildOptions, BuildResult, Host};
use lw_engine::host::{BlobSink, BlobStore, MemoryBlobs, MemoryCache, NoImages, SinkFuture};
use lw_engine::Error;
use lw_layer::compress::LayerFormat;
use lw_layer::midstate::Sha256Mid;
use lw_layer::pgzip::MemberPool;
use lw_oci::{Digest, Platform};

/// A member pool that compresses only when awaited and hands members back newest first.
#[derive(Default)]
struct Deferred {
    pending: Vec<(u64, Vec<u8>, u32)>,
    done: Vec<(u64, io::Result<Vec<u8>>)>,
}

impl MemberPool for Deferred {
    fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()> {
        self.pending.push((index, data, level));
        Ok(())
    }
    fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)> {
        self.done.pop()
    }
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>> {
        for (i, d, l) in self.pending.drain(..) {
            let mut out = Vec::new();
            let made = lw_layer::deflate::gzip_member(&d, l, &mut out).map(|_| out);
            self.done.insert(0, (i, made.map_err(io::Error::other)));
        }
        Box::pin(Later(false))
    }
    fn capacity(&self) -> usize {
        3
    }
}

/// Pending once, then ready: the engine must really await what the host hands it.
struct Later(bool);

impl Future for Later {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The tab's store, modelled: layers compressed on a [`Deferred`] pool, and stored blobs that cannot be read at
/// once (`open` fails, as for a blob in browser storage), whose start a resumed layer gets through `resume_blob`:
/// read back later, and checked against the checkpoint's state.
#[derive(Default)]
struct Tab {
    blobs: MemoryBlobs,
    /// (blob, bytes copied) per resume.
    resumes: RefCell<Vec<(Digest, u64)>>,
}

impl BlobStore for Tab {
    fn has(&self, d: &Digest) -> bool {
        self.blobs.has(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn io::Read + '_>, Error> {
        Err(Error::Host(format!("blob {d} is in browser storage")))
    }
    fn needs_prepare(&self, _: &Digest) -> bool {
        true
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        self.blobs.create()
    }
    fn member_pool(&mut self) -> Option<Box<dyn MemberPool>> {
        Some(Box::<Deferred>::default())
    }
    fn resume_blob<'a>(
        &'a mut self,
        from: &'a Digest,
        len: u64,
        state: &'a Sha256Mid,
    ) -> SinkFuture<'a> {
        Box::pin(async move {
            Later(false).await;
            let stored = self.blobs.get(from).expect("the stored blob");
            let start = &stored[..len as usize];
            let mut h = Sha256Mid::new();
            h.update(start);
            assert_eq!(
                &h, state,
                "the checkpoint's state is that of the blob's start"
            );
            let mut sink = self.blobs.create()?;
            io::Write::write_all(&mut sink, start).unwrap();
            self.resumes.borrow_mut().push((from.clone(), len));
            Ok(sink)
        })
    }
}

/// A context that counts the bytes read from it, and knows the digests given (the tab's WebCrypto digests of its
/// Blobs) without reading.
struct Counting<'a> {
    inner: &'a MemoryContext,
    read: Cell<u64>,
    known: BTreeMap<String, Digest>,
}

impl Context for Counting<'_> {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        self.inner.entries()
    }
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.inner.read_at(path, offset, buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
    fn known_digest(&self, path: &str) -> Option<Digest> {
        self.known.get(path).cloned()
    }
}

fn files() -> Vec<(String, Vec<u8>)> {
    (0..48)
        .map(|i| {
            let text = format!("file {i} says {} ", i * 7919 % 1000).repeat(9000);
            (format!("d{}/f{i:02}", i % 3), text.into_bytes())
        })
        .collect()
}

fn context(edit: Option<usize>) -> MemoryContext {
    let mut c = MemoryContext::new();
    for (i, (p, mut d)) in files().into_iter().enumerate() {
        if edit == Some(i) {
            // 1 KB changed in the file.
            for b in &mut d[500..1524] {
                *b ^= 1;
            }
        }
        c.insert_file(&p, d).unwrap().mtime = 1_700_000_000;
    }
    c
}

fn build(blobs: &mut dyn BlobStore, cache: &mut MemoryCache, ctx: &dyn Context) -> BuildResult {
    let o = BuildOptions::new(
        b"FROM scratch\nCOPY . /data/\n".to_vec(),
        Platform::new("linux", "amd64", None),
    );
    let mut events = |_| {};
    let mut host = Host {
        context: ctx,
        blobs,
        images: &mut NoImages,
        run: None,
        fetch: None,
        cache,
        events: &mut events,
    };
    block_on(build_async(&o, &mut host)).unwrap()
}

/// The same build, cold, inline (no pool, no checkpoints kept before): the bytes every path must give.
fn cold(ctx: &MemoryContext) -> BuildResult {
    let mut o = BuildOptions::new(
        b"FROM scratch\nCOPY . /data/\n".to_vec(),
        Platform::new("linux", "amd64", None),
    );
    o.layer_format = LayerFormat::GZIP;
    o.no_cache = true;
    let mut events = |_| {};
    let mut host = Host {
        context: ctx,
        blobs: &mut MemoryBlobs::default(),
        images: &mut NoImages,
        run: None,
        fetch: None,
        cache: &mut MemoryCache::default(),
        events: &mut events,
    };
    lw_engine::engine::build(&o, &mut host).unwrap()
}

#[test]
fn a_pooled_rebuild_after_an_edit_resumes_from_a_stored_blob_and_matches_a_cold_build() {
    let total: u64 = files().iter().map(|f| f.1.len() as u64).sum();
    // Items are in path order: d2/f47 is the last file, d1/f25 one in the middle (of d1's files).
    for (edit, with_digests) in [(47, true), (25, true), (47, false)] {
        let mut tab = Tab::default();
        let mut cache = MemoryCache::default();
        let first = context(None);
        let digests = |c: &MemoryContext| -> BTreeMap<String, Digest> {
            files()
                .iter()
                .map(|(p, _)| {
                    let mut d = vec![0; c.entry(p).unwrap().unwrap().size as usize];
                    c.read_at(p, 0, &mut d).unwrap();
                    (p.clone(), Digest::sha256_of(&d))
                })
                .collect()
        };
        let known = |c: &MemoryContext| match with_digests {
            true => digests(c),
            false => BTreeMap::new(),
        };
        let c1 = Counting {
            inner: &first,
            read: Cell::new(0),
            known: known(&first),
        };
        let r1 = build(&mut tab, &mut cache, &c1);
        assert_eq!(
            r1.manifest.digest,
            cold(&first).manifest.digest,
            "the pooled cold build, with checkpoints, is the inline cold build"
        );
        assert!(tab.resumes.borrow().is_empty());
        // Nothing changed: the step is cached, nothing is resumed.
        let c2 = Counting {
            inner: &first,
            read: Cell::new(0),
            known: known(&first),
        };
        let r2 = build(&mut tab, &mut cache, &c2);
        assert_eq!(r2.manifest.digest, r1.manifest.digest);
        assert!(tab.resumes.borrow().is_empty());

        let edited = context(Some(edit));
        let c3 = Counting {
            inner: &edited,
            read: Cell::new(0),
            known: known(&edited),
        };
        let r3 = build(&mut tab, &mut cache, &c3);
        let want = cold(&edited);
        assert_eq!(
            r3.manifest.digest, want.manifest.digest,
            "edit {edit}: the resumed layer is the cold build's"
        );
        assert_eq!(r3.layers, want.layers);
        let resumes = tab.resumes.borrow().clone();
        assert_eq!(resumes.len(), 1, "edit {edit}: resumed once");
        assert_eq!(resumes[0].0, r1.layers[0].digest, "from the earlier layer");
        assert!(resumes[0].1 > 0);
        // Without the digests at hand every file is read once for the step's key: the layer reads only the rest.
        let key_reads = if with_digests { 0 } else { total };
        let layer_reads = c3.read.get() - key_reads;
        let most = if edit == 47 { total / 4 } else { total * 3 / 4 };
        assert!(
            c3.read.get() >= key_reads && layer_reads < most,
            "edit {edit}, digests {with_digests}: the layer read {layer_reads} of {total} bytes"
        );
    }
}
