//! The public proxy's disk cache of anonymous pulls by digest: content-addressed entries (immutable, so never
//! revalidated), filled while a response streams to its client (temp file, digest verified, fsync, rename), kept
//! under a byte cap by evicting the least recently used.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use lw_oci::{Digest, DigestHasher};

/// Manifest or blob: kept apart, so a digest asked for as the other kind is never answered from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Blob,
}

struct Entry {
    size: u64,
    used: u64,
}

#[derive(Default)]
struct Index {
    entries: HashMap<String, Entry>,
    /// Entries being filled: concurrent misses of the same digest write it once (the others only stream).
    filling: std::collections::HashSet<String>,
    total: u64,
    tick: u64,
}

pub struct DiskCache {
    dir: PathBuf,
    max: u64,
    index: Mutex<Index>,
    next_tmp: AtomicU64,
}

fn key(kind: Kind, d: &Digest) -> String {
    let k = match kind {
        Kind::Manifest => 'm',
        Kind::Blob => 'b',
    };
    format!("{k}-{}-{}", d.algorithm().name(), d.encoded())
}

impl DiskCache {
    /// Open (or create) the cache in `dir` with a cap of `max` bytes. Entries already there are kept, oldest
    /// (by modification time) first in line for eviction; leftover temp files are removed.
    pub fn open(dir: &Path, max: u64) -> Result<Arc<DiskCache>> {
        let data = dir.join("data");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut found = Vec::new();
        for e in std::fs::read_dir(&data).with_context(|| format!("reading {}", data.display()))? {
            let e = e?;
            let md = e.metadata()?;
            if md.is_file() {
                let name = e.file_name().to_string_lossy().into_owned();
                found.push((md.modified().ok(), name, md.len()));
            }
        }
        found.sort();
        let mut idx = Index::default();
        for (_, name, size) in found {
            idx.tick += 1;
            idx.total += size;
            idx.entries.insert(
                name,
                Entry {
                    size,
                    used: idx.tick,
                },
            );
        }
        let c = Arc::new(DiskCache {
            dir: dir.to_path_buf(),
            max,
            index: Mutex::new(idx),
            next_tmp: AtomicU64::new(0),
        });
        c.evict(&mut c.index.lock().expect("cache index"));
        Ok(c)
    }

    /// Bytes and entries held.
    pub fn usage(&self) -> (u64, usize) {
        let idx = self.index.lock().expect("cache index");
        (idx.total, idx.entries.len())
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The entry for `d`, opened (an eviction after this leaves the open file readable), and its size.
    pub fn get(&self, kind: Kind, d: &Digest) -> Option<(File, u64)> {
        let k = key(kind, d);
        let mut idx = self.index.lock().expect("cache index");
        idx.tick += 1;
        let tick = idx.tick;
        let e = idx.entries.get_mut(&k)?;
        match File::open(self.dir.join("data").join(&k)) {
            Ok(f) => {
                e.used = tick;
                Some((f, e.size))
            }
            Err(_) => {
                // Removed behind our back: forget it.
                let size = e.size;
                idx.entries.remove(&k);
                idx.total -= size;
                None
            }
        }
    }

    /// Wrap `body` (the upstream's full response for `d`, `len` bytes when known) so that, read to its end, it
    /// leaves an entry behind; `None` when it cannot be cached (too large, or the temp file fails).
    pub fn fill(
        self: &Arc<Self>,
        kind: Kind,
        d: &Digest,
        len: Option<u64>,
        body: Box<dyn Read + Send>,
    ) -> Box<dyn Read + Send> {
        if len.is_some_and(|n| n > self.max) {
            return body;
        }
        let k = key(kind, d);
        if !self
            .index
            .lock()
            .expect("cache index")
            .filling
            .insert(k.clone())
        {
            return body;
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let Ok(file) = File::create(&tmp) else {
            self.done_filling(&k);
            return body;
        };
        Box::new(Fill {
            cache: self.clone(),
            inner: body,
            file: Some(io::BufWriter::with_capacity(256 * 1024, file)),
            tmp,
            key: k,
            want: d.clone(),
            hasher: Some(DigestHasher::new(d.algorithm())),
            len,
            written: 0,
        })
    }

    fn done_filling(&self, k: &str) {
        self.index.lock().expect("cache index").filling.remove(k);
    }

    /// Keep a verified temp file as `k`.
    fn commit(&self, tmp: &Path, k: &str, size: u64) -> io::Result<()> {
        let dst = self.dir.join("data").join(k);
        std::fs::rename(tmp, &dst)?;
        if let Ok(d) = File::open(self.dir.join("data")) {
            let _ = d.sync_all();
        }
        let mut idx = self.index.lock().expect("cache index");
        idx.tick += 1;
        let tick = idx.tick;
        // Two clients may fill the same entry at once: the bytes are the same, count them once.
        if let Some(old) = idx
            .entries
            .insert(k.to_string(), Entry { size, used: tick })
        {
            idx.total -= old.size;
        }
        idx.total += size;
        self.evict(&mut idx);
        Ok(())
    }

    /// Remove least recently used entries until the total is under the cap.
    fn evict(&self, idx: &mut Index) {
        while idx.total > self.max {
            let Some(k) = idx
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            let e = idx.entries.remove(&k).expect("present");
            idx.total -= e.size;
            let _ = std::fs::remove_file(self.dir.join("data").join(&k));
        }
    }
}

/// A response body that writes what it passes through to a temp file and keeps it as an entry if it ends with
/// the right length and digest.
struct Fill {
    cache: Arc<DiskCache>,
    inner: Box<dyn Read + Send>,
    file: Option<io::BufWriter<File>>,
    tmp: PathBuf,
    key: String,
    want: Digest,
    hasher: Option<DigestHasher>,
    len: Option<u64>,
    written: u64,
}

impl Fill {
    fn abandon(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
            self.cache.done_filling(&self.key);
        }
    }

    fn finish(&mut self) {
        let Some(w) = self.file.take() else { return };
        let hash = self.hasher.take().map(|h| h.finish());
        let ok = hash.as_ref() == Some(&self.want)
            && self.len.is_none_or(|n| n == self.written)
            && self.written <= self.cache.max;
        let kept = ok
            && w.into_inner().ok().is_some_and(|f| f.sync_all().is_ok())
            && self
                .cache
                .commit(&self.tmp, &self.key, self.written)
                .is_ok();
        if !kept {
            if !ok {
                eprintln!(
                    "proxy cache: {} not kept (digest or length mismatch)",
                    self.want
                );
            }
            let _ = std::fs::remove_file(&self.tmp);
        }
        self.cache.done_filling(&self.key);
    }
}

impl Read for Fill {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        if n == 0 {
            self.finish();
            return Ok(0);
        }
        if let Some(w) = self.file.as_mut() {
            self.written += n as u64;
            if self.written > self.cache.max || w.write_all(&buf[..n]).is_err() {
                self.abandon();
            } else if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            // Keep the entry before the last bytes reach the client: whoever asks next finds it.
            if self.len == Some(self.written) {
                self.finish();
            }
        }
        Ok(n)
    }
}

