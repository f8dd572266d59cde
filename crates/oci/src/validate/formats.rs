//! String checks the image-spec validator needs, written as small matchers: the media type and digest patterns,
//! go-digest's `Digest.Validate`, Go's base64 and RFC 3339 decoders, the config `Env` pattern, and the
//! JSON-schema `uri` format (Go's `net/url.Parse` plus the schema library's IPv6 host check).

use crate::digest::matches_generic_grammar;

/// `^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`
pub(crate) fn is_media_type(s: &str) -> bool {
    fn part(p: &[u8]) -> bool {
        match p.split_first() {
            Some((first, rest)) => {
                first.is_ascii_alphanumeric()
                    && rest.len() <= 126
                    && rest
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(c))
            }
            None => false,
        }
    }
    match s.split_once('/') {
        Some((t, sub)) => part(t.as_bytes()) && part(sub.as_bytes()),
        None => false,
    }
}

/// The schema's digest pattern `^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`.
pub(crate) fn is_digest_pattern(s: &str) -> bool {
    matches_generic_grammar(s)
}

/// go-digest's `Digest.Validate`, with `ErrDigestUnsupported` treated as success (as the upstream validator does).
/// sha256, sha384 and sha512 are the available algorithms; their encoded part must be lowercase hex of the right
/// length. Any other algorithm passes if the whole digest fits the generic grammar.
pub(crate) fn go_digest_check(s: &str) -> Result<(), String> {
    let bad_format = || Err("it is not of the form algorithm:encoded".to_string());
    let Some((alg, enc)) = s.split_once(':') else {
        return bad_format();
    };
    if alg.is_empty() || enc.is_empty() {
        return bad_format();
    }
    let hex_len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ if matches_generic_grammar(s) => return Ok(()),
        _ => return bad_format(),
    };
    if enc.len() != hex_len {
        return Err(format!(
            "a {alg} digest has {hex_len} hex characters, this one has {}",
            enc.len()
        ));
    }
    if !enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("a {alg} digest must be lowercase hex"));
    }
    Ok(())
}

/// Whether Go's `base64.StdEncoding.Decode` accepts `s`: padded standard alphabet, CR and LF ignored anywhere,
/// non-zero trailing bits tolerated.
pub(crate) fn is_go_base64(s: &str) -> bool {
    let clean: Vec<u8> = s.bytes().filter(|&b| b != b'\r' && b != b'\n').collect();
    if !clean.len().is_multiple_of(4) {
        return false;
    }
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let body_end = clean.len().saturating_sub(4);
    let (body, last) = clean.split_at(body_end);
    if !body.iter().all(|&b| alphabet(b)) {
        return false;
    }
    match last {
        [] => true,
        [a, b, c, d] => {
            alphabet(*a)
                && alphabet(*b)
                && ((alphabet(*c) && (alphabet(*d) || *d == b'=')) || (*c == b'=' && *d == b'='))
        }
        _ => false,
    }
}

/// The config validator's `^[^=]+=.*$` (Go regexp: `[^=]` matches a newline, `.` does not): an `=` that is not
/// the first character, and no newline after the first `=`.
pub(crate) fn is_env_entry(s: &str) -> bool {
    match s.find('=') {
        Some(0) | None => false,
        Some(i) => !s.get(i..).unwrap_or_default().contains('\n'),
    }
}

