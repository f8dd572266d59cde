//! lw-wasm: the browser API (see README.md) over the pure core crates; with lw-wasm-guest the only crates that
//! touch JS.
//!
//! Functions here are the wasm-bindgen exports; `js/index.js` wraps them into the contract's API object (init,
//! IndexedDB persistence of the image store, `storage`).

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

mod archive;
mod blobread;
mod build;
mod context;
mod dockerfile;
mod executor;
mod fetch;
mod js;
mod layout;
mod lint;
mod load;
mod load_docker;
mod members;
mod pool;
mod remote;
mod remote_scan;
mod spill;
mod store;
mod stream;
mod views;
mod zstd;

use wasm_bindgen::prelude::*;

pub use archive::{
    archive_needs_decoder, has_archive_decoder, has_zstd_decoder, set_decoder_loader,
    use_archive_decoder, use_zstd_decoder,
};
pub use build::build;
pub use dockerfile::{base_images, parse, scope_view};
pub use lint::{build_needs_checks, has_build_checks, use_build_checks};
pub use load::load_tarball;
pub use pool::gzip_member;
pub use remote::{inspect_remote, pull, push};
pub use remote_scan::{read_remote_file, scan_remote_layer};
pub use spill::set_blob_storage;
pub use store::{
    blob_spilled, export_tarball, images, layer_entries, normalize_reference, persist_blob,
    persist_blob_digests, persist_index, persist_restore_blob, persist_restore_index,
    persist_restore_spilled, read_file, storage_clear, storage_usage,
};
pub use stream::{memory_bytes, scan_layer};
pub use views::{context_ignored, inspect_image, registry_host, tar_files};
pub use zstd::{has_zstd_encoder, use_zstd_encoder};

/// Called once when the module is instantiated: Rust panics become readable console errors.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version (`version` in the JS API).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
