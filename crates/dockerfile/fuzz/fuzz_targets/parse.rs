//! Fuzz target: arbitrary bytes through the parser, the dump, typed instructions and lint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lw_dockerfile::{instructions, lint, parser};

fuzz_target!(|data: &[u8]| {
    // Errors are fine; panics, hangs and overflows are the bugs we look for.
    if let Ok(df) = parser::parse(data) {
        let _ = parser::dump(&df);
        let _ = instructions::parse(&df);
        let _ = instructions::parse_stages(&df);
    }
    let _ = lint::lint(data, &lint::LintOptions::default());
});
