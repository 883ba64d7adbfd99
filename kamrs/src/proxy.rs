//! Call delivery: the tutorial's next step, `lookup("location")` then
//! `t_relay()`. In `[route] mode = "proxy"` a request for one of our users
//! is forked to every binding over the binding's own flow (its TCP, TLS or
//! WebSocket connection, its NAT address, its Path), as a stateful proxy
//! (RFC 3261 §16 with the transactions of §17, in [`txn`]).
//!
//! The request path stays synchronous like the registrar's: the router
//! calls [`Proxy::request`] and [`Proxy::response`], which decide under one
//! lock and send without waiting (the flow layer's non-blocking sends);
//! one background task runs the timers ([`Proxy::run_timers`]). REGISTER
//! never takes that lock.

pub mod forward;
pub mod settings;
pub mod stats;
pub mod token;
pub mod txn;

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use smallvec::SmallVec;
use tokio::sync::Notify;

pub use settings::{Mode, Settings};
pub use stats::TmStats;
use token::{Hop, Token, TokenKey};
use txn::{Branch, Effects, Server, ServerKey, Transactions};

use crate::flow::{self, Flows, Sockets, Target};
use crate::peer::{ListenAddr, Peer, Proto};
use crate::registrar::{LookupError, Registrar};
use crate::sip::{self, reply, HeaderName, Limits, Method, NameAddrList, Request, Uri};
use crate::usrloc::Binding;

/// Most branches one request forks to (an AoR's bindings are bounded by
/// `max_contacts` already; this bounds a misconfigured unlimited one).
pub const MAX_BRANCHES: usize = 16;

/// Most message bytes all open transactions may hold; past it new
/// requests get 503 like past `max_transactions`.
pub const MAX_HELD_BYTES: usize = 128 << 20;

/// Most Route entries naming us at the top of one request (two
/// Record-Routes of one dialog, a phone's outbound proxy setting): each
/// token costs an HMAC to check.
const MAX_OUR_ROUTES: usize = 4;

/// What the router does after [`Proxy::request`].
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// A reply to the sender is in `out`.
    Reply,
    /// Nothing more to send to the sender now.
    Absorb,
    /// Not for the proxy: the registrar's own routing applies (a request
    /// for kamrs itself, such as OPTIONS without a user).
    NotMine,
}

/// The proxy's shared state: one per process.
pub struct Proxy {
    settings: Settings,
    txns: Mutex<Transactions>,
    pub stats: Arc<TmStats>,
    key: TokenKey,
    /// Keys the loop-detection hash (RFC 3261 §16.6 step 8).
    loop_seed: std::hash::RandomState,
    registrar: Arc<Registrar>,
    flows: Arc<Flows>,
    listen: Vec<ListenAddr>,
    limits: Limits,
    force_rport: bool,
    use_domain: bool,
    /// Wakes the timer task when a transaction gets an earlier deadline.
    wake: Notify,
}

