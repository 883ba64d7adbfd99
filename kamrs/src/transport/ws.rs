//! SIP over WebSocket (RFC 7118) on `ws:` and `wss:` listeners: the HTTP
//! upgrade, then one SIP message per WebSocket message, both ways.
//!
//! The connection gets the same treatment as a TCP one (the slots and
//! per-address limit of [`super::tcp`], a flow its bindings reach it by,
//! `handle_lost_tcp` and `close_expired_tcp`), with these differences:
//!
//! - the upgrade must ask for the `sip` subprotocol (RFC 7118 §4.1),
//!   which is echoed back, and come from an allowed Origin when
//!   `[websocket] allowed_origins` lists any; otherwise a 400 or 403 with
//!   a line saying why, and the connection closes;
//! - there is no stream framing: tungstenite reassembles fragments,
//!   unmasks, answers Pings and enforces `max_message_size` per message
//!   and per frame; a message over it closes with 1009, a protocol error
//!   with 1002, a text message that is not UTF-8 with 1007, a peer's Close
//!   is answered;
//! - requests are taken one message at a time, each answered (a commit
//!   awaited in order) before the next is read: replies cannot pile up;
//! - silence: `tcp_msg_data_timeout` for the first message,
//!   `tcp_connection_lifetime` between messages for a connection without
//!   bindings (bytes of an unfinished message do not count); one with
//!   bindings gets a Ping after `[websocket] keepalive_timeout` of
//!   silence, and is closed as lost after as long again without a word;
//! - a CRLF keepalive (`ka_method = "CRLF"`) to a WebSocket binding goes as
//!   a WebSocket Ping, since CRLF is not a SIP message on a WebSocket.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{self, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::tcp::{Connection, SipStream};
use super::Shutdown;
use crate::route::Action;
use crate::stats::CoreStats;

/// The subprotocol of RFC 7118 §4.1.
const SUBPROTOCOL: &str = "sip";

/// Receive buffer of each connection. tungstenite allocates it up front
/// (128 KiB by default): 4 KiB keeps idle WebRTC clients cheap; messages
/// larger than it are read in several steps.
const READ_BUFFER: usize = 4096;

/// How long a Close we send may take before the socket is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// `[websocket]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSettings {
    /// Normalised (lower case, no trailing `/`); empty = any Origin.
    allowed_origins: Arc<[String]>,
    /// 0 = no Pings.
    pub keepalive_timeout: Duration,
    pub handshake_timeout: Duration,
    /// Remove a WebSocket's bindings when it closes (`[websocket]
    /// handle_lost_tcp`).
    pub handle_lost: bool,
}

impl WsSettings {
    pub fn new(
        allowed: &[String],
        keepalive_timeout: Duration,
        handshake_timeout: Duration,
        handle_lost: bool,
    ) -> Self {
        WsSettings {
            allowed_origins: allowed.iter().map(|o| normalise(o)).collect(),
            keepalive_timeout,
            handshake_timeout,
            handle_lost,
        }
    }

    /// Whether an upgrade with this `Origin` (or none) may go on.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.is_empty() {
            return true;
        }
        // With a list, a client must say where it comes from: a page can
        // not hide its Origin, so a missing one is not a browser page of
        // an allowed site either.
        origin.is_some_and(|o| self.allowed_origins.contains(&normalise(o)))
    }
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings::new(&[], Duration::from_secs(180), Duration::from_secs(5), true)
    }
}

fn normalise(origin: &str) -> String {
    let o = origin.trim();
    o.strip_suffix('/').unwrap_or(o).to_ascii_lowercase()
}

/// Whether a `Sec-WebSocket-Protocol` list offers `sip` (tokens are
/// case-sensitive, RFC 6455 §4.1).
pub fn offers_sip(values: &[&[u8]]) -> bool {
    values.iter().any(|v| {
        v.split(|&b| b == b',')
            .any(|token| token.trim_ascii() == SUBPROTOCOL.as_bytes())
    })
}

/// The WebSocket limits of a connection: messages and frames of at most
/// `max_message_size` (a fragmented message counts whole), a small
/// receive buffer, writes flushed one message at a time.
pub fn config(max_message_size: usize) -> WebSocketConfig {
    let max = max_message_size.max(1);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Every message is flushed as it is sent; the buffer only ever
        // holds the one being written.
        .write_buffer_size(0)
        // Unlimited: one message is sent at a time and waited for, so
        // the buffer never holds more than the reply being written
        // (bounded by the registrar); a limit here only broke large 200s.
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .accept_unmasked_frames(false)
}

/// Why an upgrade is refused, as the HTTP answer says it.
fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = http::Response::new(Some(format!("{why}\r\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::BAD_REQUEST {
        // Kamailio says the same: which subprotocol it speaks.
        r.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    r
}

/// The upgrade decision, on the parsed request: pure, tested without
/// sockets. The large error type is tungstenite's callback signature.
#[allow(clippy::result_large_err)]
pub fn accept_upgrade(
    settings: &WsSettings,
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered: Vec<&[u8]> = request
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if !offers_sip(&offered) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "this is a SIP WebSocket server: the upgrade must offer `Sec-WebSocket-Protocol: sip` (RFC 7118)",
        ));
    }
    let origin = request
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if !settings.origin_allowed(origin) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this page's Origin is not in [websocket] allowed_origins",
        ));
    }
    response.headers_mut().insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

