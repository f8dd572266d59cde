//! Parser directives (`# escape=`, `# syntax=`, `# check=`), with BuildKit's quirks:
//! directives must come first, a blank line or any other line ends them, names are
//! case-insensitive, and each may appear only once.

use super::json;
use crate::go_compat::unicode::{discard_bom, lossy, trim_left_space};

/// A directive found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `escape`, `syntax` or `check`.
    pub name: String,
    /// The value after `=`, trimmed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// A directive value found by [`detect_syntax`] / [`parse_directive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveValue {
    /// The value up to the first space (for `syntax`, the frontend image reference).
    pub reference: String,
    /// The whole value.
    pub cmdline: String,
    /// 1-based line (0 for the JSON form without a shebang, as upstream reports).
    pub line: usize,
}

const VALID: [&str; 3] = ["syntax", "escape", "check"];

/// BuildKit's `DirectiveParser`: fed one line at a time, it recognises directives
/// until the first line that is not one.
#[derive(Debug, Clone)]
pub struct DirectiveParser {
    line: usize,
    comment: Vec<u8>,
    seen: Vec<String>,
    done: bool,
}

impl Default for DirectiveParser {
    fn default() -> Self {
        DirectiveParser {
            line: 0,
            comment: b"#".to_vec(),
            seen: Vec::new(),
            done: false,
        }
    }
}

fn is_re_space(c: u8) -> bool {
    // RE2's \s: [\t\n\f\r ]
    matches!(c, b'\t' | b'\n' | 0x0C | b'\r' | b' ')
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` and returns (name, value).
fn match_directive(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if !line.first()?.is_ascii_alphabetic() {
        return None;
    }
    let mut i = 1;
    while i < line.len() && line[i].is_ascii_alphanumeric() {
        i += 1;
    }
    let name = &line[..i];
    while i < line.len() && is_re_space(line[i]) {
        i += 1;
    }
    if line.get(i) != Some(&b'=') {
        return None;
    }
    let rest = &line[i + 1..];
    let lead = rest.iter().take_while(|&&c| is_re_space(c)).count();
    if lead == rest.len() {
        // Only whitespace after '=': the greedy \s* gives one character back to `.+?`,
        // unless that character is a newline, which `.` does not match.
        let last = *rest.last()?;
        if last == b'\n' {
            return None;
        }
        return Some((name, &rest[rest.len() - 1..]));
    }
    let mut end = rest.len();
    while end > lead && is_re_space(rest[end - 1]) {
        end -= 1;
    }
    let value = &rest[lead..end];
    if value.contains(&b'\n') {
        return None;
    }
    Some((name, value))
}

impl DirectiveParser {
    /// A parser whose line counter starts after `line` lines.
    pub fn starting_at(line: usize) -> Self {
        DirectiveParser {
            line,
            ..Default::default()
        }
    }

    /// Uses `comment` (e.g. `//`) instead of `#` as the comment prefix.
    pub fn set_comment(&mut self, comment: &str) {
        self.comment = comment.as_bytes().to_vec();
    }

    /// `DirectiveParser.ParseLine`: `Ok(Some(_))` for a directive line, `Ok(None)` otherwise;
    /// an error for a repeated directive.
    pub fn parse_line(&mut self, line: &[u8]) -> Result<Option<Directive>, String> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix(self.comment.as_slice()) else {
            self.done = true;
            return Ok(None);
        };
        let rest = trim_left_space(rest);
        let Some((name, value)) = match_directive(rest) else {
            self.done = true;
            return Ok(None);
        };
        let k = String::from_utf8_lossy(name).to_ascii_lowercase();
        if !VALID.contains(&k.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&k) {
            return Err(format!("only one {k} parser directive can be used"));
        }
        self.seen.push(k.clone());
        Ok(Some(Directive {
            name: k,
            value: lossy(value),
            line: self.line,
        }))
    }

    /// `DirectiveParser.ParseAll`: directives at the top of `data` (lines split as
    /// `bufio.ScanLines` does), stopping at the first error.
    pub fn parse_all(&mut self, data: &[u8]) -> Result<Vec<Directive>, String> {
        match self.parse_all_partial(data) {
            (d, None) => Ok(d),
            (_, Some(e)) => Err(e),
        }
    }

    /// Like [`parse_all`](Self::parse_all) but also returns what was found before an error.
    pub fn parse_all_partial(&mut self, data: &[u8]) -> (Vec<Directive>, Option<String>) {
        let mut out = Vec::new();
        for line in scan_lines(data) {
            if self.done {
                break;
            }
            match self.parse_line(line) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }
}

/// `bufio.ScanLines` (lines without `\n` and one trailing `\r`), limited like a
/// default `bufio.Scanner` (a line of 64 KiB or more stops the scan).
fn scan_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    let mut stopped = false;
    std::iter::from_fn(move || {
        if stopped || rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.iter().position(|&c| c == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.len() > super::MAX_LINE_LEN {
            stopped = true;
            return None;
        }
        rest = next;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// Drops a first line starting with `#!`.
fn discard_shebang(dt: &[u8]) -> (&[u8], bool) {
    let (line, rest) = match dt.iter().position(|&c| c == b'\n') {
        Some(i) => (&dt[..i], &dt[i + 1..]),
        None => (dt, &dt[dt.len()..]),
    };
    if line.starts_with(b"#!") {
        (rest, true)
    } else {
        (dt, false)
    }
}

fn detect_from_parser(key: &str, dt: &[u8], mut parser: DirectiveParser) -> Option<DirectiveValue> {
    // Upstream ignores the error and keeps the directives found before it.
    let (directives, _) = parser.parse_all_partial(dt);
    directives
        .into_iter()
        .find(|d| d.name == key)
        .map(|d| DirectiveValue {
            reference: d.value.split(' ').next().unwrap_or_default().to_string(),
            cmdline: d.value,
            line: d.line,
        })
}

fn parse_directive_any(key: &str, dt: &[u8], any_format: bool) -> Option<DirectiveValue> {
    let dt = discard_bom(dt);
    let (dt, had_shebang) = discard_shebang(dt);
    let line = usize::from(had_shebang);

    if let Some(v) = detect_from_parser(key, dt, DirectiveParser::starting_at(line)) {
        return Some(v);
    }
    if !any_format {
        return None;
    }
    let mut p = DirectiveParser::starting_at(line);
    p.set_comment("//");
    if let Some(v) = detect_from_parser(key, dt, p) {
        return Some(v);
    }
    if let Ok(json::Value::Object(members)) = json::decode(dt) {
        // Go's map keeps the last duplicate.
        if let Some((_, Some(v))) = members.iter().rev().find(|(k, _)| k == key) {
            return Some(DirectiveValue {
                reference: v.clone(),
                cmdline: v.clone(),
                line,
            });
        }
    }
    None
}

/// `parser.DetectSyntax`: the `syntax` directive, also accepting `// syntax=`, a JSON
/// document with a top-level `"syntax"` string, a UTF-8 BOM and a leading `#!` line.
pub fn detect_syntax(dt: &[u8]) -> Option<DirectiveValue> {
    parse_directive_any("syntax", dt, true)
}

/// `parser.ParseDirective(key, dt)`: a `# key=value` directive (no `//` or JSON forms).
pub fn parse_directive(key: &str, dt: &[u8]) -> Option<DirectiveValue> {
    parse_directive_any(key, dt, false)
}
