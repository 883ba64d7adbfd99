//! The embedded SQLite store (docs/design.md §7, docs/store.md): one file, WAL,
//! Kamailio's `location` table (version 9) with the same column names, so
//! an admin can read it with `sqlite3`.
//!
//! One writer thread owns the connection. [`SqliteStore::submit`] only
//! appends to a queue (bounded by `queue_size`, never blocking: a full
//! queue refuses at once with [`StoreError::Overloaded`]). The writer takes
//! everything queued (up to [`BATCH_CAP`] ops), writes it in ONE
//! transaction and then resolves every commit of the batch: group commit.
//! In write-through mode the next transaction starts as soon as the
//! previous one ends, so batches grow by themselves with the load while
//! one fsync is under way; in write-back mode a change waits at most
//! `write_back_interval` (less when [`flush`](SqliteStore::flush) asks, or
//! when a full batch is queued).
//!
//! A transaction that fails (disk full, file read-only, locked by another
//! process) resolves the commits of its batch with an error (write-through
//! REGISTERs get 500) and logs why, rate-limited; its ops are kept,
//! deduplicated by ruid (latest wins), and written before anything newer,
//! so the file converges on the table again as soon as writes work. Kept
//! ops count against `queue_size`, which bounds them.
//!
//! Expired rows are deleted every [`CLEANUP_EVERY`] by the writer itself
//! (the table does not journal expiry).

use crate::timing::Latency;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, Row};
use tokio::sync::{mpsc, oneshot};

use super::{Batch, Commit, DbCounts, Loading, Store, StoreError, StoreFuture, StoreMode, StoreOp};
use crate::log_limit::LogLimiter;
use crate::peer::Proto;
use crate::usrloc::{unix_now, Binding, Parts, Ruid, Source, PERMANENT};
use crate::util::lock;

mod read;
mod rows;
mod schema;
mod time;
mod writer;

use read::*;
pub use rows::*;
pub use schema::*;
pub use time::*;
use writer::*;

/// Most ops written in one transaction. Bigger batches amortise the fsync
/// further but hold the write lock longer; at a few µs per op this is a
/// transaction of some tens of milliseconds.
pub const BATCH_CAP: usize = 8192;

/// How often expired rows are deleted.
pub const CLEANUP_EVERY: Duration = Duration::from_secs(60);

/// Most expired rows deleted in one cleanup transaction, so a mass expiry
/// never holds the writer for long; the rest go in the next rounds.
const CLEANUP_CHUNK: usize = 5000;

/// How long a write waits for another process's lock before it fails.
/// Readers never block us (WAL), only another writer does; a REGISTER
/// waiting in write-through mode should not wait much longer than this.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

/// Delay before kept (failed) ops are retried when nothing else comes.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// At most one error line per this interval while writes keep failing.
const ERROR_LOG_EVERY: u64 = 10;

/// Below this much free space on the database's file system the writer
/// folds the WAL back into the database and truncates it after every few
/// transactions, and warns. SQLite otherwise lets the WAL grow to about
/// 1000 pages (4 MiB) before it checkpoints, and never shrinks it below
/// `journal_size_limit`: on a small disk kamrs's own WAL used to fill it
/// after some 95 bindings.
const LOW_SPACE: u64 = 64 * 1024 * 1024;

/// Free space is looked at every this many transactions (one `statvfs`).
const SPACE_CHECK_EVERY: u64 = 16;

/// Kamailio's `expires` of a binding that never expires: time 0.
pub const PERMANENT_TEXT: &str = "1970-01-01 00:00:00";

/// What the store needs from `[store]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub path: PathBuf,
    pub mode: StoreMode,
    pub write_back_interval: Duration,
    pub queue_size: usize,
}

/// Why the database could not be opened: the path, SQLite's message and
/// what to do.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OpenFailure {
    pub path: String,
    pub message: String,
}

/// Counters of the writer, for statistics and tests.
#[derive(Debug)]
pub struct WriterStats {
    /// Transactions committed (group commits; cleanups not counted).
    pub transactions: AtomicU64,
    /// Ops written by committed transactions.
    pub ops: AtomicU64,
    /// Transactions that failed.
    pub failures: AtomicU64,
    /// Submits refused because the queue was full.
    pub refused: AtomicU64,
    /// Expired rows deleted by cleanup.
    pub cleaned: AtomicU64,
    /// WAL truncations forced by low disk space or a full disk.
    pub space_checkpoints: AtomicU64,
    /// How long transactions took, failed ones included.
    pub commit: Latency,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            transactions: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cleaned: AtomicU64::new(0),
            space_checkpoints: AtomicU64::new(0),
            commit: Latency::new(&crate::timing::STORE_COMMIT),
        }
    }
}

/// The SQLite store. Dropping it writes what is queued and stops the
/// writer.
pub struct SqliteStore {
    shared: Arc<Shared>,
    path: PathBuf,
    mode: StoreMode,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Ops queued plus ops kept for retry: what `queue_size` bounds.
    pending: AtomicUsize,
    cap: usize,
    stats: WriterStats,
    /// Last "queue full" warning, to rate-limit it.
    refused_log: LogLimiter,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Ops in `items`.
    ops: usize,
    /// Flushes in `items`: write-back commits at once while any waits.
    flushes: usize,
    /// The writer sleeps on `wake` (so a submit must notify).
    writer_waiting: bool,
    closed: bool,
}

