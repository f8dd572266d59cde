//! Upstream's `Node.Dump` s-expression format, used by BuildKit's parser test corpus.
//!
//! One line per instruction: `(` keyword-lower-cased, then ` [flags…]` when there are
//! flags (each Go-quoted), then each argument Go-quoted (`strconv.Quote`), or for
//! ONBUILD the nested instruction as `(…)`. Argument shapes: exec form gives the decoded
//! strings; shell form one string; ENV/LABEL triples key, value, separator (`=` or
//! empty for the legacy form); HEALTHCHECK the type then the command.

use super::{Dockerfile, Node};
use crate::go_compat::unicode::quote_into;

/// Go's `strings.TrimSpace` on a valid UTF-8 string (White_Space, as Go's `unicode.IsSpace`).
fn trim(s: String) -> String {
    let t = s.trim();
    if t.len() == s.len() {
        s
    } else {
        t.to_string()
    }
}

/// The dump of one instruction, without the surrounding parentheses.
pub fn dump_node(node: &Node) -> String {
    let mut s = node.keyword();
    if !node.flags.is_empty() {
        s.push_str(" [");
        for (i, f) in node.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            quote_into(&mut s, f);
        }
        s.push(']');
    }
    for a in &node.args {
        s.push(' ');
        quote_into(&mut s, a);
    }
    if let Some(sub) = &node.next {
        // The wrapper node dumps its child as "(" + child + ")\n", then trims.
        s.push(' ');
        s.push_str(&trim(format!("({})\n", dump_node(sub))));
    }
    trim(s)
}

/// The dump of a whole file: one `(…)` line per instruction, ending with one newline.
/// This is byte-for-byte what BuildKit's parser tests compare with their `result` files
/// (`AST.Dump() + "\n"`).
pub fn dump(df: &Dockerfile) -> String {
    let mut s = String::new();
    for child in &df.children {
        s.push('(');
        s.push_str(&dump_node(child));
        s.push_str(")\n");
    }
    let mut out = trim(s);
    out.push('\n');
    out
}
