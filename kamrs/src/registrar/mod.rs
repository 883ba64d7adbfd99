//! The registrar (RFC 3261 §10.3), Kamailio's protocol half of
//! registration: it decides what a REGISTER does ([`save`]) and answers it
//! ([`reply`]); the location table ([`crate::usrloc`]) only stores.

mod error;
mod methods;
pub mod reply;
pub mod save;
mod settings;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use error::Reject;
pub use settings::{MaxContactsPolicy, MinExpiresMode, Settings};

use crate::route::Peer;
use crate::sip::{HeaderName, Request};
use crate::store::{Commit, StoreError, StoreMode};
use crate::usrloc::{unix_now, LocationTable, Source};

/// Registrar counters, named after Kamailio's statistics.
#[derive(Debug, Default)]
pub struct RegistrarStats {
    /// `registrar:accepted_regs`
    pub accepted: AtomicU64,
    /// `registrar:rejected_regs`
    pub rejected: AtomicU64,
}

/// A reply that may be sent only once `commit` succeeds; `on_failure` is
/// sent instead if it does not.
#[derive(Debug)]
pub struct Pending {
    pub commit: Commit,
    pub on_failure: Vec<u8>,
}

/// Handles REGISTER requests against a location table.
pub struct Registrar {
    settings: Settings,
    table: Arc<LocationTable>,
    stats: RegistrarStats,
    /// Prefix of binding ids: the start time, so ids stay unique across
    /// restarts.
    ruid_prefix: String,
    ruid_counter: AtomicU64,
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
            ruid_prefix: format!("uloc-{:x}-{:x}", unix_now(), std::process::id()),
            ruid_counter: AtomicU64::new(1),
        }
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
    /// commit resolves (DESIGN §7).
    pub fn handle(&self, req: &Request<'_>, peer: &Peer, out: &mut Vec<u8>) -> Option<Pending> {
        let now = unix_now();
        match self.register(req, peer, now, out) {
            Ok(commit) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                let store = self.table.store()?;
                let commit = commit.filter(|_| store.mode() == StoreMode::WriteThrough)?;
                let mut on_failure = Vec::new();
                reply::refuse(&mut on_failure, req, peer, &Reject::StoreUnavailable);
                Some(Pending { commit, on_failure })
            }
            Err(reject) => {
                tracing::debug!(remote = %peer.remote, status = reject.status(), reason = reject.reason(), "REGISTER refused");
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                reply::refuse(out, req, peer, &reject);
                None
            }
        }
    }

    /// Books a write-through REGISTER whose commit failed as refused.
    pub fn commit_failed(&self, err: &StoreError) {
        self.stats.accepted.fetch_sub(1, Ordering::Relaxed);
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::error!("REGISTER answered 500: {err}");
    }

    fn register(
        &self,
        req: &Request<'_>,
        peer: &Peer,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<Option<Commit>, Reject> {
        if let Some(tags) = save::unsupported_requires(req, &self.settings) {
            return Err(Reject::Unsupported(tags));
        }
        let aor = save::aor(req, self.settings.use_domain)?;
        let new_ruid = || -> Box<str> {
            let n = self.ruid_counter.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n:x}", self.ruid_prefix).into_boxed_str()
        };
        let ctx = save::Context {
            now,
            source: Some(Source {
                proto: peer.proto,
                remote: peer.remote,
                local: peer.local,
            }),
            settings: &self.settings,
            new_ruid: &new_ruid,
        };
        let echo_path = self.settings.use_path && supports_path(req);
        let (result, commit) = self.table.update_durable(&aor, now, |bindings| {
            let outcome = save::save(req, &ctx, bindings)?;
            save::apply(bindings, outcome.changes);
            reply::ok(out, req, peer, now, bindings, echo_path);
            Ok(())
        });
        result.map(|()| commit)
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
