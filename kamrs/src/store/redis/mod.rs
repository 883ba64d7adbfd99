//! The Redis location store (docs/design.md §7; the design and its reasons are in
//! `docs/store-redis.md`): several kamrs nodes share one Redis (or Redis
//! Cluster), each keeping the whole table in memory as usual.
//!
//! - **Keys**: one per binding, `kamrs:loc:{AOR}:RUID` (AoR and ruid
//!   escaped, see [`binding_key`]), holding the binding in MessagePack
//!   ([`encode_op`]), with `PXAT` = its expiry, so Redis drops it when it
//!   expires even if every node is dead. The `{AOR}` hash tag keeps an
//!   AoR's bindings in one Cluster slot, so one AoR's ops are one `MULTI`.
//! - **Writes**: one writer task drains the queue and sends everything
//!   queued as one pipeline (group commit); write-through commits resolve
//!   when Redis acknowledged it, write-back ones within
//!   `write_back_interval`, and failed write-back batches are retried.
//! - **Change feed**: each batch is also `PUBLISH`ed on [`FEED_CHANNEL`]
//!   (inside the same `MULTI` on a single Redis), tagged with the writer's
//!   node id. Every node hands the others' messages to its table over the
//!   change channel (`Loading::remote`); usrloc applies them without
//!   journaling, so nothing echoes.
//! - **Re-sync**: pub/sub drops messages while a node is disconnected, so
//!   after every (re)subscription, and after writes recover from a failure,
//!   a node reads every key by `SCAN` and makes its table match, skipping
//!   the AoRs it changed itself meanwhile. Start-up (`load`) is the
//!   same: subscribe first, then `SCAN`, then apply what arrived.
//!
//! Errors never panic: a write that fails fails its commits (a 500 in
//! write-through), is logged at most every few seconds, and the connection
//! is re-made with backoff; data read back that cannot be decoded is
//! skipped with a warning.

mod codec;
mod conn;
mod feed;
mod keys;
mod log;
mod read;
mod writer;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use crate::timing::Latency;
pub use codec::*;
use conn::*;
use feed::*;
pub use keys::*;
use log::*;
use read::*;
use writer::*;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use super::{
    Batch, Commit, DbCounts, Loading, Remote, Store, StoreError, StoreFuture, StoreMode, StoreOp,
};
use crate::peer::Proto;
use crate::usrloc::{Binding, Parts, Ruid, Source, PERMANENT};
use crate::util::lock;

/// Every key kamrs writes starts with this.
pub const KEY_PREFIX: &str = "kamrs:loc:";
/// The pub/sub channel of the change feed.
pub const FEED_CHANNEL: &str = "kamrs:loc:feed";
/// `SCAN MATCH` pattern of the binding keys.
const KEY_PATTERN: &str = "kamrs:loc:{*";
/// A key with no TTL that says "this Redis holds kamrs's table". Written
/// at start when missing; found missing at a re-sync, it means Redis lost
/// its data (restarted without persistence, or flushed), and the nodes put
/// back what they hold instead of copying the empty set (which would
/// forget every phone until it re-registers). Outside `KEY_PATTERN`, so
/// scans never read it as a binding.
pub const EPOCH_KEY: &str = "kamrs:epoch";

/// First byte of a stored value / feed op: the format version.
const VALUE_V1: u8 = 1;
/// First byte of a feed message.
const FEED_V1: u8 = 1;

/// Most ops written in one round trip.
const MAX_BATCH: usize = 2048;
/// Most ops in one feed message (keeps messages well under pub/sub
/// output-buffer limits).
const FEED_CHUNK: usize = 256;
/// Other nodes' changes waiting for the table to apply them; past this
/// the follower stops reading the feed (Redis buffers it meanwhile).
const REMOTE_QUEUE: usize = 1024;
/// Keys asked for per `SCAN` step (and read per `MGET`).
const SCAN_COUNT: usize = 1000;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often the feed connection is pinged to notice a silent loss.
const FEED_PING_EVERY: Duration = Duration::from_secs(5);
/// Shortest interval between two error lines of the same kind, seconds.
const LOG_EVERY: u64 = 10;

// --------------------------------------------------------------- settings

/// How to reach Redis and how to write.
#[derive(Debug, Clone)]
pub struct Settings {
    /// One URL, or several comma-separated seed nodes of a Redis Cluster.
    pub url: String,
    pub mode: StoreMode,
    pub write_back_interval: Duration,
    pub queue_size: usize,
}

/// `host:port` (or the socket path) of a URL's address, for logs: never
/// the password.
fn describe(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (tls)"),
        ConnectionAddr::Unix(path) => path.display().to_string(),
        other => format!("{other:?}"),
    }
}

// ------------------------------------------------------------------ store

/// One `submit` waiting in the writer: its ops and who waits for them.
struct Sub {
    ops: Vec<StoreOp>,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
}

