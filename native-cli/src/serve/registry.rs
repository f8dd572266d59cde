//! The embedded OCI Distribution registry at `/v2/`, over the store. Repository `R` with tag `T` is the store name
//! docker normalisation gives `R:T` (`library/busybox` and `busybox` → `docker.io/library/busybox:T`,
//! `ghcr.io/o/x` → `ghcr.io/o/x:T`), so images built or pulled with the CLI are visible; the catalog lists
//! `library/busybox` for docker.io names and the full name for others. Blobs are shared by every repository.

use std::io::{Read, Seek, SeekFrom};

use super::http1::{Method, Request};
use lw_oci::reference;
use lw_oci::{media, Descriptor, Digest};
use serde_json::{json, Value};

use super::reply::{header, parse_range, query, Reply};
use super::{upload, Ctx};

/// Store name for repository `repo` and tag `tag`.
pub fn store_name(repo: &str, tag: &str) -> Option<String> {
    if !reference::grammar::is_tag(tag) {
        return None;
    }
    reference::parse_docker_ref(&format!("{repo}:{tag}"))
        .ok()
        .filter(|r| r.tag() == Some(tag) && r.digest().is_none())
        .map(|r| r.to_string())
}

/// Repository and tag of a store name, as the embedded registry shows them.
pub fn repo_of(full: &str) -> Option<(String, String)> {
    let r = reference::parse_normalized_named(full).ok()?;
    let tag = r.tag()?.to_string();
    let repo = if r.domain() == "docker.io" {
        r.path().to_string()
    } else {
        format!("{}/{}", r.domain(), r.path())
    };
    Some((repo, tag))
}

/// The canonical repository of a path name (`busybox` → `library/busybox`).
pub fn canonical_repo(repo: &str) -> Option<String> {
    repo_of(&store_name(repo, "latest")?).map(|(r, _)| r)
}

enum Route<'a> {
    Ping,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

fn parse_route<'a>(rest: &'a str) -> Option<Route<'a>> {
    if rest.is_empty() {
        return Some(Route::Ping);
    }
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(n));
    }
    if let Some(n) = rest
        .strip_suffix("/blobs/uploads/")
        .or(rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::Uploads(n));
    }
    if let Some((n, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(Route::Upload(n, id));
    }
    for (sep, f) in [
        (
            "/manifests/",
            Route::Manifest as fn(&'a str, &'a str) -> Route<'a>,
        ),
        ("/blobs/", Route::Blob),
        ("/referrers/", Route::Referrers),
    ] {
        if let Some((n, r)) = rest.rsplit_once(sep) {
            if !r.contains('/') {
                return Some(f(n, r));
            }
        }
    }
    None
}

/// The challenge that makes registry clients send the token as a basic-auth password. Browsers answer a Basic
/// challenge with a password prompt, even to `fetch()` (headless Chromium just waits), so requests from a page
/// (`Sec-Fetch-Mode`, which only browsers send) get a Bearer challenge whose realm is serve's token endpoint on
/// the same origin; registry clients in the page follow it with the token as password.
pub fn unauthorized(req: &Request) -> Reply {
    let r = Reply::oci_error(401, "UNAUTHORIZED", "authentication required: use the token printed by `layerwright serve` as the password (any user name)");
    match (header(req, "sec-fetch-mode"), header(req, "host")) {
        (Some(_), Some(host)) => r.header(
            "WWW-Authenticate",
            format!("Bearer realm=\"http://{host}/api/token\",service=\"layerwright serve\""),
        ),
        _ => r.header("WWW-Authenticate", "Basic realm=\"layerwright serve\""),
    }
}

/// `GET /api/token`: the Bearer flow's token endpoint. The right token (as basic-auth password) gets it back as
/// the bearer token; no credentials get an anonymous token (pulls are open on loopback); wrong ones get 401.
pub fn token_endpoint(ctx: &Ctx, req: &Request) -> Reply {
    let token = if ctx.authed {
        ctx.st.token.clone()
    } else if header(req, "authorization").is_none() {
        "anonymous".to_string()
    } else {
        return Reply::json(
            401,
            &json!({"errors": [{"code": "UNAUTHORIZED", "message": "wrong token", "detail": null}]}),
        );
    };
    Reply::json(200, &json!({"token": token, "access_token": token}))
        .header("Cache-Control", "no-store")
}

