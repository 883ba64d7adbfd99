//! Counters that the transports and the router bump on the hot path.
//!
//! Plain relaxed atomics: they are read rarely (by the control API) and must
//! cost next to nothing per packet.

use std::sync::atomic::{AtomicU64, Ordering};

/// Message-level counters, shared by every transport task.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// Requests parsed and routed.
    pub rcv_requests: AtomicU64,
    /// Responses that arrived at kamrs; a registrar has no transaction to match them to.
    pub rcv_responses_ignored: AtomicU64,
    /// Replies written (any status).
    pub sent_replies: AtomicU64,
    /// Replies the kernel refused to send (`sl:failures`, Kamailio's name),
    /// e.g. a datagram over the UDP limit or a full socket buffer.
    pub send_failures: AtomicU64,
    /// Bad requests answered with 4xx/5xx by the SIP layer.
    pub bad_requests_answered: AtomicU64,
    /// Input that could not be answered at all (garbage, no Via, over-size datagram…).
    pub dropped: AtomicU64,
    /// STUN Binding requests answered on a UDP SIP socket (RFC 5389).
    pub stun_answered: AtomicU64,
    /// Datagrams that looked like STUN but were malformed, dropped.
    pub stun_dropped: AtomicU64,
    /// Keepalives received: a datagram of CR/LF only, or a stream's double
    /// CRLF ping (RFC 5626 §3.5.1). Neither a request nor a drop.
    pub keepalives: AtomicU64,
    /// TCP connections refused because `tcp_max_connections` was reached.
    pub tcp_refused: AtomicU64,
    /// TCP connections refused because their source address already held
    /// `tcp_accept_iplimit` connections.
    pub tcp_iplimit_refused: AtomicU64,
    /// TCP connections closed for sending no whole message within
    /// `tcp_msg_data_timeout` of being accepted.
    pub tcp_msg_data_timeout: AtomicU64,
    /// TCP connections closed because a started message was not complete
    /// within `tcp_msg_read_timeout` (slowloris).
    pub tcp_msg_read_timeout: AtomicU64,
    /// TCP connections closed because the peer did not take our replies
    /// within `tcp_send_timeout`.
    pub tcp_send_timeout: AtomicU64,
    /// Times a connection's pending replies reached `tcp_conn_wq_max` and
    /// reading from it paused until they were written.
    pub tcp_sendq_full: AtomicU64,
    /// TCP connections open now (a gauge).
    pub tcp_open: AtomicU64,
    /// WebSocket connections open now on `ws:` listeners (a gauge).
    pub ws_open: AtomicU64,
    /// …and on `wss:` listeners.
    pub wss_open: AtomicU64,
    /// Connections closed because the listener's handshakes in progress
    /// (TLS and WebSocket, 256 at once) left them no turn within their
    /// handshake timeout.
    pub handshake_busy: AtomicU64,
    /// WebSocket upgrades accepted (WS and WSS).
    pub ws_handshakes: AtomicU64,
    /// WebSocket upgrades refused (no `sip` subprotocol, an Origin not
    /// allowed, not an upgrade at all) or not finished in time.
    pub ws_handshake_failed: AtomicU64,
    /// WebSocket connections closed because a Ping went unanswered for
    /// `[websocket] keepalive_timeout`.
    pub ws_keepalive_lost: AtomicU64,
    /// Reply bytes queued on all TCP connections now (a gauge, and the
    /// budget `tcp_wq_max` is checked against).
    pub tcp_queued: AtomicU64,
    /// Replies sent, by status code (`sl:200_replies`, …, and
    /// `kamrs_sl_replies_total{code="200"}` in `/metrics`).
    pub replies: ReplyCodes,
    /// The `[events] webhook` (`events:webhook_*`).
    pub webhook: WebhookStats,
}

/// What the `[events] webhook` did (all 0 when there is none).
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Events the receiver accepted (a 2xx to their POST).
    pub sent: AtomicU64,
    /// POSTs that failed (no connection, timeout, 5xx, 408, 429) and were
    /// retried.
    pub failures: AtomicU64,
    /// Events the receiver refused for good (another 4xx): not retried.
    pub rejected: AtomicU64,
    /// Events dropped before they could be sent: the queue was full
    /// (`webhook_queue`) while the receiver was down or slow.
    pub dropped: AtomicU64,
    /// Events waiting now (a gauge).
    pub queued: AtomicU64,
}

impl CoreStats {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Lowers a gauge raised with [`CoreStats::inc`].
    pub fn dec(gauge: &AtomicU64) {
        // Never wraps below zero, even after a stats reset of a gauge.
        let _ = gauge.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}

/// The lowest and highest status codes a SIP reply may carry.
const FIRST_CODE: u16 = 100;
const LAST_CODE: u16 = 699;

/// Replies by status code: one counter per code from 100 to 699, so
/// counting is one index and one relaxed add, and what is exported stays
/// bounded by the codes kamrs can send (a handful), never by the network.
pub struct ReplyCodes {
    counts: Box<[AtomicU64]>,
}

impl Default for ReplyCodes {
    fn default() -> Self {
        ReplyCodes {
            counts: (FIRST_CODE..=LAST_CODE)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl std::fmt::Debug for ReplyCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        self.each(|code, n| {
            m.entry(&code, &n);
        });
        m.finish()
    }
}

impl ReplyCodes {
    /// Counts the reply in `bytes` (kamrs's own reply, so it starts with
    /// `SIP/2.0 NNN`); anything else is not counted.
    pub fn count(&self, bytes: &[u8]) {
        if let Some(counter) = status_of(bytes).and_then(|c| self.slot(c)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn slot(&self, code: u16) -> Option<&AtomicU64> {
        self.counts.get(usize::from(code.checked_sub(FIRST_CODE)?))
    }

    /// Replies sent with `code`.
    pub fn get(&self, code: u16) -> u64 {
        self.slot(code).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every code sent at least once, in order, with its count.
    pub fn each(&self, mut f: impl FnMut(u16, u64)) {
        for (code, n) in (FIRST_CODE..=LAST_CODE).zip(self.counts.iter()) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                f(code, n);
            }
        }
    }

    /// Zeroes `code`'s counter.
    pub fn reset(&self, code: u16) {
        if let Some(slot) = self.slot(code) {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// The status code of a reply's status line.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let digits = bytes.strip_prefix(b"SIP/2.0 ")?.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (FIRST_CODE..=LAST_CODE).contains(&code).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_counted_by_code_and_class() {
        let r = ReplyCodes::default();
        r.count(b"SIP/2.0 200 OK\r\n");
        r.count(b"SIP/2.0 200 OK\r\n");
        r.count(b"SIP/2.0 401 Unauthorized\r\n");
        r.count(b"SIP/2.0 699 Whatever\r\n");
        // Not a status line of ours: not counted, never out of bounds.
        for junk in [
            &b"SIP/2.0 099 x"[..],
            b"SIP/2.0 700 x",
            b"SIP/2.0 2",
            b"",
            b"OPTIONS sip:x SIP/2.0",
        ] {
            r.count(junk);
        }
        assert_eq!(r.get(200), 2);
        assert_eq!(r.get(401), 1);
        assert_eq!(r.get(699), 1);
        assert_eq!(r.get(99), 0);
        assert_eq!(r.get(700), 0);
        let mut seen = Vec::new();
        r.each(|c, n| seen.push((c, n)));
        assert_eq!(seen, [(200, 2), (401, 1), (699, 1)]);
        r.reset(200);
        r.reset(700);
        assert_eq!(r.get(200), 0);
        assert_eq!(r.get(401), 1);
    }
}
