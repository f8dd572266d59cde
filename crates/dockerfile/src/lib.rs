//! The Dockerfile frontend: parser, directives, heredocs, shell-word expansion, stage model, build checks, lint.

mod error;

pub use error::Error;
