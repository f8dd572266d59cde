//! Crash consistency: every writing command is killed (SIGKILL) at random moments, 20 times each, and after each
//! kill the store still verifies (every blob hashes to its name, every name resolves to a manifest whose config
//! and layers are there), a file the command writes outside the store is whole or absent, and the same command
//! then succeeds. serve's store, which `push` writes to, must verify as well. The moments come from a fixed seed,
//! so a failure can be replayed.

//!
//! `copy` (between two servers) and `build` with RUN (busybox, no network) are killed the same way, and after
//! the command's next run no temporary file, mount or RUN process of the killed one is left. serve uploads are
//! cut by killing the client and by killing the server (another process) mid-upload: serve's store then holds
//! no half-named manifest, and the upload files go once the next command runs.

use crate::common;
use crate::common::kills;
use crate::common::serve as serve_fixtures;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{busybox_files, lw_ok, make_busybox_image};
use kills::{
    mounts_under, processes_with, temporaries, text_context, uploads, verify, Cli, Lcg, KILLS,
};
use layerwright::store::Store;
use serve_fixtures::Served;

#[test]
fn every_writing_command_killed_at_random_leaves_a_store_that_verifies() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "kill/base:1", &[busybox_files(&[])]);
    let ctx = text_context(tmp.path(), 7, "FROM scratch\nCOPY . /data/\n");
    let served_root = tmp.path().join("served");
    let srv = Served::start(&served_root, |_| {});
    let host = srv.host();
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    cli.login(&host, &srv.token);
    // Something to pull, save and load.
    cli.ok(&["build", "-q", "-t", "kill/built:1", ctx.to_str().unwrap()]);
    cli.ok(&["push", "kill/built:1", &format!("{host}/kill/src:1")]);
    let saved = tmp.path().join("saved.tar");
    cli.ok(&["save", "-o", saved.to_str().unwrap(), "kill/built:1"]);

    let mut rng = Lcg(0x5eed);
    let out = tmp.path().join("out.tar");
    // Pulls go to a store emptied before each one, so each pull downloads every blob again.
    let pull_root = tmp.path().join("pulls");
    let pull_cli = Cli {
        root: pull_root.clone(),
        docker_config: cli.docker_config.clone(),
    };
    let mut report = Vec::new();
    for command in [
        "build", "save", "load", "tag", "rmi", "prune", "pull", "push",
    ] {
        let (mut killed, mut finished) = (0, 0);
        let mut window: Option<u64> = None;
        for i in 0..KILLS {
            let name = format!("kill/t{i}:1");
            let (ctx_s, saved_s, out_s) = (
                ctx.to_str().unwrap(),
                saved.to_str().unwrap(),
                out.to_str().unwrap(),
            );
            let remote = format!("{host}/kill/pushed:{i}");
            let pull_src = format!("{host}/kill/src:1");
            // Each build differs (a file changes), so the kill lands in real work, not a cache hit.
            if command == "build" {
                std::fs::write(ctx.join("changing.txt"), format!("{i}")).unwrap();
            }
            if command == "rmi" {
                cli.ok(&["tag", "kill/base:1", &name]);
            }
            let args: Vec<&str> = match command {
                "build" => vec!["build", "-q", "--no-cache", "-t", &name, ctx_s],
                "save" => vec!["save", "-o", out_s, "kill/built:1"],
                "load" => vec!["load", "-i", saved_s],
                "tag" => vec!["tag", "kill/base:1", &name],
                "rmi" => vec!["rmi", &name],
                "prune" => vec!["prune"],
                "pull" => vec!["pull", &pull_src],
                _ => vec!["push", "kill/built:1", &remote],
            };
            let (cli, root) = if command == "pull" {
                (&pull_cli, &pull_root)
            } else {
                (&cli, &root)
            };
            let mut garbage = 0;
            let mut fresh = || {
                let _ = std::fs::remove_file(&out);
                if command == "pull" {
                    let _ = std::fs::remove_dir_all(&pull_root);
                }
                if command == "prune" {
                    // Something to prune: an untagged image with its own 12 MB layer.
                    garbage += 1;
                    std::fs::write(ctx.join("changing.txt"), format!("garbage {i} {garbage}"))
                        .unwrap();
                    cli.ok(&["build", "-q", "--no-cache", ctx_s]);
                }
            };
            // Within the command's own run time on this machine (measured by an unkilled run of it first), so
            // the kills land mid-work whether the machine is fast or busy.
            let window = *window.get_or_insert_with(|| {
                if command == "prune" {
                    // What earlier commands left behind goes first, so the measured prune is a typical one.
                    cli.ok(&["prune"]);
                }
                fresh();
                let t = Instant::now();
                cli.ok(&args);
                if command == "rmi" {
                    cli.ok(&["tag", "kill/base:1", &name]);
                }
                (t.elapsed().as_millis() as u64).max(5)
            });
            fresh();
            let after = Duration::from_millis(rng.below(window));
            if cli.kill_after(&args, after) {
                finished += 1;
            } else {
                killed += 1;
            }
            let c = verify(root);
            assert!(
                c.problems.is_empty(),
                "{command} killed after {after:?}: {:?}",
                c.problems
            );
            let served = verify(&served_root);
            assert!(
                served.problems.is_empty(),
                "serve's store after {command}: {:?}",
                served.problems
            );
            if command == "save" && out.exists() {
                // Whole or absent: a file there must load.
                let check = tmp.path().join("check");
                let _ = std::fs::remove_dir_all(&check);
                lw_ok(&check, &["load", "-i", out_s]);
            }
            // The same command then succeeds (an rmi the kill did not stop has nothing left to remove: tag again).
            if command == "rmi" {
                cli.ok(&["tag", "kill/base:1", &name]);
            }
            cli.ok(&args);
            // What the command then made verifies too, and nothing the killed run left outlives the rerun.
            assert!(
                verify(root).problems.is_empty(),
                "{command}: after the rerun"
            );
            let left = temporaries(root);
            assert!(
                left.is_empty(),
                "{command}: after the rerun, temporary files {left:?}"
            );
            let mounts = mounts_under(root);
            assert!(
                mounts.is_empty(),
                "{command}: after the rerun, mounts {mounts:?}"
            );
            let procs = processes_with(&root.to_string_lossy());
            assert!(
                procs.is_empty(),
                "{command}: after the rerun, processes {procs:?}"
            );
        }
        let c = verify(if command == "pull" { &pull_root } else { &root });
        report.push(format!(
            "{command}: {killed} killed, {finished} finished first, corrupt stores 0, temporary files left {}",
            c.temporaries
        ));
    }
    for r in &report {
        println!("kills: {r}");
    }
}

