//! Go standard-library behaviours that BuildKit and moby rely on, re-implemented byte for byte so the parser,
//! the shell lexer, `.dockerignore` matching and the instruction flags accept and refuse exactly what they do:
//! runes and byte strings ([`unicode`]), `path/filepath` ([`filepath`]), the part of `regexp` that
//! `moby/patternmatcher` reaches ([`regexp`]), and `strconv`/`time`/units value parsers ([`values`]).

pub mod filepath;
pub mod regexp;
pub mod unicode;
pub mod values;
