//! What a build needs from its host, as small traits: blob storage, base images, RUN execution, URL fetches and
//! the step cache; plus in-memory implementations (the browser's, and the tests').

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use lw_oci::{Descriptor, Digest, ImageConfig, Manifest, Platform};

use crate::Error;

/// Content-addressed blob storage.
pub trait BlobStore {
    fn has(&self, d: &Digest) -> bool;
    /// Stream a stored blob.
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + '_>, Error>;
    /// Start writing a new blob; its digest is known only when it is committed.
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error>;
    /// Compressed gzip members kept from earlier layers, so a rebuild recompresses only what changed.
    fn member_cache(&mut self) -> Option<Box<dyn lw_layer::pgzip::MemberCache>> {
        None
    }
    /// A new blob that starts with the first `len` bytes of the stored blob `from` (a layer resumed at a
    /// checkpoint).
    fn create_with_prefix(&mut self, from: &Digest, len: u64) -> Result<Box<dyn BlobSink>, Error> {
        let mut sink = self.create()?;
        let copied = std::io::copy(&mut self.open(from)?.take(len), &mut sink)
            .map_err(|e| Error::Host(format!("copying the start of blob {from}: {e}")))?;
        if copied != len {
            return Err(Error::Host(format!(
                "blob {from} is shorter than the {len} bytes a checkpoint names"
            )));
        }
        Ok(sink)
    }
    /// [`BlobStore::create_with_prefix`], told the SHA-256 state of those `len` bytes (a checkpoint's, saved when
    /// the blob was written): a host that can copy them without reading them (an in-kernel copy or a clone), or
    /// keep the new blob as a reference to them plus its own tail (the native store's spliced blobs), need not hash
    /// them again, and checks the new blob's digest from that state on.
    fn create_resumed(
        &mut self,
        from: &Digest,
        len: u64,
        state: &lw_layer::midstate::Sha256Mid,
    ) -> Result<Box<dyn BlobSink>, Error> {
        let _ = state;
        self.create_with_prefix(from, len)
    }
    /// [`BlobStore::create_resumed`], awaited: what the engine calls to resume a layer. A host that reads stored
    /// blobs only asynchronously (the tab's browser storage) copies the start here, reading it back and checking it
    /// against `state` as it goes, since it was not read when the step began.
    fn resume_blob<'a>(
        &'a mut self,
        from: &'a Digest,
        len: u64,
        state: &'a lw_layer::midstate::Sha256Mid,
    ) -> SinkFuture<'a> {
        Box::pin(std::future::ready(self.create_resumed(from, len, state)))
    }
    /// Where COPY and ADD layers' gzip members are compressed when not on this thread (the tab's Web Workers);
    /// the engine awaits it. None: compressed here (on worker threads natively).
    fn member_pool(&mut self) -> Option<Box<dyn lw_layer::pgzip::MemberPool>> {
        None
    }
    /// Whether blob `d` is one this store cannot read at once (the tab's blobs in browser storage): a step reads
    /// such a layer only through [`BlobStore::prepare_layers`] (and a layer resumes from it through
    /// [`BlobStore::resume_blob`]).
    fn needs_prepare(&self, d: &Digest) -> bool {
        let _ = d;
        false
    }
    /// A layer's tar stream, decompressed: every read of a layer's entries or file contents goes through here.
    fn open_layer(&self, layer: &Descriptor) -> Result<Box<dyn Read + '_>, Error> {
        decode_layer(self.open(&layer.digest)?, layer)
    }
    /// Called as each step starts: what an earlier step's [`BlobStore::prepare_layers`] made readable is dropped,
    /// so a step reads only what its own pre-step asked for.
    fn forget_prepared(&mut self) {}
    /// Awaited before a step reads `layers` (those that [`BlobStore::needs_prepare`]): their entries, and the
    /// contents of the files at or under the clean relative paths `want` (`""`: every file), must then be readable
    /// through [`BlobStore::open_layer`] until the next call or [`BlobStore::forget_prepared`]. The tab streams a
    /// layer kept in browser storage through its scanner here, keeping every header but only the wanted files' data.
    fn prepare_layers<'a>(
        &'a mut self,
        layers: &'a [Descriptor],
        want: &'a [String],
    ) -> PrepareFuture<'a> {
        let _ = (layers, want);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// What [`BlobStore::prepare_layers`] answers.
pub type PrepareFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + 'a>>;

