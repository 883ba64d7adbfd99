//! The rate limit of this store's log lines.

use super::*;

/// Lets one line through per [`LOG_EVERY`] and counts the rest.
#[derive(Default)]
pub(super) struct LogLimiter(Mutex<(Option<Instant>, u64)>);

impl LogLimiter {
    /// Some(number suppressed since the last line) when a line may be
    /// written now.
    pub(super) fn allow(&self) -> Option<u64> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match s.0 {
            Some(last) if now.duration_since(last) < LOG_EVERY => {
                s.1 += 1;
                None
            }
            _ => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
        }
    }
}

pub(super) fn suppressed(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more like it since the last report)")
    }
}
