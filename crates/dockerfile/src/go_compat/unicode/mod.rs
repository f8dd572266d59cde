//! Go-compatible rune and byte-string semantics, shared by the parser and the shell lexer:
//! the exact behaviour of the Go standard library functions BuildKit relies on
//! (`utf8.DecodeRune`, `unicode.IsSpace`/`IsLetter`/`IsDigit`, `strconv.IsPrint`,
//! `strings.TrimSpace`, `strings.ToLower`, `strconv.Quote`, ...).
//!
//! * `unicode.IsLetter` is general category L, `unicode.IsDigit` is category Nd (Rust's
//!   `char::is_alphabetic` / `is_numeric` are wider: they include marks and other numbers);
//!   both come from the generated [`tables`] (Unicode 15.0.0, as in current Go).
//! * `unicode.IsSpace` is the White_Space property, which is `char::is_whitespace`.
//! * `strconv.Quote` (used by `%q` in error messages) escapes what `strconv.IsPrint` rejects.
//!
//! Dockerfiles are handled as raw bytes, so invalid UTF-8 must flow through
//! these functions exactly as it does through Go's `string` type.

#[rustfmt::skip]
mod tables;

use tables::{DECIMAL_DIGIT, LETTER, NOT_PRINT};

/// The rune Go substitutes for invalid UTF-8.
pub const RUNE_ERROR: char = '\u{FFFD}';

/// `utf8.DecodeRune`: the first rune of `b` and its width. Invalid or truncated
/// encodings decode as `(U+FFFD, 1)`; an empty slice gives `(U+FFFD, 0)`.
pub fn decode_rune(b: &[u8]) -> (char, usize) {
    let Some(&b0) = b.first() else {
        return (RUNE_ERROR, 0);
    };
    if b0 < 0x80 {
        return (b0 as char, 1);
    }
    let size = match b0 {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    if b.len() < size {
        return (RUNE_ERROR, 1);
    }
    match std::str::from_utf8(&b[..size]) {
        Ok(s) => (s.chars().next().unwrap_or(RUNE_ERROR), size),
        Err(_) => (RUNE_ERROR, 1),
    }
}

/// `utf8.DecodeLastRune`: the last rune of `b` and its width.
pub fn decode_last_rune(b: &[u8]) -> (char, usize) {
    let end = b.len();
    if end == 0 {
        return (RUNE_ERROR, 0);
    }
    let last = b[end - 1];
    if last < 0x80 {
        return (last as char, 1);
    }
    // Back up to the start byte of the rune, at most 4 bytes.
    let lim = end.saturating_sub(4);
    let mut start = end - 1;
    while start > lim {
        if b[start] & 0xC0 != 0x80 {
            break;
        }
        start -= 1;
    }
    let (r, size) = decode_rune(&b[start..end]);
    if start + size != end {
        return (RUNE_ERROR, 1);
    }
    (r, size)
}

/// Iterates over the runes of a byte string the way Go's `for range` over a string does:
/// yields `(byte offset, rune, width)`, with invalid bytes as `U+FFFD` of width 1.
pub fn runes(b: &[u8]) -> impl Iterator<Item = (usize, char, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= b.len() {
            return None;
        }
        let (r, w) = decode_rune(&b[pos..]);
        let at = pos;
        pos += w;
        Some((at, r, w))
    })
}

/// Converts bytes to a `String` the way Go's `string([]rune(s))` conversion would:
/// every invalid byte becomes U+FFFD.
pub fn lossy(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for (_, r, _) in runes(b) {
        out.push(r);
    }
    out
}

/// `unicode.IsSpace`.
pub fn is_space(r: char) -> bool {
    // Go's set is exactly the Unicode White_Space property, as is Rust's.
    r.is_whitespace()
}

/// `unicode.IsSpace(rune(b))` for a single byte interpreted as a Latin-1 rune.
pub fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' | 0x85 | 0xA0)
}

fn in_table(table: &[(u32, u32)], r: u32) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < r {
                std::cmp::Ordering::Less
            } else if lo > r {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `unicode.IsLetter`.
pub fn is_letter(r: char) -> bool {
    if r.is_ascii() {
        return r.is_ascii_alphabetic();
    }
    in_table(LETTER, r as u32)
}

/// `unicode.IsDigit`.
pub fn is_digit(r: char) -> bool {
    if r.is_ascii() {
        return r.is_ascii_digit();
    }
    in_table(DECIMAL_DIGIT, r as u32)
}

/// `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
pub fn is_print(r: char) -> bool {
    if r.is_ascii() {
        return (' '..='~').contains(&r);
    }
    !in_table(NOT_PRINT, r as u32)
}

/// `bytes.TrimLeftFunc(b, unicode.IsSpace)`.
pub fn trim_left_space(b: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos < b.len() {
        let (r, w) = decode_rune(&b[pos..]);
        if !is_space(r) || (r == RUNE_ERROR && w == 1) {
            break;
        }
        pos += w;
    }
    &b[pos..]
}

/// `bytes.TrimRightFunc(b, unicode.IsSpace)`.
pub fn trim_right_space(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 {
        let (r, w) = decode_last_rune(&b[..end]);
        if !is_space(r) {
            break;
        }
        end -= w;
    }
    &b[..end]
}

/// `strings.TrimSpace`.
pub fn trim_space(b: &[u8]) -> &[u8] {
    trim_right_space(trim_left_space(b))
}

/// Strips a leading UTF-8 byte-order mark.
pub fn discard_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(b)
}

