//! Corpus test for document validation: ../shared/conformance/image-spec/cases.tsv (the image-spec schema tests,
//! the Docker v2.2 back-compatibility documents and the spec's examples). Prints its counts and fails on any
//! failing case.
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use lw_oci::{media, validate, Digest, Error};

fn corpus_dir() -> PathBuf {
    lw_test_kit::corpus::conformance("image-spec")
}

struct Case {
    file: String,
    validator: String,
    expect_valid: bool,
    preprocess: String,
    expected_sha256: String,
    source: String,
}

fn cases() -> Vec<Case> {
    let path = corpus_dir().join("cases.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header row").split('\t').collect();
    assert_eq!(
        header,
        [
            "file",
            "validator",
            "expected",
            "preprocess",
            "expected_sha256",
            "source",
            "comment"
        ]
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "bad row {line:?}");
            let expect_valid = match f[2] {
                "valid" => true,
                "invalid" => false,
                other => panic!("bad expectation {other:?} in {line:?}"),
            };
            Case {
                file: f[0].to_string(),
                validator: f[1].to_string(),
                expect_valid,
                preprocess: f[3].to_string(),
                expected_sha256: f[4].to_string(),
                source: f[5].to_string(),
            }
        })
        .collect()
}

/// The Docker → OCI media type replacements of `preprocess=docker2oci`.
const DOCKER_TO_OCI: [(&str, &str); 4] = [
    (media::DOCKER_MANIFEST_LIST, media::OCI_INDEX),
    (media::DOCKER_MANIFEST, media::OCI_MANIFEST),
    (media::DOCKER_LAYER_GZIP, media::OCI_LAYER_GZIP),
    (media::DOCKER_CONFIG, media::OCI_CONFIG),
];

/// The bytes to validate, after checking and applying the preprocessing step.
fn prepare(case: &Case, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    match case.preprocess.as_str() {
        "none" => Ok(bytes),
        "docker2oci" => {
            let actual = Digest::sha256_of(&bytes);
            if actual.as_str() != case.expected_sha256 {
                return Err(format!(
                    "sha256 of the file is {actual}, expected {}",
                    case.expected_sha256
                ));
            }
            let mut text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
            for (docker, oci) in DOCKER_TO_OCI {
                text = text.replace(docker, oci);
            }
            Ok(text.into_bytes())
        }
        other => Err(format!("unknown preprocess {other:?}")),
    }
}

fn group(file: &str) -> String {
    let mut parts = file.split('/');
    match (parts.next(), parts.next()) {
        (Some("schema-tests"), Some(kind)) => format!("schema-tests/{kind}"),
        (Some(top), _) => top.to_string(),
        _ => file.to_string(),
    }
}

#[test]
fn image_spec_cases() {
    let dir = corpus_dir();
    let cases = cases();
    assert_eq!(cases.len(), 84, "cases.tsv should hold 84 documents");
    let mut per_group: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut passed, mut valid_expected, mut invalid_expected) = (0, 0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        if case.expect_valid {
            valid_expected += 1;
        } else {
            invalid_expected += 1;
        }
        let path = dir.join(&case.file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = prepare(case, bytes).map(|b| validate::validate(&case.validator, &b));
        let ok = match &outcome {
            Ok(Ok(())) => case.expect_valid,
            Ok(Err(Error::Json { .. } | Error::Invalid { .. })) => !case.expect_valid,
            Ok(Err(_)) | Err(_) => false,
        };
        let entry = per_group.entry(group(&case.file)).or_default();
        entry.1 += 1;
        if ok {
            passed += 1;
            entry.0 += 1;
            if let Ok(Err(e)) = &outcome {
                println!("  invalid as expected: {}: {e}", case.file);
            }
        } else {
            let want = if case.expect_valid {
                "valid"
            } else {
                "invalid"
            };
            let got = match &outcome {
                Ok(Ok(())) => "valid".to_string(),
                Ok(Err(e)) => format!("error: {e}"),
                Err(e) => format!("preprocessing failed: {e}"),
            };
            failures.push(format!(
                "{} ({}): expected {want}, got {got}",
                case.file, case.source
            ));
        }
    }
    for (g, (p, n)) in &per_group {
        println!("  {g}: {p}/{n}");
    }
    println!(
        "image-spec cases.tsv: {passed}/{} ({valid_expected} expected valid, {invalid_expected} expected invalid)",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The Docker v2.2 documents are valid as they are under their Docker media types too.
#[test]
fn docker_documents_under_docker_media_types() {
    let dir = corpus_dir();
    let mut n = 0;
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.preprocess == "docker2oci") {
        let docker_type = match case.validator.as_str() {
            media::OCI_MANIFEST => media::DOCKER_MANIFEST,
            media::OCI_INDEX => media::DOCKER_MANIFEST_LIST,
            media::OCI_CONFIG => media::DOCKER_CONFIG,
            other => panic!("no Docker media type for {other}"),
        };
        n += 1;
        let bytes = std::fs::read(dir.join(&case.file)).expect("read case");
        if let Err(e) = validate::validate(docker_type, &bytes) {
            failures.push(format!("{}: {e}", case.file));
        }
    }
    println!(
        "image-spec docker documents under docker media types: {}/{n}",
        n - failures.len()
    );
    assert_eq!(n, 4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
