//! `ADD <git URL>` over git's smart HTTP protocol: the CLI fetches through lw-git (the tab's client) from `git
//! http-backend` on loopback, with BuildKit's `GIT_AUTH_HEADER` secret; the result is what git checks out, and a
//! kept `.git` is one git reads as clean.

use std::fs;
use std::path::Path;

use lw_test_kit::githttp::git;
use lw_test_kit::githttp::{GitHttp, GitHttpOptions};
use lw_test_kit::process::untar;

use crate::common::lw;

/// A bare repository: commit "one" tagged v1 (annotated), then commit "two" on main.
fn make_repo(root: &Path) {
    let src = root.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    fs::write(src.join("a.txt"), "one\n").unwrap();
    fs::write(src.join("sub/b.txt"), "bee\n").unwrap();
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "one"]);
    git(&src, &["tag", "-a", "-m", "annotated", "v1"]);
    fs::write(src.join("a.txt"), "two\n").unwrap();
    git(&src, &["commit", "-q", "-am", "two"]);
    let bare = root.join("srv/repo.git");
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
}

/// The image's layers (an OCI tarball) unpacked in order into `dir`.
fn unpack_image(tar: &Path, dir: &Path) {
    let layout = dir.with_extension("layout");
    untar(tar, &layout);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    fs::create_dir_all(dir).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        untar(&blob(l["digest"].as_str().unwrap()), dir);
    }
}

/// The image `out` built from `ADD --keep-git-dir=true <repo>#v1 /k/` and `ADD <repo>#main:sub /sub/`, unpacked into
/// `fs_dir`: v1's files with its commit checked out in `/k`, and only `sub` of main in `/sub`.
fn check_checkouts(root: &Path, out: &Path, fs_dir: &Path) {
    unpack_image(out, fs_dir);
    assert_eq!(fs::read_to_string(fs_dir.join("k/a.txt")).unwrap(), "one\n");
    assert_eq!(
        fs::read_to_string(fs_dir.join("sub/b.txt")).unwrap(),
        "bee\n"
    );
    assert!(!fs_dir.join("sub/a.txt").exists());
    let v1 = git(&root.join("src"), &["rev-parse", "v1^{commit}"]);
    assert_eq!(git(&fs_dir.join("k"), &["rev-parse", "HEAD"]), v1);
}

#[test]
fn smart_http_sources_are_fetched_by_lw_git_with_the_auth_secret() {
    lw_test_kit::require!("git");
    let tmp = tempfile::tempdir().unwrap();
    make_repo(tmp.path());
    for v0_only in [false, true] {
        let server = GitHttp::start(
            &tmp.path().join("srv"),
            GitHttpOptions {
                v0_only,
                auth: Some("Bearer sekrit".into()),
                ..Default::default()
            },
        );
        let url = server.url("repo.git");
        let ctx = tmp.path().join(format!("ctx-{v0_only}"));
        fs::create_dir_all(&ctx).unwrap();
        fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM scratch\nADD --keep-git-dir=true {url}#v1 /k/\nADD {url}#main:sub /sub/\n"
            ),
        )
        .unwrap();
        let secret = tmp.path().join("auth");
        fs::write(&secret, "Bearer sekrit").unwrap();
        let root = tmp.path().join(format!("root-{v0_only}"));
        let out = tmp.path().join(format!("out-{v0_only}.tar"));
        let (c, s, o) = (
            ctx.to_str().unwrap(),
            secret.to_str().unwrap(),
            out.to_str().unwrap(),
        );
        let dest = format!("type=oci,dest={o}");
        let secret_arg = format!("id=GIT_AUTH_HEADER,src={s}");
        let args = ["build", "--secret", &secret_arg, "--output", &dest, c];
        let r = lw(&root, &args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        // Smart HTTP, not git's dumb protocol: POSTs to git-upload-pack, each request authorized.
        let log = server.log();
        assert!(
            log.iter()
                .any(|(m, p, _)| m == "POST" && p.ends_with("/git-upload-pack")),
            "{log:?}"
        );
        assert!(log.iter().all(|(_, _, s)| *s == 200), "{log:?}");
        let fs_dir = tmp.path().join(format!("fs-{v0_only}"));
        check_checkouts(tmp.path(), &out, &fs_dir);
        let k = fs_dir.join("k");
        assert_eq!(git(&k, &["status", "--porcelain"]), "");
        git(&k, &["fsck", "--no-progress"]);

        // Without the secret: the server's 401, naming the URL.
        let r = lw(&root, &["build", "--no-cache", c]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success());
        assert!(err.contains("401") && err.contains(&url), "{err}");
    }
}

/// `git daemon` serving `base` on a free loopback port; killed on drop.
struct GitDaemon(std::process::Child, u16);

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // git-daemon itself: `git daemon` would run it as a child that outlives a kill of `git`.
        let exec_path = git(base, &["--exec-path"]);
        let child = std::process::Command::new(Path::new(&exec_path).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
            ])
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed().as_secs() < 20, "git daemon did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        GitDaemon(child, port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `git://` remotes, the one kind lw-git does not speak, go through the `git` command: the same checkout.
#[test]
fn git_protocol_sources_are_fetched_by_the_git_command() {
    lw_test_kit::require!("git");
    let tmp = tempfile::tempdir().unwrap();
    make_repo(tmp.path());
    let daemon = GitDaemon::start(&tmp.path().join("srv"));
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.1);
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD --keep-git-dir=true {url}#v1 /k/\nADD {url}#main:sub /sub/\n"),
    )
    .unwrap();
    let root = tmp.path().join("root");
    let out = tmp.path().join("out.tar");
    let dest = format!("type=oci,dest={}", out.display());
    let r = lw(&root, &["build", "--output", &dest, ctx.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    check_checkouts(tmp.path(), &out, &tmp.path().join("fs"));

    // A reference that does not exist: git's refusal, naming the remote.
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD {url}#nope /n/\n"),
    )
    .unwrap();
    let r = lw(&root, &["build", "--no-cache", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(err.contains(&url) && err.contains("nope"), "{err}");
}
