//! BuildKit's build checks (the 21 rules documented at
//! https://docs.docker.com/go/dockerfile/rule/), with BuildKit's messages.

use super::baseimg;
use super::context::{go_quote, suggest, Ctx};
use super::dockerignore::IgnoreList;
use super::{reference, Edit, Fix, Range, Severity};
use crate::model::{Instruction, Platform, Stage, VarKind};
use crate::parser::Node;
use crate::shell::{EnvList, Lexer};

fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
}

pub(crate) fn run(cx: &mut Ctx) {
    let df = cx.df;
    let model = cx.model;
    consistent_casing(cx);
    empty_continuation(cx);
    for node in &df.children {
        if node.keyword() == "maintainer" {
            maintainer(cx, node);
        }
    }
    for ins in &model.global_instructions {
        let node = &df.children[ins.node];
        if ins.keyword == "arg" {
            let keys: Vec<&str> = ins.pairs.iter().map(|p| p.key.as_str()).collect();
            definition_description(cx, node, "ARG", &keys);
        }
    }
    let mut names: Vec<String> = Vec::new();
    for stage in &model.stages {
        from_rules(cx, stage, &mut names);
        stage_rules(cx, stage);
    }
}

fn consistent_casing(cx: &mut Ctx) {
    // Global ARGs (before the first FROM) belong to no stage and are not counted.
    let first_from = cx
        .df
        .children
        .iter()
        .position(|n| n.keyword() == "from")
        .unwrap_or(0);
    let nodes = &cx.df.children[first_from..];
    let is_lower = |n: &Node| n.value.iter().all(|c| !c.is_ascii_uppercase());
    let is_upper = |n: &Node| n.value.iter().all(|c| !c.is_ascii_lowercase());
    let lower = nodes.iter().filter(|n| is_lower(n)).count();
    let upper_n = nodes.iter().filter(|n| is_upper(n)).count();
    let majority_lower = lower > upper_n;
    for n in nodes {
        let bad = if majority_lower {
            !is_lower(n)
        } else {
            !is_upper(n)
        };
        if bad {
            let kw = String::from_utf8_lossy(&n.value).to_string();
            let fixed = if majority_lower {
                kw.to_ascii_lowercase()
            } else {
                upper(&kw)
            };
            let casing = if majority_lower {
                "lowercase"
            } else {
                "uppercase"
            };
            let r = cx.keyword_range(n);
            let fix = Ctx::fix("Change the keyword's casing", r, fixed);
            cx.report(
                "ConsistentInstructionCasing",
                cx.node_range(n),
                format!("Command '{kw}' should match the case of the command majority ({casing})"),
                Some(fix),
            );
        }
    }
}

fn empty_continuation(cx: &mut Ctx) {
    for w in &cx.df.warnings {
        if !w.url.ends_with("/no-empty-continuation/") {
            continue;
        }
        let Some(node) = cx
            .df
            .children
            .iter()
            .find(|n| n.start_line <= w.line && w.line <= n.end_line)
        else {
            continue;
        };
        let mut edits = Vec::new();
        if node.heredocs.is_empty() {
            for l in node.start_line + 1..node.end_line {
                if cx.line(l).iter().all(|c| c.is_ascii_whitespace()) {
                    edits.push(Edit {
                        range: Range {
                            start_line: l,
                            start_column: 1,
                            end_line: l + 1,
                            end_column: 1,
                        },
                        replacement: String::new(),
                    });
                }
            }
        }
        let fix = (!edits.is_empty()).then(|| Fix {
            description: "Remove the empty continuation lines".into(),
            edits,
        });
        let range = Range {
            start_line: w.line,
            start_column: 1,
            end_line: w.line,
            end_column: cx.line(w.line).len() + 1,
        };
        cx.report(
            "NoEmptyContinuation",
            range,
            "Empty continuation line".into(),
            fix,
        );
    }
}

