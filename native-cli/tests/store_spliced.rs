//! Spliced blobs end to end: a rebuild after an edit in the last file keeps its layer as the earlier blob's start
//! plus its own tail, and that layer reads as the cold build's bytes everywhere (save, an OCI tarball, push, serve's
//! registry with ranges); `gc` keeps the earlier blob while the earlier image is named, and writes the spliced one
//! out in full when that image goes (`rmi`, `prune`); removing both frees both, and a damaged tail or parent is
//! refused naming the blob.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::serve::Served;
use crate::common::{lw, lw_ok};
use layerwright::store::Store;
use lw_oci::Digest;

fn build(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) -> String {
    let mut args = vec!["build", "-q", "-t", tag];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    lw_ok(root, &args).trim().to_string()
}

/// The one layer of the image `tag`.
fn layer_of(root: &Path, tag: &str) -> Digest {
    let store = Store::open(root).unwrap();
    let found = layerwright::names::resolve(&store, tag).unwrap();
    let img = store.resolve(&found.descriptor, None).unwrap();
    assert_eq!(img.manifest.layers.len(), 1);
    img.manifest.layers[0].digest.clone()
}

fn spliced_files(root: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(root.join("spliced/sha256")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![],
    }
}

fn sha256_file(p: &Path) -> Digest {
    Digest::sha256_of(&std::fs::read(p).unwrap())
}

/// A first build, an edit in the last file and a rebuild into `root`; the same edited context built cold into
/// `cold`. Returns (first layer, rebuilt layer).
fn first_and_rebuilt(tmp: &Path, root: &Path, cold: &Path) -> (Digest, Digest) {
    let ctx = tmp.join("ctx");
    let files = crate::common::eight_member_context(&ctx);
    build(root, &ctx, "lw/s:1", &[]);
    let mut last = files[7].1.clone();
    last[1000] ^= 0x20;
    std::fs::write(ctx.join("f7.txt"), &last).unwrap();
    let resumed = build(root, &ctx, "lw/s:2", &[]);
    let cold_id = build(cold, &ctx, "lw/s:2", &["--no-cache"]);
    assert_eq!(resumed, cold_id, "the rebuilt image is the cold build's");
    let (first, second) = (layer_of(root, "lw/s:1"), layer_of(root, "lw/s:2"));
    assert_ne!(first, second);
    assert_eq!(second, layer_of(cold, "lw/s:2"));
    let store = Store::open(root).unwrap();
    assert!(
        !store.blob_path(&second).exists() && store.spliced_path(&second).exists(),
        "the rebuilt layer is kept spliced"
    );
    assert_eq!(store.spliced_header(&second).unwrap().parent, first);
    (first, second)
}

