//! Reaching Redis: a single server or a Cluster, connections with
//! timeouts, and a link that reconnects with backoff.

use super::*;

/// What the store connects to.
#[derive(Clone)]
pub(super) enum Target {
    Single(redis::Client),
    Cluster {
        client: Box<ClusterClient>,
        /// The seed nodes, for the feed subscription (a classic `PUBLISH`
        /// on a cluster reaches subscribers on every node).
        seeds: Vec<ConnectionInfo>,
    },
}

#[derive(Clone)]
pub(super) enum Conn {
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

pub(super) fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

pub(super) async fn connect(target: &Target) -> Result<Conn, RedisError> {
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
pub(super) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// A connection made on demand and re-made after it broke, at most once
/// per backoff step, so a dead Redis fails requests at once instead of
/// making each wait for a connect timeout.
pub(super) struct Link {
    pub(super) target: Target,
    pub(super) conn: Option<Conn>,
    pub(super) retry_at: Option<Instant>,
    pub(super) backoff: Duration,
}

impl Link {
    pub(super) fn new(target: Target) -> Link {
        Link {
            target,
            conn: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
        }
    }

    pub(super) async fn get(&mut self) -> Result<Conn, String> {
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
    pub(super) fn failed(&mut self, e: &RedisError) -> bool {
        let broken = is_connection_error(e);
        if broken {
            self.conn = None;
        }
        broken
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }
}