/// What Go's `time.Time.UnmarshalJSON` accepts (strict RFC 3339, Go 1.20 and later):
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with every field in range and a real day of the month.
pub(crate) fn go_rfc3339(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let shape = || format!("{s:?} is not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM))");
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(shape());
    };
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return Err(shape());
    }
    if !(1..=12).contains(&month) {
        return Err(format!("{s:?}: month out of range"));
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > days {
        return Err(format!("{s:?}: day out of range"));
    }
    if hour > 23 || min > 59 || sec > 59 {
        return Err(format!("{s:?}: time of day out of range"));
    }
    let mut rest = b.get(19..).unwrap_or_default();
    if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
        let n = 1 + rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[n..];
    }
    match rest {
        b"Z" => Ok(()),
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |x: u8, y: u8| {
                (x.is_ascii_digit() && y.is_ascii_digit())
                    .then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
            };
            match (two(*h1, *h2), two(*m1, *m2)) {
                (Some(h), Some(m)) if h < 24 && m < 60 => Ok(()),
                (Some(_), Some(_)) => Err(format!("{s:?}: time zone offset out of range")),
                _ => Err(shape()),
            }
        }
        _ => Err(shape()),
    }
}

// ---- uri ------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Bytes a host may hold unescaped (Go's `shouldEscape` in host mode returns false for these).
fn host_byte_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Go's `url.unescape`: check `%XX` escapes (and host characters) for one part of a URL, returning its bytes.
fn unescape(s: &[u8], part: Part) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let hi = s.get(i + 1).copied().and_then(hex_val);
            let lo = s.get(i + 2).copied().and_then(hex_val);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                let shown =
                    String::from_utf8_lossy(s.get(i..(i + 3).min(s.len())).unwrap_or_default())
                        .into_owned();
                return Err(format!("invalid URL escape {shown:?}"));
            };
            let v = (hi << 4) | lo;
            let is_25 = v == 0x25;
            if part == Part::Host && hi < 8 && !is_25 {
                return Err(format!("invalid URL escape \"%{hi:X}{lo:X}\" in host (only non-ASCII bytes may be escaped)"));
            }
            if part == Part::Zone && !is_25 && v != b' ' && !host_byte_ok(v) {
                return Err(format!("invalid URL escape \"%{hi:X}{lo:X}\" in IPv6 zone"));
            }
            out.push(v);
            i += 3;
        } else {
            if matches!(part, Part::Host | Part::Zone) && c < 0x80 && !host_byte_ok(c) {
                return Err(format!("invalid character {:?} in host name", c as char));
            }
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// `""` or `:` followed by digits.
fn valid_optional_port(p: &[u8]) -> bool {
    match p.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

fn cut(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == sep) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Check that `s` is an absolute URI the way the upstream schema validator does: Go's `url.Parse` (Go 1.26
/// rules: bracketed hosts must be IPv6 literals) must succeed, the scheme must be present, and a host name with a
/// colon must be a bracketed IPv6 address without a zone.
pub(crate) fn check_uri(s: &str) -> Result<(), String> {
    let (u, frag) = cut(s.as_bytes(), b'#');
    if u.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return Err("invalid control character in URL".into());
    }
    // getScheme
    let mut scheme: &[u8] = b"";
    let mut rest = u;
    for (i, &c) in u.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => {
                scheme = &u[..i];
                rest = &u[i + 1..];
                break;
            }
            _ => break,
        }
    }
    // The query is not checked by Parse.
    rest = if rest.last() == Some(&b'?') && rest.iter().filter(|&&c| c == b'?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        cut(rest, b'?').0
    };
    let mut host: Option<Vec<u8>> = None;
    let opaque = !rest.starts_with(b"/") && !scheme.is_empty();
    if !opaque {
        if scheme.is_empty() && !rest.starts_with(b"/") && cut(rest, b'/').0.contains(&b':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
        let mut path = rest;
        if (!scheme.is_empty() || !rest.starts_with(b"///")) && rest.starts_with(b"//") {
            let after = &rest[2..];
            let (authority, p) = match after.iter().position(|&b| b == b'/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, &b""[..]),
            };
            host = Some(parse_authority(authority)?);
            path = p;
        }
        unescape(path, Part::Path)?;
    }
    if let Some(f) = frag {
        unescape(f, Part::Fragment)?;
    }
    if scheme.is_empty() {
        return Err("relative URL (no scheme)".into());
    }
    if let Some(host) = host {
        let name = hostname(&host);
        if name.contains(&b':') {
            if !host.contains(&b'[') || !host.contains(&b']') {
                return Err("IPv6 address not enclosed in brackets".into());
            }
            match parse_addr(name) {
                Ok(Addr::V6 { zoned: false }) => {}
                Ok(Addr::V6 { zoned: true }) => {
                    return Err("a zone is not part of an IPv6 address".into())
                }
                Ok(Addr::V4) | Err(_) => return Err("invalid IPv6 address".into()),
            }
        }
    }
    Ok(())
}

