//! `parse`, `lint`, `applyFixes`: the Dockerfile frontend as the editor sees it.

use lw_dockerfile::lint::{self, Edit, Finding, Fix, LintOptions, Range, Severity};
use lw_dockerfile::model::{BaseRef, Model, ModelOptions, VarKind};
use lw_dockerfile::parser;
use lw_engine::engine::{self, BuildOptions};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::js::{err, get_bool, get_string, to_js};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstructionOut {
    keyword: String,
    line: usize,
    end_line: usize,
    text: String,
    args: Vec<String>,
    flags: Vec<String>,
}

#[derive(Serialize)]
struct StageOut {
    index: usize,
    name: Option<String>,
    base: String,
    platform: Option<String>,
    line: usize,
}

#[derive(Serialize)]
struct VarOut {
    name: String,
    value: Option<String>,
    kind: &'static str,
}

#[derive(Serialize)]
struct ScopeOut {
    line: usize,
    vars: Vec<VarOut>,
}

#[derive(Serialize)]
struct Diagnostic {
    line: usize,
    column: usize,
    message: String,
    severity: &'static str,
}

#[derive(Serialize, Default)]
struct ParseResult {
    instructions: Vec<InstructionOut>,
    stages: Vec<StageOut>,
    scopes: Vec<ScopeOut>,
    diagnostics: Vec<Diagnostic>,
    dump: String,
}

fn kind_name(k: VarKind) -> &'static str {
    match k {
        VarKind::Env | VarKind::InheritedEnv => "env",
        VarKind::Platform | VarKind::Proxy => "predefined",
        _ => "arg",
    }
}

fn diagnostic(e: &lw_dockerfile::Error) -> Diagnostic {
    match e {
        lw_dockerfile::Error::Parse {
            line,
            column,
            message,
        } => Diagnostic {
            line: *line,
            column: *column,
            message: message.clone(),
            severity: "error",
        },
        other => Diagnostic {
            line: 0,
            column: 0,
            message: other.to_string(),
            severity: "error",
        },
    }
}

/// The model options of a build with the tab's defaults (its platform, `SOURCE_DATE_EPOCH` 0, no build args): the
/// scope view shows the values a build uses, from the engine's own [`engine::model_options`].
fn editor_model_options() -> ModelOptions {
    engine::model_options(&BuildOptions::new(
        Vec::new(),
        crate::store::default_platform(),
    ))
}

/// The scope view of `parse` for a Dockerfile: per instruction line, the variables that have a value there (name
/// and value, in declaration order); `None` when the Dockerfile has no model (a syntax or stage error).
pub fn scope_view(src: &str) -> Option<Vec<engine::InstructionScope>> {
    let r = parse_result(src);
    if r.stages.is_empty() {
        return None;
    }
    let view = r
        .scopes
        .into_iter()
        .map(|s| {
            let vars = s
                .vars
                .into_iter()
                .filter_map(|v| Some((v.name, v.value?)))
                .collect();
            engine::InstructionScope { line: s.line, vars }
        })
        .collect();
    Some(view)
}

