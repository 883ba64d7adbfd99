//! Arbitrary bytes as an `Authorization` header value: the digest parser
//! must never panic, and the whole check of a REGISTER carrying it (nonce
//! decoding, algorithm choice, hashing, nonce-count tracking, failure
//! counting and lock-outs) must end in a verdict, never a crash.

#![no_main]

use std::sync::OnceLock;

use kamrs::auth::subscribers::{Subscriber, Subscribers};
use kamrs::auth::{digest, Algorithm, AuthSettings, Authenticator};
use kamrs::sip::{parse_message, Limits, Message};
use libfuzzer_sys::fuzz_target;

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        Authenticator::new(
            AuthSettings {
                realm: None,
                algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
                max_failures: 3,
                ..AuthSettings::default()
            },
            b"fuzz secret".to_vec(),
            300,
            Subscribers::in_memory(vec![Subscriber::with_password(
                "alice",
                "example.com",
                "example.com",
                "pw",
            )]),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = digest::parse(data);
    // The first byte picks the source address (the lock-out tables key on
    // it); the word NONCE in the rest becomes a nonce really issued to that
    // address, so the answer check, failure counting, lock-outs and the
    // nonce-count table are reached, not only the MAC check.
    let Some((&octet, rest)) = data.split_first() else {
        return;
    };
    let source = std::net::SocketAddr::from(([192, 0, 2, octet], 5060));
    let auth = authenticator();
    let now = 1_700_000_000;
    let nonce = auth
        .challenges("example.com", false, 0, source.ip(), now)
        .first()
        .and_then(|c| c.split("nonce=\"").nth(1))
        .and_then(|c| c.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let value = String::from_utf8_lossy(rest).replace("NONCE", &nonce);
    // The same bytes inside a REGISTER, through the authenticator.
    let mut msg = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c\r\n\
CSeq: 1 REGISTER\r\nAuthorization: "
        .to_vec();
    msg.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    msg.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    if let Ok(Message::Request(req)) = parse_message(&msg, &Limits::default()) {
        // Whether the source holds a live binding of the AoR: taken from
        // the address byte, so both sides of the user-scope exemption run.
        let registered = octet & 1 == 1;
        let _ = auth.check(&req, "alice", "example.com", source, now, &|| registered);
    };
});
