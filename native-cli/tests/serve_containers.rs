//! serve's container API end to end: containers started from HTTP run as `layerwright run -d` does (the CLI's `ps`,
//! `rm` see them), their output and exit code come back, EXPOSE and `-p` ports open on loopback only, and stop and
//! remove leave nothing mounted. The token, Host and Origin checks are serve's.

use crate::common;
use crate::common::serve as serve_fixtures;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{busybox_files, lw, lw_ok, make_busybox_image, mounts_under};
use layerwright::store::Store;
use serde_json::{json, Value};
use serve_fixtures::Served;

fn start(root: &Path) -> Served {
    Served::start(root, |c| {
        c.exe = Some(PathBuf::from(env!("CARGO_BIN_EXE_layerwright")));
    })
}

/// Removes every container of the store when dropped, so a failing test leaves none running.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids =
            String::from_utf8_lossy(&lw(self.0, &["ps", "-aq", "--no-trunc"]).stdout).into_owned();
        for id in ids.lines() {
            let _ = lw(self.0, &["rm", "-f", id]);
        }
    }
}

fn post_json(srv: &Served, path: &str, v: &Value) -> serve_fixtures::Resp {
    let auth = srv.bearer();
    srv.req(
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
            ("Origin", &srv.origin()),
        ],
        &serde_json::to_vec(v).unwrap(),
    )
}

fn call(srv: &Served, method: &str, path: &str) -> serve_fixtures::Resp {
    let auth = srv.bearer();
    srv.req(method, path, &[("Authorization", &auth)], b"")
}

fn json_of(r: &serve_fixtures::Resp) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut c = std::net::TcpStream::connect(host).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .ok()?;
    let mut body = String::new();
    c.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn containers_run_from_http_are_the_clis() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(
        &store,
        "lwtest/bb:1",
        &[busybox_files(&[(
            "www/index.html",
            b"served from a tab's container\n",
        )])],
    );
    drop(store);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lwtest/bb:1\nEXPOSE 80\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    lw_ok(
        &root,
        &["build", "-q", "-t", "lwtest/web:1", ctx.to_str().unwrap()],
    );
    let srv = start(&root);
    let _cleanup = Cleanup(&root);
    let run = json!({"image": "lwtest/bb:1", "cmd": ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
        "network": "none"});

    // The checks serve makes for every API: the token, the Origin, the Host.
    let body = serde_json::to_vec(&run).unwrap();
    let ct = ("Content-Type", "application/json");
    assert_eq!(srv.req("POST", "/api/containers", &[ct], &body).status, 401);
    let auth = srv.bearer();
    let r = srv.req(
        "POST",
        "/api/containers",
        &[ct, ("Authorization", &auth), ("Origin", "http://evil.test")],
        &body,
    );
    assert_eq!(r.status, 403);
    let r = serve_fixtures::raw(
        srv.addr,
        "GET",
        "/api/containers",
        &[
            ("Host", "rebound.test".into()),
            ("Authorization", auth.clone()),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    for (method, path) in [
        ("GET", "/api/containers"),
        ("GET", "/api/containers/x/logs"),
        ("POST", "/api/containers/x/stop"),
        ("DELETE", "/api/containers/x"),
    ] {
        assert_eq!(
            srv.req(method, path, &[], b"").status,
            401,
            "{method} {path}"
        );
    }
    assert_eq!(lw_ok(&root, &["ps", "-aq"]), "", "nothing was started");

    // Output and exit code.
    let r = post_json(&srv, "/api/containers", &run);
    assert_eq!(r.status, 201, "{}", r.text());
    let c = json_of(&r);
    let id = c["id"].as_str().unwrap().to_string();
    let r = call(&srv, "GET", &format!("/api/containers/{id}/logs?follow=1"));
    assert_eq!(r.status, 200);
    let mut lines: Vec<String> = r.text().lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["to-err", "to-out"]);
    let c = json_of(&call(&srv, "GET", &format!("/api/containers/{id}")));
    assert_eq!(
        (c["state"].as_str(), c["exitCode"].as_i64()),
        (Some("exited"), Some(3))
    );
    // The CLI sees the same container.
    let ps = lw_ok(&root, &["ps", "-a", "--no-trunc"]);
    assert!(ps.contains(&id) && ps.contains("Exited (3)"), "{ps}");
    let list = json_of(&call(&srv, "GET", "/api/containers"));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        call(&srv, "DELETE", &format!("/api/containers/{id}")).status,
        204
    );
    assert_eq!(lw_ok(&root, &["ps", "-aq"]), "");
    assert_eq!(
        call(&srv, "GET", &format!("/api/containers/{id}")).status,
        404
    );

    // A command that is not there: docker's 127, and why.
    let r = post_json(
        &srv,
        "/api/containers",
        &json!({"image": "lwtest/bb:1", "cmd": ["no-such-tool"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let c = json_of(&r);
    assert_eq!(c["exitCode"], 127);
    assert!(
        c["error"]
            .as_str()
            .unwrap()
            .contains("executable file not found"),
        "{c}"
    );
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        call(&srv, "DELETE", &format!("/api/containers/{id}")).status,
        204
    );

    // Bad requests name the cause.
    let r = post_json(&srv, "/api/containers", &json!({"image": "lwtest/none:1"}));
    assert_eq!(r.status, 404);
    let r = post_json(
        &srv,
        "/api/containers",
        &json!({"image": "lwtest/web:1", "publish": ["0.0.0.0:0:80"]}),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("loopback"), "{}", r.text());
    let r = post_json(
        &srv,
        "/api/containers",
        &json!({"image": "lwtest/bb:1", "binds": ["/:/host"]}),
    );
    assert_eq!(r.status, 400, "no host paths from a page");

    // EXPOSE (docker's -P) and -p: a web server reachable on loopback through the URL the API gives.
    let t = Instant::now();
    let r = post_json(
        &srv,
        "/api/containers",
        &json!({"image": "lwtest/web:1", "publishAll": true, "publish": ["127.0.0.1:0:8080"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let c = json_of(&r);
    assert_eq!(c["state"], "running", "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let ports = c["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{c}");
    let web = ports.iter().find(|p| p["containerPort"] == 80).unwrap();
    assert_eq!(web["hostIp"], "127.0.0.1");
    let url = format!("{}index.html", web["url"].as_str().unwrap());
    let page = loop {
        if let Some(b) = http_get(&url).filter(|b| b.contains("200 OK")) {
            break b;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{url} never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        page.ends_with("\r\n\r\nserved from a tab's container\n"),
        "{page}"
    );
    assert!(lw_ok(&root, &["ps"]).contains(&id[..12]));
    let r = call(&srv, "DELETE", &format!("/api/containers/{id}"));
    assert_eq!(r.status, 409, "a running container needs force");
    let r = call(&srv, "POST", &format!("/api/containers/{id}/stop?t=1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r)["state"], "exited");
    assert!(
        http_get(&url).is_none(),
        "the port closed with the container"
    );
    assert_eq!(
        call(&srv, "DELETE", &format!("/api/containers/{id}")).status,
        204
    );
    assert_eq!(lw_ok(&root, &["ps", "-aq"]), "");
    assert_eq!(mounts_under(&root), Vec::<String>::new());
}
