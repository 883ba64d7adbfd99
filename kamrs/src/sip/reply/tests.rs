use super::*;
use crate::peer::Proto;
use crate::sip::{parse_message, Limits, Message};

fn peer(remote: &str) -> Peer {
    Peer {
        proto: Proto::Udp,
        remote: remote.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    }
}

fn reply_to(msg: &str, remote: &str) -> String {
    let Ok(Message::Request(req)) = parse_message(msg.as_bytes(), &Limits::default()) else {
        panic!("request parses");
    };
    let mut out = Vec::new();
    write(
        &mut out,
        &req,
        &peer(remote),
        480,
        "Temporarily Unavailable",
        &[("X-Test", "1")],
    );
    String::from_utf8(out).unwrap()
}

fn request(via: &str, to: &str) -> String {
    format!(
        "INVITE sip:x@h SIP/2.0\r\nVia: {via}\r\nv: SIP/2.0/TCP proxy.example;branch=z9hG4bK2\r\n\
         From: \"A\" <sip:a@h>;tag=f1\r\nTo: {to}\r\nCall-ID: abc@h\r\nCSeq: 3 INVITE\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn integers_are_written_like_core_fmt() {
    for n in [0u64, 7, 10, 99, 100, 5060, 65535, 4294967295, u64::MAX] {
        let mut out = b"x".to_vec();
        write_u64(&mut out, n);
        assert_eq!(out, format!("x{n}").into_bytes());
    }
    for n in [0u64, 1, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
        let mut out = Vec::new();
        write_hex16(&mut out, n);
        assert_eq!(out, format!("{n:016x}").into_bytes());
    }
}

#[test]
fn rfc3261_8_2_6_headers() {
    let r = reply_to(
        &request(
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport",
            "<sip:x@h>",
        ),
        "192.0.2.9:40000",
    );
    let lines: Vec<&str> = r.split("\r\n").collect();
    assert_eq!(lines[0], "SIP/2.0 480 Temporarily Unavailable");
    assert_eq!(
        lines[1],
        "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport=40000;received=192.0.2.9"
    );
    assert_eq!(lines[2], "Via: SIP/2.0/TCP proxy.example;branch=z9hG4bK2");
    assert_eq!(lines[3], "From: \"A\" <sip:a@h>;tag=f1");
    assert!(lines[4].starts_with("To: <sip:x@h>;tag="), "{}", lines[4]);
    assert_eq!(lines[5], "Call-ID: abc@h");
    assert_eq!(lines[6], "CSeq: 3 INVITE");
    assert_eq!(lines[7], format!("Server: {}", crate::SERVER_NAME));
    assert_eq!(lines[8], "X-Test: 1");
    assert_eq!(lines[9], "Content-Length: 0");
    assert!(r.ends_with("\r\n\r\n"));
    // Retransmissions get the same tag; the reply parses as a response.
    let again = reply_to(
        &request(
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport",
            "<sip:x@h>",
        ),
        "192.0.2.9:40000",
    );
    assert_eq!(r, again);
    assert!(matches!(
        parse_message(r.as_bytes(), &Limits::default()),
        Ok(Message::Response(resp)) if resp.status == 480
    ));
}

#[test]
fn existing_to_tag_is_kept_and_received_only_when_needed() {
    let r = reply_to(
        &request(
            "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1",
            "<sip:x@h>;tag=keep",
        ),
        "192.0.2.9:5060",
    );
    assert!(r.contains("\r\nTo: <sip:x@h>;tag=keep\r\n"));
    assert!(r.contains("\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n"));
    // Host name in sent-by: received is added, a stale one replaced.
    let r = reply_to(
        &request(
            "SIP/2.0/UDP phone.local;received=1.1.1.1;branch=z9hG4bK1",
            "<sip:x@h>",
        ),
        "192.0.2.9:5060",
    );
    assert!(
        r.contains("\r\nVia: SIP/2.0/UDP phone.local;branch=z9hG4bK1;received=192.0.2.9\r\n"),
        "{r}"
    );
}

#[test]
fn ipv6_received_and_combined_via_header() {
    let msg = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::10]:5060;rport;branch=z9hG4bKa, SIP/2.0/UDP b;branch=z9hG4bKb\r\n\
               From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let r = reply_to(msg, "[2001:db8::99]:7000");
    assert!(
        r.contains("\r\nVia: SIP/2.0/UDP [2001:db8::10]:5060;rport=7000;branch=z9hG4bKa;received=2001:db8::99, SIP/2.0/UDP b;branch=z9hG4bKb\r\n"),
        "{r}"
    );
}

#[test]
fn destination_follows_rport_or_sent_by() {
    let remote: SocketAddr = "192.0.2.9:40000".parse().unwrap();
    let via = |v: &'static str| Via::parse_at(v.as_bytes(), 0).unwrap().0;
    assert_eq!(
        via("SIP/2.0/UDP h:5070;rport").reply_destination(remote, false),
        remote
    );
    assert_eq!(
        via("SIP/2.0/UDP h:5070").reply_destination(remote, false),
        "192.0.2.9:5070".parse().unwrap()
    );
    assert_eq!(
        via("SIP/2.0/UDP h").reply_destination(remote, false),
        "192.0.2.9:5060".parse().unwrap()
    );
    assert_eq!(
        via("SIP/2.0/TLS h").reply_destination(remote, false),
        "192.0.2.9:5061".parse().unwrap()
    );
    assert_eq!(
        via("SIP/2.0/UDP h:5070").reply_destination(remote, true),
        remote
    );
}
