//! `[events] webhook`: every event of the location table (`ul.watch`'s),
//! POSTed to a web service in batches, for systems that want to follow
//! registrations without holding a control connection open.
//!
//! Two tasks and a bounded queue between them:
//! - the collector reads the table's event ring as a listener like any
//!   `ul.subscribe`, and appends to the queue. It never waits for the
//!   network, so the registrar never waits for the receiver. At
//!   `webhook_queue` events the oldest are dropped and counted: the
//!   newest say where phones are now.
//! - the sender POSTs what is queued, up to `webhook_batch` events at a
//!   time, as one JSON array (the objects `ul.watch --json` prints, in
//!   order; a `{"Event": "lagged", "Lost": N}` first when events were
//!   dropped since the last delivered batch), over one kept-alive HTTP/1.1
//!   connection. Events leave the queue only once the receiver answered
//!   2xx: a failure (no connection, timeout, 5xx, 408, 429) is retried
//!   with the same events, after 1 s, 2 s, … up to 30 s, so delivery is at
//!   least once (the `Seq` of each event tells a receiver what it has
//!   seen). Any other 4xx means the receiver will never take that batch:
//!   it is dropped, counted as rejected and logged, and the next is sent.
//!
//! Plain `http://` only until kamrs has TLS; a receiver elsewhere is
//! reached through a local relay.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

use crate::log_limit::LogLimiter;
use crate::stats::{CoreStats, WebhookStats};
use crate::usrloc::{Event, Listener, LocationTable};

/// Longest wait between two attempts while the receiver fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Most of a reply's body read (and thrown away) so the connection can
/// carry the next POST; a longer body closes the connection instead.
const MAX_REPLY_BODY: usize = 64 * 1024;

/// Where the events go: the parts of an `http://` URL a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address, as `connect` takes it (no brackets).
    host: String,
    port: u16,
    /// `Host:` header value (`example.com:8080`, `[::1]:8080`).
    authority: String,
    path_and_query: String,
}

impl Target {
    /// Parses `[events] webhook`: `http://HOST[:PORT][/PATH][?QUERY]`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let usage = "write http://HOST[:PORT]/PATH, e.g. \"http://127.0.0.1:8080/kamrs-events\"";
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL ({e}); {usage}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "`{url}`: https webhooks are not supported yet (kamrs has no TLS client); send to a relay on this host, e.g. http://127.0.0.1:PORT/…"
                ))
            }
            _ => return Err(format!("`{url}` is not an http:// URL; {usage}")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` names no host; {usage}"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{url}`: put credentials in events.webhook_token_file, not in the URL (it is logged)"
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(format!("`{url}` names no host; {usage}"));
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        // Read from the text: `http::Uri` takes `:80800` and reports no
        // port, which would quietly become 80.
        let text = authority.as_str();
        let after_host = text.rsplit_once(']').map_or(text, |(_, rest)| rest);
        let port = match after_host.rsplit_once(':') {
            None => 80,
            Some((_, p)) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => {
                    return Err(format!(
                        "`{url}`: `{p}` is not a port (1 to 65535); {usage}"
                    ))
                }
            },
        };
        Ok(Target {
            host,
            port,
            authority: authority.as_str().to_owned(),
            path_and_query,
        })
    }
}

/// As logs show it: without the query, which may hold a key.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path_and_query.split_once('?') {
            Some((path, _)) => write!(f, "http://{}{path}?…", self.authority),
            None => write!(f, "http://{}{}", self.authority, self.path_and_query),
        }
    }
}

/// Reads `[events] webhook_token_file`.
pub fn read_token(path: &std::path::Path) -> Result<Arc<str>, String> {
    crate::util::read_token(path, "events.webhook_token_file")
}

/// How the webhook runs (`[events]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: Target,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<Arc<str>>,
    pub batch: usize,
    pub queue: usize,
    pub timeout: Duration,
    /// The NAT mark in `cflags`, for the events' `NAT` view.
    pub nat_bit: u32,
}

/// The events waiting for the receiver.
#[derive(Default)]
struct Queue {
    events: VecDeque<Arc<Event>>,
    /// Events dropped since the last delivered batch: told to the
    /// receiver at the head of the next one.
    lost: u64,
}

struct Shared {
    settings: Settings,
    queue: Mutex<Queue>,
    wake: Notify,
    stats: Arc<CoreStats>,
    fail_log: LogLimiter,
}

impl Shared {
    fn stats(&self) -> &WebhookStats {
        &self.stats.webhook
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        crate::util::lock(&self.queue)
    }
}

/// The running webhook.
pub struct Webhook {
    shared: Arc<Shared>,
}

impl Webhook {
    /// Starts following `table`'s events and sending them. Call inside the
    /// runtime.
    pub fn start(table: &LocationTable, settings: Settings, stats: Arc<CoreStats>) -> Webhook {
        tracing::info!(
            "sending location events to {} (batches of up to {}, queue {})",
            settings.target,
            settings.batch,
            settings.queue
        );
        let shared = Arc::new(Shared {
            settings,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            stats,
            fail_log: LogLimiter::new(),
        });
        tokio::spawn(collect(table.events().listen(None), Arc::clone(&shared)));
        tokio::spawn(send(Arc::clone(&shared)));
        Webhook { shared }
    }

