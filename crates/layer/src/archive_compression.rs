//! Compressed archives: the compression of a whole archive recognized by its magic bytes (gzip, bzip2, xz, zstd,
//! or none) and a streaming decoder for it, as `docker load` and ADD's unpacking accept them. Nothing is read
//! whole into memory; every decoder is pure Rust. bzip2, xz and zstd come from lw-archive: linked with the
//! `decoders` feature (the CLI), else from the host (the tab installs its on-demand module with
//! [`set_archive_decoder`] and [`crate::zstd_push::set_zstd_decoder`]).

use std::io::{self, Read};

/// How a whole archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveCompression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl ArchiveCompression {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveCompression::None => "uncompressed",
            ArchiveCompression::Gzip => "gzip",
            ArchiveCompression::Bzip2 => "bzip2",
            ArchiveCompression::Xz => "xz",
            ArchiveCompression::Zstd => "zstd",
        }
    }
}

/// The longest magic number below (xz's).
const MAGIC_LEN: usize = 6;

/// The compression whose magic number `head` starts with. A tar archive starts with a member name, which none of
/// these magic numbers can be mistaken for (each holds a byte no member name starts with, or `BZh` + a digit).
pub fn sniff(head: &[u8]) -> ArchiveCompression {
    if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveCompression::Gzip
    } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
        ArchiveCompression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        ArchiveCompression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveCompression::Zstd
    } else {
        ArchiveCompression::None
    }
}

/// A host's bzip2/xz decoder, for builds without the `decoders` feature: the whole compressed input (the codec's
/// [`ArchiveCompression::name`]) in, the whole decompressed stream out.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveDecoder {
    pub decode: fn(&str, &[u8]) -> io::Result<Vec<u8>>,
}

static ARCHIVE_DECODER: std::sync::OnceLock<ArchiveDecoder> = std::sync::OnceLock::new();

/// Install the host's bzip2/xz decoder (once per process or wasm instance; a later call keeps the first one, and
/// says so by returning false). Unused when the decoders are linked (the `decoders` feature).
pub fn set_archive_decoder(d: ArchiveDecoder) -> bool {
    ARCHIVE_DECODER.set(d).is_ok()
}

/// Whether bzip2 and xz can be read here: linked, or installed by the host.
pub fn has_archive_decoder() -> bool {
    cfg!(feature = "decoders") || ARCHIVE_DECODER.get().is_some()
}

/// The message of a bzip2/xz read with no decoder; its kind is `Unsupported`, so that ADD does not take the file
/// for a non-archive and copy it as it is.
fn no_decoder(kind: ArchiveCompression) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: no decoder here (the tab loads it from pkg/lw_archive_bg.wasm first)",
            kind.name()
        ),
    )
}

/// `whole` decompressed by the host's decoder `d` (read whole: the tab holds the archive in memory anyway).
#[cfg_attr(feature = "decoders", allow(dead_code))]
fn host_decoded<'a>(
    d: Option<ArchiveDecoder>,
    kind: ArchiveCompression,
    mut whole: impl Read,
) -> io::Result<Box<dyn Read + 'a>> {
    let d = d.ok_or_else(|| no_decoder(kind))?;
    let mut bytes = Vec::new();
    whole.read_to_end(&mut bytes)?;
    Ok(Box::new(io::Cursor::new((d.decode)(kind.name(), &bytes)?)))
}

/// bzip2 or xz, from lw-archive linked in (streaming).
#[cfg(feature = "decoders")]
fn bzip2_xz<'a>(kind: ArchiveCompression, whole: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let codec = lw_archive::Codec::from_name(kind.name()).ok_or_else(|| no_decoder(kind))?;
    Ok(lw_archive::decoder(codec, Box::new(whole)))
}

/// bzip2 or xz, from the host's decoder.
#[cfg(not(feature = "decoders"))]
fn bzip2_xz<'a>(kind: ArchiveCompression, whole: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    host_decoded(ARCHIVE_DECODER.get().copied(), kind, whole)
}

