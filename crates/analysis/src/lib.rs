//! lw-analysis: the inspector's layer analysis (lw-layer's `analysis`: the merged tree and the files later layers
//! overwrite or delete, as dive counts them) behind wasm-bindgen. The tab loads it as a wasm module of its own
//! (`pkg/lw_analysis.js`) when the inspector first analyses an image, so the main module carries none of it. This
//! file holds the JS shapes and the conversion (plain Rust, tested natively); `web` holds the exports, with
//! `BlobSha256` and `StreamSha256`: the tab's hash Web Worker (`crates/wasm/js/hash-worker.js`) hashes the streamed
//! listing's layer blobs and a build's layer streams with them, this being the smallest of the tab's modules that
//! links SHA-256 (lw-oci's, through lw-layer).

use lw_layer::analysis::{self, AnalysedEntry};
use serde::{Deserialize, Serialize};

/// One entry of a layer as `layerEntries` lists it (only what the analysis reads).
#[derive(Deserialize, Debug)]
pub struct EntryIn {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisOut {
    /// The merged tree in path order: each entry's path and where it is in `perLayer`.
    pub merged: Vec<MergedOut>,
    pub total: u64,
    pub wasted: u64,
    pub wasted_list: Vec<WasteOut>,
    /// `"LAYER:PATH"` of every wasted file copy.
    pub wasted_keys: Vec<String>,
    pub efficiency: f64,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct MergedOut {
    pub path: String,
    pub layer: usize,
    pub index: usize,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct WasteOut {
    pub path: String,
    pub count: u64,
    pub size: u64,
}

/// The analysis of `layers` (each layer's entries, in order) in the JS shape.
pub fn analyse_js(layers: Vec<Vec<EntryIn>>) -> AnalysisOut {
    let layers: Vec<Vec<AnalysedEntry>> = layers
        .into_iter()
        .map(|l| {
            l.into_iter()
                .map(|e| AnalysedEntry {
                    is_file: e.kind == "file",
                    is_dir: e.kind == "dir",
                    path: e.path,
                    size: e.size,
                })
                .collect()
        })
        .collect();
    let a = analysis::analyse(&layers);
    AnalysisOut {
        merged: a
            .merged
            .into_iter()
            .map(|(path, p)| MergedOut {
                path,
                layer: p.layer,
                index: p.index,
            })
            .collect(),
        total: a.total,
        wasted: a.wasted,
        wasted_list: a
            .wasted_list
            .into_iter()
            .map(|w| WasteOut {
                path: w.path,
                count: w.count,
                size: w.size,
            })
            .collect(),
        wasted_keys: a
            .wasted_keys
            .into_iter()
            .map(|(l, p)| format!("{l}:{p}"))
            .collect(),
        efficiency: a.efficiency,
    }
}

/// The export `crates/wasm/js/index.js` calls after loading this module on demand.
#[cfg(target_arch = "wasm32")]
pub mod web {
    use serde::Serialize;
    use wasm_bindgen::prelude::*;

    fn err(message: impl std::fmt::Display) -> JsValue {
        js_sys::Error::new(&message.to_string()).into()
    }

    /// `analyseLayers(perLayer)`: `perLayer` is each layer's `layerEntries` list, in order. Answers the merged tree
    /// (whiteouts and opaque directories applied), and the files later layers overwrite or delete, as dive counts
    /// them.
    #[wasm_bindgen(js_name = analyseLayers)]
    pub fn analyse_layers(per_layer: JsValue) -> Result<JsValue, JsValue> {
        let layers = serde_wasm_bindgen::from_value(per_layer)
            .map_err(|e| err(format!("analyseLayers: {e}")))?;
        super::analyse_js(layers)
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(err)
    }

    /// `new StreamSha256(state)`: a layer stream's SHA-256 going on from `state` (lw-layer's saved midstate; empty
    /// for a new stream), `update(bytes)` in order, `state()` whenever: what a build's writer would have computed
    /// itself (its tar stream or its blob), on the build's hash worker instead of the page's thread.
    #[wasm_bindgen]
    pub struct StreamSha256(lw_layer::midstate::Sha256Mid);

    #[wasm_bindgen]
    impl StreamSha256 {
        #[wasm_bindgen(constructor)]
        pub fn new(state: &[u8]) -> Result<StreamSha256, JsValue> {
            if state.is_empty() {
                return Ok(StreamSha256(lw_layer::midstate::Sha256Mid::new()));
            }
            lw_layer::midstate::Sha256Mid::from_bytes(state)
                .map(StreamSha256)
                .ok_or_else(|| err("StreamSha256: not a saved SHA-256 state"))
        }

        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        /// The state so far, saved (lw-layer's `Sha256Mid::to_bytes`).
        pub fn state(&self) -> Vec<u8> {
            self.0.to_bytes()
        }
    }

    /// `new BlobSha256()`, `update(bytes)` in order, then `finish()`: the hex SHA-256 of everything given (lw-oci's
    /// hasher, the one the registry client verifies blobs with).
    #[wasm_bindgen]
    pub struct BlobSha256(Option<lw_oci::DigestHasher>);

    impl Default for BlobSha256 {
        fn default() -> Self {
            Self::new()
        }
    }

    #[wasm_bindgen]
    impl BlobSha256 {
        #[wasm_bindgen(constructor)]
        pub fn new() -> BlobSha256 {
            BlobSha256(Some(lw_oci::DigestHasher::sha256()))
        }

        pub fn update(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
            self.0
                .as_mut()
                .ok_or_else(|| err("BlobSha256: already finished"))?
                .update(bytes);
            Ok(())
        }

        /// The hex digest (without `sha256:`); the hasher cannot be used after.
        pub fn finish(&mut self) -> Result<String, JsValue> {
            let d = self
                .0
                .take()
                .ok_or_else(|| err("BlobSha256: already finished"))?
                .finish();
            Ok(d.encoded().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwritten_and_deleted_files_are_wasted_with_their_layers() {
        let layers: Vec<Vec<EntryIn>> = serde_json::from_str(
            r#"[
                [{"path": "etc", "type": "dir"}, {"path": "etc/a", "type": "file", "size": 100},
                 {"path": "etc/b", "type": "file", "size": 50}],
                [{"path": "etc/a", "type": "file", "size": 10}, {"path": "etc/.wh.b", "type": "file"}]
            ]"#,
        )
        .unwrap();
        let out = analyse_js(layers);
        let want = {
            let entries = |l: &[(&str, bool, bool, u64)]| -> Vec<AnalysedEntry> {
                l.iter()
                    .map(|(p, f, d, s)| AnalysedEntry {
                        path: p.to_string(),
                        is_file: *f,
                        is_dir: *d,
                        size: *s,
                    })
                    .collect()
            };
            analysis::analyse(&[
                entries(&[
                    ("etc", false, true, 0),
                    ("etc/a", true, false, 100),
                    ("etc/b", true, false, 50),
                ]),
                entries(&[("etc/a", true, false, 10), ("etc/.wh.b", true, false, 0)]),
            ])
        };
        assert_eq!(out.total, want.total);
        assert_eq!(out.wasted, want.wasted);
        assert!(out.wasted > 0, "{out:?}");
        assert_eq!(out.merged.len(), want.merged.len());
        assert_eq!(out.wasted_keys.len(), want.wasted_keys.len());
        assert!(out.wasted_keys.iter().any(|k| k == "0:etc/a"), "{out:?}");
        assert_eq!(out.efficiency, want.efficiency);
    }
}
