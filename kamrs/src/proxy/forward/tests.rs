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

const RESP_HEAD: &str = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bK-kr1-1-0-2;rport\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bKinv1\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\nCall-ID: call1\r\nCSeq: 1 INVITE\r\n";

fn relayed(msg: &[u8]) -> String {
    let r = crate::sip::parse_response(msg, &crate::sip::Limits::default()).unwrap();
    let mut out = Vec::new();
    response(msg, &r, None, &mut out);
    String::from_utf8(out).unwrap()
}

/// A datagram with more bytes than its Content-Length says: the extra
/// bytes are not the message's, and relayed onto a caller's TCP
/// connection they would be read as a second message from kamrs (a
/// callee could inject a forged BYE or 200 into anyone's stream).
#[test]
fn bytes_past_the_content_length_are_not_relayed() {
    let smuggled = "BYE sip:alice@127.0.0.1:5;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:25060;branch=z9hG4bKevil\r\nFrom: <sip:x@example.com>;tag=x\r\nTo: <sip:alice@example.com>;tag=a\r\nCall-ID: other-call\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n";
    let msg = format!("{RESP_HEAD}Content-Length: 0\r\n\r\n{smuggled}");
    let text = relayed(msg.as_bytes());
    assert!(!text.contains("BYE sip:"), "{text}");
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
    let msg = format!("{RESP_HEAD}Content-Length: 4\r\n\r\nbodyEXTRA");
    assert!(relayed(msg.as_bytes()).ends_with("\r\n\r\nbody"));
}

/// A response without Content-Length (allowed over UDP) relayed onto a
/// stream needs one (RFC 3261 §18.3), or the stream's framing breaks.
#[test]
fn a_response_without_content_length_gets_one() {
    let msg = format!("{RESP_HEAD}Content-Type: application/sdp\r\n\r\nv=0\r\n");
    let text = relayed(msg.as_bytes());
    assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"), "{text}");
}
