//! lw-oci's conformance tests, as one binary (ripgrep's `tests/tests.rs` layout): a module per feature;
//! `cargo test -p lw-oci --test tests -- MODULE::` runs one module.

mod chainid_conformance;
mod image_spec_conformance;
mod reference_conformance;
