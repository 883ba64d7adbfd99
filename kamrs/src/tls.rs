//! TLS for the `tls:` and `wss:` listeners: the certificate in force, its
//! reload, and the connections that use it (`tls.list`, `tls.info`).
//!
//! The certificate is loaded once at start (a bad file stops start-up with
//! a clear message) and again on SIGHUP or `tls.reload`. A reload builds
//! the whole new rustls config first and swaps it in only when every file
//! was good, so a half-written certificate from an ACME client can never
//! take TLS down: the old one stays in force and the error says why.
//! Connections keep the config they were accepted with; new ones get the
//! new one.

mod certs;
mod conns;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;

pub use certs::{CertSummary, LoadError};
pub use conns::{conn_info, ConnInfo, Connections, Entry, Registered};

use crate::util::{lock_read, lock_write};

/// Lowest TLS version offered (`[tls] min_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

/// `[tls]`, checked: what to load and how to handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// PEM: the server certificate first, then its intermediates.
    pub certificate: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// Ask every client for a certificate signed by `ca_list` and refuse
    /// the handshake without one (Kamailio's `verify_certificate` plus
    /// `require_certificate`).
    pub verify_client: bool,
    /// PEM: the CAs client certificates must chain to.
    pub ca_list: Option<PathBuf>,
    pub min_version: MinVersion,
    /// From accept to the end of the handshake; a client that stalls is
    /// closed then (`tls:handshake_timeout`).
    pub handshake_timeout: Duration,
}

/// `tls:*` counters.
#[derive(Debug, Default)]
pub struct TlsStats {
    /// Handshakes completed (TLS and WSS).
    pub handshakes: AtomicU64,
    /// Handshakes that failed: garbage, no common version or cipher, a
    /// client certificate refused, the peer gone.
    pub handshake_failed: AtomicU64,
    /// Handshakes not finished within `handshake_timeout`.
    pub handshake_timeout: AtomicU64,
    /// Certificate reloads that took effect.
    pub reloads: AtomicU64,
    /// Reloads refused because a file was bad (the old one stays).
    pub reload_failed: AtomicU64,
}

/// The certificate in force and the connections using TLS.
pub struct Tls {
    settings: Settings,
    current: RwLock<Loaded>,
    /// Held from reading the files to the swap: two reloads at once
    /// (SIGHUP and `tls.reload`) must not let the one that read older
    /// files swap last.
    reloading: std::sync::Mutex<()>,
    /// Open TLS and WSS connections, for `tls.list`.
    pub conns: Arc<Connections>,
    pub stats: TlsStats,
}

#[derive(Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    summary: Arc<CertSummary>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .field("certificate", &self.summary())
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate and key; the error names the file and what
    /// is wrong with it.
    pub fn load(settings: Settings) -> Result<Tls, LoadError> {
        let loaded = build(&settings)?;
        Ok(Tls {
            settings,
            current: RwLock::new(loaded),
            reloading: std::sync::Mutex::new(()),
            conns: Arc::default(),
            stats: TlsStats::default(),
        })
    }

    /// Reads the files again and puts the new certificate in force for
    /// new connections; on any error nothing changes.
    pub fn reload(&self) -> Result<Arc<CertSummary>, LoadError> {
        let _one_at_a_time = crate::util::lock(&self.reloading);
        match build(&self.settings) {
            Ok(loaded) => {
                let summary = Arc::clone(&loaded.summary);
                *lock_write(&self.current) = loaded;
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(summary)
            }
            Err(e) => {
                self.stats.reload_failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The config a connection accepted now handshakes with.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&lock_read(&self.current).config))
    }

    /// What is in force now.
    pub fn summary(&self) -> Arc<CertSummary> {
        Arc::clone(&lock_read(&self.current).summary)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

fn build(settings: &Settings) -> Result<Loaded, LoadError> {
    let (config, summary) = certs::server_config(settings)?;
    Ok(Loaded {
        config: Arc::new(config),
        summary: Arc::new(summary),
    })
}

#[cfg(test)]
mod tests;
