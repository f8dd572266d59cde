//! The `# check=` directive (skip lists, `skip=all`, `error=true`, experimental rules),
//! option-level skips, and the JSON/SARIF/text renderings.

use lw_dockerfile::lint::{format_text, lint, to_sarif, CheckDirective, LintOptions, Severity};

fn rules(src: &str) -> Vec<String> {
    lint(src.as_bytes(), &LintOptions::default())
        .unwrap()
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

const BAD: &str = "FROM alpine AS Builder\nMAINTAINER x\n";

#[test]
fn skip_list() {
    let all = rules(BAD);
    assert!(all.contains(&"StageNameCasing".to_string()));
    assert!(all.contains(&"MaintainerDeprecated".to_string()));
    let r = rules(&format!("# check=skip=StageNameCasing\n{BAD}"));
    assert!(!r.contains(&"StageNameCasing".to_string()));
    assert!(r.contains(&"MaintainerDeprecated".to_string()));
    let r = rules(&format!(
        "# check=skip=StageNameCasing,MaintainerDeprecated,LW001\n{BAD}"
    ));
    assert!(!r.contains(&"StageNameCasing".to_string()));
    assert!(!r.contains(&"MaintainerDeprecated".to_string()));
    assert!(!r.contains(&"LW001".to_string()));
    assert!(r.contains(&"LW009".to_string()));
}

#[test]
fn skip_all() {
    assert!(rules(&format!("# check=skip=all\n{BAD}")).is_empty());
    // Not at the top: an ordinary comment.
    assert!(!rules(&format!("FROM alpine\n# check=skip=all\n{BAD}")).is_empty());
}

#[test]
fn error_true() {
    let f = lint(
        format!("# check=error=true\n{BAD}").as_bytes(),
        &LintOptions::default(),
    )
    .unwrap();
    let s = f.iter().find(|f| f.rule == "StageNameCasing").unwrap();
    assert_eq!(s.severity, Severity::Error);
    let f = lint(BAD.as_bytes(), &LintOptions::default()).unwrap();
    let s = f.iter().find(|f| f.rule == "StageNameCasing").unwrap();
    assert_eq!(s.severity, Severity::Warning);
    let f = lint(
        format!("# check=skip=MaintainerDeprecated;error=true\n{BAD}").as_bytes(),
        &LintOptions::default(),
    )
    .unwrap();
    assert!(f.iter().all(|f| f.rule != "MaintainerDeprecated"));
    assert!(f
        .iter()
        .any(|f| f.rule == "StageNameCasing" && f.severity == Severity::Error));
}

#[test]
fn experimental() {
    let src = "# not a description\nFROM alpine:3 AS base\n";
    assert!(!rules(src).contains(&"InvalidDefinitionDescription".to_string()));
    let on = format!("# check=experimental=all\n\n{src}");
    assert!(rules(&on).contains(&"InvalidDefinitionDescription".to_string()));
    let opts = LintOptions {
        experimental: true,
        ..LintOptions::default()
    };
    let f = lint(src.as_bytes(), &opts).unwrap();
    assert!(f.iter().any(|f| f.rule == "InvalidDefinitionDescription"));
}

#[test]
fn directive_parsing() {
    let d = CheckDirective::parse("skip=A, B;error=true;experimental=all").unwrap();
    assert_eq!(d.skip, ["A", "B"]);
    assert!(d.error && d.experimental_all && !d.skip_all);
    assert!(CheckDirective::parse("skip=all").unwrap().skip_all);
    assert!(CheckDirective::parse("error=1").unwrap().error);
    assert!(CheckDirective::parse("error=yes").is_none());
    assert!(CheckDirective::parse("skip").is_none());
    assert!(CheckDirective::parse("nope=1").is_none());
    assert_eq!(
        CheckDirective::parse(" ").unwrap(),
        CheckDirective::default()
    );
}

#[test]
fn option_skip_and_buildkit_only() {
    let opts = LintOptions {
        skip: vec!["stagenamecasing".into()],
        buildkit_only: true,
        ..LintOptions::default()
    };
    let f = lint(BAD.as_bytes(), &opts).unwrap();
    assert!(f
        .iter()
        .all(|f| f.rule != "StageNameCasing" && !f.rule.starts_with("LW")));
    assert!(f.iter().any(|f| f.rule == "MaintainerDeprecated"));
}

#[test]
fn renderings() {
    let f = lint(b"FROM alpine:3\nEXPOSE 80/TCP\n", &LintOptions::default()).unwrap();
    let text = format_text(&f, "Dockerfile");
    assert!(
        text.contains("Dockerfile:2:1: warning: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase [ExposeProtoCasing]"),
        "{text}"
    );
    let json = serde_json::to_value(&f).unwrap();
    let first = &json
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "ExposeProtoCasing")
        .unwrap();
    assert_eq!(first["severity"], "warning");
    assert_eq!(first["range"]["start_line"], 2);
    assert!(first["fix"]["edits"][0]["replacement"] == "80/tcp");
    let sarif = to_sarif(&f, "Dockerfile");
    let run = &sarif["runs"][0];
    let res = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "ExposeProtoCasing")
        .unwrap();
    assert_eq!(res["level"], "warning");
    assert_eq!(
        res["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    assert_eq!(
        res["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"],
        "80/tcp"
    );
    let idx = res["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        run["tool"]["driver"]["rules"][idx]["id"],
        "ExposeProtoCasing"
    );
    assert_eq!(
        run["tool"]["driver"]["rules"][idx]["helpUri"],
        "https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/"
    );
}

#[test]
fn parse_errors_are_errors() {
    assert!(lint(b"", &LintOptions::default()).is_err());
    assert!(lint(b"FROM a b\n", &LintOptions::default()).is_err());
}

#[test]
fn per_instruction_comment_and_case_sensitivity() {
    let src = "FROM alpine:3\n# check=skip=JSONArgsRecommended\nCMD echo a\nENTRYPOINT echo b\nUSER app\n";
    let r = rules(src);
    assert_eq!(r.iter().filter(|r| *r == "JSONArgsRecommended").count(), 1);
    // Rule names are matched exactly, as BuildKit does.
    let r = rules(&format!("# check=skip=stagenamecasing\n{BAD}"));
    assert!(r.contains(&"StageNameCasing".to_string()));
    // skip=all does not hide experimental rules that are turned on.
    let src =
        "# check=skip=all;experimental=InvalidDefinitionDescription\n\n# bad\nFROM alpine AS x\n";
    assert_eq!(rules(src), ["InvalidDefinitionDescription"]);
    // An invalid directive is ignored.
    assert!(rules(&format!("# check=skip\n{BAD}")).contains(&"StageNameCasing".to_string()));
}
