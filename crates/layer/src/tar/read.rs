//! A strict streaming tar reader: verifies header checksums, honours PAX and GNU long names, cleans every path
//! (refusing `..` and absolute names), and reports truncation instead of returning short data.

use std::collections::BTreeMap;
use std::io::Read;

use super::header::*;
use super::BLOCK;
use crate::entry::{Entry, EntryKind};
use crate::{path, Error};

/// Metadata records (PAX, GNU long names) above this size are refused: they are never legitimately large.
const MAX_META: u64 = 1 << 20;

/// Reads entries one at a time; the data of the current entry is read with [`TarReader::read_data`] before the next
/// call to [`TarReader::next_entry`] (unread data is skipped).
pub struct TarReader<R: Read> {
    inner: R,
    offset: u64,
    remaining: u64,
    padding: u64,
    done: bool,
    current: String,
    /// Names cleaned as rooted ([`path::clean_rooted`]) rather than refused when absolute or climbing.
    rooted: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            done: false,
            current: String::new(),
            rooted: false,
        }
    }

    /// Read absolute names and names with `..` as BuildKit unpacks an ADDed archive: under the root, a `..` at the
    /// root staying there (`/abs/g` → `abs/g`, `../evil` → `evil`), hard link targets alike.
    pub fn rooted_names(mut self) -> Self {
        self.rooted = true;
        self
    }

    /// Bytes consumed from the underlying reader.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<usize, Error> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.inner.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        self.offset += got as u64;
        if got != 0 && got < buf.len() {
            return Err(Error::Truncated(format!(
                "{what}: archive ends {} bytes early",
                buf.len() - got
            )));
        }
        Ok(got)
    }

    fn skip(&mut self, mut n: u64, what: &str) -> Result<(), Error> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = buf.len().min(n as usize);
            let got = self.inner.read(&mut buf[..want])?;
            if got == 0 {
                return Err(Error::Truncated(format!(
                    "{what}: archive ends {n} bytes early"
                )));
            }
            self.offset += got as u64;
            n -= got as u64;
        }
        Ok(())
    }

    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>, Error> {
        if size > MAX_META {
            return Err(Error::TooLarge {
                path: what.to_string(),
                actual: size,
                limit: MAX_META,
            });
        }
        let mut data = vec![0u8; size as usize];
        if self.fill(&mut data, what)? < data.len() {
            return Err(Error::Truncated(format!(
                "{what}: archive ends inside a metadata record"
            )));
        }
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.skip(pad, what)?;
        Ok(data)
    }

    /// The next entry's metadata, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        if self.done {
            return Ok(None);
        }
        let what = self.current.clone();
        self.skip(self.remaining + self.padding, &what)?;
        self.remaining = 0;
        self.padding = 0;

        let mut ext = Extensions::default();
        loop {
            let at = self.offset;
            let mut block = [0u8; BLOCK];
            if self.fill(&mut block, "tar header")? == 0 {
                if !ext.pax.is_empty() || ext.gnu_name.is_some() {
                    return Err(Error::Truncated(
                        "archive ends after an extended header".into(),
                    ));
                }
                // End of input on a block boundary: accepted without the end marker, as Go's reader does.
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            let h = Header {
                block: &block,
                at,
                rooted: self.rooted,
            };
            h.verify_checksum()?;
            let size = h.num(SIZE, "size")?;
            if size < 0 {
                return Err(h.bad("negative size".into()));
            }
            if self.read_extension(&h, size as u64, &mut ext)? {
                continue;
            }
            let (entry, declared) = h.entry(size as u64, ext)?;
            // Hard links and others may declare a size but carry no data in practice; skip what they declare.
            self.remaining = if matches!(entry.kind, EntryKind::Dir | EntryKind::Symlink(_)) {
                0
            } else {
                declared
            };
            self.padding = (BLOCK as u64 - self.remaining % BLOCK as u64) % BLOCK as u64;
            self.current = entry.path.clone();
            return Ok(Some(entry));
        }
    }

    /// Reads a PAX or GNU extension header's data into `ext`; false for a header of an entry.
    fn read_extension(
        &mut self,
        h: &Header<'_>,
        size: u64,
        ext: &mut Extensions,
    ) -> Result<bool, Error> {
        match h.block[TYPEFLAG] {
            b'x' => {
                let data = self.read_meta(size, "PAX header")?;
                let recs = parse_pax(&data).ok_or_else(|| h.bad("malformed PAX records".into()))?;
                ext.pax.extend(recs);
            }
            // Global headers only carry defaults we do not use (comment, charset); read and drop.
            b'g' => drop(self.read_meta(size, "PAX global header")?),
            b'L' => {
                let mut v = self.read_meta(size, "GNU long name")?;
                v.retain(|&b| b != 0);
                ext.gnu_name = Some(v);
            }
            b'K' => {
                let mut v = self.read_meta(size, "GNU long link")?;
                v.retain(|&b| b != 0);
                ext.gnu_link = Some(v);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Read data of the current entry; 0 at its end. A short archive is an error, never short data.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(self.remaining as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Error::Truncated(format!(
                "{}: archive ends {} bytes into the data it declares",
                self.current, self.remaining
            )));
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }

    /// All data of the current entry, refusing more than `limit` bytes.
    pub fn read_to_vec(&mut self, limit: u64) -> Result<Vec<u8>, Error> {
        if self.remaining > limit {
            return Err(Error::TooLarge {
                path: self.current.clone(),
                actual: self.remaining,
                limit,
            });
        }
        let mut out = Vec::with_capacity(self.remaining as usize);
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.read_data(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// A `Read` view of the current entry's data.
    pub fn data(&mut self) -> DataReader<'_, R> {
        DataReader(self)
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Reads the current entry's data through `std::io::Read`.
pub struct DataReader<'a, R: Read>(&'a mut TarReader<R>);

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_data(buf).map_err(|e| match e {
            Error::Io(io) => io,
            other => std::io::Error::new(std::io::ErrorKind::UnexpectedEof, other.to_string()),
        })
    }
}

/// What extension headers said about the entry that follows them.
#[derive(Default)]
struct Extensions {
    pax: BTreeMap<String, Vec<u8>>,
    gnu_name: Option<Vec<u8>>,
    gnu_link: Option<Vec<u8>>,
}

/// One header block and where it starts, for its fields and its errors.
struct Header<'a> {
    block: &'a [u8; BLOCK],
    at: u64,
    rooted: bool,
}

