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
}
