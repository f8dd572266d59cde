//! `RUN --mount` end to end with runc: bind mounts (context, stage, image; read-only, rw discarded; cache keys follow
//! the source), cache mount sharing modes under concurrency, secrets that never reach the image or the log, and
//! pruning of RUN snapshots and cache mounts. After failures nothing stays mounted or running.

use crate::common;
use crate::common::run as run_fixtures;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{lw, lw_ok};
use layerwright::run::RuncExecutor;
use layerwright::store::Store;
use lw_engine::host::{RunExecutor, RunRequest};
use run_fixtures::*;

fn write(p: &Path, data: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// Nothing mounted under the store, no container, no temporary tree.
fn assert_clean(store: &Store, root: &Path) {
    assert_eq!(mounts_under(root), Vec::<String>::new(), "left mounted");
    let exec = RuncExecutor::new(store).unwrap();
    assert_eq!(exec.runtime.list().unwrap(), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(store.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "runc-state")
        .collect();
    assert_eq!(left, Vec::<String>::new(), "temporary files left behind");
}

const BINDS: &str = "FROM lwtest/bb:1 AS gen\n\
RUN mkdir /out && echo generated > /out/g.txt\n\
FROM lwtest/bb:1\n\
RUN --mount=type=bind,target=/ctx cat /ctx/top.txt > /top-copy && ls -A /ctx > /ctx-list\n\
RUN --mount=type=bind,source=src,target=/s cat /s/a.txt /s/sub/b.txt > /src-copy && (touch /s/new 2>/dev/null && echo writable || echo readonly) > /ro-check\n\
RUN --mount=type=bind,source=./src,target=/s,rw echo scribble > /s/a.txt && touch /s/new && cat /s/a.txt > /rw-copy\n\
RUN --mount=type=bind,source=src,target=/s2,readwrite=true cat /s2/a.txt > /rw-fresh && test ! -e /s2/new\n\
RUN --mount=type=bind,from=gen,source=/out,target=/g cat /g/g.txt > /from-stage\n\
RUN --mount=type=bind,from=lwtest/bb:1,source=/etc/base.txt,dst=/b cat /b > /from-image\n\
RUN --mount=from=0,source=out/g.txt,destination=/file cat /file > /from-index\n";

#[test]
fn bind_mounts_from_context_stage_and_image() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let ctx = tmp.path().join("ctx");
    write(&ctx.join("top.txt"), "top\n");
    write(&ctx.join("src/a.txt"), "A\n");
    write(&ctx.join("src/sub/b.txt"), "B\n");
    write(&ctx.join("ignored.txt"), "must not be visible\n");
    write(&ctx.join(".dockerignore"), "ignored.txt\n");
    base_image(&store, "lwtest/bb:1");
    for overlay in [true, false] {
        let mut spec = BuildSpec::new(BINDS);
        spec.overlay = overlay;
        spec.no_cache = true;
        let r = build(&store, &ctx, &spec).expect("build succeeds");
        let (tree, _) = image_tree(&store, &r.manifest);
        assert_eq!(text(&tree, "top-copy"), "top\n");
        let list = text(&tree, "ctx-list");
        assert!(
            list.contains("src\n") && list.contains("top.txt\n"),
            "{list}"
        );
        assert!(
            !list.contains("ignored.txt"),
            ".dockerignore not applied: {list}"
        );
        assert_eq!(text(&tree, "src-copy"), "A\nB\n");
        assert_eq!(
            text(&tree, "ro-check"),
            "readonly\n",
            "bind mounts are read-only by default"
        );
        assert_eq!(text(&tree, "rw-copy"), "scribble\n");
        assert_eq!(
            text(&tree, "rw-fresh"),
            "A\n",
            "rw writes are discarded after the step"
        );
        assert_eq!(text(&tree, "from-stage"), "generated\n");
        assert_eq!(text(&tree, "from-image"), "base\n");
        assert_eq!(text(&tree, "from-index"), "generated\n");
        for p in ["ctx", "s", "s2", "g", "b", "file", "out"] {
            assert!(tree.get(p).is_none(), "/{p} leaked into the image");
        }
        assert_eq!(
            std::fs::read_to_string(ctx.join("src/a.txt")).unwrap(),
            "A\n"
        );
        assert!(
            !ctx.join("src/new").exists(),
            "a rw bind wrote into the context"
        );
        assert_clean(&store, &root);
    }
    // Unchanged: every RUN is a cache hit. A changed context file re-runs the steps that mount it.
    let spec = BuildSpec::new(BINDS);
    let first = build(&store, &ctx, &spec).unwrap();
    let again = build(&store, &ctx, &spec).unwrap();
    assert_eq!(first.manifest.digest, again.manifest.digest);
    assert!(again.layers.iter().all(|l| l.cached), "{:#?}", again.layers);
    write(&ctx.join("src/a.txt"), "A2\n");
    let changed = build(&store, &ctx, &spec).unwrap();
    let (tree, _) = image_tree(&store, &changed.manifest);
    assert_eq!(text(&tree, "src-copy"), "A2\nB\n");
    assert_eq!(text(&tree, "rw-fresh"), "A2\n");
    // The step that mounts the whole context re-ran too (its source changed); an ignored file does not count.
    let top = changed
        .layers
        .iter()
        .find(|l| l.created_by.contains("/top-copy"))
        .unwrap();
    assert!(!top.cached, "a changed context must re-run the step");
    write(&ctx.join("ignored.txt"), "changed but ignored\n");
    let ignored = build(&store, &ctx, &spec).unwrap();
    assert_eq!(ignored.manifest.digest, changed.manifest.digest);
    assert!(ignored.layers.iter().all(|l| l.cached));
    assert_clean(&store, &root);
}

#[test]
fn bind_mount_errors_name_the_line_and_leave_nothing_behind() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let ctx = tmp.path().join("ctx");
    write(&ctx.join("src/a.txt"), "A\n");
    write(&ctx.join("secret.key"), "k\n");
    write(&ctx.join(".dockerignore"), "secret.key\n");
    base_image(&store, "lwtest/bb:1");
    let cases = [
        (
            "FROM lwtest/bb:1\nRUN --mount=type=bind,source=missing,target=/m true\n",
            "Dockerfile:2",
            "\"missing\" not found in the build context",
        ),
        (
            "FROM lwtest/bb:1\nRUN --mount=type=bind,source=secret.key,target=/m true\n",
            "Dockerfile:2",
            "excluded by .dockerignore",
        ),
        (
            "FROM lwtest/bb:1\nENV X=1\nRUN --mount=type=bind,from=nosuchstage,target=/m true\n",
            "Dockerfile:3",
            "from=nosuchstage is not a stage of this Dockerfile",
        ),
        (
            "FROM lwtest/bb:1 AS a\nFROM lwtest/bb:1\nRUN --mount=type=bind,from=a,source=/nope,target=/m true\n",
            "Dockerfile:3",
            "source \"/nope\" not found in a",
        ),
        (
            "FROM lwtest/bb:1\nRUN --mount=type=bind,source=../x,target=/m true\n",
            "Dockerfile:2",
            "outside the build context",
        ),
        (
            "FROM lwtest/bb:1\nRUN --mount=type=bind,source=src true\n",
            "Dockerfile:2",
            "needs target=",
        ),
    ];
    for (df, line, want) in cases {
        let e = build(&store, &ctx, &BuildSpec::new(df)).unwrap_err();
        assert!(e.contains(line) && e.contains(want), "{df}: {e}");
        assert_clean(&store, &root);
    }
    // A failing command with read-only and writable (overlay or copy) bind mounts: nothing stays mounted.
    for overlay in [true, false] {
        let mut spec = BuildSpec::new(
            "FROM lwtest/bb:1\nRUN --mount=type=bind,source=src,target=/ro --mount=type=bind,source=src,target=/rw,rw \
             --mount=type=cache,target=/c,sharing=locked echo x > /rw/a.txt && false\n",
        );
        spec.overlay = overlay;
        let e = build(&store, &ctx, &spec).unwrap_err();
        assert!(
            e.contains("Dockerfile:2") && e.contains("exit code: 1"),
            "{e}"
        );
        assert_clean(&store, &root);
    }
}

