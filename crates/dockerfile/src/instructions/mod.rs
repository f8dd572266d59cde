//! Typed instructions: the second step after [`crate::parser`], following BuildKit's
//! `frontend/dockerfile/instructions/parse.go`.
//!
//! Each parsed node becomes an [`Instruction`] with its source span and original text.
//! The flags each instruction accepts, argument counts and forms are validated with
//! upstream's messages (`unknown flag: --foo`, `unknown instruction: FORM (did you mean
//! FROM?)`, `COPY requires at least two arguments, …`). Variables are **not** expanded
//! here: values are the raw words, and the stage model expands them later. Likewise
//! `--mount` specs are only checked as upstream checks them at this step (CSV syntax,
//! `from` without variables); [`parse_mount`] validates them fully once an expander is
//! available.

mod flags;
mod mount;
mod types;

pub use crate::go_compat::values::parse_duration;
pub use mount::{
    csv_fields, parse_device, parse_mount, Device, Expander, Mount, MountType, Sharing,
};
pub use types::{
    AddCommand, ArgCommand, ArgDef, CmdCommand, CommandLine, CopyCommand, EntrypointCommand,
    EnvCommand, ExposeCommand, FromCommand, Health, HealthcheckCommand, InlineFile, Instruction,
    KeyValue, LabelCommand, MaintainerCommand, OnbuildCommand, RunCommand, ShellCommand, Source,
    SourceContent, SourcesAndDest, Stage, StopSignalCommand, UserCommand, VolumeCommand,
    WorkdirCommand,
};

use crate::go_compat::unicode::{lossy, to_lower};
use crate::go_compat::values::{num_error, parse_int, to_upper, with_suggestion};
use crate::parser::{chomp_heredoc_content, parse_heredoc, Dockerfile, Heredoc, Node, Position};
use crate::Error;
use flags::{BFlags, FlagError};

/// The 18 instruction keywords, upper-case.
pub const INSTRUCTION_NAMES: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// What one instruction parser sees (upstream's `parseRequest`).
struct Request<'a> {
    node: &'a Node,
    command: String,
    args: Vec<String>,
    heredocs: &'a [Heredoc],
    json: bool,
    flags: BFlags,
    original: String,
    comments: Vec<String>,
}

/// An error positioned at the instruction, or at one of its flags.
enum Fail {
    At(String),
    Flag(FlagError),
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::At(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Self {
        Fail::At(s.to_string())
    }
}

impl From<FlagError> for Fail {
    fn from(e: FlagError) -> Self {
        Fail::Flag(e)
    }
}

type R<T> = Result<T, Fail>;

/// `nodeArgs`: the argument chain, with ONBUILD's trigger flattened in.
fn node_args(node: &Node) -> Vec<String> {
    let mut out: Vec<String> = node.args.iter().map(|a| lossy(a)).collect();
    if let Some(sub) = &node.next {
        out.push(lossy(&sub.value));
        out.extend(node_args(sub));
    }
    out
}

fn trim(s: &str) -> String {
    s.trim().to_string()
}

impl<'a> Request<'a> {
    fn new(node: &'a Node) -> Self {
        Request {
            node,
            command: lossy(&node.value),
            args: node_args(node),
            heredocs: &node.heredocs,
            json: node.json,
            flags: BFlags::new(node.flags.iter().map(|f| lossy(f)).collect()),
            original: lossy(&node.original),
            comments: node.prev_comment.iter().map(|c| lossy(c)).collect(),
        }
    }

