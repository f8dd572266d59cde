//! The one error type of lw-build.

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
