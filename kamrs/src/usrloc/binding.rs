//! One contact binding of an address-of-record: what Kamailio's usrloc
//! calls a `ucontact`.
//!
//! Memory layout (the goal, issue 20: at most 300 bytes of PSS per
//! binding, table overhead included): a binding's strings (contact, Call-ID, Path, instance and a
//! ruid that is not one of ours) share one allocation, read back through
//! accessors; ruids this process made are kept as their counter only
//! ([`Ruid`]); the local socket of [`Source`] is shared between bindings.
//! Callers build bindings from [`Parts`] and read them through methods, so
//! the packing stays private to this file.

use std::borrow::Cow;
use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::peer::{ConnId, Peer, Proto};

/// Where a binding came from: the transport, the sender's address and our
/// socket that received it. The same type as the request's [`Peer`], so the
/// registrar hands it over as is. Kept as addresses, not strings: they are
/// formatted only when someone looks (`ul.dump`), never per REGISTER.
pub type Source = Peer;

/// [`Source`] as stored: our socket is one of a handful of listeners, so it
/// is shared (8 bytes instead of 32 per binding), and the sender's address
/// takes 16 bytes instead of 32 (IPv6 ones, rarer, are boxed).
#[derive(Clone, PartialEq, Eq)]
struct PackedSource {
    remote: Remote,
    local: Arc<SocketAddr>,
    /// The connection a stream registration came on; never stored (a
    /// connection does not outlive the process).
    conn: Option<ConnId>,
    proto: Proto,
}

#[derive(Clone, PartialEq, Eq)]
enum Remote {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl Remote {
    fn pack(a: SocketAddr) -> Remote {
        match a {
            SocketAddr::V4(a) => Remote::V4(a),
            SocketAddr::V6(a) => Remote::V6(Box::new(a)),
        }
    }

    fn unpack(&self) -> SocketAddr {
        match self {
            Remote::V4(a) => SocketAddr::V4(*a),
            Remote::V6(a) => SocketAddr::V6(**a),
        }
    }
}

/// Local sockets seen so far, shared by every binding that names them.
/// Bounded: past it (a store naming thousands of sockets) a binding just
/// gets its own copy, which is correct, only bigger.
static LOCALS: Mutex<Vec<Arc<SocketAddr>>> = Mutex::new(Vec::new());
const MAX_LOCALS: usize = 64;

thread_local! {
    /// The socket this thread last shared. A UDP worker serves one socket,
    /// so a new binding's local socket is almost always this one, and the
    /// insert path takes no process-wide lock.
    static LAST_LOCAL: std::cell::RefCell<Option<Arc<SocketAddr>>> =
        const { std::cell::RefCell::new(None) };
}

fn shared_local(addr: SocketAddr) -> Arc<SocketAddr> {
    let cached = LAST_LOCAL.with_borrow(|last| last.as_ref().filter(|a| ***a == addr).cloned());
    if let Some(a) = cached {
        return a;
    }
    let a = {
        let mut locals = LOCALS.lock().unwrap_or_else(PoisonError::into_inner);
        match locals.iter().find(|a| ***a == addr) {
            Some(a) => Arc::clone(a),
            None => {
                let a = Arc::new(addr);
                if locals.len() < MAX_LOCALS {
                    locals.push(Arc::clone(&a));
                }
                a
            }
        }
    };
    LAST_LOCAL.set(Some(Arc::clone(&a)));
    a
}

impl PackedSource {
    fn pack(s: Source, old: Option<&PackedSource>) -> PackedSource {
        // A refresh from the same socket (the common case) reuses the
        // binding's own copy without touching the shared list.
        let local = match old {
            Some(o) if *o.local == s.local => Arc::clone(&o.local),
            _ => shared_local(s.local),
        };
        PackedSource {
            remote: Remote::pack(s.remote),
            local,
            conn: s.conn,
            proto: s.proto,
        }
    }

