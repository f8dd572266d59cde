//! The tab's image store: blobs in memory (mirrored to IndexedDB by `js/index.js` through the `persist*` hooks)
//! and the digests of large ones kept in browser storage (`spill.rs`), a name → descriptor index, the session's
//! step cache; and what reads it: `images`, `exportTarball`, `layerEntries`, `readFile`, `storage`.

use std::cell::RefCell;

use js_sys::{Array, Uint8Array};
use lw_engine::archive::{resolve_manifest, write_archive_to, ArchiveItem};
use lw_engine::host::{BlobStore, MemoryBlobs, MemoryCache};
use lw_layer::{Entry, EntryKind};
use lw_oci::descriptor::annotations;
use lw_oci::{Descriptor, Digest, Index, Platform};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::blobread::BlobRead;
use crate::js::{err, to_js};
use crate::spill::{ExportParts, Spilled};
use crate::stream::EntryOut;
use lw_layer::push::{LayerScan, Tap};

/// One image the store knows: by name, or unnamed (a build without tags, a digest-only load).
pub use lw_engine::naming::ImageRecord as Record;

#[derive(Default)]
pub struct State {
    pub blobs: MemoryBlobs,
    /// Blobs in browser storage (not in `blobs`): digest → size.
    pub spilled: Spilled,
    /// Step cache: lives for the page session.
    pub cache: MemoryCache,
    pub records: Vec<Record>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Run `f` on the store.
pub fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// The platform whose manifest an index stands for in the tab (docker's `manifest.json`, layer views).
pub fn default_platform() -> Platform {
    Platform::new("linux", "amd64", None)
}

/// `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(name: &str) -> Result<String, JsValue> {
    lw_engine::naming::normalize(name).map_err(|e| err(format!("invalid reference {name:?}: {e}")))
}

/// `normalizeReference(ref)`: docker's full form of a reference (`busybox` → `docker.io/library/busybox:latest`).
#[wasm_bindgen(js_name = normalizeReference)]
pub fn normalize_reference(reference: &str) -> Result<String, JsValue> {
    normalize(reference)
}

impl State {
    /// Name `desc` (the image the name meant before stays, unnamed) or, with no name, remember it unnamed.
    pub fn add(&mut self, name: Option<String>, desc: &Descriptor) {
        match name {
            Some(n) => lw_engine::naming::set_name(&mut self.records, &n, desc),
            None => lw_engine::naming::add_unnamed(&mut self.records, desc),
        };
    }

