//! Byte-level scanning shared by the typed parsers.
//!
//! Header values are kept as slices of the received bytes, folded lines
//! included. RFC 3261 §7.3.1 makes a fold (CRLF followed by white space)
//! equivalent to a single space, so every parser here treats CR and LF inside
//! a value as white space: the header splitter guarantees that a CR or LF
//! inside a value is always followed by SP or HT.

/// Character classes of the SIP grammar, one bit each, looked up in a
/// 256-entry table: one load per byte instead of a chain of comparisons
/// (the parser's hottest loops test every byte of every name and value).
pub mod class {
    /// RFC 3261 `token`.
    pub const TOKEN: u8 = 1;
    /// Linear white space inside a value: SP, HT and the CR/LF of a fold.
    pub const WS: u8 = 1 << 1;
    /// Header parameter names and unquoted values: token plus `:/@[]`.
    pub const PARAM_HDR: u8 = 1 << 2;
    /// URI parameter characters (RFC 3261 `paramchar`, escapes as `%`).
    pub const PARAM_URI: u8 = 1 << 3;
    /// URI userinfo characters.
    pub const USER: u8 = 1 << 4;
    /// URI `?headers` characters.
    pub const URI_HDR: u8 = 1 << 5;
    /// `tel:` number characters.
    pub const TEL: u8 = 1 << 6;
    /// Host name characters.
    pub const HOST: u8 = 1 << 7;
}

const fn build_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let alnum = c.is_ascii_alphanumeric();
        let unreserved = alnum
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        let token = alnum
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        let mut bits = 0u8;
        if token {
            bits |= class::TOKEN;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            bits |= class::WS;
        }
        if token || matches!(c, b':' | b'/' | b'@' | b'[' | b']') {
            bits |= class::PARAM_HDR;
        }
        if token
            || matches!(
                c,
                b'[' | b']' | b'/' | b':' | b'&' | b'$' | b'(' | b')' | b'@'
            )
        {
            bits |= class::PARAM_URI;
        }
        if unreserved
            || matches!(
                c,
                b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b':'
            )
        {
            bits |= class::USER;
        }
        if unreserved
            || matches!(
                c,
                b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'&' | b'='
            )
        {
            bits |= class::URI_HDR;
        }
        if c.is_ascii_hexdigit() || matches!(c, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#') {
            bits |= class::TEL;
        }
        if alnum || matches!(c, b'-' | b'.' | b'_') {
            bits |= class::HOST;
        }
        t[b] = bits;
        b += 1;
    }
    t
}

static CLASSES: [u8; 256] = build_classes();

/// Whether `b` is in any of the classes `mask` names.
#[inline(always)]
pub fn is(b: u8, mask: u8) -> bool {
    CLASSES[b as usize] & mask != 0
}

/// Linear white space, folds included.
#[inline(always)]
pub fn is_ws(b: u8) -> bool {
    is(b, class::WS)
}

/// RFC 3261 `token` characters.
#[inline(always)]
pub fn is_token(b: u8) -> bool {
    is(b, class::TOKEN)
}

#[inline]
pub fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

#[inline]
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
    // Quoted values run long (`"<urn:uuid:…>"`): jump between the two
    // bytes that matter instead of stepping through every byte.
    while let Some(k) = memchr::memchr2(b'"', b'\\', s.get(j..)?) {
        j += k;
        if s[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
    None
}

/// A byte slice as `&str`, `None` if it is not UTF-8.
///
/// Nearly every slice the parser hands out is ASCII (tokens, URI parts), and
/// `from_utf8` is an out-of-line call per tiny slice; checking for ASCII
/// inline first took 7 % of a REGISTER's instructions off (callgrind).
#[inline]
pub fn ascii(s: &[u8]) -> Option<&str> {
    if s.is_ascii() {
        // SAFETY: every byte is ASCII, and ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(s) })
    } else {
        std::str::from_utf8(s).ok()
    }
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
