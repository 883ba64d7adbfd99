//! Flood protection with a full source table: once
//! `[pike] max_tracked` sources have been seen, a new flooding source must
//! still be tracked and blocked (the least recently seen source that is not
//! blocked makes room), and a quiet source is still served. Loopback only:
//! every 127/8 address is local on Linux, so one datagram from each of
//! many 127.x.y.z addresses fills the table. Every loop is bounded.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{stat, CtlKamrs};
use kamrs_tests::{recv_udp, sip_request, udp_exchange, REPLY_TIMEOUT};

const MAX_TRACKED: usize = 1000;
const MAX_REQUESTS: usize = 50;

/// A UDP socket bound to `ip` and connected to the daemon.
fn socket_at(ip: Ipv4Addr, server: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
    s.connect(server).expect("connect");
    s
}

#[test]
fn a_full_source_table_still_blocks_a_new_flooder() {
    let k = CtlKamrs::start(
        &format!(
            "[pike]\nwindow = 2\nmax_requests = {MAX_REQUESTS}\nblock_time = 10\ntrusted = []\nmax_tracked = {MAX_TRACKED}"
        ),
        "",
    );
    let server = k.udp();

    // One OPTIONS (answered 501) from each of max_tracked + 200 addresses
    // in 127.1.0.0/16: the table is full, then some.
    let fillers = MAX_TRACKED + 200;
    for i in 0..fillers {
        let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
        let s = socket_at(ip, server);
        let port = s.local_addr().unwrap().port();
        let r = udp_exchange(
            &s,
            sip_request("OPTIONS", &format!("fill-{i}"), 1, port, &[]),
        );
        assert_eq!(r.status, 501, "filler {ip}: {}", r.raw);
    }
    // Now a flood from an address never seen: 2,000 OPTIONS in about one
    // second, paced in bursts so the kernel's socket buffer holds them.
    let bad = socket_at(Ipv4Addr::new(127, 2, 0, 1), server);
    let port = bad.local_addr().unwrap().port();
    let msg = sip_request("OPTIONS", "flood@full", 1, port, &[]);
    bad.set_nonblocking(true).unwrap();
    let mut answered = 0usize;
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    for burst in 0..40u64 {
        for _ in 0..50 {
            let _ = bad.send(msg.as_bytes());
        }
        while bad.recv(&mut buf).is_ok() {
            answered += 1;
        }
        let slot = start + Duration::from_millis(25 * (burst + 1));
        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
    }
    bad.set_nonblocking(false).unwrap();
    while recv_udp(&bad, Duration::from_millis(300)).is_some() {
        answered += 1;
    }
    assert!(
        answered <= MAX_REQUESTS + 10,
        "the flooder got {answered} of 2000 answers with the table full; the limit is {MAX_REQUESTS} per window"
    );
    assert!(stat(&k, "pike:blocked_sources") >= 1);

    // A quiet source (never seen either) is still served.
    let quiet = socket_at(Ipv4Addr::new(127, 3, 0, 1), server);
    let port = quiet.local_addr().unwrap().port();
    for i in 0..5 {
        let r = udp_exchange(
            &quiet,
            sip_request("OPTIONS", &format!("quiet-{i}"), 1, port, &[]),
        );
        assert_eq!(r.status, 501, "{}", r.raw);
    }
    // And the flooder is still blocked.
    bad.send(msg.as_bytes()).unwrap();
    assert!(
        recv_udp(&bad, REPLY_TIMEOUT.min(Duration::from_millis(500))).is_none(),
        "the flooder was let through again while still flooding"
    );
    assert!(
        stat(&k, "pike:evicted") >= 200,
        "past max_tracked, sources must be evicted to make room"
    );
}