fn parse_authority(authority: &[u8]) -> Result<Vec<u8>, String> {
    let at = authority.iter().rposition(|&b| b == b'@');
    let host = parse_host(match at {
        Some(i) => &authority[i + 1..],
        None => authority,
    })?;
    if let Some(i) = at {
        let userinfo = &authority[..i];
        let ok = |c: &u8| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(c);
        if !userinfo.iter().all(ok) {
            return Err("invalid userinfo".into());
        }
        let (user, password) = cut(userinfo, b':');
        unescape(user, Part::UserPassword)?;
        if let Some(p) = password {
            unescape(p, Part::UserPassword)?;
        }
    }
    Ok(host)
}

fn parse_host(host: &[u8]) -> Result<Vec<u8>, String> {
    if let Some(open) = host.iter().rposition(|&b| b == b'[') {
        if open > 0 {
            return Err("invalid IP-literal".into());
        }
        let Some(close) = host.iter().rposition(|&b| b == b']') else {
            return Err("missing ']' in host".into());
        };
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {:?} after host",
                String::from_utf8_lossy(colon_port)
            ));
        }
        let inner = &host[1..close];
        let mut name = match find(inner, b"%25") {
            Some(z) => {
                let mut h = unescape(&inner[..z], Part::Host)?;
                h.extend(unescape(&inner[z..], Part::Zone)?);
                h
            }
            None => unescape(inner, Part::Host)?,
        };
        match parse_addr(&name) {
            Err(e) => return Err(format!("invalid host: {e}")),
            Ok(Addr::V4) => return Err("invalid IP-literal".into()),
            Ok(Addr::V6 { .. }) => {}
        }
        name.insert(0, b'[');
        name.push(b']');
        name.extend_from_slice(colon_port);
        return Ok(name);
    }
    if let Some(i) = host.iter().position(|&b| b == b':') {
        if !valid_optional_port(&host[i..]) {
            return Err(format!(
                "invalid port {:?} after host",
                String::from_utf8_lossy(&host[i..])
            ));
        }
    }
    unescape(host, Part::Host)
}

/// `URL.Hostname`: the host without its port and brackets.
fn hostname(host: &[u8]) -> &[u8] {
    let mut h = host;
    if let Some(c) = host.iter().rposition(|&b| b == b':') {
        if valid_optional_port(&host[c..]) {
            h = &host[..c];
        }
    }
    if h.len() >= 2 && h.first() == Some(&b'[') && h.last() == Some(&b']') {
        h = &h[1..h.len() - 1];
    }
    h
}

#[derive(Debug, PartialEq, Eq)]
enum Addr {
    V4,
    V6 { zoned: bool },
}

/// Go's `netip.ParseAddr`, reporting only the address family (and whether an IPv6 zone was given).
fn parse_addr(s: &[u8]) -> Result<Addr, String> {
    for &c in s {
        match c {
            b'.' => return ipv4_fields(s).map(|()| Addr::V4),
            b':' => return parse_ipv6(s),
            b'%' => return Err("missing IPv6 address".into()),
            _ => {}
        }
    }
    Err("unable to parse IP".into())
}

