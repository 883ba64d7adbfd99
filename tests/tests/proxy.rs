//! Calls reach registered phones: kamrs in `[route] mode = "proxy"` as a
//! stateful proxy (RFC 3261 §16, §17) between SIPp callers and callees
//! that registered with it (tests/sipp/uac_*.xml, uas_*.xml; see
//! tests/src/sipp.rs for how one SIPp both registers and answers), between
//! two baresip phones, and to a GRUU over raw UDP.
//!
//! The scenarios were checked against Kamailio (`KAMRS_TESTS_REFERENCE=
//! kamailio`, tests/kamailio/proxy.cfg), except the GRUU test, whose
//! registrar side is kamrs's own (see the report in the commit log).
//! Skipped with a printed reason when SIPp or baresip is missing, except
//! under CI, where that is a failure.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use kamrs_tests::phone::Phone;
use kamrs_tests::sipp::{call_id, callee, caller, Proxy, Transport, DOMAIN};
use kamrs_tests::{have, recv_udp, unique, Response};

const PROXY: &str = "[route]\nmode = \"proxy\"\n";

/// bob registers (one callee SIPp), alice calls him: INVITE, 100, 180,
/// 200, ACK, BYE, 200, every message through kamrs.
fn basic_call(transport: Transport) {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let cid = call_id();
    let mut bob = callee(&proxy, transport, "uas_answer.xml", "bob", &cid, None);
    proxy.wait_bindings("bob", 1, &[&bob]);
    let mut alice = caller(&proxy, transport, "uac_call.xml", "bob", &cid, None);
    alice.expect_success(&proxy);
    bob.expect_success(&proxy);

    // kamrs answered 100 Trying itself, and relayed the 180 and 200.
    let first = alice.received_first_lines();
    assert!(
        first.iter().any(|l| l.starts_with("SIP/2.0 100")),
        "no 100 Trying: {first:?}"
    );
    // bob's INVITE came through kamrs: its Via on top, a Record-Route
    // naming it, Max-Forwards decremented.
    let invite = bob.messages();
    assert!(
        invite.contains("Record-Route:"),
        "no Record-Route:\n{invite}"
    );
    assert!(
        invite.contains("Max-Forwards: 69"),
        "Max-Forwards not 69:\n{invite}"
    );

    // INVITE and BYE: two transactions ended 2xx; INVITE, ACK and BYE
    // forwarded; the 200s (and the 180) relayed.
    proxy.stat_at_least("tm:2xx_transactions", 2);
    proxy.stat_at_least("tm:created", 2);
    proxy.stat_at_least("core:fwd_requests", 3);
    proxy.stat_at_least("tm:rpl_received", 3);
    proxy.stat_at_least("tm:rpl_sent", 3);
}

#[test]
fn a_call_over_udp() {
    basic_call(Transport::Udp);
}

#[test]
fn a_call_over_tcp() {
    basic_call(Transport::Tcp);
}

/// bob registered twice (two SIPp callees, two Contacts): the INVITE is
/// forked to both; one answers at once, the other only rings and gets a
/// CANCEL once the first answered (200 to it, 487 to the INVITE, the ACK
/// for the 487). alice sees exactly one 200.
fn forking(transport: Transport) {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let cid = call_id();
    let mut ringing = callee(&proxy, transport, "uas_ring_cancel.xml", "bob", &cid, None);
    let mut answering = callee(&proxy, transport, "uas_answer.xml", "bob", &cid, None);
    proxy.wait_bindings("bob", 2, &[&ringing, &answering]);
    let mut alice = caller(&proxy, transport, "uac_call.xml", "bob", &cid, None);
    alice.expect_success(&proxy);
    answering.expect_success(&proxy);
    ringing.expect_success(&proxy);

    let finals: Vec<u16> = alice
        .received_responses()
        .iter()
        .filter(|r| r.status >= 200 && r.header("CSeq").is_some_and(|c| c.ends_with("INVITE")))
        .map(|r| r.status)
        .collect();
    assert_eq!(finals, [200], "alice's final answers to the INVITE");

    proxy.stat_at_least("tm:2xx_transactions", 2);
    // The INVITE to each binding, the ACK and the BYE (the CANCEL and the
    // ACK for the 487 are kamrs's own: not counted here either way).
    proxy.stat_at_least("core:fwd_requests", 4);
}

