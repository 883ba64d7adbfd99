//! Sockets: bind the `listen` addresses and move bytes between them and
//! [`Router`](crate::route::Router).
//!
//! The transports know nothing of SIP beyond stream framing: a datagram or a
//! frame cut from a TCP stream goes to [`Router::handle`](crate::route::Router::handle),
//! and whatever reply it writes goes back. Each UDP socket is served by its
//! own worker threads (see [`udp`]); each stream listener (TCP, TLS, WS,
//! WSS) and each connection is its own task, so one slow or malicious peer
//! can only ever stall itself.
//!
//! Every stream transport runs on the same TCP accept loop and limits
//! ([`tcp`]); TLS ([`tls`]) wraps the stream before SIP framing, WebSocket
//! ([`ws`]) replaces the framing by one SIP message per WebSocket message.

pub mod ip_limit;
pub mod read_deadline;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod ws;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::flow::Flows;
use crate::peer::{ListenAddr, Proto};
use crate::route::Router;

/// Kernel socket buffers we ask for. Bursts of REGISTERs (a fleet of phones
/// rebooting after a power cut) arrive faster than one task drains them;
/// the default ~200 KiB receive buffer drops them. The kernel caps the value
/// at `net.core.rmem_max` / `wmem_max`, which is fine: we ask, it decides.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Pending-connection queue for TCP listeners.
const TCP_BACKLOG: i32 = 1024;

/// A socket bound to one `listen` entry, not yet serving.
#[derive(Debug)]
pub enum Listener {
    /// Blocking: served by dedicated threads, not by the runtime.
    Udp(std::net::UdpSocket),
    /// TCP, TLS, WS or WSS: a TCP listener and what runs on it.
    Stream(Proto, tokio::net::TcpListener),
}

impl Listener {
    /// The address actually bound, with the port the kernel chose when the
    /// config said 0.
    pub fn local(&self) -> io::Result<ListenAddr> {
        Ok(match self {
            Listener::Udp(s) => ListenAddr::new(Proto::Udp, s.local_addr()?),
            Listener::Stream(proto, l) => ListenAddr::new(*proto, l.local_addr()?),
        })
    }
}

/// A `listen` entry that could not be bound. The message says what the
/// admin can do about it, since that is the usual first-run failure.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {hint}")]
pub struct BindError {
    pub addr: ListenAddr,
    hint: String,
    #[source]
    pub source: io::Error,
}

impl BindError {
    fn new(addr: ListenAddr, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => format!(
                "port in use: is another kamrs or SIP server running? Stop it or choose another port with --listen or `listen` ({source})"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port of 1024 or more ({source})"
            ),
            io::ErrorKind::AddrNotAvailable => format!(
                "address not available: no local interface has this IP; use 127.0.0.1, 0.0.0.0, [::] or an address of this machine ({source})"
            ),
            _ => source.to_string(),
        };
        BindError { addr, hint, source }
    }
}

/// Binds one `listen` entry. Must run inside the tokio runtime, which
/// registers the socket with its reactor.
pub fn bind(listen: &ListenAddr) -> Result<Listener, BindError> {
    let fail = |e| BindError::new(*listen, e);
    let addr = listen.addr;
    match listen.proto {
        Proto::Udp => {
            let socket = new_socket(addr, Type::DGRAM, Protocol::UDP).map_err(fail)?;
            // The UDP workers block in recvmmsg (udp.rs).
            socket.set_nonblocking(false).map_err(fail)?;
            socket.bind(&addr.into()).map_err(fail)?;
            Ok(Listener::Udp(socket.into()))
        }
        Proto::Tcp | Proto::Tls | Proto::Ws | Proto::Wss => {
            let socket = new_socket(addr, Type::STREAM, Protocol::TCP).map_err(fail)?;
            // Lets a restarted kamrs bind while old connections sit in
            // TIME_WAIT; it does not allow two live listeners on one port.
            socket.set_reuse_address(true).map_err(fail)?;
            socket.bind(&addr.into()).map_err(fail)?;
            socket.listen(TCP_BACKLOG).map_err(fail)?;
            let std: std::net::TcpListener = socket.into();
            tokio::net::TcpListener::from_std(std)
                .map(|l| Listener::Stream(listen.proto, l))
                .map_err(fail)
        }
    }
}

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // `[::]` must not also grab the IPv4 port: `udp:0.0.0.0:5060` and
        // `udp:[::]:5060` are two separate listen entries.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    if ty == Type::DGRAM {
        // Not fatal: a smaller buffer only means earlier drops under load.
        if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
            tracing::warn!(%addr, "cannot enlarge the UDP receive buffer: {e}");
        }
        if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
            tracing::warn!(%addr, "cannot enlarge the UDP send buffer: {e}");
        }
    }
    Ok(socket)
}

/// TCP knobs, taken from the config (`Config::tcp_settings`). Clones share one per-address table,
/// so `tcp_accept_iplimit` holds across every TCP listener.
#[derive(Debug, Clone)]
pub struct TcpSettings {
    /// Close a connection after this long without receiving a byte
    /// (`tcp_connection_lifetime`).
    pub idle_timeout: Duration,
    /// Most connections open at once per listener (`tcp_max_connections`).
    pub max_connections: usize,
    /// Connections per source address (`tcp_accept_iplimit`).
    pub per_ip: Arc<ip_limit::IpLimit>,
    /// From accept to the first whole message (`tcp_msg_data_timeout`).
    pub msg_data_timeout: Duration,
    /// From a message's first byte to its last (`tcp_msg_read_timeout`).
    pub msg_read_timeout: Duration,
    /// Reply bytes queued on one connection before it is read no further
    /// until they are written (`tcp_conn_wq_max`).
    pub write_queue_max: usize,
    /// Reply bytes queued on all connections together (`tcp_wq_max`,
    /// counted in `CoreStats::tcp_queued`): over it, a connection that
    /// has a reply queued writes it before taking another request.
    pub write_queue_total_max: usize,
    /// Longest the peer may take to accept the queued replies before we
    /// give up on it (`tcp_send_timeout`): one that never reads would
    /// otherwise hold its task and buffers forever.
    pub send_timeout: Duration,
    /// A connection that carries live bindings is not closed for being
    /// idle; when it is lost anyway, its bindings are removed
    /// (`handle_lost_tcp`).
    pub handle_lost_tcp: bool,
    /// Close a connection once the last binding on it expired or went
    /// (`close_expired_tcp`).
    pub close_expired_tcp: bool,
    /// The certificate of `tls:` and `wss:` listeners; `None` without a
    /// `[tls]` certificate (the config check then refuses such listeners).
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// `[websocket]`.
    pub websocket: ws::WsSettings,
}

/// A clonable "stop now" signal for every transport task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending half of [`Shutdown`], kept by `main`.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Resolves once shutdown was triggered (or its trigger dropped, which
    /// means `main` is gone and nobody is left to wait for).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// Starts serving a bound socket on the current runtime (UDP: with
/// `udp_workers` threads, the resolved `udp_workers` setting), registered
/// in `flows` so requests to bindings can leave by it.
pub fn spawn(
    listener: Listener,
    router: Arc<Router>,
    tcp: TcpSettings,
    udp_workers: usize,
    flows: Arc<Flows>,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    match listener {
        Listener::Udp(socket) => {
            tokio::spawn(udp::serve(socket, router, udp_workers, flows, shutdown))
        }
        Listener::Stream(proto, listener) => {
            tokio::spawn(tcp::serve(listener, proto, router, tcp, flows, shutdown))
        }
    }
}
