//! The Dockerfile parser: raw bytes to a list of instruction nodes.
//!
//! This reproduces BuildKit's `frontend/dockerfile/parser` package: parser directives,
//! line continuations with the chosen escape character, comments inside continuations,
//! JSON (exec) versus shell forms with the same fallback rules, `--flag` extraction,
//! ENV/LABEL pairs, ONBUILD nesting, HEALTHCHECK, and heredocs for RUN/COPY/ADD.
//! [`dump`] renders the result in upstream's `Node.Dump` format.
//!
//! Values are byte strings (`Vec<u8>`) because a Dockerfile may hold invalid UTF-8 and
//! the dump must reproduce it. Like upstream, the parser accepts any instruction
//! keyword; [`crate::instructions`] rejects unknown ones.

mod directives;
mod dump;
mod heredoc;
mod json;
mod line_parsers;

pub use crate::go_compat::unicode::quote as go_quote;
pub use directives::{detect_syntax, parse_directive, Directive, DirectiveParser, DirectiveValue};
pub use dump::{dump, dump_node};
pub use heredoc::{chomp_heredoc_content, heredocs_from_line, parse_heredoc, Heredoc};
pub use line_parsers::{parse_words, ERR_NOT_STRING_ARRAY};

use crate::go_compat::unicode::{discard_bom, offset_in, to_lower, trim_left_space, trim_space};
use crate::Error;
use line_parsers::{dispatch, split_command, JsonOutcome};

/// The default escape character.
pub const DEFAULT_ESCAPE: u8 = b'\\';

/// The longest physical line accepted (`bufio.MaxScanTokenSize - 1`).
pub const MAX_LINE_LEN: usize = 65535;

/// A 1-based line and 1-based byte column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A source range. `start` is the first byte; `end.column` is one past the last byte
/// of `end.line` (exclusive), so a span covers whole lines at its end.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

/// One instruction (or, for ONBUILD, the nested trigger instruction).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The keyword exactly as written (`RUN`, `run`, ...).
    pub value: Vec<u8>,
    /// `--flag[=value]` words before the arguments, quotes removed.
    pub flags: Vec<Vec<u8>>,
    /// Where each flag starts.
    pub flag_positions: Vec<Position>,
    /// The argument chain (see the module docs of [`dump`] for each instruction's shape).
    /// An unknown instruction has a single empty argument, as upstream.
    pub args: Vec<Vec<u8>>,
    /// Where the arguments start in the source.
    pub args_position: Position,
    /// ONBUILD's trigger instruction.
    pub next: Option<Box<Node>>,
    /// The arguments came from a JSON array (exec form).
    pub json: bool,
    /// Heredocs, in order, with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// The logical line: continuations joined, comment lines inside them dropped.
    pub original: Vec<u8>,
    /// Comment lines right before the instruction (text after `#`, trimmed).
    pub prev_comment: Vec<Vec<u8>>,
    /// 1-based first and last line, including continuation and heredoc lines.
    pub start_line: usize,
    pub end_line: usize,
    /// The span from the keyword to the end of the last line.
    pub span: Span,
}

impl Node {
    /// The keyword lower-cased as upstream does (`strings.ToLower`).
    pub fn keyword(&self) -> String {
        to_lower(&self.value)
    }

    /// Arguments as strings (invalid UTF-8 replaced by U+FFFD).
    pub fn args_lossy(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| crate::go_compat::unicode::lossy(a))
            .collect()
    }

    /// Flags as strings (invalid UTF-8 replaced by U+FFFD).
    pub fn flags_lossy(&self) -> Vec<String> {
        self.flags
            .iter()
            .map(|a| crate::go_compat::unicode::lossy(a))
            .collect()
    }

    /// The original line as a string (invalid UTF-8 replaced by U+FFFD).
    pub fn original_lossy(&self) -> String {
        crate::go_compat::unicode::lossy(&self.original)
    }

    /// Whether this instruction may carry heredocs (RUN, COPY, ADD; also as an ONBUILD
    /// trigger), not in JSON form.
    pub fn can_contain_heredoc(&self) -> bool {
        let mut node = self;
        if self.keyword() == "onbuild" {
            if let Some(n) = &self.next {
                node = n;
            }
        }
        matches!(node.keyword().as_str(), "add" | "copy" | "run") && !node.json
    }
}

