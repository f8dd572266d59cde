//! lw-wasm's `loadTarball` on docker archives (manifest.json + configs + layer tars, no index.json): one written by
//! skopeo (`cargo xtask test` makes it and passes its path at compile time as LW_TEST_DOCKER_ARCHIVE; see
//! wasm-tests/build.rs and xtask/src/wasm_fixtures.rs), gzip layers, hostile archives; and `scanLayer` on a Blob.

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Reflect, Uint8Array};
use lw_layer::tar::{TarReader, TarWriter, WriteOptions};
use lw_layer::{Entry, EntryKind, LayerWriter};
use lw_oci::media::Compression;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

const SKOPEO_ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/docker-archive.tar"));

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn message(e: JsValue) -> String {
    js_sys::Error::from(e).message().into()
}

/// `bytes` as a `Blob`, the way a page hands a `File` over.
fn blob(bytes: &[u8]) -> JsValue {
    let parts = Array::of1(&Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts)
        .unwrap()
        .into()
}

async fn blob_bytes(b: &web_sys::Blob) -> Vec<u8> {
    Uint8Array::new(&JsFuture::from(b.array_buffer()).await.unwrap()).to_vec()
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = TarWriter::new(&mut out, WriteOptions::default());
    for (name, data) in members {
        w.append_bytes(&Entry::file(name, 0o644, data.len() as u64), data)
            .unwrap();
    }
    w.finish().unwrap();
    out
}

fn layer(files: &[(&str, &[u8])], c: Compression) -> (Vec<u8>, String) {
    let mut lw = LayerWriter::new(Vec::new(), c, WriteOptions::default()).unwrap();
    for (p, d) in files {
        lw.tar()
            .append_bytes(&Entry::file(p, 0o644, d.len() as u64), d)
            .unwrap();
    }
    let (bytes, info) = lw.finish().unwrap();
    (bytes, info.diff_id.to_string())
}

