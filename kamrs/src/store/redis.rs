//! The Redis location store (DESIGN §7; the design and its reasons are in
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
//!   node id. Every node applies the others' messages to its table with the
//!   table's non-journaling `apply_remote_*` methods, so nothing echoes.
//! - **Re-sync**: pub/sub drops messages while a node is disconnected, so
//!   after every (re)subscription, and after writes recover from a failure,
//!   a node reads every key by `SCAN` and makes its table match, skipping
//!   the AoRs it changed itself meanwhile. Start-up (`load_into`) is the
//!   same: subscribe first, then `SCAN`, then apply what arrived.
//!
//! Errors never panic: a write that fails fails its commits (a 500 in
//! write-through), is logged at most every few seconds, and the connection
//! is re-made with backoff; data read back that cannot be decoded is
//! skipped with a warning.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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

use super::{Commit, DbCounts, Store, StoreError, StoreFuture, StoreMode, StoreOp};
use crate::peer::Proto;
use crate::usrloc::{unix_now, Binding, LocationTable, Parts, Ruid, Source, PERMANENT};

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
/// Keys asked for per `SCAN` step (and read per `MGET`).
const SCAN_COUNT: usize = 1000;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often the feed connection is pinged to notice a silent loss.
const FEED_PING_EVERY: Duration = Duration::from_secs(5);
/// Shortest interval between two error lines of the same kind.
const LOG_EVERY: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ keys

/// Bytes escaped in key parts: `%` (the escape itself), the hash-tag braces,
/// the `:` separator, glob metacharacters (so a part can be used in a
/// `MATCH` pattern), and controls and spaces (readable `redis-cli` output).
fn must_escape(b: u8) -> bool {
    matches!(
        b,
        b'%' | b'{' | b'}' | b':' | b'*' | b'?' | b'[' | b']' | b'\\'
    ) || b <= b' '
        || b == 0x7f
}

/// Percent-escapes `part` onto `out`. An empty part becomes `%` alone,
/// which no non-empty part produces (every escaped `%` is followed by two
/// hex digits), so the mapping stays one-to-one; it also keeps the hash
/// tag non-empty (Redis hashes the whole key when `{}` is empty).
fn escape_into(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('%');
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = part.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if must_escape(b) {
            out.push_str(&part[start..i]);
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
            start = i + 1;
        }
    }
    out.push_str(&part[start..]);
}

/// Reverses [`escape_into`]; None for malformed input.
fn unescape(part: &[u8]) -> Option<String> {
    if part == b"%" {
        return Some(String::new());
    }
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        if part[i] == b'%' {
            let hex = part.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(part[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key of binding `ruid` of `aor`: `kamrs:loc:{AOR}:RUID`, both parts
/// escaped so that no AoR can close the hash tag early or collide with
/// another.
pub fn binding_key(aor: &str, ruid: &str) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + aor.len() + ruid.len() + 4);
    key.push_str(KEY_PREFIX);
    key.push('{');
    escape_into(&mut key, aor);
    key.push_str("}:");
    escape_into(&mut key, ruid);
    key
}

/// The AoR of a binding key, or None if `key` is not one of ours.
pub fn aor_of_key(key: &[u8]) -> Option<String> {
    let rest = key
        .strip_prefix(KEY_PREFIX.as_bytes())?
        .strip_prefix(b"{")?;
    let end = rest.iter().position(|&b| b == b'}')?;
    if rest.get(end + 1) != Some(&b':') {
        return None;
    }
    unescape(&rest[..end])
}

// --------------------------------------------------------- serialization

/// A binding as stored: MessagePack of this struct as an array (field
/// names are not repeated in every value), after a version byte. Fields
/// may only be appended, with `#[serde(default)]`, within one version.
#[derive(Debug, Serialize, Deserialize)]
struct WireBinding<'a> {
    #[serde(borrow)]
    contact: Cow<'a, str>,
    /// Unix seconds; None = permanent.
    expires_at: Option<u64>,
    q: Option<u16>,
    #[serde(borrow)]
    call_id: Cow<'a, str>,
    cseq: u32,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    source: Option<WireSource<'a>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow)]
    instance: Option<Cow<'a, str>>,
    reg_id: u32,
    methods: u32,
    flags: u32,
    cflags: u32,
    last_modified: u64,
}

/// [`Source`]: transport name and both addresses as text (`1.2.3.4:5060`,
/// `[::1]:5060`), which any language can read back.
#[derive(Debug, Serialize, Deserialize)]
struct WireSource<'a> {
    #[serde(borrow)]
    proto: Cow<'a, str>,
    #[serde(borrow)]
    remote: Cow<'a, str>,
    #[serde(borrow)]
    local: Cow<'a, str>,
}

/// A stored value and a feed op alike: an upsert carries the binding, a
/// delete none.
#[derive(Debug, Serialize, Deserialize)]
struct WireOp<'a> {
    #[serde(borrow)]
    aor: Cow<'a, str>,
    #[serde(borrow)]
    ruid: Cow<'a, str>,
    #[serde(borrow)]
    binding: Option<WireBinding<'a>>,
}

/// A change read back from Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Upsert { aor: String, binding: Binding },
    Delete { aor: String, ruid: String },
}

fn proto_named(name: &str) -> Option<Proto> {
    // Matching every variant makes a new transport fail to compile here,
    // as a reminder to list it.
    let known = |p: Proto| match p {
        Proto::Udp | Proto::Tcp => p,
    };
    [known(Proto::Udp), known(Proto::Tcp)]
        .into_iter()
        .find(|p| p.as_str() == name)
}

