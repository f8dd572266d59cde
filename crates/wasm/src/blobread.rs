//! Reading the store's blobs back, in memory or in browser storage alike, as a stream of chunks. A blob read from
//! browser storage (OPFS or IndexedDB, `spill.rs`) is hashed as it streams and its last bytes are handed out only
//! once the digest matched, so a stored file changed outside the tab is refused, naming the digest, before any
//! caller (readFile, layerEntries, push, export, RUN's upload, a build step's pre-step) has used all of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use lw_engine::host::MemoryBlobs;
use lw_engine::Error;
use lw_oci::{Digest, DigestHasher};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::spill::{stored_file, Spilled};

/// Bytes read from browser storage at a time.
pub const CHUNK: usize = 1 << 20;

/// Where a blob's bytes are.
enum Held {
    /// In wasm memory (checked against its digest when it entered the store).
    Memory(Arc<Vec<u8>>),
    /// In browser storage: a disk-backed `Blob`, checked as it is read.
    Stored(web_sys::Blob),
}

/// One blob being read from the start, chunk by chunk (or by ranges in order, as a push sends it).
pub struct BlobRead {
    digest: Digest,
    size: u64,
    held: Held,
    /// Bytes hashed so far (stored blobs), or handed out (memory).
    pos: u64,
    hasher: DigestHasher,
}

impl BlobRead {
    /// Blob `d` of the tab's store, wherever it is kept.
    pub async fn open(d: &Digest) -> Result<BlobRead, Error> {
        let (blobs, spilled) = crate::store::with(|s| (s.blobs.clone(), s.spilled.clone()));
        BlobRead::open_in(&blobs, &spilled, d).await
    }

