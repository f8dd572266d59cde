//! Shell-word expansion, behaving exactly like BuildKit's `frontend/dockerfile/shell` package.
//!
//! A [`Lexer`] expands `$v` and `${v}` and the modifiers `${v:-w}`, `${v-w}`, `${v:+w}`,
//! `${v+w}`, `${v:?msg}`, `${v?msg}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}` and
//! `${v//p/r}` (glob patterns: `*`, `?` and `\` escapes), removes
//! single and double quotes, handles the escape character (`\` or `` ` ``), and optionally splits
//! the result into words ([`Lexer::process_words`]).
//!
//! ```
//! use lw_dockerfile::shell::{env_from_slice, Lexer};
//!
//! let env = env_from_slice(&["NAME=world", "EMPTY="]);
//! let lex = Lexer::new('\\');
//! assert_eq!(lex.process_word("hello ${NAME:-x} '$NAME'", &env).unwrap(), "hello world $NAME");
//! assert_eq!(lex.process_words("a \"b c\" $NAME", &env).unwrap(), ["a", "b c", "world"]);
//! let e = lex.process_word_with_matches("${EMPTY:-$NAME}$NOPE", &env).unwrap();
//! assert_eq!(e.value, "world");
//! assert!(e.matched.contains("EMPTY") && e.matched.contains("NAME"));
//! assert!(e.unmatched.contains("NOPE"));
//! assert!(lex.process_word("${NOPE:?must be set}", &env).is_err());
//! ```
//!
//! Compatibility notes (all are BuildKit's behaviour, reproduced deliberately):
//! * `${v=w}` / `${v:=w}` and `${#v}` are errors ("unsupported modifier"); `${v:#p}` too.
//! * Pattern `*` and `?` never match a newline (they become Go regexp `.`).
//! * `${v//p/r}` expands `$0`/`${0}` in `r` to the matched text and drops other `$name`s
//!   (Go's `ReplaceAllString`); `${v/p/r}` inserts `r` literally.
//! * With word splitting, a `${v<op>...}` form discards the unfinished word before it
//!   (`abc${x:-def}` gives the single word `def`), because BuildKit shares one buffer.
//! * Error messages are BuildKit's: `failed to process "<word>": <reason>`.
//!
//! The one deliberate difference: more than [`MAX_NESTING`] nested substitutions is an error
//! rather than unbounded recursion.

mod env;
mod lexer;
mod pattern;

use std::collections::BTreeSet;

pub use env::{env_from_slice, EmptyEnv, Env, EnvList};
pub use lexer::MAX_NESTING;

use crate::Error;
use lexer::ShellWord;

/// BuildKit's `Lex`: the escape character and the four processing options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` by default, `` ` `` with `# escape=``.
    pub escape: char,
    /// Keep the quote characters in the output (`RawQuotes`).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (`RawEscapes`).
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (`SkipProcessQuotes`).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as they are written (`SkipUnsetEnv`).
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

/// The result of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word.
    pub value: String,
    /// Names that were looked up and found (set, possibly to `""`).
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not found.
    pub unmatched: BTreeSet<String>,
}

impl Lexer {
    /// A lexer with the given escape character and default options (BuildKit's `NewLex`).
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expand variables and remove quotes, without word splitting (`ProcessWord`).
    pub fn process_word<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<String, Error> {
        Ok(self.process_word_with_matches(word, env)?.value)
    }

    /// Expand, remove quotes, then split into words on unquoted whitespace, including whitespace
    /// that came from a variable's value (`ProcessWords`). Empty words are dropped.
    pub fn process_words<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, Error> {
        let env = EnvRef(env);
        let mut sw = ShellWord::new(self, word, &env, false);
        Ok(sw.process(word)?.words)
    }

    /// Like [`process_word`](Self::process_word), also reporting which variables were looked up
    /// and found or not found (`ProcessWordWithMatches`).
    pub fn process_word_with_matches<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Expansion, Error> {
        let env = EnvRef(env);
        let mut sw = ShellWord::new(self, word, &env, true);
        let value = sw.process(word)?.result;
        Ok(sw.into_expansion(value))
    }
}

/// Adapts an unsized `E` to `&dyn Env`.
struct EnvRef<'a, E: ?Sized>(&'a E);

impl<E: Env + ?Sized> Env for EnvRef<'_, E> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// Whether BuildKit expands variables (with this module's [`Lexer`]) in the arguments of the
/// instruction `keyword` (case-insensitive, e.g. `"COPY"` or `"copy"`), per the Dockerfile
/// reference's "Environment replacement" and BuildKit's `dispatch`:
///
/// * `true` for `ADD`, `ARG`, `COPY`, `ENV`, `EXPOSE`, `FROM`, `LABEL`, `STOPSIGNAL`, `USER`,
///   `VOLUME`, `WORKDIR`. Details: `EXPOSE` splits words ([`Lexer::process_words`]), the others
///   expand single words; `FROM` sees only the global (pre-`FROM`) `ARG`s; `ADD`/`COPY` also
///   expand `--chown`, `--chmod` (and `ADD --checksum`), and the contents of unquoted-delimiter
///   heredocs with quotes left alone ([`Lexer::skip_process_quotes`]); `ARG` expands its
///   name and default value.
/// * `false` for everything else: `RUN`, `CMD`, `ENTRYPOINT`, `SHELL` and `HEALTHCHECK` leave
///   variables to the command shell (BuildKit does expand the values of `RUN --mount=` flags);
///   `ONBUILD` stores its trigger unexpanded, which is expanded when it runs in a child build;
///   `MAINTAINER` is taken literally; an unknown keyword is not expanded.
pub fn expands(keyword: &str) -> bool {
    const EXPANDING: [&str; 11] = [
        "add",
        "arg",
        "copy",
        "env",
        "expose",
        "from",
        "label",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    ];
    EXPANDING.iter().any(|k| k.eq_ignore_ascii_case(keyword))
}

#[cfg(test)]
mod tests {
    use super::expands;

    #[test]
    fn instructions_that_expand() {
        for k in [
            "ADD",
            "ARG",
            "COPY",
            "ENV",
            "EXPOSE",
            "FROM",
            "LABEL",
            "STOPSIGNAL",
            "USER",
            "VOLUME",
            "WORKDIR",
            "copy",
            "Workdir",
        ] {
            assert!(expands(k), "{k}");
        }
        for k in [
            "RUN",
            "CMD",
            "ENTRYPOINT",
            "SHELL",
            "HEALTHCHECK",
            "ONBUILD",
            "MAINTAINER",
            "",
            "COPYX",
            "FRO",
            "ſhell",
        ] {
            assert!(!expands(k), "{k}");
        }
    }
}
