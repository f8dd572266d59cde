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
        unpack_image(&out, &fs_dir);
        assert_eq!(fs::read_to_string(fs_dir.join("k/a.txt")).unwrap(), "one\n");
        assert_eq!(
            fs::read_to_string(fs_dir.join("sub/b.txt")).unwrap(),
            "bee\n"
        );
        assert!(!fs_dir.join("sub/a.txt").exists());
        let k = fs_dir.join("k");
        let v1 = git(&tmp.path().join("src"), &["rev-parse", "v1^{commit}"]);
        assert_eq!(git(&k, &["rev-parse", "HEAD"]), v1);
        assert_eq!(git(&k, &["status", "--porcelain"]), "");
        git(&k, &["fsck", "--no-progress"]);

        // Without the secret: the server's 401, naming the URL.
        let r = lw(&root, &["build", "--no-cache", c]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success());
        assert!(err.contains("401") && err.contains(&url), "{err}");
    }
}
