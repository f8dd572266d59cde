//! `.dockerignore` handling: the matcher lives in [`lw_dockerfile::ignore`] (shared with the
//! linter's `CopyIgnoredFile` check) and is re-exported here unchanged; its errors convert into
//! this crate's [`crate::Error`] with the same variants and messages.

pub use lw_dockerfile::ignore::*;
