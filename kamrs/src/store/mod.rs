//! Persistence of the location table (DESIGN §7). The table always lives in
//! memory and stays the fast path; a [`Store`] is told every change the
//! table makes and keeps a durable copy (SQLite) or a shared one (Redis).
//!
//! The table decides *what* changed (see `LocationTable::update_durable`);
//! a store only decides *how* to write it. Writes are batched by the store
//! (group commit), and each batch of ops hands back a [`Commit`] that
//! resolves when they are durable, which is what write-through mode waits
//! for before answering a REGISTER.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::usrloc::Binding;

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

/// Why a write failed. Shown in logs; the UA sees a 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("location store write failed: {0}")]
    Write(String),
    #[error("location store queue is full (the store cannot keep up)")]
    Overloaded,
    #[error("location store is shut down")]
    Closed,
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
