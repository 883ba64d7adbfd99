//! `[route] mode = "redirect"`: an INVITE to a registered AoR gets 302
//! listing every binding's Contact in q order, 480 when there is none
//! (tests/sipp/uac_redirect.xml, uac_480.xml). Checked against Kamailio
//! too (`KAMRS_TESTS_REFERENCE=kamailio`: sl's 3xx lists the destination
//! set that lookup() made). Skipped with a printed reason when SIPp is
//! missing, except under CI, where that is a failure.

use std::net::UdpSocket;
use std::time::Duration;

use kamrs_tests::sipp::{call_id, caller, Proxy, Transport, DOMAIN};
use kamrs_tests::{have, param, recv_udp, udp_client, udp_exchange, unique};

const REDIRECT: &str = "[route]\nmode = \"redirect\"\n";

/// Registers bob from a socket of its own with Contact `<its address>;q=`.
fn register(proxy: &Proxy, q: &str) -> (UdpSocket, String) {
    let sock = udp_client(proxy.udp);
    let port = sock.local_addr().unwrap().port();
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let r = udp_exchange(
        &sock,
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bob@{DOMAIN}>;tag={t}\r\n\
             To: <sip:bob@{DOMAIN}>\r\n\
             Call-ID: {c}@redirect\r\nCSeq: 1 REGISTER\r\n\
             Contact: <{uri}>;q={q}\r\n\
             Expires: 600\r\nContent-Length: 0\r\n\r\n",
            b = unique(),
            t = unique(),
            c = unique()
        ),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    (sock, uri)
}

/// bob has a binding with q=0.5 (registered first) and one with q=1.0:
/// alice's INVITE gets a 302 naming the q=1.0 one first, then the q=0.5
/// one, each with its `;q=`; she ACKs it, and no INVITE reaches bob.
fn redirect_in_q_order(transport: Transport) {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(REDIRECT);
    let (low, low_uri) = register(&proxy, "0.5");
    let (high, high_uri) = register(&proxy, "1.0");
    let mut alice = caller(
        &proxy,
        transport,
        "uac_redirect.xml",
        "bob",
        &call_id(),
        None,
    );
    alice.expect_success(&proxy);

    let replies = alice.received_responses();
    let moved = replies
        .iter()
        .find(|r| r.status == 302)
        .expect("SIPp's scenario passed, so it got a 302");
    let contacts = moved.values("Contact");
    assert_eq!(contacts.len(), 2, "the 302's Contacts: {contacts:?}");
    assert!(
        contacts[0].contains(&format!("<{high_uri}>")),
        "q=1.0 first: {contacts:?}"
    );
    assert!(
        contacts[1].contains(&format!("<{low_uri}>")),
        "q=0.5 second: {contacts:?}"
    );
    let q = |c: &str| -> f32 {
        param(c, "q")
            .unwrap_or_else(|| panic!("no ;q= in {c}"))
            .parse()
            .unwrap()
    };
    assert_eq!(q(&contacts[0]), 1.0, "{contacts:?}");
    assert_eq!(q(&contacts[1]), 0.5, "{contacts:?}");

    // A redirect server forwards nothing.
    for (sock, uri) in [(&low, &low_uri), (&high, &high_uri)] {
        if let Some(m) = recv_udp(sock, Duration::from_millis(300)) {
            panic!(
                "{uri} got a message from a redirect server:\n{}",
                String::from_utf8_lossy(&m)
            );
        }
    }
    if let Some(fwd) = proxy.stat("core:fwd_requests") {
        assert_eq!(fwd, 0, "a redirect server forwarded a request");
    }
}

#[test]
fn a_redirect_lists_every_binding_in_q_order_udp() {
    redirect_in_q_order(Transport::Udp);
}

#[test]
fn a_redirect_lists_every_binding_in_q_order_tcp() {
    redirect_in_q_order(Transport::Tcp);
}

/// No binding: 480, not a 302 with no Contact.
#[test]
fn a_redirect_to_an_aor_without_binding_is_480() {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(REDIRECT);
    let mut alice = caller(
        &proxy,
        Transport::Udp,
        "uac_480.xml",
        "bob",
        &call_id(),
        None,
    );
    alice.expect_success(&proxy);
}
