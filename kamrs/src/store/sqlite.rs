//! The embedded SQLite store (DESIGN §7, docs/store.md): one file, WAL,
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

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, Row};
use tokio::sync::oneshot;

use super::{Commit, DbCounts, Store, StoreError, StoreFuture, StoreMode, StoreOp};
use crate::peer::Proto;
use crate::usrloc::{unix_now, Binding, LocationTable, Parts, Ruid, Source, PERMANENT};

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
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

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

/// Kamailio's `location` table version this schema matches.
pub const LOCATION_VERSION: i64 = 9;

/// The schema: Kamailio's `location` table version 9 (same columns, types,
/// defaults and indexes), and the `version` table Kamailio checks.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
CREATE TABLE IF NOT EXISTS location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
);
";

/// The indexes and the version row, created once the table is known to
/// have Kamailio's columns.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact);
CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires);
CREATE INDEX IF NOT EXISTS location_connection_idx ON location (server_id, connection_id);
INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('location', 9);
";

/// Every column of Kamailio's `location` table, version 9.
pub const COLUMNS: [&str; 23] = [
    "id",
    "ruid",
    "username",
    "domain",
    "contact",
    "received",
    "path",
    "expires",
    "q",
    "callid",
    "cseq",
    "last_modified",
    "flags",
    "cflags",
    "user_agent",
    "socket",
    "methods",
    "instance",
    "reg_id",
    "server_id",
    "connection_id",
    "keepalive",
    "partition",
];

const UPSERT: &str = "
INSERT INTO location (ruid, username, domain, contact, received, path, expires, q,
    callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance,
    reg_id, server_id, connection_id, keepalive, partition)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
    ?18, 0, -1, 0, 0)
ON CONFLICT (ruid) DO UPDATE SET
    username = excluded.username, domain = excluded.domain, contact = excluded.contact,
    received = excluded.received, path = excluded.path, expires = excluded.expires,
    q = excluded.q, callid = excluded.callid, cseq = excluded.cseq,
    last_modified = excluded.last_modified, flags = excluded.flags,
    cflags = excluded.cflags, user_agent = excluded.user_agent, socket = excluded.socket,
    methods = excluded.methods, instance = excluded.instance, reg_id = excluded.reg_id";

const DELETE: &str = "DELETE FROM location WHERE ruid = ?1";

/// Rows whose expiry has passed (permanent ones never do), a chunk at a
/// time.
const CLEANUP: &str = "
DELETE FROM location WHERE id IN (
    SELECT id FROM location WHERE expires <= ?1 AND expires != '1970-01-01 00:00:00' LIMIT ?2)";

/// The columns a binding is read from, in [`binding_from_row`]'s order.
const SELECT_BINDINGS: &str = "
SELECT username, domain, contact, received, path, expires, q, callid, cseq,
    last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, ruid
