//! `build`: a Dockerfile and a context of in-memory files become an image in the tab's store, with the session's
//! step cache and events streamed to `onEvent`.

use std::collections::BTreeMap;

use js_sys::{Array, Function, Uint8Array};
use lw_engine::archive::resolve_manifest;
use lw_engine::context::FilteredContext;
use lw_engine::engine::{self, BuildOptions, Host, LayerReport};
use lw_engine::events::BuildEvent;
use lw_engine::host::{read_blob, AsyncRunExecutor, BaseImage, ImageSource, MemoryBlobs};
use lw_engine::named::{Named, NamedImages};
use lw_engine::Error;
use lw_oci::{ImageConfig, Platform};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::context::TabContext;
use crate::executor::JsExecutor;
use crate::fetch::TabFetcher;
use crate::js::{bytes_of, err, get, get_bool, get_string, get_string_map, json_to_js, to_js};
use crate::pool::PooledBlobs;
use crate::store::{normalize, with, Record};

/// Base images from the tab's store (images built, loaded or pulled earlier).
struct TabImages {
    blobs: MemoryBlobs,
    records: Vec<Record>,
}

impl ImageSource for TabImages {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, Error> {
        let full = reference::normalize_or(reference);
        // `NAME@sha256:…` is the image with that manifest digest whatever its name here, as natively (docker keeps
        // only the digest of such a reference).
        let pinned = reference.rsplit_once('@').map(|(_, d)| d);
        let rec = self
            .records
            .iter()
            .find(|r| r.name.as_deref() == Some(full.as_str()) || r.descriptor.digest.to_string() == reference)
            .or_else(|| {
                let d = pinned?;
                self.records
                    .iter()
                    .find(|r| r.descriptor.digest.as_str() == d)
            })
            .ok_or_else(|| {
                Error::Host(format!(
                    "image {reference} is not in this tab's store: pull it or load a tarball with it first"
                ))
            })?;
        base_image(&self.blobs, &full, &rec.descriptor, platform)
    }
}

/// The image `desc` names in `blobs` for `platform` (an index resolved to the platform's manifest), as a base.
pub(crate) fn base_image(
    blobs: &MemoryBlobs,
    name: &str,
    desc: &lw_oci::Descriptor,
    platform: &Platform,
) -> Result<BaseImage, Error> {
    let (manifest_digest, manifest) = resolve_manifest(blobs, desc, platform)?;
    let bytes = read_blob(
        blobs,
        &manifest.config.digest,
        lw_engine::archive::MAX_DOCUMENT,
    )?;
    let config: ImageConfig = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Host(format!(
            "config {} is not valid: {e}",
            manifest.config.digest
        ))
    })?;
    Ok(BaseImage {
        name: name.to_string(),
        manifest_digest,
        manifest,
        config,
    })
}

mod reference {
    /// The normalized name (`alpine` → `docker.io/library/alpine:latest`), or the input when it does not parse.
    pub fn normalize_or(s: &str) -> String {
        super::normalize(s).unwrap_or_else(|_| s.to_string())
    }
}

#[derive(Serialize)]
struct BuildOut<'a> {
    #[serde(rename = "manifestDigest")]
    manifest_digest: String,
    #[serde(rename = "configDigest")]
    config_digest: String,
    #[serde(rename = "ref")]
    reference: String,
    layers: &'a [LayerReport],
    /// The index over every platform's manifest, when several platforms were built.
    #[serde(rename = "indexDigest", skip_serializing_if = "Option::is_none")]
    index_digest: Option<String>,
    platforms: Vec<String>,
}

