//! The core's answers for the site's views (`contextIgnored`, `tarFiles`, `registryHost`, `inspectImage`), so the
//! page never carries its own copy of the `.dockerignore` matcher, a tar reader, reference parsing or an image
//! archive's documents. `analyseLayers` (whiteout rules, wasted space) is the on-demand lw-analysis module's.

use js_sys::{Array, Reflect, Uint8Array};
use lw_engine::archive::{document_descriptor, resolve_manifest};
use lw_engine::host::BlobStore;
use lw_layer::tar::TarReader;
use lw_layer::EntryKind;
use lw_oci::{media, Descriptor, Digest, ImageConfig, Index, Manifest, Platform};
use wasm_bindgen::prelude::*;

use serde::Serialize;

use crate::js::{err, get, get_string, get_string_map, json_to_js, to_js};
use crate::store::{default_platform, with, State};

/// `contextIgnored({files, ignoreFiles?, dockerfile?})`: the context paths a build leaves out, decided by the
/// build's own filtered context. `ignoreFiles` maps ignore-file names (`.dockerignore`,
/// `Dockerfile.dockerignore`) to their text; `dockerfile` defaults to `Dockerfile`.
#[wasm_bindgen(js_name = contextIgnored)]
pub fn context_ignored(opts: JsValue) -> Result<Array, JsValue> {
    let files: Vec<String> = crate::js::get(&opts, "files")?
        .dyn_into::<Array>()
        .map_err(|_| err("contextIgnored: files must be an array of paths"))?
        .iter()
        .map(|v| {
            v.as_string()
                .ok_or_else(|| err("contextIgnored: a path is not a string"))
        })
        .collect::<Result<_, _>>()?;
    let ignore: Vec<(String, Vec<u8>)> = get_string_map(&opts, "ignoreFiles")?
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    let dockerfile = get_string(&opts, "dockerfile")?.unwrap_or_else(|| "Dockerfile".into());
    let out = lw_engine::context::excluded_files(&files, &ignore, &dockerfile)
        .map_err(|e| err(format!("contextIgnored: {e}")))?;
    Ok(out.into_iter().map(JsValue::from).collect())
}

/// No single member the page asks for is larger than this (the tab's memory is the limit, not the archive's).
const MAX_MEMBER: u64 = 1 << 30;

/// `tarFiles(bytes)`: the regular files of a tar (an image tarball; gzip, bzip2, xz or zstd compressed as `load`
/// takes it) as `[path, bytes]` pairs, read by the core's strict tar reader and decompressor.
#[wasm_bindgen(js_name = tarFiles)]
pub fn tar_files(bytes: &[u8]) -> Result<Array, JsValue> {
    let (_, input) = lw_layer::archive_compression::open(Box::new(bytes))
        .map_err(|e| err(format!("tarFiles: {e}")))?;
    let mut r = TarReader::new(input);
    let out = Array::new();
    while let Some(entry) = r.next_entry().map_err(|e| err(format!("tarFiles: {e}")))? {
        if !matches!(entry.kind, EntryKind::File) {
            continue;
        }
        let data = r
            .read_to_vec(MAX_MEMBER)
            .map_err(|e| err(format!("tarFiles: {}: {e}", entry.path)))?;
        let pair = Array::new();
        pair.push(&JsValue::from(entry.path.as_str()));
        pair.push(&Uint8Array::from(data.as_slice()));
        out.push(&pair);
    }
    Ok(out)
}

