//! STUN Binding on the SIP sockets (RFC 5389; RFC 5626 §8 keepalives).
//!
//! Outbound phones and many NATed ones send STUN Binding requests to their
//! registrar's SIP port to keep the NAT mapping open and to learn the
//! address it maps them to. This is the sans-IO half: one datagram in,
//! maybe one answer out. It never trusts a length it has not checked, and
//! anything that is not a well-formed STUN message is dropped (counted by
//! the caller), never answered with a guess.
//!
//! STUN and SIP share the port: a STUN message starts with a byte of 0 to
//! 3 (the message type's top bits are zero, RFC 7983 §7), a SIP message
//! with a letter, a keepalive with CR or LF.

use std::net::{IpAddr, SocketAddr};

/// The fixed value in every RFC 5389 header (older RFC 3489 messages do
/// not carry it and are not answered).
const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
/// Larger than any Binding request a phone sends; a datagram over this is
/// dropped before its attributes are walked.
pub const MAX_MESSAGE: usize = 548;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_INDICATION: u16 = 0x0011;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_UNKNOWN_ATTRIBUTES: u16 = 0x000A;
const ATTR_REALM: u16 = 0x0014;
const ATTR_NONCE: u16 = 0x0015;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// ICE (RFC 8445) attributes a Binding request may carry; understood as
/// "nothing for us to do".
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_FINGERPRINT: u16 = 0x8028;
/// `STUN` in ASCII, XORed into the FINGERPRINT CRC (RFC 5389 §15.5).
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Whether a datagram starting with `first` is STUN rather than SIP.
pub fn is_stun(first: u8) -> bool {
    first <= 3
}

/// What to do with a STUN datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send what was written into `out` back to the source.
    Reply,
    /// A valid message that needs no answer: a Binding indication (a
    /// keepalive) or a response, which a server never answers.
    Silent,
}

/// Why a datagram that looked like STUN is dropped unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("shorter than a STUN header")]
    Short,
    #[error("over {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("length field does not match the datagram")]
    Length,
    #[error("no RFC 5389 magic cookie")]
    Cookie,
    #[error("an attribute runs past the end")]
    Attribute,
    #[error("FINGERPRINT is wrong or not last")]
    Fingerprint,
    #[error("not a Binding message")]
    Method,
}

/// Handles one datagram from `source` that [`is_stun`] said is STUN. On
/// [`Outcome::Reply`] the answer is in `out` (cleared first).
pub fn handle(msg: &[u8], source: SocketAddr, out: &mut Vec<u8>) -> Result<Outcome, Malformed> {
    out.clear();
    if msg.len() < HEADER_LEN {
        return Err(Malformed::Short);
    }
    if msg.len() > MAX_MESSAGE {
        return Err(Malformed::TooLarge);
    }
    let kind = u16::from_be_bytes([msg[0], msg[1]]);
    let length = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    if length % 4 != 0 || length + HEADER_LEN != msg.len() {
        return Err(Malformed::Length);
    }
    if u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]) != MAGIC_COOKIE {
        return Err(Malformed::Cookie);
    }
    let mut transaction = [0u8; 12];
    transaction.copy_from_slice(&msg[8..20]);
    let attrs = walk(msg)?;
    match kind {
        BINDING_REQUEST => {}
        // Indications and responses are never answered (RFC 5389 §7.3).
        BINDING_INDICATION | BINDING_SUCCESS | BINDING_ERROR => return Ok(Outcome::Silent),
        _ => return Err(Malformed::Method),
    }
    if !attrs.unknown.is_empty() {
        error_420(out, &transaction, &attrs.unknown, attrs.fingerprint);
        return Ok(Outcome::Reply);
    }
    begin(out, BINDING_SUCCESS, &transaction);
    xor_mapped_address(out, source, &transaction);
    finish(out, attrs.fingerprint);
    Ok(Outcome::Reply)
}

/// What the attributes of a request say.
struct Attributes {
    /// Comprehension-required attributes we do not know (answered 420),
    /// at most a handful reported.
    unknown: Vec<u16>,
    /// The request ended with a valid FINGERPRINT: the answer carries one.
    fingerprint: bool,
}