    fn source(&self) -> Source {
        Source {
            keyword: self.command.clone(),
            code: trim(&self.original),
            span: self.node.span,
            comments: self.comments.clone(),
        }
    }
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn no_destination(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

fn doc_comment(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_default()
}

fn parse_kvps(args: &[String], cmd: &str) -> R<Vec<KeyValue>> {
    if args.is_empty() {
        return Err(at_least_one(cmd).into());
    }
    if !args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {cmd}, too many arguments").into());
    }
    let mut out = Vec::new();
    for c in args.chunks(3) {
        if c[0].is_empty() {
            return Err(format!("{cmd} names can not be blank").into());
        }
        out.push(KeyValue {
            key: c[0].clone(),
            value: c[1].clone(),
            no_delim: c[2].is_empty(),
        });
    }
    Ok(out)
}

/// `handleJSONArgs`.
fn handle_json_args(args: &[String], json: bool) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    if json {
        return args.to_vec();
    }
    vec![args.join(" ")]
}

fn command_line(req: &Request<'_>) -> CommandLine {
    CommandLine {
        cmd_line: handle_json_args(&req.args, req.json),
        files: req
            .heredocs
            .iter()
            .map(|h| InlineFile {
                name: h.name.clone(),
                data: h.content.clone(),
                chomp: h.chomp,
            })
            .collect(),
        prepend_shell: !req.json,
    }
}

fn parse_sources_and_dest(req: &Request<'_>, cmd: &str) -> R<SourcesAndDest> {
    let (dest, srcs) = req.args.split_last().expect("at least two arguments");
    if matches!(parse_heredoc(dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination").into());
    }
    let mut source_paths = Vec::new();
    let mut source_contents = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                // Upstream looks the body up by name; the last heredoc of that name wins.
                let mut data = req
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                if h.chomp {
                    data = chomp_heredoc_content(&data);
                }
                source_contents.push(SourceContent {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            _ => source_paths.push(src.clone()),
        }
    }
    Ok(SourcesAndDest {
        dest: dest.clone(),
        source_paths,
        source_contents,
    })
}

fn is_as(s: &str) -> bool {
    // strings.EqualFold(s, "as"): 's' also folds with U+017F (long s).
    let mut c = s.chars();
    matches!(
        (c.next(), c.next(), c.next()),
        (Some('a' | 'A'), Some('s' | 'S' | '\u{17F}'), None)
    )
}

fn parse_from(mut req: Request<'_>) -> R<FromCommand> {
    let args = &req.args;
    let mut name = String::new();
    if args.len() == 3 && is_as(&args[1]) {
        name = to_lower(args[2].as_bytes());
        let valid = name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
            && name.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
            });
        if !valid {
            return Err(format!(
                "invalid name for build stage: {}, name can't start with a number or contain symbols",
                crate::parser::go_quote(args[2].as_bytes())
            )
            .into());
        }
    } else if args.len() != 1 {
        return Err("FROM requires either one or three arguments".into());
    }
    req.flags.add_string("platform", "");
    req.flags.parse()?;
    Ok(FromCommand {
        source: req.source(),
        base_name: req.args[0].clone(),
        doc_comment: doc_comment(&req.comments, &name),
        name,
        platform: req.flags.string("platform"),
    })
}

fn parse_run(mut req: Request<'_>) -> R<RunCommand> {
    // Pre-hooks, in upstream's registration order: device, mount, network, security.
    req.flags.add_strings("device");
    req.flags.add_strings("mount");
    req.flags.add_string("network", "default");
    req.flags.add_string("security", "sandbox");
    req.flags.parse()?;
    let flags_used = req.flags.used();
    let command = command_line(&req);
    let source = req.source();

    let mut devices = Vec::new();
    for d in req.flags.strings("device") {
        devices.push(parse_device(&d)?);
    }
    let mounts = req.flags.strings("mount");
    for m in &mounts {
        parse_mount(m, None)?;
    }
    let network = req.flags.string("network");
    if !matches!(network.as_str(), "default" | "none" | "host") {
        return Err(format!(
            "invalid network mode {}",
            crate::parser::go_quote(network.as_bytes())
        )
        .into());
    }
    let security = req.flags.string("security");
    if !matches!(security.as_str(), "insecure" | "sandbox") {
        return Err(format!(
            "security {} is not valid",
            crate::parser::go_quote(security.as_bytes())
        )
        .into());
    }
    Ok(RunCommand {
        source,
        command,
        mounts,
        network,
        security,
        devices,
        flags_used,
    })
}

