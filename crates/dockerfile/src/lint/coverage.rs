//! Rules that cover hadolint's checks we had no equivalent for: version pinning per
//! package manager, wget's progress output, wget next to curl, and COPY pitfalls
//! (a whole filesystem from a stage, a relative destination without WORKDIR, `--from`
//! naming no stage). Each says in `rules.rs` which hadolint code it stands for.

use super::baseimg;
use super::runfacts::{self, prog_sub};
use super::shellscan::{commands, valued_options, Cmd};
use super::shellvars::{Expanded, Vars};
use super::Range;
use crate::lint::context::Ctx;
use crate::model::{Instruction, Scope, Stage};

pub(crate) fn run(cx: &mut Ctx) {
    let model = cx.model;
    let mut tools_seen: (bool, bool) = (false, false);
    let mut both_reported = false;
    for stage in &model.stages {
        let mut workdir = baseimg::parent(cx, stage).is_some_and(|_| inherited_workdir(cx, stage))
            || baseimg::config(cx, stage).is_some_and(|k| k.image.working_dir.is_some());
        for ins in &stage.instructions {
            let node = &cx.df.children[ins.node];
            let range = cx.node_range(node);
            match ins.keyword.as_str() {
                "run" => {
                    let cmds = commands(cx, node);
                    pins(cx, &cmds, &ins.scope, range);
                    for c in &cmds {
                        match c.program() {
                            Some("wget") => {
                                wget_progress(cx, c, range);
                                tools_seen.0 = true;
                            }
                            Some("curl") => tools_seen.1 = true,
                            _ => continue,
                        }
                        if tools_seen.0 && tools_seen.1 && !both_reported {
                            both_reported = true;
                            cx.report(
                                "LW039",
                                range,
                                "Both wget and curl are used; one download tool is enough".into(),
                                None,
                            );
                        }
                    }
                }
                "workdir" => workdir = true,
                "copy" => copy_rules(cx, stage, ins, range, workdir),
                _ => {}
            }
        }
    }
}

/// Whether a stage this one is built on sets a WORKDIR (or its base image does).
fn inherited_workdir(cx: &Ctx, stage: &Stage) -> bool {
    super::buildkit::parent_sets_workdir(cx, stage)
        || baseimg::config(cx, stage).is_some_and(|k| k.image.working_dir.is_some())
}

fn copy_rules(cx: &mut Ctx, stage: &Stage, ins: &Instruction, range: Range, workdir: bool) {
    if ins.words.len() < 2 || ins.json && ins.words.is_empty() {
        return;
    }
    let from = ins
        .flags
        .iter()
        .find(|f| f.name == "from")
        .and_then(|f| f.value.clone());
    let dest = ins.words.last().cloned().unwrap_or_default();
    let srcs = &ins.words[..ins.words.len() - 1];
    if let Some(from) = &from {
        // Only a stage of this Dockerfile carries its build tools along; an image made to
        // be copied whole (`COPY --from=gloursdocker/docker / /`) is a payload.
        let whole = srcs.iter().any(|s| matches!(s.as_str(), "/" | "/." | "/*"));
        if whole && names_a_stage(cx, stage, from) && !from.contains([':', '/', '@', '$']) {
            cx.report(
                "LW037",
                range,
                format!("COPY --from={from} / copies its whole filesystem (package caches and build tools included); copy only what the image needs"),
                None,
            );
        }
        if !names_a_stage(cx, stage, from) {
            let msg = match super::context::suggest(
                from,
                cx.model.stages.iter().filter_map(|s| s.name.as_deref()),
            ) {
                Some(s) => format!("COPY --from={from} names no stage (did you mean {s}?); it is pulled as the image {from}:latest"),
                None => format!("COPY --from={from} names no stage; it is pulled as the image {from}:latest"),
            };
            cx.report("LW040", range, msg, None);
        }
    }
    let relative = !dest.is_empty()
        && !super::buildkit::is_abs(&dest)
        && !dest.starts_with('$')
        && !dest.starts_with('~');
    if relative && !workdir {
        cx.report(
            "LW038",
            range,
            format!("COPY to the relative path '{dest}' without a WORKDIR: it lands relative to the base image's working directory; set WORKDIR or use an absolute path"),
            None,
        );
    }
}

