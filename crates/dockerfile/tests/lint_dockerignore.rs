//! The `.dockerignore` matcher used by `CopyIgnoredFile`, against moby/patternmatcher's
//! cases (`../shared/conformance/dockerignore/cases.tsv` and `multi_cases.tsv`). For rows
//! whose expected result is a pattern syntax error, the malformed pattern must be dropped
//! (this matcher only feeds a warning, so it does not fail).
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;

use lw_dockerfile::lint::IgnoreList;

fn conformance() -> PathBuf {
    lw_test_kit::corpus::conformance("dockerignore")
}

fn run(file: &str, multi: bool) {
    let text = std::fs::read_to_string(conformance().join(file)).unwrap();
    let (mut pass, mut total, mut rejected) = (0, 0, 0);
    let mut failures = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 {
            continue;
        }
        let patterns: Vec<String> = if multi {
            serde_json::from_str(cols[0]).unwrap()
        } else {
            vec![cols[0].to_string()]
        };
        total += 1;
        if cols[2] == "error" {
            let list = IgnoreList::parse(&patterns.join("\n"));
            if list.len() < patterns.len() {
                pass += 1;
                rejected += 1;
            } else {
                failures.push(format!(
                    "{patterns:?}: malformed pattern accepted ({})",
                    cols[4]
                ));
            }
            continue;
        }
        let want = cols[2] == "true";
        let got = IgnoreList::parse(&patterns.join("\n")).matches(cols[1]);
        if got == want {
            pass += 1;
        } else {
            failures.push(format!(
                "{patterns:?} {:?}: got {got}, want {want} ({})",
                cols[1], cols[4]
            ));
        }
    }
    println!("dockerignore {file}: {pass}/{total} passed ({rejected} of them syntax-error rows)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn single_patterns() {
    run("cases.tsv", false);
}

#[test]
fn pattern_lists() {
    run("multi_cases.tsv", true);
}