    /// Waits until everything queued was sent, or until `deadline` (at
    /// stop: what is still queued then is lost, and logged).
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        loop {
            let left = self.shared.queue().events.len();
            if left == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    "stopping with {left} location events not delivered to {}",
                    self.shared.settings.target
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Moves the table's events into the queue until the table is gone.
async fn collect(mut listener: Listener, shared: Arc<Shared>) {
    loop {
        match listener.rx.recv().await {
            Ok(event) => push(&shared, event),
            // Only if this task was starved of CPU for a whole ring.
            Err(RecvError::Lagged(n)) => dropped(&shared, &mut shared.queue(), n),
            Err(RecvError::Closed) => return,
        }
    }
}

fn push(shared: &Shared, event: Arc<Event>) {
    let mut q = shared.queue();
    if q.events.len() >= shared.settings.queue {
        q.events.pop_front();
        dropped(shared, &mut q, 1);
    }
    q.events.push_back(event);
    shared
        .stats()
        .queued
        .store(q.events.len() as u64, Ordering::Relaxed);
    drop(q);
    shared.wake.notify_one();
}

fn dropped(shared: &Shared, q: &mut Queue, n: u64) {
    q.lost = q.lost.saturating_add(n);
    shared.stats().dropped.fetch_add(n, Ordering::Relaxed);
}

/// What one batch holds: the events (still in the queue) and the drops
/// told at its head.
struct Batch {
    events: Vec<Arc<Event>>,
    lost: u64,
}

/// Sends what is queued, batch by batch, until the process ends.
async fn send(shared: Arc<Shared>) {
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let batch = loop {
            let notified = shared.wake.notified();
            if let Some(b) = take(&shared) {
                break b;
            }
            notified.await;
        };
        let body = body(&batch, shared.settings.nat_bit);
        let outcome = tokio::time::timeout(
            shared.settings.timeout,
            post(&shared.settings, &mut conn, body),
        )
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {} s (events.webhook_timeout)",
                shared.settings.timeout.as_secs()
            ))
        });
        let n = batch.events.len() as u64;
        match outcome {
            Ok(status) if status.is_success() => {
                delivered(&shared, &batch);
                shared.stats().sent.fetch_add(n, Ordering::Relaxed);
                backoff = Duration::from_secs(1);
            }
            // A redirect is not followed (it would send the events and the
            // token somewhere not configured): as final as a 4xx.
            Ok(status)
                if (status.is_client_error() && !retried(status)) || status.is_redirection() =>
            {
                delivered(&shared, &batch);
                shared.stats().rejected.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(
                    "{} refused {n} location events with {status}; they are not sent again (check the receiver, or events.webhook)",
                    shared.settings.target
                );
            }
            other => {
                let why = match other {
                    Ok(status) => format!("it answered {status}"),
                    Err(e) => e,
                };
                conn = None;
                shared.stats().failures.fetch_add(1, Ordering::Relaxed);
                if let Some(times) = shared.fail_log.event(crate::time::unix_now(), 60) {
                    tracing::warn!(
                        "cannot deliver location events to {} ({times} failed attempts since the last report, latest: {why}); retrying every {} s at most, keeping up to {} events",
                        shared.settings.target,
                        MAX_BACKOFF.as_secs(),
                        shared.settings.queue
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A failure worth retrying the same batch for: the receiver is there
/// but busy, or timed out reading it.
fn retried(status: http::StatusCode) -> bool {
    status == http::StatusCode::REQUEST_TIMEOUT || status == http::StatusCode::TOO_MANY_REQUESTS
}

/// The next batch, left in the queue until it is delivered.
fn take(shared: &Shared) -> Option<Batch> {
    let q = shared.queue();
    if q.events.is_empty() {
        return None;
    }
    Some(Batch {
        events: q
            .events
            .iter()
            .take(shared.settings.batch)
            .cloned()
            .collect(),
        lost: q.lost,
    })
}

/// Removes a delivered (or refused) batch from the queue. Some of its
/// events may have been dropped meanwhile to make room: only those still
/// at the head, up to its last, go.
fn delivered(shared: &Shared, batch: &Batch) {
    let Some(last) = batch.events.last().map(|e| e.seq) else {
        return;
    };
    let mut q = shared.queue();
    while q.events.front().is_some_and(|e| e.seq <= last) {
        q.events.pop_front();
    }
    q.lost = q.lost.saturating_sub(batch.lost);
    shared
        .stats()
        .queued
        .store(q.events.len() as u64, Ordering::Relaxed);
}

/// The JSON array of a batch: each event as `ul.events` renders it (the
/// same text, rendered once for every listener).
fn body(batch: &Batch, nat_bit: u32) -> Bytes {
    let mut out = String::with_capacity(batch.events.len() * 1024 + 64);
    out.push('[');
    if batch.lost > 0 {
        out.push_str(&format!(
            "{{\"Event\":\"{}\",\"Lost\":{}}}",
            common::types::LAGGED,
            batch.lost
        ));
    }
    for e in &batch.events {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(crate::rpc::rendered(e, nat_bit).get());
    }
    out.push(']');
    Bytes::from(out)
}

/// One POST, on the kept connection or a new one: the receiver's status.
async fn post(
    settings: &Settings,
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    body: Bytes,
) -> Result<http::StatusCode, String> {
    let target = &settings.target;
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = Some(connect(target).await?);
    }
    let Some(sender) = conn.as_mut() else {
        return Err("no connection".to_owned());
    };
    sender
        .ready()
        .await
        .map_err(|e| format!("the connection closed: {e}"))?;
    let mut req = http::Request::post(target.path_and_query.as_str())
        .header(http::header::HOST, target.authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, crate::SERVER_NAME);
    if let Some(token) = &settings.token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("the POST failed: {e}"))?;
    let status = resp.status();
    // Read the (small) body so the connection can carry the next POST;
    // one too long, or broken, costs the connection, not the answer.
    if Limited::new(resp.into_body(), MAX_REPLY_BODY)
        .collect()
        .await
        .is_err()
    {
        *conn = None;
    }
    Ok(status)
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", target.host, target.port))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {} failed: {e}", target.authority))?;
    // Drives the connection; ends when the sender is dropped or it fails.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests;
