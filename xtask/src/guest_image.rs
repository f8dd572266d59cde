//! The linux/386 busybox image the tab's `FROM busybox` uses: one layer made from Debian's busybox-static:i386
//! (the binary, a symlink per applet, docker busybox's top-level directories, /etc/passwd and /etc/group), written
//! as an OCI layout tar (`busybox.tar`: `layerwright load` and the tab's `loadTarball` read it) with deterministic
//! bytes.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use lw_layer::tar::{TarWriter, WriteOptions};
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::{self, Compression};
use lw_oci::Descriptor;
use serde_json::json;

/// The name the image is loaded under.
pub const NAME: &str = "docker.io/library/busybox:latest";

/// The applets the binary lists (it is a static i386 program, which an x86_64 kernel runs).
fn applets(busybox: &[u8]) -> Result<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("lw-guest-bb-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bin = dir.join("busybox");
    std::fs::write(&bin, busybox)?;
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let out = Command::new(&bin).arg("--list").output();
    let _ = std::fs::remove_dir_all(&dir);
    let out =
        out.context("running busybox-static:i386 --list (the kernel must run i386 programs)")?;
    if !out.status.success() {
        bail!("busybox --list failed");
    }
    let mut list: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "busybox")
        .map(String::from)
        .collect();
    list.sort();
    Ok(list)
}

/// The layer's entries in order, with file data.
fn entries(busybox: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>> {
    let mut out: Vec<(Entry, Vec<u8>)> = Vec::new();
    let dir = |p: &str, mode: u32| (Entry::dir(p, mode), Vec::new());
    let file =
        |p: &str, mode: u32, data: &[u8]| (Entry::file(p, mode, data.len() as u64), data.to_vec());
    out.push(dir("bin", 0o755));
    out.push(file("bin/busybox", 0o755, busybox));
    for a in applets(busybox)? {
        out.push((Entry::symlink(&format!("bin/{a}"), "busybox"), Vec::new()));
    }
    for d in [
        "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/sbin", "var",
    ] {
        out.push(dir(d, if d == "root" { 0o700 } else { 0o755 }));
    }
    out.push(file(
        "etc/group",
        0o644,
        b"root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\nwheel:x:10:\nusers:x:100:\nnogroup:x:65534:\n",
    ));
    out.push(file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\n\
          sys:x:3:3:sys:/dev:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    ));
    out.push(dir("tmp", 0o1777));
    out.sort_by(|a, b| lw_layer::path::cmp_components(&a.0.path, &b.0.path));
    Ok(out)
}

/// Write the image as an OCI layout tar to `out`.
pub fn busybox_tar(busybox: &[u8], out: &Path) -> Result<()> {
    let mut lw = LayerWriter::new(
        Vec::new(),
        Compression::Gzip,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    )?;
    for (e, data) in entries(busybox)? {
        lw.tar().append_bytes(&e, &data)?;
    }
    let (layer, info) = lw.finish()?;
    let config = json!({
        "architecture": "386",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "created": "1970-01-01T00:00:00Z",
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "Debian busybox-static:i386 (layerwright xtask guest)"}],
        "rootfs": {"type": "layers", "diff_ids": [info.diff_id.as_str()]},
    });
    let config = serde_json::to_vec(&config)?;
    let config_desc = Descriptor::of(media::OCI_CONFIG, &config);
    let manifest = lw_oci::Manifest::oci(config_desc.clone(), vec![info.descriptor()]);
    let manifest = serde_json::to_vec(&manifest)?;
    let mut mdesc = Descriptor::of(media::OCI_MANIFEST, &manifest);
    mdesc.set_annotation("io.containerd.image.name", NAME);
    mdesc.set_annotation("org.opencontainers.image.ref.name", "latest");
    let index = serde_json::to_vec(&lw_oci::Index::oci(vec![mdesc.clone()]))?;

    let mut tar = TarWriter::new(
        Vec::new(),
        WriteOptions {
            clamp_mtime: Some(0),
        },
    );
    let blob = |d: &Descriptor| format!("blobs/sha256/{}", d.digest.encoded());
    tar.append_bytes(&Entry::dir("blobs", 0o755), &[])?;
    tar.append_bytes(&Entry::dir("blobs/sha256", 0o755), &[])?;
    let mut blobs = vec![
        (blob(&config_desc), config),
        (blob(&info.descriptor()), layer),
        (blob(&mdesc), manifest),
    ];
    blobs.sort();
    for (p, data) in blobs {
        tar.append_bytes(&Entry::file(&p, 0o644, data.len() as u64), &data)?;
    }
    tar.append_bytes(
        &Entry::file("index.json", 0o644, index.len() as u64),
        &index,
    )?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    tar.append_bytes(
        &Entry::file("oci-layout", 0o644, layout.len() as u64),
        layout,
    )?;
    crate::guest::write_atomic(out, &tar.finish()?)
}
