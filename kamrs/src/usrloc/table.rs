//! The location table: AoR → bindings, with expiry.
//!
//! Concurrency: a sharded map (dashmap), so REGISTERs for different AoRs
//! never wait on each other; all access is synchronous and no guard ever
//! lives across an `.await`.
//!
//! Expiry: an index ordered by deadline holds at most one live entry per
//! AoR, the record's earliest deadline, and one task sleeps until the first
//! entry is due. A refresh pushes a deadline *later*, which needs no index
//! change at all (the old entry fires, finds nothing expired, and schedules
//! the record's new earliest deadline), so the common REGISTER refresh never
//! touches the shared index. Nothing ever scans the whole table.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio::sync::Notify;

use super::binding::{Binding, PERMANENT};

/// Seconds since the Unix epoch: the clock bindings expire by.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// No deadline scheduled.
const UNSCHEDULED: u64 = u64::MAX;

#[derive(Debug)]
struct Record {
    bindings: Vec<Binding>,
    /// The deadline this record has in the expiry index, or [`UNSCHEDULED`].
    scheduled: u64,
}

/// usrloc counters, named after Kamailio's statistics.
#[derive(Debug, Default)]
pub struct UsrlocStats {
    /// AoRs with at least one binding (`usrloc:registered_users`).
    pub users: AtomicU64,
    /// Bindings in the table (`usrloc:location_contacts`).
    pub contacts: AtomicU64,
    /// Bindings removed because they expired (`usrloc:location_expires`).
    pub expired: AtomicU64,
}

/// The in-memory location table (DESIGN §4).
pub struct LocationTable {
    records: DashMap<Arc<str>, Record>,
    /// (deadline, AoR), at most one live entry per record; stale entries
    /// (whose deadline no longer matches the record's) are skipped.
    expiry: Mutex<BTreeSet<(u64, Arc<str>)>>,
    wake: Notify,
    stats: UsrlocStats,
}

impl Default for LocationTable {
    fn default() -> Self {
        Self::new()
    }
}

impl LocationTable {
    pub fn new() -> Self {
        LocationTable {
            records: DashMap::new(),
            expiry: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            stats: UsrlocStats::default(),
        }
    }

    pub fn stats(&self) -> &UsrlocStats {
        &self.stats
    }

    /// Runs `f` on the live bindings of `aor` while holding that AoR's
    /// entry, then stores what `f` left. Expired bindings are dropped before
    /// `f` sees them. Creating and deleting the record, the expiry index and
    /// the counters are handled here, so callers only edit a list.
    pub fn update<R>(&self, aor: &str, now: u64, f: impl FnOnce(&mut Vec<Binding>) -> R) -> R {
        // Look up by &str first so refreshing an existing AoR allocates no key.
        let (result, now_empty) = match self.records.get_mut(aor) {
            Some(mut rec) => {
                let key = rec.key().clone();
                let r = self.edit(&key, &mut rec, now, f);
                (r, rec.bindings.is_empty())
            }
            None => {
                let key: Arc<str> = Arc::from(aor);
                let mut rec = self.records.entry(key.clone()).or_insert_with(|| Record {
                    bindings: Vec::new(),
                    scheduled: UNSCHEDULED,
                });
                let r = self.edit(&key, &mut rec, now, f);
                (r, rec.bindings.is_empty())
            }
        };
        if now_empty {
            self.remove_if_empty(aor);
        }
        result
    }

