//! What one TCP peer can make kamrs hold (issue 13, items 5 and 6, and the
//! 513 for an over-size stream message): the write queue of a connection
//! whose peer never reads, slots held by peers that drip a byte at a time
//! or send nothing, connections per source address. Every test starts its
//! own daemon and checks, after the abuse, that a fresh connection is
//! still served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use kamrs_tests::ctl::HttpConn;
use kamrs_tests::*;
use serde_json::json;

/// A statistic's value through the control API (`tcp:send_timeout`, …).
fn stat(k: &Kamrs, name: &str) -> u64 {
    let socket = k.ctl.as_ref().expect("the harness gave kamrs a ctl socket");
    let v = HttpConn::unix(socket).call("stats.get_statistics", json!([name]));
    let line = v["result"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: {v}"))
        .to_owned();
    line.rsplit(" = ")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: not a number in {line:?}"))
}

/// A field of /proc/PID/status in kB (`VmRSS`, `VmHWM`).
fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Waits until the peer has closed or reset the connection, without
/// reading from it (a reader would drain the data the server is blocked
/// on). `poll` reports POLLRDHUP on a FIN even with data still unread,
/// POLLHUP/POLLERR on a reset. None if still open at the deadline.
fn wait_hangup(stream: &TcpStream, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut fds = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for a socket we own, for the call only.
        let rc = unsafe { libc::poll(&mut fds, 1, ms) };
        if rc > 0 && fds.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return Some(t0.elapsed());
        }
    }
}

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

/// A fresh connection still gets its REGISTER answered 200.
fn assert_fresh_register_served(k: &Kamrs, user: &str) {
    let mut c = k.tcp_connect();
    let contact = format!("<sip:{user}@127.0.0.1:5999;transport=tcp>");
    let req = tcp_register(&c, user, &[contact]);
    let r = tcp_exchange(&mut c, req);
    assert_eq!(r.status, 200, "{}", r.raw);
}

// ---------------------------------------------------- item 5: write queue

#[test]
fn tcp_peer_that_never_reads_cannot_grow_memory() {
    let k = Kamrs::start(
        "max_message_size = 4194304\nmax_line_length = 65536\nmax_contacts = 5000\n\
         contact_max_size = 600",
    );
    // 2,000 bindings with 500-byte Contact URIs: every query's 200 lists
    // them all, about 1 MB.
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
    drop(setup);
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
    assert!(
        grown_mb < 12,
        "peak RSS grew by {grown_mb} MB ({before} kB -> {after} kB) for one connection that never reads"
    );
    assert!(
        closed.is_some(),
        "the daemon must close a connection that does not read"
    );
    assert_fresh_register_served(&k, "carol");
}
