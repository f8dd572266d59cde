//! Layer compression: the layer format (gzip, zstd or none, and a level), one gzip encoder (zlib-rs, pure Rust) and
//! the hook for the one zstd encoder the host supplies (libzstd through lw-zstd, the same C code on every target) so
//! digests match, and gzip (multi-member) / zstd (lw-archive's, linked or from the host) / plain decoding.

use std::io::{self, Read, Write};

use flate2::write::GzEncoder;
use lw_oci::media::Compression;

/// The gzip level we write: the same as `gzip -6` and docker.
pub const DEFAULT_LEVEL: u32 = 6;

/// The zstd level we write by default: the same as `zstd -3`, BuildKit's and containerd's default.
pub const ZSTD_DEFAULT_LEVEL: u32 = 3;

/// How layers are written: the compression (which picks the media type) and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerFormat {
    pub compression: Compression,
    pub level: u32,
}

impl Default for LayerFormat {
    fn default() -> Self {
        LayerFormat::GZIP
    }
}

impl LayerFormat {
    /// gzip at level 6: every layer before `compression=` existed, and what every consumer reads.
    pub const GZIP: LayerFormat = LayerFormat {
        compression: Compression::Gzip,
        level: DEFAULT_LEVEL,
    };

    /// `c` at its default level (gzip 6, zstd 3).
    pub fn of(c: Compression) -> LayerFormat {
        let level = match c {
            Compression::Gzip => DEFAULT_LEVEL,
            Compression::Zstd => ZSTD_DEFAULT_LEVEL,
            Compression::None => 0,
        };
        LayerFormat {
            compression: c,
            level,
        }
    }

    /// BuildKit's names (`compression=uncompressed|gzip|zstd`, `compression-level=N`); the level is checked against
    /// the encoder's range (gzip 0-9, zstd 1-19).
    pub fn parse(name: &str, level: Option<&str>) -> Result<LayerFormat, String> {
        let compression = match name {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "uncompressed" => Compression::None,
            "estargz" => {
                return Err("compression=estargz is not supported; use gzip or zstd".into())
            }
            other => {
                return Err(format!(
                    "unknown compression {other:?} (expected gzip, zstd or uncompressed)"
                ))
            }
        };
        let (lo, hi) = match compression {
            Compression::Gzip => (0, 9),
            Compression::Zstd => (1, 19),
            Compression::None => (0, 0),
        };
        let level = match level {
            None => LayerFormat::of(compression).level,
            Some(l) => {
                let n: u32 = l
                    .trim()
                    .parse()
                    .map_err(|_| format!("compression-level {l:?} is not a number"))?;
                if compression == Compression::None {
                    return Err("compression-level needs compression=gzip or zstd".into());
                }
                if n < lo || n > hi {
                    return Err(format!(
                        "compression-level {n} is out of range for {name} ({lo}-{hi})"
                    ));
                }
                n
            }
        };
        Ok(LayerFormat { compression, level })
    }

    /// The encoder that makes this format's bytes, with its version: what resumed layers (whose start an earlier
    /// build compressed) must share with the build resuming them.
    pub fn encoder(&self) -> String {
        match self.compression {
            Compression::None => "tar".into(),
            // "2": crate::deflate's encoder, as in the member cache's keys.
            Compression::Gzip => format!("gzip 2 level {}", self.level),
            // 0: no encoder installed (writing then fails with a message).
            Compression::Zstd => format!(
                "zstd {} level {}",
                zstd_encoder().map_or(0, |e| e.version),
                self.level
            ),
        }
    }

    /// What step cache keys add for this format: nothing for the default (keys made before formats existed stay
    /// valid), so a gzip layer is never taken for a zstd one or one of another level.
    pub fn cache_tag(&self) -> Option<String> {
        (*self != LayerFormat::GZIP).then(|| format!("layer-format {self}"))
    }
}

impl std::fmt::Display for LayerFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.compression {
            Compression::None => f.write_str("uncompressed"),
            Compression::Gzip => write!(f, "gzip level {}", self.level),
            Compression::Zstd => write!(f, "zstd level {}", self.level),
        }
    }
}

/// The zstd frame encoder a host supplies: libzstd (lw-zstd) linked natively, and in a tab the same code as a
/// module of its own loaded when a build asks for zstd. lw-layer itself carries no zstd encoder, so a host that
/// never writes zstd (the tab's main module, the VM's module) links none.
#[derive(Debug, Clone, Copy)]
pub struct ZstdEncoder {
    /// The encoder's version (libzstd's version number): part of the format's identity in cache keys.
    pub version: u32,
    /// One frame of the input at a level, appended to the output: content size and checksum in the frame, the
    /// bytes depending only on the input, the level and the version.
    pub frame: fn(&[u8], u32, &mut Vec<u8>) -> io::Result<()>,
}

static ZSTD_ENCODER: std::sync::OnceLock<ZstdEncoder> = std::sync::OnceLock::new();

/// Install the host's zstd encoder (once per process or wasm instance; a later call keeps the first encoder, and
/// says so by returning false).
pub fn set_zstd_encoder(e: ZstdEncoder) -> bool {
    ZSTD_ENCODER.set(e).is_ok()
}

