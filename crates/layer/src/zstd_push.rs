//! zstd decoding for bytes that arrive in pieces (a layer streamed from a Blob or a registry, in slices of any
//! size): ruzstd's frame decoder, pure Rust, fed one whole block at a time, frame after frame (ours are one frame
//! per member), skippable frames skipped, and each frame's checksum verified. The pull side is
//! [`crate::compress::decoder`]; both are ruzstd, so no host needs libzstd to read zstd.

use std::io::{self, Write};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

const MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames: 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE: u32 = 0x184D_2A50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a frame's magic (or at the end of the stream).
    Header,
    /// Inside a frame, before a block header; `checksum`: the frame ends with one.
    Blocks { checksum: bool },
    /// Inside a skippable frame, this many bytes left.
    Skip(u64),
}

/// A `Write` that decompresses a zstd stream into `W`; [`ZstdPush::finish`] says whether the stream ended whole.
pub struct ZstdPush<W: Write> {
    out: W,
    pending: Vec<u8>,
    dec: FrameDecoder,
    state: State,
}

fn bad(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {msg}"))
}

/// The length of a frame header whose magic and descriptor byte `fhd` are known (RFC 8878, 3.1.1.1).
fn frame_header_len(fhd: u8) -> usize {
    let single_segment = fhd & 0x20 != 0;
    let dict = [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs = match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    4 + 1 + usize::from(!single_segment) + dict + fcs
}

impl<W: Write> ZstdPush<W> {
    pub fn new(out: W) -> Self {
        ZstdPush {
            out,
            pending: Vec::new(),
            dec: FrameDecoder::new(),
            state: State::Header,
        }
    }

    /// Decode what `pending` holds whole; returns how many bytes were used.
    fn advance(&mut self) -> io::Result<usize> {
        let mut pos = 0;
        loop {
            let buf = &self.pending[pos..];
            match self.state {
                State::Header => {
                    if buf.len() < 4 {
                        return Ok(pos);
                    }
                    let magic = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes"));
                    if magic & 0xFFFF_FFF0 == SKIPPABLE {
                        if buf.len() < 8 {
                            return Ok(pos);
                        }
                        let n = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
                        self.state = State::Skip(u64::from(n));
                        pos += 8;
                        continue;
                    }
                    if magic != MAGIC {
                        return Err(bad(format!("not a zstd frame (magic {magic:#010x})")));
                    }
                    if buf.len() < 5 {
                        return Ok(pos);
                    }
                    let len = frame_header_len(buf[4]);
                    if buf.len() < len {
                        return Ok(pos);
                    }
                    self.dec.reset(&buf[..len]).map_err(bad)?;
                    self.state = State::Blocks {
                        checksum: buf[4] & 0x04 != 0,
                    };
                    pos += len;
                }
                State::Blocks { checksum } => {
                    if buf.len() < 3 {
                        return Ok(pos);
                    }
                    let h = u32::from(buf[0]) | u32::from(buf[1]) << 8 | u32::from(buf[2]) << 16;
                    let last = h & 1 != 0;
                    let size = (h >> 3) as usize;
                    let body = match (h >> 1) & 3 {
                        0 | 2 => size,
                        1 => 1, // RLE: one byte repeated `size` times
                        _ => return Err(bad("reserved block type")),
                    };
                    // The last block is decoded with the frame's checksum after it (the decoder reads it then).
                    let need = 3 + body + if last && checksum { 4 } else { 0 };
                    if buf.len() < need {
                        return Ok(pos);
                    }
                    self.dec
                        .decode_blocks(&buf[..need], BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(bad)?;
                    pos += need;
                    self.dec.collect_to_writer(&mut self.out)?;
                    if last {
                        if checksum
                            && self.dec.get_checksum_from_data()
                                != self.dec.get_calculated_checksum()
                        {
                            return Err(bad("checksum mismatch (the data is damaged)"));
                        }
                        self.state = State::Header;
                    }
                }
                State::Skip(n) => {
                    let k = n.min(buf.len() as u64);
                    pos += k as usize;
                    if k == n {
                        self.state = State::Header;
                    } else {
                        self.state = State::Skip(n - k);
                        return Ok(pos);
                    }
                }
            }
        }
    }

    /// The decompressed stream's writer, once the input ended after a whole frame.
    pub fn finish(mut self) -> io::Result<W> {
        if self.state != State::Header || !self.pending.is_empty() {
            return Err(bad("the stream ends inside a frame (truncated)"));
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ZstdPush<W> {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(chunk);
        let used = self.advance()?;
        // What is left is at most a block (128 KiB) and its header: moving it down is cheap.
        self.pending.drain(..used);
        Ok(chunk.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
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
        let mut d = ZstdPush::new(Vec::new());
        for c in z.chunks(chunk.max(1)) {
            d.write_all(c)?;
        }
        d.finish()
    }

    #[test]
    fn frames_in_any_chunking_decode_to_the_input() {
        // Large enough for several blocks per frame (128 KiB each), with compressible and random-ish parts.
        let mut big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let mut x = 0x1234_5678u32;
        big.extend((0..300_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        big.extend(std::iter::repeat_n(b'a', 200_000));
        let z = frames(&[&big, b"", b"tail"]);
        let mut want = big.clone();
        want.extend_from_slice(b"tail");
        for chunk in [1, 3, 4, 5, 7, 4096, 65_537, 1 << 20] {
            assert_eq!(push_all(&z, chunk).unwrap(), want, "chunk {chunk}");
        }
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let mut z = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
        z.extend(frames(&[b"hello"]));
        z.extend([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
        assert_eq!(push_all(&z, 2).unwrap(), b"hello");
    }

    #[test]
    fn truncation_damage_and_garbage_are_errors_naming_zstd() {
        let z = frames(&[&[7u8; 100_000], b"more"]);
        for cut in [1, 4, 5, 9, z.len() / 2, z.len() - 1] {
            let e = push_all(&z[..cut], 1000).unwrap_err();
            assert!(e.to_string().contains("truncated"), "cut {cut}: {e}");
        }
        // A flipped byte in the last frame's content or checksum.
        let mut damaged = z.clone();
        let n = damaged.len();
        damaged[n - 2] ^= 0x40;
        let e = push_all(&damaged, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("zstd: checksum mismatch"), "{e}");
        let e = push_all(b"not zstd at all", 4).unwrap_err();
        assert!(e.to_string().contains("not a zstd frame"), "{e}");
    }
}
