//! The embedded OCI Distribution registry at `/v2/`, over the store. Each repository sees only its own tags,
//! manifests and blobs ([`super::repos`] maps repositories to store names); blobs are stored once and go later
//! through `prune`'s garbage collection. It works on a [`super::storage::RegistryStorage`]: the store on disk, or
//! memory.

use std::io::{Read, SeekFrom};

use super::http::{Method, Request};
use lw_oci::{media, Descriptor, Digest};
use serde_json::{json, Value};

use super::reply::{header, parse_range, query, Reply};
use super::repos::{split_name, Namespace, RepoView};
use super::storage::BlobReader;
use super::{upload, Ctx};

/// The repository serve's RUN backend takes layers through: with the token, every blob of the store is readable
/// in it, as `/api/run` itself reads any layer of the store by digest.
pub const RUN_REPO: &str = "layerwright/run-cache";

/// The repository `name` as the registry shows it now.
pub fn view(ctx: &Ctx, name: &str) -> Result<RepoView, Reply> {
    let recs = ctx
        .st
        .storage
        .records()
        .map_err(|e| Reply::oci_error(500, "UNKNOWN", format!("{e:#}")))?;
    Ok(RepoView::of(&ctx.st.ns, name, &recs))
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

/// The challenge every client gets: Bearer, with serve's token endpoint on the address the client used as realm.
/// Docker sends no credentials to a Basic challenge unless logged in, and browsers answer one with a password
/// prompt even for `fetch()`; with Bearer, anonymous clients fetch a pull-only token and logged-in ones (the
/// token as password, any user) the token itself. `scope` names what the request needed.
pub fn unauthorized(req: &Request, scope: Option<String>) -> Reply {
    let r = Reply::oci_error(401, "UNAUTHORIZED", "authentication required: log in with the token printed by `layerwright serve` as the password (any user name)");
    let host = header(req, "host").unwrap_or("127.0.0.1");
    let mut challenge =
        format!("Bearer realm=\"http://{host}/api/token\",service=\"layerwright serve\"");
    if let Some(s) = scope {
        challenge.push_str(&format!(",scope=\"{s}\""));
    }
    r.header("WWW-Authenticate", challenge)
}

/// `GET /api/token`: the Bearer flow's token endpoint. The right token (as basic-auth password) gets it back as
/// the bearer token; no credentials get the pull-only token where pulls are open (loopback); others get 401.
pub fn token_endpoint(ctx: &Ctx, req: &Request) -> Reply {
    let token = if ctx.authed {
        ctx.st.token.clone()
    } else if header(req, "authorization").is_none() && ctx.open_reads {
        ctx.st.pull_token.clone()
    } else {
        return Reply::oci_error(401, "UNAUTHORIZED", "wrong token");
    };
    Reply::json(
        200,
        &json!({"token": token, "access_token": token, "expires_in": 3600}),
    )
    .header("Cache-Control", "no-store")
}

pub fn handle(ctx: &Ctx, req: &mut Request) -> Reply {
    let rest = ctx.path.trim_start_matches("/v2").trim_start_matches('/');
    let rest = rest.to_string();
    let Some(route) = parse_route(&rest) else {
        return Reply::oci_error(404, "NAME_UNKNOWN", "no such endpoint");
    };
    let m = *req.method();
    let reply = match route {
        Route::Ping => {
            // Clients learn the auth scheme here: without a token they get the challenge (docker's ping
            // behaviour), then pulls go on with the pull token (or none) while pushes need the token.
            if ctx.authed || ctx.pull_authed {
                Reply::json(200, &json!({}))
            } else {
                unauthorized(req, None)
            }
        }
        Route::Catalog if !ctx.may_read() => unauthorized(req, Some("registry:catalog:*".into())),
        _ if !ctx.may_read() => unauthorized(req, route_scope(&rest, "pull")),
        Route::Catalog if m == Method::Get => catalog(ctx),
        Route::Tags(n) if m == Method::Get => with_repo(n, |r| tags(ctx, &r)),
        Route::Manifest(n, r) => with_repo(n, |repo| match m {
            Method::Get | Method::Head => get_manifest(ctx, req, &repo, r),
            Method::Put if ctx.authed => upload::put_manifest(ctx, req, &repo, r),
            Method::Delete if ctx.authed => delete_manifest(ctx, &repo, r),
            Method::Put | Method::Delete => unauthorized(req, route_scope(&rest, "pull,push")),
            _ => method_not_allowed(),
        }),
        Route::Blob(n, d) => with_repo(n, |repo| match m {
            Method::Get | Method::Head => get_blob(ctx, req, &repo, d),
            Method::Delete if ctx.authed => delete_blob(ctx, &repo, d),
            Method::Delete => unauthorized(req, route_scope(&rest, "pull,push")),
            _ => method_not_allowed(),
        }),
        Route::Uploads(n) => with_repo(n, |repo| match m {
            Method::Post if ctx.authed => upload::start(ctx, req, &repo),
            Method::Post => unauthorized(req, route_scope(&rest, "pull,push")),
            _ => method_not_allowed(),
        }),
        Route::Upload(n, id) => with_repo(n, |repo| {
            if !ctx.authed {
                return unauthorized(req, route_scope(&rest, "pull,push"));
            }
            match m {
                Method::Get => ctx.st.uploads.status(&repo, id),
                Method::Patch => ctx.st.uploads.patch(req, &repo, id),
                Method::Put => ctx.st.uploads.finish(ctx, req, &repo, id),
                Method::Delete => ctx.st.uploads.cancel(id),
                _ => method_not_allowed(),
            }
        }),
        Route::Referrers(n, d) if m == Method::Get => with_repo(n, |repo| referrers(ctx, &repo, d)),
        _ => method_not_allowed(),
    };
    reply.header("Docker-Distribution-API-Version", "registry/2.0")
}

/// The scope a repository route needs, for the challenge (`repository:NAME:pull,push`).
fn route_scope(rest: &str, actions: &str) -> Option<String> {
    let name = match parse_route(rest)? {
        Route::Tags(n) | Route::Uploads(n) => n,
        Route::Manifest(n, _)
        | Route::Blob(n, _)
        | Route::Upload(n, _)
        | Route::Referrers(n, _) => n,
        Route::Ping | Route::Catalog => return None,
    };
    Some(format!("repository:{name}:{actions}"))
}

fn method_not_allowed() -> Reply {
    Reply::oci_error(405, "UNSUPPORTED", "method not allowed here")
}

fn with_repo(name: &str, f: impl FnOnce(String) -> Reply) -> Reply {
    // Handlers get the client's spelling: it is the repository (`busybox` and `library/busybox` are two).
    match Namespace::valid(name) {
        true => f(name.to_string()),
        false => Reply::oci_error(
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
    let recs = match ctx.st.storage.records() {
        Ok(r) => r,
        Err(e) => return Reply::oci_error(500, "UNKNOWN", format!("{e:#}")),
    };
    let repos = recs
        .iter()
        .filter_map(|r| r.name.as_deref().and_then(split_name))
        .filter_map(|(repo, _)| ctx.st.ns.shown(repo))
        .collect();
    let (page, link) = paginate(ctx, repos, "/v2/_catalog");
    let mut r = Reply::json(200, &json!({ "repositories": page }));
    if let Some(l) = link {
        r = r.header("Link", l);
    }
    r
}

fn tags(ctx: &Ctx, name: &str) -> Reply {
    let v = match view(ctx, name) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if v.is_empty() {
        return Reply::oci_error(
            404,
            "NAME_UNKNOWN",
            format!("repository {name} is not known"),
        );
    }
    let (page, link) = paginate(
        ctx,
        v.tags.into_keys().collect(),
        &format!("/v2/{name}/tags/list"),
    );
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

/// Find a manifest of repository `repo`: by tag, or by a digest the repository holds. An invalid tag is simply
/// not there (404, as the spec's endpoint table has it for reads).
fn find_manifest(ctx: &Ctx, repo: &str, r: &str) -> Result<Option<(Descriptor, Vec<u8>)>, Reply> {
    let v = view(ctx, repo)?;
    let desc = if r.contains(':') {
        let d = Digest::parse(r).map_err(|e| Reply::oci_error(400, "DIGEST_INVALID", e))?;
        v.manifest(&*ctx.st.storage, &d)
    } else {
        v.tags.get(r).map(|(_, d)| d.clone())
    };
    let Some(desc) = desc.filter(|d| ctx.st.storage.has_blob(&d.digest)) else {
        return Ok(None);
    };
    let bytes = ctx
        .st
        .storage
        .read_document(&desc.digest)
        .map_err(|e| Reply::oci_error(500, "UNKNOWN", format!("{e:#}")))?;
    let mt = manifest_media_type(&bytes);
    if !media::is_manifest(&mt) && !media::is_index(&mt) && !mt.contains("manifest") {
        return Ok(None);
    }
    Ok(Some((
        Descriptor::new(&mt, desc.digest, bytes.len() as u64),
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

fn get_blob(ctx: &Ctx, req: &Request, repo: &str, d: &str) -> Reply {
    let digest = match Digest::parse(d) {
        Ok(d) => d,
        Err(e) => return Reply::oci_error(400, "DIGEST_INVALID", e),
    };
    let held = (ctx.authed && repo == RUN_REPO) || {
        match view(ctx, repo) {
            Ok(v) => v.has_blob(&*ctx.st.storage, &digest),
            Err(e) => return e,
        }
    };
    // A HEAD without a range needs the size only (a stat), not the bytes.
    let head_only = *req.method() == Method::Head && header(req, "range").is_none();
    let opened = match (held, head_only) {
        (false, _) => None,
        (true, true) => ctx.st.storage.blob_size(&digest).map(|n| {
            let empty: Box<dyn BlobReader> = Box::new(std::io::Cursor::new(Vec::new()));
            (empty, n)
        }),
        (true, false) => ctx.st.storage.open_blob(&digest).ok(),
    };
    let Some((mut f, len)) = opened else {
        return Reply::oci_error(404, "BLOB_UNKNOWN", format!("blob {digest} is not known"));
    };
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

/// DELETE of a manifest: by digest, every name of this repository that points at it goes (tags and the digest
/// name); by tag, that tag. Other repositories keep theirs; blobs go later, through `prune`.
fn delete_manifest(ctx: &Ctx, repo: &str, r: &str) -> Reply {
    let v = match view(ctx, repo) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let names: Vec<String> = if r.contains(':') {
        match Digest::parse(r) {
            Ok(d) => v
                .records
                .iter()
                .filter(|(_, desc)| desc.digest == d)
                .map(|(n, _)| n.clone())
                .collect(),
            Err(e) => return Reply::oci_error(400, "DIGEST_INVALID", e),
        }
    } else {
        v.tags.get(r).map(|(n, _)| n.clone()).into_iter().collect()
    };
    if names.is_empty() {
        return Reply::oci_error(404, "MANIFEST_UNKNOWN", format!("{repo}:{r} is not known"));
    }
    match ctx.st.storage.remove_names(&names) {
        Ok(_) => Reply::new(202),
        Err(e) => Reply::oci_error(500, "UNKNOWN", format!("{e:#}")),
    }
}

/// DELETE of a blob: the repository stops holding it when it holds it only as a pushed blob (its pin); a blob its
/// manifests still refer to stays, as removing it would break them. The bytes go later, through `prune`.
fn delete_blob(ctx: &Ctx, repo: &str, d: &str) -> Reply {
    let digest = match Digest::parse(d) {
        Ok(d) => d,
        Err(e) => return Reply::oci_error(400, "DIGEST_INVALID", e),
    };
    let v = match view(ctx, repo) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if !v.has_blob(&*ctx.st.storage, &digest) {
        return Reply::oci_error(404, "BLOB_UNKNOWN", format!("blob {digest} is not known"));
    }
    let pinned = ctx.st.storage.linked_repos(&digest);
    let mine: Vec<&String> = v
        .store_repos
        .iter()
        .filter(|r| pinned.contains(*r))
        .collect();
    if v.has_blob_through_manifests(&*ctx.st.storage, &digest) {
        return Reply::oci_error(
            405,
            "UNSUPPORTED",
            format!(
                "blob {digest} is referred to by a manifest of {repo}: delete the manifest first"
            ),
        );
    }
    for r in mine {
        ctx.st.storage.unlink(&digest, r);
    }
    Reply::new(202)
}

/// Referrers: manifests in the store whose `subject` is the digest, optionally filtered by `artifactType`.
fn referrers(ctx: &Ctx, repo: &str, d: &str) -> Reply {
    let Ok(target) = Digest::parse(d) else {
        return Reply::oci_error(400, "DIGEST_INVALID", d);
    };
    let filter = query(&ctx.query, "artifactType").map(str::to_string);
    let mut out = Vec::new();
    let v = match view(ctx, repo) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut seen = std::collections::BTreeSet::new();
    for (_, desc) in v.records {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let Ok(bytes) = ctx.st.storage.read_document(&desc.digest) else {
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
        let mut e = json!({"mediaType": manifest_media_type(&bytes), "digest": desc.digest.to_string(),
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
