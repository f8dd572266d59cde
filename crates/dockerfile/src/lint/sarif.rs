//! SARIF 2.1.0 output for findings.

use serde_json::{json, Value};

use super::rules::rule_info;
use super::{Finding, Range, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn region(r: &Range) -> Value {
    json!({
        "startLine": r.start_line,
        "startColumn": r.start_column,
        "endLine": r.end_line,
        "endColumn": r.end_column,
    })
}

/// A SARIF 2.1.0 log with one run: the rules that fired, and one result per finding
/// (with `fixes` where a finding has one). `file_name` is the artifact URI.
pub fn to_sarif(findings: &[Finding], file_name: &str) -> Value {
    let mut rule_ids: Vec<&str> = Vec::new();
    for f in findings {
        if !rule_ids.contains(&f.rule.as_str()) {
            rule_ids.push(&f.rule);
        }
    }
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let info = rule_info(id);
            let mut r = json!({
                "id": id,
                "name": info.map_or(*id, |i| i.name),
                "shortDescription": { "text": info.map_or("", |i| i.description) },
                "defaultConfiguration": { "level": level(info.map_or(Severity::Warning, |i| i.severity)) },
            });
            if let Some(i) = info {
                if i.doc.starts_with("https://") {
                    r["helpUri"] = json!(i.doc);
                } else {
                    r["help"] = json!({ "text": i.doc });
                }
            }
            r
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut r = json!({
                "ruleId": f.rule,
                "ruleIndex": rule_ids.iter().position(|id| *id == f.rule).unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": file_name },
                        "region": region(&f.range),
                    }
                }],
            });
            if let Some(fix) = &f.fix {
                let replacements: Vec<Value> = fix
                    .edits
                    .iter()
                    .map(|e| {
                        json!({
                            "deletedRegion": region(&e.range),
                            "insertedContent": { "text": e.replacement },
                        })
                    })
                    .collect();
                r["fixes"] = json!([{
                    "description": { "text": fix.description },
                    "artifactChanges": [{
                        "artifactLocation": { "uri": file_name },
                        "replacements": replacements,
                    }],
                }]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "layerwright",
                    "informationUri": "https://docs.docker.com/go/dockerfile/rule/",
                    "rules": rules,
                }
            },
            "results": results,
        }],
    })
}