    /// What a user's REF means: a name (familiar or full), `name@digest`, a manifest digest, or an image ID
    /// (config digest) prefix of at least 4 hex digits ([`lw_engine::naming::resolve`]).
    pub fn resolve(&self, r: &str) -> Result<Record, JsValue> {
        lw_engine::naming::resolve(&self.records, r, &mut |d| {
            resolve_manifest(&self.blobs, d, &default_platform())
                .ok()
                .map(|(_, m)| m.config.digest)
        })
        .map_err(|e| err(e.to_string()))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageOut {
    name: Option<String>,
    digest: String,
    media_type: String,
    size: u64,
}

/// `images()`: every record, named ones with their full names.
#[wasm_bindgen]
pub fn images() -> Result<JsValue, JsValue> {
    let list: Vec<ImageOut> = with(|s| {
        s.records
            .iter()
            .map(|r| ImageOut {
                name: r.name.clone(),
                digest: r.descriptor.digest.to_string(),
                media_type: r.descriptor.media_type.clone(),
                size: r.descriptor.size,
            })
            .collect()
    });
    to_js(&list)
}

/// `exportTarball(ref, {format})`: the same bytes `layerwright save REF` writes (the archive is at once an OCI
/// layout and a docker archive, so both formats are this one tar), as a `Blob` made of 1 MiB parts. Blobs in
/// browser storage are spliced in as they are stored, each read through once first to check its digest.
#[wasm_bindgen(js_name = exportTarball)]
pub async fn export_tarball(r: &str, opts: JsValue) -> Result<web_sys::Blob, JsValue> {
    if let Some(f) = crate::js::get_string(&opts, "format")? {
        if f != "oci" && f != "docker" {
            return Err(err(format!(
                "exportTarball: unknown format {f:?} (oci or docker)"
            )));
        }
    }
    // A first pass names the stored blobs the archive splices in; they are checked (which also takes each one's
    // File as stored now), then the archive is written again around them.
    let first = export_parts(r)?;
    for d in &first.spliced {
        BlobRead::open(d)
            .await
            .map_err(err)?
            .verify()
            .await
            .map_err(err)?;
    }
    export_parts(r)?.into_blob("application/x-tar")
}

/// The archive of image `r` as parts, with the stored blobs spliced in.
fn export_parts(r: &str) -> Result<ExportParts, JsValue> {
    with(|s| {
        let rec = s.resolve(r)?;
        let items = [ArchiveItem {
            names: rec.name.into_iter().collect(),
            descriptor: rec.descriptor,
        }];
        let mut out = ExportParts::new(s.spilled.borrow().clone());
        let store = crate::pool::PooledBlobs {
            blobs: &mut s.blobs.clone(),
            spilled: s.spilled.clone(),
            compress: None,
            hash: None,
            extracts: Default::default(),
        };
        write_archive_to(&store, &items, &default_platform(), &mut out, &mut |_| {})
            .map_err(err)?;
        Ok(out)
    })
}

/// The layer descriptor `layer` of image `r` (it must be one of the image's layers).
fn find_layer(s: &State, r: &str, layer: &str) -> Result<Descriptor, JsValue> {
    let rec = s.resolve(r)?;
    let (_, m) = resolve_manifest(&s.blobs, &rec.descriptor, &default_platform()).map_err(err)?;
    m.layers
        .iter()
        .find(|l| l.digest.to_string() == layer)
        .cloned()
        .ok_or_else(|| err(format!("image {r} has no layer {layer}")))
}

/// Stream layer `d` of the store (in memory or in browser storage, its digest checked as it streams) through the
/// push-mode scanner `scan`.
async fn scan_stored(d: &Descriptor, mut scan: LayerScan<'_>) -> Result<(), JsValue> {
    let blob = BlobRead::open(&d.digest).await.map_err(err)?;
    crate::blobread::scan_all(blob, &mut scan)
        .await
        .map_err(err)?;
    scan.finish()
        .map_err(|e| err(crate::blobread::layer_err(&d.digest, e)))?;
    Ok(())
}

/// `layerEntries(ref, layerDigest)`: the layer's tar entries, streamed (only headers are kept).
#[wasm_bindgen(js_name = layerEntries)]
pub async fn layer_entries(r: &str, layer: &str) -> Result<JsValue, JsValue> {
    let d = with(|s| find_layer(s, r, layer))?;
    let mut out = Vec::new();
    let scan = LayerScan::new(
        Box::new(|e: Entry| {
            out.push(EntryOut::from(e));
            Ok(())
        }),
        false,
    );
    scan_stored(&d, scan).await?;
    to_js(&out)
}

/// What a pass over a layer found for one path.
enum Found {
    Bytes(Vec<u8>),
    Link(String),
    Other,
}

/// One pass over layer `d` for the entry at `target`: a file's bytes (up to 1 GiB), a hard link's target.
async fn find_entry(d: &Descriptor, target: &str) -> Result<Option<Found>, JsValue> {
    let found = RefCell::new(None::<Found>);
    let mut data = Vec::new();
    let scan = LayerScan::with_tap(
        Box::new(|_| Ok(())),
        Tap {
            want: Box::new(|e: &Entry| {
                // The first entry for the path is the one read (as the layer's TarReader did).
                if e.path != target || found.borrow().is_some() {
                    return false;
                }
                let (f, want) = match &e.kind {
                    EntryKind::File => (Found::Bytes(Vec::new()), true),
                    EntryKind::Hardlink(t) => (Found::Link(t.clone()), false),
                    _ => (Found::Other, false),
                };
                *found.borrow_mut() = Some(f);
                want
            }),
            data: Box::new(|b: &[u8], _| {
                if data.len() + b.len() > 1 << 30 {
                    return Err("the file is larger than 1 GiB".into());
                }
                data.extend_from_slice(b);
                Ok(())
            }),
        },
        false,
    );
    scan_stored(d, scan).await?;
    Ok(match found.into_inner() {
        Some(Found::Bytes(_)) => Some(Found::Bytes(data)),
        f => f,
    })
}

/// `readFile(ref, layerDigest, path)`: one regular file's bytes from a layer (hard links followed within it); the
/// layer streams through the scanner, from memory or from browser storage (its digest checked before the bytes
/// are returned).
#[wasm_bindgen(js_name = readFile)]
pub async fn read_file(r: &str, layer: &str, path: &str) -> Result<Uint8Array, JsValue> {
    let want = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    let d = with(|s| find_layer(s, r, layer))?;
    let mut target = want.clone();
    // A hard link names an earlier entry: one more pass finds it.
    for _ in 0..2 {
        match find_entry(&d, &target).await? {
            Some(Found::Bytes(b)) => return Ok(Uint8Array::from(&b[..])),
            Some(Found::Link(t)) => target = t,
            Some(Found::Other) => {
                return Err(err(format!(
                    "{path} is not a regular file in layer {layer}"
                )))
            }
            None => break,
        }
    }
    Err(err(format!("layer {layer} has no file {path}")))
}

#[derive(Serialize)]
struct Usage {
    bytes: u64,
    images: usize,
}

/// `storage.usage()`: bytes of blobs held and number of image records.
#[wasm_bindgen(js_name = storageUsage)]
pub fn storage_usage() -> Result<JsValue, JsValue> {
    let u = with(|s| Usage {
        bytes: s
            .blobs
            .blobs
            .lock()
            .map(|m| m.values().map(|b| b.len() as u64).sum::<u64>())
            .unwrap_or(0)
            + s.spilled.borrow().values().sum::<u64>(),
        images: s.records.len(),
    });
    to_js(&u)
}

/// `storage.clear()` (the Rust half): forget every blob, name and cache entry.
#[wasm_bindgen(js_name = storageClear)]
pub fn storage_clear() {
    with(|s| *s = State::default());
}

/// Persistence hook: every blob digest held, for `js/index.js` to mirror into IndexedDB.
#[wasm_bindgen(js_name = persistBlobDigests)]
pub fn persist_blob_digests() -> Array {
    with(|s| {
        let map = s.blobs.blobs.lock().expect("blob map lock");
        map.keys()
            .map(|d| JsValue::from_str(&d.to_string()))
            .collect()
    })
}

/// Persistence hook: one blob's bytes.
#[wasm_bindgen(js_name = persistBlob)]
pub fn persist_blob(digest: &str) -> Result<Uint8Array, JsValue> {
    let d = Digest::parse(digest).map_err(err)?;
    with(|s| {
        s.blobs
            .get(&d)
            .map(|b| Uint8Array::from(&b[..]))
            .ok_or_else(|| err(format!("no blob {digest}")))
    })
}

/// Persistence hook: the index of names as an OCI index (names in `org.opencontainers.image.ref.name`).
#[wasm_bindgen(js_name = persistIndex)]
pub fn persist_index() -> String {
    with(|s| {
        let entries = s
            .records
            .iter()
            .map(|r| {
                let mut d = r.descriptor.clone();
                if let Some(n) = &r.name {
                    d.set_annotation(annotations::REF_NAME, n);
                }
                d
            })
            .collect();
        String::from_utf8(lw_oci::to_canonical_json(&Index::oci(entries))).unwrap_or_default()
    })
}

/// Persistence hook: put back a blob read from IndexedDB (verified against its digest).
#[wasm_bindgen(js_name = persistRestoreBlob)]
pub fn persist_restore_blob(digest: &str, bytes: &[u8]) -> Result<(), JsValue> {
    let d = Digest::parse(digest).map_err(err)?;
    d.check("stored blob", bytes).map_err(err)?;
    with(|s| s.blobs.insert(d, bytes.to_vec()));
    Ok(())
}

/// Persistence hook: a blob browser storage holds (its digest and size), put back without reading it.
#[wasm_bindgen(js_name = persistRestoreSpilled)]
pub fn persist_restore_spilled(digest: &str, size: f64) -> Result<(), JsValue> {
    let d = Digest::parse(digest).map_err(err)?;
    with(|s| s.spilled.borrow_mut().insert(d, size as u64));
    Ok(())
}

/// Whether blob `digest` is in browser storage (`js/index.js` lists such a layer by streaming its stored file).
#[wasm_bindgen(js_name = blobSpilled)]
pub fn blob_spilled(digest: &str) -> bool {
    Digest::parse(digest)
        .map(|d| with(|s| s.spilled.borrow().contains_key(&d)))
        .unwrap_or(false)
}

/// Persistence hook: put back the index of names; entries whose blobs are missing are dropped.
#[wasm_bindgen(js_name = persistRestoreIndex)]
pub fn persist_restore_index(json: &str) -> Result<(), JsValue> {
    let idx: Index = serde_json::from_str(json).map_err(|e| err(format!("stored index: {e}")))?;
    with(|s| {
        for d in idx.manifests {
            if !s.blobs.has(&d.digest) {
                continue;
            }
            let name = d.annotation(annotations::REF_NAME).map(str::to_string);
            s.add(name, &d);
        }
    });
    Ok(())
}

/// The names and the stored-blob list at a `storeMark`.
type Mark = (Vec<Record>, std::collections::BTreeMap<Digest, u64>);

thread_local! {
    /// The store as `storeMark` saw it, for `storeRollback`.
    static MARK: RefCell<Option<Mark>> = const { RefCell::new(None) };
}

/// `storeMark()`: remember the names and the list of blobs in browser storage (`js/index.js` calls it before a build).
#[wasm_bindgen(js_name = storeMark)]
pub fn store_mark() {
    let m = with(|s| (s.records.clone(), s.spilled.borrow().clone()));
    MARK.with(|c| *c.borrow_mut() = Some(m));
}

/// `storeRollback()`: put the names and stored-blob list back as `storeMark` saw them: a build whose layer did not
/// reach browser storage (a full quota) records no image and no half-written blob.
#[wasm_bindgen(js_name = storeRollback)]
pub fn store_rollback() {
    if let Some((records, spilled)) = MARK.with(|c| c.borrow_mut().take()) {
        with(|s| {
            s.records = records;
            *s.spilled.borrow_mut() = spilled;
        });
    }
}
