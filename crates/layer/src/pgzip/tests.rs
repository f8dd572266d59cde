//! Tests of the parallel member writer: same bytes for any thread count or pool, the member cache, zstd, and
//! resuming at a checkpoint.

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
    crate::compress::tests::install_zstd();
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

#[test]
fn resuming_at_a_checkpoint_gives_the_same_bytes_and_digests_for_gzip_and_zstd() {
    crate::compress::tests::install_zstd();
    let tar = sample_tar();
    for (codec, level) in [(Codec::Gzip, 6), (Codec::Zstd, 3)] {
        let full = |t: &[u8]| {
            let mut p =
                ParallelGzip::with_codec(Vec::new(), codec, level, 2, None).with_checkpoints();
            for c in t.chunks(70_001) {
                p.write_all(c).unwrap();
            }
            let (blob, m) = p.finish_marked().unwrap();
            (blob, m.unwrap())
        };
        let (blob1, m1) = full(&tar);
        assert_eq!(m1.diff_id, Digest::sha256_of(&tar));
        assert_eq!(m1.digest, Digest::sha256_of(&blob1));
        assert_eq!(
            (m1.size, m1.uncompressed_size),
            (blob1.len() as u64, tar.len() as u64)
        );
        assert!(m1.checkpoints.len() > 5);
        assert_eq!(m1.checkpoints[0].tar_offset, 0);
        // A byte changed in the last quarter: every checkpoint before it is still good.
        let pos = tar.len() - tar.len() / 4 + 1000;
        let mut edited = tar.clone();
        edited[pos] ^= 0x20;
        let (blob2, m2) = full(&edited);
        let k = m1
            .checkpoints
            .iter()
            .rposition(|c| c.tar_offset <= pos as u64)
            .unwrap();
        let cp = &m1.checkpoints[k];
        assert!(cp.tar_offset > tar.len() as u64 / 2, "{cp:?}");
        assert_eq!(m2.checkpoints[..=k], m1.checkpoints[..=k]);
        // Resume from it: the earlier blob's prefix as it is, then only the tar from the checkpoint on.
        let out = blob1[..cp.blob_offset as usize].to_vec();
        let mut p = ParallelGzip::with_codec(out, codec, level, 2, None).resume_from(cp);
        for c in edited[cp.tar_offset as usize..].chunks(65_536) {
            p.write_all(c).unwrap();
        }
        let (blob3, m3) = p.finish_marked().unwrap();
        let m3 = m3.unwrap();
        assert!(blob3 == blob2, "{codec:?}: resumed bytes differ");
        assert_eq!(
            (&m3.diff_id, &m3.digest, m3.size),
            (&m2.diff_id, &m2.digest, m2.size)
        );
        assert_eq!(m3.uncompressed_size, m2.uncompressed_size);
        assert_eq!(
            m3.checkpoints,
            m2.checkpoints[k..],
            "the same checkpoints from there on"
        );
    }
}

/// `tar` with a byte flipped at `pos`, the last checkpoint of `m` before it, and `blob` up to that checkpoint (what
/// a resumed writer's output already holds).
fn edit_at<'m>(
    tar: &[u8],
    m: &'m Marked,
    blob: &[u8],
    pos: usize,
) -> (Vec<u8>, &'m Checkpoint, Vec<u8>) {
    let mut edited = tar.to_vec();
    edited[pos] ^= 0x20;
    let cp = m
        .checkpoints
        .iter()
        .rev()
        .find(|c| c.tar_offset <= pos as u64)
        .unwrap();
    (edited, cp, blob[..cp.blob_offset as usize].to_vec())
}