/// What one command's kill rounds found.
struct Rounds {
    killed: usize,
    finished: usize,
}

/// Run `args(i)` once unkilled to measure it, then `KILLS` times killed at a random moment within that time;
/// after each kill the store verifies and `after_kill` checks more, then the command runs again and must succeed,
/// after which no temporary file of the store, mount under it or process naming `marker` is left.
fn kill_rounds(
    cli: &Cli,
    rng: &mut Lcg,
    marker: &str,
    mut args: impl FnMut(usize) -> Vec<String>,
    mut after_kill: impl FnMut(&str),
) -> Rounds {
    let first = args(KILLS);
    let t = Instant::now();
    cli.ok(&first.iter().map(String::as_str).collect::<Vec<_>>());
    let window = (t.elapsed().as_millis() as u64).max(5);
    let mut r = Rounds {
        killed: 0,
        finished: 0,
    };
    for i in 0..KILLS {
        let a = args(i);
        let a_refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let after = Duration::from_millis(rng.below(window));
        if cli.kill_after(&a_refs, after) {
            r.finished += 1;
        } else {
            r.killed += 1;
        }
        let what = format!("{a:?} killed after {after:?}");
        let c = verify(&cli.root);
        assert!(c.problems.is_empty(), "{what}: {:?}", c.problems);
        after_kill(&what);
        cli.ok(&a_refs);
        let c = verify(&cli.root);
        assert!(
            c.problems.is_empty(),
            "{what}, then rerun: {:?}",
            c.problems
        );
        let left = temporaries(&cli.root);
        assert!(
            left.is_empty(),
            "{what}: after the rerun, temporary files {left:?}"
        );
        let mounts = mounts_under(&cli.root);
        assert!(
            mounts.is_empty(),
            "{what}: after the rerun, mounts {mounts:?}"
        );
        // The step's own processes, and any runtime or helper still naming the store (runc's --root is in it).
        let mut procs = processes_with(marker);
        procs.extend(processes_with(&cli.root.to_string_lossy()));
        assert!(
            procs.is_empty(),
            "{what}: after the rerun, processes {procs:?}"
        );
    }
    r
}

