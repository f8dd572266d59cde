//! The client against repositories `git` makes in temp dirs (and the BuildKit corpus's), served from their files as
//! a dumb-HTTP server serves them: every checkout must equal what `git checkout` leaves on disk.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use lw_git::{Checkout, Error, Fetch, Limits, Next};
use lw_layer::EntryKind;
pub(crate) use lw_test_kit::githttp::git;

const REMOTE: &str = "http://127.0.0.1:9/repo.git";

pub(crate) fn have_git() -> bool {
    let ok = Command::new("git").arg("--version").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: no git (Debian package git)");
    }
    ok
}

/// Answer every file the client asks for from the bare repository `repo` (a 404 for a missing one).
fn fetch_from(repo: &Path, f: &mut Fetch) -> Result<Checkout, Error> {
    loop {
        match f.step()? {
            Next::Done(c) => return Ok(c),
            Next::Get { url, .. } => {
                let path = url
                    .strip_prefix(&format!("{REMOTE}/"))
                    .expect("a file of the remote");
                // A static server ignores the query (`info/refs?service=git-upload-pack` is `info/refs`).
                let path = path.split('?').next().unwrap();
                let body = fs::read(repo.join(path)).ok();
                f.answer(&url, body)?;
            }
            Next::Post { url, .. } => panic!("a dumb server is never sent a POST ({url})"),
        }
    }
}

fn checkout(repo: &Path, reference: &str, keep: bool) -> Result<Checkout, Error> {
    fetch_from(
        repo,
        &mut Fetch::new(REMOTE, reference, keep, Limits::default()),
    )
}

/// (path, kind, mode, bytes) of every entry, for comparing.
pub(crate) type Listing = Vec<(String, String, u32, Vec<u8>)>;

pub(crate) fn listing(c: &Checkout) -> Listing {
    c.entries
        .iter()
        .filter(|(e, _)| !(e.path == ".git" || e.path.starts_with(".git/")))
        .map(|(e, d)| {
            let kind = match &e.kind {
                EntryKind::Symlink(t) => format!("symlink {t}"),
                k => format!("{k:?}"),
            };
            (e.path.clone(), kind, e.mode, d.clone())
        })
        .collect()
}

/// What `git` checks out of `repo` at `reference`, listed as the CLI's walk lists a work tree.
pub(crate) fn git_listing(repo: &Path, reference: &str) -> Listing {
    let tmp = tempfile::tempdir().unwrap();
    let wt = tmp.path().join("wt");
    git(tmp.path(), &["clone", "-q", repo.to_str().unwrap(), "wt"]);
    git(
        &wt,
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "-q",
            "--detach",
            reference,
        ],
    );
    let mut out = Vec::new();
    walk(&wt, "", &mut out);
    out
}

fn walk(dir: &Path, rel: &str, out: &mut Listing) {
    let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        if rel.is_empty() && name == ".git" {
            continue;
        }
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let m = fs::symlink_metadata(e.path()).unwrap();
        if m.file_type().is_symlink() {
            let t = fs::read_link(e.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((path, format!("symlink {t}"), 0o777, vec![]));
        } else if m.is_dir() {
            out.push((path.clone(), "Dir".into(), 0o755, vec![]));
            walk(&e.path(), &path, out);
        } else {
            let mode = if m.mode() & 0o111 != 0 { 0o755 } else { 0o644 };
            out.push((path, "File".into(), mode, fs::read(e.path()).unwrap()));
        }
    }
}

/// A bare repository with two commits (a large file edited between them, so packs hold deltas), an annotated and
/// a lightweight tag, an executable, a symlink and nested directories; served as `git update-server-info` leaves it.
pub(crate) fn make_repo(root: &Path) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    let big: String = (0..4000)
        .map(|i| format!("line {i} of a file long enough to delta\n"))
        .collect();
    fs::write(src.join("big.txt"), &big).unwrap();
    fs::write(src.join("a.txt"), "first\n").unwrap();
    fs::write(src.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(src.join("sub/deeper/d.txt"), "deep\n").unwrap();
    std::os::unix::fs::symlink("sub/deeper/d.txt", src.join("link")).unwrap();
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "one"]);
    git(&src, &["tag", "light"]);
    git(&src, &["tag", "-a", "-m", "annotated", "v1"]);
    fs::write(src.join("big.txt"), big.replace("line 2000 ", "LINE 2000 ")).unwrap();
    fs::write(src.join("a.txt"), "second\n").unwrap();
    fs::remove_file(src.join("link")).unwrap();
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "two"]);
    let bare = root.join("repo.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["update-server-info"]);
    bare
}

