//! Value types every layer shares: which transport a message arrived on,
//! who sent it, and a `listen` address (`proto:ip:port`). A leaf module (it
//! imports nothing of kamrs) so that the parser, the location table, the
//! stores, the transports and the config can name them without depending on
//! the router at the top of the request path.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Transport protocol a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
    /// SIP over TLS on TCP (RFC 3261 §26, RFC 5630).
    Tls,
    /// SIP over WebSocket (RFC 7118), one message per WebSocket message.
    Ws,
    /// …and over WebSocket on TLS.
    Wss,
}

impl Proto {
    /// Every transport, for tables that must list them all.
    pub const ALL: [Proto; 5] = [Proto::Udp, Proto::Tcp, Proto::Tls, Proto::Ws, Proto::Wss];

    /// Lower-case name as used in `listen` and in `proto:ip:port` strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Ws => "ws",
            Proto::Wss => "wss",
        }
    }

    /// The transport's name in a Via header (RFC 3261 §20.42, RFC 7118 §5.1).
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Ws => "WS",
            Proto::Wss => "WSS",
        }
    }

    /// The inverse of [`Proto::as_str`], any case.
    pub fn named(name: &str) -> Option<Proto> {
        Proto::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }

    /// Encrypted hop by hop: what a `sips:` URI asks for (RFC 5630 §3.1).
    pub fn is_secure(self) -> bool {
        matches!(self, Proto::Tls | Proto::Wss)
    }

    /// One SIP message per WebSocket message, no stream framing.
    pub fn is_websocket(self) -> bool {
        matches!(self, Proto::Ws | Proto::Wss)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stream connection, for the life of the process (Kamailio's
/// `tcpconn` id): what a binding registered over TCP remembers, so that
/// the connection lives as long as the binding and requests to the
/// binding can take it. Never reused: a 64-bit counter does not wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(std::num::NonZeroU64);

impl ConnId {
    /// A fresh id, for a connection just accepted.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Starts at 1 and would need 2^64 connections to wrap.
        ConnId(std::num::NonZeroU64::new(n).unwrap_or(std::num::NonZeroU64::MIN))
    }

    /// The id [`ConnId::get`] returned, read back (from a Record-Route
    /// flow token). An id that names no open connection is harmless: a
    /// send to it fails as "closed".
    pub fn from_raw(n: u64) -> ConnId {
        ConnId(std::num::NonZeroU64::new(n).unwrap_or(std::num::NonZeroU64::MAX))
    }

    /// The number `ul.dump` shows as `Tcpconn-Id`.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

/// Where a message came from and which of our sockets received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub proto: Proto,
    /// The sender's address as seen by the socket.
    pub remote: SocketAddr,
    /// Our local address that received it.
    pub local: SocketAddr,
    /// The connection it arrived on (streams); `None` for datagrams.
    pub conn: Option<ConnId>,
}

/// One `listen` entry: a protocol and a socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddr {
    pub proto: Proto,
    pub addr: SocketAddr,
}

impl ListenAddr {
    pub fn new(proto: Proto, addr: SocketAddr) -> Self {
        ListenAddr { proto, addr }
    }
}

impl fmt::Display for ListenAddr {
    /// `udp:127.0.0.1:5060`, `tcp:[::1]:5060`: the same syntax as the
    /// config, so what kamrs prints can be pasted back into it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.proto.as_str(), self.addr)
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected `udp:IP:PORT`, `tcp:`, `tls:`, `ws:` or `wss:IP:PORT` (IPv6 as `udp:[::1]:5060`)";
        let Some((proto, rest)) = s.split_once(':') else {
            return Err(format!("bad listen address `{s}`: {usage}"));
        };
        let proto = match Proto::named(proto) {
            Some(p) => p,
            None if proto.eq_ignore_ascii_case("sctp") => {
                return Err(format!(
                    "bad listen address `{s}`: transport `{proto}` is not supported (udp, tcp, tls, ws and wss are)"
                ))
            }
            None => {
                return Err(format!(
                    "bad listen address `{s}`: unknown transport `{proto}`; {usage}"
                ))
            }
        };
        match rest.parse::<SocketAddr>() {
            Ok(addr) => Ok(ListenAddr { proto, addr }),
            Err(_) => {
                let hint = if rest.matches(':').count() > 1 && !rest.starts_with('[') {
                    "an IPv6 address must be in brackets, e.g. `udp:[::1]:5060`"
                } else if !rest.contains(':') {
                    "the port is missing"
                } else if rest.starts_with(|c: char| c.is_ascii_alphabetic())
                    && !rest.starts_with('[')
                {
                    "the host must be an IP address, not a name"
                } else {
                    usage
                };
                Err(format!("bad listen address `{s}`: {hint}"))
            }
        }
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ListenAddr> for String {
    fn from(l: ListenAddr) -> String {
        l.to_string()
    }
}
