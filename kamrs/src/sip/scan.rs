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

/// Index of the first byte at or after `i` that is not in class `class`
/// (a single [`class`] bit), or `s.len()`; `i` itself when `i >= s.len()`.
///
/// The parser's class scans (parameter names and values, hosts, users,
/// header names) go through here. Runs are short (3 to 15 bytes) and the
/// slice usually goes on well past them, so eight bytes are taken at once
/// as an array: one bounds check per eight bytes, then per byte only a
/// table test and a branch (the unrolled loop), instead of a bounds check,
/// a test and two branches.
#[inline(always)]
pub fn span(s: &[u8], i: usize, class: u8) -> usize {
    debug_assert!(class.is_power_of_two());
    let mut j = i;
    while let Some(c) = s.get(j..).and_then(<[u8]>::first_chunk::<8>) {
        for (k, &b) in c.iter().enumerate() {
            if CLASSES[b as usize] & class == 0 {
                return j + k;
            }
        }
        j += 8;
    }
    while j < s.len() && CLASSES[s[j] as usize] & class != 0 {
        j += 1;
    }
    j
}

/// Whether every byte of `s` is visible ASCII (`%x21-7E`: no white space,
/// no control, nothing above `~`). Eight bytes per step: the Call-ID and
/// the Request-URI are 20 to 60 bytes long.
#[inline]
pub fn all_graphic(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact "some byte < 0x21" and "some byte > 0x7E" tests (the classic
    // has-less / has-more bit tricks, exact for bounds up to 0x80).
    let bad = |x: u64| {
        (x.wrapping_sub(ONES * 0x21) & !x & HIGH) | ((x.wrapping_add(ONES) | x) & HIGH) != 0
    };
    let (chunks, tail) = s.as_chunks::<8>();
    if chunks.iter().any(|c| bad(u64::from_le_bytes(*c))) {
        return false;
    }
    tail.iter().all(u8::is_ascii_graphic)
}

/// [`skip_ws`], also returning the byte it stopped at (`None` at the end).
#[inline(always)]
pub fn skip_ws_peek(s: &[u8], mut i: usize) -> (usize, Option<u8>) {
    loop {
        match s.get(i) {
            Some(&b) if is_ws(b) => i += 1,
            c => return (i, c.copied()),
        }
    }
}

#[inline]
pub fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

// Always inlined: nearly every value has nothing to trim, and the two
// checks that find that out cost less than the call (callgrind).
#[inline(always)]
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

/// `a.eq_ignore_ascii_case(b)`, a word at a time: parameter names are
/// compared for every parameter a registrar looks up (`expires`,
/// `+sip.instance`, `reg-id`, `branch`…), and the byte-by-byte std loop was
/// the largest single cost of reading a Contact's parameters. Two possibly
/// overlapping loads cover 4 to 16 bytes; longer and shorter names take the
/// std path.
#[inline]
pub fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let w8 = |s: &[u8]| -> Option<(u64, u64)> {
        Some((
            u64::from_le_bytes(*s.first_chunk()?),
            u64::from_le_bytes(*s.last_chunk()?),
        ))
    };
    // First four and last four bytes, in one word.
    let w4 = |s: &[u8]| -> Option<u64> {
        Some(
            u64::from(u32::from_le_bytes(*s.first_chunk()?))
                | u64::from(u32::from_le_bytes(*s.last_chunk()?)) << 32,
        )
    };
    match a.len() {
        8..=16 => match (w8(a), w8(b)) {
            (Some((a0, a1)), Some((b0, b1))) => {
                lower8(a0) == lower8(b0) && lower8(a1) == lower8(b1)
            }
            _ => false,
        },
        4..=7 => match (w4(a), w4(b)) {
            (Some(x), Some(y)) => lower8(x) == lower8(y),
            _ => false,
        },
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Every ASCII upper-case letter of the eight bytes of `x` made lower case,
/// every other byte unchanged (as `u8::to_ascii_lowercase` on each byte).
#[inline(always)]
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Low seven bits of each byte; adding below 0x80 cannot carry into the
    // next byte, and bit 7 of the sum says "low seven bits >= bound".
    let low = x & !HIGH;
    let ge_a = low + ONES * (0x80 - b'A' as u64);
    let gt_z = low + ONES * (0x80 - b'Z' as u64 - 1);
    // Upper case: A..=Z and bit 7 clear in the byte itself.
    let upper = ge_a & !gt_z & !x & HIGH;
    x | (upper >> 2)
}

/// Index of the first `a` or `b` in `hay`.
///
/// The parser searches short spans (a header line, a URI up to its `>`, a
/// quoted string): `memchr` costs some 60 instructions per call there
/// (runtime dispatch, alignment set-up), more than the search itself. This
/// is a plain 16-bytes-at-a-time SSE2 loop, inlined at the call site.
#[inline(always)]
pub fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `find2_sse2` is safe code whose only requirement is the
        // SSE2 target feature, and the cfg above compiles this call only
        // when the whole program is built with SSE2 enabled (always the
        // case on x86_64), so the CPU running it has SSE2.
        unsafe { find2_sse2(a, b, hay) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        memchr::memchr2(a, b, hay)
    }
}