FROM location";

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
#[derive(Debug, Default)]
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
    refused_log: Mutex<Option<Instant>>,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
            refused_log: Mutex::new(None),
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
            low_space_logged: None,
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
        let mut last = lock(&self.shared.refused_log);
        if last.is_none_or(|t| t.elapsed() >= ERROR_LOG_EVERY) {
            *last = Some(Instant::now());
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
        let before = self.shared.pending.fetch_add(n, Ordering::AcqRel);
        if before + n > self.shared.cap {
            self.shared.pending.fetch_sub(n, Ordering::AcqRel);
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

    fn load_into(&self, table: Arc<LocationTable>, now: u64) -> StoreFuture<'_, u64> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || load(&path, &table, now))
                .await
                .map_err(|e| StoreError::Read(format!("preload task failed: {e}")))?
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

// ------------------------------------------------------------------ writer

/// The thread that owns the connection.
struct Writer {
    /// `None` after a failure that calls for reopening the file.
    conn: Option<Connection>,
    path: PathBuf,
    mode: StoreMode,
    interval: Duration,
    shared: Arc<Shared>,
    /// Ops of failed transactions, by ruid (latest wins), written first in
    /// the next transaction.
    retry: HashMap<Box<str>, StoreOp>,
    retry_at: Option<Instant>,
    next_cleanup: Instant,
    errors: ErrorLog,
    /// Transactions since free space was last looked at.
    since_space_check: u64,
    /// Free space was below [`LOW_SPACE`] at the last look: look after
    /// every transaction until it is not.
    low_space: bool,
    low_space_logged: Option<Instant>,
}

/// What the writer takes from the queue in one go.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    ops: usize,
}

impl Writer {
    fn run(mut self) {
        while let Some(batch) = self.next_batch() {
            self.write(batch);
            if Instant::now() >= self.next_cleanup {
                self.cleanup();
            }
        }
        tracing::debug!(path = %self.path.display(), "sqlite writer stopped");
    }

    /// Waits until something is due, then takes it. `None` once the store
    /// is closed and everything queued was handled.
    fn next_batch(&mut self) -> Option<Batch> {
        let shared = Arc::clone(&self.shared);
        let mut q = lock(&shared.queue);
        loop {
            let now = Instant::now();
            let front_due = match q.items.front() {
                None => None,
                Some(_) if self.mode == StoreMode::WriteThrough => Some(now),
                Some(_) if q.closed || q.flushes > 0 || q.ops >= BATCH_CAP => Some(now),
                Some(Item::Flush(_)) => Some(now),
                Some(Item::Ops { queued, .. }) => Some(*queued + self.interval),
            };
            if front_due.is_some_and(|d| d <= now) || self.retry_at.is_some_and(|d| d <= now) {
                return Some(Self::take(&mut q));
            }
            if q.closed && q.items.is_empty() {
                if !self.retry.is_empty() {
                    tracing::error!(
                        path = %self.path.display(),
                        "sqlite location store closing with {} changes that could not be written",
                        self.retry.len()
                    );
                }
                return None;
            }
            if now >= self.next_cleanup {
                drop(q);
                self.cleanup();
                q = lock(&shared.queue);
                continue;
            }
            let wake_at = [front_due, self.retry_at, Some(self.next_cleanup)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(self.next_cleanup);
            q.writer_waiting = true;
            let (guard, _) = shared
                .wake
                .wait_timeout(q, wake_at.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner);
            q = guard;
            q.writer_waiting = false;
        }
    }

    fn take(q: &mut Queue) -> Batch {
        let mut batch = Batch::default();
        while let Some(item) = q.items.front() {
            let n = match item {
                Item::Ops { ops, .. } => ops.len(),
                Item::Flush(_) => 0,
            };
            if batch.ops > 0 && batch.ops + n > BATCH_CAP {
                break;
            }
            let Some(item) = q.items.pop_front() else {
                break;
            };
            if matches!(item, Item::Flush(_)) {
                q.flushes -= 1;
            }
            q.ops -= n;
            batch.ops += n;
            batch.items.push(item);
        }
        batch
    }

    fn write(&mut self, batch: Batch) {
        let retried = self.retry.len();
        if retried == 0 && batch.ops == 0 {
            // Only flushes, and nothing is owed: done already.
            for item in batch.items {
                resolve(item, Ok(()));
            }
            self.retry_at = None;
            return;
        }
        let started = Instant::now();
        let result = self.transaction(&batch);
        tracing::debug!(
            ops = retried + batch.ops,
            commits = batch.items.len(),
            micros = started.elapsed().as_micros() as u64,
            ok = result.is_ok(),
            "sqlite transaction"
        );
        match result {
            Ok(()) => {
                let stats = &self.shared.stats;
                stats.transactions.fetch_add(1, Ordering::Relaxed);
                stats
                    .ops
                    .fetch_add((retried + batch.ops) as u64, Ordering::Relaxed);
                self.retry.clear();
                self.retry_at = None;
                self.shared
                    .pending
                    .fetch_sub(retried + batch.ops, Ordering::AcqRel);
                if let Some(failures) = self.errors.recovered() {
                    tracing::warn!(
                        path = %self.path.display(),
                        "sqlite location store writes work again after {failures} failed transactions; {retried} kept changes written"
                    );
                }
                for item in batch.items {
                    resolve(item, Ok(()));
                }
                self.watch_space();
            }
            Err(e) => {
                self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
                let message = describe(&e);
                if e.code() == Some(ErrorCode::DiskFull) {
                    // Our own WAL may be what fills the disk: fold it
                    // into the database so the retry has room.
                    self.truncate_wal();
                }
                // A lock held by someone else leaves our connection fine;
                // anything else (I/O error, file replaced or read-only)
                // is retried on a fresh one.
                if !e.is_busy() {
                    self.conn = None;
                }
                let mut items = Vec::with_capacity(batch.items.len());
                for item in batch.items {
                    match item {
                        Item::Ops { ops, done, .. } => {
                            for op in ops {
                                self.retry.insert(ruid_of(&op), op);
                            }
                            items.push(Item::Flush(done));
                        }
                        flush => items.push(flush),
                    }
                }
                let kept = self.retry.len();
                // Ops superseded by a later one for the same ruid are gone.
                self.shared
                    .pending
                    .fetch_sub(retried + batch.ops - kept, Ordering::AcqRel);
                self.retry_at = Some(Instant::now() + RETRY_AFTER.max(self.interval_if_back()));
                self.errors.failed(&self.path, &message, kept);
                let err = StoreError::Write(format!("{}: {message}", self.path.display()));
                for item in items {
                    resolve(item, Err(err.clone()));
                }
            }
        }
    }

    /// After a commit: every [`SPACE_CHECK_EVERY`] transactions (every one
    /// while space is low), truncates the WAL when the disk is short of
    /// space, and warns at most every [`ERROR_LOG_EVERY`].
    fn watch_space(&mut self) {
        self.since_space_check += 1;
        if !self.low_space && self.since_space_check < SPACE_CHECK_EVERY {
            return;
        }
        self.since_space_check = 0;
        let Some(free) = free_space(&self.path) else {
            return;
        };
        self.low_space = free < LOW_SPACE;
        if !self.low_space {
            return;
        }
        self.truncate_wal();
        if self
            .low_space_logged
            .is_none_or(|t| t.elapsed() >= ERROR_LOG_EVERY)
        {
            self.low_space_logged = Some(Instant::now());
            tracing::warn!(
                path = %self.path.display(),
                "sqlite location store: only {} KiB free on the disk holding {}; REGISTERs will get 500 once it is full: free space on it or move the database",
                free / 1024,
                self.path.display()
            );
        }
    }

    /// Copies the WAL into the database and truncates it to zero bytes
    /// (`wal_checkpoint(TRUNCATE)`); a failure is left to the next write
    /// to report.
    fn truncate_wal(&mut self) {
        let Ok(conn) = self.conn() else {
            return;
        };
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            Ok(()) => {
                self.shared
                    .stats
                    .space_checkpoints
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!("sqlite: wal_checkpoint(TRUNCATE) failed: {e}"),
        }
    }

    fn interval_if_back(&self) -> Duration {
        match self.mode {
            StoreMode::WriteBack => self.interval,
            StoreMode::WriteThrough => Duration::ZERO,
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, DbError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => open_writer(&self.path)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Writes the kept ops, then the batch, in one transaction.
    fn transaction(&mut self, batch: &Batch) -> Result<(), DbError> {
        let retry: Vec<StoreOp> = self.retry.values().cloned().collect();
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(UPSERT)?;
            let mut delete = tx.prepare_cached(DELETE)?;
            let ops = retry.iter().chain(batch.items.iter().flat_map(|i| match i {
                Item::Ops { ops, .. } => ops.as_slice(),
                Item::Flush(_) => &[],
            }));
            for op in ops {
                match op {
                    StoreOp::Upsert { aor, binding } => {
                        let row = Row9::of(aor, binding);
                        upsert.execute(params![
                            row.ruid,
                            row.username,
                            row.domain,
                            row.contact,
                            row.received,
                            row.path,
                            row.expires,
                            row.q,
                            row.callid,
                            row.cseq,
                            row.last_modified,
                            row.flags,
                            row.cflags,
                            row.user_agent,
                            row.socket,
                            row.methods,
                            row.instance,
                            row.reg_id,
                        ])?;
                    }
                    StoreOp::Delete { ruid, .. } => {
                        delete.execute(params![ruid.as_ref()])?;
                    }
                }
            }
        }
        Ok(tx.commit()?)
    }

    /// Deletes expired rows, a chunk per transaction, until none is left
    /// or something else is queued.
    fn cleanup(&mut self) {
        self.next_cleanup = Instant::now() + CLEANUP_EVERY;
        let now = format_time(unix_now());
        loop {
            let deleted = self
                .conn()
                .and_then(|c| Ok(c.execute(CLEANUP, params![now, CLEANUP_CHUNK as i64])?));
            match deleted {
                Ok(n) => {
                    self.shared
                        .stats
                        .cleaned
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if n > 0 {
                        tracing::debug!(rows = n, "sqlite: expired rows deleted");
                    }
                    if n < CLEANUP_CHUNK || !lock(&self.shared.queue).items.is_empty() {
                        if n == CLEANUP_CHUNK {
                            // More to do, but REGISTERs wait: soon again.
                            self.next_cleanup = Instant::now() + Duration::from_secs(1);
                        }
                        return;
                    }
                }
                Err(e) => {
                    if !e.is_busy() {
                        self.conn = None;
                    }
                    tracing::warn!(
                        path = %self.path.display(),
                        "sqlite location store: cannot delete expired rows (will retry): {}",
                        describe(&e)
                    );
                    return;
                }
            }
        }
    }
}

fn resolve(item: Item, result: Result<(), StoreError>) {
    // A receiver that is gone (write-back REGISTERs drop theirs) is fine.
    match item {
        Item::Ops { done, .. } | Item::Flush(done) => {
            let _ = done.send(result);
        }
    }
}

fn ruid_of(op: &StoreOp) -> Box<str> {
    match op {
        StoreOp::Upsert { binding, .. } => binding.ruid().to_boxed_str(),
        StoreOp::Delete { ruid, .. } => ruid.clone(),
    }
}

/// Rate-limits the error log of failing writes: the first failure is
/// logged at once, then at most one line per [`ERROR_LOG_EVERY`], and
/// recovery is logged once.
#[derive(Default)]
struct ErrorLog {
    failures: u64,
    last: Option<Instant>,
}

impl ErrorLog {
    fn failed(&mut self, path: &Path, message: &str, kept: usize) {
        self.failures += 1;
        if self.last.is_some_and(|t| t.elapsed() < ERROR_LOG_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        tracing::error!(
            path = %path.display(),
            "sqlite location store cannot write {}: {message}; REGISTERs in write-through mode get 500 and {kept} changes are kept for retry ({} failed transactions so far)",
            path.display(),
            self.failures
        );
    }

    /// After a success: the number of failures that preceded it, once.
    fn recovered(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.failures);
        self.last = None;
        (n > 0).then_some(n)
    }
}

/// Bytes free to an unprivileged writer on the file system holding
/// `path` (its directory when the file does not exist yet).
fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is a buffer of the
    // size statvfs writes; it is read only after statvfs returned 0.
    let st = unsafe {
        if libc::statvfs(c.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Why a database operation failed.
#[derive(Debug)]
enum DbError {
    Sqlite(rusqlite::Error),
    /// The file is an SQLite database, but not one kamrs can use.
    Layout(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        DbError::Sqlite(e)
    }
}

impl DbError {
    fn code(&self) -> Option<ErrorCode> {
        match self {
            DbError::Sqlite(e) => e.sqlite_error_code(),
            DbError::Layout(_) => None,
        }
    }

    /// Another process holds the lock: our connection itself is fine.
    fn is_busy(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }
}

/// SQLite's message plus what an admin can do about it.
fn describe(e: &DbError) -> String {
    let e = match e {
        DbError::Sqlite(e) => e,
        DbError::Layout(message) => return message.clone(),
    };
    let hint = match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk is full: free space on it",
        Some(ErrorCode::ReadOnly) => {
            "the file or its directory is read-only: make both writable by kamrs (and the -wal and -shm files beside it)"
        }
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            "cannot open the file: check that it and its directory exist and are writable by kamrs"
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "another process holds a write lock on the database (an open sqlite3 transaction?): end it"
        }
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
            "the file is damaged or not an SQLite database: move it away (kamrs creates a new one) and restore it from a backup"
        }
        Some(ErrorCode::SystemIoFailure) => "I/O error: check the disk and the kernel log",
        _ => "check the file and the disk",
    };
    format!("{e} ({hint})")
}

// -------------------------------------------------------------- connection

/// Opens the file for writing: WAL, `synchronous = FULL`, the busy
/// timeout, and the schema created or checked.
///
/// `synchronous = FULL` in WAL mode syncs the WAL at every commit, so a
/// committed transaction survives a power cut; NORMAL would only survive a
/// crash of kamrs. Write-through promises durability before the 200, so
/// FULL; write-back commits once per interval, where one fsync costs
/// nothing, so FULL too.
fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Layout(format!(
            "cannot switch {} to WAL mode (journal_mode is {mode}); is it on a network file system?",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Keeps the -wal file from staying huge after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Index pages of a big table stay in memory (64 MiB, filled only as
    // the file grows): random inserts into the username and expires
    // indexes otherwise re-read pages at every batch. Measured: writing
    // 1M bindings took about half the time with it.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.execute_batch(SCHEMA)?;
    check_schema(&conn)?;
    conn.execute_batch(INDEXES)?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}

/// Opens the file for reading (preload, counts) beside the writer.
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Refuses a `location` table that is not Kamailio's version 9 layout.
fn check_schema(conn: &Connection) -> Result<(), DbError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('location')")?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(DbError::Layout(format!(
            "its `location` table lacks the columns {} of Kamailio's location table version {LOCATION_VERSION}: use another file, or migrate it with Kamailio's kamdbctl",
            missing.join(", ")
        )));
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT table_version FROM version WHERE table_name = 'location'",
            [],
            |r| r.get(0),
        )
        .ok();
    match version {
        Some(v) if v != LOCATION_VERSION => Err(DbError::Layout(format!(
            "its `version` table says `location` is version {v}, kamrs writes version {LOCATION_VERSION}: use another file, or migrate it with Kamailio's kamdbctl"
        ))),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------ row mapping

/// One binding as the columns of a `location` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row9 {
    pub ruid: String,
    pub username: String,
    pub domain: Option<String>,
    pub contact: String,
    pub received: Option<String>,
    pub path: Option<String>,
    pub expires: String,
    pub q: f64,
    pub callid: String,
    pub cseq: i64,
    pub last_modified: String,
    pub flags: i64,
    pub cflags: i64,
    pub user_agent: String,
    pub socket: Option<String>,
    pub methods: i64,
    pub instance: Option<String>,
    pub reg_id: i64,
}

