//! The article's Dockerfiles with default flags on a Debian bookworm base made by debootstrap: nginx installed
//! with apt-get through RUN's default network, and a multi-stage build whose final image holds one binary, run
//! by podman. The nginx image then runs detached with a published port and serves index.html to curl. The package
//! mirror's name is passed with `--add-host`, as the host resolves it.
//!
//! The base's root file system is cached as a tar outside the checkout (`$LAYERWRIGHT_TEST_CACHE`, default
//! /var/cache/layerwright-test), keyed by [`BASE_VERSION`], so CI makes it once.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{lw, lw_ok, mounts_under, run_ok, Podman};
use layerwright::store::Store;

/// Change to make the tests build a new base.
const BASE_VERSION: &str = "debian-bookworm-minbase-v1";
const MIRROR: &str = "deb.debian.org";

fn cache_dir() -> PathBuf {
    std::env::var_os("LAYERWRIGHT_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/layerwright-test"))
}

/// The mirror's IPv4 address as the host resolves it (its /etc/hosts here), for `--add-host`.
fn mirror_ip() -> String {
    let out = run_ok(Command::new("getent").args(["ahostsv4", MIRROR]));
    out.split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("getent ahostsv4 {MIRROR}: no address"))
        .to_string()
}

/// The cached tar of a `debootstrap --variant=minbase bookworm` root (without apt's downloaded packages and
/// lists, and with an empty /dev, as Debian's images have them), made when missing.
fn base_tar() -> PathBuf {
    let dir = cache_dir();
    let tar = dir.join(format!("{BASE_VERSION}.tar"));
    if tar.is_file() {
        return tar;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let work = tempfile::tempdir_in(&dir).unwrap();
    let root = work.path().join("rootfs");
    run_ok(Command::new("debootstrap").args([
        "--variant=minbase",
        "bookworm",
        root.to_str().unwrap(),
        &format!("http://{MIRROR}/debian"),
    ]));
    for d in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        run_ok(Command::new("find").args([
            root.join(d).to_str().unwrap(),
            "-mindepth",
            "1",
            "-type",
            "f",
            "-delete",
        ]));
    }
    let part = work.path().join("rootfs.tar");
    run_ok(Command::new("tar").args([
        "--numeric-owner",
        "--exclude=./dev/*",
        "-C",
        root.to_str().unwrap(),
        "-cf",
        part.to_str().unwrap(),
        ".",
    ]));
    // Whole or not at all: a concurrent or killed run never leaves half a tar under the final name.
    run_ok(Command::new("sync").arg(&part));
    std::fs::rename(&part, &tar).unwrap();
    tar
}

