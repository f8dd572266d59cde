//! Deterministic parallel gzip (and zstd) for layers: the tar stream is cut into independently compressed members
//! (gzip members, or zstd frames) at tar entry boundaries chosen from content (so cuts stay put when other files
//! change), members are compressed on worker threads natively and inline in wasm, and the output is byte-identical
//! whatever the thread count. A [`MemberCache`] lets a rebuild reuse the compressed members whose input did not
//! change.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};

use lw_oci::Digest;

use crate::midstate::Sha256Mid;
use marked_hash::{Bytes, MarkedHash};
pub use marked_hash::{HashStates, RemoteHash};

mod marked_hash;

/// A member start a later build can resume from: the tar offset where the member starts (and where the next tar
/// header is due from there: later when the member starts inside a large file), the blob offset of its compressed
/// bytes, and the SHA-256 states of both streams up to those offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tar_offset: u64,
    pub next_header: u64,
    pub blob_offset: u64,
    pub tar_state: Sha256Mid,
    pub blob_state: Sha256Mid,
}

/// What a writer with checkpoints made: both digests, the sizes, and a checkpoint at every member start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
    pub checkpoints: Vec<Checkpoint>,
}

/// Both streams hashed (on helper threads natively), marked at member starts: member index → (tar offset, next
/// header) when cut, completed with the blob offset when the member is written, and with both hash states at the
/// end.
struct Marks {
    tar: MarkedHash,
    blob: MarkedHash,
    blob_off: u64,
    starts: BTreeMap<u64, (u64, u64)>,
    /// (member index, tar offset, next header, blob offset).
    points: Vec<(u64, u64, u64, u64)>,
}

impl Marks {
    /// Both hashes on the pool's worker when it hashes streams, else here (on helper threads natively).
    fn new(
        tar: Sha256Mid,
        blob: Sha256Mid,
        blob_off: u64,
        mut pool: Option<&mut Box<dyn MemberPool>>,
    ) -> Marks {
        let mut hash =
            |state: Sha256Mid| match pool.as_deref_mut().and_then(|p| p.stream_hash(&state)) {
                Some(r) => MarkedHash::remote(r),
                None => MarkedHash::start(state),
            };
        let tar = hash(tar);
        let blob = hash(blob);
        Marks {
            tar,
            blob,
            blob_off,
            starts: BTreeMap::new(),
            points: Vec::new(),
        }
    }

