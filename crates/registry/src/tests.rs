//! State-machine tests: operations driven over a scripted transport with canned responses.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Duration;

use base64::Engine as _;
use lw_oci::{media, Descriptor, Digest, Index, Manifest, Platform};

use crate::*;

type Handler = Box<dyn FnMut(&Request, &[u8]) -> Reply>;

enum Reply {
    Ok(ResponseHead, Vec<u8>),
    /// The body breaks off (connection reset) after these bytes.
    Broken(ResponseHead, Vec<u8>),
    Fail(TransportError),
}

fn resp(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut h = ResponseHead::new(status);
    for (k, v) in headers {
        h = h.with_header(k, v);
    }
    Reply::Ok(h, body.to_vec())
}

#[derive(Default)]
struct Mock {
    handlers: VecDeque<Handler>,
    log: Vec<(Request, Vec<u8>)>,
    slept: Vec<Duration>,
}

impl Mock {
    fn on(mut self, f: impl FnMut(&Request, &[u8]) -> Reply + 'static) -> Self {
        self.handlers.push_back(Box::new(f));
        self
    }
    fn done(&self) {
        assert!(
            self.handlers.is_empty(),
            "{} scripted responses unused",
            self.handlers.len()
        );
    }
}

struct MockBody {
    data: io::Cursor<Vec<u8>>,
    broken: bool,
}

impl Read for MockBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads, to exercise chunked feeding.
        let n = buf.len().min(7);
        let got = self.data.read(&mut buf[..n])?;
        if got == 0 && self.broken {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        Ok(got)
    }
}

impl Transport for Mock {
    type Body = MockBody;
    fn send(
        &mut self,
        request: &Request,
        body: SendBody<'_>,
    ) -> Result<(ResponseHead, MockBody), TransportError> {
        let bytes = match body {
            SendBody::Empty => Vec::new(),
            SendBody::Bytes(b) => b.to_vec(),
            SendBody::Reader { reader, len } => {
                let mut v = Vec::new();
                reader.read_to_end(&mut v).unwrap();
                assert_eq!(v.len() as u64, len);
                v
            }
        };
        self.log.push((request.clone(), bytes.clone()));
        let mut h = self
            .handlers
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected request {} {}", request.method, request.url));
        match h(request, &bytes) {
            Reply::Ok(head, body) => Ok((
                head,
                MockBody {
                    data: io::Cursor::new(body),
                    broken: false,
                },
            )),
            Reply::Broken(head, body) => Ok((
                head,
                MockBody {
                    data: io::Cursor::new(body),
                    broken: true,
                },
            )),
            Reply::Fail(e) => Err(e),
        }
    }
    fn sleep(&mut self, d: Duration) {
        self.slept.push(d);
    }
}

/// Collects downloads, serves uploads from memory.
#[derive(Default)]
struct Mem {
    blob: Vec<u8>,
    downloaded: Vec<u8>,
}

impl BlobIo for Mem {
    fn open_upload(
        &mut self,
        _d: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Read + '_>, Error> {
        Ok(Box::new(
            &self.blob[offset as usize..(offset + len) as usize],
        ))
    }
    fn write_download(&mut self, data: &[u8]) -> Result<(), Error> {
        self.downloaded.extend_from_slice(data);
        Ok(())
    }
}

fn client_with(creds: Credentials) -> Client {
    let mut c = ClientConfig::new("reg.example");
    c.credentials = creds;
    c.retry = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
    };
    Client::new(c)
}

fn client() -> Client {
    client_with(Credentials::Anonymous)
}

fn sample_manifest() -> (Vec<u8>, Digest) {
    let config = Descriptor::of(media::OCI_CONFIG, b"{}");
    let layer = Descriptor::of(media::OCI_LAYER_GZIP, b"layer");
    let bytes = lw_oci::to_canonical_json(&Manifest::oci(config, vec![layer]));
    let d = Digest::sha256_of(&bytes);
    (bytes, d)
}

