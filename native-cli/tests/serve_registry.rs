//! `layerwright serve`'s embedded registry: skopeo and the CLI push to it and pull from it (digests kept, the token
//! needed for pushes only), and the distribution API details: chunked uploads, ranges, pagination, catalog,
//! mounts, deletes, referrers and the store name mapping.

use crate::common;
use crate::common::serve as serve_fixtures;

use std::process::Command;

use common::{busybox_files, make_busybox_image};
use layerwright::store::Store;
use lw_oci::Digest;
use serve_fixtures::{skopeo_digest, Served};

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo")
}

#[test]
fn skopeo_pushes_with_the_token_and_pulls_without_it_keeping_digests() {
    lw_test_kit::require!("skopeo", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let src_root = tmp.path().join("src");
    let src = Store::open(&src_root).unwrap();
    let m = make_busybox_image(
        &src,
        "busybox:latest",
        &[busybox_files(&[("etc/hi", b"hi\n")])],
    );
    let srv = Served::start(&tmp.path().join("served"), |_| {});
    let from = format!(
        "oci:{}:docker.io/library/busybox:latest",
        src_root.display()
    );
    let dest = format!("docker://{}/lwtest/bb:v1", srv.host());

    // No token: the push is refused.
    let o = skopeo(&["copy", "--dest-tls-verify=false", &from, &dest]);
    assert!(!o.status.success(), "push without the token must fail");
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "any:wrong",
        &from,
        &dest,
    ]);
    assert!(!o.status.success(), "push with a wrong token must fail");

    let creds = format!("someone:{}", srv.token);
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &from,
        &dest,
    ]);
    assert!(
        o.status.success(),
        "push: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let remote = skopeo_digest(&["--tls-verify=false", &dest]);
    assert_eq!(
        remote,
        m.digest.to_string(),
        "the pushed manifest keeps its digest"
    );

    // The image is in serve's store under the pushed namespace (`localhost/`), visible to the CLI.
    let served = Store::open(&tmp.path().join("served")).unwrap();
    let names: Vec<String> = served
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    assert!(
        names.contains(&"localhost/lwtest/bb:v1".to_string()),
        "{names:?}"
    );

    // Pull without credentials into an OCI layout; same digest.
    let out = tmp.path().join("pulled");
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:x", out.display()),
    ]);
    assert!(
        o.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let pulled = skopeo_digest(&[&format!("oci:{}:x", out.display())]);
    assert_eq!(pulled, m.digest.to_string());
    println!("skopeo push (token) / pull (no token): digest {pulled} kept");
}

