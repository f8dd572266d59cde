//! The on-disk image store: an OCI image layout under `--root` (blobs by digest, `index.json` mapping names to
//! manifests), every blob verified on ingest and written atomically, with a file lock so two processes can share it.
//! Blobs no image names yet are kept from `gc` by a lease (a running build, pull or load) or by a pin (a blob the
//! embedded registry accepted, waiting for its manifest).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use lw_oci::descriptor::annotations;
use lw_oci::{media, Descriptor, Digest, DigestHasher, ImageConfig, Index, Manifest};

mod atomic;
mod pins;
mod spliced;
pub(crate) use atomic::unique;
use atomic::{made_by_dead_process, sync_dir};
pub use atomic::{tempfile_in, write_atomic, write_atomic_via};
pub use spliced::{BlobFile, SplicedWriter};
/// Documents (manifests, configs, indexes) above this size are refused.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// How long a pin (and a registry upload's temporary file in [`Store::uploads_dir`]) lasts without use.
pub const PIN_IDLE: Duration = Duration::from_secs(3600);

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub removed: usize,
    pub freed: u64,
    /// Blobs no image names that a live pin kept.
    pub pinned: usize,
}

#[derive(Clone)]
pub struct Store {
    root: PathBuf,
}

/// A held lock on the store; dropped, it releases.
pub struct Lock(#[allow(dead_code)] File);

/// See [`Store::lease`]; released when dropped.
pub struct Lease(#[allow(dead_code)] File);

/// A tagged or dangling image entry of the store's index (the name index's rules: [`lw_engine::naming`]).
pub use lw_engine::naming::ImageRecord;

/// An image resolved to its manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
}

impl Store {
    /// Open (creating when missing) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        fs::create_dir_all(root.join("blobs/sha256"))
            .with_context(|| format!("creating store {}", root.display()))?;
        fs::create_dir_all(root.join("tmp"))?;
        let s = Store {
            root: root.to_path_buf(),
        };
        s.sweep_dead_temporaries();
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !s.index_path().exists() {
            let _l = s.lock()?;
            if !s.index_path().exists() {
                write_atomic(
                    &s.index_path(),
                    &lw_oci::to_canonical_json(&Index::oci(vec![])),
                )?;
            }
        }
        Ok(s)
    }

    /// Remove the temporary files of killed processes where the store makes them (its root for `index.json`, `tmp/`,
    /// `statcache/`, the pin directories), so none outlives the next command. A live process's files are left alone:
    /// the PID in the name says whose they are. Best effort, and cheap: these directories hold few entries.
    fn sweep_dead_temporaries(&self) {
        let mut dirs = vec![
            self.root.clone(),
            self.tmp_dir(),
            self.root.join("statcache"),
        ];
        if let Ok(rd) = fs::read_dir(self.root.join("pins")) {
            dirs.extend(rd.flatten().map(|e| e.path()));
        }
        for dir in dirs {
            let Ok(rd) = fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if made_by_dead_process(&e.file_name().to_string_lossy()) {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                }
            }
        }
    }

    /// The default root: `$XDG_DATA_HOME/layerwright` or `~/.local/share/layerwright`.
    pub fn default_root() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("layerwright");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/layerwright")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// A directory for temporary work inside the store (same file system, so renames are atomic).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Take the store's exclusive lock (blocks while another process holds it).
    pub fn lock(&self) -> Result<Lock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("lock"))
            .context("opening the store lock")?;
        f.lock().context("locking the store")?;
        Ok(Lock(f))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.encoded())
    }

    /// Create the directory of `d`'s algorithm (`blobs/sha512` appears with the first sha512 blob).
    pub fn ensure_blob_dir(&self, d: &Digest) -> Result<()> {
        let dir = self.blob_path(d).with_file_name("");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))
    }

    /// Is blob `d` here, plain or spliced (see [`spliced`])?
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file() || self.spliced_path(d).is_file()
    }

    /// Stream `src` into the store, verifying it hashes to `expected` (and has `size` bytes when given).
    /// Nothing is left behind when verification fails.
    pub fn put_blob(&self, expected: &Digest, size: Option<u64>, src: &mut dyn Read) -> Result<()> {
        let (tmp, mut f) = tempfile_in(&self.tmp_dir())?;
        let result = (|| -> Result<()> {
            let mut h = DigestHasher::new(expected.algorithm());
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                if let Some(s) = size {
                    if h.len() > s {
                        bail!("blob {expected} is larger than its declared size of {s} bytes");
                    }
                }
                f.write_all(&buf[..n])?;
            }
            let len = h.len();
            if let Some(s) = size {
                if len != s {
                    bail!("blob {expected} has {len} bytes, but its descriptor says {s}");
                }
            }
            let actual = h.finish();
            if actual != *expected {
                bail!("digest mismatch: expected {expected}, content hashes to {actual}");
            }
            f.sync_all()?;
            self.ensure_blob_dir(expected)?;
            fs::rename(&tmp, self.blob_path(expected))?;
            sync_dir(&self.blob_path(expected).with_file_name(""));
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Store bytes and return their descriptor.
    pub fn put_bytes(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let d = Descriptor::of(media_type, bytes);
        if !self.has_blob(&d.digest) {
            self.put_blob(&d.digest, Some(d.size), &mut &bytes[..])?;
        }
        Ok(d)
    }

    /// Read a small blob (a document), verifying its digest.
    pub fn read_document(&self, d: &Digest) -> Result<Vec<u8>> {
        let f = self.open_blob(d)?;
        let len = f.len();
        if len > MAX_DOCUMENT {
            bail!("document {d} is {len} bytes, over the {MAX_DOCUMENT}-byte limit");
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.take(MAX_DOCUMENT + 1).read_to_end(&mut bytes)?;
        d.check(&format!("blob {d} in the store"), &bytes)?;
        Ok(bytes)
    }

    /// The store's index entries.
    pub fn records(&self) -> Result<Vec<ImageRecord>> {
        let bytes = fs::read(self.index_path()).context("reading the store's index.json")?;
        let idx: Index =
            serde_json::from_slice(&bytes).context("the store's index.json is corrupt")?;
        Ok(idx
            .manifests
            .into_iter()
            .map(|d| ImageRecord {
                name: d.annotation(annotations::REF_NAME).map(str::to_string),
                descriptor: d,
            })
            .collect())
    }

    fn write_records(&self, recs: &[ImageRecord]) -> Result<()> {
        let mut seen = BTreeSet::new();
        let mut manifests = Vec::new();
        // Tagged entries sorted by name, then dangling ones by digest, each digest listed once when dangling.
        let mut tagged: Vec<&ImageRecord> = recs.iter().filter(|r| r.name.is_some()).collect();
        tagged.sort_by(|a, b| a.name.cmp(&b.name));
        for r in &tagged {
            let mut d = r.descriptor.clone();
            d.annotations = None;
            d.set_annotation(annotations::REF_NAME, r.name.as_deref().unwrap_or_default());
            seen.insert(d.digest.clone());
            manifests.push(d);
        }
        let mut dangling: Vec<&ImageRecord> = recs.iter().filter(|r| r.name.is_none()).collect();
        dangling.sort_by(|a, b| a.descriptor.digest.cmp(&b.descriptor.digest));
        for r in dangling {
            if seen.insert(r.descriptor.digest.clone()) {
                let mut d = r.descriptor.clone();
                d.annotations = None;
                manifests.push(d);
            }
        }
        write_atomic(
            &self.index_path(),
            &lw_oci::to_canonical_json(&Index::oci(manifests)),
        )
    }

    /// Point `name` at `desc`. A previous image under that name stays as a dangling image (docker's `<none>`)
    /// unless another name still refers to it.
    pub fn set_tag(&self, name: &str, desc: &Descriptor) -> Result<()> {
        let _l = self.lock()?;
        let mut recs = self.records()?;
        if lw_engine::naming::set_name(&mut recs, name, desc) {
            self.write_records(&recs)?;
        }
        Ok(())
    }

    /// Add an image without a name (it shows as `<none>`), unless it is already present.
    pub fn add_untagged(&self, desc: &Descriptor) -> Result<()> {
        let _l = self.lock()?;
        let mut recs = self.records()?;
        if lw_engine::naming::add_unnamed(&mut recs, desc) {
            self.write_records(&recs)?;
        }
        Ok(())
    }

    /// Remove one name. Returns the descriptor it pointed at.
    pub fn remove_tag(&self, name: &str) -> Result<Option<Descriptor>> {
        let _l = self.lock()?;
        let mut recs = self.records()?;
        let pos = recs.iter().position(|r| r.name.as_deref() == Some(name));
        let Some(pos) = pos else { return Ok(None) };
        let rec = recs.remove(pos);
        self.write_records(&recs)?;
        Ok(Some(rec.descriptor))
    }

    /// Remove exactly these names, in one locked step; returns how many were there.
    pub fn remove_names(&self, names: &[String]) -> Result<usize> {
        let _l = self.lock()?;
        let mut recs = self.records()?;
        let before = recs.len();
        recs.retain(|r| !r.name.as_ref().is_some_and(|n| names.contains(n)));
        let removed = before - recs.len();
        if removed > 0 {
            self.write_records(&recs)?;
        }
        Ok(removed)
    }

    /// Remove every entry for a manifest digest (tags and dangling).
    pub fn remove_image(&self, digest: &Digest) -> Result<Vec<String>> {
        let _l = self.lock()?;
        let mut recs = self.records()?;
        let names = recs
            .iter()
            .filter(|r| r.descriptor.digest == *digest)
            .filter_map(|r| r.name.clone())
            .collect();
        recs.retain(|r| r.descriptor.digest != *digest);
        self.write_records(&recs)?;
        Ok(names)
    }

    /// Is this entry an artifact (a signature, an SBOM, a referrer: a manifest whose config is not an image
    /// config) rather than an image? Registries hold them, and `images` leaves them out, as docker does.
    pub fn is_artifact(&self, desc: &Descriptor) -> bool {
        if !media::is_manifest(&desc.media_type) {
            return false;
        }
        let Ok(bytes) = self.read_document(&desc.digest) else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.pointer("/config/mediaType")?.as_str().map(str::to_string))
            .is_some_and(|mt| mt != media::OCI_CONFIG && mt != media::DOCKER_CONFIG)
    }

    /// Load a manifest; when `digest` names an index, pick `platform` (or the first image manifest), by the rule
    /// the tab follows too ([`lw_engine::archive::resolve_manifest`]).
    pub fn resolve(
        &self,
        desc: &Descriptor,
        platform: Option<&lw_oci::Platform>,
    ) -> Result<ResolvedImage> {
        let host = host_platform();
        let want = platform.unwrap_or(&host);
        let (manifest_digest, manifest) = lw_engine::archive::resolve_manifest(
            &crate::buildhost::StoreBlobs { store: self },
            desc,
            want,
        )
        .map_err(|e| anyhow!("{e}"))?;
        let config_bytes = self.read_document(&manifest.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .with_context(|| format!("config {} is not valid", manifest.config.digest))?;
        Ok(ResolvedImage {
            manifest_digest,
            config_digest: manifest.config.digest.clone(),
            manifest,
            config,
            config_bytes,
        })
    }

    /// Every blob reachable from the index entries and from containers' images.
    pub fn reachable(&self) -> Result<BTreeSet<Digest>> {
        let mut roots: Vec<Descriptor> =
            self.records()?.into_iter().map(|r| r.descriptor).collect();
        roots.extend(self.container_images().into_iter().map(|(_, d)| d));
        self.reachable_from(roots)
    }

    /// (container ID, image manifest) of every container (`run`): their images stay while they exist.
    pub fn container_images(&self) -> Vec<(String, Descriptor)> {
        let Ok(dir) = fs::read_dir(self.root.join("containers")) else {
            return vec![];
        };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let Ok(b) = fs::read(e.path().join("container.json")) else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
            if let (Some(id), Ok(d)) = (
                v["id"].as_str(),
                serde_json::from_value::<Descriptor>(v["manifest"].clone()),
            ) {
                out.push((id.to_string(), d));
            }
        }
        out
    }

    /// Every blob reachable from `roots` (themselves included).
    pub fn reachable_from(&self, roots: Vec<Descriptor>) -> Result<BTreeSet<Digest>> {
        reachable(roots, |d| self.has_blob(d), |d| self.read_document(d))
    }

    fn gc_lock_file(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("gc.lock"))
            .context("opening the store's gc lock")
    }

    /// A lease for work that writes blobs (or temporary files) before an image names them: build, pull, load.
    /// While any lease is held, [`Store::gc`] and [`Store::clean_tmp`] leave everything in place, so a concurrent
    /// `prune` or `rmi` never deletes what a running command has just written.
    pub fn lease(&self) -> Result<Lease> {
        let f = self.gc_lock_file()?;
        f.lock_shared().context("locking the store's gc lock")?;
        Ok(Lease(f))
    }

    /// The exclusive side of [`Store::lease`]: `None` while a lease is held.
    fn try_gc_lock(&self) -> Result<Option<Lease>> {
        let f = self.gc_lock_file()?;
        match f.try_lock() {
            Ok(()) => Ok(Some(Lease(f))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the store's gc lock"),
        }
    }

    /// Delete blobs nothing refers to and no live pin holds (expired pins go too); `None`, removing nothing, when
    /// a build, pull or load holds a lease (their blobs are not named yet).
    pub fn gc(&self) -> Result<Option<Collected>> {
        let Some(_gc) = self.try_gc_lock()? else {
            return Ok(None);
        };
        let _l = self.lock()?;
        let mut keep = self.reachable()?;
        let pins = self.live_pins(&keep)?;
        // A kept spliced blob whose parent nothing else keeps is written out in full, so the parent goes (and the
        // layer is a plain file of the OCI layout again); one that fails to (a damaged parent) stays as it is.
        for (d, _) in self.spliced_files() {
            let Some(h) = self.spliced_header(&d) else {
                continue;
            };
            let kept = |x: &Digest| keep.contains(x) || pins.contains(x);
            if kept(&d) && !kept(&h.parent) {
                let _ = self.flatten(&d);
            }
        }
        // A spliced blob still kept keeps the blobs it starts with (the chain is short: see `spliced::MAX_CHAIN`).
        let mut parents = Vec::new();
        for d in keep.iter().chain(&pins) {
            let mut at = d.clone();
            while let Some(h) = self.spliced_header(&at) {
                if parents.len() > keep.len() + pins.len() + spliced::MAX_CHAIN {
                    break;
                }
                parents.push(h.parent.clone());
                at = h.parent;
            }
        }
        keep.extend(parents);
        let mut done = Collected {
            removed: 0,
            freed: 0,
            pinned: 0,
        };
        let mut blobs = Vec::new();
        for a in fs::read_dir(self.root.join("blobs"))? {
            let a = a?;
            if a.file_type()?.is_dir() {
                let alg = a.file_name().to_string_lossy().into_owned();
                for e in fs::read_dir(a.path())? {
                    let e = e?;
                    let name = e.file_name().to_string_lossy().to_string();
                    blobs.push((Digest::parse(&format!("{alg}:{name}")).ok(), e.path()));
                }
            }
        }
        blobs.extend(self.spliced_files().into_iter().map(|(d, p)| (Some(d), p)));
        for (d, path) in blobs {
            if d.as_ref().is_some_and(|d| keep.contains(d)) {
                continue;
            }
            if d.as_ref().is_some_and(|d| pins.contains(d)) {
                done.pinned += 1;
                continue;
            }
            done.freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path)?;
            done.removed += 1;
        }
        // A layer's path index (the build's `cache/layer-index/<digest>`) goes with the layer.
        if let Ok(dir) = fs::read_dir(self.root.join("cache/layer-index")) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let present =
                    Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| self.has_blob(&d));
                if !present {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(Some(done))
    }

    /// Where the embedded registry keeps uploads in progress. [`Store::clean_tmp`] removes only files here that
    /// nothing has written to for [`PIN_IDLE`], the time after which the server drops an idle upload.
    pub fn uploads_dir(&self) -> PathBuf {
        self.tmp_dir().join("uploads")
    }

    /// Remove the files in [`Store::uploads_dir`] untouched for `idle` (best effort).
    pub fn clean_uploads(&self, idle: Duration) {
        let Ok(rd) = fs::read_dir(self.uploads_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= idle);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// Remove temporary files left by interrupted work of dead processes (best effort); returns false, removing
    /// nothing, while a lease is held (a live command's temporary files are in there). Registry uploads are
    /// removed only once idle past [`PIN_IDLE`]: a server that runs on is still receiving them.
    pub fn clean_tmp(&self) -> Result<bool> {
        let Some(_gc) = self.try_gc_lock()? else {
            return Ok(false);
        };
        let _l = self.lock()?;
        let uploads = self.uploads_dir();
        for e in fs::read_dir(self.tmp_dir())? {
            let p = e?.path();
            if p == uploads {
                self.clean_uploads(PIN_IDLE);
                continue;
            }
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(true)
    }

    /// Tag names grouped per manifest digest.
    pub fn names_by_digest(&self) -> Result<BTreeMap<Digest, Vec<String>>> {
        let mut out: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for r in self.records()? {
            let v = out.entry(r.descriptor.digest.clone()).or_default();
            if let Some(n) = r.name {
                v.push(n);
            }
        }
        Ok(out)
    }
}

/// The platform of this machine, as images name it.
pub fn host_platform() -> lw_oci::Platform {
    lw_oci::Platform::new("linux", std::env::consts::ARCH, None)
}

/// Every blob reachable from `roots` (themselves included): child manifests, configs, layers. Shared by the store
/// and serve's storages, which say how to test for and read a document.
pub fn reachable(
    roots: Vec<Descriptor>,
    has_blob: impl Fn(&Digest) -> bool,
    read_document: impl Fn(&Digest) -> Result<Vec<u8>>,
) -> Result<BTreeSet<Digest>> {
    let mut out = BTreeSet::new();
    let mut stack = roots;
    while let Some(d) = stack.pop() {
        if !out.insert(d.digest.clone()) || !has_blob(&d.digest) {
            continue;
        }
        if media::is_index(&d.media_type) {
            let idx: Index = serde_json::from_slice(&read_document(&d.digest)?)?;
            stack.extend(idx.manifests);
        } else if media::is_manifest(&d.media_type) {
            let m: Manifest = serde_json::from_slice(&read_document(&d.digest)?)?;
            out.insert(m.config.digest.clone());
            out.extend(m.layers.into_iter().map(|l| l.digest));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(store: &Store, text: &str) -> Digest {
        store
            .put_bytes("application/octet-stream", text.as_bytes())
            .unwrap()
            .digest
    }

    #[test]
    fn gc_keeps_pinned_blobs_until_the_pin_expires_or_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (held, lapsed, loose) = (blob(&store, "a"), blob(&store, "b"), blob(&store, "c"));
        assert_eq!(
            store
                .pin(std::slice::from_ref(&held), PIN_IDLE, None)
                .unwrap(),
            vec![true]
        );
        assert_eq!(
            store
                .pin(std::slice::from_ref(&lapsed), Duration::ZERO, None)
                .unwrap(),
            vec![true]
        );
        let done = store.gc().unwrap().unwrap();
        assert_eq!((done.removed, done.pinned), (2, 1), "{done:?}");
        assert!(store.has_blob(&held));
        assert!(!store.has_blob(&lapsed), "an expired pin protects nothing");
        assert!(!store.has_blob(&loose), "an unpinned blob goes as before");
        assert!(
            !store.pin_path(&lapsed).exists(),
            "expired pins are removed"
        );

        store.unpin([&held], None);
        assert_eq!(store.gc().unwrap().unwrap().removed, 1);
        assert!(!store.has_blob(&held));
    }

    #[test]
    fn a_pin_may_come_before_its_blob_and_keeps_the_later_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let d = Digest::sha256_of(b"late");
        assert_eq!(
            store.pin(std::slice::from_ref(&d), PIN_IDLE, None).unwrap(),
            vec![false]
        );
        // A shorter pin from another server does not cut the first one short.
        store
            .pin(std::slice::from_ref(&d), Duration::ZERO, None)
            .unwrap();
        assert_eq!(blob(&store, "late"), d);
        assert_eq!(store.gc().unwrap().unwrap().pinned, 1);
        assert!(store.has_blob(&d));
    }

    #[test]
    fn gc_removes_pin_debris() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let d = Digest::sha256_of(b"x");
        store.pin(std::slice::from_ref(&d), PIN_IDLE, None).unwrap();
        let dir = store.pin_path(&d).with_file_name("");
        // A write a crash cut short, and a record that names another digest.
        fs::write(dir.join(".tmp-1-2-0"), b"{").unwrap();
        let other = Digest::sha256_of(b"y");
        fs::write(
            store.pin_path(&other),
            fs::read(store.pin_path(&d)).unwrap(),
        )
        .unwrap();
        store.gc().unwrap().unwrap();
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec![d.encoded().to_string()]);
    }

    #[test]
    fn clean_tmp_leaves_recent_uploads() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        fs::create_dir_all(store.uploads_dir()).unwrap();
        let upload = store.uploads_dir().join("session");
        fs::write(&upload, b"half").unwrap();
        let other = store.tmp_dir().join("leftover");
        fs::write(&other, b"x").unwrap();
        assert!(store.clean_tmp().unwrap());
        assert!(upload.exists(), "an upload in progress survives");
        assert!(!other.exists());
        store.clean_uploads(Duration::ZERO);
        assert!(!upload.exists(), "an idle one goes");
    }

    #[test]
    fn opening_removes_the_temporaries_of_dead_processes_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // The statcache's own directory too: it is saved by write_atomic, staged beside it.
        fs::create_dir_all(tmp.path().join("statcache")).unwrap();
        let dead_files = [
            tmp.path().join(format!(".tmp-{dead}-1-0")),
            store.tmp_dir().join(format!(".tmp-{dead}-2-0")),
            tmp.path().join(format!("statcache/.tmp-{dead}-4-0")),
        ];
        for f in &dead_files {
            fs::write(f, b"half").unwrap();
        }
        let mine = store
            .tmp_dir()
            .join(format!(".tmp-{}-3-0", std::process::id()));
        fs::write(&mine, b"in progress").unwrap();
        let other = tmp.path().join("notes.tmp");
        fs::write(&other, b"not ours").unwrap();
        Store::open(tmp.path()).unwrap();
        for f in &dead_files {
            assert!(!f.exists(), "{} outlived its dead writer", f.display());
        }
        assert!(mine.exists(), "a live process's temporary file stays");
        assert!(other.exists(), "files not named as our temporaries stay");
    }
}
