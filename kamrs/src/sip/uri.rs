//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and their comparison
//! by RFC 3261 §19.1.4.
//!
//! Kamailio compares Contact URIs byte for byte, so `sip:Alice@HOST` and
//! `sip:Alice@host` become two bindings. We compare the way the RFC says:
//! scheme and host case-insensitively, escapes equal to the characters they
//! stand for, and only the parameters the RFC names must match.

use super::params::{self, Params, ParamsIn};
use super::scan::{ascii, class, find1, is, span, AsciiBytes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        }
    }
}

/// A parsed URI. Every field borrows from the received bytes.
#[derive(Debug, Clone, Copy)]
pub struct Uri<'a> {
    pub scheme: Scheme,
    /// User part, still escaped (`tel:` URIs: the number).
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    /// Host as written; IPv6 references keep their brackets. Empty for `tel:`.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
    /// The `?headers` part without the `?`.
    pub headers: Option<&'a str>,
    /// The whole URI as received.
    pub raw: &'a str,
}

impl<'a> Uri<'a> {
    /// Parses a whole URI (nothing may follow it).
    ///
    /// Out of line: one copy for the Request-URI and every name-addr (code
    /// size, see [`NameAddr`](super::NameAddr)'s parser; wall time 5 % lower
    /// than inlining it there, at the same instruction count).
    #[inline(never)]
    pub fn parse(s: &'a [u8]) -> Option<Uri<'a>> {
        // No character class of the grammar below admits a byte above
        // 0x7F, so a URI that parses is ASCII: checking that first costs
        // nothing in outcome and makes every part a cheap `&str`.
        let ascii = AsciiBytes::new(s)?;
        let raw = ascii.str_from(0);
        // The scheme is one of three, so its colon is at index 3 or 4:
        // comparing in place is cheaper than searching for the colon.
        let (scheme, rest) = match s {
            [a, b, c, b':', ..] if eq3(*a, *b, *c, b"sip") => (Scheme::Sip, 4),
            [a, b, c, b':', ..] if eq3(*a, *b, *c, b"tel") => (Scheme::Tel, 4),
            [a, b, c, d, b':', ..] if eq3(*a, *b, *c, b"sip") && *d | 0x20 == b's' => {
                (Scheme::Sips, 5)
            }
            _ => return None,
        };
        if scheme == Scheme::Tel {
            return parse_tel(s, ascii, rest);
        }
        // userinfo ends at the first '@'; without one there is no user. One
        // pass over the user characters (user / ":" password, escapes
        // included, validated loosely: '%' passes) finds that '@' in the
        // common case; every byte before the first '@' must be a user
        // character.
        let j = span(s, rest, class::USER);
        let (user, password, host_start) = if s.get(j) == Some(&b'@') {
            // The password follows the first ':' of the userinfo.
            let (u, p) = match find1(b':', &s[rest..j]) {
                Some(c) => (ascii.str(rest, rest + c), Some(ascii.str(rest + c + 1, j))),
                None => (ascii.str(rest, j), None),
            };
            if u.is_empty() {
                return None;
            }
            (Some(u), p, j + 1)
        } else if j < s.len() && memchr::memchr(b'@', &s[j..]).is_some() {
            // An '@' after a byte that is no user character: bad userinfo.
            return None;
        } else {
            (None, None, rest)
        };
        let (host_end, port, after) = parse_hostport(s, host_start)?;
        let (params, params_end) = params::scan(s, after, ParamsIn::Uri)?;
        let headers = match s.get(params_end) {
            None => None,
            Some(b'?') => {
                let h = &s[params_end + 1..];
                if !h.iter().all(|&b| is_header_char(b)) {
                    return None;
                }
                Some(ascii.str_from(params_end + 1))
            }
            Some(_) => return None,
        };
        Some(Uri {
            scheme,
            user,
            password,
            host: ascii.str(host_start, host_end),
            port,
            params,
            headers,
            raw,
        })
    }

    /// URI equality by RFC 3261 §19.1.4 (and RFC 3966 §4 for tel).
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        if self.scheme == Scheme::Tel {
            return opt_eq(self.user, other.user, escaped_eq_ci) && params_match(self, other);
        }
        opt_eq(self.user, other.user, escaped_eq)
            && opt_eq(self.password, other.password, escaped_eq)
            && self.host.eq_ignore_ascii_case(other.host)
            && self.port == other.port
            && params_match(self, other)
            && headers_match(self.headers, other.headers)
    }
}