/// Import the base into the store at `root` as `debian:bookworm-local` (a build of `ADD rootfs.tar /`).
fn import_base(root: &Path, tmp: &Path) {
    let ctx = tmp.join("base-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let src = base_tar();
    let dst = ctx.join("rootfs.tar");
    if std::fs::hard_link(&src, &dst).is_err() {
        std::fs::copy(&src, &dst).unwrap();
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n",
    )
    .unwrap();
    lw_ok(
        root,
        &[
            "build",
            "-q",
            "-t",
            "debian:bookworm-local",
            ctx.to_str().unwrap(),
        ],
    );
}

/// Build `ctx` with default flags plus the mirror's `--add-host`; returns the seconds it took.
fn build(root: &Path, tag: &str, ctx: &Path) -> f64 {
    let host = format!("{MIRROR}:{}", mirror_ip());
    let t = Instant::now();
    let o = lw(
        root,
        &[
            "build",
            "--progress",
            "plain",
            "--add-host",
            &host,
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "build {tag} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    t.elapsed().as_secs_f64()
}

/// The paths in the last `n` layers of an image.
fn top_layer_paths(root: &Path, tag: &str, n: usize) -> Vec<Vec<String>> {
    let store = Store::open(root).unwrap();
    let name = layerwright::names::normalize(tag).unwrap();
    let rec = store
        .records()
        .unwrap()
        .into_iter()
        .find(|r| r.name.as_deref() == Some(name.as_str()))
        .expect("tagged");
    let img = store.resolve(&rec.descriptor, None).unwrap();
    let layers = &img.manifest.layers;
    layers[layers.len() - n..]
        .iter()
        .map(|l| {
            let c = lw_oci::media::layer_compression(&l.media_type).unwrap();
            let blob = std::fs::File::open(store.blob_path(&l.digest)).unwrap();
            let mut r = lw_layer::tar::TarReader::new(
                lw_layer::compress::decoder(std::io::BufReader::new(blob), c).unwrap(),
            );
            let mut names = Vec::new();
            while let Some(e) = r.next_entry().unwrap() {
                names.push(e.path);
            }
            names
        })
        .collect()
}

/// Processes whose root or command line is under the store (a container's, its monitor, its slirp4netns).
fn processes_under(root: &Path, id: &str) -> Vec<String> {
    let root = std::fs::canonicalize(root).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let in_root = std::fs::read_link(e.path().join("root")).is_ok_and(|r| r.starts_with(&root));
        if in_root || cmdline.contains(id) {
            out.push(format!("{pid}: {cmdline}"));
        }
    }
    out
}

/// Removes (forcefully) a container when dropped, so a failing test leaves nothing running.
struct RmOnDrop<'a>(&'a Path, &'a str);

impl Drop for RmOnDrop<'_> {
    fn drop(&mut self) {
        let _ = lw(self.0, &["rm", "-f", self.1]);
    }
}

/// The article's next step: `run -d -p 127.0.0.1:PORT:80` serves index.html to curl; `stop` and `rm` then leave
/// no container, mount or process behind.
fn serve_index_html(root: &Path, index: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    let t = Instant::now();
    let id = lw_ok(root, &["run", "-d", "-p", &publish, "lwtest/nginx:1"]);
    let id = id.trim().to_string();
    let _cleanup = RmOnDrop(root, &id);
    let url = format!("http://127.0.0.1:{port}/index.html");
    let curl = || {
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "5", &url])
            .output()
            .unwrap()
    };
    let body = loop {
        let o = curl();
        if o.status.success() {
            break String::from_utf8(o.stdout).unwrap();
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "nginx did not answer on {url}: {}\nlogs: {}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&lw(root, &["logs", &id]).stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    eprintln!(
        "run -d to the first answer: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(body, index);
    assert!(lw_ok(root, &["ps"]).contains(&format!("127.0.0.1:{port}->80/tcp")));
    assert!(
        !processes_under(root, &id).is_empty(),
        "nginx runs under the store"
    );
    lw_ok(root, &["stop", &id]);
    assert!(
        lw_ok(root, &["ps", "-a"]).contains("Exited ("),
        "stopped, not removed"
    );
    assert!(
        !curl().status.success(),
        "the port closed with the container"
    );
    lw_ok(root, &["rm", &id]);
    assert_eq!(lw_ok(root, &["ps", "-aq"]), "");
    assert!(!root.join("containers").join(&id).exists());
    assert_eq!(mounts_under(root), Vec::<String>::new());
    let t = Instant::now();
    // The monitor may take a moment to exit after writing the container's end.
    while !processes_under(root, &id).is_empty() && t.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(processes_under(root, &id), Vec::<String>::new());
}

#[test]
fn nginx_builds_with_default_flags_and_hello_runs_in_podman() {
    lw_test_kit::require!("debootstrap", "podman", "runc", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let t = Instant::now();
    import_base(&root, tmp.path());
    eprintln!("base imported in {:.1} s", t.elapsed().as_secs_f64());

    // The article's first Dockerfile.
    let ctx = tmp.path().join("nginx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("index.html"), "<h1>Hello from layerwright</h1>\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM debian:bookworm-local\n\
         RUN apt-get update && apt-get install -y --no-install-recommends nginx\n\
         COPY index.html /var/www/html/\n\
         EXPOSE 80\n\
         CMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
    )
    .unwrap();
    let cold = build(&root, "lwtest/nginx:1", &ctx);
    let warm = build(&root, "lwtest/nginx:1", &ctx);
    std::fs::write(ctx.join("index.html"), "<h1>Changed</h1>\n").unwrap();
    let edit = build(&root, "lwtest/nginx:1", &ctx);
    eprintln!("nginx build: cold {cold:.1} s, warm {warm:.2} s, index.html edited {edit:.2} s");
    let layers = top_layer_paths(&root, "lwtest/nginx:1", 2);
    assert!(
        layers[0].iter().any(|p| p == "usr/sbin/nginx"),
        "the RUN layer has nginx"
    );
    for l in &layers {
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            assert!(!l.iter().any(|p| p == f), "{f} in a layer");
        }
    }
    // COPY's layer: the file and its parent directories (with the base's metadata), as BuildKit writes it.
    assert_eq!(
        layers[1],
        ["var", "var/www", "var/www/html", "var/www/html/index.html"]
    );
    let inspect = lw_ok(&root, &["inspect", "lwtest/nginx:1"]);
    assert!(inspect.contains("\"80/tcp\""), "{inspect}");
    serve_index_html(&root, "<h1>Changed</h1>\n");

    // The multi-stage example: a compiler in the builder stage, one static binary in the final image.
    let ctx = tmp.path().join("hello");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello from a multi-stage build\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM debian:bookworm-local AS build\n\
         RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev\n\
         COPY hello.c /src/\n\
         RUN gcc -O2 -static -o /hello /src/hello.c\n\
         FROM scratch\n\
         COPY --from=build /hello /hello\n\
         CMD [\"/hello\"]\n",
    )
    .unwrap();
    let cold = build(&root, "lwtest/hello:1", &ctx);
    eprintln!("multi-stage build: cold {cold:.1} s");
    assert_eq!(top_layer_paths(&root, "lwtest/hello:1", 1), [["hello"]]);
    let tar = tmp.path().join("hello.tar");
    lw_ok(
        &root,
        &["save", "lwtest/hello:1", "-o", tar.to_str().unwrap()],
    );
    let podman = Podman::new(&tmp.path().join("podman"));
    podman.load(&tar);
    let out = podman.run(&["docker.io/lwtest/hello:1"]);
    assert_eq!(out, "hello from a multi-stage build\n");
}
