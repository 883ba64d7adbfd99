//! Redirect mode: a `302 Moved Temporarily` (RFC 3261 §8.3, §21.3.3)
//! listing where the Request-URI's bindings are, for a caller that
//! forwards the request itself.
//!
//! One `Contact` header per binding, in the order given (the caller passes
//! [`Registrar::lookup`]'s result, highest q first), each with:
//! - `;q=` when the binding has one;
//! - `;received="sip:IP:PORT[;transport=…]"` when the REGISTER came from
//!   another address than its Contact names (a phone behind a NAT), in the
//!   form Kamailio's registrar gives the received URI (its `received_param`,
//!   with the transport added for anything but UDP, as nathelper records
//!   it); the Contact alone would not reach the phone;
//! - `;path="…"` with the binding's Path (RFC 3327), the proxies the
//!   request must traverse to reach it (quoted: it holds `<`, `,`, `;`).
//!
//! Over UDP the 302 is held to the registrar's reply budget
//! ([`super::budget`]: never more than 10× an unauthenticated request, at
//! least 1,300 bytes, at most `udp_reply_max_size`): Contacts are listed
//! in order while they fit and any that would not fit is left out (a
//! shorter one after it may still be listed). Over TCP, TLS and WebSocket
//! every binding is listed. The function returns how many it listed; 0
//! means the caller should answer 480 instead.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use super::{budget, reply::write_q, Registrar};
use crate::peer::{Peer, Proto};
use crate::sip::{reply, Request, Scheme, Uri};
use crate::usrloc::{Binding, Source};

/// `Date`-less tail after the Contacts: `Content-Length: 0` and the blank
/// line.
const TAIL: usize = "Content-Length: 0\r\n\r\n".len();

/// Writes a 302 listing `bindings` into `out`, bounded over UDP by the
/// budget for a request of unknown size from an unauthenticated sender
/// (the 1,300-byte floor). Returns how many Contacts it listed.
pub fn write_redirect(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    peer: &Peer,
    bindings: &[Binding],
) -> usize {
    let limit = (peer.proto == Proto::Udp).then(|| budget::udp_reply_limit(65_507, 0, false));
    write_redirect_limited(out, req, peer, bindings, limit)
}

/// [`write_redirect`] with an explicit byte limit (`None`: no limit).
pub fn write_redirect_limited(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    peer: &Peer,
    bindings: &[Binding],
    limit: Option<usize>,
) -> usize {
    reply::begin(out, req, peer, 302, "Moved Temporarily");
    let mut listed = 0;
    let mut line = Vec::with_capacity(256);
    for b in bindings {
        line.clear();
        contact_line(&mut line, b);
        if let Some(limit) = limit {
            if out.len() + line.len() + TAIL > limit {
                continue;
            }
        }
        out.extend_from_slice(&line);
        listed += 1;
    }
    reply::finish(out);
    listed
}

impl Registrar {
    /// [`write_redirect`] bounded as the registrar bounds its own UDP
    /// replies: by `udp_reply_max_size` and, the request being
    /// unauthenticated here, 10× its `request_len` bytes.
    pub fn write_redirect(
        &self,
        out: &mut Vec<u8>,
        req: &Request<'_>,
        peer: &Peer,
        request_len: usize,
        bindings: &[Binding],
    ) -> usize {
        let limit = (peer.proto == Proto::Udp)
            .then(|| budget::udp_reply_limit(self.settings.udp_reply_max_size, request_len, false));
        write_redirect_limited(out, req, peer, bindings, limit)
    }
}

/// `Contact: <URI>;q=…;received="…";path="…"` and CRLF.
fn contact_line(out: &mut Vec<u8>, b: &Binding) {
    out.extend_from_slice(b"Contact: <");
    out.extend_from_slice(b.contact().as_bytes());
    out.push(b'>');
    if let Some(q) = b.q {
        out.extend_from_slice(b";q=");
        write_q(out, q);
    }
    if let Some(source) = b.source().filter(|s| !reaches(b.contact(), s)) {
        out.extend_from_slice(b";received=\"sip:");
        write_addr(out, source.remote);
        if source.proto != Proto::Udp {
            out.extend_from_slice(b";transport=");
            out.extend_from_slice(source.proto.as_str().as_bytes());
        }
        out.push(b'"');
    }
    if let Some(path) = b.path().filter(|p| !p.is_empty()) {
        out.extend_from_slice(b";path=\"");
        for &c in path.as_bytes() {
            // A quoted-string escapes `"` and `\` (RFC 3261 §25.1).
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether the Contact URI names the address the REGISTER came from
/// (host an IP literal equal to it, port equal or the scheme's default):
/// then the received address adds nothing.
fn reaches(contact: &str, source: &Source) -> bool {
    let Some(uri) = Uri::parse(contact.as_bytes()) else {
        return false;
    };
    let host = uri.host.trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = host.parse::<IpAddr>() else {
        return false;
    };
    let default_port = match (uri.scheme, source.proto) {
        (Scheme::Sips, _) | (_, Proto::Tls) => 5061,
        _ => 5060,
    };
    let remote_ip = match source.remote.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip == remote_ip && uri.port.unwrap_or(default_port) == source.remote.port()
}

/// `IP:PORT`, IPv6 in brackets, IPv4-mapped IPv6 as IPv4.
fn write_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    // Writing into a Vec cannot fail.
    let _ = match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => write!(out, "{v4}:{}", addr.port()),
            None => write!(out, "[{v6}]:{}", addr.port()),
        },
        IpAddr::V4(v4) => write!(out, "{v4}:{}", addr.port()),
    };
}

#[cfg(test)]
mod tests;
