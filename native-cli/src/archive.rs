//! `save` and `load`: one tar that is at once an OCI image layout and a docker archive (`manifest.json`), and a
//! loader for both formats (ours, docker's, skopeo's, podman's) that verifies everything before the store changes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use lw_layer::tar::TarReader;
use lw_layer::{path as tpath, EntryKind};
use lw_oci::media::{self, Compression};
use lw_oci::validate::Nulls;
use lw_oci::{Descriptor, Digest, DigestHasher, ImageConfig, Index, Manifest};

use crate::buildhost::StoreBlobs;
use crate::names;
use crate::store::{host_platform, Store};
use lw_engine::archive::blob_name;
use lw_engine::archive::{write_archive, ArchiveItem, ArchiveProgress};
use lw_layer::archive_compression::{self, ArchiveCompression};

pub use lw_engine::archive::DockerArchiveEntry;

/// An image to save: the names it goes by and its manifest (or index) descriptor.
pub struct SaveItem {
    pub names: Vec<String>,
    pub descriptor: Descriptor,
}

/// Write `items` as one tar to `out`. The bytes depend only on the images and names (the layout itself is written
/// by [`lw_engine::archive::write_archive`], which the browser's export shares).
pub fn save(
    store: &Store,
    items: &[SaveItem],
    out: &mut dyn Write,
    progress: &indicatif::ProgressBar,
) -> Result<()> {
    let items: Vec<ArchiveItem> = items
        .iter()
        .map(|i| ArchiveItem {
            names: i.names.clone(),
            descriptor: i.descriptor.clone(),
        })
        .collect();
    let mut on_progress = |p: ArchiveProgress| match p {
        ArchiveProgress::Total(n) => progress.set_length(n),
        ArchiveProgress::Copied(n) => progress.inc(n),
    };
    write_archive(
        &StoreBlobs { store },
        &items,
        &host_platform(),
        out,
        &mut on_progress,
    )
    .map_err(|e| anyhow!("{e}"))
}

