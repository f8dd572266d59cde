//! Fixtures for RUN tests: a busybox base with more applets, builds through the engine with the native executor,
//! a built image's file tree, and the host's leftovers (mounts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use layerwright::buildhost::{StoreBlobs, StoreCache, StoreImages};
use layerwright::context::DirContext;
use layerwright::run::RuncExecutor;
use layerwright::store::Store;
use lw_engine::engine::{self, BuildOptions, BuildResult, Host};
use lw_layer::{Entry, FileTree};
use lw_oci::Descriptor;

pub use crate::common::mounts_under;
use crate::common::{busybox_files, make_busybox_image};

pub const APPLETS: &[&str] = &[
    "mkdir", "rm", "chmod", "chown", "touch", "id", "sed", "grep", "stat", "ln", "mv", "cp",
    "whoami", "wc", "false", "test", "printf", "env", "hostname", "head", "cut", "tr", "sleep",
    "ls", "cat", "echo", "sh", "true",
];

/// A busybox image `name` (two layers: busybox, then applets and some base files to change).
/// A temporary store holding the busybox base image `lwtest/bb:1`, and an empty context directory beside it.
pub struct RunSetup {
    /// Removed when dropped: keep it alive for the test.
    pub tmp: tempfile::TempDir,
    pub root: std::path::PathBuf,
    pub store: Store,
    pub ctx: std::path::PathBuf,
}

pub fn run_setup() -> RunSetup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    base_image(&store, "lwtest/bb:1");
    RunSetup {
        tmp,
        root,
        store,
        ctx,
    }
}

pub fn base_image(store: &Store, name: &str) -> Descriptor {
    let mut l1 = busybox_files(&[("etc/motd", b"welcome\n"), ("etc/base.txt", b"base\n")]);
    l1.push((Entry::file("etc/group", 0o644, 0), b"root:x:0:\n".to_vec()));
    l1.push((Entry::dir("home", 0o755), vec![]));
    l1.push((Entry::dir("opt", 0o755), vec![]));
    l1.push((Entry::dir("opt/dir", 0o755), vec![]));
    l1.push((Entry::file("opt/dir/old1", 0o644, 0), b"old\n".to_vec()));
    let mut l2 = Vec::new();
    for a in APPLETS
        .iter()
        .filter(|a| !["ls", "cat", "echo", "sh", "true"].contains(a))
    {
        l2.push((Entry::symlink(&format!("bin/{a}"), "busybox"), vec![]));
    }
    make_busybox_image(store, name, &[l1, l2])
}

/// How to build.
pub struct BuildSpec<'a> {
    pub dockerfile: &'a str,
    pub epoch: i64,
    pub overlay: bool,
    pub no_cache: bool,
    pub secrets: BTreeMap<String, PathBuf>,
    pub network: &'a str,
    /// `--add-host` entries.
    pub extra_hosts: Vec<(String, String)>,
    pub build_args: BTreeMap<String, String>,
}

impl<'a> BuildSpec<'a> {
    pub fn new(dockerfile: &'a str) -> Self {
        BuildSpec {
            dockerfile,
            epoch: 1_700_000_000,
            overlay: true,
            no_cache: false,
            secrets: BTreeMap::new(),
            network: "default",
            extra_hosts: Vec::new(),
            build_args: BTreeMap::new(),
        }
    }
}

/// Build `spec` with the engine and the runc executor; `context` is an (empty) directory.
pub fn build(store: &Store, context: &Path, spec: &BuildSpec) -> Result<BuildResult, String> {
    let mut exec = RuncExecutor::new(store).map_err(|e| e.to_string())?;
    exec.use_overlay = spec.overlay;
    exec.secrets = spec.secrets.clone();
    let mut opts = BuildOptions::new(
        spec.dockerfile.as_bytes().to_vec(),
        layerwright::store::host_platform(),
    );
    opts.source_date_epoch = spec.epoch;
    opts.no_cache = spec.no_cache;
    opts.network = spec.network.to_string();
    opts.extra_hosts = spec.extra_hosts.clone();
    opts.build_args = spec.build_args.clone();
    // As `layerwright build` reads it: filtered by the context's .dockerignore.
    let ctx =
        DirContext::with_dockerignore(context, Some("Dockerfile")).map_err(|e| e.to_string())?;
    let mut blobs = StoreBlobs { store };
    let mut cache = StoreCache { store };
    let mut images = StoreImages { store, pull: None };
    let mut events = |_e: lw_engine::events::BuildEvent| {};
    let mut host = Host {
        context: &ctx,
        blobs: &mut blobs,
        images: &mut images,
        run: Some(&mut exec),
        fetch: None,
        cache: &mut cache,
        events: &mut events,
    };
    engine::build(&opts, &mut host).map_err(|e| e.to_string())
}

/// The file tree (with data) of a built image, plus each layer's entry paths.
pub fn image_tree(store: &Store, manifest: &Descriptor) -> (FileTree, Vec<Vec<String>>) {
    let img = store.resolve(manifest, None).unwrap();
    let mut tree = FileTree::with_data(1 << 24);
    let mut per_layer = Vec::new();
    for (i, l) in img.manifest.layers.iter().enumerate() {
        let c = lw_oci::media::layer_compression(&l.media_type).unwrap();
        let blob = std::fs::read(store.blob_path(&l.digest)).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut lw_layer::compress::decoder(&blob[..], c).unwrap(),
            &mut raw,
        )
        .unwrap();
        tree.apply_layer(i, &raw[..]).unwrap();
        let mut r = lw_layer::tar::TarReader::new(&raw[..]);
        let mut names = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            names.push(e.path);
        }
        per_layer.push(names);
    }
    (tree, per_layer)
}

/// A file's data in the tree, as text.
pub fn text(tree: &FileTree, path: &str) -> String {
    let n = tree
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in the image"));
    String::from_utf8_lossy(n.data.as_deref().unwrap_or_default()).into_owned()
}

/// Tag `manifest`, save it as a docker-archive tarball, and return the tarball's path.
pub fn save(store: &Store, manifest: &Descriptor, name: &str, dir: &Path) -> PathBuf {
    let full = layerwright::names::normalize(name).unwrap();
    store.set_tag(&full, manifest).unwrap();
    let path = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    let mut f = std::fs::File::create(&path).unwrap();
    let items = [layerwright::archive::SaveItem {
        names: vec![full],
        descriptor: manifest.clone(),
    }];
    layerwright::archive::save(store, &items, &mut f, &indicatif::ProgressBar::hidden()).unwrap();
    path
}
