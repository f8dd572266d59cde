//! Registries from the tab: lw-registry's sans-I/O operations driven over `fetch` (streamed bodies, retry sleeps
//! on `setTimeout`, only CORS-exposed headers needed, optional proxy URL prefix); `pull` and `inspectRemote`.

use std::io::Write;
use std::time::Duration;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use lw_engine::host::{BlobSink, MemoryBlobs};
use lw_oci::{reference, Descriptor, Digest, Platform};
use lw_registry::transfer::MemoryImages;
use lw_registry::{
    Action, Body, BodyMode, Client, ClientConfig, Credentials, Operation, PullImage, PullTarget,
    PushImage, PushSource, ResponseHead, TransportError,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::blobread::Bodies;
use crate::js::{err, get, get_bool, get_string, to_js};
use crate::store::{default_platform, with};

pub(crate) fn global_fn(name: &str) -> Result<Function, JsValue> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name))?
        .dyn_into::<Function>()
        .map_err(|_| err(format!("this JS environment has no {name}()")))
}

fn call_method(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(obj, &JsValue::from_str(name))?.dyn_into()?;
    f.apply(obj, &args.iter().collect::<Array>())
}

async fn sleep(d: Duration) -> Result<(), JsValue> {
    let set_timeout = global_fn("setTimeout")?;
    let ms = d.as_millis().min(60_000) as f64;
    let p = Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&JsValue::NULL, &resolve, &JsValue::from_f64(ms));
    });
    JsFuture::from(p).await.map(|_| ())
}

/// The message for a `fetch` that threw: in a browser a cross-origin request without CORS headers looks exactly
/// like a network failure, so the message names both.
fn cors_message(url: &str, e: &JsValue) -> String {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_default();
    format!(
        "registry {url} sent no Access-Control-Allow-Origin header (or could not be reached: {detail}): use a \
         CORS proxy (layerwright serve) or a registry with CORS"
    )
}

/// Drive `op` to completion over `fetch`. Streamed blob bytes go to `sink` (an error from it cancels the download
/// and is returned); request bodies naming a blob are read from `bodies`.
pub(crate) async fn drive<O: Operation>(
    op: &mut O,
    bodies: &mut Bodies,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), JsValue>,
) -> Result<O::Output, JsValue> {
    drive_tee(op, bodies, sink, None).await
}

/// `drive`, with the same streamed bytes also handed to `tee` as JS `Uint8Array`s (the fetch's own chunks, which the
/// sink no longer needs once they are copied into wasm memory, so `tee` may transfer them to a Worker). `tee` is
/// called before the sink and may answer a Promise: the next chunk is read once it settles (its back-pressure).
pub(crate) async fn drive_tee<O: Operation>(
    op: &mut O,
    bodies: &mut Bodies,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), JsValue>,
    tee: Option<&Function>,
) -> Result<O::Output, JsValue> {
    let fetch = global_fn("fetch")?;
    // A rejected fetch in a browser is mostly a missing CORS header, which no retry fixes: one retry (for a
    // blip), not the core's full back-off (seconds before the user learns what is wrong).
    let mut transport_errors = 0u32;
    loop {
        let req = match op.poll().map_err(err)? {
            Action::Done(v) => return Ok(v),
            Action::Sleep(d) => {
                sleep(d).await?;
                continue;
            }
            Action::Send(r) => r,
        };
        let request = fetch_request(&req, bodies).await?;
        let resp = match JsFuture::from(
            fetch
                .call1(&js_sys::global(), &request)?
                .dyn_into::<Promise>()?,
        )
        .await
        {
            Ok(r) => r.dyn_into::<web_sys::Response>()?,
            Err(e) => {
                // The core decides whether to retry; when it gives up, say what a browser most likely hit.
                transport_errors += 1;
                if transport_errors > 1
                    || op
                        .on_transport_error(TransportError::new(cors_message(&req.url, &e)))
                        .is_err()
                {
                    return Err(err(cors_message(&req.url, &e)));
                }
                continue;
            }
        };
        let mut head = ResponseHead::new(resp.status());
        if let Ok(Some(it)) = js_sys::try_iter(&resp.headers()) {
            for pair in it {
                let pair: Array = pair?.dyn_into()?;
                head.headers.push((
                    pair.get(0).as_string().unwrap_or_default(),
                    pair.get(1).as_string().unwrap_or_default(),
                ));
            }
        }
        let mode = op.on_response(head).map_err(err)?;
        let stream = get(&resp, "body")?;
        if mode == BodyMode::Discard || stream.is_null() || stream.is_undefined() {
            if !stream.is_null() && !stream.is_undefined() {
                let _ = call_method(&stream, "cancel", &[]);
            }
            op.on_body_end().map_err(err)?;
            continue;
        }
        stream_body(op, &stream, &req.url, sink, tee).await?;
    }
}

