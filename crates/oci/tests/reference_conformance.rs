//! Conformance of `lw_oci::reference` with distribution/reference: the 200 rows of `reference/cases.tsv` and the
//! 324 cases (19 sections) of `reference/cases.json` in `../shared/conformance/` (see its README, `reference/`).
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use lw_oci::reference::{self, grammar, AnyReference, Reference};
use lw_oci::Error;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    lw_test_kit::corpus::conformance("reference")
}

fn read(name: &str) -> String {
    let path = corpus_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The Go name of a reference error, or a description of an unexpected error.
fn go_name(e: &Error) -> String {
    match reference::error_kind(e) {
        Some(kind) => kind.go_name().unwrap_or("(fmt.Errorf)").to_string(),
        None => format!("(not a reference error: {e})"),
    }
}

/// Check an outcome against an expected error column: empty = success, `error` = any error, else a Go name.
fn check_error<T>(expected: &str, got: &Result<T, Error>) -> Result<(), String> {
    match (expected, got) {
        ("", Ok(_)) => Ok(()),
        ("", Err(e)) => Err(format!("unexpected error {} ({e})", go_name(e))),
        (_, Ok(_)) => Err(format!("expected error {expected}, got success")),
        ("error", Err(_)) => Ok(()),
        (want, Err(e)) if go_name(e) == want => Ok(()),
        (want, Err(e)) => Err(format!("expected {want}, got {} ({e})", go_name(e))),
    }
}

fn eq(what: &str, want: &str, got: &str) -> Result<(), String> {
    if want == got {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

/// Compare the fields of a named reference; `*` means not checked, empty means empty/absent.
fn check_fields(r: &Reference, fields: &[(&str, &str)]) -> Result<(), String> {
    for &(field, want) in fields {
        if want == "*" {
            continue;
        }
        let got = match field {
            "name" => r.name(),
            "domain" => r.domain().to_string(),
            "path" => r.path().to_string(),
            "tag" => r.tag().unwrap_or_default().to_string(),
            "digest" => r.digest().unwrap_or_default().to_string(),
            "string" => r.to_string(),
            "familiar_name" => r.familiar_name(),
            "familiar_string" => r.familiar_string(),
            other => panic!("unknown field {other}"),
        };
        eq(field, want, &got)?;
    }
    Ok(())
}

/// Counts of passes and the failures of one group of cases.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, (usize, usize)>,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, group: &str, label: &str, outcome: Result<(), String>) {
        let entry = self.counts.entry(group.to_string()).or_default();
        entry.1 += 1;
        match outcome {
            Ok(()) => entry.0 += 1,
            Err(msg) => self.failures.push(format!("[{group}] {label}: {msg}")),
        }
    }

    fn finish(self, title: &str, expected_total: usize) {
        let (mut pass, mut total) = (0, 0);
        for (group, (p, t)) in &self.counts {
            println!("{title} {group:<32} {p:>3}/{t}");
            pass += p;
            total += t;
        }
        println!("{title} TOTAL {pass}/{total}");
        for f in &self.failures {
            println!("FAIL {f}");
        }
        assert!(
            self.failures.is_empty(),
            "{} {title} cases failed",
            self.failures.len()
        );
        assert_eq!(total, expected_total, "{title}: number of cases");
    }
}

#[test]
fn tsv_cases() {
    let text = read("cases.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let mut tally = Tally::default();
    for line in lines {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), header.len(), "row {line:?}");
        let row: BTreeMap<&str, &str> = header.iter().copied().zip(cols).collect();
        let (api, input, error) = (row["api"], row["input"], row["error"]);
        let label = format!("{} {input:?}", row["source"]);
        let fields: Vec<(&str, &str)> = [
            "name",
            "domain",
            "path",
            "tag",
            "digest",
            "string",
            "familiar_name",
        ]
        .iter()
        .map(|&f| (f, row[f]))
        .collect();
        let outcome = match api {
            "ParseAnyReference" => {
                check_any(input, row["string"], row["note"].contains("bare digest"))
            }
            _ => {
                let result = match api {
                    "Parse" => reference::parse(input),
                    "ParseNormalizedNamed" => reference::parse_normalized_named(input),
                    "ParseDockerRef" => reference::parse_docker_ref(input),
                    "ParseNamed" => reference::parse_named(input),
                    "WithName" => reference::with_name(input),
                    other => panic!("unknown api {other}"),
                };
                check_error(error, &result).and_then(|()| match &result {
                    Ok(r) => {
                        check_fields(r, &fields)?;
                        if api == "Parse" {
                            eq("String() of Parse", input, &r.to_string())?;
                        }
                        Ok(())
                    }
                    Err(_) => Ok(()),
                })
            }
        };
        tally.record(api, &label, outcome);
    }
    tally.finish("reference/cases.tsv", 200);
}

