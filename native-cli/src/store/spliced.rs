//! Spliced blobs: a layer a rebuild resumed, kept as the first `head` bytes of an earlier blob (its parent) and a
//! file of its own with the bytes after them (its tail), so the unchanged start of a large layer is neither copied
//! nor hashed again. One file under `spliced/<alg>/<hex>`: a fixed-size header (the parent, `head`, the tail's
//! length, a check), then the tail. Every reader goes through [`BlobFile`], which reads a plain or spliced blob
//! alike. `gc` writes a kept spliced blob out in full when nothing else keeps its parent, so the parent can go
//! (see `Store::gc`).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use lw_oci::Digest;
use serde::{Deserialize, Serialize};

use super::{sync_dir, tempfile_in, Store};

/// The header's size: the tail starts at this offset of the file.
pub const HEADER: u64 = 4096;
const MAGIC: &str = "layerwright spliced blob 1";
/// How many spliced blobs a read may pass through to reach a plain one: a new spliced blob whose parent chain would
/// be longer is written plain instead (see [`Store::splice_parent`]), and a longer chain on disk is refused.
pub const MAX_CHAIN: usize = 4;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub parent: Digest,
    /// How many bytes of the parent start this blob.
    pub head: u64,
    /// How many bytes follow them, stored in this file after [`HEADER`].
    pub tail: u64,
    /// SHA-256 of the magic, this blob's digest and the fields above: a damaged header, or one copied under another
    /// name, is refused rather than read as another blob.
    check: String,
}

impl Header {
    fn check_of(digest: &Digest, parent: &Digest, head: u64, tail: u64) -> String {
        let line = format!("{MAGIC}\0{digest}\0{parent}\0{head}\0{tail}");
        Digest::sha256_of(line.as_bytes()).to_string()
    }

    fn new(digest: &Digest, parent: &Digest, head: u64, tail: u64) -> Header {
        Header {
            check: Header::check_of(digest, parent, head, tail),
            parent: parent.clone(),
            head,
            tail,
        }
    }

    /// The header of spliced blob `digest`, read from the start of its file.
    fn read(digest: &Digest, f: &File) -> Result<Header> {
        let mut buf = vec![0u8; HEADER as usize];
        f.read_exact_at(&mut buf, 0).with_context(|| {
            format!("blob {digest} is damaged: its spliced header is cut short")
        })?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let text = std::str::from_utf8(&buf[..end]).unwrap_or_default();
        let h = text
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.strip_prefix('\n'))
            .and_then(|json| serde_json::from_str::<Header>(json).ok())
            .ok_or_else(|| anyhow!("blob {digest} is damaged: its spliced header is not valid"))?;
        if h.check != Header::check_of(digest, &h.parent, h.head, h.tail) {
            bail!("blob {digest} is damaged: its spliced header fails its check");
        }
        Ok(h)
    }

    fn bytes(&self) -> Result<Vec<u8>> {
        let mut v = format!("{MAGIC}\n").into_bytes();
        v.extend(serde_json::to_vec(self)?);
        if v.len() as u64 >= HEADER {
            bail!("a spliced header does not fit in {HEADER} bytes");
        }
        Ok(v)
    }
}

/// A stored blob open for reading, plain or spliced: its length, and its bytes from any offset.
pub struct BlobFile {
    inner: Inner,
    pos: u64,
}

enum Inner {
    Plain(File, u64),
    Spliced {
        parent: Box<BlobFile>,
        head: u64,
        file: File,
        tail: u64,
    },
}

impl BlobFile {
    pub fn len(&self) -> u64 {
        match &self.inner {
            Inner::Plain(_, len) => *len,
            Inner::Spliced { head, tail, .. } => head + tail,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plain file, when this blob is one (for in-kernel copies).
    pub fn as_plain(&self) -> Option<&File> {
        match &self.inner {
            Inner::Plain(f, _) => Some(f),
            Inner::Spliced { .. } => None,
        }
    }

    /// Read at `off` without moving the position; 0 only at the end.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        let left = self.len().saturating_sub(off);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..want];
        match &self.inner {
            Inner::Plain(f, _) => f.read_at(buf, off),
            Inner::Spliced {
                parent, head, file, ..
            } => {
                if off < *head {
                    let n = buf.len().min((*head - off) as usize);
                    let got = parent.read_at(&mut buf[..n], off)?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "a spliced blob's parent ended early",
                        ));
                    }
                    Ok(got)
                } else {
                    let got = file.read_at(buf, HEADER + off - head)?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "a spliced blob's tail ended early",
                        ));
                    }
                    Ok(got)
                }
            }
        }
    }
}

