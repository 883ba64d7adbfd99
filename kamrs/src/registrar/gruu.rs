//! GRUUs (RFC 5627): the public and temporary Globally Routable UA URIs a
//! registrar hands a UA that registers with `Supported: gruu` and a
//! `+sip.instance`, and the keys that make temporary ones unforgeable.
//!
//! - The **public GRUU** is the AoR with `;gr=` and the instance ID
//!   (`sip:alice@example.com;gr=urn:uuid:f81d4fae-…`): stable, and it
//!   reveals the AoR, as RFC 5627 §3.1 intends.
//! - A **temporary GRUU** (§3.2) must not reveal the AoR and must be
//!   valid for as long as the registration that produced it. It is
//!   `sip:tgruu.TOKEN@DOMAIN;gr`, where TOKEN is the AoR and a digest of
//!   (instance, Call-ID) sealed with ChaCha20-Poly1305 under a key derived
//!   from the registrar's secret. The nonce is an HMAC-SHA256 of the
//!   plaintext under a second key (SIV style), so the same binding always
//!   gets the same token: nothing is stored per binding (a re-REGISTER with
//!   the same Call-ID gets the same temp-GRUU, which satisfies §5.3's "the
//!   earlier ones stay valid"), and a new Call-ID gives a different token
//!   while the old one stops resolving, because the binding it named (same
//!   instance, old Call-ID) is gone. A token that was altered, cut, or made
//!   under another secret fails authentication and is refused.
//!
//! Why a digest of (instance, Call-ID) rather than the strings themselves:
//! only the AoR must be recovered (to find the record); the binding is then
//! recognised by recomputing the digest from what it stores. It keeps the
//! URI short (the AoR plus 40 bytes, base32) and its length bounded by the
//! AoR's (at most [`MAX_AOR_LEN`]), whatever the UA's Call-ID or instance.
//!
//! Nodes sharing a location store must share the secret
//! ([`super::Registrar::with_secret`]); without one each process draws a
//! random secret, and temporary GRUUs it issued stop resolving when it
//! restarts (the UA gets new ones at its next REGISTER).

use std::borrow::Cow;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hmac;

use super::error::Reject;
use crate::sip::{HeaderName, Request, Scheme};
use crate::usrloc::{Binding, MAX_AOR_LEN};

/// The user part of every temporary GRUU starts with this.
pub const TEMP_PREFIX: &str = "tgruu.";

/// Label of the key that seals temporary GRUUs ([`derive_key`]).
pub const ENC_LABEL: &str = "kamrs temp-gruu enc";
/// Label of the key that derives their nonces ([`derive_key`]).
pub const NONCE_LABEL: &str = "kamrs temp-gruu nonce";

/// Bound into every seal: a token of another format or version, or of
/// another use of the same key, does not open.
const AAD: &[u8] = b"kamrs tgruu v1";
/// Bytes of the (instance, Call-ID) digest in a token.
const DIGEST_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Sealed bytes besides the AoR: nonce, digest, tag.
const OVERHEAD: usize = NONCE_LEN + DIGEST_LEN + TAG_LEN;
/// The longest token this registrar issues, in base32 characters; longer
/// input is refused before any decoding or decryption.
pub const MAX_TOKEN_LEN: usize = base32_len(MAX_AOR_LEN + OVERHEAD);

/// Derives a 32-byte key for `label` from `secret`: HMAC-SHA256 keyed by
/// the secret over the label. Distinct labels give independent keys, so
/// one configured secret serves the GRUU keys here and, say, a proxy's
/// Record-Route token key.
pub fn derive_key(secret: &[u8], label: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, label.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&tag.as_ref()[..32]);
    out
}

/// Why a temporary GRUU's token was refused. Every case means "this
/// registrar did not issue it" (or issued it under another secret): the
/// caller answers 404 (RFC 5627 §6: a GRUU that was never valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the temporary GRUU's token is longer than any this registrar issues ({0} characters, at most {MAX_TOKEN_LEN})")]
    TooLong(usize),
    #[error("the temporary GRUU's token is too short to be one this registrar issued")]
    TooShort,
    #[error("the temporary GRUU's token is not base32")]
    NotBase32,
    #[error("the temporary GRUU's token does not authenticate: altered, cut, or made under another secret")]
    Forged,
}

