//! Corpus tests for shell-word expansion: ../shared/conformance/buildkit-shell/ (BuildKit's
//! envVarTest, wordsTest and the transcribed lex_test.go tables). Each test prints its counts
//! and fails on any failing case.
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use lw_dockerfile::shell::{env_from_slice, Env, EnvList, Lexer};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    lw_test_kit::corpus::conformance("buildkit-shell")
}

fn read(name: &str) -> String {
    let path = corpus_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn env_var_test() {
    let text = read("envVarTest");
    let env = env_from_slice(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let lex = Lexer::new('\\');
    let (mut run, mut passed, mut errors_expected, mut windows_only) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 3, "line {}: {line:?}", lineno + 1);
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => {
                windows_only += 1;
                continue;
            }
            other => panic!("line {}: bad platform {other:?}", lineno + 1),
        }
        run += 1;
        let got = lex.process_word(input, &env);
        let ok = if expected == "error" {
            errors_expected += 1;
            got.is_err()
        } else {
            matches!(&got, Ok(v) if v == expected)
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {input:?} expected {expected:?}, got {got:?}",
                lineno + 1
            ));
        }
    }
    println!(
        "buildkit-shell/envVarTest: {passed}/{run} passed ({errors_expected} expect an error; {windows_only} Windows-only lines skipped)"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(run, 228, "expected 228 non-Windows lines");
}

#[test]
fn words_test() {
    let text = read("wordsTest");
    let lex = Lexer::new('\\');
    let mut envs: Vec<String> = Vec::new();
    let (mut run, mut passed) = (0, 0);
    let mut failures = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            envs.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "line {}: {line:?}", lineno + 1);
        let input = parts[0].trim();
        let expected: Vec<&str> = parts[1].trim_start_matches(' ').split(',').collect();
        run += 1;
        let got = match lex.process_words(input, &env_from_slice(&envs)) {
            Ok(words) => words,
            Err(_) => vec!["error".to_string()],
        };
        if got == expected {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {input:?} expected {expected:?}, got {got:?}",
                lineno + 1
            ));
        }
    }
    println!("buildkit-shell/wordsTest: {passed}/{run} passed");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(run, 24);
}

fn env_of(case: &Value) -> EnvList {
    case["env"]
        .as_object()
        .expect("env object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
        .collect()
}

fn name_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array of names")
        .iter()
        .map(|n| n.as_str().expect("name").to_string())
        .collect()
}

/// Runs one section of process_word_cases.json; returns (passed, total).
fn run_cases(section: &str, cases: &[Value], failures: &mut Vec<String>) -> (usize, usize) {
    let lex = Lexer::new('\\');
    let mut passed = 0;
    for case in cases {
        let input = case["input"].as_str().expect("input");
        let env = env_of(case);
        let got = lex.process_word_with_matches(input, &env);
        let mut problems = Vec::new();
        if case["expect_error"].as_bool() == Some(true) {
            match &got {
                Err(e) => {
                    if let Some(want) = case["error_contains"].as_str() {
                        if !e.to_string().contains(want) {
                            problems.push(format!("error {e:?} lacks {want:?}"));
                        }
                    }
                }
                Ok(v) => problems.push(format!("expected an error, got {v:?}")),
            }
        } else {
            match &got {
                Err(e) => problems.push(format!("unexpected error {e}")),
                Ok(exp) => {
                    let want = case["expected"].as_str().expect("expected");
                    if exp.value != want {
                        problems.push(format!("value {:?}, want {want:?}", exp.value));
                    }
                    if !case["matched"].is_null() && exp.matched != name_set(&case["matched"]) {
                        problems.push(format!(
                            "matched {:?}, want {}",
                            exp.matched, case["matched"]
                        ));
                    }
                    if !case["unmatched"].is_null() && exp.unmatched != name_set(&case["unmatched"])
                    {
                        problems.push(format!(
                            "unmatched {:?}, want {}",
                            exp.unmatched, case["unmatched"]
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!("{section}: {input:?}: {}", problems.join("; ")));
        }
    }
    (passed, cases.len())
}

#[test]
fn process_word_cases() {
    let doc: Value = serde_json::from_str(&read("process_word_cases.json")).expect("valid JSON");
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (section, want_total) in [
        ("process_with_matches", 47),
        ("mandatory_env_vars", 6),
        ("platform_release_names", 3),
    ] {
        let cases = doc[section]
            .as_array()
            .unwrap_or_else(|| panic!("section {section}"));
        let (passed, total) = run_cases(section, cases, &mut failures);
        assert_eq!(total, want_total, "{section} case count");
        println!("buildkit-shell/process_word_cases.json {section}: {passed}/{total} passed");
        counts.push((passed, total));
    }

    // env_lookup: EnvsFromSlice semantics.
    let cases = doc["env_lookup"]["cases"]
        .as_array()
        .expect("env_lookup.cases");
    let mut passed = 0;
    for case in cases {
        let entries: Vec<&str> = case["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let name = case["lookup"].as_str().unwrap();
        let want = case["value"].as_str().unwrap();
        let env = env_from_slice(&entries);
        // An absent key reads as "" (the Go test ignores the found flag).
        let got = env.get(name).unwrap_or("");
        // And through the lexer, `${name}` must give the same value.
        let via_lexer = Lexer::new('\\').process_word(&format!("${{{name}}}"), &env);
        if got == want && via_lexer.as_deref() == Ok(want) {
            passed += 1;
        } else {
            failures.push(format!(
                "env_lookup {entries:?} {name}: got {got:?} / {via_lexer:?}, want {want:?}"
            ));
        }
    }
    println!(
        "buildkit-shell/process_word_cases.json env_lookup: {passed}/{} passed",
        cases.len()
    );
    assert_eq!(cases.len(), 7);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
