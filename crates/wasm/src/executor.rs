//! RUN steps in the browser: the caller's `executor(request, io)` callback (for example `serveExecutor`, which
//! runs the step natively in `layerwright serve`) answers with a Promise; its output streams to the build's events
//! while the step runs, and the layer it returns is verified before it enters the tab's store.

use std::cell::RefCell;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use lw_engine::host::{
    put_bytes, AsyncRunExecutor, BlobStore, MemoryBlobs, RunFuture, RunRequest, RunResult,
};
use lw_engine::Error;
use lw_oci::{media, Digest, DigestHasher};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::js::{bytes_of, get, to_js};

/// The request as JS sees it (the same shape `layerwright serve`'s `/api/run` accepts).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestJs<'a> {
    layers: Vec<LayerJs>,
    diff_ids: Vec<String>,
    args: &'a [String],
    env: &'a [String],
    user: &'a str,
    workdir: &'a str,
    network: &'a str,
    mounts: &'a [String],
    binds: Vec<BindJs>,
    /// Files mounted read-only for the step (a heredoc run as a script: `/dev/pipes/NAME`).
    files: Vec<FileJs>,
    platform: String,
    source_date_epoch: Option<i64>,
    location: &'a str,
    hostname: &'a str,
    insecure: bool,
}

/// One file for the step: its path in the container and its bytes in base64.
#[derive(Serialize)]
struct FileJs {
    path: String,
    data: String,
}

/// A resolved `--mount=type=bind` source: the layers to unpack for mount `mount`, and the path inside them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BindJs {
    mount: usize,
    layers: Vec<LayerJs>,
    diff_ids: Vec<String>,
    path: String,
}

fn layers_js(layers: &[lw_oci::Descriptor]) -> Vec<LayerJs> {
    layers
        .iter()
        .map(|l| LayerJs {
            digest: l.digest.to_string(),
            size: l.size,
            media_type: l.media_type.clone(),
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerJs {
    digest: String,
    size: u64,
    media_type: String,
}

/// Output the callback reported and not yet handed to the build, and who to wake when more arrives.
#[derive(Default)]
struct Pending {
    chunks: Vec<Vec<u8>>,
    waker: Option<Waker>,
}

/// Awaits the callback's Promise while forwarding the output it reports to the engine's sink.
struct Pump<'a> {
    promise: JsFuture,
    pending: Rc<RefCell<Pending>>,
    output: &'a mut dyn FnMut(&[u8]),
}

impl Future for Pump<'_> {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let chunks = std::mem::take(&mut self.pending.borrow_mut().chunks);
        for c in chunks {
            (self.output)(&c);
        }
        let r = Pin::new(&mut self.promise).poll(cx);
        if r.is_pending() {
            self.pending.borrow_mut().waker = Some(cx.waker().clone());
        } else {
            // Output reported in the same tick as the answer.
            let chunks = std::mem::take(&mut self.pending.borrow_mut().chunks);
            for c in chunks {
                (self.output)(&c);
            }
        }
        r
    }
}

/// The caller's executor callback and the tab's blobs (so the callback can read the parent layers).
pub struct JsExecutor {
    pub callback: Function,
    pub blobs: MemoryBlobs,
}

impl AsyncRunExecutor for JsExecutor {
    fn run_async<'a>(
        &'a mut self,
        req: &'a RunRequest,
        store: &'a mut dyn BlobStore,
        output: &'a mut dyn FnMut(&[u8]),
    ) -> RunFuture<'a> {
        Box::pin(async move {
            let answer = self.call(req, output).await.map_err(|e| {
                Error::Host(format!(
                    "{}: the RUN executor failed: {}",
                    req.location,
                    js_message(&e)
                ))
            })?;
            accept(req, store, &answer).await
        })
    }
}