/// A RUN request on the base image's layers with one cache mount.
fn cache_request(
    store: &Store,
    base: &lw_oci::Descriptor,
    mount: &str,
    script: &str,
) -> RunRequest {
    let img = store.resolve(base, None).unwrap();
    RunRequest {
        layers: img.manifest.layers.clone(),
        diff_ids: img.config.rootfs.diff_ids.clone(),
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        user: String::new(),
        workdir: "/".into(),
        network: "none".into(),
        extra_hosts: vec![],
        mounts: vec![mount.into()],
        binds: vec![],
        files: vec![],
        platform: layerwright::store::host_platform(),
        source_date_epoch: Some(0),
        location: "Dockerfile:2".into(),
        hostname: String::new(),
        insecure: false,
    }
}

/// Run `first` (a writer that prints `started`, waits, then finishes its write) and, once it has started, `second`
/// on the same cache id; returns (second's output, whether second finished after first).
fn concurrent(store: &Store, base: &lw_oci::Descriptor, mode: &str, id: &str) -> (String, bool) {
    let mount = format!("type=cache,target=/c,id={id},sharing={mode}");
    let writer = cache_request(
        store,
        base,
        &mount,
        "echo start > /c/f; echo started; sleep 3; echo done >> /c/f",
    );
    let reader = cache_request(store, base, &mount, "cat /c/f 2>/dev/null || echo empty");
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let a = s.spawn(move || {
            let mut exec = RuncExecutor::new(store).unwrap();
            let mut blobs = layerwright::buildhost::StoreBlobs { store };
            let mut seen = String::new();
            exec.run(&writer, &mut blobs, &mut |b: &[u8]| {
                seen.push_str(&String::from_utf8_lossy(b));
                if seen.contains("started") {
                    let _ = tx.send(());
                }
            })
            .unwrap();
            Instant::now()
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the writer started");
        let mut exec = RuncExecutor::new(store).unwrap();
        let mut blobs = layerwright::buildhost::StoreBlobs { store };
        let mut out = Vec::new();
        exec.run(&reader, &mut blobs, &mut |b: &[u8]| {
            out.extend_from_slice(b)
        })
        .unwrap();
        let second_done = Instant::now();
        let first_done = a.join().unwrap();
        (String::from_utf8(out).unwrap(), second_done > first_done)
    })
}

