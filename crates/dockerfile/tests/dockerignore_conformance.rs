//! Corpus tests for `.dockerignore` matching: ../shared/conformance/dockerignore/ (transcribed from
//! moby/patternmatcher's tests). Every row is checked through every matching entry point:
//! `matches_or_parent_matches`, `matches_using_parent_results` (parents walked first, and with no
//! parent context) and, for `Matches` rows, the deprecated single-parent variant.
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;

use lw_dockerfile::ignore::{self, MatchInfo, PatternMatcher};
use lw_dockerfile::Error;
use serde_json::Value;

fn corpus() -> PathBuf {
    lw_test_kit::corpus::conformance("dockerignore")
}

fn read_tsv(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(corpus().join(name)).unwrap();
    let mut lines = text.split('\n').filter(|l| !l.is_empty());
    lines.next(); // header
    lines
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// "true" / "false" / "error" for one matcher entry point.
fn outcome(r: Result<bool, Error>) -> String {
    match r {
        Ok(b) => b.to_string(),
        Err(Error::BadPattern { .. }) => "error".to_string(),
        Err(e) => format!("other error: {e}"),
    }
}

/// Upstream's walk: match every parent prefix first, passing results down.
fn via_parent_results(pm: &PatternMatcher, path: &str) -> Result<bool, Error> {
    let parent = ignore::go_clean(match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "",
    });
    let mut info = MatchInfo::default();
    if parent != "." {
        let dirs: Vec<&str> = parent.split('/').collect();
        for i in 0..dirs.len() {
            // upstream ignores results and errors of the parent calls
            if let Ok((_, next)) = pm.matches_using_parent_results(&dirs[..=i].join("/"), &info) {
                info = next;
            }
        }
    }
    pm.matches_using_parent_results(path, &info).map(|(m, _)| m)
}

/// Check one row; returns a failure description.
fn check(patterns: &[String], path: &str, expected: &str, api: &str) -> Option<String> {
    let pm = match PatternMatcher::new(patterns) {
        Ok(pm) => pm,
        Err(e) => {
            return match (&e, expected) {
                (Error::BadPattern { .. } | Error::IllegalExclusion, "error") => None,
                _ => Some(format!("New failed: {e}")),
            }
        }
    };
    let mut results = vec![
        (
            "MatchesOrParentMatches",
            outcome(pm.matches_or_parent_matches(path)),
        ),
        (
            "MatchesUsingParentResults",
            outcome(via_parent_results(&pm, path)),
        ),
        (
            "MatchesUsingParentResultsNoContext",
            outcome(
                pm.matches_using_parent_results(path, &MatchInfo::default())
                    .map(|(m, _)| m),
            ),
        ),
    ];
    if api == "Matches" {
        results.push(("Matches", outcome(ignore::matches(path, patterns))));
    }
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, got)| got != expected)
        .map(|(n, got)| format!("{n} gave {got}"))
        .collect();
    if bad.is_empty() {
        None
    } else {
        Some(bad.join(", "))
    }
}

