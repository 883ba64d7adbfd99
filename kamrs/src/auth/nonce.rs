//! Stateless nonces (RFC 7616 §3.3 leaves their form to the server).
//!
//! A nonce is `hex(issued_at ‖ serial ‖ failures ‖ mac)` where `mac` is an
//! HMAC-SHA256 over the rest and the realm, truncated to 128 bits, and
//! `serial` makes every nonce unique (two challenges in the same second
//! must not share a nonce, or one UA's answer would count as a replay of
//! the other's). Any node that holds
//! the secret can check it, a restart does not invalidate it, and nothing
//! is stored per challenge. `failures` counts wrong answers so far, which is
//! how "401 a few times, then 403" works without per-client state.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const MAC_LEN: usize = 16;
const RAW_LEN: usize = 8 + 8 + 1 + MAC_LEN;
/// Length of a nonce as sent.
pub const NONCE_LEN: usize = RAW_LEN * 2;

/// What a received nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this realm, not expired; with its failure count and the
    /// MAC that identifies it (for nonce-count tracking).
    Valid {
        failures: u8,
        id: [u8; MAC_LEN],
        issued_at: u64,
    },
    /// Ours but too old: answer with `stale=true` (RFC 7616 §3.3).
    Stale { failures: u8 },
    /// Not ours, not for this realm, or garbled.
    Invalid,
}

/// Issues and checks nonces with one secret.
pub struct Nonces {
    secret: Vec<u8>,
    lifetime: u64,
    /// Starts at a random value so serials of different processes (nodes,
    /// restarts) do not collide.
    serial: std::sync::atomic::AtomicU64,
}

impl Nonces {
    pub fn new(secret: Vec<u8>, lifetime: u64) -> Self {
        let start = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), &secret);
        Nonces {
            secret,
            lifetime,
            serial: std::sync::atomic::AtomicU64::new(start),
        }
    }

    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    fn mac(&self, issued_at: u64, serial: u64, failures: u8, realm: &str) -> [u8; MAC_LEN] {
        // HMAC takes keys of any length; this cannot fail.
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(&issued_at.to_be_bytes());
        m.update(&serial.to_be_bytes());
        m.update(&[failures]);
        m.update(realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    pub fn issue(&self, now: u64, failures: u8, realm: &str) -> String {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&serial.to_be_bytes());
        raw[16] = failures;
        raw[17..].copy_from_slice(&self.mac(now, serial, failures, realm));
        hex(&raw)
    }

    pub fn check(&self, nonce: &str, now: u64, realm: &str) -> NonceCheck {
        let Some(raw) = unhex::<RAW_LEN>(nonce) else {
            return NonceCheck::Invalid;
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(&raw[..8]);
        let issued_at = u64::from_be_bytes(word);
        word.copy_from_slice(&raw[8..16]);
        let serial = u64::from_be_bytes(word);
        let failures = raw[16];
        let want = self.mac(issued_at, serial, failures, realm);
        if !bool::from(want.ct_eq(&raw[17..])) {
            return NonceCheck::Invalid;
        }
        // A nonce from the future (clock stepped back, or another node's
        // clock ahead) is accepted within the lifetime's slack.
        if issued_at > now.saturating_add(self.lifetime) {
            return NonceCheck::Invalid;
        }
        if now.saturating_sub(issued_at) > self.lifetime {
            return NonceCheck::Stale { failures };
        }
        NonceCheck::Valid {
            failures,
            id: want,
            issued_at,
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_expiry_and_tampering() {
        let n = Nonces::new(b"secret".to_vec(), 300);
        let nonce = n.issue(1000, 2, "example.com");
        assert_eq!(nonce.len(), NONCE_LEN);
        assert!(matches!(
            n.check(&nonce, 1100, "example.com"),
            NonceCheck::Valid {
                failures: 2,
                issued_at: 1000,
                ..
            }
        ));
        assert_eq!(
            n.check(&nonce, 1301, "example.com"),
            NonceCheck::Stale { failures: 2 }
        );
        assert_eq!(n.check(&nonce, 1100, "other.com"), NonceCheck::Invalid);
        let other = Nonces::new(b"other secret".to_vec(), 300);
        assert_eq!(
            other.check(&nonce, 1100, "example.com"),
            NonceCheck::Invalid
        );
        // Flip the failure counter: the MAC no longer matches.
        let mut forged = nonce.clone().into_bytes();
        forged[33] = if forged[33] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(n.check(&forged, 1100, "example.com"), NonceCheck::Invalid);
        for junk in ["", "zz", &"0".repeat(NONCE_LEN)] {
            assert_eq!(n.check(junk, 1100, "example.com"), NonceCheck::Invalid);
        }
        assert_ne!(
            nonce,
            n.issue(1000, 2, "example.com"),
            "every nonce is unique"
        );
        // The same secret on another node (or after a restart) accepts it.
        let restarted = Nonces::new(b"secret".to_vec(), 300);
        assert!(matches!(
            restarted.check(&nonce, 1200, "example.com"),
            NonceCheck::Valid { .. }
        ));
    }
}
