//! Installing what the commands need when it is missing: Debian packages (as root), the wasm32 target, the site's
//! npm packages.

use std::process::Command;

use anyhow::{bail, Result};

/// Debian packages the tests use, and a command that shows each is present.
const PACKAGES: &[(&str, &str)] = &[
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("podman", "podman"),
    ("runc", "runc"),
    ("buildah", "buildah"),
    ("docker-registry", "docker-registry"),
    ("busybox-static", "/bin/busybox"),
    ("apache2-utils", "htpasswd"),
    ("pigz", "pigz"),
    ("openssl", "openssl"),
    // Independent compressors for the compressed archives `load` reads.
    ("xz-utils", "xz"),
    ("bzip2", "bzip2"),
    ("zstd", "zstd"),
    // Docker 20.10, the reference for `load` and `serve` interop; an absolute path because a newer client may
    // come first on $PATH.
    ("docker.io", "/usr/sbin/dockerd"),
    // RUN's default network (a private namespace with outbound access).
    ("slirp4netns", "slirp4netns"),
    // The Debian base image for the end-to-end nginx and multi-stage builds.
    ("debootstrap", "debootstrap"),
    // The HTTP client that fetches index.html from the nginx container's published port.
    ("curl", "curl"),
    // The C side of ring for the static (musl) binary in the proxy's image.
    ("musl-tools", "musl-gcc"),
    // ADD <git URL> checks out with git (the BuildKit corpus's add_git case).
    ("git", "git"),
    // `build --ssh`: the corpus's agent (ssh-agent, ssh-keygen, ssh-add) and `--ssh ID=KEY`.
    ("openssh-client", "ssh-agent"),
    // The BuildKit corpus's git over SSH (add_git_ssh): an sshd of the test's own on loopback.
    ("openssh-server", "/usr/sbin/sshd"),
    // The BuildKit corpus in Chromium: certutil puts the corpus's test CA in the NSS database of the test browser's
    // private HOME, so that the tab trusts the corpus's HTTPS server as a user's browser trusts their CA.
    ("libnss3-tools", "certutil"),
    // libzstd for wasm32 (the zstd layer encoder), compiled by zstd-sys.
    ("clang", "clang"),
    ("llvm", "llvm-ar"),
];

fn present(cmd: &str) -> bool {
    if cmd.starts_with('/') {
        return std::path::Path::new(cmd).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

pub fn ensure_debian_packages(list: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = list
        .iter()
        .filter(|(_, cmd)| !present(cmd))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {} (run as root, or: sudo apt-get install {})",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let st = Command::new("apt-get").args(["update", "-qq"]).status()?;
    if !st.success() {
        bail!("apt-get update failed");
    }
    let st = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !st.success() {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}

/// The C toolchain zstd-sys needs to compile libzstd for wasm32 (the zstd layer encoder): clang and llvm-ar.
pub const WASM_C_TOOLCHAIN: &[(&str, &str)] = &[("clang", "clang"), ("llvm", "llvm-ar")];

pub fn ensure_wasm_target() -> Result<()> {
    ensure_debian_packages(WASM_C_TOOLCHAIN)?;
    ensure_target("wasm32-unknown-unknown")
}

/// The Rust target the proxy's static binary is built for.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

fn ensure_target(target: &str) -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    eprintln!("xtask: adding the {target} target");
    let st = Command::new("rustup")
        .args(["target", "add", target])
        .status()?;
    if !st.success() {
        bail!("rustup target add {target} failed");
    }
    Ok(())
}

/// rustfmt and clippy: `cargo xtask test` checks formatting and runs clippy's purity rules.
fn ensure_components(components: &[&str]) -> Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output()?;
    let installed = String::from_utf8_lossy(&out.stdout).into_owned();
    for c in components {
        if installed
            .lines()
            .any(|l| l.trim().starts_with(&format!("{c}-")))
        {
            continue;
        }
        eprintln!("xtask: adding the {c} component");
        if !Command::new("rustup")
            .args(["component", "add", c])
            .status()?
            .success()
        {
            bail!("rustup component add {c} failed");
        }
    }
    Ok(())
}

/// The site's npm packages (www/package.json, pinned by package-lock.json: esbuild, playwright-core, typescript, ...),
/// with `npm ci` when `www/node_modules` lacks one the checks need.
pub fn ensure_site_packages() -> Result<()> {
    let www = crate::repo_root().join("www");
    if www.join("node_modules/typescript/bin/tsc").is_file() {
        return Ok(());
    }
    if !present("npm") {
        bail!(
            "npm not found on PATH (the site's type check and build need it: apt-get install npm)"
        );
    }
    eprintln!("xtask: installing the site's npm packages (npm ci in www/)");
    let st = Command::new("npm").arg("ci").current_dir(&www).status()?;
    if !st.success() {
        bail!("npm ci in www/ failed");
    }
    Ok(())
}

pub fn ensure_all() -> Result<()> {
    ensure_debian_packages(PACKAGES)?;
    ensure_wasm_target()?;
    ensure_target(MUSL_TARGET)?;
    ensure_components(&["rustfmt", "clippy"])?;
    ensure_site_packages()?;
    Ok(())
}
