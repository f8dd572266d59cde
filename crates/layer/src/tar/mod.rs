//! The tar format (POSIX ustar with PAX extensions): a deterministic streaming writer and a strict streaming reader.

mod header;
mod read;
mod write;

pub use read::TarReader;
pub use write::{TarWriter, WriteOptions};

/// The data size a raw header block announces (0 when unreadable).
pub fn header_size(block: &[u8]) -> u64 {
    header::parse_number(header::field(block, header::SIZE)).map_or(0, |n| n.max(0) as u64)
}

/// Size of a tar block.
pub const BLOCK: usize = 512;
