//! The registry commands end to end against the real Distribution registry on 127.0.0.1: push, pull, build
//! FROM a registry image, copy to an archive, tags, catalog, manifest, digest, login and logout.

use crate::common;
use crate::common::registry as support;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use layerwright::store::Store;
use support::{htpasswd_file, Registry, RegistryAuth};

#[test]
fn push_pull_build_copy_and_inspect_remote_images() {
    lw_test_kit::require!("docker-registry", "skopeo", "podman", "/bin/busybox");
    let reg = Registry::start(RegistryAuth::None);
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let m = make_busybox_image(
        &Store::open(&a).unwrap(),
        "lwtest/bb:1",
        &[busybox_files(&[("hello.txt", b"hi\n")])],
    );
    let remote = format!("{host}/lwtest/bb:1");

    lw_ok(&a, &["push", "lwtest/bb:1", &remote]);
    assert_eq!(lw_ok(&a, &["digest", &remote]).trim(), m.digest.to_string());
    assert!(lw_ok(&a, &["ls", &format!("{host}/lwtest/bb")])
        .lines()
        .any(|l| l == "1"));
    assert!(lw_ok(&a, &["catalog", &host])
        .lines()
        .any(|l| l == "lwtest/bb"));
    let raw = lw(&a, &["manifest", &remote]).stdout;
    assert!(m.digest.verify(&raw), "manifest prints the exact bytes");
    // Pushing again uploads nothing new.
    let again = lw_ok(&a, &["push", "--json", "lwtest/bb:1", &remote]);
    assert!(!again.contains("Uploaded"), "{again}");

    // Another store pulls it with the same digests.
    let b = tmp.path().join("b");
    let out = lw_ok(&b, &["pull", &remote]);
    assert!(out.contains(&m.digest.to_string()), "{out}");
    let ins: serde_json::Value = serde_json::from_str(&lw_ok(&b, &["inspect", &remote])).unwrap();
    assert_eq!(ins[0]["Descriptor"]["digest"], m.digest.to_string());

    // A build whose base comes from the registry pulls it on demand; the result runs in podman.
    let c = tmp.path().join("c");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("msg.txt"), "built on a pulled base\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {remote}\nCOPY msg.txt /\nCMD [\"cat\", \"/msg.txt\", \"/hello.txt\"]\n"),
    )
    .unwrap();
    lw_ok(
        &c,
        &["build", "-t", "lwtest/built:1", ctx.to_str().unwrap()],
    );
    let tar = tmp.path().join("built.tar");
    lw_ok(&c, &["save", "lwtest/built:1", "-o", tar.to_str().unwrap()]);
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    let out = podman.run(&["docker.io/lwtest/built:1"]);
    assert_eq!(out, "built on a pulled base\nhi\n");

    // copy to an OCI archive keeps the digest (skopeo agrees).
    let arch = tmp.path().join("copy.tar");
    lw_ok(
        &b,
        &[
            "copy",
            &remote,
            &format!("oci-archive:{}:lwtest/copied:1", arch.display()),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", arch.display())]),
    ))
    .unwrap();
    assert_eq!(v["Digest"], m.digest.to_string());
}

#[test]
fn login_stores_credentials_and_wrong_passwords_are_refused() {
    lw_test_kit::require!("docker-registry", "htpasswd", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(RegistryAuth::Htpasswd(htpasswd_file(
        tmp.path(),
        &[("alice", "wonderland")],
    )));
    let host = reg.host();
    let store = tmp.path().join("s");
    make_busybox_image(
        &Store::open(&store).unwrap(),
        "lwtest/secret:1",
        &[busybox_files(&[])],
    );
    let cfg = tmp.path().join("docker-config");
    let login = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
            .env("DOCKER_CONFIG", &cfg)
            .args(["login", &host, "-u", "alice", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("nope");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("login to"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !cfg.join("config.json").exists(),
        "a failed login stores nothing"
    );

    let push = |store: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_layerwright"))
            .env("DOCKER_CONFIG", &cfg)
            .arg("--root")
            .arg(store)
            .args([
                "push",
                "lwtest/secret:1",
                &format!("{host}/lwtest/secret:1"),
            ])
            .output()
            .unwrap()
    };
    let denied = push(&store);
    assert!(!denied.status.success(), "push without login must fail");

    let ok = login("wonderland");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Login Succeeded"));
    let stored = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(
        stored.contains(&host) && !stored.contains("wonderland"),
        "stored as base64 auth: {stored}"
    );
    assert!(push(&store).status.success());

    let out = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .env("DOCKER_CONFIG", &cfg)
        .args(["logout", &host])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removing login credentials"));
    assert!(!push(&store).status.success(), "logged out again");
}
