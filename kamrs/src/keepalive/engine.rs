//! The keepalive task and the handling of its replies.

use std::collections::hash_map::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::options::{self, Ping};
use super::schedule::{self, Round, TICK};
use super::settings::{Method, Settings};
use super::token::{Tokens, Who};
use crate::datagram::SendBatch;
use crate::flow::{self, Flows, Outbox, Target};
use crate::peer::{Peer, Proto};
use crate::time::{unix_now, unix_now_us};
use crate::timing::{self, Latency};
use crate::usrloc::{Binding, LocationTable, Origin, Ruid};

/// Pings sent between two yields of the runtime thread: a round without
/// `ka_randomize` sends them all at once and must not hold a thread for
/// the whole burst.
const YIELD_EVERY: usize = 256;

/// A ping's buffer: an OPTIONS to a typical Contact with its Call-ID
/// fits without growing.
const PING_CAPACITY: usize = 640;

/// Datagrams per `sendmmsg`.
const SEND_BATCH: usize = 64;

/// Keepalive counters (`usrloc:ka_*` statistics).
#[derive(Debug)]
pub struct KaStats {
    /// Pings handed to a socket or connection.
    pub sent: AtomicU64,
    /// Replies that proved a binding's flow alive.
    pub answered: AtomicU64,
    /// Bindings removed for not answering within `ka_timeout`.
    pub timed_out: AtomicU64,
    /// Pings not sent: no way to the binding (closed connection, a host
    /// name, no socket), or the socket refused.
    pub unsent: AtomicU64,
    /// Replies that looked like ours and changed nothing: forged, too old,
    /// a replay, or from somewhere else than the binding's flow.
    pub ignored: AtomicU64,
    /// Round trips of answered pings ([`timing::KEEPALIVE_ROUNDTRIP`]).
    pub roundtrip: Latency,
}

impl Default for KaStats {
    fn default() -> Self {
        KaStats {
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            roundtrip: Latency::new(&timing::KEEPALIVE_ROUNDTRIP),
        }
    }
}

/// The keepalive: one task pinging, and [`on_reply`](Self::on_reply)
/// called by the router for each reply to a ping.
pub struct Keepalive {
    settings: Settings,
    tokens: Tokens,
    table: Arc<LocationTable>,
    flows: Arc<Flows>,
    hasher: RandomState,
    /// Unix µs this engine started: a binding loaded from a store is given
    /// `ka_timeout` from here, not from its last REGISTER before a restart.
    started_us: u64,
    /// Makes the Via branch and From tag of each ping unique.
    counter: AtomicU64,
    pub stats: KaStats,
}

