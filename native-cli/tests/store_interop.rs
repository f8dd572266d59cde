//! Interop of saved and loaded tarballs with tools no one here wrote: skopeo, umoci and podman.

use crate::common;

use std::process::Command;

use common::*;
use layerwright::store::Store;

#[test]
fn saved_tarball_is_read_by_skopeo_umoci_and_runs_in_podman() {
    lw_test_kit::require!("skopeo", "umoci", "podman", "runc", "/bin/busybox");
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
    lw_test_kit::process::untar(&tar, &layout);
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
    let out = podman.load(&tar);
    assert!(out.contains("lwtest/busybox"), "podman load said: {out}");
    let out = podman.run(&["docker.io/lwtest/busybox:1", "echo", "hello"]);
    assert_eq!(out.trim(), "hello");
}

#[test]
fn archives_written_by_skopeo_and_podman_load_and_keep_digests() {
    lw_test_kit::require!("skopeo", "podman", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let m = make_busybox_image(
        &store,
        "lwtest/busybox:1",
        &[busybox_files(&[]), busybox_files(&[("two", b"2")])],
    );
    let original = store.resolve(&m, None).unwrap();

    // Our store is itself an OCI layout, so skopeo can copy out of it directly.
    let sk = tmp.path().join("sk.tar");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:docker.io/lwtest/busybox:1", root.display()),
        &format!("oci-archive:{}:lwtest/fromskopeo:2", sk.display()),
    ]));
    let dk = tmp.path().join("dk.tar");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:docker.io/lwtest/busybox:1", root.display()),
        &format!("docker-archive:{}:lwtest/fromdocker:3", dk.display()),
    ]));

    let root2 = tmp.path().join("store2");
    let out = lw_ok(&root2, &["load", "-i", sk.to_str().unwrap()]);
    assert!(out.contains("Loaded image: lwtest/fromskopeo:2"), "{out}");
    let ins: serde_json::Value =
        serde_json::from_str(&lw_ok(&root2, &["inspect", "lwtest/fromskopeo:2"])).unwrap();
    assert_eq!(
        ins[0]["Descriptor"]["digest"],
        m.digest.to_string(),
        "oci-archive keeps the manifest digest"
    );
    // Saved again by us, skopeo still sees the same manifest digest.
    let again = tmp.path().join("again.tar");
    lw_ok(
        &root2,
        &["save", "lwtest/fromskopeo:2", "-o", again.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", again.display())]),
    ))
    .unwrap();
    assert_eq!(v["Digest"], m.digest.to_string());

    let out = lw_ok(&root2, &["load", "-i", dk.to_str().unwrap()]);
    assert!(out.contains("Loaded image: lwtest/fromdocker:3"), "{out}");
    let ins: serde_json::Value =
        serde_json::from_str(&lw_ok(&root2, &["inspect", "lwtest/fromdocker:3"])).unwrap();
    assert_eq!(
        ins[0]["Id"],
        original.config_digest.to_string(),
        "docker-archive keeps the config (image ID)"
    );
    assert_eq!(ins[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // podman's own archives, both formats.
    let podman = Podman::new(&tmp.path().join("podman"));
    let ours = tmp.path().join("ours.tar");
    lw_ok(
        &root,
        &["save", "lwtest/busybox:1", "-o", ours.to_str().unwrap()],
    );
    podman.load(&ours);
    for (format, tag) in [
        ("oci-archive", "docker.io/lwtest/podoci:1"),
        ("docker-archive", "docker.io/lwtest/poddocker:1"),
    ] {
        let p = tmp.path().join(format!("{format}.tar"));
        run_ok(
            podman
                .cmd()
                .args(["tag", "docker.io/lwtest/busybox:1", tag]),
        );
        run_ok(
            podman
                .cmd()
                .args(["save", "--format", format, "-o"])
                .arg(&p)
                .arg(tag),
        );
        let root3 = tmp.path().join(format!("store-{format}"));
        let out = lw_ok(&root3, &["load", "-i", p.to_str().unwrap()]);
        assert!(out.contains("Loaded image"), "{format}: {out}");
        let ins: serde_json::Value =
            serde_json::from_str(&lw_ok(&root3, &["inspect", tag])).unwrap();
        assert_eq!(
            ins[0]["Id"],
            original.config_digest.to_string(),
            "{format}: image ID kept"
        );
    }
}

#[test]
fn multi_member_gzip_layers_are_read_by_every_tool() {
    lw_test_kit::require!(
        "skopeo",
        "umoci",
        "podman",
        "runc",
        "python3",
        "/bin/busybox"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    // A few MB of mixed files: the layer is cut into several gzip members.
    let mut files = busybox_files(&[]);
    let mut x: u64 = 42;
    for i in 0..40 {
        let data: Vec<u8> = (0..120_000)
            .map(|j| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if j % 4 == 0 {
                    (x >> 58) as u8 + b'0'
                } else {
                    b"multi member "[j % 13]
                }
            })
            .collect();
        files.push((
            lw_layer::Entry::file(&format!("data/f{i:02}"), 0o644, 0),
            data,
        ));
    }
    // Random bytes, which the encoder stores instead of deflating: the tools must read stored blocks too.
    let random: Vec<u8> = (0..300_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    files.push((
        lw_layer::Entry::file("data/random", 0o644, 0),
        random.clone(),
    ));
    files.push((lw_layer::Entry::dir("data", 0o755), vec![]));
    let m = make_busybox_image(&store, "lwtest/members:1", &[files]);
    let img = store.resolve(&m, None).unwrap();
    let blob = std::fs::read(store.blob_path(&img.manifest.layers[0].digest)).unwrap();
    let members = blob.windows(4).filter(|w| w == &[0x1f, 0x8b, 8, 0]).count();
    assert!(members > 3, "the layer has {members} gzip members");
    assert!(
        blob.windows(256).any(|w| w == &random[100_000..100_256]),
        "the random file is in stored blocks, verbatim"
    );

    // Python's gzip module reads the concatenated members and gets the diff ID back.
    let layer_path = store.blob_path(&img.manifest.layers[0].digest);
    let out = run_ok(Command::new("python3").args([
        "-c",
        "import gzip,hashlib,sys; print('sha256:'+hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())",
        layer_path.to_str().unwrap(),
    ]));
    assert_eq!(out.trim(), img.config.rootfs.diff_ids[0].to_string());

    let tar = tmp.path().join("members.tar");
    lw_ok(
        &root,
        &["save", "lwtest/members:1", "-o", tar.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", tar.display())]),
    ))
    .unwrap();
    assert_eq!(v["Digest"], m.digest.to_string());
    // skopeo copy decompresses and verifies every layer when it converts to docker-archive.
    let dk = tmp.path().join("dk.tar");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", tar.display()),
        &format!("docker-archive:{}:lwtest/members:1", dk.display()),
    ]));
    let layout = tmp.path().join("layout");
    lw_test_kit::process::untar(&tar, &layout);
    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:docker.io/lwtest/members:1", layout.display()))
            .arg(&bundle),
    );
    assert_eq!(std::fs::read(bundle.join("rootfs/data/f39")).unwrap(), {
        let o = Command::new("python3")
            .args(["-c", "import gzip,sys,tarfile,io; t=tarfile.open(fileobj=gzip.open(sys.argv[1])); sys.stdout.buffer.write(t.extractfile('data/f39').read())", layer_path.to_str().unwrap()])
            .output()
            .unwrap();
        o.stdout
    });
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    let out = podman.run(&["docker.io/lwtest/members:1", "ls", "/data"]);
    assert_eq!(out.lines().count(), 41);
    assert_eq!(
        std::fs::read(bundle.join("rootfs/data/random")).unwrap(),
        random
    );
}
