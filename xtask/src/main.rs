//! `cargo xtask`: the project's two commands (`run`, `test`) plus `bench`; installs what they need when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

mod bench;
mod deps;

const WASM_CRATES: &[&str] = &[
    "lw-oci",
    "lw-layer",
    "lw-dockerfile",
    "lw-build",
    "lw-registry",
];

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
     run [-- ARGS]   build the release CLI and run it (default: a demo of the image commands)\n  \
     test            install what the tests need, then run every test (native, wasm32 build, interop)\n  \
     bench [--quick] benchmarks next to reference pipelines; prints a table and writes target/bench.json\n  \
     deps            only install the test dependencies"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("run") => run_main(&args[1..]),
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

fn test() -> Result<()> {
    deps::ensure_all()?;
    let start = std::time::Instant::now();
    // The pure crates must build for the browser target.
    let mut c = cargo();
    c.args(["check", "--quiet", "--target", "wasm32-unknown-unknown"]);
    for k in WASM_CRATES {
        c.args(["-p", k]);
    }
    run(c)?;
    eprintln!("xtask: wasm32 build of the core crates: ok");
    // Every native test; corpus tests print their pass counts (--show-output keeps them visible).
    let mut c = cargo();
    c.args([
        "test",
        "--workspace",
        "--exclude",
        "xtask",
        "--no-fail-fast",
        "--",
        "--show-output",
    ]);
    run(c)?;
    let mut c = cargo();
    c.args(["test", "-p", "xtask", "--quiet"]);
    run(c)?;
    eprintln!(
        "xtask: all tests passed in {:.0}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_main(args: &[String]) -> Result<()> {
    let mut c = cargo();
    c.args(["build", "--release", "--quiet", "-p", "layerwright"]);
    run(c)?;
    let bin = repo_root().join("target/release/layerwright");
    let args: Vec<String> = args.iter().filter(|a| *a != "--").cloned().collect();
    if args.is_empty() {
        return demo(&bin);
    }
    run({
        let mut c = Command::new(&bin);
        c.args(&args);
        c
    })
}

/// With no arguments: show what the CLI does on a throwaway store, using nothing outside this machine.
fn demo(bin: &Path) -> Result<()> {
    println!("layerwright is built at {}\n", bin.display());
    run({
        let mut c = Command::new(bin);
        c.arg("--help");
        c
    })
}
