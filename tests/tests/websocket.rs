//! SIP over WebSocket (RFC 7118) end to end, the paths phones take: a
//! real JsSIP user agent under Node (tests/web/jssip.mjs, driven by
//! `kamrs_tests::jssip`) over ws: and wss:, and raw clients
//! (`kamrs_tests::ws`) for a connection's life: fragments and binary
//! frames, Pings and keepalives, lost peers, expired and unregistered
//! bindings, handle_lost_tcp.
//!
//! Hostile clients (bad upgrades, bad, oversized, unfinished and unmasked
//! frames, peers that never read) are in websocket_hostile.rs. Every wait
//! is on an event (a JSON line from node, a frame, a closed socket, a
//! changed lookup) with a bound.

use std::io::Write;
use std::time::{Duration, Instant};

use kamrs_tests::jssip::{jssip_ready, JsSip};
use kamrs_tests::pki::Ca;
use kamrs_tests::ws::*;
use kamrs_tests::*;
use serde_json::Value;

/// Polls `ul.lookup AOR` until `want(found)` holds, for up to `within`;
/// returns the last answer either way.
fn lookup_until(
    k: &Kamrs,
    aor: &str,
    within: Duration,
    want: impl Fn(&Option<Value>) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = lookup(k, aor);
        if want(&got) || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one binding of a lookup: (Address, Received, Socket).
fn binding(l: &Value) -> (String, String, String) {
    let contacts = l["Contacts"].as_array().unwrap_or_else(|| panic!("{l}"));
    assert_eq!(contacts.len(), 1, "{l}");
    let c = &contacts[0]["Contact"];
    let field = |n: &str| {
        c[n].as_str()
            .unwrap_or_else(|| panic!("no {n} in {l}"))
            .to_owned()
    };
    (field("Address"), field("Received"), field("Socket"))
}

#[test]
fn jssip_registers_over_ws_and_unregisters() {
    let Some(script) = jssip_ready() else { return };
    let ca = Ca::new("kamrs ws test CA");
    let dir = TempDir::new("ws-jssip");
    let k = start(&ca, &dir, "", "");
    let url = format!("ws://{}", k.ws());
    let mut ua = JsSip::start(&script, &url, "sip:alice@localhost", None);
    let reg = ua.wait_for("registered");
    assert_eq!(reg["status"], 200, "{reg}");
    let contact = reg["contact"].as_str().unwrap().to_owned();
    assert!(
        contact.contains(".invalid") && contact.contains("transport=ws"),
        "{reg}"
    );

    let l = lookup(&k, "alice").expect("alice is registered");
    let (address, received, socket) = binding(&l);
    assert!(address.contains(".invalid"), "{l}");
    assert!(address.contains("transport=ws"), "{l}");
    assert!(
        received.starts_with("sip:127.0.0.1:") && received.ends_with(";transport=ws"),
        "{l}"
    );
    assert_eq!(socket, format!("ws:{}", k.ws()), "{l}");
    assert_eq!(k.stat("websocket:ws_current_connections"), 1);
    assert_eq!(k.stat("websocket:wss_current_connections"), 0);
    assert_eq!(k.stat("websocket:ws_successful_handshakes"), 1);

    ua.command("unregister");
    let unreg = ua.wait_for("unregistered");
    assert_eq!(unreg["status"], 200, "{unreg}");
    assert_eq!(lookup(&k, "alice"), None);
    ua.command("quit");
    ua.wait_for("quit");
    assert_eq!(k.stat_until("websocket:ws_current_connections", 0), 0);
}

#[test]
fn jssip_registers_over_wss_and_a_killed_phone_takes_its_binding_along() {
    let Some(script) = jssip_ready() else { return };
    let ca = Ca::new("kamrs wss test CA");
    let dir = TempDir::new("wss-jssip");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let k = start(&ca, &dir, "", "");
    let url = format!("wss://localhost:{}", k.wss().port());
    let mut ua = JsSip::start(&script, &url, "sip:carol@localhost", Some(&ca_path));
    let reg = ua.wait_for("registered");
    assert_eq!(reg["status"], 200, "{reg}");

    let l = lookup(&k, "carol").expect("carol is registered");
    let (address, received, socket) = binding(&l);
    assert!(address.contains(".invalid"), "{l}");
    assert!(received.ends_with(";transport=wss"), "{l}");
    assert_eq!(socket, format!("wss:{}", k.wss()), "{l}");
    // Kamailio's ws_current_connections counts every WebSocket.
    assert_eq!(k.stat("websocket:wss_current_connections"), 1);
    assert_eq!(k.stat("websocket:ws_current_connections"), 1);

    ua.kill();
    let after = lookup_until(&k, "carol", Duration::from_secs(5), Option::is_none);
    assert_eq!(after, None, "the binding outlived its WebSocket");
    assert_eq!(k.stat_until("websocket:wss_current_connections", 0), 0);
}

#[test]
fn a_wss_client_that_does_not_trust_the_certificate_is_refused_by_jssip() {
    // The CA argument is what makes the wss test pass: another CA fails.
    let Some(script) = jssip_ready() else { return };
    let ca = Ca::new("kamrs wss test CA");
    let other = Ca::new("another CA");
    let dir = TempDir::new("wss-jssip-untrusted");
    let ca_path = dir.path().join("other.pem");
    std::fs::write(&ca_path, &other.cert_pem).unwrap();
    let k = start(&ca, &dir, "", "");
    let url = format!("wss://localhost:{}", k.wss().port());
    let mut ua = JsSip::start(&script, &url, "sip:dave@localhost", Some(&ca_path));
    let gone = ua.wait_for("disconnected");
    assert_eq!(gone["error"], true, "{gone}");
    assert_eq!(lookup(&k, "dave"), None);
    assert_eq!(k.stat("websocket:ws_successful_handshakes"), 0);
}

#[test]
fn a_client_ping_gets_its_pong() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    s.write_all(&frame(true, OP_PING, b"are you there", MASK))
        .unwrap();
    let pong = must_read(&mut s, "a Pong");
    assert_eq!(pong.opcode, OP_PONG, "{pong:?}");
    assert_eq!(pong.payload, b"are you there");
    // The connection is still usable.
    let port = s.local_addr().unwrap().port();
    let r = ws_exchange(&mut s, &ws_register_request("ivan", port, 600));
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_registered_client_that_never_answers_pings_is_closed_as_lost() {
    let (k, _dir) = raw_daemon("", "keepalive_timeout = 1");
    // Before the REGISTER: the daemon's silence starts after it.
    let since = Instant::now();
    let mut mute = ws_register(&k, "mute");
    let mut polite = ws_register(&k, "polite");

    // The polite one answers every Ping, in a thread, for 4 s.
    let answering = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(4);
        let mut pings = 0;
        while let Some(f) = read_frame(
            &mut polite,
            deadline.saturating_duration_since(Instant::now()),
        ) {
            assert_eq!(f.opcode, OP_PING, "{f:?}");
            pings += 1;
            polite
                .write_all(&frame(true, OP_PONG, &f.payload, MASK))
                .unwrap();
        }
        (pings, polite)
    });

    let ping = must_read(&mut mute, "a keepalive Ping");
    assert_eq!(ping.opcode, OP_PING, "{ping:?}");
    assert!(
        since.elapsed() >= Duration::from_millis(950),
        "pinged after {:?}",
        since.elapsed()
    );
    // No Pong: closed as lost (no Close frame is owed to a lost peer).
    let end = wait_close(&mut mute, Duration::from_secs(5), "mute client");
    assert!(end.is_none(), "{end:?}");
    let gone = lookup_until(&k, "mute", Duration::from_secs(5), Option::is_none);
    assert_eq!(gone, None, "the lost client's binding stayed");
    assert_eq!(k.stat_until("websocket:ws_keepalive_lost", 1), 1);

    let (pings, mut polite) = answering.join().unwrap();
    assert!(pings >= 2, "the polite client got {pings} Pings in 4 s");
    assert!(
        lookup(&k, "polite").is_some(),
        "the polite client was dropped"
    );
    let port = polite.local_addr().unwrap().port();
    let options = ws_options(port, &unique());
    assert_eq!(ws_exchange(&mut polite, &options).status, 501);
    assert_eq!(k.stat("websocket:ws_keepalive_lost"), 1);
    assert_ws_alive(&k);
    drop(polite);
    assert_no_connections_left(&k);
    assert_eq!(
        lookup_until(&k, "polite", Duration::from_secs(5), Option::is_none),
        None
    );
}

