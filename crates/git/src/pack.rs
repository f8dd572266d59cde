//! Pack files and their `.idx` (version 2): the index finds an object's offset, the pack holds it whole or as a
//! delta (OFS_DELTA against an earlier offset, REF_DELTA against an id) that is applied here. Both files' SHA-1
//! trailers are checked when they are read.

use std::rc::Rc;

use crate::object::{inflate_exact, Kind, Oid};
use crate::Error;

/// A pack's index: sorted ids and their offsets in the pack.
#[derive(Debug)]
pub struct Index {
    oids: Vec<Oid>,
    offsets: Vec<u64>,
    /// The SHA-1 of the pack this index describes.
    pub pack_sum: [u8; 20],
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn sha1(b: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(b).digest().bytes()
}

impl Index {
    /// Parse `data`, the file `name` (for messages).
    pub fn parse(name: &str, data: &[u8]) -> Result<Index, Error> {
        let bad = |msg: &str| Error::Bad {
            what: name.to_string(),
            msg: msg.to_string(),
        };
        if data.len() < 8 + 1024 + 40 || data[..4] != [0xff, b't', b'O', b'c'] {
            return Err(bad(
                "not a pack index of version 2 (version 1 indexes are not read)",
            ));
        }
        if be32(data, 4) != 2 {
            return Err(bad(&format!("pack index version {}", be32(data, 4))));
        }
        let (body, sum) = data.split_at(data.len() - 20);
        if sha1(body) != sum[..] {
            return Err(bad("its SHA-1 trailer does not match its content"));
        }
        let fan = |i: usize| be32(data, 8 + 4 * i) as usize;
        for i in 1..256 {
            if fan(i) < fan(i - 1) {
                return Err(bad("its fan-out table is not sorted"));
            }
        }
        let n = fan(255);
        let oids_at = 8 + 1024;
        let offs_at = oids_at + n * 24; // ids, then CRCs
        let large_at = offs_at + n * 4;
        if large_at + 40 > data.len() {
            return Err(bad("it is truncated"));
        }
        let oids: Vec<Oid> = (0..n)
            .map(|i| {
                Oid::from_slice(&data[oids_at + 20 * i..oids_at + 20 * i + 20])
                    .unwrap_or(Oid([0; 20]))
            })
            .collect();
        if oids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("its ids are not sorted"));
        }
        let mut offsets = Vec::with_capacity(n);
        for i in 0..n {
            let o = be32(data, offs_at + 4 * i);
            offsets.push(if o & 0x8000_0000 == 0 {
                u64::from(o)
            } else {
                let at = large_at + 8 * (o & 0x7fff_ffff) as usize;
                if at + 8 > data.len() - 40 {
                    return Err(bad("a large offset is outside the file"));
                }
                u64::from_be_bytes(data[at..at + 8].try_into().unwrap_or_default())
            });
        }
        let mut pack_sum = [0u8; 20];
        pack_sum.copy_from_slice(&data[data.len() - 40..data.len() - 20]);
        Ok(Index {
            oids,
            offsets,
            pack_sum,
        })
    }

    /// The offset of `oid` in the pack, if the pack has it.
    pub fn find(&self, oid: &Oid) -> Option<u64> {
        self.oids.binary_search(oid).ok().map(|i| self.offsets[i])
    }

    pub fn len(&self) -> usize {
        self.oids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.oids.is_empty()
    }
}

/// A pack file, checked against its index.
pub struct Pack {
    pub name: String,
    pub data: Vec<u8>,
    pub index: Rc<Index>,
}

/// What one pack entry is: a whole object, or a delta against a base found by offset or by id.
pub enum Raw {
    Whole(Kind, Vec<u8>),
    OfsDelta(u64, Vec<u8>),
    RefDelta(Oid, Vec<u8>),
}

impl Pack {
    /// Check `data` (the file `name`) against `index`: signature, version, object count and SHA-1 trailer.
    pub fn new(name: &str, data: Vec<u8>, index: Rc<Index>) -> Result<Pack, Error> {
        let bad = |msg: String| Error::Bad {
            what: name.to_string(),
            msg,
        };
        if data.len() < 32 || &data[..4] != b"PACK" {
            return Err(bad("not a pack file".into()));
        }
        let version = be32(&data, 4);
        if version != 2 && version != 3 {
            return Err(bad(format!("pack version {version}")));
        }
        if be32(&data, 8) as usize != index.len() {
            return Err(bad(format!(
                "holds {} objects, its index {}",
                be32(&data, 8),
                index.len()
            )));
        }
        let (body, sum) = data.split_at(data.len() - 20);
        let got = sha1(body);
        if got != sum[..] || got != index.pack_sum {
            return Err(bad(
                "its SHA-1 trailer does not match its content or its index".into(),
            ));
        }
        Ok(Pack {
            name: name.to_string(),
            data,
            index,
        })
    }

    /// The entry at `offset`, inflated (`limit` bounds any one object or delta).
    pub fn raw(&self, offset: u64, limit: u64) -> Result<Raw, Error> {
        entry(&self.name, &self.data, offset, limit).map(|(raw, _)| raw)
    }
}