/// Read the first bytes of `input`, recognize its compression and return a reader of the decompressed stream.
/// Concatenated streams (pigz, pbzip2, pixz, `zstd` of several files) are read to the end.
pub fn open<'a>(
    mut input: Box<dyn Read + 'a>,
) -> io::Result<(ArchiveCompression, Box<dyn Read + 'a>)> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    (&mut input).take(MAGIC_LEN as u64).read_to_end(&mut head)?;
    let kind = sniff(&head);
    let whole = io::Cursor::new(head).chain(input);
    let r: Box<dyn Read + 'a> = match kind {
        ArchiveCompression::None => Box::new(whole),
        ArchiveCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        ArchiveCompression::Bzip2 | ArchiveCompression::Xz => bzip2_xz(kind, whole)?,
        ArchiveCompression::Zstd => Box::new(crate::zstd_push::ZstdRead::new(whole)?),
    };
    Ok((kind, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_like() -> Vec<u8> {
        // Not a real tar; what matters is that it is not mistaken for a compressed stream.
        let mut v = b"manifest.json".to_vec();
        v.resize(3000, 0);
        v.extend((0..20_000u32).flat_map(|i| (i % 251).to_le_bytes()));
        v
    }

    fn decode(data: Vec<u8>) -> (ArchiveCompression, Vec<u8>) {
        let (kind, mut r) = open(Box::new(io::Cursor::new(data))).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        (kind, out)
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
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

    fn zstd(b: &[u8]) -> Vec<u8> {
        crate::compress::tests::install_zstd();
        let mut z = Vec::new();
        crate::compress::zstd_frame(b, 3, &mut z).unwrap();
        z
    }

    /// A compression and an encoder for it.
    type Codec = (ArchiveCompression, fn(&[u8]) -> Vec<u8>);

    fn codecs() -> [Codec; 4] {
        [
            (ArchiveCompression::Gzip, gzip),
            (ArchiveCompression::Bzip2, bzip2),
            (ArchiveCompression::Xz, xz),
            (ArchiveCompression::Zstd, zstd),
        ]
    }

    #[test]
    fn each_compression_is_recognized_and_decoded() {
        let plain = tar_like();
        for (want, compress) in codecs() {
            let z = compress(&plain);
            assert_eq!(sniff(&z), want);
            let (kind, out) = decode(z);
            assert_eq!(kind, want);
            assert!(out == plain, "{} round trip differs", want.name());
        }
        let (kind, out) = decode(plain.clone());
        assert_eq!(kind, ArchiveCompression::None);
        assert!(out == plain);
    }

    #[test]
    fn concatenated_streams_are_read_to_the_end() {
        let plain = tar_like();
        let (a, b) = plain.split_at(1234);
        for (want, compress) in codecs() {
            let mut z = compress(a);
            z.extend(compress(b));
            let (kind, out) = decode(z);
            assert_eq!(kind, want);
            assert!(out == plain, "{}: concatenated streams differ", want.name());
        }
    }

    #[test]
    fn short_and_near_miss_inputs_are_uncompressed() {
        assert_eq!(sniff(b""), ArchiveCompression::None);
        assert_eq!(sniff(&[0x1f]), ArchiveCompression::None);
        assert_eq!(sniff(b"BZh0...."), ArchiveCompression::None);
        assert_eq!(sniff(b"BZh"), ArchiveCompression::None);
        assert_eq!(
            sniff(&[0xfd, b'7', b'z', b'X', b'Z']),
            ArchiveCompression::None
        );
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f]), ArchiveCompression::None);
        // A short uncompressed input comes back whole.
        assert_eq!(
            decode(b"ab".to_vec()),
            (ArchiveCompression::None, b"ab".to_vec())
        );
    }

    #[cfg(feature = "decoders")]
    #[test]
    fn a_host_decoder_reads_bzip2_and_xz_and_none_is_an_unsupported_error() {
        let plain = tar_like();
        let d = ArchiveDecoder {
            decode: |name, data| {
                let codec = lw_archive::Codec::from_name(name).expect("bzip2 or xz");
                lw_archive::decode(codec, data)
            },
        };
        for (kind, z) in [
            (ArchiveCompression::Bzip2, bzip2(&plain)),
            (ArchiveCompression::Xz, xz(&plain)),
        ] {
            let mut out = Vec::new();
            host_decoded(Some(d), kind, &z[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == plain, "{}: the host's decoder", kind.name());
            let e = host_decoded(None, kind, &z[..]).err().expect("no decoder");
            assert_eq!(e.kind(), io::ErrorKind::Unsupported);
            assert!(e.to_string().starts_with(kind.name()), "{e}");
            assert!(e.to_string().contains("lw_archive_bg.wasm"), "{e}");
        }
        assert!(has_archive_decoder());
    }

    #[test]
    fn a_corrupt_stream_is_an_error_not_a_short_archive() {
        let plain = tar_like();
        for (name, mut z) in [
            ("gzip", gzip(&plain)),
            ("bzip2", bzip2(&plain)),
            ("xz", xz(&plain)),
            ("zstd", zstd(&plain)),
        ] {
            let len = z.len();
            z.truncate(len / 2);
            let (_, mut r) = open(Box::new(io::Cursor::new(z))).unwrap();
            let mut out = Vec::new();
            assert!(
                r.read_to_end(&mut out).is_err(),
                "{name}: a truncated stream must fail"
            );
        }
    }
}
