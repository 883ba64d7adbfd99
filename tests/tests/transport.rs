//! kamrs over real UDP and TCP sockets: the tutorial's routing, the reply
//! headers of RFC 3261 §8.2.6, stream framing and limits, and bad input.
//! Every test starts its own daemon, so they run in parallel.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use kamrs_tests::*;

fn tcp_request(stream: &TcpStream, method: &str, call_id: &str, cseq: u32) -> String {
    let port = stream.local_addr().unwrap().port();
    via_transport(&sip_request(method, call_id, cseq, port, &[]), "TCP")
}

// ------------------------------------------------------------- routing

#[test]
fn udp_invite_gets_480() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let r = udp_exchange(&sock, sip_request("INVITE", &unique(), 1, port, &[]));
    assert_eq!(r.status, 480, "{}", r.raw);
    assert_eq!(r.reason, "Temporarily Unavailable");
}

#[test]
fn udp_other_methods_get_501() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    for method in ["OPTIONS", "SUBSCRIBE", "MESSAGE", "FOO"] {
        let call_id = unique();
        let r = udp_exchange(&sock, sip_request(method, &call_id, 3, port, &[]));
        assert_eq!(r.status, 501, "{method}: {}", r.raw);
        assert_eq!(r.reason, "Not Implemented", "{method}");
        assert_eq!(r.header("CSeq"), Some(format!("3 {method}").as_str()));
        assert_eq!(r.header("Call-ID"), Some(call_id.as_str()));
    }
}

#[test]
fn udp_ack_gets_no_response() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    send_udp(&sock, sip_request("ACK", &unique(), 1, port, &[]));
    assert_udp_silent_then_alive(&sock, "ACK");
}

#[test]
fn tcp_routing_matches_the_tutorial() {
    let k = Kamrs::start("");
    let mut c = k.tcp_connect();
    let req = tcp_request(&c, "INVITE", &unique(), 1);
    let r = tcp_exchange(&mut c, req);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (480, "Temporarily Unavailable")
    );
    for method in ["OPTIONS", "SUBSCRIBE", "MESSAGE", "FOO"] {
        let req = tcp_request(&c, method, &unique(), 1);
        let r = tcp_exchange(&mut c, req);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (501, "Not Implemented"),
            "{method}"
        );
    }
    // ACK: nothing comes back, so the next reply on the stream must be the
    // one for the OPTIONS sent after it.
    c.write_all(tcp_request(&c, "ACK", &unique(), 1).as_bytes())
        .unwrap();
    let call_id = unique();
    let req = tcp_request(&c, "OPTIONS", &call_id, 2);
    let r = tcp_exchange(&mut c, req);
    assert_eq!(r.status, 501);
    assert_eq!(
        r.header("Call-ID"),
        Some(call_id.as_str()),
        "ACK was answered: {}",
        r.raw
    );
}

// ---------------------------------------------------------- reply headers

#[test]
fn reply_headers_follow_rfc3261_8_2_6() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let top = format!(
        "SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{};rport",
        unique()
    );
    let second = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-two;received=192.0.2.99";
    let third = "SIP/2.0/TCP [2001:db8::7]:5070;branch=z9hG4bK-three";
    let from = "\"Alice, \\\"A\\\"\" <sip:alice@example.com;transport=udp>;tag=a73kszlfl";
    let to = "Bob <sip:bob@example.com>";
    let call_id = format!("{}@pc33.example.com", unique());
    let cseq = "1826 OPTIONS";
    let req = format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
         Via: {top}, {second}\r\n\
         Via: {third}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let r = udp_exchange(&sock, &req);
    assert_eq!(r.status, 501, "{}", r.raw);

    let vias = r.values("Via");
    assert_eq!(vias.len(), 3, "all Vias, in order: {}", r.raw);
    // Top Via: the same, plus received and the filled-in rport (RFC 3581).
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK")),
        "{}",
        vias[0]
    );
    assert_eq!(param(&vias[0], "branch"), param(&top, "branch"));
    assert_eq!(
        param(&vias[0], "received"),
        Some("127.0.0.1"),
        "{}",
        vias[0]
    );
    assert_eq!(
        param(&vias[0], "rport"),
        Some(port.to_string().as_str()),
        "{}",
        vias[0]
    );
    assert_eq!(vias[1], second);
    assert_eq!(vias[2], third);

    assert_eq!(r.header("From"), Some(from), "From byte-exact");
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()));
    assert_eq!(r.header("CSeq"), Some(cseq));
    let reply_to = r.header("To").expect("To");
    assert!(reply_to.starts_with(to), "To copied: {reply_to}");
    let tag = param(reply_to, "tag").expect("our To tag");
    assert!(!tag.is_empty(), "{reply_to}");
    assert_eq!(r.header("Server"), Some(server_name().as_str()));
    assert_eq!(r.header("Content-Length"), Some("0"));
    assert!(r.body.is_empty());
}