#[test]
fn a_sip_message_in_fragments_or_a_binary_frame_is_one_request() {
    const OP_BINARY: u8 = 0x2;
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    // Binary: the reply is still text.
    let req = ws_register_request("jane", port, 600);
    s.write_all(&frame(true, OP_BINARY, req.as_bytes(), MASK))
        .unwrap();
    let f = must_read(&mut s, "the reply to a binary REGISTER");
    assert_eq!(f.opcode, OP_TEXT, "{f:?}");
    assert_eq!(Response::parse(&f.payload).unwrap().status, 200);
    // Three fragments with a Ping between them: one REGISTER, one reply.
    let req = ws_register_request("kate", port, 600);
    let (a, rest) = req.as_bytes().split_at(30);
    let (b, c) = rest.split_at(30);
    s.write_all(&frame(false, OP_TEXT, a, MASK)).unwrap();
    s.write_all(&frame(false, OP_CONT, b, MASK)).unwrap();
    s.write_all(&frame(true, OP_PING, b"mid", MASK)).unwrap();
    s.write_all(&frame(true, OP_CONT, c, MASK)).unwrap();
    let pong = must_read(&mut s, "the Pong between fragments");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"mid"[..])
    );
    let f = must_read(&mut s, "the reply to a fragmented REGISTER");
    assert_eq!(f.opcode, OP_TEXT, "{f:?}");
    let r = Response::parse(&f.payload).unwrap();
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(lookup(&k, "jane").is_some() && lookup(&k, "kate").is_some());
    // Nothing more came: the next reply is the next request's.
    let options = ws_options(port, &unique());
    let r = ws_exchange(&mut s, &options);
    assert_eq!(r.status, 501, "{}", r.raw);
}

