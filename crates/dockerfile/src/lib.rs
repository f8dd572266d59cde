//! The Dockerfile frontend: parser, directives, heredocs, shell-word expansion, stage model, build checks, lint.

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
