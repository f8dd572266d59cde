//! Rebuilds in proportion to the change: a COPY/ADD layer is written with a checkpoint at every member start (tar
//! and blob offsets, both SHA-256 states), kept under the step's position key (its parent key and instruction).
//! The next build of that step resumes from the last checkpoint whose entries before it are unchanged: the blob's
//! start is taken from the earlier layer (copied, read back and checked, or referred to where the host keeps spliced
//! blobs) and only the files from there on are read, compressed and hashed. The bytes are those of a cold build.
//! One code path for both hosts: members are compressed inline (on threads natively) or on the host's member pool
//! (the tab's Web Workers), and the start comes from the host ([`crate::host::BlobStore::resume_blob`]).

use std::collections::BTreeMap;

use lw_layer::compress::LayerFormat;
use lw_layer::midstate::Sha256Mid;
use lw_layer::pgzip::{Checkpoint, MemberPool};
use lw_layer::tar::WriteOptions;
use lw_layer::LayerWriter;
use lw_oci::Digest;
use serde::{Deserialize, Serialize};

use super::copy::{Data, Item};
use super::Host;
use crate::host::CachedLayer;
use crate::Error;

/// A checkpoint at the start of item `item`, valid while `chain` (the identity of the items before it) holds.
#[derive(Serialize, Deserialize, Clone)]
struct Point {
    item: usize,
    chain: Digest,
    tar_offset: u64,
    next_header: u64,
    blob_offset: u64,
    tar_state: String,
    blob_state: String,
}

/// The checkpoints of the layer a step last wrote, and that layer's blob.
#[derive(Serialize, Deserialize)]
struct Record {
    blob: Digest,
    points: Vec<Point>,
    /// SHA-256 of the blob and points: a host may copy a blob's start without hashing it again, trusting the
    /// saved state, so a damaged record must be ignored (a cold build) rather than name a blob wrongly.
    #[serde(default)]
    check: String,
}

impl Record {
    fn check_of(blob: &Digest, points: &[Point]) -> String {
        let bytes = serde_json::to_vec(&(blob, points)).unwrap_or_default();
        Digest::sha256_of(&bytes).to_string()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Point {
    fn new(item: usize, chain: Digest, cp: &Checkpoint) -> Point {
        Point {
            item,
            chain,
            tar_offset: cp.tar_offset,
            next_header: cp.next_header,
            blob_offset: cp.blob_offset,
            tar_state: hex(&cp.tar_state.to_bytes()),
            blob_state: hex(&cp.blob_state.to_bytes()),
        }
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            tar_offset: self.tar_offset,
            next_header: self.next_header,
            blob_offset: self.blob_offset,
            tar_state: Sha256Mid::from_bytes(&unhex(&self.tar_state)?)?,
            blob_state: Sha256Mid::from_bytes(&unhex(&self.blob_state)?)?,
        })
    }
}

/// `chain[j]` names `items[..j]`: their entries and content digests (from `hashed`, else the host's). It stops at the
/// first context file whose digest is not known without reading it.
fn chain(
    host: &Host,
    format: LayerFormat,
    items: &[Item],
    hashed: &BTreeMap<String, Digest>,
) -> Vec<Digest> {
    // The encoder and its version too: a start compressed by another libzstd would not give a cold build's bytes.
    let seed = format!("layerwright resume 1\0{}", format.encoder());
    let mut out = vec![Digest::sha256_of(seed.as_bytes())];
    for it in items {
        let content = match &it.data {
            Data::None => Digest::sha256_of(b""),
            Data::Bytes(b) => Digest::sha256_of(b),
            Data::Context(p) => match hashed
                .get(p)
                .cloned()
                .or_else(|| host.context.known_digest(p))
            {
                Some(d) => d,
                None => break,
            },
        };
        let prev = out.last().expect("starts with one");
        let line = format!("{prev}\0{:?}\0{content}", it.entry);
        out.push(Digest::sha256_of(line.as_bytes()));
    }
    out
}

