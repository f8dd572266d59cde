//! The tab's zstd encoder: `useZstdEncoder(frame, version)` installs the page's `frame(bytes, level) =>
//! Uint8Array` (the glue in `js/index.js` backs it with `pkg/lw_zstd.js`, libzstd in a module of its own, loaded
//! only when a build asks for zstd) as lw-layer's zstd encoder, so the main module links no libzstd.

use std::cell::RefCell;
use std::io;

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

thread_local! {
    static FRAME: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// One frame through the page's function (synchronous: the module is loaded before the build starts).
fn js_frame(data: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    let f = FRAME
        .with(|f| f.borrow().clone())
        .ok_or_else(|| io::Error::other("zstd: the encoder module is not loaded"))?;
    let answer = f
        .call2(
            &JsValue::NULL,
            &Uint8Array::from(data),
            &JsValue::from(level),
        )
        .map_err(|e| io::Error::other(format!("zstd: the encoder module threw: {e:?}")))?;
    let bytes = answer
        .dyn_into::<Uint8Array>()
        .map_err(|_| io::Error::other("zstd: the encoder module did not return a Uint8Array"))?;
    let start = out.len();
    out.resize(start + bytes.length() as usize, 0);
    bytes.copy_to(&mut out[start..]);
    Ok(())
}

/// Install `frame` (libzstd's `version`, as `zstdVersion()` of the encoder module says) as the zstd encoder of
/// every layer this instance writes. A second call replaces the function (the version must stay the same).
#[wasm_bindgen(js_name = useZstdEncoder)]
pub fn use_zstd_encoder(frame: Function, version: u32) -> Result<(), JsValue> {
    if let Some(e) = lw_layer::compress::zstd_encoder() {
        if e.version != version {
            return Err(crate::js::err(format!(
                "useZstdEncoder: version {version}, but layers are already written with {}",
                e.version
            )));
        }
    }
    FRAME.with(|f| *f.borrow_mut() = Some(frame));
    lw_layer::compress::set_zstd_encoder(lw_layer::compress::ZstdEncoder {
        version,
        frame: js_frame,
    });
    Ok(())
}

/// Whether a zstd encoder is installed (`build()` loads the module first when it is not).
#[wasm_bindgen(js_name = hasZstdEncoder)]
pub fn has_zstd_encoder() -> bool {
    lw_layer::compress::zstd_encoder().is_some()
}
