//! Layerwright's own best-practice rules (`LW001`...), after the advice of "Docker
//! Images 101" and hadolint: pinned bases, package-manager hygiene, non-root images,
//! shell pitfalls in RUN, and cache-friendly ordering.

use super::baseimg;
use super::context::Ctx;
use super::shellscan::{commands, Cmd};
use super::stagefacts;
use super::{reference, Fix, Range, Severity};
use crate::model::{BaseRef, Instruction, Stage};
use crate::parser::Node;

pub(super) const SHELLS: [&str; 8] = ["sh", "bash", "zsh", "ash", "dash", "ksh", "busybox", "fish"];
const ARCHIVE_EXT: [&str; 12] = [
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".gz",
    ".bz2", ".xz",
];

pub(crate) fn run(cx: &mut Ctx) {
    let model = cx.model;
    let before = cx.findings.len();
    for stage in &model.stages {
        base_image(cx, stage);
        stage_rules(cx, stage);
    }
    let spans = stagefacts::unshipped_spans(cx);
    let mut k = 0;
    cx.findings.retain(|f| {
        k += 1;
        k <= before
            || !stagefacts::LAYER_SIZE_RULES.contains(&f.rule.as_str())
            || !spans
                .iter()
                .any(|&(a, b)| (a..=b).contains(&f.range.start_line))
    });
    if let Some(stage) = model.stages.get(model.target) {
        final_user(cx, stage);
        stagefacts::build_tools(cx, stage);
    }
    if cx.options.context_has_dockerignore == Some(false) {
        let first = model
            .stages
            .iter()
            .flat_map(|s| s.instructions.iter())
            .find(|i| {
                matches!(i.keyword.as_str(), "copy" | "add")
                    && !i.flags.iter().any(|f| f.name == "from")
            });
        if let Some(ins) = first {
            let node = &cx.df.children[ins.node];
            cx.report(
                "LW013",
                cx.node_range(node),
                "The build context has no .dockerignore: everything in it is sent to the builder and may be copied".into(),
                None,
            );
        }
    }
}

fn base_image(cx: &mut Ctx, stage: &Stage) {
    let BaseRef::Image(img) = baseimg::base_of(stage) else {
        return;
    };
    let r = reference::split(&img);
    if r.digest.is_some() || img.is_empty() {
        return;
    }
    let node = &cx.df.children[stage.from.node];
    // With an ARG in the name, only a tag the default values give is judged: an
    // untagged `$IMAGE` may well carry its tag in the build arg.
    let written = reference::split(&stage.base_raw);
    let from_arg = stage.base_raw.contains('$');
    let pin = pin_fix(cx, stage, node, from_arg);
    match r.tag {
        None if !from_arg => cx.report(
            "LW001",
            cx.node_range(node),
            format!("Base image '{img}' has no tag (it means 'latest'); pin a version"),
            pin,
        ),
        Some("latest") => {
            let how = if from_arg && written.tag != Some("latest") {
                format!(" (from the default value of '{}')", stage.base_raw)
            } else {
                String::new()
            };
            cx.report(
                "LW002",
                cx.node_range(node),
                format!("Base image '{img}' uses the 'latest' tag{how}; pin a specific version"),
                pin,
            )
        }
        _ => {}
    }
}

/// Pins `FROM name` to the digest of the image the caller's store holds under that name
/// (`FROM name@sha256:...`): the image the build would use today, fixed.
fn pin_fix(cx: &Ctx, stage: &Stage, node: &Node, from_arg: bool) -> Option<Fix> {
    if from_arg {
        return None;
    }
    let known = baseimg::config(cx, stage).filter(|k| !k.fallback)?;
    let digest = known.image.digest.clone()?;
    let range = cx.find_word(node, &stage.base_raw, 0)?;
    Some(Ctx::fix(
        "Pin to the digest in your store",
        range,
        format!("{}@{digest}", stage.base_raw),
    ))
}

fn is_run_like(i: &Instruction) -> bool {
    i.keyword == "run"
}