/// What a genuine temporary GRUU names: an AoR, and one of its bindings
/// by instance and Call-ID ([`TempGruu::names`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempGruu {
    /// The AoR key (as the location table is keyed).
    pub aor: String,
    digest: [u8; DIGEST_LEN],
}

impl TempGruu {
    /// Whether `binding` is the one this GRUU was issued for: the same
    /// instance and the same Call-ID.
    pub fn names(&self, binding: &Binding) -> bool {
        binding
            .instance()
            .is_some_and(|i| binding_digest(i, binding.call_id()) == self.digest)
    }
}

/// The keys of temporary GRUUs.
pub struct GruuKeys {
    seal: LessSafeKey,
    nonce: hmac::Key,
}

impl GruuKeys {
    /// Keys derived from a configured secret (shared by the nodes of a
    /// cluster, stable across restarts).
    pub fn from_secret(secret: &[u8]) -> GruuKeys {
        let enc = derive_key(secret, ENC_LABEL);
        let nonce = derive_key(secret, NONCE_LABEL);
        // A 32-byte key is exactly what ChaCha20-Poly1305 takes: this
        // cannot fail.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &enc).expect("a 32-byte key");
        GruuKeys {
            seal: LessSafeKey::new(unbound),
            nonce: hmac::Key::new(hmac::HMAC_SHA256, &nonce),
        }
    }

    /// Keys from a secret drawn at random for this process.
    pub fn random() -> GruuKeys {
        GruuKeys::from_secret(&random_secret())
    }

    /// The token of the binding of `aor` with `instance` and `call_id`;
    /// `None` when the AoR is longer than any AoR key can be.
    pub fn token(&self, aor: &str, instance: &str, call_id: &str) -> Option<String> {
        if aor.len() > MAX_AOR_LEN {
            return None;
        }
        let mut plain = Vec::with_capacity(aor.len() + DIGEST_LEN + TAG_LEN);
        plain.extend_from_slice(aor.as_bytes());
        plain.extend_from_slice(&binding_digest(instance, call_id));
        let nonce = self.nonce_of(&plain);
        let mut sealed = plain;
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            .ok()?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Some(base32_encode(&bytes))
    }

    /// Opens a token this registrar issued.
    pub fn open(&self, token: &str) -> Result<TempGruu, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong(token.len()));
        }
        let bytes = base32_decode(token).ok_or(TokenError::NotBase32)?;
        if bytes.len() < OVERHEAD + 1 {
            return Err(TokenError::TooShort);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let mut buf = sealed.to_vec();
        let plain = self
            .seal
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(AAD),
                &mut buf,
            )
            .map_err(|_| TokenError::Forged)?;
        // SIV: the nonce must be the one the plaintext derives. Authentic
        // tokens always pass; this only rejects what no issuer produced.
        if self.nonce_of(plain) != nonce_bytes {
            return Err(TokenError::Forged);
        }
        let (aor, digest) = plain.split_at(plain.len() - DIGEST_LEN);
        let aor = std::str::from_utf8(aor).map_err(|_| TokenError::Forged)?;
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(digest);
        Ok(TempGruu {
            aor: aor.to_owned(),
            digest: d,
        })
    }

    fn nonce_of(&self, plain: &[u8]) -> [u8; NONCE_LEN] {
        let tag = hmac::sign(&self.nonce, plain);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);
        n
    }
}

impl std::fmt::Debug for GruuKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GruuKeys(..)")
    }
}

/// 32 random bytes from the system; should the system's generator fail
/// (it does not on any supported platform), a secret from the standard
/// library's per-process random hasher seeds and the time, which is still
/// unpredictable to a peer.
fn random_secret() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut secret = [0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut secret).is_ok() {
        return secret;
    }
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, chunk) in secret.chunks_mut(8).enumerate() {
        let h =
            std::collections::hash_map::RandomState::new().hash_one((now, i, std::process::id()));
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    secret
}

