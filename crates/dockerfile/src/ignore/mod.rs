//! `.dockerignore` handling, matching `github.com/moby/patternmatcher` (and its `ignorefile`
//! reader) byte for byte on non-Windows systems.
//!
//! Upstream compiles every pattern to a Go regular expression; the interesting consequence is that
//! the pattern language is *not* `filepath.Match`: `filepath.Match` is only used as a syntax check
//! when the matcher is built, and the generated expression is what decides. This module rebuilds
//! the very same expression text and evaluates it with a small Go-compatible regexp engine
//! ([`regexp`](crate::go_compat::regexp)), so odd patterns (`[[:alpha:]]`, `\d`, `a^b`, `[Local-Only]`) behave as in Docker.
//!
//! Known divergences: Unicode category escapes such as `\pL` inside a pattern give
//! [`Error::UnsupportedPattern`] (Go would match letters); invalid UTF-8 in an ignore file is
//! replaced with U+FFFD (Rust strings are UTF-8).

pub use crate::go_compat::filepath::{clean as go_clean, match_pattern as go_filepath_match};

use crate::go_compat::filepath;
use crate::go_compat::regexp::{Regex, RegexError};
use crate::Error;

/// How a single pattern is evaluated (upstream's `matchType`).
#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regexp(Regex, String),
    /// Go's `regexp.Compile` rejected the generated expression: every evaluation fails with
    /// `filepath.ErrBadPattern`.
    Bad,
    /// Valid in Go, not implemented here.
    Unsupported(&'static str),
}

/// One cleaned `.dockerignore` pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    dirs: usize,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern, without its leading `!` (upstream `Pattern.String()`).
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception (re-inclusion) pattern.
    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    /// upstream's classification: `exactMatch`, `prefixMatch`, `suffixMatch` or `regexpMatch`,
    /// and the generated Go regular expression for the latter (informative; used by tests).
    pub fn match_type(&self) -> (&'static str, Option<&str>) {
        match &self.kind {
            Kind::Exact => ("exactMatch", None),
            Kind::Prefix => ("prefixMatch", None),
            Kind::Suffix => ("suffixMatch", None),
            Kind::Regexp(_, src) => ("regexpMatch", Some(src)),
            Kind::Bad | Kind::Unsupported(_) => ("unknownMatch", None),
        }
    }

    fn bad_pattern(&self) -> Error {
        Error::BadPattern {
            pattern: self.cleaned.clone(),
        }
    }

    /// upstream `Pattern.match` for a single path.
    fn matches(&self, path: &str) -> Result<bool, Error> {
        let pat = self.cleaned.as_bytes();
        let p = path.as_bytes();
        Ok(match &self.kind {
            Kind::Exact => p == pat,
            Kind::Prefix => p.starts_with(&pat[..pat.len() - 2]),
            Kind::Suffix => {
                let suffix = &pat[2..];
                p.ends_with(suffix) || (suffix.first() == Some(&b'/') && p == &suffix[1..])
            }
            Kind::Regexp(re, _) => re.is_match(path),
            Kind::Bad => return Err(self.bad_pattern()),
            Kind::Unsupported(what) => {
                return Err(Error::UnsupportedPattern {
                    pattern: self.cleaned.clone(),
                    reason: what,
                })
            }
        })
    }
}

fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

