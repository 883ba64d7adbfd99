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
//! - Requests from browsers (`Origin`, `Sec-Fetch-Site`, `Sec-Fetch-Mode`:
//!   see `origin.rs`) are refused unless their origin is the listener's or
//!   in `[ctl] allowed_origins`, they are not cross-site or same-site, and
//!   they carry the token, even on loopback: a page the admin visits must
//!   not reach the API (WebSocket upgrades included; kamrsctl uses them and
//!   sends no Origin). kamrsctl and curl on loopback stay token-free.
//! - A POST must declare JSON (`Content-Type: application/json`), on both
//!   endpoints: the types a page may POST cross-site without a CORS
//!   preflight (`text/plain`, forms) are never read as JSON-RPC.
//! - A browser's WebSocket cannot send `Authorization`, so a WebSocket
//!   upgrade (only) may carry the token in `Sec-WebSocket-Protocol`
//!   instead: the web view (`web.rs`) offers the protocols `kamrs` and
//!   `kamrs.bearer.<token as lower-case hex>`, and a 101 answers `kamrs`.
//!   The token is compared in constant time like the header's, and the
//!   header is taken out of the request before jsonrpsee sees it. The
//!   browser rules above apply unchanged.
//!
//! Every refusal is counted (`ctl:` statistics) and logged, the log lines
//! thinned to powers of two so a page looping on the API cannot flood it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

use super::origin::{fetch_site, is_json, FetchSite, Origins};
use super::serve::Connections;
use super::CtlError;

/// The WebSocket subprotocol a browser offers beside its token, and the
/// one a 101 names (a browser fails a socket whose 101 names none of the
/// protocols it offered).
pub const WS_PROTOCOL: &str = "kamrs";

/// The subprotocol that carries the token: this, then the token's bytes as
/// lower-case hex. Hex because a subprotocol must be an HTTP token, and a
/// token file may hold characters (`/`, `=`, `:`) that are not.
pub const WS_TOKEN_PREFIX: &str = "kamrs.bearer.";

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

pub(super) fn read_token(path: &Path) -> Result<Arc<str>, CtlError> {
    crate::util::read_token(path, "ctl.token_file").map_err(CtlError)
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

/// Requests refused before the API, by rule (`ctl:` statistics).
#[derive(Debug, Default)]
pub struct CtlStats {
    /// From a browser: foreign `Origin`, cross-site `Sec-Fetch-Site`, or
    /// no token.
    pub refused_cross_origin: AtomicU64,
    /// Missing or wrong bearer token (401).
    pub refused_unauthorized: AtomicU64,
    /// `Host` not an IP address or localhost (403, no token configured).
    pub refused_host: AtomicU64,
    /// A POST whose `Content-Type` is not JSON (415).
    pub refused_content_type: AtomicU64,
}

/// The HTTP middleware: browser, token, Host and Content-Type checks, per
/// request (a WebSocket upgrade is one request).
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    token: Option<Arc<str>>,
    /// The token as lower-case hex, as a WebSocket subprotocol carries it.
    token_hex: Option<Arc<str>>,
    check_host: bool,
    /// The browser rules (HTTP only: no browser reaches a Unix socket).
    origins: Option<Arc<Origins>>,
    stats: Arc<CtlStats>,
}

impl AuthLayer {
    /// For the Unix socket: the kernel already said who the peer is.
    pub fn unix(stats: Arc<CtlStats>) -> AuthLayer {
        AuthLayer {
            stats,
            ..AuthLayer::default()
        }
    }

    /// For HTTP: the browser rules, then the token when configured, else
    /// the Host check.
    pub fn http(token: Option<Arc<str>>, origins: Origins, stats: Arc<CtlStats>) -> AuthLayer {
        let check_host = token.is_none();
        let token_hex = token.as_deref().map(|t| Arc::from(hex(t.as_bytes())));
        AuthLayer {
            token,
            token_hex,
            check_host,
            origins: Some(Arc::new(origins)),
            stats,
        }
    }

