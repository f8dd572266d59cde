//! `ADD <git URL>`: recognizing a git source as BuildKit's Dockerfile frontend does (`dfgitutil.ParseGitRef`), and
//! turning the host's checkout into the entries the ADD writes. Fetching is the host's (`UrlFetcher::fetch_git`).

use std::collections::BTreeMap;

use lw_layer::{Entry, EntryKind};

use super::copy::{Data, Item};
use crate::chmod::Chmod;
use crate::host::GitCheckout;

/// A git source: the remote, and what the URL's fragment or query selects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GitRef {
    /// The URL without fragment and query, as `git fetch` takes it.
    pub remote: String,
    /// Branch, tag or commit; empty for the remote's HEAD.
    pub reference: String,
    /// The directory of the repository to add (clean, relative); empty for its root.
    pub subdir: String,
    /// `?checksum=` / `?commit=`: the commit the reference must resolve to.
    pub checksum: Option<String>,
    /// `?keep-git-dir`.
    pub keep_git_dir: Option<bool>,
}

/// Whether `s` is a git source; `Some(Err)` for one BuildKit would take as git but whose query is wrong.
/// BuildKit's rule: `git@`/`ssh://`/`git://` remotes, and http(s) URLs whose path ends in `.git`.
pub(crate) fn parse(s: &str) -> Option<Result<GitRef, String>> {
    let (base, fragment) = match s.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (s, None),
    };
    let (remote, query) = match base.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (base, None),
    };
    let is_git = if let Some(rest) = remote
        .strip_prefix("http://")
        .or_else(|| remote.strip_prefix("https://"))
    {
        // The path, after the host, must end in `.git`.
        rest.split_once('/')
            .is_some_and(|(_, p)| p.trim_end_matches('/').ends_with(".git"))
    } else {
        remote.starts_with("git://")
            || remote.starts_with("ssh://")
            || (remote.starts_with("git@") && remote.contains(':'))
    };
    if !is_git {
        return None;
    }
    let mut g = GitRef {
        remote: remote.to_string(),
        ..Default::default()
    };
    if let Some(f) = fragment {
        let (r, sub) = f.split_once(':').unwrap_or((f, ""));
        g.reference = r.to_string();
        g.subdir = sub.to_string();
    }
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let set = |slot: &mut String, what: &str| -> Result<(), String> {
            if !slot.is_empty() && slot != v {
                return Err(format!("{what} conflicts: {slot:?} vs {v:?}"));
            }
            *slot = v.to_string();
            Ok(())
        };
        let r = match k {
            "ref" | "tag" | "branch" => set(&mut g.reference, "ref"),
            "subdir" => set(&mut g.subdir, "subdir"),
            "checksum" | "commit" => {
                g.checksum = Some(v.to_string());
                Ok(())
            }
            "keep-git-dir" => match v {
                "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => {
                    g.keep_git_dir = Some(true);
                    Ok(())
                }
                "0" | "f" | "F" | "false" | "FALSE" | "False" => {
                    g.keep_git_dir = Some(false);
                    Ok(())
                }
                _ => Err(format!("invalid keep-git-dir value: {v:?}")),
            },
            _ => Err(format!("unexpected query {k:?}")),
        };
        if let Err(e) = r {
            return Some(Err(format!("{s}: {e}")));
        }
    }
    g.subdir = g
        .subdir
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/");
    if g.subdir.split('/').any(|c| c == "..") {
        return Some(Err(format!("{s}: subdir outside the repository")));
    }
    // A reference that looks like an option is refused before any host sees it.
    if g.reference.starts_with('-') {
        return Some(Err(format!("{s}: invalid reference {:?}", g.reference)));
    }
    Some(Ok(g))
}

/// Whether a `--checksum` (or `?checksum=`) accepts `commit`: the full commit or a prefix of it, as BuildKit
/// compares them.
pub(crate) fn checksum_ok(want: &str, commit: &str) -> bool {
    !want.is_empty() && commit.starts_with(want)
}