impl Row9 {
    /// The row for `binding` of `aor`. The AoR is split at its first `@`
    /// into `username` and `domain` (NULL without one, as Kamailio does
    /// with `use_domain = 0`).
    pub fn of(aor: &str, b: &Binding) -> Row9 {
        let (username, domain) = match aor.split_once('@') {
            Some((u, d)) => (u.to_owned(), Some(d.to_owned())),
            None => (aor.to_owned(), None),
        };
        Row9 {
            ruid: b.ruid().to_string(),
            username,
            domain,
            contact: b.contact().to_string(),
            received: b.source().map(|s| received_of(&s)),
            path: b.path().map(str::to_owned),
            expires: if b.is_permanent() {
                PERMANENT_TEXT.to_owned()
            } else {
                format_time(b.expires_at)
            },
            // Kamailio's Q_UNSPECIFIED.
            q: b.q.map_or(-1.0, |q| f64::from(q) / 1000.0),
            callid: b.call_id().to_string(),
            cseq: i64::from(b.cseq),
            last_modified: format_time(b.last_modified),
            flags: i64::from(b.flags),
            cflags: i64::from(b.cflags),
            user_agent: b.user_agent.as_deref().unwrap_or("").to_owned(),
            socket: b
                .source()
                .map(|s| format!("{}:{}", s.proto.as_str(), s.local)),
            methods: i64::from(b.methods),
            instance: b.instance().map(str::to_owned),
            reg_id: i64::from(b.reg_id),
        }
    }
}

