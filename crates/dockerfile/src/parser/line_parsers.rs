//! Per-instruction argument parsers (BuildKit's `line_parsers.go` and `split_command.go`).
//!
//! Each function reproduces the Go code's byte/rune handling exactly, including its
//! inconsistencies: the flag extractor reads bytes as Latin-1 runes, the word splitter
//! decodes UTF-8 (turning invalid bytes into U+FFFD), and the whitespace splitter only
//! knows `[\t\v\f\r ]`.

use super::json;
use crate::go_compat::unicode::{
    decode_rune, is_space, is_space_byte, offset_in, quote, split_ws, trim_left_space, trim_space,
};

/// What an argument parser produced: the argument chain, or a nested instruction (ONBUILD).
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    pub args: Vec<Vec<u8>>,
    /// ONBUILD's trigger: the rest of the line, and its offset in the parent's line.
    pub sub: Option<(Vec<u8>, usize)>,
    pub json: bool,
}

impl Parsed {
    fn args(args: Vec<Vec<u8>>) -> Self {
        Parsed {
            args,
            ..Default::default()
        }
    }
}

/// The flags before the arguments, with each flag's byte offset in the input.
pub(crate) struct Flags {
    pub rest_offset: usize,
    pub flags: Vec<(Vec<u8>, usize)>,
}

/// Where [`extract_builder_flags`] is: between words, in a word, or in a quote in a word.
#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Appends byte `c` read as a Latin-1 rune, UTF-8 encoded (as Go's `rune(c)` then `string`).
fn push_latin1(w: &mut Vec<u8>, c: u8) {
    if c < 0x80 {
        w.push(c);
    } else {
        let mut buf = [0u8; 4];
        w.extend_from_slice((c as char).encode_utf8(&mut buf).as_bytes());
    }
}

/// `extractBuilderFlags`: reads leading `--flag` words. Bytes are treated as Latin-1
/// runes (so a UTF-8 sequence is re-encoded byte by byte), quotes are removed, the
/// escape token escapes the next byte, and a lone `--` ends the flags.
pub(crate) fn extract_builder_flags(line: &[u8], escape: u8) -> Flags {
    let mut words: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut word_start = 0;
    let mut quote_ch = 0u8;
    let mut blank_ok = false;
    let mut ch = 0u8;
    let mut pos = 0;
    while pos <= line.len() {
        if pos != line.len() {
            ch = line[pos];
        }
        if phase == Phase::Spaces {
            if pos == line.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == line.len() || line[pos + 1] != b'-' {
                return Flags {
                    rest_offset: pos,
                    flags: words,
                };
            }
            phase = Phase::Word;
            word_start = pos;
        }
        if (phase == Phase::Word || phase == Phase::Quote) && pos == line.len() {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                words.push((std::mem::take(&mut word), word_start));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if word == b"--" {
                    return Flags {
                        rest_offset: pos,
                        flags: words,
                    };
                }
                if blank_ok || !word.is_empty() {
                    words.push((std::mem::take(&mut word), word_start));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote_ch = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == escape {
                if pos + 1 == line.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = line[pos];
            }
            push_latin1(&mut word, ch);
            pos += 1;
            continue;
        }
        if phase == Phase::Quote {
            if ch == quote_ch {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            if ch == escape {
                if pos + 1 == line.len() {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = line[pos];
            }
            push_latin1(&mut word, ch);
        }
        pos += 1;
    }
    Flags {
        rest_offset: line.len(),
        flags: words,
    }
}

/// The pieces of an instruction line.
pub(crate) struct Split<'a> {
    pub cmd: &'a [u8],
    pub cmd_offset: usize,
    pub flags: Vec<(Vec<u8>, usize)>,
    pub args: &'a [u8],
    pub args_offset: usize,
}

/// `splitCommand`: keyword, `--flags`, and the (trimmed) rest of the line. Offsets are
/// relative to `line`.
pub(crate) fn split_command(line: &[u8], escape: u8) -> Split<'_> {
    let trimmed = trim_space(line);
    let base = offset_in(line, trimmed);
    let parts = split_ws(trimmed, 2);
    let cmd = parts[0];
    let mut flags = Vec::new();
    let mut args: &[u8] = &line[line.len()..];
    if parts.len() == 2 {
        let rest = parts[1];
        let rest_off = offset_in(line, rest);
        let f = extract_builder_flags(rest, escape);
        flags = f
            .flags
            .into_iter()
            .map(|(w, o)| (w, o + rest_off))
            .collect();
        args = &rest[f.rest_offset..];
    }
    let args = trim_space(args);
    Split {
        cmd,
        cmd_offset: base,
        flags,
        args_offset: offset_in(line, args),
        args,
    }
}

/// `parseWords`: splits on unquoted, unescaped whitespace, keeping quotes and escapes
/// in the words. Runes are decoded as UTF-8, so invalid bytes become U+FFFD.
pub fn parse_words(rest: &[u8], escape: u8) -> Vec<Vec<u8>> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let escape = escape as char;
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote_ch = '\0';
    let mut blank_ok = false;
    let mut ch = '\0';
    let mut width = 0;
    let mut word = String::new();
    let mut pos = 0;
    while pos <= rest.len() {
        if pos != rest.len() {
            (ch, width) = decode_rune(&rest[pos..]);
        }
        if phase == Phase::Spaces {
            if pos == rest.len() {
                break;
            }
            if is_space(ch) {
                pos += width;
                continue;
            }
            phase = Phase::Word;
        }
        if (phase == Phase::Word || phase == Phase::Quote) && pos == rest.len() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word).into_bytes());
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word).into_bytes());
                }
                word.clear();
                blank_ok = false;
                pos += width;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote_ch = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + width == rest.len() {
                    pos += width;
                    continue;
                }
                word.push(ch);
                pos += width;
                (ch, width) = decode_rune(&rest[pos..]);
            }
            word.push(ch);
            pos += width;
            continue;
        }
        if phase == Phase::Quote {
            if ch == quote_ch {
                phase = Phase::Word;
            }
            if ch == escape && quote_ch != '\'' {
                if pos + width == rest.len() {
                    phase = Phase::Word;
                    pos += width;
                    continue;
                }
                pos += width;
                word.push(ch);
                (ch, width) = decode_rune(&rest[pos..]);
            }
            word.push(ch);
        }
        pos += width;
    }
    words
}

