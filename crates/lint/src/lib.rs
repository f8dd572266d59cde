//! lw-lint: the tab's linter, lw-dockerfile's `lint`, `apply_fixes` and build checks behind wasm-bindgen. The tab
//! loads it as a wasm module of its own (`pkg/lw_lint.js`) when the editor first lints or a build has
//! `# check=error=true`, so the main module carries none of the linter. The CLI links lw-dockerfile's linter
//! directly; both run the same Rust code. This file holds the JS shapes and their conversions (plain Rust, tested
//! natively); `web` holds the exports.

use std::collections::BTreeMap;

use lw_dockerfile::lint::{
    self, BaseImage, Edit, Finding, Fix, LintOptions, Range, Severity, Violation,
};
use lw_dockerfile::model::{ModelOptions, Platform};
use serde::{Deserialize, Serialize};

/// A position as the JS API spells it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct RangeJs {
    pub start: Pos,
    pub end: Pos,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct EditJs {
    pub range: RangeJs,
    pub text: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct FixJs {
    pub description: String,
    pub edits: Vec<EditJs>,
}

/// A finding as `lint` returns it and `applyFixes` takes it back (`name`, `severity`, `message` and
/// `documentation` may be left out of what comes back).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct FindingJs {
    pub rule: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub severity: String,
    pub range: RangeJs,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub documentation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixJs>,
}

/// A base image's config as the tab read it (from its store or a registry, `baseImages()` of the main module):
/// `{env: ["K=V"], user, workingDir, digest}`; with `digest`, lint's pin findings offer to pin FROM to it.
#[derive(Deserialize, Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct BaseImageJs {
    #[serde(default)]
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
}

/// `lint`'s options: `{dockerignore?, contextHasDockerignore?, baseImages?}`.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct LintOptionsJs {
    #[serde(default)]
    pub dockerignore: Option<String>,
    #[serde(default)]
    pub context_has_dockerignore: Option<bool>,
    #[serde(default)]
    pub base_images: Option<BTreeMap<String, BaseImageJs>>,
}

/// A build's model options as the main module hands them over for its checks: `{buildArgs, target,
/// targetPlatform, buildPlatform}` (platforms as `os/arch[/variant]`).
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelJs {
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub target_platform: Option<String>,
    #[serde(default)]
    pub build_platform: Option<String>,
}

/// A violation of `# check=error=true` as the main module reads it back: `{rule, line}`.
#[derive(Serialize, Debug, PartialEq)]
pub struct ViolationJs {
    pub rule: String,
    pub line: usize,
}

fn range_js(r: &Range) -> RangeJs {
    RangeJs {
        start: Pos {
            line: r.start_line,
            column: r.start_column,
        },
        end: Pos {
            line: r.end_line,
            column: r.end_column,
        },
    }
}

fn range_rs(r: &RangeJs) -> Range {
    Range {
        start_line: r.start.line,
        start_column: r.start.column,
        end_line: r.end.line,
        end_column: r.end.column,
    }
}

/// A finding in the JS shape.
pub fn finding_js(f: &Finding) -> FindingJs {
    FindingJs {
        rule: f.rule.clone(),
        name: f.name.clone(),
        severity: f.severity.as_str().to_string(),
        range: range_js(&f.range),
        message: f.message.clone(),
        documentation: f.documentation.clone(),
        fix: f.fix.as_ref().map(|x| FixJs {
            description: x.description.clone(),
            edits: x
                .edits
                .iter()
                .map(|e| EditJs {
                    range: range_js(&e.range),
                    text: e.replacement.clone(),
                })
                .collect(),
        }),
    }
}

/// A finding handed back by the page (for `applyFixes`).
pub fn finding_rs(f: FindingJs) -> Finding {
    Finding {
        rule: f.rule,
        name: f.name,
        severity: match f.severity.as_str() {
            "error" => Severity::Error,
            "info" => Severity::Info,
            _ => Severity::Warning,
        },
        range: range_rs(&f.range),
        message: f.message,
        documentation: f.documentation,
        fix: f.fix.map(|x| Fix {
            description: x.description,
            edits: x
                .edits
                .into_iter()
                .map(|e| Edit {
                    range: range_rs(&e.range),
                    replacement: e.text,
                })
                .collect(),
        }),
    }
}