fn maintainer(cx: &mut Ctx, node: &Node) {
    let mut fix = None;
    if node.start_line == node.end_line {
        let author = node.args_lossy().join(" ");
        let esc = author
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        let kw = if node.value.iter().any(|c| c.is_ascii_lowercase()) {
            "label"
        } else {
            "LABEL"
        };
        let text = cx.line(node.start_line);
        let end = text
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(1, |i| i + 2);
        let r = Range {
            end_column: end,
            ..cx.keyword_range(node)
        };
        fix = Some(Ctx::fix(
            "Use the org.opencontainers.image.authors label",
            r,
            format!("{kw} org.opencontainers.image.authors=\"{esc}\""),
        ));
    }
    cx.report(
        "MaintainerDeprecated",
        cx.node_range(node),
        "Maintainer instruction is deprecated in favor of using label".into(),
        fix,
    );
}

fn from_rules(cx: &mut Ctx, stage: &Stage, names: &mut Vec<String>) {
    let node = &cx.df.children[stage.from.node];
    let range = cx.node_range(node);
    from_as_casing(cx, node, range);
    stage_name_rules(cx, stage, node, range, names);
    from_arg_rules(cx, stage, range);
    platform_rules(cx, stage, node, range);
}

/// FromAsCasing: `FROM x AS y` with the two keywords cased differently.
fn from_as_casing(cx: &mut Ctx, node: &Node, range: Range) {
    let args = node.args_lossy();
    if args.len() == 3 {
        let (from_kw, as_kw) = (
            String::from_utf8_lossy(&node.value).to_string(),
            args[1].clone(),
        );
        let from_up = from_kw == upper(&from_kw);
        let from_low = from_kw == from_kw.to_ascii_lowercase();
        let as_up = as_kw == upper(&as_kw);
        let as_low = as_kw == as_kw.to_ascii_lowercase();
        if (from_up && !as_up) || (from_low && !as_low) {
            let fixed = if from_up {
                upper(&as_kw)
            } else {
                as_kw.to_ascii_lowercase()
            };
            let fix = cx
                .find_word(node, &as_kw, usize::MAX)
                .map(|r| Ctx::fix("Match the casing of FROM", r, fixed));
            cx.report(
                "FromAsCasing",
                range,
                format!("'{as_kw}' and '{from_kw}' keywords' casing do not match"),
                fix,
            );
        }
    }
}

/// StageNameCasing, DuplicateStageName, ReservedStageName and the stage's description check; `names` collects
/// the stage names seen so far.
fn stage_name_rules(
    cx: &mut Ctx,
    stage: &Stage,
    node: &Node,
    range: Range,
    names: &mut Vec<String>,
) {
    if let (Some(raw), Some(name)) = (&stage.name_raw, &stage.name) {
        if raw != name {
            let fix = stage_rename_fix(cx, stage, node, raw, name);
            cx.report(
                "StageNameCasing",
                range,
                format!("Stage name '{raw}' should be lowercase"),
                fix,
            );
        }
        if names.contains(name) {
            cx.report(
                "DuplicateStageName",
                range,
                format!(
                    "Duplicate stage name {}, stage names should be unique",
                    go_quote(name)
                ),
                None,
            );
        }
        names.push(name.clone());
        if name == "scratch" || name == "context" {
            cx.report(
                "ReservedStageName",
                range,
                format!(
                    "Stage name should not use the same name as reserved stage {}",
                    go_quote(name)
                ),
                None,
            );
        }
        definition_description(cx, node, "FROM", &[name.as_str()]);
    }
}

