//! UDP: one datagram is one SIP message (RFC 3261 §18.3 does not apply).
//!
//! Each UDP socket is served by `udp_workers` dedicated threads sharing the
//! socket, the way Kamailio's UDP children share one. A thread takes up to
//! [`BATCH`] queued datagrams per `recvmmsg`, handles them with
//! [`Router::handle`], and sends all the replies with one `sendmmsg`,
//! runs of replies to one peer as one segmented message
//! ([`crate::datagram::gso`]).
//!
//! Only one thread, the leader, blocks on the socket. The others (helpers)
//! sleep until the leader takes a full batch, which means datagrams are
//! queueing faster than one thread answers them; they then drain the socket
//! without blocking alongside it and go back to sleep once it is empty.
//! Letting every thread block on the socket instead made the kernel wake a
//! sleeping thread for almost every datagram (0.44 context switches per
//! REGISTER at 20,000/s with two threads, against 0.05 with one), which
//! cost more CPU than the second thread saved.
//!
//! Why threads and not tokio tasks: the router is synchronous, so a task
//! gains nothing from the runtime, and under load the epoll → wake → park
//! round trips of a task cost about as much CPU as the registrar itself
//! (bench/profile-refresh.txt: ~25 % in tokio's park/unpark and the
//! scheduler) and add their latency to every packet. A thread blocked in
//! `recvmmsg` is woken by the kernel directly.
//!
//! Why several threads on one socket rather than one `SO_REUSEPORT`
//! socket per thread: the kernel spreads `SO_REUSEPORT` traffic by the
//! sender's address and port, so everything from one peer (an edge proxy or
//! SBC forwarding for all phones, or one load generator) would land on one
//! thread; and a second kamrs (same uid) could silently bind the same port
//! and take half of the traffic instead of failing with "port in use".
//! With one shared socket the kernel hands each datagram to whichever
//! thread is waiting.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Shutdown;
use crate::datagram::{RecvBatch, SendBatch};
use crate::peer::{Peer, Proto};
use crate::route::{Action, Router};
use crate::stats::CoreStats;

/// Pause after a receive error so a persistent one (it should not happen on
/// a bound UDP socket, but kernels surprise) cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Most datagrams taken per `recvmmsg`. A batch is handled before its
/// replies leave, so a larger one delays the first reply of a burst by the
/// time the rest take (a few µs each); 16 already makes the per-syscall
/// cost small next to the per-datagram cost.
pub const BATCH: usize = 16;

/// How often a worker blocked on an idle socket looks at the stop flag
/// (the socket's receive timeout). Only matters at shutdown.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Reply buffers start this large; a 200 listing a few contacts fits.
const REPLY_CAPACITY: usize = 2048;

/// `udp_workers = 0`: one worker per CPU the process may run on.
pub fn workers_for(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Serves one UDP socket with `workers` threads until shutdown. The
/// returned future completes once every worker has stopped.
pub async fn serve(
    socket: UdpSocket,
    router: Arc<Router>,
    workers: usize,
    flows: Arc<crate::flow::Flows>,
    mut shutdown: Shutdown,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("udp socket has no local address, not serving it: {e}");
            return;
        }
    };
    // The leader blocks in recvmmsg; the timeout lets it notice `stop`.
    // Without it, it would still stop at the next datagram or at exit.
    if let Err(e) = socket.set_read_timeout(Some(STOP_POLL)) {
        tracing::warn!(%local, "cannot set the udp receive timeout, stopping may be slow: {e}");
    }
    let socket = Arc::new(socket);
    flows.add_udp(Arc::clone(&socket));
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let mut threads = Vec::with_capacity(workers);
    // Helpers first, so the leader (thread 0) can be given their handles.
    let mut helpers = Vec::with_capacity(workers);
    let mut leader_started = false;
    for i in (0..workers.max(1)).rev() {
        let leader = i == 0;
        let worker = Worker {
            socket: Arc::clone(&socket),
            router: Arc::clone(&router),
            local,
            stop: Arc::clone(&stop),
            runtime: runtime.clone(),
            helpers: if leader {
                std::mem::take(&mut helpers)
            } else {
                Vec::new()
            },
            leader,
        };
        match std::thread::Builder::new()
            .name(format!("kamrs-udp{i}"))
            .spawn(move || worker.run())
        {
            Ok(t) => {
                if leader {
                    leader_started = true;
                } else {
                    helpers.push(t.thread().clone());
                }
                threads.push(t);
            }
            Err(e) => tracing::error!(%local, "cannot start udp worker thread {i}: {e}"),
        }
    }
    if !leader_started {
        // The helpers alone would never be woken.
        tracing::error!(%local, "the udp leader thread could not start, not serving this socket");
        stop.store(true, Ordering::Release);
        return;
    }
    tracing::debug!(%local, workers = threads.len(), "udp serving");
    shutdown.wait().await;
    stop.store(true, Ordering::Release);
    let joined = tokio::task::spawn_blocking(move || {
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a udp worker thread panicked");
            }
        }
    });
    let _ = joined.await;
    tracing::debug!(%local, "udp stopped");
}

