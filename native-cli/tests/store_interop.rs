//! Interop of saved and loaded tarballs with tools no one here wrote: skopeo, umoci and podman.

mod common;

use std::process::Command;

use common::*;
use layerwright::store::Store;

#[test]
fn saved_tarball_is_read_by_skopeo_umoci_and_runs_in_podman() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let m = make_busybox_image(
        &store,
        "lwtest/busybox:1",
        &[busybox_files(&[("hello.txt", b"hi\n")])],
    );
    let tar = tmp.path().join("bb.tar");
    lw_ok(
        &root,
        &["save", "lwtest/busybox:1", "-o", tar.to_str().unwrap()],
    );

    // skopeo reads it as an OCI archive and sees our manifest digest.
    let out =
        run_ok(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", tar.display())]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], m.digest.to_string());
    // ... and as a docker archive.
    let out = run_ok(
        Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", tar.display())]),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // umoci unpacks the OCI layout inside it.
    let layout = tmp.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&layout),
    );
    let bundle = tmp.path().join("bundle");
    let refname = "docker.io/lwtest/busybox:1";
    let o = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{}", layout.display(), refname))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/hello.txt")).unwrap(),
        b"hi\n"
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // podman loads it and runs it.
    let podman = Podman::new(&tmp.path().join("podman"));
    let out = run_ok(podman.cmd().arg("load").arg("-i").arg(&tar));
    assert!(out.contains("lwtest/busybox"), "podman load said: {out}");
    let out = run_ok(podman.cmd().args([
        "run",
        "--rm",
        "--network",
        "none",
        "docker.io/lwtest/busybox:1",
        "echo",
        "hello",
    ]));
    assert_eq!(out.trim(), "hello");
}
