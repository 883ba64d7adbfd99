//! `save("location")`: RFC 3261 §10.3 steps 2–7 as a pure function of the
//! request, the time and the AoR's current bindings. It returns the changes
//! to make (or why the request is refused) and touches no storage, so every
//! rule is tested without sockets or tables.

use std::borrow::Cow;
use std::sync::Arc;

use smallvec::SmallVec;

use super::error::Reject;
use super::methods;
use super::settings::{MaxContactsPolicy, MinExpiresMode, Settings};
use crate::sip::{
    parse_delta_seconds, HeaderName, NameAddr, NameAddrList, ParseError, Request, Scheme, Uri,
};
use crate::usrloc::{Aor, AorError, Binding, Growth, Parts, Ruid, Source};

/// One edit of an AoR's binding list. Indices refer to the list the
/// function was given.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Add(Binding),
    /// A refresh that changes only fixed-size fields: applied in place,
    /// without allocating (the common REGISTER).
    Refresh {
        index: usize,
        refresh: Refresh,
    },
    /// The binding's strings change too (new Call-ID, User-Agent, …).
    Replace {
        index: usize,
        binding: Binding,
    },
    Remove {
        index: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refresh {
    pub expires_at: u64,
    pub cseq: u32,
    pub q: Option<u16>,
    pub source: Option<Source>,
    pub reg_id: u32,
    pub methods: u32,
    pub last_modified: u64,
    /// With the NAT bit (`nat_bflag`) as this REGISTER says.
    pub cflags: u32,
}

/// What `save` decided.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub changes: Vec<Change>,
    /// The same Call-ID and CSeq as a stored binding: a retransmission,
    /// answered with the current bindings and no change.
    pub retransmission: bool,
    /// A contact registers an RFC 5626 flow (`+sip.instance` and
    /// `reg-id`, not a removal): the 200 says `Require: outbound` when the
    /// UA supports it.
    pub outbound: bool,
    /// The last `evicted` changes are removals of bindings the request did
    /// not name, made for `max_contacts_policy = "evict-oldest"`.
    pub evicted: usize,
}

/// Facts about the request that do not come from its bytes.
pub struct Context<'a> {
    pub now: u64,
    pub source: Option<Source>,
    pub settings: &'a Settings,
    /// Makes a new unique binding id (Kamailio's ruid).
    pub new_ruid: &'a dyn Fn() -> Ruid<'static>,
    /// Shares User-Agent strings between bindings (see
    /// [`super::UserAgents`]); `None` allocates one per binding.
    pub user_agents: Option<&'a super::UserAgents>,
}

/// The AoR a REGISTER is for: from the To URI, user part unescaped, then
/// [`Aor::new`] (host lower-cased, dropped unless `use_domain`: Kamailio's
/// rules), the same normalisation the control API uses. A user that
/// cannot be unescaped, or whose key could not be managed (an escaped `@`,
/// NUL, CR, LF or another control character), is refused.
pub fn aor<'a>(req: &Request<'a>, use_domain: bool) -> Result<Cow<'a, str>, Reject> {
    aor_of_uri(&req.to.uri, use_domain)
}

/// The AoR key of any SIP, SIPS or tel URI by [`aor`]'s rules: what
/// `lookup` derives from a Request-URI, so a call finds what REGISTER
/// stored. URI parameters (`;gr=`, `;user=phone`) play no part.
pub fn aor_of_uri<'a>(to: &Uri<'a>, use_domain: bool) -> Result<Cow<'a, str>, Reject> {
    let user = to
        .user
        .filter(|u| !u.is_empty())
        .ok_or(Reject::InvalidAor)?;
    let user = unescape(user).ok_or(Reject::InvalidAor)?;
    let host = (to.scheme != Scheme::Tel).then_some(to.host);
    match Aor::new(user, host, use_domain) {
        Ok(aor) => Ok(aor.into_cow()),
        Err(AorError::AtInUser) => Err(Reject::UnusableAor("Invalid AoR: @ In User Part")),
        Err(AorError::ControlInUser) => Err(Reject::UnusableAor(
            "Invalid AoR: Control Character In User Part",
        )),
        Err(_) => Err(Reject::InvalidAor),
    }
}

/// Kamailio's limit on an AoR's length (kept here for older callers).
pub use crate::usrloc::MAX_AOR_LEN;

