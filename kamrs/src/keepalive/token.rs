//! The Call-ID of a keepalive ping: which binding it was sent to and when,
//! so that its reply finds the binding again with nothing stored per ping,
//! and a MAC so that nobody off the path can forge a reply that keeps a
//! dead binding alive or measures a false round trip.
//!
//! `ka-<hex(len aor ruid)>.<hex(sent µs)>.<hex(mac)>`: hex keeps any AoR
//! or ruid byte inside the Call-ID's `word` characters (RFC 3261 §25.1).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use smallvec::SmallVec;

use crate::usrloc::Ruid;

/// Bytes of the HMAC-SHA256 kept: 96 bits, beyond guessing at packet rate.
const MAC_LEN: usize = 12;
const PREFIX: &str = "ka-";
/// The longest Call-ID read back: an AoR and a ruid, hex, and the rest.
pub const MAX_CALL_ID: usize = 2 * (2 + crate::usrloc::MAX_AOR_LEN + 128) + 64;

/// What a Call-ID names, as the MAC covers it: the AoR's length (2 bytes),
/// the AoR, the ruid; unambiguous whatever bytes either holds. On the
/// stack for the usual sizes: a ping and its reply are thousands a second,
/// and this is built or decoded for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who(SmallVec<[u8; 128]>);

impl Who {
    pub fn new(aor: &str, ruid: &Ruid<'_>) -> Who {
        let len = u16::try_from(aor.len()).unwrap_or(u16::MAX);
        let mut who = SmallVec::new();
        who.extend_from_slice(&len.to_be_bytes());
        who.extend_from_slice(&aor.as_bytes()[..usize::from(len)]);
        ruid.write_into(&mut who);
        Who(who)
    }

    fn split(&self) -> Option<(&str, &str)> {
        let len = usize::from(u16::from_be_bytes([*self.0.first()?, *self.0.get(1)?]));
        let aor = std::str::from_utf8(self.0.get(2..2 + len)?).ok()?;
        let ruid = std::str::from_utf8(self.0.get(2 + len..)?).ok()?;
        Some((aor, ruid))
    }
}

/// Makes and checks ping Call-IDs with this process's secret.
pub struct Tokens {
    /// The HMAC with the key already absorbed: cloning it costs a copy of
    /// its state, keying it anew two SHA-256 blocks per ping and reply.
    keyed: Hmac<Sha256>,
}

/// What a verified Call-ID says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Checked to split into UTF-8 AoR and ruid.
    who: Who,
    /// When the ping was sent, µs since the Unix epoch.
    pub sent_us: u64,
}

impl Ping {
    /// The AoR and the ruid the ping went to (split once per call: take
    /// both together).
    pub fn binding(&self) -> (&str, &str) {
        self.who.split().unwrap_or(("", ""))
    }
}

impl Tokens {
    pub fn new(key: [u8; 32]) -> Tokens {
        Tokens {
            // HMAC takes keys of any length, so this cannot fail.
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    fn mac(&self, who: &Who, sent_us: u64) -> [u8; MAC_LEN] {
        let mut m = self.keyed.clone();
        m.update(&who.0);
        m.update(&sent_us.to_be_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Appends to `out` the Call-ID of a ping to `who` sent at `sent_us`.
    pub fn write_call_id(&self, out: &mut impl Extend<u8>, who: &Who, sent_us: u64) {
        out.extend(PREFIX.bytes());
        crate::util::push_hex(out, &who.0);
        out.extend([b'.']);
        crate::util::push_hex(out, &sent_us.to_be_bytes());
        out.extend([b'.']);
        crate::util::push_hex(out, &self.mac(who, sent_us));
    }

    /// The Call-ID of a ping to binding `ruid` of `aor` sent at `sent_us`.
    pub fn call_id(&self, aor: &str, ruid: &str, sent_us: u64) -> String {
        let mut out = Vec::new();
        self.write_call_id(&mut out, &Who::new(aor, &Ruid::parse(ruid)), sent_us);
        // Only ASCII was written.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The ping a reply's Call-ID names, if it is one of ours, unaltered,
    /// sent no later than `now_us` and no earlier than `max_age_us` before.
    pub fn verify(&self, call_id: &str, now_us: u64, max_age_us: u64) -> Option<Ping> {
        if call_id.len() > MAX_CALL_ID {
            return None;
        }
        let mut parts = call_id.strip_prefix(PREFIX)?.split('.');
        let mut who = Who(SmallVec::new());
        unhex(parts.next()?, &mut who.0)?;
        let mut sent = [0u8; 8];
        unhex_exact(parts.next()?, &mut sent)?;
        let mut mac = [0u8; MAC_LEN];
        unhex_exact(parts.next()?, &mut mac)?;
        if parts.next().is_some() {
            return None;
        }
        let sent_us = u64::from_be_bytes(sent);
        let expected = self.mac(&who, sent_us);
        // Constant time: the MAC is what an attacker would search for.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
            return None;
        }
        if sent_us > now_us || now_us - sent_us > max_age_us {
            return None;
        }
        who.split()?;
        Some(Ping { who, sent_us })
    }
}

/// A fresh secret for this process's tokens, from `/dev/urandom`: a
/// guessable key would let anyone forge replies, so there is no fallback.
pub fn random_key() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// One lower-case hex digit's value.
fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Lower-case hex (what [`crate::util::push_hex`] wrote) appended to `out`
/// as bytes.
fn unhex(s: &str, out: &mut SmallVec<[u8; 128]>) -> Option<()> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    out.reserve(b.len() / 2);
    for p in b.chunks_exact(2) {
        out.push(digit(p[0])? << 4 | digit(p[1])?);
    }
    Some(())
}

/// Lower-case hex of exactly `out.len()` bytes into `out`.
fn unhex_exact(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != 2 * out.len() {
        return None;
    }
    for (o, p) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = digit(p[0])? << 4 | digit(p[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests;
