//! `cargo xtask`: the project's two commands (`run`, `test`) plus `bench`; installs what they need when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

mod bench;
mod bench_buildkit;
mod bench_debian;
mod bench_run;
mod bench_serve;
mod bench_tools;
mod bench_wasm;
mod build;
mod deps;
mod guest;
mod guest_cpio;
mod guest_image;
mod site;
mod wasm;
mod wasm_fixtures;

/// The core crates: pure (crates/clippy.toml), and built for both native and wasm32.
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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repo")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo_root());
    c
}

/// Run a command, streaming its output; fail with its exit status.
fn run(mut c: Command) -> Result<()> {
    eprintln!("xtask: running {c:?}");
    let st = c.status().with_context(|| format!("starting {c:?}"))?;
    if !st.success() {
        bail!("{c:?} failed with {st}");
    }
    Ok(())
}

fn usage() -> &'static str {
    "usage: cargo xtask <command>\n\n\
     commands:\n  \
     run [-- ARGS]   build the site and the CLI, then serve the playground (with ARGS: run the CLI with them)\n  \
     guest           only the tab's Linux guest into www/guest and www/dist/guest (kernel, initramfs, BIOS, saved\n                  \
     state, busybox); `build` makes it part of the site\n  \
     demo            a tour of the CLI: build, images, history, save\n  \
     build [--proxy URL] build the wasm core and the static site into www/dist (URL: the site's default registry\n                  \
     proxy, a `layerwright proxy` for a static deployment)\n  \
     test            install what the tests need, then run every test (native, wasm32 build, interop)\n  \
     test-site       only the site: its JS type check (tsc), then its browser tests (Playwright: playground, inspector, registries, podman, quality)\n  \
     bench [--quick] [--layers-only] benchmarks next to reference tools; prints a table and writes target/bench.json\n  \
     bench --wasm-only [--quick|--smoke] [--tree-mb N] [--wasm-profile] [--no-site-build]\n                  \
     only the headless-Chromium benchmarks and zstd (target/bench-wasm.json); `bench --no-wasm` skips them;\n                  \
     with either, `--buildkit PATH` (buildkitd and buildctl, or their directory) adds BuildKit's COPY build\n  \
     deps            only install the test dependencies"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("test-site") => site::typecheck().and_then(|()| site::test_site(None)),
        Some("run") => run_main(&args[1..]),
        Some("build") => match args.get(1).map(String::as_str) {
            None => build::build(),
            Some("--proxy") => match args.get(2) {
                Some(url) => build::build_with_proxy(url),
                None => Err(anyhow::anyhow!("--proxy wants the proxy's URL")),
            },
            Some(other) => Err(anyhow::anyhow!("build: unknown argument {other:?}")),
        },
        Some("guest") => guest::build_into_site(),
        Some("demo") => demo_main(),
        Some("bench") => bench::main(&args[1..]),
        Some("deps") => deps::ensure_all(),
        Some("-h") | Some("--help") | Some("help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => {
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints how long each part of `test` took, so a slow run shows where its time went.
fn phase(what: &str, since: &mut std::time::Instant) {
    eprintln!("xtask: phase {what}: {:.0}s", since.elapsed().as_secs_f64());
    *since = std::time::Instant::now();
}

fn test() -> Result<()> {
    let start = std::time::Instant::now();
    let mut t = start;
    deps::ensure_all()?;
    phase("dependencies", &mut t);
    // Formatting is checked, so it stays as `cargo fmt` leaves it.
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    // Clippy over everything, warnings fail the run. crates/clippy.toml adds the purity rules for the core
    // (no file system, sockets, clock, env or sleep); the wasm32 pass also proves the core builds for the tab.
    let mut c = cargo();
    c.args([
        "clippy",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    let mut c = cargo();
    c.args([
        "clippy",
        "--quiet",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "lw-wasm",
        // The on-demand zstd module's crate (libzstd; no I/O, so crates/clippy.toml's rules hold for it too).
        "-p",
        "lw-zstd",
        // The on-demand bzip2/xz module's crate (pure Rust, no I/O).
        "-p",
        "lw-archive",
        // The on-demand linter's and layer analysis's crates (pure Rust, no I/O).
        "-p",
        "lw-lint",
        "-p",
        "lw-analysis",
        // The on-demand git client's crate (pure Rust, sans I/O).
        "-p",
        "lw-git",
    ]);
    for k in PURE_CRATES {
        c.args(["-p", k]);
    }
    c.args(["--", "-D", "warnings"]);
    run(c)?;
    eprintln!(
        "xtask: clippy (native, and wasm32 for the core crates, lw-wasm and the on-demand modules' crates): ok"
    );
    phase("fmt and clippy", &mut t);
    // The site's JS, checked against the wasm module's types.
    site::typecheck()?;
    // The static binary the proxy's image is built around (native-cli/tests/proxy_image.rs), in the `static-test`
    // profile (Cargo.toml: no debug info, so a fifth of release's size).
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
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let target_dir = if target_dir.is_absolute() {
        target_dir
    } else {
        repo_root().join(target_dir)
    };
    let static_bin = target_dir
        .join(deps::MUSL_TARGET)
        .join(STATIC_TEST_PROFILE)
        .join("layerwright");
    // Every native test; corpus tests print their pass counts (--show-output keeps them visible).
    let mut c = cargo();
    c.env("LAYERWRIGHT_STATIC_BIN", &static_bin);
    // Tools were just installed: a test that finds one missing fails instead of skipping.
    c.env("LW_REQUIRE_TOOLS", "1");
    c.args([
        "test",
        "--workspace",
        "--exclude",
        "xtask",
        "--no-fail-fast",
        "--",
        "--show-output",
        "--test-threads",
        NATIVE_TEST_THREADS,
    ]);
    run(c)?;
    phase("native tests", &mut t);
    let mut c = cargo();
    c.args(["test", "-p", "xtask", "--quiet"]);
    run(c)?;
    // The browser side: the same core in node and in headless Chromium.
    wasm::test_wasm()?;
    phase("xtask and wasm32 suites", &mut t);
    // The site: built from the wasm core, then driven in headless Chromium by Playwright, with the CLI the
    // workspace tests built (target/debug/layerwright).
    site::test_site(Some(target_dir.join("debug/layerwright")))?;
    phase("site build and Playwright", &mut t);
    eprintln!(
        "xtask: all tests passed in {:.0}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn release_cli() -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--release", "--quiet", "-p", "layerwright"]);
    run(c)?;
    Ok(repo_root().join("target/release/layerwright"))
}

fn demo_main() -> Result<()> {
    demo(&release_cli()?)
}

/// The main job: the playground and the CLI. With no arguments, build the site (embedded into the CLI) and serve
/// it on 127.0.0.1 with the embedded registry, registry proxy and RUN backend; needs no outside service.
fn run_main(args: &[String]) -> Result<()> {
    let args: Vec<String> = args.iter().filter(|a| *a != "--").cloned().collect();
    if args.is_empty() {
        build::build()?;
        let bin = release_cli()?;
        println!("Open the URL below (it carries the session token). Ctrl-C stops the server.");
        return run({
            let mut c = Command::new(&bin);
            c.args(["serve", "--addr", "127.0.0.1:8080"]);
            c
        });
    }
    let bin = release_cli()?;
    run({
        let mut c = Command::new(&bin);
        c.args(&args);
        c
    })
}

/// With no arguments: a tour of the CLI on a store under target/demo, using nothing outside this machine:
/// build an image from a small generated context, list it, show its history, save it as an OCI/docker tarball.
fn demo(bin: &Path) -> Result<()> {
    let dir = repo_root().join("target/demo");
    let ctx = dir.join("context");
    std::fs::create_dir_all(ctx.join("site"))?;
    std::fs::write(
        ctx.join("site/index.html"),
        "<h1>Hello from Layerwright</h1>\n",
    )?;
    std::fs::write(
        ctx.join("notes.md"),
        "not copied: excluded by .dockerignore\n",
    )?;
    std::fs::write(ctx.join(".dockerignore"), "*.md\n")?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "# A RUN-free image: the browser playground builds the same one.\n\
         FROM scratch AS site\n\
         ARG VERSION=1.0\n\
         COPY site/ /srv/www/\n\
         LABEL org.opencontainers.image.version=$VERSION\n\
         EXPOSE 8080\n\
         WORKDIR /srv/www\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n",
    )?;
    let store = dir.join("store");
    let lw = |args: &[&str]| -> Result<()> {
        println!("\n$ layerwright {}", args.join(" "));
        run({
            let mut c = Command::new(bin);
            c.arg("--root").arg(&store).args(args);
            c
        })
    };
    let tar = dir.join("demo-site.tar");
    lw(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "demo/site:1.0",
        ctx.to_str().unwrap(),
    ])?;
    lw(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "demo/site:1.0",
        ctx.to_str().unwrap(),
    ])?;
    lw(&["images"])?;
    lw(&["history", "demo/site:1.0"])?;
    lw(&["save", "demo/site:1.0", "-o", tar.to_str().unwrap()])?;
    println!(
        "\nThe tarball {} loads with `docker load`, `podman load` or `layerwright load`.",
        tar.display()
    );
    println!("Run `cargo xtask run -- --help` for every command.");
    Ok(())
}
