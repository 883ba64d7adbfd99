//! `[route] mode = "proxy"` against hostile peers and buggy phones: each
//! test is a defect found by attacking the proxy (a message that made it
//! do what it must not), kept as a regression test with its fix.

use std::time::Duration;

use kamrs_tests::ctl::CtlKamrs;
use kamrs_tests::digest::h;
use kamrs_tests::ua::{header, headers, reply, request, Phone};
use kamrs_tests::{unique, Kamrs, TempDir};

const PROXY: &str = "[route]\nmode = \"proxy\"\n";

/// kamrs as a proxy for `example.com` with digest auth of `alice` and
/// `bob` (top-level keys for [`CtlKamrs::start`]); the temp dir holds the
/// subscriber list.
fn with_auth() -> (CtlKamrs, TempDir) {
    let dir = TempDir::new("hostile-auth");
    let mut subs = String::new();
    for (u, p) in [("alice", "secret-a"), ("bob", "secret-b")] {
        subs += &format!(
            "[[subscriber]]\nusername = \"{u}\"\ndomain = \"example.com\"\nha1 = \"{}\"\n\n",
            h("MD5", &format!("{u}:example.com:{p}"))
        );
    }
    let path = dir.path().join("subscribers.toml");
    std::fs::write(&path, subs).unwrap();
    let c = CtlKamrs::start(
        &format!(
            "{PROXY}domains = [\"example.com\"]\n[auth]\nmode = \"digest\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n",
            path.display(),
            dir.path().join("nonce.secret").display()
        ),
        "",
    );
    (c, dir)
}

/// An out-of-dialog request that carries a To tag is not in a dialog of
/// ours: it was routed by lookup like any new call, yet skipped the 407,
/// so anyone could call bob as alice by adding `;tag=x` to the To.
#[test]
fn a_to_tag_does_not_spare_a_caller_claiming_our_user_the_407() {
    let (c, _dir) = with_auth();
    let mut bob = Phone::udp(c.udp());
    c.ctl_ok(&["ul.add", "bob", &format!("sip:bob@{}", bob.local)]);
    let mut mallory = Phone::udp(c.udp());
    let forged = request(
        "INVITE",
        "sip:bob@example.com",
        &mallory,
        "<sip:alice@example.com>;tag=m1",
        "<sip:bob@example.com>;tag=anything",
        &format!("totag-{}", unique()),
        1,
        "Contact: <sip:alice@198.51.100.1:5060>\r\n",
    );
    mallory.send(&forged);
    mallory.expect_status(407);
    bob.expect_nothing(Duration::from_millis(300));
}

/// A Record-Route token is a way back into one dialog, not a pass for
/// new ones: a caller who learned a token (by calling bob once) put it
/// in the Route of a new INVITE claiming to be alice, and kamrs sent it
/// to bob's flow without the 407.
#[test]
fn a_record_route_token_does_not_spare_a_new_call_the_407() {
    let (c, _dir) = with_auth();
    let mut bob = Phone::udp(c.udp());
    c.ctl_ok(&["ul.add", "bob", &format!("sip:bob@{}", bob.local)]);
    // Mallory, from another domain, may call bob (accept_foreign_callers).
    let mut mallory = Phone::udp(c.udp());
    let first = request(
        "INVITE",
        "sip:bob@example.com",
        &mallory,
        "<sip:mallory@evil.example.org>;tag=m1",
        "<sip:bob@example.com>",
        &format!("learn-{}", unique()),
        1,
        "Contact: <sip:mallory@198.51.100.66:5060>\r\n",
    );
    mallory.send(&first);
    mallory.expect_status(100);
    let inv = bob.expect_request("INVITE");
    let rr = headers(&inv, "Record-Route");
    assert_eq!(rr.len(), 1, "{inv}");
    bob.send(&reply(&inv, 486, "Busy Here", "b1", ""));
    bob.expect_request("ACK");
    mallory.expect_status(486);
    // A new call (no To tag, new Call-ID) claiming alice, with the token
    // and the From tag the token was issued for.
    let forged = request(
        "INVITE",
        "sip:bob@example.com",
        &mallory,
        "<sip:alice@example.com>;tag=m1",
        "<sip:bob@example.com>",
        &format!("replay-{}", unique()),
        1,
        &format!(
            "Route: {}\r\nContact: <sip:alice@198.51.100.66:5060>\r\n",
            rr[0]
        ),
    );
    mallory.send(&forged);
    mallory.expect_status(407);
    bob.expect_nothing(Duration::from_millis(300));
}

