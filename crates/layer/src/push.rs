//! Push-mode layer reading: bytes arrive in chunks (a `Blob` read slice by slice, a registry's body, the tab's
//! stored layers fed to its VM's root), are decompressed and their tar headers parsed without ever holding the
//! layer, while the compressed digest and the diff ID are computed. The page's main module scans with it; the 9p
//! module stacks a VM's root with it ([`crate::ninep::BaseBuilder`]).
//!
//! Header groups (PAX / GNU long-name records plus the real header) are buffered only until complete, then parsed
//! by the strict [`TarReader`], so path cleaning and checks are the same as everywhere else.

use std::io::{self, Write};

use lw_oci::media::Compression;
use lw_oci::{Digest, DigestHasher};

use crate::tar::TarReader;
use crate::{Entry, EntryKind, Error};

const BLOCK: usize = 512;
/// Metadata records (PAX, GNU long names) above this are refused, as the strict reader does.
const MAX_META: u64 = 1 << 20;
/// Entries per layer: a bound on what a listing may accumulate.
pub const MAX_ENTRIES: usize = 4_000_000;

/// The size field of a header block (octal, or GNU base-256 when the high bit is set).
fn header_size(block: &[u8]) -> Option<u64> {
    let f = &block[124..136];
    if f[0] & 0x80 != 0 {
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn bad_header(offset: u64, reason: &str) -> Error {
    Error::BadHeader {
        offset,
        reason: reason.into(),
    }
}

/// What a scan calls for each entry (boxed: one instantiation of the scanner keeps the bundle small). An `Err` is
/// the host's reason to stop ([`Error::Host`]).
pub type OnEntry<'a> = Box<dyn FnMut(Entry) -> Result<(), String> + 'a>;

/// Where a tapped entry's data goes: a piece, and whether it is the last one.
pub type OnData<'a> = Box<dyn FnMut(&[u8], bool) -> Result<(), String> + 'a>;

/// One entry's data read out of a scan (a file previewed from a layer without storing the layer).
pub struct Tap<'a> {
    /// Whether this entry's data is wanted (called before `on_entry` sees it).
    pub want: Box<dyn FnMut(&Entry) -> bool + 'a>,
    /// The wanted entry's data in pieces, after `on_entry` saw its header; the second argument is true with the
    /// last piece (an empty slice for an empty file).
    pub data: OnData<'a>,
}

/// A tar stream parsed as it is written: `on_entry` sees each entry; data is skipped, never kept.
pub struct TarScan<'a> {
    pending: Vec<u8>,
    skip: u64,
    done: bool,
    entries: usize,
    /// Tar bytes taken so far (for the offsets errors name).
    at: u64,
    on_entry: OnEntry<'a>,
    /// The diff ID's hasher; `None` when only the entries are wanted (hashing costs more than inflating).
    diff: Option<DigestHasher>,
    /// The first error, kept: the decompressor sees only its words, the caller gets it whole.
    error: Option<Error>,
    /// Whether an error was met (the kept one may have been handed to the caller already).
    failed: Option<String>,
    tap: Option<Tap<'a>>,
    /// Data bytes of the current entry still to go to the tap (the rest of `skip` is padding).
    tapping: u64,
}

impl<'a> TarScan<'a> {
    pub fn new(on_entry: OnEntry<'a>, hash: bool) -> Self {
        TarScan {
            pending: Vec::new(),
            skip: 0,
            done: false,
            entries: 0,
            at: 0,
            on_entry,
            diff: hash.then(DigestHasher::sha256),
            error: None,
            failed: None,
            tap: None,
            tapping: 0,
        }
    }

    /// Send the data of the entries `tap.want` picks to `tap.data`.
    pub fn set_tap(&mut self, tap: Option<Tap<'a>>) {
        self.tap = tap;
    }

    /// The length of the complete header group at the start of `pending`, `Ok(None)` if more bytes are needed,
    /// or `Ok(Some(0))` at the end-of-archive marker.
    fn group_len(&self) -> Result<Option<usize>, Error> {
        let mut pos = 0usize;
        loop {
            if self.pending.len() < pos + BLOCK {
                return Ok(None);
            }
            let block = &self.pending[pos..pos + BLOCK];
            if pos == 0 && block.iter().all(|&b| b == 0) {
                return Ok(Some(0));
            }
            match block[156] {
                b'x' | b'g' | b'L' | b'K' => {
                    let size = header_size(block)
                        .filter(|&s| s <= MAX_META)
                        .ok_or_else(|| {
                            bad_header(
                                self.at - (self.pending.len() - pos) as u64,
                                "tar metadata record is unreadable or larger than 1 MiB",
                            )
                        })?;
                    pos += BLOCK + padded(size) as usize;
                }
                _ => return Ok(Some(pos + BLOCK)),
            }
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() && !self.done {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                if self.tapping > 0 {
                    let t = (self.tapping.min(n as u64)) as usize;
                    self.tapping -= t as u64;
                    if let Some(tap) = self.tap.as_mut() {
                        (tap.data)(&data[..t], self.tapping == 0).map_err(Error::Host)?;
                    }
                }
                self.skip -= n as u64;
                self.at += n as u64;
                data = &data[n..];
                continue;
            }
            // Take whole blocks only while a header group is incomplete; never more than the group needs.
            let need = BLOCK - self.pending.len() % BLOCK;
            let n = need.min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            self.at += n as u64;
            data = &data[n..];
            if !self.pending.len().is_multiple_of(BLOCK) {
                continue;
            }
            match self.group_len()? {
                None => continue,
                Some(0) => {
                    self.done = true;
                    self.pending.clear();
                }
                Some(len) => self.header(len)?,
            }
        }
        Ok(())
    }

