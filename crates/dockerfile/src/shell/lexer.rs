//! The word processor: a faithful port of the behaviour of BuildKit's `shellWord`
//! (`frontend/dockerfile/shell/lex.go`), including its quirks. Comments marked *quirk* point
//! at places where BuildKit differs from a POSIX shell; they are reproduced on purpose.

use std::collections::BTreeSet;

use super::env::Env;
use super::pattern::{scanner_chars, substitute, trim_prefix, trim_suffix};
use super::{Expansion, Lexer};
use crate::go_compat::unicode::{is_digit, is_letter, is_space, quote};
use crate::Error;

/// How deeply `${...}` forms and quotes inside them may nest. BuildKit (Go, growable stacks) has
/// no limit; this one only exists so that absurd input cannot overflow the stack, and is far
/// beyond anything a Dockerfile contains.
pub const MAX_NESTING: usize = 100;

/// Go's `string(ch)` for a scanner result: EOF prints as U+FFFD.
fn go_string(c: Option<char>) -> char {
    c.unwrap_or('\u{FFFD}')
}

/// The word-splitting state (`wordsStruct`). Its buffer lives in [`ShellWord::words_buffer`]
/// because BuildKit shares one buffer between nested calls (see `process_stop_on`).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if is_space(ch) && self.in_word {
            if !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(buf, ch);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for ch in s.chars() {
            self.add_char(buf, ch);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn get_words(&mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
            self.in_word = false;
        }
        std::mem::take(&mut self.words)
    }
}

pub(crate) struct ShellWord<'a> {
    lex: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    capture: bool,
    depth: usize,
    words_buffer: String,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

/// What one top-level run produces.
pub(crate) struct Processed {
    pub(crate) result: String,
    pub(crate) words: Vec<String>,
}

