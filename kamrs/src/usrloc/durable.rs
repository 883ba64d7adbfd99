//! Answering for a change only once the store holds it (docs/design.md §7).
//!
//! This is usrloc's side of Kamailio's `db_mode`: whether an answer waits
//! for the write, what a refused write means and how a failed one is
//! undone are decided here, once, so the registrar only learns what to do
//! with its answer ([`Durability`]) and never which store there is or how
//! it is configured.

use std::sync::Arc;

use super::persist::{Commit, StoreError, StoreMode};
use super::table::{LocationTable, Undo};
use super::{unix_now, Binding};

/// What an edit passed to [`LocationTable::update_durable`] returns: its
/// caller's value, and whether it repeats an edit made before.
#[derive(Debug)]
pub struct Edit<T> {
    pub value: T,
    /// The edit repeats an earlier one (a retransmitted REGISTER): it
    /// changes nothing, but its answer vouches for that earlier change,
    /// which may still be queued or may have failed. In write-through mode
    /// the AoR is then written again and the answer waits for that write,
    /// so a retransmission gets the same guarantee as the original.
    pub repeats: bool,
}

impl<T> Edit<T> {
    pub fn new(value: T) -> Edit<T> {
        Edit {
            value,
            repeats: false,
        }
    }
}

/// What the caller of [`LocationTable::update_durable`] must do before it
/// answers for the change.
#[derive(Debug)]
pub enum Durability {
    /// Answer now: there is no store, the change is queued (write-back),
    /// or nothing needed writing.
    Done,
    /// The store refused the change up front (write-back with its queue
    /// full, or shut down): it will never become durable, so the answer
    /// must say it failed. The change stays in memory, as it did before
    /// write-back answers waited for nothing.
    Refused(StoreError),
    /// Write-through: answer only once [`Confirm::outcome`] says so.
    Wait(Confirm),
}

/// A write-through change waiting for its commit. Resolving it decides the
/// answer: durable, or failed and already rolled back (a 500 then means
/// nothing changed).
pub struct Confirm {
    commit: Commit,
    undo: Option<(Arc<LocationTable>, Undo)>,
}

impl std::fmt::Debug for Confirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirm")
            .field("undo", &self.undo.as_ref().map(|(_, u)| u))
            .finish()
    }
}

impl Confirm {
    /// Waits for the commit. On failure the edit is undone first (see
    /// [`LocationTable::undo`]: only if the AoR did not change again
    /// meanwhile), then the error is returned.
    pub async fn outcome(self) -> Result<(), StoreError> {
        match self.commit.await {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some((table, undo)) = self.undo {
                    table.undo(undo, unix_now());
                }
                Err(e)
            }
        }
    }
}

impl LocationTable {
    /// Runs `f` on the live bindings of `aor` like
    /// [`update`](Self::update), and says what its caller must do before
    /// answering for the change (see [`Durability`]). An `Err` from `f`
    /// is returned as is; `f` must not have changed anything then.
    pub fn update_durable<T, E>(
        self: &Arc<Self>,
        aor: &str,
        now: u64,
        f: impl FnOnce(&mut Vec<Binding>) -> Result<Edit<T>, E>,
    ) -> Result<(T, Durability), E> {
        let (result, commit, undo) = self.update_undoable(aor, now, f);
        let edit = result?;
        let Some(mode) = self.store().map(|s| s.mode()) else {
            return Ok((edit.value, Durability::Done));
        };
        let durability = match (mode, commit) {
            (StoreMode::WriteBack, Some(commit)) => match commit.refused() {
                Some(e) => Durability::Refused(e.clone()),
                None => Durability::Done,
            },
            (StoreMode::WriteThrough, Some(commit)) => Durability::Wait(Confirm {
                commit,
                undo: undo.map(|u| (Arc::clone(self), u)),
            }),
            (StoreMode::WriteThrough, None) if edit.repeats => match self.persist(aor) {
                // Nothing to undo: the write only repeats what the table holds.
                Some(commit) => Durability::Wait(Confirm { commit, undo: None }),
                None => Durability::Done,
            },
            (_, None) => Durability::Done,
        };
        Ok((edit.value, durability))
    }
}

#[cfg(test)]
mod tests;
