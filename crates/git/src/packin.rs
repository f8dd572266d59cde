//! A pack as smart HTTP sends it (no index): every entry read in order, deltas resolved against bases in the
//! pack, every object's id computed from its content, and the `.idx` (version 2, with each entry's CRC-32) that
//! `git index-pack` would write, so a kept `.git` holds a pack git reads.

use std::collections::HashMap;
use std::rc::Rc;

use crate::object::{self, Kind, Oid};
use crate::pack::{apply_delta, entry, Index, Pack, Raw};
use crate::{Error, Limits};

/// Objects by id, as read.
pub type Objects = HashMap<Oid, (Kind, Rc<Vec<u8>>)>;

/// A received pack: the pack with its index, and its objects by id.
pub struct Received {
    pub pack: Rc<Pack>,
    pub idx: Vec<u8>,
    pub objects: Objects,
}

struct Slot {
    offset: u64,
    crc: u32,
    raw: Option<Raw>,
    done: Option<Oid>,
}

/// Read the pack `data`: its signature, object count and SHA-1 trailer checked, every entry inflated (bounded by
/// `limits`), deltas applied. A delta whose base is not in the pack (a thin pack) is an error.
pub fn receive(data: Vec<u8>, limits: &Limits) -> Result<Received, Error> {
    let bad = |msg: String| Error::Bad {
        what: "the pack the server sent".into(),
        msg,
    };
    if data.len() < 32 || &data[..4] != b"PACK" {
        return Err(bad("it is not a pack (no PACK signature)".into()));
    }
    let be32 = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    if be32(4) != 2 && be32(4) != 3 {
        return Err(bad(format!("pack version {}", be32(4))));
    }
    let count = be32(8) as usize;
    if count > limits.max_entries.saturating_mul(4) {
        return Err(Error::TooLarge {
            what: format!("a pack of {count} objects"),
            limit: limits.max_entries.saturating_mul(4) as u64,
        });
    }
    let (body, sum) = data.split_at(data.len() - 20);
    let sum: [u8; 20] = sum.try_into().unwrap_or_default();
    if sha1_smol::Sha1::from(body).digest().bytes() != sum {
        return Err(bad("its SHA-1 trailer does not match its content".into()));
    }
    let name = format!("pack-{}", Oid(sum).hex());
    let mut slots = Vec::with_capacity(count);
    let mut at = 12u64;
    for _ in 0..count {
        let (raw, next) = entry(&name, &data, at, limits.max_object)?;
        slots.push(Slot {
            offset: at,
            crc: {
                let mut crc = flate2::Crc::new();
                crc.update(&data[at as usize..next as usize]);
                crc.sum()
            },
            raw: Some(raw),
            done: None,
        });
        at = next;
    }
    if at as usize != data.len() - 20 {
        return Err(bad(format!(
            "{} bytes after its {count} objects",
            data.len() - 20 - at as usize
        )));
    }
    let objects = resolve(&mut slots, limits, &name)?;
    let idx = write_idx(&slots, sum);
    let index = Rc::new(Index::parse(&format!("{name}.idx"), &idx)?);
    let pack = Rc::new(Pack::new(&format!("{name}.pack"), data, index)?);
    Ok(Received { pack, idx, objects })
}

/// Give every slot its object: whole ones first, then deltas whose base is known, pass after pass.
fn resolve(slots: &mut [Slot], limits: &Limits, name: &str) -> Result<Objects, Error> {
    let mut objects = HashMap::new();
    let mut by_offset: HashMap<u64, Oid> = HashMap::new();
    let mut left = slots.len();
    while left > 0 {
        let before = left;
        for s in slots.iter_mut().filter(|s| s.done.is_none()) {
            let base = match &s.raw {
                Some(Raw::Whole(..)) => None,
                Some(Raw::OfsDelta(off, _)) => match by_offset.get(off) {
                    Some(id) => Some(*id),
                    None => continue,
                },
                Some(Raw::RefDelta(id, _)) if objects.contains_key(id) => Some(*id),
                _ => continue,
            };
            let (kind, body) = match (s.raw.take(), base) {
                (Some(Raw::Whole(kind, body)), _) => (kind, body),
                (Some(Raw::OfsDelta(_, d) | Raw::RefDelta(_, d)), Some(b)) => {
                    let (kind, base): &(Kind, Rc<Vec<u8>>) = &objects[&b];
                    let body =
                        apply_delta(base, &d, limits.max_object).map_err(|m| Error::Bad {
                            what: format!("{name}.pack"),
                            msg: format!("object at offset {}: {m}", s.offset),
                        })?;
                    (*kind, body)
                }
                _ => continue,
            };
            let id = object::hash(kind, &body);
            by_offset.insert(s.offset, id);
            objects.insert(id, (kind, Rc::new(body)));
            s.done = Some(id);
            left -= 1;
        }
        if left == before {
            return Err(Error::Bad {
                what: format!("{name}.pack"),
                msg: format!(
                    "{left} deltas have no base in the pack (a thin pack is not read here)"
                ),
            });
        }
    }
    Ok(objects)
}

/// The `.idx` (version 2) of resolved `slots`, for the pack whose trailer is `sum`.
fn write_idx(slots: &[Slot], sum: [u8; 20]) -> Vec<u8> {
    let mut rows: Vec<(Oid, u32, u64)> = slots
        .iter()
        .filter_map(|s| Some((s.done?, s.crc, s.offset)))
        .collect();
    rows.sort();
    let mut out = vec![0xff, b't', b'O', b'c', 0, 0, 0, 2];
    for b in 0..256usize {
        let n = rows.partition_point(|r| usize::from(r.0 .0[0]) <= b);
        out.extend((n as u32).to_be_bytes());
    }
    for r in &rows {
        out.extend(r.0 .0);
    }
    for r in &rows {
        out.extend(r.1.to_be_bytes());
    }
    let mut large = Vec::new();
    for r in &rows {
        if r.2 < 0x8000_0000 {
            out.extend((r.2 as u32).to_be_bytes());
        } else {
            out.extend((0x8000_0000 | large.len() as u32).to_be_bytes());
            large.push(r.2);
        }
    }
    for o in large {
        out.extend(o.to_be_bytes());
    }
    out.extend(sum);
    let s = sha1_smol::Sha1::from(&out).digest().bytes();
    out.extend(s);
    out
}
