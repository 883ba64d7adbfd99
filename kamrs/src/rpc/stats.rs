//! `stats.get_statistics` and `stats.reset_statistics`: the daemon's
//! counters under Kamailio's names, so monitoring written for Kamailio
//! (`usrloc:registered_users`, `registrar:accepted_regs`, …) reads kamrs
//! unchanged.

use std::sync::atomic::{AtomicU64, Ordering};

use common::api::error;
use jsonrpsee::types::ErrorObjectOwned;

use super::api::State;

/// One statistic: what it means, where its value comes from, and the
/// counter to zero on reset (`None` for gauges and settings, which
/// Kamailio marks `STAT_NO_RESET`).
struct Stat {
    group: &'static str,
    name: &'static str,
    /// One line for operators: what it counts or shows, with its unit or
    /// config key. The HELP of its `/metrics` series, which is what
    /// Grafana and promtool users read; no backslash or newline.
    help: &'static str,
    value: fn(&State) -> u64,
    counter: Option<fn(&State) -> &AtomicU64>,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// What a counter of a feature that is turned off (`[pike] enabled =
/// false`, `[auth] mode = "none"`) resets: it reads 0 and stays 0.
static OFF: AtomicU64 = AtomicU64::new(0);

/// A flood-filter counter, 0 when pike is off.
fn pike_counter(s: &State, which: fn(&crate::pike::Pike) -> &AtomicU64) -> &AtomicU64 {
    s.core.pike.as_ref().map_or(&OFF, |p| which(p))
}

/// A TLS counter, 0 without `[tls]`.
fn tls_counter(s: &State, which: fn(&crate::tls::TlsStats) -> &AtomicU64) -> &AtomicU64 {
    s.core.tls.as_ref().map_or(&OFF, |t| which(&t.stats))
}

fn tls_value(s: &State, which: fn(&crate::tls::TlsStats) -> &AtomicU64) -> u64 {
    load(tls_counter(s, which))
}

/// A keepalive counter, 0 when `ka_mode = 0`.
fn ka_counter(s: &State, which: fn(&crate::keepalive::KaStats) -> &AtomicU64) -> &AtomicU64 {
    s.core.keepalive.as_ref().map_or(&OFF, |k| which(&k.stats))
}

/// An authentication counter, 0 when authentication is off.
fn auth_counter(s: &State, which: fn(&crate::auth::AuthStats) -> &AtomicU64) -> &AtomicU64 {
    s.core.auth.as_ref().map_or(&OFF, |a| which(a.stats()))
}

/// A counter of the authenticator itself (lock-out, nonce counts), 0 when
/// authentication is off.
fn auth_own(s: &State, which: fn(&crate::auth::Authenticator) -> &AtomicU64) -> &AtomicU64 {
    s.core.auth.as_ref().map_or(&OFF, |a| which(a))
}

/// A gauge of the authenticator, 0 when authentication is off.
fn auth_gauge(s: &State, which: fn(&crate::auth::Authenticator) -> usize) -> u64 {
    s.core
        .auth
        .as_ref()
        .map_or(0, |a| u64::try_from(which(a)).unwrap_or(u64::MAX))
}

/// Which replies an `sl:…_replies` statistic counts, as Kamailio's sl
/// module splits them: the codes it names one by one, and for each class
/// the codes of it that have no statistic of their own (so every reply
/// is in exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplySet {
    Code(u16),
    Others(u16),
}

/// The codes with an `sl:` statistic of their own.
const NAMED_CODES: &[u16] = &[
    200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500,
];

impl ReplySet {
    fn codes(self) -> impl Iterator<Item = u16> {
        let range = match self {
            ReplySet::Code(c) => c..c + 1,
            ReplySet::Others(class) => class * 100..class * 100 + 100,
        };
        range.filter(move |c| matches!(self, ReplySet::Code(_)) || !NAMED_CODES.contains(c))
    }

    fn count(self, replies: &crate::stats::ReplyCodes) -> u64 {
        self.codes().map(|c| replies.get(c)).sum()
    }

