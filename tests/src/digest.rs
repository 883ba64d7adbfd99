//! A small digest client (RFC 7616, qop=auth) for the tests, written apart
//! from kamrs's own code so the tests do not trust what they test.

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::{unique, Response};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `H(s)` for `MD5` or `SHA-256`, lower-case hex.
pub fn h(alg: &str, s: &str) -> String {
    match alg {
        "MD5" => hex(&Md5::digest(s.as_bytes())),
        "SHA-256" => hex(&Sha256::digest(s.as_bytes())),
        other => panic!("unknown digest algorithm {other}"),
    }
}

/// The challenge for `alg` in a 401: (realm, nonce, stale). Panics when
/// the response is not a 401 offering `alg` with qop="auth".
pub fn challenge(r: &Response, alg: &str) -> (String, String, bool) {
    assert_eq!(r.status, 401, "{}", r.raw);
    let c = r
        .headers("WWW-Authenticate")
        .into_iter()
        .find(|c| c.contains(&format!("algorithm={alg}")))
        .unwrap_or_else(|| panic!("no {alg} challenge: {}", r.raw));
    let field = |name: &str| {
        c.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap_or_else(|| panic!("{name} missing in {c}"))
            .to_owned()
    };
    assert_eq!(field("qop"), "auth");
    (field("realm"), field("nonce"), c.contains("stale=true"))
}

/// The `Authorization` value answering `nonce` for a REGISTER to
/// `sip:example.com`, with nonce count `nc`.
pub fn answer(alg: &str, user: &str, password: &str, realm: &str, nonce: &str, nc: u32) -> String {
    let uri = "sip:example.com";
    let ha1 = h(alg, &format!("{user}:{realm}:{password}"));
    let ha2 = h(alg, &format!("REGISTER:{uri}"));
    let cnonce = unique();
    let response = h(alg, &format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={alg}, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\""
    )
}
