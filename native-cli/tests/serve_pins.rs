//! A `prune` in another process while a client pushes to `layerwright serve`: blobs uploaded or mounted but not
//! yet named by a manifest survive it (uploads in progress too) until their pin expires, the manifest PUT then
//! succeeds, and once the image is gone the same blobs are freed at once; an expired pin protects nothing and the
//! manifest PUT says which blob is missing.

use crate::common;
use crate::common::serve as serve_fixtures;

use std::time::Duration;

use common::lw_ok;
use layerwright::store::Store;
use lw_oci::{media, Digest};
use serve_fixtures::Served;

fn auth(srv: &Served) -> String {
    srv.bearer()
}

fn push_blob(srv: &Served, repo: &str, data: &[u8]) -> Digest {
    srv.push_blob_as(repo, lw_oci::digest::Algorithm::Sha256, data)
}

/// An image manifest naming a config and layers by digest.
fn manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, n)| serde_json::json!({"mediaType": media::OCI_LAYER_GZIP, "digest": d.to_string(), "size": n}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config.0.to_string(), "size": config.1},
        "layers": layers,
    }))
    .unwrap()
}

fn put_manifest(srv: &Served, repo: &str, tag: &str, body: &[u8]) -> serve_fixtures::Resp {
    srv.req(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[
            ("Authorization", &auth(srv)),
            ("Content-Type", media::OCI_MANIFEST),
        ],
        body,
    )
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

#[test]
fn prune_elsewhere_keeps_pushed_blobs_until_their_manifest_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let srv = Served::start(&root, |_| {});
    let store = Store::open(&root).unwrap();
    let a = auth(&srv);

    let config = push_blob(&srv, "lw/app", CONFIG);
    let layer1: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let l1 = push_blob(&srv, "lw/other", &layer1);
    // Mounted into the repository the manifest goes to, as docker does for a blob another repository has.
    let r = srv.req(
        "POST",
        &format!("/v2/lw/app/blobs/uploads/?mount={l1}&from=lw/other"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A chunked upload still under way: its first chunk is in.
    let layer2: Vec<u8> = (0..80_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let l2 = Digest::sha256_of(&layer2);
    let r = srv.req(
        "POST",
        "/v2/lw/app/blobs/uploads/",
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    let r = srv.req("PATCH", &loc, &[("Authorization", &a)], &layer2[..40_000]);
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    // A blob written straight to the store, which nothing pins or names: prune frees it as before.
    let loose = store
        .put_bytes("application/octet-stream", b"nobody wants me")
        .unwrap()
        .digest;

    let out = lw_ok(&root, &["prune", "-a"]);
    assert!(out.contains("2 pushed to `layerwright serve`"), "{out}");
    assert!(
        !store.has_blob(&loose),
        "an unpinned, unnamed blob is pruned"
    );
    assert!(store.has_blob(&config) && store.has_blob(&l1));

    // The upload goes on where it stood, and the manifest naming all three is accepted.
    let r = srv.req(
        "PUT",
        &format!("{loc}?digest={l2}"),
        &[("Authorization", &a)],
        &layer2[40_000..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let body = manifest(
        (&config, CONFIG.len()),
        &[(&l1, layer1.len()), (&l2, layer2.len())],
    );
    let r = put_manifest(&srv, "lw/app", "v1", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = srv.req("GET", &format!("/v2/lw/app/blobs/{l2}"), &[], b"");
    assert_eq!(r.body, layer2);

    // Named now, the blobs need no pin: removing the image frees them at once.
    let out = lw_ok(&root, &["prune"]);
    assert!(!out.contains("pushed to"), "{out}");
    // Pushed repositories live under `localhost/` in the store.
    lw_ok(&root, &["rmi", "localhost/lw/app:v1"]);
    lw_ok(&root, &["prune"]);
    let m = Digest::sha256_of(&body);
    let left: Vec<_> = [&config, &l1, &l2, &m]
        .into_iter()
        .filter(|d| store.has_blob(d))
        .collect();
    assert!(left.is_empty(), "still in the store: {left:?}");
}

#[test]
fn an_expired_pin_protects_nothing_and_the_manifest_put_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let srv = Served::start(&root, |c| c.upload_idle = Duration::from_millis(300));
    let store = Store::open(&root).unwrap();
    let config = push_blob(&srv, "lw/late", CONFIG);
    let layer = push_blob(&srv, "lw/late", b"a layer pushed long ago");
    std::thread::sleep(Duration::from_millis(600));
    lw_ok(&root, &["prune"]);
    assert!(!store.has_blob(&config) && !store.has_blob(&layer));
    let body = manifest((&config, CONFIG.len()), &[(&layer, 23)]);
    let r = put_manifest(&srv, "lw/late", "v1", &body);
    assert_eq!(r.status, 400, "{}", r.text());
    let text = r.text();
    assert!(text.contains("MANIFEST_BLOB_UNKNOWN"), "{text}");
    assert!(
        text.contains(&config.to_string()) || text.contains(&layer.to_string()),
        "{text}"
    );
    assert!(
        !store.has_blob(&Digest::sha256_of(&body)),
        "a refused manifest is not stored"
    );
    let r = srv.req("GET", "/v2/lw/late/manifests/v1", &[], b"");
    assert_eq!(r.status, 404);
}
