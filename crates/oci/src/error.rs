//! The crate's one error type.

use crate::reference::ReferenceErrorKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: String },
    #[error("unsupported digest algorithm in {0:?}")]
    UnsupportedDigest(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is not valid JSON: {message}")]
    Json { what: String, message: String },
    #[error("invalid reference {input:?}: {kind}")]
    Reference {
        input: String,
        kind: ReferenceErrorKind,
    },
    #[error("invalid platform {input:?}: {reason}")]
    Platform { input: String, reason: String },
    #[error("invalid {media_type} document: {reason}")]
    Invalid { media_type: String, reason: String },
    #[error("blob {0} is not an image manifest or index")]
    NotADocument(String),
}
