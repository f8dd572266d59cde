//! `cargo xtask test`: every check and test, in an order that keeps the machine busy: the browser side (wasm32
//! suites, site build) runs beside the native tests, which mostly wait.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cargo, deps, repo_root, run, site, wasm};

/// The core crates: pure (crates/clippy.toml), and built for both native and wasm32 (linted there as lw-wasm's
/// dependencies in the wasm32 suites' build; a unit test keeps them its dependencies).
#[cfg(test)]
const PURE_CRATES: &[&str] = &[
    "lw-oci",
    "lw-layer",
    "lw-dockerfile",
    "lw-engine",
    "lw-registry",
];

/// Threads for the native tests (libtest's default is one per core). They mostly wait (containers, registries,
/// daemons, builds in runc, sleeps between kills): the CLI's integration tests used 367 s of CPU (user + sys) in a
/// 2,096 s run whose tests add up to 4,010 s, so two threads on two cores left the machine mostly idle, and the
/// long tests that the alphabetical order starts last (store_kills) made a tail. With 6 threads the same tests
/// took 763 s (271 s of CPU), every test passing, on the same shared machine under a heavier load.
const NATIVE_TEST_THREADS: &str = "6";

/// The Cargo profile of the static binary for the proxy image test (see Cargo.toml).
const STATIC_TEST_PROFILE: &str = "static-test";

/// Prints how long each part of `test` took, so a slow run shows where its time went.
fn phase(what: &str, since: &mut Instant) {
    eprintln!("xtask: phase {what}: {:.0}s", since.elapsed().as_secs_f64());
    *since = Instant::now();
}

