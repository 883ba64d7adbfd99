//! Flows: how a request reaches a registered binding (RFC 5626 §3 calls the
//! path a REGISTER took a *flow*).
//!
//! One rule for every request kamrs sends to a phone, keepalives now and
//! call delivery later, the order Kamailio's `lookup` uses: over the
//! binding's own stream connection while it is open; else, for a UDP
//! binding, to the address its REGISTER came from (what a NAT maps back to
//! the phone), from the socket it arrived on; else to the first Path hop;
//! else to the Contact. [`plan`] decides that without I/O, so the rule is
//! tested on its own; [`Flows`] holds the sockets and open connections and
//! sends.

mod plan;
mod sender;

pub use plan::{plan, uri_target, Sockets, Target, Unreachable};
pub use sender::{
    last_binding_gone, next_request, ConnEntry, ConnGuard, FlowStats, Flows, Outbox, SendError,
    CONN_QUEUE,
};
