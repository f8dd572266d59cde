//! Large blobs in browser storage. A blob a build writes stays in wasm memory while it is small; once it passes
//! [`SPILL_AT`] it streams out, 1 MiB at a time, to the page's blob storage (`js/storage.js`: OPFS where the
//! browser has it, IndexedDB otherwise), and the tab's store keeps only its digest and size. `exportTarball`
//! splices the stored file into the archive `Blob` (no byte of it passes through wasm memory), and a layer listing
//! streams it through the scanner.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::rc::Rc;

use js_sys::{Array, Function, Uint8Array};
use lw_engine::archive::ArchiveOut;
use lw_engine::host::{BlobSink, MemoryBlobs};
use lw_engine::Error;
use lw_oci::Digest;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::context::js_text;

/// A blob larger than this goes to browser storage (smaller ones, every document and most layers, stay in memory).
pub const SPILL_AT: usize = 16 << 20;
/// Bytes per write to browser storage.
const CHUNK: usize = 1 << 20;

/// Digests of the blobs kept in browser storage, with their sizes.
pub type Spilled = Rc<RefCell<BTreeMap<Digest, u64>>>;

thread_local! {
    /// The page's blob storage object (`setBlobStorage`), when it gave one.
    static STORAGE: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// `setBlobStorage(storage)`: the object large blobs go to: `create() → id`, `append(id, Uint8Array)`,
/// `commit(id, digest)`, `abort(id)` (each returns at once; the storage queues the writes), `blob(digest) → Blob`
/// for a committed one, and `file(digest) → Promise<Blob>`, its bytes as stored now (every read-back
/// uses it, see `blobread.rs`). `null` keeps every blob in memory.
#[wasm_bindgen(js_name = setBlobStorage)]
pub fn set_blob_storage(storage: JsValue) {
    let s = (!storage.is_undefined() && !storage.is_null()).then_some(storage);
    STORAGE.with(|c| *c.borrow_mut() = s);
}

fn storage() -> Option<JsValue> {
    STORAGE.with(|c| c.borrow().clone())
}

fn call(storage: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, Error> {
    let f: Function = js_sys::Reflect::get(storage, &JsValue::from_str(method))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| Error::Host(format!("the blob storage has no {method}()")))?;
    let args: Array = args.iter().collect();
    f.apply(storage, &args)
        .map_err(|e| Error::Host(format!("blob storage {method}: {}", js_text(&e))))
}

/// A new blob: in memory until it passes [`SPILL_AT`], then streamed to browser storage.
pub struct SpillSink {
    buf: Vec<u8>,
    /// The storage and this blob's id there, once it spilled.
    out: Option<(JsValue, JsValue)>,
    written: u64,
    memory: MemoryBlobs,
    spilled: Spilled,
}

impl SpillSink {
    /// A sink into `memory`, spilling to the page's storage when there is one.
    pub fn create(memory: &MemoryBlobs, spilled: &Spilled) -> Result<Box<dyn BlobSink>, Error> {
        if storage().is_none() {
            return lw_engine::host::BlobStore::create(&mut memory.clone());
        }
        Ok(Box::new(SpillSink {
            buf: Vec::new(),
            out: None,
            written: 0,
            memory: memory.clone(),
            spilled: spilled.clone(),
        }))
    }

    /// A new blob in browser storage starting with the first `len` bytes of stored blob `d`, copied by the browser
    /// once WebCrypto found them to hash as `state` finishes (`createFrom` in `js/storage.js`): none of it passes
    /// through wasm memory. None when `d` is not in storage or the storage cannot (no WebCrypto, a start past
    /// 256 MiB): `blobread::copy_start` copies it then.
    pub async fn resumed(
        memory: &MemoryBlobs,
        spilled: &Spilled,
        d: &Digest,
        len: u64,
        state: &lw_layer::midstate::Sha256Mid,
    ) -> Result<Option<SpillSink>, Error> {
        let Some(s) = storage() else {
            return Ok(None);
        };
        let can = js_sys::Reflect::get(&s, &JsValue::from_str("createFrom"))
            .is_ok_and(|f| f.is_function());
        if !can
            || state.len() != len
            || memory.get(d).is_some()
            || !spilled.borrow().contains_key(d)
        {
            return Ok(None);
        }
        let want = state.finish();
        let hex = want.as_str().trim_start_matches("sha256:");
        let args = [d.as_str().into(), (len as f64).into(), hex.into()];
        let p = js_sys::Promise::resolve(&call(&s, "createFrom", &args)?);
        let id = wasm_bindgen_futures::JsFuture::from(p)
            .await
            .map_err(|e| Error::Host(js_text(&e)))?;
        if id.is_null() {
            return Ok(None);
        }
        Ok(Some(SpillSink {
            buf: Vec::new(),
            out: Some((s, id)),
            written: len,
            memory: memory.clone(),
            spilled: spilled.clone(),
        }))
    }

    /// Send what the buffer holds, in chunks of [`CHUNK`], to storage.
    fn send(&mut self) -> io::Result<()> {
        let Some((s, id)) = &self.out else {
            return Ok(());
        };
        for c in self.buf.chunks(CHUNK) {
            call(s, "append", &[id.clone(), Uint8Array::from(c).into()])
                .map_err(io::Error::other)?;
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        // A spilled blob's buffer holds a chunk at a time from now on (a pull or load keeps its sinks until the end).
        self.buf.shrink_to(2 * CHUNK);
        Ok(())
    }
}

impl Write for SpillSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        // Spill before the buffer passes the threshold: growing it past (doubling to 32 MiB while the old 16 MiB is
        // copied) would hold 48 MiB at once.
        if self.out.is_none() && self.buf.len() + b.len() > SPILL_AT {
            let s = storage().ok_or_else(|| io::Error::other("the blob storage went away"))?;
            let id = call(&s, "create", &[]).map_err(io::Error::other)?;
            self.out = Some((s, id));
        }
        self.buf.extend_from_slice(b);
        if self.out.is_some() && self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobSink for SpillSink {
    fn commit(mut self: Box<Self>, digest: &Digest) -> Result<(), Error> {
        if self.out.is_none() {
            digest.check("new blob", &self.buf)?;
            self.memory
                .insert(digest.clone(), std::mem::take(&mut self.buf));
            return Ok(());
        }
        self.send().map_err(|e| Error::Host(e.to_string()))?;
        // The layer writer hashed exactly the bytes it wrote here, so the digest is not computed a second time
        // over the whole blob; the storage names the file by it once its writes are done.
        let (s, id) = self.out.take().expect("spilled");
        call(&s, "commit", &[id, JsValue::from_str(digest.as_str())])?;
        self.spilled
            .borrow_mut()
            .insert(digest.clone(), self.written);
        Ok(())
    }
}

impl Drop for SpillSink {
    fn drop(&mut self) {
        if let Some((s, id)) = self.out.take() {
            let _ = call(&s, "abort", &[id]);
        }
    }
}

/// The stored `Blob` of a spilled blob.
pub fn stored_blob(d: &Digest) -> Result<web_sys::Blob, Error> {
    let s = storage()
        .ok_or_else(|| Error::Host(format!("blob {d} is in browser storage, which is gone")))?;
    call(&s, "blob", &[JsValue::from_str(d.as_str())])?
        .dyn_into()
        .map_err(|_| Error::Host(format!("blob {d} is missing from browser storage")))
}

/// The stored bytes of a spilled blob as the storage holds them now (`file(digest)`: a fresh `File` from OPFS,
/// not the handle taken when it was written, so a file changed since is read as it is and fails its digest).
pub async fn stored_file(d: &Digest) -> Result<web_sys::Blob, Error> {
    let s = storage()
        .ok_or_else(|| Error::Host(format!("blob {d} is in browser storage, which is gone")))?;
    let p = call(&s, "file", &[JsValue::from_str(d.as_str())])?;
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&p))
        .await
        .map_err(|e| Error::Host(format!("blob {d}: browser storage: {}", js_text(&e))))?
        .dyn_into()
        .map_err(|_| Error::Host(format!("blob {d} is missing from browser storage")))
}

