//! A context whose bytes are not at hand (the tab's `Blob`s): the engine awaits `Context::fetch` before every block
//! it reads while writing a COPY layer on the member pool, reads nothing outside the fetched ranges, never holds more
//! than one block of a file, and writes the same layer bytes as from a context held in memory. ADD reads the head of
//! each local file it may unpack and holds (`Context::hold`) only those that may be archives.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;

use lw_engine::context::{Context, ContextEntry, Fetch, FilteredContext, MemoryContext};
use lw_engine::engine::{build, BuildOptions, BuildResult, Host};
use lw_engine::host::{BlobSink, BlobStore, MemoryBlobs, MemoryCache, NoImages};
use lw_engine::Error;
use lw_layer::pgzip::MemberPool;
use lw_oci::{Digest, Platform};

/// A memory context that answers `read_at` only inside the range the last `fetch` loaded, or for a file it was asked
/// to hold (until released).
struct Fetched {
    inner: MemoryContext,
    window: RefCell<Option<(String, u64, u64)>>,
    fetches: Cell<usize>,
    largest: Cell<usize>,
    held: RefCell<BTreeMap<String, u64>>,
    holds: RefCell<Vec<(String, u64)>>,
}

impl Fetched {
    fn new(inner: MemoryContext) -> Fetched {
        Fetched {
            inner,
            window: RefCell::new(None),
            fetches: Cell::new(0),
            largest: Cell::new(0),
            held: RefCell::default(),
            holds: RefCell::default(),
        }
    }
}

impl Context for Fetched {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        self.inner.entries()
    }
    fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
        self.inner.entry(path)
    }
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        if let Some(&len) = self.held.borrow().get(path) {
            if offset < len {
                let n = buf
                    .len()
                    .min((len - offset).min(usize::MAX as u64) as usize);
                return self.inner.read_at(path, offset, &mut buf[..n]);
            }
        }
        match &*self.window.borrow() {
            Some((p, start, end)) if p == path && offset >= *start && offset < *end => {
                let n = buf.len().min((*end - offset) as usize);
                self.inner.read_at(path, offset, &mut buf[..n])
            }
            _ => Err(Error::Host(format!("{path} at {offset}: not fetched"))),
        }
    }
    fn fetch<'a>(&'a self, path: &'a str, offset: u64, len: usize) -> Option<Fetch<'a>> {
        Some(Box::pin(async move {
            self.fetches.set(self.fetches.get() + 1);
            self.largest.set(self.largest.get().max(len));
            *self.window.borrow_mut() = Some((path.to_string(), offset, offset + len as u64));
            Ok(())
        }))
    }
    fn hold<'a>(&'a self, path: &'a str, len: u64) -> Option<Fetch<'a>> {
        Some(Box::pin(async move {
            self.holds.borrow_mut().push((path.to_string(), len));
            self.held.borrow_mut().insert(path.to_string(), len);
            Ok(())
        }))
    }
    fn release(&self) {
        self.held.borrow_mut().clear();
    }
    fn reads_async(&self) -> bool {
        true
    }
}

/// A memory context (every byte at hand, as the CLI's directory) that counts its listings.
struct Counted {
    inner: MemoryContext,
    listings: Cell<usize>,
}

impl Context for Counted {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        self.listings.set(self.listings.get() + 1);
        self.inner.entries()
    }
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        self.inner.read_at(path, offset, buf)
    }
}

/// A member pool that compresses on this thread, answering at once.
#[derive(Default)]
struct InlinePool(VecDeque<(u64, io::Result<Vec<u8>>)>);

impl MemberPool for InlinePool {
    fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()> {
        let mut out = Vec::new();
        let made = lw_layer::deflate::gzip_member(&data, level, &mut out).map(|_| out);
        self.0.push_back((index, made.map_err(io::Error::other)));
        Ok(())
    }
    fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)> {
        self.0.pop_front()
    }
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(std::future::ready(()))
    }
    fn capacity(&self) -> usize {
        4
    }
}

/// Memory blobs whose layers are compressed on an [`InlinePool`], as the tab's are on its workers.
#[derive(Default)]
struct Pooled(MemoryBlobs);

