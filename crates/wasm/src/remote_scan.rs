//! Streamed remote inspection: a layer blob fetched from its registry and scanned as it arrives
//! (`scanRemoteLayer`: entries and progress go to callbacks, the blob's size and digest are verified at the end,
//! nothing is stored), and one file read out of a layer by streaming the layer only up to that entry
//! (`readRemoteFile`). Only the current chunk and one tar header group are held in wasm memory. The blob's SHA-256
//! is computed here, or, when the page hands a `blobHasher` (index.js: a Web Worker), on another thread from the
//! same chunks, and compared here before the layer is reported verified.

use std::cell::Cell;

use js_sys::{Function, Uint8Array};
use lw_layer::{Entry, EntryKind};
use lw_oci::{Descriptor, Digest};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::{err, get, get_string, to_js};
use crate::remote::{client_for, drive, drive_tee, target};
use crate::stream::EntryOut;
use lw_layer::push::{LayerScan, Tap};

/// Progress goes to `onProgress` at most once per this many compressed bytes (and once at the end): a call per
/// fetch chunk would cost more than the scan.
const PROGRESS_STEP: u64 = 256 << 10;

/// The layer descriptor `inspectRemote` listed (`{digest, size, mediaType}`).
fn layer_desc(layer: &JsValue) -> Result<Descriptor, JsValue> {
    let digest = get_string(layer, "digest")?.ok_or_else(|| err("layer: no digest"))?;
    let digest =
        Digest::parse(&digest).map_err(|e| err(format!("layer digest {digest:?}: {e}")))?;
    let size = get(layer, "size")?
        .as_f64()
        .filter(|s| *s >= 0.0)
        .ok_or_else(|| err(format!("layer {digest}: no size")))?;
    let media_type = get_string(layer, "mediaType")?
        .unwrap_or_else(|| lw_oci::media::OCI_LAYER_GZIP.to_string());
    Ok(Descriptor::new(&media_type, digest, size as u64))
}

fn callback(opts: &JsValue, name: &str) -> Result<Option<Function>, JsValue> {
    Ok(get(opts, name)?.dyn_into::<Function>().ok())
}

/// The page's hasher of the blob's bytes on another thread (`opts.blobHasher`): `push(chunk)` takes each chunk
/// (and may answer a Promise, its back-pressure), `finish()` answers a Promise of the hex SHA-256 of all of them.
struct BlobHasher {
    push: Function,
    finish: Function,
    this: JsValue,
}

impl BlobHasher {
    fn from_opts(opts: &JsValue, desc: &Descriptor) -> Result<Option<Self>, JsValue> {
        let this = get(opts, "blobHasher")?;
        // Only SHA-256 is hashed apart (the Worker's module has no other); a sha512 blob is hashed here.
        if this.is_null() || this.is_undefined() || !desc.digest.as_str().starts_with("sha256:") {
            return Ok(None);
        }
        let method = |name: &str| {
            get(&this, name)?
                .dyn_into::<Function>()
                .map_err(|_| err(format!("blobHasher.{name} is not a function")))
        };
        Ok(Some(BlobHasher {
            push: method("push")?.bind0(&this),
            finish: method("finish")?,
            this,
        }))
    }

