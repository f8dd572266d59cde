//! Writing a layer blob in one pass: tar → sha256 (diff ID) → compression → sha256 (digest) → sink.

use std::io::{self, Write};

use lw_oci::media::Compression;
use lw_oci::{media, Descriptor, Digest, DigestHasher};

use crate::compress::{Compressor, LayerFormat, DEFAULT_LEVEL};
use crate::pgzip::Checkpoint;
use crate::tar::{TarWriter, WriteOptions};
use crate::Error;

/// A writer that hashes and counts what passes through it.
pub struct HashWriter<W: Write> {
    inner: W,
    hasher: StreamHasher,
}

/// SHA-256 of a stream, inline or (natively, for the large uncompressed tar stream) on a helper thread so the
/// writer's thread only copies bytes: the thread reading files and the one hashing them overlap.
// One per layer writer: boxing the hash state would only add an allocation (wasm32 has no Threaded variant).
#[allow(clippy::large_enum_variant)]
enum StreamHasher {
    /// Not hashed here: the member writer hashes both streams when it keeps checkpoints.
    Off,
    Inline(DigestHasher),
    #[cfg(not(target_arch = "wasm32"))]
    Threaded {
        buf: Vec<u8>,
        tx: std::sync::mpsc::SyncSender<Vec<u8>>,
        handle: std::thread::JoinHandle<DigestHasher>,
    },
}

#[cfg(not(target_arch = "wasm32"))]
const HASH_BLOCK: usize = 256 * 1024;

impl StreamHasher {
    fn threaded() -> StreamHasher {
        #[cfg(not(target_arch = "wasm32"))]
        {
            // A few blocks in flight bound the memory; the channel only closes when the writer is dropped.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
            let spawned = std::thread::Builder::new()
                .name("layer-sha256".into())
                .spawn(move || {
                    let mut h = DigestHasher::sha256();
                    for block in rx {
                        h.update(&block);
                    }
                    h
                });
            if let Ok(handle) = spawned {
                return StreamHasher::Threaded {
                    buf: Vec::with_capacity(HASH_BLOCK),
                    tx,
                    handle,
                };
            }
        }
        StreamHasher::Inline(DigestHasher::sha256())
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            StreamHasher::Off => {}
            StreamHasher::Inline(h) => h.update(data),
            #[cfg(not(target_arch = "wasm32"))]
            StreamHasher::Threaded { buf, tx, .. } => {
                buf.extend_from_slice(data);
                if buf.len() >= HASH_BLOCK {
                    let full = std::mem::replace(buf, Vec::with_capacity(HASH_BLOCK));
                    // A send fails only if the hashing thread died; `finish` reports that.
                    let _ = tx.send(full);
                }
            }
        }
    }

    // On wasm32 only the inline variant exists, which makes the match look needless there.
    #[allow(clippy::infallible_destructuring_match)]
    fn finish(self) -> (Digest, u64) {
        let h = match self {
            StreamHasher::Off => DigestHasher::sha256(),
            StreamHasher::Inline(h) => h,
            #[cfg(not(target_arch = "wasm32"))]
            StreamHasher::Threaded { buf, tx, handle } => {
                let _ = tx.send(buf);
                drop(tx);
                handle
                    .join()
                    .expect("the layer hashing thread does not panic")
            }
        };
        let len = h.len();
        (h.finish(), len)
    }
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: StreamHasher::Inline(DigestHasher::sha256()),
        }
    }
    /// Like [`HashWriter::new`], hashing on a helper thread natively (the same digest).
    pub fn threaded(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: StreamHasher::threaded(),
        }
    }
    /// Not hashing at all (its digest is that of nothing): for streams hashed elsewhere.
    fn unhashed(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: StreamHasher::Off,
        }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        let (d, len) = self.hasher.finish();
        (self.inner, d, len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a finished layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest of the blob as stored.
    pub digest: Digest,
    /// Size of the blob as stored.
    pub size: u64,
    pub uncompressed_size: u64,
    pub compression: Compression,
}

impl LayerInfo {
    /// The OCI descriptor of this layer blob.
    pub fn descriptor(&self) -> Descriptor {
        let mt = match self.compression {
            Compression::None => media::OCI_LAYER_TAR,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        };
        Descriptor::new(mt, self.digest.clone(), self.size)
    }
}

type Chain<W> = HashWriter<Compressor<HashWriter<W>>>;
/// The member writer under a layer writer.
type Members<W> = Box<crate::pgzip::ParallelGzip<HashWriter<W>>>;

