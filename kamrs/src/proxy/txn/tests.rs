use std::net::SocketAddr;

use super::*;

#[test]
fn branch_ids_read_back() {
    let b = branch_id(0xdead_beef, 0x1234, 3, 99);
    assert!(b.starts_with("z9hG4bK"));
    assert_eq!(parse_branch(&b), Some((0xdead_beef, 0x1234, 3)));
    assert_eq!(parse_branch("z9hG4bKother"), None);
    assert_eq!(parse_branch("z9hG4bK-krzz-1-0-0"), None);
}

const CALLER: &str = "127.0.0.1:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn settings() -> Settings {
    Settings {
        fr_timer: Duration::from_secs(4),
        fr_inv_timer: Duration::from_secs(10),
        ..Settings::default()
    }
}

fn invite(method: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKup;rport\r\nFrom: <sip:a@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn peer_at(remote: &str) -> Peer {
    Peer {
        proto: Proto::Udp,
        remote: addr(remote),
        local: addr("127.0.0.1:5060"),
        conn: None,
    }
}

/// A transaction of `method` forked to phones at ports 5001, 5002, …
fn open(
    t: &mut Transactions,
    method: &str,
    phones: usize,
    now: Instant,
    stats: &TmStats,
) -> (TxId, Effects) {
    open_msg(t, method, invite(method), phones, now, stats)
}

/// …in groups of these sizes (serial forking).
fn open_groups(
    t: &mut Transactions,
    method: &str,
    sizes: &[usize],
    now: Instant,
    stats: &TmStats,
) -> (TxId, Effects) {
    open_msg_groups(t, method, invite(method), sizes, now, stats)
}

/// As [`open`], the caller's request being `up`.
fn open_msg(
    t: &mut Transactions,
    method: &str,
    up: Vec<u8>,
    phones: usize,
    now: Instant,
    stats: &TmStats,
) -> (TxId, Effects) {
    open_msg_groups(t, method, up, &[phones], now, stats)
}

fn open_msg_groups(
    t: &mut Transactions,
    method: &str,
    up: Vec<u8>,
    sizes: &[usize],
    now: Instant,
    stats: &TmStats,
) -> (TxId, Effects) {
    let phones: usize = sizes.iter().sum();
    let id = t.next_id();
    let peer = peer_at(CALLER);
    let key = ServerKey {
        branch: "z9hG4bKup".into(),
        sent_by: CALLER.into(),
        method: method.into(),
    };
    let server = Server::new(
        method == "INVITE",
        key,
        peer,
        Target::Datagram {
            local: peer.local,
            dest: peer.remote,
        },
        up.clone(),
    );
    let mut branches: Vec<Branch> = Vec::new();
    for i in 0..phones {
        let dest = addr(&format!("127.0.0.1:{}", 5001 + i));
        let id_text = branch_id(7, id, i, 1000 + i as u64);
        let text = String::from_utf8(up.clone()).unwrap().replacen(
            "Via: ",
            &format!("Via: SIP/2.0/UDP 127.0.0.1:5060;branch={id_text}\r\nVia: "),
            1,
        );
        let hop = Hop {
            target: Target::Datagram {
                local: addr("127.0.0.1:5060"),
                dest,
            },
            proto: Proto::Udp,
            local: addr("127.0.0.1:5060"),
        };
        branches.push(Branch::new(id_text, hop, text.into_bytes()));
    }
    let mut groups = Vec::new();
    let mut rest = branches.into_iter();
    for &n in sizes {
        groups.push(rest.by_ref().take(n).collect());
    }
    let fx = t.begin(id, server, groups, now, stats);
    (id, fx)
}

/// The response a phone sends to the branch request `sent`.
fn respond(sent: &[u8], status: u16, method: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(sent);
    let vias: String = text
        .lines()
        .filter(|l| l.starts_with("Via: "))
        .map(|l| format!("{l}\r\n"))
        .collect();
    format!(
        "SIP/2.0 {status} X\r\n{vias}From: <sip:a@example.com>;tag=a\r\nTo: <sip:bob@example.com>;tag=b{status}\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn deliver(
    t: &mut Transactions,
    msg: &[u8],
    from: &str,
    now: Instant,
    stats: &TmStats,
) -> Option<Effects> {
    let r = sip::parse_response(msg, &Limits::default()).unwrap();
    t.on_response(&r, msg, &peer_at(from), now, stats)
}

fn to(fx: &Effects, dest: &str) -> Vec<String> {
    fx.sends
        .iter()
        .filter(|(t, _)| t.remote() == addr(dest))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect()
}

fn first_lines(v: &[String]) -> Vec<&str> {
    v.iter().map(|m| m.lines().next().unwrap_or("")).collect()
}

#[test]
fn a_6xx_cancels_the_other_branch_and_wins_once_all_are_done() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, fx) = open(&mut t, "INVITE", 2, now, &stats);
    assert_eq!(fx.sends.len(), 2);
    let b0 = fx.sends[0].1.clone();
    let b1 = fx.sends[1].1.clone();
    // Both ring; the first declines everywhere.
    deliver(
        &mut t,
        &respond(&b0, 180, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    let fx = deliver(
        &mut t,
        &respond(&b1, 180, "INVITE"),
        "127.0.0.1:5002",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 180 X"]);
    let fx = deliver(
        &mut t,
        &respond(&b0, 603, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5001")),
        ["ACK sip:bob@example.com SIP/2.0"]
    );
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5002")),
        ["CANCEL sip:bob@example.com SIP/2.0"]
    );
    assert!(
        to(&fx, CALLER).is_empty(),
        "the 603 waits for the other branch"
    );
    let fx = deliver(
        &mut t,
        &respond(&b1, 487, "INVITE"),
        "127.0.0.1:5002",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 603 X"]);
    assert_eq!(TmStats::get(&stats.by_class[5]), 1);
}

#[test]
fn timer_c_cancels_a_ringing_branch_and_the_caller_gets_408() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, fx) = open(&mut t, "INVITE", 1, now, &stats);
    let b0 = fx.sends[0].1.clone();
    deliver(
        &mut t,
        &respond(&b0, 180, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    // Nothing before timer C.
    let fx = t.on_timer(now + Duration::from_secs(9), &stats);
    assert!(fx.sends.is_empty(), "{:?}", fx.sends);
    let later = now + Duration::from_secs(11);
    let fx = t.on_timer(later, &stats);
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5001")),
        ["CANCEL sip:bob@example.com SIP/2.0"]
    );
    let fx = deliver(
        &mut t,
        &respond(&b0, 487, "INVITE"),
        "127.0.0.1:5001",
        later,
        &stats,
    )
    .unwrap();
    let up = to(&fx, CALLER);
    assert_eq!(first_lines(&up), ["SIP/2.0 408 Request Timeout"]);
    assert_eq!(TmStats::get(&stats.timeouts), 1);
}

#[test]
fn udp_requests_are_retransmitted_until_fr_timer_then_408() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, _) = open(&mut t, "OPTIONS", 1, now, &stats);
    let mut resent = Vec::new();
    let mut at = now;
    let mut final_up = None;
    while at < now + Duration::from_secs(5) {
        at += Duration::from_millis(100);
        let fx = t.on_timer(at, &stats);
        if !to(&fx, "127.0.0.1:5001").is_empty() {
            resent.push(at.duration_since(now).as_millis() / 100);
        }
        if let Some(m) = to(&fx, CALLER).first() {
            final_up = Some(m.clone());
        }
    }
    // Timer E: 0.5, 1.5, 3.5 s (doubling, capped at T2 = 4 s).
    assert_eq!(resent, [5, 15, 35]);
    assert!(final_up.unwrap().starts_with("SIP/2.0 408 "));
    // Timer J then frees it (64·T1 over UDP).
    t.on_timer(now + Duration::from_secs(60), &stats);
    assert!(t.is_empty());
    assert_eq!(TmStats::get(&stats.current), 0);
}

#[test]
fn a_response_from_elsewhere_or_with_a_wrong_nonce_is_not_believed() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (id, fx) = open(&mut t, "INVITE", 1, now, &stats);
    let b0 = fx.sends[0].1.clone();
    let ok = respond(&b0, 200, "INVITE");
    assert!(
        deliver(&mut t, &ok, "127.0.0.1:6666", now, &stats).is_none(),
        "another port"
    );
    let forged = String::from_utf8(ok.clone())
        .unwrap()
        .replace(&format!("-{:016x}", 1000), &format!("-{:016x}", 1001));
    assert!(deliver(&mut t, forged.as_bytes(), "127.0.0.1:5001", now, &stats).is_none());
    let other = branch_id(7, id + 1, 0, 1000);
    let mut wrong_tx = String::from_utf8(ok.clone()).unwrap();
    wrong_tx = wrong_tx.replacen(&branch_id(7, id, 0, 1000), &other, 1);
    assert!(deliver(&mut t, wrong_tx.as_bytes(), "127.0.0.1:5001", now, &stats).is_none());
    let fx = deliver(&mut t, &ok, "127.0.0.1:5001", now, &stats).unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 200 X"]);
}

