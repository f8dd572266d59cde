//! zstd layers (`build --compression zstd`, `--output ...,compression=zstd`) read by tools no one here wrote: the
//! `zstd` CLI, skopeo, podman and a Distribution registry; and what Docker 20.10 and umoci 0.4.7 (Debian 12's)
//! do with them: both refuse them, as recorded here.

use crate::common;
use crate::common::registry;
use lw_test_kit::docker;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{lw_ok, run_ok, Podman};
use lw_oci::media;
use serde_json::Value;

/// A context: Debian's static busybox, a few MB of mixed data (several zstd frames) and `dockerfile`.
fn context(dir: &Path, dockerfile: &str) -> (PathBuf, Vec<u8>) {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("data")).unwrap();
    std::fs::copy(common::BUSYBOX, ctx.join("busybox")).unwrap();
    let mut x: u64 = 7;
    let mut last = Vec::new();
    for i in 0..24 {
        let data: Vec<u8> = (0..200_000)
            .map(|j| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 6 == 5 || j % 4 == 0 {
                    (x >> 56) as u8
                } else {
                    b"zstd frames "[j % 12]
                }
            })
            .collect();
        std::fs::write(ctx.join(format!("data/f{i:02}")), &data).unwrap();
        last = data;
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    (ctx, last)
}

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY data/ /data/\nENV PATH=/bin\n\
                          ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"sh\", \"-c\", \"echo zstd ok; ls /data | wc -l\"]\n";

/// The manifest digest, manifest (as JSON) and diff IDs of `name` in the store at `root`.
fn image(root: &Path, name: &str) -> (String, Value, Vec<String>) {
    let store = layerwright::store::Store::open(root).unwrap();
    let full = layerwright::names::normalize(name).unwrap();
    let rec = store
        .records()
        .unwrap()
        .into_iter()
        .find(|r| r.name.as_deref() == Some(full.as_str()))
        .unwrap_or_else(|| panic!("{full} is not in the store"));
    let img = store.resolve(&rec.descriptor, None).unwrap();
    let ids = img
        .config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.to_string())
        .collect();
    (
        rec.descriptor.digest.to_string(),
        serde_json::to_value(&img.manifest).unwrap(),
        ids,
    )
}

fn manifest_of(root: &Path, name: &str) -> Value {
    image(root, name).1
}

/// Build the zstd image `name` into `root` and save it to `dir/zstd.tar` with `--output`.
fn build_zstd(root: &Path, dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let (ctx, last) = context(dir, DOCKERFILE);
    let tar = dir.join("zstd.tar");
    lw_ok(
        root,
        &[
            "build",
            "-q",
            "-t",
            name,
            "--output",
            &format!("type=oci,dest={},compression=zstd", tar.display()),
            ctx.to_str().unwrap(),
        ],
    );
    (tar, last)
}

