//! Driving behaviour shared by all operations: retries, pagination, proxy prefixes, error
//! envelopes, and driving by hand.

use super::*;

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