#[test]
fn a_cancel_before_any_provisional_waits_for_one() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (id, fx) = open(&mut t, "INVITE", 1, now, &stats);
    let b0 = fx.sends[0].1.clone();
    let (pending, fx) = t.cancel(id, now, &stats);
    assert!(pending);
    assert!(
        fx.sends.is_empty(),
        "no CANCEL before a provisional (RFC 3261 §9.1)"
    );
    let fx = deliver(
        &mut t,
        &respond(&b0, 180, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5001")),
        ["CANCEL sip:bob@example.com SIP/2.0"]
    );
    let fx = deliver(
        &mut t,
        &respond(&b0, 487, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 487 X"]);
    // The caller's ACK for it is absorbed, and a second one too.
    assert!(t.ack(id, now));
    assert!(t.ack(id, now));
}

#[test]
fn a_503_goes_upstream_as_500() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, fx) = open(&mut t, "MESSAGE", 1, now, &stats);
    let b0 = fx.sends[0].1.clone();
    let fx = deliver(
        &mut t,
        &respond(&b0, 503, "MESSAGE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(
        first_lines(&to(&fx, CALLER)),
        ["SIP/2.0 500 Server Internal Error"]
    );
}

/// A 180 (or a final) far larger than the request: what the transaction
/// keeps of it counts towards the byte bound, or 10,000 transactions of
/// small INVITEs could each hold a 64 KiB response past the 128 MiB the
/// proxy admits new requests by.
#[test]
fn kept_responses_count_towards_the_bytes_held() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (id, fx) = open(&mut t, "INVITE", 2, now, &stats);
    let small = t.bytes();
    let pad = format!("X-Pad: {}\r\n", "p".repeat(8_000)).repeat(4);
    let big = |sent: &[u8], status| {
        String::from_utf8(respond(sent, status, "INVITE"))
            .unwrap()
            .replacen("Content-Length", &format!("{pad}Content-Length"), 1)
            .into_bytes()
    };
    let ringing = big(&fx.sends[0].1, 180);
    deliver(&mut t, &ringing, "127.0.0.1:5001", now, &stats).unwrap();
    assert!(t.bytes() >= small + 30_000, "{} after {small}", t.bytes());
    let busy = big(&fx.sends[1].1, 486);
    deliver(&mut t, &busy, "127.0.0.1:5002", now, &stats).unwrap();
    assert!(t.bytes() >= small + 60_000, "{} after {small}", t.bytes());
    // Past the bound nothing more is kept: the 180 is relayed, not held.
    t.bytes = super::super::MAX_HELD_BYTES;
    let before = t.bytes();
    let again = big(&fx.sends[0].1, 183);
    let fx = deliver(&mut t, &again, "127.0.0.1:5001", now, &stats).unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 183 X"]);
    assert!(t.bytes() <= before, "{} after {before}", t.bytes());
    assert!(t.txns[&id].server.last_response.is_none());
}

