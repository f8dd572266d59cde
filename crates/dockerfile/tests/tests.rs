//! lw-dockerfile's integration and corpus tests, as one binary (ripgrep's `tests/tests.rs` layout):
//! a module per feature; `cargo test -p lw-dockerfile --test tests -- MODULE::` runs one module.

mod dockerignore_conformance;
mod lint_cases;
mod lint_corpus;
mod lint_directives;
mod lint_dockerignore;
mod lint_rules;
mod lint_smoke;
mod model_scoping;
mod parser_behaviour;
mod parser_conformance;
mod parser_instructions;
mod shell_behaviour;
mod shell_conformance;
