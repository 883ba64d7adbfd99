//! The daemon's shared state as one set of handles: the location table,
//! the registrar, the authenticator, the flood filter, the core
//! counters, the flows and the keepalive. `main.rs` builds one [`Core`]; the router and the control API
//! each get a clone, so both work on the same objects and neither reaches
//! them through the other.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::flow::Flows;
use crate::keepalive::Keepalive;
use crate::pike::Pike;
use crate::proxy::Proxy;
use crate::registrar::Registrar;
use crate::stats::CoreStats;
use crate::tls::Tls;
use crate::usrloc::LocationTable;

/// Handles to the shared state; cloning copies the handles, not the state.
#[derive(Clone)]
pub struct Core {
    /// The location table the registrar writes and `ul.*` read and edit.
    pub table: Arc<LocationTable>,
    pub registrar: Arc<Registrar>,
    /// Digest authentication, `None` while `[auth] mode = "none"`.
    pub auth: Option<Arc<Authenticator>>,
    /// The flood filter, `None` while `[pike] enabled = false`.
    pub pike: Option<Arc<Pike>>,
    pub stats: Arc<CoreStats>,
    /// The sockets and connections requests to bindings leave by.
    pub flows: Arc<Flows>,
    /// The NAT keepalive, `None` while `ka_mode = 0`.
    pub keepalive: Option<Arc<Keepalive>>,
    /// The certificate of `tls:`/`wss:` listeners, `None` without `[tls]`.
    pub tls: Option<Arc<Tls>>,
    /// Call delivery, `None` while `[route] mode = "registrar"`.
    pub proxy: Option<Arc<Proxy>>,
}

impl Core {
    /// The table and authenticator are the registrar's own handles, so the
    /// control API can never see a different table or authenticator than
    /// the one REGISTERs use.
    pub fn new(registrar: Registrar, stats: Arc<CoreStats>) -> Core {
        Core {
            table: Arc::clone(registrar.table()),
            auth: registrar.auth().cloned(),
            registrar: Arc::new(registrar),
            pike: None,
            stats,
            flows: Flows::new(),
            keepalive: None,
            tls: None,
            proxy: None,
        }
    }

    /// With TLS (`[tls]` loaded).
    pub fn with_tls(mut self, tls: Arc<Tls>) -> Core {
        self.tls = Some(tls);
        self
    }

    /// With the transports' sockets and connections.
    pub fn with_flows(mut self, flows: Arc<Flows>) -> Core {
        self.flows = flows;
        self
    }

    /// With call delivery (`[route] mode` proxy or redirect).
    pub fn with_proxy(mut self, proxy: Arc<Proxy>) -> Core {
        self.proxy = Some(proxy);
        self
    }

    /// With the NAT keepalive on.
    pub fn with_keepalive(mut self, keepalive: Arc<Keepalive>) -> Core {
        self.keepalive = Some(keepalive);
        self
    }

    /// With the flood filter on.
    pub fn with_pike(mut self, pike: Arc<Pike>) -> Core {
        self.pike = Some(pike);
        self
    }
}

#[cfg(test)]
mod tests;
