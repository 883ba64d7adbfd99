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

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio::sync::Notify;

use smallvec::SmallVec;

use super::binding::{Binding, Ruid, PERMANENT};
use super::events::{Cause, Events, Origin};
use super::flows::FlowIndex;
use super::limits::{self, Growth, TableFull, TableLimits};
use super::persist::{Commit, Store, StoreMode, StoreOp};

pub use crate::time::unix_now;

/// No deadline scheduled.
const UNSCHEDULED: u64 = u64::MAX;

/// How an edit is applied: told to the store or not, undoable or not,
/// and who makes it (the cause of its events).
#[derive(Clone, Copy)]
struct How {
    journal: bool,
    undoable: bool,
    origin: Origin,
}

impl How {
    const fn new(journal: bool, undoable: bool, origin: Origin) -> How {
        How {
            journal,
            undoable,
            origin,
        }
    }
}

#[derive(Debug)]
pub(super) struct Record {
    /// A boxed slice, not a Vec: 8 bytes less in every hash-table bucket
    /// (at a million AoRs the table is about half empty, so per AoR that
    /// is up to 16). Edits go through a Vec taken out and put back.
    bindings: Box<[Binding]>,
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
    /// Estimated bytes of all records (`usrloc:table_bytes`, a gauge; see
    /// [`limits`]).
    pub bytes: AtomicU64,
    /// Edits refused because the table was full (`usrloc:table_full`).
    pub full: AtomicU64,
    /// Write-through edits undone because their commit failed
    /// (`usrloc:rolled_back`).
    pub rolled_back: AtomicU64,
    /// Write-through edits whose commit failed but that were not undone
    /// because the AoR changed again meanwhile (`usrloc:rollback_skipped`).
    pub rollback_skipped: AtomicU64,
}

impl Record {
    pub(super) fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// For runtime fields only (see `runtime.rs`): the length, the
    /// deadlines and the connections must not change through this.
    pub(super) fn bindings_mut(&mut self) -> &mut [Binding] {
        &mut self.bindings
    }
}

/// What a record costs beside its bindings: the map slot (key, record,
/// hash-table control byte, counted twice for the table's spare
/// capacity), the key's and the binding list's allocations, and its entry
/// in the expiry index.
const RECORD_OVERHEAD: usize =
    2 * (std::mem::size_of::<Arc<str>>() + std::mem::size_of::<Record>() + 1) + 16 + 16 + 16 + 48;

/// The in-memory location table (docs/design.md §4).
pub struct LocationTable {
    records: DashMap<Arc<str>, Record>,
    /// deadline → AoRs, at most one live entry per record; stale entries
    /// (whose deadline no longer matches the record's) are skipped. AoRs
    /// are bucketed by second so an insert compares integers, not AoR
    /// strings (preloading 1M bindings: 3.6 s → 2.4 s).
    expiry: Mutex<BTreeMap<u64, Vec<Arc<str>>>>,
    wake: Notify,
    stats: UsrlocStats,
    /// Where changes are persisted, if anywhere (docs/design.md §7). Set once at
    /// start, after the table was preloaded from it.
    store: OnceLock<Arc<dyn Store>>,
    limits: TableLimits,
    /// Growth admitted by [`admit`](Self::admit) whose edit has not been
    /// counted yet: (bindings, bytes). Checked and taken under this lock so
    /// that concurrent REGISTERs for different AoRs cannot pass the limit
    /// together; taken only by edits that add, never by refreshes.
    reserved: Mutex<(u64, u64)>,
    /// Rate limit of the "table full" log line.
    full_log: crate::log_limit::LogLimiter,
    /// Rate limit of the "rollback skipped" log line.
    skip_log: crate::log_limit::LogLimiter,
    /// Which stream connections carry which AoRs' bindings.
    flows: FlowIndex,
    /// Every change, for whoever listens (`ul.subscribe`).
    events: Events,
}

/// What undoes a write-through edit whose commit failed (see
/// [`LocationTable::update_undoable`] and [`LocationTable::undo`]): the
/// AoR, its bindings before the edit, and what the edit left. Boxed, so
/// the reply that carries it stays small.
pub struct Undo(Box<UndoInner>);

struct UndoInner {
    key: Arc<str>,
    before: Vec<Binding>,
    after: Snapshot,
}

