//! `loadTarball`: an OCI-layout archive (ours, skopeo's, podman's `oci-archive`) into the tab's store, verified
//! before anything is stored.

use std::collections::BTreeMap;

use lw_build::archive::blob_name;
use lw_layer::tar::TarReader;
use lw_layer::{path as tpath, EntryKind};
use lw_oci::descriptor::annotations;
use lw_oci::{media, Descriptor, Digest, Index, Manifest};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::js::{bytes_of, err, to_js};
use crate::store::{normalize, with};

/// The archive's regular files by member name, with links resolved inside the archive.
struct Members {
    files: BTreeMap<String, Vec<u8>>,
    links: BTreeMap<String, String>,
}

impl Members {
    fn read(bytes: &[u8]) -> Result<Members, JsValue> {
        let mut m = Members {
            files: BTreeMap::new(),
            links: BTreeMap::new(),
        };
        let mut tar = TarReader::new(bytes);
        while let Some(e) = tar
            .next_entry()
            .map_err(|e| err(format!("not a valid tar archive: {e}")))?
        {
            match &e.kind {
                EntryKind::File => {
                    let data = tar.read_to_vec(u64::MAX >> 1).map_err(err)?;
                    m.links.remove(&e.path);
                    m.files.insert(e.path.clone(), data);
                }
                EntryKind::Symlink(t) => {
                    let r = tpath::resolve_link(&e.path, t)
                        .filter(|_| !t.starts_with('/'))
                        .ok_or_else(|| {
                            err(format!(
                                "symlink {} -> {t} points out of the archive",
                                e.path
                            ))
                        })?;
                    m.links.insert(e.path.clone(), r);
                }
                EntryKind::Hardlink(t) => {
                    m.links.insert(e.path.clone(), t.clone());
                }
                _ => {}
            }
        }
        Ok(m)
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        let mut name = name.to_string();
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Some(f);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    /// A blob, verified against its descriptor.
    fn blob(&self, d: &Descriptor) -> Result<Vec<u8>, JsValue> {
        let bytes = self
            .get(&blob_name(&d.digest))
            .ok_or_else(|| err(format!("the archive has no blob {}", d.digest)))?;
        d.digest.check("archive blob", bytes).map_err(err)?;
        Ok(bytes.to_vec())
    }
}

/// Every blob `d` reaches; an index's children only when the archive has them.
fn collect(
    m: &Members,
    d: &Descriptor,
    out: &mut BTreeMap<Digest, Vec<u8>>,
    depth: usize,
) -> Result<(), JsValue> {
    if depth > 4 {
        return Err(err("indexes nest too deeply"));
    }
    let bytes = m.blob(d)?;
    if media::is_index(&d.media_type) {
        let idx: Index =
            serde_json::from_slice(&bytes).map_err(|e| err(format!("index {}: {e}", d.digest)))?;
        for c in &idx.manifests {
            if m.get(&blob_name(&c.digest)).is_some() {
                collect(m, c, out, depth + 1)?;
            }
        }
    } else {
        let man: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("manifest {}: {e}", d.digest)))?;
        out.insert(man.config.digest.clone(), m.blob(&man.config)?);
        for l in &man.layers {
            out.insert(l.digest.clone(), m.blob(l)?);
        }
    }
    out.insert(d.digest.clone(), bytes);
    Ok(())
}

#[derive(Serialize)]
struct Loaded {
    names: Vec<String>,
    digest: String,
}

#[derive(Serialize)]
struct LoadResult {
    images: Vec<Loaded>,
}

/// `loadTarball(blob)`: every image of an OCI-layout archive, with the names its index gives.
#[wasm_bindgen(js_name = loadTarball)]
pub async fn load_tarball(blob: JsValue) -> Result<JsValue, JsValue> {
    let bytes = bytes_of(&blob, "loadTarball").await?;
    let m = Members::read(&bytes)?;
    drop(bytes);
    let index = m.get("index.json").ok_or_else(|| {
        err(if m.get("manifest.json").is_some() {
            "loadTarball: docker-only archives (no index.json) are not supported in the browser yet; \
             load them with the layerwright CLI"
        } else {
            "loadTarball: not an image archive (no index.json)"
        })
    })?;
    let idx: Index = serde_json::from_slice(index).map_err(|e| err(format!("index.json: {e}")))?;
    let mut blobs = BTreeMap::new();
    let mut images: Vec<(Vec<String>, Descriptor)> = Vec::new();
    for d in &idx.manifests {
        collect(&m, d, &mut blobs, 0)?;
        let name = d
            .annotation(annotations::CONTAINERD_IMAGE_NAME)
            .or_else(|| d.annotation(annotations::REF_NAME))
            .and_then(|n| normalize(n).ok());
        match images.iter_mut().find(|(_, x)| x.digest == d.digest) {
            Some((names, _)) => names.extend(name),
            None => images.push((name.into_iter().collect(), d.clone())),
        }
    }
    // Everything verified: now the store changes.
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
