//! buildah with a private, test-only storage and configuration (never /etc), and readers that turn an exported
//! image (OCI layout or containers/image `dir:` directory) into its config and merged file tree for comparisons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lw_layer::{EntryKind, FileTree};

/// buildah whose storage, run root and configuration live under `dir`.
pub struct Buildah {
    pub dir: PathBuf,
}

impl Buildah {
    pub fn new(dir: &Path) -> Buildah {
        let dir = dir.to_path_buf();
        crate::containers::write_containers_config(&dir);
        Buildah { dir }
    }

    /// `buildah` with the private storage flags; add the subcommand and its arguments.
    pub fn cmd(&self) -> Command {
        crate::containers::private_cmd("buildah", &self.dir)
    }

    pub fn policy(&self) -> PathBuf {
        self.dir.join("policy.json")
    }

    /// Load an OCI archive (as `layerwright save` writes it) and tag it `name`.
    pub fn load_oci_archive(&self, file: &Path, name: &str) {
        let id = crate::process::run_ok(
            self.cmd()
                .args(["pull", "--quiet", "--signature-policy"])
                .arg(self.policy())
                .arg(format!("oci-archive:{}", file.display())),
        );
        crate::process::run_ok(self.cmd().args(["tag", id.trim(), name]));
    }

    /// `buildah bud` of `dockerfile` in `context` (never pulls; chroot isolation, no intermediate images).
    pub fn bud(
        &self,
        context: &Path,
        dockerfile: &Path,
        tag: &str,
        format: &str,
        extra: &[&str],
    ) -> Output {
        self.cmd()
            .args(["bud", "--signature-policy"])
            .arg(self.policy())
            .args([
                "--format",
                format,
                "--layers=false",
                "--isolation",
                "chroot",
                "--pull-never",
                "--quiet",
                "-t",
                tag,
            ])
            .args(extra)
            .arg("-f")
            .arg(dockerfile)
            .arg(context)
            .output()
            .expect("run buildah")
    }

    /// Export an image as a containers/image `dir:` directory (manifest kept as built: OCI or Docker schema 2).
    pub fn push_dir(&self, name: &str, dest: &Path) {
        crate::process::run_ok(
            self.cmd()
                .args(["push", "--quiet", "--signature-policy"])
                .arg(self.policy())
                .arg(name)
                .arg(format!("dir:{}", dest.display())),
        );
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        // buildah knows how to remove its own vfs storage.
        let _ = self.cmd().args(["rm", "--all"]).output();
        let _ = self.cmd().args(["rmi", "--all", "--force"]).output();
    }
}

/// An exported image: its config JSON and merged file tree.
pub struct Exported {
    pub config: serde_json::Value,
    pub tree: FileTree,
}

fn read_json(p: &Path) -> serde_json::Value {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Read an image from an OCI layout directory (first manifest of index.json, following one nested index) or from a
/// `dir:` directory (manifest.json beside blobs named by hex digest). A layer that cannot be applied (a broken
/// image) is an error, not a panic, so one bad case does not hide the others.
pub fn read_exported(dir: &Path) -> Result<Exported, String> {
    let oci = dir.join("index.json").is_file();
    let blob = |digest: &str| -> PathBuf {
        let (alg, hex) = digest.split_once(':').expect("digest");
        if oci {
            dir.join("blobs").join(alg).join(hex)
        } else {
            dir.join(hex)
        }
    };
    let mut manifest = if oci {
        read_json(&dir.join("index.json"))
    } else {
        read_json(&dir.join("manifest.json"))
    };
    while manifest.get("manifests").is_some() {
        let d = manifest["manifests"][0]["digest"]
            .as_str()
            .expect("index entry digest")
            .to_string();
        manifest = read_json(&blob(&d));
    }
    let config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    let mut tree = FileTree::with_data(u64::MAX);
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let mt = l["mediaType"].as_str().unwrap();
        let c = lw_oci::media::layer_compression(mt)
            .unwrap_or_else(|| panic!("unknown layer media type {mt}"));
        let f = std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
        let r = lw_layer::compress::decoder(std::io::BufReader::new(f), c).unwrap();
        tree.apply_layer(i, r)
            .map_err(|e| format!("applying layer {i} of {}: {e}", dir.display()))?;
    }
    Ok(Exported { config, tree })
}

/// One file of a merged tree as compared: everything but the mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub kind: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub sha256: String,
    pub link: String,
    /// For files with hard links: all paths of the inode, sorted (which path a tar stores first is arbitrary).
    pub links: Vec<String>,
}

impl std::fmt::Display for FileRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{} size={}",
            self.kind, self.mode, self.uid, self.gid, self.size
        )?;
        if !self.sha256.is_empty() {
            write!(f, " sha256={}", &self.sha256[..12])?;
        }
        if !self.link.is_empty() {
            write!(f, " -> {}", self.link)?;
        }
        if self.links.len() > 1 {
            write!(f, " hardlinks={:?}", self.links)?;
        }
        Ok(())
    }
}

/// The tree as comparable rows keyed by path. Hard links are resolved to the file they name: each path of an inode
/// gets the file's metadata and content plus the sorted list of all its paths.
pub fn file_rows(tree: &FileTree) -> BTreeMap<String, FileRow> {
    // Group hard links by the path holding the data.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (p, n) in tree.iter() {
        if let EntryKind::Hardlink(t) = &n.entry.kind {
            groups.entry(t.clone()).or_default().push(p.clone());
        }
    }
    let mut rows = BTreeMap::new();
    for (p, n) in tree.iter() {
        let (node, primary) = match &n.entry.kind {
            EntryKind::Hardlink(t) => (tree.get(t).unwrap_or(n), t.clone()),
            _ => (n, p.clone()),
        };
        let e = &node.entry;
        let (kind, link) = match &e.kind {
            EntryKind::File | EntryKind::Hardlink(_) => ("file".to_string(), String::new()),
            EntryKind::Dir => ("dir".to_string(), String::new()),
            EntryKind::Symlink(t) => ("symlink".to_string(), t.clone()),
            EntryKind::CharDevice { major, minor } => {
                (format!("chardev {major},{minor}"), String::new())
            }
            EntryKind::BlockDevice { major, minor } => {
                (format!("blockdev {major},{minor}"), String::new())
            }
            EntryKind::Fifo => ("fifo".to_string(), String::new()),
        };
        let sha256 = match &node.data {
            Some(d) => lw_oci::Digest::sha256_of(d).encoded().to_string(),
            None => String::new(),
        };
        let mut links = Vec::new();
        if let Some(g) = groups.get(&primary) {
            links = g.clone();
            links.push(primary.clone());
            links.sort();
        }
        rows.insert(
            p.clone(),
            FileRow {
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                size: if matches!(e.kind, EntryKind::File | EntryKind::Hardlink(_)) {
                    e.size
                } else {
                    0
                },
                sha256,
                link,
                links,
            },
        );
    }
    rows
}