#[test]
fn a_forked_call_cancels_the_branch_that_only_rang_udp() {
    forking(Transport::Udp);
}

#[test]
fn a_forked_call_cancels_the_branch_that_only_rang_tcp() {
    forking(Transport::Tcp);
}

/// alice gives up while bob rings: 200 for her CANCEL, 487 for her
/// INVITE; bob gets the CANCEL.
fn caller_cancels(transport: Transport) {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let cid = call_id();
    let mut bob = callee(&proxy, transport, "uas_ring_cancel.xml", "bob", &cid, None);
    proxy.wait_bindings("bob", 1, &[&bob]);
    let mut alice = caller(&proxy, transport, "uac_cancel.xml", "bob", &cid, None);
    alice.expect_success(&proxy);
    bob.expect_success(&proxy);

    // The INVITE ended 487, the CANCEL 200 (answered by kamrs itself).
    proxy.stat_at_least("tm:4xx_transactions", 1);
    proxy.stat_at_least("tm:rpl_generated", 1);
}

#[test]
fn the_caller_cancels_a_ringing_call_udp() {
    caller_cancels(Transport::Udp);
}

#[test]
fn the_caller_cancels_a_ringing_call_tcp() {
    caller_cancels(Transport::Tcp);
}

/// bob rings and never answers: with `fr_inv_timer = 2000` (ms), timer C fires
/// after 2 s, kamrs cancels bob's branch and answers alice 408.
#[test]
fn an_unanswered_call_times_out_with_408_and_cancels_the_callee() {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(&format!("{PROXY}fr_inv_timer = 2000\n"));
    let cid = call_id();
    let mut bob = callee(
        &proxy,
        Transport::Udp,
        "uas_ring_cancel.xml",
        "bob",
        &cid,
        None,
    );
    proxy.wait_bindings("bob", 1, &[&bob]);
    let mut alice = caller(&proxy, Transport::Udp, "uac_408.xml", "bob", &cid, None);
    let o = alice.expect_success(&proxy);
    bob.expect_success(&proxy);
    // 2 s of ringing, then the 408 (and alice's 0.5 s of timewait).
    assert!(
        o.elapsed >= Duration::from_millis(1900) && o.elapsed < Duration::from_secs(10),
        "alice's call took {:?}, want about 2.5 s",
        o.elapsed
    );
    proxy.stat_at_least("tm:timeouts", 1);
    proxy.stat_at_least("tm:4xx_transactions", 1);
    proxy.stat_at_least("tm:rpl_generated", 1);
}

/// alice over UDP, bob registered over TCP: kamrs changes transport
/// between the two legs, and the ACK and BYE still find both ends (a proxy
/// in between two transports records the route for both sides, as
/// Kamailio's double Record-Route does).
#[test]
fn a_call_from_udp_to_a_callee_registered_over_tcp() {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let cid = call_id();
    let mut bob = callee(&proxy, Transport::Tcp, "uas_answer.xml", "bob", &cid, None);
    proxy.wait_bindings("bob", 1, &[&bob]);
    let mut alice = caller(&proxy, Transport::Udp, "uac_call.xml", "bob", &cid, None);
    alice.expect_success(&proxy);
    bob.expect_success(&proxy);
    proxy.stat_at_least("tm:2xx_transactions", 2);
}

