//! Filling the table from its store at start-up, and following the
//! changes other nodes make to a store they share (docs/design.md §7).
//!
//! A store only hands data out (`Store::load`: batches of stored bindings,
//! and for Redis a channel of [`Remote`] messages); this file is what
//! applies them. Applied changes are counted and expired like any edit but
//! never journaled: the store already holds them, and journaling would
//! echo them back to every node forever.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::events::Origin;
use super::persist::{Remote, Store, StoreError, StoreOp};
use super::table::LocationTable;
use super::{unix_now, Binding, Ruid, Source};

/// What [`preload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preloaded {
    /// Bindings the store handed over (some may have expired since).
    pub read: u64,
    /// Bindings in the table afterwards.
    pub bindings: u64,
    /// AoRs in the table afterwards.
    pub aors: usize,
    pub millis: u128,
}

/// Fills `table` with the bindings `store` holds that are still live at
/// `now`, without journaling them back, starts applying the changes other
/// nodes make (a shared store), and logs how many bindings and how long it
/// took. Call before [`LocationTable::attach_store`].
pub async fn preload(
    table: &Arc<LocationTable>,
    store: &Arc<dyn Store>,
    now: u64,
) -> Result<Preloaded, StoreError> {
    let started = Instant::now();
    let mut loading = store.load(now).await?;
    let mut read = 0u64;
    while let Some(batch) = loading.bindings.recv().await {
        for (aor, binding) in batch? {
            read += 1;
            table.load(&aor, binding, now);
        }
    }
    if let Some(remote) = loading.remote.take() {
        tokio::spawn(follow(Arc::clone(table), remote));
    }
    let done = Preloaded {
        read,
        bindings: table.stats().contacts.load(Ordering::Relaxed),
        aors: table.len(),
        millis: started.elapsed().as_millis(),
    };
    // Bindings read but not kept: they expired between the store's read
    // and the table's load.
    let expired = done.read.saturating_sub(done.bindings);
    let expired = if expired == 0 {
        String::new()
    } else {
        format!(
            " ({expired} of the {} read had expired meanwhile)",
            done.read
        )
    };
    tracing::info!(
        "preloaded {} bindings of {} AoRs from the {} store in {} ms{expired}",
        done.bindings,
        done.aors,
        store.name(),
        done.millis,
    );
    Ok(done)
}

/// The task that applies a shared store's messages, in order, until the
/// store drops its sender.
pub async fn follow(table: Arc<LocationTable>, mut remote: mpsc::Receiver<Remote>) {
    while let Some(msg) = remote.recv().await {
        table.apply_remote(msg, unix_now());
    }
}

impl LocationTable {
    /// Applies one message of a shared store at `now`.
    pub fn apply_remote(self: &Arc<Self>, msg: Remote, now: u64) {
        match msg {
            Remote::Op(StoreOp::Upsert { aor, binding }) => {
                self.apply_remote_upsert(&aor, binding, now);
            }
            Remote::Op(StoreOp::Delete { aor, ruid }) => {
                self.apply_remote_delete(&aor, &ruid, now);
            }
            Remote::Replace {
                mut all,
                changed_here,
                done,
            } => {
                let mut changed = 0usize;
                for (aor, bindings) in &mut all {
                    let bindings = std::mem::take(bindings);
                    if self.apply_remote_replace(aor, bindings, now, || !changed_here(aor)) {
                        changed += 1;
                    }
                }
                for aor in self.aors() {
                    if !all.contains_key(&aor)
                        && self.apply_remote_replace(&aor, Vec::new(), now, || !changed_here(&aor))
                    {
                        changed += 1;
                    }
                }
                // The follower may have given up waiting: nothing to tell.
                let _ = done.send(changed);
            }
            Remote::Dump { batch, to } => {
                // Its own task: the follower reads the batches while this
                // one is free to apply what comes next.
                let table = Arc::clone(self);
                tokio::spawn(async move { table.dump(batch.max(1), to, now).await });
            }
        }
    }