/// Index of the first `a` in `hay`; see [`find2`].
#[inline(always)]
pub fn find1(a: u8, hay: &[u8]) -> Option<usize> {
    find2(a, a, hay)
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn find2_sse2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    let va = _mm_set1_epi8(a as i8);
    let vb = _mm_set1_epi8(b as i8);
    let load = |c: &[u8; 16]| -> __m128i {
        let x = u128::from_le_bytes(*c);
        _mm_set_epi64x((x >> 64) as u64 as i64, x as u64 as i64)
    };
    // Bit k set: byte k of the chunk is `a` or `b`.
    let mask = |v: __m128i| -> u32 {
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb))) as u32
    };
    let (chunks, tail) = hay.as_chunks::<16>();
    for (k, c) in chunks.iter().enumerate() {
        let m = mask(load(c));
        if m != 0 {
            return Some(k * 16 + m.trailing_zeros() as usize);
        }
    }
    if tail.is_empty() {
        return None;
    }
    match hay.last_chunk::<16>() {
        // The last 16 bytes, overlapping what the loop saw: drop those.
        Some(last) => {
            let m = mask(load(last)) >> (16 - tail.len());
            (m != 0).then(|| hay.len() - tail.len() + m.trailing_zeros() as usize)
        }
        None => tail.iter().position(|&x| x == a || x == b),
    }
}

/// `s[i]` is an opening `"`: returns the index just past the closing quote,
/// honouring backslash escapes, or `None` when the string never closes.
pub fn quoted_end(s: &[u8], i: usize) -> Option<usize> {
    debug_assert_eq!(s.get(i), Some(&b'"'));
    let mut j = i + 1;
    // Quoted values run long (`"<urn:uuid:…>"`): jump between the two
    // bytes that matter instead of stepping through every byte.
    while let Some(k) = find2(b'"', b'\\', s.get(j..)?) {
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

/// Bytes checked to be all ASCII. Every sub-slice of ASCII is valid UTF-8,
/// so [`AsciiBytes::str`] cuts `&str`s out of it with bounds checks only:
/// slicing a `&str` also checks that both ends fall on character
/// boundaries, some 60 instructions per URI for its four parts.
#[derive(Clone, Copy)]
pub struct AsciiBytes<'a>(&'a [u8]);

impl<'a> AsciiBytes<'a> {
    #[inline(always)]
    pub fn new(s: &'a [u8]) -> Option<AsciiBytes<'a>> {
        s.is_ascii().then_some(AsciiBytes(s))
    }

    /// `s[a..b]` as `&str`; panics (as slicing does) when out of bounds.
    #[inline(always)]
    pub fn str(self, a: usize, b: usize) -> &'a str {
        let part = &self.0[a..b];
        // SAFETY: `part` is a sub-slice of bytes that are all ASCII (the
        // only constructor checks it), and ASCII is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(part) }
    }

    /// From `a` to the end.
    #[inline(always)]
    pub fn str_from(self, a: usize) -> &'a str {
        self.str(a, self.0.len())
    }
}

/// Parses an unsigned decimal that fits `u32`, nothing else (no sign, no
/// spaces, at most 10 digits).
#[inline]
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

#[cfg(test)]
mod tests;
