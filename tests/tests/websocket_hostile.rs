//! SIP over WebSocket (RFC 7118) end to end, hostile raw clients
//! (`kamrs_tests::ws`, frames per RFC 6455 §5, masked as a client must,
//! except where the test is that they are not): upgrades without `sip`,
//! from other origins, unfinished or endless; frames over
//! max_message_size, unfinished, unmasked, interrupted or breaking the
//! protocol; plain HTTP on the wss: port; peers that never read.
//!
//! After each hostile client, a fresh WebSocket REGISTER must get its 200:
//! the daemon still serves. Every wait is on an event (a frame, a closed
//! socket, a changed lookup) with a bound. The phones' paths are in
//! websocket.rs.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::register;
use kamrs_tests::ws::*;
use kamrs_tests::*;

#[test]
fn an_upgrade_without_the_sip_subprotocol_gets_400_and_is_counted() {
    let (k, _dir) = raw_daemon("", "");
    for extra in [&[][..], &["Sec-WebSocket-Protocol: chat, SIP"][..]] {
        let u = upgrade(k.ws(), extra);
        assert_eq!(u.status, 400, "{extra:?}: {}{}", u.head, u.body);
        assert!(u.body.contains("Sec-WebSocket-Protocol"), "{}", u.body);
        assert_eq!(
            http_header(&u.head, "Sec-WebSocket-Protocol"),
            Some("sip"),
            "{}",
            u.head
        );
    }
    assert_eq!(k.stat_until("websocket:ws_failed_handshakes", 2), 2);
    assert_eq!(k.stat("websocket:ws_successful_handshakes"), 0);
    // `sip` among others is enough, and is what the 101 names.
    let u = upgrade(k.ws(), &["Sec-WebSocket-Protocol: chat, sip"]);
    assert_eq!(u.status, 101, "{}", u.head);
    assert_eq!(http_header(&u.head, "Sec-WebSocket-Protocol"), Some("sip"));
    drop(u);
    assert_ws_alive(&k);
    assert_eq!(k.stat("websocket:ws_failed_handshakes"), 2);
}

#[test]
fn allowed_origins_refuse_other_pages_with_403() {
    let (k, _dir) = raw_daemon("", "allowed_origins = [\"https://phone.example.com\"]");
    let evil = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://evil.example",
        ],
    );
    assert_eq!(evil.status, 403, "{}{}", evil.head, evil.body);
    assert!(evil.body.contains("allowed_origins"), "{}", evil.body);
    // With a list, no Origin at all is not an allowed page either.
    let none = upgrade(k.ws(), &["Sec-WebSocket-Protocol: sip"]);
    assert_eq!(none.status, 403, "{}", none.head);
    // A sandboxed page's opaque Origin is not on the list either.
    let null = upgrade(k.ws(), &["Sec-WebSocket-Protocol: sip", "Origin: null"]);
    assert_eq!(null.status, 403, "{}", null.head);
    assert_eq!(k.stat_until("websocket:ws_failed_handshakes", 3), 3);
    // Scheme and host compare without case (RFC 6454 serialises them in
    // lower case).
    let upper = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: HTTPS://Phone.Example.COM",
        ],
    );
    assert_eq!(upper.status, 101, "{}", upper.head);
    // Another port is another origin.
    let port = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://phone.example.com:8443",
        ],
    );
    assert_eq!(port.status, 403, "{}", port.head);

    let good = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://phone.example.com",
        ],
    );
    assert_eq!(good.status, 101, "{}", good.head);
    let mut s = good.stream;
    let port = s.local_addr().unwrap().port();
    let r = ws_exchange(&mut s, &ws_register_request("erin", port, 600));
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_frame_over_max_message_size_closes_with_1009_without_being_read() {
    let (k, _dir) = raw_daemon("max_message_size = 4096", "");
    // A header announcing 1 GiB, and 100 bytes of it.
    let mut s = open(k.ws());
    let mut bytes = frame_header(true, OP_TEXT, 1 << 30, MASK);
    bytes.extend_from_slice(&[b'x'; 100]);
    s.write_all(&bytes).unwrap();
    let close = wait_close(&mut s, REPLY_TIMEOUT, "1 GiB frame").expect("a Close frame");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    assert_eof(&mut s, "1 GiB frame");

    // Fragments each under the limit, a message over it: the same.
    let mut s = open(k.ws());
    let chunk = [b'y'; 3000];
    s.write_all(&frame(false, OP_TEXT, &chunk, MASK)).unwrap();
    s.write_all(&frame(false, OP_CONT, &chunk, MASK)).unwrap();
    let close = wait_close(&mut s, REPLY_TIMEOUT, "6000-byte message").expect("a Close frame");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    assert_eof(&mut s, "6000-byte message");

    // Just under the limit is a message (a REGISTER padded with a header).
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("frank", port, 600);
    let pad = format!("X-Pad: {}", "p".repeat(4096 - req.len() - 10));
    let req = req.replacen("Content-Length", &format!("{pad}\r\nContent-Length"), 1);
    assert!(req.len() <= 4096 && req.len() > 4000, "{}", req.len());
    let r = ws_exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_ws_alive(&k);
    drop(s);
    assert_no_connections_left(&k);
}

