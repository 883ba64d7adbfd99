use super::*;

#[test]
fn dialog_forming_requests_are_record_routed() {
    let msg = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKa\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let Ok(sip::Message::Request(req)) = sip::parse_message(msg, &Limits::default()) else {
        panic!("parse");
    };
    assert!(creates_dialog(&req));
    let key = server_key(&req, "INVITE");
    assert_eq!(key.branch, "z9hG4bKa");
    assert_eq!(key.sent_by, "127.0.0.1:5");
}
