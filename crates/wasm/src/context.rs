//! The tab's build context: files given as bytes are held in wasm memory; files given as `Blob`/`File` (when the
//! build streams, see `build.rs`) stay in the browser and are read a block at a time through `Context::fetch` while
//! the layer is written, so a context larger than the tab's memory builds. Their digests (the step's cache key) come
//! from WebCrypto over each file's bytes in JS memory, one file at a time, never through wasm memory.

use std::cell::RefCell;
use std::collections::BTreeMap;

use js_sys::{Function, Uint8Array};
use lw_engine::context::{Context, ContextEntry, Fetch, MemoryContext};
use lw_engine::Error;
use lw_oci::Digest;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Bytes read from a `Blob` at a time: the engine copies 256 KiB blocks, so one read serves four of them.
const BLOCK: u64 = 1 << 20;

/// The range of a Blob-backed file last read.
#[derive(Default)]
struct Block {
    path: String,
    off: u64,
    bytes: Vec<u8>,
}

/// A context of in-memory files and `Blob`s read on demand.
#[derive(Default)]
pub struct TabContext {
    mem: MemoryContext,
    /// Blob-backed files by normalized path: the Blob and its size (the placeholder in `mem` is empty).
    blobs: BTreeMap<String, (web_sys::Blob, u64)>,
    known: BTreeMap<String, Digest>,
    block: RefCell<Block>,
    /// A read started ahead: path, range and the promise of its bytes.
    ahead: RefCell<Option<(String, u64, u64, js_sys::Promise)>>,
    /// Blob-backed files' first bytes, or whole, read for a step ([`Context::hold`]: the heads of files ADD may
    /// unpack, and its archives), until released.
    held: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl TabContext {
    /// Add a file held in memory.
    pub fn insert_bytes(&mut self, path: &str, bytes: Vec<u8>) -> Result<String, Error> {
        self.mem.insert_file(path, bytes)?;
        let p = self.normalized(path)?;
        self.blobs.remove(&p);
        self.known.remove(&p);
        Ok(p)
    }

    /// Add a file read from `blob` when a step needs it.
    pub fn insert_blob(&mut self, path: &str, blob: web_sys::Blob) -> Result<String, Error> {
        self.mem.insert_file(path, Vec::new())?;
        let p = self.normalized(path)?;
        let size = blob.size() as u64;
        self.blobs.insert(p.clone(), (blob, size));
        self.known.remove(&p);
        Ok(p)
    }

    /// Apply `fileInfo`'s entry for `path`: a symlink to `symlink`, or an (empty) directory when `dir`, then `mode`
    /// (permission bits and setuid/setgid/sticky) on what is there. A mode for a path that is neither given nor
    /// made here is an error naming it.
    pub fn set_info(
        &mut self,
        path: &str,
        mode: Option<u32>,
        dir: bool,
        symlink: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(target) = symlink {
            let p = self.normalized(path)?;
            self.blobs.remove(&p);
            self.known.remove(&p);
            self.mem.insert_symlink(path, target)?;
        } else if dir {
            self.mem.insert_dir(path)?;
        }
        if let Some(m) = mode {
            let p = self.normalized(path)?;
            self.known.remove(&p);
            let e = self.mem.get_mut(path)?.ok_or(Error::NotFound { path: p })?;
            e.mode = m & 0o7777;
        }
        Ok(())
    }

    /// Record the sha256 of the file at (normalized) `path`, computed by WebCrypto.
    pub fn set_known_digest(&mut self, path: &str, d: Digest) {
        self.known.insert(path.to_string(), d);
    }

    pub fn has(&self, path: &str) -> bool {
        matches!(self.entry(path), Ok(Some(_)))
    }

    fn normalized(&self, path: &str) -> Result<String, Error> {
        Ok(self
            .mem
            .entry(path)?
            .map(|e| e.path)
            .unwrap_or_else(|| path.to_string()))
    }

    /// The Blob size for Blob-backed entries (their placeholder says 0).
    fn sized(&self, mut e: ContextEntry) -> ContextEntry {
        if let Some((_, size)) = self.blobs.get(&e.path) {
            e.size = *size;
        }
        e
    }

    fn not_at_hand(path: &str) -> Error {
        Error::Host(format!(
            "{path}: the tab reads this file from its Blob only while it writes a layer of it (COPY, ADD, a \
             RUN --mount=type=bind source) or before ADD unpacks it; here it was read otherwise (give it as \
             bytes: a Uint8Array or string)"
        ))
    }
}

impl Context for TabContext {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        Ok(self
            .mem
            .entries()?
            .into_iter()
            .map(|e| self.sized(e))
            .collect())
    }

    fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
        Ok(self.mem.entry(path)?.map(|e| self.sized(e)))
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let Some((_, size)) = self.blobs.get(path) else {
            return self.mem.read_at(path, offset, buf);
        };
        if let Some(bytes) = self.held.borrow().get(path) {
            if offset < bytes.len() as u64 || bytes.len() as u64 == *size {
                let rest = bytes.get(offset as usize..).unwrap_or_default();
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                return Ok(n);
            }
        }
        if offset >= *size {
            return Ok(0);
        }
        let b = self.block.borrow();
        let end = b.off + b.bytes.len() as u64;
        if b.path != path || offset < b.off || offset >= end {
            return Err(Self::not_at_hand(path));
        }
        let start = (offset - b.off) as usize;
        let n = buf.len().min(b.bytes.len() - start);
        buf[..n].copy_from_slice(&b.bytes[start..start + n]);
        Ok(n)
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        match self.blobs.get(path) {
            None => self.mem.read_file(path),
            Some((_, size)) => match self.held.borrow().get(path) {
                Some(bytes) if bytes.len() as u64 == *size => Ok(bytes.clone()),
                _ => Err(Self::not_at_hand(path)),
            },
        }
    }

    fn known_digest(&self, path: &str) -> Option<Digest> {
        self.known
            .get(path)
            .cloned()
            .or_else(|| self.mem.known_digest(path))
    }

    fn hold<'a>(&'a self, path: &'a str, len: u64) -> Option<Fetch<'a>> {
        let (blob, size) = self.blobs.get(path)?;
        let end = len.min(*size);
        if self
            .held
            .borrow()
            .get(path)
            .is_some_and(|b| b.len() as u64 >= end)
        {
            return None;
        }
        let blob = blob.clone();
        Some(Box::pin(async move {
            let promise = start_read(&blob, 0, end).map_err(|e| read_err(path, &e))?;
            let bytes = read_bytes(path, promise, 0, end).await?.to_vec();
            // A bzip2, xz or zstd archive needs the decoder module before ADD unpacks it (the page checks only
            // the files it holds in memory up front: reading every Blob's head costs a browser round trip each).
            crate::archive::need_decoder_for_archive(&bytes)
                .await
                .map_err(|e| Error::Host(format!("{path}: {}", js_text(&e))))?;
            self.held.borrow_mut().insert(path.to_string(), bytes);
            Ok(())
        }))
    }

    fn release(&self) {
        self.held.borrow_mut().clear();
    }

    fn reads_async(&self) -> bool {
        !self.blobs.is_empty()
    }

    fn fetch<'a>(&'a self, path: &'a str, offset: u64, len: usize) -> Option<Fetch<'a>> {
        let (blob, size) = self.blobs.get(path)?;
        if self
            .held
            .borrow()
            .get(path)
            .is_some_and(|b| b.len() as u64 == *size)
        {
            return None;
        }
        if offset >= *size {
            return None;
        }
        {
            let b = self.block.borrow();
            let end = b.off + b.bytes.len() as u64;
            let want_end = (offset + len as u64).min(*size);
            if b.path == path && offset >= b.off && want_end <= end {
                return None;
            }
        }
        let (blob, size) = (blob.clone(), *size);
        let end = (offset + (len as u64).max(BLOCK)).min(size);
        Some(Box::pin(async move {
            // The read started ahead for this range, if the guess was right; else one now.
            let ahead = self.ahead.borrow_mut().take();
            let pending = match ahead {
                Some((p, off, stop, promise)) if p == path && off == offset && stop >= end => {
                    Ok((promise, stop))
                }
                _ => start_read(&blob, offset, end).map(|p| (p, end)),
            };
            let (promise, end) = pending.map_err(|e| read_err(path, &e))?;
            // Start reading what comes next (the rest of this file, else the next file in path order), so the
            // browser's file read overlaps the layer's tar, hashing and compression of this block.
            self.read_ahead(path, end, size);
            let got = read_bytes(path, promise, offset, end).await?;
            let mut b = self.block.borrow_mut();
            b.path.clear();
            b.path.push_str(path);
            b.off = offset;
            b.bytes.resize(got.length() as usize, 0);
            got.copy_to(&mut b.bytes);
            Ok(())
        }))
    }
}

