//! The sockets and open connections a request to a binding can leave by,
//! and sending on them. The transports register what they open; senders
//! (keepalive, later call delivery) only name a [`Target`].

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use dashmap::DashMap;
use smallvec::SmallVec;
use tokio::sync::Notify;

use super::plan::{Sockets, Target};
use crate::datagram::SendBatch;
use crate::peer::ConnId;

/// Requests waiting for one connection's task to write them. Small: a
/// connection that does not drain (a peer that stopped reading) refuses
/// more instead of holding memory for it.
pub const CONN_QUEUE: usize = 32;

/// Flow counters (`core:flow_*` statistics).
#[derive(Debug, Default)]
pub struct FlowStats {
    /// Requests handed to a socket or a connection.
    pub sent: AtomicU64,
    /// Requests the kernel refused or a closed connection could not take.
    pub failed: AtomicU64,
    /// Requests refused because the connection's queue was full.
    pub queue_full: AtomicU64,
}

/// Why a request was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the connection closed")]
    Closed,
    #[error("the connection's send queue is full")]
    QueueFull,
    #[error("no UDP socket of kamrs is bound to {0}")]
    NoSocket(SocketAddr),
    #[error("the kernel refused the datagram: {0}")]
    Io(String),
}

/// Requests to send together with [`Flows::send_all`]: what a sender
/// gathered over one round of work (a keepalive tick), so that datagrams
/// leave in batches.
#[derive(Default)]
pub struct Outbox {
    targets: Vec<Target>,
    bytes: Vec<Vec<u8>>,
}

