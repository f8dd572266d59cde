//! A small re-implementation of the part of Go's `regexp` (RE2 syntax, `syntax.Perl` flags) that
//! can be reached from the regular expressions `moby/patternmatcher` generates out of a
//! `.dockerignore` pattern.
//!
//! The generator passes `[`, `]`, `^`, and `\x` escapes through untouched, so user patterns can
//! contain Go regexp syntax: character classes with ranges, POSIX classes (`[[:alpha:]]`), Perl
//! classes (`\d`, `\w`, `\s` and their negations), anchors (`^`, `\A`, `\z`, `\b`, `\B`), `\Q…\E`
//! quoting, octal (`\101`) and hex (`\x41`) escapes. All of them are parsed here with Go's rules,
//! including Go's parse errors (which patternmatcher reports as "syntax error in pattern").
//!
//! Not supported (an [`RegexError::Unsupported`] instead of a match): the Unicode category
//! escapes `\pC`, `\pL`, `\pM`, `\pP`, `\pS`, `\pZ` (and `\P…`), which need Unicode tables (`\pN`
//! is supported), and constructs the generator can never emit raw (`|`, `(?`, `{n,m}`).
//!
//! Matching is a Pike VM (no backtracking, linear in the path length), with Go's semantics:
//! unanchored search, `.` does not match `\n`, negated classes do match `\n`, `$` only at the end.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexError {
    /// Go's regexp parser rejects the expression.
    Syntax(&'static str),
    /// Valid in Go, but not implemented here.
    Unsupported(&'static str),
}

type Ranges = Vec<(u32, u32)>;

#[derive(Debug, Clone)]
enum Node {
    Set(Ranges),
    AnyNotNl,
    Begin,
    End,
    WordBoundary,
    NotWordBoundary,
    Concat(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Quest(Box<Node>),
}

#[derive(Debug, Clone)]
enum Inst {
    Set(Ranges),
    AnyNotNl,
    Begin,
    End,
    WordBoundary,
    NotWordBoundary,
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Regex {
    prog: Vec<Inst>,
}

const MAX_RUNE: u32 = 0x10FFFF;

fn single(c: u32) -> Ranges {
    vec![(c, c)]
}

fn negate(mut r: Ranges) -> Ranges {
    r.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0u32;
    for (lo, hi) in r {
        if hi < next {
            continue;
        }
        if lo > next {
            out.push((next, lo - 1));
        }
        if hi >= MAX_RUNE {
            return out;
        }
        next = next.max(hi + 1);
    }
    out.push((next, MAX_RUNE));
    out
}

fn perl_group(c: char) -> Option<(bool, &'static [(u32, u32)])> {
    const D: &[(u32, u32)] = &[(b'0' as u32, b'9' as u32)];
    const S: &[(u32, u32)] = &[(9, 10), (12, 13), (32, 32)];
    const W: &[(u32, u32)] = &[(48, 57), (65, 90), (95, 95), (97, 122)];
    Some(match c {
        'd' => (false, D),
        'D' => (true, D),
        's' => (false, S),
        'S' => (true, S),
        'w' => (false, W),
        'W' => (true, W),
        _ => return None,
    })
}

fn posix_group(name: &str) -> Option<(bool, &'static [(u32, u32)])> {
    let (neg, base) = match name.strip_prefix('^') {
        Some(b) => (true, b),
        None => (false, name),
    };
    let r: &'static [(u32, u32)] = match base {
        "alnum" => &[(48, 57), (65, 90), (97, 122)],
        "alpha" => &[(65, 90), (97, 122)],
        "ascii" => &[(0, 0x7f)],
        "blank" => &[(9, 9), (32, 32)],
        "cntrl" => &[(0, 0x1f), (0x7f, 0x7f)],
        "digit" => &[(48, 57)],
        "graph" => &[(b'!' as u32, b'~' as u32)],
        "lower" => &[(97, 122)],
        "print" => &[(b' ' as u32, b'~' as u32)],
        "punct" => &[
            (b'!' as u32, b'/' as u32),
            (b':' as u32, b'@' as u32),
            (b'[' as u32, b'`' as u32),
            (b'{' as u32, b'~' as u32),
        ],
        "space" => &[(9, 13), (32, 32)],
        "upper" => &[(65, 90)],
        "word" => &[(48, 57), (65, 90), (95, 95), (97, 122)],
        "xdigit" => &[(48, 57), (65, 70), (97, 102)],
        _ => return None,
    };
    Some((neg, r))
}

fn add_group(class: &mut Ranges, neg: bool, r: &[(u32, u32)]) {
    if neg {
        class.extend(negate(r.to_vec()));
    } else {
        class.extend_from_slice(r);
    }
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn unhex(c: Option<char>) -> Option<u32> {
    c.filter(char::is_ascii_hexdigit)
        .and_then(|c| c.to_digit(16))
}

struct Parser<'a> {
    t: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn at(&self, k: usize) -> Option<char> {
        self.t.get(self.i + k).copied()
    }
    fn rest(&self) -> usize {
        self.t.len() - self.i
    }

    /// Go `parseEscape`; `self.i` points at the backslash.
    fn parse_escape(&mut self) -> Result<u32, RegexError> {
        let Some(c) = self.at(1) else {
            return Err(RegexError::Syntax(
                "trailing backslash at end of expression",
            ));
        };
        self.i += 2;
        let invalid = Err(RegexError::Syntax("invalid escape sequence"));
        match c {
            '1'..='7' | '0' => {
                if c != '0' && !matches!(self.at(0), Some('0'..='7')) {
                    // single non-zero digit is a backreference; not supported
                    return invalid;
                }
                let mut r = c as u32 - '0' as u32;
                for _ in 1..3 {
                    match self.at(0) {
                        Some(d @ '0'..='7') => {
                            r = r * 8 + (d as u32 - '0' as u32);
                            self.i += 1;
                        }
                        _ => break,
                    }
                }
                Ok(r)
            }
            'x' => {
                let Some(c1) = self.at(0) else { return invalid };
                self.i += 1;
                if c1 == '{' {
                    // `{` is always escaped by the generator, but follow Go anyway.
                    let mut r: u32 = 0;
                    let mut nhex = 0;
                    loop {
                        let Some(d) = self.at(0) else { return invalid };
                        self.i += 1;
                        if d == '}' {
                            break;
                        }
                        let Some(v) = unhex(Some(d)) else {
                            return invalid;
                        };
                        r = r * 16 + v;
                        if r > MAX_RUNE {
                            return invalid;
                        }
                        nhex += 1;
                    }
                    if nhex == 0 {
                        return invalid;
                    }
                    return Ok(r);
                }
                let x = unhex(Some(c1));
                let c2 = self.at(0);
                if c2.is_some() {
                    self.i += 1;
                }
                match (x, unhex(c2)) {
                    (Some(x), Some(y)) => Ok(x * 16 + y),
                    _ => invalid,
                }
            }
            'a' => Ok(7),
            'f' => Ok(12),
            'n' => Ok(10),
            'r' => Ok(13),
            't' => Ok(9),
            'v' => Ok(11),
            c if (c as u32) < 0x80 && !is_alnum(c) => Ok(c as u32),
            _ => invalid,
        }
    }

    /// Go `parseUnicodeClass`; returns None when `self.i` is not at `\p`/`\P`.
    fn parse_unicode_class(&mut self) -> Option<Result<Ranges, RegexError>> {
        if self.at(0) != Some('\\') || !matches!(self.at(1), Some('p' | 'P')) {
            return None;
        }
        let mut neg = self.at(1) == Some('P');
        let Some(c) = self.at(2) else {
            // Go: nextRune("") yields no error and an empty name, which is unknown.
            return Some(Err(RegexError::Syntax("invalid character class range")));
        };
        let name: String = if c != '{' {
            self.i += 3;
            c.to_string()
        } else {
            let Some(end) = self.t[self.i..].iter().position(|&ch| ch == '}') else {
                return Some(Err(RegexError::Syntax("invalid character class range")));
            };
            let name: String = self.t[self.i + 3..self.i + end].iter().collect();
            self.i += end + 1;
            name
        };
        let mut name = name.as_str();
        if let Some(n) = name.strip_prefix('^') {
            neg = !neg;
            name = n;
        }
        let ranges = match name {
            "N" => numeric_ranges(),
            "Any" => vec![(0, MAX_RUNE)],
            "C" | "L" | "M" | "P" | "S" | "Z" | "Cc" | "Cf" | "Co" | "Cs" | "Ll" | "Lm" | "Lo"
            | "Lt" | "Lu" | "Mc" | "Me" | "Mn" | "Nd" | "Nl" | "No" | "Pc" | "Pd" | "Pe" | "Pf"
            | "Pi" | "Po" | "Ps" | "Sc" | "Sk" | "Sm" | "So" | "Zl" | "Zp" | "Zs" | "Latin"
            | "Greek" | "Cyrillic" | "Han" => {
                return Some(Err(RegexError::Unsupported(
                    "Unicode class escapes (\\p, \\P)",
                )));
            }
            _ => return Some(Err(RegexError::Syntax("invalid character class range"))),
        };
        Some(Ok(if neg { negate(ranges) } else { ranges }))
    }

    /// Go `parseClass`; `self.i` points at `[`.
    fn parse_class(&mut self) -> Result<Ranges, RegexError> {
        self.i += 1;
        let mut neg = false;
        if self.at(0) == Some('^') {
            neg = true;
            self.i += 1;
        }
        let mut class: Ranges = Vec::new();
        let mut first = true;
        while self.at(0) != Some(']') || first {
            first = false;
            // POSIX [:alnum:] etc.
            if self.rest() > 2 && self.at(0) == Some('[') && self.at(1) == Some(':') {
                let tail = &self.t[self.i + 2..];
                if let Some(j) = tail.windows(2).position(|w| w == [':', ']']) {
                    let name: String = tail[..j].iter().collect();
                    let Some((gneg, r)) = posix_group(&name) else {
                        return Err(RegexError::Syntax("invalid character class range"));
                    };
                    add_group(&mut class, gneg, r);
                    self.i += 2 + j + 2;
                    continue;
                }
            }
            if let Some(r) = self.parse_unicode_class() {
                class.extend(r?);
                continue;
            }
            if self.at(0) == Some('\\') {
                if let Some((gneg, r)) = self.at(1).and_then(perl_group) {
                    add_group(&mut class, gneg, r);
                    self.i += 2;
                    continue;
                }
            }
            let lo = self.parse_class_char()?;
            let mut hi = lo;
            if self.rest() >= 2 && self.at(0) == Some('-') && self.at(1) != Some(']') {
                self.i += 1;
                hi = self.parse_class_char()?;
                if hi < lo {
                    return Err(RegexError::Syntax("invalid character class range"));
                }
            }
            class.push((lo, hi));
        }
        self.i += 1; // chop ]
        Ok(if neg { negate(class) } else { class })
    }

    fn parse_class_char(&mut self) -> Result<u32, RegexError> {
        match self.at(0) {
            None => Err(RegexError::Syntax("missing closing ]")),
            Some('\\') => self.parse_escape(),
            Some(c) => {
                self.i += 1;
                Ok(c as u32)
            }
        }
    }

    /// A backslash sequence outside a class: an assertion (`\A \z \b \B`), a `\Q...\E`
    /// literal, a Unicode or Perl class, or an escaped character; pushed onto `top`.
    fn parse_backslash(&mut self, top: &mut Vec<Node>) -> Result<(), RegexError> {
        match self.at(1) {
            Some('A') => {
                top.push(Node::Begin);
                self.i += 2;
            }
            Some('z') => {
                top.push(Node::End);
                self.i += 2;
            }
            Some('b') => {
                top.push(Node::WordBoundary);
                self.i += 2;
            }
            Some('B') => {
                top.push(Node::NotWordBoundary);
                self.i += 2;
            }
            Some('C') => return Err(RegexError::Syntax("invalid escape sequence")),
            Some('Q') => {
                let tail = &self.t[self.i + 2..];
                let end = tail.windows(2).position(|w| w == ['\\', 'E']);
                let lit = &tail[..end.unwrap_or(tail.len())];
                for &ch in lit {
                    top.push(Node::Set(single(ch as u32)));
                }
                self.i += 2 + lit.len() + if end.is_some() { 2 } else { 0 };
            }
            _ => {
                if let Some(r) = self.parse_unicode_class() {
                    let r = r?;
                    top.push(Node::Set(r));
                } else if let Some((gneg, r)) = self.at(1).and_then(perl_group) {
                    let mut class = Vec::new();
                    add_group(&mut class, gneg, r);
                    top.push(Node::Set(class));
                    self.i += 2;
                } else {
                    let r = self.parse_escape()?;
                    top.push(Node::Set(single(r)));
                }
            }
        }
        Ok(())
    }
}

fn numeric_ranges() -> Ranges {
    // General category N (Nd, Nl, No), as known to this Rust toolchain.
    let mut out: Ranges = Vec::new();
    for c in (0..=MAX_RUNE).filter_map(char::from_u32) {
        if c.is_numeric() {
            let c = c as u32;
            match out.last_mut() {
                Some((_, hi)) if *hi + 1 == c => *hi = c,
                _ => out.push((c, c)),
            }
        }
    }
    out
}

/// Parse `expr` with Go's regexp syntax rules (flags `syntax.Perl`).
fn parse(expr: &str) -> Result<Node, RegexError> {
    let chars: Vec<char> = expr.chars().collect();
    let mut p = Parser { t: &chars, i: 0 };
    let mut frames: Vec<Vec<Node>> = vec![Vec::new()];
    let mut last_repeat = false;
    while p.i < chars.len() {
        let mut repeat = false;
        let c = chars[p.i];
        let top = frames.last_mut().unwrap();
        match c {
            '(' => {
                if p.at(1) == Some('?') {
                    return Err(RegexError::Unsupported("(? groups"));
                }
                frames.push(Vec::new());
                p.i += 1;
            }
            ')' => {
                if frames.len() == 1 {
                    return Err(RegexError::Syntax("unexpected )"));
                }
                let inner = frames.pop().unwrap();
                frames.last_mut().unwrap().push(Node::Concat(inner));
                p.i += 1;
            }
            '|' => return Err(RegexError::Unsupported("alternation")),
            '{' => return Err(RegexError::Unsupported("counted repetition")),
            '^' => {
                top.push(Node::Begin);
                p.i += 1;
            }
            '$' => {
                top.push(Node::End);
                p.i += 1;
            }
            '.' => {
                top.push(Node::AnyNotNl);
                p.i += 1;
            }
            '[' => {
                let r = p.parse_class()?;
                frames.last_mut().unwrap().push(Node::Set(r));
            }
            '*' | '+' | '?' => {
                p.i += 1;
                if p.at(0) == Some('?') {
                    p.i += 1; // non-greedy: irrelevant for a yes/no match
                }
                if last_repeat {
                    return Err(RegexError::Syntax("invalid nested repetition operator"));
                }
                let Some(sub) = top.pop() else {
                    return Err(RegexError::Syntax(
                        "missing argument to repetition operator",
                    ));
                };
                let sub = Box::new(sub);
                top.push(match c {
                    '*' => Node::Star(sub),
                    '+' => Node::Plus(sub),
                    _ => Node::Quest(sub),
                });
                repeat = true;
            }
            '\\' => p.parse_backslash(top)?,
            _ => {
                top.push(Node::Set(single(c as u32)));
                p.i += 1;
            }
        }
        last_repeat = repeat;
    }
    if frames.len() != 1 {
        return Err(RegexError::Syntax("missing closing )"));
    }
    Ok(Node::Concat(frames.pop().unwrap()))
}

fn emit(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Set(r) => prog.push(Inst::Set(r.clone())),
        Node::AnyNotNl => prog.push(Inst::AnyNotNl),
        Node::Begin => prog.push(Inst::Begin),
        Node::End => prog.push(Inst::End),
        Node::WordBoundary => prog.push(Inst::WordBoundary),
        Node::NotWordBoundary => prog.push(Inst::NotWordBoundary),
        Node::Concat(v) => v.iter().for_each(|n| emit(n, prog)),
        Node::Star(sub) => {
            let split = prog.len();
            prog.push(Inst::Split(0, 0));
            emit(sub, prog);
            prog.push(Inst::Jmp(split));
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
        Node::Plus(sub) => {
            let start = prog.len();
            emit(sub, prog);
            let end = prog.len() + 1;
            prog.push(Inst::Split(start, end));
        }
        Node::Quest(sub) => {
            let split = prog.len();
            prog.push(Inst::Split(0, 0));
            emit(sub, prog);
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
    }
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn in_ranges(r: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    r.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

impl Regex {
    /// Compile like Go's `regexp.Compile`.
    pub fn new(expr: &str) -> Result<Regex, RegexError> {
        let node = parse(expr)?;
        let mut prog = Vec::new();
        emit(&node, &mut prog);
        prog.push(Inst::Match);
        Ok(Regex { prog })
    }

    /// Go `(*Regexp).MatchString`: is there a match anywhere in `s`?
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let n = self.prog.len();
        let mut clist: Vec<usize> = Vec::with_capacity(n);
        let mut nlist: Vec<usize> = Vec::with_capacity(n);
        let mut mark = vec![usize::MAX; n];
        let mut gen = 0usize;
        let mut stack = Vec::new();
        for pos in 0..=chars.len() {
            let prev = if pos == 0 { None } else { Some(chars[pos - 1]) };
            let cur = chars.get(pos).copied();
            // Unanchored search: carried-over threads plus a new thread at every position.
            stack.clear();
            stack.append(&mut clist);
            stack.push(0);
            let mut runnable: Vec<usize> = Vec::new();
            gen += 1;
            while let Some(pc) = stack.pop() {
                if mark[pc] == gen {
                    continue;
                }
                mark[pc] = gen;
                match &self.prog[pc] {
                    Inst::Jmp(t) => stack.push(*t),
                    Inst::Split(a, b) => {
                        stack.push(*b);
                        stack.push(*a);
                    }
                    Inst::Begin => {
                        if pos == 0 {
                            stack.push(pc + 1)
                        }
                    }
                    Inst::End => {
                        if cur.is_none() {
                            stack.push(pc + 1)
                        }
                    }
                    Inst::WordBoundary => {
                        if is_word(prev) != is_word(cur) {
                            stack.push(pc + 1)
                        }
                    }
                    Inst::NotWordBoundary => {
                        if is_word(prev) == is_word(cur) {
                            stack.push(pc + 1)
                        }
                    }
                    Inst::Match => return true,
                    Inst::Set(_) | Inst::AnyNotNl => runnable.push(pc),
                }
            }
            let Some(c) = cur else { break };
            nlist.clear();
            for pc in runnable {
                let ok = match &self.prog[pc] {
                    Inst::Set(r) => in_ranges(r, c),
                    Inst::AnyNotNl => c != '\n',
                    _ => false,
                };
                if ok {
                    nlist.push(pc + 1);
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        Regex::new(re).unwrap().is_match(s)
    }

    #[test]
    fn basics() {
        assert!(m("^a[^/]*$", "abc"));
        assert!(!m("^a[^/]*$", "ab/c"));
        assert!(m("^(.*/)?dir2/[^/]*$", "dir/dir2/file"));
        assert!(m("^(.*/)?(.*/)?[^/]*\\.txt$", "file.txt"));
        assert!(!m("^(.*/)?.*$", "a\nb"));
        assert!(m("^[^/]$", "\n"));
        assert!(m("^a\\*b$", "a*b"));
        assert!(m("^[\\]a]$", "]"));
        assert!(m("^[[:alpha:]]$", "q"));
        assert!(!m("^[[:^alpha:]]$", "q"));
        assert!(m("^\\d\\w$", "1_"));
        assert!(m("^\\101$", "A"));
        assert!(m("^\\x41$", "A"));
        assert!(m("^\\Qa[^/]*$", "a[^/]*$"));
        assert!(m("^a\\b$", "a"));
        assert!(!m("^a^b$", "ab"));
        assert!(m("^[a-ζ][^/]*$", "α"));
        assert!(m("^[]a]$", "]"));
        assert!(m("^[a[^/]*]$", "aa]"));
        assert!(m("^\\pN$", "7"));
    }

    #[test]
    fn errors() {
        for re in [
            "^[Local-Only]$",
            "^\\1$",
            "^\\k$",
            "^\\é$",
            "^[[:foo:]]$",
            "^[a",
            "^(a$",
            "^a)$",
            "^\\C$",
            "^\\x4$",
            "^\\pX$",
        ] {
            assert!(matches!(Regex::new(re), Err(RegexError::Syntax(_))), "{re}");
        }
        assert!(Regex::new("^a**$").is_err());
        assert!(matches!(
            Regex::new("^\\pL$"),
            Err(RegexError::Unsupported(_))
        ));
    }
}
