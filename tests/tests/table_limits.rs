//! Bounds of the location table: a global limit on
//! bindings (`max_bindings`) and on their estimated bytes
//! (`max_table_bytes`), answered `503` + `Retry-After` when reached while
//! refreshes and removals keep working; Call-ID and User-Agent bounded to
//! what phones send; `max_contacts` bounded by default. Loopback only.

use std::net::UdpSocket;

use serde_json::json;

use kamrs_tests::ctl::{register, stat, CtlKamrs};
use kamrs_tests::{udp_exchange, Response};

fn reg(
    sock: &UdpSocket,
    aor: &str,
    contact: &str,
    expires: u32,
    call_id: &str,
    cseq: u32,
    ua: &str,
) -> Response {
    let port = sock.local_addr().unwrap().port();
    udp_exchange(
        sock,
        register(aor, Some(contact), Some(expires), call_id, cseq, port, ua),
    )
}

fn new_aor(sock: &UdpSocket, i: usize, cseq: u32, expires: u32) -> Response {
    let port = sock.local_addr().unwrap().port();
    reg(
        sock,
        &format!("u{i}"),
        &format!("sip:u{i}@127.0.0.1:{port}"),
        expires,
        &format!("u{i}-call"),
        cseq,
        "limits-test",
    )
}