    fn finish(self) -> io::Result<Marked> {
        let (tar, tar_marks) = self.tar.finish()?;
        let (blob, blob_marks) = self.blob.finish()?;
        let state = |marks: &BTreeMap<u64, Sha256Mid>, i: u64| {
            marks
                .get(&i)
                .cloned()
                .ok_or_else(|| io::Error::other(format!("no hash state at member {i}")))
        };
        let checkpoints = self
            .points
            .iter()
            .map(|&(i, tar_offset, next_header, blob_offset)| {
                Ok(Checkpoint {
                    tar_offset,
                    next_header,
                    blob_offset,
                    tar_state: state(&tar_marks, i)?,
                    blob_state: state(&blob_marks, i)?,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Marked {
            diff_id: tar.finish(),
            digest: blob.finish(),
            size: self.blob_off,
            uncompressed_size: tar.len(),
            checkpoints,
        })
    }
}

/// Below this many bytes a member is never cut at an entry boundary.
pub const MIN_MEMBER: usize = 256 * 1024;
/// At an entry boundary past this size, a member is always cut.
pub const MAX_MEMBER: usize = 2 * 1024 * 1024;
/// Inside one large file, cut every this many bytes (from the member's start, 512-aligned).
pub const MAX_INSIDE: usize = 4 * 1024 * 1024;

/// Compressed members by the digest of their input (and level). Worker threads look members up, hence `Send`.
pub trait MemberCache: Send {
    fn get(&mut self, key: &Digest) -> Option<Vec<u8>>;
    fn put(&mut self, key: &Digest, compressed: &[u8]);
}

/// What a member is compressed into: a gzip member ([`crate::deflate`]) or a zstd frame (libzstd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
}

/// The key a member of `data` is cached under: the digest of its input, the codec, its encoder's version and level.
pub fn member_key(codec: Codec, data: &[u8], level: u32) -> Digest {
    let mut h = lw_oci::DigestHasher::sha256();
    match codec {
        // "2": the encoder of crate::deflate; members cached from the earlier plain zlib encoder must not be reused.
        Codec::Gzip => h.update(&[b'g', b'z', b'2', level as u8]),
        Codec::Zstd => h.update(&[b'z', b's', b'1', level as u8]),
    }
    h.update(data);
    h.finish()
}

/// A cached member as a host stores it: a line with the CRC-32 and length of `compressed`, then its bytes. The key
/// (the file name) is the SHA-256 of the member's input, so a CRC is enough: it guards against damage (a torn
/// write, a bad disk), not forgery (whoever can write the cache can write the blobs too), and costs far less than
/// hashing every member again.
pub fn frame_member(compressed: &[u8]) -> Vec<u8> {
    let mut v = member_check(compressed).into_bytes();
    v.extend_from_slice(compressed);
    v
}

/// The member [`frame_member`] framed, or None when `framed` is damaged.
pub fn unframe_member(mut framed: Vec<u8>) -> Option<Vec<u8>> {
    let nl = framed.iter().position(|&b| b == b'\n')?;
    if framed[..=nl] != *member_check(&framed[nl + 1..]).as_bytes() {
        return None;
    }
    framed.drain(..=nl);
    Some(framed)
}

fn member_check(body: &[u8]) -> String {
    let mut crc = flate2::Crc::new();
    crc.update(body);
    format!("crc32:{:08x} {}\n", crc.sum(), body.len())
}

fn compress(codec: Codec, data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match codec {
        Codec::Gzip => crate::deflate::gzip_member(data, level, &mut out)?,
        Codec::Zstd => crate::compress::zstd_frame(data, level, &mut out)?,
    }
    Ok(out)
}

/// FNV-1a of a header's name field: the content that decides cut points.
fn name_hash(header: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in header[..100].iter().take_while(|&&b| b != 0) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The data size a tar header announces (octal or base-256); 0 when unreadable.
fn header_size(header: &[u8]) -> u64 {
    crate::tar::header_size(header)
}

/// Compresses members somewhere the writer cannot block on (Web Workers in a tab). The writer hands inputs over
/// and collects outputs without waiting; whoever drives it awaits [`ParallelGzip::wait`] when
/// [`ParallelGzip::saturated`] says too many are in flight, and [`ParallelGzip::drain`] before finishing.
pub trait MemberPool {
    /// Start compressing member `index` into a gzip member at `level` (as [`crate::deflate::gzip_member`] does).
    fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()>;
    /// A finished member, if one is ready (in any order).
    fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)>;
    /// Resolves once [`MemberPool::take`] has something, or at once when it already has.
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>>;
    /// How many members may be in flight before the driver should wait.
    fn capacity(&self) -> usize;
    /// A stream's SHA-256 (the tar stream's, the blob's) going on from `from` on the pool's side, or None to hash
    /// it in the writer.
    fn stream_hash(&mut self, _from: &Sha256Mid) -> Option<Box<dyn RemoteHash>> {
        None
    }
}

type SharedCache = Arc<Mutex<Box<dyn MemberCache>>>;

/// A member handed to an external pool: the CRC-32 and length of its input, to check the answer against, and the
/// key to cache the answer under (the pool knows nothing of the cache).
struct Pending {
    crc: u32,
    len: u32,
    key: Option<Digest>,
}

/// A compressed member, and the cache key to store it under when it was not a cache hit.
type Made = io::Result<(Vec<u8>, Option<Digest>)>;

/// Make one member: from the cache when its input was compressed before, else compressed now. Both the key's hash
/// and the compression run here, on a worker thread natively.
fn make_member(codec: Codec, data: &[u8], level: u32, cache: Option<&SharedCache>) -> Made {
    let Some(cache) = cache else {
        return Ok((compress(codec, data, level)?, None));
    };
    let key = member_key(codec, data, level);
    // A poisoned lock only means another worker panicked; the cache itself stays usable.
    let hit = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key);
    match hit {
        Some(m) => Ok((m, None)),
        None => Ok((compress(codec, data, level)?, Some(key))),
    }
}

/// A member made by a worker, and its input's buffer back for the writer to fill again (when the tar stream's
/// hasher is done with it too).
type Done = (u64, Made, Arc<Vec<u8>>);

struct Pool {
    jobs: Option<mpsc::Sender<(u64, Arc<Vec<u8>>)>>,
    results: mpsc::Receiver<Done>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

/// On a worker: make member `i` and cache it there, so the writer's thread (which reads, tars and hashes) does not
/// also write every new member to the cache.
fn make_and_cache(codec: Codec, data: &[u8], level: u32, cache: Option<&SharedCache>) -> Made {
    let (m, key) = make_member(codec, data, level, cache)?;
    if let (Some(key), Some(cache)) = (key, cache) {
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(&key, &m);
    }
    Ok((m, None))
}

impl Pool {
    fn new(threads: usize, codec: Codec, level: u32, cache: Option<SharedCache>) -> Pool {
        let (jtx, jrx) = mpsc::channel::<(u64, Arc<Vec<u8>>)>();
        let (rtx, rrx) = mpsc::channel();
        let jrx = Arc::new(Mutex::new(jrx));
        let workers = (0..threads)
            .map(|_| {
                let jrx = jrx.clone();
                let rtx = rtx.clone();
                let cache = cache.clone();
                std::thread::spawn(move || loop {
                    let job = jrx.lock().expect("job queue").recv();
                    match job {
                        Ok((i, data)) => {
                            let made = make_and_cache(codec, &data, level, cache.as_ref());
                            if rtx.send((i, made, data)).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jtx),
            results: rrx,
            workers,
        }
    }
}

/// A gzip writer that expects a tar stream and emits concatenated, independently compressed members.
pub struct ParallelGzip<W: Write> {
    out: W,
    codec: Codec,
    level: u32,
    pool: Option<Pool>,
    external: Option<Box<dyn MemberPool>>,
    cache: Option<SharedCache>,
    chunk: Vec<u8>,
    /// Offset in the tar stream of the next header block.
    next_header: u64,
    /// Bytes of the tar stream seen.
    off: u64,
    /// A header block being collected.
    header: Vec<u8>,
    /// The previous header was an extended one (PAX, GNU long name): never cut before the entry it describes.
    in_meta: bool,
    /// Members handed out, and the next one to write.
    issued: u64,
    written: u64,
    /// Finished members waiting for their turn, and members whose input must be cached once compressed.
    ready: BTreeMap<u64, Vec<u8>>,
    to_cache: BTreeMap<u64, Digest>,
    /// Members handed to an external pool, by index.
    pending: BTreeMap<u64, Pending>,
    in_flight: usize,
    max_in_flight: usize,
    /// Tar offset of the first byte of `chunk`.
    chunk_start: u64,
    marks: Option<Marks>,
    /// Started from a checkpoint: the blob's earlier members are already in `out`.
    resumed: bool,
    /// Input buffers the workers gave back: filled again rather than allocating (and faulting in) 2 MB a member.
    spare: Vec<Vec<u8>>,
}

impl<W: Write> ParallelGzip<W> {
    /// `threads` = 0 picks the machine's parallelism natively; wasm always compresses inline.
    pub fn new(out: W, level: u32, threads: usize, cache: Option<Box<dyn MemberCache>>) -> Self {
        Self::with_codec(out, Codec::Gzip, level, threads, cache)
    }

    /// Like [`ParallelGzip::new`], writing `codec` members (zstd frames: a multi-frame zstd stream).
    pub fn with_codec(
        out: W,
        codec: Codec,
        level: u32,
        threads: usize,
        cache: Option<Box<dyn MemberCache>>,
    ) -> Self {
        let threads = if cfg!(target_arch = "wasm32") {
            1
        } else if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let cache = cache.map(|c| Arc::new(Mutex::new(c)));
        ParallelGzip {
            out,
            codec,
            level,
            pool: (threads > 1).then(|| Pool::new(threads, codec, level, cache.clone())),
            external: None,
            cache,
            chunk: Vec::with_capacity(MAX_MEMBER + 512),
            next_header: 0,
            off: 0,
            header: Vec::with_capacity(512),
            in_meta: false,
            issued: 0,
            written: 0,
            ready: BTreeMap::new(),
            to_cache: BTreeMap::new(),
            pending: BTreeMap::new(),
            in_flight: 0,
            max_in_flight: threads * 2,
            chunk_start: 0,
            marks: None,
            resumed: false,
            spare: Vec::new(),
        }
    }

    /// Hash both streams here and keep a [`Checkpoint`] at every member start; finish with
    /// [`ParallelGzip::finish_marked`]. Call before writing.
    pub fn with_checkpoints(mut self) -> Self {
        self.marks = Some(Marks::new(
            Sha256Mid::new(),
            Sha256Mid::new(),
            0,
            self.external.as_mut(),
        ));
        self
    }

    /// Continue a stream from `cp`, a checkpoint of an earlier stream whose bytes up to `cp.tar_offset` were the
    /// same: `out` already holds that stream's blob up to `cp.blob_offset`, and only the tar stream from
    /// `cp.tar_offset` on is written here. Neither earlier part is hashed again. Call before writing.
    pub fn resume_from(mut self, cp: &Checkpoint) -> Self {
        self.off = cp.tar_offset;
        self.next_header = cp.next_header;
        self.chunk_start = cp.tar_offset;
        self.resumed = true;
        self.marks = Some(Marks::new(
            cp.tar_state.clone(),
            cp.blob_state.clone(),
            cp.blob_offset,
            self.external.as_mut(),
        ));
        self
    }

    /// Compress on `pool` (see [`MemberPool`]); cached members are looked up here, before anything is submitted.
    pub fn with_pool(
        out: W,
        level: u32,
        pool: Box<dyn MemberPool>,
        cache: Option<Box<dyn MemberCache>>,
    ) -> Self {
        let max_in_flight = pool.capacity().max(1);
        let mut g = ParallelGzip::new(out, level, 1, cache);
        g.external = Some(pool);
        g.max_in_flight = max_in_flight;
        g
    }

    /// Bytes of the tar stream taken so far (from the start of the stream, also when resumed).
    pub fn tar_offset(&self) -> u64 {
        self.off
    }

    /// True when an external pool has as many members in flight as it takes, or a hash on its side as many bytes
    /// waiting: await [`ParallelGzip::wait`].
    pub fn saturated(&self) -> bool {
        (self.external.is_some() && self.in_flight >= self.max_in_flight)
            || self
                .marks
                .as_ref()
                .is_some_and(|m| m.tar.saturated() || m.blob.saturated())
    }

    /// Wait for the pool's hashes to take more bytes, else for the pool to finish at least one member (and write
    /// what is ready).
    pub async fn wait(&mut self) -> io::Result<()> {
        if let Some(mk) = self.marks.as_mut() {
            if mk.tar.saturated() || mk.blob.saturated() {
                mk.tar.ready().await?;
                return mk.blob.ready().await;
            }
        }
        let Some(pool) = self.external.as_mut() else {
            return Ok(());
        };
        if self.in_flight == 0 {
            return Ok(());
        }
        pool.ready().await;
        self.collect_external()
    }

    /// Wait until every member handed to an external pool is back and written; [`ParallelGzip::finish`] then
    /// has nothing to wait for.
    pub async fn drain(&mut self) -> io::Result<()> {
        self.close_chunk();
        self.cut()?;
        // Members on this writer's own threads are collected by `finish` (blocking), not awaited.
        while self.external.is_some() && self.in_flight > 0 {
            self.wait().await?;
        }
        // Every member is written: the hashes on the pool's side have all their bytes.
        if let Some(mk) = self.marks.as_mut() {
            let (tar, blob) = (mk.tar.finishing(), mk.blob.finishing());
            mk.tar.settle(tar).await?;
            mk.blob.settle(blob).await?;
        }
        Ok(())
    }

    fn collect_external(&mut self) -> io::Result<()> {
        while let Some((i, made)) = self.external.as_mut().and_then(|p| p.take()) {
            let Some(Pending { crc, len, key }) = self.pending.remove(&i) else {
                return Err(io::Error::other(format!(
                    "the member pool returned member {i}, which was not asked for"
                )));
            };
            self.in_flight -= 1;
            let m = made?;
            // The pool is outside this writer (a page's callback): its answer must at least be a gzip member of our
            // header whose trailer names the input's CRC-32 and length.
            let n = m.len();
            if n < 18
                || m[..10] != crate::deflate::HEADER
                || m[n - 8..n - 4] != crc.to_le_bytes()
                || m[n - 4..] != len.to_le_bytes()
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the member pool's answer for member {i} is not a gzip member of its input"
                    ),
                ));
            }
            self.accept(i, Ok((m, key)))?;
        }
        self.flush_ready()
    }