impl<'a> ShellWord<'a> {
    pub(crate) fn new(lex: &'a Lexer, word: &str, env: &'a dyn Env, capture: bool) -> Self {
        ShellWord {
            lex,
            env,
            // text/scanner skips a byte order mark at the very start.
            chars: scanner_chars(word),
            pos: 0,
            raw_escapes: lex.raw_escapes,
            capture,
            depth: 0,
            words_buffer: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    /// `shellWord.process`: the whole word, errors wrapped as `failed to process "<word>": ...`.
    pub(crate) fn process(&mut self, source: &str) -> Result<Processed, Error> {
        let raw = self.lex.raw_escapes;
        match self.process_stop_on(None, raw) {
            Ok((result, words)) => Ok(Processed { result, words }),
            Err(e) => Err(Error::Expand {
                message: format!("failed to process {}: {e}", quote(source.as_bytes())),
            }),
        }
    }

    pub(crate) fn into_expansion(self, value: String) -> Expansion {
        Expansion {
            value,
            matched: self.matched,
            unmatched: self.unmatched,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// `processStopOn`: process until `stop` (consumed) or the end of input (`stop == None`).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        // *quirk*: BuildKit resets the one shared words buffer on every call, nested ones
        // included, so `abc${x:-def}` splits into just `def`.
        self.words_buffer.clear();
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        let escape = self.lex.escape;
        let quotes = !self.lex.skip_process_quotes;

        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                let w = words.get_words(&mut self.words_buffer);
                return Ok((result, w));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()),
                '<' => Some(Ok(self.process_possible_heredoc())),
                '\'' if quotes => Some(self.process_single_quote()),
                '"' if quotes => Some(self.process_double_quote()),
                _ => None,
            };
            if let Some(tmp) = special {
                let tmp = tmp?;
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&mut self.words_buffer, &tmp);
                } else {
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                continue;
            }

            let mut ch = ch;
            self.next();
            if ch == escape {
                if self.raw_escapes {
                    words.add_raw_char(&mut self.words_buffer, ch);
                    result.push(ch);
                }
                // The escape character escapes the next one; at the end of input it vanishes.
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                words.add_raw_char(&mut self.words_buffer, ch);
            } else {
                words.add_char(&mut self.words_buffer, ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        let w = words.get_words(&mut self.words_buffer);
        Ok((result, w))
    }

    /// Everything between single quotes is literal; a single quote cannot be escaped.
    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.push(go_string(open));
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// Between double quotes, `$` expands and the escape character escapes only `"`, `$` and
    /// itself; before any other character it stays.
    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.push(go_string(open));
        }
        let escape = self.lex.escape;
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the end: ignored (the missing quote errors next).
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "syntax error: more than {MAX_NESTING} nested substitutions"
            ));
        }
        self.depth += 1;
        let r = self.process_dollar_inner();
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> Result<String, String> {
        self.next(); // '$'

        // $xxx
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }

        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        let mut chs = String::new();
        chs.push(go_string(ch));

        match ch {
            Some('}') => {
                // ${xx}
                Ok(match self.get_env(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset_env => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut op = ch;
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    op = self.next();
                    chs.push(go_string(op));
                }
                let raw_escapes = matches!(op, Some('#' | '%'));
                if null_is_unset && raw_escapes {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw_escapes) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".to_string());
                        }
                        return Err(e);
                    }
                };

                let found = self.get_env(&name);
                if self.lex.skip_unset_env && found.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let set = found.is_some();
                let value = found.unwrap_or_default();
                let empty_counts_as_unset = null_is_unset && value.is_empty();

                match op {
                    Some('-') => Ok(if !set || empty_counts_as_unset {
                        word
                    } else {
                        value
                    }),
                    Some('+') => Ok(if !set || empty_counts_as_unset {
                        String::new()
                    } else {
                        word
                    }),
                    Some('?') => required(&name, &word, set, empty_counts_as_unset, value),
                    Some(op @ ('%' | '#')) => {
                        // %/# remove the shortest match, %%/## the longest.
                        let (pattern, greedy) = match word.strip_prefix(op) {
                            Some(rest) => (rest, true),
                            None => (word.as_str(), false),
                        };
                        if op == '%' {
                            trim_suffix(pattern, &value, greedy)
                        } else {
                            trim_prefix(pattern, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => self.process_replace(&name),
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`, after the name.
    fn process_replace(&mut self, name: &str) -> Result<String, String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((w, _)) => w,
            Err(e) => {
                if self.peek().is_none() {
                    return Err("syntax error: missing '/' in ${}".to_string());
                }
                return Err(e);
            }
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((w, _)) => w,
            Err(e) => {
                if self.peek().is_none() {
                    return Err("syntax error: missing '}'".to_string());
                }
                return Err(e);
            }
        };
        let found = self.get_env(name);
        if self.lex.skip_unset_env && found.is_none() {
            // *quirk*: the second '/' of `//` is not reproduced.
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = found.unwrap_or_default();
        substitute(&pattern, &replacement, &value, replace_all)
    }

    /// A name: letters, digits and `_`; or a run of digits (positional); or one special
    /// parameter character (`@ * # ? - $ !`).
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek() {
                    if !is_digit(c) {
                        break;
                    }
                    self.next();
                    name.push(c);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                name.push(ch);
                return name;
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// `<<` followed by blanks is kept together (the blanks are not word separators).
    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(c);
            self.next();
        }
        result
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let v = self.env.get(name).map(str::to_string);
        if self.capture {
            if v.is_some() {
                self.matched.insert(name.to_string());
            } else {
                self.unmatched.insert(name.to_string());
            }
        }
        v
    }
}

/// `${name?word}` and `${name:?word}`: the value, or an error naming the variable
/// (with `word` as the message when given).
fn required(
    name: &str,
    word: &str,
    set: bool,
    empty_counts_as_unset: bool,
    value: String,
) -> Result<String, String> {
    if !set {
        let message = if word.is_empty() {
            "is not allowed to be unset"
        } else {
            word
        };
        return Err(format!("{name}: {message}"));
    }
    if empty_counts_as_unset {
        let message = if word.is_empty() {
            "is not allowed to be empty"
        } else {
            word
        };
        return Err(format!("{name}: {message}"));
    }
    Ok(value)
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}
