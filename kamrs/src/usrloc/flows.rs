//! Which stream connections carry live bindings, and of which AoRs.
//!
//! A phone registered over TCP can only be reached over its connection
//! (it sits behind a NAT, or listens nowhere), so the connection must
//! live as long as its bindings, and when it is lost its bindings are
//! dead (`handle_lost_tcp`); when the last binding on it expires it can be
//! closed (`close_expired_tcp`). The table keeps this index up to date in
//! every edit and expiry; the transport asks it
//! ([`LocationTable::flow_in_use`]) and is told when a connection carries
//! nothing any more ([`LocationTable::on_flow_released`]).

use std::sync::{Arc, OnceLock};

use dashmap::DashMap;

use super::events::Origin;
use smallvec::SmallVec;

use super::table::LocationTable;
use super::{Binding, Source};
use crate::peer::ConnId;

/// The connections of a list of bindings, one entry per binding.
pub(super) type Conns = SmallVec<[ConnId; 2]>;

type Released = Box<dyn Fn(ConnId) + Send + Sync>;

#[derive(Default)]
pub(super) struct FlowIndex {
    /// Connection → (AoR, live bindings of that AoR on it). Usually one
    /// AoR per connection; a PBX trunk may carry many.
    conns: DashMap<ConnId, Vec<(Arc<str>, u32)>>,
    released: OnceLock<Released>,
}

impl FlowIndex {
    pub(super) fn conns_of(bindings: &[Binding]) -> Conns {
        bindings.iter().filter_map(Binding::conn).collect()
    }

    /// Records that the bindings of `aor` on connections went from
    /// `before` to `after` (multisets). `expired`: the change is the expiry
    /// task's, and a connection it leaves without bindings is told so
    /// (`close_expired_tcp` closes on expiry only: a phone that
    /// unregisters may register again on the same connection).
    pub(super) fn change(&self, aor: &Arc<str>, before: &Conns, after: &Conns, expired: bool) {
        if before.is_empty() && after.is_empty() {
            return;
        }
        let mut gone = before.clone();
        let mut came = Conns::new();
        for c in after {
            match gone.iter().position(|g| g == c) {
                Some(i) => {
                    gone.swap_remove(i);
                }
                None => came.push(*c),
            }
        }
        for c in came {
            let mut entry = self.conns.entry(c).or_default();
            match entry.iter_mut().find(|(a, _)| a == aor) {
                Some((_, n)) => *n += 1,
                None => entry.push((Arc::clone(aor), 1)),
            }
        }
        for c in gone {
            let emptied = match self.conns.get_mut(&c) {
                Some(mut entry) => {
                    if let Some(i) = entry.iter().position(|(a, _)| a == aor) {
                        entry[i].1 -= 1;
                        if entry[i].1 == 0 {
                            entry.swap_remove(i);
                        }
                    }
                    entry.is_empty()
                }
                None => false,
            };
            if emptied && self.conns.remove_if(&c, |_, v| v.is_empty()).is_some() && expired {
                if let Some(f) = self.released.get() {
                    f(c);
                }
            }
        }
    }

    fn in_use(&self, c: ConnId) -> bool {
        self.conns.contains_key(&c)
    }

    fn aors(&self, c: ConnId) -> Vec<Arc<str>> {
        self.conns
            .get(&c)
            .map(|e| e.iter().map(|(a, _)| Arc::clone(a)).collect())
            .unwrap_or_default()
    }
}

impl LocationTable {
    /// Whether connection `c` carries a live binding (one not yet purged:
    /// the expiry task removes the expired ones at their deadline).
    pub fn flow_in_use(&self, c: ConnId) -> bool {
        self.flows().in_use(c)
    }

    /// How many stream connections carry live bindings now
    /// (`usrloc:flows`).
    pub fn flows_open(&self) -> usize {
        self.flows().conns.len()
    }

    /// Connection `c` is gone (`handle_lost_tcp`): every binding
    /// registered over it is removed, journaled like any removal. Returns
    /// how many.
    pub fn remove_flow(&self, c: ConnId, now: u64) -> usize {
        let mut removed = 0;
        for aor in self.flows().aors(c) {
            removed += self.update_as(&aor, now, Origin::ConnectionLost, |bindings| {
                let before = bindings.len();
                bindings.retain(|b| {
                    let lost = b.conn() == Some(c);
                    if lost {
                        tracing::info!(
                            aor = &*aor,
                            contact = b.contact(),
                            cause = "connection-lost",
                            "binding removed: its TCP connection closed (handle_lost_tcp)"
                        );
                    }
                    !lost
                });
                before - bindings.len()
            });
        }
        removed
    }

    /// The UA proved connection `c` alive itself (a double-CRLF ping,
    /// RFC 5626 §3.5.1): its bindings' `Last-Keepalive` becomes `now_us`,
    /// as a keepalive answer would make it. Runtime state only: nothing is
    /// journaled, nobody is told. Returns how many bindings.
    pub fn flow_alive(&self, c: ConnId, now_us: u64) -> usize {
        let mut touched = 0;
        for aor in self.flows().aors(c) {
            if let Some(mut rec) = self.record_mut(&aor) {
                for b in rec
                    .bindings_mut()
                    .iter_mut()
                    .filter(|b| b.conn() == Some(c))
                {
                    b.last_keepalive_us = now_us;
                    touched += 1;
                }
            }
        }
        touched
    }

    /// Connection `c` is gone and its bindings stay (`handle_lost_tcp`
    /// off): they forget it, so `usrloc:flows` and `Tcpconn-Id` only name
    /// open connections. Not journaled: no store holds connections.
    pub fn forget_flow(&self, c: ConnId, now: u64) {
        for aor in self.flows().aors(c) {
            self.edit_unjournaled(&aor, now, Origin::Quiet, |bindings| {
                for b in bindings.iter_mut().filter(|b| b.conn() == Some(c)) {
                    b.set_source(b.source().map(|s| Source { conn: None, ..s }));
                }
            });
        }
    }

    /// `f` is called with a connection whose last binding expired (the
    /// expiry task's purge), from inside the table's edit: it must only
    /// hand the news on (`close_expired_tcp`), never call back into the
    /// table. Set once, at start.
    pub fn on_flow_released(&self, f: impl Fn(ConnId) + Send + Sync + 'static) {
        let _ = self.flows().released.set(Box::new(f));
    }
}

#[cfg(test)]
mod tests;
