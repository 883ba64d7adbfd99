//! The OPTIONS a keepalive sends to a binding (RFC 3261 §11): to its
//! Contact, through its Path (RFC 3327: the Path the phone registered
//! through becomes the Route the request takes), with a Call-ID that lets
//! its reply find the binding again ([`super::token`]).

use std::fmt::Write as _;
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
    let via_proto = p.proto.via_name();
    let mut s = String::with_capacity(512);
    // Writing into a String cannot fail.
    let _ = write!(
        s,
        "OPTIONS {contact} SIP/2.0\r\n\
         Via: SIP/2.0/{via_proto} {local};branch=z9hG4bK{unique};rport\r\n\
         Max-Forwards: 70\r\n",
        contact = p.contact,
        local = p.local,
        unique = p.unique,
    );
    if let Some(route) = p.path {
        let _ = write!(s, "Route: {route}\r\n");
    }
    let _ = write!(
        s,
        "From: <{from}>;tag={unique}\r\n\
         To: <{contact}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         User-Agent: {agent}\r\n\
         Content-Length: 0\r\n\r\n",
        from = p.from,
        unique = p.unique,
        contact = p.contact,
        call_id = p.call_id,
        agent = crate::SERVER_NAME,
    );
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;