/// The pure part of `parse`: syntax and model errors become diagnostics rather than exceptions, so an editor
/// can show them while the user types.
fn parse_result(src: &str) -> ParseResult {
    let mut out = ParseResult::default();
    let df = match parser::parse(src.as_bytes()) {
        Ok(df) => df,
        Err(e) => {
            out.diagnostics.push(diagnostic(&e));
            return out;
        }
    };
    out.dump = parser::dump(&df);
    for w in &df.warnings {
        let mut message = w.short.clone();
        for d in &w.detail {
            message.push('\n');
            message.push_str(d);
        }
        out.diagnostics.push(Diagnostic {
            line: w.line,
            column: 1,
            message,
            severity: "warning",
        });
    }
    for n in &df.children {
        out.instructions.push(InstructionOut {
            keyword: n.keyword(),
            line: n.start_line,
            end_line: n.end_line,
            text: n.original_lossy(),
            args: n.args_lossy(),
            flags: n.flags_lossy(),
        });
    }
    // Instruction-level errors (`ENV` without a value, `ONBUILD ONBUILD`) that BuildKit's parser lets through.
    if let Err(e) = lw_dockerfile::instructions::parse(&df) {
        out.diagnostics.push(diagnostic(&e));
    }
    match Model::build(&df, &editor_model_options()) {
        Ok(model) => {
            for s in &model.stages {
                out.stages.push(StageOut {
                    index: s.index,
                    name: s.name.clone(),
                    base: match &s.base {
                        BaseRef::Scratch => "scratch".into(),
                        BaseRef::Stage(i) => model.stages[*i]
                            .name
                            .clone()
                            .unwrap_or_else(|| i.to_string()),
                        BaseRef::Image(n) => n.clone(),
                    },
                    platform: s.platform.clone(),
                    line: s.from.start_line,
                });
            }
            for n in &df.children {
                let vars = model
                    .values_at(n.start_line)
                    .into_iter()
                    .map(|v| VarOut {
                        name: v.name,
                        value: v.value,
                        kind: kind_name(v.kind),
                    })
                    .collect();
                out.scopes.push(ScopeOut {
                    line: n.start_line,
                    vars,
                });
            }
        }
        Err(e) => out.diagnostics.push(diagnostic(&e)),
    }
    out
}

/// `parse(dockerfile)`: instructions, stages, ARG/ENV scopes per instruction line, diagnostics, BuildKit's dump.
#[wasm_bindgen]
pub fn parse(dockerfile: &str) -> Result<JsValue, JsValue> {
    to_js(&parse_result(dockerfile))
}

