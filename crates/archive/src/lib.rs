//! lw-archive: the decoders lw-layer does not carry itself: bzip2 and xz for whole compressed archives (`load`,
//! ADD of a local archive, `tarFiles`) and zstd for layers and archives ([`zstd`]). lw-layer links them natively
//! (its `decoders` feature, which the CLI turns on); the tab loads this crate as a wasm module of its own
//! (`pkg/lw_archive.js`) only when something is bzip2, xz or zstd, so the main module carries none of them. One code
//! path: both hosts decode with the functions below.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

use std::io::{self, Read};

pub mod zstd;

/// The codecs of whole archives this crate decodes (gzip stays in lw-layer; zstd is [`zstd`], a stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Bzip2,
    Xz,
}

impl Codec {
    /// The codec named `name` (`"bzip2"` or `"xz"`, as lw-layer's `ArchiveCompression::name` says).
    pub fn from_name(name: &str) -> Option<Codec> {
        match name {
            "bzip2" => Some(Codec::Bzip2),
            "xz" => Some(Codec::Xz),
            _ => None,
        }
    }
}

/// xz blocks may ask for a dictionary of up to 4 GiB; refuse those beyond 1 GiB rather than allocate them.
const XZ_MEM_LIMIT_KIB: u32 = 1024 * 1024;

/// A streaming reader of `input` decompressed; concatenated streams (pbzip2, pixz) are read to the end.
pub fn decoder<'a>(codec: Codec, input: Box<dyn Read + 'a>) -> Box<dyn Read + 'a> {
    match codec {
        Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
        Codec::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            input,
            true,
            XZ_MEM_LIMIT_KIB,
        )),
    }
}

/// The whole of `data` decompressed (what the tab's module does for the main module, which holds the archive in
/// memory already).
pub fn decode(codec: Codec, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(codec, Box::new(data)).read_to_end(&mut out)?;
    Ok(out)
}

/// The tab's side: what `crates/wasm/js/index.js` calls after loading this module on demand.
#[cfg(target_arch = "wasm32")]
mod web {
    use wasm_bindgen::prelude::*;

    /// `decodeArchive(codec, bytes)`: the whole archive decompressed (`codec`: `"bzip2"` or `"xz"`).
    #[wasm_bindgen(js_name = decodeArchive)]
    pub fn decode_archive(codec: &str, data: &[u8]) -> Result<Vec<u8>, JsValue> {
        let c = super::Codec::from_name(codec).ok_or_else(|| {
            JsValue::from(JsError::new(&format!("decodeArchive: no codec {codec}")))
        })?;
        super::decode(c, data).map_err(|e| JsError::new(&format!("{codec}: {e}")).into())
    }

    /// `new ZstdStream()`: a zstd stream decoder the main module pushes a layer's bytes through as they arrive.
    #[wasm_bindgen]
    pub struct ZstdStream(super::zstd::ZstdDecoder);

    #[wasm_bindgen]
    impl ZstdStream {
        #[wasm_bindgen(constructor)]
        #[allow(clippy::new_without_default)]
        pub fn new() -> ZstdStream {
            ZstdStream(super::zstd::ZstdDecoder::new())
        }

        /// The next bytes of the stream in, what decodes out (up to about `limit` bytes; the rest comes from
        /// later calls, an empty `input` included).
        pub fn push(&mut self, input: &[u8], limit: u32) -> Result<Vec<u8>, JsValue> {
            let mut out = Vec::new();
            self.0
                .push(input, &mut out, limit as usize)
                .map_err(|e| JsValue::from(JsError::new(&e.to_string())))?;
            Ok(out)
        }

        /// The stream ended: throws unless it ended after a whole frame.
        pub fn finish(&self) -> Result<(), JsValue> {
            self.0
                .finish()
                .map_err(|e| JsError::new(&e.to_string()).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn plain() -> Vec<u8> {
        (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    fn bzip2(b: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn xz(b: &[u8]) -> Vec<u8> {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        w.write_all(b).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn both_codecs_decode_whole_and_concatenated_streams() {
        let p = plain();
        for (codec, enc) in [
            (Codec::Bzip2, bzip2 as fn(&[u8]) -> Vec<u8>),
            (Codec::Xz, xz),
        ] {
            assert_eq!(decode(codec, &enc(&p)).unwrap(), p, "{codec:?}");
            let mut two = enc(&p[..1000]);
            two.extend(enc(&p[1000..]));
            assert_eq!(decode(codec, &two).unwrap(), p, "{codec:?} concatenated");
        }
    }

    #[test]
    fn damaged_input_is_an_error_and_names_round_trip() {
        let mut bad = bzip2(&plain());
        let n = bad.len();
        bad.truncate(n / 2);
        assert!(decode(Codec::Bzip2, &bad).is_err());
        assert!(decode(Codec::Xz, b"\xfd7zXZ\x00garbage").is_err());
        assert_eq!(Codec::from_name("bzip2"), Some(Codec::Bzip2));
        assert_eq!(Codec::from_name("xz"), Some(Codec::Xz));
        assert_eq!(Codec::from_name("gzip"), None);
    }
}