#[test]
fn to_tag_is_kept_when_the_request_has_one() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let to = "<sip:bob@example.com>;tag=314159";
    let req = with_header(&sip_request("OPTIONS", &unique(), 1, port, &[]), "To", to);
    let r = udp_exchange(&sock, req);
    assert_eq!(r.status, 501, "{}", r.raw);
    assert_eq!(r.headers("To"), [to]);
}

#[test]
fn tcp_reply_headers_are_the_same() {
    let k = Kamrs::start("");
    let mut c = k.tcp_connect();
    let port = c.local_addr().unwrap().port();
    let call_id = unique();
    let req = tcp_request(&c, "INVITE", &call_id, 42);
    let r = tcp_exchange(&mut c, &req);
    assert_eq!(r.status, 480, "{}", r.raw);
    let vias = r.values("Via");
    assert_eq!(vias.len(), 1);
    assert_eq!(
        param(&vias[0], "received"),
        Some("127.0.0.1"),
        "{}",
        vias[0]
    );
    assert_eq!(
        param(&vias[0], "rport"),
        Some(port.to_string().as_str()),
        "{}",
        vias[0]
    );
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()));
    assert_eq!(r.header("CSeq"), Some("42 INVITE"));
    assert!(param(r.header("To").unwrap(), "tag").is_some_and(|t| !t.is_empty()));
    assert_eq!(r.header("Server"), Some(server_name().as_str()));
    assert_eq!(r.header("Content-Length"), Some("0"));
}

/// Without rport the reply goes to the port in the Via's sent-by
/// (RFC 3261 §18.2.2), not to the source port: send from one socket, name
/// another in the Via, and only the other hears the reply.
#[test]
fn udp_reply_without_rport_goes_to_via_port() {
    let k = Kamrs::start("");
    let sender = k.udp_client();
    let named = k.udp_client();
    let named_port = named.local_addr().unwrap().port();
    let call_id = unique();
    let req = without_rport(&sip_request("OPTIONS", &call_id, 1, named_port, &[]));
    assert!(!req.contains("rport"));
    send_udp(&sender, &req);
    let got = recv_udp(&named, REPLY_TIMEOUT).expect("reply at the Via port");
    let r = Response::parse(&got).unwrap();
    assert_eq!(r.status, 501);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()));
    let top = &r.values("Via")[0];
    assert_eq!(
        param(top, "rport"),
        None,
        "no rport asked, none added: {top}"
    );
    assert_udp_silent_then_alive(&sender, "a request whose Via names another port");
}

/// With rport the reply goes to the source address and port, whatever the
/// Via says (RFC 3581 §4).
#[test]
fn udp_reply_with_rport_goes_to_source() {
    let k = Kamrs::start("");
    let sender = k.udp_client();
    let named = k.udp_client();
    let sender_port = sender.local_addr().unwrap().port();
    let named_port = named.local_addr().unwrap().port();
    let r = udp_exchange(
        &sender,
        sip_request("OPTIONS", &unique(), 1, named_port, &[]),
    );
    assert_eq!(r.status, 501);
    let top = &r.values("Via")[0];
    assert_eq!(
        param(top, "rport"),
        Some(sender_port.to_string().as_str()),
        "{top}"
    );
    assert!(
        recv_udp(&named, SILENCE).is_none(),
        "reply must not go to the Via port"
    );
}

// ------------------------------------------------------------- TCP streams

#[test]
fn tcp_pipelined_messages_answered_in_order() {
    let k = Kamrs::start("");
    let mut c = k.tcp_connect();
    let (a, b, d) = (unique(), unique(), unique());
    let batch = [
        tcp_request(&c, "INVITE", &a, 1),
        tcp_request(&c, "OPTIONS", &b, 2),
        tcp_request(&c, "ACK", &unique(), 1),
        tcp_request(&c, "MESSAGE", &d, 3),
    ]
    .concat();
    c.write_all(batch.as_bytes()).unwrap();
    let r1 = read_response(&mut c, REPLY_TIMEOUT).expect("first reply");
    let r2 = read_response(&mut c, REPLY_TIMEOUT).expect("second reply");
    let r3 = read_response(&mut c, REPLY_TIMEOUT).expect("third reply");
    assert_eq!((r1.status, r1.header("Call-ID")), (480, Some(a.as_str())));
    assert_eq!((r2.status, r2.header("Call-ID")), (501, Some(b.as_str())));
    assert_eq!((r3.status, r3.header("Call-ID")), (501, Some(d.as_str())));
}