/// Write the layer of `items` (gzip or zstd), from the best checkpoint kept under `key` when there is one, its gzip
/// members compressed on `pool` when the host has one (the tab's Web Workers). `known`: content digests of context
/// files hashed for the step's key (the host's are asked for the others). With `out` (a `--no-cache` build, whose
/// key waits for the digests hashed as the files are written), the layer is written from the start, its
/// checkpoints kept, and every context file's digest put in `out`.
pub(super) async fn write(
    host: &mut Host<'_>,
    format: LayerFormat,
    items: &[Item],
    key: &Digest,
    known: &BTreeMap<String, Digest>,
    out: Option<&mut BTreeMap<String, Digest>>,
    pool: Option<Box<dyn MemberPool>>,
) -> Result<CachedLayer, Error> {
    let before = chain(host, format, items, known);
    let candidates = match out {
        Some(_) => Vec::new(),
        None => host.cache.resume_candidates(key),
    };
    let records: Vec<Record> = candidates
        .iter()
        .filter_map(|b| serde_json::from_slice::<Record>(b).ok())
        .filter(|r| r.check == Record::check_of(&r.blob, &r.points))
        .filter(|r| host.blobs.has(&r.blob))
        .collect();
    // The latest checkpoint any record offers (the most recent record on a tie).
    let start = records
        .iter()
        .filter_map(|r| {
            let p = r
                .points
                .iter()
                .rev()
                .find(|p| p.item < before.len() && before[p.item] == p.chain)?;
            Some((r, p, p.checkpoint()?))
        })
        .min_by_key(|(_, p, _)| std::cmp::Reverse(p.item));
    // The earlier blob's start, taken (and checked, where the host reads it back) into the new one; a start that
    // cannot be had (a stored blob gone or changed) means a cold write.
    let resumed = match start {
        Some((r, p, cp)) => host
            .blobs
            .resume_blob(&r.blob, p.blob_offset, &cp.blob_state)
            .await
            .ok()
            .map(|sink| (sink, r, p, cp)),
        None => None,
    };
    let opts = WriteOptions { clamp_mtime: None };
    let members = host.blobs.member_cache();
    let (mut lw, first, mut points) = match resumed {
        Some((sink, r, p, cp)) => {
            let kept: Vec<Point> = r
                .points
                .iter()
                .filter(|q| q.item < p.item)
                .cloned()
                .collect();
            let lw = LayerWriter::checkpointed(sink, format, opts, members, pool, Some(&cp))?;
            (lw, p.item, kept)
        }
        None => {
            let sink = host.blobs.create()?;
            let lw = LayerWriter::checkpointed(sink, format, opts, members, pool, None)?;
            (lw, 0, Vec::new())
        }
    };
    let mut starts = Vec::new();
    let mut buf = Vec::new();
    // The files written are hashed from the same read (unless known), for the checkpoints' chain.
    let mut hashed = known.clone();
    for (j, it) in items.iter().enumerate().skip(first) {
        if let Some(off) = lw.tar_offset()? {
            starts.push((off, j));
        }
        let one = std::slice::from_ref(it);
        super::layers::append_items(host, &mut lw, one, Some(&mut hashed), &mut buf).await?;
    }
    let (sink, info, cps) = lw.finish_checkpointed_async().await?;
    let after = chain(host, format, items, &hashed);
    for cp in &cps {
        let Some(&(_, j)) = starts.iter().find(|(off, _)| *off == cp.tar_offset) else {
            continue;
        };
        if j < after.len() {
            points.push(Point::new(j, after[j].clone(), cp));
        }
    }
    let record = Record {
        check: Record::check_of(&info.digest, &points),
        blob: info.digest.clone(),
        points,
    };
    if let Ok(bytes) = serde_json::to_vec(&record) {
        host.cache.put_resume_points(key, &bytes);
    }
    if let Some(out) = out {
        out.extend(hashed);
    }
    super::layers::commit(sink, info)
}
