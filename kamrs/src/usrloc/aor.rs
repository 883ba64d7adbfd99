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
mod tests {
    use super::*;

    fn new(user: &str, domain: Option<&str>, use_domain: bool) -> Result<String, AorError> {
        Aor::new(Cow::Borrowed(user), domain, use_domain).map(|a| a.as_str().to_owned())
    }

    #[test]
    fn domain_kept_lower_cased_or_dropped() {
        assert_eq!(new("alice", Some("Example.COM"), false).unwrap(), "alice");
        assert_eq!(
            new("alice", Some("Example.COM"), true).unwrap(),
            "alice@example.com"
        );
        // tel: has no host: the number alone, whatever use_domain says.
        assert_eq!(new("+15551234567", None, true).unwrap(), "+15551234567");
        // The user's case is kept (RFC 3261 §19.1.4: user is case-sensitive).
        assert_eq!(new("Alice", None, false).unwrap(), "Alice");
        // Nothing to change: no copy.
        assert!(matches!(
            Aor::new(Cow::Borrowed("alice"), Some("h"), false)
                .unwrap()
                .into_cow(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn what_cannot_round_trip_is_refused() {
        assert_eq!(new("", Some("h"), false), Err(AorError::EmptyUser));
        assert_eq!(
            new("victim@other.org", Some("h"), false),
            Err(AorError::AtInUser)
        );
        assert_eq!(
            new("victim@other.org", Some("h"), true),
            Err(AorError::AtInUser)
        );
        for bad in [
            "a\0b",
            "t\r\nX-Inj",
            "\x1b[2J",
            "a\x7f",
            "a\u{85}",
            "a\u{9b}b",
            "\x08",
        ] {
            assert_eq!(
                new(bad, None, false),
                Err(AorError::ControlInUser),
                "{bad:?}"
            );
        }
        for bad in ["", "ex ample.com", "a@b", "ex\r\nample", "e\u{90}"] {
            let want = if bad.is_empty() {
                AorError::EmptyDomain
            } else {
                AorError::BadDomain
            };
            assert_eq!(new("alice", Some(bad), true), Err(want), "{bad:?}");
            // A domain that is dropped is not looked at.
            assert_eq!(new("alice", Some(bad), false).unwrap(), "alice");
        }
        let long = "a".repeat(MAX_AOR_LEN + 1);
        assert_eq!(new(&long, None, false), Err(AorError::TooLong(257)));
        assert!(new(&long[1..], None, false).is_ok());
        assert_eq!(
            new(&long[10..], Some("example.com"), true),
            Err(AorError::TooLong(MAX_AOR_LEN - 9 + 12))
        );
        // Printable non-ASCII and escaped-legal characters stay.
        assert_eq!(new("jörg smith", None, false).unwrap(), "jörg smith");
    }

    #[test]
    fn text_round_trips_what_new_makes() {
        for (user, domain, use_domain) in [
            ("alice", Some("example.com"), false),
            ("alice", Some("Example.com"), true),
            ("+1555", None, false),
            ("a;b=c", Some("h"), true),
        ] {
            let key = new(user, domain, use_domain).unwrap();
            assert_eq!(
                Aor::from_text(&key, use_domain).unwrap().as_str(),
                key,
                "{key}"
            );
        }
        assert_eq!(Aor::from_text("alice@x", false).unwrap().as_str(), "alice");
        assert_eq!(Aor::from_text("alice", true), Err(AorError::NoDomain));
        // tel: AoRs have no domain even with use_domain on.
        assert_eq!(
            Aor::from_text("+1-555-123", true).unwrap().as_str(),
            "+1-555-123"
        );
        assert_eq!(Aor::from_text("1001", true).unwrap().as_str(), "1001");
        assert_eq!(Aor::from_text("@x", true), Err(AorError::EmptyUser));
        assert_eq!(Aor::from_text("a@", true), Err(AorError::EmptyDomain));
        assert_eq!(Aor::from_text("a@b@c", true), Err(AorError::BadDomain));
        assert_eq!(Aor::from_text("a\r\n", false), Err(AorError::ControlInUser));
        assert_eq!(Aor::from_text("a\0@h", true), Err(AorError::ControlInUser));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(AorError::AtInUser.to_string().contains("%40"));
        assert!(AorError::NoDomain.to_string().contains("use_domain is on"));
        assert!(AorError::TooLong(300).to_string().contains("at most 256"));
        assert!(AorError::EmptyUser.to_string().contains("empty"));
    }
}
