//! One contact binding of an address-of-record: what Kamailio's usrloc
//! calls a `ucontact`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::route::Proto;

/// Where a binding came from: the transport, the sender's address and our
/// socket that received it. Kept as addresses, not strings: they are
/// formatted only when someone looks (`ul.dump`), never per REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub proto: Proto,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// A binding: "reach this AoR at this contact until `expires_at`".
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact URI exactly as the UA sent it.
    pub contact: Box<str>,
    /// Absolute expiry in Unix seconds; [`PERMANENT`] never expires.
    pub expires_at: u64,
    /// q-value in thousandths (`q=0.5` → 500); `None` when the UA gave none.
    pub q: Option<u16>,
    pub call_id: Box<str>,
    pub cseq: u32,
    /// Shared: thousands of phones send the same few User-Agent strings.
    pub user_agent: Option<Arc<str>>,
    pub source: Option<Source>,
    /// Path header values (RFC 3327), comma-joined, when `use_path` is on.
    pub path: Option<Box<str>>,
    /// `+sip.instance` value without quotes (RFC 5626).
    pub instance: Option<Box<str>>,
    /// `reg-id` (RFC 5626); 0 when absent.
    pub reg_id: u32,
    /// Kamailio's method bitmask (from a `methods` param); `u32::MAX` = all.
    pub methods: u32,
    pub flags: u32,
    pub cflags: u32,
    /// Unique id of the binding (Kamailio's `ruid`).
    pub ruid: Box<str>,
    /// Unix seconds of the last change.
    pub last_modified: u64,
}

/// `expires_at` of a binding that never expires (`ul.add` with expires 0).
pub const PERMANENT: u64 = u64::MAX;

impl Binding {
    pub fn is_permanent(&self) -> bool {
        self.expires_at == PERMANENT
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

#[cfg(test)]
impl Binding {
    /// A minimal binding for tests: `contact` until `expires_at`, every
    /// other field at its neutral value. Tests adjust what they need.
    pub(crate) fn for_test(contact: &str, expires_at: u64) -> Binding {
        Binding {
            contact: contact.into(),
            expires_at,
            q: None,
            call_id: "c".into(),
            cseq: 1,
            user_agent: None,
            source: None,
            path: None,
            instance: None,
            reg_id: 0,
            methods: u32::MAX,
            flags: 0,
            cflags: 0,
            ruid: "r".into(),
            last_modified: 0,
        }
    }
}
