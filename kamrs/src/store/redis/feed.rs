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

/// Keeps the table in step with the other nodes: hands their feed
/// messages to it over `table` (usrloc applies them), and re-syncs after
/// re-subscribing (messages were lost meanwhile) or when the writer
/// recovered. Runs until the table stops listening.
pub(super) async fn follower(
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    table: mpsc::Sender<Remote>,
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
                        if let Some(more) = allow(&shared.feed_log) {
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
                    if e == TABLE_GONE {
                        return; // the process is stopping
                    }
                    if let Some(more) = allow(&shared.feed_log) {
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
                    Some(msg) => {
                        if apply_feed(&shared, &table, msg.get_payload_bytes()).await.is_err() {
                            return; // the table is gone: the process is stopping
                        }
                    }
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
                        if e == TABLE_GONE {
                            return; // the process is stopping
                        }
                        if let Some(more) = allow(&shared.feed_log) {
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
    if let Some(more) = allow(&shared.feed_log) {
        tracing::warn!(
            "redis store: change feed on {} lost ({why}); reconnecting{}",
            shared.place,
            suppressed(more)
        );
    }
}

/// Hands the changes of one feed message to the table, unless this node
/// sent it. Errs only when the table no longer listens.
pub(super) async fn apply_feed(
    shared: &Shared,
    table: &mpsc::Sender<Remote>,
    msg: &[u8],
) -> Result<(), TableGone> {
    let (node, ops) = match decode_feed(msg) {
        Ok(x) => x,
        Err(e) => {
            bad_message(shared, &e);
            return Ok(());
        }
    };
    if node == &*shared.node {
        return Ok(());
    }
    for op in ops {
        let op = match decode_op(op) {
            Ok(Decoded::Upsert { aor, binding }) => StoreOp::Upsert {
                aor: Arc::from(aor),
                binding,
            },
            Ok(Decoded::Delete { aor, ruid }) => StoreOp::Delete {
                aor: Arc::from(aor),
                ruid: ruid.into_boxed_str(),
            },
            Err(e) => {
                bad_message(shared, &e);
                continue;
            }
        };
        table.send(Remote::Op(op)).await.map_err(|_| TableGone)?;
    }
    Ok(())
}

/// The table's end of the change channel is closed.
#[derive(Debug)]
pub(super) struct TableGone;

pub(super) fn bad_message(shared: &Shared, why: &str) {
    if let Some(more) = allow(&shared.bad_data_log) {
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
    shared: &Arc<Shared>,
    jobs: &mpsc::UnboundedSender<Job>,
    table: &mpsc::Sender<Remote>,
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
        let aors = remote.len();
        let tracked = Arc::clone(shared);
        let changed_here = Box::new(move |aor: &str| {
            lock(&tracked.tracking)
                .as_ref()
                .is_some_and(|s| s.contains(aor))
        });
        let (done, changed) = oneshot::channel();
        table
            .send(Remote::Replace {
                all: remote,
                changed_here,
                done,
            })
            .await
            .map_err(|_| TABLE_GONE.to_owned())?;
        // Tracking stays on until the table has applied it.
        let changed = changed.await.map_err(|_| TABLE_GONE.to_owned())?;
        tracing::debug!(
            "redis store: re-sync read {aors} AoRs, changed {changed}"
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

const TABLE_GONE: &str = "the location table is shut down";

/// Queues every live binding of the table for writing (through the
/// writer, so they reach the other nodes' feeds too) and waits until they
/// are written. Upserts by ruid are idempotent, so several nodes doing
/// this at once after the same loss is harmless. Returns how many were
/// written.
pub(super) async fn republish(
    shared: &Shared,
    jobs: &mpsc::UnboundedSender<Job>,
    table: &mpsc::Sender<Remote>,
) -> Result<usize, String> {
    let (to, mut batches) = mpsc::channel(4);
    table
        .send(Remote::Dump {
            batch: MAX_BATCH,
            to,
        })
        .await
        .map_err(|_| TABLE_GONE.to_owned())?;
    let mut written = 0usize;
    let mut waits = Vec::new();
    while let Some(batch) = batches.recv().await {
        written += batch.len();
        // Counted like any submission, so the writer's accounting holds;
        // not refused at the queue limit, since these replace data Redis
        // lost and the queue drains as they are written.
        shared.queued.fetch_add(batch.len(), Ordering::AcqRel);
        let (tx, rx) = oneshot::channel();
        jobs.send(Job::Ops(Sub {
            ops: batch,
            done: Some(tx),
        }))
        .map_err(|_| "the store is shut down".to_owned())?;
        waits.push(rx);
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