    fn close_chunk(&mut self) {
        if !self.header.is_empty() {
            let h = std::mem::take(&mut self.header);
            self.chunk.extend_from_slice(&h);
        }
    }

    fn flush_ready(&mut self) -> io::Result<()> {
        while let Some(m) = self.ready.remove(&self.written) {
            if let Some(mk) = self.marks.as_mut() {
                if let Some((tar_offset, next_header)) = mk.starts.remove(&self.written) {
                    mk.points
                        .push((self.written, tar_offset, next_header, mk.blob_off));
                    mk.blob.mark(self.written);
                }
                mk.blob_off += m.len() as u64;
            }
            if let (Some(key), Some(cache)) =
                (self.to_cache.remove(&self.written), self.cache.as_ref())
            {
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .put(&key, &m);
            }
            self.out.write_all(&m)?;
            if let Some(mk) = self.marks.as_mut() {
                mk.blob.update(Bytes::Owned(m));
            }
            self.written += 1;
        }
        Ok(())
    }

    fn collect(&mut self, block: bool) -> io::Result<()> {
        if self.pool.is_none() {
            return Ok(());
        }
        loop {
            let pool = self.pool.as_ref().expect("checked above");
            let r = if block && self.in_flight > 0 {
                pool.results
                    .recv()
                    .map_err(|_| io::Error::other("a compression worker stopped"))?
            } else {
                match pool.results.try_recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            };
            self.in_flight -= 1;
            let (i, made, input) = r;
            if let (true, Ok(mut input)) = (self.spare.len() < 4, Arc::try_unwrap(input)) {
                input.clear();
                self.spare.push(input);
            }
            self.accept(i, made)?;
            if block {
                break;
            }
        }
        self.flush_ready()
    }

