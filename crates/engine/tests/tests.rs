//! lw-engine's engine tests, as one binary (ripgrep's `tests/tests.rs` layout): a module per feature;
//! `cargo test -p lw-engine --test tests -- MODULE::` runs one module.

mod add_archive;
mod async_sources;
mod common;
mod copy_base_reads;
mod engine;
mod fetched_context;
mod pooled_resume;
mod prepared_reads;
mod run_binds;
