//! The registrar (RFC 3261 §10.3), Kamailio's protocol half of
//! registration: it decides what a REGISTER does ([`save`]) and answers it
//! ([`reply`]); the location table ([`crate::usrloc`]) only stores.

pub mod budget;
mod error;
mod methods;
pub mod reply;
pub mod save;
pub mod settings;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use error::Reject;
pub use settings::{MaxContactsPolicy, MinExpiresMode, Settings};

use crate::auth::{Authenticator, Verdict};
use crate::peer::Peer;
use crate::sip::{HeaderName, Request};
use crate::store::{Commit, StoreError, StoreMode};
use crate::usrloc::{unix_now, LocationTable, Ruid, Undo};

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
#[derive(Debug, Default)]
pub struct RegistrarStats {
    /// `registrar:accepted_regs`
    pub accepted: AtomicU64,
    /// `registrar:rejected_regs`
    pub rejected: AtomicU64,
    /// REGISTERs over UDP refused because their 200 would not fit the
    /// reply budget (`registrar:reply_too_large`, see [`budget`]).
    pub reply_too_large: AtomicU64,
}

/// A reply that may be sent only once `commit` succeeds; `on_failure` is
/// sent instead if it does not, after
/// [`commit_failed`](Registrar::commit_failed) was given `undo` to roll the
/// change back (a 500 in write-through mode means nothing changed).
#[derive(Debug)]
pub struct Pending {
    pub commit: Commit,
    pub on_failure: Vec<u8>,
    /// What rolls the change back; `None` when there is nothing to undo
    /// (a retransmission only writes the AoR again).
    pub undo: Option<Undo>,
}