impl Keepalive {
    /// `secret` keys the ping tokens; a fresh random one per process is
    /// right (replies to an earlier process's pings are not ours).
    pub fn new(
        settings: Settings,
        secret: [u8; 32],
        table: Arc<LocationTable>,
        flows: Arc<Flows>,
    ) -> Keepalive {
        Keepalive {
            settings,
            tokens: Tokens::new(secret),
            table,
            flows,
            hasher: RandomState::new(),
            started_us: unix_now_us(),
            counter: AtomicU64::new(1),
            stats: KaStats::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Pings until the runtime stops, one round per `ka_interval`.
    pub async fn run(self: Arc<Self>) {
        let interval = Duration::from_secs(u64::from(self.settings.interval.max(1)));
        let ticks = schedule::ticks(self.settings.interval);
        let mut round_start = tokio::time::Instant::now();
        let mut outbox = Outbox::default();
        let mut tx = SendBatch::new(SEND_BATCH).nonblocking();
        loop {
            let mut round = Round::plan(
                self.table.aors(),
                ticks,
                self.settings.randomize,
                &self.hasher,
            );
            let mut from = 0;
            while let Some((tick, due)) = round.next_due(from) {
                from = tick + 1;
                let at = round_start + TICK * u32::try_from(tick).unwrap_or(u32::MAX);
                tokio::time::sleep_until(at).await;
                // One clock reading per burst: its pings leave within
                // well under a millisecond of it.
                let (mut now, mut now_us) = (unix_now(), unix_now_us());
                for aor in due {
                    self.gather(&aor, now, now_us, &mut outbox);
                    if outbox.len() >= YIELD_EVERY {
                        self.flush(&mut outbox, &mut tx);
                        tokio::task::yield_now().await;
                        (now, now_us) = (unix_now(), unix_now_us());
                    }
                }
                self.flush(&mut outbox, &mut tx);
            }
            round_start += interval;
            let now = tokio::time::Instant::now();
            if round_start < now {
                // Fell a whole round behind (a suspended host): start
                // afresh rather than firing the missed rounds at once.
                round_start = now;
            } else {
                tokio::time::sleep_until(round_start).await;
            }
        }
    }

    /// Pings the selected bindings of `aor` now; removes those past
    /// `ka_timeout`. Returns how many pings it tried.
    pub fn ping_aor(&self, aor: &str, now: u64, now_us: u64) -> usize {
        let mut outbox = Outbox::default();
        let tried = self.gather(aor, now, now_us, &mut outbox);
        self.flush(&mut outbox, &mut SendBatch::new(SEND_BATCH).nonblocking());
        tried
    }

    /// Sends what [`gather`](Self::gather) put in `outbox`.
    fn flush(&self, outbox: &mut Outbox, tx: &mut SendBatch) {
        if outbox.is_empty() {
            return;
        }
        let tried = outbox.len();
        let sent = self.flows.send_all(outbox, tx);
        self.stats.sent.fetch_add(sent as u64, Ordering::Relaxed);
        self.stats
            .unsent
            .fetch_add((tried - sent) as u64, Ordering::Relaxed);
    }

    /// Adds the pings of the selected bindings of `aor` to `outbox`;
    /// removes those past `ka_timeout`. Returns how many pings it added.
    fn gather(&self, aor: &str, now: u64, now_us: u64, outbox: &mut Outbox) -> usize {
        let timeout_us = u64::from(self.settings.timeout).saturating_mul(1_000_000);
        let mut dead: SmallVec<[Ruid<'static>; 1]> = SmallVec::new();
        let mut unsent = 0u64;
        let before = outbox.len();
        // Built under the AoR's read lock, sent later: a REGISTER for it
        // must not wait for our syscalls.
        self.table.with_bindings(aor, |bindings| {
            for b in bindings
                .iter()
                .filter(|b| b.is_live(now) && self.settings.selects(b))
            {
                let target = flow::plan(b, &*self.flows);
                let crlf = self.crlf(&target);
                if timeout_us > 0 && !crlf && self.silent_for(b, now_us) > timeout_us {
                    dead.push(b.ruid().into_owned());
                    continue;
                }
                match target.map(|t| (t, self.ping_bytes(aor, b, &t, crlf, now_us))) {
                    Ok((t, Some(bytes))) => outbox.push(t, bytes),
                    Ok((_, None)) | Err(_) => unsent += 1,
                }
            }
        });
        if unsent > 0 {
            self.stats.unsent.fetch_add(unsent, Ordering::Relaxed);
        }
        if !dead.is_empty() {
            self.remove_silent(aor, &dead, now, now_us, timeout_us);
        }
        outbox.len() - before
    }

    /// Whether the ping over `target` is a CRLF (`ka_method = "CRLF"` on
    /// a stream connection).
    fn crlf(&self, target: &Result<Target, flow::Unreachable>) -> bool {
        self.settings.method == Method::Crlf && matches!(target, Ok(Target::Conn { .. }))
    }

    /// µs since `b` last proved its flow alive (or since this engine
    /// started, for a binding older than that).
    fn silent_for(&self, b: &Binding, now_us: u64) -> u64 {
        now_us.saturating_sub(b.alive_since_us().max(self.started_us))
    }

    /// The ping's bytes; `None` when the binding's values cannot be put
    /// in a request (they came from a store or `ul.add`).
    fn ping_bytes(
        &self,
        aor: &str,
        b: &Binding,
        target: &Target,
        crlf: bool,
        now_us: u64,
    ) -> Option<Vec<u8>> {
        if crlf {
            return Some(b"\r\n\r\n".to_vec());
        }
        let (proto, local) = match *target {
            Target::Conn { .. } => {
                let source = b.source()?;
                (source.proto, source.local)
            }
            Target::Datagram { local, .. } => (Proto::Udp, local),
        };
        // Both on the stack: only the request itself is allocated.
        let mut call_id: SmallVec<[u8; 256]> = SmallVec::new();
        self.tokens
            .write_call_id(&mut call_id, &Who::new(aor, &b.ruid()), now_us);
        let mut unique: SmallVec<[u8; 16]> = SmallVec::new();
        crate::util::push_hex_u64(&mut unique, self.counter.fetch_add(1, Ordering::Relaxed));
        let mut out = Vec::with_capacity(PING_CAPACITY);
        options::write(
            &mut out,
            &Ping {
                contact: b.contact(),
                path: b.path(),
                proto,
                local,
                from: &self.settings.from,
                call_id: std::str::from_utf8(&call_id).ok()?,
                unique: std::str::from_utf8(&unique).ok()?,
            },
        )
        .ok()?;
        Some(out)
    }

    /// Removes the bindings `dead` of `aor` that are still silent, each
    /// logged with its cause.
    fn remove_silent(
        &self,
        aor: &str,
        dead: &[Ruid<'static>],
        now: u64,
        now_us: u64,
        timeout_us: u64,
    ) {
        let removed: Vec<String> = self
            .table
            .update_as(aor, now, Origin::Keepalive, |bindings| {
                let mut gone = Vec::new();
                bindings.retain(|b| {
                    let silent =
                        dead.contains(&b.ruid()) && self.silent_for(b, now_us) > timeout_us;
                    if silent {
                        gone.push(b.contact().to_owned());
                    }
                    !silent
                });
                gone
            });
        for contact in &removed {
            tracing::info!(
                aor,
                contact = contact.as_str(),
                cause = "keepalive-timeout",
                "binding removed: no answer to keepalives for ka_timeout = {} s",
                self.settings.timeout
            );
        }
        self.stats
            .timed_out
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
    }

    /// A reply whose Call-ID is `call_id` arrived from `peer`. Returns
    /// whether it proved a binding alive; anything else is counted as
    /// ignored and changes nothing.
    pub fn on_reply(&self, call_id: &str, peer: &Peer, now_us: u64) -> bool {
        let window = u64::from(
            self.settings
                .timeout
                .max(self.settings.interval.saturating_mul(2)),
        );
        let max_age_us = window.saturating_mul(1_000_000);
        let mut roundtrip_us = 0;
        let proved = self
            .tokens
            .verify(call_id, now_us, max_age_us)
            .and_then(|ping| {
                let (aor, ruid) = ping.binding();
                self.table.touch(aor, ruid, |b| {
                    // Only the flow the ping went out on can answer it, and
                    // each ping only once.
                    let from_flow = match flow::plan(b, &*self.flows) {
                        Ok(Target::Conn { conn, .. }) => peer.conn == Some(conn),
                        Ok(Target::Datagram { local, dest }) => {
                            peer.proto == Proto::Udp && peer.remote == dest && peer.local == local
                        }
                        Err(_) => false,
                    };
                    if !from_flow || ping.sent_us <= b.last_keepalive_us {
                        return false;
                    }
                    b.last_keepalive_us = now_us;
                    roundtrip_us = now_us.saturating_sub(ping.sent_us);
                    b.ka_roundtrip_us = u32::try_from(roundtrip_us).unwrap_or(u32::MAX);
                    true
                })
            })
            .unwrap_or(false);
        let counter = if proved {
            self.stats.roundtrip.observe_us(roundtrip_us);
            &self.stats.answered
        } else {
            &self.stats.ignored
        };
        counter.fetch_add(1, Ordering::Relaxed);
        proved
    }
}

#[cfg(test)]
mod tests;