/// How a WebSocket connection ended, for the debug log.
#[derive(Debug)]
enum End {
    PeerClosed,
    Idle,
    NoFirstMessage,
    KeepaliveLost,
    Shutdown,
    BindingsGone,
    TooLarge,
    /// A text message (or a Close reason) that is not UTF-8.
    NotUtf8,
    Protocol(String),
    Io(String),
    WriteTimeout,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::PeerClosed => f.write_str("closed by peer"),
            End::Idle => f.write_str("idle for tcp_connection_lifetime"),
            End::NoFirstMessage => f.write_str("no message within tcp_msg_data_timeout"),
            End::KeepaliveLost => {
                f.write_str("no answer to a WebSocket Ping within keepalive_timeout")
            }
            End::Shutdown => f.write_str("shutting down"),
            End::BindingsGone => f.write_str("its last binding expired (close_expired_tcp)"),
            End::TooLarge => f.write_str("message over max_message_size"),
            End::NotUtf8 => f.write_str("text message not valid UTF-8"),
            End::Protocol(e) => write!(f, "WebSocket protocol error: {e}"),
            End::Io(e) => write!(f, "read error: {e}"),
            End::WriteTimeout => f.write_str("peer did not read within tcp_send_timeout"),
        }
    }
}

/// Upgrades `stream` and serves SIP on it until it ends.
pub(super) async fn serve<S: SipStream>(mut conn: Connection, stream: S, shutdown: Shutdown) {
    let stats = Arc::clone(conn.router.stats());
    let config = config(conn.router.limits().max_message_size);
    let ws_settings = conn.settings.websocket.clone();
    #[allow(clippy::result_large_err)]
    let decide = |req: &Request, resp: Response| accept_upgrade(&ws_settings, req, resp);
    // Polled by reference: on a timeout the socket is counted before it
    // is closed (a refusal is counted just after tungstenite closes it).
    let mut upgrade = Box::pin(tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        decide,
        Some(config),
    ));
    let mut ws = match tokio::time::timeout(ws_settings.handshake_timeout, &mut upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            CoreStats::inc(&stats.ws_handshake_failed);
            tracing::debug!(remote = %conn.peer.remote, "websocket upgrade refused: {e}");
            return;
        }
        Err(_elapsed) => {
            CoreStats::inc(&stats.ws_handshake_failed);
            tracing::debug!(remote = %conn.peer.remote, "websocket upgrade not finished within [websocket] handshake_timeout, closing");
            drop(upgrade);
            return;
        }
    };
    drop(upgrade);
    CoreStats::inc(&stats.ws_handshakes);
    // Done with handshakes: the listener's turn goes to the next one.
    conn.handshaking = None;
    let proto = conn.peer.proto;
    tracing::debug!(remote = %conn.peer.remote, %proto, "websocket open");
    let flow = conn.peer.conn.map(|c| conn.flows.open_conn(c));
    let end = messages(&conn, &mut ws, shutdown, flow.as_ref()).await;
    drop(flow);
    tracing::debug!(remote = %conn.peer.remote, %proto, reason = %end, "websocket closed");
    conn.ended(matches!(end, End::Shutdown));
    let close = match &end {
        End::TooLarge => Some((CloseCode::Size, "message too big")),
        // RFC 6455 §7.4.1: 1007 for data not consistent with the type of
        // the message, such as non-UTF-8 in a text message.
        End::NotUtf8 => Some((CloseCode::Invalid, "text message not UTF-8")),
        End::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
        End::Shutdown => Some((CloseCode::Away, "server stopping")),
        End::Idle | End::NoFirstMessage | End::BindingsGone => Some((CloseCode::Normal, "")),
        End::KeepaliveLost => {
            CoreStats::inc(&stats.ws_keepalive_lost);
            None
        }
        End::PeerClosed | End::Io(_) => None,
        End::WriteTimeout => {
            CoreStats::inc(&stats.tcp_send_timeout);
            // Reset rather than close, as on TCP: the unsent replies would
            // otherwise be retried by the kernel for minutes.
            let _ = socket2::SockRef::from(ws.get_ref().tcp()).set_linger(Some(Duration::ZERO));
            None
        }
    };
    let frame = close.map(|(code, reason)| CloseFrame {
        code,
        reason: reason.into(),
    });
    if frame.is_some() {
        let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(frame)).await;
    } else if matches!(end, End::PeerClosed) {
        // tungstenite queued the answer to the peer's Close when it read
        // it; it leaves with a flush.
        let _ = tokio::time::timeout(CLOSE_GRACE, ws.flush()).await;
    }
}

