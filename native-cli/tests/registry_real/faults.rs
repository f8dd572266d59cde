//! The registry client against a fake registry that misbehaves: wrong or truncated blobs, server errors, an
//! oversized manifest, a redirect to another host.

use super::*;

/// A fake registry serving one image `lw/fault:v1` whose layer is served by `layer_reply`.
struct FakeImage {
    manifest: Vec<u8>,
    manifest_digest: Digest,
    config: Vec<u8>,
    config_digest: Digest,
    layer: Vec<u8>,
    layer_digest: Digest,
}

fn fake_image() -> FakeImage {
    let layer = gzip(&tar_with_file("f", b"fault test\n"));
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let cd = Descriptor::of(media::OCI_CONFIG, &config);
    let ld = Descriptor::of(media::OCI_LAYER_GZIP, &layer);
    let manifest = lw_oci::to_canonical_json(&Manifest::oci(cd.clone(), vec![ld.clone()]));
    FakeImage {
        manifest_digest: Digest::sha256_of(&manifest),
        manifest,
        config,
        config_digest: cd.digest,
        layer,
        layer_digest: ld.digest,
    }
}

fn serve_image(img: &FakeImage, req: &SeenRequest, layer_reply: impl Fn() -> Reply) -> Reply {
    let path = req.path();
    if path == "/v2/lw/fault/manifests/v1" {
        Reply::new(200)
            .header("Content-Type", media::OCI_MANIFEST)
            .header("Docker-Content-Digest", img.manifest_digest.as_str())
            .body(img.manifest.clone())
    } else if path == format!("/v2/lw/fault/blobs/{}", img.config_digest) {
        Reply::new(200).body(img.config.clone())
    } else if path == format!("/v2/lw/fault/blobs/{}", img.layer_digest) {
        layer_reply()
    } else {
        Reply::new(404)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#)
    }
}

#[test]
fn a_blob_with_wrong_bytes_is_an_error() {
    let img = Arc::new(fake_image());
    let i2 = img.clone();
    let server = FakeServer::start(move |req| {
        serve_image(&i2, req, || {
            let mut bad = i2.layer.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0xff;
            Reply::new(200).body(bad)
        })
    });
    let mut remote = Remote::connect(&server.host(), &opts(Credentials::Anonymous)).unwrap();
    let mut dst = MemoryImages::default();
    let e = remote
        .pull_image("lw/fault", "v1", &amd64(), &mut dst)
        .unwrap_err();
    assert!(
        matches!(
            registry_error(&e),
            lw_registry::Error::DigestMismatch { .. }
        ),
        "{e:#}"
    );
    assert!(
        format!("{e:#}").contains(img.layer_digest.as_str()),
        "{e:#}"
    );
    assert!(
        !dst.blobs.contains_key(&img.layer_digest),
        "a bad blob must not be committed"
    );
    assert!(dst.manifests.is_empty());
}

#[test]
fn a_truncated_response_is_an_error() {
    let img = Arc::new(fake_image());
    let i2 = img.clone();
    let server = FakeServer::start(move |req| {
        serve_image(&i2, req, || {
            Reply::new(200).body(i2.layer.clone()).truncated(10)
        })
    });
    let mut remote = Remote::connect(&server.host(), &opts(Credentials::Anonymous)).unwrap();
    let mut dst = MemoryImages::default();
    let e = remote
        .pull_image("lw/fault", "v1", &amd64(), &mut dst)
        .unwrap_err();
    let re = registry_error(&e);
    assert!(
        matches!(
            re,
            lw_registry::Error::Transport { .. } | lw_registry::Error::SizeMismatch { .. }
        ),
        "{e:#}"
    );
    assert!(!dst.blobs.contains_key(&img.layer_digest));
    // It resumed with Range before giving up.
    let ranged = server
        .requests()
        .iter()
        .filter(|r| r.header("range") == Some("bytes=10-"))
        .count();
    assert!(ranged >= 1, "{:?}", server.requests());
}

#[test]
fn server_errors_twice_then_success_recovers() {
    let img = Arc::new(fake_image());
    let i2 = img.clone();
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let server = FakeServer::start(move |req| {
        if req.path() == "/v2/lw/fault/manifests/v1" && h2.fetch_add(1, Ordering::SeqCst) < 2 {
            return Reply::new(500).body("internal error");
        }
        serve_image(&i2, req, || Reply::new(200).body(i2.layer.clone()))
    });
    let mut remote = Remote::connect(&server.host(), &opts(Credentials::Anonymous)).unwrap();
    let mut dst = MemoryImages::default();
    let pulled = remote
        .pull_image("lw/fault", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_eq!(pulled.manifest.digest, img.manifest_digest);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert_eq!(dst.blobs[&img.layer_digest], img.layer);
}

#[test]
fn a_ten_megabyte_manifest_is_refused() {
    let server = FakeServer::start(|req| {
        if req.path() == "/v2/lw/fault/manifests/v1" {
            let mut body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
            body.resize(10 * 1024 * 1024, b'a');
            body.extend_from_slice(br#""}}"#);
            Reply::new(200)
                .header("Content-Type", media::OCI_MANIFEST)
                .body(body)
        } else {
            Reply::new(404)
        }
    });
    let mut remote = Remote::connect(&server.host(), &opts(Credentials::Anonymous)).unwrap();
    let e = remote
        .pull_image("lw/fault", "v1", &amd64(), &mut MemoryImages::default())
        .unwrap_err();
    assert!(
        matches!(registry_error(&e), lw_registry::Error::TooLarge { .. }),
        "{e:#}"
    );
    assert!(format!("{e:#}").contains("4194304"), "{e:#}");
}

#[test]
fn a_blob_redirect_to_another_host_carries_no_credentials() {
    let img = Arc::new(fake_image());
    let i3 = img.clone();
    let cdn = FakeServer::start(move |_req| Reply::new(200).body(i3.layer.clone()));
    let cdn_url = format!("http://{}/blob/layer?sig=1", cdn.host());
    let i2 = img.clone();
    let server = FakeServer::start(move |req| {
        if req.header("authorization").is_none() {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        let target = cdn_url.clone();
        serve_image(&i2, req, move || {
            Reply::new(307).header("Location", &target)
        })
    });
    let mut remote = Remote::connect(&server.host(), &opts(Credentials::basic("u", "p"))).unwrap();
    let mut dst = MemoryImages::default();
    remote
        .pull_image("lw/fault", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_eq!(dst.blobs[&img.layer_digest], img.layer);
    let seen = cdn.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/blob/layer?sig=1");
    assert!(
        seen[0].header("authorization").is_none(),
        "Authorization leaked to the redirect target"
    );
}
