//! The registrar (RFC 3261 §10.3), Kamailio's protocol half of
//! registration: it decides what a REGISTER does ([`save`]) and answers it
//! ([`reply`]); the location table ([`crate::usrloc`]) only stores.

pub mod budget;
mod error;
pub mod gruu;
pub mod log;
pub mod lookup;
mod methods;
pub mod nat;
pub mod redirect;
pub mod reply;
pub mod save;
pub mod settings;
mod sips;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub use error::Reject;
pub use gruu::derive_key;
pub use lookup::LookupError;
pub use settings::{MaxContactsPolicy, MinExpiresMode, Settings};

use crate::auth::{Authenticator, Verdict};
use crate::log_limit::LogLimiter;
use crate::peer::Peer;
use crate::sip::{HeaderName, Request};
use crate::timing::{self, Latency};
use crate::usrloc::{unix_now, Binding, Durability, Edit, LocationTable, Ruid, StoreError};

/// User-Agent strings shared between bindings: a deployment has thousands
/// of phones but a handful of models and firmware versions, and each
/// binding keeping its own copy cost ~48 bytes of its ~530. Bounded, so
/// a peer inventing a new User-Agent per REGISTER cannot grow it: past
/// [`UserAgents::CAPACITY`] strings no longer shared are dropped, and if
/// all are still shared new ones are simply not cached.
#[derive(Default)]
pub struct UserAgents(dashmap::DashMap<Box<[u8]>, Arc<str>>);

impl UserAgents {
    pub const CAPACITY: usize = 4096;

    pub fn get(&self, ua: &[u8]) -> Arc<str> {
        if let Some(shared) = self.0.get(ua) {
            return Arc::clone(&shared);
        }
        let fresh: Arc<str> = Arc::from(String::from_utf8_lossy(ua).as_ref());
        if self.0.len() >= Self::CAPACITY {
            // Only this map still holds them: nobody's User-Agent any more.
            self.0.retain(|_, v| Arc::strong_count(v) > 1);
            if self.0.len() >= Self::CAPACITY {
                return fresh;
            }
        }
        Arc::clone(self.0.entry(ua.into()).or_insert(fresh).value())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Registrar counters, named after Kamailio's statistics.
#[derive(Debug)]
pub struct RegistrarStats {
    /// `registrar:accepted_regs`
    pub accepted: AtomicU64,
    /// `registrar:rejected_regs`
    pub rejected: AtomicU64,
    /// REGISTERs over UDP refused because their 200 would not fit the
    /// reply budget (`registrar:reply_too_large`, see [`budget`]).
    pub reply_too_large: AtomicU64,
    /// How long REGISTERs took to answer ([`timing::REGISTER`]).
    pub handling: Latency,
}

impl Default for RegistrarStats {
    fn default() -> Self {
        RegistrarStats {
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            reply_too_large: AtomicU64::new(0),
            handling: Latency::new(&timing::REGISTER),
        }
    }
}

/// The answer to a REGISTER whose change must be durable first
/// (write-through store): a future that waits for the store and yields the
/// bytes to send, the 200 or, if the write failed (and the change was
/// rolled back), a 500. It counts its own outcome; a transport only awaits
/// it and sends what it yields.
pub struct Deferred(Pin<Box<dyn Future<Output = Vec<u8>> + Send>>);

impl Future for Deferred {
    type Output = Vec<u8>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred")
    }
}

/// The registrar's counters and the log limit of store failures, shared
/// with the deferred answers that book their own outcome.
#[derive(Default)]
struct Outcomes {
    stats: RegistrarStats,
    store_failed_log: LogLimiter,
}

impl Outcomes {
    /// Books a REGISTER answered 500 because its change could not be
    /// stored, and logs at most once a second (with the count since), so
    /// a store outage under load does not flood the log.
    fn store_failed(&self, err: &StoreError) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.store_failed_log.event(unix_now(), 1) {
            tracing::error!("REGISTERs answered 500 because the location store failed ({n} since the last report): {err}");
        }
    }
}

/// Handles REGISTER requests against a location table.
pub struct Registrar {
    settings: Settings,
    table: Arc<LocationTable>,
    outcomes: Arc<Outcomes>,
    /// Digest authentication, when `[auth] mode = "digest"`.
    auth: Option<Arc<Authenticator>>,
    user_agents: UserAgents,
    /// Rate limit of the "reply too large" log line.
    too_large_log: LogLimiter,
    /// Keys of temporary GRUUs (RFC 5627, [`gruu`]): from the configured
    /// secret ([`Registrar::with_secret`]) or random per process.
    gruu: gruu::GruuKeys,
    /// Whether REGISTERs with `Supported: gruu` get GRUUs (Kamailio's
    /// `gruu_enabled`, on by default).
    gruu_enabled: bool,
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar::new(Settings::default(), Arc::new(LocationTable::new()))
    }
}