/// What [`BlobStore::resume_blob`] answers.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn BlobSink>, Error>> + 'a>>;

/// The tar stream of layer `d` from its blob `raw`, decompressed as its media type says.
pub fn decode_layer<'a>(
    raw: Box<dyn Read + 'a>,
    d: &Descriptor,
) -> Result<Box<dyn Read + 'a>, Error> {
    let comp = lw_oci::media::layer_compression(&d.media_type).ok_or_else(|| {
        Error::Host(format!(
            "layer {} has unsupported media type {}",
            d.digest, d.media_type
        ))
    })?;
    lw_layer::compress::decoder(raw, comp)
        .map_err(|e| Error::Host(format!("layer {}: {e}", d.digest)))
}

/// A blob being written. `commit` checks the bytes against `digest` and makes the blob visible.
pub trait BlobSink: Write {
    fn commit(self: Box<Self>, digest: &Digest) -> Result<(), Error>;
}

/// Put a small blob (a document) into the store.
pub fn put_bytes(
    store: &mut dyn BlobStore,
    media_type: &str,
    bytes: &[u8],
) -> Result<Descriptor, Error> {
    let d = Descriptor::of(media_type, bytes);
    if !store.has(&d.digest) {
        let mut sink = store.create()?;
        sink.write_all(bytes)
            .map_err(|e| Error::Host(format!("writing blob {}: {e}", d.digest)))?;
        sink.commit(&d.digest)?;
    }
    Ok(d)
}

/// Read a whole blob, bounded.
pub fn read_blob(store: &dyn BlobStore, d: &Digest, limit: u64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    store
        .open(d)?
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Host(format!("reading blob {d}: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::Host(format!(
            "blob {d} is larger than {limit} bytes"
        )));
    }
    Ok(out)
}

/// A base image, resolved for one platform, with its layer blobs present in the [`BlobStore`].
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The reference as the Dockerfile named it after expansion, normalised (`docker.io/library/alpine:3.20`).
    pub name: String,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

/// Finds base images (`FROM`, `COPY --from=image`) in a local store or a registry.
pub trait ImageSource {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, Error>;

    /// Make `reference` resolvable, writing what it needs into `blobs` (the build's store): the engine awaits this
    /// before each [`ImageSource::resolve`] of a step, so a source whose image is made from files a host reads
    /// asynchronously (a named directory context of the tab's `Blob`s) streams them. `None` (the default): nothing
    /// to do.
    fn prepare<'a>(
        &'a mut self,
        reference: &'a str,
        blobs: &'a mut dyn BlobStore,
    ) -> Option<crate::context::Fetch<'a>> {
        let _ = (reference, blobs);
        None
    }
}

/// An image source with no images: `FROM scratch` and stage bases only.
pub struct NoImages;

impl ImageSource for NoImages {
    fn resolve(&mut self, reference: &str, _: &Platform) -> Result<BaseImage, Error> {
        Err(Error::Host(format!(
            "image {reference} is not available (no image source configured)"
        )))
    }
}

/// A RUN step for an executor.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The stage's layers, bottom first (blobs in the store).
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    /// argv, already passed through SHELL for shell form.
    pub args: Vec<String>,
    /// `KEY=value` environment (image ENV plus build args in effect).
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `default` (a private namespace with outbound access), `none` (loopback only) or `host`.
    pub network: String,
    /// `--add-host` entries (name, address) for the step's /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// Raw `--mount` specs after expansion.
    pub mounts: Vec<String>,
    /// The sources of `type=bind` mounts and `type=cache,from=` seeds, resolved by the engine (one per such mount).
    pub binds: Vec<BindSource>,
    /// Files from heredocs, (path in the container, contents).
    pub files: Vec<(String, Vec<u8>)>,
    pub platform: Platform,
    /// All entries the executor writes get this mtime when set (reproducible builds).
    pub source_date_epoch: Option<i64>,
    /// `Dockerfile:LINE` for messages.
    pub location: String,
    /// The sandbox's host name (BuildKit's `BUILDKIT_SANDBOX_HOSTNAME`); empty for `buildkitsandbox`.
    pub hostname: String,
    /// `RUN --security=insecure`: a privileged container (every capability, no masked paths), as BuildKit runs it
    /// with the `security.insecure` entitlement.
    pub insecure: bool,
}