fn stage_rules(cx: &mut Ctx, stage: &Stage) {
    let df = cx.df;
    let mut workdir_set = super::buildkit::parent_sets_workdir(cx, stage);
    let mut relative_seen = false;
    let mut copy_all: Option<&Instruction> = None;
    let mut copy_all_reported = false;
    let mut prev: Option<&Instruction> = None;
    for ins in &stage.instructions {
        let node = &df.children[ins.node];
        let range = cx.node_range(node);
        match ins.keyword.as_str() {
            "run" => {
                super::runrules::run_rules(cx, stage, ins, node);
                if prev.is_some_and(is_run_like) {
                    cx.report(
                        "LW028",
                        range,
                        "Consecutive RUN instructions each add a layer; consider combining them"
                            .into(),
                        None,
                    );
                }
                if let Some(c) = copy_all.filter(|_| !copy_all_reported) {
                    if commands(cx, node).iter().any(is_dependency_install) {
                        let cnode = &df.children[c.node];
                        cx.report(
                            "LW018",
                            cx.node_range(cnode),
                            "`COPY . .` before installing dependencies: any source change invalidates the install cache; copy the manifests first".into(),
                            None,
                        );
                        copy_all_reported = true;
                    }
                }
            }
            "add" => add_rules(cx, ins, node),
            "copy" => {
                let has_from = copy_from_self(cx, stage, ins, range);
                if !has_from && ins.words.len() >= 2 && matches!(ins.words[0].as_str(), "." | "./")
                {
                    copy_all.get_or_insert(ins);
                }
            }
            "cmd" | "entrypoint" => exec_form_vars(cx, ins, node),
            "workdir" => {
                if workdir_set && !relative_seen {
                    relative_seen = relative_workdir(cx, stage, ins, node);
                }
                workdir_set = true;
            }
            "expose" => {
                for w in &ins.words {
                    if !w.contains(':') && !w.contains('$') && !valid_port(w) {
                        cx.report(
                            "LW025",
                            range,
                            format!("EXPOSE '{w}' is not a valid port (1-65535, optionally /tcp, /udp or /sctp)"),
                            None,
                        );
                    }
                }
            }
            "env" | "arg" | "label" => credentials(cx, ins, range),
            _ => {}
        }
        prev = Some(ins);
    }
}

/// LW026: `COPY --from` naming its own stage. Whether the COPY has a `--from` at all (then it is no `COPY . .`).
fn copy_from_self(cx: &mut Ctx, stage: &Stage, ins: &Instruction, range: Range) -> bool {
    let Some(from) = ins
        .flags
        .iter()
        .find(|f| f.name == "from")
        .and_then(|f| f.value.clone())
    else {
        return false;
    };
    let own = stage.name.as_deref() == Some(&from.to_ascii_lowercase())
        || from == stage.index.to_string();
    if own {
        cx.report(
            "LW026",
            range,
            format!("COPY --from={from} refers to the stage it is in"),
            None,
        );
    }
    true
}

/// LW010 for a relative WORKDIR after one was set; whether it reported. BuildKit's WorkdirRelativePath checks
/// only the first WORKDIR; this covers the later relative ones, once per stage (fixing the first relative one
/// usually fixes the rest).
fn relative_workdir(cx: &mut Ctx, stage: &Stage, ins: &Instruction, node: &Node) -> bool {
    let p = baseimg::workdir_path(cx, stage, ins, node);
    let Some(p) = p.filter(|p| !super::buildkit::is_abs(p)) else {
        return false;
    };
    let more = stage
        .instructions
        .iter()
        .filter(|i| i.keyword == "workdir" && i.start_line > ins.start_line)
        .count();
    let tail = if more > 0 {
        " (later WORKDIRs of this stage are not reported again)"
    } else {
        ""
    };
    cx.report(
        "LW010",
        cx.node_range(node),
        format!("WORKDIR '{p}' is relative; use an absolute path{tail}"),
        None,
    );
    true
}

/// LW011: an ENV, ARG or LABEL value that looks like a credential.
fn credentials(cx: &mut Ctx, ins: &Instruction, range: Range) {
    for p in &ins.pairs {
        if p.value.as_deref().is_some_and(looks_like_credential) {
            cx.report(
                "LW011",
                range,
                format!(
                    "{} {} holds what looks like a credential; it would be stored in the image",
                    ins.keyword.to_ascii_uppercase(),
                    p.key
                ),
                None,
            );
        }
    }
}