/// Encodes one op (the value stored under its key for an upsert).
pub fn encode_op(op: &StoreOp) -> Result<Vec<u8>, String> {
    let (aor, ruid, binding) = match op {
        StoreOp::Upsert { aor, binding } => {
            (aor, Cow::Owned(binding.ruid().to_string()), Some(binding))
        }
        StoreOp::Delete { aor, ruid } => (aor, Cow::Borrowed(&**ruid), None),
    };
    let wire = WireOp {
        aor: Cow::Borrowed(aor),
        ruid,
        binding: binding.map(|b| WireBinding {
            contact: Cow::Borrowed(b.contact()),
            expires_at: (b.expires_at != PERMANENT).then_some(b.expires_at),
            q: b.q,
            call_id: Cow::Borrowed(b.call_id()),
            cseq: b.cseq,
            user_agent: b.user_agent.as_deref().map(Cow::Borrowed),
            source: b.source().map(|s| WireSource {
                proto: Cow::Borrowed(s.proto.as_str()),
                remote: Cow::Owned(s.remote.to_string()),
                local: Cow::Owned(s.local.to_string()),
            }),
            path: b.path().map(Cow::Borrowed),
            instance: b.instance().map(Cow::Borrowed),
            reg_id: b.reg_id,
            methods: b.methods,
            flags: b.flags,
            cflags: b.cflags,
            last_modified: b.last_modified,
        }),
    };
    let mut out = Vec::with_capacity(160);
    out.push(VALUE_V1);
    rmp_serde::encode::write(&mut out, &wire)
        .map_err(|e| format!("cannot encode a binding: {e}"))?;
    Ok(out)
}

/// Decodes what [`encode_op`] wrote. Errors say what is wrong, for the
/// warning that skips the value.
pub fn decode_op(bytes: &[u8]) -> Result<Decoded, String> {
    let (&version, body) = bytes.split_first().ok_or("empty value")?;
    if version != VALUE_V1 {
        return Err(format!("unknown format version {version}"));
    }
    let wire: WireOp<'_> =
        rmp_serde::from_slice(body).map_err(|e| format!("bad MessagePack: {e}"))?;
    let Some(b) = wire.binding else {
        return Ok(Decoded::Delete {
            aor: wire.aor.into_owned(),
            ruid: wire.ruid.into_owned(),
        });
    };
    let source = match b.source {
        None => None,
        Some(s) => {
            let proto =
                proto_named(&s.proto).ok_or_else(|| format!("unknown transport {:?}", s.proto))?;
            let remote: SocketAddr = s
                .remote
                .parse()
                .map_err(|_| format!("bad source address {:?}", s.remote))?;
            let local: SocketAddr = s
                .local
                .parse()
                .map_err(|_| format!("bad local address {:?}", s.local))?;
            Some(Source {
                proto,
                remote,
                local,
            })
        }
    };
    let binding = Binding::new(Parts {
        contact: &b.contact,
        expires_at: match b.expires_at {
            None => PERMANENT,
            // u64::MAX is how permanence is written, never a deadline.
            Some(PERMANENT) => return Err("deadline out of range".into()),
            Some(t) => t,
        },
        q: b.q,
        call_id: &b.call_id,
        cseq: b.cseq,
        user_agent: b.user_agent.map(|u| Arc::from(u.as_ref())),
        source,
        path: b.path.as_deref(),
        instance: b.instance.as_deref(),
        reg_id: b.reg_id,
        methods: b.methods,
        flags: b.flags,
        cflags: b.cflags,
        ruid: Ruid::parse(&wire.ruid),
        last_modified: b.last_modified,
    });
    Ok(Decoded::Upsert {
        aor: wire.aor.into_owned(),
        binding,
    })
}

/// A feed message: version byte, then MessagePack `str` (the sending
/// node's id) and an array of `bin`, each an [`encode_op`] value, in the
/// order the ops were made.
fn encode_feed(node: &str, ops: &[&[u8]]) -> Vec<u8> {
    let len: usize = ops.iter().map(|o| o.len() + 5).sum();
    let mut out = Vec::with_capacity(len + node.len() + 16);
    out.push(FEED_V1);
    // Writing into a Vec cannot fail; the lengths fit u32 (bounded batch).
    let _ = rmp::encode::write_str(&mut out, node);
    let _ = rmp::encode::write_array_len(&mut out, u32::try_from(ops.len()).unwrap_or(u32::MAX));
    for op in ops {
        let _ = rmp::encode::write_bin(&mut out, op);
    }
    out
}

/// Splits a feed message into the sender's id and its encoded ops.
fn decode_feed(msg: &[u8]) -> Result<(&str, Vec<&[u8]>), String> {
    let (&version, mut rd) = msg.split_first().ok_or("empty message")?;
    if version != FEED_V1 {
        return Err(format!("unknown feed version {version}"));
    }
    fn take<'a>(rd: &mut &'a [u8], n: u32) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflow")?;
        if rd.len() < n {
            return Err("truncated message".into());
        }
        let (head, tail) = rd.split_at(n);
        *rd = tail;
        Ok(head)
    }
    let n = rmp::decode::read_str_len(&mut rd).map_err(|e| format!("bad node id: {e}"))?;
    let node = std::str::from_utf8(take(&mut rd, n)?).map_err(|_| "node id not UTF-8")?;
    let count = rmp::decode::read_array_len(&mut rd).map_err(|e| format!("bad op list: {e}"))?;
    let mut ops =
        Vec::with_capacity(usize::try_from(count.min(FEED_CHUNK as u32 * 4)).unwrap_or(0));
    for _ in 0..count {
        let n = rmp::decode::read_bin_len(&mut rd).map_err(|e| format!("bad op: {e}"))?;
        ops.push(take(&mut rd, n)?);
    }
    Ok((node, ops))
}

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

// ------------------------------------------------------------ connections

/// What the store connects to.
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    Cluster {
        client: Box<ClusterClient>,
        /// The seed nodes, for the feed subscription (a classic `PUBLISH`
        /// on a cluster reaches subscribers on every node).
        seeds: Vec<ConnectionInfo>,
    },
}

