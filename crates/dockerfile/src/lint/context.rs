//! The state shared by all rules: source lines, the parse, the model, options, and
//! helpers to locate words in the source and to report findings.

use super::rules::rule_info;
use super::{Edit, Finding, Fix, LintOptions, Range, Severity};
use crate::model::Model;
use crate::parser::{Dockerfile, Node, Position};

pub(crate) struct Ctx<'a> {
    /// Source lines without their line ending (`\r\n` or `\n`).
    pub lines: Vec<&'a [u8]>,
    pub df: &'a Dockerfile,
    pub model: &'a Model,
    pub options: &'a LintOptions,
    pub findings: Vec<Finding>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        src: &'a [u8],
        df: &'a Dockerfile,
        model: &'a Model,
        options: &'a LintOptions,
    ) -> Self {
        let mut lines: Vec<&[u8]> = src.split(|&c| c == b'\n').collect();
        for l in &mut lines {
            if l.last() == Some(&b'\r') {
                *l = &l[..l.len() - 1];
            }
        }
        Ctx {
            lines,
            df,
            model,
            options,
            findings: Vec::new(),
        }
    }

    /// The 1-based source line (empty when out of range).
    pub fn line(&self, n: usize) -> &'a [u8] {
        n.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .copied()
            .unwrap_or(b"")
    }

    /// Reports a finding of `rule` (its severity and documentation come from the table).
    pub fn report(&mut self, rule: &str, range: Range, message: String, fix: Option<Fix>) {
        let Some(info) = rule_info(rule) else { return };
        self.findings.push(Finding {
            rule: info.id.to_string(),
            name: info.name.to_string(),
            severity: info.severity,
            range,
            message,
            documentation: info.doc.to_string(),
            fix,
        });
    }

    /// Reports a finding with a severity other than the rule's default.
    pub fn report_as(
        &mut self,
        rule: &str,
        severity: Severity,
        range: Range,
        message: String,
        fix: Option<Fix>,
    ) {
        self.report(rule, range, message, fix);
        if let Some(f) = self.findings.last_mut().filter(|f| f.rule == rule) {
            f.severity = severity;
        }
    }

    /// The range of a whole node.
    pub fn node_range(&self, node: &Node) -> Range {
        node.span.into()
    }

    /// The range of the node's keyword.
    pub fn keyword_range(&self, node: &Node) -> Range {
        let s = node.span.start;
        Range::new(
            s,
            Position {
                line: s.line,
                column: s.column + node.value.len(),
            },
        )
    }

    /// The `nth` whole-word occurrence (0-based; `usize::MAX` for the last) of `word` in
    /// the node's source lines, at or after the keyword. Words are delimited by blanks.
    pub fn find_word(&self, node: &Node, word: &str, nth: usize) -> Option<Range> {
        let mut hits = Vec::new();
        for line in node.start_line..=node.end_line {
            let text = self.line(line);
            let from = if line == node.span.start.line {
                node.span.start.column.saturating_sub(1)
            } else {
                0
            };
            let w = word.as_bytes();
            let mut i = from;
            while i + w.len() <= text.len() {
                let before_ok = i == 0 || text[i - 1].is_ascii_whitespace();
                let after_ok = i + w.len() == text.len() || text[i + w.len()].is_ascii_whitespace();
                if before_ok && after_ok && &text[i..i + w.len()] == w {
                    hits.push(Range {
                        start_line: line,
                        start_column: i + 1,
                        end_line: line,
                        end_column: i + 1 + w.len(),
                    });
                    i += w.len();
                } else {
                    i += 1;
                }
            }
        }
        if nth == usize::MAX {
            hits.pop()
        } else {
            hits.into_iter().nth(nth)
        }
    }

    /// A one-edit fix.
    pub fn fix(description: &str, range: Range, replacement: impl Into<String>) -> Fix {
        Fix {
            description: description.to_string(),
            edits: vec![Edit {
                range,
                replacement: replacement.into(),
            }],
        }
    }
}

/// An empty range at a position (for insertions).
pub(crate) fn at(line: usize, column: usize) -> Range {
    Range {
        start_line: line,
        start_column: column,
        end_line: line,
        end_column: column,
    }
}

/// Go's `%q` for plain strings: double quotes with `"` and `\` escaped.
pub(crate) fn go_quote(s: &str) -> String {
    crate::parser::go_quote(s.as_bytes())
}

/// BuildKit's "did you mean": the first option closest to `name` at an edit distance
/// below 3; nothing when `name` itself is an option.
pub(crate) fn suggest<'n>(
    name: &str,
    options: impl IntoIterator<Item = &'n str>,
) -> Option<&'n str> {
    let mut best: Option<&str> = None;
    let mut min = 3;
    for o in options {
        if o == name {
            return None;
        }
        let d = levenshtein(name, o);
        if d < min {
            best = Some(o);
            min = d;
        }
    }
    best
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
