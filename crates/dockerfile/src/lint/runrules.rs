//! The rules on one RUN's commands: package-manager hygiene (apt-get, apk, pip, npm, yum),
//! sudo, `cd`, a download piped into an interpreter, and pipes without pipefail.

use super::baseimg;
use super::context::{at, Ctx};
use super::practices::{sub, SHELLS};
use super::runfacts::{self, prog_sub, Mount};
use super::shellscan::{commands, Cmd};
use super::{Edit, Fix, Range};
use crate::model::{Instruction, Stage};
use crate::parser::Node;

/// What the RUN as a whole makes unneeded: a later clean-up or a cache mount makes the
/// per-command cache options moot.
struct Cached {
    pip: bool,
    apk: bool,
}

pub(super) fn run_rules(cx: &mut Ctx, stage: &Stage, ins: &Instruction, node: &Node) {
    let cmds = commands(cx, node);
    if cmds.is_empty() {
        return;
    }
    let range = cx.node_range(node);
    let mounts = runfacts::mounts(ins);
    let cached = Cached {
        pip: cmds.iter().any(runfacts::cleans_pip_cache)
            || mounts.iter().any(|m| {
                m.kind == "cache"
                    && (m.target.ends_with(".cache/pip") || m.target.ends_with("/.cache"))
            }),
        apk: cmds.iter().any(runfacts::cleans_apk_cache)
            || runfacts::mounted(&mounts, "/var/cache/apk")
            || runfacts::mounted(&mounts, "/etc/apk/cache"),
    };
    for k in 0..cmds.len() {
        command_rules(cx, ins, &cmds, k, &cached, range);
    }
    apt_rules(cx, node, &cmds, &mounts, range);
    yum_rule(cx, &cmds, range);
    pipe_rule(cx, stage, ins, &cmds, range);
}

fn prog(c: &Cmd) -> &str {
    c.program().unwrap_or("")
}

/// The rules one command triggers by itself (command `k` of the RUN's `cmds`).
fn command_rules(
    cx: &mut Ctx,
    ins: &Instruction,
    cmds: &[Cmd],
    k: usize,
    cached: &Cached,
    range: Range,
) {
    let c = &cmds[k];
    let p = prog(c);
    let s = sub(c).unwrap_or("");
    if c.wrappers().any(|w| w == "sudo") {
        cx.report(
            "LW016",
            range,
            "Do not use sudo in RUN; use USER to change user".into(),
            None,
        );
    }
    match p {
        "apt-get" => apt_get(cx, c, s, range),
        "apt"
            if matches!(
                s,
                "install" | "update" | "upgrade" | "remove" | "purge" | "autoremove"
            ) =>
        {
            let i = c.program_index().unwrap_or(0);
            let fix = Ctx::fix("Use apt-get", c.words[i].range, "apt-get");
            cx.report(
                "LW023",
                range,
                format!("Use `apt-get {s}` instead of `apt {s}` in scripts"),
                Some(fix),
            );
        }
        "apk" => apk(cx, c, s, cached.apk, range),
        "pip" | "pip3" if s == "install" && !cached.pip => pip(cx, ins, c, range),
        "npm" if matches!(s, "install" | "i") => npm_install(cx, c, s, range),
        // `RUN cd /app && ...` is where WORKDIR belongs; a cd later in a script
        // (`set -eux; ...; cd x`) is the script's own navigation.
        "cd" if k == 0 && !runfacts::temporary_cd(cmds, k) => cx.report(
            "LW015",
            range,
            "Use WORKDIR instead of `cd` in RUN".into(),
            None,
        ),
        "curl" | "wget" if c.op_after.as_deref() == Some("|") => {
            piped_download(cx, p, cmds.get(k + 1), range)
        }
        p if p.starts_with("python") && python_pip_install(c) && !cached.pip => {
            pip(cx, ins, c, range)
        }
        _ => {}
    }
}

