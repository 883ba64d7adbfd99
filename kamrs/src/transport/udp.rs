//! UDP: one datagram is one SIP message (RFC 3261 §18.3 does not apply).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::Shutdown;
use crate::route::{Action, Peer, Proto, Router};
use crate::stats::CoreStats;

/// Pause after a receive error so a persistent one (it should not happen on
/// a bound UDP socket, but kernels surprise) cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Serves one UDP socket until shutdown.
///
/// One task per socket, receiving one datagram per syscall. When this
/// becomes the bottleneck, this is where `recvmmsg`/`sendmmsg` batching and
/// several sockets bound with `SO_REUSEPORT` (one task each) will go.
pub async fn serve(socket: UdpSocket, router: Arc<Router>, mut shutdown: Shutdown) {
    // Shared with the tasks that send write-through replies once their
    // commit is durable.
    let socket = Arc::new(socket);
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("udp socket has no local address, not serving it: {e}");
            return;
        }
    };
    let max = router.limits().max_message_size;
    // One byte more than the limit, so a datagram that is too long shows as
    // `n > max` instead of being silently truncated to a valid-looking one.
    let mut buf = vec![0u8; max.saturating_add(1)];
    // Reused for every reply: no allocation per packet once warmed up.
    let mut out = Vec::with_capacity(2048);
    tracing::debug!(%local, "udp serving");
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, remote) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%local, "udp receive error: {e}");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        if n > max {
            CoreStats::inc(&router.stats().dropped);
            tracing::debug!(%remote, len = n, max, "udp datagram over max_message_size, dropped");
            continue;
        }
        let peer = Peer {
            proto: Proto::Udp,
            remote,
            local,
        };
        let action = router.handle(&buf[..n], &peer, &mut out);
        tracing::trace!(%remote, len = n, ?action, "udp message");
        match action {
            Action::Reply { dest } => {
                if let Err(e) = socket.send_to(&out, dest).await {
                    tracing::debug!(%dest, "udp send failed: {e}");
                }
            }
            Action::Deferred { dest, pending } => {
                // The receive loop must not wait for the store: the reply
                // waits in its own task. (Write-through mode only, so the
                // buffer handed over costs nothing in the other modes.)
                let reply = std::mem::replace(&mut out, Vec::with_capacity(2048));
                let socket = Arc::clone(&socket);
                let router = Arc::clone(&router);
                tokio::spawn(async move {
                    let bytes = match pending.commit.await {
                        Ok(()) => reply,
                        Err(e) => {
                            router.registrar().commit_failed(&e);
                            pending.on_failure
                        }
                    };
                    if let Err(e) = socket.send_to(&bytes, dest).await {
                        tracing::debug!(%dest, "udp send failed: {e}");
                    }
                });
            }
            Action::Absorb | Action::Drop(_) => {}
        }
    }
    tracing::debug!(%local, "udp stopped");
}