fn walk(msg: &[u8]) -> Result<Attributes, Malformed> {
    let mut at = HEADER_LEN;
    let mut unknown = Vec::new();
    let mut fingerprint = false;
    while at < msg.len() {
        if fingerprint {
            return Err(Malformed::Fingerprint); // something after it
        }
        let head = msg.get(at..at + 4).ok_or(Malformed::Attribute)?;
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let padded = len.div_ceil(4) * 4;
        let value = msg.get(at + 4..at + 4 + len).ok_or(Malformed::Attribute)?;
        if at + 4 + padded > msg.len() {
            return Err(Malformed::Attribute);
        }
        match kind {
            ATTR_FINGERPRINT => {
                let expected = fingerprint_of(msg, at) ^ FINGERPRINT_XOR;
                if value.len() != 4
                    || u32::from_be_bytes([value[0], value[1], value[2], value[3]]) != expected
                {
                    return Err(Malformed::Fingerprint);
                }
                fingerprint = true;
            }
            ATTR_USERNAME
            | ATTR_MESSAGE_INTEGRITY
            | ATTR_REALM
            | ATTR_NONCE
            | ATTR_PRIORITY
            | ATTR_USE_CANDIDATE => {}
            k if k < 0x8000 && unknown.len() < 8 && !unknown.contains(&k) => unknown.push(k),
            _ => {} // comprehension-optional: ignored
        }
        at += 4 + padded;
    }
    Ok(Attributes {
        unknown,
        fingerprint,
    })
}

/// The CRC-32 of `msg` up to the FINGERPRINT attribute at `at`, with the
/// header's length field counting that attribute as the last (RFC 5389
/// §15.5), computed in place: no copy per packet.
fn fingerprint_of(msg: &[u8], at: usize) -> u32 {
    let len = u16::try_from(at + 8 - HEADER_LEN).unwrap_or(u16::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&msg[..2]);
    crc.update(&len.to_be_bytes());
    crc.update(&msg[4..at]);
    crc.finalize()
}

fn begin(out: &mut Vec<u8>, kind: u16, transaction: &[u8; 12]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // length, set by `finish`
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(transaction);
}

fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

/// Sets the length field and, when asked, appends FINGERPRINT.
fn finish(out: &mut Vec<u8>, fingerprint: bool) {
    let set_len = |out: &mut Vec<u8>, extra: usize| {
        let len = u16::try_from(out.len() - HEADER_LEN + extra).unwrap_or(u16::MAX);
        out[2..4].copy_from_slice(&len.to_be_bytes());
    };
    if fingerprint {
        set_len(out, 8);
        let crc = crc32fast::hash(out) ^ FINGERPRINT_XOR;
        attribute(out, ATTR_FINGERPRINT, &crc.to_be_bytes());
    } else {
        set_len(out, 0);
    }
}

/// XOR-MAPPED-ADDRESS (RFC 5389 §15.2): the source as we saw it, XORed
/// with the cookie (and, for IPv6, the transaction id) so that NATs that
/// rewrite addresses in payloads leave it alone.
fn xor_mapped_address(out: &mut Vec<u8>, source: SocketAddr, transaction: &[u8; 12]) {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = source.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut value = vec![0u8];
    // An IPv4 client on a dual-stack socket is seen as ::ffff:a.b.c.d; it
    // is told its IPv4 address.
    let ip = match source.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(ip) => {
            value.push(0x01);
            value.extend_from_slice(&port.to_be_bytes());
            value.extend(ip.octets().iter().zip(cookie).map(|(a, k)| a ^ k));
        }
        IpAddr::V6(ip) => {
            value.push(0x02);
            value.extend_from_slice(&port.to_be_bytes());
            let key = cookie.iter().chain(transaction.iter());
            value.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
        }
    }
    attribute(out, ATTR_XOR_MAPPED_ADDRESS, &value);
}

/// 420 Unknown Attribute, listing them (RFC 5389 §7.3.1).
fn error_420(out: &mut Vec<u8>, transaction: &[u8; 12], unknown: &[u16], fingerprint: bool) {
    begin(out, BINDING_ERROR, transaction);
    let mut code = vec![0, 0, 4, 20];
    code.extend_from_slice(b"Unknown Attribute");
    attribute(out, ATTR_ERROR_CODE, &code);
    let list: Vec<u8> = unknown.iter().flat_map(|k| k.to_be_bytes()).collect();
    attribute(out, ATTR_UNKNOWN_ATTRIBUTES, &list);
    finish(out, fingerprint);
}

#[cfg(test)]
mod tests;
