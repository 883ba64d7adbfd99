//! Reading the PEM files of `[tls]` into a rustls server config, with
//! errors that name the file and say what to do.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{MinVersion, Settings};

/// A `[tls]` file that cannot be used, in the admin's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(String);

/// What was loaded, for `tls.info` and the log: enough to tell which
/// certificate is in force (compare with `openssl x509 -noout
/// -fingerprint -sha256 -in FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    pub certificate: String,
    /// Certificates in the chain file, the server's own first.
    pub chain_length: usize,
    /// SHA-256 of the server certificate (DER), as `AB:CD:…`.
    pub sha256_fingerprint: String,
    /// When it was loaded, Unix seconds.
    pub loaded_at: u64,
    pub verify_client: bool,
    pub min_version: &'static str,
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file; check the path",
            std::io::ErrorKind::PermissionDenied => {
                "permission denied; kamrs's user must be able to read it"
            }
            _ => "cannot be read",
        };
        LoadError(format!("[tls] {key} {}: {hint} ({e})", path.display()))
    })
}

fn chain(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let pem = read(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            LoadError(format!(
                "[tls] {key} {}: not a valid PEM certificate file ({e})",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(LoadError(format!(
            "[tls] {key} {}: holds no certificate (expected -----BEGIN CERTIFICATE----- blocks, the server's own first)",
            path.display()
        )));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    let pem = read(path, "private_key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        LoadError(format!(
            "[tls] private_key {}: holds no usable private key (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block; {e})",
            path.display()
        ))
    })
}

pub(super) fn fingerprint_of(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex = crate::util::hex(&digest).to_ascii_uppercase();
    let mut out = String::with_capacity(hex.len() * 3 / 2);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.extend(pair.iter().map(|&b| char::from(b)));
    }
    out
}

/// Builds the config `settings` describe.
pub(super) fn server_config(settings: &Settings) -> Result<(ServerConfig, CertSummary), LoadError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| LoadError(format!("[tls] min_version cannot be used: {e}")))?;
    let builder = if settings.verify_client {
        let Some(ca_path) = &settings.ca_list else {
            return Err(LoadError(
                "[tls] verify_client = true needs ca_list, the PEM file of the CAs client certificates must be signed by".to_owned(),
            ));
        };
        let mut roots = RootCertStore::empty();
        for ca in chain(ca_path, "ca_list")? {
            roots.add(ca).map_err(|e| {
                LoadError(format!(
                    "[tls] ca_list {}: a certificate in it cannot be a CA ({e})",
                    ca_path.display()
                ))
            })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| {
                LoadError(format!(
                    "[tls] ca_list {}: cannot verify clients with it ({e})",
                    ca_path.display()
                ))
            })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let certs = chain(&settings.certificate, "certificate")?;
    let leaf = fingerprint_of(certs[0].as_ref());
    let chain_length = certs.len();
    let key = private_key(&settings.private_key)?;
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => {
                "the private key does not belong to the certificate (is one of the two files from another certificate, or only half renewed?)".to_owned()
            }
            other => format!("the key cannot be used with it ({other})"),
        };
        LoadError(format!(
            "[tls] certificate {} and private_key {}: {why}",
            settings.certificate.display(),
            settings.private_key.display()
        ))
    })?;
    // Resumption tickets would need a shared rotating key; session IDs in
    // rustls' bounded in-memory cache are enough for phones that reconnect.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    let summary = CertSummary {
        certificate: settings.certificate.display().to_string(),
        chain_length,
        sha256_fingerprint: leaf,
        loaded_at: crate::time::unix_now(),
        verify_client: settings.verify_client,
        min_version: match settings.min_version {
            MinVersion::Tls12 => "1.2",
            MinVersion::Tls13 => "1.3",
        },
    };
    Ok((config, summary))
}