/// The resolved source of one `RUN --mount=type=bind` (or the seed of a `type=cache,from=` mount): layers (blobs in
/// the store) to unpack, and the path in them to mount. The build context is written as a layer by the engine, so an executor never needs the host's
/// files and a request can travel over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSource {
    /// Index of the mount in [`RunRequest::mounts`].
    pub mount: usize,
    /// Layers, bottom first, and their diff IDs.
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    /// Absolute path inside the unpacked layers (`/` for their root).
    pub path: String,
}

/// What a RUN step produced: the layer it wrote to the store (or none when nothing changed).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub layer: Option<(Descriptor, Digest)>,
}

/// Executes RUN steps (natively: an OCI runtime).
pub trait RunExecutor {
    fn run(
        &mut self,
        req: &RunRequest,
        store: &mut dyn BlobStore,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, Error>;
}

impl<T: RunExecutor + ?Sized> RunExecutor for Box<T> {
    fn run(
        &mut self,
        req: &RunRequest,
        store: &mut dyn BlobStore,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, Error> {
        (**self).run(req, store, output)
    }
}

/// What [`AsyncRunExecutor::run_async`] returns: a future that may borrow the request, store and output sink.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<RunResult, Error>> + 'a>>;

/// Executes RUN steps asynchronously (in the browser: a JS callback answering with a Promise). Every
/// [`RunExecutor`] is one, answering at once, so the engine has a single code path for both.
pub trait AsyncRunExecutor {
    fn run_async<'a>(
        &'a mut self,
        req: &'a RunRequest,
        store: &'a mut dyn BlobStore,
        output: &'a mut dyn FnMut(&[u8]),
    ) -> RunFuture<'a>;
}

impl<T: RunExecutor> AsyncRunExecutor for T {
    fn run_async<'a>(
        &'a mut self,
        req: &'a RunRequest,
        store: &'a mut dyn BlobStore,
        output: &'a mut dyn FnMut(&[u8]),
    ) -> RunFuture<'a> {
        Box::pin(std::future::ready(self.run(req, store, output)))
    }
}

/// Fetches `ADD <url>` sources.
pub trait UrlFetcher {
    fn fetch(&mut self, url: &str) -> Result<Vec<u8>, Error>;
    /// Check out `reference` (a branch, tag or commit; empty for the remote's HEAD) of the git repository at
    /// `remote`, with its `.git` directory when `keep_git_dir`.
    fn fetch_git(
        &mut self,
        remote: &str,
        reference: &str,
        keep_git_dir: bool,
    ) -> Result<GitCheckout, Error> {
        let _ = (reference, keep_git_dir);
        Err(Error::Host(format!(
            "ADD {remote}: git sources are not available here"
        )))
    }
}

/// What [`AsyncUrlFetcher::fetch_async`] returns.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + 'a>>;

/// What [`AsyncUrlFetcher::fetch_git_async`] returns.
pub type GitFuture<'a> = Pin<Box<dyn Future<Output = Result<GitCheckout, Error>> + 'a>>;

/// Fetches `ADD <url>` and git sources asynchronously (in the browser: `fetch()`, answering with a Promise). Every
/// [`UrlFetcher`] is one, answering at once, so the engine has a single code path for both (as for RUN).
pub trait AsyncUrlFetcher {
    fn fetch_async<'a>(&'a mut self, url: &'a str) -> FetchFuture<'a>;
    fn fetch_git_async<'a>(
        &'a mut self,
        remote: &'a str,
        reference: &'a str,
        keep_git_dir: bool,
    ) -> GitFuture<'a>;
}

impl<T: UrlFetcher> AsyncUrlFetcher for T {
    fn fetch_async<'a>(&'a mut self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(std::future::ready(self.fetch(url)))
    }
    fn fetch_git_async<'a>(
        &'a mut self,
        remote: &'a str,
        reference: &'a str,
        keep_git_dir: bool,
    ) -> GitFuture<'a> {
        Box::pin(std::future::ready(self.fetch_git(
            remote,
            reference,
            keep_git_dir,
        )))
    }
}

/// A git checkout: the commit it is at and its entries (paths relative to the repository's root, parents before
/// children; file data beside each file).
#[derive(Debug, Clone, Default)]
pub struct GitCheckout {
    pub commit: String,
    pub entries: Vec<(lw_layer::Entry, Vec<u8>)>,
}

