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
//! end the quoted field early. It is also cut to [`MAX_USER_BYTES`]
//! (marked `…`), and failure and lock-out lines are capped at
//! [`LINES_PER_SECOND`] overall ([`Limiter`]): past it they are counted,
//! and one summary line says how many were left out. The `auth:` counters
//! stay exact.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use super::lockout::Scope;

/// Bytes of a user name logged at most (escaped), before the `…`.
pub const MAX_USER_BYTES: usize = 64;

/// Failure and lock-out lines logged per second at most, all sources.
pub const LINES_PER_SECOND: u32 = 100;

/// `s` with `"`, `\` and every control character (C0, DEL, C1) escaped
/// as Rust does (`\n`, `\u{1b}`).
pub fn escaped(s: &str) -> String {
    escaped_max(s, usize::MAX)
}

/// [`escaped`], cut to `max` bytes at a character (never inside an
/// escape), `…` marking the cut.
fn escaped_max(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut one = String::new();
    for c in s.chars() {
        one.clear();
        if c == '"' || c == '\\' || c.is_control() {
            one.extend(c.escape_default());
        } else {
            one.push(c);
        }
        if out.len() + one.len() > max {
            out.push('…');
            break;
        }
        out.push_str(&one);
    }
    out
}

/// A user name as logged: escaped and cut to [`MAX_USER_BYTES`].
fn user_field(user: &str) -> String {
    escaped_max(user, MAX_USER_BYTES)
}

/// At most `per_second` lines per second (the caller's clock, seconds);
/// the rest are counted and reported once the next second has a line.
pub struct Limiter {
    per_second: u32,
    state: Mutex<Window>,
}

struct Window {
    second: u64,
    lines: u32,
    suppressed: u64,
}

impl Limiter {
    pub const fn new(per_second: u32) -> Limiter {
        Limiter {
            per_second,
            state: Mutex::new(Window {
                second: 0,
                lines: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a line may be logged at `now`, and how many lines the
    /// window before suppressed (to report first, when not 0).
    fn admit(&self, now: u64) -> (bool, u64) {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut report = 0;
        if now != w.second {
            report = std::mem::take(&mut w.suppressed);
            w.second = now;
            w.lines = 0;
        }
        if w.lines < self.per_second {
            w.lines += 1;
            (true, report)
        } else {
            w.suppressed += 1;
            (false, report)
        }
    }

    /// Runs `line` if the cap allows, after the summary of the window
    /// before when it suppressed any.
    fn log(&self, now: u64, line: impl FnOnce()) {
        let (allowed, suppressed) = self.admit(now);
        if suppressed > 0 {
            tracing::warn!("{suppressed} auth failure lines suppressed in the last second");
        }
        if allowed {
            line();
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(LINES_PER_SECOND)
    }
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

pub fn failure(
    limit: &Limiter,
    now: u64,
    user: &str,
    realm: &str,
    source: SocketAddr,
    why: Failure,
) {
    limit.log(now, || {
        tracing::warn!(
            "auth failure: user=\"{}@{}\" source={source} reason={}",
            user_field(user),
            escaped(realm),
            why.as_str()
        )
    });
}

pub fn lockout(
    limit: &Limiter,
    now: u64,
    scope: Scope,
    user: &str,
    realm: &str,
    source: SocketAddr,
    seconds: u64,
) {
    limit.log(now, || {
        tracing::warn!(
            "auth lockout: scope={} user=\"{}@{}\" source={source} seconds={seconds}",
            scope.as_str(),
            user_field(user),
            escaped(realm)
        )
    });
}

pub fn refused(scope: Scope, user: &str, realm: &str, source: SocketAddr) {
    tracing::debug!(
        "auth refused: scope={} user=\"{}@{}\" source={source} reason=locked-out",
        scope.as_str(),
        user_field(user),
        escaped(realm)
    );
}

#[cfg(test)]
mod tests;