#[test]
fn tcp_message_split_over_many_writes_is_reassembled() {
    let k = Kamrs::start("");
    let mut c = k.tcp_connect();
    let call_id = unique();
    let req = tcp_request(&c, "OPTIONS", &call_id, 1);
    for chunk in req.as_bytes().chunks(7) {
        c.write_all(chunk).unwrap();
        c.flush().unwrap();
        // Small pauses so the chunks arrive as separate reads; the total is
        // bounded (a 300-byte request → ~45 chunks).
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = read_response(&mut c, REPLY_TIMEOUT).expect("reply");
    assert_eq!(r.status, 501);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()));
}

#[test]
fn tcp_crlf_ping_gets_crlf_pong() {
    let k = Kamrs::start("");
    let mut c = k.tcp_connect();
    c.write_all(b"\r\n\r\n").unwrap();
    assert_eq!(
        read_exact_timeout(&mut c, 2, REPLY_TIMEOUT).as_deref(),
        Some(&b"\r\n"[..])
    );
    // A lone CRLF (a pong from the client) is skipped silently, and the
    // connection still serves requests; the next bytes must be the reply.
    c.write_all(b"\r\n").unwrap();
    assert_tcp_alive(&mut c);
}

#[test]
fn tcp_over_limit_message_closes_the_connection() {
    let k = Kamrs::start("max_message_size = 2048");
    // Content-Length announces more than the limit: the headers are all
    // there, so the sender is told why (513) before the connection closes.
    let mut c = k.tcp_connect();
    let call_id = unique();
    let req = with_header(
        &tcp_request(&c, "OPTIONS", &call_id, 1),
        "Content-Length",
        "100000",
    );
    c.write_all(req.as_bytes()).unwrap();
    let r = read_response(&mut c, REPLY_TIMEOUT).expect("a 513 before the close");
    assert_eq!(
        (r.status, r.reason.as_str()),
        (513, "Message Too Large"),
        "{}",
        r.raw
    );
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
    assert_eq!(
        wait_closed(&mut c, REPLY_TIMEOUT),
        Closed::Yes { bytes_before: 0 }
    );
    // The body that follows does not matter: it is never read as requests.
    let mut c = k.tcp_connect();
    let mut req = with_header(
        &tcp_request(&c, "OPTIONS", &unique(), 1),
        "Content-Length",
        "4000",
    );
    req.push_str(&tcp_request(&c, "OPTIONS", &unique(), 1).repeat(20));
    c.write_all(req.as_bytes()).unwrap();
    let r = read_response(&mut c, REPLY_TIMEOUT).expect("a 513 before the close");
    assert_eq!(r.status, 513, "{}", r.raw);
    assert_eq!(
        wait_closed(&mut c, REPLY_TIMEOUT),
        Closed::Yes { bytes_before: 0 }
    );
    // A header section that never ends.
    let mut c = k.tcp_connect();
    let mut junk = tcp_request(&c, "OPTIONS", &unique(), 1);
    junk.truncate(junk.len() - 4);
    junk.push_str("\r\nX-Long: ");
    junk.push_str(&"a".repeat(3000));
    c.write_all(junk.as_bytes()).unwrap();
    assert_eq!(
        wait_closed(&mut c, REPLY_TIMEOUT),
        Closed::Yes { bytes_before: 0 }
    );
    // The listener still serves.
    let mut c = k.tcp_connect();
    assert_tcp_alive(&mut c);
}

#[test]
fn tcp_idle_connection_is_closed() {
    let k = Kamrs::start("tcp_connection_lifetime = 1");
    let mut c = k.tcp_connect();
    assert_tcp_alive(&mut c);
    let t0 = Instant::now();
    assert_eq!(
        wait_closed(&mut c, Duration::from_secs(5)),
        Closed::Yes { bytes_before: 0 }
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "closed after {:?}: too early for a 1 s idle timeout",
        t0.elapsed()
    );
}

