//! Writing a step's items (COPY, ADD, WORKDIR, bind-mount sources) as a layer in the build's format into the host's
//! blob store: inline, or (gzip) on the host's member pool with the engine awaiting it; and rewriting an executor's
//! RUN layer into the build's format.

use std::collections::BTreeMap;

use lw_layer::compress::LayerFormat;
use lw_layer::tar::WriteOptions;
use lw_layer::LayerWriter;
use lw_oci::media::{self, Compression};
use lw_oci::{Digest, DigestHasher};

use super::copy::{Data, Item};
use super::Host;
use crate::context::Context;
use crate::host::CachedLayer;
use crate::Error;

/// How much of a context file is read (and fetched by the host) at a time.
const BLOCK: usize = 256 * 1024;

/// Write the layer of small, generated items (WORKDIR's directories, an empty RUN layer) on this thread.
pub(super) fn write_items(
    host: &mut Host,
    format: LayerFormat,
    items: &[Item],
) -> Result<CachedLayer, Error> {
    let mut lw = inline_writer(host, format)?;
    fill(host, &mut lw, items, None, &mut Vec::new())?;
    let (sink, info) = lw.finish()?;
    commit(sink, info)
}

/// A layer writer compressing on this thread (on worker threads natively), into a new blob of the host's store.
fn inline_writer(
    host: &mut Host,
    format: LayerFormat,
) -> Result<LayerWriter<Box<dyn crate::host::BlobSink>>, Error> {
    Ok(LayerWriter::with_format(
        host.blobs.create()?,
        format,
        WriteOptions { clamp_mtime: None },
        host.blobs.member_cache(),
    ))
}

/// Write the layer of `items`, compressing on the host's member pool when it has one (awaiting it whenever it is
/// full); with `digests`, also hash each context file from the same read (one pass over the context instead of
/// one for the cache key and one for the layer) and tell the host. With `resume` (the step's position key and the
/// file digests its cache key was made of), the layer is written with checkpoints and resumed from the last
/// unchanged one of the layer the step wrote before ([`super::resume`]).
pub(super) async fn write_items_async(
    host: &mut Host<'_>,
    format: LayerFormat,
    items: &[Item],
    digests: Option<&mut BTreeMap<String, Digest>>,
    resume: Option<(&Digest, &BTreeMap<String, Digest>)>,
) -> Result<CachedLayer, Error> {
    // The member pool (the tab's Web Workers) makes gzip members only; zstd is compressed here.
    let pool = match format == LayerFormat::GZIP {
        true => host.blobs.member_pool(),
        false => None,
    };
    // Written with checkpoints; with every file's digest known (the step's key was looked up first), resumed from
    // one (a `--no-cache` build hashes the files as it writes them, and only leaves checkpoints).
    if let (Some((key, known)), false) = (resume, format.compression == Compression::None) {
        return super::resume::write(host, format, items, key, known, digests, pool).await;
    }
    let Some(pool) = pool else {
        // Compressed here (zstd, uncompressed, a host without workers), still awaiting each context block the host
        // fetches, so the tab's `Blob`s stream in whatever the format.
        let mut lw = inline_writer(host, format)?;
        append_items(host, &mut lw, items, digests, &mut Vec::new()).await?;
        let (sink, info) = lw.finish()?;
        return commit(sink, info);
    };
    let sink = host.blobs.create()?;
    let members = host.blobs.member_cache();
    let opts = WriteOptions { clamp_mtime: None };
    let mut lw = LayerWriter::with_pool(sink, opts, pool, members);
    append_items(host, &mut lw, items, digests, &mut Vec::new()).await?;
    let (sink, info) = lw.finish_async().await?;
    commit(sink, info)
}

/// Append `items` to a layer, one at a time, awaiting the host's block fetches (the tab's Blobs) and its member
/// pool whenever it is full (never natively), so memory stays bounded.
pub(super) async fn append_items<W: std::io::Write>(
    host: &mut Host<'_>,
    lw: &mut LayerWriter<W>,
    items: &[Item],
    mut digests: Option<&mut BTreeMap<String, Digest>>,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    for it in items {
        match &it.data {
            // A context file is read in blocks the host may have to fetch first (the tab's Blobs).
            Data::Context(p) => {
                append_context_file(host, lw, it, p, digests.as_deref_mut(), buf).await?
            }
            _ => fill(
                host,
                lw,
                std::slice::from_ref(it),
                digests.as_deref_mut(),
                buf,
            )?,
        }
        while lw.saturated() {
            lw.wait().await?;
        }
    }
    Ok(())
}

/// `layer` (an executor's RUN layer, gzip natively and from serve) in `format`: as it is when it already is, else
/// decompressed and written again (same diff ID, new digest).
pub(super) fn in_format(
    host: &mut Host,
    format: LayerFormat,
    layer: CachedLayer,
) -> Result<CachedLayer, Error> {
    let have = media::layer_compression(&layer.descriptor.media_type);
    // Executors write gzip at the default level: a gzip build at another level rewrites it too.
    if have == Some(format.compression)
        && (format == LayerFormat::GZIP || have != Some(Compression::Gzip))
    {
        return Ok(layer);
    }
    let Some(have) = have else {
        return Err(Error::Host(format!(
            "the RUN executor returned a layer of media type {}",
            layer.descriptor.media_type
        )));
    };
    let sink = host.blobs.create()?;
    let cache = host.blobs.member_cache();
    let src = host.blobs.open(&layer.descriptor.digest)?;
    let mut tar = lw_layer::compress::decoder(src, have).map_err(|e| {
        Error::Host(format!(
            "reading RUN layer {}: {e}",
            layer.descriptor.digest
        ))
    })?;
    let (sink, info) = lw_layer::layer::recompress(&mut tar, sink, format, cache)?;
    drop(tar);
    if info.diff_id != layer.diff_id {
        return Err(Error::Host(format!(
            "RUN layer {} decompresses to {}, not to its diff ID {}",
            layer.descriptor.digest, info.diff_id, layer.diff_id
        )));
    }
    commit(sink, info)
}

