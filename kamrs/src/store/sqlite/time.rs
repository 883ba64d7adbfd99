//! Kamailio's `DATETIME` text (UTC).

use crate::time::days_from_civil;

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn format_time(secs: u64) -> String {
    crate::time::format_datetime(secs)
}

/// `YYYY-MM-DD HH:MM:SS` (a `T` instead of the space, and trailing
/// fractions or a `Z`, are accepted) in UTC as Unix seconds.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let tail = &s[19..];
    if !(tail.is_empty() || tail.starts_with('.') || tail == "Z") {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let t = days * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(t).ok()
}