fn apt_get(cx: &mut Ctx, c: &Cmd, s: &str, range: Range) {
    match s {
        "install" if !runfacts::apt_simulated(c) => {
            let t = c.subcommand().map(|t| t.range).unwrap_or(range);
            let recommends =
                c.has_arg(|a| a == "--no-install-recommends" || a.contains("Install-Recommends"));
            if !recommends {
                let fix = insert_after(
                    "Add --no-install-recommends",
                    t.end_line,
                    t.end_column,
                    " --no-install-recommends",
                );
                cx.report(
                    "LW004",
                    range,
                    "apt-get install without --no-install-recommends".into(),
                    Some(fix),
                );
            }
            let yes = c.has_arg(|a| {
                a == "--yes"
                    || a == "--assume-yes"
                    || a == "-qq"
                    || a.starts_with("--quiet=2")
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains('y'))
            });
            if !yes {
                let fix = insert_after("Add -y", t.end_line, t.end_column, " -y");
                cx.report(
                    "LW021",
                    range,
                    "apt-get install without -y".into(),
                    Some(fix),
                );
            }
        }
        "upgrade" | "dist-upgrade" | "full-upgrade" => cx.report(
            "LW022",
            range,
            format!("Avoid `apt-get {s}` in images; use an up-to-date base image"),
            None,
        ),
        _ => {}
    }
}

fn apk(cx: &mut Ctx, c: &Cmd, s: &str, cached: bool, range: Range) {
    if s == "add" && !cached && !c.has_arg(|a| a == "--no-cache" || a == "--no-network") {
        let t = c.subcommand().map(|t| t.range).unwrap_or(range);
        let fix = insert_after("Add --no-cache", t.end_line, t.end_column, " --no-cache");
        cx.report(
            "LW006",
            range,
            "apk add without --no-cache".into(),
            Some(fix),
        );
    }
    if s == "upgrade" {
        cx.report(
            "LW022",
            range,
            "Avoid `apk upgrade` in images; use an up-to-date base image".into(),
            None,
        );
    }
}

fn npm_install(cx: &mut Ctx, c: &Cmd, s: &str, range: Range) {
    let t = c.subcommand().map(|t| t.range).unwrap_or(range);
    let after: Vec<&str> = c
        .args()
        .iter()
        .map(|a| a.text.as_str())
        .skip_while(|a| *a != s)
        .skip(1)
        .collect();
    if after.iter().all(|a| a.starts_with('-')) {
        let fix = Ctx::fix("Use npm ci", t, "ci");
        cx.report(
            "LW020",
            range,
            format!("Use `npm ci` instead of `npm {s}` for reproducible installs"),
            Some(fix),
        );
    }
}

/// `curl ... | sh`: `p` is the downloader, `next` the command it pipes into.
fn piped_download(cx: &mut Ctx, p: &str, next: Option<&Cmd>, range: Range) {
    let Some(next) = next else {
        return;
    };
    let np = prog(next);
    let interp = SHELLS.contains(&np)
        || np.starts_with("python")
        || np == "perl"
        || np == "ruby"
        || np == "node";
    if interp {
        cx.report(
            "LW017",
            range,
            format!("`{p} ... | {np}` runs a downloaded script unverified"),
            None,
        );
    }
}

/// LW003 (an index updated and never used) and LW005 (apt lists left in the layer).
fn apt_rules(cx: &mut Ctx, node: &Node, cmds: &[Cmd], mounts: &[Mount], range: Range) {
    let apt_update = cmds.iter().any(|c| prog_sub(c) == ("apt-get", "update"));
    let apt_install = cmds
        .iter()
        .any(|c| prog_sub(c) == ("apt-get", "install") && !runfacts::apt_simulated(c));
    // The index only goes stale if it stays in the layer and nothing (not even a
    // script the RUN runs) used it.
    let lists_gone = cmds.iter().any(runfacts::cleans_apt_lists)
        || runfacts::mounted(mounts, "/var/lib/apt/lists");
    if apt_update
        && !lists_gone
        && !cmds
            .iter()
            .any(|c| runfacts::reads_apt_index(c) || runfacts::runs_script(c))
    {
        cx.report(
            "LW003",
            range,
            "`apt-get update` without `apt-get install` in the same RUN: the cached index goes stale".into(),
            None,
        );
    }
    if apt_install && !lists_gone {
        let fix = append_fix(
            cx,
            node,
            " && rm -rf /var/lib/apt/lists/*",
            "Remove the apt lists",
        );
        cx.report(
            "LW005",
            range,
            "apt-get install without `rm -rf /var/lib/apt/lists/*` in the same RUN".into(),
            fix,
        );
    }
}

