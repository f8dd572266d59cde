//! Hand-written matchers for the distribution/reference grammar (regexp.go), without a regex engine.
//!
//! ```text
//! reference          := name [ ":" tag ] [ "@" digest ]
//! name               := [domain '/'] remote-name
//! domain             := host [':' port-number]
//! host               := domain-name | '[' [a-fA-F0-9:]+ ']'
//! domain-name        := domain-component ['.' domain-component]*
//! domain-component   := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number        := /[0-9]+/
//! remote-name        := path-component ['/' path-component]*
//! path-component     := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric      := /[a-z0-9]+/
//! separator          := /[_.]|__|[-]+/
//! tag                := /[\w][\w.-]{0,127}/
//! digest             := /[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}/
//! identifier         := /[a-f0-9]{64}/
//! ```
//!
//! Every function here is anchored: it accepts exactly the strings the corresponding anchored Go regexp
//! matches, and where Go reads capture groups, returns the same submatches.

/// `[a-z0-9]`
fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w]` in RE2: ASCII letters, digits and `_`.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// One label of a domain name: `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(&first), Some(&last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && s.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        }
        _ => false,
    }
}

/// `domain-name`: dot-separated labels (this includes dotted-decimal IPv4 addresses).
fn is_domain_name(s: &[u8]) -> bool {
    s.split(|&b| b == b'.').all(is_domain_component)
}

/// `(?::[0-9]+)?`
fn is_optional_port(s: &[u8]) -> bool {
    match s.split_first() {
        None => true,
        Some((b':', digits)) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// `domainAndPort` (Go's `DomainRegexp`, anchored): a host name, dotted IPv4 address or bracketed IPv6 address,
/// with an optional numeric port. Purely syntactic: `[fd00123123123]` and port `750050` are accepted.
pub fn is_domain(s: &str) -> bool {
    let b = s.as_bytes();
    if let Some(rest) = b.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&c| c == b']') else {
            return false;
        };
        let (inner, after) = (&rest[..close], &rest[close + 1..]);
        !inner.is_empty()
            && inner.iter().all(|&c| c.is_ascii_hexdigit() || c == b':')
            && is_optional_port(after)
    } else {
        let host_end = b.iter().position(|&c| c == b':').unwrap_or(b.len());
        is_domain_name(&b[..host_end]) && is_optional_port(&b[host_end..])
    }
}

/// `path-component`: lower-case alphanumeric runs joined by `.`, `_`, `__` or one or more `-`.
pub fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && is_lower_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false; // empty, or starts/ends with a separator, or two separators in a row
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `remote-name`: one or more path components separated by single slashes.
pub fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// The anchored name grammar `^(?:(domainAndPort)/)?(remote-name)$` (Go's `anchoredNameRegexp`, tested upstream as
/// `FullNameRegexp`). Returns the two captures `(domain, remote-name)`, the domain being `""` when absent.
///
/// A domain can not contain `/`, so the only candidate domain is the first segment. Go's regexp prefers to
/// match the optional domain group, so the first segment is the domain whenever that gives a full match.
pub fn split_name(s: &str) -> Option<(&str, &str)> {
    if let Some((first, rest)) = s.split_once('/') {
        if is_domain(first) && is_remote_name(rest) {
            return Some((first, rest));
        }
    }
    is_remote_name(s).then_some(("", s))
}

/// Whether `s` is a whole name (`NameRegexp`, anchored).
pub fn is_name(s: &str) -> bool {
    split_name(s).is_some()
}

/// `tag` (anchored): `[\w][\w.-]{0,127}`, so 1 to 128 characters.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// The reference grammar's digest (`DigestRegexp`, anchored):
/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`.
///
/// This is only the syntax; what go-digest then accepts is decided in the parent module.
pub fn is_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|comp| {
        let c = comp.as_bytes();
        !c.is_empty() && c[0].is_ascii_alphabetic() && c.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// `identifier` (anchored): exactly 64 lower-case hex digits, an image ID without `sha256:`.
pub fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The three captures of the reference grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceParts<'a> {
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// The anchored reference grammar `^(name)(?::(tag))?(?:@(digest))?$` (Go's `ReferenceRegexp`), returning the
/// captures `[name, tag, digest]`.
///
/// Neither a name nor a tag contains `@`, so the first `@` starts the digest. A name contains `:` only inside its
/// domain, which is followed by a `/`; a tag contains neither `:` nor `/`. So a `:` after the last `/` (or anywhere,
/// when there is no `/`) can only be the tag separator, and then it must be the last `:`.
pub fn split_reference(s: &str) -> Option<ReferenceParts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !is_digest(d) {
            return None;
        }
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    if !is_name(name) {
        return None;
    }
    Some(ReferenceParts { name, tag, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a-b", "a---b", "a.b-c_d__e", "0"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", "A", "a.", ".a", "a..b", "a___b", "a._b", "a_-b", "a-", "-a", "a b", "é",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(is_tag("a"));
        assert!(is_tag("_x"));
        assert!(is_tag(&"a".repeat(128)));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(!is_tag("-foo"));
        assert!(!is_tag(".foo"));
        assert!(!is_tag(""));
        assert!(!is_tag("a:b"));
    }

    #[test]
    fn digest_syntax() {
        let hex32 = "0123456789abcdefABCDEF0123456789";
        assert!(is_digest(&format!("sha256:{hex32}")));
        assert!(is_digest(&format!("Sha256+b64.x-y_z:{hex32}")));
        assert!(!is_digest(&format!("sha256:{}", &hex32[..31])));
        assert!(!is_digest(&format!("1sha:{hex32}")));
        assert!(!is_digest(&format!("sha--256:{hex32}")));
        assert!(!is_digest(&format!("sha256:{hex32}g")));
        assert!(!is_digest("foo"));
    }
}
