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

use crate::go_compat::unicode::{is_digit, is_letter};

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
        self.search(text, from, &mut 0)
    }

    /// `find_at`, adding the work done (per-call set-up plus threads stepped) to `steps`, so tests
    /// can bound the cost without a clock.
    ///
    /// The search runs on past the match while higher-priority threads live, and the next
    /// search of a replace-all re-scans that stretch. That stays linear overall: a surviving
    /// thread without a star dies within `m` chars, and a surviving star thread (alive up to the
    /// next newline) would itself extend the match over any later match on that line, so the
    /// next match ends at or past that newline and no stretch is re-scanned more than once.
    fn search(&self, text: &[char], from: usize, steps: &mut u64) -> Option<(usize, usize)> {
        let n = text.len();
        if from > n {
            return None;
        }
        let m = self.prog.len();
        *steps += m as u64;
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
            *steps += clist.len() as u64 + 1;
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
    if all {
        return Ok(replace_all(&re, &text, replacement, &mut 0));
    }
    Ok(match re.find_at(&text, 0) {
        Some((s, e)) => {
            let mut out: String = text[..s].iter().collect();
            out.push_str(replacement);
            out.extend(&text[e..]);
            out
        }
        None => value.to_string(),
    })
}

/// Go's `regexp.replaceAll` (in char indices), counting the matcher's work in `steps`.
fn replace_all(re: &Pattern, text: &[char], replacement: &str, steps: &mut u64) -> String {
    let mut out = String::new();
    let mut last_match_end = 0usize;
    let mut search_pos = 0usize;
    let end_pos = text.len();
    while search_pos <= end_pos {
        let Some((s, e)) = re.search(text, search_pos, steps) else {
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
    out
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

    /// Straightforward backtracking over the program: the first success in priority order is
    /// by definition the leftmost-first answer (Go's backtracker works this way). Exponential,
    /// so only for short inputs.
    fn backtrack(prog: &[Inst], text: &[char], pc: usize, pos: usize) -> Option<usize> {
        let cur = text.get(pos).copied();
        match prog[pc] {
            Inst::Match => Some(pos),
            Inst::Char(c, next) if cur == Some(c) => backtrack(prog, text, next, pos + 1),
            Inst::Any(next) if matches!(cur, Some(c) if c != '\n') => {
                backtrack(prog, text, next, pos + 1)
            }
            Inst::Split(a, b) => {
                backtrack(prog, text, a, pos).or_else(|| backtrack(prog, text, b, pos))
            }
            _ => None,
        }
    }

    /// Oracle for `find_at`: try each start in turn.
    fn oracle_find(re: &Pattern, text: &[char], from: usize) -> Option<(usize, usize)> {
        let last = if re.anchored { 0 } else { text.len() };
        (from..=last).find_map(|s| backtrack(&re.prog, text, 0, s).map(|e| (s, e)))
    }

    /// Oracle for `replace_all`: Go's `replaceAll` loop over `oracle_find`.
    fn oracle_replace_all(re: &Pattern, text: &[char], replacement: &str) -> String {
        let (mut out, mut last, mut pos) = (String::new(), 0, 0);
        while pos <= text.len() {
            let Some((s, e)) = oracle_find(re, text, pos) else {
                break;
            };
            out.extend(&text[last..s]);
            if e > last || s == 0 {
                go_expand(&mut out, replacement, &text[s..e]);
            }
            last = e;
            pos = if e > pos { e } else { pos + 1 };
        }
        out.extend(&text[last..]);
        out
    }

    /// A small xorshift generator, so the generated cases are the same on every run.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, k: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % k as u64) as usize
        }
        fn string(&mut self, alphabet: &[&str], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    #[test]
    fn vm_agrees_with_backtracking_on_generated_inputs() {
        // Multi-byte chars check char (not byte) indexing; `\n` is where `*` and `?` stop.
        let pattern_alphabet = ["a", "b", "é", "🚀", "\n", "*", "*", "?", "\\*", "\\?"];
        let value_alphabet = ["a", "a", "b", "é", "🚀", "\n", "*", "?"];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut matched = 0;
        for _ in 0..4000 {
            let pattern = rng.string(&pattern_alphabet, 6);
            let value = rng.string(&value_alphabet, 12);
            let text: Vec<char> = value.chars().collect();
            for (greedy, anchored) in [(true, false), (true, true), (false, true)] {
                let re = Pattern::compile(&pattern, greedy, anchored).unwrap();
                for from in 0..=text.len() + 1 {
                    let got = re.find_at(&text, from);
                    assert_eq!(
                        got,
                        oracle_find(&re, &text, from),
                        "{pattern:?} {value:?} {from}"
                    );
                    matched += usize::from(got.is_some());
                }
            }
            let re = Pattern::compile(&pattern, true, false).unwrap();
            assert_eq!(
                substitute(&pattern, "<$0>", &value, true).unwrap(),
                oracle_replace_all(&re, &text, "<$0>"),
                "{pattern:?} {value:?}"
            );
        }
        // The generator must reach both outcomes for the comparison to mean something.
        assert!(matched > 10_000, "{matched}");
    }

    #[test]
    fn tricky_replacements() {
        // Empty matches: between every char, and (Go) not right after a non-empty match.
        assert_eq!(substitute("", "-", "é🚀", true).unwrap(), "-é-🚀-");
        assert_eq!(substitute("*", "-", "", true).unwrap(), "-");
        assert_eq!(substitute("*", "-", "ab\ncd", true).unwrap(), "-\n-");
        assert_eq!(substitute("**", "-", "a\n", true).unwrap(), "-\n-");
        assert_eq!(substitute("*", "-", "\n\n", true).unwrap(), "-\n-\n-");
        // Matches at the start, at the end and adjacent to each other.
        assert_eq!(substitute("a", "-", "aba", true).unwrap(), "-b-");
        assert_eq!(substitute("ab", "<$0>", "abab", true).unwrap(), "<ab><ab>");
        assert_eq!(
            substitute("?", "[$0]", "é🚀\nx", true).unwrap(),
            "[é][🚀]\n[x]"
        );
        assert_eq!(substitute("*x", "-", "axbx\naxb", true).unwrap(), "-\n-b");
        assert_eq!(substitute("🚀*", "-", "a🚀b\n🚀", true).unwrap(), "a-\n-");
        assert_eq!(substitute("🚀", "-", "a🚀🚀", false).unwrap(), "a-🚀");
        // Trims count chars, not bytes.
        assert_eq!(trim_prefix("?", "🚀x", false).unwrap(), "x");
        assert_eq!(trim_suffix("é*", "aébéc", true).unwrap(), "a");
        assert_eq!(trim_suffix("é*", "aébéc", false).unwrap(), "aéb");
    }

    /// `prefix` then whole copies of `unit`, about `n` chars (whole copies keep the value's end,
    /// where suffix trims start, the same for every `n`).
    fn value_of(prefix: &str, unit: &str, n: usize) -> Vec<char> {
        let unit: Vec<char> = unit.chars().collect();
        let mut text: Vec<char> = prefix.chars().collect();
        for _ in 0..n / unit.len() {
            text.extend(&unit);
        }
        text
    }

    /// The matcher's work for each operation of this module on `text`: replace-all, the single
    /// replacement, and the four trims.
    fn work(pattern: &str, text: &[char]) -> [u64; 6] {
        let mut steps = [0u64; 6];
        let re = Pattern::compile(pattern, true, false).unwrap();
        replace_all(&re, text, "-", &mut steps[0]);
        re.search(text, 0, &mut steps[1]);
        let reversed: Vec<char> = text.iter().rev().copied().collect();
        let rpattern = reverse_pattern(pattern);
        for (i, (p, t, greedy)) in [
            (pattern, text, true),
            (pattern, text, false),
            (rpattern.as_str(), &reversed[..], true),
            (rpattern.as_str(), &reversed[..], false),
        ]
        .into_iter()
        .enumerate()
        {
            let re = Pattern::compile(p, greedy, true).unwrap();
            re.search(t, 0, &mut steps[2 + i]);
        }
        steps
    }

    #[test]
    fn work_grows_linearly_with_the_value() {
        // Inputs where a search runs on past its match (star threads live to the newline) and
        // the next search of a replace-all starts inside that stretch, plus the plain cases.
        let cases = [
            ("*x", "", "a"),
            ("*x", "x", "a"),
            ("*x", "", "ax"),
            ("*x", "", "axb\n"),
            ("a*", "", "ba"),
            ("a*", "", "a\n"),
            ("?", "", "é"),
            ("*", "", "a"),
            ("*", "", "\n"),
            ("", "", "a"),
            ("[a]*b", "", "[a]"),
            ("[a]*b", "", "[a]b"),
            ("a*b*c", "", "ab"),
            ("\n**\n", "\nba", "a\naa"),
            ("*a?*\n*", "aax", "xaa\n"),
            ("a\n*b", "", "a\nab"),
            ("x\n*x", "", "x\nax"),
            ("*a*a*a*b", "", "a"),
            ("aaaaaaaaaaaaaaab", "", "a"),
            ("*🚀", "", "é🚀a"),
        ];
        for (pattern, prefix, unit) in cases {
            let sizes = [10_000, 20_000, 40_000];
            let steps = sizes.map(|n| work(pattern, &value_of(prefix, unit, n)));
            for pair in steps.windows(2) {
                for (op, (&small, &big)) in pair[0].iter().zip(&pair[1]).enumerate() {
                    assert!(
                        big as f64 <= 2.2 * small as f64,
                        "{pattern:?} {unit:?} op {op}: {small} -> {big} steps"
                    );
                }
            }
            // Each char is looked at: the count is a real measure of the scan.
            assert!(
                steps[2][0] >= 40_000,
                "{pattern:?} {unit:?}: {:?}",
                steps[2]
            );
        }
    }

    #[test]
    fn work_counter_exposes_quadratic_search() {
        // Searching from every position, each search scanning to the end, is quadratic: the
        // counter must show it, or the linear-growth test above would prove nothing.
        let re = Pattern::compile("*x", true, false).unwrap();
        let count = |n: usize| {
            let text = value_of("", "a", n);
            let mut steps = 0;
            for from in 0..=n {
                re.search(&text, from, &mut steps);
            }
            steps
        };
        let (small, big) = (count(1000), count(2000));
        assert!(big as f64 >= 3.5 * small as f64, "{small} -> {big}");
    }
}
