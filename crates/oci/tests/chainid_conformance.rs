//! Corpus test for chain IDs: ../shared/conformance/image-spec/chainid.json (image-spec's identity/chainid_test.go).
//! Prints its counts and fails on any failing case.
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use lw_oci::chainid::chain_ids;
use serde_json::Value;

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .map(|s| s.as_str().expect("string entries").to_string())
                .collect(),
        ),
        other => panic!("expected an array or null, got {other}"),
    }
}

#[test]
fn chain_id_cases() {
    let path = lw_test_kit::corpus::conformance("image-spec/chainid.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("chainid.json is JSON");
    let cases = doc["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        // Go's nil and empty slices both have no elements; a Rust slice has no nil.
        let input = strings(&case["digests"]).unwrap_or_default();
        let expected = strings(&case["expected"]).unwrap_or_default();
        let got = chain_ids(&input);
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
        // ChainID(list) is the last element of ChainIDs(list).
        if got.last() != expected.last() {
            failures.push(format!("{name}: chain ID of the whole list differs"));
        }
    }
    println!(
        "image-spec chainid.json: {}/{}",
        cases.len() - failures.len(),
        cases.len()
    );
    assert_eq!(cases.len(), 5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