/// Kamailio's `received`: `sip:IP:PORT`, `;transport=tcp` for TCP.
fn received_of(s: &Source) -> String {
    match s.proto {
        Proto::Udp => format!("sip:{}", s.remote),
        Proto::Tcp => format!("sip:{};transport=tcp", s.remote),
    }
}

/// The remote address and transport of a `received` value; `None` when
/// it is not `sip:IP:PORT[;params]` (Kamailio may store a host name).
fn parse_received(s: &str) -> Option<(SocketAddr, Proto)> {
    let rest = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:"))?;
    let mut parts = rest.split(';');
    let addr: SocketAddr = parts.next()?.parse().ok()?;
    let mut proto = Proto::Udp;
    for p in parts {
        if let Some(t) = p.strip_prefix("transport=") {
            proto = match t.to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return None,
            };
        }
    }
    Some((addr, proto))
}

/// `udp:IP:PORT` / `tcp:[IPv6]:PORT`.
fn parse_socket(s: &str) -> Option<(Proto, SocketAddr)> {
    let (proto, addr) = s.split_once(':')?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        _ => return None,
    };
    Some((proto, addr.parse().ok()?))
}

/// A 32-bit unsigned column Kamailio may have written signed (methods,
/// flags: `-1` is `0xffffffff`).
fn u32_column(v: i64) -> Option<u32> {
    if v < 0 {
        i32::try_from(v).ok().map(|v| v as u32)
    } else {
        u32::try_from(v).ok()
    }
}

