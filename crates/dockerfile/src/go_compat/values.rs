//! Go standard-library behaviours that BuildKit's instruction parser relies on
//! (`strconv.ParseBool/ParseInt/ParseUint`, `time.ParseDuration`, `strings.ToUpper`,
//! `units.RAMInBytes`, `suggest.Search`), with the same accepted inputs and messages.

use crate::parser::go_quote;

/// `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Why a number did not parse (`strconv.ErrSyntax` / `strconv.ErrRange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    Syntax,
    Range,
}

/// `strconv.ParseUint(s, base, bits)` for base 8 or 10 (no prefixes, no underscores).
pub fn parse_uint(s: &str, base: u32, bits: u32) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    let max: u64 = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut n: u64 = 0;
    for c in s.bytes() {
        let d = (c as char).to_digit(base).ok_or(NumError::Syntax)?;
        // Go returns the range error as soon as it is detected.
        match n
            .checked_mul(base as u64)
            .and_then(|v| v.checked_add(d as u64))
        {
            Some(v) if v <= max => n = v,
            _ => return Err(NumError::Range),
        }
    }
    Ok(n)
}

/// `strconv.ParseInt(s, 10, bits)`.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, NumError> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let un = parse_uint(digits, 10, 64)?;
    let cutoff: u64 = 1u64 << (bits - 1);
    if !neg && un >= cutoff {
        return Err(NumError::Range);
    }
    if neg && un > cutoff {
        return Err(NumError::Range);
    }
    Ok(if neg {
        (un as i64).wrapping_neg()
    } else {
        un as i64
    })
}

/// The message of a `strconv.NumError`.
pub fn num_error(func: &str, input: &str, e: NumError) -> String {
    let what = match e {
        NumError::Syntax => "invalid syntax",
        NumError::Range => "value out of range",
    };
    format!(
        "strconv.{func}: parsing {}: {what}",
        go_quote(input.as_bytes())
    )
}

/// `time.quote`: like `strconv.Quote` but every non-ASCII or control byte as `\xHH`.
fn time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// `time.ParseDuration`'s bound: |duration| <= 1<<63 ns before the sign is applied.
const LIMIT: u64 = 1 << 63;

/// `leadingInt`: the leading digits' value and how many bytes they take; `None` on overflow.
fn leading_int(s: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if v > LIMIT / 10 {
            return None;
        }
        v = v * 10 + u64::from(s[i] - b'0');
        if v > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((v, i))
}

/// `leadingFraction`: the leading digits as a fraction (value, scale) and how many bytes they
/// take; digits past overflow are consumed but ignored.
fn leading_fraction(s: &[u8]) -> (u64, f64, usize) {
    let mut f: u64 = 0;
    let mut scale: f64 = 1.0;
    let mut i = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if f > (LIMIT - 1) / 10 {
                overflow = true;
            } else {
                let y = f * 10 + u64::from(s[i] - b'0');
                if y > LIMIT {
                    overflow = true;
                } else {
                    f = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (f, scale, i)
}

/// `time.ParseDuration`, in nanoseconds (may be negative).
pub fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", time_quote(orig));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let (mut v, i) = leading_int(s).ok_or_else(invalid)?;
        let pre = i > 0;
        s = &s[i..];
        // (\.[0-9]*)?
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let i;
            (f, scale, i) = leading_fraction(s);
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        if i == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                time_quote(orig)
            ));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match u {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    time_quote(&String::from_utf8_lossy(u)),
                    time_quote(orig)
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// `strings.ToUpper` with Go's simple case mapping.
pub fn to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                return c.to_ascii_uppercase();
            }
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// `units.RAMInBytes` (docker/go-units): `1024`, `10k`, `1.5 GiB`, `2mb`...
pub fn ram_in_bytes(size: &str) -> Result<i64, String> {
    let b = size.as_bytes();
    let Some(sep) = b
        .iter()
        .rposition(|c| c.is_ascii_digit() || *c == b'.' || *c == b' ')
    else {
        return Err(format!("invalid size: '{size}'"));
    };
    let (num, sfx) = if b[sep] != b' ' {
        (&size[..sep + 1], &size[sep + 1..])
    } else {
        (&size[..sep], &size[sep + 1..])
    };
    let mut value = parse_float(num).ok_or_else(|| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(num.as_bytes())
        )
    })?;
    if value < 0.0 {
        return Err(format!("invalid size: '{size}'"));
    }
    if sfx.is_empty() {
        return Ok(value as i64);
    }
    let bad = |s: &str| Err(format!("invalid suffix: '{s}'"));
    if sfx.len() > 3 {
        return bad(sfx);
    }
    let sfx = sfx.to_lowercase();
    let sb = sfx.as_bytes();
    if sb[0] == b'b' {
        if sb.len() > 1 {
            return bad(&sfx);
        }
        return Ok(value as i64);
    }
    let mul: f64 = match sb[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return bad(&sfx),
    };
    value *= mul;
    if (sb.len() == 2 && sb[1] != b'b') || (sb.len() == 3 && &sfx[1..] != "ib") {
        return bad(&sfx);
    }
    Ok(value as i64)
}