fn parse_tel<'a>(s: &'a [u8], ascii: AsciiBytes<'a>, rest: usize) -> Option<Uri<'a>> {
    let i = span(s, rest, class::TEL);
    if i == rest {
        return None;
    }
    let (params, end) = params::scan(s, i, ParamsIn::Uri)?;
    if end != s.len() {
        return None;
    }
    Some(Uri {
        scheme: Scheme::Tel,
        user: Some(ascii.str(rest, i)),
        password: None,
        host: "",
        port: None,
        params,
        headers: None,
        raw: ascii.str_from(0),
    })
}

/// Parses `host[:port]` at `s[i..]`; returns (host end, port, index after).
// Inlined into the URI and Via parsers (a call, its register saves and a
// result returned through memory cost as much as scanning the host); the
// rare IPv6 reference stays out of line.
#[inline(always)]
pub(crate) fn parse_hostport(s: &[u8], i: usize) -> Option<(usize, Option<u16>, usize)> {
    let host_end = if s.get(i) == Some(&b'[') {
        ipv6_reference_end(s, i)?
    } else {
        let j = span(s, i, class::HOST);
        if j == i {
            return None;
        }
        j
    };
    if s.get(host_end) != Some(&b':') {
        return Some((host_end, None, host_end));
    }
    // One to five digits, and no sixth one.
    let start = host_end + 1;
    let mut j = start;
    let mut port: u32 = 0;
    while let Some(&b) = s.get(j) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if j - start == 5 {
            return None;
        }
        port = port * 10 + u32::from(d);
        j += 1;
    }
    if j == start {
        return None;
    }
    let port = u16::try_from(port).ok()?;
    Some((host_end, Some(port), j))
}

/// `s[i]` is `[`: the index just past the `]` of a valid IPv6 reference.
#[cold]
#[inline(never)]
fn ipv6_reference_end(s: &[u8], i: usize) -> Option<usize> {
    let close = memchr::memchr(b']', &s[i..])? + i;
    let inner = ascii(&s[i + 1..close])?;
    inner.parse::<std::net::Ipv6Addr>().ok()?;
    Some(close + 1)
}

/// `[a, b, c]` equals the lower-case `lower`, ignoring ASCII case (every
/// byte of `lower` is a letter).
#[inline(always)]
fn eq3(a: u8, b: u8, c: u8, lower: &[u8; 3]) -> bool {
    [a | 0x20, b | 0x20, c | 0x20] == *lower
}

#[inline(always)]
fn is_header_char(b: u8) -> bool {
    is(b, class::URI_HDR)
}

fn opt_eq(a: Option<&str>, b: Option<&str>, eq: fn(&str, &str) -> bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => eq(a, b),
        _ => false,
    }
}

/// Bytes of `s` with `%XX` escapes decoded. A malformed escape is kept as is.
fn unescaped(s: &str) -> impl Iterator<Item = u8> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        if c == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                i += 3;
                return Some(h << 4 | l);
            }
        }
        i += 1;
        Some(c)
    })
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

fn escaped_eq(a: &str, b: &str) -> bool {
    a == b || unescaped(a).eq(unescaped(b))
}

fn escaped_eq_ci(a: &str, b: &str) -> bool {
    unescaped(a)
        .map(|c| c.to_ascii_lowercase())
        .eq(unescaped(b).map(|c| c.to_ascii_lowercase()))
}

/// The parameters that must match when present in either URI (§19.1.4).
const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

fn params_match(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    let value_eq = |x: Option<&str>, y: Option<&str>| opt_eq(x, y, escaped_eq_ci);
    for name in MUST_MATCH {
        match (a.params.get(name), b.params.get(name)) {
            (None, None) => {}
            (Some(x), Some(y)) if value_eq(x, y) => {}
            _ => return false,
        }
    }
    // Any other parameter present in both must have the same value. A name
    // given twice counts by its first occurrence on both sides, which keeps
    // the relation reflexive (found by the fuzzer: `;x;x=` vs itself).
    for (name, _) in a.params {
        if MUST_MATCH.iter().any(|m| m.eq_ignore_ascii_case(name)) {
            continue;
        }
        if let (Some(av), Some(bv)) = (a.params.get(name), b.params.get(name)) {
            if !value_eq(av, bv) {
                return false;
            }
        }
    }
    true
}

fn headers_match(a: Option<&str>, b: Option<&str>) -> bool {
    let split = |h: Option<&str>| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = h
            .unwrap_or("")
            .split('&')
            .filter(|x| !x.is_empty())
            .map(|kv| {
                let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
                let k: Vec<u8> = unescaped(k).map(|c| c.to_ascii_lowercase()).collect();
                let val: Vec<u8> = unescaped(val).collect();
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&val).into_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    if a.is_none() && b.is_none() {
        return true;
    }
    split(a) == split(b)
}

#[cfg(test)]
mod tests;
