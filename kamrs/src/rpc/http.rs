//! The optional HTTP endpoint (`[ctl] listen = "http://IP:PORT"`) and the
//! HTTP middleware both endpoints run.
//!
//! Security rules (docs/ctl.md):
//! - Loopback by default. Any other address needs `ctl.token_file`; the
//!   config check refuses to start without it.
//! - With a token, every request must carry `Authorization: Bearer TOKEN`,
//!   else 401. The comparison takes the same time wherever it differs.
//! - Without a token (loopback only), the `Host` header must be an IP
//!   address or `localhost`: a web page the admin visits could otherwise
//!   point a name of its own at 127.0.0.1 (DNS rebinding) and call the API
//!   from the browser.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

use super::serve::Connections;
use super::CtlError;

/// Tokens shorter than this are refused: guessable over the network.
const MIN_TOKEN_LEN: usize = 16;

/// A bound HTTP endpoint and its token.
pub(super) struct Bound {
    pub(super) listener: tokio::net::TcpListener,
    pub(super) local: SocketAddr,
    pub(super) token: Option<Arc<str>>,
}

pub(super) fn bind(addr: SocketAddr, token_file: Option<&Path>) -> Result<Bound, CtlError> {
    let token = token_file.map(read_token).transpose()?;
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| {
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .map_err(|e| {
            let hint = match e.kind() {
                io::ErrorKind::AddrInUse => {
                    "the port is in use; choose another in [ctl] listen or --ctl"
                }
                io::ErrorKind::PermissionDenied => "ports below 1024 need root; use 5065",
                io::ErrorKind::AddrNotAvailable => "no local interface has this address",
                _ => "check [ctl] listen",
            };
            CtlError(format!(
                "cannot listen for the control API on http://{addr}: {e} ({hint})"
            ))
        })?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| CtlError(format!("control API on http://{addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CtlError(format!("control API on http://{addr}: {e}")))?;
    Ok(Bound {
        listener,
        local,
        token,
    })
}

fn read_token(path: &Path) -> Result<Arc<str>, CtlError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CtlError(format!("cannot read ctl.token_file {shown}: {e}")))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CtlError(format!(
            "ctl.token_file {shown} must hold one token of at least {MIN_TOKEN_LEN} characters without spaces (e.g. `openssl rand -hex 32 > {shown}`)"
        )));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "ctl.token_file {shown} is readable by other users; `chmod 600 {shown}`"
            );
        }
    }
    Ok(Arc::from(token))
}

/// Accepts connections until the API stops.
pub(super) async fn accept_loop(listener: tokio::net::TcpListener, conns: Connections) {
    let stopped = conns.stop_handle().clone().shutdown();
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut stopped => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                conns.serve(stream, &peer.to_string());
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("control API accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// The HTTP middleware: bearer token or Host check, per request.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    token: Option<Arc<str>>,
    check_host: bool,
}

impl AuthLayer {
    /// For the Unix socket: the kernel already said who the peer is.
    pub fn unix() -> AuthLayer {
        AuthLayer::default()
    }

    /// For HTTP: the token when configured, else the Host check.
    pub fn http(token: Option<Arc<str>>) -> AuthLayer {
        let check_host = token.is_none();
        AuthLayer { token, check_host }
    }

    /// Why the request must not reach the API, if it must not.
    fn check(&self, headers: &http::HeaderMap) -> Result<(), Refusal> {
        if let Some(token) = &self.token {
            let given = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer);
            return match given {
                Some(g) if same(g.as_bytes(), token.as_bytes()) => Ok(()),
                Some(_) => Err(Refusal::WrongToken),
                None => Err(Refusal::NoToken),
            };
        }
        if self.check_host {
            if let Some(host) = headers.get(http::header::HOST) {
                if !host.to_str().is_ok_and(host_is_local_literal) {
                    return Err(Refusal::ForeignHost);
                }
            }
        }
        Ok(())
    }
}

/// A request refused before the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NoToken,
    WrongToken,
    ForeignHost,
}

