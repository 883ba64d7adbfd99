//! The flow token in our Record-Route (the idea of RFC 5626 §5.3): the user
//! part of the URI we record-route with names both ends' flows (the
//! caller's, where the dialog-forming request came from, and the callee's
//! binding flow it went to), and a hash of the caller's From tag tells an
//! in-dialog request's direction. So a BYE to a phone behind NAT or on a
//! TCP/WebSocket connection reaches it without a location lookup, even when
//! its Contact is a private address or `*.invalid`.
//!
//! The token is authenticated (HMAC-SHA256 truncated to 96 bits under the
//! proxy's secret): a Route naming kamrs with a token it did not issue is
//! not followed, so nobody can make kamrs send to an address of their
//! choosing (an open relay) by writing a Route header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::flow::Target;
use crate::peer::{ConnId, Proto};

/// One end of a dialog as we reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub target: Target,
    /// The transport of that flow.
    pub proto: Proto,
    /// Our socket on that side: what our Via and Record-Route name there.
    pub local: SocketAddr,
}

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Hash of the dialog-forming request's From tag.
    pub ftag: u32,
    /// Hash of its Call-ID: the token routes that dialog's requests only.
    pub call: u32,
    /// Where that request came from.
    pub caller: Hop,
    /// The binding flow it was sent to.
    pub callee: Hop,
}

/// 2: with the process mark and the Call-ID hash (a version-1 token, of a
/// kamrs before them under the same secret, is not read shifted).
const VERSION: u8 = 2;
const MAC_LEN: usize = 12;
/// Longest encoded token (two IPv6 connection hops, 159 characters),
/// bounding what is decoded.
pub const MAX_ENCODED: usize = 160;

/// This process's mark in every token. A connection id means something
/// only in the process that numbered it (ids start at 1 in each), while a
/// token under a fixed `[route] secret` outlives the process: read back by
/// a later process (a restart) or another node, the token's connection
/// hops would name whoever got those ids there, and deliver the dialog's
/// requests to a stranger. There they name no connection instead
/// (`430 Flow Failed`); UDP hops stay good everywhere.
fn process_epoch() -> [u8; 4] {
    use std::hash::BuildHasher;
    static EPOCH: std::sync::OnceLock<[u8; 4]> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| {
        // RandomState is keyed from the OS's randomness once per process.
        let h = std::hash::RandomState::new().hash_one(std::process::id());
        (h as u32).to_be_bytes()
    })
}

/// Signs and checks tokens with one secret.
pub struct TokenKey {
    key: [u8; 32],
}

impl TokenKey {
    pub fn new(key: [u8; 32]) -> TokenKey {
        TokenKey { key }
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// The token as a URI user part (base64url, no padding).
    pub fn encode(&self, t: &Token) -> String {
        self.encode_in(t, process_epoch())
    }

    fn encode_in(&self, t: &Token, epoch: [u8; 4]) -> String {
        let mut bin = Vec::with_capacity(120);
        bin.push(VERSION);
        bin.extend_from_slice(&epoch);
        bin.extend_from_slice(&t.ftag.to_be_bytes());
        bin.extend_from_slice(&t.call.to_be_bytes());
        put_hop(&mut bin, &t.caller);
        put_hop(&mut bin, &t.callee);
        let mac = self.mac(&bin);
        bin.extend_from_slice(&mac);
        base64url(&bin)
    }

    /// The token `text` names, if we issued it.
    pub fn decode(&self, text: &str) -> Option<Token> {
        if text.len() > MAX_ENCODED {
            return None;
        }
        let bin = unbase64url(text)?;
        let split = bin.len().checked_sub(MAC_LEN)?;
        let (data, mac) = bin.split_at(split);
        let expected = self.mac(data);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], mac)) {
            return None;
        }
        let mut r = Reader(data);
        if r.u8()? != VERSION {
            return None;
        }
        let ours = r.take::<4>()? == process_epoch();
        let ftag = u32::from_be_bytes(r.take::<4>()?);
        let call = u32::from_be_bytes(r.take::<4>()?);
        let caller = r.hop(ours)?;
        let callee = r.hop(ours)?;
        r.0.is_empty().then_some(Token {
            ftag,
            call,
            caller,
            callee,
        })
    }
}

/// The hash a token keeps of a From tag (not secret: it only tells the
/// two directions of one dialog apart) and of a Call-ID.
pub fn tag_hash(tag: &str) -> u32 {
    // FNV-1a: stable across processes, which a token must be.
    let mut h: u32 = 0x811c_9dc5;
    for b in tag.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn proto_code(p: Proto) -> u8 {
    match p {
        Proto::Udp => 0,
        Proto::Tcp => 1,
        Proto::Tls => 2,
        Proto::Ws => 3,
        Proto::Wss => 4,
    }
}

fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn put_hop(out: &mut Vec<u8>, h: &Hop) {
    let (conn, remote) = match h.target {
        Target::Conn { conn, remote } => (Some(conn), remote),
        Target::Datagram { dest, .. } => (None, dest),
    };
    out.push(proto_code(h.proto) | if conn.is_some() { 0x80 } else { 0 });
    if let Some(c) = conn {
        out.extend_from_slice(&c.get().to_be_bytes());
    }
    put_addr(out, remote);
    put_addr(out, h.local);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn addr(&mut self) -> Option<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.take::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.take::<16>()?)),
            _ => return None,
        };
        Some(SocketAddr::new(ip, u16::from_be_bytes(self.take::<2>()?)))
    }

    /// One hop; `ours`: written by this process, whose connection ids
    /// it names (else they name no connection, see [`process_epoch`]).
    fn hop(&mut self, ours: bool) -> Option<Hop> {
        let code = self.u8()?;
        let proto = *Proto::ALL.get(usize::from(code & 0x7f))?;
        let conn = if code & 0x80 != 0 {
            let id = u64::from_be_bytes(self.take::<8>()?);
            // 0 is no id: `from_raw` makes it one no connection has.
            Some(ConnId::from_raw(if ours { id } else { 0 }))
        } else {
            None
        };
        let remote = self.addr()?;
        let local = self.addr()?;
        let target = match conn {
            Some(conn) => Target::Conn { conn, remote },
            None => Target::Datagram {
                local,
                dest: remote,
            },
        };
        Some(Hop {
            target,
            proto,
            local,
        })
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding: letters, digits, `-` and `_` are all
/// unreserved in a SIP URI's user part (RFC 3261 §25.1).
pub fn base64url(bin: &[u8]) -> String {
    let mut s = String::with_capacity(bin.len() * 4 / 3 + 3);
    for chunk in bin.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            s.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    s
}

/// The inverse of [`base64url`]; `None` on any other character or length.
pub fn unbase64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64.iter().position(|&b| b == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    // One spelling per value: a last character with stray low bits would
    // decode to the same bytes, so two texts would name one token.
    let last = s.len() % 4;
    if last > 0 {
        // A final group of 2 or 3 characters leaves 4 or 2 bits unused.
        let unused = 8 - 2 * last;
        let tail = B64.iter().position(|&b| Some(&b) == s.as_bytes().last())?;
        if tail & ((1 << unused) - 1) != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