    fn unpack(&self) -> Source {
        Source {
            proto: self.proto,
            remote: self.remote.unpack(),
            local: *self.local,
            conn: self.conn,
        }
    }
}

/// Kamailio's unique id of a binding. Ids this process makes are
/// `<prefix>-<counter in hex>` with one prefix per process, so only the
/// counter is stored; any other id (read from a store, made by another
/// node or an earlier run) is kept as text. Every id has exactly one form
/// (text that matches our pattern is parsed into the counter), so equal ids
/// compare equal whatever their origin.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ruid<'a>(RuidRepr<'a>);

#[derive(Clone, PartialEq, Eq, Hash)]
enum RuidRepr<'a> {
    /// One of ours; never 0.
    Local(u64),
    Text(Cow<'a, str>),
}

static RUID_COUNTER: AtomicU64 = AtomicU64::new(1);

/// This process's ruid prefix. Unique across restarts and nodes: start
/// time, pid and a random part (nodes sharing a store (redis) can start in
/// the same second with the same pid, in containers, and equal ruids of one
/// AoR would overwrite each other there).
fn ruid_prefix() -> &'static str {
    static PREFIX: OnceLock<Box<str>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        format!(
            "uloc-{:x}-{:x}-{:x}",
            super::unix_now(),
            std::process::id(),
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8)
                as u32
        )
        .into_boxed_str()
    })
}

impl Ruid<'static> {
    /// A new id, unique across restarts and nodes, for every binding
    /// however it is made (REGISTER or `ul.add`).
    pub fn generate() -> Ruid<'static> {
        Ruid(RuidRepr::Local(
            RUID_COUNTER.fetch_add(1, Ordering::Relaxed).max(1),
        ))
    }
}

impl<'a> Ruid<'a> {
    /// The id written as `s`.
    pub fn parse(s: &'a str) -> Ruid<'a> {
        match Self::local_counter(s) {
            Some(n) => Ruid(RuidRepr::Local(n)),
            None => Ruid(RuidRepr::Text(Cow::Borrowed(s))),
        }
    }

    /// The counter of `s` if it is exactly how [`Display`](fmt::Display)
    /// writes one of ours: lower-case hex, no leading zero, not 0.
    fn local_counter(s: &str) -> Option<u64> {
        let hex = s.strip_prefix(ruid_prefix())?.strip_prefix('-')?;
        let canonical = !hex.is_empty()
            && hex.len() <= 16
            && !hex.starts_with('0')
            && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if canonical {
            u64::from_str_radix(hex, 16).ok()
        } else {
            None
        }
    }

    pub fn into_owned(self) -> Ruid<'static> {
        Ruid(match self.0 {
            RuidRepr::Local(n) => RuidRepr::Local(n),
            RuidRepr::Text(t) => RuidRepr::Text(Cow::Owned(t.into_owned())),
        })
    }

    /// Appends the id's text (as [`Display`](fmt::Display) writes it) to
    /// `out`, without allocating: keepalive writes one into every ping.
    pub fn write_into(&self, out: &mut impl Extend<u8>) {
        match &self.0 {
            RuidRepr::Local(n) => {
                out.extend(ruid_prefix().bytes());
                out.extend([b'-']);
                crate::util::push_hex_u64(out, *n);
            }
            RuidRepr::Text(t) => out.extend(t.bytes()),
        }
    }

    /// The id as text, e.g. for a store.
    pub fn to_boxed_str(&self) -> Box<str> {
        match &self.0 {
            RuidRepr::Local(_) => self.to_string().into_boxed_str(),
            RuidRepr::Text(t) => Box::from(&**t),
        }
    }
}

impl fmt::Display for Ruid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            RuidRepr::Local(n) => write!(f, "{}-{n:x}", ruid_prefix()),
            RuidRepr::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for Ruid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl PartialEq<str> for Ruid<'_> {
    fn eq(&self, other: &str) -> bool {
        *self == Ruid::parse(other)
    }
}

impl PartialEq<&str> for Ruid<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == Ruid::parse(other)
    }
}

impl<'a> From<&'a str> for Ruid<'a> {
    fn from(s: &'a str) -> Self {
        Ruid::parse(s)
    }
}

/// Everything a binding holds, as plain fields: what callers build a
/// [`Binding`] from.
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    /// The Contact URI exactly as the UA sent it.
    pub contact: &'a str,
    /// Absolute expiry in Unix seconds; [`PERMANENT`] never expires.
    pub expires_at: u64,
    /// q-value in thousandths (`q=0.5` → 500); `None` when the UA gave none.
    pub q: Option<u16>,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Shared: thousands of phones send the same few User-Agent strings.
    pub user_agent: Option<Arc<str>>,
    pub source: Option<Source>,
    /// Path header values (RFC 3327), comma-joined, when `use_path` is on.
    pub path: Option<&'a str>,
    /// `+sip.instance` value without quotes (RFC 5626).
    pub instance: Option<&'a str>,
    /// `reg-id` (RFC 5626); 0 when absent.
    pub reg_id: u32,
    /// Kamailio's method bitmask (from a `methods` param); `u32::MAX` = all.
    pub methods: u32,
    pub flags: u32,
    pub cflags: u32,
    /// Unique id of the binding (Kamailio's `ruid`).
    pub ruid: Ruid<'a>,
    /// Unix seconds of the last change.
    pub last_modified: u64,
    /// The `server_id` of the node that holds the binding's flow (in a
    /// cluster sharing a store, the only one that can reach the phone).
    pub server_id: u32,
}

