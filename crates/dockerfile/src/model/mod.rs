//! The semantic model of a Dockerfile: stages, ARG/ENV scoping, predefined ARGs, the
//! expanded words of every instruction, and the stage dependency graph.
//!
//! It follows BuildKit's rules: ARGs before the first `FROM` are global and visible only
//! to `FROM` lines unless a stage redeclares them; ENV persists across a stage and into
//! child stages (`FROM <stage>`), and so do a stage's ARG values (BuildKit carries the
//! parent's build state, although the reference says ARGs end with their stage); ARG and ENV assign
//! the same state environment, so the later one of a name wins (BuildKit, not the reference's
//! "ENV always wins"); stage names
//! are matched case-insensitively; the automatic platform ARGs are in the global scope.

mod build;
mod platform;
mod scope;

use std::collections::BTreeMap;

use serde::Serialize;

pub use platform::{is_predefined_arg, platform_args, Platform, PLATFORM_ARGS, PROXY_ARGS};
pub use scope::{Scope, Var, VarKind};

use crate::parser::{Dockerfile, Span};
use crate::Error;

/// What the caller knows about the build.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// `--build-arg NAME=VALUE` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// The platform the image is built for (default: the build platform).
    pub target_platform: Option<Platform>,
    /// The platform the build runs on (default: `linux/amd64`).
    pub build_platform: Option<Platform>,
}

/// What a stage's `FROM` (or a `--from`) refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum BaseRef {
    /// `scratch`: an empty filesystem.
    Scratch,
    /// Another stage of this Dockerfile, by index.
    Stage(usize),
    /// An image reference (as expanded, not normalised).
    Image(String),
}

/// How one stage depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DepKind {
    /// `FROM <stage>`.
    Base,
    /// `COPY --from=<stage>` (or ADD).
    CopyFrom,
    /// `RUN --mount=from=<stage>`.
    MountFrom,
}

/// An edge of the stage graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageDep {
    pub kind: DepKind,
    pub target: BaseRef,
    /// The line of the instruction that creates the edge.
    pub line: usize,
}

/// A `--flag[=value]` of an instruction, with the value expanded where BuildKit does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
    /// The value as written.
    pub raw: Option<String>,
}

/// A `KEY=VALUE` pair of ARG, ENV or LABEL, expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    /// `None` for `ARG NAME` without a default.
    pub value: Option<String>,
    /// The pair used the legacy `KEY VALUE` form (ENV/LABEL).
    pub legacy: bool,
}

/// One instruction with its expanded words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// Lower-cased keyword.
    pub keyword: String,
    /// Index into [`Dockerfile::children`].
    pub node: usize,
    pub start_line: usize,
    pub end_line: usize,
    pub flags: Vec<Flag>,
    /// The arguments: expanded for the instructions that expand (see
    /// [`crate::shell::expands`]), as written otherwise.
    pub words: Vec<String>,
    /// ARG/ENV/LABEL pairs.
    pub pairs: Vec<KeyValue>,
    /// Whether `words` went through variable expansion.
    pub expanded: bool,
    /// Exec (JSON) form.
    pub json: bool,
    /// Variables referenced but not set while expanding.
    pub unmatched: Vec<String>,
    /// An expansion or semantic error (BuildKit would fail here).
    pub error: Option<String>,
    /// The variables in scope when the instruction is evaluated.
    #[serde(skip)]
    pub scope: Scope,
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    /// The name after `AS`, lower-cased as BuildKit does.
    pub name: Option<String>,
    /// The name as written.
    pub name_raw: Option<String>,
    /// The image word as written.
    pub base_raw: String,
    /// The image word expanded with the global scope.
    pub base_name: String,
    pub base: BaseRef,
    /// `--platform` as written and expanded.
    pub platform_raw: Option<String>,
    pub platform: Option<String>,
    /// The `FROM` instruction.
    pub from: Instruction,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
    pub deps: Vec<StageDep>,
    /// The variables in scope after the last instruction.
    #[serde(skip)]
    pub final_scope: Scope,
    pub span: Span,
}