/// Waits until no one holds cache `id`'s lock. A child another test thread is starting holds a copy of every
/// descriptor from its fork until its exec closes them (CLOEXEC), a released lock's too, so a release can show a
/// moment late; a private user meanwhile would get another directory.
fn wait_released(exec: &RuncExecutor, id: &str) {
    let mut lock =
        layerwright::run::mounts::cache_dir(&exec.cache_mounts_dir(), id).into_os_string();
    lock.push(".lock");
    let f = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    for _ in 0..300 {
        if f.try_lock().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("cache mount {id} still held 3 s after its users ended");
}

#[test]
fn cache_mount_sharing_modes() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let base = base_image(&store, "lwtest/bb:1");
    // locked: the second user waits, then sees the first's complete write.
    let (out, after) = concurrent(&store, &base, "locked", "L");
    assert_eq!(out, "start\ndone\n");
    assert!(after, "a locked cache mount must wait for its holder");
    // shared: both at once; the reader sees the write in progress.
    let (out, after) = concurrent(&store, &base, "shared", "S");
    assert_eq!(out, "start\n");
    assert!(!after, "shared users run together");
    // private: the concurrent second user gets an empty directory of its own...
    let (out, after) = concurrent(&store, &base, "private", "P");
    assert_eq!(out, "empty\n");
    assert!(!after);
    // ...and later users get the first's directory back.
    let req = cache_request(
        &store,
        &base,
        "type=cache,target=/c,id=P,sharing=private",
        "cat /c/f",
    );
    let mut exec = RuncExecutor::new(&store).unwrap();
    wait_released(&exec, "P");
    let mut blobs = layerwright::buildhost::StoreBlobs { store: &store };
    let mut out = Vec::new();
    exec.run(&req, &mut blobs, &mut |b: &[u8]| out.extend_from_slice(b))
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "start\ndone\n");
    // uid/gid/mode of a new cache directory.
    let req = cache_request(
        &store,
        &base,
        "type=cache,target=/c,id=owned,uid=1234,gid=99,mode=0710",
        "stat -c '%u %g %a' /c",
    );
    let mut out = Vec::new();
    exec.run(&req, &mut blobs, &mut |b: &[u8]| out.extend_from_slice(b))
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "1234 99 710\n");
    assert_clean(&store, &root);
}

/// Every regular file under `dir`, decompressed when gzip.
fn store_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            store_files(&e.path(), out);
        } else if ft.is_file() {
            let data = std::fs::read(e.path()).unwrap();
            out.push((e.path().display().to_string(), gunzip_if(&data)));
            out.push((e.path().display().to_string(), data));
        }
    }
}

fn gunzip_if(data: &[u8]) -> Vec<u8> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(data), &mut v).unwrap();
        v
    } else {
        Vec::new()
    }
}