#[test]
fn single_pattern_rows() {
    let rows = read_tsv("cases.tsv");
    assert_eq!(rows.len(), 127);
    let mut failures = Vec::new();
    for r in &rows {
        if let Some(f) = check(std::slice::from_ref(&r[0]), &r[1], &r[2], &r[3]) {
            failures.push(format!(
                "{} pattern={:?} path={:?} expected {}: {f}",
                r[4], r[0], r[1], r[2]
            ));
        }
    }
    println!(
        "dockerignore cases.tsv: {}/{} pass",
        rows.len() - failures.len(),
        rows.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn multi_pattern_rows() {
    let rows = read_tsv("multi_cases.tsv");
    assert_eq!(rows.len(), 10);
    let mut failures = Vec::new();
    for r in &rows {
        let patterns: Vec<String> = serde_json::from_str(&r[0]).unwrap();
        if let Some(f) = check(&patterns, &r[1], &r[2], &r[3]) {
            failures.push(format!(
                "{} patterns={:?} path={:?} expected {}: {f}",
                r[4], patterns, r[1], r[2]
            ));
        }
    }
    println!(
        "dockerignore multi_cases.tsv: {}/{} pass",
        rows.len() - failures.len(),
        rows.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_cases() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus().join("cases.json")).unwrap())
            .unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_string();
    let (mut total, mut failures) = (0, Vec::new());

    for c in doc["single"].as_array().unwrap() {
        total += 1;
        if let Some(f) = check(
            &[s(&c["pattern"])],
            &s(&c["path"]),
            &s(&c["expected"]),
            &s(&c["api"]),
        ) {
            failures.push(format!("single {}: {f}", s(&c["source"])));
        }
    }
    for c in doc["multi"].as_array().unwrap() {
        total += 1;
        let patterns: Vec<String> = c["patterns"].as_array().unwrap().iter().map(s).collect();
        if let Some(f) = check(&patterns, &s(&c["path"]), &s(&c["expected"]), &s(&c["api"])) {
            failures.push(format!("multi {}: {f}", s(&c["source"])));
        }
    }
    for c in doc["new"].as_array().unwrap() {
        total += 1;
        let patterns: Vec<String> = c["patterns"].as_array().unwrap().iter().map(s).collect();
        let src = s(&c["source"]);
        match PatternMatcher::new(&patterns) {
            Err(e) => {
                if c["expect_error"] != true {
                    failures.push(format!("new {src}: unexpected error {e}"));
                } else if !matches!(e, Error::IllegalExclusion)
                    || e.to_string() != "illegal exclusion pattern: \"!\""
                {
                    failures.push(format!("new {src}: wrong error {e}"));
                }
            }
            Ok(pm) => {
                if c["expect_error"] == true {
                    failures.push(format!("new {src}: expected an error"));
                    continue;
                }
                if let Some(n) = c["expect_pattern_count"].as_u64() {
                    if pm.patterns().len() as u64 != n {
                        failures.push(format!(
                            "new {src}: {} patterns, expected {n}",
                            pm.patterns().len()
                        ));
                    }
                }
                if let Some(x) = c["expect_exclusions"].as_bool() {
                    if pm.exclusions() != x {
                        failures.push(format!("new {src}: exclusions() = {}", pm.exclusions()));
                    }
                }
                for m in c["then_match"].as_array().into_iter().flatten() {
                    let r = pm.matches_or_parent_matches(&s(&m["path"]));
                    let ok = match (&r, m["expected"].as_str().unwrap()) {
                        (Err(e @ Error::BadPattern { .. }), "error") => {
                            e.to_string().contains(&s(&m["error"]))
                        }
                        (Ok(b), want) => b.to_string() == want,
                        _ => false,
                    };
                    if !ok {
                        failures.push(format!("new {src}: then_match gave {r:?}"));
                    }
                }
            }
        }
    }
    println!(
        "dockerignore cases.json (single+multi+new): {}/{} pass",
        total - failures.len(),
        total
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ignorefile_readall() {
    let dir = corpus().join("ignorefile");
    let input = std::fs::read(dir.join("readall.dockerignore")).unwrap();
    let expected: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("readall.expected.json")).unwrap())
            .unwrap();
    let got = ignore::read_ignore_file(&input);
    assert_eq!(got, expected);
    assert_eq!(ignore::try_read_ignore_file(&input).unwrap(), expected);
    assert!(ignore::read_ignore_file(b"").is_empty());
    println!(
        "dockerignore ignorefile/readall: {}/{} patterns match",
        expected.len(),
        expected.len()
    );
}

/// Informative: upstream's classification and generated expression (compile.tsv).
#[test]
fn compile_classification() {
    let rows = read_tsv("compile.tsv");
    let mut bad = Vec::new();
    for r in &rows {
        let pm = PatternMatcher::new(std::slice::from_ref(&r[0])).unwrap();
        let (ty, re) = pm.patterns()[0].match_type();
        let want_re = if r[1] == "regexpMatch" {
            Some(r[2].as_str())
        } else {
            None
        };
        if ty != r[1] || re != want_re {
            bad.push(format!(
                "{:?}: got {ty} {re:?}, want {} {want_re:?}",
                r[0], r[1]
            ));
        }
    }
    println!(
        "dockerignore compile.tsv: {}/{} pass",
        rows.len() - bad.len(),
        rows.len()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