/// `platforms: ["linux/amd64", "linux/arm64"]`, or `platform: "linux/amd64[,linux/arm64]"`; default linux/amd64.
fn platforms_of(opts: &JsValue) -> Result<Vec<Platform>, JsValue> {
    let list = get(opts, "platforms")?;
    let joined = if list.is_undefined() || list.is_null() {
        get_string(opts, "platform")?
    } else {
        let arr: Array = list
            .dyn_into()
            .map_err(|_| err("build: platforms must be an array of strings"))?;
        let parts: Vec<String> = arr
            .iter()
            .map(|v| {
                v.as_string()
                    .ok_or_else(|| err("build: platforms must be strings"))
            })
            .collect::<Result<_, _>>()?;
        Some(parts.join(","))
    };
    match joined {
        Some(l) => lw_engine::platforms::parse_list(&l).map_err(|e| err(format!("build: {e}"))),
        None => Ok(vec![crate::store::default_platform()]),
    }
}

/// `tags`: the names to give the image, normalized.
fn tags_of(opts: &JsValue) -> Result<Vec<String>, JsValue> {
    let t = get(opts, "tags")?;
    if t.is_undefined() || t.is_null() {
        return Ok(Vec::new());
    }
    let arr: Array = t
        .dyn_into()
        .map_err(|_| err("build: tags must be an array of strings"))?;
    arr.iter()
        .map(|v| {
            v.as_string()
                .ok_or_else(|| err("build: tags must be strings"))
                .and_then(|s| normalize(&s))
        })
        .collect()
}

/// `compressMember` and `compressConcurrency`.
fn compress_of(opts: &JsValue) -> Result<Option<(Function, usize)>, JsValue> {
    let f = get(opts, "compressMember")?;
    if f.is_undefined() || f.is_null() {
        return Ok(None);
    }
    let f: Function = f.dyn_into().map_err(|_| {
        err("build: compressMember must be a function (bytes, level) => Promise<Uint8Array>")
    })?;
    let n = get(opts, "compressConcurrency")?.as_f64().unwrap_or(4.0);
    if n.fract() != 0.0 || !(1.0..=64.0).contains(&n) {
        return Err(err(
            "build: compressConcurrency must be a whole number from 1 to 64",
        ));
    }
    Ok(Some((f, n as usize)))
}

/// `compressMember` and `compressConcurrency`, and with them `hashStream`.
type PoolOptions = (Option<(Function, usize)>, Option<Function>);

fn pool_of(opts: &JsValue) -> Result<PoolOptions, JsValue> {
    let compress = compress_of(opts)?;
    let hash = match compress {
        Some(_) => hash_of(opts)?,
        None => None,
    };
    Ok((compress, hash))
}

/// `hashStream`: the page's hash worker for a layer's streams, `(state) => session | null` (js/blobhashers.js).
fn hash_of(opts: &JsValue) -> Result<Option<Function>, JsValue> {
    let f = get(opts, "hashStream")?;
    if f.is_undefined() || f.is_null() {
        return Ok(None);
    }
    f.dyn_into()
        .map(Some)
        .map_err(|_| err("build: hashStream must be a function (state) => session"))
}

/// `executor`: the function RUN steps go to.
fn executor_of(opts: &JsValue) -> Result<Option<Function>, JsValue> {
    let e = get(opts, "executor")?;
    if e.is_undefined() || e.is_null() {
        return Ok(None);
    }
    e.dyn_into()
        .map(Some)
        .map_err(|_| err("build: executor must be a function (request, io) => Promise<result>"))
}