/// Byte offset of `sub` inside `whole`; `sub` must be a sub-slice of `whole`.
pub fn offset_in(whole: &[u8], sub: &[u8]) -> usize {
    let o = (sub.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(o <= whole.len());
    o.min(whole.len())
}

/// `unicode.ToLower` (simple case mapping).
pub fn to_lower_rune(r: char) -> char {
    if r.is_ascii() {
        return r.to_ascii_lowercase();
    }
    // Only U+0130 has a multi-rune full lowercase mapping; its simple mapping is 'i',
    // the first rune of the full mapping.
    r.to_lowercase().next().unwrap_or(r)
}

/// `strings.ToLower`: ASCII-only input is lowered byte-wise; anything else goes through
/// `strings.Map`, which turns invalid UTF-8 into U+FFFD.
pub fn to_lower(b: &[u8]) -> String {
    if b.is_ascii() {
        return String::from_utf8(b.to_ascii_lowercase()).unwrap_or_default();
    }
    runes(b).map(|(_, r, _)| to_lower_rune(r)).collect()
}

/// `strconv.Quote`, appended to `out`.
pub fn quote_into(out: &mut String, b: &[u8]) {
    use std::fmt::Write;
    out.push('"');
    for (at, r, w) in runes(b) {
        if w == 1 && r == RUNE_ERROR {
            let _ = write!(out, "\\x{:02x}", b[at]);
            continue;
        }
        if r == '"' || r == '\\' {
            out.push('\\');
            out.push(r);
            continue;
        }
        if is_print(r) {
            out.push(r);
            continue;
        }
        match r {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ => {
                let c = r as u32;
                if c < 0x20 || c == 0x7F {
                    let _ = write!(out, "\\x{:02x}", c);
                } else if c < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c);
                } else {
                    let _ = write!(out, "\\U{:08x}", c);
                }
            }
        }
    }
    out.push('"');
}

/// `strconv.Quote`.
pub fn quote(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    quote_into(&mut s, b);
    s
}

/// `regexp.MustCompile(`[\t\v\f\r ]+`).Split(s, n)` for n == -1 (all) or n == 2.
pub fn split_ws(s: &[u8], n: isize) -> Vec<&[u8]> {
    if s.is_empty() {
        return vec![s];
    }
    let is_ws = |c: u8| matches!(c, b'\t' | 0x0B | 0x0C | b'\r' | b' ');
    // Find all matches (maximal runs of whitespace).
    let mut matches = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if is_ws(s[i]) {
            let start = i;
            while i < s.len() && is_ws(s[i]) {
                i += 1;
            }
            matches.push((start, i));
            if n > 0 && matches.len() as isize >= n {
                break;
            }
        } else {
            i += 1;
        }
    }
    let mut out: Vec<&[u8]> = Vec::new();
    let mut beg = 0;
    let mut end = 0;
    for &(m0, m1) in &matches {
        if n > 0 && out.len() as isize == n - 1 {
            break;
        }
        end = m0;
        if m1 != 0 {
            out.push(&s[beg..end]);
        }
        beg = m1;
    }
    if end != s.len() {
        out.push(&s[beg..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("♥".as_bytes()), "\"♥\"");
        assert_eq!(quote(b"\x00\x07\x7f"), r#""\x00\a\x7f""#);
        assert_eq!(quote(b"\xff\xc3"), r#""\xff\xc3""#);
        assert_eq!(quote("\u{a0}\u{ad}".as_bytes()), r#""\u00a0\u00ad""#);
        assert_eq!(quote("\u{e0001}".as_bytes()), r#""\U000e0001""#);
        assert_eq!(quote("\u{fffd}".as_bytes()), "\"\u{fffd}\"");
    }

    #[test]
    fn lower_matches_go() {
        assert_eq!(to_lower(b"RUN"), "run");
        assert_eq!(to_lower("İX".as_bytes()), "ix");
        assert_eq!(to_lower(b"A\xffB"), "a\u{fffd}b");
    }

    #[test]
    fn split_matches_go_regexp_split() {
        assert_eq!(split_ws(b"a  b c", 2), vec![&b"a"[..], &b"b c"[..]]);
        assert_eq!(split_ws(b"a", 2), vec![&b"a"[..]]);
        assert_eq!(split_ws(b"", -1), vec![&b""[..]]);
        assert_eq!(
            split_ws(b" a b ", -1),
            vec![&b""[..], &b"a"[..], &b"b"[..], &b""[..]]
        );
    }

    #[test]
    fn classes() {
        assert!(is_letter('a') && is_letter('한') && is_letter('ª') && is_letter('µ'));
        assert!(!is_letter('1') && !is_letter('_') && !is_letter('\u{0903}')); // Mc
        assert!(!is_letter('Ⅷ')); // Nl: alphabetic in Rust, not a Go letter
        assert!(is_digit('7') && is_digit('٣') && !is_digit('²') && !is_digit('a'));
        assert!(is_space('\u{85}') && is_space('\u{a0}') && is_space('\u{3000}'));
        assert!(!is_space('\u{200b}'));
    }

    #[test]
    fn tables_are_sorted_and_disjoint() {
        for table in [LETTER, DECIMAL_DIGIT, NOT_PRINT] {
            for w in table.windows(2) {
                assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:?}");
            }
        }
    }

    #[test]
    fn quote_str_matches_go() {
        assert_eq!(
            quote("한\t\u{0}\u{7f}\u{a0}\u{e000}\u{10ffff}".as_bytes()),
            r#""한\t\x00\x7f\u00a0\ue000\U0010ffff""#
        );
        assert_eq!(quote(b"${VAR:?x}"), r#""${VAR:?x}""#);
    }

    #[test]
    fn trims() {
        assert_eq!(trim_space(" \u{a0}x\u{3000} ".as_bytes()), b"x");
        assert_eq!(trim_space(b" \xa0x"), b"\xa0x");
    }
}
