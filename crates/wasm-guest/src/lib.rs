//! lw-wasm-guest: RUN in the tab's VM (issue #20), the 9P2000.L server the guest's root is mounted from.
//! `crates/wasm/js/vm.js` runs v86 and hands each 9p request to [`NinepSession::handle`]; at the step's end
//! [`NinepSession::layer`] gives the layer, written by `lw_layer::diff` as the native RUN writes it. A wasm module
//! of its own (`pkg/lw_guest.js`), loaded with the VM, so the main bundle stays within its size budget.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

use js_sys::{Array, Function, Uint8Array};
use lw_layer::ninep::{Base, BaseBuilder, Need, Session, Source, Spill};
use lw_oci::media::Compression;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// A JS `Error` with `message`.
fn err(message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

/// Serialize to a plain JS object.
fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(err)
}

/// One layer blob the page handed in whole (a mount source's, a session's from arrays), read out of JS memory a
/// block at a time as it is unpacked: the module never holds a whole compressed layer. (A stage root's stored layers
/// are not handed in whole: [`NinepBaseBuilder`].)
struct JsBytes {
    bytes: Uint8Array,
    at: u32,
}

impl std::io::Read for JsBytes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.bytes.length() - self.at).min(buf.len().min(1 << 20) as u32);
        self.bytes
            .subarray(self.at, self.at + n)
            .copy_to(&mut buf[..n as usize]);
        self.at += n;
        Ok(n as usize)
    }
}

/// The layers of a blob array (base first), each a buffered stream out of JS memory.
fn blobs(layers: &Array) -> Vec<std::io::BufReader<JsBytes>> {
    layers
        .iter()
        .map(|l| {
            let bytes = JsBytes {
                bytes: Uint8Array::new(&l),
                at: 0,
            };
            std::io::BufReader::with_capacity(256 << 10, bytes)
        })
        .collect()
}

/// A stage root made once from its layers, kept by the page for later steps over the same layers.
#[wasm_bindgen]
pub struct NinepBase {
    inner: Base,
}

/// A stage root being made from its layers as the page reads them: each layer's bytes pushed in chunks (a stored
/// layer's checked chunks as they come out of browser storage), decompressed and unpacked as they arrive, so
/// neither the page nor this module ever holds a whole layer. Regular files above `threshold` keep their bytes out
/// of wasm memory: they go to `onData(chunk)` in order (the page appends them to a scratch store; `chunk` is a view
/// of the module's memory, valid only during the call, and the callback must not call into the module) and the root
/// keeps where they are (their offset in that store); a session's reads of them are answered through
/// [`NinepSession::need`].
#[wasm_bindgen]
pub struct NinepBaseBuilder {
    inner: BaseBuilder,
}

#[wasm_bindgen]
impl NinepBaseBuilder {
    /// `threshold`: Infinity keeps every file in memory (`onData` is then never called). `start`: the bytes the
    /// store already holds (a mount source's files go after the stage root's), 0 when not given.
    #[wasm_bindgen(constructor)]
    pub fn new(threshold: f64, on_data: Function, start: Option<f64>) -> NinepBaseBuilder {
        install_zstd();
        let spill = JsSpill {
            on_data,
            buf: Vec::with_capacity(SPILL_CHUNK),
        };
        NinepBaseBuilder {
            // `as` saturates: Infinity is u64::MAX.
            inner: BaseBuilder::spilling_from(
                threshold as u64,
                Box::new(spill),
                start.unwrap_or(0.0) as u64,
            ),
        }
    }

    /// The next bytes of the current layer (base first).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsValue> {
        self.inner
            .push(chunk)
            .map_err(|e| err(format!("the stage's layers: {e}")))
    }

    /// The current layer's bytes are all pushed: an error when its stream is incomplete.
    #[wasm_bindgen(js_name = endLayer)]
    pub fn end_layer(&mut self) -> Result<(), JsValue> {
        self.inner
            .end_layer()
            .map_err(|e| err(format!("the stage's layers: {e}")))
    }

    /// The root of the layers ended (every large file's bytes handed to `onData`); the builder is used up.
    pub fn finish(self) -> Result<NinepBase, JsValue> {
        let inner = self
            .inner
            .finish()
            .map_err(|e| err(format!("the stage's layers: {e}")))?;
        Ok(NinepBase { inner })
    }

    /// The layers ended as a mount source ([`NinepSession::add_source_from`]); the builder is used up.
    #[wasm_bindgen(js_name = finishSource)]
    pub fn finish_source(self) -> Result<NinepSource, JsValue> {
        let inner = self
            .inner
            .finish_source()
            .map_err(|e| err(format!("the mount source's layers: {e}")))?;
        Ok(NinepSource { inner })
    }
}

