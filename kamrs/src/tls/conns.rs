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

/// What the registry keeps of a connection: addresses and static names,
/// about 100 bytes; `tls.list` makes the strings (a registrar with 50,000
/// TLS phones keeps this for each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub transport: &'static str,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Unix seconds of the end of the handshake.
    pub created: u64,
    pub sni: Option<Box<str>>,
    pub version: &'static str,
    pub cipher: &'static str,
    pub client_certificate: bool,
}

impl Entry {
    fn info(&self, id: ConnId) -> ConnInfo {
        ConnInfo {
            id: id.get(),
            dom: "TLSs<default>".to_owned(),
            sni: self.sni.as_deref().unwrap_or("N/A").to_owned(),
            timestamp: crate::time::format_datetime(self.created),
            timeout: crate::time::unix_now().saturating_sub(self.created),
            src_ip: self.remote.ip().to_string(),
            src_port: self.remote.port(),
            dst_ip: self.local.ip().to_string(),
            dst_port: self.local.port(),
            cipher: self.cipher.to_owned(),
            ct_wq_size: 0,
            enc_rd_buf: 0,
            flags: 0,
            state: "established".to_owned(),
            transport: self.transport.to_owned(),
            version: self.version.to_owned(),
            client_certificate: self.client_certificate,
        }
    }
}

/// What a finished handshake tells.
pub fn conn_info(
    transport: &'static str,
    remote: SocketAddr,
    local: SocketAddr,
    conn: &rustls::ServerConnection,
) -> Entry {
    Entry {
        transport,
        remote,
        local,
        created: crate::time::unix_now(),
        sni: conn.server_name().map(Box::from),
        version: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown"),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("unknown"),
        client_certificate: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
    }
}

/// The registry.
#[derive(Debug, Default)]
pub struct Connections {
    map: DashMap<ConnId, Entry>,
}

impl Connections {
    /// Adds `info` until the returned guard drops.
    pub fn register(self: &Arc<Self>, id: ConnId, info: Entry) -> Registered {
        self.map.insert(id, info);
        Registered {
            conns: Arc::clone(self),
            id,
        }
    }

    /// Every open TLS connection, oldest id first.
    pub fn list(&self) -> Vec<ConnInfo> {
        let mut all: Vec<ConnInfo> = self.map.iter().map(|e| e.value().info(*e.key())).collect();
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
