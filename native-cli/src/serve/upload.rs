//! Pushes to the embedded registry: upload sessions (monolithic, chunked with `Content-Range`, streamed PATCH),
//! cross-repository mounts and manifest PUT by tag or digest. Every blob is hashed as it arrives and moved into
//! the storage only when it matches the digest the client names.
//!
//! Between a blob's upload and the manifest that names it, nothing in the store refers to the blob, so a `prune`
//! in another process would delete it. Every blob a client uploads or mounts is therefore pinned in the store
//! ([`RegistryStorage::pin`]) for as long as an idle upload lives, refreshed whenever a request uses it again (another
//! upload, a mount, a manifest naming it); the pins go once a tagged manifest (or a referrer) makes the blobs
//! reachable. A manifest pushed by digest alone is not reachable either, so it and its blobs stay pinned until
//! an index naming it is tagged, or the pins expire.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::Request;
use lw_oci::{media, Descriptor, Digest, DigestHasher};
use serde_json::Value;

use super::registry::{manifest_media_type, view};
use super::reply::{header, query, read_small, Limited, Reply};
use super::storage::{RegistryStorage, Spool};
use super::{random_token, Ctx, MAX_BLOB};
use crate::store::MAX_DOCUMENT;

struct Session {
    repo: String,
    /// The bytes so far, kept by the storage (a file in the store, or memory).
    spool: Box<dyn Spool>,
    hasher: DigestHasher,
    /// When a request last worked on it: sessions idle longer than [`Uploads::idle`] are abandoned.
    touched: Instant,
}

/// How long an upload may sit without a request before it is dropped (docker's registry purges after a week;
/// a playground server needs far less, and a browser tab that was closed never comes back).
/// Pins of uploaded blobs last as long.
pub const UPLOAD_IDLE: Duration = crate::store::PIN_IDLE;

/// Upload sessions in progress; their bytes live in the storage's spools (on disk in the store's
/// `tmp/uploads`, which `prune` leaves alone until a file there is idle for [`UPLOAD_IDLE`]).
pub struct Uploads {
    storage: Arc<dyn RegistryStorage>,
    sessions: Mutex<HashMap<String, Option<Session>>>,
    pub idle: Duration,
}

fn io_err(e: impl std::fmt::Display) -> Reply {
    Reply::oci_error(500, "UNKNOWN", e)
}

