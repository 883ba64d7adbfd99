//! `[route] mode = "proxy"` message by message: scripted phones around a
//! real kamrs check every header the proxy writes, the flows it uses
//! (NAT source addresses, TCP connections, the Record-Route token), the
//! transaction rules (CANCEL, timer C, forking, hop-by-hop ACK), and that
//! forged input changes nothing. The SIPp and baresip calls are in
//! proxy.rs.

use std::time::Duration;

use kamrs_tests::ctl::CtlKamrs;
use kamrs_tests::digest::h;
use kamrs_tests::ua::{header, headers, reply, request, status_of, Phone};
use kamrs_tests::{unique, Kamrs, TempDir};

const PROXY: &str = "[route]\nmode = \"proxy\"\n";

fn proxy(extra: &str) -> Kamrs {
    Kamrs::start(&format!("{PROXY}{extra}"))
}

/// INVITE from `caller` to bob@example.com, with a Contact naming a dead
/// address (a caller behind NAT).
fn invite(caller: &Phone, call_id: &str) -> String {
    request(
        "INVITE",
        "sip:bob@example.com",
        caller,
        "<sip:alice@example.com>;tag=alice1",
        "<sip:bob@example.com>",
        call_id,
        1,
        "Contact: <sip:alice@198.51.100.1:5060>\r\n",
    )
}

/// The Route set a UA builds from the Record-Routes of a response or
/// request: the callee uses them in order, the caller reversed.
fn route_set(msg: &str, reverse: bool) -> String {
    let mut rr: Vec<String> = headers(msg, "Record-Route")
        .iter()
        .flat_map(|v| v.split(", ").map(str::to_owned).collect::<Vec<_>>())
        .collect();
    if reverse {
        rr.reverse();
    }
    rr.iter().map(|r| format!("Route: {r}\r\n")).collect()
}

#[test]
fn a_call_reaches_a_natted_phone_and_its_dialog_follows_the_record_route() {
    let k = proxy("");
    let mut bob = Phone::udp(k.udp());
    // Bob's Contact names an address nothing listens on: only his source
    // address reaches him.
    assert_eq!(
        bob.register("bob", Some("<sip:bob@192.0.2.9:5060>"), ""),
        200
    );
    let mut alice = Phone::udp(k.udp());
    let call = format!("call-{}", unique());
    alice.send(&invite(&alice, &call));
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    assert!(
        inv.starts_with("INVITE sip:bob@192.0.2.9:5060 SIP/2.0\r\n"),
        "{inv}"
    );
    let vias = headers(&inv, "Via");
    assert_eq!(vias.len(), 2, "{inv}");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {};branch=z9hG4bK", k.udp())),
        "{inv}"
    );
    // The caller's Via tells the next hop where it really came from.
    assert!(
        vias[1].contains(&format!(";rport={};received=127.0.0.1", alice.local.port())),
        "{inv}"
    );
    assert_eq!(header(&inv, "Max-Forwards").as_deref(), Some("69"));
    let rr = headers(&inv, "Record-Route");
    assert_eq!(rr.len(), 1, "{inv}");
    assert!(rr[0].ends_with(&format!("@{};lr>", k.udp())), "{inv}");

    bob.send(&reply(&inv, 180, "Ringing", "bob1", ""));
    let ringing = alice.expect_status(180);
    assert_eq!(
        headers(&ringing, "Via").len(),
        1,
        "our Via is removed: {ringing}"
    );
    bob.send(&reply(
        &inv,
        200,
        "OK",
        "bob1",
        "Contact: <sip:bob@192.0.2.9:5060>\r\n",
    ));
    let ok = alice.expect_status(200);
    assert_eq!(headers(&ok, "Record-Route"), rr);

    // The ACK and a re-INVITE-free dialog: ACK from alice, BYE from bob,
    // each to a Contact that reaches nobody, delivered by the token.
    let ack = request(
        "ACK",
        "sip:bob@192.0.2.9:5060",
        &alice,
        "<sip:alice@example.com>;tag=alice1",
        "<sip:bob@example.com>;tag=bob1",
        &call,
        1,
        &route_set(&ok, true),
    );
    alice.send(&ack);
    let got = bob.expect_request("ACK");
    assert!(
        header(&got, "Route").is_none(),
        "our Route entry is consumed: {got}"
    );
    let bye = request(
        "BYE",
        "sip:alice@198.51.100.1:5060",
        &bob,
        "<sip:bob@example.com>;tag=bob1",
        "<sip:alice@example.com>;tag=alice1",
        &call,
        1,
        &route_set(&inv, false),
    );
    bob.send(&bye);
    let got = alice.expect_request("BYE");
    alice.send(&reply(&got, 200, "OK", "alice1", ""));
    bob.expect_status(200);
    assert_eq!(k.stat_until("tm:2xx_transactions", 2), 2, "INVITE and BYE");
    assert!(k.stat("core:fwd_requests") >= 3);
}