    /// The set an `sl:` statistic name counts (`200_replies`, `4xx_replies`).
    fn named(name: &str) -> Option<ReplySet> {
        let head = name.strip_suffix("_replies")?;
        if let Some(class) = head.strip_suffix("xx") {
            let class: u16 = class.parse().ok()?;
            return (1..=6).contains(&class).then_some(ReplySet::Others(class));
        }
        let code: u16 = head.parse().ok()?;
        NAMED_CODES.contains(&code).then_some(ReplySet::Code(code))
    }
}

/// Whether a statistic is one of the `sl:…_replies` by code, which
/// `/metrics` shows as one labelled series instead.
pub fn is_reply_code(group: &str, name: &str) -> bool {
    group == "sl" && ReplySet::named(name).is_some()
}

mod tm;

/// Every statistic, in the order they are listed.
fn all() -> impl Iterator<Item = &'static Stat> {
    STATS.iter().chain(tm::STATS)
}

/// The statistics, in the order they are listed (the proxy's follow,
/// from [`tm`]).
const STATS: &[Stat] = &[
    Stat {
        group: "core",
        name: "rcv_requests",
        help: "SIP requests received, parsed and routed (Kamailio's core:rcv_requests)",
        value: |s| load(&s.core.stats.rcv_requests),
        counter: Some(|s| &s.core.stats.rcv_requests),
    },
    Stat {
        group: "core",
        name: "rcv_replies",
        help: "SIP responses received and ignored: a registrar has no transaction to match them to",
        value: |s| load(&s.core.stats.rcv_responses_ignored),
        counter: Some(|s| &s.core.stats.rcv_responses_ignored),
    },
    Stat {
        group: "core",
        name: "err_requests",
        help: "Bad requests the SIP layer answered itself with a 4xx or 5xx",
        value: |s| load(&s.core.stats.bad_requests_answered),
        counter: Some(|s| &s.core.stats.bad_requests_answered),
    },
    Stat {
        group: "core",
        name: "drop_requests",
        help: "Input dropped unanswered: garbage, no Via, an over-size datagram and the like",
        value: |s| load(&s.core.stats.dropped),
        counter: Some(|s| &s.core.stats.dropped),
    },
    Stat {
        group: "core",
        name: "keepalives",
        help: "CR/LF keepalives and double-CRLF pings received (RFC 5626), counted neither as requests nor as drops",
        value: |s| load(&s.core.stats.keepalives),
        counter: Some(|s| &s.core.stats.keepalives),
    },
    Stat {
        group: "core",
        name: "stun_answered",
        help: "STUN Binding requests answered on a UDP SIP socket (RFC 5389)",
        value: |s| load(&s.core.stats.stun_answered),
        counter: Some(|s| &s.core.stats.stun_answered),
    },
    Stat {
        group: "core",
        name: "stun_dropped",
        help: "Datagrams on a UDP SIP socket that looked like STUN but were malformed, dropped",
        value: |s| load(&s.core.stats.stun_dropped),
        counter: Some(|s| &s.core.stats.stun_dropped),
    },
    Stat {
        group: "core",
        name: "flow_sent",
        help: "Requests kamrs sent towards bindings (keepalive pings), handed to a socket or connection",
        value: |s| load(&s.core.flows.stats.sent),
        counter: Some(|s| &s.core.flows.stats.sent),
    },
    Stat {
        group: "core",
        name: "flow_failed",
        help: "Requests towards bindings that the kernel refused or a closed connection could not take",
        value: |s| load(&s.core.flows.stats.failed),
        counter: Some(|s| &s.core.flows.stats.failed),
    },
    Stat {
        group: "core",
        name: "flow_queue_full",
        help: "Requests towards bindings dropped because the connection's outbound queue was full",
        value: |s| load(&s.core.flows.stats.queue_full),
        counter: Some(|s| &s.core.flows.stats.queue_full),
    },
    Stat {
        group: "core",
        name: "log_dropped",
        help: "Log lines dropped because the log writer's queue was full (stderr too slow), since start; never reset",
        // Counted by the log writer, which has no reset.
        value: |_| crate::logging::dropped_lines(),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "sent_replies",
        help: "Replies kamrs sent, any status",
        value: |s| load(&s.core.stats.sent_replies),
        counter: Some(|s| &s.core.stats.sent_replies),
    },
    Stat {
        group: "sl",
        name: "1xx_replies",
        help: "1xx provisional replies sent, every code of the class (Kamailio's sl module split)",
        value: |s| ReplySet::Others(1).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "200_replies",
        help: "200 OK replies sent",
        value: |s| ReplySet::Code(200).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "202_replies",
        help: "202 Accepted replies sent",
        value: |s| ReplySet::Code(202).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "2xx_replies",
        help: "2xx replies sent other than 200 and 202",
        value: |s| ReplySet::Others(2).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "300_replies",
        help: "300 Multiple Choices replies sent",
        value: |s| ReplySet::Code(300).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "301_replies",
        help: "301 Moved Permanently replies sent",
        value: |s| ReplySet::Code(301).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "302_replies",
        help: "302 Moved Temporarily replies sent",
        value: |s| ReplySet::Code(302).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "3xx_replies",
        help: "3xx replies sent other than 300, 301 and 302",
        value: |s| ReplySet::Others(3).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "400_replies",
        help: "400 Bad Request replies sent",
        value: |s| ReplySet::Code(400).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "401_replies",
        help: "401 Unauthorized replies sent (digest challenges)",
        value: |s| ReplySet::Code(401).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "403_replies",
        help: "403 Forbidden replies sent",
        value: |s| ReplySet::Code(403).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "404_replies",
        help: "404 Not Found replies sent",
        value: |s| ReplySet::Code(404).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "407_replies",
        help: "407 Proxy Authentication Required replies sent",
        value: |s| ReplySet::Code(407).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "408_replies",
        help: "408 Request Timeout replies sent",
        value: |s| ReplySet::Code(408).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "483_replies",
        help: "483 Too Many Hops replies sent",
        value: |s| ReplySet::Code(483).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "4xx_replies",
        help: "4xx replies sent other than 400, 401, 403, 404, 407, 408 and 483 (e.g. 420, 423)",
        value: |s| ReplySet::Others(4).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "500_replies",
        help: "500 Server Internal Error replies sent",
        value: |s| ReplySet::Code(500).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "5xx_replies",
        help: "5xx replies sent other than 500 (e.g. 503)",
        value: |s| ReplySet::Others(5).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "6xx_replies",
        help: "6xx global failure replies sent",
        value: |s| ReplySet::Others(6).count(&s.core.stats.replies),
        counter: None,
    },
    Stat {
        group: "sl",
        name: "failures",
        help: "Replies the kernel refused to send, e.g. a datagram over the UDP limit or a full socket buffer (Kamailio's sl:failures)",
        value: |s| load(&s.core.stats.send_failures),
        counter: Some(|s| &s.core.stats.send_failures),
    },
    Stat {
        group: "tcp",
        name: "local_reject",
        help: "TCP connections refused because tcp_max_connections were open (Kamailio's tcp:local_reject)",
        value: |s| load(&s.core.stats.tcp_refused),
        counter: Some(|s| &s.core.stats.tcp_refused),
    },
    Stat {
        group: "tcp",
        name: "iplimit_reject",
        help: "TCP connections refused because their source address already held tcp_accept_iplimit connections",
        value: |s| load(&s.core.stats.tcp_iplimit_refused),
        counter: Some(|s| &s.core.stats.tcp_iplimit_refused),
    },
    Stat {
        group: "tcp",
        name: "msg_data_timeout",
        help: "TCP connections closed for sending no whole message within tcp_msg_data_timeout of being accepted",
        value: |s| load(&s.core.stats.tcp_msg_data_timeout),
        counter: Some(|s| &s.core.stats.tcp_msg_data_timeout),
    },
    Stat {
        group: "tcp",
        name: "msg_read_timeout",
        help: "TCP connections closed because a started message was not complete within tcp_msg_read_timeout (slowloris)",
        value: |s| load(&s.core.stats.tcp_msg_read_timeout),
        counter: Some(|s| &s.core.stats.tcp_msg_read_timeout),
    },
    Stat {
        group: "tcp",
        name: "send_timeout",
        help: "TCP connections closed because the peer did not take our replies within tcp_send_timeout",
        value: |s| load(&s.core.stats.tcp_send_timeout),
        counter: Some(|s| &s.core.stats.tcp_send_timeout),
    },
    Stat {
        group: "tcp",
        name: "sendq_full",
        help: "Times a TCP connection's pending replies reached tcp_conn_wq_max and reading from it paused",
        value: |s| load(&s.core.stats.tcp_sendq_full),
        counter: Some(|s| &s.core.stats.tcp_sendq_full),
    },
    Stat {
        group: "tcp",
        name: "current_opened_connections",
        help: "TCP connections open now",
        value: |s| load(&s.core.stats.tcp_open),
        counter: None,
    },
    Stat {
        group: "tcp",
        name: "current_write_queue_size",
        help: "Reply bytes queued on all TCP connections now, checked against tcp_wq_max",
        value: |s| load(&s.core.stats.tcp_queued),
        counter: None,
    },
    Stat {
        group: "tls",
        name: "current_opened_connections",
        help: "TLS sessions open now, on tls: and wss: listeners (handshake done), as tls.info's opened_connections",
        value: |s| s.core.tls.as_ref().map_or(0, |t| u64::try_from(t.conns.len()).unwrap_or(u64::MAX)),
        counter: None,
    },
    Stat {
        group: "tls",
        name: "handshakes",
        help: "TLS handshakes completed on tls: and wss: listeners",
        value: |s| tls_value(s, |t| &t.handshakes),
        counter: Some(|s| tls_counter(s, |t| &t.handshakes)),
    },
    Stat {
        group: "tls",
        name: "handshake_failures",
        help: "TLS handshakes that failed: not TLS, no common version or cipher, a client certificate refused, the peer gone",
        value: |s| tls_value(s, |t| &t.handshake_failed),
        counter: Some(|s| tls_counter(s, |t| &t.handshake_failed)),
    },
    Stat {
        group: "tls",
        name: "handshake_timeouts",
        help: "TLS handshakes not finished within [tls] handshake_timeout; the connection was closed",
        value: |s| tls_value(s, |t| &t.handshake_timeout),
        counter: Some(|s| tls_counter(s, |t| &t.handshake_timeout)),
    },
    Stat {
        group: "tcp",
        name: "handshake_busy",
        help: "TLS/WebSocket connections closed because 256 handshakes were already in progress on their listener for their whole handshake timeout",
        value: |s| load(&s.core.stats.handshake_busy),
        counter: Some(|s| &s.core.stats.handshake_busy),
    },
    Stat {
        group: "tls",
        name: "reloads",
        help: "Certificate reloads (SIGHUP, tls.reload) that took effect",
        value: |s| tls_value(s, |t| &t.reloads),
        counter: Some(|s| tls_counter(s, |t| &t.reloads)),
    },
    Stat {
        group: "tls",
        name: "reload_failures",
        help: "Certificate reloads refused because a file could not be used; the old certificate stayed in force",
        value: |s| tls_value(s, |t| &t.reload_failed),
        counter: Some(|s| tls_counter(s, |t| &t.reload_failed)),
    },
    Stat {
        group: "websocket",
        name: "ws_current_connections",
        help: "WebSocket connections open now, ws: and wss: (Kamailio's websocket:ws_current_connections)",
        value: |s| load(&s.core.stats.ws_open) + load(&s.core.stats.wss_open),
        counter: None,
    },
    Stat {
        group: "websocket",
        name: "wss_current_connections",
        help: "WebSocket connections open now on wss: listeners (also in ws_current_connections)",
        value: |s| load(&s.core.stats.wss_open),
        counter: None,
    },
    Stat {
        group: "websocket",
        name: "ws_successful_handshakes",
        help: "WebSocket upgrades accepted, ws: and wss: (Kamailio's name)",
        value: |s| load(&s.core.stats.ws_handshakes),
        counter: Some(|s| &s.core.stats.ws_handshakes),
    },
    Stat {
        group: "websocket",
        name: "ws_failed_handshakes",
        help: "WebSocket upgrades refused (no sip subprotocol, an Origin not allowed, not an upgrade) or not finished within [websocket] handshake_timeout",
        value: |s| load(&s.core.stats.ws_handshake_failed),
        counter: Some(|s| &s.core.stats.ws_handshake_failed),
    },
    Stat {
        group: "websocket",
        name: "ws_keepalive_lost",
        help: "WebSocket connections closed because a Ping went unanswered for [websocket] keepalive_timeout",
        value: |s| load(&s.core.stats.ws_keepalive_lost),
        counter: Some(|s| &s.core.stats.ws_keepalive_lost),
    },
    Stat {
        group: "registrar",
        name: "max_expires",
        help: "Configured max_expires, in seconds: longer expiries a REGISTER asks for are clamped to it",
        value: |s| u64::from(s.settings.max_expires),
        counter: None,
    },
    Stat {
        group: "registrar",
        name: "max_contacts",
        help: "Configured max_contacts: most bindings per AoR, 0 for unlimited",
        value: |s| u64::from(s.settings.max_contacts),
        counter: None,
    },
    Stat {
        group: "registrar",
        name: "default_expire",
        help: "Configured default_expires, in seconds: the expiry of a binding whose REGISTER states none",
        value: |s| u64::from(s.settings.default_expires),
        counter: None,
    },
    Stat {
        group: "registrar",
        name: "accepted_regs",
        help: "REGISTERs accepted; with a write-through store, once the change is durable (Kamailio's registrar:accepted_regs)",
        value: |s| load(&s.core.registrar.stats().accepted),
        counter: Some(|s| &s.core.registrar.stats().accepted),
    },
    Stat {
        group: "registrar",
        name: "rejected_regs",
        help: "REGISTERs refused, store failures included, digest challenges not (Kamailio's registrar:rejected_regs)",
        value: |s| load(&s.core.registrar.stats().rejected),
        counter: Some(|s| &s.core.registrar.stats().rejected),
    },
    Stat {
        group: "registrar",
        name: "reply_too_large",
        help: "UDP REGISTERs answered 500 because their 200 would not fit the UDP reply budget (udp_reply_max_size)",
        value: |s| load(&s.core.registrar.stats().reply_too_large),
        counter: Some(|s| &s.core.registrar.stats().reply_too_large),
    },
    Stat {
        group: "usrloc",
        name: "registered_users",
        help: "AoRs with at least one binding now (Kamailio's usrloc:registered_users)",
        value: |s| load(&s.table().stats().users),
        counter: None,
    },
    Stat {
        group: "usrloc",
        name: "location_users",
        help: "AoRs in the location table now; the same value as registered_users, under Kamailio's per-table name",
        value: |s| load(&s.table().stats().users),
        counter: None,
    },
    Stat {
        group: "usrloc",
        name: "location_contacts",
        help: "Bindings (contacts) in the location table now",
        value: |s| load(&s.table().stats().contacts),
        counter: None,
    },
    Stat {
        group: "usrloc",
        name: "location_expires",
        help: "Bindings removed because they expired (Kamailio's usrloc:location_expires)",
        value: |s| load(&s.table().stats().expired),
        counter: Some(|s| &s.table().stats().expired),
    },
    Stat {
        group: "usrloc",
        name: "table_bytes",
        help: "Estimated bytes the location table holds now, checked against max_table_bytes",
        value: |s| load(&s.table().stats().bytes),
        counter: None,
    },
    Stat {
        group: "usrloc",
        name: "table_full",
        help: "New bindings refused, by REGISTER or ul.add, because max_bindings or max_table_bytes was reached",
        value: |s| load(&s.table().stats().full),
        counter: Some(|s| &s.table().stats().full),
    },
    Stat {
        group: "usrloc",
        name: "rolled_back",
        help: "Write-through changes undone because the store failed to commit them (the REGISTER was answered 500)",
        value: |s| load(&s.table().stats().rolled_back),
        counter: Some(|s| &s.table().stats().rolled_back),
    },
    Stat {
        group: "usrloc",
        name: "rollback_skipped",
        help: "Write-through changes the store failed to commit but not undone because the AoR changed again first",
        value: |s| load(&s.table().stats().rollback_skipped),
        counter: Some(|s| &s.table().stats().rollback_skipped),
    },
    Stat {
        group: "usrloc",
        name: "flows",
        help: "TCP connections carrying live bindings now",
        value: |s| s.table().flows_open() as u64,
        counter: None,
    },
    Stat {
        group: "usrloc",
        name: "ka_sent",
        help: "Keepalive pings handed to a socket or connection; 0 with ka_mode = 0",
        value: |s| load(ka_counter(s, |k| &k.sent)),
        counter: Some(|s| ka_counter(s, |k| &k.sent)),
    },
    Stat {
        group: "usrloc",
        name: "ka_answered",
        help: "Replies to keepalive pings that proved a binding's flow alive",
        value: |s| load(ka_counter(s, |k| &k.answered)),
        counter: Some(|s| ka_counter(s, |k| &k.answered)),
    },
    Stat {
        group: "usrloc",
        name: "ka_timeouts",
        help: "Bindings removed for not answering keepalive pings within ka_timeout",
        value: |s| load(ka_counter(s, |k| &k.timed_out)),
        counter: Some(|s| ka_counter(s, |k| &k.timed_out)),
    },
    Stat {
        group: "usrloc",
        name: "ka_unsent",
        help: "Keepalive pings not sent: no way to the binding (closed connection, host name, no socket) or the socket refused",
        value: |s| load(ka_counter(s, |k| &k.unsent)),
        counter: Some(|s| ka_counter(s, |k| &k.unsent)),
    },
    Stat {
        group: "usrloc",
        name: "ka_ignored",
        help: "Replies to keepalive pings that changed nothing: forged, stale, replayed or from another flow",
        value: |s| load(ka_counter(s, |k| &k.ignored)),
        counter: Some(|s| ka_counter(s, |k| &k.ignored)),
    },
    Stat {
        group: "usrloc",
        name: "max_bindings",
        help: "Configured max_bindings: most bindings in the whole location table",
        value: |s| s.table().limits().max_bindings,
        counter: None,
    },
    Stat {
        group: "usrloc",
        name: "max_table_bytes",
        help: "Configured max_table_bytes, in bytes: most estimated bytes the location table may hold",
        value: |s| s.table().limits().max_bytes,
        counter: None,
    },
    Stat {
        group: "pike",
        name: "dropped_requests",
        help: "Requests dropped because the flood filter had blocked their source; 0 while [pike] is off",
        value: |s| load(pike_counter(s, |p| &p.dropped)),
        counter: Some(|s| pike_counter(s, |p| &p.dropped)),
    },
    Stat {
        group: "pike",
        name: "blocked_sources",
        help: "Times the flood filter blocked a source for sending too many requests",
        value: |s| load(pike_counter(s, |p| &p.blocks)),
        counter: Some(|s| pike_counter(s, |p| &p.blocks)),
    },
    Stat {
        group: "pike",
        name: "evicted",
        help: "Sources the flood filter forgot to make room for a new one",
        value: |s| load(pike_counter(s, |p| &p.evicted)),
        counter: Some(|s| pike_counter(s, |p| &p.evicted)),
    },
    Stat {
        group: "pike",
        name: "untracked_requests",
        help: "Requests counted in a bucket's shared allowance because every slot there held a blocked source",
        value: |s| load(pike_counter(s, |p| &p.untracked)),
        counter: Some(|s| pike_counter(s, |p| &p.untracked)),
    },
    Stat {
        group: "pike",
        name: "tracked_sources",
        help: "Source addresses the flood filter tracks now",
        value: |s| load(pike_counter(s, |p| &p.tracked)),
        counter: None,
    },
    Stat {
        group: "pike",
        name: "max_tracked",
        help: "Configured [pike] max_tracked, rounded up: most sources tracked at once; 0 while pike is off",
        value: |s| s.core.pike.as_ref().map_or(0, |p| p.capacity() as u64),
        counter: None,
    },
    Stat {
        group: "auth",
        name: "authorized",
        help: "REGISTERs whose digest credentials were right and owned the AoR; 0 while authentication is off",
        value: |s| load(auth_counter(s, |a| &a.authorized)),
        counter: Some(|s| auth_counter(s, |a| &a.authorized)),
    },
    Stat {
        group: "auth",
        name: "challenges",
        help: "REGISTERs answered 401: no, stale, replayed or wrong credentials",
        value: |s| load(auth_counter(s, |a| &a.challenges)),
        counter: Some(|s| auth_counter(s, |a| &a.challenges)),
    },
    Stat {
        group: "auth",
        name: "wrong_credentials",
        help: "Digest answers with a wrong password or an unknown user",
        value: |s| load(auth_counter(s, |a| &a.wrong_credentials)),
        counter: Some(|s| auth_counter(s, |a| &a.wrong_credentials)),
    },
    Stat {
        group: "auth",
        name: "forbidden",
        help: "REGISTERs answered 403: another user's AoR, too many failures, a lock-out",
        value: |s| load(auth_counter(s, |a| &a.forbidden)),
        counter: Some(|s| auth_counter(s, |a| &a.forbidden)),
    },
    Stat {
        group: "auth",
        name: "malformed",
        help: "REGISTERs answered 400 because their Authorization header was too malformed to check",
        value: |s| load(auth_counter(s, |a| &a.malformed)),
        counter: Some(|s| auth_counter(s, |a| &a.malformed)),
    },
    // Brute-force lock-out (auth/lockout.rs).
    Stat {
        group: "auth",
        name: "locked_out",
        help: "REGISTERs refused because a brute-force lock-out was in force",
        value: |s| load(auth_own(s, |a| &a.lockout().refused)),
        counter: Some(|s| auth_own(s, |a| &a.lockout().refused)),
    },
    Stat {
        group: "auth",
        name: "lockouts",
        help: "Brute-force lock-outs begun",
        value: |s| load(auth_own(s, |a| &a.lockout().lockouts)),
        counter: Some(|s| auth_own(s, |a| &a.lockout().lockouts)),
    },
    Stat {
        group: "auth",
        name: "lockout_tracked",
        help: "Entries in the lock-out failure tables and trusted-pair table now",
        value: |s| auth_gauge(s, |a| a.lockout().tracked()),
        counter: None,
    },
    Stat {
        group: "auth",
        name: "lockout_evicted",
        help: "Entries dropped from a full lock-out failure table while still counting",
        value: |s| load(auth_own(s, |a| &a.lockout().evicted)),
        counter: Some(|s| auth_own(s, |a| &a.lockout().evicted)),
    },
    // Nonce-count replay table (auth/replay.rs).
    Stat {
        group: "auth",
        name: "nc_tracked",
        help: "Digest nonces whose nonce counts are tracked now, against replay",
        value: |s| auth_gauge(s, |a| a.nc_tracked()),
        counter: None,
    },
    Stat {
        group: "auth",
        name: "nc_evicted",
        help: "Nonces forgotten from the full nonce-count table; each then costs its UA one stale=true 401",
        value: |s| load(auth_own(s, |a| a.nc_evicted())),
        counter: Some(|s| auth_own(s, |a| a.nc_evicted())),
    },
    Stat {
        group: "events",
        name: "webhook_sent",
        help: "Location events the [events] webhook receiver accepted (2xx)",
        value: |s| load(&s.core.stats.webhook.sent),
        counter: Some(|s| &s.core.stats.webhook.sent),
    },
    Stat {
        group: "events",
        name: "webhook_failures",
        help: "Webhook POSTs that failed (no connection, timeout, 5xx, 408, 429) and were retried",
        value: |s| load(&s.core.stats.webhook.failures),
        counter: Some(|s| &s.core.stats.webhook.failures),
    },
    Stat {
        group: "events",
        name: "webhook_rejected",
        help: "Location events the webhook receiver refused with a 4xx, not sent again",
        value: |s| load(&s.core.stats.webhook.rejected),
        counter: Some(|s| &s.core.stats.webhook.rejected),
    },
    Stat {
        group: "events",
        name: "webhook_dropped",
        help: "Location events dropped unsent because the webhook queue (events.webhook_queue) was full",
        value: |s| load(&s.core.stats.webhook.dropped),
        counter: Some(|s| &s.core.stats.webhook.dropped),
    },
    Stat {
        group: "events",
        name: "webhook_queued",
        help: "Location events waiting for the webhook receiver now",
        value: |s| load(&s.core.stats.webhook.queued),
        counter: None,
    },
    Stat {
        group: "ctl",
        name: "refused_cross_origin",
        help: "Control API requests from web browsers refused: a foreign Origin, a cross-site or same-site Sec-Fetch-Site, or no token",
        value: |s| load(&s.ctl_stats.refused_cross_origin),
        counter: Some(|s| &s.ctl_stats.refused_cross_origin),
    },
    Stat {
        group: "ctl",
        name: "refused_unauthorized",
        help: "Control API requests answered 401: no or a wrong bearer token",
        value: |s| load(&s.ctl_stats.refused_unauthorized),
        counter: Some(|s| &s.ctl_stats.refused_unauthorized),
    },
    Stat {
        group: "ctl",
        name: "refused_host",
        help: "Control API requests answered 403 for a Host that is a name, not an IP address or localhost (no token configured)",
        value: |s| load(&s.ctl_stats.refused_host),
        counter: Some(|s| &s.ctl_stats.refused_host),
    },
    Stat {
        group: "ctl",
        name: "refused_content_type",
        help: "Control API POSTs answered 415 because their Content-Type is not JSON",
        value: |s| load(&s.ctl_stats.refused_content_type),
        counter: Some(|s| &s.ctl_stats.refused_content_type),
    },
];