impl Proxy {
    /// `secret` keys the Record-Route flow tokens: the same on every node
    /// of a cluster and across restarts keeps dialogs routable.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Settings,
        secret: [u8; 32],
        registrar: Arc<Registrar>,
        flows: Arc<Flows>,
        listen: Vec<ListenAddr>,
        limits: Limits,
        force_rport: bool,
        use_domain: bool,
    ) -> Proxy {
        Proxy {
            txns: Mutex::new(Transactions::new(settings.clone())),
            settings,
            stats: Arc::default(),
            key: TokenKey::new(secret),
            loop_seed: std::hash::RandomState::new(),
            registrar,
            flows,
            listen,
            limits,
            force_rport,
            use_domain,
            wake: Notify::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    /// Transactions open now.
    pub fn transactions(&self) -> usize {
        crate::util::lock(&self.txns).len()
    }

    /// Runs the transaction timers until `shutdown` resolves.
    pub async fn run_timers(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let next = crate::util::lock(&self.txns).next_deadline();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = self.wake.notified() => continue,
                () = &mut shutdown => return,
            }
            let fx = crate::util::lock(&self.txns).on_timer(Instant::now(), &self.stats);
            self.send(fx);
        }
    }

    fn send(&self, fx: Effects) {
        for (target, bytes) in fx.sends {
            if let Err(e) = self.flows.send(&target, bytes) {
                tracing::debug!(to = %target.remote(), error = %e, "proxy send failed");
            }
        }
    }

    /// Applies `fx` and wakes the timer task for the deadlines it set.
    fn commit(&self, fx: Effects) {
        self.send(fx);
        self.wake.notify_one();
    }

    /// A response reached us: relayed if it answers one of our branches,
    /// else `false` (the keepalive may own it).
    pub fn response(&self, msg: &[u8], peer: &Peer) -> bool {
        let resp = match sip::parse_response(msg, &self.limits) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(remote = %peer.remote, error = ?e, "unreadable response dropped");
                return false;
            }
        };
        if !resp
            .top_via
            .branch()
            .is_some_and(|b| b.starts_with(txn::BRANCH_PREFIX))
        {
            return false;
        }
        let fx = crate::util::lock(&self.txns).on_response(
            &resp,
            msg,
            peer,
            Instant::now(),
            &self.stats,
        );
        match fx {
            Some(fx) => self.commit(fx),
            None => {
                TmStats::inc(&self.stats.stray_replies);
                tracing::debug!(remote = %peer.remote, status = resp.status, "response to no branch of ours dropped");
            }
        }
        true
    }

    /// Routes a request other than REGISTER (RFC 3261 §16.3–§16.6).
    pub fn request(
        &self,
        req: &Request<'_>,
        msg: &[u8],
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> Handled {
        let now = Instant::now();
        match req.method {
            Method::Ack if self.settings.mode == Mode::Redirect => return Handled::Absorb,
            Method::Ack => return self.ack(req, msg, peer, now),
            Method::Cancel => return self.cancel(req, peer, now, out),
            _ => {}
        }
        if self.settings.mode == Mode::Redirect {
            return self.redirect(req, msg.len(), peer, out);
        }
        let key = server_key(req, req.method.as_str());
        // A retransmission: the last response goes again (one lock, the
        // guard dropped before sending).
        let again = {
            let mut txns = crate::util::lock(&self.txns);
            txns.find(&key).map(|id| txns.retransmitted(id))
        };
        if let Some(fx) = again {
            self.send(fx);
            return Handled::Absorb;
        }
        if req.max_forwards == Some(0) {
            return self.reply(req, peer, 483, out);
        }
        // RFC 3261 §16.3 step 5: kamrs supports no proxy extension.
        if let Some(wanted) = req.header(HeaderName::ProxyRequire) {
            let wanted = String::from_utf8_lossy(&wanted[..wanted.len().min(256)]).into_owned();
            reply::write(
                out,
                req,
                peer,
                420,
                "Bad Extension",
                &[("Unsupported", wanted.as_str())],
            );
            TmStats::inc(&self.stats.rpl_generated);
            TmStats::inc(&self.stats.rpl_sent);
            return Handled::Reply;
        }
        let loop_hash = self.loop_hash(req);
        if self.looped(req, loop_hash) {
            return self.reply(req, peer, 482, out);
        }
        let routes = self.our_routes(req, peer);
        let mut authenticated = false;
        // Only a request inside a dialog we record-routed (our token and
        // a To tag) is spared the caller check: a To tag alone is the
        // sender's word, and a token is a way back into one dialog, not
        // a pass for new ones.
        if routes.token.is_none() || req.to.tag().is_none() {
            match self.authorize(req, peer, out) {
                Ok(a) => authenticated = a,
                Err(handled) => return handled,
            }
        }
        let decision = match (routes.token, routes.next) {
            _ if routes.forged => Decision::Reply(403, "Invalid Record-Route Token"),
            (Some(token), _) => self.in_dialog(req, &token),
            (None, Some(next)) => self.foreign(&next),
            (None, None) => self.initial(req, peer),
        };
        let targets = match decision {
            Decision::Reply(status, why) => return self.reply_why(req, peer, status, why, out),
            Decision::NotMine => return Handled::NotMine,
            Decision::Forward(targets) => targets,
        };
        let shape = Shape {
            pop_routes: routes.popped,
            drop_proxy_authorization: authenticated,
        };
        self.relay(req, msg, peer, key, loop_hash, shape, targets, now, out)
    }

    /// Opens the transaction and forwards one copy per target.
    #[allow(clippy::too_many_arguments)]
    fn relay(
        &self,
        req: &Request<'_>,
        msg: &[u8],
        peer: &Peer,
        key: ServerKey,
        loop_hash: u32,
        shape: Shape,
        targets: Vec<Next>,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Handled {
        let invite = req.method == Method::Invite;
        let upstream = self.upstream(req, peer);
        let mut txns = crate::util::lock(&self.txns);
        // Bounded by count and by bytes: 10,000 INVITEs of 64 KiB forked
        // ten ways would otherwise hold gigabytes.
        let needed = txn::held(msg.len(), targets.iter().map(|_| msg.len() + 512));
        if txns.len() >= self.settings.max_transactions || txns.bytes() + needed > MAX_HELD_BYTES {
            drop(txns);
            TmStats::inc(&self.stats.refused);
            reply::write(
                out,
                req,
                peer,
                503,
                "Service Unavailable",
                &[("Retry-After", "5")],
            );
            TmStats::inc(&self.stats.rpl_generated);
            return Handled::Reply;
        }
        let id = txns.next_id();
        let caller = Hop {
            target: upstream_flow(peer),
            proto: peer.proto,
            local: peer.local,
        };
        let record = self.settings.record_route && creates_dialog(req);
        let ftag = token::tag_hash(req.from.tag().unwrap_or(""));
        // One group (parallel forking), or one per q value, best first
        // (`serial_forking`): the branch index runs across groups, as the
        // transaction appends them.
        let mut groups: Vec<SmallVec<[Branch; 2]>> = Vec::new();
        let mut group_q = None;
        for (index, next) in targets.into_iter().enumerate() {
            if groups.is_empty() || self.settings.serial_forking && group_q != Some(next.q) {
                groups.push(SmallVec::new());
                group_q = Some(next.q);
            }
            let nonce = self.loop_seed.hash_one((id, index, now));
            let branch = txn::branch_id(loop_hash, id, index, nonce);
            let local = advertised(next.hop.local, next.hop.target.remote());
            let via = format!(
                "SIP/2.0/{} {};branch={branch};rport",
                next.hop.proto.via_name(),
                local
            );
            let rr = if record {
                self.record_route(&caller, &next.hop, ftag, token::tag_hash(req.call_id))
            } else {
                Vec::new()
            };
            let mut bytes = Vec::with_capacity(msg.len() + 300);
            forward::request(
                msg,
                req,
                &forward::Changes {
                    ruri: next.ruri.as_deref(),
                    via: &via,
                    record_route: &rr,
                    pop_routes: shape.pop_routes,
                    push_route: next.path.as_deref(),
                    drop_proxy_authorization: shape.drop_proxy_authorization,
                    source: Some(peer.remote),
                },
                &mut bytes,
            );
            if let Some(g) = groups.last_mut() {
                g.push(Branch::new(branch, next.hop, bytes));
            }
        }
        let mut server = Server::new(invite, key, *peer, upstream, msg.to_vec());
        // The 100 goes first: branches' answers must not overtake it.
        if invite {
            reply::write(out, req, peer, 100, "Trying", &[]);
            TmStats::inc(&self.stats.rpl_generated);
            TmStats::inc(&self.stats.rpl_sent);
            // Sent again for a retransmitted INVITE until a phone rings
            // (RFC 3261 §17.2.1): a lost 100 is not silence.
            server.last_response = Some(out.clone());
        }
        let fx = txns.begin(id, server, groups, now, &self.stats);
        drop(txns);
        // Sent one by one so that a refused send ends its branch at once.
        let mut failed = Vec::new();
        for (i, (target, bytes)) in fx.sends.into_iter().enumerate() {
            if self.flows.send(&target, bytes).is_err() {
                failed.push(i);
            }
        }
        for i in failed {
            let fx = crate::util::lock(&self.txns).send_failed(id, i, now, &self.stats);
            self.send(fx);
        }
        self.wake.notify_one();
        if invite {
            Handled::Reply
        } else {
            Handled::Absorb
        }
    }

    /// Our Record-Route value(s) for a dialog between `caller` and
    /// `callee`: one when both sides use the same socket, two (RFC 5658)
    /// when the transport or socket differs, each naming our address on
    /// its side. The callee's side is on top.
    fn record_route(&self, caller: &Hop, callee: &Hop, ftag: u32, call: u32) -> Vec<String> {
        let token = self.key.encode(&Token {
            ftag,
            call,
            caller: *caller,
            callee: *callee,
        });
        let uri = |hop: &Hop| {
            let addr = advertised(hop.local, hop.target.remote());
            match hop.proto {
                Proto::Udp => format!("<sip:{token}@{addr};lr>"),
                p => format!("<sip:{token}@{addr};transport={};lr>", p.as_str()),
            }
        };
        if caller.proto == callee.proto && caller.local == callee.local {
            vec![uri(callee)]
        } else {
            vec![uri(callee), uri(caller)]
        }
    }

    /// Where responses to `req` from `peer` go (RFC 3261 §18.2.2).
    fn upstream(&self, req: &Request<'_>, peer: &Peer) -> Target {
        match peer.conn {
            Some(conn) => Target::Conn {
                conn,
                remote: peer.remote,
            },
            None => Target::Datagram {
                local: peer.local,
                dest: req.top_via.reply_destination(peer.remote, self.force_rport),
            },
        }
    }

    /// A request with no Route naming us: for one of our users (looked up
    /// and forked), for kamrs itself, or for somewhere else.
    fn initial(&self, req: &Request<'_>, peer: &Peer) -> Decision {
        let Some(uri) = Uri::parse(req.uri.as_bytes()) else {
            return Decision::Reply(400, "Bad Request-URI");
        };
        if uri.user.is_none() && self.is_ours(&uri, peer) {
            return Decision::NotMine;
        }
        let bindings = match self.registrar.lookup(req.uri, crate::time::unix_now()) {
            Ok(b) => b,
            // No AoR in it: not a user of ours (a host, a service).
            Err(LookupError::NoAor(_)) => Vec::new(),
            Err(e) => return Decision::Reply(e.status(), e.reason()),
        };
        if bindings.is_empty() {
            if !self.is_ours(&uri, peer) {
                return self.foreign(req.uri);
            }
            // With a subscriber list, a user it does not know is not
            // merely away.
            if let (Some(auth), Some(user)) = (self.registrar.auth(), uri.user) {
                if auth.subscribers().get(user, uri.host).is_none() {
                    return Decision::Reply(404, "Not Found");
                }
            }
            return Decision::Reply(480, "Temporarily Unavailable");
        }
        let mut bindings = bindings;
        let in_dialog = req.to.tag().is_some();
        if in_dialog {
            // An in-dialog request kamrs did not record-route names the
            // phone's Contact: that binding alone, not the whole AoR.
            let target = Uri::parse(req.uri.as_bytes());
            let same: Vec<Binding> = bindings
                .iter()
                .filter(|b| {
                    let c = Uri::parse(b.contact().as_bytes());
                    matches!((&target, &c), (Some(t), Some(c)) if t.equivalent(c))
                })
                .cloned()
                .collect();
            if !same.is_empty() {
                bindings = same;
            }
        }
        let mut targets = Vec::new();
        let mut unreachable = 0;
        // A request we sent ourselves (a binding naming kamrs) is not sent
        // round again: each pass would fork to every binding with a new
        // Request-URI, which the loop check does not see, and one INVITE
        // would fill the transaction table.
        let spiral = peer.conn.is_none() && self.is_our_socket(peer.remote);
        let mut looping = 0;
        for b in bindings.iter().take(MAX_BRANCHES) {
            match self.binding_hop(b) {
                Some(hop) if spiral && self.is_our_socket(hop.target.remote()) => {
                    tracing::debug!(ruri = req.uri, "binding names kamrs itself again: skipped");
                    looping += 1;
                }
                Some(hop) => targets.push(Next {
                    hop,
                    ruri: Some(request_uri(b.contact())),
                    path: b.path().map(str::to_owned),
                    q: b.q,
                }),
                None => unreachable += 1,
            }
        }
        if targets.is_empty() && looping > 0 {
            return Decision::Reply(482, "Loop Detected");
        }
        if targets.is_empty() {
            tracing::debug!(ruri = req.uri, unreachable, "no binding can be reached now");
            return Decision::Reply(480, "Temporarily Unavailable");
        }
        Decision::Forward(targets)
    }

    /// A request claiming one of our users as its From, unless it follows
    /// our Record-Route inside a dialog, must prove it (407, RFC 3261
    /// §22.3), so nobody calls as alice;
    /// callers from other domains are let through to our users unless
    /// `accept_foreign_callers = false`. `Ok(true)`: go on, its
    /// credentials checked; `Ok(false)`: go on, none needed; `Err`: answered.
    fn authorize(
        &self,
        req: &Request<'_>,
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> Result<bool, Handled> {
        let Some(auth) = self.registrar.auth() else {
            return Ok(false);
        };
        if !self.settings.authenticate_calls {
            return Ok(false);
        }
        let from = &req.from.uri;
        if !self.is_ours(from, peer) {
            if self.settings.accept_foreign_callers {
                return Ok(false);
            }
            return Err(self.reply_why(req, peer, 403, "Caller Not Of This Domain", out));
        }
        let Some(user) = from.user.filter(|u| !u.is_empty()) else {
            return Err(self.reply_why(req, peer, 403, "Caller Has No User", out));
        };
        let now = crate::time::unix_now();
        let verdict = auth.check_in(
            req,
            HeaderName::ProxyAuthorization,
            user,
            from.host,
            peer.remote,
            now,
            &|| false,
        );
        let handled = match verdict {
            crate::auth::Verdict::Authorized => return Ok(true),
            crate::auth::Verdict::Challenge { stale, failures } => {
                let challenges = auth.challenges(from.host, stale, failures, peer.remote.ip(), now);
                reply::begin(out, req, peer, 407, "Proxy Authentication Required");
                for c in &challenges {
                    reply::header(out, "Proxy-Authenticate", c);
                }
                reply::finish(out);
                TmStats::inc(&self.stats.rpl_generated);
                TmStats::inc(&self.stats.rpl_sent);
                Handled::Reply
            }
            crate::auth::Verdict::Forbidden(why) => self.reply_why(req, peer, 403, why, out),
            crate::auth::Verdict::Malformed(why) => self.reply_why(req, peer, 400, why, out),
        };
        Err(handled)
    }

    /// The way to a binding now, over its flow.
    fn binding_hop(&self, b: &Binding) -> Option<Hop> {
        let target = flow::plan(b, &*self.flows).ok()?;
        let source = b.source();
        let (proto, local) = match (target, source) {
            (Target::Conn { .. }, Some(src)) => (src.proto, src.local),
            (Target::Datagram { local, .. }, _) => (Proto::Udp, local),
            (Target::Conn { .. }, None) => return None,
        };
        Some(Hop {
            target,
            proto,
            local,
        })
    }

    /// An in-dialog request on a route we recorded: to the other end's
    /// flow, whatever its Contact says (behind NAT it says nothing useful).
    fn in_dialog(&self, req: &Request<'_>, token: &Token) -> Decision {
        // A token is the way back into its own dialog, not into any: with
        // another Call-ID it was lifted from somewhere.
        if token::tag_hash(req.call_id) != token.call {
            return Decision::Reply(403, "Invalid Record-Route Token");
        }
        let from_caller = token::tag_hash(req.from.tag().unwrap_or("")) == token.ftag;
        let hop = if from_caller {
            token.callee
        } else {
            token.caller
        };
        if let Target::Conn { conn, .. } = hop.target {
            if !self.flows.conn_open(conn) {
                return Decision::Reply(430, "Flow Failed");
            }
        }
        Decision::Forward(vec![Next {
            hop,
            ruri: None,
            path: None,
            q: None,
        }])
    }

    /// A request for a domain that is not ours, or routed through
    /// somewhere else: relayed only with `relay_foreign`, to the address
    /// `next` (the first Route not naming us, else the Request-URI) names.
    fn foreign(&self, next: &str) -> Decision {
        if !self.settings.relay_foreign {
            return Decision::Reply(403, "Relaying Forbidden");
        }
        match flow::uri_target(next, &*self.flows) {
            Ok((target, proto)) => {
                let local = match target {
                    Target::Datagram { local, .. } => local,
                    Target::Conn { remote, .. } => remote,
                };
                Decision::Forward(vec![Next {
                    hop: Hop {
                        target,
                        proto,
                        local,
                    },
                    ruri: None,
                    path: None,
                    q: None,
                }])
            }
            Err(e) => {
                tracing::debug!(uri = next, error = %e, "foreign request cannot be relayed");
                Decision::Reply(502, "Next Hop Unreachable")
            }
        }
    }

    /// Whether `uri` names one of our domains: a configured one or an
    /// address we listen on. Without `domains` and with `use_domain =
    /// false` the registrar serves one domain whatever its name, so every
    /// host is ours; with `use_domain` a domain becomes ours when one of
    /// its AoRs has bindings (the lookup finds them first).
    fn is_ours(&self, uri: &Uri<'_>, peer: &Peer) -> bool {
        let host = uri.host.trim_start_matches('[').trim_end_matches(']');
        if self
            .settings
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host))
        {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip == peer.local.ip() || self.listen.iter().any(|l| l.addr.ip() == ip) {
                return true;
            }
        }
        self.settings.domains.is_empty() && !self.use_domain
    }

    /// The Route entries at the top naming us (our tokens, and plain
    /// URIs of ours such as a phone's outbound proxy setting, RFC 3261
    /// §16.4), the token, and the next hop after them.
    fn our_routes(&self, req: &Request<'_>, peer: &Peer) -> OurRoutes {
        let mut found = OurRoutes::default();
        for value in req.raw.headers_named(HeaderName::Route) {
            for entry in NameAddrList::new(value) {
                let Ok(na) = entry else {
                    // Unreadable: not ours to follow or to skip.
                    found.forged = true;
                    return found;
                };
                if found.popped == MAX_OUR_ROUTES {
                    found.forged = true;
                    return found;
                }
                if let Some(t) = na.uri.user.and_then(|u| self.key.decode(u)) {
                    // Another token is another pass through kamrs (a
                    // spiral): its hop comes after this token's one, so it
                    // stays for the request to bring back.
                    if found.token.is_some_and(|first| first != t) {
                        return found;
                    }
                    found.token.get_or_insert(t);
                } else if self.names_us(&na.uri, peer) {
                    if na.uri.user.is_some() {
                        // Our address with a token we never issued.
                        found.forged = true;
                        return found;
                    }
                } else {
                    found.next = Some(na.uri.raw.to_owned());
                    return found;
                }
                found.popped += 1;
            }
        }
        found
    }

    /// Whether `addr` is one of our UDP sockets (by its address or, for a
    /// socket bound to all addresses, a local one). Asks the sockets
    /// bound, not `listen`, whose ports may be 0.
    fn is_our_socket(&self, addr: SocketAddr) -> bool {
        use flow::Sockets;
        if self.flows.has_udp(addr) {
            return true;
        }
        let any: IpAddr = match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        let wildcard = SocketAddr::new(any, addr.port());
        self.flows.has_udp(wildcard)
            && (addr.ip().is_loopback() || advertised(wildcard, addr).ip() == addr.ip())
    }

    /// Whether a Route URI names this kamrs: one of our domains or
    /// addresses, at a port we listen on.
    fn names_us(&self, uri: &Uri<'_>, peer: &Peer) -> bool {
        let default_port = match uri.scheme {
            sip::Scheme::Sips => 5061,
            _ => 5060,
        };
        let port = uri.port.unwrap_or(default_port);
        if port != peer.local.port() && !self.listen.iter().any(|l| l.addr.port() == port) {
            return false;
        }
        let host = uri.host.trim_start_matches('[').trim_end_matches(']');
        if self
            .settings
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host))
        {
            return true;
        }
        let Ok(ip) = host.parse::<IpAddr>() else {
            return false;
        };
        ip == peer.local.ip()
            || self.listen.iter().any(|l| l.addr.ip() == ip)
            || (peer.local.ip().is_unspecified() && ip == advertised(peer.local, peer.remote).ip())
    }

    /// RFC 3261 §16.6 step 8: a hash of what makes this request this
    /// request at this hop. A spiral (the same request back with another
    /// Request-URI) hashes differently; a loop does not.
    fn loop_hash(&self, req: &Request<'_>) -> u32 {
        let mut h = self.loop_seed.build_hasher();
        h.write(req.uri.as_bytes());
        h.write(req.from.tag().unwrap_or("").as_bytes());
        h.write(req.to.tag().unwrap_or("").as_bytes());
        h.write(req.call_id.as_bytes());
        h.write_u32(req.cseq.seq);
        for r in req.raw.headers_named(HeaderName::Route) {
            h.write(r);
        }
        h.finish() as u32
    }

    /// Whether one of the request's Vias is ours with this loop hash.
    fn looped(&self, req: &Request<'_>, loop_hash: u32) -> bool {
        for value in req.raw.headers_named(HeaderName::Via) {
            let mut i = 0;
            while let Some((via, end)) = sip::Via::parse_at(value, i) {
                if let Some((h, _, _)) = via.branch().and_then(txn::parse_branch) {
                    if h == loop_hash {
                        return true;
                    }
                }
                if value.get(end) != Some(&b',') {
                    break;
                }
                i = end + 1;
            }
        }
        false
    }

    /// `mode = "redirect"`: a request for one of our users gets 302 with
    /// its bindings (RFC 3261 §8.3), statelessly; kamrs stays off the path.
    fn redirect(&self, req: &Request<'_>, len: usize, peer: &Peer, out: &mut Vec<u8>) -> Handled {
        if req.to.tag().is_some() {
            // In-dialog requests are not ours to redirect.
            return self.reply(req, peer, 481, out);
        }
        let Some(uri) = Uri::parse(req.uri.as_bytes()) else {
            return self.reply_why(req, peer, 400, "Bad Request-URI", out);
        };
        if uri.user.is_none() && self.is_ours(&uri, peer) {
            return Handled::NotMine;
        }
        // A 302 tells where a user's phones are (NAT addresses included):
        // with `[auth]` on, callers claiming our users prove it first.
        if let Err(handled) = self.authorize(req, peer, out) {
            return handled;
        }
        let bindings = match self.registrar.lookup(req.uri, crate::time::unix_now()) {
            Ok(b) => b,
            Err(LookupError::NoAor(_)) => Vec::new(),
            Err(e) => return self.reply_why(req, peer, e.status(), e.reason(), out),
        };
        if bindings.is_empty() {
            return if self.is_ours(&uri, peer) {
                self.reply(req, peer, 480, out)
            } else {
                self.reply_why(req, peer, 403, "Relaying Forbidden", out)
            };
        }
        if self
            .registrar
            .write_redirect(out, req, peer, len, &bindings)
            == 0
        {
            return self.reply(req, peer, 480, out);
        }
        TmStats::inc(&self.stats.rpl_generated);
        TmStats::inc(&self.stats.rpl_sent);
        self.stats.finished(302);
        Handled::Reply
    }

    fn ack(&self, req: &Request<'_>, msg: &[u8], peer: &Peer, now: Instant) -> Handled {
        let key = server_key(req, "INVITE");
        {
            let mut txns = crate::util::lock(&self.txns);
            if let Some(id) = txns.find(&key) {
                if txns.ack(id, now) {
                    drop(txns);
                    // Its end (timer I) is now earlier than what the timer
                    // task sleeps towards (timer H, 32 s).
                    self.wake.notify_one();
                    return Handled::Absorb;
                }
            }
        }
        // The ACK of a 2xx is a request of its own, end to end, on the
        // dialog's route: forwarded statelessly, within its hop limit
        // (it cannot be answered 483: it is dropped).
        if req.max_forwards == Some(0) {
            return Handled::Absorb;
        }
        let routes = self.our_routes(req, peer);
        let Some(token) = routes
            .token
            .filter(|t| !routes.forged && t.call == token::tag_hash(req.call_id))
        else {
            return Handled::Absorb;
        };
        let from_caller = token::tag_hash(req.from.tag().unwrap_or("")) == token.ftag;
        let hop = if from_caller {
            token.callee
        } else {
            token.caller
        };
        // Stateless: the branch is a function of the incoming one, so a
        // retransmitted ACK gets the same (RFC 3261 §16.11).
        let branch = format!(
            "z9hG4bK-ks{:016x}",
            self.loop_seed
                .hash_one(req.top_via.branch().unwrap_or(req.call_id))
        );
        let local = advertised(hop.local, hop.target.remote());
        let via = format!(
            "SIP/2.0/{} {local};branch={branch};rport",
            hop.proto.via_name()
        );
        let mut bytes = Vec::with_capacity(msg.len() + 100);
        forward::request(
            msg,
            req,
            &forward::Changes {
                via: &via,
                pop_routes: routes.popped,
                ..Default::default()
            },
            &mut bytes,
        );
        TmStats::inc(&self.stats.fwd_requests);
        if let Err(e) = self.flows.send(&hop.target, bytes) {
            tracing::debug!(to = %hop.target.remote(), error = %e, "ACK not relayed");
        }
        Handled::Absorb
    }

    fn cancel(&self, req: &Request<'_>, peer: &Peer, now: Instant, out: &mut Vec<u8>) -> Handled {
        let key = server_key(req, "INVITE");
        let found = {
            let mut txns = crate::util::lock(&self.txns);
            txns.find(&key).map(|id| txns.cancel(id, now, &self.stats))
        };
        match found {
            Some((_, fx)) => {
                self.commit(fx);
                self.reply(req, peer, 200, out)
            }
            None => self.reply(req, peer, 481, out),
        }
    }

    fn reply(&self, req: &Request<'_>, peer: &Peer, status: u16, out: &mut Vec<u8>) -> Handled {
        self.reply_why(req, peer, status, txn::reason(status), out)
    }

    fn reply_why(
        &self,
        req: &Request<'_>,
        peer: &Peer,
        status: u16,
        why: &str,
        out: &mut Vec<u8>,
    ) -> Handled {
        reply::write(out, req, peer, status, why, &[]);
        TmStats::inc(&self.stats.rpl_generated);
        TmStats::inc(&self.stats.rpl_sent);
        Handled::Reply
    }
}

