//! The registry's storage in memory: blobs, name records, links and upload spools in one bounded table, so tests
//! (and anything else) can run the registry with no file system at all. Blob bytes and spooled bytes together
//! stay under a limit; when a write would pass it, blobs no name reaches and no live pin holds go first (the disk
//! store's `prune`, done on demand), and if that is not enough the write fails.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Cursor, Read};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use lw_oci::{media, Descriptor, Digest, Index, Manifest};

use super::storage::{BlobReader, RegistryStorage, Spool};
use crate::store::{ImageRecord, MAX_DOCUMENT};

/// The registry's storage in memory, holding at most `limit` bytes of blobs and uploads.
#[derive(Clone)]
pub struct MemStorage {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    limit: u64,
    /// Bytes of blobs and of spools in progress.
    used: u64,
    blobs: HashMap<Digest, Arc<[u8]>>,
    /// Named records, sorted by name (as the disk store keeps `index.json`).
    records: Vec<ImageRecord>,
    links: HashMap<Digest, Link>,
}

/// A blob's pin (until when collection keeps it) and the store repositories it is linked to.
struct Link {
    until: Instant,
    repos: BTreeSet<String>,
}

impl MemStorage {
    pub fn new(limit: u64) -> MemStorage {
        MemStorage {
            inner: Arc::new(Mutex::new(Inner {
                limit,
                used: 0,
                blobs: HashMap::new(),
                records: Vec::new(),
                links: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent maps (every update is a single insert or remove).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes held now (blobs and spools).
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    /// How many blobs are held.
    pub fn blob_count(&self) -> usize {
        self.lock().blobs.len()
    }
}

impl Inner {
    /// Make room for `n` more bytes, collecting unreachable blobs when needed.
    fn reserve(&mut self, n: u64) -> Result<()> {
        if self.used.saturating_add(n) > self.limit {
            self.collect();
        }
        if self.used.saturating_add(n) > self.limit {
            bail!(
                "the in-memory registry is full: {} of {} bytes used, {n} more asked for",
                self.used,
                self.limit
            );
        }
        self.used += n;
        Ok(())
    }

    /// Drop blobs no name reaches and no live pin holds, with their links.
    fn collect(&mut self) {
        let now = Instant::now();
        let mut keep = BTreeSet::new();
        let mut stack: Vec<Descriptor> =
            self.records.iter().map(|r| r.descriptor.clone()).collect();
        while let Some(d) = stack.pop() {
            if !keep.insert(d.digest.clone()) {
                continue;
            }
            let Some(b) = self.blobs.get(&d.digest) else {
                continue;
            };
            if media::is_index(&d.media_type) {
                if let Ok(i) = serde_json::from_slice::<Index>(b) {
                    stack.extend(i.manifests);
                }
            } else if media::is_manifest(&d.media_type) {
                if let Ok(m) = serde_json::from_slice::<Manifest>(b) {
                    keep.insert(m.config.digest);
                    keep.extend(m.layers.into_iter().map(|l| l.digest));
                }
            }
        }
        let links = &self.links;
        let mut freed = 0;
        self.blobs.retain(|d, b| {
            let live = keep.contains(d) || links.get(d).is_some_and(|l| l.until > now);
            if !live {
                freed += b.len() as u64;
            }
            live
        });
        self.used -= freed;
        let blobs = &self.blobs;
        self.links
            .retain(|d, l| l.until > now || blobs.contains_key(d));
    }
}

impl RegistryStorage for MemStorage {
    fn has_blob(&self, d: &Digest) -> bool {
        self.lock().blobs.contains_key(d)
    }

    fn blob_size(&self, d: &Digest) -> Option<u64> {
        self.lock().blobs.get(d).map(|b| b.len() as u64)
    }

    fn open_blob(&self, d: &Digest) -> Result<(Box<dyn BlobReader>, u64)> {
        let b = self
            .lock()
            .blobs
            .get(d)
            .cloned()
            .ok_or_else(|| anyhow!("blob {d} is not in the registry"))?;
        let len = b.len() as u64;
        Ok((Box::new(Cursor::new(b)), len))
    }

    fn read_document(&self, d: &Digest) -> Result<Vec<u8>> {
        let (mut r, len) = self.open_blob(d)?;
        if len > MAX_DOCUMENT {
            bail!("document {d} is {len} bytes, over the {MAX_DOCUMENT}-byte limit");
        }
        let mut bytes = Vec::with_capacity(len as usize);
        r.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn put_blob(&self, d: &Digest, size: Option<u64>, src: &mut dyn Read) -> Result<()> {
        let limit = self.lock().limit;
        // Read at most one byte past what could ever fit (or past the declared size) to tell "too big" apart.
        let cap = size.map_or(limit, |s| s.min(limit)).saturating_add(1);
        let mut bytes = Vec::new();
        src.take(cap).read_to_end(&mut bytes)?;
        let n = bytes.len() as u64;
        if n > limit {
            bail!("blob {d} is larger than the in-memory registry's {limit}-byte limit");
        }
        if let Some(s) = size.filter(|s| n != *s) {
            bail!("blob {d} has {n} bytes (or more), but its descriptor says {s}");
        }
        if !d.verify(&bytes) {
            bail!("digest mismatch: content does not hash to {d}");
        }
        let mut i = self.lock();
        if i.blobs.contains_key(d) {
            return Ok(());
        }
        i.reserve(n)?;
        i.blobs.insert(d.clone(), bytes.into());
        Ok(())
    }

    fn records(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.lock().records.clone())
    }

    fn set_name(&self, name: &str, desc: &Descriptor) -> Result<()> {
        let mut i = self.lock();
        // Nothing lists dangling images here, so a re-pointed name simply moves (the disk store keeps `<none>`).
        i.records.retain(|r| r.name.as_deref() != Some(name));
        let rec = ImageRecord {
            name: Some(name.to_string()),
            descriptor: Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size),
        };
        let at = i
            .records
            .partition_point(|r| r.name.as_deref() < Some(name));
        i.records.insert(at, rec);
        Ok(())
    }

    fn remove_names(&self, names: &[String]) -> Result<usize> {
        let mut i = self.lock();
        let before = i.records.len();
        i.records
            .retain(|r| !r.name.as_ref().is_some_and(|n| names.contains(n)));
        Ok(before - i.records.len())
    }

    fn pin(&self, digests: &[Digest], ttl: Duration, repo: Option<&str>) -> Result<Vec<bool>> {
        let now = Instant::now();
        // A pin "for ever" (a huge `ttl`) must not overflow the clock.
        let until = now
            .checked_add(ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let mut i = self.lock();
        let mut present = Vec::with_capacity(digests.len());
        for d in digests {
            let l = i.links.entry(d.clone()).or_insert_with(|| Link {
                until,
                repos: BTreeSet::new(),
            });
            l.until = l.until.max(until);
            if let Some(r) = repo {
                l.repos.insert(r.to_string());
            }
            present.push(i.blobs.contains_key(d));
        }
        Ok(present)
    }

    fn release(&self, digests: &BTreeSet<Digest>) {
        let now = Instant::now();
        let mut i = self.lock();
        for d in digests {
            match i.links.get_mut(d) {
                Some(l) if !l.repos.is_empty() => l.until = now,
                _ => {
                    i.links.remove(d);
                }
            }
        }
    }

    fn unlink(&self, d: &Digest, repo: &str) {
        let mut i = self.lock();
        if let Some(l) = i.links.get_mut(d) {
            l.repos.remove(repo);
            if l.repos.is_empty() {
                i.links.remove(d);
            }
        }
    }

    fn linked_repos(&self, d: &Digest) -> BTreeSet<String> {
        self.lock()
            .links
            .get(d)
            .map(|l| l.repos.clone())
            .unwrap_or_default()
    }

    fn create_upload(&self, _id: &str) -> Result<Box<dyn Spool>> {
        Ok(Box::new(MemSpool {
            store: self.clone(),
            data: Vec::new(),
        }))
    }

    fn sweep_uploads(&self, _idle: Duration) {
        // Spools live in their sessions: when a session goes, its spool goes with it.
    }
}

/// An upload's bytes in memory, counted against the store's limit from the moment they arrive.
struct MemSpool {
    store: MemStorage,
    data: Vec<u8>,
}

impl Spool for MemSpool {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.store
            .lock()
            .reserve(data.len() as u64)
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.data.len() as u64
    }

    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(&self.data[..]))
    }

    fn commit(mut self: Box<Self>, digest: &Digest) -> Result<()> {
        if !digest.verify(&self.data) {
            bail!("the upload does not hash to {digest}");
        }
        let data = std::mem::take(&mut self.data);
        let mut i = self.store.lock();
        // Its bytes are counted already (as a spool's); a blob already here keeps its copy.
        if i.blobs.contains_key(digest) {
            i.used -= data.len() as u64;
        } else {
            i.blobs.insert(digest.clone(), data.into());
        }
        Ok(())
    }

    fn cancel(self: Box<Self>) {}
}

impl Drop for MemSpool {
    fn drop(&mut self) {
        let n = self.data.len() as u64;
        if n > 0 {
            let mut i = self.store.lock();
            i.used -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &MemStorage, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::sha256_of(bytes);
        s.put_blob(&d, Some(bytes.len() as u64), &mut &bytes[..])?;
        Ok(d)
    }

    #[test]
    fn blobs_are_verified_and_read_back() {
        let s = MemStorage::new(1 << 20);
        let d = put(&s, b"hello").unwrap();
        assert_eq!(s.read_document(&d).unwrap(), b"hello");
        assert_eq!(s.blob_size(&d), Some(5));
        let wrong = Digest::sha256_of(b"other");
        let e = s.put_blob(&wrong, None, &mut &b"hello"[..]).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        let e = s.put_blob(&d, Some(4), &mut &b"hello"[..]).unwrap_err();
        assert!(e.to_string().contains("descriptor says 4"), "{e}");
        assert_eq!((s.used(), s.blob_count()), (5, 1));
    }

    #[test]
    fn the_bound_holds_and_unreferenced_blobs_make_room() {
        let s = MemStorage::new(10);
        let kept = put(&s, b"12345").unwrap();
        s.pin(
            std::slice::from_ref(&kept),
            Duration::from_secs(60),
            Some("r"),
        )
        .unwrap();
        let loose = put(&s, b"abcde").unwrap();
        // Full: the loose blob (no name, no pin) goes to make room; the pinned one stays.
        let third = put(&s, b"xyz").unwrap();
        assert!(s.has_blob(&kept) && s.has_blob(&third));
        assert!(!s.has_blob(&loose));
        assert_eq!(s.used(), 8);
        // Still too big after collecting (the unpinned `third` went trying): the write fails, the pinned blob stays.
        let e = put(&s, b"012345").unwrap_err();
        assert!(e.to_string().contains("full"), "{e}");
        assert!(s.has_blob(&kept) && !s.has_blob(&third));
        assert_eq!(s.used(), 5);
        let e = put(&s, b"0123456789a").unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
    }

    #[test]
    fn spools_count_until_committed_or_cancelled() {
        let s = MemStorage::new(8);
        let mut a = s.create_upload("a").unwrap();
        a.append(b"abcd").unwrap();
        assert_eq!((a.offset(), s.used()), (4, 4));
        let mut b = s.create_upload("b").unwrap();
        assert!(b.append(b"12345").is_err(), "over the bound");
        b.cancel();
        assert_eq!(s.used(), 4);
        let d = Digest::sha256_of(b"abcd");
        assert!(a.commit(&Digest::sha256_of(b"x")).is_err());
        assert_eq!(s.used(), 0, "a failed commit drops the spool");
        let mut a = s.create_upload("a").unwrap();
        a.append(b"abcd").unwrap();
        a.commit(&d).unwrap();
        assert_eq!(
            (s.used(), s.read_document(&d).unwrap()),
            (4, b"abcd".to_vec())
        );
    }

    #[test]
    fn names_links_and_releases() {
        let s = MemStorage::new(1 << 20);
        let d = put(&s, b"{}").unwrap();
        let desc = Descriptor::new(media::OCI_MANIFEST, d.clone(), 2);
        s.set_name("localhost/b:t", &desc).unwrap();
        s.set_name("localhost/a:t", &desc).unwrap();
        let names: Vec<_> = s
            .records()
            .unwrap()
            .into_iter()
            .filter_map(|r| r.name)
            .collect();
        assert_eq!(names, vec!["localhost/a:t", "localhost/b:t"]);
        assert_eq!(s.remove_names(&["localhost/a:t".into()]).unwrap(), 1);
        s.pin(
            std::slice::from_ref(&d),
            Duration::from_secs(60),
            Some("localhost/a"),
        )
        .unwrap();
        s.release(&BTreeSet::from([d.clone()]));
        assert_eq!(
            s.linked_repos(&d),
            BTreeSet::from(["localhost/a".to_string()])
        );
        s.unlink(&d, "localhost/a");
        assert!(s.linked_repos(&d).is_empty());
        assert_eq!(
            s.pin(std::slice::from_ref(&d), Duration::MAX, None)
                .unwrap(),
            vec![true]
        );
    }
}