/// bob's phone vanished without unregistering: its socket is open but
/// silent, so no provisional answer ever comes. kamrs retransmits the
/// INVITE over UDP (timer A), answers alice 408 once `fr_timer = 2000` (ms)
/// expires, and sends no CANCEL (RFC 3261 §9.1: not without a
/// provisional response).
#[test]
fn an_invite_nobody_answers_at_all_is_retransmitted_then_408_after_fr_timer() {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(&format!("{PROXY}fr_timer = 2000\n"));
    let bob = RawPhone::new(&proxy);
    bob.register("urn:uuid:00000000-0000-1000-8000-0000000000c1");
    let mut alice = caller(
        &proxy,
        Transport::Udp,
        "uac_408.xml",
        "bob",
        &call_id(),
        None,
    );
    let o = alice.expect_success(&proxy);
    assert!(
        o.elapsed >= Duration::from_millis(1900) && o.elapsed < Duration::from_secs(10),
        "alice's call took {:?}, want about 2.5 s",
        o.elapsed
    );
    // Everything bob's socket got: the INVITE and its retransmissions.
    let mut got = Vec::new();
    while let Some(m) = bob.next_request(Duration::from_millis(300)) {
        got.push(m.lines().next().unwrap_or("").to_owned());
    }
    let invites = got.iter().filter(|l| l.starts_with("INVITE ")).count();
    assert!(invites >= 2, "the INVITE was not retransmitted: {got:?}");
    assert!(
        !got.iter().any(|l| l.starts_with("CANCEL ")),
        "a CANCEL without a provisional response: {got:?}"
    );
    proxy.stat_at_least("tm:4xx_transactions", 1);
    proxy.stat_at_least("tm:rpl_generated", 1);
}

/// Nobody registered as bob: 480, and nothing forwarded.
#[test]
fn a_call_to_an_aor_without_binding_gets_480() {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let mut alice = caller(
        &proxy,
        Transport::Udp,
        "uac_480.xml",
        "bob",
        &call_id(),
        None,
    );
    alice.expect_success(&proxy);
    if let Some(fwd) = proxy.stat("core:fwd_requests") {
        assert_eq!(fwd, 0, "an INVITE to nobody was forwarded");
    }
}

/// bob behind a NAT: his Contact names 127.0.0.1:9, where nothing
/// listens, while he really sends from his SIPp port. The INVITE (and the
/// ACK and BYE after it) must reach him where his REGISTER came from.
fn callee_behind_nat(transport: Transport) {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let cid = call_id();
    let dead = format!("sip:bob@127.0.0.1:9{}", transport.uri_param());
    let mut bob = callee(
        &proxy,
        transport,
        "uas_answer.xml",
        "bob",
        &cid,
        Some(&dead),
    );
    proxy.wait_bindings("bob", 1, &[&bob]);
    let mut alice = caller(&proxy, transport, "uac_call.xml", "bob", &cid, None);
    alice.expect_success(&proxy);
    bob.expect_success(&proxy);
}

#[test]
fn a_call_reaches_a_callee_whose_contact_is_unreachable_udp() {
    callee_behind_nat(Transport::Udp);
}

#[test]
fn a_call_reaches_a_callee_whose_contact_is_unreachable_tcp() {
    callee_behind_nat(Transport::Tcp);
}

/// alice behind a NAT (her Contact names 127.0.0.1:9); bob hangs up: his
/// BYE, sent along the Record-Route to kamrs, must reach alice at her
/// real source.
fn caller_behind_nat(transport: Transport) {
    if !have("sipp") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let cid = call_id();
    let mut bob = callee(&proxy, transport, "uas_hangup.xml", "bob", &cid, None);
    proxy.wait_bindings("bob", 1, &[&bob]);
    let dead = format!("sip:alice@127.0.0.1:9{}", transport.uri_param());
    let mut alice = caller(
        &proxy,
        transport,
        "uac_wait_bye.xml",
        "bob",
        &cid,
        Some(&dead),
    );
    alice.expect_success(&proxy);
    bob.expect_success(&proxy);
    // INVITE, ACK, BYE.
    proxy.stat_at_least("core:fwd_requests", 3);
}

#[test]
fn the_callee_hangs_up_on_a_caller_whose_contact_is_unreachable_udp() {
    caller_behind_nat(Transport::Udp);
}

#[test]
fn the_callee_hangs_up_on_a_caller_whose_contact_is_unreachable_tcp() {
    caller_behind_nat(Transport::Tcp);
}

// ---------------------------------------------------------------- baresip