#[test]
fn tcp_connection_cap_refuses_extra_connections() {
    let k = Kamrs::start("tcp_max_connections = 2");
    let mut c1 = k.tcp_connect();
    let mut c2 = k.tcp_connect();
    // Answered requests prove both were accepted and hold their slots.
    assert_tcp_alive(&mut c1);
    assert_tcp_alive(&mut c2);
    let mut c3 = k.tcp_connect();
    assert!(
        matches!(wait_closed(&mut c3, REPLY_TIMEOUT), Closed::Yes { .. }),
        "third connection must be closed by the server"
    );
    assert_tcp_alive(&mut c1);
    assert_tcp_alive(&mut c2);
    // Closing one frees its slot; the server learns of it asynchronously,
    // so retry (bounded) until a new connection is served.
    drop(c1);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let mut c4 = k.tcp_connect();
        c4.write_all(tcp_request(&c4, "OPTIONS", &unique(), 1).as_bytes())
            .unwrap();
        if let Some(r) = read_response(&mut c4, Duration::from_secs(1)) {
            assert_eq!(r.status, 501);
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed after a close");
    }
}

#[test]
fn tcp_stalled_connection_does_not_delay_others() {
    let k = Kamrs::start("");
    let mut stalled = k.tcp_connect();
    let call_id = unique();
    let req = tcp_request(&stalled, "OPTIONS", &call_id, 1);
    let (first, rest) = req.split_at(req.len() / 2);
    stalled.write_all(first.as_bytes()).unwrap();
    let mut other = k.tcp_connect();
    let t0 = Instant::now();
    assert_tcp_alive(&mut other);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    // The stalled one resumes and is answered.
    stalled.write_all(rest.as_bytes()).unwrap();
    let r = read_response(&mut stalled, REPLY_TIMEOUT).expect("reply");
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()));
}

#[test]
fn ipv6_listen_works() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    let k = Kamrs::start_with_config("listen = [\"udp:[::1]:0\", \"tcp:[::1]:0\"]\n", &[]);
    assert!(
        k.listening.iter().all(|l| l.contains("[::1]:")),
        "{:?}",
        k.listening
    );
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.connect(k.udp()).unwrap();
    let port = sock.local_addr().unwrap().port();
    let req = sip_request("OPTIONS", &unique(), 1, port, &[]).replace("127.0.0.1:", "[::1]:");
    let r = udp_exchange(&sock, req);
    assert_eq!(r.status, 501, "{}", r.raw);
    assert_eq!(
        param(&r.values("Via")[0], "rport"),
        Some(port.to_string().as_str())
    );
    let mut c = tcp_connect(k.tcp());
    assert_tcp_alive(&mut c);
}

// --------------------------------------------------------------- bad input

/// Each mutation of a good OPTIONS, with the status it must get and a word
/// the reason phrase must contain (case-insensitive).
fn bad_requests(via_port: u16) -> Vec<(&'static str, String, u16, &'static str)> {
    let good = sip_request("OPTIONS", &unique(), 1, via_port, &[]);
    let mut cases = Vec::new();
    for header in ["Call-ID", "From", "To", "CSeq"] {
        cases.push((header, without_header(&good, header), 400, header));
    }
    cases.push((
        "CSeq method mismatch",
        with_header(&good, "CSeq", "1 INVITE"),
        400,
        "CSeq",
    ));
    cases.push((
        "SIP/3.0",
        good.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1),
        505,
        "",
    ));
    cases.push((
        "non-numeric Content-Length",
        with_header(&good, "Content-Length", "ten"),
        400,
        "Content-Length",
    ));
    cases
}

fn check_rejection(what: &str, r: &Response, status: u16, word: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.raw);
    assert!(
        r.reason
            .to_ascii_lowercase()
            .contains(&word.to_ascii_lowercase()),
        "{what}: reason {:?} should name {word:?}",
        r.reason
    );
    assert_eq!(r.header("Server"), Some(server_name().as_str()), "{what}");
    assert_eq!(r.header("Content-Length"), Some("0"), "{what}");
}

#[test]
fn udp_bad_requests_are_answered_and_server_keeps_serving() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let mut cases = bad_requests(port);
    // A datagram's body is what follows the headers; a Content-Length
    // larger than that is an error (RFC 3261 §18.3).
    cases.push((
        "Content-Length beyond the datagram",
        with_header(
            &sip_request("OPTIONS", &unique(), 1, port, &[]),
            "Content-Length",
            "50",
        ),
        400,
        "Content-Length",
    ));
    for (what, req, status, word) in cases {
        let r = udp_exchange(&sock, &req);
        check_rejection(what, &r, status, word);
        assert_udp_alive(&sock);
    }
}