/// A layer a step made, as the cache remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLayer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// Step cache: cache key → the layer the step made (or `None` for a step that made no layer).
pub trait Cache {
    fn get(&self, key: &Digest) -> Option<Option<CachedLayer>>;
    fn put(&mut self, key: &Digest, value: Option<CachedLayer>);
    /// A layer's index (its tar headers without data, see [`crate::engine::rootfs::layer_index`]), so that path
    /// lookups (COPY's destination, WORKDIR) need not decompress the layer again. None when not kept.
    fn layer_index(&self, _layer: &Digest) -> Option<Vec<u8>> {
        None
    }
    /// Keep a layer's index; a cache may drop it, as it is remade from the layer.
    fn put_layer_index(&self, _layer: &Digest, _index: &[u8]) {}
    /// The checkpoints of the layer a step last wrote (see `engine::resume`), by the step's position key.
    fn resume_points(&self, _key: &Digest) -> Option<Vec<u8>> {
        None
    }
    /// Keep them; a cache may drop them (the next build is then cold).
    fn put_resume_points(&self, _key: &Digest, _points: &[u8]) {}
    /// The checkpoints of the last few layers the step wrote, the latest first: a rebuild resumes from the one
    /// whose unchanged start is longest (an edit made after another was undone differs from the last layer in two
    /// places, but from an earlier one only in the new one). A cache keeping only one gives just that.
    fn resume_candidates(&self, key: &Digest) -> Vec<Vec<u8>> {
        self.resume_points(key).into_iter().collect()
    }
}

/// Blobs in memory (the browser keeps these for the session). Clones share the same map.
#[derive(Default, Clone)]
pub struct MemoryBlobs {
    pub blobs: Arc<Mutex<BTreeMap<Digest, Arc<Vec<u8>>>>>,
}

impl MemoryBlobs {
    pub fn get(&self, d: &Digest) -> Option<Arc<Vec<u8>>> {
        self.blobs.lock().expect("blob map lock").get(d).cloned()
    }
    pub fn insert(&self, d: Digest, bytes: Vec<u8>) {
        self.blobs
            .lock()
            .expect("blob map lock")
            .insert(d, Arc::new(bytes));
    }
}

struct MemorySink {
    buf: Vec<u8>,
    target: MemoryBlobs,
}

impl Write for MemorySink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BlobSink for MemorySink {
    fn commit(self: Box<Self>, digest: &Digest) -> Result<(), Error> {
        digest.check("new blob", &self.buf)?;
        self.target.insert(digest.clone(), self.buf);
        Ok(())
    }
}

/// Reads an `Arc`'d blob.
struct ArcReader {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl Read for ArcReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl BlobStore for MemoryBlobs {
    fn has(&self, d: &Digest) -> bool {
        self.blobs.lock().expect("blob map lock").contains_key(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + '_>, Error> {
        match self.get(d) {
            Some(data) => Ok(Box::new(ArcReader { data, pos: 0 })),
            None => Err(Error::Host(format!("blob {d} is not in the store"))),
        }
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        Ok(Box::new(MemorySink {
            buf: Vec::new(),
            target: self.clone(),
        }))
    }
}

#[derive(Default)]
pub struct MemoryCache {
    pub entries: BTreeMap<Digest, Option<CachedLayer>>,
    /// Layer digest → its index.
    pub indexes: Mutex<BTreeMap<Digest, Vec<u8>>>,
    /// Step position key → the checkpoints of the layer it last wrote.
    pub resume: Mutex<BTreeMap<Digest, Vec<u8>>>,
}

impl Cache for MemoryCache {
    fn get(&self, key: &Digest) -> Option<Option<CachedLayer>> {
        self.entries.get(key).cloned()
    }
    fn put(&mut self, key: &Digest, value: Option<CachedLayer>) {
        self.entries.insert(key.clone(), value);
    }
    fn layer_index(&self, layer: &Digest) -> Option<Vec<u8>> {
        self.indexes.lock().ok()?.get(layer).cloned()
    }
    fn put_layer_index(&self, layer: &Digest, index: &[u8]) {
        if let Ok(mut m) = self.indexes.lock() {
            m.insert(layer.clone(), index.to_vec());
        }
    }
    fn resume_points(&self, key: &Digest) -> Option<Vec<u8>> {
        self.resume.lock().ok()?.get(key).cloned()
    }
    fn put_resume_points(&self, key: &Digest, points: &[u8]) {
        if let Ok(mut m) = self.resume.lock() {
            m.insert(key.clone(), points.to_vec());
        }
    }
}
