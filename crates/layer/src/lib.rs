//! Image layers: a deterministic streaming tar writer and a strict reader, gzip/zstd, single-pass diff ID + digest,
//! and OCI whiteouts applied when layers are stacked into a file tree.

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
pub mod tar;
pub mod tree;
pub mod zstd_push;

pub use entry::{Entry, EntryKind};
pub use error::Error;
pub use layer::{LayerInfo, LayerWriter};
pub use tree::FileTree;
