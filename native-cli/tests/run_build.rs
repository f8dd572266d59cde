//! Native RUN execution end to end: Dockerfiles with RUN steps built by the engine with runc, checked through the
//! built image's file tree and by running the saved image in podman; failures leave nothing behind.

use crate::common;
use crate::common::run as run_fixtures;

use std::collections::BTreeMap;

use common::{put_layer, run_ok, Podman};
use layerwright::run::RuncExecutor;
use layerwright::store::Store;
use lw_engine::host::{RunExecutor, RunRequest};
use lw_layer::EntryKind;
use run_fixtures::*;

const CHANGES: &str = r#"FROM lwtest/bb:1
RUN echo hello > /greeting && mkdir -p /data/sub && echo x > /data/sub/f && rm /etc/motd \
 && echo changed > /etc/base.txt && chmod 600 /data/sub/f && chown 123:456 /data/sub/f && ln -s /greeting /link \
 && echo same > /h1 && ln /h1 /h2 && chown 5:6 /bin/busybox
RUN echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && echo 'bob:x:1000:' >> /etc/group \
 && mkdir /home/bob && chown bob:bob /home/bob
USER bob
RUN echo "I am $(id -u):$(id -g) $(whoami) in $(pwd) at $HOME" > /tmp/who && touch /home/bob/mine
USER root
RUN rm -rf /opt/dir && mkdir /opt/dir && echo new > /opt/dir/n
RUN true
CMD ["cat", "/greeting", "/tmp/who", "/etc/base.txt"]
"#;

