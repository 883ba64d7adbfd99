//! TCP: an accept loop per listener and a task per connection, for every
//! stream transport: TLS (`super::tls`) and WebSocket (`super::ws`)
//! connections are accepted and limited here, then handed on.
//!
//! The stream is cut into messages by [`next_stream_frame`]; replies go
//! back on the same connection, in the order the requests arrived. Every
//! resource a peer can make us hold is bounded (README, Security):
//!
//! - connections: `tcp_max_connections` per listener and
//!   `tcp_accept_iplimit` per source address ([`super::ip_limit`]);
//! - the receive buffer: `max_message_size`;
//! - time: silence (`tcp_connection_lifetime`), the first whole message
//!   (`tcp_msg_data_timeout`) and each message from its first byte
//!   (`tcp_msg_read_timeout`, [`super::read_deadline`]);
//! - replies: at most `tcp_conn_wq_max` bytes are queued (plus the one
//!   reply that crossed it) before the connection is read no further; the
//!   peer must take them within `tcp_send_timeout` or is disconnected.
//!   Over `tcp_wq_max` for all connections together, each connection
//!   queues one reply at a time, so the total stays near that budget plus
//!   one reply per connection.
//!   Without this a peer that pipelines queries and never reads made kamrs
//!   queue every reply of a read batch: +48 MB for 33 queries of an AoR
//!   with 2,000 bindings.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::ip_limit::IpSlot;
use super::read_deadline::{Late, ReadDeadline};
use super::{Shutdown, TcpSettings};
use crate::flow::{ConnGuard, Flows};
use crate::peer::{ConnId, Peer, Proto};
use crate::route::{Action, Router};
use crate::sip::framing::{next_stream_frame, StreamFrame};
use crate::sip::ParseError;
use crate::stats::CoreStats;

/// Pause after an accept error. EMFILE/ENFILE repeat until a descriptor is
/// freed; retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Receive buffers start small and double up to `max_message_size`; an
/// idle connection holds none (see `read_some`).
const INITIAL_BUFFER: usize = 4096;

/// TLS handshakes and WebSocket upgrades in progress at once, per
/// listener. Each costs a signature and up to 64 KiB of handshake buffer:
/// without a bound, a flood of ClientHellos filling every connection slot
/// would take about 160 MiB and the CPU. Beyond it a new connection waits
/// for its turn within its handshake timeout; it gets one, since every
/// turn is given back within that same timeout (so a flood delays
/// handshakes by at most one timeout, and `tcp:handshake_busy` counts only
/// the rare waiter a timer's granularity leaves out).
const MAX_HANDSHAKES: usize = 256;

/// After we decide to close (bad framing, over-size message) we stop
/// sending and discard what the peer still sends for at most this long.
/// Closing a socket with unread data makes the kernel send RST, which can
/// destroy our last reply before the peer reads it.
const LINGER: Duration = Duration::from_millis(500);
/// …and at most this many bytes.
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// A byte stream a SIP connection runs on: plain TCP or TLS over TCP.
pub trait SipStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket underneath, for socket options and readiness.
    fn tcp(&self) -> &TcpStream;

    /// Whether input (or an error) waits inside the stream itself, not in
    /// the kernel: then a read returns at once although the socket is not
    /// readable.
    fn holds_input(&mut self) -> bool;
}

impl SipStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn holds_input(&mut self) -> bool {
        false
    }
}

/// Boxed: a TLS session is 1.2 KiB, and every move of it through the
/// connection's futures (handshake, run, linger) would otherwise keep
/// another copy's room in the task.
impl SipStream for Box<tokio_rustls::server::TlsStream<TcpStream>> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    /// rustls decrypts every whole record it has read; it wants no more
    /// from the socket only while some plaintext (or a close) is waiting.
    /// A record that failed after the plaintext of the last read is an
    /// error tokio-rustls keeps for the next read, with the socket quiet:
    /// rustls keeps it too, and asking costs no I/O.
    fn holds_input(&mut self) -> bool {
        let conn = self.get_mut().1;
        conn.process_new_packets().is_err() || !conn.wants_read()
    }
}