/// Top bit of `ends[2]` / `ends[3]`: the Path / the instance is present
/// (`None` and `Some("")` differ). Kept in the offsets rather than in a
/// byte of its own: that byte made a binding 160 bytes instead of 152,
/// and the allocator's chunk 176 instead of 160.
const PRESENT: u32 = 1 << 31;
/// The offset part of an `ends` entry.
const OFFSET: u32 = PRESENT - 1;

/// A binding: "reach this AoR at this contact until `expires_at`".
/// Strings are read with [`contact`](Self::contact) and friends; the
/// numbers are plain fields.
#[derive(Clone, PartialEq)]
pub struct Binding {
    /// contact, Call-ID, Path, instance, then a text ruid, back to back.
    text: Box<str>,
    /// Where contact, Call-ID, Path and instance end in `text` (the low
    /// 31 bits), with [`PRESENT`] on the Path's and the instance's.
    ends: [u32; 4],
    /// Counter of a ruid of ours; 0 when the ruid is the tail of `text`.
    ruid: u64,
    source: Option<PackedSource>,
    /// Absolute expiry in Unix seconds; [`PERMANENT`] never expires.
    pub expires_at: u64,
    /// q-value in thousandths (`q=0.5` → 500); `None` when the UA gave none.
    pub q: Option<u16>,
    pub cseq: u32,
    /// Shared: thousands of phones send the same few User-Agent strings.
    pub user_agent: Option<Arc<str>>,
    /// `reg-id` (RFC 5626); 0 when absent.
    pub reg_id: u32,
    /// Kamailio's method bitmask (from a `methods` param); `u32::MAX` = all.
    pub methods: u32,
    pub flags: u32,
    pub cflags: u32,
    /// Unix seconds of the last change.
    pub last_modified: u64,
    /// The `server_id` of the node that holds the binding's flow.
    pub server_id: u32,
    /// Round trip of the last answered keepalive, µs (0: none yet).
    /// Like `last_keepalive_us`, runtime state: never stored, not part of
    /// [`Parts`], and not a change a store hears of.
    pub ka_roundtrip_us: u32,
    /// Unix µs when a keepalive reply last proved the flow alive (0: none
    /// since this process has held the binding).
    pub last_keepalive_us: u64,
}

/// `expires_at` of a binding that never expires (`ul.add` with expires 0).
pub const PERMANENT: u64 = u64::MAX;

impl Binding {
    pub fn new(p: Parts<'_>) -> Binding {
        let (ruid, ruid_text) = match &p.ruid.0 {
            RuidRepr::Local(n) => (*n, ""),
            RuidRepr::Text(t) => (0, &**t),
        };
        let path = p.path.unwrap_or("");
        let instance = p.instance.unwrap_or("");
        let mut text = String::with_capacity(
            p.contact.len() + p.call_id.len() + path.len() + instance.len() + ruid_text.len(),
        );
        let mut ends = [0u32; 4];
        for (end, s) in ends.iter_mut().zip([p.contact, p.call_id, path, instance]) {
            text.push_str(s);
            // Strings come from one SIP message or one store row; 2 GiB
            // cannot occur, and saturating keeps the accessors in bounds.
            *end = u32::try_from(text.len()).unwrap_or(OFFSET).min(OFFSET);
        }
        if p.path.is_some() {
            ends[2] |= PRESENT;
        }
        if p.instance.is_some() {
            ends[3] |= PRESENT;
        }
        text.push_str(ruid_text);
        Binding {
            text: text.into_boxed_str(),
            ends,
            ruid,
            source: p.source.map(|s| PackedSource::pack(s, None)),
            expires_at: p.expires_at,
            q: p.q,
            cseq: p.cseq,
            user_agent: p.user_agent,
            reg_id: p.reg_id,
            methods: p.methods,
            flags: p.flags,
            cflags: p.cflags,
            last_modified: p.last_modified,
            server_id: p.server_id,
            ka_roundtrip_us: 0,
            last_keepalive_us: 0,
        }
    }