#[test]
fn a_full_table_refuses_new_bindings_but_keeps_serving_existing_ones() {
    let k = CtlKamrs::start("max_bindings = 50", "");
    let sock = k.kamrs.udp_client();
    let mut refused = Vec::new();
    for i in 0..60 {
        let r = new_aor(&sock, i, 1, 600);
        match r.status {
            200 => {}
            503 => {
                let retry: u64 = r
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("503 without Retry-After: {}", r.raw));
                assert!((1..=3600).contains(&retry), "{}", r.raw);
                assert_eq!(r.header("P-Registrar-Error"), Some("Location Table Full"));
                refused.push(i);
            }
            _ => panic!("unexpected reply: {}", r.raw),
        }
    }
    assert_eq!(refused, (50..60).collect::<Vec<_>>());
    assert_eq!(stat(&k, "usrloc:location_contacts"), 50);
    assert_eq!(stat(&k, "usrloc:table_full"), 10);

    // At the limit, a refresh of an existing binding still works…
    let r = new_aor(&sock, 7, 2, 600);
    assert_eq!(r.status, 200, "{}", r.raw);
    // …and so does ul.add of a binding that replaces an existing one,
    // while ul.add of a new one is refused with the reason.
    let v = k.rpc(
        "ul.add",
        json!([
            "location",
            "newcomer",
            "sip:n@192.0.2.1",
            0,
            -1,
            "",
            0,
            0,
            4294967295u32
        ]),
    );
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(msg.contains("max_bindings"), "{msg}");
    assert_eq!(stat(&k, "usrloc:table_full"), 11);

    // Removals work, and make room for new AoRs again.
    for i in 0..5 {
        let r = new_aor(&sock, i, 3, 0);
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    for i in 50..55 {
        let r = new_aor(&sock, i, 4, 600);
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    let r = new_aor(&sock, 55, 5, 600);
    assert_eq!(r.status, 503, "{}", r.raw);
}

#[test]
fn table_bytes_are_bounded_under_long_strings() {
    // 256 KiB: a few hundred bindings with every string at its maximum.
    let k = CtlKamrs::start("max_table_bytes = 262144\nmax_bindings = 100000", "");
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();
    let long_user = "x".repeat(200);
    let ua = "U".repeat(255);
    let mut accepted = 0usize;
    let mut full = false;
    for i in 0..2000 {
        let call_id = format!("{i:0>255}");
        let contact = format!("sip:{long_user}{i}@127.0.0.1:{port};transport=udp;ob");
        let r = reg(&sock, &format!("b{i}"), &contact, 600, &call_id, 1, &ua);
        match r.status {
            200 => accepted += 1,
            503 => {
                full = true;
                break;
            }
            _ => panic!("{}", r.raw),
        }
    }
    assert!(full, "2000 long bindings never filled 256 KiB");
    // Sequential REGISTERs: the limit holds exactly.
    let bytes = stat(&k, "usrloc:table_bytes");
    assert!(bytes <= 262_144, "table_bytes {bytes} over the limit");
    // Each binding here costs 1 to 2 KB by the estimate.
    assert!((100..=260).contains(&accepted), "{accepted} accepted");
}

#[test]
fn call_id_and_user_agent_are_bounded_and_max_contacts_has_a_default() {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();
    let contact = format!("sip:c@127.0.0.1:{port}");

    let r = reg(&sock, "c", &contact, 600, &"i".repeat(256), 1, "ua");
    assert_eq!(r.status, 400, "{}", r.raw);
    assert_eq!(r.header("P-Registrar-Error"), Some("Call-ID Too Long"));
    let r = reg(
        &sock,
        "c",
        &contact,
        600,
        &"i".repeat(255),
        1,
        &"A".repeat(1000),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let v = k.rpc("ul.lookup", json!(["location", "c"]));
    let ua = v["result"]["Contacts"][0]["Contact"]["User-Agent"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        ua,
        "A".repeat(255),
        "User-Agent is cut at user_agent_max_size"
    );

    // max_contacts defaults to 10: an eleventh binding is refused.
    for i in 0..10 {
        let r = reg(
            &sock,
            "d",
            &format!("sip:d{i}@127.0.0.1:{port}"),
            600,
            "d-call",
            i + 1,
            "ua",
        );
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    let r = reg(
        &sock,
        "d",
        &format!("sip:d10@127.0.0.1:{port}"),
        600,
        "d-call",
        20,
        "ua",
    );
    assert_eq!(r.status, 503, "{}", r.raw);
    assert_eq!(
        r.header("P-Registrar-Error"),
        Some("Too Many Registered Contacts")
    );
}

/// Resident memory of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

#[test]
fn memory_stays_bounded_under_a_table_filling_attack() {
    // 4 MiB of table, and 20,000 new AoRs each with every string as long
    // as kamrs lets it be (a 4 KB +sip.instance rides in the Contact's
    // parameters): unbounded, that is over 90 MB.
    let k = CtlKamrs::start("max_table_bytes = 4194304", "");
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();
    let pid = k.kamrs.pid();
    let before = rss_kib(pid);
    let instance = "i".repeat(4000);
    let ua = "U".repeat(255);
    let (mut ok, mut full) = (0usize, 0usize);
    for window in 0..400 {
        let mut sent = 0;
        for j in 0..50 {
            let i = window * 50 + j;
            let contact = format!(
                "<sip:{:x>400}@127.0.0.1:{port}>;+sip.instance=\"<urn:uuid:{instance}>\";reg-id=1",
                i
            );
            let msg = register(
                &format!("m{i}"),
                None,
                Some(600),
                &format!("{i:0>255}"),
                1,
                port,
                &ua,
            )
            .replace(
                "Expires: 600\r\n",
                &format!("Expires: 600\r\nContact: {contact}\r\n"),
            );
            sock.send(msg.as_bytes()).expect("send");
            sent += 1;
        }
        for _ in 0..sent {
            let Some(bytes) = kamrs_tests::recv_udp(&sock, std::time::Duration::from_secs(2))
            else {
                break;
            };
            match kamrs_tests::ctl::parse_reply(&bytes).status {
                200 => ok += 1,
                503 => full += 1,
                s => panic!("status {s}"),
            }
        }
    }
    let after = rss_kib(pid);
    let growth = after.saturating_sub(before);
    eprintln!(
        "table-filling attack: {ok} accepted, {full} refused, table_bytes {}, RSS {before} -> {after} KiB (+{growth})",
        stat(&k, "usrloc:table_bytes")
    );
    assert!(full > 15_000, "only {full} refused");
    // Held exactly, though several UDP workers admit REGISTERs at once.
    let bytes = stat(&k, "usrloc:table_bytes");
    assert!(bytes <= 4 << 20, "table_bytes {bytes}");
    // The table's 4 MiB, its estimate's slack, allocator and socket
    // buffers: far below the ~90 MB the same load took unbounded.
    assert!(growth < 24 * 1024, "RSS grew by {growth} KiB");
}