/// Streams tar entries into a compressed blob, computing diff ID and digest as it goes.
pub struct LayerWriter<W: Write> {
    tar: TarWriter<Chain<W>>,
    compression: Compression,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(out: W, compression: Compression, opts: WriteOptions) -> Result<Self, Error> {
        Self::with_cache(out, compression, opts, None)
    }

    /// Like [`LayerWriter::new`], reusing compressed members from `cache` when their input is unchanged.
    pub fn with_cache(
        out: W,
        compression: Compression,
        opts: WriteOptions,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Result<Self, Error> {
        Ok(Self::with_format(
            out,
            LayerFormat::of(compression),
            opts,
            cache,
        ))
    }

    /// A layer in `format` (compression and level), reusing members from `cache` when their input is unchanged.
    pub fn with_format(
        out: W,
        format: LayerFormat,
        opts: WriteOptions,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Self {
        let compressor = Compressor::with(HashWriter::threaded(out), format, 0, cache);
        // The uncompressed stream is the big one: hash it beside the thread that reads and writes.
        let chain = HashWriter::threaded(compressor);
        LayerWriter {
            tar: TarWriter::new(chain, opts),
            compression: format.compression,
        }
    }

    /// Like [`LayerWriter::with_cache`] for gzip, compressing members on `pool`: call [`LayerWriter::wait`] whenever
    /// [`LayerWriter::saturated`] and finish with [`LayerWriter::finish_async`].
    pub fn with_pool(
        out: W,
        opts: WriteOptions,
        pool: Box<dyn crate::pgzip::MemberPool>,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Self {
        let inner = HashWriter::threaded(out);
        let gz = crate::pgzip::ParallelGzip::with_pool(inner, DEFAULT_LEVEL, pool, cache);
        let chain = HashWriter::threaded(Compressor::Members(Box::new(gz)));
        LayerWriter {
            tar: TarWriter::new(chain, opts),
            compression: Compression::Gzip,
        }
    }

    /// True when the member pool has all it takes in flight (never without a pool).
    pub fn saturated(&mut self) -> bool {
        match &self.tar.get_mut().inner {
            Compressor::Members(g) => g.saturated(),
            Compressor::None(_) => false,
        }
    }

    /// Wait for the member pool to return a member (at once without a pool).
    pub async fn wait(&mut self) -> Result<(), Error> {
        if let Compressor::Members(g) = &mut self.tar.get_mut().inner {
            g.wait().await?;
        }
        Ok(())
    }

    /// [`LayerWriter::finish`] for a writer whose members may still be on a pool.
    pub async fn finish_async(self) -> Result<(W, LayerInfo), Error> {
        let chain = self.tar.finish()?;
        let (mut compressor, diff_id, uncompressed_size) = chain.finish();
        if let Compressor::Members(g) = &mut compressor {
            g.drain().await?;
        }
        Self::info(compressor, diff_id, uncompressed_size, self.compression)
    }

    /// Like [`LayerWriter::with_format`] (gzip or zstd), keeping a [`Checkpoint`] at every member start for a
    /// later [`LayerWriter::resume`]; finish with [`LayerWriter::finish_checkpointed`]. Both streams are hashed by
    /// the member writer, on this thread.
    pub fn with_checkpoints(
        out: W,
        format: LayerFormat,
        opts: WriteOptions,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Result<Self, Error> {
        Self::checkpointed(out, format, opts, cache, None, None)
    }

    /// Continue the layer of an earlier build from its checkpoint `cp`: `out` already holds that layer's blob up to
    /// `cp.blob_offset`, and the entries from the one starting at `cp.tar_offset` on are appended here. The result
    /// is the layer a cold build gives, without reading or hashing anything before the checkpoint again.
    pub fn resume(
        out: W,
        format: LayerFormat,
        opts: WriteOptions,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
        cp: &Checkpoint,
    ) -> Result<Self, Error> {
        Self::checkpointed(out, format, opts, cache, None, Some(cp))
    }

    /// [`LayerWriter::with_checkpoints`] (`from` None) or [`LayerWriter::resume`] (from a checkpoint), its gzip
    /// members compressed on `pool` when given (then drive it as [`LayerWriter::with_pool`] says and finish with
    /// [`LayerWriter::finish_checkpointed_async`]). The bytes are the same with a pool or without.
    pub fn checkpointed(
        out: W,
        format: LayerFormat,
        opts: WriteOptions,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
        pool: Option<Box<dyn crate::pgzip::MemberPool>>,
        from: Option<&Checkpoint>,
    ) -> Result<Self, Error> {
        let codec = match format.compression {
            Compression::Gzip => crate::pgzip::Codec::Gzip,
            Compression::Zstd => crate::pgzip::Codec::Zstd,
            Compression::None => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "checkpoints need a compressed layer (gzip or zstd)",
                )))
            }
        };
        let out = HashWriter::unhashed(out);
        let p = match pool {
            // A pool makes gzip members only.
            Some(pool) if codec == crate::pgzip::Codec::Gzip => {
                crate::pgzip::ParallelGzip::with_pool(out, format.level, pool, cache)
            }
            Some(_) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a member pool compresses gzip members only",
                )))
            }
            None => crate::pgzip::ParallelGzip::with_codec(out, codec, format.level, 0, cache),
        };
        let cp = from;
        let p = match cp {
            Some(cp) => p.resume_from(cp),
            None => p.with_checkpoints(),
        };
        let chain = HashWriter::unhashed(Compressor::Members(Box::new(p)));
        Ok(LayerWriter {
            tar: TarWriter::new(chain, opts),
            compression: format.compression,
        })
    }

    /// Finish a writer made by [`LayerWriter::with_checkpoints`] or [`LayerWriter::resume`]: the layer and the
    /// checkpoints of its members (after the one resumed from, which is the first).
    pub fn finish_checkpointed(self) -> Result<(W, LayerInfo, Vec<Checkpoint>), Error> {
        let (p, compression) = self.members()?;
        Self::marked_info(*p, compression)
    }

    /// [`LayerWriter::finish_checkpointed`] for a writer whose members may still be on a pool.
    pub async fn finish_checkpointed_async(self) -> Result<(W, LayerInfo, Vec<Checkpoint>), Error> {
        let (mut p, compression) = self.members()?;
        p.drain().await?;
        Self::marked_info(*p, compression)
    }

    /// The member writer, once the tar stream is finished.
    fn members(self) -> Result<(Members<W>, Compression), Error> {
        let chain = self.tar.finish()?;
        let (compressor, _, _) = chain.finish();
        match compressor {
            Compressor::Members(p) => Ok((p, self.compression)),
            Compressor::None(_) => Err(Error::Io(io::Error::other(
                "this layer writer keeps no checkpoints",
            ))),
        }
    }

    fn marked_info(
        p: crate::pgzip::ParallelGzip<HashWriter<W>>,
        compression: Compression,
    ) -> Result<(W, LayerInfo, Vec<Checkpoint>), Error> {
        let (out, marked) = p.finish_marked()?;
        let m = marked.ok_or_else(|| io::Error::other("this layer writer keeps no checkpoints"))?;
        let info = LayerInfo {
            diff_id: m.diff_id,
            digest: m.digest,
            size: m.size,
            uncompressed_size: m.uncompressed_size,
            compression,
        };
        Ok((out.inner, info, m.checkpoints))
    }

    /// Where the next entry starts in the tar stream (None without members): what a [`Checkpoint`]'s `tar_offset`
    /// is compared with to know which entry a member starts at.
    pub fn tar_offset(&mut self) -> Result<Option<u64>, Error> {
        self.tar.close_entry()?;
        Ok(match &self.tar.get_mut().inner {
            Compressor::Members(p) => Some(p.tar_offset()),
            Compressor::None(_) => None,
        })
    }

    /// The tar writer to add entries with.
    pub fn tar(&mut self) -> &mut TarWriter<Chain<W>> {
        &mut self.tar
    }

    pub fn finish(self) -> Result<(W, LayerInfo), Error> {
        let chain = self.tar.finish()?;
        let (compressor, diff_id, uncompressed_size) = chain.finish();
        Self::info(compressor, diff_id, uncompressed_size, self.compression)
    }

    fn info(
        compressor: Compressor<HashWriter<W>>,
        diff_id: Digest,
        uncompressed_size: u64,
        compression: Compression,
    ) -> Result<(W, LayerInfo), Error> {
        let (out, digest, size) = compressor.finish()?.finish();
        Ok((
            out,
            LayerInfo {
                diff_id,
                digest,
                size,
                uncompressed_size,
                compression,
            },
        ))
    }
}