fn yum_rule(cx: &mut Ctx, cmds: &[Cmd], range: Range) {
    let yum = |c: &Cmd| matches!(prog(c), "yum" | "dnf" | "microdnf");
    let install = cmds.iter().any(|c| yum(c) && sub(c) == Some("install"));
    let cleaned = cmds.iter().any(|c| yum(c) && sub(c) == Some("clean"));
    if install && !cleaned {
        cx.report(
            "LW024",
            range,
            "yum/dnf install without `clean all` in the same RUN".into(),
            None,
        );
    }
}

/// LW012: a pipe whose failures the shell ignores.
fn pipe_rule(cx: &mut Ctx, stage: &Stage, ins: &Instruction, cmds: &[Cmd], range: Range) {
    // A pipe from `echo`/`printf` (or a `{ }` group of them) cannot hide a failure,
    // and `yes` always dies of SIGPIPE (pipefail would make it fail the build).
    let has_pipe = cmds.iter().enumerate().any(|(k, c)| {
        c.op_after.as_deref() == Some("|")
            && !runfacts::prints_only(cmds, k)
            && !runfacts::case_pattern(cmds, k)
    });
    let pipefail = cmds
        .iter()
        .any(|c| prog(c) == "set" && c.has_arg(|a| a.contains("pipefail")));
    if has_pipe && !pipefail && !shell_handles_pipes(cx, stage, ins.start_line) {
        cx.report(
            "LW012",
            range,
            "RUN uses a pipe without `set -o pipefail`: a failure before the last command is ignored".into(),
            None,
        );
    }
}

/// Whether SHELL in this stage (or a parent stage) sets pipefail, or is not a POSIX shell.
fn shell_handles_pipes(cx: &Ctx, stage: &Stage, line: usize) -> bool {
    let mut cur = Some(stage);
    let mut hops = 0;
    while let Some(s) = cur {
        if let Some(sh) = s
            .instructions
            .iter()
            .rev()
            .find(|i| i.keyword == "shell" && i.start_line < line)
        {
            let prog = sh
                .words
                .first()
                .map(|w| w.rsplit('/').next().unwrap_or(""))
                .unwrap_or("");
            return sh.words.iter().any(|w| w.contains("pipefail")) || !SHELLS.contains(&prog);
        }
        cur = baseimg::parent(cx, s).filter(|_| hops < cx.model.stages.len());
        hops += 1;
    }
    false
}

/// `python -m pip install ...`.
fn python_pip_install(c: &Cmd) -> bool {
    let a = c.args();
    a.len() >= 3 && a[0].text == "-m" && a[1].text == "pip" && a[2].text == "install"
}

fn pip(cx: &mut Ctx, ins: &Instruction, c: &Cmd, range: Range) {
    if c.has_arg(|a| a == "--no-cache-dir") || ins.scope.lookup("PIP_NO_CACHE_DIR").is_some() {
        return;
    }
    let t = c
        .args()
        .iter()
        .find(|a| a.text == "install")
        .map(|t| t.range)
        .unwrap_or(range);
    let fix = insert_after(
        "Add --no-cache-dir",
        t.end_line,
        t.end_column,
        " --no-cache-dir",
    );
    cx.report(
        "LW019",
        range,
        "pip install without --no-cache-dir".into(),
        Some(fix),
    );
}

/// Appends text at the end of a one-command-line RUN (not for heredocs or a line that
/// ends in a comment).
fn append_fix(cx: &Ctx, node: &Node, text: &str, desc: &str) -> Option<Fix> {
    if !node.heredocs.is_empty() || node.json {
        return None;
    }
    let last = cx.line(node.end_line);
    let end = last.iter().rposition(|c| !c.is_ascii_whitespace())? + 1;
    if last.contains(&b'#') || last[end - 1] == cx.df.escape() {
        return None;
    }
    Some(insert_after(desc, node.end_line, end + 1, text))
}

/// An insertion fix right after a token.
fn insert_after(desc: &str, line: usize, column: usize, text: &str) -> Fix {
    Fix {
        description: desc.into(),
        edits: vec![Edit {
            range: at(line, column),
            replacement: text.into(),
        }],
    }
}
