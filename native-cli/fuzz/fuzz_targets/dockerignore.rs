#![no_main]
//! The `.dockerignore` compiler and matcher: pattern lines, then paths to match (after a line `---`). Nothing may
//! panic, whatever the patterns' wildcards, classes and escapes.

use libfuzzer_sys::fuzz_target;
use lw_dockerfile::ignore::PatternMatcher;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pats, paths) = text.split_once("\n---\n").unwrap_or((&text, "a/b/c"));
    let pats: Vec<&str> = pats.lines().take(64).collect();
    let Ok(m) = PatternMatcher::new(&pats) else { return };
    for p in paths.lines().take(64) {
        let _ = m.matches_or_parent_matches(p);
        let _ = m.matches_single_parent(p);
    }
});