/// Whether `selector` (`all`, `group:`, `group:name` or a bare `name`, as
/// Kamailio accepts them) picks `stat`.
fn selects(selector: &str, stat: &Stat) -> bool {
    if selector == "all" {
        return true;
    }
    match selector.split_once(':') {
        Some((group, "")) => group == stat.group,
        Some((group, name)) => group == stat.group && name == stat.name,
        None => selector == stat.name,
    }
}

/// The statistics picked by `names`, in table order, each once. Selectors
/// that match nothing are ignored like Kamailio does, unless none matched
/// at all: then the answer is 404 naming them.
fn pick(names: &[String]) -> Result<Vec<&'static Stat>, ErrorObjectOwned> {
    let picked: Vec<&Stat> = all()
        .filter(|st| names.iter().any(|n| selects(n, st)))
        .collect();
    if picked.is_empty() {
        return Err(ErrorObjectOwned::owned(
            error::NOT_FOUND,
            format!(
                "no statistic matches {}; try `all`, or a group such as `usrloc:`",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None::<()>,
        ));
    }
    Ok(picked)
}

/// `stats.get_statistics`: `"group:name = value"` lines.
pub fn get(state: &State, names: &[String]) -> Result<Vec<String>, ErrorObjectOwned> {
    Ok(pick(names)?
        .into_iter()
        .map(|st| format!("{}:{} = {}", st.group, st.name, (st.value)(state)))
        .collect())
}

/// Every statistic as (group, name, help, value, whether it only grows),
/// for the metrics endpoint. Resettable counters only grow between
/// resets; `core:log_dropped` has no reset but only grows too.
pub fn each(state: &State, mut f: impl FnMut(&'static str, &'static str, &'static str, u64, bool)) {
    for st in all() {
        let grows = st.counter.is_some()
            || (st.group, st.name) == ("core", "log_dropped")
            || is_reply_code(st.group, st.name);
        f(st.group, st.name, st.help, (st.value)(state), grows);
    }
}

/// `stats.reset_statistics`: zeroes the picked counters; gauges and
/// settings keep their value.
pub fn reset(state: &State, names: &[String]) -> Result<(), ErrorObjectOwned> {
    for st in pick(names)? {
        if let Some(counter) = st.counter {
            counter(state).store(0, Ordering::Relaxed);
        }
        if st.group == "sl" {
            if let Some(set) = ReplySet::named(st.name) {
                for code in set.codes() {
                    state.core.stats.replies.reset(code);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