enum Job {
    Ops(Sub),
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

struct Shared {
    target: Target,
    /// Tags this process's feed messages, so it skips its own.
    node: Box<str>,
    /// Where, for logs (no password).
    place: String,
    mode: StoreMode,
    queue_size: usize,
    write_back_interval: Duration,
    /// Ops submitted and not yet written (or given up).
    queued: AtomicUsize,
    /// While a re-sync runs: the AoRs this node changed since it began,
    /// which the re-sync must not overwrite with what it read.
    tracking: Mutex<Option<HashSet<Arc<str>>>>,
    /// The value of [`EPOCH_KEY`] this node last saw. Missing or different
    /// at a re-sync means Redis lost its data since: another node that
    /// started meanwhile against the emptied Redis may already have
    /// written a new marker, so its mere presence proves nothing.
    epoch: Mutex<String>,
    /// The writer recovered from a failure: the follower should re-sync.
    resync_wanted: Notify,
    following: AtomicBool,
    write_log: LogLimiter,
    overload_log: LogLimiter,
    feed_log: LogLimiter,
    bad_data_log: LogLimiter,
    /// How long writes of batches took, failed ones included.
    commit: Latency,
}

/// The Redis store. Open with [`RedisStore::open`]; `load` hands out what
/// Redis holds and from then on the other nodes' changes.
pub struct RedisStore {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl RedisStore {
    /// Parses the URL(s), checks that Redis answers and what it is (single
    /// server or cluster, version ≥ 6.2 for `SET … PXAT`), and starts the
    /// writer. Fails when Redis cannot be reached: a node that started
    /// without its shared table would answer queries wrongly.
    pub async fn open(settings: Settings) -> Result<RedisStore, String> {
        let mut seeds = Vec::new();
        for url in settings
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let info = url
                .into_connection_info()
                .map_err(|e| format!("bad Redis URL {:?}: {e}", redact(url)))?;
            if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
                return Err(format!(
                    "{:?}: rediss:// (TLS) is not supported by this build; use a TLS tunnel or redis://",
                    redact(url)
                ));
            }
            seeds.push(info);
        }
        let first = seeds.first().cloned().ok_or("no Redis URL given")?;
        let place = seeds.iter().map(describe).collect::<Vec<_>>().join(",");

        // Probe the first seed that answers.
        let mut probe_err = String::new();
        let mut info_text = None;
        for seed in &seeds {
            match probe(seed).await {
                Ok(text) => {
                    info_text = Some(text);
                    break;
                }
                Err(e) => probe_err = format!("{}: {e}", describe(seed)),
            }
        }
        let info_text = info_text.ok_or_else(|| format!("Redis is unreachable ({probe_err})"))?;
        let version = info_field(&info_text, "redis_version").unwrap_or("0");
        if !version_at_least(version, (6, 2)) {
            return Err(format!(
                "Redis {version} at {place} is too old: 6.2 or newer is needed (SET … PXAT)"
            ));
        }
        let cluster = info_field(&info_text, "cluster_enabled") == Some("1");
        let target = if cluster {
            let client = ClusterClient::builder(seeds.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(2)
                .build()
                .map_err(|e| format!("cannot set up the Redis Cluster client: {e}"))?;
            Target::Cluster {
                client: Box::new(client),
                seeds,
            }
        } else {
            if seeds.len() > 1 {
                return Err(format!(
                    "several Redis URLs given ({place}), but {} is not a Redis Cluster node",
                    describe(&first)
                ));
            }
            let client = redis::Client::open(first).map_err(|e| format!("bad Redis URL: {e}"))?;
            Target::Single(client)
        };
        // The writer's connection: made now so a wrong password or db shows
        // up at start, not on the first REGISTER.
        let mut link = Link::new(target.clone());
        let mut conn = link.get().await?;

        let mut id = [0u8; 8];
        fill_random(&mut id);
        let node: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let epoch = mark_epoch(&mut conn, &node)
            .await
            .map_err(|e| format!("cannot write {EPOCH_KEY} to Redis at {place}: {e}"))?;
        tracing::info!(
            "redis store: {} {place}, Redis {version}, node id {node}, {}",
            if cluster { "cluster" } else { "server" },
            settings.mode
        );
        let shared = Arc::new(Shared {
            target,
            node: node.into(),
            place,
            mode: settings.mode,
            queue_size: settings.queue_size.max(1),
            write_back_interval: settings.write_back_interval,
            queued: AtomicUsize::new(0),
            tracking: Mutex::new(None),
            epoch: Mutex::new(epoch),
            resync_wanted: Notify::new(),
            following: AtomicBool::new(false),
            write_log: LogLimiter::default(),
            overload_log: LogLimiter::default(),
            feed_log: LogLimiter::default(),
            bad_data_log: LogLimiter::default(),
            commit: Latency::new(&crate::timing::STORE_COMMIT),
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(Arc::clone(&shared), link, rx));
        Ok(RedisStore { shared, jobs })
    }

    /// This process's node id (tags its feed messages).
    pub fn node_id(&self) -> &str {
        &self.shared.node
    }

    /// Whether Redis is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.shared.target, Target::Cluster { .. })
    }
}

/// `redis://:secret@host` → `redis://***@host`, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Random bytes without a crate: std's hasher keys are seeded from the OS.
fn fill_random(out: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// `INFO server` + `INFO cluster` of one node.
async fn probe(info: &ConnectionInfo) -> Result<String, String> {
    let client = redis::Client::open(info.clone()).map_err(|e| e.to_string())?;
    let mut conn = match tokio::time::timeout(
        CONNECT_TIMEOUT * 3,
        client.get_multiplexed_async_connection_with_config(&connection_config()),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connect timed out".into()),
    };
    let server: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let cluster: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("{server}\r\n{cluster}"))
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    v >= (major, minor)
}

impl Store for RedisStore {
    fn submit(&self, ops: Vec<StoreOp>) -> Commit {
        if ops.is_empty() {
            return Commit::ready(Ok(()));
        }
        let shared = &self.shared;
        let n = ops.len();
        if !super::queue::try_reserve(&shared.queued, n, shared.queue_size) {
            if let Some(more) = allow(&shared.overload_log) {
                tracing::error!(
                    "redis store: {} changes queued, refusing more until Redis catches up{}",
                    shared.queue_size,
                    suppressed(more)
                );
            }
            return Commit::ready(Err(StoreError::Overloaded));
        }
        let (done, commit) = Commit::pending();
        // Under the tracking lock, so a re-sync's flush barrier is either
        // behind this job or sees its AoR as changed.
        let mut tracking = lock(&shared.tracking);
        if let Some(set) = tracking.as_mut() {
            for op in &ops {
                let aor = match op {
                    StoreOp::Upsert { aor, .. } | StoreOp::Delete { aor, .. } => aor,
                };
                if !set.contains(aor) {
                    set.insert(Arc::clone(aor));
                }
            }
        }
        let sent = self.jobs.send(Job::Ops(Sub {
            ops,
            done: Some(done),
        }));
        drop(tracking);
        if sent.is_err() {
            shared.queued.fetch_sub(n, Ordering::AcqRel);
            return Commit::ready(Err(StoreError::Closed));
        }
        commit
    }