/// Accepts connections until shutdown; `proto` says what runs on them
/// (TCP, TLS, WS or WSS), all under the same `tcp_*` limits.
pub async fn serve(
    listener: TcpListener,
    proto: Proto,
    router: Arc<Router>,
    settings: TcpSettings,
    flows: Arc<Flows>,
    mut shutdown: Shutdown,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("stream listener has no local address, not serving it: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let settings = Arc::new(settings);
    tracing::debug!(%local, %proto, max_connections = settings.max_connections, "stream listener serving");
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%local, "{proto} accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Over a cap the connection is accepted and closed at once: left
        // in the backlog it would look alive to the peer and still cost a
        // kernel socket.
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            CoreStats::inc(&router.stats().tcp_refused);
            tracing::debug!(%remote, %proto, "connection refused: tcp_max_connections reached");
            drop(stream);
            continue;
        };
        let Some(ip_slot) = settings.per_ip.admit(remote.ip()) else {
            CoreStats::inc(&router.stats().tcp_iplimit_refused);
            tracing::debug!(%remote, %proto, "connection refused: tcp_accept_iplimit reached for this address");
            drop(stream);
            continue;
        };
        let conn = Connection {
            peer: Peer {
                proto,
                remote,
                local: stream.local_addr().unwrap_or(local),
                conn: Some(ConnId::next()),
            },
            router: Arc::clone(&router),
            settings: Arc::clone(&settings),
            flows: Arc::clone(&flows),
            handshakes: (proto != Proto::Tcp).then(|| Arc::clone(&handshakes)),
            handshaking: None,
            _permit: permit,
            _ip_slot: ip_slot,
            _open: OpenGauge::new(router.stats(), proto),
        };
        tokio::spawn(conn.start(stream, shutdown.clone()));
    }
    tracing::debug!(%local, %proto, "stopped accepting");
}

/// How a connection ended, for the debug log.
#[derive(Debug)]
enum Close {
    PeerClosed,
    Idle,
    TooLarge,
    Unframeable,
    /// A deadline of [`ReadDeadline`] ran out.
    Late(Late),
    Shutdown,
    ReadError(io::Error),
    WriteFailed(io::Error),
    WriteTimeout,
    /// The last binding registered over it expired or went
    /// (`close_expired_tcp`).
    BindingsGone,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::PeerClosed => f.write_str("closed by peer"),
            Close::Idle => f.write_str("idle for tcp_connection_lifetime"),
            Close::TooLarge => f.write_str("message over max_message_size"),
            Close::Unframeable => f.write_str("message cannot be framed"),
            Close::Late(Late::NoMessage) => {
                f.write_str("no whole message within tcp_msg_data_timeout")
            }
            Close::Late(Late::Message) => {
                f.write_str("message not complete within tcp_msg_read_timeout")
            }
            Close::Shutdown => f.write_str("shutting down"),
            Close::ReadError(e) => write!(f, "read error: {e}"),
            Close::WriteFailed(e) => write!(f, "write error: {e}"),
            Close::WriteTimeout => f.write_str("peer did not read within tcp_send_timeout"),
            Close::BindingsGone => f.write_str("its last binding expired (close_expired_tcp)"),
        }
    }
}

/// This connection's share of the reply bytes queued on all connections
/// (`CoreStats::tcp_queued`), given back when it is written or the
/// connection ends.
struct QueueShare {
    stats: Arc<CoreStats>,
    mine: u64,
}

impl QueueShare {
    fn new(stats: &Arc<CoreStats>) -> Self {
        QueueShare {
            stats: Arc::clone(stats),
            mine: 0,
        }
    }

