//! The one policy for a test that cannot run on this machine (a tool missing, not root): under `cargo xtask test`
//! it fails, under plain `cargo test` it says what is missing and passes.

use std::path::{Path, PathBuf};

/// Set (to anything) when a missing tool must fail the test rather than skip it. `cargo xtask test` sets it after
/// installing every tool, so there a missing one is a broken set-up, not a reason to skip.
pub const REQUIRE_ENV: &str = "LW_REQUIRE_TOOLS";

/// The Debian package that provides `tool` (named in skip lines and failures, so the fix is one `apt-get install`).
pub fn package_of(tool: &str) -> &'static str {
    match tool.rsplit('/').next().unwrap_or(tool) {
        "skopeo" => "skopeo",
        "umoci" => "umoci",
        "podman" => "podman",
        "buildah" => "buildah",
        "runc" => "runc",
        "docker" | "dockerd" => "docker.io",
        "docker-registry" => "docker-registry",
        "busybox" => "busybox-static",
        "htpasswd" => "apache2-utils",
        "openssl" => "openssl",
        "zstd" => "zstd",
        "pigz" => "pigz",
        "xz" => "xz-utils",
        "bzip2" => "bzip2",
        "curl" => "curl",
        "debootstrap" => "debootstrap",
        "slirp4netns" => "slirp4netns",
        "python3" => "python3",
        _ => "(unknown package)",
    }
}

/// Where `tool` is: itself when it is a path that exists, else the first match on `$PATH`.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return Path::new(tool).is_file().then(|| PathBuf::from(tool));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Whether `tool` is installed (a path, or a name on `$PATH`).
pub fn have(tool: &str) -> bool {
    find_tool(tool).is_some()
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // /proc/self/status has the real and effective uids; no libc call needed.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The running test's name: libtest names each test's thread after it.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("this test")
        .to_string()
}

/// THE policy: this test cannot run here because of `why`. Panics when [`REQUIRE_ENV`] is set (`cargo xtask
/// test`); otherwise prints `SKIPPED <test>: <why>` to stderr and returns, and the caller returns early.
pub fn cannot_run(why: &str) {
    let test = test_name();
    if std::env::var_os(REQUIRE_ENV).is_some() {
        panic!("{test}: {why}, and {REQUIRE_ENV} is set (cargo xtask test installs every tool)");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// `true` when every tool in `tools` is installed; else [`cannot_run`] names the first missing one and its
/// package, and this returns `false` (the test returns early). Use the [`require!`](crate::require) macro.
pub fn require_tools(tools: &[&str]) -> bool {
    for t in tools {
        if !have(t) {
            cannot_run(&format!(
                "`{t}` is not installed (Debian package {})",
                package_of(t)
            ));
            return false;
        }
    }
    true
}

/// `true` when running as root; else [`cannot_run`] with `what` (what needs root) and `false`.
pub fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    cannot_run(&format!("{what} needs root"));
    false
}

/// Return from the test unless every tool is installed: `require!("skopeo", "umoci");`. Under `cargo xtask test`
/// a missing tool fails the test; under `cargo test` it prints a skip line naming the tool and passes.
/// `require!(root: "mounting a tmpfs")` does the same for tests that need root.
#[macro_export]
macro_rules! require {
    (root: $what:expr) => {
        if !$crate::policy::require_root($what) {
            return;
        }
    };
    (root: $what:expr, $($tool:expr),+ $(,)?) => {
        if !$crate::policy::require_root($what) || !$crate::policy::require_tools(&[$($tool),+]) {
            return;
        }
    };
    ($($tool:expr),+ $(,)?) => {
        if !$crate::policy::require_tools(&[$($tool),+]) {
            return;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_or_a_name_on_path_is_found() {
        assert!(have("/bin/sh"));
        assert!(have("sh"));
        assert!(!have("/no/such/tool"));
        assert!(!have("no-such-tool-lw-test-kit"));
    }

    #[test]
    fn packages_are_named_for_paths_too() {
        assert_eq!(package_of("/usr/sbin/dockerd"), "docker.io");
        assert_eq!(package_of("htpasswd"), "apache2-utils");
    }

    #[test]
    fn the_test_name_comes_from_libtest() {
        let name = test_name();
        assert!(name.ends_with("the_test_name_comes_from_libtest"), "{name}");
    }
}
