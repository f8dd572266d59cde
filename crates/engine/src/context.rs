//! The build context: the set of files a build can `COPY`/`ADD` from.
//!
//! [`Context`] is deliberately small so it can be implemented over a directory (natively, see the
//! CLI's `DirContext`), over files handed to the browser ([`MemoryContext`]), or as a
//! `.dockerignore`-filtered view of another context ([`FilteredContext`]).
//!
//! Paths are relative, `/`-separated, without `.`/`..` components or a leading `/`, and listed
//! in walk order (see [`compare_paths`]).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use lw_oci::Digest;

use crate::error::Error;
use crate::ignore::{self, PatternMatcher, Verdict, WalkFilter};

/// What kind of entry a context path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink { target: String },
}

/// One entry of a build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative, `/`-separated path.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask; no file-type bits).
    pub mode: u32,
    /// Size in bytes for regular files, the target length for symlinks, 0 for directories.
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Nanosecond part of the modification time.
    pub mtime_nsec: u32,
    /// Inode number (native change detection and hard links; 0 when unknown).
    pub ino: u64,
    /// Device number (0 when unknown).
    pub dev: u64,
}

impl ContextEntry {
    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
    pub fn is_symlink(&self) -> bool {
        matches!(self.kind, EntryKind::Symlink { .. })
    }
    /// The symlink target, if this is a symlink.
    pub fn symlink_target(&self) -> Option<&str> {
        match &self.kind {
            EntryKind::Symlink { target } => Some(target),
            _ => None,
        }
    }
}

/// A build context.
pub trait Context {
    /// Every entry (files, dirs, symlinks): relative slash-separated paths, in walk order
    /// ([`compare_paths`]), without the root itself.
    fn entries(&self) -> Result<Vec<ContextEntry>, Error>;

    /// Read up to `buf.len()` bytes of the regular file at `path`, starting at `offset`; returns
    /// the number of bytes read (0 at end of file). Symlinks are never followed.
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error>;

    /// The entry at `path`, if it exists (without following symlinks).
    fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
        let path = normalize_path(path)?;
        Ok(self.entries()?.into_iter().find(|e| e.path == path))
    }

    /// The whole content of a regular file.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.read_at(path, out.len() as u64, &mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// The sha256 of the regular file at `path` when the host knows it without reading the file (natively: from a
    /// stat cache keyed by size, mtime, ctime and inode); `None` means the engine reads and hashes the file.
    fn known_digest(&self, path: &str) -> Option<Digest> {
        let _ = path;
        None
    }

    /// The engine read the file at `path` and its content hashed to `digest`; a host may remember that.
    fn digest_computed(&self, path: &str, digest: &Digest) {
        let _ = (path, digest);
    }

    /// Make `len` bytes of the file at `path` from `offset` readable by [`Context::read_at`]. A host whose file
    /// bytes are not at hand (the browser's `Blob`s, readable only asynchronously) loads that range here, and the
    /// engine awaits it before reading as it writes a layer, so a large context never has to be in memory whole.
    /// `None` (the default): every byte is readable at once.
    fn fetch<'a>(&'a self, path: &'a str, offset: u64, len: usize) -> Option<Fetch<'a>> {
        let _ = (path, offset, len);
        None
    }

    /// Make the first `len` bytes of the file at `path` (all of it when it is shorter) readable by
    /// [`Context::read_at`], and by [`Context::read_file`] when that is the whole file, until [`Context::release`]:
    /// for the few files a step reads outside a layer's write (the head of each file ADD may unpack, the whole of an
    /// archive). `None` (the default): every byte is readable at once.
    fn hold<'a>(&'a self, path: &'a str, len: u64) -> Option<Fetch<'a>> {
        let _ = (path, len);
        None
    }

    /// Forget the files [`Context::hold`] kept.
    fn release(&self) {}

    /// Whether some files' bytes are readable only after [`Context::fetch`] or [`Context::hold`] (the tab's
    /// `Blob`s), so the engine has something to do before a step reads them outside a layer's write.
    fn reads_async(&self) -> bool {
        false
    }
}

