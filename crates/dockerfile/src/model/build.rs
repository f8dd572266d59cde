//! Building the [`Model`] from parsed nodes: one pass over the instructions, keeping the
//! global scope and each stage's scope as BuildKit's dispatcher does.

use std::collections::BTreeSet;

use super::platform::{platform_args, PROXY_ARGS};
use super::{
    BaseRef, DepKind, Flag, Instruction, KeyValue, Model, ModelOptions, Scope, Stage, StageDep,
    Var, VarKind,
};
use crate::parser::{Dockerfile, Node};
use crate::shell::{expands, Lexer};
use crate::Error;

/// Splits `--name=value` / `--name` flags.
pub(crate) fn split_flag(raw: &str) -> (String, Option<String>) {
    let f = raw.trim_start_matches('-');
    match f.split_once('=') {
        Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
        None => (f.to_ascii_lowercase(), None),
    }
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$` for (lower-cased) stage names.
fn valid_stage_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, '-' | '_' | '.'))
}

/// Splits an ARG word `NAME[=default]`.
pub(crate) fn split_arg(word: &str) -> (String, Option<String>) {
    match word.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (word.to_string(), None),
    }
}

struct Expander {
    lex: Lexer,
}

impl Expander {
    /// Expands one word, collecting unset names and the first error.
    fn word(
        &self,
        w: &str,
        scope: &Scope,
        unmatched: &mut BTreeSet<String>,
        err: &mut Option<String>,
    ) -> String {
        match self.lex.process_word_with_matches(w, scope) {
            Ok(e) => {
                unmatched.extend(e.unmatched);
                e.value
            }
            Err(e) => {
                err.get_or_insert_with(|| e.to_string());
                w.to_string()
            }
        }
    }
}

fn new_instruction(node: &Node, index: usize, scope: &Scope) -> Instruction {
    Instruction {
        keyword: node.keyword(),
        node: index,
        start_line: node.start_line,
        end_line: node.end_line,
        flags: node
            .flags_lossy()
            .iter()
            .map(|f| {
                let (name, value) = split_flag(f);
                Flag {
                    name,
                    raw: value.clone(),
                    value,
                }
            })
            .collect(),
        words: node.args_lossy(),
        pairs: Vec::new(),
        expanded: false,
        json: node.json,
        unmatched: Vec::new(),
        error: None,
        scope: scope.clone(),
    }
}

/// Expands the words and flags of a non-FROM instruction and fills `pairs`.
fn evaluate(ex: &Expander, ins: &mut Instruction, node: &Node) {
    let scope = ins.scope.clone();
    let mut unmatched = BTreeSet::new();
    let mut err = None;
    let kw = ins.keyword.clone();
    match kw.as_str() {
        "arg" => {
            for w in node.args_lossy() {
                // BuildKit's dispatcher expands only the default value, not the name.
                let (key, default) = split_arg(&w);
                let value = default.map(|v| ex.word(&v, &scope, &mut unmatched, &mut err));
                ins.pairs.push(KeyValue {
                    key,
                    value,
                    legacy: false,
                });
            }
        }
        "env" | "label" => {
            let args = node.args_lossy();
            for t in args.chunks(3) {
                let key = ex.word(&t[0], &scope, &mut unmatched, &mut err);
                let value = t
                    .get(1)
                    .map(|v| ex.word(v, &scope, &mut unmatched, &mut err));
                ins.pairs.push(KeyValue {
                    key,
                    value,
                    legacy: t.get(2).is_some_and(|s| s.is_empty()),
                });
            }
        }
        "expose" => {
            let mut words = Vec::new();
            for w in node.args_lossy() {
                // Collect unset names too.
                ex.word(&w, &scope, &mut unmatched, &mut None);
                match ex.lex.process_words(&w, &scope) {
                    Ok(v) => words.extend(v),
                    Err(e) => {
                        err.get_or_insert(e.to_string());
                        words.push(w);
                    }
                }
            }
            ins.words = words;
        }
        _ => {}
    }
    if expands(&kw) && !matches!(kw.as_str(), "expose" | "from") {
        if !(kw == "arg" || kw == "env" || kw == "label") {
            ins.words = node
                .args_lossy()
                .iter()
                .map(|w| ex.word(w, &scope, &mut unmatched, &mut err))
                .collect();
        }
        ins.expanded = true;
    }
    if kw == "expose" {
        ins.expanded = true;
    }
    // Flags BuildKit expands: COPY/ADD --from/--chown/--chmod/--checksum, RUN --mount.
    if matches!(kw.as_str(), "copy" | "add" | "run") {
        for f in &mut ins.flags {
            let expand = matches!(
                f.name.as_str(),
                "from" | "chown" | "chmod" | "checksum" | "mount"
            );
            if let (true, Some(v)) = (expand, &f.value) {
                f.value = Some(ex.word(v, &scope, &mut unmatched, &mut err));
            }
        }
    }
    ins.unmatched = unmatched.into_iter().collect();
    ins.error = err;
}

/// The `from=` of a `--mount` value (`type=cache,from=builder,...`).
pub(crate) fn mount_from(value: &str) -> Option<String> {
    value.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("from")).then(|| v.trim().to_string())
    })
}

/// Applies ARG/ENV effects of an evaluated instruction to the scope.
fn apply(
    ins: &Instruction,
    scope: &mut Scope,
    global: &Scope,
    options: &ModelOptions,
    plat: &[(String, String)],
) {
    match ins.keyword.as_str() {
        "arg" => {
            for p in &ins.pairs {
                let from_global = || global.lookup(&p.key).and_then(|v| v.value.clone());
                let from_platform = || {
                    plat.iter()
                        .find(|(k, _)| *k == p.key)
                        .map(|(_, v)| v.clone())
                };
                let value = options
                    .build_args
                    .get(&p.key)
                    .cloned()
                    .or_else(|| p.value.clone())
                    .or_else(from_global)
                    .or_else(from_platform)
                    // Redeclaring without a value keeps a value already in the state.
                    .or_else(|| scope.lookup(&p.key).and_then(|v| v.value.clone()));
                scope.push(Var {
                    name: p.key.clone(),
                    value,
                    kind: VarKind::Arg,
                    line: ins.start_line,
                });
            }
        }
        "env" => {
            for p in &ins.pairs {
                scope.push(Var {
                    name: p.key.clone(),
                    value: Some(p.value.clone().unwrap_or_default()),
                    kind: VarKind::Env,
                    line: ins.start_line,
                });
            }
        }
        _ => {}
    }
}

/// BuildKit's resolution of a stage reference: a stage name (case-insensitive), `scratch`, the index of another
/// stage, else an image.
fn resolve(names: &[Option<String>], word: &str, current: usize) -> BaseRef {
    let lower = word.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| n.as_deref() == Some(&lower)) {
        return BaseRef::Stage(i);
    }
    if lower == "scratch" {
        return BaseRef::Scratch;
    }
    match word.parse::<usize>() {
        Ok(i) if i < names.len() && i != current => BaseRef::Stage(i),
        _ => BaseRef::Image(word.to_string()),
    }
}

/// `FROM image [AS name]`: one or three arguments, and a valid stage name.
fn check_from(node: &Node, args: &[String]) -> Result<(), Error> {
    let err = |message: String| Error::Parse {
        line: node.start_line,
        column: node.span.start.column,
        message,
    };
    if !(args.len() == 1 || args.len() == 3 && args[1].eq_ignore_ascii_case("as")) {
        return Err(err("FROM requires either one or three arguments".into()));
    }
    match args.get(2) {
        Some(n) if !valid_stage_name(&n.to_ascii_lowercase()) => Err(err(format!(
            "invalid name for build stage: {}, name can't start with a number or contain symbols",
            crate::parser::go_quote(n.as_bytes())
        ))),
        _ => Ok(()),
    }
}

/// What the stages being built share: the expander, the options, the global scope and every stage's name.
struct Ctx<'a> {
    ex: Expander,
    options: &'a ModelOptions,
    global: Scope,
    names: Vec<Option<String>>,
}

/// A `FROM` node: the stage with its base and platform expanded in the global scope, its edge to a parent stage,
/// and the scope it starts with (the parent's ENVs and ARG values, as BuildKit carries them, and proxy args).
fn new_stage(
    cx: &Ctx,
    node: &Node,
    index: usize,
    stages: &[Stage],
) -> Result<(Stage, Scope), Error> {
    let args = node.args_lossy();
    check_from(node, &args)?;
    let stage_index = stages.len();
    let global = &cx.global;
    let mut from = new_instruction(node, index, global);
    let mut unmatched = BTreeSet::new();
    let mut err = None;
    let base_name = cx.ex.word(&args[0], global, &mut unmatched, &mut err);
    let mut platform_raw = None;
    let mut platform = None;
    for f in &mut from.flags {
        if f.name == "platform" {
            if let Some(v) = &f.value {
                platform_raw = Some(v.clone());
                let e = cx.ex.word(v, global, &mut unmatched, &mut err);
                f.value = Some(e.clone());
                platform = Some(e);
            }
        }
    }
    if base_name.is_empty() && err.is_none() {
        err = Some(format!("base name ({}) should not be blank", args[0]));
    }
    from.words = vec![base_name.clone()];
    from.words.extend(args.iter().skip(1).cloned());
    from.expanded = true;
    from.unmatched = unmatched.into_iter().collect();
    from.error = err;
    let base = resolve(&cx.names, &base_name, stage_index);
    let mut deps = Vec::new();
    let mut scope = Scope::default();
    if let BaseRef::Stage(p) = base {
        deps.push(StageDep {
            kind: DepKind::Base,
            target: base.clone(),
            line: node.start_line,
        });
        if let Some(parent) = stages.get(p) {
            for v in &parent.final_scope.vars {
                let kind = match v.kind {
                    VarKind::Env | VarKind::InheritedEnv => VarKind::InheritedEnv,
                    VarKind::Arg | VarKind::InheritedArg => VarKind::InheritedArg,
                    _ => continue,
                };
                scope.push(Var { kind, ..v.clone() });
            }
        }
    }
    for name in PROXY_ARGS {
        if let Some(v) = cx.options.build_args.get(name) {
            scope.push(Var {
                name: name.into(),
                value: Some(v.clone()),
                kind: VarKind::Proxy,
                line: 0,
            });
        }
    }
    let stage = Stage {
        index: stage_index,
        name: cx.names[stage_index].clone(),
        name_raw: (args.len() == 3).then(|| args[2].clone()),
        base_raw: args[0].clone(),
        base_name,
        base,
        platform_raw,
        platform,
        from,
        instructions: Vec::new(),
        deps,
        final_scope: Scope::default(),
        span: node.span,
    };
    Ok((stage, scope))
}

/// An instruction before the first `FROM`: only ARG is allowed; its values join the global scope.
fn global_instruction(cx: &mut Ctx, node: &Node, index: usize) -> Result<Instruction, Error> {
    let mut ins = new_instruction(node, index, &cx.global);
    if node.keyword() != "arg" {
        return Err(Error::Parse {
            line: node.start_line,
            column: node.span.start.column,
            message: "no build stage in current context".into(),
        });
    }
    evaluate(&cx.ex, &mut ins, node);
    for p in &ins.pairs {
        let value = cx
            .options
            .build_args
            .get(&p.key)
            .cloned()
            .or_else(|| p.value.clone());
        cx.global.push(Var {
            name: p.key.clone(),
            value,
            kind: VarKind::GlobalArg,
            line: ins.start_line,
        });
    }
    Ok(ins)
}

/// The edges an instruction adds: `COPY --from`, `RUN --mount=from=`.
fn add_deps(names: &[Option<String>], stage: &mut Stage, ins: &Instruction) {
    for f in &ins.flags {
        let (kind, target) = match (ins.keyword.as_str(), f.name.as_str(), &f.value) {
            ("copy" | "add", "from", Some(v)) => (DepKind::CopyFrom, v.clone()),
            ("run", "mount", Some(v)) => match mount_from(v) {
                Some(t) => (DepKind::MountFrom, t),
                None => continue,
            },
            _ => continue,
        };
        stage.deps.push(StageDep {
            kind,
            target: resolve(names, &target, stage.index),
            line: ins.start_line,
        });
    }
}

pub(super) fn build(df: &Dockerfile, options: &ModelOptions) -> Result<Model, Error> {
    let build_platform = options.build_platform.clone().unwrap_or_default();
    let target_platform = options
        .target_platform
        .clone()
        .unwrap_or_else(|| build_platform.clone());
    let plat = platform_args(&target_platform, &build_platform);
    let mut global = Scope::default();
    for (k, v) in &plat {
        global.push(Var {
            name: k.clone(),
            value: Some(v.clone()),
            kind: VarKind::Platform,
            line: 0,
        });
    }
    // Stage names first, so FROM/--from can name any stage.
    let names: Vec<Option<String>> = df
        .children
        .iter()
        .filter(|n| n.keyword() == "from")
        .map(|n| {
            let a = n.args_lossy();
            (a.len() == 3 && a[1].eq_ignore_ascii_case("as")).then(|| a[2].to_ascii_lowercase())
        })
        .collect();
    let mut cx = Ctx {
        ex: Expander {
            lex: Lexer::new(df.escape() as char),
        },
        options,
        global,
        names,
    };
    let mut global_instructions = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut scope = Scope::default();
    for (index, node) in df.children.iter().enumerate() {
        if node.keyword() == "from" {
            if let Some(prev) = stages.last_mut() {
                prev.final_scope = std::mem::take(&mut scope);
            }
            let (stage, start) = new_stage(&cx, node, index, &stages)?;
            stages.push(stage);
            scope = start;
            continue;
        }
        let Some(stage) = stages.last_mut() else {
            global_instructions.push(global_instruction(&mut cx, node, index)?);
            continue;
        };
        let mut ins = new_instruction(node, index, &scope);
        evaluate(&cx.ex, &mut ins, node);
        apply(&ins, &mut scope, &cx.global, options, &plat);
        add_deps(&cx.names, stage, &ins);
        stage.instructions.push(ins);
    }
    if let Some(prev) = stages.last_mut() {
        prev.final_scope = scope;
    }
    if stages.is_empty() {
        return Err(Error::Parse {
            line: df.end_line.max(1),
            column: 1,
            message: "dockerfile contains no stages to build".into(),
        });
    }
    let target = match &options.target {
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&lower))
                .ok_or_else(|| Error::UnknownTarget { target: t.clone() })?
        }
        None => stages.len() - 1,
    };
    Ok(Model {
        global_instructions,
        global_scope: cx.global,
        stages,
        target,
        target_platform,
        build_platform,
    })
}
