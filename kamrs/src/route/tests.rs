//! What reaches the UDP SIP port besides SIP: STUN and CR/LF keepalives.

use std::sync::atomic::Ordering;

use super::*;
use crate::sip::Limits;

fn router() -> Router {
    let core = crate::state::Core::new(Registrar::default(), Arc::new(CoreStats::default()));
    Router::new(Limits::default(), core)
}

fn peer(proto: Proto) -> Peer {
    Peer {
        proto,
        remote: "192.0.2.1:32853".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    }
}

fn binding_request() -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&[9u8; 12]);
    m
}

#[test]
fn a_stun_binding_request_on_udp_is_answered_to_its_source() {
    let r = router();
    let mut out = Vec::new();
    let action = r.handle(&binding_request(), &peer(Proto::Udp), &mut out);
    assert!(
        matches!(action, Action::Reply { dest } if dest == peer(Proto::Udp).remote),
        "{action:?}"
    );
    assert_eq!(&out[0..2], &[0x01, 0x01]);
    assert_eq!(r.stats().stun_answered.load(Ordering::Relaxed), 1);
    assert_eq!(r.stats().dropped.load(Ordering::Relaxed), 0);
    assert_eq!(r.stats().rcv_requests.load(Ordering::Relaxed), 0);
}

#[test]
fn malformed_stun_is_dropped_and_counted_as_such() {
    let r = router();
    let mut out = Vec::new();
    let mut bad = binding_request();
    bad[4] = 0; // no magic cookie
    let action = r.handle(&bad, &peer(Proto::Udp), &mut out);
    assert!(matches!(action, Action::Drop(_)), "{action:?}");
    assert!(out.is_empty());
    assert_eq!(r.stats().stun_dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn crlf_keepalives_are_neither_requests_nor_drops() {
    let r = router();
    let mut out = Vec::new();
    for ka in [&b"\r\n\r\n"[..], b"\r\n", b"\n", b" "] {
        let action = r.handle(ka, &peer(Proto::Udp), &mut out);
        assert!(matches!(action, Action::Absorb), "{ka:?}: {action:?}");
    }
    assert_eq!(r.stats().keepalives.load(Ordering::Relaxed), 4);
    assert_eq!(r.stats().dropped.load(Ordering::Relaxed), 0);
    // Garbage is still a drop.
    let action = r.handle(b"\r\nhello", &peer(Proto::Udp), &mut out);
    assert!(matches!(action, Action::Drop(_)), "{action:?}");
    assert_eq!(r.stats().dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn stun_is_for_datagrams_only() {
    // On a stream a message is framed as SIP before it gets here; a
    // STUN-looking frame is garbage, not a Binding request.
    let r = router();
    let mut out = Vec::new();
    let action = r.handle(&binding_request(), &peer(Proto::Tcp), &mut out);
    assert!(matches!(action, Action::Drop(_)), "{action:?}");
    assert_eq!(r.stats().stun_answered.load(Ordering::Relaxed), 0);
}

fn options(uri: &str) -> Vec<u8> {
    format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:32853;branch=z9hG4bK-1\r\n\
         From: <sip:monitor@example.com>;tag=1\r\nTo: <{uri}>\r\nCall-ID: o1\r\n\
         CSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn options_to_the_registrar_itself_gets_200_with_what_it_allows() {
    let r = router();
    let mut out = Vec::new();
    let action = r.handle(&options("sip:127.0.0.1:5060"), &peer(Proto::Udp), &mut out);
    assert!(matches!(action, Action::Reply { .. }), "{action:?}");
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    assert!(
        text.contains("\r\nAllow: REGISTER, OPTIONS, ACK\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nCSeq: 7 OPTIONS\r\n"), "{text}");
    // To a user: the tutorial's routing, 501.
    r.handle(&options("sip:alice@127.0.0.1"), &peer(Proto::Udp), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("SIP/2.0 501 "), "{text}");
}
