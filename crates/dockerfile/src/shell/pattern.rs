//! The glob patterns of `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}` and `${v//p/r}`.
//!
//! BuildKit converts the shell pattern into a Go regular expression (`convertShellPatternToRegex`)
//! and uses Go's `regexp` package. The only constructs that conversion can produce are literal
//! characters, `.` (any character except `\n`, since Go's `.` does not match a newline by default)
//! and `.*` / `.*?` (greedy / lazy star); `^` anchors prefix matches. This module compiles those
//! constructs into a tiny program and runs it on a Pike VM with Go's (Perl's) leftmost-first
//! priorities, so the match found is exactly the one Go reports, in time linear in
//! `pattern × value` and without recursion.
//!
//! Pattern syntax (exactly BuildKit's):
//! * `*` any run of characters (not crossing a newline); `?` any single character except `\n`;
//! * `\*`, `\?`, `\\` a literal `*`, `?`, `\`; `\}` and `\/` stand for `}` and `/` (the backslash
//!   is dropped); any other `\x`, and a trailing `\`, is an error `invalid escape '\x'`;
//! * no bracket expressions: `[`, `]` and every other character are literal.

use crate::gounicode::{is_digit, is_letter};

/// One instruction of the compiled matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    /// Consume this exact character, then go to `.1`.
    Char(char, usize),
    /// Consume any character except `\n`, then go to `.1`.
    Any(usize),
    /// Try `.0` first, then `.1` (priority order).
    Split(usize, usize),
    /// Success.
    Match,
}

/// A compiled shell pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    prog: Vec<Inst>,
    anchored: bool,
}

/// Go's `%c` of a scanner result: EOF (and any invalid rune) prints as U+FFFD.
fn go_char(c: Option<char>) -> char {
    c.unwrap_or('\u{FFFD}')
}

/// Chars of `s` as Go's `text/scanner` yields them: a byte order mark as the very first character
/// is skipped.
pub(crate) fn scanner_chars(s: &str) -> Vec<char> {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.first() == Some(&'\u{FEFF}') {
        chars.remove(0);
    }
    chars
}

