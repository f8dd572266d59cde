//! Layers read as a stream from a `Blob`/`File` (`scanLayer`, and `layerEntries(blob)` in `js/index.js`), and the
//! wasm memory size (`memoryBytes`), so callers can see that a large layer never lands in wasm memory.

use lw_layer::{Entry, EntryKind};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::js::{err, get, to_js};
use crate::members::Source;
use lw_layer::push::LayerScan;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntryOut {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

impl From<Entry> for EntryOut {
    fn from(e: Entry) -> EntryOut {
        let (kind, link_target) = match e.kind {
            EntryKind::File => ("file", None),
            EntryKind::Dir => ("dir", None),
            EntryKind::Symlink(t) => ("symlink", Some(t)),
            EntryKind::Hardlink(t) => ("hardlink", Some(t)),
            EntryKind::CharDevice { .. } => ("char", None),
            EntryKind::BlockDevice { .. } => ("block", None),
            _ => ("fifo", None),
        };
        EntryOut {
            path: e.path,
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            size: e.size,
            link_target,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanOut {
    /// Empty when `onEntry` was given (entries went to the callback instead).
    entries: Vec<EntryOut>,
    count: usize,
    /// `null` with `{digests: false}`.
    digest: Option<String>,
    size: u64,
    diff_id: Option<String>,
    compression: &'static str,
}

/// `scanLayer(blob, {onEntry, digests})`: a layer blob (tar, tar+gzip) read 1 MiB at a time — its entries and, unless
/// `digests: false`, its digest and diff ID — holding only the current chunk and one header in wasm memory.
/// (`layerEntries(blob)` passes `digests: false`: two sha256 passes cost more than inflating.)
#[wasm_bindgen(js_name = scanLayer)]
pub async fn scan_layer(blob: JsValue, opts: JsValue) -> Result<JsValue, JsValue> {
    let src = Source::from_js(&blob, "scanLayer").await?;
    // A zstd layer loads the decoder module first (its first bytes say so).
    crate::archive::need_zstd_for(&src.read_at(0, 4.min(src.len() as usize)).await?).await?;
    let cb = get(&opts, "onEntry")?;
    let cb: Option<js_sys::Function> = cb.dyn_into().ok();
    let mut entries = Vec::new();
    let mut cb_err: Option<JsValue> = None;
    let hash = get(&opts, "digests")?.as_bool() != Some(false);
    let mut scan = LayerScan::new(
        Box::new(|e: Entry| {
            let out = EntryOut::from(e);
            match &cb {
                Some(f) => {
                    let v = to_js(&out).map_err(|x| format!("{x:?}"))?;
                    if let Err(x) = f.call1(&JsValue::NULL, &v) {
                        cb_err = Some(x);
                        return Err("onEntry threw".into());
                    }
                }
                None => entries.push(out),
            }
            Ok(())
        }),
        hash,
    );
    let total = src.len();
    let r = src
        .chunks(0, total, |c| {
            scan.push(c).map_err(|e| err(format!("layer: {e}")))
        })
        .await;
    let s = r.and_then(|()| scan.finish().map_err(|e| err(format!("layer: {e}"))));
    if let Some(x) = cb_err {
        return Err(x);
    }
    let s = s?;
    let count = s.entries;
    to_js(&ScanOut {
        entries,
        count,
        digest: s.digest.map(|d| d.to_string()),
        size: s.size,
        diff_id: s.diff_id.map(|d| d.to_string()),
        compression: match s.compression {
            lw_oci::media::Compression::Gzip => "gzip",
            lw_oci::media::Compression::Zstd => "zstd",
            lw_oci::media::Compression::None => "none",
        },
    })
}

/// `memoryBytes()`: the size of the module's `WebAssembly.Memory` (it only grows, so this is also its peak).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as f64) * 65536.0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}
