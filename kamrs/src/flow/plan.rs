//! Which way a request to a binding goes, decided from the binding and
//! what is open now; no I/O.

use std::net::{IpAddr, SocketAddr};

use crate::peer::{ConnId, Proto};
use crate::sip::{NameAddr, NameAddrList, Uri};
use crate::usrloc::Binding;

/// Where to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Over the open stream connection the binding registered on.
    Conn { conn: ConnId, remote: SocketAddr },
    /// A datagram from our UDP socket `local` to `dest`.
    Datagram { local: SocketAddr, dest: SocketAddr },
}

impl Target {
    /// The address the request goes to.
    pub fn remote(&self) -> SocketAddr {
        match *self {
            Target::Conn { remote, .. } => remote,
            Target::Datagram { dest, .. } => dest,
        }
    }
}

/// Why a binding cannot be reached now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// Registered over a stream whose connection has closed. Behind a NAT
    /// a new connection towards the phone would not get through; the phone
    /// reconnects and registers again.
    #[error("its TCP connection is closed")]
    ConnectionClosed,
    /// No socket of ours speaks the transport and address family needed.
    #[error("no {0} socket of kamrs can send to {1}")]
    NoSocket(&'static str, SocketAddr),
    /// The next hop is a host name; kamrs sends only to addresses for now.
    #[error("its next hop {0:?} is a host name, not an address")]
    HostName(String),
    /// The next hop's transport is not one kamrs sends on.
    #[error("its next hop wants transport {0:?}")]
    Transport(String),
    /// The stored Path or Contact is not a URI kamrs can read.
    #[error("its {0} is not a SIP URI kamrs can send to")]
    BadUri(&'static str),
}

/// What is open now: the stream connections and our UDP sockets.
pub trait Sockets {
    fn conn_open(&self, conn: ConnId) -> bool;
    /// Whether `local` is one of our UDP sockets.
    fn has_udp(&self, local: SocketAddr) -> bool;
    /// A UDP socket of ours that can send to `dest` (same address family).
    fn udp_for(&self, dest: SocketAddr) -> Option<SocketAddr>;
}

/// The way a request to `b` goes now.
pub fn plan(b: &Binding, s: &impl Sockets) -> Result<Target, Unreachable> {
    let source = b.source();
    if let (Some(conn), Some(src)) = (b.conn(), source) {
        if s.conn_open(conn) {
            return Ok(Target::Conn {
                conn,
                remote: src.remote,
            });
        }
    }
    if let Some(src) = source.filter(|src| src.proto == Proto::Udp) {
        let local = if s.has_udp(src.local) {
            Some(src.local)
        } else {
            s.udp_for(src.remote)
        };
        return local
            .map(|local| Target::Datagram {
                local,
                dest: src.remote,
            })
            .ok_or(Unreachable::NoSocket("UDP", src.remote));
    }
    let (uri_text, what) = match b.path() {
        Some(path) => (first_path_uri(path)?, "Path"),
        // Registered over a stream that is gone: its Contact is not a
        // way to it (a phone on TCP listens on no UDP port, behind NAT on
        // none at all), and following it would let anyone who registers
        // `sip:x@victim` over TCP and hangs up turn kamrs's requests and
        // retransmissions into a UDP flood of the victim.
        None if source.is_some_and(|src| src.proto != Proto::Udp) => {
            return Err(Unreachable::ConnectionClosed)
        }
        None => (b.contact(), "Contact"),
    };
    let hop = hop(uri_text, what)?;
    match hop.proto {
        Proto::Udp => s
            .udp_for(hop.addr)
            .map(|local| Target::Datagram {
                local,
                dest: hop.addr,
            })
            .ok_or(Unreachable::NoSocket("UDP", hop.addr)),
        // A stream to a hop we are not connected to: reopening
        // connections is not done yet (see [`Unreachable::ConnectionClosed`]).
        Proto::Tcp | Proto::Tls | Proto::Ws | Proto::Wss => Err(Unreachable::ConnectionClosed),
    }
}

/// The way a request to the URI `text` goes (a Route or a foreign
/// Request-URI, no binding involved): over UDP to its address, since
/// kamrs opens no connections of its own.
pub fn uri_target(text: &str, s: &impl Sockets) -> Result<(Target, Proto), Unreachable> {
    let hop = hop(text, "Request-URI")?;
    match hop.proto {
        Proto::Udp => s
            .udp_for(hop.addr)
            .map(|local| {
                (
                    Target::Datagram {
                        local,
                        dest: hop.addr,
                    },
                    Proto::Udp,
                )
            })
            .ok_or(Unreachable::NoSocket("UDP", hop.addr)),
        _ => Err(Unreachable::ConnectionClosed),
    }
}

/// The first URI of a comma-joined Path value.
fn first_path_uri(path: &str) -> Result<&str, Unreachable> {
    match NameAddrList::new(path.as_bytes()).next() {
        Some(Ok(NameAddr { uri, .. })) => Ok(uri.raw),
        _ => Err(Unreachable::BadUri("Path")),
    }
}

/// A next hop: transport and address.
#[derive(Debug, PartialEq, Eq)]
struct Hop {
    proto: Proto,
    addr: SocketAddr,
}

/// The next hop a URI names (RFC 3263 without DNS: an address, the
/// `transport` parameter, the default port 5060 (5061 for sips)).
fn hop(text: &str, what: &'static str) -> Result<Hop, Unreachable> {
    let uri = Uri::parse(text.as_bytes()).ok_or(Unreachable::BadUri(what))?;
    let host = uri.host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host
        .parse()
        .map_err(|_| Unreachable::HostName(uri.host.to_owned()))?;
    let transport = match uri.params.get("transport") {
        Some(Some(t)) => Some(t.to_ascii_lowercase()),
        _ => None,
    };
    let proto = match transport.as_deref() {
        None if uri.scheme == crate::sip::Scheme::Sips => {
            return Err(Unreachable::Transport("tls".to_owned()))
        }
        None => Proto::Udp,
        Some(name) => Proto::named(name).ok_or_else(|| Unreachable::Transport(name.to_owned()))?,
    };
    Ok(Hop {
        proto,
        addr: SocketAddr::new(ip, uri.port.unwrap_or(5060)),
    })
}

#[cfg(test)]
mod tests;
