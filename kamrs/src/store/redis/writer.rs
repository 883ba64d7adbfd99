//! The writer task: drains the queue, gathers batches and sends them
//! as pipelines (with the feed message), retrying write-back batches.

use super::*;

/// A `flush` waiting for the submissions queued before it.
pub(super) struct FlushWait {
    pub(super) done: oneshot::Sender<Result<(), StoreError>>,
    /// Submissions ahead of it still to be written.
    pub(super) ahead: usize,
}

/// Drains the queue: write-through sends whatever is queued as soon as the
/// previous round trip is back; write-back first waits up to
/// `write_back_interval` (or a flush) to gather more. Failed write-back
/// ops are kept and retried after a backoff; failed write-through ops fail
/// their commits (the UA got its 500, the re-sync cleans up).
pub(super) async fn writer(
    shared: Arc<Shared>,
    mut link: Link,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let write_back = shared.mode == StoreMode::WriteBack;
    let mut q = WriterQueue::default();
    // Set while write-back retries a failed batch.
    let mut retry_at: Option<Instant> = None;
    let mut retry_delay = BACKOFF_MIN;
    let mut failures = 0u64;
    let mut closed = false;

    loop {
        if q.subs.is_empty() && q.flushes.is_empty() {
            if closed {
                return;
            }
            match rx.recv().await {
                Some(job) => q.take(job),
                None => return,
            }
        }
        // Write-back gathers for up to the interval; a failed batch waits
        // for its backoff. A flush cuts either wait short.
        let wait = match retry_at {
            Some(at) => Some(at),
            None if write_back && !q.subs.is_empty() => {
                Some(Instant::now() + shared.write_back_interval)
            }
            None => None,
        };
        if let Some(until) = wait {
            while q.flushes.is_empty() && q.ops < MAX_BATCH {
                if closed {
                    // Nothing more can come; still wait, never spin.
                    tokio::time::sleep_until(until).await;
                    break;
                }
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => q.take(job),
                        None => closed = true,
                    },
                    () = tokio::time::sleep_until(until) => break,
                }
            }
        }
        while q.ops < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => q.take(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }

        // Up to MAX_BATCH ops (whole submissions), oldest first.
        let mut count = 0;
        let mut n_ops = 0;
        for sub in &q.subs {
            if count > 0 && n_ops + sub.ops.len() > MAX_BATCH {
                break;
            }
            count += 1;
            n_ops += sub.ops.len();
        }
        let results = if count == 0 {
            Vec::new()
        } else {
            let started = std::time::Instant::now();
            let results = write_batch(&shared, &mut link, &q.subs[..count]).await;
            shared.commit.since(started);
            results
        };
        let first_error = results.iter().find_map(|r| r.as_ref().err().cloned());
        let n_failed = results.iter().filter(|r| r.is_err()).count();
        let batch: Vec<Sub> = q.subs.drain(..count).collect();
        let mut kept = Vec::new();
        for (mut sub, result) in batch.into_iter().zip(results) {
            if result.is_err() && write_back {
                // Retried later, before anything queued after it.
                kept.push(sub);
                continue;
            }
            q.ops -= sub.ops.len();
            shared.queued.fetch_sub(sub.ops.len(), Ordering::AcqRel);
            if let Some(done) = sub.done.take() {
                // The REGISTER may have stopped waiting; that is fine.
                let _ = done.send(result.map_err(StoreError::Write));
            }
        }
        let retained = kept.len();
        if retained > 0 {
            kept.append(&mut q.subs);
            q.subs = kept;
        }

        match &first_error {
            Some(e) => {
                failures += n_failed as u64;
                if let Some(more) = allow(&shared.write_log) {
                    tracing::error!(
                        "redis store: writing to {} failed: {e}{}{}",
                        shared.place,
                        if write_back {
                            "; changes kept and retried"
                        } else {
                            "; REGISTERs get 500 until it works again"
                        },
                        suppressed(more)
                    );
                }
                if write_back {
                    retry_at = Some(Instant::now() + retry_delay);
                    retry_delay = (retry_delay * 2).min(BACKOFF_MAX);
                }
            }
            None if failures > 0 && count > 0 => {
                tracing::warn!(
                    "redis store: writing to {} works again ({failures} writes failed before)",
                    shared.place
                );
                failures = 0;
                retry_at = None;
                retry_delay = BACKOFF_MIN;
                // Other nodes' changes may have been missed, and changes
                // refused here may still be in this table.
                shared.resync_wanted.notify_one();
            }
            None => {}
        }
        q.answer_flushes(
            count - retained,
            first_error.filter(|_| retained > 0).map(|_| q.ops),
        );
    }
}