/// UndefinedArgInFrom (names looked up while expanding FROM that no global ARG declares) and
/// InvalidDefaultArgInFrom (the image name with only the ARG defaults).
fn from_arg_rules(cx: &mut Ctx, stage: &Stage, range: Range) {
    let global = &cx.model.global_scope;
    for name in &stage.from.unmatched {
        if global.is_declared(name) {
            continue;
        }
        let mut msg = format!("FROM argument '{name}' is not declared");
        if let Some(s) = suggest(name, global.vars.iter().map(|v| v.name.as_str())) {
            msg.push_str(&format!(" (did you mean {s}?)"));
        }
        cx.report("UndefinedArgInFrom", range, msg, None);
    }
    {
        let mut env = EnvList::new();
        for v in &global.vars {
            if v.kind == VarKind::Platform {
                env.push(v.name.clone(), v.value.clone().unwrap_or_default());
            }
        }
        for ins in &cx.model.global_instructions {
            for p in &ins.pairs {
                if let Some(d) = &p.value {
                    env.push(p.key.clone(), d.clone());
                }
            }
        }
        let lex = Lexer::new(cx.df.escape() as char);
        let valid = match lex.process_word(&stage.base_raw, &env) {
            Ok(v) => reference::is_valid(&v),
            Err(_) => false,
        };
        if !valid {
            cx.report(
                "InvalidDefaultArgInFrom",
                range,
                format!(
                    "Default value for ARG {} results in empty or invalid base image name",
                    stage.base_raw
                ),
                None,
            );
        }
    }
}

/// RedundantTargetPlatform and FromPlatformFlagConstDisallowed: FROM's `--platform` value.
fn platform_rules(cx: &mut Ctx, stage: &Stage, node: &Node, range: Range) {
    let global = &cx.model.global_scope;
    if let Some(raw) = &stage.platform_raw {
        let lex = Lexer::new(cx.df.escape() as char);
        if let Ok(m) = lex.process_word_with_matches(raw, global) {
            let target = global
                .lookup("TARGETPLATFORM")
                .and_then(|v| v.value.clone());
            let only_target = m.matched.len() == 1
                && m.unmatched.is_empty()
                && m.matched.contains("TARGETPLATFORM");
            if only_target && target.as_deref() == Some(m.value.as_str()) {
                let fix = platform_flag_range(cx, node)
                    .map(|r| Ctx::fix("Remove the --platform flag", r, ""));
                cx.report(
                    "RedundantTargetPlatform",
                    range,
                    format!("Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"),
                    fix,
                );
            }
            if m.matched.is_empty() && m.unmatched.is_empty() {
                if let Ok(p) = Platform::parse(&m.value) {
                    let name = stage.name.clone().unwrap_or_default();
                    if !name.contains(&p.os) && !name.contains(&p.architecture) {
                        cx.report(
                            "FromPlatformFlagConstDisallowed",
                            range,
                            format!(
                                "FROM --platform flag should not use constant value {}",
                                go_quote(&m.value)
                            ),
                            None,
                        );
                    }
                }
            }
        }
    }
}

/// Lower-cases a stage name where it is declared and where later instructions refer to
/// it with the same spelling (`FROM Name`, `--from=Name`).
fn stage_rename_fix(cx: &Ctx, stage: &Stage, node: &Node, raw: &str, name: &str) -> Option<Fix> {
    let decl = cx.find_word(node, raw, usize::MAX)?;
    let mut edits = vec![Edit {
        range: decl,
        replacement: name.to_string(),
    }];
    for s in cx.model.stages.iter().filter(|s| s.index > stage.index) {
        if s.base_raw == raw {
            let n = &cx.df.children[s.from.node];
            if let Some(r) = cx.find_word(n, raw, 0) {
                edits.push(Edit {
                    range: r,
                    replacement: name.to_string(),
                });
            }
        }
        for ins in &s.instructions {
            if ins
                .flags
                .iter()
                .any(|f| f.raw.as_deref() == Some(raw) && f.name == "from")
            {
                let n = &cx.df.children[ins.node];
                let word = format!("--from={raw}");
                if let Some(r) = cx.find_word(n, &word, 0) {
                    edits.push(Edit {
                        range: r,
                        replacement: format!("--from={name}"),
                    });
                }
            }
        }
    }
    Some(Fix {
        description: "Lower-case the stage name and its references".into(),
        edits,
    })
}

/// The `--platform=...` flag plus the blanks after it.
fn platform_flag_range(cx: &Ctx, node: &Node) -> Option<Range> {
    let i = node
        .flags_lossy()
        .iter()
        .position(|f| f.to_ascii_lowercase().starts_with("--platform"))?;
    let p = *node.flag_positions.get(i)?;
    let text = cx.line(p.line);
    let mut j = p.column.saturating_sub(1);
    while j < text.len() && !text[j].is_ascii_whitespace() {
        j += 1;
    }
    while j < text.len() && text[j].is_ascii_whitespace() {
        j += 1;
    }
    Some(Range {
        start_line: p.line,
        start_column: p.column,
        end_line: p.line,
        end_column: j + 1,
    })
}

