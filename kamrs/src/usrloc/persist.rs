//! What usrloc asks of a persistence backend (docs/design.md §7), Kamailio's
//! `db_mode` seam. The table always lives in memory and stays the fast
//! path; a [`Store`] is told every change the table makes and keeps a
//! durable copy (SQLite) or a shared one (Redis). The interface is
//! usrloc's, not the backends': usrloc decides *what* changed and when an
//! answer may be given (`update_durable`), a store only decides *how* to
//! write it, and hands data back ([`Store::load`], [`Remote`]) instead of
//! editing the table. So `store/` depends on usrloc and never the other
//! way round, and no other module needs to know a store exists.
//!
//! Writes are batched by the store (group commit), and each batch of ops
//! hands back a [`Commit`] that resolves when they are durable, which is
//! what write-through mode waits for before answering a REGISTER.

use crate::timing::Latency;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::Binding;

/// One change to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// Insert or update the binding identified by its `ruid`.
    Upsert { aor: Arc<str>, binding: Binding },
    /// Delete the binding `ruid` of `aor`.
    Delete { aor: Arc<str>, ruid: Box<str> },
}

/// When a REGISTER is answered relative to its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreMode {
    /// Answer only after the change is committed (Kamailio db_mode 1).
    #[default]
    WriteThrough,
    /// Answer at once; commit within `write_back_interval` (db_mode 2).
    WriteBack,
}

impl StoreMode {
    /// The config file's word for it (`write-through`), which is also how
    /// logs and `core.info` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreMode::WriteThrough => "write-through",
            StoreMode::WriteBack => "write-back",
        }
    }
}

impl std::fmt::Display for StoreMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a write failed. Shown in logs; the UA sees a 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("location store write failed: {0}")]
    Write(String),
    #[error("location store queue is full (the store cannot keep up)")]
    Overloaded,
    #[error("location store is shut down")]
    Closed,
    /// The backend does not offer this (e.g. row counts of a memory-only
    /// test store).
    #[error("not supported by the {0} location store")]
    Unsupported(&'static str),
    /// Reading the store failed (preload, counts).
    #[error("location store read failed: {0}")]
    Read(String),
}

/// A boxed future of a store operation that is not a write (preload,
/// counts), so [`Store`] stays object safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Row counts of a store's copy of the table: Kamailio's `ul.db_users`,
/// `ul.db_contacts` and `ul.db_expired_contacts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DbCounts {
    /// Distinct AoRs with at least one live binding stored.
    pub users: u64,
    /// Live bindings stored (permanent ones included).
    pub contacts: u64,
    /// Stored bindings already past their expiry, not yet cleaned up.
    pub expired_contacts: u64,
}

/// A persistence backend.
pub trait Store: Send + Sync + 'static {
    /// Queues `ops` (in order, after everything queued before) and returns
    /// a handle that resolves once they are durable. Never blocks.
    fn submit(&self, ops: Vec<StoreOp>) -> Commit;
    /// Resolves once everything queued so far is durable (`ul.flush`, and
    /// SIGTERM before exit).
    fn flush(&self) -> Commit;
    fn mode(&self) -> StoreMode;
    /// `sqlite`, `redis`: for logs and statistics.
    fn name(&self) -> &'static str;

    /// How long its writes of batches take, for `/metrics`
    /// ([`crate::timing::STORE_COMMIT`]); `None` for a store that keeps
    /// no such histogram.
    fn commit_time(&self) -> Option<&Latency> {
        None
    }

    /// Starts reading every binding stored and still live at `now`, at
    /// start-up before the store is attached: they arrive in batches on
    /// [`Loading::bindings`], and a store several nodes share also hands
    /// out the changes the others make from then on
    /// ([`Loading::remote`]). The default has nothing stored. See
    /// `usrloc::preload`, which applies, times and logs them.
    fn load(&self, now: u64) -> StoreFuture<'_, Loading> {
        let _ = now;
        Box::pin(async { Ok(Loading::empty()) })
    }

    /// Row counts of the stored copy at `now` (`ul.db_users`,
    /// `ul.db_contacts`, `ul.db_expired_contacts`). Never blocks the
    /// caller's runtime thread.
    fn counts(&self, now: u64) -> StoreFuture<'_, DbCounts> {
        let _ = now;
        let name = self.name();
        Box::pin(async move { Err(StoreError::Unsupported(name)) })
    }
}