/// `s` with its `%XX` escapes decoded; `None` when one is malformed or
/// the result is not UTF-8. The AoR's user part and a GRUU's `gr` value
/// are both decoded here.
pub(crate) fn unescape(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Option tags of `Require` that we do not support (RFC 3261 §8.2.2.3).
pub fn unsupported_requires(req: &Request<'_>, settings: &Settings) -> Option<String> {
    let mut unsupported = String::new();
    for value in req.raw.headers_named(HeaderName::Require) {
        for tag in value.split(|&b| b == b',') {
            let tag = crate::sip::trim_ws(tag);
            if tag.is_empty()
                || (settings.use_path && tag.eq_ignore_ascii_case(b"path"))
                || tag.eq_ignore_ascii_case(b"outbound")
            {
                continue;
            }
            if !unsupported.is_empty() {
                unsupported.push_str(", ");
            }
            unsupported.push_str(&String::from_utf8_lossy(tag));
        }
    }
    (!unsupported.is_empty()).then_some(unsupported)
}

/// Whether header `name` lists option tag `tag` (`Supported: path`).
pub fn has_option(req: &Request<'_>, name: HeaderName, tag: &[u8]) -> bool {
    req.raw.headers_named(name).any(|v| {
        v.split(|&b| b == b',')
            .any(|t| crate::sip::trim_ws(t).eq_ignore_ascii_case(tag))
    })
}

/// A contact of the request, checked and with its expiry decided.
struct Plan<'a> {
    contact: NameAddr<'a>,
    expires: u32,
    q: Option<u16>,
    instance: Option<&'a str>,
    reg_id: u32,
    methods: u32,
    /// Index of the stored binding it updates.
    existing: Option<usize>,
    /// A later contact of the same request names the same binding.
    superseded: bool,
}

