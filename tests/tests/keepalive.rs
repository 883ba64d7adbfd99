//! NAT keepalive end to end: kamrs pings registered phones with OPTIONS
//! over their flow (`ka_mode`), a reply fills `Last-Keepalive` and
//! `KA-Roundtrip`, a phone that stops answering is removed after
//! `ka_timeout`, and replies from elsewhere change nothing. Intervals are
//! one second; every wait is a bounded poll on what kamrs reports.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kamrs_tests::ctl::*;
use kamrs_tests::Baresip;
use kamrs_tests::*;

/// Polls until `f` holds, for at most `secs`, failing with `what`.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Registers `aor` from `sock` with a Contact of its own address (or
/// `contact`), and Via port `via_port` (a port not the source's makes it
/// NATed by nat_uac_test 16).
fn udp_register(sock: &UdpSocket, aor: &str, via_port: Option<u16>) {
    let port = sock.local_addr().unwrap().port();
    let contact = format!("sip:{aor}@127.0.0.1:{port}");
    let req = register(
        aor,
        Some(&contact),
        Some(600),
        &unique(),
        1,
        via_port.unwrap_or(port),
        "ka-phone",
    );
    assert_eq!(udp_exchange(sock, req).status, 200);
}

/// Registers `aor` over a new TCP connection (Contact: its own address,
/// `transport=tcp`) and returns the connection.
fn tcp_register(k: &CtlKamrs, aor: &str) -> std::net::TcpStream {
    let mut tcp = k.kamrs.tcp_connect();
    let via_port = tcp.local_addr().unwrap().port();
    let contact = format!("sip:{aor}@127.0.0.1:{via_port};transport=tcp");
    let req = via_transport(
        &register(
            aor,
            Some(&contact),
            Some(600),
            &unique(),
            1,
            via_port,
            "tcp-phone",
        ),
        "TCP",
    );
    assert_eq!(tcp_exchange(&mut tcp, req).status, 200);
    tcp
}

/// `Last-Keepalive` and `KA-Roundtrip` of `aor`'s only binding.
fn ka_fields(k: &CtlKamrs, aor: &str) -> (i64, u64) {
    let l = k.ctl_json(&["ul.lookup", aor]);
    let c = &l["Contacts"][0]["Contact"];
    (
        c["Last-Keepalive"]
            .as_i64()
            .unwrap_or_else(|| panic!("{l}")),
        c["KA-Roundtrip"].as_u64().unwrap_or_else(|| panic!("{l}")),
    )
}

#[test]
fn a_phone_that_answers_gets_its_round_trip_and_forgeries_change_nothing() {
    let k = CtlKamrs::start("ka_mode = 1\nka_interval = 1", "");
    let phone = k.kamrs.udp_client();
    udp_register(&phone, "answering", None);
    let options = next_options(&phone, 10).expect("kamrs pings the phone");
    let port = phone.local_addr().unwrap().port();
    assert!(
        options.starts_with(&format!(
            "OPTIONS sip:answering@127.0.0.1:{port} SIP/2.0\r\n"
        )),
        "{options}"
    );
    assert!(options.contains("\r\nCall-ID: ka-"), "{options}");
    let reply = answer_options(&options);
    // The same reply from another address: ignored.
    let stranger = k.kamrs.udp_client();
    send_udp(&stranger, reply.as_bytes());
    eventually(5, "the forged reply is counted", || {
        stat(&k, "usrloc:ka_ignored") == 1
    });
    assert_eq!(ka_fields(&k, "answering").1, 0);
    // A made-up Call-ID of the right shape: ignored too.
    let forged = reply.replace("Call-ID: ka-", "Call-ID: ka-00");
    send_udp(&phone, forged.as_bytes());
    eventually(5, "the made-up reply is counted", || {
        stat(&k, "usrloc:ka_ignored") == 2
    });
    // The phone's own answer, from where kamrs sent the ping.
    let before = ka_fields(&k, "answering").0;
    send_udp(&phone, reply.as_bytes());
    eventually(5, "the answer is recorded", || {
        ka_fields(&k, "answering").1 > 0
    });
    assert!(ka_fields(&k, "answering").0 >= before);
    assert_eq!(stat(&k, "usrloc:ka_answered"), 1);
    assert!(stat(&k, "usrloc:ka_sent") >= 1);
    // Replies are not requests: nothing dropped, nothing answered.
    assert_eq!(stat(&k, "core:drop_requests"), 0);
    assert_eq!(stat(&k, "core:err_requests"), 0);
}