pub fn handle(ctx: &Ctx, req: &mut Request) -> Reply {
    let rest = ctx.path.trim_start_matches("/v2").trim_start_matches('/');
    let rest = rest.to_string();
    let Some(route) = parse_route(&rest) else {
        return Reply::oci_error(404, "NAME_UNKNOWN", "no such endpoint");
    };
    let m = req.method().clone();
    let reply = match route {
        Route::Ping => {
            // Clients learn the auth scheme here: without a valid token they get the challenge (docker's ping
            // behaviour), then pulls go on with any or no credentials while pushes need the token.
            if ctx.authed {
                Reply::json(200, &json!({}))
            } else {
                unauthorized(req)
            }
        }
        _ if !ctx.may_read() => unauthorized(req),
        Route::Catalog if m == Method::Get => catalog(ctx),
        Route::Tags(n) if m == Method::Get => with_repo(n, |r| tags(ctx, &r)),
        Route::Manifest(n, r) => with_repo(n, |repo| match m {
            Method::Get | Method::Head => get_manifest(ctx, req, &repo, r),
            Method::Put if ctx.authed => upload::put_manifest(ctx, req, &repo, r),
            Method::Delete if ctx.authed => delete_manifest(ctx, &repo, r),
            Method::Put | Method::Delete => unauthorized(req),
            _ => method_not_allowed(),
        }),
        Route::Blob(n, d) => with_repo(n, |_| {
            match m {
            Method::Get | Method::Head => get_blob(ctx, req, d),
            Method::Delete => Reply::oci_error(
                405,
                "UNSUPPORTED",
                "blobs are shared by the whole store: remove images with `layerwright rmi` and `prune`",
            ),
            _ => method_not_allowed(),
        }
        }),
        Route::Uploads(n) => with_repo(n, |repo| match m {
            Method::Post if ctx.authed => upload::start(ctx, req, &repo),
            Method::Post => unauthorized(req),
            _ => method_not_allowed(),
        }),
        Route::Upload(n, id) => with_repo(n, |repo| {
            if !ctx.authed {
                return unauthorized(req);
            }
            match m {
                Method::Get => ctx.st.uploads.status(&repo, id),
                Method::Patch => ctx.st.uploads.patch(req, &repo, id),
                Method::Put => ctx.st.uploads.finish(ctx, req, &repo, id),
                Method::Delete => ctx.st.uploads.cancel(id),
                _ => method_not_allowed(),
            }
        }),
        Route::Referrers(n, d) if m == Method::Get => with_repo(n, |_| referrers(ctx, d)),
        _ => method_not_allowed(),
    };
    reply.header("Docker-Distribution-API-Version", "registry/2.0")
}

fn method_not_allowed() -> Reply {
    Reply::oci_error(405, "UNSUPPORTED", "method not allowed here")
}

fn with_repo(name: &str, f: impl FnOnce(String) -> Reply) -> Reply {
    // Handlers get the client's spelling (for the URLs they send back); store names normalise it anyway.
    match canonical_repo(name) {
        Some(_) => f(name.to_string()),
        None => Reply::oci_error(
            400,
            "NAME_INVALID",
            format!("invalid repository name {name:?}"),
        ),
    }
}

/// Pagination per the distribution spec: `n` entries after `last`, with a `Link` to the next page.
fn paginate(ctx: &Ctx, mut items: Vec<String>, base: &str) -> (Vec<String>, Option<String>) {
    items.sort();
    items.dedup();
    if let Some(last) = query(&ctx.query, "last") {
        items.retain(|i| i.as_str() > last);
    }
    let n = query(&ctx.query, "n").and_then(|n| n.parse::<usize>().ok());
    match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            let last = items.last().cloned().unwrap_or_default();
            let link = format!(
                "<{base}?n={n}&last={}>; rel=\"next\"",
                super::reply::percent_encode(&last)
            );
            (items, Some(link))
        }
        _ => (items, None),
    }
}

fn catalog(ctx: &Ctx) -> Reply {
    let recs = match ctx.st.store.records() {
        Ok(r) => r,
        Err(e) => return Reply::oci_error(500, "UNKNOWN", format!("{e:#}")),
    };
    let repos = recs
        .iter()
        .filter_map(|r| r.name.as_deref().and_then(repo_of).map(|(r, _)| r))
        .collect();
    let (page, link) = paginate(ctx, repos, "/v2/_catalog");
    let mut r = Reply::json(200, &json!({ "repositories": page }));
    if let Some(l) = link {
        r = r.header("Link", l);
    }
    r
}

fn tags(ctx: &Ctx, name: &str) -> Reply {
    let repo = canonical_repo(name).unwrap_or_default();
    let repo = repo.as_str();
    let recs = match ctx.st.store.records() {
        Ok(r) => r,
        Err(e) => return Reply::oci_error(500, "UNKNOWN", format!("{e:#}")),
    };
    let tags: Vec<String> = recs
        .iter()
        .filter_map(|r| r.name.as_deref().and_then(repo_of))
        .filter(|(r, _)| r == repo)
        .map(|(_, t)| t)
        .collect();
    if tags.is_empty() {
        return Reply::oci_error(
            404,
            "NAME_UNKNOWN",
            format!("repository {repo} is not known"),
        );
    }
    let (page, link) = paginate(ctx, tags, &format!("/v2/{name}/tags/list"));
    let mut r = Reply::json(200, &json!({ "name": name, "tags": page }));
    if let Some(l) = link {
        r = r.header("Link", l);
    }
    r
}