/// What to do with a request.
enum Decision {
    Reply(u16, &'static str),
    Forward(Vec<Next>),
    NotMine,
}

/// One place a request goes.
struct Next {
    hop: Hop,
    /// The Request-URI there (a binding's Contact); `None` keeps it.
    ruri: Option<String>,
    /// The binding's Path, pushed as Route.
    path: Option<String>,
    /// The binding's q (serial forking groups by it).
    q: Option<u16>,
}

/// What changes in every copy of one request.
struct Shape {
    /// Route entries naming us at the top.
    pop_routes: usize,
    /// The caller's credentials were ours to check.
    drop_proxy_authorization: bool,
}

#[derive(Default)]
struct OurRoutes {
    /// Entries naming us at the top, removed when forwarding.
    popped: usize,
    /// The first of our tokens among them.
    token: Option<Token>,
    /// The first Route entry after them: the next hop.
    next: Option<String>,
    /// An entry naming us that we cannot follow (a token we did not
    /// issue, an unreadable entry, too many of ours).
    forged: bool,
}

/// Requests whose 2xx makes a dialog: they are record-routed.
fn creates_dialog(req: &Request<'_>) -> bool {
    req.to.tag().is_none()
        && matches!(
            req.method,
            Method::Invite | Method::Subscribe | Method::Other("REFER")
        )
}

/// The flow a request came in on, for the way back to its sender: its
/// connection, or (UDP) its source address, which behind NAT is the only
/// one that reaches it.
fn upstream_flow(peer: &Peer) -> Target {
    match peer.conn {
        Some(conn) => Target::Conn {
            conn,
            remote: peer.remote,
        },
        None => Target::Datagram {
            local: peer.local,
            dest: peer.remote,
        },
    }
}

/// A binding's Contact as a Request-URI: without its `?headers` part,
/// which a Request-URI must not carry (RFC 3261 §19.1.5).
fn request_uri(contact: &str) -> String {
    match Uri::parse(contact.as_bytes()).and_then(|u| u.headers) {
        Some(h) => {
            let cut = contact.len().saturating_sub(h.len() + 1);
            contact.get(..cut).unwrap_or(contact).to_owned()
        }
        None => contact.to_owned(),
    }
}

/// The server transaction key of `req` as a request of `method`.
fn server_key(req: &Request<'_>, method: &str) -> ServerKey {
    let via = &req.top_via;
    let sent_by = match via.port {
        Some(p) => format!("{}:{p}", via.host),
        None => via.host.to_owned(),
    };
    let branch = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => b.to_owned(),
        // RFC 2543 peers: the request's identity stands in (§17.2.3).
        _ => format!(
            "2543:{}:{}:{}",
            req.call_id,
            req.from.tag().unwrap_or(""),
            req.cseq.seq
        ),
    };
    ServerKey {
        branch,
        sent_by,
        method: method.to_owned(),
    }
}

/// Our address as the other side must write it: a socket bound to all
/// addresses answers with the address the kernel would send from.
fn advertised(local: SocketAddr, towards: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    // The kernel's choice per destination address, remembered: asking
    // costs a socket, and the answer changes only with the routes. A
    // handful of entries per peer network; cleared when it grows.
    static CHOSEN: std::sync::Mutex<Option<std::collections::HashMap<IpAddr, IpAddr>>> =
        std::sync::Mutex::new(None);
    const MAX_CHOSEN: usize = 4096;
    if let Some(ip) = crate::util::lock(&CHOSEN)
        .as_ref()
        .and_then(|m| m.get(&towards.ip()).copied())
    {
        return SocketAddr::new(ip, local.port());
    }
    let probe = if towards.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let Ok(ip) = std::net::UdpSocket::bind(probe)
        .and_then(|s| s.connect(towards).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
    else {
        return local;
    };
    let mut chosen = crate::util::lock(&CHOSEN);
    let map = chosen.get_or_insert_with(Default::default);
    if map.len() >= MAX_CHOSEN {
        map.clear();
    }
    map.insert(towards.ip(), ip);
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod tests;