/// Whether `--from=X` names a stage (or an image reference that is clearly not an
/// alias: a tag, a registry path, a digest or a variable).
fn names_a_stage(cx: &Ctx, stage: &Stage, from: &str) -> bool {
    if from.contains([':', '/', '@', '$']) || from.is_empty() {
        return true;
    }
    if let Ok(i) = from.parse::<usize>() {
        return i < stage.index;
    }
    let lower = from.to_ascii_lowercase();
    cx.model
        .stages
        .iter()
        .any(|s| s.name.as_deref() == Some(&lower))
}

fn wget_progress(cx: &mut Ctx, c: &Cmd, range: Range) {
    let quiet = c.has_arg(|a| {
        a.starts_with("--progress")
            || matches!(
                a,
                "--quiet" | "--no-verbose" | "-nv" | "--output-file" | "--append-output"
            )
            || a.starts_with("--output-file=")
            || a.starts_with("--append-output=")
            || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains(['q', 'o', 'a']))
    });
    if !quiet {
        cx.report(
            "LW036",
            range,
            "wget without --progress (or -q / -nv) fills the build log with a progress bar; use `wget --progress=dot:giga`".into(),
            None,
        );
    }
}

/// The package arguments after the subcommand, skipping options and their values.
fn packages<'c>(c: &'c Cmd, program: &str, sub: &str) -> Vec<&'c str> {
    let valued = valued_options(program);
    let mut out = Vec::new();
    let mut seen_sub = false;
    let args = c.args();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].text.as_str();
        if let Some(target_attached) = redirection(a) {
            // `< list.txt`, `2>/dev/null`: the shell's, not the package manager's.
            i += if target_attached { 1 } else { 2 };
            continue;
        }
        if !seen_sub {
            seen_sub = a == sub;
        } else if valued.contains(&a) {
            i += 1;
        } else if !a.starts_with('-') && !a.is_empty() {
            out.push(a);
        }
        i += 1;
    }
    out
}

/// A redirection word (`<`, `2>`, `>/dev/null`, `&>log`): `Some(true)` when its target
/// is in the same word.
fn redirection(w: &str) -> Option<bool> {
    let rest = w
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches('&');
    let op = ["<<<", ">>", "<<", "<", ">"]
        .iter()
        .find(|op| rest.starts_with(*op))?;
    let target = rest[op.len()..].trim_start_matches('&');
    Some(!target.is_empty())
}

/// A local file or URL: nothing to pin (a VCS URL is judged by its `@ref`, see
/// [`vcs_unpinned`]).
fn not_a_name(p: &str) -> bool {
    p.contains("://")
        || p.starts_with(['.', '/', '~'])
        || [
            ".deb", ".apk", ".rpm", ".whl", ".tar.gz", ".tgz", ".zip", ".gem",
        ]
        .iter()
        .any(|e| p.ends_with(e))
}

fn pins(cx: &mut Ctx, cmds: &[Cmd], scope: &Scope, range: Range) {
    let mut vars = Vars::new(scope);
    for c in cmds {
        pins_of(cx, c, &vars, range);
        vars.record(c);
    }
}

fn pins_of(cx: &mut Ctx, c: &Cmd, vars: &Vars, range: Range) {
    let (p, s) = prog_sub(c);
    let (rule, tool, sub, unpinned): (&str, &str, &str, Vec<String>) = match (p, s) {
        ("apt-get" | "apt", "install") if !runfacts::apt_simulated(c) => {
            ("LW029", p, s, unpinned(c, p, s, vars, |x| x.contains('=')))
        }
        ("apk", "add") => {
            let group = runfacts::system_install(c).and_then(|i| i.virtual_name);
            let mut u = unpinned(c, p, s, vars, |x| x.contains(['=', '<', '>', '~']));
            u.retain(|x| Some(x.as_str()) != group);
            ("LW030", p, s, u)
        }
        ("pip" | "pip3", "install") => ("LW031", p, s, pip_unpinned(c, p, s, vars)),
        // `python -m pip install`: `-m pip` is an option and its value.
        (py, "install")
            if py.starts_with("python") && c.args().get(1).is_some_and(|a| a.text == "pip") =>
        {
            (
                "LW031",
                "pip",
                "install",
                pip_unpinned(c, py, "install", vars),
            )
        }
        ("npm", "install" | "i" | "add") => (
            "LW032",
            p,
            s,
            unpinned(c, p, s, vars, |x| x.trim_start_matches('@').contains('@')),
        ),
        ("gem", "install") if !c.has_arg(|a| a == "-v" || a.starts_with("--version")) => {
            ("LW033", p, s, unpinned(c, p, s, vars, |x| x.contains(':')))
        }
        ("go", "install" | "get") => ("LW034", p, s, unpinned(c, p, s, vars, |x| x.contains('@'))),
        ("dnf" | "yum" | "microdnf", "install") => ("LW035", p, s, {
            let mut u = unpinned(c, p, s, vars, rpm_pinned);
            u.retain(|x| !x.starts_with('@'));
            u
        }),
        _ => return,
    };
    report_unpinned(cx, rule, tool, sub, &unpinned, range);
}

