//! Shared test fixtures: run the CLI, make images in a store from Debian's static busybox, and run podman with a
//! private, test-only configuration (never /etc).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
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

/// podman with storage, run root and configuration private to `dir`.
pub struct Podman {
    pub dir: PathBuf,
}

/// A containers/storage + containers.conf configuration private to `dir` (root, runroot, vfs, runc with
/// cgroupfs, file events, no network, ulimits within the caller's hard limits), shared by the podman and buildah
/// fixtures. Tests never touch /etc.
pub fn write_containers_config(dir: &Path) {
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::create_dir_all(dir.join("runroot")).unwrap();
    // Facts for this kind of machine: crun fails on hybrid cgroups, so runc with cgroupfs; no journald; root
    // lacks CAP_SYS_RESOURCE, so ulimits stay at the caller's hard limit.
    let limit = |flag: &str| {
        let o = Command::new("bash")
            .args(["-c", &format!("ulimit -H{flag}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .replace("unlimited", "-1")
    };
    // Processes: podman's own processes run under a lower effective ceiling than `ulimit -Hu` shows here, so
    // stay at pid_max-sized 32768 or the hard limit, whichever is lower.
    let nofile = limit("n");
    let nproc = limit("u")
        .parse::<i64>()
        .map(|h| if h < 0 { 32768 } else { h.min(32768) })
        .unwrap_or(1024);
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\nnetns = \"none\"\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{}\"\nruntime = \"runc\"\ntmp_dir = \"{}\"\n",
            dir.join("events.log").display(),
            // Podman's default /run/libpod is shared by every instance; tests run in parallel.
            dir.join("libpod-tmp").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            dir.join("root").display(),
            dir.join("runroot").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("registries.conf"),
        "unqualified-search-registries = []\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
}

impl Podman {
    pub fn new(dir: &Path) -> Podman {
        write_containers_config(dir);
        Podman {
            dir: dir.to_path_buf(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("file")
            .arg("--runtime")
            .arg("runc");
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // vfs layers may hold read-only dirs; podman knows how to remove its own storage.
        let _ = self.cmd().args(["system", "reset", "--force"]).output();
    }
}

/// Lines of /proc/self/mounts that mention `under` (a test's leftovers: none may outlive it).
pub fn mounts_under(under: &Path) -> Vec<String> {
    let s = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let u = under.to_string_lossy().into_owned();
    s.lines()
        .filter(|l| l.contains(&u))
        .map(String::from)
        .collect()
}