fn ipv4_fields(s: &[u8]) -> Result<(), String> {
    let (mut val, mut dots, mut digits) = (0u32, 0, 0);
    for (i, &c) in s.iter().enumerate() {
        if c.is_ascii_digit() {
            if digits == 1 && val == 0 {
                return Err("IPv4 field has octet with leading zero".into());
            }
            val = val * 10 + u32::from(c - b'0');
            digits += 1;
            if val > 255 {
                return Err("IPv4 field has value >255".into());
            }
        } else if c == b'.' {
            if i == 0 || i == s.len() - 1 || s.get(i - 1) == Some(&b'.') {
                return Err("IPv4 field must have at least one digit".into());
            }
            if dots == 3 {
                return Err("IPv4 address too long".into());
            }
            dots += 1;
            val = 0;
            digits = 0;
        } else {
            return Err("unexpected character in IPv4 address".into());
        }
    }
    if dots < 3 {
        return Err("IPv4 address too short".into());
    }
    Ok(())
}

fn parse_ipv6(input: &[u8]) -> Result<Addr, String> {
    let (mut s, zoned) = match input.iter().position(|&b| b == b'%') {
        Some(i) if i + 1 == input.len() => return Err("zone must be a non-empty string".into()),
        Some(i) => (&input[..i], true),
        None => (input, false),
    };
    let mut ellipsis: Option<usize> = None;
    if s.starts_with(b"::") {
        ellipsis = Some(0);
        s = &s[2..];
        if s.is_empty() {
            return Ok(Addr::V6 { zoned });
        }
    }
    let mut filled = 0; // bytes of the 16-byte address
    while filled < 16 {
        let digits = s.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if digits > 4 {
            return Err("each group must have 4 or less digits".into());
        }
        if digits == 0 {
            return Err("each colon-separated field must have at least one digit".into());
        }
        if s.get(digits) == Some(&b'.') {
            if ellipsis.is_none() && filled != 12 {
                return Err(
                    "embedded IPv4 address must replace the final 2 fields of the address".into(),
                );
            }
            if filled + 4 > 16 {
                return Err(
                    "too many hex fields to fit an embedded IPv4 at the end of the address".into(),
                );
            }
            ipv4_fields(s)?;
            s = b"";
            filled += 4;
            break;
        }
        filled += 2;
        s = &s[digits..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' {
            return Err("unexpected character, want colon".into());
        }
        if s.len() == 1 {
            return Err("colon must be followed by more characters".into());
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return Err("multiple :: in address".into());
            }
            ellipsis = Some(filled);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return Err("trailing garbage after address".into());
    }
    if filled < 16 && ellipsis.is_none() {
        return Err("address string too short".into());
    }
    if filled == 16 && ellipsis.is_some() {
        return Err("the :: must expand to at least one field of zeros".into());
    }
    Ok(Addr::V6 { zoned })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(is_media_type("application/vnd.oci.image.manifest.v1+json"));
        assert!(is_media_type(&format!(
            "{}/{}",
            "a".repeat(127),
            "b".repeat(127)
        )));
        assert!(!is_media_type(&format!("{}/b", "a".repeat(128))));
        for bad in [
            "application",
            ".foo/bar",
            "foo/.bar",
            "",
            "a/b/c",
            "a/b\n",
            "a /b",
            "/b",
            "a/",
        ] {
            assert!(!is_media_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn go_digests() {
        let hex = "5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
        assert!(go_digest_check(&format!("sha256:{hex}")).is_ok());
        assert!(go_digest_check(&format!("sha256:{}", hex.to_uppercase())).is_err());
        assert!(go_digest_check("sha256:abc").is_err());
        assert!(go_digest_check(&format!("sha512:{hex}")).is_err());
        assert!(go_digest_check(&format!("sha384:{}", "a".repeat(96))).is_ok());
        assert!(go_digest_check("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564").is_ok());
        assert!(
            go_digest_check("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
                .is_ok()
        );
        for bad in [
            "SHA256:abc",
            "sha256+foo+-b:abc",
            ":abc",
            "sha256",
            "sha256:",
            "md5:a b",
            "",
        ] {
            assert!(go_digest_check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base64_like_go() {
        for ok in [
            "",
            "YQ==",
            "YWI=",
            "YWJj",
            "YW\nJj",
            "YW\r\nJj\n",
            "YR==",
            "+/+/",
        ] {
            assert!(is_go_base64(ok), "{ok:?}");
        }
        for bad in [
            "YQ", "YQ=", "Y===", "====", "YQ==YWJj", "YW-j", "YWJ", "YQ==\nx", " YWJj",
        ] {
            assert!(!is_go_base64(bad), "{bad:?}");
        }
    }

    #[test]
    fn env_entries() {
        for ok in ["A=b", "A=", "A==", "A\nB=c", "ÄÖ=x"] {
            assert!(is_env_entry(ok), "{ok:?}");
        }
        for bad in ["foo", "=x", "", "A=b\nc"] {
            assert!(!is_env_entry(bad), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_like_go() {
        for ok in [
            "2015-10-31T22:22:56.015925234Z",
            "2015-10-31T22:22:56Z",
            "2016-02-29T00:00:00+01:00",
            "0000-01-01T00:00:00-23:59",
            "2015-10-31T22:22:56.1234567890123Z",
        ] {
            assert!(go_rfc3339(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "2015-10-31t22:22:56Z",
            "2015-10-31T22:22:56z",
            "2015-10-31T22:22:60Z",
            "2015-02-29T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-10-31T24:00:00Z",
            "2015-10-31T2:22:56Z",
            "2015-10-31T22:22:56,5Z",
            "2015-10-31T22:22:56.Z",
            "2015-10-31T22:22:56+24:00",
            "2015-10-31T22:22:56+01:60",
            "2015-10-31T22:22:56+0100",
            "2015-10-31 22:22:56Z",
            "2015-10-31T22:22Z",
            "",
        ] {
            assert!(go_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uris() {
        for ok in [
            "https://example.com/foo",
            "http://user:pa%20ss@example.com:8080/a%20b?q=%zz#frag",
            "mailto:someone@example.com",
            "urn:oasis:names",
            "a:b c",
            "http://[::1]:80/",
            "http://[::ffff:1.2.3.4]/",
            "http://example.com/#x%41",
            "file:///etc/passwd",
            "http://%c3%a9.example/",
        ] {
            assert!(check_uri(ok).is_ok(), "{ok:?}: {:?}", check_uri(ok));
        }
        for bad in [
            "value",
            "/just/a/path",
            "//example.com/x",
            ":foo",
            "http://exa mple.com/",
            "http://example.com/%zz",
            "http://example.com/#%g0",
            "http://a:b/",
            "http://::1/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[1.2.3.4]/",
            "http://[fe80::1%25en0]/",
            "http://[abc]/",
            "http://x[::1]/",
            "http://us er@host/",
            "http://%41.example/",
            "http://exa\u{7f}mple/",
            "1http://x/",
        ] {
            assert!(check_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(parse_addr(b"::"), Ok(Addr::V6 { zoned: false }));
        assert_eq!(
            parse_addr(b"1:2:3:4:5:6:7:8"),
            Ok(Addr::V6 { zoned: false })
        );
        assert_eq!(parse_addr(b"fe80::1%en0"), Ok(Addr::V6 { zoned: true }));
        assert_eq!(parse_addr(b"1.2.3.4"), Ok(Addr::V4));
        for bad in [
            &b"1:2:3:4:5:6:7:8:9"[..],
            b"1::2::3",
            b"12345::",
            b"1:2:3:4:5:6:7::8",
            b"::1.2.3",
            b"1:2:3:4:5:6:1.2.3.4:5",
            b"01.2.3.4",
            b"1:",
            b"%x",
            b"fe80::1%",
        ] {
            assert!(
                parse_addr(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_addr(b"1:2:3:4:5:6:1.2.3.4"),
            Ok(Addr::V6 { zoned: false })
        );
    }
}
