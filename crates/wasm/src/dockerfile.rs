//! `parse`, `baseImages`: the Dockerfile frontend as the editor sees it (`lint` and `applyFixes` are the on-demand
//! lint module's, lw-lint).

use lw_dockerfile::model::{BaseRef, Model, ModelOptions, VarKind};
use lw_dockerfile::parser;
use lw_engine::engine::{self, BuildOptions};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::js::to_js;

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

/// A base image's config as the tab's store holds it: `{env: ["K=V"], user, workingDir, digest}`, what the lint
/// module (`pkg/lw_lint.js`, lw-lint's `BaseImageJs`) takes as `baseImages`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BaseImageJs {
    env: Vec<String>,
    user: Option<String>,
    working_dir: Option<String>,
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
