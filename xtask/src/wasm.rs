//! `xtask test`'s browser-side part: installs the wasm-bindgen test runner and Chromium when missing, then runs the
//! wasm32 suites of `wasm-tests/` in node and in headless Chromium (through chromedriver).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// The package whose `tests/` hold the wasm-bindgen-test suites.
const SUITE_PACKAGE: &str = "lw-wasm-tests";
const RUNNER: &str = "wasm-bindgen-test-runner";
/// The suites (one binary, tests/tests.rs) build 1 MiB layers in an unoptimised wasm build: allow more than the
/// runner's 20 s default.
const TEST_TIMEOUT_SECS: &str = "180";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repo")
        .to_path_buf()
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The version of the `wasm-bindgen` package in Cargo.lock: the runner must be exactly this version, since the
/// runner and the library share an unstable ABI.
pub fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
            {
                return Ok(v.to_string());
            }
        }
    }
    bail!("no wasm-bindgen package in Cargo.lock (is lw-wasm-tests in the workspace?)")
}

/// Where `cargo install` puts binaries, so a fresh install is found even when it is not on PATH.
fn cargo_home_bin() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|h| h.join("bin"))
}

/// The runner's version as it reports it (`wasm-bindgen-test-runner 0.2.130` → `0.2.130`), if it runs.
fn runner_version(runner: &Path) -> Option<String> {
    let out = Command::new(runner).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

/// A runner of exactly `version`: the one on PATH or in cargo's bin dir, else a fresh `cargo install`.
pub fn ensure_wasm_bindgen_cli(version: &str) -> Result<PathBuf> {
    let mut candidates = vec![PathBuf::from(RUNNER)];
    if let Some(bin) = cargo_home_bin() {
        candidates.push(bin.join(RUNNER));
    }
    for c in &candidates {
        if runner_version(c).as_deref() == Some(version) {
            return Ok(c.clone());
        }
    }
    eprintln!("xtask: installing wasm-bindgen-cli {version} (takes a few minutes)");
    let install = |locked: bool| -> Result<bool> {
        let mut c = Command::new(cargo_bin());
        c.args(["install", "wasm-bindgen-cli", "--version", version]);
        if locked {
            c.arg("--locked");
        }
        eprintln!("xtask: running {c:?}");
        Ok(c.status().context("starting cargo install")?.success())
    };
    // --locked first, as the CLI's authors tested it; when a locked dependency is not in the registry we reach
    // (seen here: webpki-roots 1.0.11), resolve afresh rather than fail.
    if !install(true)? {
        eprintln!("xtask: the locked install failed; retrying without --locked");
        if !install(false)? {
            bail!("cargo install wasm-bindgen-cli --version {version} failed");
        }
    }
    for c in &candidates {
        if runner_version(c).as_deref() == Some(version) {
            return Ok(c.clone());
        }
    }
    bail!("{RUNNER} {version} was installed but cannot be found on PATH or in $CARGO_HOME/bin")
}

/// Where the wasm32 suites run.
#[derive(Debug, Clone, Copy)]
enum Host {
    Node,
    Chromium,
}

/// Run `cargo test -p lw-wasm-tests --target wasm32-unknown-unknown` with the runner in `host`, streaming the
/// output, and fail unless every test binary reported `test result: ok` with at least one test passed.
fn run_suites(
    root: &Path,
    runner: &Path,
    host: Host,
    registries: &[(&str, String)],
    lint: &[(&str, std::ffi::OsString)],
) -> Result<()> {
    let mut c = Command::new(cargo_bin());
    // The same for both hosts, or the second would rebuild.
    for (k, v) in lint {
        c.env(k, v);
    }
    // The registry suite reads these at compile time (option_env!): the browser side cannot ask the runner.
    for (k, v) in registries {
        c.env(k, v);
    }
    c.current_dir(root)
        .args([
            "test",
            "-p",
            SUITE_PACKAGE,
            "--target",
            "wasm32-unknown-unknown",
            // The runner rejects libtest's --quiet; --nocapture shows the suites' pass lines.
            "--",
            "--nocapture",
        ])
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner)
        .env("WASM_BINDGEN_TEST_TIMEOUT", TEST_TIMEOUT_SECS)
        // Only this function picks the host: ignore any mode or remote driver left in the environment.
        .env_remove("WASM_BINDGEN_USE_BROWSER")
        .env_remove("WASM_BINDGEN_TEST_ONLY_WEB")
        .env_remove("WASM_BINDGEN_TEST_ONLY_NODE")
        .env_remove("CHROMEDRIVER_REMOTE")
        .env_remove("GECKODRIVER_REMOTE")
        .env_remove("GECKODRIVER")
        .env_remove("SAFARIDRIVER")
        .env_remove("MSEDGEDRIVER")
        .stdout(Stdio::piped());
    if let Host::Chromium = host {
        let driver = which("chromedriver").context("chromedriver not found on PATH")?;
        c.env("WASM_BINDGEN_USE_BROWSER", "1")
            .env("CHROMEDRIVER", driver)
            // Chromium as root needs --no-sandbox; the rest keeps it off the network (only loopback here).
            .env(
                "WASM_BINDGEN_TEST_WEBDRIVER_JSON",
                root.join("wasm-tests/webdriver.json"),
            );
    }
    eprintln!("xtask: running wasm32 suites in {host:?}: {c:?}");
    let mut child = c.spawn().context("starting cargo test for wasm32")?;
    let mut passed = 0u64;
    let mut ok_results = 0u64;
    let mut bad_results = Vec::new();
    let out = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(out).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            let n = rest
                .split(';')
                .find_map(|p| p.trim().strip_suffix(" passed"))
                .and_then(|p| p.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            if rest.starts_with("ok.") {
                ok_results += 1;
                passed += n;
            } else {
                bad_results.push(line.clone());
            }
        }
    }
    let st = child.wait()?;
    if !st.success() || !bad_results.is_empty() {
        bail!("wasm32 suites failed in {host:?} ({st}): {bad_results:?}");
    }
    if ok_results == 0 || passed == 0 {
        bail!("wasm32 suites in {host:?} ran no test (was a suite skipped?)");
    }
    eprintln!("xtask: wasm32 suites in {host:?}: {passed} tests passed");
    Ok(())
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// Install what the wasm32 suites need when missing, then run them in node and in headless Chromium; `lint`:
/// variables for the suites' build (clippy's driver, so that the crates it compiles for wasm32 are linted as they
/// are built).
pub fn test_wasm(lint: &[(&str, std::ffi::OsString)]) -> Result<()> {
    let root = repo_root();
    let step = |what: &str, t: Instant| {
        eprintln!("xtask: {what}: {:.1}s", t.elapsed().as_secs_f64());
    };
    let t = Instant::now();
    crate::deps::ensure_wasm_target()?;
    let version = locked_wasm_bindgen_version(&root)?;
    let runner = ensure_wasm_bindgen_cli(&version)?;
    crate::deps::ensure_debian_packages(&[
        ("chromium", "chromium"),
        ("chromium-driver", "chromedriver"),
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
    ])?;
    step("wasm test tools ready", t);
    // A docker archive written by skopeo, for the docker-archive suite (read at compile time by wasm-tests/build.rs).
    let fixtures = std::env::temp_dir().join(format!("lw-wasm-fixtures-{}", std::process::id()));
    let docker_archive = crate::wasm_fixtures::docker_archive(&fixtures)?;
    let cors = TestRegistry::start(true)?;
    let nocors = TestRegistry::start(false)?;
    let registries = [
        ("LW_TEST_REGISTRY", cors.addr.clone()),
        ("LW_TEST_REGISTRY_NOCORS", nocors.addr.clone()),
        (
            "LW_TEST_DOCKER_ARCHIVE",
            docker_archive.display().to_string(),
        ),
    ];
    let t = Instant::now();
    run_suites(&root, &runner, Host::Node, &registries, lint)?;
    step("wasm32 suites in node (incl. build)", t);
    let t = Instant::now();
    run_suites(&root, &runner, Host::Chromium, &registries, lint)?;
    step("wasm32 suites in headless Chromium", t);
    let _ = std::fs::remove_dir_all(&fixtures);
    Ok(())
}

