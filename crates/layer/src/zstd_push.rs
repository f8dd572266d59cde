//! zstd reading, push and pull: [`ZstdPush`] is written a layer's bytes as they arrive (a Blob or a registry, in
//! slices of any size), [`ZstdRead`] reads them from a `Read` ([`crate::compress::decoder`]). Both drive one
//! [`ZstdStream`]: lw-archive's decoder (ruzstd, pure Rust) when linked (the `decoders` feature, the CLI's), else
//! the one the host installed with [`set_zstd_decoder`] (the tab's on-demand module), so no zstd code is in a
//! host that has not asked for it and both hosts decode with the same code.

use std::io::{self, Read, Write};

/// Output asked of the decoder per call: bounded, so a small input that expands a lot (RLE blocks) is handed on
/// in pieces rather than held whole.
const OUT_LIMIT: usize = 1 << 20;

/// A zstd stream decoder pushed its input in pieces (lw-archive's `zstd::ZstdDecoder`).
pub trait ZstdStream {
    /// Take `input` (the next bytes, any number) and append what decodes to `out` until no whole block is left or
    /// `out` holds `limit` bytes or more; the rest stays for the next call (an empty `input` goes on).
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> io::Result<()>;
    /// The input ended: an error unless it ended after a whole frame, everything pushed decoded.
    fn finish(&mut self) -> io::Result<()>;
}

/// A host's zstd decoder, for builds without the `decoders` feature: a new stream per layer.
#[derive(Debug, Clone, Copy)]
pub struct HostZstdDecoder {
    pub new: fn() -> io::Result<Box<dyn ZstdStream>>,
}

static ZSTD_DECODER: std::sync::OnceLock<HostZstdDecoder> = std::sync::OnceLock::new();

/// Install the host's zstd decoder (once per process or wasm instance; a later call keeps the first one, and says
/// so by returning false). Unused when the decoder is linked (the `decoders` feature).
pub fn set_zstd_decoder(d: HostZstdDecoder) -> bool {
    ZSTD_DECODER.set(d).is_ok()
}

/// Whether zstd can be read here: linked, or installed by the host.
pub fn has_zstd_decoder() -> bool {
    cfg!(feature = "decoders") || ZSTD_DECODER.get().is_some()
}

/// lw-archive's decoder, linked.
#[cfg(feature = "decoders")]
struct Linked(lw_archive::zstd::ZstdDecoder);

#[cfg(feature = "decoders")]
impl ZstdStream for Linked {
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        self.0.push(input, out, limit)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

/// A new stream: the linked decoder.
#[cfg(feature = "decoders")]
pub fn zstd_stream() -> io::Result<Box<dyn ZstdStream>> {
    Ok(Box::new(Linked(lw_archive::zstd::ZstdDecoder::new())))
}

/// A new stream: the host's decoder; an `Unsupported` error naming the module when it installed none (ADD then
/// fails rather than copying a zstd archive as it is).
#[cfg(not(feature = "decoders"))]
pub fn zstd_stream() -> io::Result<Box<dyn ZstdStream>> {
    match ZSTD_DECODER.get() {
        Some(d) => (d.new)(),
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "zstd: no decoder here (the tab loads it from pkg/lw_archive_bg.wasm first)",
        )),
    }
}

/// A `Write` that decompresses a zstd stream into `W`; [`ZstdPush::finish`] says whether the stream ended whole.
pub struct ZstdPush<W: Write> {
    out: W,
    dec: Box<dyn ZstdStream>,
    buf: Vec<u8>,
}

impl<W: Write> ZstdPush<W> {
    /// An error when this host has no zstd decoder (see [`zstd_stream`]).
    pub fn new(out: W) -> io::Result<Self> {
        Ok(ZstdPush {
            out,
            dec: zstd_stream()?,
            buf: Vec::new(),
        })
    }