impl Registrar {
    pub fn new(settings: Settings, table: Arc<LocationTable>) -> Self {
        Registrar {
            settings,
            table,
            outcomes: Arc::default(),
            auth: None,
            user_agents: UserAgents::default(),
            too_large_log: LogLimiter::new(),
            gruu: gruu::GruuKeys::random(),
            gruu_enabled: true,
        }
    }

    /// Derives the temporary-GRUU keys from `secret` ([`derive_key`] with
    /// [`gruu::ENC_LABEL`] and [`gruu::NONCE_LABEL`]) instead of a random
    /// one: temporary GRUUs then survive a restart and resolve on every
    /// node configured with the same secret.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        self.gruu = gruu::GruuKeys::from_secret(secret);
        self
    }

    /// Turns GRUUs (RFC 5627) on or off (Kamailio's `gruu_enabled`); off,
    /// a 200 carries no `pub-gruu`/`temp-gruu` and contacts are not
    /// checked for GRUU loops. `lookup` resolves GRUUs either way.
    pub fn with_gruu(mut self, enabled: bool) -> Self {
        self.gruu_enabled = enabled;
        self
    }

    /// The temporary-GRUU keys (for tests and tools that mint or check
    /// GRUUs outside a REGISTER).
    pub fn gruu_keys(&self) -> &gruu::GruuKeys {
        &self.gruu
    }

    /// Requires digest authentication for every REGISTER.
    pub fn with_auth(mut self, auth: Arc<Authenticator>) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn auth(&self) -> Option<&Arc<Authenticator>> {
        self.auth.as_ref()
    }

    /// A binding id unique across restarts and nodes (Kamailio's ruid),
    /// for every binding however it is made (REGISTER or `ul.add`).
    pub fn new_ruid(&self) -> Ruid<'static> {
        Ruid::generate()
    }

    pub fn table(&self) -> &Arc<LocationTable> {
        &self.table
    }

    pub fn stats(&self) -> &RegistrarStats {
        &self.outcomes.stats
    }

    /// Writes the reply to a REGISTER into `out`, updating the table.
    ///
    /// When the change must be durable before it is acknowledged (a
    /// write-through store), `out` is left empty and the answer is the
    /// returned [`Deferred`], which yields the bytes to send once the
    /// store has answered (docs/design.md §7).
    ///
    /// The request's size is not known here, so over UDP the amplification
    /// bound uses its floor; the router calls [`handle_sized`](Self::handle_sized).
    pub fn handle(&self, req: &Request<'_>, peer: &Peer, out: &mut Vec<u8>) -> Option<Deferred> {
        self.handle_sized(req, peer, 0, out)
    }

    /// [`handle`](Self::handle) for a request of `request_len` bytes, which
    /// bounds the size of its reply over UDP ([`budget`]).
    pub fn handle_sized(
        &self,
        req: &Request<'_>,
        peer: &Peer,
        request_len: usize,
        out: &mut Vec<u8>,
    ) -> Option<Deferred> {
        let started = Instant::now();
        let deferred = self.handle_timed(req, peer, request_len, out, started);
        if deferred.is_none() {
            self.outcomes.stats.handling.since(started);
        }
        deferred
    }

    /// [`handle_sized`](Self::handle_sized); a deferred answer records its
    /// own handling time once the store has answered.
    fn handle_timed(
        &self,
        req: &Request<'_>,
        peer: &Peer,
        request_len: usize,
        out: &mut Vec<u8>,
        started: Instant,
    ) -> Option<Deferred> {
        let now = unix_now();
        let limit = (peer.proto == crate::peer::Proto::Udp).then(|| {
            budget::udp_reply_limit(
                self.settings.udp_reply_max_size,
                request_len,
                self.auth.is_some(),
            )
        });
        let aor_text = || save::aor(req, self.settings.use_domain).ok();
        let first_contact = || {
            req.raw
                .headers_named(HeaderName::Contact)
                .next()
                .map(|c| String::from_utf8_lossy(&c[..c.len().min(256)]).into_owned())
        };
        match self.register(req, peer, now, limit, out) {
            Ok((lines, Durability::Done)) => {
                self.outcomes.stats.accepted.fetch_add(1, Ordering::Relaxed);
                if !lines.is_empty() {
                    log::accepted(aor_text().as_deref().unwrap_or("-"), peer, &lines);
                }
                None
            }
            Ok((_, Durability::Refused(err))) => {
                // Write-back answers at once, but a change the store
                // refused outright (queue full) must not be acknowledged.
                self.outcomes.store_failed(&err);
                let reject = Reject::StoreUnavailable;
                log::refused(aor_text, first_contact, peer, &reject);
                reply::refuse(out, req, peer, &reject);
                None
            }
            Ok((lines, Durability::Wait(confirm))) => {
                let ok = std::mem::take(out);
                let mut failed = Vec::new();
                let reject = Reject::StoreUnavailable;
                reply::refuse(&mut failed, req, peer, &reject);
                let outcomes = Arc::clone(&self.outcomes);
                // The lines are logged once the store says what happened;
                // what they need is copied out of the request now.
                let aor = aor_text().unwrap_or_else(|| "-".into()).into_owned();
                let contact = first_contact();
                let peer = *peer;
                Some(Deferred(Box::pin(async move {
                    let outcome = confirm.outcome().await;
                    outcomes.stats.handling.since(started);
                    match outcome {
                        Ok(()) => {
                            outcomes.stats.accepted.fetch_add(1, Ordering::Relaxed);
                            log::accepted(&aor, &peer, &lines);
                            ok
                        }
                        Err(e) => {
                            outcomes.store_failed(&e);
                            log::refused(|| Some(&aor), || contact, &peer, &reject);
                            failed
                        }
                    }
                })))
            }
            Err(reject) => {
                log::refused(aor_text, first_contact, peer, &reject);
                // A challenge is the normal first step of a login, not a
                // refusal (Kamailio counts only what save() refused).
                if !matches!(reject, Reject::Challenge(_)) {
                    self.outcomes.stats.rejected.fetch_add(1, Ordering::Relaxed);
                }
                if reject == Reject::ReplyTooLarge {
                    self.reply_too_large(peer, limit.unwrap_or(0), now);
                }
                reply::refuse(out, req, peer, &reject);
                None
            }
        }
    }

    /// Counts and logs (at most one line per 10 s) a REGISTER refused
    /// because its 200 would not fit the UDP reply budget.
    fn reply_too_large(&self, peer: &Peer, limit: usize, now: u64) {
        self.outcomes
            .stats
            .reply_too_large
            .fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.too_large_log.event(now, 10) {
            tracing::warn!(
                remote = %peer.remote,
                limit,
                "{n} REGISTER(s) over UDP answered 500 since the last report: the 200 listing the AoR's bindings would be over {limit} bytes (the datagram limit `udp_reply_max_size`, or {}x the request when it is not authenticated); nothing was changed. UAs with that many bindings must register over TCP; `max_contacts` bounds bindings per AoR",
                budget::AMPLIFICATION
            );
        }
    }

    fn register(
        &self,
        req: &Request<'_>,
        peer: &Peer,
        now: u64,
        reply_limit: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Result<(log::Lines, Durability), Reject> {
        // The Request-URI names the registrar's domain (RFC 3261 §10.3
        // step 1); one that is not a SIP/SIPS URI is a malformed REGISTER.
        if crate::sip::Uri::parse(req.uri.as_bytes())
            .is_none_or(|u| u.scheme == crate::sip::Scheme::Tel)
        {
            return Err(Reject::Parse(crate::sip::ParseError::BadRequestUri));
        }
        if let Some(tags) = save::unsupported_requires(req, &self.settings) {
            return Err(Reject::Unsupported(tags));
        }
        sips::check(req, peer.proto.is_secure())?;
        let aor = save::aor(req, self.settings.use_domain)?;
        if let Some(auth) = &self.auth {
            self.authenticate(auth, req, peer, &aor, now)?;
        }
        // RFC 5627 §5.1: no contact may be a GRUU of the AoR (a loop).
        let issuer = if self.gruu_enabled {
            gruu::check_contacts(
                req,
                &aor,
                &self.gruu,
                self.settings.use_domain,
                self.settings.default_expires,
            )?;
            gruu::Issuer::for_request(req, &aor, &self.gruu)
        } else {
            None
        };
        let new_ruid = || self.new_ruid();
        let ctx = save::Context {
            now,
            source: Some(*peer),
            settings: &self.settings,
            new_ruid: &new_ruid,
            user_agents: Some(&self.user_agents),
        };
        let echo_path = self.settings.use_path && supports_path(req);
        let (lines, durability) = self.table.update_durable(&aor, now, |bindings| {
            let outcome = save::save(req, &ctx, bindings)?;
            let retransmission = outcome.retransmission;
            self.table
                .admit(&aor, bindings, save::growth(bindings, &outcome.changes))
                .map_err(|full| Reject::TableFull(full.retry_after))?;
            // The head first: its size, plus a bound of the rest, says
            // whether the 200 fits before anything changes.
            crate::sip::reply::begin(out, req, peer, 200, "OK");
            if outcome.outbound && supports_outbound(req) {
                let flow_timer = match (self.settings.flow_timer, peer.proto) {
                    (0, crate::peer::Proto::Udp) => settings::FLOW_TIMER_UDP,
                    (0, _) => settings::FLOW_TIMER_STREAM,
                    (n, _) => n,
                };
                crate::sip::reply::header(out, "Require", "outbound");
                crate::sip::reply::header(out, "Flow-Timer", &flow_timer.to_string());
            }
            if let Some(limit) = reply_limit {
                let rest = budget::ok_rest_bound(bindings, &outcome.changes, echo_path)
                    + issuer
                        .as_ref()
                        .map_or(0, |g| gruu_bound(g, bindings, &outcome.changes));
                if out.len().saturating_add(rest) > limit {
                    return Err(Reject::ReplyTooLarge);
                }
            }
            let lines = log::lines(
                &outcome.changes,
                outcome.evicted,
                bindings,
                now,
                self.settings.refresh_log,
            );
            save::apply(bindings, outcome.changes);
            reply::ok_rest_with(out, now, bindings, echo_path, issuer.as_ref());
            // A retransmission changes nothing, but its 200 must not be
            // sent before the original's change is durable either.
            Ok::<_, Reject>(Edit {
                value: lines,
                repeats: retransmission,
            })
        })?;
        Ok((lines, durability))
    }
}

