//! Build checks and lint: BuildKit's 21 build-check rules plus Layerwright's own
//! best-practice rules (`LW001`...), the `# check=` directive, machine-applicable fixes,
//! and SARIF output.
//!
//! ```
//! use lw_dockerfile::lint::{lint, LintOptions};
//! let f = lint(b"FROM alpine AS Builder\n", &LintOptions::default()).unwrap();
//! assert!(f.iter().any(|f| f.rule == "StageNameCasing"));
//! ```

mod baseimg;
mod buildkit;
mod context;
mod coverage;
mod dockerignore;
mod fatal;
mod fix;
mod practices;
mod reference;
mod rules;
mod runfacts;
mod runrules;
mod sarif;
mod shellcheck;
mod shellscan;
mod shellvars;
mod stagefacts;

use std::collections::BTreeMap;

use serde::Serialize;

pub use baseimg::has_fallback;
pub use dockerignore::IgnoreList;
pub use fix::{apply_edits, apply_fixes};
pub use rules::{hadolint_codes, rule_for_hadolint, rule_info, RuleInfo, HADOLINT, RULES};
pub use sarif::to_sarif;

use crate::model::{Model, ModelOptions};
use crate::parser::{self, Position, Span};
use crate::Error;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Finding {
    /// Whether this is one of BuildKit's hard errors (a refused instruction, a failed
    /// expansion, an invalid base name): `docker build --check` fails on it even with
    /// `ignorestatus=true`.
    pub fn is_hard_error(&self) -> bool {
        self.rule == fatal::RULE
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A source range: 1-based lines and 1-based byte columns, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Range {
    pub start_line: usize,
    pub start_column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl Range {
    pub fn new(start: Position, end: Position) -> Range {
        Range {
            start_line: start.line,
            start_column: start.column,
            end_line: end.line,
            end_column: end.column,
        }
    }
}

impl From<Span> for Range {
    fn from(s: Span) -> Range {
        Range::new(s.start, s.end)
    }
}

/// Replace the text in `range` with `replacement` (an empty range inserts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub range: Range,
    pub replacement: String,
}

/// A machine-applicable fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub description: String,
    pub edits: Vec<Edit>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `StageNameCasing` for BuildKit rules, `LW004` for ours.
    pub rule: String,
    /// A readable name (`StageNameCasing`, `apt-no-install-recommends`).
    pub name: String,
    pub severity: Severity,
    pub range: Range,
    pub message: String,
    /// The documentation URL (BuildKit rules) or a one-line explanation (ours).
    pub documentation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

/// What the caller knows besides the Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Build args, target and platforms, as for the model.
    pub model: ModelOptions,
    /// The `.dockerignore` text of the context, if there is one (for `CopyIgnoredFile`).
    pub dockerignore: Option<String>,
    /// `Some(false)` when the caller knows the context has no `.dockerignore` (`LW013`).
    pub context_has_dockerignore: Option<bool>,
    /// The configuration of base images the caller could read (from its store or a
    /// registry), by image name as written in `FROM` (the name without tag is also
    /// looked up). Without an entry, a built-in table of popular images stands in.
    pub base_images: BTreeMap<String, BaseImage>,
    /// Rules whose findings are errors (ours included); `# check=error=true` only
    /// raises BuildKit's rules.
    pub error_rules: Vec<String>,
    /// Rules to skip in addition to the `# check=skip=` directive.
    pub skip: Vec<String>,
    /// Enable experimental rules (`InvalidDefinitionDescription`).
    pub experimental: bool,
    /// Only run BuildKit's rules (no `LW` rules).
    pub buildkit_only: bool,
}

/// What lint needs of a base image's config: its `Env`, `User` and `WorkingDir`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImage {
    /// `KEY=value` pairs split at the first `=`.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// The digest the caller's store holds for the image (`sha256:...`): with it,
    /// `LW001`/`LW002` offer to pin `FROM` to exactly that image.
    pub digest: Option<String>,
}

impl BaseImage {
    /// From an image config's `Env` strings (`KEY=value`).
    pub fn from_config(env: &[String], user: Option<&str>, working_dir: Option<&str>) -> BaseImage {
        BaseImage {
            env: env
                .iter()
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.clone(), String::new()),
                })
                .collect(),
            user: user.filter(|u| !u.is_empty()).map(str::to_string),
            working_dir: working_dir.filter(|w| !w.is_empty()).map(str::to_string),
            digest: None,
        }
    }

    /// The same config with the digest of the image it came from.
    pub fn with_digest(mut self, digest: impl Into<String>) -> BaseImage {
        self.digest = Some(digest.into());
        self
    }
}

/// The parsed `# check=` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckDirective {
    pub skip: Vec<String>,
    pub skip_all: bool,
    pub error: bool,
    pub experimental: Vec<String>,
    pub experimental_all: bool,
}