/// `ParseAnyReference`: a bare digest, or the same reference `Parse(string)` gives.
fn check_any(input: &str, string: &str, bare_digest: bool) -> Result<(), String> {
    let got = reference::parse_any_reference(input).map_err(|e| format!("error {e}"))?;
    eq("string", string, &got.to_string())?;
    match (&got, bare_digest) {
        (AnyReference::Digest(_), true) => Ok(()),
        (AnyReference::Named(r), false) => {
            let want = reference::parse(string).map_err(|e| format!("Parse(string): {e}"))?;
            if *r == want {
                Ok(())
            } else {
                Err(format!("expected {want:?}, got {r:?}"))
            }
        }
        (got, _) => Err(format!("wrong kind: {got:?}")),
    }
}

fn s<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key} in {case}"))
}

fn opt<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key].as_str().unwrap_or_default()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FieldDoc<F> {
    #[serde(rename = "Description")]
    description: String,
    #[serde(rename = "Field")]
    field: F,
}

fn check_json_case(
    section: &str,
    case: &Value,
    messages: &BTreeMap<String, String>,
) -> Result<(), String> {
    match section {
        "Parse" => {
            let input = s(case, "input");
            let result = reference::parse(input);
            check_error(opt(case, "error"), &result)?;
            if let Ok(r) = &result {
                check_fields(
                    r,
                    &[
                        ("string", input),
                        ("string", s(case, "string")),
                        ("name", s(case, "name")),
                        ("domain", s(case, "domain")),
                        ("path", s(case, "path_derived")),
                        ("tag", s(case, "tag")),
                        ("digest", s(case, "digest")),
                    ],
                )?;
            }
            Ok(())
        }
        "WithNameFailure" => check_error(s(case, "error"), &reference::with_name(s(case, "input"))),
        "DomainAndPath" | "NormalizedSplitHostname" => {
            let input = s(case, "input");
            let r = if section == "DomainAndPath" {
                reference::with_name(input)
            } else {
                reference::parse_normalized_named(input)
            }
            .map_err(|e| format!("error {e}"))?;
            check_fields(
                &r,
                &[("domain", s(case, "domain")), ("path", s(case, "path"))],
            )
        }
        "Serialization" => {
            let doc = serde_json::to_string(&FieldDoc {
                description: s(case, "description").to_string(),
                field: s(case, "input").to_string(),
            })
            .unwrap();
            let parsed: Result<FieldDoc<Reference>, _> = serde_json::from_str(&doc);
            match (opt(case, "error"), parsed) {
                ("", Ok(back)) => {
                    check_fields(
                        &back.field,
                        &[
                            ("name", s(case, "name")),
                            ("tag", s(case, "tag")),
                            ("digest", s(case, "digest")),
                        ],
                    )?;
                    eq(
                        "re-marshalled JSON",
                        &doc,
                        &serde_json::to_string(&back).unwrap(),
                    )
                }
                ("", Err(e)) => Err(format!("unmarshal failed: {e}")),
                (want, Ok(_)) => Err(format!("expected {want}, unmarshal succeeded")),
                (want, Err(e)) => {
                    let msg = &messages[want];
                    if e.to_string().contains(msg.as_str()) {
                        Ok(())
                    } else {
                        Err(format!("expected {want} ({msg}), got {e}"))
                    }
                }
            }
        }
        "WithTag" | "WithDigest" => {
            let mut r = reference::with_name(s(case, "name")).map_err(|e| e.to_string())?;
            let (tag, digest) = (s(case, "tag"), s(case, "digest"));
            if section == "WithTag" {
                if !digest.is_empty() {
                    r = reference::with_digest(&r, digest).map_err(|e| e.to_string())?;
                }
                r = reference::with_tag(&r, tag).map_err(|e| e.to_string())?;
            } else {
                if !tag.is_empty() {
                    r = reference::with_tag(&r, tag).map_err(|e| e.to_string())?;
                }
                r = reference::with_digest(&r, digest).map_err(|e| e.to_string())?;
            }
            eq("combined", s(case, "combined"), &r.to_string())
        }
        "ParseNamed" => {
            let result = reference::parse_named(s(case, "input"));
            check_error(s(case, "error"), &result)?;
            match &result {
                Ok(r) => check_fields(
                    r,
                    &[("domain", s(case, "domain")), ("path", s(case, "path"))],
                ),
                Err(_) => Ok(()),
            }
        }
        "ParseNormalizedNamedValidity" => {
            let valid = case["valid"].as_bool().expect("valid");
            check_error(
                if valid { "" } else { "error" },
                &reference::parse_normalized_named(s(case, "input")),
            )
        }
        "ParseRepositoryInfo" => {
            for input in case["inputs"].as_array().expect("inputs") {
                let input = input.as_str().expect("input");
                let r = reference::parse_normalized_named(input)
                    .map_err(|e| format!("{input:?}: error {e}"))?;
                check_fields(
                    &r,
                    &[
                        ("familiar_name", s(case, "familiar_name")),
                        ("string", s(case, "full_name")),
                        ("domain", s(case, "domain")),
                        ("path", s(case, "remote_name")),
                    ],
                )
                .map_err(|e| format!("{input:?}: {e}"))?;
            }
            Ok(())
        }
        "ParseReferenceWithTagAndDigest" => {
            let r =
                reference::parse_normalized_named(s(case, "input")).map_err(|e| e.to_string())?;
            check_fields(
                &r,
                &[
                    ("string", s(case, "string")),
                    ("familiar_string", s(case, "familiar_string")),
                ],
            )?;
            eq(
                "tagged/canonical",
                &format!("{} {}", case["is_tagged"], case["is_canonical"]),
                &format!("{} {}", r.tag().is_some(), r.digest().is_some()),
            )
        }
        "InvalidReferenceComponents" => {
            let result = match s(case, "op") {
                "ParseNormalizedNamed" => reference::parse_normalized_named(s(case, "input")),
                op => {
                    let base = reference::parse_normalized_named(s(case, "base"))
                        .map_err(|e| e.to_string())?;
                    if op == "WithTag" {
                        reference::with_tag(&base, s(case, "tag"))
                    } else {
                        reference::with_digest(&base, s(case, "digest"))
                    }
                }
            };
            check_error(s(case, "expect"), &result)
        }
        "ParseAnyReference" => check_any(
            s(case, "input"),
            s(case, "string"),
            s(case, "kind") == "digest",
        ),
        "FamiliarMatch" => {
            let named =
                reference::parse_any_reference(s(case, "reference")).map_err(|e| e.to_string())?;
            let got = reference::familiar_match(s(case, "pattern"), &named);
            match (&case["expected"], got) {
                (Value::Bool(want), Ok(got)) if *want == got => Ok(()),
                (Value::String(e), Err(err)) if e == "error" => {
                    eq("error", "path.ErrBadPattern", &go_name(&err))
                }
                (want, got) => Err(format!("expected {want}, got {got:?}")),
            }
        }
        "ParseDockerRef" => {
            let r = reference::parse_docker_ref(s(case, "input")).map_err(|e| e.to_string())?;
            let expected = s(case, "expected");
            eq("string", expected, &r.to_string())?;
            reference::parse(expected)
                .map(|_| ())
                .map_err(|e| format!("Parse(expected): {e}"))
        }
        "DomainRegexp" | "FullNameRegexp" | "ReferenceRegexp" | "IdentifierRegexp" => {
            let input = s(case, "input");
            let subs: Option<Vec<String>> = match section {
                "DomainRegexp" => grammar::is_domain(input).then(Vec::new),
                "IdentifierRegexp" => grammar::is_identifier(input).then(Vec::new),
                "FullNameRegexp" => {
                    grammar::split_name(input).map(|(d, p)| vec![d.to_string(), p.to_string()])
                }
                _ => grammar::split_reference(input).map(|p| {
                    vec![
                        p.name.to_string(),
                        p.tag.unwrap_or_default().to_string(),
                        p.digest.unwrap_or_default().to_string(),
                    ]
                }),
            };
            let want_match = case["match"].as_bool().expect("match");
            match subs {
                None if !want_match => Ok(()),
                None => Err("expected a match".to_string()),
                Some(_) if !want_match => Err("unexpected match".to_string()),
                Some(got) => match case["subs"].as_array() {
                    None => Ok(()),
                    Some(want) => {
                        let want: Vec<&str> = want.iter().map(|v| v.as_str().unwrap()).collect();
                        if want == got {
                            Ok(())
                        } else {
                            Err(format!("submatches: expected {want:?}, got {got:?}"))
                        }
                    }
                },
            }
        }
        other => panic!("unknown section {other}"),
    }
}