#[test]
fn a_never_finished_frame_is_closed_after_the_timeouts_while_others_are_served() {
    let (k, _dir) = raw_daemon("tcp_msg_data_timeout = 1\ntcp_connection_lifetime = 3", "");
    let mut bytes = frame_header(true, OP_TEXT, 200, MASK);
    bytes.extend_from_slice(&[b'z'; 50]);
    // Lower bounds are from before the daemon starts counting, upper ones
    // from after.
    //
    // The first message never finishes: tcp_msg_data_timeout (1 s), not
    // tcp_connection_lifetime (3 s).
    let before = Instant::now();
    let mut first = open(k.ws());
    let after = Instant::now();
    first.write_all(&bytes).unwrap();
    // Meanwhile another phone is served.
    assert_ws_alive(&k);
    let close = wait_close(&mut first, Duration::from_secs(6), "unfinished first frame")
        .expect("a Close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert_eof(&mut first, "unfinished first frame");
    let (min, max) = (before.elapsed(), after.elapsed());
    assert!(min >= Duration::from_secs(1), "closed after {min:?}");
    assert!(
        max < Duration::from_millis(2500),
        "closed after {max:?}, not tcp_msg_data_timeout"
    );

    // After a whole message (an OPTIONS: no binding), an unfinished one:
    // tcp_connection_lifetime, counted from the last whole message.
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let options = ws_options(port, &unique());
    let before = Instant::now();
    let r = ws_exchange(&mut s, &options);
    assert_eq!(r.status, 501, "{}", r.raw);
    s.write_all(&bytes).unwrap();
    assert_ws_alive(&k);
    let close = wait_close(&mut s, Duration::from_secs(8), "unfinished second frame")
        .expect("a Close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert_eof(&mut s, "unfinished second frame");
    let took = before.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "closed after {took:?}, before tcp_connection_lifetime"
    );
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn a_close_in_the_middle_of_a_fragmented_message_is_answered() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("gina", port, 600);
    let (a, _rest) = req.split_at(40);
    s.write_all(&frame(false, OP_TEXT, a.as_bytes(), MASK))
        .unwrap();
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    s.write_all(&frame(true, OP_CLOSE, &close, MASK)).unwrap();
    let answer = wait_close(&mut s, REPLY_TIMEOUT, "Close mid-message").expect("a Close back");
    assert_eq!(answer.close_code(), Some(1000), "{answer:?}");
    assert_eof(&mut s, "Close mid-message");
    // The half message registered nothing.
    assert_eq!(lookup(&k, "gina"), None);
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn an_unmasked_client_frame_closes_with_1002() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("hank", port, 600);
    s.write_all(&frame(true, OP_TEXT, req.as_bytes(), None))
        .unwrap();
    let close = wait_close(&mut s, REPLY_TIMEOUT, "unmasked frame").expect("a Close frame");
    assert_eq!(close.close_code(), Some(1002), "{close:?}");
    assert_eof(&mut s, "unmasked frame");
    assert_eq!(lookup(&k, "hank"), None);
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn an_unfinished_upgrade_is_closed_after_handshake_timeout_and_counted() {
    let (k, _dir) = raw_daemon("", "handshake_timeout = 1");
    let before = Instant::now();
    let mut s = tcp_connect(k.ws());
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .unwrap();
    let after = Instant::now();
    // Meanwhile a whole upgrade is served.
    assert_ws_alive(&k);
    assert!(
        matches!(
            wait_closed(&mut s, Duration::from_secs(5)),
            Closed::Yes { .. }
        ),
        "an unfinished upgrade stayed open"
    );
    assert!(
        before.elapsed() >= Duration::from_secs(1),
        "{:?}",
        before.elapsed()
    );
    assert!(
        after.elapsed() < Duration::from_millis(2500),
        "{:?}",
        after.elapsed()
    );
    assert_eq!(k.stat_until("websocket:ws_failed_handshakes", 1), 1);
    assert_eq!(k.stat("websocket:ws_successful_handshakes"), 1);
    assert_no_connections_left(&k);
}

#[test]
fn an_upgrade_with_endless_headers_is_refused_before_the_handshake_timeout() {
    // The handshake timeout is far: what ends it is a bound on its size.
    let (k, _dir) = raw_daemon("", "handshake_timeout = 30");
    let mut s = tcp_connect(k.ws());
    let start = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: sip\r\n")
        .unwrap();
    let line = format!("X-Junk: {}\r\n", "j".repeat(1000));
    let mut sent = 0;
    // Up to 1 MiB of header lines; the daemon may hang up on the way.
    while sent < 1 << 20 {
        if s.write_all(line.as_bytes()).is_err() {
            break;
        }
        sent += line.len();
    }
    assert!(
        matches!(
            wait_closed(&mut s, Duration::from_secs(10)),
            Closed::Yes { .. }
        ),
        "an upgrade with {sent} bytes of headers is still open"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(k.stat_until("websocket:ws_failed_handshakes", 1), 1);
    assert_ws_alive(&k);
    drop(s);
    assert_no_connections_left(&k);
}

#[test]
fn a_websocket_peer_that_never_reads_is_closed_after_tcp_send_timeout() {
    let (k, _dir) = raw_daemon(
        "max_message_size = 4194304\nmax_line_length = 65536\nmax_contacts = 5000\n\
         contact_max_size = 600\ntcp_send_timeout = 2",
        "",
    );
    // `big` gets 1,000 bindings of about 500 bytes: every query's 200 is
    // half a megabyte. Its connection stays open (the bindings go with it).
    let mut setup = open(k.ws());
    let port = setup.local_addr().unwrap().port();
    let pad = "p".repeat(440);
    let contacts: Vec<String> = (0..1000)
        .map(|i| format!("<sip:big{i}-{pad}@{i}.invalid;transport=ws>"))
        .collect();
    let mut req = register("big", None, Some(600), &unique(), 1, port, "raw-ws");
    let lines: String = contacts
        .chunks(100)
        .map(|c| format!("Contact: {}\r\n", c.join(", ")))
        .collect();
    req = via_transport(&req, "WS").replacen("Expires:", &format!("{lines}Expires:"), 1);
    let r = ws_exchange(&mut setup, &req);
    assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(500)]);
    assert_eq!(r.values("Contact").len(), 1000);
    let before = proc_status_kb(k.pid(), "VmHWM");

    // 200 queries (100 MB of replies) from a peer that never reads.
    let mut hog = open(k.ws());
    let port = hog.local_addr().unwrap().port();
    hog.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut queries = Vec::new();
    for _ in 0..200 {
        let q = via_transport(
            &register("big", None, None, &unique(), 1, port, "hog"),
            "WS",
        );
        queries.extend(frame(true, OP_TEXT, q.as_bytes(), MASK));
    }
    // The daemon takes one request at a time: it may stop reading first.
    let _ = hog.write_all(&queries);
    let closed = wait_hangup(&hog, Duration::from_secs(20));
    let grown_mb = proc_status_kb(k.pid(), "VmHWM").saturating_sub(before) / 1024;
    let closed = closed.expect("the daemon must close a WebSocket that does not read");
    assert!(closed < Duration::from_secs(15), "closed after {closed:?}");
    assert!(
        grown_mb < 12,
        "peak RSS grew by {grown_mb} MB for one WebSocket that never reads"
    );
    assert_eq!(k.stat_until("tcp:send_timeout", 1), 1);
    // The setup connection and everyone else are still served.
    let options = ws_options(port, &unique());
    assert_eq!(ws_exchange(&mut setup, &options).status, 501);
    assert_ws_alive(&k);
}

#[test]
fn plain_http_on_the_wss_port_is_closed_without_an_upgrade() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = tcp_connect(k.wss());
    s.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if let Err(e) = s.read_to_end(&mut got) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "still open after 10 s: {got:?}"
        );
    }
    assert!(
        !String::from_utf8_lossy(&got).contains("101"),
        "a WebSocket without TLS on wss: {got:?}"
    );
    assert_eq!(k.stat("websocket:ws_successful_handshakes"), 0);
    assert_eq!(k.stat_until("websocket:wss_current_connections", 0), 0);
    assert_ws_alive(&k);
}