/// The installed zstd encoder, if the host gave one.
pub fn zstd_encoder() -> Option<ZstdEncoder> {
    ZSTD_ENCODER.get().copied()
}

/// One zstd frame of `data` at `level`, appended to `out`, by the host's encoder (see [`ZstdEncoder`]); an error
/// when the host installed none.
pub fn zstd_frame(data: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    match ZSTD_ENCODER.get() {
        Some(e) => (e.frame)(data, level, out),
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "zstd compression: this host has no zstd encoder (in a tab, build() loads pkg/lw_zstd_bg.wasm when \
             compression is zstd)",
        )),
    }
}

/// A writer that compresses (or not) into `W`. Compressed output is made of members (see [`crate::pgzip`]).
pub enum Compressor<W: Write> {
    None(W),
    Members(Box<crate::pgzip::ParallelGzip<W>>),
}

impl<W: Write> Compressor<W> {
    /// A compressor for `c` at `level`, on all cores natively.
    pub fn new(out: W, c: Compression, level: u32) -> io::Result<Self> {
        Ok(Self::with(
            out,
            LayerFormat {
                compression: c,
                level,
            },
            0,
            None,
        ))
    }

    /// `format` on `threads` workers (0 = all cores) with an optional member cache for incremental rebuilds.
    pub fn with(
        out: W,
        format: LayerFormat,
        threads: usize,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Self {
        let codec = match format.compression {
            Compression::None => return Compressor::None(out),
            Compression::Gzip => crate::pgzip::Codec::Gzip,
            Compression::Zstd => crate::pgzip::Codec::Zstd,
        };
        Compressor::Members(Box::new(crate::pgzip::ParallelGzip::with_codec(
            out,
            codec,
            format.level,
            threads,
            cache,
        )))
    }

    /// Gzip on `threads` workers (0 = all cores) with an optional member cache for incremental rebuilds.
    pub fn gzip_with(
        out: W,
        level: u32,
        threads: usize,
        cache: Option<Box<dyn crate::pgzip::MemberCache>>,
    ) -> Self {
        Compressor::Members(Box::new(crate::pgzip::ParallelGzip::new(
            out, level, threads, cache,
        )))
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Members(g) => g.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Members(g) => g.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Members(g) => g.flush(),
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

/// A decompressing reader for a layer blob; gzip and zstd accept concatenated members (frames).
pub fn decoder<'a, R: Read + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(crate::zstd_push::ZstdRead::new(r)?),
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
pub(crate) mod tests {
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

    /// lw-zstd's libzstd, as the CLI installs it.
    pub(crate) fn install_zstd() {
        set_zstd_encoder(ZstdEncoder {
            version: lw_zstd::version(),
            frame: lw_zstd::frame,
        });
    }

    #[test]
    fn zstd_frames_round_trip_and_concatenate() {
        install_zstd();
        assert_eq!(zstd_encoder().unwrap().version, lw_zstd::version());
        assert!(LayerFormat::of(Compression::Zstd)
            .encoder()
            .starts_with(&format!("zstd {} ", lw_zstd::version())));
        let mut z = Vec::new();
        zstd_frame(b"hello hello hello ", 3, &mut z).unwrap();
        zstd_frame(b"", 3, &mut z).unwrap();
        zstd_frame(b"world", 3, &mut z).unwrap();
        assert_eq!(sniff(&z), Compression::Zstd);
        let mut out = String::new();
        decoder(&z[..], Compression::Zstd)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello hello hello world");
        // Same input, same bytes (the context is reused between frames).
        let (mut a, mut b) = (Vec::new(), Vec::new());
        zstd_frame(b"hello hello hello ", 3, &mut a).unwrap();
        zstd_frame(b"hello hello hello ", 3, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn layer_formats_parse_with_buildkits_names_and_ranges() {
        assert_eq!(LayerFormat::parse("gzip", None).unwrap(), LayerFormat::GZIP);
        let z = LayerFormat::parse("zstd", None).unwrap();
        assert_eq!((z.compression, z.level), (Compression::Zstd, 3));
        assert_eq!(LayerFormat::parse("zstd", Some("19")).unwrap().level, 19);
        assert_eq!(LayerFormat::parse("gzip", Some("0")).unwrap().level, 0);
        let u = LayerFormat::parse("uncompressed", None).unwrap();
        assert_eq!(u.compression, Compression::None);
        for (name, level, says) in [
            ("zstd", Some("0"), "out of range for zstd (1-19)"),
            ("zstd", Some("20"), "out of range"),
            ("gzip", Some("10"), "out of range for gzip (0-9)"),
            ("gzip", Some("x"), "not a number"),
            ("brotli", None, "unknown compression"),
            ("estargz", None, "not supported"),
            ("uncompressed", Some("3"), "needs compression=gzip or zstd"),
        ] {
            let e = LayerFormat::parse(name, level).unwrap_err();
            assert!(e.contains(says), "{name} {level:?}: {e}");
        }
        assert_eq!(LayerFormat::GZIP.cache_tag(), None);
        assert_ne!(z.cache_tag(), None);
        assert_ne!(
            z.cache_tag(),
            LayerFormat::parse("zstd", Some("4")).unwrap().cache_tag()
        );
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
