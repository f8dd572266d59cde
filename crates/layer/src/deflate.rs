//! One gzip member made from one buffer: zlib-rs raw deflate with our level settings, stored blocks for stretches
//! that do not compress (random or already-compressed bytes), and a fixed header and trailer, so that the bytes
//! depend only on the input and are the same on every target.

use std::io;
use std::mem::MaybeUninit;

use libz_rs_sys as z;

/// The input is looked at in blocks of this size to decide between deflate and stored.
const BLOCK: usize = 64 * 1024;
/// A block shorter than this (a member's tail) keeps the previous block's mode: too few bytes to judge.
const MIN_JUDGED: usize = 4096;

/// The gzip header we write: no name, mtime 0, no extra flags, OS "unknown" (255), as before this encoder existed.
pub(crate) const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// zlib's (good, lazy, nice, chain) for a level, with one change: level 6 searches hash chains of 64 instead of
/// 128. On the benchmark tree (repetitive text) that halves deflate time for +0.8% output; on real binaries
/// (/usr/lib) it saves about 5% for +0.06%. Either way the output stays within 2% of `gzip -6`.
fn tuning(level: u32) -> Option<(i32, i32, i32, i32)> {
    (level == 6).then_some((8, 16, 128, 64))
}

/// True when a block's bytes are so evenly spread over all 256 values that deflate cannot shrink it: order-0
/// entropy above about 7.99 bits per byte, tested with integers (a chi-square bound) so every target decides
/// alike. Data that repeats with a period of 16 KiB or less stays below the bound and is deflated.
fn incompressible(block: &[u8]) -> bool {
    let mut h = [[0u32; 256]; 4];
    let mut quads = block.chunks_exact(4);
    for q in &mut quads {
        h[0][q[0] as usize] += 1;
        h[1][q[1] as usize] += 1;
        h[2][q[2] as usize] += 1;
        h[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        h[0][b as usize] += 1;
    }
    let squares: u64 = (0..256)
        .map(|i| {
            let c = u64::from(h[0][i] + h[1][i] + h[2][i] + h[3][i]);
            c * c
        })
        .sum();
    let n = block.len() as u64;
    // chi² = 256·Σc²/n − n; entropy ≈ 8 − chi²/(2n·ln 2) > 7.99  ⇔  256·Σc² < n²·(1 + 0.01386).
    256 * squares * 1024 < n * n * 1038
}

/// A raw deflate stream; ended on drop.
struct Stream(Box<MaybeUninit<z::z_stream>>);

impl Stream {
    fn new(level: u32) -> io::Result<Stream> {
        // zeroed: the allocator fields are null, so zlib-rs uses its own (Rust) allocator.
        let mut s = Box::new(MaybeUninit::<z::z_stream>::zeroed());
        // SAFETY: a zeroed z_stream is the documented starting state for deflateInit2_; the version and size are
        // the library's own.
        let rc = unsafe {
            z::deflateInit2_(
                s.as_mut_ptr(),
                level as i32,
                z::Z_DEFLATED,
                -15,
                8,
                z::Z_DEFAULT_STRATEGY,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        if rc != z::Z_OK {
            return Err(io::Error::other(format!("deflateInit2 failed ({rc})")));
        }
        let mut st = Stream(s);
        st.tune(level);
        Ok(st)
    }

    fn raw(&mut self) -> *mut z::z_stream {
        self.0.as_mut_ptr()
    }

    fn tune(&mut self, level: u32) {
        if let Some((good, lazy, nice, chain)) = tuning(level) {
            // SAFETY: the stream was initialised by deflateInit2_.
            unsafe { z::deflateTune(self.raw(), good, lazy, nice, chain) };
        }
    }

    /// Switch between `level` and stored (0). zlib ends the current deflate block first, writing it at next_out,
    /// which still points into `out`'s spare room (see [`Stream::sync`]).
    fn set_level(&mut self, level: u32, out: &mut Vec<u8>, base: usize) -> io::Result<()> {
        // SAFETY: initialised stream whose next_out/avail_out describe `out`'s spare capacity (set by `run`).
        let rc = unsafe { z::deflateParams(self.raw(), level as i32, z::Z_DEFAULT_STRATEGY) };
        if rc != z::Z_OK {
            return Err(io::Error::other(format!("deflateParams failed ({rc})")));
        }
        self.tune(level);
        self.sync(out, base);
        Ok(())
    }

    /// Make `out` cover everything zlib has written: output starts at `base` and is total_out bytes long.
    fn sync(&mut self, out: &mut Vec<u8>, base: usize) {
        // SAFETY: zlib wrote total_out bytes contiguously from `base`, inside the capacity reserved up front (the
        // vector is never grown while the stream writes, so the pointers it holds stay valid).
        unsafe {
            let total = (*self.raw()).total_out as usize;
            assert!(base + total <= out.capacity(), "deflate overran its bound");
            out.set_len(base + total);
        }
    }

    /// Deflate `input` with `flush`, appending to `out`.
    fn run(&mut self, input: &[u8], flush: i32, out: &mut Vec<u8>, base: usize) -> io::Result<()> {
        self.sync(out, base);
        let spare = out.spare_capacity_mut();
        let raw = self.raw();
        // SAFETY: next_in/avail_in describe `input`, next_out/avail_out `out`'s spare capacity.
        let rc = unsafe {
            (*raw).next_in = input.as_ptr() as *mut u8;
            (*raw).avail_in = input.len() as u32;
            (*raw).next_out = spare.as_mut_ptr().cast();
            (*raw).avail_out = spare.len().min(u32::MAX as usize) as u32;
            z::deflate(raw, flush)
        };
        if !(rc == z::Z_OK || (rc == z::Z_STREAM_END && flush == z::Z_FINISH)) {
            return Err(io::Error::other(format!("deflate failed ({rc})")));
        }
        // SAFETY: as above.
        if unsafe { (*raw).avail_in } != 0 || (flush == z::Z_FINISH && rc != z::Z_STREAM_END) {
            return Err(io::Error::other("deflate: output bound too small"));
        }
        self.sync(out, base);
        Ok(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, ended once.
        unsafe { z::deflateEnd(self.raw()) };
    }
}

/// Append one complete gzip member holding `data` to `out`.
pub fn gzip_member(data: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    out.extend_from_slice(&HEADER);
    let mut s = Stream::new(level)?;
    // Room for the worst case: zlib's own bound for this level (level 1's static trees can expand noise by 1/8),
    // plus a block end and a stored block header for each mode switch (at most one per block).
    // SAFETY: an initialised stream; deflateBound only reads its settings.
    let bound =
        unsafe { z::deflateBound_z(s.raw(), data.len()) } + 16 * (data.len() / BLOCK + 1) + 64;
    out.reserve(bound + 8);
    let base = out.len();
    let mut mode = level;
    let last = data.len().div_ceil(BLOCK).saturating_sub(1);
    if data.is_empty() {
        s.run(&[], z::Z_FINISH, out, base)?;
    }
    for (i, block) in data.chunks(BLOCK).enumerate() {
        if block.len() >= MIN_JUDGED {
            let want = if incompressible(block) { 0 } else { level };
            if want != mode {
                s.set_level(want, out, base)?;
                mode = want;
            }
        }
        let flush = if i == last {
            z::Z_FINISH
        } else {
            z::Z_NO_FLUSH
        };
        s.run(block, flush, out, base)?;
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn lcg(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        let words = ["layer ", "image ", "the ", "digest ", "manifest\n", "of "];
        let mut x = 5u64;
        let mut v = Vec::new();
        while v.len() < len {
            x = x.wrapping_mul(2862933555777941757).wrapping_add(3037000493);
            v.extend_from_slice(words[(x >> 60) as usize % words.len()].as_bytes());
        }
        v.truncate(len);
        v
    }

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(z)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn member(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        gzip_member(data, 6, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_mixed_input_with_a_fixed_header() {
        let mut data = text(300_000);
        data.extend(lcg(1, 200_000));
        data.extend(text(100_003));
        data.extend(lcg(2, 3_000));
        let z = member(&data);
        assert_eq!(&z[..10], &HEADER);
        assert_eq!(gunzip(&z), data);
        assert_eq!(gunzip(&member(&[])), b"");
        assert_eq!(gunzip(&member(b"x")), b"x");
    }

    #[test]
    fn random_bytes_are_stored_and_text_is_deflated() {
        let r = lcg(9, 1 << 20);
        assert!(incompressible(&r[..BLOCK]));
        let z = member(&r);
        // Stored: the input plus 5 bytes a stored block, header and trailer.
        assert!(
            z.len() <= r.len() + 5 * (r.len() / 65_535 + 2) + 18,
            "{}",
            z.len()
        );
        let t = text(1 << 20);
        assert!(!incompressible(&t[..BLOCK]));
        assert!(member(&t).len() < t.len() / 4);
        // A 16 KiB random pattern repeated is compressible, and is judged so.
        let p = lcg(3, 16 * 1024).repeat(4);
        assert!(!incompressible(&p));
        assert!(member(&p).len() < p.len() / 2);
    }

    #[test]
    fn round_trips_generated_mixes_of_text_and_noise_at_every_level() {
        // Stretches of text and noise of odd lengths, so mode switches land anywhere in and across blocks.
        let mut x: u64 = 99;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        for case in 0..60 {
            let mut data = Vec::new();
            for _ in 0..1 + next(8) {
                let len = next(200_000) as usize;
                if next(2) == 0 {
                    data.extend(lcg(case, len));
                } else {
                    data.extend(text(len));
                }
            }
            let level = 1 + (case % 9) as u32;
            let mut z = Vec::new();
            gzip_member(&data, level, &mut z).unwrap();
            assert_eq!(
                gunzip(&z),
                data,
                "case {case}, level {level}, {} bytes",
                data.len()
            );
        }
    }

    #[test]
    fn within_two_percent_of_plain_level_6() {
        let mut data = text(600_000);
        data.extend(lcg(4, 300_000));
        let ours = member(&data).len();
        let mut e = crate::compress::gzip_encoder(Vec::new(), 6);
        std::io::Write::write_all(&mut e, &data).unwrap();
        let plain = e.finish().unwrap().len();
        assert!(ours * 100 <= plain * 102, "{ours} vs {plain}");
    }
}