impl Drop for Fill {
    /// A client that went away before the end leaves no entry.
    fn drop(&mut self) {
        self.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(c: &Arc<DiskCache>, kind: Kind, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let mut r = c.fill(
            kind,
            &d,
            Some(data.len() as u64),
            Box::new(io::Cursor::new(data.to_vec())),
        );
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "the body passes through unchanged");
        d
    }

    #[test]
    fn fills_verifies_and_evicts_least_recently_used() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path(), 250).unwrap();
        let a = put(&c, Kind::Blob, &[1u8; 100]);
        let b = put(&c, Kind::Blob, &[2u8; 100]);
        assert_eq!(c.usage(), (200, 2));
        assert!(c.get(Kind::Manifest, &a).is_none(), "kinds are kept apart");
        // Use `a`, so `b` is the least recently used when `c` arrives.
        let (mut f, n) = c.get(Kind::Blob, &a).unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!((n, got), (100, vec![1u8; 100]));
        let third = put(&c, Kind::Blob, &[3u8; 100]);
        assert!(c.get(Kind::Blob, &b).is_none(), "LRU entry evicted");
        assert!(c.get(Kind::Blob, &a).is_some() && c.get(Kind::Blob, &third).is_some());
        assert_eq!(c.usage(), (200, 2));
        // Wrong bytes for a digest are passed on but never kept.
        let wrong = Digest::sha256_of(b"other");
        let mut r = c.fill(
            Kind::Blob,
            &wrong,
            None,
            Box::new(io::Cursor::new(vec![9u8; 10])),
        );
        io::copy(&mut r, &mut io::sink()).unwrap();
        drop(r);
        assert!(c.get(Kind::Blob, &wrong).is_none());
        // A body dropped half-read is not kept either, and leaves no temp file.
        let data = vec![7u8; 50];
        let d = Digest::sha256_of(&data);
        let mut r = c.fill(Kind::Blob, &d, Some(50), Box::new(io::Cursor::new(data)));
        r.read_exact(&mut [0u8; 10]).unwrap();
        drop(r);
        assert!(c.get(Kind::Blob, &d).is_none());
        assert_eq!(
            std::fs::read_dir(tmp.path().join("tmp")).unwrap().count(),
            0
        );
        // Two misses of one digest at once: the second only streams, the first fills.
        let data = vec![8u8; 40];
        let d = Digest::sha256_of(&data);
        let mut first = c.fill(
            Kind::Blob,
            &d,
            Some(40),
            Box::new(io::Cursor::new(data.clone())),
        );
        let mut second = c.fill(
            Kind::Blob,
            &d,
            Some(40),
            Box::new(io::Cursor::new(data.clone())),
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("tmp")).unwrap().count(),
            1
        );
        let (mut got1, mut got2) = (Vec::new(), Vec::new());
        second.read_to_end(&mut got2).unwrap();
        first.read_to_end(&mut got1).unwrap();
        assert_eq!((got1, got2), (data.clone(), data));
        assert!(c.get(Kind::Blob, &d).is_some());
        let b = put(&c, Kind::Blob, &[2u8; 100]);
        assert!(
            c.get(Kind::Blob, &b).is_some(),
            "filled again after eviction"
        );
        // Reopened: the entries are still there.
        let before = c.usage();
        assert_eq!(before, (240, 3), "a evicted for b");
        drop(c);
        let c = DiskCache::open(tmp.path(), 250).unwrap();
        assert_eq!(c.usage(), before);
        assert!(c.get(Kind::Blob, &b).is_some() && c.get(Kind::Blob, &a).is_none());
    }
}
