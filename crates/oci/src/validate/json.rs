//! The JSON tree the validator walks, read the way Go's `encoding/json` reads it.
//!
//! Upstream validation decodes with Go's `encoding/json`, whose behaviour differs from serde_json at the edges,
//! so documents are read by this small reader instead:
//! * every member of an object is kept, in document order, duplicates included (Go's typed decode sees each
//!   duplicate in turn; the schema step sees the last one);
//! * number literals are kept as written (`-0` is an integer to Go, `1.0` is not);
//! * invalid UTF-8 inside strings and unpaired `\u` surrogates become U+FFFD instead of failing;
//! * nesting may go 10,000 levels deep, Go's limit; the reader does not recurse and the tree is flat, so depth
//!   costs no stack;
//! * a string remembers whether it contained an escape (Go's `time.Time` decoder reads the raw bytes).

pub(crate) type NodeId = usize;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// A number literal exactly as written.
    Number(String),
    /// A decoded string; `escaped` is true when its literal contained a backslash escape.
    Str {
        value: String,
        escaped: bool,
    },
    Array(Vec<NodeId>),
    /// Members in document order, duplicates included.
    Object(Vec<(String, NodeId)>),
}

impl Node {
    /// The JSON type name, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "boolean",
            Node::Number(_) => "number",
            Node::Str { .. } => "string",
            Node::Array(_) => "array",
            Node::Object(_) => "object",
        }
    }
}

static NULL_NODE: Node = Node::Null;

/// A parsed document: a flat arena of nodes.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    nodes: Vec<Node>,
    root: NodeId,
}

impl Doc {
    pub(crate) fn root(&self) -> NodeId {
        self.root
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&NULL_NODE)
    }

    /// The value of the last member named exactly `key` (what a Go `map[string]any` keeps).
    pub(crate) fn last_member(&self, id: NodeId, key: &str) -> Option<NodeId> {
        match self.node(id) {
            Node::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|&(_, v)| v),
            _ => None,
        }
    }

    /// The members of an object with duplicates resolved the way a Go map does (the last one wins), in document
    /// order of the surviving members. Empty for a non-object.
    pub(crate) fn unique_members(&self, id: NodeId) -> Vec<(&str, NodeId)> {
        let Node::Object(members) = self.node(id) else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<(&str, NodeId)> = Vec::with_capacity(members.len());
        for (k, v) in members.iter().rev() {
            if seen.insert(k.as_str()) {
                out.push((k.as_str(), *v));
            }
        }
        out.reverse();
        out
    }

    /// Convert a serde_json value (no duplicates, numbers as serde_json prints them).
    pub(crate) fn from_value(value: &serde_json::Value) -> Doc {
        use serde_json::Value;
        let mut nodes = vec![Node::Null];
        let mut work: Vec<(&Value, NodeId)> = vec![(value, 0)];
        while let Some((v, id)) = work.pop() {
            let node = match v {
                Value::Null => Node::Null,
                Value::Bool(b) => Node::Bool(*b),
                Value::Number(n) => Node::Number(n.to_string()),
                Value::String(s) => Node::Str {
                    value: s.clone(),
                    escaped: false,
                },
                Value::Array(items) => {
                    let mut ids = Vec::with_capacity(items.len());
                    for item in items {
                        nodes.push(Node::Null);
                        let child = nodes.len() - 1;
                        work.push((item, child));
                        ids.push(child);
                    }
                    Node::Array(ids)
                }
                Value::Object(map) => {
                    let mut members = Vec::with_capacity(map.len());
                    for (k, item) in map {
                        nodes.push(Node::Null);
                        let child = nodes.len() - 1;
                        work.push((item, child));
                        members.push((k.clone(), child));
                    }
                    Node::Object(members)
                }
            };
            if let Some(slot) = nodes.get_mut(id) {
                *slot = node;
            }
        }
        Doc { nodes, root: 0 }
    }
}

/// Go's `encoding/json` nesting limit.
const MAX_DEPTH: usize = 10_000;

enum Frame {
    Array(Vec<NodeId>),
    Object(Vec<(String, NodeId)>, String),
}

/// Parse a whole document. The error names the problem with its line and column (1-based, columns in bytes).
pub(crate) fn parse(input: &[u8]) -> Result<Doc, String> {
    Reader {
        s: input,
        pos: 0,
        nodes: Vec::new(),
    }
    .run()
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
}