/// The `fetch` Request for the core's request; a body naming a blob is read from `bodies` (in memory or, checked
/// as it streams, from browser storage).
async fn fetch_request(
    req: &lw_registry::Request,
    bodies: &mut Bodies,
) -> Result<web_sys::Request, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method(req.method.as_str());
    let headers = web_sys::Headers::new()?;
    for (k, v) in &req.headers {
        headers.append(k, v)?;
    }
    init.set_headers(&headers);
    let body: Option<Vec<u8>> = match &req.body {
        Body::Empty => None,
        Body::Bytes(b) => Some(b.clone()),
        Body::Blob {
            digest,
            offset,
            len,
        } => Some(bodies.range(digest, *offset, *len).await.map_err(err)?),
    };
    if let Some(b) = &body {
        init.set_body(&Uint8Array::from(&b[..]));
    }
    web_sys::Request::new_with_str_and_init(&req.url, &init)
}

/// What `stream_body` calls of an operation: `dyn`, so the streaming loop is in the module once, not once per
/// operation type `drive` runs.
trait BodyOf {
    fn body<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], lw_registry::Error>;
    fn body_end(&mut self) -> Result<(), lw_registry::Error>;
    fn body_broke(&mut self, error: TransportError) -> Result<(), lw_registry::Error>;
}

impl<O: Operation> BodyOf for O {
    fn body<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], lw_registry::Error> {
        Operation::on_body(self, chunk)
    }
    fn body_end(&mut self) -> Result<(), lw_registry::Error> {
        Operation::on_body_end(self)
    }
    fn body_broke(&mut self, error: TransportError) -> Result<(), lw_registry::Error> {
        Operation::on_transport_error(self, error)
    }
}

/// Feed a response body `stream` to `op` chunk by chunk (what it yields goes to `sink`; an error from the sink
/// cancels the download). A broken stream is a transport error the core may retry.
async fn stream_body(
    op: &mut dyn BodyOf,
    stream: &JsValue,
    url: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), JsValue>,
    tee: Option<&Function>,
) -> Result<(), JsValue> {
    let reader = call_method(stream, "getReader", &[])?;
    loop {
        let chunk =
            match JsFuture::from(call_method(&reader, "read", &[])?.dyn_into::<Promise>()?).await {
                Ok(c) => c,
                Err(e) => {
                    op.body_broke(TransportError::new(format!("reading {url}: {e:?}")))
                        .map_err(err)?;
                    return Ok(());
                }
            };
        if get(&chunk, "done")?.as_bool() == Some(true) {
            break;
        }
        let value = Uint8Array::new(&get(&chunk, "value")?);
        let bytes = value.to_vec();
        let out = op.body(&bytes).map_err(err)?;
        if !out.is_empty() {
            // What the op kept of the chunk (it skips a prefix it already had after a resume without Range).
            let pending = match tee {
                Some(f) => {
                    let at = (out.as_ptr() as usize - bytes.as_ptr() as usize) as u32;
                    let part = value.subarray(at, at + out.len() as u32);
                    match f.call1(&JsValue::NULL, &part) {
                        Ok(v) => v.dyn_into::<Promise>().ok(),
                        Err(e) => {
                            let _ = call_method(&reader, "cancel", &[]);
                            return Err(e);
                        }
                    }
                }
                None => None,
            };
            if let Err(e) = sink(out) {
                let _ = call_method(&reader, "cancel", &[]);
                return Err(e);
            }
            if let Some(p) = pending {
                if let Err(e) = JsFuture::from(p).await {
                    let _ = call_method(&reader, "cancel", &[]);
                    return Err(e);
                }
            }
        }
    }
    op.body_end().map_err(err)
}

