use super::*;

#[test]
fn parses_a_relayed_response() {
    let msg = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bK-kr1-1-0-2;rport\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKinv1;rport\r\nRecord-Route: <sip:x@127.0.0.1:25060;lr>\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\nCall-ID: call1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.9:5060>\r\nContent-Length: 0\r\n\r\n";
    let r = crate::sip::parse_response(msg, &crate::sip::Limits::default()).unwrap();
    assert_eq!(r.status, 180);
    let mut out = Vec::new();
    response(msg, &r, None, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKinv1;rport\r\nRecord-Route"), "{text}");
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
}
