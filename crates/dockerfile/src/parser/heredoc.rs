//! Heredoc detection (`<<EOF`, `<<-EOF`, `3<<"EOF"`, ...) for RUN, COPY and ADD.
//!
//! BuildKit finds heredocs by running its shell lexer over the instruction line (with
//! raw quotes and raw escapes, leaving unset variables untouched) and matching each
//! word against `^(\d*)<<(-?)\s*([^<]*)$`; the lexer is [`crate::shell::Lexer`] with an
//! empty environment.

use crate::go_compat::unicode::runes;
use crate::shell::{EmptyEnv, Lexer};

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

/// BuildKit's heredoc lexer: `shell.NewLex('\\')` with `SkipUnsetEnv`, over an empty
/// environment; errors are `failed to process "<word>": <reason>`.
fn process_words(s: &str, raw_quotes: bool, raw_escapes: bool) -> Result<Vec<String>, String> {
    let lexer = Lexer {
        raw_quotes,
        raw_escapes,
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    lexer.process_words(s, &EmptyEnv).map_err(|e| e.to_string())
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
    let words = process_words(&text, true, true).unwrap_or_default();
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
        let w = process_words(r#"RUN <<'EOF' "a b" c\ d $x ${y:-z w}"#, true, true).unwrap();
        assert_eq!(
            w,
            vec!["RUN", "<<'EOF'", "\"a b\"", "c\\ d", "$x", "${y:-z", "w}"]
        );
        let w = process_words(r#"'a'"b"\c"#, false, false).unwrap();
        assert_eq!(w, vec!["abc"]);
    }

    #[test]
    fn shared_buffer_quirk() {
        // The nested ${...} scan resets the shared word buffer, dropping "abc".
        let w = process_words("abc${x:-y}", false, false).unwrap();
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
