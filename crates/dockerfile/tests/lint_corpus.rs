//! Robustness over BuildKit's parser corpus (`../shared/conformance/buildkit-parser*`):
//! every Dockerfile that parses must build a model (or give a typed error) and lint
//! without panicking; findings must point inside the file and their fixes must apply
//! to text that still parses.
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};

use lw_dockerfile::lint::{apply_fixes, lint_parsed, LintOptions};
use lw_dockerfile::model::{Model, ModelOptions};
use lw_dockerfile::parser;

fn conformance() -> PathBuf {
    lw_test_kit::corpus::conformance("")
}

fn dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            dockerfiles(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("Dockerfile"))
        {
            out.push(p);
        }
    }
}

#[test]
fn lint_parser_corpus() {
    let root = conformance();
    let mut files = Vec::new();
    for sub in [
        "buildkit-parser",
        "buildkit-parser-extra",
        "buildkit-parser-negative",
    ] {
        dockerfiles(&root.join(sub), &mut files);
    }
    files.sort();
    assert!(files.len() >= 30, "only {} Dockerfiles found", files.len());
    let (mut parsed, mut modelled, mut findings_total) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read(f).unwrap();
        let Ok(df) = parser::parse(&src) else {
            continue;
        };
        parsed += 1;
        let model = match Model::build(&df, &ModelOptions::default()) {
            Ok(m) => m,
            Err(e) => {
                println!("  not modelled: {}: {e}", f.display());
                continue; // a typed error (e.g. no FROM) is fine
            }
        };
        modelled += 1;
        let opts = LintOptions {
            dockerignore: Some("*.md\n".into()),
            context_has_dockerignore: Some(true),
            ..LintOptions::default()
        };
        let findings = lint_parsed(&src, &df, &model, &opts);
        findings_total += findings.len();
        let lines = src.split(|&c| c == b'\n').count();
        for x in &findings {
            if x.range.start_line == 0
                || x.range.start_line > lines
                || x.range.end_line < x.range.start_line
            {
                failures.push(format!(
                    "{}: {} has range {:?}",
                    f.display(),
                    x.rule,
                    x.range
                ));
            }
        }
        if findings.iter().any(|x| x.fix.is_some()) {
            let fixed = apply_fixes(&src, &findings);
            if parser::parse(&fixed).is_err() {
                failures.push(format!("{}: fixed text no longer parses", f.display()));
            }
        }
    }
    println!(
        "parser corpus lint: {} files, {parsed} parsed, {modelled} modelled, {findings_total} findings, {} failures",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Truncated and spliced variants of the corpus files must never panic the model or
/// the linter (errors are fine).
#[test]
fn lint_never_panics_on_mangled_input() {
    let root = conformance();
    let mut files = Vec::new();
    for sub in ["buildkit-parser", "buildkit-parser-extra"] {
        dockerfiles(&root.join(sub), &mut files);
    }
    files.sort();
    let mut variants = 0;
    for f in &files {
        let src = std::fs::read(f).unwrap();
        let step = (src.len() / 40).max(1);
        for cut in (0..src.len()).step_by(step) {
            let mut v = src[..cut].to_vec();
            // Splice the tail of another file onto it to mix instructions.
            v.extend_from_slice(
                b"\nFROM x AS y\nCOPY --from=y . .\nRUN a | b && cd c\nWORKDIR d\n",
            );
            v.extend_from_slice(&src[cut..]);
            let _ = lw_dockerfile::lint::lint(&v, &LintOptions::default());
            let _ = lw_dockerfile::lint::lint(&src[..cut], &LintOptions::default());
            variants += 2;
        }
    }
    println!("mangled inputs linted without panic: {variants}");
    assert!(variants > 1000);
}