/// Handles REGISTER requests against a location table.
pub struct Registrar {
    settings: Settings,
    table: Arc<LocationTable>,
    stats: RegistrarStats,
    /// Prefix of binding ids: the start time, so ids stay unique across
    /// restarts.
    /// Digest authentication, when `[auth] mode = "digest"`.
    auth: Option<Arc<Authenticator>>,
    user_agents: UserAgents,
    /// Store failures since the last log line, and when that was.
    store_failures: AtomicU64,
    store_failure_logged: AtomicU64,
    /// Rate limit of the "reply too large" log line.
    too_large_log: crate::log_limit::LogLimiter,
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
            stats: RegistrarStats::default(),
            auth: None,
            user_agents: UserAgents::default(),
            store_failures: AtomicU64::new(0),
            store_failure_logged: AtomicU64::new(0),
            too_large_log: crate::log_limit::LogLimiter::new(),
        }
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
        &self.stats
    }

    /// Writes the reply to a REGISTER into `out`, updating the table.
    ///
    /// In write-through store mode a REGISTER that changed something also
    /// returns the store's [`Commit`] and the 500 to send instead of `out`
    /// if that commit fails: the caller must not send `out` before the
    /// commit resolves (docs/design.md §7).
    ///
    /// The request's size is not known here, so over UDP the amplification
    /// bound uses its floor; the router calls [`handle_sized`](Self::handle_sized).
    pub fn handle(&self, req: &Request<'_>, peer: &Peer, out: &mut Vec<u8>) -> Option<Pending> {
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
    ) -> Option<Pending> {
        let now = unix_now();
        let limit = (peer.proto == crate::peer::Proto::Udp).then(|| {
            budget::udp_reply_limit(
                self.settings.udp_reply_max_size,
                request_len,
                self.auth.is_some(),
            )
        });
        match self.register(req, peer, now, limit, out) {
            Ok((commit, undo)) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                let (Some(store), Some(commit)) = (self.table.store(), commit) else {
                    return None;
                };
                if store.mode() == StoreMode::WriteBack {
                    // Write-back answers at once, but a change the store
                    // refused outright (queue full) must not be acknowledged.
                    if let Some(err) = commit.refused() {
                        self.commit_failed(err, None);
                        reply::refuse(out, req, peer, &Reject::StoreUnavailable);
                    }
                    return None;
                }
                let mut on_failure = Vec::new();
                reply::refuse(&mut on_failure, req, peer, &Reject::StoreUnavailable);
                Some(Pending {
                    commit,
                    on_failure,
                    undo,
                })
            }
            Err(reject) => {
                tracing::debug!(remote = %peer.remote, status = reject.status(), reason = reject.reason(), "REGISTER refused");
                // A challenge is the normal first step of a login, not a
                // refusal (Kamailio counts only what save() refused).
                if !matches!(reject, Reject::Challenge(_)) {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                }
                if reject == Reject::ReplyTooLarge {
                    self.reply_too_large(peer, limit.unwrap_or(0), now);
                }
                reply::refuse(out, req, peer, &reject);
                None
            }
        }
    }

    /// Books a write-through REGISTER whose commit failed as refused, and
    /// rolls its change back with `undo` (see [`LocationTable::undo`]), so
    /// that the 500 sent instead of the 200 means nothing changed. Logs at
    /// most once a second (with the count since), so a store outage under
    /// load does not flood the log.
    pub fn commit_failed(&self, err: &StoreError, undo: Option<Undo>) {
        if let Some(undo) = undo {
            self.table.undo(undo, unix_now());
        }
        self.stats.accepted.fetch_sub(1, Ordering::Relaxed);
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let failed = self.store_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let now = unix_now();
        let last = self.store_failure_logged.load(Ordering::Relaxed);
        if now > last
            && self
                .store_failure_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.store_failures.store(0, Ordering::Relaxed);
            tracing::error!("REGISTERs answered 500 because the location store failed ({failed} since the last report): {err}");
        }
    }

    /// Counts and logs (at most one line per 10 s) a REGISTER refused
    /// because its 200 would not fit the UDP reply budget.
    fn reply_too_large(&self, peer: &Peer, limit: usize, now: u64) {
        self.stats.reply_too_large.fetch_add(1, Ordering::Relaxed);
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
    ) -> Result<(Option<Commit>, Option<Undo>), Reject> {
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
        let aor = save::aor(req, self.settings.use_domain)?;
        if let Some(auth) = &self.auth {
            self.authenticate(auth, req, peer, &aor, now)?;
        }
        let new_ruid = || self.new_ruid();
        let ctx = save::Context {
            now,
            source: Some(*peer),
            settings: &self.settings,
            new_ruid: &new_ruid,
            user_agents: Some(&self.user_agents),
        };
        let echo_path = self.settings.use_path && supports_path(req);
        let (result, commit, undo) = self.table.update_undoable(&aor, now, |bindings| {
            let outcome = save::save(req, &ctx, bindings)?;
            let retransmission = outcome.retransmission;
            self.table
                .admit(&aor, bindings, save::growth(bindings, &outcome.changes))
                .map_err(|full| Reject::TableFull(full.retry_after))?;
            // The head first: its size, plus a bound of the rest, says
            // whether the 200 fits before anything changes.
            crate::sip::reply::begin(out, req, peer, 200, "OK");
            if let Some(limit) = reply_limit {
                let rest = budget::ok_rest_bound(bindings, &outcome.changes, echo_path);
                if out.len().saturating_add(rest) > limit {
                    return Err(Reject::ReplyTooLarge);
                }
            }
            save::apply(bindings, outcome.changes);
            reply::ok_rest(out, now, bindings, echo_path);
            Ok::<bool, Reject>(retransmission)
        });
        let retransmission = result?;
        // A retransmission changes nothing, but its 200 must not be sent
        // before the original's change is durable either: if that write is
        // still queued (or failed), writing the AoR again and waiting for
        // that gives the retransmission the same guarantee.
        if retransmission && commit.is_none() {
            let write_through = self
                .table
                .store()
                .is_some_and(|s| s.mode() == StoreMode::WriteThrough);
            if write_through {
                return Ok((self.table.persist(&aor), None));
            }
        }
        Ok((commit, undo))
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

/// The UA said `Supported: path` (RFC 3327 §5.3: only then is Path echoed).
fn supports_path(req: &Request<'_>) -> bool {
    req.raw.headers_named(HeaderName::Supported).any(|v| {
        v.split(|&b| b == b',')
            .any(|t| crate::sip::trim_ws(t).eq_ignore_ascii_case(b"path"))
    })
}

#[cfg(test)]
mod tests;