#[test]
fn tcp_bad_requests_are_answered() {
    let k = Kamrs::start("");
    for (what, req, status, word) in bad_requests(5060) {
        let mut c = k.tcp_connect();
        let req = via_transport(&req, "TCP");
        let r = tcp_exchange(&mut c, &req);
        check_rejection(what, &r, status, word);
        if what == "non-numeric Content-Length" {
            // The stream cannot be framed past this message: closed.
            assert!(
                matches!(wait_closed(&mut c, REPLY_TIMEOUT), Closed::Yes { .. }),
                "{what}: connection must close"
            );
        } else {
            assert_tcp_alive(&mut c);
        }
    }
    // Missing Content-Length on a stream: answered, then closed.
    let mut c = k.tcp_connect();
    let req = without_header(&tcp_request(&c, "OPTIONS", &unique(), 1), "Content-Length");
    let r = tcp_exchange(&mut c, &req);
    check_rejection("missing Content-Length on TCP", &r, 400, "Content-Length");
    assert!(matches!(
        wait_closed(&mut c, REPLY_TIMEOUT),
        Closed::Yes { .. }
    ));
    let mut c = k.tcp_connect();
    assert_tcp_alive(&mut c);
}

#[test]
fn udp_unanswerable_input_is_dropped_silently() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xff\x13garbage\r\n\r\n\x80".to_vec()),
        ("empty datagram", Vec::new()),
        ("CRLF keep-alive", b"\r\n\r\n".to_vec()),
        (
            "a response",
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKx\r\n\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: {}\r\n\
                 CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                unique()
            )
            .into_bytes(),
        ),
        (
            "no Via",
            without_header(&sip_request("OPTIONS", &unique(), 1, port, &[]), "Via").into_bytes(),
        ),
        (
            "broken ACK",
            without_header(&sip_request("ACK", &unique(), 1, port, &[]), "Call-ID").into_bytes(),
        ),
    ];
    for (what, bytes) in inputs {
        send_udp(&sock, &bytes);
        assert_udp_silent_then_alive(&sock, what);
    }
}

#[test]
fn udp_oversize_datagram_is_dropped() {
    let k = Kamrs::start("max_message_size = 1024");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let big = format!("X-Pad: {}", "p".repeat(1500));
    send_udp(&sock, sip_request("OPTIONS", &unique(), 1, port, &[&big]));
    assert_udp_silent_then_alive(&sock, "a datagram over max_message_size");
}

#[test]
fn tcp_unanswerable_input_gets_no_reply() {
    let k = Kamrs::start("");
    // A response arriving on a stream is absorbed; the connection goes on.
    let mut c = k.tcp_connect();
    let response = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKx\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: {}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        unique()
    );
    c.write_all(response.as_bytes()).unwrap();
    assert_tcp_alive(&mut c);
    // Garbage: nothing comes back (at most the connection closes), and the
    // listener still serves new connections.
    let mut c = k.tcp_connect();
    c.write_all(b"\x00\xffnot sip at all\r\n\r\n").unwrap();
    assert!(
        read_response(&mut c, SILENCE).is_none(),
        "garbage must not be answered"
    );
    let mut c = k.tcp_connect();
    assert_tcp_alive(&mut c);
}

// ------------------------------------------------------------- UDP workers