/// lw-dockerfile's lint options from the page's.
pub fn lint_options(o: LintOptionsJs) -> LintOptions {
    let mut out = LintOptions {
        dockerignore: o.dockerignore,
        context_has_dockerignore: o.context_has_dockerignore,
        ..Default::default()
    };
    for (name, b) in o.base_images.unwrap_or_default() {
        let mut image = BaseImage::from_config(&b.env, b.user.as_deref(), b.working_dir.as_deref());
        image.digest = b.digest;
        out.base_images.insert(name, image);
    }
    out
}

/// The findings of `dockerfile`, in the JS shape; a Dockerfile the linter cannot read is an error naming its line.
pub fn lint_js(dockerfile: &str, o: LintOptionsJs) -> Result<Vec<FindingJs>, String> {
    let findings = lint::lint(dockerfile.as_bytes(), &lint_options(o))
        .map_err(|e| format!("Dockerfile:{e}"))?;
    Ok(findings.iter().map(finding_js).collect())
}

/// `dockerfile` with every finding's fix applied.
pub fn apply_fixes_js(dockerfile: &str, findings: Vec<FindingJs>) -> Result<String, String> {
    let list: Vec<Finding> = findings.into_iter().map(finding_rs).collect();
    String::from_utf8(lint::apply_fixes(dockerfile.as_bytes(), &list))
        .map_err(|_| "applyFixes: the result is not UTF-8".to_string())
}

/// The build's model options from the main module's (a platform that does not parse is left to the default, as
/// the engine leaves it).
pub fn model_options(m: ModelJs) -> ModelOptions {
    ModelOptions {
        build_args: m.build_args,
        target: m.target,
        target_platform: m.target_platform.and_then(|p| Platform::parse(&p).ok()),
        build_platform: m.build_platform.and_then(|p| Platform::parse(&p).ok()),
    }
}

/// `# check=error=true`'s violations of `dockerfile` for a build with `m`: what lw-engine's build checks ask the
/// host for (lw-dockerfile's [`lint::build_check_violations`], as the CLI runs it linked).
pub fn build_checks_js(dockerfile: &str, m: ModelJs) -> Vec<ViolationJs> {
    lint::build_check_violations(dockerfile.as_bytes(), &model_options(m))
        .into_iter()
        .map(|Violation { rule, line }| ViolationJs { rule, line })
        .collect()
}

/// The exports `crates/wasm/js/index.js` calls after loading this module on demand.
#[cfg(target_arch = "wasm32")]
pub mod web {
    use serde::Serialize;
    use wasm_bindgen::prelude::*;

    fn err(message: impl std::fmt::Display) -> JsValue {
        js_sys::Error::new(&message.to_string()).into()
    }

