//! The transaction layer of a stateful proxy (RFC 3261 §16 over §17): one
//! [`Txn`] is a server transaction (the request we received) and its
//! client transactions (one [`Branch`] per binding it was forked to).
//!
//! Sans-IO: every entry point takes `now` and returns the messages to send
//! as [`Effects`]; the proxy sends them after releasing the lock, and one
//! timer task calls [`Transactions::on_timer`] at [`Transactions::next_deadline`]
//! (no per-transaction tasks, no scanning). Retransmission timers (A, E, G)
//! run over UDP only; timeouts (B, F, C) everywhere; a finished transaction
//! lingers (D, H, I, J, K, RFC 6026's Accepted) to absorb retransmissions.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::forward;
use super::settings::Settings;
use super::stats::TmStats;
use super::token::Hop;
use crate::flow::Target;
use crate::peer::{Peer, Proto};
use crate::sip::{self, FullResponse, Limits};

pub type TxId = u64;

/// What to send once the lock is released.
#[derive(Debug, Default)]
pub struct Effects {
    pub sends: Vec<(Target, Vec<u8>)>,
}

impl Effects {
    fn send(&mut self, target: Target, bytes: Vec<u8>) {
        self.sends.push((target, bytes));
    }
}

/// Identifies a server transaction (RFC 3261 §17.2.3): the top Via's
/// branch and sent-by, and the method (ACK and CANCEL look up INVITE's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub branch: String,
    pub sent_by: String,
    pub method: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Proceeding,
    /// A final non-2xx went upstream; waiting for the ACK (INVITE) or
    /// absorbing retransmissions (others).
    Completed,
    Confirmed,
    /// A 2xx went upstream (RFC 6026): more 2xx are relayed as they come.
    Accepted,
    Terminated,
}

/// The request we received and answer upstream.
pub struct Server {
    pub invite: bool,
    pub key: ServerKey,
    pub peer: Peer,
    /// Where responses go (the connection, or the Via's UDP address).
    pub upstream: Target,
    /// The request as received, to build our own responses to it.
    pub request: Vec<u8>,
    pub state: ServerState,
    /// Sent again when the request is retransmitted (and timer G).
    pub last_response: Option<Vec<u8>>,
    pub cancelled: bool,
    best: Option<Best>,
    retrans_at: Option<Instant>,
    interval: Duration,
    end_at: Option<Instant>,
    /// The final response class, counted once.
    answered: bool,
}

impl Server {
    pub fn new(
        invite: bool,
        key: ServerKey,
        peer: Peer,
        upstream: Target,
        request: Vec<u8>,
    ) -> Self {
        Server {
            invite,
            key,
            peer,
            upstream,
            request,
            state: ServerState::Proceeding,
            last_response: None,
            cancelled: false,
            best: None,
            retrans_at: None,
            interval: Duration::ZERO,
            end_at: None,
            answered: false,
        }
    }

    fn reliable(&self) -> bool {
        self.peer.proto != Proto::Udp
    }
}

