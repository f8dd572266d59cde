//! lw-wasm-tests' suites as one test binary (ripgrep's `tests/tests.rs` layout), one module per suite. The host
//! (node or headless Chromium) is chosen by the runner's environment (xtask/src/wasm.rs), never in the suites, so
//! they all share a binary; `cargo test -p lw-wasm-tests --target wasm32-unknown-unknown -- MODULE::` runs one.
//! The wasm32-only suites are empty modules natively; `determinism` and `bench_frontend` also run natively.

mod api_build;
mod api_load_docker;
mod api_parse_lint;
mod api_pool;
mod api_registry;
mod api_run;
mod bench_frontend;
mod buildkit_corpus;
mod determinism;
