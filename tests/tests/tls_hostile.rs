//! SIP over TLS end to end, hostile and heavy clients: stalled, silent and
//! clear-text handshakes; the TCP limits (tcp_max_connections,
//! tcp_accept_iplimit, tcp_msg_data_timeout, tcp_msg_read_timeout,
//! tcp_send_timeout, max_message_size) on TLS; pipelined and large
//! requests; peers that never read.
//!
//! Every hostile client is followed by proof that the daemon still
//! serves a good one; where the bad one stays open for a while, the good
//! one is served while it does. The phones' paths are in tls.rs.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kamrs_tests::pki::{client_hello, local_port, tls_connect, tls_exchange, tls_handshake, Ca};
use kamrs_tests::tls_client::{
    assert_registers, exchange, good_client, lookup, refusal, register, start_tls, tls_register,
    wait_stat,
};
use kamrs_tests::{
    proc_status_kb, read_response, tcp_connect, unique, wait_closed, wait_hangup, Closed, TempDir,
    REPLY_TIMEOUT,
};

/// Everything the server sends until it closes (EOF, reset or a TLS
/// error on our side), or None if it is still open after `timeout`.
fn bytes_until_closed(stream: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return Some(got),
        }
    }
}

// ------------------------------------------------- 1: hostile handshakes

#[test]
fn a_stalled_handshake_is_closed_after_handshake_timeout_and_others_are_served_meanwhile() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "handshake_timeout = 1");
    let hello = client_hello(ca.client_config(None));
    assert!(hello.len() > 100, "a ClientHello is a few hundred bytes");
    // Half a ClientHello; nothing at all; a whole ClientHello and then
    // nothing (the server answers, the client never finishes).
    let stallers = [
        ("half a ClientHello", hello.len() / 2),
        ("silent", 0),
        ("a whole ClientHello", hello.len()),
    ];
    let t0 = Instant::now();
    let watchers: Vec<_> = stallers
        .iter()
        .map(|&(what, n)| {
            let mut staller = tcp_connect(k.tls());
            staller.write_all(&hello[..n]).expect("send");
            // Watched from a thread of its own, so we know when the
            // daemon closed it whatever happens here meanwhile.
            std::thread::spawn(move || {
                let closed = bytes_until_closed(&mut staller, Duration::from_secs(10));
                (what, n, closed, Instant::now())
            })
        })
        .collect();
    let mut good = good_client(&k, &ca, "good");
    let served = Instant::now();
    for w in watchers {
        let (what, n, closed, closed_at) = w.join().expect("watcher");
        let sent = closed.unwrap_or_else(|| panic!("{what}: still open 10 s on"));
        if n < hello.len() {
            assert!(sent.is_empty(), "{what}: was sent {sent:?}");
        } else {
            // The server's flight: handshake records (content type 22).
            assert_eq!(sent.first(), Some(&22), "{what}: was sent {sent:?}");
        }
        let after = closed_at - t0;
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(5),
            "{what}: closed after {after:?}, handshake_timeout is 1 s"
        );
        assert!(
            served < closed_at,
            "the good client was served only after {what} was closed"
        );
    }
    assert_eq!(k.stat("tls:handshake_timeouts"), 3);
    assert_eq!(k.stat("tls:handshake_failures"), 0);
    wait_stat(&k, "tls:current_opened_connections", 1);
    // The good connection outlives the stallers' timeout.
    assert_registers(&mut good, "good");
}

#[test]
fn sigterm_does_not_wait_for_a_stalled_handshake() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (mut k, _) = start_tls(&ca, &dir, "", "handshake_timeout = 60");
    let hello = client_hello(ca.client_config(None));
    let mut staller = tcp_connect(k.tls());
    staller
        .write_all(&hello[..hello.len() / 2])
        .expect("send half a ClientHello");
    let mut good = good_client(&k, &ca, "good");
    // Both accepted; only the good one has a TLS session.
    wait_stat(&k, "tcp:current_opened_connections", 2);
    wait_stat(&k, "tls:current_opened_connections", 1);
    let t0 = Instant::now();
    k.signal(libc::SIGTERM);
    let status = k
        .wait_exit(Duration::from_secs(10))
        .expect("kamrs still running 10 s after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", k.stderr());
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // Both connections are gone with it.
    assert!(bytes_until_closed(&mut staller, REPLY_TIMEOUT).is_some());
    assert!(bytes_until_closed(&mut good.sock, REPLY_TIMEOUT).is_some());
}