/// SHA-256 over (instance, Call-ID), length-prefixed so the pair is
/// unambiguous, cut to [`DIGEST_LEN`] bytes.
fn binding_digest(instance: &str, call_id: &str) -> [u8; DIGEST_LEN] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"kamrs tgruu binding");
    ctx.update(&(instance.len() as u64).to_be_bytes());
    ctx.update(instance.as_bytes());
    ctx.update(call_id.as_bytes());
    let d = ctx.finish();
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&d.as_ref()[..DIGEST_LEN]);
    out
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Base32 characters (RFC 4648, no padding) for `n` bytes.
const fn base32_len(n: usize) -> usize {
    (n * 8).div_ceil(5)
}

/// RFC 4648 base32 in lower case without padding: only letters and
/// digits, valid in a SIP URI's user part and safe from case folding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(base32_len(bytes.len()));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// [`base32_encode`]'s inverse, either case; `None` for any other
/// character, a length no encoding has, or non-zero padding bits.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    if matches!(s.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = ((acc << 5) | u32::from(v)) & 0x1fff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // Leftover bits must be the zero padding the encoder writes.
    if acc & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

/// The REGISTER said `Supported: gruu` (any case, among other options).
pub fn supported(req: &Request<'_>) -> bool {
    super::save::has_option(req, HeaderName::Supported, b"gruu")
}

/// The instance ID as a `gr` value: without its `<` `>`.
pub fn instance_id(instance: &str) -> &str {
    instance
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(instance)
}

/// `paramchar` of RFC 3261 §25.1 (unreserved / param-unreserved).
fn is_paramchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'['
                | b']'
                | b'/'
                | b':'
                | b'&'
                | b'+'
                | b'$'
        )
}

/// Appends `s` as a URI parameter value, escaping what `paramchar` does
/// not allow (so it also never holds `"` or `\` inside a quoted string).
fn push_param_value(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if is_paramchar(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// A `gr` value with its escapes decoded; `None` if they are malformed.
pub fn unescape_gr(v: &str) -> Option<Cow<'_, str>> {
    super::save::unescape(v)
}

/// What a 200 needs to add `pub-gruu` and `temp-gruu` to the Contacts of
/// bindings with an instance: the AoR as the table keys it, the To URI's
/// scheme, user and host, and the keys. Made only for a REGISTER that
/// said `Supported: gruu` with a SIP or SIPS To URI ([`Issuer::for_request`]).
pub struct Issuer<'a> {
    keys: &'a GruuKeys,
    aor: &'a str,
    scheme: &'static str,
    user: &'a str,
    host: String,
}

impl<'a> Issuer<'a> {
    pub fn for_request(req: &'a Request<'_>, aor: &'a str, keys: &'a GruuKeys) -> Option<Self> {
        let to = &req.to.uri;
        if to.scheme == Scheme::Tel || !supported(req) {
            return None;
        }
        Some(Issuer {
            keys,
            aor,
            scheme: to.scheme.as_str(),
            user: to.user.unwrap_or(""),
            host: to.host.to_ascii_lowercase(),
        })
    }

    /// Appends `;pub-gruu="…";temp-gruu="…"` for `b` when it has an
    /// instance (RFC 5627 §5.2). `temp-gruu` is left out only for an AoR
    /// too long to be a key, which the registrar never stores.
    pub fn write_params(&self, out: &mut Vec<u8>, b: &Binding) {
        let Some(instance) = b.instance().filter(|i| !i.is_empty()) else {
            return;
        };
        out.extend_from_slice(b";pub-gruu=\"");
        out.extend_from_slice(self.scheme.as_bytes());
        out.push(b':');
        out.extend_from_slice(self.user.as_bytes());
        out.push(b'@');
        out.extend_from_slice(self.host.as_bytes());
        out.extend_from_slice(b";gr=");
        push_param_value(out, instance_id(instance));
        out.push(b'"');
        if let Some(token) = self.keys.token(self.aor, instance, b.call_id()) {
            out.extend_from_slice(b";temp-gruu=\"");
            out.extend_from_slice(self.scheme.as_bytes());
            out.push(b':');
            out.extend_from_slice(TEMP_PREFIX.as_bytes());
            out.extend_from_slice(token.as_bytes());
            out.push(b'@');
            out.extend_from_slice(self.host.as_bytes());
            out.extend_from_slice(b";gr\"");
        }
    }

