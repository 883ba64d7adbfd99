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
    /// TCP connections refused because `tcp_max_connections` was reached.
    pub tcp_refused: AtomicU64,
}

impl CoreStats {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