    /// Records that this connection now has `bytes` queued.
    fn set(&mut self, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if bytes >= self.mine {
            self.stats
                .tcp_queued
                .fetch_add(bytes - self.mine, Ordering::Relaxed);
        } else {
            self.release(self.mine - bytes);
        }
        self.mine = bytes;
    }

    fn release(&self, bytes: u64) {
        let _ = self
            .stats
            .tcp_queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(bytes))
            });
    }

    /// Whether all connections together are within `max`.
    fn total_within(&self, max: usize) -> bool {
        let total = self.stats.tcp_queued.load(Ordering::Relaxed);
        total < u64::try_from(max).unwrap_or(u64::MAX)
    }
}

impl Drop for QueueShare {
    fn drop(&mut self) {
        self.release(self.mine);
    }
}

/// Raises the open-connections gauges (all TCP-based connections, as
/// Kamailio counts them, and the one of its transport) for as long as it
/// lives.
struct OpenGauge(Arc<CoreStats>, Proto);

impl OpenGauge {
    fn new(stats: &Arc<CoreStats>, proto: Proto) -> Self {
        CoreStats::inc(&stats.tcp_open);
        if let Some(g) = open_of(stats, proto) {
            CoreStats::inc(g);
        }
        OpenGauge(Arc::clone(stats), proto)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        CoreStats::dec(&self.0.tcp_open);
        if let Some(g) = open_of(&self.0, self.1) {
            CoreStats::dec(g);
        }
    }
}

/// The open-connections gauge of `proto` besides `tcp_open`.
fn open_of(stats: &CoreStats, proto: Proto) -> Option<&std::sync::atomic::AtomicU64> {
    match proto {
        // TLS sessions are counted by the `tls.list` registry.
        Proto::Udp | Proto::Tcp | Proto::Tls => None,
        Proto::Ws => Some(&stats.ws_open),
        Proto::Wss => Some(&stats.wss_open),
    }
}

pub(super) struct Connection {
    pub(super) peer: Peer,
    pub(super) router: Arc<Router>,
    pub(super) settings: Arc<TcpSettings>,
    /// Where this connection registers, so requests to its bindings
    /// (keepalives) reach it and it hears when its last binding goes.
    pub(super) flows: Arc<Flows>,
    /// The listener's handshake turns (TLS, WS, WSS), and the one this
    /// connection holds until its handshakes are done.
    handshakes: Option<Arc<Semaphore>>,
    pub(super) handshaking: Option<OwnedSemaphorePermit>,
    /// Holds one of the `tcp_max_connections` slots until the task ends.
    _permit: OwnedSemaphorePermit,
    /// …and one of its address's `tcp_accept_iplimit`.
    _ip_slot: IpSlot,
    /// Declared last, so dropped last: when the gauge falls, both slots
    /// above are free again.
    _open: OpenGauge,
}

impl Connection {
    /// Runs the connection's transport on the accepted socket: TLS first
    /// for `tls:` and `wss:`, the WebSocket upgrade for `ws:` and `wss:`.
    async fn start(mut self, stream: TcpStream, shutdown: Shutdown) {
        // Replies are small and latency matters more than packet count;
        // pipelined replies are batched into one write below anyway.
        let _ = stream.set_nodelay(true);
        let proto = self.peer.proto;
        if let Some(turns) = self.handshakes.take() {
            let wait = if proto.is_secure() {
                self.settings
                    .tls
                    .as_ref()
                    .map(|t| t.settings().handshake_timeout)
            } else {
                Some(self.settings.websocket.handshake_timeout)
            };
            let wait = wait.unwrap_or(Duration::from_secs(5));
            match tokio::time::timeout(wait, turns.acquire_owned()).await {
                Ok(Ok(turn)) => self.handshaking = Some(turn),
                _ => {
                    CoreStats::inc(&self.router.stats().handshake_busy);
                    tracing::debug!(remote = %self.peer.remote, %proto, "connection closed: {MAX_HANDSHAKES} handshakes in progress for longer than its handshake timeout");
                    return;
                }
            }
        }
        // Every transport but plain TCP is boxed: a task's future is as
        // large as its largest branch, and the TLS and WebSocket ones hold
        // a whole TLS session and WebSocket state inline (12 KiB per idle
        // TCP phone before they were boxed).
        if !proto.is_secure() {
            if proto.is_websocket() {
                Box::pin(super::ws::serve(self, stream, shutdown)).await;
            } else {
                self.run(stream, shutdown).await;
            }
            return;
        }
        Box::pin(self.start_tls(stream, shutdown)).await;
    }

