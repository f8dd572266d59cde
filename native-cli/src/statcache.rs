//! The persistent stat cache of a directory context: the sha256 of each file's content keyed by its (size, mtime,
//! ctime, inode, device), so a rebuild hashes only the files that changed.
//!
//! A digest is trusted only when the file's current stat equals the recorded one exactly. A stat is recorded only
//! when the file was last changed clearly before the walk that listed it (by [`RACY_MARGIN`]): a file changed around
//! the moment it was listed and hashed could change again within the same timestamp tick without its stat changing
//! (git's "racy clean" problem), so its digest is not kept and the next build hashes it again.
//!
//! One file per context directory, `statcache/<sha256 of the directory's path>` in the store, replaced atomically.
//! An unreadable or malformed file is an empty cache: it only costs rehashing.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lw_oci::Digest;

/// How long before the walk a file must have last changed for its digest to be kept: covers coarse file system
/// timestamps (which lag the system clock by up to a tick) with a wide safety factor.
pub const RACY_MARGIN_NS: i128 = 2_000_000_000;

const HEADER: &str = "layerwright-statcache 1";

/// What identifies a file's content version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// Modification and status-change times, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

impl Stat {
    #[cfg(unix)]
    pub fn of(md: &fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            size: md.len(),
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            ctime_ns: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
            ino: md.ino(),
            dev: md.dev(),
        }
    }

    #[cfg(not(unix))]
    pub fn of(md: &fs::Metadata) -> Stat {
        let ns = |t: std::io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128)
        };
        Stat {
            size: md.len(),
            mtime_ns: ns(md.modified()),
            // No ctime here: the creation time stands in; inode 0 never matches a real one below.
            ctime_ns: ns(md.created()),
            ino: 0,
            dev: 0,
        }
    }

    /// Whether the file changed too close to (or after) `listed_at_ns` for a digest taken then to be trusted.
    pub fn is_racy(&self, listed_at_ns: i128) -> bool {
        self.mtime_ns.max(self.ctime_ns) >= listed_at_ns - RACY_MARGIN_NS
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Digests from the file on disk.
    stored: HashMap<String, (Stat, Digest)>,
    /// Regular files of the latest walk: their stat and when that walk started.
    listed: HashMap<String, (Stat, i128)>,
    /// Digests hashed during this build, with the stat listed before the file was read.
    fresh: HashMap<String, (Stat, Digest)>,
    walked: bool,
}