/// `parseOptInterval`.
fn opt_interval(req: &Request<'_>, name: &str) -> R<i64> {
    let s = req.flags.string(name);
    if s.is_empty() {
        return Ok(0);
    }
    let d = parse_duration(&s)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            crate::parser::go_quote(name.as_bytes())
        )
        .into());
    }
    Ok(d)
}

fn parse_healthcheck(mut req: Request<'_>) -> R<HealthcheckCommand> {
    if req.args.is_empty() {
        return Err(at_least_one("HEALTHCHECK").into());
    }
    let typ = to_upper(&req.args[0]);
    let args = req.args[1..].to_vec();
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(HealthcheckCommand {
            source: req.source(),
            health: Health {
                test: vec![typ],
                interval: 0,
                timeout: 0,
                start_period: 0,
                start_interval: 0,
                retries: 0,
            },
        });
    }
    for name in [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ] {
        req.flags.add_string(name, "");
    }
    req.flags.parse()?;
    let test = match typ.as_str() {
        "CMD" => {
            let cmd = handle_json_args(&args, req.json);
            if cmd.is_empty() {
                return Err("Missing command after HEALTHCHECK CMD".into());
            }
            let t = if req.json {
                typ.clone()
            } else {
                "CMD-SHELL".to_string()
            };
            std::iter::once(t).chain(cmd).collect()
        }
        _ => {
            return Err(format!(
                "Unknown type {} in HEALTHCHECK (try CMD)",
                crate::parser::go_quote(typ.as_bytes())
            )
            .into())
        }
    };
    let interval = opt_interval(&req, "interval")?;
    let timeout = opt_interval(&req, "timeout")?;
    let start_period = opt_interval(&req, "start-period")?;
    let start_interval = opt_interval(&req, "start-interval")?;
    let r = req.flags.string("retries");
    let retries = if r.is_empty() {
        0
    } else {
        let n = parse_int(&r, 32).map_err(|e| num_error("ParseInt", &r, e))?;
        if n < 0 {
            return Err(format!("--retries cannot be negative ({n})").into());
        }
        n as i32
    };
    Ok(HealthcheckCommand {
        source: req.source(),
        health: Health {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        },
    })
}

/// `(?i)^\s*ONBUILD\s*` removed from the start of `s`.
fn strip_onbuild(s: &str) -> &str {
    let ws = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let t = s.trim_start_matches(ws);
    match t.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => t[7..].trim_start_matches(ws),
        _ => s,
    }
}

fn parse_onbuild(mut req: Request<'_>) -> R<OnbuildCommand> {
    if req.args.is_empty() {
        return Err(at_least_one("ONBUILD").into());
    }
    req.flags.parse()?;
    let trigger = to_upper(req.args[0].trim());
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger").into())
        }
        _ => {}
    }
    let mut expression = strip_onbuild(&req.original).to_string();
    for h in req.heredocs {
        expression.push('\n');
        expression.push_str(&lossy(&h.content));
        expression.push_str(&h.name);
    }
    Ok(OnbuildCommand {
        source: req.source(),
        trigger,
        expression,
    })
}

fn parse_arg(req: Request<'_>) -> R<ArgCommand> {
    if req.args.is_empty() {
        return Err(at_least_one("ARG").into());
    }
    let mut args = Vec::new();
    for a in &req.args {
        let (key, value) = match a.split_once('=') {
            Some((k, v)) => {
                if k.is_empty() {
                    return Err("ARG names can not be blank".into());
                }
                (k.to_string(), Some(v.to_string()))
            }
            None => (a.clone(), None),
        };
        args.push(ArgDef {
            doc_comment: doc_comment(&req.comments, &key),
            key,
            value,
        });
    }
    Ok(ArgCommand {
        source: req.source(),
        args,
    })
}

