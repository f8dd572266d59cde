//! The Dockerfile frontend: parser, directives, heredocs, shell-word expansion, stage model, build checks, lint.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

#[doc(hidden)]
pub mod bench_input;
mod error;
mod go_compat;
pub mod ignore;
pub mod instructions;
pub mod lint;
pub mod model;
pub mod parser;
pub mod shell;

pub use error::Error;