/// A docker archive in docker's own shape: `<id>.json`, `<id>/layer.tar`, `manifest.json`.
fn docker_archive(layers: &[(Vec<u8>, String)], layer_names: &[&str], tag: &str) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|(_, d)| d.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!([{
        "Config": "cfg.json", "RepoTags": [tag], "Layers": layer_names,
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut members: Vec<(&str, &[u8])> = vec![("cfg.json", &config)];
    for (i, (bytes, _)) in layers.iter().enumerate() {
        members.push((["l0/layer.tar", "l1/layer.tar", "l2/layer.tar"][i], bytes));
    }
    members.push(("manifest.json", &manifest));
    tar_of(&members)
}

#[wasm_bindgen_test]
async fn skopeo_docker_archive_loads_as_an_oci_image() {
    if SKOPEO_ARCHIVE.is_empty() {
        console_log!("docker archive (skopeo): NOT RUN (LW_TEST_DOCKER_ARCHIVE unset at compile time; cargo xtask test sets it)");
        return;
    }
    // The layer members skopeo wrote, by name: the test's own view of the archive.
    let mut tar = TarReader::new(SKOPEO_ARCHIVE);
    let mut manifest = Vec::new();
    while let Some(e) = tar.next_entry().unwrap() {
        if e.path == "manifest.json" && e.kind == EntryKind::File {
            manifest = tar.read_to_vec(1 << 20).unwrap();
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layers: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), 2, "{manifest}");

    let loaded = lw_wasm::load_tarball(blob(SKOPEO_ARCHIVE))
        .await
        .map_err(message)
        .unwrap();
    let images = Array::from(&get(&loaded, "images"));
    assert_eq!(images.length(), 1);
    let names = Array::from(&get(&images.get(0), "names"));
    assert_eq!(
        names.get(0).as_string().as_deref(),
        Some("docker.io/lw/dockerarchive:1")
    );
    let digest = get(&images.get(0), "digest").as_string().unwrap();
    let listed = Array::from(&lw_wasm::images().unwrap());
    let rec = listed
        .iter()
        .find(|r| get(r, "digest").as_string().as_deref() == Some(digest.as_str()))
        .unwrap();
    assert_eq!(
        get(&rec, "mediaType").as_string().as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    // skopeo writes uncompressed layers named by their digest: the first holds hello.txt.
    let l0 = format!(
        "sha256:{}",
        layers[0]
            .trim_end_matches(".tar")
            .rsplit('/')
            .next()
            .unwrap()
    );
    let entries = Array::from(
        &lw_wasm::layer_entries("lw/dockerarchive:1", &l0)
            .await
            .map_err(message)
            .unwrap(),
    );
    let paths: Vec<String> = entries
        .iter()
        .map(|e| get(&e, "path").as_string().unwrap())
        .collect();
    assert!(paths.contains(&"hello.txt".to_string()), "{paths:?}");
    let hello = lw_wasm::read_file("docker.io/lw/dockerarchive:1", &l0, "/hello.txt")
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(hello.to_vec(), b"hello from a docker archive\n");
    // The converted image exports and loads back to the same manifest digest.
    let out = blob_bytes(
        &lw_wasm::export_tarball("lw/dockerarchive:1", JsValue::UNDEFINED)
            .await
            .unwrap(),
    )
    .await;
    // The config bytes were kept: the image ID (config digest) is the one skopeo named the config by.
    let mut tar = TarReader::new(&out[..]);
    let mut exported = Vec::new();
    while let Some(e) = tar.next_entry().unwrap() {
        if e.path == "manifest.json" {
            exported = tar.read_to_vec(1 << 20).unwrap();
        }
    }
    let exported: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    let id = manifest[0]["Config"]
        .as_str()
        .unwrap()
        .trim_end_matches(".json");
    assert_eq!(
        exported[0]["Config"].as_str(),
        Some(format!("blobs/sha256/{id}").as_str()),
        "{exported}"
    );
    let again = lw_wasm::load_tarball(blob(&out)).await.unwrap();
    let again = Array::from(&get(&again, "images"));
    assert_eq!(
        get(&again.get(0), "digest").as_string().as_deref(),
        Some(digest.as_str())
    );
    console_log!(
        "docker archive (skopeo): loaded as {digest} with {} entries in its first layer",
        paths.len()
    );
}

#[wasm_bindgen_test]
async fn gzip_docker_archive_and_hostile_archives() {
    let l0 = layer(&[("a.txt", b"gzip layer\n")], Compression::Gzip);
    let l1 = layer(&[("b.txt", b"plain layer\n")], Compression::None);
    let good = docker_archive(
        &[l0.clone(), l1.clone()],
        &["l0/layer.tar", "l1/layer.tar"],
        "lw/gz:1",
    );
    let r = lw_wasm::load_tarball(blob(&good))
        .await
        .map_err(message)
        .unwrap();
    let digest = get(&Array::from(&get(&r, "images")).get(0), "digest")
        .as_string()
        .unwrap();
    assert!(digest.starts_with("sha256:"));
    let gz_digest = lw_oci::Digest::sha256_of(&l0.0).to_string();
    let f = lw_wasm::read_file("lw/gz:1", &gz_digest, "a.txt")
        .await
        .unwrap();
    assert_eq!(f.to_vec(), b"gzip layer\n");
    // The same archive as a Uint8Array gives the same image.
    let r2 = lw_wasm::load_tarball(Uint8Array::from(&good[..]).into())
        .await
        .unwrap();
    assert_eq!(
        get(&Array::from(&get(&r2, "images")).get(0), "digest").as_string(),
        Some(digest)
    );

    let mut checked = 0;
    // A diff ID that does not match the layer's content.
    let wrong = (l0.0.clone(), l1.1.clone());
    let bad = docker_archive(
        &[wrong, l1.clone()],
        &["l0/layer.tar", "l1/layer.tar"],
        "lw/bad:1",
    );
    let e = message(lw_wasm::load_tarball(blob(&bad)).await.unwrap_err());
    assert!(e.contains("diff ID"), "{e}");
    checked += 1;
    // manifest.json naming a layer outside the archive.
    let bad = docker_archive(std::slice::from_ref(&l0), &["../l0/layer.tar"], "lw/bad:1");
    let e = message(lw_wasm::load_tarball(blob(&bad)).await.unwrap_err());
    assert!(e.contains(".."), "{e}");
    checked += 1;
    // A member whose own name climbs out (header patched, checksum fixed).
    let mut bad = good.clone();
    bad[..8].copy_from_slice(b"../g.jso");
    bad[148..156].copy_from_slice(b"        ");
    let sum: u32 = bad[..512].iter().map(|&b| b as u32).sum();
    bad[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let e = message(lw_wasm::load_tarball(blob(&bad)).await.unwrap_err());
    assert!(e.contains(".."), "{e}");
    checked += 1;
    // A truncated archive (cut inside a layer).
    let e = message(
        lw_wasm::load_tarball(blob(&good[..good.len() / 2]))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("truncated") || e.contains("ends"), "{e}");
    checked += 1;
    // A layer whose tar is cut short but whose diff ID is declared as if whole.
    let short = (l1.0[..l1.0.len() - 1024].to_vec(), l1.1.clone());
    let bad = docker_archive(&[short], &["l0/layer.tar"], "lw/bad:1");
    let e = message(lw_wasm::load_tarball(blob(&bad)).await.unwrap_err());
    assert!(e.contains("diff ID") || e.contains("truncated"), "{e}");
    checked += 1;
    // A manifest.json larger than any real one.
    let huge = vec![b' '; 5 << 20];
    let bad = tar_of(&[("manifest.json", &huge)]);
    let e = message(lw_wasm::load_tarball(blob(&bad)).await.unwrap_err());
    assert!(e.contains("allowed"), "{e}");
    checked += 1;
    // A config that is not an image config.
    let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"nope","diff_ids":[]}}"#;
    let man = br#"[{"Config":"cfg.json","RepoTags":["lw/bad:1"],"Layers":[]}]"#;
    let bad = tar_of(&[("cfg.json", cfg), ("manifest.json", man)]);
    let e = message(lw_wasm::load_tarball(blob(&bad)).await.unwrap_err());
    assert!(e.contains("not an image config"), "{e}");
    checked += 1;
    // Not an image archive at all.
    let e = message(
        lw_wasm::load_tarball(blob(&tar_of(&[("x", b"y")])))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("not an image archive"), "{e}");
    checked += 1;
    // Nothing of the bad archives reached the store.
    let names: Vec<String> = Array::from(&lw_wasm::images().unwrap())
        .iter()
        .filter_map(|r| get(&r, "name").as_string())
        .collect();
    assert!(!names.iter().any(|n| n.contains("lw/bad")), "{names:?}");
    console_log!("docker archive (gzip + hostile): 1 loaded, {checked}/8 hostile archives refused");
}

#[wasm_bindgen_test]
async fn scan_layer_streams_a_blob() {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let files: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                format!("d/f{i:03}"),
                big[..(i * 50_000) % big.len()].to_vec(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), &d[..])).collect();
    let (gz, diff) = layer(&refs, Compression::Gzip);
    let seen = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let s2 = seen.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| s2.set(s2.get() + 1));
    let opts: JsValue = Object::new().into();
    Reflect::set(&opts, &"onEntry".into(), cb.as_ref()).unwrap();
    let r = lw_wasm::scan_layer(blob(&gz), opts)
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(get(&r, "diffId").as_string(), Some(diff.clone()));
    assert_eq!(get(&r, "count").as_f64(), Some(50.0));
    assert_eq!(seen.get(), 50);
    let r = lw_wasm::scan_layer(blob(&gz), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(Array::from(&get(&r, "entries")).length(), 50);
    assert_eq!(get(&r, "compression").as_string().as_deref(), Some("gzip"));
    let no_hash: JsValue = Object::new().into();
    Reflect::set(&no_hash, &"digests".into(), &JsValue::FALSE).unwrap();
    let r = lw_wasm::scan_layer(blob(&gz), no_hash).await.unwrap();
    assert!(get(&r, "diffId").is_null());
    assert_eq!(get(&r, "count").as_f64(), Some(50.0));
    let e = message(
        lw_wasm::scan_layer(blob(&gz[..gz.len() - 100]), JsValue::UNDEFINED)
            .await
            .unwrap_err(),
    );
    assert!(!e.is_empty());
    assert!(lw_wasm::memory_bytes() > 0.0);
    console_log!("scanLayer: 50/50 entries, diff ID and truncation checked");
}