fn valid_port(w: &str) -> bool {
    let (ports, proto) = match w.split_once('/') {
        Some((p, pr)) => (p, Some(pr)),
        None => (w, None),
    };
    if proto.is_some_and(|p| !matches!(p.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp")) {
        return false;
    }
    let ok = |p: &str| p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
    match ports.split_once('-') {
        Some((a, b)) => ok(a) && ok(b),
        None => ok(ports),
    }
}

fn looks_like_credential(v: &str) -> bool {
    if let Some(i) = v.find("://") {
        let rest = &v[i + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo
                .split_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && !p.starts_with('$'))
            {
                return true;
            }
        }
    }
    let aws = v.as_bytes().windows(20).any(|w| {
        w.starts_with(b"AKIA")
            && w[4..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    });
    aws || [
        "ghp_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "sk_live_",
        "-----BEGIN",
    ]
    .iter()
    .any(|p| v.contains(p))
}

fn exec_form_vars(cx: &mut Ctx, ins: &Instruction, node: &Node) {
    if !node.json || ins.words.is_empty() {
        return;
    }
    let prog = ins.words[0].rsplit('/').next().unwrap_or("");
    if SHELLS.contains(&prog) {
        return;
    }
    let has_var = ins.words.iter().any(|w| {
        w.as_bytes()
            .windows(2)
            .any(|p| p[0] == b'$' && (p[1] == b'{' || p[1] == b'_' || p[1].is_ascii_alphabetic()))
    });
    if has_var {
        cx.report(
            "LW008",
            cx.node_range(node),
            format!(
                "Exec-form {} is not run by a shell: '$' variables stay literal",
                ins.keyword.to_ascii_uppercase()
            ),
            None,
        );
    }
}

fn add_rules(cx: &mut Ctx, ins: &Instruction, node: &Node) {
    if ins.words.len() < 2 {
        return;
    }
    let srcs = &ins.words[..ins.words.len() - 1];
    let is_remote = |s: &str| s.contains("://") || s.starts_with("git@");
    for s in srcs
        .iter()
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
    {
        if !ins.flags.iter().any(|f| f.name == "checksum") {
            cx.report(
                "LW027",
                cx.node_range(node),
                format!("ADD {s} without --checksum: the download is not verified"),
                None,
            );
        }
    }
    let local = srcs.iter().all(|s| !is_remote(s));
    let archive = srcs.iter().any(|s| {
        let l = s.to_ascii_lowercase();
        ARCHIVE_EXT.iter().any(|e| l.ends_with(e))
    });
    if local && !archive {
        let copy_ok = !ins
            .flags
            .iter()
            .any(|f| matches!(f.name.as_str(), "checksum" | "keep-git-dir" | "unpack"));
        let kw = if node.value.iter().any(|c| c.is_ascii_lowercase()) {
            "copy"
        } else {
            "COPY"
        };
        let fix = copy_ok.then(|| Ctx::fix("Use COPY", cx.keyword_range(node), kw));
        cx.report(
            "LW007",
            cx.node_range(node),
            "Use COPY instead of ADD for local files".into(),
            fix,
        );
    }
}

pub(super) fn sub(cmd: &Cmd) -> Option<&str> {
    cmd.subcommand().map(|t| t.text.as_str())
}

fn is_dependency_install(c: &Cmd) -> bool {
    let s = sub(c).unwrap_or("");
    match c.program().unwrap_or("") {
        "npm" | "pnpm" => matches!(s, "ci" | "install" | "i"),
        "yarn" => s.is_empty() || s == "install",
        "pip" | "pip3" => {
            s == "install" && c.has_arg(|a| a == "-r" || a.starts_with("--requirement"))
        }
        "bundle" | "composer" | "poetry" => s == "install",
        "go" => s == "mod" && c.has_arg(|a| a == "download"),
        "cargo" => matches!(s, "fetch" | "build"),
        _ => false,
    }
}

fn final_user(cx: &mut Ctx, stage: &Stage) {
    let mut cur = stage;
    for _ in 0..=cx.model.stages.len() {
        if let Some(u) = cur.instructions.iter().rev().find(|i| i.keyword == "user") {
            let user = u.words.first().cloned().unwrap_or_default();
            // A user from an unknown variable (`USER ${NB_UID}`) is not judged.
            if u.unmatched.is_empty() && is_root(&user) {
                let node = &cx.df.children[u.node];
                cx.report(
                    "LW009",
                    cx.node_range(node),
                    format!("The final stage runs as root (USER {user}); switch to an unprivileged user"),
                    None,
                );
            }
            return;
        }
        match baseimg::parent(cx, cur) {
            Some(p) => cur = p,
            None => break,
        }
    }
    let node = &cx.df.children[stage.from.node];
    let range = cx.node_range(node);
    // Informational where root is not the learner's mistake: a scratch stage is
    // usually a file export, and a base that sets a non-root USER already drops root.
    if baseimg::root_is_scratch(cx, stage) {
        cx.report_as(
            "LW009",
            Severity::Info,
            range,
            "The final stage is built FROM scratch and sets no USER: as an image it runs as root (this does not matter for a file export)".into(),
            None,
        );
        return;
    }
    if let Some(known) = baseimg::config(cx, stage) {
        if let Some(user) = known.image.user.as_deref().filter(|u| !is_root(u)) {
            let src = if known.fallback {
                "is known to set"
            } else {
                "sets"
            };
            cx.report_as(
                "LW009",
                Severity::Info,
                range,
                format!("The final stage sets no USER; its base image {src} USER {user}, so it does not run as root"),
                None,
            );
            return;
        }
    }
    cx.report(
        "LW009",
        range,
        "The final stage has no USER instruction, so the container runs as root".into(),
        None,
    );
}

/// `root`, `0`, `root:...`, `0:...`.
fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("");
    name == "root" || name == "0"
}