    /// The complete header group of `len` bytes at the start of `pending`: its entry to `on_entry`, its data to come.
    fn header(&mut self, len: usize) -> Result<(), Error> {
        let start = self.at - self.pending.len() as u64;
        let group = &self.pending[..len];
        let last = &group[len - BLOCK..];
        let raw_size =
            header_size(last).ok_or_else(|| bad_header(start, "unreadable tar size field"))?;
        let e = TarReader::new(group)
            .next_entry()?
            .ok_or_else(|| bad_header(start, "tar header expected"))?;
        let data_len = match &e.kind {
            EntryKind::File => e.size,
            EntryKind::Dir | EntryKind::Symlink(_) => 0,
            _ => raw_size,
        };
        self.skip = padded(data_len);
        self.pending.clear();
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(Error::Unsupported {
                path: e.path,
                reason: format!("more than {MAX_ENTRIES} entries in one layer"),
            });
        }
        let tapped = self.tap.as_mut().is_some_and(|tap| (tap.want)(&e));
        (self.on_entry)(e).map_err(Error::Host)?;
        if tapped {
            self.tapping = data_len;
            if data_len == 0 {
                // After `on_entry`, as every tapped entry's data is.
                let tap = self.tap.as_mut().expect("tapped");
                (tap.data)(&[], true).map_err(Error::Host)?;
            }
        }
        Ok(())
    }

    /// The diff ID (when hashing) once the stream is complete (a truncated tar is an error).
    pub fn finish(mut self) -> Result<Option<Digest>, Error> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        if self.skip > 0 || !self.pending.is_empty() {
            return Err(Error::Truncated(
                "the tar stream ends inside an entry".into(),
            ));
        }
        Ok(self.diff.map(DigestHasher::finish))
    }

    /// The error that stopped the scan, once (later: its words).
    fn take_error(&mut self) -> Option<Error> {
        let f = self.failed.as_ref()?;
        Some(self.error.take().unwrap_or_else(|| Error::Host(f.clone())))
    }

    pub fn entries(&self) -> usize {
        self.entries
    }
}

