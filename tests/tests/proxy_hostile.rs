//! `[route] mode = "proxy"` against hostile peers and buggy phones: each
//! test is a defect found by attacking the proxy (a message that made it
//! do what it must not), kept as a regression test with its fix.

use std::time::Duration;

use kamrs_tests::ua::{header, reply, request, Phone};
use kamrs_tests::{unique, Kamrs};

const PROXY: &str = "[route]\nmode = \"proxy\"\n";

/// A UDP datagram may hold bytes past its Content-Length; relayed onto a
/// caller's TCP connection they were read as a second message from kamrs:
/// a callee could inject a forged BYE (or a 200 for any of the caller's
/// transactions) into the caller's stream.
#[test]
fn a_callee_cannot_smuggle_a_message_into_the_callers_stream() {
    let k = Kamrs::start(PROXY);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::tcp(k.tcp());
    let call = format!("smuggle-{}", unique());
    let inv = request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        &format!("Contact: <sip:alice@{};transport=tcp>\r\n", alice.local),
    );
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    let smuggled = format!(
        "BYE sip:alice@{} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bKevil\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>;tag=a1\r\nCall-ID: {call}\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n",
        alice.local,
        k.tcp()
    );
    bob.send(&format!(
        "{}{smuggled}",
        reply(&got, 180, "Ringing", "b1", "")
    ));
    alice.expect_status(180);
    alice.expect_nothing(Duration::from_millis(300));
    // A response without Content-Length (fine over UDP) gets one on the
    // stream: its body is not taken for the start of the next message.
    let ok = reply(&got, 200, "OK", "b1", "Contact: <sip:bob@127.0.0.1:1>\r\n").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/sdp\r\n\r\nv=0\r\n",
    );
    bob.send(&ok);
    let ok = alice.expect_status(200);
    assert_eq!(header(&ok, "Content-Length").as_deref(), Some("5"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nv=0\r\n"), "{ok}");
    alice.expect_nothing(Duration::from_millis(200));
}