/// `TOOL SUB: pin the versions of a, b, c and N more for reproducible builds`.
fn report_unpinned(
    cx: &mut Ctx,
    rule: &str,
    tool: &str,
    sub: &str,
    unpinned: &[String],
    range: Range,
) {
    if unpinned.is_empty() {
        return;
    }
    let list = unpinned
        .iter()
        .take(3)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let more = if unpinned.len() > 3 {
        format!(" and {} more", unpinned.len() - 3)
    } else {
        String::new()
    };
    cx.report(
        rule,
        range,
        format!("{tool} {sub}: pin the versions of {list}{more} for reproducible builds"),
        None,
    );
}

/// A VCS requirement (`git+https://host/repo.git@v1.2`): pinned by its `@ref` (or npm's
/// `#ref`) after the host; `None` when `p` is not one.
fn vcs_unpinned(p: &str) -> Option<bool> {
    let rest = ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .find_map(|v| p.strip_prefix(v))?;
    let path = rest.split_once("://").map_or(rest, |(_, r)| r);
    let path = path.split_once('/').map_or("", |(_, r)| r);
    Some(!path.contains(['@', '#']))
}

/// The packages a command names that `pinned` does not accept. A `$VAR` is expanded
/// with what the RUN assigned and the ARG/ENV values in scope, and each package it holds
/// is judged; a variable nothing knows (`$PKGS` from a build arg without a default) is
/// left alone.
fn unpinned(c: &Cmd, p: &str, s: &str, vars: &Vars, pinned: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    // Judges `x`; the finding names `shown` (the word as written when a variable only
    // supplies part of one name: `bazel-${BAZEL_VERSION}`).
    let mut judge = |x: &str, shown: &str| {
        let bad = match vcs_unpinned(x) {
            Some(unpinned) => unpinned,
            None => !not_a_name(x) && !pinned(x) && !x.starts_with('-'),
        };
        if bad && !out.iter().any(|o: &String| o == shown) {
            out.push(shown.to_string());
        }
    };
    for w in packages(c, p, s) {
        match vars.expand(w) {
            Expanded::Known(v) if v != w => {
                let names: Vec<&str> = v.split_whitespace().collect();
                let part_of_one = names.len() == 1 && !w.starts_with('$');
                for x in names {
                    judge(x, if part_of_one { w } else { x });
                }
            }
            Expanded::Known(_) | Expanded::Partial => judge(w, w),
            Expanded::Opaque => {}
        }
    }
    out
}

/// `name-1.2.3` (rpm's name-version); `python3-devel` is not pinned.
fn rpm_pinned(p: &str) -> bool {
    p.char_indices()
        .any(|(i, ch)| ch == '-' && p[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// pip's unpinned requirements; `pip` itself counts (`pip install -U pip` installs
/// whatever pip is newest that day).
fn pip_unpinned(c: &Cmd, p: &str, s: &str, vars: &Vars) -> Vec<String> {
    // A requirements or constraints file pins (or is the user's choice).
    if c.has_arg(|a| {
        matches!(
            a,
            "-r" | "-c" | "--constraint" | "--requirement" | "-e" | "--editable"
        ) || a.starts_with("--requirement=")
            || a.starts_with("--constraint=")
    }) {
        return Vec::new();
    }
    unpinned(c, p, s, vars, |x| x.contains(['=', '<', '>', '@', '~']))
}
