//! The one error type of lw-build.

/// Errors of the build crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A lone `!` in the pattern list (Go: `illegal exclusion pattern: "!"`).
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// Go's `filepath.ErrBadPattern`, either when building the matcher or when evaluating a
    /// pattern whose generated expression does not compile.
    #[error("syntax error in pattern: {pattern:?}")]
    BadPattern { pattern: String },
    /// A pattern that Docker accepts but this implementation cannot evaluate.
    #[error("unsupported .dockerignore pattern {pattern:?}: {reason}")]
    UnsupportedPattern {
        pattern: String,
        reason: &'static str,
    },
    /// `MatchesUsingParentResults` was given a `MatchInfo` from a different matcher.
    #[error("wrong number of values in parentMatched")]
    MatchInfoMismatch,
    /// A `.dockerignore` line longer than Go's scanner accepts (`bufio.ErrTooLong`).
    #[error(".dockerignore line {line}: token too long")]
    IgnoreLineTooLong { line: usize },

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
    #[error("{file}:{line}: {message}")]
    Step {
        file: String,
        line: usize,
        message: String,
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
    /// Something the host (store, registry, executor) reported.
    #[error("{0}")]
    Host(String),
}

/// `.dockerignore` errors come from [`lw_dockerfile::ignore`]; they map onto the variants of the
/// same name. Any other Dockerfile error is reported against `Dockerfile`.
impl From<lw_dockerfile::Error> for Error {
    fn from(e: lw_dockerfile::Error) -> Self {
        use lw_dockerfile::Error as D;
        match e {
            D::IllegalExclusion => Error::IllegalExclusion,
            D::BadPattern { pattern } => Error::BadPattern { pattern },
            D::UnsupportedPattern { pattern, reason } => {
                Error::UnsupportedPattern { pattern, reason }
            }
            D::MatchInfoMismatch => Error::MatchInfoMismatch,
            D::IgnoreLineTooLong { line } => Error::IgnoreLineTooLong { line },
            source => Error::Dockerfile {
                file: "Dockerfile".to_string(),
                source,
            },
        }
    }
}