/// Two baresip phones register; alice dials bob, who answers by himself
/// (`answermode=auto`); both see the call established; alice hangs up and
/// bob sees it closed: the BYE went through kamrs.
#[test]
fn baresip_calls_baresip() {
    if !have("baresip") {
        return;
    }
    let proxy = Proxy::start(PROXY);
    let mut alice = Phone::start("alice", proxy.udp);
    let mut bob = Phone::start("bob", proxy.udp);
    proxy.wait_bindings("alice", 1, &[]);
    proxy.wait_bindings("bob", 1, &[]);

    alice.command("dial", &format!("sip:bob@{}", proxy.udp));
    bob.wait_event("CALL_ESTABLISHED", Duration::from_secs(15));
    alice.wait_event("CALL_ESTABLISHED", Duration::from_secs(15));
    proxy.stat_at_least("tm:2xx_transactions", 1);
    let before = proxy.stat("core:fwd_requests");

    alice.command("hangup", "");
    bob.wait_event("CALL_CLOSED", Duration::from_secs(15));
    alice.wait_event("CALL_CLOSED", Duration::from_secs(15));
    // The BYE and its 200: one more request forwarded, another 2xx.
    if let Some(before) = before {
        proxy.stat_at_least("core:fwd_requests", before + 1);
    }
    proxy.stat_at_least("tm:2xx_transactions", 2);
}

// ------------------------------------------------------------------- GRUU

/// A raw UDP phone: a socket of its own, registering bob with an
/// instance id and `Supported: gruu`.
struct RawPhone {
    sock: UdpSocket,
    port: u16,
}

impl RawPhone {
    fn new(proxy: &Proxy) -> RawPhone {
        let sock = kamrs_tests::udp_client(proxy.udp);
        let port = sock.local_addr().unwrap().port();
        RawPhone { sock, port }
    }

    fn contact_uri(&self) -> String {
        format!("sip:bob@127.0.0.1:{}", self.port)
    }

    /// REGISTERs with `+sip.instance`; the 200.
    fn register(&self, instance: &str) -> Response {
        let msg = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bob@{DOMAIN}>;tag={t}\r\n\
             To: <sip:bob@{DOMAIN}>\r\n\
             Call-ID: {c}@gruu\r\nCSeq: 1 REGISTER\r\n\
             Supported: gruu\r\n\
             Contact: <{uri}>;+sip.instance=\"<{instance}>\"\r\n\
             Expires: 600\r\nContent-Length: 0\r\n\r\n",
            p = self.port,
            b = unique(),
            t = unique(),
            c = unique(),
            uri = self.contact_uri(),
        );
        let r = kamrs_tests::udp_exchange(&self.sock, msg);
        assert_eq!(r.status, 200, "{}", r.raw);
        r
    }

    /// The next request received within `within`, skipping responses.
    fn next_request(&self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(b) = recv_udp(&self.sock, left) {
                let text = String::from_utf8_lossy(&b).into_owned();
                if !text.starts_with("SIP/2.0") {
                    return Some(text);
                }
            }
        }
        None
    }

    fn send(&self, msg: &str) {
        kamrs_tests::send_udp(&self.sock, msg);
    }
}

/// The `name="…"` parameter (pub-gruu, temp-gruu) of the Contact that
/// names `uri` in a REGISTER's 200.
fn gruu_of(reply: &Response, uri: &str, name: &str) -> String {
    let contact = reply
        .values("Contact")
        .into_iter()
        .find(|c| c.contains(&format!("<{uri}>")))
        .unwrap_or_else(|| panic!("no Contact {uri} in\n{}", reply.raw));
    // Quoted, with a `;gr` inside: not a job for `param`.
    let at = contact
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name}=\"…\" in {contact}"))
        + name.len()
        + 2;
    let len = contact[at..].find('"').expect("closing quote");
    contact[at..at + len].to_owned()
}

