//! The tab's bzip2/xz/zstd decoders: `useArchiveDecoder(decode)` installs the page's `decode(codec, bytes) =>
//! Uint8Array` as lw-layer's archive decoder and `useZstdDecoder(create)` its zstd streams (the glue in
//! `js/index.js` backs both with `pkg/lw_archive.js`, lw-archive in a module of its own, loaded only when an
//! archive or a layer needs it), so the main module links none of the decoders. The page also gives its loader
//! (`setDecoderLoader`), which the core's async calls await when they meet zstd.

use std::cell::RefCell;
use std::io;

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

thread_local! {
    static DECODE: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// The whole archive through the page's function (synchronous: the module is loaded before the call that needs it).
fn js_decode(codec: &str, data: &[u8]) -> io::Result<Vec<u8>> {
    let f = DECODE
        .with(|f| f.borrow().clone())
        .ok_or_else(|| io::Error::other(format!("{codec}: the decoder module is not loaded")))?;
    let answer = f
        .call2(
            &JsValue::NULL,
            &JsValue::from(codec),
            &Uint8Array::from(data),
        )
        .map_err(|e| {
            let msg = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{e:?}"));
            io::Error::new(io::ErrorKind::InvalidData, msg)
        })?;
    let bytes = answer.dyn_into::<Uint8Array>().map_err(|_| {
        io::Error::other(format!(
            "{codec}: the decoder module did not return a Uint8Array"
        ))
    })?;
    Ok(bytes.to_vec())
}

/// Install `decode` as the bzip2/xz decoder of every archive this instance reads (`tarFiles`, ADD of a local
/// archive). A second call replaces the function.
#[wasm_bindgen(js_name = useArchiveDecoder)]
pub fn use_archive_decoder(decode: Function) {
    DECODE.with(|f| *f.borrow_mut() = Some(decode));
    lw_layer::archive_compression::set_archive_decoder(
        lw_layer::archive_compression::ArchiveDecoder { decode: js_decode },
    );
}

/// Whether bzip2, xz and zstd can be read (`tarFiles` and `build()` load the module first when not).
#[wasm_bindgen(js_name = hasArchiveDecoder)]
pub fn has_archive_decoder() -> bool {
    lw_layer::archive_compression::has_archive_decoder() && has_zstd_decoder()
}

/// Whether an archive starting with `head` is bzip2, xz or zstd, by lw-layer's own magic-number check (`sniff`):
/// the page loads the decoder module before it reads one.
#[wasm_bindgen(js_name = archiveNeedsDecoder)]
pub fn archive_needs_decoder(head: &[u8]) -> bool {
    use lw_layer::archive_compression::{sniff, ArchiveCompression};
    matches!(
        sniff(head),
        ArchiveCompression::Bzip2 | ArchiveCompression::Xz | ArchiveCompression::Zstd
    )
}

thread_local! {
    static ZSTD_NEW: RefCell<Option<Function>> = const { RefCell::new(None) };
    static LOADER: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// A zstd stream in the page's decoder module (a `ZstdStream` of `pkg/lw_archive.js`), called synchronously.
struct JsZstd {
    obj: JsValue,
    push: Function,
    finish: Function,
}

fn js_io_error(e: JsValue) -> io::Error {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("zstd: {e:?}"));
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn method(obj: &JsValue, name: &str) -> io::Result<Function> {
    js_sys::Reflect::get(obj, &JsValue::from(name))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| {
            io::Error::other(format!("zstd: the decoder module's stream has no {name}()"))
        })
}

impl lw_layer::zstd_push::ZstdStream for JsZstd {
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let answer = self
            .push
            .call2(&self.obj, &Uint8Array::from(input), &JsValue::from(limit))
            .map_err(js_io_error)?;
        let bytes = answer.dyn_into::<Uint8Array>().map_err(|_| {
            io::Error::other("zstd: the decoder module did not return a Uint8Array")
        })?;
        let start = out.len();
        out.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut out[start..]);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.finish
            .call0(&self.obj)
            .map(|_| ())
            .map_err(js_io_error)
    }
}