/// A mount source's tree, streamed from its layers by a [`NinepBaseBuilder`] (its large files' bytes in the page's
/// scratch store, after the stage root's).
#[wasm_bindgen]
pub struct NinepSource {
    inner: Source,
}

/// Large files' bytes handed to the page this many at a time (the decompressor's pieces are smaller; one call per
/// MiB keeps the page's list of parts short).
const SPILL_CHUNK: usize = 1 << 20;

/// Large files' bytes gathered into a MiB, then handed to the page.
struct JsSpill {
    on_data: Function,
    buf: Vec<u8>,
}

impl JsSpill {
    fn hand_on(&mut self) -> Result<(), lw_layer::Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // A view of the buffer, valid during the call only: the page copies it out (into a Blob) before it
        // returns, so the bytes never go through the JS heap.
        let chunk = unsafe { Uint8Array::view(&self.buf) };
        let r = self.on_data.call1(&JsValue::NULL, &chunk);
        self.buf.clear();
        r.map(|_| ()).map_err(|e| {
            lw_layer::Error::Host(format!(
                "storing a large file's bytes: {}",
                e.as_string()
                    .or_else(|| js_sys::JSON::stringify(&e).ok().map(String::from))
                    .unwrap_or_default()
            ))
        })
    }
}

impl Spill for JsSpill {
    fn write(&mut self, mut chunk: &[u8]) -> Result<(), lw_layer::Error> {
        while !chunk.is_empty() {
            let n = (SPILL_CHUNK - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.buf.len() == SPILL_CHUNK {
                self.hand_on()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), lw_layer::Error> {
        self.hand_on()
    }
}

/// A [`Need`] as `{ino, off, len, whole}` for the page.
fn need_js(n: &Need) -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct N {
        ino: f64,
        off: f64,
        len: f64,
        whole: bool,
    }
    to_js(&N {
        ino: n.ino as f64,
        off: n.off as f64,
        len: n.len as f64,
        whole: n.whole,
    })
}

/// lw-archive's zstd decoder, linked into this module (a base layer may be zstd): the main module loads it on
/// demand, this one carries it, and lw-layer's `decoders` feature stays off so the main module's build links none.
struct Zstd(lw_archive::zstd::ZstdDecoder);

impl lw_layer::zstd_push::ZstdStream for Zstd {
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> std::io::Result<()> {
        self.0.push(input, out, limit)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.0.finish()
    }
}

fn install_zstd() {
    lw_layer::zstd_push::set_zstd_decoder(lw_layer::zstd_push::HostZstdDecoder {
        new: || Ok(Box::new(Zstd(lw_archive::zstd::ZstdDecoder::new()))),
    });
}

/// One step's file system.
#[wasm_bindgen]
pub struct NinepSession {
    inner: Session,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerOut {
    media_type: String,
    digest: String,
    diff_id: String,
    size: u64,
}

#[wasm_bindgen]
impl NinepSession {
    /// The stage root from `layers` (an array of layer blobs, base first); `now`: seconds since the epoch, for
    /// the times of the step's changes.
    #[wasm_bindgen(constructor)]
    pub fn new(layers: Array, now: f64) -> Result<NinepSession, JsValue> {
        install_zstd();
        let base = Base::from_readers(blobs(&layers))
            .map_err(|e| err(format!("the stage's layers: {e}")))?;
        Ok(NinepSession {
            inner: Session::from_base(&base, now as i64),
        })
    }

    /// A session over a copy of `base` (as `new` with the same layers and `now` would make it).
    #[wasm_bindgen(js_name = fromBase)]
    pub fn from_base(base: &NinepBase, now: f64) -> NinepSession {
        NinepSession {
            inner: Session::from_base(&base.inner, now as i64),
        }
    }

    /// Add a mount source for the guest to bind (a `RUN --mount=type=bind` source, a cache mount's seed): what is
    /// at `path` in the tree of `layers` (blobs, base first), as the hidden root entry `name`. Answers "dir",
    /// "file", or undefined when `path` is not there.
    #[wasm_bindgen(js_name = addSource)]
    pub fn add_source(
        &mut self,
        name: &str,
        layers: Array,
        path: &str,
    ) -> Result<Option<String>, JsValue> {
        let dir = self
            .inner
            .add_source(name, blobs(&layers), path)
            .map_err(|e| err(format!("the mount source's layers: {e}")))?;
        Ok(dir.map(|d| if d { "dir" } else { "file" }.to_string()))
    }

    /// [`NinepSession::add_source`] of a source already made from its layers as they streamed
    /// ([`NinepBaseBuilder::finish_source`]).
    #[wasm_bindgen(js_name = addSourceFrom)]
    pub fn add_source_from(
        &mut self,
        name: &str,
        source: &NinepSource,
        path: &str,
    ) -> Result<Option<String>, JsValue> {
        let dir = self
            .inner
            .add_source_from(name, &source.inner, path)
            .map_err(|e| err(format!("the mount source: {e}")))?;
        Ok(dir.map(|d| if d { "dir" } else { "file" }.to_string()))
    }

    /// Serve this session's tree on the connection `old` served until now (its fids and msize): the guest keeps
    /// the root mounted between steps.
    pub fn adopt(&mut self, old: &mut NinepSession) {
        self.inner.adopt(&mut old.inner);
    }

    /// Whether `path` in the stage root is a directory (no symlinks followed).
    #[wasm_bindgen(js_name = isDir)]
    pub fn is_dir(&self, path: &str) -> bool {
        let fs = &self.inner.server.fs;
        fs.resolve(path)
            .and_then(|i| fs.node(i))
            .is_some_and(|n| n.is_dir())
    }

    /// Answer one 9P request (a whole message, as v86's `handle9p` passes it). Empty when the answer needs bytes
    /// of a file kept outside (a [`NinepBase::spilled`] root): the page reads what [`NinepSession::need`] names,
    /// hands them in and calls this again with the same request.
    pub fn handle(&mut self, req: &[u8]) -> Vec<u8> {
        self.inner.handle(req)
    }

    /// What the last empty answer waits for: `{ino, off, len, whole}` (`len` bytes at `off` of the base's store;
    /// `whole`: the file's data, for [`NinepSession::materialize`], else for [`NinepSession::supply`]), or null.
    pub fn need(&self) -> Result<JsValue, JsValue> {
        self.inner.need().map_or(Ok(JsValue::NULL), |n| need_js(&n))
    }

    /// Bytes at `off` of the base's store, for reads (kept until the next).
    pub fn supply(&mut self, off: f64, bytes: Vec<u8>) {
        self.inner.supply(off as u64, bytes);
    }

    /// The whole data of the outside file `ino` (at `off` of the store), taken into memory before a change.
    pub fn materialize(&mut self, ino: f64, off: f64, bytes: Vec<u8>) -> Result<(), JsValue> {
        self.inner
            .materialize(ino as u64, off as u64, bytes)
            .map_err(err)
    }

    /// The outside files the step's layer writes, as `need()` objects: taken in before [`NinepSession::layer`].
    #[wasm_bindgen(js_name = layerNeeds)]
    pub fn layer_needs(&self) -> Result<Array, JsValue> {
        self.inner.layer_needs().iter().map(need_js).collect()
    }

    /// `[off, len]` in the base's store of the outside regular file at `path`, or undefined (in memory, or none).
    #[wasm_bindgen(js_name = externalOf)]
    pub fn external_of(&self, path: &str) -> Option<Vec<f64>> {
        let (off, len) = self.inner.server.fs.external_of(path)?;
        Some(vec![off as f64, len as f64])
    }

    /// The bytes of the regular file at `path` in the stage root (no symlinks followed), or undefined.
    #[wasm_bindgen(js_name = readFile)]
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        self.inner.server.fs.read_file(path).map(<[u8]>::to_vec)
    }

    /// docker's `diff` lines (`A /path`, `C /path`, `D /path`) for what changed since the session began: a
    /// container's writable layer, from the same change set RUN layers are written from.
    pub fn diff(&self) -> Vec<String> {
        self.inner.diff_lines()
    }

    /// The step's layer as `{mediaType, digest, diffId, size, bytes}` (gzip), or null when nothing changed.
    /// `epoch`: SOURCE_DATE_EPOCH (mtimes clamped to it), or undefined.
    pub fn layer(&mut self, epoch: Option<f64>) -> Result<JsValue, JsValue> {
        let Some((bytes, info)) = self
            .inner
            .layer(Compression::Gzip, epoch.map(|e| e as i64))
            .map_err(|e| err(format!("writing the step's layer: {e}")))?
        else {
            return Ok(JsValue::NULL);
        };
        let d = info.descriptor();
        let out = to_js(&LayerOut {
            media_type: d.media_type.clone(),
            digest: d.digest.to_string(),
            diff_id: info.diff_id.to_string(),
            size: d.size,
        })?;
        js_sys::Reflect::set(&out, &"bytes".into(), &Uint8Array::from(&bytes[..]))?;
        Ok(out)
    }
}