#[test]
fn copy_killed_at_random_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let ctx = text_context(tmp.path(), 7, "FROM scratch\nCOPY . /data/\n");
    let (src_root, dst_root) = (tmp.path().join("src"), tmp.path().join("dst"));
    let src = Served::start(&src_root, |_| {});
    // Abandoned uploads (a killed copy's) go after 1 s idle, so the rerun's first upload sweeps them.
    let dst = Served::start(&dst_root, |c| c.upload_idle = Duration::from_secs(1));
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    cli.login(&src.host(), &src.token);
    cli.login(&dst.host(), &dst.token);
    let ctx_s = ctx.to_str().unwrap().to_string();
    cli.ok(&["build", "-q", "-t", "kill/built:1", &ctx_s]);
    let from = format!("{}/kill/src:1", src.host());
    cli.ok(&["push", "kill/built:1", &from]);
    let mut rng = Lcg(0xc0b1);
    // A store emptied each time (so every blob comes again) between two servers (so every blob goes again).
    let copy_root = tmp.path().join("copy");
    let copy_cli = Cli {
        root: copy_root.clone(),
        docker_config: cli.docker_config.clone(),
    };
    let r = kill_rounds(
        &copy_cli,
        &mut rng,
        "lw-no-process-marker",
        |i| {
            let _ = std::fs::remove_dir_all(&copy_root);
            vec![
                "copy".into(),
                from.clone(),
                format!("{}/kill/copied:{i}", dst.host()),
            ]
        },
        |what| {
            for (name, r) in [("source", &src_root), ("destination", &dst_root)] {
                let c = verify(r);
                assert!(
                    c.problems.is_empty(),
                    "{what}: {name} server: {:?}",
                    c.problems
                );
            }
            // Past the destination's upload idle time, so what the kill abandoned is due to go.
            std::thread::sleep(Duration::from_millis(1100));
        },
    );
    let left = uploads(&dst_root);
    assert!(
        left.is_empty(),
        "copy: uploads left on the destination: {left:?}"
    );
    println!(
        "kills: copy: {} killed, {} finished first, corrupt stores 0, uploads left 0",
        r.killed, r.finished
    );
}

#[test]
fn run_builds_killed_at_random_leave_no_mount_process_or_temporary() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "kill/base:1", &[busybox_files(&[])]);
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    // Busybox, no network; the step sleeps and writes, so kills land in the runtime too.
    let run_ctx = tmp.path().join("runctx");
    std::fs::create_dir_all(&run_ctx).unwrap();
    std::fs::write(
        run_ctx.join("Dockerfile"),
        "FROM kill/base:1\nARG N\nRUN /bin/busybox sleep 0.3; /bin/busybox dd if=/dev/urandom of=/data bs=1M count=4 2>/dev/null; echo lwrunkill $N\n",
    )
    .unwrap();
    let run_ctx_s = run_ctx.to_str().unwrap().to_string();
    let mut rng = Lcg(0x4a11);
    let r = kill_rounds(
        &cli,
        &mut rng,
        "lwrunkill",
        |i| {
            let n = format!("N={i}");
            let t = format!("kill/run:{i}");
            [
                "build",
                "-q",
                "--no-cache",
                "--network",
                "none",
                "--build-arg",
                &n,
                "-t",
                &t,
                &run_ctx_s,
            ]
            .map(String::from)
            .to_vec()
        },
        |_| {},
    );
    println!(
        "kills: build with RUN: {} killed, {} finished first, corrupt stores 0, mounts and processes left 0",
        r.killed, r.finished
    );
}

/// Send a request head and the first `sent` bytes of `body` (whose full length the head declares), then cut the
/// connection as a killed client's kernel does, with a reset when `reset`.
fn cut_request(srv: &Served, method: &str, path: &str, body: &[u8], sent: usize, reset: bool) {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n\r\n",
        srv.host(),
        srv.bearer(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&body[..sent]);
    if reset {
        let _ = socket_linger_zero(&s);
    }
    drop(s);
}