#[test]
fn a_phone_on_tcp_is_reached_over_its_connection_and_a_refusal_is_acked_hop_by_hop() {
    let k = proxy("");
    let mut bob = Phone::tcp(k.tcp());
    // The Contact's port is closed: only the connection reaches bob.
    assert_eq!(
        bob.register("bob", Some("<sip:bob@127.0.0.1:9;transport=tcp>"), ""),
        200
    );
    let mut alice = Phone::udp(k.udp());
    let call = format!("call-{}", unique());
    let sent = invite(&alice, &call);
    alice.send(&sent);
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    assert!(headers(&inv, "Via")[0].starts_with("SIP/2.0/TCP "), "{inv}");
    // Different transports on the two sides: two Record-Routes (RFC 5658).
    let rr = headers(&inv, "Record-Route");
    assert_eq!(rr.len(), 2, "{inv}");
    assert!(
        rr[0].contains(";transport=tcp;lr>") && !rr[1].contains("transport="),
        "{rr:?}"
    );
    bob.send(&reply(&inv, 486, "Busy Here", "bob1", ""));
    // kamrs acknowledges the 486 itself, with the INVITE's branch.
    let ack = bob.expect_request("ACK");
    assert_eq!(header(&ack, "Via"), headers(&inv, "Via").first().cloned());
    assert!(header(&ack, "To").unwrap().contains("tag=bob1"), "{ack}");
    let busy = alice.expect_status(486);
    let to = header(&busy, "To").unwrap();
    // Alice's ACK for the 486 (her INVITE's branch) stays at kamrs.
    let ack = sent
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace("To: <sip:bob@example.com>", &format!("To: {to}"));
    alice.send(&ack);
    bob.expect_nothing(Duration::from_millis(300));
    assert_eq!(k.stat_until("tm:4xx_transactions", 1), 1);
}

#[test]
fn forking_rings_every_binding_and_cancels_the_others_when_one_answers() {
    let k = proxy("");
    let mut desk = Phone::udp(k.udp());
    let mut mobile = Phone::udp(k.udp());
    assert_eq!(desk.register("bob", None, ""), 200);
    assert_eq!(mobile.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("fork-{}", unique())));
    alice.expect_status(100);
    let inv_desk = desk.expect_request("INVITE");
    let inv_mobile = mobile.expect_request("INVITE");
    assert_ne!(
        headers(&inv_desk, "Via")[0],
        headers(&inv_mobile, "Via")[0],
        "a branch each"
    );
    desk.send(&reply(&inv_desk, 180, "Ringing", "desk", ""));
    mobile.send(&reply(&inv_mobile, 180, "Ringing", "mobile", ""));
    alice.expect_status(180);
    alice.expect_status(180);
    mobile.send(&reply(
        &inv_mobile,
        200,
        "OK",
        "mobile",
        "Contact: <sip:bob@127.0.0.1:1>\r\n",
    ));
    alice.expect_status(200);
    let cancel = desk.expect_request("CANCEL");
    assert_eq!(
        header(&cancel, "Via"),
        headers(&inv_desk, "Via").first().cloned()
    );
    desk.send(&reply(&cancel, 200, "OK", "desk", ""));
    desk.send(&reply(&inv_desk, 487, "Request Terminated", "desk", ""));
    desk.expect_request("ACK");
    // The 487 is the cancelled branch's business, not alice's.
    alice.expect_nothing(Duration::from_millis(300));
    assert_eq!(k.stat("tm:cancels_sent"), 1);
}