impl Read for BlobFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before a blob's start")
        })?;
        Ok(self.pos)
    }
}

/// A spliced blob being written: a temporary file whose tail goes after the header's room.
pub struct SplicedWriter {
    tmp: PathBuf,
    file: File,
    parent: Digest,
    head: u64,
    tail: u64,
    store: Store,
}

impl Write for SplicedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.tail += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl SplicedWriter {
    /// Keep the blob as `digest`, which the caller verified the parent's head and the tail hash to: the header goes
    /// in, the file is synced and renamed into place. A blob already stored under `digest` is left as it is (a
    /// spliced blob never names itself as its parent).
    pub fn commit(mut self, digest: &Digest) -> Result<()> {
        if self.store.has_blob(digest) || *digest == self.parent {
            return Ok(());
        }
        let to = self.store.spliced_path(digest);
        let h = Header::new(digest, &self.parent, self.head, self.tail);
        self.file.write_all_at(&h.bytes()?, 0)?;
        self.file.sync_all()?;
        let dir = to.with_file_name("");
        fs::create_dir_all(&dir)?;
        fs::rename(&self.tmp, &to).with_context(|| format!("writing spliced blob {digest}"))?;
        // Renamed away: nothing for Drop to remove.
        self.tmp = PathBuf::new();
        sync_dir(&dir);
        Ok(())
    }

    /// Drop the bytes written.
    pub fn cancel(self) {}
}

