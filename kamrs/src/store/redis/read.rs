//! Reading everything back: `SCAN` over every master, for the preload,
//! the re-sync and the counts.

use super::*;

/// Walks the binding keys with `SCAN`, a batch at a time: on the server,
/// or on every master of a cluster in turn.
pub(super) struct Scanner {
    pub(super) conn: Conn,
    /// Cluster masters still to scan (the current one last); empty for a
    /// single server.
    pub(super) nodes: Vec<(String, u16)>,
    pub(super) cursor: u64,
    pub(super) done: bool,
}

/// A read error, and whether the connection is to be re-made.
pub(super) struct ReadError {
    pub(super) message: String,
    pub(super) broken: bool,
}

impl ReadError {
    pub(super) fn redis(what: &str, e: &RedisError) -> ReadError {
        ReadError {
            message: format!("{what}: {e}"),
            broken: is_connection_error(e),
        }
    }

    /// The message, after telling `link` whether its connection broke.
    pub(super) fn into_message(self, link: &mut Link) -> String {
        if self.broken {
            link.conn = None;
        }
        self.message
    }
}

impl Scanner {
    pub(super) async fn new(link: &mut Link) -> Result<Scanner, String> {
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
    pub(super) async fn next(&mut self) -> Result<Option<Vec<Vec<u8>>>, ReadError> {
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
    pub(super) async fn values(
        &mut self,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| ReadError::redis("MGET", &e))
    }
}

/// `host:port` of every master that is up, from `CLUSTER NODES`.
pub(super) async fn cluster_masters(
    conn: &mut ClusterConnection,
) -> Result<Vec<(String, u16)>, ReadError> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(conn)
        .await
        .map_err(|e| ReadError::redis("CLUSTER NODES", &e))?;
    Ok(parse_cluster_masters(&text))
}

pub(super) fn parse_cluster_masters(text: &str) -> Vec<(String, u16)> {
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
pub(super) async fn scan_all(
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

pub(super) fn bad_value(shared: &Shared, key: &[u8], why: &str) {
    if let Some(more) = allow(&shared.bad_data_log) {
        tracing::warn!(
            "redis store: skipping key {:?}: {why}{}",
            String::from_utf8_lossy(key),
            suppressed(more)
        );
    }
}
