//! TLS load for bench/tls-bench.sh, the same for kamrs and Kamailio.
//!
//! `hold`: opens connections from many source addresses (127.77.X.Y),
//! each a full TLS handshake and one REGISTER answered 200, and keeps them
//! open and idle. After each step of `--steps` it prints `held N failed F
//! secs S` and waits for a line on stdin before the next; stdin's end
//! closes everything and exits.
//!
//! `handshake`: `--concurrency` tasks, each connecting, completing a full
//! handshake (no resumption) and closing, in a loop for `--secs`; prints
//! one JSON line with the handshakes per second.
//!
//! The client does not verify the server's certificate (both servers get
//! the same one; checking it would only spend the client's share of the
//! CPU the two servers compete for).

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

struct Args {
    mode: String,
    server: SocketAddr,
    steps: Vec<usize>,
    sources: usize,
    concurrency: usize,
    secs: u64,
    prefix: String,
}

fn args() -> Args {
    let mut a = Args {
        mode: String::new(),
        server: SocketAddr::from(([127, 0, 0, 1], 5061)),
        steps: vec![1000],
        sources: 100,
        concurrency: 64,
        secs: 10,
        prefix: "tls".into(),
    };
    let mut it = std::env::args().skip(1);
    a.mode = it.next().unwrap_or_default();
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--server" => a.server = v.parse().expect("--server IP:PORT"),
            "--steps" => {
                a.steps = v
                    .split(',')
                    .map(|s| s.parse().expect("--steps N,N"))
                    .collect()
            }
            "--sources" => a.sources = v.parse().expect("--sources N"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            "--secs" => a.secs = v.parse().expect("--secs N"),
            "--prefix" => a.prefix = v,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn connector() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    // Every handshake a full one, on both servers.
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// Source address number `i` of `n`: 127.77.X.Y.
fn source(i: usize, n: usize) -> IpAddr {
    let k = i % n.max(1);
    IpAddr::V4(Ipv4Addr::new(127, 77, (k / 250) as u8, (k % 250 + 1) as u8))
}

async fn connect(
    server: SocketAddr,
    from: IpAddr,
    tls: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(server).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("name");
    tls.connect(name, tcp).await
}

async fn register(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    aor: &str,
    local: SocketAddr,
    server: SocketAddr,
) -> Result<(), String> {
    let msg = format!(
        "REGISTER sip:{server} SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK{aor};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{aor}@bench.test>;tag={aor}\r\n\
         To: <sip:{aor}@bench.test>\r\n\
         Call-ID: {aor}@bench\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{aor}@{local};transport=tls>\r\n\
         Expires: 3600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    stream.write_all(msg.as_bytes()).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .map_err(|_| "no reply in 30 s".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.starts_with(b"SIP/2.0 200") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&buf[..buf.len().min(60)]).into_owned())
    }
}

async fn hold(a: Args) {
    let tls = connector();
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
    let mut opened = 0usize;
    let mut lines = {
        let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if tx.send(line.ok()).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        rx
    };
    for &target in &a.steps {
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        while opened < target {
            let i = opened;
            opened += 1;
            let permit = Arc::clone(&gate).acquire_owned().await.expect("gate");
            let tls = tls.clone();
            let held = Arc::clone(&held);
            let failed = Arc::clone(&failed);
            let server = a.server;
            let from = source(i, a.sources);
            let aor = format!("{}{i}", a.prefix);
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                let outcome = async {
                    let mut s = connect(server, from, &tls).await.map_err(|e| e.to_string())?;
                    let local = s.get_ref().0.local_addr().map_err(|e| e.to_string())?;
                    register(&mut s, &aor, local, server).await?;
                    Ok::<_, String>(s)
                }
                .await;
                match outcome {
                    Ok(s) => held.lock().await.push(s),
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("connection {i} failed: {e}");
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        println!(
            "held {} failed {} secs {:.1}",
            held.lock().await.len(),
            failed.load(Ordering::Relaxed),
            t0.elapsed().as_secs_f64()
        );
        match lines.recv() {
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
    // Wait for the end of stdin, then close everything.
    while let Ok(Some(_)) = lines.recv() {}
    let _ = &mut lines;
}

async fn handshakes(a: Args) {
    let tls = connector();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(a.secs);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.concurrency {
        let tls = tls.clone();
        let done = Arc::clone(&done);
        let failed = Arc::clone(&failed);
        let server = a.server;
        let sources = a.sources;
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while Instant::now() < stop {
                match connect(server, source(i, sources), &tls).await {
                    Ok(mut s) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        let _ = s.shutdown().await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 97;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{{\"handshakes\": {n}, \"failed\": {}, \"secs\": {secs:.3}, \"per_sec\": {:.1}}}",
        failed.load(Ordering::Relaxed),
        n as f64 / secs
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    match a.mode.as_str() {
        "hold" => hold(a).await,
        "handshake" => handshakes(a).await,
        _ => {
            eprintln!("usage: kamrs-tls-load hold|handshake --server IP:PORT [--steps N,N] [--sources N] [--concurrency N] [--secs N] [--prefix P]");
            std::process::exit(2);
        }
    }
}
