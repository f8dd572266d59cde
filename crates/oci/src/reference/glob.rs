//! Go's `path.Match` glob semantics, used by `FamiliarMatch`.
//!
//! ```text
//! pattern: { term }
//! term:    '*'                        any sequence of non-/ characters
//!          '?'                        any single non-/ character
//!          '[' [ '^' ] { range } ']'  character class (must be non-empty; it may match '/')
//!          c                          c (c != '*', '?', '\\', '[')
//!          '\\' c                     c
//! range:   c | '\\' c | lo '-' hi     (c != '\\', '-', ']'; a class item must not end the pattern)
//! ```
//!
//! Behaviour kept from Go: a malformed pattern is an error whatever the name; literals compare bytes while `?` and
//! classes take one UTF-8 sequence (an invalid one counts as one byte, U+FFFD); and the pattern is matched as
//! star-separated segments, each placed at the leftmost position where it fits and never moved afterwards (only the
//! last segment keeps looking until it reaches the end of the name). That last rule makes `*[/a]*b/c` fail on
//! `a/b/c`, as it does in Go.

/// The pattern is malformed (Go's `path.ErrBadPattern`, "syntax error in pattern").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// One single-character matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// A byte, compared exactly.
    Byte(u8),
    /// `?`: one character, not `/`.
    AnyChar,
    /// `[...]`: one character inside (or, negated, outside) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
}

/// A run of atoms, preceded by a star or not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    after_star: bool,
    atoms: Vec<Atom>,
}

/// Split the pattern into segments, rejecting malformed ones.
fn compile(pattern: &str) -> Result<Vec<Segment>, BadPattern> {
    let bytes = pattern.as_bytes();
    let mut segments = vec![Segment {
        after_star: false,
        atoms: Vec::new(),
    }];
    let mut i = 0;
    while i < bytes.len() {
        let current = segments.last_mut().expect("never empty");
        match bytes[i] {
            b'*' => {
                if !(current.after_star && current.atoms.is_empty()) {
                    segments.push(Segment {
                        after_star: true,
                        atoms: Vec::new(),
                    });
                }
                i += 1;
            }
            b'?' => {
                current.atoms.push(Atom::AnyChar);
                i += 1;
            }
            b'\\' => {
                let &b = bytes.get(i + 1).ok_or(BadPattern)?;
                current.atoms.push(Atom::Byte(b));
                i += 2;
            }
            b'[' => {
                let (atom, next) = compile_class(pattern, i + 1)?;
                current.atoms.push(atom);
                i = next;
            }
            b => {
                current.atoms.push(Atom::Byte(b));
                i += 1;
            }
        }
    }
    if segments[0].atoms.is_empty() && segments.len() > 1 {
        segments.remove(0);
    }
    Ok(segments)
}

/// The class whose body starts at byte `i` (after `[`); returns it and the index after its `]`.
fn compile_class(pattern: &str, mut i: usize) -> Result<(Atom, usize), BadPattern> {
    let bytes = pattern.as_bytes();
    let negated = bytes.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if bytes.get(i) == Some(&b']') && !ranges.is_empty() {
            return Ok((Atom::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(pattern, i)?;
        i = next;
        let mut hi = lo;
        if bytes[i] == b'-' {
            (hi, i) = class_char(pattern, i + 1)?;
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped character of a class at byte `i`; something must follow it.
fn class_char(pattern: &str, mut i: usize) -> Result<(u32, usize), BadPattern> {
    match pattern.as_bytes().get(i) {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => i += 1,
        Some(_) => {}
    }
    // `i` is always at a character boundary: everything skipped so far is ASCII or whole characters.
    let c = pattern[i..].chars().next().ok_or(BadPattern)?;
    let next = i + c.len_utf8();
    if next >= pattern.len() {
        return Err(BadPattern);
    }
    Ok((c as u32, next))
}

/// The first character of `b` as Go's `utf8.DecodeRune` reads it: an invalid or truncated sequence is U+FFFD with
/// length 1.
fn first_char(b: &[u8]) -> (u32, usize) {
    let prefix = &b[..b.len().min(4)];
    let valid = match std::str::from_utf8(prefix) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default(),
    };
    match valid.chars().next() {
        Some(c) => (c as u32, c.len_utf8()),
        None => (0xFFFD, 1),
    }
}

/// If `atoms` match a prefix of `name`, the rest of `name`.
fn match_atoms<'a>(atoms: &[Atom], mut name: &'a [u8]) -> Option<&'a [u8]> {
    for atom in atoms {
        let &first = name.first()?;
        let used = match atom {
            Atom::Byte(b) => (first == *b).then_some(1)?,
            Atom::AnyChar => (first != b'/').then(|| first_char(name).1)?,
            Atom::Class { negated, ranges } => {
                let (c, len) = first_char(name);
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                (inside != *negated).then_some(len)?
            }
        };
        name = &name[used..];
    }
    Some(name)
}

/// Whether the whole of `name` matches the shell pattern `pattern`.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let segments = compile(pattern)?;
    let mut name = name.as_bytes();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        if segment.after_star && segment.atoms.is_empty() {
            // Only a final star has no atoms: it takes the rest of the name, unless that has a '/'.
            return Ok(!name.contains(&b'/'));
        }
        // A star can skip any bytes up to the next '/', which it can not cross.
        let reach = if segment.after_star {
            name.iter().position(|&b| b == b'/').unwrap_or(name.len())
        } else {
            0
        };
        let placed = (0..=reach).find_map(|skip| {
            let rest = match_atoms(&segment.atoms, &name[skip..])?;
            (!last || rest.is_empty()).then_some(rest)
        });
        match placed {
            Some(rest) => name = rest,
            None => return Ok(false),
        }
    }
    Ok(name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A selection of Go's path/match_test.go table.
    #[test]
    fn go_match_table() {
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
            // Go places each star segment at its leftmost fit and never revisits it.
            ("*[/a]*b/c", "a/b/c", Ok(false)),
            ("a[/]b", "a/b", Ok(true)),
            ("", "", Ok(true)),
            ("", "a", Ok(false)),
            ("**", "abc", Ok(true)),
            ("a**b", "axxb", Ok(true)),
            ("[*]", "*", Ok(true)),
            ("[a*", "a", Err(BadPattern)),
            ("a*[", "abc", Err(BadPattern)),
            ("*[\u{FFFD}]", "\u{e9}", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                path_match(pattern, name),
                *want,
                "Match({pattern:?}, {name:?})"
            );
        }
    }
}
