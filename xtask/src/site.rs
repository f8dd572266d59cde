//! `xtask test`'s site part: builds the site and the `layerwright` CLI, then runs the Playwright suites of `www/`
//! (they start their own loopback registries, `layerwright serve` and a private podman) with the CLI's path.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The debug `layerwright` binary, built (a no-op after the workspace tests) in the target dir cargo uses.
fn cli_binary() -> Result<PathBuf> {
    let mut c = crate::cargo();
    c.args(["build", "--quiet", "-p", "layerwright"]);
    crate::run(c)?;
    let target = crate::target_dir();
    let bin = target.join("debug/layerwright");
    if !bin.is_file() {
        bail!(
            "cargo build -p layerwright did not produce {}",
            bin.display()
        );
    }
    Ok(bin)
}

/// The site's JS type check: every `www/src` module is `// @ts-check`ed by TypeScript's `tsc` against the wasm
/// module's `crates/wasm/js/index.d.ts` (www/jsconfig.json; nothing is emitted).
pub fn typecheck() -> Result<()> {
    crate::deps::ensure_site_packages()?;
    let www = crate::repo_root().join("www");
    let mut c = Command::new("node");
    c.arg(www.join("node_modules/typescript/bin/tsc"))
        .args(["--noEmit", "-p"])
        .arg(www.join("jsconfig.json"));
    crate::run(c).context("the site's JS type check (tsc -p www/jsconfig.json)")?;
    eprintln!("xtask: JS type check (tsc, www/jsconfig.json): ok");
    Ok(())
}

/// The Debian packages the site's browser tests use.
fn ensure_test_packages() -> Result<()> {
    crate::deps::ensure_debian_packages(&[
        ("chromium", "chromium"),
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("apache2-utils", "htpasswd"),
        ("podman", "podman"),
        ("runc", "runc"),
        ("busybox-static", "/bin/busybox"),
        // The BuildKit corpus in Chromium: serve's agent and the test's sshd (git over SSH), and the test CA in
        // the browser's NSS database (its HTTPS cases).
        ("openssh-client", "ssh-agent"),
        ("openssh-server", "/usr/sbin/sshd"),
        ("libnss3-tools", "certutil"),
    ])
}

/// Build the site, then run its browser tests (Chromium through playwright-core) with `LAYERWRIGHT_BIN` set: `cli`,
/// or the debug binary built here. `cargo xtask test` passes the one its workspace tests built: `cargo build -p
/// layerwright` resolves other features for shared dependencies (syn, digest, ...) than the workspace's tests, so it
/// would compile the CLI and 31 of its crates a second time.
pub fn test_site(cli: Option<PathBuf>) -> Result<()> {
    ensure_test_packages()?;
    crate::build::build()?;
    let bin = match cli {
        Some(bin) if bin.is_file() => bin,
        Some(bin) => bail!("no layerwright binary at {}", bin.display()),
        None => cli_binary()?,
    };
    playwright(&bin)
}

/// The browser tests on a site already built (`cargo xtask test` builds it beside the native tests).
pub fn test_built_site(cli: PathBuf) -> Result<()> {
    ensure_test_packages()?;
    if !cli.is_file() {
        bail!("no layerwright binary at {}", cli.display());
    }
    playwright(&cli)
}

fn playwright(bin: &std::path::Path) -> Result<()> {
    let mut c = Command::new("npm");
    c.args(["--prefix", "www", "test"])
        .current_dir(crate::repo_root())
        .env("LAYERWRIGHT_BIN", bin);
    crate::run(c).context("the site's browser tests")
}