/// RFC 3261 §10.3 steps 6–7 for one REGISTER.
pub fn save(req: &Request<'_>, ctx: &Context<'_>, current: &[Binding]) -> Result<Outcome, Reject> {
    let s = ctx.settings;
    if req.call_id.len() > s.callid_max_size {
        return Err(Reject::CallIdTooLong);
    }
    let header_expires = req.expires()?;

    if req.contact_star() {
        return star(req, header_expires, current);
    }

    // Pass 1: check every contact; nothing depends on the table yet.
    let mut plans: SmallVec<[Plan<'_>; 4]> = SmallVec::new();
    for contact in req.contacts() {
        let contact = contact?;
        plans.push(plan(req, contact, header_expires, s)?);
    }
    if plans.is_empty() {
        return Ok(Outcome::default()); // a query
    }
    let flow = |p: &Plan<'_>| p.instance.is_some() && p.reg_id > 0;
    let outbound = plans.iter().any(|p| flow(p) && p.expires > 0);
    // RFC 5626 §5: a UA that requires outbound names each flow; one that
    // does not cannot have it.
    if has_option(req, HeaderName::Require, b"outbound")
        && plans.iter().any(|p| p.expires > 0 && !flow(p))
    {
        return Err(Reject::OutboundWithoutFlow);
    }
    let path = if s.use_path { path_of(req)? } else { None };

    // Pass 2: match against the stored bindings (and earlier contacts of
    // this same request), enforcing Call-ID/CSeq ordering.
    let mut retransmission = false;
    for i in 0..plans.len() {
        let existing = find(current, &plans[i]);
        if let Some(idx) = existing {
            let b = &current[idx];
            if b.call_id() == req.call_id {
                if req.cseq.seq < b.cseq {
                    return Err(Reject::InvalidCSeq);
                }
                if req.cseq.seq == b.cseq {
                    retransmission = true;
                }
            }
        }
        plans[i].existing = existing;
        // A later contact equal to an earlier one of the same request wins.
        let (earlier, this) = plans.split_at_mut(i);
        if let Some(prev) = earlier
            .iter_mut()
            .find(|p| same_binding(p, this[0].instance, this[0].reg_id, &this[0].contact.uri))
        {
            prev.superseded = true;
        }
    }
    if retransmission {
        return Ok(Outcome {
            changes: Vec::new(),
            retransmission: true,
            outbound,
            evicted: 0,
        });
    }
    plans.retain(|p| !p.superseded);

    // Pass 3: the changes, then the max_contacts rule on the result.
    let mut changes = Vec::with_capacity(plans.len());
    let user_agent = req
        .header(HeaderName::UserAgent)
        .map(|ua| cut(crate::sip::trim_ws(ua), s.user_agent_max_size));
    let mut touched: SmallVec<[usize; 4]> = SmallVec::new();
    let mut added = 0usize;
    let mut removed = 0usize;
    for p in &plans {
        let expires_at = ctx.now + u64::from(p.expires);
        match (p.existing, p.expires) {
            (Some(index), 0) => {
                changes.push(Change::Remove { index });
                touched.push(index);
                removed += 1;
            }
            (None, 0) => {}
            (Some(index), _) => {
                touched.push(index);
                let b = &current[index];
                let same_strings = b.call_id() == req.call_id
                    && b.user_agent.as_deref().map(str::as_bytes) == user_agent
                    && b.path() == path.as_deref()
                    && b.instance() == p.instance
                    && b.contact() == p.contact.uri.raw;
                if same_strings {
                    changes.push(Change::Refresh {
                        index,
                        refresh: Refresh {
                            expires_at,
                            cseq: req.cseq.seq,
                            q: p.q,
                            source: ctx.source,
                            reg_id: p.reg_id,
                            methods: p.methods,
                            last_modified: ctx.now,
                            cflags: nat_cflags(b.cflags, req, p, ctx),
                        },
                    });
                } else {
                    // The binding keeps its identity across a re-bind.
                    let mut binding = new_binding(
                        req,
                        p,
                        ctx,
                        expires_at,
                        user_agent,
                        path.as_deref(),
                        b.ruid(),
                    );
                    binding.flags = b.flags;
                    binding.cflags = nat_cflags(b.cflags, req, p, ctx);
                    changes.push(Change::Replace { index, binding });
                }
            }
            (None, _) => {
                changes.push(Change::Add(new_binding(
                    req,
                    p,
                    ctx,
                    expires_at,
                    user_agent,
                    path.as_deref(),
                    (ctx.new_ruid)(),
                )));
                added += 1;
            }
        }
    }

    let max = s.max_contacts as usize;
    let total = current.len() + added - removed;
    let mut evicted = 0;
    if max > 0 && total > max {
        let over = total - max;
        // Bindings this request did not mention, oldest first.
        let mut others: SmallVec<[usize; 8]> = (0..current.len())
            .filter(|i| !touched.contains(i))
            .collect();
        let evictable =
            s.max_contacts_policy == MaxContactsPolicy::EvictOldest && others.len() >= over;
        if !evictable {
            let retry = current
                .iter()
                .filter(|b| !b.is_permanent())
                .map(|b| b.remaining(ctx.now))
                .min()
                .unwrap_or(u64::from(s.default_expires))
                .max(1);
            return Err(Reject::TooManyContacts(retry));
        }
        others.sort_by_key(|&i| (current[i].last_modified, i));
        evicted = over;
        changes.extend(
            others
                .iter()
                .take(over)
                .map(|&index| Change::Remove { index }),
        );
    }
    Ok(Outcome {
        changes,
        retransmission: false,
        outbound,
        evicted,
    })
}

/// `Contact: *` (RFC 3261 §10.3 step 6).
fn star(
    req: &Request<'_>,
    header_expires: Option<u32>,
    current: &[Binding],
) -> Result<Outcome, Reject> {
    let stars = req.raw.headers_named(HeaderName::Contact).count();
    if stars > 1 || req.contacts().next().is_some() {
        return Err(Reject::StarWithContacts);
    }
    if header_expires != Some(0) {
        return Err(Reject::StarWithExpires);
    }
    // A binding from this same Call-ID is removed only by a higher CSeq.
    if current
        .iter()
        .any(|b| b.call_id() == req.call_id && req.cseq.seq <= b.cseq)
    {
        return Err(Reject::InvalidCSeq);
    }
    Ok(Outcome {
        changes: (0..current.len())
            .map(|index| Change::Remove { index })
            .collect(),
        retransmission: false,
        outbound: false,
        evicted: 0,
    })
}

fn plan<'a>(
    req: &Request<'a>,
    contact: NameAddr<'a>,
    header_expires: Option<u32>,
    s: &Settings,
) -> Result<Plan<'a>, Reject> {
    if contact.uri.raw.len() > s.contact_max_size {
        return Err(Reject::ContactTooLong);
    }
    let [expires_param, q_param, instance, reg_id, methods] =
        contact
            .params
            .lookup(["expires", "q", "+sip.instance", "reg-id", "methods"]);
    // Expiry precedence: contact param, then Expires header, then default.
    let mut expires = match expires_param {
        Some(Some(v)) => parse_delta_seconds(v.as_bytes()).ok_or(Reject::InvalidExpires)?,
        Some(None) => return Err(Reject::InvalidExpires),
        None => header_expires.unwrap_or(s.default_expires),
    };
    if expires != 0 && expires < s.min_expires {
        match s.min_expires_mode {
            MinExpiresMode::Reject => return Err(Reject::IntervalTooBrief(s.min_expires)),
            MinExpiresMode::Raise => expires = s.min_expires,
        }
    }
    if s.max_expires > 0 && expires > s.max_expires {
        expires = s.max_expires;
    }
    let q = match q_param {
        None => None,
        Some(v) => Some(parse_q(v.unwrap_or("")).ok_or(Reject::InvalidQ)?),
    };
    let instance = instance.flatten().filter(|i| !i.is_empty());
    let reg_id = match reg_id {
        None => 0,
        Some(v) => v
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(Reject::InvalidRegId)?,
    };
    let methods = match methods {
        Some(Some(list)) => methods::mask(list.as_bytes()),
        _ => req
            .raw
            .headers_named(HeaderName::Allow)
            .map(methods::mask)
            .reduce(|a, b| a | b)
            .unwrap_or(methods::ALL),
    };
    Ok(Plan {
        contact,
        expires,
        q,
        instance,
        reg_id,
        methods,
        existing: None,
        superseded: false,
    })
}

