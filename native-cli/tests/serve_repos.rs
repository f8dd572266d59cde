//! `layerwright serve`'s repositories are isolated, as the distribution spec and its conformance suite expect:
//! one test per finding of the official suite (a DELETE in one repository left the others alone, digest reads,
//! sha512 end to end, an upload surviving a 416, invalid tags, catalog names), plus the store name mapping that
//! keeps a push from re-pointing a name builds use, mounts and blob deletes.

use crate::common;
use crate::common::serve as serve_fixtures;

use common::{busybox_files, make_busybox_image};
use layerwright::store::Store;
use lw_oci::digest::Algorithm;
use lw_oci::{media, Digest, DigestHasher};
use serve_fixtures::{Resp, Served};

fn auth(srv: &Served) -> String {
    srv.bearer()
}

fn digest_of(alg: Algorithm, data: &[u8]) -> Digest {
    let mut h = DigestHasher::new(alg);
    h.update(data);
    h.finish()
}

fn push_blob_as(srv: &Served, repo: &str, alg: Algorithm, data: &[u8]) -> Digest {
    srv.push_blob_as(repo, alg, data)
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

/// An image manifest over a config and one layer, both pushed to `repo` with digests of `alg`.
fn push_image_blobs(srv: &Served, repo: &str, alg: Algorithm, layer: &[u8]) -> Vec<u8> {
    let c = push_blob_as(srv, repo, alg, CONFIG);
    let l = push_blob_as(srv, repo, alg, layer);
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": c.to_string(), "size": CONFIG.len()},
        "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": l.to_string(), "size": layer.len()}],
    }))
    .unwrap()
}

fn put(srv: &Served, repo: &str, r: &str, mt: &str, body: &[u8]) -> Resp {
    srv.req(
        "PUT",
        &format!("/v2/{repo}/manifests/{r}"),
        &[("Authorization", &auth(srv)), ("Content-Type", mt)],
        body,
    )
}

fn get(srv: &Served, method: &str, path: &str) -> Resp {
    srv.req(method, path, &[], b"")
}

#[test]
fn a_manifest_delete_removes_only_that_repositorys_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    let body = push_image_blobs(&srv, "q/a", Algorithm::Sha256, b"layer");
    push_image_blobs(&srv, "q/b", Algorithm::Sha256, b"layer");
    let m = Digest::sha256_of(&body);
    for (repo, tag) in [("q/a", "t1"), ("q/b", "t2")] {
        assert_eq!(put(&srv, repo, tag, media::OCI_MANIFEST, &body).status, 201);
    }
    let r = srv.req(
        "DELETE",
        &format!("/v2/q/a/manifests/{m}"),
        &[("Authorization", &auth(&srv))],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    // Gone from q/a, by digest and by tag; a second DELETE finds nothing.
    assert_eq!(
        get(&srv, "HEAD", &format!("/v2/q/a/manifests/{m}")).status,
        404
    );
    assert_eq!(get(&srv, "GET", "/v2/q/a/manifests/t1").status, 404);
    let again = srv.req(
        "DELETE",
        &format!("/v2/q/a/manifests/{m}"),
        &[("Authorization", &auth(&srv))],
        b"",
    );
    assert_eq!(again.status, 404, "{}", again.text());
    // q/b keeps its tag, its manifest by digest and its place in the catalog.
    let r = get(&srv, "GET", "/v2/q/b/manifests/t2");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(
        get(&srv, "HEAD", &format!("/v2/q/b/manifests/{m}")).status,
        200
    );
    let cat: serde_json::Value =
        serde_json::from_slice(&get(&srv, "GET", "/v2/_catalog").body).unwrap();
    assert_eq!(cat["repositories"], serde_json::json!(["q/b"]));
}