fn one_arg(req: &mut Request<'_>, cmd: &str, check_flags: bool) -> R<String> {
    if req.args.len() != 1 {
        return Err(exactly_one(cmd).into());
    }
    if check_flags {
        req.flags.parse()?;
    }
    Ok(req.args[0].clone())
}

fn parse_request(mut req: Request<'_>) -> R<Instruction> {
    let kw = to_lower(&req.node.value);
    Ok(match kw.as_str() {
        "env" => {
            req.flags.parse()?;
            let env = parse_kvps(&req.args, "ENV")?;
            Instruction::Env(EnvCommand {
                source: req.source(),
                env,
            })
        }
        "maintainer" => {
            let maintainer = one_arg(&mut req, "MAINTAINER", true)?;
            Instruction::Maintainer(MaintainerCommand {
                source: req.source(),
                maintainer,
            })
        }
        "label" => {
            req.flags.parse()?;
            let labels = parse_kvps(&req.args, "LABEL")?;
            Instruction::Label(LabelCommand {
                source: req.source(),
                labels,
            })
        }
        "add" => Instruction::Add(parse_add(req)?),
        "copy" => Instruction::Copy(parse_copy(req)?),
        "from" => Instruction::From(parse_from(req)?),
        "onbuild" => Instruction::Onbuild(parse_onbuild(req)?),
        "workdir" => {
            let path = one_arg(&mut req, "WORKDIR", true)?;
            Instruction::Workdir(WorkdirCommand {
                source: req.source(),
                path,
            })
        }
        "run" => Instruction::Run(parse_run(req)?),
        "cmd" => {
            req.flags.parse()?;
            Instruction::Cmd(CmdCommand {
                source: req.source(),
                command: command_line(&req),
            })
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(req)?),
        "entrypoint" => {
            req.flags.parse()?;
            Instruction::Entrypoint(EntrypointCommand {
                source: req.source(),
                command: command_line(&req),
            })
        }
        "expose" => Instruction::Expose(parse_expose(req)?),
        "user" => {
            let user = one_arg(&mut req, "USER", true)?;
            Instruction::User(UserCommand {
                source: req.source(),
                user,
            })
        }
        "volume" => Instruction::Volume(parse_volume(req)?),
        "stopsignal" => {
            // Upstream does not check STOPSIGNAL's flags.
            let signal = one_arg(&mut req, "STOPSIGNAL", false)?;
            Instruction::StopSignal(StopSignalCommand {
                source: req.source(),
                signal,
            })
        }
        "arg" => Instruction::Arg(parse_arg(req)?),
        "shell" => Instruction::Shell(parse_shell(req)?),
        _ => {
            return Err(with_suggestion(
                format!("unknown instruction: {}", req.command),
                &req.command,
                &INSTRUCTION_NAMES,
                false,
            )
            .into())
        }
    })
}

/// ADD: sources and destination, and its flags.
fn parse_add(mut req: Request<'_>) -> R<AddCommand> {
    if req.args.len() < 2 {
        return Err(no_destination("ADD").into());
    }
    req.flags.add_string("chown", "");
    req.flags.add_string("chmod", "");
    req.flags.add_bool("link", false);
    req.flags.add_bool("keep-git-dir", false);
    req.flags.add_string("checksum", "");
    req.flags.add_bool("unpack", false);
    req.flags.add_strings("exclude");
    req.flags.parse()?;
    let files = parse_sources_and_dest(&req, "ADD")?;
    let f = &req.flags;
    Ok(AddCommand {
        source: req.source(),
        files,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.is_true("link"),
        keep_git_dir: f.is_used("keep-git-dir").then(|| f.is_true("keep-git-dir")),
        checksum: f.string("checksum"),
        unpack: f.is_used("unpack").then(|| f.is_true("unpack")),
        excludes: f.strings("exclude"),
    })
}

