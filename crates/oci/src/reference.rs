//! Image references: docker's grammar and normalisation (`ubuntu` → `docker.io/library/ubuntu:latest`).
//! (Being written; see issue 2.)

/// Why a reference was refused; the messages are distribution/reference's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceErrorKind {
    #[error("invalid reference format")]
    InvalidFormat,
}
