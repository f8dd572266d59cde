//! An OCI image layout handed to the tab as files, the tab's `oci-layout://` named context
//! (`buildContexts: {NAME: {ociLayout: {files}, digest?, tag?}}`): every blob enters the tab's store checked
//! against its digest, and the image the layout names (`digest`, the `tag` annotation, or its only image) answers
//! for the name, as the CLI's `--build-context NAME=oci-layout://PATH[:TAG|@DIGEST]` does.

use js_sys::Array;
use lw_engine::host::{BaseImage, ImageSource, MemoryBlobs};
use lw_engine::Error;
use lw_oci::{Descriptor, Digest, Platform};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::{bytes_of, err, get, get_string};

/// The image of a layout whose blobs are in the tab's store.
pub(crate) struct LayoutImage {
    pub blobs: MemoryBlobs,
    pub descriptor: Descriptor,
    pub name: String,
}

impl ImageSource for LayoutImage {
    fn resolve(&mut self, _: &str, platform: &Platform) -> Result<BaseImage, Error> {
        crate::build::base_image(&self.blobs, &self.name, &self.descriptor, platform)
    }
}

/// Read the layout of `value` (`{ociLayout: {files}, digest?, tag?}`) into `blobs`; `name` is the context's.
pub(crate) async fn layout_of(
    value: &JsValue,
    blobs: &MemoryBlobs,
    name: &str,
) -> Result<LayoutImage, JsValue> {
    let bad = |what: String| err(format!("build: buildContexts[{name:?}].ociLayout: {what}"));
    let files = get(&get(value, "ociLayout")?, "files")?;
    if !files.is_object() {
        return Err(bad("expected {files: {path: bytes}}".into()));
    }
    let mut index = None;
    for pair in js_sys::Object::entries(files.unchecked_ref()).iter() {
        let pair: Array = pair.unchecked_into();
        let path = pair.get(0).as_string().unwrap_or_default();
        let bytes = bytes_of(&pair.get(1), &format!("ociLayout.files[{path:?}]")).await?;
        if path == "index.json" {
            index = Some(bytes);
        } else if let Some(rest) = path.strip_prefix("blobs/") {
            let d = Digest::parse(&rest.replacen('/', ":", 1))
                .map_err(|e| bad(format!("{path}: not a blob's path: {e}")))?;
            d.check(&path, &bytes).map_err(|e| bad(e.to_string()))?;
            blobs.insert(d, bytes);
        }
    }
    let index = index.ok_or_else(|| bad("no index.json".into()))?;
    let index: lw_oci::Index =
        serde_json::from_slice(&index).map_err(|e| bad(format!("index.json: {e}")))?;
    let digest = get_string(value, "digest")?;
    let tag = get_string(value, "tag")?;
    let digest = match digest {
        Some(d) => Some(Digest::parse(&d).map_err(|e| bad(format!("digest {d:?}: {e}")))?),
        None => None,
    };
    let descriptor = index
        .layout_image(tag.as_deref(), digest.as_ref(), |d| {
            blobs.get(d).map(|b| b.to_vec())
        })
        .map_err(|e| bad(e.to_string()))?;
    Ok(LayoutImage {
        blobs: blobs.clone(),
        descriptor,
        name: format!("oci-layout://{name}"),
    })
}