    /// An upper bound of what [`write_params`](Self::write_params) adds
    /// for `b`.
    pub fn bound(&self, b: &Binding) -> usize {
        let Some(instance) = b.instance().filter(|i| !i.is_empty()) else {
            return 0;
        };
        // ;pub-gruu="  scheme:  @  ;gr=  "   ;temp-gruu="  scheme:  tgruu.  @  ;gr"
        let fixed = 11 + 5 + 1 + 4 + 1 + 12 + 5 + TEMP_PREFIX.len() + 1 + 4;
        fixed
            + self.user.len()
            + 2 * self.host.len()
            + 3 * instance.len()
            + base32_len(self.aor.len() + OVERHEAD)
    }
}

/// RFC 5627 §5.1 for the contacts of a REGISTER for `aor`: a contact that
/// registers (non-zero expiry) is refused with 403 when it would route
/// back to the AoR, a loop:
/// - any contact that is a GRUU of this AoR: a public one (the AoR's URI
///   with a `gr` parameter) or a temporary one this registrar issued for
///   it;
/// - a contact with `+sip.instance` whose URI is the AoR itself, or that
///   is not a SIP or SIPS URI.
///
/// A contact with a `gr` parameter that is a GRUU of another AoR is a
/// plain contact (RFC 5627 allows registering one UA's GRUU elsewhere).
pub fn check_contacts(
    req: &Request<'_>,
    aor: &str,
    keys: &GruuKeys,
    use_domain: bool,
    default_expires: u32,
) -> Result<(), Reject> {
    if req.contact_star() || !may_loop(req) {
        return Ok(());
    }
    let header_expires = req.expires().ok().flatten();
    for contact in req.contacts() {
        // Malformed contacts are save()'s to refuse, with its status.
        let Ok(contact) = contact else { continue };
        let [expires, instance] = contact.params.lookup(["expires", "+sip.instance"]);
        let expires = match expires {
            Some(Some(v)) => crate::sip::parse_delta_seconds(v.as_bytes()),
            Some(None) => None,
            None => Some(header_expires.unwrap_or(default_expires)),
        };
        if expires == Some(0) {
            continue;
        }
        let uri = &contact.uri;
        let has_instance = instance.flatten().is_some_and(|i| !i.is_empty());
        if uri.scheme == Scheme::Tel {
            if has_instance {
                return Err(Reject::Forbidden(
                    "Contact With +sip.instance Must Be A SIP URI",
                ));
            }
            continue;
        }
        let same_aor = || super::save::aor_of_uri(uri, use_domain).is_ok_and(|a| a == aor);
        if uri.params.has("gr") {
            let is_ours_temp = uri
                .user
                .and_then(|u| u.strip_prefix(TEMP_PREFIX))
                .and_then(|t| keys.open(t).ok())
                .is_some_and(|t| t.aor == aor);
            if is_ours_temp || same_aor() {
                return Err(Reject::Forbidden("Contact Is A GRUU Of This AoR"));
            }
        } else if has_instance && uri.equivalent(&req.to.uri) {
            return Err(Reject::Forbidden("Contact Is The Address Of Record"));
        }
    }
    Ok(())
}

/// Whether any Contact header could break a rule of [`check_contacts`]:
/// it mentions a `gr` parameter, the To URI's host, or `tel:`. Most
/// REGISTERs name a phone's IP address and no `gr`, and this byte scan
/// spares them a second parse of every Contact.
fn may_loop(req: &Request<'_>) -> bool {
    let host = req.to.uri.host.as_bytes();
    req.raw.headers_named(HeaderName::Contact).any(|v| {
        contains_ignore_case(v, b";gr")
            || contains_ignore_case(v, host)
            || contains_ignore_case(v, b"tel:")
    })
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    // memchr to the candidates (the first byte in either case) instead of
    // comparing at every offset: this ran for every REGISTER and was 1.4 %
    // of kamrs's CPU under the refresh load.
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, hay).any(|i| {
        hay.get(i + 1..i + 1 + rest.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
    })
}

#[cfg(test)]
mod tests;
