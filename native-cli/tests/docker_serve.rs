//! Docker 20.10 as a client of `layerwright serve`'s registry: an anonymous `docker pull` (no login), `docker login`
//! with the token and `docker push`, and `docker manifest inspect --insecure`, with digests and image IDs equal
//! on both sides. 127.0.0.0/8 is an insecure registry for dockerd by default, so the daemon tries https first:
//! serve's plain HTTP answer to the ClientHello is what lets it fall back.

use crate::common;
use crate::common::serve as serve_fixtures;
use lw_test_kit::docker;

use std::process::Stdio;

use common::lw_ok;
use docker::Dockerd;
use layerwright::store::Store;
use serve_fixtures::Served;

#[test]
fn docker_pulls_anonymously_logs_in_pushes_and_inspects_through_serve() {
    lw_test_kit::require!("/bin/busybox");
    let Some(d) = Dockerd::shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(common::BUSYBOX, ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"echo\", \"hello through serve\"]\n",
    )
    .unwrap();
    lw_ok(
        &root,
        &[
            "build",
            "-q",
            "-t",
            "lwtest/served:1",
            ctx.to_str().unwrap(),
        ],
    );
    let store = Store::open(&root).unwrap();
    let ours = common::lw_ok(&root, &["inspect", "lwtest/served:1"]);
    let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
    let our_id = ours[0]["Id"].as_str().unwrap().to_string();
    let srv = Served::start(&root, |_| {});
    let host = srv.host();

    // Anonymous pull: the Bearer challenge gives docker a pull-only token; the image ID is ours.
    let image = format!("{host}/lwtest/served:1");
    d.docker_ok(&["pull", &image]);
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), our_id);
    let digests = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]);
    let served = srv.req("HEAD", "/v2/lwtest/served/manifests/1", &[], b"");
    let manifest_digest = served.header("docker-content-digest").unwrap().to_string();
    assert!(
        digests.contains(&manifest_digest),
        "docker keeps the served manifest digest {manifest_digest}: {digests}"
    );
    let out = d.docker_ok(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out, "hello through serve\n");

    // A push needs the token: refused before login, accepted after.
    let pushed = format!("{host}/lwtest/pushed:2");
    d.docker_ok(&["tag", &image, &pushed]);
    let o = d.docker(&["push", &pushed]);
    assert!(!o.status.success(), "a push without login must fail");
    let mut login = d
        .cmd()
        .args(["login", &host, "-u", "anyone", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        login
            .stdin
            .take()
            .unwrap()
            .write_all(srv.token.as_bytes())
            .unwrap();
    }
    let o = login.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = d.docker_ok(&["push", &pushed]);
    let pushed_digest = out
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in docker push output: {out}"))
        .to_string();
    let r = srv.req("HEAD", "/v2/lwtest/pushed/manifests/2", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(pushed_digest.as_str())
    );
    // It landed under the pushed namespace; the built name is untouched.
    let names: Vec<String> = store
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    assert!(
        names.contains(&"localhost/lwtest/pushed:2".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"docker.io/lwtest/served:1".to_string()),
        "{names:?}"
    );
    let ours_pushed = lw_ok(&root, &["inspect", "localhost/lwtest/pushed:2"]);
    let ours_pushed: serde_json::Value = serde_json::from_str(&ours_pushed).unwrap();
    assert_eq!(
        ours_pushed[0]["Id"],
        our_id.as_str(),
        "the pushed image keeps its ID"
    );

    // `docker manifest inspect --insecure`: the client itself tries https first and falls back. Docker 20.10's
    // client reads docker-format manifests only, which is what `docker push` wrote.
    let out = d.docker_ok(&["manifest", "inspect", "--insecure", &pushed]);
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["config"]["digest"], our_id.as_str());
    // And pulling the pushed image back (after removing it locally) gives the same ID.
    d.docker_ok(&["rmi", &pushed]);
    d.docker_ok(&["pull", &pushed]);
    let id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &pushed]);
    assert_eq!(id.trim(), our_id);
    d.docker_ok(&["rmi", &pushed, &image]);
    println!("docker through serve: anonymous pull, login, push, manifest inspect --insecure; IDs and digests kept");
}
