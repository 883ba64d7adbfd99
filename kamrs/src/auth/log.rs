//! The log lines of authentication failures and lock-outs: one line each,
//! in a fixed format fail2ban-style tools can match, e.g.
//!
//! ```text
//! auth failure: user="alice@example.com" source=192.0.2.7:5060 reason=wrong-password
//! auth lockout: scope=user+source user="alice@example.com" source=192.0.2.7:5060 seconds=300
//! ```
//!
//! The user name comes from the network, so control characters, quotes and
//! backslashes in it are escaped: it can neither forge a second line nor
//! end the quoted field early.

use std::net::SocketAddr;

use super::lockout::Scope;

/// `s` with `"`, `\` and every control character (C0, DEL, C1) escaped
/// as Rust does (`\n`, `\u{1b}`).
pub fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '"' || c == '\\' || c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Why an answer was wrong, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    WrongPassword,
    UnknownUser,
    /// The subscriber has no hash for the algorithm answered.
    NoHashForAlgorithm,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::WrongPassword => "wrong-password",
            Failure::UnknownUser => "unknown-user",
            Failure::NoHashForAlgorithm => "no-hash-for-algorithm",
        }
    }
}

pub fn failure(user: &str, realm: &str, source: SocketAddr, why: Failure) {
    tracing::warn!(
        "auth failure: user=\"{}@{}\" source={source} reason={}",
        escaped(user),
        escaped(realm),
        why.as_str()
    );
}

pub fn lockout(scope: Scope, user: &str, realm: &str, source: SocketAddr, seconds: u64) {
    tracing::warn!(
        "auth lockout: scope={} user=\"{}@{}\" source={source} seconds={seconds}",
        scope.as_str(),
        escaped(user),
        escaped(realm)
    );
}

pub fn refused(scope: Scope, user: &str, realm: &str, source: SocketAddr) {
    tracing::debug!(
        "auth refused: scope={} user=\"{}@{}\" source={source} reason=locked-out",
        scope.as_str(),
        escaped(user),
        escaped(realm)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_quotes_are_escaped() {
        assert_eq!(escaped("alice"), "alice");
        assert_eq!(escaped("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(
            escaped("x\r\nauth failure: \u{1b}[2J\u{9b}"),
            "x\\r\\nauth failure: \\u{1b}[2J\\u{9b}"
        );
        assert_eq!(escaped("Zoë"), "Zoë");
    }
}
