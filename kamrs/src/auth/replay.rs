//! Nonce-count tracking (RFC 7616 §3.4): every use of a nonce must carry a
//! higher `nc` than the last, so a captured REGISTER cannot be replayed.
//!
//! This is the one piece of per-challenge state; it lives only as long as
//! the nonce does and is bounded in size. A node that has not seen a nonce
//! before (restart, another node) accepts its first use, which is what
//! stateless nonces trade for needing no shared state.

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept at most; beyond that the oldest nonces are forgotten first
/// (their next use is then taken as a first use).
const CAPACITY: usize = 1 << 20;

#[derive(Default)]
pub struct NonceCounts {
    seen: Mutex<HashMap<[u8; 16], (u32, u64)>>,
}

impl NonceCounts {
    /// Records `nc` for the nonce `id` issued at `issued_at`; false if it is
    /// not higher than one already seen (a replay).
    pub fn accept(&self, id: [u8; 16], nc: u32, issued_at: u64, now: u64, lifetime: u64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= CAPACITY {
            seen.retain(|_, (_, t)| now.saturating_sub(*t) <= lifetime);
            if seen.len() >= CAPACITY {
                seen.clear();
            }
        }
        match seen.get_mut(&id) {
            Some((last, _)) if nc <= *last => false,
            Some((last, _)) => {
                *last = nc;
                true
            }
            None => {
                seen.insert(id, (nc, issued_at));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_rise() {
        let c = NonceCounts::default();
        let id = [1u8; 16];
        assert!(c.accept(id, 1, 0, 0, 300));
        assert!(!c.accept(id, 1, 0, 0, 300));
        assert!(c.accept(id, 2, 0, 0, 300));
        assert!(!c.accept(id, 1, 0, 0, 300));
        assert!(c.accept([2u8; 16], 1, 0, 0, 300));
    }
}