    fn edit<R>(
        &self,
        key: &Arc<str>,
        rec: &mut Record,
        now: u64,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> R {
        let before = rec.bindings.len();
        let expired = Self::drop_expired(&mut rec.bindings, now);
        if expired > 0 {
            self.stats
                .expired
                .fetch_add(expired as u64, Ordering::Relaxed);
        }
        let result = f(&mut rec.bindings);
        let after = rec.bindings.len();
        self.count_change(before, after);
        self.schedule(key, rec);
        result
    }

    fn drop_expired(bindings: &mut Vec<Binding>, now: u64) -> usize {
        let before = bindings.len();
        bindings.retain(|b| b.is_live(now));
        before - bindings.len()
    }

    /// Keeps the gauges right: a record going from 0 to n bindings adds a
    /// user, n to 0 removes one.
    fn count_change(&self, before: usize, after: usize) {
        if after > before {
            self.stats
                .contacts
                .fetch_add((after - before) as u64, Ordering::Relaxed);
        } else if before > after {
            self.stats
                .contacts
                .fetch_sub((before - after) as u64, Ordering::Relaxed);
        }
        match (before, after) {
            (0, a) if a > 0 => {
                self.stats.users.fetch_add(1, Ordering::Relaxed);
            }
            (b, 0) if b > 0 => {
                self.stats.users.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Makes sure the index holds an entry no later than the record's
    /// earliest deadline. Only an *earlier* deadline costs an index insert.
    fn schedule(&self, key: &Arc<str>, rec: &mut Record) {
        let earliest = rec
            .bindings
            .iter()
            .map(|b| b.expires_at)
            .filter(|&e| e != PERMANENT)
            .min()
            .unwrap_or(UNSCHEDULED);
        if earliest >= rec.scheduled {
            return;
        }
        rec.scheduled = earliest;
        let mut idx = self.expiry.lock().unwrap_or_else(PoisonError::into_inner);
        let first = idx.first().map(|(d, _)| *d);
        idx.insert((earliest, key.clone()));
        drop(idx);
        if first.is_none_or(|f| earliest < f) {
            self.wake.notify_one();
        }
    }

    fn remove_if_empty(&self, aor: &str) {
        self.records.remove_if(aor, |_, r| r.bindings.is_empty());
    }

    /// A copy of the live bindings of `aor`.
    pub fn lookup(&self, aor: &str, now: u64) -> Option<Vec<Binding>> {
        let rec = self.records.get(aor)?;
        let live: Vec<Binding> = rec
            .bindings
            .iter()
            .filter(|b| b.is_live(now))
            .cloned()
            .collect();
        (!live.is_empty()).then_some(live)
    }

    /// Removes every binding of `aor`; false if it had none.
    pub fn remove(&self, aor: &str) -> bool {
        match self.records.remove(aor) {
            Some((_, rec)) if !rec.bindings.is_empty() => {
                self.count_change(rec.bindings.len(), 0);
                true
            }
            _ => false,
        }
    }

    /// Number of AoRs with bindings.
    pub fn len(&self) -> usize {
        self.stats.users.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the bindings whose deadline has passed, following the index
    /// only. Returns the next deadline still ahead, if any.
    pub fn purge_due(&self, now: u64) -> Option<u64> {
        loop {
            let (deadline, aor) = {
                let mut idx = self.expiry.lock().unwrap_or_else(PoisonError::into_inner);
                match idx.first() {
                    Some((d, _)) if *d <= now => idx.pop_first()?,
                    Some((d, _)) => return Some(*d),
                    None => return None,
                }
            };
            let now_empty = match self.records.get_mut(&aor) {
                Some(mut rec) if rec.scheduled == deadline => {
                    rec.scheduled = UNSCHEDULED;
                    let before = rec.bindings.len();
                    let expired = Self::drop_expired(&mut rec.bindings, now);
                    self.stats
                        .expired
                        .fetch_add(expired as u64, Ordering::Relaxed);
                    self.count_change(before, rec.bindings.len());
                    self.schedule(&aor, &mut rec);
                    rec.bindings.is_empty()
                }
                // Stale entry: the record was removed or rescheduled earlier.
                _ => false,
            };
            if now_empty {
                self.remove_if_empty(&aor);
            }
        }
    }

    /// The expiry task: sleeps until the next deadline (or until an earlier
    /// one is scheduled), purges, repeats. Runs until the runtime stops.
    pub async fn run_expiry(self: Arc<Self>) {
        loop {
            let next = self.purge_due(unix_now());
            match next {
                Some(deadline) => {
                    let wait = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|now| Duration::from_secs(deadline).saturating_sub(now))
                        .unwrap_or(Duration::ZERO);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}