impl Reader<'_> {
    fn run(mut self) -> Result<Doc, String> {
        let mut stack: Vec<Frame> = Vec::new();
        self.skip_ws();
        'value: loop {
            let mut done = match self.peek() {
                None => return Err(self.fail("unexpected end of JSON input")),
                Some(c @ (b'{' | b'[')) => {
                    if stack.len() + 1 > MAX_DEPTH {
                        return Err(self.fail("exceeded max depth"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    if c == b'{' {
                        if self.peek() == Some(b'}') {
                            self.pos += 1;
                            self.push(Node::Object(Vec::new()))
                        } else {
                            let key = self.key()?;
                            stack.push(Frame::Object(Vec::new(), key));
                            continue 'value;
                        }
                    } else if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.push(Node::Array(Vec::new()))
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(c) => self.scalar(c)?,
            };
            // Hand the finished value to its container; close containers as they end.
            loop {
                self.skip_ws();
                let next = self.peek();
                match stack.last_mut() {
                    None => {
                        return match next {
                            None => Ok(Doc {
                                nodes: self.nodes,
                                root: done,
                            }),
                            Some(c) => Err(self.bad_char(c, "after top-level value")),
                        };
                    }
                    Some(Frame::Array(items)) => {
                        items.push(done);
                        match next {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let Some(Frame::Array(items)) = stack.pop() else {
                                    return Err(self.fail("internal error: unbalanced array"));
                                };
                                done = self.push(Node::Array(items));
                            }
                            Some(c) => return Err(self.bad_char(c, "after array element")),
                            None => return Err(self.fail("unexpected end of JSON input")),
                        }
                    }
                    Some(Frame::Object(members, key)) => {
                        members.push((std::mem::take(key), done));
                        match next {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                let k = self.key()?;
                                if let Some(Frame::Object(_, key)) = stack.last_mut() {
                                    *key = k;
                                }
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let Some(Frame::Object(members, _)) = stack.pop() else {
                                    return Err(self.fail("internal error: unbalanced object"));
                                };
                                done = self.push(Node::Object(members));
                            }
                            Some(c) => return Err(self.bad_char(c, "after object key:value pair")),
                            None => return Err(self.fail("unexpected end of JSON input")),
                        }
                    }
                }
            }
        }
    }

    /// Reads a string, number, `true`, `false` or `null` starting with byte `c`.
    fn scalar(&mut self, c: u8) -> Result<NodeId, String> {
        let node = match c {
            b'"' => {
                let (value, escaped) = self.string()?;
                Node::Str { value, escaped }
            }
            b't' => {
                self.literal(b"true")?;
                Node::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Node::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Node::Null
            }
            b'-' | b'0'..=b'9' => Node::Number(self.number()?),
            c => return Err(self.bad_char(c, "looking for beginning of value")),
        };
        Ok(self.push(node))
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// An object key and its colon, leaving the reader at the value.
    fn key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(b'"') => {}
            Some(c) => return Err(self.bad_char(c, "looking for beginning of object key string")),
            None => return Err(self.fail("unexpected end of JSON input")),
        }
        let (key, _) = self.string()?;
        self.skip_ws();
        match self.peek() {
            Some(b':') => {
                self.pos += 1;
                self.skip_ws();
                Ok(key)
            }
            Some(c) => Err(self.bad_char(c, "after object key")),
            None => Err(self.fail("unexpected end of JSON input")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        for &want in word {
            match self.peek() {
                Some(c) if c == want => self.pos += 1,
                Some(c) => {
                    let lit = String::from_utf8_lossy(word).into_owned();
                    return Err(self.bad_char(
                        c,
                        &format!("in literal {lit} (expecting {:?})", want as char),
                    ));
                }
                None => return Err(self.fail("unexpected end of JSON input")),
            }
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<String, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(c) => return Err(self.bad_char(c, "in numeric literal")),
            None => return Err(self.fail("unexpected end of JSON input")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.after_number_part("after decimal point in numeric literal"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.after_number_part("in exponent of numeric literal"));
            }
        }
        let raw = self.s.get(start..self.pos).unwrap_or_default();
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    fn after_number_part(&self, what: &str) -> String {
        match self.peek() {
            Some(c) => self.bad_char(c, what),
            None => self.fail("unexpected end of JSON input"),
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let quad = self.s.get(at..at + 4)?;
        let mut v = 0u32;
        for &c in quad {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        Some(v)
    }

    /// A string literal starting at the opening quote: its decoded value and whether it had escapes.
    fn string(&mut self) -> Result<(String, bool), String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        let mut escaped = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.fail("unexpected end of JSON input"));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok((out, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape(&mut out)?;
                }
                0x00..=0x1f => return Err(self.bad_char(c, "in string literal")),
                0x20..=0x7f => {
                    out.push(c as char);
                    self.pos += 1;
                }
                _ => {
                    // Go decodes one rune; an invalid byte becomes U+FFFD and the reader moves on by one byte.
                    let width = match c {
                        0xc2..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf4 => 4,
                        _ => 0,
                    };
                    let valid = (width > 0)
                        .then(|| self.s.get(self.pos..self.pos + width))
                        .flatten()
                        .and_then(|b| std::str::from_utf8(b).ok());
                    match valid {
                        Some(text) => {
                            out.push_str(text);
                            self.pos += width;
                        }
                        None => {
                            out.push('\u{fffd}');
                            self.pos += 1;
                        }
                    }
                }
            }
        }
    }

    /// One escape sequence starting at the backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.fail("unexpected end of JSON input"));
        };
        let simple = match c {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'u' => None,
            _ => return Err(self.bad_char(c, "in string escape code")),
        };
        if let Some(ch) = simple {
            out.push(ch);
            self.pos += 1;
            return Ok(());
        }
        let Some(unit) = self.hex4(self.pos + 1) else {
            // Point at the first byte that is not a hex digit.
            let mut at = self.pos + 1;
            while at < self.pos + 5 && self.s.get(at).is_some_and(u8::is_ascii_hexdigit) {
                at += 1;
            }
            self.pos = at;
            return match self.peek() {
                Some(c) => Err(self.bad_char(c, "in \\u hexadecimal character escape")),
                None => Err(self.fail("unexpected end of JSON input")),
            };
        };
        self.pos += 5;
        if (0xd800..0xe000).contains(&unit) {
            // A high surrogate followed by an escaped low one is a pair; anything else is U+FFFD, and what follows
            // is read on its own.
            if (0xd800..0xdc00).contains(&unit)
                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u".as_slice())
            {
                if let Some(low @ 0xdc00..=0xdfff) = self.hex4(self.pos + 2) {
                    let cp = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                    self.pos += 6;
                    return Ok(());
                }
            }
            out.push('\u{fffd}');
        } else {
            out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
        }
        Ok(())
    }

    fn line_col(&self) -> (usize, usize) {
        let upto = self.s.get(..self.pos).unwrap_or(self.s);
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = match upto.iter().rposition(|&b| b == b'\n') {
            Some(nl) => upto.len() - nl,
            None => upto.len() + 1,
        };
        (line, col)
    }

    fn fail(&self, msg: &str) -> String {
        let (line, col) = self.line_col();
        format!("{msg} at line {line}, column {col}")
    }

    fn bad_char(&self, c: u8, context: &str) -> String {
        let shown = match c {
            b'\'' => "'\\''".to_string(),
            b'"' => "'\"'".to_string(),
            0x20..=0x7e => format!("'{}'", c as char),
            _ => format!("byte 0x{c:02x}"),
        };
        self.fail(&format!("invalid character {shown} {context}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> (Doc, Node) {
        let doc = parse(text.as_bytes()).unwrap();
        let node = doc.node(doc.root()).clone();
        (doc, node)
    }

    #[test]
    fn keeps_duplicates_in_order() {
        let (doc, node) = root(r#"{"a": 1, "b": [true, null], "a": "x"}"#);
        let Node::Object(members) = node else {
            panic!()
        };
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
        let last = doc.last_member(doc.root(), "a").unwrap();
        assert_eq!(
            doc.node(last),
            &Node::Str {
                value: "x".into(),
                escaped: false
            }
        );
        let unique: Vec<&str> = doc
            .unique_members(doc.root())
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(unique, ["b", "a"]);
    }

    #[test]
    fn numbers_stay_as_written() {
        let (doc, node) = root("[-0, 1.0, 1e400, 12]");
        let Node::Array(items) = node else { panic!() };
        let raw: Vec<String> = items
            .iter()
            .map(|&i| match doc.node(i) {
                Node::Number(r) => r.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(raw, ["-0", "1.0", "1e400", "12"]);
    }

    #[test]
    fn strings_like_go() {
        let (_, node) = root(r#""a\u00e9\ud83d\ude00\ud800x\/""#);
        assert_eq!(
            node,
            Node::Str {
                value: "aé😀\u{fffd}x/".into(),
                escaped: true
            }
        );
        let doc = parse(b"\"\xff\xe2\x82z\"").unwrap();
        assert_eq!(
            doc.node(doc.root()),
            &Node::Str {
                value: "\u{fffd}\u{fffd}\u{fffd}z".into(),
                escaped: false
            }
        );
    }

    #[test]
    fn rejects_bad_syntax_with_position() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "\"\\x\"",
            "\"a\nb\"",
            "{} x",
            "[1 2]",
            "{\"a\":1,}",
            "\"\\u12g4\"",
            "nul",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should fail");
        }
        let err = parse(b"{\n  \"a\": x}").unwrap_err();
        assert!(err.contains("line 2, column 8"), "{err}");
    }

    #[test]
    fn depth_limit_is_gos() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(deep.as_bytes()).unwrap_err().contains("max depth"));
    }

    #[test]
    fn from_value_matches_parse() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,"x",{"b":null}],"c":false}"#).unwrap();
        let doc = Doc::from_value(&v);
        let a = doc.last_member(doc.root(), "a").unwrap();
        let Node::Array(items) = doc.node(a) else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert_eq!(doc.node(items[0]), &Node::Number("1".into()));
    }
}