impl std::fmt::Debug for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Undo")
            .field("aor", &self.0.key)
            .field("before", &self.0.before.len())
            .field("after", &self.0.after.0.len())
            .finish()
    }
}

thread_local! {
    /// What [`LocationTable::admit`] reserved on this thread for the edit
    /// running here; released when that edit has counted its change.
    static PENDING: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
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
            expiry: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            stats: UsrlocStats::default(),
            store: OnceLock::new(),
            limits: TableLimits::default(),
            reserved: Mutex::new((0, 0)),
            full_log: crate::log_limit::LogLimiter::new(),
            skip_log: crate::log_limit::LogLimiter::new(),
            flows: FlowIndex::default(),
            events: Events::default(),
        }
    }

    pub(super) fn flows(&self) -> &FlowIndex {
        &self.flows
    }

    /// The record of `aor`, read-locked while the guard lives.
    pub(super) fn record(
        &self,
        aor: &str,
    ) -> Option<dashmap::mapref::one::Ref<'_, Arc<str>, Record>> {
        self.records.get(aor)
    }

    /// The record of `aor`, write-locked while the guard lives.
    pub(super) fn record_mut(
        &self,
        aor: &str,
    ) -> Option<dashmap::mapref::one::RefMut<'_, Arc<str>, Record>> {
        self.records.get_mut(aor)
    }

    /// This table with global bounds (`max_bindings`, `max_table_bytes`).
    pub fn with_limits(mut self, limits: TableLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> TableLimits {
        self.limits
    }

    /// Whether an edit of the AoR named `aor`, whose live bindings are
    /// `current`, may grow the table by `growth` (see [`limits`]). Callers
    /// that add bindings (the registrar, `ul.add`) ask this inside their
    /// [`update`](Self::update) closure, before changing anything: what
    /// it admits is reserved until that edit has been counted, so the limit
    /// holds even for REGISTERs handled at the same instant. A refusal is
    /// counted (`usrloc:table_full`) and logged at most once per 10 s with
    /// the number since.
    pub fn admit(&self, aor: &str, current: &[Binding], growth: Growth) -> Result<(), TableFull> {
        let mut growth = growth;
        if current.is_empty() && growth.bindings > 0 {
            growth.bytes += (RECORD_OVERHEAD + aor.len()) as i64;
        }
        let grows = (growth.bindings.max(0) as u64, growth.bytes.max(0) as u64);
        if grows == (0, 0) {
            return Ok(()); // a refresh or a removal: never refused
        }
        let refused = {
            let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
            let limit = limits::check(
                self.stats.contacts.load(Ordering::Relaxed) + reserved.0,
                self.stats.bytes.load(Ordering::Relaxed) + reserved.1,
                growth,
                self.limits,
            );
            if limit.is_none() {
                reserved.0 += grows.0;
                reserved.1 += grows.1;
                PENDING.set({
                    let p = PENDING.get();
                    (p.0 + grows.0, p.1 + grows.1)
                });
            }
            limit
        };
        let Some(limit) = refused else {
            return Ok(());
        };
        self.stats.full.fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        let retry_after = {
            let idx = self.expiry.lock().unwrap_or_else(PoisonError::into_inner);
            idx.first_key_value()
                .map_or(3600, |(d, _)| d.saturating_sub(now))
                .clamp(1, 3600)
        };
        let full = TableFull { limit, retry_after };
        if let Some(n) = self.full_log.event(now, 10) {
            tracing::warn!("{n} new binding(s) refused since the last report: {full}");
        }
        Err(full)
    }

    /// Says so at start-up when the bindings preloaded from the store are
    /// already over a limit: they are all kept (they were acknowledged),
    /// but new ones get 503 until enough expire or the limit is raised.
    pub fn warn_if_over_limits(&self) {
        let contacts = self.stats.contacts.load(Ordering::Relaxed);
        let bytes = self.stats.bytes.load(Ordering::Relaxed);
        if contacts > self.limits.max_bindings || bytes > self.limits.max_bytes {
            tracing::warn!(
                contacts,
                bytes,
                max_bindings = self.limits.max_bindings,
                max_table_bytes = self.limits.max_bytes,
                "the stored location table is over its limits: every stored binding is kept, but new ones get 503 until enough expire; raise `max_bindings` / `max_table_bytes` if this is the normal size of this deployment"
            );
        }
    }

    /// Gives back what [`admit`](Self::admit) reserved on this thread, now
    /// that the edit's change is in the counters.
    fn release_reservation(&self) {
        let (bindings, bytes) = PENDING.take();
        if (bindings, bytes) != (0, 0) {
            let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
            reserved.0 = reserved.0.saturating_sub(bindings);
            reserved.1 = reserved.1.saturating_sub(bytes);
        }
    }

    /// The bytes a record counts for: nothing once empty (it is removed).
    fn record_bytes(key: &str, bindings: &[Binding]) -> u64 {
        if bindings.is_empty() {
            return 0;
        }
        let sum: usize = bindings.iter().map(Binding::footprint).sum();
        (RECORD_OVERHEAD + key.len() + sum) as u64
    }

    fn count_bytes(&self, before: u64, after: u64) {
        if after > before {
            self.stats
                .bytes
                .fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            self.stats
                .bytes
                .fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> &UsrlocStats {
        &self.stats
    }

    /// From now on every change is also sent to `store`. Call once, after
    /// preloading the table from that store with [`load`](Self::load).
    pub fn attach_store(&self, store: Arc<dyn Store>) -> Result<(), Arc<dyn Store>> {
        self.store.set(store)
    }

    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.get()
    }

    /// Adds a binding read back from the store at start-up: no journaling,
    /// expired ones skipped, and one with the ruid of a binding already
    /// loaded replaces it (Redis `SCAN` may return a key twice, while it
    /// rehashes or a cluster reshards).
    pub fn load(&self, aor: &str, binding: Binding, now: u64) {
        if binding.is_live(now) {
            self.edit_with(aor, now, How::new(false, false, Origin::Quiet), |b| match b
                .iter_mut()
                .find(|x| x.ruid() == binding.ruid())
            {
                Some(same) => *same = binding,
                None => b.push(binding),
            });
        }
    }

    /// Like [`update`](Self::update), and also returns the store's commit
    /// of what changed (`None` without a store or when nothing changed)
    /// and, when the table is attached to a write-through store and the
    /// edit changed something, what undoes it should the commit fail (see
    /// [`undo`](Self::undo)). Without a store, or in write-back mode,
    /// nothing is kept (no copy of the bindings is made). The registrar
    /// uses this through [`update_durable`](Self::update_durable).
    pub(super) fn update_undoable<R>(
        &self,
        aor: &str,
        now: u64,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> (R, Option<Commit>, Option<Undo>) {
        self.edit_with(aor, now, How::new(true, true, Origin::Registrar), f)
    }

    /// Rolls back the edit `undo` came from, whose commit failed: under
    /// the AoR's lock, and only if its bindings are still what that edit
    /// left (a later change supersedes it; then nothing happens and
    /// `usrloc:rollback_skipped` counts it). The bindings before the edit
    /// come back (less those expired meanwhile), counted like any edit,
    /// and the inverse ops go to the store, so that a write it keeps for
    /// retry is superseded (their own commit is not awaited). Returns
    /// whether it rolled back.
    pub(super) fn undo(&self, undo: Undo, now: u64) -> bool {
        let UndoInner {
            key,
            mut before,
            after,
        } = *undo.0;
        before.retain(|b| b.is_live(now));
        let how = How::new(true, false, Origin::Rollback);
        let (done, commit, _) = self.edit_with(&key, now, how, |current| {
            if !after.matches(current, now) {
                return false;
            }
            *current = before;
            true
        });
        drop(commit);
        if done {
            self.stats.rolled_back.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.rollback_skipped.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = self.skip_log.event(now, 10) {
                tracing::warn!(
                    aor = %key,
                    "{n} failed write-through change(s) not rolled back since the last report: the AoR changed again before the store answered, and that later change stands"
                );
            }
        }
        done
    }

    /// Runs `f` on the live bindings of `aor` while holding that AoR's
    /// entry, then stores what `f` left. Expired bindings are dropped before
    /// `f` sees them. Creating and deleting the record, the expiry index and
    /// the counters are handled here, so callers only edit a list.
    /// The edit is reported to listeners as the control API's (`ul.add`,
    /// `ul.rm_contact`); other editors say who they are with
    /// [`update_as`](Self::update_as).
    pub fn update<R>(&self, aor: &str, now: u64, f: impl FnOnce(&mut Vec<Binding>) -> R) -> R {
        self.update_as(aor, now, Origin::Rpc, f)
    }

    /// [`update`](Self::update) by `origin` (the cause of its events).
    pub fn update_as<R>(
        &self,
        aor: &str,
        now: u64,
        origin: Origin,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> R {
        self.edit_with(aor, now, How::new(true, false, origin), f).0
    }

    /// Every change of the table, as it happens.
    pub fn events(&self) -> &Events {
        &self.events
    }

    fn edit_with<R>(
        &self,
        aor: &str,
        now: u64,
        how: How,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> (R, Option<Commit>, Option<Undo>) {
        // Look up by &str first so refreshing an existing AoR allocates no key.
        let ((result, commit, undo), now_empty) = match self.records.get_mut(aor) {
            Some(mut rec) => {
                let key = rec.key().clone();
                let out = self.edit(&key, &mut rec, now, how, f);
                (out, rec.bindings.is_empty())
            }
            None => {
                let key: Arc<str> = Arc::from(aor);
                let mut rec = self.records.entry(key.clone()).or_insert_with(|| Record {
                    bindings: Box::default(),
                    scheduled: UNSCHEDULED,
                });
                let out = self.edit(&key, &mut rec, now, how, f);
                (out, rec.bindings.is_empty())
            }
        };
        if now_empty {
            self.remove_if_empty(aor);
        }
        (result, commit, undo)
    }

    fn edit<R>(
        &self,
        key: &Arc<str>,
        rec: &mut Record,
        now: u64,
        how: How,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> (R, Option<Commit>, Option<Undo>) {
        let before_bytes = Self::record_bytes(key, &rec.bindings);
        let mut bindings = std::mem::take(&mut rec.bindings).into_vec();
        let before = bindings.len();
        let conns_before = FlowIndex::conns_of(&bindings);
        let expired = self.drop_expired(key, &mut bindings, now);
        if expired > 0 {
            self.stats
                .expired
                .fetch_add(expired as u64, Ordering::Relaxed);
        }
        let store = self.store.get().filter(|_| how.journal);
        let snapshot = store.map(|_| Snapshot::of(&bindings));
        // Only write-through answers wait for (and can fail with) the
        // commit, so only they pay for a copy to undo the edit with.
        let original = store
            .filter(|s| how.undoable && s.mode() == StoreMode::WriteThrough)
            .map(|_| bindings.clone());
        // Only with listeners does an edit pay for the copy its events
        // are told from.
        let heard =
            (how.origin != Origin::Quiet && self.events.wants(key)).then(|| bindings.clone());
        let result = f(&mut bindings);
        // Shrinks (reallocates) only if the edit left spare capacity.
        rec.bindings = bindings.into_boxed_slice();
        let after = rec.bindings.len();
        self.count_change(before, after);
        self.count_bytes(before_bytes, Self::record_bytes(key, &rec.bindings));
        self.flows.change(
            key,
            &conns_before,
            &FlowIndex::conns_of(&rec.bindings),
            false,
        );
        self.release_reservation();
        self.schedule(key, rec);
        if let Some(before) = heard {
            self.events
                .publish_diff(how.origin, key, &before, &rec.bindings);
        }
        // Submitted while the AoR is still locked, so the store sees the
        // changes of one AoR in the order they were made.
        let commit = match (store, snapshot) {
            (Some(store), Some(snap)) => {
                let ops = snap.diff(key, &rec.bindings);
                (!ops.is_empty()).then(|| store.submit(ops))
            }
            _ => None,
        };
        let undo = match (&commit, original) {
            (Some(_), Some(before)) => Some(Undo(Box::new(UndoInner {
                key: key.clone(),
                before,
                after: Snapshot::of(&rec.bindings),
            }))),
            _ => None,
        };
        (result, commit, undo)
    }

    /// Drops the bindings of `aor` past their expiry, each logged and
    /// published.
    fn drop_expired(&self, aor: &Arc<str>, bindings: &mut Vec<Binding>, now: u64) -> usize {
        let before = bindings.len();
        bindings.retain(|b| {
            let live = b.is_live(now);
            if !live {
                tracing::info!(
                    aor = &**aor,
                    contact = b.contact(),
                    cause = "expired",
                    "binding removed: expired"
                );
                self.events.publish(Cause::Expired, aor, b, true);
            }
            live
        });
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
        let first = idx.first_key_value().map(|(d, _)| *d);
        idx.entry(earliest).or_default().push(key.clone());
        drop(idx);
        if first.is_none_or(|f| earliest < f) {
            self.wake.notify_one();
        }
    }

    fn remove_if_empty(&self, aor: &str) {
        self.records.remove_if(aor, |_, r| r.bindings.is_empty());
    }

    /// Writes the current bindings of `aor` to the store again and returns
    /// that commit (`None` without a store or bindings). For answers that
    /// depend on an earlier write being durable, e.g. a retransmitted
    /// REGISTER in write-through mode.
    pub(super) fn persist(&self, aor: &str) -> Option<Commit> {
        let store = self.store.get()?;
        let rec = self.records.get(aor)?;
        let ops: Vec<StoreOp> = rec
            .bindings
            .iter()
            .map(|b| StoreOp::Upsert {
                aor: rec.key().clone(),
                binding: b.clone(),
            })
            .collect();
        // Submitted under the AoR's read lock, in order with its edits.
        (!ops.is_empty()).then(|| store.submit(ops))
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

    /// The AoRs that have a record, for `ul.dump` (added for the control
    /// API). Only names are copied, one `Arc` clone each: dashmap's
    /// iterator read-locks one shard at a time (two for an instant when it
    /// moves on), so REGISTERs to a shard wait at most for its names to be
    /// cloned, never for bindings to be copied or JSON to be written. The
    /// caller then reads each AoR with [`lookup`](Self::lookup), which
    /// locks only that AoR's shard, briefly. Records created or removed
    /// meanwhile may or may not be listed.
    pub fn aors(&self) -> Vec<Arc<str>> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.records.iter().map(|r| Arc::clone(r.key())));
        out
    }

    /// The AoR names starting with `prefix`, unsorted: a prefix search of
    /// `ul.dump_prefix`. One pass over the keys, cloning only the matches.
    pub fn aors_with_prefix(&self, prefix: &str) -> Vec<Arc<str>> {
        self.records
            .iter()
            .filter(|r| r.key().starts_with(prefix))
            .map(|r| Arc::clone(r.key()))
            .collect()
    }

    /// The `limit` smallest AoR names greater than `after`, sorted: one
    /// page of `ul.dump_page`. Like [`aors`](Self::aors), shards are
    /// read-locked one at a time while their keys are compared; only the
    /// names kept (at most `limit` plus those displaced) are cloned, so a
    /// page of a million-AoR table costs one pass over the keys and no
    /// copy of the whole name list.
    pub fn aors_after(&self, after: &str, limit: usize) -> Vec<Arc<str>> {
        if limit == 0 {
            return Vec::new();
        }
        // A max-heap of the smallest names seen so far.
        let mut best: BinaryHeap<Arc<str>> = BinaryHeap::with_capacity(limit + 1);
        for r in self.records.iter() {
            let key = r.key();
            if &**key <= after {
                continue;
            }
            if best.len() == limit {
                if best.peek().is_some_and(|top| **key >= **top) {
                    continue;
                }
                best.pop();
            }
            best.push(Arc::clone(key));
        }
        best.into_sorted_vec()
    }

    /// Removes every binding of `aor`; false if it had none.
    pub fn remove(&self, aor: &str) -> bool {
        match self.records.remove(aor) {
            Some((key, rec)) if !rec.bindings.is_empty() => {
                self.flows.change(
                    &key,
                    &FlowIndex::conns_of(&rec.bindings),
                    &Default::default(),
                    false,
                );
                self.count_change(rec.bindings.len(), 0);
                self.count_bytes(Self::record_bytes(&key, &rec.bindings), 0);
                if let Some(store) = self.store.get() {
                    let ops = rec
                        .bindings
                        .iter()
                        .map(|b| StoreOp::Delete {
                            aor: key.clone(),
                            ruid: b.ruid().to_boxed_str(),
                        })
                        .collect();
                    // Removal by the control API: durable soon, not awaited.
                    drop(store.submit(ops));
                }
                for b in rec.bindings.iter() {
                    self.events.publish(Cause::Removed, &key, b, true);
                }
                true
            }
            _ => false,
        }
    }

    /// Runs `f` like [`update`](Self::update) but tells the store
    /// nothing: for changes read from the store itself (`remote.rs`).
    pub(super) fn edit_unjournaled<R>(
        &self,
        aor: &str,
        now: u64,
        origin: Origin,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> R {
        self.edit_with(aor, now, How::new(false, false, origin), f)
            .0
    }

    /// Whether `aor` has a record (possibly of bindings expired but not
    /// yet purged).
    pub(super) fn has_record(&self, aor: &str) -> bool {
        self.records.contains_key(aor)
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
                let mut first = match idx.first_entry() {
                    Some(e) if *e.key() <= now => e,
                    Some(e) => return Some(*e.key()),
                    None => return None,
                };
                let d = *first.key();
                match first.get_mut().pop() {
                    Some(aor) => {
                        if first.get().is_empty() {
                            first.remove();
                        }
                        (d, aor)
                    }
                    None => {
                        first.remove();
                        continue;
                    }
                }
            };
            let now_empty = match self.records.get_mut(&aor) {
                Some(mut rec) if rec.scheduled == deadline => {
                    rec.scheduled = UNSCHEDULED;
                    let before_bytes = Self::record_bytes(&aor, &rec.bindings);
                    let mut bindings = std::mem::take(&mut rec.bindings).into_vec();
                    let before = bindings.len();
                    let conns_before = FlowIndex::conns_of(&bindings);
                    let expired = self.drop_expired(&aor, &mut bindings, now);
                    rec.bindings = bindings.into_boxed_slice();
                    self.flows.change(
                        &aor,
                        &conns_before,
                        &FlowIndex::conns_of(&rec.bindings),
                        true,
                    );
                    self.stats
                        .expired
                        .fetch_add(expired as u64, Ordering::Relaxed);
                    self.count_change(before, rec.bindings.len());
                    self.count_bytes(before_bytes, Self::record_bytes(&aor, &rec.bindings));
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

/// What a record looked like before an edit, to tell the store what the
/// edit changed. Taken only when a store is attached.
struct Snapshot(SmallVec<[(Ruid<'static>, Version); 2]>);

/// The fields every change of a binding touches: `last_modified` moves on
/// every registrar change, the others cover edits that keep it.
#[derive(PartialEq, Eq, Clone, Copy)]
struct Version {
    last_modified: u64,
    expires_at: u64,
    cseq: u32,
    q: Option<u16>,
    flags: u32,
    cflags: u32,
}

impl Version {
    fn of(b: &Binding) -> Version {
        Version {
            last_modified: b.last_modified,
            expires_at: b.expires_at,
            cseq: b.cseq,
            q: b.q,
            flags: b.flags,
            cflags: b.cflags,
        }
    }
}

impl Snapshot {
    fn of(bindings: &[Binding]) -> Snapshot {
        Snapshot(
            bindings
                .iter()
                .map(|b| (b.ruid().into_owned(), Version::of(b)))
                .collect(),
        )
    }

    /// Whether `now_bindings` are still the bindings this snapshot was
    /// taken of, in the same order, less those expired at `now` (the
    /// table drops them before an edit sees the list).
    fn matches(&self, now_bindings: &[Binding], now: u64) -> bool {
        let mut live = self.0.iter().filter(|(_, v)| v.expires_at > now);
        let same = now_bindings.iter().all(|b| {
            live.next()
                .is_some_and(|(ruid, v)| *ruid == b.ruid() && *v == Version::of(b))
        });
        same && live.next().is_none()
    }

    /// Upserts for new or changed bindings, deletes for vanished ones.
    fn diff(&self, aor: &Arc<str>, now: &[Binding]) -> Vec<StoreOp> {
        let mut ops = Vec::new();
        for b in now {
            let old = self.0.iter().find(|(ruid, _)| *ruid == b.ruid());
            if old.is_none_or(|(_, v)| *v != Version::of(b)) {
                ops.push(StoreOp::Upsert {
                    aor: aor.clone(),
                    binding: b.clone(),
                });
            }
        }
        for (ruid, _) in &self.0 {
            if !now.iter().any(|b| b.ruid() == *ruid) {
                ops.push(StoreOp::Delete {
                    aor: aor.clone(),
                    ruid: ruid.to_boxed_str(),
                });
            }
        }
        ops
    }
}

#[cfg(test)]
mod tests;
