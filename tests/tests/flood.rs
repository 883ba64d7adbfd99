//! Flood protection (Kamailio's pike): one source flooding far over
//! the limit is cut off while another source's REGISTERs keep getting 200
//! with their usual latency. Loopback only; every loop is bounded.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use kamrs_tests::{recv_udp, sip_request, udp_exchange, unique, Kamrs, SILENCE};

fn register(sock: &UdpSocket, user: &str, cseq: u32) -> Duration {
    let port = sock.local_addr().unwrap().port();
    let msg = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
         From: <sip:{user}@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {user}@flood\r\n\
         CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n",
        b = unique()
    );
    let t = Instant::now();
    let r = udp_exchange(sock, msg);
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{}", r.raw);
    took
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[test]
fn a_flooding_source_is_cut_off_and_others_are_served() {
    let k = Kamrs::start("[pike]\nwindow = 1\nmax_requests = 50\nblock_time = 2\ntrusted = []");
    let good = UdpSocket::bind("127.0.0.1:0").unwrap();
    good.connect(k.udp()).unwrap();
    // The whole 127/8 is loopback: the flood comes from another address.
    let bad = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    bad.connect(k.udp()).unwrap();

    // The victim sends at a phone-like pace, 25 REGISTERs/s: under the limit.
    let pace = Duration::from_millis(40);
    let baseline: Vec<Duration> = (1..=10)
        .map(|i| {
            std::thread::sleep(pace);
            register(&good, "victim", i)
        })
        .collect();

    // 40,000 OPTIONS at about 20,000/s: 400 times the limit, for two
    // seconds. (Unpaced, one thread on loopback can outrun the kernel's
    // socket buffer itself, which no registrar can defend against.)
    let flood_port = bad.local_addr().unwrap().port();
    let flooder = std::thread::spawn(move || {
        let msg = sip_request("OPTIONS", "flood@x", 1, flood_port, &[]);
        let mut answered = 0usize;
        let mut buf = [0u8; 4096];
        bad.set_nonblocking(true).unwrap();
        let start = Instant::now();
        for burst in 0..400u32 {
            for _ in 0..100 {
                let _ = bad.send(msg.as_bytes());
            }
            while bad.recv(&mut buf).is_ok() {
                answered += 1;
            }
            // Next burst at its 5 ms slot (20 bursts of 100 per 100 ms).
            let slot = start + Duration::from_millis(5 * u64::from(burst + 1));
            std::thread::sleep(slot.saturating_duration_since(Instant::now()));
        }
        bad.set_nonblocking(false).unwrap();
        while recv_udp(&bad, Duration::from_millis(200)).is_some() {
            answered += 1;
        }
        (bad, answered)
    });
    let mut during = Vec::new();
    let mut cseq = 100;
    while !flooder.is_finished() && during.len() < 500 {
        std::thread::sleep(pace);
        cseq += 1;
        during.push(register(&good, "victim", cseq));
    }
    let (bad, answered) = flooder.join().unwrap();
    assert!(
        answered <= 60,
        "the flooder got {answered} answers; the limit is 50 per window"
    );
    assert!(!during.is_empty());
    let (base, flood) = (p99(baseline), p99(during.clone()));
    eprintln!(
        "victim REGISTER p99: {base:?} before, {flood:?} during the flood ({} requests)",
        during.len()
    );
    assert!(
        flood < Duration::from_millis(50).max(base * 10),
        "the flood slowed another source: p99 {flood:?} (before: {base:?})"
    );

    // Still blocked right after the flood…
    let port = bad.local_addr().unwrap().port();
    bad.send(sip_request("OPTIONS", "after@x", 1, port, &[]).as_bytes())
        .unwrap();
    assert!(
        recv_udp(&bad, SILENCE).is_none(),
        "a blocked source is not answered"
    );
    // …and let through again once quiet for block_time (bounded wait).
    std::thread::sleep(Duration::from_millis(2_200));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        bad.send(sip_request("OPTIONS", "later@x", 1, port, &[]).as_bytes())
            .unwrap();
        if let Some(reply) = recv_udp(&bad, Duration::from_millis(500)) {
            assert!(reply.starts_with(b"SIP/2.0 501"));
            break;
        }
        assert!(Instant::now() < deadline, "the source was never unblocked");
    }
}
