//! `contextIgnored` and `tarFiles`: the core's answers for the site's context panel and tarball views, so the
//! page never carries its own copy of the `.dockerignore` matcher or a tar reader.

use js_sys::{Array, Uint8Array};
use lw_layer::tar::TarReader;
use lw_layer::EntryKind;
use wasm_bindgen::prelude::*;

use crate::js::{err, get_string, get_string_map};

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
    let out = lw_build::context::excluded_files(&files, &ignore, &dockerfile)
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