/// q-value: `0`, `1`, or `0.` / `1.` with up to three decimals (RFC 3261
/// §25.1), in thousandths.
pub fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, d) in frac.bytes().enumerate() {
        thousandths += u16::from(d - b'0') * [100, 10, 1][i];
    }
    let q = whole * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

/// Which stored binding a contact refers to: with `+sip.instance`, the
/// binding of the same instance and `reg-id` (absent counts as 0), as
/// Kamailio's `get_ucontact_by_instance` finds it, whatever its URI (RFC
/// 5626 §6: a phone that reconnects over a new TCP source port, or a new
/// flow of the same instance, replaces the old binding instead of leaving
/// it behind); without one, by its URI ([`find_contact`]).
fn find(current: &[Binding], p: &Plan<'_>) -> Option<usize> {
    if let Some(instance) = p.instance {
        return current
            .iter()
            .position(|b| b.reg_id == p.reg_id && b.instance() == Some(instance));
    }
    find_contact(current, &p.contact.uri)
}

fn same_binding(p: &Plan<'_>, instance: Option<&str>, reg_id: u32, uri: &Uri<'_>) -> bool {
    match instance {
        Some(i) => p.instance == Some(i) && p.reg_id == reg_id,
        None => p.contact.uri.equivalent(uri),
    }
}

/// Whether `binding`'s Contact is `uri`: the same bytes or, failing that,
/// the same URI by RFC 3261 §19.1.4 (a stored Contact that does not parse
/// matches only byte for byte). The one rule REGISTER and the control API
/// (`ul.add`, `ul.rm_contact`) share, so a binding one of them made is
/// found by the other.
pub fn has_contact(binding: &Binding, uri: &Uri<'_>) -> bool {
    let stored = binding.contact();
    stored == uri.raw || Uri::parse(stored.as_bytes()).is_some_and(|s| s.equivalent(uri))
}

/// The first of `bindings` whose Contact is `uri` ([`has_contact`]).
pub fn find_contact(bindings: &[Binding], uri: &Uri<'_>) -> Option<usize> {
    bindings.iter().position(|b| has_contact(b, uri))
}

/// Path header values (RFC 3327), checked and joined in order.
fn path_of(req: &Request<'_>) -> Result<Option<Box<str>>, Reject> {
    let mut path = String::new();
    for value in req.raw.headers_named(HeaderName::Path) {
        if NameAddrList::new(value).any(|r| r.is_err()) {
            return Err(Reject::Parse(ParseError::Malformed(HeaderName::Path)));
        }
        if !path.is_empty() {
            path.push(',');
        }
        path.push_str(
            std::str::from_utf8(value)
                .map_err(|_| Reject::Parse(ParseError::Malformed(HeaderName::Path)))?,
        );
    }
    Ok((!path.is_empty()).then(|| path.into_boxed_str()))
}

