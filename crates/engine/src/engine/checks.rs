//! `# check=error=true`: BuildKit runs its build checks while it builds and fails the build when one of them
//! reports a violation; the checks are lw-dockerfile's lint (BuildKit's rules only).

use std::collections::BTreeSet;

use lw_dockerfile::lint::{self, CheckDirective, LintOptions, Severity};
use lw_dockerfile::model::{ModelOptions, Platform};
use lw_dockerfile::parser;

use super::BuildOptions;
use crate::{Error, StepError};

/// An error naming the violated rules (BuildKit's message) when the Dockerfile asks for `error=true`.
pub(super) fn enforce(opts: &BuildOptions, df: &parser::Dockerfile) -> Result<(), Error> {
    let Some(c) = df
        .directives
        .check
        .as_ref()
        .and_then(|d| CheckDirective::parse(&d.cmdline))
    else {
        return Ok(());
    };
    if !c.error {
        return Ok(());
    }
    let lo = LintOptions {
        model: ModelOptions {
            build_args: opts.build_args.clone(),
            target: opts.target.clone(),
            target_platform: Platform::parse(&opts.platform.to_string()).ok(),
            build_platform: Platform::parse(&opts.build_platform.to_string()).ok(),
        },
        buildkit_only: true,
        ..Default::default()
    };
    // A Dockerfile the linter cannot read fails in the build proper, with its own message.
    let findings = lint::lint(&opts.dockerfile, &lo).unwrap_or_default();
    let violated: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error && lint::rule_info(&f.rule).is_some())
        .collect();
    let Some(first) = violated.first() else {
        return Ok(());
    };
    let rules: BTreeSet<&str> = violated.iter().map(|f| f.rule.as_str()).collect();
    Err(Error::Step {
        file: opts.dockerfile_name.clone(),
        line: first.range.start_line,
        kind: StepError::LintViolation(rules.into_iter().map(String::from).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<(), Error> {
        let opts = BuildOptions::new(src, lw_oci::Platform::parse("linux/amd64").unwrap());
        enforce(&opts, &parser::parse(src.as_bytes()).unwrap())
    }

    #[test]
    fn error_true_fails_on_a_violation_only() {
        let e = run("# check=error=true\nFROM scratch as base\nLABEL a=b\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("lint violation found for rules: FromAsCasing"),
            "{e}"
        );
        assert!(run("# check=error=true\nFROM scratch AS base\nLABEL a=b\n").is_ok());
        assert!(run("FROM scratch as base\nLABEL a=b\n").is_ok());
        assert!(run("# check=error=true;skip=FromAsCasing\nFROM scratch as base\n").is_ok());
    }
}