/// A context's files. A `Blob`/`File` stays in the browser: it is read a block at a time as a layer is written (the
/// engine awaits each block). With `hash` (the build's context, whose steps are keyed by file digests), files are
/// hashed by WebCrypto (the digests may come precomputed in `contextDigests`, as `js/index.js` computes them several
/// at a time); a named context's layer is written whole every build, so its files are not. Other values are read
/// into memory now.
async fn context_of(opts: &JsValue, hash: bool) -> Result<TabContext, JsValue> {
    let mut ctx = TabContext::default();
    let files = get(opts, "files")?;
    if files.is_undefined() || files.is_null() {
        return Ok(ctx);
    }
    let given: BTreeMap<String, String> = get_string_map(opts, "contextDigests")?
        .into_iter()
        .collect();
    let ferr = |e: Error| err(format!("build: files: {e}"));
    let mut hashing = Vec::new();
    for pair in js_sys::Object::entries(files.unchecked_ref()).iter() {
        let pair: Array = pair.unchecked_into();
        let path = pair.get(0).as_string().unwrap_or_default();
        let value = pair.get(1);
        if let Some(blob) = value.dyn_ref::<web_sys::Blob>() {
            let p = ctx.insert_blob(&path, blob.clone()).map_err(ferr)?;
            if !hash {
                continue;
            }
            let known = given
                .get(&path)
                .map(|h| lw_oci::Digest::parse(&format!("sha256:{h}")));
            match known {
                Some(d) => ctx.set_known_digest(
                    &p,
                    d.map_err(|e| err(format!("build: contextDigests[{path:?}]: {e}")))?,
                ),
                None => {
                    if let Some(d) = crate::context::blob_sha256(blob).await? {
                        ctx.set_known_digest(&p, d);
                    }
                }
            }
            continue;
        }
        let bytes = bytes_of(&value, &format!("files[{path:?}]")).await?;
        let f = if hash { webcrypto_sha256(&bytes) } else { None };
        let p = ctx.insert_bytes(&path, bytes).map_err(ferr)?;
        if let Some(f) = f {
            hashing.push((p, f));
        }
    }
    file_info(opts, &mut ctx)?;
    for (p, f) in hashing {
        let hash = Uint8Array::new(&f.await?);
        let mut h = [0u8; 32];
        if hash.length() == 32 {
            hash.copy_to(&mut h);
            ctx.set_known_digest(&p, lw_oci::Digest::from_sha256_bytes(&h));
        }
    }
    Ok(ctx)
}

/// `fileInfo`: what `files` cannot carry, by path: `{mode}` for a file or directory, `{dir: true}` for an empty
/// directory, `{symlink: TARGET}` for a symbolic link (as `layerwright build` reads them from a directory).
fn file_info(opts: &JsValue, ctx: &mut TabContext) -> Result<(), JsValue> {
    let info = get(opts, "fileInfo")?;
    if info.is_undefined() || info.is_null() {
        return Ok(());
    }
    for pair in js_sys::Object::entries(info.unchecked_ref()).iter() {
        let pair: Array = pair.unchecked_into();
        let path = pair.get(0).as_string().unwrap_or_default();
        let v = pair.get(1);
        let bad = |what: &str| err(format!("build: fileInfo[{path:?}]: {what}"));
        let mode = match get(&v, "mode")? {
            m if m.is_undefined() => None,
            m => match m.as_f64() {
                Some(n) if n.fract() == 0.0 && (0.0..=4095.0).contains(&n) => Some(n as u32),
                _ => return Err(bad("mode must be a number from 0 to 0o7777")),
            },
        };
        let symlink = get_string(&v, "symlink")?;
        let dir = get_bool(&v, "dir")?;
        if dir && symlink.is_some() {
            return Err(bad("dir and symlink exclude each other"));
        }
        ctx.set_info(&path, mode, dir, symlink.as_deref())
            .map_err(|e| bad(&e.to_string()))?;
    }
    Ok(())
}

