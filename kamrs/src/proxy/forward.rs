//! Building the messages a proxy sends, from the ones it received (RFC 3261
//! §16.6, §9.1, §17.1.1.3). Pure: bytes in, bytes out.
//!
//! A forwarded request is the received one line for line, with only what
//! §16.6 changes: the Request-URI, our Via on top, Max-Forwards one lower,
//! our Record-Route, the Route entries naming us removed and a binding's
//! Path pushed. Headers kamrs does not know pass through untouched.

use crate::sip::lines::{headers_end, line_of, offset_in};
use crate::sip::reply::write_u64;
use crate::sip::{FullResponse, HeaderName, NameAddr, Request};

/// What changes in one forwarded copy of a request.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    /// The new Request-URI (a binding's Contact); `None` keeps it.
    pub ruri: Option<&'a str>,
    /// Our Via value (`SIP/2.0/UDP host:port;branch=…`).
    pub via: &'a str,
    /// Our Record-Route values, top first.
    pub record_route: &'a [String],
    /// How many Route entries from the top to drop (the ones naming us).
    pub pop_routes: usize,
    /// Route values to push on top (a binding's Path, RFC 3327).
    pub push_route: Option<&'a str>,
    /// Leave out the Proxy-Authorization kamrs checked (its own realm's
    /// credentials are nobody else's business, RFC 3261 §22.3).
    pub drop_proxy_authorization: bool,
    /// Where the request came from: the sender's Via gets `received` and
    /// `rport` filled (RFC 3261 §18.2.1, RFC 3581), as in our replies.
    pub source: Option<std::net::SocketAddr>,
}

