//! A commit's tree as layer entries, as `git checkout` leaves a work tree: directories 0755, files 0644 or 0755
//! (git keeps only the executable bit), symlinks with the blob as their target; submodules are refused. With
//! `keep_git_dir`, a `.git` directory that git itself can use: HEAD detached at the commit, the objects fetched,
//! `shallow` naming the commit, and an index of the work tree.

use std::collections::BTreeMap;

use lw_layer::Entry;

use crate::client::{Fetch, R};
use crate::object::{self, Kind, Oid};
use crate::{Checkout, Error};

/// Deeper trees than this are refused (a recursion bound; real repositories are far shallower).
const MAX_DEPTH: usize = 256;

/// A file of the work tree as the index records it.
struct Indexed {
    path: String,
    mode: u32,
    oid: Oid,
    size: u64,
}

#[derive(Default)]
struct Walk {
    entries: Vec<(Entry, Vec<u8>)>,
    index: Vec<Indexed>,
    bytes: u64,
}

pub(crate) fn checkout(f: &mut Fetch, commit: &Oid, keep_git_dir: bool) -> R<Checkout> {
    let (_, body) = f.object(commit)?;
    let tree = object::commit_tree(commit, &body)?;
    let mut w = Walk::default();
    walk(f, &tree, "", 0, &mut w)?;
    let mut entries = Vec::new();
    if keep_git_dir {
        entries.extend(git_dir(f, commit, &mut w.index));
    }
    entries.append(&mut w.entries);
    Ok(Checkout {
        commit: commit.hex(),
        entries,
    })
}

fn walk(f: &mut Fetch, tree: &Oid, dir: &str, depth: usize, w: &mut Walk) -> R<()> {
    if depth > MAX_DEPTH {
        return Err(Error::Corrupt {
            oid: tree.hex(),
            msg: format!("trees nest deeper than {MAX_DEPTH}"),
        }
        .into());
    }
    let (kind, body) = f.object(tree)?;
    if kind != Kind::Tree {
        return Err(Error::Corrupt {
            oid: tree.hex(),
            msg: format!("a {} where a tree was expected", kind.name()),
        }
        .into());
    }
    let mut list = object::tree_entries(tree, &body)?;
    // The order a directory listing sorted by name gives (the CLI's walk of git's work tree).
    list.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for e in list {
        let path = if dir.is_empty() {
            e.name.clone()
        } else {
            format!("{dir}/{}", e.name)
        };
        let max = f.limits().max_entries;
        if w.entries.len() >= max {
            return Err(Error::TooLarge {
                what: "the number of entries of the checkout".into(),
                limit: max as u64,
            }
            .into());
        }
        match e.mode {
            0o40000 => {
                w.entries.push((Entry::dir(&path, 0o755), vec![]));
                walk(f, &e.oid, &path, depth + 1, w)?;
            }
            0o160000 => return Err(Error::Submodule(path).into()),
            0o100644 | 0o100755 | 0o100664 | 0o120000 => {
                let (kind, data) = f.object(&e.oid)?;
                if kind != Kind::Blob {
                    return Err(Error::Corrupt {
                        oid: e.oid.hex(),
                        msg: format!("a {} where the blob {path:?} was expected", kind.name()),
                    }
                    .into());
                }
                w.bytes = w.bytes.saturating_add(data.len() as u64);
                let max = f.limits().max_checkout;
                if w.bytes > max {
                    return Err(Error::TooLarge {
                        what: "the checkout".into(),
                        limit: max,
                    }
                    .into());
                }
                let size = data.len() as u64;
                let (git_mode, entry, bytes) = if e.mode == 0o120000 {
                    let target = String::from_utf8_lossy(&data).into_owned();
                    (0o120000, Entry::symlink(&path, &target), vec![])
                } else if e.mode & 0o111 != 0 {
                    (0o100755, Entry::file(&path, 0o755, size), (*data).clone())
                } else {
                    (0o100644, Entry::file(&path, 0o644, size), (*data).clone())
                };
                w.index.push(Indexed {
                    path,
                    mode: git_mode,
                    oid: e.oid,
                    size,
                });
                w.entries.push((entry, bytes));
            }
            m => {
                return Err(Error::Corrupt {
                    oid: tree.hex(),
                    msg: format!("entry {path:?} has the unknown mode {m:o}"),
                }
                .into())
            }
        }
    }
    Ok(())
}