    async fn start_tls(mut self, stream: TcpStream, shutdown: Shutdown) {
        let proto = self.peer.proto;
        let Some(tls) = self.settings.tls.clone() else {
            // The config check refuses tls: and wss: without [tls].
            tracing::error!(remote = %self.peer.remote, "{proto} connection closed: no [tls] certificate is loaded");
            return;
        };
        let Some((stream, _listed)) = super::tls::handshake(&tls, stream, &self.peer).await else {
            return;
        };
        if !proto.is_websocket() {
            self.handshaking = None;
        }
        if proto.is_websocket() {
            Box::pin(super::ws::serve(self, stream, shutdown)).await;
        } else {
            self.run(stream, shutdown).await;
        }
    }

    async fn run<S: SipStream>(self, mut stream: S, shutdown: Shutdown) {
        let proto = self.peer.proto;
        tracing::debug!(remote = %self.peer.remote, %proto, "connection open");
        let flow = self.peer.conn.map(|c| self.flows.open_conn(c));
        let close = self.serve(&mut stream, shutdown, flow.as_ref()).await;
        // Unregistered before the bindings hear of it below, so nothing
        // is queued for a connection that is gone.
        drop(flow);
        tracing::debug!(remote = %self.peer.remote, %proto, reason = %close, "connection closed");
        self.ended(matches!(close, Close::Shutdown));
        let stats = self.router.stats();
        match close {
            Close::TooLarge | Close::Unframeable => linger(stream).await,
            Close::WriteTimeout => {
                CoreStats::inc(&stats.tcp_send_timeout);
                // Reset rather than close: a graceful close would leave
                // the unsent replies in the kernel, retried for minutes to
                // a peer that does not read.
                let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
            }
            Close::Late(Late::NoMessage) => CoreStats::inc(&stats.tcp_msg_data_timeout),
            Close::Late(Late::Message) => CoreStats::inc(&stats.tcp_msg_read_timeout),
            _ => {}
        }
    }

    /// The bindings hear that the connection is gone (its flow must be
    /// unregistered first). Stopping the daemon is not losing the phone:
    /// then the bindings stay (in the store, too) for the next start.
    pub(super) fn ended(&self, shutdown: bool) {
        let (Some(c), false) = (self.peer.conn, shutdown) else {
            return;
        };
        let handle_lost = if self.peer.proto.is_websocket() {
            self.settings.websocket.handle_lost
        } else {
            self.settings.handle_lost_tcp
        };
        if handle_lost {
            let removed = self.router.flow_lost(c);
            if removed > 0 {
                tracing::debug!(remote = %self.peer.remote, removed, "bindings of a lost connection removed (handle_lost_tcp)");
            }
        } else {
            self.router.flow_closed(c);
        }
    }

