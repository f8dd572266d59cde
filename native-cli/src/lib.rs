//! The native side of Layerwright: on-disk store, directory build context, HTTP transport, credentials, commands.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

pub mod archive;
pub mod buildhost;
pub mod context;
pub mod credentials;
pub mod gateway;
pub mod gitfetch;
pub mod http;
pub mod humanize;
pub mod named_contexts;
pub mod names;
pub mod remote;
pub mod run;
pub mod serve;
pub mod statcache;
pub mod store;
pub mod tls;
pub mod transfer;

/// Give lw-layer the zstd encoder (libzstd through lw-zstd; the tab loads the same code as a module of its own), so
/// `--compression zstd` can write layers. Called once by the CLI's main; harmless to call again.
pub fn install_zstd_encoder() {
    lw_layer::compress::set_zstd_encoder(lw_layer::compress::ZstdEncoder {
        version: lw_zstd::version(),
        frame: lw_zstd::frame,
    });
}
