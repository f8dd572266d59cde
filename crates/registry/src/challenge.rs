//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1): several challenges per header, comma-separated auth-params,
//! quoted strings with backslash escapes, token68.

/// One authentication challenge, e.g. `Bearer realm="https://auth.example/token",service="registry"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, lowercased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameters in order, names lowercased.
    pub params: Vec<(String, String)>,
    /// A token68 credential instead of parameters (rare in challenges).
    pub token68: Option<String>,
}

impl Challenge {
    /// A parameter by (case-insensitive) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token68_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }
    fn quoted(&mut self) -> String {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    /// Whether an auth-param (`token BWS "=" BWS ...`) starts here, as opposed to a new challenge or a token68.
    fn at_param(&self) -> bool {
        let mut j = self.i;
        let start = j;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == start {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if self.s.get(j) != Some(&b'=') {
            return false;
        }
        // `abc==` / `abc=` followed by end or comma is a token68, not a parameter.
        j += 1;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        !matches!(self.s.get(j), None | Some(b'=' | b','))
    }
}

/// Parse every challenge of one `WWW-Authenticate` header value. Malformed parts are skipped, never fatal: a
/// registry's header is advisory and a lenient reading beats refusing to authenticate.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        c.skip_ws_commas();
        if c.peek().is_none() {
            break;
        }
        let Some(scheme) = c.token() else {
            // Garbage: skip one byte and resynchronise.
            c.i += 1;
            continue;
        };
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
            token68: None,
        };
        c.skip_ws();
        // token68?
        if !c.at_param() && c.peek().is_some_and(is_token68_char) {
            let start = c.i;
            while c.peek().is_some_and(is_token68_char) {
                c.i += 1;
            }
            while c.peek() == Some(b'=') {
                c.i += 1;
            }
            let t = String::from_utf8_lossy(&c.s[start..c.i]).into_owned();
            c.skip_ws();
            if matches!(c.peek(), None | Some(b',')) {
                ch.token68 = Some(t);
                out.push(ch);
                continue;
            }
            // Not a token68 after all: treat what we read as the next challenge's scheme.
            c.i = start;
            out.push(ch);
            continue;
        }
        // auth-params, comma separated; stop when the next item is not `name=`.
        loop {
            c.skip_ws();
            if !c.at_param() {
                break;
            }
            let name = c.token().unwrap_or("").to_ascii_lowercase();
            c.skip_ws();
            c.i += 1; // '='
            c.skip_ws();
            let val = if c.peek() == Some(b'"') {
                c.quoted()
            } else {
                c.token().unwrap_or("").to_string()
            };
            ch.params.push((name, val));
            c.skip_ws();
            if c.peek() == Some(b',') {
                // Look past the commas: another parameter, or a new challenge?
                let save = c.i;
                c.skip_ws_commas();
                if c.at_param() {
                    continue;
                }
                c.i = save;
                break;
            }
            if c.peek().is_some() && !c.at_param() {
                // Junk after a value: skip to the next comma.
                while !matches!(c.peek(), None | Some(b',')) {
                    c.i += 1;
                }
            }
        }
        out.push(ch);
    }
    out
}

/// Parse all `WWW-Authenticate` headers of a response, in order.
pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    values.into_iter().flat_map(parse_challenges).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_params() {
        let v = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;
        let c = parse_challenges(v);
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
    }

    #[test]
    fn several_challenges_in_one_header() {
        let v = r#"Basic realm="Registry Realm", Bearer realm="https://a/t", service=reg , error="invalid_token", Negotiate abc123==, Digest realm="x\"y", nonce=1"#;
        let c = parse_challenges(v);
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate", "digest"]);
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[1].param("error"), Some("invalid_token"));
        assert_eq!(c[2].token68.as_deref(), Some("abc123=="));
        assert_eq!(c[3].param("realm"), Some("x\"y"));
        assert_eq!(c[3].param("nonce"), Some("1"));
    }

    #[test]
    fn scheme_case_and_spacing() {
        let c = parse_challenges(r#"BEARER  Realm = "r" ,  Service="s""#);
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("r"));
        assert_eq!(c[0].param("service"), Some("s"));
        let c = parse_challenges("Basic");
        assert_eq!(c.len(), 1);
        assert!(c[0].is_basic());
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn quoted_comma_inside_value() {
        let c = parse_challenges(
            r#"Bearer realm="https://a/t",scope="repository:a:pull,push repository:b:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].param("scope"),
            Some("repository:a:pull,push repository:b:pull")
        );
    }

    #[test]
    fn several_headers() {
        let c = parse_all([r#"Basic realm="a""#, r#"Bearer realm="b""#]);
        assert_eq!(c.len(), 2);
        assert!(c[1].is_bearer());
    }

    #[test]
    fn garbage_does_not_panic() {
        for v in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer ,realm=x",
            "é Basic",
        ] {
            let _ = parse_challenges(v);
        }
    }
}
