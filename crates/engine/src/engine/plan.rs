//! The build plan: the Dockerfile's semantic model (`lw_dockerfile::model`: stages, dependencies, ARG/ENV scopes)
//! next to the typed syntax of each instruction, which stages the target needs, and the scope every instruction is
//! evaluated with. The engine has no scoping or stage selection of its own: the editor's scope view and the build
//! come from the same model.

use std::collections::BTreeSet;

use lw_dockerfile::instructions::{self, Instruction};
use lw_dockerfile::model::{self, BaseRef, Model, ModelOptions};
use lw_dockerfile::parser;
use lw_dockerfile::shell::Lexer;
use lw_oci::Platform;
use serde::Serialize;

use super::run_mounts;
use super::BuildOptions;
use crate::host::ImageSource;
use crate::{Error, StepError};

/// A parsed Dockerfile, its model and its typed instructions.
pub struct Plan {
    pub dockerfile: parser::Dockerfile,
    pub model: Model,
    /// The options the model was built with (the build args include `SOURCE_DATE_EPOCH`).
    pub options: ModelOptions,
    /// Typed syntax per stage, in the model's order (`stages[i].commands[k]` is `model.stages[i].instructions[k]`).
    pub stages: Vec<instructions::Stage>,
}

/// The variables one instruction is evaluated with (those that have a value), as `NAME=VALUE` pairs in declaration
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstructionScope {
    pub line: usize,
    pub vars: Vec<(String, String)>,
}

fn model_platform(p: &Platform) -> model::Platform {
    model::Platform {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: p.variant.clone().unwrap_or_default(),
    }
}

/// The model options a build uses: its build args (and `SOURCE_DATE_EPOCH`, which a reproducible build sets as
/// BuildKit does when given that build arg), target and platforms. The editor's scope view uses the same.
pub fn model_options(opts: &BuildOptions) -> ModelOptions {
    let mut build_args = opts.build_args.clone();
    if !opts.keep_mtimes {
        build_args
            .entry("SOURCE_DATE_EPOCH".into())
            .or_insert_with(|| opts.source_date_epoch.to_string());
    }
    ModelOptions {
        build_args,
        target: opts.target.clone(),
        target_platform: Some(model_platform(&opts.platform)),
        build_platform: Some(model_platform(&opts.build_platform)),
    }
}

/// Parse and check a Dockerfile without building (errors name `file:line:column`).
pub fn plan(opts: &BuildOptions) -> Result<Plan, Error> {
    let in_file = |e| Error::Dockerfile {
        file: opts.dockerfile_name.clone(),
        source: e,
    };
    let dockerfile = parser::parse(&opts.dockerfile).map_err(in_file)?;
    let (stages, _) = instructions::parse_stages(&dockerfile).map_err(in_file)?;
    if stages.is_empty() {
        return Err(Error::Step {
            file: opts.dockerfile_name.clone(),
            line: 1,
            kind: StepError::NoFrom,
        });
    }
    let options = model_options(opts);
    let model = Model::build(&dockerfile, &options).map_err(|e| match e {
        lw_dockerfile::Error::UnknownTarget { target } => Error::Step {
            file: opts.dockerfile_name.clone(),
            line: 1,
            kind: StepError::UnknownTarget(target),
        },
        e => in_file(e),
    })?;
    debug_assert_eq!(model.stages.len(), stages.len());
    Ok(Plan {
        dockerfile,
        model,
        options,
        stages,
    })
}

impl Plan {
    /// The stage being built.
    pub fn target(&self) -> usize {
        self.model.target
    }

    /// The stage `name` (by name or index) refers to from stage `before`: only earlier stages count.
    pub fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        self.model.stage_index(name).filter(|&i| i < before)
    }

    /// The stage's name (lower-cased, as BuildKit matches it).
    pub fn stage_name(&self, index: usize) -> Option<String> {
        self.model.stages[index].name.clone()
    }

    /// The stages the target needs (ascending): the model's dependency edges (`FROM <stage>`, `COPY --from`,
    /// `RUN --mount=from=`), plus what the ONBUILD triggers of an image base read from (`ONBUILD COPY
    /// --from=helper`): BuildKit resolves the base first, so a stage only a trigger uses is built. A base that does
    /// not resolve fails later, in its own step.
    pub fn needed(&self, images: &mut dyn ImageSource, platform: &Platform) -> BTreeSet<usize> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![self.target()];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            let stage = &self.model.stages[i];
            for d in &stage.deps {
                if let BaseRef::Stage(j) = d.target {
                    todo.extend((j < i).then_some(j));
                }
            }
            if let BaseRef::Image(base) = &stage.base {
                let platform = match &stage.platform {
                    None => Some(platform.clone()),
                    Some(p) => Platform::parse(p).ok(),
                };
                for f in trigger_froms(images, base, platform) {
                    // Global ARGs may name the stage (`--from=${BUILDER}`).
                    let lexer = Lexer::new(self.dockerfile.escape() as char);
                    let f = lexer
                        .process_word(&f, &self.model.global_scope)
                        .unwrap_or(f);
                    todo.extend(self.stage_ref(&f, i));
                }
            }
        }
        needed
    }

    /// The scope of every instruction (global ARGs, each stage's FROM and body) in file order: the variables with
    /// values it is expanded with, from the model. The engine adds only what the model cannot know: the ENV of an
    /// image base and the effects of its ONBUILD triggers.
    pub fn scopes(&self) -> Vec<InstructionScope> {
        self.model
            .instructions()
            .map(|i| InstructionScope {
                line: i.start_line,
                vars: i.scope.word_env(),
            })
            .collect()
    }
}

/// The stages or images an instruction reads from: `COPY --from`, `RUN --mount=from=`.
fn command_froms(c: &Instruction) -> Vec<String> {
    match c {
        Instruction::Copy(c) if !c.from.is_empty() => vec![c.from.clone()],
        Instruction::Run(r) => r
            .mounts
            .iter()
            .flat_map(|m| run_mounts::mount_fields(m))
            .filter(|(k, _)| k == "from")
            .filter_map(|(_, v)| v)
            .collect(),
        _ => vec![],
    }
}

/// What the ONBUILD triggers of image `base` read from (nothing when it does not resolve or has none).
fn trigger_froms(
    images: &mut dyn ImageSource,
    base: &str,
    platform: Option<Platform>,
) -> Vec<String> {
    let Some(img) = platform.and_then(|p| images.resolve(base, &p).ok()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for t in img.config.config.on_build.iter().flatten() {
        let Ok(df) = parser::parse(t.as_bytes()) else {
            continue;
        };
        for inst in instructions::parse(&df).unwrap_or_default() {
            out.extend(command_froms(&inst));
        }
    }
    out
}