/// The best final response so far (RFC 3261 §16.7 step 6).
struct Best {
    status: u16,
    /// Ready to send upstream; `None`: generate it ourselves.
    bytes: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchState {
    /// Sent, nothing back yet (Calling / Trying).
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cancel {
    None,
    /// Asked for before the branch answered provisionally (RFC 3261 §9.1:
    /// a CANCEL waits for that).
    Wanted,
    Sent {
        bytes: Vec<u8>,
        retrans_at: Option<Instant>,
        interval: Duration,
        give_up: Instant,
    },
    Done,
}

/// One client transaction: the copy of the request sent to one binding.
pub struct Branch {
    /// Our Via branch parameter.
    pub id: String,
    pub hop: Hop,
    /// The bytes sent, for retransmissions, the CANCEL and the ACK.
    pub request: Vec<u8>,
    pub state: BranchState,
    retrans_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
    cancel: Cancel,
    /// Timer C fired: whatever final comes counts as 408.
    timed_out: bool,
}

impl Branch {
    pub fn new(id: String, hop: Hop, request: Vec<u8>) -> Branch {
        Branch {
            id,
            hop,
            request,
            state: BranchState::Calling,
            retrans_at: None,
            interval: Duration::ZERO,
            timeout_at: None,
            end_at: None,
            cancel: Cancel::None,
            timed_out: false,
        }
    }

    fn reliable(&self) -> bool {
        self.hop.proto != Proto::Udp
    }

    fn pending(&self) -> bool {
        matches!(self.state, BranchState::Calling | BranchState::Proceeding)
    }
}

pub struct Txn {
    pub server: Server,
    pub branches: SmallVec<[Branch; 2]>,
    /// Serial forking: the q groups not tried yet, best first.
    later: VecDeque<SmallVec<[Branch; 2]>>,
    created: Instant,
    /// The earliest deadline this transaction is scheduled for.
    scheduled: Option<Instant>,
    /// Bytes it holds, as counted in [`Transactions::bytes`].
    held: usize,
}

/// Every open transaction, with its indexes and timers.
pub struct Transactions {
    txns: HashMap<TxId, Txn>,
    by_key: HashMap<ServerKey, TxId>,
    timers: BTreeSet<(Instant, TxId)>,
    next_id: TxId,
    /// Message bytes all transactions hold (requests, and as much again
    /// for the CANCELs, ACKs and responses built from them).
    bytes: usize,
    pub settings: Settings,
}

/// Our branch parameters: `z9hG4bK-kr<loop>-<txid>-<index>-<nonce>`. The
/// transaction and branch are read back from it; the nonce makes a forged
/// response naming a real transaction unguessable.
pub const BRANCH_PREFIX: &str = "z9hG4bK-kr";

pub fn branch_id(loop_hash: u32, id: TxId, index: usize, nonce: u64) -> String {
    format!("{BRANCH_PREFIX}{loop_hash:08x}-{id:x}-{index}-{nonce:016x}")
}

/// The loop hash, transaction and branch index a branch parameter of ours
/// names.
pub fn parse_branch(b: &str) -> Option<(u32, TxId, usize)> {
    let rest = b.strip_prefix(BRANCH_PREFIX)?;
    let mut parts = rest.split('-');
    let loop_hash = u32::from_str_radix(parts.next()?, 16).ok()?;
    let id = TxId::from_str_radix(parts.next()?, 16).ok()?;
    let index = parts.next()?.parse().ok()?;
    Some((loop_hash, id, index))
}

impl Transactions {
    pub fn new(settings: Settings) -> Self {
        Transactions {
            txns: HashMap::new(),
            by_key: HashMap::new(),
            timers: BTreeSet::new(),
            next_id: 1,
            bytes: 0,
            settings,
        }
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// What [`held`] counts for all open transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn next_id(&mut self) -> TxId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn find(&self, key: &ServerKey) -> Option<TxId> {
        self.by_key.get(key).copied()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Opens transaction `id` and sends each branch's request.
    pub fn begin(
        &mut self,
        id: TxId,
        server: Server,
        groups: Vec<SmallVec<[Branch; 2]>>,
        now: Instant,
        stats: &TmStats,
    ) -> Effects {
        let mut fx = Effects::default();
        let held = held(
            server.request.len(),
            groups.iter().flatten().map(|b| b.request.len()),
        );
        let mut groups: VecDeque<_> = groups.into();
        let mut txn = Txn {
            server,
            branches: SmallVec::new(),
            later: VecDeque::new(),
            created: now,
            scheduled: None,
            held,
        };
        if let Some(first) = groups.pop_front() {
            start_group(&mut txn, first, &self.settings, now, &mut fx, stats);
        }
        txn.later = groups;
        self.bytes += held;
        TmStats::inc(&stats.created);
        TmStats::inc(&stats.current);
        self.by_key.insert(txn.server.key.clone(), id);
        self.txns.insert(id, txn);
        self.settle(id, now, &mut fx, stats);
        fx
    }

    /// A branch whose request could not be sent (its connection closed or
    /// its queue full): it ends at once, as unreachable.
    pub fn send_failed(
        &mut self,
        id: TxId,
        index: usize,
        now: Instant,
        stats: &TmStats,
    ) -> Effects {
        let mut fx = Effects::default();
        if let Some(txn) = self.txns.get_mut(&id) {
            if let Some(b) = txn.branches.get_mut(index) {
                if b.pending() {
                    b.state = BranchState::Terminated;
                    offer(&mut txn.server, 480, None);
                }
            }
        }
        self.settle(id, now, &mut fx, stats);
        fx
    }

    /// The request of a known server transaction came again: the last
    /// response goes again (RFC 3261 §17.2.1, §17.2.2).
    pub fn retransmitted(&mut self, id: TxId) -> Effects {
        let mut fx = Effects::default();
        if let Some(txn) = self.txns.get(&id) {
            if let Some(r) = &txn.server.last_response {
                fx.send(txn.server.upstream, r.clone());
            }
        }
        fx
    }

    /// An ACK matching INVITE transaction `id`: a final non-2xx is
    /// acknowledged (absorbed hop by hop). Returns whether it was ours.
    pub fn ack(&mut self, id: TxId, now: Instant) -> bool {
        let t4 = self.settings.t4;
        let Some(txn) = self.txns.get_mut(&id) else {
            return false;
        };
        let s = &mut txn.server;
        match s.state {
            ServerState::Completed => {
                s.state = ServerState::Confirmed;
                s.retrans_at = None;
                s.end_at = Some(if s.reliable() { now } else { now + t4 });
                self.schedule(id, now);
                true
            }
            ServerState::Confirmed => true,
            _ => false,
        }
    }

    /// The caller cancelled INVITE transaction `id` (RFC 3261 §16.10):
    /// every pending branch is cancelled. Returns whether it was pending.
    pub fn cancel(&mut self, id: TxId, now: Instant, stats: &TmStats) -> (bool, Effects) {
        let mut fx = Effects::default();
        let Some(txn) = self.txns.get_mut(&id) else {
            return (false, fx);
        };
        let pending = txn.server.state == ServerState::Proceeding;
        if pending && !txn.server.cancelled {
            txn.server.cancelled = true;
            let s = self.settings.clone();
            for b in &mut txn.branches {
                cancel_branch(b, &s, now, &mut fx, stats);
            }
            self.schedule(id, now);
        }
        (pending, fx)
    }

    /// A response to one of our branches. Returns `None` when it names no
    /// branch of ours (stray or forged: dropped and counted).
    pub fn on_response(
        &mut self,
        resp: &FullResponse<'_>,
        msg: &[u8],
        peer: &Peer,
        now: Instant,
        stats: &TmStats,
    ) -> Option<Effects> {
        let (_, id, index) = parse_branch(resp.top_via.branch()?)?;
        let s = self.settings.clone();
        // A response is kept (for retransmitted requests, or as the best
        // final) only while all transactions hold less than the bound;
        // past it, it is relayed and not kept.
        let keep = self.bytes + msg.len() <= super::MAX_HELD_BYTES;
        let txn = self.txns.get_mut(&id)?;
        let b = txn.branches.get_mut(index)?;
        if resp.top_via.branch() != Some(b.id.as_str()) || !from_flow(&b.hop.target, peer) {
            return None;
        }
        // The branch and the CSeq method match a client transaction
        // (§17.1.3): ours are the request's method and its CANCEL.
        if resp.cseq.method != txn.server.key.method && resp.cseq.method != "CANCEL" {
            return None;
        }
        TmStats::inc(&stats.rpl_received);
        let mut fx = Effects::default();
        let invite = txn.server.invite;
        if resp.cseq.method == "CANCEL" {
            if resp.status >= 200 {
                b.cancel = Cancel::Done;
            }
            return Some(fx);
        }
        let relay = |status_line: Option<&str>| {
            let mut out = Vec::with_capacity(msg.len());
            forward::response(msg, resp, status_line, &mut out);
            out
        };
        match resp.status {
            100..=199 => {
                if b.state == BranchState::Calling {
                    b.state = BranchState::Proceeding;
                    // Non-INVITE keeps retransmitting, at T2 (§17.1.2.2).
                    b.retrans_at = (!invite && !b.reliable()).then(|| now + s.t2);
                    b.interval = s.t2;
                }
                if invite && b.state == BranchState::Proceeding && !b.timed_out {
                    // Timer C restarts with every provisional (§16.7 step 2).
                    b.timeout_at = Some(now + s.fr_inv_timer);
                }
                if b.cancel == Cancel::Wanted {
                    cancel_branch(b, &s, now, &mut fx, stats);
                }
                let server = &mut txn.server;
                if resp.status > 100 && server.state == ServerState::Proceeding {
                    let bytes = relay(None);
                    server.last_response = keep.then(|| bytes.clone());
                    fx.send(server.upstream, bytes);
                    TmStats::inc(&stats.fwd_replies);
                    TmStats::inc(&stats.rpl_sent);
                }
            }
            200..=299 if invite => {
                match b.state {
                    BranchState::Calling | BranchState::Proceeding => {
                        b.state = BranchState::Accepted;
                        b.retrans_at = None;
                        b.timeout_at = None;
                        b.end_at = Some(now + s.linger());
                    }
                    BranchState::Accepted => {}
                    // A 2xx after this branch's own non-2xx: not relayed.
                    _ => return Some(fx),
                }
                let server = &mut txn.server;
                if matches!(
                    server.state,
                    ServerState::Proceeding | ServerState::Accepted
                ) {
                    fx.send(server.upstream, relay(None));
                    TmStats::inc(&stats.fwd_replies);
                    TmStats::inc(&stats.rpl_sent);
                    if server.state == ServerState::Proceeding {
                        server.state = ServerState::Accepted;
                        server.last_response = None;
                        server.end_at = Some(now + s.linger());
                        if !server.answered {
                            server.answered = true;
                            stats.finished(resp.status);
                        }
                    }
                }
                // The others are cancelled (§16.7 step 10).
                for (i, other) in txn.branches.iter_mut().enumerate() {
                    if i != index {
                        cancel_branch(other, &s, now, &mut fx, stats);
                    }
                }
            }
            _ => {
                if invite {
                    match b.state {
                        BranchState::Calling | BranchState::Proceeding => {}
                        BranchState::Completed => {
                            // Our ACK was lost: send it again (§17.1.1.2).
                            if let Some(ack) = build_ack(&b.request, resp.to) {
                                fx.send(b.hop.target, ack);
                            }
                            return Some(fx);
                        }
                        _ => return Some(fx),
                    }
                    if let Some(ack) = build_ack(&b.request, resp.to) {
                        fx.send(b.hop.target, ack);
                    }
                    // Timer D: 32 s over UDP absorbs retransmitted finals.
                    b.end_at = Some(if b.reliable() { now } else { now + s.linger() });
                } else {
                    if !b.pending() {
                        return Some(fx);
                    }
                    b.end_at = Some(if b.reliable() { now } else { now + s.t4 });
                }
                b.state = BranchState::Completed;
                b.retrans_at = None;
                b.timeout_at = None;
                let timed_out = b.timed_out;
                let server = &mut txn.server;
                // Past the byte bound the status is kept, not the message
                // (the caller then gets our own response with it).
                let kept = |line| keep.then(|| relay(line));
                if timed_out {
                    offer(server, 408, None);
                } else if resp.status == 503 {
                    // §16.7 step 6: a 503 would tell the caller *we* are
                    // overloaded.
                    offer(server, 500, kept(Some("SIP/2.0 500 Server Internal Error")));
                } else if (200..300).contains(&resp.status) {
                    // A non-INVITE 2xx goes upstream at once (§16.7 step 5).
                    offer(server, resp.status, Some(relay(None)));
                    if server.state == ServerState::Proceeding {
                        finish(server, &s, now, &mut fx, stats);
                    }
                } else {
                    offer(server, resp.status, kept(None));
                }
                if resp.status >= 600 {
                    for (i, other) in txn.branches.iter_mut().enumerate() {
                        if i != index {
                            cancel_branch(other, &s, now, &mut fx, stats);
                        }
                    }
                }
            }
        }
        self.settle(id, now, &mut fx, stats);
        Some(fx)
    }

    /// Runs every timer due by `now`.
    pub fn on_timer(&mut self, now: Instant, stats: &TmStats) -> Effects {
        let mut fx = Effects::default();
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id));
            if let Some(txn) = self.txns.get_mut(&id) {
                if txn.scheduled == Some(at) {
                    txn.scheduled = None;
                }
                poll(txn, &self.settings, now, &mut fx, stats);
            }
            self.settle(id, now, &mut fx, stats);
        }
        fx
    }

