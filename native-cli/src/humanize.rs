//! Docker's human-readable forms of sizes and times for listings (`images`, `history`, `prune`): decimal sizes
//! with three significant digits, "3 days ago" ages, and the RFC 3339 reader they need.

/// Docker's human size: decimal units, three significant digits (`4.26MB`).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.3}");
    // Three significant digits, trailing zeros dropped, as Go's %.3g does for these ranges.
    let digits_before = s.find('.').unwrap_or(s.len());
    let keep = 3_usize.saturating_sub(digits_before);
    let mut out = format!("{v:.keep$}");
    if out.contains('.') {
        out = out.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{out}{}", units[i])
}

/// "3 days ago" style age from RFC 3339 `created`, given now in seconds.
pub fn age(created: Option<&str>, now: i64) -> String {
    let Some(secs) = created.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let d = (now - secs).max(0);
    let (n, unit) = match d {
        0..=59 => return "Less than a minute ago".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        86_400..=1_209_599 => (d / 86_400, "day"),
        1_209_600..=5_183_999 => (d / 604_800, "week"),
        5_184_000..=63_071_999 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    if n == 1 {
        format!("{} {unit} ago", if unit == "hour" { "An" } else { "A" })
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Seconds since the epoch of an RFC 3339 time (fractional seconds and offsets allowed).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        rest = &r[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 3600 + r[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (inverse of lw_oci::config::rfc3339_from_epoch).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(12_300_000), "12.3MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }

    #[test]
    fn rfc3339_round_trip() {
        for t in [0i64, 1_700_000_000, 951_782_400, 4_102_444_800] {
            assert_eq!(
                parse_rfc3339(&lw_oci::config::rfc3339_from_epoch(t)),
                Some(t)
            );
        }
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(age(Some("1970-01-01T00:00:00Z"), 3 * 86_400), "3 days ago");
    }
}
