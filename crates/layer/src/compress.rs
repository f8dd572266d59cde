//! Layer compression: one gzip encoder (zlib-rs through flate2, pure Rust) on every target so digests match, and
//! gzip (multi-member) / zstd / plain decoding.

use std::io::{self, Read, Write};

use flate2::write::GzEncoder;
use lw_oci::media::Compression;

/// The gzip level we write: the same as `gzip -6` and docker.
pub const DEFAULT_LEVEL: u32 = 6;

/// A writer that compresses (or not) into `W`. Gzip output is multi-member (see [`crate::pgzip`]).
pub enum Compressor<W: Write> {
    None(W),
    Gzip(Box<crate::pgzip::ParallelGzip<W>>),
}

impl<W: Write> Compressor<W> {
    /// A compressor for `c`. zstd output is not offered: gzip is what every consumer reads.
    pub fn new(out: W, c: Compression, level: u32) -> io::Result<Self> {
        match c {
            Compression::None => Ok(Compressor::None(out)),
            Compression::Gzip => Ok(Compressor::Gzip(Box::new(crate::pgzip::ParallelGzip::new(
                out, level, 0, None,
            )))),
            Compression::Zstd => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "writing zstd layers is not supported; use gzip",
            )),
        }
    }

    /// Gzip on `threads` workers (0 = all cores) with an optional member cache for incremental rebuilds.
    pub fn gzip_with(
        out: W,
        level: u32,
        threads: usize,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Self {
        Compressor::Gzip(Box::new(crate::pgzip::ParallelGzip::new(
            out, level, threads, cache,
        )))
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(g) => g.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(g) => g.flush(),
        }
    }
}

/// A gzip encoder with a fixed header (no name, mtime 0, OS "unknown") so output depends only on the input.
pub fn gzip_encoder<W: Write>(out: W, level: u32) -> GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, flate2::Compression::new(level))
}

/// A decompressing reader for a layer blob; gzip accepts concatenated members.
pub fn decoder<'a, R: Read + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?,
        ),
    })
}

/// Guess the compression of a blob from its first bytes (for tarballs whose manifests do not say).
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trip_and_fixed_header() {
        let mut e = gzip_encoder(Vec::new(), DEFAULT_LEVEL);
        e.write_all(b"hello hello hello").unwrap();
        let z = e.finish().unwrap();
        assert_eq!(&z[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut out = String::new();
        decoder(&z[..], Compression::Gzip)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello hello hello");
        assert_eq!(sniff(&z), Compression::Gzip);
    }

    #[test]
    fn multi_member_gzip() {
        let mut all = Vec::new();
        for part in ["abc", "def"] {
            let mut e = gzip_encoder(Vec::new(), DEFAULT_LEVEL);
            e.write_all(part.as_bytes()).unwrap();
            all.extend(e.finish().unwrap());
        }
        let mut out = String::new();
        decoder(&all[..], Compression::Gzip)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "abcdef");
    }
}
