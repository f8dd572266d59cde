//! Manifests: digest and size checks, platform resolution, and the referrers fallback.

use super::*;

#[test]
fn manifest_digest_mismatch() {
    let (bytes, digest) = sample_manifest();
    let mut tampered = bytes.clone();
    tampered[0] = b' ';
    let t1 = tampered.clone();
    let mut t =
        Mock::default().on(move |_, _| resp(200, &[("Content-Type", media::OCI_MANIFEST)], &t1));
    let e = drive(
        &mut client().get_manifest("a", digest.as_str()).unwrap(),
        &mut t,
    )
    .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");

    // By tag: the Docker-Content-Digest header is checked.
    let d = digest.to_string();
    let mut t = Mock::default().on(move |_, _| {
        resp(
            200,
            &[
                ("Content-Type", media::OCI_MANIFEST),
                ("Docker-Content-Digest", &d),
            ],
            &tampered,
        )
    });
    let e = drive(&mut client().get_manifest("a", "latest").unwrap(), &mut t).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");

    // By tag without the header (hidden by CORS): computed, and the media type read from the document.
    let b = bytes.clone();
    let mut t = Mock::default().on(move |_, _| resp(200, &[], &b));
    let m = drive(&mut client().get_manifest("a", "latest").unwrap(), &mut t).unwrap();
    assert_eq!(m.digest, digest);
    assert_eq!(m.media_type, media::OCI_MANIFEST);
}

#[test]
fn manifest_size_limit() {
    let mut t = Mock::default().on(|_, _| resp(200, &[("Content-Length", "10485760")], b""));
    let e = drive(&mut client().get_manifest("a", "big").unwrap(), &mut t).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                limit: MAX_MANIFEST_SIZE,
                announced: Some(10485760),
                ..
            }
        ),
        "{e}"
    );

    // Without Content-Length: refused once the body passes the limit.
    let big = vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize];
    let mut t = Mock::default().on(move |_, _| resp(200, &[], &big));
    let e = drive(&mut client().get_manifest("a", "big").unwrap(), &mut t).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");

    // Pushing one is refused before sending.
    let e = client()
        .put_manifest(
            "a",
            "big",
            media::OCI_MANIFEST,
            vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize],
        )
        .unwrap();
    let e = drive(&mut { e }, &mut Mock::default()).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
}
#[test]
fn resolve_picks_the_platform_from_an_index() {
    let (amd, amd_d) = sample_manifest();
    let config = Descriptor::of(media::OCI_CONFIG, b"{\"arm\":1}");
    let arm = lw_oci::to_canonical_json(&Manifest::oci(config, vec![]));
    let arm_d = Digest::sha256_of(&arm);
    let mut e1 = Descriptor::new(media::OCI_MANIFEST, amd_d.clone(), amd.len() as u64);
    e1.platform = Some(Platform::parse("linux/amd64").unwrap());
    let mut e2 = Descriptor::new(media::OCI_MANIFEST, arm_d.clone(), arm.len() as u64);
    e2.platform = Some(Platform::parse("linux/arm64").unwrap());
    let index = lw_oci::to_canonical_json(&Index::oci(vec![e1, e2]));
    let arm2 = arm.clone();
    let ad = arm_d.to_string();
    let mut t = Mock::default()
        .on(move |_, _| resp(200, &[("Content-Type", media::OCI_INDEX)], &index))
        .on(move |r, _| {
            assert!(r.url.ends_with(&ad));
            resp(200, &[("Content-Type", media::OCI_MANIFEST)], &arm2)
        });
    let c = client();
    let r = drive(
        &mut c
            .resolve("a", "multi", &Platform::parse("linux/aarch64").unwrap())
            .unwrap(),
        &mut t,
    )
    .unwrap();
    assert_eq!(r.manifest.digest, arm_d);
    assert_eq!(r.descriptor.platform.unwrap().architecture, "arm64");
    assert!(r.index.is_some());

    let idx_bytes = r.index.unwrap().bytes;
    let mut t = Mock::default()
        .on(move |_, _| resp(200, &[("Content-Type", media::OCI_INDEX)], &idx_bytes));
    let e = drive(
        &mut c
            .resolve("a", "multi", &Platform::parse("linux/s390x").unwrap())
            .unwrap(),
        &mut t,
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoMatchingPlatform { .. }), "{e}");
    assert!(e.to_string().contains("linux/amd64, linux/arm64"), "{e}");
}

#[test]
fn referrers_fall_back_to_the_tag_schema() {
    let subject = Digest::sha256_of(b"subject");
    let mut sig = Descriptor::of(media::OCI_MANIFEST, b"sig");
    sig.artifact_type = Some("application/vnd.example.sig".into());
    let mut sbom = Descriptor::of(media::OCI_MANIFEST, b"sbom");
    sbom.artifact_type = Some("application/vnd.example.sbom".into());
    let idx = lw_oci::to_canonical_json(&Index::oci(vec![sig.clone(), sbom]));
    let tag = format!("sha256-{}", subject.encoded());
    let mut t = Mock::default()
        .on(|_, _| resp(404, &[], b"404 page not found"))
        .on(move |r, _| {
            assert!(r.url.ends_with(&format!("/manifests/{tag}")));
            resp(200, &[("Content-Type", media::OCI_INDEX)], &idx)
        });
    let found = drive(
        &mut client()
            .referrers("a", &subject, Some("application/vnd.example.sig"))
            .unwrap(),
        &mut t,
    )
    .unwrap();
    assert_eq!(found, vec![sig]);

    // No referrers API and no tag: empty.
    let mut t = Mock::default()
        .on(|_, _| resp(404, &[], b""))
        .on(|_, _| resp(404, &[], b""));
    assert!(drive(
        &mut client().referrers("a", &subject, None).unwrap(),
        &mut t
    )
    .unwrap()
    .is_empty());
}