/// An archive `Blob` being made of 1 MiB parts, with stored blobs spliced in as they are.
pub struct ExportParts {
    parts: Array,
    buf: Vec<u8>,
    spilled: BTreeMap<Digest, u64>,
    /// The stored blobs spliced in, in order.
    pub spliced: Vec<Digest>,
}

impl ExportParts {
    pub fn new(spilled: BTreeMap<Digest, u64>) -> ExportParts {
        ExportParts {
            parts: Array::new(),
            buf: Vec::with_capacity(CHUNK),
            spilled,
            spliced: Vec::new(),
        }
    }

    fn flush_part(&mut self) {
        if !self.buf.is_empty() {
            self.parts.push(&Uint8Array::from(&self.buf[..]));
            self.buf.clear();
        }
    }

    pub fn into_blob(mut self, mime: &str) -> Result<web_sys::Blob, JsValue> {
        self.flush_part();
        let opts = web_sys::BlobPropertyBag::new();
        opts.set_type(mime);
        web_sys::Blob::new_with_blob_sequence_and_options(&self.parts, &opts)
    }
}

impl Write for ExportParts {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == CHUNK {
            self.flush_part();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ArchiveOut for ExportParts {
    fn splice(&mut self, d: &Digest, size: u64) -> Result<bool, Error> {
        if self.spilled.get(d) != Some(&size) {
            return Ok(false);
        }
        let blob = stored_blob(d)?;
        if blob.size() as u64 != size {
            return Err(Error::Host(format!(
                "blob {d} in browser storage is {} bytes, not {size}",
                blob.size()
            )));
        }
        self.flush_part();
        self.parts.push(&blob);
        self.spliced.push(d.clone());
        Ok(true)
    }
}
