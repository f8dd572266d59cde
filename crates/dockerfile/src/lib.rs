//! The Dockerfile frontend: parser, directives, heredocs, shell-word expansion, stage model, build checks, lint.

mod error;
pub mod instructions;
pub mod model;
pub mod lint;
pub mod parser;
pub mod shell;

pub use error::Error;