    /// All fields, for a copy with some changed: `Binding::new(Parts { x, ..b.parts() })`.
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            contact: self.contact(),
            expires_at: self.expires_at,
            q: self.q,
            call_id: self.call_id(),
            cseq: self.cseq,
            user_agent: self.user_agent.clone(),
            source: self.source(),
            path: self.path(),
            instance: self.instance(),
            reg_id: self.reg_id,
            methods: self.methods,
            flags: self.flags,
            cflags: self.cflags,
            ruid: self.ruid(),
            last_modified: self.last_modified,
            server_id: self.server_id,
        }
    }

    /// Piece `i` of `text`: from the end of the previous one to `ends[i]`
    /// (`i == 4`: the rest). Never panics; offsets are set by `new`.
    fn piece(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(j) => self.ends.get(j).map_or(0, |&e| (e & OFFSET) as usize),
            None => 0,
        };
        let end = self
            .ends
            .get(i)
            .map_or(self.text.len(), |&e| (e & OFFSET) as usize);
        self.text.get(start..end).unwrap_or("")
    }

    /// The Contact URI exactly as the UA sent it.
    pub fn contact(&self) -> &str {
        self.piece(0)
    }

    pub fn call_id(&self) -> &str {
        self.piece(1)
    }

    /// Path header values (RFC 3327), comma-joined, when `use_path` is on.
    pub fn path(&self) -> Option<&str> {
        (self.ends[2] & PRESENT != 0).then(|| self.piece(2))
    }

    /// `+sip.instance` value without quotes (RFC 5626).
    pub fn instance(&self) -> Option<&str> {
        (self.ends[3] & PRESENT != 0).then(|| self.piece(3))
    }

    /// Unique id of the binding (Kamailio's `ruid`).
    pub fn ruid(&self) -> Ruid<'_> {
        match self.ruid {
            0 => Ruid(RuidRepr::Text(Cow::Borrowed(self.piece(4)))),
            n => Ruid(RuidRepr::Local(n)),
        }
    }

    pub fn source(&self) -> Option<Source> {
        self.source.as_ref().map(PackedSource::unpack)
    }

    /// The stream connection this binding was registered over, while this
    /// process runs.
    pub fn conn(&self) -> Option<ConnId> {
        self.source.as_ref().and_then(|s| s.conn)
    }

    pub fn set_source(&mut self, source: Option<Source>) {
        self.source = source.map(|s| PackedSource::pack(s, self.source.as_ref()));
    }

    pub fn is_permanent(&self) -> bool {
        self.expires_at == PERMANENT
    }

    /// An estimate of the heap and inline bytes this binding holds, for
    /// `max_table_bytes`: its fixed size, its strings, a boxed IPv6
    /// sender, and its User-Agent as if not shared (a peer inventing one
    /// per REGISTER defeats the sharing, so the bound must not count on it).
    pub fn footprint(&self) -> usize {
        const ALLOC: usize = 16; // allocator bookkeeping per allocation
        let v6 = match self.source.as_ref().map(|s| &s.remote) {
            Some(Remote::V6(_)) => std::mem::size_of::<SocketAddrV6>() + ALLOC,
            _ => 0,
        };
        std::mem::size_of::<Binding>()
            + self.text.len()
            + ALLOC
            + self.user_agent.as_ref().map_or(0, |u| u.len() + 16 + ALLOC)
            + v6
    }

    /// Unix µs since when the binding's flow is known alive: its last
    /// answered keepalive or, if later, its last REGISTER (Kamailio stamps
    /// `last_keepalive` at both). What `ka_timeout` is measured from.
    pub fn alive_since_us(&self) -> u64 {
        self.last_keepalive_us
            .max(self.last_modified.saturating_mul(1_000_000))
    }

    /// Whether the binding is still current at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    /// Seconds left at `now` (0 once expired; `u64::MAX` when permanent).
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.parts(), f)
    }
}

#[cfg(test)]
impl Binding {
    /// A minimal binding for tests: `contact` until `expires_at`, every
    /// other field at its neutral value. Tests adjust what they need.
    pub(crate) fn for_test(contact: &str, expires_at: u64) -> Binding {
        Binding::new(Parts {
            contact,
            expires_at,
            q: None,
            call_id: "c",
            cseq: 1,
            user_agent: None,
            source: None,
            path: None,
            instance: None,
            reg_id: 0,
            methods: u32::MAX,
            flags: 0,
            cflags: 0,
            ruid: Ruid::parse("r"),
            last_modified: 0,
            server_id: 0,
        })
    }

    /// This binding with another ruid.
    pub(crate) fn with_ruid(&self, ruid: &str) -> Binding {
        Binding::new(Parts {
            ruid: Ruid::parse(ruid),
            ..self.parts()
        })
    }
}

#[cfg(test)]
mod packing_tests;