/// COPY: sources and destination, and its flags.
fn parse_copy(mut req: Request<'_>) -> R<CopyCommand> {
    if req.args.len() < 2 {
        return Err(no_destination("COPY").into());
    }
    req.flags.add_string("chown", "");
    req.flags.add_string("from", "");
    req.flags.add_string("chmod", "");
    req.flags.add_bool("link", false);
    req.flags.add_strings("exclude");
    req.flags.add_bool("parents", false);
    req.flags.parse()?;
    let files = parse_sources_and_dest(&req, "COPY")?;
    let f = &req.flags;
    Ok(CopyCommand {
        source: req.source(),
        files,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.is_true("link"),
        parents: f.is_true("parents"),
        excludes: f.strings("exclude"),
    })
}

/// EXPOSE: the ports, sorted (as BuildKit keeps them).
fn parse_expose(mut req: Request<'_>) -> R<ExposeCommand> {
    if req.args.is_empty() {
        return Err(at_least_one("EXPOSE").into());
    }
    req.flags.parse()?;
    let mut ports = req.args.clone();
    ports.sort();
    Ok(ExposeCommand {
        source: req.source(),
        ports,
    })
}

/// VOLUME: each path, trimmed; an empty one is refused.
fn parse_volume(mut req: Request<'_>) -> R<VolumeCommand> {
    if req.args.is_empty() {
        return Err(at_least_one("VOLUME").into());
    }
    req.flags.parse()?;
    let mut volumes = Vec::new();
    for v in &req.args {
        let v =
            crate::go_compat::unicode::lossy(crate::go_compat::unicode::trim_space(v.as_bytes()));
        if v.is_empty() {
            return Err("VOLUME specified can not be an empty string".into());
        }
        volumes.push(v);
    }
    Ok(VolumeCommand {
        source: req.source(),
        volumes,
    })
}

/// SHELL: its JSON-form arguments.
fn parse_shell(mut req: Request<'_>) -> R<ShellCommand> {
    req.flags.parse()?;
    let shell = handle_json_args(&req.args, req.json);
    if shell.is_empty() {
        return Err(at_least_one("SHELL").into());
    }
    if !req.json {
        return Err("SHELL requires the arguments to be in JSON form".into());
    }
    Ok(ShellCommand {
        source: req.source(),
        shell,
    })
}

fn error_at(node: &Node, pos: Position, message: String) -> Error {
    Error::Parse {
        line: if pos.line > 0 {
            pos.line
        } else {
            node.start_line.max(1)
        },
        column: pos.column.max(1),
        message,
    }
}

/// Converts one parsed node (`ParseInstruction`).
pub fn parse_instruction(node: &Node) -> Result<Instruction, Error> {
    parse_request(Request::new(node)).map_err(|f| match f {
        Fail::At(m) => error_at(node, node.span.start, m),
        Fail::Flag(e) => {
            let pos = node
                .flag_positions
                .get(e.index)
                .copied()
                .unwrap_or(node.span.start);
            error_at(node, pos, e.message)
        }
    })
}

/// Converts every instruction of a parsed Dockerfile, in order.
pub fn parse(df: &Dockerfile) -> Result<Vec<Instruction>, Error> {
    df.children.iter().map(parse_instruction).collect()
}

/// Groups instructions into stages (upstream's `instructions.Parse`): ARGs before the
/// first FROM are returned separately as meta args; any other instruction before the
/// first FROM is an error (`no build stage in current context`).
pub fn parse_stages(df: &Dockerfile) -> Result<(Vec<Stage>, Vec<ArgCommand>), Error> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut meta = Vec::new();
    for node in &df.children {
        let inst = parse_instruction(node)?;
        match inst {
            Instruction::Arg(a) if stages.is_empty() => meta.push(a),
            Instruction::From(f) => stages.push(Stage {
                from: f,
                commands: Vec::new(),
            }),
            other => match stages.last_mut() {
                Some(s) => s.commands.push(other),
                None => {
                    return Err(error_at(
                        node,
                        node.span.start,
                        "no build stage in current context".into(),
                    ));
                }
            },
        }
    }
    Ok((stages, meta))
}
