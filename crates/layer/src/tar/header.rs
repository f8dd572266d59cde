//! ustar header field layout, numeric encodings and PAX records, shared by the reader and the writer.

pub const NAME: (usize, usize) = (0, 100);
pub const MODE: (usize, usize) = (100, 8);
pub const UID: (usize, usize) = (108, 8);
pub const GID: (usize, usize) = (116, 8);
pub const SIZE: (usize, usize) = (124, 12);
pub const MTIME: (usize, usize) = (136, 12);
pub const CHKSUM: (usize, usize) = (148, 8);
pub const TYPEFLAG: usize = 156;
pub const LINKNAME: (usize, usize) = (157, 100);
pub const MAGIC: (usize, usize) = (257, 6);
pub const VERSION: (usize, usize) = (263, 2);
pub const DEVMAJOR: (usize, usize) = (329, 8);
pub const DEVMINOR: (usize, usize) = (337, 8);
pub const PREFIX: (usize, usize) = (345, 155);

/// The largest value an octal field of `len` bytes (with its NUL) can hold.
pub fn octal_max(len: usize) -> u64 {
    (1u64 << (3 * (len - 1))) - 1
}

pub fn field(block: &[u8], (off, len): (usize, usize)) -> &[u8] {
    &block[off..off + len]
}

/// A NUL-terminated string field.
pub fn cstr(block: &[u8], f: (usize, usize)) -> &[u8] {
    let raw = field(block, f);
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    &raw[..end]
}

/// Parse a numeric field: octal (spaces/NULs around it) or GNU base-256 when the high bit is set.
pub fn parse_number(raw: &[u8]) -> Option<i64> {
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        let negative = raw[0] & 0x40 != 0;
        let mut v: i64 = 0;
        for (i, &b) in raw.iter().enumerate() {
            let b = if i == 0 { b & 0x3f } else { b };
            let b = if negative {
                !b & if i == 0 { 0x3f } else { 0xff }
            } else {
                b
            };
            v = v.checked_mul(256)?.checked_add(i64::from(b))?;
        }
        return Some(if negative { -v - 1 } else { v });
    }
    let s: Vec<u8> = raw.iter().copied().filter(|&b| b != 0).collect();
    let s = std::str::from_utf8(&s).ok()?.trim();
    if s.is_empty() {
        return Some(0);
    }
    i64::from_str_radix(s, 8).ok()
}

pub fn put(block: &mut [u8], (off, len): (usize, usize), bytes: &[u8]) {
    let n = bytes.len().min(len);
    block[off..off + n].copy_from_slice(&bytes[..n]);
}

/// Write `v` as zero-padded octal followed by NUL, as Go's archive/tar does.
pub fn put_octal(block: &mut [u8], f: (usize, usize), v: u64) {
    let s = format!("{:0width$o}", v, width = f.1 - 1);
    put(block, f, s.as_bytes());
}

/// The header checksum: the byte sum with the checksum field read as spaces.
pub fn checksum(block: &[u8]) -> (u64, i64) {
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) {
            b' '
        } else {
            b
        };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}

/// One PAX record `"<len> <key>=<value>\n"`, where len counts the whole record including its own digits.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Parse PAX records; keys map to raw values.
pub fn parse_pax(mut data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return None;
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec.iter().position(|&b| b == b'=')?;
        out.push((
            String::from_utf8(rec[..eq].to_vec()).ok()?,
            rec[eq + 1..].to_vec(),
        ));
        data = &data[len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        assert_eq!(pax_record("path", b"abcd"), b"13 path=abcd\n");
        let r = pax_record("path", &[b'x'; 95]);
        assert_eq!(r.len(), 105);
        assert!(r.starts_with(b"105 path="));
        let parsed = parse_pax(
            &[
                pax_record("a", b"1"),
                pax_record("SCHILY.xattr.user.k", b"v=w"),
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(
            parsed[1],
            ("SCHILY.xattr.user.k".to_string(), b"v=w".to_vec())
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"   644 \0"), Some(0o644));
        assert_eq!(
            parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(parse_number(b"9"), None);
    }
}
