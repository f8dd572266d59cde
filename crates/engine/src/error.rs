//! The one error type of lw-engine.

/// Errors of the build crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `.dockerignore` error from [`lw_dockerfile::ignore`] (its message as is).
    #[error(transparent)]
    Ignore(lw_dockerfile::Error),

    /// A context path that is absolute, empty, contains `..`, or is otherwise unusable.
    #[error("invalid build context path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// A path that leads outside the context root (through `..` or a symlink).
    #[error("build context path {path:?} escapes the context root")]
    PathEscapes { path: String },
    /// No such entry in the build context (or it is excluded by .dockerignore).
    #[error("{path}: not found in build context")]
    NotFound { path: String },
    /// The entry exists but is not a regular file.
    #[error("{path}: not a regular file")]
    NotAFile { path: String },
    /// An entry's parent is not a directory.
    #[error("{path}: parent is not a directory")]
    NotADirectory { path: String },
    /// I/O failure while reading a context.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A bad `--chmod` value.
    #[error("invalid --chmod value {value:?}: {reason}")]
    InvalidChmod { value: String, reason: String },
    /// A bad `--chown` value.
    #[error("invalid --chown value {value:?}: {reason}")]
    InvalidChown { value: String, reason: String },
    /// A user name not present in the image's /etc/passwd.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser { name: String },
    /// A group name not present in the image's /etc/group.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup { name: String },

    /// A build step failed: `Dockerfile:LINE: cause`.
    #[error("{file}:{line}: {kind}")]
    Step {
        file: String,
        line: usize,
        kind: StepError,
    },
    /// The Dockerfile itself is invalid.
    #[error("{file}:{source}")]
    Dockerfile {
        file: String,
        #[source]
        source: lw_dockerfile::Error,
    },
    #[error(transparent)]
    Layer(#[from] lw_layer::Error),
    #[error(transparent)]
    Oci(#[from] lw_oci::Error),
    /// A reference that does not parse, or names several images.
    #[error("{0}")]
    InvalidReference(String),
    /// No image of the store answers to this reference.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// A bad list of target platforms (`--platform`, the tab's `platforms`).
    #[error("{0}")]
    InvalidPlatforms(String),
    /// Something the host (store, registry, executor) reported.
    #[error("{0}")]
    Host(String),
}

/// Why a build step failed: a kind where the engine knows one, else the cause as text.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The Dockerfile has no `FROM`.
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    /// `--target` names no stage.
    #[error("target stage \"{0}\" could not be found")]
    UnknownTarget(String),
    /// A stage used (`FROM`, `--from`, a mount's `from=`) that was not built before.
    #[error("{context}stage {stage} was not built")]
    StageNotBuilt { context: String, stage: String },
    /// A word that does not expand (a bad `${...}`, a `${VAR:?message}`).
    #[error("{0}")]
    Expansion(String),
    /// `EXPOSE` with a protocol other than tcp, udp or sctp.
    #[error("EXPOSE {word}: invalid proto {proto:?}")]
    ExposeProto { word: String, proto: String },
    /// `EXPOSE` with a port (or range) that is not one.
    #[error("EXPOSE {word}: invalid port")]
    ExposePort { word: String },
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `RUN --device`, a labs-only feature in BuildKit's stable frontend.
    #[error("device feature is only supported in Dockerfile frontend 1.14.0-labs or later")]
    DeviceNeedsLabs,
    /// `RUN --mount=type=ssh,required` and the host forwards no agent under that id (BuildKit's message).
    #[error("no SSH key {0:?} forwarded from the client")]
    SshNotForwarded(String),
    /// The same when the host forwards other ids (BuildKit's session provider answers this).
    #[error("unset ssh forward key {0}")]
    SshKeyUnset(String),
    /// `RUN --mount=type=ssh` of an id the build forwards, on a host that cannot reach an agent (why).
    #[error("SSH agent {0:?}: {1}")]
    SshUnavailable(String, String),
    /// `# check=error=true` and a build check reported these rules.
    #[error("lint violation found for rules: {}", .0.join(", "))]
    LintViolation(Vec<String>),
    /// Any other cause, as text.
    #[error("{0}")]
    Other(String),
}

impl StepError {
    /// A stage that was not built, named in `context` (`RUN --mount=...: `, or nothing).
    pub fn not_built(context: &str, stage: &str) -> StepError {
        StepError::StageNotBuilt {
            context: context.to_string(),
            stage: stage.to_string(),
        }
    }
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Other(s)
    }
}

impl From<&str> for StepError {
    fn from(s: &str) -> Self {
        StepError::Other(s.to_string())
    }
}

/// `.dockerignore` errors come from [`lw_dockerfile::ignore`] and stay themselves; any other Dockerfile error is
/// reported against `Dockerfile`.
impl From<lw_dockerfile::Error> for Error {
    fn from(e: lw_dockerfile::Error) -> Self {
        use lw_dockerfile::Error as D;
        match e {
            D::IllegalExclusion
            | D::BadPattern { .. }
            | D::UnsupportedPattern { .. }
            | D::MatchInfoMismatch
            | D::IgnoreLineTooLong { .. } => Error::Ignore(e),
            source => Error::Dockerfile {
                file: "Dockerfile".to_string(),
                source,
            },
        }
    }
}