/// A parser warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub short: String,
    pub detail: Vec<String>,
    pub url: String,
    /// 1-based line the warning refers to.
    pub line: usize,
}

/// Directives that apply to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character in force: `\` or `` ` ``.
    pub escape: u8,
    /// Directives the parser consumed at the top of the file, in order.
    pub parsed: Vec<Directive>,
    /// `parser::detect_syntax` on the file (also accepts `//` comments, JSON and `#!`).
    pub syntax: Option<DirectiveValue>,
    /// `parser::parse_directive("check")` on the file.
    pub check: Option<DirectiveValue>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// The instructions, in order.
    pub children: Vec<Node>,
    pub warnings: Vec<Warning>,
    /// 1-based first line of the first instruction and last line of the last one.
    pub start_line: usize,
    pub end_line: usize,
}

impl Dockerfile {
    /// The escape character in force.
    pub fn escape(&self) -> u8 {
        self.directives.escape
    }
}

/// Splits input into lines keeping their `\n`, like upstream's `scanLines` under a
/// `bufio.Scanner` with the default 64 KiB token limit.
struct Scanner<'a> {
    rest: &'a [u8],
    /// Set when a line longer than [`MAX_LINE_LEN`] stopped the scan.
    too_long: bool,
}

impl<'a> Scanner<'a> {
    fn scan(&mut self) -> Option<&'a [u8]> {
        if self.too_long || self.rest.is_empty() {
            return None;
        }
        let (tok, content_len) = match self.rest.iter().position(|&c| c == b'\n') {
            Some(i) => (&self.rest[..=i], i),
            None => (self.rest, self.rest.len()),
        };
        if content_len > MAX_LINE_LEN {
            self.too_long = true;
            return None;
        }
        self.rest = &self.rest[tok.len()..];
        Some(tok)
    }
}

/// `bytes.TrimRight(b, "\r\n")`.
fn trim_newline(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && (b[end - 1] == b'\r' || b[end - 1] == b'\n') {
        end -= 1;
    }
    &b[..end]
}

fn is_comment(line: &[u8]) -> bool {
    trim_left_space(line).first() == Some(&b'#')
}

fn is_empty_continuation_line(line: &[u8]) -> bool {
    trim_left_space(trim_newline(line)).is_empty()
}

/// `trimContinuationCharacter`: strips a trailing escape character (plus trailing blanks)
/// unless it is itself escaped. Returns the kept prefix and whether the line ends here.
fn trim_continuation(line: &[u8], escape: u8) -> (&[u8], bool) {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b' ' || line[end - 1] == b'\t') {
        end -= 1;
    }
    if end > 0 && line[end - 1] == escape && (end == 1 || line[end - 2] != escape) {
        return (&line[..end - 1], false);
    }
    (line, true)
}

struct State {
    escape: u8,
    directive_parser: DirectiveParser,
    parsed: Vec<Directive>,
}

impl State {
    fn new() -> Self {
        State {
            escape: DEFAULT_ESCAPE,
            directive_parser: DirectiveParser::default(),
            parsed: Vec::new(),
        }
    }

    /// `processLine`: trims, feeds the directive parser, and drops comment lines.
    fn process_line<'b>(
        &mut self,
        token: &'b [u8],
        strip_left: bool,
    ) -> Result<(&'b [u8], bool), String> {
        let mut token = trim_newline(token);
        if strip_left {
            token = trim_left_space(token);
        }
        let mut ok = false;
        if let Some(d) = self.directive_parser.parse_line(token)? {
            if d.name == "escape" {
                let v = d.value.as_bytes();
                if v != b"`" && v != b"\\" {
                    return Err(format!(
                        "invalid escape token '{}' does not match ` or \\",
                        d.value
                    ));
                }
                self.escape = v[0];
            }
            self.parsed.push(d);
            ok = true;
        }
        let out = if is_comment(token) {
            &token[..0]
        } else {
            token
        };
        Ok((out, ok))
    }
}

/// Maps offsets in a logical (joined) line back to source positions.
#[derive(Default)]
struct LineMap {
    /// (offset in the logical line, length, source line, column of the first byte)
    segs: Vec<(usize, usize, usize, usize)>,
}

impl LineMap {
    fn push(&mut self, off: usize, len: usize, line: usize, col: usize) {
        self.segs.push((off, len, line, col));
    }