#[test]
fn a_caller_cancels_before_the_answer() {
    let k = proxy("");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let inv = invite(&alice, &format!("cancel-{}", unique()));
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    bob.send(&reply(&got, 180, "Ringing", "bob1", ""));
    alice.expect_status(180);
    // CANCEL: same Via branch, CSeq number, Call-ID, From, To as the INVITE.
    let cancel = inv
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace("Contact: <sip:alice@198.51.100.1:5060>\r\n", "");
    alice.send(&cancel);
    alice.expect_status(200);
    let c = bob.expect_request("CANCEL");
    bob.send(&reply(&c, 200, "OK", "bob1", ""));
    bob.send(&reply(&got, 487, "Request Terminated", "bob1", ""));
    bob.expect_request("ACK");
    alice.expect_status(487);
    // A CANCEL for nothing: 481.
    alice.send(&cancel.replace("z9hG4bK", "z9hG4bKnone"));
    alice.expect_status(481);
}

#[test]
fn a_phone_that_only_rings_is_cancelled_at_fr_inv_timer_and_the_caller_gets_408() {
    let k = proxy("fr_inv_timer = 1000\n");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("ring-{}", unique())));
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    bob.send(&reply(&got, 180, "Ringing", "bob1", ""));
    alice.expect_status(180);
    let c = bob.expect_request("CANCEL");
    bob.send(&reply(&c, 200, "OK", "bob1", ""));
    bob.send(&reply(&got, 487, "Request Terminated", "bob1", ""));
    bob.expect_request("ACK");
    alice.expect_status(408);
    assert_eq!(k.stat("tm:timeouts"), 1);
}

#[test]
fn retransmissions_over_udp_and_a_silent_phone_times_out() {
    let k = proxy("fr_timer = 1500\n");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("silent-{}", unique())));
    alice.expect_status(100);
    // Timer A: the INVITE again after 0.5 s and 1 s more, same branch.
    let first = bob.expect_request("INVITE");
    let again = bob.expect_request("INVITE");
    assert_eq!(first, again);
    let mut alice_msgs = Vec::new();
    while let Some(m) = alice.recv(Duration::from_secs(3)) {
        alice_msgs.push(m);
        if alice_msgs
            .last()
            .is_some_and(|m| m.starts_with("SIP/2.0 408"))
        {
            break;
        }
    }
    assert!(
        alice_msgs.iter().any(|m| status_of(m) == 408),
        "timer B gives 408: {alice_msgs:?}"
    );
}

#[test]
fn users_without_bindings_get_480_and_other_domains_403() {
    let k = proxy("domains = [\"example.com\"]\n");
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("none-{}", unique())));
    alice.expect_status(480);
    let foreign = request(
        "INVITE",
        "sip:carol@192.0.2.50",
        &alice,
        "<sip:alice@example.com>;tag=a",
        "<sip:carol@192.0.2.50>",
        &format!("foreign-{}", unique()),
        1,
        "",
    );
    alice.send(&foreign);
    let r = alice.expect_status(403);
    assert!(r.starts_with("SIP/2.0 403 Relaying Forbidden"), "{r}");
    // The tutorial's health check still answers.
    alice.send(&request(
        "OPTIONS",
        &format!("sip:{}", k.udp()),
        &alice,
        "<sip:mon@example.com>;tag=m",
        &format!("<sip:{}>", k.udp()),
        &unique(),
        1,
        "",
    ));
    alice.expect_status(200);
}