#[test]
fn a_phone_that_stops_answering_is_removed_after_ka_timeout() {
    let k = CtlKamrs::start("ka_mode = 1\nka_interval = 1\nka_timeout = 2", "");
    let alive = Arc::new(k.kamrs.udp_client());
    let silent = k.kamrs.udp_client();
    udp_register(&alive, "alive", None);
    udp_register(&silent, "silent", None);
    // The live phone answers every ping until the test ends.
    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let (sock, stop) = (Arc::clone(&alive), Arc::clone(&stop));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Some(req) = next_options(&sock, 1) {
                    send_udp(&sock, answer_options(&req).as_bytes());
                }
            }
        })
    };
    eventually(15, "the silent phone is removed", || {
        k.ctl(&["ul.lookup", "silent"]).code() != Some(0)
    });
    assert_eq!(stat(&k, "usrloc:ka_timeouts"), 1);
    // Two more rounds: the answering phone stays.
    let answered = stat(&k, "usrloc:ka_answered");
    eventually(10, "two more answers", || {
        stat(&k, "usrloc:ka_answered") >= answered + 2
    });
    assert_eq!(k.ctl(&["ul.lookup", "alive"]).code(), Some(0));
    assert_eq!(stat(&k, "usrloc:ka_timeouts"), 1);
    assert_eq!(stat(&k, "usrloc:location_contacts"), 1);
    stop.store(true, Ordering::Relaxed);
    responder.join().unwrap();
    assert!(
        k.kamrs
            .log_when(|l| l.contains("keepalive-timeout"))
            .contains("keepalive-timeout"),
        "the removal is logged with its cause"
    );
}

#[test]
fn nated_only_mode_leaves_direct_bindings_unpinged() {
    let k = CtlKamrs::start("ka_mode = 2\nka_interval = 1", "");
    let nated = k.kamrs.udp_client();
    let direct = k.kamrs.udp_client();
    udp_register(&nated, "behind-nat", Some(5999));
    udp_register(&direct, "direct", None);
    // Two rounds reach the NATed phone, at the address it sent from…
    assert!(next_options(&nated, 10).is_some());
    assert!(next_options(&nated, 10).is_some());
    // …and none the other, in the same rounds.
    assert!(recv_udp(&direct, Duration::from_millis(100)).is_none());
    let l = k.ctl_json(&["ul.lookup", "direct"]);
    assert_eq!(l["Contacts"][0]["Contact"]["Keepalive"], 0, "{l}");
}

#[test]
fn a_tcp_binding_is_pinged_over_its_own_connection() {
    let k = CtlKamrs::start("ka_mode = 1\nka_interval = 1", "");
    let mut tcp = tcp_register(&k, "tcpka");
    // The ping comes down the phone's connection.
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).expect("an OPTIONS on the connection");
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    let options = String::from_utf8_lossy(&got).into_owned();
    assert!(options.starts_with("OPTIONS "), "{options}");
    assert!(options.contains("Via: SIP/2.0/TCP "), "{options}");
    tcp.write_all(answer_options(&options).as_bytes()).unwrap();
    eventually(5, "the answer over TCP is recorded", || {
        ka_fields(&k, "tcpka").1 > 0
    });
}

#[test]
fn baresip_answers_the_pings() {
    if !have("baresip") {
        return;
    }
    let k = CtlKamrs::start("ka_mode = 1\nka_interval = 1", "");
    let user = format!("bska{}", unique().replace(['x', '@'], ""));
    let mut phone = Baresip::start(
        free_udp_port(),
        &format!("<sip:{user}@{}>;regint=600", k.kamrs.udp()),
    );
    eventually(20, "baresip registers and answers a ping", || {
        k.ctl(&["ul.lookup", &user]).code() == Some(0) && ka_fields(&k, &user).1 > 0
    });
    assert!(stat(&k, "usrloc:ka_answered") >= 1);
    phone.stop();
}

/// RFC 5626 §3.5.1: a UA's own double-CRLF ping proves its connection
/// alive, so its bindings' `Last-Keepalive` moves (with keepalive off).
#[test]
fn a_phones_own_crlf_ping_updates_last_keepalive() {
    let k = CtlKamrs::start("", "");
    let mut tcp = tcp_register(&k, "pinger");
    let registered = ka_fields(&k, "pinger").0;
    // Last-Keepalive has second resolution: ping in a later second.
    eventually(5, "a second passes", || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            > registered
    });
    tcp.write_all(b"\r\n\r\n").unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut pong = [0u8; 2];
    tcp.read_exact(&mut pong).expect("a pong");
    assert_eq!(&pong, b"\r\n");
    eventually(5, "the ping is recorded", || {
        ka_fields(&k, "pinger").0 > registered
    });
}