    /// Sends every live binding as upserts, `batch` at a time.
    async fn dump(&self, batch: usize, to: mpsc::Sender<Vec<StoreOp>>, now: u64) {
        let mut ops = Vec::with_capacity(batch);
        for aor in self.aors() {
            for binding in self.lookup(&aor, now).unwrap_or_default() {
                ops.push(StoreOp::Upsert {
                    aor: Arc::clone(&aor),
                    binding,
                });
            }
            if ops.len() >= batch {
                let full = std::mem::replace(&mut ops, Vec::with_capacity(batch));
                if to.send(full).await.is_err() {
                    return;
                }
            }
        }
        if !ops.is_empty() {
            let _ = to.send(ops).await;
        }
    }

    /// Applies a binding another node stored: replaces the binding with the
    /// same `ruid`, or adds it. One that is no longer live at `now` removes
    /// its old copy instead. Returns whether the table changed.
    pub(super) fn apply_remote_upsert(&self, aor: &str, binding: Binding, now: u64) -> bool {
        if !binding.is_live(now) {
            return self.apply_remote_delete(aor, &binding.ruid().to_string(), now);
        }
        self.edit_unjournaled(aor, now, Origin::Remote, |bindings| {
            match bindings.iter_mut().find(|b| b.ruid() == binding.ruid()) {
                Some(old) => {
                    let mut binding = binding;
                    keep_conn(old, &mut binding);
                    if *old == binding {
                        return false;
                    }
                    *old = binding;
                    true
                }
                None => {
                    bindings.push(binding);
                    true
                }
            }
        })
    }

    /// Applies a removal another node made: drops the binding `ruid` of
    /// `aor`, if present. Returns whether the table changed.
    pub(super) fn apply_remote_delete(&self, aor: &str, ruid: &str, now: u64) -> bool {
        if !self.has_record(aor) {
            return false;
        }
        self.edit_unjournaled(aor, now, Origin::Remote, |bindings| {
            let before = bindings.len();
            let ruid = Ruid::parse(ruid);
            bindings.retain(|b| b.ruid() != ruid);
            bindings.len() != before
        })
    }

    /// Makes the live bindings of `aor` exactly `bindings` (those still live
    /// at `now`), as a re-sync from a shared store does: bindings that stay
    /// keep their place, new ones are appended. `proceed` is asked first,
    /// while the AoR is locked, so a caller can skip AoRs that changed
    /// locally meanwhile without racing those changes; when it says no,
    /// nothing changes. Returns whether the table changed.
    pub(super) fn apply_remote_replace(
        &self,
        aor: &str,
        mut bindings: Vec<Binding>,
        now: u64,
        proceed: impl FnOnce() -> bool,
    ) -> bool {
        bindings.retain(|b| b.is_live(now));
        if bindings.is_empty() && !self.has_record(aor) {
            return false;
        }
        self.edit_unjournaled(aor, now, Origin::Remote, |current| {
            if !proceed() {
                return false;
            }
            let mut changed = false;
            current.retain_mut(
                |b| match bindings.iter().position(|n| n.ruid() == b.ruid()) {
                    Some(i) => {
                        let mut new = bindings.swap_remove(i);
                        keep_conn(b, &mut new);
                        if *b != new {
                            *b = new;
                            changed = true;
                        }
                        true
                    }
                    None => {
                        changed = true;
                        false
                    }
                },
            );
            changed |= !bindings.is_empty();
            current.append(&mut bindings);
            changed
        })
    }
}

/// A store never holds the connection a binding came on (it does not
/// outlive this process, and other nodes have their own): a copy read back
/// from the store keeps the connection of the binding it replaces when it
/// names the same source, so a re-sync does not cut bindings off their
/// connections (`usrloc/flows.rs`).
fn keep_conn(old: &Binding, new: &mut Binding) {
    if let (Some(was), Some(now)) = (old.source(), new.source()) {
        if now.conn.is_none() && was.conn.is_some() && (Source { conn: None, ..was }) == now {
            new.set_source(Some(was));
        }
    }
}

#[cfg(test)]
mod tests;
