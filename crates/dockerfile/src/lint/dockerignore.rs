//! `.dockerignore` reading and matching (moby/patternmatcher semantics), for the
//! `CopyIgnoredFile` check: `*`, `?`, classes, `\` escapes, `**` across segments,
//! `!` exclusions, and a match of any parent directory.

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    patterns: Vec<(Vec<String>, bool)>,
}

/// `filepath.Clean` on a slash path, without a leading `/`.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

impl IgnoreList {
    /// Reads `.dockerignore` text: comments, blank lines, `!` exclusions.
    pub fn parse(text: &str) -> IgnoreList {
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 { line.trim_start_matches('\u{feff}') } else { line };
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
            }
            let c = clean(p);
            if c.is_empty() {
                continue;
            }
            patterns.push((c.split('/').map(String::from).collect(), excl));
        }
        IgnoreList { patterns }
    }

    /// Whether `path` (relative, slash-separated) is excluded from the context.
    pub fn matches(&self, path: &str) -> bool {
        let path = clean(path);
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut matched = false;
        for (pat, excl) in &self.patterns {
            if *excl != matched {
                continue;
            }
            let hit = (1..=segs.len()).any(|n| match_segs(pat, &segs[..n]));
            if hit {
                matched = !excl;
            }
        }
        matched
    }
}

fn match_segs(pat: &[String], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => {
            if pat.len() == 1 {
                return !path.is_empty();
            }
            (0..=path.len()).any(|i| match_segs(&pat[1..], &path[i..]))
        }
        Some(p) => !path.is_empty() && glob(p.as_bytes(), path[0].as_bytes()) && match_segs(&pat[1..], &path[1..]),
    }
}

/// One path segment against one pattern segment.
fn glob(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        b'*' => (0..=s.len()).any(|i| glob(&p[1..], &s[i..])),
        b'?' => !s.is_empty() && glob(&p[1..], &s[1..]),
        b'\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && glob(&p[2..], &s[1..]),
        b'[' => {
            let Some(end) = p[1..].iter().position(|&c| c == b']').map(|i| i + 1) else {
                return false;
            };
            if s.is_empty() {
                return false;
            }
            let mut class = &p[1..end];
            let neg = matches!(class.first(), Some(b'^') | Some(b'!'));
            if neg {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= s[0] && s[0] <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == s[0];
                    i += 1;
                }
            }
            hit != neg && glob(&p[end + 1..], &s[1..])
        }
        c => !s.is_empty() && s[0] == c && glob(&p[1..], &s[1..]),
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
