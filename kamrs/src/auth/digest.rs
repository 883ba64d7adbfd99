//! The `Authorization: Digest …` header (RFC 3261 §25.1, RFC 7616 §3.4).
//!
//! Only what a registrar verifies is extracted. Quoted values keep their
//! escapes out (`\"` becomes `"`) without allocating unless an escape is
//! actually present.

use std::borrow::Cow;

use crate::sip::trim_ws;

/// The parameters of one Digest credential.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    pub response: Cow<'a, str>,
    pub algorithm: Option<Cow<'a, str>>,
    pub cnonce: Option<Cow<'a, str>>,
    pub nc: Option<Cow<'a, str>>,
    pub qop: Option<Cow<'a, str>>,
    pub opaque: Option<Cow<'a, str>>,
}

/// Why an Authorization header could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestError {
    NotDigest,
    Malformed,
    /// A parameter the computation needs is missing.
    Missing(&'static str),
}

/// Parses one Authorization (or Proxy-Authorization) header value.
pub fn parse(value: &[u8]) -> Result<Credentials<'_>, DigestError> {
    let value = trim_ws(value);
    let scheme_end = value
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .ok_or(DigestError::NotDigest)?;
    if !value[..scheme_end].eq_ignore_ascii_case(b"Digest") {
        return Err(DigestError::NotDigest);
    }
    let mut c = Credentials::default();
    let mut seen = [false; 4]; // username, realm, nonce, uri|response
    let mut response_seen = false;
    let mut rest = &value[scheme_end..];
    loop {
        rest = trim_ws(rest);
        if rest.is_empty() {
            break;
        }
        let eq = rest
            .iter()
            .position(|&b| b == b'=')
            .ok_or(DigestError::Malformed)?;
        let name = trim_ws(&rest[..eq]);
        if name.is_empty() || !name.iter().all(|&b| crate::sip::is_token_byte(b)) {
            return Err(DigestError::Malformed);
        }
        let after = trim_ws(&rest[eq + 1..]);
        let (val, consumed) = value_at(after)?;
        rest = &after[consumed..];
        rest = trim_ws(rest);
        match rest.first() {
            None => {}
            Some(b',') => rest = &rest[1..],
            Some(_) => return Err(DigestError::Malformed),
        }
        let slot = match name.to_ascii_lowercase().as_slice() {
            b"username" => {
                seen[0] = true;
                &mut c.username
            }
            b"realm" => {
                seen[1] = true;
                &mut c.realm
            }
            b"nonce" => {
                seen[2] = true;
                &mut c.nonce
            }
            b"uri" => {
                seen[3] = true;
                &mut c.uri
            }
            b"response" => {
                response_seen = true;
                &mut c.response
            }
            b"algorithm" => {
                c.algorithm = Some(val);
                continue;
            }
            b"cnonce" => {
                c.cnonce = Some(val);
                continue;
            }
            b"nc" => {
                c.nc = Some(val);
                continue;
            }
            b"qop" => {
                c.qop = Some(val);
                continue;
            }
            b"opaque" => {
                c.opaque = Some(val);
                continue;
            }
            // Unknown auth-params are allowed and ignored (RFC 7616 §3.4).
            _ => continue,
        };
        *slot = val;
    }
    for (present, name) in seen.iter().zip(["username", "realm", "nonce", "uri"]) {
        if !present {
            return Err(DigestError::Missing(name));
        }
    }
    if !response_seen {
        return Err(DigestError::Missing("response"));
    }
    Ok(c)
}

/// A token or quoted-string at the start of `s`: (value, bytes consumed).
fn value_at(s: &[u8]) -> Result<(Cow<'_, str>, usize), DigestError> {
    if s.first() == Some(&b'"') {
        let mut i = 1;
        let mut escaped = false;
        while i < s.len() {
            match s[i] {
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                b'"' => {
                    let inner = s.get(1..i).ok_or(DigestError::Malformed)?;
                    let text = std::str::from_utf8(inner).map_err(|_| DigestError::Malformed)?;
                    let val = if escaped {
                        Cow::Owned(unescape(text))
                    } else {
                        Cow::Borrowed(text)
                    };
                    return Ok((val, i + 1));
                }
                _ => i += 1,
            }
        }
        Err(DigestError::Malformed)
    } else {
        let end = s
            .iter()
            .position(|&b| b == b',' || b.is_ascii_whitespace())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(DigestError::Malformed);
        }
        let text = std::str::from_utf8(&s[..end]).map_err(|_| DigestError::Malformed)?;
        Ok((Cow::Borrowed(text), end))
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
