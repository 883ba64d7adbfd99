//! The location table's change events: every binding that appears,
//! changes or goes is one [`Event`] with the whole binding and its
//! [`Cause`], for `ul.subscribe` / `kamrsctl ul.watch` and anything else
//! that wants to follow registrations live.
//!
//! Delivery is a broadcast ring of [`CAPACITY`] events: publishing never
//! waits and never grows, whoever listens. A listener that falls more than
//! the ring behind loses the oldest events and is told how many
//! (`RecvError::Lagged`); the subscription ends it there, so a slow reader
//! costs the registrar nothing. With no listener, publishing costs one
//! atomic load: edits skip the snapshot the diff needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::broadcast;

use super::binding::Binding;

/// Events a listener may be behind before it is cut off.
pub const CAPACITY: usize = 4096;

/// Why a binding changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A REGISTER added it (or a restarted phone re-registered it with a
    /// new Call-ID), or `ul.add` did.
    Registered,
    /// A REGISTER renewed it.
    Refreshed,
    /// A REGISTER removed it (`expires=0`, `Contact: *`, or room made by
    /// `evict-oldest`).
    Unregistered,
    /// Its expiry passed.
    Expired,
    /// `ul.rm` / `ul.rm_contact` removed it.
    Removed,
    /// It did not answer keepalives for `ka_timeout`.
    KeepaliveTimeout,
    /// Its TCP connection closed (`handle_lost_tcp`).
    ConnectionLost,
    /// The same `+sip.instance`/`reg-id` registered from another Contact.
    Replaced,
    /// Another node changed it, through the shared store.
    Remote,
    /// A write-through change the store refused was undone.
    RolledBack,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Registered => "registered",
            Cause::Refreshed => "refreshed",
            Cause::Unregistered => "unregistered",
            Cause::Expired => "expired",
            Cause::Removed => "removed",
            Cause::KeepaliveTimeout => "keepalive-timeout",
            Cause::ConnectionLost => "connection-lost",
            Cause::Replaced => "replaced",
            Cause::Remote => "remote",
            Cause::RolledBack => "rolled-back",
        }
    }

    /// Whether the binding is gone after this event.
    pub fn removes(self) -> bool {
        matches!(
            self,
            Cause::Unregistered
                | Cause::Expired
                | Cause::Removed
                | Cause::KeepaliveTimeout
                | Cause::ConnectionLost
        )
    }
}

/// Who is editing the table: decides the cause of what the edit changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Registrar,
    Rpc,
    Keepalive,
    ConnectionLost,
    Remote,
    Rollback,
    /// Bookkeeping that changes nothing a listener sees (forgetting a
    /// closed connection, loading from a store at start-up).
    Quiet,
}

/// One change of one binding.
#[derive(Debug, Clone)]
pub struct Event {
    /// Counts events since start, so a listener sees gaps.
    pub seq: u64,
    /// When, µs since the Unix epoch.
    pub at_us: u64,
    pub cause: Cause,
    pub aor: Arc<str>,
    /// The binding as it is now, or as it was when it went.
    pub binding: Binding,
    /// The binding is no longer in the table after this event. Implied
    /// by the removal causes; a `remote` or `rolled-back` event says it
    /// here, as either may add or remove.
    pub gone: bool,
    /// The event in the listeners' wire format (JSON), made by the first
    /// listener that sends it and reused by the others: ten watchers cost
    /// one rendering, not ten. A `RawValue` so it is written into each
    /// notification as is, never parsed again. The table never reads it.
    pub rendered: OnceLock<Box<serde_json::value::RawValue>>,
}

/// The table's event publisher.
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    seq: AtomicU64,
    interest: Arc<Interest>,
}

/// What the listeners want: every event (`all`), or only those of some
/// AoRs. An edit of an AoR nobody wants builds no event at all, so ten
/// watchers of one phone cost a busy registrar one lookup per REGISTER.
#[derive(Default)]
struct Interest {
    /// Listeners of every event.
    all: AtomicUsize,
    /// AoRs listened to, with how many listen to each.
    aors: RwLock<HashMap<Box<str>, usize>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(CAPACITY).0,
            seq: AtomicU64::new(0),
            interest: Arc::default(),
        }
    }
}

/// A listener: the events it asked for (and possibly others: check
/// [`Listener::wants`]), from the next one on. Dropping it withdraws its
/// interest.
pub struct Listener {
    pub rx: broadcast::Receiver<Arc<Event>>,
    aor: Option<Box<str>>,
    interest: Arc<Interest>,
}

