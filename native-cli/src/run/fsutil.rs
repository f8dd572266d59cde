//! Low-level file-system helpers for RUN root file systems: ownership, times, device nodes and xattrs on paths
//! without following symlinks, resolution of container paths confined to a root, and a faithful tree copy.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// chown without following a final symlink.
pub fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p)?;
    check(unsafe { libc::lchown(c.as_ptr(), uid, gid) })
}

/// Set access and modification time (seconds, nanoseconds) without following a final symlink.
pub fn lutimes(p: &Path, sec: i64, nsec: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let t = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    };
    let times = [t, t];
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Create a device node or FIFO.
pub fn mknod(p: &Path, kind: libc::mode_t, perm: u32, major: u32, minor: u32) -> io::Result<()> {
    let c = cpath(p)?;
    let dev = libc::makedev(major, minor);
    check(unsafe { libc::mknod(c.as_ptr(), kind | (perm & 0o7777) as libc::mode_t, dev) })
}

pub fn dev_major(rdev: u64) -> u32 {
    libc::major(rdev as libc::dev_t)
}

pub fn dev_minor(rdev: u64) -> u32 {
    libc::minor(rdev as libc::dev_t)
}

/// Extended attributes of a path (not following symlinks); file systems without xattrs give none.
pub fn lxattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(c) = cpath(p) else { return out };
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n <= 0 {
        return out;
    }
    let mut names = vec![0u8; n as usize];
    let n = unsafe {
        libc::llistxattr(
            c.as_ptr(),
            names.as_mut_ptr() as *mut libc::c_char,
            names.len(),
        )
    };
    if n <= 0 {
        return out;
    }
    names.truncate(n as usize);
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let key = String::from_utf8_lossy(name).into_owned();
        // Overlay's own bookkeeping and SELinux labels belong to the host, not to the image.
        if key.starts_with("trusted.overlay.") || key == "security.selinux" {
            continue;
        }
        let Ok(cn) = CString::new(name) else { continue };
        let len = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            continue;
        }
        let mut val = vec![0u8; len as usize];
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                val.as_mut_ptr() as *mut libc::c_void,
                val.len(),
            )
        };
        if len < 0 {
            continue;
        }
        val.truncate(len as usize);
        out.insert(key, val);
    }
    out
}

/// Set one extended attribute, not following symlinks. Callers ignore failures where the file system refuses.
pub fn lsetxattr(p: &Path, key: &str, val: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let k = CString::new(key)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in xattr name"))?;
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            k.as_ptr(),
            val.as_ptr() as *const libc::c_void,
            val.len(),
            0,
        )
    })
}

/// Clean container path components (absolute or relative), refusing nothing: `..` is clamped at the root.
fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    out
}

/// Resolve a container path inside `root` as the container would see it: symlinks are followed but confined to
/// `root` (absolute targets restart at `root`, `..` stops at it). Missing components are kept as they are.
/// Returns the host path. Only used while no container runs in `root`.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let mut todo: Vec<String> = components(path);
    todo.reverse();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&done);
        host.push(&c);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    bail!("too many levels of symbolic links resolving {path}");
                }
                let target = fs::read_link(&host)?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    done.clear();
                }
                // Push the target's components (then `..` is handled as we pop them).
                let mut parts: Vec<String> = t
                    .split('/')
                    .filter(|p| !p.is_empty() && *p != ".")
                    .map(String::from)
                    .collect();
                parts.reverse();
                todo.extend(parts);
            }
            _ => done.push(c),
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&done);
    Ok(host)
}

/// Read a file of the container (e.g. `/etc/passwd`), confined to `root`; `None` when it does not exist.
pub fn read_in_root(root: &Path, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let host = resolve_in_root(root, path)?;
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&host)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {path} in the root file system")),
    };
    if !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut v = Vec::new();
    f.take(limit).read_to_end(&mut v)?;
    Ok(Some(v))
}

/// Copy the tree at `src` to the new directory `dst`, keeping types, modes, owners, times, xattrs, device
/// numbers and hard links (the copying snapshot when overlayfs is not available).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    let m = fs::symlink_metadata(src)?;
    fs::create_dir(dst).with_context(|| format!("creating {}", dst.display()))?;
    copy_meta(dst, &m, &lxattrs(src))?;
    dirs.push((dst.to_path_buf(), m));
    copy_children(src, dst, &mut links, &mut dirs)?;
    // Directory times last: creating children changed them.
    for (d, m) in dirs.iter().rev() {
        lutimes(d, m.mtime(), m.mtime_nsec())?;
    }
    Ok(())
}