#[test]
fn a_spliced_layer_reads_as_the_cold_builds_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cold) = (tmp.path().join("store"), tmp.path().join("cold"));
    let (_, layer) = first_and_rebuilt(tmp.path(), &root, &cold);
    let ctx = tmp.path().join("ctx");

    // save (docker-archive with the OCI layout inside) and an OCI tarball: byte for byte the cold store's.
    for (r, name) in [(&root, "a"), (&cold, "b")] {
        let tar = tmp.path().join(format!("save-{name}.tar"));
        lw_ok(r, &["save", "lw/s:2", "-o", tar.to_str().unwrap()]);
        let oci = tmp.path().join(format!("oci-{name}.tar"));
        let out = format!("type=oci,dest={}", oci.display());
        build(r, &ctx, "lw/s:2", &["--output", &out]);
    }
    for kind in ["save", "oci"] {
        let a = sha256_file(&tmp.path().join(format!("{kind}-a.tar")));
        let b = sha256_file(&tmp.path().join(format!("{kind}-b.tar")));
        assert_eq!(
            a, b,
            "{kind}: the spliced store's tarball is the cold store's"
        );
    }
    let cold_layer = std::fs::read(Store::open(&cold).unwrap().blob_path(&layer)).unwrap();

    // serve's registry over the store: HEAD's size, a whole GET, ranges across the joint.
    let srv = Served::start(&root, |_| {});
    let path = format!("/v2/lw/s/blobs/{layer}");
    let r = srv.req("HEAD", &path, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(cold_layer.len().to_string().as_str())
    );
    let r = srv.req("GET", &path, &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body == cold_layer, "GET gives the cold layer's bytes");
    let head = Store::open(&root)
        .unwrap()
        .spliced_header(&layer)
        .unwrap()
        .head as usize;
    for (from, to) in [
        (head - 10, head + 9),
        (0, 99),
        (cold_layer.len() - 5, cold_layer.len() - 1),
    ] {
        let r = srv.req(
            "GET",
            &path,
            &[("Range", &format!("bytes={from}-{to}"))],
            b"",
        );
        assert_eq!(r.status, 206, "{from}-{to}");
        assert!(r.body == cold_layer[from..=to], "bytes {from}-{to}");
    }

    // push to another registry on loopback (it verifies every blob), then pull it back elsewhere.
    let dest_srv = Served::start(&tmp.path().join("served"), |_| {});
    let cfg = tmp.path().join("docker");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        serde_json::json!({"auths": {dest_srv.host(): {"auth": base64_auth(&dest_srv.token)}}})
            .to_string(),
    )
    .unwrap();
    let dest = format!("{}/lw/pushed:1", dest_srv.host());
    let o = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(&root)
        .args(["push", "lw/s:2", &dest])
        .env("DOCKER_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "push: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let third = tmp.path().join("third");
    lw_ok(&third, &["pull", &dest]);
    assert_eq!(
        sha256_file(&Store::open(&third).unwrap().blob_path(&layer)),
        layer
    );
}

fn base64_auth(token: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("me:{token}"))
}

#[test]
fn rmi_of_the_earlier_image_flattens_the_spliced_layer_and_removing_both_frees_both() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cold) = (tmp.path().join("store"), tmp.path().join("cold"));
    let (first, second) = first_and_rebuilt(tmp.path(), &root, &cold);
    let store = Store::open(&root).unwrap();

    // Removing the first image writes the spliced layer out in full, so its parent goes.
    lw_ok(&root, &["rmi", "lw/s:1"]);
    assert!(!store.has_blob(&first), "the parent goes");
    assert!(spliced_files(&root).is_empty());
    assert_eq!(sha256_file(&store.blob_path(&second)), second);
    let tar = tmp.path().join("after-rmi.tar");
    lw_ok(&root, &["save", "lw/s:2", "-o", tar.to_str().unwrap()]);
    let cold_tar = tmp.path().join("cold.tar");
    lw_ok(&cold, &["save", "lw/s:2", "-o", cold_tar.to_str().unwrap()]);
    assert_eq!(sha256_file(&tar), sha256_file(&cold_tar));

    lw_ok(&root, &["rmi", "lw/s:2"]);
    assert!(
        !store.has_blob(&second) && !store.has_blob(&first),
        "both go"
    );
    assert!(spliced_files(&root).is_empty());
    let left: Vec<_> = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing left: {left:?}");
}

#[test]
fn prune_keeps_the_earlier_blob_while_its_image_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cold) = (tmp.path().join("store"), tmp.path().join("cold"));
    let (first, second) = first_and_rebuilt(tmp.path(), &root, &cold);
    let store = Store::open(&root).unwrap();
    // Both images named: prune keeps both blobs, and the layer stays spliced.
    lw_ok(&root, &["image", "prune", "-f"]);
    assert!(store.has_blob(&first) && store.spliced_path(&second).exists());
    // The first image's name moves to the second: the first is dangling, prune removes it and the spliced layer is
    // written out in full.
    lw_ok(&root, &["tag", "lw/s:2", "lw/s:1"]);
    lw_ok(&root, &["image", "prune", "-f"]);
    assert!(!store.has_blob(&first));
    assert!(spliced_files(&root).is_empty());
    assert_eq!(sha256_file(&store.blob_path(&second)), second);
}