/// Whether the stage (or a stage it is built on) has a SHELL before `before_line`.
fn has_shell(cx: &Ctx, stage: &Stage, before_line: usize) -> bool {
    let mut cur = Some(stage);
    let mut limit = before_line;
    let mut hops = 0;
    while let Some(s) = cur {
        if s.instructions
            .iter()
            .any(|i| i.keyword == "shell" && i.start_line < limit)
        {
            return true;
        }
        cur = baseimg::parent(cx, s).filter(|_| hops < cx.model.stages.len());
        limit = usize::MAX;
        hops += 1;
    }
    false
}

/// Whether a WORKDIR (absolute or not) is set in the stages this one is built on:
/// BuildKit's `workdirSet`, inherited from a stage base.
pub(crate) fn parent_sets_workdir(cx: &Ctx, stage: &Stage) -> bool {
    let mut cur = stage;
    for _ in 0..cx.model.stages.len() {
        let Some(parent) = baseimg::parent(cx, cur) else {
            return false;
        };
        if parent.instructions.iter().any(|i| i.keyword == "workdir") {
            return true;
        }
        cur = parent;
    }
    false
}

pub(crate) fn is_abs(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// The names the stage's base image is known to define.
fn base_env(cx: &Ctx, stage: &Stage) -> Vec<String> {
    let mut out = vec!["PATH".to_string()];
    if let Some(b) = baseimg::config(cx, stage) {
        out.extend(b.image.env.iter().map(|(k, _)| k.clone()));
    }
    out
}

/// MultipleInstructionsDisallowed: every CMD, ENTRYPOINT or HEALTHCHECK a later one of the
/// same kind in the stage overrides.
fn multiple_instructions(cx: &mut Ctx, stage: &Stage) {
    let df = cx.df;
    for kw in ["cmd", "entrypoint", "healthcheck"] {
        let all: Vec<&Instruction> = stage
            .instructions
            .iter()
            .filter(|i| i.keyword == kw)
            .collect();
        for (k, ins) in all.iter().enumerate().take(all.len().saturating_sub(1)) {
            let node = &df.children[ins.node];
            let later = String::from_utf8_lossy(&df.children[all[k + 1].node].value).to_string();
            let fix = Ctx::fix(
                "Remove the overridden instruction",
                Range {
                    start_line: node.start_line,
                    start_column: 1,
                    end_line: node.end_line + 1,
                    end_column: 1,
                },
                "",
            );
            cx.report(
                "MultipleInstructionsDisallowed",
                cx.node_range(node),
                format!(
                    "Multiple {later} instructions should not be used in the same stage because only the last one will be used"
                ),
                Some(fix),
            );
        }
    }
}

fn stage_rules(cx: &mut Ctx, stage: &Stage) {
    let df = cx.df;
    let mut workdir_set = parent_sets_workdir(cx, stage);
    let known_env = base_env(cx, stage);
    // Whether `known_env` is the base image's whole Env (real config, or no image).
    let env_complete = match baseimg::root_image(cx, stage) {
        None => true,
        Some(_) => baseimg::config(cx, stage).is_some_and(|k| k.complete),
    };
    let ignore = cx.options.dockerignore.as_deref().map(IgnoreList::parse);
    multiple_instructions(cx, stage);
    for ins in &stage.instructions {
        let node = &df.children[ins.node];
        let range = cx.node_range(node);
        match ins.keyword.as_str() {
            "cmd" | "entrypoint" if !node.json && !has_shell(cx, stage, ins.start_line) => {
                let fix = json_fix(cx, node);
                cx.report(
                    "JSONArgsRecommended",
                    range,
                    format!(
                        "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                        String::from_utf8_lossy(&node.value)
                    ),
                    fix,
                );
            }
            "workdir" => {
                // Only the first WORKDIR of the build chain is checked, as BuildKit does;
                // a path from a base image variable whose value is unknown is not judged.
                let path = baseimg::workdir_path(cx, stage, ins, node);
                if let Some(path) = path.filter(|p| !workdir_set && !is_abs(p)) {
                    cx.report(
                        "WorkdirRelativePath",
                        range,
                        format!("Relative workdir {} can have unexpected results if the base image changes", go_quote(&path)),
                        None,
                    );
                }
                workdir_set = true;
            }
            "expose" => expose(cx, ins, node),
            "env" | "label" => legacy(cx, ins, node),
            "arg" => {
                let keys: Vec<&str> = ins.pairs.iter().map(|p| p.key.as_str()).collect();
                definition_description(cx, node, "ARG", &keys);
            }
            "copy" | "add" => {
                if let Some(ig) = &ignore {
                    copy_ignored(cx, ins, node, ig);
                }
            }
            _ => {}
        }
        secrets(cx, ins, node);
        if ins.expanded {
            for name in &ins.unmatched {
                if ins.scope.is_declared(name) || known_env.iter().any(|k| k == name) {
                    continue;
                }
                let mut msg = format!("Usage of undefined variable '${name}'");
                let candidates = ins
                    .scope
                    .vars
                    .iter()
                    .map(|v| v.name.as_str())
                    .chain(known_env.iter().map(|s| s.as_str()));
                if let Some(s) = suggest(name, candidates) {
                    msg.push_str(&format!(" (did you mean ${s}?)"));
                }
                // BuildKit knows the base image's Env; without it the variable may
                // well be defined there, so the finding is only informational.
                let severity = if env_complete {
                    Severity::Warning
                } else {
                    Severity::Info
                };
                cx.report_as("UndefinedVar", severity, range, msg, None);
            }
        }
    }
}

/// `["a", "b"]` for a one-line shell form made of plain words.
fn json_fix(cx: &Ctx, node: &Node) -> Option<Fix> {
    if node.start_line != node.end_line || !node.heredocs.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(cx.line(node.start_line)).to_string();
    let start = node.args_position.column.checked_sub(1)?;
    let cmd = text.get(start..)?.trim_end();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if cmd.is_empty() || !cmd.split_whitespace().all(|w| w.chars().all(plain)) {
        return None;
    }
    let json: Vec<String> = cmd.split_whitespace().map(|w| format!("\"{w}\"")).collect();
    Some(Ctx::fix(
        "Use the exec (JSON) form",
        Range {
            start_line: node.start_line,
            start_column: start + 1,
            end_line: node.start_line,
            end_column: start + cmd.len() + 1,
        },
        format!("[{}]", json.join(", ")),
    ))
}

fn expose(cx: &mut Ctx, ins: &Instruction, node: &Node) {
    let range = cx.node_range(node);
    for w in &ins.words {
        if w.contains(':') {
            let port = w.rsplit(':').next().unwrap_or("").to_string();
            let fix = cx
                .find_word(node, w, 0)
                .map(|r| Ctx::fix("Keep only the container port", r, port));
            cx.report(
                "ExposeInvalidFormat",
                range,
                format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{w}'"),
                fix,
            );
        }
        if let Some((port, proto)) = w.rsplit_once('/') {
            if proto != proto.to_ascii_lowercase() {
                let fixed = format!("{port}/{}", proto.to_ascii_lowercase());
                let fix = cx
                    .find_word(node, w, 0)
                    .map(|r| Ctx::fix("Lower-case the protocol", r, fixed));
                cx.report(
                    "ExposeProtoCasing",
                    range,
                    format!("Defined protocol '{w}' in EXPOSE instruction should be lowercase"),
                    fix,
                );
            }
        }
    }
}

fn legacy(cx: &mut Ctx, ins: &Instruction, node: &Node) {
    if !ins.pairs.iter().any(|p| p.legacy) {
        return;
    }
    let kw = String::from_utf8_lossy(&node.value).to_string();
    let fix = legacy_fix(cx, node);
    cx.report(
        "LegacyKeyValueFormat",
        cx.node_range(node),
        format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format"),
        fix,
    );
}

fn legacy_fix(cx: &Ctx, node: &Node) -> Option<Fix> {
    if node.start_line != node.end_line {
        return None;
    }
    let text = cx.line(node.start_line);
    let mut i = node.args_position.column.checked_sub(1)?;
    let key_start = i;
    while i < text.len() && !text[i].is_ascii_whitespace() {
        i += 1;
    }
    let key_end = i;
    while i < text.len() && text[i].is_ascii_whitespace() {
        i += 1;
    }
    let value_start = i;
    let value_end = text.iter().rposition(|c| !c.is_ascii_whitespace())? + 1;
    if key_end == key_start || value_start >= value_end {
        return None;
    }
    let value = std::str::from_utf8(&text[value_start..value_end]).ok()?;
    if value.contains(['"', '\'', '\\', '`']) {
        return None;
    }
    let line = node.start_line;
    let replacement = if value.contains(char::is_whitespace) {
        format!("=\"{value}\"")
    } else {
        format!("={value}")
    };
    Some(Ctx::fix(
        "Use KEY=VALUE",
        Range {
            start_line: line,
            start_column: key_end + 1,
            end_line: line,
            end_column: value_end + 1,
        },
        replacement,
    ))
}

/// BuildKit's secret-name test: a `_`-separated token names a secret, and none is
/// `public`, `file` or `version`.
fn is_secret_key(key: &str) -> bool {
    const DENY: [&str; 10] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOW: [&str; 3] = ["public", "file", "version"];
    let toks: Vec<String> = key.split('_').map(|t| t.to_ascii_lowercase()).collect();
    // The regexps anchor a token at `_` or an end of the key, so any token can match.
    let any = |list: &[&str]| toks.iter().any(|t| list.contains(&t.as_str()));
    any(&DENY) && !any(&ALLOW)
}

fn secrets(cx: &mut Ctx, ins: &Instruction, node: &Node) {
    let kw = match ins.keyword.as_str() {
        "arg" => "ARG",
        "env" => "ENV",
        _ => return,
    };
    for p in &ins.pairs {
        if is_secret_key(&p.key) {
            cx.report(
                "SecretsUsedInArgOrEnv",
                cx.node_range(node),
                format!(
                    "Do not use ARG or ENV instructions for sensitive data ({kw} {})",
                    go_quote(&p.key)
                ),
                None,
            );
        }
    }
}

fn definition_description(cx: &mut Ctx, node: &Node, instruction: &str, keys: &[&str]) {
    let Some(last) = node.prev_comment.last() else {
        return;
    };
    if keys.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(last);
    let word = text.split(' ').next().unwrap_or("");
    if keys.contains(&word) {
        return;
    }
    let example = if keys.len() > 1 { "<arg_key>" } else { keys[0] };
    cx.report(
        "InvalidDefinitionDescription",
        cx.node_range(node),
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
        None,
    );
}

fn copy_ignored(cx: &mut Ctx, ins: &Instruction, node: &Node, ig: &IgnoreList) {
    if ins.flags.iter().any(|f| f.name == "from") || ins.words.len() < 2 || ig.has_exclusions() {
        return;
    }
    let verb = if ins.keyword == "copy" { "Copy" } else { "Add" };
    for src in &ins.words[..ins.words.len() - 1] {
        if src.starts_with("<<") || src.contains("://") || src.starts_with("git@") {
            continue;
        }
        let cleaned = crate::lint::dockerignore::clean(src);
        let shown = if src.starts_with('/') {
            format!("/{cleaned}")
        } else if cleaned.is_empty() {
            ".".into()
        } else {
            cleaned.clone()
        };
        if (cleaned.is_empty() && !ig.ignores_root()) || cleaned.contains(['*', '?', '[']) {
            continue;
        }
        if cleaned.is_empty() || ig.matches(&cleaned) {
            cx.report(
                "CopyIgnoredFile",
                cx.node_range(node),
                format!(
                    "Attempting to {verb} file {} that is excluded by .dockerignore",
                    go_quote(&shown)
                ),
                None,
            );
        }
    }
}