impl Outbox {
    pub fn push(&mut self, target: Target, bytes: Vec<u8>) {
        self.targets.push(target);
        self.bytes.push(bytes);
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// One of our UDP sockets and the (outbox index, destination) of each
/// datagram leaving from it.
type BySocket = (SocketAddr, Vec<(usize, SocketAddr)>);

/// One open stream connection as the senders see it and its task reads
/// it: the requests queued for it and the "last binding gone" signal.
///
/// One small allocation per connection, an empty queue holding nothing:
/// a tokio channel here cost 1.3 KiB per idle phone (its first block of
/// 32 slots is allocated up front), more than the rest of a TCP
/// connection's state.
#[derive(Default)]
pub struct ConnEntry {
    /// Woken when the connection's last binding goes (`close_expired_tcp`).
    pub released: Notify,
    queue: std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>,
    queued: Notify,
}

/// A connection's registration, removed when the connection ends.
pub struct ConnGuard {
    flows: Arc<Flows>,
    conn: ConnId,
    pub shared: Arc<ConnEntry>,
}

impl ConnGuard {
    /// The next request senders queued for this connection, in order.
    /// Cancel-safe: a request is taken only in the poll that returns it.
    pub async fn outbound(&self) -> Vec<u8> {
        loop {
            if let Some(bytes) = crate::util::lock(&self.shared.queue).pop_front() {
                return bytes;
            }
            self.shared.queued.notified().await;
        }
    }
}

/// The next request queued for `flow`; never without a flow (a
/// connection that is not registered, for a `tokio::select!` arm).
pub async fn next_request(flow: Option<&ConnGuard>) -> Vec<u8> {
    match flow {
        Some(f) => f.outbound().await,
        None => std::future::pending().await,
    }
}

/// When `flow`'s last binding goes, if `watch` (`close_expired_tcp`);
/// never otherwise.
pub async fn last_binding_gone(flow: Option<&ConnGuard>, watch: bool) {
    match flow {
        Some(f) if watch => f.shared.released.notified().await,
        _ => std::future::pending().await,
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.flows.conns.remove(&self.conn);
    }
}

/// Our UDP sockets and open stream connections. One per process, shared.
#[derive(Default)]
pub struct Flows {
    /// A handful of sockets (one per `listen` entry), read far more often
    /// than written.
    udp: RwLock<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    conns: DashMap<ConnId, Arc<ConnEntry>>,
    pub stats: FlowStats,
}

impl Flows {
    pub fn new() -> Arc<Flows> {
        Arc::new(Flows::default())
    }

    /// A UDP socket requests may leave from (blocking or not: sends never
    /// wait).
    pub fn add_udp(&self, socket: Arc<UdpSocket>) {
        let Ok(local) = socket.local_addr() else {
            return;
        };
        let mut udp = self.udp.write().unwrap_or_else(PoisonError::into_inner);
        udp.retain(|(a, _)| *a != local);
        udp.push((local, socket));
    }

    /// Registers the connection `conn` while the guard lives.
    pub fn open_conn(self: &Arc<Self>, conn: ConnId) -> ConnGuard {
        let shared = Arc::new(ConnEntry::default());
        self.conns.insert(conn, Arc::clone(&shared));
        ConnGuard {
            flows: Arc::clone(self),
            conn,
            shared,
        }
    }

    /// Tells connection `conn`, if open, that it carries no binding any
    /// more. Cheap: the location table calls it inside its edits.
    pub fn released(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.released.notify_one();
        }
    }

    /// How many stream connections are open.
    pub fn conns_open(&self) -> usize {
        self.conns.len()
    }

    /// Sends everything in `outbox` and empties it, without waiting:
    /// datagrams leave in batches (one `sendmmsg` per socket and up to
    /// `tx`'s capacity), connection requests are queued on their
    /// connections. Returns how many were sent; the rest were refused and
    /// counted like [`send`](Self::send)'s.
    pub fn send_all(&self, outbox: &mut Outbox, tx: &mut SendBatch) -> usize {
        let mut sent = 0;
        // Most deployments have one UDP socket per address family.
        let mut by_socket: SmallVec<[BySocket; 2]> = SmallVec::new();
        for (i, target) in outbox.targets.iter().enumerate() {
            match *target {
                Target::Datagram { local, dest } => {
                    match by_socket.iter_mut().find(|(l, _)| *l == local) {
                        Some((_, v)) => v.push((i, dest)),
                        None => by_socket.push((local, vec![(i, dest)])),
                    }
                }
                Target::Conn { .. } => {
                    let bytes = std::mem::take(&mut outbox.bytes[i]);
                    sent += usize::from(self.send(target, bytes).is_ok());
                }
            }
        }
        for (local, dests) in &mut by_socket {
            // Each destination's datagrams back to back, longest first:
            // runs of equal length to one peer (everything behind an SBC or
            // one NAT'd host) leave as one segmented message, and a peer
            // woken by the first finds the rest already queued instead of
            // being woken (and the wake paid for here) once per datagram.
            let len_of = |i: usize| outbox.bytes.get(i).map_or(0, Vec::len);
            dests.sort_by_key(|&(i, dest)| (dest, std::cmp::Reverse(len_of(i))));
            let Some(socket) = self.udp_socket(*local) else {
                self.stats
                    .failed
                    .fetch_add(dests.len() as u64, Ordering::Relaxed);
                continue;
            };
            for chunk in dests.chunks(tx.capacity().max(1)) {
                let mut refused = 0;
                tx.send(&socket, &outbox.bytes, chunk, |_, _, _| refused += 1);
                sent += chunk.len() - refused;
                self.stats
                    .sent
                    .fetch_add((chunk.len() - refused) as u64, Ordering::Relaxed);
                self.stats
                    .failed
                    .fetch_add(refused as u64, Ordering::Relaxed);
            }
        }
        outbox.targets.clear();
        outbox.bytes.clear();
        sent
    }

    fn udp_socket(&self, local: SocketAddr) -> Option<Arc<UdpSocket>> {
        let udp = self.udp.read().unwrap_or_else(PoisonError::into_inner);
        udp.iter()
            .find(|(a, _)| *a == local)
            .map(|(_, s)| Arc::clone(s))
    }

    /// Sends `bytes` the way `target` says, without waiting: a full socket
    /// buffer or connection queue drops the request (counted).
    pub fn send(&self, target: &Target, bytes: Vec<u8>) -> Result<(), SendError> {
        let result = match *target {
            Target::Conn { conn, .. } => match self.conns.get(&conn) {
                None => Err(SendError::Closed),
                Some(c) => {
                    let mut queue = crate::util::lock(&c.queue);
                    if queue.len() >= CONN_QUEUE {
                        Err(SendError::QueueFull)
                    } else {
                        queue.push_back(bytes);
                        drop(queue);
                        c.queued.notify_one();
                        Ok(())
                    }
                }
            },
            Target::Datagram { local, dest } => match self.udp_socket(local) {
                None => Err(SendError::NoSocket(local)),
                Some(s) => socket2::SockRef::from(&*s)
                    .send_to_with_flags(&bytes, &dest.into(), libc::MSG_DONTWAIT)
                    .map(drop)
                    .map_err(|e| SendError::Io(e.to_string())),
            },
        };
        let counter = match &result {
            Ok(()) => &self.stats.sent,
            Err(SendError::QueueFull) => &self.stats.queue_full,
            Err(_) => &self.stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }
}

impl Sockets for Flows {
    fn conn_open(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    fn has_udp(&self, local: SocketAddr) -> bool {
        let udp = self.udp.read().unwrap_or_else(PoisonError::into_inner);
        udp.iter().any(|(a, _)| *a == local)
    }

    fn udp_for(&self, dest: SocketAddr) -> Option<SocketAddr> {
        let udp = self.udp.read().unwrap_or_else(PoisonError::into_inner);
        // A socket bound to the loopback cannot send off the host.
        let usable = |a: &SocketAddr| {
            a.is_ipv4() == dest.is_ipv4() && (!a.ip().is_loopback() || dest.ip().is_loopback())
        };
        udp.iter().map(|(a, _)| *a).find(usable)
    }
}

#[cfg(test)]
mod tests;