#[test]
fn an_external_pool_keeps_the_same_checkpoints_and_resumes_to_the_same_bytes() {
    let tar = sample_tar();
    let pool = || {
        Box::new(Deferred {
            pending: Vec::new(),
            done: Vec::new(),
            submitted: Arc::new(Mutex::new(0)),
        })
    };
    // Driven as the engine drives it: wait whenever saturated, drain before finishing.
    let drive = |mut p: ParallelGzip<Vec<u8>>, t: &[u8]| {
        for c in t.chunks(70_001) {
            p.write_all(c).unwrap();
            while p.saturated() {
                block_on(p.wait()).unwrap();
            }
        }
        block_on(p.drain()).unwrap();
        let (blob, m) = p.finish_marked().unwrap();
        (blob, m.unwrap())
    };
    let inline = ParallelGzip::new(Vec::new(), 6, 1, None).with_checkpoints();
    let (blob1, m1) = drive(inline, &tar);
    let pooled = ParallelGzip::with_pool(Vec::new(), 6, pool(), None).with_checkpoints();
    let (blob2, m2) = drive(pooled, &tar);
    assert!(blob1 == blob2, "pooled bytes differ");
    assert_eq!(m1, m2, "the same digests and checkpoints");
    // An edit after the middle: resume on a pool from the last checkpoint before it.
    let (edited, cp, out) = edit_at(&tar, &m1, &blob1, tar.len() / 2 + 12_345);
    let resumed = ParallelGzip::with_pool(out, 6, pool(), None).resume_from(cp);
    let (blob3, m3) = drive(resumed, &edited[cp.tar_offset as usize..]);
    let (blob4, m4) = drive(
        ParallelGzip::new(Vec::new(), 6, 1, None).with_checkpoints(),
        &edited,
    );
    assert!(
        blob3 == blob4,
        "resumed pooled bytes differ from a cold build"
    );
    assert_eq!((m3.digest, m3.diff_id), (m4.digest, m4.diff_id));
}

#[test]
fn a_framed_member_round_trips_and_damage_is_refused() {
    let member = b"compressed bytes\nwith a newline".to_vec();
    let framed = frame_member(&member);
    assert_eq!(unframe_member(framed.clone()), Some(member.clone()));
    let mut flipped = framed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(unframe_member(flipped), None, "a flipped bit");
    assert_eq!(
        unframe_member(framed[..framed.len() - 1].to_vec()),
        None,
        "a torn write"
    );
    assert_eq!(unframe_member(member), None, "no frame");
    // The key names the codec, level and input: the same input at another level is another member.
    let k = member_key(Codec::Gzip, b"input", 6);
    assert_eq!(k, member_key(Codec::Gzip, b"input", 6));
    assert_ne!(k, member_key(Codec::Gzip, b"input", 9));
    assert_ne!(k, member_key(Codec::Zstd, b"input", 6));
    assert_ne!(k, member_key(Codec::Gzip, b"input!", 6));
}

/// A hash on the pool's side that hashes only when waited on (past 1 MB queued it is saturated) or finished, and
/// can be made to fail at its `fail_at`th update.
struct LateHash {
    h: Sha256Mid,
    marks: BTreeMap<u64, Sha256Mid>,
    queued: Vec<Msg>,
    queued_bytes: usize,
    updates: usize,
    fail_at: Option<usize>,
    waited: Arc<Mutex<usize>>,
}

enum Msg {
    Data(Vec<u8>),
    Mark(u64),
}

impl LateHash {
    fn run(&mut self) {
        for m in self.queued.drain(..) {
            match m {
                Msg::Data(d) => self.h.update(&d),
                Msg::Mark(i) => {
                    self.marks.insert(i, self.h.clone());
                }
            }
        }
        self.queued_bytes = 0;
    }
}

impl RemoteHash for LateHash {
    fn update(&mut self, data: &[u8]) -> io::Result<()> {
        self.updates += 1;
        if self.fail_at == Some(self.updates) {
            return Err(io::Error::other("the hash worker stopped"));
        }
        self.queued_bytes += data.len();
        self.queued.push(Msg::Data(data.to_vec()));
        Ok(())
    }
    fn mark(&mut self, i: u64) -> io::Result<()> {
        self.queued.push(Msg::Mark(i));
        Ok(())
    }
    fn saturated(&self) -> bool {
        self.queued_bytes > 1 << 20
    }
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = io::Result<()>>>> {
        *self.waited.lock().unwrap() += 1;
        self.run();
        Box::pin(std::future::ready(Ok(())))
    }
    fn finish(mut self: Box<Self>) -> Pin<Box<dyn Future<Output = io::Result<HashStates>>>> {
        self.run();
        Box::pin(std::future::ready(Ok((self.h, self.marks))))
    }
}

/// [`Deferred`], hashing both streams on its side ([`LateHash`]).
struct Hashing {
    members: Deferred,
    fail_at: Option<usize>,
    waited: Arc<Mutex<usize>>,
}