/// A phone configured with kamrs as its outbound proxy puts
/// `Route: <sip:kamrs;lr>` on its requests (RFC 3261 §8.1.2): that entry
/// names kamrs and is removed (§16.4), not taken for a foreign next hop
/// (which answered 403 Relaying Forbidden to every such call).
#[test]
fn a_phone_with_kamrs_as_outbound_proxy_reaches_our_user() {
    let k = Kamrs::start(PROXY);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let inv = request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &format!("obp-{}", unique()),
        1,
        &format!(
            "Route: <sip:{};lr>\r\nContact: <sip:alice@{}>\r\n",
            k.udp(),
            alice.local
        ),
    );
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    assert!(
        header(&got, "Route").is_none(),
        "our entry is consumed: {got}"
    );
    bob.send(&reply(&got, 486, "Busy Here", "b1", ""));
    bob.expect_request("ACK");
    alice.expect_status(486);
    // A Route naming kamrs with a user part that is no token of ours is
    // still refused.
    let forged = request(
        "BYE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>;tag=b1",
        &unique(),
        2,
        &format!("Route: <sip:notatoken@{};lr>\r\n", k.udp()),
    );
    alice.send(&forged);
    alice.expect_status(403);
    bob.expect_nothing(Duration::from_millis(200));
}