#[test]
fn json_cases() {
    let doc: Value = serde_json::from_str(&read("cases.json")).expect("cases.json");
    let messages: BTreeMap<String, String> =
        serde_json::from_value(doc["error_messages"].clone()).expect("error_messages");
    // Our messages are upstream's.
    for (name, message) in &messages {
        let kind = kind_for_go_name(name);
        assert_eq!(&kind.to_string(), message, "{name}");
        assert_eq!(kind.go_name(), Some(name.as_str()));
    }
    let sections = doc["sections"].as_object().expect("sections");
    assert_eq!(sections.len(), 19, "number of sections");
    let mut tally = Tally::default();
    for (section, body) in sections {
        for (i, case) in body["cases"].as_array().expect("cases").iter().enumerate() {
            let label = format!(
                "#{i} {} {:?}",
                opt(case, "source"),
                case.get("input")
                    .or(case.get("reference"))
                    .or(case.get("name"))
            );
            tally.record(section, &label, check_json_case(section, case, &messages));
        }
    }
    tally.finish("reference/cases.json", 324);
}

fn kind_for_go_name(name: &str) -> reference::ReferenceErrorKind {
    use reference::ReferenceErrorKind::*;
    match name {
        "ErrReferenceInvalidFormat" => InvalidFormat,
        "ErrTagInvalidFormat" => TagInvalidFormat,
        "ErrDigestInvalidFormat" => DigestInvalidFormat,
        "ErrNameContainsUppercase" => NameContainsUppercase,
        "ErrNameEmpty" => NameEmpty,
        "ErrNameTooLong" => NameTooLong,
        "ErrNameNotCanonical" => NameNotCanonical,
        "digest.ErrDigestInvalidFormat" => ChecksumInvalidFormat,
        "digest.ErrDigestInvalidLength" => DigestInvalidLength,
        "digest.ErrDigestUnsupported" => DigestUnsupported,
        other => panic!("unknown Go error {other}"),
    }
}
