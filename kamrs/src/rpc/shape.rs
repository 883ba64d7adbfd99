//! A binding as Kamailio's `ul.dump` shows it: the conversion from
//! [`Binding`] to [`common::types::Contact`], done only when someone looks,
//! never per REGISTER.

use std::net::SocketAddr;

use common::types::{Contact, Expires, NOT_SET};

use crate::peer::Proto;
use crate::usrloc::{q_to_number, Binding, Source};

/// `State` of every binding: nothing persists the table yet, which is
/// what Kamailio shows in db_mode 0.
const STATE: &str = "CS_NEW";

pub use common::types::{core_hash, SLOTS};

/// The binding as a `Contact` object, with `Expires` relative to `now`.
/// `nat_bit` is the `cflags` bit that marks a NATed binding (`nat_bflag`),
/// shown as `Keepalive`.
pub fn contact(b: &Binding, now: u64, nat_bit: u32) -> Contact {
    let expires = if b.is_permanent() {
        Expires::Permanent
    } else if b.is_live(now) {
        Expires::Seconds(b.remaining(now))
    } else {
        Expires::Expired
    };
    let last_modified = i64::try_from(b.last_modified).unwrap_or(i64::MAX);
    Contact {
        address: b.contact().to_string(),
        expires,
        q: q_to_number(b.q),
        call_id: b.call_id().to_string(),
        cseq: b.cseq,
        user_agent: or_not_set(b.user_agent.as_deref()),
        received: b
            .source()
            .as_ref()
            .map_or_else(|| NOT_SET.to_owned(), received),
        path: or_not_set(b.path()),
        state: STATE.to_owned(),
        flags: b.flags,
        cflags: b.cflags,
        socket: b
            .source()
            .as_ref()
            .map_or_else(|| NOT_SET.to_owned(), socket),
        methods: b.methods,
        ruid: or_not_set(Some(&b.ruid().to_string())),
        instance: or_not_set(b.instance()),
        reg_id: b.reg_id,
        server_id: i32::try_from(b.server_id).unwrap_or(i32::MAX),
        // The connection a TCP binding came on; Kamailio's -1 for none.
        tcpconn_id: b
            .conn()
            .map_or(-1, |c| i64::try_from(c.get()).unwrap_or(i64::MAX)),
        keepalive: u32::from(b.cflags & nat_bit != 0),
        // Kamailio stamps the last keepalive at each REGISTER too.
        last_keepalive: i64::try_from(b.alive_since_us() / 1_000_000).unwrap_or(i64::MAX),
        ka_roundtrip: b.ka_roundtrip_us,
        last_modified,
    }
}

fn or_not_set(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => NOT_SET.to_owned(),
    }
}

/// Where the REGISTER came from, as Kamailio writes `received`: a SIP URI
/// with the transport when it is not UDP.
pub fn received(src: &Source) -> String {
    let host = host_port(src.remote);
    match src.proto {
        Proto::Udp => format!("sip:{host}"),
        other => format!("sip:{host};transport={}", other.as_str()),
    }
}

/// Our socket that received it, as Kamailio's `sock_str`:
/// `udp:127.0.0.1:5060`, `tcp:[::1]:5060`.
pub fn socket(src: &Source) -> String {
    format!("{}:{}", src.proto.as_str(), host_port(src.local))
}

fn host_port(a: SocketAddr) -> String {
    // SocketAddr's Display already brackets IPv6 (`[::1]:5060`).
    a.to_string()
}

#[cfg(test)]
mod tests;