#[test]
fn protocol_errors_close_with_1002_and_bad_utf8_with_1007() {
    let (k, _dir) = raw_daemon("", "");
    let rsv1 = {
        let mut f = frame(true, OP_TEXT, b"x", MASK);
        f[0] |= 0x40;
        f
    };
    let text_in_text = {
        let mut f = frame(false, OP_TEXT, b"x", MASK);
        f.extend(frame(true, OP_TEXT, b"y", MASK));
        f
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("a reserved opcode", frame(true, 0x3, b"x", MASK), 1002),
        ("RSV1 without an extension", rsv1, 1002),
        ("a fragmented Ping", frame(false, OP_PING, b"x", MASK), 1002),
        (
            "a 200-byte Ping",
            frame(true, OP_PING, &[b'p'; 200], MASK),
            1002,
        ),
        (
            "a continuation first",
            frame(true, OP_CONT, b"x", MASK),
            1002,
        ),
        ("a text frame inside a text message", text_in_text, 1002),
        ("a 1-byte Close", frame(true, OP_CLOSE, b"x", MASK), 1002),
        (
            "non-UTF-8 in a text message",
            frame(true, OP_TEXT, b"OPTIONS sip:\xff\xfe SIP/2.0\r\n", MASK),
            1007,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut s = open(k.ws());
        s.write_all(&bytes).unwrap();
        let close = wait_close(&mut s, REPLY_TIMEOUT, what).expect("a Close frame");
        assert_eq!(close.close_code(), Some(code), "{what}: {close:?}");
        assert_eof(&mut s, what);
    }
    // The same bytes in a binary message are a (bad) SIP request: no close.
    let mut s = open(k.ws());
    s.write_all(&frame(
        true,
        0x2,
        b"OPTIONS sip:\xff\xfe SIP/2.0\r\n\r\n",
        MASK,
    ))
    .unwrap();
    // Without a Via the garbage cannot be answered: the next reply is the
    // OPTIONS's.
    assert_next_reply_is_options(&mut s);
    drop(s);
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn pings_do_not_keep_a_websocket_without_bindings_open() {
    // A peer that registered nothing and only Pings (which could hold an
    // unfinished message in the daemon) is closed tcp_connection_lifetime
    // after its last SIP message, however often it pings.
    let (k, _dir) = raw_daemon(
        "tcp_connection_lifetime = 2\ntcp_msg_data_timeout = 5",
        "keepalive_timeout = 0",
    );
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    // A whole SIP message first (a registration that expires at once).
    let r = ws_exchange(&mut s, &ws_register_request("pinger", port, 0));
    assert_eq!(r.status, 200, "{}", r.raw);
    let t0 = Instant::now();
    let mut closed = None;
    while t0.elapsed() < Duration::from_secs(8) {
        if s.write_all(&frame(true, OP_PING, b"still here", MASK))
            .is_err()
        {
            closed = Some(t0.elapsed());
            break;
        }
        match read_frame(&mut s, Duration::from_millis(400)) {
            Some(f) if f.opcode == OP_PONG => {}
            Some(f) if f.opcode == OP_CLOSE => {
                assert_eq!(f.close_code(), Some(1000), "{f:?}");
                closed = Some(t0.elapsed());
                break;
            }
            Some(f) => panic!("unexpected frame {f:?}"),
            None => {
                closed = Some(t0.elapsed());
                break;
            }
        }
    }
    let closed = closed.expect("still open after 8 s of pings");
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(5),
        "closed after {closed:?}, expected about tcp_connection_lifetime = 2 s"
    );
    assert_ws_alive(&k);
}
