//! The Call-ID of a keepalive ping: which binding it was sent to and when,
//! so that its reply finds the binding again with nothing stored per ping,
//! and a MAC so that nobody off the path can forge a reply that keeps a
//! dead binding alive or measures a false round trip.
//!
//! `ka-<hex(len aor ruid)>.<hex(sent µs)>.<hex(mac)>`: hex keeps any AoR
//! or ruid byte inside the Call-ID's `word` characters (RFC 3261 §25.1).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of the HMAC-SHA256 kept: 96 bits, beyond guessing at packet rate.
const MAC_LEN: usize = 12;
const PREFIX: &str = "ka-";
/// The longest Call-ID read back: an AoR and a ruid, hex, and the rest.
pub const MAX_CALL_ID: usize = 2 * (2 + crate::usrloc::MAX_AOR_LEN + 128) + 64;

/// Makes and checks ping Call-IDs with this process's secret.
pub struct Tokens {
    /// The HMAC with the key already absorbed: cloning it costs a copy of
    /// its state, keying it anew two SHA-256 blocks per ping and reply.
    keyed: Hmac<Sha256>,
}

/// What a verified Call-ID says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub aor: String,
    pub ruid: String,
    /// When the ping was sent, µs since the Unix epoch.
    pub sent_us: u64,
}

impl Tokens {
    pub fn new(key: [u8; 32]) -> Tokens {
        Tokens {
            // HMAC takes keys of any length, so this cannot fail.
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    fn mac(&self, who: &[u8], sent_us: u64) -> [u8; MAC_LEN] {
        let mut m = self.keyed.clone();
        m.update(who);
        m.update(&sent_us.to_be_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// The AoR's length (2 bytes), the AoR, the ruid: unambiguous
    /// whatever bytes either holds.
    fn who(aor: &str, ruid: &str) -> Vec<u8> {
        let len = u16::try_from(aor.len()).unwrap_or(u16::MAX);
        let mut who = Vec::with_capacity(2 + aor.len() + ruid.len());
        who.extend_from_slice(&len.to_be_bytes());
        who.extend_from_slice(&aor.as_bytes()[..usize::from(len)]);
        who.extend_from_slice(ruid.as_bytes());
        who
    }

    /// The Call-ID of a ping to binding `ruid` of `aor` sent at `sent_us`.
    pub fn call_id(&self, aor: &str, ruid: &str, sent_us: u64) -> String {
        let who = Self::who(aor, ruid);
        format!(
            "{PREFIX}{}.{}.{}",
            crate::util::hex(&who),
            crate::util::hex(&sent_us.to_be_bytes()),
            crate::util::hex(&self.mac(&who, sent_us))
        )
    }

    /// The ping a reply's Call-ID names, if it is one of ours, unaltered,
    /// sent no later than `now_us` and no earlier than `max_age_us` before.
    pub fn verify(&self, call_id: &str, now_us: u64, max_age_us: u64) -> Option<Ping> {
        if call_id.len() > MAX_CALL_ID {
            return None;
        }
        let mut parts = call_id.strip_prefix(PREFIX)?.split('.');
        let who = unhex(parts.next()?)?;
        let sent: [u8; 8] = unhex(parts.next()?)?.try_into().ok()?;
        let mac: [u8; MAC_LEN] = unhex(parts.next()?)?.try_into().ok()?;
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
        let len = usize::from(u16::from_be_bytes([*who.first()?, *who.get(1)?]));
        let aor = std::str::from_utf8(who.get(2..2 + len)?).ok()?;
        let ruid = std::str::from_utf8(&who[2 + len..]).ok()?;
        Some(Ping {
            aor: aor.to_owned(),
            ruid: ruid.to_owned(),
            sent_us,
        })
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

/// Lower-case hex back to bytes (what [`crate::util::hex`] wrote).
fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests;
