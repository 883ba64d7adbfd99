//! The log line of each registration outcome: one per binding a REGISTER
//! changed, one per REGISTER refused.
//!
//! ```text
//! INFO kamrs::registrar: registered aor="alice" contact="sip:alice@192.0.2.7:5062" source=192.0.2.7:5062 transport="udp" expires=3600 status=200
//! INFO kamrs::registrar: REGISTER refused aor="alice" contact="sip:alice@192.0.2.7:5062" source=192.0.2.7:5062 transport="udp" status=423 reason="Interval Too Brief"
//! ```
//!
//! Values from the network are `&str` fields, which the formatter quotes
//! and escapes: a Contact cannot end the line or forge a field. Lines are
//! only built when their level is enabled, so a REGISTER at a level that
//! logs nothing pays for nothing but the check; refreshes have their own
//! level (`[log] refreshes`, debug by default).

use smallvec::SmallVec;
use tracing::Level;

use super::error::Reject;
use super::save::Change;
use crate::peer::Peer;
use crate::usrloc::Binding;

/// What a REGISTER did to one binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A binding that was not there.
    Registered,
    /// A binding renewed (same Call-ID, same Contact).
    Refreshed,
    /// The same `+sip.instance`/`reg-id` from a new Contact (a softphone
    /// on a new TCP port): the old binding replaced.
    Replaced,
    /// Removed by the UA (`expires=0`, `Contact: *`).
    Unregistered,
    /// Removed to make room (`max_contacts_policy = "evict-oldest"`).
    Evicted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Registered => "registered",
            Outcome::Refreshed => "refreshed",
            Outcome::Replaced => "replaced",
            Outcome::Unregistered => "unregistered",
            Outcome::Evicted => "evicted",
        }
    }
}

/// One line to log once the REGISTER's answer is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub outcome: Outcome,
    pub level: Level,
    pub contact: Box<str>,
    /// Seconds granted; 0 for a removal.
    pub expires: u64,
}

/// Lines of a REGISTER, usually one.
pub type Lines = SmallVec<[Line; 1]>;

/// What each of `changes` does to `current` (the list the changes' indices
/// refer to): the outcome, the contact and the seconds granted (0 for a
/// removal). `evicted`: how many of the last changes are evictions.
pub fn classify<'a>(
    changes: &'a [Change],
    evicted: usize,
    current: &'a [Binding],
    now: u64,
) -> impl Iterator<Item = (Outcome, &'a str, u64)> + 'a {
    let first_eviction = changes.len().saturating_sub(evicted);
    changes.iter().enumerate().filter_map(move |(i, change)| {
        let (outcome, contact, expires_at) = match change {
            Change::Add(b) => (Outcome::Registered, b.contact(), b.expires_at),
            Change::Refresh { index, refresh } => {
                let old = current.get(*index)?;
                (Outcome::Refreshed, old.contact(), refresh.expires_at)
            }
            Change::Replace { index, binding } => {
                let old = current.get(*index)?;
                let outcome = if old.contact() != binding.contact() {
                    Outcome::Replaced
                } else if old.call_id() != binding.call_id() {
                    // A new Call-ID is a phone that restarted: a new
                    // registration of the same contact.
                    Outcome::Registered
                } else {
                    Outcome::Refreshed
                };
                (outcome, binding.contact(), binding.expires_at)
            }
            Change::Remove { index } => {
                let old = current.get(*index)?;
                let outcome = if i >= first_eviction {
                    Outcome::Evicted
                } else {
                    Outcome::Unregistered
                };
                (outcome, old.contact(), now)
            }
        };
        Some((outcome, contact, expires_at.saturating_sub(now)))
    })
}

/// The lines of `changes` (see [`classify`]) whose level is enabled:
/// refreshes at `refresh_level` (`None`: not logged), the rest at info.
pub fn lines(
    changes: &[Change],
    evicted: usize,
    current: &[Binding],
    now: u64,
    refresh_level: Option<Level>,
) -> Lines {
    let mut out = Lines::new();
    for (outcome, contact, expires) in classify(changes, evicted, current, now) {
        let level = match outcome {
            Outcome::Refreshed => match refresh_level {
                Some(level) => level,
                None => continue,
            },
            _ => Level::INFO,
        };
        if enabled(level) {
            out.push(Line {
                outcome,
                level,
                contact: contact.into(),
                expires,
            });
        }
    }
    out
}

fn enabled(level: Level) -> bool {
    if level == Level::ERROR {
        tracing::enabled!(Level::ERROR)
    } else if level == Level::WARN {
        tracing::enabled!(Level::WARN)
    } else if level == Level::INFO {
        tracing::enabled!(Level::INFO)
    } else if level == Level::DEBUG {
        tracing::enabled!(Level::DEBUG)
    } else {
        tracing::enabled!(Level::TRACE)
    }
}

/// `tracing::event!` at a level known only at run time (the macro wants
/// a constant).
macro_rules! event_at {
    ($level:expr, $($rest:tt)+) => {{
        let level = $level;
        if level == Level::ERROR {
            tracing::event!(Level::ERROR, $($rest)+)
        } else if level == Level::WARN {
            tracing::event!(Level::WARN, $($rest)+)
        } else if level == Level::INFO {
            tracing::event!(Level::INFO, $($rest)+)
        } else if level == Level::DEBUG {
            tracing::event!(Level::DEBUG, $($rest)+)
        } else {
            tracing::event!(Level::TRACE, $($rest)+)
        }
    }};
}

fn transport(peer: &Peer) -> &'static str {
    peer.proto.as_str()
}

/// Logs the lines of an accepted REGISTER for `aor` from `peer`.
pub fn accepted(aor: &str, peer: &Peer, lines: &[Line]) {
    for line in lines {
        event_at!(
            line.level,
            // A `&str` field, not `"{}"`: the formatter copies it instead
            // of running the formatting machinery for one word. First, as
            // fields are printed in their order and the message leads.
            message = line.outcome.as_str(),
            aor,
            contact = &*line.contact,
            source = %peer.remote,
            transport = transport(peer),
            expires = line.expires,
            status = 200
        );
    }
}

/// Logs a REGISTER refused with `reject` instead of a 200; `aor` and
/// `contact` are only asked for when the line is logged. A challenge (401
/// to a REGISTER without credentials, the normal first step of every
/// login) is logged at debug; a wrong password has its own warning line
/// (`auth failure`).
pub fn refused<A: AsRef<str>>(
    aor: impl FnOnce() -> Option<A>,
    contact: impl FnOnce() -> Option<String>,
    peer: &Peer,
    reject: &Reject,
) {
    let (status, reason) = (reject.status(), reject.reason());
    let level = if status == 401 {
        Level::DEBUG
    } else {
        Level::INFO
    };
    if !enabled(level) {
        return;
    }
    let aor = aor();
    let contact = contact();
    event_at!(
        level,
        aor = aor.as_ref().map_or("-", AsRef::as_ref),
        contact = contact.as_deref().unwrap_or("-"),
        source = %peer.remote,
        transport = transport(peer),
        status,
        reason,
        "REGISTER refused"
    );
}

#[cfg(test)]
mod tests;