impl Listener {
    /// Whether `e` is one this listener asked for (the ring also carries
    /// other listeners' AoRs).
    pub fn wants(&self, e: &Event) -> bool {
        self.aor.as_deref().is_none_or(|a| a == &*e.aor)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        match &self.aor {
            None => {
                self.interest.all.fetch_sub(1, Ordering::Relaxed);
            }
            Some(aor) => {
                let mut aors = crate::util::lock_write(&self.interest.aors);
                if let Some(n) = aors.get_mut(aor) {
                    *n -= 1;
                    if *n == 0 {
                        aors.remove(aor);
                    }
                }
            }
        }
    }
}

impl Events {
    /// A listener of every event, or of `aor`'s only, from the next event
    /// on.
    pub fn listen(&self, aor: Option<&str>) -> Listener {
        // Interest first, then the receiver: an event published between
        // the two is one the listener was not yet promised.
        match aor {
            None => {
                self.interest.all.fetch_add(1, Ordering::Relaxed);
            }
            Some(a) => {
                *crate::util::lock_write(&self.interest.aors)
                    .entry(Box::from(a))
                    .or_default() += 1;
            }
        }
        Listener {
            rx: self.tx.subscribe(),
            aor: aor.map(Box::from),
            interest: Arc::clone(&self.interest),
        }
    }

    /// Whether anyone listens: edits only build events then.
    pub fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Whether a change of `aor` is an event anyone listens to.
    pub fn wants(&self, aor: &str) -> bool {
        if !self.active() {
            return false;
        }
        if self.interest.all.load(Ordering::Relaxed) > 0 {
            return true;
        }
        crate::util::lock_read(&self.interest.aors).contains_key(aor)
    }

    /// How many listen now.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    pub fn publish(&self, cause: Cause, aor: &Arc<str>, binding: &Binding, gone: bool) {
        if !self.wants(aor) {
            return;
        }
        let event = Event {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at_us: crate::time::unix_now_us(),
            cause,
            aor: Arc::clone(aor),
            binding: binding.clone(),
            gone,
            rendered: OnceLock::new(),
        };
        // No receiver left since the check: nothing to do.
        let _ = self.tx.send(Arc::new(event));
    }

    /// Publishes what an edit by `origin` did: `before` the bindings it
    /// was given (expired ones already gone), `after` what it left.
    pub fn publish_diff(
        &self,
        origin: Origin,
        aor: &Arc<str>,
        before: &[Binding],
        after: &[Binding],
    ) {
        if origin == Origin::Quiet || !self.wants(aor) {
            return;
        }
        for (cause, b, gone) in diff(origin, before, after) {
            self.publish(cause, aor, b, gone);
        }
    }
}

/// What an edit by `origin` did, binding by binding (matched by ruid):
/// the bindings it added or changed with their new values, then those it
/// removed with their last values (`true`: gone).
pub fn diff<'a>(
    origin: Origin,
    before: &'a [Binding],
    after: &'a [Binding],
) -> Vec<(Cause, &'a Binding, bool)> {
    let mut out = Vec::new();
    for b in after {
        let old = before.iter().find(|o| o.ruid() == b.ruid());
        let cause = match (origin, old) {
            (Origin::Remote, _) => Some(Cause::Remote),
            (Origin::Rollback, _) => Some(Cause::RolledBack),
            (_, None) => Some(Cause::Registered),
            (_, Some(o)) if unchanged(o, b) => None,
            (_, Some(o)) if o.contact() != b.contact() => Some(Cause::Replaced),
            (_, Some(o)) if o.call_id() != b.call_id() => Some(Cause::Registered),
            (_, Some(_)) => Some(Cause::Refreshed),
        };
        if let Some(cause) = cause {
            out.push((cause, b, false));
        }
    }
    for b in before {
        if after.iter().any(|a| a.ruid() == b.ruid()) {
            continue;
        }
        let cause = match origin {
            Origin::Registrar => Cause::Unregistered,
            Origin::Rpc => Cause::Removed,
            Origin::Keepalive => Cause::KeepaliveTimeout,
            Origin::ConnectionLost => Cause::ConnectionLost,
            Origin::Remote => Cause::Remote,
            Origin::Rollback => Cause::RolledBack,
            Origin::Quiet => continue,
        };
        out.push((cause, b, true));
    }
    out
}

/// The fields a REGISTER or an RPC changes; runtime fields (keepalive
/// answers) and the connection are not changes a listener is told of.
fn unchanged(a: &Binding, b: &Binding) -> bool {
    a.expires_at == b.expires_at
        && a.cseq == b.cseq
        && a.last_modified == b.last_modified
        && a.q == b.q
        && a.flags == b.flags
        && a.cflags == b.cflags
        && a.contact() == b.contact()
        && a.call_id() == b.call_id()
}

#[cfg(test)]
mod tests;