#[test]
fn run_steps_make_the_right_layers_and_the_image_runs_in_podman() {
    lw_test_kit::require!("podman", "runc", "/bin/busybox");
    let RunSetup {
        tmp,
        root: _,
        store,
        ctx,
    } = run_setup();
    let r = build(&store, &ctx, &BuildSpec::new(CHANGES)).expect("build succeeds");
    let (tree, layers) = image_tree(&store, &r.manifest);
    // Two base layers, five RUN layers: as in BuildKit, `RUN true` changes nothing and still makes an (empty) layer.
    assert_eq!(layers.len(), 7, "layers: {layers:#?}");
    assert!(layers[6].is_empty(), "{:?}", layers[6]);
    assert_eq!(text(&tree, "greeting"), "hello\n");
    assert_eq!(text(&tree, "etc/base.txt"), "changed\n");
    assert!(tree.get("etc/motd").is_none());
    assert!(
        layers[2].contains(&"etc/.wh.motd".to_string()),
        "{:?}",
        layers[2]
    );
    let f = &tree.get("data/sub/f").unwrap().entry;
    assert_eq!((f.mode, f.uid, f.gid), (0o600, 123, 456));
    assert_eq!(f.mtime, 1_700_000_000, "new files get SOURCE_DATE_EPOCH");
    // A metadata-only change to a base file is in the layer.
    let bb = &tree.get("bin/busybox").unwrap().entry;
    assert_eq!((bb.uid, bb.gid, bb.mode), (5, 6, 0o755));
    assert!(layers[2].contains(&"bin/busybox".to_string()));
    assert_eq!(
        tree.get("link").unwrap().entry.kind,
        EntryKind::Symlink("/greeting".into())
    );
    assert_eq!(
        tree.get("h2").unwrap().entry.kind,
        EntryKind::Hardlink("h1".into())
    );
    assert!(text(&tree, "etc/passwd").contains("bob:x:1000:1000"));
    let home = &tree.get("home/bob").unwrap().entry;
    assert_eq!((home.uid, home.gid), (1000, 1000));
    assert_eq!(
        text(&tree, "tmp/who"),
        "I am 1000:1000 bob in / at /home/bob\n"
    );
    let who = &tree.get("tmp/who").unwrap().entry;
    assert_eq!((who.uid, who.gid), (1000, 1000));
    assert!(tree.get("opt/dir/old1").is_none());
    assert_eq!(text(&tree, "opt/dir/n"), "new\n");
    // As BuildKit writes it: the directory made again gets a whiteout per lost entry, no opaque marker.
    assert_eq!(
        layers[5],
        ["opt", "opt/dir", "opt/dir/n", "opt/dir/.wh.old1"],
        "{:?}",
        layers[5]
    );
    // Of runc's mount points only the empty directories the base lacked reach a layer (as in BuildKit's): nothing
    // mounted on them does.
    for l in &layers[2..] {
        for p in l {
            let (top, rest) = p.split_once('/').unwrap_or((p, ""));
            assert!(
                !["proc", "sys", "dev"].contains(&top) || rest.is_empty(),
                "{p} leaked into a layer"
            );
        }
    }
    // Layers are sorted (a whiteout where its victim's name sorts, as in BuildKit's) and the copy snapshot gives
    // the very same image as overlayfs.
    let victim = |p: &String| match p.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{}", base.strip_prefix(".wh.").unwrap_or(base)),
        None => p.strip_prefix(".wh.").unwrap_or(p).to_string(),
    };
    for l in &layers[2..] {
        let mut sorted = l.clone();
        sorted.sort_by(|a, b| lw_layer::path::cmp_components(&victim(a), &victim(b)));
        assert_eq!(&sorted, l);
    }
    let mut spec = BuildSpec::new(CHANGES);
    spec.overlay = false;
    spec.no_cache = true;
    let again = build(&store, &ctx, &spec).unwrap();
    if again.manifest.digest != r.manifest.digest {
        let (_, l2) = image_tree(&store, &again.manifest);
        for (a, b) in layers.iter().zip(&l2) {
            if a != b {
                eprintln!("overlay: {a:?}\ncopy:    {b:?}");
            }
        }
    }
    assert_eq!(
        again.manifest.digest, r.manifest.digest,
        "copy snapshots and overlayfs give the same layers"
    );

    let tar = save(&store, &r.manifest, "lwtest/runbuilt:1", tmp.path());
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    let out = run_ok(
        podman
            .cmd()
            .args(["run", "--rm", "docker.io/lwtest/runbuilt:1"]),
    );
    assert_eq!(
        out,
        "hello\nI am 1000:1000 bob in / at /home/bob\nchanged\n"
    );
    let out = run_ok(podman.cmd().args([
        "run",
        "--rm",
        "docker.io/lwtest/runbuilt:1",
        "ls",
        "/opt/dir",
        "/etc",
    ]));
    assert!(
        out.contains("n\n") && !out.contains("old1") && !out.contains("motd"),
        "{out}"
    );
}

#[test]
fn multi_stage_copies_what_a_run_made() {
    lw_test_kit::require!("podman", "runc", "/bin/busybox");
    let RunSetup {
        tmp,
        root: _,
        store,
        ctx,
    } = run_setup();
    let df = "FROM lwtest/bb:1 AS builder\nRUN mkdir /out && echo built-by-run > /out/artifact && chmod 751 /out/artifact\n\
              FROM lwtest/bb:1\nCOPY --from=builder /out/artifact /artifact\nCMD [\"cat\", \"/artifact\"]\n";
    let r = build(&store, &ctx, &BuildSpec::new(df)).unwrap();
    let (tree, layers) = image_tree(&store, &r.manifest);
    assert_eq!(layers.len(), 3);
    assert_eq!(text(&tree, "artifact"), "built-by-run\n");
    assert_eq!(tree.get("artifact").unwrap().entry.mode, 0o751);
    assert!(tree.get("out").is_none());
    let tar = save(&store, &r.manifest, "lwtest/multistage:1", tmp.path());
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    assert_eq!(
        run_ok(
            podman
                .cmd()
                .args(["run", "--rm", "docker.io/lwtest/multistage:1"])
        ),
        "built-by-run\n"
    );
}