impl Registrar {
    /// RFC 3261 §22.4 for the AoR in To: its user must be the one who
    /// proves the password.
    fn authenticate(
        &self,
        auth: &Authenticator,
        req: &Request<'_>,
        peer: &Peer,
        aor: &str,
        now: u64,
    ) -> Result<(), Reject> {
        let user = save::aor(req, false)?;
        let domain = req.to.uri.host.to_ascii_lowercase();
        // Asked by the lock-out only while the user scope is locked: does
        // this source hold a live binding of the AoR (a registered phone,
        // also after a restart with a store)?
        let registered = || {
            self.table.lookup(aor, now).is_some_and(|bs| {
                bs.iter().any(|b| {
                    b.source()
                        .is_some_and(|s| s.remote.ip() == peer.remote.ip())
                })
            })
        };
        match auth.check(req, &user, &domain, peer.remote, now, &registered) {
            Verdict::Authorized => Ok(()),
            Verdict::Challenge { stale, failures } => Err(Reject::Challenge(auth.challenges(
                &domain,
                stale,
                failures,
                peer.remote.ip(),
                now,
            ))),
            Verdict::Forbidden(reason) => Err(Reject::Forbidden(reason)),
            Verdict::Malformed(reason) => Err(Reject::BadCredentials(reason)),
        }
    }
}