struct Worker {
    socket: Arc<UdpSocket>,
    router: Arc<Router>,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Write-through replies wait for their commit in tasks on the runtime.
    runtime: tokio::runtime::Handle,
    /// Whether this thread blocks on the socket (see the module docs).
    leader: bool,
    /// The leader's: threads to wake when it sees a backlog.
    helpers: Vec<std::thread::Thread>,
}

impl Worker {
    fn run(self) {
        // `tokio::spawn` anywhere below (deferred replies, a store's
        // helpers) needs a runtime context on this thread.
        let _rt = self.runtime.enter();
        let max = self.router.limits().max_message_size;
        // One byte more than the limit per slot, so a datagram that is too
        // long shows as `n > max` instead of a valid-looking truncation.
        let mut rx = RecvBatch::new(BATCH, max.saturating_add(1));
        let mut tx = SendBatch::new(BATCH);
        // Reused for every reply: no allocation per packet once warmed up.
        let mut outs: Vec<Vec<u8>> = (0..BATCH)
            .map(|_| Vec::with_capacity(REPLY_CAPACITY))
            .collect();
        let mut replies: Vec<(usize, SocketAddr)> = Vec::with_capacity(BATCH);
        while !self.stop.load(Ordering::Acquire) {
            let received = if self.leader {
                rx.recv(&self.socket)
            } else {
                rx.recv_nowait(&self.socket)
            };
            let n = match received {
                Ok(n) => n,
                Err(e) if is_timeout(&e) => {
                    if !self.leader {
                        // Drained: sleep until the leader sees a backlog
                        // again (or the stop flag needs a look).
                        std::thread::park_timeout(STOP_POLL);
                    }
                    continue;
                }
                Err(e) => {
                    tracing::debug!(local = %self.local, "udp receive error: {e}");
                    std::thread::sleep(ERROR_BACKOFF);
                    continue;
                }
            };
            if n == BATCH {
                // A full batch: more may be queued than one thread keeps
                // up with. Waking a helper that is already awake costs one
                // atomic operation.
                for h in &self.helpers {
                    h.unpark();
                }
            }
            replies.clear();
            for (i, out) in outs.iter_mut().enumerate().take(n) {
                let Some((data, remote)) = rx.get(i) else {
                    continue;
                };
                if data.len() > max {
                    CoreStats::inc(&self.router.stats().dropped);
                    tracing::debug!(%remote, len = data.len(), max, "udp datagram over max_message_size, dropped");
                    continue;
                }
                let peer = Peer {
                    proto: Proto::Udp,
                    remote,
                    local: self.local,
                    conn: None,
                };
                let action = self.router.handle(data, &peer, out);
                tracing::trace!(%remote, len = data.len(), ?action, "udp message");
                match action {
                    Action::Reply { dest } => replies.push((i, dest)),
                    Action::Deferred { dest, reply } => {
                        // The worker must not wait for the store: the reply
                        // waits in its own task. The registrar took the bytes
                        // out of `out`; give the buffer its room back.
                        out.reserve(REPLY_CAPACITY);
                        let socket = Arc::clone(&self.socket);
                        let router = Arc::clone(&self.router);
                        tokio::spawn(async move {
                            let bytes = reply.await;
                            router.stats().replies.count(&bytes);
                            send_nowait(&socket, &bytes, dest, router.stats());
                        });
                    }
                    Action::Absorb | Action::Drop(_) => {}
                }
            }
            let stats = self.router.stats();
            tx.send(&self.socket, &outs, &replies, |dest, len, e| {
                send_failed(stats, dest, len, e);
            });
        }
    }
}

/// A receive timeout (the idle tick) or a signal: nothing to report.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Sends from a runtime task on the workers' blocking socket: a full send
/// buffer must not block a runtime thread, so the datagram is dropped
/// instead (the UA retransmits, as after any UDP loss).
fn send_nowait(socket: &UdpSocket, bytes: &[u8], dest: SocketAddr, stats: &CoreStats) {
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock.send_to_with_flags(bytes, &dest.into(), libc::MSG_DONTWAIT) {
        send_failed(stats, dest, bytes.len(), &e);
    }
}

/// A reply the kernel would not send: counted (`sl:failures`) and logged
/// at most once per 10 s with the count since, never silently lost (issue
/// 13: replies over the datagram limit used to vanish at debug level).
fn send_failed(stats: &CoreStats, dest: SocketAddr, len: usize, e: &io::Error) {
    static LOG: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::new();
    CoreStats::inc(&stats.send_failures);
    if let Some(n) = LOG.event(crate::time::unix_now(), 10) {
        tracing::warn!(%dest, len, "{n} UDP repl(ies) could not be sent since the last report, the last: {e}");
    }
}

#[cfg(test)]
mod tests;