impl CheckDirective {
    /// Parses `skip=A,B;error=true;experimental=C` as BuildKit's `ParseLintOptions`
    /// does; `None` when it is invalid (BuildKit then rejects the options).
    pub fn parse(value: &str) -> Option<CheckDirective> {
        let mut d = CheckDirective::default();
        let value = value.trim();
        if value.is_empty() {
            return Some(d);
        }
        for part in value.splitn(3, ';') {
            let (k, v) = part.split_once('=')?;
            let v = v.trim();
            let list = || -> Vec<String> { v.split(',').map(|s| s.trim().to_string()).collect() };
            match k.trim() {
                "skip" if v == "all" => d.skip_all = true,
                "skip" => d.skip = list(),
                "experimental" if v == "all" => d.experimental_all = true,
                "experimental" => d.experimental = list(),
                "error" => {
                    d.error = match v {
                        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Some(d)
    }

    /// A `check=` directive in a comment right above an instruction (its value ends at
    /// the first space), which BuildKit merges into the checks of that instruction.
    fn from_comments(comments: &[Vec<u8>]) -> Option<CheckDirective> {
        for c in comments {
            let text = String::from_utf8_lossy(c);
            let Some((name, value)) = text.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if !name.eq_ignore_ascii_case("check") {
                continue;
            }
            let value = value.trim();
            let value = value.split(' ').next().unwrap_or("");
            return CheckDirective::parse(value);
        }
        None
    }

    fn skips(&self, rule: &RuleInfo) -> bool {
        self.skip_all || self.skip.iter().any(|s| s == rule.id)
    }

    fn enables_experimental(&self, rule: &RuleInfo) -> bool {
        self.experimental_all || self.experimental.iter().any(|s| s == rule.id)
    }
}

/// Parses and lints a Dockerfile. Parse errors and fatal model errors (a malformed
/// `FROM`, unknown `--target`) are returned as `Err`; everything else is a finding.
/// Findings are sorted by position.
pub fn lint(src: &[u8], options: &LintOptions) -> Result<Vec<Finding>, Error> {
    if src.is_empty() {
        return Err(Error::Empty);
    }
    let df = parser::parse(src)?;
    let model = match Model::build(&df, &options.model) {
        Ok(m) => m,
        Err(e) => {
            // BuildKit parses every instruction before it looks for a stage, so an
            // unknown instruction before the first FROM (`{{ template }}`) is its error.
            let first_bad = df
                .children
                .iter()
                .take_while(|n| n.keyword() != "from")
                .find_map(|n| crate::instructions::parse_instruction(n).err());
            return Err(first_bad.unwrap_or(e));
        }
    };
    let mut findings = lint_parsed(src, &df, &model, options);
    // An instruction BuildKit would refuse (unknown keyword or flag, bad arguments) is an error finding, so an
    // editor can underline it; every instruction is checked, not only the first bad one.
    for node in &df.children {
        if let Err(Error::Parse {
            line,
            column,
            message,
        }) = crate::instructions::parse_instruction(node)
        {
            let range = Range {
                start_line: line,
                start_column: column,
                end_line: node.end_line.max(line),
                end_column: column + 1,
            };
            findings.push(fatal::finding(range, message));
        }
    }
    findings.sort_by_key(|f| (f.range.start_line, f.range.start_column));
    Ok(findings)
}

/// A rule that `# check=error=true` fails a build on, and the line of its first error finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub line: usize,
}

/// What `# check=error=true` fails a build on: BuildKit's rules (`model` being the build's args, target and
/// platforms) with an error finding, in the order of their findings. Empty when the linter cannot read the
/// Dockerfile: the build proper then fails with its own message. The engine calls this natively; the tab calls it
/// in the on-demand lint module, so both judge a build by the same code.
pub fn build_check_violations(src: &[u8], model: &ModelOptions) -> Vec<Violation> {
    let options = LintOptions {
        model: model.clone(),
        buildkit_only: true,
        ..Default::default()
    };
    lint(src, &options)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.severity == Severity::Error && rule_info(&f.rule).is_some())
        .map(|f| Violation {
            rule: f.rule,
            line: f.range.start_line,
        })
        .collect()
}

/// Lints an already parsed and modelled Dockerfile.
pub fn lint_parsed(
    src: &[u8],
    df: &parser::Dockerfile,
    model: &Model,
    options: &LintOptions,
) -> Vec<Finding> {
    let directive = df
        .directives
        .check
        .as_ref()
        .and_then(|d| CheckDirective::parse(&d.cmdline))
        .unwrap_or_default();
    // Per-instruction `# check=` comments, by the instruction's first line.
    let local: Vec<(usize, CheckDirective)> = df
        .children
        .iter()
        .filter_map(|n| {
            Some((
                n.start_line,
                CheckDirective::from_comments(&n.prev_comment)?,
            ))
        })
        .collect();
    let mut cx = context::Ctx::new(src, df, model, options);
    fatal::run(&mut cx);
    buildkit::run(&mut cx);
    if !options.buildkit_only {
        practices::run(&mut cx);
        coverage::run(&mut cx);
        shellcheck::run(&mut cx);
    }
    // hadolint's inline `# hadolint ignore=DL3008,LW005` above an instruction, and
    // `# hadolint global ignore=...` anywhere.
    let inline: Vec<(usize, Vec<String>)> = df
        .children
        .iter()
        .map(|n| (n.start_line, hadolint_ignores(&n.prev_comment, false)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let global: Vec<String> = src
        .split(|&c| c == b'\n')
        .filter_map(|l| {
            let t = String::from_utf8_lossy(l);
            let t = t.trim_start();
            t.starts_with('#').then(|| t[1..].to_string())
        })
        .flat_map(|c| hadolint_ignores(&[c.into_bytes()], true))
        .collect();
    let mut out: Vec<Finding> = cx
        .findings
        .into_iter()
        .filter(|f| {
            let Some(info) = rule_info(&f.rule) else {
                return true;
            };
            let ignored = inline
                .iter()
                .filter(|(l, _)| *l == f.range.start_line)
                .flat_map(|(_, v)| v)
                .chain(&global)
                .chain(&options.skip)
                .any(|code| names_rule(code, info));
            if ignored {
                return false;
            }
            let here = local
                .iter()
                .find(|(l, _)| *l == f.range.start_line)
                .map(|(_, d)| d);
            let configs = std::iter::once(&directive).chain(here);
            if info.experimental {
                options.experimental || configs.into_iter().any(|d| d.enables_experimental(info))
            } else {
                !configs.into_iter().any(|d| d.skips(info))
            }
        })
        .map(|mut f| {
            // BuildKit's `error=true` knows only BuildKit's rules; ours turn into
            // errors only when the caller names them.
            let buildkit_rule = rule_info(&f.rule).is_some_and(|i| !i.id.starts_with("LW"));
            if directive.error && buildkit_rule && f.severity == Severity::Warning {
                f.severity = Severity::Error;
            }
            if options
                .error_rules
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&f.rule))
            {
                f.severity = Severity::Error;
            }
            f
        })
        .collect();
    out.sort_by(|a, b| a.range.cmp(&b.range).then_with(|| a.rule.cmp(&b.rule)));
    out.dedup();
    out
}

/// Whether `code` (our id, BuildKit's, or a hadolint code) names the rule.
fn names_rule(code: &str, info: &RuleInfo) -> bool {
    code.eq_ignore_ascii_case(info.id)
        || hadolint_codes(info.id)
            .iter()
            .any(|c| c.eq_ignore_ascii_case(code))
}

/// The codes of `hadolint ignore=A,B` comments (`hadolint global ignore=` when `global`).
fn hadolint_ignores(comments: &[Vec<u8>], global: bool) -> Vec<String> {
    let mut out = Vec::new();
    for c in comments {
        let text = String::from_utf8_lossy(c);
        let mut words = text.split_whitespace();
        if words.next() != Some("hadolint") {
            continue;
        }
        let mut next = words.next();
        if global {
            if next != Some("global") {
                continue;
            }
            next = words.next();
        }
        if let Some(list) = next.and_then(|w| w.strip_prefix("ignore=")) {
            out.extend(
                list.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        }
    }
    out
}

/// `Dockerfile:3:5: warning: <message> [RuleName]` lines, one per finding.
pub fn format_text(findings: &[Finding], file_name: &str) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&format!(
            "{}:{}:{}: {}: {} [{}]\n",
            file_name,
            f.range.start_line,
            f.range.start_column,
            f.severity.as_str(),
            f.message,
            f.rule
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_check_violations_are_buildkit_errors_with_their_first_line() {
        let src = b"# check=error=true\nFROM scratch as base\nLABEL a=b\nFROM base as two\n";
        let v = build_check_violations(src, &ModelOptions::default());
        assert_eq!(
            v,
            vec![
                Violation {
                    rule: "FromAsCasing".into(),
                    line: 2
                },
                Violation {
                    rule: "FromAsCasing".into(),
                    line: 4
                }
            ]
        );
        let skipped = b"# check=error=true;skip=FromAsCasing\nFROM scratch as base\n";
        assert_eq!(
            build_check_violations(skipped, &ModelOptions::default()),
            vec![]
        );
        assert_eq!(
            build_check_violations(b"", &ModelOptions::default()),
            vec![]
        );
    }
}
