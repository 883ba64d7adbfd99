//! Stateless nonces (RFC 7616 §3.3 leaves their form to the server).
//!
//! A nonce is `hex(issued_at ‖ boot ‖ serial ‖ failures ‖ mac ‖ bind)`
//! where `mac` is an HMAC-SHA256 over the fields before it and the realm
//! under the secret of `secret_file`, truncated to 128 bits, and `bind` an
//! HMAC of `mac` and the IP address the challenge was sent to, truncated
//! to 64 bits. Nothing is stored per challenge;
//! `failures` counts wrong answers so far, which is how "401 a few times,
//! then 403" works without per-client state.
//!
//! `boot` is a random id drawn when the process starts, and a nonce is
//! accepted only by the process whose `boot` it carries. The nonce-count
//! state that stops replays ([`super::replay`]) lives in that process's
//! memory, so a nonce another process (an earlier boot, another node
//! sharing `secret_file`) issued would have no replay history here: its
//! first use here could be a captured REGISTER replayed with an attacker's
//! Contact. Such a nonce is therefore [`NonceCheck::Stale`]:
//! the MAC proves it is genuine, so the UA gets `stale=true` and a fresh
//! nonce and re-authenticates without asking its user (RFC 7616 §3.3).
//! The price is one extra 401 round trip when a REGISTER lands on another
//! node than the one that challenged it, or after a restart.
//!
//! `bind` ties a nonce to the address it was sent to. An answer from
//! another address is not checked (stale, like another process's nonce),
//! so a guesser must receive our 401s at the address it sends from: over
//! UDP it cannot spoof a victim's address to run up that address's
//! failure count and lock the victim out ([`super::lockout`]). A UA whose
//! address changed between challenge and answer costs one more 401.
//!
//! `serial` counts the nonces this process issued, from 0: with `boot` it
//! makes every nonce unique (two challenges in the same second must not
//! share one, or one UA's answer would count as a replay of the other's),
//! and it orders them, which lets the replay table forget the oldest
//! nonces safely ([`super::replay`]).

use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::util::hex;

const MAC_LEN: usize = 16;
const BIND_LEN: usize = 8;
const MAC_AT: usize = 25;
const BIND_AT: usize = MAC_AT + MAC_LEN;
const RAW_LEN: usize = BIND_AT + BIND_LEN;
/// Length of a nonce as sent.
pub const NONCE_LEN: usize = RAW_LEN * 2;

/// What a received nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours (this process's), for this realm, not expired; with its failure
    /// count and its serial (for nonce-count tracking).
    Valid {
        failures: u8,
        serial: u64,
        issued_at: u64,
    },
    /// Genuine but not usable here: too old, issued by another process
    /// (an earlier boot, another node) or to another address. Answer with
    /// `stale=true` (RFC 7616 §3.3).
    Stale { failures: u8 },
    /// Not made with our secret, not for this realm, or garbled.
    Invalid,
}

/// Issues and checks nonces with one secret, for one process.
pub struct Nonces {
    secret: Vec<u8>,
    lifetime: u64,
    /// This process's random id (see the module doc).
    boot: u64,
    serial: std::sync::atomic::AtomicU64,
}

impl Nonces {
    /// `boot` must differ between processes sharing `secret`:
    /// [`random_boot_id`] in the daemon, a constant in tests.
    pub fn new(secret: Vec<u8>, lifetime: u64, boot: u64) -> Self {
        Nonces {
            secret,
            lifetime,
            boot,
            serial: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    fn bind(&self, mac: &[u8], ip: IpAddr) -> [u8; BIND_LEN] {
        let mut m = self.hmac();
        m.update(b"bind");
        m.update(mac);
        match ip {
            IpAddr::V4(v4) => m.update(&v4.octets()),
            IpAddr::V6(v6) => m.update(&v6.octets()),
        }
        let full = m.finalize().into_bytes();
        let mut out = [0u8; BIND_LEN];
        out.copy_from_slice(&full[..BIND_LEN]);
        out
    }

    fn mac(
        &self,
        issued_at: u64,
        boot: u64,
        serial: u64,
        failures: u8,
        realm: &str,
    ) -> [u8; MAC_LEN] {
        let mut m = self.hmac();
        m.update(&issued_at.to_be_bytes());
        m.update(&boot.to_be_bytes());
        m.update(&serial.to_be_bytes());
        m.update(&[failures]);
        m.update(realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A nonce for a challenge sent to `to`.
    pub fn issue(&self, now: u64, failures: u8, realm: &str, to: IpAddr) -> String {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&self.boot.to_be_bytes());
        raw[16..24].copy_from_slice(&serial.to_be_bytes());
        raw[24] = failures;
        let mac = self.mac(now, self.boot, serial, failures, realm);
        raw[MAC_AT..BIND_AT].copy_from_slice(&mac);
        raw[BIND_AT..].copy_from_slice(&self.bind(&mac, to));
        hex(&raw)
    }

    /// Checks a nonce answered from `from`.
    pub fn check(&self, nonce: &str, now: u64, realm: &str, from: IpAddr) -> NonceCheck {
        let Some(raw) = unhex::<RAW_LEN>(nonce) else {
            return NonceCheck::Invalid;
        };
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&raw[at..at + 8]);
            u64::from_be_bytes(w)
        };
        let (issued_at, boot, serial) = (word(0), word(8), word(16));
        let failures = raw[24];
        let want = self.mac(issued_at, boot, serial, failures, realm);
        if !bool::from(want.ct_eq(&raw[MAC_AT..BIND_AT])) {
            return NonceCheck::Invalid;
        }
        // Another process's nonce: genuine, but it has no replay history
        // here, so its use cannot be known to be the first. One sent to
        // another address: its answer is not worth checking.
        if boot != self.boot || !bool::from(self.bind(&want, from).ct_eq(&raw[BIND_AT..])) {
            return NonceCheck::Stale { failures };
        }
        // A nonce from the future (clock stepped back) is accepted within
        // the lifetime's slack.
        if issued_at > now.saturating_add(self.lifetime) {
            return NonceCheck::Invalid;
        }
        if now.saturating_sub(issued_at) > self.lifetime {
            return NonceCheck::Stale { failures };
        }
        NonceCheck::Valid {
            failures,
            serial,
            issued_at,
        }
    }
}

/// A random id for this process's nonces: 8 bytes of `/dev/urandom`. It
/// need not be secret (nonces are MACed under the secret), only differ
/// between processes, so if `/dev/urandom` cannot be read the std hasher's
/// random keys, the pid and the clock stand in.
pub fn random_boot_id() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_be_bytes(b);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), (std::process::id(), nanos))
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
mod tests;