#[test]
fn hop_limits_loops_and_forged_tokens_are_refused() {
    let k = proxy("");
    let mut alice = Phone::udp(k.udp());
    let inv = invite(&alice, &format!("hops-{}", unique()));
    alice.send(&inv.replace("Max-Forwards: 70", "Max-Forwards: 0"));
    alice.expect_status(483);
    // An extension the proxy must understand: it understands none.
    let strict = invite(&alice, &format!("ext-{}", unique())).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nProxy-Require: sec-agree\r\n",
    );
    alice.send(&strict);
    let r = alice.expect_status(420);
    assert_eq!(
        header(&r, "Unsupported").as_deref(),
        Some("sec-agree"),
        "{r}"
    );
    // bob's binding (made by an admin, no source address) points back at
    // kamrs: the request comes round again and is refused as a loop, and
    // that answer reaches alice.
    let c = CtlKamrs::start(PROXY, "");
    let k = &c.kamrs;
    c.ctl_ok(&["ul.add", "bob", &format!("sip:bob@{}", k.udp())]);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("loop-{}", unique())));
    let mut statuses = Vec::new();
    while let Some(m) = alice.recv(Duration::from_secs(3)) {
        statuses.push(status_of(&m));
        if status_of(&m) >= 200 {
            break;
        }
    }
    assert!(statuses.contains(&482), "{statuses:?}");
    // A Route naming kamrs with a token it never issued is refused, and
    // nothing leaves kamrs.
    let fwd = || c.ctl_ok(&["stats.get_statistics", "core:fwd_requests"]);
    let before = fwd();
    let forged = request(
        "BYE",
        "sip:victim@192.0.2.77:5060",
        &alice,
        "<sip:alice@example.com>;tag=a",
        "<sip:victim@example.com>;tag=v",
        &unique(),
        2,
        &format!(
            "Route: <sip:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@{};lr>\r\n",
            k.udp()
        ),
    );
    alice.send(&forged);
    let r = alice.expect_status(403);
    assert!(
        r.starts_with("SIP/2.0 403 Invalid Record-Route Token"),
        "{r}"
    );
    assert_eq!(fwd(), before);
}

#[test]
fn a_forged_response_changes_nothing() {
    let k = proxy("");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("forge-{}", unique())));
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    // Mallory knows the branch (she sniffed it) but is not bob's flow.
    let mut mallory = Phone::udp(k.udp());
    mallory.send(&reply(&inv, 200, "OK", "evil", ""));
    assert_eq!(k.stat_until("tm:stray_replies", 1), 1);
    alice.expect_nothing(Duration::from_millis(300));
    // A branch that was never sent.
    let invented = reply(&inv, 200, "OK", "evil", "").replace("z9hG4bK-kr", "z9hG4bK-kr0");
    bob.send(&invented);
    assert_eq!(k.stat_until("tm:stray_replies", 2), 2);
    // Bob's real answer still goes through.
    bob.send(&reply(&inv, 486, "Busy Here", "bob1", ""));
    alice.expect_status(486);
}