/// The entry of the pack `data` (the file `name`) at `offset`, inflated, and the offset where the next begins.
pub fn entry(name: &str, data: &[u8], offset: u64, limit: u64) -> Result<(Raw, u64), Error> {
    let bad = |msg: String| Error::Bad {
        what: name.to_string(),
        msg: format!("object at offset {offset}: {msg}"),
    };
    let end = data.len().saturating_sub(20);
    let mut at = usize::try_from(offset).map_err(|_| bad("offset out of range".into()))?;
    if at < 12 || at >= end {
        return Err(bad("offset outside the pack".into()));
    }
    let mut next = || -> Result<u8, Error> {
        let b = *data
            .get(at)
            .filter(|_| at < end)
            .ok_or_else(|| bad("header runs past the end".into()))?;
        at += 1;
        Ok(b)
    };
    let mut c = next()?;
    let ty = (c >> 4) & 7;
    let mut size = u64::from(c & 15);
    let mut shift = 4;
    while c & 0x80 != 0 {
        c = next()?;
        if shift > 57 {
            return Err(bad("size does not fit 64 bits".into()));
        }
        size |= u64::from(c & 0x7f) << shift;
        shift += 7;
    }
    let base = match ty {
        6 => {
            let mut c = next()?;
            let mut rel = u64::from(c & 0x7f);
            while c & 0x80 != 0 {
                c = next()?;
                rel = rel
                    .checked_add(1)
                    .and_then(|r| r.checked_mul(128))
                    .ok_or_else(|| bad("delta base offset overflows".into()))?
                    | u64::from(c & 0x7f);
            }
            if rel == 0 || rel > offset {
                return Err(bad("delta base offset is outside the pack".into()));
            }
            Some(Err(offset - rel))
        }
        7 => {
            if at + 20 > end {
                return Err(bad("delta base id runs past the end".into()));
            }
            let id = Oid::from_slice(&data[at..at + 20]).unwrap_or(Oid([0; 20]));
            at += 20;
            Some(Ok(id))
        }
        _ => None,
    };
    let (body, used) = inflate_exact(&data[at..end], size, limit).map_err(bad)?;
    let next = (at + used) as u64;
    let raw = match (ty, base) {
        (1, _) => Raw::Whole(Kind::Commit, body),
        (2, _) => Raw::Whole(Kind::Tree, body),
        (3, _) => Raw::Whole(Kind::Blob, body),
        (4, _) => Raw::Whole(Kind::Tag, body),
        (_, Some(Err(off))) => Raw::OfsDelta(off, body),
        (_, Some(Ok(id))) => Raw::RefDelta(id, body),
        _ => return Err(bad(format!("unknown object type {ty}"))),
    };
    Ok((raw, next))
}

fn varint(d: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let c = *d.get(*at)?;
        *at += 1;
        if shift > 63 {
            return None;
        }
        v |= u64::from(c & 0x7f) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
}

/// Apply a delta to `base` (git's copy/insert instructions); the result is bounded by `limit`.
pub fn apply_delta(base: &[u8], delta: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut at = 0;
    let src = varint(delta, &mut at).ok_or("delta header is truncated")?;
    let dst = varint(delta, &mut at).ok_or("delta header is truncated")?;
    if src != base.len() as u64 {
        return Err(format!(
            "delta expects a base of {src} bytes, the base has {}",
            base.len()
        ));
    }
    if dst > limit {
        return Err(format!(
            "delta makes {dst} bytes, over the limit of {limit}"
        ));
    }
    let mut out = Vec::with_capacity(dst as usize);
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            let mut arg = |bits: u8, n: usize| -> Result<usize, String> {
                let mut v = 0usize;
                for i in 0..n {
                    if op & (bits << i) != 0 {
                        let b = *delta.get(at).ok_or("delta copy is truncated")?;
                        at += 1;
                        v |= usize::from(b) << (8 * i);
                    }
                }
                Ok(v)
            };
            let off = arg(0x01, 4)?;
            let size = match arg(0x10, 3)? {
                0 => 0x10000,
                n => n,
            };
            let chunk = off
                .checked_add(size)
                .and_then(|e| base.get(off..e))
                .ok_or("delta copies from outside its base")?;
            out.extend_from_slice(chunk);
        } else if op != 0 {
            let chunk = delta
                .get(at..at + usize::from(op))
                .ok_or("delta insert is truncated")?;
            out.extend_from_slice(chunk);
            at += usize::from(op);
        } else {
            return Err("delta has the reserved instruction 0".into());
        }
        if out.len() as u64 > dst {
            return Err(format!("delta makes more than the {dst} bytes it declares"));
        }
    }
    if out.len() as u64 != dst {
        return Err(format!("delta makes {} bytes, {dst} declared", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_copy_and_insert() {
        let base = b"0123456789";
        // src 10, dst 7: copy 4 bytes from offset 2, insert "xyz".
        let delta = [10, 7, 0x80 | 0x01 | 0x10, 2, 4, 3, b'x', b'y', b'z'];
        assert_eq!(apply_delta(base, &delta, 100).unwrap(), b"2345xyz");
        // Wrong base size, copy outside the base, reserved op, short output, over the limit.
        assert!(apply_delta(b"short", &delta, 100).is_err());
        assert!(apply_delta(base, &[10, 4, 0x91, 8, 4], 100).is_err());
        assert!(apply_delta(base, &[10, 1, 0], 100).is_err());
        assert!(apply_delta(base, &[10, 8, 0x91, 2, 4], 100).is_err());
        assert!(apply_delta(base, &delta, 6).is_err());
    }

    #[test]
    fn an_index_that_is_not_version_2_is_refused_by_name() {
        let e = Index::parse("pack-x.idx", &[0u8; 2000])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pack-x.idx"), "{e}");
    }
}
