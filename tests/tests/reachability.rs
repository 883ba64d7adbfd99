//! What phones send to stay reachable (RFC 5626 keepalives, STUN), seen
//! through the statistics: answered or absorbed, never counted as dropped
//! requests.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::*;
use kamrs_tests::Baresip;
use kamrs_tests::*;

/// Polls `name` until it is `want` (the UDP workers may still be on the
/// datagram), failing after 5 s with what it was.
fn stat_becomes(k: &CtlKamrs, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = stat(k, name);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} = {now}, expected {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stun_binding_request(tid: [u8; 12]) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&tid);
    m
}

#[test]
fn keepalives_and_stun_are_counted_as_such_not_as_drops() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    // A STUN Binding request: answered.
    send_udp(&sock, stun_binding_request([5; 12]));
    let answer = recv_udp(&sock, Duration::from_secs(5)).expect("a STUN answer");
    assert_eq!(&answer[0..2], &[0x01, 0x01]);
    stat_becomes(&k, "core:stun_answered", 1);
    // A malformed one: dropped, counted apart.
    let mut bad = stun_binding_request([6; 12]);
    bad[5] = 0;
    send_udp(&sock, &bad);
    stat_becomes(&k, "core:stun_dropped", 1);
    // A UDP CR/LF keepalive, and a TCP double-CRLF ping with its pong.
    send_udp(&sock, b"\r\n\r\n");
    let mut tcp = k.kamrs.tcp_connect();
    tcp.write_all(b"\r\n\r\n").unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut pong = [0u8; 2];
    tcp.read_exact(&mut pong).expect("a pong");
    assert_eq!(&pong, b"\r\n");
    stat_becomes(&k, "core:keepalives", 2);
    assert_eq!(stat(&k, "core:drop_requests"), 0);
    assert_eq!(stat(&k, "core:rcv_requests"), 0);
}

/// The `Keepalive` and `Cflags` of `aor`'s only binding, by `ul.lookup`.
fn keepalive_of(k: &CtlKamrs, aor: &str) -> (u64, u64) {
    let l = k.ctl_json(&["ul.lookup", aor]);
    let c = &l["Contacts"][0]["Contact"];
    (
        c["Keepalive"].as_u64().unwrap_or_else(|| panic!("{l}")),
        c["CFlags"].as_u64().unwrap_or_else(|| panic!("{l}")),
    )
}

#[test]
fn a_registration_through_a_nat_is_marked_keepalive() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();
    // The Via names a port the packet did not come from: a NAT rewrote it
    // (nat_uac_test 16).
    let natted = register(
        "nat",
        Some("sip:nat@127.0.0.1:5999"),
        Some(600),
        &unique(),
        1,
        5999,
        "ua",
    );
    assert_eq!(udp_exchange(&sock, natted).status, 200);
    assert_eq!(keepalive_of(&k, "nat"), (1, 1 << 6));
    // The same phone seen where it says it is: not NATed.
    let direct = register(
        "direct",
        Some(&format!("sip:direct@127.0.0.1:{port}")),
        Some(600),
        &unique(),
        1,
        port,
        "ua",
    );
    assert_eq!(udp_exchange(&sock, direct).status, 200);
    assert_eq!(keepalive_of(&k, "direct"), (0, 0));
}

// ------------------------------------------- TCP connections and bindings

/// REGISTERs `aor` over `tcp` for `expires` seconds and asserts the 200.
fn tcp_register(tcp: &mut std::net::TcpStream, aor: &str, expires: u32) {
    let via_port = tcp.local_addr().unwrap().port();
    let contact = format!("sip:{aor}@127.0.0.1:{via_port};transport=tcp");
    let req = via_transport(
        &register(
            aor,
            Some(&contact),
            Some(expires),
            &unique(),
            1,
            via_port,
            "tcp-phone",
        ),
        "TCP",
    );
    let r = tcp_exchange(tcp, req);
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// Whether the server closed `tcp` within `within` (a read returns 0).
fn closed_within(tcp: &mut std::net::TcpStream, within: Duration) -> bool {
    tcp.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 64];
    matches!(tcp.read(&mut b), Ok(0))
}