/// Several worker threads on one UDP socket, each taking batches
/// (recvmmsg) and answering them together (sendmmsg, a client's replies of
/// one length as one segmented message): every request is answered once,
/// in a datagram of its own, to its own sender, and the daemon stops
/// promptly.
#[test]
fn udp_workers_answer_every_peer_and_stop_cleanly() {
    let mut k = Kamrs::start("udp_workers = 3");
    let udp_threads = || {
        std::fs::read_dir(format!("/proc/{}/task", k.pid()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("kamrs-udp"))
            .count()
    };
    // The workers start just after `ready`.
    let deadline = Instant::now() + Duration::from_secs(5);
    while udp_threads() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(udp_threads(), 3, "one thread per udp_workers");
    let clients: Vec<UdpSocket> = (0..6).map(|_| k.udp_client()).collect();
    const PER_CLIENT: usize = 20;
    // Everyone sends a burst first, so the workers see full batches mixing
    // several senders; then each client collects its answers.
    for (c, sock) in clients.iter().enumerate() {
        let port = sock.local_addr().unwrap().port();
        for n in 0..PER_CLIENT {
            send_udp(
                sock,
                sip_request("OPTIONS", &format!("c{c}-n{n}"), 1, port, &[]),
            );
        }
    }
    for (c, sock) in clients.iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < PER_CLIENT {
            let Some(bytes) = recv_udp(sock, Duration::from_secs(5)) else {
                panic!("client {c}: only {} of {PER_CLIENT} answers", seen.len());
            };
            let r = Response::parse(&bytes).unwrap();
            assert_eq!(r.status, 501, "{}", r.raw);
            let call_id = r.header("Call-ID").unwrap().to_owned();
            assert!(
                call_id.starts_with(&format!("c{c}-")),
                "client {c} got {call_id}"
            );
            assert!(seen.insert(call_id), "answered twice");
        }
        assert!(
            recv_udp(sock, SILENCE).is_none(),
            "client {c}: extra datagram"
        );
    }
    k.signal(15);
    let started = Instant::now();
    let status = k
        .wait_exit(Duration::from_secs(5))
        .expect("kamrs exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        started.elapsed()
    );
}

// ------------------------------------------- besides SIP on the UDP port

/// A STUN Binding request (RFC 5389) with transaction id `tid`.
fn stun_binding_request(tid: [u8; 12]) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&tid);
    m
}

/// The XOR-MAPPED-ADDRESS of a Binding success response, decoded here
/// (not by kamrs' code) from RFC 5389 §15.2.
fn xor_mapped(answer: &[u8]) -> std::net::SocketAddr {
    assert!(answer.len() >= 20, "{answer:02x?}");
    let mut at = 20;
    while at + 4 <= answer.len() {
        let kind = u16::from_be_bytes([answer[at], answer[at + 1]]);
        let len = usize::from(u16::from_be_bytes([answer[at + 2], answer[at + 3]]));
        let v = &answer[at + 4..at + 4 + len];
        if kind == 0x0020 {
            assert_eq!(v[1], 0x01, "IPv4");
            let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
            let c = [0x21, 0x12, 0xa4, 0x42];
            let ip = std::net::Ipv4Addr::new(v[4] ^ c[0], v[5] ^ c[1], v[6] ^ c[2], v[7] ^ c[3]);
            return std::net::SocketAddr::from((ip, port));
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    panic!("no XOR-MAPPED-ADDRESS in {answer:02x?}");
}

#[test]
fn udp_stun_binding_request_gets_the_source_address() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let tid = *b"kamrs-stun-1";
    send_udp(&sock, stun_binding_request(tid));
    let answer = recv_udp(&sock, Duration::from_secs(5)).expect("a STUN answer");
    assert_eq!(
        &answer[0..2],
        &[0x01, 0x01],
        "Binding success: {answer:02x?}"
    );
    assert_eq!(&answer[4..8], &[0x21, 0x12, 0xa4, 0x42]);
    assert_eq!(&answer[8..20], &tid);
    assert_eq!(
        usize::from(u16::from_be_bytes([answer[2], answer[3]])) + 20,
        answer.len()
    );
    assert_eq!(xor_mapped(&answer), sock.local_addr().unwrap());
    // SIP on the same socket is still SIP.
    assert_udp_alive(&sock);
}

#[test]
fn udp_malformed_stun_and_crlf_keepalives_get_no_answer() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let mut bad = stun_binding_request([1; 12]);
    bad[3] = 8; // says 8 bytes of attributes, carries none
    send_udp(&sock, &bad);
    assert_udp_silent_then_alive(&sock, "a malformed STUN request");
    send_udp(&sock, b"\r\n\r\n");
    assert_udp_silent_then_alive(&sock, "a CRLF keepalive");
}

#[test]
fn udp_options_to_the_registrar_itself_gets_200() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let req = sip_request("OPTIONS", &unique(), 4, port, &[]).replacen(
        "OPTIONS sip:kamrs@127.0.0.1 ",
        "OPTIONS sip:127.0.0.1 ",
        1,
    );
    let r = udp_exchange(&sock, req);
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"), "{}", r.raw);
    assert_eq!(r.header("Allow"), Some("REGISTER, OPTIONS, ACK"));
    assert_eq!(r.header("CSeq"), Some("4 OPTIONS"));
}