#[test]
fn a_failing_run_reports_and_leaves_nothing_behind() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let RunSetup {
        tmp: _tmp,
        root,
        store,
        ctx,
    } = run_setup();
    for overlay in [true, false] {
        let mut spec = BuildSpec::new("FROM lwtest/bb:1\nRUN echo before && false\n");
        spec.overlay = overlay;
        let err = build(&store, &ctx, &spec).unwrap_err();
        assert!(
            err.contains(r#"Dockerfile:2: process "/bin/sh -c echo before && false" did not complete successfully: exit code: 1"#),
            "{err}"
        );
        assert_eq!(mounts_under(&root), Vec::<String>::new());
        let exec = RuncExecutor::new(&store).unwrap();
        assert_eq!(exec.runtime.list().unwrap(), Vec::<String>::new());
        let left: Vec<_> = std::fs::read_dir(store.tmp_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "runc-state")
            .collect();
        assert_eq!(left, Vec::<String>::new(), "temporary files left behind");
    }
    // A missing runtime (`build --runtime`): the error names the runtime and the RUN line; nothing is tagged.
    let e = RuncExecutor::with_runtime(&store, Some("/nonexistent/runc"))
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "OCI runtime /nonexistent/runc not found, or it does not answer --version"
    );
    std::fs::write(ctx.join("Dockerfile"), "FROM lwtest/bb:1\nRUN echo hi\n").unwrap();
    let ctx_s = ctx.to_str().unwrap();
    let o = common::lw(
        &root,
        &[
            "build",
            "--runtime",
            "/nonexistent/runc",
            "-t",
            "lwtest/rt:1",
            ctx_s,
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("Dockerfile:2") && stderr.contains("/nonexistent/runc not found"),
        "{stderr}"
    );
    assert!(!common::lw_ok(&root, &["images"]).contains("lwtest/rt"));
    // Naming the runtime that is installed works.
    common::lw_ok(
        &root,
        &[
            "build",
            "-q",
            "--runtime",
            "runc",
            "-t",
            "lwtest/rt:1",
            ctx_s,
        ],
    );
    assert!(common::lw_ok(&root, &["images"]).contains("lwtest/rt"));
    // A user that does not exist is an error too.
    let err = build(
        &store,
        &ctx,
        &BuildSpec::new("FROM lwtest/bb:1\nUSER nobody\nRUN true\n"),
    )
    .unwrap_err();
    assert!(err.contains("unable to find user nobody"), "{err}");
}

#[test]
fn run_mounts_cache_tmpfs_and_secret() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let RunSetup {
        tmp,
        root,
        store,
        ctx,
    } = run_setup();
    let secret = tmp.path().join("tok.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let df = "FROM lwtest/bb:1\n\
        RUN --mount=type=cache,target=/cache echo $(( $(cat /cache/n 2>/dev/null || echo 0) + 1 )) > /cache/n && cp /cache/n /seen\n\
        RUN --mount=type=secret,id=tok cat /run/secrets/tok > /tokcopy\n\
        RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/y && ls /scratch > /tmpfs-list\n";
    let mut spec = BuildSpec::new(df);
    spec.secrets = BTreeMap::from([("tok".to_string(), secret.clone())]);
    for round in 1..=2 {
        spec.no_cache = true;
        let r = build(&store, &ctx, &spec).unwrap();
        let (tree, _) = image_tree(&store, &r.manifest);
        assert_eq!(
            text(&tree, "seen"),
            format!("{round}\n"),
            "the cache mount persists between builds"
        );
        assert_eq!(text(&tree, "tokcopy"), "s3cret");
        assert_eq!(text(&tree, "tmpfs-list"), "y\n");
        for p in ["cache", "run", "scratch"] {
            assert!(tree.get(p).is_none(), "/{p} leaked into the image");
        }
    }
    // A required secret that the host does not have is an error.
    let e = build(
        &store,
        &ctx,
        &BuildSpec::new("FROM lwtest/bb:1\nRUN --mount=type=secret,id=nope,required true\n"),
    )
    .unwrap_err();
    assert!(e.contains("secret nope not found"), "{e}");
    assert_eq!(mounts_under(&root), Vec::<String>::new());
}

