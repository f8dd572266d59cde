//! A small COPY on a large base does not read the base's layers again: the first build that needs the base's
//! paths decompresses each layer once and keeps its index in the cache; later COPY, WORKDIR and cache hits read
//! only the index. Counted through a blob store that records the bytes read per blob, so no timing is involved.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use lw_engine::context::MemoryContext;
use lw_engine::engine::BuildResult;
use lw_engine::host::{BaseImage, BlobSink, BlobStore, ImageSource, MemoryBlobs, MemoryCache};
use lw_engine::Error;
use lw_layer::tree::FileTree;
use lw_oci::{Digest, Manifest, Platform};

/// A memory blob store that counts the bytes read from each blob.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryBlobs,
    read: Arc<Mutex<BTreeMap<Digest, u64>>>,
}

struct CountingReader<'a> {
    inner: Box<dyn Read + 'a>,
    digest: Digest,
    read: Arc<Mutex<BTreeMap<Digest, u64>>>,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self
            .read
            .lock()
            .unwrap()
            .entry(self.digest.clone())
            .or_default() += n as u64;
        Ok(n)
    }
}

impl BlobStore for Counting {
    fn has(&self, d: &Digest) -> bool {
        self.inner.has(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + '_>, Error> {
        Ok(Box::new(CountingReader {
            inner: self.inner.open(d)?,
            digest: d.clone(),
            read: self.read.clone(),
        }))
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        self.inner.create()
    }
}

impl Counting {
    fn bytes_read(&self, digests: &[Digest]) -> u64 {
        let m = self.read.lock().unwrap();
        digests.iter().map(|d| m.get(d).copied().unwrap_or(0)).sum()
    }
    fn reset(&self) {
        self.read.lock().unwrap().clear();
    }
}

/// One image, `base:1`.
struct OneImage(BaseImage);

impl ImageSource for OneImage {
    fn resolve(&mut self, reference: &str, _: &Platform) -> Result<BaseImage, Error> {
        if reference.ends_with("base:1") {
            Ok(self.0.clone())
        } else {
            Err(Error::Host(format!("no image {reference}")))
        }
    }
}

fn run(
    blobs: &mut Counting,
    cache: &mut MemoryCache,
    images: &mut dyn ImageSource,
    df: &str,
    ctx: &MemoryContext,
) -> BuildResult {
    super::common::build_without_run(blobs, cache, images, df, ctx).unwrap()
}

fn layers(r: &BuildResult) -> Vec<lw_oci::Descriptor> {
    let m: Manifest = serde_json::from_slice(&r.manifest_bytes).unwrap();
    m.layers
}

#[test]
fn small_copies_read_the_base_layers_once() {
    let mut blobs = Counting::default();
    let mut cache = MemoryCache::default();
    // A base of a few thousand files, one of its directories reached through a symlink.
    let mut base_ctx = MemoryContext::new();
    for i in 0..3000 {
        base_ctx
            .insert_file(
                &format!("usr/share/d{}/f{i}", i % 50),
                format!("{i:0>400}").into_bytes(),
            )
            .unwrap();
    }
    base_ctx.insert_dir("srv/www").unwrap();
    base_ctx.insert_symlink("www", "srv/www").unwrap();
    let base = run(
        &mut blobs,
        &mut cache,
        &mut lw_engine::host::NoImages,
        "FROM scratch\nCOPY . /\n",
        &base_ctx,
    );
    let base_layers = layers(&base);
    let base_digests: Vec<Digest> = base_layers.iter().map(|l| l.digest.clone()).collect();
    let mut images = OneImage(BaseImage {
        name: "docker.io/library/base:1".into(),
        manifest_digest: base.manifest.digest.clone(),
        manifest: serde_json::from_slice(&base.manifest_bytes).unwrap(),
        config: base.config.clone(),
    });
    // A fresh cache, as on a machine that only has the image: the first COPY reads the base once.
    let mut cache = MemoryCache::default();
    blobs.reset();
    let mut ctx = MemoryContext::new();
    ctx.insert_file("index.html", b"<h1>one</h1>\n".to_vec())
        .unwrap();
    let df = "FROM base:1\nCOPY index.html /www/\nWORKDIR /usr/share/d7/sub\n";
    let first = run(&mut blobs, &mut cache, &mut images, df, &ctx);
    let whole: u64 = base_layers.iter().map(|l| l.size).sum();
    assert_eq!(blobs.bytes_read(&base_digests), whole, "read once, whole");

    // The destination resolves through the base's symlink (www -> srv/www), from the index.
    let tree = |blobs: &Counting, r: &BuildResult| {
        lw_engine::engine::rootfs::tree_of(blobs, &layers(r), true).unwrap()
    };
    let t: FileTree = tree(&blobs, &first);
    let copied = t
        .get("srv/www/index.html")
        .expect("COPY followed the symlink");
    assert_eq!(copied.data.as_deref(), Some(&b"<h1>one</h1>\n"[..]));
    assert!(t.get("usr/share/d7/sub").is_some_and(|n| n.entry.is_dir()));

    // A changed file: a cache miss, a new layer, and not one byte of the base read.
    blobs.reset();
    ctx.insert_file("index.html", b"<h1>two</h1>\n".to_vec())
        .unwrap();
    let second = run(&mut blobs, &mut cache, &mut images, df, &ctx);
    assert_eq!(blobs.bytes_read(&base_digests), 0);
    let t = tree(&blobs, &second);
    assert_eq!(
        t.get("srv/www/index.html").unwrap().data.as_deref(),
        Some(&b"<h1>two</h1>\n"[..])
    );
    assert_ne!(second.manifest.digest, first.manifest.digest);
    // The same layer as a build that read the base: the index answers as the layer did.
    let mut fresh_blobs = blobs.clone();
    let mut fresh = MemoryCache::default();
    let again = run(&mut fresh_blobs, &mut fresh, &mut images, df, &ctx);
    assert_eq!(again.manifest.digest, second.manifest.digest);

    // A cache hit reads none of it either.
    blobs.reset();
    let hit = run(&mut blobs, &mut cache, &mut images, df, &ctx);
    assert_eq!(hit.manifest.digest, second.manifest.digest);
    assert_eq!(blobs.bytes_read(&base_digests), 0);
}