#[test]
fn zstd_layers_are_read_by_zstd_skopeo_umoci_and_podman() {
    lw_test_kit::require!("zstd", "skopeo", "umoci", "podman", "runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let name = "lwtest/zstd:1";
    let (tar, last) = build_zstd(&root, tmp.path(), name);
    let (digest, m, diff_ids) = image(&root, name);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let store = layerwright::store::Store::open(&root).unwrap();
    for (l, diff_id) in layers.iter().zip(&diff_ids) {
        assert_eq!(l["mediaType"], media::OCI_LAYER_ZSTD);
        let digest: lw_oci::Digest = l["digest"].as_str().unwrap().parse().unwrap();
        // The zstd CLI reads every frame, checks their checksums and gives back the diff ID.
        let out = run_ok(Command::new("sh").args([
            "-c",
            &format!(
                "zstd -dc {} | sha256sum",
                store.blob_path(&digest).display()
            ),
        ]));
        assert_eq!(&format!("sha256:{}", &out[..64]), diff_id, "layer {digest}");
    }
    let data_layer =
        std::fs::read(store.blob_path(&layers[1]["digest"].as_str().unwrap().parse().unwrap()))
            .unwrap();
    let frames = data_layer
        .windows(4)
        .filter(|w| w == &[0x28, 0xb5, 0x2f, 0xfd])
        .count();
    assert!(frames > 2, "the data layer has {frames} zstd frames");

    // skopeo sees the zstd media types and copies the image out, verifying every blob.
    let v: Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", tar.display())]),
    ))
    .unwrap();
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    let raw: Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tar.display()),
    ])))
    .unwrap();
    assert_eq!(raw, m, "skopeo reads our manifest as it is");
    let copied = tmp.path().join("copied");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", tar.display()),
        &format!("oci:{}:copied", copied.display()),
    ]));

    // umoci unpacks the OCI layout inside the tarball.
    let layout = tmp.path().join("layout");
    lw_test_kit::process::untar(&tar, &layout);
    // umoci reads zstd layers from 0.5 on; Debian 12's 0.4.7 refuses them by media type (recorded here).
    let bundle = tmp.path().join("bundle");
    let version = run_ok(Command::new("umoci").arg("--version"));
    let o = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:docker.io/{name}", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    println!("{} unpack of a zstd image: {said}", version.trim());
    if version.contains("version 0.4.") {
        assert!(!o.status.success());
        assert!(
            said.contains(
                "blob is not correct mediatype: application/vnd.oci.image.layer.v1.tar+zstd"
            ),
            "{said}"
        );
    } else {
        assert!(o.status.success(), "{said}");
        assert_eq!(std::fs::read(bundle.join("rootfs/data/f23")).unwrap(), last);
        assert!(bundle.join("rootfs/bin/busybox").is_file());
    }

    // podman loads and runs it.
    let podman = Podman::new(&tmp.path().join("podman"));
    let out = podman.load(&tar);
    assert!(out.contains("lwtest/zstd"), "podman load said: {out}");
    let out = podman.run(&[&format!("docker.io/{name}")]);
    assert_eq!(out, "zstd ok\n24\n");
    let out = podman.run(&[&format!("docker.io/{name}"), "sha256sum", "/data/f23"]);
    assert_eq!(
        out.split_whitespace().next(),
        Some(lw_oci::Digest::sha256_of(&last).encoded())
    );

    // Our own load takes the tarball back with the same digests.
    let root2 = tmp.path().join("store2");
    lw_ok(&root2, &["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(manifest_of(&root2, name), m);
}

#[test]
fn zstd_images_push_to_and_pull_from_a_distribution_registry_unchanged() {
    lw_test_kit::require!("docker-registry", "/bin/busybox");
    let reg = registry::Registry::start(registry::RegistryAuth::None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    build_zstd(&root, tmp.path(), "lwtest/zstd:1");
    let remote = format!("{}/lwtest/zstd:1", reg.host());
    lw_ok(&root, &["push", "lwtest/zstd:1", &remote]);
    let root2 = tmp.path().join("store2");
    lw_ok(&root2, &["pull", &remote]);
    let (digest, manifest, ids) = image(&root, "lwtest/zstd:1");
    let pulled = image(&root2, &remote);
    assert_eq!(pulled, (digest, manifest.clone(), ids));
    assert_eq!(manifest["layers"][1]["mediaType"], media::OCI_LAYER_ZSTD);
}

#[test]
fn run_layers_of_a_zstd_build_are_zstd_and_run_in_podman() {
    lw_test_kit::require!("runc", "podman", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    build_zstd(&root, tmp.path(), "lwtest/zstd:1");
    let ctx = tmp.path().join("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lwtest/zstd:1\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo made by RUN > /made.txt\"]\n\
         CMD [\"cat\", \"/made.txt\"]\n",
    )
    .unwrap();
    let build = |comp: &str| {
        lw_ok(
            &root,
            &[
                "build",
                "-q",
                "--network",
                "none",
                "--compression",
                comp,
                "-t",
                &format!("lwtest/run-{comp}:1"),
                ctx.to_str().unwrap(),
            ],
        )
    };
    build("zstd");
    let m = manifest_of(&root, "lwtest/run-zstd:1");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers
        .iter()
        .all(|l| l["mediaType"] == media::OCI_LAYER_ZSTD));
    // The same RUN with gzip: another cache key, a gzip layer with the same diff ID.
    build("gzip");
    let g = manifest_of(&root, "lwtest/run-gzip:1");
    assert_eq!(g["layers"][2]["mediaType"], media::OCI_LAYER_GZIP);
    assert_eq!(
        image(&root, "lwtest/run-zstd:1").2,
        image(&root, "lwtest/run-gzip:1").2
    );

    let tar = tmp.path().join("run.tar");
    lw_ok(
        &root,
        &["save", "lwtest/run-zstd:1", "-o", tar.to_str().unwrap()],
    );
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    let out = podman.run(&["docker.io/lwtest/run-zstd:1"]);
    assert_eq!(out, "made by RUN\n");
}

/// Docker 20.10 predates zstd layers (moby added them in 23.0): record what it does with ours.
#[test]
fn docker_20_10_refuses_zstd_layers_on_load() {
    let Some(d) = docker::Dockerd::shared() else {
        return;
    };
    let version = d.docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let (tar, _) = build_zstd(&root, tmp.path(), "lwtest/zstd:1");
    let o = d.docker(&["load", "-i", tar.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    println!("docker {} load of a zstd image: {said}", version.trim());
    if version.starts_with("20.") {
        assert!(
            !o.status.success(),
            "docker 20.10 loaded zstd layers: {said}"
        );
        // It reads the archive's manifest.json, then fails on the first layer it cannot decompress.
        // Docker 20.10.24 says: "Error processing tar file(exit status 1): archive/tar: invalid tar header".
        assert!(said.contains("invalid tar header"), "{said}");
        let images = d.docker_ok(&["images", "-q", "lwtest/zstd"]);
        assert_eq!(images.trim(), "", "nothing is left behind");
    } else {
        // Docker 23 and later read zstd layers.
        assert!(o.status.success(), "{said}");
    }
}