pub(crate) fn repack(bare: &Path, ofs: bool) {
    let cfg = format!("repack.useDeltaBaseOffset={ofs}");
    git(
        bare,
        &[
            "-c",
            &cfg,
            "repack",
            "-a",
            "-d",
            "-f",
            "-q",
            "--depth=50",
            "--window=50",
        ],
    );
    git(bare, &["update-server-info"]);
    // The pack really holds deltas (what the client must apply).
    let idx = fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .unwrap();
    let v = git(bare, &["verify-pack", "-v", idx.to_str().unwrap()]);
    assert!(v.contains("chain length = 1"), "{v}");
}

fn assert_equal_to_git(bare: &Path) {
    for r in ["", "main", "v1", "light", "HEAD~1"] {
        let want = git_listing(bare, if r.is_empty() { "HEAD" } else { r });
        let reference = if r == "HEAD~1" {
            git(bare, &["rev-parse", "HEAD~1"])
        } else {
            r.to_string()
        };
        let got = checkout(bare, &reference, false).unwrap();
        let commit = git(
            bare,
            &[
                "rev-parse",
                &format!("{}^{{commit}}", if r.is_empty() { "HEAD" } else { r }),
            ],
        );
        assert_eq!(got.commit, commit, "{r:?}");
        assert_eq!(listing(&got), want, "{r:?}");
    }
}

#[test]
fn packs_with_offset_deltas_check_out_as_git_does() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    repack(&bare, true);
    assert_equal_to_git(&bare);
}

#[test]
fn packs_with_ref_deltas_check_out_as_git_does() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    repack(&bare, false);
    assert_equal_to_git(&bare);
}

#[test]
fn loose_objects_check_out_as_git_does() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    // Unpack every pack into loose objects.
    let packdir = bare.join("objects/pack");
    for e in fs::read_dir(&packdir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            let moved = tmp.path().join("p.pack");
            fs::rename(&p, &moved).unwrap();
            fs::remove_file(p.with_extension("idx")).unwrap();
            let o = Command::new("git")
                .arg("-C")
                .arg(&bare)
                .args(["unpack-objects", "-q"])
                .stdin(fs::File::open(&moved).unwrap())
                .output()
                .unwrap();
            assert!(o.status.success());
        }
    }
    git(&bare, &["update-server-info"]);
    assert!(fs::read_dir(&packdir).unwrap().next().is_none());
    assert_equal_to_git(&bare);
}

#[test]
fn the_buildkit_corpus_repository_checks_out_as_git_does() {
    if !have_git() {
        return;
    }
    let bare = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../native-cli/tests/buildkit/cases/add_git/http/repo.git");
    // git itself wants a refs/ directory (the corpus keeps only packed-refs): a copy for `git clone`.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("repo.git");
    let o = Command::new("cp")
        .arg("-r")
        .arg(&bare)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success());
    fs::create_dir_all(copy.join("refs/heads")).unwrap();
    for r in ["main", "v1"] {
        let got = checkout(&bare, r, false).unwrap();
        assert_eq!(listing(&got), git_listing(&copy, r), "{r}");
    }
    // The commit the corpus's `--checksum` names.
    assert_eq!(
        checkout(&bare, "main", false).unwrap().commit,
        "e4211549b1b160f28e0f1a26d9d7b89e0fd0d346"
    );
}

/// The corpus's `add_git_auth_forms` repository behind a server that wants BuildKit's header (its `https-auth`):
/// every request the client names carries the header, once, and the checkout is git's.
#[test]
fn the_authorization_header_reaches_every_request_of_the_remote() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../native-cli/tests/buildkit/cases/add_git_auth_forms");
    let bare = case.join("https/tgit/repo.git");
    let rule = fs::read_to_string(case.join("https-auth")).unwrap();
    let want = rule
        .lines()
        .find_map(|l| l.strip_prefix("tgit/ "))
        .expect("a rule for tgit/");
    let mut f = Fetch::new(REMOTE, "v1", false, Limits::default())
        .with_authorization(Some(want.to_string()));
    let mut asked = 0;
    let got = loop {
        match f.step().unwrap() {
            Next::Done(c) => break c,
            Next::Get { url, headers } => {
                asked += 1;
                // As the server answers: 401 without the header.
                let auth: Vec<_> = headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.as_str())
                    .collect();
                assert_eq!(auth, [want], "{url}");
                let path = url.strip_prefix(&format!("{REMOTE}/")).unwrap();
                let path = path.split('?').next().unwrap();
                f.answer(&url, fs::read(bare.join(path)).ok()).unwrap();
            }
            Next::Post { url, .. } => panic!("a dumb server is never sent a POST ({url})"),
        }
    };
    assert!(asked >= 3, "{asked} requests");
    // The commit the repository's tag v1 names.
    let refs = fs::read_to_string(bare.join("packed-refs")).unwrap();
    let v1 = refs
        .lines()
        .find_map(|l| l.strip_suffix(" refs/tags/v1"))
        .unwrap();
    assert_eq!(got.commit, v1);
    assert!(!got.entries.is_empty());
}

