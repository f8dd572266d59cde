//! The storage the embedded registry works on, as a trait: blobs by digest (sha256 and sha512), the name records
//! that make tags and manifests of repositories, the links of blobs to repositories (with pins against garbage
//! collection), and upload spools. [`DiskStorage`] is the store under `--root`; [`super::mem_store::MemStorage`]
//! keeps everything in memory, so the registry handler can be driven with no file system at all.
//!
//! The trait itself does no I/O of its own and names only `lw_oci` and `std::io` types; it lives here, beside its
//! one consumer, because the handler's request and reply types are native-cli's (see README, serve's registry).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use lw_oci::{Descriptor, Digest};

use crate::store::{ImageRecord, Store};

/// A blob being read: its bytes from any offset (range requests seek).
pub trait BlobReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobReader for T {}

/// The bytes of one upload session, written in order. The session (its repository, its running hash, its idle
/// time) is the registry's; the spool only keeps the bytes.
pub trait Spool: Send {
    /// Append bytes at the end (the upload's offset grows by their length).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// How many bytes the spool holds: the offset the next chunk must start at.
    fn offset(&self) -> u64;
    /// Everything appended so far, from the start (to hash it with another algorithm).
    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>>;
    /// A request used the session now (the disk store's `prune` reads idleness from the file's time).
    fn touch(&mut self) {}
    /// Move the bytes into the blobs under `digest`, which the caller has verified them against.
    fn commit(self: Box<Self>, digest: &Digest) -> Result<()>;
    /// Cancel: drop the bytes.
    fn cancel(self: Box<Self>);
}

/// What the registry needs of a store. Names are store names (`localhost/a:tag`, `localhost/a@sha256:…`); the
/// registry's [`super::repos::Namespace`] maps repositories to them. "Deleting" a blob from a repository removes
/// its link; bytes nothing names or pins go later through the store's garbage collection.
pub trait RegistryStorage: Send + Sync {
    /// Is the blob here?
    fn has_blob(&self, d: &Digest) -> bool;
    /// The blob's size, when it is here.
    fn blob_size(&self, d: &Digest) -> Option<u64>;
    /// The blob's bytes and size.
    fn open_blob(&self, d: &Digest) -> Result<(Box<dyn BlobReader>, u64)>;
    /// A small blob (a manifest, an index, a config), verified against its digest and bounded in size.
    fn read_document(&self, d: &Digest) -> Result<Vec<u8>>;
    /// Store `src` as blob `d`, verified against the digest (and `size` when given); nothing stays on failure.
    fn put_blob(&self, d: &Digest, size: Option<u64>, src: &mut dyn Read) -> Result<()>;

    /// Every name record: the tags and digest names of every repository.
    fn records(&self) -> Result<Vec<ImageRecord>>;
    /// Point `name` at `desc`.
    fn set_name(&self, name: &str, desc: &Descriptor) -> Result<()>;
    /// Remove exactly these names; returns how many were there.
    fn remove_names(&self, names: &[String]) -> Result<usize>;

    /// Link blobs to the store repository `repo` and pin them for `ttl` from now, blob or not (pin first, then
    /// move the blob in, so garbage collection never sees it unpinned); returns whether each blob is here.
    fn pin(&self, digests: &[Digest], ttl: Duration, repo: Option<&str>) -> Result<Vec<bool>>;
    /// End the pins of blobs a name now reaches; their links stay while the blob lives.
    fn release(&self, digests: &BTreeSet<Digest>);
    /// Remove `repo`'s link to blob `d` (a blob DELETE).
    fn unlink(&self, d: &Digest, repo: &str);
    /// The store repositories blob `d` is linked to.
    fn linked_repos(&self, d: &Digest) -> BTreeSet<String>;

    /// A new, empty upload spool for session `id`.
    fn create_upload(&self, id: &str) -> Result<Box<dyn Spool>>;
    /// Drop spools an earlier server left, idle for `idle` (best effort).
    fn sweep_uploads(&self, idle: Duration);

