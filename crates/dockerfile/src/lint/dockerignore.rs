//! The `.dockerignore` view used by the `CopyIgnoredFile` check: a lenient wrapper around the
//! shared moby/patternmatcher matcher in [`crate::ignore`]. Malformed patterns are dropped
//! instead of failing, because here they only feed a warning.

use crate::ignore::{go_clean, read_ignore_file, PatternMatcher};

/// A compiled `.dockerignore`, keeping only the patterns that can be evaluated.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    matcher: PatternMatcher,
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

/// Whether one pattern line is usable on its own: accepted by the matcher (not a lone `!`,
/// valid `filepath.Match` syntax) and evaluable (its generated expression compiles here).
fn usable(pattern: &str) -> bool {
    PatternMatcher::new(&[pattern]).is_ok_and(|m| {
        m.patterns()
            .iter()
            .all(|p| p.match_type().0 != "unknownMatch")
    })
}

impl IgnoreList {
    /// Reads `.dockerignore` text (`ignorefile.ReadAll`: comments, blank lines, `!`
    /// exclusions). Malformed patterns are dropped (they only feed a warning here).
    pub fn parse(text: &str) -> IgnoreList {
        let patterns: Vec<String> = read_ignore_file(text.as_bytes())
            .into_iter()
            .filter(|p| usable(p))
            .collect();
        // Every pattern was accepted on its own, so the list is accepted as a whole.
        let matcher = PatternMatcher::new(&patterns).unwrap_or_default();
        IgnoreList { matcher }
    }

    /// How many usable patterns were read (malformed ones are dropped).
    pub fn len(&self) -> usize {
        self.matcher.patterns().len()
    }

    /// Whether no usable pattern was read.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// Whether any pattern is a `!` exclusion (BuildKit then skips `CopyIgnoredFile`).
    pub fn has_exclusions(&self) -> bool {
        self.matcher.exclusions()
    }

    /// Whether a pattern excludes every entry of the context root (`*`, `**`, `**/*`).
    pub fn ignores_root(&self) -> bool {
        self.matcher
            .patterns()
            .iter()
            .any(|p| !p.exclusion() && matches!(p.as_str(), "*" | "**" | "**/*"))
    }

    /// Whether `path` (relative, slash-separated) is excluded from the context
    /// (`MatchesOrParentMatches`: the path or any parent directory matches).
    pub fn matches(&self, path: &str) -> bool {
        self.matcher
            .matches_or_parent_matches(&go_clean(path))
            .unwrap_or(false)
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