#[test]
fn clear_text_sip_on_the_tls_port_fails_the_handshake() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "");
    let mut earlier = good_client(&k, &ca, "earlier");
    let mut plain = tcp_connect(k.tls());
    let port = plain.local_addr().expect("local addr").port();
    let req = register(
        "sip:example.com",
        "sip:plain@example.com",
        &format!("sip:plain@127.0.0.1:{port};transport=tcp"),
        "TCP",
        port,
        &unique(),
        1,
        60,
    );
    plain.write_all(req.as_bytes()).expect("send");
    let got = bytes_until_closed(&mut plain, REPLY_TIMEOUT)
        .expect("clear text on the TLS port must be closed");
    // Nothing or a TLS alert (content type 21), never a SIP reply.
    assert!(
        got.is_empty() || got[0] == 21,
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(!String::from_utf8_lossy(&got).contains("SIP/2.0"));
    assert_eq!(k.stat("tls:handshake_failures"), 1);
    assert_eq!(k.stat("tls:handshake_timeouts"), 0);
    assert!(lookup(&k, "plain").is_empty());
    // Served before, served after; and newcomers too.
    assert_registers(&mut earlier, "earlier");
    good_client(&k, &ca, "later");
    assert_eq!(k.stat("tls:handshakes"), 2);
}

// ---------------------------------- 2: TCP limits, framing, slow readers

#[test]
fn tcp_max_connections_applies_to_tls() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "tcp_max_connections = 2", "");
    let mut first = good_client(&k, &ca, "first");
    let second = good_client(&k, &ca, "second");
    // Both slots of the TLS listener are held: a third connection is
    // closed at once, before any handshake.
    let mut third = tcp_connect(k.tls());
    let t0 = Instant::now();
    assert_eq!(
        wait_closed(&mut third, REPLY_TIMEOUT),
        Closed::Yes { bytes_before: 0 },
        "the third TLS connection must be closed"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(
        tls_connect(k.tls(), ca.client_config(None)).is_err(),
        "a handshake on a full listener"
    );
    assert_eq!(k.stat("tcp:local_reject"), 2);
    assert_eq!(k.stat("tls:handshakes"), 2);
    // The two in the table are still served, and so is plain TCP (the
    // limit is per listener).
    assert_registers(&mut first, "first");
    let mut tcp = tcp_connect(k.tcp());
    tcp.write_all(tcp_query(&tcp).as_bytes())
        .expect("tcp write");
    let r = read_response(&mut tcp, REPLY_TIMEOUT).expect("TCP is served");
    assert_eq!(r.status, 200, "{}", r.raw);
    // A slot given back is a slot for a new TLS client.
    drop(second);
    wait_stat(&k, "tls:current_opened_connections", 1);
    good_client(&k, &ca, "third");
}