/// Polls `ul.lookup aor` until it finds nothing, failing after 5 s.
fn aor_gone(k: &CtlKamrs, aor: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while k.ctl(&["ul.lookup", aor]).code() == Some(0) {
        assert!(Instant::now() < deadline, "{aor} still registered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_tcp_connection_lives_as_long_as_its_binding_not_its_idle_timeout() {
    let k = CtlKamrs::start("tcp_connection_lifetime = 1", "");
    let mut phone = k.kamrs.tcp_connect();
    tcp_register(&mut phone, "tcpphone", 600);
    let l = k.ctl_json(&["ul.lookup", "tcpphone"]);
    let id = l["Contacts"][0]["Contact"]["Tcpconn-Id"].as_i64().unwrap();
    assert!(id > 0, "{l}");
    assert_eq!(stat(&k, "usrloc:flows"), 1);
    // A connection with no binding is closed after its second of silence…
    let mut idle = k.kamrs.tcp_connect();
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)),
        "the idle connection stayed open"
    );
    // …while the phone's, silent three times as long, is still served.
    assert!(
        !closed_within(&mut phone, Duration::from_secs(3)),
        "closed with a live binding on it"
    );
    let port = phone.local_addr().unwrap().port();
    let options = via_transport(&sip_request("OPTIONS", &unique(), 1, port, &[]), "TCP");
    assert_eq!(tcp_exchange(&mut phone, options).status, 501);
}

#[test]
fn a_lost_tcp_connection_takes_its_bindings_with_it() {
    let k = CtlKamrs::start("handle_lost_tcp = true", "");
    let mut phone = k.kamrs.tcp_connect();
    tcp_register(&mut phone, "lostphone", 600);
    // Another phone's connection, and a UDP phone: they stay.
    let mut other = k.kamrs.tcp_connect();
    tcp_register(&mut other, "otherphone", 600);
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();
    let udp = register(
        "udpphone",
        Some(&format!("sip:u@127.0.0.1:{port}")),
        Some(600),
        &unique(),
        1,
        port,
        "ua",
    );
    assert_eq!(udp_exchange(&sock, udp).status, 200);
    drop(phone);
    aor_gone(&k, "lostphone");
    assert_eq!(k.ctl(&["ul.lookup", "udpphone"]).code(), Some(0));
    assert_eq!(k.ctl(&["ul.lookup", "otherphone"]).code(), Some(0));
}

#[test]
fn a_tcp_connection_is_closed_when_its_last_binding_expires() {
    let k = CtlKamrs::start("min_expires = 1\ntcp_connection_lifetime = 600", "");
    let mut phone = k.kamrs.tcp_connect();
    tcp_register(&mut phone, "shortphone", 2);
    // Expires in 2 s; the idle timeout is 10 minutes away.
    assert!(
        closed_within(&mut phone, Duration::from_secs(6)),
        "still open after its binding expired"
    );
    aor_gone(&k, "shortphone");
}

