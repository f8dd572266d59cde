//! Git objects: ids (SHA-1 of `TYPE SIZE\0BODY`, checked for every object read), zlib inflation with bounds, loose
//! objects, and the parts of commits, tags and trees a checkout reads.

use std::fmt;

use flate2::{Decompress, FlushDecompress, Status};

use crate::Error;

/// An object id: the SHA-1 of the object's header and body.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub [u8; 20]);

impl Oid {
    /// From 40 hex digits (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Oid> {
        let b = s.as_bytes();
        if b.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in b.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Oid(out))
    }

    pub fn from_slice(b: &[u8]) -> Option<Oid> {
        Some(Oid(b.try_into().ok()?))
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// The four object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }

    fn from_name(s: &[u8]) -> Option<Kind> {
        Some(match s {
            b"commit" => Kind::Commit,
            b"tree" => Kind::Tree,
            b"blob" => Kind::Blob,
            b"tag" => Kind::Tag,
            _ => return None,
        })
    }
}

/// The id an object of `kind` with `body` has.
pub fn hash(kind: Kind, body: &[u8]) -> Oid {
    let mut h = sha1_smol::Sha1::new();
    h.update(format!("{} {}\0", kind.name(), body.len()).as_bytes());
    h.update(body);
    Oid(h.digest().bytes())
}

/// Refuse an object whose content does not hash to the id it was asked for (a corrupt pack, or a server lying).
pub fn verify(want: &Oid, kind: Kind, body: &[u8]) -> Result<(), Error> {
    let got = hash(kind, body);
    if &got != want {
        return Err(Error::Corrupt {
            oid: want.hex(),
            msg: format!("its content hashes to {got}"),
        });
    }
    Ok(())
}

/// Inflate the zlib stream at the start of `input`, whose output must be exactly `size` bytes (a pack object's
/// declared size); `limit` bounds what is accepted at all. Returns the bytes and how much input the stream took.
pub fn inflate_exact(input: &[u8], size: u64, limit: u64) -> Result<(Vec<u8>, usize), String> {
    if size > limit {
        return Err(format!("declares {size} bytes, over the limit of {limit}"));
    }
    inflate(input, size as usize, Some(size as usize))
}

/// Inflate a zlib stream of at most `max` bytes of output (`exact`: exactly that many).
fn inflate(input: &[u8], max: usize, exact: Option<usize>) -> Result<(Vec<u8>, usize), String> {
    let mut d = Decompress::new(true);
    // One spare byte of room: output beyond `max` is seen, not silently cut.
    let mut out = Vec::with_capacity(exact.unwrap_or(max.min(1 << 20)) + 1);
    loop {
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let at = (in_before as usize).min(input.len());
        if out.len() == out.capacity() {
            out.reserve(out.capacity().min(max + 1 - out.len()).max(1));
        }
        let st = d
            .decompress_vec(&input[at..], &mut out, FlushDecompress::None)
            .map_err(|e| format!("zlib: {e}"))?;
        if out.len() > max {
            return Err(format!("inflates to more than {max} bytes"));
        }
        if st == Status::StreamEnd {
            break;
        }
        if d.total_in() == in_before && d.total_out() == out_before {
            return Err("zlib stream is truncated".into());
        }
    }
    if let Some(n) = exact {
        if out.len() != n {
            return Err(format!("inflates to {} bytes, {n} declared", out.len()));
        }
    }
    Ok((out, d.total_in() as usize))
}

/// A loose object file (`objects/xx/yyyy…`): zlib of `TYPE SIZE\0BODY`, checked against `oid`.
pub fn loose(oid: &Oid, data: &[u8], limit: u64) -> Result<(Kind, Vec<u8>), Error> {
    let bad = |msg: String| Error::Corrupt {
        oid: oid.hex(),
        msg,
    };
    let max = usize::try_from(limit.saturating_add(64)).unwrap_or(usize::MAX);
    let (raw, _) = inflate(data, max, None).map_err(|m| bad(format!("loose object: {m}")))?;
    let nul = raw
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| bad("loose object has no header".into()))?;
    let header = &raw[..nul];
    let sp = header
        .iter()
        .position(|&b| b == b' ')
        .ok_or_else(|| bad("loose object header has no size".into()))?;
    let kind = Kind::from_name(&header[..sp])
        .ok_or_else(|| bad("loose object of an unknown type".into()))?;
    let size: usize = std::str::from_utf8(&header[sp + 1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("loose object header has a bad size".into()))?;
    let body = raw[nul + 1..].to_vec();
    if body.len() != size {
        return Err(bad(format!(
            "loose object declares {size} bytes and holds {}",
            body.len()
        )));
    }
    if size as u64 > limit {
        return Err(Error::TooLarge {
            what: format!("object {oid}"),
            limit,
        });
    }
    verify(oid, kind, &body)?;
    Ok((kind, body))
}

/// The value of header `name` in a commit or tag (the lines before the first blank line).
fn header_value<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    for line in body.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix(name.as_bytes()) {
            if let Some(v) = rest.strip_prefix(b" ") {
                return Some(v);
            }
        }
    }
    None
}