#[test]
fn a_damaged_tail_or_parent_is_refused_naming_the_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cold) = (tmp.path().join("store"), tmp.path().join("cold"));
    let (first, second) = first_and_rebuilt(tmp.path(), &root, &cold);
    let store = Store::open(&root).unwrap();
    let save = |what: &str| {
        let tar = tmp.path().join(format!("{what}.tar"));
        let o = lw(&root, &["save", "lw/s:2", "-o", tar.to_str().unwrap()]);
        assert!(!o.status.success(), "{what}: save must fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };

    // The tail cut short.
    let tail = store.spliced_path(&second);
    let good = std::fs::read(&tail).unwrap();
    std::fs::write(&tail, &good[..good.len() - 1]).unwrap();
    let e = save("tail");
    assert!(e.contains(&second.to_string()), "{e}");
    std::fs::write(&tail, &good).unwrap();

    // The parent shorter than the start it gives.
    let parent = store.blob_path(&first);
    let whole = std::fs::read(&parent).unwrap();
    std::fs::write(&parent, &whole[..1000]).unwrap();
    let e = save("parent");
    assert!(
        e.contains(&second.to_string()) && e.contains(&first.to_string()),
        "{e}"
    );
    // The parent gone.
    std::fs::remove_file(&parent).unwrap();
    let e = save("gone");
    assert!(e.contains(&first.to_string()), "{e}");
}

/// An edit made after another was undone resumes from the layer written before the first edit (the store keeps a
/// step's last few resume records): an edit in the first file, undone, then one in the last file gives a layer
/// spliced from the first build's, the cold build's bytes.
#[test]
fn an_edit_after_an_undone_one_resumes_from_the_earlier_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cold) = (tmp.path().join("store"), tmp.path().join("cold"));
    let ctx = tmp.path().join("ctx");
    let files = crate::common::eight_member_context(&ctx);
    build(&root, &ctx, "lw/u:1", &[]);
    let first = layer_of(&root, "lw/u:1");
    let mut f0 = files[0].1.clone();
    f0[10] ^= 0x20;
    std::fs::write(ctx.join("f0.txt"), &f0).unwrap();
    build(&root, &ctx, "lw/u:2", &[]);
    std::fs::write(ctx.join("f0.txt"), &files[0].1).unwrap();
    let mut f7 = files[7].1.clone();
    f7[10] ^= 0x20;
    std::fs::write(ctx.join("f7.txt"), &f7).unwrap();
    let id = build(&root, &ctx, "lw/u:3", &[]);
    assert_eq!(id, build(&cold, &ctx, "lw/u:3", &["--no-cache"]));
    let third = layer_of(&root, "lw/u:3");
    let store = Store::open(&root).unwrap();
    let h = store.spliced_header(&third).expect("spliced");
    assert_eq!(h.parent, first, "resumed from the first build's layer");
    assert!(h.head * 2 >= store.blob_size(&first).unwrap());
}

/// A `--no-cache` build leaves its layer's checkpoints too (as it leaves its cache entries), so the next build after
/// an edit in the last file resumes from its layer.
#[test]
fn a_rebuild_resumes_from_a_no_cache_builds_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cold) = (tmp.path().join("store"), tmp.path().join("cold"));
    let ctx = tmp.path().join("ctx");
    let files = crate::common::eight_member_context(&ctx);
    build(&root, &ctx, "lw/n:1", &["--no-cache"]);
    let first = layer_of(&root, "lw/n:1");
    let mut f7 = files[7].1.clone();
    f7[10] ^= 0x20;
    std::fs::write(ctx.join("f7.txt"), &f7).unwrap();
    let id = build(&root, &ctx, "lw/n:2", &[]);
    assert_eq!(id, build(&cold, &ctx, "lw/n:2", &["--no-cache"]));
    let store = Store::open(&root).unwrap();
    let h = store
        .spliced_header(&layer_of(&root, "lw/n:2"))
        .expect("spliced");
    assert_eq!(h.parent, first);
}
