//! lw-zstd: the one zstd frame encoder of zstd layers (libzstd through the `zstd` crate). Hosts hand it to
//! lw-layer (`lw_layer::compress::set_zstd_encoder`): the CLI links it; the tab loads it as a wasm module of its own
//! (`pkg/lw_zstd.js`, built from this crate) only when a build asks for zstd, so the main module carries no libzstd.
//! Both compile the same C at the same version (Cargo.lock), so frames are byte-identical.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

use std::io;

use zstd::zstd_safe::CParameter;

/// libzstd's version number (e.g. 10600 for 1.6.0): part of the encoder's identity in cache keys.
pub fn version() -> u32 {
    zstd::zstd_safe::version_number()
}

/// One zstd frame of `data` at `level`, appended to `out`: content size and checksum in the frame (as `zstd`
/// writes them), every other parameter from the level and the input size, so the bytes depend only on the input,
/// the level and the libzstd version, natively and in wasm32.
pub fn frame(data: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    thread_local! {
        // A compression context is ~1 MB of tables at level 3: keep one per thread rather than one per member.
        static CCTX: std::cell::RefCell<Option<(u32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            let mut z = zstd::bulk::Compressor::new(level as i32)?;
            z.set_parameter(CParameter::ChecksumFlag(true))?;
            z.set_parameter(CParameter::ContentSizeFlag(true))?;
            *c = Some((level, z));
        }
        let z = &mut c.as_mut().expect("set above").1;
        let bound = zstd::zstd_safe::compress_bound(data.len());
        if out.is_empty() {
            // Into the vector's spare capacity: zeroing ~2 MB first for every member cost page faults and a memset
            // of the bound (more than the frame) on every worker.
            out.reserve(bound);
            z.compress_to_buffer(data, out)?;
            return Ok(());
        }
        let start = out.len();
        out.resize(start + bound, 0);
        let n = z.compress_to_buffer(data, &mut out[start..])?;
        out.truncate(start + n);
        Ok(())
    })
}

/// The tab's side: what `crates/wasm/js/index.js` calls after loading this module on demand.
#[cfg(target_arch = "wasm32")]
mod web {
    use wasm_bindgen::prelude::*;

    /// One zstd frame of `data` at `level` (1-19), as [`super::frame`] makes it.
    #[wasm_bindgen(js_name = zstdFrame)]
    pub fn zstd_frame(data: &[u8], level: u32) -> Result<Vec<u8>, JsValue> {
        if !(1..=19).contains(&level) {
            return Err(js_sys_error("zstdFrame: level must be 1 to 19"));
        }
        let mut out = Vec::new();
        super::frame(data, level, &mut out).map_err(|e| js_sys_error(&format!("zstd: {e}")))?;
        Ok(out)
    }

    /// libzstd's version number, for the main module's cache keys.
    #[wasm_bindgen(js_name = zstdVersion)]
    pub fn zstd_version() -> u32 {
        super::version()
    }

    fn js_sys_error(message: &str) -> JsValue {
        JsError::new(message).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_the_same_bytes_whatever_came_before_and_carry_size_and_checksum() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        frame(b"hello hello hello ", 3, &mut a).unwrap();
        // Another level in between replaces the thread's context; the bytes for level 3 must not change.
        frame(b"something else entirely", 9, &mut b).unwrap();
        b.clear();
        frame(b"hello hello hello ", 3, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        // Frame header descriptor: checksum flag (bit 2) set, and a content size field (bits 6-7 or single segment).
        let fhd = a[4];
        assert_ne!(fhd & 0x04, 0, "checksum flag");
        assert!(fhd & 0xc0 != 0 || fhd & 0x20 != 0, "content size recorded");
        assert_eq!(
            zstd::bulk::decompress(&a, 1024).unwrap(),
            b"hello hello hello "
        );
        assert!(version() >= 10500, "libzstd {}", version());
        // Appended after earlier bytes, the same frame as into an empty vector.
        let mut c = b"prefix".to_vec();
        frame(b"hello hello hello ", 3, &mut c).unwrap();
        assert_eq!((&c[..6], &c[6..]), (&b"prefix"[..], &a[..]));
    }
}