/// `parseNameVal` (ENV, LABEL): `key value` (old form) or `k=v k2=v2 ...`. The chain is
/// key, value, separator (`""` for the old form, `"="` for the new one), repeated.
pub(crate) fn parse_name_val(rest: &[u8], key: &str, escape: u8) -> Result<Vec<Vec<u8>>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains(&b'=') {
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![parts[0].to_vec(), parts[1].to_vec(), Vec::new()]);
    }
    let mut out = Vec::new();
    for word in words {
        let Some(eq) = word.iter().position(|&c| c == b'=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                quote(&word)
            ));
        };
        out.push(word[..eq].to_vec());
        out.push(word[eq + 1..].to_vec());
        out.push(b"=".to_vec());
    }
    Ok(out)
}

/// `parseStringsWhitespaceDelimited` (FROM, EXPOSE, and the non-JSON form of ADD/COPY/VOLUME).
fn parse_strings_whitespace_delimited(rest: &[u8]) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::args(split_ws(rest, -1).into_iter().map(<[u8]>::to_vec).collect())
}

/// `parseString` (MAINTAINER, STOPSIGNAL, USER, WORKDIR).
fn parse_string(rest: &[u8]) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::args(vec![rest.to_vec()])
}

/// The error for a JSON array with a non-string element.
pub const ERR_NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

pub(crate) enum JsonOutcome {
    Strings(Vec<String>),
    /// Not JSON (or not decodable): the caller falls back to the shell form.
    NotJson,
    /// A JSON array with a non-string element: a hard error.
    NotStringArray,
}

/// `parseJSON`: a JSON array of strings.
pub(crate) fn parse_json(rest: &[u8]) -> JsonOutcome {
    let rest = trim_left_space(rest);
    if !rest.starts_with(b"[") {
        return JsonOutcome::NotJson;
    }
    match json::decode(rest) {
        Ok(json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Some(s) => out.push(s),
                    None => return JsonOutcome::NotStringArray,
                }
            }
            JsonOutcome::Strings(out)
        }
        _ => JsonOutcome::NotJson,
    }
}

