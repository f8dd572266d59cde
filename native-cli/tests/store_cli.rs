//! The image commands over the store: images, tag, rmi, prune, inspect, history, and two processes at once.

use crate::common;

use common::*;
use layerwright::store::Store;

#[test]
fn image_commands_behave_like_docker() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let m = make_busybox_image(
        &store,
        "busybox",
        &[busybox_files(&[]), busybox_files(&[("a", b"a")])],
    );
    let img = store.resolve(&m, None).unwrap();
    let id = img.config_digest.to_string();

    let v: serde_json::Value = serde_json::from_str(&lw_ok(&root, &["images", "--json"])).unwrap();
    assert_eq!(v[0]["Repository"], "busybox");
    assert_eq!(v[0]["Tag"], "latest");
    assert_eq!(v[0]["ID"], id);
    assert_eq!(v[0]["Digest"], m.digest.to_string());
    let table = lw_ok(&root, &["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(table.contains(&id[7..19]), "short image ID listed: {table}");

    // tag, then rmi by one name only untags.
    lw_ok(&root, &["tag", "busybox", "localhost:5000/team/bb:v1"]);
    lw_ok(&root, &["tag", &id[7..19], "bb:byid"]);
    let v: serde_json::Value = serde_json::from_str(&lw_ok(&root, &["images", "--json"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    let ins: serde_json::Value =
        serde_json::from_str(&lw_ok(&root, &["inspect", "bb:byid"])).unwrap();
    let mut tags: Vec<&str> = ins[0]["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        ["bb:byid", "busybox:latest", "localhost:5000/team/bb:v1"]
    );
    assert_eq!(ins[0]["Id"], id);
    assert_eq!(ins[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(ins[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let out = lw_ok(&root, &["rmi", "bb:byid"]);
    assert_eq!(out.trim(), "Untagged: bb:byid");
    // By ID with several names left: refused without -f.
    let o = lw(&root, &["rmi", &id[7..19]]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be forced"));

    // history: newest first, the top row carries the image ID.
    let h = lw_ok(&root, &["history", "busybox"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(lines[0].starts_with("IMAGE"));
    assert!(
        lines[1].starts_with(&id[7..19]) && lines[1].contains("test layer 1"),
        "{h}"
    );
    assert!(
        lines[2].starts_with("<missing>") && lines[2].contains("test layer 0"),
        "{h}"
    );
    let hj: serde_json::Value =
        serde_json::from_str(&lw_ok(&root, &["history", "--json", "busybox"])).unwrap();
    assert_eq!(hj[1]["CreatedBy"], "test layer 0");
    assert!(hj[0]["Size"].as_u64().unwrap() > 0);

    // Moving a tag leaves a dangling image that prune removes; prune -a removes everything.
    let out = lw_ok(&root, &["rmi", "localhost:5000/team/bb:v1"]);
    assert_eq!(out.trim(), "Untagged: localhost:5000/team/bb:v1");
    make_busybox_image(&store, "busybox", &[busybox_files(&[("new", b"n")])]);
    let v: serde_json::Value = serde_json::from_str(&lw_ok(&root, &["images", "--json"])).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|i| i["Repository"] == "<none>"),
        "{v}"
    );
    let out = lw_ok(&root, &["image", "prune"]);
    assert!(out.contains(&format!("deleted: {id}")), "{out}");
    let v: serde_json::Value = serde_json::from_str(&lw_ok(&root, &["images", "--json"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(
        !store.has_blob(&img.config_digest),
        "blobs of pruned images are removed"
    );
    lw_ok(&root, &["prune", "-a"]);
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );

    let o = lw(&root, &["inspect", "nosuch"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such image: nosuch"));
}

#[test]
fn two_processes_tag_at_once_without_losing_a_tag() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "base", &[busybox_files(&[])]);
    let children: Vec<_> = (0..16)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_layerwright"))
                .arg("--root")
                .arg(&root)
                .args(["tag", "base", &format!("copy:{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let v: serde_json::Value = serde_json::from_str(&lw_ok(&root, &["images", "--json"])).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        17,
        "every concurrent tag survived: {v}"
    );
}

#[test]
fn help_is_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in [
        "images", "tag", "rmi", "prune", "inspect", "history", "save", "load",
    ] {
        let out = lw_ok(tmp.path(), &[cmd, "--help"]);
        assert!(out.contains("Usage: layerwright"), "{cmd}: {out}");
    }
}

/// A build, pull or load in progress holds a lease: a concurrent prune leaves unnamed blobs and tmp/ alone, and
/// says so; once the lease is gone the same prune frees them.
#[test]
fn prune_leaves_the_blobs_of_running_work_alone() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    // Blobs no image names yet (what a running build has written so far), and a temporary file of it.
    let (layer, _) = put_layer(&store, &busybox_files(&[("wip", b"work in progress")]));
    let partial = store.tmp_dir().join("blob-in-flight");
    std::fs::write(&partial, b"half a blob").unwrap();
    let lease = store.lease().unwrap();
    let out = lw_ok(&root, &["prune", "-a"]);
    assert!(out.contains("left in place"), "{out}");
    assert!(
        store.has_blob(&layer.digest),
        "a leased blob survives prune"
    );
    assert!(partial.exists(), "tmp/ survives while a lease is held");
    drop(lease);
    let out = lw_ok(&root, &["prune", "-a"]);
    assert!(!out.contains("left in place"), "{out}");
    assert!(
        !store.has_blob(&layer.digest),
        "unnamed blobs go once no work holds a lease"
    );
    assert!(!partial.exists());
}

#[test]
fn layer_indexes_are_kept_for_builds_and_go_with_their_layers() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let base = make_busybox_image(&store, "lwtest/base:1", &[busybox_files(&[])]);
    let base_layer = store.resolve(&base, None).unwrap().manifest.layers[0]
        .digest
        .clone();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "x").unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM lwtest/base:1\nCOPY f /etc/\n").unwrap();
    lw_ok(
        &root,
        &["build", "-q", "-t", "lwtest/child:1", ctx.to_str().unwrap()],
    );
    // COPY needed the base's paths: its layer's index is kept for the next build.
    let index = root.join("cache/layer-index").join(base_layer.encoded());
    assert!(index.is_file(), "no index at {}", index.display());
    lw_ok(&root, &["rmi", "lwtest/child:1", "lwtest/base:1"]);
    lw_ok(&root, &["prune", "-a"]);
    assert!(!index.exists(), "the index outlived its layer");
}
