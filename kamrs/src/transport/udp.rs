//! UDP: one datagram is one SIP message (RFC 3261 §18.3 does not apply).
//!
//! Each UDP socket is served by `udp_workers` dedicated threads sharing the
//! socket, the way Kamailio's UDP children share one. A thread takes up to
//! [`BATCH`] queued datagrams per `recvmmsg`, handles them with
//! [`Router::handle`], and sends all the replies with one `sendmmsg`.
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
                            send_nowait(&socket, &bytes, dest, router.stats());
                        });
                    }
                    Action::Absorb | Action::Drop(_) => {}
                }
            }
            tx.send(&self.socket, &outs, &replies, self.router.stats());
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

/// Whether a batch syscall failure means "this kernel (or a seccomp
/// filter) does not offer it", after which the worker uses the one-datagram
/// calls for good.
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM))
}

/// The per-datagram bookkeeping `recvmmsg` and `sendmmsg` share: an
/// address, its length, one iovec and the header pointing at both, per
/// slot. Kept between calls only to reuse the allocations.
struct Slots {
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Slots {
    fn new(slots: usize) -> Self {
        Slots {
            // SAFETY: sockaddr_storage is plain old data (integers and byte
            // arrays); all zeros is a valid value.
            addrs: vec![unsafe { std::mem::zeroed() }; slots],
            addr_lens: vec![0; slots],
            iovs: Vec::with_capacity(slots),
            hdrs: Vec::with_capacity(slots),
        }
    }

    /// Rebuilds `hdrs`, one per iovec pushed since `iovs` was cleared,
    /// each naming the address of its slot with `addr_lens` as its length.
    /// Call it after the last push: the headers point into `iovs` and
    /// `addrs`, which must not move until the syscall returns.
    fn headers(&mut self) {
        self.hdrs.clear();
        for k in 0..self.iovs.len().min(self.addrs.len()) {
            // SAFETY: mmsghdr is plain old data (integers and raw
            // pointers); all zeros (null pointers, zero lengths) is valid.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = std::ptr::addr_of_mut!(self.addrs[k]).cast();
            h.msg_hdr.msg_namelen = self.addr_lens[k];
            h.msg_hdr.msg_iov = std::ptr::addr_of_mut!(self.iovs[k]);
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
    }
}

/// Receive buffers of one worker and the `recvmmsg` bookkeeping.
struct RecvBatch {
    /// `slots` buffers of `stride` bytes, back to back.
    bufs: Vec<u8>,
    stride: usize,
    slots: usize,
    /// Per slot: datagram length, valid for the last `recv`; the sender is
    /// in `msgs`.
    lens: Vec<usize>,
    msgs: Slots,
    /// Cleared once `recvmmsg` is refused: single `recv_from` from then on.
    mmsg: bool,
}

impl RecvBatch {
    fn new(slots: usize, stride: usize) -> Self {
        let slots = slots.max(1);
        RecvBatch {
            // Pages only become resident as datagrams are written into them.
            bufs: vec![0; slots.saturating_mul(stride)],
            stride,
            slots,
            lens: vec![0; slots],
            msgs: Slots::new(slots),
            mmsg: true,
        }
    }

    /// Waits for at least one datagram and takes up to `slots` of those
    /// queued; returns how many.
    fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        if self.mmsg {
            // Block for the first datagram only, then take what is queued.
            match self.recv_many(socket, libc::MSG_WAITFORONE) {
                Err(e) if unsupported(&e) => {
                    tracing::info!("recvmmsg unavailable ({e}); receiving one datagram per call");
                    self.mmsg = false;
                }
                r => return r,
            }
        }
        let (n, remote) = socket.recv_from(&mut self.bufs[..self.stride])?;
        self.lens[0] = n;
        write_sockaddr(remote, &mut self.msgs.addrs[0], &mut self.msgs.addr_lens[0]);
        Ok(1)
    }

    /// Takes up to `slots` queued datagrams without waiting; `WouldBlock`
    /// when there are none (or when only one-datagram calls are available:
    /// then the leader alone serves the socket).
    fn recv_nowait(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        if !self.mmsg {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.recv_many(socket, libc::MSG_DONTWAIT) {
            Err(e) if unsupported(&e) => {
                self.mmsg = false;
                Err(io::ErrorKind::WouldBlock.into())
            }
            r => r,
        }
    }

    fn recv_many(&mut self, socket: &UdpSocket, flags: libc::c_int) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let m = &mut self.msgs;
        m.iovs.clear();
        for (chunk, len) in self
            .bufs
            .chunks_exact_mut(self.stride)
            .zip(m.addr_lens.iter_mut())
            .take(self.slots)
        {
            m.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            });
            // The kernel may fill the whole sockaddr_storage.
            *len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        m.headers();
        // SAFETY: `hdrs` holds `hdrs.len()` initialised headers; each
        // points at one iovec of `iovs`, whose buffer is a disjoint
        // `stride`-byte chunk of `bufs`, and at one sockaddr_storage of
        // `addrs` with its true size as msg_namelen. None of these vectors
        // is touched (so none reallocates) until the call returns, and the
        // kernel writes at most iov_len / msg_namelen bytes.
        let r = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                m.hdrs.as_mut_ptr(),
                m.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (r as usize).min(m.hdrs.len());
        for (i, h) in m.hdrs.iter().enumerate().take(n) {
            // A truncated datagram reports the bytes stored, at most the
            // slot (max + 1), which the caller counts as too large.
            self.lens[i] = (h.msg_len as usize).min(self.stride);
            m.addr_lens[i] = h.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// Datagram `i` of the last `recv` and its sender; `None` when the
    /// kernel gave an address we cannot reply to.
    fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.slots {
            return None;
        }
        let start = i * self.stride;
        let data = self.bufs.get(start..start + self.lens[i])?;
        let remote = read_sockaddr(&self.msgs.addrs[i], self.msgs.addr_lens[i])?;
        Some((data, remote))
    }
}

/// `sockaddr_storage` (as filled by the kernel) → `SocketAddr`.
fn read_sockaddr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is larger than and aligned for every
            // sockaddr type, and the kernel stored an AF_INET address of
            // full length in it.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for an AF_INET6 address.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `SocketAddr` → `sockaddr_storage`, for the single-datagram fallback and
/// for `sendmmsg`.
fn write_sockaddr(addr: SocketAddr, s: &mut libc::sockaddr_storage, len: &mut libc::socklen_t) {
    let sa = socket2::SockAddr::from(addr);
    let n = (sa.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: both pointers are valid for `n` bytes (n is capped at the
    // size of sockaddr_storage, which SockAddr's storage also is at least)
    // and they cannot overlap: `sa` is a local.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            (s as *mut libc::sockaddr_storage).cast::<u8>(),
            n,
        );
    }
    *len = n as libc::socklen_t;
}

/// The `sendmmsg` bookkeeping of one worker.
struct SendBatch {
    msgs: Slots,
    mmsg: bool,
}

impl SendBatch {
    fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        SendBatch {
            msgs: Slots::new(slots),
            mmsg: true,
        }
    }