impl Refusal {
    fn response(self) -> HttpResponse {
        match self {
            Refusal::NoToken => unauthorized(
                "this endpoint needs `Authorization: Bearer <token>` (kamrsctl --token or KAMRSCTL_TOKEN)\n",
            ),
            Refusal::WrongToken => unauthorized("wrong bearer token\n"),
            Refusal::ForeignHost => plain(
                http::StatusCode::FORBIDDEN,
                "Host must be an IP address or localhost\n",
            ),
        }
    }
}

/// The token of an `Authorization: Bearer …` value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Compares without stopping at the first difference, so response timing
/// does not reveal how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `127.0.0.1:5065`, `[::1]:5065`, `localhost`, …: not a DNS name that a
/// web page could control.
fn host_is_local_literal(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, _)) => return ip.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn plain(status: http::StatusCode, body: &'static str) -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn unauthorized(why: &'static str) -> HttpResponse {
    let mut resp = plain(http::StatusCode::UNAUTHORIZED, why);
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"kamrs\""),
    );
    resp
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            policy: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around jsonrpsee's.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    policy: AuthLayer,
}

impl<S, B> tower::Service<HttpRequest<B>> for Auth<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if let Err(refused) = self.policy.check(req.headers()) {
            return Box::pin(std::future::ready(Ok(refused.response())));
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn token_is_required_when_configured() {
        let auth = AuthLayer::http(Some(Arc::from("0123456789abcdef")));
        assert!(auth
            .check(&headers(&[("authorization", "Bearer 0123456789abcdef")]))
            .is_ok());
        assert!(auth
            .check(&headers(&[("authorization", "bearer  0123456789abcdef ")]))
            .is_ok());
        for bad in [
            vec![],
            vec![("authorization", "Bearer 0123456789abcdeX")],
            vec![("authorization", "Basic 0123456789abcdef")],
            vec![("authorization", "Bearer")],
        ] {
            let resp = auth.check(&headers(&bad)).unwrap_err().response();
            assert_eq!(resp.status(), 401, "{bad:?}");
            assert!(resp.headers().contains_key("www-authenticate"));
        }
        // With a token, any Host is fine: the token is the protection.
        assert!(auth
            .check(&headers(&[
                ("authorization", "Bearer 0123456789abcdef"),
                ("host", "kamrs.example.com")
            ]))
            .is_ok());
    }

    #[test]
    fn loopback_without_token_checks_host() {
        let auth = AuthLayer::http(None);
        for ok in [
            "127.0.0.1:5065",
            "localhost:5065",
            "LOCALHOST",
            "[::1]:5065",
            "10.1.2.3",
        ] {
            assert!(auth.check(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        assert!(auth.check(&headers(&[])).is_ok());
        for bad in [
            "evil.example.com",
            "evil.example.com:5065",
            "[::1",
            "127.0.0.1.nip.io:5065",
        ] {
            assert_eq!(
                auth.check(&headers(&[("host", bad)])).unwrap_err(),
                Refusal::ForeignHost,
                "{bad}"
            );
            assert_eq!(Refusal::ForeignHost.response().status(), 403);
        }
        assert!(AuthLayer::unix()
            .check(&headers(&[("host", "anything")]))
            .is_ok());
    }

    #[test]
    fn constant_time_compare() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }

    #[test]
    fn token_file_rules() {
        let dir = std::env::temp_dir().join(format!("kamrs-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "  0123456789abcdef0123\n").unwrap();
        assert_eq!(&*read_token(&f).unwrap(), "0123456789abcdef0123");
        std::fs::write(&f, "short\n").unwrap();
        assert!(read_token(&f).unwrap_err().0.contains("at least 16"));
        std::fs::write(&f, "0123456789 abcdef0123\n").unwrap();
        assert!(read_token(&f).is_err());
        let e = read_token(&dir.join("missing")).unwrap_err();
        assert!(e.0.contains("cannot read ctl.token_file"), "{}", e.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
