//! The proxy's counters, with Kamailio's tm and core names where one
//! exists (`tm:*`, `core:fwd_requests`, `core:fwd_replies`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct TmStats {
    /// Transactions open now (a gauge).
    pub current: AtomicU64,
    pub created: AtomicU64,
    pub freed: AtomicU64,
    /// Responses received from branches.
    pub rpl_received: AtomicU64,
    /// Responses kamrs made itself (100 Trying, 408, 480, 481, …).
    pub rpl_generated: AtomicU64,
    /// Responses sent upstream, relayed or generated.
    pub rpl_sent: AtomicU64,
    /// Transactions by the class of their final response.
    pub by_class: [AtomicU64; 6],
    /// Branches that got no answer in time (timers B, F and C).
    pub timeouts: AtomicU64,
    /// Requests refused with 503 at `max_transactions`.
    pub refused: AtomicU64,
    /// Requests forwarded (every branch, retransmissions not counted).
    pub fwd_requests: AtomicU64,
    /// Responses relayed upstream.
    pub fwd_replies: AtomicU64,
    /// Responses naming a branch we never sent or no longer know, or
    /// from somewhere else than the branch's flow: dropped.
    pub stray_replies: AtomicU64,
    /// CANCELs sent to branches.
    pub cancels_sent: AtomicU64,
}

impl TmStats {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A transaction ended with `status`.
    pub fn finished(&self, status: u16) {
        if let Some(c) = self
            .by_class
            .get(usize::from(status / 100).saturating_sub(1))
        {
            Self::inc(c);
        }
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
