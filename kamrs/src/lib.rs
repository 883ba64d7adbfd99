//! kamrs: a SIP registrar.
//!
//! Data flows one way (docs/design.md §1): a transport hands received bytes to
//! [`route::Router`], which parses them with [`sip`], routes the request the way
//! the reference tutorial's `request_route` does and writes the reply bytes for
//! the transport to send. The daemon (`main.rs`) only wires these together.
//!
//! The library exists so the parser and the request handler can be unit
//! tested, fuzzed and benchmarked without sockets.

pub mod auth;
pub mod check;
pub mod config;
pub mod datagram;
pub mod flow;
pub mod keepalive;
pub mod log_limit;
pub mod logging;
pub mod net;
pub mod peer;
pub mod pike;
pub mod proxy;
pub mod registrar;
pub mod route;
pub mod rpc;
pub mod sip;
pub mod state;
pub mod stats;
pub mod store;
pub mod stun;
pub mod time;
pub mod timing;
pub mod tls;
pub mod transport;
pub mod usrloc;
pub mod util;
pub mod webhook;

/// The `Server:` header value and the version reported everywhere.
pub const SERVER_NAME: &str = concat!("kamrs/", env!("CARGO_PKG_VERSION"));