/// `buildContexts`: name → `"docker-image://REF"` (an image of the tab's store, found as `FROM` finds one),
/// `{files, fileInfo}` (a directory's files, given as the main context's are, filtered by its own
/// `.dockerignore`) or `{ociLayout: {files}, digest?, tag?}` (an OCI layout's files, see `layout.rs`). The engine's named contexts, as the CLI's `--build-context` makes them.
async fn named_contexts_of(
    opts: &JsValue,
    blobs: &MemoryBlobs,
) -> Result<BTreeMap<String, Named<'static>>, JsValue> {
    let v = get(opts, "buildContexts")?;
    let mut out = BTreeMap::new();
    if v.is_undefined() || v.is_null() {
        return Ok(out);
    }
    for pair in js_sys::Object::entries(v.unchecked_ref()).iter() {
        let pair: Array = pair.unchecked_into();
        let name = pair.get(0).as_string().unwrap_or_default();
        let value = pair.get(1);
        let bad = |what: &str| err(format!("build: buildContexts[{name:?}]: {what}"));
        let named = match value.as_string() {
            Some(s) => match s.strip_prefix("docker-image://") {
                Some(r) if !r.is_empty() => Named::Image(r.to_string()),
                _ => {
                    return Err(bad(
                        "expected \"docker-image://REF\" (an image of this tab's store) or {files, fileInfo} (a \
                         directory's files); a directory or OCI layout named on the machine needs the CLI: \
                         layerwright build --build-context",
                    ))
                }
            },
            None if !get(&value, "ociLayout")?.is_undefined() => {
                Named::Source(Box::new(crate::layout::layout_of(&value, blobs, &name).await?))
            }
            None if value.is_object() => {
                let ctx = context_of(&value, false).await?;
                let ctx = FilteredContext::from_ignore_file(ctx, None)
                    .map_err(|e| bad(&format!(".dockerignore: {e}")))?;
                Named::Context(Box::new(ctx))
            }
            None => return Err(bad("expected a string or an object")),
        };
        out.insert(name, named);
    }
    Ok(out)
}

/// The build options but the platform list: `dockerfile`, `buildArgs`, `target`, `sourceDateEpoch`, `noCache`,
/// `compression`, `compressionLevel`.
fn options_of(opts: &JsValue, platform: &Platform) -> Result<BuildOptions, JsValue> {
    let dockerfile = get_string(opts, "dockerfile")?
        .ok_or_else(|| err("build: the dockerfile option is required"))?;
    let mut o = BuildOptions::new(dockerfile.into_bytes(), platform.clone());
    o.build_args = get_string_map(opts, "buildArgs")?
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    o.target = get_string(opts, "target")?;
    let epoch = get(opts, "sourceDateEpoch")?;
    if let Some(n) = epoch.as_f64() {
        if n.fract() != 0.0 || !(0.0..=9.0e15).contains(&n) {
            return Err(err(
                "build: sourceDateEpoch must be a whole number of seconds",
            ));
        }
        o.source_date_epoch = n as i64;
    }
    o.no_cache = get_bool(opts, "noCache")?;
    // `ssh`: the agent ids the Dockerfile may ask for (the CLI's `--ssh ID`). A page reaches no SSH agent: the
    // engine fails at the first RUN that would mount one of them, as it fails a required mount of an id not given.
    let ssh = get(opts, "ssh")?;
    if !ssh.is_undefined() && !ssh.is_null() {
        let ids: Vec<String> = match ssh.as_string() {
            Some(s) => vec![s],
            None => ssh
                .dyn_into::<Array>()
                .map_err(|_| err("build: ssh must be an array of agent ids"))?
                .iter()
                .map(|v| {
                    v.as_string()
                        .ok_or_else(|| err("build: ssh ids must be strings"))
                })
                .collect::<Result<_, _>>()?,
        };
        o.ssh_ids = ids
            .into_iter()
            .map(|i| if i.is_empty() { "default".into() } else { i })
            .collect();
        if !get_bool(opts, "sshForwarded")? {
            o.ssh_unavailable = Some(
                "forwarding an SSH agent is not available in a browser tab; use the CLI: layerwright build --ssh ..., or serveExecutor with layerwright serve --ssh ..."
                    .into(),
            );
        }
    }
    // BuildKit's names: `compression` (gzip, zstd, uncompressed) and `compressionLevel`, as `--output` takes them.
    let level = get(opts, "compressionLevel")?;
    let level = match level.as_f64() {
        Some(n) => Some(n.to_string()),
        None if level.is_undefined() || level.is_null() => None,
        None => return Err(err("build: compressionLevel must be a number")),
    };
    o.layer_format = match get_string(opts, "compression")? {
        Some(c) => lw_layer::compress::LayerFormat::parse(&c, level.as_deref())
            .map_err(|e| err(format!("build: {e}")))?,
        None if level.is_some() => return Err(err("build: compressionLevel needs compression")),
        None => lw_layer::compress::LayerFormat::GZIP,
    };
    Ok(o)
}

