//! The tutorial's `request_route`: REGISTER → registrar, INVITE → 480,
//! ACK → absorbed, anything else → 501; with `[route] mode = "proxy"` or
//! `"redirect"` every request but REGISTER goes to [`crate::proxy`] first,
//! and responses to its branches too.
//!
//! [`Router::handle`] is the whole per-message pipeline below the transport:
//! parse, validate, route, write the reply. It is synchronous and allocation
//! free on the common path (the reply is written into a buffer the transport
//! owns), which keeps it fast and lets the fuzzer drive it with raw bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::peer::{ConnId, Peer, Proto};
use crate::proxy::Handled;
use crate::registrar::{Deferred, Registrar};
use crate::sip::{self, reply, Limits, Method, ParseError, Request, Via};
use crate::state::Core;
use crate::stats::CoreStats;
use crate::stun;

/// What the transport must do after [`Router::handle`].
#[derive(Debug)]
pub enum Action {
    /// Send the bytes written into `out` to `dest` (UDP). On TCP the reply
    /// always goes back on the same connection and `dest` is informational.
    Reply { dest: SocketAddr },
    /// Send what `reply` yields to `dest`, once it does (a write-through
    /// store: the answer waits for the write). `out` is left empty.
    Deferred { dest: SocketAddr, reply: Deferred },
    /// Nothing to send: ACK, or a response that reached us.
    Absorb,
    /// Input that cannot be answered; already counted and logged at debug.
    Drop(DropReason),
}

/// What an OPTIONS to the registrar says it can do (RFC 3261 §11.2).
const OPTIONS_HEADERS: &[(&str, &str)] =
    &[("Allow", "REGISTER, OPTIONS, ACK"), ("Supported", "path")];

/// An OPTIONS whose Request-URI has no user part is for the registrar
/// itself: kamrs relays nothing, so there is no other host it could be
/// meant for.
fn addressed_to_us(req: &Request<'_>) -> bool {
    sip::Uri::parse(req.uri.as_bytes()).is_some_and(|u| u.user.is_none())
}

/// Why a message was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not even a request line and the headers needed to address a reply.
    Unanswerable,
    /// Exceeds `max_message_size`.
    TooLarge,
    /// The source is blocked for flooding (`[pike]`).
    Flood,
}

/// The per-message request handler shared by all transport tasks.
pub struct Router {
    limits: Limits,
    /// The registrar, the flood filter and the counters, shared with the
    /// control API.
    core: Core,
    force_rport: bool,
}

impl Router {
    /// Drops requests from sources that flood before they are even parsed
    /// when `core` has the flood filter (Kamailio's pike).
    pub fn new(limits: Limits, core: Core) -> Self {
        Router {
            limits,
            core,
            force_rport: false,
        }
    }