/// Reads one row of [`SELECT_BINDINGS`]: the AoR and its binding, or why
/// the row cannot be used.
fn binding_from_row(
    row: &Row<'_>,
    agents: &mut HashMap<String, Arc<str>>,
) -> Result<(String, Binding), String> {
    use rusqlite::types::ValueRef;
    let text = |i: usize| -> Result<Option<String>, String> {
        match row.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| format!("column {i} is not UTF-8")),
            ValueRef::Integer(n) => Ok(Some(n.to_string())),
            ValueRef::Real(x) => Ok(Some(x.to_string())),
            ValueRef::Blob(_) => Err(format!("column {i} is a blob")),
        }
    };
    let int = |i: usize, name: &str| -> Result<Option<i64>, String> {
        match row.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            ValueRef::Real(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| format!("{name} is not a number")),
            _ => Err(format!("{name} is not a number")),
        }
    };
    let time = |i: usize, name: &str| -> Result<u64, String> {
        match row.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Integer(n) => u64::try_from(n).map_err(|_| format!("{name} is negative")),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(parse_time)
                .ok_or_else(|| format!("{name} is not a 'YYYY-MM-DD HH:MM:SS' time")),
            _ => Err(format!("{name} is not a time")),
        }
    };
    let ruid = text(17)?.filter(|r| !r.is_empty()).ok_or("ruid is empty")?;
    let username = text(0)?.unwrap_or_default();
    let aor = match text(1)? {
        Some(d) => format!("{username}@{d}"),
        None => username,
    };
    if aor.is_empty() {
        return Err("username is empty".into());
    }
    let contact = text(2)?
        .filter(|c| !c.is_empty())
        .ok_or("contact is empty")?;
    let expires = time(5, "expires")?;
    let q = match row.get_ref(6).map_err(|e| e.to_string())? {
        ValueRef::Real(x) => x,
        ValueRef::Integer(n) => n as f64,
        ValueRef::Null => -1.0,
        _ => return Err("q is not a number".into()),
    };
    let q = if q < 0.0 {
        None
    } else if q <= 1.0 {
        Some((q * 1000.0).round() as u16)
    } else {
        return Err(format!("q {q} is above 1"));
    };
    let cseq = int(8, "cseq")?.unwrap_or(0);
    let cseq = u32::try_from(cseq).map_err(|_| format!("cseq {cseq} is out of range"))?;
    let flag = |i: usize, name: &str, default: u32| -> Result<u32, String> {
        match int(i, name)? {
            None => Ok(default),
            Some(v) => u32_column(v).ok_or_else(|| format!("{name} {v} is out of range")),
        }
    };
    let source = match (text(3)?, text(13)?) {
        (Some(received), Some(socket)) => {
            match (parse_received(&received), parse_socket(&socket)) {
                (Some((remote, _)), Some((proto, local))) => Some(Source {
                    proto,
                    remote,
                    local,
                }),
                _ => None,
            }
        }
        _ => None,
    };
    let user_agent = text(12)?.filter(|u| !u.is_empty()).map(|u| {
        // Thousands of phones share a few User-Agent strings: one Arc each.
        match agents.get(&u) {
            Some(a) => Arc::clone(a),
            None => {
                let a: Arc<str> = Arc::from(u.as_str());
                if agents.len() < 10_000 {
                    agents.insert(u, Arc::clone(&a));
                }
                a
            }
        }
    });
    let call_id = text(7)?.unwrap_or_default();
    let path = text(4)?.filter(|p| !p.is_empty());
    let instance = text(15)?.filter(|i| !i.is_empty());
    let binding = Binding::new(Parts {
        contact: &contact,
        expires_at: if expires == 0 { PERMANENT } else { expires },
        q,
        call_id: &call_id,
        cseq,
        user_agent,
        source,
        path: path.as_deref(),
        instance: instance.as_deref(),
        reg_id: flag(16, "reg_id", 0)?,
        methods: flag(14, "methods", u32::MAX)?,
        flags: flag(10, "flags", 0)?,
        cflags: flag(11, "cflags", 0)?,
        ruid: Ruid::parse(&ruid),
        last_modified: time(9, "last_modified").unwrap_or(0),
    });
    Ok((aor, binding))
}

