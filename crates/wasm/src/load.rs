//! `loadTarball`: an image archive into the tab's store, verified before anything is stored — an OCI layout
//! (ours, skopeo's, podman's `oci-archive`) or, without `index.json`, a docker archive (see `load_docker`).

use std::collections::BTreeMap;

use lw_engine::archive::{blob_name, MAX_DOCUMENT};
use lw_engine::host::BlobSink;
use lw_oci::{media, Descriptor, Digest, DigestHasher, Index, Manifest};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::js::{err, to_js};
use crate::members::{read_member, Members, Source};
use crate::store::with;

/// Blobs of an archive, verified, waiting to enter the store: documents as bytes, layers in their sinks (in memory
/// while small, else already streamed to browser storage as a build's layers are, `spill.rs`), committed only once
/// the whole archive checked out (dropped, a sink aborts what it wrote).
#[derive(Default)]
pub(crate) struct Verified {
    pub docs: BTreeMap<Digest, Vec<u8>>,
    /// A list (an image has few layers), as the pull's.
    pub layers: Vec<(Digest, Box<dyn BlobSink>)>,
}

impl Verified {
    pub fn has(&self, d: &Digest) -> bool {
        self.docs.contains_key(d) || self.layers.iter().any(|(x, _)| x == d)
    }
}

/// A new blob of the tab's store, spilling to browser storage past 16 MiB.
pub(crate) fn new_sink() -> Result<Box<dyn BlobSink>, JsValue> {
    with(|s| crate::spill::SpillSink::create(&s.blobs, &s.spilled)).map_err(err)
}

/// Write `bytes` to `sink`, naming `what` in an error.
pub(crate) fn write_sink(sink: &mut dyn BlobSink, bytes: &[u8], what: &str) -> Result<(), JsValue> {
    sink.write_all(bytes)
        .map_err(|e| err(format!("storing {what}: {e}")))
}

/// The member of blob `d`, its size checked against the descriptor's (so a lying archive is not read).
fn member_of(m: &Members, d: &Descriptor, doc: bool) -> Result<crate::members::Member, JsValue> {
    let name = blob_name(&d.digest);
    let member = m
        .get(&name)?
        .ok_or_else(|| err(format!("the archive has no blob {}", d.digest)))?;
    if member.size != d.size {
        return Err(err(format!(
            "blob {} is {} bytes in the archive, but its descriptor says {}",
            d.digest, member.size, d.size
        )));
    }
    // Configs, manifests and indexes are small documents; only layers may be large.
    if doc && member.size > MAX_DOCUMENT {
        return Err(err(format!(
            "{} {} is {} bytes: too large for a document",
            d.media_type, d.digest, member.size
        )));
    }
    Ok(member)
}

/// A document of the layout, verified against its descriptor.
async fn blob(src: &Source, m: &Members, d: &Descriptor) -> Result<Vec<u8>, JsValue> {
    let member = member_of(m, d, true)?;
    let bytes = read_member(src, member, &blob_name(&d.digest)).await?;
    d.digest.check("archive blob", &bytes).map_err(err)?;
    Ok(bytes)
}

/// A layer of the layout streamed into a new blob as it is read and hashed; an error unless it matched its digest.
async fn layer(src: &Source, m: &Members, d: &Descriptor) -> Result<Box<dyn BlobSink>, JsValue> {
    let member = member_of(m, d, false)?;
    let mut sink = new_sink()?;
    let mut h = DigestHasher::new(d.digest.algorithm());
    src.chunks(member.off, member.size, |c| {
        h.update(c);
        write_sink(&mut *sink, c, d.digest.as_str())
    })
    .await?;
    let got = h.finish();
    if got != d.digest {
        return Err(err(format!(
            "digest mismatch for archive blob: expected {}, got {got}",
            d.digest
        )));
    }
    Ok(sink)
}

/// Every blob `root` reaches; an index's children only when the archive has them.
async fn collect(
    src: &Source,
    m: &Members,
    root: &Descriptor,
    out: &mut Verified,
) -> Result<(), JsValue> {
    let mut work = vec![(root.clone(), 0usize)];
    while let Some((d, depth)) = work.pop() {
        if depth > 4 {
            return Err(err("indexes nest too deeply"));
        }
        if out.has(&d.digest) {
            continue;
        }
        let bytes = blob(src, m, &d).await?;
        if media::is_index(&d.media_type) {
            let idx: Index = serde_json::from_slice(&bytes)
                .map_err(|e| err(format!("index {}: {e}", d.digest)))?;
            for c in &idx.manifests {
                if m.get(&blob_name(&c.digest))?.is_some() {
                    work.push((c.clone(), depth + 1));
                }
            }
        } else {
            let man: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| err(format!("manifest {}: {e}", d.digest)))?;
            if !out.has(&man.config.digest) {
                let data = blob(src, m, &man.config).await?;
                out.docs.insert(man.config.digest.clone(), data);
            }
            for b in &man.layers {
                if !out.has(&b.digest) {
                    let sink = layer(src, m, b).await?;
                    out.layers.push((b.digest.clone(), sink));
                }
            }
        }
        out.docs.insert(d.digest.clone(), bytes);
    }
    Ok(())
}

#[derive(Serialize)]
pub(crate) struct Loaded {
    pub names: Vec<String>,
    pub digest: String,
}

#[derive(Serialize)]
pub(crate) struct LoadResult {
    pub images: Vec<Loaded>,
}

/// Put verified blobs and named images into the store, and say what was loaded.
pub(crate) fn commit(
    blobs: Verified,
    images: Vec<(Vec<String>, Descriptor)>,
) -> Result<JsValue, JsValue> {
    for (d, sink) in blobs.layers {
        sink.commit(&d).map_err(err)?;
    }
    with(|s| {
        for (dg, b) in blobs.docs {
            s.blobs.insert(dg, b);
        }
        for (names, d) in &images {
            if names.is_empty() {
                s.add(None, d);
            }
            for n in names {
                s.add(Some(n.clone()), d);
            }
        }
    });
    to_js(&LoadResult {
        images: images
            .into_iter()
            .map(|(names, d)| Loaded {
                names,
                digest: d.digest.to_string(),
            })
            .collect(),
    })
}

/// `loadTarball(blob)`: every image of an OCI-layout archive (with the names its index gives) or of a docker
/// archive (named by its `RepoTags`). A `Blob`/`File` is read slice by slice, never copied whole.
#[wasm_bindgen(js_name = loadTarball)]
pub async fn load_tarball(blob: JsValue) -> Result<JsValue, JsValue> {
    let src = Source::from_js(&blob, "loadTarball").await?;
    let m = Members::index(&src).await?;
    let Some(index) = m.read(&src, "index.json", MAX_DOCUMENT).await? else {
        if m.get("manifest.json")?.is_some() {
            let (blobs, images) = crate::load_docker::convert(&src, &m).await?;
            return commit(blobs, images);
        }
        return Err(err(
            "loadTarball: not an image archive (neither index.json nor manifest.json)",
        ));
    };
    let idx: Index = serde_json::from_slice(&index).map_err(|e| err(format!("index.json: {e}")))?;
    let mut blobs = Verified::default();
    let mut images: Vec<(Vec<String>, Descriptor)> = Vec::new();
    for d in &idx.manifests {
        collect(&src, &m, d, &mut blobs).await?;
        let name = lw_engine::archive::layout_names(d);
        match images.iter_mut().find(|(_, x)| x.digest == d.digest) {
            Some((names, _)) => names.extend(name),
            None => images.push((name.into_iter().collect(), d.clone())),
        }
    }
    // Everything verified: now the store changes.
    commit(blobs, images)
}
