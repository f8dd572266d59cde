//! The tab's bzip2/xz decoder: `useArchiveDecoder(decode)` installs the page's `decode(codec, bytes) => Uint8Array`
//! (the glue in `js/index.js` backs it with `pkg/lw_archive.js`, lw-archive in a module of its own, loaded only
//! when an archive is bzip2 or xz) as lw-layer's archive decoder, so the main module links neither decoder.

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

/// Whether bzip2 and xz can be read (`tarFiles` and `build()` load the module first when not).
#[wasm_bindgen(js_name = hasArchiveDecoder)]
pub fn has_archive_decoder() -> bool {
    lw_layer::archive_compression::has_archive_decoder()
}

/// Whether an archive starting with `head` is bzip2 or xz, by lw-layer's own magic-number check (`sniff`): the page
/// loads the decoder module before it reads one.
#[wasm_bindgen(js_name = archiveNeedsDecoder)]
pub fn archive_needs_decoder(head: &[u8]) -> bool {
    use lw_layer::archive_compression::{sniff, ArchiveCompression};
    matches!(
        sniff(head),
        ArchiveCompression::Bzip2 | ArchiveCompression::Xz
    )
}