/// upstream `Pattern.compile("/")`: classify the pattern and build its regular expression.
fn compile(pattern: &str) -> Kind {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let mut re = String::from("^");
    let mut ty = T::Exact;
    let mut chars: Vec<char> = pattern.chars().collect();
    // Go's text/scanner skips a byte-order mark at the very start of its input.
    if chars.first() == Some(&'\u{FEFF}') {
        chars.remove(0);
    }
    let mut k = 0;
    let mut i = 0;
    while k < chars.len() {
        let ch = chars[k];
        k += 1;
        let peek = chars.get(k).copied();
        if ch == '*' {
            if peek == Some('*') {
                k += 1;
                // Treat **/ as ** so eat the "/"
                if chars.get(k) == Some(&'/') {
                    k += 1;
                }
                if k >= chars.len() {
                    // "**" at the end: accept everything (prefix match when literal so far)
                    if ty == T::Exact {
                        ty = T::Prefix;
                    } else {
                        re.push_str(".*");
                        ty = T::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    ty = T::Regexp;
                }
                if i == 0 {
                    ty = T::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                ty = T::Regexp;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            ty = T::Regexp;
        } else if should_escape(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            if let Some(next) = peek {
                k += 1;
                re.push('\\');
                re.push(next);
                ty = T::Regexp;
            } else {
                re.push('\\');
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            ty = T::Regexp;
        } else {
            re.push(ch);
        }
        i += 1;
    }
    match ty {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix,
        T::Suffix => Kind::Suffix,
        T::Regexp => {
            re.push('$');
            match Regex::new(&re) {
                Ok(r) => Kind::Regexp(r, re),
                Err(RegexError::Syntax(_)) => Kind::Bad,
                Err(RegexError::Unsupported(w)) => Kind::Unsupported(w),
            }
        }
    }
}

/// Per-pattern results for a directory, handed to its children by a walker
/// (upstream `MatchInfo`). The default value means "no information about the parent".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// A list of `.dockerignore` patterns (upstream `PatternMatcher`). Immutable, so it can be shared.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
    only_prefix_exceptions: bool,
}

impl PatternMatcher {
    /// upstream `New`: trim, drop empty patterns, `filepath.Clean`, split off `!`, and check the
    /// syntax with `filepath.Match(pattern, ".")`.
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<Self, Error> {
        let mut pm = PatternMatcher {
            patterns: Vec::with_capacity(patterns.len()),
            exclusions: false,
            only_prefix_exceptions: true,
        };
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = filepath::clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(Error::IllegalExclusion);
                }
                exclusion = true;
                p = rest.to_string();
                pm.exclusions = true;
            }
            if filepath::match_pattern(&p, ".").is_err() {
                return Err(Error::BadPattern { pattern: p });
            }
            let kind = compile(&p);
            let pat = Pattern {
                dirs: p.split('/').count(),
                exclusion,
                kind,
                cleaned: p,
            };
            if exclusion
                && pattern_without_trailing_glob(&pat.cleaned)
                    .contains(['*', '[', ']', '?', '^', '\\'])
            {
                pm.only_prefix_exceptions = false;
            }
            pm.patterns.push(pat);
        }
        Ok(pm)
    }

    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// The active patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when there are no patterns at all (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// upstream `MatchesOrParentMatches`: is `path` (relative, slash-separated) excluded, taking
    /// every parent directory into account?
    pub fn matches_or_parent_matches(&self, path: &str) -> Result<bool, Error> {
        let parent = filepath::dir(path);
        let parents = parent_prefixes(&parent);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(path)?;
            if !m && parent != "." {
                m = parents
                    .iter()
                    .any(|pp| pattern.matches(pp).unwrap_or(false));
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// upstream's deprecated `(*PatternMatcher).Matches`: like
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches) but only the parent prefix
    /// with as many segments as the pattern is tried. Kept for conformance testing.
    pub fn matches_single_parent(&self, path: &str) -> Result<bool, Error> {
        let parent = filepath::dir(path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(path)?;
            if !m && parent != "." && pattern.dirs <= parent_dirs.len() {
                m = pattern
                    .matches(&parent_dirs[..pattern.dirs].join("/"))
                    .unwrap_or(false);
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// upstream `MatchesUsingParentResults`: the walker-friendly variant. Pass the [`MatchInfo`]
    /// returned for the parent directory (or `MatchInfo::default()` for a top-level entry, or
    /// when unknown); keep the returned one if `path` is a directory.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent_info: &MatchInfo,
    ) -> Result<(bool, MatchInfo), Error> {
        let parent_matched = &parent_info.parent_matched;
        if !parent_matched.is_empty() && parent_matched.len() != self.patterns.len() {
            return Err(Error::MatchInfoMismatch);
        }
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut m = parent_matched.get(i).copied().unwrap_or(false);
            if !m {
                if pattern.exclusion != matched {
                    continue;
                }
                m = pattern.matches(path)?;
                if !m && parent_matched.is_empty() {
                    let parent = filepath::dir(path);
                    if parent != "." {
                        m = parent_prefixes(&parent)
                            .iter()
                            .any(|pp| pattern.matches(pp).unwrap_or(false));
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok((matched, info))
    }

    /// For a directory that is excluded (matched): may a walker skip everything below it?
    ///
    /// This is BuildKit's (`tonistiigi/fsutil`) optimisation: a skipped directory is safe only when
    /// no `!` exception could re-include something inside it. If any exception contains a
    /// wildcard (other than a trailing `/*` or `/**`) nothing is skipped; otherwise the
    /// directory is skipped unless an exception lies below it.
    pub fn can_skip_excluded_dir(&self, dir: &str) -> bool {
        if !self.exclusions {
            return true;
        }
        if !self.only_prefix_exceptions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        !self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            format!("{}/", pattern_without_trailing_glob(&p.cleaned)).starts_with(&dir_slash)
        })
    }
}

/// What a directory walker should do with one entry (see [`WalkFilter`]).
#[derive(Debug)]
pub enum Verdict<T> {
    /// Keep the entry. `parents` are excluded ancestor directories that must be emitted first
    /// (outermost first), because something inside them was re-included by a `!` pattern.
    Include { parents: Vec<T> },
    /// Drop the entry (if it is a directory, still descend into it).
    Exclude,
    /// Drop the directory and do not descend: nothing below it can be re-included.
    SkipDir,
}

struct WalkFrame<T> {
    dir_slash: String,
    info: MatchInfo,
    pending: Option<T>,
}

/// Applies a [`PatternMatcher`] to a walk the way BuildKit's context transfer does
/// (`tonistiigi/fsutil` `filterFS.Walk`): parents' results are reused, excluded directories are
/// skipped when no exception could reach inside, and an excluded directory is still emitted
/// (lazily, just before its first included descendant) when an exception re-includes something
/// below it.
///
/// Entries must be visited in walk order: every directory immediately followed by its
/// descendants (see `lw_engine::context::compare_paths`). `T` is a payload returned for pending
/// parent directories (typically the directory's entry).
pub struct WalkFilter<'m, T> {
    matcher: &'m PatternMatcher,
    stack: Vec<WalkFrame<T>>,
}

impl<'m, T> WalkFilter<'m, T> {
    pub fn new(matcher: &'m PatternMatcher) -> Self {
        WalkFilter {
            matcher,
            stack: Vec::new(),
        }
    }

    /// Decide about `path` (relative, slash-separated, no trailing slash).
    pub fn visit(&mut self, path: &str, is_dir: bool, payload: T) -> Result<Verdict<T>, Error> {
        while let Some(top) = self.stack.last() {
            if path.starts_with(&top.dir_slash) {
                break;
            }
            self.stack.pop();
        }
        let default = MatchInfo::default();
        let parent_info = self.stack.last().map(|f| &f.info).unwrap_or(&default);
        let (excluded, info) = self
            .matcher
            .matches_using_parent_results(path, parent_info)?;
        if excluded {
            if is_dir {
                if self.matcher.can_skip_excluded_dir(path) {
                    return Ok(Verdict::SkipDir);
                }
                self.stack.push(WalkFrame {
                    dir_slash: format!("{path}/"),
                    info,
                    pending: Some(payload),
                });
            }
            return Ok(Verdict::Exclude);
        }
        let parents = self
            .stack
            .iter_mut()
            .filter_map(|f| f.pending.take())
            .collect();
        if is_dir {
            self.stack.push(WalkFrame {
                dir_slash: format!("{path}/"),
                info,
                pending: None,
            });
        }
        Ok(Verdict::Include { parents })
    }
}

/// fsutil `patternWithoutTrailingGlob`.
fn pattern_without_trailing_glob(p: &str) -> &str {
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

/// `a`, `a/b`, `a/b/c` for `a/b/c` (upstream joins the first i+1 elements of `strings.Split`).
fn parent_prefixes(parent: &str) -> Vec<String> {
    let parts: Vec<&str> = parent.split('/').collect();
    (1..=parts.len()).map(|i| parts[..i].join("/")).collect()
}

/// upstream package function `Matches(file, patterns)` (deprecated upstream): cleans `file`,
/// never matches `.`, and uses the single-parent check.
pub fn matches(file: &str, patterns: &[impl AsRef<str>]) -> Result<bool, Error> {
    let pm = PatternMatcher::new(patterns)?;
    let file = filepath::clean(file);
    if file == "." {
        return Ok(false);
    }
    pm.matches_single_parent(&file)
}

/// upstream package function `MatchesOrParentMatches(file, patterns)`.
pub fn matches_or_parent_matches(file: &str, patterns: &[impl AsRef<str>]) -> Result<bool, Error> {
    let pm = PatternMatcher::new(patterns)?;
    let file = filepath::clean(file);
    if file == "." {
        return Ok(false);
    }
    pm.matches_or_parent_matches(&file)
}

/// Go's `bufio.MaxScanTokenSize`: `ignorefile.ReadAll` fails on a longer line.
const MAX_LINE: usize = 64 * 1024;

/// `ignorefile.ReadAll`: the patterns of a `.dockerignore` file, in order. Lines of 64 KiB or more
/// (which make Go fail with `bufio.ErrTooLong`) are an error.
pub fn try_read_ignore_file(bytes: &[u8]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        let (mut line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        rest = next;
        if line.len() >= MAX_LINE {
            return Err(Error::IgnoreLineTooLong { line: line_no + 1 });
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if line_no == 0 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        line_no += 1;
        if line.first() == Some(&b'#') {
            continue;
        }
        let line = String::from_utf8_lossy(line);
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = filepath::clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        if invert {
            p.insert(0, '!');
        }
        out.push(p);
    }
    Ok(out)
}

/// `ignorefile.ReadAll`, lenient: a line too long for Go's scanner ends the list there (Go would
/// fail the build; use [`try_read_ignore_file`] to get that error).
pub fn read_ignore_file(bytes: &[u8]) -> Vec<String> {
    match try_read_ignore_file(bytes) {
        Ok(v) => v,
        Err(_) => {
            // keep what precedes the offending line
            let cut = bytes
                .split(|&b| b == b'\n')
                .scan(0usize, |off, l| {
                    let start = *off;
                    *off += l.len() + 1;
                    Some((start, l.len()))
                })
                .find(|&(_, len)| len >= MAX_LINE)
                .map(|(s, _)| s)
                .unwrap_or(bytes.len());
            try_read_ignore_file(&bytes[..cut]).unwrap_or_default()
        }
    }
}

/// Where BuildKit looks for ignore patterns for a given Dockerfile path (relative to the context):
/// first `<Dockerfile>.dockerignore` next to it, then `.dockerignore` at the context root.
pub fn ignore_file_candidates(dockerfile: &str) -> Vec<String> {
    let mut v = Vec::new();
    if !dockerfile.is_empty() {
        v.push(format!("{dockerfile}.dockerignore"));
    }
    v.push(".dockerignore".to_string());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weird_patterns_follow_go_regexp() {
        let m = |p: &str, s: &str| {
            PatternMatcher::new(&[p])
                .unwrap()
                .matches_or_parent_matches(s)
        };
        assert!(m("[[:alpha:]]", "q").unwrap());
        assert!(m("\\d", "5").unwrap());
        assert!(!m("a^b*", "ab").unwrap());
        assert!(matches!(m("\\k", "k"), Err(Error::BadPattern { .. })));
        assert!(matches!(
            m("[Local-Only]/", "x"),
            Err(Error::BadPattern { .. })
        ));
        // skipped patterns are never evaluated, so their error never surfaces
        let pm = PatternMatcher::new(&["**", "[Local-Only]"]).unwrap();
        assert!(pm.matches_or_parent_matches("x").unwrap());
    }

    #[test]
    fn skip_dir_logic() {
        let pm = PatternMatcher::new(&["node_modules", "build", "!build/keep.txt"]).unwrap();
        assert!(pm.can_skip_excluded_dir("node_modules"));
        assert!(!pm.can_skip_excluded_dir("build"));
        let pm = PatternMatcher::new(&["a", "!**/*.md"]).unwrap();
        assert!(!pm.can_skip_excluded_dir("a"));
        let pm = PatternMatcher::new(&["a"]).unwrap();
        assert!(pm.can_skip_excluded_dir("a"));
    }

    #[test]
    fn ignore_file_lines() {
        assert_eq!(read_ignore_file(b""), Vec::<String>::new());
        assert_eq!(
            read_ignore_file(b"\xEF\xBB\xBFa\r\n #b\n/\n!\t/x/../y\n"),
            vec!["a", "#b", "/", "!y"]
        );
        let mut long = b"a\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE));
        long.extend_from_slice(b"\nb\n");
        assert!(matches!(
            try_read_ignore_file(&long),
            Err(Error::IgnoreLineTooLong { line: 2 })
        ));
        assert_eq!(read_ignore_file(&long), vec!["a"]);
        let mut ok = vec![b'y'; MAX_LINE - 1];
        ok.push(b'\n');
        assert_eq!(read_ignore_file(&ok).len(), 1);
    }
}