impl Pattern {
    /// `convertShellPatternToRegex(pattern, greedy, anchored)`. The error is the bare reason
    /// (`invalid escape '\x'`); callers wrap it.
    pub(crate) fn compile(pattern: &str, greedy: bool, anchored: bool) -> Result<Pattern, String> {
        enum Tok {
            Lit(char),
            Any,
            Star,
        }
        let chars = scanner_chars(pattern);
        let mut toks = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let tok = chars[i];
            i += 1;
            match tok {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => {
                    // `}` and `/` inside ${} need escaping, but the escape is not part of the
                    // pattern.
                    if matches!(chars.get(i), Some('}') | Some('/')) {
                        continue;
                    }
                    let next = chars.get(i).copied();
                    i += 1;
                    match next {
                        Some(c @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(c)),
                        other => return Err(format!("invalid escape '\\{}'", go_char(other))),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }

        // Compile. A star at `k` is: k: Split(k+1, k+2) greedy / Split(k+2, k+1) lazy;
        // k+1: Any(k); k+2: the rest.
        let mut prog = Vec::with_capacity(toks.len() * 2 + 1);
        for tok in toks {
            let k = prog.len();
            match tok {
                Tok::Lit(c) => prog.push(Inst::Char(c, k + 1)),
                Tok::Any => prog.push(Inst::Any(k + 1)),
                Tok::Star => {
                    if greedy {
                        prog.push(Inst::Split(k + 1, k + 2));
                    } else {
                        prog.push(Inst::Split(k + 2, k + 1));
                    }
                    prog.push(Inst::Any(k));
                }
            }
        }
        prog.push(Inst::Match);
        Ok(Pattern { prog, anchored })
    }

    /// Leftmost-first match in `text` starting the search at char index `from` (Go's
    /// `doExecute` at a search position). Returns char indices `(start, end)`.
    pub(crate) fn find_at(&self, text: &[char], from: usize) -> Option<(usize, usize)> {
        let n = text.len();
        if from > n {
            return None;
        }
        let m = self.prog.len();
        // Thread lists: (pc, start). `mark[pc] == gen` means pc is already on the list being built.
        let mut clist: Vec<(usize, usize)> = Vec::with_capacity(m);
        let mut nlist: Vec<(usize, usize)> = Vec::with_capacity(m);
        let mut mark = vec![usize::MAX; m];
        let mut stack: Vec<usize> = Vec::new();
        let mut gen = 0usize;
        let mut matched: Option<(usize, usize)> = None;

        // Add the epsilon closure of `pc` (in priority order) to `list`.
        let add = |list: &mut Vec<(usize, usize)>,
                   mark: &mut Vec<usize>,
                   stack: &mut Vec<usize>,
                   gen: usize,
                   pc: usize,
                   start: usize| {
            stack.clear();
            stack.push(pc);
            while let Some(pc) = stack.pop() {
                if mark[pc] == gen {
                    continue;
                }
                mark[pc] = gen;
                match self.prog[pc] {
                    Inst::Split(a, b) => {
                        stack.push(b);
                        stack.push(a);
                    }
                    _ => list.push((pc, start)),
                }
            }
        };

        let mut p = from;
        loop {
            // Seed a new thread at this position (lowest priority) unless a match is known.
            if matched.is_none() && (!self.anchored || p == 0) {
                add(&mut clist, &mut mark, &mut stack, gen, 0, p);
            }
            if clist.is_empty() {
                break;
            }
            gen += 1;
            let cur = text.get(p).copied();
            for &(pc, start) in clist.iter() {
                match self.prog[pc] {
                    Inst::Match => {
                        matched = Some((start, p));
                        // Lower-priority threads are cut.
                        break;
                    }
                    Inst::Char(c, next) => {
                        if cur == Some(c) {
                            add(&mut nlist, &mut mark, &mut stack, gen, next, start);
                        }
                    }
                    Inst::Any(next) => {
                        if matches!(cur, Some(c) if c != '\n') {
                            add(&mut nlist, &mut mark, &mut stack, gen, next, start);
                        }
                    }
                    Inst::Split(..) => {}
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
            nlist.clear();
            if p >= n {
                break;
            }
            // `clist` now holds the threads built under `gen`, which the next seeding dedups against.
            p += 1;
        }
        matched
    }
}

/// `trimPrefix(pattern, value, greedy)`: remove the (shortest or longest) anchored match.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = Pattern::compile(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    let text: Vec<char> = value.chars().collect();
    match re.find_at(&text, 0) {
        Some((_, end)) => Ok(text[end..].iter().collect()),
        None => Ok(value.to_string()),
    }
}

/// `trimSuffix(pattern, value, greedy)`: reverse both, trim the prefix, reverse back. (An error
/// therefore quotes the reversed pattern, as BuildKit's does.)
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern = reverse_pattern(pattern);
    let value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&pattern, &value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverse a pattern without reversing escapes: `a\*c` becomes `c\*a`.
pub(crate) fn reverse_pattern(pattern: &str) -> String {
    let runes: Vec<char> = pattern.chars().collect();
    if runes.is_empty() {
        return String::new();
    }
    let last = runes.len() - 1;
    let mut out = vec!['\0'; runes.len()];
    let mut i = 0;
    while i <= last {
        let tok = runes[i];
        let out_idx = last - i;
        if tok == '\\' && i != last {
            out[out_idx - 1] = tok;
            out[out_idx] = runes[i + 1];
            i += 2;
        } else {
            out[out_idx] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${v/pattern/replacement}` (`all == false`) and `${v//pattern/replacement}` (`all == true`).
///
/// The single replacement is inserted literally. Replacing all occurrences goes through Go's
/// `Regexp.ReplaceAllString`, which expands `$0`, `${0}` (the whole match), `$$` (a `$`) and
/// drops other `$name` references in the replacement; that quirk is reproduced.
pub(crate) fn substitute(
    pattern: &str,
    replacement: &str,
    value: &str,
    all: bool,
) -> Result<String, String> {
    let re = Pattern::compile(pattern, true, false)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    let text: Vec<char> = value.chars().collect();
    if !all {
        return Ok(match re.find_at(&text, 0) {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(replacement);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        });
    }

    // Go's regexp.replaceAll, in char indices.
    let mut out = String::new();
    let mut last_match_end = 0usize;
    let mut search_pos = 0usize;
    let end_pos = text.len();
    while search_pos <= end_pos {
        let Some((s, e)) = re.find_at(&text, search_pos) else {
            break;
        };
        out.extend(&text[last_match_end..s]);
        // No replacement for an empty match right after the previous match.
        if e > last_match_end || s == 0 {
            go_expand(&mut out, replacement, &text[s..e]);
        }
        last_match_end = e;
        if search_pos + 1 > e {
            search_pos += 1;
        } else {
            search_pos = e;
        }
    }
    out.extend(&text[last_match_end..]);
    Ok(out)
}

/// Go's `Regexp.expand` for a regexp with no capture groups: `$$` is `$`; `$0` / `${0}` is the
/// match; any other well-formed `$name` / `${name}` is empty; a malformed `$` is kept.
fn go_expand(dst: &mut String, template: &str, matched: &[char]) {
    let mut template = template;
    while let Some(idx) = template.find('$') {
        dst.push_str(&template[..idx]);
        template = &template[idx + 1..];
        if let Some(rest) = template.strip_prefix('$') {
            dst.push('$');
            template = rest;
            continue;
        }
        match go_extract(template) {
            None => dst.push('$'),
            Some((num, rest)) => {
                template = rest;
                if num == Some(0) {
                    dst.extend(matched);
                }
            }
        }
    }
    dst.push_str(template);
}

/// Go's `extract`: a leading `name` or `{name}`; returns its number (when it is one) and the rest.
fn go_extract(s: &str) -> Option<(Option<u64>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let mut end = 0;
    for (i, c) in body.char_indices() {
        if !is_letter(c) && !is_digit(c) && c != '_' {
            break;
        }
        end = i + c.len_utf8();
    }
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let mut rest = &body[end..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    let mut num: Option<u64> = Some(0);
    for b in name.bytes() {
        match num {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => {
                num = Some(n * 10 + u64::from(b - b'0'));
            }
            _ => {
                num = None;
                break;
            }
        }
    }
    if name.starts_with('0') && name.len() > 1 {
        num = None;
    }
    Some((num, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(p: &str, greedy: bool, anchored: bool, text: &str) -> Option<(usize, usize)> {
        let chars: Vec<char> = text.chars().collect();
        Pattern::compile(p, greedy, anchored)
            .unwrap()
            .find_at(&chars, 0)
    }

    #[test]
    fn leftmost_first() {
        assert_eq!(find("*x", false, true, "axbx"), Some((0, 2)));
        assert_eq!(find("*x", true, true, "axbx"), Some((0, 4)));
        assert_eq!(find("*", false, true, "abc"), Some((0, 0)));
        assert_eq!(find("*", true, true, "abc"), Some((0, 3)));
        assert_eq!(find("*", true, true, "ab\nc"), Some((0, 2)));
        assert_eq!(find("?", true, true, "\n"), None);
        assert_eq!(find("b*", true, false, "abcb"), Some((1, 4)));
        assert_eq!(find("b", true, false, "aaa"), None);
        assert_eq!(find("", true, false, "aaa"), Some((0, 0)));
        assert_eq!(find("x", true, true, "ax"), None);
    }

    #[test]
    fn upstream_convert_cases() {
        // TestConvertShellPatternToRegex: the valid patterns compile, the invalid ones fail.
        for p in ["*", "?", "\\*", "(()[]{\\}^$.\\*\\?|\\\\"] {
            Pattern::compile(p, true, true).unwrap();
        }
        for p in ["\\", "\\x", "\\\\\\"] {
            assert!(Pattern::compile(p, true, true).is_err(), "{p}");
        }
        assert_eq!(
            Pattern::compile("\\x", true, true).unwrap_err(),
            "invalid escape '\\x'"
        );
        assert_eq!(
            Pattern::compile("\\", true, true).unwrap_err(),
            "invalid escape '\\\u{FFFD}'"
        );
    }

    #[test]
    fn upstream_reverse_pattern() {
        for (p, want) in [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
            ("", ""),
        ] {
            assert_eq!(reverse_pattern(p), want, "{p}");
        }
    }

    #[test]
    fn replace_all_like_go() {
        assert_eq!(substitute("", "x", "abc", true).unwrap(), "xaxbxcx");
        assert_eq!(substitute("*", "x", "abc", true).unwrap(), "x");
        assert_eq!(substitute("b", "[$0]", "abcb", true).unwrap(), "a[b]c[b]");
        assert_eq!(
            substitute("b", "$$1$1${0}$x$", "ab", true).unwrap(),
            "a$1b$"
        );
        assert_eq!(substitute("b", "$0", "ab", false).unwrap(), "a$0");
        assert_eq!(substitute("a*", "-", "baaac", true).unwrap(), "b-");
        assert_eq!(substitute("a", "-", "baaac", true).unwrap(), "b---c");
    }
}