#[test]
fn output_streams_and_the_sandbox_is_isolated() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let (desc, diff_id) = put_layer(&store, &common::busybox_files(&[]));
    let mut exec = RuncExecutor::new(&store).unwrap();
    let mut blobs = layerwright::buildhost::StoreBlobs { store: &store };
    let mut req = RunRequest {
        layers: vec![desc],
        diff_ids: vec![diff_id],
        args: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2; /bin/busybox hostname; /bin/busybox ls /sys/class/net; echo $GREETING; /bin/busybox pwd".into(),
        ],
        env: vec!["PATH=/bin".into(), "GREETING=hi there".into()],
        user: String::new(),
        workdir: "/work/dir".into(),
        network: "none".into(),
        extra_hosts: vec![],
        mounts: vec![],
        binds: vec![],
        files: vec![],
        platform: layerwright::store::host_platform(),
        source_date_epoch: Some(0),
        location: "Dockerfile:3".into(),
        hostname: String::new(),
        insecure: false,
    };
    let mut out = Vec::new();
    let res = exec
        .run(&req, &mut blobs, &mut |b: &[u8]| out.extend_from_slice(b))
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    for want in [
        "out\n",
        "err\n",
        "buildkitsandbox\n",
        "hi there\n",
        "/work/dir\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out:?}");
    }
    let nets: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("lo") || l.starts_with("eth"))
        .collect();
    assert_eq!(nets, ["lo"], "only loopback without network: {out}");
    // The working directory runc made is the step's change, with runc's mount points the base lacked (BuildKit
    // keeps those too).
    let (d, _) = res.layer.expect("a layer for the new workdir");
    let blob = std::fs::read(store.blob_path(&d.digest)).unwrap();
    let mut r = lw_layer::tar::TarReader::new(flate2::read::GzDecoder::new(&blob[..]));
    let mut names = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        assert_eq!(e.mtime, 0);
        names.push(e.path);
    }
    assert_eq!(names, ["dev", "proc", "sys", "work", "work/dir"]);
    // The host network: the host's interfaces, resolv.conf and hosts bound in, and none of it in the layer.
    req.network = "host".into();
    req.workdir = "/".into();
    req.args = vec![
        "/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        "/bin/busybox ls /sys/class/net; /bin/busybox cat /etc/hosts >/dev/null && echo hosts-ok"
            .into(),
    ];
    let mut out = Vec::new();
    let res = exec
        .run(&req, &mut blobs, &mut |b: &[u8]| out.extend_from_slice(b))
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("lo\n") && out.contains("hosts-ok"), "{out}");
    // The hosts and resolv.conf stubs are removed; runc's mount point directories stay, as in BuildKit.
    let (d, _) = res.layer.expect("a layer with runc's mount points");
    let blob = std::fs::read(store.blob_path(&d.digest)).unwrap();
    let mut r = lw_layer::tar::TarReader::new(flate2::read::GzDecoder::new(&blob[..]));
    let mut names = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        names.push(e.path);
    }
    assert_eq!(
        names,
        ["dev", "proc", "sys"],
        "mount points leaked into a layer"
    );
    // A timeout kills the container.
    exec.timeout = Some(std::time::Duration::from_millis(500));
    req.args = vec!["/bin/busybox".into(), "sleep".into(), "30".into()];
    let t = std::time::Instant::now();
    let e = exec
        .run(&req, &mut blobs, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("timed out") && t.elapsed().as_secs() < 20, "{e}");
    assert_eq!(exec.runtime.list().unwrap(), Vec::<String>::new());
}

/// A relative `--root` works with RUN (the runtime runs from the bundle directory, so paths must be absolute).
#[test]
fn run_with_a_relative_root() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("st")).unwrap();
    common::make_busybox_image(&store, "lwtest/rel:1", &[common::busybox_files(&[])]);
    drop(store);
    std::fs::write(
        tmp.path().join("Dockerfile"),
        "FROM lwtest/rel:1\nRUN echo made > /made.txt\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .current_dir(tmp.path())
        .args([
            "--root",
            "st",
            "build",
            "-t",
            "rel:1",
            "--progress",
            "plain",
            ".",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