/// A UDP datagram may hold bytes past its Content-Length; relayed onto a
/// caller's TCP connection they were read as a second message from kamrs:
/// a callee could inject a forged BYE (or a 200 for any of the caller's
/// transactions) into the caller's stream.
#[test]
fn a_callee_cannot_smuggle_a_message_into_the_callers_stream() {
    let k = Kamrs::start(PROXY);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::tcp(k.tcp());
    let call = format!("smuggle-{}", unique());
    let inv = request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        &format!("Contact: <sip:alice@{};transport=tcp>\r\n", alice.local),
    );
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    let smuggled = format!(
        "BYE sip:alice@{} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bKevil\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>;tag=a1\r\nCall-ID: {call}\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n",
        alice.local,
        k.tcp()
    );
    bob.send(&format!(
        "{}{smuggled}",
        reply(&got, 180, "Ringing", "b1", "")
    ));
    alice.expect_status(180);
    alice.expect_nothing(Duration::from_millis(300));
    // A response without Content-Length (fine over UDP) gets one on the
    // stream: its body is not taken for the start of the next message.
    let ok = reply(&got, 200, "OK", "b1", "Contact: <sip:bob@127.0.0.1:1>\r\n").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/sdp\r\n\r\nv=0\r\n",
    );
    bob.send(&ok);
    let ok = alice.expect_status(200);
    assert_eq!(header(&ok, "Content-Length").as_deref(), Some("5"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nv=0\r\n"), "{ok}");
    alice.expect_nothing(Duration::from_millis(200));
}

/// Connection ids start again at 1 in every process, and with a fixed
/// `[route] secret` a Record-Route token outlives the process that
/// issued it: after a restart the token's connection id named whoever
/// connected first, and a BYE for bob's old call went to carol.
#[test]
fn a_token_names_no_connection_of_a_later_process() {
    let free = || {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        std::net::TcpListener::bind(("127.0.0.1", port)).map(|_| port)
    };
    let port = std::iter::repeat_with(free)
        .find_map(Result::ok)
        .expect("a free port");
    let config = format!(
        "listen = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\n{PROXY}secret = \"a fixed secret for the whole cluster\"\n"
    );
    let k = Kamrs::start_with_config(&config, &[]);
    let mut bob = Phone::tcp(k.tcp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let call = format!("restart-{}", unique());
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        &format!("Contact: <sip:alice@{}>\r\n", alice.local),
    ));
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    bob.send(&reply(
        &inv,
        200,
        "OK",
        "b1",
        "Contact: <sip:bob@127.0.0.1:1;transport=tcp>\r\n",
    ));
    let ok = alice.expect_status(200);
    let mut routes: Vec<String> = headers(&ok, "Record-Route");
    routes.reverse();
    let route_set: String = routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
    drop(bob);
    drop(k);
    // The same addresses and secret; carol is the first to connect.
    let k = Kamrs::start_with_config(&config, &[]);
    let mut carol = Phone::tcp(k.tcp());
    assert_eq!(carol.register("carol", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    alice.send(&request(
        "BYE",
        "sip:bob@127.0.0.1:1;transport=tcp",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>;tag=b1",
        &call,
        2,
        &route_set,
    ));
    carol.expect_nothing(Duration::from_millis(500));
    alice.expect_status(430);
}

/// A call that spirals through kamrs twice (bob's binding is an address
/// of kamrs naming carol) carries two Record-Routes of ours with
/// different tokens. Both were popped at once and the first token used,
/// whose next hop is kamrs itself: the request came back with no Route
/// left, so the ACK was absorbed and the BYE routed by its Request-URI
/// (480), and neither reached the other end. Each token is a hop.
#[test]
fn a_dialog_through_two_of_our_record_routes_follows_both() {
    let c = CtlKamrs::start(PROXY, "");
    let k = &c.kamrs;
    let mut carol = Phone::udp(k.udp());
    assert_eq!(carol.register("carol", None, ""), 200);
    c.ctl_ok(&["ul.add", "bob", &format!("sip:carol@{}", k.udp())]);
    let mut alice = Phone::udp(k.udp());
    let call = format!("spiral-{}", unique());
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        // Alice is behind NAT: only her flow reaches her.
        "Contact: <sip:alice@198.51.100.1:5060>\r\n",
    ));
    alice.expect_status(100);
    let inv = carol.expect_request("INVITE");
    let rr = headers(&inv, "Record-Route");
    assert_eq!(rr.len(), 2, "one per pass: {inv}");
    carol.send(&reply(
        &inv,
        200,
        "OK",
        "c1",
        &format!("Contact: <sip:carol@{}>\r\n", carol.local),
    ));
    let ok = alice.expect_status(200);
    let to_alice: String = rr.iter().map(|r| format!("Route: {r}\r\n")).collect();
    let to_carol: String = rr.iter().rev().map(|r| format!("Route: {r}\r\n")).collect();
    let ack = request(
        "ACK",
        &format!("sip:carol@{}", carol.local),
        &alice,
        "<sip:alice@example.com>;tag=a1",
        &header(&ok, "To").unwrap(),
        &call,
        1,
        &to_carol,
    );
    alice.send(&ack);
    let got = carol.expect_request("ACK");
    assert!(header(&got, "Route").is_none(), "{got}");
    let bye = request(
        "BYE",
        "sip:alice@198.51.100.1:5060",
        &carol,
        &header(&ok, "To").unwrap(),
        "<sip:alice@example.com>;tag=a1",
        &call,
        1,
        &to_alice,
    );
    carol.send(&bye);
    let got = alice.expect_request("BYE");
    alice.send(&reply(&got, 200, "OK", "a1", ""));
    carol.expect_status(200);
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A flood of INVITEs to a user with ten silent bindings: past
/// `max_transactions` the flood gets 503, every admitted call ends
/// (408 at fr_timer), the table empties, memory settles and the next
/// call is served.
#[test]
fn a_flood_to_ten_silent_bindings_is_bounded_and_drains() {
    let k = Kamrs::start(&format!("{PROXY}fr_timer = 300\nmax_transactions = 30\n"));
    let mut bindings: Vec<Phone> = (0..10).map(|_| Phone::udp(k.udp())).collect();
    for b in &mut bindings {
        assert_eq!(b.register("bob", None, ""), 200);
    }
    let mut alice = Phone::tcp(k.tcp());
    let before = rss_kib(k.pid());
    const N: usize = 300;
    let mut sent = std::collections::HashMap::new();
    for i in 0..N {
        let call = format!("flood-{i}-{}", unique());
        let inv = request(
            "INVITE",
            "sip:bob@example.com",
            &alice,
            "<sip:alice@example.com>;tag=a1",
            "<sip:bob@example.com>",
            &call,
            1,
            &format!("Contact: <sip:alice@{};transport=tcp>\r\n", alice.local),
        );
        alice.send(&inv);
        sent.insert(call, inv);
    }
    let (mut refused, mut timed_out) = (0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while refused + timed_out < N && std::time::Instant::now() < deadline {
        let Some(m) = alice.recv(Duration::from_secs(5)) else {
            break;
        };
        match kamrs_tests::ua::status_of(&m) {
            100 => {}
            503 => refused += 1,
            408 => {
                timed_out += 1;
                // The ACK for the 408 ends its transaction at once.
                let call = header(&m, "Call-ID").unwrap();
                let inv = &sent[&call];
                let ack = inv
                    .replacen("INVITE sip:", "ACK sip:", 1)
                    .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
                    .replace(
                        "To: <sip:bob@example.com>\r\n",
                        &format!("To: {}\r\n", header(&m, "To").unwrap()),
                    );
                alice.send(&ack);
            }
            other => panic!("unexpected {other}:\n{m}"),
        }
    }
    assert_eq!(refused + timed_out, N, "every INVITE got a final answer");
    assert!(
        refused > 0 && timed_out >= 30,
        "{refused} refused, {timed_out} timed out"
    );
    assert_eq!(k.stat("tm:refused"), refused as u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while k.stat("tm:current") != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(k.stat("tm:current"), 0, "the table empties");
    let after = rss_kib(k.pid());
    assert!(
        after < before + 32 * 1024,
        "memory settles: {before} KiB before, {after} KiB after"
    );
    // The next call is served: it rings the first binding.
    for b in &mut bindings {
        while b.recv(Duration::from_millis(1)).is_some() {}
    }
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a2",
        "<sip:bob@example.com>",
        &format!("after-{}", unique()),
        1,
        "",
    ));
    alice.expect_status(100);
    bindings[0].expect_request("INVITE");
}

/// A caller whose 100 Trying was lost retransmits its INVITE: while no
/// phone has rung yet, the 100 goes again (RFC 3261 §17.2.1: the most
/// recent provisional response), not silence until someone rings.
#[test]
fn a_retransmitted_invite_gets_the_100_again_before_anyone_rings() {
    let k = Kamrs::start(PROXY);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let inv = request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &format!("trying-{}", unique()),
        1,
        "",
    );
    alice.send(&inv);
    alice.expect_status(100);
    let got = bob.expect_request("INVITE");
    alice.send(&inv);
    alice.expect_status(100);
    bob.send(&reply(&got, 486, "Busy Here", "b1", ""));
    bob.expect_request("ACK");
    alice.expect_status(486);
}

