//! The change feed: subscribing, following the other nodes' changes,
//! re-syncing after a gap, the epoch marker and republishing.

use super::*;

pub(super) type Feed = (PubSubSink, PubSubStream);

/// Subscribes to the feed: on the server, or on the first cluster node
/// that answers (a classic `PUBLISH` reaches every node's subscribers).
pub(super) async fn subscribe(shared: &Shared) -> Result<Feed, String> {
    let candidates: Vec<ConnectionInfo> = match &shared.target {
        Target::Single(client) => vec![client.get_connection_info().clone()],
        Target::Cluster { client, seeds } => {
            let mut all = seeds.clone();
            // Nodes found since start, in case the seeds are gone.
            if let Ok(mut c) = client.get_async_connection().await {
                if let (Some(base), Ok(masters)) = (seeds.first(), cluster_masters(&mut c).await) {
                    for (host, port) in masters {
                        all.push(base.clone().set_addr(ConnectionAddr::Tcp(host, port)));
                    }
                }
            }
            all
        }
    };
    let mut last = String::from("no node to subscribe on");
    for info in candidates {
        let place = describe(&info);
        let attempt = async {
            let client = redis::Client::open(info).map_err(|e| e.to_string())?;
            let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
            pubsub
                .subscribe(FEED_CHANNEL)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(pubsub.split())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 3, attempt).await {
            Ok(Ok(feed)) => return Ok(feed),
            Ok(Err(e)) => last = format!("{place}: {e}"),
            Err(_) => last = format!("{place}: timed out"),
        }
    }
    Err(last)
}

/// Keeps `table` in step with the other nodes: applies feed messages, and
/// re-syncs after re-subscribing (messages were lost meanwhile) or when
/// the writer recovered. Runs for the life of the process.
pub(super) async fn follower(
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    table: Arc<LocationTable>,
    mut link: Link,
    feed: Feed,
) {
    let mut feed = Some(feed);
    let mut backoff = BACKOFF_MIN;
    loop {
        let (mut sink, mut stream) = match feed.take() {
            Some(f) => f,
            None => {
                let f = match subscribe(&shared).await {
                    Ok(f) => f,
                    Err(e) => {
                        if let Some(more) = shared.feed_log.allow() {
                            tracing::error!(
                                "redis store: change feed on {} unavailable: {e}; retrying{}",
                                shared.place,
                                suppressed(more)
                            );
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                };
                // Messages may have been lost while unsubscribed.
                if let Err(e) = resync(&shared, &jobs, &table, &mut link).await {
                    if let Some(more) = shared.feed_log.allow() {
                        tracing::error!(
                            "redis store: re-sync from {} failed: {e}; retrying{}",
                            shared.place,
                            suppressed(more)
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
                tracing::info!(
                    "redis store: change feed on {} subscribed again, table re-synced",
                    shared.place
                );
                f
            }
        };
        backoff = BACKOFF_MIN;
        let mut ping = tokio::time::interval_at(Instant::now() + FEED_PING_EVERY, FEED_PING_EVERY);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => apply_feed(&shared, &table, msg.get_payload_bytes()),
                    None => {
                        warn_feed_lost(&shared, "connection closed");
                        break;
                    }
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(RESPONSE_TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => { warn_feed_lost(&shared, &e.to_string()); break; }
                        Err(_) => { warn_feed_lost(&shared, "ping timed out"); break; }
                    }
                },
                () = shared.resync_wanted.notified() => {
                    // Messages keep queueing in the stream meanwhile and are
                    // applied after, in order.
                    if let Err(e) = resync(&shared, &jobs, &table, &mut link).await {
                        if let Some(more) = shared.feed_log.allow() {
                            tracing::error!("redis store: re-sync from {} failed: {e}{}", shared.place, suppressed(more));
                        }
                        // Try again through a fresh subscription.
                        break;
                    }
                    tracing::info!("redis store: table re-synced from {}", shared.place);
                },
            }
        }
    }
}

pub(super) fn warn_feed_lost(shared: &Shared, why: &str) {
    if let Some(more) = shared.feed_log.allow() {
        tracing::warn!(
            "redis store: change feed on {} lost ({why}); reconnecting{}",
            shared.place,
            suppressed(more)
        );
    }
}

/// Applies one feed message unless this node sent it.
pub(super) fn apply_feed(shared: &Shared, table: &LocationTable, msg: &[u8]) {
    let (node, ops) = match decode_feed(msg) {
        Ok(x) => x,
        Err(e) => return bad_message(shared, &e),
    };
    if node == &*shared.node {
        return;
    }
    let now = unix_now();
    for op in ops {
        match decode_op(op) {
            Ok(Decoded::Upsert { aor, binding }) => {
                table.apply_remote_upsert(&aor, binding, now);
            }
            Ok(Decoded::Delete { aor, ruid }) => {
                table.apply_remote_delete(&aor, &ruid, now);
            }
            Err(e) => bad_message(shared, &e),
        }
    }
}

pub(super) fn bad_message(shared: &Shared, why: &str) {
    if let Some(more) = shared.bad_data_log.allow() {
        tracing::warn!(
            "redis store: skipping a change-feed message: {why}{}",
            suppressed(more)
        );
    }
}

/// Makes `table` match Redis. Local changes not yet written are first
/// flushed (a barrier through the writer), and AoRs changed locally while
/// the re-sync runs are left alone: their writes and feed messages are
/// newer than what the scan read.
pub(super) async fn resync(
    shared: &Shared,
    jobs: &mpsc::UnboundedSender<Job>,
    table: &LocationTable,
    link: &mut Link,
) -> Result<(), String> {
    let barrier = {
        let mut tracking = lock(&shared.tracking);
        *tracking = Some(HashSet::new());
        let (tx, rx) = oneshot::channel();
        jobs.send(Job::Flush(tx))
            .map_err(|_| "the store is shut down".to_owned())?;
        rx
    };
    let result = async {
        match barrier.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("cannot write pending changes first: {e}")),
            Err(_) => return Err("the store is shut down".to_owned()),
        }
        let seen = lock(&shared.epoch).clone();
        if read_epoch(link).await?.as_deref() != Some(seen.as_str()) {
            let n = republish(shared, jobs, table).await?;
            let mut conn = link.get().await?;
            let now_marked = mark_epoch(&mut conn, &shared.node)
                .await
                .map_err(|e| format!("cannot write {EPOCH_KEY}: {e}"))?;
            *lock(&shared.epoch) = now_marked;
            tracing::error!(
                "redis store: Redis at {} lost its data (restarted without persistence, or flushed): wrote back the {n} bindings this node holds; changes made on other nodes while Redis was down may be missing until their phones re-register. Turn on Redis persistence (appendonly yes) to avoid this",
                shared.place
            );
        }
        let remote = scan_all(shared, link).await?;
        let now = unix_now();
        let changed_here = |aor: &str| {
            lock(&shared.tracking)
                .as_ref()
                .is_some_and(|s| s.contains(aor))
        };
        let mut changed = 0usize;
        for (aor, bindings) in &remote {
            if table.apply_remote_replace(aor, bindings.clone(), now, || !changed_here(aor)) {
                changed += 1;
            }
        }
        for aor in table.aors() {
            if !remote.contains_key(&aor)
                && table.apply_remote_replace(&aor, Vec::new(), now, || !changed_here(&aor))
            {
                changed += 1;
            }
        }
        tracing::debug!(
            "redis store: re-sync read {} AoRs, changed {changed}",
            remote.len()
        );
        Ok(())
    }
    .await;
    *lock(&shared.tracking) = None;
    result
}

