//! `layerwright build` from the command line: RUN output, failures that leave no tag, docker's flags, outputs.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use layerwright::store::Store;

fn context(dir: &std::path::Path, dockerfile: &str, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (p, d) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, d).unwrap();
    }
}

fn tags(root: &std::path::Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&lw_ok(root, &["images", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["Repository"].as_str().unwrap(),
                i["Tag"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn run_steps_stream_output_and_the_image_runs_in_podman() {
    lw_test_kit::require!("podman", "runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    make_busybox_image(
        &Store::open(&root).unwrap(),
        "lwtest/bb:1",
        &[busybox_files(&[])],
    );
    let ctx = tmp.path().join("ctx");
    context(
        &ctx,
        "FROM lwtest/bb:1\nARG WHO=world\nRUN echo \"hello-from-run $WHO\" && echo data > /made.txt\nCMD [\"cat\", \"/made.txt\"]\n",
        &[],
    );
    let o = lw(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            "WHO=tests",
            "-t",
            "lwtest/ran:1",
            ctx.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with('#') && l.ends_with("hello-from-run tests")),
        "RUN output is streamed: {err}"
    );
    let h: serde_json::Value =
        serde_json::from_str(&lw_ok(&root, &["history", "--json", "lwtest/ran:1"])).unwrap();
    assert!(h.as_array().unwrap().iter().any(|e| e["CreatedBy"]
        == "RUN |1 WHO=tests /bin/sh -c echo \"hello-from-run $WHO\" && echo data > /made.txt # buildkit"));
    let tar = tmp.path().join("ran.tar");
    lw_ok(
        &root,
        &["save", "lwtest/ran:1", "-o", tar.to_str().unwrap()],
    );
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    assert_eq!(
        run_ok(
            podman
                .cmd()
                .args(["run", "--rm", "--network", "none", "docker.io/lwtest/ran:1"])
        ),
        "data\n"
    );

    // A failing RUN stops the build, names the line and the exit code, and tags nothing.
    context(&ctx, "FROM lwtest/bb:1\nRUN echo ok\nRUN exit 3\n", &[]);
    let o = lw(
        &root,
        &["build", "-t", "lwtest/broken:1", ctx.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("Dockerfile:3: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"), "{err}");
    assert!(!tags(&root).iter().any(|t| t.contains("broken")));
}

#[test]
fn bad_dockerfiles_fail_with_the_line_and_leave_no_tag_or_temporary_file() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let cases = [
        (
            "FROM scratch\nFORM busybox\n",
            vec![],
            "Dockerfile:2:1: unknown instruction: FORM",
        ),
        (
            "FROM scratch\nCOPY nothere /\n",
            vec![],
            "Dockerfile:2: COPY failed: \"nothere\" not found",
        ),
        (
            "FROM scratch\nCOPY ../../etc/passwd /\n",
            vec![],
            "forbidden path outside the build context",
        ),
        (
            "FROM scratch\nCOPY --chmod=u+q a /\n",
            vec![("a", "a")],
            "Dockerfile:2: COPY: invalid --chmod value",
        ),
        (
            // RUN on scratch: no shell to run it, said with the line (as docker says it).
            "FROM scratch\nCOPY a /\nRUN true\n",
            vec![("a", "a")],
            "Dockerfile:3: process \"/bin/sh -c true\" did not complete successfully",
        ),
    ];
    for (i, (df, files, want)) in cases.iter().enumerate() {
        let ctx = tmp.path().join(format!("ctx{i}"));
        context(&ctx, df, files);
        let o = lw(
            &root,
            &[
                "build",
                "-t",
                &format!("lwtest/bad:{i}"),
                ctx.to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{df}");
        assert!(err.contains(want), "{df:?}: {err}");
        assert!(tags(&root).is_empty(), "{df:?} tagged something");
        assert_eq!(
            std::fs::read_dir(root.join("tmp"))
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp"))
                .count(),
            0
        );
    }
    let ctx = tmp.path().join("ctx-target");
    context(&ctx, "FROM scratch AS a\n", &[]);
    let o = lw(
        &root,
        &["build", "--target", "missing", ctx.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("target stage \"missing\" could not be found")
    );
}

#[test]
fn outputs_iidfile_quiet_platforms_and_stdin_context() {
    lw_test_kit::require!("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    context(
        &ctx,
        "FROM scratch\nARG TARGETARCH\nCOPY hello.txt /hello-$TARGETARCH.txt\n",
        &[("hello.txt", "hi\n")],
    );
    let out = tmp.path().join("out.tar");
    let iid = tmp.path().join("iid");
    let id = lw_ok(
        &root,
        &[
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "--output",
            &format!("type=oci,dest={}", out.display()),
            "-t",
            "lwtest/out:1",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id.trim());
    let v: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", out.display())]),
    ))
    .unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // Two platforms make an index; each manifest carries its platform's files.
    lw_ok(
        &root,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "lwtest/multi:1",
            ctx.to_str().unwrap(),
        ],
    );
    let ins: serde_json::Value =
        serde_json::from_str(&lw_ok(&root, &["inspect", "lwtest/multi:1"])).unwrap();
    assert_eq!(
        ins[0]["Descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let idx: lw_oci::Index = serde_json::from_slice(
        &Store::open(&root)
            .unwrap()
            .read_document(
                &lw_oci::Digest::parse(ins[0]["Descriptor"]["digest"].as_str().unwrap()).unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    let plats: Vec<String> = idx
        .manifests
        .iter()
        .map(|m| m.platform.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);

    // A context as a tar on stdin.
    let tarball = Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let mut child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(&root)
        .args(["build", "-q", "-t", "lwtest/stdin:1", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tarball).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        id.trim(),
        "same context, same image, wherever it comes from"
    );
}

#[test]
fn add_fetches_urls_and_checks_their_checksum() {
    lw_test_kit::require!("python3");
    // A static HTTP server on loopback (Python's), killed when the test ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let body = b"downloaded content\n".to_vec();
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(www.path().join("files")).unwrap();
    std::fs::write(www.path().join("files/tool.txt"), &body).unwrap();
    // Port 0: the server picks a free port and prints it, so no other test can take it between a probe and the
    // server's bind.
    let mut child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(www.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _server = Server(child);
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    let port: u16 = line
        .split(" port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("http.server said {line:?}"));
    let sum = lw_oci::Digest::sha256_of(&body);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    context(
        &ctx,
        &format!(
            "FROM scratch\nADD --checksum={sum} http://127.0.0.1:{port}/files/tool.txt /opt/\n"
        ),
        &[],
    );
    lw_ok(
        &root,
        &["build", "-t", "lwtest/add:1", ctx.to_str().unwrap()],
    );
    let tar = tmp.path().join("add.tar");
    lw_ok(
        &root,
        &["save", "lwtest/add:1", "-o", tar.to_str().unwrap()],
    );
    let store = Store::open(&root).unwrap();
    let found = layerwright::names::resolve(&store, "lwtest/add:1").unwrap();
    let img = store.resolve(&found.descriptor, None).unwrap();
    let mut tree = lw_layer::FileTree::with_data(1 << 20);
    let f = std::fs::File::open(store.blob_path(&img.manifest.layers[0].digest)).unwrap();
    tree.apply_layer(0, flate2::read::MultiGzDecoder::new(f))
        .unwrap();
    let node = tree
        .get("opt/tool.txt")
        .expect("downloaded file in the layer");
    assert_eq!(node.data.as_deref(), Some(&body[..]));
    assert_eq!(
        node.entry.mode, 0o600,
        "ADD from a URL gives mode 600, as docker does"
    );

    context(
        &ctx,
        &format!(
            "FROM scratch\nADD --checksum=sha256:{} http://127.0.0.1:{port}/files/tool.txt /opt/\n",
            "0".repeat(64)
        ),
        &[],
    );
    let o = lw(&root, &["build", ctx.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dockerfile:2: ADD http://127.0.0.1") && err.contains("digest mismatch"),
        "{err}"
    );
    context(
        &ctx,
        &format!("FROM scratch\nADD http://127.0.0.1:{port}/missing /opt/\n"),
        &[],
    );
    let err =
        String::from_utf8_lossy(&lw(&root, &["build", ctx.to_str().unwrap()]).stderr).to_string();
    assert!(
        err.contains("Dockerfile:2: ADD http://127.0.0.1") && err.contains("404"),
        "{err}"
    );
}

/// The records of the store's stat cache, as (path, digest) — the cache keeps one file per context directory.
fn stat_records(root: &std::path::Path) -> Vec<(String, String)> {
    let dir = root.join("statcache");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(files.len() <= 1, "one stat cache per context: {files:?}");
    let Some(f) = files.first() else {
        return Vec::new();
    };
    std::fs::read_to_string(f)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (digest, rest) = l.split_once(' ').unwrap();
            let path: String = serde_json::from_str(rest.splitn(6, ' ').nth(5).unwrap()).unwrap();
            (path, digest.to_string())
        })
        .collect()
}

#[test]
fn context_hashing_skips_unchanged_files_and_sees_same_size_edits() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    context(
        &ctx,
        "FROM scratch\nCOPY . /data/\n",
        &[("a.txt", "aaaa"), ("sub/b.txt", "bbbb")],
    );
    // Files changed within the racy margin (2 s) before a build are not trusted, so let these age.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-q", "--progress", "plain", "-t", "lwtest/stat:1"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let o = lw(&root, &args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let first = build(&[]);
    let recs = stat_records(&root);
    let paths: Vec<&str> = recs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["Dockerfile", "a.txt", "sub/b.txt"]);
    let (_, a_digest) = &recs[1];
    assert_eq!(
        format!("sha256:{a_digest}"),
        lw_oci::Digest::sha256_of(b"aaaa").to_string()
    );
    // Unchanged: same image, and the cache file is not rewritten.
    let cache_file = std::fs::read_dir(root.join("statcache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before = std::fs::metadata(&cache_file).unwrap();
    assert_eq!(build(&[]), first);
    let after = std::fs::metadata(&cache_file).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );

    // Same size, mtime put back: only ctime (and the inode, for a replaced file) tell the change apart.
    let a = ctx.join("a.txt");
    let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
    std::fs::write(&a, "AAAA").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&a).unwrap().modified().unwrap(), mtime);
    let edited = build(&[]);
    assert_ne!(
        edited, first,
        "a same-size edit with its mtime restored is seen"
    );
    assert_eq!(
        build(&["--no-cache"]),
        edited,
        "and hashed to the right content"
    );
    // A file replaced by another one (new inode) with the old size and mtime.
    let b = ctx.join("sub/b.txt");
    let b_mtime = std::fs::metadata(&b).unwrap().modified().unwrap();
    let b2 = ctx.join("sub/b.new");
    std::fs::write(&b2, "BBBB").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&b2)
        .unwrap()
        .set_modified(b_mtime)
        .unwrap();
    std::fs::rename(&b2, &b).unwrap();
    let replaced = build(&[]);
    assert_ne!(replaced, edited);
    assert_eq!(build(&["--no-cache"]), replaced);

    // Racy: files changed just now are hashed but not remembered, so a second same-size edit within the same
    // timestamp tick (which leaves size, mtime and ctime unchanged on a coarse clock) cannot be missed.
    std::fs::write(&a, "xxxx").unwrap();
    let racy = build(&[]);
    assert!(
        !stat_records(&root).iter().any(|(p, _)| p == "a.txt"),
        "a file changed within the racy margin is not recorded"
    );
    std::fs::write(&a, "yyyy").unwrap();
    let racy2 = build(&[]);
    assert_ne!(racy2, racy);
    assert_eq!(build(&["--no-cache"]), racy2);
}

/// A one-file edit resumes the layer from the last unchanged member: the new blob is kept spliced (the earlier
/// blob's start, not copied, and its own tail), its hash goes on from the saved checkpoint state, and the image is
/// still the cold build's, byte for byte (gzip and zstd).
#[test]
fn a_rebuild_after_an_edit_in_the_last_file_resumes_and_matches_a_cold_build() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    let files = crate::common::eight_member_context(&ctx);
    for compression in ["gzip", "zstd"] {
        let root = tmp.path().join(format!("store-{compression}"));
        let build = |root: &std::path::Path, extra: &[&str]| {
            let mut args = vec!["build", "-q", "--compression", compression, "-t", "lw/r:1"];
            args.extend_from_slice(extra);
            args.push(ctx.to_str().unwrap());
            let o = lw(root, &args);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8(o.stdout).unwrap().trim().to_string()
        };
        let first = build(&root, &[]);
        let last = ctx.join("f7.txt");
        let mut data = std::fs::read(&last).unwrap();
        data[1000] ^= 0x20;
        std::fs::write(&last, &data).unwrap();
        let resumed = build(&root, &[]);
        assert_ne!(resumed, first, "{compression}: the edit is seen");
        // The latest record of the step (`<key>`; earlier ones are kept as `<key>.N`).
        let latest = |root: &std::path::Path| -> Vec<std::path::PathBuf> {
            std::fs::read_dir(root.join("cache/resume"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| !p.file_name().unwrap().to_str().unwrap().contains('.'))
                .collect()
        };
        let records: Vec<_> = latest(&root)
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert_eq!(records.len(), 1, "{compression}: one step's checkpoints");
        let record: serde_json::Value = serde_json::from_slice(&records[0]).unwrap();
        assert!(
            record["points"].as_array().unwrap().len() >= 2,
            "{compression}: several members: {record}"
        );
        let cold = build(
            &tmp.path().join(format!("cold-{compression}")),
            &["--no-cache"],
        );
        assert_eq!(resumed, cold, "{compression}: resumed layer = cold layer");
        // The stored blob is what its name says (its start was not hashed again when it was written).
        for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let d = lw_oci::Digest::sha256_of(&std::fs::read(&p).unwrap());
            assert_eq!(d.encoded(), name);
        }
        // The rebuilt layer is kept spliced (the earlier blob's start and its own tail) and reads as its name.
        let store = layerwright::store::Store::open(&root).unwrap();
        let spliced: Vec<_> = std::fs::read_dir(root.join("spliced/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(spliced.len(), 1, "{compression}: {spliced:?}");
        let d = lw_oci::Digest::parse(&format!("sha256:{}", spliced[0])).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut store.open_blob(&d).unwrap(), &mut bytes).unwrap();
        assert_eq!(lw_oci::Digest::sha256_of(&bytes), d);
        // A damaged record (one hex digit of a saved blob state) is ignored: the layer is resumed from the earlier
        // record (the first build's) instead, and is still the cold build's.
        let rec_path = latest(&root).remove(0);
        let mut record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&rec_path).unwrap()).unwrap();
        let points = record["points"].as_array_mut().unwrap();
        let state = points.last_mut().unwrap()["blob_state"].as_str().unwrap();
        let flipped = if state.starts_with('0') { "1" } else { "0" };
        let damaged = format!("{flipped}{}", &state[1..]);
        points.last_mut().unwrap()["blob_state"] = damaged.into();
        std::fs::write(&rec_path, serde_json::to_vec(&record).unwrap()).unwrap();
        data[2000] ^= 0x20;
        std::fs::write(&last, &data).unwrap();
        let again = build(&root, &[]);
        let cold = build(
            &tmp.path().join(format!("cold2-{compression}")),
            &["--no-cache"],
        );
        assert_eq!(
            again, cold,
            "{compression}: a damaged record gives the cold build's bytes"
        );
        std::fs::write(&last, &files[7].1).unwrap();
    }
}