impl BlobStore for Pooled {
    fn has(&self, d: &Digest) -> bool {
        self.0.has(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn io::Read + '_>, Error> {
        self.0.open(d)
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        self.0.create()
    }
    fn member_pool(&mut self) -> Option<Box<dyn MemberPool>> {
        Some(Box::<InlinePool>::default())
    }
}

fn context() -> MemoryContext {
    let mut c = MemoryContext::new();
    // A file of several blocks (the engine reads 256 KiB at a time), small ones, an empty one.
    let big: Vec<u8> = (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    c.insert_file("data/big.bin", big).unwrap();
    for i in 0..20 {
        c.insert_file(
            &format!("src/f{i}.txt"),
            format!("file {i}\n").repeat(i * 50),
        )
        .unwrap();
    }
    c.insert_file("empty", Vec::new()).unwrap();
    c
}

fn run(ctx: &dyn Context, blobs: &mut dyn BlobStore, no_cache: bool) -> BuildResult {
    run_file(ctx, blobs, no_cache, b"FROM scratch\nCOPY . /app/\n")
}

fn run_file(
    ctx: &dyn Context,
    blobs: &mut dyn BlobStore,
    no_cache: bool,
    dockerfile: &[u8],
) -> BuildResult {
    let mut o = BuildOptions::new(dockerfile.to_vec(), Platform::new("linux", "amd64", None));
    o.no_cache = no_cache;
    let mut events = |_| {};
    let mut host = Host {
        context: ctx,
        blobs,
        images: &mut NoImages,
        run: None,
        fetch: None,
        cache: &mut MemoryCache::default(),
        events: &mut events,
    };
    build(&o, &mut host).unwrap()
}

#[test]
fn a_fetched_context_builds_the_same_layer_block_by_block() {
    let plain = run(&context(), &mut MemoryBlobs::default(), false);
    for no_cache in [false, true] {
        let fetched = Fetched::new(context());
        let r = run(&fetched, &mut Pooled::default(), no_cache);
        assert_eq!(
            r.layers[0].digest, plain.layers[0].digest,
            "no_cache {no_cache}"
        );
        assert_eq!(r.manifest.digest, plain.manifest.digest);
        // Writing fetches every block of every non-empty file; without no_cache the cache key is hashed first,
        // reading each file's blocks and then its end (an empty read) once more.
        let blocks = |size: u64| size.div_ceil(256 * 1024) as usize;
        let sizes: Vec<u64> = fetched
            .inner
            .entries()
            .unwrap()
            .into_iter()
            .filter(|e| e.is_file())
            .map(|e| e.size)
            .collect();
        let writing: usize = sizes.iter().map(|s| blocks(*s)).sum();
        let hashing: usize = sizes.iter().map(|s| blocks(*s) + 1).sum();
        let want = if no_cache { writing } else { writing + hashing };
        assert_eq!(fetched.fetches.get(), want, "no_cache {no_cache}");
        assert_eq!(fetched.largest.get(), 256 * 1024);
    }
}

/// ADD's local files: a gzip'd tar (unpacked), a file with gzip's magic that is no archive, a plain file past 512
/// bytes and a small one (both copied as they are). Only the first two are held whole; the layer is the one a
/// context in memory gives, with the tar unpacked.
#[test]
fn add_holds_only_the_files_that_may_be_archives() {
    use lw_layer::tar::{TarReader, WriteOptions};
    use lw_layer::{Entry, LayerWriter};
    use lw_oci::media::Compression;
    let mut lw = LayerWriter::new(Vec::new(), Compression::Gzip, WriteOptions::default()).unwrap();
    lw.tar()
        .append_bytes(&Entry::file("inside.txt", 0o644, 7), b"inside\n")
        .unwrap();
    let tgz = lw.finish().unwrap().0;
    let mut fake = Vec::new();
    lw_layer::deflate::gzip_member(b"not a tar at all", 6, &mut fake).unwrap();
    let ctx = || {
        let mut c = MemoryContext::new();
        c.insert_file("app.tar.gz", tgz.clone()).unwrap();
        c.insert_file("fake.gz", fake.clone()).unwrap();
        c.insert_file("plain.bin", vec![7u8; 4096]).unwrap();
        c.insert_file("small.txt", b"small\n".to_vec()).unwrap();
        c
    };
    let dockerfile = b"FROM scratch\nADD app.tar.gz fake.gz plain.bin small.txt /x/\n";
    let mut blobs = MemoryBlobs::default();
    let plain = run_file(&ctx(), &mut blobs, true, dockerfile);
    // Through the .dockerignore filter every build's context goes through.
    let filtered = FilteredContext::from_ignore_file(Fetched::new(ctx()), None).unwrap();
    let r = run_file(&filtered, &mut Pooled::default(), true, dockerfile);
    let fetched = filtered.inner();
    assert_eq!(r.layers[0].digest, plain.layers[0].digest);
    let whole: Vec<String> = fetched
        .holds
        .borrow()
        .iter()
        .filter(|(_, len)| *len == u64::MAX)
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(
        whole,
        ["app.tar.gz", "fake.gz"],
        "{:?}",
        fetched.holds.borrow()
    );
    assert_eq!(
        fetched.holds.borrow().len(),
        6,
        "four heads and two whole files"
    );
    assert!(fetched.held.borrow().is_empty(), "released after planning");
    let blob = lw_engine::host::BlobStore::open(&blobs, &plain.layers[0].digest).unwrap();
    let mut t = TarReader::new(lw_layer::compress::decoder(blob, Compression::Gzip).unwrap());
    let mut names = Vec::new();
    while let Some(e) = t.next_entry().unwrap() {
        names.push(e.path);
    }
    assert_eq!(
        names,
        [
            "x",
            "x/fake.gz",
            "x/inside.txt",
            "x/plain.bin",
            "x/small.txt"
        ]
    );
}

/// A copy onto a file the stage already has with the same metadata is compared by content to leave it out
/// (`drop_unchanged`); with a context whose bytes are only fetched (the tab's `Blob`s without WebCrypto: no digest
/// known), the file is hashed block by block first instead of read whole, and the second COPY adds nothing.
#[test]
fn a_repeated_copy_of_a_fetched_file_is_compared_without_reading_it_whole() {
    let ctx = || {
        let mut c = MemoryContext::new();
        c.insert_file("a.bin", vec![3u8; 600_000]).unwrap();
        c
    };
    let dockerfile = b"FROM scratch\nCOPY a.bin /x\nCOPY a.bin /x\n";
    let plain = run_file(&ctx(), &mut MemoryBlobs::default(), true, dockerfile);
    let fetched = Fetched::new(ctx());
    let r = run_file(&fetched, &mut Pooled::default(), true, dockerfile);
    assert_eq!(r.layers.len(), plain.layers.len());
    for (a, b) in r.layers.iter().zip(&plain.layers) {
        assert_eq!(a.digest, b.digest);
    }
    assert_eq!(r.manifest.digest, plain.manifest.digest);
    assert_eq!(
        fetched.largest.get(),
        256 * 1024,
        "never more than a block at a time"
    );
}

/// Where every byte is at hand (the CLI), ADD does nothing ahead of planning: it lists the context as often as the
/// same COPY does (a listing walks the whole directory natively).
#[test]
fn add_reads_nothing_ahead_where_the_context_is_at_hand() {
    let listings = |dockerfile: &[u8]| {
        let mut c = MemoryContext::new();
        c.insert_file("plain.bin", vec![7u8; 4096]).unwrap();
        let counted = Counted {
            inner: c,
            listings: Cell::new(0),
        };
        run_file(&counted, &mut MemoryBlobs::default(), true, dockerfile);
        counted.listings.get()
    };
    let copy = listings(b"FROM scratch\nCOPY plain.bin /x/\n");
    assert!(copy > 0);
    assert_eq!(listings(b"FROM scratch\nADD plain.bin /x/\n"), copy);
}

/// A named directory context (`--build-context extra=DIR`, the tab's `buildContexts: {extra: {files}}`) whose bytes
/// are only fetched: its layer is written a block at a time as the main context's are (before, it was read whole
/// and synchronously, which a `Blob` cannot be), and `FROM extra` with `COPY --from=extra` make the same image as
/// from a context in memory.
#[test]
fn a_named_context_is_read_block_by_block() {
    use lw_engine::named::{Named, NamedImages};
    let dockerfile = b"FROM extra\nCOPY --from=extra data/big.bin /copy.bin\n";
    let build_with = |named: Box<dyn Context + '_>, blobs: &mut dyn BlobStore| {
        let store = MemoryBlobs::default();
        let names = BTreeMap::from([("extra".to_string(), Named::Context(named))]);
        let mut images = NamedImages::new(NoImages, Box::new(store), names, Some(0));
        let mut o = BuildOptions::new(dockerfile.to_vec(), Platform::new("linux", "amd64", None));
        o.named_contexts = images.names();
        let mut events = |_| {};
        let mut host = Host {
            context: &MemoryContext::new(),
            blobs,
            images: &mut images,
            run: None,
            fetch: None,
            cache: &mut MemoryCache::default(),
            events: &mut events,
        };
        build(&o, &mut host).unwrap()
    };
    let plain = build_with(Box::new(context()), &mut MemoryBlobs::default());
    let fetched = Fetched::new(context());
    let filtered = FilteredContext::from_ignore_file(&fetched, None).unwrap();
    let r = build_with(Box::new(filtered), &mut Pooled::default());
    assert_eq!(r.layers.len(), 2);
    assert_eq!(r.layers, plain.layers);
    assert_eq!(r.manifest.digest, plain.manifest.digest);
    assert!(fetched.fetches.get() > 0);
    assert_eq!(
        fetched.largest.get(),
        256 * 1024,
        "never more than a block at a time"
    );
}
