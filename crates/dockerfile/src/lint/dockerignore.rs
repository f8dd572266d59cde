//! `.dockerignore` reading and matching (moby/patternmatcher semantics), for the
//! `CopyIgnoredFile` check: `*`, `?`, classes, `\` escapes, `**` across segments,
//! `!` exclusions, and a match of any parent directory.

/// One element of a compiled pattern (patternmatcher turns patterns into regexps; these
/// are the pieces it generates).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: `[^/]*`
    Star,
    /// `?`: `[^/]`
    One,
    /// `**` followed by more pattern: `(.*/)?`
    AnyDirs,
    /// `**` at the end: `.*`
    AnyAll,
    /// `[...]`: ranges, negated with `^`.
    Class(Vec<(char, char)>, bool),
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    patterns: Vec<(Vec<Tok>, bool, String)>,
}

/// `filepath.Clean` on a slash path (keeps a leading `/`).
fn go_clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// `filepath.Clean` without a leading `/` or `./` (a context-relative path; "" for the root).
pub(crate) fn clean(p: &str) -> String {
    let c = go_clean(p);
    let c = c.trim_start_matches('/');
    if c == "." {
        String::new()
    } else {
        c.to_string()
    }
}

fn compile(p: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i >= chars.len() {
                    Tok::AnyAll
                } else {
                    Tok::AnyDirs
                });
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '\\' => {
                toks.push(Tok::Lit(*chars.get(i)?));
                i += 1;
            }
            '[' => {
                let neg = chars.get(i) == Some(&'^');
                if neg {
                    i += 1;
                }
                // Go's filepath.Match class syntax: an unescaped '-' or ']' where an
                // item is expected is an error.
                let get = |i: &mut usize| -> Option<char> {
                    let mut c = *chars.get(*i)?;
                    if c == '-' || c == ']' {
                        return None;
                    }
                    if c == '\\' {
                        *i += 1;
                        c = *chars.get(*i)?;
                    }
                    *i += 1;
                    Some(c)
                };
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = get(&mut i)?;
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        hi = get(&mut i)?;
                        if hi < lo {
                            return None;
                        }
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class(ranges, neg));
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Some(toks)
}

fn match_toks(t: &[Tok], s: &[char]) -> bool {
    let Some(first) = t.first() else {
        return s.is_empty();
    };
    let rest = &t[1..];
    match first {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|&c| c != '/') && match_toks(rest, &s[1..]),
        Tok::Class(ranges, neg) => {
            s.first()
                .is_some_and(|&c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg)
                && match_toks(rest, &s[1..])
        }
        Tok::Star => {
            let max = s.iter().position(|&c| c == '/').unwrap_or(s.len());
            (0..=max).any(|k| match_toks(rest, &s[k..]))
        }
        Tok::AnyAll => true,
        Tok::AnyDirs => {
            match_toks(rest, s)
                || (0..s.len()).any(|k| s[k] == '/' && match_toks(rest, &s[k + 1..]))
        }
    }
}

impl IgnoreList {
    /// Reads `.dockerignore` text: comments, blank lines, `!` exclusions. Malformed
    /// patterns are dropped (they only feed a warning here).
    pub fn parse(text: &str) -> IgnoreList {
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let excl = p.starts_with('!');
            if excl {
                p = p[1..].trim();
                if p.is_empty() {
                    continue; // a lone `!` is an error upstream
                }
            }
            let mut c = go_clean(p);
            if c.len() > 1 && c.starts_with('/') {
                c.remove(0);
            }
            if let Some(toks) = compile(&c) {
                patterns.push((toks, excl, c));
            }
        }
        IgnoreList { patterns }
    }

    /// How many usable patterns were read (malformed ones are dropped).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether no usable pattern was read.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is a `!` exclusion (BuildKit then skips `CopyIgnoredFile`).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.1)
    }

    /// Whether a pattern excludes every entry of the context root (`*`, `**`, `**/*`).
    pub fn ignores_root(&self) -> bool {
        self.patterns
            .iter()
            .any(|(_, e, text)| !e && matches!(text.as_str(), "*" | "**" | "**/*"))
    }

    /// Whether `path` (relative, slash-separated) is excluded from the context
    /// (`MatchesOrParentMatches`: the path or any parent directory matches).
    pub fn matches(&self, path: &str) -> bool {
        let path = go_clean(path);
        let parts: Vec<&str> = path.split('/').collect();
        let mut candidates: Vec<Vec<char>> = vec![path.chars().collect()];
        for n in 1..parts.len() {
            candidates.push(parts[..n].join("/").chars().collect());
        }
        let mut matched = false;
        for (toks, excl, _) in &self.patterns {
            if *excl != matched {
                continue;
            }
            if candidates.iter().any(|c| match_toks(toks, c)) {
                matched = !excl;
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let l = IgnoreList::parse("# c\n*/tmp/*\nnode_modules\n*.log\n!keep.log\n");
        assert!(l.matches("a/tmp/x"));
        assert!(!l.matches("tmp/x"));
        assert!(l.matches("node_modules/x/y"));
        assert!(l.matches("./err.log"));
        assert!(!l.matches("keep.log"));
        assert!(!l.matches("src/main.rs"));
        let l = IgnoreList::parse("**/foo\nabc/**\n");
        assert!(l.matches("foo") && l.matches("x/y/foo/z") && l.matches("abc/def"));
    }
}
