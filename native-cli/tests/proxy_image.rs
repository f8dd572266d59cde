//! The proxy's container image: `native-cli/proxy.Dockerfile` built by `layerwright build` around the static (musl)
//! binary, saved, loaded into podman and run (host network, loopback address); a pull through it from a loopback
//! registry, twice, the second from its cache in the image's `/cache`. Needs the static binary: set
//! LAYERWRIGHT_STATIC_BIN, or build it `--target x86_64-unknown-linux-musl` first, with `--profile static-test` (as
//! `cargo xtask test` does) or `--release`.

use crate::common;
use crate::common::registry as registry_fixtures;
use crate::common::serve as serve_fixtures;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{busybox_files, lw_ok, make_busybox_image, Podman};
use layerwright::store::Store;
use lw_oci::{Digest, Manifest};
use registry_fixtures::{Registry, RegistryAuth};
use serve_fixtures::raw;

fn static_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LAYERWRIGHT_STATIC_BIN") {
        return Some(PathBuf::from(p));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/x86_64-unknown-linux-musl");
    ["static-test", "release"]
        .into_iter()
        .map(|profile| dir.join(profile).join("layerwright"))
        .find(|p| p.is_file())
}

#[test]
fn the_proxy_image_runs_under_podman_and_serves_a_pull() {
    lw_test_kit::require!(
        "podman",
        "runc",
        "docker-registry",
        "skopeo",
        "/bin/busybox"
    );
    let Some(bin) = static_binary() else {
        // `cargo xtask test` builds it (and sets LW_REQUIRE_TOOLS): there a missing binary is a failure.
        return lw_test_kit::cannot_run(
            "no static binary (cargo build -p layerwright --profile static-test --target \
x86_64-unknown-linux-musl, or LAYERWRIGHT_STATIC_BIN)",
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    // The image, built by us from the repository's Dockerfile.
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(ctx.join("cache")).unwrap();
    std::fs::copy(&bin, ctx.join("layerwright")).unwrap();
    let root = tmp.path().join("store");
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.Dockerfile");
    lw_ok(
        &root,
        &[
            "build",
            "-q",
            "-t",
            "layerwright-proxy:test",
            "-f",
            dockerfile.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    let tar = tmp.path().join("proxy.tar");
    lw_ok(
        &root,
        &[
            "save",
            "layerwright-proxy:test",
            "-o",
            tar.to_str().unwrap(),
        ],
    );
    let podman = Podman::new(&tmp.path().join("podman"));
    let loaded = podman.load(&tar);
    let image = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load: {loaded}"))
        .trim()
        .to_string();

    // An upstream registry with an image.
    let reg = Registry::start(RegistryAuth::None);
    let src_root = tmp.path().join("src");
    let src = Store::open(&src_root).unwrap();
    make_busybox_image(
        &src,
        "busybox:latest",
        &[busybox_files(&[("etc/x", b"x\n")])],
    );
    common::run_ok(
        std::process::Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
            .arg(format!(
                "oci:{}:docker.io/library/busybox:latest",
                src_root.display()
            ))
            .arg(format!("docker://{}/team/bb:1", reg.host())),
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let name = format!("lw-proxy-test-{port}");
    // The image's entry point listens on 0.0.0.0:8080; on the host network the test keeps to loopback.
    common::run_ok(podman.cmd().args([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--entrypoint",
        "/layerwright",
        &image,
        "proxy",
        "--addr",
        &addr.to_string(),
        "--cache-dir",
        "/cache",
        "--allow-upstream",
        &reg.host(),
        "--cors-origin",
        "http://127.0.0.1:1",
    ]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the container's proxy did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let get = |path: &str, accept: &str| {
        raw(
            addr,
            "GET",
            path,
            &[("Host", addr.to_string()), ("Accept", accept.to_string())],
            b"",
        )
    };
    let base = format!("/proxy/{}/v2/team/bb", reg.host());
    let m = get(&format!("{base}/manifests/1"), lw_oci::media::OCI_MANIFEST);
    assert_eq!(m.status, 200, "{}", m.text());
    let manifest: Manifest = serde_json::from_slice(&m.body).unwrap();
    for round in 0..2 {
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let r = get(&format!("{base}/blobs/{}", d.digest), "*/*");
            assert_eq!(r.status, 200);
            assert_eq!(Digest::sha256_of(&r.body), d.digest);
            assert_eq!(
                r.header("x-cache"),
                if round == 0 { None } else { Some("HIT") },
                "round {round}"
            );
        }
    }
    let logs = common::run_ok(podman.cmd().args(["logs", &name]));
    let _ = podman.cmd().args(["rm", "-f", &name]).output();
    println!("proxy image: built by layerwright, run by podman, pulled through twice (second from /cache)\n{logs}");
}
