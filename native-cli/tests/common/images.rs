//! Images for registry tests: small ones in memory (one-file gzip layers, indexes), an OCI layout written from
//! them, and a busybox image pushed to a registry with skopeo.

use std::io::Write;
use std::path::Path;

use layerwright::remote::MemoryImages;
use layerwright::store::Store;

use super::{busybox_files, make_busybox_image};
use lw_oci::{media, Descriptor, Digest, ImageConfig, Index, Manifest, RootFs};

/// gzip `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A tar archive holding one regular file.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let put = |h: &mut [u8; 512], off: usize, len: usize, v: &str| {
        h[off..off + v.len().min(len)].copy_from_slice(&v.as_bytes()[..v.len().min(len)]);
    };
    put(&mut h, 100, 8, "0000644\0");
    put(&mut h, 108, 8, "0000000\0");
    put(&mut h, 116, 8, "0000000\0");
    put(&mut h, 124, 12, &format!("{:011o}\0", content.len()));
    put(&mut h, 136, 12, &format!("{:011o}\0", 0));
    h[156] = b'0';
    put(&mut h, 257, 6, "ustar\0");
    put(&mut h, 263, 2, "00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    put(&mut h, 148, 8, &format!("{sum:06o}\0 "));
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Put an image (config + gzip layers of one file each) into `mem`; returns the manifest descriptor.
pub fn make_image(
    mem: &mut MemoryImages,
    os: &str,
    arch: &str,
    files: &[(&str, &[u8])],
) -> Descriptor {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (name, content) in files {
        let tar = tar_with_file(name, content);
        diff_ids.push(Digest::sha256_of(&tar));
        layers.push(mem.add_blob(media::OCI_LAYER_GZIP, gzip(&tar)));
    }
    let config = ImageConfig {
        architecture: arch.to_string(),
        os: os.to_string(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..Default::default()
    };
    let config_desc = mem.add_blob(media::OCI_CONFIG, lw_oci::to_canonical_json(&config));
    let manifest = Manifest::oci(config_desc, layers);
    let mut d = mem.add_manifest(media::OCI_MANIFEST, lw_oci::to_canonical_json(&manifest));
    d.platform = Some(lw_oci::Platform::new(os, arch, None));
    d
}

/// An index over manifests already in `mem`; returns its descriptor.
pub fn make_index(mem: &mut MemoryImages, entries: Vec<Descriptor>) -> Descriptor {
    mem.add_manifest(
        media::OCI_INDEX,
        lw_oci::to_canonical_json(&Index::oci(entries)),
    )
}

/// Write `mem`'s content as an OCI image layout in `dir`, with `root` tagged `tag` in `index.json`.
pub fn write_oci_layout(mem: &MemoryImages, dir: &Path, root: &Descriptor, tag: &str) {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for (d, b) in &mem.blobs {
        std::fs::write(blobs.join(d.encoded()), b).unwrap();
    }
    for (d, (_, b)) in &mem.manifests {
        std::fs::write(blobs.join(d.encoded()), b).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entry = Descriptor::new(&root.media_type, root.digest.clone(), root.size);
    entry.set_annotation(lw_oci::descriptor::annotations::REF_NAME, tag);
    std::fs::write(
        dir.join("index.json"),
        lw_oci::to_canonical_json(&Index::oci(vec![entry])),
    )
    .unwrap();
}

/// Push a busybox image to `host` as `team/bb:1` with skopeo (`creds` or anonymous); its digest and manifest.
pub fn seed_busybox(tmp: &Path, host: &str, creds: Option<&str>) -> (Digest, Manifest) {
    let src_root = tmp.join("src");
    let src = Store::open(&src_root).unwrap();
    let m = make_busybox_image(
        &src,
        "busybox:latest",
        &[busybox_files(&[("etc/up", b"up\n")])],
    );
    let manifest: Manifest =
        serde_json::from_slice(&src.read_document(&m.digest).unwrap()).unwrap();
    lw_test_kit::registry::skopeo_copy(
        &format!(
            "oci:{}:docker.io/library/busybox:latest",
            src_root.display()
        ),
        &format!("docker://{host}/team/bb:1"),
        creds,
    );
    (m.digest, manifest)
}
