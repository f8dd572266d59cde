//! The crate's one error type. Parse errors carry a 1-based line and column.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A syntax error in the Dockerfile at `line:column` (1-based).
    #[error("{line}:{column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    /// A shell-word expansion failed (`${v:?msg}`, bad substitution, unterminated quote...).
    #[error("{message}")]
    Expand { message: String },
    /// `--target` names no stage (BuildKit's message).
    #[error("target stage \"{target}\" could not be found")]
    UnknownTarget { target: String },
    /// A platform string that is not `os/arch[/variant]`.
    #[error("invalid platform \"{value}\": expected os/arch[/variant]")]
    Platform { value: String },
}
