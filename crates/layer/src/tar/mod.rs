//! The tar format (POSIX ustar with PAX extensions): a deterministic streaming writer and a strict streaming reader.

mod header;
mod read;
mod write;

pub use read::TarReader;
pub use write::{TarWriter, WriteOptions};

/// Size of a tar block.
pub const BLOCK: usize = 512;