impl Drop for JsZstd {
    fn drop(&mut self) {
        // The decoder module's memory for this stream, freed now rather than when JS collects the object.
        if let Ok(free) = method(&self.obj, "free") {
            let _ = free.call0(&self.obj);
        }
    }
}

fn js_zstd_stream() -> io::Result<Box<dyn lw_layer::zstd_push::ZstdStream>> {
    let f = ZSTD_NEW
        .with(|f| f.borrow().clone())
        .ok_or_else(|| io::Error::other("zstd: the decoder module is not loaded"))?;
    let obj = f.call0(&JsValue::NULL).map_err(js_io_error)?;
    Ok(Box::new(JsZstd {
        push: method(&obj, "push")?,
        finish: method(&obj, "finish")?,
        obj,
    }))
}

/// Install `create` (a function returning a new zstd stream of the decoder module: `push(bytes, limit) =>
/// Uint8Array`, `finish()`, `free()`) as the zstd decoder of every layer and archive this instance reads. A second
/// call replaces the function.
#[wasm_bindgen(js_name = useZstdDecoder)]
pub fn use_zstd_decoder(create: Function) {
    ZSTD_NEW.with(|f| *f.borrow_mut() = Some(create));
    lw_layer::zstd_push::set_zstd_decoder(lw_layer::zstd_push::HostZstdDecoder {
        new: js_zstd_stream,
    });
}

/// Whether zstd can be read (the API loads the decoder module first when a layer or archive is zstd).
#[wasm_bindgen(js_name = hasZstdDecoder)]
pub fn has_zstd_decoder() -> bool {
    lw_layer::zstd_push::has_zstd_decoder()
}

/// Install `load` (`() => Promise`: loads `pkg/lw_archive.js` and installs its decoders), which the core awaits
/// where it meets a zstd layer and has no decoder yet.
#[wasm_bindgen(js_name = setDecoderLoader)]
pub fn set_decoder_loader(load: Function) {
    LOADER.with(|f| *f.borrow_mut() = Some(load));
}

/// Make sure zstd can be read: when it cannot, await the page's loader (an error names the module when it fails).
/// Without a loader (a host that installs decoders itself), a zstd read fails later naming the module.
pub(crate) async fn need_zstd() -> Result<(), JsValue> {
    if has_zstd_decoder() {
        return Ok(());
    }
    load_decoders().await
}

/// Make sure an archive starting with `head` can be read (ADD unpacking a context `Blob`, whose head the tab
/// reads only then): a bzip2, xz or zstd one awaits the page's loader when its decoder is missing.
pub(crate) async fn need_decoder_for_archive(head: &[u8]) -> Result<(), JsValue> {
    if !archive_needs_decoder(head) || has_archive_decoder() {
        return Ok(());
    }
    load_decoders().await
}

/// The page's loader of the decoder module, awaited (nothing without one).
async fn load_decoders() -> Result<(), JsValue> {
    let Some(load) = LOADER.with(|f| f.borrow().clone()) else {
        return Ok(());
    };
    let p = load.call0(&JsValue::NULL)?;
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&p)).await?;
    Ok(())
}

/// [`need_zstd`] when `head` (a blob's first bytes) is zstd.
pub(crate) async fn need_zstd_for(head: &[u8]) -> Result<(), JsValue> {
    if lw_layer::compress::sniff(head) == lw_oci::media::Compression::Zstd {
        need_zstd().await?;
    }
    Ok(())
}

/// [`need_zstd`] when the media type `mt` is a zstd layer's.
pub(crate) async fn need_zstd_for_type(mt: &str) -> Result<(), JsValue> {
    if lw_oci::media::layer_compression(mt) == Some(lw_oci::media::Compression::Zstd) {
        need_zstd().await?;
    }
    Ok(())
}