    /// Why the request must not reach the API, if it must not.
    fn check(&self, method: &http::Method, headers: &http::HeaderMap) -> Result<(), Refusal> {
        if let Some(origins) = &self.origins {
            let origin = headers.get(http::header::ORIGIN);
            if let Some(o) = origin {
                if !o.to_str().is_ok_and(|o| origins.allows(o)) {
                    return Err(Refusal::ForeignOrigin);
                }
            }
            let site = headers.get("sec-fetch-site");
            if site.is_some_and(|v| fetch_site(v.as_bytes()) == FetchSite::Foreign) {
                return Err(Refusal::CrossSite);
            }
            let browser =
                origin.is_some() || site.is_some() || headers.contains_key("sec-fetch-mode");
            if browser && self.token.is_none() {
                return Err(Refusal::BrowserWithoutToken);
            }
        }
        if let (Some(token), Some(token_hex)) = (&self.token, &self.token_hex) {
            let header = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer);
            // The header first: a client that sends it means it. The
            // subprotocol only on an upgrade, so a token there never
            // authorizes a plain POST.
            let right = match header {
                Some(g) => same(g.as_bytes(), token.as_bytes()),
                None => match is_upgrade(method, headers)
                    .then(|| ws_token(headers))
                    .flatten()
                {
                    Some(g) => same(g.as_bytes(), token_hex.as_bytes()),
                    None => return Err(Refusal::NoToken),
                },
            };
            if !right {
                return Err(Refusal::WrongToken);
            }
        } else if self.check_host {
            if let Some(host) = headers.get(http::header::HOST) {
                if !host.to_str().is_ok_and(host_is_local_literal) {
                    return Err(Refusal::ForeignHost);
                }
            }
        }
        if method == http::Method::POST
            && !headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| is_json(v.as_bytes()))
        {
            return Err(Refusal::NotJson);
        }
        Ok(())
    }

    /// Counts and (thinly) logs a refusal. The Origin is logged as a
    /// field, which the log writer escapes: it is what the page sent.
    fn refused(&self, refusal: Refusal, headers: &http::HeaderMap) {
        let counter = match refusal {
            Refusal::CrossSite | Refusal::ForeignOrigin | Refusal::BrowserWithoutToken => {
                &self.stats.refused_cross_origin
            }
            Refusal::NoToken | Refusal::WrongToken => &self.stats.refused_unauthorized,
            Refusal::ForeignHost => &self.stats.refused_host,
            Refusal::NotJson => &self.stats.refused_content_type,
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            let origin = headers
                .get(http::header::ORIGIN)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            tracing::warn!(
                origin = origin.as_deref().unwrap_or("-"),
                refused = n,
                "control API request refused: {}",
                refusal.why()
            );
        }
    }
}

/// A request refused before the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NoToken,
    WrongToken,
    ForeignHost,
    /// `Sec-Fetch-Site: cross-site` or `same-site`.
    CrossSite,
    /// An `Origin` that is neither the listener nor allowed.
    ForeignOrigin,
    /// A browser request (allowed origin) without a token configured.
    BrowserWithoutToken,
    /// A POST that does not declare JSON.
    NotJson,
}

impl Refusal {
    /// What the log says.
    fn why(self) -> &'static str {
        match self {
            Refusal::NoToken => "no bearer token",
            Refusal::WrongToken => "wrong bearer token",
            Refusal::ForeignHost => "Host is a name, not an IP address or localhost",
            Refusal::CrossSite => "Sec-Fetch-Site says another site's page sent it",
            Refusal::ForeignOrigin => "a web page's Origin not in [ctl] allowed_origins",
            Refusal::BrowserWithoutToken => "a browser request and no ctl.token_file",
            Refusal::NotJson => "POST without Content-Type: application/json",
        }
    }

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
            Refusal::CrossSite => plain(
                http::StatusCode::FORBIDDEN,
                "refused: Sec-Fetch-Site says another site's web page sent this request; the kamrs control API serves kamrsctl, curl and the origins in [ctl] allowed_origins only\n",
            ),
            Refusal::ForeignOrigin => plain(
                http::StatusCode::FORBIDDEN,
                "refused: requests from web pages are served only when their Origin is this listener or in kamrs's [ctl] allowed_origins, with the bearer token (kamrsctl and curl send no Origin)\n",
            ),
            Refusal::BrowserWithoutToken => plain(
                http::StatusCode::FORBIDDEN,
                "refused: requests from web browsers need the bearer token: set [ctl] token_file in kamrs's config and send `Authorization: Bearer <token>`\n",
            ),
            Refusal::NotJson => plain(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a JSON-RPC request needs `Content-Type: application/json`\n",
            ),
        }
    }
}

/// The token of an `Authorization: Bearer …` value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Whether the request asks for a WebSocket (`GET` with `Upgrade:
/// websocket`).
fn is_upgrade(method: &http::Method, headers: &http::HeaderMap) -> bool {
    method == http::Method::GET
        && headers
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The subprotocols a WebSocket handshake offers, in order.
fn ws_protocols(headers: &http::HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The hex token of a `kamrs.bearer.<hex>` subprotocol, if one is offered.
fn ws_token(headers: &http::HeaderMap) -> Option<&str> {
    ws_protocols(headers).find_map(|p| p.strip_prefix(WS_TOKEN_PREFIX))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

    fn call(&mut self, mut req: HttpRequest<B>) -> Self::Future {
        if let Err(refused) = self.policy.check(req.method(), req.headers()) {
            self.policy.refused(refused, req.headers());
            return Box::pin(std::future::ready(Ok(refused.response())));
        }
        // The token may be among the subprotocols: nothing past this point
        // needs them (jsonrpsee speaks none), so they go no further. What
        // was offered decides whether the 101 names `kamrs`.
        let offered_kamrs = ws_protocols(req.headers()).any(|p| p == WS_PROTOCOL);
        req.headers_mut()
            .remove(http::header::SEC_WEBSOCKET_PROTOCOL);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await.map_err(Into::into)?;
            if offered_kamrs && resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                resp.headers_mut().insert(
                    http::header::SEC_WEBSOCKET_PROTOCOL,
                    http::HeaderValue::from_static(WS_PROTOCOL),
                );
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests;