    fn position(&self, off: usize) -> Position {
        for &(o, len, line, col) in &self.segs {
            if off >= o && off < o + len {
                return Position {
                    line,
                    column: col + (off - o),
                };
            }
        }
        match self
            .segs
            .iter()
            .rev()
            .find(|s| s.1 > 0)
            .or(self.segs.last())
        {
            Some(&(o, len, line, col)) if off >= o => Position {
                line,
                column: col + len.min(off - o),
            },
            Some(&(_, _, line, col)) => Position { line, column: col },
            None => Position { line: 0, column: 1 },
        }
    }
}

fn parse_error(line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        line: line.max(1),
        column: column.max(1),
        message: message.into(),
    }
}

/// `newNodeFromLine`: builds a node from a logical line. `base` is the offset of `line`
/// within the logical line that `map` describes.
fn node_from_line(
    line: &[u8],
    base: usize,
    escape: u8,
    map: &LineMap,
    comments: Vec<Vec<u8>>,
) -> Result<Node, String> {
    let split = split_command(line, escape);
    let cmd_lower = to_lower(split.cmd);
    let parsed = dispatch(&cmd_lower, split.args, split.args_offset, escape)?;
    let next = match parsed.sub {
        Some((rest, off)) => Some(Box::new(node_from_line(
            &rest,
            base + off,
            escape,
            map,
            Vec::new(),
        )?)),
        None => None,
    };
    let start = map.position(base + split.cmd_offset);
    Ok(Node {
        value: split.cmd.to_vec(),
        flag_positions: split
            .flags
            .iter()
            .map(|(_, o)| map.position(base + o))
            .collect(),
        flags: split.flags.into_iter().map(|(f, _)| f).collect(),
        args: parsed.args,
        args_position: map.position(base + split.args_offset),
        next,
        json: parsed.json,
        heredocs: Vec::new(),
        original: line.to_vec(),
        prev_comment: comments,
        start_line: start.line,
        end_line: start.line,
        span: Span { start, end: start },
    })
}

fn set_lines(node: &mut Node, start: usize, end: usize, end_col: usize) {
    node.start_line = start;
    node.end_line = end;
    node.span.end = Position {
        line: end,
        column: end_col,
    };
    if let Some(n) = &mut node.next {
        set_lines(n, start, end, end_col);
    }
}

/// Keeps the comment block that precedes an instruction (an empty comment line ends a block).
fn collect_comment(comments: &mut Vec<Vec<u8>>, line: &[u8]) {
    if is_comment(line) {
        let c = trim_space(&line[1..]);
        if c.is_empty() {
            comments.clear();
        } else {
            comments.push(c.to_vec());
        }
    }
}

/// The warning for a logical line whose continuation included empty lines.
fn empty_continuation_warning(buf: &[u8], line: usize) -> Warning {
    Warning {
        short: format!(
            "Empty continuation line found in: {}",
            crate::go_compat::unicode::lossy(buf)
        ),
        detail: vec!["Empty continuation lines will become errors in a future release".into()],
        url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/".into(),
        line,
    }
}

/// Reads one heredoc's body up to its terminator line, counting lines as it goes;
/// `None` when the file ends first (the caller reports `unterminated heredoc`).
fn read_heredoc(
    scanner: &mut Scanner<'_>,
    mut doc: heredoc::Heredoc,
    current_line: &mut usize,
    last_len: &mut usize,
) -> Option<heredoc::Heredoc> {
    let terminator = doc.name.as_bytes().to_vec();
    let mut content = std::mem::take(&mut doc.content);
    while let Some(raw) = scanner.scan() {
        *current_line += 1;
        *last_len = trim_newline(raw).len();
        let mut possible = trim_newline(raw);
        if doc.chomp {
            let tabs = possible.iter().take_while(|&&c| c == b'\t').count();
            possible = &possible[tabs..];
        }
        if possible == terminator.as_slice() {
            doc.content = content;
            return Some(doc);
        }
        content.extend_from_slice(raw);
    }
    None
}

