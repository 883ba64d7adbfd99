use kamrs_tests::ua::{header, headers, reply, request, status_of, Phone};
use kamrs_tests::{unique, Kamrs};
use std::time::Duration;
const PROXY: &str = "[route]\nmode = \"proxy\"\n";

#[test]
fn probes() {
    let k = Kamrs::start(PROXY);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    for mf in ["99999999999", "-1", "abc", "", "256", "4294967296", "69 70"] {
        let inv = request(
            "OPTIONS",
            "sip:bob@example.com",
            &alice,
            "<sip:alice@example.com>;tag=a1",
            "<sip:bob@example.com>",
            &unique(),
            1,
            "",
        )
        .replace("Max-Forwards: 70", &format!("Max-Forwards: {mf}"));
        alice.send(&inv);
        let r = alice.recv(Duration::from_millis(500));
        let b = bob.recv(Duration::from_millis(300));
        eprintln!(
            "MF {mf:?}: alice {:?} bob {:?}",
            r.as_deref().map(|m| m.lines().next().unwrap().to_owned()),
            b.as_deref().map(|m| header(m, "Max-Forwards"))
        );
        if let Some(b) = b {
            bob.send(&reply(&b, 200, "OK", "b", ""));
            let _ = alice.recv(Duration::from_millis(300));
        }
    }
    for ruri in [
        "tel:+15551234",
        "sip:example.com",
        "sip:127.0.0.1",
        "sips:bob@example.com",
        "sip:bob@[::1]",
        "sip:@example.com",
    ] {
        let inv = request(
            "INVITE",
            ruri,
            &alice,
            "<sip:alice@example.com>;tag=a1",
            "<sip:bob@example.com>",
            &unique(),
            1,
            "",
        );
        alice.send(&inv);
        let mut got = vec![];
        while let Some(m) = alice.recv(Duration::from_millis(400)) {
            got.push(m.lines().next().unwrap().to_owned());
        }
        let b = bob.recv(Duration::from_millis(100));
        eprintln!(
            "RURI {ruri}: {got:?} bob={:?}",
            b.as_deref().map(|m| m.lines().next().unwrap().to_owned())
        );
        if let Some(b) = b {
            bob.send(&reply(&b, 486, "Busy", "b", ""));
            let _ = bob.recv(Duration::from_millis(200));
            let _ = alice.recv(Duration::from_millis(300));
        }
    }
    // CSeq method mismatch and missing second Via
    let call = unique();
    let inv = request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        "",
    );
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    bob.send(&reply(&got, 200, "OK", "b", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    eprintln!(
        "CSeq mismatch: alice got {:?}",
        alice.recv(Duration::from_millis(400)).map(|m| m
            .lines()
            .take(8)
            .collect::<Vec<_>>()
            .join(" | "))
    );
    let vias = headers(&got, "Via");
    let r = reply(&got, 180, "Ringing", "b", "");
    let r = r.replace(&format!("Via: {}\r\n", vias[1]), "");
    bob.send(&r);
    eprintln!(
        "no 2nd via: alice got {:?}",
        alice.recv(Duration::from_millis(400)).map(|m| m
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join(" | "))
    );
    eprintln!("status_of {}", status_of("SIP/2.0 200 OK"));
    // ACK without transaction
    alice.send(&request(
        "ACK",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>;tag=zz",
        &unique(),
        1,
        "",
    ));
    eprintln!(
        "ACK no txn: bob {:?}",
        bob.recv(Duration::from_millis(300))
            .map(|m| m.lines().next().unwrap().to_owned())
    );
    eprintln!("alive: {}", bob.register("bob", None, ""));
}