/// Whether a build may read a zstd layer: it writes zstd (a later stage may read an earlier one's layers), or an
/// image in the tab's store that it may start from or copy from has one.
fn reads_zstd(o: &BuildOptions, platforms: &[Platform]) -> bool {
    use lw_oci::media::{layer_compression, Compression};
    if o.layer_format.compression == Compression::Zstd {
        return true;
    }
    with(|s| {
        s.records.iter().any(|r| {
            platforms.iter().any(|p| {
                lw_engine::archive::resolve_manifest(&s.blobs, &r.descriptor, p).is_ok_and(
                    |(_, m)| {
                        m.layers
                            .iter()
                            .any(|l| layer_compression(&l.media_type) == Some(Compression::Zstd))
                    },
                )
            })
        })
    })
}

/// `build(opts)`: see README.md for the options and the result.
#[wasm_bindgen]
pub async fn build(opts: JsValue) -> Result<JsValue, JsValue> {
    let platforms = platforms_of(&opts)?;
    let mut o = options_of(&opts, &platforms[0])?;
    let tags = tags_of(&opts)?;
    let on_event: Option<Function> = get(&opts, "onEvent")?.dyn_into().ok();
    // Where COPY/ADD layers' gzip members are compressed and their streams hashed: the JS API's Web Workers.
    let (compress, hash) = pool_of(&opts)?;
    let executor = executor_of(&opts)?;

    // Context Blobs are read a block at a time as each layer is written, whatever its compression and whether or
    // not it goes through the workers; a named context's too.
    let ctx = context_of(&opts, true).await?;
    o.has_dockerignore = ctx.has(".dockerignore");
    let ctx = FilteredContext::from_ignore_file(ctx, Some("Dockerfile"))
        .map_err(|e| err(format!(".dockerignore: {e}")))?;

    // The store's blobs are shared (an Arc'd map); the cache is taken out for the build and put back after.
    let (mut blobs, spilled, mut cache, records) = with(|s| {
        (
            s.blobs.clone(),
            s.spilled.clone(),
            std::mem::take(&mut s.cache),
            s.records.clone(),
        )
    });
    // The decoder module, when the build may read a zstd layer (the engine reads layers synchronously).
    if reads_zstd(&o, &platforms) {
        if let Err(e) = crate::archive::need_zstd().await {
            with(|s| s.cache = cache);
            return Err(e);
        }
    }
    let tab_images = TabImages {
        blobs: blobs.clone(),
        records,
    };
    let named = match named_contexts_of(&opts, &blobs).await {
        Ok(n) => n,
        Err(e) => {
            with(|s| s.cache = cache);
            return Err(e);
        }
    };
    // A named directory's layer is dated as the build's files are.
    let epoch = Some(o.source_date_epoch);
    let mut images = NamedImages::new(tab_images, Box::new(blobs.clone()), named, epoch);
    o.named_contexts = images.names();
    let mut fetcher = TabFetcher {
        fetch: get(&opts, "fetch")?.dyn_into().ok(),
        #[cfg(feature = "git")]
        git: get(&opts, "gitCheckout")?.dyn_into().ok(),
        secrets: get(&opts, "secrets")?,
    };
    let mut js_exec = executor.map(|callback| JsExecutor {
        callback,
        blobs: blobs.clone(),
    });
    let mut events = |e: BuildEvent| {
        if let Some(f) = &on_event {
            if let Ok(v) = to_js(&e) {
                // A throwing listener must not break the build.
                let _ = f.call1(&JsValue::NULL, &v);
            }
        }
    };
    // One build per platform (the step cache is shared); several make an index over their manifests.
    let mut results = Vec::new();
    for p in &platforms {
        o.platform = p.clone();
        let mut pooled = PooledBlobs {
            blobs: &mut blobs,
            spilled: spilled.clone(),
            compress: compress.clone(),
            hash: hash.clone(),
            extracts: BTreeMap::new(),
        };
        let mut host = Host {
            context: &ctx,
            blobs: &mut pooled,
            images: &mut images,
            run: js_exec.as_mut().map(|e| e as &mut dyn AsyncRunExecutor),
            fetch: Some(&mut fetcher),
            cache: &mut cache,
            events: &mut events,
        };
        match engine::build_async(&o, &mut host).await {
            Ok(r) => results.push((p.clone(), r)),
            Err(e) => {
                with(|s| s.cache = cache);
                return Err(build_error(e));
            }
        }
    }
    with(|s| s.cache = cache);
    let assembled = lw_engine::platforms::assemble(&mut blobs, &results).map_err(err)?;
    let root = assembled.descriptor;
    with(|s| {
        if tags.is_empty() {
            s.add(None, &root);
        }
        for t in &tags {
            s.add(Some(t.clone()), &root);
        }
    });
    build_out(&tags, &root.digest.to_string(), &results)
}

