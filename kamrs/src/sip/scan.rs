//! Byte-level scanning shared by the typed parsers.
//!
//! Header values are kept as slices of the received bytes, folded lines
//! included. RFC 3261 §7.3.1 makes a fold (CRLF followed by white space)
//! equivalent to a single space, so every parser here treats CR and LF inside
//! a value as white space: the header splitter guarantees that a CR or LF
//! inside a value is always followed by SP or HT.

/// Linear white space, folds included.
#[inline]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` characters.
#[inline]
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

#[inline]
pub fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

pub fn trim(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while a < b && is_ws(s[a]) {
        a += 1;
    }
    while b > a && is_ws(s[b - 1]) {
        b -= 1;
    }
    &s[a..b]
}

/// `s[i]` is an opening `"`: returns the index just past the closing quote,
/// honouring backslash escapes, or `None` when the string never closes.
pub fn quoted_end(s: &[u8], i: usize) -> Option<usize> {
    debug_assert_eq!(s.get(i), Some(&b'"'));
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// ASCII slice to `&str`. Every caller has checked the grammar (tokens,
/// URI characters) first, so this fails only on bytes the grammar already
/// refused; it still never panics.
#[inline]
pub fn ascii(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// Parses an unsigned decimal that fits `u32`, nothing else (no sign, no
/// spaces, at most 10 digits).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    u32::try_from(n).ok()
}
