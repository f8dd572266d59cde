//! Authentication: bearer tokens (anonymous, credentialed, refresh), basic auth, refusals, and
//! a configured token realm.

use super::*;

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
fn a_configured_token_realm_stands_in_for_a_hidden_challenge() {
    let mut cfg = ClientConfig::new("reg.example");
    cfg.token_realm = Some(crate::auth::BearerRealm {
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
