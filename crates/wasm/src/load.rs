//! `loadTarball`: an image archive into the tab's store, verified before anything is stored — an OCI layout
//! (ours, skopeo's, podman's `oci-archive`) or, without `index.json`, a docker archive (see `load_docker`).

use std::collections::BTreeMap;

use lw_engine::archive::{blob_name, MAX_DOCUMENT};
use lw_oci::{media, Descriptor, Digest, Index, Manifest};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::js::{err, to_js};
use crate::members::{read_member, Members, Source};
use crate::store::with;

/// A blob of the layout, verified against its descriptor (size first, so a lying archive is not read).
async fn blob(src: &Source, m: &Members, d: &Descriptor, doc: bool) -> Result<Vec<u8>, JsValue> {
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
    let bytes = read_member(src, member, &name).await?;
    d.digest.check("archive blob", &bytes).map_err(err)?;
    Ok(bytes)
}

/// Every blob `root` reaches; an index's children only when the archive has them.
async fn collect(
    src: &Source,
    m: &Members,
    root: &Descriptor,
    out: &mut BTreeMap<Digest, Vec<u8>>,
) -> Result<(), JsValue> {
    let mut work = vec![(root.clone(), 0usize)];
    while let Some((d, depth)) = work.pop() {
        if depth > 4 {
            return Err(err("indexes nest too deeply"));
        }
        if out.contains_key(&d.digest) {
            continue;
        }
        let bytes = blob(src, m, &d, true).await?;
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
            for (i, b) in std::iter::once(&man.config).chain(&man.layers).enumerate() {
                if !out.contains_key(&b.digest) {
                    let data = blob(src, m, b, i == 0).await?;
                    out.insert(b.digest.clone(), data);
                }
            }
        }
        out.insert(d.digest.clone(), bytes);
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
    blobs: BTreeMap<Digest, Vec<u8>>,
    images: Vec<(Vec<String>, Descriptor)>,
) -> Result<JsValue, JsValue> {
    with(|s| {
        for (dg, b) in blobs {
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
    let mut blobs = BTreeMap::new();
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
