//! Heredoc detection (`<<EOF`, `<<-EOF`, `3<<"EOF"`, ...) for RUN, COPY and ADD.
//!
//! BuildKit finds heredocs by running its shell lexer over the instruction line (with
//! raw quotes and raw escapes, leaving unset variables untouched) and matching each
//! word against `^(\d*)<<(-?)\s*([^<]*)$`. The lexer behaviour needed for that, with
//! an empty environment, is reproduced here so the parser stands on its own.

use super::gostr::{is_digit, is_letter, is_space, runes};

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, with quotes removed.
    pub name: String,
    /// The `N` of `N<<WORD` (0 when absent).
    pub file_descriptor: u64,
    /// False when any part of the delimiter was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are to be removed from the body (see [`chomp_heredoc_content`]).
    pub chomp: bool,
    /// The raw body, every line with its line ending, up to the terminator line.
    pub content: Vec<u8>,
}

/// Removes leading TAB characters from every line (`ChompHeredocContent`).
pub fn chomp_heredoc_content(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut at_line_start = true;
    for &c in src {
        if at_line_start && c == b'\t' {
            continue;
        }
        at_line_start = c == b'\n';
        out.push(c);
    }
    out
}

const EOF: i32 = -1;

/// The subset of BuildKit's shell lexer (`shell.Lex`) used for heredoc detection:
/// escape token `\`, an empty environment, `SkipUnsetEnv`.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    /// Shared between nested `process_stop_on` calls, as upstream's `wordsBuffer` is.
    words_buffer: String,
}

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

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn rune_string(ch: i32) -> String {
    if ch < 0 {
        '\u{FFFD}'.to_string()
    } else {
        char::from_u32(ch as u32).unwrap_or('\u{FFFD}').to_string()
    }
}

impl Lexer {
    fn new(word: &str, raw_quotes: bool, raw_escapes: bool) -> Self {
        let mut chars: Vec<char> = word.chars().collect();
        // text/scanner skips a byte-order mark at the very start.
        if chars.first() == Some(&'\u{FEFF}') {
            chars.remove(0);
        }
        Lexer {
            chars,
            pos: 0,
            raw_quotes,
            raw_escapes,
            words_buffer: String::new(),
        }
    }

    fn peek(&self) -> i32 {
        self.chars.get(self.pos).map_or(EOF, |&c| c as i32)
    }