    async fn serve<S: SipStream>(
        &self,
        stream: &mut S,
        mut shutdown: Shutdown,
        flow: Option<&ConnGuard>,
    ) -> Close {
        let limits = self.router.limits();
        let cap = limits.max_message_size.max(1);
        let queue_max = self.settings.write_queue_max.max(1);
        let total_max = self.settings.write_queue_total_max;
        let mut share = QueueShare::new(self.router.stats());
        // Empty while the connection is idle: taken when bytes arrive and
        // given back once they are all handled, so an idle phone's
        // connection holds no buffer.
        let mut buf: Vec<u8> = Vec::new();
        let mut filled = 0;
        let mut deadline = ReadDeadline::new(
            Instant::now(),
            self.settings.msg_data_timeout,
            self.settings.msg_read_timeout,
        );
        // One reply at a time from the router, appended to `pending`, which
        // is written once per read: pipelined requests are answered in
        // order with one syscall.
        let mut out = Vec::new();
        let mut pending = Vec::new();
        loop {
            let mut start = 0;
            let mut messages = 0;
            let mut close = None;
            let mut incomplete = false;
            // Stop taking requests once the replies queued reach the cap
            // (or, with one queued, the budget of all connections): the
            // rest stay in `buf` (and the kernel), unread, until the peer
            // takes what we have.
            while start < filled
                && pending.len() < queue_max
                && (pending.is_empty() || share.total_within(total_max))
            {
                match next_stream_frame(&buf[start..filled], limits) {
                    StreamFrame::Message { len } => {
                        let msg = &buf[start..start + len];
                        let action = self.router.handle(msg, &self.peer, &mut out);
                        tracing::trace!(remote = %self.peer.remote, proto = %self.peer.proto, len, ?action, "stream message");
                        match action {
                            Action::Reply { .. } => pending.extend_from_slice(&out),
                            // Replies on a connection stay in request order,
                            // so this connection waits for the commit.
                            Action::Deferred { reply, .. } => {
                                let bytes = reply.await;
                                self.router.stats().replies.count(&bytes);
                                pending.extend_from_slice(&bytes);
                            }
                            Action::Absorb | Action::Drop(_) => {}
                        }
                        start += len;
                        messages += 1;
                        share.set(pending.len());
                    }
                    StreamFrame::Ping { len } => {
                        // RFC 5626 §3.5.1: double CRLF ping → single CRLF pong.
                        pending.extend_from_slice(b"\r\n");
                        CoreStats::inc(&self.router.stats().keepalives);
                        if let Some(c) = self.peer.conn {
                            self.router.flow_pinged(c);
                        }
                        start += len;
                    }
                    StreamFrame::Skip { len } => start += len,
                    StreamFrame::Incomplete => {
                        incomplete = true;
                        break;
                    }
                    StreamFrame::TooLarge => {
                        CoreStats::inc(&self.router.stats().dropped);
                        close = Some(Close::TooLarge);
                        break;
                    }
                    StreamFrame::Unframeable { head_len, error } => {
                        let head = &buf[start..start + head_len];
                        let action = self
                            .router
                            .reject_unframeable(head, error, &self.peer, &mut out);
                        tracing::debug!(remote = %self.peer.remote, ?error, ?action, "stream message cannot be taken");
                        if let Action::Reply { .. } = action {
                            pending.extend_from_slice(&out);
                        }
                        close = Some(if error == ParseError::MessageTooLarge {
                            Close::TooLarge
                        } else {
                            Close::Unframeable
                        });
                        break;
                    }
                }
            }
            // The loop stopped at the queue limits with whole requests
            // still buffered (not at an unfinished one, not to close).
            let paused = close.is_none() && !incomplete && start < filled;
            if paused {
                CoreStats::inc(&self.router.stats().tcp_sendq_full);
            }
            if !pending.is_empty() {
                if let Err(e) = self.write(stream, &pending).await {
                    return e;
                }
                share.set(0);
                // Given back, not kept: idle connections are the many.
                pending = Vec::new();
                out = Vec::new();
            }
            if let Some(close) = close {
                return close;
            }
            // Keep the unframed tail at the front of the buffer.
            buf.copy_within(start..filled, 0);
            filled -= start;
            if paused {
                // Requests already buffered are answered before any more
                // are read. What this pass framed still counts: without
                // it a connection whose first read held a large query and
                // more would be closed as having sent no whole message.
                deadline.framed(Instant::now(), messages, start > 0, filled);
                continue;
            }
            // Measured after the write: time spent waiting for the peer to
            // take our replies is not held against its next message.
            deadline.framed(Instant::now(), messages, start > 0, filled);
            if filled == 0 && !stream.holds_input() {
                // Idle again: the buffer goes back; the next read takes a
                // new one once the socket has something.
                buf = Vec::new();
            } else if filled == buf.len() && !buf.is_empty() {
                if buf.len() >= cap {
                    // Cannot happen with a correct framer (it says
                    // TooLarge first); never grow past the limit anyway.
                    CoreStats::inc(&self.router.stats().dropped);
                    return Close::TooLarge;
                }
                let grown = buf.len().saturating_mul(2).min(cap);
                buf.resize(grown, 0);
            }
            let idle_by = Instant::now() + self.settings.idle_timeout;
            let (by, late) = match deadline.next() {
                Some((t, late)) if t < idle_by => (t, Some(late)),
                _ => (idle_by, None),
            };
            let released_wait =
                crate::flow::last_binding_gone(flow, self.settings.close_expired_tcp);
            let outbound = crate::flow::next_request(flow);
            let read = tokio::select! {
                biased;
                () = shutdown.wait() => return Close::Shutdown,
                () = released_wait => {
                    // Told under the table's lock; asked again here, as a
                    // new binding may have come meanwhile.
                    match self.peer.conn {
                        Some(c) if !self.router.flow_in_use(c) => return Close::BindingsGone,
                        _ => continue,
                    }
                }
                request = outbound => {
                    // A request to a binding on this connection (a
                    // keepalive): written at the top of the loop, in turn
                    // with the replies.
                    pending.extend_from_slice(&request);
                    share.set(pending.len());
                    continue;
                }
                r = tokio::time::timeout_at(by, read_some(stream, &mut buf, filled, cap)) => r,
            };
            match read {
                // A connection that carries a live binding is the only way
                // to reach its phone: idle is not a reason to close it.
                Err(_elapsed)
                    if late.is_none()
                        && self.peer.conn.is_some_and(|c| self.router.flow_in_use(c)) =>
                {
                    continue
                }
                Err(_elapsed) => return late.map_or(Close::Idle, Close::Late),
                Ok(Ok(0)) => return Close::PeerClosed,
                Ok(Ok(n)) => filled += n,
                Ok(Err(e)) => return Close::ReadError(e),
            }
        }
    }

