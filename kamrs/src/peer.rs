//! Value types every layer shares: which transport a message arrived on and
//! who sent it. A leaf module (it imports nothing of kamrs) so that the parser,
//! the location table, the stores and the config can name them without
//! depending on the router at the top of the request path.

use std::net::SocketAddr;

/// Transport protocol a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    /// Lower-case name as used in `listen` and in `proto:ip:port` strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
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
}