/// An upper bound of the GRUU parameters the 200 adds once `changes`
/// are applied to `current`: every binding that may be listed counts,
/// removed or replaced ones too (a bound, not the size).
fn gruu_bound(issuer: &gruu::Issuer<'_>, current: &[Binding], changes: &[save::Change]) -> usize {
    let mut total: usize = current.iter().map(|b| issuer.bound(b)).sum();
    for c in changes {
        match c {
            save::Change::Add(b) | save::Change::Replace { binding: b, .. } => {
                total += issuer.bound(b);
            }
            _ => {}
        }
    }
    total
}

/// The UA said `Supported: path` (RFC 3327 §5.3: only then is Path echoed).
fn supports_path(req: &Request<'_>) -> bool {
    save::has_option(req, HeaderName::Supported, b"path")
}

/// The UA supports (or requires) RFC 5626 outbound and the flow ends
/// here: then a 200 for a flow says `Require: outbound` (§6). The flow
/// ends here when the UA sent straight to us (one Via, no Path) or the
/// edge proxy that did says so with `;ob` on its Path URI.
fn supports_outbound(req: &Request<'_>) -> bool {
    let asked = save::has_option(req, HeaderName::Supported, b"outbound")
        || save::has_option(req, HeaderName::Require, b"outbound");
    let first_path = req.raw.headers_named(HeaderName::Path).next();
    let first_hop = match first_path {
        Some(path) => crate::sip::NameAddrList::new(path)
            .next()
            .and_then(Result::ok)
            .is_some_and(|p| p.uri.params.lookup(["ob"])[0].is_some()),
        None => {
            req.raw
                .headers_named(HeaderName::Via)
                .map(|v| v.split(|&b| b == b',').count())
                .sum::<usize>()
                == 1
        }
    };
    asked && first_hop
}

#[cfg(test)]
mod tests;