/// Each member of a tar archive, raw and decompressed.
fn tar_members(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut r = lw_layer::tar::TarReader::new(tar);
    while let Some(e) = r.next_entry().unwrap() {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut r.data(), &mut data).unwrap();
        out.push((e.path.clone(), gunzip_if(&data)));
        out.push((e.path, data));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secrets_never_reach_the_image_the_store_or_the_log() {
    lw_test_kit::require!("runc", "/bin/busybox");
    const FILE_SECRET: &str = "topsecretfilevalue";
    const ENV_SECRET: &str = "envsecretvaluexyz";
    let rot13 = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'a'..='m' => (c as u8 + 13) as char,
                'n'..='z' => (c as u8 - 13) as char,
                o => o,
            })
            .collect()
    };
    let RunSetup {
        tmp,
        root,
        store,
        ctx,
    } = run_setup();
    let (f1, f2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    write(&f1, FILE_SECRET);
    write(&f2, ENV_SECRET);
    // Each step proves it read the secret by storing a transform of it (rot13), never the value.
    write(
        &ctx.join("Dockerfile"),
        "FROM lwtest/bb:1\n\
         RUN --mount=type=secret,id=tok tr 'a-z' 'n-za-m' < /run/secrets/tok > /file-rot && echo file-step-ran\n\
         RUN --mount=type=secret,id=envtok,env=MY_TOKEN echo \"$MY_TOKEN\" | tr 'a-z' 'n-za-m' > /env-rot && test ! -e /run/secrets/envtok && echo env-step-ran\n\
         RUN --mount=type=secret,id=tok,target=/etc/tokfile,env=BOTH test \"$BOTH\" = \"$(cat /etc/tokfile)\" && echo both > /both\n\
         RUN --mount=type=secret,id=envtok,env=MY_TOKEN env | grep -c MY_TOKEN > /env-count\n",
    );
    let s1 = format!("id=tok,src={}", f1.display());
    let s2 = format!("id=envtok,src={}", f2.display());
    let out = lw(
        &root,
        &[
            "build",
            "-t",
            "lwtest/secrets:1",
            "--progress",
            "plain",
            "--secret",
            &s1,
            "--secret",
            &s2,
            ctx.to_str().unwrap(),
        ],
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("file-step-ran") && log.contains("env-step-ran"),
        "{log}"
    );
    let tar = tmp.path().join("secrets.tar");
    lw_ok(
        &root,
        &["save", "lwtest/secrets:1", "-o", tar.to_str().unwrap()],
    );
    let tar_bytes = std::fs::read(&tar).unwrap();
    let members = tar_members(&tar_bytes);
    // The steps did read the secrets.
    let all: Vec<u8> = members.iter().flat_map(|(_, d)| d.clone()).collect();
    assert!(contains(&all, rot13(FILE_SECRET).as_bytes()));
    assert!(contains(&all, rot13(ENV_SECRET).as_bytes()));
    let history = lw_ok(
        &root,
        &["history", "--no-trunc", "--json", "lwtest/secrets:1"],
    );
    let inspect = lw_ok(&root, &["inspect", "lwtest/secrets:1"]);
    let mut store_data = Vec::new();
    store_files(&root, &mut store_data);
    for secret in [FILE_SECRET, ENV_SECRET] {
        let s = secret.as_bytes();
        assert!(!contains(&tar_bytes, s), "{secret} in the saved tarball");
        for (name, data) in &members {
            assert!(!contains(data, s), "{secret} in {name} of the tarball");
        }
        for (name, data) in &store_data {
            assert!(!contains(data, s), "{secret} in the store: {name}");
        }
        assert!(
            !log.contains(secret),
            "{secret} in the build output:\n{log}"
        );
        assert!(!history.contains(secret) && !inspect.contains(secret));
    }
    // The image has the transforms, the env-only secret made no file, and the environment was not persisted.
    let (tree, _) = image_tree(&store, &names_desc(&store, "lwtest/secrets:1"));
    assert_eq!(text(&tree, "file-rot"), rot13(FILE_SECRET));
    assert_eq!(text(&tree, "env-rot"), format!("{}\n", rot13(ENV_SECRET)));
    assert_eq!(text(&tree, "both"), "both\n");
    assert_eq!(text(&tree, "env-count"), "1\n");
    assert!(tree.get("run").is_none() && tree.get("etc/tokfile").is_none());
    assert!(!inspect.contains("MY_TOKEN"), "{inspect}");
    assert_clean(&store, &root);
}

fn names_desc(store: &Store, name: &str) -> lw_oci::Descriptor {
    layerwright::names::resolve(store, name).unwrap().descriptor
}

fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn prune_removes_unused_snapshots_and_builder_prune_clears_cache_mounts() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let RunSetup {
        tmp: _tmp,
        root,
        store,
        ctx,
    } = run_setup();
    write(&ctx.join("f.txt"), "f\n");
    let df = "FROM lwtest/bb:1\nRUN echo 1 > /one\n\
              RUN --mount=type=cache,target=/c echo $(( $(cat /c/n 2>/dev/null || echo 0) + 1 )) > /c/n && cp /c/n /seen\n\
              RUN --mount=type=bind,target=/ctx cp /ctx/f.txt /f\n";
    let mut spec = BuildSpec::new(df);
    spec.no_cache = true;
    let r = build(&store, &ctx, &spec).unwrap();
    store
        .set_tag("docker.io/lwtest/keep:1", &r.manifest)
        .unwrap();
    let snaps = root.join("run/snapshots");
    let before = dir_names(&snaps);
    // base, base+one, base+one+seen, and the context layer of the bind mount.
    assert_eq!(before.len(), 4, "{before:?}");
    // A RUN step in progress holds the RUN lock: prune leaves snapshots and tmp alone.
    let held = layerwright::run::prune::RunLock::shared(&root).unwrap();
    let out = lw_ok(&root, &["prune"]);
    assert!(out.contains("in use by a running build"), "{out}");
    assert_eq!(dir_names(&snaps), before);
    drop(held);
    // Only the context snapshot is not a layer prefix of an image in the store. (The release can show a moment
    // late: a child another test thread is starting holds a copy of the lock's descriptor until its exec.)
    let mut out = lw_ok(&root, &["prune"]);
    for _ in 0..30 {
        if !out.contains("in use by a running build") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = lw_ok(&root, &["prune"]);
    }
    assert!(out.contains("Deleted RUN snapshots: 1"), "{out}");
    let after = dir_names(&snaps);
    assert_eq!(after.len(), 3, "{after:?}");
    // Untagged and pruned, the image's own stacks go too; the base image's stays.
    store.remove_tag("docker.io/lwtest/keep:1").unwrap();
    let out = lw_ok(&root, &["prune"]);
    assert!(out.contains("Deleted RUN snapshots: 2"), "{out}");
    assert_eq!(dir_names(&snaps).len(), 1);
    // builder prune: cache mounts (except one in use) and every snapshot.
    let caches = root.join("cache-mounts");
    let lease = layerwright::run::cachemount::acquire(
        &caches,
        "held",
        layerwright::run::mounts::Sharing::Shared,
        (0, 0, 0o755),
        None,
    )
    .unwrap();
    let out = lw_ok(&root, &["builder", "prune", "-f"]);
    assert!(
        out.contains("Deleted RUN snapshots: 1")
            && out.contains("Deleted cache mounts: 1")
            && out.contains("in use, left in place: 1"),
        "{out}"
    );
    assert!(lease.dir.is_dir());
    drop(lease);
    assert_eq!(dir_names(&snaps), Vec::<String>::new());
    // The cache mount starts over and snapshots are remade.
    let r = build(&store, &ctx, &spec).unwrap();
    let (tree, _) = image_tree(&store, &r.manifest);
    assert_eq!(text(&tree, "seen"), "1\n");
    assert_eq!(text(&tree, "f"), "f\n");
    assert_clean(&store, &root);
}

#[test]
fn cache_mount_seeded_from_a_stage() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let RunSetup {
        tmp: _tmp,
        root,
        store,
        ctx,
    } = run_setup();
    let df = "FROM lwtest/bb:1 AS gen\nRUN mkdir /out && echo seeded > /out/s\n\
              FROM lwtest/bb:1\n\
              RUN --mount=type=cache,target=/c,id=seeded,from=gen,source=/out cat /c/s > /got && echo more > /c/more\n\
              RUN --mount=type=cache,target=/c,id=seeded,from=gen,source=/out ls /c > /listing\n";
    let r = build(&store, &ctx, &BuildSpec::new(df)).unwrap();
    let (tree, _) = image_tree(&store, &r.manifest);
    assert_eq!(text(&tree, "got"), "seeded\n");
    // The seed only fills a new directory: the cache keeps what the first step added.
    assert_eq!(text(&tree, "listing"), "more\ns\n");
    assert!(tree.get("c").is_none() && tree.get("out").is_none());
    let e = build(
        &store,
        &ctx,
        &BuildSpec::new("FROM lwtest/bb:1 AS gen\nFROM lwtest/bb:1\nRUN --mount=type=cache,target=/c,from=gen,source=/none true\n"),
    )
    .unwrap_err();
    assert!(
        e.contains("Dockerfile:3") && e.contains("source \"/none\" not found in gen"),
        "{e}"
    );
    assert_clean(&store, &root);
}