#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

async fn connect(target: &Target) -> Result<Conn, RedisError> {
    let fut = async {
        match target {
            Target::Single(client) => client
                .get_multiplexed_async_connection_with_config(&connection_config())
                .await
                .map(Conn::Single),
            Target::Cluster { client, .. } => {
                client.get_async_connection().await.map(Conn::Cluster)
            }
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT * 3, fut).await {
        Ok(r) => r,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting to Redis timed out",
        ))),
    }
}

/// Errors after which a connection is not trusted any more.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// A connection made on demand and re-made after it broke, at most once
/// per backoff step, so a dead Redis fails requests at once instead of
/// making each wait for a connect timeout.
struct Link {
    target: Target,
    conn: Option<Conn>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Link {
    fn new(target: Target) -> Link {
        Link {
            target,
            conn: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
        }
    }

    async fn get(&mut self) -> Result<Conn, String> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return Err("Redis is unreachable (reconnecting)".into());
            }
        }
        match connect(&self.target).await {
            Ok(c) => {
                self.conn = Some(c.clone());
                self.retry_at = None;
                self.backoff = BACKOFF_MIN;
                Ok(c)
            }
            Err(e) => {
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                Err(format!("cannot connect: {e}"))
            }
        }
    }

    /// Forgets the connection after `e` if it was a connection-level error.
    fn failed(&mut self, e: &RedisError) -> bool {
        let broken = is_connection_error(e);
        if broken {
            self.conn = None;
        }
        broken
    }

    fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }
}

// ------------------------------------------------------------ rate limits

/// Lets one line through per [`LOG_EVERY`] and counts the rest.
#[derive(Default)]
struct LogLimiter(Mutex<(Option<Instant>, u64)>);

impl LogLimiter {
    /// Some(number suppressed since the last line) when a line may be
    /// written now.
    fn allow(&self) -> Option<u64> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match s.0 {
            Some(last) if now.duration_since(last) < LOG_EVERY => {
                s.1 += 1;
                None
            }
            _ => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
        }
    }
}

fn suppressed(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more like it since the last report)")
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
}

