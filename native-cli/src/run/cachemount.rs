//! Persistent `--mount=type=cache` directories under the store, their sharing modes (shared, private, locked)
//! enforced with file locks between concurrent steps and builds, and clearing them (`builder prune`).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::mounts::{cache_dir, Sharing};
use super::{fsutil, runtime};

/// A cache directory in use by one step; the lock is released when this is dropped.
pub struct CacheLease {
    pub dir: PathBuf,
    _lock: File,
}

/// Private instances beyond this many concurrent users are refused rather than multiplied without end.
const MAX_PRIVATE: usize = 64;

fn lock_file(dir: &Path) -> Result<File> {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(name))
        .with_context(|| format!("opening the lock of cache {}", dir.display()))
}

/// Take a lock, waiting while another step holds it, but giving up on Ctrl-C.
fn wait_lock(f: &File, exclusive: bool, what: &str) -> Result<()> {
    loop {
        let r = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {
                if runtime::interrupted() {
                    bail!("interrupted while waiting for cache mount {what}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking cache mount {what}"))
            }
        }
    }
}

/// Make the cache directory when it is new: empty, or a copy of `seed` (`from=`); then its owner and mode.
fn make_dir(dir: &Path, uid: u32, gid: u32, mode: u32, seed: Option<&Path>) -> Result<()> {
    if !dir.is_dir() {
        match seed {
            Some(s) if s.is_dir() => {
                // Copied beside it and renamed, so an interrupted copy never looks like a seeded cache.
                let mut tmp = dir.as_os_str().to_owned();
                tmp.push(".seeding");
                let tmp = PathBuf::from(tmp);
                fsutil::remove_tree(&tmp)?;
                fsutil::copy_tree(s, &tmp).context("seeding the cache mount")?;
                fs::rename(&tmp, dir)?;
            }
            Some(s) => bail!("the cache seed {} is not a directory", s.display()),
            None => fs::create_dir_all(dir)?,
        }
        fsutil::lchown(dir, uid, gid)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The directory for cache `id` under `base`, locked as `sharing` asks: `shared` takes a shared lock (it only
/// waits for a `locked` or `private` holder), `locked` waits for an exclusive lock, and `private` takes the first
/// instance of the id that nobody holds (the main one, else `-1`, `-2`...). A new directory is empty, or a copy of
/// `seed`.
pub fn acquire(
    base: &Path,
    id: &str,
    sharing: Sharing,
    (uid, gid, mode): (u32, u32, u32),
    seed: Option<&Path>,
) -> Result<CacheLease> {
    fs::create_dir_all(base)?;
    let main = cache_dir(base, id);
    match sharing {
        Sharing::Shared | Sharing::Locked => {
            let lock = lock_file(&main)?;
            wait_lock(&lock, sharing == Sharing::Locked, id)?;
            make_dir(&main, uid, gid, mode, seed)?;
            Ok(CacheLease {
                dir: main,
                _lock: lock,
            })
        }
        Sharing::Private => {
            for n in 0..MAX_PRIVATE {
                let dir = if n == 0 {
                    main.clone()
                } else {
                    let mut s = main.as_os_str().to_owned();
                    s.push(format!("-{n}"));
                    PathBuf::from(s)
                };
                let lock = lock_file(&dir)?;
                match lock.try_lock() {
                    Ok(()) => {
                        make_dir(&dir, uid, gid, mode, seed)?;
                        return Ok(CacheLease { dir, _lock: lock });
                    }
                    Err(TryLockError::WouldBlock) => continue,
                    Err(TryLockError::Error(e)) => {
                        return Err(e).with_context(|| format!("locking cache mount {id}"))
                    }
                }
            }
            bail!("cache mount {id}: more than {MAX_PRIVATE} concurrent private users")
        }
    }
}

/// What clearing cache mounts did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleared {
    pub removed: usize,
    /// Directories left in place because a running step holds them.
    pub in_use: usize,
    pub bytes: u64,
}

/// Remove every cache mount directory under `base` that no step holds (each under its exclusive lock, so a
/// concurrent build keeps what it uses). Lock files stay: deleting one under a waiter would split the lock.
pub fn clear(base: &Path) -> Result<Cleared> {
    let mut out = Cleared::default();
    let Ok(rd) = fs::read_dir(base) else {
        return Ok(out);
    };
    for e in rd {
        let e = e?;
        if !e.file_type()?.is_dir() {
            continue;
        }
        let dir = e.path();
        let lock = lock_file(&dir)?;
        match lock.try_lock() {
            Ok(()) => {
                out.bytes += fsutil::tree_size(&dir);
                fsutil::remove_tree(&dir)
                    .with_context(|| format!("removing cache mount {}", dir.display()))?;
                out.removed += 1;
            }
            Err(TryLockError::WouldBlock) => out.in_use += 1,
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_modes_and_clearing() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path();
        let owner = (0, 0, 0o755);
        let a = acquire(base, "x", Sharing::Private, owner, None).unwrap();
        // A second private user while the first holds it: another, empty directory.
        fs::write(a.dir.join("f"), "1").unwrap();
        let b = acquire(base, "x", Sharing::Private, owner, None).unwrap();
        assert_ne!(a.dir, b.dir);
        assert!(fs::read_dir(&b.dir).unwrap().next().is_none());
        drop(b);
        // Released: the next private user gets the first free instance again (or, when b's release shows late, see
        // below, the next one).
        let a2 = acquire(base, "x", Sharing::Private, owner, None).unwrap();
        assert_ne!(a2.dir, a.dir);
        let made = if a2.dir.to_string_lossy().ends_with("-2") {
            3
        } else {
            2
        };
        drop(a2);
        // Shared users share a directory; clearing skips what is held (a private one released a moment ago may
        // still look held: cleared on a later pass).
        drop(a);
        let s1 = acquire(base, "y", Sharing::Shared, owner, None).unwrap();
        let s2 = acquire(base, "y", Sharing::Shared, owner, None).unwrap();
        assert_eq!(s1.dir, s2.dir);
        let mut c = clear(base).unwrap();
        let mut removed = c.removed;
        for _ in 0..100 {
            if c.in_use == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            c = clear(base).unwrap();
            removed += c.removed;
        }
        assert_eq!((removed, c.in_use), (made, 1), "{c:?}");
        assert!(s1.dir.is_dir());
        drop((s1, s2));
        // Released, it goes. A child that another test thread is starting holds a copy of every descriptor from its
        // fork until its exec closes them (CLOEXEC), the lock's too, so the release may show a moment later here.
        let mut cleared = clear(base).unwrap();
        for _ in 0..100 {
            if cleared.removed == 1 || cleared.in_use == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            cleared = clear(base).unwrap();
        }
        assert_eq!((cleared.removed, cleared.in_use), (1, 0), "{cleared:?}");
    }
}
