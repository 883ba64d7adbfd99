//! The open TLS connections (on `tls:` and `wss:` listeners), for
//! `tls.list`. Each connection task registers after its handshake and is
//! removed when the task ends, so the list is bounded by
//! `tcp_max_connections` like the connections themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use dashmap::DashMap;

use crate::peer::ConnId;

/// One TLS connection as `tls.list` shows it.
pub type ConnInfo = common::types::TlsConnection;

/// What a finished handshake tells.
pub fn conn_info(
    id: ConnId,
    transport: &'static str,
    remote: SocketAddr,
    local: SocketAddr,
    conn: &rustls::ServerConnection,
) -> ConnInfo {
    ConnInfo {
        id: id.get(),
        sni: conn.server_name().unwrap_or_default().to_owned(),
        timestamp: crate::time::format_datetime(crate::time::unix_now()),
        src_ip: remote.ip().to_string(),
        src_port: remote.port(),
        dst_ip: local.ip().to_string(),
        dst_port: local.port(),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("unknown")
            .to_owned(),
        state: "established".to_owned(),
        transport: transport.to_owned(),
        version: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        client_certificate: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
    }
}

/// The registry.
#[derive(Debug, Default)]
pub struct Connections {
    map: DashMap<ConnId, ConnInfo>,
}

impl Connections {
    /// Adds `info` until the returned guard drops.
    pub fn register(self: &Arc<Self>, id: ConnId, info: ConnInfo) -> Registered {
        self.map.insert(id, info);
        Registered {
            conns: Arc::clone(self),
            id,
        }
    }

    /// Every open TLS connection, oldest id first.
    pub fn list(&self) -> Vec<ConnInfo> {
        let mut all: Vec<ConnInfo> = self.map.iter().map(|e| e.value().clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Keeps one connection in [`Connections`] while it lives.
pub struct Registered {
    conns: Arc<Connections>,
    id: ConnId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.conns.map.remove(&self.id);
    }
}
