//! Go's character classes and string quoting, for exact compatibility with BuildKit.
//!
//! * `unicode.IsLetter` is general category L, `unicode.IsDigit` is category Nd (Rust's
//!   `char::is_alphabetic` / `is_numeric` are wider: they include marks and other numbers).
//! * `unicode.IsSpace` is the White_Space property, which is `char::is_whitespace`.
//! * `strconv.Quote` (used by `%q` in error messages) escapes what `strconv.IsPrint` rejects.

use super::tables::{DECIMAL_DIGIT, LETTER, NOT_PRINT};

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Go `unicode.IsLetter`.
pub(crate) fn go_is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_table(LETTER, c)
}

/// Go `unicode.IsDigit`.
pub(crate) fn go_is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_table(DECIMAL_DIGIT, c)
}

/// Go `unicode.IsSpace`.
pub(crate) fn go_is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go `strconv.IsPrint`.
pub(crate) fn go_is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !in_table(NOT_PRINT, c)
}

/// Go `strconv.Quote` (what `fmt`'s `%q` prints for a string).
pub(crate) fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(go_is_letter('a') && go_is_letter('한') && go_is_letter('ª') && go_is_letter('µ'));
        assert!(!go_is_letter('1') && !go_is_letter('_') && !go_is_letter('\u{0903}')); // Mc
        assert!(!go_is_letter('Ⅷ')); // Nl: alphabetic in Rust, not a Go letter
        assert!(go_is_digit('7') && go_is_digit('٣') && !go_is_digit('²') && !go_is_digit('a'));
        assert!(go_is_space('\u{85}') && go_is_space('\u{a0}') && go_is_space('\u{3000}'));
        assert!(!go_is_space('\u{200b}'));
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
    fn quote() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("한\t\u{0}\u{7f}\u{a0}\u{e000}\u{10ffff}"),
            r#""한\t\x00\x7f\u00a0\ue000\U0010ffff""#
        );
        assert_eq!(go_quote("${VAR:?x}"), r#""${VAR:?x}""#);
    }
}
