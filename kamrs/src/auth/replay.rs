//! Nonce-count tracking (RFC 7616 §3.4): every use of a nonce must carry a
//! higher `nc` than the last, so a captured REGISTER cannot be replayed.
//!
//! This is the one piece of per-challenge state. It only ever sees nonces
//! this process issued (others are stale, [`super::nonce`]), keyed by their
//! serial, which rises with every nonce issued. It is bounded: past
//! [`CAPACITY`] entries the expired ones go first, then the lowest serials
//! (the oldest nonces), and the highest serial ever forgotten is kept as a
//! watermark. A nonce at or below the watermark that is not in the table
//! may have been used before, so it is answered as stale (a fresh
//! challenge), never taken as a first use: eviction cannot reopen a replay.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Entries kept at most (about 40 bytes each): nonces answered right within
/// `nonce_expires`. At 1,000 registrations/s and the default 300 s that is
/// 300,000; beyond the cap the oldest nonces cost their UAs one extra 401.
pub const CAPACITY: usize = 1 << 20;

/// What [`NonceCounts::accept`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A first use, or a higher `nc` than the last: go on.
    Fresh,
    /// The same or a lower `nc` than one already seen: a replay.
    Replayed,
    /// Forgotten to keep the table bounded: its history is unknown, so the
    /// UA must take a fresh nonce (`stale=true`).
    Forgotten,
}

struct Table {
    /// serial → (highest nc seen, issued_at)
    seen: BTreeMap<u64, (u32, u64)>,
    /// Highest serial dropped from the table; `None` while nothing was.
    forgotten_upto: Option<u64>,
}

pub struct NonceCounts {
    table: Mutex<Table>,
    capacity: usize,
    /// Entries evicted before their nonce expired (`auth:nc_evicted`).
    pub evicted: AtomicU64,
}

impl Default for NonceCounts {
    fn default() -> Self {
        NonceCounts::with_capacity(CAPACITY)
    }
}

impl NonceCounts {
    pub fn with_capacity(capacity: usize) -> Self {
        NonceCounts {
            table: Mutex::new(Table {
                seen: BTreeMap::new(),
                forgotten_upto: None,
            }),
            capacity: capacity.max(1),
            evicted: AtomicU64::new(0),
        }
    }

    /// Nonces tracked now (`auth:nc_tracked`).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        crate::util::lock(&self.table)
    }

    /// Records `nc` for the nonce with `serial`, issued at `issued_at`.
    pub fn accept(&self, serial: u64, nc: u32, issued_at: u64, now: u64, lifetime: u64) -> Use {
        let mut t = self.lock();
        if let Some((last, _)) = t.seen.get_mut(&serial) {
            if nc <= *last {
                return Use::Replayed;
            }
            *last = nc;
            return Use::Fresh;
        }
        if t.forgotten_upto.is_some_and(|upto| serial <= upto) {
            return Use::Forgotten;
        }
        if t.seen.len() >= self.capacity {
            // Expired nonces are refused as stale anyway: drop them first
            // (under the watermark too, in case the clock steps back).
            let mut dropped = None;
            t.seen.retain(|&serial, (_, issued)| {
                let live = now.saturating_sub(*issued) <= lifetime;
                if !live {
                    dropped = Some(dropped.map_or(serial, |d: u64| d.max(serial)));
                }
                live
            });
            if let Some(d) = dropped {
                t.forgotten_upto = Some(t.forgotten_upto.map_or(d, |u| u.max(d)));
            }
            // Then the oldest eighth, remembered by the watermark, so the
            // next insertions do not each pay for a sweep.
            let target = self.capacity - self.capacity / 8;
            while t.seen.len() >= target.max(1) {
                let Some((oldest, _)) = t.seen.pop_first() else {
                    break;
                };
                t.forgotten_upto = Some(t.forgotten_upto.map_or(oldest, |u| u.max(oldest)));
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
            if t.forgotten_upto.is_some_and(|upto| serial <= upto) {
                return Use::Forgotten;
            }
        }
        t.seen.insert(serial, (nc, issued_at));
        Use::Fresh
    }
}

#[cfg(test)]
mod tests;