/// Writes [`EPOCH_KEY`] with a fresh random value unless it is there
/// (`SET NX`, no TTL), and returns the value it holds then.
pub(super) async fn mark_epoch(conn: &mut Conn, node: &str) -> Result<String, RedisError> {
    let mut random = [0u8; 8];
    fill_random(&mut random);
    let value: String = format!("{node}-{}", crate::util::hex(&random));
    let (_, held): (Option<String>, Option<String>) = redis::pipe()
        .cmd("SET")
        .arg(EPOCH_KEY)
        .arg(&value)
        .arg("NX")
        .cmd("GET")
        .arg(EPOCH_KEY)
        .query_async(conn)
        .await?;
    Ok(held.unwrap_or(value))
}

/// The value of [`EPOCH_KEY`], None when Redis no longer has it.
pub(super) async fn read_epoch(link: &mut Link) -> Result<Option<String>, String> {
    let mut conn = link.get().await?;
    let found: Result<Option<String>, RedisError> = redis::cmd("GET")
        .arg(EPOCH_KEY)
        .query_async(&mut conn)
        .await;
    found.map_err(|e| {
        link.failed(&e);
        format!("cannot read {EPOCH_KEY}: {e}")
    })
}

/// Queues every live binding of `table` for writing (through the writer,
/// so they reach the other nodes' feeds too) and waits until they are
/// written. Upserts by ruid are idempotent, so several nodes doing this at
/// once after the same loss is harmless. Returns how many were written.
pub(super) async fn republish(
    shared: &Shared,
    jobs: &mpsc::UnboundedSender<Job>,
    table: &LocationTable,
) -> Result<usize, String> {
    let now = unix_now();
    let mut written = 0usize;
    let mut ops = Vec::with_capacity(MAX_BATCH);
    let aors = table.aors();
    let mut waits = Vec::new();
    for (i, aor) in aors.iter().enumerate() {
        for binding in table.lookup(aor, now).unwrap_or_default() {
            ops.push(StoreOp::Upsert {
                aor: Arc::clone(aor),
                binding,
            });
        }
        if ops.len() >= MAX_BATCH || (i + 1 == aors.len() && !ops.is_empty()) {
            let batch = std::mem::replace(&mut ops, Vec::with_capacity(MAX_BATCH));
            written += batch.len();
            // Counted like any submission, so the writer's accounting
            // holds; not refused at the queue limit, since these replace
            // data Redis lost and the queue drains as they are written.
            shared.queued.fetch_add(batch.len(), Ordering::AcqRel);
            let (tx, rx) = oneshot::channel();
            jobs.send(Job::Ops(Sub {
                ops: batch,
                done: Some(tx),
            }))
            .map_err(|_| "the store is shut down".to_owned())?;
            waits.push(rx);
        }
    }
    for rx in waits {
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("cannot write the bindings back: {e}")),
            Err(_) => return Err("the store is shut down".to_owned()),
        }
    }
    Ok(written)
}
