//! The typed instruction values (one struct per instruction, the [`Instruction`] enum and
//! [`Stage`]); the conversion from parser nodes lives in the parent module.

use super::Device;
use crate::parser::Span;

/// Where an instruction came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The keyword as written (`RUN`, `run`...).
    pub keyword: String,
    /// The instruction's logical line, trimmed (continuations joined; upstream's `String()`).
    pub code: String,
    /// The span in the file (lines are 1-based and include continuation/heredoc lines).
    pub span: Span,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

/// `key=value` (or legacy `key value`) from ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// The legacy `KEY value` form (no `=`).
    pub no_delim: bool,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    pub key: String,
    /// `None` for `ARG name` without `=`.
    pub value: Option<String>,
    /// From a preceding `# name description` comment.
    pub doc_comment: String,
}

/// A heredoc body used as a file by RUN/CMD/ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub data: Vec<u8>,
    /// `<<-`: leading tabs are to be stripped.
    pub chomp: bool,
}

/// Command line of RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: the JSON strings. Shell form: one string, the whole command.
    pub cmd_line: Vec<String>,
    /// Heredoc files (RUN only).
    pub files: Vec<InlineFile>,
    /// Shell form: run through the configured SHELL.
    pub prepend_shell: bool,
}

/// A heredoc used as a COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// The body (already chomped for `<<-`).
    pub data: Vec<u8>,
    /// Variables in the body are to be expanded (the delimiter was not quoted).
    pub expand: bool,
}

/// Sources and destination of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesAndDest {
    pub dest: String,
    pub source_paths: Vec<String>,
    pub source_contents: Vec<SourceContent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromCommand {
    pub source: Source,
    /// The image (or stage) to build from, unexpanded.
    pub base_name: String,
    /// The stage name after `AS`, lower-cased (empty when absent).
    pub name: String,
    /// `--platform` (empty when absent).
    pub platform: String,
    /// From a `# name description` comment above.
    pub doc_comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand {
    pub source: Source,
    pub command: CommandLine,
    /// Raw `--mount` values, in order; see [`parse_mount`].
    pub mounts: Vec<String>,
    /// `--network` (`default`, `none` or `host`).
    pub network: String,
    /// `--security` (`sandbox` or `insecure`).
    pub security: String,
    pub devices: Vec<Device>,
    /// Flag names used, in order of first use.
    pub flags_used: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdCommand {
    pub source: Source,
    pub command: CommandLine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrypointCommand {
    pub source: Source,
    pub command: CommandLine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    pub source: Source,
    pub shell: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCommand {
    pub source: Source,
    pub env: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCommand {
    pub source: Source,
    pub labels: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgCommand {
    pub source: Source,
    pub args: Vec<ArgDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeCommand {
    pub source: Source,
    /// Sorted (byte order), as upstream.
    pub ports: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeCommand {
    pub source: Source,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCommand {
    pub source: Source,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkdirCommand {
    pub source: Source,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignalCommand {
    pub source: Source,
    pub signal: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintainerCommand {
    pub source: Source,
    pub maintainer: String,
}

/// HEALTHCHECK settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `["NONE"]`, `["CMD", args…]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Nanoseconds; 0 when unset.
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCommand {
    pub source: Source,
    pub health: Health,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnbuildCommand {
    pub source: Source,
    /// The trigger keyword (upper-cased).
    pub trigger: String,
    /// The trigger instruction's text (plus heredoc bodies), parsed when the image is used.
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCommand {
    pub source: Source,
    pub files: SourcesAndDest,
    /// `--from` (empty when absent).
    pub from: String,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCommand {
    pub source: Source,
    pub files: SourcesAndDest,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    /// `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    pub checksum: String,
    /// `--unpack`, when given.
    pub unpack: Option<bool>,
    pub excludes: Vec<String>,
}

/// One typed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From(FromCommand),
    Run(RunCommand),
    Cmd(CmdCommand),
    Entrypoint(EntrypointCommand),
    Shell(ShellCommand),
    Env(EnvCommand),
    Label(LabelCommand),
    Arg(ArgCommand),
    Expose(ExposeCommand),
    Volume(VolumeCommand),
    User(UserCommand),
    Workdir(WorkdirCommand),
    StopSignal(StopSignalCommand),
    Maintainer(MaintainerCommand),
    Healthcheck(HealthcheckCommand),
    Onbuild(OnbuildCommand),
    Copy(CopyCommand),
    Add(AddCommand),
}

impl Instruction {
    /// Where the instruction came from.
    pub fn source(&self) -> &Source {
        match self {
            Instruction::From(i) => &i.source,
            Instruction::Run(i) => &i.source,
            Instruction::Cmd(i) => &i.source,
            Instruction::Entrypoint(i) => &i.source,
            Instruction::Shell(i) => &i.source,
            Instruction::Env(i) => &i.source,
            Instruction::Label(i) => &i.source,
            Instruction::Arg(i) => &i.source,
            Instruction::Expose(i) => &i.source,
            Instruction::Volume(i) => &i.source,
            Instruction::User(i) => &i.source,
            Instruction::Workdir(i) => &i.source,
            Instruction::StopSignal(i) => &i.source,
            Instruction::Maintainer(i) => &i.source,
            Instruction::Healthcheck(i) => &i.source,
            Instruction::Onbuild(i) => &i.source,
            Instruction::Copy(i) => &i.source,
            Instruction::Add(i) => &i.source,
        }
    }

    /// The instruction's span.
    pub fn span(&self) -> Span {
        self.source().span
    }

    /// The canonical upper-case name (`RUN`, `COPY`...).
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Arg(_) => "ARG",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
        }
    }
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: FromCommand,
    pub commands: Vec<Instruction>,
}