/// `parseMaybeJSON` (CMD, ENTRYPOINT, RUN, SHELL).
fn parse_maybe_json(rest: &[u8]) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(rest) {
        JsonOutcome::Strings(v) => Ok(Parsed {
            args: v.into_iter().map(String::into_bytes).collect(),
            sub: None,
            json: true,
        }),
        JsonOutcome::NotStringArray => Err(ERR_NOT_STRING_ARRAY.into()),
        JsonOutcome::NotJson => Ok(Parsed::args(vec![rest.to_vec()])),
    }
}

/// `parseMaybeJSONToList` (ADD, COPY, VOLUME).
fn parse_maybe_json_to_list(rest: &[u8]) -> Result<Parsed, String> {
    match parse_json(rest) {
        JsonOutcome::Strings(v) => Ok(Parsed {
            args: v.into_iter().map(String::into_bytes).collect(),
            sub: None,
            json: true,
        }),
        JsonOutcome::NotStringArray => Err(ERR_NOT_STRING_ARRAY.into()),
        JsonOutcome::NotJson => Ok(parse_strings_whitespace_delimited(rest)),
    }
}

/// `parseHealthConfig`: the type word (`CMD`, `NONE`, ...) then a maybe-JSON command.
/// The type ends at the first byte that is a space when read as a Latin-1 rune.
fn parse_health_config(rest: &[u8]) -> Result<Parsed, String> {
    let mut sep = 0;
    while sep < rest.len() && !is_space_byte(rest[sep]) {
        sep += 1;
    }
    let mut next = sep;
    while next < rest.len() && is_space_byte(rest[next]) {
        next += 1;
    }
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let mut cmd = parse_maybe_json(&rest[next..])?;
    cmd.args.insert(0, rest[..sep].to_vec());
    Ok(cmd)
}

/// `parseNameOrNameVal` (ARG): the words, quotes kept.
fn parse_name_or_name_val(rest: &[u8], escape: u8) -> Parsed {
    Parsed::args(parse_words(rest, escape))
}

/// Dispatches on the lower-cased keyword. Unknown keywords parse to a single empty
/// argument, as upstream's `parseIgnore` does.
pub(crate) fn dispatch(
    cmd_lower: &str,
    rest: &[u8],
    rest_offset: usize,
    escape: u8,
) -> Result<Parsed, String> {
    match cmd_lower {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest),
        "arg" => Ok(parse_name_or_name_val(rest, escape)),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest),
        "env" => parse_name_val(rest, "ENV", escape).map(Parsed::args),
        "label" => parse_name_val(rest, "LABEL", escape).map(Parsed::args),
        "expose" | "from" => Ok(parse_strings_whitespace_delimited(rest)),
        "healthcheck" => parse_health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(parse_string(rest)),
        "onbuild" => {
            if rest.is_empty() {
                return Ok(Parsed::default());
            }
            Ok(Parsed {
                args: Vec::new(),
                sub: Some((rest.to_vec(), rest_offset)),
                json: false,
            })
        }
        _ => Ok(Parsed::args(vec![Vec::new()])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_latin1() {
        let f = extract_builder_flags("--x=é rest".as_bytes(), b'\\');
        assert_eq!(f.flags[0].0, "--x=Ã©".as_bytes());
        assert_eq!(&"--x=é rest".as_bytes()[f.rest_offset..], b"rest");
        // 0xA0 (the second byte of "à") counts as a space.
        let f = extract_builder_flags("--x=à rest".as_bytes(), b'\\');
        assert_eq!(f.flags[0].0, "--x=Ã".as_bytes());
    }

    #[test]
    fn flags_quotes_and_double_dash() {
        let f = extract_builder_flags(br#"--a="b c" --d='' -- --e x"#, b'\\');
        let flags: Vec<_> = f
            .flags
            .iter()
            .map(|(w, _)| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert_eq!(flags, vec!["--a=b c", "--d="]);
    }

    #[test]
    fn words() {
        assert_eq!(
            parse_words(b"a \xff", b'\\'),
            vec![b"a".to_vec(), "\u{fffd}".as_bytes().to_vec()]
        );
        assert_eq!(
            parse_words(b"'a b' c\\ d \"e\\\" f\"", b'\\'),
            vec![
                b"'a b'".to_vec(),
                b"c\\ d".to_vec(),
                b"\"e\\\" f\"".to_vec()
            ]
        );
    }
}
