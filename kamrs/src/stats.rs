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
    /// Reply bytes queued on all TCP connections now (a gauge, and the
    /// budget `tcp_wq_max` is checked against).
    pub tcp_queued: AtomicU64,
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
