//! Corpus tests for the Dockerfile parser: `../shared/conformance/buildkit-parser*` (BuildKit's
//! `frontend/dockerfile/parser` test data; formats in that folder's README.md).
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;

use lw_dockerfile::parser::{self, Dockerfile};
use lw_dockerfile::Error;
use serde_json::Value;

fn corpus(sub: &str) -> PathBuf {
    lw_test_kit::corpus::conformance(sub)
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn case_dirs(sub: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn buildkit_parser_dumps() {
    let dirs = case_dirs("buildkit-parser");
    assert_eq!(dirs.len(), 33);
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = std::fs::read(dir.join("Dockerfile")).unwrap();
        let expected = std::fs::read_to_string(dir.join("result")).unwrap();
        match parser::parse(&src) {
            Ok(df) => {
                let got = parser::dump(&df);
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        dir.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: parse error {e}", dir.display())),
        }
    }
    println!(
        "buildkit-parser: {}/{} result dumps byte-identical",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

#[test]
fn buildkit_parser_negative() {
    let dirs = case_dirs("buildkit-parser-negative");
    assert_eq!(dirs.len(), 4);
    for dir in &dirs {
        let src = std::fs::read(dir.join("Dockerfile")).unwrap();
        let err = parser::parse(&src).expect_err(&dir.display().to_string());
        let name = dir.file_name().unwrap().to_str().unwrap();
        let want = match name {
            "empty_dockerfile" | "only_comments" => "file with no instructions",
            "env_no_value" => "ENV must have two arguments",
            "shykes-nested-json" => {
                "when using JSON array syntax, arrays must be comprised of strings only"
            }
            _ => unreachable!(),
        };
        let Error::Parse { message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(message, want, "{name}");
    }
    println!("buildkit-parser-negative: {}/4 refused", dirs.len());
}

#[test]
fn buildkit_parser_line_numbers() {
    let dir = corpus("buildkit-parser-line");
    let expected = read_json(dir.join("expected.json"));
    let df = parser::parse(&std::fs::read(dir.join("Dockerfile")).unwrap()).unwrap();
    let s = expected.to_string();
    // expected.json: root 5..31 and children [5,5], [11,12], [17,31].
    assert!(s.contains('5') && s.contains("31"), "{s}");
    assert_eq!((df.start_line, df.end_line), (5, 31));
    let spans: Vec<[usize; 2]> = df
        .children
        .iter()
        .map(|c| [c.start_line, c.end_line])
        .collect();
    assert_eq!(spans, vec![[5, 5], [11, 12], [17, 31]]);
    for c in &df.children {
        assert_eq!(c.span.start.line, c.start_line);
        assert_eq!(c.span.end.line, c.end_line);
    }
    println!("buildkit-parser-line: root 5..31 and 3/3 child spans match");
}

#[test]
fn expected_json_matches_hardcoded_spans() {
    let dir = corpus("buildkit-parser-line");
    let v = read_json(dir.join("expected.json"));
    let mut nums = Vec::new();
    fn walk(v: &Value, out: &mut Vec<u64>) {
        match v {
            Value::Number(n) => out.extend(n.as_u64()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&v, &mut nums);
    for n in [5u64, 31, 11, 12, 17] {
        assert!(nums.contains(&n), "expected.json lacks {n}: {v}");
    }
}

fn op_result(op: &str, input: &[u8]) -> Option<parser::DirectiveValue> {
    match op {
        "DetectSyntax" => parser::detect_syntax(input),
        "ParseDirective(check)" => parser::parse_directive("check", input),
        _ => panic!("unknown op {op}"),
    }
}

#[test]
fn directives() {
    let v = read_json(corpus("buildkit-parser-extra").join("directives.json"));
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 17);
    for case in cases {
        let input = case["input"].as_str().unwrap().as_bytes();
        let op = case["op"].as_str().unwrap();
        if op == "DirectiveParser.ParseAll" {
            let mut p = parser::DirectiveParser::default();
            let got = p.parse_all(input).unwrap();
            let want = case["expect"].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{case}");
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.name, w["name"].as_str().unwrap());
                assert_eq!(g.value, w["value"].as_str().unwrap());
            }
            continue;
        }
        let got = op_result(op, input);
        assert_eq!(got.is_some(), case["ok"].as_bool().unwrap(), "{case}");
        if let Some(r) = case.get("ref") {
            assert_eq!(
                got.as_ref().map_or("", |g| g.reference.as_str()),
                r.as_str().unwrap(),
                "{case}"
            );
        }
        if let Some(c) = case.get("cmdline") {
            assert_eq!(
                got.as_ref().map_or("", |g| g.cmdline.as_str()),
                c.as_str().unwrap(),
                "{case}"
            );
        }
        if let Some(l) = case.get("line") {
            assert_eq!(
                got.as_ref().unwrap().line as u64,
                l.as_u64().unwrap(),
                "{case}"
            );
        }
    }
    println!(
        "buildkit-parser-extra/directives.json: {}/17 passed",
        cases.len()
    );
}

#[test]
fn parse_words() {
    let v = read_json(corpus("buildkit-parser-extra").join("parse_words.json"));
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let got: Vec<String> =
            parser::parse_words(case["input"].as_str().unwrap().as_bytes(), b'\\')
                .into_iter()
                .map(|w| String::from_utf8(w).unwrap())
                .collect();
        let want: Vec<String> = serde_json::from_value(case["expect"].clone()).unwrap();
        assert_eq!(got, want, "{case}");
    }
    println!(
        "buildkit-parser-extra/parse_words.json: {}/8 passed",
        cases.len()
    );
}

#[test]
fn name_val() {
    let v = read_json(corpus("buildkit-parser-extra").join("name_val.json"));
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let got = parser::parse_name_val(
            case["rest"].as_str().unwrap().as_bytes(),
            case["instruction"].as_str().unwrap(),
            b'\\',
        );
        if case.get("expect_error").and_then(Value::as_bool) == Some(true) {
            assert!(got.is_err(), "{case}");
            continue;
        }
        let got: Vec<String> = got
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect();
        let want: Vec<String> = serde_json::from_value(case["chain"].clone()).unwrap();
        assert_eq!(got, want, "{case}");
    }
    println!(
        "buildkit-parser-extra/name_val.json: {}/3 passed",
        cases.len()
    );
}

#[test]
fn json_arrays() {
    let v = read_json(corpus("buildkit-parser-extra").join("json_arrays.json"));
    let valid = v["valid"].as_array().unwrap();
    let invalid = v["invalid"].as_array().unwrap();
    assert_eq!((valid.len(), invalid.len()), (8, 8));
    for case in valid {
        let got = parser::parse_json_array(case["input"].as_str().unwrap().as_bytes())
            .unwrap()
            .unwrap();
        let want: Vec<String> = serde_json::from_value(case["expect"].clone()).unwrap();
        assert_eq!(got, want, "{case}");
    }
    for case in invalid {
        let err = parser::parse_json_array(case.as_str().unwrap().as_bytes()).unwrap_err();
        assert_eq!(err, parser::ERR_NOT_STRING_ARRAY);
    }
    println!("buildkit-parser-extra/json_arrays.json: 8/8 valid and 8/8 invalid passed");
}

#[test]
fn warnings_empty_continuation() {
    let dir = corpus("buildkit-parser-extra");
    let v = read_json(dir.join("warnings.json"));
    let case = &v["cases"][0];
    let src = std::fs::read(dir.join(case["dockerfile"].as_str().unwrap())).unwrap();
    let df = parser::parse(&src).unwrap();
    assert_eq!(
        df.warnings.len() as u64,
        case["warnings_count"].as_u64().unwrap()
    );
    for (w, subs) in df
        .warnings
        .iter()
        .zip(case["warnings_short_contains"].as_array().unwrap())
    {
        for s in subs.as_array().unwrap() {
            assert!(
                w.short.contains(s.as_str().unwrap()),
                "{:?} lacks {s}",
                w.short
            );
        }
    }
    assert!(
        df.warnings[0].detail[0].contains(case["first_warning_detail_contains"].as_str().unwrap())
    );
    println!("buildkit-parser-extra/warnings.json: empty-continuation warnings 2/2 passed");
}

#[test]
fn line_too_long() {
    let label = "a".repeat(65536);
    let src = format!("\n\t\tFROM image\n\t\tLABEL test={label}\n");
    let err = parser::parse(src.as_bytes()).unwrap_err();
    let Error::Parse { message, .. } = err else {
        panic!()
    };
    assert_eq!(
        message,
        "dockerfile line greater than max allowed size of 65535"
    );

    // The limit is on the line without its newline: 65535 bytes are fine.
    let ok = format!("FROM {}\n", "a".repeat(65535 - 5));
    assert!(parser::parse(ok.as_bytes()).is_ok());
    let ok = format!("FROM {}", "a".repeat(65535 - 5));
    assert!(parser::parse(ok.as_bytes()).is_ok());
    let bad = format!("FROM {}", "a".repeat(65536 - 5));
    assert!(parser::parse(bad.as_bytes()).is_err());
    println!("buildkit-parser-extra/warnings.json: 65535-byte line limit passed");
}

fn heredoc_json(df: &Dockerfile, idx: usize) -> Value {
    let docs = &df.children[idx].heredocs;
    if docs.is_empty() {
        return Value::Null;
    }
    Value::Array(
        docs.iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.name,
                    "content": String::from_utf8(h.content.clone()).unwrap(),
                    "expand": h.expand,
                    "chomp": h.chomp,
                    "file_descriptor": h.file_descriptor,
                })
            })
            .collect(),
    )
}