/// The media type a stored manifest declares (or implies).
pub fn manifest_media_type(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if let Some(m) = v.get("mediaType").and_then(Value::as_str) {
        return m.to_string();
    }
    if v.get("manifests").is_some() {
        media::OCI_INDEX.to_string()
    } else {
        media::OCI_MANIFEST.to_string()
    }
}

/// Find a manifest: by tag through the store's names, or by digest among the store's blobs.
fn find_manifest(ctx: &Ctx, repo: &str, r: &str) -> Result<Option<(Descriptor, Vec<u8>)>, Reply> {
    let digest = if r.contains(':') {
        match Digest::parse(r) {
            Ok(d) => d,
            Err(e) => return Err(Reply::oci_error(400, "DIGEST_INVALID", e)),
        }
    } else {
        let Some(name) = store_name(repo, r) else {
            return Err(Reply::oci_error(
                400,
                "TAG_INVALID",
                format!("invalid tag {r:?}"),
            ));
        };
        let recs = ctx
            .st
            .store
            .records()
            .map_err(|e| Reply::oci_error(500, "UNKNOWN", format!("{e:#}")))?;
        match recs
            .into_iter()
            .find(|x| x.name.as_deref() == Some(name.as_str()))
        {
            Some(x) => x.descriptor.digest,
            None => return Ok(None),
        }
    };
    if !ctx.st.store.has_blob(&digest) {
        return Ok(None);
    }
    let bytes = ctx
        .st
        .store
        .read_document(&digest)
        .map_err(|e| Reply::oci_error(500, "UNKNOWN", format!("{e:#}")))?;
    let mt = manifest_media_type(&bytes);
    if !media::is_manifest(&mt) && !media::is_index(&mt) && !mt.contains("manifest") {
        return Ok(None);
    }
    Ok(Some((
        Descriptor::new(&mt, digest, bytes.len() as u64),
        bytes,
    )))
}

fn get_manifest(ctx: &Ctx, req: &Request, repo: &str, r: &str) -> Reply {
    let (desc, bytes) = match find_manifest(ctx, repo, r) {
        Ok(Some(x)) => x,
        Ok(None) => {
            return Reply::oci_error(
                404,
                "MANIFEST_UNKNOWN",
                format!("manifest {repo}:{r} is not known"),
            )
        }
        Err(e) => return e,
    };
    // Accept negotiation: we hold one form of each manifest; a client that names types and accepts none of ours
    // (nor a wildcard) gets 404 as registries answer, rather than a document it cannot read.
    let accepts: Vec<String> = req
        .headers()
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("accept"))
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .collect();
    let ok = accepts.is_empty()
        || accepts.iter().any(|a| a == "*/*" || a == &desc.media_type || a == "application/*" || a == "application/json")
        // Clients that accept docker schema 2 also read OCI (every current client) but not the other way round.
        || (desc.media_type == media::OCI_MANIFEST && accepts.iter().any(|a| a == media::DOCKER_MANIFEST))
        || (desc.media_type == media::OCI_INDEX && accepts.iter().any(|a| a == media::DOCKER_MANIFEST_LIST));
    if !ok {
        return Reply::oci_error(
            404,
            "MANIFEST_UNKNOWN",
            format!(
                "manifest {repo}:{r} is a {}, which the client does not accept",
                desc.media_type
            ),
        );
    }
    Reply::new(200)
        .header("Content-Type", desc.media_type.clone())
        .header("Docker-Content-Digest", desc.digest.to_string())
        .header("ETag", format!("\"{}\"", desc.digest))
        .bytes_keep_type(bytes)
}

impl Reply {
    fn bytes_keep_type(mut self, b: Vec<u8>) -> Reply {
        self.body = super::reply::Body::Bytes(b);
        self
    }
}

fn get_blob(ctx: &Ctx, req: &Request, d: &str) -> Reply {
    let digest = match Digest::parse(d) {
        Ok(d) => d,
        Err(e) => return Reply::oci_error(400, "DIGEST_INVALID", e),
    };
    let Ok(mut f) = ctx.st.store.open_blob(&digest) else {
        return Reply::oci_error(404, "BLOB_UNKNOWN", format!("blob {digest} is not known"));
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let base = Reply::new(200)
        .header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest.to_string())
        .header("ETag", format!("\"{digest}\""))
        .header("Accept-Ranges", "bytes")
        .header("Cache-Control", "max-age=31536000, immutable");
    match parse_range(header(req, "range"), len) {
        None => base.stream(Box::new(f), Some(len)),
        Some(Err(())) => Reply::new(416).header("Content-Range", format!("bytes */{len}")),
        Some(Ok((a, b))) => {
            if f.seek(SeekFrom::Start(a)).is_err() {
                return Reply::oci_error(500, "UNKNOWN", "seek failed");
            }
            let n = b - a + 1;
            let mut r = base.stream(Box::new(f.take(n)), Some(n));
            r.status = 206;
            r.header("Content-Range", format!("bytes {a}-{b}/{len}"))
        }
    }
}

