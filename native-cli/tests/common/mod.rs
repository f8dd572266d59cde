//! Fixtures of the CLI's tests that need the `layerwright` library or binary: run the CLI and make images in a
//! store from Debian's static busybox here; servers, images in memory, RUN builds and store checks in the
//! submodules. What needs neither (tools, podman/buildah/docker, registries, the corpora) is in `lw-test-kit`.

#![allow(dead_code)]

pub mod images;
pub mod kills;
pub mod load;
pub mod run;
pub mod serve;

/// The registry fixtures as one name: the kit's servers and this crate's in-memory images.
pub mod registry {
    pub use super::images::*;
    pub use lw_test_kit::registry::*;
}

use std::path::Path;
use std::process::{Command, Output};

pub use lw_test_kit::containers::Podman;
pub use lw_test_kit::process::{mounts_under, run_ok};

use layerwright::store::Store;
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::{self, Compression};
use lw_oci::{Descriptor, History, ImageConfig, Manifest, Platform};

pub fn lw(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run layerwright")
}

/// Run and require success; returns stdout.
pub fn lw_ok(root: &Path, args: &[&str]) -> String {
    let o = lw(root, args);
    assert!(
        o.status.success(),
        "layerwright {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub const BUSYBOX: &str = "/bin/busybox";

/// Files for a minimal busybox root file system: (entry, data).
pub fn busybox_files(extra: &[(&str, &[u8])]) -> Vec<(Entry, Vec<u8>)> {
    let bb = std::fs::read(BUSYBOX).expect("busybox-static is installed (/bin/busybox)");
    let mut v = vec![
        (Entry::dir("bin", 0o755), vec![]),
        (Entry::file("bin/busybox", 0o755, 0), bb),
    ];
    for applet in ["cat", "echo", "ls", "sh", "true"] {
        v.push((Entry::symlink(&format!("bin/{applet}"), "busybox"), vec![]));
    }
    v.push((Entry::dir("etc", 0o755), vec![]));
    v.push((
        Entry::file("etc/passwd", 0o644, 0),
        b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
    ));
    v.push((Entry::dir("tmp", 0o1777), vec![]));
    for (p, d) in extra {
        v.push((Entry::file(p, 0o644, 0), d.to_vec()));
    }
    v
}

/// Write one gzip layer into the store.
pub fn put_layer(store: &Store, files: &[(Entry, Vec<u8>)]) -> (Descriptor, lw_oci::Digest) {
    let mut lw = LayerWriter::new(
        Vec::new(),
        Compression::Gzip,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    )
    .unwrap();
    let mut sorted: Vec<&(Entry, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| lw_layer::path::cmp_components(&a.0.path, &b.0.path));
    for (e, d) in sorted {
        lw.tar().append_bytes(e, d).unwrap();
    }
    let (blob, info) = lw.finish().unwrap();
    let desc = store.put_bytes(media::OCI_LAYER_GZIP, &blob).unwrap();
    assert_eq!(desc.digest, info.digest);
    (desc, info.diff_id)
}

/// Make a busybox image named `name` in the store; returns its manifest descriptor.
pub fn make_busybox_image(
    store: &Store,
    name: &str,
    layers: &[Vec<(Entry, Vec<u8>)>],
) -> Descriptor {
    let mut config = ImageConfig {
        created: Some(lw_oci::config::rfc3339_from_epoch(0)),
        architecture: Platform::new("linux", std::env::consts::ARCH, None).architecture,
        os: "linux".into(),
        ..Default::default()
    };
    config.config.env = Some(vec!["PATH=/bin".into()]);
    config.config.cmd = Some(vec!["sh".into()]);
    let mut descs = Vec::new();
    for (i, files) in layers.iter().enumerate() {
        let (d, diff) = put_layer(store, files);
        descs.push(d);
        config.rootfs.diff_ids.push(diff);
        config.history.push(History {
            created: config.created.clone(),
            created_by: Some(format!("test layer {i}")),
            ..Default::default()
        });
    }
    let cfg = store
        .put_bytes(media::OCI_CONFIG, &lw_oci::to_canonical_json(&config))
        .unwrap();
    let m = store
        .put_bytes(
            media::OCI_MANIFEST,
            &lw_oci::to_canonical_json(&Manifest::oci(cfg, descs)),
        )
        .unwrap();
    store
        .set_tag(&layerwright::names::normalize(name).unwrap(), &m)
        .unwrap();
    m
}

/// A context of eight 700 KB text files (members are cut at entries past 2 MB, so the last file is in a later
/// member than the first ones).
pub fn eight_member_context(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /data/\n").unwrap();
    let mut seed = 7u64;
    let mut files = Vec::new();
    for i in 0..8 {
        let mut s = String::new();
        while s.len() < 700_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            s.push_str(&format!("{:x} line {i}\n", seed >> 20));
        }
        std::fs::write(dir.join(format!("f{i}.txt")), &s).unwrap();
        files.push((format!("f{i}.txt"), s.into_bytes()));
    }
    // The stat cache trusts a file only once its mtime is past the racy margin.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    files
}