impl Stage {
    /// The variables in scope after instruction `k` of the body (what the next one sees).
    pub fn scope_after(&self, k: usize) -> &Scope {
        self.instructions
            .get(k + 1)
            .map_or(&self.final_scope, |i| &i.scope)
    }

    /// The value ARG instruction `k` gives `name`: the build arg, its default, the global
    /// value, or a value already in the state (`None` when none of them sets it).
    pub fn arg_value(&self, k: usize, name: &str) -> Option<String> {
        let line = self.instructions.get(k)?.start_line;
        self.scope_after(k)
            .vars
            .iter()
            .rev()
            .find(|v| v.name == name && v.kind == VarKind::Arg && v.line == line)?
            .value
            .clone()
    }
}

/// The model of a whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    /// The `ARG`s (and any stray instructions) before the first `FROM`.
    pub global_instructions: Vec<Instruction>,
    /// The global scope `FROM` lines are expanded with (platform ARGs, then global ARGs).
    #[serde(skip)]
    pub global_scope: Scope,
    pub stages: Vec<Stage>,
    /// The index of the stage being built.
    pub target: usize,
    pub target_platform: Platform,
    pub build_platform: Platform,
}

impl Model {
    /// Builds the model. Fails like BuildKit on a malformed `FROM` (argument count, stage
    /// name), an instruction other than ARG before the first `FROM`, a file without
    /// `FROM`, or an unknown `options.target` (the error names it). Expansion errors are
    /// not fatal: they are recorded in [`Instruction::error`].
    pub fn build(df: &Dockerfile, options: &ModelOptions) -> Result<Model, Error> {
        build::build(df, options)
    }

    /// The stage named `name` (case-insensitive) or with that index.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(s) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&lower))
        {
            return Some(s.index);
        }
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < self.stages.len())
    }

    /// The stages needed to build `target` (default: the model's target), in index order.
    /// BuildKit skips the others.
    pub fn needed_stages(&self, target: Option<&str>) -> Result<Vec<usize>, Error> {
        let start = match target {
            Some(t) => self
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
                .map(|s| s.index)
                .ok_or_else(|| Error::UnknownTarget { target: t.into() })?,
            None => self.target,
        };
        let mut seen = vec![false; self.stages.len()];
        let mut todo = vec![start];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            for d in &self.stages[i].deps {
                if let BaseRef::Stage(j) = d.target {
                    todo.push(j);
                }
            }
        }
        Ok((0..self.stages.len()).filter(|&i| seen[i]).collect())
    }

    /// Every instruction (global ones, then each stage's FROM and body) in file order.
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.global_instructions.iter().chain(
            self.stages
                .iter()
                .flat_map(|s| std::iter::once(&s.from).chain(s.instructions.iter())),
        )
    }

    /// The instruction covering 1-based `line`.
    pub fn instruction_at(&self, line: usize) -> Option<&Instruction> {
        self.instructions()
            .find(|i| i.start_line <= line && line <= i.end_line)
    }

    /// The stage a line belongs to (from its `FROM` to the next one).
    pub fn stage_at(&self, line: usize) -> Option<&Stage> {
        self.stages.iter().rev().find(|s| s.from.start_line <= line)
    }

    /// The ARG/ENV values in scope at 1-based `line`: inside an instruction, those it is
    /// evaluated with; between instructions, those after the previous one.
    pub fn scope_at(&self, line: usize) -> Scope {
        if let Some(i) = self.instruction_at(line) {
            return i.scope.clone();
        }
        let Some(stage) = self.stage_at(line) else {
            return self.global_scope.clone();
        };
        // Between instructions: the scope before the next one of the stage, if any.
        match stage.instructions.iter().find(|i| i.start_line > line) {
            Some(next) => next.scope.clone(),
            None => stage.final_scope.clone(),
        }
    }

    /// The effective ARG/ENV values at 1-based `line`, one per name, in declaration
    /// order (what a "values at the cursor" view shows; see [`Model::scope_at`]).
    pub fn values_at(&self, line: usize) -> Vec<Var> {
        self.scope_at(line)
            .effective()
            .into_iter()
            .cloned()
            .collect()
    }
}
