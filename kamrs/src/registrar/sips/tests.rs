use super::*;
use crate::sip::{parse_message, Limits, Message};

fn register(ruri: &str, to: &str, contacts: &[&str], path: &[&str]) -> Vec<u8> {
    let mut m = format!(
        "REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK1\r\nFrom: <{to}>;tag=1\r\nTo: <{to}>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n"
    );
    for c in contacts {
        m.push_str(&format!("Contact: <{c}>\r\n"));
    }
    for p in path {
        m.push_str(&format!("Path: <{p}>\r\n"));
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m.into_bytes()
}

fn outcome(msg: &[u8], secure: bool) -> Result<(), &'static str> {
    let limits = Limits::default();
    let Ok(Message::Request(req)) = parse_message(msg, &limits) else {
        panic!("test REGISTER does not parse");
    };
    check(&req, secure).map_err(|r| r.reason())
}

#[test]
fn plain_sip_is_fine_on_any_transport() {
    let m = register(
        "sip:example.com",
        "sip:alice@example.com",
        &["sip:alice@192.0.2.1"],
        &[],
    );
    assert_eq!(outcome(&m, false), Ok(()));
    assert_eq!(outcome(&m, true), Ok(()));
}

#[test]
fn sips_anywhere_needs_tls() {
    let cases = [
        register(
            "sips:example.com",
            "sips:alice@example.com",
            &["sips:alice@192.0.2.1"],
            &[],
        ),
        register("sip:example.com", "sips:alice@example.com", &[], &[]),
        register(
            "sips:example.com",
            "sip:alice@example.com",
            &["sip:alice@192.0.2.1"],
            &[],
        ),
        register(
            "sips:example.com",
            "sip:alice@example.com",
            &["sips:alice@192.0.2.1"],
            &[],
        ),
    ];
    for m in &cases {
        assert_eq!(
            outcome(m, false),
            Err(INSECURE),
            "{}",
            String::from_utf8_lossy(m)
        );
    }
    assert_eq!(outcome(&cases[0], true), Ok(()));
}

#[test]
fn a_sips_contact_needs_a_sips_request_uri_and_path() {
    let m = register(
        "sip:example.com",
        "sips:alice@example.com",
        &["sips:alice@192.0.2.1"],
        &[],
    );
    assert_eq!(outcome(&m, true), Err(MIXED_PATH));
    let m = register(
        "sips:example.com",
        "sips:alice@example.com",
        &["sips:alice@192.0.2.1"],
        &["sip:edge.example.com;lr"],
    );
    assert_eq!(outcome(&m, true), Err(MIXED_PATH));
    let m = register(
        "sips:example.com",
        "sips:alice@example.com",
        &["sips:alice@192.0.2.1"],
        &["sips:edge.example.com;lr"],
    );
    assert_eq!(outcome(&m, true), Ok(()));
}

#[test]
fn a_sips_aor_takes_only_sips_contacts() {
    let m = register(
        "sips:example.com",
        "sips:alice@example.com",
        &["sip:alice@192.0.2.1;transport=tls"],
        &[],
    );
    assert_eq!(outcome(&m, true), Err(MIXED_CONTACT));
    // A sip: AoR may register a sips: Contact when the rest is sips.
    let m = register(
        "sips:example.com",
        "sip:alice@example.com",
        &["sips:alice@192.0.2.1"],
        &[],
    );
    assert_eq!(outcome(&m, true), Ok(()));
}
