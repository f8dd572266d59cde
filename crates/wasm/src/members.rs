//! An image archive read in place: the input (`Blob`/`File` or bytes) is indexed by reading only its tar headers,
//! and members are then read slice by slice (1 MiB at a time), so an archive is never copied into wasm memory whole.

use std::collections::BTreeMap;

use js_sys::{ArrayBuffer, Uint8Array};
use lw_layer::tar::TarReader;
use lw_layer::{path as tpath, EntryKind};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::js::{bytes_of, err};

/// Bytes read per slice of a `Blob` (the 64 KiB–1 MiB range: small calls keep V8's optimising tier).
pub const CHUNK: usize = 1 << 20;
/// Members of one archive: more is not an image archive.
const MAX_MEMBERS: usize = 200_000;
/// The largest header group (PAX records, long names) we read while indexing.
const MAX_HEADER_WINDOW: usize = 4 << 20;

/// Where the archive's bytes are.
pub enum Source {
    Blob(web_sys::Blob),
    Bytes(Vec<u8>),
}

impl Source {
    /// A `Blob`/`File` stays in the browser; other byte-like values are copied in.
    pub async fn from_js(v: &JsValue, what: &str) -> Result<Source, JsValue> {
        match v.dyn_ref::<web_sys::Blob>() {
            Some(b) => Ok(Source::Blob(b.clone())),
            None => Ok(Source::Bytes(bytes_of(v, what).await?)),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Source::Blob(b) => b.size() as u64,
            Source::Bytes(v) => v.len() as u64,
        }
    }

    /// `len` bytes at `off` (fewer at the end of the input).
    pub async fn read_at(&self, off: u64, len: usize) -> Result<Vec<u8>, JsValue> {
        let end = (off + len as u64).min(self.len());
        let off = off.min(end);
        match self {
            Source::Bytes(v) => Ok(v[off as usize..end as usize].to_vec()),
            Source::Blob(b) => {
                let part = b.slice_with_f64_and_f64(off as f64, end as f64)?;
                let buf: ArrayBuffer = JsFuture::from(part.array_buffer()).await?.unchecked_into();
                Ok(Uint8Array::new(&buf).to_vec())
            }
        }
    }

    /// Call `f` on consecutive chunks of `[off, off + len)`; an input shorter than that is an error.
    pub async fn chunks(
        &self,
        off: u64,
        len: u64,
        mut f: impl FnMut(&[u8]) -> Result<(), JsValue>,
    ) -> Result<(), JsValue> {
        let mut at = 0u64;
        while at < len {
            let want = (len - at).min(CHUNK as u64) as usize;
            let c = self.read_at(off + at, want).await?;
            if c.is_empty() {
                return Err(err("the input ends early (truncated)"));
            }
            f(&c)?;
            at += c.len() as u64;
        }
        Ok(())
    }
}

/// A regular file's data: offset and length in the archive.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    pub off: u64,
    pub size: u64,
}

/// The archive's regular files by (cleaned) member name, with links resolved inside the archive.
pub struct Members {
    pub files: BTreeMap<String, Member>,
    links: BTreeMap<String, String>,
}

fn header_size(block: &[u8]) -> u64 {
    let f = &block[124..136];
    if f[0] & 0x80 != 0 {
        return f[1..]
            .iter()
            .fold(0u64, |v, &b| v.saturating_mul(256).saturating_add(b as u64));
    }
    let s = std::str::from_utf8(f).unwrap_or("");
    u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
}

impl Members {
    /// Index `src` by reading its headers only (each header group through the strict tar reader).
    pub async fn index(src: &Source) -> Result<Members, JsValue> {
        let mut m = Members {
            files: BTreeMap::new(),
            links: BTreeMap::new(),
        };
        let total = src.len();
        let mut off = 0u64;
        let mut count = 0usize;
        while off < total {
            let mut window = 8192usize;
            let (entry, data_off, raw_size) = loop {
                let win = src.read_at(off, window).await?;
                let mut r = TarReader::new(&win[..]);
                match r.next_entry() {
                    Ok(Some(e)) => {
                        let at = r.offset() as usize;
                        let raw = header_size(&win[at - 512..at]);
                        break (Some(e), off + at as u64, raw);
                    }
                    Ok(None) => break (None, off, 0),
                    Err(lw_layer::Error::Truncated(_))
                        if (win.len() as u64) < total - off && window < MAX_HEADER_WINDOW =>
                    {
                        window *= 8;
                    }
                    Err(e) => return Err(err(format!("not a valid tar archive: {e}"))),
                }
            };
            let Some(e) = entry else { break };
            count += 1;
            if count > MAX_MEMBERS {
                return Err(err(format!(
                    "the archive has more than {MAX_MEMBERS} members: not an image archive"
                )));
            }
            let data = match &e.kind {
                EntryKind::File => e.size,
                EntryKind::Dir | EntryKind::Symlink(_) => 0,
                _ => raw_size,
            };
            if data_off + data > total {
                return Err(err(format!(
                    "not a valid tar archive: {} ends {} bytes past the end (truncated)",
                    e.path,
                    data_off + data - total
                )));
            }
            match &e.kind {
                EntryKind::File => {
                    m.links.remove(&e.path);
                    m.files.insert(
                        e.path.clone(),
                        Member {
                            off: data_off,
                            size: e.size,
                        },
                    );
                }
                EntryKind::Symlink(t) => {
                    let r = tpath::resolve_link(&e.path, t)
                        .filter(|_| !t.starts_with('/'))
                        .ok_or_else(|| {
                            err(format!(
                                "symlink {} -> {t} points out of the archive",
                                e.path
                            ))
                        })?;
                    m.links.insert(e.path.clone(), r);
                }
                EntryKind::Hardlink(t) => {
                    m.links.insert(e.path.clone(), t.clone());
                }
                _ => {}
            }
            off = data_off + data.div_ceil(512) * 512;
        }
        Ok(m)
    }

    /// The member `name` stands for (links followed, a bounded number of times); `name` is cleaned first, so a
    /// name that climbs out of the archive (`../x`, `/x`) is an error, not a lookup.
    pub fn get(&self, name: &str) -> Result<Option<Member>, JsValue> {
        let mut name = tpath::clean(name).map_err(|e| err(format!("member name {name:?}: {e}")))?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Ok(Some(*f));
            }
            match self.links.get(&name) {
                Some(n) => name = n.clone(),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// A whole member, refusing one larger than `limit`.
    pub async fn read(
        &self,
        src: &Source,
        name: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, JsValue> {
        let Some(m) = self.get(name)? else {
            return Ok(None);
        };
        if m.size > limit {
            return Err(err(format!(
                "{name} is {} bytes, more than the {limit} allowed",
                m.size
            )));
        }
        read_member(src, m, name).await.map(Some)
    }
}

/// A member's bytes, read in chunks into one allocation that fails cleanly when the tab lacks the memory.
pub async fn read_member(src: &Source, m: Member, name: &str) -> Result<Vec<u8>, JsValue> {
    let mut out = Vec::new();
    let size = usize::try_from(m.size).unwrap_or(usize::MAX);
    out.try_reserve_exact(size).map_err(|_| {
        err(format!(
            "{name} ({} bytes) does not fit in the tab's memory",
            m.size
        ))
    })?;
    src.chunks(m.off, m.size, |c| {
        out.extend_from_slice(c);
        Ok(())
    })
    .await?;
    Ok(out)
}