#[test]
fn callers_claiming_our_users_must_authenticate_with_407() {
    let dir = TempDir::new("proxy-auth");
    let mut subs = String::new();
    for (u, p) in [("alice", "secret-a"), ("bob", "secret-b")] {
        subs += &format!(
            "[[subscriber]]\nusername = \"{u}\"\ndomain = \"example.com\"\nha1 = \"{}\"\n\n",
            h("MD5", &format!("{u}:example.com:{p}"))
        );
    }
    let path = dir.path().join("subscribers.toml");
    std::fs::write(&path, subs).unwrap();
    let k = Kamrs::start(&format!(
        "{PROXY}domains = [\"example.com\"]\n[auth]\nmode = \"digest\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n",
        path.display(),
        dir.path().join("nonce.secret").display()
    ));
    // Bob is there (his REGISTER is authenticated the usual way; here a
    // binding made through the control API would do as well).
    let mut bob = Phone::udp(k.udp());
    let mut alice = Phone::udp(k.udp());
    let call = format!("auth-{}", unique());
    let inv = invite(&alice, &call);
    alice.send(&inv);
    let challenge = alice.expect_status(407);
    let pa = header(&challenge, "Proxy-Authenticate").expect("Proxy-Authenticate");
    let field = |name: &str| {
        pa.split(&format!("{name}=\""))
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let (realm, nonce) = (field("realm"), field("nonce"));
    // A wrong password: challenged again, nothing forwarded.
    let answer = |password: &str, nc: u32| {
        let uri = "sip:bob@example.com";
        let ha1 = h("MD5", &format!("alice:{realm}:{password}"));
        let ha2 = h("MD5", &format!("INVITE:{uri}"));
        let cnonce = unique();
        let response = h(
            "MD5",
            &format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"),
        );
        format!("Proxy-Authorization: Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\"\r\n")
    };
    let base = invite(&alice, &call);
    let with = |creds: String, n: u32| {
        base.clone()
            .replace("CSeq: 1 INVITE", &format!("CSeq: {n} INVITE"))
            .replace(
                "Content-Length: 0\r\n",
                &format!("{creds}Content-Length: 0\r\n"),
            )
    };
    alice.send(&with(answer("wrong", 1), 2));
    alice.expect_status(407);
    // The right one: on to bob, who has no binding yet, so 480.
    alice.send(&with(answer("secret-a", 2), 3));
    alice.expect_status(480);
    // From a foreign domain to our user: no challenge.
    let foreign = invite(&alice, &format!("ext-{}", unique())).replace(
        "<sip:alice@example.com>;tag=alice1",
        "<sip:ext@other.example.org>;tag=x",
    );
    alice.send(&foreign);
    alice.expect_status(480);
    // A user the subscriber list does not know is not merely away: 404.
    alice.send(
        &foreign
            .replace("sip:bob@example.com", "sip:zed@example.com")
            .replace("z9hG4bK", "z9hG4bKzed"),
    );
    alice.expect_status(404);
    bob.expect_nothing(Duration::from_millis(100));
}

#[test]
fn redirect_mode_answers_302_with_the_bindings_in_q_order() {
    let k = Kamrs::start("[route]\nmode = \"redirect\"\n");
    let mut low = Phone::udp(k.udp());
    let mut high = Phone::udp(k.udp());
    assert_eq!(
        low.register("bob", Some("<sip:bob@192.0.2.1:5060>;q=0.5"), ""),
        200
    );
    assert_eq!(
        high.register("bob", Some("<sip:bob@192.0.2.2:5060>;q=1.0"), ""),
        200
    );
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("redir-{}", unique())));
    let r = alice.expect_status(302);
    let contacts: Vec<String> = headers(&r, "Contact");
    let all = contacts.join(", ");
    let first = all.find("192.0.2.2").expect("q=1 binding listed");
    let second = all.find("192.0.2.1").expect("q=0.5 binding listed");
    assert!(first < second, "q order: {all}");
    // Nobody was called.
    low.expect_nothing(Duration::from_millis(100));
    high.expect_nothing(Duration::from_millis(100));
}

#[test]
fn a_websocket_phone_is_called_over_its_websocket_and_the_bye_follows() {
    use kamrs_tests::ws::{frame, must_read, raw_daemon, ws_register, MASK, OP_TEXT};
    use std::io::Write;
    let (k, _dir) = raw_daemon("", "\n[route]\nmode = \"proxy\"\n");
    let mut bob = ws_register(&k, "bob");
    let mut alice = Phone::udp(k.udp());
    let call = format!("ws-{}", unique());
    alice.send(&invite(&alice, &call));
    alice.expect_status(100);
    let f = must_read(&mut bob, "INVITE over the WebSocket");
    let inv = String::from_utf8(f.payload).unwrap();
    assert!(
        inv.starts_with("INVITE sip:bob@") && inv.contains(".invalid;transport=ws SIP/2.0"),
        "{inv}"
    );
    assert!(headers(&inv, "Via")[0].starts_with("SIP/2.0/WS "), "{inv}");
    assert_eq!(
        headers(&inv, "Record-Route").len(),
        2,
        "WS and UDP sides: {inv}"
    );
    let ok = reply(
        &inv,
        200,
        "OK",
        "bob1",
        "Contact: <sip:bob@x.invalid;transport=ws>\r\n",
    );
    bob.write_all(&frame(true, OP_TEXT, ok.as_bytes(), MASK))
        .unwrap();
    let ok = alice.expect_status(200);
    let bye = request(
        "BYE",
        "sip:bob@x.invalid;transport=ws",
        &alice,
        "<sip:alice@example.com>;tag=alice1",
        "<sip:bob@example.com>;tag=bob1",
        &call,
        2,
        &route_set(&ok, true),
    );
    alice.send(&bye);
    let f = must_read(&mut bob, "BYE over the WebSocket");
    let got = String::from_utf8(f.payload).unwrap();
    assert!(
        got.starts_with("BYE sip:bob@x.invalid;transport=ws SIP/2.0"),
        "{got}"
    );
    let done = reply(&got, 200, "OK", "bob1", "");
    bob.write_all(&frame(true, OP_TEXT, done.as_bytes(), MASK))
        .unwrap();
    alice.expect_status(200);
}