#[test]
fn digest_reads_belong_to_a_repository() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let store = Store::open(&root).unwrap();
    let m = make_busybox_image(&store, "busybox:latest", &[busybox_files(&[])]);
    let srv = Served::start(&root, |_| {});
    let img = store.resolve(&m, None).unwrap();
    let layer = &img.manifest.layers[0].digest;
    // The repository that holds the image serves it by digest, blobs included.
    assert_eq!(
        get(
            &srv,
            "GET",
            &format!("/v2/library/busybox/manifests/{}", m.digest)
        )
        .status,
        200
    );
    assert_eq!(
        get(&srv, "HEAD", &format!("/v2/library/busybox/blobs/{layer}")).status,
        200
    );
    // A repository never pushed holds nothing, whatever the store has.
    let r = get(
        &srv,
        "GET",
        &format!("/v2/never/pushed/manifests/{}", m.digest),
    );
    assert_eq!(r.status, 404);
    assert!(r.text().contains("MANIFEST_UNKNOWN"), "{}", r.text());
    let r = get(&srv, "GET", &format!("/v2/never/pushed/blobs/{layer}"));
    assert_eq!(r.status, 404);
    assert!(r.text().contains("BLOB_UNKNOWN"), "{}", r.text());
    // A blob pushed to one repository is not in another until mounted from it.
    let d = push_blob_as(&srv, "one", Algorithm::Sha256, b"only in one");
    assert_eq!(get(&srv, "HEAD", &format!("/v2/two/blobs/{d}")).status, 404);
    let a = auth(&srv);
    let r = srv.req(
        "POST",
        &format!("/v2/two/blobs/uploads/?mount={d}&from=never"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(
        r.status, 202,
        "a repository that lacks it gives an upload session instead"
    );
    let r = srv.req(
        "POST",
        &format!("/v2/two/blobs/uploads/?mount={d}"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(
        r.status, 202,
        "without from: no automatic content discovery"
    );
    let r = srv.req(
        "POST",
        &format!("/v2/two/blobs/uploads/?mount={d}&from=one"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(get(&srv, "HEAD", &format!("/v2/two/blobs/{d}")).status, 200);
}

#[test]
fn sha512_blobs_manifests_and_indexes_keep_their_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let srv = Served::start(&root, |_| {});
    let body = push_image_blobs(&srv, "s5", Algorithm::Sha512, b"a sha512 layer");
    let m = digest_of(Algorithm::Sha512, &body);
    let r = put(&srv, "s5", m.as_str(), media::OCI_MANIFEST, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(m.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/s5/manifests/{m}").as_str())
    );
    let r = get(&srv, "GET", &format!("/v2/s5/manifests/{m}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("docker-content-digest"), Some(m.as_str()));
    // An index naming that manifest by its sha512 digest, itself pushed by sha512.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": m.to_string(), "size": body.len(),
            "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let i = digest_of(Algorithm::Sha512, &index);
    let r = put(&srv, "s5", i.as_str(), media::OCI_INDEX, &index);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        put(&srv, "s5", "multi", media::OCI_INDEX, &index).status,
        201
    );
    let r = get(&srv, "GET", "/v2/s5/manifests/multi");
    assert_eq!(r.body, index);
    // The store keeps them under blobs/sha512, and prune keeps what the names reach.
    let store = Store::open(&root).unwrap();
    assert!(store.blob_path(&m).starts_with(root.join("blobs/sha512")));
    common::lw_ok(&root, &["prune"]);
    assert!(store.has_blob(&m) && store.has_blob(&i));
}

#[test]
fn an_upload_survives_a_416_on_its_closing_put() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    let a = auth(&srv);
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::sha256_of(&data);
    let r = srv.req(
        "POST",
        "/v2/up/blobs/uploads/",
        &[("Authorization", &a)],
        b"",
    );
    let loc = r.header("location").unwrap().to_string();
    let r = srv.req(
        "PATCH",
        &loc,
        &[("Authorization", &a), ("Content-Range", "0-999")],
        &data[..1000],
    );
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    // The last chunk claims the wrong offset: 416, and the session stays as it was.
    let r = srv.req(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("Authorization", &a), ("Content-Range", "2000-2999")],
        &data[2000..],
    );
    assert_eq!(r.status, 416);
    let r = srv.req("GET", &loc, &[("Authorization", &a)], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-999"));
    let r = srv.req(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("Authorization", &a), ("Content-Range", "1000-2999")],
        &data[1000..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn invalid_tags_are_not_found_and_the_catalog_shows_names_as_pushed() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    for m in ["GET", "HEAD"] {
        let r = get(&srv, m, "/v2/a/manifests/.INVALID_MANIFEST_NAME");
        assert_eq!(r.status, 404, "{m}");
    }
    let r = get(&srv, "GET", "/v2/a/manifests/.INVALID_MANIFEST_NAME");
    assert!(r.text().contains("MANIFEST_UNKNOWN"), "{}", r.text());
    let body = push_image_blobs(&srv, "a", Algorithm::Sha256, b"x");
    let r = put(&srv, "a", ".bad", media::OCI_MANIFEST, &body);
    assert_eq!(r.status, 400, "a PUT with an invalid tag is refused");
    assert!(r.text().contains("TAG_INVALID"), "{}", r.text());
    assert_eq!(put(&srv, "a", "v1", media::OCI_MANIFEST, &body).status, 201);
    let cat: serde_json::Value =
        serde_json::from_slice(&get(&srv, "GET", "/v2/_catalog").body).unwrap();
    assert_eq!(cat["repositories"], serde_json::json!(["a"]));
    let tags: serde_json::Value =
        serde_json::from_slice(&get(&srv, "GET", "/v2/a/tags/list").body).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
}

#[test]
fn a_push_never_re_points_a_name_builds_use() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let store = Store::open(&root).unwrap();
    let local = make_busybox_image(&store, "busybox:local", &[busybox_files(&[])]);
    let srv = Served::start(&root, |_| {});
    let body = push_image_blobs(&srv, "busybox", Algorithm::Sha256, b"pushed");
    assert_eq!(
        put(&srv, "busybox", "local", media::OCI_MANIFEST, &body).status,
        201
    );
    let name_of = |n: &str| {
        store
            .records()
            .unwrap()
            .into_iter()
            .find(|r| r.name.as_deref() == Some(n))
            .map(|r| r.descriptor.digest)
    };
    assert_eq!(
        name_of("docker.io/library/busybox:local"),
        Some(local.digest.clone())
    );
    assert_eq!(
        name_of("localhost/busybox:local"),
        Some(Digest::sha256_of(&body))
    );
    // The pushed repository shows what was pushed; docker's spelling of the built one still shows the build.
    assert_eq!(get(&srv, "GET", "/v2/busybox/manifests/local").body, body);
    let r = get(&srv, "GET", "/v2/library/busybox/manifests/local");
    assert_eq!(
        r.header("docker-content-digest"),
        Some(local.digest.as_str())
    );
    // `--repo-prefix docker.io` keeps the old mapping for those who want pushes to land on docker names.
    drop(srv);
    let srv = Served::start(&root, |c| c.repo_prefix = "docker.io".into());
    assert_eq!(
        put(&srv, "busybox", "local", media::OCI_MANIFEST, &body).status,
        201
    );
    assert_eq!(
        name_of("docker.io/library/busybox:local"),
        Some(Digest::sha256_of(&body))
    );
}

#[test]
fn a_blob_delete_unlinks_a_pushed_blob_but_not_one_a_manifest_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    let a = auth(&srv);
    let loose = push_blob_as(&srv, "d", Algorithm::Sha256, b"loose");
    let r = srv.req("DELETE", &format!("/v2/d/blobs/{loose}"), &[], b"");
    assert_eq!(r.status, 401, "deletes need the token");
    let r = srv.req(
        "DELETE",
        &format!("/v2/d/blobs/{loose}"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        get(&srv, "GET", &format!("/v2/d/blobs/{loose}")).status,
        404
    );
    let body = push_image_blobs(&srv, "d", Algorithm::Sha256, b"needed");
    assert_eq!(put(&srv, "d", "v1", media::OCI_MANIFEST, &body).status, 201);
    let needed = Digest::sha256_of(b"needed");
    let r = srv.req(
        "DELETE",
        &format!("/v2/d/blobs/{needed}"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(
        get(&srv, "GET", &format!("/v2/d/blobs/{needed}")).status,
        200
    );
}

#[test]
fn a_push_by_digest_takes_tag_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Served::start(&tmp.path().join("s"), |_| {});
    let body = push_image_blobs(&srv, "tp", Algorithm::Sha256, b"tagged by parameters");
    let m = Digest::sha256_of(&body);
    let r = put(
        &srv,
        "tp",
        &format!("{m}?tag=1.2.3&tag=latest"),
        media::OCI_MANIFEST,
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("oci-tag"), Some("1.2.3, latest"));
    let tags: serde_json::Value =
        serde_json::from_slice(&get(&srv, "GET", "/v2/tp/tags/list").body).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1.2.3", "latest"]));
    let r = put(
        &srv,
        "tp",
        &format!("{m}?tag=.bad"),
        media::OCI_MANIFEST,
        &body,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn artifacts_pushed_to_serve_stay_out_of_images() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    let srv = Served::start(&root, |_| {});
    let empty = push_blob_as(&srv, "art", Algorithm::Sha256, b"{}");
    let sig = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": "application/x-signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [],
    }))
    .unwrap();
    assert_eq!(
        put(&srv, "art", "sig", media::OCI_MANIFEST, &sig).status,
        201
    );
    let body = push_image_blobs(&srv, "art", Algorithm::Sha256, b"an image");
    assert_eq!(
        put(&srv, "art", "img", media::OCI_MANIFEST, &body).status,
        201
    );
    let out = common::lw_ok(&root, &["images"]);
    assert!(
        out.contains("localhost/art") && out.contains("img"),
        "{out}"
    );
    assert!(!out.contains("sig"), "artifacts are not images: {out}");
}