    /// After any change to `id`: the best response goes upstream once no
    /// branch is pending, a finished transaction is freed, and its next
    /// deadline is scheduled.
    fn settle(&mut self, id: TxId, now: Instant, fx: &mut Effects, stats: &TmStats) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.server.state == ServerState::Proceeding && !txn.branches.iter().any(Branch::pending)
        {
            // Serial forking: the next q group, unless a 6xx or the
            // caller said to stop.
            let stop =
                txn.server.cancelled || txn.server.best.as_ref().is_some_and(|b| b.status >= 600);
            match txn.later.pop_front() {
                Some(group) if !stop => {
                    start_group(txn, group, &self.settings, now, fx, stats);
                }
                _ => finish(&mut txn.server, &self.settings, now, fx, stats),
            }
        }
        // What it holds now, responses it kept included.
        let footprint = footprint(txn);
        self.bytes = self.bytes.saturating_sub(txn.held) + footprint;
        txn.held = footprint;
        let s = &self.settings;
        // A hard bound on a transaction's life, whatever its peers do.
        let max_life = s.fr_timer * 3 + s.fr_inv_timer + s.linger() * 2;
        let done = txn.server.state == ServerState::Terminated
            && txn
                .branches
                .iter()
                .all(|b| b.state == BranchState::Terminated);
        if done || now.duration_since(txn.created) > max_life {
            if let Some(txn) = self.txns.remove(&id) {
                self.by_key.remove(&txn.server.key);
                self.bytes = self.bytes.saturating_sub(txn.held);
                if let Some(at) = txn.scheduled {
                    self.timers.remove(&(at, id));
                }
                TmStats::inc(&stats.freed);
                stats
                    .current
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            return;
        }
        self.schedule(id, now);
    }