    fn next(&mut self) -> i32 {
        match self.chars.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                c as i32
            }
            None => EOF,
        }
    }

    fn process_words(&mut self) -> Result<Vec<String>, String> {
        let raw = self.raw_escapes;
        self.process_stop_on(EOF, raw).map(|(_, w)| w)
    }

    fn process_stop_on(
        &mut self,
        stop: i32,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        self.words_buffer.clear();
        let mut words = Words {
            words: Vec::new(),
            in_word: false,
        };
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop, &mut result, &mut words);
        self.raw_escapes = saved;
        r?;
        let mut buf = std::mem::take(&mut self.words_buffer);
        let w = words.get_words(&mut buf);
        self.words_buffer = buf;
        Ok((result, w))
    }

    fn stop_on_inner(
        &mut self,
        stop: i32,
        result: &mut String,
        words: &mut Words,
    ) -> Result<(), String> {
        while self.peek() != EOF {
            let ch = self.peek();
            if stop != EOF && ch == stop {
                self.next();
                return Ok(());
            }
            let special = match ch {
                0x24 /* $ */ => Some(self.process_dollar()),
                0x3C /* < */ => Some(Ok(self.process_possible_heredoc())),
                0x27 /* ' */ => Some(self.process_single_quote()),
                0x22 /* " */ => Some(self.process_double_quote()),
                _ => None,
            };
            if let Some(tmp) = special {
                let tmp = tmp?;
                result.push_str(&tmp);
                let mut buf = std::mem::take(&mut self.words_buffer);
                if ch == '$' as i32 {
                    words.add_string(&mut buf, &tmp);
                } else {
                    words.add_raw_string(&mut buf, &tmp);
                }
                self.words_buffer = buf;
                continue;
            }
            let mut ch = self.next();
            let mut buf = std::mem::take(&mut self.words_buffer);
            if ch == '\\' as i32 {
                if self.raw_escapes {
                    words.add_raw_char(&mut buf, '\\');
                    result.push('\\');
                }
                ch = self.next();
                if ch == EOF {
                    self.words_buffer = buf;
                    break;
                }
                words.add_raw_char(&mut buf, to_char(ch));
            } else {
                words.add_char(&mut buf, to_char(ch));
            }
            self.words_buffer = buf;
            result.push(to_char(ch));
        }
        if stop != EOF {
            return Err(format!(
                "unexpected end of statement while looking for matching {}",
                rune_string(stop)
            ));
        }
        Ok(())
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let ch = self.next();
        if self.raw_quotes {
            result.push(to_char(ch));
        }
        loop {
            let ch = self.next();
            if ch == EOF {
                return Err(
                    "unexpected end of statement while looking for matching single-quote".into(),
                );
            }
            if ch == '\'' as i32 {
                if self.raw_quotes {
                    result.push('\'');
                }
                return Ok(result);
            }
            result.push(to_char(ch));
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let ch = self.next();
        if self.raw_quotes {
            result.push(to_char(ch));
        }
        loop {
            match self.peek() {
                EOF => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                0x22 => {
                    self.next();
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                0x24 => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                _ => {
                    let mut ch = self.next();
                    if ch == '\\' as i32 {
                        if self.raw_escapes {
                            result.push('\\');
                        }
                        match self.peek() {
                            EOF => continue,
                            0x22 | 0x24 | 0x5C => ch = self.next(),
                            _ => {}
                        }
                    }
                    result.push(to_char(ch));
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != '{' as i32 {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            // Unset (the environment is empty) and SkipUnsetEnv: keep the reference.
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            EOF => return Err("syntax error: missing '}'".into()),
            0x7B | 0x7D | 0x3A => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let mut ch = self.next();
        let mut chs = rune_string(ch);
        match ch {
            0x7D => Ok(format!("${{{name}}}")),
            0x3A | 0x2B | 0x2D | 0x3F | 0x23 | 0x25 => {
                let mut null_is_unset = false;
                if ch == ':' as i32 {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push_str(&rune_string(ch));
                }
                let raw = ch == '#' as i32 || ch == '%' as i32;
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on('}' as i32, raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek() == EOF {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                Ok(format!("${{{name}{chs}{word}}}"))
            }
            0x2F => {
                if self.peek() == '/' as i32 {
                    self.next();
                }
                let pattern = match self.process_stop_on('/' as i32, true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek() == EOF {
                            return Err("syntax error: missing '/' in ${}".into());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on('}' as i32, true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek() == EOF {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while self.peek() != EOF {
            let ch = to_char(self.peek());
            if name.is_empty() && is_digit(ch) {
                while self.peek() != EOF && is_digit(to_char(self.peek())) {
                    name.push(to_char(self.next()));
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != '<' as i32 {
            return "<".into();
        }
        self.next();
        let mut result = String::from("<<");
        while matches!(self.peek(), 0x09 | 0x0D | 0x20) {
            result.push(to_char(self.next()));
        }
        result
    }
}

fn to_char(c: i32) -> char {
    if c < 0 {
        '\u{FFFD}'
    } else {
        char::from_u32(c as u32).unwrap_or('\u{FFFD}')
    }
}

fn process_words(s: &str, raw_quotes: bool, raw_escapes: bool) -> Result<Vec<String>, String> {
    Lexer::new(s, raw_quotes, raw_escapes)
        .process_words()
        .map_err(|e| {
            format!(
                "failed to process {}: {e}",
                super::gostr::quote(s.as_bytes())
            )
        })
}

/// `ParseHeredoc`: recognises a heredoc word such as `<<EOF`, `<<-'EOF'` or `3<<EOF`.
/// `Ok(None)` when the word is not a heredoc.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, String> {
    // ^(\d*)<<(-?)\s*([^<]*)$
    let b = src.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let Some(after) = src[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if rest.contains('<') {
        return Ok(None);
    }
    // strconv.ParseUint(..., 10, 0): empty is an error (0), overflow saturates.
    let fd = if digits == 0 {
        0
    } else {
        src[..digits].parse::<u64>().unwrap_or(u64::MAX)
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let words = process_words(rest, false, false)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let words_raw = process_words(rest, true, false)?;
    if words_raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let word = words.into_iter().next().unwrap_or_default();
    let expand = count(&word) == count(&words_raw[0]);
    Ok(Some(Heredoc {
        name: word,
        file_descriptor: fd,
        expand,
        chomp,
        content: Vec::new(),
    }))
}

/// `heredocsFromLine`: every heredoc word on an instruction line, in order.
pub fn heredocs_from_line(line: &[u8]) -> Result<Vec<Heredoc>, String> {
    let text: String = runes(line).map(|(_, r, _)| r).collect();
    // Lexing errors are ignored upstream: no words, so no heredocs.
    let words = Lexer::new(&text, true, true)
        .process_words()
        .unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(h) = parse_heredoc(&word)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_raw_quotes_and_escapes() {
        let w = Lexer::new(r#"RUN <<'EOF' "a b" c\ d $x ${y:-z w}"#, true, true)
            .process_words()
            .unwrap();
        assert_eq!(
            w,
            vec!["RUN", "<<'EOF'", "\"a b\"", "c\\ d", "$x", "${y:-z", "w}"]
        );
        let w = Lexer::new(r#"'a'"b"\c"#, false, false)
            .process_words()
            .unwrap();
        assert_eq!(w, vec!["abc"]);
    }

    #[test]
    fn shared_buffer_quirk() {
        // The nested ${...} scan resets the shared word buffer, dropping "abc".
        let w = Lexer::new("abc${x:-y}", false, false)
            .process_words()
            .unwrap();
        assert_eq!(w, vec!["${x:-y}"]);
    }

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc("3<<-'EOF'").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.file_descriptor, h.chomp, h.expand),
            ("EOF", 3, true, false)
        );
        assert!(parse_heredoc("<<EOF sh").unwrap().is_none());
        assert!(parse_heredoc("<<'EOF").is_err());
    }
}