fn upload_location(repo: &str, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

fn accepted(repo: &str, id: &str, len: u64) -> Reply {
    Reply::new(202)
        .header("Location", upload_location(repo, id))
        .header("Docker-Upload-UUID", id)
        .header("Range", format!("0-{}", len.saturating_sub(1)))
}

fn created(repo: &str, d: &Digest) -> Reply {
    Reply::new(201)
        .header("Location", format!("/v2/{repo}/blobs/{d}"))
        .header("Docker-Content-Digest", d.to_string())
}

/// Copy the request body to `out`, hashing it; returns the bytes copied.
fn pump(
    src: &mut dyn Read,
    out: &mut dyn Spool,
    h: &mut DigestHasher,
    limit: u64,
) -> std::io::Result<u64> {
    let mut r = Limited {
        inner: src,
        left: limit,
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        h.update(&buf[..k]);
        out.append(&buf[..k])?;
        n += k as u64;
    }
}

/// POST /v2/NAME/blobs/uploads/: mount, monolithic upload, or a new session.
pub fn start(ctx: &Ctx, req: &mut Request, repo: &str) -> Reply {
    let store = &*ctx.st.storage;
    let Some(target) = ctx.st.ns.push_repo(repo) else {
        return Reply::oci_error(
            400,
            "NAME_INVALID",
            format!("invalid repository name {repo:?}"),
        );
    };
    if let Some(m) = query(&ctx.query, "mount") {
        if let Ok(d) = Digest::parse(m) {
            // A mount takes a blob the `from` repository holds; it is pinned for this repository like an upload,
            // as the manifest may come much later. Otherwise (no `from`: serve does no automatic content
            // discovery) the spec's fallback: a new upload session.
            let held = query(&ctx.query, "from")
                .is_some_and(|from| view(ctx, from).is_ok_and(|v| v.has_blob(store, &d)));
            if held {
                match store.pin(std::slice::from_ref(&d), ctx.st.uploads.idle, Some(&target)) {
                    Ok(present) if present == [true] => return created(repo, &d),
                    Ok(_) => {}
                    Err(e) => return io_err(format!("{e:#}")),
                }
            }
        }
    }
    let st = &ctx.st.uploads;
    if let Some(d) = query(&ctx.query, "digest") {
        if let Err(e) = Digest::parse(d) {
            return Reply::oci_error(400, "DIGEST_INVALID", e);
        }
        // A monolithic upload is a session of one request: its data arrives in a spool too.
        return match st.create(repo) {
            Ok(id) => st.finish(ctx, req, repo, &id),
            Err(e) => io_err(format!("{e:#}")),
        };
    }
    let id = match st.create(repo) {
        Ok(id) => id,
        Err(e) => return io_err(format!("{e:#}")),
    };
    // A POST with a body (some clients send the first chunk here) is appended at once.
    if req.body_length().unwrap_or(0) > 0 {
        return st.patch(req, repo, &id);
    }
    accepted(repo, &id, 0)
}

impl Uploads {
    pub fn new(storage: Arc<dyn RegistryStorage>, idle: Duration) -> Uploads {
        // Spools left by an earlier server are abandoned uploads; only old ones go, in case another server
        // shares the store.
        storage.sweep_uploads(idle);
        Uploads {
            storage,
            sessions: Mutex::new(HashMap::new()),
            idle,
        }
    }

    /// Drop sessions no request has touched for `idle` (a busy session is being worked on, so it stays).
    fn expire(&self) {
        let mut map = self.sessions.lock().expect("uploads lock");
        let idle = self.idle;
        let old: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| s.touched.elapsed() >= idle))
            .map(|(id, _)| id.clone())
            .collect();
        for id in old {
            if let Some(Some(s)) = map.remove(&id) {
                s.spool.cancel();
            }
        }
    }

    fn create(&self, repo: &str) -> anyhow::Result<String> {
        self.expire();
        let id = random_token()?;
        let spool = self.storage.create_upload(&id)?;
        self.sessions.lock().expect("uploads lock").insert(
            id.clone(),
            Some(Session {
                repo: repo.to_string(),
                spool,
                hasher: DigestHasher::new(lw_oci::digest::Algorithm::Sha256),
                touched: Instant::now(),
            }),
        );
        Ok(id)
    }

    /// Take a session out of the table while a request works on it (`None` inside marks it busy).
    fn take(&self, repo: &str, id: &str) -> Result<Session, Reply> {
        let mut map = self.sessions.lock().expect("uploads lock");
        match map.get_mut(id) {
            Some(slot @ Some(_)) => {
                if slot.as_ref().map(|s| s.repo.as_str()) != Some(repo) {
                    return Err(Reply::oci_error(
                        404,
                        "BLOB_UPLOAD_UNKNOWN",
                        "upload belongs to another repository",
                    ));
                }
                Ok(slot.take().expect("checked"))
            }
            Some(None) => Err(Reply::oci_error(
                409,
                "BLOB_UPLOAD_INVALID",
                "upload is busy with another request",
            )),
            None => Err(Reply::oci_error(
                404,
                "BLOB_UPLOAD_UNKNOWN",
                format!("upload {id} is not known"),
            )),
        }
    }

    fn put_back(&self, id: &str, mut s: Session) {
        s.touched = Instant::now();
        // On disk, `prune` judges an upload's idleness by its file's modification time.
        s.spool.touch();
        self.sessions
            .lock()
            .expect("uploads lock")
            .insert(id.to_string(), Some(s));
    }

    fn forget(&self, id: &str, s: Option<Session>) {
        self.sessions.lock().expect("uploads lock").remove(id);
        if let Some(s) = s {
            s.spool.cancel();
        }
    }

    pub fn status(&self, repo: &str, id: &str) -> Reply {
        match self.take(repo, id) {
            Ok(s) => {
                let len = s.spool.offset();
                self.put_back(id, s);
                let mut r = accepted(repo, id, len);
                r.status = 204;
                r
            }
            Err(e) => e,
        }
    }

    pub fn cancel(&self, id: &str) -> Reply {
        let s = self
            .sessions
            .lock()
            .expect("uploads lock")
            .remove(id)
            .flatten();
        match s {
            Some(s) => {
                s.spool.cancel();
                Reply::new(204)
            }
            None => Reply::oci_error(
                404,
                "BLOB_UPLOAD_UNKNOWN",
                format!("upload {id} is not known"),
            ),
        }
    }

    /// Append the body; a `Content-Range: START-END` must start where the upload stands.
    fn append(&self, req: &mut Request, s: &mut Session) -> Result<(), Reply> {
        let len = s.spool.offset();
        if let Some(cr) = header(req, "content-range") {
            let cr = cr
                .trim()
                .trim_start_matches("bytes")
                .trim_start_matches([' ', '=']);
            let start = cr
                .split('-')
                .next()
                .and_then(|a| a.trim().parse::<u64>().ok());
            if start != Some(len) {
                return Err(Reply::new(416)
                    .header("Range", format!("0-{}", len.saturating_sub(1)))
                    .header("Content-Range", format!("bytes */{len}")));
            }
        }
        pump(
            req.as_reader(),
            &mut *s.spool,
            &mut s.hasher,
            MAX_BLOB.saturating_sub(len),
        )
        .map_err(|e| Reply::oci_error(400, "BLOB_UPLOAD_INVALID", e))?;
        Ok(())
    }

    pub fn patch(&self, req: &mut Request, repo: &str, id: &str) -> Reply {
        let mut s = match self.take(repo, id) {
            Ok(s) => s,
            Err(e) => return e,
        };
        match self.append(req, &mut s) {
            Ok(()) => {
                let len = s.spool.offset();
                self.put_back(id, s);
                accepted(repo, id, len)
            }
            Err(e) => {
                // A failed chunk leaves the spool in an unknown state: the session ends.
                if e.status == 416 {
                    self.put_back(id, s);
                } else {
                    self.forget(id, Some(s));
                }
                e
            }
        }
    }

    /// PUT ?digest=: the last chunk (optional), then verify and move into the store.
    pub fn finish(&self, ctx: &Ctx, req: &mut Request, repo: &str, id: &str) -> Reply {
        let digest = match query(&ctx.query, "digest").map(Digest::parse) {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Reply::oci_error(400, "DIGEST_INVALID", e),
            None => {
                return Reply::oci_error(400, "DIGEST_INVALID", "digest query parameter missing")
            }
        };
        let mut s = match self.take(repo, id) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if let Err(e) = self.append(req, &mut s) {
            // A range that does not fit leaves the data as it was: the client may ask where it stands and go on.
            if e.status == 416 {
                self.put_back(id, s);
            } else {
                self.forget(id, Some(s));
            }
            return e;
        }
        let actual = match spooled_digest(&mut s, &digest) {
            Ok(d) => d,
            Err(e) => {
                self.forget(id, Some(s));
                return io_err(e);
            }
        };
        if actual != digest {
            self.forget(id, Some(s));
            return Reply::oci_error(
                400,
                "DIGEST_INVALID",
                format!("uploaded content hashes to {actual}, not {digest}"),
            );
        }
        // The session ends here either way; its spool becomes the blob, or goes.
        self.sessions.lock().expect("uploads lock").remove(id);
        let target = ctx.st.ns.push_repo(repo);
        // Pinned before it appears among the blobs, so a `prune` elsewhere never finds it unpinned.
        let res =
            match self
                .storage
                .pin(std::slice::from_ref(&digest), self.idle, target.as_deref())
            {
                Ok(here) if here == [true] => {
                    s.spool.cancel();
                    Ok(())
                }
                Ok(_) => s.spool.commit(&digest),
                Err(e) => {
                    s.spool.cancel();
                    Err(e)
                }
            };
        match res {
            Ok(()) => created(repo, &digest),
            Err(e) => io_err(format!("{e:#}")),
        }
    }
}

