//! How large a UDP reply may be, and whether a 200 will fit before the
//! REGISTER changes anything.
//!
//! RFC 3261 §10.3 step 8 says the 200 lists *every* current binding, so a
//! 200 that leaves some out would tell the UA a falsehood about its
//! bindings. A reply that does not fit is therefore not trimmed: the
//! REGISTER is refused with `500 Reply Too Large For UDP, Use TCP` before
//! any change is made, so the 500 means what a 500 always means ("not
//! done"), and the same request over TCP gets the full list. (Sending it
//! anyway is no option: past 65,507 bytes the kernel refuses the datagram,
//! and the UA used to get silence while its change was applied.)
//!
//! Two budgets apply over UDP:
//! - the datagram: `udp_reply_max_size` (default 65,507, the most an IPv4
//!   UDP datagram carries; lower it to keep replies under a path MTU);
//! - for a request nobody authenticated, at most [`AMPLIFICATION`] times
//!   the request's size, but never less than [`FLOOR`]: UDP sources are
//!   spoofable, and without this a 142-byte query drew a 63 KB reply aimed
//!   at whoever's address it carried. With digest authentication on, a
//!   REGISTER reaches this point only with valid credentials, and its 401
//!   challenge is small.
//!
//! The 200 is checked against a bound computed from the lengths of what it
//! will list, never by writing it twice: the head (status line and copied
//! headers) is written first and measured, the rest is bounded per Contact
//! by [`contact_line_bound`].

use super::save::Change;
use crate::usrloc::Binding;

/// Replies to unauthenticated UDP requests are at most this many times
/// the request's size…
pub const AMPLIFICATION: usize = 10;
/// …but may always be this large (RFC 3261 §18.1.1's figure for a message
/// that fits a typical path MTU): an ordinary 200 listing a few bindings
/// is never refused because its REGISTER was short.
pub const FLOOR: usize = 1300;

/// The most bytes a UDP reply to a `request_len`-byte request may have.
pub fn udp_reply_limit(datagram_max: usize, request_len: usize, authenticated: bool) -> usize {
    if authenticated {
        datagram_max
    } else {
        datagram_max.min(FLOOR.max(request_len.saturating_mul(AMPLIFICATION)))
    }
}

/// An upper bound of the `Contact:` line [`super::reply::ok_rest`] writes
/// for `b`: `Contact: <URI>;expires=N;q=0.nnn;+sip.instance="…";reg-id=N`.
pub fn contact_line_bound(b: &Binding) -> usize {
    // "Contact: <" + ">;expires=" + 20 digits + ";q=0.nnn" + CRLF
    const FIXED: usize = 10 + 10 + 20 + 8 + 2;
    // ";+sip.instance=\"" + "\"" + ";reg-id=" + 10 digits
    const INSTANCE: usize = 16 + 1 + 8 + 10;
    FIXED + b.contact().len() + b.instance().map_or(0, |i| i.len() + INSTANCE)
}

/// Date, Content-Length and the blank line after the Contacts.
const TAIL: usize = 64;

/// An upper bound of what [`super::reply::ok_rest`] writes once `changes`
/// are applied to `current`.
pub fn ok_rest_bound(current: &[Binding], changes: &[Change], echo_path: bool) -> usize {
    let mut total = TAIL;
    let mut path = 0usize;
    let mut count = |b: &Binding| {
        total += contact_line_bound(b);
        path = path.max(b.path().map_or(0, str::len));
    };
    for (i, b) in current.iter().enumerate() {
        let mut now = Some(b);
        for c in changes {
            match c {
                Change::Remove { index } if *index == i => now = None,
                Change::Replace { index, binding } if *index == i && now.is_some() => {
                    now = Some(binding)
                }
                _ => {}
            }
        }
        if let Some(b) = now {
            count(b);
        }
    }
    for c in changes {
        if let Change::Add(b) = c {
            count(b);
        }
    }
    if echo_path && path > 0 {
        total += "Path: \r\n".len() + path;
    }
    total
}

#[cfg(test)]
mod tests;
