//! Blob download (redirects, resume, verification) and uploads (monolithic, chunked, mounted,
//! restarted).

use super::*;

#[test]
fn blob_redirect_drops_authorization_and_streams_verified_bytes() {
    let data = b"some layer bytes, more than seven".to_vec();
    let digest = Digest::sha256_of(&data);
    let d2 = data.clone();
    let mut t = Mock::default()
        .on(|r, _| {
            assert_eq!(r.header("authorization"), Some("Bearer STATIC"));
            resp(
                307,
                &[("Location", "https://cdn.example/blob?sig=abc")],
                b"",
            )
        })
        .on(move |r, _| {
            assert_eq!(r.url, "https://cdn.example/blob?sig=abc");
            assert!(
                r.header("authorization").is_none(),
                "credentials leaked to another host"
            );
            resp(200, &[("Content-Length", &d2.len().to_string())], &d2)
        });
    let c = client_with(Credentials::BearerToken("STATIC".into()));
    let mut io = Mem::default();
    let info = drive_with(
        &mut c
            .get_blob("lib/app", &digest, Some(data.len() as u64))
            .unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(info.digest, digest);
    assert_eq!(io.downloaded, data);
    t.done();
}

#[test]
fn blob_resumes_with_range_after_a_broken_body() {
    let data: Vec<u8> = (0..100u8).collect();
    let digest = Digest::sha256_of(&data);
    let (first, rest) = (data[..40].to_vec(), data[40..].to_vec());
    let full = data.clone();
    let mut t = Mock::default()
        .on(move |_, _| {
            Reply::Broken(
                ResponseHead::new(200).with_header("Content-Length", "100"),
                first.clone(),
            )
        })
        .on(move |r, _| {
            assert_eq!(r.header("range"), Some("bytes=40-"));
            resp(
                206,
                &[
                    ("Content-Range", "bytes 40-99/100"),
                    ("Content-Length", "60"),
                ],
                &rest,
            )
        });
    let c = client();
    let mut io = Mem::default();
    let info = drive_with(
        &mut c.get_blob("a", &digest, Some(100)).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(info.size, 100);
    assert_eq!(io.downloaded, data);
    assert_eq!(t.slept.len(), 1);

    // A server that ignores Range: the already-received prefix is skipped.
    let first = data[..30].to_vec();
    let mut t = Mock::default()
        .on(move |_, _| Reply::Broken(ResponseHead::new(200), first.clone()))
        .on(move |r, _| {
            assert_eq!(r.header("range"), Some("bytes=30-"));
            resp(200, &[], &full)
        });
    let mut io = Mem::default();
    drive_with(
        &mut c.get_blob("a", &digest, Some(100)).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(io.downloaded, data);
}

#[test]
fn blob_with_wrong_bytes_is_an_error() {
    let digest = Digest::sha256_of(b"expected");
    let mut t = Mock::default().on(|_, _| resp(200, &[], b"tampered"));
    let mut io = Mem::default();
    let e = drive_with(
        &mut client().get_blob("a", &digest, Some(8)).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");

    // Longer than the descriptor: refused as soon as it overflows.
    let mut t = Mock::default().on(|_, _| resp(200, &[], b"expected plus more"));
    let e = drive_with(
        &mut client().get_blob("a", &digest, Some(8)).unwrap(),
        &mut t,
        &mut Mem::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");

    // Truncated, and the retries keep getting truncated bodies: fails after resuming.
    let mut t = Mock::default();
    for _ in 0..4 {
        t = t.on(|_, _| Reply::Broken(ResponseHead::new(200), Vec::new()));
    }
    let e = drive_with(
        &mut client().get_blob("a", &digest, Some(8)).unwrap(),
        &mut t,
        &mut Mem::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");
    t.done();
}
#[test]
fn size_checked_blob_hands_over_the_bytes_and_leaves_the_digest_to_the_caller() {
    let data: Vec<u8> = (0..100u8).collect();
    let desc = Descriptor::new(media::OCI_LAYER_GZIP, Digest::sha256_of(&data), 100);
    // Other bytes of the right size, resumed with Range after a broken body: all handed over, no digest error.
    let other: Vec<u8> = (100..200u8).collect();
    let (first, rest) = (other[..40].to_vec(), other[40..].to_vec());
    let mut t = Mock::default()
        .on(move |_, _| Reply::Broken(ResponseHead::new(200), first.clone()))
        .on(move |r, _| {
            assert_eq!(r.header("range"), Some("bytes=40-"));
            resp(206, &[("Content-Range", "bytes 40-99/100")], &rest)
        });
    let mut io = Mem::default();
    let info = drive_with(
        &mut client().get_blob_size_checked("a", &desc).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!((info.digest, info.size), (desc.digest.clone(), 100));
    assert_eq!(io.downloaded, other);
    t.done();

    // The size is still checked: one byte more is refused.
    let long = vec![7u8; 101];
    let mut t = Mock::default().on(move |_, _| resp(200, &[], &long));
    let e = drive_with(
        &mut client().get_blob_size_checked("a", &desc).unwrap(),
        &mut t,
        &mut Mem::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::SizeMismatch {
                expected: 100,
                actual: 101,
                ..
            }
        ),
        "{e}"
    );
}

/// The 1000-byte blob the upload tests send, its descriptor, and a blob store holding it.
fn upload_fixture() -> (Vec<u8>, Descriptor, String, Mem) {
    let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let desc = Descriptor::of(media::OCI_LAYER_GZIP, &blob);
    let dstr = desc.digest.to_string();
    let io = Mem {
        blob: blob.clone(),
        ..Default::default()
    };
    (blob, desc, dstr, io)
}

/// Monolithic: HEAD 404, POST 202, PUT 201.
#[test]
fn monolithic_upload() {
    let (_, desc, dstr, mut io) = upload_fixture();
    let d = dstr.clone();
    let mut t = Mock::default()
        .on(|r, _| {
            assert_eq!(r.method, Method::Head);
            resp(404, &[], b"")
        })
        .on(|r, _| {
            assert_eq!(r.method, Method::Post);
            assert_eq!(r.url, "https://reg.example/v2/a/blobs/uploads/");
            resp(
                202,
                &[("Location", "/v2/a/blobs/uploads/u1?_state=s1")],
                b"",
            )
        })
        .on(move |r, body| {
            assert_eq!(r.method, Method::Put);
            assert_eq!(
                r.url,
                format!(
                    "https://reg.example/v2/a/blobs/uploads/u1?_state=s1&digest={}",
                    d.replace(':', "%3A")
                )
            );
            assert_eq!(body.len(), 1000);
            assert!(matches!(
                r.body,
                Body::Blob {
                    offset: 0,
                    len: 1000,
                    ..
                }
            ));
            resp(201, &[("Docker-Content-Digest", &d)], b"")
        });
    let c = client();
    let out = drive_with(&mut c.upload_blob("a", &desc).unwrap(), &mut t, &mut io).unwrap();
    assert_eq!(out, UploadOutcome::Uploaded);
    t.done();
}

/// Chunked, 400-byte chunks: PATCH 0-399, 400-799, 800-999, then PUT.
#[test]
fn chunked_upload() {
    let (blob, desc, _, mut io) = upload_fixture();
    let c = client();
    let mut t =
        Mock::default().on(|_, _| resp(202, &[("Location", "https://reg.example/up/1")], b""));
    let mut received = Vec::new();
    for (i, (start, end)) in [(0, 399), (400, 799), (800, 999)].into_iter().enumerate() {
        let expected_url = format!("https://reg.example/up/{}", i + 1);
        let next = format!("https://reg.example/up/{}", i + 2);
        let piece = blob[start..=end].to_vec();
        t = t.on(move |r, body| {
            assert_eq!(r.method, Method::Patch);
            assert_eq!(r.url, expected_url);
            assert_eq!(
                r.header("content-range"),
                Some(format!("{start}-{end}").as_str())
            );
            assert_eq!(r.header("content-type"), Some("application/octet-stream"));
            assert_eq!(body, &piece[..]);
            resp(
                202,
                &[("Location", &next), ("Range", &format!("0-{end}"))],
                b"",
            )
        });
        received.push(());
    }
    t = t.on(|r, body| {
        assert_eq!(r.method, Method::Put);
        assert!(r
            .url
            .starts_with("https://reg.example/up/4?digest=sha256%3A"));
        assert!(body.is_empty());
        resp(201, &[], b"")
    });
    let out = drive_with(
        &mut c
            .upload_blob("a", &desc)
            .unwrap()
            .skip_existing(false)
            .chunk_size(400),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(out, UploadOutcome::UploadedChunked(3));
    t.done();
}

/// Mount: 201 on the POST, and the token scope covers the source repository.
#[test]
fn mounted_upload() {
    let (_, desc, dstr, mut io) = upload_fixture();
    let c = client();
    let d = dstr.clone();
    let mut t = Mock::default()
        .on(|_, _| resp(401, &[("WWW-Authenticate", BEARER)], b""))
        .on(|r, _| {
            let q = query_params(&r.url);
            assert!(
                q.contains(&("scope".into(), "repository:a:pull,push".into())),
                "{q:?}"
            );
            assert!(
                q.contains(&("scope".into(), "repository:other:pull".into())),
                "{q:?}"
            );
            resp(200, &[], br#"{"token":"M"}"#)
        })
        .on(move |r, _| {
            let q = query_params(&r.url);
            assert_eq!(r.method, Method::Post);
            assert!(q.contains(&("mount".into(), d.clone())));
            assert!(q.contains(&("from".into(), "other".into())));
            resp(201, &[("Location", "/v2/a/blobs/x")], b"")
        });
    let out = drive_with(
        &mut c
            .upload_blob("a", &desc)
            .unwrap()
            .skip_existing(false)
            .mount_from("other")
            .unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(out, UploadOutcome::Mounted);
    t.done();
}

/// Existing blob: HEAD 200 and nothing else.
#[test]
fn upload_of_an_existing_blob() {
    let (_, desc, _, mut io) = upload_fixture();
    let c = client();
    let mut t = Mock::default().on(|_, _| resp(200, &[("Content-Length", "1000")], b""));
    assert_eq!(
        drive_with(&mut c.upload_blob("a", &desc).unwrap(), &mut t, &mut io).unwrap(),
        UploadOutcome::Exists
    );
}

#[test]
fn upload_restarts_after_a_failed_put() {
    let blob = b"0123456789".to_vec();
    let desc = Descriptor::of(media::OCI_LAYER_GZIP, &blob);
    let mut t = Mock::default()
        .on(|_, _| resp(202, &[("Location", "/up/1")], b""))
        .on(|_, _| Reply::Fail(TransportError::new("connection reset")))
        .on(|r, _| {
            assert_eq!(r.method, Method::Post, "a new session after the failure");
            resp(202, &[("Location", "/up/2")], b"")
        })
        .on(|r, _| {
            assert!(r.url.contains("/up/2?digest="));
            resp(201, &[], b"")
        });
    let mut io = Mem {
        blob,
        ..Default::default()
    };
    let out = drive_with(
        &mut client()
            .upload_blob("a", &desc)
            .unwrap()
            .skip_existing(false),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(out, UploadOutcome::Uploaded);
    assert_eq!(t.slept.len(), 1);
    t.done();
}