#[test]
fn transactions_beyond_max_transactions_get_503() {
    let k = proxy("max_transactions = 1\n");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("one-{}", unique())));
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    let mut carol = Phone::udp(k.udp());
    carol.send(&invite(&carol, &format!("two-{}", unique())));
    let busy = carol.expect_status(503);
    assert_eq!(header(&busy, "Retry-After").as_deref(), Some("5"));
    assert_eq!(k.stat("tm:refused"), 1);
    // REGISTER is never refused for it.
    let mut dave = Phone::udp(k.udp());
    assert_eq!(dave.register("dave", None, ""), 200);
    // The open call still completes.
    bob.send(&reply(&inv, 486, "Busy Here", "b", ""));
    alice.expect_status(486);
}

#[test]
fn a_retransmitted_request_gets_the_last_response_again_and_is_not_forwarded_twice() {
    let k = proxy("");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let inv = invite(&alice, &format!("again-{}", unique()));
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    bob.send(&reply(&got, 180, "Ringing", "bob1", ""));
    alice.expect_status(180);
    // Alice did not hear the 180 (as far as she knows): the same INVITE.
    alice.send(&inv);
    alice.expect_status(180);
    bob.expect_nothing(Duration::from_millis(300));
    assert_eq!(k.stat("core:fwd_requests"), 1);
    bob.send(&reply(
        &got,
        200,
        "OK",
        "bob1",
        "Contact: <sip:bob@127.0.0.1:1>\r\n",
    ));
    alice.expect_status(200);
}

#[test]
fn jssip_on_a_websocket_and_a_udp_phone_message_each_other_through_the_proxy() {
    use kamrs_tests::jssip::{jssip_ready, JsSip};
    use kamrs_tests::ws::raw_daemon;
    let Some(script) = jssip_ready() else { return };
    let (k, _dir) = raw_daemon("", "\n[route]\nmode = \"proxy\"\n");
    let mut ua = JsSip::start(
        &script,
        &format!("ws://{}", k.ws()),
        "sip:alice@example.com",
        None,
    );
    assert_eq!(ua.wait_for("registered")["status"], 200);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(
        bob.register("bob", Some("<sip:bob@192.0.2.9:5060>"), ""),
        200
    );
    // To JsSIP: over its WebSocket, whose Contact is `*.invalid`.
    bob.send(
        &request(
            "MESSAGE",
            "sip:alice@example.com",
            &bob,
            "<sip:bob@example.com>;tag=m1",
            "<sip:alice@example.com>",
            &unique(),
            1,
            "Content-Type: text/plain\r\n",
        )
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 5\r\n\r\nhello",
        ),
    );
    let got = ua.wait_for("message");
    assert_eq!(got["body"], "hello", "{got}");
    assert_eq!(got["from"], "sip:bob@example.com", "{got}");
    bob.expect_status(200);
    // From JsSIP: to bob's NAT address, not his dead Contact.
    ua.command("message sip:bob@example.com hi bob");
    let m = bob.expect_request("MESSAGE");
    assert!(
        m.starts_with("MESSAGE sip:bob@192.0.2.9:5060 SIP/2.0"),
        "{m}"
    );
    assert!(m.ends_with("hi bob"), "{m}");
    bob.send(&reply(&m, 200, "OK", "b", ""));
    ua.wait_for("messageSucceeded");
    assert_eq!(k.stat("tm:2xx_transactions"), 2);
}