fn delete_manifest(ctx: &Ctx, repo: &str, r: &str) -> Reply {
    let res = if r.contains(':') {
        match Digest::parse(r) {
            // The blob stays (other images may share it); the index entries go. Unknown digests are 404.
            Ok(d) if ctx.st.store.has_blob(&d) => ctx.st.store.remove_image(&d).map(|_| true),
            Ok(_) => Ok(false),
            Err(e) => return Reply::oci_error(400, "DIGEST_INVALID", e),
        }
    } else {
        match store_name(repo, r) {
            Some(n) => ctx.st.store.remove_tag(&n).map(|d| d.is_some()),
            None => return Reply::oci_error(400, "TAG_INVALID", r),
        }
    };
    match res {
        Ok(true) => Reply::new(202),
        Ok(false) => Reply::oci_error(404, "MANIFEST_UNKNOWN", format!("{repo}:{r} is not known")),
        Err(e) => Reply::oci_error(500, "UNKNOWN", format!("{e:#}")),
    }
}

/// Referrers: manifests in the store whose `subject` is the digest, optionally filtered by `artifactType`.
fn referrers(ctx: &Ctx, d: &str) -> Reply {
    let Ok(target) = Digest::parse(d) else {
        return Reply::oci_error(400, "DIGEST_INVALID", d);
    };
    let filter = query(&ctx.query, "artifactType").map(str::to_string);
    let mut out = Vec::new();
    let recs = ctx.st.store.records().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for r in recs {
        if !seen.insert(r.descriptor.digest.clone()) {
            continue;
        }
        let Ok(bytes) = ctx.st.store.read_document(&r.descriptor.digest) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if v.pointer("/subject/digest").and_then(Value::as_str) != Some(target.as_str()) {
            continue;
        }
        let at = v
            .get("artifactType")
            .and_then(Value::as_str)
            .or_else(|| v.pointer("/config/mediaType").and_then(Value::as_str))
            .map(str::to_string);
        if filter.is_some() && filter != at {
            continue;
        }
        let mut e = json!({"mediaType": manifest_media_type(&bytes), "digest": r.descriptor.digest.to_string(),
            "size": bytes.len()});
        if let Some(a) = at {
            e["artifactType"] = json!(a);
        }
        if let Some(a) = v.get("annotations") {
            e["annotations"] = a.clone();
        }
        out.push(e);
    }
    let mut r = Reply::new(200).bytes(
        media::OCI_INDEX,
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": out}),
        )
        .unwrap_or_default(),
    );
    if filter.is_some() {
        r = r.header("OCI-Filters-Applied", "artifactType");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_mapping() {
        assert_eq!(
            store_name("library/busybox", "1").as_deref(),
            Some("docker.io/library/busybox:1")
        );
        assert_eq!(
            store_name("busybox", "latest").as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(
            store_name("ghcr.io/o/x", "v1").as_deref(),
            Some("ghcr.io/o/x:v1")
        );
        assert_eq!(store_name("Bad", "v1"), None);
        assert_eq!(
            repo_of("docker.io/library/busybox:1"),
            Some(("library/busybox".into(), "1".into()))
        );
        assert_eq!(
            repo_of("localhost/a/b:t"),
            Some(("localhost/a/b".into(), "t".into()))
        );
        assert_eq!(
            canonical_repo("busybox").as_deref(),
            Some("library/busybox")
        );
    }

    #[test]
    fn routes() {
        assert!(matches!(parse_route(""), Some(Route::Ping)));
        assert!(matches!(
            parse_route("a/b/manifests/latest"),
            Some(Route::Manifest("a/b", "latest"))
        ));
        assert!(matches!(
            parse_route("a/blobs/uploads/"),
            Some(Route::Uploads("a"))
        ));
        assert!(matches!(
            parse_route("a/blobs/uploads/xyz"),
            Some(Route::Upload("a", "xyz"))
        ));
        assert!(matches!(
            parse_route("a/blobs/sha256:00"),
            Some(Route::Blob("a", "sha256:00"))
        ));
        assert!(matches!(parse_route("a/tags/list"), Some(Route::Tags("a"))));
    }
}