    /// Every blob reachable from `roots` (themselves included): child manifests, configs, layers.
    fn reachable_from(&self, roots: Vec<Descriptor>) -> Result<BTreeSet<Digest>> {
        crate::store::reachable(roots, |d| self.has_blob(d), |d| self.read_document(d))
    }
}

/// The registry over the on-disk store: blobs and `index.json` names under `--root`, links and pins as pin
/// records, upload spools as files in [`Store::uploads_dir`] that `prune` leaves alone while they are in use.
pub struct DiskStorage {
    store: Store,
}

impl DiskStorage {
    pub fn new(store: Store) -> DiskStorage {
        DiskStorage { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl RegistryStorage for DiskStorage {
    fn has_blob(&self, d: &Digest) -> bool {
        self.store.has_blob(d)
    }

    fn blob_size(&self, d: &Digest) -> Option<u64> {
        self.store.blob_size(d)
    }

    fn open_blob(&self, d: &Digest) -> Result<(Box<dyn BlobReader>, u64)> {
        let f = self.store.open_blob(d)?;
        let len = f.len();
        Ok((Box::new(f), len))
    }

    fn read_document(&self, d: &Digest) -> Result<Vec<u8>> {
        self.store.read_document(d)
    }

    fn put_blob(&self, d: &Digest, size: Option<u64>, src: &mut dyn Read) -> Result<()> {
        self.store.put_blob(d, size, src)
    }

    fn records(&self) -> Result<Vec<ImageRecord>> {
        self.store.records()
    }

    fn set_name(&self, name: &str, desc: &Descriptor) -> Result<()> {
        self.store.set_tag(name, desc)
    }

    fn remove_names(&self, names: &[String]) -> Result<usize> {
        self.store.remove_names(names)
    }

    fn pin(&self, digests: &[Digest], ttl: Duration, repo: Option<&str>) -> Result<Vec<bool>> {
        self.store.pin(digests, ttl, repo)
    }

    fn release(&self, digests: &BTreeSet<Digest>) {
        self.store.release(digests)
    }

    fn unlink(&self, d: &Digest, repo: &str) {
        self.store.unpin(std::slice::from_ref(d), Some(repo))
    }

    fn linked_repos(&self, d: &Digest) -> BTreeSet<String> {
        self.store.linked_repos(d)
    }

    fn create_upload(&self, id: &str) -> Result<Box<dyn Spool>> {
        let dir = self.store.uploads_dir();
        // The directory is normally there; an older `prune` removed it with the rest of tmp/.
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(id);
        File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Box::new(FileSpool {
            store: self.store.clone(),
            path,
            len: 0,
        }))
    }

    fn sweep_uploads(&self, idle: Duration) {
        let _ = fs::create_dir_all(self.store.uploads_dir());
        self.store.clean_uploads(idle);
    }
}

/// An upload spooled to a file in the store's uploads directory (same file system as the blobs: commit renames).
struct FileSpool {
    store: Store,
    path: PathBuf,
    len: u64,
}

impl Spool for FileSpool {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        // Opened per write: an idle session holds no descriptor.
        let mut f = OpenOptions::new().append(true).open(&self.path)?;
        f.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.len
    }

    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(&self.path)?))
    }

    fn touch(&mut self) {
        let _ = File::options()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(SystemTime::now()));
    }

    fn commit(self: Box<Self>, digest: &Digest) -> Result<()> {
        let res = (|| -> Result<()> {
            File::open(&self.path)?.sync_all()?;
            self.store.ensure_blob_dir(digest)?;
            let to = self.store.blob_path(digest);
            fs::rename(&self.path, &to)
                .with_context(|| format!("moving the upload into {}", to.display()))?;
            if let Some(dir) = to.parent() {
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        res
    }

    fn cancel(self: Box<Self>) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::mem_store::MemStorage;
    use lw_oci::digest::Algorithm;
    use lw_oci::media;
    use lw_oci::DigestHasher;

    fn sha512_of(b: &[u8]) -> Digest {
        let mut h = DigestHasher::new(Algorithm::Sha512);
        h.update(b);
        h.finish()
    }

    /// What every storage must do, the same way: the registry cannot tell them apart. Returns the bytes of the
    /// blobs it left.
    fn contract(s: &dyn RegistryStorage) -> u64 {
        // Blobs: verified on the way in (sha256 and sha512), read back whole or from an offset, stat.
        let a = Digest::sha256_of(b"alpha");
        s.put_blob(&a, Some(5), &mut &b"alpha"[..]).unwrap();
        assert!(s.put_blob(&a, None, &mut &b"alphx"[..]).is_err());
        let long = sha512_of(b"long one");
        assert!(s.put_blob(&long, Some(8), &mut &b"long onf"[..]).is_err());
        assert!(!s.has_blob(&long), "nothing stays after a failed put");
        s.put_blob(&long, Some(8), &mut &b"long one"[..]).unwrap();
        assert_eq!(s.blob_size(&long), Some(8));
        assert_eq!(s.blob_size(&Digest::sha256_of(b"none")), None);
        let (mut r, len) = s.open_blob(&long).unwrap();
        r.seek(io::SeekFrom::Start(5)).unwrap();
        let mut tail = String::new();
        r.read_to_string(&mut tail).unwrap();
        assert_eq!((len, tail.as_str()), (8, "one"));

        // Spools: append, offset, read back, then commit or cancel.
        let mut up = s.create_upload("0123abcd").unwrap();
        up.append(b"chunk one, ").unwrap();
        up.append(b"chunk two").unwrap();
        assert_eq!(up.offset(), 20);
        let mut all = Vec::new();
        up.reader().unwrap().read_to_end(&mut all).unwrap();
        assert_eq!(all, b"chunk one, chunk two");
        let d = sha512_of(&all);
        up.commit(&d).unwrap();
        assert_eq!(s.read_document(&d).unwrap(), all);
        let mut gone = s.create_upload("4567ef").unwrap();
        gone.append(b"never").unwrap();
        gone.cancel();
        assert!(!s.has_blob(&Digest::sha256_of(b"never")));

        // Names, links and reachability.
        let m = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": Descriptor::new(media::OCI_CONFIG, a.clone(), 5), "layers": []}))
        .unwrap();
        let md = Descriptor::of(media::OCI_MANIFEST, &m);
        assert_eq!(
            s.pin(
                &[md.digest.clone(), a.clone()],
                Duration::from_secs(60),
                Some("localhost/r")
            )
            .unwrap(),
            vec![false, true],
            "a pin may come before its blob"
        );
        s.put_blob(&md.digest, Some(md.size), &mut &m[..]).unwrap();
        s.set_name("localhost/r:t", &md).unwrap();
        let reach = s.reachable_from(vec![md.clone()]).unwrap();
        assert_eq!(reach, BTreeSet::from([md.digest.clone(), a.clone()]));
        s.release(&reach);
        assert_eq!(
            s.linked_repos(&a),
            BTreeSet::from(["localhost/r".to_string()])
        );
        s.unlink(&a, "localhost/r");
        assert!(s.linked_repos(&a).is_empty());
        let names = |s: &dyn RegistryStorage| -> Vec<String> {
            s.records()
                .unwrap()
                .into_iter()
                .filter_map(|r| r.name)
                .collect()
        };
        assert!(names(s).contains(&"localhost/r:t".to_string()));
        assert_eq!(s.remove_names(&["localhost/r:t".into()]).unwrap(), 1);
        assert!(!names(s).contains(&"localhost/r:t".to_string()));
        5 + 8 + all.len() as u64 + md.size
    }

    #[test]
    fn the_disk_store_keeps_the_contract() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        contract(&DiskStorage::new(store.clone()));
        // Committed spools are renamed into the blobs, leaving no file behind in the uploads directory.
        assert_eq!(fs::read_dir(store.uploads_dir()).unwrap().count(), 0);
    }

    #[test]
    fn the_memory_store_keeps_the_contract() {
        let mem = MemStorage::new(1 << 20);
        let kept = contract(&mem);
        // The cancelled spool gave its bytes back; the blobs are all that is counted.
        assert_eq!(mem.used(), kept);
    }
}
