use super::*;
use crate::sip::{parse_message, Limits, Message};

fn ping<'a>(contact: &'a str, path: Option<&'a str>) -> Ping<'a> {
    Ping {
        contact,
        path,
        proto: Proto::Udp,
        local: "192.0.2.5:5060".parse().unwrap(),
        from: "sip:keepalive@kamrs.example",
        call_id: "ka-0001.02.03",
        unique: "k1a2",
    }
}

#[test]
fn the_ping_is_a_request_our_own_parser_accepts() {
    let mut out = Vec::new();
    write(
        &mut out,
        &ping(
            "sip:alice@198.51.100.7:5062;transport=udp",
            Some("<sip:edge.example;lr>"),
        ),
    )
    .unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.starts_with("OPTIONS sip:alice@198.51.100.7:5062;transport=udp SIP/2.0\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nRoute: <sip:edge.example;lr>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nVia: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bKk1a2;rport\r\n"),
        "{text}"
    );
    let Ok(Message::Request(req)) = parse_message(&out, &Limits::default()) else {
        panic!("not a request: {text}");
    };
    assert_eq!(req.call_id, "ka-0001.02.03");
    assert_eq!((req.cseq.seq, req.cseq.method), (1, "OPTIONS"));
    assert_eq!(req.from.tag(), Some("k1a2"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    // Without a Path there is no Route.
    let mut out = Vec::new();
    write(&mut out, &ping("sip:bob@198.51.100.8", None)).unwrap();
    assert!(!String::from_utf8_lossy(&out).contains("Route:"));
}

#[test]
fn values_that_would_break_the_request_are_refused() {
    let mut out = Vec::new();
    for contact in ["", "sip:a@b\r\nX: y", "sip:a b@c", "sip:a@b\0"] {
        assert_eq!(
            write(&mut out, &ping(contact, None)),
            Err(Unsendable("contact")),
            "{contact:?}"
        );
        assert!(out.is_empty());
    }
    assert_eq!(
        write(&mut out, &ping("sip:a@b", Some("<sip:x;lr>\r\nEvil: 1"))),
        Err(Unsendable("path"))
    );
}