    fn schedule(&mut self, id: TxId, now: Instant) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let Some(next) = deadline(txn) else {
            return;
        };
        let next = next.max(now);
        if txn.scheduled.is_some_and(|at| at <= next) {
            return;
        }
        if let Some(old) = txn.scheduled.replace(next) {
            self.timers.remove(&(old, id));
        }
        self.timers.insert((next, id));
    }
}

/// Sends a group of branches (all of them, or one q group when forking
/// serially) and starts their timers.
fn start_group(
    txn: &mut Txn,
    group: SmallVec<[Branch; 2]>,
    s: &Settings,
    now: Instant,
    fx: &mut Effects,
    stats: &TmStats,
) {
    for mut b in group {
        fx.send(b.hop.target, b.request.clone());
        TmStats::inc(&stats.fwd_requests);
        if !b.reliable() {
            b.interval = s.t1;
            b.retrans_at = Some(now + s.t1);
        }
        b.timeout_at = Some(now + s.fr_timer);
        txn.branches.push(b);
    }
}

/// The bytes a transaction of a `request`-byte request forked to
/// branches of `branches` bytes holds: its messages, and as much again
/// for the CANCEL, ACK and response copies built from them.
pub fn held(request: usize, branches: impl Iterator<Item = usize>) -> usize {
    2 * (request + branches.sum::<usize>())
}