/// SO_LINGER 0: closing sends a reset instead of a FIN.
fn socket_linger_zero(s: &std::net::TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a properly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Wait up to 10 s for `cond` (a cut request's handler finishes on its own thread).
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn serve_uploads_cut_by_a_killed_client_leave_no_half_manifest_nor_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let served_root = tmp.path().join("served");
    let srv = Served::start(&served_root, |c| c.upload_idle = Duration::from_secs(1));
    let mut rng = Lcg(0x10ad);
    let blob: Vec<u8> = (0..8 << 20).map(|_| rng.below(256) as u8).collect();
    let layer = lw_oci::Descriptor::new(
        lw_oci::media::OCI_LAYER_GZIP,
        lw_oci::Digest::sha256_of(&blob),
        blob.len() as u64,
    );
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_d = srv.push_blob_as("kill/up", lw_oci::digest::Algorithm::Sha256, config);
    let cfg_desc =
        lw_oci::Descriptor::new(lw_oci::media::OCI_CONFIG, config_d, config.len() as u64);
    let manifest = lw_oci::to_canonical_json(&lw_oci::Manifest::oci(cfg_desc, vec![layer.clone()]));
    let (mut patches, mut posts, mut manifests) = (0, 0, 0);
    for i in 0..KILLS {
        let reset = i % 2 == 1;
        match i % 3 {
            0 => {
                // A chunked upload's PATCH cut short: the session ends and its file goes.
                let r = srv.req(
                    "POST",
                    "/v2/kill/up/blobs/uploads/",
                    &[("Authorization", &srv.bearer())],
                    b"",
                );
                assert_eq!(r.status, 202, "{}", r.text());
                let loc = r.header("location").unwrap().to_string();
                let sent = rng.below(blob.len() as u64) as usize;
                cut_request(&srv, "PATCH", &loc, &blob, sent, reset);
                patches += 1;
            }
            1 => {
                // A monolithic upload cut short.
                let sent = rng.below(blob.len() as u64) as usize;
                let path = format!("/v2/kill/up/blobs/uploads/?digest={}", layer.digest);
                cut_request(&srv, "POST", &path, &blob, sent, reset);
                posts += 1;
            }
            _ => {
                // A manifest cut short (its layer is there): the tag must not appear.
                if !eventually(|| {
                    srv.req(
                        "HEAD",
                        &format!("/v2/kill/up/blobs/{}", layer.digest),
                        &[],
                        b"",
                    )
                    .status
                        == 200
                }) {
                    srv.push_blob_as("kill/up", lw_oci::digest::Algorithm::Sha256, &blob);
                }
                let sent = rng.below(manifest.len() as u64) as usize;
                cut_request(
                    &srv,
                    "PUT",
                    &format!("/v2/kill/up/manifests/cut{i}"),
                    &manifest,
                    sent,
                    reset,
                );
                let r = srv.req("GET", &format!("/v2/kill/up/manifests/cut{i}"), &[], b"");
                assert_eq!(r.status, 404, "a cut manifest PUT named cut{i}");
                manifests += 1;
            }
        }
        // Past the idle time, the next upload (a whole one) sweeps what the cut left.
        std::thread::sleep(Duration::from_millis(1100));
        srv.push_blob_as("kill/up", lw_oci::digest::Algorithm::Sha256, &blob);
        let r = srv.req(
            "PUT",
            &format!("/v2/kill/up/manifests/cut{i}"),
            &[
                ("Authorization", &srv.bearer()),
                ("Content-Type", lw_oci::media::OCI_MANIFEST),
            ],
            &manifest,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(
            eventually(|| uploads(&served_root).is_empty()),
            "cut {i}: uploads left {:?}",
            uploads(&served_root)
        );
        let c = verify(&served_root);
        assert!(c.problems.is_empty(), "cut {i}: {:?}", c.problems);
    }
    println!(
        "kills: serve uploads cut by the client: {patches} PATCH, {posts} POST, {manifests} manifest PUT; \
         corrupt stores 0, half-named manifests 0, uploads left 0"
    );
}

/// The server killed mid-push (it is another process here): the next server over the store finds it whole,
/// sweeps the killed one's uploads and takes the push.
#[test]
fn serve_killed_mid_push_leaves_no_half_manifest_nor_upload() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Lcg(0x5e4e);
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "kill/base:1", &[busybox_files(&[])]);
    let ctx = text_context(tmp.path(), 7, "FROM scratch\nCOPY . /data/\n");
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    cli.ok(&["build", "-q", "-t", "kill/built:1", ctx.to_str().unwrap()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let serve_root = tmp.path().join("killed-server");
    let start_server = || {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_layerwright"))
            .arg("--root")
            .arg(&serve_root)
            .args(["serve", "--addr", &host, "--token", "kill-token-0123456789"])
            .args(["--upload-idle", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            eventually(|| std::net::TcpStream::connect(&host).is_ok()),
            "serve did not start"
        );
        child
    };
    let mut server = start_server();
    cli.login(&host, "kill-token-0123456789");
    let t = Instant::now();
    cli.ok(&["push", "kill/built:1", &format!("{host}/kill/first:1")]);
    let window = (t.elapsed().as_millis() as u64).max(5);
    let mut server_kills = 0;
    for i in 0..KILLS {
        let target = format!("{host}/kill/pushed:{i}");
        let mut push = cli.cmd(&["push", "kill/built:1", &target]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(window)));
        let _ = server.kill();
        let _ = server.wait();
        // The client would retry a dead server for 7.5 s (its backoff); the server's store is what is checked.
        let _ = push.kill();
        let _ = push.wait();
        server_kills += 1;
        let c = verify(&serve_root);
        assert!(c.problems.is_empty(), "server killed {i}: {:?}", c.problems);
        // The next server: past the (1 s) idle time, what the killed one was receiving goes when it starts.
        std::thread::sleep(Duration::from_millis(1100));
        server = start_server();
        let left = uploads(&serve_root);
        assert!(left.is_empty(), "server killed {i}: uploads left {left:?}");
        cli.ok(&["push", "kill/built:1", &target]);
        let c = verify(&serve_root);
        assert!(
            c.problems.is_empty(),
            "server killed {i}, then push: {:?}",
            c.problems
        );
        assert!(uploads(&serve_root).is_empty(), "after the push {i}");
    }
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "kills: serve killed mid-push {server_kills}; corrupt stores 0, half-named manifests 0, uploads left 0"
    );
}
