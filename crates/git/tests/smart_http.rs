//! The client against `git http-backend` (git's own smart HTTP server) on loopback: protocol v2, v0 (the server
//! withholding v2), the fall back to a dumb server, shallow fetches, a kept `.git` that git reads, and errors; every
//! checkout must equal what `git checkout` leaves on disk.

use std::path::Path;

use lw_git::{Checkout, Error, Fetch, Limits, Next};
use lw_test_kit::githttp::{GitHttp, GitHttpOptions};
use lw_test_kit::http;

use crate::dumb_http::{git, git_listing, have_git, listing, make_repo, repack, write_out};

/// Everything one fetch did: the checkout (or error), the server's progress lines.
struct Run {
    result: Result<Checkout, Error>,
    progress: Vec<String>,
}

/// Drive `f` against the server, as a host does: each request made, its answer (a 404 as `None`) handed back.
fn drive(server: &GitHttp, mut f: Fetch) -> Run {
    let prefix = format!("http://{}", server.addr);
    let mut progress = Vec::new();
    let result = loop {
        let (method, url, headers, body) = match f.step() {
            Err(e) => break Err(e),
            Ok(Next::Done(c)) => break Ok(c),
            Ok(Next::Get { url, headers }) => ("GET", url, headers, Vec::new()),
            Ok(Next::Post { url, headers, body }) => ("POST", url, headers, body),
        };
        let path = url.strip_prefix(&prefix).expect("a URL of the server");
        let mut h: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        h.push(("Host", server.addr.to_string()));
        let r = http::raw(server.addr, method, path, &h, &body);
        let answer = match r.status {
            200 => Some(r.body.clone()),
            404 => None,
            s => panic!("{method} {url}: HTTP {s}: {}", r.text()),
        };
        if let Err(e) = f.answer_with(&url, r.header("content-type"), answer) {
            break Err(e);
        }
        progress.extend(f.progress());
    };
    progress.extend(f.progress());
    Run { result, progress }
}

fn fetch(server: &GitHttp, reference: &str, keep: bool) -> Run {
    let f = Fetch::new(&server.url("repo.git"), reference, keep, Limits::default());
    drive(server, f)
}

fn posts(server: &GitHttp) -> usize {
    server.log().iter().filter(|(m, _, _)| m == "POST").count()
}

/// Every kind of reference checks out as git does; `posts_per_name` is how many POSTs a named reference takes
/// (v2: ls-refs and fetch; v0: fetch alone, the references coming with the advertisement).
fn assert_equal_to_git(server: &GitHttp, bare: &Path, posts_per_name: usize) {
    for r in ["", "main", "v1", "light", "heads/main", "HEAD~1"] {
        let reference = if r == "HEAD~1" {
            git(bare, &["rev-parse", "HEAD~1"])
        } else {
            r.to_string()
        };
        let before = posts(server);
        let run = fetch(server, &reference, false);
        let got = run.result.unwrap_or_else(|e| panic!("{r:?}: {e}"));
        let name = if r.is_empty() { "HEAD" } else { r };
        let commit = git(bare, &["rev-parse", &format!("{name}^{{commit}}")]);
        assert_eq!(got.commit, commit, "{r:?}");
        assert_eq!(listing(&got), git_listing(bare, name), "{r:?}");
        let want = if r == "HEAD~1" { 1 } else { posts_per_name };
        assert_eq!(posts(server) - before, want, "{r:?}: {:?}", server.log());
        // The server's progress (side-band 2) reached the host.
        assert!(
            run.progress.iter().any(|l| l.contains("objects")),
            "{r:?}: {:?}",
            run.progress
        );
    }
}