/// RFC 3261 §17.1.3: a response matches a client transaction by its
/// branch *and* its CSeq method. A "200 OK" for BYE carrying an INVITE
/// branch is no answer to the INVITE (it was relayed as one, and ended
/// the call's ringing everywhere).
#[test]
fn a_response_for_another_method_matches_no_branch() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, fx) = open(&mut t, "INVITE", 1, now, &stats);
    let wrong = respond(&fx.sends[0].1, 200, "BYE");
    assert!(deliver(&mut t, &wrong, "127.0.0.1:5001", now, &stats).is_none());
    let right = respond(&fx.sends[0].1, 200, "INVITE");
    let fx = deliver(&mut t, &right, "127.0.0.1:5001", now, &stats).unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 200 X"]);
}

/// An INVITE with as many headers as the configured limits allow (here
/// more than the defaults; with the defaults, an INVITE of 63 headers
/// is enough for the ACK, as its copy has our Via and Record-Route
/// added): the branch's copy has our Via (and
/// Record-Routes) on top of those. The CANCEL, the ACK and our own final
/// response are built by parsing the stored messages again, which was
/// done with the default limits (or the configured ones, for the ACK),
/// so for such a request no CANCEL went out (the phone rang on after
/// the caller hung up), no ACK, and the caller's 408/487 was an empty
/// datagram.
#[test]
fn a_request_at_the_header_limits_still_gets_its_cancel_ack_and_final() {
    let stats = TmStats::default();
    let limits = Limits {
        max_headers: 100,
        ..Limits::default()
    };
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let pad: String = (0..90).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let up = String::from_utf8(invite("INVITE"))
        .unwrap()
        .replacen("Content-Length", &format!("{pad}Content-Length"), 1)
        .into_bytes();
    assert!(sip::parse_message(&up, &limits).is_ok());
    let (id, fx) = open_msg(&mut t, "INVITE", up, 2, now, &stats);
    let (b0, b1) = (fx.sends[0].1.clone(), fx.sends[1].1.clone());
    for (b, port) in [(&b0, 5001), (&b1, 5002)] {
        let from = format!("127.0.0.1:{port}");
        deliver(&mut t, &respond(b, 180, "INVITE"), &from, now, &stats).unwrap();
    }
    let (_, fx) = t.cancel(id, now, &stats);
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5001")),
        ["CANCEL sip:bob@example.com SIP/2.0"]
    );
    let fx = deliver(
        &mut t,
        &respond(&b0, 486, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5001")),
        ["ACK sip:bob@example.com SIP/2.0"]
    );
    // The other branch never answers its CANCEL: our own 487 goes up.
    let mut up = Vec::new();
    for s in [20, 40, 60] {
        up.extend(to(
            &t.on_timer(now + Duration::from_secs(s), &stats),
            CALLER,
        ));
    }
    assert!(
        up.iter()
            .any(|m| m.starts_with("SIP/2.0 486 ") || m.starts_with("SIP/2.0 487 ")),
        "{up:?}"
    );
    assert!(up.iter().all(|m| !m.is_empty()), "{up:?}");
}