/// `strconv.ParseFloat(s, 64)` for decimal input (also `inf`/`nan` forms); overflow
/// is an error as in Go.
fn parse_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special
        && !t
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !special {
        return None;
    }
    Some(v)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `suggest.Search`: the closest option within edit distance 2, if any (and none if
/// `val` equals an option). Options are tried in the given order.
pub fn suggest(val: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let v = if case_sensitive {
        val.to_string()
    } else {
        crate::go_compat::unicode::to_lower(val.as_bytes())
    };
    let mut best: Option<String> = None;
    let mut mindist = 3;
    for opt in options {
        let o = if case_sensitive {
            opt.to_string()
        } else {
            crate::go_compat::unicode::to_lower(opt.as_bytes())
        };
        if v == o {
            return None;
        }
        let dist = levenshtein(&v, &o);
        if dist < mindist {
            // matchCase: an all-upper value gets an upper-case suggestion, otherwise
            // the (lower-cased, when case-insensitive) option.
            best = Some(
                if !case_sensitive
                    && val != crate::go_compat::unicode::to_lower(val.as_bytes())
                    && val == to_upper(val)
                {
                    to_upper(&o)
                } else {
                    o
                },
            );
            mindist = dist;
        }
    }
    best
}

/// `suggest.WrapError`: appends ` (did you mean X?)` when a close option exists.
pub fn with_suggestion(msg: String, val: &str, options: &[&str], case_sensitive: bool) -> String {
    match suggest(val, options, case_sensitive) {
        Some(m) => format!("{msg} (did you mean {m}?)"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("-2us"), Ok(-2_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration(".5ms"), Ok(500_000));
        assert_eq!(parse_duration("1µs"), Ok(1_000));
        assert_eq!(
            parse_duration("1"),
            Err("time: missing unit in duration \"1\"".into())
        );
        assert_eq!(
            parse_duration("1x"),
            Err("time: unknown unit \"x\" in duration \"1x\"".into())
        );
        assert_eq!(
            parse_duration(""),
            Err("time: invalid duration \"\"".into())
        );
        assert_eq!(
            parse_duration("."),
            Err("time: invalid duration \".\"".into())
        );
        assert_eq!(
            parse_duration("9999999999h"),
            Err("time: invalid duration \"9999999999h\"".into())
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_uint("755", 8, 32), Ok(0o755));
        assert_eq!(parse_uint("8", 8, 32), Err(NumError::Syntax));
        assert_eq!(parse_uint("4294967296", 10, 32), Err(NumError::Range));
        assert_eq!(parse_uint("+1", 10, 32), Err(NumError::Syntax));
        assert_eq!(parse_int("-3", 32), Ok(-3));
        assert_eq!(parse_int("2147483648", 32), Err(NumError::Range));
        assert_eq!(parse_int("-2147483648", 32), Ok(-2147483648));
        assert_eq!(
            num_error("ParseInt", "x", NumError::Syntax),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("1024"), Ok(1024));
        assert_eq!(ram_in_bytes("10k"), Ok(10240));
        assert_eq!(ram_in_bytes("1.5 GiB"), Ok(1610612736));
        assert_eq!(ram_in_bytes("2mb"), Ok(2 * 1024 * 1024));
        assert!(ram_in_bytes("m").is_err());
        assert!(ram_in_bytes("1kx").is_err());
        assert!(ram_in_bytes("-1").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("FORM", &["FROM", "RUN"], false).as_deref(),
            Some("FROM")
        );
        assert_eq!(
            suggest("form", &["FROM", "RUN"], false).as_deref(),
            Some("from")
        );
        assert_eq!(
            suggest("chwon", &["chown", "chmod"], true).as_deref(),
            Some("chown")
        );
        assert_eq!(suggest("zzzzz", &["chown"], true), None);
    }
}
