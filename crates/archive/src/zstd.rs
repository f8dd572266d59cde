//! zstd decoding for bytes that arrive in pieces (a layer streamed from a Blob or a registry, in slices of any
//! size): ruzstd's frame decoder, pure Rust, fed one whole block at a time, frame after frame (ours are one frame
//! per member), skippable frames skipped, and each frame's checksum verified. lw-layer reads every zstd layer
//! through this (natively linked; in the tab from this crate's on-demand module), its pull reader included.

use std::io;

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

/// A zstd stream decoder pushed its input in pieces; [`ZstdDecoder::finish`] says whether the stream ended whole.
pub struct ZstdDecoder {
    /// Input not decoded yet, from `at` on (a partial block, or what a call left for the next one).
    pending: Vec<u8>,
    at: usize,
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

impl Default for ZstdDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ZstdDecoder {
    pub fn new() -> Self {
        ZstdDecoder {
            pending: Vec::new(),
            at: 0,
            dec: FrameDecoder::new(),
            state: State::Header,
        }
    }

    /// Take `input` (the next bytes of the stream, any number) and append what decodes to `out`, block by block,
    /// until no whole block is left or `out` holds `limit` bytes or more: the limit bounds memory where a small
    /// input expands a lot (a call gives at most the limit, a block and the frame's window, which ruzstd holds
    /// back until it is passed). What is left stays for the next call, which may pass an empty `input` to go on.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        // Keep the pending bytes short: move them down once the used part is the larger half.
        if self.at > 0 && self.at * 2 >= self.pending.len() {
            self.pending.drain(..self.at);
            self.at = 0;
        }
        self.pending.extend_from_slice(input);
        let used = self.advance(out, limit)?;
        self.at += used;
        if self.at == self.pending.len() {
            self.pending.clear();
            self.at = 0;
        }
        Ok(())
    }

    /// Decode what `pending[at..]` holds whole, up to `limit` bytes of `out`; returns how many bytes were used.
    fn advance(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
        let mut pos = 0;
        loop {
            let buf = &self.pending[self.at + pos..];
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
                    if buf.len() < 3 || out.len() >= limit {
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
                    self.dec.collect_to_writer(&mut *out)?;
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

    /// Whether input is left that a call with room in `out` would decode (`push(&[], ..)` goes on with it).
    pub fn has_pending(&self) -> bool {
        self.at < self.pending.len()
    }

    /// The input ended: an error unless it ended after a whole frame (with everything pushed decoded).
    pub fn finish(&self) -> io::Result<()> {
        if self.state != State::Header || self.has_pending() {
            return Err(bad("the stream ends inside a frame (truncated)"));
        }
        Ok(())
    }
}

/// The whole of `data` decompressed (tests, and hosts that hold a layer in memory).
pub fn decode_all(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut d = ZstdDecoder::new();
    let mut out = Vec::new();
    d.push(data, &mut out, usize::MAX)?;
    d.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libzstd frames at level 3 (lw-zstd, as our layers are written), each with its checksum.
    fn frames(parts: &[&[u8]]) -> Vec<u8> {
        let mut z = Vec::new();
        for p in parts {
            lw_zstd::frame(p, 3, &mut z).unwrap();
        }
        z
    }

    fn push_all(z: &[u8], chunk: usize, limit: usize) -> io::Result<Vec<u8>> {
        let mut d = ZstdDecoder::new();
        let mut out = Vec::new();
        for c in z.chunks(chunk.max(1)) {
            let mut got = Vec::new();
            d.push(c, &mut got, limit)?;
            while !got.is_empty() {
                out.extend_from_slice(&got);
                got.clear();
                d.push(&[], &mut got, limit)?;
            }
        }
        d.finish()?;
        Ok(out)
    }

    fn big() -> Vec<u8> {
        // Several blocks per frame (128 KiB each), with compressible and random-ish parts.
        let mut big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let mut x = 0x1234_5678u32;
        big.extend((0..300_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        big.extend(std::iter::repeat_n(b'a', 200_000));
        big
    }

    #[test]
    fn frames_in_any_chunking_and_any_limit_decode_to_the_input() {
        let big = big();
        let z = frames(&[&big, b"", b"tail"]);
        let mut want = big.clone();
        want.extend_from_slice(b"tail");
        for chunk in [1, 3, 4, 5, 7, 4096, 65_537, 1 << 20] {
            for limit in [1, 100_000, usize::MAX] {
                let got = push_all(&z, chunk, limit).unwrap();
                assert!(got == want, "chunk {chunk} limit {limit}");
            }
        }
        assert!(decode_all(&z).unwrap() == want);
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let mut z = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
        z.extend(frames(&[b"hello"]));
        z.extend([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
        assert_eq!(push_all(&z, 2, 1 << 20).unwrap(), b"hello");
    }

    #[test]
    fn a_decoder_stopped_at_its_limit_is_not_finished() {
        // The first frame's end gives its output; the limit then stops before the second.
        let z = frames(&[&big(), &big()]);
        let mut d = ZstdDecoder::new();
        let mut out = Vec::new();
        d.push(&z, &mut out, 1).unwrap();
        assert!(d.has_pending());
        let e = d.finish().unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn truncation_damage_and_garbage_are_errors_naming_zstd() {
        let z = frames(&[&[7u8; 100_000], b"more"]);
        for cut in [1, 4, 5, 9, z.len() / 2, z.len() - 1] {
            let e = push_all(&z[..cut], 1000, 1 << 20).unwrap_err();
            assert!(e.to_string().contains("truncated"), "cut {cut}: {e}");
        }
        // A flipped byte in the last frame's checksum.
        let mut damaged = z.clone();
        let n = damaged.len();
        damaged[n - 2] ^= 0x40;
        let e = push_all(&damaged, 1 << 20, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("zstd: checksum mismatch"), "{e}");
        let e = push_all(b"not zstd at all", 4, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("not a zstd frame"), "{e}");
    }
}