// ------------------------------------------- real phones over TCP

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// SIPp as one phone over one TCP connection from `port`: REGISTER, idle
/// `idle_ms`, REGISTER again on the same connection (tests/sipp/register_tcp.xml).
fn sipp_tcp_phone(
    k: &CtlKamrs,
    user: &str,
    instance: &str,
    port: u16,
    idle_ms: u32,
) -> std::process::Output {
    std::process::Command::new("sipp")
        .arg(k.kamrs.tcp().to_string())
        .args([
            "-sf",
            concat!(env!("CARGO_MANIFEST_DIR"), "/sipp/register_tcp.xml"),
        ])
        .args(["-t", "t1", "-m", "1", "-d", &idle_ms.to_string()])
        .args(["-key", "user", user, "-key", "instance", instance])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-timeout", "30s", "-timeout_error", "-nostdin"])
        .current_dir(k.dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sipp")
}

#[test]
fn sipp_over_tcp_keeps_its_connection_past_the_idle_timeout_and_takes_its_binding_away() {
    if !have("sipp") {
        return;
    }
    let k = CtlKamrs::start("tcp_connection_lifetime = 1\nhandle_lost_tcp = true", "");
    let user = format!("sipptcp{}", unique().replace(['x', '@'], ""));
    // Idle three times tcp_connection_lifetime between its REGISTERs, on
    // the same connection: both answered.
    let out = sipp_tcp_phone(
        &k,
        &user,
        "00000000-0000-1000-8000-00000000aaaa",
        free_tcp_port(),
        3000,
    );
    assert!(
        out.status.success(),
        "the second REGISTER on the idle connection failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // SIPp exited, its connection closed: handle_lost_tcp took the binding.
    aor_gone(&k, &user);
}

#[test]
fn sipp_reconnecting_with_the_same_instance_leaves_one_binding() {
    if !have("sipp") {
        return;
    }
    // Bindings outlive their connections (the default), to see them side
    // by side.
    let k = CtlKamrs::start("", "");
    let user = format!("sippinst{}", unique().replace(['x', '@'], ""));
    let instance = "00000000-0000-1000-8000-00000000bbbb";
    let (first, second) = (free_tcp_port(), free_tcp_port());
    for port in [first, second] {
        let out = sipp_tcp_phone(&k, &user, instance, port, 10);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let l = k.ctl_json(&["ul.lookup", &user]);
    let contacts = l["Contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1, "{l}");
    let address = contacts[0]["Contact"]["Address"].as_str().unwrap();
    assert!(address.contains(&format!(":{second};")), "{l}");
}

#[test]
fn baresip_over_tcp_stays_reachable_and_goes_with_its_connection() {
    if !have("baresip") {
        return;
    }
    let k = CtlKamrs::start("tcp_connection_lifetime = 1\nhandle_lost_tcp = true", "");
    let user = format!("bstcp{}", unique().replace(['x', '@'], ""));
    let mut phone = Baresip::start(
        free_tcp_port(),
        &format!("<sip:{user}@{};transport=tcp>;regint=600", k.kamrs.tcp()),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        let run = k.ctl(&["--json", "ul.lookup", &user]);
        if run.code() == Some(0) {
            let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            break v["Contacts"][0]["Contact"]["Tcpconn-Id"]
                .as_i64()
                .unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "baresip did not register over TCP"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(id > 0, "its binding names its connection");
    // Three idle timeouts later the connection is still open.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(stat(&k, "tcp:current_opened_connections"), 1);
    assert_eq!(k.ctl(&["ul.lookup", &user]).code(), Some(0));
    phone.stop();
    aor_gone(&k, &user);
}

#[test]
fn by_default_a_closed_connection_leaves_its_binding() {
    let k = CtlKamrs::start("", "");
    let mut phone = k.kamrs.tcp_connect();
    tcp_register(&mut phone, "oneshot", 600);
    drop(phone);
    // The close is seen when the connection count drops.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat(&k, "tcp:current_opened_connections") != 0 {
        assert!(Instant::now() < deadline, "the connection is still open");
        std::thread::sleep(Duration::from_millis(20));
    }
    let l = k.ctl_json(&["ul.lookup", "oneshot"]);
    assert_eq!(
        l["Contacts"][0]["Contact"]["Tcpconn-Id"], -1,
        "forgets the closed connection: {l}"
    );
    assert_eq!(stat(&k, "usrloc:flows"), 0);
}

#[test]
fn an_outbound_flow_is_confirmed_with_require_and_flow_timer() {
    let k = Kamrs::start("");
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000cc>\"";
    let contact = format!("sip:ob@127.0.0.1:{port}");
    let flow = register(
        "obphone",
        Some(&contact),
        Some(600),
        &unique(),
        1,
        port,
        "ua",
    )
    .replacen(
        &format!("<{contact}>"),
        &format!("<{contact}>;{inst};reg-id=1"),
        1,
    )
    .replacen("User-Agent:", "Supported: outbound\r\nUser-Agent:", 1);
    let r = udp_exchange(&sock, flow);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.header("Require"), Some("outbound"), "{}", r.raw);
    assert_eq!(r.header("Flow-Timer"), Some("30"), "{}", r.raw);
    // Requiring outbound without naming the flow: refused, with the reason.
    let plain = register(
        "obphone2",
        Some(&format!("sip:ob2@127.0.0.1:{port}")),
        Some(600),
        &unique(),
        1,
        port,
        "ua",
    )
    .replacen("User-Agent:", "Require: outbound\r\nUser-Agent:", 1);
    let r = udp_exchange(&sock, plain);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (400, "Outbound Requires +sip.instance And reg-id"),
        "{}",
        r.raw
    );
}