impl JsExecutor {
    async fn call(
        &self,
        req: &RunRequest,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<JsValue, JsValue> {
        let request = to_js(&RequestJs {
            layers: layers_js(&req.layers),
            diff_ids: req.diff_ids.iter().map(|d| d.to_string()).collect(),
            args: &req.args,
            env: &req.env,
            user: &req.user,
            workdir: &req.workdir,
            network: &req.network,
            mounts: &req.mounts,
            binds: req
                .binds
                .iter()
                .map(|b| BindJs {
                    mount: b.mount,
                    layers: layers_js(&b.layers),
                    diff_ids: b.diff_ids.iter().map(|d| d.to_string()).collect(),
                    path: b.path.clone(),
                })
                .collect(),
            files: req
                .files
                .iter()
                .map(|(path, data)| FileJs {
                    path: path.clone(),
                    data: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data),
                })
                .collect(),
            platform: req.platform.to_string(),
            source_date_epoch: req.source_date_epoch,
            location: &req.location,
            hostname: &req.hostname,
            insecure: req.insecure,
        })?;
        let pending = Rc::new(RefCell::new(Pending::default()));
        let io = Object::new();
        let sink = pending.clone();
        let out_fn = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            let bytes = match v.as_string() {
                Some(s) => s.into_bytes(),
                None => match v.dyn_ref::<Uint8Array>() {
                    Some(a) => a.to_vec(),
                    None => return,
                },
            };
            let mut p = sink.borrow_mut();
            p.chunks.push(bytes);
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        });
        let blobs = self.blobs.clone();
        let read_fn = Closure::<dyn FnMut(String) -> Result<Uint8Array, JsValue>>::new(
            move |digest: String| -> Result<Uint8Array, JsValue> {
                let d = Digest::parse(&digest).map_err(crate::js::err)?;
                let map = blobs.blobs.lock().unwrap_or_else(|e| e.into_inner());
                let b = map.get(&d).ok_or_else(|| {
                    crate::js::err(format!("blob {d} is not in memory (io.openBlob reads any)"))
                })?;
                Ok(Uint8Array::from(&b[..]))
            },
        );
        // Any blob, in memory or in browser storage, as a stream of checked chunks.
        let open_fn = Closure::<dyn FnMut(String) -> Promise>::new(crate::blobread::open_js);
        Reflect::set(&io, &"output".into(), out_fn.as_ref())?;
        Reflect::set(&io, &"readBlob".into(), read_fn.as_ref())?;
        Reflect::set(&io, &"openBlob".into(), open_fn.as_ref())?;
        let ret = self.callback.call2(&JsValue::NULL, &request, &io)?;
        let promise = match ret.dyn_into::<Promise>() {
            Ok(p) => p,
            Err(v) => Promise::resolve(&v),
        };
        let answer = Pump {
            promise: JsFuture::from(promise),
            pending,
            output,
        }
        .await;
        // The closures live until the callback has answered; a callback that keeps them and calls them later
        // gets an error from wasm-bindgen instead of touching freed state.
        drop(out_fn);
        drop(read_fn);
        drop(open_fn);
        answer
    }
}

/// Check the callback's answer and store its layer: the digest is computed here, the diffId checked by
/// decompressing, so a wrong or hostile executor cannot put a mislabelled layer into the image.
async fn accept(
    req: &RunRequest,
    store: &mut dyn BlobStore,
    answer: &JsValue,
) -> Result<RunResult, Error> {
    let bad = |m: String| Error::Host(format!("{}: the RUN executor's answer: {m}", req.location));
    let code = get(answer, "exitCode")
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    if code != 0.0 {
        let message = get(answer, "error").ok().and_then(|v| v.as_string());
        return Err(Error::Host(message.unwrap_or_else(|| {
            format!(
                "{}: process {:?} did not complete successfully: exit code: {code}",
                req.location,
                req.args.join(" ")
            )
        })));
    }
    let layer = get(answer, "layer").map_err(|e| bad(js_message(&e)))?;
    if layer.is_undefined() || layer.is_null() {
        return Ok(RunResult { layer: None });
    }
    let text = |k: &str| -> Result<String, Error> {
        get(&layer, k)
            .ok()
            .and_then(|v| v.as_string())
            .ok_or_else(|| bad(format!("layer.{k} must be a string")))
    };
    let media_type = text("mediaType")?;
    let compression = media::layer_compression(&media_type).ok_or_else(|| {
        bad(format!(
            "layer.mediaType {media_type} is not a layer media type"
        ))
    })?;
    let diff_id = Digest::parse(&text("diffId")?).map_err(|e| bad(format!("layer.diffId: {e}")))?;
    let bytes_v = get(&layer, "bytes").map_err(|e| bad(js_message(&e)))?;
    let bytes = bytes_of(&bytes_v, "layer.bytes")
        .await
        .map_err(|e| bad(js_message(&e)))?;
    crate::archive::need_zstd_for_type(&media_type)
        .await
        .map_err(|e| bad(js_message(&e)))?;
    let mut h = DigestHasher::sha256();
    let mut r = lw_layer::compress::decoder(&bytes[..], compression)
        .map_err(|e| bad(format!("layer does not decompress: {e}")))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| bad(format!("layer does not decompress: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let actual = h.finish();
    if actual != diff_id {
        return Err(bad(format!(
            "layer diffId is {diff_id} but its uncompressed content hashes to {actual}"
        )));
    }
    let desc = put_bytes(store, &media_type, &bytes)?;
    Ok(RunResult {
        layer: Some((desc, diff_id)),
    })
}

/// The message of a JS error (or the value as text).
fn js_message(v: &JsValue) -> String {
    v.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| v.as_string())
        .unwrap_or_else(|| format!("{v:?}"))
}