    /// Sends `outs[i]` to `dest` for each `(i, dest)` of `replies`. A reply
    /// the kernel refuses is logged and skipped; the others still go.
    fn send(
        &mut self,
        socket: &UdpSocket,
        outs: &[Vec<u8>],
        replies: &[(usize, SocketAddr)],
        stats: &CoreStats,
    ) {
        let replies = &replies[..replies.len().min(self.msgs.addrs.len())];
        let mut done = 0;
        while done < replies.len() && self.mmsg {
            match self.send_many(socket, outs, &replies[done..]) {
                Ok(n) => done += n.max(1).min(replies.len() - done),
                Err(e) if unsupported(&e) => {
                    tracing::info!("sendmmsg unavailable ({e}); sending one datagram per call");
                    self.mmsg = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The first one of the rest failed: skip it.
                    let (i, dest) = replies[done];
                    send_failed(stats, dest, outs.get(i).map_or(0, Vec::len), &e);
                    done += 1;
                }
            }
        }
        for &(i, dest) in &replies[done..] {
            if let Some(out) = outs.get(i) {
                if let Err(e) = socket.send_to(out, dest) {
                    send_failed(stats, dest, out.len(), &e);
                }
            }
        }
    }

    /// One `sendmmsg` for `replies` (not empty); how many went out.
    fn send_many(
        &mut self,
        socket: &UdpSocket,
        outs: &[Vec<u8>],
        replies: &[(usize, SocketAddr)],
    ) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let m = &mut self.msgs;
        m.iovs.clear();
        for (k, &(i, dest)) in replies.iter().enumerate().take(m.addrs.len()) {
            let out = outs.get(i).map_or(&[][..], Vec::as_slice);
            write_sockaddr(dest, &mut m.addrs[k], &mut m.addr_lens[k]);
            // The kernel only reads through iov_base (sendmmsg), so the
            // cast from a shared slice to *mut is sound.
            m.iovs.push(libc::iovec {
                iov_base: out.as_ptr().cast_mut().cast(),
                iov_len: out.len(),
            });
        }
        m.headers();
        if m.hdrs.is_empty() {
            return Ok(0);
        }
        // SAFETY: `hdrs` holds `hdrs.len()` initialised headers, each
        // pointing at one iovec of `iovs` (over a reply buffer of `outs`,
        // borrowed for the whole call) and one address of `addrs` with its
        // length. Nothing is reallocated until the call returns; sendmmsg
        // only reads the buffers and addresses and writes `msg_len`.
        let r = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                m.hdrs.as_mut_ptr(),
                m.hdrs.len() as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests;