    /// Send UDP replies to the packet's source port even when the top Via
    /// has no `rport` (Kamailio's `force_rport()`), for NATed phones that
    /// do not ask for it.
    pub fn with_force_rport(mut self, force_rport: bool) -> Self {
        self.force_rport = force_rport;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn stats(&self) -> &Arc<CoreStats> {
        &self.core.stats
    }

    /// The registrar, for the transports to book a failed commit.
    pub fn registrar(&self) -> &Registrar {
        &self.core.registrar
    }

    /// Whether the stream connection `c` carries a live binding: then it
    /// must not be closed for being idle.
    pub fn flow_in_use(&self, c: ConnId) -> bool {
        self.core.table.flow_in_use(c)
    }

    /// The UA pinged over stream connection `c` (double CRLF): its
    /// bindings' `Last-Keepalive` says so.
    pub fn flow_pinged(&self, c: ConnId) {
        self.core.table.flow_alive(c, crate::time::unix_now_us());
    }

    /// The stream connection `c` is gone (`handle_lost_tcp`): the
    /// bindings registered over it are removed. Returns how many.
    pub fn flow_lost(&self, c: ConnId) -> usize {
        self.core.table.remove_flow(c, crate::time::unix_now())
    }

    /// The stream connection `c` is gone and its bindings stay: they
    /// forget it.
    pub fn flow_closed(&self, c: ConnId) {
        self.core.table.forget_flow(c, crate::time::unix_now());
    }

    /// Handles one complete message (a datagram, or one frame cut from a
    /// stream by [`sip::framing`]). On [`Action::Reply`] the reply bytes are
    /// in `out`, which is cleared first.
    pub fn handle(&self, msg: &[u8], peer: &Peer, out: &mut Vec<u8>) -> Action {
        out.clear();
        if let Some(pike) = &self.core.pike {
            if !pike.allow(peer.remote.ip()) {
                return Action::Drop(DropReason::Flood);
            }
        }
        if msg.len() > self.limits.max_message_size {
            CoreStats::inc(&self.core.stats.dropped);
            return Action::Drop(DropReason::TooLarge);
        }
        if peer.proto == Proto::Udp {
            if let Some(action) = self.datagram_not_sip(msg, peer, out) {
                return action;
            }
        }
        // Matched by reference: the request (over 1 KiB) is used where
        // `parse_message` built it, not moved into a binding first.
        match &sip::parse_message(msg, &self.limits) {
            Ok(sip::Message::Response(r)) => {
                self.response(r, msg, peer);
                Action::Absorb
            }
            Ok(sip::Message::Request(req)) => {
                CoreStats::inc(&self.core.stats.rcv_requests);
                self.route(req, msg, peer, out)
            }
            Err(err) => self.reject(msg, *err, peer, out),
        }
    }

    /// A response reaching kamrs can only answer a keepalive ping: kamrs
    /// sends no other request. Provisional ones prove nothing yet.
    fn response(&self, r: &sip::Response<'_>, msg: &[u8], peer: &Peer) {
        if let Some(proxy) = &self.core.proxy {
            if proxy.response(msg, peer) {
                return;
            }
        }
        CoreStats::inc(&self.core.stats.rcv_responses_ignored);
        let Some(ka) = &self.core.keepalive else {
            return;
        };
        if r.status < 200 {
            return;
        }
        if let Some(call_id) = sip::response::call_id(msg, &self.limits) {
            ka.on_reply(call_id, peer, crate::time::unix_now_us());
        }
    }

    /// Answers a request whose stream framing failed (for example a missing
    /// or bad Content-Length on TCP): `head` is the header section. Returns
    /// [`Action::Drop`] when not even a 400 can be addressed.
    pub fn reject_unframeable(
        &self,
        head: &[u8],
        err: ParseError,
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> Action {
        out.clear();
        self.reject(head, err, peer, out)
    }

    /// STUN and keepalives share the UDP SIP port (RFC 5626 §8, RFC 7983
    /// §7): told apart from SIP by the first byte. `None` for SIP.
    fn datagram_not_sip(&self, msg: &[u8], peer: &Peer, out: &mut Vec<u8>) -> Option<Action> {
        let first = *msg.first()?;
        if stun::is_stun(first) {
            return Some(match stun::handle(msg, peer.remote, out) {
                Ok(stun::Outcome::Reply) => {
                    CoreStats::inc(&self.core.stats.stun_answered);
                    Action::Reply { dest: peer.remote }
                }
                Ok(stun::Outcome::Silent) => Action::Absorb,
                Err(why) => {
                    tracing::debug!(remote = %peer.remote, %why, "malformed STUN datagram dropped");
                    CoreStats::inc(&self.core.stats.stun_dropped);
                    Action::Drop(DropReason::Unanswerable)
                }
            });
        }
        // A NAT keepalive of CR/LF (or spaces): nothing to answer, and not
        // a broken request either.
        if msg
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            CoreStats::inc(&self.core.stats.keepalives);
            return Some(Action::Absorb);
        }
        None
    }

    fn route(&self, req: &Request<'_>, msg: &[u8], peer: &Peer, out: &mut Vec<u8>) -> Action {
        let len = msg.len();
        if req.method != Method::Register {
            if let Some(proxy) = &self.core.proxy {
                match proxy.request(req, msg, peer, out) {
                    Handled::Reply => return self.sent(&req.top_via, peer, out),
                    Handled::Absorb => return Action::Absorb,
                    Handled::NotMine => {}
                }
            }
        }
        match req.method {
            Method::Ack => Action::Absorb,
            Method::Register => match self.core.registrar.handle_sized(req, peer, len, out) {
                None => self.sent(&req.top_via, peer, out),
                Some(reply) => {
                    CoreStats::inc(&self.core.stats.sent_replies);
                    Action::Deferred {
                        dest: req.top_via.reply_destination(peer.remote, self.force_rport),
                        reply,
                    }
                }
            },
            // A health check (load balancers, monitoring, SIP trunks'
            // keepalives) asks the registrar itself: no user part. OPTIONS
            // to a user keeps the tutorial's 501.
            Method::Options if addressed_to_us(req) => {
                reply::write(out, req, peer, 200, "OK", OPTIONS_HEADERS);
                self.sent(&req.top_via, peer, out)
            }
            Method::Invite => {
                reply::write(out, req, peer, 480, "Temporarily Unavailable", &[]);
                self.sent(&req.top_via, peer, out)
            }
            _ => {
                reply::write(out, req, peer, 501, "Not Implemented", &[]);
                self.sent(&req.top_via, peer, out)
            }
        }
    }

    fn sent(&self, via: &Via<'_>, peer: &Peer, out: &[u8]) -> Action {
        CoreStats::inc(&self.core.stats.sent_replies);
        self.core.stats.replies.count(out);
        Action::Reply {
            dest: via.reply_destination(peer.remote, self.force_rport),
        }
    }

    /// A message that failed validation: answer it when the headers needed
    /// to address a reply survived, otherwise drop it.
    fn reject(&self, msg: &[u8], err: ParseError, peer: &Peer, out: &mut Vec<u8>) -> Action {
        let raw = sip::salvage_for_reply(msg, &self.limits);
        match raw
            .as_ref()
            .and_then(|r| r.top_via.as_ref().map(|v| (r, v)))
        {
            // Never answer an ACK, even a broken one.
            Some((raw, via)) if raw.method != Method::Ack => {
                tracing::debug!(remote = %peer.remote, status = err.status(), reason = err.reason(), "rejecting malformed request");
                reply::write_raw(out, raw, peer, err.status(), err.reason());
                CoreStats::inc(&self.core.stats.bad_requests_answered);
                self.sent(via, peer, out)
            }
            _ => {
                tracing::debug!(remote = %peer.remote, reason = err.reason(), "dropping unanswerable message");
                CoreStats::inc(&self.core.stats.dropped);
                Action::Drop(DropReason::Unanswerable)
            }
        }
    }
}

#[cfg(test)]
mod tests;
