//! The address-of-record key: the one normalisation both the registrar
//! (from a REGISTER's To URI) and the control API (from what an admin
//! types) go through, so that whatever a REGISTER stores, `ul.lookup` and
//! `ul.rm` with the same text find.
//!
//! The key is `user` (Kamailio's default, `use_domain = false`) or
//! `user@domain` with the domain lower-cased. It is storage-neutral: no SIP
//! parsing here; the registrar unescapes the URI's user part and hands over
//! user and host, the API splits `user@domain` text.
//!
//! What cannot round-trip is refused rather than stored:
//! - an `@` in the user (a REGISTER for `victim%40other.org@example.com`):
//!   the key `victim@other.org` would be read back by the API as user
//!   `victim` at `other.org`, so it could never be looked up or removed;
//! - control characters (NUL, CR, LF, ESC, DEL, C1 controls): they cut
//!   log lines and SQL/Redis keys short, forge lines in `ul.dump --brief`
//!   and drive the admin's terminal;
//! - an empty user or domain, or a key over [`MAX_AOR_LEN`] bytes.

use std::borrow::Cow;
use std::fmt;

/// Kamailio's limit on an AoR's length, in bytes.
pub const MAX_AOR_LEN: usize = 256;

/// A checked AoR key. Borrows when nothing had to change (the common
/// REGISTER: unescaped user, `use_domain = false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aor<'a>(Cow<'a, str>);

/// Why a user/domain pair makes no usable AoR key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AorError {
    EmptyUser,
    /// `use_domain` is on and there is no domain to keep.
    NoDomain,
    EmptyDomain,
    /// An `@` in the user part (once unescaped).
    AtInUser,
    /// A control character (C0, DEL or C1) in the user.
    ControlInUser,
    /// A control character, whitespace or `@` in the domain.
    BadDomain,
    /// Longer than [`MAX_AOR_LEN`]; carries the length.
    TooLong(usize),
}

impl fmt::Display for AorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AorError::EmptyUser => f.write_str("the user part is empty"),
            AorError::NoDomain => {
                f.write_str("it has no domain; use_domain is on, so write user@domain")
            }
            AorError::EmptyDomain => {
                f.write_str("it has an empty domain (use_domain is on: write user@domain)")
            }
            AorError::AtInUser => f.write_str(
                "the user part contains `@` (an escaped %40?), which an AoR key cannot hold: it could not be told from user@domain",
            ),
            AorError::ControlInUser => f.write_str(
                "the user part contains a control character (NUL, CR, LF, ESC, DEL or U+0080..U+009F)",
            ),
            AorError::BadDomain => {
                f.write_str("the domain contains a control character, a space or `@`")
            }
            AorError::TooLong(n) => write!(f, "it is {n} bytes long; at most {MAX_AOR_LEN}"),
        }
    }
}

impl std::error::Error for AorError {}

impl<'a> Aor<'a> {
    /// The key for `user` (already unescaped) at `domain` (`None` when the
    /// address has none, as a `tel:` URI): `user@domain` lower-cased when
    /// `use_domain` and there is a domain, else `user`.
    pub fn new(
        user: Cow<'a, str>,
        domain: Option<&str>,
        use_domain: bool,
    ) -> Result<Self, AorError> {
        check_user(&user)?;
        let key = match domain {
            Some(d) if use_domain => {
                check_domain(d)?;
                Cow::Owned(format!("{user}@{}", d.to_ascii_lowercase()))
            }
            _ => user,
        };
        if key.len() > MAX_AOR_LEN {
            return Err(AorError::TooLong(key.len()));
        }
        Ok(Aor(key))
    }

    /// The key for text an admin typed, `user` or `user@domain` (the form
    /// [`Aor::as_str`] gives back): the domain is required when
    /// `use_domain`, dropped otherwise.
    pub fn from_text(text: &'a str, use_domain: bool) -> Result<Self, AorError> {
        match text.split_once('@') {
            Some((user, domain)) => Aor::new(Cow::Borrowed(user), Some(domain), use_domain),
            // With use_domain on, the only keys without a domain are the
            // ones `tel:` URIs make (`+15551234567`): found again as such.
            None if use_domain && is_tel_number(text) => Aor::new(Cow::Borrowed(text), None, true),
            None if use_domain => {
                check_user(text)?;
                Err(AorError::NoDomain)
            }
            None => Aor::new(Cow::Borrowed(text), None, false),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

/// A telephone number as a `tel:` URI's number part holds it (RFC 3966:
/// digits, `+`, visual separators, local-number characters), starting
/// with `+` or a digit: what the registrar keys a `tel:` AoR by.
fn is_tel_number(s: &str) -> bool {
    s.starts_with(|c: char| c == '+' || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '+' | '-' | '.' | '(' | ')' | '*' | '#'))
}

fn check_user(user: &str) -> Result<(), AorError> {
    if user.is_empty() {
        return Err(AorError::EmptyUser);
    }
    if user.chars().any(char::is_control) {
        return Err(AorError::ControlInUser);
    }
    if user.contains('@') {
        return Err(AorError::AtInUser);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AorError> {
    if domain.is_empty() {
        return Err(AorError::EmptyDomain);
    }
    if domain
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '@')
    {
        return Err(AorError::BadDomain);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