fn setup(opts: GitHttpOptions) -> Option<(tempfile::TempDir, std::path::PathBuf, GitHttp)> {
    if !have_git() {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    repack(&bare, true);
    let server = GitHttp::start(tmp.path(), opts);
    Some((tmp, bare, server))
}

#[test]
fn protocol_v2_checks_out_branches_tags_and_commits_as_git_does() {
    let Some((_tmp, bare, server)) = setup(GitHttpOptions::default()) else {
        return;
    };
    assert_equal_to_git(&server, &bare, 2);
    // The first request asked for v2 (and the server, given GIT_PROTOCOL, answered it: two POSTs a name).
    let first = &server.log()[0];
    assert_eq!(
        (first.0.as_str(), first.1.as_str()),
        ("GET", "/repo.git/info/refs?service=git-upload-pack")
    );
}

#[test]
fn protocol_v0_checks_out_as_git_does() {
    let Some((_tmp, bare, server)) = setup(GitHttpOptions {
        v0_only: true,
        ..Default::default()
    }) else {
        return;
    };
    // A commit id outside the advertised tips needs the server's consent (v0 checks wants against its tips).
    git(
        &bare,
        &["config", "uploadpack.allowReachableSHA1InWant", "true"],
    );
    assert_equal_to_git(&server, &bare, 1);
}

#[test]
fn a_dumb_server_is_read_through_the_same_first_request() {
    let Some((_tmp, bare, server)) = setup(GitHttpOptions {
        dumb: true,
        ..Default::default()
    }) else {
        return;
    };
    let got = fetch(&server, "v1", false).result.unwrap();
    assert_eq!(listing(&got), git_listing(&bare, "v1"));
    assert_eq!(posts(&server), 0);
    assert!(server.log().iter().any(|(_, p, _)| p.ends_with(".pack")));
}

#[test]
fn a_shallow_fetch_keeps_a_git_dir_that_git_reads_as_clean() {
    for v0_only in [false, true] {
        let Some((tmp, bare, server)) = setup(GitHttpOptions {
            v0_only,
            ..Default::default()
        }) else {
            return;
        };
        for r in ["v1", "main"] {
            let got = fetch(&server, r, true).result.unwrap();
            let wt = tmp.path().join(format!("out-{r}"));
            write_out(&got, &wt);
            assert_eq!(git(&wt, &["rev-parse", "HEAD"]), got.commit);
            assert_eq!(git(&wt, &["status", "--porcelain"]), "", "{r}");
            git(&wt, &["fsck", "--no-progress", "--strict"]);
            // As BuildKit's: the reference under its full name, the remote as origin.
            let full = if r == "v1" {
                "refs/tags/v1"
            } else {
                "refs/heads/main"
            };
            assert_eq!(
                git(&wt, &["rev-parse", full]),
                git(&bare, &["rev-parse", full])
            );
            assert_eq!(
                git(&wt, &["config", "remote.origin.url"]),
                server.url("repo.git")
            );
            if r == "v1" {
                continue; // the first commit: no parent
            }
            // Shallow (deepen 1): the pack holds the one commit, not its parent.
            let parent = git(&bare, &["rev-parse", &format!("{r}~1")]);
            let o = std::process::Command::new("git")
                .arg("-C")
                .arg(&wt)
                .args(["cat-file", "-e", &parent])
                .output()
                .unwrap();
            assert!(
                !o.status.success(),
                "{r}: the parent {parent} was fetched too"
            );
        }
    }
}

#[test]
fn missing_repositories_references_and_commits_are_clear_errors() {
    let Some((_tmp, bare, server)) = setup(GitHttpOptions::default()) else {
        return;
    };
    let f = Fetch::new(&server.url("nope.git"), "main", false, Limits::default());
    let e = drive(&server, f).result.unwrap_err();
    assert!(matches!(e, Error::NotDumb), "{e}");
    let e = fetch(&server, "no-such-branch", false).result.unwrap_err();
    assert!(
        matches!(&e, Error::NoRef(r) if r == "no-such-branch"),
        "{e}"
    );
    // An id the server does not have: the server's own message comes through.
    let e = fetch(&server, &"0123456789".repeat(4), false)
        .result
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the server says") && e.contains("0123456789"),
        "{e}"
    );
    // A fetch over the limit of bytes fetched.
    let small = Limits {
        max_fetch: 2000,
        ..Limits::default()
    };
    let f = Fetch::new(&server.url("repo.git"), "main", false, small);
    let e = drive(&server, f).result.unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    // A corrupt advertisement, named as such.
    let mut f = Fetch::new(&server.url("repo.git"), "main", false, Limits::default());
    let Ok(Next::Get { url, .. }) = f.step() else {
        panic!("asks for info/refs first")
    };
    f.answer_with(
        &url,
        Some("application/x-git-upload-pack-advertisement"),
        Some(b"001e# service=git-upload-pack\n0000zz".to_vec()),
    )
    .unwrap();
    let e = f.step().unwrap_err().to_string();
    assert!(e.contains("info/refs?service=git-upload-pack"), "{e}");
    drop(bare);
}

/// Drive `f` against `git upload-pack` run on a pipe, as the CLI does through ssh.
fn drive_pipe(bare: &Path, mut f: Fetch) -> Result<Checkout, Error> {
    use std::io::{Read, Write};
    let mut child = std::process::Command::new("git")
        .args(["upload-pack", bare.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take();
    let result = loop {
        match f.step() {
            Err(e) => break Err(e),
            Ok(Next::Done(c)) => break Ok(c),
            Ok(Next::Get { url, .. }) => {
                // The advertisement: pkt-lines up to the flush.
                let mut adv = Vec::new();
                loop {
                    let mut head = [0u8; 4];
                    out.read_exact(&mut head).unwrap();
                    adv.extend(head);
                    let n = usize::from_str_radix(std::str::from_utf8(&head).unwrap(), 16).unwrap();
                    if n == 0 {
                        break;
                    }
                    let mut body = vec![0u8; n - 4];
                    out.read_exact(&mut body).unwrap();
                    adv.extend(body);
                }
                f.answer_with(&url, None, Some(adv)).unwrap();
            }
            Ok(Next::Post { url, body, .. }) => {
                let mut w = stdin.take().expect("one request");
                w.write_all(&body).unwrap();
                drop(w);
                let mut data = Vec::new();
                out.read_to_end(&mut data).unwrap();
                f.answer_with(&url, None, Some(data)).unwrap();
            }
        }
    };
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    result
}

#[test]
fn a_pipe_to_git_upload_pack_checks_out_as_git_does() {
    if !have_git() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bare = make_repo(tmp.path());
    repack(&bare, true);
    let remote = "ssh://root@127.0.0.1:9/repo.git";
    for r in ["", "main", "v1", "light"] {
        let f = Fetch::over_pipe(remote, r, r == "v1", Limits::default());
        let got = drive_pipe(&bare, f).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        let name = if r.is_empty() { "HEAD" } else { r };
        assert_eq!(
            got.commit,
            git(&bare, &["rev-parse", &format!("{name}^{{commit}}")])
        );
        assert_eq!(listing(&got), git_listing(&bare, name), "{r:?}");
        if r == "v1" {
            let wt = tmp.path().join("kept");
            write_out(&got, &wt);
            assert_eq!(git(&wt, &["status", "--porcelain"]), "");
            git(&wt, &["fsck", "--no-progress", "--strict"]);
        }
    }
    let e = drive_pipe(
        &bare,
        Fetch::over_pipe(remote, "nope", false, Limits::default()),
    );
    assert!(matches!(&e, Err(Error::NoRef(r)) if r == "nope"), "{e:?}");
}
