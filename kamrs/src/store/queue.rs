//! What the stores' queues share: the one rule for `queue_size`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts `n` more ops into `queued` when they fit under `cap`, and says
/// whether they did. A submission is refused when it would take the queue
/// past `cap` (`before + n > cap`), not only when the queue is already
/// full, so no batch ever overruns the cap; refused ops are not counted.
pub(crate) fn try_reserve(queued: &AtomicUsize, n: usize, cap: usize) -> bool {
    let before = queued.fetch_add(n, Ordering::AcqRel);
    if before + n > cap {
        queued.fetch_sub(n, Ordering::AcqRel);
        return false;
    }
    true
}

#[cfg(test)]
mod tests;