/// A client for `reference`'s registry with the JS options (proxy, credentials, insecure).
pub(crate) fn client_for(domain: &str, opts: &JsValue) -> Result<Client, JsValue> {
    let mut cfg = ClientConfig::new(domain);
    cfg.plain_http = get_bool(opts, "insecure")?;
    cfg.proxy_prefix = get_string(opts, "proxy")?;
    if let (Some(username), Some(password)) =
        (get_string(opts, "username")?, get_string(opts, "password")?)
    {
        cfg.credentials = Credentials::Basic { username, password };
    }
    Ok(Client::new(cfg))
}

pub(crate) struct Target {
    full: String,
    pub domain: String,
    pub repo: String,
    reference: String,
}

pub(crate) fn target(r: &str) -> Result<Target, JsValue> {
    let parsed =
        reference::parse_docker_ref(r).map_err(|e| err(format!("invalid reference {r:?}: {e}")))?;
    let reference = parsed
        .digest()
        .map(str::to_string)
        .or_else(|| parsed.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string());
    Ok(Target {
        full: parsed.to_string(),
        domain: parsed.domain().to_string(),
        repo: parsed.path().to_string(),
        reference,
    })
}

async fn fetch_blob(client: &Client, repo: &str, d: &Descriptor) -> Result<Vec<u8>, JsValue> {
    let mut op = client.get_blob_for(repo, d).map_err(err)?;
    let mut data = Vec::with_capacity(d.size.min(1 << 26) as usize);
    drive(&mut op, &mut Bodies::default(), &mut |b| {
        data.extend_from_slice(b);
        Ok(())
    })
    .await?;
    Ok(data)
}

fn platform_of(opts: &JsValue) -> Result<Platform, JsValue> {
    match get_string(opts, "platform")? {
        Some(p) => Platform::parse(&p).map_err(|e| err(format!("platform: {e}"))),
        None => Ok(default_platform()),
    }
}

#[derive(Serialize)]
struct PullOut {
    #[serde(rename = "ref")]
    reference: String,
    digest: String,
}

/// A pull into the tab: each blob is written as a build's are (in memory while small, else streamed to browser
/// storage as it downloads, `spill.rs`), and all of them reach the store only when the whole pull succeeded (a
/// failed pull drops them, aborting what went to storage); blobs the store holds are not fetched.
struct TabPull {
    store: MemoryBlobs,
    /// Blobs the store keeps in browser storage: held too, so a pull does not download them again.
    spilled: crate::spill::Spilled,
    /// The blob downloading now, and those downloaded and verified, to be committed at the end.
    current: Option<(Digest, Box<dyn BlobSink>)>,
    done: Vec<(Digest, Box<dyn BlobSink>)>,
    mem: MemoryImages,
}

impl PullTarget for TabPull {
    fn has_blob(&mut self, desc: &Descriptor) -> bool {
        self.store.get(&desc.digest).is_some()
            || self.spilled.borrow().contains_key(&desc.digest)
            || self.done.iter().any(|(d, _)| *d == desc.digest)
    }
    fn begin_blob(&mut self, desc: &Descriptor) -> Result<(), lw_registry::Error> {
        let sink = crate::spill::SpillSink::create(&self.store, &self.spilled)
            .map_err(|e| lw_registry::Error::Host(e.to_string()))?;
        self.current = Some((desc.digest.clone(), sink));
        Ok(())
    }
    fn write_blob(&mut self, data: &[u8]) -> Result<(), lw_registry::Error> {
        let (d, sink) = self
            .current
            .as_mut()
            .ok_or(lw_registry::Error::Misuse("write without begin"))?;
        sink.write_all(data)
            .map_err(|e| lw_registry::Error::Host(format!("storing blob {d}: {e}")))
    }
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<(), lw_registry::Error> {
        match self.current.take() {
            // Verified by the pull (size and digest) before it commits.
            Some((d, sink)) if d == desc.digest => {
                self.done.push((d, sink));
                Ok(())
            }
            _ => Err(lw_registry::Error::Misuse("commit without begin")),
        }
    }
    fn abort_blob(&mut self, _desc: &Descriptor) {
        self.current = None;
    }
    fn put_manifest(&mut self, desc: &Descriptor, bytes: &[u8]) -> Result<(), lw_registry::Error> {
        self.mem.put_manifest(desc, bytes)
    }
}

