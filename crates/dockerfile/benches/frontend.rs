//! Frontend benchmark: parse, expand (stage model) and lint a generated 5,000-line Dockerfile.
//!
//! Run with `cargo bench -p lw-dockerfile --bench frontend`; prints the median of `RUNS`
//! runs in ms and lines/s for each phase. The wasm32 twin is
//! `wasm-tests/tests/bench_frontend.rs`; both use [`lw_dockerfile::bench_input`].
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::time::Instant;

use lw_dockerfile::{bench_input, lint, model, parser};

const LINES: usize = 5_000;
const RUNS: usize = 21;

/// Median and minimum of `RUNS` timed runs, in ms (the machine is shared: the minimum
/// shows the uncontended cost).
fn median_ms(mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm-up
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    (times[RUNS / 2], times[0])
}

fn report(phase: &str, (ms, min): (f64, f64)) {
    let lines_per_s = LINES as f64 / (ms / 1e3);
    println!(
        "native {phase:<24} median of {RUNS}: {ms:8.3} ms (min {min:8.3} ms)  {lines_per_s:10.0} lines/s"
    );
}

fn main() {
    let input = bench_input::dockerfile(LINES);
    let src = input.text.as_bytes();
    let model_opts = model::ModelOptions::default();
    let lint_opts = lint::LintOptions::default();

    // Correctness first: the numbers mean nothing if the result is wrong.
    let df = parser::parse(src).expect("generated Dockerfile parses");
    assert_eq!(df.children.len(), input.instructions);
    let m = model::Model::build(&df, &model_opts).expect("model builds");
    assert_eq!(m.stages.len(), input.stages);
    let findings = lint::lint(src, &lint_opts).expect("lint runs");
    println!(
        "input: {} lines, {} bytes, {} stages, {} instructions; lint: {} findings",
        input.lines,
        src.len(),
        input.stages,
        input.instructions,
        findings.len()
    );

    report(
        "parse",
        median_ms(|| {
            std::hint::black_box(parser::parse(std::hint::black_box(src)).unwrap());
        }),
    );
    report(
        "expand (model)",
        median_ms(|| {
            std::hint::black_box(model::Model::build(&df, &model_opts).unwrap());
        }),
    );
    report(
        "lint (parse+model+rules)",
        median_ms(|| {
            std::hint::black_box(lint::lint(std::hint::black_box(src), &lint_opts).unwrap());
        }),
    );
    report(
        "parse+expand+lint",
        median_ms(|| {
            let df = parser::parse(std::hint::black_box(src)).unwrap();
            let m = model::Model::build(&df, &model_opts).unwrap();
            std::hint::black_box(lint::lint_parsed(src, &df, &m, &lint_opts));
        }),
    );
}