/// Reads every row into `table` (which skips the expired ones). Rows that
/// cannot be read are skipped with a warning.
fn load(path: &Path, table: &LocationTable, now: u64) -> Result<u64, StoreError> {
    // Two stages on two threads: SQLite reads and maps rows to bindings
    // while the table takes the previous chunk, so the preload takes about
    // as long as the slower of the two instead of their sum.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(String, Binding)>>(8);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("kamrs-preload".into())
            .spawn_scoped(scope, move || read_rows(path, &tx))
            .map_err(|e| StoreError::Read(format!("cannot start the preload thread: {e}")))?;
        let mut loaded = 0u64;
        for chunk in rx {
            for (aor, binding) in chunk {
                table.load(&aor, binding, now);
                loaded += 1;
            }
        }
        reader
            .join()
            .map_err(|_| StoreError::Read("the preload thread panicked".into()))??;
        Ok(loaded)
    })
}

/// Rows per chunk handed from the reading thread to the loading one.
const PRELOAD_CHUNK: usize = 4096;

/// Reads every row, sending the bindings in chunks. Rows that cannot be
/// read are skipped with a warning.
fn read_rows(
    path: &Path,
    tx: &std::sync::mpsc::SyncSender<Vec<(String, Binding)>>,
) -> Result<(), StoreError> {
    let read_err = |e: rusqlite::Error| {
        StoreError::Read(format!(
            "{}: {}",
            path.display(),
            describe(&DbError::Sqlite(e))
        ))
    };
    let conn = open_reader(path).map_err(read_err)?;
    // Table order (rowid): reading in expiry order through the index was
    // measured slower, the random row lookups cost more than they save.
    let mut stmt = conn.prepare(SELECT_BINDINGS).map_err(read_err)?;
    let mut rows = stmt.query([]).map_err(read_err)?;
    let mut agents = HashMap::new();
    let mut skipped = 0u64;
    let mut chunk = Vec::with_capacity(PRELOAD_CHUNK);
    while let Some(row) = rows.next().map_err(read_err)? {
        match binding_from_row(row, &mut agents) {
            Ok(b) => {
                chunk.push(b);
                if chunk.len() == PRELOAD_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(PRELOAD_CHUNK));
                    if tx.send(full).is_err() {
                        return Ok(());
                    }
                }
            }
            Err(why) => {
                skipped += 1;
                if skipped <= 10 {
                    let id: Option<String> = row.get(17).ok();
                    tracing::warn!(
                        path = %path.display(),
                        ruid = id.as_deref().unwrap_or("?"),
                        "skipping a location row that cannot be read: {why}"
                    );
                }
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(chunk);
    }
    if skipped > 10 {
        tracing::warn!(
            path = %path.display(),
            "skipped {skipped} location rows that cannot be read in all"
        );
    }
    Ok(())
}

fn counts(path: &Path, now: u64) -> Result<DbCounts, StoreError> {
    let read_err = |e: rusqlite::Error| {
        StoreError::Read(format!(
            "{}: {}",
            path.display(),
            describe(&DbError::Sqlite(e))
        ))
    };
    let conn = open_reader(path).map_err(read_err)?;
    let now = format_time(now);
    let live = "(expires > ?1 OR expires = '1970-01-01 00:00:00')";
    let count = |sql: &str| -> Result<u64, StoreError> {
        conn.query_row(sql, params![now], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(read_err)
    };
    Ok(DbCounts {
        users: count(&format!(
            "SELECT count(*) FROM (SELECT DISTINCT username, domain FROM location WHERE {live})"
        ))?,
        contacts: count(&format!("SELECT count(*) FROM location WHERE {live}"))?,
        expired_contacts: count(&format!("SELECT count(*) FROM location WHERE NOT {live}"))?,
    })
}

// ------------------------------------------------------------------- time

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DD HH:MM:SS` (a `T` instead of the space, and trailing
/// fractions or a `Z`, are accepted) in UTC as Unix seconds.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let tail = &s[19..];
    if !(tail.is_empty() || tail.starts_with('.') || tail == "Z") {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let t = days * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(t).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