/// `registryHost(ref)`: the `host[:port]` serving a reference's registry API (Docker Hub's is
/// `registry-1.docker.io`), from the core's reference grammar.
#[wasm_bindgen(js_name = registryHost)]
pub fn registry_host(reference: &str) -> Result<String, JsValue> {
    let r = lw_oci::reference::parse_docker_ref(reference)
        .map_err(|e| err(format!("invalid reference {reference:?}: {e}")))?;
    Ok(r.registry_host().to_string())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerOut {
    digest: String,
    size: u64,
    media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
}

/// The inspector's view of one image, for `inspectRemote` and `inspectImage`: the index (when there is one) and its
/// platforms, the chosen manifest, its config and history, and each layer with the instruction that made it.
pub(crate) fn image_info(
    index: Option<&[u8]>,
    manifest_digest: &Digest,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    config_bytes: &[u8],
) -> Result<JsValue, JsValue> {
    let config: ImageConfig = serde_json::from_slice(config_bytes)
        .map_err(|e| err(format!("config {}: {e}", manifest.config.digest)))?;
    // History entries with empty_layer set make no layer: pair the others with the layers in order.
    let mut created = config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone());
    let layers: Vec<LayerOut> = manifest
        .layers
        .iter()
        .map(|l| LayerOut {
            digest: l.digest.to_string(),
            size: l.size,
            media_type: l.media_type.clone(),
            created_by: created.next().flatten(),
        })
        .collect();
    let platforms: Vec<String> = match index {
        Some(bytes) => serde_json::from_slice::<Index>(bytes)
            .map_err(|e| err(format!("index: {e}")))?
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect(),
        None => vec![format!("{}/{}", config.os, config.architecture)],
    };
    let out = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&out, &JsValue::from_str(k), v);
    if let Some(i) = index {
        set("index", &json_to_js(i)?)?;
    }
    set("platforms", &to_js(&platforms)?)?;
    set(
        "manifestDigest",
        &JsValue::from_str(&manifest_digest.to_string()),
    )?;
    set("manifest", &json_to_js(manifest_bytes)?)?;
    let cfg = json_to_js(config_bytes)?;
    set("history", &get(&cfg, "history")?)?;
    set("config", &cfg)?;
    set("layers", &to_js(&layers)?)?;
    Ok(out.into())
}

/// `inspectImage(ref, {platform}?)`: `inspectRemote`'s answer for an image of the tab's store (a loaded tarball's, a
/// build's), read from the stored documents: the index and its platforms, the manifest for the platform, config,
/// history and layers. `ref` is what names a record (a name, an ID or digest prefix) or the digest of any stored
/// manifest or index (one platform's manifest of a multi-platform build has no record of its own). `platform`
/// (`os/arch[/variant]`, `runContainer` asks for `linux/386`) picks an index's entry, and the image must be for it;
/// without it the tab's platform is picked (else an index's first manifest), as before.
#[wasm_bindgen(js_name = inspectImage)]
pub fn inspect_image(r: &str, opts: JsValue) -> Result<JsValue, JsValue> {
    let wanted = get_string(&opts, "platform")?
        .map(|p| Platform::parse(&p).map_err(|e| err(format!("inspectImage: {e}"))))
        .transpose()?;
    with(|s| {
        let root = stored_document(s, r)?;
        let doc = |d: &Digest| {
            s.blobs
                .get(d)
                .ok_or_else(|| err(format!("inspectImage: blob {d} is not in the store")))
        };
        let root_bytes = doc(&root.digest)?;
        let index = media::is_index(&root.media_type).then_some(root_bytes.as_slice());
        let platform = wanted.clone().unwrap_or_else(default_platform);
        let (digest, manifest) = resolve_manifest(&s.blobs, &root, &platform)
            .map_err(|e| err(format!("inspectImage: {e}")))?;
        let manifest_bytes = doc(&digest)?;
        let config_bytes = doc(&manifest.config.digest)?;
        if let Some(want) = &wanted {
            // An index without the platform resolves to its first manifest: the config says whose image it is.
            let config: ImageConfig = serde_json::from_slice(&config_bytes)
                .map_err(|e| err(format!("config {}: {e}", manifest.config.digest)))?;
            let have = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
            if !want.matches(&have) {
                return Err(err(format!(
                    "inspectImage: {r} has no {want} image (its image is {have})"
                )));
            }
        }
        image_info(index, &digest, &manifest_bytes, &manifest, &config_bytes)
    })
}

/// The document `r` stands for: a store record's, else a stored manifest or index given by its full digest.
fn stored_document(s: &State, r: &str) -> Result<Descriptor, JsValue> {
    let record = match s.resolve(r) {
        Ok(rec) => return Ok(rec.descriptor),
        Err(e) => e,
    };
    match Digest::parse(r) {
        Ok(d) if s.blobs.has(&d) => {
            document_descriptor(&s.blobs, &d).map_err(|e| err(format!("inspectImage: {e}")))
        }
        _ => Err(record),
    }
}
