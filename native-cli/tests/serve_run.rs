//! `layerwright serve`'s RUN backend end to end: the tab's base layers pushed to the embedded registry
//! (`layerwright/run-cache`), a RUN step run natively with runc over them, its output streamed, and the new layer
//! fetched back from `/v2/` with the digest and diff ID the final line names.

use crate::common;
use crate::common::serve as serve_fixtures;

use std::io::Read;

use common::{busybox_files, make_busybox_image};
use layerwright::store::Store;
use lw_oci::{Digest, ImageConfig, Manifest};
use serde_json::{json, Value};
use serve_fixtures::Served;

#[test]
fn run_steps_over_http_with_the_token() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    // The "tab": an image whose blobs live elsewhere and must be pushed first.
    let tab = Store::open(&tmp.path().join("tab")).unwrap();
    let m = make_busybox_image(
        &tab,
        "busybox:latest",
        &[busybox_files(&[("etc/base", b"base\n")])],
    );
    let manifest: Manifest =
        serde_json::from_slice(&tab.read_document(&m.digest).unwrap()).unwrap();
    let config: ImageConfig =
        serde_json::from_slice(&tab.read_document(&manifest.config.digest).unwrap()).unwrap();
    let srv = Served::start(&tmp.path().join("served"), |_| {});
    let auth = format!("Bearer {}", srv.token);

    let req = json!({
        "layers": manifest.layers.iter().map(|l| json!({"digest": l.digest.to_string(), "size": l.size,
            "mediaType": l.media_type})).collect::<Vec<_>>(),
        "diffIds": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "args": ["/bin/sh", "-c", "echo made-by-run > /etc/made; echo hello from run; cat /etc/base /etc/hosts"],
        "env": ["PATH=/bin"], "user": "", "workdir": "/", "network": "none", "extraHosts": ["lw-tab.test:127.0.0.1"],
        "platform": format!("linux/{}", config.architecture), "sourceDateEpoch": 0,
    });
    let body = serde_json::to_vec(&req).unwrap();
    let json_ct = ("Content-Type", "application/json");

    // Before the layers are pushed the step is refused, naming the missing blob.
    let r = srv.req(
        "POST",
        &format!("/api/run?token={}", srv.token),
        &[json_ct],
        &body,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("run-cache"), "{}", r.text());
    for l in &manifest.layers {
        let mut data = Vec::new();
        tab.open_blob(&l.digest)
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        let r = srv.req(
            "POST",
            &format!(
                "/v2/layerwright/run-cache/blobs/uploads/?digest={}",
                l.digest
            ),
            &[("Authorization", &auth)],
            &data,
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // Without the token: refused.
    let r = srv.req("POST", "/api/run", &[json_ct], &body);
    assert_eq!(r.status, 401);

    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth), ("Origin", &srv.origin())],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(srv.origin().as_str())
    );
    let text = r.text();
    let mut lines: Vec<&str> = text.lines().collect();
    let last: Value =
        serde_json::from_str(lines.pop().unwrap()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(lines.contains(&"hello from run"), "output streamed: {text}");
    assert!(lines.contains(&"base"), "{text}");
    assert!(
        lines.contains(&"127.0.0.1\tlw-tab.test"),
        "--add-host entries travel: {text}"
    );
    assert_eq!(last["exitCode"], 0, "{text}");
    let layer = &last["layer"];
    let digest = Digest::parse(layer["digest"].as_str().unwrap()).unwrap();
    let diff_id = Digest::parse(layer["diffId"].as_str().unwrap()).unwrap();

    // The tab fetches the new layer from the embedded registry.
    let r = srv.req(
        "GET",
        &format!("/v2/layerwright/run-cache/blobs/{digest}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(Digest::sha256_of(&r.body), digest);
    assert_eq!(r.body.len() as u64, layer["size"].as_u64().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(Digest::sha256_of(&tar), diff_id);
    assert!(tar
        .windows(b"made-by-run".len())
        .any(|w| w == b"made-by-run"));

    // A bind mount travels as layers too (the engine resolves it in the tab): here the base's /etc, read-only.
    let mut bound = req.clone();
    bound["mounts"] = json!(["type=bind,target=/m"]);
    bound["binds"] =
        json!([{"mount": 0, "layers": req["layers"], "diffIds": req["diffIds"], "path": "/etc"}]);
    bound["args"] = json!([
        "/bin/sh",
        "-c",
        "cat /m/base; (echo x > /m/x) 2>/dev/null || echo read-only"
    ]);
    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth)],
        &serde_json::to_vec(&bound).unwrap(),
    );
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"base") && lines.contains(&"read-only"),
        "{text}"
    );
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["exitCode"], 0, "{text}");
    // Only runc's mount point directories the base lacks are in the layer (as BuildKit keeps them), not the mount.
    let r = srv.req(
        "GET",
        &format!(
            "/v2/layerwright/run-cache/blobs/{}",
            last["layer"]["digest"].as_str().expect("a layer")
        ),
        &[],
        b"",
    );
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut names = Vec::new();
    let mut reader = lw_layer::tar::TarReader::new(&tar[..]);
    while let Some(e) = reader.next_entry().unwrap() {
        names.push(e.path);
    }
    assert_eq!(
        names,
        ["dev", "proc", "sys"],
        "the mount leaked into a layer: {text}"
    );

    // Files travel in base64 and are mounted read-only: a heredoc script run as /dev/pipes/NAME.
    let mut piped = req.clone();
    piped["files"] = json!([{"path": "/dev/pipes/EOT", "data": base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "#!/bin/sh\necho \"piped from $0\"\n",
    )}]);
    piped["args"] = json!(["/bin/sh", "-c", "/dev/pipes/EOT"]);
    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth)],
        &serde_json::to_vec(&piped).unwrap(),
    );
    let text = r.text();
    assert!(
        text.lines().any(|l| l == "piped from /dev/pipes/EOT"),
        "{text}"
    );
    piped["files"] = json!([{"path": "relative", "data": ""}]);
    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth)],
        &serde_json::to_vec(&piped).unwrap(),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // Secrets travel in base64 with the step: a file mount with its mode and an env= one; none is left in serve's
    // store afterwards, and a bad id is refused.
    let mut secret = req.clone();
    secret["secrets"] = json!({"tok": base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD, "s3cret-value")});
    secret["mounts"] = json!(["type=secret,id=tok,mode=0440", "type=secret,id=tok,env=TOK"]);
    secret["args"] = json!([
        "/bin/sh",
        "-c",
        "cat /run/secrets/tok; echo; echo \"env:$TOK\"; busybox stat -c mode=%a /run/secrets/tok"
    ]);
    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth)],
        &serde_json::to_vec(&secret).unwrap(),
    );
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"s3cret-value"), "{text}");
    assert!(lines.contains(&"env:s3cret-value"), "{text}");
    assert!(lines.contains(&"mode=440"), "the mount's mode: {text}");
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["exitCode"], 0, "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("served/tmp"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        !leftovers
            .iter()
            .any(|n| n.to_string_lossy().starts_with("run-secrets-")),
        "{leftovers:?}"
    );
    secret["secrets"] = json!({"../x": ""});
    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth)],
        &serde_json::to_vec(&secret).unwrap(),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // A failing step reports its exit code and no layer.
    let mut bad = req.clone();
    bad["args"] = json!(["/bin/sh", "-c", "echo failing; exit 7"]);
    let r = srv.req(
        "POST",
        "/api/run",
        &[json_ct, ("Authorization", &auth)],
        &serde_json::to_vec(&bad).unwrap(),
    );
    let text = r.text();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["exitCode"], 7, "{text}");
    assert!(last["layer"].is_null());
    println!("RUN over HTTP: layer {digest} (diffId {diff_id}), exit codes reported");
}
