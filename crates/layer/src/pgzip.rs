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

fn member_key(codec: Codec, data: &[u8], level: u32) -> Digest {
    let mut h = lw_oci::DigestHasher::sha256();
    match codec {
        // "2": the encoder of crate::deflate; members cached from the earlier plain zlib encoder must not be reused.
        Codec::Gzip => h.update(&[b'g', b'z', b'2', level as u8]),
        Codec::Zstd => h.update(&[b'z', b's', b'1', level as u8]),
    }
    h.update(data);
    h.finish()
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

struct Pool {
    jobs: Option<mpsc::Sender<(u64, Vec<u8>)>>,
    results: mpsc::Receiver<(u64, Made)>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, codec: Codec, level: u32, cache: Option<SharedCache>) -> Pool {
        let (jtx, jrx) = mpsc::channel::<(u64, Vec<u8>)>();
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
                            if rtx
                                .send((i, make_member(codec, &data, level, cache.as_ref())))
                                .is_err()
                            {
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
        }
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

    /// True when an external pool has as many members in flight as it takes: await [`ParallelGzip::wait`].
    pub fn saturated(&self) -> bool {
        self.external.is_some() && self.in_flight >= self.max_in_flight
    }

    /// Wait for the external pool to finish at least one member, and write what is ready.
    pub async fn wait(&mut self) -> io::Result<()> {
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
        while self.in_flight > 0 {
            self.wait().await?;
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
            if let (Some(key), Some(cache)) =
                (self.to_cache.remove(&self.written), self.cache.as_ref())
            {
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .put(&key, &m);
            }
            self.out.write_all(&m)?;
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
            self.accept(r.0, r.1)?;
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
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(MAX_MEMBER + 512));
        let i = self.issued;
        self.issued += 1;
        if self.external.is_some() {
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
    pub fn finish(mut self) -> io::Result<W> {
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
        if self.issued == 0 {
            // An empty stream is still one valid gzip member.
            self.out
                .write_all(&compress(self.codec, &[], self.level)?)?;
        }
        self.out.flush()?;
        Ok(self.out)
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
mod tests {
    use super::*;
    use crate::tar::{TarWriter, WriteOptions};
    use crate::Entry;
    use std::io::Read;

    fn sample_tar() -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
        let mut x: u64 = 7;
        for i in 0..300 {
            let len = if i % 50 == 0 {
                3_000_000
            } else {
                20_000 + (i * 977) % 40_000
            };
            let data: Vec<u8> = (0..len)
                .map(|j| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if j % 3 == 0 {
                        (x >> 59) as u8 + b'a'
                    } else {
                        b"layer "[j % 6]
                    }
                })
                .collect();
            w.append_bytes(&Entry::file(&format!("d{}/f{i}", i % 7), 0o644, 0), &data)
                .unwrap();
        }
        w.finish().unwrap()
    }

    fn pgz(tar: &[u8], threads: usize) -> Vec<u8> {
        let mut p = ParallelGzip::new(Vec::new(), 6, threads, None);
        for c in tar.chunks(70_001) {
            p.write_all(c).unwrap();
        }
        p.finish().unwrap()
    }

    #[test]
    fn identical_for_any_thread_count_and_readable() {
        let tar = sample_tar();
        let one = pgz(&tar, 1);
        assert_eq!(one, pgz(&tar, 2));
        assert_eq!(one, pgz(&tar, 8));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);
        // Several members, each a complete gzip stream.
        let members = one.windows(4).filter(|w| w == &[0x1f, 0x8b, 8, 0]).count();
        assert!(members > 5, "{members} members");
    }

    /// A pool that compresses only when waited on, and hands members back newest first.
    struct Deferred {
        pending: Vec<(u64, Vec<u8>, u32)>,
        done: Vec<(u64, io::Result<Vec<u8>>)>,
        submitted: Arc<Mutex<usize>>,
    }

    impl MemberPool for Deferred {
        fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()> {
            *self.submitted.lock().unwrap() += 1;
            self.pending.push((index, data, level));
            Ok(())
        }
        fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)> {
            self.done.pop()
        }
        fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>> {
            for (i, d, l) in self.pending.drain(..) {
                let mut out = Vec::new();
                let r = crate::deflate::gzip_member(&d, l, &mut out).map(|_| out);
                self.done.insert(0, (i, r));
            }
            Box::pin(std::future::ready(()))
        }
        fn capacity(&self) -> usize {
            3
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn an_external_pool_gives_the_same_bytes_in_any_completion_order() {
        let tar = sample_tar();
        let submitted = Arc::new(Mutex::new(0));
        let cache = Arc::new(Mutex::new(Mem::default()));
        let run = |cache: Option<Box<dyn MemberCache>>| {
            let pool = Deferred {
                pending: Vec::new(),
                done: Vec::new(),
                submitted: submitted.clone(),
            };
            let mut p = ParallelGzip::with_pool(Vec::new(), 6, Box::new(pool), cache);
            let mut most = 0;
            for c in tar.chunks(70_001) {
                p.write_all(c).unwrap();
                most = most.max(p.in_flight);
                while p.saturated() {
                    block_on(p.wait()).unwrap();
                }
            }
            block_on(p.drain()).unwrap();
            assert!(most <= 3 + MAX_INSIDE.div_ceil(70_001), "bounded: {most}");
            p.finish().unwrap()
        };
        assert_eq!(run(None), pgz(&tar, 1));
        let first = *submitted.lock().unwrap();
        assert!(first > 5);
        // With a member cache: the first run fills it, the second submits nothing.
        assert_eq!(run(Some(Box::new(cache.clone()))), pgz(&tar, 1));
        assert_eq!(run(Some(Box::new(cache.clone()))), pgz(&tar, 1));
        assert_eq!(*submitted.lock().unwrap(), 2 * first);
        assert_eq!(cache.lock().unwrap().1, first);
        // Finishing with members still out is an error, not a short blob.
        let pool = Deferred {
            pending: Vec::new(),
            done: Vec::new(),
            submitted: submitted.clone(),
        };
        let mut p = ParallelGzip::with_pool(Vec::new(), 6, Box::new(pool), None);
        p.write_all(&tar).unwrap();
        assert!(p.finish().is_err());
    }

    /// A pool that answers member 2 with member 1's bytes.
    struct Swapping(Deferred, Option<Vec<u8>>);
    impl MemberPool for Swapping {
        fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()> {
            self.0.submit(index, data, level)
        }
        fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)> {
            let (i, m) = self.0.take()?;
            let m = m.unwrap();
            if i == 1 {
                self.1 = Some(m.clone());
            }
            Some((i, Ok(if i == 2 { self.1.clone().unwrap() } else { m })))
        }
        fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>> {
            self.0.ready()
        }
        fn capacity(&self) -> usize {
            1
        }
    }

    #[test]
    fn a_pool_answer_that_is_not_the_members_input_is_refused() {
        let pool = Swapping(
            Deferred {
                pending: Vec::new(),
                done: Vec::new(),
                submitted: Arc::new(Mutex::new(0)),
            },
            None,
        );
        let mut p = ParallelGzip::with_pool(Vec::new(), 6, Box::new(pool), None);
        let err = (|| -> io::Result<()> {
            for c in sample_tar().chunks(100_000) {
                p.write_all(c)?;
                while p.saturated() {
                    block_on(p.wait())?;
                }
            }
            block_on(p.drain())
        })()
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("member 2"), "{err}");
    }

    #[test]
    fn zstd_members_are_identical_for_any_thread_count_readable_and_cached_apart_from_gzip() {
        let tar = sample_tar();
        let cache = Arc::new(Mutex::new(Mem::default()));
        let z = |threads: usize, cache: Option<Box<dyn MemberCache>>| {
            let mut p = ParallelGzip::with_codec(Vec::new(), Codec::Zstd, 3, threads, cache);
            for c in tar.chunks(70_001) {
                p.write_all(c).unwrap();
            }
            p.finish().unwrap()
        };
        let one = z(1, None);
        assert_eq!(one, z(2, None));
        assert_eq!(one, z(8, None));
        let mut back = Vec::new();
        crate::compress::decoder(&one[..], lw_oci::media::Compression::Zstd)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);
        let frames = one
            .windows(4)
            .filter(|w| w == &[0x28, 0xb5, 0x2f, 0xfd])
            .count();
        assert!(frames > 5, "{frames} frames");
        // Members cached as gzip are never taken for zstd ones, nor the other way round.
        let mut p = ParallelGzip::new(Vec::new(), 6, 2, Some(Box::new(cache.clone())));
        p.write_all(&tar).unwrap();
        p.finish().unwrap();
        assert_eq!(z(2, Some(Box::new(cache.clone()))), one);
        assert_eq!(cache.lock().unwrap().1, 0, "no hits across codecs");
        assert_eq!(z(2, Some(Box::new(cache.clone()))), one);
        assert!(cache.lock().unwrap().1 > 5, "zstd members are reused");
    }

    #[derive(Default)]
    struct Mem(BTreeMap<Digest, Vec<u8>>, usize);
    impl MemberCache for Arc<Mutex<Mem>> {
        fn get(&mut self, k: &Digest) -> Option<Vec<u8>> {
            let mut m = self.lock().unwrap();
            let hit = m.0.get(k).cloned();
            if hit.is_some() {
                m.1 += 1;
            }
            hit
        }
        fn put(&mut self, k: &Digest, v: &[u8]) {
            self.lock().unwrap().0.insert(k.clone(), v.to_vec());
        }
    }

    #[test]
    fn a_small_edit_changes_few_members_and_the_cache_reuses_the_rest() {
        let tar = sample_tar();
        let cache = Arc::new(Mutex::new(Mem::default()));
        let run = |t: &[u8]| {
            let mut p = ParallelGzip::new(Vec::new(), 6, 2, Some(Box::new(cache.clone())));
            p.write_all(t).unwrap();
            p.finish().unwrap()
        };
        let first = run(&tar);
        assert_eq!(first, pgz(&tar, 1), "cached or not, the bytes are the same");
        let stored = cache.lock().unwrap().0.len();
        // Change a few bytes in the middle of one file's data.
        let mut edited = tar.clone();
        let mid = edited.len() / 2;
        edited[mid] ^= 0x20;
        let second = run(&edited);
        assert_eq!(second, pgz(&edited, 1));
        let hits = cache.lock().unwrap().1;
        assert!(
            hits + 1 >= stored,
            "all members but the edited one come from the cache: {hits} of {stored}"
        );
    }
}
