//! `layerwright parse` and `layerwright lint` from the command line: BuildKit's dump format on the conformance
//! files, findings as text, JSON and SARIF, and the exit code.

use crate::common;

use std::path::PathBuf;

use common::*;

fn conformance() -> PathBuf {
    let mut d = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !d.join("Cargo.lock").exists() {
        assert!(d.pop(), "repository root not found");
    }
    d.parent().unwrap().join("shared/conformance")
}

#[test]
fn parse_dump_matches_buildkit_for_every_corpus_case() {
    let dir = conformance().join("buildkit-parser");
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let out = lw_ok(
            tmp.path(),
            &[
                "parse",
                "--dump",
                "-f",
                case.join("Dockerfile").to_str().unwrap(),
            ],
        );
        assert_eq!(
            out.as_bytes(),
            std::fs::read(case.join("result")).unwrap(),
            "{}",
            case.display()
        );
        n += 1;
    }
    println!("layerwright parse --dump: {n}/{n} corpus dumps identical");
    assert_eq!(n, 33);
    let json: serde_json::Value = serde_json::from_str(&lw_ok(
        tmp.path(),
        &[
            "parse",
            "--json",
            "-f",
            dir.join("env/Dockerfile").to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert!(json.is_object() || json.is_array());
}

#[test]
fn lint_reports_findings_in_three_formats_and_exits_1_at_the_failure_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let df = tmp.path().join("Dockerfile");
    std::fs::write(&df, "FROM ubuntu:latest as build\nMAINTAINER me\nRUN apt-get update\nRUN apt-get install -y curl\nCMD echo hi\n").unwrap();
    std::fs::write(tmp.path().join(".dockerignore"), "*.log\n").unwrap();
    let f = df.to_str().unwrap();
    let text = lw(tmp.path(), &["lint", "-f", f]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("Dockerfile:1:") && out.contains("FromAsCasing"),
        "{out}"
    );
    assert!(out.contains("MaintainerDeprecated"), "{out}");
    assert!(out.contains("JSONArgsRecommended"), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&lw(tmp.path(), &["lint", "--format", "json", "-f", f]).stdout)
            .unwrap();
    let rules: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert!(
        rules.contains(&"FromAsCasing") && rules.contains(&"MaintainerDeprecated"),
        "{rules:?}"
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&lw(tmp.path(), &["lint", "--format", "sarif", "-f", f]).stdout)
            .unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
    // Exit status as `docker build --check` and hadolint: any finding fails by default
    // (BuildKit's warnings here), `--failure-threshold` (`-t`) raises the bar.
    let code = |args: &[&str]| {
        let mut all = vec!["lint", "-f", f];
        all.extend_from_slice(args);
        lw(tmp.path(), &all).status.code()
    };
    assert_eq!(text.status.code(), Some(1));
    assert_eq!(code(&["-t", "warning"]), Some(1));
    assert_eq!(code(&["--failure-threshold", "error"]), Some(0));
    assert_eq!(code(&["-t", "none"]), Some(0));
    // Info findings only (consecutive RUNs): they fail at info (hadolint's default), not at warning.
    std::fs::write(&df, "FROM alpine:3.20\nRUN echo a\nRUN echo b\nUSER app\n").unwrap();
    let info = lw(tmp.path(), &["lint", "-f", f]);
    let out = String::from_utf8_lossy(&info.stdout);
    assert!(
        out.contains(": info: ") && !out.contains(": warning: "),
        "{out}"
    );
    assert_eq!(info.status.code(), Some(1));
    assert_eq!(code(&["-t", "style"]), Some(1));
    assert_eq!(code(&["-t", "warning"]), Some(0));
    // No finding: exit 0.
    std::fs::write(&df, "FROM alpine:3.20\nUSER app\n").unwrap();
    let clean = lw(tmp.path(), &["lint", "-f", f]);
    assert!(clean.stdout.is_empty(), "{clean:?}");
    assert_eq!(clean.status.code(), Some(0));
    // `# check=error=true` turns BuildKit's warnings into errors: they fail even at `-t error`.
    std::fs::write(&df, "# check=error=true\nFROM ubuntu:22.04 as build\n").unwrap();
    assert_eq!(code(&["-t", "error"]), Some(1));
    // A Dockerfile that does not parse fails whatever the threshold, and names the line and column.
    std::fs::write(&df, "FROM scratch\nCOPY --nope a b\n").unwrap();
    assert_eq!(code(&["-t", "none"]), Some(1));
    let o = lw(tmp.path(), &["lint", "-f", f]);
    assert!(!o.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(all.contains(":2:"), "{all}");
}

#[test]
fn lint_reads_base_image_config_from_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nENV HOME=/home/app NB_UID=1000\nWORKDIR /srv\nUSER 1000\n",
    )
    .unwrap();
    lw_ok(
        &root,
        &["build", "-q", "-t", "local/base:1", ctx.to_str().unwrap()],
    );
    let df = tmp.path().join("Dockerfile");
    std::fs::write(
        &df,
        "FROM local/base:1\nCOPY a.txt conf/\nWORKDIR \"${HOME}\"\nRUN chown \"${NB_UID}\" conf\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join(".dockerignore"), "*.log\n").unwrap();
    let f = df.to_str().unwrap();
    let json = |extra: &[&str]| -> (Vec<(String, String)>, String) {
        let mut args = vec!["lint", "--format", "json", "-f", f];
        args.extend_from_slice(extra);
        let o = lw(&root, &args);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let found = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let rule = x["rule"].as_str().unwrap().to_string();
                (rule, x["severity"].as_str().unwrap().to_string())
            })
            .collect();
        (found, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // From the store: HOME makes the WORKDIR absolute, the WorkingDir makes the COPY's
    // destination defined, and the non-root USER makes LW009 informational.
    let (found, err) = json(&[]);
    assert!(!err.contains("not in the store"), "{err}");
    for rule in ["WorkdirRelativePath", "LW010", "LW038", "UndefinedVar"] {
        assert!(!found.iter().any(|(r, _)| r == rule), "{rule}: {found:?}");
    }
    assert!(
        found.contains(&("LW009".into(), "info".into())),
        "{found:?}"
    );
    // Without the store, lint says so and judges less.
    let (found, err) = json(&["--no-store"]);
    assert!(err.contains("local/base:1 is not in the store"), "{err}");
    assert!(
        found.contains(&("LW009".into(), "warning".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("LW038".into(), "warning".into())),
        "{found:?}"
    );
}

#[test]
fn lint_fix_pins_from_to_the_digest_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nENV A=1\n").unwrap();
    lw_ok(
        &root,
        &["build", "-q", "-t", "local/pinme", ctx.to_str().unwrap()],
    );
    // The digest the store holds for the name, as `images --digests` shows it.
    let images = lw_ok(&root, &["images", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&images).unwrap();
    let digest = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.to_string().contains("local/pinme"))
        .and_then(|i| i["digest"].as_str().or(i["Digest"].as_str()))
        .unwrap_or_else(|| panic!("no digest for local/pinme in {list}"))
        .to_string();
    let df = tmp.path().join("Dockerfile");
    std::fs::write(&df, "FROM local/pinme\nUSER 1000\n").unwrap();
    std::fs::write(tmp.path().join(".dockerignore"), "*.log\n").unwrap();
    lw(&root, &["lint", "--fix", "-f", df.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&df).unwrap(),
        format!("FROM local/pinme@{digest}\nUSER 1000\n")
    );
    // Pinned, LW001 is gone.
    let o = lw(
        &root,
        &["lint", "--format", "json", "-f", df.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!v.to_string().contains("LW001"), "{v}");
}
