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
mod test_all;
mod wasm;
mod wasm_fixtures;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repo")
        .to_path_buf()
}

/// The target dir cargo uses, absolute.
pub fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    if dir.is_absolute() {
        dir
    } else {
        repo_root().join(dir)
    }
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
        Some("test") => test_all::test(),
        // `test`'s browser side, run beside the native tests (not for direct use).
        Some("test-browser-side") => test_all::browser_side(),
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
