//! Fuzz target: shell-word expansion with both escape characters and a small environment.
//!
//! Input layout: byte 0 picks the escape character and the lexer options, the rest is
//! UTF-8 text whose first line is the word and whose next lines (at most 8) are
//! `NAME=value` environment entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lw_dockerfile::shell::{EnvList, Lexer};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.split('\n');
    let word = lines.next().unwrap_or("");

    // A fixed base so seeds that reference common names hit set variables.
    let mut env = EnvList::new();
    env.push("PWD", "/home");
    env.push("EMPTY", "");
    env.push("SPACE", "a  b c ");
    for line in lines.take(8) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        env.push(k, v);
    }

    let mut lexer = Lexer::new(if mode & 1 == 0 { '\\' } else { '`' });
    lexer.raw_quotes = mode & 2 != 0;
    lexer.raw_escapes = mode & 4 != 0;
    lexer.skip_process_quotes = mode & 8 != 0;
    lexer.skip_unset_env = mode & 16 != 0;

    let _ = lexer.process_word(word, &env);
    let _ = lexer.process_words(word, &env);
    let _ = lexer.process_word_with_matches(word, &env);
});