#[test]
fn without_record_route_an_in_dialog_request_reaches_only_the_phone_its_uri_names() {
    let k = proxy("record_route = false\n");
    let mut desk = Phone::udp(k.udp());
    let mut mobile = Phone::udp(k.udp());
    let desk_contact = format!("sip:bob@{}", desk.local);
    assert_eq!(
        desk.register("bob", Some(&format!("<{desk_contact}>")), ""),
        200
    );
    assert_eq!(mobile.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let bye = request(
        "BYE",
        &desk_contact,
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>;tag=desk",
        &unique(),
        2,
        "",
    );
    alice.send(&bye);
    let got = desk.expect_request("BYE");
    assert!(header(&got, "Record-Route").is_none(), "{got}");
    mobile.expect_nothing(Duration::from_millis(300));
    desk.send(&reply(&got, 200, "OK", "desk", ""));
    alice.expect_status(200);
}

#[test]
fn serial_forking_rings_the_best_q_first_and_the_next_when_it_is_busy() {
    let k = proxy("serial_forking = true\n");
    let mut desk = Phone::udp(k.udp());
    let mut mobile = Phone::udp(k.udp());
    let desk_contact = format!("<sip:bob@{}>;q=1.0", desk.local);
    let mobile_contact = format!("<sip:bob@{}>;q=0.5", mobile.local);
    assert_eq!(desk.register("bob", Some(&desk_contact), ""), 200);
    assert_eq!(mobile.register("bob", Some(&mobile_contact), ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("serial-{}", unique())));
    alice.expect_status(100);
    let first = desk.expect_request("INVITE");
    mobile.expect_nothing(Duration::from_millis(300));
    desk.send(&reply(&first, 486, "Busy Here", "desk", ""));
    desk.expect_request("ACK");
    let second = mobile.expect_request("INVITE");
    mobile.send(&reply(
        &second,
        200,
        "OK",
        "mobile",
        "Contact: <sip:bob@127.0.0.1:1>\r\n",
    ));
    alice.expect_status(200);
}

#[test]
fn a_route_preloaded_by_an_outbound_proxy_setting_is_consumed() {
    let k = proxy("");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let inv = invite(&alice, &format!("obp-{}", unique())).replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nRoute: <sip:{};lr>\r\n", k.udp()),
    );
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    assert!(header(&got, "Route").is_none(), "{got}");
    // A Route to somebody else first is not followed.
    let other = invite(&alice, &format!("obp2-{}", unique())).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRoute: <sip:192.0.2.66;lr>\r\n",
    );
    alice.send(&other);
    alice.expect_status(403);
}

#[test]
fn a_binding_registered_through_an_edge_proxy_is_reached_through_its_path() {
    let k = Kamrs::start(&format!("use_path = true\n{PROXY}"));
    // The edge proxy relays bob's REGISTER with a Path naming itself.
    let mut edge = Phone::udp(k.udp());
    let path = format!("<sip:edge@{};lr>", edge.local);
    assert_eq!(
        edge.register(
            "bob",
            Some("<sip:bob@10.0.0.8:5060>"),
            &format!("Path: {path}\r\nSupported: path\r\n")
        ),
        200
    );
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("path-{}", unique())));
    alice.expect_status(100);
    let got = edge.expect_request("INVITE");
    assert!(
        got.starts_with("INVITE sip:bob@10.0.0.8:5060 SIP/2.0"),
        "{got}"
    );
    assert_eq!(
        header(&got, "Route").as_deref(),
        Some(path.as_str()),
        "{got}"
    );
}

#[test]
fn a_tcp_registration_aimed_at_a_victim_cannot_make_kamrs_flood_it_over_udp() {
    let k = proxy("");
    let mut victim = Phone::udp(k.udp());
    {
        let mut attacker = Phone::tcp(k.tcp());
        let aimed = format!("<sip:x@{}>", victim.local);
        assert_eq!(attacker.register("x", Some(&aimed), ""), 200);
        // The attacker hangs up; the binding stays (handle_lost_tcp off).
    }
    let mut alice = Phone::udp(k.udp());
    // Until kamrs has seen the connection go, the INVITE may still be
    // queued for it; after, it must get 480 without reaching the victim.
    let mut answered = 0;
    for i in 0..50 {
        alice.send(
            &invite(&alice, &format!("reflect-{i}-{}", unique())).replace("sip:bob@", "sip:x@"),
        );
        let mut status = 0;
        while let Some(m) = alice.recv(Duration::from_secs(2)) {
            status = status_of(&m);
            if status >= 200 {
                break;
            }
        }
        if status == 480 {
            answered += 1;
            break;
        }
    }
    assert_eq!(
        answered, 1,
        "the closed connection's binding is unreachable"
    );
    victim.expect_nothing(Duration::from_millis(700));
}

