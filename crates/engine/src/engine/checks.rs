//! `# check=error=true`: BuildKit runs its build checks while it builds and fails the build when one of them
//! reports a violation; the checks are lw-dockerfile's lint (BuildKit's rules only), linked with the `lint`
//! feature (the CLI), else the host's (the tab loads the linter as a module of its own, see [`set_build_checker`]).

use std::collections::BTreeSet;

use lw_dockerfile::lint::{CheckDirective, Violation};
use lw_dockerfile::model::{ModelOptions, Platform};
use lw_dockerfile::parser;

use super::BuildOptions;
use crate::{Error, StepError};

/// A host's build checks, for builds without the `lint` feature: [`lw_dockerfile::lint::build_check_violations`]
/// run elsewhere (the tab's on-demand lint module), for the Dockerfile and the build's model options; `Err` when
/// the host could not run them (the build then fails with that reason rather than pass unchecked).
#[derive(Debug, Clone, Copy)]
pub struct BuildChecker {
    pub violations: fn(&[u8], &ModelOptions) -> Result<Vec<Violation>, String>,
}

static BUILD_CHECKER: std::sync::OnceLock<BuildChecker> = std::sync::OnceLock::new();

/// Install the host's build checks (once per process or wasm instance; a later call keeps the first one and says
/// so by returning false). Unused when the linter is linked (the `lint` feature).
pub fn set_build_checker(c: BuildChecker) -> bool {
    BUILD_CHECKER.set(c).is_ok()
}

/// Whether builds can run their checks here: the linter linked, or installed by the host.
pub fn has_build_checker() -> bool {
    cfg!(feature = "lint") || BUILD_CHECKER.get().is_some()
}

/// The `# check=` directive of a parsed Dockerfile, when it asks for errors (`error=true`).
fn wants_errors(df: &parser::Dockerfile) -> bool {
    df.directives
        .check
        .as_ref()
        .and_then(|d| CheckDirective::parse(&d.cmdline))
        .is_some_and(|c| c.error)
}

/// Whether building `dockerfile` runs the build checks (`# check=error=true`): the tab loads the linter first
/// only then. A Dockerfile that does not parse needs none (its build fails before the checks).
pub fn needs_build_checks(dockerfile: &[u8]) -> bool {
    parser::parse(dockerfile).is_ok_and(|df| wants_errors(&df))
}

/// The violations by the linked linter.
#[cfg(feature = "lint")]
fn violations(src: &[u8], model: &ModelOptions) -> Result<Vec<Violation>, StepError> {
    Ok(lw_dockerfile::lint::build_check_violations(src, model))
}

/// The violations by the host's build checks; without them the build fails rather than skip its checks.
#[cfg(not(feature = "lint"))]
fn violations(src: &[u8], model: &ModelOptions) -> Result<Vec<Violation>, StepError> {
    let c = BUILD_CHECKER.get().ok_or_else(|| {
        StepError::Other(
            "# check=error=true: the build checks need the linter, which is not loaded here (the tab loads it \
             from pkg/lw_lint_bg.wasm first)"
                .into(),
        )
    })?;
    (c.violations)(src, model)
        .map_err(|e| StepError::Other(format!("# check=error=true: the build checks failed: {e}")))
}

/// An error naming the violated rules (BuildKit's message) when the Dockerfile asks for `error=true`.
pub(super) fn enforce(opts: &BuildOptions, df: &parser::Dockerfile) -> Result<(), Error> {
    if !wants_errors(df) {
        return Ok(());
    }
    let model = ModelOptions {
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        target_platform: Platform::parse(&opts.platform.to_string()).ok(),
        build_platform: Platform::parse(&opts.build_platform.to_string()).ok(),
    };
    let step = |line, kind| Error::Step {
        file: opts.dockerfile_name.clone(),
        line,
        kind,
    };
    let violated = violations(&opts.dockerfile, &model).map_err(|k| step(1, k))?;
    let Some(first) = violated.first() else {
        return Ok(());
    };
    let rules: BTreeSet<&str> = violated.iter().map(|v| v.rule.as_str()).collect();
    Err(step(
        first.line,
        StepError::LintViolation(rules.into_iter().map(String::from).collect()),
    ))
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

    #[test]
    fn only_error_true_needs_the_checks() {
        assert!(needs_build_checks(b"# check=error=true\nFROM scratch\n"));
        assert!(needs_build_checks(
            b"# check=skip=all;error=true\nFROM scratch\n"
        ));
        assert!(!needs_build_checks(b"# check=skip=all\nFROM scratch\n"));
        assert!(!needs_build_checks(b"# check=error=false\nFROM scratch\n"));
        assert!(!needs_build_checks(b"FROM scratch\n"));
        assert!(has_build_checker());
    }
}