fn oid_header(oid: &Oid, body: &[u8], name: &str) -> Result<Oid, Error> {
    header_value(body, name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(Oid::from_hex)
        .ok_or_else(|| Error::Corrupt {
            oid: oid.hex(),
            msg: format!("no valid `{name}` line"),
        })
}

/// A commit's root tree.
pub fn commit_tree(oid: &Oid, body: &[u8]) -> Result<Oid, Error> {
    oid_header(oid, body, "tree")
}

/// What an annotated tag points at.
pub fn tag_target(oid: &Oid, body: &[u8]) -> Result<Oid, Error> {
    oid_header(oid, body, "object")
}

/// One entry of a tree: git's mode (`0o100644`, `0o100755`, `0o120000`, `0o40000`, `0o160000`), name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: u32,
    pub name: String,
    pub oid: Oid,
}

/// The entries of a tree, with names that cannot escape the checkout (no `/`, `.`, `..` or `.git`, as git itself
/// refuses them).
pub fn tree_entries(oid: &Oid, body: &[u8]) -> Result<Vec<TreeEntry>, Error> {
    let bad = |msg: String| Error::Corrupt {
        oid: oid.hex(),
        msg,
    };
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("tree entry without a mode".into()))?;
        let mode = std::str::from_utf8(&rest[..sp])
            .ok()
            .filter(|m| !m.is_empty() && m.bytes().all(|c| (b'0'..=b'7').contains(&c)))
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .ok_or_else(|| bad("tree entry with a bad mode".into()))?;
        rest = &rest[sp + 1..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("tree entry without a name".into()))?;
        let name = String::from_utf8(rest[..nul].to_vec())
            .map_err(|_| bad("tree entry name is not UTF-8".into()))?;
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.eq_ignore_ascii_case(".git")
        {
            return Err(bad(format!("tree entry with the unsafe name {name:?}")));
        }
        rest = &rest[nul + 1..];
        if rest.len() < 20 {
            return Err(bad("tree is truncated".into()));
        }
        let id = Oid::from_slice(&rest[..20]).ok_or_else(|| bad("tree is truncated".into()))?;
        rest = &rest[20..];
        out.push(TreeEntry {
            mode,
            name,
            oid: id,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    fn zlib(b: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn hex_round_trips_and_rejects_non_hex() {
        let h = "e4211549b1b160f28e0f1a26d9d7b89e0fd0d346";
        assert_eq!(Oid::from_hex(h).unwrap().hex(), h);
        assert!(Oid::from_hex("e421").is_none());
        assert!(Oid::from_hex(&"g".repeat(40)).is_none());
    }

    #[test]
    fn loose_objects_are_checked_against_their_id() {
        let body = b"hello\n";
        let raw = [b"blob 6\0".as_slice(), body].concat();
        let oid = hash(Kind::Blob, body);
        let (k, b) = loose(&oid, &zlib(&raw), 1 << 20).unwrap();
        assert_eq!((k, b.as_slice()), (Kind::Blob, body.as_slice()));
        // The same bytes under another id are refused, naming the id asked for.
        let other = Oid([7; 20]);
        let e = loose(&other, &zlib(&raw), 1 << 20).unwrap_err().to_string();
        assert!(e.contains(&other.hex()), "{e}");
        // A size header that lies, and a body over the limit.
        let lying = zlib(b"blob 9\0hello\n");
        assert!(loose(&oid, &lying, 1 << 20).is_err());
        assert!(matches!(
            loose(&oid, &zlib(&raw), 3),
            Err(Error::TooLarge { .. }) | Err(Error::Corrupt { .. })
        ));
        // Truncated zlib.
        let z = zlib(&raw);
        assert!(loose(&oid, &z[..z.len() - 6], 1 << 20).is_err());
    }

    #[test]
    fn inflate_exact_takes_only_its_stream() {
        let mut two = zlib(b"abc");
        let first = two.len();
        two.extend(zlib(b"defg"));
        let (out, used) = inflate_exact(&two, 3, 100).unwrap();
        assert_eq!((out.as_slice(), used), (b"abc".as_slice(), first));
        assert!(inflate_exact(&two, 2, 100).is_err());
        assert!(inflate_exact(&two, 4, 100).is_err());
        assert!(inflate_exact(&two, 3, 2).is_err());
    }

    #[test]
    fn trees_with_unsafe_names_are_refused() {
        let entry = |mode: &str, name: &str| {
            [format!("{mode} {name}\0").into_bytes(), [1u8; 20].to_vec()].concat()
        };
        let oid = Oid([0; 20]);
        let ok = [entry("100644", "a"), entry("40000", "d")].concat();
        let es = tree_entries(&oid, &ok).unwrap();
        assert_eq!(es.len(), 2);
        assert_eq!((es[1].mode, es[1].name.as_str()), (0o40000, "d"));
        for name in ["..", ".git", ".GIT", "a/b"] {
            assert!(
                tree_entries(&oid, &entry("100644", name)).is_err(),
                "{name}"
            );
        }
        let cut = entry("100644", "a");
        assert!(tree_entries(&oid, &cut[..cut.len() - 1]).is_err());
    }
}
