//! `tls.list`, `tls.info`, `tls.reload`: Kamailio's tls module RPCs.

use std::sync::atomic::Ordering;

use common::api::error;
use common::types::{TlsConnection, TlsInfo};
use jsonrpsee::types::ErrorObjectOwned;

use super::api::State;
use crate::tls::Tls;

/// What the `tls.*` methods answer without `[tls]`.
pub const TLS_OFF: &str = "TLS is off: no [tls] certificate is configured. Set [tls] certificate and private_key and a `tls:` or `wss:` listen address, then restart kamrs";

fn tls(state: &State) -> Result<&Tls, ErrorObjectOwned> {
    state
        .core
        .tls
        .as_deref()
        .ok_or_else(|| ErrorObjectOwned::owned(error::DISABLED, TLS_OFF, None::<()>))
}

pub fn list(state: &State) -> Result<Vec<TlsConnection>, ErrorObjectOwned> {
    Ok(tls(state)?.conns.list())
}

pub fn info(state: &State) -> Result<TlsInfo, ErrorObjectOwned> {
    let tls = tls(state)?;
    let cert = tls.summary();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Ok(TlsInfo {
        max_connections: u64::try_from(state.settings.tcp_max_connections).unwrap_or(u64::MAX),
        opened_connections: u64::try_from(tls.conns.len()).unwrap_or(u64::MAX),
        clear_text_write_queued_bytes: 0,
        certificate: cert.certificate.clone(),
        chain_length: u64::try_from(cert.chain_length).unwrap_or(u64::MAX),
        sha256_fingerprint: cert.sha256_fingerprint.clone(),
        loaded_at: crate::time::format_datetime(cert.loaded_at),
        min_version: cert.min_version.to_owned(),
        verify_client: cert.verify_client,
        handshakes: load(&tls.stats.handshakes),
        handshake_failures: load(&tls.stats.handshake_failed) + load(&tls.stats.handshake_timeout),
    })
}

pub fn reload(state: &State) -> Result<String, ErrorObjectOwned> {
    let tls = tls(state)?;
    match tls.reload() {
        Ok(cert) => {
            tracing::info!(certificate = %cert.certificate, sha256 = %cert.sha256_fingerprint, "tls.reload: certificate reloaded");
            // Kamailio's exact words: scripts compare them. The
            // fingerprint is in the log line above and in tls.info.
            Ok("Ok. TLS configuration reloaded.".to_owned())
        }
        Err(e) => {
            tracing::error!(
                "tls.reload: certificate not reloaded, the old one stays in force: {e}"
            );
            Err(ErrorObjectOwned::owned(
                error::INTERNAL,
                format!("{e}; the certificate in force is unchanged"),
                None::<()>,
            ))
        }
    }
}
