//! The proxy's statistics (`[route] mode = "proxy"`), with Kamailio's tm
//! and core names; 0 in the registrar-only mode.

use std::sync::atomic::AtomicU64;

use super::{load, Stat, State, OFF};
use crate::proxy::TmStats;

/// A proxy counter, 0 when the proxy is off.
fn tm(s: &State, which: fn(&TmStats) -> &AtomicU64) -> &AtomicU64 {
    s.core.proxy.as_ref().map_or(&OFF, |p| which(&p.stats))
}

macro_rules! counter {
    ($group:literal, $name:literal, $help:literal, $field:ident) => {
        Stat {
            group: $group,
            name: $name,
            help: $help,
            value: |s| load(tm(s, |t| &t.$field)),
            counter: Some(|s| tm(s, |t| &t.$field)),
        }
    };
}

macro_rules! class {
    ($name:literal, $help:literal, $i:literal) => {
        Stat {
            group: "tm",
            name: $name,
            help: $help,
            value: |s| load(tm(s, |t| &t.by_class[$i])),
            counter: Some(|s| tm(s, |t| &t.by_class[$i])),
        }
    };
}

pub(super) const STATS: &[Stat] = &[
    Stat {
        group: "tm",
        name: "current",
        help: "Proxy transactions open now (each request forwarded, until its retransmissions are absorbed)",
        value: |s| load(tm(s, |t| &t.current)),
        counter: None,
    },
    counter!("tm", "created", "Proxy transactions opened", created),
    counter!("tm", "freed", "Proxy transactions freed", freed),
    counter!("tm", "rpl_received", "Responses received from the branches of proxied requests", rpl_received),
    counter!("tm", "rpl_generated", "Responses kamrs made itself for proxied requests (100 Trying, 408, 480, 481, 483, 503…)", rpl_generated),
    counter!("tm", "rpl_sent", "Responses sent upstream for proxied requests, relayed or made by kamrs", rpl_sent),
    class!("2xx_transactions", "Proxy transactions answered 2xx", 1),
    class!("3xx_transactions", "Proxy transactions answered 3xx", 2),
    class!("4xx_transactions", "Proxy transactions answered 4xx", 3),
    class!("5xx_transactions", "Proxy transactions answered 5xx", 4),
    class!("6xx_transactions", "Proxy transactions answered 6xx", 5),
    counter!("tm", "timeouts", "Branches that got no response within [route] fr_timer, or no final one within fr_inv_timer", timeouts),
    counter!("tm", "refused", "Requests answered 503 because [route] max_transactions were open", refused),
    counter!("tm", "stray_replies", "Responses naming no branch of ours, or arriving from somewhere else than the branch's flow: dropped", stray_replies),
    counter!("tm", "cancels_sent", "CANCELs sent to branches (the caller cancelled, another branch answered, or fr_inv_timer)", cancels_sent),
    counter!("core", "fwd_requests", "Requests forwarded by the proxy, one per branch (retransmissions not counted)", fwd_requests),
    counter!("core", "fwd_replies", "Responses relayed upstream by the proxy", fwd_replies),
];