/// An archive unpacked into a private directory: regular files only; links are resolved by name, never created.
struct Unpacked {
    dir: PathBuf,
    files: BTreeSet<String>,
    links: BTreeMap<String, String>,
    source: String,
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Unpacked {
    fn new(store: &Store, input: &mut dyn Read, source: &str) -> Result<Unpacked> {
        // Named as the store's temporaries are (`.tmp-PID-...`), so a killed load's directory is swept by the next
        // command that opens the store.
        let dir = store
            .tmp_dir()
            .join(format!(".tmp-{}-load", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mut u = Unpacked {
            dir,
            files: BTreeSet::new(),
            links: BTreeMap::new(),
            source: source.to_string(),
        };
        // A compressed archive (gzip, bzip2, xz as docker load takes them; zstd as Docker 23+) is decompressed as it
        // streams.
        let (kind, mut input) = archive_compression::open(Box::new(input))
            .with_context(|| format!("{source}: reading the archive"))?;
        // Errors name the compression: a corrupt stream shows up as a bad tar header or a short member.
        let (what, within) = match kind {
            ArchiveCompression::None => ("a valid tar archive".to_string(), String::new()),
            k => (
                format!("a valid {} compressed tar archive", k.name()),
                format!(" from the {} compressed archive", k.name()),
            ),
        };
        let mut tar = TarReader::new(&mut input);
        let mut n = 0usize;
        while let Some(e) = tar
            .next_entry()
            .with_context(|| format!("{source}: not {what}"))?
        {
            n += 1;
            if e.path.is_empty() {
                continue;
            }
            match &e.kind {
                EntryKind::Dir => {}
                EntryKind::File => {
                    let target = u.dir.join(format!("f{n}"));
                    let mut f = File::create(&target)?;
                    io::copy(&mut tar.data(), &mut f)
                        .with_context(|| format!("{source}: reading {}{within}", e.path))?;
                    u.links.remove(&e.path);
                    u.files.insert(e.path.clone());
                    fs::rename(&target, u.dir.join(encode(&e.path)))?;
                }
                EntryKind::Symlink(t) => {
                    let resolved = tpath::resolve_link(&e.path, t)
                        .filter(|_| !t.starts_with('/'))
                        .ok_or_else(|| {
                            anyhow!(
                                "{source}: symlink {} -> {t} points out of the archive",
                                e.path
                            )
                        })?;
                    u.links.insert(e.path.clone(), resolved);
                }
                EntryKind::Hardlink(t) => {
                    u.links.insert(e.path.clone(), t.clone());
                }
                other => bail!("{source}: entry {} has unsupported type {other:?}", e.path),
            }
        }
        // The tar ends before the compressed stream does: read on to its end so its own check (gzip's CRC-32,
        // xz's block checks, zstd's checksum) is verified too.
        if kind != ArchiveCompression::None {
            io::copy(&mut input, &mut io::sink())
                .with_context(|| format!("{source}: not {what} (after the tar's end)"))?;
        }
        Ok(u)
    }

    /// The on-disk file holding archive member `name`, following links inside the archive.
    fn member(&self, name: &str) -> Result<PathBuf> {
        let mut name = tpath::clean(name)
            .with_context(|| format!("{}: bad member name {name:?}", self.source))?;
        for _ in 0..16 {
            if self.files.contains(&name) {
                return Ok(self.dir.join(encode(&name)));
            }
            match self.links.get(&name) {
                Some(t) => name = t.clone(),
                None => bail!("{}: the archive has no file {name}", self.source),
            }
        }
        bail!("{}: too many levels of links at {name}", self.source)
    }

    fn exists(&self, name: &str) -> bool {
        self.member(name).is_ok()
    }

    fn read_doc(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.member(name)?;
        let len = fs::metadata(&p)?.len();
        if len > crate::store::MAX_DOCUMENT {
            bail!(
                "{}: {name} is {len} bytes, too large for a document",
                self.source
            );
        }
        Ok(fs::read(p)?)
    }
}

/// Member names become flat file names so no archive path can reach outside the directory.
fn encode(name: &str) -> String {
    format!("m-{}", lw_oci::Digest::sha256_of(name.as_bytes()).encoded())
}

/// What a verified blob is and where it waits before joining the store.
struct Staged {
    file: Option<PathBuf>,
    bytes: Option<Vec<u8>>,
    size: u64,
}

/// Result of a load: (names, manifest digests).
pub struct Loaded {
    pub images: Vec<(Vec<String>, Descriptor)>,
}

/// Load a docker or OCI archive into the store. Nothing in the store changes unless everything verifies.
pub fn load(store: &Store, input: &mut dyn Read, source: &str) -> Result<Loaded> {
    let u = Unpacked::new(store, input, source)?;
    let mut staged: BTreeMap<Digest, Staged> = BTreeMap::new();
    let docker_manifest: Option<Vec<DockerArchiveEntry>> = if u.exists("manifest.json") {
        Some(
            serde_json::from_slice(&u.read_doc("manifest.json")?).with_context(|| {
                format!("{source}: manifest.json is not a valid docker archive manifest")
            })?,
        )
    } else {
        None
    };
    let images = if u.exists("index.json") {
        stage_layout(&u, source, docker_manifest.as_deref(), &mut staged)?
    } else if let Some(dm) = docker_manifest {
        let mut images = Vec::new();
        for e in dm {
            images.push(stage_docker_image(&u, source, &e, &mut staged)?);
        }
        images
    } else {
        bail!("{source}: neither an OCI archive (index.json) nor a docker archive (manifest.json)");
    };
    commit(store, &staged, &images)?;
    Ok(Loaded { images })
}

/// An OCI layout's images, staged: each index entry's tree, named by its annotations (or, when it has none and
/// the archive is a docker archive too, by the `RepoTags` of the entry with its config).
fn stage_layout(
    u: &Unpacked,
    source: &str,
    docker_manifest: Option<&[DockerArchiveEntry]>,
    staged: &mut BTreeMap<Digest, Staged>,
) -> Result<Vec<(Vec<String>, Descriptor)>> {
    let bytes = u.read_doc("index.json")?;
    lw_oci::validate::validate(media::OCI_INDEX, &bytes)
        .with_context(|| format!("{source}: index.json"))?;
    let idx: Index =
        serde_json::from_slice(&bytes).with_context(|| format!("{source}: index.json"))?;
    let mut images = Vec::new();
    for d in &idx.manifests {
        stage_tree(u, d, staged)?;
        let mut names = lw_engine::archive::layout_names(d);
        if names.is_empty() {
            if let Some(dm) = docker_manifest {
                let cfg = config_of(u, d)?;
                for e in dm.iter().filter(|e| e.config.ends_with(cfg.encoded())) {
                    for t in e.repo_tags.iter().flatten() {
                        names.push(names::normalize(t)?);
                    }
                }
            }
        }
        images.push((
            names,
            Descriptor::new(&d.media_type, d.digest.clone(), d.size),
        ));
    }
    Ok(images)
}

/// One image of a docker archive, staged as an OCI image: its config as it is, each layer verified against the
/// config's diff ID, and a manifest written for them; named by its `RepoTags`.
fn stage_docker_image(
    u: &Unpacked,
    source: &str,
    e: &DockerArchiveEntry,
    staged: &mut BTreeMap<Digest, Staged>,
) -> Result<(Vec<String>, Descriptor)> {
    let config_bytes = u.read_doc(&e.config)?;
    lw_oci::validate::validate_with(media::OCI_CONFIG, &config_bytes, Nulls::AsDocker)
        .with_context(|| format!("{source}: config {}", e.config))?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)?;
    if config.rootfs.diff_ids.len() != e.layers.len() {
        bail!(
            "{source}: {} lists {} layers but its config has {} diff IDs",
            e.config,
            e.layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    let mut layers = Vec::new();
    for (name, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
        let p = u.member(name)?;
        let mut head = [0u8; 4];
        let n = File::open(&p)?.read(&mut head)?;
        let comp = lw_layer::compress::sniff(&head[..n]);
        let (digest, size) = hash_file(&p)?;
        let (got_diff, _) =
            verify_layer(&p, comp).with_context(|| format!("{source}: layer {name}"))?;
        if got_diff != *diff_id {
            bail!(
                "{source}: layer {name} has diff ID {got_diff}, but the config expects {diff_id}"
            );
        }
        let mt = lw_engine::archive::layer_media_type(comp);
        staged.insert(
            digest.clone(),
            Staged {
                file: Some(p),
                bytes: None,
                size,
            },
        );
        layers.push(Descriptor::new(mt, digest, size));
    }
    let config_desc = Descriptor::of(media::OCI_CONFIG, &config_bytes);
    staged.insert(
        config_desc.digest.clone(),
        Staged {
            file: None,
            size: config_bytes.len() as u64,
            bytes: Some(config_bytes),
        },
    );
    let manifest = lw_oci::to_canonical_json(&Manifest::oci(config_desc, layers));
    let mdesc = Descriptor::of(media::OCI_MANIFEST, &manifest);
    staged.insert(
        mdesc.digest.clone(),
        Staged {
            file: None,
            size: manifest.len() as u64,
            bytes: Some(manifest),
        },
    );
    let mut names = Vec::new();
    for t in e.repo_tags.iter().flatten() {
        names.push(names::normalize(t)?);
    }
    Ok((names, mdesc))
}

/// Everything verified: move the staged blobs in (under the store lock), then record the names.
fn commit(
    store: &Store,
    staged: &BTreeMap<Digest, Staged>,
    images: &[(Vec<String>, Descriptor)],
) -> Result<()> {
    let lock = store.lock()?;
    for (d, s) in staged {
        if store.has_blob(d) {
            continue;
        }
        match (&s.file, &s.bytes) {
            (_, Some(b)) => store.put_blob(d, Some(s.size), &mut &b[..])?,
            (Some(f), None) => store.put_blob(d, Some(s.size), &mut File::open(f)?)?,
            (None, None) => unreachable!("a staged blob has a file or bytes"),
        }
    }
    drop(lock);
    for (names, d) in images {
        if names.is_empty() {
            store.add_untagged(d)?;
        }
        for n in names {
            store.set_tag(n, d)?;
        }
    }
    Ok(())
}

fn config_of(u: &Unpacked, d: &Descriptor) -> Result<Digest> {
    let bytes = u.read_doc(&blob_name(&d.digest))?;
    if media::is_index(&d.media_type) {
        let idx: Index = serde_json::from_slice(&bytes)?;
        let first = idx
            .manifests
            .first()
            .ok_or_else(|| anyhow!("empty index {}", d.digest))?;
        return config_of(u, first);
    }
    let m: Manifest = serde_json::from_slice(&bytes)?;
    Ok(m.config.digest)
}

/// Verify a document or layer named by `d` in the OCI layout, recursively, and stage it.
fn stage_tree(u: &Unpacked, d: &Descriptor, staged: &mut BTreeMap<Digest, Staged>) -> Result<()> {
    if staged.contains_key(&d.digest) {
        return Ok(());
    }
    let src = &u.source;
    let name = blob_name(&d.digest);
    if media::is_index(&d.media_type) || media::is_manifest(&d.media_type) {
        let bytes = u.read_doc(&name)?;
        check_blob(src, d, &bytes)?;
        lw_oci::validate::validate(&d.media_type, &bytes)
            .with_context(|| format!("{src}: {name}"))?;
        if media::is_index(&d.media_type) {
            let idx: Index = serde_json::from_slice(&bytes)?;
            for m in &idx.manifests {
                // Indexes may list platforms the archive does not carry (skopeo copies one platform).
                if u.exists(&blob_name(&m.digest)) {
                    stage_tree(u, m, staged)?;
                }
            }
        } else {
            let m: Manifest = serde_json::from_slice(&bytes)?;
            let config_bytes = u.read_doc(&blob_name(&m.config.digest))?;
            check_blob(src, &m.config, &config_bytes)?;
            let config: Option<ImageConfig> = if m.config.media_type == media::OCI_CONFIG
                || m.config.media_type == media::DOCKER_CONFIG
            {
                lw_oci::validate::validate_with(media::OCI_CONFIG, &config_bytes, Nulls::AsDocker)
                    .with_context(|| format!("{src}: config {}", m.config.digest))?;
                Some(serde_json::from_slice(&config_bytes)?)
            } else {
                None
            };
            for (i, l) in m.layers.iter().enumerate() {
                let p = u.member(&blob_name(&l.digest))?;
                let (digest, size) = hash_file(&p)?;
                if digest != l.digest || size != l.size {
                    bail!(
                        "{src}: layer blob {} does not match its descriptor (digest {digest}, {size} bytes; expected {} bytes)",
                        l.digest,
                        l.size
                    );
                }
                if let (Some(comp), Some(cfg)) = (media::layer_compression(&l.media_type), &config)
                {
                    let (diff_id, _) = verify_layer(&p, comp)
                        .with_context(|| format!("{src}: layer {}", l.digest))?;
                    if cfg.rootfs.diff_ids.get(i) != Some(&diff_id) {
                        bail!("{src}: layer {} has diff ID {diff_id}, which the config does not list at position {i}", l.digest);
                    }
                }
                staged.insert(
                    l.digest.clone(),
                    Staged {
                        file: Some(p),
                        bytes: None,
                        size,
                    },
                );
            }
            staged.insert(
                m.config.digest.clone(),
                Staged {
                    file: None,
                    size: config_bytes.len() as u64,
                    bytes: Some(config_bytes),
                },
            );
        }
        staged.insert(
            d.digest.clone(),
            Staged {
                file: None,
                size: bytes.len() as u64,
                bytes: Some(bytes),
            },
        );
    } else {
        let p = u.member(&name)?;
        let (digest, size) = hash_file(&p)?;
        if digest != d.digest {
            bail!("{src}: blob {} hashes to {digest}", d.digest);
        }
        staged.insert(
            d.digest.clone(),
            Staged {
                file: Some(p),
                bytes: None,
                size,
            },
        );
    }
    Ok(())
}

fn check_blob(src: &str, d: &Descriptor, bytes: &[u8]) -> Result<()> {
    d.digest
        .check(&format!("{src}: blob {}", d.digest), bytes)?;
    if bytes.len() as u64 != d.size {
        bail!(
            "{src}: blob {} has {} bytes, its descriptor says {}",
            d.digest,
            bytes.len(),
            d.size
        );
    }
    Ok(())
}

fn hash_file(p: &Path) -> Result<(Digest, u64)> {
    let mut h = DigestHasher::sha256();
    io::copy(&mut File::open(p)?, &mut h)?;
    let len = h.len();
    Ok((h.finish(), len))
}

/// Decompress a layer, check every entry of its tar (safe paths, complete data) and compute its diff ID.
pub fn verify_layer(p: &Path, comp: Compression) -> Result<(Digest, u64)> {
    struct Tee<R> {
        inner: R,
        hasher: DigestHasher,
    }
    impl<R: Read> Read for Tee<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
    }
    let dec = lw_layer::compress::decoder(io::BufReader::new(File::open(p)?), comp)?;
    let mut tee = Tee {
        inner: dec,
        hasher: DigestHasher::sha256(),
    };
    {
        let mut tar = TarReader::new(&mut tee);
        let mut sink = vec![0u8; 64 * 1024];
        while tar.next_entry()?.is_some() {
            while tar.read_data(&mut sink)? > 0 {}
        }
    }
    io::copy(&mut tee, &mut io::sink())?;
    let len = tee.hasher.len();
    Ok((tee.hasher.finish(), len))
}
