//! The crate's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("truncated tar archive: {0}")]
    Truncated(String),
    #[error("invalid tar header at byte {offset}: {reason}")]
    BadHeader { offset: u64, reason: String },
    #[error("unsafe path {path:?} in archive: {reason}")]
    UnsafePath { path: String, reason: String },
    #[error("unsupported tar entry {path:?}: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("entry {path:?} is {actual} bytes, more than the limit of {limit}")]
    TooLarge {
        path: String,
        actual: u64,
        limit: u64,
    },
    #[error("duplicate entry {0:?} in one layer")]
    Duplicate(String),
    /// What a host's callback answered while a layer was read ([`crate::push`]): its own words.
    #[error("{0}")]
    Host(String),
    #[error(transparent)]
    Oci(#[from] lw_oci::Error),
}