/// A position as the JS API spells it.
#[derive(Serialize, Deserialize, Clone, Copy)]
struct Pos {
    line: usize,
    column: usize,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct RangeJs {
    start: Pos,
    end: Pos,
}

#[derive(Serialize, Deserialize)]
struct EditJs {
    range: RangeJs,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct FixJs {
    description: String,
    edits: Vec<EditJs>,
}

#[derive(Serialize, Deserialize)]
struct FindingJs {
    rule: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    severity: String,
    range: RangeJs,
    #[serde(default)]
    message: String,
    #[serde(default)]
    documentation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fix: Option<FixJs>,
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

fn finding_js(f: &Finding) -> FindingJs {
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

fn finding_rs(f: FindingJs) -> Finding {
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

/// A base image's config as the tab read it (from its store or a registry): `{env: ["K=V"], user, workingDir,
/// digest}`; with `digest`, lint's pin findings offer to pin FROM to it.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct BaseImageJs {
    #[serde(default)]
    env: Vec<String>,
    user: Option<String>,
    working_dir: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// `baseImages(dockerfile)`: the config of every base image of the Dockerfile that the tab's store holds, keyed by
/// the name as written in FROM, ready to pass to `lint` as `baseImages`. Bases it does not hold are left out.
#[wasm_bindgen(js_name = baseImages)]
pub fn base_images(dockerfile: &str) -> Result<JsValue, JsValue> {
    let mut out = std::collections::BTreeMap::new();
    let model = parser::parse(dockerfile.as_bytes())
        .ok()
        .and_then(|df| Model::build(&df, &ModelOptions::default()).ok());
    let Some(model) = model else {
        return to_js(&out);
    };
    let stages: Vec<String> = model.stages.iter().filter_map(|s| s.name.clone()).collect();
    for stage in &model.stages {
        let name = stage.base_name.as_str();
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || lower == "scratch" || stages.contains(&lower) || name.contains('$') {
            continue;
        }
        if let Some(b) = crate::store::with(|s| store_config(s, name)) {
            out.insert(name.to_string(), b);
        }
    }
    to_js(&out)
}

/// The config of the image the tab's store holds under `name` (for the tab's platform).
fn store_config(s: &crate::store::State, name: &str) -> Option<BaseImageJs> {
    use lw_engine::archive::{resolve_manifest, MAX_DOCUMENT};
    let rec = s.resolve(name).ok()?;
    let (_, m) =
        resolve_manifest(&s.blobs, &rec.descriptor, &crate::store::default_platform()).ok()?;
    let bytes = lw_engine::host::read_blob(&s.blobs, &m.config.digest, MAX_DOCUMENT).ok()?;
    let config: lw_oci::ImageConfig = serde_json::from_slice(&bytes).ok()?;
    let c = config.config;
    Some(BaseImageJs {
        env: c.env.unwrap_or_default(),
        user: c.user,
        working_dir: c.working_dir,
        digest: Some(rec.descriptor.digest.to_string()),
    })
}

/// `lint(dockerfile, {dockerignore?, contextHasDockerignore?, baseImages?})`: build checks and best-practice
/// findings; `baseImages` maps an image name as written in FROM to its config.
#[wasm_bindgen]
pub fn lint(dockerfile: &str, opts: JsValue) -> Result<JsValue, JsValue> {
    let mut o = LintOptions {
        dockerignore: get_string(&opts, "dockerignore")?,
        ..Default::default()
    };
    let bases = crate::js::get(&opts, "baseImages")?;
    if !bases.is_undefined() && !bases.is_null() {
        let map: std::collections::BTreeMap<String, BaseImageJs> =
            serde_wasm_bindgen::from_value(bases)
                .map_err(|e| err(format!("lint: bad baseImages: {e}")))?;
        for (name, b) in map {
            let mut image =
                lint::BaseImage::from_config(&b.env, b.user.as_deref(), b.working_dir.as_deref());
            image.digest = b.digest;
            o.base_images.insert(name, image);
        }
    }
    let has = crate::js::get(&opts, "contextHasDockerignore")?;
    if !has.is_undefined() && !has.is_null() {
        o.context_has_dockerignore = Some(get_bool(&opts, "contextHasDockerignore")?);
    }
    let findings =
        lint::lint(dockerfile.as_bytes(), &o).map_err(|e| err(format!("Dockerfile:{e}")))?;
    to_js(&findings.iter().map(finding_js).collect::<Vec<_>>())
}

/// `applyFixes(dockerfile, findings)`: the text with every finding's fix applied.
#[wasm_bindgen(js_name = applyFixes)]
pub fn apply_fixes(dockerfile: &str, findings: JsValue) -> Result<String, JsValue> {
    let list: Vec<FindingJs> = serde_wasm_bindgen::from_value(findings)
        .map_err(|e| err(format!("applyFixes: bad findings: {e}")))?;
    let list: Vec<Finding> = list.into_iter().map(finding_rs).collect();
    let fixed = lint::apply_fixes(dockerfile.as_bytes(), &list);
    String::from_utf8(fixed).map_err(|_| err("applyFixes: the result is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_stages_scopes_and_errors() {
        let r = parse_result("FROM scratch AS a\nARG V=1\nENV X=$V\nLABEL l=1\nFROM a\nCOPY x /\n");
        assert_eq!(r.instructions.len(), 6);
        assert_eq!(r.stages.len(), 2);
        assert_eq!(r.stages[1].base, "a");
        assert!(r.dump.starts_with("(from"), "{}", r.dump);
        assert_eq!(
            r.scopes[3]
                .vars
                .iter()
                .find(|v| v.name == "X")
                .and_then(|v| v.value.clone())
                .as_deref(),
            Some("1")
        );
        let bad = parse_result("FROM scratch\nCOPY <<EOF /x\n");
        assert_eq!(bad.diagnostics[0].line, 2, "{}", bad.diagnostics[0].message);
        assert!(!parse_result("FROM scratch\nENV\n").diagnostics.is_empty());
    }
}
