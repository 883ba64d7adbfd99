//! TCP: an accept loop per listener and a task per connection.
//!
//! The stream is cut into messages by [`next_stream_frame`]; replies go
//! back on the same connection, in the order the requests arrived. Every
//! resource a peer can make us hold is bounded: the number of connections
//! (`tcp_max_connections`), the receive buffer (`max_message_size`), the
//! time a connection may stay silent (`tcp_connection_lifetime`) and the
//! time one write may take ([`TcpSettings::send_timeout`]).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Shutdown, TcpSettings};
use crate::route::{Action, Peer, Proto, Router};
use crate::sip::framing::{next_stream_frame, StreamFrame};
use crate::stats::CoreStats;

/// Pause after an accept error. EMFILE/ENFILE repeat until a descriptor is
/// freed; retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Receive buffers start small and double up to `max_message_size`, so
/// thousands of idle phones cost kilobytes, not 64 KiB, each.
const INITIAL_BUFFER: usize = 4096;

/// After we decide to close (bad framing, over-size message) we stop
/// sending and discard what the peer still sends for at most this long.
/// Closing a socket with unread data makes the kernel send RST, which can
/// destroy our last reply before the peer reads it.
const LINGER: Duration = Duration::from_millis(500);
/// …and at most this many bytes.
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// Accepts connections until shutdown.
pub async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    settings: TcpSettings,
    mut shutdown: Shutdown,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("tcp listener has no local address, not serving it: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    tracing::debug!(%local, max_connections = settings.max_connections, "tcp serving");
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%local, "tcp accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Over the cap the connection is accepted and closed at once: left
        // in the backlog it would look alive to the peer and still cost a
        // kernel socket.
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            CoreStats::inc(&router.stats().tcp_refused);
            tracing::debug!(%remote, "tcp connection refused: tcp_max_connections reached");
            drop(stream);
            continue;
        };
        let conn = Connection {
            peer: Peer {
                proto: Proto::Tcp,
                remote,
                local: stream.local_addr().unwrap_or(local),
            },
            router: Arc::clone(&router),
            settings,
            _permit: permit,
        };
        tokio::spawn(conn.run(stream, shutdown.clone()));
    }
    tracing::debug!(%local, "tcp stopped accepting");
}

/// How a connection ended, for the debug log.
#[derive(Debug)]
enum Close {
    PeerClosed,
    Idle,
    TooLarge,
    Unframeable,
    Shutdown,
    ReadError(io::Error),
    WriteFailed(io::Error),
    WriteTimeout,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::PeerClosed => f.write_str("closed by peer"),
            Close::Idle => f.write_str("idle for tcp_connection_lifetime"),
            Close::TooLarge => f.write_str("message over max_message_size"),
            Close::Unframeable => f.write_str("message cannot be framed"),
            Close::Shutdown => f.write_str("shutting down"),
            Close::ReadError(e) => write!(f, "read error: {e}"),
            Close::WriteFailed(e) => write!(f, "write error: {e}"),
            Close::WriteTimeout => f.write_str("peer did not read within the send timeout"),
        }
    }
}

struct Connection {
    peer: Peer,
    router: Arc<Router>,
    settings: TcpSettings,
    /// Holds one of the `tcp_max_connections` slots until the task ends.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, mut stream: TcpStream, shutdown: Shutdown) {
        // Replies are small and latency matters more than packet count;
        // pipelined replies are batched into one write below anyway.
        let _ = stream.set_nodelay(true);
        tracing::debug!(remote = %self.peer.remote, "tcp connection open");
        let close = self.serve(&mut stream, shutdown).await;
        tracing::debug!(remote = %self.peer.remote, reason = %close, "tcp connection closed");
        if matches!(close, Close::TooLarge | Close::Unframeable) {
            linger(stream).await;
        }
    }

    async fn serve(&self, stream: &mut TcpStream, mut shutdown: Shutdown) -> Close {
        let limits = self.router.limits();
        let cap = limits.max_message_size.max(1);
        let mut buf = vec![0u8; INITIAL_BUFFER.min(cap)];
        let mut filled = 0;
        // One reply at a time from the router, appended to `pending`, which
        // is written once per read: pipelined requests are answered in
        // order with one syscall.
        let mut out = Vec::with_capacity(2048);
        let mut pending = Vec::with_capacity(2048);
        loop {
            let mut start = 0;
            let mut close = None;
            while start < filled {
                match next_stream_frame(&buf[start..filled], limits) {
                    StreamFrame::Message { len } => {
                        let msg = &buf[start..start + len];
                        let action = self.router.handle(msg, &self.peer, &mut out);
                        tracing::trace!(remote = %self.peer.remote, len, ?action, "tcp message");
                        match action {
                            Action::Reply { .. } => pending.extend_from_slice(&out),
                            // Replies on a connection stay in request order,
                            // so this connection waits for the commit.
                            Action::Deferred { pending: p, .. } => match p.commit.await {
                                Ok(()) => pending.extend_from_slice(&out),
                                Err(e) => {
                                    self.router.registrar().commit_failed(&e);
                                    pending.extend_from_slice(&p.on_failure);
                                }
                            },
                            Action::Absorb | Action::Drop(_) => {}
                        }
                        start += len;
                    }
                    StreamFrame::Ping { len } => {
                        // RFC 5626 §3.5.1: double CRLF ping → single CRLF pong.
                        pending.extend_from_slice(b"\r\n");
                        start += len;
                    }
                    StreamFrame::Skip { len } => start += len,
                    StreamFrame::Incomplete => break,
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
                        tracing::debug!(remote = %self.peer.remote, ?error, ?action, "tcp message cannot be framed");
                        if let Action::Reply { .. } = action {
                            pending.extend_from_slice(&out);
                        }
                        close = Some(Close::Unframeable);
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                if let Err(e) = self.write(stream, &pending).await {
                    return e;
                }
                pending.clear();
            }
            if let Some(close) = close {
                return close;
            }
            // Keep the unframed tail at the front of the buffer.
            buf.copy_within(start..filled, 0);
            filled -= start;
            if filled == buf.len() {
                if buf.len() >= cap {
                    // Cannot happen with a correct framer (it says
                    // TooLarge first); never grow past the limit anyway.
                    CoreStats::inc(&self.router.stats().dropped);
                    return Close::TooLarge;
                }
                let grown = buf.len().saturating_mul(2).min(cap);
                buf.resize(grown, 0);
            }
            let read = tokio::select! {
                biased;
                () = shutdown.wait() => return Close::Shutdown,
                r = tokio::time::timeout(self.settings.idle_timeout, stream.read(&mut buf[filled..])) => r,
            };
            match read {
                Err(_elapsed) => return Close::Idle,
                Ok(Ok(0)) => return Close::PeerClosed,
                Ok(Ok(n)) => filled += n,
                Ok(Err(e)) => return Close::ReadError(e),
            }
        }
    }

    /// Writes all of `bytes`, giving up after the send timeout so a peer
    /// that stopped reading cannot hold this task forever.
    async fn write(&self, stream: &mut TcpStream, bytes: &[u8]) -> Result<(), Close> {
        match tokio::time::timeout(self.settings.send_timeout, stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Close::WriteFailed(e)),
            Err(_elapsed) => Err(Close::WriteTimeout),
        }
    }
}

/// Closes our sending side and discards input for a short, bounded time,
/// so the peer reads our last reply before the socket goes away.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    let mut discarded = 0usize;
    while discarded < LINGER_MAX_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
}