/// The stat cache of one context directory.
#[derive(Debug)]
pub struct StatCache {
    file: Option<PathBuf>,
    inner: Mutex<Inner>,
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl StatCache {
    /// The cache of `context_dir` kept under `store_root` (loaded now; saved by [`StatCache::save`]).
    pub fn open(store_root: &Path, context_dir: &Path) -> StatCache {
        let abs = fs::canonicalize(context_dir).unwrap_or_else(|_| context_dir.to_path_buf());
        let name = Digest::sha256_of(abs.to_string_lossy().as_bytes());
        let file = store_root.join("statcache").join(name.encoded());
        let stored = fs::read_to_string(&file)
            .ok()
            .and_then(|t| parse(&t))
            .unwrap_or_default();
        StatCache {
            file: Some(file),
            inner: Mutex::new(Inner {
                stored,
                ..Inner::default()
            }),
        }
    }

    /// A cache that starts empty and is never saved (tests).
    pub fn in_memory() -> StatCache {
        StatCache {
            file: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps inconsistent in a way that matters for a cache.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time a walk starts, to pass to [`StatCache::listed`] for every file it finds.
    pub fn walk_started(&self) -> i128 {
        let t = now_ns();
        let mut g = self.lock();
        g.walked = true;
        g.listed.clear();
        t
    }

    /// A walk found the regular file `path` with `stat`.
    pub fn listed(&self, path: &str, stat: Stat, walk_started: i128) {
        self.lock()
            .listed
            .insert(path.to_string(), (stat, walk_started));
    }

    /// The digest of `path` if its listed stat is exactly the one recorded with a digest.
    pub fn lookup(&self, path: &str) -> Option<Digest> {
        let g = self.lock();
        let (stat, _) = g.listed.get(path)?;
        g.fresh
            .get(path)
            .or_else(|| g.stored.get(path))
            .filter(|(s, _)| s == stat && s.ino != 0)
            .map(|(_, d)| d.clone())
    }

    /// `path`, as listed, hashed to `digest`; kept unless the file changed around the time it was listed.
    pub fn record(&self, path: &str, digest: &Digest) {
        let mut g = self.lock();
        let Some(&(stat, at)) = g.listed.get(path) else {
            return;
        };
        if stat.is_racy(at) || stat.ino == 0 {
            g.fresh.remove(path);
            return;
        }
        g.fresh.insert(path.to_string(), (stat, digest.clone()));
    }

    /// The entries to keep: every listed file with a trusted digest (a walk lists the whole context, so anything
    /// else is gone or ignored now); before any walk, what was stored.
    fn to_keep(g: &Inner) -> Vec<(&str, Stat, &Digest)> {
        if !g.walked {
            return g
                .stored
                .iter()
                .map(|(p, (s, d))| (p.as_str(), *s, d))
                .collect();
        }
        let mut v: Vec<_> = g
            .listed
            .iter()
            .filter_map(|(p, (stat, _))| {
                g.fresh
                    .get(p)
                    .or_else(|| g.stored.get(p))
                    .filter(|(s, _)| s == stat)
                    .map(|(s, d)| (p.as_str(), *s, d))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Write the cache back when it changed (atomically; a failure only costs rehashing next time).
    pub fn save(&self) -> anyhow::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let g = self.lock();
        let keep = Self::to_keep(&g);
        let unchanged = keep.len() == g.stored.len()
            && keep
                .iter()
                .all(|(p, s, d)| g.stored.get(*p).is_some_and(|(s0, d0)| s0 == s && d0 == *d));
        if unchanged {
            return Ok(());
        }
        let mut text = format!("{HEADER}\n");
        for (p, s, d) in keep {
            text.push_str(&format!(
                "{} {} {} {} {} {} {}\n",
                d.encoded(),
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                s.ino,
                s.dev,
                serde_json::to_string(p).expect("a string serializes")
            ));
        }
        fs::create_dir_all(file.parent().expect("statcache dir"))?;
        crate::store::write_atomic(file, text.as_bytes())
    }
}

fn parse(text: &str) -> Option<HashMap<String, (Stat, Digest)>> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let mut out = HashMap::new();
    for line in lines {
        let mut f = line.splitn(7, ' ');
        let digest = Digest::parse(&format!("sha256:{}", f.next()?)).ok()?;
        let stat = Stat {
            size: f.next()?.parse().ok()?,
            mtime_ns: f.next()?.parse().ok()?,
            ctime_ns: f.next()?.parse().ok()?,
            ino: f.next()?.parse().ok()?,
            dev: f.next()?.parse().ok()?,
        };
        let path: String = serde_json::from_str(f.next()?).ok()?;
        out.insert(path, (stat, digest));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    fn stat(size: u64, mtime_s: i128, ctime_s: i128, ino: u64) -> Stat {
        Stat {
            size,
            mtime_ns: mtime_s * S,
            ctime_ns: ctime_s * S,
            ino,
            dev: 7,
        }
    }

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    #[test]
    fn any_stat_change_invalidates() {
        let c = StatCache::in_memory();
        let t = 1000 * S;
        let base = stat(10, 100, 100, 5);
        c.listed("a", base, t);
        assert_eq!(c.lookup("a"), None);
        c.record("a", &d("x"));
        assert_eq!(c.lookup("a"), Some(d("x")));
        let changes = [
            Stat { size: 11, ..base },
            Stat {
                mtime_ns: base.mtime_ns + 1,
                ..base
            },
            Stat {
                ctime_ns: base.ctime_ns + 1,
                ..base
            },
            Stat { ino: 6, ..base },
            Stat { dev: 8, ..base },
        ];
        for changed in changes {
            c.listed("a", changed, t);
            assert_eq!(c.lookup("a"), None, "{changed:?}");
        }
        c.listed("a", base, t);
        assert_eq!(c.lookup("a"), Some(d("x")));
        // A path never listed is never answered.
        assert_eq!(c.lookup("b"), None);
    }

    #[test]
    fn racy_files_are_not_trusted() {
        let c = StatCache::in_memory();
        let t = 1000 * S;
        // Changed within the margin before the walk, or after it (clock skew): hashed every time.
        for s in [
            stat(1, 999, 990, 5),
            stat(1, 990, 999, 5),
            stat(1, 1000, 1000, 5),
            stat(1, 1005, 1005, 5),
        ] {
            c.listed("f", s, t);
            c.record("f", &d("y"));
            assert_eq!(c.lookup("f"), None, "{s:?}");
            assert!(s.is_racy(t));
        }
        // Clearly older than the walk: kept.
        let old = stat(1, 997, 997, 5);
        assert!(!old.is_racy(t));
        c.listed("f", old, t);
        c.record("f", &d("y"));
        assert_eq!(c.lookup("f"), Some(d("y")));
        // An unknown inode (no stat support) is never trusted.
        c.listed("g", stat(1, 10, 10, 0), t);
        c.record("g", &d("z"));
        assert_eq!(c.lookup("g"), None);
    }

    #[test]
    fn saves_atomically_and_reloads_only_listed_files() {
        let td = tempfile::tempdir().unwrap();
        let ctx = td.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        let store = td.path().join("store");
        let c = StatCache::open(&store, &ctx);
        let t = c.walk_started();
        let old = stat(3, 100, 100, 9);
        c.listed("dir/a b\n", old, t);
        c.listed("gone", stat(4, 100, 100, 10), t);
        c.record("dir/a b\n", &d("a"));
        c.record("gone", &d("g"));
        c.save().unwrap();
        let files: Vec<_> = fs::read_dir(store.join("statcache")).unwrap().collect();
        assert_eq!(files.len(), 1);

        let c2 = StatCache::open(&store, &ctx);
        let t2 = c2.walk_started();
        c2.listed("dir/a b\n", old, t2);
        assert_eq!(c2.lookup("dir/a b\n"), Some(d("a")));
        c2.save().unwrap();
        // "gone" was not listed by the second walk, so it is dropped.
        let c3 = StatCache::open(&store, &ctx);
        assert!(c3.lock().stored.contains_key("dir/a b\n"));
        assert!(!c3.lock().stored.contains_key("gone"));

        // A damaged file is an empty cache.
        let f = fs::read_dir(store.join("statcache"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs::write(&f, format!("{HEADER}\nnot a record\n")).unwrap();
        assert!(StatCache::open(&store, &ctx).lock().stored.is_empty());
    }
}