#[test]
fn tls_connections_keep_the_tcp_timeouts_and_per_address_cap() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    // Loopback is trusted (uncapped) by default; here it is not.
    let (k, _) = start_tls(
        &ca,
        &dir,
        "tcp_msg_data_timeout = 2\ntcp_msg_read_timeout = 1\ntcp_accept_iplimit = 2\n[pike]\ntrusted = []",
        "",
    );
    let t0 = Instant::now();
    // One says nothing after its handshake (closed 2 s on); one starts a
    // REGISTER and never ends it (closed 1 s after its first byte).
    let mut silent = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let mut partial = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let req = tls_register(&partial, "partial", &unique(), 1, 60);
    partial
        .write_all(&req.as_bytes()[..req.len() / 2])
        .and_then(|()| partial.flush())
        .expect("half a REGISTER");
    // 127.0.0.1 holds its two: a third is closed at once.
    let mut third = tcp_connect(k.tls());
    assert_eq!(
        wait_closed(&mut third, REPLY_TIMEOUT),
        Closed::Yes { bytes_before: 0 },
        "a third TLS connection from 127.0.0.1"
    );
    // Another address is served meanwhile.
    let other = connect_from("127.0.0.2", k.tls());
    let mut other = tls_handshake(other, ca.client_config(None)).expect("handshake");
    assert_registers(&mut other, "other");
    let served = t0.elapsed();
    for (what, s) in [("silent", &mut silent), ("partial", &mut partial)] {
        assert!(
            bytes_until_closed(&mut s.sock, Duration::from_secs(10)).is_some(),
            "the {what} connection is still open 10 s on"
        );
        let closed = t0.elapsed();
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_secs(6),
            "the {what} connection closed after {closed:?}"
        );
        assert!(
            served < closed,
            "{what}: served {served:?}, closed {closed:?}"
        );
    }
    assert_eq!(k.stat("tcp:iplimit_reject"), 1);
    assert_eq!(k.stat("tcp:msg_data_timeout"), 1);
    assert_eq!(k.stat("tcp:msg_read_timeout"), 1);
    assert!(lookup(&k, "partial").is_empty());
    // Their slots are free again: 127.0.0.1 is served. The one that sent
    // a whole message is past tcp_msg_data_timeout and stays.
    wait_stat(&k, "tls:current_opened_connections", 1);
    good_client(&k, &ca, "again");
    assert_registers(&mut other, "other");
}

/// A TCP connection to `server` from the local address `from`.
fn connect_from(from: &str, server: std::net::SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: std::net::SocketAddr = format!("{from}:0").parse().expect("address");
    s.bind(&local.into())
        .expect("bind client to a loopback address");
    s.connect_timeout(&server.into(), REPLY_TIMEOUT)
        .expect("tcp connect");
    s.into()
}

/// A REGISTER query (no Contact) on a plain TCP connection.
fn tcp_query(stream: &TcpStream) -> String {
    let port = stream.local_addr().expect("local addr").port();
    register(
        "sip:example.com",
        "sip:first@example.com",
        "",
        "TCP",
        port,
        &unique(),
        1,
        0,
    )
}

/// A REGISTER query for `user`, the smallest the registrar answers with
/// every binding of it.
fn tiny_query(user: &str, n: usize) -> String {
    format!(
        "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK{n}\r\n\
         f: <sip:{user}@x>;tag=1\r\nt: <sip:{user}@x>\r\ni: {n}\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n"
    )
}

#[test]
fn pipelined_and_large_requests_over_tls_are_framed_like_tcp() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(
        &ca,
        &dir,
        "max_message_size = 262144\nmax_line_length = 65536\nmax_contacts = 500",
        "",
    );
    let mut s = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    // 300 Contacts in one REGISTER of about 40 KB: several TLS records.
    let contacts: Vec<String> = (0..300)
        .map(|i| format!("<sip:many{i}-{}@127.0.0.1:{}>", "p".repeat(80), 10000 + i))
        .collect();
    let port = local_port(&s);
    let big = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK{b}\r\n\
         From: <sip:many@example.com>;tag=1\r\nTo: <sip:many@example.com>\r\nCall-ID: {c}\r\n\
         CSeq: 1 REGISTER\r\nContact: {}\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n",
        contacts.join(", "),
        b = unique(),
        c = unique(),
    );
    assert!(big.len() > 32 * 1024, "{}", big.len());
    let r = exchange(&mut s, &big);
    assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(300)]);
    assert_eq!(r.values("Contact").len(), 300);
    // Ten queries in one write: ten replies, in order.
    let batch: String = (0..10).map(|n| tiny_query("many", n)).collect();
    s.write_all(batch.as_bytes())
        .and_then(|()| s.flush())
        .expect("write the batch");
    let replies =
        kamrs_tests::pki::read_tls_responses(&mut s, 10, REPLY_TIMEOUT).expect("ten replies");
    for (n, r) in replies.iter().enumerate() {
        assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(300)]);
        assert_eq!(r.header("Call-ID"), Some(n.to_string().as_str()));
        assert_eq!(r.values("Contact").len(), 300);
    }
}

