//! The registry client against the real CNCF Distribution registry (`docker-registry`), against skopeo, and
//! against a fake server for faults. Everything listens on 127.0.0.1 only.

use crate::common::registry as support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use layerwright::remote::{MemoryImages, PushOptions, PushReport, Remote, RemoteOptions};
use lw_oci::{media, Descriptor, Digest, Manifest, Platform};
use lw_registry::{Credentials, RetryPolicy, UploadOutcome};
use lw_test_kit::output_ok as run_ok;
use support::*;

fn opts(creds: Credentials) -> RemoteOptions {
    RemoteOptions {
        plain_http: Some(true),
        credentials: Some(creds),
        retry: Some(RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        }),
        ..Default::default()
    }
}

/// A client for `reg` without credentials.
fn anonymous(reg: &Registry) -> Remote {
    Remote::connect(&reg.host(), &opts(Credentials::Anonymous)).unwrap()
}

/// Push `root` from `src` with the default options.
fn push(
    remote: &mut Remote,
    repo: &str,
    tag: &str,
    root: &Descriptor,
    src: &mut MemoryImages,
) -> PushReport {
    remote
        .push_image(repo, tag, root, src, &PushOptions::default())
        .unwrap()
}

/// A linux/amd64 and a linux/arm64 image, each with one `arch` file of the given content, and
/// an index over both: `(amd64, arm64, index)`.
fn two_platform_index(
    src: &mut MemoryImages,
    amd64: &[u8],
    arm64: &[u8],
) -> (Descriptor, Descriptor, Descriptor) {
    let amd = make_image(src, "linux", "amd64", &[("arch", amd64)]);
    let arm = make_image(src, "linux", "arm64", &[("arch", arm64)]);
    let index = make_index(src, vec![amd.clone(), arm.clone()]);
    (amd, arm, index)
}

