//! Image layers: a deterministic streaming tar writer and a strict reader, gzip/zstd, single-pass diff ID + digest,
//! and OCI whiteouts applied when layers are stacked into a file tree.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

pub mod analysis;
pub mod archive_compression;
pub mod compress;
pub mod deflate;
pub mod diff;
pub mod entry;
mod error;
pub mod layer;
pub mod midstate;
pub mod ninep;
pub mod path;
pub mod pgzip;
pub mod push;
pub mod tar;
pub mod tree;
pub mod zstd_push;

pub use entry::{Entry, EntryKind};
pub use error::Error;
pub use layer::{LayerInfo, LayerWriter};
pub use tree::FileTree;
