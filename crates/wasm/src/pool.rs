//! Gzip members compressed off the tab's main thread: the page's `compressMember(bytes, level) => Promise<Uint8Array>`
//! (the JS API runs it on Web Workers, each with its own instance of this module) behind lw-layer's `MemberPool`;
//! and `gzipMember`, the function each worker calls, with the member cache's key and frame (`memberKey`,
//! `memberFrame`, `memberUnframe`: a worker keeps the members it makes in browser storage and reuses them).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::{Function, Promise, Uint8Array};
use lw_engine::host::{BlobSink, BlobStore, MemoryBlobs, SinkFuture};
use lw_engine::Error;
use lw_layer::midstate::Sha256Mid;
use lw_layer::pgzip::{HashStates, MemberPool, RemoteHash};
use lw_oci::{Descriptor, Digest};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::spill::{SpillSink, Spilled};

/// One gzip member of `data`, exactly as a layer written in this tab or natively would hold it.
#[wasm_bindgen(js_name = gzipMember)]
pub fn gzip_member(data: &[u8], level: u32) -> Result<Vec<u8>, JsValue> {
    if !(1..=9).contains(&level) {
        return Err(crate::js::err("gzipMember: level must be 1 to 9"));
    }
    let mut out = Vec::new();
    lw_layer::deflate::gzip_member(data, level, &mut out).map_err(crate::js::err)?;
    Ok(out)
}

/// The key a gzip member of `data` is cached under (lw-layer's, as the native store's `members/` names them): hex.
#[wasm_bindgen(js_name = memberKey)]
pub fn member_key(data: &[u8], level: u32) -> String {
    lw_layer::pgzip::member_key(lw_layer::pgzip::Codec::Gzip, data, level)
        .encoded()
        .to_string()
}

/// A member as the member cache stores it (lw-layer's frame: CRC-32 and length, then the bytes).
#[wasm_bindgen(js_name = memberFrame)]
pub fn member_frame(member: &[u8]) -> Vec<u8> {
    lw_layer::pgzip::frame_member(member)
}

/// The member a cached file holds, or undefined when it is damaged (a torn write): it is then compressed again.
#[wasm_bindgen(js_name = memberUnframe)]
pub fn member_unframe(framed: Vec<u8>) -> Option<Vec<u8>> {
    lw_layer::pgzip::unframe_member(framed)
}

/// Answers that came back, and the task waiting for one.
#[derive(Default)]
struct Done {
    members: VecDeque<(u64, io::Result<Vec<u8>>)>,
    waker: Option<Waker>,
}

/// A `MemberPool` over the page's `compressMember` callback, hashing the layer's streams through its `hashStream`
/// when it has one.
pub struct JsPool {
    compress: Function,
    hash: Option<Function>,
    done: Rc<RefCell<Done>>,
    capacity: usize,
}

impl JsPool {
    pub fn new(compress: Function, capacity: usize, hash: Option<Function>) -> JsPool {
        JsPool {
            compress,
            hash,
            done: Rc::default(),
            capacity,
        }
    }
}

fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