impl MemberPool for Hashing {
    fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()> {
        self.members.submit(index, data, level)
    }
    fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)> {
        self.members.take()
    }
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>> {
        self.members.ready()
    }
    fn capacity(&self) -> usize {
        self.members.capacity()
    }
    fn stream_hash(&mut self, from: &Sha256Mid) -> Option<Box<dyn RemoteHash>> {
        Some(Box::new(LateHash {
            h: from.clone(),
            marks: BTreeMap::new(),
            queued: Vec::new(),
            queued_bytes: 0,
            updates: 0,
            fail_at: self.fail_at,
            waited: self.waited.clone(),
        }))
    }
}

#[test]
fn hashes_on_the_pools_side_give_the_same_checkpoints_and_resume_to_the_same_bytes() {
    let tar = sample_tar();
    let waited = Arc::new(Mutex::new(0));
    let pool = |fail_at| {
        Box::new(Hashing {
            members: Deferred {
                pending: Vec::new(),
                done: Vec::new(),
                submitted: Arc::new(Mutex::new(0)),
            },
            fail_at,
            waited: waited.clone(),
        })
    };
    let drive = |mut p: ParallelGzip<Vec<u8>>, t: &[u8]| -> io::Result<(Vec<u8>, Marked)> {
        for c in t.chunks(70_001) {
            p.write_all(c)?;
            while p.saturated() {
                block_on(p.wait())?;
            }
        }
        block_on(p.drain())?;
        let (blob, m) = p.finish_marked()?;
        Ok((blob, m.unwrap()))
    };
    let (blob1, m1) = drive(
        ParallelGzip::new(Vec::new(), 6, 1, None).with_checkpoints(),
        &tar,
    )
    .unwrap();
    let remote = ParallelGzip::with_pool(Vec::new(), 6, pool(None), None).with_checkpoints();
    let (blob2, m2) = drive(remote, &tar).unwrap();
    assert!(blob1 == blob2, "bytes differ");
    assert_eq!(m1, m2, "the same digests and checkpoints");
    assert!(
        *waited.lock().unwrap() > 0,
        "the driver waited for the hashes"
    );
    // Resumed after an edit, hashed on the pool's side from the checkpoint's states.
    let (edited, cp, out) = edit_at(&tar, &m1, &blob1, tar.len() / 3 + 999);
    let resumed = ParallelGzip::with_pool(out, 6, pool(None), None).resume_from(cp);
    let (blob3, m3) = drive(resumed, &edited[cp.tar_offset as usize..]).unwrap();
    let (blob4, m4) = drive(
        ParallelGzip::new(Vec::new(), 6, 1, None).with_checkpoints(),
        &edited,
    )
    .unwrap();
    assert!(blob3 == blob4, "resumed bytes differ from a cold build");
    assert_eq!((m3.digest, m3.diff_id), (m4.digest, m4.diff_id));
    assert_eq!(
        m3.checkpoints,
        m4.checkpoints[m4.checkpoints.len() - m3.checkpoints.len()..]
    );
    // A hash that fails on its side fails the layer, not a later read of it.
    let failing = ParallelGzip::with_pool(Vec::new(), 6, pool(Some(5)), None).with_checkpoints();
    let e = drive(failing, &tar).unwrap_err();
    assert!(e.to_string().contains("the hash worker stopped"), "{e}");
}

#[test]
fn an_empty_stream_hashed_on_the_pools_side_is_one_empty_member() {
    let pool = Box::new(Hashing {
        members: Deferred {
            pending: Vec::new(),
            done: Vec::new(),
            submitted: Arc::new(Mutex::new(0)),
        },
        fail_at: None,
        waited: Arc::new(Mutex::new(0)),
    });
    let mut p = ParallelGzip::with_pool(Vec::new(), 6, pool, None).with_checkpoints();
    block_on(p.drain()).unwrap();
    let (blob, m) = p.finish_marked().unwrap();
    let mut q = ParallelGzip::new(Vec::new(), 6, 1, None).with_checkpoints();
    block_on(q.drain()).unwrap();
    let (blob2, m2) = q.finish_marked().unwrap();
    assert_eq!(blob, blob2);
    assert_eq!(m, m2);
    assert_eq!(m.unwrap().digest, lw_oci::Digest::sha256_of(&blob));
}