fn query_params(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const BEARER: &str = r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:lib/app:pull""#;

#[test]
fn anonymous_bearer_token_flow_and_reuse() {
    let (bytes, digest) = sample_manifest();
    let b2 = bytes.clone();
    let dstr = digest.to_string();
    let dstr2 = dstr.clone();
    let mut t = Mock::default()
        .on(|r, _| {
            assert_eq!(r.method, Method::Get);
            assert_eq!(r.url, "https://reg.example/v2/lib/app/manifests/v1");
            assert!(r.header("authorization").is_none());
            let accept = r.header("accept").unwrap();
            for m in ops::MANIFEST_ACCEPT {
                assert!(accept.contains(m), "{accept}");
            }
            resp(
                401,
                &[("WWW-Authenticate", BEARER)],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
        })
        .on(|r, _| {
            assert!(r.url.starts_with("https://auth.example/token?"));
            let q = query_params(&r.url);
            assert!(q.contains(&("service".into(), "reg.example".into())));
            assert!(q.contains(&("scope".into(), "repository:lib/app:pull".into())));
            assert!(
                r.header("authorization").is_none(),
                "anonymous token request"
            );
            resp(200, &[], br#"{"token":"T1","expires_in":300}"#)
        })
        .on(move |r, _| {
            assert_eq!(r.header("authorization"), Some("Bearer T1"));
            resp(
                200,
                &[
                    ("Content-Type", media::OCI_MANIFEST),
                    ("Docker-Content-Digest", &dstr),
                ],
                &b2,
            )
        })
        // Second operation on the same client: the token is reused, no challenge round trip.
        .on(move |r, _| {
            assert_eq!(
                r.url,
                format!("https://reg.example/v2/lib/app/manifests/{dstr2}")
            );
            assert_eq!(r.header("authorization"), Some("Bearer T1"));
            resp(401, &[("WWW-Authenticate", BEARER)], b"")
        })
        // The refused token is dropped and a new one fetched.
        .on(|r, _| {
            assert!(r.url.starts_with("https://auth.example/token?"));
            resp(200, &[], br#"{"access_token":"T2"}"#)
        });
    let c = client();
    let m = drive(&mut c.get_manifest("lib/app", "v1").unwrap(), &mut t).unwrap();
    assert_eq!(m.digest, digest);
    assert_eq!(m.media_type, media::OCI_MANIFEST);
    assert!(m.manifest().is_some());
    let b3 = bytes.clone();
    t = t.on(move |r, _| {
        assert_eq!(r.header("authorization"), Some("Bearer T2"));
        resp(200, &[("Content-Type", media::OCI_MANIFEST)], &b3)
    });
    let m2 = drive(
        &mut c.get_manifest("lib/app", digest.as_str()).unwrap(),
        &mut t,
    )
    .unwrap();
    assert_eq!(m2.digest, digest);
    t.done();
    assert_eq!(c.cached_tokens(), 1);
}

#[test]
fn credentialed_token_and_push_scope() {
    let mut t = Mock::default()
        .on(|_, _| {
            resp(
                401,
                &[(
                    "WWW-Authenticate",
                    r#"Bearer realm="https://auth.example/token",service="svc""#,
                )],
                b"",
            )
        })
        .on(|r, _| {
            let q = query_params(&r.url);
            assert!(
                q.contains(&("scope".into(), "repository:lib/app:pull,push".into())),
                "{q:?}"
            );
            assert!(q.contains(&("account".into(), "alice".into())));
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
            );
            assert_eq!(r.header("authorization"), Some(expected.as_str()));
            resp(200, &[], br#"{"token":"PUSH"}"#)
        })
        .on(|r, body| {
            assert_eq!(r.method, Method::Put);
            assert_eq!(r.header("authorization"), Some("Bearer PUSH"));
            assert_eq!(r.header("content-type"), Some(media::OCI_MANIFEST));
            let d = Digest::sha256_of(body);
            resp(201, &[("Docker-Content-Digest", d.as_str())], b"")
        });
    let c = client_with(Credentials::basic("alice", "s3cret"));
    let (bytes, digest) = sample_manifest();
    let got = drive(
        &mut c
            .put_manifest("lib/app", "v1", media::OCI_MANIFEST, bytes)
            .unwrap(),
        &mut t,
    )
    .unwrap();
    assert_eq!(got, digest);
    t.done();
}

#[test]
fn refresh_token_uses_oauth2_post() {
    let mut t = Mock::default()
        .on(|_, _| resp(401, &[("WWW-Authenticate", BEARER)], b""))
        .on(|r, body| {
            assert_eq!(r.method, Method::Post);
            assert_eq!(r.url, "https://auth.example/token");
            assert_eq!(
                r.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            let form = String::from_utf8(body.to_vec()).unwrap();
            let q = query_params(&format!("?{form}"));
            assert!(q.contains(&("grant_type".into(), "refresh_token".into())));
            assert!(q.contains(&("refresh_token".into(), "RT".into())));
            assert!(q.contains(&("service".into(), "reg.example".into())));
            assert!(q.contains(&("scope".into(), "repository:lib/app:pull".into())));
            assert!(q.contains(&("client_id".into(), "layerwright".into())));
            resp(200, &[], br#"{"access_token":"AT"}"#)
        })
        .on(|r, _| {
            assert_eq!(r.header("authorization"), Some("Bearer AT"));
            resp(
                200,
                &[("Content-Type", "application/json")],
                br#"{"name":"lib/app","tags":["a"]}"#,
            )
        });
    let c = client_with(Credentials::RefreshToken {
        username: "<token>".into(),
        token: "RT".into(),
    });
    let tags = drive(&mut c.list_tags("lib/app").unwrap(), &mut t).unwrap();
    assert_eq!(tags, ["a"]);
    t.done();
}

#[test]
fn basic_auth_and_wrong_password() {
    let challenge = [("WWW-Authenticate", r#"Basic realm="Registry Realm""#)];
    let mut t = Mock::default()
        .on(move |r, _| {
            assert!(r.header("authorization").is_none());
            resp(401, &challenge, b"")
        })
        .on(|r, _| {
            assert!(r.header("authorization").unwrap().starts_with("Basic "));
            resp(200, &[], b"{}")
        })
        // Basic is sent up front from now on.
        .on(|r, _| {
            assert!(r.header("authorization").unwrap().starts_with("Basic "));
            resp(200, &[], b"{}")
        });
    let c = client_with(Credentials::basic("bob", "pw"));
    drive(&mut c.ping(), &mut t).unwrap();
    drive(&mut c.ping(), &mut t).unwrap();
    t.done();

    let mut t = Mock::default()
        .on(move |_, _| resp(401, &challenge, b""))
        .on(move |_, _| {
            resp(
                401,
                &challenge,
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
        });
    let c = client_with(Credentials::basic("bob", "wrong"));
    let e = drive(&mut c.ping(), &mut t).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("wrong username or password") && msg.contains("\"bob\""),
        "{msg}"
    );
    t.done();

    // No credentials at all.
    let mut t = Mock::default().on(move |_, _| resp(401, &challenge, b""));
    let e = drive(&mut client().ping(), &mut t).unwrap_err();
    assert!(e.to_string().contains("log in first"), "{e}");
}

#[test]
fn token_server_refusing_credentials_is_clear() {
    let mut t = Mock::default()
        .on(|_, _| resp(401, &[("WWW-Authenticate", BEARER)], b""))
        .on(|_, _| resp(401, &[], br#"{"details":"incorrect username or password"}"#));
    let c = client_with(Credentials::basic("alice", "nope"));
    let e = drive(&mut c.get_manifest("lib/app", "v1").unwrap(), &mut t).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Unauthorized { .. }));
    assert!(
        msg.contains("https://auth.example/token") && msg.contains("wrong username or password"),
        "{msg}"
    );
}

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
fn retries_with_backoff_then_recovers() {
    let mut t = Mock::default()
        .on(|_, _| resp(500, &[], b"oops"))
        .on(|_, _| resp(429, &[("Retry-After", "2")], b""))
        .on(|_, _| Reply::Fail(TransportError::new("connection refused")))
        .on(|_, _| resp(200, &[], br#"{"repositories":["a","b"]}"#));
    let repos = drive(&mut client().catalog(), &mut t).unwrap();
    assert_eq!(repos, ["a", "b"]);
    assert_eq!(
        t.slept,
        [
            Duration::from_millis(100),
            Duration::from_secs(2),
            Duration::from_millis(400)
        ]
    );

    // Exhausted: the last error is reported, with the registry's message.
    let mut t = Mock::default();
    for _ in 0..4 {
        t = t.on(|_, _| {
            resp(
                503,
                &[],
                br#"{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}"#,
            )
        });
    }
    let e = drive(&mut client().catalog(), &mut t).unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(e.to_string().contains("down for maintenance"), "{e}");
    t.done();

    // Not retried: a TLS failure.
    let mut t =
        Mock::default().on(|_, _| Reply::Fail(TransportError::fatal("certificate unknown")));
    let e = drive(&mut client().ping(), &mut t).unwrap_err();
    assert!(
        matches!(e, Error::Transport { .. }) && t.slept.is_empty(),
        "{e}"
    );
}

#[test]
fn tag_pagination_with_link_and_fallback() {
    let mut t = Mock::default()
        .on(|r, _| {
            assert_eq!(r.url, "https://reg.example/v2/a/tags/list?n=2");
            resp(
                200,
                &[("Link", r#"</v2/a/tags/list?n=2&last=b>; rel="next""#)],
                br#"{"name":"a","tags":["a","b"]}"#,
            )
        })
        .on(|r, _| {
            assert_eq!(r.url, "https://reg.example/v2/a/tags/list?n=2&last=b");
            resp(200, &[], br#"{"name":"a","tags":["c"]}"#)
        });
    let tags = drive(&mut client().list_tags("a").unwrap().page_size(2), &mut t).unwrap();
    assert_eq!(tags, ["a", "b", "c"]);
    t.done();

    // Link hidden (browser): full pages lead to `last=` requests.
    let mut t = Mock::default()
        .on(|_, _| resp(200, &[], br#"{"tags":["a","b"]}"#))
        .on(|r, _| {
            assert_eq!(r.url, "https://reg.example/v2/a/tags/list?n=2&last=b");
            resp(200, &[], br#"{"tags":["c","d"]}"#)
        })
        .on(|r, _| {
            assert_eq!(r.url, "https://reg.example/v2/a/tags/list?n=2&last=d");
            resp(200, &[], br#"{"tags":[]}"#)
        });
    let tags = drive(&mut client().list_tags("a").unwrap().page_size(2), &mut t).unwrap();
    assert_eq!(tags, ["a", "b", "c", "d"]);
    t.done();

    // A registry ignoring `last` does not loop forever.
    let mut t = Mock::default()
        .on(|_, _| resp(200, &[], br#"{"tags":["a","b"]}"#))
        .on(|_, _| resp(200, &[], br#"{"tags":["a","b"]}"#));
    let tags = drive(&mut client().list_tags("a").unwrap().page_size(2), &mut t).unwrap();
    assert_eq!(tags, ["a", "b"]);
    t.done();
}

#[test]
fn monolithic_chunked_and_mounted_uploads() {
    let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let desc = Descriptor::of(media::OCI_LAYER_GZIP, &blob);
    let dstr = desc.digest.to_string();

    // Monolithic: HEAD 404, POST 202, PUT 201.
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
    let mut io = Mem {
        blob: blob.clone(),
        ..Default::default()
    };
    let c = client();
    let out = drive_with(&mut c.upload_blob("a", &desc).unwrap(), &mut t, &mut io).unwrap();
    assert_eq!(out, UploadOutcome::Uploaded);
    t.done();

    // Chunked, 400-byte chunks: PATCH 0-399, 400-799, 800-999, then PUT.
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

    // Mount: 201 on the POST, and the token scope covers the source repository.
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

    // Existing blob: HEAD 200 and nothing else.
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

#[test]
fn every_url_carries_the_proxy_prefix() {
    let mut cfg = ClientConfig::new("reg.example");
    cfg.proxy_prefix = Some("https://proxy.example/p/".into());
    let c = Client::new(cfg);
    let mut t = Mock::default()
        .on(|r, _| {
            assert_eq!(r.url, "https://proxy.example/p/https://reg.example/v2/");
            resp(401, &[("WWW-Authenticate", BEARER)], b"")
        })
        .on(|r, _| {
            assert!(r
                .url
                .starts_with("https://proxy.example/p/https://auth.example/token?"));
            resp(200, &[], br#"{"token":"x"}"#)
        })
        .on(|r, _| {
            assert_eq!(r.url, "https://proxy.example/p/https://reg.example/v2/");
            resp(200, &[], b"")
        });
    drive(&mut c.ping(), &mut t).unwrap();
    t.done();
}

#[test]
fn errors_from_the_envelope_and_not_found() {
    let mut t = Mock::default().on(|_, _| {
        resp(404, &[], br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#)
    });
    let e = drive(&mut client().get_manifest("a", "nope").unwrap(), &mut t).unwrap_err();
    assert!(e.is_not_found() && e.has_code("MANIFEST_UNKNOWN"));
    assert_eq!(
        e.to_string(),
        r#"GET https://reg.example/v2/a/manifests/nope: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown ({"Tag":"nope"})"#
    );
    let mut t = Mock::default().on(|_, _| resp(404, &[], b""));
    assert_eq!(
        drive(
            &mut client().head_blob("a", &Digest::sha256_of(b"")).unwrap(),
            &mut t
        )
        .unwrap(),
        None
    );
    assert!(client().get_manifest("Bad Name", "x").is_err());
}

#[test]
fn a_host_can_drive_by_hand() {
    // The loop a browser host writes, without the blocking driver.
    let c = client();
    let mut op = c.ping();
    let Action::Send(req) = op.poll().unwrap() else {
        panic!()
    };
    assert_eq!(req.url, "https://reg.example/v2/");
    assert_eq!(
        op.on_response(ResponseHead::new(200)).unwrap(),
        BodyMode::Discard
    );
    op.on_body_end().unwrap();
    assert!(matches!(op.poll().unwrap(), Action::Done(())));
    assert!(op.poll().is_err(), "polling a finished operation is misuse");
}

#[test]
fn a_configured_token_realm_stands_in_for_a_hidden_challenge() {
    let mut cfg = ClientConfig::new("reg.example");
    cfg.token_realm = Some(auth::BearerRealm {
        realm: "https://auth.example/token".into(),
        service: Some("reg.example".into()),
    });
    let c = Client::new(cfg);
    let mut t = Mock::default()
        // The token comes first: no 401 round trip.
        .on(|r, _| {
            assert!(
                r.url.starts_with(
                    "https://auth.example/token?service=reg.example&scope=repository%3Aa%3Apull"
                ),
                "{}",
                r.url
            );
            resp(200, &[], br#"{"token":"H"}"#)
        })
        .on(|r, _| {
            assert_eq!(r.header("authorization"), Some("Bearer H"));
            resp(200, &[], br#"{"tags":["x"]}"#)
        })
        .on(|r, _| {
            assert_eq!(r.header("authorization"), Some("Bearer H"));
            // The cached token expired; the 401's WWW-Authenticate is hidden from the browser.
            resp(401, &[], b"")
        })
        .on(|_, _| resp(200, &[], br#"{"token":"H2"}"#))
        .on(|r, _| {
            assert_eq!(r.header("authorization"), Some("Bearer H2"));
            resp(200, &[], br#"{"tags":["x"]}"#)
        });
    assert_eq!(
        drive(&mut c.list_tags("a").unwrap(), &mut t).unwrap(),
        ["x"]
    );
    assert_eq!(
        drive(&mut c.list_tags("a").unwrap(), &mut t).unwrap(),
        ["x"]
    );
    t.done();
}