/// The message loop.
async fn messages<S: SipStream>(
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
    mut shutdown: Shutdown,
    flow: Option<&crate::flow::ConnGuard>,
) -> End {
    let settings = &conn.settings;
    let keepalive = settings.websocket.keepalive_timeout;
    // Taken per request, given back with the reply: idle connections are
    // the many.
    let mut out = Vec::new();
    let opened = Instant::now();
    // Anything from the peer, for the keepalive; and a SIP message, for the
    // idle rule: Pings alone do not keep a connection without bindings
    // open (a peer could otherwise hold an unfinished message forever).
    let mut heard = opened;
    let mut heard_sip = opened;
    let mut first = true;
    // When we pinged and have heard nothing since.
    let mut pinged: Option<Instant> = None;
    loop {
        let in_use = || conn.peer.conn.is_some_and(|c| conn.router.flow_in_use(c));
        // The next time silence means something.
        // Pings do not buy time for the first message: a client must
        // send a SIP message within tcp_msg_data_timeout of its upgrade.
        let by = if first {
            far(opened, settings.msg_data_timeout)
        } else if let Some(at) = pinged {
            far(at, keepalive)
        } else if !keepalive.is_zero() && in_use() {
            far(heard, keepalive)
        } else {
            far(heard_sip, settings.idle_timeout)
        };
        let released_wait = crate::flow::last_binding_gone(flow, settings.close_expired_tcp);
        let outbound = crate::flow::next_request(flow);
        let next = tokio::select! {
            biased;
            () = shutdown.wait() => return End::Shutdown,
            () = released_wait => {
                if in_use() {
                    continue;
                }
                return End::BindingsGone;
            }
            request = outbound => {
                // A request to a binding on this connection (a keepalive).
                let message = if request.iter().all(|&b| b == b'\r' || b == b'\n') {
                    Message::Ping(Default::default())
                } else {
                    sip_message(request)
                };
                if let Err(end) = send(conn, ws, message).await {
                    return end;
                }
                continue;
            }
            r = tokio::time::timeout_at(by, ws.next()) => r,
        };
        let message = match next {
            Err(_elapsed) => {
                if first {
                    return End::NoFirstMessage;
                }
                if pinged.is_some() {
                    return End::KeepaliveLost;
                }
                if !keepalive.is_zero() && in_use() {
                    pinged = Some(Instant::now());
                    if let Err(end) = send(conn, ws, Message::Ping(Default::default())).await {
                        return end;
                    }
                    continue;
                }
                if in_use() {
                    // No pings configured: a connection that carries a
                    // binding is still not closed for being quiet.
                    heard = Instant::now();
                    heard_sip = heard;
                    continue;
                }
                return End::Idle;
            }
            Ok(None) => return End::PeerClosed,
            Ok(Some(Err(e))) => return ended_by(e),
            Ok(Some(Ok(m))) => m,
        };
        heard = Instant::now();
        pinged = None;
        let bytes: &[u8] = match &message {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
            Message::Ping(_) | Message::Pong(_) => {
                // The peer is alive: its own Ping, or the Pong to ours
                // (tungstenite answers Pings by itself).
                CoreStats::inc(&conn.router.stats().keepalives);
                if let Some(c) = conn.peer.conn {
                    conn.router.flow_pinged(c);
                }
                continue;
            }
            Message::Close(_) => return End::PeerClosed,
            Message::Frame(_) => continue,
        };
        // RFC 7118 §6 lets a client send a CRLF keepalive inside a
        // message too; it is not a request, and not the first message.
        if bytes.iter().all(|&b| b == b'\r' || b == b'\n') {
            CoreStats::inc(&conn.router.stats().keepalives);
            continue;
        }
        first = false;
        heard_sip = heard;
        let action = conn.router.handle(bytes, &conn.peer, &mut out);
        tracing::trace!(remote = %conn.peer.remote, proto = %conn.peer.proto, len = bytes.len(), ?action, "websocket message");
        let reply = match action {
            Action::Reply { .. } => std::mem::take(&mut out),
            Action::Deferred { reply, .. } => {
                let bytes = reply.await;
                conn.router.stats().replies.count(&bytes);
                bytes
            }
            Action::Absorb | Action::Drop(_) => continue,
        };
        if let Err(end) = send(conn, ws, sip_message(reply)).await {
            return end;
        }
        out = Vec::new();
    }
}

/// `at + d`, or a far future when that overflows (a config value of
/// years).
fn far(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}

/// A SIP message as a WebSocket message: text when it is UTF-8, as RFC
/// 7118 §4.2 recommends, binary otherwise (which it requires then).
fn sip_message(bytes: Vec<u8>) -> Message {
    match String::from_utf8(bytes) {
        Ok(text) => Message::text(text),
        Err(e) => Message::binary(e.into_bytes()),
    }
}

async fn send<S: SipStream>(
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
    message: Message,
) -> Result<(), End> {
    match tokio::time::timeout(conn.settings.send_timeout, ws.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ended_by(e)),
        Err(_elapsed) => Err(End::WriteTimeout),
    }
}

fn ended_by(e: WsError) -> End {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => End::PeerClosed,
        WsError::Capacity(_) => End::TooLarge,
        WsError::Utf8(_) => End::NotUtf8,
        WsError::Io(e) => End::Io(e.to_string()),
        other => End::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