    /// Member `i` is made: queue it for writing, and for the cache when it was compressed.
    fn accept(&mut self, i: u64, made: Made) -> io::Result<()> {
        let (m, key) = made?;
        if let Some(k) = key {
            self.to_cache.insert(i, k);
        }
        self.ready.insert(i, m);
        Ok(())
    }

    /// Hand the current chunk to a worker (or compress it here).
    fn cut(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_MEMBER + 512));
        let data = std::mem::replace(&mut self.chunk, next);
        let i = self.issued;
        self.issued += 1;
        let start = self.chunk_start;
        self.chunk_start += data.len() as u64;
        let data = Arc::new(data);
        if let Some(mk) = self.marks.as_mut() {
            // A member cut at a header starts where that header is due; one cut inside a file, before its end.
            let next = self.next_header.max(start);
            mk.starts.insert(i, (start, next));
            mk.tar.mark(i);
            mk.tar.update(Bytes::Shared(data.clone()));
        }
        if self.external.is_some() {
            // Only wasm has an external pool, and there the hash above is done with the bytes already.
            let data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
            return self.cut_external(i, data);
        }
        match &self.pool {
            None => {
                let made = make_member(self.codec, &data, self.level, self.cache.as_ref());
                self.accept(i, made)?;
                self.flush_ready()
            }
            Some(_) => {
                while self.in_flight >= self.max_in_flight {
                    self.collect(true)?;
                }
                let pool = self.pool.as_ref().expect("pool");
                pool.jobs
                    .as_ref()
                    .expect("open")
                    .send((i, data))
                    .map_err(|_| io::Error::other("workers stopped"))?;
                self.in_flight += 1;
                self.collect(false)
            }
        }
    }

