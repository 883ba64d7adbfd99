//! The writer thread: takes what is queued, writes it in one transaction,
//! resolves the batch's commits, keeps and retries failed ops, cleans up
//! expired rows and watches the free space.

use super::*;

/// The thread that owns the connection.
pub(super) struct Writer {
    /// `None` after a failure that calls for reopening the file.
    pub(super) conn: Option<Connection>,
    pub(super) path: PathBuf,
    pub(super) mode: StoreMode,
    pub(super) interval: Duration,
    pub(super) shared: Arc<Shared>,
    /// Ops of failed transactions, by ruid (latest wins), written first in
    /// the next transaction.
    pub(super) retry: HashMap<Box<str>, StoreOp>,
    pub(super) retry_at: Option<Instant>,
    pub(super) next_cleanup: Instant,
    pub(super) errors: ErrorLog,
    /// Transactions since free space was last looked at.
    pub(super) since_space_check: u64,
    /// Free space was below [`LOW_SPACE`] at the last look: look after
    /// every transaction until it is not.
    pub(super) low_space: bool,
    pub(super) low_space_log: LogLimiter,
}

/// What the writer takes from the queue in one go.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) items: Vec<Item>,
    pub(super) ops: usize,
}

impl Writer {
    pub(super) fn run(mut self) {
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
    pub(super) fn next_batch(&mut self) -> Option<Batch> {
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

    pub(super) fn take(q: &mut Queue) -> Batch {
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

    pub(super) fn write(&mut self, batch: Batch) {
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
        self.shared.stats.commit.since(started);
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
    pub(super) fn watch_space(&mut self) {
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
            .low_space_log
            .event(crate::time::mono_secs(), ERROR_LOG_EVERY)
            .is_some()
        {
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
    pub(super) fn truncate_wal(&mut self) {
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

    pub(super) fn interval_if_back(&self) -> Duration {
        match self.mode {
            StoreMode::WriteBack => self.interval,
            StoreMode::WriteThrough => Duration::ZERO,
        }
    }

    pub(super) fn conn(&mut self) -> Result<&mut Connection, DbError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => open_writer(&self.path)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Writes the kept ops, then the batch, in one transaction.
    pub(super) fn transaction(&mut self, batch: &Batch) -> Result<(), DbError> {
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
                            row.server_id,
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
    pub(super) fn cleanup(&mut self) {
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

pub(super) fn resolve(item: Item, result: Result<(), StoreError>) {
    // A receiver that is gone (write-back REGISTERs drop theirs) is fine.
    match item {
        Item::Ops { done, .. } | Item::Flush(done) => {
            let _ = done.send(result);
        }
    }
}

pub(super) fn ruid_of(op: &StoreOp) -> Box<str> {
    match op {
        StoreOp::Upsert { binding, .. } => binding.ruid().to_boxed_str(),
        StoreOp::Delete { ruid, .. } => ruid.clone(),
    }
}

/// Rate-limits the error log of failing writes: the first failure is
/// logged at once, then at most one line per [`ERROR_LOG_EVERY`], and
/// recovery is logged once.
#[derive(Default)]
pub(super) struct ErrorLog {
    pub(super) failures: u64,
    pub(super) limit: LogLimiter,
}

impl ErrorLog {
    pub(super) fn failed(&mut self, path: &Path, message: &str, kept: usize) {
        self.failures += 1;
        if self
            .limit
            .event(crate::time::mono_secs(), ERROR_LOG_EVERY)
            .is_none()
        {
            return;
        }
        tracing::error!(
            path = %path.display(),
            "sqlite location store cannot write {}: {message}; REGISTERs in write-through mode get 500 and {kept} changes are kept for retry ({} failed transactions so far)",
            path.display(),
            self.failures
        );
    }

    /// After a success: the number of failures that preceded it, once.
    pub(super) fn recovered(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.failures);
        self.limit.reset();
        (n > 0).then_some(n)
    }
}

/// Bytes free to an unprivileged writer on the file system holding
/// `path` (its directory when the file does not exist yet).
pub(super) fn free_space(path: &Path) -> Option<u64> {
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
pub(super) enum DbError {
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
    pub(super) fn code(&self) -> Option<ErrorCode> {
        match self {
            DbError::Sqlite(e) => e.sqlite_error_code(),
            DbError::Layout(_) => None,
        }
    }

    /// Another process holds the lock: our connection itself is fine.
    pub(super) fn is_busy(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }
}

/// SQLite's message plus what an admin can do about it.
pub(super) fn describe(e: &DbError) -> String {
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