/// Resolves when a batch of ops is durable, or failed.
pub struct Commit(CommitInner);

enum CommitInner {
    Ready(Option<Result<(), StoreError>>),
    Waiting(oneshot::Receiver<Result<(), StoreError>>),
}

impl Commit {
    /// A commit that is already decided (nothing to write, or refused up
    /// front).
    pub fn ready(result: Result<(), StoreError>) -> Commit {
        Commit(CommitInner::Ready(Some(result)))
    }

    /// The error of a commit the store refused up front (queue full, store
    /// shut down), which is already decided and will never become durable.
    /// In write-back mode, where replies do not wait for commits, this is
    /// how a REGISTER still learns that its change was not even queued.
    pub fn refused(&self) -> Option<&StoreError> {
        match &self.0 {
            CommitInner::Ready(Some(Err(e))) => Some(e),
            _ => None,
        }
    }

    /// A commit the store completes through the returned sender.
    pub fn pending() -> (oneshot::Sender<Result<(), StoreError>>, Commit) {
        let (tx, rx) = oneshot::channel();
        (tx, Commit(CommitInner::Waiting(rx)))
    }
}

impl Future for Commit {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            CommitInner::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(StoreError::Closed))),
            CommitInner::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(StoreError::Closed))),
        }
    }
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Commit")
    }
}

/// Bindings read back from a store, as they are read.
pub type Batch = Vec<(Arc<str>, Binding)>;

/// What [`Store::load`] hands out.
pub struct Loading {
    /// Batches of stored bindings; the channel closes when all were read.
    /// An `Err` ends the read: start-up fails with it.
    pub bindings: mpsc::Receiver<Result<Batch, StoreError>>,
    /// Changes other nodes make, for a store several nodes share; applied
    /// in order once the load is done (`usrloc::preload` starts the task).
    pub remote: Option<mpsc::Receiver<Remote>>,
}

impl Loading {
    /// Nothing stored, nobody else writing.
    pub fn empty() -> Loading {
        let (_, bindings) = mpsc::channel(1);
        Loading {
            bindings,
            remote: None,
        }
    }
}

/// A change another node made to a shared store, or a request of its
/// follower, for the table's remote task to apply. They are applied like
/// any edit (counters, expiry index) but never journaled: the store
/// already holds them, and journaling would echo them back to every node
/// forever.
pub enum Remote {
    /// Another node stored or removed a binding.
    Op(StoreOp),
    /// A re-sync: make the table hold exactly `all` (the bindings of each
    /// AoR still live), dropping AoRs missing from it, except those
    /// `changed_here` names (changed locally while the store was read;
    /// asked under the AoR's lock, so the check cannot race that change).
    /// `done` gets how many AoRs changed.
    Replace {
        all: HashMap<Arc<str>, Vec<Binding>>,
        changed_here: Box<dyn Fn(&str) -> bool + Send>,
        done: oneshot::Sender<usize>,
    },
    /// Every live binding of the table, for writing back what the store
    /// lost: sent in batches of at most `batch` on `to`, which closes at
    /// the end.
    Dump {
        batch: usize,
        to: mpsc::Sender<Vec<StoreOp>>,
    },
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remote::Op(op) => f.debug_tuple("Op").field(op).finish(),
            Remote::Replace { all, .. } => write!(f, "Replace({} AoRs)", all.len()),
            Remote::Dump { batch, .. } => write!(f, "Dump({batch})"),
        }
    }
}

#[cfg(test)]
mod tests;
