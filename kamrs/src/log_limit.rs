//! Rate-limited log lines for events an attacker can trigger at packet
//! rate (a full table, replies that do not fit, failed sends): one line
//! per period at most, carrying how many events it stands for, so the log
//! says what happens without becoming the next thing that fills a disk.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts events and says when one may be logged.
#[derive(Debug, Default)]
pub struct LogLimiter {
    /// Unix second of the last line written, 0 before the first.
    last: AtomicU64,
    /// Events since the last line written.
    since: AtomicU64,
}

impl LogLimiter {
    pub const fn new() -> Self {
        LogLimiter {
            last: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }

    /// Records one event at `now` (Unix seconds). `Some(n)` when a line
    /// should be written now for the `n` events (this one included) since
    /// the last line; `None` when one was written less than `period`
    /// seconds ago. Only one thread wins a given period.
    pub fn event(&self, now: u64, period: u64) -> Option<u64> {
        self.since.fetch_add(1, Ordering::Relaxed);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last.saturating_add(period) {
            return None;
        }
        self.last
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.since.swap(0, Ordering::Relaxed).max(1))
    }

    /// Like [`event`](Self::event), for lines that say how many were left
    /// out: `Some(n)` when a line should be written now, `n` being the
    /// events suppressed since the last one (this one not included).
    pub fn allow(&self, now: u64, period: u64) -> Option<u64> {
        self.event(now, period).map(|n| n - 1)
    }

    /// Forgets the last line, so that the next event is logged at once
    /// (after a recovery, a new failure is news).
    pub fn reset(&self) {
        self.last.store(0, Ordering::Relaxed);
        self.since.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