/// The future [`Context::fetch`] returns: done once the range is readable.
pub type Fetch<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + 'a>>;

macro_rules! forward_context {
    ($($t:ty),*) => {$(
        impl<C: Context + ?Sized> Context for $t {
            fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
                (**self).entries()
            }
            fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
                (**self).read_at(path, offset, buf)
            }
            fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
                (**self).entry(path)
            }
            fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
                (**self).read_file(path)
            }
            fn known_digest(&self, path: &str) -> Option<Digest> {
                (**self).known_digest(path)
            }
            fn digest_computed(&self, path: &str, digest: &Digest) {
                (**self).digest_computed(path, digest)
            }
            fn fetch<'a>(&'a self, path: &'a str, offset: u64, len: usize) -> Option<Fetch<'a>> {
                (**self).fetch(path, offset, len)
            }
            fn hold<'a>(&'a self, path: &'a str, len: u64) -> Option<Fetch<'a>> {
                (**self).hold(path, len)
            }
            fn release(&self) {
                (**self).release()
            }
            fn reads_async(&self) -> bool {
                (**self).reads_async()
            }
        }
    )*};
}
forward_context!(&C, Box<C>, Arc<C>);

/// Walk order: compare component by component, so each directory is immediately followed by its
/// descendants (`a`, `a/b`, `a.txt` — not the plain string order `a`, `a.txt`, `a/b`). Names are
/// compared as bytes, as Go's `filepath.WalkDir` does.
pub fn compare_paths(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Normalise a context path: strip leading `/` and `./`, collapse `//`, resolve `.` and `..`
/// lexically. The root is `""`. A path that climbs above the root is refused.
pub fn normalize_path(path: &str) -> Result<String, Error> {
    if path.contains('\0') {
        return Err(Error::InvalidPath {
            path: path.to_string(),
            reason: "contains a NUL byte",
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::PathEscapes {
                        path: path.to_string(),
                    });
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Normalise a path that must name an entry (not the root).
pub fn normalize_entry_path(path: &str) -> Result<String, Error> {
    let p = normalize_path(path)?;
    if p.is_empty() {
        return Err(Error::InvalidPath {
            path: path.to_string(),
            reason: "names the context root",
        });
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// In-memory context
// ---------------------------------------------------------------------------------------------

/// Content of a [`MemoryEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryData {
    File(Arc<[u8]>),
    Dir,
    Symlink(String),
}

/// One entry of a [`MemoryContext`]; the metadata fields may be changed after insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    pub data: MemoryData,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
}

impl MemoryEntry {
    fn new(data: MemoryData) -> Self {
        let mode = match data {
            MemoryData::File(_) => 0o644,
            MemoryData::Dir => 0o755,
            MemoryData::Symlink(_) => 0o777,
        };
        MemoryEntry {
            data,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
        }
    }
}

/// A context held in memory (used in the browser). Parent directories are created implicitly
/// (mode 0755); files default to 0644, symlinks to 0777; owner 0:0, mtime 0.
#[derive(Debug, Clone, Default)]
pub struct MemoryContext {
    entries: BTreeMap<String, MemoryEntry>,
    /// Content digests the host already computed (the browser's WebCrypto), so the engine need not hash again.
    known: BTreeMap<String, Digest>,
}

impl MemoryContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries (including implicit directories).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record the sha256 of the file at `path`'s content, computed by the host; replacing the file forgets it.
    pub fn set_known_digest(&mut self, path: &str, digest: Digest) -> Result<(), Error> {
        let p = normalize_entry_path(path)?;
        match self.entries.get(&p).map(|e| &e.data) {
            Some(MemoryData::File(_)) => {
                self.known.insert(p, digest);
                Ok(())
            }
            _ => Err(Error::NotFound { path: p }),
        }
    }

    fn insert(&mut self, path: &str, data: MemoryData) -> Result<&mut MemoryEntry, Error> {
        let path = normalize_entry_path(path)?;
        self.known.remove(&path);
        // create (or check) parents
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            match self.entries.get(parent) {
                Some(e) if e.data != MemoryData::Dir => {
                    return Err(Error::NotADirectory { path: path.clone() });
                }
                Some(_) => {}
                None => {
                    self.entries
                        .insert(parent.to_string(), MemoryEntry::new(MemoryData::Dir));
                }
            }
            end += i + 1;
        }
        let is_dir = data == MemoryData::Dir;
        if !is_dir {
            // replacing a directory with a non-directory drops its contents
            let prefix = format!("{path}/");
            self.entries.retain(|k, _| !k.starts_with(&prefix));
            self.known.retain(|k, _| !k.starts_with(&prefix));
        }
        match self.entries.get_mut(&path) {
            Some(existing) if is_dir && existing.data == MemoryData::Dir => {}
            Some(existing) => *existing = MemoryEntry::new(data),
            None => {
                self.entries.insert(path.clone(), MemoryEntry::new(data));
            }
        }
        Ok(self.entries.get_mut(&path).unwrap())
    }

    /// Add (or replace) a regular file.
    pub fn insert_file(
        &mut self,
        path: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut MemoryEntry, Error> {
        self.insert(path, MemoryData::File(data.into().into()))
    }

    /// Add a directory (an existing directory keeps its metadata and contents).
    pub fn insert_dir(&mut self, path: &str) -> Result<&mut MemoryEntry, Error> {
        self.insert(path, MemoryData::Dir)
    }

    /// Add (or replace) a symbolic link; the target is stored as given.
    pub fn insert_symlink(&mut self, path: &str, target: &str) -> Result<&mut MemoryEntry, Error> {
        self.insert(path, MemoryData::Symlink(target.to_string()))
    }

    /// Remove an entry and everything below it; returns whether it existed.
    pub fn remove(&mut self, path: &str) -> Result<bool, Error> {
        let path = normalize_entry_path(path)?;
        let prefix = format!("{path}/");
        self.entries.retain(|k, _| !k.starts_with(&prefix));
        self.known
            .retain(|k, _| *k != path && !k.starts_with(&prefix));
        Ok(self.entries.remove(&path).is_some())
    }

    /// Mutable access to an entry's metadata.
    pub fn get_mut(&mut self, path: &str) -> Result<Option<&mut MemoryEntry>, Error> {
        let path = normalize_entry_path(path)?;
        // The caller may change the content: a digest recorded for it would go stale.
        self.known.remove(&path);
        Ok(self.entries.get_mut(&path))
    }

    fn to_entry(path: &str, e: &MemoryEntry) -> ContextEntry {
        let (kind, size) = match &e.data {
            MemoryData::File(d) => (EntryKind::File, d.len() as u64),
            MemoryData::Dir => (EntryKind::Dir, 0),
            MemoryData::Symlink(t) => (EntryKind::Symlink { target: t.clone() }, t.len() as u64),
        };
        ContextEntry {
            path: path.to_string(),
            kind,
            mode: e.mode & 0o7777,
            size,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            mtime_nsec: e.mtime_nsec,
            ino: 0,
            dev: 0,
        }
    }
}

impl Context for MemoryContext {
    fn known_digest(&self, path: &str) -> Option<Digest> {
        self.known.get(path).cloned()
    }

    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        let mut v: Vec<ContextEntry> = self
            .entries
            .iter()
            .map(|(p, e)| Self::to_entry(p, e))
            .collect();
        v.sort_by(|a, b| compare_paths(&a.path, &b.path));
        Ok(v)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let p = normalize_entry_path(path)?;
        match self.entries.get(&p).map(|e| &e.data) {
            None => Err(Error::NotFound { path: p }),
            Some(MemoryData::File(d)) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
                let n = buf.len().min(d.len() - start);
                buf[..n].copy_from_slice(&d[start..start + n]);
                Ok(n)
            }
            Some(_) => Err(Error::NotAFile { path: p }),
        }
    }

    fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
        let p = normalize_path(path)?;
        Ok(self.entries.get(&p).map(|e| Self::to_entry(&p, e)))
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        let p = normalize_entry_path(path)?;
        match self.entries.get(&p).map(|e| &e.data) {
            None => Err(Error::NotFound { path: p }),
            Some(MemoryData::File(d)) => Ok(d.to_vec()),
            Some(_) => Err(Error::NotAFile { path: p }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// .dockerignore-filtered view
// ---------------------------------------------------------------------------------------------

/// Apply `matcher` to entries in walk order, with BuildKit's semantics (see [`WalkFilter`]).
pub fn filter_entries(
    entries: Vec<ContextEntry>,
    matcher: &PatternMatcher,
) -> Result<Vec<ContextEntry>, Error> {
    if matcher.is_empty() {
        return Ok(entries);
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut filter = WalkFilter::new(matcher);
    let mut skip_prefix: Option<String> = None;
    for e in entries {
        if let Some(p) = &skip_prefix {
            if e.path.starts_with(p.as_str()) {
                continue;
            }
            skip_prefix = None;
        }
        let is_dir = e.is_dir();
        let path = e.path.clone();
        match filter.visit(&path, is_dir, e.clone())? {
            Verdict::Include { parents } => {
                out.extend(parents);
                out.push(e);
            }
            Verdict::Exclude => {}
            Verdict::SkipDir => skip_prefix = Some(format!("{path}/")),
        }
    }
    Ok(out)
}

/// Read the ignore patterns BuildKit would use for a build with this context: the
/// `<dockerfile>.dockerignore` file if present, else `.dockerignore` at the root, else none.
/// `dockerfile` is the Dockerfile's path inside the context (`None`: only `.dockerignore`).
pub fn read_ignore_patterns<C: Context + ?Sized>(
    ctx: &C,
    dockerfile: Option<&str>,
) -> Result<Vec<String>, Error> {
    for cand in ignore::ignore_file_candidates(dockerfile.unwrap_or("")) {
        let Ok(cand) = normalize_entry_path(&cand) else {
            continue;
        };
        match ctx.entry(&cand)? {
            Some(e) if e.is_file() => {
                return Ok(ignore::try_read_ignore_file(&ctx.read_file(&cand)?)?)
            }
            _ => {}
        }
    }
    Ok(Vec::new())
}

/// Which of `files` a build leaves out of its context: `files` are context paths, `ignore_files` the contents of
/// the ignore files present (`.dockerignore`, `<dockerfile>.dockerignore`). The answer comes from the same
/// [`FilteredContext`] the build reads through, so a view that marks ignored files (the playground's context
/// panel) cannot disagree with what `COPY . /` includes.
pub fn excluded_files(
    files: &[String],
    ignore_files: &[(String, Vec<u8>)],
    dockerfile: &str,
) -> Result<Vec<String>, Error> {
    let mut ctx = MemoryContext::new();
    for f in files {
        ctx.insert_file(f, Vec::new())?;
    }
    for (name, bytes) in ignore_files {
        ctx.insert_file(name, bytes.clone())?;
    }
    let filtered = FilteredContext::from_ignore_file(ctx, Some(dockerfile))?;
    let kept: std::collections::HashSet<String> = filtered
        .entries()?
        .into_iter()
        .filter(|e| e.is_file())
        .map(|e| e.path)
        .collect();
    files
        .iter()
        .map(|f| normalize_entry_path(f))
        .filter(|p| !matches!(p, Ok(p) if kept.contains(p)))
        .collect()
}

/// A context seen through `.dockerignore` patterns, as `COPY`/`ADD` see it.
///
/// As with BuildKit, the Dockerfile and the ignore file itself are delivered to the frontend
/// independently of the patterns: read them through [`FilteredContext::inner`] (they are part of
/// the filtered view only if the patterns do not exclude them).
#[derive(Debug, Clone)]
pub struct FilteredContext<C> {
    inner: C,
    matcher: PatternMatcher,
}

impl<C: Context> FilteredContext<C> {
    pub fn new(inner: C, matcher: PatternMatcher) -> Self {
        FilteredContext { inner, matcher }
    }

    /// Use the context's own ignore file (see [`read_ignore_patterns`]).
    pub fn from_ignore_file(inner: C, dockerfile: Option<&str>) -> Result<Self, Error> {
        let patterns = read_ignore_patterns(&inner, dockerfile)?;
        let matcher = PatternMatcher::new(&patterns)?;
        Ok(FilteredContext { inner, matcher })
    }

    /// The unfiltered context (for the Dockerfile and the ignore file).
    pub fn inner(&self) -> &C {
        &self.inner
    }

    pub fn into_inner(self) -> C {
        self.inner
    }

    pub fn matcher(&self) -> &PatternMatcher {
        &self.matcher
    }

    /// Whether `path` is excluded by the patterns.
    pub fn is_excluded(&self, path: &str) -> Result<bool, Error> {
        let p = normalize_path(path)?;
        if p.is_empty() {
            return Ok(false);
        }
        Ok(self.matcher.matches_or_parent_matches(&p)?)
    }
}

impl<C: Context> Context for FilteredContext<C> {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        filter_entries(self.inner.entries()?, &self.matcher)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        if self.is_excluded(path)? {
            return Err(Error::NotFound {
                path: normalize_path(path)?,
            });
        }
        self.inner.read_at(path, offset, buf)
    }

    fn known_digest(&self, path: &str) -> Option<Digest> {
        // An excluded file is never read, so its digest is never asked for; the paths are the inner context's.
        self.inner.known_digest(path)
    }

    fn digest_computed(&self, path: &str, digest: &Digest) {
        self.inner.digest_computed(path, digest)
    }

    fn fetch<'a>(&'a self, path: &'a str, offset: u64, len: usize) -> Option<Fetch<'a>> {
        self.inner.fetch(path, offset, len)
    }

    fn hold<'a>(&'a self, path: &'a str, len: u64) -> Option<Fetch<'a>> {
        self.inner.hold(path, len)
    }

    fn release(&self) {
        self.inner.release()
    }

    fn reads_async(&self) -> bool {
        self.inner.reads_async()
    }

    fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
        if !self.is_excluded(path)? {
            return self.inner.entry(path);
        }
        // An excluded directory is still listed when an exception re-includes something in it.
        match self.inner.entry(path)? {
            Some(e) if e.is_dir() && self.matcher.exclusions() => {
                let p = normalize_path(path)?;
                Ok(self.entries()?.into_iter().find(|x| x.path == p))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(c: &impl Context) -> Vec<String> {
        c.entries().unwrap().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn excluded_files_follow_the_build() {
        let files: Vec<String> = [
            "a.log",
            "src/main.rs",
            "src/gen/x.log",
            "keep/x.log",
            "Dockerfile",
        ]
        .map(String::from)
        .to_vec();
        let ignore = vec![(
            ".dockerignore".to_string(),
            b"**/*.log\n!keep/*.log\nsrc/gen\n".to_vec(),
        )];
        let out = excluded_files(&files, &ignore, "Dockerfile").unwrap();
        assert_eq!(out, ["a.log", "src/gen/x.log"]);
        // A Dockerfile-specific ignore file wins over .dockerignore, as in BuildKit.
        let both = vec![
            (".dockerignore".to_string(), b"*\n".to_vec()),
            ("Dockerfile.dockerignore".to_string(), b"a.log\n".to_vec()),
        ];
        assert_eq!(
            excluded_files(&files, &both, "Dockerfile").unwrap(),
            ["a.log"]
        );
        assert!(excluded_files(&["../x".to_string()], &[], "Dockerfile").is_err());
    }

    #[test]
    fn normalize() {
        assert_eq!(normalize_path("./a//b/").unwrap(), "a/b");
        assert_eq!(normalize_path("/a/../b").unwrap(), "b");
        assert_eq!(normalize_path(".").unwrap(), "");
        assert!(matches!(
            normalize_path("a/../../b"),
            Err(Error::PathEscapes { .. })
        ));
        assert!(normalize_entry_path("/").is_err());
    }

    #[test]
    fn walk_order() {
        let mut v = vec!["a.txt", "a/b", "a", "a-b", "a/b/c", "b"];
        v.sort_by(|x, y| compare_paths(x, y));
        assert_eq!(v, ["a", "a/b", "a/b/c", "a-b", "a.txt", "b"]);
    }

    #[test]
    fn memory_context() {
        let mut c = MemoryContext::new();
        c.insert_file("src/main.rs", b"fn main() {}".to_vec())
            .unwrap();
        c.insert_file("run.sh", b"#!/bin/sh\n".to_vec())
            .unwrap()
            .mode = 0o755;
        c.insert_symlink("link", "src/main.rs").unwrap();
        c.insert_dir("empty").unwrap();
        let es = c.entries().unwrap();
        let names: Vec<_> = es.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["empty", "link", "run.sh", "src", "src/main.rs"]);
        assert_eq!(es[0].mode, 0o755);
        assert_eq!(es[2].mode, 0o755);
        assert_eq!(es[4].mode, 0o644);
        assert_eq!(es[4].size, 12);
        assert_eq!(es[1].symlink_target(), Some("src/main.rs"));
        let mut buf = [0u8; 4];
        assert_eq!(c.read_at("src/main.rs", 3, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"main");
        assert_eq!(c.read_at("src/main.rs", 100, &mut buf).unwrap(), 0);
        assert!(matches!(
            c.read_at("link", 0, &mut buf),
            Err(Error::NotAFile { .. })
        ));
        assert!(matches!(
            c.read_at("nope", 0, &mut buf),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            c.insert_file("run.sh/x", b"".to_vec()),
            Err(Error::NotADirectory { .. })
        ));
        assert!(matches!(
            c.insert_file("../x", b"".to_vec()),
            Err(Error::PathEscapes { .. })
        ));
        assert_eq!(c.read_file("./src//main.rs").unwrap(), b"fn main() {}");
        // replacing a dir with a file drops its contents
        c.insert_file("src", b"x".to_vec()).unwrap();
        assert_eq!(paths(&c), ["empty", "link", "run.sh", "src"]);
    }

    #[test]
    fn filtered_view_follows_buildkit() {
        let mut c = MemoryContext::new();
        for f in [
            "Dockerfile",
            ".dockerignore",
            "node_modules/x/index.js",
            "build/out.o",
            "build/keep/readme.md",
            "docs/a.md",
            "docs/b.txt",
            "src/main.rs",
        ] {
            c.insert_file(f, b"x".to_vec()).unwrap();
        }
        c.insert_file(
            ".dockerignore",
            b"node_modules\nbuild\n!build/keep\ndocs\n!docs/*.md\nDockerfile\n".to_vec(),
        )
        .unwrap();
        let f = FilteredContext::from_ignore_file(c, Some("Dockerfile")).unwrap();
        assert_eq!(
            paths(&f),
            [
                ".dockerignore",
                "build",
                "build/keep",
                "build/keep/readme.md",
                "docs",
                "docs/a.md",
                "src",
                "src/main.rs"
            ]
        );
        let mut buf = [0u8; 1];
        assert!(matches!(
            f.read_at("Dockerfile", 0, &mut buf),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(f.inner().read_file("Dockerfile").unwrap(), b"x");
        assert!(f.entry("build").unwrap().is_some());
        assert!(f.entry("node_modules").unwrap().is_none());
        assert!(f.entry("build/out.o").unwrap().is_none());
        assert_eq!(f.read_file("build/keep/readme.md").unwrap(), b"x");
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let mut c = MemoryContext::new();
        c.insert_file("a", b"".to_vec()).unwrap();
        c.insert_file("b", b"".to_vec()).unwrap();
        c.insert_file(".dockerignore", b"a".to_vec()).unwrap();
        c.insert_file("ci/Dockerfile", b"FROM x".to_vec()).unwrap();
        c.insert_file("ci/Dockerfile.dockerignore", b"b\nci".to_vec())
            .unwrap();
        let f = FilteredContext::from_ignore_file(&c, Some("ci/Dockerfile")).unwrap();
        assert_eq!(paths(&f), [".dockerignore", "a"]);
        let f = FilteredContext::from_ignore_file(&c, None).unwrap();
        assert_eq!(
            paths(&f),
            [
                ".dockerignore",
                "b",
                "ci",
                "ci/Dockerfile",
                "ci/Dockerfile.dockerignore"
            ]
        );
    }
}
