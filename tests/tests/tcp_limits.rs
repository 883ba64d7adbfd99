//! What one TCP peer can make kamrs hold (README, Security; and the
//! 513 for an over-size stream message): the write queue of a connection
//! whose peer never reads, slots held by peers that drip a byte at a time
//! or send nothing, connections per source address. Every test starts its
//! own daemon and checks, after the abuse, that a fresh connection is
//! still served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kamrs_tests::*;

/// Reads one reply whose Contacts may run to megabytes (read_response
/// reads byte by byte): chunks until the end of the header section. The
/// replies here have no body.
fn read_big_reply(stream: &mut TcpStream, timeout: Duration) -> Response {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while !got.ends_with(b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no complete reply within {timeout:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        let n = stream.read(&mut chunk).expect("read reply");
        assert!(n > 0, "connection closed before the reply ended");
        got.extend_from_slice(&chunk[..n]);
    }
    Response::parse(&got).unwrap_or_else(|e| panic!("bad reply: {e}"))
}

/// A REGISTER on a stream for `sip:{user}@example.com`; `contacts` empty
/// makes it a query.
fn tcp_register(stream: &TcpStream, user: &str, contacts: &[String]) -> String {
    let port = stream.local_addr().unwrap().port();
    let mut s = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{b}\r\n\
         From: <sip:{user}@example.com>;tag={t}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {c}\r\nCSeq: 1 REGISTER\r\n",
        b = unique(),
        t = unique(),
        c = unique(),
    );
    // One Contact line per hundred, to stay within max_line_length.
    for line in contacts.chunks(100) {
        s.push_str("Contact: ");
        s.push_str(&line.join(", "));
        s.push_str("\r\n");
    }
    if !contacts.is_empty() {
        s.push_str("Expires: 3600\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// The smallest query the registrar answers with every binding of `user`:
/// about 130 bytes, as in the issue.
fn tiny_query(user: &str, n: usize) -> String {
    format!(
        "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK{n}\r\n\
         f: <sip:{user}@x>;tag=1\r\nt: <sip:{user}@x>\r\ni: {n}\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n"
    )
}

/// Waits (bounded) until the daemon counts `n` open TCP connections: it
/// learns of closes asynchronously, and the gauge falls only once the
/// connection's slots are free.
fn wait_open_connections(k: &Kamrs, n: u64) {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let open = k.stat("tcp:current_opened_connections");
        if open == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {open} TCP connections open, expected {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP connection to `server` from the local address `from`.
fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&local.into())
        .expect("bind client to a loopback address");
    s.connect_timeout(&server.into(), REPLY_TIMEOUT)
        .expect("tcp connect");
    let s: TcpStream = s.into();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` one byte per `every` from a thread, until it is all sent
/// or the daemon has closed the connection (bounded by the message length).
fn drip(mut stream: TcpStream, msg: String, every: Duration) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for b in msg.bytes() {
            if stream.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    })
}

/// A fresh connection still gets its REGISTER answered 200.
fn assert_fresh_register_served(k: &Kamrs, user: &str) {
    let mut c = k.tcp_connect();
    let contact = format!("<sip:{user}@127.0.0.1:5999;transport=tcp>");
    let req = tcp_register(&c, user, &[contact]);
    let r = tcp_exchange(&mut c, req);
    assert_eq!(r.status, 200, "{}", r.raw);
}

// ---------------------------------------------------- item 5: write queue

/// Config keys that let one REGISTER make the AoR `big` below.
const BIG_AOR_KEYS: &str = "max_message_size = 4194304\nmax_line_length = 65536\n\
    max_contacts = 5000\ncontact_max_size = 600";

/// Gives the AoR `big` 2,000 bindings with 500-byte Contact URIs, so that
/// every query's 200 lists them all: about 1 MB of reply for a 130-byte
/// request.
fn make_big_aor(k: &Kamrs) {
    let pad = "p".repeat(440);
    let contacts: Vec<String> = (0..2000)
        .map(|i| format!("<sip:big{i}-{pad}@127.0.0.1:{}>", 10000 + i))
        .collect();
    let mut setup = k.tcp_connect();
    setup
        .write_all(tcp_register(&setup, "big", &contacts).as_bytes())
        .unwrap();
    let r = read_big_reply(&mut setup, Duration::from_secs(30));
    assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(500)]);
    assert_eq!(r.values("Contact").len(), 2000);
}

#[test]
fn tcp_peer_that_never_reads_cannot_grow_memory() {
    let k = Kamrs::start(&format!("{BIG_AOR_KEYS}\ntcp_send_timeout = 2"));
    make_big_aor(&k);
    let pid = k.pid();
    let before = proc_status_kb(pid, "VmHWM");

    // 501 pipelined queries on a connection that never reads.
    let mut hog = k.tcp_connect();
    let queries: String = (0..501).map(|n| tiny_query("big", n)).collect();
    hog.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may stop reading before taking everything (that is the
    // fix); a write that cannot finish is fine.
    let _ = hog.write_all(queries.as_bytes());
    let closed = wait_hangup(&hog, Duration::from_secs(20));
    let after = proc_status_kb(pid, "VmHWM");
    let grown_mb = after.saturating_sub(before) / 1024;
    eprintln!("peak RSS {before} kB -> {after} kB; hang-up after {closed:?}");
    // Before the write queue was bounded: +27 MB here (one read batch of
    // about 30 queries, each answered with 1 MB, queued at once).
    assert!(
        grown_mb < 12,
        "peak RSS grew by {grown_mb} MB ({before} kB -> {after} kB) for one connection that never reads"
    );
    let closed = closed.expect("the daemon must close a connection that does not read");
    // tcp_send_timeout is 2 s; the kernel buffers take a few replies first.
    assert!(closed < Duration::from_secs(15), "closed after {closed:?}");
    assert_eq!(k.stat("tcp:send_timeout"), 1);
    assert!(k.stat("tcp:sendq_full") >= 1);
    wait_open_connections(&k, 0);
    assert_fresh_register_served(&k, "carol");
}

#[test]
fn tcp_write_queues_of_all_connections_share_one_budget() {
    // Each connection alone may queue 64 MiB; all together only 1 MiB.
    let k = Kamrs::start(&format!(
        "{BIG_AOR_KEYS}\ntcp_send_timeout = 2\ntcp_conn_wq_max = 67108864\ntcp_wq_max = 1048576"
    ));
    make_big_aor(&k);
    let pid = k.pid();
    let before = proc_status_kb(pid, "VmHWM");
    let queries: String = (0..200).map(|n| tiny_query("big", n)).collect();
    let hogs: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = k.tcp_connect();
            c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.write_all(queries.as_bytes());
            c
        })
        .collect();
    for (i, c) in hogs.iter().enumerate() {
        assert!(
            wait_hangup(c, Duration::from_secs(30)).is_some(),
            "connection {i} that does not read was not closed"
        );
    }
    let after = proc_status_kb(pid, "VmHWM");
    let grown_mb = after.saturating_sub(before) / 1024;
    eprintln!("peak RSS {before} kB -> {after} kB with 4 connections");
    // Without the shared budget (tcp_wq_max = 16 GiB) this grew by 119 MB:
    // each connection queued a read batch (about 30 replies of 1 MB).
    assert!(
        grown_mb < 20,
        "peak RSS grew by {grown_mb} MB ({before} kB -> {after} kB) for 4 connections that never read"
    );
    assert_eq!(k.stat("tcp:send_timeout"), 4);
    wait_open_connections(&k, 0);
    assert_eq!(k.stat("tcp:current_write_queue_size"), 0);
    assert_fresh_register_served(&k, "erin");
}

#[test]
fn others_are_served_while_a_reader_holds_the_whole_budget() {
    let k = Kamrs::start(&format!(
        "{BIG_AOR_KEYS}\ntcp_wq_max = 4096\ntcp_send_timeout = 10"
    ));
    make_big_aor(&k);
    // A peer that never reads holds far more than the budget (1 MB
    // replies) until tcp_send_timeout.
    let mut hog = k.tcp_connect();
    let queries: String = (0..50).map(|n| tiny_query("big", n)).collect();
    hog.write_all(queries.as_bytes()).unwrap();
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while k.stat("tcp:current_write_queue_size") <= 4096 {
        assert!(Instant::now() < deadline, "the hog never filled the budget");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A whole request, and one split over two writes, are still answered:
    // a connection with nothing queued always takes its next request.
    let mut c = k.tcp_connect();
    assert_tcp_alive(&mut c);
    let call_id = unique();
    let port = c.local_addr().unwrap().port();
    let req = via_transport(&sip_request("OPTIONS", &call_id, 1, port, &[]), "TCP");
    let (a, b) = req.split_at(req.len() / 2);
    c.write_all(a.as_bytes()).unwrap();
    assert!(
        read_response(&mut c, SILENCE).is_none(),
        "half a request answered"
    );
    c.write_all(b.as_bytes()).unwrap();
    let r = read_response(&mut c, REPLY_TIMEOUT).expect("the split request is answered");
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
    assert!(
        k.stat("tcp:current_write_queue_size") > 4096,
        "the hog was still queued"
    );
    drop(hog);
}

// ---------------------------------------------------- item 6: slowloris

#[test]
fn tcp_slowloris_and_silent_connections_give_their_slots_back() {
    let k =
        Kamrs::start("tcp_max_connections = 4\ntcp_msg_read_timeout = 1\ntcp_msg_data_timeout = 2");
    let t0 = Instant::now();
    let mut conns = Vec::new();
    let mut drippers = Vec::new();
    for i in 0..4 {
        let c = k.tcp_connect();
        if i < 2 {
            // A REGISTER, one byte per 200 ms: each byte would restart an
            // idle timer; it must be cut off 1 s after its first byte.
            let msg = tcp_register(&c, "slow", &[]);
            drippers.push(drip(
                c.try_clone().unwrap(),
                msg,
                Duration::from_millis(200),
            ));
        }
        conns.push(c);
    }
    // All four slots are held: a fifth connection is refused.
    let mut fifth = k.tcp_connect();
    assert!(
        matches!(wait_closed(&mut fifth, REPLY_TIMEOUT), Closed::Yes { .. }),
        "the table is full, a fifth connection must be closed"
    );
    for (i, c) in conns.iter().enumerate() {
        let closed = wait_hangup(c, Duration::from_secs(10))
            .map(|_| t0.elapsed())
            .unwrap_or_else(|| panic!("connection {i} still open 10 s on"));
        // Dripping ones: tcp_msg_read_timeout (1 s); silent ones:
        // tcp_msg_data_timeout (2 s). Never before the shorter of them.
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_secs(6),
            "connection {i} closed after {closed:?}"
        );
    }
    for d in drippers {
        d.join().unwrap();
    }
    assert_eq!(k.stat("tcp:msg_read_timeout"), 2);
    assert_eq!(k.stat("tcp:msg_data_timeout"), 2);
    assert_eq!(k.stat("tcp:local_reject"), 1);
    wait_open_connections(&k, 0);
    assert_fresh_register_served(&k, "fresh");
}

#[test]
fn tcp_connections_per_source_address_are_capped() {
    // Loopback is trusted by default (exempt); this test's daemon trusts
    // nobody so 127.0.0.1 is limited like any other address.
    let k = Kamrs::start("tcp_accept_iplimit = 2\n[pike]\ntrusted = []");
    let mut a = k.tcp_connect();
    let mut b = k.tcp_connect();
    assert_tcp_alive(&mut a);
    assert_tcp_alive(&mut b);
    let mut third = k.tcp_connect();
    assert_eq!(
        wait_closed(&mut third, REPLY_TIMEOUT),
        Closed::Yes { bytes_before: 0 },
        "a third connection from 127.0.0.1 must be closed at once"
    );
    // Another address is served while 127.0.0.1 is at its cap.
    let mut other = connect_from("127.0.0.2", k.tcp());
    assert_tcp_alive(&mut other);
    let req = tcp_register(&other, "dave", &["<sip:dave@127.0.0.2:5999>".to_owned()]);
    assert_eq!(tcp_exchange(&mut other, req).status, 200);
    assert_eq!(k.stat("tcp:iplimit_reject"), 1);
    // Closing one gives 127.0.0.1 a slot back.
    drop(a);
    wait_open_connections(&k, 2);
    let mut again = k.tcp_connect();
    assert_tcp_alive(&mut again);
    assert_tcp_alive(&mut b);
}

#[test]
fn trusted_sources_are_not_capped_per_address() {
    // Default `[pike] trusted` is loopback: an edge proxy on a trusted
    // network may open as many connections as tcp_max_connections allows.
    let k = Kamrs::start("tcp_accept_iplimit = 1");
    let mut conns: Vec<TcpStream> = (0..3).map(|_| k.tcp_connect()).collect();
    for c in &mut conns {
        assert_tcp_alive(c);
    }
    assert_eq!(k.stat("tcp:iplimit_reject"), 0);
}
