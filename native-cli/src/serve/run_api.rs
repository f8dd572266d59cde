//! `POST /api/run`: runs one RUN step natively for the browser build (the parent layers are already in the store,
//! pushed through the embedded registry), streams its output, then a final JSON line with the exit code and the
//! new layer (stored, so the tab fetches it from `/v2/…/blobs/DIGEST`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Duration;

use super::http::{Method, Request};
use lw_engine::host::{RunExecutor, RunRequest};
use lw_oci::{Descriptor, Digest, Platform};
use serde::Deserialize;
use serde_json::{json, Value};

use super::registry::RUN_REPO;
use super::reply::{header, read_small, Reply};
use super::{Ctx, MAX_JSON};
use crate::buildhost::StoreBlobs;
use crate::store::Store;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerIn {
    digest: String,
    size: u64,
    media_type: String,
}

/// The browser's RunRequest (see the JS API contract).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunIn {
    #[serde(default)]
    layers: Vec<LayerIn>,
    #[serde(default)]
    diff_ids: Vec<String>,
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    workdir: String,
    #[serde(default)]
    network: String,
    #[serde(default)]
    mounts: Vec<String>,
    /// `--add-host` entries, `NAME:IP`.
    #[serde(default)]
    extra_hosts: Vec<String>,
    /// Resolved `type=bind` sources (their layers pushed like the stage's).
    #[serde(default)]
    binds: Vec<BindIn>,
    /// Files mounted read-only for the step: `{path, data}` with the bytes in base64.
    #[serde(default)]
    files: Vec<FileIn>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    source_date_epoch: Option<i64>,
    /// The sandbox's host name (empty: `buildkitsandbox`).
    #[serde(default)]
    hostname: String,
    /// `RUN --security=insecure`.
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    location: Option<String>,
    /// The build's secrets for `RUN --mount=type=secret`: id → bytes in base64 (serveExecutor's `withSecrets`).
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct FileIn {
    path: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindIn {
    mount: usize,
    #[serde(default)]
    layers: Vec<LayerIn>,
    #[serde(default)]
    diff_ids: Vec<String>,
    #[serde(default)]
    path: String,
}

/// Layers the request names, which must already be in serve's store, and their diff IDs.
fn layers_in(
    layers: Vec<LayerIn>,
    diff_ids: &[String],
    store: &Store,
) -> Result<(Vec<Descriptor>, Vec<Digest>), String> {
    if layers.len() != diff_ids.len() {
        return Err(format!(
            "{} layers but {} diffIds",
            layers.len(),
            diff_ids.len()
        ));
    }
    let mut out = Vec::new();
    for l in layers {
        let d = Digest::parse(&l.digest).map_err(|e| format!("layer {}: {e}", l.digest))?;
        if !store.has_blob(&d) {
            return Err(format!(
                "layer {d} is not in serve's store: push it to /v2/layerwright/run-cache/blobs/uploads/ first"
            ));
        }
        out.push(Descriptor::new(&l.media_type, d, l.size));
    }
    let ids = diff_ids
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| format!("diffId {d}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((out, ids))
}

/// The request's secrets, decoded: id → bytes.
fn secrets_in(v: &BTreeMap<String, String>) -> Result<BTreeMap<String, Vec<u8>>, String> {
    v.iter()
        .map(|(id, b64)| {
            if id.is_empty() || id.contains('/') || id.starts_with('.') {
                return Err(format!("secrets: {id:?} is not a secret id"));
            }
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                .map(|data| (id.clone(), data))
                .map_err(|e| format!("secrets: {id}: {e}"))
        })
        .collect()
}

/// The step's secrets as files the runc executor mounts (it takes secrets as host files, as `build --secret`
/// gives them): one private directory (0700) under the store's temporary directory, removed when dropped.
struct SecretFiles {
    dir: Option<PathBuf>,
}

impl SecretFiles {
    fn write(
        tmp: &Path,
        secrets: &BTreeMap<String, Vec<u8>>,
    ) -> std::io::Result<(Self, BTreeMap<String, PathBuf>)> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if secrets.is_empty() {
            return Ok((SecretFiles { dir: None }, BTreeMap::new()));
        }
        std::fs::create_dir_all(tmp)?;
        let dir = tmp.join(format!(
            "run-secrets-{}-{}",
            std::process::id(),
            crate::store::unique()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let guard = SecretFiles {
            dir: Some(dir.clone()),
        };
        let mut paths = BTreeMap::new();
        for (id, data) in secrets {
            let p = dir.join(id);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            std::io::Write::write_all(&mut f, data)?;
            paths.insert(id.clone(), p);
        }
        Ok((guard, paths))
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn to_request(v: RunIn, store: &Store) -> Result<RunRequest, String> {
    if v.args.is_empty() {
        return Err("args is empty".into());
    }
    let (layers, diff_ids) = layers_in(v.layers, &v.diff_ids, store)?;
    let mut binds = Vec::new();
    for b in v.binds {
        if b.mount >= v.mounts.len() {
            return Err(format!(
                "binds: mount {} is out of range ({} mounts)",
                b.mount,
                v.mounts.len()
            ));
        }
        let (layers, diff_ids) = layers_in(b.layers, &b.diff_ids, store)?;
        binds.push(lw_engine::host::BindSource {
            mount: b.mount,
            layers,
            diff_ids,
            path: if b.path.is_empty() {
                "/".into()
            } else {
                b.path
            },
        });
    }
    let mut files = Vec::new();
    for f in v.files {
        let data = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &f.data)
            .map_err(|e| format!("files: {}: {e}", f.path))?;
        if !f.path.starts_with('/') {
            return Err(format!("files: {}: the path must be absolute", f.path));
        }
        files.push((f.path, data));
    }
    let platform = match v.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| format!("platform {p}: {e}"))?,
        None => crate::store::host_platform(),
    };
    Ok(RunRequest {
        layers,
        diff_ids,
        args: v.args,
        env: v.env,
        user: v.user,
        workdir: v.workdir,
        network: if v.network.is_empty() {
            "default".into()
        } else {
            v.network
        },
        mounts: v.mounts,
        extra_hosts: v
            .extra_hosts
            .iter()
            .map(|h| crate::run::network::parse_add_host(h).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        binds,
        files,
        platform,
        source_date_epoch: v.source_date_epoch,
        location: v.location.unwrap_or_else(|| "RUN".into()),
        hostname: v.hostname,
        insecure: v.insecure,
    })
}

/// Reads what the step's thread sends, ending when it hangs up.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The exit code in the executor's failure message, when the process ran and failed.
fn exit_code_of(msg: &str) -> Option<i64> {
    msg.rsplit_once("exit code: ").and_then(|(_, c)| {
        c.trim()
            .split(|ch: char| !ch.is_ascii_digit() && ch != '-')
            .next()?
            .parse()
            .ok()
    })
}

pub fn handle(ctx: &Ctx, req: &mut Request) -> Reply {
    if *req.method() != Method::Post {
        return Reply::text(405, "POST only");
    }
    if !ctx.authed {
        return Reply::json(
            401,
            &json!({"error": "the RUN backend needs the token (?token= or Authorization: Bearer)"}),
        );
    }
    let ct = header(req, "content-type").unwrap_or("");
    if !ct.starts_with("application/json") {
        return Reply::json(
            415,
            &json!({"error": "send the RunRequest as application/json"}),
        );
    }
    let body = match read_small(req.as_reader(), MAX_JSON) {
        Ok(b) => b,
        Err(e) => return Reply::json(413, &json!({"error": e.to_string()})),
    };
    let input: RunIn = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Reply::json(400, &json!({"error": format!("bad RunRequest: {e}")})),
    };
    let Some(store) = &ctx.st.store else {
        return Reply::json(
            503,
            &json!({"error": "RUN needs the on-disk store; this server keeps its registry in memory"}),
        );
    };
    let secrets = match secrets_in(&input.secrets) {
        Ok(s) => s,
        Err(e) => return Reply::json(400, &json!({"error": e})),
    };
    let rreq = match to_request(input, store) {
        Ok(r) => r,
        Err(e) => return Reply::json(400, &json!({"error": e})),
    };
    let root = ctx.st.cfg.root.clone();
    let ssh = ctx.st.cfg.ssh.clone();
    let (tx, rx) = sync_channel::<Vec<u8>>(64);
    let lock = ctx.st.run_lock.clone();
    // The new layer is the RUN backend's push to its repository: linked there (and kept from `prune` while the
    // tab has not fetched it yet), so the tab reads it back from `/v2/layerwright/run-cache/blobs/`.
    let (run_repo, idle) = (ctx.st.ns.push_repo(RUN_REPO), ctx.st.uploads.idle);
    // The step runs on its own thread so its output streams while it runs; one step at a time (the snapshot
    // cache is shared and the machine is small).
    std::thread::spawn(move || {
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let result = (|| -> Result<Value, String> {
            let store = Store::open(&root).map_err(|e| format!("{e:#}"))?;
            let mut exec = crate::run::RuncExecutor::new(&store).map_err(|e| format!("{e:#}"))?;
            exec.timeout = Some(Duration::from_secs(3600));
            // Written for this step only and removed when it ends (also when it fails).
            let (_secret_files, paths) = SecretFiles::write(&store.tmp_dir(), &secrets)
                .map_err(|e| format!("writing the step's secrets: {e}"))?;
            exec.secrets = paths;
            exec.ssh = ssh;
            let mut blobs = StoreBlobs { store: &store };
            let mut last = b'\n';
            let out_tx = tx.clone();
            let mut out = |b: &[u8]| {
                if let Some(&l) = b.last() {
                    last = l;
                }
                let _ = out_tx.send(b.to_vec());
            };
            let res = exec.run(&rreq, &mut blobs, &mut out);
            if let Ok(Some((d, _))) = res.as_ref().map(|r| r.layer.as_ref()) {
                store
                    .pin(std::slice::from_ref(&d.digest), idle, run_repo.as_deref())
                    .map_err(|e| format!("{e:#}"))?;
            }
            if last != b'\n' {
                let _ = tx.send(b"\n".to_vec());
            }
            match res {
                Ok(r) => Ok(
                    json!({"exitCode": 0, "layer": r.layer.map(|(d, diff)| json!({
                    "digest": d.digest.to_string(), "size": d.size, "mediaType": d.media_type,
                    "diffId": diff.to_string()}))}),
                ),
                Err(e) => {
                    let msg = e.to_string();
                    Ok(
                        json!({"exitCode": exit_code_of(&msg).unwrap_or(-1), "layer": null, "error": msg}),
                    )
                }
            }
        })();
        let v = result.unwrap_or_else(|e| json!({"exitCode": -1, "layer": null, "error": e}));
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        let _ = tx.send(line);
    });
    let reader = ChannelReader {
        rx,
        buf: Vec::new(),
        pos: 0,
    };
    Reply::new(200)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-store")
        .stream(Box::new(reader), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            exit_code_of("RUN: process \"x\" did not complete successfully: exit code: 3"),
            Some(3)
        );
        assert_eq!(exit_code_of("no runtime"), None);
    }
}
