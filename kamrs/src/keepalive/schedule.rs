//! When in a round each AoR is pinged.
//!
//! A round lasts `ka_interval` and is cut into ticks of [`TICK`]. At its
//! start the engine takes the table's AoR names (one `Arc` clone each) and
//! gives every AoR the tick its hash picks, so the pings of a million
//! bindings spread evenly over the interval instead of leaving in one
//! burst (a burst overflows socket buffers and NAT boxes alike). The hash
//! is keyed per process, so nobody can pick AoR names that pile up on one
//! tick; within a process it is fixed, so each AoR is pinged every
//! `ka_interval`, at its own offset. AoRs registered during a round are
//! first pinged in the next one: they just proved their flow.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

/// The scheduling step: each tick's pings leave together (one `sendmmsg`
/// per socket), and their replies come back as one burst ahead of any
/// REGISTER arriving meanwhile; at 20 ms a tick of 100,000 bindings pinged
/// every 30 s is 67 pings, a burst of well under a millisecond.
pub const TICK: Duration = Duration::from_millis(20);

/// Ticks in a round of `interval_secs` (at least one).
pub fn ticks(interval_secs: u32) -> usize {
    let per_sec = (Duration::from_secs(1).as_millis() / TICK.as_millis()) as usize;
    (interval_secs as usize).saturating_mul(per_sec).max(1)
}

/// The AoRs of one round, bucketed by tick.
pub struct Round {
    buckets: Vec<Vec<Arc<str>>>,
}

impl Round {
    /// Buckets `aors` over `ticks` ticks by `hasher`; all in tick 0 when
    /// not `randomize` (Kamailio's behaviour: every ping at the timer).
    pub fn plan(
        aors: Vec<Arc<str>>,
        ticks: usize,
        randomize: bool,
        hasher: &impl BuildHasher,
    ) -> Round {
        let ticks = ticks.max(1);
        if !randomize {
            return Round {
                buckets: vec![aors],
            };
        }
        let mut buckets: Vec<Vec<Arc<str>>> = vec![Vec::new(); ticks];
        for aor in aors {
            let slot = (hasher.hash_one(&*aor) % ticks as u64) as usize;
            buckets[slot].push(aor);
        }
        Round { buckets }
    }

    /// The next tick at or after `from` that has AoRs, and them.
    pub fn next_due(&mut self, from: usize) -> Option<(usize, Vec<Arc<str>>)> {
        let (i, bucket) = self
            .buckets
            .iter_mut()
            .enumerate()
            .skip(from)
            .find(|(_, b)| !b.is_empty())?;
        Some((i, std::mem::take(bucket)))
    }
}

#[cfg(test)]
mod tests;
