//! Building replies statelessly (RFC 3261 §8.2.6, RFC 3581).
//!
//! A reply copies every Via in order (the top one gets `received` and
//! `rport`), From, To (with our tag added when it had none), Call-ID and
//! CSeq, then adds `Server` and whatever the caller appends, and ends with
//! `Content-Length: 0`. Everything is written into a caller-owned buffer so
//! the hot path allocates nothing.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use super::header::HeaderName;
use super::message::{RawRequest, Request};
use super::name_addr::NameAddr;
use super::scan::{quoted_end, trim};
use super::via::Via;
use crate::peer::Peer;

/// Writes a complete reply to a validated request.
pub fn write(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    peer: &Peer,
    status: u16,
    reason: &str,
    extra: &[(&str, &str)],
) {
    begin(out, req, peer, status, reason);
    for (name, value) in extra {
        header(out, name, value);
    }
    finish(out);
}

/// Writes a complete reply to a request that failed validation but whose
/// top Via survived. Writes nothing when it did not.
pub fn write_raw(out: &mut Vec<u8>, raw: &RawRequest<'_>, peer: &Peer, status: u16, reason: &str) {
    let Some(via) = raw.top_via.as_ref() else {
        return;
    };
    let to_has_tag = raw
        .header(HeaderName::To)
        .and_then(NameAddr::parse)
        .is_some_and(|to| to.tag().is_some());
    begin_with(out, raw, via, to_has_tag, peer, status, reason);
    finish(out);
}

/// Writes the status line and the copied headers; append more with
/// [`header`], end with [`finish`].
pub fn begin(out: &mut Vec<u8>, req: &Request<'_>, peer: &Peer, status: u16, reason: &str) {
    begin_with(
        out,
        &req.raw,
        &req.top_via,
        req.to.tag().is_some(),
        peer,
        status,
        reason,
    );
}

/// Appends one header line.
pub fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Ends the header section; replies from kamrs carry no body.
pub fn finish(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

fn begin_with(
    out: &mut Vec<u8>,
    raw: &RawRequest<'_>,
    top_via: &Via<'_>,
    to_has_tag: bool,
    peer: &Peer,
    status: u16,
    reason: &str,
) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    write_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut first_via = true;
    for h in &raw.headers {
        match h.name {
            HeaderName::Via if first_via => {
                first_via = false;
                out.extend_from_slice(b"Via: ");
                write_top_via(out, top_via, peer.remote);
                out.extend_from_slice(&h.value[top_via.end.min(h.value.len())..]);
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::Via => copy(out, "Via", h.value),
            HeaderName::From => copy(out, "From", h.value),
            HeaderName::CallId => copy(out, "Call-ID", h.value),
            HeaderName::CSeq => copy(out, "CSeq", h.value),
            HeaderName::To => {
                out.extend_from_slice(b"To: ");
                out.extend_from_slice(h.value);
                if !to_has_tag {
                    out.extend_from_slice(b";tag=");
                    write_hex16(out, to_tag(raw, top_via));
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"Server: ");
    out.extend_from_slice(crate::SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn copy(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The top Via with `rport` filled in and `received` added (RFC 3581 §4,
/// RFC 3261 §18.2.1). An existing `received` is replaced, not duplicated.
pub fn write_top_via(out: &mut Vec<u8>, via: &Via<'_>, remote: SocketAddr) {
    out.extend_from_slice(via.head);
    let rport = via.has_rport();
    let mut params = via.params.raw();
    while let Some(p) = next_param(&mut params) {
        let name = p.split(|&b| b == b'=').next().map(trim).unwrap_or(b"");
        if name.eq_ignore_ascii_case(b"received") {
            continue;
        }
        out.push(b';');
        if name.eq_ignore_ascii_case(b"rport") {
            out.extend_from_slice(b"rport=");
            write_u64(out, u64::from(remote.port()));
        } else {
            out.extend_from_slice(p);
        }
    }
    if rport || !via.host_is(remote.ip()) {
        let ip = match remote.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        out.extend_from_slice(b";received=");
        match ip {
            // The common case, without core::fmt (it showed in profiles).
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                for (i, octet) in [a, b, c, d].into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    write_u64(out, u64::from(octet));
                }
            }
            // Writing into a Vec cannot fail.
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
    }
}

/// Appends `n` in decimal. Replies carry several integers (status, rport,
/// expires); core::fmt's machinery costs more than the digits themselves.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `n` as 16 lower-case hex digits (what `{:016x}` writes).
fn write_hex16(out: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out.extend_from_slice(&digits);
}

/// Cuts the next `;param` (trimmed, without the `;`) off `rest`, honouring
/// quoted values that contain `;`.
fn next_param<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let s = *rest;
    let start = memchr::memchr(b';', s)? + 1;
    let mut i = start;
    while i < s.len() && s[i] != b';' {
        if s[i] == b'"' {
            i = quoted_end(s, i).unwrap_or(s.len());
        } else {
            i += 1;
        }
    }
    *rest = &s[i..];
    let p = trim(&s[start..i]);
    if p.is_empty() {
        return next_param(rest);
    }
    Some(p)
}

/// Our To tag: the same for retransmissions of one request, different for
/// different requests, unguessable across restarts (a per-process random
/// seed), and cheap — no state is kept.
fn to_tag(raw: &RawRequest<'_>, via: &Via<'_>) -> u64 {
    static SEED: OnceLock<std::hash::RandomState> = OnceLock::new();
    let mut h = SEED.get_or_init(std::hash::RandomState::new).build_hasher();
    h.write(raw.header(HeaderName::CallId).unwrap_or(b""));
    h.write(raw.header(HeaderName::From).unwrap_or(b""));
    h.write(raw.header(HeaderName::CSeq).unwrap_or(b""));
    h.write(via.branch().unwrap_or("").as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests;
