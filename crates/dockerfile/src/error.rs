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
    /// An empty Dockerfile (BuildKit checks this before parsing).
    #[error("the Dockerfile cannot be empty")]
    Empty,
    /// A shell-word expansion failed (`${v:?msg}`, bad substitution, unterminated quote...).
    #[error("{message}")]
    Expand { message: String },
    /// `--target` names no stage (BuildKit's message).
    #[error("target stage \"{target}\" could not be found")]
    UnknownTarget { target: String },
    /// A platform string that is not `os/arch[/variant]`.
    #[error("invalid platform \"{value}\": expected os/arch[/variant]")]
    Platform { value: String },
    /// `.dockerignore`: a lone `!` in the pattern list (Go: `illegal exclusion pattern: "!"`).
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// `.dockerignore`: Go's `filepath.ErrBadPattern`, either when building the matcher or when
    /// evaluating a pattern whose generated expression does not compile.
    #[error("syntax error in pattern: {pattern:?}")]
    BadPattern { pattern: String },
    /// `.dockerignore`: a pattern that Docker accepts but this implementation cannot evaluate.
    #[error("unsupported .dockerignore pattern {pattern:?}: {reason}")]
    UnsupportedPattern {
        pattern: String,
        reason: &'static str,
    },
    /// `.dockerignore`: `MatchesUsingParentResults` was given a `MatchInfo` from a different
    /// matcher.
    #[error("wrong number of values in parentMatched")]
    MatchInfoMismatch,
    /// `.dockerignore`: a line longer than Go's scanner accepts (`bufio.ErrTooLong`).
    #[error(".dockerignore line {line}: token too long")]
    IgnoreLineTooLong { line: usize },
}