/// A token says how to reach both ends of one dialog, and an in-dialog
/// request (To tag and token) is not challenged. A token was good for
/// any Call-ID, forever: whoever had once been in a call with bob (or
/// read one token in a trace) could open "in-dialog" INVITEs to bob's
/// flow under any identity, past the 407. A token now names its
/// dialog's Call-ID.
#[test]
fn a_token_is_good_only_for_its_own_call() {
    let (c, _dir) = with_auth();
    let mut bob = Phone::udp(c.udp());
    c.ctl_ok(&["ul.add", "bob", &format!("sip:bob@{}", bob.local)]);
    let mut mallory = Phone::udp(c.udp());
    let call = format!("learn-{}", unique());
    mallory.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &mallory,
        "<sip:mallory@evil.example.org>;tag=m1",
        "<sip:bob@example.com>",
        &call,
        1,
        "Contact: <sip:mallory@198.51.100.66:5060>\r\n",
    ));
    mallory.expect_status(100);
    let inv = bob.expect_request("INVITE");
    let rr = headers(&inv, "Record-Route");
    bob.send(&reply(&inv, 486, "Busy Here", "b1", ""));
    bob.expect_request("ACK");
    mallory.expect_status(486);
    let forged = |mallory: &Phone, call: &str, cseq| {
        request(
            "INVITE",
            "sip:bob@example.com",
            mallory,
            "<sip:alice@example.com>;tag=m1",
            "<sip:bob@example.com>;tag=b1",
            call,
            cseq,
            &format!(
                "Route: {}\r\nContact: <sip:alice@198.51.100.66:5060>\r\n",
                rr[0]
            ),
        )
    };
    let other = forged(&mallory, &format!("other-{}", unique()), 1);
    mallory.send(&other);
    mallory.expect_status(403);
    bob.expect_nothing(Duration::from_millis(300));
    // In its own call the token still routes (bob answers for himself).
    let same = forged(&mallory, &call, 2);
    mallory.send(&same);
    mallory.expect_status(100);
    let got = bob.expect_request("INVITE");
    bob.send(&reply(&got, 481, "Call Does Not Exist", "b1", ""));
    bob.expect_request("ACK");
    mallory.expect_status(481);
}