/// What [`held`] counts for `txn`, and the responses it keeps (the last
/// provisional, the best final so far), which can be far larger than
/// the request.
fn footprint(txn: &Txn) -> usize {
    let s = &txn.server;
    held(
        s.request.len(),
        txn.branches.iter().map(|b| b.request.len()),
    ) + s.last_response.as_ref().map_or(0, Vec::len)
        + s.best
            .as_ref()
            .and_then(|b| b.bytes.as_ref())
            .map_or(0, Vec::len)
}

/// Whether a response to a branch arrived over the branch's own flow: on
/// its connection, or (UDP) from the very address it was sent to (for a
/// phone behind NAT, its mapping; RFC 3581's symmetric responses). A reply
/// from anywhere else, even knowing the branch, is not believed.
fn from_flow(target: &Target, peer: &Peer) -> bool {
    match *target {
        Target::Conn { conn, .. } => peer.conn == Some(conn),
        Target::Datagram { dest, .. } => peer.conn.is_none() && same_addr(peer.remote, dest),
    }
}

/// Addresses equal, an IPv4-mapped IPv6 address equal to its IPv4 one.
fn same_addr(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    let canon = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// The earliest of a transaction's deadlines.
fn deadline(txn: &Txn) -> Option<Instant> {
    let s = &txn.server;
    let mut all: SmallVec<[Instant; 8]> = SmallVec::new();
    all.extend(s.retrans_at);
    all.extend(s.end_at);
    for b in &txn.branches {
        all.extend(b.retrans_at);
        all.extend(b.timeout_at);
        all.extend(b.end_at);
        if let Cancel::Sent {
            retrans_at,
            give_up,
            ..
        } = &b.cancel
        {
            all.extend(*retrans_at);
            all.push(*give_up);
        }
    }
    all.into_iter().min()
}

/// Keeps `status` if it is better than the best so far (§16.7 step 6):
/// a 6xx beats everything, then the lowest class; among 4xx, 401, 407,
/// 415, 420 and 484 are preferred (the caller can act on them).
fn offer(server: &mut Server, status: u16, bytes: Option<Vec<u8>>) {
    fn rank(status: u16) -> (u8, u8) {
        let class = match status / 100 {
            6 => 0,
            2 => 0,
            c => c as u8,
        };
        let preferred = matches!(status, 401 | 407 | 415 | 420 | 484);
        (class, u8::from(!preferred))
    }
    if server
        .best
        .as_ref()
        .is_none_or(|b| rank(status) < rank(b.status))
    {
        server.best = Some(Best { status, bytes });
    }
}

/// Sends the best response upstream (or 408 when no branch answered).
fn finish(server: &mut Server, s: &Settings, now: Instant, fx: &mut Effects, stats: &TmStats) {
    let (status, bytes) = match server.best.take() {
        Some(Best { status, bytes }) => (status, bytes),
        None => (if server.cancelled { 487 } else { 408 }, None),
    };
    let bytes = match bytes {
        Some(b) => {
            TmStats::inc(&stats.fwd_replies);
            b
        }
        None => {
            TmStats::inc(&stats.rpl_generated);
            local_reply(&server.request, &server.peer, status)
        }
    };
    TmStats::inc(&stats.rpl_sent);
    if !server.answered {
        server.answered = true;
        stats.finished(status);
    }
    fx.send(server.upstream, bytes.clone());
    let linger = s.linger();
    if (200..300).contains(&status) && server.invite {
        server.state = ServerState::Accepted;
        server.end_at = Some(now + linger);
        return;
    }
    server.state = ServerState::Completed;
    server.last_response = Some(bytes);
    if server.invite {
        // Timer G retransmits over UDP until the ACK; timer H gives up.
        if !server.reliable() {
            server.interval = s.t1;
            server.retrans_at = Some(now + s.t1);
        }
        server.end_at = Some(now + linger);
    } else {
        // Timer J absorbs retransmitted requests over UDP.
        server.end_at = Some(if server.reliable() { now } else { now + linger });
    }
}

/// Our own response to the request `request` (as received from `peer`).
pub fn local_reply(request: &[u8], peer: &Peer, status: u16) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(sip::Message::Request(req)) = sip::parse_message(request, &STORED) {
        sip::reply::write(&mut out, &req, peer, status, reason(status), &[]);
    }
    out
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        430 => "Flow Failed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Limits for parsing again the messages a transaction stored: they
/// passed the configured limits once, and the copies we sent have our
/// Via, Record-Routes and Route on top, so neither the defaults nor the
/// configured limits may hold them (a request at the header limit would
/// get no CANCEL, ACK or response of ours).
const STORED: Limits = Limits {
    max_message_size: usize::MAX,
    max_headers: usize::MAX,
    max_line_length: usize::MAX,
};

fn build_ack(request: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let sip::Message::Request(req) = sip::parse_message(request, &STORED).ok()? else {
        return None;
    };
    let mut out = Vec::new();
    forward::ack(&req, to, &mut out);
    Some(out)
}

fn build_cancel(request: &[u8]) -> Option<Vec<u8>> {
    let sip::Message::Request(req) = sip::parse_message(request, &STORED).ok()? else {
        return None;
    };
    let mut out = Vec::new();
    forward::cancel(&req, &mut out);
    Some(out)
}

/// Cancels a pending INVITE branch: at once when it has answered
/// provisionally, else as soon as it does (RFC 3261 §9.1).
fn cancel_branch(b: &mut Branch, s: &Settings, now: Instant, fx: &mut Effects, stats: &TmStats) {
    if b.cancel != Cancel::None && b.cancel != Cancel::Wanted {
        return;
    }
    match b.state {
        BranchState::Calling => b.cancel = Cancel::Wanted,
        BranchState::Proceeding => {
            let Some(bytes) = build_cancel(&b.request) else {
                return;
            };
            fx.send(b.hop.target, bytes.clone());
            TmStats::inc(&stats.cancels_sent);
            let reliable = b.reliable();
            b.cancel = Cancel::Sent {
                bytes,
                retrans_at: (!reliable).then(|| now + s.t1),
                interval: s.t1,
                give_up: now + s.fr_timer,
            };
            // The branch now waits for its 487, at most fr_timer.
            if !b.timed_out {
                b.timeout_at = Some(now + s.fr_timer);
            }
        }
        _ => {}
    }
}

/// Runs a transaction's due timers.
fn poll(txn: &mut Txn, s: &Settings, now: Instant, fx: &mut Effects, stats: &TmStats) {
    let invite = txn.server.invite;
    let cancelled = txn.server.cancelled;
    let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
    for b in &mut txn.branches {
        if b.pending() && due(b.retrans_at) {
            // Timer A doubles without bound, timer E up to T2.
            fx.send(b.hop.target, b.request.clone());
            b.interval = if invite {
                b.interval * 2
            } else {
                (b.interval * 2).min(s.t2)
            };
            b.retrans_at = Some(now + b.interval);
        }
        if b.pending() && due(b.timeout_at) {
            // Timer C is for a branch ringing on; one we already cancelled
            // has had its fr_timer to answer, and is given up.
            if invite
                && b.state == BranchState::Proceeding
                && !b.timed_out
                && b.cancel == Cancel::None
            {
                // Timer C: the branch is cancelled and counts as 408
                // (Kamailio's fr_inv_timer); its 487 is absorbed.
                b.timed_out = true;
                TmStats::inc(&stats.timeouts);
                cancel_branch(b, s, now, fx, stats);
                b.timeout_at = Some(now + s.fr_timer);
            } else {
                // Timer B or F, or no final after our CANCEL.
                if !b.timed_out && !cancelled {
                    TmStats::inc(&stats.timeouts);
                }
                b.state = BranchState::Terminated;
                b.retrans_at = None;
                b.timeout_at = None;
                let status = if cancelled && !b.timed_out { 487 } else { 408 };
                offer(&mut txn.server, status, None);
            }
        }
        if let Cancel::Sent {
            bytes,
            retrans_at,
            interval,
            give_up,
        } = &mut b.cancel
        {
            if *give_up <= now {
                b.cancel = Cancel::Done;
            } else if due(*retrans_at) {
                fx.send(b.hop.target, bytes.clone());
                *interval = (*interval * 2).min(s.t2);
                *retrans_at = Some(now + *interval);
            }
        }
        if matches!(b.state, BranchState::Completed | BranchState::Accepted) && due(b.end_at) {
            b.state = BranchState::Terminated;
            b.end_at = None;
        }
        if b.state == BranchState::Terminated {
            b.cancel = Cancel::Done;
        }
    }
    let server = &mut txn.server;
    if server.state == ServerState::Completed && due(server.retrans_at) {
        if let Some(r) = &server.last_response {
            fx.send(server.upstream, r.clone());
        }
        server.interval = (server.interval * 2).min(s.t2);
        server.retrans_at = Some(now + server.interval);
    }
    if due(server.end_at) && server.state != ServerState::Proceeding {
        server.state = ServerState::Terminated;
        server.end_at = None;
        server.retrans_at = None;
    }
}

#[cfg(test)]
mod tests;