#[derive(Default)]
pub(super) struct WriterQueue {
    pub(super) subs: Vec<Sub>,
    /// Ops in `subs`.
    pub(super) ops: usize,
    pub(super) flushes: Vec<FlushWait>,
}

impl WriterQueue {
    pub(super) fn take(&mut self, job: Job) {
        match job {
            Job::Ops(sub) => {
                self.ops += sub.ops.len();
                self.subs.push(sub);
            }
            Job::Flush(done) => self.flushes.push(FlushWait {
                done,
                ahead: self.subs.len(),
            }),
        }
    }

    /// After a round that completed `completed` submissions: answers the
    /// flushes that have nothing ahead any more, or, when write-back kept
    /// `Some(unwritten)` ops for a retry, every flush with an error (a
    /// flush reports; it does not wait for Redis to come back).
    pub(super) fn answer_flushes(&mut self, completed: usize, unwritten: Option<usize>) {
        if let Some(n) = unwritten {
            for f in self.flushes.drain(..) {
                let _ = f.done.send(Err(StoreError::Write(format!(
                    "{n} changes could not be written to Redis yet (kept, retrying)"
                ))));
            }
            return;
        }
        let mut i = 0;
        while i < self.flushes.len() {
            let f = &mut self.flushes[i];
            f.ahead = f.ahead.saturating_sub(completed);
            if f.ahead == 0 {
                let f = self.flushes.remove(i);
                let _ = f.done.send(Ok(()));
            } else {
                i += 1;
            }
        }
    }
}

/// Writes `subs` and returns one result per submission.
pub(super) async fn write_batch(
    shared: &Shared,
    link: &mut Link,
    subs: &[Sub],
) -> Vec<Result<(), String>> {
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(u64::MAX);
    // Encode once: the same bytes are the stored value and the feed op.
    let mut encoded: Vec<Vec<Vec<u8>>> = Vec::with_capacity(subs.len());
    for sub in subs {
        let mut one = Vec::with_capacity(sub.ops.len());
        for op in &sub.ops {
            match encode_op(op) {
                Ok(bytes) => one.push(bytes),
                Err(e) => return vec![Err(e); subs.len()],
            }
        }
        encoded.push(one);
    }
    // One retry on a fresh connection when the old one turned out to be
    // dead (Redis restarted): the ops are idempotent.
    for attempt in 0..2 {
        let fresh = link.conn.is_none();
        let conn = match link.get().await {
            Ok(c) => c,
            Err(e) => return vec![Err(e); subs.len()],
        };
        let result = if link.is_cluster() {
            write_cluster(shared, conn, subs, &encoded, now_ms).await
        } else {
            write_single(shared, conn, subs, &encoded, now_ms)
                .await
                .map(|()| vec![Ok(()); subs.len()])
        };
        match result {
            Ok(per_sub) => return per_sub,
            Err(e) => {
                if link.failed(&e) && !fresh && attempt == 0 {
                    continue;
                }
                return vec![Err(e.to_string()); subs.len()];
            }
        }
    }
    vec![Err("Redis write failed".into()); subs.len()]
}

/// Deadlines beyond this (ms) are kept without a TTL (year ≈ 285,000).
pub(super) const MAX_PXAT_MS: u64 = 1 << 53;

/// Adds the command that makes `op` so in Redis.
pub(super) fn add_op(p: &mut redis::Pipeline, op: &StoreOp, value: &[u8], now_ms: u64) {
    match op {
        StoreOp::Upsert { aor, binding } => {
            let key = binding_key(aor, &binding.ruid().to_string());
            let deadline_ms = binding
                .expires_at
                .checked_mul(1000)
                .filter(|&ms| !binding.is_permanent() && ms <= MAX_PXAT_MS);
            match deadline_ms {
                // Permanent: no TTL.
                None => {
                    p.cmd("SET").arg(key).arg(value).ignore();
                }
                Some(ms) if ms <= now_ms => {
                    p.cmd("DEL").arg(key).ignore();
                }
                Some(ms) => {
                    p.cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PXAT")
                        .arg(ms)
                        .ignore();
                }
            }
        }
        StoreOp::Delete { aor, ruid } => {
            p.cmd("DEL").arg(binding_key(aor, ruid)).ignore();
        }
    }
}