/// Bindings whose Contact names kamrs itself (registered over TCP, the
/// connection then closed: requests follow the Contact) turn one INVITE
/// into a fork bomb: each spiral forks to every binding again with a new
/// Request-URI, which the loop check (same request, same Request-URI)
/// does not see. One unauthenticated INVITE made thousands of
/// transactions (the whole table: 503 for everyone) and tens of
/// thousands of forwarded requests. A request kamrs sent itself is not
/// sent round again.
#[test]
fn bindings_naming_kamrs_itself_are_no_fork_bomb() {
    let k = Kamrs::start(PROXY);
    {
        let mut bob = Phone::tcp(k.tcp());
        for i in 0..10 {
            let contact = format!("<sip:bob@{};n={i}>", k.udp());
            assert_eq!(bob.register("bob", Some(&contact), ""), 200);
        }
    }
    assert_eq!(k.stat_until("usrloc:flows", 0), 0, "the connection is gone");
    let mut alice = Phone::udp(k.udp());
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &format!("bomb-{}", unique()),
        1,
        "",
    ));
    // Bindings of a closed TCP connection are unreachable (their Contact
    // is not followed over UDP), so there is no branch at all; bindings
    // an admin points at kamrs get 482 on their second pass
    // (proxy_flows.rs, hop_limits_loops_and_forged_tokens_are_refused).
    let last = alice.expect_status(480);
    assert!(header(&last, "To").is_some());
    assert_eq!(k.stat("tm:created"), 0);
    assert_eq!(k.stat("core:fwd_requests"), 0);
    assert_eq!(k.stat("tm:refused"), 0);
}

/// An IPv6 caller and an IPv4 callee: kamrs record-routes once per
/// side, each naming its own address, and the dialog's requests follow
/// both ways.
#[test]
fn a_call_between_ipv6_and_ipv4_follows_both_record_routes() {
    let k = Kamrs::start_with_config(
        &format!("listen = [\"udp:127.0.0.1:0\", \"udp:[::1]:0\"]\n{PROXY}"),
        &[],
    );
    let v6: std::net::SocketAddr = k
        .listening
        .iter()
        .find_map(|l| {
            l.strip_prefix("udp:")?
                .parse()
                .ok()
                .filter(|a: &std::net::SocketAddr| a.is_ipv6())
        })
        .expect("an IPv6 socket");
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp_on("[::1]:0", v6);
    let call = format!("v6-{}", unique());
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        &format!("Contact: <sip:alice@{}>\r\n", alice.local),
    ));
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    let rr = headers(&inv, "Record-Route");
    assert_eq!(rr.len(), 2, "{inv}");
    assert!(rr[0].contains(&format!("@{};lr>", k.udp())), "{rr:?}");
    assert!(rr[1].contains(&format!("@{v6};lr>")), "{rr:?}");
    bob.send(&reply(
        &inv,
        200,
        "OK",
        "b1",
        &format!("Contact: <sip:bob@{}>\r\n", bob.local),
    ));
    let ok = alice.expect_status(200);
    let to_bob: String = headers(&ok, "Record-Route")
        .iter()
        .rev()
        .map(|r| format!("Route: {r}\r\n"))
        .collect();
    alice.send(&request(
        "BYE",
        &format!("sip:bob@{}", bob.local),
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>;tag=b1",
        &call,
        2,
        &to_bob,
    ));
    let bye = bob.expect_request("BYE");
    assert!(header(&bye, "Route").is_none(), "{bye}");
    bob.send(&reply(&bye, 200, "OK", "b1", ""));
    alice.expect_status(200);
}

/// The ACK of a 2xx is forwarded statelessly on the dialog's route; one
/// that has run out of hops (Max-Forwards: 0) was still forwarded (with
/// 0), which RFC 3261 §16.3 step 3 forbids: it is dropped.
#[test]
fn an_ack_out_of_hops_is_not_forwarded() {
    let k = Kamrs::start(PROXY);
    let mut bob = Phone::udp(k.udp());
    assert_eq!(bob.register("bob", None, ""), 200);
    let mut alice = Phone::udp(k.udp());
    let call = format!("ackmf-{}", unique());
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &call,
        1,
        "",
    ));
    alice.expect_status(100);
    let inv = bob.expect_request("INVITE");
    bob.send(&reply(
        &inv,
        200,
        "OK",
        "b1",
        &format!("Contact: <sip:bob@{}>\r\n", bob.local),
    ));
    let ok = alice.expect_status(200);
    let route = format!("Route: {}\r\n", header(&ok, "Record-Route").unwrap());
    let ack = request(
        "ACK",
        &format!("sip:bob@{}", bob.local),
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>;tag=b1",
        &call,
        1,
        &route,
    );
    alice.send(&ack.replace("Max-Forwards: 70", "Max-Forwards: 0"));
    bob.expect_nothing(Duration::from_millis(300));
    alice.send(&ack);
    let got = bob.expect_request("ACK");
    assert_eq!(header(&got, "Max-Forwards").as_deref(), Some("69"));
}
