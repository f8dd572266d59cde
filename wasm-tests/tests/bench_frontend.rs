//! Frontend benchmark in wasm32 (node and headless Chromium via wasm-bindgen-test) and natively:
//! parse, expand (stage model) and lint a generated 5,000-line Dockerfile, asserting the result
//! (instruction and stage counts) and printing the median time in ms and lines/s.
//!
//! The input comes from `lw_dockerfile::bench_input`, shared with `crates/dockerfile/benches/frontend.rs`.
//! Figures are only meaningful with `--release` (the xtask harness runs the dev profile, with fewer runs).

use lw_dockerfile::{bench_input, lint, model, parser};

const LINES: usize = 5_000;
/// Fewer runs in the unoptimised build the test harness uses.
const RUNS: usize = if cfg!(debug_assertions) { 3 } else { 21 };

/// Runs the benchmark with `now()` as the millisecond clock and returns the report lines.
fn bench(host: &str, now: impl Fn() -> f64) -> String {
    let input = bench_input::dockerfile(LINES);
    let src = input.text.as_bytes();
    let model_opts = model::ModelOptions::default();
    let lint_opts = lint::LintOptions::default();

    let mut times = Vec::with_capacity(RUNS);
    let mut findings = 0;
    for _ in 0..RUNS {
        let t = now();
        let df = parser::parse(src).expect("generated Dockerfile parses");
        let m = model::Model::build(&df, &model_opts).expect("model builds");
        let f = lint::lint_parsed(src, &df, &m, &lint_opts);
        times.push(now() - t);
        // The result must be right, not just fast.
        assert_eq!(df.children.len(), input.instructions, "instruction count");
        assert_eq!(m.stages.len(), input.stages, "stage count");
        assert!(
            m.stages
                .iter()
                .all(|s| s.instructions.iter().all(|i| i.error.is_none())),
            "no expansion errors"
        );
        findings = f.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let (ms, min) = (times[RUNS / 2], times[0]);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "bench_frontend {host} ({profile}): parse+expand+lint of {} lines ({} stages, {} instructions, \
         {findings} findings): median of {RUNS} {ms:.3} ms (min {min:.3} ms), {:.0} lines/s",
        input.lines,
        input.stages,
        input.instructions,
        LINES as f64 / (ms / 1e3)
    )
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use wasm_bindgen::prelude::wasm_bindgen;
    use wasm_bindgen_test::{console_log, wasm_bindgen_test};

    #[wasm_bindgen]
    extern "C" {
        // The global `performance` exists in browsers and in node >= 16.
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }

    #[wasm_bindgen_test]
    fn frontend_5000_lines() {
        console_log!("{}", super::bench("wasm32", performance_now));
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    #[test]
    fn frontend_5000_lines() {
        let start = std::time::Instant::now();
        println!(
            "{}",
            super::bench("native", || start.elapsed().as_secs_f64() * 1e3)
        );
    }
}