impl Write for TarScan<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        if let Some(h) = self.diff.as_mut() {
            h.update(buf);
        }
        if let Err(e) = self.feed(buf) {
            let words = e.to_string();
            self.failed = Some(words.clone());
            self.error = Some(e);
            return Err(io::Error::new(io::ErrorKind::InvalidData, words));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Stage<'a> {
    Plain(Box<TarScan<'a>>),
    Gzip(Box<flate2::write::MultiGzDecoder<TarScan<'a>>>),
    /// lw-archive's zstd decoder (the page's module) fed pushed bytes, frame after frame, checksums verified.
    Zstd(Box<crate::zstd_push::ZstdPush<TarScan<'a>>>),
}

impl<'a> Stage<'a> {
    fn scan(&mut self) -> &mut TarScan<'a> {
        match self {
            Stage::Plain(s) => s,
            Stage::Gzip(g) => g.get_mut(),
            Stage::Zstd(z) => z.get_mut(),
        }
    }
}

/// A layer blob pushed chunk by chunk: its digest (compressed), diff ID, and entries.
pub struct LayerScan<'a> {
    blob: Option<DigestHasher>,
    size: u64,
    stage: Option<Stage<'a>>,
    on_entry: Option<OnEntry<'a>>,
    tap: Option<Tap<'a>>,
    head: Vec<u8>,
}

/// What a complete scan found (digests only when hashing).
pub struct Scanned {
    pub digest: Option<Digest>,
    pub size: u64,
    pub diff_id: Option<Digest>,
    pub compression: Compression,
    pub entries: usize,
}

impl<'a> LayerScan<'a> {
    /// With `hash`, the blob's digest and the diff ID are computed too.
    pub fn new(on_entry: OnEntry<'a>, hash: bool) -> Self {
        LayerScan {
            blob: hash.then(DigestHasher::sha256),
            size: 0,
            stage: None,
            on_entry: Some(on_entry),
            tap: None,
            head: Vec::new(),
        }
    }

    /// A scan that also reads out the data of the entries `tap` picks.
    pub fn with_tap(on_entry: OnEntry<'a>, tap: Tap<'a>, hash: bool) -> Self {
        let mut s = LayerScan::new(on_entry, hash);
        s.tap = Some(tap);
        s
    }

    /// Compressed bytes pushed so far.
    pub fn bytes(&self) -> u64 {
        self.size
    }

    fn start(&mut self) -> Result<(), Error> {
        let on_entry = self
            .on_entry
            .take()
            .ok_or_else(|| Error::Host("layer scan restarted".into()))?;
        let mut scan = TarScan::new(on_entry, self.blob.is_some());
        scan.set_tap(self.tap.take());
        let stage = match crate::compress::sniff(&self.head) {
            Compression::None => Stage::Plain(Box::new(scan)),
            Compression::Gzip => Stage::Gzip(Box::new(flate2::write::MultiGzDecoder::new(scan))),
            Compression::Zstd => Stage::Zstd(Box::new(crate::zstd_push::ZstdPush::new(scan)?)),
        };
        self.stage = Some(stage);
        let head = std::mem::take(&mut self.head);
        self.write_stage(&head)
    }

    fn write_stage(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let Some(stage) = self.stage.as_mut() else {
            return Ok(());
        };
        let r = match stage {
            Stage::Plain(s) => s.write_all(chunk),
            Stage::Gzip(g) => g.write_all(chunk),
            Stage::Zstd(z) => z.write_all(chunk),
        };
        // The tar scan's own error when it stopped the stream, else the decompressor's.
        r.map_err(|e| stage.scan().take_error().unwrap_or(Error::Io(e)))
    }

    /// The next chunk of the blob.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if let Some(h) = self.blob.as_mut() {
            h.update(chunk);
        }
        self.size += chunk.len() as u64;
        if self.stage.is_none() {
            // Four bytes decide the compression.
            self.head.extend_from_slice(chunk);
            if self.head.len() >= 4 {
                self.start()?;
            }
            return Ok(());
        }
        self.write_stage(chunk)
    }

    pub fn finish(mut self) -> Result<Scanned, Error> {
        if self.stage.is_none() {
            self.start()?;
        }
        let size = self.size;
        let digest = self.blob.map(DigestHasher::finish);
        let (scan, compression) = match self.stage {
            Some(Stage::Plain(s)) => (*s, Compression::None),
            Some(Stage::Gzip(g)) => (
                g.finish()
                    .map_err(|e| Error::Io(io::Error::new(e.kind(), format!("gzip: {e}"))))?,
                Compression::Gzip,
            ),
            Some(Stage::Zstd(z)) => (z.finish()?, Compression::Zstd),
            None => return Err(Error::Truncated("empty layer".into())),
        };
        let entries = scan.entries();
        let diff_id = scan.finish()?;
        Ok(Scanned {
            digest,
            size,
            diff_id,
            compression,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{TarWriter, WriteOptions};

    fn sample() -> Vec<u8> {
        let mut tar = Vec::new();
        let mut w = TarWriter::new(&mut tar, WriteOptions::default());
        w.append_bytes(&Entry::file("a.txt", 0o644, 0), b"hello")
            .unwrap();
        let long = format!("{}/f", "d".repeat(200));
        w.append_bytes(&Entry::file(&long, 0o644, 0), &vec![7u8; 3000])
            .unwrap();
        w.finish().unwrap();
        tar
    }

    fn scan(bytes: &[u8], chunk: usize) -> Result<(Scanned, Vec<String>), Error> {
        let mut names = Vec::new();
        let mut s = LayerScan::new(
            Box::new(|e: Entry| {
                names.push(e.path);
                Ok(())
            }),
            true,
        );
        for c in bytes.chunks(chunk) {
            s.push(c)?;
        }
        let r = s.finish()?;
        Ok((r, names))
    }

    #[test]
    fn plain_and_gzip_in_any_chunking() {
        let tar = sample();
        let mut gz = crate::compress::gzip_encoder(Vec::new(), 6);
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        for chunk in [1, 7, 512, 4096, 1 << 20] {
            let (r, names) = scan(&tar, chunk).unwrap();
            assert_eq!(names.len(), 2);
            assert!(names[1].ends_with("/f"));
            assert_eq!(r.diff_id, Some(Digest::sha256_of(&tar)));
            assert_eq!(r.compression, Compression::None);
            let (g, names) = scan(&gz, chunk).unwrap();
            assert_eq!(names.len(), 2);
            assert_eq!(g.diff_id, r.diff_id);
            assert_eq!(g.digest, Some(Digest::sha256_of(&gz)));
            assert_eq!(g.compression, Compression::Gzip);
        }
    }

    #[test]
    fn multi_frame_zstd_in_any_chunking_and_truncated_zstd_is_an_error() {
        let tar = sample();
        crate::compress::set_zstd_encoder(crate::compress::ZstdEncoder {
            version: lw_zstd::version(),
            frame: lw_zstd::frame,
        });
        let mut z = Vec::new();
        for part in tar.chunks(1000) {
            crate::compress::zstd_frame(part, 3, &mut z).unwrap();
        }
        for chunk in [1, 7, 512, 4096, 1 << 20] {
            let (r, names) = scan(&z, chunk).unwrap();
            assert_eq!(names.len(), 2);
            assert_eq!(r.diff_id, Some(Digest::sha256_of(&tar)));
            assert_eq!(r.digest, Some(Digest::sha256_of(&z)));
            assert_eq!(r.compression, Compression::Zstd);
        }
        let e = scan(&z[..z.len() - 3], 512).err().unwrap().to_string();
        assert!(e.contains("zstd"), "{e}");
    }

    #[test]
    fn a_tap_reads_one_entry_in_any_chunking() {
        let tar = sample();
        let mut gz = crate::compress::gzip_encoder(Vec::new(), 6);
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let long = format!("{}/f", "d".repeat(200));
        for chunk in [1, 100, 512, 1 << 20] {
            for (want, expect) in [
                ("a.txt", b"hello".to_vec()),
                (long.as_str(), vec![7u8; 3000]),
            ] {
                let mut got = Vec::new();
                let mut lasts = 0;
                let mut s = LayerScan::with_tap(
                    Box::new(|_| Ok(())),
                    Tap {
                        want: Box::new(|e: &Entry| e.path == want),
                        data: Box::new(|d: &[u8], last: bool| {
                            got.extend_from_slice(d);
                            lasts += last as u32;
                            Ok(())
                        }),
                    },
                    false,
                );
                for c in gz.chunks(chunk) {
                    s.push(c).unwrap();
                }
                s.finish().unwrap();
                assert_eq!(got, expect, "{want} in chunks of {chunk}");
                assert_eq!(lasts, 1);
            }
        }
    }

    #[test]
    fn truncation_and_traversal_are_errors() {
        let tar = sample();
        assert!(scan(&tar[..1200], 100).is_err());
        let mut evil = tar.clone();
        // Rename the first entry to ../a.tx and fix its checksum.
        evil[..7].copy_from_slice(b"../a.tx");
        evil[148..156].copy_from_slice(b"        ");
        let sum: u32 = evil[..512].iter().map(|&b| b as u32).sum();
        evil[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let e = scan(&evil, 512).err().unwrap();
        assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
        assert!(e.to_string().contains(".."), "{e}");
    }

    #[test]
    fn a_tapped_empty_file_has_its_data_after_its_header() {
        let mut tar = Vec::new();
        let mut w = TarWriter::new(&mut tar, WriteOptions::default());
        w.append_bytes(&Entry::dir("d", 0o755), b"").unwrap();
        w.append_bytes(&Entry::file("d/empty", 0o644, 0), b"")
            .unwrap();
        w.append_bytes(&Entry::file("d/full", 0o644, 0), b"xy")
            .unwrap();
        w.finish().unwrap();
        let events = std::cell::RefCell::new(Vec::new());
        let mut s = LayerScan::with_tap(
            Box::new(|e: Entry| {
                events.borrow_mut().push(format!("entry {}", e.path));
                Ok(())
            }),
            Tap {
                want: Box::new(|e: &Entry| e.path != "d"),
                data: Box::new(|d: &[u8], last: bool| {
                    events.borrow_mut().push(format!("data {d:?} {last}"));
                    Ok(())
                }),
            },
            false,
        );
        for c in tar.chunks(100) {
            s.push(c).unwrap();
        }
        s.finish().unwrap();
        assert_eq!(
            events.into_inner(),
            [
                "entry d",
                "entry d/empty",
                "data [] true",
                "entry d/full",
                "data [120, 121] true"
            ]
        );
    }

    #[test]
    fn a_host_error_stops_the_scan_in_its_own_words() {
        let tar = sample();
        let mut gz = crate::compress::gzip_encoder(Vec::new(), 6);
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        for bytes in [&tar, &gz] {
            let mut s = LayerScan::new(Box::new(|_| Err("enough".into())), false);
            let e = bytes.chunks(64).find_map(|c| s.push(c).err()).unwrap();
            assert!(matches!(&e, Error::Host(w) if w == "enough"), "{e:?}");
        }
    }
}