#[test]
fn a_crlf_keepalive_in_a_message_is_not_a_request() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = ws_register(&k, "lena");
    for ka in ["\r\n\r\n", "\r\n"] {
        s.write_all(&frame(true, OP_TEXT, ka.as_bytes(), MASK))
            .unwrap();
    }
    // The next frame is the OPTIONS's 501: nothing answered the CRLFs.
    assert_next_reply_is_options(&mut s);
    assert!(lookup(&k, "lena").is_some());
}

#[test]
fn nat_keepalive_options_reach_a_websocket_binding_over_its_connection() {
    let (k, _dir) = raw_daemon("ka_mode = 1\nka_interval = 1", "");
    let mut s = ws_register(&k, "olga");
    let f = read_frame(&mut s, Duration::from_secs(10)).expect("a keepalive OPTIONS");
    assert_eq!(f.opcode, OP_TEXT, "{f:?}");
    let options = String::from_utf8(f.payload).expect("UTF-8");
    assert!(options.starts_with("OPTIONS sip:olga@"), "{options}");
    assert!(options.contains("Via: SIP/2.0/WS "), "{options}");
    s.write_all(&frame(
        true,
        OP_TEXT,
        answer_options(&options).as_bytes(),
        MASK,
    ))
    .unwrap();
    assert_eq!(k.stat_until("usrloc:ka_answered", 1), 1);
    let l = lookup(&k, "olga").expect("olga");
    assert!(
        l["Contacts"][0]["Contact"]["KA-Roundtrip"]
            .as_u64()
            .is_some_and(|rtt| rtt > 0),
        "{l}"
    );
}

#[test]
fn a_crlf_nat_keepalive_to_a_websocket_goes_as_a_ping() {
    let (k, _dir) = raw_daemon("ka_mode = 1\nka_interval = 1\nka_method = \"CRLF\"", "");
    let mut s = ws_register(&k, "pavel");
    let f = read_frame(&mut s, Duration::from_secs(10)).expect("a keepalive");
    assert_eq!(f.opcode, OP_PING, "not a WebSocket Ping: {f:?}");
    s.write_all(&frame(true, OP_PONG, &f.payload, MASK))
        .unwrap();
    let port = s.local_addr().unwrap().port();
    let options = ws_options(port, &unique());
    assert_eq!(ws_exchange(&mut s, &options).status, 501);
    assert!(lookup(&k, "pavel").is_some());
}

#[test]
fn a_websocket_whose_last_binding_expires_is_closed() {
    let (k, _dir) = raw_daemon("min_expires = 1", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    // Before the REGISTER; expiry has second resolution, so 3 s last
    // more than 2 s.
    let registered = Instant::now();
    let r = ws_exchange(&mut s, &ws_register_request("quinn", port, 3));
    assert_eq!(r.status, 200, "{}", r.raw);
    let close = wait_close(
        &mut s,
        Duration::from_secs(15),
        "expired binding's WebSocket",
    )
    .expect("a Close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert!(
        registered.elapsed() >= Duration::from_millis(1900),
        "closed after {:?}, before its binding expired",
        registered.elapsed()
    );
    assert_eof(&mut s, "expired binding's WebSocket");
    assert_eq!(lookup(&k, "quinn"), None);
    assert_no_connections_left(&k);
}

#[test]
fn an_unregistered_websocket_stays_open_and_can_register_again() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("rita", port, 600);
    let r = ws_exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    let unreg = req
        .replace("Expires: 600", "Expires: 0")
        .replace("CSeq: 1 ", "CSeq: 2 ");
    let r = ws_exchange(&mut s, &unreg);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(lookup(&k, "rita"), None);
    // Not closed (close_expired_tcp is about expiry, not a phone's own
    // unregistration): the same connection registers again.
    let again = req.replace("CSeq: 1 ", "CSeq: 3 ");
    let r = ws_exchange(&mut s, &again);
    assert_eq!(r.status, 200, "{}", r.raw);
    let l = lookup(&k, "rita").expect("rita again");
    assert_eq!(binding(&l).2, format!("ws:{}", k.ws()), "{l}");
    drop(s);
    assert_eq!(
        lookup_until(&k, "rita", Duration::from_secs(5), Option::is_none),
        None
    );
}

#[test]
fn handle_lost_tcp_false_keeps_a_closed_websockets_bindings() {
    let (k, _dir) = raw_daemon("", "handle_lost_tcp = false");
    let s = ws_register(&k, "sven");
    drop(s);
    // The daemon has seen the close once it no longer counts it.
    assert_no_connections_left(&k);
    let l = lookup(&k, "sven").expect("the binding outlives its connection");
    assert_eq!(binding(&l).2, format!("ws:{}", k.ws()), "{l}");
}