#[test]
fn our_own_final_for_a_request_at_the_header_limits_is_not_empty() {
    let stats = TmStats::default();
    let limits = Limits {
        max_headers: 100,
        ..Limits::default()
    };
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let pad: String = (0..90).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let up = String::from_utf8(invite("MESSAGE"))
        .unwrap()
        .replacen("Content-Length", &format!("{pad}Content-Length"), 1)
        .into_bytes();
    assert!(sip::parse_message(&up, &limits).is_ok());
    open_msg(&mut t, "MESSAGE", up, 1, now, &stats);
    // Nobody answers: timer F, and our 408.
    let fx = t.on_timer(now + Duration::from_secs(60), &stats);
    assert_eq!(
        first_lines(&to(&fx, CALLER)),
        ["SIP/2.0 408 Request Timeout"]
    );
}

/// The caller cancels a ringing phone that then never answers (its
/// CANCEL or its INVITE): after fr_timer the branch is given up and the
/// caller gets 487 (RFC 3261 §16.10). The expiry was taken for timer C
/// instead: the branch was "cancelled" again and waited one more
/// fr_timer, then the caller got 408, counted as a timeout.
#[test]
fn a_cancelled_branch_that_never_answers_ends_in_487_at_fr_timer() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (id, fx) = open(&mut t, "INVITE", 1, now, &stats);
    let b0 = fx.sends[0].1.clone();
    deliver(
        &mut t,
        &respond(&b0, 180, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    let (_, fx) = t.cancel(id, now, &stats);
    assert_eq!(
        first_lines(&to(&fx, "127.0.0.1:5001")),
        ["CANCEL sip:bob@example.com SIP/2.0"]
    );
    let fr = settings().fr_timer;
    let mut up = Vec::new();
    for step in 1..=40 {
        let at = now + fr * step / 20;
        up.extend(to(&t.on_timer(at, &stats), CALLER));
        if !up.is_empty() {
            assert!(at <= now + fr + Duration::from_millis(fr.as_millis() as u64 / 20 + 1));
            break;
        }
    }
    assert_eq!(first_lines(&up), ["SIP/2.0 487 Request Terminated"]);
    assert_eq!(stats.timeouts.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn serial_forking_tries_the_next_group_when_the_first_fails() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, fx) = open_groups(&mut t, "INVITE", &[1, 1], now, &stats);
    assert_eq!(fx.sends.len(), 1, "only the first group");
    let b0 = fx.sends[0].1.clone();
    let fx = deliver(
        &mut t,
        &respond(&b0, 486, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert!(to(&fx, CALLER).is_empty(), "the 486 waits: {:?}", fx.sends);
    let next = to(&fx, "127.0.0.1:5002");
    assert_eq!(first_lines(&next), ["INVITE sip:bob@example.com SIP/2.0"]);
    let fx = deliver(
        &mut t,
        &respond(next[0].as_bytes(), 200, "INVITE"),
        "127.0.0.1:5002",
        now,
        &stats,
    )
    .unwrap();
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 200 X"]);
}

#[test]
fn serial_forking_stops_at_a_6xx() {
    let stats = TmStats::default();
    let mut t = Transactions::new(settings());
    let now = Instant::now();
    let (_, fx) = open_groups(&mut t, "INVITE", &[1, 1], now, &stats);
    let b0 = fx.sends[0].1.clone();
    let fx = deliver(
        &mut t,
        &respond(&b0, 603, "INVITE"),
        "127.0.0.1:5001",
        now,
        &stats,
    )
    .unwrap();
    assert!(to(&fx, "127.0.0.1:5002").is_empty());
    assert_eq!(first_lines(&to(&fx, CALLER)), ["SIP/2.0 603 X"]);
}