    fn flush(&self) -> Commit {
        let (done, commit) = Commit::pending();
        match self.jobs.send(Job::Flush(done)) {
            Ok(()) => commit,
            Err(_) => Commit::ready(Err(StoreError::Closed)),
        }
    }

    fn mode(&self) -> StoreMode {
        self.shared.mode
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn commit_time(&self) -> Option<&Latency> {
        Some(&self.shared.commit)
    }

    /// Subscribes to the change feed, reads every binding by `SCAN`, and
    /// from then on hands out the other nodes' changes (once per store; a
    /// second call only reads).
    fn load(&self, _now: u64) -> StoreFuture<'_, Loading> {
        let shared = Arc::clone(&self.shared);
        let jobs = self.jobs.clone();
        Box::pin(async move {
            let follow = !shared.following.swap(true, Ordering::AcqRel);
            // Subscribe before reading, so no change falls in between.
            let feed = if follow {
                match subscribe(&shared).await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        shared.following.store(false, Ordering::Release);
                        return Err(StoreError::Read(format!(
                            "cannot subscribe to the change feed: {e}"
                        )));
                    }
                }
            } else {
                None
            };
            let mut link = Link::new(shared.target.clone());
            let stored = match scan_all(&shared, &mut link).await {
                Ok(r) => r,
                Err(e) => {
                    if feed.is_some() {
                        shared.following.store(false, Ordering::Release);
                    }
                    return Err(StoreError::Read(e));
                }
            };
            // Already in memory: handed over in batches the channel holds
            // all of, so nothing waits for the reader.
            let mut batches: Vec<Batch> = Vec::new();
            let mut batch = Vec::with_capacity(MAX_BATCH);
            for (aor, bindings) in stored {
                for b in bindings {
                    batch.push((Arc::clone(&aor), b));
                    if batch.len() >= MAX_BATCH {
                        batches.push(std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH)));
                    }
                }
            }
            if !batch.is_empty() {
                batches.push(batch);
            }
            let (tx, bindings) = mpsc::channel(batches.len().max(1));
            for b in batches {
                // Cannot fail: the channel has room for every batch and
                // its receiver is still here.
                let _ = tx.try_send(Ok(b));
            }
            let remote = feed.map(|feed| {
                let (changes, remote) = mpsc::channel(REMOTE_QUEUE);
                tokio::spawn(follower(shared, jobs, changes, link, feed));
                remote
            });
            Ok(Loading { bindings, remote })
        })
    }

    /// Keys and distinct AoRs by `SCAN`. Redis never returns an expired
    /// key, so there are no expired contacts to count.
    fn counts(&self, _now: u64) -> StoreFuture<'_, DbCounts> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let mut link = Link::new(shared.target.clone());
            let mut aors = HashSet::new();
            let mut contacts = 0u64;
            let mut scan = Scanner::new(&mut link).await.map_err(StoreError::Read)?;
            loop {
                match scan.next().await {
                    Ok(Some(keys)) => {
                        for aor in keys.iter().filter_map(|k| aor_of_key(k)) {
                            contacts += 1;
                            aors.insert(aor);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(StoreError::Read(e.into_message(&mut link))),
                }
            }
            Ok(DbCounts {
                users: aors.len() as u64,
                contacts,
                expired_contacts: 0,
            })
        })
    }
}
