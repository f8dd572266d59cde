//! lw-build's engine tests, as one binary (ripgrep's `tests/tests.rs` layout): a module per feature;
//! `cargo test -p lw-build --test tests -- MODULE::` runs one module.

mod copy_base_reads;
mod engine;
mod run_binds;