pub fn test() -> Result<()> {
    let start = Instant::now();
    let mut t = start;
    deps::ensure_all()?;
    phase("dependencies", &mut t);
    // Formatting is checked, so it stays as `cargo fmt` leaves it.
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    // Clippy over everything, warnings fail the run. crates/clippy.toml adds the purity rules for the core
    // (no file system, sockets, clock, env or sleep); the wasm32 pass also proves the core builds for the tab. The
    // workspace's native crates are linted while their tests are built (below); xtask here, so that its own binary,
    // which is running, is not rebuilt.
    let mut c = cargo();
    c.args([
        "clippy",
        "--quiet",
        "-p",
        "xtask",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    eprintln!("xtask: clippy (xtask): ok");
    phase("fmt and clippy", &mut t);
    // The site's JS, checked against the wasm module's types.
    site::typecheck()?;
    // The static binary the proxy's image is built around (native-cli/tests/proxy_image.rs), in the `static-test`
    // profile (Cargo.toml: unoptimised, no debug info; nothing measures its speed).
    let mut c = cargo();
    c.args([
        "build",
        "--quiet",
        "--profile",
        STATIC_TEST_PROFILE,
        "-p",
        "layerwright",
        "--target",
        deps::MUSL_TARGET,
    ]);
    run(c)?;
    phase("tsc and the static binary", &mut t);
    let target_dir = crate::target_dir();
    let static_bin = target_dir
        .join(deps::MUSL_TARGET)
        .join(STATIC_TEST_PROFILE)
        .join("layerwright");
    // Every native test; corpus tests print their pass counts (--show-output keeps them visible). Built first, so
    // that the browser side's compiles start after them; cargo does not hold the target dir while tests run. They
    // are compiled through clippy's driver, as `cargo clippy --workspace --all-targets -- -D warnings` would lint
    // them, so that the dependencies are compiled once (a separate `cargo clippy` checked all of them again: 247 s
    // of a cold run on 2 cores); the same variables for the run, or cargo would rebuild the workspace's crates.
    let driver = clippy_driver()?;
    let native = |extra: &[&str]| {
        let mut c = cargo();
        c.env("RUSTC_WORKSPACE_WRAPPER", &driver);
        c.env("CLIPPY_ARGS", CLIPPY_DENY_WARNINGS);
        c.env("LAYERWRIGHT_STATIC_BIN", &static_bin);
        // Tools were just installed: a test that finds one missing fails instead of skipping.
        c.env("LW_REQUIRE_TOOLS", "1");
        c.args([
            "test",
            "--workspace",
            "--exclude",
            "xtask",
            "--no-fail-fast",
        ]);
        c.args(extra);
        c
    };
    run(native(&["--all-targets", "--no-run"]))
        .context("building (and linting) the native tests")?;
    eprintln!("xtask: clippy (native, every target): ok");
    phase("native test build and clippy", &mut t);
    // The browser side meanwhile: the native tests mostly wait (containers, registries, kills), so its compiles,
    // wasm-opt and guest build fit in their time instead of after it.
    let side = BrowserSide::start(&target_dir)?;
    let native_result = run(native(&[
        "--",
        "--show-output",
        "--test-threads",
        NATIVE_TEST_THREADS,
    ]));
    phase("native tests", &mut t);
    let side_result = side.finish();
    phase("the rest of the browser side", &mut t);
    native_result?;
    side_result?;
    let mut c = cargo();
    c.args(["test", "-p", "xtask", "--quiet"]);
    run(c)?;
    // The site, built above from the wasm core, driven in headless Chromium by Playwright, with the CLI the
    // workspace tests built (target/debug/layerwright).
    site::test_built_site(target_dir.join("debug/layerwright"))?;
    phase("xtask tests and Playwright", &mut t);
    eprintln!(
        "xtask: all tests passed in {:.0}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `-D warnings` as clippy's driver reads its arguments from `cargo clippy` (each followed by this separator); the
/// driver fails the build on any warning, as `cargo clippy -- -D warnings` does.
const CLIPPY_DENY_WARNINGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

/// The toolchain's `clippy-driver` (beside the rustc cargo runs), the rustc wrapper `cargo clippy` itself uses.
fn clippy_driver() -> Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(repo_root())
        .output()
        .context("rustc --print sysroot")?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let driver = Path::new(&sysroot).join("bin/clippy-driver");
    if !driver.is_file() {
        bail!(
            "no clippy-driver at {} (rustup component add clippy)",
            driver.display()
        );
    }
    Ok(driver)
}

/// `cargo xtask test-browser-side`: the wasm32 suites (in node and headless Chromium), then the site's build
/// (wasm modules, wasm-opt, guest, bundle) that Playwright tests.
pub fn browser_side() -> Result<()> {
    let mut t = Instant::now();
    // The same core in node and in headless Chromium. Clippy for wasm32 too: the crates the suites' build compiles
    // (lw-wasm, the core crates, the on-demand modules' crates) are linted as they are built.
    let lint = [
        ("RUSTC_WORKSPACE_WRAPPER", clippy_driver()?.into_os_string()),
        ("CLIPPY_ARGS", CLIPPY_DENY_WARNINGS.into()),
    ];
    wasm::test_wasm(&lint)?;
    eprintln!(
        "xtask: clippy (wasm32: the core crates, lw-wasm and the on-demand modules' crates): ok"
    );
    phase("wasm32 clippy and suites", &mut t);
    crate::build::build()?;
    phase("site build", &mut t);
    Ok(())
}

/// [`browser_side`] in a process of its own beside the native tests, its output kept in a log and printed when it
/// ends, so that the two do not interleave.
struct BrowserSide {
    child: Child,
    log: PathBuf,
}

impl BrowserSide {
    fn start(target_dir: &Path) -> Result<BrowserSide> {
        std::fs::create_dir_all(target_dir)?;
        let log = target_dir.join("xtask-browser-side.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let exe = std::env::current_exe().context("finding xtask's own binary")?;
        eprintln!(
            "xtask: the wasm32 suites and the site build run beside the native tests (output in {}, shown when \
             they end)",
            log.display()
        );
        let child = Command::new(exe)
            .arg("test-browser-side")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting xtask test-browser-side")?;
        Ok(BrowserSide { child, log })
    }

    /// Waits for it, then prints its output; fails when it failed.
    fn finish(mut self) -> Result<()> {
        let st = self.child.wait()?;
        let text = std::fs::read(&self.log).unwrap_or_default();
        eprintln!("xtask: ---- the wasm32 suites and the site build ----");
        eprint!("{}", String::from_utf8_lossy(&text));
        eprintln!("xtask: ---- (end of the wasm32 suites and the site build) ----");
        if !st.success() {
            bail!("the wasm32 suites or the site build failed ({st})");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lint pass relies on clippy's driver reading `CLIPPY_ARGS`: a crate with a clippy warning must fail to
    /// build that way, or a toolchain that changed it would silently stop linting.
    #[test]
    fn the_native_build_fails_on_a_clippy_warning() {
        let dir = std::env::temp_dir().join(format!("lw-xtask-clippy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"canary\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n",
        )
        .unwrap();
        let build = |src: &str| {
            std::fs::write(dir.join("src/lib.rs"), src).unwrap();
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--quiet", "--offline"])
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", dir.join("target"))
                .env("RUSTC_WORKSPACE_WRAPPER", clippy_driver().unwrap())
                .env("CLIPPY_ARGS", CLIPPY_DENY_WARNINGS)
                .output()
                .unwrap()
        };
        let bad = build("pub fn f(v: &Vec<u8>) -> usize {\n    v.len()\n}\n");
        let err = String::from_utf8_lossy(&bad.stderr).into_owned();
        let good = build("pub fn f(v: &[u8]) -> usize {\n    v.len()\n}\n");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!bad.status.success(), "a clippy warning passed:\n{err}");
        assert!(
            err.contains("clippy::ptr_arg") || err.contains("&Vec"),
            "{err}"
        );
        assert!(
            good.status.success(),
            "{}",
            String::from_utf8_lossy(&good.stderr)
        );
    }

    /// The wasm32 lint pass is the suites' build, which compiles lw-wasm and so the core crates: each must stay one
    /// of lw-wasm's dependencies (and the on-demand modules' crates the suites' own).
    #[test]
    fn the_wasm32_suites_build_every_crate_the_tab_runs() {
        let deps = |manifest: &str| -> Vec<String> {
            std::fs::read_to_string(repo_root().join(manifest))
                .unwrap()
                .lines()
                .filter_map(|l| l.split(['.', ' ']).next())
                .filter(|n| n.starts_with("lw-"))
                .map(str::to_string)
                .collect()
        };
        let of_wasm = deps("crates/wasm/Cargo.toml");
        for k in PURE_CRATES {
            assert!(
                of_wasm.iter().any(|d| d == k),
                "{k} is not a dependency of lw-wasm"
            );
        }
        let of_suites = deps("wasm-tests/Cargo.toml");
        for k in [
            "lw-wasm",
            "lw-zstd",
            "lw-archive",
            "lw-lint",
            "lw-analysis",
            "lw-git",
        ] {
            assert!(
                of_suites.iter().any(|d| d == k),
                "{k} is not built by the wasm32 suites"
            );
        }
    }
}
