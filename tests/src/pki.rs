//! A certificate authority made when a test runs, and TLS clients that
//! trust it: no key is ever committed, and every run gets fresh ones.
//!
//! The client side is plain blocking rustls over `std::net::TcpStream`,
//! set up here and not from kamrs's code, so a mistake in the daemon's
//! TLS configuration cannot be mirrored by the tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sha2::{Digest, Sha256};

/// A CA: its certificate (PEM) and what it needs to sign more.
pub struct Ca {
    pub cert_pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate signed by a [`Ca`], with its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 (and ::1).
    pub fn server(&self, cn: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        params
            .subject_alt_names
            .push(SanType::IpAddress("::1".parse().expect("ip")));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate (for `[tls] verify_client`).
    pub fn client(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A client config that trusts only this CA.
    pub fn client_config(&self, client_cert: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
        self.client_config_versions(client_cert, rustls::DEFAULT_VERSIONS)
    }

    /// A client config that trusts only this CA and offers only TLS 1.2.
    pub fn client_config_tls12(&self) -> Arc<rustls::ClientConfig> {
        self.client_config_versions(None, &[&rustls::version::TLS12])
    }

    fn client_config_versions(
        &self,
        client_cert: Option<&Leaf>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("CA is a trust anchor");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
        let config = match client_cert {
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![leaf.der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
                )
                .expect("client certificate"),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}

impl Leaf {
    /// Writes the certificate and key as `NAME.crt` and `NAME.key` in
    /// `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }

    /// SHA-256 of the certificate, `AB:CD:…`, as `tls.info` shows it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }
}

/// SHA-256 of a DER certificate as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A blocking TLS connection to the daemon.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects to `server` and completes the handshake (the server's name is
/// `localhost`). Errors are the handshake's, as text.
pub fn tls_connect(
    server: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream, String> {
    let tcp = TcpStream::connect_timeout(&server, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    tls_handshake(tcp, config)
}

/// Completes a client handshake on a TCP connection already open (one
/// bound to another source address, say).
pub fn tls_handshake(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream, String> {
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    Ok(stream)
}

/// The bytes a client sends first (its ClientHello), for a test that
/// sends only part of them.
pub fn client_hello(config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("server name");
    let mut conn = rustls::ClientConnection::new(config, name).expect("client connection");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls into a Vec");
    }
    out
}

/// The local port of a TLS connection (what `tls.list` shows as src_port).
pub fn local_port(stream: &TlsStream) -> u16 {
    stream.sock.local_addr().expect("local address").port()
}

/// The server certificate a finished handshake saw, as a fingerprint.
pub fn peer_fingerprint(stream: &TlsStream) -> String {
    stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| fingerprint(c))
        .unwrap_or_default()
}

/// Sends `request` and reads one SIP response (headers and the body its
/// Content-Length announces) within `timeout`.
pub fn tls_exchange(
    stream: &mut TlsStream,
    request: impl AsRef<[u8]>,
    timeout: Duration,
) -> Option<crate::Response> {
    stream.write_all(request.as_ref()).ok()?;
    stream.flush().ok()?;
    read_tls_response(stream, timeout)
}

/// Reads one SIP response within `timeout`. Whatever came after it in the
/// same read is dropped: for pipelined replies use [`read_tls_responses`].
pub fn read_tls_response(stream: &mut TlsStream, timeout: Duration) -> Option<crate::Response> {
    read_tls_responses(stream, 1, timeout)?.pop()
}

/// Reads `n` SIP responses (one after the other on the stream) within
/// `timeout`; None if the connection closes or they are not all there
/// by then.
pub fn read_tls_responses(
    stream: &mut TlsStream,
    n: usize,
    timeout: Duration,
) -> Option<Vec<crate::Response>> {
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut out = Vec::new();
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .or_else(|| l.strip_prefix("l:"))
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            out.push(crate::Response::parse(&buf[..end + 4 + len]).ok()?);
            buf.drain(..end + 4 + len);
            if out.len() == n {
                return Some(out);
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.sock.set_read_timeout(Some(left)).ok()?;
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
}