    /// Blob `d` of `blobs` or, when it is not in memory, of browser storage.
    pub async fn open_in(
        blobs: &MemoryBlobs,
        spilled: &Spilled,
        d: &Digest,
    ) -> Result<BlobRead, Error> {
        let held = match blobs.get(d) {
            Some(b) => Held::Memory(b),
            None => {
                let size =
                    spilled.borrow().get(d).copied().ok_or_else(|| {
                        Error::Host(format!("blob {d} is not in the tab's store"))
                    })?;
                let blob = stored_file(d).await?;
                if blob.size() as u64 != size {
                    return Err(Error::Host(format!(
                        "blob {d} in browser storage is {} bytes, not {size}",
                        blob.size() as u64
                    )));
                }
                Held::Stored(blob)
            }
        };
        let size = match &held {
            Held::Memory(b) => b.len() as u64,
            Held::Stored(b) => b.size() as u64,
        };
        Ok(BlobRead {
            hasher: DigestHasher::new(d.algorithm()),
            digest: d.clone(),
            size,
            held,
            pos: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the bytes come from browser storage.
    pub fn is_stored(&self) -> bool {
        matches!(self.held, Held::Stored(_))
    }

    /// The next chunk (at most [`CHUNK`] bytes), or `None` after the last one.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if self.pos >= self.size {
            return Ok(None);
        }
        let len = (self.size - self.pos).min(CHUNK as u64);
        self.range(self.pos, len).await.map(Some)
    }

    /// Bytes `[off, off + len)`. Ranges of a stored blob are checked in order: a range that starts before the
    /// bytes hashed so far (an upload restarted) hashes again from the start, one that starts after them hashes the
    /// gap first; the range holding the last byte is returned only when the whole blob matched its digest.
    pub async fn range(&mut self, off: u64, len: u64) -> Result<Vec<u8>, Error> {
        let end = off
            .checked_add(len)
            .filter(|e| *e <= self.size)
            .ok_or_else(|| {
                Error::Host(format!(
                    "blob {} is {} bytes: no range {off}+{len}",
                    self.digest, self.size
                ))
            })?;
        let blob = match &self.held {
            Held::Memory(b) => {
                self.pos = end;
                return Ok(b[off as usize..end as usize].to_vec());
            }
            Held::Stored(b) => b.clone(),
        };
        if off < self.pos {
            self.hasher = DigestHasher::new(self.digest.algorithm());
            self.pos = 0;
        }
        while self.pos < off {
            let n = (off - self.pos).min(CHUNK as u64);
            let gap = read_slice(&blob, &self.digest, self.pos, self.pos + n).await?;
            self.hasher.update(&gap);
            self.pos += n;
        }
        let bytes = read_slice(&blob, &self.digest, off, end).await?;
        self.hasher.update(&bytes);
        self.pos = end;
        if end == self.size {
            self.check()?;
        }
        Ok(bytes)
    }

    /// The whole blob's hash against its digest (once every byte went through the hasher).
    fn check(&mut self) -> Result<(), Error> {
        let h = std::mem::replace(&mut self.hasher, DigestHasher::new(self.digest.algorithm()));
        let actual = h.finish();
        if actual != self.digest {
            return Err(Error::Host(format!(
                "blob {} in browser storage does not match its digest (it hashes to {actual})",
                self.digest
            )));
        }
        Ok(())
    }

    /// Read every byte (checking a stored blob's digest), handing nothing out: what `exportTarball` does for a
    /// stored blob it splices into the archive as it is.
    pub async fn verify(mut self) -> Result<(), Error> {
        if !self.is_stored() {
            return Ok(());
        }
        while self.next().await?.is_some() {}
        Ok(())
    }
}

/// Copy the first `len` bytes of blob `d` into `out` (a layer resumed at a checkpoint), a chunk at a time. From
/// browser storage they are hashed as they stream and checked against `state`, the SHA-256 state the layer writer
/// kept at that offset when it wrote the blob (the checkpoint's), so a stored file changed since fails here, naming
/// the digest, and no new layer is built on it. Only the start is read, not the whole blob.
pub async fn copy_start(
    blobs: &MemoryBlobs,
    spilled: &Spilled,
    d: &Digest,
    len: u64,
    state: &lw_layer::midstate::Sha256Mid,
    out: &mut dyn std::io::Write,
) -> Result<(), Error> {
    let r = BlobRead::open_in(blobs, spilled, d).await?;
    let short = || {
        Error::Host(format!(
            "blob {d} is shorter than the {len} bytes a checkpoint names"
        ))
    };
    if len > r.size {
        return Err(short());
    }
    let wrote = |e: std::io::Error| Error::Host(format!("copying the start of blob {d}: {e}"));
    let blob = match &r.held {
        Held::Memory(b) => return out.write_all(&b[..len as usize]).map_err(wrote),
        Held::Stored(b) => b,
    };
    let mut h = lw_layer::midstate::Sha256Mid::new();
    let mut at = 0u64;
    // The next chunk is asked for before this one is hashed and written, so reading overlaps the work.
    let slice = |at: u64| read_slice(blob, d, at, (at + CHUNK as u64).min(len));
    let mut next = (at < len).then(|| Box::pin(slice(at)));
    while let Some(f) = next.take() {
        let bytes = f.await?;
        let end = (at + CHUNK as u64).min(len);
        if bytes.len() as u64 != end - at {
            return Err(short());
        }
        at = end;
        next = (at < len).then(|| Box::pin(slice(at)));
        h.update(&bytes);
        out.write_all(&bytes).map_err(wrote)?;
    }
    if &h != state {
        return Err(Error::Host(format!(
            "blob {d} in browser storage does not match its digest (its first {len} bytes changed)"
        )));
    }
    Ok(())
}

/// Bytes `[start, end)` of a stored blob's `Blob`.
async fn read_slice(
    blob: &web_sys::Blob,
    d: &Digest,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, Error> {
    let fail = |e: wasm_bindgen::JsValue| {
        Error::Host(format!(
            "reading blob {d} from browser storage: {}",
            crate::context::js_text(&e)
        ))
    };
    let part = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(fail)?;
    let buf: js_sys::ArrayBuffer = JsFuture::from(part.array_buffer())
        .await
        .map_err(fail)?
        .unchecked_into();
    // A short read (a file cut since) fails the digest check like any other change.
    let a = js_sys::Uint8Array::new(&buf);
    Ok(a.to_vec())
}

/// The blob bodies of a registry operation (a push's uploads): ranges of the store's blobs, each blob read through
/// one [`BlobRead`], so a stored one is checked as its chunks go out and its last chunk is not sent unless it
/// matched. `Bodies::default()` has no blobs (pulls and inspection send none).
#[derive(Default)]
pub struct Bodies {
    blobs: MemoryBlobs,
    spilled: Spilled,
    open: BTreeMap<Digest, BlobRead>,
}

impl Bodies {
    /// The tab's store.
    pub fn of_store() -> Bodies {
        let (blobs, spilled) = crate::store::with(|s| (s.blobs.clone(), s.spilled.clone()));
        Bodies {
            blobs,
            spilled,
            open: BTreeMap::new(),
        }
    }

    /// Bytes `[off, off + len)` of blob `d`.
    pub async fn range(&mut self, d: &Digest, off: u64, len: u64) -> Result<Vec<u8>, Error> {
        if !self.open.contains_key(d) {
            let b = BlobRead::open_in(&self.blobs, &self.spilled, d).await?;
            self.open.insert(d.clone(), b);
        }
        let b = self.open.get_mut(d).expect("just opened");
        b.range(off, len).await
    }
}

/// A scan error on layer `d`.
pub fn layer_err(d: &Digest, e: impl std::fmt::Display) -> Error {
    Error::Host(format!("layer {d}: {e}"))
}

/// Push every chunk of `blob` through `scan`. When the scan fails on a stored blob, the rest is still hashed: a blob
/// changed in storage is reported as such (naming its digest), not as the damage the scanner met first.
pub async fn scan_all(
    mut blob: BlobRead,
    scan: &mut lw_layer::push::LayerScan<'_>,
) -> Result<(), Error> {
    let mut first = true;
    while let Some(c) = blob.next().await? {
        if std::mem::take(&mut first) {
            // A zstd layer loads the decoder module first (its first bytes say so).
            crate::archive::need_zstd_for(&c)
                .await
                .map_err(|e| layer_err(&blob.digest, crate::js::message(&e)))?;
        }
        if let Err(e) = scan.push(&c) {
            let d = blob.digest.clone();
            blob.verify().await?;
            return Err(layer_err(&d, e));
        }
    }
    Ok(())
}

/// Whether the clean relative `path` is one of `want` or under one (`""` wants every path).
fn wanted(want: &[String], path: &str) -> bool {
    want.iter().any(|w| {
        w.is_empty()
            || path
                .strip_prefix(w.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Files of one extract are held in memory as a copy from another stage holds them: at most this each.
const MAX_EXTRACT_FILE: u64 = lw_engine::engine::rootfs::MAX_FROM_FILE;

/// The pre-step's read of layer `d` (`BlobStore::prepare_layers`): its entries as an uncompressed tar holding every
/// header (so the layer's paths, whiteouts and metadata are all there) but only the data of the files at or under
/// `want` (the others say size 0), made as the layer streams from `blobs`/`spilled` through the scanner, its
/// digest checked. Memory: the headers and the wanted files, never the layer. A wanted hard link whose target's
/// data was not kept is refused rather than read as empty.
pub async fn extract_layer(
    blobs: &MemoryBlobs,
    spilled: &Spilled,
    d: &Digest,
    want: &[String],
) -> Result<Vec<u8>, Error> {
    use lw_layer::tar::{TarWriter, WriteOptions};
    use lw_layer::{Entry, EntryKind};
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    let fail = |e: String| layer_err(d, e);
    // Each entry with its data when wanted (the data arrives after `on_entry` saw the header).
    let entries: RefCell<Vec<(Entry, Option<Vec<u8>>)>> = RefCell::new(Vec::new());
    let kept: RefCell<BTreeSet<String>> = RefCell::new(BTreeSet::new());
    let blob = BlobRead::open_in(blobs, spilled, d).await?;
    {
        let mut scan = lw_layer::push::LayerScan::with_tap(
            Box::new(|mut e: Entry| {
                let keep = e.kind == EntryKind::File && wanted(want, &e.path);
                if let EntryKind::Hardlink(t) = &e.kind {
                    if wanted(want, &e.path) && !kept.borrow().contains(t) && !wanted(want, t) {
                        return Err(format!(
                            "{} is a hard link to {t}, outside the paths read from browser storage for this step",
                            e.path
                        ));
                    }
                }
                if keep {
                    kept.borrow_mut().insert(e.path.clone());
                } else if e.kind == EntryKind::File {
                    e.size = 0;
                }
                entries.borrow_mut().push((e, keep.then(Vec::new)));
                Ok(())
            }),
            lw_layer::push::Tap {
                want: Box::new(|e: &Entry| e.kind == EntryKind::File && wanted(want, &e.path)),
                data: Box::new(|b: &[u8], _| {
                    let mut es = entries.borrow_mut();
                    let Some((_, Some(data))) = es.last_mut() else {
                        return Err("file data before its header".into());
                    };
                    if (data.len() + b.len()) as u64 > MAX_EXTRACT_FILE {
                        return Err(format!(
                            "a file is larger than {} MiB",
                            MAX_EXTRACT_FILE >> 20
                        ));
                    }
                    data.extend_from_slice(b);
                    Ok(())
                }),
            },
            false,
        );
        scan_all(blob, &mut scan).await?;
        scan.finish().map_err(|e| fail(e.to_string()))?;
    }
    let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
    for (e, data) in entries.into_inner() {
        let data = data.unwrap_or_default();
        w.append(&e, &mut &data[..])
            .map_err(|e| fail(e.to_string()))?;
    }
    w.finish().map_err(|e| fail(e.to_string()))
}

/// `io.openBlob(digest)` for RUN executors: a Promise of `{size, next()}`, `next()` (called once the last one
/// resolved) resolving to the blob's next chunk (a `Uint8Array` of at most 1 MiB) or `null` after the last; a stored
/// blob's last chunk comes only once its digest matched (else `next()` rejects naming it). Exported as `openBlob` for
/// the page's own readers of layers (`runContainer` reads an image's layers through the VM's one path with it).
#[wasm_bindgen::prelude::wasm_bindgen(js_name = openBlob)]
pub fn open_js(digest: String) -> js_sys::Promise {
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    wasm_bindgen_futures::future_to_promise(async move {
        let d = Digest::parse(&digest).map_err(crate::js::err)?;
        let r = BlobRead::open(&d).await.map_err(crate::js::err)?;
        let size = r.size();
        // The reader is out of `state` while a next() is pending (callers wait for each) and after the end.
        let state = Rc::new(RefCell::new(Some(r)));
        let next = Closure::<dyn FnMut() -> js_sys::Promise>::new(move || {
            let state = state.clone();
            wasm_bindgen_futures::future_to_promise(async move {
                let taken = state.borrow_mut().take();
                let Some(mut r) = taken else {
                    return Ok(JsValue::NULL);
                };
                let c = r.next().await.map_err(crate::js::err)?;
                let Some(c) = c else {
                    return Ok(JsValue::NULL);
                };
                *state.borrow_mut() = Some(r);
                Ok(js_sys::Uint8Array::from(&c[..]).into())
            })
        });
        let obj = js_sys::Object::new();
        js_sys::Reflect::set(&obj, &"size".into(), &JsValue::from_f64(size as f64))?;
        js_sys::Reflect::set(&obj, &"next".into(), &next.into_js_value())?;
        Ok(obj.into())
    })
}
