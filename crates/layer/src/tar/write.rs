//! A deterministic streaming tar writer: ustar headers, PAX records only where ustar cannot hold a value, empty
//! user/group names, mtimes optionally clamped to an epoch, and no trailing record padding beyond two zero blocks.

use std::io::{self, Read, Write};

use super::header::*;
use super::BLOCK;
use crate::entry::{Entry, EntryKind};
use crate::Error;

/// Options that affect the bytes written.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Entries newer than this (seconds since the epoch) get this mtime (SOURCE_DATE_EPOCH semantics).
    pub clamp_mtime: Option<i64>,
}

/// Writes tar entries to `out` in the order given; callers sort entries when they need a canonical layer.
pub struct TarWriter<W: Write> {
    out: W,
    opts: WriteOptions,
    remaining: u64,
    written_in_entry: u64,
    current: String,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W, opts: WriteOptions) -> Self {
        TarWriter {
            out,
            opts,
            remaining: 0,
            written_in_entry: 0,
            current: String::new(),
        }
    }

    /// Write `entry`'s header; for a regular file, exactly `entry.size` bytes must follow via [`Self::write_data`].
    pub fn header(&mut self, entry: &Entry) -> Result<(), Error> {
        self.end_entry()?;
        let mtime = match self.opts.clamp_mtime {
            Some(epoch) if entry.mtime > epoch => epoch,
            _ => entry.mtime,
        };
        let size = if entry.has_data() { entry.size } else { 0 };
        let (mut block, pax) = ustar_header(entry, size, mtime);
        if !pax.is_empty() {
            self.write_pax(&entry.path, entry.is_dir(), pax)?;
        }
        finish_checksum(&mut block);
        self.out.write_all(&block)?;
        self.remaining = size;
        self.written_in_entry = size;
        self.current = entry.path.clone();
        Ok(())
    }

    /// A PAX extended header for `path` with `pax`'s records, sorted (written before the entry's own header).
    fn write_pax(
        &mut self,
        path: &str,
        is_dir: bool,
        mut pax: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        pax.sort();
        let data: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let pax_name = ascii_truncated(&pax_header_name(path, is_dir), NAME.1);
        let mut ph = [0u8; BLOCK];
        put(&mut ph, NAME, pax_name.as_bytes());
        put_octal(&mut ph, MODE, 0);
        put_octal(&mut ph, UID, 0);
        put_octal(&mut ph, GID, 0);
        put_octal(&mut ph, SIZE, data.len() as u64);
        put_octal(&mut ph, MTIME, 0);
        ph[TYPEFLAG] = b'x';
        put(&mut ph, MAGIC, b"ustar\0");
        put(&mut ph, VERSION, b"00");
        finish_checksum(&mut ph);
        self.out.write_all(&ph)?;
        self.out.write_all(&data)?;
        self.pad(data.len() as u64)?;
        Ok(())
    }

    /// Write file data for the current entry.
    pub fn write_data(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() as u64 > self.remaining {
            return Err(Error::TooLarge {
                path: self.current.clone(),
                actual: self.written_in_entry - self.remaining + data.len() as u64,
                limit: self.written_in_entry,
            });
        }
        self.out.write_all(data)?;
        self.remaining -= data.len() as u64;
        Ok(())
    }

    /// Count `n` bytes of the current entry's data as written: the caller put them into the sink itself (through
    /// [`TarWriter::get_mut`]), as the tab splices a stored file into an archive `Blob` without reading it.
    pub fn data_written_by_caller(&mut self, n: u64) -> Result<(), Error> {
        if n > self.remaining {
            return Err(Error::TooLarge {
                path: self.current.clone(),
                actual: self.written_in_entry - self.remaining + n,
                limit: self.written_in_entry,
            });
        }
        self.remaining -= n;
        Ok(())
    }

    /// Header plus all of `data`; the reader must yield exactly `entry.size` bytes for a file.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), Error> {
        self.header(entry)?;
        if entry.has_data() {
            let mut buf = vec![0u8; 64 * 1024];
            while self.remaining > 0 {
                let want = buf.len().min(self.remaining as usize);
                let n = data.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(Error::Truncated(format!(
                        "{}: source ended {} bytes short of its declared size",
                        entry.path, self.remaining
                    )));
                }
                self.write_data(&buf[..n])?;
            }
        }
        Ok(())
    }

    /// Header plus bytes already in memory.
    pub fn append_bytes(&mut self, entry: &Entry, bytes: &[u8]) -> Result<(), Error> {
        let mut e = entry.clone();
        if e.has_data() {
            e.size = bytes.len() as u64;
        }
        self.append(&e, &mut &bytes[..])
    }

    /// Pad the current entry's data to its block now (the next header would): the sink then holds every byte of
    /// the entries so far.
    pub fn close_entry(&mut self) -> Result<(), Error> {
        self.end_entry()
    }

    fn end_entry(&mut self) -> Result<(), Error> {
        if self.remaining > 0 {
            return Err(Error::Truncated(format!(
                "{}: {} bytes of data were not written",
                self.current, self.remaining
            )));
        }
        if self.written_in_entry > 0 {
            self.pad(self.written_in_entry)?;
            self.written_in_entry = 0;
        }
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// End the archive with two zero blocks and return the sink.
    pub fn finish(mut self) -> Result<W, Error> {
        self.end_entry()?;
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

fn finish_checksum(block: &mut [u8; BLOCK]) {
    let (sum, _) = checksum(block);
    let s = format!("{sum:06o}\0 ");
    put(block, CHKSUM, s.as_bytes());
}

/// Split a long ASCII name at a `/` so that it fits ustar's 155-byte prefix and 100-byte name.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() || name.len() > PREFIX.1 + 1 + NAME.1 {
        return None;
    }
    let bytes = name.as_bytes();
    let start = name.len().saturating_sub(NAME.1 + 1);
    (start..name.len().min(PREFIX.1 + 1))
        .find(|&i| bytes[i] == b'/' && i > 0 && name.len() - i - 1 > 0)
        .map(|i| (&name[..i], &name[i + 1..]))
}