pub(super) fn commit(
    sink: Box<dyn crate::host::BlobSink>,
    info: lw_layer::LayerInfo,
) -> Result<CachedLayer, Error> {
    sink.commit(&info.digest)?;
    Ok(CachedLayer {
        descriptor: info.descriptor(),
        diff_id: info.diff_id,
    })
}

/// Append `items` to the layer, reading context files in blocks.
pub(super) fn fill<W: std::io::Write>(
    host: &mut Host,
    lw: &mut LayerWriter<W>,
    items: &[Item],
    mut digests: Option<&mut BTreeMap<String, Digest>>,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    for it in items {
        match &it.data {
            Data::None => lw.tar().append_bytes(&it.entry, &[])?,
            Data::Bytes(b) => lw.tar().append_bytes(&it.entry, b)?,
            Data::Context(p) => {
                let mut file_hash = start_file(host, lw, it, p, digests.as_deref_mut(), buf)?;
                let mut off = 0u64;
                while off < it.entry.size {
                    off += copy_block(host, lw, it, p, off, buf, file_hash.as_mut())?;
                }
                end_file(host, p, file_hash, digests.as_deref_mut());
            }
        }
    }
    Ok(())
}

/// Append one context file to a pooled layer, awaiting the host's [`crate::context::Context::fetch`] before each
/// block and the pool whenever it is full, so only a block of the file and the pool's members are held.
async fn append_context_file<W: std::io::Write>(
    host: &mut Host<'_>,
    lw: &mut LayerWriter<W>,
    it: &Item,
    p: &str,
    mut digests: Option<&mut BTreeMap<String, Digest>>,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let mut file_hash = start_file(host, lw, it, p, digests.as_deref_mut(), buf)?;
    let mut off = 0u64;
    while off < it.entry.size {
        let block = read_block(host.context, p, off, it.entry.size, buf).await?;
        if let Some(fh) = file_hash.as_mut() {
            fh.update(block);
        }
        lw.tar().write_data(block)?;
        off += block.len() as u64;
        while lw.saturated() {
            lw.wait().await?;
        }
    }
    end_file(host, p, file_hash, digests);
    Ok(())
}

/// Start a context file's entry: its header, and its hasher unless the digest is not wanted or already known (the
/// host's stat cache, the browser's WebCrypto), in which case the known one is recorded.
fn start_file<W: std::io::Write>(
    host: &Host,
    lw: &mut LayerWriter<W>,
    it: &Item,
    p: &str,
    digests: Option<&mut BTreeMap<String, Digest>>,
    buf: &mut Vec<u8>,
) -> Result<Option<DigestHasher>, Error> {
    if buf.is_empty() {
        buf.resize(BLOCK, 0);
    }
    lw.tar().header(&it.entry)?;
    let Some(map) = digests else {
        return Ok(None);
    };
    if map.contains_key(p) {
        return Ok(None);
    }
    match host.context.known_digest(p) {
        Some(d) => {
            map.insert(p.to_string(), d);
            Ok(None)
        }
        None => Ok(Some(DigestHasher::sha256())),
    }
}

/// Copy the block of the file at `off` into the layer (and its hasher); the number of bytes copied.
fn copy_block<W: std::io::Write>(
    host: &Host,
    lw: &mut LayerWriter<W>,
    it: &Item,
    p: &str,
    off: u64,
    buf: &mut [u8],
    file_hash: Option<&mut DigestHasher>,
) -> Result<u64, Error> {
    let block = block_at(host.context, p, off, it.entry.size, buf)?;
    if let Some(fh) = file_hash {
        fh.update(block);
    }
    lw.tar().write_data(block)?;
    Ok(block.len() as u64)
}

/// The next block of the file at `path` (`size` bytes) from `off`, read into `buf` once the host has fetched it
/// (the tab's `Blob`s; nothing to await natively).
pub(crate) async fn read_block<'b>(
    ctx: &dyn Context,
    path: &str,
    off: u64,
    size: u64,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8], Error> {
    if buf.is_empty() {
        buf.resize(BLOCK, 0);
    }
    let want = buf.len().min((size - off) as usize);
    if let Some(f) = ctx.fetch(path, off, want) {
        f.await?;
    }
    block_at(ctx, path, off, size, buf)
}

/// The block of the file at `path` (`size` bytes) from `off`, as much of it as `buf` holds; never empty.
fn block_at<'b>(
    ctx: &dyn Context,
    path: &str,
    off: u64,
    size: u64,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    let want = buf.len().min((size - off) as usize);
    let n = ctx.read_at(path, off, &mut buf[..want])?;
    if n == 0 {
        return Err(Error::Host(format!(
            "{path}: the file shrank while it was being read"
        )));
    }
    Ok(&buf[..n])
}

/// Record a context file's digest hashed while it was written.
fn end_file(
    host: &Host,
    p: &str,
    file_hash: Option<DigestHasher>,
    digests: Option<&mut BTreeMap<String, Digest>>,
) {
    if let (Some(fh), Some(map)) = (file_hash, digests) {
        // A file that changed since it was listed has another stat now, so a host keying digests by the listed
        // stat never reuses this one for the changed file.
        let d = fh.finish();
        host.context.digest_computed(p, &d);
        map.insert(p.to_string(), d);
    }
}