/// The digest of a session's bytes in `want`'s algorithm: the running sha256, or the spool read again.
fn spooled_digest(s: &mut Session, want: &Digest) -> std::io::Result<Digest> {
    if want.algorithm() == lw_oci::digest::Algorithm::Sha256 {
        return Ok(s.hasher.clone().finish());
    }
    let mut h = DigestHasher::new(want.algorithm());
    let mut r = s.spool.reader()?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// PUT /v2/NAME/manifests/REF: verify, check what it refers to is here, store, then tag.
pub fn put_manifest(ctx: &Ctx, req: &mut Request, repo: &str, r: &str) -> Reply {
    match put_manifest_checked(ctx, req, repo, r) {
        Ok(reply) | Err(reply) => reply,
    }
}

/// `put_manifest`, with every refusal as the `Err` reply.
fn put_manifest_checked(ctx: &Ctx, req: &mut Request, repo: &str, r: &str) -> Result<Reply, Reply> {
    let (bytes, v, mt) = read_manifest(req)?;
    let refs = referenced_blobs(&v, &mt)?;
    let Some(target) = ctx.st.ns.push_repo(repo) else {
        return Err(Reply::oci_error(
            400,
            "NAME_INVALID",
            format!("invalid repository name {repo:?}"),
        ));
    };
    let digest = manifest_digest(r, &bytes)?;
    let store = &*ctx.st.storage;
    // Pinning checks presence under the store lock, so what is here now stays until the manifest is tagged (or
    // the pins expire): a `prune` elsewhere cannot take a blob between this check and the tag. The manifest
    // itself is pinned too, as nothing names it between its write and its tag.
    let mut pins = refs.clone();
    pins.push(digest.clone());
    let present = store
        .pin(&pins, ctx.st.uploads.idle, Some(&target))
        .map_err(|e| io_err(format!("{e:#}")))?;
    if let Some((missing, _)) = refs.iter().zip(&present).find(|(_, here)| !**here) {
        return Err(Reply::oci_error(
            400,
            "MANIFEST_BLOB_UNKNOWN",
            format!(
                "blob {missing} is not in the registry (a pushed blob no manifest names is kept for {} \
                 after its last use, then `prune` may remove it)",
                human_duration(ctx.st.uploads.idle)
            ),
        ));
    }
    let desc = Descriptor::new(&mt, digest.clone(), bytes.len() as u64);
    if !store.has_blob(&digest) {
        store
            .put_blob(&digest, Some(desc.size), &mut &bytes[..])
            .map_err(|e| io_err(format!("{e:#}")))?;
    }
    let (name, extra) = names_for(ctx, &target, r, &digest)?;
    for n in std::iter::once(name).chain(extra.iter().map(|t| format!("{target}:{t}"))) {
        store
            .set_name(&n, &desc)
            .map_err(|e| io_err(format!("{e:#}")))?;
    }
    // Named now: what it reaches needs no pin from this repository (an index's children included).
    if let Ok(all) = store.reachable_from(vec![desc.clone()]) {
        store.release(&all);
    }
    let mut reply = Reply::new(201)
        .header("Location", format!("/v2/{repo}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest.to_string());
    if let Some(s) = v.pointer("/subject/digest").and_then(Value::as_str) {
        reply = reply.header("OCI-Subject", s);
    }
    if !extra.is_empty() {
        reply = reply.header("OCI-Tag", extra.join(", "));
    }
    Ok(reply)
}

/// The request's manifest: its bytes, JSON and media type (the Content-Type, else what the JSON says it is; a
/// `mediaType` field must agree with it).
fn read_manifest(req: &mut Request) -> Result<(Vec<u8>, Value, String), Reply> {
    let ct =
        header(req, "content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    let bytes = read_small(req.as_reader(), MAX_DOCUMENT)
        .map_err(|e| Reply::oci_error(413, "SIZE_INVALID", e))?;
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(Reply::oci_error(
                400,
                "MANIFEST_INVALID",
                "the manifest is not a JSON object",
            ))
        }
    };
    let mt = match ct.filter(|c| !c.is_empty() && c != "application/json") {
        Some(c) => c,
        None => manifest_media_type(&bytes),
    };
    if let Some(declared) = v.get("mediaType").and_then(Value::as_str) {
        if declared != mt {
            return Err(Reply::oci_error(
                400,
                "MANIFEST_INVALID",
                format!("Content-Type {mt} but mediaType {declared}"),
            ));
        }
    }
    Ok((bytes, v, mt))
}

/// What the manifest refers to, which must already be here (the spec lets registries insist; it keeps the store
/// whole): an index's manifests, or an image's config and layers; foreign layers are not pushed, so not required.
fn referenced_blobs(v: &Value, mt: &str) -> Result<Vec<Digest>, Reply> {
    let mut needed: Vec<&Value> = Vec::new();
    if media::is_index(mt) {
        needed.extend(
            v.get("manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    } else {
        needed.extend(v.get("config"));
        needed.extend(
            v.get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    }
    let mut refs = Vec::new();
    for d in needed {
        let dg = d.get("digest").and_then(Value::as_str).unwrap_or("");
        let foreign = d
            .get("mediaType")
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains("foreign") || m.contains("nondistributable"));
        match Digest::parse(dg) {
            Ok(d) if !foreign => refs.push(d),
            Ok(_) => {}
            Err(_) if foreign => {}
            Err(_) => {
                return Err(Reply::oci_error(
                    400,
                    "MANIFEST_BLOB_UNKNOWN",
                    format!("blob {dg:?} is not a digest"),
                ))
            }
        }
    }
    Ok(refs)
}

/// The manifest's digest: by digest, the client's algorithm names it (and is what Docker-Content-Digest answers)
/// and the bytes must hash to it; by tag, sha256.
fn manifest_digest(r: &str, bytes: &[u8]) -> Result<Digest, Reply> {
    if !r.contains(':') {
        return Ok(Digest::sha256_of(bytes));
    }
    match Digest::parse(r) {
        Ok(d) if d.verify(bytes) => Ok(d),
        Ok(d) => Err(Reply::oci_error(
            400,
            "DIGEST_INVALID",
            format!("manifest does not hash to {d}"),
        )),
        Err(e) => Err(Reply::oci_error(400, "DIGEST_INVALID", e)),
    }
}

/// The store name the PUT gives the manifest, and the extra tags of its `?tag=` parameters. A tag names it
/// `TARGET:TAG`; a digest, `TARGET@DIGEST` (a registry keeps an untagged manifest, and so does the store: `prune`
/// keeps what a name reaches). By digest, `?tag=` parameters tag it too (distribution-spec 1.1); each accepted tag
/// is named in `OCI-Tag`.
fn names_for<'q>(
    ctx: &'q Ctx<'_>,
    target: &str,
    r: &str,
    digest: &Digest,
) -> Result<(String, Vec<&'q str>), Reply> {
    let by_digest = r.contains(':');
    let name = if by_digest {
        format!("{target}@{digest}")
    } else if lw_oci::reference::grammar::is_tag(r) {
        format!("{target}:{r}")
    } else {
        return Err(Reply::oci_error(
            400,
            "TAG_INVALID",
            format!("invalid tag {r:?}"),
        ));
    };
    let extra: Vec<&str> = if by_digest {
        ctx.query
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.as_str())
            .collect()
    } else {
        Vec::new()
    };
    if extra.len() > MAX_TAG_PARAMS {
        return Err(Reply::oci_error(
            414,
            "TAG_INVALID",
            format!("at most {MAX_TAG_PARAMS} tags per request"),
        ));
    }
    if let Some(bad) = extra
        .iter()
        .find(|t| !lw_oci::reference::grammar::is_tag(t))
    {
        return Err(Reply::oci_error(
            400,
            "TAG_INVALID",
            format!("invalid tag {bad:?}"),
        ));
    }
    Ok((name, extra))
}

/// Most `?tag=` parameters one manifest PUT may carry (the spec asks for at least 10).
const MAX_TAG_PARAMS: usize = 100;

/// `1h`, `90s`: for messages.
fn human_duration(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::storage::DiskStorage;
    use crate::store::Store;

    #[test]
    fn abandoned_uploads_expire_and_their_files_go() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let dir = store.uploads_dir();
        let mut up = Uploads::new(Arc::new(DiskStorage::new(store)), UPLOAD_IDLE);
        let a = up.create("lw/x").unwrap();
        let b = up.create("lw/x").unwrap();
        // Within the idle limit both live.
        assert_eq!(up.status("lw/x", &a).status, 204);
        assert_eq!(up.status("lw/x", &b).status, 204);
        let file_a = dir.join(&a);
        assert!(file_a.exists());
        // Idle past the limit: the next upload sweeps them, files included.
        up.idle = Duration::ZERO;
        let c = up.create("lw/x").unwrap();
        assert!(!file_a.exists());
        assert!(!dir.join(&b).exists());
        assert_eq!(up.status("lw/x", &a).status, 404);
        assert_eq!(up.status("lw/x", &b).status, 404);
        assert!(dir.join(&c).exists());
    }

    #[test]
    fn abandoned_uploads_in_memory_give_their_bytes_back() {
        let mem = crate::serve::mem_store::MemStorage::new(1 << 20);
        let mut up = Uploads::new(Arc::new(mem.clone()), UPLOAD_IDLE);
        let a = up.create("lw/x").unwrap();
        let mut body = Request::new(
            crate::serve::http::Method::Patch,
            "/",
            vec![],
            Box::new(&b"0123456789"[..]),
            Some(10),
        );
        assert_eq!(up.patch(&mut body, "lw/x", &a).status, 202);
        assert_eq!(mem.used(), 10);
        up.idle = Duration::ZERO;
        up.create("lw/x").unwrap();
        assert_eq!(up.status("lw/x", &a).status, 404);
        assert_eq!(mem.used(), 0);
    }
}