fn copy_children(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
    dirs: &mut Vec<(PathBuf, fs::Metadata)>,
) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    for e in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let e = e?;
        let s = e.path();
        let d = dst.join(e.file_name());
        let m = fs::symlink_metadata(&s)?;
        let ft = m.file_type();
        if !ft.is_dir() && m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                fs::hard_link(first, &d).with_context(|| format!("linking {}", d.display()))?;
                continue;
            }
            links.insert((m.dev(), m.ino()), d.clone());
        }
        if ft.is_dir() {
            fs::create_dir(&d)?;
            copy_meta(&d, &m, &lxattrs(&s))?;
            dirs.push((d.clone(), m));
            copy_children(&s, &d, links, dirs)?;
            continue;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
        } else if ft.is_file() {
            let mut r = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&s)?;
            let mut w = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&d)?;
            io::copy(&mut r, &mut w).with_context(|| format!("copying {}", s.display()))?;
        } else if ft.is_char_device() {
            mknod(
                &d,
                libc::S_IFCHR,
                m.mode(),
                dev_major(m.rdev()),
                dev_minor(m.rdev()),
            )?;
        } else if ft.is_block_device() {
            mknod(
                &d,
                libc::S_IFBLK,
                m.mode(),
                dev_major(m.rdev()),
                dev_minor(m.rdev()),
            )?;
        } else if ft.is_fifo() {
            mknod(&d, libc::S_IFIFO, m.mode(), 0, 0)?;
        } else {
            // Sockets are not part of an image.
            continue;
        }
        copy_meta(&d, &m, &lxattrs(&s))?;
        lutimes(&d, m.mtime(), m.mtime_nsec())?;
    }
    Ok(())
}

use std::os::unix::fs::PermissionsExt;

/// Owner, then mode (chown clears setuid bits), then xattrs.
fn copy_meta(d: &Path, m: &fs::Metadata, xattrs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    lchown(d, m.uid(), m.gid()).with_context(|| format!("chown {}", d.display()))?;
    if !m.file_type().is_symlink() {
        fs::set_permissions(d, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    for (k, v) in xattrs {
        let _ = lsetxattr(d, k, v);
    }
    Ok(())
}

/// Remove a tree even where directories have no write permission for their owner (we run as root, but keep it
/// robust for read-only directory modes on file systems that check them).
pub fn remove_tree(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bytes of the regular files under `p` (best effort, for reports), not following symlinks.
pub fn tree_size(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return if m.is_file() { m.len() } else { 0 };
    }
    fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_stays_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../../etc/shadow", r.join("etc/evil")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("etc/up")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/etc/evil").unwrap(),
            r.join("etc/shadow")
        );
        assert_eq!(resolve_in_root(r, "/etc/up/x").unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "../../a/./b").unwrap(), r.join("a/b"));
        assert!(read_in_root(r, "/etc/evil", 100).unwrap().is_none());
    }

    #[test]
    fn copy_keeps_links_modes_and_times() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("s");
        fs::create_dir_all(s.join("d")).unwrap();
        fs::write(s.join("d/f"), b"x").unwrap();
        fs::hard_link(s.join("d/f"), s.join("g")).unwrap();
        std::os::unix::fs::symlink("d/f", s.join("l")).unwrap();
        fs::set_permissions(s.join("d/f"), fs::Permissions::from_mode(0o4711)).unwrap();
        lutimes(&s.join("d"), 1000, 5).unwrap();
        copy_tree(&s, &t.path().join("c")).unwrap();
        let c = t.path().join("c");
        let f = fs::symlink_metadata(c.join("d/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4711);
        assert_eq!(f.ino(), fs::symlink_metadata(c.join("g")).unwrap().ino());
        assert_eq!(fs::read_link(c.join("l")).unwrap(), Path::new("d/f"));
        assert_eq!(fs::symlink_metadata(c.join("d")).unwrap().mtime(), 1000);
    }
}