impl Drop for SplicedWriter {
    fn drop(&mut self) {
        // An uncommitted blob leaves nothing behind.
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Store {
    /// Where spliced blob `d` lives (see the module's comment).
    pub fn spliced_path(&self, d: &Digest) -> PathBuf {
        self.root()
            .join("spliced")
            .join(d.algorithm().name())
            .join(d.encoded())
    }

    /// The parent and head of `d` when it is stored spliced (and not plain).
    pub fn spliced_header(&self, d: &Digest) -> Option<Header> {
        if self.blob_path(d).is_file() {
            return None;
        }
        let f = File::open(self.spliced_path(d)).ok()?;
        Header::read(d, &f).ok()
    }

    /// Open blob `d`, plain or spliced, refusing a spliced blob whose header, tail or parent is damaged or missing
    /// with an error that names it.
    pub fn open_blob(&self, d: &Digest) -> Result<BlobFile> {
        self.open_blob_at(d, 0)
    }

    fn open_plain(&self, d: &Digest) -> Result<Option<BlobFile>> {
        match File::open(self.blob_path(d)) {
            Ok(f) => {
                let len = f.metadata()?.len();
                Ok(Some(BlobFile {
                    inner: Inner::Plain(f, len),
                    pos: 0,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("opening blob {d}")),
        }
    }

    fn open_blob_at(&self, d: &Digest, depth: usize) -> Result<BlobFile> {
        if let Some(b) = self.open_plain(d)? {
            return Ok(b);
        }
        let Ok(file) = File::open(self.spliced_path(d)) else {
            // `gc` may have just written it out in full (the plain file is renamed in before the spliced one goes).
            return self
                .open_plain(d)?
                .ok_or_else(|| anyhow!("blob {d} is not in the store"));
        };
        if depth >= MAX_CHAIN {
            bail!("blob {d} is spliced from more than {MAX_CHAIN} earlier blobs");
        }
        let h = Header::read(d, &file)?;
        let have = file.metadata()?.len();
        if have != HEADER + h.tail {
            bail!(
                "blob {d} is damaged: its spliced tail has {} bytes where its header says {}",
                have.saturating_sub(HEADER),
                h.tail
            );
        }
        let parent = self
            .open_blob_at(&h.parent, depth + 1)
            .with_context(|| format!("blob {d} starts with blob {}", h.parent))?;
        if parent.len() < h.head {
            bail!(
                "blob {d} is damaged: it starts with {} bytes of blob {}, which has {}",
                h.head,
                h.parent,
                parent.len()
            );
        }
        Ok(BlobFile {
            inner: Inner::Spliced {
                parent: Box::new(parent),
                head: h.head,
                file,
                tail: h.tail,
            },
            pos: 0,
        })
    }

    /// The blob's size, when it is here.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        if let Ok(m) = fs::metadata(self.blob_path(d)) {
            return m.is_file().then_some(m.len());
        }
        self.spliced_header(d).map(|h| h.head + h.tail)
    }

    /// Where a blob that starts with the first `head` bytes of `from` should splice from: `from` itself, or, when
    /// `from` is spliced and those bytes all come from its own parent, that parent (so repeated edits near a
    /// layer's end do not lengthen the chain). `None` when the blob should be written plain instead: the chain
    /// would pass [`MAX_CHAIN`], or fewer than half of the parent's bytes would be used (a spliced blob keeps its
    /// whole parent stored).
    pub fn splice_parent(&self, from: &Digest, head: u64) -> Option<Digest> {
        let mut at = from.clone();
        let mut chain = Vec::new();
        while let Some(h) = self.spliced_header(&at) {
            chain.push(h);
            if chain.len() > MAX_CHAIN {
                return None;
            }
            at = chain.last().expect("pushed").parent.clone();
        }
        // Skip the spliced blobs whose own head covers the bytes wanted.
        let mut skip = 0;
        while skip < chain.len() && head <= chain[skip].head {
            skip += 1;
        }
        let parent = if skip == 0 {
            from.clone()
        } else {
            chain[skip - 1].parent.clone()
        };
        let depth = chain.len() - skip;
        let size = self.blob_size(&parent)?;
        (depth < MAX_CHAIN && head.saturating_mul(2) >= size && head <= size).then_some(parent)
    }

    /// A new spliced blob that starts with the first `head` bytes of `parent` (see [`Store::splice_parent`]).
    pub fn create_spliced(&self, parent: &Digest, head: u64) -> Result<SplicedWriter> {
        let (tmp, mut file) = tempfile_in(&self.tmp_dir())?;
        file.seek(SeekFrom::Start(HEADER))?;
        Ok(SplicedWriter {
            tmp,
            file,
            parent: parent.clone(),
            head,
            tail: 0,
            store: self.clone(),
        })
    }

    /// Write spliced blob `d` out as a plain blob (verified against its digest as it is copied; temp file, fsync,
    /// rename) and remove its spliced file, so its parent is no longer needed for it.
    pub fn flatten(&self, d: &Digest) -> Result<()> {
        let mut src = self.open_blob(d)?;
        let len = src.len();
        self.put_blob(d, Some(len), &mut src)
            .with_context(|| format!("writing spliced blob {d} out in full"))?;
        fs::remove_file(self.spliced_path(d))?;
        Ok(())
    }

    /// Every spliced blob's digest, with its file's path.
    pub(super) fn spliced_files(&self) -> Vec<(Digest, PathBuf)> {
        let mut out = Vec::new();
        let Ok(algs) = fs::read_dir(self.root().join("spliced")) else {
            return out;
        };
        for a in algs.flatten() {
            let alg = a.file_name().to_string_lossy().into_owned();
            for e in fs::read_dir(a.path()).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(d) = Digest::parse(&format!("{alg}:{name}")) {
                    out.push((d, e.path()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Store `bytes` as a spliced blob over the first `head` bytes of `parent`; returns its digest.
    fn splice(store: &Store, parent: &Digest, head: u64, tail: &[u8]) -> Digest {
        let mut all = Vec::new();
        store
            .open_blob(parent)
            .unwrap()
            .take(head)
            .read_to_end(&mut all)
            .unwrap();
        all.extend_from_slice(tail);
        let d = Digest::sha256_of(&all);
        let mut w = store.create_spliced(parent, head).unwrap();
        w.write_all(tail).unwrap();
        w.commit(&d).unwrap();
        d
    }

    fn read_all(store: &Store, d: &Digest) -> Vec<u8> {
        let mut v = Vec::new();
        store.open_blob(d).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    #[test]
    fn a_spliced_blob_reads_as_its_bytes_from_any_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let base = bytes(100_000, 1);
        let parent = store.put_bytes("x", &base).unwrap().digest;
        let tail = bytes(30_000, 2);
        let d = splice(&store, &parent, 70_000, &tail);
        let mut want = base[..70_000].to_vec();
        want.extend_from_slice(&tail);
        assert!(store.has_blob(&d));
        assert!(!store.blob_path(&d).exists(), "kept spliced, not copied");
        assert_eq!(store.blob_size(&d), Some(want.len() as u64));
        assert_eq!(read_all(&store, &d), want);
        // Ranges across the joint, as a registry's Range GET reads them.
        let mut f = store.open_blob(&d).unwrap();
        for (at, n) in [(69_990u64, 20usize), (0, 5), (99_999, 1), (70_000, 30_000)] {
            f.seek(SeekFrom::Start(at)).unwrap();
            let mut got = vec![0u8; n];
            f.read_exact(&mut got).unwrap();
            assert_eq!(got, want[at as usize..at as usize + n], "at {at}");
        }
        f.seek(SeekFrom::End(-3)).unwrap();
        let mut end = Vec::new();
        f.read_to_end(&mut end).unwrap();
        assert_eq!(end, want[want.len() - 3..]);
        // A blob spliced from a spliced one reads through both.
        let tail2 = bytes(10, 3);
        let d2 = splice(&store, &d, 90_000, &tail2);
        let mut want2 = want[..90_000].to_vec();
        want2.extend_from_slice(&tail2);
        assert_eq!(read_all(&store, &d2), want2);
        assert_eq!(store.spliced_header(&d2).unwrap().parent, d);
    }

    #[test]
    fn splicing_skips_a_parent_whose_own_head_covers_the_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let parent = store.put_bytes("x", &bytes(1000, 1)).unwrap().digest;
        let d = splice(&store, &parent, 900, &bytes(100, 2));
        // The same last-member edit again: the bytes wanted are all the plain blob's.
        assert_eq!(store.splice_parent(&d, 900), Some(parent.clone()));
        assert_eq!(store.splice_parent(&d, 950), Some(d.clone()));
        // Fewer than half of the parent's bytes: written plain, so no large blob is kept for a small start.
        assert_eq!(store.splice_parent(&parent, 400), None);
        assert_eq!(store.splice_parent(&parent, 2000), None, "past its end");
        // The chain stops at MAX_CHAIN.
        let mut at = d;
        for i in 1..MAX_CHAIN {
            at = splice(&store, &at, 900 + 10 * i as u64, &bytes(100, 3 + i as u8));
        }
        assert_eq!(store.splice_parent(&at, 995), None);
        assert_eq!(
            read_all(&store, &at).len(),
            900 + 10 * (MAX_CHAIN - 1) + 100
        );
    }

    #[test]
    fn a_damaged_spliced_blob_is_refused_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let parent = store.put_bytes("x", &bytes(1000, 1)).unwrap().digest;
        let d = splice(&store, &parent, 800, &bytes(300, 2));
        let path = store.spliced_path(&d);
        let good = fs::read(&path).unwrap();
        let err = |store: &Store| format!("{:#}", store.open_blob(&d).err().expect("refused"));

        // A tail cut short.
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        let e = err(&store);
        assert!(e.contains(&d.to_string()) && e.contains("tail"), "{e}");
        // A header changed.
        let mut bad = good.clone();
        let at = bad.windows(4).position(|w| w == b"head").unwrap();
        bad[at + 7] ^= 1;
        fs::write(&path, &bad).unwrap();
        let e = err(&store);
        assert!(e.contains(&d.to_string()) && e.contains("header"), "{e}");
        // The file moved under another digest's name.
        fs::write(&path, &good).unwrap();
        let other = Digest::sha256_of(b"other");
        fs::create_dir_all(store.spliced_path(&other).with_file_name("")).unwrap();
        fs::copy(&path, store.spliced_path(&other)).unwrap();
        let e = format!("{:#}", store.open_blob(&other).err().unwrap());
        assert!(e.contains(&other.to_string()), "{e}");
        // The parent gone, or shorter than the head.
        fs::rename(store.blob_path(&parent), tmp.path().join("aside")).unwrap();
        let e = err(&store);
        assert!(
            e.contains(&d.to_string()) && e.contains(&parent.to_string()),
            "{e}"
        );
        fs::write(store.blob_path(&parent), bytes(10, 1)).unwrap();
        let e = err(&store);
        assert!(
            e.contains(&d.to_string()) && e.contains("which has 10"),
            "{e}"
        );
        fs::rename(tmp.path().join("aside"), store.blob_path(&parent)).unwrap();
        assert_eq!(read_all(&store, &d).len(), 1100);
    }

    #[test]
    fn an_uncommitted_spliced_blob_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let parent = store.put_bytes("x", &bytes(1000, 1)).unwrap().digest;
        let mut w = store.create_spliced(&parent, 600).unwrap();
        w.write_all(b"tail").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert!(store.spliced_files().is_empty());
    }
}