/// `inspectImage` shows an opened archive from the store's documents (the inspector's view of a tarball): the
/// manifest `loadTarball` named, the config as written, and each layer paired with the history entry that made it
/// (entries with `empty_layer` make none).
#[wasm_bindgen_test]
async fn inspect_image_shows_a_loaded_docker_archive() {
    let l0 = layer(&[("a.txt", b"first")], Compression::None);
    let l1 = layer(&[("b.txt", b"second layer")], Compression::Gzip);
    let config = serde_json::json!({
        "architecture": "arm64", "os": "linux", "config": {"Cmd": ["/b"]},
        "rootfs": {"type": "layers", "diff_ids": [l0.1, l1.1]},
        "history": [
            {"created_by": "COPY a.txt /"},
            {"created_by": "ENV X=1", "empty_layer": true},
            {"created_by": "COPY b.txt /"},
        ],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!([{
        "Config": "cfg.json", "RepoTags": ["lw/inspected:1"], "Layers": ["l0/layer.tar", "l1/layer.tar"],
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let archive = tar_of(&[
        ("cfg.json", &config),
        ("l0/layer.tar", &l0.0),
        ("l1/layer.tar", &l1.0),
        ("manifest.json", &manifest),
    ]);
    let loaded = lw_wasm::load_tarball(blob(&archive))
        .await
        .map_err(message)
        .unwrap();
    let digest = get(&Array::from(&get(&loaded, "images")).get(0), "digest")
        .as_string()
        .unwrap();
    let info = lw_wasm::inspect_image(&digest, JsValue::UNDEFINED)
        .map_err(message)
        .unwrap();
    assert_eq!(
        get(&info, "manifestDigest").as_string(),
        Some(digest.clone())
    );
    assert!(
        get(&info, "index").is_undefined(),
        "a docker archive has no index"
    );
    let platforms: Vec<String> = Array::from(&get(&info, "platforms"))
        .iter()
        .map(|p| p.as_string().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/arm64"]);
    let layers = Array::from(&get(&info, "layers"));
    assert_eq!(layers.length(), 2);
    // Each blob is the archive's layer as it was (the first uncompressed, so its digest is its diff ID).
    let sha = |b: &[u8]| lw_oci::Digest::sha256_of(b).to_string();
    let want = [(&l0, "COPY a.txt /"), (&l1, "COPY b.txt /")];
    for (i, ((bytes, _), created_by)) in want.iter().enumerate() {
        let l = layers.get(i as u32);
        assert_eq!(get(&l, "digest").as_string(), Some(sha(bytes)), "layer {i}");
        assert_eq!(
            get(&l, "size").as_f64(),
            Some(bytes.len() as f64),
            "layer {i}"
        );
        assert_eq!(
            get(&l, "createdBy").as_string().as_deref(),
            Some(*created_by)
        );
    }
    assert_eq!(
        get(&layers.get(0), "digest").as_string(),
        Some(l0.1.clone())
    );
    // The config is the archive's own bytes: its digest is the manifest's config digest.
    let m = get(&info, "manifest");
    assert_eq!(
        get(&get(&m, "config"), "digest").as_string(),
        Some(sha(&config))
    );
    assert_eq!(Array::from(&get(&info, "history")).length(), 3);
    // By name too, and an unknown name is refused with the name in the message.
    let by_name = lw_wasm::inspect_image("lw/inspected:1", JsValue::UNDEFINED).unwrap();
    assert_eq!(get(&by_name, "manifestDigest").as_string(), Some(digest));
    let e = message(lw_wasm::inspect_image("lw/not-there:1", JsValue::UNDEFINED).unwrap_err());
    assert!(e.contains("lw/not-there"), "{e}");
}

/// `inspectImage(ref, {platform})`, as `runContainer` asks for the VM's linux/386 image: a tag of a two-platform
/// build picks the platform's manifest from the index, a platform's manifest digest (no store record of its own)
/// resolves too, and an image of another platform is refused with whose it is.
#[wasm_bindgen_test]
async fn inspect_image_picks_a_platform_and_takes_manifest_digests() {
    let set = |o: &JsValue, k: &str, v: JsValue| {
        Reflect::set(o, &JsValue::from_str(k), &v).unwrap();
    };
    let files: JsValue = Object::new().into();
    set(
        &files,
        "hello.txt",
        Uint8Array::from(&b"two platforms\n"[..]).into(),
    );
    let o: JsValue = Object::new().into();
    set(
        &o,
        "dockerfile",
        "FROM scratch\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY hello.txt /\n".into(),
    );
    set(&o, "files", files);
    set(&o, "tags", Array::of1(&"lw/two:1".into()).into());
    set(
        &o,
        "platforms",
        Array::of2(&"linux/amd64".into(), &"linux/386".into()).into(),
    );
    let built = lw_wasm::build(o).await.map_err(message).unwrap();
    let amd64 = get(&built, "manifestDigest").as_string().unwrap();
    let index = get(&built, "indexDigest").as_string().unwrap();
    let vm = |p: &str| {
        let o: JsValue = Object::new().into();
        set(&o, "platform", p.into());
        o
    };
    let arch = |info: &JsValue| {
        get(&get(info, "config"), "architecture")
            .as_string()
            .unwrap()
    };
    let label = |info: &JsValue| {
        get(&get(&get(&get(info, "config"), "config"), "Labels"), "arch")
            .as_string()
            .unwrap()
    };

    // By tag: the index with both platforms, and the asked platform's manifest and config.
    let by_tag = lw_wasm::inspect_image("lw/two:1", vm("linux/386"))
        .map_err(message)
        .unwrap();
    let platforms: Vec<String> = Array::from(&get(&by_tag, "platforms"))
        .iter()
        .map(|p| p.as_string().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/386"]);
    assert!(!get(&by_tag, "index").is_undefined());
    assert_eq!(
        (arch(&by_tag), label(&by_tag)),
        ("386".to_string(), "386".to_string())
    );
    let i386 = get(&by_tag, "manifestDigest").as_string().unwrap();
    assert_ne!(i386, amd64);
    // Without a platform, the tab's (linux/amd64): the build's first manifest.
    let default = lw_wasm::inspect_image("lw/two:1", JsValue::UNDEFINED).unwrap();
    assert_eq!(
        get(&default, "manifestDigest").as_string(),
        Some(amd64.clone())
    );
    assert_eq!(arch(&default), "amd64");
    // The index by its digest (a store record) gives the same choice.
    let by_index = lw_wasm::inspect_image(&index, vm("linux/386")).unwrap();
    assert_eq!(
        get(&by_index, "manifestDigest").as_string(),
        Some(i386.clone())
    );

    // A platform's manifest by digest: not a record, resolved from the stored document (no index above it).
    let by_digest = lw_wasm::inspect_image(&i386, vm("linux/386"))
        .map_err(message)
        .unwrap();
    assert_eq!(
        get(&by_digest, "manifestDigest").as_string(),
        Some(i386.clone())
    );
    assert!(get(&by_digest, "index").is_undefined());
    assert_eq!(label(&by_digest), "386");
    let amd64_info = lw_wasm::inspect_image(&amd64, JsValue::UNDEFINED).unwrap();
    assert_eq!(label(&amd64_info), "amd64");

    // The other platform's manifest is refused for linux/386, naming both.
    let e = message(lw_wasm::inspect_image(&amd64, vm("linux/386")).unwrap_err());
    assert!(
        e.contains("has no linux/386 image") && e.contains("linux/amd64"),
        "{e}"
    );
    // A stored blob that is no manifest (the config) and a bad platform are errors that say so.
    let config = get(&get(&get(&by_digest, "manifest"), "config"), "digest")
        .as_string()
        .unwrap();
    let e = message(lw_wasm::inspect_image(&config, JsValue::UNDEFINED).unwrap_err());
    assert!(e.contains("not an image manifest or index"), "{e}");
    let e = message(lw_wasm::inspect_image("lw/two:1", vm("linux")).unwrap_err());
    assert!(e.contains("linux"), "{e}");
    console_log!("inspectImage: platform choice and manifest digests: passed");
}