    fn cut_external(&mut self, i: u64, data: Vec<u8>) -> io::Result<()> {
        let mut key = None;
        if let Some(cache) = self.cache.as_ref() {
            let k = member_key(self.codec, &data, self.level);
            let hit = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&k);
            if let Some(m) = hit {
                self.ready.insert(i, m);
                return self.collect_external();
            }
            key = Some(k);
        }
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        let len = data.len() as u32;
        self.pending.insert(
            i,
            Pending {
                crc: crc.sum(),
                len,
                key,
            },
        );
        let level = self.level;
        self.external
            .as_mut()
            .expect("external pool")
            .submit(i, data, level)?;
        self.in_flight += 1;
        self.collect_external()
    }

    /// Finish every member and return the sink. With an external pool, [`ParallelGzip::drain`] must come first.
    pub fn finish(self) -> io::Result<W> {
        Ok(self.finish_marked()?.0)
    }

    /// [`ParallelGzip::finish`], with what [`ParallelGzip::with_checkpoints`] or [`ParallelGzip::resume_from`]
    /// recorded (None without either).
    pub fn finish_marked(mut self) -> io::Result<(W, Option<Marked>)> {
        self.close_chunk();
        self.cut()?;
        if self.external.is_some() && self.in_flight > 0 {
            return Err(io::Error::other(
                "gzip members are still being compressed: drain the pool before finishing",
            ));
        }
        while self.in_flight > 0 {
            self.collect(true)?;
        }
        self.flush_ready()?;
        if let Some(mut pool) = self.pool.take() {
            drop(pool.jobs.take());
            for w in pool.workers.drain(..) {
                let _ = w.join();
            }
        }
        if self.issued == 0 && !self.resumed {
            // An empty stream is still one valid gzip member (or zstd frame).
            let m = compress(self.codec, &[], self.level)?;
            self.out.write_all(&m)?;
            if let Some(mk) = self.marks.as_mut() {
                mk.blob_off += m.len() as u64;
                mk.blob.update(Bytes::Owned(m));
            }
        }
        self.out.flush()?;
        let marked = self.marks.take().map(Marks::finish).transpose()?;
        Ok((self.out, marked))
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            if self.off < self.next_header {
                // File data: copy up to the next header, cutting inside very large entries at 512-byte offsets.
                let room = (self.next_header - self.off) as usize;
                let mut n = room.min(buf.len());
                if self.chunk.len() >= MAX_INSIDE {
                    self.cut()?;
                }
                n = n.min(MAX_INSIDE + 512 - self.chunk.len() % (MAX_INSIDE + 512));
                self.chunk.extend_from_slice(&buf[..n]);
                self.off += n as u64;
                buf = &buf[n..];
                continue;
            }
            // A header block: collect all 512 bytes before deciding where it goes.
            let n = (512 - self.header.len()).min(buf.len());
            self.header.extend_from_slice(&buf[..n]);
            self.off += n as u64;
            buf = &buf[n..];
            if self.header.len() < 512 {
                continue;
            }
            let h = std::mem::take(&mut self.header);
            let zero = h.iter().all(|&b| b == 0);
            let flag = h[156];
            if !zero && !self.in_meta {
                let len = self.chunk.len();
                if len >= MAX_MEMBER || (len >= MIN_MEMBER && name_hash(&h).is_multiple_of(8)) {
                    self.cut()?;
                }
            }
            self.in_meta = !zero && matches!(flag, b'x' | b'g' | b'L' | b'K');
            let size = if zero { 0 } else { header_size(&h) };
            self.chunk.extend_from_slice(&h);
            self.next_header = self.off + size.div_ceil(512) * 512;
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