#[test]
fn redirect_mode_challenges_callers_claiming_our_users() {
    let dir = TempDir::new("redirect-auth");
    let path = dir.path().join("subscribers.toml");
    std::fs::write(
        &path,
        format!(
            "[[subscriber]]\nusername = \"alice\"\ndomain = \"example.com\"\nha1 = \"{}\"\n",
            h("MD5", "alice:example.com:pw")
        ),
    )
    .unwrap();
    let k = Kamrs::start(&format!(
        "[route]\nmode = \"redirect\"\ndomains = [\"example.com\"]\n[auth]\nmode = \"digest\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n",
        path.display(),
        dir.path().join("nonce.secret").display()
    ));
    let mut alice = Phone::udp(k.udp());
    alice.send(&invite(&alice, &format!("r-{}", unique())));
    alice.expect_status(407);
}

/// One whole SIP message from a TLS stream (headers, then Content-Length
/// bytes), within 5 s.
fn read_tls_message(s: &mut kamrs_tests::pki::TlsStream, buf: &mut Vec<u8>) -> String {
    use std::io::Read;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = header(&head, "Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg = String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
                buf.drain(..end + 4 + len);
                return msg;
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "no whole message over TLS: {:?}",
            String::from_utf8_lossy(buf)
        );
        s.sock.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => panic!("TLS connection closed"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("TLS read: {e}"),
        }
    }
}

#[test]
fn a_phone_on_tls_is_called_over_its_tls_connection() {
    use kamrs_tests::pki::Ca;
    use kamrs_tests::tls_client::{good_client, start_tls};
    use std::io::Write;
    let ca = Ca::new("kamrs proxy tls CA");
    let dir = TempDir::new("proxy-tls");
    let (k, _leaf) = start_tls(&ca, &dir, "", &format!("\n{PROXY}"));
    let mut bob = good_client(&k, &ca, "bob");
    let mut buf = Vec::new();
    let mut alice = Phone::udp(k.udp());
    let call = format!("tls-{}", unique());
    alice.send(&invite(&alice, &call));
    alice.expect_status(100);
    let inv = read_tls_message(&mut bob, &mut buf);
    assert!(
        inv.starts_with("INVITE sip:bob@127.0.0.1:") && inv.contains(";transport=tls SIP/2.0"),
        "{inv}"
    );
    assert!(headers(&inv, "Via")[0].starts_with("SIP/2.0/TLS "), "{inv}");
    let rr = headers(&inv, "Record-Route");
    assert_eq!(rr.len(), 2, "{inv}");
    assert!(rr[0].contains(";transport=tls;lr>"), "{rr:?}");
    bob.write_all(
        reply(
            &inv,
            200,
            "OK",
            "bob1",
            "Contact: <sip:bob@127.0.0.1:9;transport=tls>\r\n",
        )
        .as_bytes(),
    )
    .unwrap();
    bob.flush().unwrap();
    let ok = alice.expect_status(200);
    // The dialog's BYE reaches bob over the same TLS connection.
    alice.send(&request(
        "BYE",
        "sip:bob@127.0.0.1:9;transport=tls",
        &alice,
        "<sip:alice@example.com>;tag=alice1",
        "<sip:bob@example.com>;tag=bob1",
        &call,
        2,
        &route_set(&ok, true),
    ));
    let bye = read_tls_message(&mut bob, &mut buf);
    assert!(
        bye.starts_with("BYE sip:bob@127.0.0.1:9;transport=tls SIP/2.0"),
        "{bye}"
    );
}

#[test]
fn relay_foreign_relays_to_an_address_and_is_off_by_default() {
    let k = proxy("domains = [\"example.com\"]\nrelay_foreign = true\n");
    // "carol" lives at another address kamrs does not serve.
    let mut carol = Phone::udp_on("127.0.0.2:0", k.udp());
    let mut alice = Phone::udp(k.udp());
    let target = format!("sip:carol@{}", carol.local);
    alice.send(&request(
        "MESSAGE",
        &target,
        &alice,
        "<sip:alice@example.com>;tag=a",
        &format!("<{target}>"),
        &unique(),
        1,
        "",
    ));
    let got = carol.expect_request("MESSAGE");
    assert!(
        got.starts_with(&format!("MESSAGE {target} SIP/2.0")),
        "{got}"
    );
    carol.send(&reply(&got, 200, "OK", "c", ""));
    alice.expect_status(200);
}
