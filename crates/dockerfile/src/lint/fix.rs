//! Applying fixes: line/column ranges to byte offsets, edits applied back to front.

use super::{Edit, Finding, Range};

/// Byte offset of a 1-based line/column in `src` (clamped to the line's end).
fn offset(src: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match src[start..].iter().position(|&c| c == b'\n') {
            Some(i) => start += i + 1,
            None => return src.len(),
        }
    }
    let end = src[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(src.len(), |i| start + i + 1);
    (start + column.saturating_sub(1)).min(end)
}

fn byte_range(src: &[u8], r: &Range) -> (usize, usize) {
    let a = offset(src, r.start_line, r.start_column);
    let b = offset(src, r.end_line, r.end_column);
    (a, b.max(a))
}

/// Applies the fixes of `findings` to `src`. Edits that overlap an edit already taken
/// are dropped (apply and re-lint to converge). Returns the new text.
pub fn apply_fixes(src: &[u8], findings: &[Finding]) -> Vec<u8> {
    let edits: Vec<&Edit> = findings
        .iter()
        .filter_map(|f| f.fix.as_ref())
        .flat_map(|f| f.edits.iter())
        .collect();
    apply_edits(src, &edits)
}

/// Applies a list of edits (see [`apply_fixes`]).
pub fn apply_edits(src: &[u8], edits: &[&Edit]) -> Vec<u8> {
    let mut spans: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            let (a, b) = byte_range(src, &e.range);
            (a, b, e.replacement.as_str())
        })
        .collect();
    spans.sort_by_key(|s| (s.0, s.1));
    let mut kept: Vec<(usize, usize, &str)> = Vec::new();
    for s in spans {
        if kept
            .last()
            .is_some_and(|k| s.0 < k.1 || (s.0 == k.0 && s.1 == k.1 && s.2 == k.2))
        {
            continue;
        }
        kept.push(s);
    }
    let mut out = src.to_vec();
    for (a, b, r) in kept.into_iter().rev() {
        out.splice(a..b, r.bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits() {
        let src = b"ab\ncd\n";
        let e1 = Edit {
            range: Range {
                start_line: 2,
                start_column: 1,
                end_line: 2,
                end_column: 2,
            },
            replacement: "X".into(),
        };
        let e2 = Edit {
            range: Range {
                start_line: 1,
                start_column: 3,
                end_line: 1,
                end_column: 3,
            },
            replacement: "!".into(),
        };
        assert_eq!(apply_edits(src, &[&e1, &e2]), b"ab!\nXd\n");
    }
}
