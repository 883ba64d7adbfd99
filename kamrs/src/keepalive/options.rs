//! The OPTIONS a keepalive sends to a binding (RFC 3261 §11): to its
//! Contact, through its Path (RFC 3327: the Path the phone registered
//! through becomes the Route the request takes), with a Call-ID that lets
//! its reply find the binding again ([`super::token`]).

use std::io::Write as _;
use std::net::SocketAddr;

use crate::peer::Proto;

/// What one ping says.
#[derive(Debug, Clone, Copy)]
pub struct Ping<'a> {
    /// The binding's Contact URI: the Request-URI and the To.
    pub contact: &'a str,
    /// The binding's Path, sent as Route.
    pub path: Option<&'a str>,
    /// The transport and our address the request leaves from (the Via).
    pub proto: Proto,
    pub local: SocketAddr,
    /// `ka_from`: the From URI.
    pub from: &'a str,
    /// From [`super::token::Tokens::call_id`].
    pub call_id: &'a str,
    /// Unique per ping: the Via branch (after the magic cookie) and the
    /// From tag.
    pub unique: &'a str,
}

/// Why a ping cannot be written: a value that would break the request
/// (it came from a store or the control API, which check less than the
/// SIP parser does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the binding's {0} cannot be put in a request")]
pub struct Unsendable(pub &'static str);

/// Writes the OPTIONS into `out` (cleared first).
pub fn write(out: &mut Vec<u8>, p: &Ping<'_>) -> Result<(), Unsendable> {
    out.clear();
    let bad = |s: &str| s.is_empty() || s.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if bad(p.contact) {
        return Err(Unsendable("contact"));
    }
    if p.path
        .is_some_and(|r| r.bytes().any(|b| b.is_ascii_control()))
    {
        return Err(Unsendable("path"));
    }
    if bad(p.from) || bad(p.call_id) || bad(p.unique) {
        return Err(Unsendable("keepalive identity"));
    }
    // Byte copies rather than `write!`: one ping per binding per
    // `ka_interval` is thousands a second, and the formatter's
    // per-argument dispatch cost more than the copies themselves.
    put(
        out,
        &[
            b"OPTIONS ",
            p.contact.as_bytes(),
            b" SIP/2.0\r\nVia: SIP/2.0/",
        ],
    );
    put(out, &[p.proto.via_name().as_bytes(), b" "]);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", p.local);
    put(
        out,
        &[
            b";branch=z9hG4bK",
            p.unique.as_bytes(),
            b";rport\r\nMax-Forwards: 70\r\n",
        ],
    );
    if let Some(route) = p.path {
        put(out, &[b"Route: ", route.as_bytes(), b"\r\n"]);
    }
    put(
        out,
        &[
            b"From: <",
            p.from.as_bytes(),
            b">;tag=",
            p.unique.as_bytes(),
            b"\r\nTo: <",
            p.contact.as_bytes(),
            b">\r\nCall-ID: ",
            p.call_id.as_bytes(),
            b"\r\nCSeq: 1 OPTIONS\r\nUser-Agent: ",
            crate::SERVER_NAME.as_bytes(),
            b"\r\nContent-Length: 0\r\n\r\n",
        ],
    );
    Ok(())
}

fn put(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        out.extend_from_slice(part);
    }
}

#[cfg(test)]
mod tests;