/// A Distribution registry (`docker-registry`) on a free loopback port for the wasm registry suite: with CORS
/// headers (what a browser needs: allowed origin, methods, request headers, and the exposed response headers the
/// client reads), or without them (the missing-CORS case). Stopped and removed on drop.
struct TestRegistry {
    addr: String,
    child: std::process::Child,
    dir: PathBuf,
}

impl TestRegistry {
    fn start(cors: bool) -> Result<TestRegistry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir =
            std::env::temp_dir().join(format!("lw-wasm-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let headers = if cors {
            r#"  headers:
    Access-Control-Allow-Origin: ["*"]
    Access-Control-Allow-Methods: ["HEAD, GET, OPTIONS, DELETE, POST, PUT, PATCH"]
    Access-Control-Allow-Headers: ["Authorization, Accept, Content-Type, Content-Range, Range"]
    Access-Control-Expose-Headers: ["Docker-Content-Digest, Location, WWW-Authenticate, Content-Length, Content-Range, Range"]
"#
        } else {
            ""
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{headers}",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config)?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let reg = TestRegistry { addr, child, dir };
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&reg.addr).is_err() {
            if Instant::now() > deadline {
                bail!("docker-registry did not start on {}", reg.addr);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!(
            "xtask: registry for the wasm suites on {} (CORS: {cors})",
            reg.addr
        );
        Ok(reg)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_locked_wasm_bindgen_version() {
        let v = locked_wasm_bindgen_version(&repo_root()).unwrap();
        assert!(v.starts_with("0.2."), "{v}");
    }
}