/// Parses a Dockerfile.
///
/// Errors are [`Error::Parse`] with upstream's messages, e.g. `file with no instructions`,
/// `ENV must have two arguments`, `unterminated heredoc`,
/// `dockerfile line greater than max allowed size of 65535`.
pub fn parse(src: &[u8]) -> Result<Dockerfile, Error> {
    let mut st = State::new();
    let mut scanner = Scanner {
        rest: src,
        too_long: false,
    };
    let mut current_line = 0usize;
    let mut children: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<Vec<u8>> = Vec::new();

    while let Some(raw) = scanner.scan() {
        let mut bytes_read = raw;
        if current_line == 0 {
            bytes_read = discard_bom(bytes_read);
        }
        collect_comment(&mut comments, bytes_read);
        let (processed, directive_ok) = st
            .process_line(bytes_read, true)
            .map_err(|e| parse_error(current_line + 1, 1, e))?;
        if directive_ok {
            comments.pop();
        }
        current_line += 1;
        let start_line = current_line;
        let mut last_len = trim_newline(raw).len();

        let (first, mut end_of_line) = trim_continuation(processed, st.escape);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut buf: Vec<u8> = first.to_vec();
        let mut map = LineMap::default();
        map.push(0, first.len(), current_line, offset_in(raw, first) + 1);

        let mut has_empty_continuation = false;
        while !end_of_line {
            let Some(raw) = scanner.scan() else { break };
            let (processed, _) = st
                .process_line(raw, false)
                .map_err(|e| parse_error(current_line + 1, 1, e))?;
            current_line += 1;
            last_len = trim_newline(raw).len();
            if is_comment(raw) {
                continue;
            }
            if is_empty_continuation_line(processed) {
                has_empty_continuation = true;
                continue;
            }
            let (part, eol) = trim_continuation(processed, st.escape);
            end_of_line = eol;
            map.push(
                buf.len(),
                part.len(),
                current_line,
                offset_in(raw, part) + 1,
            );
            buf.extend_from_slice(part);
        }

        if has_empty_continuation {
            warnings.push(empty_continuation_warning(&buf, current_line));
        }

        let mut child = node_from_line(&buf, 0, st.escape, &map, std::mem::take(&mut comments))
            .map_err(|e| {
                let p = map.position(offset_in(&buf, trim_space(&buf)));
                parse_error(start_line, p.column, e)
            })?;

        if child.can_contain_heredoc() && buf.windows(2).any(|w| w == b"<<") {
            let docs = heredocs_from_line(&buf)
                .map_err(|e| parse_error(start_line, child.span.start.column, e))?;
            let column = child.span.start.column;
            for doc in docs {
                let doc = read_heredoc(&mut scanner, doc, &mut current_line, &mut last_len)
                    .ok_or_else(|| parse_error(start_line, column, "unterminated heredoc"))?;
                child.heredocs.push(doc);
            }
        }

        set_lines(&mut child, start_line, current_line, last_len + 1);
        children.push(child);
    }

    if children.is_empty() {
        return Err(parse_error(current_line, 1, "file with no instructions"));
    }
    if scanner.too_long {
        return Err(parse_error(
            current_line + 1,
            1,
            format!("dockerfile line greater than max allowed size of {MAX_LINE_LEN}"),
        ));
    }
    Ok(finish(src, st, children, warnings))
}

/// Assembles the parsed file: directives, instructions and their overall line range.
fn finish(src: &[u8], st: State, children: Vec<Node>, warnings: Vec<Warning>) -> Dockerfile {
    let start_line = children.first().map_or(0, |c| c.start_line);
    let end_line = children.last().map_or(0, |c| c.end_line);
    Dockerfile {
        directives: Directives {
            escape: st.escape,
            parsed: st.parsed,
            syntax: detect_syntax(src),
            check: parse_directive("check", src),
        },
        children,
        warnings,
        start_line,
        end_line,
    }
}

/// Decodes an exec-form JSON array the way the parser does (`parseJSON`):
/// `Ok(Some(strings))` for an array of strings, `Ok(None)` when the text is not a JSON
/// array (the parser then uses the shell form), and an error for an array holding a
/// non-string.
pub fn parse_json_array(src: &[u8]) -> Result<Option<Vec<String>>, String> {
    match line_parsers::parse_json(src) {
        JsonOutcome::Strings(v) => Ok(Some(v)),
        JsonOutcome::NotJson => Ok(None),
        JsonOutcome::NotStringArray => Err(ERR_NOT_STRING_ARRAY.to_string()),
    }
}

/// The ENV/LABEL argument chain (`parseNameVal`): key, value, separator, repeated.
pub fn parse_name_val(rest: &[u8], instruction: &str, escape: u8) -> Result<Vec<Vec<u8>>, String> {
    line_parsers::parse_name_val(rest, instruction, escape)
}