#[test]
fn the_cli_pushes_and_pulls_through_the_embedded_registry() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let src_root = tmp.path().join("src");
    let src = Store::open(&src_root).unwrap();
    let m = make_busybox_image(
        &src,
        "lwtest/cli:1",
        &[busybox_files(&[("etc/cli", b"x\n")])],
    );
    let srv = Served::start(&tmp.path().join("served"), |_| {});
    let cfgdir = tmp.path().join("docker");
    std::fs::create_dir_all(&cfgdir).unwrap();
    let lw = |root: &std::path::Path, args: &[&str], stdin: Option<&str>| {
        use std::io::Write as _;
        let mut c = Command::new(env!("CARGO_BIN_EXE_layerwright"));
        c.arg("--root")
            .arg(root)
            .args(args)
            .env("DOCKER_CONFIG", &cfgdir);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        if let Some(s) = stdin {
            ch.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(ch.stdin.take());
        let t = std::time::Instant::now();
        let o = ch.wait_with_output().unwrap();
        println!("layerwright {args:?}: {:?}", t.elapsed());
        o
    };
    let dest = format!("{}/lwtest/cli:1", srv.host());
    let o = lw(&src_root, &["push", "lwtest/cli:1", &dest], None);
    assert!(!o.status.success(), "push without login must fail");
    let o = lw(
        &src_root,
        &["login", &srv.host(), "-u", "me", "--password-stdin"],
        Some(&srv.token),
    );
    assert!(
        o.status.success(),
        "login: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = lw(&src_root, &["push", "lwtest/cli:1", &dest], None);
    assert!(
        o.status.success(),
        "push: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Pull into a third store with no credentials at all.
    std::fs::remove_dir_all(&cfgdir).unwrap();
    std::fs::create_dir_all(&cfgdir).unwrap();
    let third = tmp.path().join("third");
    let o = lw(&third, &["pull", &dest], None);
    assert!(
        o.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = lw(&third, &["images", "--digests"], None);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&m.digest.to_string()), "{text}");
    println!(
        "layerwright push (login with the token) / pull (anonymous): {} kept",
        m.digest
    );
}

fn auth(srv: &Served) -> String {
    format!("Bearer {}", srv.token)
}

#[test]
fn distribution_api_uploads_ranges_pagination_catalog_delete_referrers() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let store = Store::open(&root).unwrap();
    let m = make_busybox_image(&store, "busybox:latest", &[busybox_files(&[])]);
    for t in ["a", "b", "c", "d"] {
        store
            .set_tag(
                &format!("docker.io/library/busybox:{t}"),
                &store.records().unwrap()[0].descriptor,
            )
            .unwrap();
    }
    let srv = Served::start(&root, |_| {});
    let a = auth(&srv);

    // Ping: challenge without the token, 200 with it.
    let r = srv.req("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    assert_eq!(
        srv.req("GET", "/v2/", &[("Authorization", &a)], b"").status,
        200
    );

    // Manifest by tag under both repository spellings, HEAD, by digest, and Accept negotiation.
    for repo in ["busybox", "library/busybox"] {
        let r = srv.req("GET", &format!("/v2/{repo}/manifests/latest"), &[], b"");
        assert_eq!(r.status, 200, "{repo}: {}", r.text());
        assert_eq!(r.header("docker-content-digest"), Some(m.digest.as_str()));
        assert_eq!(r.header("content-type"), Some(lw_oci::media::OCI_MANIFEST));
    }
    let r = srv.req(
        "HEAD",
        &format!("/v2/busybox/manifests/{}", m.digest),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(m.size.to_string().as_str())
    );
    let r = srv.req(
        "GET",
        "/v2/busybox/manifests/latest",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        )],
        b"",
    );
    assert_eq!(r.status, 404, "a manifest type the client does not accept");

    // Tags with pagination and Link.
    let r = srv.req("GET", "/v2/library/busybox/tags/list?n=2", &[], b"");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
    let link = r.header("link").expect("Link header");
    assert_eq!(
        link,
        "</v2/library/busybox/tags/list?n=2&last=b>; rel=\"next\""
    );
    let r = srv.req("GET", "/v2/library/busybox/tags/list?n=2&last=b", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["c", "d"]));
    let r = srv.req("GET", "/v2/library/busybox/tags/list?n=10&last=d", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["latest"]));
    assert!(r.header("link").is_none());
    let r = srv.req("GET", "/v2/_catalog", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["library/busybox"]));

    // Chunked upload with Content-Range, a wrong offset refused with 416, then PUT with the last chunk.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = Digest::sha256_of(&data);
    assert_eq!(
        srv.req("POST", "/v2/up/blobs/uploads/", &[], b"").status,
        401,
        "push needs the token"
    );
    let r = srv.req(
        "POST",
        "/v2/up/blobs/uploads/",
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    assert!(r.header("docker-upload-uuid").is_some());
    let r = srv.req(
        "PATCH",
        &loc,
        &[
            ("Authorization", &a),
            ("Content-Range", "0-99999"),
            ("Content-Type", "application/octet-stream"),
        ],
        &data[..100_000],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-99999"));
    let loc = r.header("location").unwrap().to_string();
    let r = srv.req(
        "PATCH",
        &loc,
        &[("Authorization", &a), ("Content-Range", "5-10")],
        &data[5..11],
    );
    assert_eq!(r.status, 416);
    let r = srv.req(
        "PATCH",
        &loc,
        &[("Authorization", &a)],
        &data[100_000..200_000],
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-199999"));
    let r = srv.req("GET", &loc, &[("Authorization", &a)], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("range"), Some("0-199999"));
    // A wrong digest is refused and nothing lands in the store.
    let bad = Digest::sha256_of(b"nope");
    let r = srv.req(
        "PUT",
        &format!("{loc}?digest={bad}"),
        &[("Authorization", &a)],
        &data[200_000..],
    );
    assert_eq!(r.status, 400);
    assert!(!store.has_blob(&bad));
    // Again, right this time (monolithic POST ?digest=).
    let r = srv.req(
        "POST",
        &format!("/v2/up/blobs/uploads/?digest={digest}"),
        &[("Authorization", &a)],
        &data,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert!(store.has_blob(&digest));
    // Chunked, then PUT with the last chunk.
    let data2: Vec<u8> = data.iter().rev().copied().collect();
    let d2 = Digest::sha256_of(&data2);
    let r = srv.req(
        "POST",
        "/v2/up/blobs/uploads/",
        &[("Authorization", &a)],
        b"",
    );
    let loc = r.header("location").unwrap().to_string();
    let r = srv.req("PATCH", &loc, &[("Authorization", &a)], &data2[..150_000]);
    let loc = r.header("location").unwrap().to_string();
    let r = srv.req(
        "PUT",
        &format!("{loc}?digest={d2}"),
        &[("Authorization", &a)],
        &data2[150_000..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/up/blobs/{d2}").as_str())
    );

    // A PATCH with a chunked request body (as Go clients send streams).
    let data3: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let d3 = Digest::sha256_of(&data3);
    let r = srv.req(
        "POST",
        "/v2/up/blobs/uploads/",
        &[("Authorization", &a)],
        b"",
    );
    let loc = r.header("location").unwrap().to_string();
    {
        use std::io::{BufReader, Write as _};
        let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
        write!(
            s,
            "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nAuthorization: {a}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            srv.host()
        )
        .unwrap();
        for c in data3.chunks(30_000) {
            write!(s, "{:x};ext=1\r\n", c.len()).unwrap();
            s.write_all(c).unwrap();
            s.write_all(b"\r\n").unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
        let r = serve_fixtures::read_response(&mut BufReader::new(s), false);
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.header("range"), Some("0-69999"));
    }
    let r = srv.req(
        "PUT",
        &format!("{loc}?digest={d3}"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(store.has_blob(&d3));

    // Ranges.
    let r = srv.req(
        "GET",
        &format!("/v2/up/blobs/{digest}"),
        &[("Range", "bytes=10-19")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{}", data.len()).as_str())
    );
    let r = srv.req(
        "GET",
        &format!("/v2/up/blobs/{digest}"),
        &[("Range", "bytes=999999-")],
        b"",
    );
    assert_eq!(r.status, 416);
    let r = srv.req("GET", &format!("/v2/up/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(Digest::sha256_of(&r.body), digest);
    let r = srv.req("HEAD", &format!("/v2/up/blobs/{digest}"), &[], b"");
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );

    // Cross-repository mount of a blob that is here: 201 without an upload.
    let r = srv.req(
        "POST",
        &format!("/v2/other/blobs/uploads/?mount={digest}&from=up"),
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 201);

    // A manifest naming a missing blob is refused; a referrer pushed by digest shows in the referrers API.
    let r = srv.req(
        "PUT",
        "/v2/up/manifests/x",
        &[("Authorization", &a), ("Content-Type", lw_oci::media::OCI_MANIFEST)],
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{bad}","size":4}},"layers":[]}}"#,
            lw_oci::media::OCI_MANIFEST
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("MANIFEST_BLOB_UNKNOWN"));
    let empty = srv.req(
        "POST",
        &format!("/v2/up/blobs/uploads/?digest={}", Digest::sha256_of(b"{}")),
        &[("Authorization", &a)],
        b"{}",
    );
    assert_eq!(empty.status, 201);
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","artifactType":"application/x-test","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"{}","digest":"{}","size":{}}}}}"#,
        lw_oci::media::OCI_MANIFEST,
        Digest::sha256_of(b"{}"),
        lw_oci::media::OCI_MANIFEST,
        m.digest,
        m.size
    );
    let rd = Digest::sha256_of(referrer.as_bytes());
    let r = srv.req(
        "PUT",
        &format!("/v2/library/busybox/manifests/{rd}"),
        &[
            ("Authorization", &a),
            ("Content-Type", lw_oci::media::OCI_MANIFEST),
        ],
        referrer.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("oci-subject"), Some(m.digest.as_str()));
    let r = srv.req(
        "GET",
        &format!("/v2/library/busybox/referrers/{}", m.digest),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["manifests"][0]["digest"], rd.to_string());
    assert_eq!(v["manifests"][0]["artifactType"], "application/x-test");
    let r = srv.req(
        "GET",
        &format!(
            "/v2/library/busybox/referrers/{}?artifactType=other",
            m.digest
        ),
        &[],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["manifests"], serde_json::json!([]));

    // Delete a tag (token needed), then it is gone.
    assert_eq!(
        srv.req("DELETE", "/v2/busybox/manifests/d", &[], b"")
            .status,
        401
    );
    assert_eq!(
        srv.req(
            "DELETE",
            "/v2/busybox/manifests/d",
            &[("Authorization", &a)],
            b""
        )
        .status,
        202
    );
    assert_eq!(
        srv.req("GET", "/v2/busybox/manifests/d", &[], b"").status,
        404
    );
    // Manifest PUT by tag makes a store name under `localhost/`; the token also works as ?token= and as a basic
    // password.
    let man = store.read_document(&m.digest).unwrap();
    let r = srv.req(
        "PUT",
        &format!("/v2/ghcr.io/someone/x/manifests/t1?token={}", srv.token),
        &[("Content-Type", lw_oci::media::OCI_MANIFEST)],
        &man,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(store
        .records()
        .unwrap()
        .iter()
        .any(|r| r.name.as_deref() == Some("localhost/ghcr.io/someone/x:t1")));
    println!("distribution API: uploads, ranges, pagination, catalog, mount, referrers, delete: all checked");
}

#[allow(dead_code)]
#[path = "../src/cmd_serve.rs"]
mod cmd_serve;

#[derive(clap::Parser)]
struct ServeCli {
    #[command(flatten)]
    args: cmd_serve::ServeArgs,
}

#[test]
fn the_serve_command_parses_its_flags_and_serves() {
    use clap::Parser as _;
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cli = ServeCli::try_parse_from([
        "serve",
        "--addr",
        &addr,
        "--token",
        "cmd-token",
        "--cors-origin",
        "https://a.example",
        "--allow-upstream",
        "r.example",
        "--proxy-credentials",
        "r.example=u:p",
        "--threads",
        "4",
    ])
    .unwrap();
    assert!(
        ServeCli::try_parse_from(["serve", "--proxy-credentials", "nope"]).is_ok(),
        "checked at start"
    );
    let root = tmp.path().join("s");
    std::thread::spawn(move || cmd_serve::serve(&root, cli.args).unwrap());
    let sa: std::net::SocketAddr = addr.parse().unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(sa).is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ok, "serve listens on {addr}");
    let hs = [
        ("Host", addr.clone()),
        ("Authorization", "Bearer cmd-token".to_string()),
    ];
    let r = serve_fixtures::raw(sa, "GET", "/v2/", &hs, b"");
    assert_eq!(r.status, 200, "the --token is the token");
    let r = serve_fixtures::raw(sa, "GET", "/proxy/other.example/v2/", &hs, b"");
    assert_eq!(r.status, 403, "--allow-upstream limits the proxy");
    let r = serve_fixtures::raw(
        sa,
        "OPTIONS",
        "/v2/",
        &[
            ("Host", addr.clone()),
            ("Origin", "https://a.example".into()),
            ("Access-Control-Request-Method", "GET".into()),
        ],
        b"",
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    // A TLS ClientHello gets a plain HTTP answer at once: TLS clients then report "server gave HTTP response to
    // HTTPS client", which is what makes docker fall back to plain HTTP for an insecure registry.
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(sa).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let t = std::time::Instant::now();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        buf.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    // Oversized header lines are refused.
    let long = "x".repeat(20_000);
    let r = serve_fixtures::raw(
        sa,
        "GET",
        "/v2/",
        &[("Host", addr.clone()), ("X-Long", long)],
        b"",
    );
    assert_eq!(r.status, 431);
}