    /// Writes all of `bytes`, giving up after the send timeout so a peer
    /// that stopped reading cannot hold this task forever.
    async fn write<S: SipStream>(&self, stream: &mut S, bytes: &[u8]) -> Result<(), Close> {
        let write = async {
            stream.write_all(bytes).await?;
            // TLS holds records in its own buffer until flushed.
            stream.flush().await
        };
        match tokio::time::timeout(self.settings.send_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Close::WriteFailed(e)),
            Err(_elapsed) => Err(Close::WriteTimeout),
        }
    }
}

/// Reads into `buf` after its first `filled` bytes. An empty `buf` (an
/// idle connection) is given [`INITIAL_BUFFER`] bytes only once the socket
/// is readable or the stream holds input already. Cancel-safe as the
/// stream's `read` is: a buffer taken and not read into is given back at
/// the next idle point.
async fn read_some<S: SipStream>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    filled: usize,
    cap: usize,
) -> io::Result<usize> {
    if buf.is_empty() {
        if !stream.holds_input() {
            stream.tcp().readable().await?;
        }
        buf.resize(INITIAL_BUFFER.min(cap), 0);
    }
    stream.read(&mut buf[filled..]).await
}

/// Closes our sending side and discards input for a short, bounded time,
/// so the peer reads our last reply before the socket goes away.
async fn linger<S: SipStream>(mut stream: S) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER;
    // On the heap: an array here would sit in every connection task's
    // future, lingering or not (4 KiB per idle phone).
    let mut scratch = vec![0u8; 4096];
    let mut discarded = 0usize;
    while discarded < LINGER_MAX_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests;
