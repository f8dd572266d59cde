//! The case corpus: each `tests/lint_cases/NAME.Dockerfile` is linted and its findings
//! compared with `NAME.expected` (every finding, by line and rule, and severity when
//! given). An expected file holds:
//!
//! ```text
//! # why the case exists
//! @base IMAGE user=U workdir=/w env=K=V digest=D  (a base image config the caller knows)
//! @error-rule LW016                           (LintOptions::error_rules)
//! @skip LW029 DL3018                          (LintOptions::skip: rules the case is not about)
//! @fails 2 message text                       (lint returns Err at line 2; 0: no line)
//! 3 LW005                                     (a finding: line, rule)
//! 4 LW009 info                                (... and its severity)
//! 2 InvalidInstruction error unsupported modifier   (... and a part of its message)
//! ```
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::path::Path;

use lw_dockerfile::lint::{lint, BaseImage, LintOptions};

struct Expected {
    opts: LintOptions,
    findings: BTreeSet<(usize, String, Option<String>, Option<String>)>,
    fails: Option<(usize, String)>,
}

fn parse_expected(text: &str) -> Expected {
    let mut e = Expected {
        opts: LintOptions::default(),
        findings: BTreeSet::new(),
        fails: None,
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let head = words.next().unwrap();
        match head {
            "@base" => {
                let image = words.next().expect("@base needs an image").to_string();
                let mut b = BaseImage::default();
                for w in words {
                    let (k, v) = w.split_once('=').expect("key=value");
                    match k {
                        "user" => b.user = Some(v.into()),
                        "workdir" => b.working_dir = Some(v.into()),
                        "digest" => b.digest = Some(v.into()),
                        "env" => {
                            let (ek, ev) = v.split_once('=').unwrap_or((v, ""));
                            b.env.push((ek.into(), ev.into()));
                        }
                        _ => panic!("unknown @base field {k}"),
                    }
                }
                e.opts.base_images.insert(image, b);
            }
            "@error-rule" => e.opts.error_rules.extend(words.map(str::to_string)),
            "@skip" => e.opts.skip.extend(words.map(str::to_string)),
            "@fails" => {
                let n = words.next().unwrap().parse().unwrap();
                e.fails = Some((n, words.collect::<Vec<_>>().join(" ")));
            }
            n => {
                let line: usize = n.parse().unwrap_or_else(|_| panic!("bad line {line:?}"));
                let rule = words.next().expect("rule").to_string();
                let sev = words.next().map(str::to_string);
                let msg: Vec<&str> = words.collect();
                let msg = (!msg.is_empty()).then(|| msg.join(" "));
                e.findings.insert((line, rule, sev, msg));
            }
        }
    }
    e
}

/// Checks one case; `Err` says how it differs.
fn check(name: &str, src: &[u8], e: &Expected) -> Result<(), String> {
    let got = lint(src, &e.opts);
    match (&e.fails, got) {
        (Some((line, msg)), Err(err)) => {
            let text = err.to_string();
            // `LINE:COL: message`; line 0 for an error without a location.
            let at = *line == 0 || text.starts_with(&format!("{line}:"));
            if text.contains(msg.as_str()) && at {
                Ok(())
            } else {
                Err(format!(
                    "{name}: error {text:?}, expected line {line} and {msg:?}"
                ))
            }
        }
        (Some(_), Ok(f)) => Err(format!(
            "{name}: expected an error, got {} findings",
            f.len()
        )),
        (None, Err(err)) => Err(format!("{name}: unexpected error {err}")),
        (None, Ok(findings)) => {
            let actual: BTreeSet<(usize, String, String, String)> = findings
                .iter()
                .map(|f| {
                    let sev = f.severity.as_str().to_string();
                    (f.range.start_line, f.rule.clone(), sev, f.message.clone())
                })
                .collect();
            let mut diffs = Vec::new();
            for (l, r, s, m) in &e.findings {
                let hit = actual.iter().any(|(al, ar, asev, am)| {
                    al == l
                        && ar == r
                        && s.as_ref().is_none_or(|s| s == asev)
                        && m.as_ref().is_none_or(|m| am.contains(m.as_str()))
                });
                if !hit {
                    let want = format!(
                        "{} {}",
                        s.as_deref().unwrap_or(""),
                        m.as_deref().unwrap_or("")
                    );
                    diffs.push(format!("missing {l} {r} {want}"));
                }
            }
            for (l, r, s, _) in &actual {
                if !e.findings.iter().any(|(el, er, _, _)| el == l && er == r) {
                    let msg = findings
                        .iter()
                        .find(|f| f.range.start_line == *l && &f.rule == r)
                        .map(|f| f.message.clone())
                        .unwrap_or_default();
                    diffs.push(format!("unexpected {l} {r} {s}: {msg}"));
                }
            }
            if diffs.is_empty() {
                Ok(())
            } else {
                Err(format!("{name}:\n  {}", diffs.join("\n  ")))
            }
        }
    }
}

#[test]
fn lint_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint_cases");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().to_string();
            n.strip_suffix(".Dockerfile").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 20, "the corpus lost cases: {}", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let src = std::fs::read(dir.join(format!("{name}.Dockerfile"))).unwrap();
        let exp = std::fs::read_to_string(dir.join(format!("{name}.expected")))
            .unwrap_or_else(|_| panic!("{name}.expected is missing"));
        if let Err(d) = check(name, &src, &parse_expected(&exp)) {
            failures.push(d);
        }
    }
    eprintln!(
        "lint cases: {} of {} passed",
        names.len() - failures.len(),
        names.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