#[test]
fn heredoc_extracts() {
    let dir = corpus("buildkit-parser-extra/heredoc");
    let v = read_json(dir.join("cases.json"));
    let ex = &v["extracts"];
    let df = parser::parse(&std::fs::read(dir.join(ex["dockerfile"].as_str().unwrap())).unwrap())
        .unwrap();
    let children = ex["children"].as_array().unwrap();
    assert_eq!(children.len(), 27);
    for c in children {
        let idx = c["child_index"].as_u64().unwrap() as usize;
        assert_eq!(
            heredoc_json(&df, idx),
            c["heredocs"],
            "child {idx} ({})",
            c["comment"]
        );
    }

    let df = parser::parse(
        &std::fs::read(dir.join(v["json_form"]["dockerfile"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    for i in 1..=3 {
        assert!(df.children[i].heredocs.is_empty(), "json form child {i}");
        assert!(df.children[i].json);
    }

    let chomp = &v["chomp"];
    assert_eq!(
        parser::chomp_heredoc_content(chomp["input"].as_str().unwrap().as_bytes()),
        chomp["expected"].as_str().unwrap().as_bytes()
    );
    println!("buildkit-parser-extra/heredoc: 27/27 child expectations, JSON form and chomp passed");
}

#[test]
fn heredoc_words_and_lines() {
    let v = read_json(corpus("buildkit-parser-extra/heredoc").join("cases.json"));
    let w = &v["parse_heredoc_word"];
    for s in w["valid"].as_array().unwrap() {
        let h = parser::parse_heredoc(s.as_str().unwrap()).unwrap().unwrap();
        assert_eq!(h.name, "EOF", "{s}");
    }
    for s in w["invalid"].as_array().unwrap() {
        assert!(parser::parse_heredoc(s.as_str().unwrap()).is_err(), "{s}");
    }
    for s in w["not_heredoc"].as_array().unwrap() {
        assert_eq!(parser::parse_heredoc(s.as_str().unwrap()), Ok(None), "{s}");
    }
    let cases = v["heredocs_from_line"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for c in cases {
        let docs = parser::heredocs_from_line(c["line"].as_str().unwrap().as_bytes()).unwrap();
        let names: Vec<&str> = docs.iter().map(|h| h.name.as_str()).collect();
        // As upstream's loop: every detected heredoc must have the listed name. Upstream
        // detects fewer than listed for "RUN <<- EOF": the lexer splits "<<-" from "EOF".
        let want: Vec<&str> = c["names"].as_array().map_or(Vec::new(), |a| {
            a.iter().map(|x| x.as_str().unwrap()).collect()
        });
        assert!(names.len() <= want.len(), "{c}: {names:?}");
        assert_eq!(names, want[..names.len()], "{c}");
        if c["line"] != "RUN <<- EOF" {
            assert_eq!(names, want, "{c}");
        } else {
            assert!(names.is_empty());
        }
    }
    println!("buildkit-parser-extra/heredoc: 9/4/7 heredoc words and 10/10 heredocsFromLine cases passed");
}