/// The build's error for the page: BuildKit's message, and for SSH why (a page cannot reach an SSH agent).
fn build_error(e: Error) -> JsValue {
    if matches!(
        &e,
        Error::Step {
            kind: lw_engine::StepError::SshNotForwarded(_) | lw_engine::StepError::SshKeyUnset(_),
            ..
        }
    ) {
        return err(format!(
            "{e} (SSH agent forwarding needs the CLI: layerwright build --ssh default)"
        ));
    }
    err(e)
}

/// `build`'s result: the first platform's image in full, and the index (`root_digest`) when there are several.
fn build_out(
    tags: &[String],
    root_digest: &str,
    results: &[(Platform, engine::BuildResult)],
) -> Result<JsValue, JsValue> {
    // The first platform's image is described in full; an index is named beside it.
    let r = &results[0].1;

    let out = to_js(&BuildOut {
        manifest_digest: r.manifest.digest.to_string(),
        config_digest: r.config_digest.to_string(),
        reference: tags
            .first()
            .cloned()
            .unwrap_or_else(|| root_digest.to_string()),
        layers: &r.layers,
        index_digest: (results.len() > 1).then(|| root_digest.to_string()),
        platforms: results.iter().map(|(p, _)| p.to_string()).collect(),
    })?;
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &JsValue::from_str(k), v);
    let config = json_to_js(&r.config_bytes)?;
    set("history", &get(&config, "history")?)?;
    set("config", &config)?;
    set("manifest", &json_to_js(&r.manifest_bytes)?)?;
    set("configBytes", &Uint8Array::from(&r.config_bytes[..]))?;
    set("manifestBytes", &Uint8Array::from(&r.manifest_bytes[..]))?;
    Ok(out)
}

/// Start the SHA-256 of a context file in the browser's WebCrypto (native code, off this thread in Chromium), so
/// the engine need not hash the context in wasm. None for small files (not worth a Promise) or without
/// `crypto.subtle` (the engine then hashes).
fn webcrypto_sha256(bytes: &[u8]) -> Option<wasm_bindgen_futures::JsFuture> {
    if bytes.len() < 64 * 1024 {
        return None;
    }
    let (subtle, digest) = crate::context::subtle_digest()?;
    // A JS copy, not an unsafe view of wasm memory (which growing memory detaches); it is freed once hashed.
    let copy = Uint8Array::from(bytes);
    let promise: js_sys::Promise = digest
        .call2(&subtle, &JsValue::from_str("SHA-256"), &copy)
        .ok()?
        .dyn_into()
        .ok()?;
    Some(wasm_bindgen_futures::JsFuture::from(promise))
}