impl MemberPool for JsPool {
    fn submit(&mut self, index: u64, data: Vec<u8>, level: u32) -> io::Result<()> {
        let bytes = Uint8Array::from(&data[..]);
        drop(data);
        let answer = self
            .compress
            .call2(&JsValue::NULL, &bytes, &JsValue::from(level))
            .map_err(|e| io::Error::other(format!("compressMember threw: {}", js_message(&e))))?;
        let promise = Promise::resolve(&answer);
        let done = self.done.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let made = match JsFuture::from(promise).await {
                Ok(v) => v.dyn_into::<Uint8Array>().map(|a| a.to_vec()).map_err(|_| {
                    io::Error::other("compressMember did not resolve to a Uint8Array")
                }),
                Err(e) => Err(io::Error::other(format!(
                    "compressMember failed: {}",
                    js_message(&e)
                ))),
            };
            let mut d = done.borrow_mut();
            d.members.push_back((index, made));
            if let Some(w) = d.waker.take() {
                w.wake();
            }
        });
        Ok(())
    }

    fn take(&mut self) -> Option<(u64, io::Result<Vec<u8>>)> {
        self.done.borrow_mut().members.pop_front()
    }

    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(Ready(self.done.clone()))
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn stream_hash(&mut self, from: &Sha256Mid) -> Option<Box<dyn RemoteHash>> {
        let state = Uint8Array::from(&from.to_bytes()[..]);
        // No session (the worker could not start): the writer hashes on this thread.
        let session = self.hash.as_ref()?.call1(&JsValue::NULL, &state).ok()?;
        (!session.is_null() && !session.is_undefined()).then(|| {
            Box::new(JsStreamHash {
                session,
                waiting: None,
                finished: false,
            }) as Box<dyn RemoteHash>
        })
    }
}

/// A layer stream hashed on the page's hash worker: a session of js/blobhashers.js (`push`, `mark`, `finish`,
/// `close`), closed when dropped unfinished.
struct JsStreamHash {
    session: JsValue,
    /// The Promise the last `push` answered: the worker has too many bytes queued until it resolves.
    waiting: Option<Promise>,
    finished: bool,
}

/// A failure the hash worker reported (a rejected Promise or a throwing call), as an I/O error.
fn hash_worker_error(e: JsValue) -> io::Error {
    io::Error::other(format!("the hash worker: {}", js_message(&e)))
}

impl JsStreamHash {
    fn call(&self, name: &str, args: &[JsValue]) -> io::Result<JsValue> {
        let f: Function = js_sys::Reflect::get(&self.session, &JsValue::from_str(name))
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| io::Error::other(format!("the hash session has no {name}")))?;
        f.apply(&self.session, &args.iter().collect::<js_sys::Array>())
            .map_err(hash_worker_error)
    }
}

impl RemoteHash for JsStreamHash {
    fn update(&mut self, data: &[u8]) -> io::Result<()> {
        let r = self.call("push", &[Uint8Array::from(data).into()])?;
        if let Ok(p) = r.dyn_into::<Promise>() {
            self.waiting = Some(p);
        }
        Ok(())
    }

    fn mark(&mut self, i: u64) -> io::Result<()> {
        self.call("mark", &[JsValue::from(i as f64)]).map(|_| ())
    }

    fn saturated(&self) -> bool {
        self.waiting.is_some()
    }