/// The response to `req` (its Via set, From, To with `to_tag`, Call-ID,
/// CSeq): what a UAS sends back.
fn answer(req: &str, status: &str, to_tag: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in req.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" | "t" => {
                out.push_str(line);
                out.push_str(&format!(";tag={to_tag}\r\n"));
            }
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// alice INVITEs `target`; the phone `reached` must get it (and declines
/// it, 486: then alice gets the 486 and ACKs it), the other phone nothing.
fn invite_reaches_only(proxy: &Proxy, target: &str, reached: &RawPhone, other: &RawPhone) {
    let alice = kamrs_tests::udp_client(proxy.udp);
    let port = alice.local_addr().unwrap().port();
    let (branch, tag, cid) = (unique(), unique(), unique());
    let head = |method: &str, cseq: &str| {
        format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@{DOMAIN}>;tag={tag}\r\n\
             To: <{target}>\r\n\
             Call-ID: {cid}@gruu\r\nCSeq: {cseq}\r\n"
        )
    };
    kamrs_tests::send_udp(
        &alice,
        format!(
            "{}Contact: <sip:alice@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n",
            head("INVITE", "1 INVITE")
        ),
    );
    let invite = reached
        .next_request(Duration::from_secs(5))
        .unwrap_or_else(|| {
            panic!(
                "the INVITE to {target} did not reach its binding\n{}",
                proxy.log()
            )
        });
    assert!(invite.starts_with("INVITE "), "{invite}");
    reached.send(&answer(&invite, "486 Busy Here", "busy1"));

    // alice: (100,) 486; then the ACK for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let busy = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let b = recv_udp(&alice, left).unwrap_or_else(|| panic!("alice got no 486 for {target}"));
        let r = Response::parse(&b).expect("a response");
        if r.status >= 200 {
            break r;
        }
    };
    assert_eq!(busy.status, 486, "{}", busy.raw);
    kamrs_tests::send_udp(
        &alice,
        format!(
            "{}Content-Length: 0\r\n\r\n",
            head("ACK", "1 ACK").replace(
                &format!("To: <{target}>\r\n"),
                &format!("To: {}\r\n", busy.header("To").unwrap())
            )
        ),
    );
    // The ACK for the 486 comes from kamrs, hop by hop.
    let ack = reached
        .next_request(Duration::from_secs(5))
        .expect("kamrs ACKs the 486");
    assert!(ack.starts_with("ACK "), "{ack}");
    // And the other binding heard nothing of this call.
    if let Some(m) = other.next_request(Duration::from_millis(500)) {
        panic!("the INVITE to {target} reached the other binding too:\n{m}");
    }
}

/// bob registers two bindings with different instance ids and `Supported:
/// gruu`; an INVITE to one binding's temp-gruu reaches that binding only,
/// and one to the other's pub-gruu the other only.
#[test]
fn an_invite_to_a_gruu_reaches_only_its_binding() {
    let proxy = Proxy::start(PROXY);
    let one = RawPhone::new(&proxy);
    let two = RawPhone::new(&proxy);
    let r1 = one.register("urn:uuid:00000000-0000-1000-8000-00000000000a");
    let r2 = two.register("urn:uuid:00000000-0000-1000-8000-00000000000b");
    let temp_one = gruu_of(&r1, &one.contact_uri(), "temp-gruu");
    let pub_two = gruu_of(&r2, &two.contact_uri(), "pub-gruu");
    assert!(pub_two.contains(";gr=urn:uuid:"), "{pub_two}");
    invite_reaches_only(&proxy, &temp_one, &one, &two);
    invite_reaches_only(&proxy, &pub_two, &two, &one);
}

/// The harness's own parts that need no daemon.
#[test]
fn harness_answer_copies_the_transaction_headers() {
    let req = "INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
               Via: SIP/2.0/UDP b;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\n\
               Call-ID: c\r\nCSeq: 1 INVITE\r\nContact: <sip:a@y>\r\n\r\n";
    let r = Response::parse(answer(req, "486 Busy Here", "t").as_bytes()).unwrap();
    assert_eq!(r.status, 486);
    assert_eq!(r.headers("Via").len(), 2);
    assert_eq!(r.header("To"), Some("<sip:bob@x>;tag=t"));
    assert!(r.header("Contact").is_none());
}
