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

#[test]
fn a_contact_becomes_a_request_uri_without_its_headers() {
    assert_eq!(
        request_uri("sip:bob@192.0.2.1:5060"),
        "sip:bob@192.0.2.1:5060"
    );
    assert_eq!(
        request_uri("sip:bob@192.0.2.1;transport=tcp?Subject=x&Priority=y"),
        "sip:bob@192.0.2.1;transport=tcp"
    );
    // A `?` in the user part is no header separator.
    assert_eq!(request_uri("sip:b?ob@192.0.2.1"), "sip:b?ob@192.0.2.1");
}

#[test]
fn our_address_on_a_wildcard_socket_is_the_one_facing_the_peer() {
    let local: SocketAddr = "0.0.0.0:5060".parse().unwrap();
    let a = advertised(local, "127.0.0.1:7".parse().unwrap());
    assert_eq!(a, "127.0.0.1:5060".parse().unwrap());
    // Remembered: the same answer again.
    assert_eq!(advertised(local, "127.0.0.1:9".parse().unwrap()), a);
    let fixed: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    assert_eq!(advertised(fixed, "127.0.0.1:7".parse().unwrap()), fixed);
}