/// Rewrite a layer's uncompressed tar stream `tar` into `out` in `format` (a RUN layer the executor wrote as gzip,
/// for a build that writes zstd): the diff ID stays, the digest is the new blob's.
pub fn recompress<W: Write>(
    tar: &mut dyn io::Read,
    out: W,
    format: LayerFormat,
    cache: Option<Box<dyn crate::pgzip::MemberCache>>,
) -> Result<(W, LayerInfo), Error> {
    let compressor = Compressor::with(HashWriter::threaded(out), format, 0, cache);
    let mut chain = HashWriter::threaded(compressor);
    io::copy(tar, &mut chain)?;
    let (compressor, diff_id, uncompressed_size) = chain.finish();
    LayerWriter::info(compressor, diff_id, uncompressed_size, format.compression)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entry;
    use std::io::Read;

    fn layer(format: LayerFormat) -> (Vec<u8>, LayerInfo) {
        let mut lw = LayerWriter::with_format(Vec::new(), format, WriteOptions::default(), None);
        for i in 0..40 {
            let data = format!("file {i} ").repeat(20_000 + i * 100);
            lw.tar()
                .append_bytes(&Entry::file(&format!("d/f{i}"), 0o644, 0), data.as_bytes())
                .unwrap();
        }
        lw.finish().unwrap()
    }

    /// The files of a layer, and the tar offset where each one's entry starts.
    fn entries(edit: Option<usize>) -> (Vec<(String, Vec<u8>)>, Vec<u64>) {
        let files: Vec<(String, Vec<u8>)> = (0..60)
            .map(|i| {
                let mut d = format!("entry {i} {} ", i * 31)
                    .repeat(4000 + i * 97)
                    .into_bytes();
                if edit == Some(i) {
                    d[100] ^= 1;
                }
                (format!("d{}/f{i}", i % 5), d)
            })
            .collect();
        // Short names, so each entry is one header block and its data padded to blocks.
        let mut starts = vec![0u64];
        for (_, d) in &files {
            starts.push(starts.last().unwrap() + 512 + (d.len() as u64).div_ceil(512) * 512);
        }
        (files, starts)
    }

    #[test]
    fn a_layer_resumed_from_a_checkpoint_is_the_cold_layer() {
        crate::compress::tests::install_zstd();
        for format in [LayerFormat::GZIP, LayerFormat::of(Compression::Zstd)] {
            let write = |lw: &mut LayerWriter<Vec<u8>>, files: &[(String, Vec<u8>)]| {
                for (p, d) in files {
                    lw.tar().append_bytes(&Entry::file(p, 0o644, 0), d).unwrap();
                }
            };
            let (files, starts) = entries(None);
            let mut lw =
                LayerWriter::with_checkpoints(Vec::new(), format, WriteOptions::default(), None)
                    .unwrap();
            write(&mut lw, &files);
            let (blob1, info1, cps) = lw.finish_checkpointed().unwrap();
            let mut plain =
                LayerWriter::with_format(Vec::new(), format, WriteOptions::default(), None);
            write(&mut plain, &files);
            assert_eq!(plain.finish().unwrap(), (blob1.clone(), info1));
            // The file after the last checkpoint changes: resume from that checkpoint (at the file's entry).
            let cp = cps.last().unwrap();
            assert!(cps.len() > 2, "{} checkpoints", cps.len());
            let first = starts.iter().position(|&s| s == cp.tar_offset).unwrap();
            let (edited, _) = entries(Some(first));
            let out = blob1[..cp.blob_offset as usize].to_vec();
            let mut lw =
                LayerWriter::resume(out, format, WriteOptions::default(), None, cp).unwrap();
            write(&mut lw, &edited[first..]);
            let (blob2, info2, _) = lw.finish_checkpointed().unwrap();
            let mut cold =
                LayerWriter::with_format(Vec::new(), format, WriteOptions::default(), None);
            write(&mut cold, &edited);
            assert_eq!((blob2, info2), cold.finish().unwrap(), "{format}");
        }
    }

    #[test]
    fn zstd_layers_have_the_gzip_layers_diff_id_and_recompress_to_the_same_bytes() {
        crate::compress::tests::install_zstd();
        let (gz, gi) = layer(LayerFormat::GZIP);
        let zstd = LayerFormat::of(Compression::Zstd);
        let (zs, zi) = layer(zstd);
        assert_eq!(gi.diff_id, zi.diff_id);
        assert_eq!(zi.descriptor().media_type, media::OCI_LAYER_ZSTD);
        assert_eq!(zi.digest, Digest::sha256_of(&zs));
        assert_eq!(zi.size, zs.len() as u64);
        // Transcoding the gzip layer gives the zstd layer written directly.
        let mut tar = crate::compress::decoder(&gz[..], Compression::Gzip).unwrap();
        let (again, ri) = recompress(&mut tar, Vec::new(), zstd, None).unwrap();
        assert_eq!((again, ri), (zs.clone(), zi));
        let mut back = Vec::new();
        crate::compress::decoder(&zs[..], Compression::Zstd)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(Digest::sha256_of(&back), gi.diff_id);
    }
}