/// Go's `path.Join(dir, "PaxHeaders.0", file)` of `path.Split(name)`, where a directory's name ends with `/`
/// (so a directory's extended header is named `dir/PaxHeaders.0`).
fn pax_header_name(path: &str, is_dir: bool) -> String {
    let (dir, base) = if is_dir {
        (path, "")
    } else {
        (crate::path::parent(path), crate::path::base(path))
    };
    [dir, "PaxHeaders.0", base]
        .iter()
        .filter(|c| !c.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// A best-effort ustar name field, as Go's archive/tar writes it: the non-ASCII characters (and NULs) dropped,
/// cut to `max` bytes, and trailing slashes of a cut name dropped.
fn ascii_truncated(s: &str, max: usize) -> String {
    let ascii: String = s.chars().filter(|c| c.is_ascii() && *c != '\0').collect();
    if ascii.len() <= max {
        return ascii;
    }
    ascii[..max].trim_end_matches('/').to_string()
}

/// The entry's ustar header block (checksum not yet set) and the PAX records for what ustar cannot hold: a long
/// or non-ASCII name or link target, ids, size or mtime out of octal range, and xattrs.
fn ustar_header(entry: &Entry, size: u64, mtime: i64) -> ([u8; BLOCK], Vec<(String, Vec<u8>)>) {
    let mut name = entry.path.clone();
    if entry.is_dir() && !name.is_empty() {
        name.push('/');
    }
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut block = [0u8; BLOCK];

    // Name: plain, split into prefix/name, or PAX.
    if name.len() <= NAME.1 && name.is_ascii() {
        put(&mut block, NAME, name.as_bytes());
    } else if let Some((prefix, rest)) = split_ustar(&name) {
        put(&mut block, PREFIX, prefix.as_bytes());
        put(&mut block, NAME, rest.as_bytes());
    } else {
        pax.push(("path".into(), name.clone().into_bytes()));
        put(&mut block, NAME, ascii_truncated(&name, NAME.1).as_bytes());
    }
    let (flag, link) = match &entry.kind {
        EntryKind::File => (b'0', None),
        EntryKind::Hardlink(t) => (b'1', Some(t)),
        EntryKind::Symlink(t) => (b'2', Some(t)),
        EntryKind::CharDevice { .. } => (b'3', None),
        EntryKind::BlockDevice { .. } => (b'4', None),
        EntryKind::Dir => (b'5', None),
        EntryKind::Fifo => (b'6', None),
    };
    if let Some(link) = link {
        if link.len() <= LINKNAME.1 && link.is_ascii() {
            put(&mut block, LINKNAME, link.as_bytes());
        } else {
            pax.push(("linkpath".into(), link.clone().into_bytes()));
            put(
                &mut block,
                LINKNAME,
                ascii_truncated(link, LINKNAME.1).as_bytes(),
            );
        }
    }
    put_octal(&mut block, MODE, u64::from(entry.mode & 0o7777));
    for (f, v, key) in [(UID, entry.uid, "uid"), (GID, entry.gid, "gid")] {
        if u64::from(v) > octal_max(f.1) {
            pax.push((key.into(), v.to_string().into_bytes()));
            put_octal(&mut block, f, 0);
        } else {
            put_octal(&mut block, f, u64::from(v));
        }
    }
    if size > octal_max(SIZE.1) {
        pax.push(("size".into(), size.to_string().into_bytes()));
        put_octal(&mut block, SIZE, 0);
    } else {
        put_octal(&mut block, SIZE, size);
    }
    if mtime < 0 || mtime as u64 > octal_max(MTIME.1) {
        pax.push(("mtime".into(), mtime.to_string().into_bytes()));
        put_octal(&mut block, MTIME, 0);
    } else {
        put_octal(&mut block, MTIME, mtime as u64);
    }
    block[TYPEFLAG] = flag;
    put(&mut block, MAGIC, b"ustar\0");
    put(&mut block, VERSION, b"00");
    let (major, minor) = match entry.kind {
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            (major, minor)
        }
        _ => (0, 0),
    };
    put_octal(&mut block, DEVMAJOR, u64::from(major));
    put_octal(&mut block, DEVMINOR, u64::from(minor));
    for (k, v) in &entry.xattrs {
        pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
    }
    (block, pax)
}

#[cfg(test)]
mod tests {
    use super::{ascii_truncated, pax_header_name};

    #[test]
    fn ustar_names_are_go_s_best_effort() {
        assert_eq!(ascii_truncated("ünïcødé-ファイル.txt", 100), "ncd-.txt");
        assert_eq!(
            ascii_truncated(&format!("{}/b", "a".repeat(99)), 100),
            "a".repeat(99)
        );
        assert_eq!(ascii_truncated("abc", 2), "ab");
        assert_eq!(
            pax_header_name("d/ünï.txt", false),
            "d/PaxHeaders.0/ünï.txt"
        );
        assert_eq!(pax_header_name("f", false), "PaxHeaders.0/f");
        assert_eq!(pax_header_name("d/dïr", true), "d/dïr/PaxHeaders.0");
    }
}