impl Header<'_> {
    fn clean_name(&self, name: &str) -> Result<String, Error> {
        if self.rooted {
            path::clean_rooted(name)
        } else {
            path::clean(name)
        }
    }

    fn bad(&self, reason: String) -> Error {
        Error::BadHeader {
            offset: self.at,
            reason,
        }
    }

    fn num(&self, f: (usize, usize), name: &str) -> Result<i64, Error> {
        parse_number(field(self.block, f))
            .ok_or_else(|| self.bad(format!("unreadable {name} field")))
    }

    fn verify_checksum(&self) -> Result<(), Error> {
        let stored = parse_number(field(self.block, CHKSUM))
            .ok_or_else(|| self.bad("unreadable checksum".into()))?;
        let (unsigned, signed) = checksum(self.block);
        if stored != unsigned as i64 && stored != signed {
            return Err(self.bad(format!(
                "checksum mismatch (stored {stored:o}, computed {unsigned:o}): not a tar archive or corrupted"
            )));
        }
        Ok(())
    }

    /// The entry name and link target: ustar's prefix joined, then a GNU long name or link, then PAX's `path` or
    /// `linkpath` (what comes later wins).
    fn names(&self, ext: &mut Extensions) -> Result<(String, String), Error> {
        let block = self.block;
        let mut raw_name = cstr(block, NAME).to_vec();
        if field(block, MAGIC) == b"ustar\0" {
            let prefix = cstr(block, PREFIX);
            if !prefix.is_empty() {
                raw_name = [prefix, b"/", &raw_name].concat();
            }
        }
        if let Some(n) = ext.gnu_name.take() {
            raw_name = n;
        }
        if let Some(n) = ext.pax.remove("path") {
            raw_name = n;
        }
        let mut raw_link = cstr(block, LINKNAME).to_vec();
        if let Some(n) = ext.gnu_link.take() {
            raw_link = n;
        }
        if let Some(n) = ext.pax.remove("linkpath") {
            raw_link = n;
        }
        let name = String::from_utf8(raw_name).map_err(|e| {
            self.bad(format!(
                "entry name is not UTF-8: {:?}",
                String::from_utf8_lossy(e.as_bytes())
            ))
        })?;
        let link = String::from_utf8(raw_link)
            .map_err(|_| self.bad(format!("{name}: link target is not UTF-8")))?;
        Ok((name, link))
    }

    /// The entry this header (with its extensions) describes, and the data size it declares.
    fn entry(&self, size: u64, mut ext: Extensions) -> Result<(Entry, u64), Error> {
        let (name, link) = self.names(&mut ext)?;
        let clean = self.clean_name(&name)?;
        let pax = &ext.pax;
        let pax_num = |key: &str| -> Result<Option<i64>, Error> {
            match pax.get(key) {
                None => Ok(None),
                Some(v) => {
                    let s = String::from_utf8_lossy(v);
                    // mtime may carry a fraction; we keep whole seconds.
                    let whole = s.split('.').next().unwrap_or("");
                    whole
                        .parse::<i64>()
                        .map(Some)
                        .map_err(|_| self.bad(format!("{name}: bad PAX {key} {s:?}")))
                }
            }
        };
        let size = match pax_num("size")? {
            Some(s) if s >= 0 => s as u64,
            Some(_) => return Err(self.bad(format!("{name}: negative PAX size"))),
            None => size,
        };
        let uid = pax_num("uid")?.unwrap_or(self.num(UID, "uid")?);
        let gid = pax_num("gid")?.unwrap_or(self.num(GID, "gid")?);
        let mtime = pax_num("mtime")?.unwrap_or(self.num(MTIME, "mtime")?);
        let mode = self.num(MODE, "mode")?;
        let kind = self.kind(name, link)?;
        let xattrs = pax
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("SCHILY.xattr.")
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        let data_len = if kind == EntryKind::File { size } else { 0 };
        let entry = Entry {
            path: clean,
            kind,
            mode: (mode as u32) & 0o7777,
            uid: uid as u32,
            gid: gid as u32,
            mtime,
            size: data_len,
            xattrs,
        };
        Ok((entry, size))
    }

    /// The entry's kind from its type flag (`name` for a directory written as a file with a trailing slash).
    fn kind(&self, name: String, link: String) -> Result<EntryKind, Error> {
        let flag = self.block[TYPEFLAG];
        let dev = || -> Result<(u32, u32), Error> {
            Ok((
                self.num(DEVMAJOR, "devmajor")? as u32,
                self.num(DEVMINOR, "devminor")? as u32,
            ))
        };
        Ok(match flag {
            b'0' | 0 | b'7' => {
                if name.ends_with('/') && flag == 0 {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                }
            }
            b'1' => EntryKind::Hardlink(self.clean_name(&link)?),
            b'2' => EntryKind::Symlink(link),
            b'3' => {
                let (major, minor) = dev()?;
                EntryKind::CharDevice { major, minor }
            }
            b'4' => {
                let (major, minor) = dev()?;
                EntryKind::BlockDevice { major, minor }
            }
            b'5' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            other => {
                return Err(Error::Unsupported {
                    path: name,
                    reason: format!("entry type {:?}", other as char),
                })
            }
        })
    }
}