/// The entries an ADD of `checkout` writes under `dest` (a directory): the repository (or its `subdir`) with
/// every entry owned by `owner` and, with `--chmod`, every file and directory (the destination too) given that
/// mode, as BuildKit applies both to a git source. Times are `mtime`.
pub(crate) fn items(
    checkout: GitCheckout,
    subdir: &str,
    dest: &str,
    owner: (u32, u32),
    chmod: Option<&Chmod>,
    mtime: i64,
) -> Result<BTreeMap<String, Item>, String> {
    let mode = |m: u32, dir: bool| chmod.map_or(m, |c| c.apply(m, dir));
    let mut out = BTreeMap::new();
    let mut found = subdir.is_empty();
    for (e, data) in checkout.entries {
        let rel = if subdir.is_empty() {
            e.path.clone()
        } else if e.path == subdir {
            found = true;
            continue;
        } else if let Some(r) = e.path.strip_prefix(&format!("{subdir}/")) {
            r.to_string()
        } else {
            continue;
        };
        let path = join(dest, &rel);
        let is_dir = e.kind == EntryKind::Dir;
        let entry = Entry {
            path: path.clone(),
            mode: mode(e.mode, is_dir),
            uid: owner.0,
            gid: owner.1,
            mtime,
            xattrs: BTreeMap::new(),
            ..e
        };
        let data = if entry.kind == EntryKind::File {
            Data::Bytes(data)
        } else {
            Data::None
        };
        out.insert(path, Item { entry, data });
    }
    if !found {
        return Err(format!("subdir {subdir:?} is not in the repository"));
    }
    if !dest.is_empty() {
        let entry = Entry {
            uid: owner.0,
            gid: owner.1,
            mtime,
            ..Entry::dir(dest, mode(0o755, true))
        };
        out.insert(
            dest.to_string(),
            Item {
                entry,
                data: Data::None,
            },
        );
    }
    Ok(out)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_as_buildkit_recognizes_them() {
        let g = parse("https://example.com/r.git#v1:sub/dir")
            .unwrap()
            .unwrap();
        assert_eq!(g.remote, "https://example.com/r.git");
        assert_eq!((g.reference.as_str(), g.subdir.as_str()), ("v1", "sub/dir"));
        let g = parse("http://127.0.0.1:1/r.git?ref=main&subdir=x&keep-git-dir&checksum=abc")
            .unwrap()
            .unwrap();
        assert_eq!(
            (g.reference.as_str(), g.subdir.as_str(), g.keep_git_dir),
            ("main", "x", Some(true))
        );
        assert_eq!(g.checksum.as_deref(), Some("abc"));
        assert!(parse("git@github.com:o/r.git").is_some());
        assert!(parse("git://host/r").is_some());
        // An http(s) URL is git only when its path ends in .git.
        assert!(parse("https://example.com/file.tar.gz").is_none());
        assert!(parse("https://example.com/r.git/").is_some());
        assert!(parse("https://example.git/file").is_none());
        assert!(parse("https://e.com/r.git?nope=1").unwrap().is_err());
        assert!(parse("https://e.com/r.git#main:../x").unwrap().is_err());
        assert!(parse("https://e.com/r.git#--upload-pack=x")
            .unwrap()
            .is_err());
    }

    #[test]
    fn checkout_entries_land_under_the_destination() {
        let co = GitCheckout {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            entries: vec![
                (Entry::file("a.txt", 0o644, 1), b"a".to_vec()),
                (Entry::dir("sub", 0o755), vec![]),
                (Entry::file("sub/s.txt", 0o755, 1), b"s".to_vec()),
            ],
        };
        let all = items(co.clone(), "", "src", (0, 0), None, 0).unwrap();
        let keys: Vec<&str> = all.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["src", "src/a.txt", "src/sub", "src/sub/s.txt"]);
        let sub = items(co.clone(), "sub", "s", (5, 6), None, 0).unwrap();
        let keys: Vec<&str> = sub.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["s", "s/s.txt"]);
        assert_eq!((sub["s/s.txt"].entry.uid, sub["s/s.txt"].entry.gid), (5, 6));
        let c = crate::chmod::parse_chmod("0640").unwrap();
        let m = items(co.clone(), "", "o", (0, 0), Some(&c), 0).unwrap();
        assert_eq!(m["o"].entry.mode, 0o640);
        assert_eq!(m["o/sub"].entry.mode, 0o640);
        assert!(items(co, "missing", "x", (0, 0), None, 0).is_err());
        assert!(checksum_ok(
            "0123456",
            "0123456789abcdef0123456789abcdef01234567"
        ));
        assert!(!checksum_ok("", "0123456789abcdef0123456789abcdef01234567"));
        assert!(!checksum_ok(
            "1123456",
            "0123456789abcdef0123456789abcdef01234567"
        ));
    }
}