impl TabContext {
    /// Start reading the block after `path`'s byte `end` (the file is `size` bytes): the next block of the same
    /// file, or the first of the next non-empty Blob-backed file. A wrong guess costs one unused read.
    fn read_ahead(&self, path: &str, end: u64, size: u64) {
        use std::ops::Bound::{Excluded, Unbounded};
        let next = if end < size {
            self.blobs
                .get(path)
                .map(|(b, _)| (path.to_string(), b, end, size))
        } else {
            self.blobs
                .range::<str, _>((Excluded(path), Unbounded))
                .find(|(_, (_, s))| *s > 0)
                .map(|(p, (b, s))| (p.clone(), b, 0, *s))
        };
        let Some((p, blob, off, size)) = next else {
            return;
        };
        let stop = (off + BLOCK).min(size);
        if let Ok(promise) = start_read(blob, off, stop) {
            *self.ahead.borrow_mut() = Some((p, off, stop, promise));
        }
    }
}

fn read_err(path: &str, e: &JsValue) -> Error {
    Error::Host(format!("{path}: reading its Blob: {}", js_text(e)))
}

/// What `promise` (a read of `[offset, end)` of `path`'s Blob) gave, checked to be that many bytes.
async fn read_bytes(
    path: &str,
    promise: js_sys::Promise,
    offset: u64,
    end: u64,
) -> Result<Uint8Array, Error> {
    let buf = JsFuture::from(promise)
        .await
        .map_err(|e| read_err(path, &e))?;
    let got = Uint8Array::new(&buf);
    if got.length() as u64 != end - offset {
        return Err(Error::Host(format!(
            "{path}: its Blob gave {} bytes at {offset}, not {} (was the file changed?)",
            got.length(),
            end - offset
        )));
    }
    Ok(got)
}

/// Start reading `[start, end)` of `blob`: the promise of its `ArrayBuffer`. A whole Blob is read without slicing it:
/// Chromium's `Blob.slice` costs about a millisecond (measured: 1.2 s of the page's 6 s in a rebuild reading 119 MB
/// of 776 files), and most context files fit in one block.
fn start_read(blob: &web_sys::Blob, start: u64, end: u64) -> Result<js_sys::Promise, JsValue> {
    if start == 0 && end as f64 == blob.size() {
        return Ok(blob.array_buffer());
    }
    Ok(blob
        .slice_with_f64_and_f64(start as f64, end as f64)?
        .array_buffer())
}

pub fn js_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// The sha256 of a Blob's bytes by WebCrypto (the bytes go to JS memory, not to wasm); None without `crypto.subtle`.
pub async fn blob_sha256(blob: &web_sys::Blob) -> Result<Option<Digest>, JsValue> {
    let Some((subtle, digest)) = subtle_digest() else {
        return Ok(None);
    };
    let buf = JsFuture::from(blob.array_buffer()).await?;
    let promise: js_sys::Promise = digest
        .call2(&subtle, &JsValue::from_str("SHA-256"), &buf)?
        .dyn_into()?;
    let hash = Uint8Array::new(&JsFuture::from(promise).await?);
    let mut h = [0u8; 32];
    if hash.length() != 32 {
        return Ok(None);
    }
    hash.copy_to(&mut h);
    Ok(Some(Digest::from_sha256_bytes(&h)))
}

/// `crypto.subtle` and its `digest` function, when the page has them.
pub fn subtle_digest() -> Option<(JsValue, Function)> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    let subtle = js_sys::Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    let digest: Function = js_sys::Reflect::get(&subtle, &JsValue::from_str("digest"))
        .ok()?
        .dyn_into()
        .ok()?;
    Some((subtle, digest))
}