enum Item {
    Ops {
        ops: Vec<StoreOp>,
        done: oneshot::Sender<Result<(), StoreError>>,
        queued: Instant,
    },
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

impl SqliteStore {
    /// Opens (creating if needed) the database, checks its schema and
    /// starts the writer thread.
    pub fn open(settings: Settings) -> Result<SqliteStore, OpenFailure> {
        let path = settings.path.clone();
        let fail = |message: String| OpenFailure {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(fail(format!(
                    "directory {} does not exist: create it (writable by kamrs) or set `[store] path`",
                    dir.display()
                )));
            }
        }
        let conn = open_writer(&path).map_err(|e| fail(describe(&e)))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            pending: AtomicUsize::new(0),
            cap: settings.queue_size.max(1),
            stats: WriterStats::default(),
            refused_log: LogLimiter::new(),
        });
        let writer = Writer {
            conn: Some(conn),
            path: path.clone(),
            mode: settings.mode,
            interval: settings.write_back_interval,
            shared: Arc::clone(&shared),
            retry: HashMap::new(),
            retry_at: None,
            next_cleanup: Instant::now(),
            errors: ErrorLog::default(),
            since_space_check: SPACE_CHECK_EVERY,
            low_space: false,
            low_space_log: LogLimiter::new(),
        };
        let handle = std::thread::Builder::new()
            .name("kamrs-sqlite".into())
            .spawn(move || writer.run())
            .map_err(|e| fail(format!("cannot start the writer thread: {e}")))?;
        tracing::info!(
            path = %path.display(),
            mode = %settings.mode,
            "sqlite location store open"
        );
        Ok(SqliteStore {
            shared,
            path,
            mode: settings.mode,
            writer: Mutex::new(Some(handle)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    fn enqueue(&self, item: Item, ops: usize) -> Result<(), StoreError> {
        let mut q = lock(&self.shared.queue);
        if q.closed {
            return Err(StoreError::Closed);
        }
        let was_empty = q.items.is_empty();
        let is_flush = matches!(item, Item::Flush(_));
        q.items.push_back(item);
        q.ops += ops;
        if is_flush {
            q.flushes += 1;
        }
        // Wake the writer only when it has something new to decide: in
        // write-back mode it sleeps until the oldest op is due anyway.
        let wake = q.writer_waiting
            && (self.mode == StoreMode::WriteThrough
                || was_empty
                || is_flush
                || q.ops >= BATCH_CAP);
        drop(q);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn refuse_full(&self) -> Commit {
        self.shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        if self
            .shared
            .refused_log
            .event(crate::time::mono_secs(), ERROR_LOG_EVERY)
            .is_some()
        {
            tracing::error!(
                path = %self.path.display(),
                "sqlite location store: {} changes are waiting to be written (queue_size); REGISTERs get 500 until the store catches up. The disk is too slow or writes fail (see the errors above); raise `[store] queue_size` only for bursts",
                self.shared.cap
            );
        }
        Commit::ready(Err(StoreError::Overloaded))
    }
}

impl Store for SqliteStore {
    fn submit(&self, ops: Vec<StoreOp>) -> Commit {
        let n = ops.len();
        if n == 0 {
            return Commit::ready(Ok(()));
        }
        if !super::queue::try_reserve(&self.shared.pending, n, self.shared.cap) {
            return self.refuse_full();
        }
        let (done, commit) = Commit::pending();
        let item = Item::Ops {
            ops,
            done,
            queued: Instant::now(),
        };
        match self.enqueue(item, n) {
            Ok(()) => commit,
            Err(e) => {
                self.shared.pending.fetch_sub(n, Ordering::AcqRel);
                Commit::ready(Err(e))
            }
        }
    }

    fn flush(&self) -> Commit {
        let (done, commit) = Commit::pending();
        match self.enqueue(Item::Flush(done), 0) {
            Ok(()) => commit,
            Err(e) => Commit::ready(Err(e)),
        }
    }

    fn mode(&self) -> StoreMode {
        self.mode
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn commit_time(&self) -> Option<&Latency> {
        Some(&self.shared.stats.commit)
    }

    /// Reads the rows on a blocking thread, handing them over in chunks
    /// while the table takes the previous one, so the preload takes about
    /// as long as the slower of the two instead of their sum.
    fn load(&self, _now: u64) -> StoreFuture<'_, Loading> {
        let path = self.path.clone();
        Box::pin(async move {
            let (tx, bindings) = mpsc::channel(8);
            // Held until the reader has ended, so that the channel cannot
            // close as if the read had finished when its thread panicked.
            let watch = tx.clone();
            let reader = tokio::task::spawn_blocking(move || {
                if let Err(e) = read_rows(&path, &tx) {
                    // The preload is waiting for this, or gone.
                    let _ = tx.blocking_send(Err(e));
                }
            });
            tokio::spawn(async move {
                if reader.await.is_err() {
                    let why = StoreError::Read("the preload thread panicked".into());
                    let _ = watch.send(Err(why)).await;
                }
            });
            Ok(Loading {
                bindings,
                remote: None,
            })
        })
    }

    fn counts(&self, now: u64) -> StoreFuture<'_, DbCounts> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || counts(&path, now))
                .await
                .map_err(|e| StoreError::Read(format!("count task failed: {e}")))?
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_one();
        if let Some(handle) = lock(&self.writer).take() {
            if handle.join().is_err() {
                tracing::error!("sqlite writer thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests;