/// `pull(ref, opts)`: the image manifest for the platform (linux/amd64 unless `opts.platform`), its config and
/// layers into the tab's store, under the normalized name; the index, when the reference named one, is kept too.
#[wasm_bindgen]
pub async fn pull(r: &str, opts: JsValue) -> Result<JsValue, JsValue> {
    let t = target(r)?;
    // `name`: store the image under this name instead (a pull from a mirror, named as the original).
    let alias = match crate::js::get_string(&opts, "name")? {
        Some(n) => Some(crate::store::normalize(&n)?),
        None => None,
    };
    let client = client_for(&t.domain, &opts)?;
    let (blobs, spilled) = with(|s| (s.blobs.clone(), s.spilled.clone()));
    let mut tab = TabPull {
        store: blobs.clone(),
        spilled,
        current: None,
        done: Vec::new(),
        mem: MemoryImages::default(),
    };
    let mut op = PullImage::new(
        &client,
        &t.repo,
        &t.reference,
        &platform_of(&opts)?,
        &mut tab,
    )
    .map_err(err)?;
    let pulled = drive(&mut op, &mut Bodies::default(), &mut |_| Ok(())).await?;
    let desc = pulled.manifest.descriptor();
    for (d, sink) in tab.done {
        sink.commit(&d).map_err(err)?;
    }
    with(|s| {
        for (d, (_, b)) in tab.mem.manifests {
            s.blobs.insert(d, b);
        }
        let name = if alias.is_some() {
            alias.clone()
        } else if t.full.contains('@') {
            None
        } else {
            Some(t.full.clone())
        };
        s.add(name, &desc);
    });
    to_js(&PullOut {
        reference: alias.unwrap_or(t.full),
        digest: desc.digest.to_string(),
    })
}

/// `inspectRemote(ref, opts)`: index (if any), platforms, the platform's manifest, config, history and layers,
/// without storing anything.
#[wasm_bindgen(js_name = inspectRemote)]
pub async fn inspect_remote(r: &str, opts: JsValue) -> Result<JsValue, JsValue> {
    let t = target(r)?;
    let client = client_for(&t.domain, &opts)?;
    let mut op = client
        .resolve(&t.repo, &t.reference, &platform_of(&opts)?)
        .map_err(err)?;
    let resolved = drive(&mut op, &mut Bodies::default(), &mut |_| Ok(())).await?;
    let m = resolved
        .manifest
        .manifest()
        .cloned()
        .ok_or_else(|| err(format!("{r}: not an image manifest")))?;
    let config_bytes = fetch_blob(&client, &t.repo, &m.config).await?;
    crate::views::image_info(
        resolved.index.as_ref().map(|i| i.bytes.as_slice()),
        &resolved.manifest.digest,
        &resolved.manifest.bytes,
        &m,
        &config_bytes,
    )
}

#[derive(Serialize)]
struct PushOut {
    digest: String,
}

/// The tab's store as a push source: manifests and indexes are blobs there.
struct TabSource<'a>(&'a MemoryBlobs);

impl PushSource for TabSource<'_> {
    fn manifest_bytes(&mut self, digest: &lw_oci::Digest) -> Result<Vec<u8>, lw_registry::Error> {
        self.0.get(digest).map(|b| b.to_vec()).ok_or_else(|| {
            lw_registry::Error::Host(format!("manifest {digest} is not in the store"))
        })
    }
}

/// `push(ref, dest, opts)`: image `ref` of the tab's store to `dest` as it is, an index with every platform's
/// manifest: blobs first (each once, existing ones skipped), children by digest, then the root under `dest`'s
/// tag.
#[wasm_bindgen]
pub async fn push(r: &str, dest: &str, opts: JsValue) -> Result<JsValue, JsValue> {
    let (blobs, rec) = with(|s| s.resolve(r).map(|rec| (s.blobs.clone(), rec)))?;
    let t = target(dest)?;
    if t.full.contains('@') {
        return Err(err(format!("cannot push to a digest reference: {dest}")));
    }
    let client = client_for(&t.domain, &opts)?;
    let mut op = PushImage::new(
        &client,
        &t.repo,
        &t.reference,
        &rec.descriptor,
        &mut TabSource(&blobs),
    )
    .map_err(err)?;
    // Layers in browser storage stream out chunk by chunk, their digests checked as they go.
    let report = drive(&mut op, &mut Bodies::of_store(), &mut |_| Ok(())).await?;
    to_js(&PushOut {
        digest: report.digest.to_string(),
    })
}
