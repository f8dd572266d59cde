//! Fixtures the wasm32 suites cannot make inside wasm: a docker archive written by a real tool (skopeo), from a
//! small OCI layout we write here. The suites get its path at compile time (LW_TEST_DOCKER_ARCHIVE), like the
//! registry addresses.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, LayerWriter};
use lw_oci::descriptor::annotations;
use lw_oci::media::{self, Compression};
use lw_oci::{Descriptor, Index, Manifest};

/// The name skopeo writes into the archive's RepoTags (the suite checks it).
pub const DOCKER_ARCHIVE_TAG: &str = "lw/dockerarchive:1";

fn put_blob(layout: &Path, bytes: &[u8], media_type: &str) -> Result<Descriptor> {
    let d = Descriptor::of(media_type, bytes);
    let p = layout.join("blobs/sha256").join(d.digest.encoded());
    fs::write(p, bytes)?;
    Ok(d)
}

fn layer(files: &[(&str, &[u8])]) -> Result<(Vec<u8>, lw_layer::LayerInfo)> {
    let mut lw = LayerWriter::new(
        Vec::new(),
        Compression::Gzip,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    )?;
    for (path, data) in files {
        if let Some((dir, _)) = path.rsplit_once('/') {
            lw.tar().append_bytes(&Entry::dir(dir, 0o755), &[])?;
        }
        lw.tar()
            .append_bytes(&Entry::file(path, 0o644, data.len() as u64), data)?;
    }
    Ok(lw.finish()?)
}

/// Write a two-layer OCI layout under `dir` and have skopeo turn it into `dir/docker-archive.tar`.
pub fn docker_archive(dir: &Path) -> Result<PathBuf> {
    let layout = dir.join("layout");
    let _ = fs::remove_dir_all(&layout);
    fs::create_dir_all(layout.join("blobs/sha256"))?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (l1, i1) = layer(&[
        ("hello.txt", b"hello from a docker archive\n"),
        ("etc/big.bin", &big),
    ])?;
    let (l2, i2) = layer(&[("etc/motd", b"second layer\n")])?;
    let d1 = put_blob(&layout, &l1, media::OCI_LAYER_GZIP)?;
    let d2 = put_blob(&layout, &l2, media::OCI_LAYER_GZIP)?;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/hello.txt"], "Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [i1.diff_id.to_string(), i2.diff_id.to_string()]},
        "history": [{"created_by": "COPY hello.txt etc/big.bin /"}, {"created_by": "COPY motd /etc/"}],
    });
    let cd = put_blob(&layout, &serde_json::to_vec(&config)?, media::OCI_CONFIG)?;
    let man = lw_oci::to_canonical_json(&Manifest::oci(cd, vec![d1, d2]));
    let mut md = put_blob(&layout, &man, media::OCI_MANIFEST)?;
    md.set_annotation(annotations::REF_NAME, "fixture");
    fs::write(
        layout.join("index.json"),
        lw_oci::to_canonical_json(&Index::oci(vec![md])),
    )?;
    let out = dir.join("docker-archive.tar");
    let _ = fs::remove_file(&out);
    let st = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}:fixture", layout.display()))
        .arg(format!(
            "docker-archive:{}:{DOCKER_ARCHIVE_TAG}",
            out.display()
        ))
        .status()
        .context("starting skopeo (apt-get install skopeo)")?;
    if !st.success() {
        bail!("skopeo copy to docker-archive failed ({st})");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// skopeo writes a docker archive (manifest.json, no index.json) with our tag.
    #[test]
    fn skopeo_writes_a_docker_archive() {
        if Command::new("skopeo").arg("--version").output().is_err() {
            eprintln!("skopeo not installed: NOT RUN");
            return;
        }
        // LW_FIXTURE_DIR keeps the archive (to run the wasm suite by hand); else a temporary directory.
        let keep = std::env::var_os("LW_FIXTURE_DIR").map(PathBuf::from);
        let dir = keep.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("lw-xtask-da-{}", std::process::id()))
        });
        let out = docker_archive(&dir).unwrap();
        let list = Command::new("tar").arg("-tvf").arg(&out).output().unwrap();
        let list = String::from_utf8_lossy(&list.stdout).to_string();
        eprintln!("{list}");
        assert!(list.contains("manifest.json"), "{list}");
        assert!(!list.contains("index.json"), "{list}");
        if keep.is_none() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}
