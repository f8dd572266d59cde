//! Build context read from a directory on disk.
//!
//! [`DirContext`] implements [`lw_engine::context::Context`] with `std::fs`. It never follows
//! symlinks (every lookup uses `symlink_metadata`, and a path whose intermediate component is a
//! symlink is refused), refuses paths that climb out of the root, and, when given
//! `.dockerignore` patterns, applies them while walking the way BuildKit does: an excluded
//! directory is not even read when no `!` exception could re-include something below it.
//!
//! Sockets, FIFOs and device nodes are left out of the listing.

use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lw_engine::context::{
    normalize_entry_path, normalize_path, read_ignore_patterns, Context, ContextEntry, EntryKind,
};
use lw_engine::ignore::{PatternMatcher, Verdict, WalkFilter};
use lw_engine::Error;
use lw_oci::Digest;

use crate::statcache::{Stat, StatCache};

/// A build context backed by a directory.
#[derive(Debug, Clone)]
pub struct DirContext {
    root: PathBuf,
    matcher: Option<PatternMatcher>,
    /// Digests of files whose stat did not change since they were hashed (see [`StatCache`]).
    stats: Option<Arc<StatCache>>,
}

fn io_err(path: &str, source: io::Error) -> Error {
    Error::Io {
        path: path.to_string(),
        source,
    }
}