/// Appends the forwarded copy of `req` (received as `msg`) to `out`.
pub fn request(msg: &[u8], req: &Request<'_>, c: &Changes<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(c.ruri.unwrap_or(req.uri).as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\n");
    line(out, "Via", c.via.as_bytes());
    for rr in c.record_route {
        line(out, "Record-Route", rr.as_bytes());
    }
    if let Some(path) = c.push_route {
        line(out, "Route", path.as_bytes());
    }
    let mut pop = c.pop_routes;
    let mut max_forwards = false;
    let mut content_length = false;
    let mut first_via = true;
    for h in &req.raw.headers {
        let Some(range) = line_of(msg, h.value) else {
            continue;
        };
        match h.name {
            HeaderName::Via if first_via => {
                first_via = false;
                match c.source {
                    Some(remote) => {
                        out.extend_from_slice(b"Via: ");
                        crate::sip::reply::write_top_via(out, &req.top_via, remote);
                        out.extend_from_slice(&h.value[req.top_via.end.min(h.value.len())..]);
                        out.extend_from_slice(b"\r\n");
                    }
                    None => raw_line(out, &msg[range]),
                }
            }
            HeaderName::MaxForwards => {
                max_forwards = true;
                let n = req.max_forwards.unwrap_or(70).saturating_sub(1);
                out.extend_from_slice(b"Max-Forwards: ");
                write_u64(out, u64::from(n));
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::ProxyAuthorization if c.drop_proxy_authorization => {}
            HeaderName::Route if pop > 0 => {
                let rest = skip_entries(h.value, &mut pop);
                if !rest.is_empty() {
                    line(out, "Route", rest);
                }
            }
            _ => {
                content_length |= h.name == HeaderName::ContentLength;
                raw_line(out, &msg[range]);
            }
        }
    }
    if !max_forwards {
        out.extend_from_slice(b"Max-Forwards: 70\r\n");
    }
    // Required on streams (RFC 3261 §18.3); a UDP request may omit it.
    if !content_length {
        out.extend_from_slice(b"Content-Length: ");
        write_u64(out, req.raw.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(req.raw.body);
}

/// `value` (a Route header) without its first `*pop` entries, counting
/// them off `pop`.
fn skip_entries<'a>(value: &'a [u8], pop: &mut usize) -> &'a [u8] {
    let mut i = 0;
    while *pop > 0 {
        let Some((_, end)) = NameAddr::parse_at(value, i) else {
            // Unreadable: drop the rest of the header with the entry.
            return b"";
        };
        *pop -= 1;
        i = end;
        if value.get(i) == Some(&b',') {
            i += 1;
        } else {
            return b"";
        }
    }
    crate::sip::trim_ws(&value[i..])
}

fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A received header line, its line end made CRLF-terminated if it was
/// the last line of a message without one.
fn raw_line(out: &mut Vec<u8>, l: &[u8]) {
    out.extend_from_slice(l);
    if !l.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `resp` (received as `msg`) without its top Via, the way it
/// goes on upstream (RFC 3261 §16.7 step 9). `status_line` replaces the
/// status line (a 503 becomes 500, §16.7 step 6).
pub fn response(msg: &[u8], resp: &FullResponse<'_>, status_line: Option<&str>, out: &mut Vec<u8>) {
    let first_nl = memchr::memchr(b'\n', msg).map_or(msg.len(), |i| i + 1);
    match status_line {
        Some(s) => {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None => raw_line(out, &msg[..first_nl]),
    }
    let mut top_done = false;
    let mut content_length = false;
    for h in &resp.headers {
        let Some(range) = line_of(msg, h.value) else {
            continue;
        };
        content_length |= h.name == HeaderName::ContentLength;
        if h.name == HeaderName::Via && !top_done {
            top_done = true;
            let rest = &h.value[resp.top_via.end.min(h.value.len())..];
            let rest = crate::sip::trim_ws(rest.strip_prefix(b",").unwrap_or(b""));
            if !rest.is_empty() {
                line(out, "Via", rest);
            }
            continue;
        }
        raw_line(out, &msg[range]);
    }
    // Required on streams (RFC 3261 §18.3); a UDP response may omit it.
    if !content_length {
        out.extend_from_slice(b"Content-Length: ");
        write_u64(out, resp.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    // The empty line and the body, and nothing after it: bytes past the
    // Content-Length of a datagram are not this message's, and relayed
    // onto a caller's stream they would be read as a message from kamrs.
    let head_end = headers_end(msg, resp.body).min(msg.len());
    let body_at = offset_in(msg, resp.body).unwrap_or(msg.len());
    if content_length {
        out.extend_from_slice(&msg[head_end..body_at]);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(resp.body);
}

/// The CANCEL for the request we sent (RFC 3261 §9.1): same Request-URI,
/// top Via (ours, so the same branch), Route, From, To, Call-ID and CSeq
/// number.
pub fn cancel(sent: &Request<'_>, out: &mut Vec<u8>) {
    hop_request(sent, "CANCEL", None, out);
}

/// The ACK for a non-2xx final response to our INVITE (RFC 3261
/// §17.1.1.3): as the CANCEL, with the response's To (its tag).
pub fn ack(sent: &Request<'_>, to: &[u8], out: &mut Vec<u8>) {
    hop_request(sent, "ACK", Some(to), out);
}

fn hop_request(req: &Request<'_>, method: &str, to: Option<&[u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.uri.as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\n");
    if let Some(via) = req.raw.header(HeaderName::Via) {
        line(out, "Via", &via[..req.top_via.end.min(via.len())]);
    }
    for h in &req.raw.headers {
        match h.name {
            HeaderName::Route => line(out, "Route", h.value),
            HeaderName::From => line(out, "From", h.value),
            HeaderName::To => line(out, "To", to.unwrap_or(h.value)),
            HeaderName::CallId => line(out, "Call-ID", h.value),
            _ => {}
        }
    }
    out.extend_from_slice(b"CSeq: ");
    write_u64(out, u64::from(req.cseq.seq));
    out.push(b' ');
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
}

#[cfg(test)]
mod tests;