    fn ready(&mut self) -> Pin<Box<dyn Future<Output = io::Result<()>>>> {
        let waiting = self.waiting.take();
        Box::pin(async move {
            if let Some(p) = waiting {
                JsFuture::from(p).await.map_err(hash_worker_error)?;
            }
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> Pin<Box<dyn Future<Output = io::Result<HashStates>>>> {
        self.finished = true;
        let answer = self.call("finish", &[]);
        Box::pin(async move {
            let v = JsFuture::from(Promise::resolve(&answer?))
                .await
                .map_err(hash_worker_error)?;
            hash_states(&v).ok_or_else(|| {
                io::Error::other("the hash worker's answer is not a stream's states")
            })
        })
    }
}

impl Drop for JsStreamHash {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.call("close", &[]);
        }
    }
}

/// `{state, marks: [[i, state]...]}` as the writer's states.
fn hash_states(v: &JsValue) -> Option<HashStates> {
    let state = |v: JsValue| Sha256Mid::from_bytes(&v.dyn_into::<Uint8Array>().ok()?.to_vec());
    let last = state(js_sys::Reflect::get(v, &JsValue::from_str("state")).ok()?)?;
    let marks: js_sys::Array = js_sys::Reflect::get(v, &JsValue::from_str("marks"))
        .ok()?
        .dyn_into()
        .ok()?;
    let mut out = BTreeMap::new();
    for m in marks.iter() {
        let m: js_sys::Array = m.dyn_into().ok()?;
        let i = m.get(0).as_f64()?;
        out.insert(i as u64, state(m.get(1))?);
    }
    Some((last, out))
}

struct Ready(Rc<RefCell<Done>>);

impl Future for Ready {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut d = self.0.borrow_mut();
        if d.members.is_empty() {
            d.waker = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// The tab's blob store, with COPY and ADD layers compressed through `compressMember` when the page gave one, and
/// large new blobs streamed out to browser storage (`spill.rs`).
pub struct PooledBlobs<'a> {
    pub blobs: &'a mut MemoryBlobs,
    pub spilled: Spilled,
    pub compress: Option<(Function, usize)>,
    /// The page's hash worker for the pooled layers' streams (`hashStream`).
    pub hash: Option<Function>,
    /// What the current step's pre-step read out of layers in browser storage (`blobread::extract_layer`), by
    /// digest: every header and the wanted files' data, as an uncompressed tar.
    pub extracts: BTreeMap<Digest, Vec<u8>>,
}

impl PooledBlobs<'_> {
    fn stored(&self, d: &Digest) -> bool {
        !self.blobs.has(d) && self.spilled.borrow().contains_key(d)
    }
}

impl BlobStore for PooledBlobs<'_> {
    fn has(&self, d: &Digest) -> bool {
        self.blobs.has(d) || self.spilled.borrow().contains_key(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn io::Read + '_>, Error> {
        if self.stored(d) {
            return Err(Error::Host(format!(
                "blob {d} is in browser storage, which this step cannot read at once: use the CLI"
            )));
        }
        self.blobs.open(d)
    }
    fn needs_prepare(&self, d: &Digest) -> bool {
        self.stored(d)
    }
    fn forget_prepared(&mut self) {
        self.extracts.clear();
    }
    fn open_layer(&self, layer: &Descriptor) -> Result<Box<dyn io::Read + '_>, Error> {
        if let Some(x) = self.extracts.get(&layer.digest) {
            return Ok(Box::new(&x[..]));
        }
        lw_engine::host::decode_layer(self.open(&layer.digest)?, layer)
    }
    fn prepare_layers<'a>(
        &'a mut self,
        layers: &'a [Descriptor],
        want: &'a [String],
    ) -> lw_engine::host::PrepareFuture<'a> {
        Box::pin(async move {
            // Only this step's reads are kept.
            self.extracts.clear();
            for l in layers {
                if self.stored(&l.digest) && !self.extracts.contains_key(&l.digest) {
                    let x =
                        crate::blobread::extract_layer(self.blobs, &self.spilled, &l.digest, want)
                            .await?;
                    self.extracts.insert(l.digest.clone(), x);
                }
            }
            Ok(())
        })
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        SpillSink::create(self.blobs, &self.spilled)
    }
    fn resume_blob<'a>(
        &'a mut self,
        from: &'a Digest,
        len: u64,
        state: &'a lw_layer::midstate::Sha256Mid,
    ) -> SinkFuture<'a> {
        Box::pin(async move {
            // A stored start, checked by WebCrypto, is copied by the browser from file to file.
            let spliced = SpillSink::resumed(self.blobs, &self.spilled, from, len, state).await?;
            if let Some(sink) = spliced {
                return Ok(Box::new(sink) as Box<dyn BlobSink>);
            }
            // From memory or browser storage alike, through the store's read path (a stored start is checked).
            let mut sink = self.create()?;
            crate::blobread::copy_start(self.blobs, &self.spilled, from, len, state, &mut sink)
                .await?;
            Ok(sink)
        })
    }
    fn member_pool(&mut self) -> Option<Box<dyn MemberPool>> {
        self.compress.as_ref().map(|(f, n)| {
            Box::new(JsPool::new(f.clone(), *n, self.hash.clone())) as Box<dyn MemberPool>
        })
    }
}