    /// Plain JS values (objects, not Maps), as the main module's exports give.
    fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
        v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(err)
    }

    /// `opts` read as `T`; `undefined` or `null` is `T`'s default.
    fn from_js<T: serde::de::DeserializeOwned + Default>(
        what: &str,
        opts: JsValue,
    ) -> Result<T, JsValue> {
        if opts.is_undefined() || opts.is_null() {
            return Ok(T::default());
        }
        serde_wasm_bindgen::from_value(opts).map_err(|e| err(format!("{what}: {e}")))
    }

    /// `lint(dockerfile, {dockerignore?, contextHasDockerignore?, baseImages?})`: build checks and best-practice
    /// findings; `baseImages` maps an image name as written in FROM to its config.
    #[wasm_bindgen]
    pub fn lint(dockerfile: &str, opts: JsValue) -> Result<JsValue, JsValue> {
        let o = from_js("lint: bad options", opts)?;
        to_js(&super::lint_js(dockerfile, o).map_err(err)?)
    }

    /// `applyFixes(dockerfile, findings)`: the text with every finding's fix applied.
    #[wasm_bindgen(js_name = applyFixes)]
    pub fn apply_fixes(dockerfile: &str, findings: JsValue) -> Result<String, JsValue> {
        let list = serde_wasm_bindgen::from_value(findings)
            .map_err(|e| err(format!("applyFixes: bad findings: {e}")))?;
        super::apply_fixes_js(dockerfile, list).map_err(err)
    }

    /// `buildChecks(dockerfile, {buildArgs, target, targetPlatform, buildPlatform})`: the violations of
    /// `# check=error=true` as `[{rule, line}]`, for the main module's `useBuildChecks`.
    #[wasm_bindgen(js_name = buildChecks)]
    pub fn build_checks(dockerfile: &str, model: JsValue) -> Result<JsValue, JsValue> {
        let m = from_js("buildChecks: bad options", model)?;
        to_js(&super::build_checks_js(dockerfile, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_go_to_js_and_back_with_their_fixes() {
        let src = "from scratch\nCOPY a /a\n";
        let found = lint_js(src, LintOptionsJs::default()).unwrap();
        let casing = found
            .iter()
            .find(|f| f.rule == "ConsistentInstructionCasing")
            .expect("a casing finding");
        assert_eq!(casing.range.start.line, 1);
        assert!(casing.fix.is_some(), "{casing:?}");
        // The round trip keeps everything applyFixes needs.
        let json = serde_json::to_string(&found).unwrap();
        let back: Vec<FindingJs> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, found);
        let fixed = apply_fixes_js(src, back).unwrap();
        assert!(fixed.starts_with("FROM scratch\n"), "{fixed}");
        let again = lint_js(&fixed, LintOptionsJs::default()).unwrap();
        assert!(
            !again
                .iter()
                .any(|f| f.rule == "ConsistentInstructionCasing"),
            "{again:?}"
        );
        assert!(lint_js("FROM\n", LintOptionsJs::default())
            .unwrap_err()
            .starts_with("Dockerfile:"));
    }

    #[test]
    fn base_images_and_dockerignore_reach_the_linter() {
        let o: LintOptionsJs = serde_json::from_str(
            r#"{"dockerignore": "a\n", "contextHasDockerignore": true,
                "baseImages": {"img": {"env": ["K=v"], "workingDir": "/w", "digest": "sha256:00"}}}"#,
        )
        .unwrap();
        let lo = lint_options(o);
        assert_eq!(lo.dockerignore.as_deref(), Some("a\n"));
        assert_eq!(lo.context_has_dockerignore, Some(true));
        let img = &lo.base_images["img"];
        assert_eq!(img.env, vec![("K".to_string(), "v".to_string())]);
        assert_eq!(img.working_dir.as_deref(), Some("/w"));
        assert_eq!(img.digest.as_deref(), Some("sha256:00"));
    }

    #[test]
    fn build_checks_are_lw_dockerfiles_with_the_builds_model() {
        let m: ModelJs = serde_json::from_str(
            r#"{"buildArgs": {"A": "1"}, "target": "base", "targetPlatform": "linux/386", "buildPlatform": "bad//"}"#,
        )
        .unwrap();
        let mo = model_options(m);
        assert_eq!(mo.build_args.get("A").map(String::as_str), Some("1"));
        assert_eq!(mo.target_platform.unwrap().architecture, "386");
        assert!(mo.build_platform.is_none());
        let src = "# check=error=true\nFROM scratch as base\nLABEL a=b\n";
        let v = build_checks_js(src, ModelJs::default());
        let expected: Vec<ViolationJs> =
            lint::build_check_violations(src.as_bytes(), &ModelOptions::default())
                .into_iter()
                .map(|v| ViolationJs {
                    rule: v.rule,
                    line: v.line,
                })
                .collect();
        assert_eq!(v, expected);
        assert_eq!(v[0].rule, "FromAsCasing");
        assert_eq!(v[0].line, 2);
    }
}