    /// The digest the other thread computed, compared with the descriptor's: a mismatch is the registry client's
    /// own error, naming both digests.
    async fn check(&self, desc: &Descriptor) -> Result<(), JsValue> {
        let p = self
            .finish
            .call0(&self.this)?
            .dyn_into::<js_sys::Promise>()?;
        let hex = wasm_bindgen_futures::JsFuture::from(p)
            .await?
            .as_string()
            .ok_or_else(|| err("blobHasher.finish() answered no digest"))?;
        let actual = format!("sha256:{hex}");
        if actual != desc.digest.as_str() {
            return Err(err(lw_registry::Error::DigestMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.digest.to_string(),
                actual,
            }));
        }
        Ok(())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RemoteScanOut {
    count: usize,
    /// The blob digest, verified against the manifest's as the bytes arrived.
    digest: String,
    /// Whether the digest was computed by the page's `blobHasher` (on another thread) rather than here.
    hashed_apart: bool,
    size: u64,
    compression: &'static str,
}

/// `scanRemoteLayer(ref, layer, {onEntry, onProgress, ...remoteOpts})`: the layer blob downloaded as a stream
/// from `ref`'s registry, decompressed and parsed as it arrives; each entry goes to `onEntry` as soon as its header
/// is read, `onProgress(bytes)` follows the compressed bytes received. The registry client checks the blob's size
/// and digest while it streams, so a corrupt or substituted layer ends in an error after its entries were shown.
#[wasm_bindgen(js_name = scanRemoteLayer)]
pub async fn scan_remote_layer(r: &str, layer: JsValue, opts: JsValue) -> Result<JsValue, JsValue> {
    let t = target(r)?;
    let desc = layer_desc(&layer)?;
    // A zstd layer loads the decoder module before its bytes arrive.
    crate::archive::need_zstd_for_type(&desc.media_type).await?;
    let client = client_for(&t.domain, &opts)?;
    let on_entry = callback(&opts, "onEntry")?;
    let on_progress = callback(&opts, "onProgress")?;
    let cb_err: Cell<Option<JsValue>> = Cell::new(None);
    let mut scan = LayerScan::new(
        Box::new(|e: Entry| {
            if let Some(f) = &on_entry {
                let v = to_js(&EntryOut::from(e)).map_err(|x| format!("{x:?}"))?;
                if let Err(x) = f.call1(&JsValue::NULL, &v) {
                    cb_err.set(Some(x));
                    return Err("onEntry threw".into());
                }
            }
            Ok(())
        }),
        // The blob is hashed (by the registry client or the page's worker); a diff ID would be a second sha256 pass.
        false,
    );
    let hasher = BlobHasher::from_opts(&opts, &desc)?;
    let mut op = match &hasher {
        // The bytes are hashed on the other thread: the client checks the size only.
        Some(_) => client.get_blob_size_checked(&t.repo, &desc),
        None => client.get_blob_for(&t.repo, &desc),
    }
    .map_err(err)?;
    let mut reported = 0u64;
    let r = drive_tee(
        &mut op,
        &mut crate::blobread::Bodies::default(),
        &mut |chunk| {
            // The first chunk is reported before it is scanned: the page times its first entries from it.
            let report = |n: u64| match &on_progress {
                Some(f) => f
                    .call1(&JsValue::NULL, &JsValue::from_f64(n as f64))
                    .map(|_| ()),
                None => Ok(()),
            };
            if reported == 0 {
                reported = chunk.len() as u64;
                report(reported)?;
            }
            scan.push(chunk)
                .map_err(|e| err(format!("layer {}: {e}", desc.digest)))?;
            if scan.bytes() - reported >= PROGRESS_STEP {
                reported = scan.bytes();
                report(reported)?;
            }
            Ok(())
        },
        hasher.as_ref().map(|h| &h.push),
    )
    .await;
    if let Some(x) = cb_err.take() {
        return Err(x);
    }
    r?;
    let s = scan
        .finish()
        .map_err(|e| err(format!("layer {}: {e}", desc.digest)))?;
    if let Some(h) = &hasher {
        h.check(&desc).await?;
    }
    if let Some(f) = &on_progress {
        f.call1(&JsValue::NULL, &JsValue::from_f64(s.size as f64))?;
    }
    to_js(&RemoteScanOut {
        count: s.entries,
        digest: desc.digest.to_string(),
        hashed_apart: hasher.is_some(),
        size: s.size,
        compression: match s.compression {
            lw_oci::media::Compression::Gzip => "gzip",
            lw_oci::media::Compression::Zstd => "zstd",
            lw_oci::media::Compression::None => "none",
        },
    })
}

/// `readRemoteFile(ref, layer, path, {onData, ...remoteOpts})`: the bytes of `path` in the layer, read by streaming
/// the layer from the registry only up to the end of that entry (the download is then cancelled, so the blob's
/// digest is not checked). With `onData(chunk)` the bytes go to the callback as they arrive and the result is the
/// byte count; without it they are returned as one `Uint8Array`.
#[wasm_bindgen(js_name = readRemoteFile)]
pub async fn read_remote_file(
    r: &str,
    layer: JsValue,
    path: &str,
    opts: JsValue,
) -> Result<JsValue, JsValue> {
    let t = target(r)?;
    let desc = layer_desc(&layer)?;
    // A zstd layer loads the decoder module before its bytes arrive.
    crate::archive::need_zstd_for_type(&desc.media_type).await?;
    let client = client_for(&t.domain, &opts)?;
    let on_data = callback(&opts, "onData")?;
    let want = path.trim_start_matches("./").trim_start_matches('/');
    let want = want.trim_end_matches('/');
    let done = Cell::new(false);
    let found: Cell<Option<String>> = Cell::new(None);
    let cb_err: Cell<Option<JsValue>> = Cell::new(None);
    let mut total = 0u64;
    let mut kept = Vec::new();
    let mut scan = LayerScan::with_tap(
        Box::new(|_| Ok(())),
        Tap {
            want: Box::new(|e: &Entry| {
                if e.path.trim_end_matches('/') != want {
                    return false;
                }
                match &e.kind {
                    EntryKind::File => true,
                    EntryKind::Hardlink(to) => {
                        found.set(Some(format!("{want} is a hard link to {to}: open {to}")));
                        done.set(true);
                        false
                    }
                    EntryKind::Symlink(to) => {
                        found.set(Some(format!("{want} is a symbolic link to {to}")));
                        done.set(true);
                        false
                    }
                    _ => {
                        found.set(Some(format!("{want} is not a regular file")));
                        done.set(true);
                        false
                    }
                }
            }),
            data: Box::new(|d: &[u8], last: bool| {
                total += d.len() as u64;
                match &on_data {
                    Some(f) if !d.is_empty() => {
                        if let Err(x) = f.call1(&JsValue::NULL, &Uint8Array::from(d)) {
                            cb_err.set(Some(x));
                            return Err("onData threw".into());
                        }
                    }
                    Some(_) => {}
                    None => kept.extend_from_slice(d),
                }
                if last {
                    done.set(true);
                }
                Ok(())
            }),
        },
        false,
    );
    let mut op = client.get_blob_for(&t.repo, &desc).map_err(err)?;
    // The sink's error that only means "found it, stop downloading".
    let stop = || JsValue::from_str("lw: entry read");
    let r = drive(
        &mut op,
        &mut crate::blobread::Bodies::default(),
        &mut |chunk| {
            scan.push(chunk)
                .map_err(|e| err(format!("layer {}: {e}", desc.digest)))?;
            if done.get() {
                return Err(stop());
            }
            Ok(())
        },
    )
    .await;
    if let Some(x) = cb_err.take() {
        return Err(x);
    }
    if done.get() {
        drop(scan);
    } else {
        r?;
        scan.finish()
            .map_err(|e| err(format!("layer {}: {e}", desc.digest)))?;
    }
    if let Some(msg) = found.take() {
        return Err(err(msg));
    }
    if !done.get() {
        return Err(err(format!(
            "{want} is not a file of layer {}",
            desc.digest
        )));
    }
    if on_data.is_some() {
        Ok(JsValue::from_f64(total as f64))
    } else {
        Ok(Uint8Array::from(&kept[..]).into())
    }
}