/// The Redis store. Open with [`RedisStore::open`]; `load_into` preloads
/// the table and from then on keeps it in step with the other nodes.
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store for RedisStore {
    fn submit(&self, ops: Vec<StoreOp>) -> Commit {
        if ops.is_empty() {
            return Commit::ready(Ok(()));
        }
        let shared = &self.shared;
        let n = ops.len();
        if shared.queued.fetch_add(n, Ordering::AcqRel) >= shared.queue_size {
            shared.queued.fetch_sub(n, Ordering::AcqRel);
            if let Some(more) = shared.overload_log.allow() {
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

    /// Subscribes to the change feed, reads every binding by `SCAN`, and
    /// from then on applies the other nodes' changes to `table` (once per
    /// store; a second call only reads).
    fn load_into(&self, table: Arc<LocationTable>, now: u64) -> StoreFuture<'_, u64> {
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
            let remote = match scan_all(&shared, &mut link).await {
                Ok(r) => r,
                Err(e) => {
                    if feed.is_some() {
                        shared.following.store(false, Ordering::Release);
                    }
                    return Err(StoreError::Read(e));
                }
            };
            let mut read = 0u64;
            for (aor, bindings) in remote {
                for b in bindings {
                    read += 1;
                    table.apply_remote_upsert(&aor, b, now);
                }
            }
            if let Some(feed) = feed {
                tokio::spawn(follower(shared, jobs, table, link, feed));
            }
            Ok(read)
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

// ----------------------------------------------------------------- writer

/// A `flush` waiting for the submissions queued before it.
struct FlushWait {
    done: oneshot::Sender<Result<(), StoreError>>,
    /// Submissions ahead of it still to be written.
    ahead: usize,
}

/// Drains the queue: write-through sends whatever is queued as soon as the
/// previous round trip is back; write-back first waits up to
/// `write_back_interval` (or a flush) to gather more. Failed write-back
/// ops are kept and retried after a backoff; failed write-through ops fail
/// their commits (the UA got its 500, the re-sync cleans up).
async fn writer(shared: Arc<Shared>, mut link: Link, mut rx: mpsc::UnboundedReceiver<Job>) {
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
            write_batch(&shared, &mut link, &q.subs[..count]).await
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
                if let Some(more) = shared.write_log.allow() {
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
struct WriterQueue {
    subs: Vec<Sub>,
    /// Ops in `subs`.
    ops: usize,
    flushes: Vec<FlushWait>,
}

impl WriterQueue {
    fn take(&mut self, job: Job) {
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
    fn answer_flushes(&mut self, completed: usize, unwritten: Option<usize>) {
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
async fn write_batch(shared: &Shared, link: &mut Link, subs: &[Sub]) -> Vec<Result<(), String>> {
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
const MAX_PXAT_MS: u64 = 1 << 53;

/// Adds the command that makes `op` so in Redis.
fn add_op(p: &mut redis::Pipeline, op: &StoreOp, value: &[u8], now_ms: u64) {
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

fn add_feed(p: &mut redis::Pipeline, node: &str, ops: &[&[u8]]) {
    for chunk in ops.chunks(FEED_CHUNK) {
        p.cmd("PUBLISH")
            .arg(FEED_CHANNEL)
            .arg(encode_feed(node, chunk))
            .ignore();
    }
}

/// One server: the whole batch and its feed messages in one `MULTI`, so
/// other nodes hear of exactly what was written.
async fn write_single(
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
async fn write_cluster(
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

// ------------------------------------------------------------- reading

/// Walks the binding keys with `SCAN`, a batch at a time: on the server,
/// or on every master of a cluster in turn.
struct Scanner {
    conn: Conn,
    /// Cluster masters still to scan (the current one last); empty for a
    /// single server.
    nodes: Vec<(String, u16)>,
    cursor: u64,
    done: bool,
}

/// A read error, and whether the connection is to be re-made.
struct ReadError {
    message: String,
    broken: bool,
}

impl ReadError {
    fn redis(what: &str, e: &RedisError) -> ReadError {
        ReadError {
            message: format!("{what}: {e}"),
            broken: is_connection_error(e),
        }
    }

    /// The message, after telling `link` whether its connection broke.
    fn into_message(self, link: &mut Link) -> String {
        if self.broken {
            link.conn = None;
        }
        self.message
    }
}

impl Scanner {
    async fn new(link: &mut Link) -> Result<Scanner, String> {
        let mut conn = link.get().await?;
        let nodes = match &mut conn {
            Conn::Single(_) => Vec::new(),
            Conn::Cluster(c) => {
                let mut nodes = cluster_masters(c).await.map_err(|e| e.into_message(link))?;
                nodes.reverse();
                nodes
            }
        };
        Ok(Scanner {
            conn,
            nodes,
            cursor: 0,
            done: false,
        })
    }

    /// The next batch of keys (possibly empty), or None when done.
    async fn next(&mut self) -> Result<Option<Vec<Vec<u8>>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor)
            .arg("MATCH")
            .arg(KEY_PATTERN)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let (next, keys): (u64, Vec<Vec<u8>>) = match &mut self.conn {
            Conn::Single(c) => cmd
                .query_async(c)
                .await
                .map_err(|e| ReadError::redis("SCAN", &e))?,
            Conn::Cluster(c) => {
                let Some((host, port)) = self.nodes.last().cloned() else {
                    self.done = true;
                    return Ok(None);
                };
                let what = format!("SCAN on {host}:{port}");
                let route =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                let value = c
                    .route_command(cmd, route)
                    .await
                    .map_err(|e| ReadError::redis(&what, &e))?;
                redis::from_redis_value(value).map_err(|e| ReadError {
                    message: format!("{what}: unexpected reply: {e}"),
                    broken: false,
                })?
            }
        };
        self.cursor = next;
        if next == 0 {
            match &self.conn {
                Conn::Single(_) => self.done = true,
                Conn::Cluster(_) => {
                    self.nodes.pop();
                    self.done = self.nodes.is_empty();
                }
            }
        }
        Ok(Some(keys))
    }

    /// The values of `keys` (None for keys gone meanwhile). On a cluster
    /// the client splits `MGET` by slot.
    async fn values(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| ReadError::redis("MGET", &e))
    }
}

/// `host:port` of every master that is up, from `CLUSTER NODES`.
async fn cluster_masters(conn: &mut ClusterConnection) -> Result<Vec<(String, u16)>, ReadError> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(conn)
        .await
        .map_err(|e| ReadError::redis("CLUSTER NODES", &e))?;
    Ok(parse_cluster_masters(&text))
}

fn parse_cluster_masters(text: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let flags: Vec<&str> = flags.split(',').collect();
        let down = |f: &&str| matches!(*f, "fail" | "fail?" | "noaddr" | "handshake");
        if !flags.contains(&"master") || flags.iter().any(down) {
            continue;
        }
        // `ip:port@cport[,hostname]`; the ip may be IPv6.
        let addr = addr.split(['@', ',']).next().unwrap_or_default();
        if let Some((host, port)) = addr.rsplit_once(':') {
            if let (false, Ok(port)) = (host.is_empty(), port.parse::<u16>()) {
                out.push((host.trim_matches(['[', ']']).to_owned(), port));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every binding in Redis, by AoR. Values that cannot be decoded are
/// skipped with a warning.
async fn scan_all(
    shared: &Shared,
    link: &mut Link,
) -> Result<HashMap<Arc<str>, Vec<Binding>>, String> {
    let mut out: HashMap<Arc<str>, Vec<Binding>> = HashMap::new();
    let mut scan = Scanner::new(link).await?;
    loop {
        let keys = match scan.next().await {
            Ok(Some(keys)) if keys.is_empty() => continue,
            Ok(Some(keys)) => keys,
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.into_message(link)),
        };
        let values = scan.values(&keys).await.map_err(|e| e.into_message(link))?;
        for (key, value) in keys.iter().zip(values) {
            // Gone between SCAN and MGET: expired or deleted.
            let Some(value) = value else { continue };
            match decode_op(&value) {
                Ok(Decoded::Upsert { aor, binding }) => {
                    out.entry(Arc::from(aor)).or_default().push(binding);
                }
                Ok(Decoded::Delete { .. }) => bad_value(shared, key, "a delete stored as a value"),
                Err(e) => bad_value(shared, key, &e),
            }
        }
    }
}

fn bad_value(shared: &Shared, key: &[u8], why: &str) {
    if let Some(more) = shared.bad_data_log.allow() {
        tracing::warn!(
            "redis store: skipping key {:?}: {why}{}",
            String::from_utf8_lossy(key),
            suppressed(more)
        );
    }
}

// --------------------------------------------------------------- feed

type Feed = (PubSubSink, PubSubStream);

/// Subscribes to the feed: on the server, or on the first cluster node
/// that answers (a classic `PUBLISH` reaches every node's subscribers).
async fn subscribe(shared: &Shared) -> Result<Feed, String> {
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
async fn follower(
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

fn warn_feed_lost(shared: &Shared, why: &str) {
    if let Some(more) = shared.feed_log.allow() {
        tracing::warn!(
            "redis store: change feed on {} lost ({why}); reconnecting{}",
            shared.place,
            suppressed(more)
        );
    }
}

/// Applies one feed message unless this node sent it.
fn apply_feed(shared: &Shared, table: &LocationTable, msg: &[u8]) {
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

fn bad_message(shared: &Shared, why: &str) {
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
async fn resync(
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
async fn mark_epoch(conn: &mut Conn, node: &str) -> Result<String, RedisError> {
    let mut random = [0u8; 8];
    fill_random(&mut random);
    let value: String = format!(
        "{node}-{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
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
async fn read_epoch(link: &mut Link) -> Result<Option<String>, String> {
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
async fn republish(
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV6};

    use proptest::prelude::*;

    use super::*;

    fn binding(ruid: &str, expires_at: u64) -> Binding {
        Binding::new(Parts {
            contact: "sip:alice@192.0.2.1:5060;transport=udp",
            expires_at,
            q: Some(500),
            call_id: "a84b4c76e66710@pc33",
            cseq: 314_159,
            user_agent: Some(Arc::from("Yealink SIP-T46S 66.86.0.15")),
            source: Some(Source {
                proto: Proto::Udp,
                remote: "192.0.2.1:5060".parse().unwrap(),
                local: "127.0.0.1:5060".parse().unwrap(),
            }),
            path: Some("<sip:p1.example.com;lr>,<sip:p2.example.com;lr>"),
            instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"),
            reg_id: 2,
            methods: 0x1f,
            flags: 3,
            cflags: 64,
            ruid: ruid.into(),
            last_modified: 1_700_000_000,
        })
    }

    #[test]
    fn keys_keep_the_aor_in_one_hash_tag() {
        assert_eq!(
            binding_key("alice@example.com", "uloc-1-2"),
            "kamrs:loc:{alice@example.com}:uloc-1-2"
        );
        // Braces, colons, globs, spaces and % cannot break the scheme.
        let key = binding_key("a}b{c:d*e %f", "r:1}");
        assert_eq!(key, "kamrs:loc:{a%7Db%7Bc%3Ad%2Ae%20%25f}:r%3A1%7D");
        assert_eq!(key.matches('{').count(), 1);
        assert_eq!(key.matches('}').count(), 1);
        assert_eq!(aor_of_key(key.as_bytes()).as_deref(), Some("a}b{c:d*e %f"));
        // The empty AoR still has a non-empty tag.
        assert_eq!(binding_key("", ""), "kamrs:loc:{%}:%");
        assert_eq!(aor_of_key(b"kamrs:loc:{%}:%").as_deref(), Some(""));
        // Non-ASCII passes through as UTF-8.
        assert_eq!(binding_key("jürgen", "r"), "kamrs:loc:{jürgen}:r");
        assert_eq!(
            aor_of_key("kamrs:loc:{jürgen}:r".as_bytes()).as_deref(),
            Some("jürgen")
        );
        // Not ours, or malformed.
        for bad in [
            &b"other:{a}:r"[..],
            b"kamrs:loc:a:r",
            b"kamrs:loc:{a",
            b"kamrs:loc:{a}r",
            b"kamrs:loc:{%zz}:r",
            b"kamrs:loc:{%4}:r",
            b"kamrs:loc:{%FF}:r",
        ] {
            assert_eq!(aor_of_key(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn key_escaping_round_trips_and_never_collides(a in ".*", b in ".*", r in "[a-z0-9:{}%-]*") {
            let ka = binding_key(&a, &r);
            prop_assert_eq!(aor_of_key(ka.as_bytes()), Some(a.clone()));
            // Exactly one hash tag, holding the escaped AoR only.
            let tag_start = ka.find('{').unwrap();
            let tag_end = ka.find('}').unwrap();
            prop_assert!(tag_end > tag_start + 1);
            prop_assert_eq!(ka.matches('{').count(), 1);
            prop_assert_eq!(ka.matches('}').count(), 1);
            if a != b {
                prop_assert_ne!(ka, binding_key(&b, &r));
            }
        }
    }

    #[test]
    fn values_round_trip_every_field() {
        let v6 = Source {
            proto: Proto::Tcp,
            remote: SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                5070,
                0,
                0,
            )),
            local: "[::1]:5060".parse().unwrap(),
        };
        let full = binding("r1", 1_700_003_600);
        let mut sparse = binding("r2", PERMANENT);
        sparse.q = None;
        sparse.user_agent = None;
        sparse.set_source(None);
        let sparse = Binding::new(Parts {
            path: None,
            instance: None,
            contact: "sip:ü@[2001:db8::1]",
            ..sparse.parts()
        });
        let mut tcp6 = binding("r3", 5);
        tcp6.set_source(Some(v6));
        tcp6.methods = u32::MAX;
        for b in [full, sparse, tcp6] {
            let op = StoreOp::Upsert {
                aor: Arc::from("alice@example.com"),
                binding: b.clone(),
            };
            let bytes = encode_op(&op).unwrap();
            assert_eq!(bytes[0], VALUE_V1);
            assert!(bytes.len() < 400, "compact: {} bytes", bytes.len());
            assert_eq!(
                decode_op(&bytes),
                Ok(Decoded::Upsert {
                    aor: "alice@example.com".into(),
                    binding: b
                })
            );
        }
        let del = StoreOp::Delete {
            aor: Arc::from("bob"),
            ruid: "r9".into(),
        };
        assert_eq!(
            decode_op(&encode_op(&del).unwrap()),
            Ok(Decoded::Delete {
                aor: "bob".into(),
                ruid: "r9".into()
            })
        );
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let good = encode_op(&StoreOp::Upsert {
            aor: Arc::from("a"),
            binding: binding("r", 10),
        })
        .unwrap();
        assert!(decode_op(&[]).is_err());
        assert!(decode_op(&[2, 0x90]).unwrap_err().contains("version"));
        for cut in 1..good.len() {
            assert!(decode_op(&good[..cut]).is_err(), "truncated at {cut}");
        }
        // Garbage of every kind decodes to an error or to something, never a panic.
        let mut noisy = good.clone();
        for i in 1..noisy.len() {
            noisy[i] ^= 0x5a;
            let _ = decode_op(&noisy);
        }
        // A source with an unknown transport or a bad address is refused.
        let mut text = good.clone();
        // The MessagePack string "udp" (fixstr of 3), not the one inside
        // the contact.
        let at = text.windows(4).position(|w| w == b"\xa3udp").unwrap();
        text[at + 1..at + 4].copy_from_slice(b"xyz");
        assert!(decode_op(&text).unwrap_err().contains("transport"));
        // u64::MAX is not a deadline.
        let mut b = binding("r", 10);
        b.expires_at = PERMANENT - 1;
        let mut bytes = encode_op(&StoreOp::Upsert {
            aor: Arc::from("a"),
            binding: b,
        })
        .unwrap();
        let pos = bytes
            .windows(9)
            .position(|w| w == [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
            .unwrap();
        bytes[pos + 8] = 0xff;
        assert!(decode_op(&bytes).unwrap_err().contains("deadline"));
    }

    #[test]
    fn feed_messages_round_trip_and_reject_garbage() {
        let a = encode_op(&StoreOp::Upsert {
            aor: Arc::from("a"),
            binding: binding("r1", 10),
        })
        .unwrap();
        let d = encode_op(&StoreOp::Delete {
            aor: Arc::from("a"),
            ruid: "r1".into(),
        })
        .unwrap();
        let msg = encode_feed("node-1", &[&a, &d]);
        let (node, ops) = decode_feed(&msg).unwrap();
        assert_eq!(node, "node-1");
        assert_eq!(ops, vec![&a[..], &d[..]]);
        let empty = encode_feed("n", &[]);
        assert!(decode_feed(&empty).unwrap().1.is_empty());
        assert!(decode_feed(&[]).is_err());
        assert!(decode_feed(&[9]).is_err());
        for cut in 1..msg.len() {
            assert!(decode_feed(&msg[..cut]).is_err(), "truncated at {cut}");
        }
        // A huge claimed count with no data is an error, not an allocation.
        let mut huge = vec![FEED_V1];
        rmp::encode::write_str(&mut huge, "n").unwrap();
        rmp::encode::write_array_len(&mut huge, u32::MAX).unwrap();
        assert!(decode_feed(&huge).is_err());
    }

    #[test]
    fn cluster_nodes_output_gives_the_live_masters() {
        let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 master,fail - 0 1426238316232 5 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
a1 [::1]:30006@31006 master - 0 0 6 connected
x :0@0 master,noaddr - 0 0 0 disconnected
garbage
";
        assert_eq!(
            parse_cluster_masters(text),
            [
                ("127.0.0.1".to_owned(), 30001),
                ("127.0.0.1".to_owned(), 30002),
                ("127.0.0.1".to_owned(), 30003),
                ("::1".to_owned(), 30006),
            ]
        );
    }

    #[test]
    fn small_helpers() {
        assert!(version_at_least("7.0.15", (6, 2)));
        assert!(version_at_least("6.2.0", (6, 2)));
        assert!(!version_at_least("6.0.16", (6, 2)));
        assert!(!version_at_least("garbage", (6, 2)));
        assert_eq!(
            info_field("# Server\r\nredis_version:7.0.15\r\n", "redis_version"),
            Some("7.0.15")
        );
        assert_eq!(
            info_field("cluster_enabled:0\r\n", "cluster_enabled"),
            Some("0")
        );
        assert_eq!(info_field("x:1", "y"), None);
        assert_eq!(redact("redis://:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        fill_random(&mut a);
        fill_random(&mut b);
        assert_ne!(a, b);
        let limiter = LogLimiter::default();
        assert_eq!(limiter.allow(), Some(0));
        assert_eq!(limiter.allow(), None);
        assert_eq!(limiter.allow(), None);
    }

    // ------------------------------------------------ against a real Redis

    /// A `redis-server` on a free loopback port, killed (by its pid) on
    /// drop. None, with a printed reason, when the binary is missing,
    /// unless `CI=true`, where that is a failure.
    pub(super) struct RedisServer {
        child: std::process::Child,
        pub port: u16,
    }

    impl RedisServer {
        pub fn start() -> Option<RedisServer> {
            Self::start_on(None)
        }

        pub fn start_on(port: Option<u16>) -> Option<RedisServer> {
            let port = port.unwrap_or_else(|| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .expect("free port")
            });
            let child = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            let child = match child {
                Ok(c) => c,
                Err(e) => {
                    if std::env::var("CI").is_ok_and(|v| v == "true") {
                        panic!("redis-server cannot be run ({e}), and CI=true: .ci/run must install it");
                    }
                    eprintln!(
                        "SKIPPED: redis-server cannot be run ({e}); apt-get install redis-server"
                    );
                    return None;
                }
            };
            let server = RedisServer { child, port };
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "redis-server did not start on port {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(server)
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        pub async fn raw(&self) -> MultiplexedConnection {
            redis::Client::open(self.url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap()
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn settings(url: &str, mode: StoreMode) -> Settings {
        Settings {
            url: url.to_owned(),
            mode,
            write_back_interval: Duration::from_millis(200),
            queue_size: 1000,
        }
    }

    /// A store and its table, preloaded and following, like main wires it.
    async fn node(url: &str, mode: StoreMode) -> (Arc<RedisStore>, Arc<LocationTable>) {
        let store = Arc::new(RedisStore::open(settings(url, mode)).await.unwrap());
        let table = Arc::new(LocationTable::new());
        store
            .load_into(Arc::clone(&table), unix_now())
            .await
            .unwrap();
        assert!(table.attach_store(store.clone()).is_ok());
        (store, table)
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(3);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Adds binding `ruid` to `aor` as the registrar would, and waits for
    /// its commit.
    async fn register(table: &LocationTable, aor: &str, b: Binding) -> Result<(), StoreError> {
        let ((), commit) = table.update_durable(aor, unix_now(), |bs| bs.push(b));
        commit.expect("a change yields a commit").await
    }

    fn ruids(table: &LocationTable, aor: &str) -> Vec<String> {
        let mut v: Vec<String> = table
            .lookup(aor, unix_now())
            .unwrap_or_default()
            .iter()
            .map(|b| b.ruid().to_string())
            .collect();
        v.sort();
        v
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_share_bindings_through_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let url = server.url();
        let (_sa, a) = node(&url, StoreMode::WriteThrough).await;
        let (_sb, b) = node(&url, StoreMode::WriteThrough).await;
        let now = unix_now();
        register(&a, "alice", binding("r1", now + 60))
            .await
            .unwrap();
        register(&a, "alice", binding("r2", PERMANENT))
            .await
            .unwrap();
        eventually("alice on b", || ruids(&b, "alice") == ["r1", "r2"]).await;
        assert_eq!(
            b.lookup("alice", now)
                .unwrap()
                .iter()
                .find(|x| x.ruid() == "r1"),
            Some(&binding("r1", now + 60))
        );
        // Never echoed back: b wrote nothing, so Redis saw a's two SETs and
        // two PUBLISHes only (b applied a's messages without journaling).
        let mut raw = server.raw().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut raw)
            .await
            .unwrap();
        let calls = |name: &str| {
            info_field(&stats, &format!("cmdstat_{name}"))
                .and_then(|v| v.strip_prefix("calls="))
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        // Plus one `SET kamrs:epoch NX` per node at open.
        assert_eq!((calls("set"), calls("publish")), (2 + 2, 2), "{stats}");
        let pttl: i64 = redis::cmd("PTTL")
            .arg(binding_key("alice", "r1"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(pttl > 55_000 && pttl <= 60_000, "PTTL {pttl}");
        let pttl: i64 = redis::cmd("PTTL")
            .arg(binding_key("alice", "r2"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(pttl, -1, "permanent: no TTL");
        // A change on b reaches a.
        register(&b, "bob", binding("rb", now + 60)).await.unwrap();
        eventually("bob on a", || ruids(&a, "bob") == ["rb"]).await;
        // A third node started now preloads everything.
        let (sc, c) = node(&url, StoreMode::WriteThrough).await;
        assert_eq!(ruids(&c, "alice"), ["r1", "r2"]);
        assert_eq!(ruids(&c, "bob"), ["rb"]);
        let counts = sc.counts(unix_now()).await.unwrap();
        assert_eq!(
            counts,
            DbCounts {
                users: 2,
                contacts: 3,
                expired_contacts: 0
            }
        );
        // Removal (ul.rm) on a removes everywhere.
        assert!(a.remove("alice"));
        a.store().unwrap().flush().await.unwrap();
        eventually("alice gone on b and c", || {
            b.lookup("alice", unix_now()).is_none() && c.lookup("alice", unix_now()).is_none()
        })
        .await;
        let left: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg("kamrs:loc:*")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(left, [binding_key("bob", "rb").into_bytes()]);
        // A refresh replaces, a delete of one binding removes only it.
        register(&b, "bob", binding("rb2", now + 30)).await.unwrap();
        let ((), commit) = b.update_durable("bob", unix_now(), |bs| {
            bs.retain(|x| x.ruid() != "rb");
            bs[0].expires_at = now + 90;
            bs[0].last_modified += 1;
        });
        commit.unwrap().await.unwrap();
        eventually("bob refreshed on a", || {
            a.lookup("bob", unix_now())
                .is_some_and(|v| v.len() == 1 && v[0].expires_at == now + 90)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resync_repairs_missed_changes_and_skips_bad_data() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let url = server.url();
        let mut raw = server.raw().await;
        // Garbage next to a good value: preload keeps the good one.
        let good = encode_op(&StoreOp::Upsert {
            aor: Arc::from("carol"),
            binding: binding("rc", unix_now() + 60),
        })
        .unwrap();
        let _: () = redis::cmd("SET")
            .arg(binding_key("carol", "rc"))
            .arg(&good)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("kamrs:loc:{x}:y")
            .arg("not msgpack")
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("kamrs:loc:{x}:z")
            .arg(&[1u8, 0xc1][..])
            .query_async(&mut raw)
            .await
            .unwrap();
        let (sa, a) = node(&url, StoreMode::WriteThrough).await;
        assert_eq!(ruids(&a, "carol"), ["rc"]);
        assert_eq!(a.len(), 1);
        // Garbage on the feed is skipped, and the feed still works after.
        for junk in [
            &b"junk"[..],
            &[FEED_V1, 0xa1, b'n', 0x91, 0xc4, 0x01, 0xff][..],
            &[][..],
        ] {
            let _: () = redis::cmd("PUBLISH")
                .arg(FEED_CHANNEL)
                .arg(junk)
                .query_async(&mut raw)
                .await
                .unwrap();
        }
        let (_sb, b) = node(&url, StoreMode::WriteThrough).await;
        register(&b, "dave", binding("rd", unix_now() + 60))
            .await
            .unwrap();
        eventually("dave on a", || ruids(&a, "dave") == ["rd"]).await;
        // Changes a never heard of (written behind its back) are found by
        // a re-sync.
        let erin = encode_op(&StoreOp::Upsert {
            aor: Arc::from("erin"),
            binding: binding("re", unix_now() + 60),
        })
        .unwrap();
        let _: () = redis::cmd("SET")
            .arg(binding_key("erin", "re"))
            .arg(&erin)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(binding_key("carol", "rc"))
            .query_async(&mut raw)
            .await
            .unwrap();
        sa.shared.resync_wanted.notify_one();
        eventually("a re-synced", || {
            ruids(&a, "erin") == ["re"] && a.lookup("carol", unix_now()).is_none()
        })
        .await;
        assert_eq!(ruids(&a, "dave"), ["rd"]);
    }

    /// Redis emptied, and another node started meanwhile and wrote a new
    /// `kamrs:epoch`: the marker is there again, but not the one this node
    /// saw, so the loss is still noticed and the bindings written back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_epoch_written_by_another_node_still_counts_as_a_loss() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let url = server.url();
        let mut raw = server.raw().await;
        let (sa, a) = node(&url, StoreMode::WriteThrough).await;
        register(&a, "hank", binding("rh", unix_now() + 60))
            .await
            .unwrap();
        let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
        // What a node opening now on the empty Redis does.
        let _: () = redis::cmd("SET")
            .arg(EPOCH_KEY)
            .arg("a-later-node")
            .query_async(&mut raw)
            .await
            .unwrap();
        sa.shared.resync_wanted.notify_one();
        let key = binding_key("hank", "rh");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n: i64 = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut raw)
                .await
                .unwrap();
            if n == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "hank was not written back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(ruids(&a, "hank"), ["rh"]);
        // And it now knows the marker it found, so the next re-sync is an
        // ordinary one.
        assert_eq!(*lock(&sa.shared.epoch), "a-later-node");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_down_fails_commits_then_recovers() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let port = server.port;
        let url = server.url();
        let (_sa, a) = node(&url, StoreMode::WriteThrough).await;
        let (_sb, b) = node(&url, StoreMode::WriteThrough).await;
        register(&a, "frank", binding("rf", unix_now() + 60))
            .await
            .unwrap();
        drop(server);
        let started = Instant::now();
        let err = register(&a, "frank", binding("rf2", unix_now() + 60))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Write(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
        // Back, empty (no persistence): writes work again within the
        // backoff, and both tables re-sync to what Redis holds.
        let server = RedisServer::start_on(Some(port)).expect("restart");
        let deadline = Instant::now() + Duration::from_secs(10);
        // A new ruid each try, so every try is a change with a commit.
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match register(
                &a,
                "gina",
                binding(&format!("rg{attempt}"), unix_now() + 60),
            )
            .await
            {
                Ok(()) => break,
                Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eventually("gina on b", || b.lookup("gina", unix_now()).is_some()).await;
        // Redis lost frank, but the nodes still held him: they write him
        // back (kamrs:epoch was gone) instead of forgetting him.
        let mut raw = server.raw().await;
        let key = binding_key("frank", "rf");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n: i64 = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut raw)
                .await
                .unwrap();
            if n == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "frank was not written back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(a.lookup("frank", unix_now()).is_some());
        assert!(b.lookup("frank", unix_now()).is_some());
        drop(server);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_back_batches_flushes_and_bounds_its_queue() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let mut s = settings(&server.url(), StoreMode::WriteBack);
        s.write_back_interval = Duration::from_secs(30);
        s.queue_size = 3;
        let store = Arc::new(RedisStore::open(s).await.unwrap());
        let table = Arc::new(LocationTable::new());
        store
            .load_into(Arc::clone(&table), unix_now())
            .await
            .unwrap();
        assert!(table.attach_store(store.clone()).is_ok());
        let mut commits = Vec::new();
        for i in 0..3 {
            let ((), c) = table.update_durable(&format!("u{i}"), unix_now(), |bs| {
                bs.push(binding("r", unix_now() + 60))
            });
            let c = c.unwrap();
            assert!(c.refused().is_none());
            commits.push(c);
        }
        // Queue full: refused up front.
        let ((), c) = table.update_durable("u9", unix_now(), |bs| {
            bs.push(binding("r", unix_now() + 60))
        });
        assert_eq!(c.unwrap().refused(), Some(&StoreError::Overloaded));
        // Nothing written before the interval (30 s) or a flush: only the
        // epoch marker is there.
        let mut raw = server.raw().await;
        let n: usize = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
        assert_eq!(n, 1);
        tokio::time::timeout(Duration::from_secs(5), store.flush())
            .await
            .unwrap()
            .unwrap();
        for c in commits {
            c.await.unwrap();
        }
        let n: usize = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
        assert_eq!(n, 3 + 1);
        // The queue has room again.
        let ((), c) = table.update_durable("u10", unix_now(), |bs| {
            bs.push(binding("r", unix_now() + 60))
        });
        assert!(c.unwrap().refused().is_none());
        // Write-back with Redis down: the flush reports instead of hanging.
        drop(server);
        let ((), c) = table.update_durable("u11", unix_now(), |bs| {
            bs.push(binding("r", unix_now() + 60))
        });
        drop(c);
        let r = tokio::time::timeout(Duration::from_secs(10), store.flush())
            .await
            .unwrap();
        assert!(r.is_err(), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_refuses_what_it_cannot_use() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = RedisStore::open(settings(
            &format!("redis://127.0.0.1:{port}"),
            StoreMode::WriteThrough,
        ))
        .await
        .err()
        .unwrap();
        assert!(e.contains("unreachable"), "{e}");
        let e = RedisStore::open(settings(
            "rediss://:pw@127.0.0.1:1",
            StoreMode::WriteThrough,
        ))
        .await
        .err()
        .unwrap();
        assert!(e.contains("TLS") && !e.contains("pw"), "{e}");
        let e = RedisStore::open(settings("  ,", StoreMode::WriteThrough))
            .await
            .err()
            .unwrap();
        assert!(e.contains("no Redis URL"), "{e}");
        let Some(server) = RedisServer::start() else {
            return;
        };
        let two = format!("{},{}", server.url(), server.url());
        let e = RedisStore::open(settings(&two, StoreMode::WriteThrough))
            .await
            .err()
            .unwrap();
        assert!(e.contains("not a Redis Cluster"), "{e}");
    }
}