/// `cflags` with the NAT bit (`nat_bflag`) set or cleared by what this
/// REGISTER shows (`nat_uac_test`, [`super::nat`]): a phone that moves
/// behind a NAT, or out of one, is marked anew at each REGISTER, as
/// Kamailio's per-request branch flags are. Untouched when detection is
/// off or the request has no known source.
fn nat_cflags(cflags: u32, req: &Request<'_>, p: &Plan<'_>, ctx: &Context<'_>) -> u32 {
    let tests = ctx.settings.nat_uac_test;
    let Some(source) = ctx.source.filter(|_| tests != 0) else {
        return cflags;
    };
    let evidence = super::nat::Evidence {
        contact_host: p.contact.uri.host,
        via_host: req.top_via.host,
        via_port: req.top_via.port,
        tls: source.proto.is_secure(),
        source: source.remote,
    };
    let bit = super::nat::bit(ctx.settings.nat_bflag);
    if super::nat::is_nated(tests, &evidence) {
        cflags | bit
    } else {
        cflags & !bit
    }
}

fn new_binding(
    req: &Request<'_>,
    p: &Plan<'_>,
    ctx: &Context<'_>,
    expires_at: u64,
    user_agent: Option<&[u8]>,
    path: Option<&str>,
    ruid: Ruid<'_>,
) -> Binding {
    Binding::new(Parts {
        contact: p.contact.uri.raw,
        expires_at,
        q: p.q,
        call_id: req.call_id,
        cseq: req.cseq.seq,
        user_agent: user_agent.map(|ua| match ctx.user_agents {
            Some(cache) => cache.get(ua),
            None => Arc::from(String::from_utf8_lossy(ua).as_ref()),
        }),
        source: ctx.source,
        path,
        instance: p.instance,
        reg_id: p.reg_id,
        methods: p.methods,
        flags: 0,
        cflags: nat_cflags(0, req, p, ctx),
        ruid,
        last_modified: ctx.now,
        server_id: ctx.settings.server_id,
    })
}

/// `s` cut to at most `max` bytes, at a UTF-8 character boundary when it
/// is UTF-8: a User-Agent longer than `user_agent_max_size` is stored cut
/// rather than refused (it only describes the phone; refusing would lock
/// out a phone model for its banner).
pub fn cut(s: &[u8], max: usize) -> &[u8] {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    // Back off continuation bytes (10xxxxxx), at most three.
    while end > 0 && end + 3 >= max && s[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    &s[..end]
}

/// What applying `changes` to `current` adds to the location table, for
/// [`crate::usrloc::LocationTable::admit`]: bindings added less those
/// removed, and their estimated bytes.
pub fn growth(current: &[Binding], changes: &[Change]) -> Growth {
    let mut removed: SmallVec<[usize; 4]> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Remove { index } if *index < current.len() => Some(*index),
            _ => None,
        })
        .collect();
    removed.sort_unstable();
    removed.dedup();
    let mut g = Growth::default();
    for &i in &removed {
        g.bindings -= 1;
        g.bytes -= current[i].footprint() as i64;
    }
    for c in changes {
        match c {
            Change::Add(b) => {
                let a = Growth::add(b);
                g.bindings += a.bindings;
                g.bytes += a.bytes;
            }
            Change::Replace { index, binding } if !removed.contains(index) => {
                if let Some(old) = current.get(*index) {
                    g.bytes += Growth::replace(old, binding).bytes;
                }
            }
            _ => {}
        }
    }
    g
}

/// Applies an [`Outcome`]'s changes to the list they were computed from.
pub fn apply(bindings: &mut Vec<Binding>, changes: Vec<Change>) {
    let mut removals: SmallVec<[usize; 4]> = SmallVec::new();
    let mut adds: SmallVec<[Binding; 2]> = SmallVec::new();
    for change in changes {
        match change {
            Change::Add(b) => adds.push(b),
            Change::Refresh { index, refresh: r } => {
                if let Some(b) = bindings.get_mut(index) {
                    b.expires_at = r.expires_at;
                    b.cseq = r.cseq;
                    b.q = r.q;
                    b.set_source(r.source);
                    b.reg_id = r.reg_id;
                    b.methods = r.methods;
                    b.last_modified = r.last_modified;
                    b.cflags = r.cflags;
                }
            }
            Change::Replace { index, binding } => {
                if let Some(b) = bindings.get_mut(index) {
                    *b = binding;
                }
            }
            Change::Remove { index } => removals.push(index),
        }
    }
    removals.sort_unstable();
    removals.dedup();
    for index in removals.into_iter().rev() {
        if index < bindings.len() {
            bindings.remove(index);
        }
    }
    // Exact growth: most AoRs hold one or two bindings for hours, and Vec's
    // doubling would leave room for four.
    bindings.reserve_exact(adds.len());
    bindings.extend(adds);
}