/// The `.git` of the checkout, parents before children.
fn git_dir(f: &Fetch, commit: &Oid, index: &mut [Indexed]) -> Vec<(Entry, Vec<u8>)> {
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    let head = format!("{commit}\n").into_bytes();
    files.insert("HEAD".into(), (0o644, head.clone()));
    // The fetch was of one commit's tree: git treats the commit as a boundary instead of looking for its parents.
    files.insert("shallow".into(), (0o644, head));
    // As BuildKit leaves it: the remote as `origin` (a password in it redacted), and the reference asked for by name
    // under its full name (`refs/heads/NAME`, `refs/tags/NAME`: what `git fetch origin NAME:NAME` writes).
    let config = format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n\
         [remote \"origin\"]\n\turl = {}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
        redact(f.remote())
    );
    files.insert("config".into(), (0o644, config.into_bytes()));
    if let Some((name, id)) = f
        .named()
        .filter(|(n, _)| n.starts_with("refs/") && !n.contains(".."))
    {
        files.insert(name.clone(), (0o644, format!("{id}\n").into_bytes()));
    }
    files.insert("index".into(), (0o644, index_file(index)));
    for (path, data) in f.object_files() {
        files.insert(format!("objects/{path}"), (0o444, data));
    }
    let mut dirs: BTreeMap<String, ()> =
        ["objects/info", "objects/pack", "refs/heads", "refs/tags"]
            .iter()
            .map(|d| (d.to_string(), ()))
            .collect();
    for p in files.keys() {
        let mut d = p.as_str();
        while let Some((parent, _)) = d.rsplit_once('/') {
            dirs.insert(parent.to_string(), ());
            d = parent;
        }
    }
    for d in ["objects", "refs"] {
        dirs.insert(d.to_string(), ());
    }
    let mut all: BTreeMap<String, (Entry, Vec<u8>)> = BTreeMap::new();
    all.insert(".git".into(), (Entry::dir(".git", 0o755), vec![]));
    for d in dirs.keys() {
        let p = format!(".git/{d}");
        all.insert(p.clone(), (Entry::dir(&p, 0o755), vec![]));
    }
    for (name, (mode, data)) in files {
        let p = format!(".git/{name}");
        all.insert(p.clone(), (Entry::file(&p, mode, data.len() as u64), data));
    }
    all.into_values().collect()
}

/// `scheme://user:password@host/...` with the password replaced, as BuildKit's `RedactCredentials` does.
fn redact(remote: &str) -> String {
    let Some((scheme, rest)) = remote.split_once("://") else {
        return remote.to_string();
    };
    let authority = rest.split('/').next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            let path = &rest[authority.len()..];
            format!("{scheme}://{name}:xxxxx@{host}{path}")
        }
        _ => remote.to_string(),
    }
}

/// Git's index (version 2) of the work tree: no stat data (git compares the content when stat data differs, so the
/// tree shows clean), each file's mode, size and blob id, sorted by path, with the SHA-1 trailer.
fn index_file(files: &mut [Indexed]) -> Vec<u8> {
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut out = b"DIRC".to_vec();
    out.extend(2u32.to_be_bytes());
    out.extend((files.len() as u32).to_be_bytes());
    for f in files.iter() {
        let start = out.len();
        out.extend([0u8; 24]); // ctime, mtime, dev, ino
        out.extend(f.mode.to_be_bytes());
        out.extend([0u8; 8]); // uid, gid
        out.extend((f.size.min(u64::from(u32::MAX)) as u32).to_be_bytes());
        out.extend(f.oid.0);
        out.extend((f.path.len().min(0xfff) as u16).to_be_bytes());
        out.extend(f.path.as_bytes());
        // NUL-padded to a multiple of 8, at least one NUL.
        let len = out.len() - start;
        out.extend(std::iter::repeat_n(0u8, 8 - len % 8));
    }
    let sum = sha1_smol::Sha1::from(&out).digest().bytes();
    out.extend(sum);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_remote_is_redacted() {
        assert_eq!(
            redact("https://me:sekrit@example.com/r.git"),
            "https://me:xxxxx@example.com/r.git"
        );
        assert_eq!(
            redact("https://me@example.com/r.git"),
            "https://me@example.com/r.git"
        );
        assert_eq!(redact("ssh://git@h:22/r.git"), "ssh://git@h:22/r.git");
    }
}