/// `skopeo inspect --raw` of a `docker://` image reference.
fn skopeo_raw(image: &str) -> Vec<u8> {
    run_ok(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", image]))
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn registry_error(e: &anyhow::Error) -> &lw_registry::Error {
    e.downcast_ref::<lw_registry::Error>()
        .unwrap_or_else(|| panic!("not a registry error: {e:#}"))
}

/// A two-layer image in memory.
fn small_image(mem: &mut MemoryImages, tag: &str) -> Descriptor {
    make_image(
        mem,
        "linux",
        "amd64",
        &[
            ("hello.txt", format!("hello from {tag}\n").as_bytes()),
            ("etc/motd", b"welcome\n"),
        ],
    )
}

fn assert_same_image(src: &MemoryImages, dst: &MemoryImages, root: &Descriptor) {
    let (_, bytes) = &src.manifests[&root.digest];
    let m: Manifest = serde_json::from_slice(bytes).unwrap();
    for d in std::iter::once(&m.config).chain(m.layers.iter()) {
        let got = dst
            .blobs
            .get(&d.digest)
            .unwrap_or_else(|| panic!("blob {} not pulled", d.digest));
        assert_eq!(got, &src.blobs[&d.digest]);
        assert_eq!(Digest::sha256_of(got), d.digest);
    }
    assert_eq!(dst.manifests[&root.digest].1, *bytes);
}

#[test]
fn push_then_pull_round_trip_keeps_digests() {
    lw_test_kit::require!("docker-registry");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "roundtrip");
    // Scheme chosen automatically: HTTPS first, then plain HTTP for a loopback registry.
    let mut remote = Remote::connect(
        &reg.host(),
        &RemoteOptions {
            credentials: Some(Credentials::Anonymous),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(remote.client().base_url().starts_with("http://"));
    let report = push(&mut remote, "lw/roundtrip", "v1", &root, &mut src);
    assert_eq!(report.digest, root.digest);
    assert_eq!(report.blobs.len(), 3);
    assert!(
        report
            .blobs
            .iter()
            .all(|(_, o)| *o == UploadOutcome::Uploaded),
        "{report:?}"
    );

    // Pushing again uploads nothing.
    let again = push(&mut remote, "lw/roundtrip", "v1", &root, &mut src);
    assert!(
        again.blobs.iter().all(|(_, o)| *o == UploadOutcome::Exists),
        "{again:?}"
    );

    let mut dst = MemoryImages::default();
    let pulled = remote
        .pull_image("lw/roundtrip", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_eq!(pulled.manifest.digest, root.digest);
    assert_eq!(pulled.manifest.media_type, media::OCI_MANIFEST);
    assert!(pulled.index.is_none());
    assert_eq!(pulled.downloaded.len(), 3);
    assert_same_image(&src, &dst, &root);
    // By digest too, and nothing is downloaded twice.
    let by_digest = remote
        .pull_image("lw/roundtrip", root.digest.as_str(), &amd64(), &mut dst)
        .unwrap();
    assert!(by_digest.downloaded.is_empty());

    // Listing, HEAD, delete.
    let c = remote.client().clone();
    let tags = remote
        .run(&mut c.list_tags("lw/roundtrip").unwrap())
        .unwrap();
    assert_eq!(tags, ["v1"]);
    let repos = remote.run(&mut c.catalog()).unwrap();
    assert!(repos.contains(&"lw/roundtrip".to_string()), "{repos:?}");
    let head = remote
        .run(&mut c.head_manifest("lw/roundtrip", "v1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(head.digest.as_ref(), Some(&root.digest));
    assert_eq!(head.size, Some(root.size));
    remote
        .run(
            &mut c
                .delete_manifest("lw/roundtrip", root.digest.as_str())
                .unwrap(),
        )
        .unwrap();
    let e = remote
        .run(&mut c.get_manifest("lw/roundtrip", "v1").unwrap())
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
}

#[test]
fn lists_paginate_against_the_real_registry() {
    lw_test_kit::require!("docker-registry");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "tags");
    let mut remote = anonymous(&reg);
    let names = ["a", "b", "c", "d", "e"];
    for t in names {
        push(&mut remote, "lw/tags", t, &root, &mut src);
    }
    for r in ["lw/other1", "lw/other2"] {
        push(&mut remote, r, "v1", &root, &mut src);
    }
    let c = remote.client().clone();
    // Distribution 2.8 ignores `n` for tags and answers everything in directory order: the client must still
    // terminate and return each tag once.
    let mut tags = remote
        .run(&mut c.list_tags("lw/tags").unwrap().page_size(2))
        .unwrap();
    tags.sort();
    assert_eq!(tags, names);
    // The catalog paginates with `Link: <...>; rel="next"`.
    let repos = remote.run(&mut c.catalog().page_size(1)).unwrap();
    assert_eq!(repos, ["lw/other1", "lw/other2", "lw/tags"]);
}

#[test]
fn htpasswd_basic_auth() {
    lw_test_kit::require!("docker-registry", "htpasswd");
    let tmp = tempfile::tempdir().unwrap();
    let file = htpasswd_file(tmp.path(), &[("alice", "wonderland")]);
    let reg = Registry::start(RegistryAuth::Htpasswd(file));
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "basic");

    let mut remote = Remote::connect(
        &reg.host(),
        &opts(Credentials::basic("alice", "wonderland")),
    )
    .unwrap();
    remote.ping().unwrap();
    push(&mut remote, "lw/basic", "v1", &root, &mut src);
    let mut dst = MemoryImages::default();
    let pulled = remote
        .pull_image("lw/basic", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_eq!(pulled.manifest.digest, root.digest);
    assert_same_image(&src, &dst, &root);

    // Wrong password: a clear error.
    let mut bad =
        Remote::connect(&reg.host(), &opts(Credentials::basic("alice", "queen"))).unwrap();
    let e = bad.ping().unwrap_err();
    assert!(matches!(e, lw_registry::Error::Unauthorized { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("wrong username or password")
            && msg.contains("alice")
            && msg.contains(&reg.host()),
        "{msg}"
    );
    let e = bad
        .pull_image("lw/basic", "v1", &amd64(), &mut MemoryImages::default())
        .unwrap_err();
    assert!(
        matches!(registry_error(&e), lw_registry::Error::Unauthorized { .. }),
        "{e:#}"
    );

    // No credentials.
    let mut anon = anonymous(&reg);
    let e = anon.ping().unwrap_err();
    assert!(e.to_string().contains("log in first"), "{e}");
}

#[test]
fn bearer_token_auth() {
    lw_test_kit::require!("docker-registry", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(tmp.path(), &[("bob", "builder")]);
    let reg = Registry::start(tokens.registry_auth());
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "token");

    let mut remote =
        Remote::connect(&reg.host(), &opts(Credentials::basic("bob", "builder"))).unwrap();
    remote
        .push_image("lw/token", "v1", &root, &mut src, &PushOptions::default())
        .unwrap_or_else(|e| panic!("{e:#}\nregistry log:\n{}", reg.log_text()));
    // One token (pull,push on lw/token) served the whole push.
    let first = tokens.requests();
    assert_eq!(first.len(), 1, "{first:?}");
    let q = first[0].query();
    assert!(
        q.contains(&("scope".into(), "repository:lw/token:pull,push".into())),
        "{q:?}"
    );
    assert!(
        q.contains(&("service".into(), tokens.service.clone())),
        "{q:?}"
    );
    assert!(first[0]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));

    // The pull reuses it (its scopes cover pull).
    let mut dst = MemoryImages::default();
    let pulled = remote
        .pull_image("lw/token", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_eq!(pulled.manifest.digest, root.digest);
    assert_same_image(&src, &dst, &root);
    assert_eq!(tokens.requests().len(), 1);
    assert_eq!(remote.client().cached_tokens(), 1);

    // The catalog needs another scope, hence another token.
    let c = remote.client().clone();
    let repos = remote.run(&mut c.catalog()).unwrap();
    assert_eq!(repos, ["lw/token"]);
    assert_eq!(tokens.requests().len(), 2);

    // Wrong password: the token server says no, and the error says so.
    let mut bad = Remote::connect(&reg.host(), &opts(Credentials::basic("bob", "nope"))).unwrap();
    let e = bad
        .pull_image("lw/token", "v1", &amd64(), &mut MemoryImages::default())
        .unwrap_err();
    let re = registry_error(&e);
    assert!(
        matches!(re, lw_registry::Error::Unauthorized { .. }),
        "{e:#}"
    );
    let msg = re.to_string();
    assert!(
        msg.contains("wrong username or password") && msg.contains(&tokens.realm()),
        "{msg}"
    );

    // Anonymous: a token without access, then a refusal that says to log in.
    let mut anon = anonymous(&reg);
    let e = anon
        .pull_image("lw/token", "v1", &amd64(), &mut MemoryImages::default())
        .unwrap_err();
    let msg = registry_error(&e).to_string();
    assert!(msg.contains("log in first"), "{msg}");
}

#[test]
fn chunked_upload_of_a_100mb_layer() {
    lw_test_kit::require!("docker-registry");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    // 100 MB of incompressible-looking bytes (xorshift), as a layer blob.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut big = Vec::with_capacity(100_000_000);
    while big.len() < 100_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    big.truncate(100_000_000);
    let layer = src.add_blob(media::OCI_LAYER_GZIP, big);
    let config = src.add_blob(
        media::OCI_CONFIG,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
    );
    let root = src.add_manifest(
        media::OCI_MANIFEST,
        lw_oci::to_canonical_json(&Manifest::oci(config, vec![layer.clone()])),
    );
    let mut o = opts(Credentials::Anonymous);
    o.chunk_size = Some(16 * 1024 * 1024);
    let mut remote = Remote::connect(&reg.host(), &o).unwrap();
    let report = push(&mut remote, "lw/big", "v1", &root, &mut src);
    let outcome = report
        .blobs
        .iter()
        .find(|(d, _)| *d == layer.digest)
        .unwrap()
        .1;
    assert_eq!(
        outcome,
        UploadOutcome::UploadedChunked(6),
        "100 MB in 16 MiB chunks"
    );
    let c = remote.client().clone();
    let size = remote
        .run(&mut c.head_blob("lw/big", &layer.digest).unwrap())
        .unwrap();
    assert_eq!(size, Some(100_000_000));
    let mut dst = MemoryImages::default();
    remote
        .pull_image("lw/big", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_eq!(Digest::sha256_of(&dst.blobs[&layer.digest]), layer.digest);
}

#[test]
fn cross_repository_mount() {
    lw_test_kit::require!("docker-registry");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "mount");
    let mut remote = anonymous(&reg);
    push(&mut remote, "lw/source", "v1", &root, &mut src);
    let report = remote
        .push_image(
            "lw/dest",
            "v1",
            &root,
            &mut src,
            &PushOptions {
                mount_from: Some("lw/source".into()),
            },
        )
        .unwrap();
    assert_eq!(report.blobs.len(), 3);
    assert!(
        report
            .blobs
            .iter()
            .all(|(_, o)| *o == UploadOutcome::Mounted),
        "every blob mounted (201 on the mount POST): {report:?}"
    );
    let mut dst = MemoryImages::default();
    remote
        .pull_image("lw/dest", "v1", &amd64(), &mut dst)
        .unwrap();
    assert_same_image(&src, &dst, &root);
}

#[test]
fn skopeo_reads_what_we_push() {
    lw_test_kit::require!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "skopeo");
    let mut remote = anonymous(&reg);
    push(&mut remote, "lw/skopeo", "v1", &root, &mut src);
    let image = format!("docker://{}/lw/skopeo:v1", reg.host());
    let out = run_ok(Command::new("skopeo").args(["inspect", "--tls-verify=false", &image]));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["Digest"].as_str(), Some(root.digest.as_str()), "{v}");
    assert_eq!(v["Architecture"].as_str(), Some("amd64"));
    assert_eq!(v["Layers"].as_array().map(|l| l.len()), Some(2));
    let raw = skopeo_raw(&image);
    assert_eq!(raw, src.manifests[&root.digest].1);
}

#[test]
fn we_pull_a_multi_platform_image_pushed_by_skopeo() {
    lw_test_kit::require!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let (amd, arm, index) = two_platform_index(&mut src, b"amd64\n", b"arm64\n");
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_oci_layout(&src, &layout, &index, "v1");
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    run_ok(Command::new("skopeo").args([
        "--policy",
        policy.to_str().unwrap(),
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/lw/multi:v1", reg.host()),
    ]));

    let mut remote = anonymous(&reg);
    for (platform, want) in [
        ("linux/arm64", &arm),
        ("linux/amd64", &amd),
        ("linux/aarch64/v8", &arm),
    ] {
        let mut dst = MemoryImages::default();
        let pulled = remote
            .pull_image(
                "lw/multi",
                "v1",
                &Platform::parse(platform).unwrap(),
                &mut dst,
            )
            .unwrap();
        assert_eq!(pulled.manifest.digest, want.digest, "{platform}");
        let idx = pulled.index.expect("the tag names an index");
        assert_eq!(idx.digest, index.digest, "skopeo kept our index");
        assert_eq!(
            pulled.descriptor.platform.as_ref().unwrap(),
            want.platform.as_ref().unwrap()
        );
        assert_same_image(&src, &dst, want);
        let config: lw_oci::ImageConfig =
            serde_json::from_slice(&dst.blobs[&pulled.config.digest]).unwrap();
        assert_eq!(
            Some(config.architecture.as_str()),
            want.platform.as_ref().map(|p| p.architecture.as_str())
        );
    }
    let e = remote
        .pull_image(
            "lw/multi",
            "v1",
            &Platform::parse("linux/s390x").unwrap(),
            &mut MemoryImages::default(),
        )
        .unwrap_err();
    let msg = registry_error(&e).to_string();
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/amd64") && msg.contains("linux/arm64"),
        "{msg}"
    );
}

#[test]
fn we_push_an_index_and_skopeo_reads_each_platform() {
    lw_test_kit::require!("docker-registry", "skopeo");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let (amd, arm, index) = two_platform_index(&mut src, b"amd64 by us\n", b"arm64 by us\n");
    let mut remote = anonymous(&reg);
    let report = push(&mut remote, "lw/ours-multi", "v1", &index, &mut src);
    assert_eq!(report.digest, index.digest);
    assert_eq!(
        report.manifests,
        [amd.digest.clone(), arm.digest.clone()],
        "children pushed by digest"
    );
    let image = format!("docker://{}/lw/ours-multi:v1", reg.host());
    let raw = skopeo_raw(&image);
    assert_eq!(raw, src.manifests[&index.digest].1);
    for (arch, want) in [("amd64", &amd), ("arm64", &arm)] {
        let out = run_ok(Command::new("skopeo").args([
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            "inspect",
            "--tls-verify=false",
            &image,
        ]));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Architecture"].as_str(), Some(arch), "{v}");
        assert_eq!(
            v["Layers"][0].as_str(),
            Some(src_layer(&src, want).as_str()),
            "{v}"
        );
    }
}

fn src_layer(src: &MemoryImages, m: &Descriptor) -> String {
    let man: Manifest = serde_json::from_slice(&src.manifests[&m.digest].1).unwrap();
    man.layers[0].digest.to_string()
}

#[test]
fn referrers_fall_back_to_the_tag_schema_on_a_registry_without_the_api() {
    lw_test_kit::require!("docker-registry");
    let reg = Registry::start(RegistryAuth::None);
    let mut src = MemoryImages::default();
    let root = small_image(&mut src, "referrers");
    let mut remote = anonymous(&reg);
    push(&mut remote, "lw/refs", "v1", &root, &mut src);
    let c = remote.client().clone();
    // Nothing yet: the registry has no referrers API (404) and there is no referrers tag.
    let none = remote
        .run(&mut c.referrers("lw/refs", &root.digest, None).unwrap())
        .unwrap();
    assert!(none.is_empty());
    // A signature-like artifact, listed in the referrers tag as a client without the API maintains it.
    let empty = src.add_blob(media::OCI_EMPTY, b"{}".to_vec());
    let mut art = Manifest::oci(empty, vec![]);
    art.artifact_type = Some("application/vnd.example.sig".into());
    art.subject = Some(Descriptor::new(
        media::OCI_MANIFEST,
        root.digest.clone(),
        root.size,
    ));
    let art_desc = src.add_manifest(media::OCI_MANIFEST, lw_oci::to_canonical_json(&art));
    push(
        &mut remote,
        "lw/refs",
        art_desc.digest.as_str(),
        &art_desc,
        &mut src,
    );
    let mut entry = art_desc.clone();
    entry.artifact_type = art.artifact_type.clone();
    let tag_index = make_index(&mut src, vec![entry.clone()]);
    let tag = format!("sha256-{}", root.digest.encoded());
    push(&mut remote, "lw/refs", &tag, &tag_index, &mut src);
    let found = remote
        .run(
            &mut c
                .referrers("lw/refs", &root.digest, Some("application/vnd.example.sig"))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(found, [entry]);
    let other = remote
        .run(
            &mut c
                .referrers(
                    "lw/refs",
                    &root.digest,
                    Some("application/vnd.example.sbom"),
                )
                .unwrap(),
        )
        .unwrap();
    assert!(other.is_empty());
}

// Faults, from a fake registry.
mod faults;
