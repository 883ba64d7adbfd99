//! The rate limit of this store's log lines.

use super::*;

pub(super) use crate::log_limit::LogLimiter;

/// Whether a line of `limiter` may be written now: `Some(number
/// suppressed since the last line)`, at most one per [`LOG_EVERY`]
/// seconds.
pub(super) fn allow(limiter: &LogLimiter) -> Option<u64> {
    limiter.allow(crate::time::mono_secs(), LOG_EVERY)
}

pub(super) fn suppressed(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more like it since the last report)")
    }
}