    /// The writer the decompressed stream goes to.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The decompressed stream's writer, once the input ended after a whole frame.
    pub fn finish(mut self) -> io::Result<W> {
        self.dec.finish()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ZstdPush<W> {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        let mut input = chunk;
        loop {
            self.buf.clear();
            self.dec.push(input, &mut self.buf, OUT_LIMIT)?;
            input = &[];
            if self.buf.is_empty() {
                return Ok(chunk.len());
            }
            self.out.write_all(&self.buf)?;
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A `Read` of the zstd stream in `R` decompressed, frame after frame to the end (concatenated frames, skippable
/// frames skipped, checksums verified); a stream that ends inside a frame is an error, not a short read.
pub struct ZstdRead<R: Read> {
    input: R,
    dec: Box<dyn ZstdStream>,
    chunk: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    done: bool,
}

/// Compressed bytes read from the input at a time.
const READ_CHUNK: usize = 128 << 10;

impl<R: Read> ZstdRead<R> {
    /// An error when this host has no zstd decoder (see [`zstd_stream`]).
    pub fn new(input: R) -> io::Result<Self> {
        Ok(ZstdRead {
            input,
            dec: zstd_stream()?,
            chunk: vec![0; READ_CHUNK],
            out: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl<R: Read> Read for ZstdRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() || buf.is_empty() {
                let n = buf.len().min(self.out.len() - self.pos);
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            // What the last input left first, then more input.
            self.dec.push(&[], &mut self.out, OUT_LIMIT)?;
            if !self.out.is_empty() {
                continue;
            }
            let n = match self.input.read(&mut self.chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.dec.finish()?;
                self.done = true;
                continue;
            }
            self.dec.push(&self.chunk[..n], &mut self.out, OUT_LIMIT)?;
        }
    }
}

#[cfg(all(test, feature = "decoders"))]
mod tests {
    use super::*;

    fn frames(parts: &[&[u8]]) -> Vec<u8> {
        crate::compress::tests::install_zstd();
        let mut z = Vec::new();
        for p in parts {
            crate::compress::zstd_frame(p, 3, &mut z).unwrap();
        }
        z
    }

    fn push_all(z: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let mut d = ZstdPush::new(Vec::new())?;
        for c in z.chunks(chunk.max(1)) {
            d.write_all(c)?;
        }
        d.finish()
    }

    /// A reader that hands out at most `n` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(z: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ZstdRead::new(Trickle(z, chunk))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn pushed_and_read_frames_in_any_chunking_decode_to_the_input() {
        // Several blocks per frame, and a run of one byte that expands past the output limit (RLE blocks).
        let mut big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        big.extend(std::iter::repeat_n(b'a', 3 << 20));
        let z = frames(&[&big, b"", b"tail"]);
        let mut want = big.clone();
        want.extend_from_slice(b"tail");
        for chunk in [1, 5, 4096, 65_537, 1 << 20] {
            assert!(push_all(&z, chunk).unwrap() == want, "push, chunk {chunk}");
            assert!(read_all(&z, chunk).unwrap() == want, "read, chunk {chunk}");
        }
    }

    #[test]
    fn truncation_and_damage_are_errors_naming_zstd_in_both_directions() {
        let z = frames(&[&[7u8; 100_000], b"more"]);
        for cut in [1, 4, 5, 9, z.len() / 2, z.len() - 1] {
            let e = push_all(&z[..cut], 1000).unwrap_err();
            assert!(e.to_string().contains("truncated"), "push, cut {cut}: {e}");
            let e = read_all(&z[..cut], 1000).unwrap_err();
            assert!(e.to_string().contains("truncated"), "read, cut {cut}: {e}");
        }
        let mut damaged = z.clone();
        let n = damaged.len();
        damaged[n - 2] ^= 0x40;
        let e = read_all(&damaged, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("zstd: checksum mismatch"), "{e}");
        let e = push_all(b"not zstd at all", 4).unwrap_err();
        assert!(e.to_string().contains("not a zstd frame"), "{e}");
    }
}