impl DirContext {
    /// An unfiltered context over `root` (which must be a directory; the root itself may be
    /// reached through a symlink).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        let md = fs::metadata(&root).map_err(|e| io_err(&root.display().to_string(), e))?;
        if !md.is_dir() {
            return Err(Error::NotADirectory {
                path: root.display().to_string(),
            });
        }
        Ok(DirContext {
            root,
            matcher: None,
            stats: None,
        })
    }

    /// Answer file digests from `stats` when the files did not change, and remember the ones the engine hashes.
    pub fn with_stat_cache(mut self, stats: Arc<StatCache>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// An unfiltered context plus the given ignore patterns.
    pub fn with_matcher(root: impl Into<PathBuf>, matcher: PatternMatcher) -> Result<Self, Error> {
        let mut c = Self::new(root)?;
        c.matcher = if matcher.is_empty() {
            None
        } else {
            Some(matcher)
        };
        Ok(c)
    }

    /// A context filtered by its own ignore file: `<dockerfile>.dockerignore` if present, else
    /// `.dockerignore` (see [`read_ignore_patterns`]). `dockerfile` is relative to the root.
    pub fn with_dockerignore(
        root: impl Into<PathBuf>,
        dockerfile: Option<&str>,
    ) -> Result<Self, Error> {
        let unfiltered = Self::new(root)?;
        let patterns = read_ignore_patterns(&unfiltered, dockerfile)?;
        let matcher = PatternMatcher::new(&patterns)?;
        Self::with_matcher(unfiltered.root, matcher)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn matcher(&self) -> Option<&PatternMatcher> {
        self.matcher.as_ref()
    }

    /// The same directory without the ignore patterns (to read the Dockerfile and the ignore
    /// file, which BuildKit delivers regardless of `.dockerignore`).
    pub fn unfiltered(&self) -> DirContext {
        DirContext {
            root: self.root.clone(),
            matcher: None,
            stats: None,
        }
    }

    fn is_excluded(&self, rel: &str) -> Result<bool, Error> {
        match &self.matcher {
            Some(m) if !rel.is_empty() => Ok(m.matches_or_parent_matches(rel)?),
            _ => Ok(false),
        }
    }

    /// Resolve a normalised relative path without following symlinks in any component.
    /// Returns the host path and the entry's own `symlink_metadata`, or `None` if it is missing.
    fn resolve(&self, rel: &str) -> Result<Option<(PathBuf, Metadata)>, Error> {
        let mut host = self.root.clone();
        let comps: Vec<&str> = if rel.is_empty() {
            Vec::new()
        } else {
            rel.split('/').collect()
        };
        for (i, c) in comps.iter().enumerate() {
            host.push(c);
            let md = match fs::symlink_metadata(&host) {
                Ok(md) => md,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(io_err(rel, e)),
            };
            if i + 1 == comps.len() {
                return Ok(Some((host, md)));
            }
            if md.file_type().is_symlink() {
                return Err(Error::InvalidPath {
                    path: rel.to_string(),
                    reason: "goes through a symbolic link",
                });
            }
            if !md.is_dir() {
                return Ok(None);
            }
        }
        let md = fs::metadata(&self.root).map_err(|e| io_err(rel, e))?;
        Ok(Some((host, md)))
    }

    fn make_entry(
        &self,
        rel: String,
        host: &Path,
        md: &Metadata,
    ) -> Result<Option<ContextEntry>, Error> {
        let ft = md.file_type();
        let (kind, size) = if ft.is_symlink() {
            let target = fs::read_link(host).map_err(|e| io_err(&rel, e))?;
            let Some(target) = target.to_str() else {
                return Err(Error::InvalidPath {
                    path: rel,
                    reason: "symlink target is not valid UTF-8",
                });
            };
            let len = target.len() as u64;
            (
                EntryKind::Symlink {
                    target: target.to_string(),
                },
                len,
            )
        } else if ft.is_dir() {
            (EntryKind::Dir, 0)
        } else if ft.is_file() {
            (EntryKind::File, md.len())
        } else {
            return Ok(None); // socket, fifo, device
        };
        Ok(Some(entry_from_metadata(rel, kind, size, md)))
    }

    /// Walk `dir_rel` (already emitted or excluded-pending), appending to `out` in walk order.
    fn walk(
        &self,
        dir_host: &Path,
        dir_rel: &str,
        filter: &mut Option<WalkFilter<'_, Option<ContextEntry>>>,
        dir_excluded: bool,
        out: &mut Vec<ContextEntry>,
        stats: Option<(&StatCache, i128)>,
    ) -> Result<(), Error> {
        let rd = match fs::read_dir(dir_host) {
            Ok(rd) => rd,
            // BuildKit ignores permission errors inside excluded directories
            Err(e) if dir_excluded && e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(e) => return Err(io_err(if dir_rel.is_empty() { "." } else { dir_rel }, e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| io_err(dir_rel, e))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else {
                return Err(Error::InvalidPath {
                    path: format!("{dir_rel}/{}", name.to_string_lossy()),
                    reason: "file name is not valid UTF-8",
                });
            };
            names.push(name.to_string());
        }
        names.sort_unstable(); // byte order, like Go's WalkDir
        for name in names {
            let rel = if dir_rel.is_empty() {
                name.clone()
            } else {
                format!("{dir_rel}/{name}")
            };
            let host = dir_host.join(&name);
            let md = match fs::symlink_metadata(&host) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // vanished meanwhile
                Err(e) => return Err(io_err(&rel, e)),
            };
            let is_dir = md.is_dir();
            let excluded = match filter {
                None => false,
                Some(f) => {
                    // the payload is only kept for excluded directories that may be emitted later
                    let payload = if is_dir {
                        self.make_entry(rel.clone(), &host, &md)?
                    } else {
                        None
                    };
                    match f.visit(&rel, is_dir, payload)? {
                        Verdict::SkipDir => continue,
                        Verdict::Exclude => true,
                        Verdict::Include { parents } => {
                            out.extend(parents.into_iter().flatten());
                            false
                        }
                    }
                }
            };
            if !excluded {
                match self.make_entry(rel.clone(), &host, &md)? {
                    Some(e) => {
                        if let (true, Some((sc, at))) = (e.is_file(), stats) {
                            sc.listed(&rel, Stat::of(&md), at);
                        }
                        out.push(e)
                    }
                    None => continue,
                }
            }
            if is_dir {
                self.walk(&host, &rel, filter, excluded, out, stats)?;
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn entry_from_metadata(path: String, kind: EntryKind, size: u64, md: &Metadata) -> ContextEntry {
    use std::os::unix::fs::MetadataExt;
    ContextEntry {
        path,
        kind,
        mode: md.mode() & 0o7777,
        size,
        uid: md.uid(),
        gid: md.gid(),
        mtime: md.mtime(),
        mtime_nsec: md.mtime_nsec() as u32,
        ino: md.ino(),
        dev: md.dev(),
    }
}

#[cfg(not(unix))]
fn entry_from_metadata(path: String, kind: EntryKind, size: u64, md: &Metadata) -> ContextEntry {
    let mode = match kind {
        EntryKind::Dir => 0o755,
        EntryKind::Symlink { .. } => 0o777,
        EntryKind::File if md.permissions().readonly() => 0o444,
        EntryKind::File => 0o644,
    };
    let (mtime, mtime_nsec) = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| (d.as_secs() as i64, d.subsec_nanos()))
        .unwrap_or((0, 0));
    ContextEntry {
        path,
        kind,
        mode,
        size,
        uid: 0,
        gid: 0,
        mtime,
        mtime_nsec,
        ino: 0,
        dev: 0,
    }
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &Metadata, b: &Metadata) -> bool {
    b.is_file()
}

#[cfg(unix)]
fn pread(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(not(unix))]
fn pread(mut f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    f.read(buf)
}

impl Context for DirContext {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        let mut out = Vec::new();
        let mut filter = self.matcher.as_ref().map(WalkFilter::new);
        let stats = self.stats.as_deref().map(|sc| (sc, sc.walk_started()));
        self.walk(&self.root, "", &mut filter, false, &mut out, stats)?;
        Ok(out)
    }

    fn known_digest(&self, path: &str) -> Option<Digest> {
        self.stats.as_ref()?.lookup(path)
    }

    fn digest_computed(&self, path: &str, digest: &Digest) {
        if let Some(sc) = &self.stats {
            sc.record(path, digest);
        }
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let rel = normalize_entry_path(path)?;
        if self.is_excluded(&rel)? {
            return Err(Error::NotFound { path: rel });
        }
        let Some((host, md)) = self.resolve(&rel)? else {
            return Err(Error::NotFound { path: rel });
        };
        if !md.file_type().is_file() {
            return Err(Error::NotAFile { path: rel });
        }
        let f = File::open(&host).map_err(|e| io_err(&rel, e))?;
        // The path might have been swapped for a symlink between the check and the open.
        let opened = f.metadata().map_err(|e| io_err(&rel, e))?;
        if !same_file(&md, &opened) {
            return Err(Error::PathEscapes { path: rel });
        }
        let mut done = 0;
        while done < buf.len() {
            match pread(&f, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&rel, e)),
            }
        }
        Ok(done)
    }

    fn entry(&self, path: &str) -> Result<Option<ContextEntry>, Error> {
        let rel = normalize_path(path)?;
        if rel.is_empty() {
            return Ok(None);
        }
        let found = match self.resolve(&rel) {
            Ok(Some((host, md))) => self.make_entry(rel.clone(), &host, &md)?,
            Ok(None) | Err(Error::InvalidPath { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(e) = found else { return Ok(None) };
        if !self.is_excluded(&rel)? {
            return Ok(Some(e));
        }
        // An excluded directory is still listed when an exception re-includes something in it.
        match &self.matcher {
            Some(m) if e.is_dir() && m.exclusions() => {
                Ok(self.entries()?.into_iter().find(|x| x.path == rel))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    fn paths(c: &impl Context) -> Vec<String> {
        c.entries().unwrap().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn lists_in_walk_order_without_following_symlinks() {
        let td = tempfile::tempdir().unwrap();
        let r = td.path();
        write(r, "a/b.txt", b"hello");
        write(r, "a.txt", b"x");
        write(r, "a-b", b"y");
        fs::create_dir(r.join("empty")).unwrap();
        symlink("/etc", r.join("etc-link")).unwrap();
        symlink("a", r.join("dir-link")).unwrap();
        fs::set_permissions(r.join("a.txt"), fs::Permissions::from_mode(0o4755)).unwrap();
        let c = DirContext::new(r).unwrap();
        assert_eq!(
            paths(&c),
            ["a", "a/b.txt", "a-b", "a.txt", "dir-link", "empty", "etc-link"]
        );
        let es = c.entries().unwrap();
        assert_eq!(es[1].size, 5);
        assert!(es[1].is_file() && es[1].ino != 0);
        assert_eq!(es[3].mode, 0o4755);
        assert_eq!(es[6].symlink_target(), Some("/etc"));
        assert!(es[4].is_symlink());
        assert_eq!(c.entry("a/b.txt").unwrap().unwrap(), es[1]);
        assert_eq!(
            c.entry("etc-link").unwrap().unwrap().symlink_target(),
            Some("/etc")
        );
        assert!(c.entry("missing").unwrap().is_none());
    }

    #[test]
    fn reads_and_refuses_escapes() {
        let td = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret", b"secret");
        let r = td.path();
        write(r, "f", b"0123456789");
        symlink(outside.path(), r.join("out")).unwrap();
        symlink(outside.path().join("secret"), r.join("s")).unwrap();
        let c = DirContext::new(r).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(c.read_at("f", 3, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"3456");
        assert_eq!(c.read_at("./f", 8, &mut buf).unwrap(), 2);
        assert_eq!(c.read_at("f", 10, &mut buf).unwrap(), 0);
        assert_eq!(c.read_file("f").unwrap(), b"0123456789");
        assert!(matches!(
            c.read_at("../f", 0, &mut buf),
            Err(Error::PathEscapes { .. })
        ));
        assert!(matches!(
            c.read_at("out/secret", 0, &mut buf),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            c.read_at("s", 0, &mut buf),
            Err(Error::NotAFile { .. })
        ));
        assert!(matches!(
            c.read_at("nope", 0, &mut buf),
            Err(Error::NotFound { .. })
        ));
        assert!(c.entry("out/secret").unwrap().is_none());
        assert!(matches!(
            c.read_at("", 0, &mut buf),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn dockerignore_filtering_and_early_skip() {
        let td = tempfile::tempdir().unwrap();
        let r = td.path();
        write(r, "Dockerfile", b"FROM scratch\n");
        write(
            r,
            ".dockerignore",
            b"node_modules\nbuild\n!build/keep\n*.log\nDockerfile\n",
        );
        write(r, "node_modules/pkg/index.js", b"x");
        write(r, "build/out.o", b"x");
        write(r, "build/keep/readme.md", b"keep");
        write(r, "app.log", b"x");
        write(r, "src/main.rs", b"x");
        // A file name that is not UTF-8 makes walking its directory fail, so a successful
        // listing proves the ignored directory was never read.
        use std::os::unix::ffi::OsStrExt;
        fs::write(
            r.join("node_modules")
                .join(std::ffi::OsStr::from_bytes(b"bad\xff")),
            b"x",
        )
        .unwrap();
        assert!(matches!(
            DirContext::new(r).unwrap().entries(),
            Err(Error::InvalidPath { .. })
        ));
        let c = DirContext::with_dockerignore(r, Some("Dockerfile")).unwrap();
        let got = paths(&c);
        assert_eq!(
            got,
            [
                ".dockerignore",
                "build",
                "build/keep",
                "build/keep/readme.md",
                "src",
                "src/main.rs"
            ]
        );
        let mut buf = [0u8; 8];
        assert!(matches!(
            c.read_at("app.log", 0, &mut buf),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            c.read_at("Dockerfile", 0, &mut buf),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            c.unfiltered().read_file("Dockerfile").unwrap(),
            b"FROM scratch\n"
        );
        assert_eq!(c.read_file("build/keep/readme.md").unwrap(), b"keep");
        assert!(c.entry("build").unwrap().is_some());
        assert!(c.entry("build/out.o").unwrap().is_none());
        assert!(c.entry("node_modules").unwrap().is_none());

        // same result as filtering the unfiltered listing
        fs::remove_file(
            r.join("node_modules")
                .join(std::ffi::OsStr::from_bytes(b"bad\xff")),
        )
        .unwrap();
        let filtered = lw_engine::context::filter_entries(
            c.unfiltered().entries().unwrap(),
            c.matcher().unwrap(),
        )
        .unwrap();
        assert_eq!(
            filtered.into_iter().map(|e| e.path).collect::<Vec<_>>(),
            got
        );
    }

    #[test]
    fn wildcard_exception_disables_skipping() {
        let td = tempfile::tempdir().unwrap();
        let r = td.path();
        write(r, "vendor/a/README.md", b"x");
        write(r, "vendor/a/lib.c", b"x");
        let m = PatternMatcher::new(&["vendor", "!**/*.md"]).unwrap();
        let c = DirContext::with_matcher(r, m).unwrap();
        assert_eq!(paths(&c), ["vendor", "vendor/a", "vendor/a/README.md"]);
    }
}
