//! The 302 of redirect mode.

use super::*;
use crate::sip::{parse_message, Limits, Message};
use crate::usrloc::Parts;

const INVITE: &str = "INVITE sip:alice@example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:bob@example.org>;tag=b\r\n\
    To: <sip:alice@example.com>\r\n\
    Call-ID: inv-1\r\n\
    CSeq: 1 INVITE\r\n\
    Content-Length: 0\r\n\r\n";

fn peer(proto: Proto) -> Peer {
    Peer {
        proto,
        remote: "198.51.100.7:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    }
}

fn source(proto: Proto, remote: &str) -> Option<Source> {
    Some(Peer {
        proto,
        remote: remote.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    })
}

fn binding(contact: &str, q: Option<u16>, source: Option<Source>, path: Option<&str>) -> Binding {
    Binding::new(Parts {
        q,
        source,
        path,
        ..Binding::for_test(contact, u64::MAX).parts()
    })
}

fn redirect(proto: Proto, bindings: &[Binding], limit: Option<usize>) -> (String, usize) {
    let mut out = Vec::new();
    let n = match parse_message(INVITE.as_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => {
            write_redirect_limited(&mut out, &r, &peer(proto), bindings, limit)
        }
        other => panic!("{other:?}"),
    };
    (String::from_utf8(out).unwrap(), n)
}

fn contacts(reply: &str) -> Vec<&str> {
    reply
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Contact: "))
        .collect()
}

#[test]
fn a_302_lists_each_binding_in_order_with_q_received_and_path() {
    let bindings = [
        binding(
            "sip:alice@192.0.2.1:5060",
            Some(1000),
            source(Proto::Udp, "192.0.2.1:5060"),
            None,
        ),
        binding(
            "sip:alice@10.0.0.5:5060",
            Some(500),
            source(Proto::Udp, "203.0.113.9:40000"),
            None,
        ),
        binding(
            "sip:alice@10.0.0.6;transport=tcp",
            None,
            source(Proto::Tcp, "[2001:db8::1]:5070"),
            None,
        ),
        binding(
            "sip:alice@phone.invalid",
            None,
            None,
            Some("<sip:edge.example.com;lr>,<sip:\"odd\"@p;lr>"),
        ),
    ];
    let (reply, n) = redirect(Proto::Tcp, &bindings, None);
    assert!(
        reply.starts_with("SIP/2.0 302 Moved Temporarily\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nTo: <sip:alice@example.com>;tag="),
        "{reply}"
    );
    assert!(reply.ends_with("Content-Length: 0\r\n\r\n"));
    assert_eq!(n, 4);
    assert_eq!(
        contacts(&reply),
        [
            "<sip:alice@192.0.2.1:5060>;q=1",
            "<sip:alice@10.0.0.5:5060>;q=0.5;received=\"sip:203.0.113.9:40000\"",
            "<sip:alice@10.0.0.6;transport=tcp>;received=\"sip:[2001:db8::1]:5070;transport=tcp\"",
            "<sip:alice@phone.invalid>;path=\"<sip:edge.example.com;lr>,<sip:\\\"odd\\\"@p;lr>\"",
        ]
    );
}

#[test]
fn a_contact_at_its_source_by_default_port_needs_no_received() {
    let bindings = [
        binding(
            "sip:a@192.0.2.1",
            None,
            source(Proto::Udp, "192.0.2.1:5060"),
            None,
        ),
        binding(
            "sips:a@192.0.2.1",
            None,
            source(Proto::Tls, "192.0.2.1:5061"),
            None,
        ),
        binding(
            "sip:a@[2001:db8::2]:5062",
            None,
            source(Proto::Tcp, "[2001:db8::2]:5062"),
            None,
        ),
        binding(
            "sip:a@192.0.2.3",
            None,
            source(Proto::Udp, "[::ffff:192.0.2.3]:5060"),
            None,
        ),
    ];
    let (reply, _) = redirect(Proto::Udp, &bindings, None);
    assert!(!reply.contains("received"), "{reply}");
}

#[test]
fn over_udp_only_what_fits_the_budget_is_listed() {
    let long = format!("sip:{}@192.0.2.1", "x".repeat(900));
    let bindings = [
        binding("sip:first@192.0.2.1", Some(1000), None, None),
        binding(&long, Some(900), None, None),
        binding("sip:third@192.0.2.1", Some(800), None, None),
    ];
    let (reply, n) = redirect(Proto::Udp, &bindings, Some(600));
    assert!(reply.len() <= 600, "{}", reply.len());
    assert_eq!(n, 2);
    assert_eq!(
        contacts(&reply),
        ["<sip:first@192.0.2.1>;q=1", "<sip:third@192.0.2.1>;q=0.8"]
    );
    // The free function holds UDP to the 1,300-byte floor, TCP to nothing.
    let many: Vec<Binding> = (0..100)
        .map(|i| binding(&format!("sip:phone{i}@192.0.2.1"), None, None, None))
        .collect();
    let mut out = Vec::new();
    let (udp, tcp) = match parse_message(INVITE.as_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => {
            let udp = write_redirect(&mut out, &r, &peer(Proto::Udp), &many);
            assert!(out.len() <= budget::FLOOR, "{}", out.len());
            let tcp = write_redirect(&mut out, &r, &peer(Proto::Tcp), &many);
            (udp, tcp)
        }
        other => panic!("{other:?}"),
    };
    assert!(udp > 0 && udp < 100, "{udp}");
    assert_eq!(tcp, 100);
    assert_eq!(contacts(std::str::from_utf8(&out).unwrap()).len(), 100);
}

#[test]
fn no_bindings_writes_a_302_without_contacts_and_says_so() {
    let (reply, n) = redirect(Proto::Udp, &[], Some(1300));
    assert_eq!(n, 0);
    assert!(contacts(&reply).is_empty());
}

#[test]
fn the_registrar_bounds_a_udp_302_by_its_settings_and_the_request_size() {
    let settings = crate::registrar::Settings {
        udp_reply_max_size: 2000,
        ..Default::default()
    };
    let reg = Registrar::new(settings, Default::default());
    let many: Vec<Binding> = (0..100)
        .map(|i| binding(&format!("sip:phone{i}@192.0.2.1"), None, None, None))
        .collect();
    let mut out = Vec::new();
    match parse_message(INVITE.as_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => {
            // A large request may draw up to the datagram limit…
            let n = reg.write_redirect(&mut out, &r, &peer(Proto::Udp), 10_000, &many);
            assert!(out.len() <= 2000 && out.len() > 1300, "{}", out.len());
            assert!(n > 0 && n < 100);
            // …a short one the 1,300-byte floor; TCP everything.
            reg.write_redirect(&mut out, &r, &peer(Proto::Udp), 50, &many);
            assert!(out.len() <= budget::FLOOR, "{}", out.len());
            assert_eq!(
                reg.write_redirect(&mut out, &r, &peer(Proto::Ws), 50, &many),
                100
            );
        }
        other => panic!("{other:?}"),
    }
}