#[test]
fn an_over_size_message_over_tls_gets_513_and_a_clean_close() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "max_message_size = 2048", "");
    let mut s = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let call_id = unique();
    let req = register(
        "sip:example.com",
        "sip:huge@example.com",
        "",
        "TLS",
        local_port(&s),
        &call_id,
        1,
        0,
    )
    .replace("Content-Length: 0", "Content-Length: 100000");
    let r = exchange(&mut s, &req);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (513, "Message Too Large"),
        "{}",
        r.raw
    );
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
    // Then the daemon ends the TLS session properly (close_notify), so
    // the client reads a clean end rather than a truncation error.
    assert_eq!(refusal(&mut s), "EOF");
    good_client(&k, &ca, "after");
}

#[test]
fn a_tls_peer_that_never_reads_is_closed_and_cannot_grow_memory() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(
        &ca,
        &dir,
        "max_message_size = 4194304\nmax_line_length = 65536\nmax_contacts = 5000\n\
         contact_max_size = 600\ntcp_send_timeout = 2",
        "",
    );
    // An AoR whose every query's 200 is about 1 MB.
    let pad = "p".repeat(440);
    let mut setup = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let mut req = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK{b}\r\n\
         From: <sip:big@example.com>;tag=1\r\nTo: <sip:big@example.com>\r\nCall-ID: {c}\r\nCSeq: 1 REGISTER\r\n",
        b = unique(),
        c = unique()
    );
    for chunk in (0..2000).collect::<Vec<u32>>().chunks(100) {
        let line: Vec<String> = chunk
            .iter()
            .map(|i| format!("<sip:big{i}-{pad}@127.0.0.1:{}>", 10000 + i))
            .collect();
        req.push_str(&format!("Contact: {}\r\n", line.join(", ")));
    }
    req.push_str("Expires: 3600\r\nContent-Length: 0\r\n\r\n");
    let r = tls_exchange(&mut setup, &req, Duration::from_secs(30)).expect("the big 200");
    assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(300)]);
    assert_eq!(r.values("Contact").len(), 2000);

    let pid = k.pid();
    let before = proc_status_kb(pid, "VmHWM");
    let mut hog = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    hog.sock
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    let queries: String = (0..501).map(|n| tiny_query("big", n)).collect();
    // The daemon may stop reading before it took everything.
    let _ = hog.write_all(queries.as_bytes()).and_then(|()| hog.flush());
    let closed = wait_hangup(&hog.sock, Duration::from_secs(20));
    let after = proc_status_kb(pid, "VmHWM");
    let grown_mb = after.saturating_sub(before) / 1024;
    eprintln!("peak RSS {before} kB -> {after} kB; hang-up after {closed:?}");
    assert!(
        grown_mb < 12,
        "peak RSS grew by {grown_mb} MB ({before} kB -> {after} kB) for one TLS connection that never reads"
    );
    let closed = closed.expect("the daemon must close a TLS connection that does not read");
    assert!(closed < Duration::from_secs(15), "closed after {closed:?}");
    assert_eq!(k.stat("tcp:send_timeout"), 1);
    wait_stat(&k, "tls:current_opened_connections", 1);
    // The one that reads is still served.
    let r = exchange(&mut setup, &tiny_query("nobody", 1));
    assert_eq!(r.status, 200, "{}", r.raw);
    good_client(&k, &ca, "fresh");
}

#[test]
fn at_most_256_handshakes_run_at_once_on_a_listener() {
    // 256 clients stalled in their handshakes hold every turn: the next
    // client's handshake waits until one of them times out, then runs.
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "handshake_timeout = 2");
    let hello = client_hello(ca.client_config(None));
    let stallers: Vec<_> = (0..256)
        .map(|_| {
            let mut s = tcp_connect(k.tls());
            s.write_all(&hello[..hello.len() / 2])
                .expect("send half a ClientHello");
            s
        })
        .collect();
    wait_stat(&k, "tcp:current_opened_connections", 256);
    let t0 = Instant::now();
    let mut good = good_client(&k, &ca, "good");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "a handshake ran at once ({waited:?}) beside 256 in progress"
    );
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!(k.stat("tcp:handshake_busy"), 0);
    assert_registers(&mut good, "good");
    drop(stallers);
}