#[test]
fn a_kept_git_dir_is_a_repository_git_reads_as_clean() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    repack(&bare, true);
    let got = checkout(&bare, "v1", true).unwrap();
    let wt = tmp.path().join("out");
    write_out(&got, &wt);
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), got.commit);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(git(&wt, &["log", "--format=%s"]), "one");
    git(&wt, &["fsck", "--no-progress"]);
}

#[test]
fn corrupt_objects_and_packs_are_refused_naming_them() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    // A loose object whose content is another object's: refused, naming the object asked for.
    let blob = git(&bare, &["rev-parse", "main:a.txt"]);
    let other = git(&bare, &["rev-parse", "main:run.sh"]);
    let path = |h: &str| bare.join(format!("objects/{}/{}", &h[..2], &h[2..]));
    let mut perm = fs::metadata(path(&blob)).unwrap().permissions();
    perm.set_mode(0o644);
    fs::set_permissions(path(&blob), perm).unwrap();
    fs::copy(path(&other), path(&blob)).unwrap();
    let e = checkout(&bare, "main", false).unwrap_err().to_string();
    assert!(e.contains(&blob), "{e}");
    // A pack with one byte changed: its trailer no longer matches, and the message names the pack.
    let bare = make_repo(&tmp.path().join("packed"));
    repack(&bare, true);
    let pack = fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&pack, bytes).unwrap();
    let e = checkout(&bare, "main", false).unwrap_err().to_string();
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(e.contains(&name), "{e}");
}

#[test]
fn limits_missing_refs_submodules_and_smart_servers_are_refused() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    repack(&bare, true);
    assert!(matches!(checkout(&bare, "nope", false), Err(Error::NoRef(r)) if r == "nope"));
    let small = Limits {
        max_object: 1000,
        ..Limits::default()
    };
    let e = fetch_from(&bare, &mut Fetch::new(REMOTE, "main", false, small));
    assert!(
        matches!(e, Err(Error::TooLarge { .. }) | Err(Error::Bad { .. })),
        "{e:?}"
    );
    let few = Limits {
        max_fetch: 100,
        ..Limits::default()
    };
    let e = fetch_from(&bare, &mut Fetch::new(REMOTE, "main", false, few));
    assert!(matches!(e, Err(Error::TooLarge { .. })), "{e:?}");
    // No info/refs: not a dumb-HTTP repository.
    let mut f = Fetch::new(REMOTE, "main", false, Limits::default());
    let Next::Get { url, .. } = f.step().unwrap() else {
        panic!("asks for info/refs")
    };
    f.answer(&url, None).unwrap();
    assert!(matches!(f.step(), Err(Error::NotDumb)));
    // A smart server's advertisement served as a static file (not its content type): refused, as git does.
    let mut f = Fetch::new(REMOTE, "main", false, Limits::default());
    let Next::Get { url, .. } = f.step().unwrap() else {
        panic!("asks for info/refs")
    };
    f.answer_with(
        &url,
        Some("text/plain"),
        Some(b"001e# service=git-upload-pack\n0000".to_vec()),
    )
    .unwrap();
    assert!(matches!(f.step(), Err(Error::Smart)));
    // SSH and git:// remotes are not this client's.
    let mut f = Fetch::new(
        "ssh://root@127.0.0.1:9/repo.git",
        "main",
        false,
        Limits::default(),
    );
    assert!(matches!(f.step(), Err(Error::Scheme(_))));
    // A submodule (a gitlink in the tree).
    let src = tmp.path().join("src");
    let head = git(&src, &["rev-parse", "HEAD"]);
    git(
        &src,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},module"),
        ],
    );
    git(&src, &["commit", "-q", "-m", "submodule"]);
    git(&src, &["push", "-q", bare.to_str().unwrap(), "main"]);
    git(&bare, &["update-server-info"]);
    let e = checkout(&bare, "main", false).unwrap_err();
    assert!(matches!(&e, Error::Submodule(p) if p == "module"), "{e}");
}

/// Write a checkout's entries under `dir`.
pub(crate) fn write_out(got: &Checkout, dir: &Path) {
    fs::create_dir(dir).unwrap();
    for (e, data) in &got.entries {
        let p = dir.join(&e.path);
        match &e.kind {
            EntryKind::Dir => fs::create_dir_all(&p).unwrap(),
            EntryKind::Symlink(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
            _ => {
                fs::write(&p, data).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(e.mode)).unwrap();
            }
        }
    }
}