pub(super) fn add_feed(p: &mut redis::Pipeline, node: &str, ops: &[&[u8]]) {
    for chunk in ops.chunks(FEED_CHUNK) {
        p.cmd("PUBLISH")
            .arg(FEED_CHANNEL)
            .arg(encode_feed(node, chunk))
            .ignore();
    }
}

/// One server: the whole batch and its feed messages in one `MULTI`, so
/// other nodes hear of exactly what was written.
pub(super) async fn write_single(
    shared: &Shared,
    mut conn: Conn,
    subs: &[Sub],
    encoded: &[Vec<Vec<u8>>],
    now_ms: u64,
) -> Result<(), RedisError> {
    let mut p = redis::pipe();
    p.atomic();
    let mut feed: Vec<&[u8]> = Vec::new();
    for (sub, values) in subs.iter().zip(encoded) {
        for (op, value) in sub.ops.iter().zip(values) {
            add_op(&mut p, op, value, now_ms);
            feed.push(value);
        }
    }
    add_feed(&mut p, &shared.node, &feed);
    p.exec_async(&mut conn).await
}

/// A cluster: one `MULTI` per AoR (its keys share a slot), all AoRs
/// concurrently, then the feed for the ops that were written.
pub(super) async fn write_cluster(
    shared: &Shared,
    conn: Conn,
    subs: &[Sub],
    encoded: &[Vec<Vec<u8>>],
    now_ms: u64,
) -> Result<Vec<Result<(), String>>, RedisError> {
    // AoR → (sub, op) indices, in order.
    let mut groups: Vec<(&str, Vec<(usize, usize)>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (si, sub) in subs.iter().enumerate() {
        for (oi, op) in sub.ops.iter().enumerate() {
            let aor: &str = match op {
                StoreOp::Upsert { aor, .. } | StoreOp::Delete { aor, .. } => aor,
            };
            let g = *index.entry(aor).or_insert_with(|| {
                groups.push((aor, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push((si, oi));
        }
    }
    let writes = groups.iter().map(|(_, members)| {
        let mut conn = conn.clone();
        let mut p = redis::pipe();
        p.atomic();
        for &(si, oi) in members {
            add_op(&mut p, &subs[si].ops[oi], &encoded[si][oi], now_ms);
        }
        async move { p.exec_async(&mut conn).await }
    });
    let outcomes = futures_util::future::join_all(writes).await;
    let mut per_sub: Vec<Result<(), String>> = vec![Ok(()); subs.len()];
    let mut written = vec![true; subs.len()];
    let mut first_conn_error = None;
    for ((_, members), outcome) in groups.iter().zip(outcomes) {
        if let Err(e) = outcome {
            for &(si, _) in members {
                written[si] = false;
                per_sub[si] = Err(e.to_string());
            }
            if is_connection_error(&e) && first_conn_error.is_none() {
                first_conn_error = Some(e);
            }
        }
    }
    if let Some(e) = first_conn_error {
        if written.iter().all(|w| !w) {
            return Err(e);
        }
    }
    let feed: Vec<&[u8]> = subs
        .iter()
        .enumerate()
        .filter(|(si, _)| written[*si])
        .flat_map(|(si, _)| encoded[si].iter().map(Vec::as_slice))
        .collect();
    if !feed.is_empty() {
        let mut p = redis::pipe();
        add_feed(&mut p, &shared.node, &feed);
        let mut conn = conn;
        if let Err(e) = p.exec_async(&mut conn).await {
            // Stored, but the other nodes did not hear of it: report a
            // failure (the UA retries, and its refresh is published).
            let msg = format!("stored, but publishing the change failed: {e}");
            for (si, w) in written.iter().enumerate() {
                if *w {
                    per_sub[si] = Err(msg.clone());
                }
            }
        }
    }
    Ok(per_sub)
}
