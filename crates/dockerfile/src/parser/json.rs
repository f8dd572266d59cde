//! A small JSON reader that accepts and decodes exactly what Go's `encoding/json`
//! does when unmarshalling into `any`: invalid UTF-8 inside strings is accepted and
//! each bad byte becomes U+FFFD, unpaired surrogate escapes become U+FFFD, nesting
//! deeper than 10000 is a syntax error, and a number that overflows `float64` makes
//! the whole decode fail (after the syntax check).

/// A decoded JSON document, reduced to what the Dockerfile parser needs: the
/// top-level value's kind and, for arrays and objects, their direct members
/// (`None` for a member that is not a string).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, a boolean, a number or a string at the top level.
    Scalar(Option<String>),
    Array(Vec<Option<String>>),
    /// Members in source order (duplicates kept; Go's map decoding keeps the last).
    Object(Vec<(String, Option<String>)>),
}

/// Why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not valid JSON (Go's `*json.SyntaxError`).
    Syntax(String),
    /// Valid JSON that cannot be decoded into Go values (a number out of `float64` range).
    Decode(String),
}

const MAX_DEPTH: usize = 10000;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    depth: usize,
    overflow: Option<String>,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Reader<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.b.len() && is_ws(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, JsonError> {
        match self.b.get(self.pos) {
            Some(&c) => Err(JsonError::Syntax(format!(
                "invalid character {} {}",
                quote_char(c),
                what
            ))),
            None => Err(JsonError::Syntax(
                "unexpected end of JSON input".to_string(),
            )),
        }
    }

    /// Parses one value iteratively (no recursion, so deep nesting cannot overflow
    /// the stack). Returns the top-level value reduced to [`Value`].
    fn value(&mut self) -> Result<Value, JsonError> {
        // Container stack: true = array, false = object.
        let mut stack: Vec<bool> = Vec::new();
        let mut top: Option<Value> = None;
        // Pending object key for a member at depth 1.
        let mut key: Option<String> = None;
        loop {
            // Expect a value.
            self.skip_ws();
            let Some(&c) = self.b.get(self.pos) else {
                return Err(JsonError::Syntax("unexpected end of JSON input".into()));
            };
            let depth = stack.len();
            let mut scalar: Option<Option<String>> = None;
            match c {
                b'[' | b'{' => {
                    self.push()?;
                    self.pos += 1;
                    let is_array = c == b'[';
                    if depth == 0 {
                        top = Some(if is_array {
                            Value::Array(Vec::new())
                        } else {
                            Value::Object(Vec::new())
                        });
                    } else if depth == 1 {
                        self.record(&mut top, &mut key, None);
                    }
                    stack.push(is_array);
                    self.skip_ws();
                    let close = if is_array { b']' } else { b'}' };
                    if self.b.get(self.pos) == Some(&close) {
                        self.pos += 1;
                        stack.pop();
                        self.depth -= 1;
                    } else {
                        if !is_array {
                            let k = self.object_key()?;
                            if stack.len() == 1 {
                                key = Some(k);
                            }
                        }
                        continue;
                    }
                }
                _ => scalar = Some(self.scalar(c)?),
            }
            // A complete value was read at nesting `depth`.
            if depth == 0 && top.is_none() {
                top = Some(Value::Scalar(scalar.unwrap_or(None)));
            } else if depth == 1 {
                if let Some(s) = scalar {
                    self.record(&mut top, &mut key, s);
                }
            }
            // Close containers / read separators.
            loop {
                let Some(&is_array) = stack.last() else {
                    return Ok(top.unwrap_or(Value::Scalar(None)));
                };
                self.skip_ws();
                match self.b.get(self.pos) {
                    Some(b',') => {
                        self.pos += 1;
                        if !is_array {
                            let k = self.object_key()?;
                            if stack.len() == 1 {
                                key = Some(k);
                            }
                        }
                        break;
                    }
                    Some(b']') if is_array => {
                        self.pos += 1;
                        stack.pop();
                        self.depth -= 1;
                    }
                    Some(b'}') if !is_array => {
                        self.pos += 1;
                        stack.pop();
                        self.depth -= 1;
                    }
                    _ => {
                        return self.err(if is_array {
                            "after array element"
                        } else {
                            "after object key:value pair"
                        })
                    }
                }
            }
        }
    }

    /// Reads a scalar starting with byte `c`: `Some(text)` for a string, `None` for any
    /// other scalar (their values do not matter here).
    fn scalar(&mut self, c: u8) -> Result<Option<String>, JsonError> {
        match c {
            b'"' => return Ok(Some(self.string()?)),
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return self.err("looking for beginning of value"),
        }
        Ok(None)
    }

    /// Records a direct member of the top-level container.
    fn record(&self, top: &mut Option<Value>, key: &mut Option<String>, v: Option<String>) {
        match top {
            Some(Value::Array(items)) => items.push(v),
            Some(Value::Object(members)) => members.push((key.take().unwrap_or_default(), v)),
            _ => {}
        }
    }

    /// Reads `"key" :` inside an object.
    fn object_key(&mut self) -> Result<String, JsonError> {
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b'"') {
            return self.err("looking for beginning of object key string");
        }
        let k = self.string()?;
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b':') {
            return self.err("after object key");
        }
        self.pos += 1;
        Ok(k)
    }

    fn push(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(JsonError::Syntax("exceeded max depth".into()));
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        for &w in word {
            if self.b.get(self.pos) != Some(&w) {
                return self.err("in literal");
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let s = r.pos;
            while r.pos < r.b.len() && r.b[r.pos].is_ascii_digit() {
                r.pos += 1;
            }
            r.pos - s
        };
        if self.b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.b.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.err("in numeric literal"),
        }
        if self.b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return self.err("after decimal point in numeric literal");
            }
        }
        if matches!(self.b.get(self.pos), Some(b'e') | Some(b'E')) {
            self.pos += 1;
            if matches!(self.b.get(self.pos), Some(b'+') | Some(b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.err("in exponent of numeric literal");
            }
        }
        let text = String::from_utf8_lossy(&self.b[start..self.pos]).into_owned();
        if self.overflow.is_none() {
            if let Ok(f) = text.parse::<f64>() {
                if f.is_infinite() {
                    self.overflow = Some(format!(
                        "json: cannot unmarshal number {text} into Go value of type float64"
                    ));
                }
            }
        }
        Ok(())
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        if at + 6 > self.b.len() || self.b[at] != b'\\' || self.b[at + 1] != b'u' {
            return None;
        }
        let s = std::str::from_utf8(&self.b[at + 2..at + 6]).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }

    fn string(&mut self) -> Result<String, JsonError> {
        debug_assert_eq!(self.b[self.pos], b'"');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Err(JsonError::Syntax("unexpected end of JSON input".into()));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let Some(&e) = self.b.get(self.pos + 1) else {
                        self.pos += 1;
                        return Err(JsonError::Syntax("unexpected end of JSON input".into()));
                    };
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let Some(r) = self.hex4(self.pos) else {
                                // Point at the offending byte for the message.
                                let mut p = self.pos + 2;
                                while p < self.pos + 6
                                    && p < self.b.len()
                                    && self.b[p].is_ascii_hexdigit()
                                {
                                    p += 1;
                                }
                                self.pos = p;
                                return self.err("in \\u hexadecimal character escape");
                            };
                            self.pos += 6;
                            if (0xD800..0xE000).contains(&r) {
                                if let Some(r2) = self.hex4(self.pos) {
                                    if (0xD800..0xDC00).contains(&r)
                                        && (0xDC00..0xE000).contains(&r2)
                                    {
                                        let c = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
                                        out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                                        self.pos += 6;
                                        continue;
                                    }
                                }
                                out.push('\u{FFFD}');
                            } else {
                                out.push(char::from_u32(r).unwrap_or('\u{FFFD}'));
                            }
                            continue;
                        }
                        _ => {
                            self.pos += 1;
                            return self.err("in string escape code");
                        }
                    }
                    self.pos += 2;
                }
                0x00..=0x1F => return self.err("in string literal"),
                _ => {
                    let (r, w) = crate::go_compat::unicode::decode_rune(&self.b[self.pos..]);
                    out.push(r);
                    self.pos += w;
                }
            }
        }
    }
}

fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        0x20..=0x7E => format!("'{}'", c as char),
        _ => format!("'\\x{c:02x}'"),
    }
}

/// `json.Unmarshal(data, &v)` with `v any`.
pub fn decode(data: &[u8]) -> Result<Value, JsonError> {
    let mut r = Reader {
        b: data,
        pos: 0,
        depth: 0,
        overflow: None,
    };
    let v = r.value()?;
    r.skip_ws();
    if r.pos < data.len() {
        return r.err("after top-level value");
    }
    if let Some(msg) = r.overflow {
        return Err(JsonError::Decode(msg));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_decode_like_go() {
        let mut input = br#"["\ud83d\ude00", "\udc00x", "\ud800\u0041", "a"#.to_vec();
        input.extend_from_slice(b"\xffb\", 1, [2], {\"a\":\"b\"}]");
        let v = decode(&input);
        let Value::Array(items) = v.unwrap() else {
            panic!()
        };
        assert_eq!(items[0].as_deref(), Some("😀"));
        assert_eq!(items[1].as_deref(), Some("\u{fffd}x"));
        assert_eq!(items[2].as_deref(), Some("\u{fffd}A"));
        assert_eq!(items[3].as_deref(), Some("a\u{fffd}b"));
        assert_eq!(&items[4..], &[None, None, None]);
    }

    #[test]
    fn objects() {
        let v = decode(br#" {"syntax": "foo", "bar": ["abc", {"x": 1}], "n": null} "#).unwrap();
        assert_eq!(
            v,
            Value::Object(vec![
                ("syntax".into(), Some("foo".into())),
                ("bar".into(), None),
                ("n".into(), None)
            ])
        );
        assert_eq!(decode(b"\"x\"").unwrap(), Value::Scalar(Some("x".into())));
        assert_eq!(decode(b"[]").unwrap(), Value::Array(vec![]));
        assert_eq!(decode(b"{}").unwrap(), Value::Object(vec![]));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            &b"[1,]"[..],
            b"[01]",
            b"[\"a\tb\"]",
            b"[] x",
            b"[",
            b"{\"a\"}",
            b"{\"a\":1,}",
            b"[tru]",
            b"[\"\\x\"]",
            b"[\"\\u12\"]",
            b"[1.]",
            b"[1e]",
            b"[-]",
            b"",
        ] {
            assert!(
                matches!(decode(bad), Err(JsonError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(decode(b"[1e400]"), Err(JsonError::Decode(_))));
        assert!(decode(b" [1e-400, -0.5E+3, {\"a\": [null, true]}] ").is_ok());
        let deep = "[".repeat(10001) + &"]".repeat(10001);
        assert!(matches!(decode(deep.as_bytes()), Err(JsonError::Syntax(_))));
        let ok = "[".repeat(10000) + &"]".repeat(10000);
        assert!(decode(ok.as_bytes()).is_ok());
    }
}
