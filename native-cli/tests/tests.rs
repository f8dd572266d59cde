//! The `layerwright` CLI's integration tests as one binary (ripgrep's `tests/tests.rs` layout): one module per
//! feature, fixtures that need the CLI in `common/`, everything else in the `lw-test-kit` crate. One binary links
//! once; `cargo test -p layerwright --test tests -- MODULE::` runs one module.
//!
//! Tests needing a tool start with `lw_test_kit::require!("tool", ...)`: a skip line under `cargo test`, a failure
//! under `cargo xtask test`.

mod common;

mod build_ssh;
mod build_vs_buildah;
mod buildkit_corpus;
mod buildkit_coverage;
mod cli_build;
mod cli_dockerfile;
mod cli_git;
mod cli_registry;
mod debian_apps;
mod docker_interop;
mod docker_serve;
mod proxy_gateway;
mod proxy_image;
mod proxy_load;
mod registry_real;
mod run_build;
mod run_containers;
mod run_interrupt;
mod run_mounts;
mod run_network;
mod serve_containers;
mod serve_cors;
mod serve_git;
mod serve_in_memory;
mod serve_limits;
mod serve_load;
mod serve_pins;
mod serve_registry;
mod serve_repos;
mod serve_run;
mod store_bad_input;
mod store_cli;
mod store_full_disk;
mod store_interop;
mod store_isolation;
mod store_kills;
mod store_spliced;
mod wasm_golden;
mod zstd_interop;
