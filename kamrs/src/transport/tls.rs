//! The TLS handshake of a connection accepted on a `tls:` or `wss:`
//! listener, bounded in time; afterwards the connection is served as on
//! TCP (`tls:`) or as a WebSocket (`wss:`), over the encrypted stream.

use std::sync::atomic::Ordering;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::peer::Peer;
use crate::tls::{conn_info, Registered, Tls};

/// Runs the handshake. `None` when it failed or took longer than
/// `[tls] handshake_timeout` (counted and logged at debug: a scanner that
/// sends garbage to port 5061 is not worth a warning); the connection is
/// then dropped, freeing its slots.
pub(super) async fn handshake(
    tls: &Tls,
    stream: TcpStream,
    peer: &Peer,
) -> Option<(Box<TlsStream<TcpStream>>, Registered)> {
    // Boxed, as the stream it makes: the session is large, and only
    // connections in their handshake need room for this one. Fallible and
    // polled by reference, so that on failure or timeout the socket is
    // still ours: it is counted first and closed after, and whoever sees
    // it close sees it counted.
    let mut accept = Box::pin(tls.acceptor().accept(stream).into_fallible());
    match tokio::time::timeout(tls.settings().handshake_timeout, &mut accept).await {
        Ok(Ok(stream)) => {
            tls.stats.handshakes.fetch_add(1, Ordering::Relaxed);
            let conn = peer.conn?;
            let info = conn_info(
                peer.proto.as_str(),
                peer.remote,
                peer.local,
                stream.get_ref().1,
            );
            tracing::debug!(remote = %peer.remote, version = %info.version, cipher = %info.cipher, sni = info.sni.as_deref().unwrap_or("-"), "tls handshake done");
            let registered = tls.conns.register(conn, info);
            Some((Box::new(stream), registered))
        }
        Ok(Err((e, socket))) => {
            tls.stats.handshake_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(remote = %peer.remote, "tls handshake failed: {e}");
            drop(socket);
            None
        }
        Err(_elapsed) => {
            tls.stats.handshake_timeout.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(remote = %peer.remote, "tls handshake not finished within [tls] handshake_timeout, closing");
            drop(accept);
            None
        }
    }
}
